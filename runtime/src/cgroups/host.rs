//! `linux.resources` against the host: fields the hierarchy cannot have, and the controller
//! and files each set field needs.

use super::layout::Layout;
use super::paths::rel;
use super::values::{bad, field, throttles};
use super::CGROUP_ROOT;
use crate::error::{config, Result};
use oci_spec::runtime::LinuxResources;
use std::path::Path;

/// cpus and mems the host does not have are only found by the kernel, after earlier fields
/// were already written; checked first so that a bad update changes nothing (runc rolls back).
pub(super) fn check_cpuset_within_host(r: &LinuxResources, layout: &Layout) -> Result<()> {
    let Some(cpu) = r.cpu() else { return Ok(()) };
    let root = Path::new(CGROUP_ROOT);
    let host = |v1: &str, v2: &str| {
        let file = if layout.is_v2() {
            root.join(v2)
        } else {
            root.join("cpuset").join(v1)
        };
        std::fs::read_to_string(file).ok()
    };
    for (field, want, have) in [
        (
            "linux.resources.cpu.cpus",
            cpu.cpus(),
            host("cpuset.cpus", "cpuset.cpus.effective"),
        ),
        (
            "linux.resources.cpu.mems",
            cpu.mems(),
            host("cpuset.mems", "cpuset.mems.effective"),
        ),
    ] {
        let (Some(want), Some(have)) = (want.as_deref().filter(|w| !w.is_empty()), have) else {
            continue;
        };
        let have = crate::task::cpu_list(field, have.trim()).unwrap_or_default();
        for n in crate::task::cpu_list(field, want)? {
            if !have.contains(&n) {
                return Err(config(
                    field,
                    format!("{want:?}: {n} is not among the host's"),
                ));
            }
        }
    }
    Ok(())
}

/// Fields that need the other cgroup version whatever the kernel: refused before the clone.
pub(super) fn refuse_for_layout(n: &LinuxResources, layout: &Layout) -> Result<()> {
    let kind = layout.describe();
    if !layout.is_v2() {
        if n.unified().is_some() {
            return Err(bad(
                "unified",
                format!("needs cgroup v2, this host is {kind}"),
            ));
        }
        return Ok(());
    }
    let v1 = |f: &str, why: &str| {
        Err(bad(
            f,
            format!("needs cgroup v1 ({why}); this host is {kind}"),
        ))
    };
    if let Some(m) = n.memory() {
        if m.swappiness().is_some() {
            return v1("memory.swappiness", "v2 has no per-cgroup swappiness");
        }
        if m.disable_oom_killer().is_some() {
            return v1(
                "memory.disableOOMKiller",
                "v2 has no switch for the OOM killer",
            );
        }
    }
    if let Some(c) = n.cpu() {
        if c.realtime_runtime().is_some() {
            return v1(
                "cpu.realtimeRuntime",
                "v2 has no realtime bandwidth control",
            );
        }
        if c.realtime_period().is_some() {
            return v1("cpu.realtimePeriod", "v2 has no realtime bandwidth control");
        }
    }
    if let Some(b) = n.block_io() {
        if b.leaf_weight().is_some() {
            return v1("blockIO.leafWeight", "leaf weights are a CFQ feature");
        }
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            if d.leaf_weight().is_some() {
                return v1(
                    &format!("blockIO.weightDevice[{i}].leafWeight"),
                    "leaf weights are a CFQ feature",
                );
            }
        }
    }
    if let Some(net) = n.network() {
        if net.class_id().is_some() {
            return v1("network.classID", "net_cls; v2 classifies traffic with BPF");
        }
        if net.priorities().is_some() {
            return v1("network.priorities", "net_prio; v2 has no such controller");
        }
    }
    Ok(())
}

/// One set field, the controller and files it needs, and why they would be missing.
pub(super) struct Need {
    pub(super) field: String,
    pub(super) controller: &'static str,
    pub(super) files: Vec<String>,
    pub(super) missing: String,
}

pub(super) fn needs(n: &LinuxResources, v2: bool) -> Vec<Need> {
    let mut out = Vec::new();
    let mut need = |f: &str, controller: &'static str, v1: &[&str], v2f: &[&str], why: &str| {
        out.push(Need {
            field: field(f),
            controller,
            files: (if v2 { v2f } else { v1 })
                .iter()
                .map(|s| s.to_string())
                .collect(),
            missing: why.to_string(),
        })
    };
    if let Some(m) = n.memory() {
        let mem = "memory";
        if m.limit().is_some() {
            need(
                "memory.limit",
                mem,
                &["memory.limit_in_bytes"],
                &["memory.max"],
                "",
            );
        }
        if m.reservation().is_some() {
            need(
                "memory.reservation",
                mem,
                &["memory.soft_limit_in_bytes"],
                &["memory.low"],
                "",
            );
        }
        if m.swap().is_some() {
            need(
                "memory.swap",
                mem,
                &["memory.memsw.limit_in_bytes"],
                &["memory.swap.max"],
                if v2 {
                    "swap accounting is off (memory.swap.max missing)"
                } else {
                    "swap accounting is off (memory.memsw.* missing; boot with swapaccount=1)"
                },
            );
        }
        if m.swappiness().is_some() {
            need("memory.swappiness", mem, &["memory.swappiness"], &[], "");
        }
        if m.disable_oom_killer().is_some() {
            need(
                "memory.disableOOMKiller",
                mem,
                &["memory.oom_control"],
                &[],
                "",
            );
        }
        if m.check_before_update().is_some() {
            need(
                "memory.checkBeforeUpdate",
                mem,
                &["memory.usage_in_bytes"],
                &["memory.current"],
                "",
            );
        }
    }
    if let Some(c) = n.cpu() {
        if c.shares().is_some() {
            need("cpu.shares", "cpu", &["cpu.shares"], &["cpu.weight"], "");
        }
        if c.quota().is_some() {
            need("cpu.quota", "cpu", &["cpu.cfs_quota_us"], &["cpu.max"], "");
        }
        if c.period().is_some() {
            need(
                "cpu.period",
                "cpu",
                &["cpu.cfs_period_us"],
                &["cpu.max"],
                "",
            );
        }
        if c.burst().is_some() {
            need(
                "cpu.burst",
                "cpu",
                &["cpu.cfs_burst_us"],
                &["cpu.max.burst"],
                "this kernel has no CPU burst (needs Linux 5.14+)",
            );
        }
        let rt = "this kernel has no realtime group scheduling (CONFIG_RT_GROUP_SCHED)";
        if c.realtime_runtime().is_some() {
            need(
                "cpu.realtimeRuntime",
                "cpu",
                &["cpu.rt_runtime_us"],
                &[],
                rt,
            );
        }
        if c.realtime_period().is_some() {
            need("cpu.realtimePeriod", "cpu", &["cpu.rt_period_us"], &[], rt);
        }
        if c.idle().is_some() {
            need(
                "cpu.idle",
                "cpu",
                &["cpu.idle"],
                &["cpu.idle"],
                "this kernel has no SCHED_IDLE cgroups (needs Linux 5.15+)",
            );
        }
        if c.cpus().is_some() {
            need("cpu.cpus", "cpuset", &["cpuset.cpus"], &["cpuset.cpus"], "");
        }
        if c.mems().is_some() {
            need("cpu.mems", "cpuset", &["cpuset.mems"], &["cpuset.mems"], "");
        }
    }
    if n.pids().is_some() {
        need("pids.limit", "pids", &["pids.max"], &["pids.max"], "");
    }
    if let Some(b) = n.block_io() {
        let io = if v2 { "io" } else { "blkio" };
        if b.weight().is_some() {
            need(
                "blockIO.weight",
                io,
                &["blkio.weight", "blkio.bfq.weight"],
                &["io.bfq.weight", "io.weight"],
                "no proportional I/O scheduler (CFQ/BFQ) offers a weight",
            );
        }
        if b.leaf_weight().is_some() {
            need(
                "blockIO.leafWeight",
                io,
                &["blkio.leaf_weight"],
                &[],
                "leaf weights existed only with CFQ (removed in Linux 5.0)",
            );
        }
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            if d.weight().is_some() {
                need(
                    &format!("blockIO.weightDevice[{i}]"),
                    io,
                    &["blkio.weight_device", "blkio.bfq.weight_device"],
                    &["io.bfq.weight"],
                    "per-device weights need the BFQ scheduler",
                );
            }
            if d.leaf_weight().is_some() {
                need(
                    &format!("blockIO.weightDevice[{i}].leafWeight"),
                    io,
                    &["blkio.leaf_weight_device"],
                    &[],
                    "leaf weights existed only with CFQ (removed in Linux 5.0)",
                );
            }
        }
        for (name, list) in throttles(b) {
            let file = match name {
                "throttleReadBpsDevice" => "blkio.throttle.read_bps_device",
                "throttleWriteBpsDevice" => "blkio.throttle.write_bps_device",
                "throttleReadIOPSDevice" => "blkio.throttle.read_iops_device",
                _ => "blkio.throttle.write_iops_device",
            };
            for i in 0..list.len() {
                need(
                    &format!("blockIO.{name}[{i}]"),
                    io,
                    &[file],
                    &["io.max"],
                    "this kernel has no I/O throttling (CONFIG_BLK_DEV_THROTTLING)",
                );
            }
        }
    }
    for (i, h) in n.hugepage_limits().iter().flatten().enumerate() {
        let size = h.page_size();
        need(
            &format!("hugepageLimits[{i}]"),
            "hugetlb",
            &[&format!("hugetlb.{size}.limit_in_bytes")],
            &[&format!("hugetlb.{size}.max")],
            "",
        );
    }
    if let Some(net) = n.network() {
        if net.class_id().is_some() {
            need("network.classID", "net_cls", &["net_cls.classid"], &[], "");
        }
        if net.priorities().is_some() {
            need(
                "network.priorities",
                "net_prio",
                &["net_prio.ifpriomap"],
                &[],
                "",
            );
        }
    }
    if n.rdma().is_some() {
        need("rdma", "rdma", &["rdma.max"], &["rdma.max"], "");
    }
    drop(need);
    for key in n.unified().iter().flat_map(|m| m.keys()) {
        let controller: &'static str = match key.split('.').next().unwrap_or_default() {
            "cpu" => "cpu",
            "cpuset" => "cpuset",
            "memory" => "memory",
            "io" => "io",
            "pids" => "pids",
            "hugetlb" => "hugetlb",
            "rdma" => "rdma",
            "misc" => "misc",
            _ => "",
        };
        out.push(Need {
            field: field(&format!("unified.{key}")),
            controller,
            files: vec![key.clone()],
            missing: "no such file in the container's cgroup".into(),
        });
    }
    out
}

/// Every set field against the files of the container's (existing) cgroup.
pub(super) fn check_host(n: &LinuxResources, layout: &Layout, path: &Path) -> Result<()> {
    let kind = layout.describe();
    let v2_available = match layout {
        Layout::V2 => {
            let dir = Path::new(CGROUP_ROOT).join(rel(path));
            std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default()
        }
        Layout::V1 { .. } => String::new(),
    };
    for need in needs(n, layout.is_v2()) {
        if !need.controller.is_empty() {
            let present = match layout {
                Layout::V2 => v2_available
                    .split_whitespace()
                    .any(|c| c == need.controller),
                Layout::V1 { .. } => layout.dir(need.controller, path).is_some(),
            };
            if !present {
                let why = match layout {
                    Layout::V2 => format!(
                        "the {} controller is not enabled for {} ({kind}: see the parent's cgroup.subtree_control)",
                        need.controller,
                        path.display()
                    ),
                    Layout::V1 { .. } => format!(
                        "the {} controller is not mounted on this host ({kind})",
                        need.controller
                    ),
                };
                return Err(config(need.field, why));
            }
        }
        let Some(dir) = layout.dir(need.controller, path) else {
            continue;
        };
        if need.files.is_empty() || need.files.iter().any(|f| dir.join(f).exists()) {
            continue;
        }
        let why = if need.missing.is_empty() {
            format!("this kernel has no {} ({kind})", need.files.join(" or "))
        } else {
            need.missing
        };
        return Err(config(need.field, why));
    }
    if let Some(b) = n.block_io() {
        for (name, list) in throttles(b) {
            for (i, d) in list.iter().enumerate() {
                block_device_exists(&format!("blockIO.{name}[{i}]"), d.major(), d.minor())?;
            }
        }
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            block_device_exists(&format!("blockIO.weightDevice[{i}]"), d.major(), d.minor())?;
        }
    }
    Ok(())
}

pub(super) fn block_device_exists(f: &str, major: i64, minor: i64) -> Result<()> {
    if Path::new(&format!("/sys/dev/block/{major}:{minor}")).exists() {
        return Ok(());
    }
    Err(bad(
        f,
        format!("{major}:{minor} is not a block device on this host"),
    ))
}
