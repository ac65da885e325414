//! Thin wrappers over the syscalls that nix or std do not cover. Each is one call, with the
//! reason it is sound; everything that decides *what* to call lives in the modules above.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    check(r as libc::c_long).map(|_| ())
}

pub fn flock_exclusive(f: &File) -> io::Result<()> {
    loop {
        // SAFETY: flock on an fd we own; no memory is passed.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        match check(r as libc::c_long) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            other => return other.map(|_| ()),
        }
    }
}

/// clone3 without a new stack: the child continues on a copy-on-write copy of this stack, like
/// fork(2), but enters the requested namespaces atomically and hands back a pidfd.
/// Returns Ok(None) in the child, Ok(Some((pid, pidfd))) in the parent.
///
/// # Safety
/// The caller must be single-threaded (vsrun never starts threads), so the child's copy of the
/// heap and locks is consistent, exactly as after fork(2).
pub unsafe fn clone3(flags: u64) -> io::Result<Option<(i32, OwnedFd)>> {
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    let mut pidfd: RawFd = -1;
    let args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    // SAFETY: args is a valid clone_args of the size passed; see the function's contract.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match check(r)? {
        0 => Ok(None),
        // SAFETY: the kernel wrote a fresh pidfd that nobody else owns.
        pid => Ok(Some((pid as i32, unsafe { OwnedFd::from_raw_fd(pidfd) }))),
    }
}

pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: no pointers; the returned fd is new and owned by us.
    let r = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: r is a fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: a null siginfo is allowed (the kernel fills a SI_USER one).
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    check(r).map(|_| ())
}

/// openat2 with `resolve` flags (RESOLVE_IN_ROOT etc.). All fds come back O_CLOEXEC.
pub fn openat2(
    dirfd: RawFd,
    path: &Path,
    flags: u64,
    mode: u64,
    resolve: u64,
) -> io::Result<OwnedFd> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let p = cstr(path)?;
    let how = OpenHow {
        flags: flags | libc::O_CLOEXEC as u64,
        mode,
        resolve,
    };
    loop {
        // SAFETY: p and how are valid for the call; the size matches the struct.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                p.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        match check(r) {
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
            Err(e) => return Err(e),
            // SAFETY: r is a fresh fd.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
        }
    }
}

/// Mark every fd >= `first` close-on-exec (the fds vsrun itself still needs stay usable).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: no pointers; CLOSE_RANGE_CLOEXEC only sets flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    check(r).map(|_| ())
}

pub fn setns(fd: RawFd, nstype: i32) -> io::Result<()> {
    // SAFETY: no pointers.
    check(unsafe { libc::setns(fd, nstype) } as libc::c_long).map(|_| ())
}

pub fn prctl(option: i32, arg: u64) -> io::Result<()> {
    // SAFETY: the options vsrun passes take integer arguments only.
    check(unsafe { libc::prctl(option, arg, 0, 0, 0) } as libc::c_long).map(|_| ())
}

pub fn pivot_root(new_root: &Path, put_old: &Path) -> io::Result<()> {
    let (n, o) = (cstr(new_root)?, cstr(put_old)?);
    // SAFETY: valid C strings.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, n.as_ptr(), o.as_ptr()) }).map(|_| ())
}

/// capset(2) with all three sets at once: setting them one by one can fail midway because the
/// kernel checks effective ⊆ permitted after every call.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (e0, e1) = split(effective);
    let (p0, p1) = split(permitted);
    let (i0, i1) = split(inheritable);
    let data = [
        Data {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        Data {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: header and a two-element data array, as _LINUX_CAPABILITY_VERSION_3 requires.
    check(unsafe { libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) })
        .map(|_| ())
}
