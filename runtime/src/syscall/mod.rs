//! Thin wrappers over the syscalls that nix or std do not cover. Each is one call, with the
//! reason it is sound; everything that decides *what* to call lives in the modules above.
//! This is the only module allowed `unsafe` (lib.rs denies it everywhere else).
//!
//! The fork-like wrappers (`clone3`, `fork_sibling`, `proc::fork`) are safe functions because
//! vsrun is single-threaded by construction: nothing in the library starts a thread, so the
//! child's copy of the heap and of every lock is consistent, exactly as after fork(2) in a
//! single-threaded program. A change that starts threads must revisit them.

pub mod bpf;
pub mod image;
pub mod mem;

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub mod ns;
pub mod proc;
pub mod quota;
pub mod scm;
pub mod seccomp;
pub mod statmount;
pub mod task;
pub mod tty;

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

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3 without a new stack: the child continues on a copy-on-write copy of this stack, like
/// fork(2), but enters the requested namespaces atomically and hands back a pidfd.
/// Returns Ok(None) in the child, Ok(Some((pid, pidfd))) in the parent. Safe because vsrun is
/// single-threaded (see the module's head).
pub fn clone3(flags: u64, cgroup: Option<RawFd>) -> io::Result<Option<(i32, OwnedFd)>> {
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
        flags: flags
            | libc::CLONE_PIDFD as u64
            | if cgroup.is_some() {
                CLONE_INTO_CGROUP
            } else {
                0
            },
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.unwrap_or(0) as u64,
        ..Default::default()
    };
    // SAFETY: args is a valid clone_args of the size passed; the caller is single-threaded
    // (crate invariant), so the child's copy of memory is consistent.
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

/// A child in a new user namespace that does nothing until it is killed: its
/// /proc/<pid>/uid_map and gid_map are written by the caller, which then opens
/// /proc/<pid>/ns/user (an idmapped mount's mapping) and kills it. Dies with the caller
/// (PR_SET_PDEATHSIG) should the caller die first. Returns its pid and pidfd.
pub fn userns_holder() -> io::Result<(i32, OwnedFd)> {
    // The child only makes syscalls (prctl, getppid, pause) and never returns into the
    // caller's code.
    let parent = std::process::id() as libc::pid_t;
    match clone3(libc::CLONE_NEWUSER as u64, None)? {
        Some(child) => Ok(child),
        None => {
            // SAFETY: plain syscalls without pointers; _exit never returns.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                loop {
                    libc::pause();
                }
            }
        }
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

/// close_range(first, last, 0): close every fd numbered first..=last.
pub fn close_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: no pointers; closing numbers this process owns, in a child that leaves through
    // _exit (nothing still refers to them).
    check(unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) }).map(|_| ())
}

/// F_GETFD: the fd's flags, or EBADF when the number is not open.
pub fn fd_flags(fd: RawFd) -> io::Result<i32> {
    // SAFETY: no pointers; F_GETFD on any number is harmless.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) } as libc::c_long).map(|r| r as i32)
}

/// Set or clear FD_CLOEXEC on `fd`.
pub fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    let flags = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: no pointers; F_SETFD only changes the fd's flags.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) } as libc::c_long).map(|_| ())
}

/// F_DUPFD_CLOEXEC: a close-on-exec duplicate of `fd` on the lowest free number >= `min`.
/// The caller owns the returned number (it is deliberately not an OwnedFd: placeholders stay
/// open until execve).
pub fn dup_cloexec_from(fd: RawFd, min: RawFd) -> io::Result<RawFd> {
    // SAFETY: no pointers; the new number is returned to the caller to own.
    check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) } as libc::c_long)
        .map(|r| r as RawFd)
}

/// (st_dev, st_ino) of what `fd` refers to: enough to tell whether a number still holds the
/// same open file (sockets and pipes have unique inodes in their pseudo filesystems too).
pub fn fd_identity(fd: RawFd) -> io::Result<(u64, u64)> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is a valid out pointer of the right type; fstat fills it on success.
    check(unsafe { libc::fstat(fd, st.as_mut_ptr()) } as libc::c_long)?;
    // SAFETY: fstat succeeded, so st is initialised.
    let st = unsafe { st.assume_init() };
    Ok((st.st_dev, st.st_ino))
}

/// The soft RLIMIT_NOFILE: no fd of this process can get a number at or above it.
pub fn nofile_soft_limit() -> io::Result<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a valid out pointer.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } as libc::c_long)?;
    Ok(rl.rlim_cur)
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

// ---------------------------------------------------------------------------------------------
// The new mount API (open_tree, move_mount, fsopen/fsconfig/fsmount, mount_setattr) and the
// few fd-relative calls rootfs/ needs. Everything is done through fds so that no path string
// is ever re-resolved after it was checked (CVE-2021-30465 class), and so that nothing
// depends on /proc being mounted. Constants are from <linux/mount.h>; libc (glibc target)
// does not export them.

pub const OPEN_TREE_CLONE: u32 = 1;
pub const AT_RECURSIVE: u32 = 0x8000;
pub const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
pub const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
pub const FSOPEN_CLOEXEC: u32 = 1;
pub const FSMOUNT_CLOEXEC: u32 = 1;
pub const FSCONFIG_SET_FLAG: u32 = 0;
pub const FSCONFIG_SET_STRING: u32 = 1;
pub const FSCONFIG_CMD_CREATE: u32 = 6;
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x200000;
pub const MOUNT_ATTR_IDMAP: u64 = 0x100000;

/// struct mount_attr (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

fn fd_result(r: libc::c_long) -> io::Result<OwnedFd> {
    let fd = check(r)?;
    // SAFETY: the kernel returned a fresh fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn cstr_s(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// open_tree(fd, "", AT_EMPTY_PATH | flags): with OPEN_TREE_CLONE a detached copy of the
/// mount (tree, with AT_RECURSIVE) at `fd`, i.e. the source of a bind mount.
pub fn open_tree(fd: RawFd, flags: u32) -> io::Result<OwnedFd> {
    let flags = flags | libc::AT_EMPTY_PATH as u32 | libc::O_CLOEXEC as u32;
    // SAFETY: an empty NUL-terminated path; no other pointers.
    fd_result(unsafe { libc::syscall(libc::SYS_open_tree, fd, c"".as_ptr(), flags) })
}

/// move_mount(from, "", to, "", F_EMPTY_PATH | T_EMPTY_PATH): attach (or move) the mount at
/// `from` on top of whatever is mounted at `to`.
pub fn move_mount(from: RawFd, to: RawFd) -> io::Result<()> {
    let flags = MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: two empty NUL-terminated paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from,
            c"".as_ptr(),
            to,
            c"".as_ptr(),
            flags,
        )
    };
    check(r).map(|_| ())
}

/// move_mount(from, "", AT_FDCWD, path, F_EMPTY_PATH) (used to move the rootfs onto "/").
pub fn move_mount_to_path(from: RawFd, to: &Path) -> io::Result<()> {
    let t = cstr(to)?;
    // SAFETY: valid NUL-terminated paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from,
            c"".as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    check(r).map(|_| ())
}

pub fn fsopen(fstype: &str) -> io::Result<OwnedFd> {
    let t = cstr_s(fstype)?;
    // SAFETY: a valid NUL-terminated string.
    fd_result(unsafe { libc::syscall(libc::SYS_fsopen, t.as_ptr(), FSOPEN_CLOEXEC) })
}

/// fsconfig with a string value (FSCONFIG_SET_STRING), a flag (value None, FSCONFIG_SET_FLAG).
pub fn fsconfig_set(fd: RawFd, key: &str, value: Option<&str>) -> io::Result<()> {
    let k = cstr_s(key)?;
    let v = value.map(cstr_s).transpose()?;
    let (cmd, vp) = match &v {
        Some(v) => (FSCONFIG_SET_STRING, v.as_ptr()),
        None => (FSCONFIG_SET_FLAG, std::ptr::null()),
    };
    // SAFETY: key and value are valid NUL-terminated strings (or null for a flag).
    let r = unsafe { libc::syscall(libc::SYS_fsconfig, fd, cmd, k.as_ptr(), vp, 0) };
    check(r).map(|_| ())
}

/// A fork whose child is a sibling of the caller (CLONE_PARENT): the caller's parent gets it
/// as its own child, to wait for and signal. Returns the child's pid, or 0 in the child.
/// Safe as `clone3` is (the module's head); the child should only make syscalls and leave
/// through execve or _exit.
pub fn fork_sibling() -> io::Result<i32> {
    let flags = (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_long;
    // SAFETY: a fork-like clone (no CLONE_VM, no new stack) from a single-threaded caller.
    let r = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
    check(r).map(|pid| pid as i32)
}

pub fn fsconfig_create(fd: RawFd) -> io::Result<()> {
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value.
    let r = unsafe { libc::syscall(libc::SYS_fsconfig, fd, FSCONFIG_CMD_CREATE, null, null, 0) };
    check(r).map(|_| ())
}

pub fn fsmount(fd: RawFd, attr_flags: u64) -> io::Result<OwnedFd> {
    // SAFETY: no pointers.
    fd_result(unsafe { libc::syscall(libc::SYS_fsmount, fd, FSMOUNT_CLOEXEC, attr_flags) })
}

/// mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], attr).
pub fn mount_setattr(fd: RawFd, recursive: bool, attr: &MountAttr) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: attr is a valid mount_attr of the size passed; the path is empty.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(r).map(|_| ())
}

/// The mount id of the mount `fd` is on, and whether `fd` is that mount's root.
pub fn statx_mount(fd: RawFd) -> io::Result<(u64, bool)> {
    let mut sx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // The raw syscall, not libc::statx: Rust's std declares statx weak, and in a static
    // (+crt-static) LTO build that weak declaration wins, so libc.a's statx is never linked
    // in and the call jumps to address 0 (the init died with SIGSEGV mounting the rootfs).
    // SAFETY: sx is a writable statx buffer; the path is empty (AT_EMPTY_PATH).
    let r = unsafe {
        libc::syscall(
            libc::SYS_statx,
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID,
            sx.as_mut_ptr(),
        )
    };
    check(r)?;
    // SAFETY: statx succeeded and filled the buffer (it was zeroed before).
    let sx = unsafe { sx.assume_init() };
    let root = sx.stx_attributes & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0;
    Ok((sx.stx_mnt_id, root))
}

/// Read what a file-system context logged (fsopen fd): lines like "e tmpfs: Bad value ...".
pub fn fs_context_log(fd: RawFd) -> String {
    let mut out = String::new();
    let mut buf = [0u8; 512];
    loop {
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return out;
        }
        let line = String::from_utf8_lossy(&buf[..n as usize]);
        let line = line.trim_end();
        let msg = line.get(2..).unwrap_or(line);
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(msg);
    }
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH): run the file `fd` refers to (an O_PATH fd or a
/// detached mount is fine). Returns only on failure.
pub fn execveat_fd(fd: RawFd, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: argv and envp are NULL-terminated arrays of valid C strings that outlive the call;
    // the path is empty (AT_EMPTY_PATH).
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            c"".as_ptr(),
            a.as_ptr(),
            e.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// fstatvfs(fd).f_flag: ST_RDONLY and friends, as the mount `fd` is on has them.
pub fn statfs_flags(fd: RawFd) -> io::Result<u64> {
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: st is a writable statvfs buffer.
    check(unsafe { libc::fstatvfs(fd, st.as_mut_ptr()) } as libc::c_long)?;
    // SAFETY: fstatvfs succeeded and filled the buffer.
    Ok(unsafe { st.assume_init() }.f_flag as u64)
}

/// memfd_create(name, flags).
pub fn memfd_create(name: &std::ffi::CStr, flags: u32) -> io::Result<OwnedFd> {
    // SAFETY: name is a valid C string.
    fd_result(unsafe { libc::memfd_create(name.as_ptr(), flags) } as libc::c_long)
}
