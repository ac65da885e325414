//! A thin adapter over libcgroups: which cgroup a container gets, putting the init into it,
//! applying `linux.resources` one field group at a time (so an error names the field), and
//! the operations later commands need (pids, freeze, remove). libcgroups picks v1, v2 or
//! systemd at run time from the host's hierarchy.
//!
//! Path decision: `linux.cgroupsPath` absent → `/vsrun/<id>`, so vsrun's containers are easy
//! to find and never collide with another runtime's. Relative paths are taken below the
//! hierarchy roots, absolute ones as given. With `--systemd-cgroup` the path must be
//! `slice:prefix:name` (runc's format).

use crate::error::{config, state, Error, Result, StepExt};
use libcgroups::common::{
    create_cgroup_manager, AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt,
    FreezerState,
};
use oci_spec::runtime::{LinuxResources, Spec};
use std::path::{Path, PathBuf};

/// Decided before the clone.
#[derive(Clone, Debug)]
pub struct Plan {
    pub path: PathBuf,
    pub systemd: bool,
    pub resources: Option<LinuxResources>,
}

pub fn plan(spec: &Spec, id: &str, systemd: bool) -> Result<Plan> {
    let linux = spec.linux().as_ref();
    let path = match linux.and_then(|l| l.cgroups_path().clone()) {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ if systemd => PathBuf::from(format!("system.slice:vsrun:{id}")),
        _ => PathBuf::from(format!("/vsrun/{id}")),
    };
    if systemd && path.to_string_lossy().split(':').count() != 3 {
        return Err(config(
            "linux.cgroupsPath",
            format!(
                "{}: with --systemd-cgroup it must be slice:prefix:name",
                path.display()
            ),
        ));
    }
    if !systemd
        && path
            .components()
            .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(config(
            "linux.cgroupsPath",
            format!("{}: must not contain ..", path.display()),
        ));
    }
    Ok(Plan {
        path,
        systemd,
        resources: linux.and_then(|l| l.resources().clone()),
    })
}

fn manager(path: &std::path::Path, systemd: bool, id: &str) -> Result<AnyCgroupManager> {
    create_cgroup_manager(CgroupConfig {
        cgroup_path: path.to_path_buf(),
        systemd_cgroup: systemd,
        container_name: id.to_string(),
    })
    .map_err(|e| Error::Os {
        step: format!("cgroup manager for {}", path.display()),
        source: std::io::Error::other(e.to_string()),
    })
}

/// How the init gets into its cgroup, decided and made ready before the clone.
///
/// Moving a process by writing its pid to `cgroup.procs` takes the kernel's cgroup-wide
/// threadgroup rwsem for writing, and the first such write costs an RCU grace period: 13 ms of
/// a `run` when measured here (strace -r). Two ways around it, both used:
/// - pure v2: clone3(CLONE_INTO_CGROUP) with the directory's fd: born in the cgroup;
/// - v1: the init moves *itself* by writing "0" to each hierarchy's `tasks` file; a thread
///   moving itself needs no global lock (kernel: cgroup_procs_write_start). It does so as its
///   first step, while it still has host root's credentials.
#[derive(Default)]
pub struct Joining {
    /// v1 `tasks` files the init writes "0" to.
    pub tasks: Vec<PathBuf>,
    /// The v2 directory for CLONE_INTO_CGROUP.
    pub v2_dir: Option<std::os::fd::OwnedFd>,
}

/// Parent, before the clone: make the directories (with cpuset values on v1) and say how to
/// join them. systemd-managed cgroups are joined by the parent after the clone (`finish`).
pub fn prepare(plan: &Plan) -> Result<Joining> {
    let step = |what: &str| format!("{what} (linux.cgroupsPath {})", plan.path.display());
    let mut j = Joining::default();
    if plan.systemd {
        return Ok(j);
    }
    let unified = is_unified(Path::new(CGROUP_ROOT));
    for dir in hierarchy_dirs(&plan.path).step(|| step("find cgroup hierarchies"))? {
        make_dir(&dir).step(|| format!("create cgroup {}", dir.display()))?;
        if unified {
            let fd = std::fs::File::open(&dir).step(|| format!("open cgroup {}", dir.display()))?;
            j.v2_dir = Some(fd.into());
        } else {
            j.tasks.push(dir.join("tasks"));
        }
    }
    Ok(j)
}

/// Init, first step: move this (single-threaded) process into its v1 cgroups.
pub fn join_self(j: &Joining) -> Result<()> {
    for t in &j.tasks {
        std::fs::write(t, "0")
            .step(|| format!("join cgroup {}", t.parent().unwrap_or(t).display()))?;
    }
    Ok(())
}

/// Parent, after the clone and before the init is released: systemd placement and the
/// resources (applied to the directory; membership does not matter for writing limits).
pub fn finish(plan: &Plan, id: &str, pid: i32) -> Result<()> {
    if plan.systemd {
        let m = manager(&plan.path, true, id)?;
        m.add_task(nix::unistd::Pid::from_raw(pid))
            .map_err(|e| Error::Os {
                step: format!(
                    "put the init into its systemd scope (linux.cgroupsPath {})",
                    plan.path.display()
                ),
                source: std::io::Error::other(e.to_string()),
            })?;
        if let Some(r) = &plan.resources {
            apply_resources(&m, r)?;
        }
        return Ok(());
    }
    let Some(r) = plan
        .resources
        .as_ref()
        .filter(|r| **r != LinuxResources::default())
    else {
        return Ok(());
    };
    // The devices list is in every engine config and in `runc spec`'s; on v1 it is a few
    // writes, while building libcgroups' manager for it costs ~700 syscalls (measured).
    let mut rest = r.clone();
    if r.devices().is_some() && apply_v1_devices(plan, r)? {
        rest.set_devices(None);
    }
    if rest != LinuxResources::default() {
        apply_resources(&manager(&plan.path, false, id)?, &rest)?;
    }
    Ok(())
}

/// v1 devices cgroup: the config's rules in order, then the default allowed devices (the same
/// list libcgroups' manager writes). Returns false when there is no v1 devices hierarchy.
fn apply_v1_devices(plan: &Plan, r: &LinuxResources) -> Result<bool> {
    let rel = plan.path.strip_prefix("/").unwrap_or(&plan.path);
    let dir = Path::new(CGROUP_ROOT).join("devices").join(rel);
    if is_unified(Path::new(CGROUP_ROOT)) || !dir.join("devices.allow").exists() {
        return Ok(false);
    }
    for (i, d) in r.devices().iter().flatten().enumerate() {
        let file = dir.join(if d.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        });
        std::fs::write(&file, d.to_string())
            .map_err(|e| config(format!("linux.resources.devices[{i}]"), format!("{d}: {e}")))?;
    }
    for rule in V1_DEFAULT_ALLOWED_DEVICES {
        std::fs::write(dir.join("devices.allow"), rule)
            .step(|| format!("allow default device {rule:?} (linux.resources.devices)"))?;
    }
    Ok(true)
}

/// What runc (and libcgroups, which keeps the list private) always allows after the config's
/// rules: the default device nodes, mknod of anything, /dev/console, ptys, ptmx, tun.
const V1_DEFAULT_ALLOWED_DEVICES: &[&str] = &[
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:9 rwm",
    "c 1:8 rwm",
    "c *:* m",
    "b *:* m",
    "c 5:1 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
];

/// The container's directory in every mounted hierarchy: one on pure v2; on v1 one per
/// controller mount (named hierarchies such as name=systemd are left to their managers).
fn hierarchy_dirs(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    if is_unified(Path::new(CGROUP_ROOT)) {
        return Ok(vec![Path::new(CGROUP_ROOT).join(rel)]);
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mut dirs = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split(' ');
        if post.next() != Some("cgroup") {
            continue;
        }
        let super_opts = post.nth(1).unwrap_or_default();
        let mount_point = pre.split(' ').nth(4).unwrap_or_default();
        let named_only = super_opts.split(',').all(|o| {
            o.starts_with("name=")
                || matches!(o, "rw" | "ro" | "xattr" | "noprefix" | "clone_children")
        });
        if !named_only && mount_point.starts_with(CGROUP_ROOT) {
            dirs.push(Path::new(mount_point).join(rel));
        }
    }
    dirs.sort();
    dirs.dedup();
    Ok(dirs)
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

fn is_unified(p: &Path) -> bool {
    nix::sys::statfs::statfs(p)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

fn make_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if dir.join("cpuset.cpus").exists() {
        inherit_cpuset(dir)?;
    }
    Ok(())
}

/// A new v1 cpuset starts with no cpus and mems, and a task cannot join it until they are set:
/// copy them down from the nearest ancestor that has them.
fn inherit_cpuset(dir: &Path) -> std::io::Result<()> {
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

/// Each group is applied on its own so that a failure names its field.
pub fn apply_resources(m: &AnyCgroupManager, r: &LinuxResources) -> Result<()> {
    let mut groups: Vec<(&str, LinuxResources)> = Vec::new();
    let mut one = |field: &'static str, f: &dyn Fn(&mut LinuxResources)| {
        let mut g = LinuxResources::default();
        f(&mut g);
        if g != LinuxResources::default() {
            groups.push((field, g));
        }
    };
    one("linux.resources.memory", &|g| {
        g.set_memory(r.memory().clone());
    });
    one("linux.resources.cpu", &|g| {
        g.set_cpu(r.cpu().clone());
    });
    one("linux.resources.pids", &|g| {
        g.set_pids(*r.pids());
    });
    one("linux.resources.blockIO", &|g| {
        g.set_block_io(r.block_io().clone());
    });
    one("linux.resources.hugepageLimits", &|g| {
        g.set_hugepage_limits(r.hugepage_limits().clone());
    });
    one("linux.resources.network", &|g| {
        g.set_network(r.network().clone());
    });
    one("linux.resources.devices", &|g| {
        g.set_devices(r.devices().clone());
    });
    one("linux.resources.rdma", &|g| {
        g.set_rdma(r.rdma().clone());
    });
    one("linux.resources.unified", &|g| {
        g.set_unified(r.unified().clone());
    });
    let disable_oom = r
        .memory()
        .as_ref()
        .and_then(|m| m.disable_oom_killer())
        .unwrap_or(false);
    for (field, g) in groups {
        let opt = ControllerOpt {
            resources: &g,
            disable_oom_killer: disable_oom,
            oom_score_adj: None,
            freezer_state: None,
        };
        m.apply(&opt).map_err(|e| config(field, e.to_string()))?;
    }
    Ok(())
}

/// The pids in the container's cgroup.
pub fn pids(path: &std::path::Path, systemd: bool, id: &str) -> Result<Vec<i32>> {
    let m = manager(path, systemd, id)?;
    m.get_all_pids()
        .map(|v| v.into_iter().map(|p| p.as_raw()).collect())
        .map_err(|e| state(format!("read pids of cgroup {}: {e}", path.display())))
}

pub fn freeze(path: &std::path::Path, systemd: bool, id: &str, frozen: bool) -> Result<()> {
    let m = manager(path, systemd, id)?;
    let st = if frozen {
        FreezerState::Frozen
    } else {
        FreezerState::Thawed
    };
    m.freeze(st)
        .map_err(|e| state(format!("freezer of cgroup {}: {e}", path.display())))
}

/// Remove the cgroup, SIGKILLing whatever is still in it. Idempotent. Hand-written for the
/// same reason as `enter`: it runs at the end of every `run` and `delete`.
pub fn remove(path: &Path, systemd: bool, id: &str) -> Result<()> {
    if systemd {
        let m = manager(path, true, id)?;
        return m
            .remove()
            .map_err(|e| state(format!("remove cgroup {}: {e}", path.display())));
    }
    for dir in hierarchy_dirs(path).step(|| "find cgroup hierarchies".into())? {
        remove_dir(&dir).step(|| format!("remove cgroup {}", dir.display()))?;
    }
    Ok(())
}

fn remove_dir(dir: &Path) -> std::io::Result<()> {
    for attempt in 0..200 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            // Busy: members are still exiting, or something outlived its init. Kill, retry.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 199 => {
                let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::SIGKILL,
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether the container's cgroup is frozen (v1 freezer.state, v2 cgroup.freeze); read on
/// every status query, so it is one small file read.
pub fn is_frozen(path: &Path, systemd: bool) -> bool {
    if systemd || path.as_os_str().is_empty() {
        return false;
    }
    let rel = path.strip_prefix("/").unwrap_or(path);
    let root = Path::new(CGROUP_ROOT);
    if is_unified(root) {
        return std::fs::read_to_string(root.join(rel).join("cgroup.freeze"))
            .is_ok_and(|s| s.trim() == "1");
    }
    std::fs::read_to_string(root.join("freezer").join(rel).join("freezer.state"))
        .is_ok_and(|s| s.trim() == "FROZEN")
}

/// Apply `linux.resources` to a running container (`update`).
pub fn update(path: &Path, systemd: bool, id: &str, r: &LinuxResources) -> Result<()> {
    apply_resources(&manager(path, systemd, id)?, r)
}

/// The stats runc's `events` reports, from libcgroups.
pub fn stats(path: &Path, systemd: bool, id: &str) -> Result<libcgroups::stats::Stats> {
    manager(path, systemd, id)?
        .stats()
        .map_err(|e| state(format!("read stats of cgroup {}: {e}", path.display())))
}
