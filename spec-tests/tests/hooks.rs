//! The six hook points (runtime-spec config.md "POSIX-platform Hooks"): each test checks when a
//! hook runs, in which namespace, and what it reads on stdin; failing hooks fail the operation
//! and leave nothing, except poststart/poststop, whose failures are warnings.

use serde_json::{json, Value};
use spec_tests::*;
use std::path::{Path, PathBuf};

/// A hook that saves its stdin, its mount namespace and (optionally) more shell output into
/// `<dir>/<name>.*` on the host. /bin/sh is the host's for runtime-namespace hooks.
fn recorder(dir: &Path, name: &str, extra: &str) -> Value {
    let d = dir.display();
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("cat > {d}/{name}.json; readlink /proc/self/ns/mnt > {d}/{name}.ns; {extra}")],
        "env": ["HOOKVAR=1"],
        "timeout": 10
    })
}

fn read_json(p: PathBuf) -> Value {
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", p.display()))
}

fn ns_of(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.ns")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn host_mnt_ns() -> String {
    std::fs::read_link("/proc/self/ns/mnt")
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn prestart_and_create_runtime_run_in_the_runtime_namespace_before_the_program() {
    let rt = Runtime::new();
    let log = tempfile::tempdir().unwrap();
    let mut b = Bundle::new();
    // While the hook runs, the init must exist and must not be the user program yet.
    let check = "pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/' $0.json); tr '\\0' ' ' < /proc/$pid/cmdline > $0.cmdline";
    for kind in ["prestart", "createRuntime"] {
        let mut h = recorder(log.path(), kind, check);
        h["args"][2] = json!(h["args"][2]
            .as_str()
            .unwrap()
            .replace("$0", &format!("{}/{kind}", log.path().display())));
        b.config["hooks"][kind] = json!([h]);
    }
    let id = unique_id("hook-pre");
    assert_success(&rt.create(&b, &id), "create");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    for kind in ["prestart", "createRuntime"] {
        let st = read_json(log.path().join(format!("{kind}.json")));
        assert_eq!(st["id"], id.as_str());
        assert_eq!(st["status"], "creating");
        assert_eq!(st["pid"], pid);
        assert_eq!(st["bundle"], b.path_str());
        assert_eq!(
            ns_of(log.path(), kind),
            host_mnt_ns(),
            "{kind} runs in the runtime mount ns"
        );
        let cmdline = std::fs::read_to_string(log.path().join(format!("{kind}.cmdline"))).unwrap();
        assert!(
            !cmdline.contains("/probe"),
            "{kind} ran after exec: {cmdline}"
        );
    }
}

#[test]
fn create_container_runs_in_the_container_mount_namespace_before_pivot_root() {
    let rt = Runtime::new();
    let log = tempfile::tempdir().unwrap();
    let mut b = Bundle::new();
    // Writing to a host path proves it ran before pivot_root, in the container's mount ns.
    b.config["hooks"]["createContainer"] = json!([recorder(log.path(), "cc", "")]);
    let id = unique_id("hook-cc");
    assert_success(&rt.create(&b, &id), "create");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let st = read_json(log.path().join("cc.json"));
    assert_eq!(st["status"], "creating");
    assert_eq!(st["pid"], pid);
    let init_ns = std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .unwrap()
        .display()
        .to_string();
    assert_eq!(ns_of(log.path(), "cc"), init_ns);
    assert_ne!(init_ns, host_mnt_ns());
}

#[test]
fn start_container_runs_inside_the_container_only_after_start() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "sleep", "30"]);
    // Resolved and run inside the container (after pivot_root): /startlog is in the rootfs.
    b.config["hooks"]["startContainer"] = json!([{
        "path": "/bin/sh", "args": ["sh", "-c", "cat > /startlog"]
    }]);
    let id = unique_id("hook-sc");
    assert_success(&rt.create(&b, &id), "create");
    let log = b.rootfs().join("startlog");
    assert!(!log.exists(), "startContainer ran before start");
    rt.start(&id);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !log.exists() || std::fs::read_to_string(&log).unwrap_or_default().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "startContainer never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let st: Value = serde_json::from_str(&std::fs::read_to_string(&log).unwrap()).unwrap();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
}

#[test]
fn poststart_runs_after_start_with_running_state() {
    let rt = Runtime::new();
    let log = tempfile::tempdir().unwrap();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "sleep", "30"]);
    b.config["hooks"]["poststart"] = json!([recorder(log.path(), "ps", "")]);
    let id = unique_id("hook-ps");
    assert_success(&rt.create(&b, &id), "create");
    assert!(
        !log.path().join("ps.json").exists(),
        "poststart ran at create"
    );
    rt.start(&id);
    let st = read_json(log.path().join("ps.json"));
    assert_eq!(st["status"], "running");
    assert_eq!(ns_of(log.path(), "ps"), host_mnt_ns());
}

#[test]
fn poststop_runs_on_delete_with_stopped_state() {
    let rt = Runtime::new();
    let log = tempfile::tempdir().unwrap();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "sleep", "30"]);
    b.config["hooks"]["poststop"] = json!([recorder(log.path(), "stop", "")]);
    let id = unique_id("hook-stop");
    assert_success(&rt.run_detached(&b, &id), "run -d");
    assert!(!log.path().join("stop.json").exists());
    assert_success(&rt.cmd(&["delete", "--force", &id]), "delete --force");
    let st = read_json(log.path().join("stop.json"));
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["id"], id.as_str());
}

#[test]
fn hooks_get_their_own_env_and_argv0() {
    let rt = Runtime::new();
    let log = tempfile::tempdir().unwrap();
    let mut b = Bundle::new();
    // docker's shape: path is one program, args[0] another name (libnetwork-setkey).
    b.config["hooks"]["prestart"] = json!([{
        "path": "/bin/sh",
        "args": ["libnetwork-setkey", "-c", format!("echo \"$0 $HOOKVAR ${{HOME:-unset}}\" > {}/env", log.path().display())],
        "env": ["HOOKVAR=42"]
    }]);
    let id = unique_id("hook-env");
    assert_success(&rt.create(&b, &id), "create");
    let seen = std::fs::read_to_string(log.path().join("env")).unwrap();
    assert_eq!(seen.trim(), "libnetwork-setkey 42 unset");
}

#[test]
fn failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["hooks"]["createRuntime"] =
        json!([{"path": "/bin/sh", "args": ["sh", "-c", "echo no-network >&2; exit 7"]}]);
    let id = unique_id("hook-fail");
    let out = rt.create(&b, &id);
    let msg = assert_fails(&out, "create with a failing createRuntime hook");
    assert!(msg.contains("hooks.createRuntime[0]"), "{msg}");
    assert!(msg.contains("no-network"), "{msg}");
    assert_nothing_left(&rt, &id);
    assert!(
        !Path::new(&format!("/sys/fs/cgroup/pids/vsrun/{id}")).exists(),
        "cgroup left"
    );
}

#[test]
fn failing_create_container_hook_fails_run_and_leaves_nothing() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["hooks"]["createContainer"] = json!([{"path": "/bin/false"}]);
    let id = unique_id("hook-ccfail");
    let msg = assert_fails(&rt.run(&b, &id), "run with a failing createContainer hook");
    assert!(msg.contains("hooks.createContainer[0]"), "{msg}");
    assert_nothing_left(&rt, &id);
}

#[test]
fn hook_past_its_timeout_is_killed_and_fails_the_operation() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["hooks"]["prestart"] =
        json!([{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]);
    let id = unique_id("hook-timeout");
    let msg = assert_fails(&rt.create(&b, &id), "create with a hanging prestart hook");
    assert!(
        msg.contains("hooks.prestart[0]") && msg.contains("timed out"),
        "{msg}"
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn failing_poststart_hook_is_only_a_warning() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "exit", "0"]);
    b.config["hooks"]["poststart"] = json!([{"path": "/bin/false"}]);
    let id = unique_id("hook-warn");
    let out = rt.run(&b, &id);
    assert_success(&out, "run with a failing poststart hook");
    assert!(
        stderr_str(&out).contains("hooks.poststart[0]"),
        "warning expected: {}",
        stderr_str(&out)
    );
}

#[test]
fn hook_without_env_inherits_the_runtime_environment_like_runc() {
    let rt = Runtime::new();
    let log = tempfile::tempdir().unwrap();
    let mut b = Bundle::new();
    b.config["hooks"]["prestart"] = json!([{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo \"${{VSRUN_HOOK_MARK:-missing}}\" > {}/env", log.path().display())]
    }]);
    let id = unique_id("hook-noenv");
    b.write();
    let o = rt.cmd_with(&["create", "--bundle", b.path_str(), &id], |c| {
        c.env("VSRUN_HOOK_MARK", "inherited");
    });
    assert_success(&o, "create");
    let seen = std::fs::read_to_string(log.path().join("env")).unwrap();
    assert_eq!(seen.trim(), "inherited");
}
