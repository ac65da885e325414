//! seccomp(2) (security/seccomp/): load a compiled classic-BPF filter into the calling thread.
//! libc has the syscall number only; nix has no seccomp at all.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
const FLAG_NEW_LISTENER: libc::c_uint = 1 << 3;

/// One `struct sock_filter` (the seccomp emitter's `Insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// What seccomp(SECCOMP_SET_MODE_FILTER) returned: the listener (FLAG_NEW_LISTENER), or the
/// plain value (0; with TSYNC, the thread it could not synchronize).
pub enum Loaded {
    Listener(OwnedFd),
    Value(i32),
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog). Allocates nothing: it runs last before
/// execve, where a strict profile may refuse brk/mmap.
pub fn set_mode_filter(prog: &[SockFilter], flags: libc::c_uint) -> io::Result<Loaded> {
    let fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: SockFilter is #[repr(C)] with sock_filter's layout; fprog points into `prog`,
    // which outlives the call; the kernel copies the program before returning.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & FLAG_NEW_LISTENER != 0 {
        // SAFETY: with FLAG_NEW_LISTENER the kernel returns a new fd that nothing else owns.
        return Ok(Loaded::Listener(unsafe { OwnedFd::from_raw_fd(r as i32) }));
    }
    Ok(Loaded::Value(r as i32))
}
