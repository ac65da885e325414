//! Bad input to the commands engines call on a running container — exec, update, pause,
//! resume, ps, events — and a console socket that cannot receive the pty. runc's convention
//! and design.md's "Errors and cleanup": exit status 1, exactly one stderr line `vsrun: ...`
//! that names the field, flag or id, and nothing changed: the container keeps its status, its
//! processes (no new one, none gone) and its cgroup limits; a failed create leaves no state.
//!
//! The cases are tables; each row becomes its own #[test], named after the row.

use serde_json::{json, Value};
use spec_tests::*;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// Checks

/// The files of `pid`'s cgroup that update could touch, by name → content.
fn cgroup_values(pid: i32) -> Vec<(String, String)> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mut out = Vec::new();
    let files: &[(&str, &[&str])] = if unified() {
        &[(
            "",
            &[
                "memory.max",
                "memory.swap.max",
                "pids.max",
                "cpu.weight",
                "cpu.max",
                "cpuset.cpus",
                "cpuset.mems",
                "io.bfq.weight",
            ],
        )]
    } else {
        &[
            (
                "memory",
                &[
                    "memory.limit_in_bytes",
                    "memory.soft_limit_in_bytes",
                    "memory.memsw.limit_in_bytes",
                ],
            ),
            ("pids", &["pids.max"]),
            (
                "cpu",
                &["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"],
            ),
            ("cpuset", &["cpuset.cpus", "cpuset.mems"]),
            ("blkio", &["blkio.weight", "blkio.bfq.weight"]),
        ]
    };
    for (ctrl, names) in files {
        let dir = cgroup_dir_in(&text, ctrl).unwrap_or_else(|| "/nonexistent".into());
        for n in *names {
            if let Ok(v) = fs::read_to_string(dir.join(n)) {
                out.push((format!("{ctrl}/{n}"), v.trim().to_string()));
            }
        }
    }
    out
}

/// What "nothing changed" compares for a running container.
#[derive(Debug, PartialEq)]
struct Snapshot {
    status: Option<String>,
    init_alive: bool,
    procs: BTreeSet<i32>,
    cgroup: Vec<(String, String)>,
    root_entries: BTreeSet<String>,
}

fn snapshot(rt: &Runtime, id: &str, pid: i32) -> Snapshot {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let procs = fs::read_to_string(
        cgroup_dir_in(&text, "pids")
            .unwrap_or_else(|| "/nonexistent".into())
            .join("cgroup.procs"),
    )
    .unwrap_or_default()
    .lines()
    .filter_map(|l| l.trim().parse().ok())
    .collect();
    Snapshot {
        status: rt.status(id),
        init_alive: pid_alive(pid),
        procs,
        cgroup: cgroup_values(pid),
        root_entries: root_entries(rt).into_iter().collect(),
    }
}

/// A running container (the probe's report, then sleep) with a known set of limits.
struct Target {
    rt: Runtime,
    b: Bundle,
    id: String,
    pid: i32,
}

fn target() -> Target {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["resources"] = json!({
        "memory": { "limit": 134217728 },
        "pids": { "limit": 64 },
        "cpu": { "shares": 512 }
    });
    let d = rt.probe_detached(&mut b);
    Target {
        rt,
        b,
        id: d.id,
        pid: d.pid,
    }
}

impl Target {
    /// Run `args` (with `{id}` replaced), optionally feeding `stdin`, and check the error line
    /// and that nothing changed.
    #[track_caller]
    fn check(&self, args: &[&str], stdin: Option<&[u8]>, needle: &str, what: &str) {
        let before = snapshot(&self.rt, &self.id, self.pid);
        let args: Vec<String> = args.iter().map(|a| a.replace("{id}", &self.id)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = match stdin {
            None => self.rt.cmd(&args),
            Some(data) => {
                let p = self.b.path().join("stdin");
                fs::write(&p, data).unwrap();
                let f = fs::File::open(&p).unwrap();
                self.rt.cmd_with(&args, |c| {
                    c.stdin(f);
                })
            }
        };
        assert_one_error_line_status(&o, refusal_status(&args), needle, what);
        // a process that was started and then killed needs a moment to leave the cgroup
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let after = snapshot(&self.rt, &self.id, self.pid);
            if after == before {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: the container changed\nbefore: {before:?}\nafter:  {after:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// A process.json: the container's process with `edit` applied.
    fn process_json(&self, edit: impl FnOnce(&mut Value)) -> PathBuf {
        let mut p = self.b.config["process"].clone();
        p["args"] = json!(["/probe", "exit", "0"]);
        edit(&mut p);
        let path = self.b.path().join("process.json");
        fs::write(&path, serde_json::to_vec(&p).unwrap()).unwrap();
        path
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.rt.delete_force(&self.id);
    }
}

// ---------------------------------------------------------------------------------------------
// exec --process FILE with bad fields

macro_rules! process_json_cases {
    ($($name:ident: $needle:expr, $extra:expr, |$p:ident| $edit:expr;)*) => {$(
        #[test]
        fn $name() {
            let t = target();
            let path = t.process_json(|$p: &mut Value| { $edit; });
            let path = path.to_str().unwrap().to_string();
            let mut args = vec!["exec"];
            let extra: &[&str] = $extra;
            args.extend_from_slice(extra);
            args.extend_from_slice(&["--process", &path, "{id}"]);
            t.check(&args, None, $needle, stringify!($name));
        }
    )*};
}

process_json_cases! {
    process_json_args_missing: "args", &[], |p| p.as_object_mut().unwrap().remove("args");
    process_json_args_empty: "args", &[], |p| p["args"] = json!([]);
    process_json_args0_empty: "args[0]", &[], |p| p["args"] = json!([""]);
    process_json_executable_missing: "args[0]", &[], |p| p["args"] = json!(["/nonexistent"]);
    process_json_cwd_relative: "cwd", &[], |p| p["cwd"] = json!("tmp");
    process_json_cwd_missing: "cwd", &[], |p| p["cwd"] = json!("/no/such/dir");
    process_json_uid_string: "user.uid", &[], |p| p["user"]["uid"] = json!("root");
    process_json_gid_negative: "user.gid", &[], |p| p["user"]["gid"] = json!(-1);
    process_json_additional_gid_negative: "user.additionalGids[0]", &[],
        |p| p["user"]["additionalGids"] = json!([-1]);
    process_json_rlimit_unknown: "rlimits[0].type", &[],
        |p| p["rlimits"] = json!([{ "type": "RLIMIT_BOGUS", "soft": 1, "hard": 1 }]);
    process_json_rlimit_soft_over_hard: "rlimits[0]", &[],
        |p| p["rlimits"] = json!([{ "type": "RLIMIT_NOFILE", "soft": 10, "hard": 1 }]);
    process_json_env_without_equals: "env", &[], |p| p["env"] = json!(["NOEQUALS"]);
    process_json_env_not_strings: "env", &[], |p| p["env"] = json!([1, 2]);
    process_json_no_new_privileges_string: "noNewPrivileges", &[],
        |p| p["noNewPrivileges"] = json!("yes");
    process_json_oom_score_adj_out_of_range: "oomScoreAdj", &[], |p| p["oomScoreAdj"] = json!(5000);
    process_json_umask_too_big: "umask", &[], |p| p["user"]["umask"] = json!(4096);
    process_json_apparmor_profile: "apparmorProfile", &[],
        |p| p["apparmorProfile"] = json!("vsrun-test-profile");
    process_json_terminal_detached_without_console_socket: "terminal", &["--detach"],
        |p| p["terminal"] = json!(true);
}

#[test]
fn process_json_not_json() {
    let t = target();
    let path = t.b.path().join("process.json");
    fs::write(&path, "this is not json").unwrap();
    t.check(
        &["exec", "--process", path.to_str().unwrap(), "{id}"],
        None,
        "process.json",
        "process.json not JSON",
    );
}

#[test]
fn process_json_is_an_array() {
    let t = target();
    let path = t.b.path().join("process.json");
    fs::write(&path, "[\"/probe\"]").unwrap();
    t.check(
        &["exec", "--process", path.to_str().unwrap(), "{id}"],
        None,
        "process.json",
        "process.json is an array",
    );
}

#[test]
fn process_json_file_missing() {
    let t = target();
    t.check(
        &["exec", "--process", "/nonexistent/process.json", "{id}"],
        None,
        "--process",
        "missing process.json",
    );
}

// ---------------------------------------------------------------------------------------------
// exec with bad flags

macro_rules! exec_flag_cases {
    ($($name:ident: $needle:expr, $args:expr;)*) => {$(
        #[test]
        fn $name() {
            let t = target();
            t.check($args, None, $needle, stringify!($name));
        }
    )*};
}

exec_flag_cases! {
    exec_user_not_a_number: "--user", &["exec", "-u", "abc", "{id}", "/probe"];
    exec_group_not_a_number: "--user", &["exec", "-u", "0:abc", "{id}", "/probe"];
    exec_cwd_relative: "cwd", &["exec", "--cwd", "tmp", "{id}", "/probe"];
    exec_env_without_equals: "env", &["exec", "-e", "NOEQUALS", "{id}", "/probe"];
    exec_without_a_command: "command", &["exec", "{id}"];
    exec_tty_detached_without_console_socket: "console-socket", &["exec", "-t", "-d", "{id}", "/probe"];
    exec_console_socket_missing: "--console-socket",
        &["exec", "-t", "-d", "--console-socket", "/nonexistent/console.sock", "{id}", "/probe"];
    exec_console_socket_is_a_directory: "--console-socket",
        &["exec", "-t", "-d", "--console-socket", "/tmp", "{id}", "/probe"];
    exec_missing_container: "no-such-container", &["exec", "no-such-container", "/probe"];
}

#[test]
fn exec_console_socket_is_a_regular_file() {
    let t = target();
    let f = t.b.path().join("not-a-socket");
    fs::write(&f, "").unwrap();
    t.check(
        &[
            "exec",
            "-t",
            "-d",
            "--console-socket",
            f.to_str().unwrap(),
            "{id}",
            "/probe",
        ],
        None,
        "--console-socket",
        "exec console socket is a regular file",
    );
}

#[test]
fn exec_into_a_stopped_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "exit", "0"]);
    let id = unique_id("bad-exec-stopped");
    assert_success(&rt.run_detached(&b, &id), "run -d");
    rt.wait_status(&id, "stopped", std::time::Duration::from_secs(10));
    let before = root_entries(&rt);
    let o = rt.cmd(&["exec", &id, "/probe"]);
    assert_one_error_line_status(&o, 255, "stopped", "exec into a stopped container");
    assert_eq!(rt.status(&id).as_deref(), Some("stopped"));
    assert_eq!(root_entries(&rt), before);
    rt.delete_force(&id);
    assert_nothing_left(&rt, &id);
}

#[test]
fn exec_into_a_paused_container() {
    let t = target();
    assert_success(&t.rt.cmd(&["pause", &t.id]), "pause");
    t.check(
        &["exec", "{id}", "/probe"],
        None,
        "paused",
        "exec into a paused container",
    );
    assert_success(&t.rt.cmd(&["resume", &t.id]), "resume");
}

// ---------------------------------------------------------------------------------------------
// update with negative, unknown or out-of-range values

macro_rules! update_cases {
    ($($name:ident: $needle:expr, $args:expr, $stdin:expr;)*) => {$(
        #[test]
        fn $name() {
            let t = target();
            let stdin: Option<&str> = $stdin;
            t.check($args, stdin.map(str::as_bytes), $needle, stringify!($name));
        }
    )*};
}

update_cases! {
    update_memory_not_a_size: "--memory", &["update", "--memory", "lots", "{id}"], None;
    update_memory_negative: "--memory", &["update", "--memory=-5", "{id}"], None;
    update_memory_swap_not_a_size: "--memory-swap", &["update", "--memory-swap", "lots", "{id}"], None;
    update_memory_reservation_not_a_size: "--memory-reservation",
        &["update", "--memory-reservation", "1x", "{id}"], None;
    update_cpu_shares_negative: "--cpu-shares", &["update", "--cpu-shares=-1", "{id}"], None;
    update_cpu_quota_not_a_number: "--cpu-quota", &["update", "--cpu-quota", "lots", "{id}"], None;
    update_cpu_period_out_of_range: "cpu.period", &["update", "--cpu-period", "1", "{id}"], None;
    update_pids_limit_not_a_number: "--pids-limit", &["update", "--pids-limit", "many", "{id}"], None;
    update_blkio_weight_out_of_range: "--blkio-weight", &["update", "--blkio-weight", "5", "{id}"], None;
    update_cpuset_cpus_out_of_range: "cpu.cpus", &["update", "--cpuset-cpus", "99", "{id}"], None;
    update_cpuset_mems_out_of_range: "cpu.mems", &["update", "--cpuset-mems", "7", "{id}"], None;
    update_one_bad_flag_applies_none: "--blkio-weight",
        &["update", "--memory", "64m", "--pids-limit", "10", "--blkio-weight", "5", "{id}"], None;
    update_resources_string_limit: "memory.limit", &["update", "--resources", "-", "{id}"],
        Some(r#"{"memory":{"limit":"big"}}"#);
    update_resources_string_pids: "pids.limit", &["update", "--resources", "-", "{id}"],
        Some(r#"{"pids":{"limit":"many"}}"#);
    update_resources_negative_shares: "cpu.shares", &["update", "--resources", "-", "{id}"],
        Some(r#"{"cpu":{"shares":-1}}"#);
    update_resources_not_json: "resources", &["update", "--resources", "-", "{id}"],
        Some("memory=1g");
    update_resources_one_bad_field_applies_none: "cpu.cpus", &["update", "-r", "-", "{id}"],
        Some(r#"{"memory":{"limit":67108864},"pids":{"limit":10},"cpu":{"cpus":"99"}}"#);
    update_resources_file_missing: "--resources",
        &["update", "--resources", "/nonexistent/resources.json", "{id}"], None;
    update_missing_container: "no-such-container",
        &["update", "--memory", "64m", "no-such-container"], None;
}

#[test]
fn update_a_stopped_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "exit", "0"]);
    let id = unique_id("bad-update-stopped");
    assert_success(&rt.run_detached(&b, &id), "run -d");
    rt.wait_status(&id, "stopped", std::time::Duration::from_secs(10));
    let o = rt.cmd(&["update", "--memory", "64m", &id]);
    assert_one_error_line(&o, "stopped", "update of a stopped container");
    assert_eq!(rt.status(&id).as_deref(), Some("stopped"));
    rt.delete_force(&id);
    assert_nothing_left(&rt, &id);
}

// ---------------------------------------------------------------------------------------------
// pause / resume / ps / events

exec_flag_cases! {
    resume_a_running_container: "running", &["resume", "{id}"];
    pause_missing_container: "no-such-container", &["pause", "no-such-container"];
    resume_missing_container: "no-such-container", &["resume", "no-such-container"];
    ps_unknown_format: "--format", &["ps", "--format", "yaml", "{id}"];
    ps_missing_container: "no-such-container", &["ps", "no-such-container"];
    events_interval_not_a_duration: "--interval", &["events", "--interval", "bogus", "{id}"];
    events_interval_zero: "--interval", &["events", "--interval", "0", "{id}"];
    events_missing_container: "no-such-container", &["events", "--stats", "no-such-container"];
}

#[test]
fn pause_a_stopped_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "exit", "0"]);
    let id = unique_id("bad-pause-stopped");
    assert_success(&rt.run_detached(&b, &id), "run -d");
    rt.wait_status(&id, "stopped", std::time::Duration::from_secs(10));
    let o = rt.cmd(&["pause", &id]);
    assert_one_error_line(&o, "stopped", "pause of a stopped container");
    assert_eq!(rt.status(&id).as_deref(), Some("stopped"));
    rt.delete_force(&id);
    assert_nothing_left(&rt, &id);
}

// ---------------------------------------------------------------------------------------------
// create/run with a console socket that is not a socket: nothing is left

fn console_socket_case(via_run: bool, socket: &dyn Fn(&Path) -> PathBuf, what: &str) {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["terminal"] = true.into();
    b.write();
    let sock = socket(b.path());
    let id = unique_id("bad-console");
    let o = if via_run {
        rt.remember_bundle(&id, b.path());
        rt.cmd(&[
            "run",
            "-d",
            "--console-socket",
            sock.to_str().unwrap(),
            "--bundle",
            b.path_str(),
            &id,
        ])
    } else {
        rt.create_with(&b, &id, &["--console-socket", sock.to_str().unwrap()])
    };
    assert_one_error_line(&o, "--console-socket", what);
    assert!(
        root_entries(&rt).is_empty(),
        "{what}: --root is not empty: {:?}",
        root_entries(&rt)
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn create_console_socket_is_a_regular_file() {
    console_socket_case(
        false,
        &|dir| {
            let p = dir.join("not-a-socket");
            fs::write(&p, "").unwrap();
            p
        },
        "create --console-socket <regular file>",
    );
}

#[test]
fn create_console_socket_is_a_directory() {
    console_socket_case(
        false,
        &|dir| dir.join("rootfs"),
        "create --console-socket <directory>",
    );
}

#[test]
fn create_console_socket_missing() {
    console_socket_case(
        false,
        &|dir| dir.join("no-such.sock"),
        "create --console-socket <missing>",
    );
}

#[test]
fn create_console_socket_nobody_listens() {
    console_socket_case(
        false,
        &|dir| {
            // a socket file whose listener is gone
            let p = dir.join("stale.sock");
            drop(std::os::unix::net::UnixListener::bind(&p).unwrap());
            p
        },
        "create --console-socket <stale socket>",
    );
}

#[test]
fn run_console_socket_is_a_regular_file() {
    console_socket_case(
        true,
        &|dir| {
            let p = dir.join("not-a-socket");
            fs::write(&p, "").unwrap();
            p
        },
        "run -d --console-socket <regular file>",
    );
}
