//! pause/resume (the cgroup freezer), update (new linux.resources for a running container),
//! ps, events and kill --all: runc's commands that act on the container's cgroup. Each test
//! reads the result back from the host: the cgroup files, /proc/<pid>/status of every member,
//! and what the members keep doing (or stop doing).
//!
//! Works on cgroup v1 (this repository's main lane: hybrid) and v2: file names are mapped.

use serde_json::{json, Value};
use spec_tests::*;
use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Host view of the container's cgroup

fn read(pid: i32, controller: &str, file: &str) -> String {
    let p = cgroup_dir(pid, controller).join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

fn try_read(pid: i32, controller: &str, file: &str) -> Option<String> {
    fs::read_to_string(cgroup_dir(pid, controller).join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The memory limit in bytes (None = unlimited).
fn memory_limit(pid: i32) -> Option<u64> {
    let v = if unified() {
        read(pid, "memory", "memory.max")
    } else {
        read(pid, "memory", "memory.limit_in_bytes")
    };
    match v.parse::<u64>() {
        Ok(n) if n < (1 << 62) => Some(n),
        _ => None,
    }
}

fn pids_max(pid: i32) -> String {
    read(pid, "pids", "pids.max")
}

/// cpu.shares on v1; on v2 cpu.weight converted back the way runc converts it forward.
fn cpu_weight_or_shares(pid: i32, shares: u64) -> (String, String) {
    if unified() {
        let want = shares_to_weight(shares);
        (read(pid, "cpu", "cpu.weight"), want.to_string())
    } else {
        (read(pid, "cpu", "cpu.shares"), shares.to_string())
    }
}

/// (quota, period) in µs; quota -1 = unlimited.
fn cpu_quota(pid: i32) -> (i64, u64) {
    if unified() {
        let v = read(pid, "cpu", "cpu.max");
        let mut f = v.split_whitespace();
        let q = f.next().unwrap();
        let p = f.next().unwrap().parse().unwrap();
        (if q == "max" { -1 } else { q.parse().unwrap() }, p)
    } else {
        (
            read(pid, "cpu", "cpu.cfs_quota_us").parse().unwrap(),
            read(pid, "cpu", "cpu.cfs_period_us").parse().unwrap(),
        )
    }
}

/// The block IO weight, from whichever file this kernel has (None when none exists).
fn blkio_weight(pid: i32) -> Option<String> {
    let files: &[&str] = if unified() {
        &["io.bfq.weight", "io.weight"]
    } else {
        &["blkio.weight", "blkio.bfq.weight"]
    };
    let ctrl = if unified() { "io" } else { "blkio" };
    files.iter().find_map(|f| {
        try_read(pid, ctrl, f).map(|v| {
            // v2 files read "default N"
            v.lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("default ")
                .to_string()
        })
    })
}

fn frozen(pid: i32) -> bool {
    if unified() {
        read(pid, "", "cgroup.events")
            .lines()
            .any(|l| l == "frozen 1")
    } else {
        read(pid, "freezer", "freezer.state") == "FROZEN"
    }
}

fn cgroup_procs(pid: i32) -> BTreeSet<i32> {
    read(pid, "pids", "cgroup.procs")
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A busy container: init ticking into a file, two background sleeps

const BUSY: &str = "sleep 1000 & sleep 1000 & \
                    while true; do echo x >> /tmp/ticks; sleep 0.05; done";

struct Busy {
    id: String,
    pid: i32,
    ticks: PathBuf,
}

fn start_busy(rt: &Runtime, b: &mut Bundle) -> Busy {
    b.set_args(&["sh", "-c", BUSY]);
    let id = unique_id("busy");
    let o = rt.run_detached(b, &id);
    assert_success(&o, "run -d busy container");
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    let ticks = b.rootfs().join("tmp/ticks");
    // wait until it ticks and both sleeps are there
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(ticks.exists() && cgroup_procs(pid).len() >= 3) {
        assert!(Instant::now() < deadline, "busy container did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Busy { id, pid, ticks }
}

fn tick_count(b: &Busy) -> u64 {
    fs::metadata(&b.ticks).map(|m| m.len()).unwrap_or(0)
}

fn state_letter(pid: i32) -> String {
    proc_status_field(pid, "State").unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// pause / resume

#[test]
fn pause_freezes_every_process_and_resume_thaws_them() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let c = start_busy(&rt, &mut b);
    // one more member through exec
    let o = rt.cmd(&["exec", "-d", &c.id, "/probe", "sleep", "1000"]);
    assert_success(&o, "exec -d");
    let members = cgroup_procs(c.pid);
    assert!(members.len() >= 4, "members: {members:?}");

    assert_success(&rt.cmd(&["pause", &c.id]), "pause");
    assert_eq!(rt.status(&c.id).as_deref(), Some("paused"));
    assert!(frozen(c.pid), "the freezer does not read frozen");
    // The loop's short sleeps come and go until the freeze: take the members once frozen.
    let members = cgroup_procs(c.pid);
    // every member (including ones that were sleeping) is frozen
    let deadline = Instant::now() + Duration::from_secs(5);
    for p in &members {
        if unified() {
            break; // cgroup.events "frozen 1" above covers every member on v2
        }
        loop {
            let s = state_letter(*p);
            // a short-lived `sleep 0.05` of the loop may have exited before the freeze
            if s.starts_with('D') || !pid_alive(*p) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "member {p} ({:?}) is not frozen: State: {s}",
                proc_cmdline(*p)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let before = tick_count(&c);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(tick_count(&c), before, "the init kept running while paused");
    assert_eq!(
        cgroup_procs(c.pid),
        members,
        "membership changed while paused"
    );

    assert_success(&rt.cmd(&["resume", &c.id]), "resume");
    assert_eq!(rt.status(&c.id).as_deref(), Some("running"));
    assert!(!frozen(c.pid), "the freezer still reads frozen");
    let deadline = Instant::now() + Duration::from_secs(5);
    while tick_count(&c) == before {
        assert!(
            Instant::now() < deadline,
            "the init did not run again after resume"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in members.iter().filter(|p| pid_alive(**p)) {
        let s = state_letter(*p);
        assert!(
            s.starts_with('S') || s.starts_with('R'),
            "member {p} after resume: State: {s}"
        );
    }
    finish(&rt, &c.id);
}

#[test]
fn pause_twice_and_resume_of_a_running_container_fail() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let c = start_busy(&rt, &mut b);
    assert_fails(&rt.cmd(&["resume", &c.id]), "resume of a running container");
    assert!(!frozen(c.pid));
    assert_success(&rt.cmd(&["pause", &c.id]), "pause");
    assert_fails(&rt.cmd(&["pause", &c.id]), "pause of a paused container");
    assert!(frozen(c.pid), "a failed second pause thawed the container");
    assert_success(&rt.cmd(&["resume", &c.id]), "resume");
    finish(&rt, &c.id);
}

#[test]
fn a_paused_container_can_be_deleted_with_force() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let c = start_busy(&rt, &mut b);
    let members = cgroup_procs(c.pid);
    assert_success(&rt.cmd(&["pause", &c.id]), "pause");
    finish(&rt, &c.id);
    for p in members {
        assert!(
            !pid_alive(p),
            "member {p} survived delete --force of a paused container"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// update

#[test]
fn update_flags_are_written_to_the_cgroup() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let c = start_busy(&rt, &mut b);
    // Without a proportional I/O scheduler (no BFQ module) the kernel has no weight file, and
    // vsrun refuses the flag as runc does: only ask for it where it can be written.
    let has_weight = blkio_weight(c.pid).is_some();
    let weight: &[&str] = if has_weight {
        &["--blkio-weight", "300"]
    } else {
        &[]
    };
    let mut args = vec![
        "update",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--cpu-shares",
        "512",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "20000",
        "--cpuset-cpus",
        "0",
        "--cpuset-mems",
        "0",
    ];
    args.extend_from_slice(weight);
    args.push(&c.id);
    let o = rt.cmd(&args);
    assert_success(&o, "update with runc's flags");
    assert_eq!(memory_limit(c.pid), Some(64 << 20), "memory limit");
    assert_eq!(pids_max(c.pid), "50", "pids.max");
    let (got, want) = cpu_weight_or_shares(c.pid, 512);
    assert_eq!(got, want, "cpu shares/weight");
    assert_eq!(cpu_quota(c.pid), (20000, 100000), "cpu quota/period");
    assert_eq!(read(c.pid, "cpuset", "cpuset.cpus"), "0", "cpuset.cpus");
    assert_eq!(read(c.pid, "cpuset", "cpuset.mems"), "0", "cpuset.mems");
    match blkio_weight(c.pid) {
        Some(w) => assert_eq!(w, "300", "blkio weight"),
        None => eprintln!("note: no blkio weight file on this kernel; not checked"),
    }
    assert_eq!(rt.status(&c.id).as_deref(), Some("running"));

    // -1 lifts the limits again
    let o = rt.cmd(&[
        "update",
        "--memory=-1",
        "--pids-limit=-1",
        "--cpu-quota=-1",
        &c.id,
    ]);
    assert_success(&o, "update to unlimited");
    assert_eq!(memory_limit(c.pid), None, "memory unlimited");
    assert_eq!(pids_max(c.pid), "max");
    assert_eq!(cpu_quota(c.pid).0, -1, "cpu quota unlimited");
    finish(&rt, &c.id);
}

#[test]
fn update_memory_swap() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let c = start_busy(&rt, &mut b);
    let memsw = !unified() && try_read(c.pid, "memory", "memory.memsw.limit_in_bytes").is_some();
    let swap_v2 = unified() && try_read(c.pid, "memory", "memory.swap.max").is_some();
    if !memsw && !swap_v2 {
        eprintln!("skipped: no swap accounting on this host");
        finish(&rt, &c.id);
        return;
    }
    let o = rt.cmd(&["update", "--memory", "100m", "--memory-swap", "200m", &c.id]);
    assert_success(&o, "update --memory --memory-swap");
    assert_eq!(memory_limit(c.pid), Some(100 << 20));
    if memsw {
        assert_eq!(
            read(c.pid, "memory", "memory.memsw.limit_in_bytes"),
            (200u64 << 20).to_string()
        );
    } else {
        // v2: swap.max is the swap part only
        assert_eq!(
            read(c.pid, "memory", "memory.swap.max"),
            (100u64 << 20).to_string()
        );
    }
    finish(&rt, &c.id);
}

#[test]
fn update_resources_file_as_podman_writes_it() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let c = start_busy(&rt, &mut b);
    // podman update --memory 200m --memory-swap 400m --cpus 1: the file podman wrote.
    let fixture =
        workspace_root().join("spec-tests/fixtures/engine-configs/podman-3-resources.json");
    let path = b.path().join("resources.json");
    let text = fs::read(&fixture).unwrap_or_else(|_| {
        serde_json::to_vec(&json!({
            "memory": { "limit": 209715200, "swap": 419430400 },
            "cpu": { "quota": 100000, "period": 100000 }
        }))
        .unwrap()
    });
    fs::write(&path, text).unwrap();
    let o = rt.cmd(&["update", "--resources", path.to_str().unwrap(), &c.id]);
    assert_success(&o, "update --resources FILE");
    assert_eq!(memory_limit(c.pid), Some(209715200));
    assert_eq!(cpu_quota(c.pid), (100000, 100000));
    finish(&rt, &c.id);
}

#[test]
fn update_resources_from_stdin_as_docker_sends_them() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let c = start_busy(&rt, &mut b);
    let input = b.path().join("stdin.json");
    fs::write(
        &input,
        serde_json::to_vec(&json!({
            "memory": { "limit": 100663296 },
            "pids": { "limit": 77 },
            "cpu": { "shares": 256 }
        }))
        .unwrap(),
    )
    .unwrap();
    let f = fs::File::open(&input).unwrap();
    let o = rt.cmd_with(&["update", "--resources", "-", &c.id], |cmd| {
        cmd.stdin(f);
    });
    assert_success(&o, "update --resources -");
    assert_eq!(memory_limit(c.pid), Some(100663296));
    assert_eq!(pids_max(c.pid), "77");
    let (got, want) = cpu_weight_or_shares(c.pid, 256);
    assert_eq!(got, want);
    finish(&rt, &c.id);
}

#[test]
fn update_takes_dockers_update_json_with_zeroes_for_unset() {
    // What dockerd 20.10 pipes to `update --resources -` for `docker update --memory 64m
    // --memory-swap 128m` (captured from the docker lane): 0 means "not set", as in runc.
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["resources"] = json!({ "cpu": { "shares": 512 } });
    let c = start_busy(&rt, &mut b);
    let quota_before = cpu_quota(c.pid);
    let input = b.path().join("stdin.json");
    fs::write(
        &input,
        r#"{"memory":{"limit":67108864,"reservation":0,"swap":134217728,"kernel":0},"cpu":{"shares":0,"quota":0,"period":0},"blockIO":{"weight":0}}"#,
    )
    .unwrap();
    let f = fs::File::open(&input).unwrap();
    let o = rt.cmd_with(&["update", "--resources", "-", &c.id], |cmd| {
        cmd.stdin(f);
    });
    assert_success(&o, "update --resources - with docker's JSON");
    assert_eq!(memory_limit(c.pid), Some(64 << 20));
    let (got, want) = cpu_weight_or_shares(c.pid, 512);
    assert_eq!(got, want, "cpu shares 0 must leave the shares alone");
    assert_eq!(
        cpu_quota(c.pid),
        quota_before,
        "quota/period 0 must leave them alone"
    );
    finish(&rt, &c.id);
}

#[test]
fn update_leaves_unmentioned_limits_alone() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["resources"] = json!({
        "pids": { "limit": 40 },
        "memory": { "limit": 134217728 }
    });
    let c = start_busy(&rt, &mut b);
    assert_eq!(pids_max(c.pid), "40", "config's linux.resources applied");
    assert_success(
        &rt.cmd(&["update", "--memory", "96m", &c.id]),
        "update --memory",
    );
    assert_eq!(memory_limit(c.pid), Some(96 << 20));
    assert_eq!(pids_max(c.pid), "40", "pids.max changed by update --memory");
    assert_success(
        &rt.cmd(&["update", "--pids-limit", "41", &c.id]),
        "update --pids-limit",
    );
    assert_eq!(
        memory_limit(c.pid),
        Some(96 << 20),
        "memory changed by --pids-limit"
    );
    assert_eq!(pids_max(c.pid), "41");
    finish(&rt, &c.id);
}

/// A failed update changes nothing, as with runc ("Setting back cgroup configs"): the pids
/// limit written before a later write the kernel refuses is put back. The refused write
/// differs by hierarchy, because the order of writes does (pids comes last of the controllers
/// on v2): v1 refuses a memory limit under the usage (v2 takes it and reclaims), v2 refuses a
/// `unified` value that is not one (written after every controller).
#[test]
fn a_failed_update_puts_back_what_it_had_written() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let c = start_busy(&rt, &mut b);
    let memory_before = memory_limit(c.pid);
    let o = if unified() {
        let r = b.path().join("update.json");
        let bad = json!({"pids": {"limit": 77}, "unified": {"memory.high": "not-a-size"}});
        fs::write(&r, bad.to_string()).unwrap();
        rt.cmd(&["update", "--resources", r.to_str().unwrap(), &c.id])
    } else {
        rt.cmd(&["update", "--pids-limit", "77", "--memory", "4096", &c.id])
    };
    assert_eq!(
        o.status.code(),
        Some(1),
        "the refused write: {}",
        output_text(&o)
    );
    assert_eq!(
        pids_max(c.pid),
        "max",
        "pids.max kept the failed update's value"
    );
    assert_eq!(memory_limit(c.pid), memory_before, "memory limit");
    assert_eq!(rt.status(&c.id).as_deref(), Some("running"));
    finish(&rt, &c.id);
}

#[test]
fn update_pids_limit_is_enforced() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b); // one process, which never forks
    assert_success(
        &rt.cmd(&["update", "--pids-limit", "1", &d.id]),
        "update --pids-limit 1",
    );
    assert_eq!(pids_max(d.pid), "1");
    // The exec'd shell joins (on v1 a move into the cgroup is not counted against the limit,
    // as with runc), but nothing in the container can fork any more.
    let fork = [
        "exec",
        d.id.as_str(),
        "sh",
        "-c",
        "/bin/sleep 0 && echo forked",
    ];
    let o = rt.cmd(&fork);
    assert!(
        !stdout_str(&o).contains("forked"),
        "a fork succeeded in a container at its pids limit:\n{}",
        output_text(&o)
    );
    // init + the exec'd sh + its sleep, and one more: the exec's init may not be reaped yet
    // when the sh forks (it forks the process into the container's pid namespace and exits).
    assert_success(
        &rt.cmd(&["update", "--pids-limit", "4", &d.id]),
        "update --pids-limit 4",
    );
    let o = rt.cmd(&fork);
    assert_success(&o, "fork after raising the pids limit");
    assert_eq!(stdout_str(&o), "forked\n");
    finish(&rt, &d.id);
}

// ---------------------------------------------------------------------------------------------
// ps

#[test]
fn ps_json_lists_exactly_the_cgroup_members() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let c = start_busy(&rt, &mut b);
    let o = rt.cmd(&["ps", "--format", "json", &c.id]);
    assert_success(&o, "ps --format json");
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("ps json: {e}: {}", stdout_str(&o)));
    let pids: BTreeSet<i32> = v
        .as_array()
        .expect("ps --format json prints an array")
        .iter()
        .map(|p| p.as_i64().expect("array of pids") as i32)
        .collect();
    assert!(pids.contains(&c.pid), "the init is listed");
    // members can only have been added in between (the ticking loop forks)
    let now = cgroup_procs(c.pid);
    for p in &pids {
        assert!(
            now.contains(p) || !pid_alive(*p),
            "ps lists {p} which is not in the container's cgroup"
        );
    }
    finish(&rt, &c.id);
}

#[test]
fn ps_table_lists_the_containers_processes_only() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let c = start_busy(&rt, &mut b);
    let o = rt.cmd(&["ps", &c.id]);
    assert_success(&o, "ps");
    let text = stdout_str(&o);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let cols: Vec<&str> = header.split_whitespace().collect();
    assert!(
        cols.contains(&"PID") && cols.contains(&"CMD"),
        "ps -ef header: {header:?}"
    );
    let pid_col = cols.iter().position(|c| *c == "PID").unwrap();
    let listed: Vec<i32> = lines
        .map(|l| l.split_whitespace().nth(pid_col).unwrap().parse().unwrap())
        .collect();
    assert!(listed.contains(&c.pid), "init missing from:\n{text}");
    assert!(listed.len() >= 3, "expected sh and two sleeps:\n{text}");
    let members = cgroup_procs(c.pid);
    for p in &listed {
        assert!(
            members.contains(p) || !pid_alive(*p),
            "ps lists {p}, not a member:\n{text}"
        );
    }
    assert!(
        !listed.contains(&(std::process::id() as i32)),
        "host processes listed"
    );

    // ps ID -- ps-args
    let o = rt.cmd(&["ps", &c.id, "--", "-o", "pid,comm"]);
    assert_success(&o, "ps ID -- -o pid,comm");
    let text = stdout_str(&o);
    let mut lines = text.lines();
    assert_eq!(
        lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["PID", "COMMAND"],
        "{text}"
    );
    let comms: Vec<String> = lines
        .map(|l| l.split_whitespace().nth(1).unwrap_or_default().to_string())
        .collect();
    assert!(comms.iter().any(|c| c == "sh"), "{text}");
    let sleeps = comms.iter().filter(|c| *c == "sleep").count();
    assert!(
        (2..=3).contains(&sleeps),
        "the two background sleeps (and possibly the loop's short one):\n{text}"
    );
    finish(&rt, &c.id);
}

// ---------------------------------------------------------------------------------------------
// events

fn is_num(v: &Value) -> bool {
    v.is_u64() || v.is_i64()
}

/// blkio with runc's keys, each an array; cpuset as runc 1.1.5 prints it.
fn assert_blkio_and_cpuset_shape(d: &Value) {
    // blkio: runc's keys, each an array
    for k in [
        "ioServiceBytesRecursive",
        "ioServicedRecursive",
        "ioQueueRecursive",
        "ioServiceTimeRecursive",
        "ioWaitTimeRecursive",
        "ioMergedRecursive",
        "ioTimeRecursive",
        "sectorsRecursive",
    ] {
        let v = &d["blkio"][k];
        assert!(v.is_array() || v.is_null(), "blkio.{k}: {v}");
    }
    assert!(d["blkio"].is_object(), "blkio: {}", d["blkio"]);
    // cpuset as runc 1.1.5 prints it: the lists expanded, the flags as numbers
    let cpus = d["cpuset"]["cpus"].as_array().expect("cpuset.cpus");
    assert!(
        !cpus.is_empty() && cpus.iter().all(|c| c.is_u64()),
        "cpuset: {}",
        d["cpuset"]
    );
    assert!(
        d["cpuset"]["mems"].is_array(),
        "cpuset.mems: {}",
        d["cpuset"]
    );
    assert!(
        is_num(&d["cpuset"]["sched_load_balance"]),
        "cpuset: {}",
        d["cpuset"]
    );
    assert!(d["intel_rdt"].is_object(), "intel_rdt: {d}");
}

#[test]
fn events_stats_prints_runcs_json_shape() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let c = start_busy(&rt, &mut b);
    assert_success(
        &rt.cmd(&["update", "--memory", "128m", "--pids-limit", "99", &c.id]),
        "update",
    );
    let o = rt.cmd(&["events", "--stats", &c.id]);
    assert_success(&o, "events --stats");
    let lines = parse_json_lines(&o.stdout)
        .unwrap_or_else(|e| panic!("events --stats: {e}\n{}", output_text(&o)));
    assert_eq!(lines.len(), 1, "one object: {}", stdout_str(&o));
    let e = &lines[0];
    assert_eq!(e["type"], "stats");
    assert_eq!(e["id"], c.id.as_str());
    let d = &e["data"];
    // cpu
    assert!(is_num(&d["cpu"]["usage"]["total"]), "cpu.usage.total: {d}");
    assert!(
        d["cpu"]["usage"]["total"].as_u64().unwrap() > 0,
        "the busy init used no cpu?"
    );
    assert!(d["cpu"]["usage"]["percpu"].is_array(), "cpu.usage.percpu");
    for k in ["kernel", "user"] {
        assert!(is_num(&d["cpu"]["usage"][k]), "cpu.usage.{k}");
    }
    for k in ["periods", "throttledPeriods", "throttledTime"] {
        assert!(is_num(&d["cpu"]["throttling"][k]), "cpu.throttling.{k}");
    }
    // memory
    for k in ["usage", "swap", "kernel"] {
        for f in ["limit", "usage", "max", "failcnt"] {
            assert!(
                is_num(&d["memory"][k][f]),
                "memory.{k}.{f}: {}",
                d["memory"]
            );
        }
    }
    assert_eq!(
        d["memory"]["usage"]["limit"],
        json!(128u64 << 20),
        "memory limit"
    );
    assert!(
        d["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "memory usage"
    );
    assert!(d["memory"]["raw"].is_object(), "memory.raw");
    // pids
    let current = d["pids"]["current"].as_u64().unwrap();
    assert!(
        (3..=6).contains(&current),
        "pids.current {current} (sh, two sleeps, maybe the loop's sleep)"
    );
    assert_eq!(d["pids"]["limit"], 99);
    assert_blkio_and_cpuset_shape(d);
    finish(&rt, &c.id);
}

#[test]
fn events_interval_streams_until_the_container_is_gone() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let c = start_busy(&rt, &mut b);
    let mut child = Command::new(vsrun_bin())
        .args([
            "--root",
            rt.root_str(),
            "events",
            "--interval",
            "200ms",
            &c.id,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(l) = line else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let t0 = Instant::now();
    let mut got = Vec::new();
    while got.len() < 3 {
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(l) => got.push(l),
            Err(_) => {
                // SAFETY: kill(2) on the events process this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let _ = child.wait();
                panic!("events --interval 200ms: only {} lines", got.len());
            }
        }
    }
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "3 events at 200ms took {:?}",
        t0.elapsed()
    );
    for l in &got {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["type"], "stats");
        assert_eq!(v["id"], c.id.as_str());
        assert!(v["data"]["pids"]["current"].as_u64().unwrap() >= 3);
    }
    finish(&rt, &c.id);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            eprintln!("events exited with {st:?} once the container was deleted");
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the events process this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = child.wait();
            panic!("events kept running after the container was deleted");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// kill --all

#[test]
fn kill_all_signals_every_process() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let c = start_busy(&rt, &mut b);
    let o = rt.cmd(&["exec", "-d", &c.id, "/probe", "sleep", "1000"]);
    assert_success(&o, "exec -d");
    let members = cgroup_procs(c.pid);
    assert_success(
        &rt.cmd(&["kill", "--all", &c.id, "KILL"]),
        "kill --all KILL",
    );
    rt.wait_status(&c.id, "stopped", Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(5);
    for p in members {
        while pid_alive(p) {
            assert!(Instant::now() < deadline, "member {p} survived kill --all");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    finish(&rt, &c.id);
}

#[test]
fn kill_all_works_on_a_paused_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let c = start_busy(&rt, &mut b);
    let members = cgroup_procs(c.pid);
    assert_success(&rt.cmd(&["pause", &c.id]), "pause");
    assert_success(
        &rt.cmd(&["kill", "-a", &c.id, "9"]),
        "kill -a 9 on a paused container",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    for p in members {
        while pid_alive(p) {
            assert!(
                Instant::now() < deadline,
                "member {p} survived kill --all of a paused container"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    finish(&rt, &c.id);
}

#[test]
fn kill_all_with_a_catchable_signal_reaches_background_processes() {
    // TERM to every member: the background sleeps die too (not just the init).
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let c = start_busy(&rt, &mut b);
    let others: Vec<i32> = cgroup_procs(c.pid)
        .into_iter()
        .filter(|p| *p != c.pid)
        .collect();
    assert_success(
        &rt.cmd(&["kill", "--all", &c.id, "TERM"]),
        "kill --all TERM",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    for p in others {
        while pid_alive(p) {
            assert!(
                Instant::now() < deadline,
                "member {p} ({:?}) survived kill --all TERM",
                proc_cmdline(p)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    finish(&rt, &c.id);
}

// ---------------------------------------------------------------------------------------------
// A cgroup frozen before `create`

/// A cgroup this test makes and freezes itself (v1 freezer.state FROZEN, v2 cgroup.freeze 1),
/// as an engine or an admin might have left it. Drop thaws it, kills whatever a broken runtime
/// left in it (only processes of this test's own containers can be there) and removes it.
struct FrozenCgroup {
    name: String,
    dir: PathBuf,
}

impl FrozenCgroup {
    fn new(prefix: &str) -> Self {
        let name = unique_id(prefix);
        let dir = if unified() {
            PathBuf::from("/sys/fs/cgroup").join(&name)
        } else {
            PathBuf::from("/sys/fs/cgroup/freezer").join(&name)
        };
        fs::create_dir(&dir).expect("mkdir the test's cgroup");
        let c = FrozenCgroup { name, dir };
        c.set_frozen(true);
        assert!(
            c.is_frozen(),
            "the test could not freeze {}",
            c.dir.display()
        );
        c
    }

    fn set_frozen(&self, on: bool) {
        let (file, value) = match (unified(), on) {
            (true, on) => ("cgroup.freeze", if on { "1" } else { "0" }),
            (false, true) => ("freezer.state", "FROZEN"),
            (false, false) => ("freezer.state", "THAWED"),
        };
        fs::write(self.dir.join(file), value).expect("write the freezer");
    }

    fn is_frozen(&self) -> bool {
        if unified() {
            fs::read_to_string(self.dir.join("cgroup.freeze"))
                .unwrap()
                .trim()
                == "1"
        } else {
            fs::read_to_string(self.dir.join("freezer.state"))
                .unwrap()
                .trim()
                == "FROZEN"
        }
    }

    fn procs(&self) -> String {
        fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default()
    }

    /// Directories below it (none unless a runtime made them).
    fn children(&self) -> Vec<String> {
        fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for FrozenCgroup {
    fn drop(&mut self) {
        self.set_frozen(false);
        for child in self.children() {
            let _ = fs::remove_dir(self.dir.join(child));
        }
        for pid in self
            .procs()
            .lines()
            .filter_map(|l| l.trim().parse::<i32>().ok())
        {
            // SAFETY: kill(2) on a member of the cgroup this test made for its own container.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Every hierarchy's directory for cgroupsPath `/rel` other than the frozen one's.
fn other_hierarchy_dirs(rel: &str, frozen: &FrozenCgroup) -> Vec<PathBuf> {
    host_mounts()
        .into_iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .map(|m| PathBuf::from(&m.mount_point).join(rel.trim_start_matches('/')))
        .filter(|p| p.exists() && !p.starts_with(&frozen.dir))
        .collect()
}

#[test]
fn create_in_a_frozen_cgroup_is_refused_and_the_cgroup_stays() {
    // runc 1.1.5: "container's cgroup unexpectedly frozen", exit 1, the cgroup left as it was.
    let frozen = FrozenCgroup::new("frozen-cg");
    let rt = Runtime::new();
    for (what, path) in [
        ("the cgroup itself", format!("/{}", frozen.name)),
        ("a cgroup below it", format!("/{}/below", frozen.name)),
    ] {
        let mut b = Bundle::new();
        b.config["linux"]["cgroupsPath"] = path.clone().into();
        let id = unique_id("frozen");
        let o = rt.create_within(&b, &id, Duration::from_secs(15));
        let err = assert_fails(&o, &format!("create in {what}, frozen"));
        assert!(
            err.contains("linux.cgroupsPath") && err.contains("frozen"),
            "{what}: the error should name linux.cgroupsPath and say frozen: {err}"
        );
        assert_nothing_left(&rt, &id);
        assert!(frozen.is_frozen(), "{what}: the cgroup was thawed");
        assert!(
            frozen.dir.is_dir(),
            "{what}: the pre-existing cgroup was removed"
        );
        assert_eq!(
            frozen.procs().trim(),
            "",
            "{what}: a process was left in it"
        );
        assert_eq!(
            frozen.children(),
            Vec::<String>::new(),
            "{what}: a cgroup was left below it"
        );
        let top = format!("/{}", frozen.name);
        assert_eq!(
            other_hierarchy_dirs(&top, &frozen),
            Vec::<PathBuf>::new(),
            "{what}: cgroups made for the container were left in other hierarchies"
        );
    }
}

/// runc reports every cpu time in nanoseconds, on v2 too (cpu.stat counts microseconds). The
/// init spins; the kernel's own count of its time (/proc/<pid>/stat, USER_HZ ticks, read
/// first) is a floor for the cgroup's total, which includes it.
#[test]
fn events_stats_count_cpu_time_in_nanoseconds() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["sh", "-c", "while :; do :; done"]);
    let id = unique_id("spin");
    assert_success(&rt.run_detached(&b, &id), "run -d spinning container");
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    std::thread::sleep(Duration::from_millis(300));
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = stat.rsplit_once(')').unwrap().1;
    let ticks: Vec<u64> = after_comm
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|v| v.parse().unwrap())
        .collect();
    let proc_ns = (ticks[0] + ticks[1]) * 10_000_000;
    let o = rt.cmd(&["events", "--stats", &id]);
    assert_success(&o, "events --stats");
    let d = &parse_json_lines(&o.stdout).unwrap()[0]["data"]["cpu"]["usage"];
    let total = d["total"].as_u64().unwrap();
    let (user, kernel) = (d["user"].as_u64().unwrap(), d["kernel"].as_u64().unwrap());
    assert!(
        proc_ns > 0,
        "the spinning init got no cpu in 300 ms: {stat}"
    );
    assert!(
        total >= proc_ns / 2,
        "cpu.usage.total {total} is below the init's own {proc_ns} ns: not nanoseconds? {d}"
    );
    assert!(
        user + kernel >= total / 4 && user + kernel <= total * 2 + 20_000_000,
        "user {user} + kernel {kernel} in the unit of total {total}: {d}"
    );
    finish(&rt, &id);
}
