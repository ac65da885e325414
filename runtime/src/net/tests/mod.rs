//! Kernel tests of bound-IP mode (root, real kernel; skipped with a note otherwise).
//!
//! Each test builds its own world and touches nothing of the host's: the test thread moves into
//! a new network namespace (lo up, 127.x addresses on lo, ULA addresses on a veth pair — this
//! kernel has no dummy driver), and every cgroup it makes is below
//! `<v2 mount>/vsrun-test-<pid>-<n>/`. A "context" is an agent process — this test binary
//! re-executed into `agent_main` — that enters its cgroup before exec (pre_exec writes "0" to
//! cgroup.procs), so every socket it creates is hooked. The agent takes one command per line on
//! stdin and answers `@ ok ...` or `@ err <errno>` on stdout.

mod agent;

use super::bind_ip::{self, Plan, ANNOTATION};
use super::cgroup2::{self, Hook};
use crate::bpf;
use agent::{accept_timeout, Agent};
use std::collections::HashMap;
use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
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
// Tests

fn ids_attached(dir: &Path) -> Vec<u32> {
    let d = File::open(dir).expect("open cgroup dir");
    Hook::ALL
        .iter()
        .flat_map(|h| bpf::prog_query(d.as_fd(), *h as u32).expect("query"))
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
        while bpf::prog_get_fd_by_id(id).is_ok() {
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
