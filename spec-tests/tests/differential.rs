//! Differential check against runc (issue 4, point 4).
//!
//! ../shared/engine-configs/ holds 17 files that podman, containerd and docker wrote on this
//! machine: full config.json files, exec process.json files and one `update --resources` file.
//! For each one, this test runs the same workload under runc (the reference, `RUNC_BIN` or
//! `runc` in PATH) and under vsrun, the way the engines call a runtime, and compares what the
//! container process sees (the probe's report and its actions) and what the host sees
//! (/proc/<pid>, the cgroup files, the hook's stdin, `state`).
//!
//! How a config is made runnable here (the same for both runtimes; nothing else is changed):
//! - `root.path` points at a fresh copy of the harness's busybox+probe rootfs (kept relative
//!   when the engine wrote it relative).
//! - `process.args` becomes the probe: `/probe report -- <actions> -- sleep 1000`. The actions
//!   read, list, stat and try to write every masked path, read-only path, bind destination,
//!   sysctl named in the config, and the default devices.
//! - Every bind mount source (engine-owned files under /var/lib/engines) becomes a temp file or
//!   dir in the bundle with the same contents for both runtimes; destinations are kept.
//! - Every namespace `path` (engine-owned netns files: podman's /run/netns/netns-*, docker's
//!   exec/netns/default) becomes /proc/<pid>/ns/net of an `unshare --net` process started for the
//!   test, one per runtime (so one runtime's sysctl writes never show up in the other's netns).
//! - Every hook keeps its args, env and timeout; its `path` (docker's /proc/<dockerd>/exe,
//!   libnetwork-setkey) becomes a script that records its args, env, cwd and stdin.
//! - `linux.cgroupsPath` becomes `/vsrun-diff-<pid>-<case>-<runtime>/<the engine's path>`.
//!
//! Each runtime runs in its own `--root`, with the bundle as its working directory (as the
//! containerd shim does), `create` (with `--console-socket` when process.terminal is set) then
//! `start`, then `kill KILL` and `delete`. The two runtimes run in parallel threads.
//!
//! What is compared is a flat map "fact name → value" per runtime. Only what differs by nature
//! is normalised before comparing:
//! - each run's own names: bundle dir, `--root`, io dir, container id, cgroup top dir (`Norm`);
//! - mount ids and peer-group numbers (a mount's parent is named by its mount point instead),
//!   inode and device numbers in `stat` results, pipe/socket inode numbers in fd targets;
//! - `devices.list` is compared as a set (the kernel lists exceptions in the order written);
//!   `memory.oom_control` by its `oom_kill_disable` line only (the rest are event counters);
//! - sid/pgid as "= own pid" or "0 (outside the pid namespace)"; namespaces as "host's",
//!   "new", "the test's netns" or "same as the container's init";
//! - a hook's environment shows the runtime's own environment as a marker.
//!
//! A difference fails the test unless it is in `ALLOWED`, each entry with the reason it is not
//! a compatibility problem. `DIFF_DUMP=1` prints every fact of both runtimes.

use spec_tests::serde_json::{self, json, Value};
use spec_tests::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// The cases

/// Every file of ../shared/engine-configs and what is done with it.
enum Case {
    /// A full config.json: run it.
    Config,
    /// An exec process.json: start the named config, `exec --process` this.
    Exec(&'static str),
    /// An `update --resources` file: start the named config, update it.
    Update(&'static str),
}

const CASES: &[(&str, Case)] = &[
    ("containerd-1-config.json", Case::Config),
    ("containerd-2-config.json", Case::Config),
    ("containerd-3-config.json", Case::Config),
    // containerd-3 is the `ctr run ... sleep 1000` these were exec'd into.
    (
        "containerd-4-process.json",
        Case::Exec("containerd-3-config.json"),
    ),
    (
        "containerd-5-process.json",
        Case::Exec("containerd-3-config.json"),
    ),
    ("containerd-6-config.json", Case::Config),
    ("containerd-7-config.json", Case::Config),
    ("docker-1-config.json", Case::Config),
    ("docker-2-config.json", Case::Config),
    // docker-2 (HOSTNAME=88f94cdb58a6, sleep 1000) is the container docker exec'd into.
    ("docker-3-process.json", Case::Exec("docker-2-config.json")),
    ("docker-4-process.json", Case::Exec("docker-2-config.json")),
    ("docker-5-config.json", Case::Config),
    ("docker-6-config.json", Case::Config),
    ("docker-7-config.json", Case::Config),
    ("podman-1-config.json", Case::Config),
    // podman-1 is the httpd that podman-2 (wget) was exec'd into and podman-3 updated.
    ("podman-2-process.json", Case::Exec("podman-1-config.json")),
    (
        "podman-3-resources.json",
        Case::Update("podman-1-config.json"),
    ),
];

// ---------------------------------------------------------------------------------------------
// The allow-list: differences that are not compatibility problems, each with its reason. Every
// allowed difference is still printed (with --nocapture) next to its reason.

struct Allowed {
    /// Fact name; `*` matches any run of characters.
    key: &'static str,
    /// Only in these cases (empty: all).
    cases: &'static [&'static str],
    /// Only when this holds for (runc's value, vsrun's value).
    when: fn(&str, &str) -> bool,
    why: &'static str,
}

fn always(_: &str, _: &str) -> bool {
    true
}

const ALLOWED: &[Allowed] = &[
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
fn without(list: &str, item: &str) -> Vec<String> {
    list.split(' ')
        .filter(|x| *x != item)
        .map(String::from)
        .collect()
}

/// Both values are read-only tmpfs mounts (as masked directories are) that differ only in
/// nosuid/nodev/noexec.
fn masked_dir_extra_flags(runc: &str, vsrun: &str) -> bool {
    let strip = |v: &str| -> Option<String> {
        let rest = v.strip_prefix("tmpfs opts=")?;
        let (opts, tail) = rest.split_once(' ')?;
        let o: Vec<&str> = opts.split(',').collect();
        if !o.contains(&"ro") || !tail.starts_with("super=ro ") {
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

/// `*` in `pattern` matches any run of characters.
fn glob(pattern: &str, s: &str) -> bool {
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

fn allowed(case: &str, key: &str, runc: &str, vsrun: &str) -> Option<&'static Allowed> {
    ALLOWED.iter().find(|a| {
        glob(a.key, key) && (a.cases.is_empty() || a.cases.contains(&case)) && (a.when)(runc, vsrun)
    })
}

// ---------------------------------------------------------------------------------------------
// Locations and small helpers

fn configs_dir() -> PathBuf {
    match std::env::var_os("ENGINE_CONFIGS") {
        Some(d) => PathBuf::from(d),
        // A copy of ../shared/engine-configs, so a fresh clone has them.
        None => workspace_root().join("spec-tests/fixtures/engine-configs"),
    }
}

fn load(name: &str) -> Value {
    let p = configs_dir().join(name);
    let text = fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "read {} ({e}); the engine files live in spec-tests/fixtures/engine-configs \
             (or set ENGINE_CONFIGS)",
            p.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()))
}

fn runc_bin() -> PathBuf {
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
const RUNTIME_ENV_MARKER: &str = "VSRUN_DIFF_RUNTIME_ENV";

const CMD_TIMEOUT: Duration = Duration::from_secs(30);
const OUTPUT_TIMEOUT: Duration = Duration::from_secs(20);

fn short(s: &str) -> String {
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
enum Which {
    Runc,
    Vsrun,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Runc => "runc",
            Which::Vsrun => "vsrun",
        }
    }
}

struct Ran {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn describe(&self) -> String {
        format!(
            "exit {:?}; stderr: {}; stdout: {}",
            self.code,
            short(&self.stderr),
            short(&self.stdout)
        )
    }
}

struct Rt {
    which: Which,
    bin: PathBuf,
    root: tempfile::TempDir,
    io: tempfile::TempDir,
    seq: std::sync::atomic::AtomicU64,
}

impl Rt {
    fn new(which: Which) -> Rt {
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
    fn run(&self, cwd: &Path, args: &[&str], out: Option<(PathBuf, PathBuf)>) -> Ran {
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

fn recv_fd(s: &UnixStream) -> Option<OwnedFd> {
    let mut data = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    let mut cbuf = [0u64; 16];
    // SAFETY: a zeroed msghdr pointing at live buffers; recvmsg fills them.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        if libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) < 0 {
            return None;
        }
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
            return None;
        }
        let fd: RawFd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
        Some(OwnedFd::from_raw_fd(fd))
    }
}

/// Where a container's (or exec'd process's) output goes: files, or a pty read by a thread.
enum Output {
    File(PathBuf),
    Pty(Arc<Mutex<Vec<u8>>>),
}

impl Output {
    fn text(&self) -> String {
        match self {
            Output::File(p) => fs::read_to_string(p).unwrap_or_default(),
            Output::Pty(b) => String::from_utf8_lossy(&b.lock().unwrap()).into_owned(),
        }
    }
}

/// Listen on `path`; the master that arrives is read until EOF/EIO into the returned buffer.
fn console_socket(path: &Path) -> Arc<Mutex<Vec<u8>>> {
    let l = UnixListener::bind(path).expect("bind console socket");
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let Some(master) = l.accept().ok().and_then(|(s, _)| recv_fd(&s)) else {
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
fn wait_lines(out: &Output, n: usize, pid: Option<i32>) -> Result<Vec<Value>, String> {
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
struct Norm {
    subs: Vec<(String, String)>,
}

impl Norm {
    fn new(mut subs: Vec<(String, String)>) -> Norm {
        subs.retain(|(from, _)| !from.is_empty());
        subs.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        Norm { subs }
    }

    fn s(&self, s: &str) -> String {
        let mut s = s.to_string();
        for (from, to) in &self.subs {
            s = s.replace(from.as_str(), to);
        }
        s
    }

    fn v(&self, v: &Value) -> Value {
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

type Facts = BTreeMap<String, String>;

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Bundle preparation

/// One runtime's bundle for one case: rootfs copy, bind sources, hook scripts, netns holder.
struct Prepared {
    dir: tempfile::TempDir,
    id: String,
    cg_top: String,
    config: Value,
    netns: Option<NsHolder>,
    /// (hook point, index) of every hook script.
    hooks: Vec<(String, usize)>,
    /// (verb, path) probe actions after the report.
    actions: Vec<(String, String)>,
}

/// The per-run cgroup tree is removed whatever happened (after the container's `Running`
/// guard, which borrows this, has force-deleted the container).
impl Drop for Prepared {
    fn drop(&mut self) {
        remove_cgroup_top(&self.cg_top);
    }
}

impl Prepared {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn norm(&self, rt: &Rt) -> Norm {
        Norm::new(vec![
            (
                self.path().to_string_lossy().into_owned(),
                "<bundle>".into(),
            ),
            (
                rt.root.path().to_string_lossy().into_owned(),
                "<root>".into(),
            ),
            (rt.io.path().to_string_lossy().into_owned(), "<io>".into()),
            (self.id.clone(), "<id>".into()),
            (self.cg_top.clone(), "<cgtop>".into()),
        ])
    }

    /// The container's cgroupsPath as written to config.json.
    fn cgroups_path(&self) -> Option<String> {
        self.config["linux"]["cgroupsPath"]
            .as_str()
            .map(String::from)
    }
}

fn is_bind(m: &Value) -> bool {
    m["type"] == "bind"
        || m["options"]
            .as_array()
            .map(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
            .unwrap_or(false)
}

/// Engines bind directories (podman's userdata/shm) and files (hosts, hostname, resolv.conf,
/// .containerenv). The engine-owned source is gone, so the kind is told from its name.
fn bind_source_is_dir(m: &Value) -> bool {
    let src = m["source"].as_str().unwrap_or("");
    let name = Path::new(src)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name == "shm" || m["destination"] == "/dev/shm"
}

fn push_action(actions: &mut Vec<(String, String)>, verb: &str, path: &str) {
    let a = (verb.to_string(), path.to_string());
    if !actions.contains(&a) {
        actions.push(a);
    }
}

/// The probe actions that show what the config's paths look like from inside.
fn actions_for(config: &Value) -> Vec<(String, String)> {
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

fn probe_args(actions: &[(String, String)], sleep: bool) -> Vec<String> {
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

fn case_tag(case: &str) -> String {
    case.trim_end_matches(".json").replace('.', "-")
}

/// Rewrite an engine config for this runtime (see the module docs).
fn prepare(config_name: &str, case: &str, rt: &Rt, init_sleep_only: bool) -> Prepared {
    let mut config = load(config_name);
    let tag = case_tag(case);
    let dir = tempfile::Builder::new()
        .prefix(&format!("vsrun-diff-{tag}-{}-", rt.which.name()))
        .tempdir()
        .expect("bundle temp dir");
    let st = Command::new("cp")
        .arg("-a")
        .arg(base_rootfs())
        .arg(dir.path().join("rootfs"))
        .status()
        .expect("cp -a");
    assert!(st.success(), "cp -a of the base rootfs failed");

    // root.path
    let root_path = config["root"]["path"]
        .as_str()
        .unwrap_or("rootfs")
        .to_string();
    config["root"]["path"] = if Path::new(&root_path).is_absolute() {
        dir.path()
            .join("rootfs")
            .to_string_lossy()
            .into_owned()
            .into()
    } else {
        "rootfs".into()
    };

    // bind sources
    let binds = dir.path().join("binds");
    fs::create_dir_all(&binds).unwrap();
    if let Some(mounts) = config["mounts"].as_array_mut() {
        for (i, m) in mounts.iter_mut().enumerate() {
            let src = m["source"].as_str().unwrap_or("").to_string();
            if !is_bind(m) || !src.starts_with('/') {
                continue;
            }
            let name = Path::new(&src)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "src".into());
            let p = binds.join(format!("{i}-{name}"));
            let content = format!("{name} for {}\n", m["destination"].as_str().unwrap_or(""));
            if bind_source_is_dir(m) {
                fs::create_dir_all(&p).unwrap();
                fs::write(p.join("marker"), content).unwrap();
            } else {
                fs::write(&p, content).unwrap();
            }
            m["source"] = p.to_string_lossy().into_owned().into();
        }
    }

    // hooks
    let hook_dir = dir.path().join("hooks");
    fs::create_dir_all(&hook_dir).unwrap();
    let mut hooks = Vec::new();
    if let Some(points) = config["hooks"].as_object_mut() {
        for (point, list) in points.iter_mut() {
            for (i, h) in list.as_array_mut().into_iter().flatten().enumerate() {
                let base = hook_dir.join(format!("{point}-{i}"));
                let b = base.to_string_lossy();
                let script = format!(
                    "#!/bin/sh\n/usr/bin/env > '{b}.env'\nprintf '%s\\n' \"$@\" > '{b}.args'\n\
                     pwd > '{b}.cwd'\n/bin/cat > '{b}.stdin'\n"
                );
                let sp = hook_dir.join(format!("{point}-{i}.sh"));
                fs::write(&sp, script).unwrap();
                fs::set_permissions(&sp, fs::Permissions::from_mode(0o755)).unwrap();
                h["path"] = sp.to_string_lossy().into_owned().into();
                hooks.push((point.clone(), i));
            }
        }
    }

    // namespaces joined by path: a netns made for the test
    let mut netns = None;
    if let Some(nss) = config["linux"]["namespaces"].as_array_mut() {
        for ns in nss.iter_mut() {
            if ns.get("path").is_none() {
                continue;
            }
            assert_eq!(
                ns["type"], "network",
                "{case}: only network namespace paths are rewritten; add the others here"
            );
            let h = NsHolder::new(&["--net"]);
            ns["path"] = h.ns_path("net").into();
            netns = Some(h);
        }
    }

    // cgroupsPath
    let cg_top = format!(
        "vsrun-diff-{}-{tag}-{}",
        std::process::id(),
        rt.which.name()
    );
    let engine_cg = config["linux"]["cgroupsPath"]
        .as_str()
        .unwrap_or("/default")
        .trim_start_matches('/')
        .to_string();
    config["linux"]["cgroupsPath"] = format!("/{cg_top}/{engine_cg}").into();

    // process.args
    let actions = if init_sleep_only {
        vec![]
    } else {
        actions_for(&config)
    };
    config["process"]["args"] = if init_sleep_only {
        json!(["/probe", "sleep", "1000"])
    } else {
        json!(probe_args(&actions, true))
    };

    fs::write(
        dir.path().join("config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
    Prepared {
        id: format!("diff-{tag}-{}-{}", rt.which.name(), std::process::id()),
        dir,
        cg_top,
        config,
        netns,
        hooks,
        actions,
    }
}

// ---------------------------------------------------------------------------------------------
// Running a container and reading the host view

/// A failure of one runtime at one step (the rest of that run is then not compared).
#[derive(Debug)]
struct Failure {
    step: String,
    detail: String,
}

fn fail(step: &str, detail: impl Into<String>) -> Failure {
    Failure {
        step: step.into(),
        detail: detail.into(),
    }
}

/// A created+started container; `delete --force` on drop whatever happened.
struct Running<'a> {
    rt: &'a Rt,
    prep: &'a Prepared,
    pid: i32,
    output: Output,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.rt.run(
            self.prep.path(),
            &["delete", "--force", &self.prep.id],
            None,
        );
    }
}

fn start_container<'a>(rt: &'a Rt, prep: &'a Prepared) -> Result<Running<'a>, Failure> {
    let terminal = prep.config["process"]["terminal"] == true;
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
    args.push(prep.id.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = rt.run(prep.path(), &args, Some((out, err)));
    if !r.ok {
        // Whatever a failed create left is removed by delete --force (not asserted here).
        let _ = rt.run(prep.path(), &["delete", "--force", &prep.id], None);
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
    let r = rt.run(prep.path(), &["start", &prep.id], None);
    if !r.ok {
        return Err(fail("start", r.describe()));
    }
    Ok(running)
}

/// `kill KILL`, wait for the init to die, `delete`; then which cgroup dirs are left.
fn stop_container(c: Running, facts: &mut Facts) {
    let (rt, prep, pid) = (c.rt, c.prep, c.pid);
    let k = rt.run(prep.path(), &["kill", &prep.id, "KILL"], None);
    facts.insert("cmd.kill".into(), ok_or_code(&k));
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let st = rt.run(prep.path(), &["state", &prep.id], None);
    let status = serde_json::from_str::<Value>(&st.stdout)
        .map(|v| compact(&v["status"]))
        .unwrap_or_else(|_| format!("state failed: {}", st.describe()));
    facts.insert("cmd.state-after-kill.status".into(), status);
    let d = rt.run(prep.path(), &["delete", &prep.id], None);
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

fn ok_or_code(r: &Ran) -> String {
    if r.ok {
        "ok".into()
    } else {
        format!("exit {:?}", r.code)
    }
}

/// The host's cgroup hierarchies: (controllers as in /proc/<pid>/cgroup, mount point).
fn cgroup_mounts() -> Vec<(String, String)> {
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
const CGROUP_FILES: &[(&str, &[&str])] = &[
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
fn cgroup_facts(pid: i32, norm: &Norm, prefix: &str, facts: &mut Facts) {
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
fn cgroup_lines(text: &str, norm: &Norm, key: &str, facts: &mut Facts) {
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        let ctrls = if ctrls.is_empty() { "unified" } else { ctrls };
        facts.insert(format!("{key}[{ctrls}]"), norm.s(path));
    }
}

/// The host's view of a process: /proc/<pid>/status fields and oom_score_adj.
fn proc_facts(pid: i32, prefix: &str, facts: &mut Facts) {
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
fn state_facts(rt: &Rt, prep: &Prepared, pid: i32, norm: &Norm, facts: &mut Facts) {
    let r = rt.run(prep.path(), &["state", &prep.id], None);
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
fn hook_facts(prep: &Prepared, pid: i32, norm: &Norm, facts: &mut Facts) {
    for (point, i) in &prep.hooks {
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

fn ns_inode_of(pid: &str, ns: &str) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/ns/{ns}"))
        .ok()
        .map(|m| m.ino())
}

/// How a namespace inode seen inside relates to the host, the test's netns, or the init.
fn classify_ns(ns: &str, ino: &Value, netns: Option<&NsHolder>, init: Option<i32>) -> String {
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

fn report_facts(
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
    for k in [
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
    ] {
        put(k, compact(&norm.v(&seen[k])));
    }
    put("env", compact(&norm.v(&seen["env"])));
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
    put("fds", fds.join(" "));
    mount_facts(seen, norm, &mut put);
}

/// Mounts: one fact per mount point (fs type, options, super options, propagation, root within
/// its source, parent) plus the order. Mount ids and peer group numbers differ by nature and
/// are dropped; the parent is named by its mount point.
fn mount_facts(seen: &Value, norm: &Norm, put: &mut impl FnMut(&str, String)) {
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
fn action_fact(r: &Value, norm: &Norm) -> String {
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

// ---------------------------------------------------------------------------------------------
// The three kinds of case, for one runtime

fn run_config(case: &str, rt: &Rt) -> Result<Facts, Failure> {
    let prep = prepare(case, case, rt, false);
    let norm = prep.norm(rt);
    let mut facts = Facts::new();
    let c = start_container(rt, &prep)?;
    let lines = wait_lines(&c.output, 1 + prep.actions.len(), Some(c.pid))
        .map_err(|e| fail("probe output", e))?;
    report_facts(
        &lines[0],
        &norm,
        prep.netns.as_ref(),
        None,
        "probe.",
        &mut facts,
    );
    for ((verb, path), r) in prep.actions.iter().zip(&lines[1..]) {
        facts.insert(format!("probe.{verb} {path}"), action_fact(r, &norm));
    }
    proc_facts(c.pid, "host.", &mut facts);
    cgroup_facts(c.pid, &norm, "host.", &mut facts);
    state_facts(rt, &prep, c.pid, &norm, &mut facts);
    hook_facts(&prep, c.pid, &norm, &mut facts);
    stop_container(c, &mut facts);
    Ok(facts)
}

fn run_exec(case: &str, base: &str, rt: &Rt) -> Result<Facts, Failure> {
    let prep = prepare(base, case, rt, true);
    let norm = prep.norm(rt);
    let mut facts = Facts::new();
    let c = start_container(rt, &prep)?;

    let mut process = load(case);
    process["args"] = json!(["/probe", "report"]);
    let pfile = prep.path().join("process.json");
    fs::write(&pfile, serde_json::to_string_pretty(&process).unwrap()).unwrap();
    let terminal = process["terminal"] == true;
    let out = prep.path().join("exec.out");
    let err = prep.path().join("exec.err");
    let pid_file = prep.path().join("exec.pid");
    let sock = prep.path().join("exec-console.sock");
    let output = if terminal {
        Output::Pty(console_socket(&sock))
    } else {
        Output::File(out.clone())
    };
    // As containerd's shim and podman call it.
    let mut args = vec![
        "exec".to_string(),
        "--process".into(),
        pfile.to_string_lossy().into_owned(),
        "--detach".into(),
        "--pid-file".into(),
        pid_file.to_string_lossy().into_owned(),
    ];
    if terminal {
        args.push("--console-socket".into());
        args.push(sock.to_string_lossy().into_owned());
    }
    args.push(prep.id.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = rt.run(prep.path(), &args, Some((out, err)));
    if !r.ok {
        return Err(fail("exec", r.describe()));
    }
    facts.insert(
        "cmd.exec.pid-file".into(),
        match fs::read_to_string(&pid_file) {
            Ok(s) if s.trim().parse::<i32>().is_ok() => "a pid".into(),
            Ok(s) => format!("not a pid: {s:?}"),
            Err(e) => format!("<{e}>"),
        },
    );
    let lines = wait_lines(&output, 1, None).map_err(|e| fail("exec output", e))?;
    report_facts(
        &lines[0],
        &norm,
        prep.netns.as_ref(),
        Some(c.pid),
        "exec.",
        &mut facts,
    );
    stop_container(c, &mut facts);
    Ok(facts)
}

fn run_update(case: &str, base: &str, rt: &Rt) -> Result<Facts, Failure> {
    let prep = prepare(base, case, rt, true);
    let norm = prep.norm(rt);
    let mut facts = Facts::new();
    let c = start_container(rt, &prep)?;
    cgroup_facts(c.pid, &norm, "before-update.", &mut facts);
    let rfile = prep.path().join("resources.json");
    fs::write(&rfile, serde_json::to_string(&load(case)).unwrap()).unwrap();
    let rf = rfile.to_string_lossy().into_owned();
    // podman's call: update --resources=FILE ID
    let r = rt.run(
        prep.path(),
        &["update", &format!("--resources={rf}"), &prep.id],
        None,
    );
    if !r.ok {
        return Err(fail("update", r.describe()));
    }
    cgroup_facts(c.pid, &norm, "after-update.", &mut facts);
    stop_container(c, &mut facts);
    Ok(facts)
}

/// rmdir (never anything else) the per-run cgroup tree under every hierarchy, deepest first:
/// runtimes remove the container's own cgroup, not the parents they created.
fn remove_cgroup_top(top: &str) {
    fn rm(dir: &Path) {
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
// Comparison

fn run_case(case: &str) {
    let (_, kind) = CASES
        .iter()
        .find(|(n, _)| *n == case)
        .unwrap_or_else(|| panic!("{case}: not in CASES"));
    let one = |which: Which| -> Result<Facts, Failure> {
        let rt = Rt::new(which);
        match kind {
            Case::Config => run_config(case, &rt),
            Case::Exec(base) => run_exec(case, base, &rt),
            Case::Update(base) => run_update(case, base, &rt),
        }
    };
    let (runc, vsrun) = std::thread::scope(|s| {
        let r = s.spawn(|| one(Which::Runc));
        let v = s.spawn(|| one(Which::Vsrun));
        (r.join(), v.join())
    });
    let runc = match runc {
        Ok(Ok(f)) => f,
        Ok(Err(f)) => panic!(
            "{case}: runc (the reference) failed at `{}`: {}\n(the test's rewrite of the \
             config is wrong, or the host cannot run it)",
            f.step, f.detail
        ),
        Err(p) => std::panic::resume_unwind(p),
    };
    let vsrun = match vsrun {
        Ok(Ok(f)) => f,
        Ok(Err(f)) => panic!(
            "{case}: DIFFERENCE: vsrun failed at `{}` where runc succeeded:\n  {}",
            f.step, f.detail
        ),
        Err(p) => std::panic::resume_unwind(p),
    };
    compare(case, &runc, &vsrun);
}

fn compare(case: &str, runc: &Facts, vsrun: &Facts) {
    if std::env::var_os("DIFF_DUMP").is_some() {
        for (k, v) in runc {
            eprintln!("{case} runc  {k} = {}", short(v));
        }
        for (k, v) in vsrun {
            eprintln!("{case} vsrun {k} = {}", short(v));
        }
    }
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
        match allowed(case, k, a, b) {
            Some(al) => tolerated.push(format!("{line}\n    allowed: {}", al.why)),
            None => real.push(line),
        }
    }
    eprintln!(
        "differential {case}: {} facts, {} identical, {} allowed, {} differences",
        keys.len(),
        keys.len() - real.len() - tolerated.len(),
        tolerated.len(),
        real.len()
    );
    for t in &tolerated {
        eprintln!("{t}");
    }
    if !real.is_empty() {
        panic!(
            "{case}: {} difference(s) between runc and vsrun:\n{}",
            real.len(),
            real.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The tests: one per engine file

macro_rules! cases {
    ($($name:ident => $file:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_case($file);
            }
        )*
    };
}

cases! {
    containerd_1_config => "containerd-1-config.json",
    containerd_2_config => "containerd-2-config.json",
    containerd_3_config => "containerd-3-config.json",
    containerd_4_process => "containerd-4-process.json",
    containerd_5_process => "containerd-5-process.json",
    containerd_6_config => "containerd-6-config.json",
    containerd_7_config => "containerd-7-config.json",
    docker_1_config => "docker-1-config.json",
    docker_2_config => "docker-2-config.json",
    docker_3_process => "docker-3-process.json",
    docker_4_process => "docker-4-process.json",
    docker_5_config => "docker-5-config.json",
    docker_6_config => "docker-6-config.json",
    docker_7_config => "docker-7-config.json",
    podman_1_config => "podman-1-config.json",
    podman_2_process => "podman-2-process.json",
    podman_3_resources => "podman-3-resources.json",
}

#[test]
fn every_engine_file_has_a_case() {
    let mut on_disk: Vec<String> = fs::read_dir(configs_dir())
        .unwrap_or_else(|e| panic!("read {}: {e}", configs_dir().display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CASES.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "CASES must list every engine file");
}

#[test]
fn every_allow_list_entry_is_justified() {
    for a in ALLOWED {
        assert!(
            a.why.len() > 20,
            "allow-list entry {} needs a real justification",
            a.key
        );
        for c in a.cases {
            assert!(
                CASES.iter().any(|(n, _)| n == c),
                "allow-list entry {} names unknown case {c}",
                a.key
            );
        }
    }
}
