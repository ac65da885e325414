//! Disk-space limit per context (VServer's disk limits) with project quotas: annotation
//! `org.vsrun.disk-limit` (bytes, or K/M/G/T binary suffixes) and optionally
//! `org.vsrun.disk-inodes`.
//!
//! - `plan` (create, before the state dir): parse, find the tree — the rootfs, or the upper dir
//!   when the rootfs is an overlay mount (an engine's layers: only the upper one grows) — and
//!   check that the kernel and that file system enforce project quotas.
//! - `apply` (create, before the clone): claim a project id, record it in the state dir, set
//!   its hard limits, then label the tree (`tree.rs`). The claim: under a host-wide flock, the first id, from a hash
//!   of the container id, whose quota record is empty (no usage, no limits) gets the limits,
//!   which makes its record non-empty for the next vsrun. Two containers never share an id,
//!   whatever their `--root`, and an id an administrator uses (it has usage or limits) is
//!   never taken.
//! - `set_limits` (update), `usage` (stat: reads, needs CAP_SYS_ADMIN for the record).
//! - `remove` (delete, a failed create): the tree's directories and regular files go back to
//!   project 0 without PROJINHERIT, then the record's limits are zeroed. What the container
//!   made that cannot be opened for the ioctl (symlinks, devices, fifos, sockets) keeps the id;
//!   their inodes keep the record non-empty, so the id is not handed out again while they exist.

mod tree;

use crate::error::{config, Error, Result};
use crate::syscall::quota as q;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const ANNOTATION: &str = "org.vsrun.disk-limit";
pub const INODES_ANNOTATION: &str = "org.vsrun.disk-inodes";

/// The host-wide lock for claiming an id: held for a few quotactl calls only.
/// Outside every --root (the default root is /run/vsrun), where `list` would see it.
const CLAIM_LOCK: &str = "/run/vsrun-disk-quota.lock";
/// Ids are claimed from this range, away from the small ids administrators number by hand.
const FIRST_ID: u32 = 0x4000_0000;
const ID_SPAN: u32 = 0x3fff_ffff;
const MAX_PROBES: u32 = 4096;
/// `if_dqblk` block limits are in units of 1 KiB (QIF_DQBLKSIZE).
const QUOTA_BLOCK: u64 = 1024;
/// FS_QUOTA_PDQ_ENFD in `fs_quota_statv.qs_flags`: project limits are enforced.
const PROJECT_ENFORCED: u16 = 1 << 5;

fn field(name: &str) -> String {
    format!("annotations.{name:?}")
}

pub struct Plan {
    pub bytes: u64,
    pub inodes: Option<u64>,
    pub tree: PathBuf,
}

/// What `delete`, `update` and `stat` need, kept in state.json.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Quota {
    pub project: u32,
    pub tree: PathBuf,
    /// st_dev of the tree: the record lives on that file system even when the tree is gone.
    pub dev: u64,
}

pub struct Usage {
    pub used: u64,
    pub limit: u64,
    pub inodes: u64,
    pub inode_limit: u64,
}

/// `annotations` → a plan, or None without the annotation. Fails, naming the annotation,
/// on a bad value or where project quotas are not enforced.
pub fn plan(annotations: &HashMap<String, String>, rootfs: &Path) -> Result<Option<Plan>> {
    let inodes = annotations
        .get(INODES_ANNOTATION)
        .map(|v| parse_count(v).map_err(|m| config(field(INODES_ANNOTATION), m)))
        .transpose()?;
    let Some(v) = annotations.get(ANNOTATION) else {
        return match inodes {
            Some(_) => Err(config(
                field(INODES_ANNOTATION),
                format!("needs {ANNOTATION} as well"),
            )),
            None => Ok(None),
        };
    };
    let bytes = parse_size(v).map_err(|m| config(field(ANNOTATION), m))?;
    let tree = writable_tree(rootfs).map_err(|m| config(field(ANNOTATION), m))?;
    let fd = open_dir(&tree)
        .map_err(|e| config(field(ANNOTATION), format!("{}: {e}", tree.display())))?;
    check_support(fd.as_fd(), &tree).map_err(|m| config(field(ANNOTATION), m))?;
    Ok(Some(Plan {
        bytes,
        inodes,
        tree,
    }))
}

/// Bytes with an optional binary suffix: `1048576`, `512K`, `10M`, `2G`, `1T`. Zero is
/// refused: a zero hard limit means "no limit" to the kernel.
pub fn parse_size(v: &str) -> std::result::Result<u64, String> {
    match crate::units::parse_bytes(v)? {
        0 => Err(format!("{v:?}: must be more than 0")),
        n => Ok(n),
    }
}

fn parse_count(v: &str) -> std::result::Result<u64, String> {
    match v.trim().parse::<u64>() {
        Ok(0) => Err(format!("{v:?}: must be more than 0")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{v:?}: not a number of inodes")),
    }
}

/// The tree the container writes to: an overlay rootfs writes to its upper dir.
fn writable_tree(rootfs: &Path) -> std::result::Result<PathBuf, String> {
    let rootfs =
        &std::fs::canonicalize(rootfs).map_err(|e| format!("{}: {e}", rootfs.display()))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("read /proc/self/mountinfo: {e}"))?;
    match overlay_upper(&mountinfo, rootfs) {
        None => Ok(rootfs.to_path_buf()),
        Some(Some(upper)) => Ok(upper),
        Some(None) => Err(format!(
            "the rootfs {} is an overlay without an upper dir (nothing to limit)",
            rootfs.display()
        )),
    }
}

/// None: `rootfs` is not an overlay mount point. Some(upper) for the topmost one.
fn overlay_upper(mountinfo: &str, rootfs: &Path) -> Option<Option<PathBuf>> {
    let mut found = None;
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mountpoint = pre.split(' ').nth(4).map(unescape);
        if mountpoint.as_deref() != Some(rootfs.as_os_str().to_str()?) {
            continue;
        }
        let mut f = post.split(' ');
        let (fstype, _source, opts) = (f.next()?, f.next()?, f.next().unwrap_or(""));
        found = (fstype == "overlay").then(|| {
            split_options(opts).into_iter().find_map(|o| {
                o.strip_prefix("upperdir=")
                    .map(|u| PathBuf::from(unescape(u)))
            })
        });
    }
    found
}

/// Overlay options are comma-separated; mountinfo writes a comma inside a path as `\054`.
fn split_options(opts: &str) -> Vec<String> {
    opts.split(',').map(String::from).collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn open_dir(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// The reason project quotas cannot limit `tree`, most basic first.
fn check_support(fd: BorrowedFd<'_>, tree: &Path) -> std::result::Result<(), String> {
    // fs/quota registers this sysctl directory: without it the kernel has no quota code at all.
    if !Path::new("/proc/sys/fs/quota").exists() {
        return Err("this kernel has no quota support (built without CONFIG_QUOTA)".into());
    }
    let how = "ext4: mkfs.ext4 -O quota,project, mount -o prjquota, a kernel with CONFIG_QFMT_V2; \
               XFS: mount -o pquota, a kernel with CONFIG_XFS_QUOTA";
    q::get_xattr(fd).map_err(|e| {
        format!(
            "the file system of {} has no project ids (FS_IOC_FSGETXATTR: {e})",
            tree.display()
        )
    })?;
    let flags = q::quota_state_flags(fd).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOSYS) | Some(libc::ESRCH) | Some(libc::ENOTTY) => format!(
            "the file system of {} has no quotas enabled ({how})",
            tree.display()
        ),
        _ => format!("quotactl Q_XGETQSTATV on {}: {e}", tree.display()),
    })?;
    if flags & PROJECT_ENFORCED == 0 {
        return Err(format!(
            "project quotas are not enforced on the file system of {} ({how})",
            tree.display()
        ));
    }
    Ok(())
}

/// What the claim asks of the caller's state: the container holding a project id
/// (`owner_of`, for the refusal's message) and the record to write before the limits.
pub struct Claim<'a> {
    pub owner_of: &'a dyn Fn(u32) -> Option<String>,
    pub record: &'a mut dyn FnMut(&Quota) -> Result<()>,
}

/// Claim a project id for `id`, hand it to `c.record` (the leftovers record in the state dir,
/// for a `delete --force` after a crash), set its limits and label the tree. On error nothing
/// is left.
pub fn apply(p: &Plan, id: &str, c: Claim<'_>) -> Result<Quota> {
    let fd = open_dir(&p.tree).map_err(|e| os(format!("open {}", p.tree.display()), e))?;
    let dev = fd
        .metadata()
        .map_err(|e| os(format!("stat {}", p.tree.display()), e))?
        .dev();
    let quota = claim(fd.as_fd(), id, p, dev, c)?;
    let labelled = tree::label(
        fd.as_fd(),
        tree::Label {
            projid: quota.project,
            inherit: true,
        },
    )
    .map_err(|e| label_error(&quota, e));
    if let Err(e) = labelled {
        let _ = remove(&quota);
        return Err(e);
    }
    Ok(quota)
}

fn label_error(quota: &Quota, e: io::Error) -> Error {
    let hint = match e.raw_os_error() {
        Some(libc::EDQUOT) => " (the tree already holds more than the limit)",
        // XFS reports a project over its limit as a full disk.
        Some(libc::ENOSPC) => " (the tree may already hold more than the limit)",
        _ => "",
    };
    config(
        field(ANNOTATION),
        format!(
            "give {} project id {}: {e}{hint}",
            quota.tree.display(),
            quota.project
        ),
    )
}

/// Under the host-wide lock: refuse a tree another container holds, find a free id, record
/// it, give it the plan's limits and label the tree's top. The record comes before the limits:
/// a create killed between the two leaves a record `delete --force` clears, never limits that
/// nothing names. The top's label tells the next create on this tree that it is taken.
fn claim(fd: BorrowedFd<'_>, id: &str, p: &Plan, dev: u64, c: Claim<'_>) -> Result<Quota> {
    let _lock = claim_lock()?;
    refuse_held_tree(fd, &p.tree, c.owner_of)?;
    let quota = Quota {
        project: free_project(fd, id)?,
        tree: p.tree.clone(),
        dev,
    };
    (c.record)(&quota).map_err(|e| {
        config(
            field(ANNOTATION),
            format!("record project id {}: {e}", quota.project),
        )
    })?;
    write_limits(
        fd,
        quota.project,
        Some(p.bytes),
        Some(p.inodes.unwrap_or(0)),
    )
    .map_err(|e| config(field(ANNOTATION), format!("quotactl Q_SETQUOTA: {e}")))?;
    let top = tree::Label {
        projid: quota.project,
        inherit: true,
    };
    if let Err(e) = tree::label_top(fd, top) {
        let _ = write_limits(fd, quota.project, Some(0), Some(0));
        return Err(label_error(&quota, e));
    }
    Ok(quota)
}

/// Two limited containers on one tree would relabel the same inodes, and the first delete
/// would take the other's limit away. A tree is held when its top has a project id whose
/// record has limits (a vsrun container's, or an administrator's).
fn refuse_held_tree(
    fd: BorrowedFd<'_>,
    tree: &Path,
    owner_of: &dyn Fn(u32) -> Option<String>,
) -> Result<()> {
    let projid = q::get_xattr(fd)
        .map_err(|e| os(format!("FS_IOC_FSGETXATTR {}", tree.display()), e))?
        .projid;
    let held = projid != 0
        && q::get_project_quota(fd, projid)
            .is_ok_and(|r| r.dqb_bhardlimit != 0 || r.dqb_ihardlimit != 0);
    if !held {
        return Ok(());
    }
    let who = match owner_of(projid) {
        Some(other) => format!("container {other:?}"),
        None => "a container of another --root, or the administrator".to_string(),
    };
    Err(config(
        field(ANNOTATION),
        format!(
            "{} is already limited by {who} (project id {projid}): two disk-limited containers cannot share a tree",
            tree.display()
        ),
    ))
}

/// The first id, counted from a hash of the container id, whose quota record is empty.
fn free_project(fd: BorrowedFd<'_>, id: &str) -> Result<u32> {
    let start = fnv1a(id.as_bytes()) % ID_SPAN;
    for i in 0..MAX_PROBES {
        let project = FIRST_ID + (start + i) % ID_SPAN;
        let free = match q::get_project_quota(fd, project) {
            Ok(r) => record_is_empty(&r),
            // XFS reports an id it has no record for as ENOENT.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
            Err(e) => {
                return Err(config(
                    field(ANNOTATION),
                    format!("quotactl Q_GETQUOTA: {e}"),
                ))
            }
        };
        if free {
            return Ok(project);
        }
    }
    Err(config(
        field(ANNOTATION),
        format!("no free project id among {MAX_PROBES} tried"),
    ))
}

fn claim_lock() -> Result<File> {
    let path = Path::new(CLAIM_LOCK);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| os(format!("mkdir {}", dir.display()), e))?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| os(format!("open {CLAIM_LOCK}"), e))?;
    crate::syscall::flock_exclusive(&f).map_err(|e| os(format!("lock {CLAIM_LOCK}"), e))?;
    Ok(f)
}

fn record_is_empty(r: &libc::dqblk) -> bool {
    r.dqb_curspace == 0
        && r.dqb_curinodes == 0
        && r.dqb_bhardlimit == 0
        && r.dqb_bsoftlimit == 0
        && r.dqb_ihardlimit == 0
        && r.dqb_isoftlimit == 0
}

fn fnv1a(b: &[u8]) -> u32 {
    b.iter().fold(0x811c_9dc5u32, |h, c| {
        (h ^ *c as u32).wrapping_mul(0x0100_0193)
    })
}

/// Hard limits only (soft ones would only warn); None leaves that limit as it is.
fn write_limits(
    fd: BorrowedFd<'_>,
    project: u32,
    bytes: Option<u64>,
    inodes: Option<u64>,
) -> io::Result<()> {
    let mut r = q::get_project_quota(fd, project).unwrap_or_else(|_| empty_record());
    r.dqb_valid = 0;
    if let Some(b) = bytes {
        r.dqb_bhardlimit = b.div_ceil(QUOTA_BLOCK);
        r.dqb_bsoftlimit = 0;
        r.dqb_valid |= libc::QIF_BLIMITS;
    }
    if let Some(n) = inodes {
        r.dqb_ihardlimit = n;
        r.dqb_isoftlimit = 0;
        r.dqb_valid |= libc::QIF_ILIMITS;
    }
    q::set_project_quota(fd, project, &r)
}

fn empty_record() -> libc::dqblk {
    libc::dqblk {
        dqb_bhardlimit: 0,
        dqb_bsoftlimit: 0,
        dqb_curspace: 0,
        dqb_ihardlimit: 0,
        dqb_isoftlimit: 0,
        dqb_curinodes: 0,
        dqb_btime: 0,
        dqb_itime: 0,
        dqb_valid: 0,
    }
}

/// `vsrun update --disk-limit/--disk-inodes`: new hard limits, live.
pub fn set_limits(quota: &Quota, bytes: Option<u64>, inodes: Option<u64>) -> Result<()> {
    let fd = open_on_fs(quota).map_err(|e| os(format!("open {}", quota.tree.display()), e))?;
    write_limits(fd.as_fd(), quota.project, bytes, inodes)
        .map_err(|e| os(format!("quotactl Q_SETQUOTA project {}", quota.project), e))
}

/// Used and limit of the container's project, for `stat`. None when it cannot be read.
pub fn usage(quota: &Quota) -> Option<Usage> {
    let fd = open_dir(&quota.tree).ok()?;
    let r = q::get_project_quota(fd.as_fd(), quota.project).ok()?;
    Some(Usage {
        used: r.dqb_curspace,
        limit: r.dqb_bhardlimit * QUOTA_BLOCK,
        inodes: r.dqb_curinodes,
        inode_limit: r.dqb_ihardlimit,
    })
}

/// Take the project id back from the tree and zero the record's limits. Idempotent; a tree
/// the engine already removed leaves only the record to zero, and a file system no longer
/// mounted here (the engine unmounted it, or this is another mount namespace) leaves nothing
/// this process could clear.
pub fn remove(quota: &Quota) -> Result<()> {
    let fd = match open_on_fs(quota) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(os(format!("open {}", quota.tree.display()), e)),
    };
    // Both steps are tried: a tree that cannot be relabelled must still not keep a limit
    // (the claim finds a project id free by its zero limits). The first error is returned.
    let unlabelled = match fd_is_tree(&fd, quota) {
        true => tree::label(
            fd.as_fd(),
            tree::Label {
                projid: 0,
                inherit: false,
            },
        )
        .map_err(|e| {
            os(
                format!("clear the project id of {}", quota.tree.display()),
                e,
            )
        }),
        false => Ok(()),
    };
    let zeroed = write_limits(fd.as_fd(), quota.project, Some(0), Some(0))
        .map_err(|e| os(format!("quotactl Q_SETQUOTA project {}", quota.project), e));
    unlabelled.and(zeroed)
}

fn fd_is_tree(fd: &File, quota: &Quota) -> bool {
    let (Ok(a), Ok(b)) = (fd.metadata(), std::fs::symlink_metadata(&quota.tree)) else {
        return false;
    };
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// The tree, or its nearest existing ancestor on the same file system (quotactl_fd only
/// needs some file there).
fn open_on_fs(quota: &Quota) -> io::Result<File> {
    let mut p: &Path = &quota.tree;
    loop {
        match open_dir(p) {
            Ok(f) if f.metadata()?.dev() == quota.dev => return Ok(f),
            Ok(_) => return Err(io::Error::from_raw_os_error(libc::ENOENT)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                p = p.parent().ok_or(e)?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Every disk error names the annotation, whichever step failed: it is what the user set.
fn os(step: String, source: io::Error) -> Error {
    Error::Os {
        step: format!("{}: {step}", field(ANNOTATION)),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes_and_refuse_the_rest() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("10m"), Ok(10 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        // runc's size rule (units.rs): a fraction is scaled, then truncated to bytes
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        for bad in ["12Q", "", "M", "-1", "0", "0K", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_overlay_rootfs_is_limited_on_its_upper_dir() {
        let mi = "36 25 0:32 / /b/rootfs rw,relatime - overlay overlay \
                  rw,lowerdir=/l,upperdir=/u\\054x/diff,workdir=/w\n\
                  37 25 8:1 / /plain rw - ext4 /dev/sda1 rw\n";
        assert_eq!(
            overlay_upper(mi, Path::new("/b/rootfs")),
            Some(Some(PathBuf::from("/u,x/diff")))
        );
        assert_eq!(overlay_upper(mi, Path::new("/plain")), None);
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
