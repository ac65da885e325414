//! Process steps between fork/clone and execve: leaving a fork, resetting signal dispositions,
//! execve with argument arrays built ahead of time, setrlimit by raw resource number, and the
//! session keyring. nix has these only as `unsafe fn` or not at all.

use super::check;
use std::ffi::{CStr, CString};
use std::io;
use std::marker::PhantomData;

/// _exit(2): leave a fork (or the init) without running the parent's atexit handlers,
/// destructors or stdio flushes, which belong to the process it was copied from.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes no pointers and never returns.
    unsafe { libc::_exit(code) }
}

/// fork(2). Sound as a safe call because vsrun is single-threaded (see this module's parent):
/// the child's copy of the heap and of every lock is consistent.
pub fn fork() -> io::Result<nix::unistd::ForkResult> {
    // SAFETY: single-threaded caller (crate invariant); the children vsrun forks only make
    // syscalls and leave through execve or `exit_now`.
    Ok(unsafe { nix::unistd::fork() }?)
}

/// sigaction(sig, SIG_DFL): an ignored or caught signal must not survive into the container.
pub fn reset_signal(sig: nix::sys::signal::Signal) -> nix::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_DFL installs no handler, so no Rust code can run in signal context.
    unsafe { sigaction(sig, &dfl) }.map(|_| ())
}

/// execve's arguments as the kernel takes them. Built before the seccomp filter is loaded:
/// after it only the execve itself may run, and building the pointer arrays allocates.
pub struct Execve<'a> {
    path: &'a CStr,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    // The pointers borrow from these strings; the lifetime keeps them alive.
    _strings: PhantomData<&'a [CString]>,
}

impl<'a> Execve<'a> {
    pub fn new(path: &'a CStr, argv: &'a [CString], envp: &'a [CString]) -> Execve<'a> {
        let ptrs = |v: &'a [CString]| {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Execve {
            path,
            argv: ptrs(argv),
            envp: ptrs(envp),
            _strings: PhantomData,
        }
    }

    /// execve(2); returns only on failure, with its error. Allocates nothing.
    pub fn exec(&self) -> io::Error {
        // SAFETY: path, argv and envp point to NUL-terminated strings borrowed for 'a, which
        // outlives self; both arrays end with a null pointer.
        unsafe { libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
        io::Error::last_os_error()
    }
}

/// setrlimit(2) by raw resource number, as security/rlimits.rs plans it from the
/// process.rlimits type: prlimit on the calling process.
pub fn set_rlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: lim is a valid rlimit; the old-limit pointer may be null; pid 0 is this process.
    let r = unsafe { libc::prlimit(0, resource, &lim, std::ptr::null_mut()) };
    check(r as libc::c_long).map(|_| ())
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): a fresh session keyring named `name`.
pub fn join_session_keyring(name: &CStr) -> io::Result<()> {
    // SAFETY: name is a valid C string; the command takes only that pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            name.as_ptr(),
        )
    };
    check(r).map(|_| ())
}
