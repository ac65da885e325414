//! Give a tree a project id, or take it back: FS_IOC_FSSETXATTR on every directory and regular
//! file, with PROJINHERIT on directories so what the container creates later inherits the id.
//!
//! The walk runs as host root over a tree a container may have shaped (at `delete`), so it
//! never follows a symlink, never leaves the tree's mount (openat2 RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV from the top's fd) and never opens anything but a
//! directory or a regular file (a device node swapped in would be opened otherwise: files are
//! opened O_PATH, checked, then reopened through /proc/self/fd). Symlinks, devices, fifos and
//! sockets cannot be opened for the ioctl: they keep whatever id they were created with.

use crate::syscall::quota::{self as q, FsXattr, XFLAG_PROJINHERIT};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

const RESOLVE: u64 = libc::RESOLVE_BENEATH
    | libc::RESOLVE_NO_SYMLINKS
    | libc::RESOLVE_NO_MAGICLINKS
    | libc::RESOLVE_NO_XDEV;

/// The project id and PROJINHERIT state one inode should end up with.
#[derive(Clone, Copy)]
pub struct Label {
    pub projid: u32,
    pub inherit: bool,
}

/// Label `top` (an open directory) and everything below it on the same mount.
pub fn label(top: BorrowedFd<'_>, l: Label) -> io::Result<()> {
    set(top, l, true)?;
    let mut dirs: VecDeque<PathBuf> = VecDeque::from([PathBuf::new()]);
    while let Some(rel) = dirs.pop_front() {
        let listing = if rel.as_os_str().is_empty() {
            std::fs::read_dir(fd_path(top))?
        } else {
            let d = match open_dir(top, &rel) {
                Ok(d) => d,
                Err(e) if skippable(&e) => continue,
                Err(e) => return Err(e),
            };
            set(d.as_fd(), l, true)?;
            std::fs::read_dir(fd_path(d.as_fd()))?
        };
        for e in listing {
            let e = e?;
            let child = rel.join(e.file_name());
            match e.file_type()? {
                t if t.is_dir() => dirs.push_back(child),
                t if t.is_file() => label_file(top, &child, l)?,
                _ => {}
            }
        }
    }
    Ok(())
}

/// Label only `top`: the claim marks the tree as taken under its lock, before the walk.
pub fn label_top(top: BorrowedFd<'_>, l: Label) -> io::Result<()> {
    set(top, l, true)
}

fn label_file(top: BorrowedFd<'_>, rel: &Path, l: Label) -> io::Result<()> {
    let path_fd = match crate::syscall::openat2(
        top.as_raw_fd(),
        rel,
        (libc::O_PATH | libc::O_NOFOLLOW) as u64,
        0,
        RESOLVE,
    ) {
        Ok(fd) => fd,
        // Removed or replaced by a symlink or mount since the listing: nothing of ours.
        Err(e) if skippable(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    let meta = std::fs::metadata(fd_path(path_fd.as_fd()))?;
    if !meta.is_file() {
        return Ok(());
    }
    let f = std::fs::File::open(fd_path(path_fd.as_fd()))?;
    set(f.as_fd(), l, false)
}

fn open_dir(top: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    crate::syscall::openat2(
        top.as_raw_fd(),
        rel,
        (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW) as u64,
        0,
        RESOLVE,
    )
}

fn skippable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT | libc::ELOOP | libc::EXDEV | libc::ENOTDIR)
    )
}

fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// One FS_IOC_FSSETXATTR, skipped when the inode already has the label (the common case for
/// a file the container made under PROJINHERIT).
fn set(fd: BorrowedFd<'_>, l: Label, dir: bool) -> io::Result<()> {
    let mut x: FsXattr = q::get_xattr(fd)?;
    let mut flags = x.xflags & !XFLAG_PROJINHERIT;
    if dir && l.inherit {
        flags |= XFLAG_PROJINHERIT;
    }
    if x.projid == l.projid && x.xflags == flags {
        return Ok(());
    }
    x.projid = l.projid;
    x.xflags = flags;
    q::set_xattr(fd, &x)
}
