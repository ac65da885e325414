//! getifaddrs(3), the one libc call bound-IP mode needs besides bpf(2) (`crate::bpf`). Each
//! `unsafe` block says why it is sound; everything above this file is safe.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every address assigned to an interface of the calling thread's network namespace.
pub fn local_addrs() -> io::Result<Vec<IpAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned and has not been freed; its
        // ifa_addr, when non-null, points to a sockaddr whose family tells its real type.
        unsafe {
            let a = (*cur).ifa_addr;
            if !a.is_null() {
                match (*a).sa_family as i32 {
                    libc::AF_INET => {
                        let s = &*(a as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(s.sin_addr.s_addr.to_ne_bytes())));
                    }
                    libc::AF_INET6 => {
                        let s = &*(a as *const libc::sockaddr_in6);
                        out.push(IpAddr::V6(Ipv6Addr::from(s.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed exactly once; no references remain.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}
