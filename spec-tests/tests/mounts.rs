//! Mounts and the filesystem view (runtime-spec config.md "Mounts", "Root"; config-linux.md
//! "Devices", "Default Devices", "Default Filesystems", "Sysctl", "Masked Paths", "Readonly
//! Paths", "Rootfs Mount Propagation"), plus the path-confinement rules of design.md
//! (CVE-2021-30465, CVE-2025-31133, CVE-2025-52881 classes). Each test looks from inside (the
//! probe) and from the host (mount table, files next to the bundle).

use serde_json::{json, Value};
use spec_tests::*;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

/// The last mount the probe saw at `mp` (the one on top).
fn mount_at<'a>(seen: &'a Value, mp: &str) -> &'a Value {
    seen["mounts"]
        .as_array()
        .and_then(|a| a.iter().rev().find(|m| m["mount_point"] == mp))
        .unwrap_or_else(|| panic!("no mount at {mp} in the container: {:#}", seen["mounts"]))
}

fn options(m: &Value) -> Vec<String> {
    m["options"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn super_options(m: &Value) -> Vec<String> {
    m["super_options"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Run `/probe report -- ACTIONS...` and return (report, action results); asserts nothing was
/// left and that the host's mount table did not change.
fn probe_with(rt: &Runtime, b: &mut Bundle, actions: &[&str]) -> (Value, Vec<Value>) {
    let before = host_table();
    let mut args = vec!["report"];
    for a in actions.split(|a| *a == "--") {
        if !a.is_empty() {
            args.push("--");
            args.extend_from_slice(a);
        }
    }
    let mut lines = rt.probe_lines(b, &args);
    assert_bundle_clean(b.path());
    assert_eq!(before, host_table(), "the host's mount table changed");
    let report = lines.remove(0);
    (report, lines)
}

/// The errno an action failed with (asserting it failed).
fn errno_of(r: &Value, what: &str) -> i64 {
    assert_eq!(r["ok"], false, "{what}: expected a failure, got {r}");
    r["errno"]
        .as_i64()
        .unwrap_or_else(|| panic!("{what}: no errno in {r}"))
}

fn assert_ok(r: &Value, what: &str) {
    assert_eq!(r["ok"], true, "{what}: {r}");
}

const EROFS: i64 = libc::EROFS as i64;

/// Run a config that must fail; returns stderr. Nothing may be left behind.
fn run_fails(rt: &Runtime, b: &Bundle, what: &str) -> String {
    let before = host_table();
    let id = unique_id("mfail");
    let o = rt.run(b, &id);
    let err = assert_fails(&o, what);
    assert_nothing_left(rt, &id);
    assert_eq!(
        before,
        host_table(),
        "{what}: the host's mount table changed"
    );
    err
}

#[test]
fn proc_is_mounted_with_config_options() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["mounts"][0] = json!({
        "destination": "/proc", "type": "proc", "source": "proc",
        "options": ["nosuid", "noexec", "nodev"]
    });
    let (seen, _) = probe_with(&rt, &mut b, &[]);
    let m = mount_at(&seen, "/proc");
    assert_eq!(m["fs_type"], "proc");
    for o in ["nosuid", "noexec", "nodev"] {
        assert!(options(m).contains(&o.to_string()), "/proc lacks {o}: {m}");
    }
    // the container's own pid namespace is what /proc shows
    assert_eq!(seen["pid"], 1);
}

#[test]
fn default_filesystems_are_mounted() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let (seen, _) = probe_with(&rt, &mut b, &[]);
    for (mp, fs) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
    ] {
        assert_eq!(mount_at(&seen, mp)["fs_type"], fs, "{mp}");
    }
    assert!(options(mount_at(&seen, "/sys")).contains(&"ro".to_string()));
}

#[test]
fn bind_mount_ro_is_read_only() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("file"), "host data").unwrap();
    add_mount(
        &mut b,
        json!({"destination": "/data", "type": "bind",
               "source": host.path(), "options": ["rbind", "ro", "nosuid"]}),
    );
    let (seen, r) = probe_with(
        &rt,
        &mut b,
        &["read", "/data/file", "--", "write", "/data/new", "x"],
    );
    let m = mount_at(&seen, "/data");
    assert!(options(m).contains(&"ro".to_string()), "{m}");
    assert!(options(m).contains(&"nosuid".to_string()), "{m}");
    assert_eq!(r[0]["data"], "host data");
    assert_eq!(errno_of(&r[1], "write into a ro bind"), EROFS);
    assert!(!host.path().join("new").exists(), "host dir got a file");
}

#[test]
fn bind_mount_without_ro_is_writable_and_shared_with_the_host() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let host = tempfile::tempdir().unwrap();
    add_mount(
        &mut b,
        json!({"destination": "/data", "type": "bind", "source": host.path(), "options": ["bind"]}),
    );
    let (_, r) = probe_with(&rt, &mut b, &["write", "/data/new", "from inside"]);
    assert_ok(&r[0], "write into a rw bind");
    assert_eq!(
        fs::read_to_string(host.path().join("new")).unwrap(),
        "from inside"
    );
}

#[test]
fn bind_mount_of_a_file_creates_the_destination() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let host = tempfile::tempdir().unwrap();
    let f = host.path().join("conf");
    fs::write(&f, "file content").unwrap();
    add_mount(
        &mut b,
        json!({"destination": "/new/dir/conf", "type": "bind", "source": f, "options": ["bind", "ro"]}),
    );
    let (seen, r) = probe_with(&rt, &mut b, &["read", "/new/dir/conf"]);
    assert_eq!(r[0]["data"], "file content");
    assert!(options(mount_at(&seen, "/new/dir/conf")).contains(&"ro".to_string()));
    assert!(
        b.rootfs().join("new/dir/conf").is_file(),
        "the destination was not created as a file"
    );
}

#[test]
fn tmpfs_data_options_apply() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    add_mount(
        &mut b,
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "mode=1770", "size=1m"]}),
    );
    let (seen, r) = probe_with(&rt, &mut b, &["stat", "/scratch"]);
    let m = mount_at(&seen, "/scratch");
    assert_eq!(m["fs_type"], "tmpfs");
    assert!(options(m).contains(&"nosuid".to_string()), "{m}");
    assert!(options(m).contains(&"nodev".to_string()), "{m}");
    assert!(super_options(m).contains(&"size=1024k".to_string()), "{m}");
    assert_eq!(r[0]["mode_octal"], "1770");
}

#[test]
fn flag_options_map_to_mount_flags() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    add_mount(
        &mut b,
        json!({"destination": "/a", "type": "tmpfs", "source": "tmpfs",
               "options": ["ro", "nosuid", "nodev", "noexec", "noatime", "nodiratime"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/b", "type": "tmpfs", "source": "tmpfs",
               "options": ["ro", "rw", "nosuid", "suid", "strictatime"]}),
    );
    let (seen, _) = probe_with(&rt, &mut b, &[]);
    let a = options(mount_at(&seen, "/a"));
    for o in ["ro", "nosuid", "nodev", "noexec", "noatime", "nodiratime"] {
        assert!(a.contains(&o.to_string()), "/a lacks {o}: {a:?}");
    }
    let bo = options(mount_at(&seen, "/b"));
    assert!(bo.contains(&"rw".to_string()), "{bo:?}");
    for o in ["nosuid", "relatime", "noatime"] {
        assert!(!bo.contains(&o.to_string()), "/b has {o}: {bo:?}");
    }
}

#[test]
fn propagation_option_shared_applies() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    add_mount(
        &mut b,
        json!({"destination": "/sh", "type": "tmpfs", "source": "tmpfs", "options": ["shared"]}),
    );
    let (seen, _) = probe_with(&rt, &mut b, &[]);
    assert_eq!(mount_at(&seen, "/sh")["propagation"], "shared");
}

#[test]
fn propagation_option_unbindable_applies() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    add_mount(
        &mut b,
        json!({"destination": "/ub", "type": "tmpfs", "source": "tmpfs", "options": ["unbindable"]}),
    );
    let (seen, _) = probe_with(&rt, &mut b, &[]);
    assert_eq!(mount_at(&seen, "/ub")["propagation"], "unbindable");
}

#[test]
fn rootfs_propagation_rshared_makes_the_root_shared() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["rootfsPropagation"] = "rshared".into();
    let (seen, _) = probe_with(&rt, &mut b, &[]);
    assert_eq!(mount_at(&seen, "/")["propagation"], "shared");
    assert_eq!(mount_at(&seen, "/proc")["propagation"], "shared");
}

#[test]
fn rootfs_propagation_private_makes_the_root_private() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["rootfsPropagation"] = "rprivate".into();
    let (seen, _) = probe_with(&rt, &mut b, &[]);
    assert_eq!(mount_at(&seen, "/")["propagation"], "private");
}

/// runc's rootfsParentMountPrivate: with `rootfsPropagation: rshared` the mount holding the
/// rootfs stays shared, a peer of the caller's own. vsrun makes it private in the container's
/// namespace before binding the rootfs onto itself (pivot_root refuses a shared parent), so
/// the caller never receives that bind and keeps its mount shared. vsrun finds the mount by
/// statmount(2) on Linux 6.8+ and in /proc/self/mountinfo before (the v2 VM lane's 6.1).
#[test]
fn rootfs_on_a_shared_mount_is_made_private_in_the_container_only() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["rootfsPropagation"] = "rshared".into();
    b.write_if_changed();
    let id = unique_id("shared-parent");
    rt.remember_bundle(&id, b.path());
    let o = unprotected_sh(&format!(
        "r={r}; mount --bind \"$r\" \"$r\"; mount --make-shared \"$r\"; \
         {v} --root {root} run --bundle {b} {id} >/dev/null || echo RUN-FAILED; \
         awk -v r=\"$r\" '$5 == r {{ print \"AT-ROOTFS\", $0 }}' /proc/self/mountinfo",
        r = sh_quote(&b.rootfs()),
        v = sh_quote(&vsrun_bin()),
        root = sh_quote(rt.root()),
        b = sh_quote(b.path()),
    ));
    let out = stdout_str(&o);
    assert!(
        !out.contains("RUN-FAILED"),
        "run failed\n{}",
        output_text(&o)
    );
    let at: Vec<&str> = out.lines().filter(|l| l.starts_with("AT-ROOTFS")).collect();
    assert_eq!(
        at.len(),
        1,
        "the caller's mounts at the rootfs: only its own bind\n{}",
        output_text(&o)
    );
    assert!(
        at[0].contains(" shared:"),
        "the caller's mount lost its propagation\n{}",
        output_text(&o)
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn default_devices_exist_with_right_numbers() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let devs = [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ];
    let mut actions = Vec::new();
    for (p, _, _) in devs {
        actions.extend(["stat", p, "--"]);
    }
    actions.extend(["read", "/dev/null"]);
    let (_, r) = probe_with(&rt, &mut b, &actions);
    for (i, (p, major, minor)) in devs.iter().enumerate() {
        assert_eq!(r[i]["type"], "char", "{p}: {}", r[i]);
        assert_eq!(
            (r[i]["rdev_major"].clone(), r[i]["rdev_minor"].clone()),
            (json!(major), json!(minor)),
            "{p}"
        );
        assert_eq!(r[i]["mode_octal"], "666", "{p}");
    }
    assert_eq!(r[devs.len()]["len"], 0, "/dev/null is not empty");
}

#[test]
fn linux_devices_are_created() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 1, "gid": 2},
        {"path": "/dev/sub/myblk", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600},
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o620}
    ]);
    let (_, r) = probe_with(
        &rt,
        &mut b,
        &[
            "stat",
            "/dev/fuse",
            "--",
            "stat",
            "/dev/sub/myblk",
            "--",
            "stat",
            "/dev/myfifo",
        ],
    );
    assert_eq!(r[0]["type"], "char");
    assert_eq!(
        (r[0]["rdev_major"].clone(), r[0]["rdev_minor"].clone()),
        (json!(10), json!(229))
    );
    assert_eq!(
        (
            r[0]["mode_octal"].clone(),
            r[0]["uid"].clone(),
            r[0]["gid"].clone()
        ),
        (json!("640"), json!(1), json!(2))
    );
    assert_eq!(r[1]["type"], "block");
    assert_eq!(
        (r[1]["rdev_major"].clone(), r[1]["rdev_minor"].clone()),
        (json!(7), json!(200))
    );
    assert_eq!(r[1]["mode_octal"], "600");
    assert_eq!(r[2]["type"], "fifo");
    assert_eq!(r[2]["mode_octal"], "620");
}

#[test]
fn devices_are_bind_mounted_in_a_user_namespace() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).unwrap();
    b.set_namespace("user", None);
    b.config["linux"]["uidMappings"] =
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    b.config["linux"]["gidMappings"] =
        json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    let (seen, r) = probe_with(
        &rt,
        &mut b,
        &["stat", "/dev/null", "--", "read", "/dev/zero"],
    );
    assert_eq!(r[0]["type"], "char");
    assert_eq!(
        (r[0]["rdev_major"].clone(), r[0]["rdev_minor"].clone()),
        (json!(1), json!(3))
    );
    assert!(
        has_mount_at(&seen, "/dev/null"),
        "/dev/null is not a bind of the host's node"
    );
    // /dev/zero reads as an endless stream of zeros: the probe caps its read
    assert_ok(&r[1], "read /dev/zero");
    assert!(r[1]["len"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn dev_symlinks_exist() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let links = [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/ptmx", "pts/ptmx"),
    ];
    let mut actions = Vec::new();
    for (l, _) in links {
        actions.extend(["readlink", l, "--"]);
    }
    actions.pop();
    let (_, r) = probe_with(&rt, &mut b, &actions);
    for (i, (l, t)) in links.iter().enumerate() {
        assert_eq!(r[i]["target"], *t, "{l}: {}", r[i]);
    }
    if Path::new("/proc/kcore").exists() {
        // runc links /dev/core when the host has /proc/kcore
        let (_, r) = probe_with(&rt, &mut b, &["readlink", "/dev/core"]);
        assert_eq!(r[0]["target"], "/proc/kcore");
    }
}

#[test]
fn masked_file_reads_empty() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    fs::write(b.rootfs().join("secret"), "top secret").unwrap();
    b.config["linux"]["maskedPaths"] = json!(["/secret", "/proc/keys", "/does/not/exist"]);
    let (_, r) = probe_with(
        &rt,
        &mut b,
        &[
            "read",
            "/secret",
            "--",
            "stat",
            "/secret",
            "--",
            "read",
            "/proc/keys",
        ],
    );
    assert_eq!(r[0]["len"], 0, "masked file is readable: {}", r[0]);
    assert_eq!(r[1]["type"], "char");
    assert_eq!(
        (r[1]["rdev_major"].clone(), r[1]["rdev_minor"].clone()),
        (json!(1), json!(3))
    );
    if r[2]["ok"] == true {
        assert_eq!(r[2]["len"], 0, "/proc/keys is not masked");
    }
}

#[test]
fn masked_dir_is_empty_tmpfs() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    fs::create_dir_all(b.rootfs().join("secrets")).unwrap();
    fs::write(b.rootfs().join("secrets/key"), "k").unwrap();
    b.config["linux"]["maskedPaths"] = json!(["/secrets"]);
    let (seen, r) = probe_with(
        &rt,
        &mut b,
        &["ls", "/secrets", "--", "write", "/secrets/new", "x"],
    );
    assert_eq!(r[0]["entries"], json!([]), "masked dir shows entries");
    let m = mount_at(&seen, "/secrets");
    assert_eq!(m["fs_type"], "tmpfs");
    assert!(options(m).contains(&"ro".to_string()), "{m}");
    assert_eq!(errno_of(&r[1], "write into a masked dir"), EROFS);
    assert_eq!(
        fs::read_to_string(b.rootfs().join("secrets/key")).unwrap(),
        "k"
    );
}

#[test]
fn readonly_paths_refuse_writes() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    fs::create_dir_all(b.rootfs().join("rodir")).unwrap();
    b.config["linux"]["readonlyPaths"] = json!(["/rodir", "/proc/sys", "/not/there"]);
    let (seen, r) = probe_with(
        &rt,
        &mut b,
        &[
            "write",
            "/rodir/x",
            "y",
            "--",
            "write",
            "/proc/sys/kernel/hostname",
            "changed",
            "--",
            "write",
            "/tmp/ok",
            "fine",
        ],
    );
    assert_eq!(errno_of(&r[0], "write under a readonly path"), EROFS);
    assert_eq!(errno_of(&r[1], "write to /proc/sys"), EROFS);
    assert_ok(&r[2], "write elsewhere");
    // Read-only only, as with runc: the flags of the covered mount stay (a read-only /usr
    // must still run its programs).
    let m = mount_at(&seen, "/rodir");
    assert!(
        options(m).contains(&"ro".to_string()),
        "/rodir is not ro: {m}"
    );
    assert!(
        !options(m).contains(&"noexec".to_string()),
        "/rodir became noexec: {m}"
    );
}

#[test]
fn sysctl_is_written() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let host_shmmax = fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let host_fwd = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let want_fwd = if host_fwd.trim() == "1" { "0" } else { "1" };
    b.config["linux"]["sysctl"] = json!({
        "kernel.shmmax": "12345678",
        "net.ipv4.ip_forward": want_fwd
    });
    let (_, r) = probe_with(
        &rt,
        &mut b,
        &[
            "read",
            "/proc/sys/kernel/shmmax",
            "--",
            "read",
            "/proc/sys/net/ipv4/ip_forward",
        ],
    );
    assert_eq!(r[0]["data"], "12345678\n");
    assert_eq!(r[1]["data"], format!("{want_fwd}\n"));
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        host_shmmax
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
}

/// CVE-2025-52881 class: a mount from the config over the sysctl file must not receive the
/// write (it would land in whatever file was bound there).
#[test]
fn sysctl_write_cannot_be_redirected_by_a_mount() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let host = tempfile::tempdir().unwrap();
    let target = host.path().join("ns_last_pid");
    fs::write(&target, "untouched").unwrap();
    add_mount(
        &mut b,
        json!({"destination": "/proc/sys/kernel/ns_last_pid", "type": "bind",
               "source": target, "options": ["bind"]}),
    );
    b.config["linux"]["sysctl"] = json!({"kernel.ns_last_pid": "4242"});
    let err = run_fails(&rt, &b, "sysctl through a bind mount");
    assert!(
        err.contains("linux.sysctl"),
        "error does not name the field: {err}"
    );
    assert_eq!(fs::read_to_string(&target).unwrap(), "untouched");
}

#[test]
fn root_readonly_refuses_writes() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = true.into();
    let (seen, r) = probe_with(
        &rt,
        &mut b,
        &["write", "/x", "y", "--", "write", "/dev/shm/x", "y"],
    );
    assert_eq!(errno_of(&r[0], "write to a read-only root"), EROFS);
    assert_ok(&r[1], "write to a tmpfs on a read-only root");
    assert!(options(mount_at(&seen, "/")).contains(&"ro".to_string()));
    assert!(!b.rootfs().join("x").exists());
}

#[test]
fn no_pivot_runs_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "report", "--", "ls", "/"]);
    b.write_if_changed();
    let before = host_table();
    let id = unique_id("nopivot");
    let o = rt.cmd(&["run", "--no-pivot", "--bundle", b.path_str(), &id]);
    assert_success(&o, "run --no-pivot");
    let lines = parse_json_lines(&o.stdout).expect("probe JSON");
    assert_eq!(lines[0]["cwd"], "/");
    let entries = &lines[1]["entries"];
    assert!(
        entries.as_array().unwrap().contains(&json!("probe")),
        "{entries}"
    );
    assert!(has_mount_at(&lines[0], "/proc"));
    assert_nothing_left(&rt, &id);
    assert_eq!(before, host_table());
}

#[test]
fn no_pivot_refuses_private_rootfs_propagation() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["rootfsPropagation"] = "rprivate".into();
    b.write_if_changed();
    let id = unique_id("nopivot");
    let o = rt.cmd(&["run", "--no-pivot", "--bundle", b.path_str(), &id]);
    let err = assert_fails(&o, "run --no-pivot with rprivate");
    assert!(
        reference_mode() || err.contains("linux.rootfsPropagation"),
        "{err}"
    );
    assert_nothing_left(&rt, &id);
}

/// CVE-2021-30465 class: rootfs/etc2 is a symlink to a host directory; a mount on /etc2/x must
/// land inside the rootfs (at rootfs/<hostdir>/x), never on the host.
#[test]
fn symlink_destination_cannot_escape_rootfs() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("keep"), "host").unwrap();
    symlink(host.path(), b.rootfs().join("etc2")).unwrap();
    add_mount(
        &mut b,
        json!({"destination": "/etc2/x", "type": "tmpfs", "source": "tmpfs"}),
    );
    let (seen, r) = probe_with(&rt, &mut b, &["write", "/etc2/x/inside", "1"]);
    assert_ok(&r[0], "write into the tmpfs");
    let inside = host.path().join("x");
    assert!(
        has_mount_at(&seen, &inside.to_string_lossy()),
        "mount not where the symlink points inside the rootfs"
    );
    assert!(
        !inside.exists(),
        "the host directory got {}",
        inside.display()
    );
    let entries: Vec<_> = fs::read_dir(host.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        entries,
        vec![std::ffi::OsString::from("keep")],
        "host dir changed"
    );
    let in_rootfs = b
        .rootfs()
        .join(host.path().strip_prefix("/").unwrap())
        .join("x");
    assert!(
        in_rootfs.is_dir(),
        "destination not created inside the rootfs"
    );
}

#[test]
fn relative_symlink_destination_cannot_escape_rootfs() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let host = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("f"), "bound").unwrap();
    let ups = "../".repeat(20);
    let rel = format!("{ups}{}", host.path().strip_prefix("/").unwrap().display());
    symlink(&rel, b.rootfs().join("up")).unwrap();
    add_mount(
        &mut b,
        json!({"destination": "/up/y", "type": "bind", "source": src.path(), "options": ["rbind"]}),
    );
    let (_, r) = probe_with(&rt, &mut b, &["read", "/up/y/f"]);
    assert_eq!(r[0]["data"], "bound");
    assert_eq!(
        fs::read_dir(host.path()).unwrap().count(),
        0,
        "host dir changed"
    );
}

/// A symlink into /proc must not make a mount land inside procfs (runc's checkProcMount,
/// applied after resolution).
#[test]
fn symlink_into_proc_cannot_be_a_mount_destination() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    symlink("/proc/sys", b.rootfs().join("psys")).unwrap();
    add_mount(
        &mut b,
        json!({"destination": "/psys/kernel", "type": "tmpfs", "source": "tmpfs"}),
    );
    let err = run_fails(&rt, &b, "mount through a symlink into /proc");
    assert!(
        reference_mode() || err.contains("mounts[6]"),
        "error does not name the mount: {err}"
    );
}

#[test]
fn mount_inside_proc_is_refused() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    add_mount(
        &mut b,
        json!({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}),
    );
    let err = run_fails(&rt, &b, "tmpfs over /proc/sys");
    assert!(
        reference_mode() || err.contains("mounts[6].destination"),
        "{err}"
    );
}

/// CVE-2025-31133 class: /dev is not a tmpfs and the image's /dev/null is a symlink to a host
/// file. Masking must bind a real /dev/null (char 1:3), never what the symlink points to, and
/// the host file stays untouched.
#[test]
fn masking_binds_a_verified_dev_null_when_the_images_is_a_symlink() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let host = tempfile::tempdir().unwrap();
    let victim = host.path().join("victim");
    fs::write(&victim, "host file").unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap_or("").starts_with("/dev"));
    symlink(&victim, b.rootfs().join("dev/null")).unwrap();
    fs::write(b.rootfs().join("secret"), "top secret").unwrap();
    b.config["linux"]["maskedPaths"] = json!(["/secret", "/proc/timer_list"]);
    let (_, r) = probe_with(
        &rt,
        &mut b,
        &[
            "read",
            "/secret",
            "--",
            "stat",
            "/secret",
            "--",
            "write",
            "/secret",
            "overwrite",
        ],
    );
    assert_eq!(r[0]["len"], 0, "masked file readable: {}", r[0]);
    assert_eq!(r[1]["type"], "char");
    assert_eq!(
        (r[1]["rdev_major"].clone(), r[1]["rdev_minor"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(
        fs::read_to_string(&victim).unwrap(),
        "host file",
        "host file changed"
    );
    assert_eq!(
        fs::read_link(b.rootfs().join("dev/null")).unwrap(),
        victim,
        "the image's /dev/null was replaced"
    );
    assert_eq!(
        fs::read_to_string(b.rootfs().join("secret")).unwrap(),
        "top secret"
    );
}

#[test]
fn cgroup_mount_shows_the_hierarchies_read_only() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_namespace("cgroup", None);
    add_mount(
        &mut b,
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    );
    let (seen, r) = probe_with(
        &rt,
        &mut b,
        &[
            "ls",
            "/sys/fs/cgroup",
            "--",
            "write",
            "/sys/fs/cgroup/x",
            "y",
        ],
    );
    let top = mount_at(&seen, "/sys/fs/cgroup");
    assert!(options(top).contains(&"ro".to_string()), "{top}");
    let entries = r[0]["entries"]
        .as_array()
        .expect("ls /sys/fs/cgroup")
        .clone();
    assert!(!entries.is_empty(), "no hierarchy under /sys/fs/cgroup");
    let mounts = seen["mounts"].as_array().unwrap();
    let cg: Vec<&Value> = mounts
        .iter()
        .filter(|m| {
            m["mount_point"]
                .as_str()
                .unwrap_or("")
                .starts_with("/sys/fs/cgroup")
                && m["fs_type"].as_str().unwrap_or("").starts_with("cgroup")
        })
        .collect();
    assert!(
        !cg.is_empty(),
        "no cgroup file system mounted: {:#}",
        seen["mounts"]
    );
    for m in cg {
        assert!(
            options(m).contains(&"ro".to_string()),
            "cgroup mount not ro: {m}"
        );
    }
    assert_eq!(errno_of(&r[1], "write into /sys/fs/cgroup"), EROFS);
}

#[test]
fn tmpcopyup_copies_the_rootfs_contents() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    fs::create_dir_all(b.rootfs().join("var/cache/sub")).unwrap();
    fs::write(b.rootfs().join("var/cache/a"), "from image").unwrap();
    symlink("a", b.rootfs().join("var/cache/l")).unwrap();
    add_mount(
        &mut b,
        json!({"destination": "/var/cache", "type": "tmpfs", "source": "tmpfs",
               "options": ["tmpcopyup", "mode=750"]}),
    );
    let (seen, r) = probe_with(
        &rt,
        &mut b,
        &[
            "read",
            "/var/cache/l",
            "--",
            "ls",
            "/var/cache",
            "--",
            "write",
            "/var/cache/new",
            "x",
            "--",
            "stat",
            "/var/cache",
        ],
    );
    assert_eq!(mount_at(&seen, "/var/cache")["fs_type"], "tmpfs");
    assert_eq!(r[0]["data"], "from image");
    assert_eq!(r[1]["entries"], json!(["a", "l", "sub"]));
    assert_ok(&r[2], "write into the tmpfs");
    assert_eq!(r[3]["mode_octal"], "750");
    assert!(
        !b.rootfs().join("var/cache/new").exists(),
        "the write reached the image"
    );
}

#[test]
fn mount_failure_names_the_mount() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    add_mount(
        &mut b,
        json!({"destination": "/bad", "type": "tmpfs", "source": "tmpfs", "options": ["mode=notoctal"]}),
    );
    let err = run_fails(&rt, &b, "tmpfs with a bad mode");
    assert!(reference_mode() || err.contains("mounts[6]"), "{err}");
}

#[test]
fn missing_bind_source_names_the_mount() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    add_mount(
        &mut b,
        json!({"destination": "/m", "type": "bind", "source": "/nonexistent/vsrun/src", "options": ["bind"]}),
    );
    let err = run_fails(&rt, &b, "bind of a missing source");
    assert!(reference_mode() || err.contains("mounts[6]"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// What runc and crun accept (issue 16): devices outside /dev, FIFOs with numbers, runc's
// sysctl slash form, a missing cwd under a read-only root, bind sources only the host's root
// can reach with a user namespace.

/// config-linux.md "Devices" puts no rule on where a node lives: runc and crun create it at
/// its path in the rootfs, parents included.
#[test]
fn devices_outside_dev_are_created_with_their_parents() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["devices"] = json!([
        {"path": "/foo-dev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666},
        {"path": "/sub/dir/foo-dev", "type": "c", "major": 1, "minor": 5, "fileMode": 0o640}
    ]);
    let (_, r) = probe_with(
        &rt,
        &mut b,
        &[
            "stat",
            "/foo-dev",
            "--",
            "stat",
            "/sub/dir/foo-dev",
            "--",
            "write",
            "/foo-dev",
            "x",
        ],
    );
    assert_eq!(r[0]["type"], "char");
    assert_eq!(
        (r[0]["rdev_major"].clone(), r[0]["rdev_minor"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(r[1]["type"], "char");
    assert_eq!(
        (r[1]["rdev_major"].clone(), r[1]["rdev_minor"].clone()),
        (json!(1), json!(5))
    );
    assert_eq!(r[1]["mode_octal"], "640");
    assert_ok(&r[2], "write to the /dev/null node at /foo-dev");
    // The host sees them in the rootfs and nowhere else.
    assert!(b.rootfs().join("sub/dir/foo-dev").exists());
    assert!(!Path::new("/sub/dir/foo-dev").exists());
}

/// A device path through a symlink of the rootfs that points at a host directory is resolved
/// inside the rootfs (CVE-2021-30465 class): the node and its missing parents land there.
#[test]
fn device_path_through_a_symlink_stays_in_the_rootfs() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let host = tempfile::tempdir().unwrap();
    symlink(host.path(), b.rootfs().join("evil")).unwrap();
    b.config["linux"]["devices"] = json!([
        {"path": "/evil/made/node", "type": "c", "major": 1, "minor": 3}
    ]);
    let (_, r) = probe_with(&rt, &mut b, &["stat", "/evil/made/node"]);
    assert_eq!(r[0]["type"], "char");
    assert_eq!(
        fs::read_dir(host.path()).unwrap().count(),
        0,
        "the host directory was written"
    );
    let inside = b
        .rootfs()
        .join(host.path().strip_prefix("/").unwrap())
        .join("made/node");
    assert!(inside.exists(), "{} missing", inside.display());
}

/// config-linux.md: major and minor are required for every type but p. runc and crun accept
/// them on a FIFO and ignore them (mknod does).
#[test]
fn fifo_device_with_numbers_is_a_fifo() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/numbered-fifo", "type": "p", "major": 3, "minor": 4, "fileMode": 0o600}
    ]);
    let (_, r) = probe_with(&rt, &mut b, &["stat", "/dev/numbered-fifo"]);
    assert_eq!(r[0]["type"], "fifo");
    assert_eq!(r[0]["mode_octal"], "600");
}

/// runc's sysctl model: a key whose first separator is '/' uses '/' between components, so a
/// '.' in it belongs to the name (an interface such as `eth0.100`).
#[test]
fn sysctl_slash_form_names_interfaces_with_dots() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let holder = NsHolder::new(&["--net"]);
    let pid = holder.pid.to_string();
    let st = std::process::Command::new("nsenter")
        .args([
            "-t", &pid, "-n", "ip", "link", "add", "eth0.100", "type", "veth",
        ])
        .args(["peer", "name", "vsrun-peer"])
        .status()
        .unwrap();
    assert!(st.success(), "ip link add eth0.100");
    b.set_namespace("network", Some(&holder.ns_path("net")));
    b.config["linux"]["sysctl"] = json!({
        "net/ipv4/conf/eth0.100/rp_filter": "2",
        "net/ipv4/ip_forward": "1"
    });
    let (_, r) = probe_with(
        &rt,
        &mut b,
        &[
            "read",
            "/proc/sys/net/ipv4/conf/eth0.100/rp_filter",
            "--",
            "read",
            "/proc/sys/net/ipv4/ip_forward",
        ],
    );
    assert_eq!(r[0]["data"], "2\n");
    assert_eq!(r[1]["data"], "1\n");
    let host_view = std::process::Command::new("nsenter")
        .args([
            "-t",
            &pid,
            "-n",
            "cat",
            "/proc/sys/net/ipv4/conf/eth0.100/rp_filter",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&host_view.stdout), "2\n");
}

/// runc creates a missing process.cwd while it sets up the rootfs, before the root is made
/// read-only; the process still starts there.
#[test]
fn missing_cwd_is_created_under_a_readonly_root() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["root"]["readonly"] = true.into();
    b.config["process"]["cwd"] = "/new/work/dir".into();
    let (seen, r) = probe_with(&rt, &mut b, &["write", "/new/work/dir/x", "y"]);
    assert_eq!(seen["cwd"], "/new/work/dir");
    assert_eq!(errno_of(&r[0], "write under a read-only root"), EROFS);
    assert!(b.rootfs().join("new/work/dir").is_dir());
}

/// The early creation of the cwd stays confined: a symlink in the rootfs to a host directory
/// gets the missing directories made inside the rootfs, and the process runs there.
#[test]
fn missing_cwd_through_a_symlink_is_created_in_the_rootfs() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let host = tempfile::tempdir().unwrap();
    symlink(host.path(), b.rootfs().join("evil")).unwrap();
    b.config["root"]["readonly"] = true.into();
    b.config["process"]["cwd"] = "/evil/cwd".into();
    let seen = rt.probe(&mut b, &[]);
    // getcwd shows the link resolved inside the container's root.
    assert_eq!(seen["cwd"], format!("{}/cwd", host.path().display()));
    assert_eq!(
        fs::read_dir(host.path()).unwrap().count(),
        0,
        "the host directory was written"
    );
    assert!(b
        .rootfs()
        .join(host.path().strip_prefix("/").unwrap())
        .join("cwd")
        .is_dir());
}

/// Bind sources are opened by the runtime with the host's root rights, as runc 1.1 does with
/// its mount fds: a source below a 0700 or 000 directory still works when the container has a
/// user namespace (whose root cannot search those directories).
#[test]
fn bind_sources_behind_root_only_directories_work_with_a_user_namespace() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let host = tempfile::tempdir().unwrap();
    let private = host.path().join("private");
    let closed = host.path().join("closed");
    for (dir, mode) in [(&private, 0o700), (&closed, 0o000)] {
        fs::create_dir_all(dir.join("src")).unwrap();
        fs::write(dir.join("src/data"), "reachable").unwrap();
        fs::set_permissions(dir.join("src"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(dir.join("src/data"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(mode)).unwrap();
    }
    fs::write(host.path().join("file"), "a file").unwrap();
    fs::set_permissions(host.path().join("file"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(host.path(), fs::Permissions::from_mode(0o700)).unwrap();
    b.set_namespace("user", None);
    b.config["linux"]["uidMappings"] =
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    b.config["linux"]["gidMappings"] =
        json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    add_mount(
        &mut b,
        json!({"destination": "/tmp/private", "type": "bind",
               "source": private.join("src"), "options": ["rbind", "ro"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/tmp/closed", "type": "bind",
               "source": closed.join("src"), "options": ["bind"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/tmp/file", "type": "bind",
               "source": host.path().join("file"), "options": ["bind"]}),
    );
    let (seen, r) = probe_with(
        &rt,
        &mut b,
        &[
            "read",
            "/tmp/private/data",
            "--",
            "read",
            "/tmp/closed/data",
            "--",
            "read",
            "/tmp/file",
        ],
    );
    assert_eq!(r[0]["data"], "reachable");
    assert_eq!(r[1]["data"], "reachable");
    assert_eq!(r[2]["data"], "a file");
    assert!(options(mount_at(&seen, "/tmp/private")).contains(&"ro".to_string()));
    fs::set_permissions(&closed, fs::Permissions::from_mode(0o700)).unwrap();
}

/// `runc spec --rootless`'s shape: a user namespace, /sys as an rbind of the host's and a
/// cgroup mount below it. The rbind is still cloned by the init (its sources are reachable by
/// the mapped root), so the cgroup mount finds the container's own cgroup.
#[test]
fn rootless_shape_rbind_sys_with_a_cgroup_mount_runs() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).unwrap();
    b.set_namespace("user", None);
    b.config["linux"]["uidMappings"] =
        json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    b.config["linux"]["gidMappings"] =
        json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    for m in b.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/sys" {
            *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
        }
    }
    add_mount(
        &mut b,
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    );
    let (seen, _) = probe_with(&rt, &mut b, &[]);
    assert!(has_mount_at(&seen, "/sys/fs/cgroup"));
}
