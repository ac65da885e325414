//! Lifecycle (runtime-spec runtime.md "Lifecycle" and "Operations", runc 1.1's CLI): create,
//! start, state, kill, delete, run, list, and what each leaves on the host.

use serde_json::Value;
use spec_tests::*;
use std::time::{Duration, Instant};

const SLEEP: &[&str] = &["/probe", "sleep", "1000"];

fn delete_and_check(rt: &Runtime, id: &str) {
    let o = rt.cmd(&["delete", id]);
    assert_success(&o, &format!("delete {id}"));
    assert_nothing_left(rt, id);
}

#[test]
fn create_leaves_init_blocked_until_start() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "report"]);
    let id = unique_id("created");
    assert_success(&rt.create(&b, &id), "create");

    let st = rt.state(&id);
    assert_eq!(st["status"], "created", "state after create: {st}");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], b.path_str(), "state.bundle");
    for key in ["ociVersion", "created", "rootfs", "owner"] {
        assert!(st.get(key).is_some(), "state lacks {key}: {st}");
    }
    let pid = st["pid"].as_i64().expect("state.pid") as i32;
    assert!(
        pid > 0,
        "state.pid of a created container must be > 0: {st}"
    );
    assert!(
        pid_alive(pid),
        "host: /proc/{pid} (the blocked init) does not exist"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_ne!(
        proc_cmdline(pid),
        vec!["/probe", "report"],
        "the process ran before start"
    );
    assert_eq!(
        rt.container_output(&id).0,
        "",
        "the probe printed before start"
    );
    assert_eq!(
        rt.status(&id).as_deref(),
        Some("created"),
        "status changed without start"
    );

    rt.start(&id);
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    let (out, err) = rt.container_output(&id);
    let seen: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| {
        panic!("container stdout is not the probe's JSON ({e}): {out:?} {err:?}")
    });
    assert_eq!(
        seen["pid"], 1,
        "the started process is the container's init"
    );
    assert_eq!(seen["hostname"], "vsrun-test");
    delete_and_check(&rt, &id);
}

#[test]
fn start_execs_the_process_and_state_is_running() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(SLEEP);
    let id = unique_id("running");
    assert_success(&rt.create(&b, &id), "create");
    let pid = pid_of(&rt, &id);
    rt.start(&id);
    let st = rt.state(&id);
    assert_eq!(st["status"], "running", "state after start: {st}");
    assert_eq!(
        st["pid"].as_i64(),
        Some(pid as i64),
        "start keeps the pid that create reported"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while proc_cmdline(pid) != SLEEP {
        assert!(
            Instant::now() < deadline,
            "host: pid {pid} never became {SLEEP:?}: {:?}",
            proc_cmdline(pid)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = rt.cmd(&["kill", &id, "KILL"]);
    assert_success(&o, "kill KILL");
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    assert_dies_within(pid, Duration::from_secs(5));
    delete_and_check(&rt, &id);
}

#[test]
fn state_of_stopped_container_reports_stopped() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "exit", "0"]);
    let id = unique_id("stopped");
    assert_success(&rt.create(&b, &id), "create");
    let pid = pid_of(&rt, &id);
    rt.start(&id);
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    let st = rt.state(&id);
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], b.path_str());
    // runc reports pid 0 once the init is gone
    assert_eq!(st["pid"], 0, "state.pid of a stopped container: {st}");
    assert!(!pid_alive(pid), "host: the init {pid} is still alive");
    delete_and_check(&rt, &id);
}

#[test]
fn start_of_stopped_container_fails() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "exit", "0"]);
    let id = unique_id("restart");
    assert_success(&rt.create(&b, &id), "create");
    rt.start(&id);
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    assert_fails(&rt.cmd(&["start", &id]), "second start");
    delete_and_check(&rt, &id);
}

#[test]
fn run_propagates_exit_status() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "exit", "3"]);
    let id = unique_id("exit3");
    let o = rt.run(&b, &id);
    assert_eq!(
        o.status.code(),
        Some(3),
        "run of `exit 3`:\n{}",
        output_text(&o)
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn run_reports_death_by_signal_as_128_plus_signal() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // Not PID 1 of a pid namespace: such an init ignores the signals it sends itself.
    b.remove_namespace("pid");
    for (sig, code) in [("KILL", 137), ("TERM", 143)] {
        b.set_args(&["/probe", "kill-self", sig]);
        let id = unique_id("sig");
        let o = rt.run(&b, &id);
        assert_eq!(
            o.status.code(),
            Some(code),
            "run of `kill-self {sig}`:\n{}",
            output_text(&o)
        );
        assert_nothing_left(&rt, &id);
    }
}

#[test]
fn run_reports_pid1_fault_as_139() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "kill-self", "SEGV"]);
    let id = unique_id("segv");
    let o = rt.run(&b, &id);
    assert_eq!(
        o.status.code(),
        Some(139),
        "run of a PID 1 that segfaults:\n{}",
        output_text(&o)
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn run_without_keep_deletes_the_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "exit", "0"]);
    let id = unique_id("nokeep");
    assert_success(&rt.run(&b, &id), "run");
    assert_nothing_left(&rt, &id);
}

#[test]
fn kill_accepts_signal_names_and_numbers() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(SLEEP);
    for sig in ["KILL", "SIGKILL", "9"] {
        let id = unique_id("kill");
        assert_success(&rt.run_detached(&b, &id), "run -d");
        let pid = pid_of(&rt, &id);
        assert!(pid_alive(pid));
        let o = rt.cmd(&["kill", &id, sig]);
        assert_success(&o, &format!("kill {id} {sig}"));
        assert_dies_within(pid, Duration::from_secs(5));
        rt.wait_status(&id, "stopped", Duration::from_secs(5));
        delete_and_check(&rt, &id);
    }
}

#[test]
fn kill_with_unknown_signal_fails() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(SLEEP);
    let id = unique_id("badsig");
    assert_success(&rt.run_detached(&b, &id), "run -d");
    let pid = pid_of(&rt, &id);
    assert_fails(
        &rt.cmd(&["kill", &id, "NOSUCHSIG"]),
        "kill with an unknown signal",
    );
    assert!(pid_alive(pid), "the init died from a bad kill");
    assert_success(&rt.delete_force(&id), "delete --force");
    assert_nothing_left(&rt, &id);
}

#[test]
fn kill_all_signals_every_process_of_the_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // Without a pid namespace killing the init alone would leave its children running.
    b.remove_namespace("pid");
    b.set_args(&[
        "/bin/sh",
        "-c",
        "/probe sleep 1000 & /probe sleep 1000 & wait",
    ]);
    let id = unique_id("killall");
    assert_success(&rt.run_detached(&b, &id), "run -d");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut procs = processes_in(b.path());
    while procs.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "expected 3 processes in the container, host sees {procs:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
        procs = processes_in(b.path());
    }
    let o = rt.cmd(&["kill", "--all", &id, "KILL"]);
    assert_success(&o, "kill --all KILL");
    for pid in procs {
        assert_dies_within(pid, Duration::from_secs(5));
    }
    rt.wait_status(&id, "stopped", Duration::from_secs(5));
    delete_and_check(&rt, &id);
}

#[test]
fn delete_removes_a_created_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(SLEEP);
    let id = unique_id("delcreated");
    assert_success(&rt.create(&b, &id), "create");
    let pid = pid_of(&rt, &id);
    let o = rt.cmd(&["delete", &id]);
    assert_success(&o, "delete of a created container");
    assert_dies_within(pid, Duration::from_secs(5));
    assert_nothing_left(&rt, &id);
    assert_eq!(
        rt.container_output(&id).0,
        "",
        "the process ran although never started"
    );
}

#[test]
fn delete_of_running_container_requires_force() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(SLEEP);
    let id = unique_id("delrunning");
    assert_success(&rt.run_detached(&b, &id), "run -d");
    let pid = pid_of(&rt, &id);
    assert_fails(&rt.cmd(&["delete", &id]), "delete of a running container");
    assert!(
        pid_alive(pid),
        "delete without --force killed the container"
    );
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
    let o = rt.cmd(&["delete", "--force", &id]);
    assert_success(&o, "delete --force");
    assert_dies_within(pid, Duration::from_secs(5));
    assert_nothing_left(&rt, &id);
}

#[test]
fn delete_of_unknown_container_fails() {
    let rt = Runtime::new();
    assert_fails(
        &rt.cmd(&["delete", "no-such-container"]),
        "delete of an unknown id",
    );
}

#[test]
fn state_of_unknown_container_fails() {
    let rt = Runtime::new();
    assert_fails(
        &rt.cmd(&["state", "no-such-container"]),
        "state of an unknown id",
    );
}

/// Two created containers, each in its own bundle (so delete checks see only their own).
fn two_created(rt: &Runtime, b: &mut Bundle, b2: &mut Bundle) -> (String, String) {
    b.set_args(SLEEP);
    b2.set_args(SLEEP);
    let a = unique_id("lista");
    let c = unique_id("listb");
    assert_success(&rt.create(b, &a), "create a");
    assert_success(&rt.create(b2, &c), "create b");
    (a, c)
}

#[test]
fn list_prints_a_table_with_runc_header() {
    let rt = Runtime::new();
    let (mut b, mut b2) = (Bundle::new(), Bundle::new());
    let (a, c) = two_created(&rt, &mut b, &mut b2);
    let o = rt.cmd(&["list"]);
    assert_success(&o, "list");
    let out = stdout_str(&o);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "list header:\n{out}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "list rows:\n{out}");
    for (id, bundle) in [(&a, &b), (&c, &b2)] {
        let row = rows
            .iter()
            .find(|r| r[0] == id.as_str())
            .unwrap_or_else(|| panic!("{id} not listed:\n{out}"));
        assert_eq!(row.len(), 6, "row of {id}: {row:?}");
        assert_eq!(row[1], pid_of(&rt, id).to_string(), "PID column");
        assert_eq!(row[2], "created", "STATUS column");
        assert_eq!(row[3], bundle.path_str(), "BUNDLE column");
        assert_eq!(row[5], "root", "OWNER column");
    }
    for id in [a, c] {
        delete_and_check(&rt, &id);
    }
}

#[test]
fn list_format_json_lists_state_objects() {
    let rt = Runtime::new();
    let (mut b, mut b2) = (Bundle::new(), Bundle::new());
    let (a, c) = two_created(&rt, &mut b, &mut b2);
    let o = rt.cmd(&["list", "--format", "json"]);
    assert_success(&o, "list --format json");
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", output_text(&o)));
    let arr = v
        .as_array()
        .unwrap_or_else(|| panic!("list json is not an array: {v}"));
    assert_eq!(arr.len(), 2, "{v}");
    for (id, bundle) in [(&a, &b), (&c, &b2)] {
        let e = arr
            .iter()
            .find(|e| e["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} missing: {v}"));
        assert_eq!(e["status"], "created");
        assert_eq!(e["pid"].as_i64(), Some(pid_of(&rt, id) as i64));
        assert_eq!(e["bundle"], bundle.path_str());
        assert_eq!(e["owner"], "root");
        assert!(e["created"].is_string(), "created: {e}");
    }
    for id in [a, c] {
        delete_and_check(&rt, &id);
    }
}

#[test]
fn list_quiet_prints_only_ids() {
    let rt = Runtime::new();
    let (mut b, mut b2) = (Bundle::new(), Bundle::new());
    let (a, c) = two_created(&rt, &mut b, &mut b2);
    let o = rt.cmd(&["list", "-q"]);
    assert_success(&o, "list -q");
    let mut ids: Vec<String> = stdout_str(&o).lines().map(String::from).collect();
    ids.sort();
    let mut want = vec![a.clone(), c.clone()];
    want.sort();
    assert_eq!(ids, want, "list -q");
    for id in [a, c] {
        delete_and_check(&rt, &id);
    }
}

#[test]
fn list_of_empty_root_prints_only_the_header() {
    let rt = Runtime::new();
    let o = rt.cmd(&["list"]);
    assert_success(&o, "list");
    let out = stdout_str(&o);
    assert_eq!(out.lines().count(), 1, "list of an empty root:\n{out}");
    let o = rt.cmd(&["list", "--format", "json"]);
    assert_success(&o, "list --format json");
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", output_text(&o)));
    // runc prints `null` here; an empty array is as good
    assert!(
        v.is_null() || v == serde_json::json!([]),
        "list --format json of an empty root: {v}"
    );
}

#[test]
fn pid_file_holds_the_state_pid() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(SLEEP);
    let id = unique_id("pidfile");
    let pid_file = b.path().join("init.pid");
    let o = rt.create_with(&b, &id, &["--pid-file", pid_file.to_str().unwrap()]);
    assert_success(&o, "create --pid-file");
    let text = std::fs::read_to_string(&pid_file).expect("pid file written");
    let pid: i32 = text
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid file {text:?}: {e}"));
    assert_eq!(pid, pid_of(&rt, &id), "pid file vs state.pid");
    assert!(pid_alive(pid));
    assert_success(&rt.delete_force(&id), "delete --force");
    assert_nothing_left(&rt, &id);
}

#[test]
fn run_detach_leaves_the_container_running() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(SLEEP);
    let id = unique_id("detach");
    let t = Instant::now();
    assert_success(&rt.run_detached(&b, &id), "run -d");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "run -d waited for the container"
    );
    let st = rt.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert_eq!(proc_cmdline(pid), SLEEP, "host: the container's init");
    assert_success(&rt.delete_force(&id), "delete --force");
    assert_dies_within(pid, Duration::from_secs(5));
    assert_nothing_left(&rt, &id);
}

#[test]
fn run_keep_keeps_state_after_exit() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "exit", "0"]);
    let id = unique_id("keep");
    let o = rt.cmd(&["run", "--keep", "--bundle", b.path_str(), &id]);
    assert_success(&o, "run --keep");
    let st = rt.state(&id);
    assert_eq!(st["status"], "stopped", "state after run --keep: {st}");
    delete_and_check(&rt, &id);
}

#[test]
fn duplicate_id_fails() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(SLEEP);
    let id = unique_id("dup");
    assert_success(&rt.create(&b, &id), "first create");
    let pid = pid_of(&rt, &id);
    let o = rt.cmd(&["create", "--bundle", b.path_str(), &id]);
    assert_fails(&o, "second create of the same id");
    let o = rt.cmd(&["run", "--bundle", b.path_str(), &id]);
    assert_fails(&o, "run with an existing id");
    assert_eq!(
        pid_of(&rt, &id),
        pid,
        "the failed create changed the first container"
    );
    assert_eq!(rt.status(&id).as_deref(), Some("created"));
    delete_and_check(&rt, &id);
}

#[test]
fn concurrent_creates_of_one_id_exactly_one_succeeds() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(SLEEP);
    b.write();
    let id = unique_id("race");
    let outputs: Vec<std::process::Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| s.spawn(|| rt.cmd(&["create", "--bundle", b.path_str(), &id])))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("create thread"))
            .collect()
    });
    let ok = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "successful creates of one id out of 20");
    for o in outputs.iter().filter(|o| !o.status.success()) {
        assert_fails(o, "losing concurrent create");
    }
    assert_eq!(rt.status(&id).as_deref(), Some("created"));
    let pid = pid_of(&rt, &id);
    // Exactly one init exists for the container: the losers left no process behind.
    std::thread::sleep(Duration::from_millis(200));
    let procs: Vec<i32> = processes_in(b.path())
        .into_iter()
        .filter(|p| pid_alive(*p))
        .collect();
    assert_eq!(
        procs,
        vec![pid],
        "host: processes in the bundle after the race"
    );
    delete_and_check(&rt, &id);
}

#[test]
fn delete_force_of_a_missing_container_succeeds_and_clears_half_made_ones() {
    let rt = Runtime::new();
    // runc's rule: engines call `delete --force` after a failed create; it must not fail.
    assert_success(
        &rt.cmd(&["delete", "--force", "never-created"]),
        "delete --force missing",
    );
    // A create killed before state.json: the dir exists without it.
    let id = unique_id("half");
    std::fs::create_dir_all(rt.state_dir(&id)).unwrap();
    assert!(
        !rt.cmd(&["delete", &id]).status.success(),
        "plain delete must refuse"
    );
    assert_success(
        &rt.cmd(&["delete", "--force", &id]),
        "delete --force half-made",
    );
    assert!(!rt.state_dir(&id).exists());
    // One killed between mkdir and rename leaves an unlocked `.creating-*` dir.
    std::fs::create_dir_all(rt.root().join(".creating-1-1")).unwrap();
    assert_success(
        &rt.cmd(&["delete", "--force", "anything"]),
        "delete --force sweeps",
    );
    assert!(!rt.root().join(".creating-1-1").exists());
}

/// A create killed in its createRuntime hook (after the clone made the cgroup, before
/// state.json): `delete --force` removes the cgroup the config named, from the leftovers
/// record the create wrote before it claimed anything.
#[test]
fn delete_force_after_a_crashed_create_removes_its_custom_cgroup() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(SLEEP);
    let id = unique_id("crashed");
    let path = format!("/vsrun-test/{id}");
    b.config["linux"]["cgroupsPath"] = path.clone().into();
    // The hook is vsrun's own child: its parent is the create.
    b.config["hooks"]["createRuntime"] =
        serde_json::json!([{"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $PPID"]}]);
    let o = rt.create(&b, &id);
    assert_eq!(shell_code(&o.status), 137, "create: {}", output_text(&o));
    let made = cgroup_dirs_at(std::path::Path::new(&path));
    assert!(
        !made.is_empty(),
        "the killed create made no cgroup at {path}"
    );
    assert!(
        rt.state_dir(&id).exists(),
        "the killed create left no state dir"
    );
    assert_success(&rt.delete_force(&id), "delete --force after the crash");
    assert_eq!(
        cgroup_dirs_at(std::path::Path::new(&path)),
        Vec::<std::path::PathBuf>::new(),
        "cgroup dirs left"
    );
    assert_nothing_left(&rt, &id);
}

/// However few fds vsrun may open (RLIMIT_NOFILE from 4 to 40), a create works or fails
/// leaving nothing: no state dir, cgroup or process. Among these limits are the ones where the
/// sync socketpair, the clone's pidfd or the dup of the sync socket after the clone fails.
#[test]
fn a_create_short_of_fds_works_or_leaves_nothing() {
    use std::os::unix::process::CommandExt;
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(SLEEP);
    b.write_if_changed();
    let mut failed = 0;
    for limit in 4..=40u64 {
        let id = unique_id("nofile");
        let o = rt.cmd_with(&["create", "--bundle", b.path_str(), &id], |c| {
            // SAFETY: getrlimit/setrlimit only, in the forked child before exec.
            unsafe {
                c.pre_exec(move || {
                    let mut r = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
                    r.rlim_cur = limit;
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        });
        if o.status.success() {
            delete_and_check(&rt, &id);
            continue;
        }
        failed += 1;
        eprintln!("nofile {limit}: {}", output_text(&o).trim());
        assert_eq!(
            o.status.code(),
            Some(1),
            "nofile {limit}: {}",
            output_text(&o)
        );
        assert_nothing_left(&rt, &id);
        let left = cgroup_dirs_of(&id);
        assert!(
            left.is_empty(),
            "nofile {limit}: cgroups left {left:?} after: {}",
            output_text(&o)
        );
    }
    assert!(failed > 0, "no limit from 4 to 40 made create fail");
}

/// The harness's own check: a cgroup directory of the container's cgroupsPath that is still
/// there after delete (made again here, as a leaking runtime would leave it) fails
/// `assert_nothing_left`.
#[test]
fn nothing_left_sees_a_cgroup_left_behind() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(SLEEP);
    let id = unique_id("leak");
    let path = format!("/vsrun-test/{id}");
    b.config["linux"]["cgroupsPath"] = path.clone().into();
    assert_success(&rt.create(&b, &id), "create");
    let made = cgroup_dirs_at(std::path::Path::new(&path));
    assert!(!made.is_empty(), "create made no cgroup at {path}");
    assert_success(&rt.delete_force(&id), "delete --force");
    std::fs::create_dir(&made[0]).unwrap();
    let caught = std::panic::catch_unwind(|| assert_nothing_left(&rt, &id));
    std::fs::remove_dir(&made[0]).unwrap();
    assert!(
        caught.is_err(),
        "{} left, and assert_nothing_left passed",
        made[0].display()
    );
}
