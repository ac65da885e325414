//! Namespace files and the uts namespace's names, where nix has no call.

use super::check;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// NS_GET_NSTYPE (ioctl_ns(2)): the CLONE_NEW* type of a namespace file.
pub fn ns_get_nstype(f: BorrowedFd<'_>) -> io::Result<i32> {
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: NS_GET_NSTYPE takes no argument and returns the type or -1.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_NSTYPE) };
    check(r as libc::c_long).map(|t| t as i32)
}

/// setdomainname(2) (nix has sethostname only).
pub fn setdomainname(name: &str) -> io::Result<()> {
    // SAFETY: name points to name.len() valid bytes for the duration of the call.
    check(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } as libc::c_long)
        .map(drop)
}
