//! `vsrun features` (runtime-spec features.md): engines read it to decide what they may send, so
//! it must list everything vsrun does and nothing it does not. Each test takes the advertised
//! list from the real binary and makes a container use every entry of it, batched so the
//! whole file stays fast: an entry the runtime cannot apply fails its container.

use serde_json::{json, Value};
use spec_tests::*;
use std::fs;
use std::path::Path;

fn features(rt: &Runtime) -> Value {
    let o = rt.cmd(&["features"]);
    assert_success(&o, "features");
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", output_text(&o)))
}

fn names(v: &Value, what: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("features: {what} is not a list: {v}"))
        .iter()
        .map(|s| s.as_str().expect("a name").to_string())
        .collect()
}

/// Every key of `a`, as dotted paths, objects only (lists and values are leaves).
fn key_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Some(m) = v.as_object() {
        for (k, sub) in m {
            let p = format!("{prefix}{k}");
            out.push(p.clone());
            if k != "annotations" {
                key_paths(sub, &format!("{p}."), out);
            }
        }
    }
}

#[test]
fn features_has_runcs_shape_and_lists_hooks_and_cgroup_drivers() {
    let rt = Runtime::new();
    let f = features(&rt);
    assert_eq!(
        names(&f["hooks"], "hooks"),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "features.hooks"
    );
    // features.md: compiled-in support, whatever the host mounts.
    let cg = &f["linux"]["cgroup"];
    for k in ["v1", "v2", "systemd"] {
        assert_eq!(cg[k], true, "features.linux.cgroup.{k}: {cg}");
    }
    // What this host has is what vsrun runs on here: the container's cgroup is made on it.
    let hybrid_or_v1 = host_mounts().iter().any(|m| m.fs_type == "cgroup");
    let v2 = host_mounts().iter().any(|m| m.fs_type == "cgroup2");
    assert!(hybrid_or_v1 || v2, "the host has no cgroup hierarchy");
    let mut ours = Vec::new();
    key_paths(&f, "", &mut ours);
    assert!(
        !serde_json::to_string(&f).unwrap().contains("null"),
        "features prints nulls: {f}"
    );
    if Path::new("/usr/bin/runc").exists() {
        let o = std::process::Command::new("/usr/bin/runc")
            .arg("features")
            .output()
            .expect("run runc features");
        let theirs: Value = serde_json::from_slice(&o.stdout).expect("runc features JSON");
        let mut want = Vec::new();
        key_paths(&theirs, "", &mut want);
        let missing: Vec<&String> = want.iter().filter(|k| !ours.contains(k)).collect();
        assert!(
            missing.is_empty(),
            "keys runc 1.1.5's features has and vsrun's lacks: {missing:?}"
        );
    }
}

#[test]
fn every_advertised_hook_kind_runs() {
    let rt = Runtime::new();
    let kinds = names(&features(&rt)["hooks"], "hooks");
    assert_eq!(kinds.len(), 6, "features.hooks: {kinds:?}");
    let mut b = Bundle::new();
    b.set_args(&["true"]);
    let mut hooks = serde_json::Map::new();
    let mut marks = Vec::new();
    for kind in &kinds {
        // startContainer runs in the container after pivot_root: its program and its file
        // are the container's; every other point still sees the host's paths.
        let (file, host_file) = if kind == "startContainer" {
            (
                format!("/hook-{kind}"),
                b.rootfs().join(format!("hook-{kind}")),
            )
        } else {
            let p = b.path().join(format!("hook-{kind}"));
            (p.to_str().unwrap().to_string(), p)
        };
        let hook = json!([{ "path": "/bin/sh", "args": ["sh", "-c", format!("cat > {file}")] }]);
        hooks.insert(kind.clone(), hook);
        marks.push((kind.clone(), host_file));
    }
    b.config["hooks"] = Value::Object(hooks);
    let id = unique_id("features-hooks");
    assert_success(&rt.create(&b, &id), "create with every hook kind");
    rt.start(&id);
    rt.wait_status(&id, "stopped", std::time::Duration::from_secs(10));
    assert_success(&rt.cmd(&["delete", &id]), "delete");
    for (kind, file) in marks {
        let text = fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("hook {kind} did not run ({}: {e})", file.display()));
        let st: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("hook {kind}: state on stdin: {e}: {text:?}"));
        assert_eq!(st["id"], id.as_str(), "hook {kind}: state {st}");
    }
    assert_nothing_left(&rt, &id);
}

/// The mount flag an option leaves visible in /proc/self/mountinfo (per-mount options, super
/// options or optional fields), where it leaves one.
fn visible_as(option: &str) -> Option<&'static str> {
    let base = match option {
        "rro" => "ro",
        "rshared" => "shared",
        "runbindable" => "unbindable",
        o if o.starts_with("rno") => &o[1..],
        o => o,
    };
    Some(match base {
        "ro" => " ro",
        "nosuid" => "nosuid",
        "nodev" => "nodev",
        "noexec" => "noexec",
        "noatime" => "noatime",
        "nodiratime" => "nodiratime",
        "nosymfollow" => "nosymfollow",
        "sync" => "sync",
        "dirsync" => "dirsync",
        "lazytime" => "lazytime",
        "shared" => "shared:",
        "unbindable" => "unbindable",
        "idmap" | "ridmap" => "idmapped",
        _ => return None,
    })
}

fn on_tmpfs(p: &std::path::Path) -> bool {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statfs on a valid path into a zeroed struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    r == 0 && st.f_type == libc::TMPFS_MAGIC
}

fn kernel_before(major: u32, minor: u32) -> bool {
    let r = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut v = r
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|x| x.parse::<u32>().ok());
    (v.next().unwrap_or(0), v.next().unwrap_or(0)) < (major, minor)
}

#[test]
fn every_advertised_mount_option_and_capability_works_in_one_container() {
    let rt = Runtime::new();
    let f = features(&rt);
    let options = names(&f["mountOptions"], "mountOptions");
    let caps = names(&f["linux"]["capabilities"], "linux.capabilities");
    let mut b = Bundle::new();
    let src = b.path().join("bind-source");
    fs::create_dir(&src).unwrap();
    // tmpfs can be idmapped from Linux 6.3 on; the v2 VM lane's 6.1 keeps bundles on tmpfs,
    // where vsrun refuses idmap by name (tested in idmap.rs).
    let idmap_here = !(on_tmpfs(&src) && kernel_before(6, 3));
    for o in &options {
        if (o == "idmap" || o == "ridmap") && !idmap_here {
            eprintln!("note: {o} not mounted: tmpfs on a kernel before 6.3 cannot be idmapped");
            continue;
        }
        add_mount(&mut b, option_mount(o, &src));
    }
    // Bounding only: a runtime keeps what it has and cannot grant more, and the caller's own
    // bounding set may lack some (this VM's lacks CAP_SYS_RESOURCE).
    b.config["process"]["capabilities"] = json!({ "bounding": caps });
    b.set_args(&[
        "sh",
        "-c",
        "grep CapBnd /proc/self/status; cat /proc/self/mountinfo",
    ]);
    let id = unique_id("features-mounts");
    let o = rt.run(&b, &id);
    assert_success(
        &o,
        "run with a mount per advertised option and every capability",
    );
    let out = stdout_str(&o);
    for o in &options {
        if (o == "idmap" || o == "ridmap") && !idmap_here {
            continue;
        }
        let dest = format!(" /o/{o} ");
        let line = out
            .lines()
            .find(|l| l.contains(&dest))
            .unwrap_or_else(|| panic!("mount option {o}: nothing mounted on /o/{o}:\n{out}"));
        if let Some(flag) = visible_as(o) {
            assert!(
                line.contains(flag),
                "mount option {o}: no {flag:?} in {line}"
            );
        }
    }
    caps_are_the_kernels_and_kept(&caps, &out);
    assert_nothing_left(&rt, &id);
}

/// A mount at /o/OPTION that uses OPTION.
fn option_mount(o: &str, src: &Path) -> Value {
    let dest = format!("/o/{o}");
    match o {
        "bind" | "rbind" => json!({ "destination": dest, "type": "bind",
            "source": src, "options": [o] }),
        // A remount changes an existing mount: the bind made by the same entry.
        "remount" => json!({ "destination": dest, "type": "bind",
            "source": src, "options": ["bind", o] }),
        // An idmapped mount is a bind mount with a mapping (or the container's).
        "idmap" | "ridmap" => {
            let map = json!([{ "containerID": 0, "hostID": 1000, "size": 1 }]);
            json!({ "destination": dest, "type": "bind", "source": src,
                "options": ["rbind", o], "uidMappings": map, "gidMappings": map })
        }
        _ => json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs",
            "options": [o] }),
    }
}

/// One name per capability the kernel knows, and the container (its CapBnd line in `out`)
/// keeps every one of them that its caller holds.
fn caps_are_the_kernels_and_kept(caps: &[String], out: &str) {
    let last: usize = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        caps.len(),
        last + 1,
        "features.linux.capabilities: {caps:?}"
    );
    let host_bnd = proc_status_field(std::process::id() as i32, "CapBnd").unwrap();
    let line = out
        .lines()
        .find(|l| l.starts_with("CapBnd"))
        .unwrap_or_else(|| panic!("no CapBnd in the container:\n{out}"));
    assert_eq!(
        line.split_whitespace().nth(1),
        Some(host_bnd.trim()),
        "CapBnd inside vs the caller's bounding set"
    );
}

#[test]
fn every_advertised_namespace_is_new() {
    let rt = Runtime::new();
    let kinds = names(&features(&rt)["linux"]["namespaces"], "linux.namespaces");
    let mut b = Bundle::new();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for k in &kinds {
        b.set_namespace(k, None);
    }
    if kinds.iter().any(|k| k == "user") {
        b.config["linux"]["uidMappings"] =
            json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
        b.config["linux"]["gidMappings"] =
            json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    }
    let d = rt.probe_detached(&mut b);
    for k in &kinds {
        let proc_name = match k.as_str() {
            "mount" => "mnt",
            "network" => "net",
            other => other,
        };
        assert_ne!(
            ns_inode(&d.pid.to_string(), proc_name),
            ns_inode("self", proc_name),
            "advertised namespace {k}: the container is still in the host's"
        );
    }
    assert_success(&rt.delete_force(&d.id), "delete --force");
    assert_nothing_left(&rt, &d.id);
}

#[test]
fn every_advertised_seccomp_action_operator_arch_and_flag_loads() {
    let rt = Runtime::new();
    let f = features(&rt);
    let s = &f["linux"]["seccomp"];
    assert_eq!(s["enabled"], true, "{s}");
    let actions = names(&s["actions"], "seccomp.actions");
    let operators = names(&s["operators"], "seccomp.operators");
    let archs = names(&s["archs"], "seccomp.archs");
    let flags = names(&s["supportedFlags"], "seccomp.supportedFlags");
    let mut seccomp = json!({ "defaultAction": "SCMP_ACT_ALLOW", "architectures": archs });
    seccomp["syscalls"] = Value::Array(rules_for(&actions, &operators));
    let listener = tempfile::tempdir().unwrap();
    let notify = actions.iter().any(|a| a == "SCMP_ACT_NOTIFY");
    let sock = listener.path().join("agent.sock");
    let _agent = notify.then(|| {
        seccomp["listenerPath"] = sock.to_str().unwrap().into();
        hold_listeners(&sock)
    });
    let mut b = Bundle::new();
    b.set_args(&["sh", "-c", "echo filtered; grep Seccomp: /proc/self/status"]);
    // The kernel refuses TSYNC together with a listener; each flag loads once without NOTIFY.
    for flag in &flags {
        let mut s = seccomp.clone();
        s["flags"] = json!([flag]);
        if flag == "SECCOMP_FILTER_FLAG_TSYNC" && notify {
            s["syscalls"]
                .as_array_mut()
                .unwrap()
                .retain(|r| r["action"] != "SCMP_ACT_NOTIFY");
            s.as_object_mut().unwrap().remove("listenerPath");
        }
        b.config["linux"]["seccomp"] = s;
        let id = unique_id("features-seccomp");
        let o = rt.run(&b, &id);
        assert_success(
            &o,
            &format!("run with every action and operator, flag {flag}"),
        );
        let out = stdout_str(&o);
        assert!(out.contains("filtered"), "{out}");
        assert!(
            out.contains("Seccomp:\t2"),
            "flag {flag}: no filter loaded:\n{out}"
        );
        assert_nothing_left(&rt, &id);
    }
}

/// A seccomp agent that holds every listener fd until the test ends: the container never
/// traps into it.
fn hold_listeners(sock: &Path) -> std::thread::JoinHandle<()> {
    let l = std::os::unix::net::UnixListener::bind(sock).expect("bind the agent socket");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming() {
            held.push(c);
        }
    })
}

/// One rule per action and per operator, each on a syscall the container's sh never makes.
fn rules_for(actions: &[String], operators: &[String]) -> Vec<Value> {
    let unused = [
        "acct",
        "add_key",
        "bpf",
        "delete_module",
        "fanotify_init",
        "init_module",
        "kexec_load",
        "lookup_dcookie",
        "mbind",
        "move_pages",
        "name_to_handle_at",
        "nfsservctl",
        "open_by_handle_at",
        "perf_event_open",
        "pivot_root",
        "quotactl",
        "swapon",
        "swapoff",
        "syslog",
        "userfaultfd",
    ];
    let mut calls = unused.iter();
    let mut rules = Vec::new();
    for a in actions {
        let name = calls.next().expect("enough unused syscalls");
        let mut r = json!({ "names": [name], "action": a });
        if a == "SCMP_ACT_ERRNO" || a == "SCMP_ACT_TRACE" {
            r["errnoRet"] = 1.into();
        }
        rules.push(r);
    }
    for op in operators {
        let name = calls.next().expect("enough unused syscalls");
        let arg = if op == "SCMP_CMP_MASKED_EQ" {
            json!({ "index": 0, "value": 1, "valueTwo": 1, "op": op })
        } else {
            json!({ "index": 0, "value": 1, "op": op })
        };
        rules.push(json!({ "names": [name], "action": "SCMP_ACT_ERRNO", "args": [arg] }));
    }
    rules
}

/// Every `org.vsrun.*` annotation `features` advertises is one vsrun reads: a malformed value
/// fails create with one line naming it and leaves nothing, and `org.vsrun.name` (free text)
/// shows in `vsrun stat`. The two informational keys (version, commit) are values, not
/// settings. A new annotation that is advertised but not handled here fails this test.
#[test]
fn every_advertised_vsrun_annotation_is_read() {
    let rt = Runtime::new();
    let f = features(&rt);
    let advertised: Vec<String> = f["annotations"]
        .as_object()
        .expect("features.annotations")
        .keys()
        .filter(|k| {
            k.starts_with("org.vsrun.")
                && !["org.vsrun.version", "org.vsrun.commit"].contains(&k.as_str())
        })
        .cloned()
        .collect();
    assert!(
        !advertised.is_empty(),
        "no org.vsrun annotation advertised: {f}"
    );
    for key in &advertised {
        let mut b = Bundle::new();
        match key.as_str() {
            "org.vsrun.bind-ip" | "org.vsrun.disk-limit" => {
                b.config["annotations"] = json!({ key.as_str(): "not-a-value" });
                expect_clean_failure(&rt, &b, Via::Create, &[], key);
            }
            "org.vsrun.disk-inodes" => {
                // inodes only go with a disk limit; the pair with a malformed count
                b.config["annotations"] =
                    json!({ "org.vsrun.disk-limit": "1G", key.as_str(): "many" });
                expect_clean_failure(&rt, &b, Via::Create, &[], key);
            }
            "org.vsrun.name" => {
                b.config["annotations"] = json!({ key.as_str(): "named-by-annotation" });
                b.set_args(&["sleep", "30"]);
                let id = unique_id("named");
                assert_success(&rt.run_detached(&b, &id), "run -d with org.vsrun.name");
                let o = rt.cmd(&["stat", "--format", "json"]);
                assert_success(&o, "stat --format json");
                assert!(
                    stdout_str(&o).contains("named-by-annotation"),
                    "vsrun stat does not show org.vsrun.name: {}",
                    stdout_str(&o)
                );
                finish(&rt, &id);
            }
            other => panic!("features advertises {other}, which this test does not exercise"),
        }
    }
}
