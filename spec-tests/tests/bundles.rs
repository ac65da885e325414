//! The example bundles in bundles/ run as README's "Using it by hand" says: each is copied as
//! it is (config.json and its files), given the busybox rootfs `hack/mkrootfs` makes, run,
//! and what it did is checked from outside.

use spec_tests::netns::PrivateNet;
use spec_tests::*;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn example(name: &str) -> PathBuf {
    workspace_root().join("bundles").join(name)
}

/// bundles/NAME copied over a fresh test bundle: its config.json, and its other files next to
/// the rootfs.
fn bundle(name: &str) -> Bundle {
    let mut b = Bundle::new();
    let src = example(name);
    let text = fs::read_to_string(src.join("config.json")).expect("read the example config");
    b.config = serde_json::from_str(&text).expect("the example config is JSON");
    for e in fs::read_dir(&src)
        .expect("read the example bundle")
        .flatten()
    {
        if e.file_name() == "config.json" {
            continue;
        }
        let st = Command::new("cp")
            .arg("-a")
            .arg(e.path())
            .arg(b.path())
            .status()
            .expect("run cp -a");
        assert!(st.success(), "cp -a {}", e.path().display());
    }
    b.write();
    b
}

#[test]
fn hello_prints_its_greeting() {
    let rt = Runtime::new();
    let b = bundle("hello");
    let id = unique_id("hello");
    let o = rt.run(&b, &id);
    assert_success(&o, "run bundles/hello");
    let args = b.config["process"]["args"].as_array().expect("args");
    assert_eq!(args[0], "/bin/echo");
    assert_eq!(stdout_str(&o), format!("{}\n", args[1].as_str().unwrap()));
    assert_nothing_left(&rt, &id);
}

/// `NAME:\tVALUE` lines of /proc/self/status as the container printed them.
fn status_field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in the output:\n{text}"))
        .trim()
}

#[test]
fn locked_runs_with_no_capability_under_dockers_seccomp_profile() {
    let rt = Runtime::new();
    let b = bundle("locked");
    // The profile docker sends (hack/bench.sh's and the seccomp tests' copy of it).
    let docker = workspace_root().join("runtime/src/security/seccomp/testdata/docker.json");
    let docker: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(docker).expect("read docker.json"))
            .expect("docker.json is JSON");
    assert_eq!(
        b.config["linux"]["seccomp"], docker,
        "bundles/locked carries docker's default profile"
    );
    for set in CAP_SETS {
        let caps = &b.config["process"]["capabilities"][set];
        assert_eq!(caps.as_array().map(Vec::len), Some(0), "{set}: {caps}");
    }
    let id = unique_id("locked");
    let o = rt.run(&b, &id);
    assert_success(&o, "run bundles/locked");
    let out = stdout_str(&o);
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&out, cap), "0000000000000000", "{cap}:\n{out}");
    }
    assert_eq!(status_field(&out, "NoNewPrivs"), "1", "{out}");
    assert_eq!(
        status_field(&out, "Seccomp"),
        "2",
        "a filter is loaded:\n{out}"
    );
    assert_nothing_left(&rt, &id);
}

/// One HTTP/1.0 GET of `/`; None while nothing listens there yet.
fn get(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    Some(reply)
}

#[test]
fn web_serves_its_page_on_the_bound_address_only() {
    let b = bundle("web");
    let bound = b.config["annotations"]["org.vsrun.bind-ip"]
        .as_str()
        .expect("the web bundle names its address");
    let page = fs::read_to_string(example("web").join("www/index.html")).expect("index.html");
    // Its own network: 127/8 is local on lo there, so the bound address needs no setup.
    let _net = PrivateNet::enter(&[]);
    let rt = Runtime::new();
    let id = unique_id("web");
    assert_success(&rt.run_detached(&b, &id), "run -d bundles/web");
    let addr: SocketAddr = format!("{bound}:8080").parse().expect("address");
    let mut reply = None;
    for _ in 0..50 {
        reply = get(addr);
        if reply.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let reply = reply.unwrap_or_else(|| panic!("nothing answered on {addr}"));
    assert!(
        reply.starts_with("HTTP/1.") && reply.contains(" 200 "),
        "{reply}"
    );
    assert!(
        reply.ends_with(&page),
        "the page from bundles/web/www:\n{reply}"
    );
    // httpd listens on every address; the bound context has it on its own only.
    let other: SocketAddr = "127.0.0.1:8080".parse().expect("address");
    assert!(get(other).is_none(), "{other} answered too");
    assert_success(&rt.delete_force(&id), "delete --force");
    assert_nothing_left(&rt, &id);
}
