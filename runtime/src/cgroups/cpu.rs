//! `linux.resources.cpu`: shares, quota, period, burst, realtime runtime and period, idle
//! (cpu controller) and cpus, mems (cpuset controller). libcgroups writes them, except v1
//! `cpu.burst`, which it skips unless another cpu field is set.

use super::apply::write_file;
use super::fields::{Field, Set};
use super::layout::Layout;
use super::values::bad;
use super::CGROUP_ROOT;
use crate::error::{config, Result};
use oci_spec::runtime::{LinuxCpu, LinuxResources};
use std::path::Path;

fn set(r: &LinuxResources, f: fn(&LinuxCpu) -> bool) -> Set {
    r.cpu().as_ref().is_some_and(f).into()
}

const RT: &str = "this kernel has no realtime group scheduling (CONFIG_RT_GROUP_SCHED)";
const RT_V2: &str = "v2 has no realtime bandwidth control";

pub(super) const FIELDS: &[Field] = &[
    Field {
        name: "cpu.shares",
        controller: ["cpu", "cpu"],
        files: [&["cpu.shares"], &["cpu.weight"]],
        missing: ["", ""],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |c| c.shares().is_some()),
    },
    // Before cpu.period: a refused v2 cpu.max write belongs to the quota when there is one.
    Field {
        name: "cpu.quota",
        controller: ["cpu", "cpu"],
        files: [&["cpu.cfs_quota_us"], &["cpu.max"]],
        missing: ["", ""],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |c| c.quota().is_some()),
    },
    Field {
        name: "cpu.period",
        controller: ["cpu", "cpu"],
        files: [&["cpu.cfs_period_us"], &["cpu.max"]],
        missing: ["", ""],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |c| c.period().is_some()),
    },
    Field {
        name: "cpu.burst",
        controller: ["cpu", "cpu"],
        files: [&["cpu.cfs_burst_us"], &["cpu.max.burst"]],
        missing: [
            "this kernel has no CPU burst (needs Linux 5.14+)",
            "this kernel has no CPU burst (needs Linux 5.14+)",
        ],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |c| c.burst().is_some()),
    },
    Field {
        name: "cpu.realtimeRuntime",
        controller: ["cpu", "cpu"],
        files: [&["cpu.rt_runtime_us"], &[]],
        missing: [RT, RT_V2],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |c| c.realtime_runtime().is_some()),
    },
    Field {
        name: "cpu.realtimePeriod",
        controller: ["cpu", "cpu"],
        files: [&["cpu.rt_period_us"], &[]],
        missing: [RT, RT_V2],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |c| c.realtime_period().is_some()),
    },
    Field {
        name: "cpu.idle",
        controller: ["cpu", "cpu"],
        files: [&["cpu.idle"], &["cpu.idle"]],
        missing: [
            "this kernel has no SCHED_IDLE cgroups (needs Linux 5.15+)",
            "this kernel has no SCHED_IDLE cgroups (needs Linux 5.15+)",
        ],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |c| c.idle().is_some()),
    },
    Field {
        name: "cpu.cpus",
        controller: ["cpuset", "cpuset"],
        files: [&["cpuset.cpus"], &["cpuset.cpus"]],
        missing: ["", ""],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |c| c.cpus().is_some()),
    },
    Field {
        name: "cpu.mems",
        controller: ["cpuset", "cpuset"],
        files: [&["cpuset.mems"], &["cpuset.mems"]],
        missing: ["", ""],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |c| c.mems().is_some()),
    },
];

/// What is wrong with a value, whatever the host.
pub(super) fn validate(c: &LinuxCpu) -> Result<()> {
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

/// runc's "unset" values taken out: 0 shares, quota, periods and runtimes, "" cpusets.
pub(super) fn normalize(c: &LinuxCpu) -> Option<LinuxCpu> {
    let nz_i = |v: Option<i64>| v.filter(|v| *v != 0);
    let nz_u = |v: Option<u64>| v.filter(|v| *v != 0);
    let mut c = c.clone();
    c.set_shares(nz_u(c.shares()));
    c.set_quota(nz_i(c.quota()));
    c.set_period(nz_u(c.period()));
    c.set_realtime_runtime(nz_i(c.realtime_runtime()));
    c.set_realtime_period(nz_u(c.realtime_period()));
    c.set_cpus(c.cpus().clone().filter(|s| !s.trim().is_empty()));
    c.set_mems(c.mems().clone().filter(|s| !s.trim().is_empty()));
    (c != Default::default()).then_some(c)
}

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

/// v1 `cpu.burst` alone: libcgroups writes it only along with another cpu field.
pub(super) fn write_own(c: &LinuxCpu, layout: &Layout, path: &Path) -> Result<()> {
    if let Some(burst) = c.burst().filter(|_| !layout.is_v2()) {
        let dir = layout.dir_for("cpu", path, "cpu.burst")?;
        write_file("cpu.burst", &dir, "cpu.cfs_burst_us", &burst.to_string())?;
    }
    Ok(())
}
