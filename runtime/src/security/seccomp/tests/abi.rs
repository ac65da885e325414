//! Syscall names and ABIs: x32, i386 (int 0x80), foreign architectures, newer syscalls.

use super::*;

// Names and ABIs

#[test]
fn unknown_syscall_names_are_ignored() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [errno_rule(&["no_such_syscall", "getpid", "s390_runtime_instr"], 42)]
    }));
    expect_in_child(&f, || match getpid_with(0) {
        Err(42) => Ok(()),
        r => Err(format!("getpid gave {r:?}")),
    });
}

#[test]
fn x32_syscall_is_not_confused_with_native() {
    // readv is 19 on x86_64 and 515 on x32; x32's 19 is a 64-bit-only slot.
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [errno_rule(&["readv"], 55)]
    }));
    let args = [u64::MAX, 0, 0, 0, 0, 0];
    assert_eq!(run(&f, 19, AUDIT_X86_64, args), RET_ERRNO | 55);
    assert_eq!(
        run(&f, X32 as u32 | 515, AUDIT_X86_64, args),
        RET_ERRNO | 55
    );
    assert_eq!(run(&f, X32 as u32 | 19, AUDIT_X86_64, args), RET_ALLOW);
    expect_in_child(&f, || {
        let readv = |nr: u64| sys(nr, [u64::MAX, 0, 0, 0, 0, 0]);
        match (readv(19), readv(X32 | 515), readv(X32 | 19)) {
            // The kernel itself rejects x32 calls when it lacks the x32 ABI (ENOSYS) or the
            // bad fd (EBADF): either way the filter let the third one through.
            (Err(55), Err(55), Err(e)) if e != 55 => Ok(()),
            r => Err(format!("readv native/x32/x32-19: {r:?}")),
        }
    });
    // Without x32 in the list, an x32 syscall is a foreign ABI: killed.
    let g = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [errno_rule(&["readv"], 55)]
    }));
    assert_eq!(
        run(&g, X32 as u32 | 515, AUDIT_X86_64, args),
        RET_KILL_THREAD
    );
    // -1 is what a tracer sets to skip a syscall: not an x32 number.
    assert_eq!(run(&g, u32::MAX, AUDIT_X86_64, args), RET_ALLOW);
    let out = in_child(|| {
        load(&g);
        let _ = sys(X32 | 515, [u64::MAX, 0, 0, 0, 0, 0]);
        0
    });
    assert_eq!(out, Exit::Signal(libc::SIGSYS));
}

#[test]
fn x32_compares_only_the_low_32_bits_like_libseccomp() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X32"],
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9,
                       "args": [{ "index": 0, "value": 0x1_0000_0005u64, "op": "SCMP_CMP_EQ" }] }]
    }));
    let x32_getpid = X32 as u32 | 39;
    assert_eq!(
        run(&f, x32_getpid, AUDIT_X86_64, [5, 0, 0, 0, 0, 0]),
        RET_ERRNO | 9
    );
    assert_eq!(
        run(&f, x32_getpid, AUDIT_X86_64, [0x7_0000_0005, 0, 0, 0, 0, 0]),
        RET_ERRNO | 9
    );
    assert_eq!(run(&f, 39, AUDIT_X86_64, [5, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        run(&f, 39, AUDIT_X86_64, [0x1_0000_0005, 0, 0, 0, 0, 0]),
        RET_ERRNO | 9
    );
}

/// An i386 syscall from this 64-bit process: `int 0x80` with the i386 number.
#[cfg(target_arch = "x86_64")]
fn int80(nr: u32) -> i32 {
    let ret: i32;
    // SAFETY: a syscall without pointer arguments; the kernel zeroes r8-r11 on return.
    unsafe {
        std::arch::asm!("int 0x80", inlateout("eax") nr => ret,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _, options(nostack));
    }
    ret
}

#[cfg(target_arch = "x86_64")]
fn ia32_available() -> bool {
    in_child(|| {
        // SAFETY: getpid cannot fail.
        let me = unsafe { libc::getpid() };
        i32::from(int80(20) != me)
    }) == Exit::Code(0)
}

#[cfg(target_arch = "x86_64")]
#[test]
fn i386_syscall_is_filtered_with_the_i386_table() {
    if !ia32_available() {
        eprintln!("skipped: the kernel runs no i386 syscalls");
        return;
    }
    // getpid is 39 on x86_64, 20 on i386; 39 on i386 is mkdir.
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [errno_rule(&["getpid"], 44)]
    }));
    expect_in_child(&f, || match (int80(20), getpid_with(0)) {
        (-44, Err(44)) => Ok(()),
        r => Err(format!("i386/x86_64 getpid: {r:?}")),
    });
    assert_eq!(
        run(&f, 39, AUDIT_I386, [0; 6]),
        RET_ALLOW,
        "i386 39 is mkdir"
    );
    // Not listed: i386 is a foreign ABI and its syscalls kill.
    let g = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [errno_rule(&["getpid"], 44)]
    }));
    let out = in_child(|| {
        load(&g);
        int80(20);
        0
    });
    assert_eq!(out, Exit::Signal(libc::SIGSYS));
}

#[test]
fn i386_socket_rules_cover_socketcall_and_ipc() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [errno_rule(&["socket", "shmget", "recv"], 13)]
    }));
    let deny = RET_ERRNO | 13;
    assert_eq!(run(&f, 359, AUDIT_I386, [0; 6]), deny, "direct socket");
    assert_eq!(
        run(&f, 102, AUDIT_I386, [1, 0, 0, 0, 0, 0]),
        deny,
        "socketcall(SYS_SOCKET)"
    );
    assert_eq!(
        run(&f, 102, AUDIT_I386, [10, 0, 0, 0, 0, 0]),
        deny,
        "socketcall(SYS_RECV)"
    );
    assert_eq!(
        run(&f, 102, AUDIT_I386, [2, 0, 0, 0, 0, 0]),
        RET_ALLOW,
        "socketcall(SYS_BIND)"
    );
    assert_eq!(
        run(&f, 117, AUDIT_I386, [23, 0, 0, 0, 0, 0]),
        deny,
        "ipc(SHMGET)"
    );
    assert_eq!(
        run(&f, 117, AUDIT_I386, [0x1_0017, 0, 0, 0, 0, 0]),
        deny,
        "ipc(SHMGET, v1)"
    );
    assert_eq!(
        run(&f, 117, AUDIT_I386, [24, 0, 0, 0, 0, 0]),
        RET_ALLOW,
        "ipc(SHMCTL)"
    );
    assert_eq!(run(&f, 41, AUDIT_X86_64, [0; 6]), deny, "x86_64 socket");
    // An explicit socketcall rule decides for the multiplexer as a whole.
    let g = filter(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            { "names": ["socketcall"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["socket"], "action": "SCMP_ACT_KILL" }
        ]
    }));
    assert_eq!(run(&g, 102, AUDIT_I386, [1, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(run(&g, 359, AUDIT_I386, [0; 6]), RET_KILL_THREAD);
}

#[test]
fn foreign_architectures_in_the_list_are_ignored() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_S390X", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_MIPS"],
        "syscalls": [errno_rule(&["getpid"], 42)]
    }));
    assert_eq!(run(&f, 39, AUDIT_X86_64, [0; 6]), RET_ERRNO | 42);
    assert_eq!(run(&f, 20, AUDIT_I386, [0; 6]), RET_KILL_THREAD);
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{ "names": ["getpid", "exit_group", "exit", "write", "getppid"], "action": "SCMP_ACT_ALLOW" }]
    }));
    // The largest named is exit_group (231).
    assert_eq!(run(&f, 230, AUDIT_X86_64, [0; 6]), RET_ERRNO | 1);
    assert_eq!(run(&f, 232, AUDIT_X86_64, [0; 6]), RET_ERRNO | 38);
    expect_in_child(&f, || {
        match (sys(230, [0; 6]), sys(435, [0; 6]), sys(1000, [0; 6])) {
            (Err(libc::EPERM), Err(libc::ENOSYS), Err(libc::ENOSYS)) => Ok(()),
            r => Err(format!("230/clone3/1000: {r:?}")),
        }
    });
    // Without `architectures`, runc adds no such rule.
    let g = filter(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ALLOW" }]
    }));
    assert_eq!(run(&g, 1000, AUDIT_X86_64, [0; 6]), RET_ERRNO | 1);
    // Nor when the default lets syscalls through.
    let h = filter(json!({
        "defaultAction": "SCMP_ACT_LOG",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [errno_rule(&["getpid"], 3)]
    }));
    assert_eq!(run(&h, 1000, AUDIT_X86_64, [0; 6]), super::compile::RET_LOG);
}
