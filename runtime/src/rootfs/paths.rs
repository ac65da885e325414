//! After the mounts: `linux.sysctl`, `linux.readonlyPaths`, `linux.maskedPaths`. All paths are
//! resolved confined to the root; missing ones are skipped (runc's rule).

use super::kmount;
use super::mounts::is_procfs;
use super::resolve;
use super::Plan;
use crate::error::{config, Result, StepExt};
use crate::syscall::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

const LOCKDOWN: u64 = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;

/// Write each sysctl through an fd opened beneath the container's procfs, never crossing a
/// mount or a symlink, and checked to be on procfs before the write: a mount over /proc/sys
/// from the config cannot redirect the write (CVE-2025-52881 class).
pub fn sysctl(plan: &Plan, root: BorrowedFd<'_>) -> Result<()> {
    let Some((first, _, _)) = plan.sysctl.first() else {
        return Ok(());
    };
    let proc = resolve::open_flags(root, Path::new("proc"), libc::O_PATH | libc::O_DIRECTORY)
        .step(|| format!("linux.sysctl.{first}: open /proc in the container"))?;
    let (_, mount_root) =
        crate::syscall::statx_mount(proc.as_raw_fd()).step(|| "statx /proc".into())?;
    if !mount_root || !is_procfs(proc.as_fd()).step(|| "statfs /proc".into())? {
        return Err(config(
            format!("linux.sysctl.{first}"),
            "the container has no procfs mounted on /proc to write it through",
        ));
    }
    for (key, file, value) in &plan.sysctl {
        let field = || format!("linux.sysctl.{key}");
        let rel = PathBuf::from("sys").join(file);
        let fd = crate::syscall::openat2(
            proc.as_raw_fd(),
            &rel,
            libc::O_WRONLY as u64,
            0,
            libc::RESOLVE_BENEATH
                | libc::RESOLVE_NO_SYMLINKS
                | libc::RESOLVE_NO_MAGICLINKS
                | libc::RESOLVE_NO_XDEV,
        )
        .step(|| format!("{}: open /proc/{}", field(), rel.display()))?;
        if !is_procfs(fd.as_fd()).step(|| format!("{}: statfs /proc/{}", field(), rel.display()))? {
            return Err(config(
                field(),
                format!(
                    "/proc/{} is not on procfs; refusing to write",
                    rel.display()
                ),
            ));
        }
        std::fs::File::from(fd)
            .write_all(value.as_bytes())
            .step(|| format!("{}: write {value:?} to /proc/{}", field(), rel.display()))?;
    }
    Ok(())
}

/// Open a listed path inside the root; None when it does not exist.
fn open_listed(root: BorrowedFd<'_>, p: &Path, field: &str) -> Result<Option<OwnedFd>> {
    match resolve::open(root, p) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => Ok(None),
        Err(e) => Err(e).step(|| format!("{field}: resolve /{} in the rootfs", p.display())),
    }
}

/// Bind each path onto itself read-only, nosuid, nodev, noexec (recursively: a submount under
/// a read-only path is read-only too).
pub fn readonly(plan: &Plan, root: BorrowedFd<'_>) -> Result<()> {
    for (i, p) in plan.readonly_paths.iter().enumerate() {
        let field = format!("linux.readonlyPaths[{i}]");
        let Some(fd) = open_listed(root, p, &field)? else {
            continue;
        };
        let step = || format!("{field}: bind /{} read-only", p.display());
        let tree = kmount::clone_tree(fd.as_fd(), true).step(step)?;
        // Only read-only, as runc: nosuid/nodev/noexec stay as the covered mount has them, so
        // a read-only /usr still runs its programs.
        kmount::set_attr(tree.as_fd(), MOUNT_ATTR_RDONLY, 0, true).step(step)?;
        kmount::attach(tree.as_fd(), fd.as_fd()).step(step)?;
    }
    Ok(())
}

/// A directory gets an empty read-only tmpfs; anything else gets the host's /dev/null, which
/// was opened and checked to be char 1:3 before anything was mounted (CVE-2025-31133 class:
/// the container's own /dev/null may be a symlink or a plain file).
pub fn masked(plan: &Plan, root: BorrowedFd<'_>, dev_null: Option<&OwnedFd>) -> Result<()> {
    for (i, p) in plan.masked_paths.iter().enumerate() {
        let field = format!("linux.maskedPaths[{i}]");
        let Some(fd) = open_listed(root, p, &field)? else {
            continue;
        };
        let st = nix::sys::stat::fstat(fd.as_raw_fd())
            .step(|| format!("{field}: stat /{}", p.display()))?;
        let mnt = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            kmount::new_fs("tmpfs", Some("tmpfs"), &["ro"], &[], LOCKDOWN)
                .map_err(|e| e.step(format!("{field}: mount an empty tmpfs on /{}", p.display())))?
        } else {
            let null = dev_null.ok_or_else(|| config(field.clone(), "no /dev/null was opened"))?;
            kmount::clone_tree(null.as_fd(), false).step(|| format!("{field}: clone /dev/null"))?
        };
        kmount::attach(mnt.as_fd(), fd.as_fd())
            .step(|| format!("{field}: mask /{}", p.display()))?;
    }
    Ok(())
}
