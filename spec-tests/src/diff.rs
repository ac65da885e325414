//! The machinery shared by the differential tests (tests/differential.rs, on the engines'
//! config files, and tests/sweep.rs, on generated configs): run one runtime (runc or vsrun) in
//! its own `--root`, start a container the way engines do, and turn what the container and the
//! host see into a flat map "fact name → value" that can be compared between the two runtimes,
//! with each run's own names normalised away.

use crate::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a bundle prepared for one runtime must tell the shared steps.
pub trait Subject {
    /// The bundle directory (also the runtime's working directory).
    fn path(&self) -> &Path;
    /// The container id.
    fn id(&self) -> &str;
    /// The config.json as written.
    fn config(&self) -> &Value;
    /// (hook point, index) of every hook script under `<bundle>/hooks/`.
    fn hooks(&self) -> &[(String, usize)];
    /// The container's cgroupsPath as written to config.json.
    fn cgroups_path(&self) -> Option<String> {
        self.config()["linux"]["cgroupsPath"]
            .as_str()
            .map(String::from)
    }
}

/// Compare two fact maps: (real differences, allowed ones with their reasons), each a
/// multi-line description. `allowed(key, runc, vsrun)` returns the reason a difference is kept.
pub fn diff_facts(
    runc: &Facts,
    vsrun: &Facts,
    allowed: impl Fn(&str, &str, &str) -> Option<&'static str>,
) -> (Vec<String>, Vec<String>) {
    let keys: BTreeSet<&String> = runc.keys().chain(vsrun.keys()).collect();
    let missing = "<absent>".to_string();
    let mut real = Vec::new();
    let mut tolerated = Vec::new();
    for k in &keys {
        let a = runc.get(*k).unwrap_or(&missing);
        let b = vsrun.get(*k).unwrap_or(&missing);
        if a == b {
            continue;
        }
        let line = format!("  {k}\n    runc:  {}\n    vsrun: {}", short(a), short(b));
        match allowed(k, a, b) {
            Some(why) => tolerated.push(format!("{line}\n    allowed: {why}")),
            None => real.push(line),
        }
    }
    (real, tolerated)
}

/// `*` in `pattern` matches any run of characters.
pub fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, tail)) => {
            let Some(rest) = s.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

pub fn runc_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RUNC_BIN") {
        return PathBuf::from(p);
    }
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
        "/sbin",
    ] {
        let p = Path::new(dir).join("runc");
        if p.is_file() {
            return p;
        }
    }
    panic!("runc not found (hack/test.sh installs Debian's runc; or set RUNC_BIN)");
}

/// Set in every runtime invocation's environment.
pub const RUNTIME_ENV_MARKER: &str = "VSRUN_DIFF_RUNTIME_ENV";

pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);
pub const OUTPUT_TIMEOUT: Duration = Duration::from_secs(20);

pub fn short(s: &str) -> String {
    let s = s.trim().replace('\n', " ⏎ ");
    let s = s.as_str();
    if s.len() > 600 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(600).map(|x| x.0).unwrap_or(s.len())]
        )
    } else {
        s.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// One runtime: binary, private --root, io dir

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Which {
    Runc,
    Vsrun,
}

impl Which {
    pub fn name(self) -> &'static str {
        match self {
            Which::Runc => "runc",
            Which::Vsrun => "vsrun",
        }
    }
}

pub struct Ran {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}; stderr: {}; stdout: {}",
            self.code,
            short(&self.stderr),
            short(&self.stdout)
        )
    }
}

pub struct Rt {
    pub which: Which,
    pub bin: PathBuf,
    pub root: tempfile::TempDir,
    pub io: tempfile::TempDir,
    pub seq: std::sync::atomic::AtomicU64,
}

impl Rt {
    pub fn new(which: Which) -> Rt {
        let bin = match which {
            Which::Runc => runc_bin(),
            Which::Vsrun => vsrun_bin(),
        };
        let mk = |p: &str| {
            tempfile::Builder::new()
                .prefix(&format!("vsrun-diff-{}-{p}-", which.name()))
                .tempdir()
                .expect("temp dir")
        };
        Rt {
            which,
            bin,
            root: mk("root"),
            io: mk("io"),
            seq: Default::default(),
        }
    }

    /// `<bin> --root R ARGS` with cwd `cwd`, stdin /dev/null, stdout/stderr to the given files
    /// (fresh ones when None), killed after CMD_TIMEOUT.
    pub fn run(&self, cwd: &Path, args: &[&str], out: Option<(PathBuf, PathBuf)>) -> Ran {
        let (o, e) = out.unwrap_or_else(|| {
            let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (
                self.io.path().join(format!("{n}.out")),
                self.io.path().join(format!("{n}.err")),
            )
        });
        let mut c = Command::new(&self.bin);
        // A small fixed environment, as engines give (containerd's shim passes its own): the
        // marker shows which hooks get the runtime's environment.
        c.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env(RUNTIME_ENV_MARKER, "1");
        c.arg("--root")
            .arg(self.root.path())
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&o).expect("create stdout file"))
            .stderr(fs::File::create(&e).expect("create stderr file"));
        let mut child = c
            .spawn()
            .unwrap_or_else(|err| panic!("spawn {}: {err}", self.bin.display()));
        let deadline = Instant::now() + CMD_TIMEOUT;
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                break Some(st);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let mut stderr = fs::read_to_string(&e).unwrap_or_default();
        if status.is_none() {
            stderr.push_str(&format!("\n[killed after {CMD_TIMEOUT:?}]"));
        }
        Ran {
            ok: status.map(|s| s.success()).unwrap_or(false),
            code: status.and_then(|s| s.code()),
            stdout: fs::read_to_string(&o).unwrap_or_default(),
            stderr,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Console socket: the pty master arrives over SCM_RIGHTS; a thread copies what it reads.

/// Where a container's (or exec'd process's) output goes: files, or a pty read by a thread.
pub enum Output {
    File(PathBuf),
    Pty(Arc<Mutex<Vec<u8>>>),
}

impl Output {
    pub fn text(&self) -> String {
        match self {
            Output::File(p) => fs::read_to_string(p).unwrap_or_default(),
            Output::Pty(b) => String::from_utf8_lossy(&b.lock().unwrap()).into_owned(),
        }
    }
}

/// Listen on `path`; the master that arrives is read until EOF/EIO into the returned buffer.
pub fn console_socket(path: &Path) -> Arc<Mutex<Vec<u8>>> {
    let l = UnixListener::bind(path).expect("bind console socket");
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let Some(master) = l.accept().ok().and_then(|(s, _)| crate::scm::recv_fd(&s)) else {
            return;
        };
        let mut f = fs::File::from(master);
        let mut chunk = [0u8; 8192];
        while let Ok(n) = f.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

/// Wait for `n` complete JSON lines of output (or the process `pid` dying first).
pub fn wait_lines(out: &Output, n: usize, pid: Option<i32>) -> Result<Vec<Value>, String> {
    let deadline = Instant::now() + OUTPUT_TIMEOUT;
    loop {
        let text = out.text();
        let complete: Vec<&str> = match text.rfind('\n') {
            Some(i) => text[..i]
                .split('\n')
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| !l.trim().is_empty())
                .collect(),
            None => vec![],
        };
        if complete.len() >= n {
            return complete[..n]
                .iter()
                .map(|l| {
                    serde_json::from_str(l)
                        .map_err(|e| format!("output line is not JSON ({e}): {}", short(l)))
                })
                .collect();
        }
        let dead = pid.map(|p| !pid_alive(p)).unwrap_or(false);
        if dead || Instant::now() > deadline {
            return Err(format!(
                "expected {n} JSON lines, got {} ({}); output so far: {}",
                complete.len(),
                if dead {
                    "the process died"
                } else {
                    "timed out"
                },
                short(&text)
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------------------------
// Normalisation of the per-run names

/// String replacements (longest first) that turn one run's own names into placeholders.
pub struct Norm {
    pub subs: Vec<(String, String)>,
}

impl Norm {
    pub fn new(mut subs: Vec<(String, String)>) -> Norm {
        subs.retain(|(from, _)| !from.is_empty());
        // mountinfo's `root` shows a path from its file system's root: where /tmp is a tmpfs
        // of its own (the VM lane, many distributions) a bundle /tmp/x appears there as /x.
        let table = host_mounts();
        let relative: Vec<(String, String)> = subs
            .iter()
            .filter_map(|(from, to)| Some((on_its_mount(&table, from)?, to.clone())))
            .collect();
        subs.extend(relative);
        subs.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        Norm { subs }
    }

    pub fn s(&self, s: &str) -> String {
        let mut s = s.to_string();
        for (from, to) in &self.subs {
            s = s.replace(from.as_str(), to);
        }
        s
    }

    pub fn v(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.s(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.v(x)).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, x)| (self.s(k), self.v(x))).collect())
            }
            other => other.clone(),
        }
    }
}

pub type Facts = BTreeMap<String, String>;

pub fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn is_bind(m: &Value) -> bool {
    m["type"] == "bind"
        || m["options"]
            .as_array()
            .map(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
            .unwrap_or(false)
}

pub fn push_action(actions: &mut Vec<(String, String)>, verb: &str, path: &str) {
    let a = (verb.to_string(), path.to_string());
    if !actions.contains(&a) {
        actions.push(a);
    }
}

/// The probe actions that show what the config's paths look like from inside.
pub fn actions_for(config: &Value) -> Vec<(String, String)> {
    let mut a = Vec::new();
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|x| {
                x.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    for p in strs(&config["linux"]["maskedPaths"]) {
        push_action(&mut a, "stat", &p);
        push_action(&mut a, "read", &p);
        push_action(&mut a, "ls", &p);
    }
    for p in strs(&config["linux"]["readonlyPaths"]) {
        push_action(&mut a, "stat", &p);
        // open(O_WRONLY|O_CREAT|O_TRUNC) and write nothing: EROFS on a read-only mount.
        push_action(&mut a, "write", &p);
        push_action(&mut a, "write", &format!("{p}/.vsrun-diff"));
    }
    if let Some(m) = config["linux"]["sysctl"].as_object() {
        for k in m.keys() {
            push_action(
                &mut a,
                "read",
                &format!("/proc/sys/{}", k.replace('.', "/")),
            );
        }
    }
    for m in config["mounts"].as_array().into_iter().flatten() {
        let d = m["destination"].as_str().unwrap_or("");
        push_action(&mut a, "stat", d);
        if is_bind(m) {
            push_action(&mut a, "read", d);
            push_action(&mut a, "ls", d);
        }
    }
    push_action(&mut a, "ls", "/dev");
    push_action(&mut a, "ls", "/sys/fs/cgroup");
    for d in [
        "null", "zero", "full", "tty", "random", "urandom", "ptmx", "console", "fd", "stdin",
        "stdout", "stderr", "core", "pts/ptmx",
    ] {
        push_action(&mut a, "stat", &format!("/dev/{d}"));
    }
    push_action(&mut a, "write", "/.vsrun-diff-rootfs-rw");
    // Last, so the `ls` above is not affected: can the container create entries in the tmpfs
    // that holds its cgroup mounts?
    for m in config["mounts"].as_array().into_iter().flatten() {
        if m["type"] == "cgroup" {
            let d = m["destination"].as_str().unwrap_or("");
            push_action(&mut a, "write", &format!("{d}/.vsrun-diff"));
        }
    }
    a
}

pub fn probe_args(actions: &[(String, String)], sleep: bool) -> Vec<String> {
    let mut v = vec!["/probe".to_string(), "report".to_string()];
    for (verb, path) in actions {
        v.push("--".into());
        v.push(verb.clone());
        v.push(path.clone());
        if verb == "write" {
            v.push(String::new());
        }
    }
    if sleep {
        v.extend(["--", "sleep", "1000"].map(String::from));
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Running a container and reading the host view

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

// ---------------------------------------------------------------------------------------------
// The probe's report and actions as facts

pub fn ns_inode_of(pid: &str, ns: &str) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/ns/{ns}"))
        .ok()
        .map(|m| m.ino())
}

/// How a namespace inode seen inside relates to the host, the test's netns, or the init.
pub fn classify_ns(ns: &str, ino: &Value, netns: Option<&NsHolder>, init: Option<i32>) -> String {
    let Some(ino) = ino.as_u64() else {
        return "<none>".into();
    };
    let base = ns.trim_end_matches("_for_children");
    if let Some(p) = init {
        if ns_inode_of(&p.to_string(), ns) == Some(ino) {
            return "same as the container's init".into();
        }
    }
    if ns_inode_of("self", base) == Some(ino) {
        return "host's".into();
    }
    if let Some(h) = netns {
        if base == "net" && h.ns_inode("net") == ino {
            return "the test's netns (linux.namespaces path)".into();
        }
    }
    "new".into()
}

pub fn report_facts(
    seen: &Value,
    norm: &Norm,
    netns: Option<&NsHolder>,
    init: Option<i32>,
    prefix: &str,
    facts: &mut Facts,
) {
    let mut put = |k: &str, v: String| {
        facts.insert(format!("{prefix}{k}"), v);
    };
    // Session and process group: whether the process leads them, or they belong to a process
    // outside the pid namespace (0).
    for k in ["pgid", "sid"] {
        let v = &seen[k];
        let v = if *v == seen["pid"] {
            "its own pid (leader)".to_string()
        } else if *v == json!(0) {
            "0 (leader outside the pid namespace)".to_string()
        } else {
            compact(v)
        };
        put(k, v);
    }
    for k in PLAIN_FACTS {
        put(k, compact(&norm.v(&seen[k])));
    }
    put("env", compact(&norm.v(&seen["env"])));
    cap_and_rlimit_facts(seen, &mut put);
    if let Some(m) = seen["ns"].as_object() {
        for (k, v) in m {
            put(&format!("ns.{k}"), classify_ns(k, v, netns, init));
        }
    }
    let cg: Vec<String> = seen["cgroup"]
        .as_array()
        .into_iter()
        .flatten()
        .map(compact)
        .collect();
    let mut cg_facts = Facts::new();
    cgroup_lines(&cg.join("\n"), norm, "proc-cgroup", &mut cg_facts);
    for (k, v) in cg_facts {
        put(&k, v);
    }
    put("fds", fd_fact(seen, norm));
    mount_facts(seen, norm, &mut put);
}

/// Report fields compared as they are (normalized).
const PLAIN_FACTS: [&str; 23] = [
    "pid",
    "ppid",
    "uid",
    "euid",
    "suid",
    "fsuid",
    "gid",
    "egid",
    "sgid",
    "fsgid",
    "groups",
    "no_new_privs",
    "NoNewPrivs",
    "seccomp",
    "cwd",
    "argv",
    "hostname",
    "domainname",
    "umask_octal",
    "oom_score_adj",
    "uid_map",
    "gid_map",
    "label",
];

/// The five capability sets by name, and each rlimit as soft/hard.
fn cap_and_rlimit_facts(seen: &Value, put: &mut impl FnMut(&str, String)) {
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let names: Vec<String> = seen["caps"][set]["names"]
            .as_array()
            .into_iter()
            .flatten()
            .map(compact)
            .collect();
        put(&format!("caps.{set}"), names.join(","));
    }
    if let Some(m) = seen["rlimits"].as_object() {
        for (k, v) in m {
            put(
                &format!("rlimit.{k}"),
                format!("{}/{}", v["soft"], v["hard"]),
            );
        }
    }
}

/// Open fds as `n→target`; pipe and socket inode numbers differ by nature and are dropped.
fn fd_fact(seen: &Value, norm: &Norm) -> String {
    let fds: Vec<String> = seen["fds"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let t = norm.s(&compact(&f["target"]));
            // pipe:[ino] / socket:[ino]: inode numbers differ by nature.
            let t = match t.find(":[") {
                Some(i) => format!("{}:[…]", &t[..i]),
                None => t,
            };
            format!("{}→{t}", f["fd"])
        })
        .collect();
    fds.join(" ")
}

/// Mounts: one fact per mount point (fs type, options, super options, propagation, root within
/// its source, parent) plus the order. Mount ids and peer group numbers differ by nature and
/// are dropped; the parent is named by its mount point.
pub fn mount_facts(seen: &Value, norm: &Norm, put: &mut impl FnMut(&str, String)) {
    let Some(list) = seen["mounts"].as_array() else {
        put("mounts", "<unreadable>".into());
        return;
    };
    let by_id: BTreeMap<u64, String> = list
        .iter()
        .filter_map(|m| Some((m["id"].as_u64()?, compact(&m["mount_point"]))))
        .collect();
    let mut order = Vec::new();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for m in list {
        let mp = compact(&m["mount_point"]);
        let n = count.entry(mp.clone()).or_default();
        *n += 1;
        let key = if *n == 1 {
            format!("mount {mp}")
        } else {
            format!("mount {mp} #{n}")
        };
        order.push(mp.clone());
        let sorted = |v: &Value| {
            let mut o: Vec<String> = v.as_array().into_iter().flatten().map(compact).collect();
            o.sort();
            o.join(",")
        };
        let parent = m["parent"]
            .as_u64()
            .and_then(|p| by_id.get(&p).cloned())
            .unwrap_or_else(|| "<outside>".into());
        put(
            &key,
            format!(
                "{} opts={} super={} {} root={} source={} parent={}",
                compact(&m["fs_type"]),
                sorted(&m["options"]),
                sorted(&m["super_options"]),
                compact(&m["propagation"]),
                norm.s(&compact(&m["root"])),
                norm.s(&compact(&m["source"])),
                parent
            ),
        );
    }
    put("mounts.order", order.join(" "));
}

/// One probe action's result, without what differs by nature (inode and device numbers of
/// per-mount-instance filesystems, error text when the errno is there).
pub fn action_fact(r: &Value, norm: &Norm) -> String {
    let mut r = norm.v(r);
    if let Value::Object(m) = &mut r {
        for k in ["ino", "dev_major", "dev_minor", "nlink"] {
            m.remove(k);
        }
        if m.get("errno").map(|e| !e.is_null()).unwrap_or(false) {
            m.remove("error");
        }
        if m.get("type") == Some(&json!("dir")) {
            m.remove("size");
        }
        if m.get("ok") == Some(&json!(true)) {
            m.remove("ok");
            m.remove("error");
        }
    }
    compact(&r)
}

/// rmdir (never anything else) the per-run cgroup tree under every hierarchy, deepest first:
/// runtimes remove the container's own cgroup, not the parents they created.
pub fn remove_cgroup_top(top: &str) {
    pub fn rm(dir: &Path) {
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    rm(&e.path());
                }
            }
        }
        let _ = fs::remove_dir(dir);
    }
    for (_, mp) in cgroup_mounts() {
        let d = Path::new(&mp).join(top);
        if d.exists() {
            rm(&d);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Differences allowed wherever they show up (the engines' configs and the generated sweep)

/// A difference that is not a compatibility problem, with its reason.
pub struct Allowed {
    /// Fact name; `*` matches any run of characters.
    pub key: &'static str,
    /// Only in these cases (empty: all).
    pub cases: &'static [&'static str],
    /// Only when this holds for (runc's value, vsrun's value).
    pub when: fn(&str, &str) -> bool,
    pub why: &'static str,
}

pub fn always(_: &str, _: &str) -> bool {
    true
}

pub const ALLOWED: &[Allowed] = &[
    Allowed {
        key: "*.mount /sys/fs/cgroup",
        cases: &[],
        when: own_cgroup2_bind,
        why: "pure cgroup v2 without a cgroup namespace: runc 1.1.5 mounts a fresh cgroup2, \
              which shows the host's whole hierarchy (root=/); vsrun binds the container's own \
              cgroup directory, as it does on a hybrid host (README, Differences from runc)",
    },
    Allowed {
        key: "*.ls /sys/fs/cgroup",
        cases: &[],
        when: |runc, vsrun| !runc.contains("cgroup.events") && vsrun.contains("cgroup.events"),
        why: "the consequence of the entry above: runc lists the root cgroup (which has no \
              cgroup.events), vsrun the container's own cgroup",
    },
    Allowed {
        key: "*.rlimit.RLIMIT_NOFILE",
        cases: &[],
        when: nofile_raised_by_go,
        why: "with no RLIMIT_NOFILE in the config both keep the caller's limit, but runc 1.1.5's \
              Go runtime (1.19+) raises its own soft limit to the hard one at start and passes \
              that on; vsrun passes the caller's (runc 1.2 restores it too)",
    },
    Allowed {
        key: "cmd.state.owner",
        cases: &[],
        when: always,
        why: "`owner` is not in the OCI state (runtime-spec state.md); runc 1.1 leaves it empty \
              in `state` (it fills it only in `list`), and no engine reads it (go-runc's \
              Container has no such field)",
    },
    Allowed {
        key: "hook.*.stdin.ociVersion",
        cases: &[],
        when: always,
        why: "the state's ociVersion is the runtime-spec version the runtime itself complies \
              with (runtime-spec state.md): runc 1.1.5 is built against 1.0.2-dev, vsrun \
              implements 1.2.0",
    },
    Allowed {
        key: "hook.*.stdin.annotations",
        cases: &[],
        when: |runc, vsrun| runc == "<absent>" && vsrun == "{}",
        why: "annotations is OPTIONAL in the state: runc omits an empty map (Go omitempty), vsrun \
              writes {}; a hook decoding the state sees no annotations either way",
    },
    Allowed {
        key: "exec.pid",
        cases: &[],
        when: |runc, vsrun| runc != "1" && vsrun != "1",
        why: "the pid of an exec'd process inside the container's pid namespace counts the \
              processes the runtime forked there before it (runc's `runc init` path forks \
              intermediate children; vsrun forks none); only the init being pid 1 is a rule",
    },
    Allowed {
        key: "*.mount *",
        cases: &[],
        when: masked_dir_extra_flags,
        why: "a masked directory is an empty read-only tmpfs: vsrun also sets nosuid, nodev and \
              noexec on it, which cannot change anything there (nothing can be created in it, \
              and a later mount on top does not inherit them)",
    },
    Allowed {
        key: "*.ls /sys/fs/cgroup",
        cases: &[],
        when: |runc, vsrun| runc.replace("]}", ",\"unified\"]}") == vsrun,
        why: "on a hybrid host vsrun also shows the unified (cgroup2) tree under a `cgroup` \
              mount, the layout systemd expects there; the container is a member of that tree \
              with both runtimes and sees only its own directory of it (next entry)",
    },
    Allowed {
        key: "*.mount /sys/fs/cgroup/unified",
        cases: &[],
        when: |runc, vsrun| {
            runc == "<absent>"
                && vsrun.starts_with("cgroup2 ")
                && vsrun.contains(",ro ")
                && !vsrun.contains("root=/ ")
        },
        why: "the unified tree is bound read-only from the container's own cgroup directory \
              (never the host's root), like the v1 hierarchies beside it",
    },
    Allowed {
        key: "*.mount /sys/fs/cgroup",
        cases: &[],
        when: |runc, vsrun| runc.replace(",rw super=", ",ro super=") == vsrun,
        why: "the config asks `ro` for the cgroup mount: vsrun applies it to the tmpfs that holds \
              the hierarchies too, runc 1.1.5 only to the hierarchies, leaving a writable tmpfs \
              in which the container can create files; vsrun follows the config (next two \
              entries are the consequences)",
    },
    Allowed {
        key: "*.stat /sys/fs/cgroup",
        cases: &[],
        when: |runc, vsrun| runc.replace("365", "493").replace("\"555\"", "\"755\"") == vsrun,
        why: "mode of the read-only tmpfs root (755 as its `mode=755` data says; runc leaves 555 \
              on its writable one); on a read-only mount the mode grants nothing more",
    },
    Allowed {
        key: "*.write /sys/fs/cgroup/.vsrun-diff",
        cases: &[],
        when: |_, vsrun| vsrun.contains("\"errno\":30"),
        why: "EROFS: the tmpfs is read-only as the config's `ro` asks (see the mount entry)",
    },
    Allowed {
        key: "*.mounts.order",
        cases: &[],
        when: |runc, vsrun| {
            let strip = |l: &str| {
                without(l, "/dev/console")
                    .into_iter()
                    .filter(|m| m != "/sys/fs/cgroup/unified")
                    .collect::<Vec<_>>()
            };
            strip(runc) == strip(vsrun)
        },
        why: "only the place of the /dev/console bind in the mount list differs (runc mounts it \
              before the masked and read-only paths, vsrun after them; it neither covers nor is \
              covered by any of them, so the resulting tree is the same), and vsrun's extra \
              /sys/fs/cgroup/unified (allowed above); each entry is compared separately",
    },
];

/// A space-separated list without the entries equal to `item`.
pub fn without(list: &str, item: &str) -> Vec<String> {
    list.split(' ')
        .filter(|x| *x != item)
        .map(String::from)
        .collect()
}

/// Both values are read-only tmpfs mounts (as masked directories are) that differ only in
/// nosuid/nodev/noexec.
pub fn masked_dir_extra_flags(runc: &str, vsrun: &str) -> bool {
    let strip = |v: &str| -> Option<String> {
        let rest = v.strip_prefix("tmpfs opts=")?;
        let (opts, tail) = rest.split_once(' ')?;
        let o: Vec<&str> = opts.split(',').collect();
        // The super options may carry more than `ro` (tmpfs's inode64 on some kernels).
        let sup = tail.strip_prefix("super=")?.split(' ').next()?;
        if !o.contains(&"ro") || !sup.split(',').any(|x| x == "ro") {
            return None;
        }
        let kept: Vec<&str> = o
            .into_iter()
            .filter(|x| !matches!(*x, "nosuid" | "nodev" | "noexec"))
            .collect();
        Some(format!("{} {tail}", kept.join(",")))
    };
    matches!((strip(runc), strip(vsrun)), (Some(a), Some(b)) if a == b)
}

/// `path` (absolute) as mountinfo's `root` shows it when it lies below a mount point other
/// than `/` (None when that is the same text).
fn on_its_mount(table: &[HostMount], path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let m = table
        .iter()
        .filter(|m| m.mount_point != "/" && is_under(path, Path::new(&m.mount_point)))
        .max_by_key(|m| m.mount_point.len())?;
    let rest = &path[m.mount_point.trim_end_matches('/').len()..];
    let rel = format!("{}{rest}", m.root.trim_end_matches('/'));
    (rel != path && !rel.is_empty()).then_some(rel)
}

/// runc's `/sys/fs/cgroup` is a cgroup2 mount of the whole hierarchy and vsrun's the same
/// mount flags on a directory below it.
fn own_cgroup2_bind(runc: &str, vsrun: &str) -> bool {
    let fields = |v: &str| -> Option<(String, String)> {
        let opts = v
            .strip_prefix("cgroup2 ")?
            .split(" root=")
            .next()?
            .to_string();
        let root = v.split(" root=").nth(1)?.split(' ').next()?.to_string();
        Some((opts, root))
    };
    match (fields(runc), fields(vsrun)) {
        (Some((ro, rr)), Some((vo, vr))) => ro == vo && rr == "/" && vr.len() > 1,
        _ => false,
    }
}

/// runc shows `H/H`, vsrun `S/H` with S the soft limit the caller (this test) has.
fn nofile_raised_by_go(runc: &str, vsrun: &str) -> bool {
    // This process's limits, as the kernel shows them: "Max open files  SOFT  HARD  files".
    let limits = fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let Some(line) = limits.lines().find(|l| l.starts_with("Max open files")) else {
        return false;
    };
    let v: Vec<&str> = line.split_whitespace().collect();
    let (soft, hard) = (v[3], v[4]);
    runc == format!("{hard}/{hard}") && vsrun == format!("{soft}/{hard}")
}
