//! One mount's facts without /proc/self/mountinfo: statx (STATX_MNT_ID_UNIQUE, Linux 6.8) and
//! statmount(2) (Linux 6.8). Reading mountinfo takes the kernel's global mount lock for every
//! read() chunk and walks every mount of the namespace; these look up one mount.

use super::check;
use std::ffi::CStr;
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

const SYS_STATMOUNT: libc::c_long = 457;
const STATX_MNT_ID_UNIQUE: u32 = 0x4000;
const STATMOUNT_MNT_BASIC: u64 = 0x2;
const STATMOUNT_MNT_POINT: u64 = 0x10;
/// The size of the first version of `struct mnt_id_req` (size, spare, mnt_id, param): the
/// one every kernel with statmount accepts.
const MNT_ID_REQ_SIZE_VER0: u32 = 24;
/// `struct statmount`'s fixed part; its string offsets count from its end.
const STATMOUNT_HEADER: usize = 512;

/// What statx says about a file's place among the mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountStatx {
    pub ino: u64,
    pub dev: (u32, u32),
    /// The file type bits (S_IFMT) of the mode.
    pub kind: u32,
    pub nlink: u32,
    /// The 64-bit id statmount takes, when the kernel knows it (6.8+).
    pub unique_id: Option<u64>,
    /// The file is the root of a mount.
    pub mount_root: bool,
}

/// statx of `path` (relative to `dirfd`, or of `dirfd` itself when `path` is empty), not
/// following a final symlink.
pub fn statx_at(dirfd: RawFd, path: &CStr) -> io::Result<MountStatx> {
    let mut sx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    let flags = if path.is_empty() {
        libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    // The raw syscall, as in `statx_mount`: libc::statx is a weak symbol in the static build.
    // SAFETY: sx is a writable statx buffer; path is a valid C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_statx,
            dirfd,
            path.as_ptr(),
            flags,
            libc::STATX_INO | libc::STATX_TYPE | libc::STATX_NLINK | STATX_MNT_ID_UNIQUE,
            sx.as_mut_ptr(),
        )
    };
    check(r)?;
    // SAFETY: statx succeeded and filled the buffer (it was zeroed before).
    let sx = unsafe { sx.assume_init() };
    Ok(MountStatx {
        ino: sx.stx_ino,
        dev: (sx.stx_dev_major, sx.stx_dev_minor),
        kind: u32::from(sx.stx_mode) & libc::S_IFMT,
        nlink: sx.stx_nlink,
        unique_id: (sx.stx_mask & STATX_MNT_ID_UNIQUE != 0).then_some(sx.stx_mnt_id),
        mount_root: sx.stx_attributes & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0,
    })
}

#[repr(C)]
struct MntIdReq {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
}

/// A mount's propagation and where it is mounted, from statmount(2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPoint {
    /// MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE bits.
    pub propagation: u64,
    /// Relative to this process's root, as in mountinfo.
    pub mount_point: PathBuf,
}

/// statmount(STATMOUNT_MNT_BASIC | STATMOUNT_MNT_POINT) of the mount with unique id `id` in
/// this process's mount namespace. ENOSYS before 6.8.
pub fn statmount_point(id: u64) -> io::Result<MountPoint> {
    let req = MntIdReq {
        size: MNT_ID_REQ_SIZE_VER0,
        spare: 0,
        mnt_id: id,
        param: STATMOUNT_MNT_BASIC | STATMOUNT_MNT_POINT,
    };
    // u64s, so the buffer is aligned for the header's fields.
    let mut buf = vec![0u64; 4096 / 8];
    let len = buf.len() * 8;
    // SAFETY: req is a valid mnt_id_req of the size it states; buf is writable for len bytes.
    let r = unsafe {
        libc::syscall(
            SYS_STATMOUNT,
            &req as *const MntIdReq,
            buf.as_mut_ptr(),
            len,
            0u32,
        )
    };
    check(r)?;
    // SAFETY: u64s viewed as their bytes, for the same length.
    let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len) };
    parse_point(bytes)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from(u32_at(b, off)) | (u64::from(u32_at(b, off + 4)) << 32)
}

/// The fields of `struct statmount` this needs (offsets from include/uapi/linux/mount.h:
/// mask at 8, mnt_propagation at 72, mnt_point at 108), checked against `mask`.
fn parse_point(b: &[u8]) -> io::Result<MountPoint> {
    let size = (u32_at(b, 0) as usize).min(b.len());
    let mask = u64_at(b, 8);
    let want = STATMOUNT_MNT_BASIC | STATMOUNT_MNT_POINT;
    if mask & want != want || size <= STATMOUNT_HEADER {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let start = STATMOUNT_HEADER + u32_at(b, 108) as usize;
    let s = b.get(start..size).unwrap_or_default();
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    use std::os::unix::ffi::OsStrExt;
    Ok(MountPoint {
        propagation: u64_at(b, 72),
        mount_point: Path::new(std::ffi::OsStr::from_bytes(&s[..end])).to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statmount_header_fields_are_read_at_their_offsets() {
        let mut b = vec![0u8; 600];
        let point = b"/a b";
        b[0..4].copy_from_slice(&((STATMOUNT_HEADER + 3 + point.len() + 1) as u32).to_ne_bytes());
        b[8..16].copy_from_slice(&(STATMOUNT_MNT_BASIC | STATMOUNT_MNT_POINT).to_ne_bytes());
        b[72..80].copy_from_slice(&(libc::MS_SHARED).to_ne_bytes());
        b[108..112].copy_from_slice(&3u32.to_ne_bytes());
        b[STATMOUNT_HEADER + 3..STATMOUNT_HEADER + 3 + point.len()].copy_from_slice(point);
        let p = parse_point(&b).unwrap();
        assert_eq!(p.propagation, libc::MS_SHARED);
        assert_eq!(p.mount_point, PathBuf::from("/a b"));
        // A kernel that did not fill the mount point is not believed.
        b[8..16].copy_from_slice(&STATMOUNT_MNT_BASIC.to_ne_bytes());
        assert!(parse_point(&b).is_err());
    }

    #[test]
    fn statmount_finds_the_root_mount() {
        let Ok(sx) = statx_at(libc::AT_FDCWD, c"/") else {
            return;
        };
        let Some(id) = sx.unique_id else { return };
        match statmount_point(id) {
            Ok(p) => assert_eq!(p.mount_point, PathBuf::from("/")),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOSYS)),
        }
    }
}
