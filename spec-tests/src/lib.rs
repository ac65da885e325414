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

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

pub use serde_json;
pub use tempfile;

mod bundle;
pub mod checks;
pub mod diff;
pub mod edit;
mod host;
pub mod leftovers;
pub mod netns;
pub mod refusal;
mod runtime;
pub mod scm;
mod user;
pub use bundle::*;
pub use checks::*;
pub use host::*;
pub use leftovers::{project_of, quota_of};
pub use refusal::*;
pub use runtime::*;
pub use user::*;

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
