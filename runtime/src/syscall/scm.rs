//! SCM_RIGHTS (the sync socket, --console-socket peers, context/pidns_proc.rs): recvmsg through
//! nix, then ownership of the fds the kernel installed, which nix hands back as bare numbers;
//! sendmsg of one fd.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// recvmsg(2) into `buf` with room for one SCM_RIGHTS fd (every message vsrun exchanges
/// carries at most one), received close-on-exec. Returns the byte count and the fds, owned.
pub fn recv_with_fds(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(list) = c {
            // SAFETY: the kernel installed these fds in this process for this message;
            // nothing else knows their numbers yet.
            fds.extend(list.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
        }
    }
    Ok((msg.bytes, fds))
}

/// sendmsg(2) of `buf` with `fd` (if any) as SCM_RIGHTS.
pub fn send_with_fd(
    sock: BorrowedFd<'_>,
    buf: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = fd.map(|f| [f.as_raw_fd()]);
    let cmsgs: Vec<ControlMessage<'_>> = fds.iter().map(|f| ControlMessage::ScmRights(f)).collect();
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[io::IoSlice::new(buf)],
        &cmsgs,
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}
