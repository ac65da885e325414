//! A thin adapter over libcgroups: which cgroup a container gets, putting the init into it,
//! applying `linux.resources` one field group at a time (so an error names the field), and
//! the operations later commands need (pids, freeze, remove). libcgroups picks v1, v2 or
//! systemd at run time from the host's hierarchy.
//!
//! Path decision: `linux.cgroupsPath` absent → `/vsrun/<id>`, so vsrun's containers are easy
//! to find and never collide with another runtime's. Relative paths are taken below the
//! hierarchy roots, absolute ones as given. With `--systemd-cgroup` the path must be
//! `slice:prefix:name` (runc's format).

use crate::error::{config, state, Error, Result};
use libcgroups::common::{
    create_cgroup_manager, AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt,
    FreezerState,
};
use oci_spec::runtime::{LinuxResources, Spec};
use std::path::PathBuf;

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

/// Parent side, after the clone and before the init is released: put the init into its cgroup
/// and apply the resources. Nothing in the container has run yet.
pub fn enter(plan: &Plan, id: &str, pid: i32) -> Result<()> {
    let m = manager(&plan.path, plan.systemd, id)?;
    m.add_task(nix::unistd::Pid::from_raw(pid))
        .map_err(|e| Error::Os {
            step: format!(
                "put the init into cgroup {} (linux.cgroupsPath)",
                plan.path.display()
            ),
            source: std::io::Error::other(e.to_string()),
        })?;
    if let Some(r) = &plan.resources {
        apply_resources(&m, r)?;
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

/// Remove the cgroup (libcgroups SIGKILLs what is left in it first). Idempotent.
pub fn remove(path: &std::path::Path, systemd: bool, id: &str) -> Result<()> {
    let m = manager(path, systemd, id)?;
    m.remove()
        .map_err(|e| state(format!("remove cgroup {}: {e}", path.display())))
}
