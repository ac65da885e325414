//! Making the container's cgroup directories and getting the init into them (the hot path of
//! every `run`), and removing them again.

use super::at;
use super::host::needs;
use super::layout::Layout;
use super::paths::rel;
use super::CGROUP_ROOT;
use crate::error::{config, Result, StepExt};
use oci_spec::runtime::LinuxResources;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// How the init gets into its cgroup, decided and made ready before the clone.
///
/// Moving a process by writing its pid to `cgroup.procs` takes the kernel's cgroup-wide
/// threadgroup rwsem for writing, and the first such write costs an RCU grace period: 13 ms of
/// a `run` when measured here (strace -r). Two ways around it, both used:
/// - pure v2: clone3(CLONE_INTO_CGROUP) with the directory's fd: born in the cgroup;
/// - v1: the init moves *itself* by writing "0" to each hierarchy's `tasks` file; a thread
///   moving itself needs no global lock (kernel: cgroup_procs_write_start). It does so as its
///   first step, while it still has host root's credentials.
///
/// The `tasks` files are opened by the parent (relative to each directory's fd: no path walk
/// in the init) and closed by the init right after its write, before anything of the
/// container runs; the parent drops its copies right after the clone.
#[derive(Default)]
pub struct Joining {
    /// v1 `tasks` files the init writes "0" to, with their paths for messages.
    pub tasks: std::cell::RefCell<Vec<(File, PathBuf)>>,
    /// The v2 directory for CLONE_INTO_CGROUP.
    pub v2_dir: Option<std::os::fd::OwnedFd>,
}

/// Rootless: whether this user may join `dir` (write its `tasks` or `cgroup.procs`) or, when it
/// does not exist yet, create it (write and search its nearest existing ancestor).
pub(super) fn may_join(dir: &Path, v1: bool) -> bool {
    use nix::unistd::{access, AccessFlags};
    if dir.is_dir() {
        let file = if v1 { "tasks" } else { "cgroup.procs" };
        return access(&dir.join(file), AccessFlags::W_OK).is_ok();
    }
    dir.ancestors()
        .skip(1)
        .find(|d| d.is_dir())
        .is_some_and(|d| access(d, AccessFlags::W_OK | AccessFlags::X_OK).is_ok())
}

/// Rootless, as runc does: a cgroup the user cannot create is skipped when the config sets no
/// limit that lives there; a field that does is refused by name (runc: "cannot set ... limit:
/// container could not join or create cgroup").
pub(super) fn refuse_unwritable(
    n: &LinuxResources,
    layout: &Layout,
    path: &Path,
    skipped: &[PathBuf],
) -> Result<()> {
    if skipped.is_empty() {
        return Ok(());
    }
    for need in needs(n, layout.is_v2()) {
        let dir = layout.dir(need.controller, path);
        if let Some(dir) = dir.filter(|d| skipped.contains(d)) {
            return Err(config(
                need.field,
                format!(
                    "rootless: uid {} cannot create or join the cgroup {} ({}); remove the limit, or run where the user owns a delegated cgroup",
                    nix::unistd::geteuid(),
                    dir.display(),
                    need.controller
                ),
            ));
        }
    }
    Ok(())
}

/// An init joining a frozen cgroup stops before its first step and `create` waits for it
/// forever. runc 1.1.5 refuses such a cgroup ("container's cgroup unexpectedly frozen") rather
/// than thaw it: whoever froze it meant it, and it may not be vsrun's. Checked after mkdir, so
/// a new directory below a frozen one (which the kernel freezes at birth) is caught too.
pub(super) fn refuse_frozen(path: &Path, dir: &Path, fd: BorrowedFd<'_>) -> Result<()> {
    if !is_frozen_dir(fd) {
        return Ok(());
    }
    Err(config(
        "linux.cgroupsPath",
        format!(
            "{}: {} is frozen; thaw it (or resume its container) before creating a container in it",
            path.display(),
            dir.display()
        ),
    ))
}

/// Only the v1 freezer hierarchy and the v2 tree can freeze a cgroup: the freezer's files are
/// looked for there, not in every hierarchy, where each try is one more path walk through /sys
/// and its kernfs locks, which parallel runs queue on. exec's sub-cgroups: everywhere.
pub(super) fn may_be_frozen(
    layout: &Layout,
    plan: &super::Plan,
    dir: &PathBuf,
    v2_dir: Option<&PathBuf>,
) -> bool {
    !plan.sub.is_empty()
        || Some(dir) == v2_dir
        || layout.dir("freezer", &plan.path).as_ref() == Some(dir)
}

/// v1: freezer.state is FROZEN or FREEZING, its own or an ancestor's. v2: cgroup.freeze is
/// this cgroup's own request; cgroup.events `frozen 1` also covers an ancestor's.
pub(super) fn is_frozen_dir(dir: BorrowedFd<'_>) -> bool {
    let read = |f: &str| at::read(dir, f);
    let v1 = read("freezer.state");
    if !v1.trim().is_empty() && v1.trim() != "THAWED" {
        return true;
    }
    read("cgroup.freeze").trim() == "1" || read("cgroup.events").lines().any(|l| l == "frozen 1")
}

pub(super) fn has_processes(dir: BorrowedFd<'_>) -> bool {
    !at::read(dir, "cgroup.procs").trim().is_empty()
}

/// Open the container's directory in one hierarchy, making what is missing, relative to the
/// fd of /sys/fs/cgroup; with whether it existed. The paths made go to `made` (outermost
/// first, for rollback). `cpuset`: `dir` is in the v1 cpuset hierarchy, the only one whose
/// new directories need values before a task can join.
pub(super) fn make_dir(
    root: BorrowedFd<'_>,
    dir: &Path,
    cpuset: bool,
    made: &mut Vec<PathBuf>,
) -> Result<(OwnedFd, bool)> {
    let step = || format!("create cgroup {}", dir.display());
    let Some(rel) = at::below_root(dir) else {
        return make_dir_by_path(dir, cpuset, made);
    };
    let mut copied = true;
    let mut on_made = |new: &Path| match cpuset {
        true => copy_cpuset(root, new).map(|all| copied &= all),
        false => Ok(()),
    };
    let new = at::mkdir_all(root, rel, dir, made, &mut on_made).step(step)?;
    let fd = at::open_dir(root, dir).step(step)?;
    // A new one that got its parent's values is done; the rest is looked at.
    check_cpuset(fd.as_fd(), dir, cpuset && !(new && copied))?;
    Ok((fd, !new))
}

/// A hierarchy mounted outside /sys/fs/cgroup: by absolute paths, as before.
fn make_dir_by_path(dir: &Path, cpuset: bool, made: &mut Vec<PathBuf>) -> Result<(OwnedFd, bool)> {
    let step = || format!("create cgroup {}", dir.display());
    let mut missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.is_dir())
        .map(Path::to_path_buf)
        .collect();
    let existed = missing.is_empty();
    missing.reverse();
    made.extend(missing);
    std::fs::create_dir_all(dir).step(step)?;
    let fd =
        crate::rootfs::resolve::open_host(dir, libc::O_RDONLY | libc::O_DIRECTORY).step(step)?;
    check_cpuset(fd.as_fd(), dir, cpuset)?;
    Ok((fd, existed))
}

/// v1: a cpuset directory without cpus or mems (an existing one, or one below an ancestor
/// without them) gets them by path from the nearest ancestor that has them.
pub(super) fn check_cpuset(fd: BorrowedFd<'_>, dir: &Path, cpuset: bool) -> Result<()> {
    if cpuset && at::exists(fd, "cpuset.cpus") && !has_cpuset(fd) {
        inherit_cpuset(dir).step(|| format!("create cgroup {}", dir.display()))?;
    }
    Ok(())
}

/// A new v1 cpuset starts with no cpus and mems, and a task cannot join it until they are
/// set: a new directory (`new`, relative to `root`) copies its parent's; made top down,
/// each parent already has them. Whether both were copied.
fn copy_cpuset(root: BorrowedFd<'_>, new: &Path) -> std::io::Result<bool> {
    let Some(parent) = new.parent() else {
        return Ok(false);
    };
    let mut all = true;
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let v = at::read(root, parent.join(file));
        if v.trim().is_empty() {
            all = false;
        } else {
            at::write(root, new.join(file), v.trim())?;
        }
    }
    Ok(all)
}

fn has_cpuset(dir: BorrowedFd<'_>) -> bool {
    ["cpuset.cpus", "cpuset.mems"]
        .iter()
        .all(|f| !at::read(dir, f).trim().is_empty())
}

/// Copy cpus and mems down from the nearest ancestor that has them, by path: only for
/// existing directories left without them, which `make_dir` does not expect.
pub(super) fn inherit_cpuset(dir: &Path) -> std::io::Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let mut chain = vec![dir.to_path_buf()];
        let mut value = String::new();
        let mut p = dir.parent();
        while let Some(d) = p {
            let v = std::fs::read_to_string(d.join(file)).unwrap_or_default();
            if !v.trim().is_empty() {
                value = v;
                break;
            }
            chain.push(d.to_path_buf());
            p = d.parent();
        }
        for d in chain.iter().rev() {
            if std::fs::read_to_string(d.join(file))
                .unwrap_or_default()
                .trim()
                .is_empty()
            {
                std::fs::write(d.join(file), value.trim())?;
            }
        }
    }
    Ok(())
}

/// v2: a child has a controller's files only when its parent lists the controller in
/// `cgroup.subtree_control`. Enable every available controller on each ancestor of the
/// container's cgroup (as runc and libcgroups do). Best effort: a controller that cannot be
/// enabled shows up later as the named field whose files are missing.
pub(super) fn enable_controllers(path: &Path) {
    let mut dir = PathBuf::from(CGROUP_ROOT);
    let parts: Vec<_> = rel(path).components().collect();
    for (i, part) in parts.iter().enumerate() {
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let (available, enabled) = (read("cgroup.controllers"), read("cgroup.subtree_control"));
        let enabled: Vec<&str> = enabled.split_whitespace().collect();
        let missing: Vec<String> = available
            .split_whitespace()
            .filter(|c| !enabled.contains(c))
            .map(|c| format!("+{c}"))
            .collect();
        if !missing.is_empty() {
            let control = dir.join("cgroup.subtree_control");
            if std::fs::write(&control, missing.join(" ")).is_err() {
                for m in &missing {
                    let _ = std::fs::write(&control, m);
                }
            }
        }
        if i + 1 < parts.len() {
            dir.push(part);
        }
    }
}

/// Remove the container's directory in one hierarchy with everything below it, relative to
/// the fd of /sys/fs/cgroup (or of / for a hierarchy mounted elsewhere).
pub(super) fn remove_dir(root: BorrowedFd<'_>, dir: &Path) -> std::io::Result<()> {
    match at::below_root(dir) {
        Some(rel) if !rel.as_os_str().is_empty() => at::remove_tree(root, rel, dir),
        _ => {
            let slash = crate::rootfs::resolve::open_host("/", libc::O_PATH | libc::O_DIRECTORY)?;
            let rel = dir.strip_prefix("/").unwrap_or(dir);
            at::remove_tree(slash.as_fd(), rel, dir)
        }
    }
}
