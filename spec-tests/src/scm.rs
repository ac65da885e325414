//! SCM_RIGHTS on the receiving end, as a console socket or a seccomp agent sees it: vsrun
//! sends the pty master (`--console-socket`) or the seccomp listener with a payload.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// One recvmsg(2) of at most `max` bytes: the bytes and every fd its SCM_RIGHTS messages
/// carried (O_CLOEXEC).
pub fn recv_with_fds(s: &UnixStream, max: usize) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut data = vec![0u8; max];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for one cmsg with up to 4 fds.
    let mut cbuf = [0u64; 16];
    let mut fds = Vec::new();
    // SAFETY: a zeroed msghdr pointing at live buffers, filled by recvmsg; the cmsg walk stays
    // within the control length the kernel returned, and each fd read is now ours.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        let n = libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let payload = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let p = libc::CMSG_DATA(c) as *const RawFd;
                for i in 0..payload / std::mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(p.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        n as usize
    };
    data.truncate(n);
    Ok((data, fds))
}

/// The first fd of one message (the pty master on a console socket), None if none came.
pub fn recv_fd(s: &UnixStream) -> Option<OwnedFd> {
    recv_with_fds(s, 256).ok()?.1.into_iter().next()
}
