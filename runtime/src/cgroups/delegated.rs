//! cgroups delegated to a plain user (rootless).
//!
//! Pure v2: a subtree the user owns (systemd's `Delegate=`: `user@<uid>.service`) holds the
//! containers of a config without `linux.cgroupsPath`, at `<subtree>/vsrun/<id>`.
//!
//! v1: the user owns the container's directories in some hierarchies (pids, memory, ...) and
//! none in the rest, the devices one among them. libcgroups' v1 manager writes the device list of every container it applies
//! anything to and fails there, so in that case vsrun writes the limits libcgroups would
//! have written itself, each to its own controller's directory and with libcgroups' (runc's)
//! order. Only the fields `apply::for_libcgroups` leaves: vsrun's own writes follow as always.

use super::apply::write_file;
use super::layout::Layout;
use crate::error::Result;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use std::path::{Path, PathBuf};

/// The top of the delegated subtree the caller is in: its own v2 cgroup and the ancestors
/// above it that the user owns and may move processes in (the directory is its own and so
/// is `cgroup.procs`), the highest of them. `None` when the caller's own cgroup is not its.
pub(super) fn default_path_v2(id: &str) -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim()
        .to_string();
    let root = Path::new(super::CGROUP_ROOT);
    let euid = nix::unistd::geteuid().as_raw();
    let owned = |rel: &Path| {
        use std::os::unix::fs::MetadataExt;
        let dir = root.join(rel.strip_prefix("/").unwrap_or(rel));
        let procs = dir.join("cgroup.procs");
        rel != Path::new("/")
            && std::fs::metadata(&dir).is_ok_and(|m| m.uid() == euid)
            && nix::unistd::access(&procs, nix::unistd::AccessFlags::W_OK).is_ok()
    };
    let top = Path::new(&own)
        .ancestors()
        .take_while(|a| owned(a))
        .last()?;
    Some(top.join("vsrun").join(id))
}

/// v1 rootless mode, and the container has no directory in the devices hierarchy: its
/// devices cgroup the user could not make (`prepare` skipped it). Only rootless mode skips a
/// directory, so outside it nothing is looked up: this runs on every `apply`.
pub(super) fn applies(layout: &Layout, path: &Path, rootless: bool) -> bool {
    rootless && !layout.is_v2() && layout.dir("devices", path).is_some_and(|d| !d.is_dir())
}

/// What libcgroups' v1 controllers write, for the fields of `lib`.
pub(super) fn write_v1(lib: &LinuxResources, layout: &Layout, path: &Path) -> Result<()> {
    let dir = |c: &str, f: &str| layout.dir_for(c, path, f);
    if let Some(c) = lib.cpu() {
        if has_cpu_limits(c) {
            write_cpu(c, &dir("cpu", "cpu")?)?;
        }
        if c.cpus().is_some() || c.mems().is_some() {
            write_cpuset(c, &dir("cpuset", "cpu.cpus")?)?;
        }
    }
    if let Some(m) = lib.memory() {
        write_memory(m, &dir("memory", "memory")?)?;
    }
    if let Some(p) = lib.pids() {
        let max = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".into()
        };
        write_file("pids.limit", &dir("pids", "pids.limit")?, "pids.max", &max)?;
    }
    if let Some(b) = lib.block_io() {
        write_blkio(b, &dir("blkio", "blockIO")?)?;
    }
    for (i, h) in lib.hugepage_limits().iter().flatten().enumerate() {
        let f = format!("hugepageLimits[{i}]");
        let file = format!("hugetlb.{}.limit_in_bytes", h.page_size());
        write_file(&f, &dir("hugetlb", &f)?, &file, &h.limit().to_string())?;
    }
    Ok(())
}

/// A field of the cpu controller's (not cpuset's) is set.
fn has_cpu_limits(c: &LinuxCpu) -> bool {
    let mut limits = c.clone();
    limits.set_cpus(None);
    limits.set_mems(None);
    limits != LinuxCpu::default()
}

fn write_cpu(c: &LinuxCpu, dir: &Path) -> Result<()> {
    let nonzero = |v: Option<i64>| v.filter(|v| *v != 0);
    let writes = [
        (
            "cpu.shares",
            "cpu.shares",
            c.shares().filter(|v| *v != 0).map(|v| v as i64),
        ),
        (
            "cpu.period",
            "cpu.cfs_period_us",
            c.period().filter(|v| *v != 0).map(|v| v as i64),
        ),
        ("cpu.quota", "cpu.cfs_quota_us", nonzero(c.quota())),
        (
            "cpu.realtimeRuntime",
            "cpu.rt_runtime_us",
            nonzero(c.realtime_runtime()),
        ),
        (
            "cpu.realtimePeriod",
            "cpu.rt_period_us",
            c.realtime_period().filter(|v| *v != 0).map(|v| v as i64),
        ),
        ("cpu.idle", "cpu.idle", c.idle()),
    ];
    for (field, file, value) in writes {
        if let Some(v) = value {
            write_file(field, dir, file, &v.to_string())?;
        }
    }
    Ok(())
}

fn write_cpuset(c: &LinuxCpu, dir: &Path) -> Result<()> {
    if let Some(cpus) = c.cpus() {
        write_file("cpu.cpus", dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems() {
        write_file("cpu.mems", dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// runc's order for limit and memsw: the kernel keeps memsw >= limit at every step, so a
/// raise writes memsw first and a cut writes the limit first.
fn write_memory(m: &LinuxMemory, dir: &Path) -> Result<()> {
    let current: i64 = std::fs::read_to_string(dir.join("memory.limit_in_bytes"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(-1);
    let limit = m.limit().unwrap_or(0);
    let swap = match (m.limit(), m.swap()) {
        (Some(-1), None) => -1,
        (_, s) => s.unwrap_or(0),
    };
    let swap_first = match (m.limit(), m.swap()) {
        (Some(_), Some(s)) => s == -1 || current < s,
        (Some(-1), None) => true,
        (Some(_), None) => current < 0,
        (None, _) => false,
    };
    let set = |field: &str, file: &str, v: i64| -> Result<()> {
        if v == 0 {
            return Ok(());
        }
        write_file(field, dir, file, &v.to_string())
    };
    if swap_first {
        set("memory.swap", "memory.memsw.limit_in_bytes", swap)?;
    }
    set("memory.limit", "memory.limit_in_bytes", limit)?;
    if !swap_first {
        set("memory.swap", "memory.memsw.limit_in_bytes", swap)?;
    }
    set(
        "memory.reservation",
        "memory.soft_limit_in_bytes",
        m.reservation().unwrap_or(0),
    )?;
    if let Some(d) = m.disable_oom_killer() {
        write_file(
            "memory.disableOOMKiller",
            dir,
            "memory.oom_control",
            if d { "1" } else { "0" },
        )?;
    }
    if let Some(s) = m.swappiness() {
        write_file(
            "memory.swappiness",
            dir,
            "memory.swappiness",
            &s.to_string(),
        )?;
    }
    Ok(())
}

fn write_blkio(b: &LinuxBlockIo, dir: &Path) -> Result<()> {
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        let file = if dir.join("blkio.weight").exists() {
            "blkio.weight"
        } else {
            "blkio.bfq.weight"
        };
        write_file("blockIO.weight", dir, file, &w.to_string())?;
    }
    let lists = [
        (
            "blockIO.throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blockIO.throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blockIO.throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blockIO.throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (field, file, list) in lists {
        for (i, t) in list.iter().flatten().enumerate() {
            let line = format!("{}:{} {}", t.major(), t.minor(), t.rate());
            write_file(&format!("{field}[{i}]"), dir, file, &line)?;
        }
    }
    Ok(())
}

/// Every process of the container's cgroup when the devices hierarchy (where libcgroups looks)
/// has no directory for it: the first of its directories that exists, and every cgroup below.
pub(super) fn pids(layout: &Layout, path: &Path) -> std::io::Result<Vec<i32>> {
    let (v1, _) = layout.member_dirs(path);
    let Some(top) = v1.into_iter().find(|d| d.is_dir()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut todo: Vec<PathBuf> = vec![top];
    while let Some(d) = todo.pop() {
        let procs = std::fs::read_to_string(d.join("cgroup.procs"))?;
        out.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        for e in std::fs::read_dir(&d)?.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(e.path());
            }
        }
    }
    Ok(out)
}
