//! Where runc 1.1.5 (and crun) accept a command line or a config that vsrun used to refuse:
//! unknown capability names, `exec -p` defaults, `exec --cgroup`, runc's negative `update`
//! values, `kill ... 0`, and exec's exit status 255 for its own errors. Each test checks what
//! the container sees and what the host sees.

use serde_json::{json, Value};
use spec_tests::*;
use std::fs;

fn cap_names(seen: &Value, set: &str) -> Vec<String> {
    let mut n: Vec<String> = seen["caps"][set]["names"]
        .as_array()
        .unwrap_or_else(|| panic!("caps.{set}.names: {seen}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    n.sort();
    n
}

/// `vsrun exec FLAGS ID /probe`, asserted to exit 0: what the process saw and vsrun's stderr.
#[track_caller]
fn exec_probe_stderr(rt: &Runtime, id: &str, flags: &[&str]) -> (Value, String) {
    let (seen, o) = exec_probe_with(rt, id, flags, &[], |_| {});
    assert_success(&o, &format!("exec {flags:?} {id} /probe"));
    (seen, stderr_str(&o))
}

#[test]
fn unknown_capability_names_in_the_config_are_ignored_with_a_warning() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let plain = rt.probe(&mut b, &[]);
    for set in CAP_SETS {
        let list = b.config["process"]["capabilities"][set].take();
        let mut list = list.as_array().cloned().unwrap_or_default();
        list.push(json!("CAP_UNKNOWN"));
        b.config["process"]["capabilities"][set] = Value::Array(list);
    }
    let id = unique_id("capunknown");
    let o = rt.run(&b, &id);
    assert_success(&o, "run with CAP_UNKNOWN in every set");
    let seen: Value = serde_json::from_slice(&o.stdout).expect("probe JSON");
    for set in ["CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"] {
        assert_eq!(cap_names(&seen, set), cap_names(&plain, set), "{set}");
    }
    let err = stderr_str(&o);
    assert!(
        err.lines().any(|l| l.contains("warning")
            && l.contains("process.capabilities.bounding")
            && l.contains("CAP_UNKNOWN")),
        "no warning naming process.capabilities.bounding and CAP_UNKNOWN:\n{err}"
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn exec_cap_with_an_unknown_name_is_ignored_with_a_warning() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let (seen, err) = exec_probe_stderr(
        &rt,
        &d.id,
        &["--cap", "CAP_UNKNOWN", "--cap", "CAP_SYS_ADMIN"],
    );
    assert!(
        cap_names(&seen, "CapBnd").contains(&"CAP_SYS_ADMIN".to_string()),
        "the known --cap still applies: {:?}",
        cap_names(&seen, "CapBnd")
    );
    assert!(
        err.lines()
            .any(|l| l.contains("warning") && l.contains("--cap") && l.contains("CAP_UNKNOWN")),
        "no warning naming --cap CAP_UNKNOWN:\n{err}"
    );
    finish(&rt, &d.id);
}

/// runc and crun decode process.json into a struct whose zero user is root, and give a process
/// without capabilities the container's (libcontainer's finalizeNamespace).
#[test]
fn exec_process_json_without_user_or_capabilities_runs_as_root_with_the_containers_caps() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    let d = rt.probe_detached(&mut b);
    assert_eq!(
        d.seen["uid"], 1000,
        "test setup: the container runs as 1000"
    );
    let pj = b.path().join("process.json");
    let process = json!({ "args": ["/probe"], "cwd": "/", "env": ["PATH=/bin"] });
    fs::write(&pj, process.to_string()).unwrap();
    let o = rt.cmd(&["exec", "-p", pj.to_str().unwrap(), &d.id]);
    assert_success(&o, "exec -p without user");
    let seen = parse_json_lines(&o.stdout).unwrap().remove(0);
    for k in ["uid", "euid", "gid", "egid"] {
        assert_eq!(seen[k], 0, "{k}");
    }
    assert_eq!(
        cap_names(&seen, "CapBnd"),
        cap_names(&d.seen, "CapBnd"),
        "bounding set: the container's"
    );
    // cwd stays required, as in runc ("Cwd property must not be empty") and crun
    fs::write(&pj, json!({ "args": ["/probe"] }).to_string()).unwrap();
    let o = rt.cmd(&["exec", "-p", pj.to_str().unwrap(), &d.id]);
    assert_eq!(o.status.code(), Some(255), "{}", output_text(&o));
    assert!(stderr_str(&o).contains("cwd"), "{}", output_text(&o));
    finish(&rt, &d.id);
}

/// `exec --cgroup`: runc 1.1 joins an existing sub-cgroup of the container's, in every
/// hierarchy (`PATH`) or in the ones named (`CONTROLLER:PATH`); a path that leaves the
/// container's cgroup is refused.
#[test]
fn exec_cgroup_joins_a_sub_cgroup_and_never_leaves_the_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let dirs = cgroup_dirs_of(&d.id);
    assert!(!dirs.is_empty(), "test setup: no cgroup dirs for {}", d.id);
    for dir in &dirs {
        let sub = dir.join("sub");
        fs::create_dir(&sub).unwrap();
        // v1 cpuset needs them copied down; on v2 the files exist only where cpuset is enabled.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let (Ok(v), true) = (fs::read_to_string(dir.join(f)), sub.join(f).exists()) {
                fs::write(sub.join(f), v).unwrap();
            }
        }
    }
    let lines = |seen: &Value| -> Vec<String> {
        seen["cgroup"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    };
    let (seen, _) = exec_probe_stderr(&rt, &d.id, &["--cgroup", "sub"]);
    for l in lines(&seen) {
        assert!(l.ends_with(&format!("/{}/sub", d.id)), "--cgroup sub: {l}");
    }
    // The controller form is cgroup v1's (runc: "cgroup v1 only"); v2 has one tree.
    if !pure_v2() {
        let (seen, _) = exec_probe_stderr(&rt, &d.id, &["--cgroup", "pids:sub"]);
        for l in lines(&seen) {
            let moved = l.ends_with("/sub");
            assert_eq!(moved, l.contains(":pids:"), "--cgroup pids:sub: {l}");
        }
    }
    let before = processes_in(&dirs[0]);
    for bad in ["..", "sub/../..", "pids:..", "/../../x", "nosuch"] {
        let o = rt.cmd(&["exec", "--cgroup", bad, &d.id, "/probe"]);
        assert_refused_status(&o, 255, &["--cgroup"], &format!("--cgroup {bad}"));
    }
    assert_eq!(
        processes_in(&dirs[0]),
        before,
        "a refused exec left a process"
    );
    assert_eq!(rt.status(&d.id).as_deref(), Some("running"));
    for dir in &dirs {
        fs::remove_dir(dir.join("sub")).unwrap();
    }
    finish(&rt, &d.id);
}

/// A pure cgroup v2 host (the VM lane), where a container has one cgroup directory.
fn pure_v2() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// runc takes `-1` (unlimited) as the next word for these flags; clap needs to be told.
#[test]
fn update_takes_runcs_negative_values_and_spellings() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["resources"] = json!({
        "memory": { "limit": 268435456, "swap": 268435456 },
        "cpu": { "quota": 50000, "period": 100000 },
        "pids": { "limit": 100 }
    });
    let d = rt.probe_detached(&mut b);
    let file = |ctrl: &str, f: &str| {
        let dir = cgroup_dirs_of(&d.id)
            .into_iter()
            .find(|p| p.join(f).exists() && p.to_string_lossy().contains(ctrl))
            .unwrap_or_else(|| panic!("no {ctrl} dir with {f}"));
        fs::read_to_string(dir.join(f)).unwrap().trim().to_string()
    };
    for args in [
        &["--memory-swap", "-1"][..],
        &["--cpu-quota", "-1"],
        &["--pids-limit", "-1"],
        &["--memory", "-1", "--memory-swap", "-1"],
        &["--memory-reservation", "-1"],
        &["--cpu-share", "512"],
        &["--kernel-memory", "1m"],
    ] {
        let mut v = vec!["update"];
        v.extend_from_slice(args);
        v.push(&d.id);
        assert_success(&rt.cmd(&v), &v.join(" "));
    }
    if pure_v2() {
        assert_eq!(file("", "pids.max"), "max");
        assert_eq!(file("", "cpu.max").split(' ').next(), Some("max"));
        assert_eq!(file("", "cpu.weight"), shares_to_weight(512).to_string());
        assert_eq!(file("", "memory.max"), "max");
        assert_eq!(file("", "memory.swap.max"), "max");
    } else {
        assert_eq!(file("pids", "pids.max"), "max");
        assert_eq!(file("cpu", "cpu.cfs_quota_us"), "-1");
        assert_eq!(file("cpu", "cpu.shares"), "512");
        assert_eq!(
            file("memory", "memory.limit_in_bytes"),
            "9223372036854771712"
        );
    }
    // a flag where runc also refuses -1 names the flag
    let o = rt.cmd(&["update", "--cpu-period", "-1", &d.id]);
    assert_refused_status(&o, 1, &["--cpu-period"], "--cpu-period -1");
    finish(&rt, &d.id);
}

/// runc 1.1.5 accepts signal 0 (kill(2)'s existence check) with and without --all.
#[test]
fn kill_signal_0_checks_that_the_container_runs() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    assert_success(&rt.cmd(&["kill", &d.id, "0"]), "kill ID 0");
    assert_success(&rt.cmd(&["kill", "--all", &d.id, "0"]), "kill --all ID 0");
    assert!(pid_alive(d.pid), "signal 0 must not hurt the init");
    assert_eq!(rt.status(&d.id).as_deref(), Some("running"));
    assert_success(&rt.cmd(&["kill", &d.id, "KILL"]), "kill KILL");
    rt.wait_status(&d.id, "stopped", std::time::Duration::from_secs(10));
    let o = rt.cmd(&["kill", &d.id, "0"]);
    assert_refused_status(&o, 1, &["not running"], "kill 0 of a stopped container");
    finish(&rt, &d.id);
}

/// runc's exec exits 255 when it fails itself, so a caller tells that from the process
/// exiting 1; usage errors (found by the flag parser) and every other command exit 1, a
/// foreground `run` included.
#[test]
fn exec_exits_255_for_its_own_errors() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let o = rt.cmd(&[
        "exec",
        "--pid-file",
        "/nonexistent/dir/pid",
        &d.id,
        "/probe",
    ]);
    assert_refused_status(&o, 255, &["--pid-file"], "exec --pid-file in a missing dir");
    let o = rt.cmd(&["exec", "no-such-container", "/probe"]);
    assert_refused_status(
        &o,
        255,
        &["no-such-container"],
        "exec of a missing container",
    );
    let o = rt.cmd(&["exec", &d.id, "/probe", "exit", "1"]);
    assert_eq!(o.status.code(), Some(1), "the process's own 1");
    let o = rt.cmd(&["exec", "--preserve-fds", "abc", &d.id, "/probe"]);
    assert_refused_status(&o, 1, &["--preserve-fds"], "a bad flag value");
    let o = rt.cmd(&["exec", &d.id, "/nonexistent"]);
    assert_refused_status(&o, 255, &["/nonexistent"], "exec of a missing program");
    assert_eq!(rt.status(&d.id).as_deref(), Some("running"));
    finish(&rt, &d.id);
    let mut b = Bundle::new();
    b.set_args(&["/nonexistent"]);
    b.write();
    let id = unique_id("run-missing");
    let o = rt.cmd(&["run", "--no-subreaper", "-b", b.path_str(), &id]);
    assert_refused_status(
        &o,
        1,
        &["/nonexistent"],
        "foreground run of a missing program",
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn run_accepts_no_subreaper() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "exit", "3"]);
    b.write();
    let id = unique_id("nosubreaper");
    let o = rt.cmd(&["run", "--no-subreaper", "-b", b.path_str(), &id]);
    assert_eq!(o.status.code(), Some(3), "{}", output_text(&o));
    assert_nothing_left(&rt, &id);
}
