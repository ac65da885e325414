//! Never touch the host: configs that share a namespace with the caller (no `mount` entry, a
//! mount namespace joined by path, no uts namespace) must leave the caller's root, cwd and
//! mount table exactly as they were, whatever the outcome. Every test here runs vsrun from a
//! thread that first entered a private mount namespace of its own (shared "/" inside, like a
//! systemd host), so that a regression re-roots that thread's namespace and not the machine.

use serde_json::json;
use spec_tests::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What the caller's own filesystem view looks like: its root and cwd (device, inode) and its
/// mount table (mount point, type, propagation), read from the calling thread.
#[derive(Debug, PartialEq)]
struct CallerView {
    root: (u64, u64),
    cwd: (u64, u64),
    mounts: Vec<(String, String, Vec<String>)>,
}

impl CallerView {
    fn take() -> CallerView {
        let id = |p: &str| {
            let m = fs::metadata(p).unwrap_or_else(|e| panic!("stat {p}: {e}"));
            (m.dev(), m.ino())
        };
        let text = fs::read_to_string("/proc/thread-self/mountinfo").expect("mountinfo");
        let mounts = parse_mountinfo(&text)
            .into_iter()
            .map(|m| (m.mount_point, m.fs_type, m.optional))
            .collect();
        CallerView {
            root: id("/proc/thread-self/root/"),
            cwd: id("/proc/thread-self/cwd/"),
            mounts,
        }
    }
}

/// Run `f` on a fresh thread inside a new private mount namespace whose "/" is then made
/// rshared again (a systemd host's shape: peers would see what vsrun mounts), so that whatever
/// vsrun does to its caller's mount namespace stays in this throw-away one.
fn in_private_mount_ns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: unshare and mount with constant arguments, on this thread only.
        unsafe {
            assert_eq!(
                libc::unshare(libc::CLONE_NEWNS | libc::CLONE_FS),
                0,
                "unshare"
            );
            let root = c"/".as_ptr();
            let r = libc::mount(
                std::ptr::null(),
                root,
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            );
            assert_eq!(r, 0, "make / rprivate");
            let r = libc::mount(
                std::ptr::null(),
                root,
                std::ptr::null(),
                libc::MS_REC | libc::MS_SHARED,
                std::ptr::null(),
            );
            assert_eq!(r, 0, "make / rshared");
        }
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// runc's default config without a mount namespace: no hostname (that needs a uts namespace)
/// and no masked or read-only paths (runc refuses those without a mount namespace).
fn bundle_without(namespaces: serde_json::Value) -> Bundle {
    let mut b = Bundle::new();
    b.config["linux"]["namespaces"] = namespaces;
    let has_uts = b.config["linux"]["namespaces"]
        .as_array()
        .is_some_and(|a| a.iter().any(|n| n["type"] == "uts"));
    if !has_uts {
        b.config.as_object_mut().unwrap().remove("hostname");
    }
    let linux = b.config["linux"].as_object_mut().unwrap();
    linux.remove("maskedPaths");
    linux.remove("readonlyPaths");
    b
}

/// A file the caller can see and the container must not (its root is the rootfs).
fn host_marker() -> tempfile::NamedTempFile {
    tempfile::Builder::new()
        .prefix("vsrun-host-marker-")
        .tempfile_in("/tmp")
        .expect("marker")
}

const LOOK: &str = "test -e /probe && echo root=container; test -e \"$1\" && echo marker=seen; \
                    test -e /proc/self/status && echo proc=yes; pwd";

#[test]
fn no_mount_namespace_leaves_the_callers_root_cwd_and_mounts_alone() {
    in_private_mount_ns(|| {
        let before = CallerView::take();
        let marker = host_marker();
        let rt = Runtime::new();
        let mut b = bundle_without(json!([]));
        let m = marker.path().to_str().unwrap().to_string();
        b.set_args(&["sh", "-c", LOOK, "sh", &m]);
        let id = unique_id("nomnt");
        let o = rt.run(&b, &id);
        assert_success(&o, "run with linux.namespaces: []");
        let out = stdout_str(&o);
        assert!(out.contains("root=container"), "{}", output_text(&o));
        assert!(
            !out.contains("marker=seen"),
            "container sees the host's /tmp:\n{out}"
        );
        assert!(out.contains("proc=yes"), "{}", output_text(&o));
        assert_nothing_left(&rt, &id);
        assert_eq!(CallerView::take(), before, "the caller's view changed");
    });
}

#[test]
fn exec_into_a_container_without_a_mount_namespace_sees_the_containers_root() {
    in_private_mount_ns(|| {
        let before = CallerView::take();
        let marker = host_marker();
        let m = marker.path().to_str().unwrap().to_string();
        let rt = Runtime::new();
        let mut b = bundle_without(json!([{ "type": "pid" }]));
        b.set_args(&["sleep", "1000"]);
        let id = unique_id("nomnt-exec");
        assert_success(&rt.create(&b, &id), "create");
        rt.start(&id);
        let o = rt.cmd(&["exec", "--cwd", "/etc", &id, "sh", "-c", LOOK, "sh", &m]);
        assert_success(&o, "exec");
        let out = stdout_str(&o);
        assert!(out.contains("root=container"), "{}", output_text(&o));
        assert!(
            !out.contains("marker=seen"),
            "exec sees the host's root:\n{out}"
        );
        assert!(out.trim_end().ends_with("/etc"), "cwd: {out}");
        assert_success(&rt.cmd(&["kill", &id, "KILL"]), "kill");
        rt.wait_status(&id, "stopped", std::time::Duration::from_secs(10));
        assert_success(&rt.cmd(&["delete", &id]), "delete");
        assert_nothing_left(&rt, &id);
        assert_eq!(CallerView::take(), before, "the caller's view changed");
    });
}

/// Every subset without a new mount namespace, including a mount namespace joined by path
/// (someone else's: pivot_root there would re-root its processes) and a user namespace alone
/// (mounting in the caller's namespace is then not allowed at all): either the container runs
/// in its rootfs or create fails cleanly; the caller is unchanged either way.
#[test]
fn namespace_subsets_without_a_new_mount_namespace_never_touch_the_caller() {
    in_private_mount_ns(|| {
        let before = CallerView::take();
        let own_mnt = format!("/proc/{}/ns/mnt", unsafe { libc::gettid() });
        let cases = [
            (
                "all-but-mount",
                json!([{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"network"},{"type":"cgroup"}]),
            ),
            (
                "joined-mount",
                json!([{"type":"pid"},{"type":"mount","path": own_mnt}]),
            ),
            ("user-only", json!([{"type":"user"}])),
        ];
        for (name, ns) in cases {
            let rt = Runtime::new();
            let mut b = bundle_without(ns);
            if name == "user-only" {
                b.config["linux"]["uidMappings"] =
                    json!([{"containerID":0,"hostID":100000,"size":65536}]);
                b.config["linux"]["gidMappings"] =
                    json!([{"containerID":0,"hostID":100000,"size":65536}]);
            }
            b.set_args(&["sh", "-c", "test -e /probe && echo root=container"]);
            let id = unique_id(name);
            let o = rt.run(&b, &id);
            if o.status.success() {
                assert!(
                    stdout_str(&o).contains("root=container"),
                    "{name}: {}",
                    output_text(&o)
                );
            } else {
                assert_fails(&o, name);
            }
            assert_nothing_left(&rt, &id);
            assert_eq!(
                CallerView::take(),
                before,
                "{name}: the caller's view changed"
            );
        }
    });
}

/// What vsrun mounts in a shared mount namespace stays under the rootfs and is gone after
/// `delete` (runc 1.1.5 leaves all of it behind, and makes the caller's "/" private).
#[test]
fn delete_removes_what_was_mounted_in_a_shared_mount_namespace() {
    in_private_mount_ns(|| {
        let before = CallerView::take();
        let rt = Runtime::new();
        let mut b = bundle_without(json!([{ "type": "pid" }]));
        b.config["root"]["readonly"] = json!(true);
        b.set_args(&["sleep", "1000"]);
        let id = unique_id("nomnt-del");
        assert_success(&rt.create(&b, &id), "create");
        let rootfs = fs::canonicalize(b.rootfs()).unwrap();
        let mounted = mounts_under(&rootfs);
        assert!(mounted.iter().any(|m| m.ends_with("/proc")), "{mounted:?}");
        assert!(
            mounts_under(Path::new("/")).iter().all(|m| m == "/"
                || m.starts_with(rootfs.to_str().unwrap())
                || before.mounts.iter().any(|b| &b.0 == m)),
            "a mount outside the rootfs appeared"
        );
        assert_success(&rt.cmd(&["delete", "--force", &id]), "delete --force");
        assert_nothing_left(&rt, &id);
        assert_eq!(CallerView::take(), before, "the caller's view changed");
    });
}

/// sethostname without a uts namespace would rename the host (runc refuses the same way).
#[test]
fn hostname_without_a_uts_namespace_is_refused_and_the_host_keeps_its_name() {
    let before = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.remove_namespace("uts");
    b.config["hostname"] = json!("renamed-by-vsrun");
    let id = unique_id("nouts");
    let err = assert_fails(&rt.run(&b, &id), "hostname without uts");
    assert!(reference_mode() || err.contains("hostname"), "{err}");
    assert_nothing_left(&rt, &id);
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        before
    );
}
