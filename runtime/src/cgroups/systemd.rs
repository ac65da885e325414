//! The systemd driver (`--systemd-cgroup`): runc's `slice:prefix:name` path and libcgroups'
//! D-Bus manager, pure v2 only.

use super::layout::is_unified;
use super::values::normalize;
use super::CGROUP_ROOT;
use crate::error::{config, Result};
use libcgroups::common::{AnyCgroupManager, CgroupManager, ControllerOpt};
use oci_spec::runtime::LinuxResources;
use std::path::Path;

pub(super) fn check_systemd(path: &Path) -> Result<()> {
    if path.to_string_lossy().split(':').count() != 3 {
        return Err(config(
            "linux.cgroupsPath",
            format!(
                "{}: with --systemd-cgroup it must be slice:prefix:name",
                path.display()
            ),
        ));
    }
    if !Path::new("/run/systemd/system").is_dir() {
        return Err(config(
            "--systemd-cgroup",
            "systemd is not running on this host (no /run/systemd/system): \
             leave out --systemd-cgroup to use the cgroupfs driver",
        ));
    }
    if !is_unified(Path::new(CGROUP_ROOT)) {
        return Err(config(
            "--systemd-cgroup",
            "the systemd driver (libcgroups) needs a pure cgroup v2 host; this host is cgroup v1",
        ));
    }
    Ok(())
}

/// systemd driver: libcgroups' manager, one field group per `apply` so an error names it.
pub(super) fn apply_systemd(m: &AnyCgroupManager, r: &LinuxResources) -> Result<()> {
    let n = normalize(r);
    let mut groups: Vec<(&str, LinuxResources)> = Vec::new();
    let mut one = |f: &'static str, g: LinuxResources| {
        if g != LinuxResources::default() {
            groups.push((f, g));
        }
    };
    let mut g = LinuxResources::default();
    g.set_memory(*n.memory());
    one("linux.resources.memory", g);
    let mut g = LinuxResources::default();
    g.set_cpu(n.cpu().clone());
    one("linux.resources.cpu", g);
    let mut g = LinuxResources::default();
    g.set_pids(*n.pids());
    one("linux.resources.pids", g);
    let mut g = LinuxResources::default();
    g.set_block_io(n.block_io().clone());
    one("linux.resources.blockIO", g);
    let mut g = LinuxResources::default();
    g.set_unified(n.unified().clone());
    one("linux.resources.unified", g);
    for (f, absent) in [
        (
            "linux.resources.hugepageLimits",
            n.hugepage_limits().is_none(),
        ),
        ("linux.resources.network", n.network().is_none()),
        ("linux.resources.rdma", n.rdma().is_none()),
        (
            "linux.resources.devices",
            r.devices().as_ref().is_none_or(|d| d.is_empty()),
        ),
    ] {
        if !absent {
            return Err(config(
                f,
                "not supported with --systemd-cgroup (libcgroups' systemd driver)",
            ));
        }
    }
    let disable_oom = n
        .memory()
        .as_ref()
        .and_then(|m| m.disable_oom_killer())
        .unwrap_or(false);
    for (f, g) in groups {
        let opt = ControllerOpt {
            resources: &g,
            disable_oom_killer: disable_oom,
            oom_score_adj: None,
            freezer_state: None,
        };
        m.apply(&opt).map_err(|e| config(f, e.to_string()))?;
    }
    Ok(())
}
