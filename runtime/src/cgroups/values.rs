//! `linux.resources` values checked whatever the host (before the clone), and runc's "unset"
//! values taken out.

use super::devices::device_rules;
use crate::error::{config, Error, Result};
use oci_spec::runtime::LinuxResources;
use std::path::Path;

pub(super) fn field(f: &str) -> String {
    format!("linux.resources.{f}")
}

pub(super) fn bad(f: &str, msg: impl Into<String>) -> Error {
    config(field(f), msg)
}

/// What is wrong with a value, whatever the host. Zero values that mean "unset" pass.
pub(super) fn validate(r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        for (name, v) in [
            ("memory.limit", m.limit()),
            ("memory.reservation", m.reservation()),
            ("memory.swap", m.swap()),
            ("memory.kernel", m.kernel()),
            ("memory.kernelTCP", m.kernel_tcp()),
        ] {
            if let Some(v) = v.filter(|v| *v < -1) {
                return Err(bad(
                    name,
                    format!("{v}: must be a number of bytes, or -1 for no limit"),
                ));
            }
        }
        let limit = m.limit().unwrap_or(0);
        if let Some(swap) = m.swap().filter(|s| *s > 0) {
            if limit <= 0 {
                return Err(bad(
                    "memory.swap",
                    format!("{swap}: a memory+swap limit needs memory.limit"),
                ));
            }
            if swap < limit {
                return Err(bad(
                    "memory.swap",
                    format!(
                        "{swap}: below memory.limit {limit} (swap is the limit of memory and swap together)"
                    ),
                ));
            }
        }
        if let Some(s) = m.swappiness().filter(|s| *s > 100) {
            return Err(bad("memory.swappiness", format!("{s}: must be 0..100")));
        }
        if m.use_hierarchy() == Some(false) {
            return Err(bad(
                "memory.useHierarchy",
                "false: memory accounting is always hierarchical on this kernel",
            ));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(q) = c.quota().filter(|q| *q != 0 && *q != -1) {
            if q < 1000 {
                return Err(bad(
                    "cpu.quota",
                    format!("{q}: must be at least 1000 (µs), or -1 for no limit"),
                ));
            }
        }
        if let Some(p) = c.period().filter(|p| *p != 0) {
            if !(1000..=1_000_000).contains(&p) {
                return Err(bad(
                    "cpu.period",
                    format!("{p}: must be 1000..1000000 (µs)"),
                ));
            }
        }
        if let Some(rt) = c.realtime_runtime().filter(|v| *v < -1) {
            return Err(bad(
                "cpu.realtimeRuntime",
                format!("{rt}: must be µs, or -1 for no limit"),
            ));
        }
        if let Some(i) = c.idle().filter(|i| !matches!(i, 0 | 1)) {
            return Err(bad("cpu.idle", format!("{i}: must be 0 or 1")));
        }
        for (name, v) in [("cpu.cpus", c.cpus()), ("cpu.mems", c.mems())] {
            if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
                if !valid_cpu_list(v) {
                    return Err(bad(name, format!("{v:?}: not a list like \"0-3,5\"")));
                }
            }
        }
    }
    if let Some(b) = r.block_io() {
        let weight = |name: &str, w: Option<u16>| match w {
            Some(w) if w != 0 && !(10..=1000).contains(&w) => {
                Err(bad(name, format!("{w}: must be 10..1000")))
            }
            _ => Ok(()),
        };
        weight("blockIO.weight", b.weight())?;
        weight("blockIO.leafWeight", b.leaf_weight())?;
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            let f = format!("blockIO.weightDevice[{i}]");
            device_numbers(&f, d.major(), d.minor())?;
            weight(&format!("{f}.weight"), d.weight())?;
            weight(&format!("{f}.leafWeight"), d.leaf_weight())?;
        }
        for (name, list) in throttles(b) {
            for (i, d) in list.iter().enumerate() {
                device_numbers(&format!("blockIO.{name}[{i}]"), d.major(), d.minor())?;
            }
        }
    }
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let f = format!("hugepageLimits[{i}]");
        let Some(kb) = hugepage_kb(h.page_size()) else {
            return Err(bad(
                &format!("{f}.pageSize"),
                format!("{:?}: not a size like \"2MB\" or \"1GB\"", h.page_size()),
            ));
        };
        if !Path::new(&format!("/sys/kernel/mm/hugepages/hugepages-{kb}kB")).exists() {
            return Err(bad(
                &format!("{f}.pageSize"),
                format!(
                    "{:?}: this host has no such huge page size (see /sys/kernel/mm/hugepages)",
                    h.page_size()
                ),
            ));
        }
        if h.limit() < 0 {
            return Err(bad(
                &format!("{f}.limit"),
                format!("{}: must be a number of bytes", h.limit()),
            ));
        }
    }
    if let Some(n) = r.network() {
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                return Err(bad(
                    &format!("network.priorities[{i}].name"),
                    format!("{:?}: not an interface name", p.name()),
                ));
            }
        }
    }
    for d in r.rdma().iter().flat_map(|m| m.keys()) {
        if d.is_empty() || d.contains(char::is_whitespace) {
            return Err(bad("rdma", format!("{d:?}: not an RDMA device name")));
        }
    }
    for key in r.unified().iter().flat_map(|m| m.keys()) {
        check_unified_key(key)?;
    }
    device_rules(r.devices().as_deref())?;
    Ok(())
}

pub(super) fn device_numbers(f: &str, major: i64, minor: i64) -> Result<()> {
    if major < 0 || minor < 0 || major > u32::MAX as i64 || minor > u32::MAX as i64 {
        return Err(bad(
            f,
            format!("{major}:{minor}: device numbers must be non-negative"),
        ));
    }
    Ok(())
}

/// The kernel's list format (bitmap_parselist): `N`, `N-M` and `N-M:used/group`, by commas.
pub(super) fn valid_cpu_list(s: &str) -> bool {
    s.trim().split(',').all(|part| {
        let (range, stride) = match part.trim().split_once(':') {
            Some((r, s)) => (r, Some(s)),
            None => (part.trim(), None),
        };
        let ok_range = match range.split_once('-') {
            None => range.parse::<u32>().is_ok() && stride.is_none(),
            Some((a, b)) => match (a.parse::<u32>(), b.parse::<u32>()) {
                (Ok(lo), Ok(hi)) => lo <= hi,
                _ => false,
            },
        };
        let ok_stride = stride.is_none_or(|s| {
            s.split_once('/').is_some_and(|(u, g)| {
                u.parse::<u32>().is_ok() && g.parse::<u32>().is_ok_and(|g| g > 0)
            })
        });
        ok_range && ok_stride
    })
}

/// "2MB" → 2048 (kB), the unit of /sys/kernel/mm/hugepages and of the cgroup file names.
pub(super) fn hugepage_kb(size: &str) -> Option<u64> {
    let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: u64 = digits.parse().ok()?;
    let kb = match &size[digits.len()..] {
        "KB" => n,
        "MB" => n.checked_mul(1 << 10)?,
        "GB" => n.checked_mul(1 << 20)?,
        _ => return None,
    };
    (n > 0 && kb.is_power_of_two()).then_some(kb)
}

/// Keys of `linux.resources.unified` are file names in the container's cgroup. A path, or a
/// file that moves or kills processes or changes the tree, would reach past the limits.
pub(super) fn check_unified_key(key: &str) -> Result<()> {
    let f = format!("unified.{key}");
    if key.is_empty() || key.contains('/') || key.contains('\0') || !key.contains('.') {
        return Err(bad(&f, "not a cgroup v2 file name like \"memory.high\""));
    }
    if matches!(
        key,
        "cgroup.procs"
            | "cgroup.threads"
            | "cgroup.subtree_control"
            | "cgroup.kill"
            | "cgroup.freeze"
            | "cgroup.type"
    ) {
        return Err(bad(
            &f,
            "manages processes or the tree, not a resource; vsrun does not write it",
        ));
    }
    Ok(())
}

pub(super) fn throttles(
    b: &oci_spec::runtime::LinuxBlockIo,
) -> [(&'static str, &[oci_spec::runtime::LinuxThrottleDevice]); 4] {
    fn l(
        v: &Option<Vec<oci_spec::runtime::LinuxThrottleDevice>>,
    ) -> &[oci_spec::runtime::LinuxThrottleDevice] {
        v.as_deref().unwrap_or_default()
    }
    [
        ("throttleReadBpsDevice", l(b.throttle_read_bps_device())),
        ("throttleWriteBpsDevice", l(b.throttle_write_bps_device())),
        ("throttleReadIOPSDevice", l(b.throttle_read_iops_device())),
        ("throttleWriteIOPSDevice", l(b.throttle_write_iops_device())),
    ]
}

/// The resources with runc's "unset" values removed: 0 for limits, shares, periods, weights
/// and pids; "" for cpusets; false for disableOOMKiller; true for useHierarchy; empty lists.
/// Devices are handled on their own and dropped here.
pub(super) fn normalize(r: &LinuxResources) -> LinuxResources {
    let mut n = LinuxResources::default();
    let nz_i = |v: Option<i64>| v.filter(|v| *v != 0);
    let nz_u = |v: Option<u64>| v.filter(|v| *v != 0);
    if let Some(m) = r.memory() {
        let mut m = m.clone();
        m.set_limit(nz_i(m.limit()));
        m.set_reservation(nz_i(m.reservation()));
        m.set_swap(nz_i(m.swap()));
        // docker 20.10 sends `"kernel": 0` in every update: 0 means unset, as for runc.
        m.set_kernel(nz_i(m.kernel()));
        m.set_kernel_tcp(nz_i(m.kernel_tcp()));
        m.set_disable_oom_killer(m.disable_oom_killer().filter(|d| *d));
        m.set_use_hierarchy(m.use_hierarchy().filter(|u| !*u));
        m.set_check_before_update(
            m.check_before_update()
                .filter(|c| *c && m.limit().is_some_and(|l| l > 0)),
        );
        if m != Default::default() {
            n.set_memory(Some(m));
        }
    }
    if let Some(c) = r.cpu() {
        let mut c = c.clone();
        c.set_shares(nz_u(c.shares()));
        c.set_quota(nz_i(c.quota()));
        c.set_period(nz_u(c.period()));
        c.set_realtime_runtime(nz_i(c.realtime_runtime()));
        c.set_realtime_period(nz_u(c.realtime_period()));
        c.set_cpus(c.cpus().clone().filter(|s| !s.trim().is_empty()));
        c.set_mems(c.mems().clone().filter(|s| !s.trim().is_empty()));
        if c != Default::default() {
            n.set_cpu(Some(c));
        }
    }
    n.set_pids(r.pids().filter(|p| p.limit() != 0));
    if let Some(b) = r.block_io() {
        let mut b = b.clone();
        b.set_weight(b.weight().filter(|w| *w != 0));
        b.set_leaf_weight(b.leaf_weight().filter(|w| *w != 0));
        let wd: Vec<_> = b
            .weight_device()
            .iter()
            .flatten()
            .filter_map(|d| {
                let (w, lw) = (
                    d.weight().filter(|w| *w != 0),
                    d.leaf_weight().filter(|w| *w != 0),
                );
                if w.is_none() && lw.is_none() {
                    return None;
                }
                let mut b = oci_spec::runtime::LinuxWeightDeviceBuilder::default()
                    .major(d.major())
                    .minor(d.minor());
                if let Some(w) = w {
                    b = b.weight(w);
                }
                if let Some(w) = lw {
                    b = b.leaf_weight(w);
                }
                b.build().ok()
            })
            .collect();
        b.set_weight_device((!wd.is_empty()).then_some(wd));
        let ne = |v: Option<Vec<_>>| v.filter(|v: &Vec<_>| !v.is_empty());
        b.set_throttle_read_bps_device(ne(b.throttle_read_bps_device().clone()));
        b.set_throttle_write_bps_device(ne(b.throttle_write_bps_device().clone()));
        b.set_throttle_read_iops_device(ne(b.throttle_read_iops_device().clone()));
        b.set_throttle_write_iops_device(ne(b.throttle_write_iops_device().clone()));
        if b != Default::default() {
            n.set_block_io(Some(b));
        }
    }
    n.set_hugepage_limits(r.hugepage_limits().clone().filter(|h| !h.is_empty()));
    if let Some(net) = r.network() {
        let mut net = net.clone();
        net.set_class_id(net.class_id().filter(|c| *c != 0));
        net.set_priorities(net.priorities().clone().filter(|p| !p.is_empty()));
        if net != Default::default() {
            n.set_network(Some(net));
        }
    }
    n.set_rdma(r.rdma().clone().filter(|m| !m.is_empty()));
    n.set_unified(r.unified().clone().filter(|m| !m.is_empty()));
    n
}
