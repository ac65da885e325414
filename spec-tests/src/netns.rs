//! "The host" of a network test: a network namespace the test makes for its own thread. vsrun
//! started from that thread shares it (a config without a network namespace), and nothing a
//! test sends leaves it.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;

/// The test thread's private network: back to the original namespace on drop.
pub struct PrivateNet {
    home: File,
}

impl PrivateNet {
    /// A new network namespace for this thread, with lo up and each of `lo_addrs` (/32) on it.
    pub fn enter(lo_addrs: &[&str]) -> PrivateNet {
        let home = File::open("/proc/thread-self/ns/net").expect("own netns");
        // SAFETY: unshare(2) with a flag only; it affects this test thread alone.
        let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            r,
            0,
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        );
        let net = PrivateNet { home };
        ip("link set lo up");
        for a in lo_addrs {
            ip(&format!("addr add {a}/32 dev lo"));
        }
        net
    }
}

impl Drop for PrivateNet {
    fn drop(&mut self) {
        // SAFETY: setns(2) on a namespace fd this struct owns.
        unsafe { libc::setns(self.home.as_raw_fd(), libc::CLONE_NEWNET) };
    }
}

/// `ip ARGS` (space-separated), which must succeed.
pub fn ip(args: &str) {
    let st = Command::new("ip")
        .args(args.split(' '))
        .status()
        .expect("run ip");
    assert!(st.success(), "ip {args}: {st}");
}
