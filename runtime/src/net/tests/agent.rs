//! The agent: this test binary re-executed into `agent_main`, inside a context's cgroup (and,
//! when contained, its own mount and cgroup namespaces). It takes one command per line on
//! stdin and answers `@ ok ...` or `@ err <errno>` on stdout.

use super::{cgroup2, kill, Hook, AGENT_ENV, IO_TIMEOUT};
use crate::bpf;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

pub(super) struct Agent {
    child: Option<Child>,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
}

impl Agent {
    /// Start an agent in cgroup `dir`. With `contain`, it also gets what a container has: a
    /// private mount namespace and a cgroup namespace rooted at `dir`, with the v2 hierarchy
    /// mounted read-only in place of the host's.
    #[allow(unsafe_code)]
    pub(super) fn spawn(dir: Option<&Path>, contain: bool) -> Agent {
        let procs = dir.map(|d| {
            File::options()
                .write(true)
                .open(d.join("cgroup.procs"))
                .expect("open cgroup.procs")
        });
        let mount_at = cgroup2::layout().map(|l| match l {
            cgroup2::Layout::Unified(m) | cgroup2::Layout::Hybrid(m) => m,
        });
        let target = CString::new(
            mount_at
                .unwrap_or_default()
                .into_os_string()
                .into_encoded_bytes(),
        )
        .expect("path");
        let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
        cmd.args([
            "--exact",
            "net::tests::agent::agent_main",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(AGENT_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
        // SAFETY: the closure runs between fork and exec and only makes syscalls on values
        // prepared before the fork (an open file, C strings); it allocates nothing. std's
        // pre_exec is unsafe by definition: the one `unsafe` of the unit tests outside the
        // seccomp tests (they test a syscall filter with raw syscalls).
        unsafe {
            cmd.pre_exec(move || enter(procs.as_ref(), contain, &target));
        }
        let mut child = cmd.spawn().expect("spawn agent");
        let stdin = child.stdin.take().expect("stdin");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Agent {
            child: Some(child),
            stdin,
            out,
        }
    }

    /// Send one command; Ok(fields after "ok") or Err(errno).
    pub(super) fn cmd(&mut self, line: &str) -> Result<Vec<String>, i32> {
        writeln!(self.stdin, "{line}").expect("agent stdin");
        self.stdin.flush().expect("flush");
        loop {
            let mut l = String::new();
            let n = self.out.read_line(&mut l).expect("agent stdout");
            assert!(n > 0, "agent exited during {line:?}");
            // libtest's "test ... " prefix may share the line with the first reply.
            if let Some(rest) = l.trim_end().rsplit_once("@ ").map(|(_, r)| r) {
                let mut f = rest.split(' ').map(String::from);
                return match f.next().as_deref() {
                    Some("ok") => Ok(f.collect()),
                    Some("err") => Err(f.next().and_then(|e| e.parse().ok()).unwrap_or(-1)),
                    other => panic!("agent: bad reply {other:?} to {line:?}"),
                };
            }
        }
    }

    pub(super) fn ok(&mut self, line: &str) -> Vec<String> {
        self.cmd(line)
            .unwrap_or_else(|e| panic!("{line:?}: errno {e} ({})", errno_name(e)))
    }

    pub(super) fn errno(&mut self, line: &str) -> i32 {
        match self.cmd(line) {
            Ok(v) => panic!("{line:?}: expected an error, got ok {v:?}"),
            Err(e) => e,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            kill(c);
        }
    }
}

/// In the agent between fork and exec: join the cgroup through `procs`, then with `contain`
/// a private mount and cgroup namespace with cgroup2 read-only at `target`. Only syscalls on
/// values prepared before the fork: nix passes &CStr arguments through without allocating.
fn enter(procs: Option<&File>, contain: bool, target: &CStr) -> std::io::Result<()> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    if let Some(f) = procs {
        if nix::unistd::write(f, b"0")? != 1 {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
    }
    if !contain {
        return Ok(());
    }
    let none = None::<&CStr>;
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWCGROUP)?;
    mount(
        none,
        c"/",
        none,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        none,
    )?;
    // A tmpfs first: the same cgroup2 superblock cannot be mounted straight onto its own
    // mount root (EBUSY).
    mount(
        Some(c"tmpfs"),
        target,
        Some(c"tmpfs"),
        MsFlags::empty(),
        none,
    )?;
    let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some(c"cgroup2"), target, Some(c"cgroup2"), ro, none)?;
    Ok(())
}

fn errno_name(e: i32) -> String {
    std::io::Error::from_raw_os_error(e).to_string()
}

enum Sock {
    Listener(TcpListener),
    #[allow(dead_code)] // kept open until the agent exits
    Stream(TcpStream),
    Udp(UdpSocket),
}

/// The agent: runs only when re-executed with VSRUN_BINDIP_AGENT set.
#[test]
fn agent_main() {
    if std::env::var_os(AGENT_ENV).is_none() {
        return;
    }
    let mut socks: Vec<Sock> = Vec::new();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = match agent_do(&mut socks, &words) {
            Ok(fields) => format!("@ ok {}", fields.join(" ")),
            Err(e) => format!("@ err {}", e.raw_os_error().unwrap_or(-1)),
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{reply}");
        let _ = out.flush();
    }
    std::process::exit(0);
}

fn addr(s: &str) -> std::io::Result<SocketAddr> {
    s.parse()
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))
}

fn slot(socks: &[Sock], s: &str) -> std::io::Result<usize> {
    s.parse::<usize>()
        .ok()
        .filter(|i| *i < socks.len())
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EBADF))
}

fn push(socks: &mut Vec<Sock>, s: Sock) -> String {
    socks.push(s);
    (socks.len() - 1).to_string()
}

fn udp_unbound(v6: bool) -> std::io::Result<UdpSocket> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let family = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let fd = socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    let s = UdpSocket::from(fd);
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// sendmsg(2) of one byte with a source address chosen through IP_PKTINFO / IPV6_PKTINFO.
fn sendmsg_pktinfo(
    s: &UdpSocket,
    src: std::net::IpAddr,
    dst: Option<SocketAddr>,
) -> std::io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, SockaddrStorage};
    use std::net::IpAddr;
    let v4;
    let v6;
    let cmsg = match src {
        IpAddr::V4(a) => {
            v4 = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            ControlMessage::Ipv4PacketInfo(&v4)
        }
        IpAddr::V6(a) => {
            v6 = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                ipi6_ifindex: 0,
            };
            ControlMessage::Ipv6PacketInfo(&v6)
        }
    };
    let to = dst.map(SockaddrStorage::from);
    let payload = [std::io::IoSlice::new(b"p")];
    sendmsg(
        s.as_raw_fd(),
        &payload,
        &[cmsg],
        MsgFlags::empty(),
        to.as_ref(),
    )?;
    Ok(())
}

pub(super) fn accept_timeout(l: &TcpListener) -> std::io::Result<(TcpStream, SocketAddr)> {
    l.set_nonblocking(true)?;
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        match l.accept() {
            Ok((s, a)) => {
                s.set_nonblocking(false)?;
                return Ok((s, a));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => return Err(e),
        }
    }
}

type Reply = std::io::Result<Vec<String>>;

fn arg<'a>(w: &[&'a str], i: usize) -> std::io::Result<&'a str> {
    w.get(i)
        .copied()
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))
}

fn agent_do(socks: &mut Vec<Sock>, w: &[&str]) -> Reply {
    match w.first().copied().unwrap_or("") {
        c if c.starts_with("tcp_") => tcp_do(socks, w),
        "udp_new4" | "udp_new6" => {
            let s = udp_unbound(w[0] == "udp_new6")?;
            Ok(vec![push(socks, Sock::Udp(s))])
        }
        "udp_bind" => {
            let s = UdpSocket::bind(addr(arg(w, 1)?)?)?;
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            let local = s.local_addr()?.to_string();
            Ok(vec![push(socks, Sock::Udp(s)), local])
        }
        c if c.starts_with("udp_") => udp_do(socks, w),
        "drop_caps" => drop_caps(),
        "detach" => detach(w),
        "write" => {
            std::fs::write(arg(w, 1)?, arg(w, 2)?)?;
            Ok(vec![])
        }
        "read" => {
            let mut s = String::new();
            File::open(arg(w, 1)?)?.read_to_string(&mut s)?;
            Ok(vec![s.trim().replace(['\n', ' '], ";")])
        }
        "mount_cgroup2" => {
            nix::mount::mount(
                Some("cgroup2"),
                arg(w, 1)?,
                Some("cgroup2"),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            )
            .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
            Ok(vec![])
        }
        "bench_tcp" => bench_tcp(w),
        "bench_udp" => bench_udp(w),
        _ => Err(std::io::Error::from_raw_os_error(libc::ENOSYS)),
    }
}

fn tcp_do(socks: &mut Vec<Sock>, w: &[&str]) -> Reply {
    Ok(match w[0] {
        "tcp_listen" => {
            let l = TcpListener::bind(addr(arg(w, 1)?)?)?;
            let local = l.local_addr()?.to_string();
            vec![push(socks, Sock::Listener(l)), local]
        }
        "tcp_accept" => {
            let i = slot(socks, arg(w, 1)?)?;
            let Sock::Listener(l) = &socks[i] else {
                return Err(std::io::Error::from_raw_os_error(libc::ENOTSOCK));
            };
            let (s, peer) = accept_timeout(l)?;
            let local = s.local_addr()?.to_string();
            vec![push(socks, Sock::Stream(s)), peer.to_string(), local]
        }
        "tcp_connect" => {
            let s = TcpStream::connect_timeout(&addr(arg(w, 1)?)?, IO_TIMEOUT)?;
            let (local, peer) = (s.local_addr()?.to_string(), s.peer_addr()?.to_string());
            vec![push(socks, Sock::Stream(s)), local, peer]
        }
        // listen(2) on a socket that was never bound: the kernel auto-binds it to the wildcard.
        "tcp_listen_unbound" => {
            use nix::sys::socket::{listen, socket, AddressFamily, Backlog, SockFlag, SockType};
            let fd = socket(
                AddressFamily::Inet,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )?;
            listen(&fd, Backlog::new(16)?)?;
            let l = TcpListener::from(fd);
            let local = l.local_addr()?.to_string();
            vec![push(socks, Sock::Listener(l)), local]
        }
        _ => return Err(std::io::Error::from_raw_os_error(libc::ENOSYS)),
    })
}

/// The commands on an existing UDP socket (SLOT first).
fn udp_do(socks: &[Sock], w: &[&str]) -> Reply {
    let i = slot(socks, arg(w, 1)?)?;
    let Sock::Udp(s) = &socks[i] else {
        return Err(std::io::Error::from_raw_os_error(libc::ENOTSOCK));
    };
    let mut b = [0u8; 64];
    Ok(match w[0] {
        // SLOT SRC [DST]: sendmsg naming SRC in IP_PKTINFO / IPV6_PKTINFO.
        "udp_pktinfo" => {
            let src: std::net::IpAddr = arg(w, 2)?
                .parse()
                .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
            let dst = w.get(3).map(|d| addr(d)).transpose()?;
            sendmsg_pktinfo(s, src, dst)?;
            vec![]
        }
        "udp_sendto" => {
            s.send_to(b"x", addr(arg(w, 2)?)?)?;
            vec![s.local_addr()?.to_string()]
        }
        "udp_connect" => {
            s.connect(addr(arg(w, 2)?)?)?;
            vec![s.local_addr()?.to_string()]
        }
        "udp_send" => {
            s.send(b"x")?;
            vec![]
        }
        "udp_recv" => {
            let (_, from) = s.recv_from(&mut b)?;
            vec![from.to_string()]
        }
        "udp_echo" => {
            let (n, from) = s.recv_from(&mut b)?;
            s.send_to(&b[..n], from)?;
            vec![from.to_string()]
        }
        _ => return Err(std::io::Error::from_raw_os_error(libc::ENOSYS)),
    })
}

fn drop_caps() -> Reply {
    use caps::Capability::*;
    // Docker's default set (a superset of runc spec's): none of them may detach.
    let keep: caps::CapsHashSet = [
        CAP_CHOWN,
        CAP_DAC_OVERRIDE,
        CAP_FSETID,
        CAP_FOWNER,
        CAP_MKNOD,
        CAP_NET_RAW,
        CAP_SETGID,
        CAP_SETUID,
        CAP_SETFCAP,
        CAP_SETPCAP,
        CAP_NET_BIND_SERVICE,
        CAP_SYS_CHROOT,
        CAP_KILL,
        CAP_AUDIT_WRITE,
    ]
    .into_iter()
    .collect();
    for set in [caps::CapSet::Effective, caps::CapSet::Permitted] {
        caps::set(None, set, &keep).map_err(std::io::Error::other)?;
    }
    caps::clear(None, caps::CapSet::Inheritable).map_err(std::io::Error::other)?;
    Ok(vec![])
}

/// Try every way to get rid of the programs on cgroup DIR; report each errno: list the
/// attached ids, get an fd for program ID, detach without a program fd.
fn detach(w: &[&str]) -> Reply {
    let d = File::open(arg(w, 1)?)?;
    let id: u32 = arg(w, 2)?.parse().unwrap_or(0);
    let code = |r: std::io::Result<()>| match r {
        Ok(()) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    };
    let query = code(bpf::prog_query(d.as_fd(), Hook::Bind4 as u32).map(|_| ()));
    let by_id = code(bpf::prog_get_fd_by_id(id).map(|_| ()));
    // attach_bpf_fd is not a program: the kernel's "detach the one program" form.
    let blind = code(bpf::prog_detach(d.as_fd(), d.as_fd(), Hook::Bind4 as u32));
    Ok(vec![
        query.to_string(),
        by_id.to_string(),
        blind.to_string(),
    ])
}

fn bench_tcp(w: &[&str]) -> Reply {
    let n: u32 = arg(w, 1)?.parse().unwrap_or(1000);
    let l = TcpListener::bind(addr(arg(w, 2)?)?)?;
    let to = addr(arg(w, 3)?)?;
    let t = Instant::now();
    for _ in 0..n {
        let mut c = TcpStream::connect(to)?;
        let (mut s, _) = l.accept()?;
        let mut b = [0u8; 1];
        c.write_all(b"x")?;
        s.read_exact(&mut b)?;
        s.write_all(b"y")?;
        c.read_exact(&mut b)?;
        // RST instead of FIN: no TIME_WAIT pile-up over thousands of iterations.
        nix::sys::socket::setsockopt(
            &c,
            nix::sys::socket::sockopt::Linger,
            &libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        )
        .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
    }
    Ok(vec![t.elapsed().as_nanos().to_string()])
}

fn bench_udp(w: &[&str]) -> Reply {
    let n: u32 = arg(w, 1)?.parse().unwrap_or(1000);
    let srv = UdpSocket::bind(addr(arg(w, 2)?)?)?;
    let to = addr(arg(w, 3)?)?;
    let cli = udp_unbound(to.is_ipv6())?;
    srv.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut b = [0u8; 16];
    let t = Instant::now();
    for _ in 0..n {
        cli.send_to(b"x", to)?;
        let (_, from) = srv.recv_from(&mut b)?;
        srv.send_to(b"y", from)?;
        cli.recv_from(&mut b)?;
    }
    Ok(vec![t.elapsed().as_nanos().to_string()])
}
