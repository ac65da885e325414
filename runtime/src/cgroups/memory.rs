//! `linux.resources.memory`: limit, reservation, swap, swappiness, disableOOMKiller,
//! checkBeforeUpdate and the deprecated kernel limits. libcgroups writes most of it; vsrun
//! writes v2 `swap == limit` (no swap) and unlimited swap alone, the v1 unlimited limit
//! without swap accounting, and the kernel limits (read back, a warning when not kept).

use super::apply::write_file;
use super::fields::{Field, Set};
use super::layout::Layout;
use super::values::{bad, field};
use crate::error::Result;
use oci_spec::runtime::{LinuxMemory, LinuxResources};
use std::io::Write;
use std::path::Path;

fn set(r: &LinuxResources, f: fn(&LinuxMemory) -> bool) -> Set {
    r.memory().as_ref().is_some_and(f).into()
}

pub(super) const FIELDS: &[Field] = &[
    Field {
        name: "memory.limit",
        controller: ["memory", "memory"],
        files: [&["memory.limit_in_bytes"], &["memory.max"]],
        missing: ["", ""],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |m| m.limit().is_some()),
    },
    Field {
        name: "memory.reservation",
        controller: ["memory", "memory"],
        files: [&["memory.soft_limit_in_bytes"], &["memory.low"]],
        missing: ["", ""],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |m| m.reservation().is_some()),
    },
    Field {
        name: "memory.swap",
        controller: ["memory", "memory"],
        files: [&["memory.memsw.limit_in_bytes"], &["memory.swap.max"]],
        missing: [
            "swap accounting is off (memory.memsw.* missing; boot with swapaccount=1)",
            "swap accounting is off (memory.swap.max missing)",
        ],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |m| m.swap().is_some()),
    },
    Field {
        name: "memory.swappiness",
        controller: ["memory", "memory"],
        files: [&["memory.swappiness"], &[]],
        missing: ["", "v2 has no per-cgroup swappiness"],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |m| m.swappiness().is_some()),
    },
    Field {
        name: "memory.disableOOMKiller",
        controller: ["memory", "memory"],
        files: [&["memory.oom_control"], &[]],
        missing: ["", "v2 has no switch for the OOM killer"],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |m| m.disable_oom_killer().is_some()),
    },
    Field {
        name: "memory.checkBeforeUpdate",
        controller: ["memory", "memory"],
        files: [&["memory.usage_in_bytes"], &["memory.current"]],
        missing: ["", ""],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |m| m.check_before_update().is_some()),
    },
    // Not checked: a host without the file drops the field with a warning (plan, update).
    Field {
        name: "memory.kernel",
        controller: ["memory", "memory"],
        files: [&["memory.kmem.limit_in_bytes"], &[]],
        missing: ["", ""],
        tag: ["", ""],
        checked: false,
        set: |r| set(r, |m| m.kernel().is_some()),
    },
    Field {
        name: "memory.kernelTCP",
        controller: ["memory", "memory"],
        files: [&["memory.kmem.tcp.limit_in_bytes"], &[]],
        missing: ["", ""],
        tag: ["", ""],
        checked: false,
        set: |r| set(r, |m| m.kernel_tcp().is_some()),
    },
];

/// What is wrong with a value, whatever the host.
pub(super) fn validate(m: &LinuxMemory) -> Result<()> {
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
    Ok(())
}

/// runc's "unset" values taken out: 0 limits, false disableOOMKiller, true useHierarchy.
pub(super) fn normalize(m: &LinuxMemory) -> Option<LinuxMemory> {
    let nz_i = |v: Option<i64>| v.filter(|v| *v != 0);
    let mut m = *m;
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
    (m != Default::default()).then_some(m)
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
    let dir = layout.dir_for("memory", path, "memory.checkBeforeUpdate")?;
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

/// What libcgroups 0.7 does not write, or writes wrongly; `check_host` made sure the files
/// exist.
pub(super) fn write_own(m: &LinuxMemory, layout: &Layout, path: &Path) -> Result<()> {
    let dir = layout.dir_for("memory", path, "memory")?;
    let v2 = layout.is_v2();
    // v2: swap equal to the limit means no swap: memory.swap.max 0 (libcgroups writes
    // nothing for a 0).
    // Both -1 is no limit at all, which libcgroups writes (max).
    if v2 && m.swap().is_some() && m.swap() == m.limit() && m.limit() != Some(-1) {
        write_file("memory.swap", &dir, "memory.swap.max", "0")?;
    }
    if v2 && m.swap() == Some(-1) && m.limit().is_none() {
        write_file("memory.swap", &dir, "memory.swap.max", "max")?;
    }
    if let Some(k) = m.kernel().filter(|_| !v2) {
        write_kernel_limit("memory.kernel", &dir, "memory.kmem.limit_in_bytes", k)?;
    }
    if let Some(k) = m.kernel_tcp().filter(|_| !v2) {
        write_kernel_limit(
            "memory.kernelTCP",
            &dir,
            "memory.kmem.tcp.limit_in_bytes",
            k,
        )?;
    }
    let memsw = dir.join("memory.memsw.limit_in_bytes").exists();
    if !v2 && m.limit() == Some(-1) && m.swap().is_none() && !memsw {
        write_file("memory.limit", &dir, "memory.limit_in_bytes", "-1")?;
    }
    Ok(())
}
