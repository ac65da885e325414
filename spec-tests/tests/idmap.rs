//! Idmapped bind mounts (runtime-spec 1.2 `mounts[].uidMappings/gidMappings`, `idmap`,
//! `ridmap`) and configured devices in a user namespace.
//!
//! A mapping `{containerID: 1000, hostID: H, size: 1}` on a mount shows the file system's
//! uid 1000 as host uid H through that mount (and H as whatever the container's user
//! namespace maps it to). ext4 and overlay are mounted by each test in a private mount
//! namespace (`unshare -m --propagation private`) that vsrun runs in, so nothing is left on
//! the host whatever happens to the test.

use serde_json::{json, Value};
use spec_tests::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

const OWNER: u32 = 1000;

fn map(container: u32, host: u32, size: u32) -> Value {
    json!([{ "containerID": container, "hostID": host, "size": size }])
}

fn userns(b: &mut Bundle) {
    // The mapped root (host uid 100000) must be able to reach the rootfs.
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).unwrap();
    b.set_namespace("user", None);
    b.config["linux"]["uidMappings"] = map(0, 100000, 65536);
    b.config["linux"]["gidMappings"] = map(0, 100000, 65536);
    // The destination exists: the mapped root cannot write the host-owned rootfs.
    fs::create_dir_all(b.rootfs().join("m")).unwrap();
}

/// A directory with a file `f`, both owned by OWNER:OWNER, mode 755/644.
fn owned_dir(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("f"), "x").unwrap();
    for p in [dir.to_path_buf(), dir.join("f")] {
        std::os::unix::fs::chown(&p, Some(OWNER), Some(OWNER)).unwrap();
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The container reports the owner of /m/f and creates /m/new as its root.
const SCRIPT: &str = "stat -c 'inside %u:%g' /m/f && touch /m/new && echo wrote";

fn owner_of(p: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let md = fs::metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
    format!("{}:{}", md.uid(), md.gid())
}

fn idmapped(b: &mut Bundle, source: &Path, option: &str, mapping: Option<(Value, Value)>) {
    let mut m = json!({ "destination": "/m", "type": "bind", "source": source,
        "options": ["rbind", option] });
    if let Some((u, g)) = mapping {
        m["uidMappings"] = u;
        m["gidMappings"] = g;
    }
    add_mount(b, m);
    b.set_args(&["/bin/sh", "-c", SCRIPT]);
}

/// `vsrun run` inside a private mount namespace, after `setup` (shell) ran there; after the
/// container, `after` (shell) runs too. Returns stdout, asserting success.
fn run_private(rt: &Runtime, b: &Bundle, id: &str, setup: &str, after: &str) -> String {
    b.write_if_changed();
    rt.remember_bundle(id, b.path());
    let script =
        format!("set -e; {setup}; \"$0\" --root \"$1\" run --bundle \"$2\" \"$3\"; {after}");
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(vsrun_bin())
        .args([rt.root_str(), b.path_str(), id])
        .stdin(Stdio::null())
        .output()
        .expect("run unshare");
    assert!(
        o.status.success(),
        "private run failed:\n{}",
        output_text(&o)
    );
    stdout_str(&o)
}

/// tmpfs supports idmapped mounts from Linux 6.3 on; before, vsrun must refuse the mount by
/// its field (the VM lane's Debian 6.1 kernel), and the tests check that instead.
fn tmpfs_can_be_idmapped() -> bool {
    let rel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut v = rel
        .split(|c: char| !c.is_ascii_digit())
        .map(|x| x.parse::<u32>().unwrap_or(0));
    (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (6, 3)
}

/// On a kernel without tmpfs idmaps: the run failed naming the mount, and left nothing.
fn refused_on_this_kernel(rt: &Runtime, o: &std::process::Output, id: &str) -> bool {
    if tmpfs_can_be_idmapped() {
        return false;
    }
    let err = assert_fails(o, "idmapped tmpfs bind on a kernel before 6.3");
    assert!(
        err.contains("mounts[") && err.contains("cannot be idmapped"),
        "{err}"
    );
    assert_nothing_left(rt, id);
    true
}

fn has_line(out: &str, want: &str) {
    assert!(
        out.lines().any(|l| l == want),
        "no line {want:?} in:\n{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// Mappings of the mount's own

/// tmpfs, no user namespace: the mount maps the file system's 1000 to host 0, so the
/// container's root sees its files as its own and writes as 1000.
#[test]
fn idmapped_tmpfs_bind_shows_and_writes_the_mapped_owner() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let shm = tempfile::Builder::new()
        .prefix("vsrun-idmap-")
        .tempdir_in("/dev/shm")
        .unwrap();
    let src = shm.path().join("src");
    owned_dir(&src);
    idmapped(
        &mut b,
        &src,
        "idmap",
        Some((map(OWNER, 0, 1), map(OWNER, 0, 1))),
    );
    let id = unique_id("idmap-tmpfs");
    let o = rt.run(&b, &id);
    if refused_on_this_kernel(&rt, &o, &id) {
        return;
    }
    assert_success(&o, "run with an idmapped tmpfs bind");
    let out = stdout_str(&o);
    has_line(&out, "inside 0:0");
    has_line(&out, "wrote");
    assert_eq!(
        owner_of(&src.join("new")),
        "1000:1000",
        "host owner of the new file"
    );
    assert_eq!(
        owner_of(&src.join("f")),
        "1000:1000",
        "the source is not chowned"
    );
    assert_nothing_left(&rt, &id);
}

/// ext4 from a loop image, container in a user namespace (0 → 100000): the mount maps the
/// file system's 1000 to host 100000, the container's root.
#[test]
fn idmapped_ext4_bind_in_a_user_namespace() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    userns(&mut b);
    let img = b.path().join("fs.img");
    let mnt = b.path().join("ext4");
    fs::create_dir(&mnt).unwrap();
    let st = Command::new("truncate")
        .args(["-s", "32M"])
        .arg(&img)
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&img)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "mkfs.ext4");
    let src = mnt.join("src");
    idmapped(
        &mut b,
        &src,
        "idmap",
        Some((map(OWNER, 100000, 1), map(OWNER, 100000, 1))),
    );
    let id = unique_id("idmap-ext4");
    let setup = format!(
        "mount -o loop {img} {mnt}; mkdir {src}; echo x > {src}/f; chown -R {OWNER}:{OWNER} {src}",
        img = img.display(),
        mnt = mnt.display(),
        src = src.display()
    );
    let after = format!("stat -c 'host %u:%g' {}/new", src.display());
    let out = run_private(&rt, &b, &id, &setup, &after);
    has_line(&out, "inside 0:0");
    has_line(&out, "wrote");
    has_line(&out, "host 1000:1000");
    assert_nothing_left(&rt, &id);
    assert!(
        !fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(mnt.to_str().unwrap()),
        "the ext4 image is mounted on the host"
    );
}

/// overlay cannot be idmapped on this kernel (6.18: overlayfs does not set FS_ALLOW_IDMAP;
/// it takes idmapped layers, not idmapped mounts of itself): mount_setattr says EINVAL, and the
/// create is refused naming the mount, with nothing left.
#[test]
fn idmapped_overlay_bind_is_refused_by_name() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let ov = b.path().join("ov");
    let (lower, upper, work, merged) = (
        ov.join("lower"),
        ov.join("upper"),
        ov.join("work"),
        ov.join("merged"),
    );
    owned_dir(&lower);
    for d in [&upper, &work, &merged] {
        fs::create_dir_all(d).unwrap();
    }
    idmapped(
        &mut b,
        &merged,
        "ridmap",
        Some((map(OWNER, 0, 1), map(OWNER, 0, 1))),
    );
    let n = b.config["mounts"].as_array().unwrap().len() - 1;
    b.write_if_changed();
    let id = unique_id("idmap-overlay");
    rt.remember_bundle(&id, b.path());
    let script = format!(
        "mount -t overlay overlay -o lowerdir={},upperdir={},workdir={} {} || exit 99; \
         \"$0\" --root \"$1\" create --bundle \"$2\" \"$3\"",
        lower.display(),
        upper.display(),
        work.display(),
        merged.display()
    );
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(vsrun_bin())
        .args([rt.root_str(), b.path_str(), &id])
        .stdin(Stdio::null())
        .output()
        .expect("run unshare");
    assert_eq!(o.status.code(), Some(1), "{}", output_text(&o));
    let err = stderr_str(&o);
    assert!(
        err.contains(&format!("mounts[{n}].options: ")) && err.contains("cannot be idmapped"),
        "error does not name the mount: {err}"
    );
    assert_nothing_left(&rt, &id);
    assert!(
        !merged.join("f").exists(),
        "the overlay is mounted on the host"
    );
}

// ---------------------------------------------------------------------------------------------
// `idmap` without mappings: the container's user namespace

#[test]
fn idmap_without_mappings_uses_the_container_user_namespace() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    userns(&mut b);
    let shm = tempfile::Builder::new()
        .prefix("vsrun-idmap-")
        .tempdir_in("/dev/shm")
        .unwrap();
    fs::set_permissions(shm.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let src = shm.path().join("src");
    owned_dir(&src);
    std::os::unix::fs::chown(&src, Some(0), Some(0)).unwrap();
    idmapped(&mut b, &src, "idmap", None);
    let id = unique_id("idmap-userns");
    let o = rt.run(&b, &id);
    if refused_on_this_kernel(&rt, &o, &id) {
        return;
    }
    assert_success(&o, "run with idmap and the container's mapping");
    let out = stdout_str(&o);
    // The file system's 1000 is the container's 1000; its root writes as the host's root.
    has_line(&out, "inside 1000:1000");
    has_line(&out, "wrote");
    assert_eq!(
        owner_of(&src.join("new")),
        "0:0",
        "host owner of the new file"
    );
    assert_nothing_left(&rt, &id);
}

// ---------------------------------------------------------------------------------------------
// Refusals

/// sysfs cannot be idmapped (EINVAL from mount_setattr): refused by name, before anything.
#[test]
fn idmap_of_a_file_system_that_cannot_is_refused_by_name() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    idmapped(
        &mut b,
        Path::new("/sys/kernel"),
        "idmap",
        Some((map(0, 100000, 65536), map(0, 100000, 65536))),
    );
    let n = b.config["mounts"].as_array().unwrap().len() - 1;
    let id = unique_id("idmap-refused");
    let o = rt.create(&b, &id);
    let err = assert_fails(&o, "create with an idmapped sysfs bind");
    assert!(
        err.contains(&format!("mounts[{n}].options: ")) && err.contains("cannot be idmapped"),
        "error does not name the mount: {err}"
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn idmap_without_mappings_or_user_namespace_is_refused() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    idmapped(&mut b, Path::new("/dev/shm"), "ridmap", None);
    let n = b.config["mounts"].as_array().unwrap().len() - 1;
    let id = unique_id("idmap-nouserns");
    let o = rt.create(&b, &id);
    let err = assert_fails(&o, "create with idmap and no mapping");
    assert!(
        err.contains(&format!("mounts[{n}].options: ")) && err.contains("user namespace"),
        "{err}"
    );
    assert_nothing_left(&rt, &id);
}

// ---------------------------------------------------------------------------------------------
// Devices in a user namespace

/// A configured device that the host does not have at that path works in a user namespace,
/// owned as configured (container ids, through the mapping).
#[test]
fn configured_device_absent_on_the_host_works_in_a_user_namespace() {
    assert!(!Path::new("/dev/foo-null").exists());
    let rt = Runtime::new();
    let mut b = Bundle::new();
    userns(&mut b);
    b.config["linux"]["devices"] = json!([{
        "path": "/dev/foo-null", "type": "c", "major": 1, "minor": 3,
        "fileMode": 0o666, "uid": 7, "gid": 8
    }]);
    b.set_args(&[
        "/bin/sh",
        "-c",
        "stat -c 'dev %u:%g %a %t:%T %F' /dev/foo-null && echo hello > /dev/foo-null && echo wrote \
         && grep vsrun-devices /proc/self/mountinfo | cut -d' ' -f4,5 | sed 's/^/tmpfs at /'",
    ]);
    let id = unique_id("userns-dev");
    let o = rt.run(&b, &id);
    assert_success(
        &o,
        "run with a device absent on the host, in a user namespace",
    );
    let out = stdout_str(&o);
    has_line(&out, "dev 7:8 666 1:3 character special file");
    has_line(&out, "wrote");
    // vsrun's tmpfs of nodes shows only as the bind of the one node: not its root, nowhere else.
    let shown: Vec<&str> = out.lines().filter(|l| l.starts_with("tmpfs at ")).collect();
    assert_eq!(shown, ["tmpfs at /0 /dev/foo-null"], "{out}");
    assert!(
        !Path::new("/dev/foo-null").exists(),
        "a node was left on the host"
    );
    assert_nothing_left(&rt, &id);
}
