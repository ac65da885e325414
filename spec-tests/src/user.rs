//! The plain user of the rootless tests (`vsrun-rootless`, its subordinate id ranges).

use crate::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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
