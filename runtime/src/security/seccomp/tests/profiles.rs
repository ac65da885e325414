//! The profiles engines send (docker, podman): compile time, loading, behaviour.

use super::*;

// Engine profiles

#[test]
fn docker_default_profile_compiles_under_1ms() {
    let p = docker();
    let f = compile(&p).expect("docker profile compiles");
    assert!(f.len() < 1000, "docker profile: {} instructions", f.len());
    let mut times: Vec<Duration> = (0..50)
        .map(|_| {
            let t = Instant::now();
            let f = compile(&p).expect("compiles");
            std::hint::black_box(f);
            t.elapsed()
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    eprintln!(
        "docker default profile: {} instructions, compile median {median:?}, best {:?}",
        f.len(),
        times[0]
    );
    // ~50 µs optimized (hack/bench-seccomp); an unoptimized test build is ~10x slower and
    // shares the machine, so it gets headroom.
    let limit = if cfg!(debug_assertions) { 5 } else { 1 };
    assert!(median < Duration::from_millis(limit), "median {median:?}");
}

#[test]
fn docker_default_profile_loads_and_behaves_as_with_runc() {
    let f = compile(&docker()).expect("docker profile compiles");
    assert!(!f.uses_notify());
    // Expectations from the profile: allowed, the clone3 rule, default EPERM, -ENOSYS above
    // the newest syscall named, the personality and clone argument rules.
    let pers = libc::SYS_personality as u32;
    assert_eq!(run(&f, 39, AUDIT_X86_64, [0; 6]), RET_ALLOW);
    assert_eq!(run(&f, 435, AUDIT_X86_64, [0; 6]), RET_ERRNO | 38, "clone3");
    assert_eq!(run(&f, 165, AUDIT_X86_64, [0; 6]), RET_ERRNO | 1, "mount");
    assert_eq!(
        run(&f, 900, AUDIT_X86_64, [0; 6]),
        RET_ERRNO | 38,
        "past the table"
    );
    assert_eq!(run(&f, pers, AUDIT_X86_64, [8, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        run(&f, pers, AUDIT_X86_64, [0xffff_ffff, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        run(&f, pers, AUDIT_X86_64, [9, 0, 0, 0, 0, 0]),
        RET_ERRNO | 1
    );
    let clone = libc::SYS_clone as u32;
    let newns = libc::CLONE_NEWNS as u64;
    assert_eq!(
        run(
            &f,
            clone,
            AUDIT_X86_64,
            [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]
        ),
        RET_ALLOW
    );
    assert_eq!(
        run(&f, clone, AUDIT_X86_64, [newns, 0, 0, 0, 0, 0]),
        RET_ERRNO | 1
    );
    assert_eq!(run(&f, 20, AUDIT_I386, [0; 6]), RET_ALLOW, "i386 getpid");
    assert_eq!(
        run(&f, X32 as u32 | 39, AUDIT_X86_64, [0; 6]),
        RET_ALLOW,
        "x32 getpid"
    );
    assert_eq!(run(&f, 0, 0xc000_00b7, [0; 6]), RET_KILL_THREAD, "aarch64");
    expect_in_child(&f, || {
        if getpid_with(0).is_err() {
            return Err("getpid denied".into());
        }
        // SAFETY: plain syscalls without pointers.
        let (unshare, pers) = unsafe {
            (
                libc::unshare(libc::CLONE_NEWUSER),
                libc::personality(0xffff_ffff),
            )
        };
        let unshare_err = std::io::Error::last_os_error().raw_os_error();
        if unshare != -1 || unshare_err != Some(libc::EPERM) || pers == -1 {
            return Err(format!(
                "unshare {unshare} {unshare_err:?}, personality {pers}"
            ));
        }
        match sys(435, [0; 6]) {
            Err(libc::ENOSYS) => Ok(()),
            r => Err(format!("clone3 gave {r:?}")),
        }
    });
}

#[test]
fn podman_default_profile_compiles_and_loads() {
    let f = compile(&podman()).expect("podman profile compiles");
    assert_eq!(
        run(&f, 246, AUDIT_X86_64, [0; 6]),
        RET_ERRNO | 1,
        "kexec_load"
    );
    assert_eq!(
        run(&f, 2000, AUDIT_X86_64, [0; 6]),
        RET_ERRNO | 38,
        "defaultErrnoRet"
    );
    expect_in_child(&f, || {
        getpid_with(0)
            .map(|_| ())
            .map_err(|e| format!("getpid: {e}"))
    });
}

#[test]
fn long_conditional_chains_get_trampolines_and_load() {
    // 300 conditional rules for one syscall: the jumps to the default action reach past 255.
    let rules: Vec<Value> = (0..300u64)
        .map(|v| {
            json!({ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 50,
                         "args": [{ "index": 0, "value": v * 3 + 1000, "op": "SCMP_CMP_EQ" }] })
        })
        .collect();
    let f = filter(json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules }));
    assert!(f.len() > 1200, "{} instructions", f.len());
    for a in [1000u64, 1003, 1897, 1001, 0, 1 << 40] {
        let hit = (1000..1900).contains(&a) && (a - 1000) % 3 == 0;
        let want = if hit { RET_ERRNO | 50 } else { RET_ALLOW };
        assert_eq!(
            run(&f, 39, AUDIT_X86_64, [a, 0, 0, 0, 0, 0]),
            want,
            "arg {a}"
        );
    }
    expect_in_child(&f, || match (getpid_with(1897), getpid_with(1898)) {
        (Err(50), Ok(_)) => Ok(()),
        r => Err(format!("{r:?}")),
    });
}

#[test]
fn every_name_in_the_table_resolves_and_filters_on_its_numbers() {
    // One rule per name, all in one profile: each syscall number must come out denied.
    let names: Vec<&str> = super::syscalls::TABLE.iter().map(|(n, _)| *n).collect();
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [errno_rule(&names, 61)]
    }));
    for (name, row) in super::syscalls::TABLE {
        for (col, audit) in [(0, AUDIT_X86_64), (1, AUDIT_I386), (2, AUDIT_X86_64)] {
            if row[col] >= 0 {
                let got = run(&f, row[col] as u32, audit, [0; 6]);
                assert_eq!(got, RET_ERRNO | 61, "{name} on column {col}");
            }
        }
    }
}
