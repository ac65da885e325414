//! seccomp is the last thing before execve (design.md, "Security rules"): a profile that
//! lists only what the container's own program needs must work, for `run`, `create` + `start`
//! and `exec`, with and without noNewPrivileges, as root and as another user. The program here
//! needs four syscalls (execve, write, exit, exit_group; pause to wait), so every other syscall
//! vsrun still made after the filter (faccessat2 finding args[0], close_range sealing fds,
//! sendmsg, read, ...) fails the container with EPERM.
//!
//! One documented exception: without noNewPrivileges the kernel loads a filter only for a
//! holder of CAP_SYS_ADMIN, so when the config does not grant it, one capset (dropping it
//! again) must follow the filter, as in runc and crun (which also setuid after it). For `exec`
//! (a joined pid namespace) the filter is then loaded outside the container's pid namespace
//! and the process that execs is forked into it afterwards: clone (and the write that reports
//! its pid, and the setsid of the forked process) follow the filter too, so that no process holding CAP_SYS_ADMIN is ever visible
//! to the container (escapes.rs, CAP_SYS_PTRACE). Likewise `create` loads such a filter before
//! "ready": the init waiting for `start` never holds more than the container's credentials.

use serde_json::{json, Value};
use spec_tests::*;
use std::time::Duration;

/// Writes "ok\n" and exits 0; with an argument, writes and then waits in pause(2).
const TINY: &str = r#"
static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
void start_c(long *sp) {
    sys3(1, 1, (long)"ok\n", 3);
    if (sp[0] > 1)
        for (;;) sys3(34, 0, 0, 0);
    sys3(231, 0, 0, 0);
}
__attribute__((naked)) void _start(void) {
    __asm__("mov %rsp, %rdi\n and $-16, %rsp\n call start_c\n hlt");
}
"#;

fn tiny_bundle() -> Bundle {
    let b = Bundle::new();
    let prog = static_program("tiny", TINY, &["-nostdlib", "-fno-stack-protector"]);
    install_program(&b, "tiny", &prog);
    b
}

/// Default deny (EPERM); allowed: what TINY needs, plus `extra`.
fn only(extra: &[&str]) -> Value {
    let mut names = vec!["execve", "write", "exit", "exit_group", "pause"];
    names.extend_from_slice(extra);
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{ "names": names, "action": "SCMP_ACT_ALLOW" }]
    })
}

/// The shapes to try: (name, noNewPrivileges, uid, CAP_SYS_ADMIN granted, extra syscalls).
fn shapes() -> Vec<(&'static str, bool, u32, bool, Vec<&'static str>)> {
    let after_capset = vec!["capset"];
    vec![
        ("nnp-root", true, 0, false, vec![]),
        ("nnp-user", true, 1000, false, vec![]),
        (
            "privileged-load-root",
            false,
            0,
            false,
            after_capset.clone(),
        ),
        ("privileged-load-user", false, 1000, false, after_capset),
        ("privileged-load-with-sys-admin", false, 0, true, vec![]),
    ]
}

fn configure(b: &mut Bundle, nnp: bool, uid: u32, sys_admin: bool, extra: &[&str]) {
    b.config["process"]["noNewPrivileges"] = json!(nnp);
    b.config["process"]["user"] = json!({ "uid": uid, "gid": uid });
    if sys_admin {
        let caps = json!(["CAP_SYS_ADMIN", "CAP_KILL"]);
        for set in CAP_SETS {
            b.config["process"]["capabilities"][set] = caps.clone();
        }
    }
    b.config["linux"]["seccomp"] = only(extra);
}

#[test]
fn run_needs_only_the_programs_own_syscalls_after_the_filter() {
    let rt = Runtime::new();
    for (name, nnp, uid, sys_admin, extra) in shapes() {
        let mut b = tiny_bundle();
        configure(&mut b, nnp, uid, sys_admin, &extra);
        b.set_args(&["/tiny"]);
        let id = unique_id(name);
        let o = rt.run(&b, &id);
        assert_success(&o, &format!("run ({name})"));
        assert_eq!(stdout_str(&o), "ok\n", "{name}");
        assert_nothing_left(&rt, &id);
    }
}

#[test]
fn create_and_start_need_only_the_programs_own_syscalls_after_the_filter() {
    let rt = Runtime::new();
    for (name, nnp, uid, sys_admin, extra) in shapes() {
        let mut b = tiny_bundle();
        let mut extra = extra.clone();
        if !nnp && !sys_admin {
            // The init waiting for `start` must not hold CAP_SYS_ADMIN: the filter is loaded
            // before "ready", so the write of "ready" and the read of exec.fifo follow it.
            extra.push("read");
        }
        configure(&mut b, nnp, uid, sys_admin, &extra);
        b.set_args(&["/tiny"]);
        let id = unique_id(name);
        assert_success(&rt.create(&b, &id), &format!("create ({name})"));
        rt.start(&id);
        rt.wait_status(&id, "stopped", Duration::from_secs(10));
        assert_eq!(rt.container_output(&id).0, "ok\n", "{name}");
        assert_success(&rt.cmd(&["delete", &id]), "delete");
        assert_nothing_left(&rt, &id);
    }
}

#[test]
fn exec_needs_only_the_programs_own_syscalls_after_the_filter() {
    let rt = Runtime::new();
    for (name, nnp, uid, sys_admin, extra) in shapes() {
        let mut b = tiny_bundle();
        configure(&mut b, nnp, uid, sys_admin, &extra);
        if !nnp && !sys_admin {
            let mut extra = extra.clone();
            extra.extend(["clone", "setsid"]);
            b.config["linux"]["seccomp"] = only(&extra);
        }
        b.set_args(&["/tiny", "wait"]);
        let id = unique_id(name);
        assert_success(&rt.run_detached(&b, &id), &format!("run -d ({name})"));
        let nnp_flag: &[&str] = if nnp { &["--no-new-privs"] } else { &[] };
        let mut args = vec!["exec"];
        args.extend_from_slice(nnp_flag);
        args.extend_from_slice(&[
            "--user",
            if uid == 0 { "0:0" } else { "1000:1000" },
            &id,
            "/tiny",
        ]);
        let o = rt.cmd(&args);
        assert_success(&o, &format!("exec ({name})"));
        assert_eq!(stdout_str(&o), "ok\n", "{name}");
        assert_success(&rt.delete_force(&id), "delete --force");
        assert_nothing_left(&rt, &id);
    }
}

/// docker's profile as it was before faccessat2 (5.8) and close_range (5.9) existed.
#[test]
fn a_profile_older_than_faccessat2_and_close_range_still_runs_containers() {
    let p = workspace_root().join("runtime/src/security/seccomp/testdata/docker.json");
    let mut profile: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    for rule in profile["syscalls"].as_array_mut().unwrap() {
        if let Some(names) = rule["names"].as_array_mut() {
            names.retain(|n| n != "faccessat2" && n != "close_range");
        }
    }
    let rt = Runtime::new();
    for nnp in [true, false] {
        let mut b = Bundle::new();
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.config["linux"]["seccomp"] = profile.clone();
        let seen = rt.probe(&mut b, &[]);
        assert!(seen.is_object(), "{seen}");
    }
}
