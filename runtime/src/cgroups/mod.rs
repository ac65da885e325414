//! One cgroup per container: where it is, how the init gets into it, `linux.resources`, and
//! the operations later commands need (pids, freeze, remove).
//!
//! A thin adapter over libcgroups (v1, v2 or systemd, chosen at run time from the host's
//! hierarchy), with three hand-written parts:
//! - the hot path: making the directories and joining them (`prepare`, `join_self`) and
//!   removing them (`remove`); libcgroups' manager re-reads /proc per controller;
//! - the device allowlist: written to v1 `devices.allow`/`devices.deny`, or compiled into a
//!   `BPF_PROG_TYPE_CGROUP_DEVICE` program on v2 (libcgroups' `cgroupsv2_devices` feature
//!   would pull in libbpf-sys, a C build and libelf, and re-attaches its program on every
//!   `apply`, so an `update` of any other field would reset the allowlist);
//! - the fields libcgroups 0.7 skips or gets wrong: v1 `cpu.burst` alone, v1 `weightDevice`
//!   and leaf weights, `network.priorities` (it writes only the first), `rdma`, v2
//!   `swap == limit` (no swap: it writes nothing), v2 `checkBeforeUpdate`.
//!
//! Every other field goes through libcgroups' `apply` once, after vsrun has checked each set
//! field against what this kernel and hierarchy offer; a field that cannot be applied is an
//! error naming it (`linux.resources.memory.swap: swap accounting is off ...`), never skipped.
//! Values that mean "unset" in runc (0 for limits, shares, weights; "" for cpusets; false for
//! disableOOMKiller) are unset here too, so docker's `{"cpu": {"shares": 0}}` never fails.
//!
//! Where things are: each `linux.resources` member has the file named after it (`pids.rs`
//! holds everything about `linux.resources.pids`; likewise memory, cpu, blkio, hugetlb,
//! network, rdma, unified), with its checks, its "unset" values, its rows of the field table
//! (`fields.rs`: field → controller and files, and back) and the writes vsrun makes itself.
//! `devices.rs` and `devfilter.rs` are the allowlist and the v2 device program.
//!
//! Path decision: `linux.cgroupsPath` absent → `/vsrun/<id>` below every hierarchy root (each
//! v1 controller mount, or the v2 mount): vsrun's containers are easy to find and never
//! collide with another runtime's (runc's default is `/<id>`, crun's `/<id>` too; docker,
//! podman and containerd always send a path). A relative path is taken below the hierarchy
//! roots like an absolute one; `..` and the root cgroup itself are refused. A new container
//! needs a cgroup of its own: an existing one that has processes is refused, so `remove` (which
//! kills what is left) can never hit a cgroup vsrun did not make for this container. With
//! `--systemd-cgroup` the path is runc's `slice:prefix:name` (default
//! `system.slice:vsrun:<id>`); libcgroups drives systemd over D-Bus on pure v2 only, and
//! systemd must be PID 1.

mod apply;
mod at;
mod delegated;
mod devfilter;
mod devices;
mod fields;
pub mod hierarchies;
mod host;
mod join;
mod layout;
mod paths;
mod rollback;
mod stats;
mod systemd;
#[cfg(test)]
mod tests;
mod values;

// One file per `linux.resources` member: its checks, "unset" values, rows of the field
// table and the writes vsrun makes itself.
mod blkio;
mod cpu;
mod hugetlb;
mod memory;
mod network;
mod pids;
mod rdma;
mod unified;

pub use join::Joining;
pub use paths::{below, default_path, SubCgroups};

use apply::apply_rest;
use cpu::check_cpuset_within_host;
use devices::{apply_devices, restore_console_rule, v1_devices_list};
use host::{check_host, refuse_for_layout};
use join::{
    check_cpuset, enable_controllers, has_processes, make_dir, may_be_frozen, may_join,
    refuse_frozen, refuse_unwritable, remove_dir,
};
use layout::{is_unified, layout, manager};
use memory::drop_kernel_memory_without_files;
use paths::{check_path, rel};
pub use stats::{cpuset, stats};
use systemd::check_systemd;
pub use systemd::scope_path;
use values::{normalize, validate};

use crate::error::{config, state, Result, StepExt};
use libcgroups::common::{CgroupManager, FreezerState};
use oci_spec::runtime::{LinuxResources, Spec};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Decided before the clone.
#[derive(Clone, Debug)]
pub struct Plan {
    pub path: PathBuf,
    pub systemd: bool,
    /// `Some` for a new container: its `linux.resources` (default when absent; the device
    /// allowlist applies even then, as with runc). `None` joins the existing cgroup as it is,
    /// which is what `exec` does.
    pub resources: Option<LinuxResources>,
    /// `exec --cgroup`: existing sub-cgroups of the container's to join instead.
    pub sub: SubCgroups,
    /// Rootless mode (`rootless.rs`): a directory the user may not create or join is skipped
    /// unless a `linux.resources` field needs it, and the device allowlist is not written.
    pub rootless: bool,
}

/// Everything about the cgroup that can be decided or refused before anything exists: the
/// path, the driver, every resource value, and the fields this hierarchy cannot have at all.
pub fn plan(spec: &Spec, id: &str, systemd: bool, rootless: bool) -> Result<Plan> {
    let linux = spec.linux().as_ref();
    let path = match linux.and_then(|l| l.cgroups_path().clone()) {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ if systemd => PathBuf::from(format!("system.slice:vsrun:{id}")),
        _ if rootless && layout()?.is_v2() => {
            delegated::default_path_v2(id).unwrap_or_else(|| default_path(id))
        }
        _ => default_path(id),
    };
    let mut resources = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    if !systemd {
        drop_kernel_memory_without_files(&mut resources, layout()?);
    }
    if systemd {
        check_systemd(&path)?;
        systemd::note_property_annotations(spec);
    } else {
        check_path(&path)?;
    }
    validate(&resources)?;
    refuse_for_layout(&normalize(&resources), layout()?)?;
    Ok(Plan {
        path,
        systemd,
        resources: Some(resources),
        sub: SubCgroups::default(),
        rootless,
    })
}

/// Parent, before the clone: make the directories (cpuset values on v1, controllers enabled
/// down the path on v2), check every resource field against the files the kernel offers, and
/// say how to join. On error the directories made here are gone again. systemd-managed
/// cgroups are joined by the parent after the clone (`finish`).
pub fn prepare(plan: &Plan) -> Result<Joining> {
    let mut j = Joining::default();
    if plan.systemd {
        return Ok(j);
    }
    let layout = layout()?;
    let (v1_dirs, v2_dir) = if plan.sub.is_empty() {
        layout.member_dirs(&plan.path)
    } else {
        layout.sub_dirs(&plan.path, &plan.sub)?
    };
    let dirs: Vec<PathBuf> = v1_dirs.iter().cloned().chain(v2_dir.clone()).collect();
    let mut made = Vec::new();
    let mut skipped = Vec::new();
    let made_all = (|| -> Result<()> {
        let root = at::open_root().step(|| format!("open {CGROUP_ROOT}"))?;
        for dir in &dirs {
            let v1 = Some(dir) != v2_dir.as_ref();
            if plan.rootless && !may_join(dir, v1) {
                skipped.push(dir.clone());
                continue;
            }
            let fd = open_member(plan, layout, root.as_fd(), dir, v1, &mut made)?;
            if v1 {
                let tasks = at::open_file(fd.as_fd(), "tasks")
                    .step(|| format!("open {}/tasks", dir.display()))?;
                j.tasks.get_mut().push((tasks, dir.clone()));
            } else {
                // The v2 directory's fd, for CLONE_INTO_CGROUP.
                j.v2_dir = Some(fd);
            }
        }
        if let Some(r) = &plan.resources {
            refuse_unwritable(&normalize(r), layout, &plan.path, &skipped)?;
            if layout.is_v2() && skipped.is_empty() {
                enable_controllers(&plan.path);
            }
            check_host(&normalize(r), layout, &plan.path)?;
        }
        Ok(())
    })();
    if let Err(e) = made_all {
        // The fds first: a create short of fds must not leave the directories it made.
        drop(j);
        for d in made.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
        return Err(e);
    }
    Ok(j)
}

/// One member directory, opened (and made, for a new container) relative to the fd of
/// /sys/fs/cgroup, after refusing one that already has processes or is frozen. The paths it
/// made go to `made`.
fn open_member(
    plan: &Plan,
    layout: &layout::Layout,
    root: BorrowedFd<'_>,
    dir: &PathBuf,
    v1: bool,
    made: &mut Vec<PathBuf>,
) -> Result<OwnedFd> {
    let new = plan.resources.is_some();
    let cpuset =
        v1 && (!plan.sub.is_empty() || layout.dir("cpuset", &plan.path).as_ref() == Some(dir));
    let fd = if plan.sub.is_empty() {
        let (fd, existed) = make_dir(root, dir, cpuset, made)?;
        if existed && new && has_processes(fd.as_fd()) {
            return Err(config(
                "linux.cgroupsPath",
                format!(
                    "{}: {} already has processes; a container needs a cgroup of its own",
                    plan.path.display(),
                    dir.display()
                ),
            ));
        }
        fd
    } else {
        match at::open_dir(root, dir) {
            Ok(fd) => {
                check_cpuset(fd.as_fd(), dir, cpuset)?;
                fd
            }
            // As with runc: exec joins an existing sub-cgroup, never makes one.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(config(
                    "--cgroup",
                    format!("{}: no such cgroup", dir.display()),
                ));
            }
            Err(e) => return Err(e).step(|| format!("open cgroup {}", dir.display())),
        }
    };
    if new && may_be_frozen(layout, plan, dir, (!v1).then_some(dir)) {
        refuse_frozen(&plan.path, dir, fd.as_fd())?;
    }
    Ok(fd)
}

/// Init, first step: move this (single-threaded) process into its v1 cgroups, through the
/// `tasks` files the parent opened; closed right after, before anything else runs.
pub fn join_self(j: &Joining) -> Result<()> {
    for (mut t, dir) in j.tasks.take() {
        t.write_all(b"0")
            .step(|| format!("join cgroup {}", dir.display()))?;
    }
    Ok(())
}

/// Parent, after the clone and before the init is released: systemd placement, the device
/// allowlist and the resources (applied to the directory; membership does not matter for
/// writing limits).
pub fn finish(plan: &Plan, id: &str, pid: i32) -> Result<()> {
    if plan.systemd {
        return systemd::finish(plan, id, pid);
    }
    let Some(r) = &plan.resources else {
        return Ok(());
    };
    let layout = layout()?;
    // After the rest: libcgroups' v1 manager rewrites its own default device list (which
    // allows /dev/console, unlike runc) whenever it applies anything.
    apply_rest(layout, &plan.path, &normalize(r), plan.rootless)?;
    if plan.rootless {
        // As runc: an unprivileged user can neither write devices.allow/deny nor attach a
        // device program, and mknod of a device is refused to it anyway.
        crate::log::debug("rootless: the cgroup device allowlist is not applied");
        return Ok(());
    }
    apply_devices(layout, &plan.path, r.devices().as_deref())
}

/// Apply `linux.resources` to a running container (`update`). Fields not given stay as they
/// are, the device allowlist included; a given `devices` list replaces the allowlist.
/// `rootless`: the container was made in rootless mode (`State::rootless`).
pub fn update(
    path: &Path,
    systemd: bool,
    id: &str,
    r: &LinuxResources,
    rootless: bool,
) -> Result<()> {
    validate(r)?;
    if systemd {
        return systemd::update(path, id, r);
    }
    let layout = layout()?;
    let mut r = r.clone();
    drop_kernel_memory_without_files(&mut r, layout);
    let r = &r;
    let n = normalize(r);
    refuse_for_layout(&n, layout)?;
    check_host(&n, layout, path)?;
    check_cpuset_within_host(r, layout)?;
    let before = v1_devices_list(layout, path);
    let snapshot = rollback::take(&n, layout, path);
    let applied = apply_rest(layout, path, &n, rootless).and_then(|()| match r.devices() {
        Some(d) => apply_devices(layout, path, Some(d)),
        None => restore_console_rule(layout, path, before.as_deref()),
    });
    if applied.is_err() {
        let stuck = rollback::restore(snapshot);
        if !stuck.is_empty() {
            crate::log::warn(&format!(
                "update failed and these cgroup files keep their new values: {stuck:?}"
            ));
        }
    }
    applied
}

/// The pids in the container's cgroup.
/// Whether the container has a cgroup directory at all (rootless mode may have skipped every
/// one: `prepare`). v1: the freezer's or else any controller's; v2: its one directory.
pub fn exists(path: &Path) -> bool {
    let Ok(layout) = layout() else { return true };
    if rel(path).as_os_str().is_empty() {
        return true;
    }
    layout
        .member_dirs(path)
        .0
        .iter()
        .chain(layout.member_dirs(path).1.iter())
        .any(|d| d.is_dir())
}

/// `rootless`: the container was made in rootless mode (`State::rootless`).
pub fn pids(path: &Path, systemd: bool, id: &str, rootless: bool) -> Result<Vec<i32>> {
    let layout = layout()?;
    if !systemd && delegated::applies(layout, path, rootless) {
        return delegated::pids(layout, path)
            .map_err(|e| state(format!("read pids of cgroup {}: {e}", path.display())));
    }
    let m = manager(path, systemd, id)?;
    m.get_all_pids()
        .map(|v| v.into_iter().map(|p| p.as_raw()).collect())
        .map_err(|e| state(format!("read pids of cgroup {}: {e}", path.display())))
}

pub fn freeze(path: &Path, systemd: bool, id: &str, frozen: bool) -> Result<()> {
    let m = manager(path, systemd, id)?;
    let st = if frozen {
        FreezerState::Frozen
    } else {
        FreezerState::Thawed
    };
    m.freeze(st)
        .map_err(|e| state(format!("freezer of cgroup {}: {e}", path.display())))
}

/// Remove the cgroup with every cgroup a container process made below it, SIGKILLing
/// whatever is still in them. Idempotent. Hand-written for the same reason as `prepare`: it
/// runs at the end of every `run` and `delete`. The root cgroup is never touched.
pub fn remove(path: &Path, systemd: bool, id: &str) -> Result<()> {
    if systemd {
        let m = manager(path, true, id)?;
        return m
            .remove()
            .map_err(|e| state(format!("remove cgroup {}: {e}", path.display())));
    }
    if rel(path).as_os_str().is_empty() {
        return Ok(());
    }
    let (v1, v2) = layout()?.member_dirs(path);
    let root = at::open_root().step(|| format!("open {CGROUP_ROOT}"))?;
    // Every hierarchy is tried (collected before the first error is taken), so one that
    // fails keeps none of the others; a retried delete finishes the job.
    let tried: Vec<Result<()>> = v1
        .into_iter()
        .chain(v2)
        .map(|dir| {
            remove_dir(root.as_fd(), &dir).step(|| format!("remove cgroup {}", dir.display()))
        })
        .collect();
    tried.into_iter().collect()
}

/// Whether the container's cgroup is frozen (v1 freezer.state, v2 cgroup.freeze); read on
/// every status query, so it is one small file read.
pub fn is_frozen(path: &Path, systemd: bool) -> bool {
    if path.as_os_str().is_empty() {
        return false;
    }
    let path = &fs_path(path, systemd);
    let root = Path::new(CGROUP_ROOT);
    if is_unified(root) {
        return std::fs::read_to_string(root.join(rel(path)).join("cgroup.freeze"))
            .is_ok_and(|s| s.trim() == "1");
    }
    std::fs::read_to_string(root.join("freezer").join(rel(path)).join("freezer.state"))
        .is_ok_and(|s| s.trim() == "FROZEN")
}

/// The container's cgroup as a path below the hierarchy roots: the systemd scope's own
/// directory with `--systemd-cgroup`, for the readers that go to the files directly.
pub fn fs_path(path: &Path, systemd: bool) -> PathBuf {
    if systemd {
        scope_path(path)
    } else {
        path.to_path_buf()
    }
}
