//! One vsrun "installation" (its own --root) and the invocation helpers: run, create,
//! probe, exit-status and stderr assertions, timeouts, force-delete on drop.

use crate::*;
use serde_json::Value;
use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One vsrun "installation": its own temp `--root`.
pub struct Runtime {
    /// The `--root` temp dir; for `as_user`, the user's XDG_RUNTIME_DIR, with the root
    /// `vsrun` below it (where vsrun's rootless default puts it).
    root: Option<tempfile::TempDir>,
    /// `as_user`: every vsrun invocation runs as this plain user.
    user: Option<TestUser>,
    /// The `--root` path.
    root_path: PathBuf,
    io: tempfile::TempDir,
    bundles: Mutex<HashMap<String, PathBuf>>,
    seq: AtomicU64,
    /// Global flags put before every subcommand, as engines do (`--systemd-cgroup`).
    global: Vec<String>,
    /// Each container's cgroup and disk quota, for `assert_nothing_left`.
    pub watch: crate::leftovers::Watch,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

fn timeout() -> Duration {
    let secs = std::env::var("VSRUN_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// The container output of a stopped `run`: status, stdout, stderr.
pub fn output_text(o: &Output) -> String {
    format!(
        "status: {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Panic with the invocation's output unless it exited 0.
#[track_caller]
pub fn assert_success(o: &Output, what: &str) {
    assert!(o.status.success(), "{what} failed:\n{}", output_text(o));
}

/// SPEC_TESTS_REFERENCE=1 (with VSRUN_BIN=runc or crun) checks the tests themselves against a
/// reference runtime: only vsrun-specific message formats are then not asserted.
pub fn reference_mode() -> bool {
    std::env::var_os("SPEC_TESTS_REFERENCE").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Assert runc's error convention: exit status 1 and a `vsrun: ...` line on stderr.
/// Returns stderr for further checks.
#[track_caller]
pub fn assert_fails(o: &Output, what: &str) -> String {
    assert_fails_status(o, 1, what)
}

/// `assert_fails` with another exit status (255 for `exec`, see `refusal_status`).
#[track_caller]
pub fn assert_fails_status(o: &Output, status: i32, what: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(status),
        "{what}: expected exit {status}\n{}",
        output_text(o)
    );
    assert!(
        reference_mode() || err.lines().any(|l| l.starts_with("vsrun: ")),
        "{what}: expected a `vsrun: <field or step>: <message>` line on stderr\n{}",
        output_text(o)
    );
    err
}

pub fn stdout_str(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr_str(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

impl Runtime {
    pub fn new() -> Self {
        // SAFETY: geteuid has no failure mode.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "the spec tests must run as root"
        );
        let root = tempfile::Builder::new()
            .prefix("vsrun-root-")
            .tempdir()
            .expect("temp root");
        let io = tempfile::Builder::new()
            .prefix("vsrun-io-")
            .tempdir()
            .expect("temp io dir");
        Runtime {
            root_path: root.path().to_path_buf(),
            root: Some(root),
            user: None,
            io,
            bundles: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
            global: Vec::new(),
            watch: Default::default(),
        }
    }

    /// This Runtime with `flags` (global flags: `--rootless true`, ...) on every invocation.
    pub fn with_global(mut self, flags: &[&str]) -> Self {
        self.global.extend(flags.iter().map(|f| f.to_string()));
        self
    }

    /// A Runtime whose every vsrun invocation carries `--systemd-cgroup`, as containerd's
    /// shim with `SystemdCgroup = true` and podman with `cgroup_manager = "systemd"` call it.
    pub fn systemd_cgroup() -> Self {
        let mut rt = Runtime::new();
        rt.global.push("--systemd-cgroup".into());
        rt
    }

    /// A Runtime whose vsrun invocations run as the plain user `user` (rootless mode): its
    /// XDG_RUNTIME_DIR is a temp dir owned by the user, `--root` is `$XDG_RUNTIME_DIR/vsrun`,
    /// HOME and USER are the user's. Bundles it runs must be the user's (`Bundle::chown_to`).
    pub fn as_user(user: &TestUser) -> Self {
        let mut rt = Runtime::new();
        chown(rt.root.as_ref().expect("root").path(), user.uid, user.gid);
        rt.user = Some(user.clone());
        rt.root_path = rt.root_path.join("vsrun");
        rt
    }

    /// `as_user`'s XDG_RUNTIME_DIR.
    pub fn xdg_runtime_dir(&self) -> Option<&Path> {
        self.user.as_ref()?;
        self.root.as_ref().map(|r| r.path())
    }

    /// Make `c` run as this Runtime's user, if it has one (uid, gid, no supplementary groups,
    /// HOME, USER, LOGNAME, XDG_RUNTIME_DIR).
    pub fn as_runtime_user(&self, c: &mut Command) {
        if let (Some(u), Some(xdg)) = (&self.user, self.xdg_runtime_dir()) {
            c.uid(u.uid)
                .gid(u.gid)
                .env("HOME", &u.home)
                .env("USER", &u.name)
                .env("LOGNAME", &u.name)
                .env("XDG_RUNTIME_DIR", xdg);
        }
    }

    /// The `--root` directory.
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    pub fn root_str(&self) -> &str {
        self.root().to_str().expect("utf-8 root")
    }

    /// The state dir of a container: <root>/<id>.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root().join(id)
    }

    /// Remember which bundle a container id uses (for cleanup and assert_nothing_left).
    pub fn remember_bundle(&self, id: &str, bundle: &Path) {
        self.bundles
            .lock()
            .unwrap()
            .insert(id.to_string(), bundle.to_path_buf());
    }

    pub fn bundle_of(&self, id: &str) -> Option<PathBuf> {
        self.bundles.lock().unwrap().get(id).cloned()
    }

    /// `vsrun --root <root> ARGS...`; see `cmd_with`.
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.cmd_with(args, |_| {})
    }

    /// `vsrun --root <root> ARGS...` with stdin /dev/null, stdout/stderr captured via files, a
    /// timeout; `f` may adjust the Command (stdin, env, pre_exec, ...) before it is spawned.
    pub fn cmd_with(&self, args: &[&str], f: impl FnOnce(&mut Command)) -> Output {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let out_path = self.io.path().join(format!("{n}.out"));
        let err_path = self.io.path().join(format!("{n}.err"));
        self.cmd_to_files(args, &out_path, &err_path, f)
    }

    fn cmd_to_files(
        &self,
        args: &[&str],
        out_path: &Path,
        err_path: &Path,
        f: impl FnOnce(&mut Command),
    ) -> Output {
        let created = self.note_bundle_from_args(args);
        let out = fs::File::create(out_path).expect("create stdout file");
        let err = fs::File::create(err_path).expect("create stderr file");
        let mut c = Command::new(vsrun_bin());
        c.arg("--root")
            .arg(self.root())
            .args(&self.global)
            .args(args);
        c.stdin(Stdio::null()).stdout(out).stderr(err);
        self.as_runtime_user(&mut c);
        f(&mut c);
        let status = wait_timeout(&mut c, &format!("vsrun {}", args.join(" ")), err_path);
        if let (Some(id), true) = (created, status.success()) {
            self.watch.after_create(&id, &self.state_dir(&id));
        }
        Output {
            status,
            stdout: fs::read(out_path).unwrap_or_default(),
            stderr: fs::read(err_path).unwrap_or_default(),
        }
    }

    /// A create or run: remember its bundle and watch what it makes; its id.
    fn note_bundle_from_args(&self, args: &[&str]) -> Option<String> {
        let sub = args.iter().position(|a| *a == "create" || *a == "run")?;
        let rest = &args[sub + 1..];
        let id = rest.last()?;
        let bundle = rest
            .windows(2)
            .find(|w| w[0] == "--bundle" || w[0] == "-b")
            .map(|w| PathBuf::from(w[1]))
            .or_else(|| {
                rest.iter()
                    .find_map(|a| a.strip_prefix("--bundle=").map(PathBuf::from))
            });
        if let Some(b) = bundle {
            self.remember_bundle(id, &b);
            self.watch.before_create(id, &b);
        }
        Some(id.to_string())
    }

    /// `vsrun run --bundle B ID` in the foreground; returns when the container exited.
    pub fn run(&self, bundle: &Bundle, id: &str) -> Output {
        bundle.write_if_changed();
        self.cmd(&["run", "--bundle", bundle.path_str(), id])
    }

    /// `vsrun create --bundle B ID`. Its stdout/stderr files stay open in the container, so
    /// what the container prints after `start` can be read with `container_output(id)`.
    pub fn create(&self, bundle: &Bundle, id: &str) -> Output {
        self.create_with(bundle, id, &[])
    }

    /// `vsrun create --bundle B EXTRA... ID`.
    pub fn create_with(&self, bundle: &Bundle, id: &str, extra: &[&str]) -> Output {
        self.create_full(bundle, id, extra, |_| {})
    }

    /// `vsrun create --bundle B EXTRA... ID`, `f` adjusting the Command (stdin, fds, env).
    pub fn create_full(
        &self,
        bundle: &Bundle,
        id: &str,
        extra: &[&str],
        f: impl FnOnce(&mut Command),
    ) -> Output {
        bundle.write_if_changed();
        let mut args = vec!["create", "--bundle", bundle.path_str()];
        args.extend_from_slice(extra);
        args.push(id);
        let (o, e) = self.io_files(id);
        self.cmd_to_files(&args, &o, &e, f)
    }

    /// `vsrun create --bundle B ID` that must exit within `within` (a hang is the failure
    /// being tested): past it vsrun is killed and the test panics.
    pub fn create_within(&self, bundle: &Bundle, id: &str, within: Duration) -> Output {
        bundle.write_if_changed();
        let args = ["create", "--bundle", bundle.path_str(), id];
        self.note_bundle_from_args(&args);
        let (out_path, err_path) = self.io_files(id);
        let mut c = Command::new(vsrun_bin());
        c.arg("--root")
            .arg(self.root())
            .args(&self.global)
            .args(args);
        self.as_runtime_user(&mut c);
        c.stdin(Stdio::null())
            .stdout(fs::File::create(&out_path).expect("create stdout file"))
            .stderr(fs::File::create(&err_path).expect("create stderr file"));
        let status = wait_within(
            &mut c,
            &format!("vsrun {}", args.join(" ")),
            &err_path,
            within,
        );
        Output {
            status,
            stdout: fs::read(&out_path).unwrap_or_default(),
            stderr: fs::read(&err_path).unwrap_or_default(),
        }
    }

    /// `vsrun run -d --bundle B ID` (detached; the container keeps running).
    pub fn run_detached(&self, bundle: &Bundle, id: &str) -> Output {
        bundle.write_if_changed();
        let (o, e) = self.io_files(id);
        self.cmd_to_files(
            &["run", "-d", "--bundle", bundle.path_str(), id],
            &o,
            &e,
            |_| {},
        )
    }

    fn io_files(&self, id: &str) -> (PathBuf, PathBuf) {
        (
            self.io.path().join(format!("{id}.ctr.out")),
            self.io.path().join(format!("{id}.ctr.err")),
        )
    }

    /// Everything written so far to the stdout/stderr that `create` (or `run -d`) of `id`
    /// handed to the container.
    pub fn container_output(&self, id: &str) -> (String, String) {
        let (o, e) = self.io_files(id);
        (
            String::from_utf8_lossy(&fs::read(o).unwrap_or_default()).into_owned(),
            String::from_utf8_lossy(&fs::read(e).unwrap_or_default()).into_owned(),
        )
    }

    /// `vsrun start ID`, asserted to succeed.
    #[track_caller]
    pub fn start(&self, id: &str) {
        let o = self.cmd(&["start", id]);
        assert_success(&o, &format!("vsrun start {id}"));
    }

    /// `vsrun state ID`, asserted to succeed, parsed.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let o = self.cmd(&["state", id]);
        assert_success(&o, &format!("vsrun state {id}"));
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("state {id}: bad JSON ({e}):\n{}", output_text(&o)))
    }

    /// The state's status field, or None when `state` fails.
    pub fn status(&self, id: &str) -> Option<String> {
        let o = self.cmd(&["state", id]);
        if !o.status.success() {
            return None;
        }
        let v: Value = serde_json::from_slice(&o.stdout).ok()?;
        v["status"].as_str().map(String::from)
    }

    /// Poll `state` until its status is `want` (panics after the timeout).
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        let mut last = None;
        while Instant::now() < deadline {
            last = self.status(id);
            if last.as_deref() == Some(want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("container {id}: status {last:?}, expected {want:?} within {within:?}");
    }

    /// `vsrun delete --force ID` (result not asserted).
    pub fn delete_force(&self, id: &str) -> Output {
        self.cmd(&["delete", "--force", id])
    }

    /// Ids known to this runtime: `list -q` plus the entries of the root dir (so cleanup works
    /// even when `list` is broken).
    pub fn known_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        let o = self.cmd(&["list", "-q"]);
        if o.status.success() {
            ids.extend(
                stdout_str(&o)
                    .lines()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty()),
            );
        }
        if let Ok(rd) = fs::read_dir(self.root()) {
            for e in rd.flatten() {
                if e.path().is_dir() {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if !ids.contains(&n) {
                        ids.push(n);
                    }
                }
            }
        }
        ids
    }

    /// Run the probe with ARGS (process.args = ["/probe", ARGS...]) via `vsrun run`, assert exit
    /// 0 and parse its stdout: one JSON line. Use `probe_lines` for chained actions.
    #[track_caller]
    pub fn probe(&self, bundle: &mut Bundle, args: &[&str]) -> Value {
        let mut lines = self.probe_lines(bundle, args);
        assert_eq!(
            lines.len(),
            1,
            "probe printed {} JSON lines, expected 1: {lines:?}",
            lines.len()
        );
        lines.remove(0)
    }

    /// Like `probe`, returning every JSON line the probe printed.
    #[track_caller]
    pub fn probe_lines(&self, bundle: &mut Bundle, args: &[&str]) -> Vec<Value> {
        let mut full = vec!["/probe"];
        full.extend_from_slice(args);
        bundle.set_args(&full);
        let id = unique_id("probe");
        let o = self.run(bundle, &id);
        assert_eq!(
            o.status.code(),
            Some(0),
            "vsrun run of /probe {args:?} failed:\n{}",
            output_text(&o)
        );
        parse_json_lines(&o.stdout).unwrap_or_else(|e| {
            panic!("probe output is not JSON lines ({e}):\n{}", output_text(&o))
        })
    }
}

/// A container left running by `Runtime::probe_detached`: its report and its host pid.
pub struct Detached {
    pub id: String,
    /// The host pid of the container's init (state.pid).
    pub pid: i32,
    /// What the probe saw (its report, printed before it went to sleep).
    pub seen: Value,
}

impl Runtime {
    /// `vsrun run -d` of `/probe report -- sleep 1000`: returns once the report is printed,
    /// with the container still running, so a test can compare the inside view with the host's
    /// (/proc/<pid>/...). Clean up with `delete_force` + `assert_nothing_left`.
    #[track_caller]
    pub fn probe_detached(&self, bundle: &mut Bundle) -> Detached {
        bundle.set_args(&["/probe", "report", "--", "sleep", "1000"]);
        let id = unique_id("detached");
        let o = self.run_detached(bundle, &id);
        assert_success(&o, "run -d of /probe report -- sleep 1000");
        let deadline = Instant::now() + timeout();
        let seen = loop {
            let (out, err) = self.container_output(&id);
            if let Some(line) = out.lines().next() {
                if out.contains('\n') {
                    break serde_json::from_str::<Value>(line)
                        .unwrap_or_else(|e| panic!("probe report is not JSON ({e}): {line:?}"));
                }
            }
            assert!(
                Instant::now() < deadline,
                "no probe report from {id}; stderr: {err}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let st = self.state(&id);
        let pid = st["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("state.pid: {st}")) as i32;
        Detached { id, pid, seen }
    }
}

/// Parse newline-separated JSON values.
/// The container init's pid, from `state`.
#[track_caller]
pub fn pid_of(rt: &Runtime, id: &str) -> i32 {
    let st = rt.state(id);
    st["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("state.pid is not a number: {st}")) as i32
}

/// `vsrun exec FLAGS... ID /probe ARGS...`, asserted to exit 0, parsed as one JSON line.
#[track_caller]
pub fn exec_probe(rt: &Runtime, id: &str, flags: &[&str], args: &[&str]) -> Value {
    let (seen, o) = exec_probe_with(rt, id, flags, args, |_| {});
    assert_success(&o, &format!("vsrun exec {id} /probe {}", args.join(" ")));
    seen
}

/// `exec_probe` with the Command adjusted by `f` (a namespace to enter, ...), its exit status
/// not asserted: the probe's one JSON line and the whole output.
#[track_caller]
pub fn exec_probe_with(
    rt: &Runtime,
    id: &str,
    flags: &[&str],
    args: &[&str],
    f: impl FnOnce(&mut Command),
) -> (Value, Output) {
    let mut v = vec!["exec"];
    v.extend_from_slice(flags);
    v.extend_from_slice(&[id, "/probe"]);
    v.extend_from_slice(args);
    let o = rt.cmd_with(&v, f);
    let mut lines = parse_json_lines(&o.stdout).unwrap_or_default();
    assert!(
        lines.len() == 1,
        "vsrun {}: expected one JSON line:\n{}",
        v.join(" "),
        output_text(&o)
    );
    (lines.remove(0), o)
}

pub fn parse_json_lines(bytes: &[u8]) -> Result<Vec<Value>, serde_json::Error> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect()
}

fn wait_timeout(c: &mut Command, what: &str, err_path: &Path) -> ExitStatus {
    wait_within(c, what, err_path, timeout())
}

fn wait_within(c: &mut Command, what: &str, err_path: &Path, within: Duration) -> ExitStatus {
    let mut child = c.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let deadline = Instant::now() + within;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st,
            Ok(None) => {}
            Err(e) => panic!("wait {what}: {e}"),
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            let _ = fs::File::open(err_path).and_then(|mut f| f.read_to_string(&mut err));
            panic!("{what}: no exit within {within:?} (killed it); stderr so far:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.known_ids() {
            let _ = self.delete_force(&id);
        }
        // Whatever a broken runtime left running inside our bundles: kill it (these processes
        // exist only because a test started them).
        let bundles: Vec<PathBuf> = self.bundles.lock().unwrap().values().cloned().collect();
        for b in &bundles {
            for pid in processes_in(b) {
                // SAFETY: kill(2) on a pid whose root/cwd is inside our own bundle.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if let Some(root) = self.root.take() {
            let left = mounts_under(root.path());
            if !left.is_empty() {
                let kept = root.keep();
                eprintln!(
                    "spec-tests: root {} kept: mounts under it: {left:?}",
                    kept.display()
                );
            }
        }
    }
}
