//! The rootfs in a mount namespace shared with other processes (a config without a new
//! `mount` namespace, or one joined by path). The init binds the rootfs onto itself and hangs
//! every other mount below that bind, so one detach of it takes all of them away. The parent
//! finds that bind as the top mount on the rootfs path: before the clone it notes what is
//! there (an engine's overlay, or nothing), afterwards anything else on top is the init's.
//!
//! A mount namespace joined by path is not the parent's own: there the look-up and the detach
//! run in a short-lived fork that enters it, so vsrun's own view of the host never changes.

use crate::error::{Error, Result, StepExt};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

/// The id of the top mount on `rootfs`, seen from mount namespace `ns` (None: our own).
pub fn top_mount(ns: Option<BorrowedFd<'_>>, rootfs: &Path) -> Result<u64> {
    in_namespace(ns, || {
        let fd = super::resolve::open_host(rootfs, libc::O_PATH | libc::O_DIRECTORY)?;
        crate::syscall::statx_mount(fd.as_raw_fd()).map(|(id, _)| id)
    })
    .step(|| format!("find the mount on the rootfs {}", rootfs.display()))
}

/// Detach the bind the init made on `rootfs` (and with it everything mounted below), if the
/// top mount there is still `id`. Anything else on the path is left alone.
pub fn detach(ns: Option<BorrowedFd<'_>>, rootfs: &Path, id: u64) -> Result<()> {
    in_namespace(ns, || {
        let fd = match super::resolve::open_host(rootfs, libc::O_PATH | libc::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(0),
            Err(e) => return Err(e),
        };
        if crate::syscall::statx_mount(fd.as_raw_fd())?.0 != id {
            return Ok(0);
        }
        // Through the fd's magic link: the mount checked above is the one detached, even if
        // the path changed meanwhile.
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        nix::mount::umount2(path.as_str(), nix::mount::MntFlags::MNT_DETACH)?;
        Ok(0)
    })
    .step(|| format!("unmount what the container mounted on {}", rootfs.display()))
    .map(|_| ())
}

/// Undo a failed create: if the top mount on `rootfs` is no longer `before`, the init's bind
/// is there.
pub fn undo(ns: Option<BorrowedFd<'_>>, rootfs: &Path, before: u64) -> Result<()> {
    let now = top_mount(ns, rootfs)?;
    if now == before {
        return Ok(());
    }
    detach(ns, rootfs, now)
}

/// Run `f` in mount namespace `ns`: directly when None, else in a fork that setns's into it
/// and reports `f`'s u64 (or errno) over a pipe.
fn in_namespace(
    ns: Option<BorrowedFd<'_>>,
    f: impl FnOnce() -> std::io::Result<u64>,
) -> std::io::Result<u64> {
    let Some(ns) = ns else { return f() };
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // The child only makes syscalls and _exits.
    match crate::syscall::proc::fork()? {
        nix::unistd::ForkResult::Child => {
            drop(r);
            let res = crate::syscall::setns(ns.as_raw_fd(), libc::CLONE_NEWNS).and_then(|_| f());
            let word: i64 = match res {
                Ok(v) => v as i64,
                Err(e) => -(e.raw_os_error().unwrap_or(libc::EIO) as i64),
            };
            let _ = nix::unistd::write(&w, &word.to_ne_bytes());
            // Leave the fork without running the parent's destructors.
            crate::syscall::proc::exit_now(0)
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut buf = [0u8; 8];
            let n = nix::unistd::read(r.as_raw_fd(), &mut buf);
            let _ = nix::sys::wait::waitpid(child, None);
            match n {
                Ok(8) => {
                    let v = i64::from_ne_bytes(buf);
                    if v < 0 {
                        Err(std::io::Error::from_raw_os_error(-v as i32))
                    } else {
                        Ok(v as u64)
                    }
                }
                _ => Err(std::io::Error::other(
                    Error::Child("the fork in the joined mount namespace died".into()).to_string(),
                )),
            }
        }
    }
}
