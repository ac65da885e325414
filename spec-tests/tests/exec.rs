//! `vsrun exec` (runc's exec command; runtime-spec: a process started in a running container):
//! the new process joins every namespace and the cgroup of the container, gets the capabilities,
//! user, env, cwd, rlimits and no_new_privs of its process spec (process.json, or the
//! container's own process with runc's flags on top), and its exit status becomes exec's.
//! Each test compares what the exec'd `/probe` sees with what the container's init saw and with
//! the host's view (/proc/<pid>/...).

use serde_json::{json, Value};
use spec_tests::*;
use std::fs;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const NAMESPACES: [&str; 8] = ["pid", "mnt", "net", "ipc", "uts", "user", "cgroup", "time"];

/// Wait for a pid file to hold a pid (exec -d writes it before returning; allow a moment).
#[track_caller]
fn read_pid_file(path: &std::path::Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(s) = fs::read_to_string(path) {
            if let Ok(p) = s.trim().parse() {
                return p;
            }
        }
        assert!(
            Instant::now() < deadline,
            "pid file {} never held a pid",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

fn sorted(l: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = l.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn env_has(seen: &Value, kv: &str) -> bool {
    seen["env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str() == Some(kv))
}

fn env_value(seen: &Value, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    seen["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str()?.strip_prefix(&prefix).map(String::from))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Joining

#[test]
fn exec_joins_every_namespace_of_the_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_namespace("cgroup", None);
    let d = rt.probe_detached(&mut b);
    let me = std::process::id().to_string();
    for ns in ["pid", "mnt", "net", "ipc", "uts", "cgroup"] {
        assert_ne!(
            ns_inode(&d.pid.to_string(), ns),
            ns_inode(&me, ns),
            "test setup: the container has no {ns} namespace of its own"
        );
    }
    let seen = exec_probe(&rt, &d.id, &[], &[]);
    for ns in NAMESPACES {
        assert_eq!(
            seen["ns"][ns],
            json!(ns_inode(&d.pid.to_string(), ns)),
            "exec'd process: {ns} namespace differs from the init's (/proc/<init>/ns/{ns})"
        );
        assert_eq!(
            seen["ns"][ns], d.seen["ns"][ns],
            "exec'd process and init see different {ns} namespaces"
        );
    }
    assert_eq!(seen["hostname"], "vsrun-test");
    assert_ne!(
        seen["pid"], 1,
        "the exec'd process is not the container's init"
    );
    assert_eq!(
        seen["ppid"], 0,
        "its parent (vsrun) is outside the pid namespace"
    );
    // The same mount table as the init (rootfs, not the host's).
    let mps = |v: &Value| -> Vec<String> {
        v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["mount_point"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(mps(&seen), mps(&d.seen), "mount table seen by exec vs init");
    finish(&rt, &d.id);
}

#[test]
fn exec_joins_the_user_namespace_first_and_the_time_namespace() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).unwrap();
    b.set_namespace("user", None);
    b.set_namespace("time", None);
    b.config["linux"]["uidMappings"] =
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    b.config["linux"]["gidMappings"] =
        json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    b.config["linux"]["timeOffsets"] = json!({
        "monotonic": { "secs": 86400, "nanosecs": 0 },
        "boottime": { "secs": 172800, "nanosecs": 0 }
    });
    let d = rt.probe_detached(&mut b);
    let pidf = b.path().join("exec.pid");
    let o = rt.cmd(&[
        "exec",
        "-d",
        "--pid-file",
        pidf.to_str().unwrap(),
        &d.id,
        "/probe",
        "sleep",
        "30",
    ]);
    assert_success(&o, "exec -d in a user+time namespace container");
    let epid = read_pid_file(&pidf);
    for ns in NAMESPACES {
        assert_eq!(
            ns_inode(&epid.to_string(), ns),
            ns_inode(&d.pid.to_string(), ns),
            "host view: exec'd process's {ns} namespace differs from the init's"
        );
    }
    assert_eq!(
        proc_uid(epid),
        Some(100000),
        "host view: container root of the exec'd process maps to host uid 100000"
    );
    let seen = exec_probe(&rt, &d.id, &[], &[]);
    assert_eq!(seen["uid"], 0, "uid inside the user namespace");
    assert_eq!(seen["uid_map"], d.seen["uid_map"]);
    assert_eq!(seen["gid_map"], d.seen["gid_map"]);
    let mono = seen["clocks"]["monotonic"].as_f64().unwrap();
    let host_mono = {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: out-pointer to a local.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as f64
    };
    assert!(
        mono - host_mono > 86000.0,
        "exec'd process does not see the monotonic offset: {mono} vs host {host_mono}"
    );
    finish(&rt, &d.id);
}

#[test]
fn exec_enters_the_container_cgroup() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let pidf = b.path().join("exec.pid");
    let o = rt.cmd(&[
        "exec",
        "-d",
        "--pid-file",
        pidf.to_str().unwrap(),
        &d.id,
        "/probe",
        "sleep",
        "30",
    ]);
    assert_success(&o, "exec -d");
    let epid = read_pid_file(&pidf);
    let cg = |p: i32| fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(
        cg(epid),
        cg(d.pid),
        "host view: /proc/<exec pid>/cgroup vs /proc/<init>/cgroup"
    );
    assert_ne!(
        cg(epid),
        fs::read_to_string("/proc/self/cgroup").unwrap(),
        "the exec'd process stayed in the caller's cgroup"
    );
    let seen = exec_probe(&rt, &d.id, &[], &[]);
    assert_eq!(
        seen["cgroup"], d.seen["cgroup"],
        "/proc/self/cgroup inside: exec vs init"
    );
    finish(&rt, &d.id);
}

#[test]
fn exec_in_a_cgroup_namespace_sees_the_container_cgroup_as_root() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_namespace("cgroup", None);
    let d = rt.probe_detached(&mut b);
    let seen = exec_probe(&rt, &d.id, &[], &[]);
    for line in seen["cgroup"].as_array().unwrap() {
        let l = line.as_str().unwrap();
        let path = l.splitn(3, ':').nth(2).unwrap_or_default();
        // named hierarchies that vsrun does not manage (name=systemd) may sit elsewhere
        if l.contains("name=") {
            continue;
        }
        assert_eq!(path, "/", "cgroup ns: {l} (all lines: {})", seen["cgroup"]);
    }
    finish(&rt, &d.id);
}

// ---------------------------------------------------------------------------------------------
// The process spec: process.json

#[test]
fn exec_process_json_sets_user_caps_env_cwd_rlimits_and_nnp() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["noNewPrivileges"] = false.into();
    let d = rt.probe_detached(&mut b);
    let bnd: &[&str] = &["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"];
    let inh: &[&str] = &["CAP_KILL", "CAP_NET_RAW"];
    let amb: &[&str] = &["CAP_NET_RAW"];
    let process = json!({
        "terminal": false,
        "user": { "uid": 1000, "gid": 1001, "additionalGids": [10, 20] },
        "args": ["/probe"],
        "env": ["PATH=/bin:/usr/bin", "FROM_PROCESS_JSON=yes"],
        "cwd": "/tmp",
        "capabilities": {
            "bounding": bnd, "permitted": amb, "effective": amb, "inheritable": inh, "ambient": amb
        },
        "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 512, "soft": 256 } ],
        "noNewPrivileges": true
    });
    let pj = b.path().join("process.json");
    fs::write(&pj, serde_json::to_vec(&process).unwrap()).unwrap();
    let o = rt.cmd(&["exec", "--process", pj.to_str().unwrap(), &d.id]);
    assert_success(&o, "exec --process");
    let seen = parse_json_lines(&o.stdout).unwrap().remove(0);
    for k in ["uid", "euid", "suid", "fsuid"] {
        assert_eq!(seen[k], 1000, "{k}");
    }
    for k in ["gid", "egid", "sgid", "fsgid"] {
        assert_eq!(seen[k], 1001, "{k}");
    }
    assert_eq!(seen["groups"], json!([10, 20]), "additionalGids");
    assert_eq!(seen["cwd"], "/tmp");
    // Exactly process.json's env (not the container's), plus HOME from the rootfs's
    // /etc/passwd when process.json sets none (runc does the same).
    let env: Vec<&str> = seen["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .filter(|e| !e.starts_with("HOME="))
        .collect();
    assert_eq!(env, ["PATH=/bin:/usr/bin", "FROM_PROCESS_JSON=yes"], "env");
    assert_eq!(names(&seen["caps"]["CapBnd"]["names"]), sorted(bnd));
    assert_eq!(names(&seen["caps"]["CapInh"]["names"]), sorted(inh));
    assert_eq!(names(&seen["caps"]["CapPrm"]["names"]), sorted(amb));
    assert_eq!(names(&seen["caps"]["CapEff"]["names"]), sorted(amb));
    assert_eq!(names(&seen["caps"]["CapAmb"]["names"]), sorted(amb));
    assert_eq!(
        seen["rlimits"]["RLIMIT_NOFILE"],
        json!({ "soft": 256, "hard": 512 })
    );
    assert_eq!(seen["no_new_privs"], true, "process.json noNewPrivileges");
    assert_eq!(
        d.seen["no_new_privs"], false,
        "test setup: the init runs without nnp"
    );
    finish(&rt, &d.id);
}

#[test]
fn exec_process_json_args_and_exit_status() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let mut process = b.config["process"].clone();
    process["args"] = json!(["/probe", "exit", "42"]);
    let pj = b.path().join("process.json");
    fs::write(&pj, serde_json::to_vec(&process).unwrap()).unwrap();
    let o = rt.cmd(&["exec", "-p", pj.to_str().unwrap(), &d.id]);
    assert_eq!(o.status.code(), Some(42), "{}", output_text(&o));
    finish(&rt, &d.id);
}

// ---------------------------------------------------------------------------------------------
// The process spec: the container's own process plus runc's flags

#[test]
fn exec_without_process_json_inherits_the_container_process() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["env"] = json!([
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "FROM_CONFIG=1"
    ]);
    b.config["process"]["cwd"] = "/etc".into();
    b.config["process"]["rlimits"] = json!([{ "type": "RLIMIT_NOFILE", "hard": 700, "soft": 600 }]);
    let d = rt.probe_detached(&mut b);
    let seen = exec_probe(&rt, &d.id, &[], &[]);
    assert!(env_has(&seen, "FROM_CONFIG=1"), "env: {}", seen["env"]);
    assert_eq!(seen["cwd"], "/etc");
    assert_eq!(seen["uid"], 0);
    assert_eq!(
        seen["caps"], d.seen["caps"],
        "same capabilities as the init"
    );
    assert_eq!(
        seen["rlimits"]["RLIMIT_NOFILE"],
        json!({ "soft": 600, "hard": 700 })
    );
    assert_eq!(seen["no_new_privs"], d.seen["no_new_privs"]);
    assert_eq!(
        seen["argv"],
        json!(["/probe"]),
        "the inline command, not process.args"
    );
    finish(&rt, &d.id);
}

#[test]
fn exec_flags_override_cwd_env_user_and_groups() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["env"] = json!(["PATH=/bin:/usr/bin", "KEEP=1", "OVERRIDE=old"]);
    let d = rt.probe_detached(&mut b);
    let seen = exec_probe(
        &rt,
        &d.id,
        &[
            "--cwd",
            "/tmp",
            "-e",
            "OVERRIDE=new",
            "--env",
            "ADDED=yes",
            "-u",
            "1000:1001",
            "-g",
            "10",
            "--additional-gids",
            "20",
        ],
        &[],
    );
    assert_eq!(seen["cwd"], "/tmp");
    assert!(env_has(&seen, "KEEP=1"), "env: {}", seen["env"]);
    assert!(env_has(&seen, "ADDED=yes"), "env: {}", seen["env"]);
    assert_eq!(
        env_value(&seen, "OVERRIDE"),
        vec!["new"],
        "-e replaces a variable of the config (once): {}",
        seen["env"]
    );
    assert_eq!(seen["uid"], 1000);
    assert_eq!(seen["euid"], 1000);
    assert_eq!(seen["gid"], 1001);
    assert_eq!(seen["groups"], json!([10, 20]));
    // uid only: gid stays the config's (0)
    let seen = exec_probe(&rt, &d.id, &["--user", "1234"], &[]);
    assert_eq!(seen["uid"], 1234);
    assert_eq!(seen["gid"], 0);
    finish(&rt, &d.id);
}

#[test]
fn exec_cap_flag_adds_a_capability() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    assert!(
        !names(&d.seen["caps"]["CapBnd"]["names"]).contains(&"CAP_SYS_ADMIN".to_string()),
        "test setup: the init lacks CAP_SYS_ADMIN"
    );
    let seen = exec_probe(
        &rt,
        &d.id,
        &["--cap", "CAP_SYS_ADMIN", "-c", "CAP_NET_RAW"],
        &[],
    );
    for set in ["CapBnd", "CapPrm", "CapEff"] {
        let n = names(&seen["caps"][set]["names"]);
        for c in ["CAP_SYS_ADMIN", "CAP_NET_RAW", "CAP_KILL"] {
            assert!(n.contains(&c.to_string()), "{set} lacks {c}: {n:?}");
        }
    }
    // and the init is unchanged
    let again = exec_probe(&rt, &d.id, &[], &[]);
    assert_eq!(again["caps"], d.seen["caps"]);
    finish(&rt, &d.id);
}

#[test]
fn exec_no_new_privs_flag() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["noNewPrivileges"] = false.into();
    let d = rt.probe_detached(&mut b);
    let seen = exec_probe(&rt, &d.id, &[], &[]);
    assert_eq!(seen["no_new_privs"], false);
    let seen = exec_probe(&rt, &d.id, &["--no-new-privs"], &[]);
    assert_eq!(seen["no_new_privs"], true);
    assert_eq!(seen["NoNewPrivs"], 1);
    finish(&rt, &d.id);
}

#[test]
fn exec_gets_the_containers_seccomp_filter() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // readlink(2) fails with EPERM (1) under the container's filter; everything else runs.
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{ "names": ["readlink", "readlinkat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }]
    });
    let d = rt.probe_detached(&mut b);
    assert_eq!(d.seen["seccomp"], 2, "test setup: the init is filtered");
    let seen = exec_probe(&rt, &d.id, &[], &[]);
    assert_eq!(
        seen["seccomp"], 2,
        "exec'd process: Seccomp: in /proc/self/status"
    );
    let r = exec_probe(&rt, &d.id, &[], &["readlink", "/proc/self/exe"]);
    assert_eq!(r["errno"], 1, "readlink under the container's filter: {r}");
    finish(&rt, &d.id);
}

// ---------------------------------------------------------------------------------------------
// Exit status, stdio, detaching, pid files, fds

#[test]
fn exec_propagates_the_exit_status() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    for code in ["0", "1", "3", "255"] {
        let o = rt.cmd(&["exec", &d.id, "/probe", "exit", code]);
        assert_eq!(
            o.status.code(),
            Some(code.parse().unwrap()),
            "exit {code}:\n{}",
            output_text(&o)
        );
    }
    let o = rt.cmd(&["exec", &d.id, "sh", "-c", "exit 9"]);
    assert_eq!(o.status.code(), Some(9), "{}", output_text(&o));
    // Killed by a signal: 128 + signal, like runc.
    let o = rt.cmd(&["exec", &d.id, "/probe", "kill-self", "TERM"]);
    assert_eq!(o.status.code(), Some(128 + 15), "{}", output_text(&o));
    finish(&rt, &d.id);
}

#[test]
fn a_failed_exec_leaves_the_container_running() {
    // A missing executable or cwd is exec's own error (exit 1, one line); the container, its
    // cgroup and its other processes are untouched (runc: only the new process goes away).
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let cg_before = fs::read_to_string(format!("/proc/{}/cgroup", d.pid)).unwrap();
    for (args, what) in [
        (
            vec!["exec", &d.id, "/no/such/binary"],
            "a missing executable",
        ),
        (
            vec!["exec", "--cwd", "/no/such/dir", &d.id, "/probe"],
            "a missing cwd",
        ),
    ] {
        let o = rt.cmd(&args);
        assert_fails_status(&o, 255, &format!("exec of {what}"));
        assert!(
            pid_alive(d.pid),
            "exec of {what} killed the container's init"
        );
        assert_eq!(
            rt.status(&d.id).as_deref(),
            Some("running"),
            "after exec of {what}"
        );
        assert_eq!(
            fs::read_to_string(format!("/proc/{}/cgroup", d.pid)).unwrap(),
            cg_before,
            "after exec of {what}: the init's cgroup changed"
        );
    }
    let seen = exec_probe(&rt, &d.id, &[], &[]);
    assert_eq!(seen["cgroup"], d.seen["cgroup"], "a later exec still works");
    finish(&rt, &d.id);
}

#[test]
fn exec_output_goes_to_execs_stdio() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let o = rt.cmd(&["exec", &d.id, "sh", "-c", "echo out; echo err >&2"]);
    assert_success(&o, "exec sh");
    assert_eq!(stdout_str(&o), "out\n");
    assert_eq!(stderr_str(&o), "err\n");
    // stdin too
    let input = b.path().join("input");
    fs::write(&input, "from-stdin\n").unwrap();
    let f = fs::File::open(&input).unwrap();
    let o = rt.cmd_with(&["exec", &d.id, "cat"], |c| {
        c.stdin(f);
    });
    assert_success(&o, "exec cat");
    assert_eq!(stdout_str(&o), "from-stdin\n");
    finish(&rt, &d.id);
}

#[test]
fn exec_detach_returns_while_the_process_runs_and_writes_the_pid_file() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let pidf = b.path().join("exec.pid");
    let t0 = Instant::now();
    let o = rt.cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        pidf.to_str().unwrap(),
        &d.id,
        "/probe",
        "sleep",
        "20",
    ]);
    assert_success(&o, "exec -d");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "exec -d waited for the process"
    );
    let text = fs::read_to_string(&pidf).expect("--pid-file written");
    assert!(
        !text.ends_with('\n'),
        "runc writes the pid without a newline: {text:?}"
    );
    let epid: i32 = text.parse().expect("pid file holds a number");
    assert!(pid_alive(epid), "the exec'd process is running");
    assert_eq!(proc_cmdline(epid), ["/probe", "sleep", "20"]);
    assert_eq!(
        ns_inode(&epid.to_string(), "pid"),
        ns_inode(&d.pid.to_string(), "pid")
    );
    // It is a member of the container: ps lists it, and delete --force kills it.
    let o = rt.cmd(&["ps", "--format", "json", &d.id]);
    assert_success(&o, "ps --format json");
    let pids: Vec<i32> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(pids.contains(&epid), "ps: {pids:?} lacks {epid}");
    finish(&rt, &d.id);
    assert!(
        wait_dead(epid, Duration::from_secs(5)),
        "exec'd process survived delete --force"
    );
}

#[test]
fn exec_pid_file_in_the_foreground() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let pidf = b.path().join("fg.pid");
    let o = rt.cmd(&[
        "exec",
        "--pid-file",
        pidf.to_str().unwrap(),
        &d.id,
        "/probe",
    ]);
    assert_success(&o, "exec --pid-file");
    let seen = parse_json_lines(&o.stdout).unwrap().remove(0);
    let pid: i32 = fs::read_to_string(&pidf).unwrap().trim().parse().unwrap();
    assert!(pid > 1, "pid file: {pid}");
    assert_ne!(
        seen["pid"],
        json!(pid),
        "host pid, not the in-container pid"
    );
    finish(&rt, &d.id);
}

#[test]
fn exec_preserve_fds_passes_extra_fds() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let f3 = fs::File::create(b.path().join("fd3")).unwrap();
    let f4 = fs::File::create(b.path().join("fd4")).unwrap();
    let (r3, r4) = (f3.as_raw_fd(), f4.as_raw_fd());
    let o = rt.cmd_with(&["exec", "--preserve-fds", "2", &d.id, "/probe"], |c| {
        inherit_fd(c, r3, 3);
        inherit_fd(c, r4, 4);
    });
    assert_success(&o, "exec --preserve-fds 2");
    let seen = parse_json_lines(&o.stdout).unwrap().remove(0);
    let fds: Vec<(i64, String)> = seen["fds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["fd"].as_i64().unwrap(),
                f["target"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let has = |n: i64, suffix: &str| fds.iter().any(|(fd, t)| *fd == n && t.ends_with(suffix));
    assert!(has(3, "/fd3"), "fd 3 not passed: {fds:?}");
    assert!(has(4, "/fd4"), "fd 4 not passed: {fds:?}");
    assert!(
        fds.iter().all(|(fd, _)| *fd <= 4),
        "extra fds leaked into the exec'd process: {fds:?}"
    );

    // Without --preserve-fds the same inherited fds are closed.
    let o = rt.cmd_with(&["exec", &d.id, "/probe"], |c| {
        inherit_fd(c, r3, 3);
        inherit_fd(c, r4, 4);
    });
    assert_success(&o, "exec without --preserve-fds");
    let seen = parse_json_lines(&o.stdout).unwrap().remove(0);
    let n: Vec<i64> = seen["fds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fd"].as_i64().unwrap())
        .collect();
    assert!(
        n.iter().all(|fd| *fd <= 2),
        "fds left open: {}",
        seen["fds"]
    );
    finish(&rt, &d.id);
}

// ---------------------------------------------------------------------------------------------
// Refusals

#[test]
fn exec_into_a_stopped_container_is_refused() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "exit", "0"]);
    let id = unique_id("exec-stopped");
    let o = rt.run_detached(&b, &id);
    assert_success(&o, "run -d");
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    let o = rt.cmd(&["exec", &id, "/probe"]);
    let err = assert_fails_status(&o, 255, "exec into a stopped container");
    assert!(
        reference_mode() || err.contains("stopped"),
        "the error names the state: {err}"
    );
    assert!(o.stdout.is_empty(), "nothing ran: {}", stdout_str(&o));
    assert_eq!(rt.status(&id).as_deref(), Some("stopped"));
    rt.delete_force(&id);
    assert_nothing_left(&rt, &id);
}

#[test]
fn exec_into_a_created_container_runs_beside_the_blocked_init() {
    // runc allows exec into a created container (the init still waits for `start`).
    let rt = Runtime::new();
    let b = Bundle::new();
    let id = unique_id("exec-created");
    assert_success(&rt.create(&b, &id), "create");
    let o = rt.cmd(&["exec", &id, "/probe"]);
    assert_success(&o, "exec into a created container");
    let seen = parse_json_lines(&o.stdout).unwrap().remove(0);
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(seen["ns"]["pid"], json!(ns_inode(&init.to_string(), "pid")));
    assert_eq!(rt.status(&id).as_deref(), Some("created"));
    rt.delete_force(&id);
    assert_nothing_left(&rt, &id);
}

#[test]
fn exec_into_a_paused_container_is_refused_unless_ignore_paused() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    assert_success(&rt.cmd(&["pause", &d.id]), "pause");
    let o = rt.cmd(&["exec", &d.id, "/probe"]);
    let err = assert_fails_status(&o, 255, "exec into a paused container");
    assert!(
        reference_mode() || err.contains("paused"),
        "the error names the state: {err}"
    );
    assert!(o.stdout.is_empty());

    // --ignore-paused: the process is started in the frozen cgroup and runs once resumed.
    let pidf = b.path().join("ip.pid");
    let out = b.path().join("ip.out");
    let pidf_s = pidf.to_str().unwrap().to_string();
    let id = d.id.clone();
    let rt = std::sync::Arc::new(rt);
    let rt2 = rt.clone();
    let out_f = fs::File::create(&out).unwrap();
    let h = std::thread::spawn(move || {
        rt2.cmd_with(
            &[
                "exec",
                "--ignore-paused",
                "--pid-file",
                &pidf_s,
                &id,
                "/probe",
                "exit",
                "5",
            ],
            |c| {
                c.stdout(out_f);
            },
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rt.status(&d.id).as_deref(), Some("paused"));
    assert_success(&rt.cmd(&["resume", &d.id]), "resume");
    let o = h.join().unwrap();
    assert_eq!(
        o.status.code(),
        Some(5),
        "exec --ignore-paused: {}",
        output_text(&o)
    );
    assert!(
        fs::read_to_string(&out).unwrap().contains("\"exiting\":5"),
        "the process ran after resume"
    );
    let o = rt.delete_force(&d.id);
    assert_success(&o, "delete --force");
    assert_nothing_left(&rt, &d.id);
}

#[test]
fn exec_into_a_missing_container_fails() {
    let rt = Runtime::new();
    let o = rt.cmd(&["exec", "no-such-container", "/probe"]);
    let err = assert_fails_status(&o, 255, "exec into a missing container");
    assert!(
        reference_mode() || err.contains("no-such-container"),
        "the error names the id: {err}"
    );
    assert!(
        !rt.state_dir("no-such-container").exists(),
        "exec created a state dir"
    );
}

#[test]
fn exec_leaves_no_process_behind_and_no_runtime_helper() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    for _ in 0..5 {
        let o = rt.cmd(&["exec", &d.id, "/probe", "exit", "0"]);
        assert_success(&o, "exec /probe exit 0");
    }
    let o = rt.cmd(&["ps", "--format", "json", &d.id]);
    assert_success(&o, "ps");
    let pids: Vec<i32> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(pids, vec![d.pid], "only the init is left in the container");
    finish(&rt, &d.id);
}
