//! The one channel between vsrun and the container init: a socketpair carrying small framed
//! messages. The init's end is close-on-exec, so a successful execve reads as EOF.

use crate::error::{Error, Result, StepExt};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    /// parent → init: id maps are written, oom_score_adj is set; go on.
    Go,
    /// init → parent: everything up to exec is done (the init now waits for start, or execs).
    Ready,
    /// init → parent: a step failed; the text is the whole error line.
    Error(String),
}

const GO: u8 = 1;
const READY: u8 = 2;
const ERROR: u8 = 3;

pub fn pair() -> Result<(UnixStream, UnixStream)> {
    UnixStream::pair().step(|| "socketpair for the init".into())
}

pub fn send(sock: &mut UnixStream, msg: &Msg) -> Result<()> {
    let (tag, body): (u8, &[u8]) = match msg {
        Msg::Go => (GO, b""),
        Msg::Ready => (READY, b""),
        Msg::Error(s) => (ERROR, s.as_bytes()),
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
    match read_full(sock, &mut head) {
        Ok(false) => return Ok(None),
        Ok(true) => {}
        Err(e) => return Err(e).step(|| "read from the init's sync socket".into()),
    }
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len.min(1 << 16)];
    sock.read_exact(&mut body)
        .step(|| "read from the init's sync socket".into())?;
    match head[0] {
        GO => Ok(Some(Msg::Go)),
        READY => Ok(Some(Msg::Ready)),
        ERROR => Ok(Some(Msg::Error(
            String::from_utf8_lossy(&body).into_owned(),
        ))),
        t => Err(Error::Child(format!("sync socket: unknown message {t}"))),
    }
}

/// Fill `buf`; Ok(false) if EOF came first.
fn read_full(sock: &mut UnixStream, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut off = 0;
    while off < buf.len() {
        match sock.read(&mut buf[off..]) {
            Ok(0) => return Ok(false),
            Ok(n) => off += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
