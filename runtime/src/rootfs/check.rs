//! The checks of `mounts`, `linux.devices`, `linux.maskedPaths`/`readonlyPaths` and
//! `linux.rootfsPropagation` that need no kernel, run by bundle.rs before `plan`: shapes the
//! spec forbids, named by their field.

use crate::error::{config, Result};
use oci_spec::runtime::{Linux, LinuxDeviceType, LinuxNamespaceType, Mount};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub fn has_nul(p: &Path) -> bool {
    p.as_os_str().as_bytes().contains(&0)
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// Destinations must be absolute and must not be the root itself.
///
/// Relative destinations: runtime-spec 1.1 allows them on Linux ("relative to /") and runc
/// accepts them with a deprecation warning, but crun rejects them, every current engine
/// writes absolute paths, and a relative one in a hand-written config is almost always a
/// mistake. vsrun rejects them; if an engine turns out to depend on them, treat them as
/// `"/" + destination` here instead.
pub fn validate_mounts(mounts: &[Mount]) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        let field = format!("mounts[{i}].destination");
        let d = m.destination();
        if has_nul(d) {
            return Err(config(field, "contains a NUL byte"));
        }
        if !d.is_absolute() {
            return Err(config(field, format!("{d:?} must be an absolute path")));
        }
        if super::resolve::clean(d).is_some_and(|c| c.as_os_str().is_empty()) {
            return Err(config(
                field,
                format!("{d:?} is the container's root: mount over root.path instead"),
            ));
        }
        let no_source = m
            .source()
            .as_deref()
            .is_none_or(|s| s.as_os_str().is_empty());
        if is_bind(m) && no_source {
            return Err(config(
                format!("mounts[{i}].source"),
                "a bind mount needs a source",
            ));
        }
        if m.source().as_deref().is_some_and(has_nul) {
            return Err(config(format!("mounts[{i}].source"), "contains a NUL byte"));
        }
    }
    Ok(())
}

/// maskedPaths and readonlyPaths are absolute paths inside the container; like runc, they need
/// a mount namespace of the container's own (else the host's /proc would be masked).
pub fn validate_restricted_paths(
    linux: &Linux,
    ns: &crate::context::namespaces::NsSet,
) -> Result<()> {
    for (name, list) in [
        ("maskedPaths", linux.masked_paths()),
        ("readonlyPaths", linux.readonly_paths()),
    ] {
        let list = list.as_deref().unwrap_or_default();
        if !list.is_empty() && !ns.has(LinuxNamespaceType::Mount) {
            return Err(config(
                format!("linux.{name}"),
                "unable to restrict paths without a private mount namespace",
            ));
        }
        for (i, p) in list.iter().enumerate() {
            if !p.starts_with('/') || p.contains('\0') {
                return Err(config(
                    format!("linux.{name}[{i}]"),
                    format!("{p:?} must be an absolute path"),
                ));
            }
        }
    }
    Ok(())
}

/// The kernel's dev_t: 12-bit major, 20-bit minor (mknod(2) rejects larger).
const MAX_MAJOR: i64 = (1 << 12) - 1;
const MAX_MINOR: i64 = (1 << 20) - 1;

/// config-linux.md "Devices": c, b, u with major/minor; p (a FIFO) with or without; an
/// absolute path other than "/"; each path once.
pub fn validate_devices(linux: &Linux) -> Result<()> {
    let mut seen: Vec<PathBuf> = Vec::new();
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        let f = |name: &str| format!("linux.devices[{i}].{name}");
        let p = d.path();
        let clean = super::resolve::clean(p).unwrap_or_default();
        if !p.is_absolute() || has_nul(p) {
            return Err(config(f("path"), format!("{p:?} must be an absolute path")));
        }
        // The spec puts a node anywhere in the rootfs (runc and crun make `/foo-dev` and its
        // parents); only the root itself cannot be one.
        if p.is_absolute() && clean.as_os_str().is_empty() {
            return Err(config(f("path"), format!("{p:?} is the rootfs itself")));
        }
        if let Some(j) = seen.iter().position(|s| *s == clean) {
            return Err(config(
                f("path"),
                format!("{p:?} repeats linux.devices[{j}]"),
            ));
        }
        seen.push(clean);
        validate_device_numbers(d.typ(), d.major(), d.minor(), &f)?;
        if d.file_mode().is_some_and(|m| m > 0o7777) {
            return Err(config(
                f("fileMode"),
                "only permission bits (at most 0o7777); the type comes from linux.devices[].type",
            ));
        }
    }
    Ok(())
}

fn validate_device_numbers(
    t: LinuxDeviceType,
    major: i64,
    minor: i64,
    f: &dyn Fn(&str) -> String,
) -> Result<()> {
    match t {
        LinuxDeviceType::C | LinuxDeviceType::B | LinuxDeviceType::U => {
            if !(0..=MAX_MAJOR).contains(&major) {
                return Err(config(f("major"), format!("{major} is outside 0..4095")));
            }
            if !(0..=MAX_MINOR).contains(&minor) {
                return Err(config(f("minor"), format!("{minor} is outside 0..1048575")));
            }
        }
        // Optional for a FIFO and meaningless to mknod(2): ignored, as runc and crun do.
        LinuxDeviceType::P => {}
        LinuxDeviceType::A => {
            return Err(config(
                f("type"),
                "\"a\" is only meaningful in linux.resources.devices; use c, b, u or p",
            ));
        }
    }
    Ok(())
}

pub const PROPAGATIONS: &[&str] = &[
    "",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
];

pub fn validate_propagation(linux: &Linux) -> Result<()> {
    let v = linux.rootfs_propagation().as_deref().unwrap_or_default();
    if !PROPAGATIONS.contains(&v) {
        return Err(config(
            "linux.rootfsPropagation",
            format!("{v:?} is not one of {}", PROPAGATIONS[1..].join(", ")),
        ));
    }
    Ok(())
}
