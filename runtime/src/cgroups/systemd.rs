//! The systemd driver (`--systemd-cgroup`): runc's `slice:prefix:name` path and libcgroups'
//! D-Bus manager, pure v2 only.
//!
//! As with runc, systemd gets what it has unit properties for (memory, CPU, cpuset, pids, IO
//! throttles) and the scope's own files get the rest, which a scope with `Delegate=yes` leaves
//! to its owner: huge page limits, rdma, the blkio weights and unified keys systemd has no
//! property for go through the v2 writes of the cgroupfs driver, and the device allowlist is vsrun's own v2 device program.

use super::apply::apply_rest;
use super::cpu::check_cpuset_within_host;
use super::devices::apply_devices;
use super::host::{check_host, refuse_for_layout};
use super::join::enable_controllers;
use super::layout::{is_unified, layout, manager};
use super::paths::rel;
use super::values::normalize;
use super::{Plan, CGROUP_ROOT};
use crate::error::{config, Error, Result};
use libcgroups::common::{AnyCgroupManager, CgroupManager, ControllerOpt};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxResources, Spec};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Unified keys libcgroups' systemd driver turns into unit properties; others are files.
/// Not cpuset.cpus/mems: libcgroups sends AllowedCPUs as an array of u64 where systemd wants
/// bytes, which systemd refuses ("Unexpected message contents").
const UNIFIED_AS_PROPERTIES: &[&str] = &[
    "cpu.max",
    "memory.min",
    "memory.low",
    "memory.high",
    "memory.max",
    "pids.max",
];

/// The scope's cgroup (below /sys/fs/cgroup) for `slice:prefix:name`, as systemd's system
/// instance places it: `a-b.slice` nests as `/a.slice/a-b.slice`, the unit is
/// `prefix-name.scope` (or `name` when that is a slice). libcgroups' own rule, which named the
/// unit; the path itself stays private to its manager.
pub fn scope_path(path: &Path) -> PathBuf {
    let s = path.to_string_lossy();
    let mut parts = s.splitn(3, ':');
    let slice = parts
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("system.slice");
    let (prefix, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut dir = PathBuf::from("/");
    if slice != "-.slice" {
        let mut acc = String::new();
        for part in slice.trim_end_matches(".slice").split('-') {
            if !acc.is_empty() {
                acc.push('-');
            }
            acc.push_str(part);
            dir.push(format!("{acc}.slice"));
        }
    }
    if name.ends_with(".slice") {
        dir.join(name)
    } else {
        dir.join(format!("{prefix}-{name}.scope"))
    }
}

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

/// runc hands `org.systemd.property.*` annotations to StartTransientUnit; libcgroups starts
/// the scope with a fixed property list, so they are not applied. Accepted with a warning, not
/// refused: podman sends TimeoutStopUSec with every container (README, "Differences from runc").
pub(super) fn note_property_annotations(spec: &Spec) {
    for key in spec.annotations().iter().flat_map(|a| a.keys()) {
        if key.starts_with("org.systemd.property.") {
            crate::log::warn(&format!(
                "annotations.\"{key}\": not applied (the systemd driver starts scopes with a fixed property list)"
            ));
        }
    }
}

/// Parent, after the clone: start the scope with the init in it, then the resources and the
/// device allowlist (applied even without `devices`, as on cgroupfs).
pub(super) fn finish(plan: &Plan, id: &str, pid: i32) -> Result<()> {
    let m = manager(&plan.path, true, id)?;
    m.add_task(nix::unistd::Pid::from_raw(pid))
        .map_err(|e| Error::Os {
            step: format!(
                "put the init into its systemd scope (linux.cgroupsPath {})",
                plan.path.display()
            ),
            source: std::io::Error::other(e.to_string()),
        })?;
    // As runc's systemd driver: every controller down to the scope, not only the three
    // libcgroups enables (cpu, memory, pids), so cpuset, io and hugetlb files exist there.
    enable_controllers(&scope_path(&plan.path));
    if let Some(r) = &plan.resources {
        apply_systemd(&m, &plan.path, r, true)?;
    }
    Ok(())
}

/// `update`: only the fields given; a given `devices` list replaces the allowlist.
pub(super) fn update(path: &Path, id: &str, r: &LinuxResources) -> Result<()> {
    apply_systemd(&manager(path, true, id)?, path, r, false)
}

/// Unit properties through libcgroups, one field group per `apply` so an error names it; then
/// the scope's files for what systemd has no property for.
fn apply_systemd(m: &AnyCgroupManager, path: &Path, r: &LinuxResources, new: bool) -> Result<()> {
    let scope = scope_path(path);
    let mut n = normalize(r);
    let layout = layout()?;
    refuse_for_layout(&n, layout)?;
    check_cpuset_within_host(&n, layout)?;
    let files = take_file_fields(&mut n);
    check_host(&files_without_properties(&files), layout, &scope)?;
    if !new {
        if let Some(cpu) = n.cpu_mut() {
            keep_cpu_max(cpu, &Path::new(CGROUP_ROOT).join(rel(&scope)));
        }
    }
    set_properties(m, &n)?;
    apply_rest(layout, &scope, &files, false)?;
    if new || r.devices().is_some() {
        apply_devices(layout, &scope, r.devices().as_deref())?;
    }
    Ok(())
}

/// One `apply` per field group, so that systemd's refusal names the field: what each group
/// takes from the resources.
type Group = (&'static str, fn(&LinuxResources, &mut LinuxResources));
const PROPERTY_GROUPS: [Group; 5] = [
    ("linux.resources.memory", |n, g| {
        g.set_memory(*n.memory());
    }),
    ("linux.resources.cpu", |n, g| {
        g.set_cpu(n.cpu().clone());
    }),
    ("linux.resources.pids", |n, g| {
        g.set_pids(*n.pids());
    }),
    ("linux.resources.blockIO", |n, g| {
        g.set_block_io(n.block_io().clone());
    }),
    ("linux.resources.unified", |n, g| {
        g.set_unified(n.unified().clone());
    }),
];

fn set_properties(m: &AnyCgroupManager, n: &LinuxResources) -> Result<()> {
    let disable_oom = n
        .memory()
        .as_ref()
        .and_then(|m| m.disable_oom_killer())
        .unwrap_or(false);
    for (f, take) in PROPERTY_GROUPS {
        let mut g = LinuxResources::default();
        take(n, &mut g);
        if g == LinuxResources::default() {
            continue;
        }
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

/// The file fields no unit property ever covered (huge pages, rdma): their controller must
/// be enabled down to the scope, which `check_host` says by field name. The others were
/// properties once and keep the behaviour they had.
fn files_without_properties(files: &LinuxResources) -> LinuxResources {
    let mut only = LinuxResources::default();
    only.set_hugepage_limits(files.hugepage_limits().clone());
    only.set_rdma(files.rdma().clone());
    only
}

/// Moves out of `n` what libcgroups' systemd driver drops without a word (it has no property
/// for a blkio weight, and logs and skips unknown unified keys) or sends in a shape systemd
/// refuses (AllowedCPUs): those are written to the scope's files, as runc does for the keys
/// systemd lacks.
pub(super) fn take_file_fields(n: &mut LinuxResources) -> LinuxResources {
    let mut files = LinuxResources::default();
    files.set_hugepage_limits(n.hugepage_limits_mut().take());
    files.set_rdma(n.rdma_mut().take());
    if let Some(c) = n.cpu_mut() {
        if c.cpus().is_some() || c.mems().is_some() {
            let mut set = LinuxCpu::default();
            set.set_cpus(c.cpus().clone());
            set.set_mems(c.mems().clone());
            files.set_cpu(Some(set));
            c.set_cpus(None);
            c.set_mems(None);
        }
        if *c == LinuxCpu::default() {
            n.set_cpu(None);
        }
    }
    if let Some(b) = n.block_io_mut() {
        let mut w = LinuxBlockIo::default();
        w.set_weight(b.weight());
        w.set_leaf_weight(b.leaf_weight());
        w.set_weight_device(b.weight_device().clone());
        b.set_weight(None);
        b.set_leaf_weight(None);
        b.set_weight_device(None);
        if w != LinuxBlockIo::default() {
            files.set_block_io(Some(w));
        }
    }
    if let Some(u) = n.unified_mut() {
        let (props, own): (HashMap<_, _>, HashMap<_, _>) = u
            .drain()
            .partition(|(k, _)| UNIFIED_AS_PROPERTIES.contains(&k.as_str()));
        *u = props;
        if !own.is_empty() {
            files.set_unified(Some(own));
        }
    }
    files
}

/// libcgroups sets CPUQuotaPerSecUSec whenever any CPU field is given, to "no limit" when the
/// quota is not: an `update --cpu-share` alone would lift the container's quota. Keep the one
/// the scope has (runc changes only what the update names).
fn keep_cpu_max(cpu: &mut LinuxCpu, dir: &Path) {
    if cpu.quota().is_some() {
        return;
    }
    let Ok(text) = std::fs::read_to_string(dir.join("cpu.max")) else {
        return;
    };
    let mut f = text.split_whitespace();
    if let Some(q) = f.next().and_then(|q| q.parse::<i64>().ok()) {
        cpu.set_quota(Some(q));
        if cpu.period().is_none() {
            cpu.set_period(f.next().and_then(|p| p.parse::<u64>().ok()));
        }
    }
}
