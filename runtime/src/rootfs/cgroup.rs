//! `type: cgroup` mounts, as runc does them.
//!
//! cgroup v1 (and the hybrid layout of this VM: v1 controllers plus a v2 "unified" tree): a
//! tmpfs on the destination and, for every hierarchy the host has mounted, a directory named
//! like the host's (`cpu,cpuacct`, `memory`, `systemd`, `unified`) holding
//!  - with a cgroup namespace: a new mount of that hierarchy (the namespace shows its root as
//!    the container's cgroup);
//!  - without one: a bind of the container's own cgroup directory from the host's mount.
//!
//! Co-mounted controllers get symlinks (`cpu -> cpu,cpuacct`). The options' flags (nosuid,
//! nodev, noexec, ro) apply to every mount; `ro` makes the tmpfs read-only last.
//!
//! cgroup v2 only: a new cgroup2 mount on the destination; if the kernel refuses it (EPERM in
//! a user namespace without a cgroup namespace, EBUSY) a bind of the container's cgroup dir.

use super::kmount;
use super::mountinfo::{self, CgroupLine, MountInfo};
use super::mounts::{self, shown};
use super::resolve::{self, Create};
use super::{MountStep, Plan};
use crate::cgroups::hierarchies::{self, HostCgroups};
use crate::error::{Error, Result, StepExt};
use crate::syscall::MOUNT_ATTR_RDONLY;
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

pub fn mount(plan: &Plan, root: BorrowedFd<'_>, m: &MountStep) -> Result<OwnedFd> {
    let i = m.index;
    let target = mounts::target(root, m, Create::Dir)?;
    let host = host_mounts(plan).step(|| format!("mounts[{i}]: find the host's cgroup mounts"))?;
    let lines = std::fs::read_to_string("/proc/self/cgroup")
        .map(|t| mountinfo::parse_cgroup(&t))
        .step(|| format!("mounts[{i}]: read /proc/self/cgroup"))?;
    let hierarchies = distinct_hierarchies(&host.mounts);
    let (set, clr) = m.opts.attr();
    // Each bind source is opened relative to this one fd: a walk from / through /sys/fs
    // revalidates sysfs's dentries under its lock, which new network namespaces take.
    let cg_root = resolve::open_host(CGROUP_ROOT, libc::O_PATH | libc::O_DIRECTORY).ok();
    let mount_one = |h| hierarchy(plan, m, h, &lines, (set, clr), cg_root.as_ref());
    if !hierarchies.iter().any(|h| h.fstype == "cgroup") {
        let h = hierarchies.first().ok_or_else(|| {
            Error::Child(format!(
                "mounts[{i}]: the host has no cgroup file system mounted"
            ))
        })?;
        let mnt = mount_one(h)?;
        kmount::attach(mnt.as_fd(), target.as_fd())
            .step(|| format!("mounts[{i}]: mount cgroup2 on {}", shown(&m.dest)))?;
        return Ok(mnt);
    }

    let tmpfs = kmount::new_fs(
        "tmpfs",
        Some("tmpfs"),
        &[],
        &["mode=755".to_string()],
        set & !MOUNT_ATTR_RDONLY,
    )
    .map_err(|e| e.step(format!("mounts[{i}]: mount tmpfs on {}", shown(&m.dest))))?;
    kmount::attach(tmpfs.as_fd(), target.as_fd())
        .step(|| format!("mounts[{i}]: mount tmpfs on {}", shown(&m.dest)))?;
    for h in hierarchies {
        let mnt = mount_one(h)?;
        attach_in_tmpfs(m, tmpfs.as_fd(), h, mnt.as_fd())?;
    }
    if set & MOUNT_ATTR_RDONLY != 0 {
        kmount::set_attr(tmpfs.as_fd(), MOUNT_ATTR_RDONLY, 0, false).step(|| {
            format!(
                "mounts[{i}]: make the tmpfs on {} read-only",
                shown(&m.dest)
            )
        })?;
    }
    Ok(tmpfs)
}

/// The host's cgroup mounts as the parent found them before cloning this init (the mounts of
/// this new mount namespace are copies of the same). A new v1 mount, made in a cgroup
/// namespace, repeats the host's mount options, which only mountinfo has.
fn host_mounts(plan: &Plan) -> std::io::Result<&'static HostCgroups> {
    let h = hierarchies::host()?;
    if plan.cgroupns && h.mounts.iter().any(|m| m.fstype == "cgroup") {
        return hierarchies::host_with_options();
    }
    Ok(h)
}

/// Every cgroup or cgroup2 mount of the host, one per hierarchy (its first mount).
fn distinct_hierarchies(infos: &[MountInfo]) -> Vec<&MountInfo> {
    let mut out: Vec<&MountInfo> = Vec::new();
    for h in infos
        .iter()
        .filter(|h| h.fstype == "cgroup" || h.fstype == "cgroup2")
    {
        if !out.iter().any(|o| o.dev == h.dev) {
            out.push(h);
        }
    }
    out
}

/// Attach hierarchy `h`'s mount at its host name in the cgroup tmpfs; a co-mounted one
/// (`cpu,cpuacct`) also gets a symlink per controller, as on the host.
fn attach_in_tmpfs(
    m: &MountStep,
    tmpfs: BorrowedFd<'_>,
    h: &MountInfo,
    mnt: BorrowedFd<'_>,
) -> Result<()> {
    let i = m.index;
    let Some(name) = h.mount_point.file_name() else {
        return Ok(());
    };
    let dest = m.dest.join(name);
    let step = || format!("mounts[{i}]: mount cgroup hierarchy on {}", shown(&dest));
    nix::sys::stat::mkdirat(
        Some(tmpfs.as_raw_fd()),
        name,
        Mode::from_bits_truncate(0o755),
    )
    .step(step)?;
    let dir = resolve::openat(
        tmpfs,
        name,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
    .step(step)?;
    kmount::attach(mnt, dir.as_fd()).step(step)?;
    let name = name.to_string_lossy();
    if name.contains(',') {
        for part in name.split(',') {
            match nix::unistd::symlinkat(name.as_ref(), Some(tmpfs.as_raw_fd()), part) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(e).step(|| format!("mounts[{i}]: symlink {part} -> {name}")),
            }
        }
    }
    Ok(())
}

/// One hierarchy, detached: a new mount of it when the container has a cgroup namespace (or on
/// a v2-only host), else (or if that is refused) a bind of the container's own cgroup dir.
fn hierarchy(
    plan: &Plan,
    m: &MountStep,
    h: &MountInfo,
    lines: &[CgroupLine],
    (set, clr): (u64, u64),
    cg_root: Option<&OwnedFd>,
) -> Result<OwnedFd> {
    let i = m.index;
    let v2 = h.fstype == "cgroup2";
    // Only with a cgroup namespace: a fresh mount of the hybrid's unified tree would show the
    // host's whole hierarchy, and a cgroup2 mount costs an RCU grace period (12 ms measured);
    // without the namespace the container's own directory is bound, as runc does.
    if plan.cgroupns {
        let data: Vec<String> = h
            .super_options
            .iter()
            .filter(|o| !matches!(o.as_str(), "rw" | "ro") && !o.starts_with("release_agent="))
            .cloned()
            .collect();
        let data = if v2 { Vec::new() } else { data };
        match kmount::new_fs(&h.fstype, Some(&h.fstype), &[], &data, set) {
            Ok(mnt) => return Ok(mnt),
            Err(e) if matches!(e.errno(), Some(libc::EPERM) | Some(libc::EBUSY)) => {}
            Err(e) => {
                return Err(e.step(format!(
                    "mounts[{i}]: mount {} {}",
                    h.fstype,
                    data.join(",")
                )))
            }
        }
    }
    let seen = as_seen_here(plan, h).step(|| format!("mounts[{i}]: read /proc/self/mountinfo"))?;
    let source = seen.and_then(|h| own_cgroup_dir(h, lines)).ok_or_else(|| {
        Error::Child(format!(
            "mounts[{i}]: cannot find this container's cgroup under {}",
            h.mount_point.display()
        ))
    })?;
    let step = || format!("mounts[{i}]: bind cgroup {}", source.display());
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    let src = match (cg_root, source.strip_prefix(CGROUP_ROOT)) {
        (Some(r), Ok(rel)) if !rel.as_os_str().is_empty() && plain(rel) => {
            resolve::openat(r.as_fd(), rel, flags | libc::O_NOFOLLOW, 0)
        }
        _ => resolve::open_host(&source, flags),
    }
    .step(step)?;
    let tree = kmount::clone_tree(src.as_fd(), false).step(step)?;
    kmount::set_attr(tree.as_fd(), set, clr, false).step(step)?;
    Ok(tree)
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// No `..` or `.`: relative to the fd of /sys/fs/cgroup it stays what the path says.
fn plain(rel: &Path) -> bool {
    rel.components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// `h` as this init sees it. The fast answer's roots ("/") hold in the caller's (initial)
/// cgroup namespace, which the init shares without a cgroup namespace of its own; in one,
/// mountinfo shows the roots relative to it, as /proc/self/cgroup shows the init's paths.
fn as_seen_here<'a>(plan: &Plan, h: &'a MountInfo) -> std::io::Result<Option<&'a MountInfo>> {
    if !plan.cgroupns || hierarchies::host()?.full_options {
        return Ok(Some(h));
    }
    let full = hierarchies::host_with_options()?;
    Ok(full.mounts.iter().find(|m| m.dev == h.dev))
}

/// The host path of the init's cgroup in hierarchy `h`: the hierarchy's mount point plus the
/// init's cgroup path relative to the mount's root.
fn own_cgroup_dir(h: &MountInfo, lines: &[CgroupLine]) -> Option<PathBuf> {
    let line = if h.fstype == "cgroup2" {
        lines
            .iter()
            .find(|l| l.hierarchy == 0 && l.controllers.is_empty())?
    } else {
        lines.iter().find(|l| {
            !l.controllers.is_empty() && l.controllers.iter().all(|c| h.super_options.contains(c))
        })?
    };
    let rel = Path::new(&line.path).strip_prefix(&h.root).ok()?;
    if rel
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return None;
    }
    Some(h.mount_point.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroup_dir_joins_mount_point_and_relative_path() {
        let h = mountinfo::parse_line(
            "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct",
        )
        .unwrap();
        let lines = mountinfo::parse_cgroup("3:memory:/m\n2:cpu,cpuacct:/a/b\n0::/u\n");
        assert_eq!(
            own_cgroup_dir(&h, &lines),
            Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a/b"))
        );
        let u =
            mountinfo::parse_line("41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw")
                .unwrap();
        assert_eq!(
            own_cgroup_dir(&u, &lines),
            Some(PathBuf::from("/sys/fs/cgroup/unified/u"))
        );
        let named = mountinfo::parse_line(
            "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd",
        )
        .unwrap();
        assert_eq!(own_cgroup_dir(&named, &lines), None);
    }
}
