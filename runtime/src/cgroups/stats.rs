//! What `events --stats` and `vsrun stat` report: runc's figures, read from the container's
//! cgroup files.
//!
//! v1 goes through libcgroups' manager, except where the container has directories in only
//! some hierarchies (rootless): libcgroups fails at the first one missing, runc reads those
//! it has, and so does `present_v1`. v2 is read here: libcgroups 0.7 fails on a cgroup where
//! a controller is not enabled (a delegated subtree without `cpu` has a `cpu.stat` of usage
//! lines only, and no `pids.current`), and it reports v2's microseconds where runc reports
//! nanoseconds.

use super::layout::{layout, manager, Layout};
use super::paths::rel;
use super::{delegated, fs_path};
use crate::error::{state, Result};
use libcgroups::common::CgroupManager;
use libcgroups::stats::{
    BlkioDeviceStat, BlkioStats, CpuStats, CpuThrottling, CpuUsage, HugeTlbStats, MemoryData,
    MemoryStats, Stats,
};
use std::collections::HashMap;
use std::path::Path;

/// USER_HZ is 100 on every architecture Linux's ABI gives userspace (sysconf(_SC_CLK_TCK)).
const NS_PER_USER_HZ_TICK: u64 = 10_000_000;
const NS_PER_USEC: u64 = 1_000;

pub fn stats(path: &Path, systemd: bool, id: &str, rootless: bool) -> Result<Stats> {
    let layout = layout()?;
    if layout.is_v2() {
        let dir = Path::new(super::CGROUP_ROOT).join(rel(&fs_path(path, systemd)));
        return v2(&dir).map_err(|e| state(format!("read stats of cgroup {}: {e}", dir.display())));
    }
    if !systemd && delegated::applies(layout, path, rootless) {
        return Ok(present_v1(layout, path));
    }
    let mut s = manager(path, systemd, id)?
        .stats()
        .map_err(|e| state(format!("read stats of cgroup {}: {e}", path.display())))?;
    // libcgroups passes cpuacct.stat's USER_HZ ticks through; runc reports nanoseconds.
    s.cpu.usage.usage_user *= NS_PER_USER_HZ_TICK;
    s.cpu.usage.usage_kernel *= NS_PER_USER_HZ_TICK;
    Ok(s)
}

/// A v2 cgroup's figures, each controller's only where it is enabled there (runc's `fs2`
/// reads the same way). The directory itself must exist: a vanished cgroup is an error.
fn v2(dir: &Path) -> std::io::Result<Stats> {
    let enabled = std::fs::read_to_string(dir.join("cgroup.controllers"))?;
    let on = |c: &str| enabled.split_whitespace().any(|e| e == c);
    let mut s = Stats {
        // cpu.stat is a core file: its usage lines are there with or without `cpu`.
        cpu: v2_cpu(&flat_keyed(&dir.join("cpu.stat"))),
        ..Default::default()
    };
    if on("pids") {
        s.pids = libcgroups::stats::pid_stats(dir).unwrap_or_default();
    }
    if on("memory") {
        s.memory = v2_memory(dir);
    }
    if on("io") {
        s.blkio = v2_io(&std::fs::read_to_string(dir.join("io.stat")).unwrap_or_default());
    }
    if on("hugetlb") {
        s.hugetlb = v2_hugetlb(dir);
    }
    Ok(s)
}

fn v2_cpu(stat: &HashMap<String, u64>) -> CpuStats {
    let get = |k: &str| stat.get(k).copied().unwrap_or(0);
    CpuStats {
        usage: CpuUsage {
            usage_total: get("usage_usec") * NS_PER_USEC,
            usage_user: get("user_usec") * NS_PER_USEC,
            usage_kernel: get("system_usec") * NS_PER_USEC,
            ..Default::default()
        },
        throttling: CpuThrottling {
            periods: get("nr_periods"),
            throttled_periods: get("nr_throttled"),
            throttled_time: get("throttled_usec") * NS_PER_USEC,
        },
        ..Default::default()
    }
}

/// `memory.*` and `memory.swap.*`: usage, limit ("max" is u64::MAX, as v1's unlimited is
/// huge), peak where the kernel keeps it (5.19+), and the failure count from the events
/// file (`oom` and `fail`, as libcgroups counts them).
fn v2_memory(dir: &Path) -> MemoryStats {
    let data = |prefix: &str, fail: &str| MemoryData {
        usage: number(&dir.join(format!("{prefix}.current"))),
        max_usage: number(&dir.join(format!("{prefix}.peak"))),
        limit: limit(&dir.join(format!("{prefix}.max"))),
        fail_count: flat_keyed(&dir.join(format!("{prefix}.events")))
            .get(fail)
            .copied()
            .unwrap_or(0),
    };
    MemoryStats {
        memory: data("memory", "oom"),
        memswap: data("memory.swap", "fail"),
        hierarchy: true,
        stats: flat_keyed(&dir.join("memory.stat")),
        ..Default::default()
    }
}

/// io.stat lines (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0`) as runc maps them:
/// bytes to ioServiceBytesRecursive, operations to ioServicedRecursive, read and write each.
fn v2_io(text: &str) -> BlkioStats {
    let mut s = BlkioStats::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for (key, value) in fields.filter_map(|f| f.split_once('=')) {
            let (list, op) = match key {
                "rbytes" => (&mut s.service_bytes, "read"),
                "wbytes" => (&mut s.service_bytes, "write"),
                "rios" => (&mut s.serviced, "read"),
                "wios" => (&mut s.serviced, "write"),
                _ => continue,
            };
            list.push(BlkioDeviceStat {
                major,
                minor,
                op_type: Some(op.into()),
                value: value.parse().unwrap_or(0),
            });
        }
    }
    s
}

/// One entry per page size the kernel offers (`hugetlb.<size>.current`).
fn v2_hugetlb(dir: &Path) -> HashMap<String, HugeTlbStats> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(".current")?;
            let file = |f: &str| dir.join(format!("hugetlb.{size}.{f}"));
            let stats = HugeTlbStats {
                usage: number(&file("current")),
                fail_count: flat_keyed(&file("events")).get("max").copied().unwrap_or(0),
                ..Default::default()
            };
            Some((size.to_string(), stats))
        })
        .collect()
}

/// The statistics of the hierarchies the container has a directory in. libcgroups' v1 manager
/// reads every hierarchy and fails at the first one the user could not make (cpuacct, say);
/// runc's reads those it has, and so does this: a controller without a directory reads as
/// zero.
fn present_v1(layout: &Layout, path: &Path) -> Stats {
    let dir = |c: &str| layout.dir(c, path).filter(|d| d.is_dir());
    let mut s = Stats::default();
    if let Some(d) = dir("pids") {
        s.pids = libcgroups::stats::pid_stats(&d).unwrap_or_default();
    }
    if let Some(d) = dir("cpuacct") {
        s.cpu.usage = cpu_usage(&d);
    }
    if let Some(d) = dir("cpu") {
        let t = flat_keyed(&d.join("cpu.stat"));
        s.cpu.throttling = CpuThrottling {
            periods: t.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: t.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: t.get("throttled_time").copied().unwrap_or(0),
        };
    }
    if let Some(d) = dir("memory") {
        s.memory = memory_stats(&d);
    }
    s
}

fn cpu_usage(d: &Path) -> CpuUsage {
    let stat = flat_keyed(&d.join("cpuacct.stat"));
    let per_core = std::fs::read_to_string(d.join("cpuacct.usage_percpu")).unwrap_or_default();
    CpuUsage {
        usage_total: number(&d.join("cpuacct.usage")),
        // cpuacct.stat counts USER_HZ ticks; the other fields are nanoseconds.
        usage_user: stat.get("user").copied().unwrap_or(0) * NS_PER_USER_HZ_TICK,
        usage_kernel: stat.get("system").copied().unwrap_or(0) * NS_PER_USER_HZ_TICK,
        per_core_usage_total: per_core
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect(),
        ..Default::default()
    }
}

fn memory_stats(d: &Path) -> MemoryStats {
    let data = |prefix: &str| MemoryData {
        usage: number(&d.join(format!("{prefix}usage_in_bytes"))),
        max_usage: number(&d.join(format!("{prefix}max_usage_in_bytes"))),
        fail_count: number(&d.join(format!("{prefix}failcnt"))),
        limit: number(&d.join(format!("{prefix}limit_in_bytes"))),
    };
    let stats = flat_keyed(&d.join("memory.stat"));
    MemoryStats {
        memory: data("memory."),
        memswap: data("memory.memsw."),
        kernel: data("memory.kmem."),
        kernel_tcp: data("memory.kmem.tcp."),
        cache: stats.get("cache").copied().unwrap_or(0),
        hierarchy: number(&d.join("memory.use_hierarchy")) == 1,
        stats,
        ..Default::default()
    }
}

/// A v2 limit file: a number, or "max" for none.
fn limit(f: &Path) -> u64 {
    match std::fs::read_to_string(f) {
        Ok(v) if v.trim() == "max" => u64::MAX,
        Ok(v) => v.trim().parse().unwrap_or(0),
        Err(_) => 0,
    }
}

/// A file of one number; absent (the kernel lacks that accounting) reads as 0.
fn number(f: &Path) -> u64 {
    std::fs::read_to_string(f)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// "key value" lines, as cpu.stat and memory.stat have them.
fn flat_keyed(f: &Path) -> std::collections::HashMap<String, u64> {
    std::fs::read_to_string(f)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}
