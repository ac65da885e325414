//! Namespaces (runtime-spec config-linux.md "Namespaces", "User namespace mappings", "Offset
//! for Time Namespace", config.md "Hostname"/"Domainname"): new, shared, joined by path, and
//! what the process sees inside each.

use serde_json::{json, Value};
use spec_tests::*;

/// (config type, /proc/<pid>/ns name)
const TYPES: &[(&str, &str)] = &[
    ("pid", "pid"),
    ("network", "net"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("mount", "mnt"),
    ("cgroup", "cgroup"),
    ("user", "user"),
    ("time", "time"),
];

fn host_ns(ns: &str) -> u64 {
    ns_inode("self", ns)
}

fn seen_ns(seen: &Value, ns: &str) -> u64 {
    seen["ns"][ns]
        .as_u64()
        .unwrap_or_else(|| panic!("probe has no ns.{ns}: {}", seen["ns"]))
}

#[test]
fn listed_namespaces_are_new() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let new = ["pid", "network", "ipc", "uts", "mount", "cgroup"];
    b.config["linux"]["namespaces"] =
        json!(new.iter().map(|t| json!({ "type": t })).collect::<Vec<_>>());
    let d = rt.probe_detached(&mut b);
    for (ty, ns) in TYPES {
        let inside = seen_ns(&d.seen, ns);
        if new.contains(ty) {
            assert_ne!(
                inside,
                host_ns(ns),
                "{ty}: listed without path but shared with the host"
            );
        } else {
            assert_eq!(inside, host_ns(ns), "{ty}: not listed but not the host's");
        }
        assert_eq!(
            ns_inode(&d.pid.to_string(), ns),
            inside,
            "host: /proc/<pid>/ns/{ns} vs probe"
        );
    }
    finish(&rt, &d.id);
}

#[test]
fn unlisted_namespaces_are_shared_with_the_runtime() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // only a mount namespace (the rootfs needs one); no uts namespace, so no hostname either
    b.config["linux"]["namespaces"] = json!([{ "type": "mount" }]);
    b.config.as_object_mut().unwrap().remove("hostname");
    let host_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = host_listener.local_addr().unwrap().to_string();
    let lines = rt.probe_lines(&mut b, &["report", "--", "bind-tcp", &addr]);
    let seen = &lines[0];
    for (ty, ns) in TYPES {
        if *ty == "mount" {
            continue;
        }
        assert_eq!(
            seen_ns(seen, ns),
            host_ns(ns),
            "{ty}: not listed, so it must be the runtime's"
        );
    }
    assert_ne!(seen["pid"], 1, "no pid namespace, yet the probe is PID 1");
    let bind = &lines[1];
    assert_eq!(
        bind["ok"], false,
        "host network namespace: {addr} is taken on the host: {bind}"
    );
    assert_eq!(bind["errno"], libc::EADDRINUSE, "{bind}");
}

#[test]
fn new_network_namespace_has_loopback_up_and_its_own_ports() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let host_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = host_listener.local_addr().unwrap().to_string();
    let bind = rt.probe(&mut b, &["bind-tcp", &addr]);
    assert_eq!(
        bind["ok"], true,
        "binding {addr} (taken on the host) inside a new netns: {bind}"
    );
}

#[test]
fn namespace_path_joins_an_existing_namespace() {
    let rt = Runtime::new();
    let holder = NsHolder::new(&["--net", "--ipc", "--uts"]);
    let mut b = Bundle::new();
    b.config.as_object_mut().unwrap().remove("hostname");
    for (ty, ns) in [("network", "net"), ("ipc", "ipc"), ("uts", "uts")] {
        b.set_namespace(ty, Some(&holder.ns_path(ns)));
    }
    let d = rt.probe_detached(&mut b);
    for ns in ["net", "ipc", "uts"] {
        assert_ne!(
            holder.ns_inode(ns),
            host_ns(ns),
            "helper did not unshare {ns}"
        );
        assert_eq!(
            seen_ns(&d.seen, ns),
            holder.ns_inode(ns),
            "{ns}: path not joined"
        );
        assert_eq!(
            ns_inode(&d.pid.to_string(), ns),
            holder.ns_inode(ns),
            "host: {ns} of the init"
        );
    }
    // the others are still new
    assert_ne!(seen_ns(&d.seen, "mnt"), host_ns("mnt"));
    assert_ne!(seen_ns(&d.seen, "pid"), host_ns("pid"));
    finish(&rt, &d.id);
}

#[test]
fn namespace_path_joins_an_existing_pid_namespace() {
    let rt = Runtime::new();
    let holder = NsHolder::new(&["--pid", "--fork", "--mount-proc"]);
    let mut b = Bundle::new();
    b.set_namespace("pid", Some(&holder.ns_path("pid")));
    let d = rt.probe_detached(&mut b);
    assert_ne!(holder.ns_inode("pid"), host_ns("pid"));
    assert_eq!(
        seen_ns(&d.seen, "pid"),
        holder.ns_inode("pid"),
        "pid namespace not joined"
    );
    assert_ne!(
        d.seen["pid"], 1,
        "joined pid namespace already has an init (the helper)"
    );
    let nspid = proc_status_field(d.pid, "NSpid").unwrap();
    assert_eq!(
        nspid,
        format!("{}\t{}", d.pid, d.seen["pid"]),
        "host: NSpid of the init in the joined namespace"
    );
    finish(&rt, &d.id);
}

#[test]
fn namespace_path_of_another_type_is_an_error() {
    let rt = Runtime::new();
    let holder = NsHolder::new(&["--net", "--ipc"]);
    let mut b = Bundle::new();
    b.set_namespace("ipc", Some(&holder.ns_path("net")));
    let id = unique_id("nstype");
    let o = rt.run(&b, &id);
    assert_fails(&o, "ipc namespace path pointing at a network namespace");
    assert_nothing_left(&rt, &id);
}

#[test]
fn hostname_and_domainname_are_set() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["hostname"] = "ctx-host".into();
    b.config["domainname"] = "ctx.example".into();
    let before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let d = rt.probe_detached(&mut b);
    assert_eq!(d.seen["hostname"], "ctx-host");
    assert_eq!(d.seen["domainname"], "ctx.example");
    // host: the init's uts namespace says so (read by a helper that enters it), the host's not
    let in_ns = |f: &str| {
        let o = std::process::Command::new("nsenter")
            .args([
                "-t",
                &d.pid.to_string(),
                "--uts",
                "cat",
                &format!("/proc/sys/kernel/{f}"),
            ])
            .output()
            .expect("run nsenter");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(
        in_ns("hostname"),
        "ctx-host",
        "host: hostname of the init's uts namespace"
    );
    assert_eq!(
        in_ns("domainname"),
        "ctx.example",
        "host: domainname of the init's uts namespace"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        before,
        "host hostname changed"
    );
    finish(&rt, &d.id);
}

#[test]
fn user_namespace_maps_uids_and_gids() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // the mapped root (host uid 100000) must be able to reach the rootfs
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(b.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    b.set_namespace("user", None);
    b.config["linux"]["uidMappings"] =
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    b.config["linux"]["gidMappings"] =
        json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    let d = rt.probe_detached(&mut b);
    let s = &d.seen;
    assert_ne!(seen_ns(s, "user"), host_ns("user"), "no new user namespace");
    assert_eq!(s["uid_map"], json!([[0, 100000, 65536]]), "uid_map inside");
    assert_eq!(s["gid_map"], json!([[0, 200000, 65536]]), "gid_map inside");
    assert_eq!(
        (s["uid"].clone(), s["euid"].clone()),
        (json!(0), json!(0)),
        "root inside"
    );
    assert_eq!(s["gid"], 0);
    assert_eq!(
        proc_uid(d.pid),
        Some(100000),
        "host: owner of the container's init"
    );
    assert_eq!(
        proc_status_field(d.pid, "Uid").as_deref(),
        Some("100000\t100000\t100000\t100000"),
        "host: Uid line"
    );
    assert_eq!(
        proc_status_field(d.pid, "Gid").as_deref(),
        Some("200000\t200000\t200000\t200000"),
        "host: Gid line"
    );
    finish(&rt, &d.id);
}

fn clocks() -> (f64, f64) {
    let get = |id| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: out-pointer to a local.
        assert_eq!(unsafe { libc::clock_gettime(id, &mut ts) }, 0);
        ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
    };
    (get(libc::CLOCK_MONOTONIC), get(libc::CLOCK_BOOTTIME))
}

#[test]
fn time_namespace_offsets_shift_clocks() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let (mono_off, boot_off) = (10 * 86400i64, 20 * 86400i64);
    b.set_namespace("time", None);
    b.config["linux"]["timeOffsets"] = json!({
        "monotonic": { "secs": mono_off, "nanosecs": 0 },
        "boottime": { "secs": boot_off, "nanosecs": 0 }
    });
    let (m0, b0) = clocks();
    let d = rt.probe_detached(&mut b);
    let (m1, b1) = clocks();
    let m = d.seen["clocks"]["monotonic"].as_f64().unwrap();
    let bt = d.seen["clocks"]["boottime"].as_f64().unwrap();
    let off = |x: i64| x as f64;
    assert!(
        m >= m0 + off(mono_off) - 0.5 && m <= m1 + off(mono_off) + 0.5,
        "monotonic inside {m}, host {m0}..{m1}, offset {mono_off}"
    );
    assert!(
        bt >= b0 + off(boot_off) - 0.5 && bt <= b1 + off(boot_off) + 0.5,
        "boottime inside {bt}, host {b0}..{b1}, offset {boot_off}"
    );
    assert_ne!(
        seen_ns(&d.seen, "time"),
        host_ns("time"),
        "no new time namespace"
    );
    let offsets = std::fs::read_to_string(format!("/proc/{}/timens_offsets", d.pid)).unwrap();
    let rows: Vec<Vec<&str>> = offsets
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let mono = mono_off.to_string();
    let boot = boot_off.to_string();
    assert!(
        rows.contains(&vec!["monotonic", mono.as_str(), "0"]),
        "host: timens_offsets {offsets}"
    );
    assert!(
        rows.contains(&vec!["boottime", boot.as_str(), "0"]),
        "host: timens_offsets {offsets}"
    );
    finish(&rt, &d.id);
}
