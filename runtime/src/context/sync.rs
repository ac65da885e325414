//! The one channel between vsrun and the container init: a socketpair carrying small framed
//! messages. The init's end is close-on-exec, so a successful execve reads as EOF.

use crate::error::{Error, Result, StepExt};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

#[derive(Debug)]
pub enum Msg {
    /// parent → init: id maps are written, oom_score_adj is set; go on. The payload is the
    /// container state JSON the init hands to its hooks (empty when there are none).
    Go(Vec<u8>),
    /// init → parent: mounts are done; run the prestart and createRuntime hooks, then Go.
    Hooks,
    /// init → parent: everything up to exec is done (the init now waits for start, or execs).
    Ready,
    /// init → parent: a step failed; the text is the whole error line.
    Error(String),
    /// init → parent: the pty master it allocated inside the container (SCM_RIGHTS).
    Pty(std::os::fd::OwnedFd),
    /// init → parent: the SCMP_ACT_NOTIFY listener, for the seccomp agent (SCM_RIGHTS).
    SeccompListener(std::os::fd::OwnedFd),
    /// init → parent, instead of Ready, when the pid namespace is joined: the process that
    /// will exec (a child of vsrun's, by CLONE_PARENT) has this pid; the init exits next.
    Handover(i32),
}

const GO: u8 = 1;
const READY: u8 = 2;
const ERROR: u8 = 3;
const PTY: u8 = 4;
const HOOKS: u8 = 5;
const SECCOMP_LISTENER: u8 = 6;
const HANDOVER: u8 = 7;

/// "ready" and "handover" are written with write(2) from a stack buffer: a seccomp filter may
/// already be loaded, where std's send(MSG_NOSIGNAL) or an allocation could be refused.
pub fn send_ready(sock: &UnixStream) -> Result<()> {
    write_fixed(sock, &[READY, 0, 0, 0, 0]).step(|| "report ready to vsrun".into())
}

/// Handover(pid): see `send_ready`.
pub fn send_handover(sock: &UnixStream, pid: i32) -> Result<()> {
    write_fixed(sock, &handover_bytes(pid)).step(|| "report the container process".into())
}

fn handover_bytes(pid: i32) -> [u8; 9] {
    let mut b = [HANDOVER, 4, 0, 0, 0, 0, 0, 0, 0];
    b[5..].copy_from_slice(&pid.to_le_bytes());
    b
}

fn write_fixed(sock: &UnixStream, msg: &[u8]) -> std::io::Result<()> {
    let n = nix::unistd::write(sock, msg)?;
    if n != msg.len() {
        return Err(std::io::Error::other("short write on the sync socket"));
    }
    Ok(())
}

pub fn pair() -> Result<(UnixStream, UnixStream)> {
    UnixStream::pair().step(|| "socketpair for the init".into())
}

pub fn send(sock: &mut UnixStream, msg: &Msg) -> Result<()> {
    let (tag, body): (u8, &[u8]) = match msg {
        Msg::Go(state) => (GO, state.as_slice()),
        Msg::Hooks => (HOOKS, b""),
        Msg::Ready => (READY, b""),
        Msg::Handover(pid) => {
            return sock
                .write_all(&handover_bytes(*pid))
                .step(|| "write to the init's sync socket".into())
        }
        Msg::Error(s) => (ERROR, s.as_bytes()),
        Msg::Pty(fd) => {
            let head = [PTY, 0, 0, 0, 0];
            return crate::terminal::send_fd(sock, &head, std::os::fd::AsRawFd::as_raw_fd(fd))
                .step(|| "send the pty master to vsrun".into());
        }
        Msg::SeccompListener(fd) => {
            let head = [SECCOMP_LISTENER, 0, 0, 0, 0];
            return crate::terminal::send_fd(sock, &head, std::os::fd::AsRawFd::as_raw_fd(fd))
                .step(|| "send the seccomp listener to vsrun".into());
        }
    };
    let mut buf = Vec::with_capacity(5 + body.len());
    buf.push(tag);
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(body);
    sock.write_all(&buf)
        .step(|| "write to the init's sync socket".into())
}

/// Ok(None) on EOF: the peer exited or (for the init) exec'd.
pub fn recv(sock: &mut UnixStream) -> Result<Option<Msg>> {
    let mut head = [0u8; 5];
    let mut fd = None;
    match read_head(sock, &mut head, &mut fd) {
        Ok(false) => return Ok(None),
        Ok(true) => {}
        Err(e) => return Err(e).step(|| "read from the init's sync socket".into()),
    }
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len.min(1 << 16)];
    sock.read_exact(&mut body)
        .step(|| "read from the init's sync socket".into())?;
    match head[0] {
        GO => Ok(Some(Msg::Go(body))),
        HOOKS => Ok(Some(Msg::Hooks)),
        READY => Ok(Some(Msg::Ready)),
        HANDOVER if body.len() == 4 => Ok(Some(Msg::Handover(i32::from_le_bytes([
            body[0], body[1], body[2], body[3],
        ])))),
        ERROR => Ok(Some(Msg::Error(
            String::from_utf8_lossy(&body).into_owned(),
        ))),
        PTY => fd
            .map(|fd| Some(Msg::Pty(fd)))
            .ok_or_else(|| Error::Child("sync socket: pty message without an fd".into())),
        SECCOMP_LISTENER => fd.map(|fd| Some(Msg::SeccompListener(fd))).ok_or_else(|| {
            Error::Child("sync socket: seccomp listener message without an fd".into())
        }),
        t => Err(Error::Child(format!("sync socket: unknown message {t}"))),
    }
}

/// Fill `buf` with recvmsg, so an fd sent with the message (SCM_RIGHTS) is received too;
/// Ok(false) if EOF came first.
fn read_head(
    sock: &mut UnixStream,
    buf: &mut [u8],
    fd: &mut Option<std::os::fd::OwnedFd>,
) -> std::io::Result<bool> {
    use std::os::fd::AsFd;
    let mut off = 0;
    while off < buf.len() {
        let (n, fds) = match crate::syscall::scm::recv_with_fds(sock.as_fd(), &mut buf[off..]) {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => return Ok(false),
            Err(e) => return Err(e),
        };
        for f in fds {
            fd.get_or_insert(f);
        }
        if n == 0 {
            return Ok(false);
        }
        off += n;
    }
    Ok(true)
}
