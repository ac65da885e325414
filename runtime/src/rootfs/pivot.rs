//! Around the mounts: "/" propagation, the rootfs bound onto itself, a read-only root, and
//! the switch into the new root (pivot_root, or MS_MOVE + chroot with --no-pivot).

use super::kmount;
use super::mountinfo::{self, MountInfo};
use super::resolve;
use super::Plan;
use crate::error::{Error, Result, StepExt};
use crate::syscall::statmount;
use crate::syscall::{
    statx_mount, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY,
};
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
    let parent = holding_mount(rootfs)?;
    if !parent.shared {
        return Ok(());
    }
    let mp = parent.mount_point.display();
    let step = || format!("make {mp} (the mount holding the rootfs) private");
    let fd = resolve::open_host(&parent.mount_point, libc::O_PATH).step(step)?;
    if !parent.id.is_root_of(fd.as_fd()).step(step)? {
        return Err(Error::Child(format!(
            "{}: {mp} is covered by another mount",
            step()
        )));
    }
    kmount::set_propagation(fd.as_fd(), libc::MS_PRIVATE).step(step)
}

/// A mount's id: the 64-bit one statmount takes, or mountinfo's.
#[derive(Clone, Copy)]
enum MountId {
    Unique(u64),
    Old(u64),
}

impl MountId {
    /// Whether `fd` is the root of this mount.
    fn is_root_of(self, fd: BorrowedFd<'_>) -> std::io::Result<bool> {
        Ok(match self {
            MountId::Unique(id) => {
                let sx = statmount::statx_at(fd.as_raw_fd(), c"")?;
                sx.unique_id == Some(id) && sx.mount_root
            }
            MountId::Old(id) => statx_mount(fd.as_raw_fd())? == (id, true),
        })
    }
}

struct Holding {
    id: MountId,
    shared: bool,
    mount_point: std::path::PathBuf,
}

/// The mount the rootfs is on: statmount(2) of that one mount (Linux 6.8+), else the whole of
/// /proc/self/mountinfo (which takes the global mount lock for every chunk read).
fn holding_mount(rootfs: BorrowedFd<'_>) -> Result<Holding> {
    let sx = statmount::statx_at(rootfs.as_raw_fd(), c"").step(|| "statx the rootfs".into())?;
    if let Some(id) = sx.unique_id {
        // Any error (ENOSYS before 6.8, EPERM from a seccomp filter around vsrun, ...) leaves
        // the answer to mountinfo.
        if let Ok(m) = statmount::statmount_point(id) {
            return Ok(Holding {
                id: MountId::Unique(id),
                shared: m.propagation & libc::MS_SHARED != 0,
                mount_point: m.mount_point,
            });
        }
    }
    let (id, _) = statx_mount(rootfs.as_raw_fd()).step(|| "statx the rootfs".into())?;
    let infos = mountinfo::read().step(|| "read /proc/self/mountinfo".into())?;
    let Some(parent) = infos.iter().find(|m| m.id == id) else {
        return Err(Error::Child(format!(
            "the rootfs's mount (id {id}) is not in /proc/self/mountinfo"
        )));
    };
    Ok(Holding {
        id: MountId::Old(id),
        shared: parent.is_shared(),
        mount_point: parent.mount_point.clone(),
    })
}

/// root.readonly: the rootfs mount itself read-only (flags locked by a more privileged
/// namespace are kept, since only a flag is added).
pub fn readonly_root(root: BorrowedFd<'_>) -> Result<()> {
    kmount::set_attr(root, MOUNT_ATTR_RDONLY, 0, false)
        .step(|| "make the root read-only (root.readonly)".into())
}

/// Make `root` the process's "/" and cwd.
pub fn enter(plan: &Plan, root: OwnedFd) -> Result<()> {
    if plan.no_pivot {
        hide_caller_pseudo_fs(root.as_fd())?;
    }
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

/// --no-pivot: MS_MOVE + chroot keep the caller's mounts in the container's mount namespace,
/// below the rootfs. A fully visible proc or sysfs among them lets the container mount a fresh,
/// unmasked one in a user namespace of its own (fs/namespace.c mount_too_revealing looks for
/// one anywhere in the namespace, reachable or not). So, in this new namespace and before the
/// move, every proc and sysfs not under the rootfs is detached, or covered with an empty
/// read-only tmpfs where the kernel refuses (locked by a more privileged namespace), as runc's
/// msMoveRoot does.
fn hide_caller_pseudo_fs(root: BorrowedFd<'_>) -> Result<()> {
    let step = || "find the caller's proc and sysfs mounts (--no-pivot)".to_string();
    let (root_id, _) = statx_mount(root.as_raw_fd()).step(step)?;
    let infos = mountinfo::read().step(step)?;
    let Some(rootfs) = infos.iter().find(|m| m.id == root_id) else {
        return Err(Error::Child(format!(
            "{}: the rootfs's mount (id {root_id}) is not in /proc/self/mountinfo",
            step()
        )));
    };
    let mut pseudo: Vec<&MountInfo> = infos
        .iter()
        .filter(|m| matches!(m.fstype.as_str(), "proc" | "sysfs"))
        .filter(|m| !m.mount_point.starts_with(&rootfs.mount_point))
        .collect();
    // Parents first: detaching one takes its submounts along.
    pseudo.sort_by_key(|m| m.mount_point.components().count());
    for m in pseudo {
        hide_mount(&infos, m)?;
    }
    Ok(())
}

/// Detach one of the caller's proc/sysfs mounts (through its fd), or cover it.
fn hide_mount(infos: &[MountInfo], m: &MountInfo) -> Result<()> {
    let step = || {
        format!(
            "hide the caller's {} on {} (--no-pivot)",
            m.fstype,
            m.mount_point.display()
        )
    };
    let fd = match resolve::open_host(&m.mount_point, libc::O_PATH | libc::O_DIRECTORY) {
        // Gone with a parent detached before it.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        other => other.step(step)?,
    };
    if statx_mount(fd.as_raw_fd()).step(step)? != (m.id, true) {
        // The path now leads elsewhere: the mount went with a detached parent.
        return Ok(());
    }
    stop_propagation(infos, m, fd.as_fd()).step(step)?;
    match detach(fd.as_fd()) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EPERM)) => {
            cover(fd.as_fd()).step(step)
        }
        Err(e) => Err(e).step(step),
    }
}

/// Nothing done to `m` may reach the caller's namespace: its own tree stops sending events
/// (rslave), and so does its parent if shared, since an unmount propagates through the
/// parent's peers (fs/pnode.c propagate_umount). Only "stop sending": the container's own
/// mounts, under the rootfs, keep the propagation the config gave them.
fn stop_propagation(infos: &[MountInfo], m: &MountInfo, fd: BorrowedFd<'_>) -> std::io::Result<()> {
    kmount::set_propagation(fd, libc::MS_SLAVE | libc::MS_REC)?;
    let Some(parent) = infos.iter().find(|p| p.id == m.parent && p.is_shared()) else {
        return Ok(());
    };
    let pfd = resolve::open_host(&parent.mount_point, libc::O_PATH | libc::O_DIRECTORY)?;
    if statx_mount(pfd.as_raw_fd())? != (parent.id, true) {
        // Covered: its propagation cannot be changed through a path; do not unmount below it.
        return Err(std::io::Error::from_raw_os_error(libc::EBUSY));
    }
    kmount::set_propagation(pfd.as_fd(), libc::MS_SLAVE)
}

/// umount2(MNT_DETACH) of the mount whose root `fd` is, named as "." from it: no path string
/// is looked up again.
fn detach(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    nix::unistd::fchdir(fd.as_raw_fd())?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH)?;
    Ok(())
}

/// An empty read-only tmpfs on top of `fd`: a proc or sysfs with a locked mount over its
/// root is no longer "fully visible" to the kernel in a namespace the container creates.
fn cover(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    let flags = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    let tmpfs = kmount::new_fs("tmpfs", Some("tmpfs"), &[], &[], flags).map_err(|e| e.err)?;
    kmount::attach(tmpfs.as_fd(), fd)
}
