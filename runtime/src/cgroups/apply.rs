//! Writing `linux.resources`: libcgroups for what it writes right, vsrun's own writes for the
//! rest, and errors turned back into field names.

use super::layout::{manager, Layout};
use super::values::{bad, field, throttles};
use crate::error::{config, Error, Result};
use libcgroups::common::{CgroupManager, ControllerOpt};
use oci_spec::runtime::LinuxResources;
use std::io::Write;
use std::path::Path;

/// Everything but devices: libcgroups for what it does right, then vsrun's own writes.
pub(super) fn apply_rest(layout: &Layout, path: &Path, n: &LinuxResources) -> Result<()> {
    if *n == LinuxResources::default() {
        return Ok(());
    }
    check_before_update(n, layout, path)?;
    let lib = for_libcgroups(n, layout, path);
    if lib != LinuxResources::default() {
        let opt = ControllerOpt {
            resources: &lib,
            disable_oom_killer: n
                .memory()
                .as_ref()
                .and_then(|m| m.disable_oom_killer())
                .unwrap_or(false),
            oom_score_adj: None,
            freezer_state: None,
        };
        manager(path, false, "")?
            .apply(&opt)
            .map_err(|e| libcgroups_error(&e.to_string(), n, layout, path))?;
    }
    own_writes(n, layout, path)
}

/// runc's `checkBeforeUpdate`: refuse a memory limit below the current usage instead of
/// letting the kernel reclaim or OOM-kill to reach it (runc does it on v2; vsrun on both, since
/// a v1 kernel may reclaim page cache and accept such a limit).
pub(super) fn check_before_update(n: &LinuxResources, layout: &Layout, path: &Path) -> Result<()> {
    let Some(m) = n.memory() else { return Ok(()) };
    let (Some(true), Some(limit)) = (m.check_before_update(), m.limit()) else {
        return Ok(());
    };
    let file = if layout.is_v2() {
        "memory.current"
    } else {
        "memory.usage_in_bytes"
    };
    let dir = layout.dir("memory", path).unwrap_or_default();
    let current: i64 = std::fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if limit < current {
        return Err(bad(
            "memory.limit",
            format!("{limit}: below the current usage {current} (memory.checkBeforeUpdate)"),
        ));
    }
    Ok(())
}

/// The part of the resources libcgroups applies correctly on this layout.
pub(super) fn for_libcgroups(n: &LinuxResources, layout: &Layout, path: &Path) -> LinuxResources {
    let mut lib = n.clone();
    lib.set_devices(None);
    lib.set_network(None);
    lib.set_rdma(None);
    if let Some(m) = lib.memory_mut() {
        m.set_check_before_update(None);
        // Written and read back by vsrun: recent kernels accept the write and keep no limit.
        m.set_kernel(None);
        m.set_kernel_tcp(None);
        // v2: swap -1 alone (runc's `update --memory-swap -1`) is unlimited swap, which
        // libcgroups refuses without a memory limit; own_writes sets memory.swap.max.
        if layout.is_v2() && m.swap() == Some(-1) && m.limit().is_none() {
            m.set_swap(None);
        }
    }
    if layout.is_v2() {
        strip_empty(&mut lib);
        return lib;
    }
    // v1: libcgroups skips cpu.burst unless another cpu field is set, and never writes leaf
    // weights or weight devices.
    if let Some(c) = lib.cpu_mut() {
        c.set_burst(None);
    }
    if let Some(b) = lib.block_io_mut() {
        b.set_leaf_weight(None);
        b.set_weight_device(None);
    }
    // v1 without swap accounting: libcgroups sets memsw to -1 along with an unlimited memory
    // limit and fails on the missing file; vsrun writes that limit itself.
    if let Some(m) = lib.memory_mut() {
        let memsw = layout
            .dir("memory", path)
            .is_some_and(|d| d.join("memory.memsw.limit_in_bytes").exists());
        if m.limit() == Some(-1) && m.swap().is_none() && !memsw {
            m.set_limit(None);
        }
    }
    strip_empty(&mut lib);
    lib
}

pub(super) fn strip_empty(r: &mut LinuxResources) {
    if r.memory()
        .as_ref()
        .is_some_and(|m| *m == Default::default())
    {
        r.set_memory(None);
    }
    if r.cpu().as_ref().is_some_and(|c| *c == Default::default()) {
        r.set_cpu(None);
    }
    if r.block_io()
        .as_ref()
        .is_some_and(|b| *b == Default::default())
    {
        r.set_block_io(None);
    }
}

pub(super) fn write_file(f: &str, dir: &Path, file: &str, value: &str) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(file))
        .and_then(|mut w| w.write_all(value.as_bytes()))
        .map_err(|e| bad(f, format!("{value:?} rejected by the kernel ({file}: {e})")))
}

/// The deprecated kernel memory limits (`memory.kernel`, `memory.kernelTCP`; config-linux.md:
/// "not recommended"). Linux 5.4 deprecated kmem.limit_in_bytes, 6.x accepts a write and keeps
/// no limit, cgroup v2 never had either file. runc and crun accept them with a warning, so a
/// field this host has no file for is dropped here with a warning naming it, rather than
/// losing the container; `write_kernel_limit` warns about a write the kernel ignores.
pub(super) fn drop_kernel_memory_without_files(r: &mut LinuxResources, layout: &Layout) {
    let kind = layout.describe();
    let memory_root = (!layout.is_v2())
        .then(|| layout.dir("memory", Path::new("/")))
        .flatten();
    let has = |file: &str| memory_root.as_ref().is_some_and(|d| d.join(file).exists());
    let Some(m) = r.memory_mut() else { return };
    if m.kernel().is_some_and(|v| v != 0) && !has("memory.kmem.limit_in_bytes") {
        m.set_kernel(None);
        warn_kernel_memory(
            "memory.kernel",
            &format!("{kind} has no memory.kmem.limit_in_bytes"),
        );
    }
    if m.kernel_tcp().is_some_and(|v| v != 0) && !has("memory.kmem.tcp.limit_in_bytes") {
        m.set_kernel_tcp(None);
        warn_kernel_memory(
            "memory.kernelTCP",
            &format!("{kind} has no memory.kmem.tcp.limit_in_bytes"),
        );
    }
}

pub(super) fn warn_kernel_memory(f: &str, why: &str) {
    crate::log::warn(&format!(
        "{}: ignored: {why} (kernel memory limits are deprecated and not enforced by this kernel)",
        field(f)
    ));
}

/// A kernel memory limit, written and read back (rounded down to a page): a kernel that
/// refuses the write, or accepts it and keeps no limit (6.x for memory.kmem.limit_in_bytes),
/// gets a warning, as runc and crun give, not a failure.
pub(super) fn write_kernel_limit(f: &str, dir: &Path, file: &str, value: i64) -> Result<()> {
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(file))
        .and_then(|mut w| w.write_all(value.to_string().as_bytes()));
    if let Err(e) = written {
        // Kernels that dropped the limit refuse the write (EOPNOTSUPP) rather than ignore it.
        warn_kernel_memory(f, &format!("{file} refused {value}: {e}"));
        return Ok(());
    }
    let now: i64 = std::fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(-1);
    let kept = if value == -1 {
        now > 1 << 60
    } else {
        now <= value && value - now < 1 << 16
    };
    if !kept {
        warn_kernel_memory(
            f,
            &format!("{value} was accepted but {file} still reads {now}"),
        );
    }
    Ok(())
}

/// The fields libcgroups 0.7 does not write (or writes wrongly); `check_host` made sure the
/// files exist.
pub(super) fn own_writes(n: &LinuxResources, layout: &Layout, path: &Path) -> Result<()> {
    let dir = |c: &str| layout.dir(c, path).unwrap_or_default();
    let v2 = layout.is_v2();
    if let Some(m) = n.memory() {
        // v2: swap equal to the limit means no swap: memory.swap.max 0 (libcgroups writes
        // nothing for a 0).
        // Both -1 is no limit at all, which libcgroups writes (max).
        if v2 && m.swap().is_some() && m.swap() == m.limit() && m.limit() != Some(-1) {
            write_file("memory.swap", &dir("memory"), "memory.swap.max", "0")?;
        }
        if v2 && m.swap() == Some(-1) && m.limit().is_none() {
            write_file("memory.swap", &dir("memory"), "memory.swap.max", "max")?;
        }
        if let Some(k) = m.kernel().filter(|_| !v2) {
            write_kernel_limit(
                "memory.kernel",
                &dir("memory"),
                "memory.kmem.limit_in_bytes",
                k,
            )?;
        }
        if let Some(k) = m.kernel_tcp().filter(|_| !v2) {
            write_kernel_limit(
                "memory.kernelTCP",
                &dir("memory"),
                "memory.kmem.tcp.limit_in_bytes",
                k,
            )?;
        }
        let memsw = dir("memory").join("memory.memsw.limit_in_bytes").exists();
        if !v2 && m.limit() == Some(-1) && m.swap().is_none() && !memsw {
            write_file(
                "memory.limit",
                &dir("memory"),
                "memory.limit_in_bytes",
                "-1",
            )?;
        }
    }
    if let Some(burst) = n.cpu().as_ref().and_then(|c| c.burst()).filter(|_| !v2) {
        write_file(
            "cpu.burst",
            &dir("cpu"),
            "cpu.cfs_burst_us",
            &burst.to_string(),
        )?;
    }
    if let Some(b) = n.block_io().as_ref().filter(|_| !v2) {
        let blkio = dir("blkio");
        if let Some(w) = b.leaf_weight() {
            write_file(
                "blockIO.leafWeight",
                &blkio,
                "blkio.leaf_weight",
                &w.to_string(),
            )?;
        }
        let weight_file = if blkio.join("blkio.weight_device").exists() {
            "blkio.weight_device"
        } else {
            "blkio.bfq.weight_device"
        };
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            let f = format!("blockIO.weightDevice[{i}]");
            if let Some(w) = d.weight() {
                let v = format!("{}:{} {w}", d.major(), d.minor());
                write_file(&f, &blkio, weight_file, &v)?;
            }
            if let Some(w) = d.leaf_weight() {
                let v = format!("{}:{} {w}", d.major(), d.minor());
                write_file(
                    &format!("{f}.leafWeight"),
                    &blkio,
                    "blkio.leaf_weight_device",
                    &v,
                )?;
            }
        }
    }
    if let Some(net) = n.network() {
        if let Some(id) = net.class_id() {
            write_file(
                "network.classID",
                &dir("net_cls"),
                "net_cls.classid",
                &id.to_string(),
            )?;
        }
        // One interface per write: the kernel reads one "name prio" pair per write.
        for (i, p) in net.priorities().iter().flatten().enumerate() {
            let v = format!("{} {}", p.name(), p.priority());
            write_file(
                &format!("network.priorities[{i}]"),
                &dir("net_prio"),
                "net_prio.ifpriomap",
                &v,
            )?;
        }
    }
    let mut rdma: Vec<_> = n.rdma().iter().flatten().collect();
    rdma.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, l) in rdma {
        let mut v = dev.clone();
        if let Some(h) = l.hca_handles() {
            v.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            v.push_str(&format!(" hca_object={o}"));
        }
        if v != *dev {
            write_file(&format!("rdma.{dev}"), &dir("rdma"), "rdma.max", &v)?;
        }
    }
    Ok(())
}

/// libcgroups reports a failed write as "failed to write DATA to DIR/FILE: ERROR". The file
/// names the field, and DATA the entry of a list.
pub(super) fn libcgroups_error(
    msg: &str,
    n: &LinuxResources,
    layout: &Layout,
    path: &Path,
) -> Error {
    for dir in layout.dirs(path) {
        let prefix = format!("{}/", dir.display());
        let Some(at) = msg.find(&prefix) else {
            continue;
        };
        let rest = &msg[at + prefix.len()..];
        let file = rest
            .split(|c: char| c == ':' || c.is_whitespace())
            .next()
            .unwrap_or_default();
        let err = rest[file.len()..].trim_start_matches([':', ' ']);
        let data = msg[..at]
            .strip_suffix(" to ")
            .and_then(|s| s.rsplit_once("failed to write "))
            .map(|(_, d)| d)
            .unwrap_or_default();
        let f = field_of_file(file, data, n);
        return config(
            f,
            format!("{data:?} rejected by the kernel ({file}: {err})"),
        );
    }
    if msg.contains("memory limit") {
        return bad("memory.limit", msg);
    }
    config("linux.resources", msg)
}

pub(super) fn field_of_file(file: &str, data: &str, n: &LinuxResources) -> String {
    if n.unified().as_ref().is_some_and(|u| u.contains_key(file)) {
        return field(&format!("unified.{file}"));
    }
    let dev = data.split_whitespace().next().unwrap_or_default();
    let index = |list: &[(i64, i64)]| {
        list.iter()
            .position(|(ma, mi)| format!("{ma}:{mi}") == dev)
            .map(|i| format!("[{i}]"))
            .unwrap_or_default()
    };
    let b = n.block_io().clone().unwrap_or_default();
    let throttle = |name: &str| {
        let list: Vec<(i64, i64)> = throttles(&b)
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, l)| l.iter().map(|d| (d.major(), d.minor())).collect())
            .unwrap_or_default();
        field(&format!("blockIO.{name}{}", index(&list)))
    };
    let f = match file {
        "memory.limit_in_bytes" | "memory.max" => "memory.limit",
        "memory.memsw.limit_in_bytes" | "memory.swap.max" => "memory.swap",
        "memory.soft_limit_in_bytes" | "memory.low" => "memory.reservation",
        "memory.swappiness" => "memory.swappiness",
        "memory.oom_control" => "memory.disableOOMKiller",
        "memory.kmem.limit_in_bytes" => "memory.kernel",
        "memory.kmem.tcp.limit_in_bytes" => "memory.kernelTCP",
        "cpu.shares" | "cpu.weight" => "cpu.shares",
        "cpu.cfs_quota_us" => "cpu.quota",
        "cpu.cfs_period_us" => "cpu.period",
        "cpu.max" if n.cpu().as_ref().is_some_and(|c| c.quota().is_some()) => "cpu.quota",
        "cpu.max" => "cpu.period",
        "cpu.cfs_burst_us" | "cpu.max.burst" => "cpu.burst",
        "cpu.rt_runtime_us" => "cpu.realtimeRuntime",
        "cpu.rt_period_us" => "cpu.realtimePeriod",
        "cpu.idle" => "cpu.idle",
        "cpuset.cpus" => "cpu.cpus",
        "cpuset.mems" => "cpu.mems",
        "pids.max" => "pids.limit",
        "blkio.weight" | "blkio.bfq.weight" | "io.weight" | "io.bfq.weight"
            if dev.contains(':') =>
        {
            let list: Vec<(i64, i64)> = b
                .weight_device()
                .iter()
                .flatten()
                .map(|d| (d.major(), d.minor()))
                .collect();
            return field(&format!("blockIO.weightDevice{}", index(&list)));
        }
        "blkio.weight" | "blkio.bfq.weight" | "io.weight" | "io.bfq.weight" => "blockIO.weight",
        "blkio.throttle.read_bps_device" => return throttle("throttleReadBpsDevice"),
        "blkio.throttle.write_bps_device" => return throttle("throttleWriteBpsDevice"),
        "blkio.throttle.read_iops_device" => return throttle("throttleReadIOPSDevice"),
        "blkio.throttle.write_iops_device" => return throttle("throttleWriteIOPSDevice"),
        "io.max" if data.contains("rbps=") => return throttle("throttleReadBpsDevice"),
        "io.max" if data.contains("wbps=") => return throttle("throttleWriteBpsDevice"),
        "io.max" if data.contains("riops=") => return throttle("throttleReadIOPSDevice"),
        "io.max" => return throttle("throttleWriteIOPSDevice"),
        f if f.starts_with("hugetlb.") => {
            let size = f.split('.').nth(1).unwrap_or_default();
            let i = n
                .hugepage_limits()
                .iter()
                .flatten()
                .position(|h| h.page_size() == size)
                .map(|i| format!("[{i}]"))
                .unwrap_or_default();
            return field(&format!("hugepageLimits{i}"));
        }
        _ => return "linux.resources".into(),
    };
    field(f)
}
