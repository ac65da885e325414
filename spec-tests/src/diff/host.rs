//! Running a container the way engines do, and reading the host view as facts (cgroups,
//! /proc, state, hooks).

use super::*;

/// A failure of one runtime at one step (the rest of that run is then not compared).
#[derive(Debug)]
pub struct Failure {
    pub step: String,
    pub detail: String,
}

pub fn fail(step: &str, detail: impl Into<String>) -> Failure {
    Failure {
        step: step.into(),
        detail: detail.into(),
    }
}

/// A created+started container; `delete --force` on drop whatever happened.
pub struct Running<'a> {
    pub rt: &'a Rt,
    pub prep: &'a dyn Subject,
    pub pid: i32,
    pub output: Output,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.rt.run(
            self.prep.path(),
            &["delete", "--force", self.prep.id()],
            None,
        );
    }
}

pub fn start_container<'a>(rt: &'a Rt, prep: &'a dyn Subject) -> Result<Running<'a>, Failure> {
    let terminal = prep.config()["process"]["terminal"] == true;
    let out = prep.path().join("ctr.out");
    let err = prep.path().join("ctr.err");
    let pid_file = prep.path().join("init.pid");
    let sock = prep.path().join("console.sock");
    let output = if terminal {
        Output::Pty(console_socket(&sock))
    } else {
        Output::File(out.clone())
    };
    let mut args = vec![
        "create".to_string(),
        "--bundle".into(),
        prep.path().to_string_lossy().into_owned(),
        "--pid-file".into(),
        pid_file.to_string_lossy().into_owned(),
    ];
    if terminal {
        args.push("--console-socket".into());
        args.push(sock.to_string_lossy().into_owned());
    }
    args.push(prep.id().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = rt.run(prep.path(), &args, Some((out, err)));
    if !r.ok {
        // Whatever a failed create left is removed by delete --force (not asserted here).
        let _ = rt.run(prep.path(), &["delete", "--force", prep.id()], None);
        return Err(fail("create", r.describe()));
    }
    let pid: i32 = fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| fail("create", "no pid in --pid-file"))?;
    let running = Running {
        rt,
        prep,
        pid,
        output,
    };
    let r = rt.run(prep.path(), &["start", prep.id()], None);
    if !r.ok {
        return Err(fail("start", r.describe()));
    }
    Ok(running)
}

/// `kill KILL`, wait for the init to die, `delete`; then which cgroup dirs are left.
pub fn stop_container(c: Running, facts: &mut Facts) {
    let (rt, prep, pid) = (c.rt, c.prep, c.pid);
    let k = rt.run(prep.path(), &["kill", prep.id(), "KILL"], None);
    // A program that ends by itself (`true`) races the kill: a refusal because the container
    // already stopped is not a difference between the runtimes.
    let fact = if !k.ok && !pid_alive(pid) {
        "ok".to_string()
    } else {
        ok_or_code(&k)
    };
    facts.insert("cmd.kill".into(), fact);
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let st = rt.run(prep.path(), &["state", prep.id()], None);
    let status = serde_json::from_str::<Value>(&st.stdout)
        .map(|v| compact(&v["status"]))
        .unwrap_or_else(|_| format!("state failed: {}", st.describe()));
    facts.insert("cmd.state-after-kill.status".into(), status);
    let d = rt.run(prep.path(), &["delete", prep.id()], None);
    facts.insert("cmd.delete".into(), ok_or_code(&d));
    if let Some(cg) = prep.cgroups_path() {
        let left: Vec<String> = cgroup_mounts()
            .into_iter()
            .filter(|(_, dir)| Path::new(&format!("{dir}{cg}")).exists())
            .map(|(ctrl, _)| ctrl)
            .collect();
        facts.insert("host.cgroup-dirs-left-after-delete".into(), left.join(","));
    }
    drop(c); // delete --force (a no-op when delete worked)
}

pub fn ok_or_code(r: &Ran) -> String {
    if r.ok {
        "ok".into()
    } else {
        format!("exit {:?}", r.code)
    }
}

/// The host's cgroup hierarchies: (controllers as in /proc/<pid>/cgroup, mount point).
pub fn cgroup_mounts() -> Vec<(String, String)> {
    host_mounts()
        .into_iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .filter(|m| m.root == "/")
        .map(|m| {
            let ctrls = if m.fs_type == "cgroup2" {
                String::new()
            } else {
                m.super_options
                    .iter()
                    .filter(|o| !matches!(o.as_str(), "rw" | "ro") && !o.contains("release_agent"))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(",")
            };
            (ctrls, m.mount_point)
        })
        .collect()
}

/// The cgroup files compared for each v1 controller (read from the process's own cgroup).
pub const CGROUP_FILES: &[(&str, &[&str])] = &[
    (
        "memory",
        &[
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.swappiness",
            "memory.oom_control",
            "memory.kmem.limit_in_bytes",
            "memory.kmem.tcp.limit_in_bytes",
            "memory.use_hierarchy",
            "memory.move_charge_at_immigrate",
        ],
    ),
    (
        "cpu",
        &[
            "cpu.shares",
            "cpu.cfs_quota_us",
            "cpu.cfs_period_us",
            "cpu.cfs_burst_us",
            "cpu.rt_runtime_us",
            "cpu.rt_period_us",
            "cpu.idle",
        ],
    ),
    (
        "cpuset",
        &[
            "cpuset.cpus",
            "cpuset.mems",
            "cpuset.cpu_exclusive",
            "cpuset.mem_exclusive",
        ],
    ),
    ("pids", &["pids.max"]),
    ("devices", &["devices.list"]),
    ("freezer", &["freezer.state"]),
    (
        "blkio",
        &[
            "blkio.weight",
            "blkio.leaf_weight",
            "blkio.bfq.weight",
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_bps_device",
            "blkio.throttle.read_iops_device",
            "blkio.throttle.write_iops_device",
        ],
    ),
    ("net_cls", &["net_cls.classid"]),
    ("net_prio", &["net_prio.ifpriomap"]),
];

/// /proc/<pid>/cgroup (normalised) and the files of every controller's cgroup of `pid`.
pub fn cgroup_facts(pid: i32, norm: &Norm, prefix: &str, facts: &mut Facts) {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        facts.insert(format!("{prefix}proc-cgroup"), "<unreadable>".into());
        return;
    };
    cgroup_lines(&text, norm, &format!("{prefix}proc-cgroup"), facts);
    let mounts = cgroup_mounts();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let Some((_, mp)) = mounts.iter().find(|(c, _)| c == ctrls) else {
            continue;
        };
        for ctrl in ctrls.split(',') {
            let Some((_, files)) = CGROUP_FILES.iter().find(|(c, _)| *c == ctrl) else {
                continue;
            };
            for file in *files {
                let p = format!("{mp}{path}/{file}");
                let v = match fs::read_to_string(&p) {
                    // oom_control also holds event counters; only the setting is compared.
                    Ok(s) if *file == "memory.oom_control" => s
                        .lines()
                        .find(|l| l.starts_with("oom_kill_disable"))
                        .unwrap_or("")
                        .to_string(),
                    // The v1 devices list is a set of exceptions to a default: the kernel
                    // prints them in the order they were added, which carries no meaning.
                    Ok(s) if *file == "devices.list" => {
                        let mut l: Vec<&str> = s.lines().collect();
                        l.sort();
                        l.join("; ")
                    }
                    Ok(s) => s.trim().replace('\n', "; "),
                    Err(e) => format!("<{}>", e.kind()),
                };
                facts.insert(format!("{prefix}cgroup.{file}"), v);
            }
        }
    }
}

/// One fact per hierarchy of a /proc/<pid>/cgroup text ("N:controllers:path").
pub fn cgroup_lines(text: &str, norm: &Norm, key: &str, facts: &mut Facts) {
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let ctrls = if ctrls.is_empty() { "unified" } else { ctrls };
        facts.insert(format!("{key}[{ctrls}]"), norm.s(path));
    }
}

/// The host's view of a process: /proc/<pid>/status fields and oom_score_adj.
pub fn proc_facts(pid: i32, prefix: &str, facts: &mut Facts) {
    for key in [
        "Uid",
        "Gid",
        "Groups",
        "Umask",
        "CapInh",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "CapAmb",
        "NoNewPrivs",
        "Seccomp",
        "Seccomp_filters",
        "Cpus_allowed_list",
        "Mems_allowed_list",
    ] {
        facts.insert(
            format!("{prefix}status.{key}"),
            proc_status_field(pid, key).unwrap_or_else(|| "<absent>".into()),
        );
    }
    facts.insert(
        format!("{prefix}oom_score_adj"),
        fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| format!("<{e}>")),
    );
}

/// `state ID` (normalised: pid, created).
pub fn state_facts(rt: &Rt, prep: &dyn Subject, pid: i32, norm: &Norm, facts: &mut Facts) {
    let r = rt.run(prep.path(), &["state", prep.id()], None);
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&r.stdout) else {
        facts.insert("cmd.state".into(), r.describe());
        return;
    };
    for (k, v) in m {
        let v = match k.as_str() {
            "pid" if v == json!(pid) => "<init pid>".to_string(),
            "created" if v.is_string() => "<time>".to_string(),
            _ => compact(&norm.v(&v)),
        };
        facts.insert(format!("cmd.state.{k}"), v);
    }
}

/// What each hook script recorded.
pub fn hook_facts(prep: &dyn Subject, pid: i32, norm: &Norm, facts: &mut Facts) {
    for (point, i) in prep.hooks() {
        let base = prep.path().join("hooks").join(format!("{point}-{i}"));
        let read = |ext: &str| fs::read_to_string(base.with_extension(ext)).ok();
        let key = format!("hook.{point}[{i}]");
        let Some(args) = read("args") else {
            facts.insert(format!("{key}.ran"), "no".into());
            continue;
        };
        facts.insert(format!("{key}.ran"), "yes".into());
        facts.insert(format!("{key}.args"), norm.s(args.trim()));
        let mut env: Vec<String> = read("env")
            .unwrap_or_default()
            .lines()
            .map(|l| norm.s(l))
            .collect();
        env.sort();
        // The runtime's environment is PATH plus the marker (see Rt::run); the hook's shell
        // adds PWD itself.
        let env = env
            .iter()
            .map(|l| match l.as_str() {
                l if l.starts_with(RUNTIME_ENV_MARKER) => "<the runtime's marker>".to_string(),
                l => l.to_string(),
            })
            .collect::<Vec<_>>();
        facts.insert(format!("{key}.env"), env.join(" "));
        facts.insert(
            format!("{key}.cwd"),
            norm.s(read("cwd").unwrap_or_default().trim()),
        );
        let stdin = read("stdin").unwrap_or_default();
        match serde_json::from_str::<Value>(&stdin) {
            Ok(Value::Object(m)) => {
                for (k, v) in m {
                    let v = match k.as_str() {
                        "pid" if v == json!(pid) => "<init pid>".to_string(),
                        _ => compact(&norm.v(&v)),
                    };
                    facts.insert(format!("{key}.stdin.{k}"), v);
                }
            }
            _ => {
                facts.insert(
                    format!("{key}.stdin"),
                    format!("not a JSON object: {stdin}"),
                );
            }
        }
    }
}
