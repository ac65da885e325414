//! Harness for the spec tests: they drive the built `vsrun` binary the way engines do (as root,
//! on the real kernel) and look at the result twice: from inside (the `/probe` program in the
//! rootfs prints what the container process sees as JSON) and from the host (/proc, mountinfo,
//! the state dir).
//!
//! Typical test:
//! ```no_run
//! use spec_tests::*;
//! let rt = Runtime::new();
//! let mut b = Bundle::new();
//! b.config["process"]["cwd"] = "/tmp".into();
//! let seen = rt.probe(&mut b, &[]);          // runs `vsrun run`, parses the probe's JSON
//! assert_eq!(seen["cwd"], "/tmp");
//! ```
//!
//! Conventions:
//! - `Bundle::config` is the config.json as a `serde_json::Value`. `Runtime::{run, create,
//!   probe}` write it to disk first *when it changed since the last write* (so a test that
//!   writes a raw config.json by hand with `std::fs::write` and leaves `config` alone keeps its
//!   file). `Bundle::write()` writes it explicitly.
//! - The default config is `runc spec`'s with: terminal false, args ["/probe"], root writable,
//!   hostname "vsrun-test", no /sys/fs/cgroup mount and no linux.resources (cgroup tests add
//!   those themselves).
//! - Every vsrun invocation gets the Runtime's private `--root`, stdin from /dev/null and
//!   stdout/stderr captured through files (not pipes), so a container that inherits them
//!   (create, run -d) never blocks the harness. Each invocation has a timeout (env
//!   VSRUN_TEST_TIMEOUT, seconds, default 60) after which the vsrun process is killed and the
//!   test panics.
//! - Dropping a `Runtime` force-deletes every container left in its root; dropping a `Bundle`
//!   removes its directory unless something is still mounted under it (then it is kept and
//!   reported, never removed through a mount).

use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use serde_json;
pub use tempfile;

pub mod checks;
pub mod diff;
pub mod edit;
pub mod netns;
pub mod refusal;
pub mod scm;
pub use checks::*;
pub use refusal::*;

// ---------------------------------------------------------------------------------------------
// Locations

/// The workspace root (parent of spec-tests/).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("spec-tests has a parent directory")
        .to_path_buf()
}

/// CARGO_TARGET_DIR or <workspace>/target.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// The runtime under test: env VSRUN_BIN or <target>/debug/vsrun.
pub fn vsrun_bin() -> PathBuf {
    let p = match std::env::var_os("VSRUN_BIN") {
        Some(p) => PathBuf::from(p),
        None => target_dir().join("debug/vsrun"),
    };
    if !p.is_file() {
        panic!(
            "vsrun binary not found at {} (build it first: `cargo build -p vsrun`, or set VSRUN_BIN)",
            p.display()
        );
    }
    p
}

/// The static probe: env PROBE_BIN or <target>/x86_64-unknown-linux-gnu/release/probe, built
/// on demand when missing.
pub fn probe_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PROBE_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "PROBE_BIN={} does not exist", p.display());
        return p;
    }
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let p = target_dir().join("x86_64-unknown-linux-gnu/release/probe");
            if !p.is_file() {
                let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                    .current_dir(workspace_root())
                    .env("RUSTFLAGS", "-C target-feature=+crt-static")
                    .args([
                        "build",
                        "-p",
                        "probe",
                        "--release",
                        "--target",
                        "x86_64-unknown-linux-gnu",
                    ])
                    .status()
                    .expect("run cargo to build the probe");
                assert!(st.success(), "building the static probe failed");
            }
            assert!(p.is_file(), "probe not found at {}", p.display());
            p
        })
        .clone()
}

// ---------------------------------------------------------------------------------------------
// Base rootfs, shared by all test binaries

fn flock_file(path: &Path) -> fs::File {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open lock {}: {e}", path.display()));
    // SAFETY: flock on an fd we own; released when the File is closed.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {}", path.display());
    f
}

/// target/spec-rootfs-base: a busybox rootfs with the probe at /probe, built once by
/// hack/mkrootfs under a flock (temp dir + rename) and rebuilt when the probe changed.
pub fn base_rootfs() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let probe = probe_bin();
        let target = target_dir();
        fs::create_dir_all(&target).expect("create target dir");
        let base = target.join("spec-rootfs-base");
        let _lock = flock_file(&target.join("spec-rootfs-base.lock"));
        // Rebuilt when the probe or hack/mkrootfs changed since the last build.
        let wanted = fs::read(&probe).expect("read probe");
        let script = fs::read(workspace_root().join("hack/mkrootfs")).expect("read hack/mkrootfs");
        let stamp = target.join("spec-rootfs-base.mkrootfs");
        if fs::read(base.join("probe")).ok().as_ref() == Some(&wanted)
            && fs::read(&stamp).ok().as_ref() == Some(&script)
        {
            return base;
        }
        let tmp = target.join(format!("spec-rootfs-base.tmp.{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let st = Command::new(workspace_root().join("hack/mkrootfs"))
            .arg(&tmp)
            .arg("--probe")
            .arg(&probe)
            .status()
            .expect("run hack/mkrootfs");
        assert!(st.success(), "hack/mkrootfs failed");
        if base.exists() {
            let old = target.join(format!("spec-rootfs-base.old.{}", std::process::id()));
            fs::rename(&base, &old).expect("move old base rootfs away");
            let _ = fs::remove_dir_all(&old);
        }
        fs::rename(&tmp, &base).expect("rename base rootfs into place");
        fs::write(&stamp, &script).expect("write the base rootfs stamp");
        base
    })
}

// ---------------------------------------------------------------------------------------------
// Ids

/// A container id unique across test threads and processes: `<prefix>-<pid>-<n>`.
pub fn unique_id(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// cpu.shares → cgroup v2 cpu.weight as vsrun writes it: libcgroups' (and runc 1.3's, crun's)
/// mapping, which keeps the default 1024 at the default 100 (runc 1.1's linear one gave 39).
pub fn shares_to_weight(shares: u64) -> u64 {
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    (10f64.powf(exponent).ceil() as u64).clamp(1, 10000)
}

/// A static program built from C `source` with `cc -static ARGS`, once per source text (cached
/// by its hash under target/spec-helpers). The tests that need more than the probe use these.
pub fn static_program(name: &str, source: &str, cc_args: &[&str]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (source, cc_args).hash(&mut h);
    let dir = target_dir().join("spec-helpers");
    fs::create_dir_all(&dir).expect("create target/spec-helpers");
    let out = dir.join(format!("{name}-{:016x}", h.finish()));
    if out.is_file() {
        return out;
    }
    let tag = unique_id(name);
    let src = dir.join(format!("{tag}.c"));
    let tmp = dir.join(format!("{tag}.tmp"));
    fs::write(&src, source).expect("write helper source");
    let o = Command::new("cc")
        .args(["-static", "-O2", "-Wall"])
        .args(cc_args)
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .output()
        .expect("run cc (the spec tests need gcc and libc6-dev for static helpers)");
    assert!(
        o.status.success(),
        "cc {name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    fs::rename(&tmp, &out).expect("move helper into place");
    let _ = fs::remove_file(&src);
    out
}

/// Copy a program into the bundle's rootfs as /NAME, mode 0755.
pub fn install_program(b: &Bundle, name: &str, program: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let dst = b.rootfs().join(name);
    fs::copy(program, &dst).expect("copy program into the rootfs");
    fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).expect("chmod program");
}

// ---------------------------------------------------------------------------------------------
// The plain user of the rootless tests

/// A plain (non-root) user, for `Runtime::as_user`.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// The user's first /etc/subuid and /etc/subgid ranges (start, count).
    pub subuid: (u32, u32),
    pub subgid: (u32, u32),
}

/// The user the rootless tests run vsrun as (`vsrun-rootless`): made once with useradd when
/// missing, with a 65536-id range in /etc/subuid and /etc/subgid added when it has none (for
/// newuidmap/newgidmap). Idempotent, under a flock, so parallel test binaries agree.
pub fn rootless_user() -> &'static TestUser {
    static USER: OnceLock<TestUser> = OnceLock::new();
    USER.get_or_init(|| {
        const NAME: &str = "vsrun-rootless";
        let _lock = flock_file(&target_dir().join("rootless-user.lock"));
        let passwd = |name: &str| -> Option<Vec<String>> {
            let o = Command::new("getent")
                .args(["passwd", name])
                .output()
                .ok()?;
            let line = String::from_utf8_lossy(&o.stdout).trim().to_string();
            (o.status.success() && !line.is_empty())
                .then(|| line.split(':').map(String::from).collect())
        };
        if passwd(NAME).is_none() {
            let st = Command::new("useradd")
                .args(["--create-home", "--shell", "/bin/sh", NAME])
                .status()
                .expect("run useradd");
            assert!(st.success(), "useradd {NAME} failed");
        }
        let pw = passwd(NAME).unwrap_or_else(|| panic!("user {NAME} missing after useradd"));
        let subuid = sub_range("/etc/subuid", NAME);
        let subgid = sub_range("/etc/subgid", NAME);
        TestUser {
            name: NAME.to_string(),
            uid: pw[2].parse().expect("uid"),
            gid: pw[3].parse().expect("gid"),
            home: PathBuf::from(&pw[5]),
            subuid,
            subgid,
        }
    })
}

/// `name`'s first range in /etc/subuid (or subgid), appended above every other range when it
/// has none.
fn sub_range(file: &str, name: &str) -> (u32, u32) {
    let text = fs::read_to_string(file).unwrap_or_default();
    let mut top = 100_000u64;
    for l in text.lines() {
        let f: Vec<&str> = l.trim().split(':').collect();
        if f.len() != 3 {
            continue;
        }
        let (Ok(start), Ok(count)) = (f[1].parse::<u64>(), f[2].parse::<u64>()) else {
            continue;
        };
        if f[0] == name {
            return (start as u32, count as u32);
        }
        top = top.max(start + count);
    }
    let mut text = text;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("{name}:{top}:65536\n"));
    fs::write(file, text).unwrap_or_else(|e| panic!("write {file}: {e}"));
    (top as u32, 65536)
}

/// chown(2) of one path.
pub fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

// ---------------------------------------------------------------------------------------------
// Bundle

/// A bundle in a temp dir: rootfs (a copy of the base rootfs) and config.json.
pub struct Bundle {
    dir: Option<tempfile::TempDir>,
    /// The config.json to write. Edit freely; written before run/create when it changed.
    pub config: Value,
    written: Mutex<Option<String>>,
}

/// The config `runc spec` writes, adjusted for tests (see the module docs).
pub fn default_config() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["/probe"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                "ambient": caps
            },
            "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": "vsrun-test",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] }
        ],
        "linux": {
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

impl Default for Bundle {
    fn default() -> Self {
        Self::new()
    }
}

impl Bundle {
    /// A fresh bundle with a copy of the base rootfs and the default config (written).
    pub fn new() -> Self {
        let base = base_rootfs();
        let dir = tempfile::Builder::new()
            .prefix("vsrun-bundle-")
            .tempdir()
            .expect("create bundle temp dir");
        let st = Command::new("cp")
            .arg("-a")
            .arg(base)
            .arg(dir.path().join("rootfs"))
            .status()
            .expect("run cp -a");
        assert!(st.success(), "cp -a of the base rootfs failed");
        let b = Bundle {
            dir: Some(dir),
            config: default_config(),
            written: Mutex::new(None),
        };
        b.write();
        b
    }

    /// The bundle directory (absolute).
    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("bundle dir").path()
    }

    /// The bundle's path as a &str, for command lines.
    pub fn path_str(&self) -> &str {
        self.path().to_str().expect("utf-8 bundle path")
    }

    /// <bundle>/rootfs.
    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("config.json")
    }

    /// Write `config` to config.json.
    pub fn write(&self) {
        let text = serde_json::to_string_pretty(&self.config).expect("serialize config");
        fs::write(self.config_path(), &text).expect("write config.json");
        *self.written.lock().unwrap() = Some(text);
    }

    /// Write `config` if it changed since the last `write` (run/create/probe call this).
    pub fn write_if_changed(&self) {
        let text = serde_json::to_string_pretty(&self.config).expect("serialize config");
        if self.written.lock().unwrap().as_deref() != Some(text.as_str()) {
            self.write();
        }
    }

    /// Give the bundle (directory, config.json, rootfs) to a plain user, for `Runtime::as_user`.
    pub fn chown_to(&self, user: &TestUser) {
        let st = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", user.uid, user.gid))
            .arg(self.path())
            .status()
            .expect("run chown -R");
        assert!(st.success(), "chown -R {} failed", self.path_str());
    }

    /// process.args = args.
    pub fn set_args(&mut self, args: &[&str]) {
        self.config["process"]["args"] = json!(args);
    }

    /// Remove a namespace type from linux.namespaces.
    pub fn remove_namespace(&mut self, ty: &str) {
        if let Some(a) = self.config["linux"]["namespaces"].as_array_mut() {
            a.retain(|n| n["type"] != ty);
        }
    }

    /// Add (or replace) a namespace entry, optionally with a path to join.
    pub fn set_namespace(&mut self, ty: &str, path: Option<&str>) {
        self.remove_namespace(ty);
        let mut ns = json!({ "type": ty });
        if let Some(p) = path {
            ns["path"] = p.into();
        }
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("linux.namespaces")
            .push(ns);
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        let path = dir.path().to_path_buf();
        let left = mounts_under(&path);
        if !left.is_empty() {
            // Never remove through a mount: that would delete whatever is mounted there.
            let kept = dir.keep();
            eprintln!(
                "spec-tests: bundle {} kept: still mounted under it: {:?}",
                kept.display(),
                left
            );
        }
        // else the TempDir removes it
    }
}

// ---------------------------------------------------------------------------------------------
// Runtime

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
        }
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
        self.note_bundle_from_args(args);
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
        Output {
            status,
            stdout: fs::read(out_path).unwrap_or_default(),
            stderr: fs::read(err_path).unwrap_or_default(),
        }
    }

    fn note_bundle_from_args(&self, args: &[&str]) {
        let Some(sub) = args.iter().position(|a| *a == "create" || *a == "run") else {
            return;
        };
        let rest = &args[sub + 1..];
        let Some(id) = rest.last() else { return };
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
        }
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

// ---------------------------------------------------------------------------------------------
// Host view

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone)]
pub struct HostMount {
    pub id: u64,
    pub parent: u64,
    pub root: String,
    pub mount_point: String,
    pub options: Vec<String>,
    pub optional: Vec<String>,
    pub fs_type: String,
    pub source: String,
    pub super_options: Vec<String>,
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse a mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<HostMount> {
    let mut v = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(dash) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if dash < 6 || f.len() < dash + 4 {
            continue;
        }
        let split = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
        v.push(HostMount {
            id: f[0].parse().unwrap_or(0),
            parent: f[1].parse().unwrap_or(0),
            root: unescape_mountinfo(f[3]),
            mount_point: unescape_mountinfo(f[4]),
            options: split(f[5]),
            optional: f[6..dash].iter().map(|s| s.to_string()).collect(),
            fs_type: f[dash + 1].to_string(),
            source: unescape_mountinfo(f[dash + 2]),
            super_options: split(f[dash + 3]),
        });
    }
    v
}

/// The calling thread's mount table (the host's, unless the test thread entered a mount
/// namespace of its own: /proc/self would show the main thread's).
pub fn host_mounts() -> Vec<HostMount> {
    parse_mountinfo(&fs::read_to_string("/proc/thread-self/mountinfo").expect("read mountinfo"))
}

fn is_under(p: &str, dir: &Path) -> bool {
    let d = dir.to_string_lossy();
    let d = d.trim_end_matches('/');
    p == d || p.starts_with(&format!("{d}/"))
}

/// The calling thread's mount table as "mount_point fs_type" lines, sorted: compared before
/// and after an operation that must leave it alone.
pub fn host_table() -> Vec<String> {
    let mut v: Vec<String> = host_mounts()
        .into_iter()
        .map(|m| format!("{} {}", m.mount_point, m.fs_type))
        .collect();
    v.sort();
    v
}

/// Mount points in the host mount table at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    host_mounts()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|mp| is_under(mp, &dir))
        .collect()
}

/// Host pids whose root or cwd is at or under `dir`. A pivot_rooted process in another mount
/// namespace shows its root as "/" through readlink, so roots are also matched by device and
/// inode against `dir` and `dir/rootfs`.
pub fn processes_in(dir: &Path) -> Vec<i32> {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let ids: Vec<(u64, u64)> = [dir.clone(), dir.join("rootfs")]
        .iter()
        .filter_map(|p| fs::metadata(p).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let by_path = ["root", "cwd"].iter().any(|l| {
            fs::read_link(format!("/proc/{pid}/{l}"))
                .map(|t| is_under(&t.to_string_lossy(), &dir))
                .unwrap_or(false)
        });
        let by_inode = fs::metadata(format!("/proc/{pid}/root/"))
            .map(|m| ids.contains(&(m.dev(), m.ino())))
            .unwrap_or(false);
        if by_path || by_inode {
            pids.push(pid);
        }
    }
    pids
}

/// Is there a (non-zombie) process with this pid?
pub fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // state is the field after the ")" that closes comm
            let state = s
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// /proc/<pid>/cmdline as arguments.
pub fn proc_cmdline(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The namespace inode of a host process (`ns` is "net", "mnt", ...).
pub fn ns_inode(pid: &str, ns: &str) -> u64 {
    fs::metadata(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("stat /proc/{pid}/ns/{ns}: {e}"))
        .ino()
}

/// The uid owning a host process.
pub fn proc_uid(pid: i32) -> Option<u32> {
    fs::metadata(format!("/proc/{pid}")).ok().map(|m| m.uid())
}

/// Assert that container `id` left nothing behind: `state` fails, no state dir, no mount at or
/// under its bundle's rootfs in the host mount table, no live process whose root or cwd is in
/// the bundle (processes get up to 5 s to finish dying).
#[track_caller]
pub fn assert_nothing_left(rt: &Runtime, id: &str) {
    let dir = rt.state_dir(id);
    assert!(
        !dir.exists(),
        "container {id}: state dir {} still exists",
        dir.display()
    );
    let o = rt.cmd(&["state", id]);
    assert!(
        !o.status.success(),
        "container {id}: `state` still succeeds:\n{}",
        output_text(&o)
    );
    if let Some(bundle) = rt.bundle_of(id) {
        assert_bundle_clean(&bundle);
    }
}

/// No host mount under `bundle`/rootfs and no live process rooted or working in `bundle`.
#[track_caller]
pub fn assert_bundle_clean(bundle: &Path) {
    let left = mounts_under(&bundle.join("rootfs"));
    assert!(
        left.is_empty(),
        "mounts left under {}/rootfs on the host: {left:?}",
        bundle.display()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let live: Vec<i32> = processes_in(bundle)
            .into_iter()
            .filter(|p| pid_alive(*p))
            .collect();
        if live.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let desc: Vec<String> = live
                .iter()
                .map(|p| format!("{p} {:?}", proc_cmdline(*p)))
                .collect();
            panic!("processes still in bundle {}: {desc:?}", bundle.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Helper processes holding namespaces (for `path` joins)

/// A host process started with `unshare FLAGS... sleep` that holds new namespaces; its
/// /proc/<pid>/ns/* paths can be given to linux.namespaces[].path. Killed on drop.
pub struct NsHolder {
    child: std::process::Child,
    /// The pid of the process inside the namespaces (the `sleep`).
    pub pid: i32,
}

impl NsHolder {
    /// `unshare_flags` e.g. ["--net"], ["--ipc", "--uts"], ["--pid", "--fork", "--mount-proc"].
    pub fn new(unshare_flags: &[&str]) -> Self {
        // exec keeps the pid: sh -c 'echo $$; exec sleep' inside unshare (with --fork the
        // printed pid is the forked child's host pid as seen from the host via /proc).
        let mut c = Command::new("unshare");
        c.args(unshare_flags)
            .args(["sh", "-c", "exec sleep 100000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // SAFETY: setsid in the child only; async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = c.spawn().expect("spawn unshare (util-linux)");
        let upid = child.id() as i32;
        // With --fork the namespaces belong to unshare's child: find the sleep.
        let deadline = Instant::now() + Duration::from_secs(5);
        let pid = loop {
            let target = if unshare_flags.contains(&"--fork") || unshare_flags.contains(&"-f") {
                children_of(upid).into_iter().next()
            } else {
                Some(upid)
            };
            if let Some(p) = target {
                if proc_cmdline(p)
                    .first()
                    .map(|s| s.ends_with("sleep"))
                    .unwrap_or(false)
                {
                    break p;
                }
            }
            assert!(
                Instant::now() < deadline,
                "unshare {unshare_flags:?} did not start sleep"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        NsHolder { child, pid }
    }

    /// /proc/<pid>/ns/<ns>.
    pub fn ns_path(&self, ns: &str) -> String {
        format!("/proc/{}/ns/{ns}", self.pid)
    }

    pub fn ns_inode(&self, ns: &str) -> u64 {
        ns_inode(&self.pid.to_string(), ns)
    }
}

fn children_of(pid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let p = t.path().join("children");
            if let Ok(s) = fs::read_to_string(p) {
                v.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
            }
        }
    }
    v
}

impl Drop for NsHolder {
    fn drop(&mut self) {
        // SAFETY: kill(2) on processes this holder started.
        unsafe {
            if self.pid != self.child.id() as i32 {
                libc::kill(self.pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Make `src` (an fd of this process) appear as fd `dst`, without O_CLOEXEC, in the process
/// `c` spawns: how engines hand extra fds (containerd's fd 3, --preserve-fds) to the runtime.
pub fn inherit_fd(c: &mut Command, src: i32, dst: i32) {
    // SAFETY: dup2/fcntl only, both async-signal-safe, in the forked child before exec.
    unsafe {
        c.pre_exec(move || {
            if src == dst {
                let fl = libc::fcntl(dst, libc::F_GETFD);
                if fl < 0 || libc::fcntl(dst, libc::F_SETFD, fl & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(src, dst) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The value of a "Key:\tvalue" line of /proc/<pid>/status.
pub fn proc_status_field(pid: i32, key: &str) -> Option<String> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| Some(l.strip_prefix(key)?.strip_prefix(':')?.trim().to_string()))
}

/// Exit status → the code a shell would show (128+signal when killed).
pub fn shell_code(st: &ExitStatus) -> i32 {
    st.code()
        .or_else(|| st.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

// ---------------------------------------------------------------------------------------------
// Config edits and refusals shared by the escape tests

/// Append an entry to `mounts`.
pub fn add_mount(b: &mut Bundle, m: Value) {
    edit::add_mount(&mut b.config, m);
}

/// Drop the `mounts` entries whose destination is `dest`.
pub fn remove_mount(b: &mut Bundle, dest: &str) {
    edit::remove_mount(&mut b.config, dest);
}

/// The five capability sets of `process.capabilities`.
pub const CAP_SETS: [&str; 5] = [
    "bounding",
    "effective",
    "permitted",
    "inheritable",
    "ambient",
];

/// Add capabilities to the bounding, effective and permitted sets (what `docker --cap-add`
/// gives a root container).
pub fn add_caps(b: &mut Bundle, caps: &[&str]) {
    for set in ["bounding", "effective", "permitted"] {
        let list = b.config["process"]["capabilities"][set]
            .as_array_mut()
            .expect("capability set");
        for c in caps {
            list.push(json!(c));
        }
    }
}

/// A path quoted for `sh`.
pub fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// `sh -euc SCRIPT` in a private mount namespace: the deliberately unprotected path of an
/// escape test (a plain path-based mount from the host). What it mounts dies with it.
pub fn unprotected_sh(script: &str) -> Output {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-euc", script])
        .stdin(Stdio::null())
        .output()
        .expect("run unshare")
}

/// Exit 1 with exactly one non-empty stderr line, containing every one of `needles` (in
/// reference mode only the refusal is checked: runc words its errors differently).
#[track_caller]
pub fn assert_refused_naming(o: &Output, needles: &[&str], what: &str) {
    assert_refused_status(o, 1, needles, what)
}

/// `assert_refused_naming` with another exit status (255 for `exec`, see `refusal_status`).
#[track_caller]
pub fn assert_refused_status(o: &Output, status: i32, needles: &[&str], what: &str) {
    if reference_mode() {
        assert!(
            !o.status.success(),
            "{what}: not refused\n{}",
            output_text(o)
        );
        return;
    }
    let err = stderr_str(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        o.status.code() == Some(status)
            && lines.len() == 1
            && needles.iter().all(|n| lines[0].contains(n)),
        "{what}: expected exit {status} and one stderr line naming {needles:?}\n{}",
        output_text(o)
    );
}

/// The exit status of a command vsrun refuses: 255 for `exec` (as runc, so that a caller can
/// tell it from an exec'd process exiting 1), 1 for every other command. `args` starts with
/// the subcommand. Usage errors found by the argument parser are 1 for every command.
pub fn refusal_status(args: &[&str]) -> i32 {
    if args.first() == Some(&"exec") {
        255
    } else {
        1
    }
}

/// The container's cgroup directories that exist on the host (`/vsrun/<id>` below every
/// mounted hierarchy, the default when the config has no cgroupsPath).
pub fn cgroup_dirs_of(id: &str) -> Vec<PathBuf> {
    host_mounts()
        .into_iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .map(|m| Path::new(&m.mount_point).join("vsrun").join(id))
        .filter(|p| p.exists())
        .collect()
}
