//! linux.seccomp (runtime-spec config-linux.md "Seccomp"): the container process runs under
//! the configured filter (mode 2 in /proc/self/status), each action does what the spec and
//! runc do, a bad profile fails `create` naming its field, and SCMP_ACT_NOTIFY hands the
//! listener fd with the container process state to the agent at listenerPath. The tests skip
//! (with a note) until `vsrun features` reports linux.seccomp as enabled.

use serde_json::{json, Value};
use spec_tests::*;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

fn supported(rt: &Runtime) -> bool {
    let o = rt.cmd(&["features"]);
    let ok = o.status.success()
        && serde_json::from_slice::<Value>(&o.stdout)
            .map(|v| v["linux"]["seccomp"]["enabled"] == true)
            .unwrap_or(false);
    // features is generated from vsrun's own tables: not listing it is a failure, not a skip
    // (only a reference runtime may lack it).
    assert!(
        ok || reference_mode(),
        "`vsrun features` does not report linux.seccomp as enabled"
    );
    ok
}

/// docker's default profile (its `linux.seccomp`, as dockerd writes it for a default
/// container), kept next to vsrun's seccomp unit tests.
fn docker_profile() -> Value {
    let p = workspace_root().join("runtime/src/security/seccomp/testdata/docker.json");
    serde_json::from_slice(&std::fs::read(&p).expect("read docker profile")).expect("JSON")
}

/// A profile that lets everything through but `rule`.
fn allow_but(rule: Value) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [rule]
    })
}

/// What the probe's `readlink` reports: the errno of readlink(2), or None if it worked.
fn readlink_errno(rt: &Runtime, b: &mut Bundle) -> Option<i64> {
    let r = rt.probe(b, &["readlink", "/proc/self/exe"]);
    if r["ok"] == true {
        None
    } else {
        Some(
            r["errno"]
                .as_i64()
                .unwrap_or_else(|| panic!("no errno: {r}")),
        )
    }
}

const READLINK: [&str; 2] = ["readlink", "readlinkat"];

#[test]
fn docker_default_profile_loads_and_the_process_runs_under_it() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let mut b = Bundle::new();
    b.config["linux"]["seccomp"] = docker_profile();
    let seen = rt.probe(&mut b, &[]);
    assert_eq!(
        seen["seccomp"], 2,
        "Seccomp: in /proc/self/status (2 = filter)"
    );
    assert_eq!(seen["no_new_privs"], true);
    // Ordinary syscalls work under it.
    assert_eq!(readlink_errno(&rt, &mut b), None);
}

#[test]
fn seccomp_is_loaded_without_no_new_privileges() {
    // The init then loads the filter while it still has CAP_SYS_ADMIN, as runc does.
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let mut b = Bundle::new();
    b.config["linux"]["seccomp"] = docker_profile();
    b.config["process"]["noNewPrivileges"] = false.into();
    let seen = rt.probe(&mut b, &[]);
    assert_eq!(seen["seccomp"], 2);
    assert_eq!(seen["NoNewPrivs"], 0);
}

#[test]
fn seccomp_is_loaded_for_a_non_root_user_with_and_without_no_new_privileges() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let mut b = Bundle::new();
    b.config["linux"]["seccomp"] = docker_profile();
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    for nnp in [true, false] {
        b.config["process"]["noNewPrivileges"] = nnp.into();
        let seen = rt.probe(&mut b, &[]);
        assert_eq!(seen["seccomp"], 2, "noNewPrivileges={nnp}");
        assert_eq!(seen["uid"], 1000, "noNewPrivileges={nnp}: {seen}");
    }
}

#[test]
fn create_then_start_runs_under_the_filter() {
    // The init loads the filter before "ready" and then still waits on exec.fifo and
    // execs: docker's profile allows both.
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let mut b = Bundle::new();
    b.config["linux"]["seccomp"] = docker_profile();
    let id = unique_id("seccomp-start");
    assert_success(&rt.create(&b, &id), "create");
    rt.start(&id);
    rt.wait_status(&id, "stopped", std::time::Duration::from_secs(20));
    let (out, err) = rt.container_output(&id);
    let seen: Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("probe JSON ({e}): {out}{err}"));
    assert_eq!(seen["seccomp"], 2);
    assert_success(&rt.delete_force(&id), "delete");
    assert_nothing_left(&rt, &id);
}

#[test]
fn exec_runs_under_the_containers_filter() {
    // runc loads the container's linux.seccomp into every exec'd process too.
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let mut b = Bundle::new();
    b.config["linux"]["seccomp"] =
        allow_but(json!({ "names": READLINK, "action": "SCMP_ACT_ERRNO", "errnoRet": 45 }));
    let d = rt.probe_detached(&mut b);
    assert_eq!(d.seen["seccomp"], 2);
    let o = rt.cmd(&["exec", &d.id, "/probe", "readlink", "/proc/self/exe"]);
    assert_success(&o, "exec");
    let r: Value = serde_json::from_slice(&o.stdout).expect("probe JSON");
    assert_eq!(r["errno"], 45, "exec'd process: {r}");
    assert_success(&rt.delete_force(&d.id), "delete");
    assert_nothing_left(&rt, &d.id);
}

#[test]
fn no_seccomp_config_means_no_filter() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let mut b = Bundle::new();
    let seen = rt.probe(&mut b, &[]);
    assert_eq!(seen["seccomp"], 0);
}

#[test]
fn denied_syscall_returns_the_configured_errno() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let mut b = Bundle::new();
    b.config["linux"]["seccomp"] =
        allow_but(json!({ "names": READLINK, "action": "SCMP_ACT_ERRNO", "errnoRet": 42 }));
    assert_eq!(readlink_errno(&rt, &mut b), Some(42));
    // Without errnoRet: EPERM.
    b.config["linux"]["seccomp"] =
        allow_but(json!({ "names": READLINK, "action": "SCMP_ACT_ERRNO" }));
    assert_eq!(readlink_errno(&rt, &mut b), Some(libc::EPERM.into()));
}

#[test]
fn default_errno_ret_is_returned_for_syscalls_the_profile_does_not_allow() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let mut b = Bundle::new();
    let mut p = docker_profile();
    for rule in p["syscalls"].as_array_mut().expect("syscalls") {
        if let Some(names) = rule["names"].as_array_mut() {
            names.retain(|n| !READLINK.contains(&n.as_str().unwrap_or_default()));
        }
    }
    p["defaultErrnoRet"] = 77.into();
    b.config["linux"]["seccomp"] = p;
    assert_eq!(readlink_errno(&rt, &mut b), Some(77));
}

/// readlink(2)'s buffer size is argument 2 of readlink and 3 of readlinkat; the probe passes a
/// small non-zero size.
fn deny_readlink_if_size(op: &str, value: u64) -> Value {
    let arg = |index: u32| json!([{ "index": index, "value": value, "op": op }]);
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["readlink"], "action": "SCMP_ACT_ERRNO", "errnoRet": 43, "args": arg(2) },
            { "names": ["readlinkat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 43, "args": arg(3) }
        ]
    })
}

#[test]
fn argument_rules_compare_the_arguments() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let mut b = Bundle::new();
    b.config["linux"]["seccomp"] = deny_readlink_if_size("SCMP_CMP_GT", 0);
    assert_eq!(readlink_errno(&rt, &mut b), Some(43), "size > 0");
    b.config["linux"]["seccomp"] = deny_readlink_if_size("SCMP_CMP_GT", 1 << 40);
    assert_eq!(readlink_errno(&rt, &mut b), None, "size > 2^40");
    b.config["linux"]["seccomp"] = deny_readlink_if_size("SCMP_CMP_MASKED_EQ", 0);
    assert_eq!(readlink_errno(&rt, &mut b), Some(43), "size & 0 == 0");
}

#[test]
fn kill_process_ends_the_container_with_sigsys() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let mut b = Bundle::new();
    b.config["linux"]["seccomp"] =
        allow_but(json!({ "names": READLINK, "action": "SCMP_ACT_KILL_PROCESS" }));
    b.config["process"]["rlimits"] = json!([{ "type": "RLIMIT_CORE", "hard": 0, "soft": 0 }]);
    b.set_args(&["/probe", "readlink", "/proc/self/exe"]);
    let id = unique_id("seccomp-kill");
    let o = rt.run(&b, &id);
    assert_eq!(
        o.status.code(),
        Some(128 + libc::SIGSYS),
        "run's status for a container killed by SIGSYS\n{}",
        output_text(&o)
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn unknown_syscall_names_and_foreign_architectures_are_ignored() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let mut b = Bundle::new();
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_S390X", "SCMP_ARCH_PPC64LE"],
        "syscalls": [{ "names": ["no_such_syscall", "readlink", "readlinkat", "s390_pci_mmio_write"],
                       "action": "SCMP_ACT_ERRNO", "errnoRet": 44 }]
    });
    assert_eq!(readlink_errno(&rt, &mut b), Some(44));
}

#[test]
fn log_and_spec_allow_flags_load() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let mut b = Bundle::new();
    let mut p = allow_but(json!({ "names": READLINK, "action": "SCMP_ACT_LOG" }));
    p["flags"] = json!([
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_TSYNC"
    ]);
    b.config["linux"]["seccomp"] = p;
    assert_eq!(readlink_errno(&rt, &mut b), None);
}

/// A bad profile fails `create` before anything is made, naming the field.
#[test]
fn bad_profiles_fail_create_naming_the_field() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let cases: [(&str, Value); 6] = [
        (
            "linux.seccomp.syscalls[0].args[0].index",
            allow_but(json!({ "names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                              "args": [{ "index": 7, "value": 1, "op": "SCMP_CMP_EQ" }] })),
        ),
        (
            "linux.seccomp.syscalls[0].errnoRet",
            allow_but(json!({ "names": ["getpid"], "action": "SCMP_ACT_KILL", "errnoRet": 1 })),
        ),
        (
            "linux.seccomp.syscalls[0].names",
            allow_but(json!({ "names": [], "action": "SCMP_ACT_ERRNO" })),
        ),
        (
            "linux.seccomp.listenerPath",
            allow_but(json!({ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" })),
        ),
        (
            "linux.seccomp.defaultAction",
            json!({ "defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x" }),
        ),
        (
            "linux.seccomp.flags",
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"] }),
        ),
    ];
    for (field, profile) in cases {
        let mut b = Bundle::new();
        b.config["linux"]["seccomp"] = profile;
        let id = unique_id("seccomp-bad");
        let o = rt.create(&b, &id);
        let err = assert_fails(&o, field);
        assert!(
            reference_mode() || err.contains(field),
            "error should name {field}:\n{err}"
        );
        assert_nothing_left(&rt, &id);
    }
}

// ---------------------------------------------------------------------------------------------
// SCMP_ACT_NOTIFY and the seccomp agent

const NOTIF_RECV: libc::c_ulong = 0xc050_2100; // SECCOMP_IOCTL_NOTIF_RECV
const NOTIF_SEND: libc::c_ulong = 0xc018_2101; // SECCOMP_IOCTL_NOTIF_SEND

/// One accepted connection's payload and the fd that came with it (SCM_RIGHTS).
fn recv_state_and_fd(conn: &std::os::unix::net::UnixStream) -> (Vec<u8>, OwnedFd) {
    let (mut buf, fds) = spec_tests::scm::recv_with_fds(conn, 1 << 16).expect("recvmsg");
    let fd = fds.into_iter().next().expect("the agent got no fd");
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut &*conn, &mut rest).expect("read the rest of the state");
    buf.extend(rest);
    (buf, fd)
}

/// Answer one notification with `-errno`; returns the syscall number and the pid it came from.
fn answer_one(listener: &OwnedFd, errno: i32) -> (i32, u32) {
    let mut req = [0u8; 80];
    // SAFETY: NOTIF_RECV fills a struct seccomp_notif (80 bytes).
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), NOTIF_RECV, req.as_mut_ptr()) };
    assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    let id = u64::from_ne_bytes(req[0..8].try_into().unwrap());
    let pid = u32::from_ne_bytes(req[8..12].try_into().unwrap());
    let nr = i32::from_ne_bytes(req[16..20].try_into().unwrap());
    let mut resp = [0u8; 24];
    resp[0..8].copy_from_slice(&id.to_ne_bytes());
    resp[16..20].copy_from_slice(&(-errno).to_ne_bytes());
    // SAFETY: NOTIF_SEND reads a struct seccomp_notif_resp (24 bytes).
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), NOTIF_SEND, resp.as_ptr()) };
    assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    (nr, pid)
}

#[test]
fn notify_hands_the_listener_and_the_container_state_to_the_agent() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let mut b = Bundle::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let sock = dir.path().join("agent.sock");
    let server = UnixListener::bind(&sock).expect("bind the agent socket");
    let mut p = allow_but(json!({ "names": READLINK, "action": "SCMP_ACT_NOTIFY" }));
    p["listenerPath"] = sock.to_str().unwrap().into();
    p["listenerMetadata"] = "MKNOD=/dev/null".into();
    b.config["linux"]["seccomp"] = p;
    b.set_args(&["/probe", "readlink", "/proc/self/exe"]);

    let agent = std::thread::spawn(move || {
        let (conn, _) = server.accept().expect("accept the runtime");
        let (payload, listener) = recv_state_and_fd(&conn);
        // Answer every notification (the probe's libc may read links too) until the
        // container is gone.
        let mut seen = Vec::new();
        loop {
            let mut p = libc::pollfd {
                fd: listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: polling one valid fd.
            let n = unsafe { libc::poll(&mut p, 1, 30_000) };
            if n <= 0 || p.revents & libc::POLLIN == 0 {
                break;
            }
            seen.push(answer_one(&listener, libc::EXDEV));
        }
        (payload, seen)
    });
    let id = unique_id("seccomp-notify");
    let o = rt.run(&b, &id);
    let (payload, seen) = agent.join().expect("agent");
    let (nr, pid) = *seen.first().expect("the agent got a notification");
    assert_success(&o, "run under a NOTIFY profile");
    let r: Value = serde_json::from_slice(&o.stdout).expect("probe JSON");
    assert_eq!(
        r["errno"],
        libc::EXDEV,
        "the agent's answer reached the container: {r}"
    );
    assert!(
        nr == libc::SYS_readlink as i32 || nr == libc::SYS_readlinkat as i32,
        "notified syscall {nr}"
    );

    let state: Value = serde_json::from_slice(&payload).expect("container process state JSON");
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "MKNOD=/dev/null");
    assert!(state["ociVersion"].is_string());
    assert_eq!(state["state"]["id"], id.as_str());
    assert_eq!(state["state"]["status"], "creating");
    assert_eq!(state["pid"], state["state"]["pid"]);
    assert_eq!(
        state["pid"].as_u64(),
        Some(u64::from(pid)),
        "the init's host pid"
    );
    assert_eq!(
        Path::new(state["state"]["bundle"].as_str().unwrap_or_default()),
        b.path()
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn notify_with_an_absent_agent_fails_create() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let mut b = Bundle::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut p = allow_but(json!({ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" }));
    p["listenerPath"] = dir.path().join("nobody.sock").to_str().unwrap().into();
    b.config["linux"]["seccomp"] = p;
    let id = unique_id("seccomp-noagent");
    let o = rt.create(&b, &id);
    let err = assert_fails(&o, "create with no agent listening");
    assert!(
        reference_mode() || err.contains("linux.seccomp.listenerPath"),
        "{err}"
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn features_lists_what_the_seccomp_compiler_takes() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let o = rt.cmd(&["features"]);
    let f: Value = serde_json::from_slice(&o.stdout).expect("features JSON");
    let s = &f["linux"]["seccomp"];
    for (key, want) in [
        ("actions", "SCMP_ACT_NOTIFY"),
        ("operators", "SCMP_CMP_MASKED_EQ"),
        ("archs", "SCMP_ARCH_X86_64"),
        ("knownFlags", "SECCOMP_FILTER_FLAG_LOG"),
        ("supportedFlags", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"),
    ] {
        let list = s[key]
            .as_array()
            .unwrap_or_else(|| panic!("features: seccomp.{key}: {s}"));
        assert!(
            list.iter().any(|v| v == want),
            "seccomp.{key} lacks {want}: {s}"
        );
    }
}
