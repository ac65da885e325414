//! `linux.sysctl`: one key model (sysctl(8)'s, as runc reads it) for the check, the plan and
//! the write (paths.rs). A key is allowed only when the namespace that owns it is the
//! container's own.

use crate::context::namespaces::NsSet;
use crate::error::{config, Result};
use oci_spec::runtime::{Linux, LinuxNamespaceType, Spec};
use std::path::{Path, PathBuf};

/// sysctl(8) accepts `/` as the separator when it comes first (`net/ipv4/conf/eth0.100/rp_filter`,
/// where the dot belongs to the interface name); return the dotted form, in which a `/` stands
/// for a literal dot in a component (`net.ipv4.conf.eth0/100.rp_filter`). runc does the same.
pub fn sysctl_dotted(key: &str) -> String {
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'/' => key
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => key.to_string(),
    }
}

/// The file under /proc/sys for a sysctl key, or None when the key could name something outside
/// /proc/sys or nothing at all (empty components, `.`/`..`, whitespace, NUL).
pub fn sysctl_path(key: &str) -> Option<PathBuf> {
    if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c == '\0') {
        return None;
    }
    let mut p = PathBuf::new();
    for comp in sysctl_dotted(key).split('.') {
        let name = comp.replace('/', ".");
        if name.is_empty() || name == "." || name == ".." {
            return None;
        }
        p.push(name);
    }
    Some(p)
}

/// IPC sysctls (kernel/ipc): namespaced by the ipc namespace.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// /proc/sys is only partly namespaced: a key is allowed only when the namespace that owns it
/// is the container's own; anything else would change the host. Same rules as runc.
pub fn validate_sysctl(linux: &Linux, ns: &NsSet) -> Result<()> {
    let Some(map) = linux.sysctl() else {
        return Ok(());
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        let field = format!("linux.sysctl.{key}");
        if sysctl_path(key).is_none() {
            return Err(config(field, format!("{key:?} is not a valid sysctl name")));
        }
        sysctl_namespace_ok(&sysctl_dotted(key), ns).map_err(|m| config(field, m))?;
    }
    Ok(())
}

fn sysctl_namespace_ok(key: &str, ns: &NsSet) -> std::result::Result<(), String> {
    use LinuxNamespaceType::*;
    if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
        if ns.has(Ipc) {
            return Ok(());
        }
        return Err(format!("{key:?} not allowed in the host's ipc namespace"));
    }
    if key.starts_with("net.") {
        if ns.has(Network) && !ns.path_of(Network).is_some_and(is_host_netns) {
            return Ok(());
        }
        return Err(format!(
            "{key:?} not allowed in the host's network namespace"
        ));
    }
    if ns.has(Uts) {
        match key {
            "kernel.domainname" => return Ok(()),
            "kernel.hostname" => {
                // runc: the "hostname" field is the one way to set it.
                return Err(format!("{key:?} conflicts with the \"hostname\" field"));
            }
            _ => {}
        }
    }
    Err(format!(
        "{key:?} is not in a namespace of the container's own; it would change the host"
    ))
}

/// A netns path that is vsrun's own network namespace is the host's, as far as sysctls go.
fn is_host_netns(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata("/proc/self/ns/net"),
        std::fs::metadata(path),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        // Unreadable: linux.namespaces[].path reports it when the namespace is opened.
        _ => false,
    }
}

/// Each key with its file below /proc/sys, by the one model `validate_sysctl` checks (runc's:
/// a key whose first separator is '/' keeps its dots, as in `net/ipv4/conf/eth0.100/rp_filter`).
pub fn plan(spec: &Spec) -> Result<Vec<(String, PathBuf, String)>> {
    let map = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref());
    let mut out = Vec::new();
    for (k, v) in map.into_iter().flatten() {
        let file = sysctl_path(k).ok_or_else(|| {
            config(
                format!("linux.sysctl.{k}"),
                format!("{k:?} is not a valid sysctl name"),
            )
        })?;
        out.push((k.clone(), file, v.clone()));
    }
    out.sort();
    Ok(out)
}
