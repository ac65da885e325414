//! Disk-space limit per context (annotation `org.vsrun.disk-limit`, VServer's disk limits):
//! project quotas on the rootfs, or on the upper dir of an overlay rootfs.
//!
//! Each image (ext4 `-O quota,project` mounted `prjquota`, XFS mounted `pquota`) is loop-mounted
//! in a private mount namespace held by a `sleep` process the test started; vsrun runs in that
//! namespace (setns in pre_exec) and the test reads the tree through /proc/<holder>/root, so
//! the host's mount table is never touched. Whether the kernel enforces project quotas is
//! decided by mounting the quota image: where that fails (this host's kernel has no
//! CONFIG_QUOTA) the same tests check that `create` refuses the annotation instead, unless
//! VSRUN_EXPECT_QUOTA=1 (the v2 VM lane) makes that a failure.

use spec_tests::*;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const ANNOTATION: &str = "org.vsrun.disk-limit";
const INODES: &str = "org.vsrun.disk-inodes";
const MIB: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fs {
    Ext4,
    Xfs,
}

impl Fs {
    /// The errno of a write past a project's hard limit: XFS reports ENOSPC for project
    /// quotas (xfs_trans_dqresv: a project is treated as a directory tree's own small disk),
    /// ext4 EDQUOT. The image has 300M free, so neither is a full file system.
    fn over_limit_errno(self) -> i64 {
        match self {
            Fs::Ext4 => libc::EDQUOT as i64,
            Fs::Xfs => libc::ENOSPC as i64,
        }
    }
}

/// A loop-mounted image in a mount namespace of its own, alive while `holder` sleeps.
struct Image {
    holder: Child,
    ns: File,
    dir: tempfile::TempDir,
}

impl Image {
    /// mkfs and mount: `quota` picks the project-quota format and mount option. Err(what the
    /// kernel said) when the mount fails.
    fn new(fs: Fs, quota: bool) -> Result<Image, String> {
        let dir = tempfile::Builder::new()
            .prefix("vsrun-disk-")
            .tempdir()
            .expect("temp dir");
        let img = dir.path().join("fs.img");
        fs::create_dir(dir.path().join("mnt")).unwrap();
        // mkfs.xfs wants 300M at least; the file is sparse.
        let st = Command::new("truncate")
            .args(["-s", "320M"])
            .arg(&img)
            .status()
            .unwrap();
        assert!(st.success(), "truncate");
        let (mkfs, opts): (Vec<&str>, &str) = match (fs, quota) {
            (Fs::Ext4, true) => (
                vec!["mkfs.ext4", "-q", "-F", "-O", "quota,project"],
                "prjquota",
            ),
            (Fs::Ext4, false) => (vec!["mkfs.ext4", "-q", "-F"], "rw"),
            (Fs::Xfs, true) => (vec!["mkfs.xfs", "-q", "-f"], "pquota"),
            (Fs::Xfs, false) => (vec!["mkfs.xfs", "-q", "-f"], "rw"),
        };
        let o = Command::new(mkfs[0])
            .args(&mkfs[1..])
            .arg(&img)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e} (install e2fsprogs / xfsprogs)", mkfs[0]));
        assert!(o.status.success(), "{}: {}", mkfs[0], output_text(&o));
        let script = format!(
            "mount -o loop,{opts} {} {} || exit 3; echo ready; exec sleep 3600",
            sh_quote(&img),
            sh_quote(&dir.path().join("mnt"))
        );
        let mut holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run unshare");
        let mut line = String::new();
        let _ = BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line);
        if line.trim() != "ready" {
            let o = holder.wait_with_output().expect("wait for the mount");
            return Err(format!("mount -o {opts} failed: {}", stderr_str(&o).trim()));
        }
        let ns = File::open(format!("/proc/{}/ns/mnt", holder.id())).expect("holder's mnt ns");
        Ok(Image { holder, ns, dir })
    }

    /// The mount point, as vsrun (inside the namespace) names it.
    fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// `path` (a namespace path) as the test reaches it from the host.
    fn host_view(&self, path: &Path) -> PathBuf {
        let rel = path.strip_prefix("/").unwrap();
        PathBuf::from(format!("/proc/{}/root", self.holder.id())).join(rel)
    }

    /// `vsrun --root R ARGS` inside the image's mount namespace.
    fn vsrun(&self, rt: &Runtime, args: &[&str]) -> Output {
        // What this vsrun makes on the image, the harness's checks see through the holder.
        rt.watch
            .set_view_root(Some(format!("/proc/{}/root", self.holder.id()).into()));
        rt.cmd_with(args, |c| self.enter(c))
    }

    /// Make `c` run in the image's mount namespace.
    fn enter(&self, c: &mut Command) {
        let fd = self.ns.as_raw_fd();
        // SAFETY: setns(2) only, in the forked child before exec (it is single-threaded
        // there, which a mount namespace switch requires).
        unsafe {
            c.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNS) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// `strace STRACE_ARGS vsrun --root R ARGS` in the namespace: only vsrun's own thread is
    /// traced (no -f), the steps before the clone.
    fn vsrun_traced(&self, rt: &Runtime, strace_args: &[&str], args: &[&str]) -> Output {
        let mut c = Command::new("strace");
        c.args(strace_args)
            .arg(vsrun_bin())
            .arg("--root")
            .arg(rt.root())
            .args(args)
            .stdin(Stdio::null());
        // Files, not pipes: a created init keeps its stdio open.
        let (out, err) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
        c.stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap());
        self.enter(&mut c);
        let status = c.status().expect("run strace (apt-get install strace)");
        let read = |mut f: File| {
            use std::io::{Read, Seek};
            let mut v = Vec::new();
            f.seek(std::io::SeekFrom::Start(0)).unwrap();
            f.read_to_end(&mut v).unwrap();
            v
        };
        Output {
            status,
            stdout: read(out),
            stderr: read(err),
        }
    }

    /// A shell command in the namespace (mount an overlay, ...).
    fn sh(&self, script: &str) {
        let o = Command::new("nsenter")
            .arg(format!("--mount=/proc/{}/ns/mnt", self.holder.id()))
            .args(["sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter");
        assert!(o.status.success(), "{script}: {}", output_text(&o));
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // Our own holder: its namespace, and with it the loop mount, goes away.
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn annotate(b: &mut Bundle, pairs: &[(&str, &str)]) {
    for (k, v) in pairs {
        b.config["annotations"][*k] = (*v).into();
    }
    b.write_if_changed();
}

/// A bundle whose rootfs is `root` (a path inside the image's namespace), init sleeping.
fn bundle_at(root: &Path) -> Bundle {
    let mut b = Bundle::new();
    b.config["root"]["path"] = root.to_str().unwrap().into();
    b.set_args(&["/probe", "sleep", "1000"]);
    b
}

#[track_caller]
fn fill(img: &Image, rt: &Runtime, id: &str, name: &str, bytes: u64) -> serde_json::Value {
    let args = ["fill", name, &bytes.to_string()];
    exec_probe_with(rt, id, &[], &args, |c| img.enter(c)).0
}

fn stat_row(img: &Image, rt: &Runtime, id: &str) -> serde_json::Value {
    let o = img.vsrun(rt, &["stat", "--format", "json"]);
    assert_success(&o, "stat --format json");
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no stat row for {id}: {rows}"))
}

fn state_project(rt: &Runtime, id: &str) -> u32 {
    let text = fs::read_to_string(rt.state_dir(id).join("state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["disk"]["project"]
        .as_u64()
        .unwrap_or_else(|| panic!("state.json has no disk.project: {v}")) as u32
}

/// A refused create: exit 1, one line naming the annotation and `reason`, nothing left (state,
/// cgroups, mounts below the bundle, a project id on the tree).
#[track_caller]
fn assert_refused_cleanly(img: &Image, rt: &Runtime, b: &Bundle, tree: &Path, reason: &[&str]) {
    let id = unique_id("disk-refused");
    let o = img.vsrun(rt, &["create", "--bundle", b.path_str(), &id]);
    let tree_name = tree.to_str().unwrap();
    let mut needles = vec![ANNOTATION, tree_name];
    needles.extend_from_slice(reason);
    assert_refused_naming(
        &o,
        &needles,
        "create with a disk limit where it cannot be enforced",
    );
    assert_nothing_left(rt, &id);
    assert!(
        cgroup_dirs_of(&id).is_empty(),
        "cgroups left: {:?}",
        cgroup_dirs_of(&id)
    );
    let ns_mounts = fs::read_to_string(format!("/proc/{}/mountinfo", img.holder.id())).unwrap();
    let left: Vec<_> = parse_mountinfo(&ns_mounts)
        .into_iter()
        .filter(|m| Path::new(&m.mount_point).starts_with(tree))
        .map(|m| m.mount_point)
        .collect();
    assert!(
        left.is_empty(),
        "mounts left in the image's namespace: {left:?}"
    );
    if let Ok(f) = File::open(img.host_view(tree)) {
        drop(f);
        assert_eq!(
            project_of(&img.host_view(tree)),
            (0, false),
            "project id left on the tree"
        );
    }
}

/// The quota image, or None where it does not mount (then the refusal tests cover the case).
fn quota_image(fs: Fs) -> Option<Image> {
    match Image::new(fs, true) {
        Ok(img) => Some(img),
        Err(why) => {
            assert_quota_not_expected(&why);
            eprintln!("note: no project quotas here ({why}): covered by the refusal tests");
            None
        }
    }
}

/// VSRUN_EXPECT_QUOTA=1 (set by hack/v2-vm.sh, whose kernel has quota and xfs): a quota image
/// that does not mount is a failure, not a reason to test only the refusal.
#[track_caller]
fn assert_quota_not_expected(why: &str) {
    assert!(
        std::env::var_os("VSRUN_EXPECT_QUOTA").is_none_or(|v| v != "1"),
        "VSRUN_EXPECT_QUOTA=1 but the project-quota image does not mount: {why}"
    );
}

/// What the kernel lacks, from the quota image's failed mount: the reason vsrun must give.
fn expected_reason(why: &str) -> &'static str {
    eprintln!("note: no project quotas here ({why}): testing the refusal");
    if Path::new("/proc/sys/fs/quota").exists() {
        "quota"
    } else {
        "no quota support"
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn bad_disk_limits_are_refused_by_name() {
    let rt = Runtime::new();
    for (k, v, also) in [
        (ANNOTATION, "12Q", None),
        (ANNOTATION, "", None),
        (ANNOTATION, "0", None),
        (ANNOTATION, "1.5G", None),
        (ANNOTATION, "-1", None),
        (ANNOTATION, "99999999999T", None),
        (INODES, "many", Some((ANNOTATION, "10M"))),
        (INODES, "0", Some((ANNOTATION, "10M"))),
        (INODES, "100", None),
    ] {
        let mut b = Bundle::new();
        annotate(&mut b, &[(k, v)]);
        if let Some(p) = also {
            annotate(&mut b, &[p]);
        }
        let id = unique_id("disk-bad");
        let o = rt.create(&b, &id);
        assert_refused_naming(&o, &[k], &format!("{k}: {v:?}"));
        assert_nothing_left(&rt, &id);
        assert!(cgroup_dirs_of(&id).is_empty(), "{k}={v:?}: cgroups left");
    }
}

/// `update --disk-limit` needs a size, and a container created with a disk limit.
#[test]
fn bad_disk_updates_are_refused_by_name() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "sleep", "1000"]);
    let id = unique_id("disk-upd");
    assert_success(&rt.create(&b, &id), "create");
    for (args, needles) in [
        (vec!["--disk-limit", "12Q"], vec!["--disk-limit", "12Q"]),
        (vec!["--disk-limit", "0"], vec!["--disk-limit"]),
        (vec!["--disk-inodes", "0"], vec!["--disk-inodes"]),
        (
            vec!["--disk-limit", "10M"],
            vec!["--disk-limit", ANNOTATION],
        ),
        (
            vec!["--disk-inodes", "100"],
            vec!["--disk-inodes", ANNOTATION],
        ),
    ] {
        let mut full = vec!["update"];
        full.extend_from_slice(&args);
        full.push(&id);
        let o = rt.cmd(&full);
        assert_refused_naming(&o, &needles, &full.join(" "));
    }
    assert_success(&rt.delete_force(&id), "delete --force");
    assert_nothing_left(&rt, &id);
}

#[test]
fn features_lists_the_disk_annotations() {
    let rt = Runtime::new();
    let o = rt.cmd(&["features"]);
    assert_success(&o, "features");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in [ANNOTATION, INODES] {
        assert!(v["annotations"].get(k).is_some(), "features lacks {k}: {v}");
    }
}

// ---------------------------------------------------------------------------------------------
// Where project quotas are not enforced

/// ext4 without the project feature: refused by name, on every kernel (with quota support the
/// file system has none enabled; without it, the kernel has none).
#[test]
fn a_file_system_without_project_quotas_is_refused() {
    let rt = Runtime::new();
    let img = Image::new(Fs::Ext4, false).expect("mount a plain ext4 image");
    let root = img.mnt().join("rootfs");
    copy_base(&img, &root);
    let mut b = bundle_at(&root);
    annotate(&mut b, &[(ANNOTATION, "10M")]);
    let reason = if Path::new("/proc/sys/fs/quota").exists() {
        "quota"
    } else {
        "no quota support"
    };
    assert_refused_cleanly(&img, &rt, &b, &root, &[reason]);
}

fn copy_base(img: &Image, dest: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(base_rootfs())
        .arg(img.host_view(dest))
        .status()
        .unwrap();
    assert!(st.success(), "cp -a the base rootfs into the image");
}

// ---------------------------------------------------------------------------------------------
// The limit itself

/// The whole life of a limited context on `fs`: a write under the limit succeeds, one past it
/// fails (EDQUOT; ENOSPC on XFS), `update` raises and lowers it, `stat` shows it, `delete`
/// takes the project id and the limits back. Where the kernel cannot enforce project quotas:
/// the refusal.
fn limit_lifecycle(fs: Fs, overlay: bool) {
    let rt = Runtime::new();
    let img = match Image::new(fs, true) {
        Ok(img) => img,
        Err(why) => {
            assert_quota_not_expected(&why);
            return refused_without_quotas(fs, &rt, &why);
        }
    };
    let (root, tree) = limited_rootfs(&img, overlay);
    let mut b = bundle_at(&root);
    // The base rootfs is 3.4M: 8M leaves room for a 1M write and none for 8M more.
    annotate(&mut b, &[(ANNOTATION, "8M"), (INODES, "500")]);
    let id = unique_id("disk");
    assert_success(
        &img.vsrun(&rt, &["create", "--bundle", b.path_str(), &id]),
        "create",
    );
    assert_success(&img.vsrun(&rt, &["start", &id]), "start");
    let project = state_project(&rt, &id);
    let host_tree = img.host_view(&tree);
    assert_eq!(
        project_of(&host_tree),
        (project, true),
        "the tree's project id"
    );
    if !overlay {
        assert_eq!(
            project_of(&host_tree.join("bin")),
            (project, true),
            "a subdir"
        );
        assert_eq!(project_of(&host_tree.join("bin/busybox")), (project, false));
    }
    writes_meet_the_limit(fs, &img, &rt, &id, &host_tree, project);
    stat_shows_the_limit(&img, &rt, &id);
    update_moves_the_limit(fs, &img, &rt, &id);
    an_update_is_applied_whole_or_not_at_all(&img, &rt, &id);
    delete_takes_the_limit_back(&rt, &img, &id, &host_tree, project, overlay);
}

/// Without project quotas on the mount: create refuses, naming why, and leaves nothing.
fn refused_without_quotas(fs: Fs, rt: &Runtime, why: &str) {
    let reason = expected_reason(why);
    let img = Image::new(fs, false).expect("mount the image without quotas");
    let root = img.mnt().join("rootfs");
    copy_base(&img, &root);
    let mut b = bundle_at(&root);
    annotate(&mut b, &[(ANNOTATION, "4M")]);
    assert_refused_cleanly(&img, rt, &b, &root, &[reason]);
}

/// (the rootfs to run, the tree the limit labels): a copy of the base rootfs on the image, or
/// an overlay over it whose upper dir is on the image.
fn limited_rootfs(img: &Image, overlay: bool) -> (PathBuf, PathBuf) {
    if !overlay {
        let root = img.mnt().join("rootfs");
        copy_base(img, &root);
        return (root.clone(), root);
    }
    let (upper, work, merged) = (
        img.mnt().join("upper"),
        img.mnt().join("work"),
        img.dir.path().join("merged"),
    );
    img.sh(&format!(
        "mkdir -p {u} {w} {m} && mount -t overlay overlay -o lowerdir={l},upperdir={u},workdir={w} {m}",
        u = upper.display(),
        w = work.display(),
        m = merged.display(),
        l = base_rootfs().display()
    ));
    (merged, upper)
}

/// Under the limit, then past it; the quota record holds the hard limits.
fn writes_meet_the_limit(fs: Fs, img: &Image, rt: &Runtime, id: &str, tree: &Path, project: u32) {
    let ok = fill(img, rt, id, "/a", MIB);
    assert_eq!(ok["ok"], true, "1M under an 8M limit: {ok}");
    assert_eq!(
        project_of(&tree.join("a")),
        (project, false),
        "a new file inherits the id"
    );
    let over = fill(img, rt, id, "/b", 8 * MIB);
    assert_eq!(
        over["errno"],
        fs.over_limit_errno(),
        "8M more under an 8M limit: {over}"
    );
    let (used, limit, inodes) = quota_of(tree, project);
    assert_eq!((limit, inodes), (8 * MIB, 500), "the record's hard limits");
    assert!((MIB..=8 * MIB).contains(&used), "used {used}");
}

/// stat shows used/limit.
fn stat_shows_the_limit(img: &Image, rt: &Runtime, id: &str) {
    let row = stat_row(img, rt, id);
    assert_eq!(row["disk"]["limit"], 8 * MIB, "{row}");
    assert!(row["disk"]["used"].as_u64().unwrap() >= MIB, "{row}");
    let table = stdout_str(&img.vsrun(rt, &["stat"]));
    assert!(table.lines().next().unwrap().contains("DISK"), "{table}");
    let line = table
        .lines()
        .find(|l| l.starts_with(&id[..12.min(id.len())]))
        .unwrap();
    assert!(line.contains("/8.0M"), "{table}");
}

/// A bad size changes nothing; raised live: 8M more now fit; lowered below the usage: nothing
/// more does.
fn update_moves_the_limit(fs: Fs, img: &Image, rt: &Runtime, id: &str) {
    let bad = img.vsrun(rt, &["update", "--disk-limit", "12Q", id]);
    assert_refused_naming(&bad, &["--disk-limit"], "update --disk-limit 12Q");
    assert_eq!(stat_row(img, rt, id)["disk"]["limit"], 8 * MIB);
    assert_success(
        &img.vsrun(rt, &["update", "--disk-limit", "24M", id]),
        "update 24M",
    );
    let more = fill(img, rt, id, "/c", 8 * MIB);
    assert_eq!(more["ok"], true, "8M after raising to 24M: {more}");
    assert_eq!(stat_row(img, rt, id)["disk"]["limit"], 24 * MIB);
    assert_success(
        &img.vsrun(rt, &["update", "--disk-limit", "4M", id]),
        "update 4M",
    );
    let none = fill(img, rt, id, "/d", 64 * 1024);
    assert_eq!(
        none["errno"],
        fs.over_limit_errno(),
        "a write after lowering to 4M: {none}"
    );
}

/// The container's pids.max, read from the host.
fn pids_max(id: &str) -> String {
    let file = cgroup_dirs_of(id)
        .into_iter()
        .map(|d| d.join("pids.max"))
        .find(|f| f.exists())
        .unwrap_or_else(|| panic!("no pids.max for {id}"));
    fs::read_to_string(file).unwrap().trim().to_string()
}

/// An update that fails changes nothing: a disk limit that cannot be set (`update` run where
/// the container's file system is not mounted) leaves the cgroup as it was, and a cgroup
/// update that fails (a CPU this machine lacks) leaves the disk limit as it was.
fn an_update_is_applied_whole_or_not_at_all(img: &Image, rt: &Runtime, id: &str) {
    let pids = pids_max(id);
    let limit = stat_row(img, rt, id)["disk"]["limit"].clone();
    let elsewhere = rt.cmd(&["update", "--pids-limit", "77", "--disk-limit", "24M", id]);
    assert_fails(
        &elsewhere,
        "update --disk-limit outside the image's mount namespace",
    );
    assert_eq!(pids_max(id), pids, "pids.max after a failed disk update");
    let bad_cpus = img.vsrun(
        rt,
        &["update", "--cpuset-cpus", "4000", "--disk-limit", "24M", id],
    );
    let err = assert_fails(&bad_cpus, "update --cpuset-cpus 4000 --disk-limit 24M");
    assert!(err.contains("cpu"), "{err}");
    assert_eq!(
        stat_row(img, rt, id)["disk"]["limit"],
        limit,
        "the disk limit after a failed cgroup update"
    );
}

/// delete: no project id on the tree or what the container wrote, no limits left.
fn delete_takes_the_limit_back(
    rt: &Runtime,
    img: &Image,
    id: &str,
    tree: &Path,
    project: u32,
    overlay: bool,
) {
    assert_success(&img.vsrun(rt, &["delete", "--force", id]), "delete --force");
    assert_nothing_left(rt, id);
    assert_eq!(
        project_of(tree),
        (0, false),
        "the tree's project id after delete"
    );
    assert_eq!(
        project_of(&tree.join("c")),
        (0, false),
        "a written file's id after delete"
    );
    if !overlay {
        // What the rootfs held before: walked at create, and back at delete.
        for old in ["bin", "bin/busybox", "probe"] {
            assert_eq!(project_of(&tree.join(old)).0, 0, "{old} after delete");
        }
        assert!(!project_of(&tree.join("bin")).1, "PROJINHERIT left on bin");
    }
    let (_, limit, inodes) = quota_of(tree, project);
    assert_eq!((limit, inodes), (0, 0), "limits left on project {project}");
}

#[test]
fn ext4_project_quota_limits_the_rootfs() {
    limit_lifecycle(Fs::Ext4, false);
}

#[test]
fn xfs_project_quota_limits_an_overlay_upper_dir() {
    limit_lifecycle(Fs::Xfs, true);
}

/// Two contexts on one file system never share a project id, and each is limited alone.
#[test]
fn two_contexts_get_two_project_ids() {
    let rt = Runtime::new();
    let Some(img) = quota_image(Fs::Ext4) else {
        return;
    };
    let mut ids = Vec::new();
    for n in 0..2 {
        let root = img.mnt().join(format!("rootfs{n}"));
        copy_base(&img, &root);
        let mut b = bundle_at(&root);
        annotate(&mut b, &[(ANNOTATION, "8M")]);
        let id = unique_id("disk-two");
        assert_success(
            &img.vsrun(&rt, &["create", "--bundle", b.path_str(), &id]),
            "create",
        );
        ids.push(id);
    }
    let (p0, p1) = (state_project(&rt, &ids[0]), state_project(&rt, &ids[1]));
    assert_ne!(p0, p1, "two containers share a project id");
    for id in &ids {
        assert_success(&img.vsrun(&rt, &["delete", "--force", id]), "delete");
    }
}

/// The base rootfs copied onto the image at `rootfs`, in a bundle asking for `limit`.
fn limited_bundle(img: &Image, limit: &str) -> (PathBuf, Bundle) {
    let root = img.mnt().join("rootfs");
    copy_base(img, &root);
    let mut b = bundle_at(&root);
    annotate(&mut b, &[(ANNOTATION, limit)]);
    (root, b)
}

/// A create killed after the claim but before state.json (simulated by removing state.json):
/// `delete --force` still takes the project id and the limits back, from the record the
/// create left in its state dir.
#[test]
fn delete_force_clears_the_quota_of_a_create_that_died_before_its_state() {
    let rt = Runtime::new();
    let Some(img) = quota_image(Fs::Ext4) else {
        return;
    };
    let (root, b) = limited_bundle(&img, "8M");
    let id = unique_id("disk-died");
    assert_success(
        &img.vsrun(&rt, &["create", "--bundle", b.path_str(), &id]),
        "create",
    );
    let project = state_project(&rt, &id);
    let host_root = img.host_view(&root);
    assert_eq!(project_of(&host_root), (project, true));
    fs::remove_file(rt.state_dir(&id).join("state.json")).unwrap();
    assert_success(
        &img.vsrun(&rt, &["delete", "--force", &id]),
        "delete --force",
    );
    assert!(!rt.state_dir(&id).exists(), "state dir left");
    assert_eq!(project_of(&host_root), (0, false), "project id left");
    let (_, limit, inodes) = quota_of(&host_root, project);
    assert_eq!((limit, inodes), (0, 0), "limits left on project {project}");
}

/// A create killed right after its project got limits (strace SIGKILLs it at the syscall that
/// follows Q_SETQUOTA): `delete --force` still takes the limits back, because the leftovers
/// record named the project before the limits were set.
#[test]
fn delete_force_clears_a_quota_whose_create_died_right_after_the_claim() {
    let rt = Runtime::new();
    let Some(img) = quota_image(Fs::Ext4) else {
        return;
    };
    let (root, b) = limited_bundle(&img, "8M");
    // Pass 1, traced to the end: which syscall (name, its nth call) follows Q_SETQUOTA.
    let log = tempfile::NamedTempFile::new().unwrap();
    let log_arg = log.path().to_str().unwrap().to_string();
    let first = unique_id("disk-tr");
    let o = img.vsrun_traced(
        &rt,
        &["-o", &log_arg],
        &["create", "--bundle", b.path_str(), &first],
    );
    assert_success(&o, "traced create");
    assert_success(&img.vsrun(&rt, &["delete", "--force", &first]), "delete");
    let (name, nth) = syscall_after_set_quota(&fs::read_to_string(log.path()).unwrap());
    // Pass 2: killed there (same id length, so the same syscalls up to that point).
    let id = unique_id("disk-tr");
    assert_eq!(id.len(), first.len(), "ids of one length");
    let inject = format!("inject={name}:signal=KILL:when={nth}");
    let o = img.vsrun_traced(
        &rt,
        &["-o", "/dev/null", "-e", &inject],
        &["create", "--bundle", b.path_str(), &id],
    );
    assert!(
        !o.status.success(),
        "the create was not killed at {name} #{nth}"
    );
    assert!(
        !rt.state_dir(&id).join("state.json").exists(),
        "state.json written"
    );
    let host_root = img.host_view(&root);
    let project = claimed_after_crash(&rt, &id, &host_root);
    assert_success(
        &img.vsrun(&rt, &["delete", "--force", &id]),
        "delete --force after the crash",
    );
    assert!(!rt.state_dir(&id).exists(), "state dir left");
    assert_eq!(project_of(&host_root), (0, false), "project id left");
    let (_, limit, inodes) = quota_of(&host_root, project);
    assert_eq!((limit, inodes), (0, 0), "limits left on project {project}");
}

/// (syscall name, its call count up to there) of the line after the first Q_SETQUOTA.
fn syscall_after_set_quota(log: &str) -> (String, usize) {
    let calls: Vec<&str> = log
        .lines()
        .filter(|l| !l.starts_with("---") && !l.starts_with("+++"))
        .collect();
    let at = calls
        .iter()
        .position(|l| l.contains("Q_SETQUOTA"))
        .unwrap_or_else(|| panic!("no Q_SETQUOTA in the trace:\n{log}"));
    let name_of = |l: &str| l.split('(').next().unwrap_or("").to_string();
    let name = name_of(calls[at + 1]);
    let nth = calls[..=at + 1]
        .iter()
        .filter(|l| name_of(l) == name)
        .count();
    (name, nth)
}

/// The project a killed create gave limits to, from its leftovers record; the limits are there
/// (the kill came after Q_SETQUOTA).
fn claimed_after_crash(rt: &Runtime, id: &str, host_root: &Path) -> u32 {
    let path = rt.state_dir(id).join("leftovers.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let project = v["disk"]["project"]
        .as_u64()
        .unwrap_or_else(|| panic!("the killed create's leftovers record names no project: {v}"))
        as u32;
    assert_eq!(
        quota_of(host_root, project).1,
        8 * MIB,
        "the limits at the kill"
    );
    project
}

/// A claim that cannot take the host-wide lock (here a directory stands where the lock file
/// goes, in the image's own mount namespace): the error names the annotation and the lock,
/// and nothing is left.
#[test]
fn a_claim_that_cannot_lock_names_the_annotation() {
    let rt = Runtime::new();
    let Some(img) = quota_image(Fs::Ext4) else {
        return;
    };
    img.sh("mount -t tmpfs tmpfs /run && mkdir /run/vsrun-disk-quota.lock");
    let (root, b) = limited_bundle(&img, "8M");
    let id = unique_id("disk-lock");
    let o = img.vsrun(&rt, &["create", "--bundle", b.path_str(), &id]);
    assert_refused_naming(
        &o,
        &[ANNOTATION, "vsrun-disk-quota.lock"],
        "create whose quota lock cannot be opened",
    );
    assert_nothing_left(&rt, &id);
    assert_eq!(
        project_of(&img.host_view(&root)),
        (0, false),
        "project id left on the tree"
    );
}

/// Two disk-limited containers on one rootfs would relabel the same tree, and the first delete
/// would take the other's limit away: the second create is refused, naming the annotation and
/// the first container, which keeps its project id and limit.
#[test]
fn a_second_limited_container_on_one_tree_is_refused() {
    let rt = Runtime::new();
    let Some(img) = quota_image(Fs::Ext4) else {
        return;
    };
    let root = img.mnt().join("rootfs");
    copy_base(&img, &root);
    // Two bundles, one rootfs.
    let (mut b1, mut b2) = (bundle_at(&root), bundle_at(&root));
    annotate(&mut b1, &[(ANNOTATION, "8M")]);
    annotate(&mut b2, &[(ANNOTATION, "16M")]);
    let first = unique_id("disk-one");
    assert_success(
        &img.vsrun(&rt, &["create", "--bundle", b1.path_str(), &first]),
        "create",
    );
    let project = state_project(&rt, &first);
    let second = unique_id("disk-one");
    let o = img.vsrun(&rt, &["create", "--bundle", b2.path_str(), &second]);
    assert_refused_naming(
        &o,
        &[ANNOTATION, &first],
        "a second disk-limited create on the same rootfs",
    );
    assert_nothing_left(&rt, &second);
    let host_root = img.host_view(&root);
    assert_eq!(project_of(&host_root), (project, true), "the first's label");
    assert_eq!(
        quota_of(&host_root, project).1,
        8 * MIB,
        "the first's limit"
    );
    assert_success(
        &img.vsrun(&rt, &["delete", "--force", &first]),
        "delete --force",
    );
    assert_nothing_left(&rt, &first);
}
