//! AppArmor profile and SELinux process label (`process.apparmorProfile`,
//! `process.selinuxLabel`, `linux.mountLabel`), behaving as runc does:
//! - a profile or process label on a host without that LSM is an error (runc fails too, when
//!   it tries to write the attribute); vsrun says so before anything is created;
//! - `linux.mountLabel` without SELinux is ignored (runc formats it away in that case);
//! - with the LSM enabled the label is written to the init's own `attr/.../exec` just before
//!   execve, through an fd checked to be procfs (CVE-2025-52881: a container mount over /proc
//!   must not redirect the write).

use crate::error::{config, state, Result, StepExt};
use std::io::Write;
use std::path::Path;

#[derive(Default, Debug, Clone)]
pub struct Plan {
    apparmor: Option<String>,
    selinux: Option<String>,
}

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

pub fn plan(process: &oci_spec::runtime::Process, prefix: &str) -> Result<Plan> {
    let mut p = Plan::default();
    if let Some(profile) = process
        .apparmor_profile()
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        if !apparmor_enabled() {
            return Err(config(
                format!("{prefix}apparmorProfile"),
                format!("{profile:?}: AppArmor is not enabled on this host"),
            ));
        }
        p.apparmor = Some(profile.to_string());
    }
    if let Some(label) = process.selinux_label().as_deref().filter(|s| !s.is_empty()) {
        if !selinux_enabled() {
            return Err(config(
                format!("{prefix}selinuxLabel"),
                format!("{label:?}: SELinux is not enabled on this host"),
            ));
        }
        p.selinux = Some(label.to_string());
    }
    Ok(p)
}

/// In the init, after pivot_root: the labels take effect at execve.
pub fn apply(p: &Plan) -> Result<()> {
    if let Some(profile) = &p.apparmor {
        let path = if Path::new("/proc/thread-self/attr/apparmor/exec").exists() {
            "/proc/thread-self/attr/apparmor/exec"
        } else {
            "/proc/thread-self/attr/exec"
        };
        write_attr(path, format!("exec {profile}").as_bytes())
            .step(|| format!("apply AppArmor profile {profile:?} (process.apparmorProfile)"))?;
    }
    if let Some(label) = &p.selinux {
        write_attr("/proc/thread-self/attr/exec", label.as_bytes())
            .step(|| format!("apply SELinux label {label:?} (process.selinuxLabel)"))?;
    }
    Ok(())
}

fn write_attr(path: &str, data: &[u8]) -> std::io::Result<()> {
    let fd = crate::syscall::openat2(
        libc::AT_FDCWD,
        Path::new(path),
        libc::O_WRONLY as u64,
        0,
        libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    )
    .or_else(|_| {
        // thread-self is itself a symlink the kernel resolves; fall back to it by name.
        crate::syscall::openat2(
            libc::AT_FDCWD,
            Path::new(path),
            libc::O_WRONLY as u64,
            0,
            libc::RESOLVE_NO_MAGICLINKS,
        )
    })?;
    let st = nix::sys::statfs::fstatfs(&fd).map_err(std::io::Error::from)?;
    if st.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return Err(std::io::Error::other(
            state(format!("{path} is not on procfs")).to_string(),
        ));
    }
    std::fs::File::from(fd).write_all(data)
}
