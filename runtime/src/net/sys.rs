//! getifaddrs(3), the one libc call bound-IP mode needs besides bpf(2) (`crate::bpf`), through
//! nix's safe iterator.

use std::io;
use std::net::IpAddr;

/// Every address assigned to an interface of the calling thread's network namespace.
pub fn local_addrs() -> io::Result<Vec<IpAddr>> {
    let list = nix::ifaddrs::getifaddrs()?;
    let addr_of = |a: nix::sys::socket::SockaddrStorage| {
        a.as_sockaddr_in()
            .map(|s| IpAddr::V4(s.ip()))
            .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
    };
    Ok(list.filter_map(|i| i.address.and_then(addr_of)).collect())
}
