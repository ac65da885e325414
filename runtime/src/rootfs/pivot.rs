//! Around the mounts: "/" propagation, the rootfs bound onto itself, a read-only root, and
//! the switch into the new root (pivot_root, or MS_MOVE + chroot with --no-pivot).

use super::kmount;
use super::mountinfo;
use super::resolve;
use super::Plan;
use crate::error::{Error, Result, StepExt};
use crate::syscall::MOUNT_ATTR_RDONLY;
use nix::mount::{MntFlags, MsFlags};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

fn propagate(target: &str, flags: libc::c_ulong) -> nix::Result<()> {
    nix::mount::mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::from_bits_retain(flags),
        None::<&str>,
    )
}

/// "/" recursively slave by default, so nothing mounted here propagates back to the host.
pub fn prepare_root(plan: &Plan) -> Result<()> {
    propagate("/", plan.root_propagation).step(|| {
        format!(
            "make / {} (linux.rootfsPropagation)",
            kmount::propagation_name(plan.root_propagation)
        )
    })
}

/// Bind the rootfs onto itself (recursively) so it is a mount pivot_root can use; returns the
/// fd of the new mount's root, through which everything else is resolved.
pub fn bind_rootfs(plan: &Plan) -> Result<OwnedFd> {
    let shown = plan.rootfs.display();
    let fd = resolve::open_host(&plan.rootfs, libc::O_PATH | libc::O_DIRECTORY)
        .step(|| format!("open the rootfs {shown}"))?;
    if !plan.shared {
        parent_private(fd.as_fd())?;
    }
    let tree = kmount::clone_tree(fd.as_fd(), true).step(|| format!("clone the rootfs {shown}"))?;
    kmount::attach(tree.as_fd(), fd.as_fd())
        .step(|| format!("bind the rootfs {shown} onto itself"))?;
    Ok(tree)
}

/// If the mount holding the rootfs is shared, make it private (runc's rootfsParentMountPrivate):
/// the rootfs bind would otherwise propagate to its peers (the host), and pivot_root refuses a
/// shared parent.
fn parent_private(rootfs: BorrowedFd<'_>) -> Result<()> {
    let (id, _) =
        crate::syscall::statx_mount(rootfs.as_raw_fd()).step(|| "statx the rootfs".into())?;
    let infos = mountinfo::read().step(|| "read /proc/self/mountinfo".into())?;
    let Some(parent) = infos.iter().find(|m| m.id == id) else {
        return Err(Error::Child(format!(
            "the rootfs's mount (id {id}) is not in /proc/self/mountinfo"
        )));
    };
    if !parent.is_shared() {
        return Ok(());
    }
    let mp = parent.mount_point.display();
    let step = || format!("make {mp} (the mount holding the rootfs) private");
    let fd = resolve::open_host(&parent.mount_point, libc::O_PATH).step(step)?;
    if crate::syscall::statx_mount(fd.as_raw_fd()).step(step)? != (id, true) {
        return Err(Error::Child(format!(
            "{}: {mp} is covered by another mount",
            step()
        )));
    }
    kmount::set_propagation(fd.as_fd(), libc::MS_PRIVATE).step(step)
}

/// root.readonly: the rootfs mount itself read-only (flags locked by a more privileged
/// namespace are kept, since only a flag is added).
pub fn readonly_root(root: BorrowedFd<'_>) -> Result<()> {
    kmount::set_attr(root, MOUNT_ATTR_RDONLY, 0, false)
        .step(|| "make the root read-only (root.readonly)".into())
}

/// Make `root` the process's "/" and cwd.
pub fn enter(plan: &Plan, root: OwnedFd) -> Result<()> {
    nix::unistd::fchdir(root.as_raw_fd()).step(|| "chdir into the rootfs".into())?;
    if plan.shared {
        // pivot_root would move the root of every process in this namespace, the caller's
        // included (runc also only chroots here).
        nix::unistd::chroot(".")
            .step(|| "chroot into the rootfs (no new mount namespace)".into())?;
        return nix::unistd::chdir("/").step(|| "chdir to / in the container".into());
    }
    if plan.no_pivot {
        crate::syscall::move_mount_to_path(root.as_raw_fd(), std::path::Path::new("/"))
            .step(|| "move the rootfs onto / (--no-pivot)".into())?;
        nix::unistd::chroot(".").step(|| "chroot into the rootfs (--no-pivot)".into())?;
    } else {
        if plan.root_propagation & libc::MS_SHARED != 0 {
            // pivot_root refuses a shared current root; the old root is detached right after.
            let _ = propagate("/", libc::MS_PRIVATE);
        }
        let old_root = resolve::open_host("/", libc::O_PATH | libc::O_DIRECTORY)
            .step(|| "open the old root".into())?;
        nix::unistd::pivot_root(".", ".").step(|| "pivot_root into the rootfs".into())?;
        // The old root is now stacked on "."; make its tree rslave so that detaching it cannot
        // propagate unmounts to the host's mounts. Through its fd: a path (".") would name
        // the new root, whose mounts' propagation must stay as the config set it.
        let slave = libc::MS_SLAVE | libc::MS_REC;
        if kmount::set_propagation(old_root.as_fd(), slave).is_err() {
            propagate(".", slave).step(|| "make the old root rslave".into())?;
        }
        drop(old_root);
        nix::mount::umount2(".", MntFlags::MNT_DETACH).step(|| "detach the old root".into())?;
    }
    nix::unistd::chdir("/").step(|| "chdir to / in the container".into())?;
    // As runc: an explicit rootfsPropagation is applied again to the new "/" (the mounts of
    // the container inherit it), except [r]private, which the rootfs bind already is.
    if plan.root_propagation_explicit && plan.root_propagation & libc::MS_PRIVATE == 0 {
        propagate("/", plan.root_propagation).step(|| {
            format!(
                "make the container's / {} (linux.rootfsPropagation)",
                kmount::propagation_name(plan.root_propagation)
            )
        })?;
    }
    Ok(())
}
