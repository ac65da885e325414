//! Rootless mode, decided as runc 1.1 decides it (`shouldUseRootlessCgroupManager`,
//! `shouldHonorXDGRuntimeDir`): `--rootless true|false|auto` (default auto); auto is rootless
//! when the effective uid is not 0, or when vsrun runs as uid 0 of a user namespace that does
//! not map the host's root (`unshare -r`, rootlesskit), read from /proc/self/uid_map.
//!
//! What changes in rootless mode: the default `--root` is `$XDG_RUNTIME_DIR/vsrun`, cgroup
//! directories the user may not create are skipped when the config asks for no limits (a field
//! that needs them is refused by name), and the device allowlist is not enforced through the
//! cgroup (the user could not write it; the container gets no device nodes of its own anyway).
//! The resolved mode (`GlobalOpts::rootless`) is what every cgroup step and the state root
//! follow; the user-namespace steps follow `unprivileged()`, as runc's do.

use crate::cli::GlobalOpts;
use crate::error::{config, Result};
use std::path::PathBuf;

/// The system-wide state root, runc's `/run/runc`.
pub const SYSTEM_ROOT: &str = "/run/vsrun";

/// `--rootless` as runc parses it: true, false or auto (default).
pub fn mode(flag: Option<&str>) -> Result<bool> {
    match flag.map(str::to_ascii_lowercase).as_deref() {
        None | Some("auto") | Some("") => Ok(auto()),
        Some("true") | Some("1") | Some("t") => Ok(true),
        Some("false") | Some("0") | Some("f") => Ok(false),
        Some(other) => Err(config(
            "--rootless",
            format!("invalid value {other:?}: want true, false or auto"),
        )),
    }
}

/// auto: rootless mode exactly when vsrun lacks the host's root (`unprivileged`).
pub fn auto() -> bool {
    unprivileged()
}

/// Not uid 0, or uid 0 of a user namespace without the host's root in it: vsrun cannot write
/// any id map it likes, nor act in a user namespace it joins before it is inside. This is a
/// fact of the process, not the mode, and the user-namespace steps (context/namespaces.rs)
/// ask it, as runc's ask its RootlessEUID and not `--rootless`: with `--rootless true` root
/// still writes a map of 65536 ids itself, and with `--rootless false` a plain user still
/// denies setgroups before its gid map.
pub fn unprivileged() -> bool {
    nix::unistd::geteuid().as_raw() != 0 || !maps_host_root(read_uid_map())
}

/// Read once per process: `auto` and the XDG rule both ask, on every command.
fn read_uid_map() -> &'static str {
    static MAP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MAP.get_or_init(|| std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default())
}

/// Whether a uid_map's host side contains uid 0 (the initial namespace's map is
/// `0 0 4294967295`; an unreadable map counts as the initial namespace).
pub fn maps_host_root(uid_map: &str) -> bool {
    if uid_map.trim().is_empty() {
        return true;
    }
    uid_map.lines().any(|l| {
        let mut it = l.split_whitespace().map(|x| x.parse::<u64>().ok());
        matches!((it.next(), it.next(), it.next()), (Some(Some(_)), Some(Some(host)), Some(Some(size))) if host == 0 && size > 0)
    })
}

/// Whether vsrun runs in a user namespace other than the initial one.
fn in_user_namespace() -> bool {
    let m = read_uid_map();
    !m.trim().is_empty() && m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"]
}

/// runc's shouldHonorXDGRuntimeDir: XDG_RUNTIME_DIR is set, and either the euid is not 0 or
/// vsrun is uid 0 of a user namespace and $USER is not "root".
fn xdg_runtime_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty())?;
    if nix::unistd::geteuid().as_raw() != 0 {
        return Some(PathBuf::from(dir));
    }
    if !in_user_namespace() {
        return None;
    }
    match std::env::var("USER") {
        Ok(u) if u == "root" => None,
        _ => Some(PathBuf::from(dir)),
    }
}

/// Fill in `g.rootless` and `g.root` (from `--root`, else `$XDG_RUNTIME_DIR/vsrun` when that is
/// honoured, else /run/vsrun). A rootless user who can use neither gets an error that says
/// what to do, before anything is created.
pub fn resolve(g: &mut GlobalOpts, needs_root: bool) -> Result<()> {
    g.rootless = mode(g.rootless_flag.as_deref())?;
    if let Some(r) = &g.root_flag {
        g.root = r.clone();
        return Ok(());
    }
    if let Some(xdg) = xdg_runtime_dir() {
        g.root = xdg.join("vsrun");
        return Ok(());
    }
    g.root = PathBuf::from(SYSTEM_ROOT);
    if needs_root && g.rootless && !usable(&g.root) {
        return Err(config(
            "--root",
            format!(
                "rootless: {SYSTEM_ROOT} is not writable by uid {} and XDG_RUNTIME_DIR is not set; set XDG_RUNTIME_DIR or pass --root DIR",
                nix::unistd::geteuid()
            ),
        ));
    }
    Ok(())
}

/// The root exists and is writable, or could be made in a writable parent.
fn usable(root: &std::path::Path) -> bool {
    use nix::unistd::{access, AccessFlags};
    let w = AccessFlags::W_OK | AccessFlags::X_OK;
    if root.exists() {
        return access(root, w).is_ok();
    }
    root.ancestors()
        .skip(1)
        .find(|p| p.exists())
        .is_some_and(|p| access(p, w).is_ok())
}

/// Whether a uid (gid) map maps the caller's id alone, one id: what an unprivileged user may
/// write itself, after denying setgroups for a gid map (user_namespaces(7)).
pub fn maps_only(map: &str, id: u32) -> bool {
    let lines: Vec<&str> = map.lines().filter(|l| !l.trim().is_empty()).collect();
    lines.len() == 1 && {
        let f: Vec<&str> = lines[0].split_whitespace().collect();
        f.len() == 3 && f[1] == id.to_string() && f[2] == "1"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_root_is_found_in_uid_maps() {
        assert!(maps_host_root("         0          0 4294967295\n"));
        assert!(maps_host_root(""));
        assert!(maps_host_root("0 1000 1\n1 0 1\n"));
        assert!(!maps_host_root("         0       1001          1\n"));
        assert!(!maps_host_root("0 1001 1\n1 100000 65536\n"));
    }

    #[test]
    fn rootless_flag_values_are_runcs() {
        assert!(mode(Some("true")).unwrap());
        assert!(!mode(Some("false")).unwrap());
        assert!(mode(Some("maybe")).is_err());
    }

    #[test]
    fn a_map_of_the_caller_alone_is_recognised() {
        assert!(maps_only("0 1001 1\n", 1001));
        assert!(!maps_only("0 1001 1\n1 100000 65536\n", 1001));
        assert!(!maps_only("0 1002 1\n", 1001));
        assert!(!maps_only("0 1001 2\n", 1001));
    }
}
