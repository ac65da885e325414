//! Terminal ioctls (terminal.rs): unlock and open the pty peer, controlling terminal, window
//! size. nix 0.29 has no safe form of TIOCGPTPEER, TIOCSCTTY or TIOC[GS]WINSZ.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

fn ok(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// TIOCSPTLCK with 0: unlock the slave of a pty master.
pub fn unlock_pty(master: BorrowedFd<'_>) -> io::Result<()> {
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int, valid for the call.
    ok(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) }).map(|_| ())
}

/// TIOCGPTPEER: open the slave through the master itself, with open flags `flags`.
pub fn pty_peer(master: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd.
    let fd = ok(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) })?;
    // SAFETY: fd is a fresh descriptor from the kernel that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// TIOCSCTTY with 0: make the terminal the caller's controlling terminal (no stealing).
pub fn set_controlling(tty: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int by value.
    ok(unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSCTTY, 0) }).map(|_| ())
}

/// TIOCGWINSZ: (rows, cols) of a terminal.
pub fn window_size(tty: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize struct, valid for the call.
    ok(unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) })?;
    Ok((ws.ws_row, ws.ws_col))
}

/// TIOCSWINSZ: set (rows, cols) of a terminal.
pub fn set_window_size(tty: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct, valid for the call.
    ok(unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(|_| ())
}
