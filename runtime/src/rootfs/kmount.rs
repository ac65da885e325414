//! The kernel mount steps, all through fds (new mount API): a new file system is configured
//! and mounted detached (fsopen/fsconfig/fsmount), a bind source is cloned detached
//! (open_tree), its flags are set before it becomes visible (mount_setattr), and it is
//! attached onto the fd of an already-resolved target (move_mount). No path string is looked
//! up again after it was checked, and nothing depends on a /proc being mounted.

use super::options::MountOptions;
use crate::syscall::{self, MountAttr, AT_RECURSIVE, OPEN_TREE_CLONE};
use libc::c_ulong;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// A failed new-file-system mount: the OS error plus what the file system logged about it.
#[derive(Debug)]
pub struct FsError {
    pub err: io::Error,
    pub log: String,
}

impl FsError {
    pub fn errno(&self) -> Option<i32> {
        self.err.raw_os_error()
    }

    /// Turn into a crate error whose step carries the kernel's own explanation, if any.
    pub fn step(self, step: String) -> crate::Error {
        let step = if self.log.is_empty() {
            step
        } else {
            format!("{step} ({})", self.log)
        };
        crate::Error::Os {
            step,
            source: self.err,
        }
    }
}

/// Configure and create a new file system, detached. `data` items are `key=value` (a string
/// parameter) or `key` (a flag), exactly as mount(2) would split them.
pub fn new_fs(
    fstype: &str,
    source: Option<&str>,
    sb_flags: &[&str],
    data: &[String],
    attr_flags: u64,
) -> Result<OwnedFd, FsError> {
    new_fs_with(fstype, source, sb_flags, data, attr_flags, None)
}

/// `new_fs`, plus `fd_params` given as file descriptors (proc's `pidns`).
pub fn new_fs_with(
    fstype: &str,
    source: Option<&str>,
    sb_flags: &[&str],
    data: &[String],
    attr_flags: u64,
    fd_param: Option<(&str, RawFd)>,
) -> Result<OwnedFd, FsError> {
    let fs = syscall::fsopen(fstype).map_err(|err| FsError {
        err,
        log: String::new(),
    })?;
    let fail = |err: io::Error| FsError {
        err,
        log: syscall::fs_context_log(fs.as_raw_fd()),
    };
    if let Some(src) = source {
        syscall::fsconfig_set(fs.as_raw_fd(), "source", Some(src)).map_err(fail)?;
    }
    for f in sb_flags {
        syscall::fsconfig_set(fs.as_raw_fd(), f, None).map_err(fail)?;
    }
    for d in data {
        let (k, v) = match d.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (d.as_str(), None),
        };
        syscall::fsconfig_set(fs.as_raw_fd(), k, v).map_err(fail)?;
    }
    if let Some((k, fd)) = fd_param {
        syscall::fsconfig_set_fd(fs.as_raw_fd(), k, fd).map_err(fail)?;
    }
    syscall::fsconfig_create(fs.as_raw_fd()).map_err(fail)?;
    syscall::fsmount(fs.as_raw_fd(), attr_flags).map_err(fail)
}

/// A new file system with the flags and data of a config mount (and an fd parameter).
pub fn new_fs_for(
    fstype: &str,
    source: Option<&str>,
    o: &MountOptions,
    fd_param: Option<(&str, RawFd)>,
) -> Result<OwnedFd, FsError> {
    let sb: Vec<&str> = o.sb_flags().collect();
    new_fs_with(fstype, source, &sb, &o.data, o.fsmount_attr(), fd_param)
}

/// A detached copy of the mount (tree) at `src`: the source of a bind mount.
pub fn clone_tree(src: BorrowedFd<'_>, recursive: bool) -> io::Result<OwnedFd> {
    let flags = OPEN_TREE_CLONE | if recursive { AT_RECURSIVE } else { 0 };
    syscall::open_tree(src.as_raw_fd(), flags)
}

/// Attach the mount `mnt` on top of `target`.
pub fn attach(mnt: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    syscall::move_mount(mnt.as_raw_fd(), target.as_raw_fd())
}

/// umount2(MNT_DETACH) of the mount whose root `mnt` is, named as "." from it so that no path
/// string is looked up; the cwd is put back afterwards.
pub fn detach(mnt: BorrowedFd<'_>) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let cwd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(".")?;
    nix::unistd::fchdir(mnt.as_raw_fd())?;
    let r = nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH);
    nix::unistd::fchdir(cwd.as_raw_fd())?;
    Ok(r?)
}

/// Set and clear mount attributes. In a user namespace the flags a more privileged namespace
/// set on the source are locked (clearing them is EPERM): as runc does, keep them then.
pub fn set_attr(mnt: BorrowedFd<'_>, set: u64, clr: u64, recursive: bool) -> io::Result<()> {
    if set == 0 && clr == 0 {
        return Ok(());
    }
    let attr = |set, clr| MountAttr {
        attr_set: set,
        attr_clr: clr,
        ..Default::default()
    };
    match syscall::mount_setattr(mnt.as_raw_fd(), recursive, &attr(set, clr)) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        other => return other,
    }
    let current = current_attr(mnt)?;
    let clr = clr & !current;
    match syscall::mount_setattr(mnt.as_raw_fd(), recursive, &attr(set, clr)) {
        Err(e)
            if e.raw_os_error() == Some(libc::EPERM) && clr & syscall::MOUNT_ATTR__ATIME != 0 =>
        {
            // The atime mode is locked too: keep the source's.
            let (set, clr) = (
                set & !syscall::MOUNT_ATTR__ATIME,
                clr & !syscall::MOUNT_ATTR__ATIME,
            );
            syscall::mount_setattr(mnt.as_raw_fd(), recursive, &attr(set, clr))
        }
        other => other,
    }
}

/// The per-mount flags of `mnt` as MOUNT_ATTR_* bits (from statvfs).
fn current_attr(mnt: BorrowedFd<'_>) -> io::Result<u64> {
    use nix::sys::statvfs::FsFlags;
    let f = nix::sys::statvfs::fstatvfs(mnt)?.flags();
    let table = [
        (FsFlags::ST_RDONLY, syscall::MOUNT_ATTR_RDONLY),
        (FsFlags::ST_NOSUID, syscall::MOUNT_ATTR_NOSUID),
        (FsFlags::ST_NODEV, syscall::MOUNT_ATTR_NODEV),
        (FsFlags::ST_NOEXEC, syscall::MOUNT_ATTR_NOEXEC),
        (FsFlags::ST_NODIRATIME, syscall::MOUNT_ATTR_NODIRATIME),
    ];
    Ok(table
        .iter()
        .filter(|(st, _)| f.contains(*st))
        .fold(0, |a, (_, m)| a | m))
}

/// Change propagation (MS_SHARED / MS_SLAVE / MS_PRIVATE / MS_UNBINDABLE, | MS_REC).
pub fn set_propagation(mnt: BorrowedFd<'_>, flag: c_ulong) -> io::Result<()> {
    let attr = MountAttr {
        propagation: flag & !libc::MS_REC,
        ..Default::default()
    };
    syscall::mount_setattr(mnt.as_raw_fd(), flag & libc::MS_REC != 0, &attr)
}

/// A readable name for a propagation flag (for error messages).
pub fn propagation_name(flag: c_ulong) -> &'static str {
    let r = flag & libc::MS_REC != 0;
    match (flag & !libc::MS_REC, r) {
        (libc::MS_SHARED, false) => "shared",
        (libc::MS_SHARED, true) => "rshared",
        (libc::MS_SLAVE, false) => "slave",
        (libc::MS_SLAVE, true) => "rslave",
        (libc::MS_PRIVATE, false) => "private",
        (libc::MS_PRIVATE, true) => "rprivate",
        (libc::MS_UNBINDABLE, false) => "unbindable",
        _ => "runbindable",
    }
}
