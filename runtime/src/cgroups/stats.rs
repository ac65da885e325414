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

/// runc's `cpuset` object: the cpus and memory nodes as lists, and v1's cpuset flags (0 where
/// the file is missing; v2 has only the effective lists).
pub fn cpuset(path: &Path, systemd: bool) -> serde_json::Value {
    let Ok(layout) = layout() else {
        return serde_json::Value::Null;
    };
    let Some(dir) = layout.dir("cpuset", &fs_path(path, systemd)) else {
        return serde_json::Value::Null;
    };
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let (cpus, mems) = if layout.is_v2() {
        (read("cpuset.cpus.effective"), read("cpuset.mems.effective"))
    } else {
        (read("cpuset.cpus"), read("cpuset.mems"))
    };
    let flag = |f: &str| -> i64 { read(&format!("cpuset.{f}")).trim().parse().unwrap_or(0) };
    serde_json::json!({
        "cpus": id_list(&cpus), "cpu_exclusive": flag("cpu_exclusive"),
        "mems": id_list(&mems), "mem_hardwall": flag("mem_hardwall"),
        "mem_exclusive": flag("mem_exclusive"), "memory_migrate": flag("memory_migrate"),
        "memory_spread_page": flag("memory_spread_page"),
        "memory_spread_slab": flag("memory_spread_slab"),
        "memory_pressure": flag("memory_pressure"),
        "sched_load_balance": flag("sched_load_balance"),
        "sched_relax_domain_level": flag("sched_relax_domain_level"),
    })
}

/// "0-2,5" as [0, 1, 2, 5].
fn id_list(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
            out.extend(a..=b.min(a.saturating_add(4096)));
        }
    }
    out
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
/// file (`oom` and `fail`, as libcgroups counts them); swap as runc's fs2 reports it.
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
    let memory = data("memory", "oom");
    let mut memswap = data("memory.swap", "fail");
    // v1's memsw counts memory and swap together, and runc's v2 figures keep that meaning.
    memswap.usage += memory.usage;
    if memswap.limit != u64::MAX {
        memswap.limit = memswap.limit.saturating_add(memory.limit);
    }
    let stats = flat_keyed(&dir.join("memory.stat"));
    MemoryStats {
        memory,
        memswap,
        // v2's page cache is memory.stat's `file`, which runc reports as the cache.
        cache: stats.get("file").copied().unwrap_or(0),
        hierarchy: true,
        stats,
        ..Default::default()
    }
}

/// io.stat lines (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0`) as runc maps them:
/// bytes to ioServiceBytesRecursive, operations to ioServicedRecursive, `Read` and `Write`
/// each (v1's spelling).
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
                "rbytes" => (&mut s.service_bytes, "Read"),
                "wbytes" => (&mut s.service_bytes, "Write"),
                "rios" => (&mut s.serviced, "Read"),
                "wios" => (&mut s.serviced, "Write"),
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
            // hugetlb.2MB.current, not hugetlb.2MB.rsvd.current (the reservations, 5.7+)
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(".current")?;
            if size.contains('.') {
                return None;
            }
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

#[cfg(test)]
mod tests {
    /// A v2 cgroup directory as Linux 6.1 lays it out, in a scratch directory.
    fn fake_v2(files: &[(&str, &str)]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "vsrun-stats-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn v2_figures_in_runcs_units_and_meanings() {
        let dir = fake_v2(&[
            ("cgroup.controllers", "cpu io memory pids hugetlb"),
            ("cpu.stat", "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 7\nnr_throttled 1\nthrottled_usec 4\n"),
            ("memory.current", "1000"),
            ("memory.max", "max"),
            ("memory.events", "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n"),
            ("memory.swap.current", "50"),
            ("memory.swap.max", "4096"),
            ("memory.swap.events", "max 0\nfail 6\n"),
            ("memory.stat", "anon 300\nfile 700\n"),
            ("pids.current", "3"),
            ("pids.max", "max"),
            ("io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n"),
            ("hugetlb.2MB.current", "0"),
            ("hugetlb.2MB.rsvd.current", "0"),
            ("hugetlb.2MB.events", "max 9\n"),
        ]);
        let s = super::v2(&dir).unwrap();
        assert_eq!(s.cpu.usage.usage_total, 5_000);
        assert_eq!(
            (s.cpu.usage.usage_user, s.cpu.usage.usage_kernel),
            (3_000, 2_000)
        );
        assert_eq!(s.cpu.throttling.periods, 7);
        assert_eq!(s.cpu.throttling.throttled_time, 4_000);
        assert_eq!(s.memory.memory.usage, 1000);
        assert_eq!(s.memory.memory.limit, u64::MAX);
        assert_eq!(s.memory.memory.fail_count, 2);
        // swap as v1's memsw: memory and swap together; an unlimited memory keeps it huge
        assert_eq!(s.memory.memswap.usage, 1050);
        assert_eq!(s.memory.memswap.limit, u64::MAX);
        assert_eq!(s.memory.cache, 700);
        assert_eq!(s.pids.current, 3);
        let ops: Vec<_> = s
            .blkio
            .service_bytes
            .iter()
            .map(|d| (d.op_type.clone().unwrap(), d.value))
            .collect();
        assert_eq!(ops, [("Read".to_string(), 10), ("Write".to_string(), 20)]);
        assert_eq!(s.hugetlb.keys().collect::<Vec<_>>(), ["2MB"]);
        assert_eq!(s.hugetlb["2MB"].fail_count, 9);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cpu_lists_expand() {
        assert_eq!(super::id_list("0-2,5\n"), [0, 1, 2, 5]);
        assert_eq!(super::id_list(""), Vec::<u32>::new());
    }

    #[test]
    fn v2_without_controllers_reads_the_core_usage_only() {
        let dir = fake_v2(&[
            ("cgroup.controllers", ""),
            ("cpu.stat", "usage_usec 8\nuser_usec 5\nsystem_usec 3\n"),
        ]);
        let s = super::v2(&dir).unwrap();
        assert_eq!(s.cpu.usage.usage_total, 8_000);
        assert_eq!(s.cpu.throttling.periods, 0);
        assert_eq!(s.pids.current, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
