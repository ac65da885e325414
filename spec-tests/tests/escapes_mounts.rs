//! Escapes through the mount table (issue 17, "Never touch the host"), one test per class:
//!
//! - procfs and sysfs mounted through a symlink (CVE-2019-19921 class): a proc mount that
//!   lands anywhere but the ordinary /proc directory escapes the masks put on /proc, and a
//!   path-based mount through an absolute symlink lands on the host. runc refuses these with
//!   "must be mounted on ordinary directory".
//! - --no-pivot leaving the host's /proc and /sys in the container's mount namespace: the
//!   kernel allows a new, unmasked proc (or sysfs) in a user namespace as soon as a fully
//!   visible one exists anywhere in the mount namespace (fs/namespace.c mount_too_revealing).
//!
//! Each test first shows the attack working on an unprotected path (a plain path-based mount or
//! chroot from the host, in a private mount namespace), then runs it against vsrun.

use serde_json::json;
use spec_tests::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Output;

/// `vsrun run` the bundle; when refused, nothing may be left: no state dir, mount, process or
/// cgroup, and the host's mount table is unchanged.
fn run_refused(rt: &Runtime, b: &Bundle, needles: &[&str], what: &str) {
    let before = host_table();
    let id = unique_id("escm");
    let o = rt.run(b, &id);
    assert_refused_naming(&o, needles, what);
    assert_nothing_left(rt, &id);
    assert_eq!(
        cgroup_dirs_of(&id),
        Vec::<std::path::PathBuf>::new(),
        "{what}: cgroup left"
    );
    assert_eq!(
        before,
        host_table(),
        "{what}: the host's mount table changed"
    );
}

/// Replace the image's directory `name` with a symlink to `target` (and create `decoy`, the
/// directory an absolute symlink would reach on the host when followed by a host path).
fn symlink_in_image(b: &Bundle, name: &str, target: &str) {
    let p = b.rootfs().join(name);
    if p.is_dir() {
        fs::remove_dir(&p).expect("remove the image's directory");
    }
    symlink(target, &p).expect("symlink in the image");
}

// ---------------------------------------------------------------------------------------------
// procfs and sysfs only on an ordinary directory (CVE-2019-19921 class)

/// The unprotected path: `mount -t TYPE` onto <rootfs>/NAME by path follows the image's
/// absolute symlink to the host directory it names.
fn demonstrate_path_mount_follows_symlink(fstype: &str) {
    let host = tempfile::tempdir().expect("host dir");
    let rootfs = tempfile::tempdir().expect("rootfs");
    symlink(host.path(), rootfs.path().join("pseudo")).unwrap();
    let o = unprotected_sh(&format!(
        "mount -t {fstype} none {r}/pseudo && ls {h} | wc -l",
        r = sh_quote(rootfs.path()),
        h = sh_quote(host.path())
    ));
    let n: u32 = stdout_str(&o).trim().parse().unwrap_or(0);
    assert!(
        n > 0,
        "demonstration: a path-based {fstype} mount through the symlink did not reach the host \
         dir\n{}",
        output_text(&o)
    );
}

#[test]
fn proc_on_a_symlinked_proc_is_refused() {
    demonstrate_path_mount_follows_symlink("proc");
    let rt = Runtime::new();
    for target in ["/fakeproc", "fakeproc", "/nowhere"] {
        let b = Bundle::new();
        if target != "/nowhere" {
            fs::create_dir(b.rootfs().join("fakeproc")).unwrap();
        }
        symlink_in_image(&b, "proc", target);
        let what = format!("proc on /proc -> {target}");
        run_refused(
            &rt,
            &b,
            &["mounts[0].destination \"/proc\"", "symlink"],
            &what,
        );
        assert!(
            !b.rootfs().join("nowhere").exists(),
            "{what}: created the link's target"
        );
    }
}

#[test]
fn sysfs_on_a_symlinked_sys_is_refused() {
    demonstrate_path_mount_follows_symlink("sysfs");
    let rt = Runtime::new();
    for target in ["/fakesys", "fakesys"] {
        let b = Bundle::new();
        fs::create_dir(b.rootfs().join("fakesys")).unwrap();
        symlink_in_image(&b, "sys", target);
        let what = format!("sysfs on /sys -> {target}");
        run_refused(
            &rt,
            &b,
            &["mounts[5].destination \"/sys\"", "symlink"],
            &what,
        );
    }
}

/// A procfs bound (not newly mounted) is a proc mount too. runc 1.1.5 accepts this one (its
/// checkProcMount looks at the resolved path only) and binds the host's /proc at /fakeproc;
/// vsrun refuses it with the same rule as a new proc.
#[test]
fn procfs_bind_on_a_symlinked_proc_is_refused() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["mounts"][0] =
        json!({ "destination": "/proc", "type": "bind", "source": "/proc", "options": ["rbind"] });
    fs::create_dir(b.rootfs().join("fakeproc")).unwrap();
    symlink_in_image(&b, "proc", "/fakeproc");
    run_refused(
        &rt,
        &b,
        &["mounts[0].destination \"/proc\"", "symlink"],
        "procfs bind on a symlinked /proc",
    );
}

/// Files under /proc that may be mounted over (lxcfs style): the destination must be the file
/// itself, never a symlink in its place. runc refuses the link below (it resolves into
/// /proc/sys); vsrun refuses any symlink there. The ordinary case still works.
#[test]
fn proc_file_mount_through_a_symlink_is_refused() {
    let rt = Runtime::new();
    let decoy = tempfile::tempdir().expect("decoy dir");
    let decoy_file = decoy.path().join("cpuinfo");
    fs::write(&decoy_file, "lxcfs cpuinfo\n").unwrap();
    let bind = json!({ "destination": "/proc/cpuinfo", "type": "bind",
        "source": decoy_file.to_str().unwrap(), "options": ["bind"] });

    // Listed before the proc mount: the image's /proc/cpuinfo is what is mounted over.
    let mut b = Bundle::new();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .insert(0, bind.clone());
    symlink(
        "/proc/sys/kernel/core_pattern",
        b.rootfs().join("proc/cpuinfo"),
    )
    .unwrap();
    run_refused(
        &rt,
        &b,
        &["mounts[0].destination \"/proc/cpuinfo\"", "symlink"],
        "a bind on /proc/cpuinfo -> /proc/sys/kernel/core_pattern",
    );
    assert!(
        !b.rootfs().join("proc/sys").exists(),
        "the link's target was created in the image"
    );

    // The ordinary lxcfs-style bind, after the proc mount.
    let mut b = Bundle::new();
    add_mount(&mut b, bind);
    let lines = rt.probe_lines(&mut b, &["read", "/proc/cpuinfo"]);
    assert_eq!(lines[0]["data"], "lxcfs cpuinfo\n", "{}", lines[0]);
}

/// A `cgroup` mount is a tmpfs plus binds of the container's own cgroups: runc follows a
/// symlinked destination inside the rootfs, and so does vsrun (the mount lands at the link's
/// target in the rootfs, never on the host). One that resolves into /proc is refused.
#[test]
fn cgroup_mount_through_a_symlink_stays_in_the_rootfs() {
    let rt = Runtime::new();
    let cgroup = json!({ "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
        "options": ["nosuid", "noexec", "nodev", "ro"] });

    let mut b = Bundle::new();
    remove_mount(&mut b, "/sys");
    add_mount(&mut b, cgroup.clone());
    fs::create_dir_all(b.rootfs().join("sys/fs")).unwrap();
    fs::create_dir(b.rootfs().join("cgx")).unwrap();
    symlink("/cgx", b.rootfs().join("sys/fs/cgroup")).unwrap();
    let before = host_table();
    let seen = rt.probe(&mut b, &[]);
    assert!(
        has_mount_at(&seen, "/cgx"),
        "no cgroup tmpfs at /cgx: {}",
        seen["mounts"]
    );
    assert!(!Path::new("/cgx").exists(), "the host got /cgx");
    assert_eq!(before, host_table(), "the host's mount table changed");

    let mut b = Bundle::new();
    remove_mount(&mut b, "/sys");
    add_mount(&mut b, cgroup);
    fs::create_dir_all(b.rootfs().join("sys/fs")).unwrap();
    symlink("/proc/sys", b.rootfs().join("sys/fs/cgroup")).unwrap();
    run_refused(
        &rt,
        &b,
        &["mounts[5].destination", "/proc"],
        "cgroup -> /proc/sys",
    );
}

// ---------------------------------------------------------------------------------------------
// --no-pivot: no unmasked proc or sysfs left in the container's mount namespace

/// What a container runs to get a fresh procfs (or sysfs): a new user namespace (root mapped
/// to itself, which needs CAP_SETFCAP), mount and pid (and net, for sysfs) namespace, then the
/// mount. Prints IN-NS once inside, then MOUNTED or DENIED.
fn fresh_mount_attack(fstype: &str) -> String {
    let (flags, dir) = match fstype {
        "proc" => ("-mrpf", "/proc"),
        _ => ("-mrnpf", "/sys"),
    };
    format!(
        "unshare {flags} sh -c 'echo IN-NS; if mount -t {fstype} none {dir}; then echo MOUNTED; \
         else echo DENIED; fi'"
    )
}

/// A busybox bundle whose process runs `script`, with CAP_SETFCAP and CAP_SYS_ADMIN added as
/// `docker run --cap-add` would.
fn attack_bundle(script: &str) -> Bundle {
    let mut b = Bundle::new();
    b.set_args(&["sh", "-c", script]);
    add_caps(&mut b, &["CAP_SETFCAP", "CAP_SYS_ADMIN"]);
    b
}

/// The unprotected path: what --no-pivot did before the detach, by hand in a private mount
/// namespace: the rootfs bound onto itself, moved onto "/" and chrooted into (a plain chroot is
/// not enough: the kernel refuses a user namespace to a chrooted process). The host's /proc and
/// /sys stay in that namespace, below the rootfs, so the attack works. The rootfs gets a proc
/// with a mask (a tmpfs over /proc/sys), as a container's has: on its own it would not do.
fn demonstrate_chroot_leaves_host_pseudo_fs(fstype: &str) {
    let b = Bundle::new();
    let o = unprotected_sh(&format!(
        "mount --bind {r} {r}; mount -t proc proc {r}/proc; mount -t tmpfs -o ro tmpfs {r}/proc/sys; \
         cd {r}; mount --move . /; chroot . /bin/sh -c {s}",
        r = sh_quote(&b.rootfs()),
        s = sh_quote(Path::new(&fresh_mount_attack(fstype)))
    ));
    let out = stdout_str(&o);
    assert!(
        out.contains("IN-NS") && out.contains("MOUNTED") && !out.contains("DENIED"),
        "demonstration: a fresh {fstype} was not mountable from a plain chroot\n{}",
        output_text(&o)
    );
}

/// Run the attack in a vsrun container (`extra` flags for `run`) and assert the kernel denied
/// the fresh mount, the container's own /proc still works, and the host's table is unchanged.
fn assert_fresh_mount_denied(fstype: &str, extra: &[&str]) {
    let rt = Runtime::new();
    let script = format!("{}; cat /proc/self/comm", fresh_mount_attack(fstype));
    let b = attack_bundle(&script);
    b.write_if_changed();
    let before = host_table();
    let id = unique_id("fresh");
    let mut args = vec!["run"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--bundle", b.path_str(), &id]);
    let o = rt.cmd(&args);
    let out = stdout_str(&o);
    let what = format!("fresh {fstype} with run {extra:?}");
    assert!(
        o.status.success(),
        "{what}: the container failed\n{}",
        output_text(&o)
    );
    assert!(
        out.contains("IN-NS") && out.contains("DENIED") && !out.contains("MOUNTED"),
        "{what}: the kernel allowed a fresh {fstype} in the container\n{}",
        output_text(&o)
    );
    assert!(
        out.contains("cat\n"),
        "{what}: the container's /proc is gone\n{}",
        output_text(&o)
    );
    assert_nothing_left(&rt, &id);
    assert_eq!(
        before,
        host_table(),
        "{what}: the host's mount table changed"
    );
}

#[test]
fn no_pivot_leaves_no_host_proc_for_a_fresh_proc() {
    demonstrate_chroot_leaves_host_pseudo_fs("proc");
    assert_fresh_mount_denied("proc", &["--no-pivot"]);
}

#[test]
fn no_pivot_leaves_no_host_sysfs_for_a_fresh_sysfs() {
    demonstrate_chroot_leaves_host_pseudo_fs("sysfs");
    assert_fresh_mount_denied("sysfs", &["--no-pivot"]);
}

#[test]
fn pivot_root_leaves_no_host_proc_or_sysfs() {
    assert_fresh_mount_denied("proc", &[]);
    assert_fresh_mount_denied("sysfs", &[]);
}

/// The detach must never propagate to the host: with `rootfsPropagation: rshared` the
/// container's mounts are peers of the caller's. Run inside a sandbox mount namespace made
/// rshared (standing in for a systemd host) and check its /proc and /sys survive. The bundle
/// is a mount of its own there, so "/" (the parent of /proc and /sys) stays shared in the
/// container's namespace rather than being made private as the rootfs's parent.
#[test]
fn no_pivot_detach_does_not_propagate_to_the_caller() {
    let rt = Runtime::new();
    let mut b = attack_bundle(&fresh_mount_attack("proc"));
    b.config["linux"]["rootfsPropagation"] = json!("rshared");
    b.write_if_changed();
    let id = unique_id("fresh-shared");
    rt.remember_bundle(&id, b.path());
    let o: Output = unprotected_sh(&format!(
        "mount --bind {b} {b}; mount --make-rshared /; {v} --root {root} run --no-pivot --bundle {b} {id} || echo RUN-FAILED; \
         mountpoint -q /proc && echo PROC-KEPT; mountpoint -q /sys && echo SYS-KEPT; \
         mountpoint -q /sys/fs/cgroup && echo CGROUP-KEPT",
        v = sh_quote(&vsrun_bin()),
        root = sh_quote(rt.root()),
        b = sh_quote(b.path()),
    ));
    let out = stdout_str(&o);
    assert!(
        out.contains("IN-NS") && out.contains("DENIED"),
        "attack not denied\n{}",
        output_text(&o)
    );
    for kept in ["PROC-KEPT", "SYS-KEPT", "CGROUP-KEPT"] {
        assert!(
            out.contains(kept),
            "the caller lost a mount ({kept})\n{}",
            output_text(&o)
        );
    }
    assert_nothing_left(&rt, &id);
}
