//! A test bundle (rootfs copy + config.json) and the config edits the escape tests share.

use crate::*;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

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
// Config edits shared by the escape tests

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
