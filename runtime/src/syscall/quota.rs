//! Project quotas: the FS_IOC_FS[GS]ETXATTR ioctls that carry an inode's project id and its
//! PROJINHERIT flag, and quotactl_fd(2) on the PRJQUOTA records. nix's quotactl knows only
//! user and group quotas and wants the block device's path; quotactl_fd (Linux 5.14) takes
//! any fd on the file system, so an overlay's upper dir or a loop mount needs no device lookup.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `struct fsxattr` (linux/fs.h).
#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
pub struct FsXattr {
    pub xflags: u32,
    pub extsize: u32,
    pub nextents: u32,
    pub projid: u32,
    pub cowextsize: u32,
    pub pad: [u8; 8],
}

/// New files and directories below a directory with this flag take its project id.
pub const XFLAG_PROJINHERIT: u32 = 0x0000_0200;

// _IOR('X', 31, struct fsxattr) and _IOW('X', 32, struct fsxattr): 28-byte argument.
const FS_IOC_FSGETXATTR: libc::c_ulong = 0x801c_581f;
const FS_IOC_FSSETXATTR: libc::c_ulong = 0x401c_5820;

const PRJQUOTA: u32 = 2;

/// QCMD(cmd, PRJQUOTA).
fn qcmd(cmd: libc::c_int) -> libc::c_uint {
    ((cmd as libc::c_uint) << 8) | PRJQUOTA
}

fn check(r: libc::c_long) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub fn get_xattr(fd: BorrowedFd<'_>) -> io::Result<FsXattr> {
    let mut x = FsXattr::default();
    // SAFETY: the ioctl writes one fsxattr, which `x` is, for the duration of the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_FSGETXATTR, &mut x as *mut FsXattr) };
    check(r as libc::c_long).map(|_| x)
}

pub fn set_xattr(fd: BorrowedFd<'_>, x: &FsXattr) -> io::Result<()> {
    // SAFETY: the ioctl reads one fsxattr from `x`, valid for the duration of the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_FSSETXATTR, x as *const FsXattr) };
    check(r as libc::c_long)
}

/// quotactl_fd(fd, QCMD(Q_GETQUOTA, PRJQUOTA), id, &dqblk).
pub fn get_project_quota(fd: BorrowedFd<'_>, id: u32) -> io::Result<libc::dqblk> {
    // SAFETY: dqblk is plain data; all-zero is a valid value.
    let mut q: libc::dqblk = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one if_dqblk (libc::dqblk has its layout) into `q`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_quotactl_fd,
            fd.as_raw_fd(),
            qcmd(libc::Q_GETQUOTA),
            id,
            &mut q as *mut libc::dqblk,
        )
    };
    check(r).map(|_| q)
}

/// quotactl_fd(fd, QCMD(Q_SETQUOTA, PRJQUOTA), id, &dqblk): the fields `q.dqb_valid` names.
pub fn set_project_quota(fd: BorrowedFd<'_>, id: u32, q: &libc::dqblk) -> io::Result<()> {
    // SAFETY: the kernel reads one if_dqblk from `q`, valid for the duration of the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_quotactl_fd,
            fd.as_raw_fd(),
            qcmd(libc::Q_SETQUOTA),
            id,
            q as *const libc::dqblk,
        )
    };
    check(r)
}

const Q_XGETQSTATV: libc::c_int = (b'X' as libc::c_int) << 8 | 8;
const FS_QSTATV_VERSION1: i8 = 1;

/// quotactl_fd(fd, Q_XGETQSTATV): the FS_QUOTA_* flags of `struct fs_quota_statv` (accounting
/// and enforcement per quota type), which ext4 and XFS both report.
pub fn quota_state_flags(fd: BorrowedFd<'_>) -> io::Result<u16> {
    // struct fs_quota_statv is 160 bytes: s8 version, u8 pad, u16 flags, then counters.
    let mut buf = [0u64; 20];
    // SAFETY: buf is 160 bytes, u64-aligned; the first byte is the struct's qs_version.
    unsafe { *(buf.as_mut_ptr() as *mut i8) = FS_QSTATV_VERSION1 };
    // SAFETY: the kernel writes at most one fs_quota_statv (160 bytes) into buf.
    let r = unsafe {
        libc::syscall(
            libc::SYS_quotactl_fd,
            fd.as_raw_fd(),
            qcmd(Q_XGETQSTATV),
            0u32,
            buf.as_mut_ptr(),
        )
    };
    check(r)?;
    Ok((buf[0] >> 16) as u16)
}
