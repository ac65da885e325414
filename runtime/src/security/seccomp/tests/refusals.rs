//! Refusals name the field; flags; loading without the rights.

use super::*;

// Refusals name the field

#[test]
fn errno_ret_on_an_action_without_errno_is_refused() {
    let e = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_KILL", "errnoRet": 1 }]
    }));
    assert!(e.starts_with("linux.seccomp.syscalls[0].errnoRet: "), "{e}");
    let e = compile_err(json!({ "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1 }));
    assert!(e.starts_with("linux.seccomp.defaultErrnoRet: "), "{e}");
    let e = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [errno_rule(&["getpid"], 0x1_0000)]
    }));
    assert!(
        e.starts_with("linux.seccomp.syscalls[0].errnoRet: 65536"),
        "{e}"
    );
}

#[test]
fn argument_index_past_five_is_refused() {
    let e = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [errno_rule(&["getpid"], 1),
                     { "names": ["getppid"], "action": "SCMP_ACT_ERRNO",
                       "args": [{ "index": 1, "value": 1, "op": "SCMP_CMP_EQ" },
                                { "index": 6, "value": 1, "op": "SCMP_CMP_EQ" }] }]
    }));
    assert!(
        e.starts_with("linux.seccomp.syscalls[1].args[1].index: 6 "),
        "{e}"
    );
}

#[test]
fn empty_names_are_refused() {
    let e = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": [], "action": "SCMP_ACT_ERRNO" }]
    }));
    assert!(e.starts_with("linux.seccomp.syscalls[0].names: "), "{e}");
    let e = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid", ""], "action": "SCMP_ACT_ERRNO" }]
    }));
    assert!(e.starts_with("linux.seccomp.syscalls[0].names[1]: "), "{e}");
}

#[test]
fn notify_rules_are_checked() {
    let e = compile_err(json!({ "defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a" }));
    assert!(e.starts_with("linux.seccomp.defaultAction: "), "{e}");
    let e = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }]
    }));
    assert!(e.starts_with("linux.seccomp.listenerPath: "), "{e}");
    let e = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/a",
        "syscalls": [{ "names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY" }]
    }));
    assert!(e.starts_with("linux.seccomp.syscalls[0].names[1]: "), "{e}");
    let e = compile_err(json!({ "defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x" }));
    assert!(e.starts_with("linux.seccomp.listenerMetadata: "), "{e}");
    // A listener path without NOTIFY rules is ignored (runtime-spec).
    let f = filter(json!({ "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a" }));
    assert!(!f.uses_notify() && f.listener_path().is_none());
}

#[test]
fn unknown_flags_are_refused_when_the_config_is_parsed() {
    let r: std::result::Result<LinuxSeccomp, _> = serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]
    }));
    assert!(r.is_err());
}

#[test]
fn flags_map_to_seccomp_filter_flags() {
    let flags = |v: Value| filter(v).flags;
    assert_eq!(
        flags(json!({ "defaultAction": "SCMP_ACT_ALLOW" })),
        FLAG_SPEC_ALLOW
    );
    assert_eq!(
        flags(json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": [] })),
        0
    );
    assert_eq!(
        flags(json!({ "defaultAction": "SCMP_ACT_ALLOW",
                      "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC",
                                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"] })),
        FLAG_LOG | FLAG_TSYNC
    );
    assert_eq!(
        flags(
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
                      "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                      "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }] })
        ),
        FLAG_TSYNC | FLAG_TSYNC_ESRCH | FLAG_WAIT_KILLABLE_RECV | FLAG_NEW_LISTENER
    );
}

#[test]
fn every_flag_combination_loads_in_the_kernel() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/a",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                  "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }]
    }));
    let out = in_child(|| match install(&f) {
        Ok(Some(_)) => 0,
        Ok(None) => 1,
        Err(_) => 2,
    });
    assert_eq!(out, Exit::Code(0));
}

#[test]
fn loading_without_no_new_privs_or_cap_sys_admin_fails_with_a_named_step() {
    let f = filter(json!({ "defaultAction": "SCMP_ACT_ALLOW" }));
    // SAFETY: the child only makes syscalls and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // Drop every capability (we are root in the test) without no_new_privs.
        let hdr = &mut [0x2008_0522u32, 0] as *mut u32;
        let data = [0u32; 6];
        // SAFETY: capset with a v3 header and zeroed data.
        let code = unsafe {
            if libc::syscall(libc::SYS_capset, hdr, data.as_ptr()) != 0 {
                3
            } else {
                match install(&f) {
                    Err(e)
                        if e.errno() == Some(libc::EACCES)
                            && e.to_string().contains("linux.seccomp") =>
                    {
                        0
                    }
                    _ => 1,
                }
            }
        };
        // SAFETY: plain exit.
        unsafe { libc::_exit(code) }
    }
    assert_eq!(wait(pid), Exit::Code(0));
}
