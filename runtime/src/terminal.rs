//! `process.terminal`: the pty is allocated by the init *inside* the container (its own devpts
//! instance, after pivot_root), so the slave belongs to the container and `/dev/console` can
//! be that slave. The master travels to vsrun over the sync socket (SCM_RIGHTS) and from there
//! either to `--console-socket` (conmon, containerd-shim) or to a foreground proxy.

use crate::error::{state, Result, StepExt};
use crate::syscall::tty;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

const DEVPTS_MAJOR_MIN: u32 = 136;
const DEVPTS_MAJOR_MAX: u32 = 143;

/// Init side, after pivot_root: open a pty pair in the container's devpts, make the slave the
/// controlling terminal and stdio, bind it on /dev/console when asked, return the master.
/// With `controlling` false the slave only becomes fds 0-2: the process that execs (forked
/// later into a joined pid namespace) makes it its controlling terminal (`become_controlling`).
/// `owner` is the uid the process will run as: the slave is given to it here, while the init
/// still may chown, because the process that execs may be forked after the credential drop.
pub fn setup_in_init(
    size: Option<(u16, u16)>,
    bind_console: bool,
    controlling: bool,
    owner: u32,
) -> Result<OwnedFd> {
    let master = open_confined("/dev/ptmx", libc::O_RDWR | libc::O_NOCTTY)
        .step(|| "open /dev/ptmx in the container".into())?;
    tty::unlock_pty(master.as_fd()).step(|| "unlock the pty".into())?;
    // TIOCGPTPEER opens the slave through the master itself: no path lookup that a container
    // could redirect.
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    let slave = tty::pty_peer(master.as_fd(), flags).step(|| "open the pty slave".into())?;
    verify_pty_slave(&slave)?;
    give_slave_to(&slave, owner)?;
    if let Some((rows, cols)) = size {
        set_size(slave.as_fd(), rows, cols)?;
    }
    if bind_console {
        // CVE-2025-52565 class: only this verified devpts slave is bound, fd to fd, onto a
        // /dev/console resolved inside the root without following symlinks.
        crate::rootfs::mount_console(slave.as_fd())?;
    }
    if controlling {
        nix::unistd::setsid().step(|| "setsid for the container terminal".into())?;
        make_controlling(slave.as_fd())?;
    }
    for target in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), target)
            .step(|| format!("dup2 pty slave to fd {target}"))?;
    }
    Ok(master)
}

/// As runc's fixStdioPermissions: only the uid changes, so the group devpts chose (its `gid=`
/// option, tty in the usual config) stays, and a non-root process can use its own terminal.
/// EINVAL (the uid is not mapped in the container's user namespace) and EPERM (the slave's
/// owner is not) leave the slave alone, as runc does: the terminal still works for root.
fn give_slave_to(slave: &OwnedFd, uid: u32) -> Result<()> {
    match nix::unistd::fchown(
        slave.as_raw_fd(),
        Some(nix::unistd::Uid::from_raw(uid)),
        None,
    ) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::EPERM) => Ok(()),
        Err(e) => Err(e).step(|| format!("chown the pty slave to uid {uid} (process.user.uid)")),
    }
}

fn make_controlling(fd: BorrowedFd<'_>) -> Result<()> {
    tty::set_controlling(fd).step(|| "make the pty the controlling terminal".into())
}

/// A new session of its own, with the pty on fd 0 (if any) as its controlling terminal.
pub fn become_session_leader(terminal: bool) -> Result<()> {
    nix::unistd::setsid().step(|| "setsid".into())?;
    if terminal {
        make_controlling(std::io::stdin().as_fd())?;
    }
    Ok(())
}

fn open_confined(path: &str, flags: i32) -> std::io::Result<OwnedFd> {
    crate::syscall::openat2(
        libc::AT_FDCWD,
        Path::new(path),
        flags as u64,
        0,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// The slave must be a devpts char device (major 136-143), or nothing is bound anywhere.
fn verify_pty_slave(fd: &OwnedFd) -> Result<()> {
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).step(|| "stat the pty slave".into())?;
    let major = libc::major(st.st_rdev);
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR
        || !(DEVPTS_MAJOR_MIN..=DEVPTS_MAJOR_MAX).contains(&major)
    {
        return Err(state("the pty slave is not a devpts character device"));
    }
    Ok(())
}

pub fn set_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<()> {
    tty::set_window_size(fd, rows, cols)
        .step(|| "set the terminal size (process.consoleSize)".into())
}

/// Send the master to `--console-socket` as runc does: one message whose data is a name and
/// whose SCM_RIGHTS carries the fd (conmon and containerd-shim read only the fd).
pub fn send_to_console_socket(path: &Path, master: &OwnedFd) -> Result<()> {
    let step = || format!("send the pty master to --console-socket {}", path.display());
    let sock = UnixStream::connect(path).step(step)?;
    send_fd(&sock, b"/dev/ptmx", master.as_raw_fd()).step(step)
}

pub fn send_fd(sock: &UnixStream, data: &[u8], fd: RawFd) -> std::io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(data)],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .map(|_| ())
    .map_err(std::io::Error::from)
}

pub fn recv_fd(sock: &UnixStream) -> std::io::Result<OwnedFd> {
    let mut buf = [0u8; 64];
    let (_, fds) = crate::syscall::scm::recv_with_fds(sock.as_fd(), &mut buf)?;
    fds.into_iter()
        .next()
        .ok_or_else(|| std::io::Error::other("no fd in message"))
}

/// Foreground terminal (`run`/`exec -t` without --console-socket): the caller's terminal goes
/// raw for the duration and is restored on drop.
pub struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    pub fn enter() -> RawMode {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let stdin = std::io::stdin();
            let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, t);
        }
    }
}

/// Copy the caller's terminal size onto the pty (initially and on SIGWINCH).
/// The caller's terminal size (rows, cols), when stdin is a terminal: a foreground pty gets it
/// before the container's program runs, or `stty size` there could read 0 0.
pub fn stdin_size() -> Option<(u16, u16)> {
    tty::window_size(std::io::stdin().as_fd())
        .ok()
        .filter(|&(rows, cols)| rows > 0 && cols > 0)
}

pub fn copy_size_from_stdin(master: BorrowedFd<'_>) {
    if let Ok((rows, cols)) = tty::window_size(std::io::stdin().as_fd()) {
        let _ = tty::set_window_size(master, rows, cols);
    }
}

/// Move bytes one way; returns false at EOF or on error.
pub fn pump(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from.as_raw_fd(), &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => write_all(to, &buf[..n]).is_ok(),
    }
}

fn write_all(to: BorrowedFd<'_>, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(to, data) {
            Ok(0) => return Err(nix::errno::Errno::EIO),
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
