//! Bound-IP mode (annotation `org.vsrun.bind-ip`, VServer's chbind): a container on the host's
//! network stack whose sockets are pinned to the listed addresses.
//!
//! "The host" here is always a network namespace the test makes for its own thread (lo up,
//! 127.x addresses on lo, ULA addresses on a veth pair); vsrun is started from that thread, so
//! for a config without a network namespace that is the stack the container shares. Nothing is
//! sent outside it. The tests skip (with a note) until `vsrun features` lists the annotation.

use spec_tests::netns::{ip, PrivateNet};
use spec_tests::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const ANNOTATION: &str = "org.vsrun.bind-ip";

fn supported(rt: &Runtime) -> bool {
    let o = rt.cmd(&["features"]);
    let ok = o.status.success()
        && serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .map(|v| v["annotations"].get(ANNOTATION).is_some())
            .unwrap_or(false);
    // features is generated from vsrun's own tables: not listing it is a failure, not a skip
    // (only a reference runtime may lack it).
    assert!(
        ok || reference_mode(),
        "`vsrun features` does not list the {ANNOTATION} annotation"
    );
    ok
}

/// Contexts use 127.1.0.2 (A), 127.1.0.3 (B) and fd00:5::2; the "host" peer is 127.0.0.9.
fn private_net() -> PrivateNet {
    let net = PrivateNet::enter(&["127.1.0.2", "127.1.0.3", "127.0.0.9"]);
    ip("link add vb0 type veth peer name vb1");
    ip("link set vb0 up");
    ip("link set vb1 up");
    ip("-6 addr add fd00:5::2/64 dev vb0 nodad");
    net
}

/// A bundle on the host's (the test's) network stack, bound to `addrs`.
fn bound_bundle(addrs: &str, hostname: &str) -> Bundle {
    let mut b = Bundle::new();
    b.remove_namespace("network");
    b.config["annotations"] = serde_json::json!({ ANNOTATION: addrs });
    b.config["hostname"] = hostname.into();
    b
}

fn sh(b: &mut Bundle, script: &str) {
    b.set_args(&["/bin/sh", "-c", script]);
}

/// The v2 directory of a running container's init (its cgroup v2 path under the v2 mount).
fn v2_dir(pid: i32) -> PathBuf {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let path = cg
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup v2 line");
    let mount = if std::fs::metadata("/sys/fs/cgroup/unified/cgroup.procs").is_ok() {
        "/sys/fs/cgroup/unified"
    } else {
        "/sys/fs/cgroup"
    };
    PathBuf::from(format!("{mount}{path}"))
}

fn connect_retry(addr: &str) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("connect {addr}: {e}"),
        }
    }
}

fn accept_within(l: &TcpListener, d: Duration) -> Option<(TcpStream, std::net::SocketAddr)> {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + d;
    loop {
        match l.accept() {
            Ok(x) => return Some(x),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => return None,
        }
    }
}

#[test]
fn wildcard_bind_lands_on_the_first_listed_address_of_its_family() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let _net = private_net();
    let mut b = bound_bundle("127.1.0.2,fd00:5::2", "ctx-a");
    let seen = rt.probe_lines(
        &mut b,
        &["bind-tcp", "0.0.0.0:8080", "--", "bind-tcp", "[::]:8080"],
    );
    assert_eq!(seen[0]["addr"], "127.1.0.2:8080", "{seen:?}");
    assert_eq!(seen[1]["addr"], "[fd00:5::2]:8080", "{seen:?}");
}

#[test]
fn binding_an_unlisted_address_is_eperm() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let _net = private_net();
    let mut b = bound_bundle("127.1.0.2", "ctx-a");
    for foreign in ["127.0.0.9:8080", "127.1.0.3:8080", "127.0.0.1:8080"] {
        let seen = rt.probe(&mut b, &["bind-tcp", foreign]);
        assert_eq!(seen["ok"], false, "{foreign}: {seen}");
        assert_eq!(seen["errno"], libc::EPERM, "{foreign}: {seen}");
    }
}

/// Linux treats all of 127/8 on `lo` (and AnyIP routes) as local and lets a plain process bind
/// them: so does a bound context, with no address added (VServer's chbind to any local IP).
#[test]
fn an_address_local_by_route_is_bound_without_being_assigned() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let _net = private_net();
    let mut b = bound_bundle("127.1.0.9", "ctx-r");
    sh(&mut b, "nc -ll -p 8080 -e /bin/hostname");
    let id = unique_id("bindip");
    assert_success(&rt.run_detached(&b, &id), "run -d nc -l on 127.1.0.9");
    let mut s = connect_retry("127.1.0.9:8080");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    assert_eq!(got.trim(), "ctx-r");
    for elsewhere in ["127.0.0.1:8080", "127.1.0.2:8080", "127.1.0.10:8080"] {
        assert!(
            TcpStream::connect(elsewhere).is_err(),
            "the context also listens on {elsewhere}"
        );
    }
    rt.delete_force(&id);
    assert_nothing_left(&rt, &id);
}

#[test]
fn two_contexts_serve_the_same_port_each_on_its_own_address() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let _net = private_net();
    let mut ids = Vec::new();
    let mut bundles = Vec::new();
    for (addr, name) in [("127.1.0.2", "ctx-a"), ("127.1.0.3", "ctx-b")] {
        // busybox nc listens on [::]; with IPv4 addresses only that becomes ::ffff:<addr>.
        let mut b = bound_bundle(addr, name);
        sh(&mut b, "nc -ll -p 8080 -e /bin/hostname");
        let id = unique_id("bindip");
        assert_success(&rt.run_detached(&b, &id), "run -d nc -l");
        ids.push(id);
        bundles.push(b);
    }
    for (addr, name) in [("127.1.0.2", "ctx-a"), ("127.1.0.3", "ctx-b")] {
        let mut s = connect_retry(&format!("{addr}:8080"));
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = String::new();
        let _ = s.read_to_string(&mut got);
        assert_eq!(
            got.trim(),
            name,
            "{addr}:8080 is served by the wrong context"
        );
    }
    for id in &ids {
        rt.delete_force(id);
        assert_nothing_left(&rt, id);
    }
}

#[test]
fn the_peer_sees_the_bound_source_address() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let _net = private_net();
    let tcp = TcpListener::bind("127.0.0.9:9000").unwrap();
    let udp = UdpSocket::bind("127.0.0.9:53").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = bound_bundle("127.1.0.2", "ctx-a");
    // TCP through nc; UDP through nslookup's query (nobody answers; timeout ends it).
    sh(
        &mut b,
        "echo hi | nc -w 2 127.0.0.9 9000; timeout 2 nslookup a.example 127.0.0.9; true",
    );
    let id = unique_id("bindip");
    assert_success(&rt.run_detached(&b, &id), "run -d");
    let (_, peer) = accept_within(&tcp, Duration::from_secs(10)).expect("TCP connection");
    assert_eq!(peer.ip().to_string(), "127.1.0.2", "TCP source");
    let mut buf = [0u8; 512];
    let (_, from) = udp.recv_from(&mut buf).expect("DNS query over UDP");
    assert_eq!(from.ip().to_string(), "127.1.0.2", "UDP source");
    rt.delete_force(&id);
    assert_nothing_left(&rt, &id);
}

#[test]
fn localhost_inside_is_the_context_not_the_host() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let _net = private_net();
    let host = TcpListener::bind("127.0.0.1:8081").unwrap();
    let mut b = bound_bundle("127.1.0.2", "ctx-a");
    sh(
        &mut b,
        "nc -l -p 8081 -e /bin/hostname & sleep 0.5; nc -w 2 127.0.0.1 8081",
    );
    let o = rt.run(&b, &unique_id("bindip"));
    assert_success(&o, "run");
    assert_eq!(stdout_str(&o).trim(), "ctx-a", "{}", output_text(&o));
    assert!(
        accept_within(&host, Duration::from_millis(100)).is_none(),
        "the context reached the host's 127.0.0.1"
    );
}

#[test]
fn no_program_fd_reaches_the_container() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let _net = private_net();
    let mut b = bound_bundle("127.1.0.2", "ctx-a");
    let seen = rt.probe(&mut b, &["report"]);
    let fds = seen["fds"].as_array().expect("fds");
    assert!(
        fds.iter()
            .all(|f| !f["target"].as_str().unwrap_or("").contains("bpf")),
        "{fds:?}"
    );
}

#[test]
fn delete_removes_the_programs_cgroup() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let _net = private_net();
    let mut b = bound_bundle("127.1.0.2", "ctx-a");
    b.set_args(&["/probe", "sleep", "100"]);
    let id = unique_id("bindip");
    assert_success(&rt.create(&b, &id), "create");
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    let dir = v2_dir(pid);
    assert!(
        dir.ends_with(format!("vsrun/{id}")),
        "init is in v2 cgroup {}",
        dir.display()
    );
    assert!(dir.is_dir());
    assert_success(&rt.cmd(&["delete", "--force", &id]), "delete --force");
    assert!(!dir.exists(), "{} left after delete", dir.display());
    assert_nothing_left(&rt, &id);
}

#[test]
fn an_unassigned_address_fails_create_naming_the_annotation() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let _net = private_net();
    let b = bound_bundle("127.1.0.2,192.0.2.9", "ctx-a");
    let id = unique_id("bindip");
    let err = assert_fails(&rt.create(&b, &id), "create with an unassigned address");
    assert!(
        err.contains(
            "annotations.\"org.vsrun.bind-ip\": 192.0.2.9 is not assigned to any interface"
        ),
        "{err}"
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn a_new_network_namespace_is_refused() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let _net = private_net();
    let mut b = bound_bundle("127.1.0.2", "ctx-a");
    b.set_namespace("network", None);
    let id = unique_id("bindip");
    let err = assert_fails(&rt.create(&b, &id), "create with a new netns");
    assert!(
        err.contains("annotations.\"org.vsrun.bind-ip\": needs the host's"),
        "{err}"
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn addresses_are_checked_in_a_joined_network_namespace() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let _net = private_net();
    // A second namespace that has 127.1.0.7 (the test's own does not).
    let mut holder = Command::new("unshare")
        .args([
            "-n",
            "sh",
            "-c",
            "ip link set lo up && ip addr add 192.0.2.7/32 dev lo && echo ready && exec sleep 60",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = [0u8; 6];
    holder
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut ready)
        .unwrap();
    let ns = format!("/proc/{}/ns/net", holder.id());
    let mut b = bound_bundle("192.0.2.7", "ctx-j");
    b.set_namespace("network", Some(&ns));
    let seen = rt.probe(&mut b, &["bind-tcp", "0.0.0.0:8080"]);
    assert_eq!(seen["addr"], "192.0.2.7:8080");
    // Assigned in the test's own namespace, neither assigned nor routed in the joined one.
    ip("addr add 192.0.2.2/32 dev lo");
    b.config["annotations"][ANNOTATION] = "192.0.2.2".into();
    let id = unique_id("bindip");
    let err = assert_fails(
        &rt.create(&b, &id),
        "192.0.2.2 is not in the joined namespace",
    );
    assert!(
        err.contains("192.0.2.2 is not assigned to any interface"),
        "{err}"
    );
    let _ = holder.kill();
    let _ = holder.wait();
    let _ = std::io::stdout().flush();
}

#[test]
fn cap_net_raw_is_refused_for_a_bound_context() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let _net = private_net();
    let mut b = bound_bundle("127.1.0.2", "raw");
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set] = serde_json::json!(["CAP_NET_RAW"]);
    }
    let id = unique_id("bind-raw");
    let msg = assert_fails(&rt.create(&b, &id), "bind-ip with CAP_NET_RAW");
    assert!(
        msg.contains("process.capabilities.bounding") && msg.contains("CAP_NET_RAW"),
        "{msg}"
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn malformed_duplicate_and_empty_address_lists_fail_naming_the_annotation() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let _net = private_net();
    for (value, why) in [
        ("300.1.2.3", "not an IPv4 or IPv6 address"),
        ("127.1.0.2,127.1.0.2", "listed twice"),
        ("127.1.0.2,,127.1.0.3", "empty entry"),
        ("0.0.0.0", "unspecified"),
        ("fe80::1", "link-local"),
    ] {
        let b = bound_bundle(value, "bad");
        let id = unique_id("bind-bad");
        let msg = assert_fails(&rt.create(&b, &id), value);
        assert!(
            msg.contains("org.vsrun.bind-ip") && msg.contains(why),
            "{value}: {msg}"
        );
        assert_nothing_left(&rt, &id);
    }
}

/// A kernel without cgroup BPF (no CONFIG_BPF_SYSCALL / CONFIG_CGROUP_BPF) answers bpf(2) with
/// ENOSYS or EINVAL. vsrun runs here under a seccomp filter that gives bpf(2) exactly that
/// answer, so the path a kernel without it takes is the one tested: create fails with one line
/// naming the annotation, and leaves nothing.
#[test]
fn a_kernel_without_cgroup_bpf_fails_create_naming_the_annotation() {
    let rt = Runtime::new();
    if !supported(&rt) {
        return;
    }
    let _net = private_net();
    for errno in [libc::ENOSYS, libc::EINVAL] {
        let b = bound_bundle("127.1.0.2", "ctx-nobpf");
        b.write();
        let id = unique_id("bindip-nobpf");
        let o = rt.cmd_with(&["create", "--bundle", b.path_str(), &id], |c| {
            without_bpf(c, errno)
        });
        let err = assert_fails(&o, "create of a bound context where bpf(2) is missing");
        assert!(
            err.contains("annotations.\"org.vsrun.bind-ip\"") && err.contains("cgroup BPF"),
            "errno {errno}: {err}"
        );
        assert_nothing_left(&rt, &id);
    }
}

/// Make bpf(2) fail with `errno` in the spawned vsrun (and everything it starts).
fn without_bpf(c: &mut Command, errno: i32) {
    use std::os::unix::process::CommandExt;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let ret_errno = libc::SECCOMP_RET_ERRNO | (errno as u32 & libc::SECCOMP_RET_DATA);
    let filter = [
        // arch != x86_64: allow (the test runs on x86_64; nothing else is filtered)
        libc::sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 4,
        },
        libc::sock_filter {
            code: 0x15,
            jt: 0,
            jf: 3,
            k: AUDIT_ARCH_X86_64,
        },
        libc::sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: 0x15,
            jt: 0,
            jf: 1,
            k: libc::SYS_bpf as u32,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: ret_errno,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    // SAFETY: only prctl(2) between fork and exec; `filter` is moved into the closure and
    // outlives the call.
    unsafe {
        c.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
