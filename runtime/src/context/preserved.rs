//! The fds that cross the container's execve besides stdio: 3..3+N, where N is --preserve-fds
//! (plus LISTEN_FDS for `create` and `run`, socket activation as runc passes it on).
//!
//! Only fds the *caller* put in that range may cross (CVE-2024-21626 class). vsrun's own fds
//! must not: its cgroup directory is a directory of the host's cgroupfs, and `..` from it walks
//! the host's tree past the container's root; its sync socket, the exec fifo and the namespace
//! fds of `exec` are no business of the container's either. All of them used to land in the
//! range whenever the caller left a gap there, because the kernel hands out the lowest free
//! number, and the seal only knew numbers.
//!
//! At seal time a number cannot tell whose fd it is. The one moment when every open fd in the
//! range is the caller's is before vsrun opens anything: right after the command line is
//! parsed, before the sealed re-exec (security/sealed_exe.rs) and the log. So `reserve`, called
//! from main there:
//! 1. records which numbers in the range are open, and what file each holds (`record_callers_fds`);
//! 2. puts a close-on-exec placeholder on every free number in the range
//!    (`occupy_free_numbers`), so every fd vsrun opens afterwards gets a number above it.
//!
//! `seal` (the init's last fd step, through `exec::seal_fds`) then marks everything from 3 up
//! close-on-exec and clears the flag only on the recorded caller fds, each after checking it
//! still holds the caller's file: vsrun never closes or dup2s onto a number it did not open
//! (its dup2s target 0..2 only), and if that ever changed, the container would otherwise get
//! something else under the caller's number.
//!
//! The sealed re-exec needs nothing extra: placeholders are close-on-exec and vanish with it,
//! the caller's fds survive it (they are not), and the re-executed vsrun reserves again and
//! finds exactly the caller's fds, since whatever the first vsrun opened went above the range.

use crate::error::{config, state, Result, StepExt};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

/// Numbers vsrun keeps free for its own fds below RLIMIT_NOFILE, above the range: a range that
/// leaves fewer is refused with a clear error instead of an EMFILE somewhere in setup.
const HEADROOM: u64 = 64;

/// One fd the caller passed in the range.
struct CallerFd {
    fd: RawFd,
    identity: (u64, u64),
}

struct Reservation {
    /// One past the last number of the range (3 + N).
    end: u64,
    callers: Vec<CallerFd>,
}

/// Set once per process, before vsrun opens anything; read by the init (a copy of this
/// process's memory) when it seals.
static RESERVED: OnceLock<Reservation> = OnceLock::new();

/// LISTEN_FDS from vsrun's environment (systemd socket activation), 0 when unset or invalid.
pub fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// How many fds above stdio a command passes on: `create`/`run` LISTEN_FDS + --preserve-fds,
/// `exec` --preserve-fds (runc's exec does not pass LISTEN_FDS), others none.
pub fn range_len(cmd: &crate::cli::Command) -> u64 {
    use crate::cli::Command;
    match cmd {
        Command::Create(a) => u64::from(listen_fds()) + u64::from(a.preserve_fds),
        Command::Run(a) => u64::from(listen_fds()) + u64::from(a.create.preserve_fds),
        Command::Exec(a) => u64::from(a.preserve_fds),
        _ => 0,
    }
}

/// Record the caller's fds in 3..3+len and occupy the rest of the range (see the module docs).
/// Must run before vsrun opens any fd.
pub fn reserve(len: u64) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    let end = 3 + len;
    check_fits_under_limit(len, end)?;
    let callers = record_callers_fds(end as RawFd)?;
    occupy_free_numbers(end as RawFd)?;
    RESERVED
        .set(Reservation { end, callers })
        .map_err(|_| state("the preserved fd range was reserved twice"))
}

/// The whole range plus room for vsrun's own fds must fit below the soft RLIMIT_NOFILE:
/// otherwise vsrun's fds would have nowhere to go but into the range (or nowhere at all).
fn check_fits_under_limit(len: u64, end: u64) -> Result<()> {
    let soft = crate::syscall::nofile_soft_limit().step(|| "getrlimit(RLIMIT_NOFILE)".into())?;
    if end.saturating_add(HEADROOM) > soft {
        let listen = listen_fds();
        let what = if listen > 0 {
            format!("--preserve-fds with LISTEN_FDS={listen}: {len} fds")
        } else {
            format!("--preserve-fds {len}")
        };
        return Err(config(
            "--preserve-fds",
            format!(
                "{what} (3..{end}) leave vsrun fewer than {HEADROOM} descriptors of its own \
                 below RLIMIT_NOFILE ({soft}); pass fewer or raise the limit"
            ),
        ));
    }
    Ok(())
}

/// Every number in 3..end that is open now was opened by the caller: vsrun has opened nothing
/// yet.
fn record_callers_fds(end: RawFd) -> Result<Vec<CallerFd>> {
    let mut callers = Vec::new();
    for fd in 3..end {
        if crate::syscall::fd_flags(fd).is_err() {
            continue;
        }
        let identity =
            crate::syscall::fd_identity(fd).step(|| format!("fstat preserved fd {fd}"))?;
        callers.push(CallerFd { fd, identity });
    }
    Ok(callers)
}

/// A close-on-exec /dev/null on every free number in 3..end. The kernel gives each new fd the
/// lowest free number, so after this every fd vsrun opens lands at `end` or above. The
/// placeholders stay open (never dropped) until execve closes them.
fn occupy_free_numbers(end: RawFd) -> Result<()> {
    let null: OwnedFd = std::fs::File::open("/dev/null")
        .step(|| "open /dev/null (placeholder for the preserved fd range)".into())?
        .into();
    loop {
        let fd = crate::syscall::dup_cloexec_from(null.as_raw_fd(), 3)
            .step(|| "fcntl(F_DUPFD_CLOEXEC) placeholder for the preserved fd range".into())?;
        if fd >= end {
            let _ = nix::unistd::close(fd);
            break;
        }
    }
    if null.as_raw_fd() < end {
        // It sits in the range itself: it is a placeholder too.
        let _ = null.into_raw_fd();
    }
    Ok(())
}

/// The seal before execve: only stdio and the caller's fds in 3..3+count cross; everything
/// else, vsrun's own fds and the placeholders included, is close-on-exec.
pub fn seal(count: u32) -> Result<()> {
    crate::syscall::cloexec_from(3).step(|| "close_range(3.., CLOEXEC)".into())?;
    if count == 0 {
        return Ok(());
    }
    let end = 3 + u64::from(count);
    let reserved = RESERVED.get().filter(|r| r.end >= end).ok_or_else(|| {
        state(format!(
            "fds 3..{end} were not reserved when vsrun started; not passing unknown fds"
        ))
    })?;
    for c in reserved.callers.iter().filter(|c| (c.fd as u64) < end) {
        let now = crate::syscall::fd_identity(c.fd);
        if now.as_ref().ok() != Some(&c.identity) {
            return Err(state(format!(
                "preserved fd {} no longer holds the file the caller passed",
                c.fd
            )));
        }
        crate::syscall::set_cloexec(c.fd, false)
            .step(|| format!("clear FD_CLOEXEC on preserved fd {}", c.fd))?;
    }
    Ok(())
}
