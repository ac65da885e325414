//! Kernel tests of bound-IP mode (root, real kernel; skipped with a note otherwise).
//!
//! Each test builds its own world and touches nothing of the host's: the test thread moves into
//! a new network namespace (lo up, 127.x addresses on lo, ULA addresses on a veth pair — this
//! kernel has no dummy driver), and every cgroup it makes is below
//! `<v2 mount>/vsrun-test-<pid>-<n>/`. A "context" is an agent process — this test binary
//! re-executed into `agent_main` — that enters its cgroup before exec (pre_exec writes "0" to
//! cgroup.procs), so every socket it creates is hooked. The agent takes one command per line on
//! stdin and answers `@ ok ...` or `@ err <errno>` on stdout.

use super::bind_ip::{self, Plan, ANNOTATION};
use super::cgroup2::{self, Hook};
use super::sys;
use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const AGENT_ENV: &str = "VSRUN_BINDIP_AGENT";
const IO_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// The world: a private network namespace and a private cgroup base.

struct World {
    home_netns: File,
    base: PathBuf,
    dirs: Vec<PathBuf>,
}

fn sh(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(st.success(), "{args:?}: {st}");
}

/// The test's network: A = 127.1.0.2 / fd00:5::2, B = 127.1.0.3 / fd00:5::3, C (IPv4 only) =
/// 127.1.0.4, and the "host peer" 127.0.0.9 / fd00:5::9.
fn world() -> Option<World> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: bind-ip kernel tests need root");
        return None;
    }
    let Some(layout) = cgroup2::layout() else {
        eprintln!("skipped: no cgroup v2 mount");
        return None;
    };
    let home_netns = File::open("/proc/thread-self/ns/net").expect("own netns");
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    sh(&["ip", "link", "set", "lo", "up"]);
    for a in ["127.1.0.2", "127.1.0.3", "127.1.0.4", "127.0.0.9"] {
        sh(&["ip", "addr", "add", &format!("{a}/32"), "dev", "lo"]);
    }
    sh(&[
        "ip", "link", "add", "vb0", "type", "veth", "peer", "name", "vb1",
    ]);
    sh(&["ip", "link", "set", "vb0", "up"]);
    sh(&["ip", "link", "set", "vb1", "up"]);
    for a in ["fd00:5::2", "fd00:5::3", "fd00:5::9"] {
        sh(&[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("{a}/64"),
            "dev",
            "vb0",
            "nodad",
        ]);
    }
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let mount = match layout {
        cgroup2::Layout::Unified(m) | cgroup2::Layout::Hybrid(m) => m,
    };
    let base = mount.join(format!(
        "vsrun-test-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&base).expect("test cgroup base");
    Some(World {
        home_netns,
        base,
        dirs: Vec::new(),
    })
}

impl Drop for World {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = bind_ip::remove_at(d, true);
            let _ = std::fs::remove_dir(d);
        }
        let _ = cgroup2::remove_dir(&self.base);
        let _ = crate::syscall::setns(self.home_netns.as_raw_fd(), libc::CLONE_NEWNET);
    }
}

fn plan_for(addrs: &str) -> Plan {
    let ann = HashMap::from([(ANNOTATION.to_string(), addrs.to_string())]);
    bind_ip::plan(&ann, bind_ip::NetStack::Current)
        .expect("plan")
        .expect("annotation present")
}

impl World {
    /// A bound context `name` with `addrs`; returns its cgroup dir (an agent is started in it).
    fn context(&mut self, name: &str, addrs: &str) -> (Agent, PathBuf) {
        let mut plan = plan_for(addrs);
        plan.set_cgroup_base(self.base.clone());
        let dir = plan.cgroup_dir(name).expect("dir");
        self.dirs.push(dir.clone());
        // Attach with a placeholder process (this test's own pid cannot be used: the test
        // process must stay outside), then start the agent straight into the directory.
        let holder = Command::new("sleep").arg("30").spawn().expect("sleep");
        bind_ip::attach(&plan, name, holder.id() as i32).expect("attach");
        let agent = Agent::spawn(Some(&dir), false);
        kill(holder);
        (agent, dir)
    }

    /// An unbound cgroup (no programs), for comparisons.
    fn plain(&mut self, name: &str) -> (Agent, PathBuf) {
        let dir = self.base.join(name);
        std::fs::create_dir(&dir).expect("plain cgroup");
        self.dirs.push(dir.clone());
        (Agent::spawn(Some(&dir), false), dir)
    }
}

fn kill(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

// ---------------------------------------------------------------------------------------------
// Agents

struct Agent {
    child: Option<Child>,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
}

impl Agent {
    /// Start an agent in cgroup `dir`. With `contain`, it also gets what a container has: a
    /// private mount namespace and a cgroup namespace rooted at `dir`, with the v2 hierarchy
    /// mounted read-only in place of the host's.
    fn spawn(dir: Option<&Path>, contain: bool) -> Agent {
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
            "net::tests::agent_main",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(AGENT_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
        let procs_fd = procs.as_ref().map(|f| f.as_raw_fd());
        // SAFETY: the closure runs between fork and exec and only makes raw syscalls on values
        // prepared before the fork (an open fd, C strings); it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = procs_fd {
                    if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if contain {
                    if libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWCGROUP) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    // A tmpfs first: the same cgroup2 superblock cannot be mounted straight
                    // onto its own mount root (EBUSY).
                    if libc::mount(
                        c"tmpfs".as_ptr(),
                        target.as_ptr(),
                        c"tmpfs".as_ptr(),
                        0,
                        std::ptr::null(),
                    ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::mount(
                        c"cgroup2".as_ptr(),
                        target.as_ptr(),
                        c"cgroup2".as_ptr(),
                        libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                        std::ptr::null(),
                    ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn agent");
        let stdin = child.stdin.take().expect("stdin");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        drop(procs);
        Agent {
            child: Some(child),
            stdin,
            out,
        }
    }

    /// Send one command; Ok(fields after "ok") or Err(errno).
    fn cmd(&mut self, line: &str) -> Result<Vec<String>, i32> {
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

    fn ok(&mut self, line: &str) -> Vec<String> {
        self.cmd(line)
            .unwrap_or_else(|e| panic!("{line:?}: errno {e} ({})", errno_name(e)))
    }

    fn errno(&mut self, line: &str) -> i32 {
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
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: plain socket(2); the new fd is owned by the OwnedFd right away.
    let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket nothing else owns.
    let s = UdpSocket::from(unsafe { OwnedFd::from_raw_fd(fd) });
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// sendmsg(2) of one byte with a source address chosen through IP_PKTINFO / IPV6_PKTINFO.
fn sendmsg_pktinfo(
    s: &UdpSocket,
    src: std::net::IpAddr,
    dst: Option<SocketAddr>,
) -> std::io::Result<()> {
    use std::net::IpAddr;
    // SAFETY: all-zero is valid for these plain C structs.
    let mut name: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let name_len = match dst {
        None => 0,
        Some(SocketAddr::V4(d)) => {
            // SAFETY: sockaddr_in fits in sockaddr_in6's storage; both are plain C structs.
            let n =
                unsafe { &mut *(&mut name as *mut libc::sockaddr_in6).cast::<libc::sockaddr_in>() };
            n.sin_family = libc::AF_INET as u16;
            n.sin_port = d.port().to_be();
            n.sin_addr.s_addr = u32::from_ne_bytes(d.ip().octets());
            std::mem::size_of::<libc::sockaddr_in>()
        }
        Some(SocketAddr::V6(d)) => {
            name.sin6_family = libc::AF_INET6 as u16;
            name.sin6_port = d.port().to_be();
            name.sin6_addr.s6_addr = d.ip().octets();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    let (level, ty, data): (i32, i32, Vec<u8>) = match src {
        IpAddr::V4(a) => {
            let mut d = vec![0u8; std::mem::size_of::<libc::in_pktinfo>()];
            d[4..8].copy_from_slice(&a.octets()); // ipi_spec_dst
            (libc::IPPROTO_IP, libc::IP_PKTINFO, d)
        }
        IpAddr::V6(a) => {
            let mut d = vec![0u8; std::mem::size_of::<libc::in6_pktinfo>()];
            d[..16].copy_from_slice(&a.octets()); // ipi6_addr
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, d)
        }
    };
    let mut cbuf = [0u64; 16];
    let payload = [b'p'];
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: 1,
    };
    // SAFETY: msghdr points at live local buffers (name, iov, cbuf) for the whole call; the
    // CMSG_* macros stay within cbuf, which is larger than CMSG_SPACE of either pktinfo.
    let r = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        if name_len > 0 {
            msg.msg_name = (&mut name as *mut libc::sockaddr_in6).cast();
            msg.msg_namelen = name_len as u32;
        }
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(data.len() as u32) as usize;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = level;
        (*c).cmsg_type = ty;
        (*c).cmsg_len = libc::CMSG_LEN(data.len() as u32) as usize;
        std::ptr::copy_nonoverlapping(data.as_ptr(), libc::CMSG_DATA(c), data.len());
        libc::sendmsg(s.as_raw_fd(), &msg, 0)
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn accept_timeout(l: &TcpListener) -> std::io::Result<(TcpStream, SocketAddr)> {
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

fn agent_do(socks: &mut Vec<Sock>, w: &[&str]) -> std::io::Result<Vec<String>> {
    let arg = |i: usize| {
        w.get(i)
            .copied()
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))
    };
    Ok(match w.first().copied().unwrap_or("") {
        "tcp_listen" => {
            let l = TcpListener::bind(addr(arg(1)?)?)?;
            let local = l.local_addr()?.to_string();
            vec![push(socks, Sock::Listener(l)), local]
        }
        "tcp_accept" => {
            let i = slot(socks, arg(1)?)?;
            let Sock::Listener(l) = &socks[i] else {
                return Err(std::io::Error::from_raw_os_error(libc::ENOTSOCK));
            };
            let (s, peer) = accept_timeout(l)?;
            let local = s.local_addr()?.to_string();
            vec![push(socks, Sock::Stream(s)), peer.to_string(), local]
        }
        "tcp_connect" => {
            let s = TcpStream::connect_timeout(&addr(arg(1)?)?, IO_TIMEOUT)?;
            let (local, peer) = (s.local_addr()?.to_string(), s.peer_addr()?.to_string());
            vec![push(socks, Sock::Stream(s)), local, peer]
        }
        // listen(2) on a socket that was never bound: the kernel auto-binds it to the wildcard.
        "tcp_listen_unbound" => {
            // SAFETY: plain socket(2)/listen(2); the fd is owned by the listener right away.
            let l = unsafe {
                let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let l = TcpListener::from(OwnedFd::from_raw_fd(fd));
                if libc::listen(fd, 16) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                l
            };
            let local = l.local_addr()?.to_string();
            vec![push(socks, Sock::Listener(l)), local]
        }
        "udp_bind" => {
            let s = UdpSocket::bind(addr(arg(1)?)?)?;
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            let local = s.local_addr()?.to_string();
            vec![push(socks, Sock::Udp(s)), local]
        }
        "udp_new4" | "udp_new6" => {
            let s = udp_unbound(w[0] == "udp_new6")?;
            vec![push(socks, Sock::Udp(s))]
        }
        // SLOT SRC [DST]: sendmsg naming SRC in IP_PKTINFO / IPV6_PKTINFO.
        "udp_pktinfo" => {
            let i = slot(socks, arg(1)?)?;
            let Sock::Udp(s) = &socks[i] else {
                return Err(std::io::Error::from_raw_os_error(libc::ENOTSOCK));
            };
            let src: std::net::IpAddr = arg(2)?
                .parse()
                .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
            let dst = w.get(3).map(|d| addr(d)).transpose()?;
            sendmsg_pktinfo(s, src, dst)?;
            vec![]
        }
        "udp_sendto" | "udp_connect" | "udp_send" | "udp_recv" | "udp_echo" => {
            let i = slot(socks, arg(1)?)?;
            let Sock::Udp(s) = &socks[i] else {
                return Err(std::io::Error::from_raw_os_error(libc::ENOTSOCK));
            };
            match w[0] {
                "udp_sendto" => {
                    s.send_to(b"x", addr(arg(2)?)?)?;
                    vec![s.local_addr()?.to_string()]
                }
                "udp_connect" => {
                    s.connect(addr(arg(2)?)?)?;
                    vec![s.local_addr()?.to_string()]
                }
                "udp_send" => {
                    s.send(b"x")?;
                    vec![]
                }
                "udp_recv" => {
                    let mut b = [0u8; 64];
                    let (_, from) = s.recv_from(&mut b)?;
                    vec![from.to_string()]
                }
                _ => {
                    let mut b = [0u8; 64];
                    let (n, from) = s.recv_from(&mut b)?;
                    s.send_to(&b[..n], from)?;
                    vec![from.to_string()]
                }
            }
        }
        "drop_caps" => {
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
            vec![]
        }
        // Try every way to get rid of the programs on cgroup DIR; report each errno: list the
        // attached ids, get an fd for program ID, detach without a program fd.
        "detach" => {
            let d = File::open(arg(1)?)?;
            let id: u32 = arg(2)?.parse().unwrap_or(0);
            let code = |r: std::io::Result<()>| match r {
                Ok(()) => 0,
                Err(e) => e.raw_os_error().unwrap_or(-1),
            };
            let query = code(sys::prog_query(d.as_fd(), Hook::Bind4 as u32).map(|_| ()));
            let by_id = code(sys::prog_get_fd_by_id(id).map(|_| ()));
            // attach_bpf_fd is not a program: the kernel's "detach the one program" form.
            let blind = code(sys::prog_detach(d.as_fd(), d.as_fd(), Hook::Bind4 as u32));
            vec![query.to_string(), by_id.to_string(), blind.to_string()]
        }
        "write" => {
            std::fs::write(arg(1)?, arg(2)?)?;
            vec![]
        }
        "read" => {
            let mut s = String::new();
            File::open(arg(1)?)?.read_to_string(&mut s)?;
            vec![s.trim().replace(['\n', ' '], ";")]
        }
        "mount_cgroup2" => {
            nix::mount::mount(
                Some("cgroup2"),
                arg(1)?,
                Some("cgroup2"),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            )
            .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
            vec![]
        }
        "bench_tcp" => {
            let n: u32 = arg(1)?.parse().unwrap_or(1000);
            let l = TcpListener::bind(addr(arg(2)?)?)?;
            let to = addr(arg(3)?)?;
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
            vec![t.elapsed().as_nanos().to_string()]
        }
        "bench_udp" => {
            let n: u32 = arg(1)?.parse().unwrap_or(1000);
            let srv = UdpSocket::bind(addr(arg(2)?)?)?;
            let to = addr(arg(3)?)?;
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
            vec![t.elapsed().as_nanos().to_string()]
        }
        _ => return Err(std::io::Error::from_raw_os_error(libc::ENOSYS)),
    })
}

// ---------------------------------------------------------------------------------------------
// Tests

fn ids_attached(dir: &Path) -> Vec<u32> {
    let d = File::open(dir).expect("open cgroup dir");
    Hook::ALL
        .iter()
        .flat_map(|h| sys::prog_query(d.as_fd(), *h as u32).expect("query"))
        .collect()
}

#[test]
fn programs_pass_the_verifier_for_every_family_mix() {
    let Some(_w) = world() else { return };
    for addrs in [
        "127.1.0.2,fd00:5::2",
        "127.1.0.2",
        "fd00:5::2",
        "127.1.0.2,127.1.0.3,fd00:5::3,fd00:5::2",
    ] {
        let p = plan_for(addrs);
        assert_eq!(p.addrs, bind_ip::parse(addrs).unwrap());
    }
}

#[test]
fn two_contexts_binding_the_wildcard_land_on_their_own_addresses() {
    let Some(mut w) = world() else { return };
    let (mut a, _) = w.context("a", "127.1.0.2,fd00:5::2");
    let (mut b, _) = w.context("b", "127.1.0.3,fd00:5::3");
    assert_eq!(a.ok("tcp_listen 0.0.0.0:8080")[1], "127.1.0.2:8080");
    assert_eq!(b.ok("tcp_listen 0.0.0.0:8080")[1], "127.1.0.3:8080");
    assert_eq!(a.ok("tcp_listen [::]:8080")[1], "[fd00:5::2]:8080");
    assert_eq!(b.ok("tcp_listen [::]:8080")[1], "[fd00:5::3]:8080");
    assert_eq!(a.ok("udp_bind 0.0.0.0:5353")[1], "127.1.0.2:5353");
    assert_eq!(b.ok("udp_bind 0.0.0.0:5353")[1], "127.1.0.3:5353");
    // The host (outside any context) still binds its own wildcard next to them.
    let host = TcpListener::bind("0.0.0.0:8081").expect("host wildcard bind");
    drop(host);
}

#[test]
fn binding_an_address_not_listed_is_eperm() {
    let Some(mut w) = world() else { return };
    let (mut a, _) = w.context("a", "127.1.0.2,fd00:5::2");
    for foreign in [
        "127.1.0.3:8080",
        "127.0.0.9:8080",
        "127.0.0.1:8080",
        "[fd00:5::3]:8080",
        "[::1]:8080",
        "[::ffff:127.1.0.3]:8080",
    ] {
        assert_eq!(
            a.errno(&format!("tcp_listen {foreign}")),
            libc::EPERM,
            "{foreign}"
        );
    }
    assert_eq!(a.errno("udp_bind 127.0.0.9:53"), libc::EPERM);
    assert_eq!(a.ok("tcp_listen 127.1.0.2:8080")[1], "127.1.0.2:8080");
    assert_eq!(a.ok("tcp_listen [fd00:5::2]:8080")[1], "[fd00:5::2]:8080");
}

#[test]
fn the_peer_sees_the_pinned_source_for_tcp_and_udp() {
    let Some(mut w) = world() else { return };
    let (mut a, _) = w.context("a", "127.1.0.2,fd00:5::2");
    let tcp4 = TcpListener::bind("127.0.0.9:9000").unwrap();
    let tcp6 = TcpListener::bind("[fd00:5::9]:9000").unwrap();
    let udp4 = UdpSocket::bind("127.0.0.9:9001").unwrap();
    let udp6 = UdpSocket::bind("[fd00:5::9]:9001").unwrap();
    for s in [&udp4, &udp6] {
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    }
    let peer_ip = |l: &TcpListener| accept_timeout(l).expect("accept").1.ip().to_string();
    let from_ip = |u: &UdpSocket| {
        let mut b = [0u8; 8];
        u.recv_from(&mut b).expect("recv").1.ip().to_string()
    };

    a.ok("tcp_connect 127.0.0.9:9000");
    assert_eq!(peer_ip(&tcp4), "127.1.0.2");
    a.ok("tcp_connect [fd00:5::9]:9000");
    assert_eq!(peer_ip(&tcp6), "fd00:5::2");

    // Unconnected sends from unbound sockets: sendmsg4/6 set the source.
    let s = a.ok("udp_new4")[0].clone();
    a.ok(&format!("udp_sendto {s} 127.0.0.9:9001"));
    assert_eq!(from_ip(&udp4), "127.1.0.2");
    let s = a.ok("udp_new6")[0].clone();
    a.ok(&format!("udp_sendto {s} [fd00:5::9]:9001"));
    assert_eq!(from_ip(&udp6), "fd00:5::2");
    // A dual-stack socket sending to an IPv4 peer goes through the IPv4 path.
    let s = a.ok("udp_new6")[0].clone();
    a.ok(&format!("udp_sendto {s} [::ffff:127.0.0.9]:9001"));
    assert_eq!(from_ip(&udp4), "127.1.0.2");

    // Connected UDP: pinned at connect (bpf_bind), send() has no hook.
    let s = a.ok("udp_new4")[0].clone();
    assert!(a.ok(&format!("udp_connect {s} 127.0.0.9:9001"))[0].starts_with("127.1.0.2:"));
    a.ok(&format!("udp_send {s}"));
    assert_eq!(from_ip(&udp4), "127.1.0.2");
    let s = a.ok("udp_new6")[0].clone();
    a.ok(&format!("udp_connect {s} [fd00:5::9]:9001"));
    a.ok(&format!("udp_send {s}"));
    assert_eq!(from_ip(&udp6), "fd00:5::2");

    // IP_PKTINFO / IPV6_PKTINFO naming another local address (the peer's own) cannot choose
    // the source either, connected or not.
    for (new, peer, foreign, own, u) in [
        (
            "udp_new4",
            "127.0.0.9:9001",
            "127.0.0.9",
            "127.1.0.2",
            &udp4,
        ),
        (
            "udp_new6",
            "[fd00:5::9]:9001",
            "fd00:5::9",
            "fd00:5::2",
            &udp6,
        ),
    ] {
        let s = a.ok(new)[0].clone();
        a.ok(&format!("udp_pktinfo {s} {foreign} {peer}"));
        assert_eq!(from_ip(u), own, "unconnected, pktinfo {foreign}");
        let s = a.ok(new)[0].clone();
        a.ok(&format!("udp_connect {s} {peer}"));
        a.ok(&format!("udp_pktinfo {s} {foreign}"));
        assert_eq!(from_ip(u), own, "connected, pktinfo {foreign}");
    }

    // A socket auto-bound to the wildcard by an unconnected send cannot be pinned any more.
    let s = a.ok("udp_new4")[0].clone();
    a.ok(&format!("udp_sendto {s} 127.0.0.9:9001"));
    from_ip(&udp4);
    assert_eq!(
        a.errno(&format!("udp_connect {s} 127.0.0.9:9001")),
        libc::EPERM
    );
}

#[test]
fn auto_bound_sockets_receive_nothing_for_host_addresses() {
    let Some(mut w) = world() else { return };
    let (mut a, _) = w.context("a", "127.1.0.2,fd00:5::2");
    // listen(2) without bind: a wildcard listener, but the ingress filter only lets SYNs for
    // the context's own addresses reach it.
    let l = a.ok("tcp_listen_unbound");
    let port: u16 = l[1].rsplit(':').next().unwrap().parse().unwrap();
    let host_addr: SocketAddr = format!("127.0.0.9:{port}").parse().unwrap();
    assert!(
        TcpStream::connect_timeout(&host_addr, Duration::from_millis(500)).is_err(),
        "a never-bound listener answered on a host address"
    );
    let own: SocketAddr = format!("127.1.0.2:{port}").parse().unwrap();
    TcpStream::connect_timeout(&own, IO_TIMEOUT).expect("own address");
    a.ok(&format!("tcp_accept {}", l[0]));

    // An unconnected send auto-binds to the wildcard too: only datagrams for a listed address
    // are delivered (the first one, to a host address, is dropped).
    let peer = UdpSocket::bind("127.0.0.9:9002").unwrap();
    peer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let s = a.ok("udp_new4")[0].clone();
    a.ok(&format!("udp_sendto {s} 127.0.0.9:9002"));
    let mut b = [0u8; 8];
    let (_, from) = peer.recv_from(&mut b).unwrap();
    assert_eq!(from.ip().to_string(), "127.1.0.2");
    let to_host = UdpSocket::bind("127.0.0.9:0").unwrap();
    to_host
        .send_to(b"h", format!("127.0.0.9:{}", from.port()))
        .unwrap();
    let to_own = UdpSocket::bind("127.0.0.9:0").unwrap();
    to_own.send_to(b"o", from).unwrap();
    let got = a.ok(&format!("udp_recv {s}"));
    assert_eq!(got[0], to_own.local_addr().unwrap().to_string());
}

#[test]
fn localhost_is_the_contexts_own_address() {
    let Some(mut w) = world() else { return };
    let (mut a, _) = w.context("a", "127.1.0.2,fd00:5::2");
    let (mut b, _) = w.context("b", "127.1.0.3,fd00:5::3");
    // The host's own localhost services must not be reached.
    let host4 = TcpListener::bind("127.0.0.1:8082").unwrap();
    let host6 = TcpListener::bind("[::1]:8082").unwrap();
    for (ctx, own4, own6) in [
        (&mut a, "127.1.0.2", "fd00:5::2"),
        (&mut b, "127.1.0.3", "fd00:5::3"),
    ] {
        let l4 = ctx.ok("tcp_listen 0.0.0.0:8082")[0].clone();
        let l6 = ctx.ok("tcp_listen [::]:8082")[0].clone();
        let c = ctx.ok("tcp_connect 127.0.0.1:8082");
        assert_eq!(c[2], format!("{own4}:8082"), "connect rewritten");
        assert!(c[1].starts_with(&format!("{own4}:")), "source {}", c[1]);
        assert!(ctx.ok(&format!("tcp_accept {l4}"))[1].starts_with(&format!("{own4}:")));
        let c = ctx.ok("tcp_connect [::1]:8082");
        assert_eq!(c[2], format!("[{own6}]:8082"));
        assert!(ctx.ok(&format!("tcp_accept {l6}"))[1].starts_with(&format!("[{own6}]:")));
        // UDP: a resolver-like exchange with 127.0.0.1; both ends see "localhost".
        let srv = ctx.ok("udp_bind 0.0.0.0:5300")[0].clone();
        let cli = ctx.ok("udp_new4")[0].clone();
        ctx.ok(&format!("udp_sendto {cli} 127.0.0.1:5300"));
        assert!(ctx.ok(&format!("udp_echo {srv}"))[0].starts_with("127.0.0.1:"));
        assert_eq!(ctx.ok(&format!("udp_recv {cli}"))[0], "127.0.0.1:5300");
        let srv = ctx.ok("udp_bind [::]:5300")[0].clone();
        let cli = ctx.ok("udp_new6")[0].clone();
        ctx.ok(&format!("udp_sendto {cli} [::1]:5300"));
        assert!(ctx.ok(&format!("udp_echo {srv}"))[0].starts_with("[::1]:"));
        assert_eq!(ctx.ok(&format!("udp_recv {cli}"))[0], "[::1]:5300");
    }
    for h in [&host4, &host6] {
        h.set_nonblocking(true).unwrap();
        assert!(
            h.accept().is_err(),
            "a context reached the host's localhost"
        );
    }
}

#[test]
fn ipv4_only_context_serves_the_dual_stack_wildcard_on_its_mapped_address() {
    let Some(mut w) = world() else { return };
    let (mut c, _) = w.context("c", "127.1.0.4");
    let l = c.ok("tcp_listen [::]:8083");
    assert_eq!(l[1], "[::ffff:127.1.0.4]:8083");
    let s = TcpStream::connect("127.1.0.4:8083").expect("IPv4 client reaches [::] listener");
    let me = s.local_addr().unwrap();
    let seen = c.ok(&format!("tcp_accept {}", l[0]))[1].clone();
    assert_eq!(seen, format!("[::ffff:{}]:{}", me.ip(), me.port()));
    assert_eq!(c.errno("tcp_connect [fd00:5::9]:9000"), libc::ENETUNREACH);
    assert_eq!(c.errno("tcp_connect [::1]:9000"), libc::ENETUNREACH);
    let (mut d, _) = w.context("d", "fd00:5::3");
    assert_eq!(d.errno("tcp_listen 0.0.0.0:8084"), libc::EADDRNOTAVAIL);
    assert_eq!(d.errno("tcp_connect 127.0.0.9:9000"), libc::ENETUNREACH);
}

#[test]
fn a_contained_process_can_neither_detach_nor_leave() {
    let Some(mut w) = world() else { return };
    let (_, dir) = w.context("a", "127.1.0.2");
    let ids = ids_attached(&dir);
    assert_eq!(ids.len(), Hook::ALL.len());
    let mut c = Agent::spawn(Some(&dir), true);
    c.ok("drop_caps");
    let root = match cgroup2::layout().unwrap() {
        cgroup2::Layout::Unified(m) | cgroup2::Layout::Hybrid(m) => m,
    };
    let root = root.to_str().unwrap();
    // Its cgroup namespace is rooted at the context's directory.
    assert_eq!(
        c.ok("read /proc/self/cgroup")[0]
            .rsplit(';')
            .next()
            .unwrap(),
        "0::/"
    );
    let r = c.ok(&format!("detach {root} {}", ids[0]));
    let eperm = libc::EPERM.to_string();
    assert_eq!(
        r[..2],
        [eperm.clone(), eperm],
        "BPF_PROG_QUERY, BPF_PROG_GET_FD_BY_ID"
    );
    // BPF_F_ALLOW_MULTI: detaching needs the program's fd (EINVAL without one). The kernel
    // checks no capability here, which is why no program fd may ever reach a container.
    assert_eq!(
        r[2],
        libc::EINVAL.to_string(),
        "BPF_PROG_DETACH without a program fd"
    );
    // The only cgroup.procs it can see is its own, read-only; no new mount either.
    assert_eq!(
        c.errno(&format!("write {root}/cgroup.procs 0")),
        libc::EROFS
    );
    assert_eq!(c.errno("mount_cgroup2 /tmp"), libc::EPERM);
    assert_eq!(c.ok("tcp_listen 0.0.0.0:8085")[1], "127.1.0.2:8085");
    assert_eq!(ids_attached(&dir), ids);
}

#[test]
fn remove_leaves_nothing_and_is_idempotent() {
    let Some(mut w) = world() else { return };
    let (agent, dir) = w.context("a", "127.1.0.2,fd00:5::2");
    let ids = ids_attached(&dir);
    assert_eq!(ids.len(), Hook::ALL.len());
    drop(agent);
    bind_ip::remove_at(&dir, true).expect("remove");
    assert!(!dir.exists());
    let deadline = Instant::now() + Duration::from_secs(5);
    for id in ids {
        while sys::prog_get_fd_by_id(id).is_ok() {
            assert!(
                Instant::now() < deadline,
                "program {id} still loaded after remove"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    bind_ip::remove_at(&dir, true).expect("second remove");
    bind_ip::remove("vsrun-test-never-created").expect("remove of nothing");
}

#[test]
fn exec_join_enters_a_bound_context_only() {
    let Some(mut w) = world() else { return };
    let (_a, dir) = w.context("a", "127.1.0.2");
    let sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    cgroup2::join(&dir, sleeper.id() as i32).unwrap();
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l == sleeper.id().to_string()));
    kill(sleeper);
    bind_ip::join("vsrun-test-not-bound", 1).expect("join of an unbound context is a no-op");
}

/// hack/bench-bindip.sh: connect/accept and UDP round trips with and without the programs.
#[test]
#[ignore]
fn bench_bindip() {
    let Some(mut w) = world() else { return };
    let n: u32 = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let rounds: u32 = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let (mut bound, _) = w.context("bound", "127.1.0.2");
    let (mut plain, _) = w.plain("plain");
    let run = |a: &mut Agent, what: &str| -> f64 {
        a.ok(what)[0].parse::<f64>().unwrap() / n as f64 / 1000.0
    };
    let mut t = HashMap::<&str, Vec<f64>>::new();
    for r in 0..rounds {
        let p = 7000 + 4 * r;
        t.entry("tcp plain").or_default().push(run(
            &mut plain,
            &format!("bench_tcp {n} 127.1.0.2:{p} 127.1.0.2:{p}"),
        ));
        t.entry("tcp bound").or_default().push(run(
            &mut bound,
            &format!("bench_tcp {n} 0.0.0.0:{} 127.0.0.1:{}", p + 1, p + 1),
        ));
        t.entry("udp plain").or_default().push(run(
            &mut plain,
            &format!("bench_udp {n} 127.1.0.2:{} 127.1.0.2:{}", p + 2, p + 2),
        ));
        t.entry("udp bound").or_default().push(run(
            &mut bound,
            &format!("bench_udp {n} 0.0.0.0:{} 127.0.0.1:{}", p + 3, p + 3),
        ));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    println!("bind-ip benchmark: {rounds} rounds x {n} round trips, median µs per round trip");
    for proto in ["tcp", "udp"] {
        let p = median(t.get_mut(format!("{proto} plain").as_str()).unwrap());
        let b = median(t.get_mut(format!("{proto} bound").as_str()).unwrap());
        println!(
            "{proto}: without programs {p:.2} µs, with programs {b:.2} µs, overhead {:+.1}%",
            (b / p - 1.0) * 100.0
        );
    }
}
