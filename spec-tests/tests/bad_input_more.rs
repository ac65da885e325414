//! More bad input (issue 6: the corpus grows to at least 150 cases with bad_input.rs): broken
//! config.json fields bad_input.rs does not cover, process.json for `exec --process`, resources
//! JSON for `update --resources`, and command lines. Each case runs the real binary and checks
//! design.md's "Errors and cleanup": exit status 1, exactly one `vsrun: ` stderr line naming the
//! field (or flag), and nothing left — no state dir, cgroup, mount or process; for `exec` and
//! `update` the container is left as it was (still running, no extra process).
//!
//! The tables double as the fuzzer's seed corpus:
//! `VSRUN_FUZZ_SEEDS=fuzz/seeds cargo test -p spec-tests --test bad_input_more dump_fuzz_seeds`
//! writes every case's JSON there (hack/fuzz.sh picks them up).

use serde_json::{json, Value};
use spec_tests::edit::{add_mount, add_ns, device, drop_ns, resources, seccomp, userns};
use spec_tests::*;
use std::fs;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// config.json cases

fn config_case(via: Via, field: &str, extra: &[&str], edit: fn(&mut Value)) {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    edit(&mut b.config);
    b.write();
    expect_clean_failure(&rt, &b, via, extra, field);
}

/// `config_cases!` makes one #[test] per row and `config_edits()` listing them all (for the
/// fuzz seeds). A row: name: via, expected field, [extra create flags], |v| edit;
macro_rules! config_cases {
    ($($name:ident: $via:ident, $field:expr, [$($extra:expr),*], |$v:ident| $body:expr;)*) => {
        $(
            #[test]
            fn $name() {
                config_case(Via::$via, $field, &[$($extra),*], |$v: &mut Value| {
                    $body;
                });
            }
        )*
        fn config_edits() -> Vec<(&'static str, fn(&mut Value))> {
            vec![$((stringify!($name), |$v: &mut Value| { $body; })),*]
        }
    };
}

config_cases! {
    // JSON types of process fields
    gid_as_string: Create, "process.user.gid", [], |v| v["process"]["user"]["gid"] = json!("0");
    additional_gids_not_a_list: Create, "process.user.additionalGids", [], |v| v["process"]["user"]["additionalGids"] = json!(5);
    uid_above_u32: Create, "process.user.uid", [], |v| v["process"]["user"]["uid"] = json!(4294967296u64);
    env_not_a_list: Create, "process.env", [], |v| v["process"]["env"] = json!("PATH=/bin");
    env_with_nul: Create, "process.env[1]", [], |v| v["process"]["env"][1] = json!("TERM=x\u{0}y");
    args0_with_nul: Create, "process.args[0]", [], |v| v["process"]["args"] = json!(["/pro\u{0}be"]);
    cwd_empty: Create, "process.cwd", [], |v| v["process"]["cwd"] = json!("");
    terminal_as_string: Create, "process.terminal", [], |v| v["process"]["terminal"] = json!("yes");
    no_new_privileges_as_string: Create, "process.noNewPrivileges", [], |v| v["process"]["noNewPrivileges"] = json!("true");
    ambient_not_a_list: Create, "process.capabilities.ambient", [], |v| v["process"]["capabilities"]["ambient"] = json!("CAP_KILL");
    rlimit_soft_negative: Create, "process.rlimits[0].soft", [], |v| v["process"]["rlimits"][0]["soft"] = json!(-1);
    // A newline in a value echoed by the message must not split the error line (log injection).
    rlimit_type_with_newline: Create, "process.rlimits[0].type", [], |v| v["process"]["rlimits"][0]["type"] = json!("RLIMIT_\nvsrun: injected line");
    namespace_type_with_newline: Create, "linux.namespaces[0].type", [], |v| v["linux"]["namespaces"][0]["type"] = json!("pid\r\nvsrun: injected line");
    rlimit_without_hard: Create, "process.rlimits[0]", [], |v| v["process"]["rlimits"] = json!([{ "type": "RLIMIT_NOFILE", "soft": 10 }]);
    oom_score_adj_below_range: Create, "process.oomScoreAdj", [], |v| v["process"]["oomScoreAdj"] = json!(-1001);
    oom_score_adj_below_range_run: Run, "process.oomScoreAdj", [], |v| v["process"]["oomScoreAdj"] = json!(-1001);
    umask_as_string: Create, "process.user.umask", [], |v| v["process"]["user"]["umask"] = json!("022");
    console_size_negative: Create, "process.consoleSize.height", [], |v| { v["process"]["terminal"] = json!(true); v["process"]["consoleSize"] = json!({ "height": -1, "width": 80 }) };
    selinux_label_without_selinux: Create, "process.selinuxLabel", [], |v| v["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    io_priority_class_unknown: Create, "process.ioPriority.class", [], |v| v["process"]["ioPriority"] = json!({ "class": "IOPRIO_CLASS_BOGUS", "priority": 0 });
    scheduler_policy_unknown: Create, "process.scheduler.policy", [], |v| v["process"]["scheduler"] = json!({ "policy": "SCHED_BOGUS" });
    exec_cpu_affinity_garbage: Create, "process.execCPUAffinity", [], |v| v["process"]["execCPUAffinity"] = json!({ "initial": "zero-to-three" });

    // Top level
    oci_version_not_semver: Create, "ociVersion", [], |v| v["ociVersion"] = json!("latest");
    oci_version_as_number: Create, "ociVersion", [], |v| v["ociVersion"] = json!(1);
    hostname_65_bytes: Create, "hostname", [], |v| v["hostname"] = json!("h".repeat(65));
    hostname_with_nul: Create, "hostname", [], |v| v["hostname"] = json!("a\u{0}b");
    domainname_65_bytes: Create, "domainname", [], |v| v["domainname"] = json!("d".repeat(65));
    root_path_as_number: Create, "root.path", [], |v| v["root"]["path"] = json!(7);
    root_readonly_as_string: Create, "root.readonly", [], |v| v["root"]["readonly"] = json!("true");
    annotation_value_not_a_string: Create, "annotations", [], |v| v["annotations"] = json!({ "org.example": 1 });

    // mounts
    mount_without_destination: Create, "mounts[0]", [], |v| v["mounts"][0] = json!({ "type": "proc", "source": "proc" });
    mount_without_type: Create, "mounts[6].type", [], |v| add_mount(v, json!({ "destination": "/data", "source": "tmpfs" }));
    mount_tmpfs_on_proc: Create, "mounts[0]", [], |v| v["mounts"][0] = json!({ "destination": "/proc", "type": "tmpfs", "source": "tmpfs" });
    mount_inside_proc: Create, "mounts[6].destination", [], |v| add_mount(v, json!({ "destination": "/proc/sys/kernel/x", "type": "tmpfs", "source": "tmpfs" }));
    mount_tmpcopyup_on_bind: Create, "mounts[6].options", [], |v| add_mount(v, json!({ "destination": "/data", "type": "bind", "source": "/tmp", "options": ["bind", "tmpcopyup"] }));
    mount_source_with_nul: Create, "mounts[6].source", [], |v| add_mount(v, json!({ "destination": "/data", "type": "bind", "source": "/t\u{0}mp", "options": ["bind"] }));
    mount_unknown_fs_type: Create, "mounts[6]", [], |v| add_mount(v, json!({ "destination": "/data", "type": "nosuchfs", "source": "none" }));
    mount_bad_tmpfs_option: Create, "mounts[6]", [], |v| add_mount(v, json!({ "destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["size=lots"] }));
    mount_options_not_strings: Create, "mounts[6].options[0]", [], |v| add_mount(v, json!({ "destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": [1] }));
    mount_idmap_size_zero: Create, "mounts[6].uidMappings[0].size", [], |v| add_mount(v, json!({ "destination": "/data", "type": "bind", "source": "/tmp", "options": ["bind"],
        "uidMappings": [{ "containerID": 0, "hostID": 0, "size": 0 }], "gidMappings": [{ "containerID": 0, "hostID": 0, "size": 1 }] }));
    mount_proc_bind_of_a_non_procfs: Create, "mounts[0].source", [], |v| v["mounts"][0] = json!({ "destination": "/proc", "type": "bind", "source": "/tmp", "options": ["rbind"] });

    // namespaces, id maps, time
    namespaces_not_a_list: Create, "linux.namespaces", [], |v| v["linux"]["namespaces"] = json!({ "type": "pid" });
    namespace_without_type: Create, "linux.namespaces[0]", [], |v| v["linux"]["namespaces"][0] = json!({ "path": "/proc/1/ns/pid" });
    namespace_path_not_a_namespace: Create, "linux.namespaces[1].path", [], |v| v["linux"]["namespaces"][1]["path"] = json!("/etc/hostname");
    time_offset_nanosecs_too_big: Create, "linux.timeOffsets.monotonic.nanosecs", [], |v| { add_ns(v, json!({ "type": "time" })); v["linux"]["timeOffsets"] = json!({ "monotonic": { "secs": 1, "nanosecs": 1000000000u64 } }) };
    time_offsets_with_joined_time_ns: Create, "linux.timeOffsets", [], |v| { add_ns(v, json!({ "type": "time", "path": "/proc/self/ns/time" })); v["linux"]["timeOffsets"] = json!({ "boottime": { "secs": 1 } }) };
    uid_mapping_host_overflow: Create, "linux.uidMappings[0]", [], |v| { userns(v); v["linux"]["uidMappings"][0]["hostID"] = json!(4294967000u32) };
    gid_mappings_overlap: Create, "linux.gidMappings[1]", [], |v| { userns(v); v["linux"]["gidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 10 }, { "containerID": 100, "hostID": 100005, "size": 10 }]) };
    gid_mappings_missing_in_new_userns: Create, "linux.gidMappings", [], |v| { userns(v); v["linux"].as_object_mut().unwrap().remove("gidMappings"); };

    // devices, paths, sysctl, propagation
    device_major_too_big: Create, "linux.devices[0].major", [], |v| device(v, json!({ "path": "/dev/x", "type": "c", "major": 4096, "minor": 0 }));
    device_minor_too_big: Create, "linux.devices[0].minor", [], |v| device(v, json!({ "path": "/dev/x", "type": "c", "major": 1, "minor": 1048576 }));
    device_type_a: Create, "linux.devices[0].type", [], |v| device(v, json!({ "path": "/dev/x", "type": "a", "major": 1, "minor": 3 }));
    device_type_unknown: Create, "linux.devices[0].type", [], |v| device(v, json!({ "path": "/dev/x", "type": "z", "major": 1, "minor": 3 }));
    device_file_mode_with_type_bits: Create, "linux.devices[0].fileMode", [], |v| device(v, json!({ "path": "/dev/x", "type": "c", "major": 1, "minor": 3, "fileMode": 0o20666 }));
    device_path_is_root: Create, "linux.devices[0].path", [], |v| device(v, json!({ "path": "/", "type": "c", "major": 1, "minor": 3 }));
    masked_path_root: Create, "linux.maskedPaths[10]", [], |v| v["linux"]["maskedPaths"].as_array_mut().unwrap().push(json!("/"));
    readonly_path_with_nul: Create, "linux.readonlyPaths[0]", [], |v| v["linux"]["readonlyPaths"][0] = json!("/proc/b\u{0}us");
    sysctl_value_not_a_string: Create, "linux.sysctl", [], |v| v["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": 1 });
    sysctl_mqueue_without_ipcns: Create, "linux.sysctl.fs.mqueue.msg_max", [], |v| { drop_ns(v, "ipc"); v["linux"]["sysctl"] = json!({ "fs.mqueue.msg_max": "10" }) };
    sysctl_domainname_without_utsns: Create, "linux.sysctl.kernel.domainname", [], |v| { drop_ns(v, "uts"); v["hostname"] = json!(""); v["linux"]["sysctl"] = json!({ "kernel.domainname": "x" }) };
    sysctl_net_in_the_hosts_netns: Create, "linux.sysctl.net.ipv4.ip_forward", [], |v| { v["linux"]["namespaces"][1]["path"] = json!("/proc/self/ns/net"); v["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1" }) };
    rootfs_propagation_private_without_pivot: Create, "linux.rootfsPropagation", ["--no-pivot"], |v| v["linux"]["rootfsPropagation"] = json!("private");

    // hooks
    hook_timeout_negative: Create, "hooks.poststop[0].timeout", [], |v| v["hooks"] = json!({ "poststop": [{ "path": "/bin/true", "timeout": -5 }] });
    hook_args_not_a_list: Create, "hooks.createContainer[0].args", [], |v| v["hooks"] = json!({ "createContainer": [{ "path": "/bin/true", "args": "true" }] });
    hooks_not_an_object: Create, "hooks", [], |v| v["hooks"] = json!(["prestart"]);

    // resources (create)
    memory_limit_as_string: Create, "linux.resources.memory.limit", [], |v| resources(v, json!({ "memory": { "limit": "1G" } }));
    cpu_shares_negative: Create, "linux.resources.cpu.shares", [], |v| resources(v, json!({ "cpu": { "shares": -2 } }));
    device_rule_type_unknown: Create, "linux.resources.devices[0].type", [], |v| resources(v, json!({ "devices": [{ "allow": false, "type": "q", "access": "rwm" }] }));
    cgroups_path_escaping_the_hierarchy: Create, "linux.cgroupsPath", [], |v| v["linux"]["cgroupsPath"] = json!("/../../../../tmp/vsrun-escape");

    // seccomp and the rest of linux
    seccomp_architecture_unknown: Create, "linux.seccomp.architectures[0]", [], |v| seccomp(v, json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PDP11"] }));
    seccomp_rule_action_unknown: Create, "linux.seccomp.syscalls[0].action", [], |v| seccomp(v, json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["read"], "action": "SCMP_ACT_MAYBE" }] }));
    seccomp_operator_unknown: Create, "linux.seccomp.syscalls[0].args[0].op", [], |v| seccomp(v, json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_ALMOST" }] }] }));
    seccomp_notify_without_listener: Create, "linux.seccomp.listenerPath", [], |v| seccomp(v, json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }] }));
    seccomp_flag_unknown: Create, "linux.seccomp.flags[0]", [], |v| seccomp(v, json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"] }));
    personality_domain_unknown: Create, "linux.personality.domain", [], |v| v["linux"]["personality"] = json!({ "domain": "PDP11" });
    intel_rdt_requested: Create, "linux.intelRdt", [], |v| v["linux"]["intelRdt"] = json!({ "closID": "x", "l3CacheSchema": "L3:0=ff" });
    net_devices_requested: Create, "linux.netDevices", [], |v| v["linux"]["netDevices"] = json!({ "eth9": {} });
    memory_policy_mode_unknown: Create, "linux.memoryPolicy.mode", [], |v| v["linux"]["memoryPolicy"] = json!({ "mode": "MPOL_WHEREVER", "nodes": "0" });
}

/// Raw config.json text (not expressible as an edit of the default).
fn raw_case(field: &str, text: &str) {
    let rt = Runtime::new();
    let b = Bundle::new();
    fs::write(b.config_path(), text).expect("write config.json");
    let id = unique_id("raw");
    let o = rt.cmd(&["create", "--bundle", b.path_str(), &id]);
    let what = format!("config.json {:?}", &text[..text.len().min(40)]);
    assert_one_error_line(&o, field, &what);
    assert_left_nothing(&rt, b.path(), &id, &what);
}

fn raw_configs() -> Vec<(&'static str, String)> {
    let mut nested = String::new();
    for _ in 0..10_000 {
        nested.push_str("{\"a\":");
    }
    vec![
        ("json_a_string", "\"config\"".to_string()),
        ("json_deeply_nested", nested),
        ("json_utf8_bom", {
            let mut s = "\u{feff}".to_string();
            s.push_str(&default_config().to_string());
            s
        }),
        ("json_invalid_utf8", {
            let s = default_config().to_string();
            s.replacen("vsrun-test", "vsrun-\u{fffd}", 1)
        }),
        ("json_duplicate_key", {
            let s = default_config().to_string();
            s.replacen(
                "{",
                "{\"process\": {\"cwd\": \"/\", \"args\": [\"/probe\"]}, ",
                1,
            )
        }),
    ]
}

#[test]
fn json_a_string() {
    raw_case("config.json", &raw_configs()[0].1);
}

#[test]
fn json_deeply_nested() {
    raw_case("config.json", &raw_configs()[1].1);
}

#[test]
fn json_utf8_bom() {
    raw_case("config.json", &raw_configs()[2].1);
}

#[test]
fn json_duplicate_key() {
    raw_case("process", &raw_configs()[4].1);
}

#[test]
fn json_invalid_utf8() {
    let rt = Runtime::new();
    let b = Bundle::new();
    let mut bytes = default_config().to_string().into_bytes();
    let at = bytes
        .windows(10)
        .position(|w| w == b"vsrun-test")
        .expect("hostname");
    bytes[at + 6] = 0xff;
    fs::write(b.config_path(), &bytes).expect("write config.json");
    let id = unique_id("raw");
    let o = rt.cmd(&["create", "--bundle", b.path_str(), &id]);
    assert_one_error_line(&o, "config.json", "config.json with invalid UTF-8");
    assert_left_nothing(&rt, b.path(), &id, "config.json with invalid UTF-8");
}

// ---------------------------------------------------------------------------------------------
// process.json for `exec --process`, and resources for `update --resources`: against a
// running container, which must stay as it was

/// The container's processes (host pids rooted in the bundle), sorted.
fn processes_of(b: &Bundle) -> Vec<i32> {
    let mut v: Vec<i32> = processes_in(b.path())
        .into_iter()
        .filter(|p| pid_alive(*p))
        .collect();
    v.sort();
    v
}

/// Run `args` (with `{id}` replaced) against a running container and expect a clean failure:
/// one line naming `field`, the container still running with the same processes, --root as
/// before.
fn running_case(field: &str, args: &[&str], setup: impl FnOnce(&Path) -> Vec<String>) {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let before = processes_of(&b);
    let files = tempfile::Builder::new()
        .prefix("vsrun-bad-")
        .tempdir()
        .expect("temp dir");
    let extra = setup(files.path());
    let mut full: Vec<String> = args.iter().map(|a| a.replace("{id}", &d.id)).collect();
    full.extend(extra);
    let full: Vec<String> = full
        .into_iter()
        .map(|a| a.replace("{dir}", files.path().to_str().unwrap()))
        .collect();
    let argv: Vec<&str> = full.iter().map(String::as_str).collect();
    let o = rt.cmd(&argv);
    let what = format!("{argv:?}");
    assert_one_error_line_status(&o, refusal_status(&argv), field, &what);
    assert_eq!(
        rt.status(&d.id).as_deref(),
        Some("running"),
        "{what}: the container is no longer running"
    );
    assert_eq!(
        processes_of(&b),
        before,
        "{what}: the container's processes changed"
    );
    assert_eq!(
        root_entries(&rt),
        vec![d.id.clone()],
        "{what}: --root changed"
    );
    assert_success(&rt.delete_force(&d.id), "delete --force");
    assert_nothing_left(&rt, &d.id);
}

fn base_process() -> Value {
    let mut p = default_config()["process"].clone();
    p["args"] = json!(["/probe"]);
    p
}

fn process_case(field: &str, text: String) {
    running_case(
        field,
        &["exec", "--process", "{dir}/process.json", "{id}"],
        |dir| {
            fs::write(dir.join("process.json"), text).expect("write process.json");
            Vec::new()
        },
    );
}

fn resources_case(field: &str, text: String) {
    running_case(
        field,
        &["update", "--resources", "{dir}/resources.json", "{id}"],
        |dir| {
            fs::write(dir.join("resources.json"), text).expect("write resources.json");
            Vec::new()
        },
    );
}

/// Rows: name, expected field, the JSON text (an expression). `process_texts()` /
/// `resources_texts()` list them for the fuzz seeds.
macro_rules! text_cases {
    ($runner:ident, $list:ident, $($name:ident: $field:expr, $text:expr;)*) => {
        $(
            #[test]
            fn $name() {
                $runner($field, $text);
            }
        )*
        fn $list() -> Vec<(&'static str, String)> {
            vec![$((stringify!($name), $text)),*]
        }
    };
}

fn process_with(edit: fn(&mut Value)) -> String {
    let mut p = base_process();
    edit(&mut p);
    p.to_string()
}

text_cases! {
    process_case, process_texts,
    process_json_empty: "process.json", String::new();
    process_json_not_json: "process.json", "args: [/probe]".to_string();
    process_json_an_array: "process.json", "[\"/probe\"]".to_string();
    process_json_trailing_garbage: "process.json", format!("{} }}", base_process());
    process_json_without_args: "args", process_with(|p| { p.as_object_mut().unwrap().remove("args"); });
    process_json_args0_empty: "args[0]", process_with(|p| p["args"] = json!([""]));
    process_json_executable_missing: "args[0]", process_with(|p| p["args"] = json!(["/nonexistent"]));
    process_json_uid_as_string: "user.uid", process_with(|p| p["user"]["uid"] = json!("0"));
    process_json_rlimit_unknown: "rlimits[0].type", process_with(|p| p["rlimits"][0]["type"] = json!("RLIMIT_FOO"));
    process_json_rlimit_soft_above_hard: "rlimits[0]", process_with(|p| p["rlimits"][0]["soft"] = json!(4096));
    process_json_cwd_relative: "cwd", process_with(|p| p["cwd"] = json!("tmp"));
    process_json_env_without_equals: "env[1]", process_with(|p| p["env"][1] = json!("TERM"));
    process_json_oom_score_adj_out_of_range: "oomScoreAdj", process_with(|p| p["oomScoreAdj"] = json!(2000));
    process_json_umask_too_big: "umask", process_with(|p| p["user"]["umask"] = json!(0o1000));
    process_json_apparmor_without_apparmor: "apparmorProfile", process_with(|p| p["apparmorProfile"] = json!("docker-default"));
    process_json_no_new_privileges_as_string: "noNewPrivileges", process_with(|p| p["noNewPrivileges"] = json!("yes"));
}

text_cases! {
    resources_case, resources_texts,
    resources_json_empty: "resources", String::new();
    resources_json_not_json: "resources", "memory=1G".to_string();
    resources_json_an_array: "resources", "[]".to_string();
    resources_json_memory_limit_as_string: "memory.limit", json!({ "memory": { "limit": "1G" } }).to_string();
    resources_json_cpu_shares_negative: "cpu.shares", json!({ "cpu": { "shares": -1 } }).to_string();
    resources_json_pids_limit_as_string: "pids.limit", json!({ "pids": { "limit": "ten" } }).to_string();
    resources_json_device_rule_type_unknown: "devices[0].type", json!({ "devices": [{ "allow": true, "type": "q" }] }).to_string();
    resources_json_cpuset_out_of_range: "cpu", json!({ "cpu": { "cpus": "9999" } }).to_string();
    resources_json_unified_key_escaping: "unified", json!({ "unified": { "../../../cgroup.procs": "1" } }).to_string();
}

#[test]
fn resources_file_missing() {
    running_case(
        "--resources",
        &["update", "--resources", "{dir}/nonexistent.json", "{id}"],
        |_| Vec::new(),
    );
}

#[test]
fn process_file_missing() {
    running_case(
        "--process",
        &["exec", "--process", "{dir}/nonexistent.json", "{id}"],
        |_| Vec::new(),
    );
}

// ---------------------------------------------------------------------------------------------
// Command lines

#[test]
fn exec_without_a_command() {
    running_case("exec", &["exec", "{id}"], |_| Vec::new());
}

#[test]
fn exec_user_not_a_number() {
    running_case(
        "--user",
        &["exec", "--user", "nobody", "{id}", "/probe"],
        |_| Vec::new(),
    );
}

#[test]
fn exec_terminal_detached_without_console_socket() {
    running_case("terminal", &["exec", "-t", "-d", "{id}", "/probe"], |_| {
        Vec::new()
    });
}

#[test]
fn update_memory_not_a_size() {
    running_case("--memory", &["update", "--memory", "12Q", "{id}"], |_| {
        Vec::new()
    });
}

#[test]
fn update_pids_limit_not_a_number() {
    running_case(
        "--pids-limit",
        &["update", "--pids-limit", "many", "{id}"],
        |_| Vec::new(),
    );
}

#[test]
fn kill_signal_out_of_range() {
    running_case("65", &["kill", "{id}", "65"], |_| Vec::new());
}

#[test]
fn kill_realtime_signal_out_of_range() {
    running_case("RTMIN+99", &["kill", "{id}", "RTMIN+99"], |_| Vec::new());
}

#[test]
fn delete_running_without_force() {
    running_case("--force", &["delete", "{id}"], |_| Vec::new());
}

#[test]
fn start_of_a_running_container() {
    running_case("running", &["start", "{id}"], |_| Vec::new());
}

#[test]
fn ps_unknown_format() {
    running_case("yaml", &["ps", "--format", "yaml", "{id}"], |_| Vec::new());
}

/// A create that fails on a flag, with the bundle itself fine.
fn create_flag_case(needle: &str, flags: &[&str], edit: fn(&mut Value)) {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    edit(&mut b.config);
    b.write();
    let id = unique_id("flag");
    let o = rt.create_with(&b, &id, flags);
    let what = format!("create {flags:?}");
    assert_one_error_line(&o, needle, &what);
    assert_left_nothing(&rt, b.path(), &id, &what);
}

#[test]
fn create_pid_file_in_a_missing_dir() {
    create_flag_case(
        "--pid-file",
        &["--pid-file", "/nonexistent/dir/pid"],
        |_| {},
    );
}

#[test]
fn create_console_socket_missing() {
    create_flag_case(
        "--console-socket",
        &["--console-socket", "/nonexistent/console.sock"],
        |v| v["process"]["terminal"] = json!(true),
    );
}

#[test]
fn create_preserve_fds_not_a_number() {
    create_flag_case("--preserve-fds", &["--preserve-fds", "three"], |_| {});
}

#[test]
fn create_unknown_flag() {
    create_flag_case("--frobnicate", &["--frobnicate"], |_| {});
}

fn cli_case(needle: &str, args: &[&str]) {
    let rt = Runtime::new();
    let o = rt.cmd(args);
    assert_one_error_line(&o, needle, &format!("{args:?}"));
    assert!(root_entries(&rt).is_empty(), "{:?}", root_entries(&rt));
}

#[test]
fn create_without_an_id() {
    cli_case("ID", &["create", "--bundle", "/nonexistent"]);
}

#[test]
fn create_with_a_missing_bundle() {
    cli_case(
        "config.json",
        &["create", "--bundle", "/nonexistent/bundle", "noid"],
    );
}

#[test]
fn unknown_subcommand() {
    cli_case("frobnicate", &["frobnicate"]);
}

#[test]
fn list_unknown_format() {
    cli_case("yaml", &["list", "--format", "yaml"]);
}

#[test]
fn events_interval_not_a_duration() {
    let rt = Runtime::new();
    let id = unique_id("nosuch");
    let o = rt.cmd(&["events", "--interval", "soon", &id]);
    assert_one_error_line(&o, "interval", "events --interval soon");
}

// ---------------------------------------------------------------------------------------------
// Fuzz seeds

/// With VSRUN_FUZZ_SEEDS=DIR, write every case's JSON to DIR (cfg-*, proc-*, res-*, raw-*).
#[test]
fn dump_fuzz_seeds() {
    let Some(dir) = std::env::var_os("VSRUN_FUZZ_SEEDS") else {
        return;
    };
    let dir = PathBuf::from(dir);
    fs::create_dir_all(&dir).expect("create the seeds dir");
    let mut n = 0;
    for (name, edit) in config_edits() {
        let mut v = default_config();
        edit(&mut v);
        fs::write(dir.join(format!("cfg-{name}.json")), v.to_string()).expect("write seed");
        n += 1;
    }
    for (name, text) in process_texts() {
        fs::write(dir.join(format!("proc-{name}.json")), text).expect("write seed");
        n += 1;
    }
    for (name, text) in resources_texts() {
        fs::write(dir.join(format!("res-{name}.json")), text).expect("write seed");
        n += 1;
    }
    for (name, text) in raw_configs() {
        if text.len() < 4096 {
            fs::write(dir.join(format!("raw-{name}.json")), text).expect("write seed");
            n += 1;
        }
    }
    eprintln!("wrote {n} fuzz seeds to {}", dir.display());
}
