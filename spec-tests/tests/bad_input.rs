//! Bad input: every way an engine (or a person) can hand vsrun a broken bundle, id or command
//! line. Each case runs the real binary as an engine does and checks runc's convention plus
//! design.md's "Errors and cleanup": exit status 1, exactly one stderr line that names the
//! config field (or the id, or the flag), and nothing left behind — no state dir or any other
//! entry in --root, no mount mentioning the bundle, no process rooted or working in it.
//!
//! The cases are tables: `config_cases!` edits config.json as a `serde_json::Value`,
//! `bundle_cases!` edits the bundle on disk; each row becomes its own #[test], named after the
//! row, so a failure says which input broke.

use serde_json::{json, Value};
use spec_tests::edit::{add_mount, add_ns, device, drop_ns, sysctl, userns};
use spec_tests::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

// ---------------------------------------------------------------------------------------------
// Runners (the checks are spec_tests::refusal's)

fn config_case(via: Via, field: &str, edit: impl FnOnce(&mut Value)) {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    edit(&mut b.config);
    b.write();
    expect_clean_failure(&rt, &b, via, &[], field);
}

fn bundle_case(via: Via, field: &str, edit: impl FnOnce(&mut Bundle)) {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    edit(&mut b);
    expect_clean_failure(&rt, &b, via, &[], field);
}

// ---------------------------------------------------------------------------------------------
// Edits

/// Replace config.json with raw text (the Value is left alone, so it is not rewritten).
fn raw_config(b: &mut Bundle, text: &str) {
    fs::write(b.config_path(), text).expect("write raw config.json");
}

// ---------------------------------------------------------------------------------------------
// config.json edits: (test name: via, expected field, edit)

macro_rules! config_cases {
    ($($name:ident: $via:ident, $field:expr, |$v:ident| $body:expr;)*) => {
        $(
            #[test]
            fn $name() {
                config_case(Via::$via, $field, |$v: &mut Value| {
                    $body;
                });
            }
        )*
    };
}

macro_rules! bundle_cases {
    ($($name:ident: $via:ident, $field:expr, |$b:ident| $body:expr;)*) => {
        $(
            #[test]
            fn $name() {
                bundle_case(Via::$via, $field, |$b: &mut Bundle| {
                    $body;
                });
            }
        )*
    };
}

config_cases! {
    // Top level
    oci_version_missing: Create, "ociVersion", |v| v.as_object_mut().unwrap().remove("ociVersion");
    oci_version_major_2: Create, "ociVersion", |v| v["ociVersion"] = json!("2.0.0");
    root_missing: Create, "root", |v| v.as_object_mut().unwrap().remove("root");
    root_path_empty: Create, "root.path", |v| v["root"]["path"] = json!("");
    root_path_relative_to_nowhere: Create, "root.path", |v| v["root"]["path"] = json!("no-such-dir");
    root_path_relative_to_nowhere_run: Run, "root.path", |v| v["root"]["path"] = json!("no-such-dir");
    annotation_empty_key: Create, "annotations", |v| v["annotations"] = json!({ "": "x" });

    // Wrong JSON types: the error names the field path
    args_as_string: Create, "process.args", |v| v["process"]["args"] = json!("/probe");
    uid_as_string: Create, "process.user.uid", |v| v["process"]["user"]["uid"] = json!("0");
    uid_negative: Create, "process.user.uid", |v| v["process"]["user"]["uid"] = json!(-1);
    rlimit_hard_as_string: Create, "process.rlimits[0].hard", |v| v["process"]["rlimits"][0]["hard"] = json!("1024");
    mounts_not_a_list: Create, "mounts", |v| v["mounts"] = json!({ "destination": "/x" });
    pids_limit_as_string: Create, "linux.resources.pids.limit", |v| v["linux"]["resources"] = json!({ "pids": { "limit": "10" } });

    // process
    process_missing: Create, "process", |v| v.as_object_mut().unwrap().remove("process");
    args_empty: Create, "process.args", |v| v["process"]["args"] = json!([]);
    args0_empty: Create, "process.args[0]", |v| v["process"]["args"] = json!([""]);
    cwd_relative: Create, "process.cwd", |v| v["process"]["cwd"] = json!("tmp");
    cwd_relative_run: Run, "process.cwd", |v| v["process"]["cwd"] = json!("tmp");
    env_without_equals: Create, "process.env[1]", |v| v["process"]["env"][1] = json!("TERM");
    env_empty_name: Create, "process.env[0]", |v| v["process"]["env"][0] = json!("=x");
    rlimit_unknown: Create, "process.rlimits[0].type", |v| v["process"]["rlimits"][0]["type"] = json!("RLIMIT_FOO");
    rlimit_soft_above_hard: Create, "process.rlimits[0]", |v| v["process"]["rlimits"][0]["soft"] = json!(4096);
    rlimit_duplicate: Create, "process.rlimits[1]", |v| v["process"]["rlimits"].as_array_mut().unwrap().push(json!({ "type": "RLIMIT_NOFILE", "hard": 10, "soft": 10 }));
    oom_score_adj_5000: Create, "process.oomScoreAdj", |v| v["process"]["oomScoreAdj"] = json!(5000);
    umask_0o1000: Create, "process.user.umask", |v| v["process"]["user"]["umask"] = json!(0o1000);

    // The executable is looked up in the new root, after the clone: the init must die with it.
    executable_missing: Create, "process.args[0]", |v| v["process"]["args"] = json!(["/nonexistent"]);
    executable_missing_run: Run, "process.args[0]", |v| v["process"]["args"] = json!(["/nonexistent"]);
    executable_not_in_path: Create, "process.args[0]", |v| v["process"]["args"] = json!(["no-such-command"]);
    executable_is_a_directory: Create, "process.args[0]", |v| v["process"]["args"] = json!(["/bin"]);

    // namespaces
    namespace_type_unknown: Create, "linux.namespaces[1].type", |v| v["linux"]["namespaces"][1]["type"] = json!("bogus");
    namespace_duplicate: Create, "linux.namespaces[5].type", |v| add_ns(v, json!({ "type": "pid" }));
    namespace_path_relative: Create, "linux.namespaces[1].path", |v| v["linux"]["namespaces"][1]["path"] = json!("proc/1/ns/net");
    namespace_path_missing: Create, "linux.namespaces[1].path", |v| v["linux"]["namespaces"][1]["path"] = json!("/nonexistent/ns/net");
    namespace_path_wrong_type: Create, "linux.namespaces[1].path", |v| v["linux"]["namespaces"][1]["path"] = json!("/proc/self/ns/uts");
    namespace_path_wrong_type_run: Run, "linux.namespaces[1].path", |v| v["linux"]["namespaces"][1]["path"] = json!("/proc/self/ns/uts");
    uid_mapping_size_zero: Create, "linux.uidMappings[0].size", |v| { userns(v); v["linux"]["uidMappings"][0]["size"] = json!(0) };
    uid_mappings_overlap: Create, "linux.uidMappings[1]", |v| {
        userns(v);
        v["linux"]["uidMappings"] = json!([
            { "containerID": 0, "hostID": 100000, "size": 1000 },
            { "containerID": 500, "hostID": 300000, "size": 1000 }
        ])
    };
    gid_mapping_overflows: Create, "linux.gidMappings[0]", |v| { userns(v); v["linux"]["gidMappings"][0]["hostID"] = json!(4294967000u32) };
    uid_mappings_341_lines: Create, "linux.uidMappings", |v| {
        userns(v);
        let lines: Vec<Value> = (0..341)
            .map(|i| json!({ "containerID": i, "hostID": 100000 + i, "size": 1 }))
            .collect();
        v["linux"]["uidMappings"] = json!(lines)
    };
    mappings_without_user_namespace: Create, "linux.uidMappings", |v| v["linux"]["uidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 1 }]);
    user_namespace_without_mappings: Create, "linux.uidMappings", |v| add_ns(v, json!({ "type": "user" }));
    hostname_without_uts: Create, "hostname", |v| drop_ns(v, "uts");
    domainname_without_uts: Create, "domainname", |v| { drop_ns(v, "uts"); v["hostname"] = json!(""); v["domainname"] = json!("example.org") };
    time_offsets_without_time_ns: Create, "linux.timeOffsets", |v| v["linux"]["timeOffsets"] = json!({ "monotonic": { "secs": 10 } });
    time_offsets_unknown_clock: Create, "linux.timeOffsets.realtime", |v| {
        add_ns(v, json!({ "type": "time" }));
        v["linux"]["timeOffsets"] = json!({ "realtime": { "secs": 10 } })
    };

    // mounts
    mount_destination_relative: Create, "mounts[2].destination", |v| v["mounts"][2]["destination"] = json!("dev/pts");
    mount_destination_dotdot: Create, "mounts[0].destination", |v| v["mounts"][0]["destination"] = json!("/..");
    mount_destination_root: Create, "mounts[0].destination", |v| v["mounts"][0]["destination"] = json!("/");
    mount_destination_nul: Create, "mounts[0].destination", |v| v["mounts"][0]["destination"] = json!("/pr\u{0}c");
    bind_without_source: Create, "mounts[6].source", |v| add_mount(v, json!({ "destination": "/data", "type": "bind", "options": ["rbind", "ro"] }));
    bind_source_missing: Create, "mounts[6]", |v| add_mount(v, json!({ "destination": "/data", "type": "bind", "source": "/nonexistent/src", "options": ["rbind"] }));
    bind_source_missing_run: Run, "mounts[6]", |v| add_mount(v, json!({ "destination": "/data", "type": "bind", "source": "/nonexistent/src", "options": ["rbind"] }));

    // sysctl
    sysctl_key_empty_component: Create, "linux.sysctl.net..ipv4", |v| sysctl(v, "net..ipv4");
    sysctl_key_with_space: Create, "linux.sysctl.net.ipv4.ip forward", |v| sysctl(v, "net.ipv4.ip forward");
    sysctl_key_dotdot: Create, "linux.sysctl.net/../kernel/x", |v| sysctl(v, "net/../kernel/x");
    sysctl_net_without_netns: Create, "linux.sysctl.net.ipv4.ip_forward", |v| { drop_ns(v, "network"); sysctl(v, "net.ipv4.ip_forward") };
    sysctl_net_without_netns_run: Run, "linux.sysctl.net.ipv4.ip_forward", |v| { drop_ns(v, "network"); sysctl(v, "net.ipv4.ip_forward") };
    sysctl_ipc_without_ipcns: Create, "linux.sysctl.kernel.shmmax", |v| { drop_ns(v, "ipc"); sysctl(v, "kernel.shmmax") };
    sysctl_host_wide: Create, "linux.sysctl.kernel.pid_max", |v| sysctl(v, "kernel.pid_max");
    sysctl_hostname_conflicts: Create, "linux.sysctl.kernel.hostname", |v| sysctl(v, "kernel.hostname");
    sysctl_unknown_key: Create, "linux.sysctl.net.ipv4.no_such_knob", |v| sysctl(v, "net.ipv4.no_such_knob");

    // masked / read-only paths, devices, propagation
    masked_path_relative: Create, "linux.maskedPaths[0]", |v| v["linux"]["maskedPaths"][0] = json!("proc/kcore");
    readonly_path_relative: Create, "linux.readonlyPaths[1]", |v| v["linux"]["readonlyPaths"][1] = json!("proc/fs");
    masked_paths_without_mount_ns: Create, "linux.maskedPaths", |v| drop_ns(v, "mount");
    device_path_relative: Create, "linux.devices[0].path", |v| device(v, json!({ "path": "dev/fuse", "type": "c", "major": 10, "minor": 229 }));
    device_path_root: Create, "linux.devices[0].path", |v| device(v, json!({ "path": "/dev/../..", "type": "c", "major": 10, "minor": 229 }));
    device_negative_major: Create, "linux.devices[0].major", |v| device(v, json!({ "path": "/dev/x", "type": "b", "major": -1, "minor": 0 }));
    device_duplicate: Create, "linux.devices[1].path", |v| {
        v["linux"]["devices"] = json!([
            { "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229 },
            { "path": "/dev/./fuse", "type": "c", "major": 10, "minor": 229 }
        ])
    };
    rootfs_propagation_unknown: Create, "linux.rootfsPropagation", |v| v["linux"]["rootfsPropagation"] = json!("sideways");

    // hooks
    hook_path_relative: Create, "hooks.poststart[0].path", |v| v["hooks"] = json!({ "poststart": [{ "path": "bin/true" }] });
    hook_timeout_zero: Create, "hooks.createRuntime[0].timeout", |v| v["hooks"] = json!({ "createRuntime": [{ "path": "/bin/true", "timeout": 0 }] });

    // Features with their own bad values (they were refused wholesale before they landed)
    seccomp_unknown_default_action: Create, "linux.seccomp.defaultAction", |v| v["linux"]["seccomp"] = json!({ "defaultAction": "SCMP_ACT_BOGUS" });
    terminal_without_console_socket_on_create: Create, "process.terminal", |v| v["process"]["terminal"] = json!(true);
    hook_missing_program: Create, "hooks.prestart[0]", |v| v["hooks"] = json!({ "prestart": [{ "path": "/nonexistent/hook" }] });
    apparmor_profile_without_apparmor: Create, "process.apparmorProfile", |v| v["process"]["apparmorProfile"] = json!("docker-default");
    personality_flags: Create, "linux.personality.flags", |v| v["linux"]["personality"] = json!({ "domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"] });
    seccomp_arg_index_out_of_range_run: Run, "linux.seccomp.syscalls[0].args[0].index", |v| v["linux"]["seccomp"] = json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{ "index": 9, "value": 1, "op": "SCMP_CMP_EQ" }] }] });

    // Resources the kernel refuses: found after the clone, in the cgroup; the init, its
    // cgroup and the state dir must all go.
    resources_cpuset_out_of_range: Create, "linux.resources", |v| v["linux"]["resources"] = json!({ "cpu": { "cpus": "9999" } });
}

bundle_cases! {
    json_truncated: Create, "config.json", |b| raw_config(b, "{\"ociVersion\": \"1.0.2\", \"process\": {");
    json_trailing_garbage: Create, "config.json", |b| {
        let text = format!("{} }}", serde_json::to_string(&b.config).unwrap());
        raw_config(b, &text)
    };
    json_not_an_object: Create, "config.json", |b| raw_config(b, "[1, 2, 3]");
    json_empty_file: Create, "config.json", |b| raw_config(b, "");
    json_empty_file_run: Run, "config.json", |b| raw_config(b, "");
    config_json_missing: Create, "config.json", |b| fs::remove_file(b.config_path()).unwrap();
    rootfs_missing: Create, "root.path", |b| fs::remove_dir_all(b.rootfs()).unwrap();
    rootfs_is_a_file: Create, "root.path", |b| {
        fs::remove_dir_all(b.rootfs()).unwrap();
        fs::write(b.rootfs(), "not a directory").unwrap()
    };
    executable_not_executable: Create, "process.args[0]", |b| {
        let p = b.rootfs().join("not-executable");
        fs::write(&p, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        b.set_args(&["/not-executable"])
    };
}

// ---------------------------------------------------------------------------------------------
// Container ids

fn bad_id(id: &str, needle: &str) {
    let rt = Runtime::new();
    let b = Bundle::new();
    // Not rt.create: it names per-container output files after the id.
    let o = rt.cmd(&["create", "--bundle", b.path_str(), id]);
    let what = format!("create with id {id:?}");
    assert_one_error_line(&o, needle, &what);
    assert_left_nothing(&rt, b.path(), id, &what);
}

#[test]
fn id_empty() {
    bad_id("", "container id");
}

#[test]
fn id_with_slash() {
    bad_id("a/b", "a/b");
}

#[test]
fn id_dotdot() {
    bad_id("..", "..");
}

#[test]
fn id_with_control_char() {
    bad_id("a\u{1}b", "container id");
}

#[test]
fn id_1025_bytes() {
    bad_id(&"x".repeat(1025), "container id");
}

#[test]
fn id_taken_leaves_the_first_container_intact() {
    let rt = Runtime::new();
    let b1 = Bundle::new();
    let b2 = Bundle::new();
    let id = unique_id("dup");
    assert_success(&rt.create(&b1, &id), "first create");
    let pid = rt.state(&id)["pid"].as_i64().expect("state.pid") as i32;

    let o = rt.create(&b2, &id);
    assert_one_error_line(&o, &id, "second create of the same id");
    assert_eq!(
        root_entries(&rt),
        vec![id.clone()],
        "--root after the refused create"
    );
    assert!(mountinfo_mentioning(b2.path()).is_empty());
    assert_bundle_clean(b2.path());

    let st = rt.state(&id);
    assert_eq!(
        st["status"], "created",
        "first container after the refused create: {st}"
    );
    assert_eq!(st["pid"], pid, "first container's pid changed: {st}");
    assert_eq!(st["bundle"], b1.path_str());
    assert!(pid_alive(pid), "first container's init {pid} died");

    assert_success(&rt.cmd(&["delete", &id]), "delete the first container");
    assert_nothing_left(&rt, &id);
    assert!(root_entries(&rt).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Commands on ids that do not exist, bad flags, bad signals

fn unknown_id_case(args: &[&str]) {
    let rt = Runtime::new();
    let id = unique_id("nosuch");
    let mut full: Vec<&str> = args.to_vec();
    full.insert(1, &id);
    let o = rt.cmd(&full);
    assert_one_error_line_status(
        &o,
        refusal_status(args),
        &id,
        &format!("{args:?} of an unknown id"),
    );
    assert!(root_entries(&rt).is_empty(), "{:?}", root_entries(&rt));
}

#[test]
fn start_unknown_id() {
    unknown_id_case(&["start"]);
}

#[test]
fn state_unknown_id() {
    unknown_id_case(&["state"]);
}

#[test]
fn kill_unknown_id() {
    unknown_id_case(&["kill", "KILL"]);
}

#[test]
fn delete_unknown_id() {
    unknown_id_case(&["delete"]);
}

#[test]
fn exec_unknown_id() {
    unknown_id_case(&["exec", "/probe"]);
}

#[test]
fn unknown_log_format() {
    let rt = Runtime::new();
    let b = Bundle::new();
    let id = unique_id("logfmt");
    let o = rt.cmd(&[
        "--log-format",
        "yaml",
        "create",
        "--bundle",
        b.path_str(),
        &id,
    ]);
    assert_one_error_line(&o, "log-format", "--log-format yaml");
    assert_left_nothing(&rt, b.path(), &id, "--log-format yaml");
}

#[test]
fn console_socket_without_terminal() {
    let rt = Runtime::new();
    let b = Bundle::new();
    let id = unique_id("sock");
    let o = rt.create_with(&b, &id, &["--console-socket", "/nonexistent/console.sock"]);
    assert_one_error_line(
        &o,
        "--console-socket",
        "--console-socket with terminal false",
    );
    assert_left_nothing(&rt, b.path(), &id, "--console-socket with terminal false");
}

#[test]
fn kill_with_bogus_signal_leaves_the_container_intact() {
    let rt = Runtime::new();
    let b = Bundle::new();
    let id = unique_id("sigfoo");
    assert_success(&rt.create(&b, &id), "create");
    let pid = rt.state(&id)["pid"].as_i64().expect("state.pid") as i32;

    let o = rt.cmd(&["kill", &id, "SIGFOO"]);
    assert_one_error_line(&o, "SIGFOO", "kill with SIGFOO");
    assert_eq!(rt.status(&id).as_deref(), Some("created"));
    assert!(pid_alive(pid), "init {pid} died after a refused kill");

    assert_success(&rt.cmd(&["delete", &id]), "delete after the refused kill");
    assert_nothing_left(&rt, &id);
}
