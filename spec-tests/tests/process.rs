//! The process (runtime-spec config.md "process"): args, env, cwd, user, umask, rlimits,
//! capabilities, noNewPrivileges, oomScoreAdj, PID 1, stdio and inherited fds. Each rule is
//! checked from inside (the probe's report) and from the host (/proc/<pid>).

use serde_json::{json, Value};
use spec_tests::*;
use std::os::fd::AsRawFd;
use std::time::Duration;

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut n: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    n.sort();
    n
}

#[test]
fn args_are_passed_verbatim() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let args = ["/probe", "report", "two words", "", "ünïcode", "--flag=x"];
    b.set_args(&args);
    let id = unique_id("args");
    let o = rt.run(&b, &id);
    assert_success(&o, "run");
    let seen: Value = serde_json::from_slice(&o.stdout).expect("probe JSON");
    assert_eq!(seen["argv"], json!(args), "argv inside");
    assert_nothing_left(&rt, &id);

    // host: the init's cmdline is exactly process.args
    let d = rt.probe_detached(&mut b);
    assert_eq!(
        proc_cmdline(d.pid),
        vec!["/probe", "report", "--", "sleep", "1000"],
        "host: /proc/<pid>/cmdline"
    );
    finish(&rt, &d.id);
}

#[test]
fn env_is_exactly_process_env() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let env = ["PATH=/bin", "HOME=/nowhere", "A=1", "B=two words", "EMPTY="];
    b.config["process"]["env"] = json!(env);
    let d = rt.probe_detached(&mut b);
    assert_eq!(names(&d.seen["env"]), sorted(&env), "environment inside");
    let host = std::fs::read(format!("/proc/{}/environ", d.pid)).expect("read environ");
    let mut host: Vec<String> = host
        .split(|c| *c == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    host.sort();
    assert_eq!(host, sorted(&env), "host: /proc/<pid>/environ");
    finish(&rt, &d.id);
}

#[test]
fn home_is_set_from_etc_passwd_when_env_lacks_it() {
    // runc's behaviour (engines rely on it): HOME comes from the user's /etc/passwd entry.
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["env"] = json!(["PATH=/bin"]);
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    let seen = rt.probe(&mut b, &[]);
    assert_eq!(
        names(&seen["env"]),
        sorted(&["PATH=/bin", "HOME=/home/user"])
    );
}

#[test]
fn cwd_is_process_cwd() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["cwd"] = "/tmp".into();
    let seen = rt.probe(&mut b, &[]);
    assert_eq!(seen["cwd"], "/tmp");
}

#[test]
fn cwd_is_created_when_missing() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["cwd"] = "/does/not/exist".into();
    assert!(!b.rootfs().join("does").exists());
    let seen = rt.probe(&mut b, &[]);
    assert_eq!(seen["cwd"], "/does/not/exist");
    assert!(
        b.rootfs().join("does/not/exist").is_dir(),
        "host: cwd not created in the rootfs"
    );
}

#[test]
fn user_uid_gid_and_additional_gids_are_set() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1001, "additionalGids": [5, 65534] });
    let d = rt.probe_detached(&mut b);
    let s = &d.seen;
    for k in ["uid", "euid", "suid", "fsuid"] {
        assert_eq!(s[k], 1000, "{k} inside");
    }
    for k in ["gid", "egid", "sgid", "fsgid"] {
        assert_eq!(s[k], 1001, "{k} inside");
    }
    assert_eq!(
        s["groups"],
        json!([5, 65534]),
        "supplementary groups inside"
    );
    assert_eq!(
        proc_status_field(d.pid, "Uid").as_deref(),
        Some("1000\t1000\t1000\t1000")
    );
    assert_eq!(
        proc_status_field(d.pid, "Gid").as_deref(),
        Some("1001\t1001\t1001\t1001")
    );
    assert_eq!(
        proc_status_field(d.pid, "Groups").as_deref(),
        Some("5 65534")
    );
    finish(&rt, &d.id);
}

#[test]
fn root_user_has_no_supplementary_groups_unless_listed() {
    // vsrun itself runs with supplementary groups 4 and 27; the container must not get them.
    let rt = Runtime::new();
    let b = Bundle::new();
    let id = unique_id("groups");
    let o = rt.cmd_with(&["run", "--bundle", b.path_str(), &id], |c| {
        // SAFETY: setgroups in the forked child before exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(c, || {
                let g: [libc::gid_t; 2] = [4, 27];
                if libc::setgroups(2, g.as_ptr()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    assert_success(&o, "run");
    let seen: Value = serde_json::from_slice(&o.stdout).expect("probe JSON");
    assert_eq!(seen["uid"], 0);
    assert_eq!(seen["gid"], 0);
    assert_eq!(
        seen["groups"],
        json!([]),
        "the runtime's own groups leaked into the container"
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn umask_is_process_user_umask() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["user"]["umask"] = json!(0o077);
    let d = rt.probe_detached(&mut b);
    assert_eq!(d.seen["umask_octal"], "0077");
    assert_eq!(
        proc_status_field(d.pid, "Umask").as_deref(),
        Some("0077"),
        "host: status Umask"
    );
    finish(&rt, &d.id);
}

#[test]
fn umask_defaults_to_0022() {
    let rt = Runtime::new();
    let b = Bundle::new();
    // The runtime must not pass on its own umask: run vsrun with 0077 and expect runc's 0022.
    b.write();
    let id = unique_id("umask");
    let o = rt.cmd_with(&["run", "--bundle", b.path_str(), &id], |c| {
        // SAFETY: umask in the forked child before exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(c, || {
                libc::umask(0o077);
                Ok(())
            });
        }
    });
    assert_success(&o, "run");
    let seen: Value = serde_json::from_slice(&o.stdout).expect("probe JSON");
    assert_eq!(seen["umask_octal"], "0022");
    assert_nothing_left(&rt, &id);
}

#[test]
fn rlimits_are_set() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["rlimits"] = json!([
        { "type": "RLIMIT_NOFILE", "soft": 100, "hard": 200 },
        { "type": "RLIMIT_CORE", "soft": 0, "hard": 4096 },
        { "type": "RLIMIT_MSGQUEUE", "soft": 1000, "hard": 2000 },
        { "type": "RLIMIT_NPROC", "soft": 3000, "hard": 4000 },
    ]);
    let d = rt.probe_detached(&mut b);
    let r = &d.seen["rlimits"];
    assert_eq!(r["RLIMIT_NOFILE"], json!({ "soft": 100, "hard": 200 }));
    assert_eq!(r["RLIMIT_CORE"], json!({ "soft": 0, "hard": 4096 }));
    assert_eq!(r["RLIMIT_MSGQUEUE"], json!({ "soft": 1000, "hard": 2000 }));
    assert_eq!(r["RLIMIT_NPROC"], json!({ "soft": 3000, "hard": 4000 }));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.pid)).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&f[3..5], ["100", "200"], "host: /proc/<pid>/limits: {line}");
    finish(&rt, &d.id);
}

fn host_caps(pid: i32) -> Vec<String> {
    ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .iter()
        .map(|k| proc_status_field(pid, k).unwrap_or_default())
        .collect()
}

fn seen_caps_hex(seen: &Value) -> Vec<String> {
    ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .iter()
        .map(|k| seen["caps"][k]["hex"].as_str().unwrap().to_string())
        .collect()
}

fn check_caps(seen: &Value, want: &[(&str, &[&str])]) {
    for (set, list) in want {
        assert_eq!(
            names(&seen["caps"][*set]["names"]),
            sorted(list),
            "{set} inside"
        );
    }
}

#[test]
fn capability_sets_are_exactly_the_config() {
    // Root exec: the kernel makes P' = bounding | inheritable | ambient and E' = P', so a
    // consistent config has permitted = effective = bounding ⊇ inheritable ⊇ ambient.
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let bnd: &[&str] = &[
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_RAW",
        "CAP_SETUID",
        "CAP_SETGID",
    ];
    let inh: &[&str] = &["CAP_KILL", "CAP_NET_RAW"];
    let amb: &[&str] = &["CAP_NET_RAW"];
    b.config["process"]["capabilities"] = json!({
        "bounding": bnd, "permitted": bnd, "effective": bnd, "inheritable": inh, "ambient": amb
    });
    let d = rt.probe_detached(&mut b);
    check_caps(
        &d.seen,
        &[
            ("CapBnd", bnd),
            ("CapPrm", bnd),
            ("CapEff", bnd),
            ("CapInh", inh),
            ("CapAmb", amb),
        ],
    );
    assert_eq!(
        host_caps(d.pid),
        seen_caps_hex(&d.seen),
        "host: /proc/<pid>/status Cap*"
    );
    finish(&rt, &d.id);
}

#[test]
fn capability_sets_are_exactly_the_config_for_a_non_root_user() {
    // Non-root exec: P' = E' = ambient; bounding and inheritable stay as set.
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let bnd: &[&str] = &[
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_RAW",
        "CAP_NET_BIND_SERVICE",
    ];
    let inh: &[&str] = &["CAP_KILL", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"];
    let amb: &[&str] = &["CAP_NET_RAW", "CAP_NET_BIND_SERVICE"];
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    b.config["process"]["capabilities"] = json!({
        "bounding": bnd, "permitted": amb, "effective": amb, "inheritable": inh, "ambient": amb
    });
    let d = rt.probe_detached(&mut b);
    assert_eq!(d.seen["uid"], 1000);
    check_caps(
        &d.seen,
        &[
            ("CapBnd", bnd),
            ("CapPrm", amb),
            ("CapEff", amb),
            ("CapInh", inh),
            ("CapAmb", amb),
        ],
    );
    assert_eq!(
        host_caps(d.pid),
        seen_caps_hex(&d.seen),
        "host: /proc/<pid>/status Cap*"
    );
    finish(&rt, &d.id);
}

#[test]
fn capability_sets_are_empty_when_config_lists_none() {
    let rt = Runtime::new();
    let empty: &[&str] = &[];
    let all_empty = [
        ("CapBnd", empty),
        ("CapPrm", empty),
        ("CapEff", empty),
        ("CapInh", empty),
        ("CapAmb", empty),
    ];
    let mut b = Bundle::new();
    b.config["process"]["capabilities"] = json!({
        "bounding": [], "permitted": [], "effective": [], "inheritable": [], "ambient": []
    });
    let d = rt.probe_detached(&mut b);
    check_caps(&d.seen, &all_empty);
    assert_eq!(
        host_caps(d.pid),
        vec!["0000000000000000"; 5],
        "host: Cap* with empty lists"
    );
    finish(&rt, &d.id);

    // no capabilities object at all: nothing either
    b.config["process"]
        .as_object_mut()
        .unwrap()
        .remove("capabilities");
    let d = rt.probe_detached(&mut b);
    check_caps(&d.seen, &all_empty);
    assert_eq!(
        host_caps(d.pid),
        vec!["0000000000000000"; 5],
        "host: Cap* without capabilities"
    );
    finish(&rt, &d.id);
}

#[test]
fn ambient_caps_outside_inheritable_are_skipped_like_runc() {
    // `runc spec`'s default lists ambient caps without inheritable ones; runc and crun run it
    // and leave the ambient set empty (the kernel cannot raise them).
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let seen = rt.probe(&mut b, &[]);
    let dflt: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    check_caps(
        &seen,
        &[
            ("CapBnd", dflt),
            ("CapPrm", dflt),
            ("CapEff", dflt),
            ("CapInh", &[]),
            ("CapAmb", &[]),
        ],
    );
}

#[test]
fn no_new_privileges_is_set_as_configured() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    for (flag, want) in [(true, 1), (false, 0)] {
        b.config["process"]["noNewPrivileges"] = flag.into();
        let d = rt.probe_detached(&mut b);
        assert_eq!(
            d.seen["NoNewPrivs"], want,
            "NoNewPrivs inside with noNewPrivileges={flag}"
        );
        assert_eq!(
            d.seen["no_new_privs"], flag,
            "prctl(PR_GET_NO_NEW_PRIVS) inside"
        );
        assert_eq!(
            proc_status_field(d.pid, "NoNewPrivs").as_deref(),
            Some(want.to_string().as_str()),
            "host: NoNewPrivs with noNewPrivileges={flag}"
        );
        finish(&rt, &d.id);
    }
}

#[test]
fn oom_score_adj_is_set() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["oomScoreAdj"] = 500.into();
    let d = rt.probe_detached(&mut b);
    assert_eq!(d.seen["oom_score_adj"], 500);
    let host = std::fs::read_to_string(format!("/proc/{}/oom_score_adj", d.pid)).unwrap();
    assert_eq!(host.trim(), "500", "host: /proc/<pid>/oom_score_adj");
    finish(&rt, &d.id);
}

#[test]
fn process_is_pid_1_in_a_pid_namespace() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    assert_eq!(d.seen["pid"], 1);
    assert_eq!(d.seen["ppid"], 0);
    assert_ne!(d.pid, 1);
    let nspid = proc_status_field(d.pid, "NSpid").unwrap();
    assert_eq!(nspid, format!("{}\t1", d.pid), "host: NSpid of the init");
    finish(&rt, &d.id);
}

#[test]
fn stdio_passes_straight_through() {
    // terminal false: the container's fds 0-2 are the very files the runtime was given (no
    // pipe or pty in between), as runc does for create.
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "report"]);
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fresh fds which the Files below then own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (rd, wr) = unsafe {
        use std::os::fd::FromRawFd;
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    use std::os::unix::fs::MetadataExt;
    let pipe_ino = wr.metadata().unwrap().ino();
    let id = unique_id("stdio");
    let rd_fd = rd.as_raw_fd();
    let o = rt.create_full(&b, &id, &[], |c| {
        inherit_fd(c, rd_fd, 0);
    });
    assert_success(&o, "create");
    drop(rd);
    rt.start(&id);
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    drop(wr);
    let (out, err) = rt.container_output(&id);
    let seen: Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?} {err:?}"));
    let fds = seen["fds"].as_array().unwrap();
    let target = |n: i64| {
        fds.iter()
            .find(|f| f["fd"] == n)
            .map(|f| f["target"].as_str().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("fd {n} not open in the container: {fds:?}"))
    };
    assert_eq!(
        target(0),
        format!("pipe:[{pipe_ino}]"),
        "fd 0 is the runtime's stdin pipe"
    );
    assert!(
        target(1).ends_with(&format!("{id}.ctr.out")),
        "fd 1: {}",
        target(1)
    );
    assert!(
        target(2).ends_with(&format!("{id}.ctr.err")),
        "fd 2: {}",
        target(2)
    );
    assert_success(&rt.cmd(&["delete", &id]), "delete");
    assert_nothing_left(&rt, &id);
}

#[test]
fn missing_executable_fails_run_and_create_naming_process_args() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/no/such/binary"]);
    for sub in ["run", "create"] {
        let id = unique_id("noexec");
        b.write_if_changed();
        let o = rt.cmd(&[sub, "--bundle", b.path_str(), &id]);
        let err = assert_fails(&o, &format!("{sub} of a missing executable"));
        if !reference_mode() {
            assert!(
                err.contains("process.args"),
                "{sub}: message does not name process.args: {err}"
            );
            assert_eq!(
                err.lines().count(),
                1,
                "{sub}: expected one line on stderr: {err}"
            );
        }
        assert_nothing_left(&rt, &id);
    }
}

/// Run the probe with extra inheritable fds 3, 4 and 9 handed to vsrun (as engines do).
fn run_with_extra_fds(rt: &Runtime, b: &mut Bundle, extra: &[&str]) -> (Value, String) {
    b.set_args(&["/probe"]);
    b.write_if_changed();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("preserved-marker");
    let f3 = std::fs::File::create(&marker).unwrap();
    let f4 = std::fs::File::create(dir.path().join("not-preserved-4")).unwrap();
    let f9 = std::fs::File::create(dir.path().join("not-preserved-9")).unwrap();
    let (a, c, d) = (f3.as_raw_fd(), f4.as_raw_fd(), f9.as_raw_fd());
    let id = unique_id("fds");
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--bundle", b.path_str(), &id]);
    // Move them out of the way first so that dup2 targets never clobber a source.
    let o = rt.cmd_with(&args, |cmd| {
        inherit_fd(cmd, a, 100);
        inherit_fd(cmd, c, 101);
        inherit_fd(cmd, d, 102);
        inherit_fd(cmd, 100, 3);
        inherit_fd(cmd, 101, 4);
        inherit_fd(cmd, 102, 9);
        // SAFETY: close in the child before exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(cmd, || {
                for fd in 100..103 {
                    libc::close(fd);
                }
                Ok(())
            });
        }
    });
    assert_success(&o, &format!("run {extra:?} with extra fds"));
    assert_nothing_left(rt, &id);
    (
        serde_json::from_slice(&o.stdout).expect("probe JSON"),
        marker.display().to_string(),
    )
}

#[test]
fn only_stdio_fds_are_open_in_the_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let (seen, _) = run_with_extra_fds(&rt, &mut b, &[]);
    assert_eq!(
        fd_numbers(&seen),
        vec![0, 1, 2],
        "open fds in the container: {}",
        seen["fds"]
    );
}

#[test]
fn preserve_fds_passes_extra_fds() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let (seen, marker) = run_with_extra_fds(&rt, &mut b, &["--preserve-fds", "1"]);
    assert_eq!(
        fd_numbers(&seen),
        vec![0, 1, 2, 3],
        "open fds with --preserve-fds 1: {}",
        seen["fds"]
    );
    let t3 = seen["fds"][3]["target"].as_str().unwrap();
    assert!(
        t3.ends_with("preserved-marker"),
        "fd 3 is not the file handed in: {t3} vs {marker}"
    );
}

#[test]
fn socket_activation_passes_listen_fds_before_preserved_ones() {
    let rt = Runtime::new();
    let b = Bundle::new();
    let dir = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(dir.path().join("listen-marker")).unwrap();
    let fd = f.as_raw_fd();
    let id = unique_id("listen");
    b.write();
    let o = rt.cmd_with(&["run", "--bundle", b.path_str(), &id], |cmd| {
        cmd.env("LISTEN_FDS", "1");
        inherit_fd(cmd, fd, 100);
        inherit_fd(cmd, 100, 3);
    });
    assert_success(&o, "run with LISTEN_FDS=1");
    let seen: serde_json::Value = serde_json::from_slice(&o.stdout).expect("probe JSON");
    assert_eq!(fd_numbers(&seen), vec![0, 1, 2, 3], "fds: {}", seen["fds"]);
    assert!(seen["fds"][3]["target"]
        .as_str()
        .unwrap()
        .ends_with("listen-marker"));
    let env: Vec<String> = serde_json::from_value(seen["env"].clone()).unwrap();
    assert!(env.contains(&"LISTEN_FDS=1".to_string()), "{env:?}");
    assert!(env.contains(&"LISTEN_PID=1".to_string()), "{env:?}");
}

#[test]
fn init_leads_its_own_session_and_joins_every_cgroup_hierarchy() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "sleep", "30"]);
    let id = unique_id("sid");
    assert_success(&rt.run_detached(&b, &id), "run -d");
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // fields 5 (pgrp) and 6 (session) in host pids: both the init itself, as with runc.
    assert_eq!(
        (f[2], f[3]),
        (pid.to_string().as_str(), pid.to_string().as_str()),
        "pgid/sid"
    );
    // Every hierarchy, named ones (name=systemd) and a hybrid's unified tree included.
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in cg.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap();
        assert!(path.ends_with(&id), "not in its own cgroup: {line}\n{cg}");
    }
}
