//! `vsrun update`: new `linux.resources` for a running container, from `--resources FILE`
//! (`-` reads stdin, which docker uses) or from runc's individual flags.

use crate::bundle;
use crate::cli::{GlobalOpts, UpdateArgs};
use crate::error::{config, Result};
use crate::state::{Container, Status};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use std::io::Read;

pub fn run(g: &GlobalOpts, args: &UpdateArgs) -> Result<i32> {
    let c = Container::open(&g.root, &args.id)?;
    let st = c.load()?;
    if crate::state::status(&c.dir, &st) == Status::Stopped {
        return Err(crate::error::state(format!(
            "cannot update container {:?}: it has stopped",
            args.id
        )));
    }
    let disk = disk_limits(args, &st)?;
    let r = resources(args)?;
    // Everything is parsed and checked above; now no update is half-applied. The disk limits
    // go first, because they can be put back exactly: a cgroup update that fails after them
    // (a check, or a value the kernel refuses) restores the limits read before.
    let undo = disk.map(set_disk_limits).transpose()?;
    if undo.is_none() || r != LinuxResources::default() {
        let applied =
            crate::cgroups::update(&st.cgroup_path, st.systemd_cgroup, &st.id, &r, st.rootless);
        if let (Err(_), Some(undo)) = (&applied, undo) {
            restore_disk_limits(undo);
        }
        applied?;
    }
    Ok(0)
}

type DiskLimits<'a> = (&'a crate::disk::Quota, Option<u64>, Option<u64>);

/// Set the new hard limits; what they were, for `restore_disk_limits`. Limits that cannot be
/// read cannot be put back, so that refuses the update before anything changes.
fn set_disk_limits((q, bytes, inodes): DiskLimits<'_>) -> Result<DiskLimits<'_>> {
    let Some(old) = crate::disk::usage(q) else {
        return Err(crate::error::state(format!(
            "read the disk limits of project {} ({}): is the container's file system mounted here?",
            q.project,
            q.tree.display()
        )));
    };
    crate::disk::set_limits(q, bytes, inodes)?;
    Ok((q, bytes.map(|_| old.limit), inodes.map(|_| old.inode_limit)))
}

fn restore_disk_limits((q, bytes, inodes): DiskLimits<'_>) {
    if let Err(e) = crate::disk::set_limits(q, bytes, inodes) {
        crate::log::warn(&format!(
            "update failed and the disk limits it had set stay: {e}"
        ));
    }
}

/// --disk-limit / --disk-inodes, checked before anything changes: the project quota's new
/// hard limits (disk/), for a container created with a disk limit.
fn disk_limits<'a>(
    args: &UpdateArgs,
    st: &'a crate::state::State,
) -> Result<Option<DiskLimits<'a>>> {
    let flag = match (&args.disk_limit, args.disk_inodes) {
        (None, None) => return Ok(None),
        (Some(_), _) => "--disk-limit",
        (None, Some(_)) => "--disk-inodes",
    };
    let bytes = args
        .disk_limit
        .as_deref()
        .map(crate::disk::parse_size)
        .transpose()
        .map_err(|m| config("--disk-limit", m))?;
    if args.disk_inodes == Some(0) {
        return Err(config("--disk-inodes", "0: must be more than 0"));
    }
    let Some(q) = &st.disk else {
        return Err(config(
            flag,
            format!(
                "container {:?} was created without annotation {}",
                st.id,
                crate::disk::ANNOTATION
            ),
        ));
    };
    Ok(Some((q, bytes, args.disk_inodes)))
}

fn resources(args: &UpdateArgs) -> Result<LinuxResources> {
    refuse_intel_rdt(args)?;
    warn_kernel_memory(args);
    let mut r = match &args.resources {
        Some(p) if p.as_os_str() == "-" => {
            let mut data = Vec::new();
            std::io::stdin()
                .read_to_end(&mut data)
                .map_err(|e| config("--resources", format!("stdin: {e}")))?;
            bundle::parse_json::<LinuxResources>(&data, "resources")?
        }
        Some(p) => {
            let data = std::fs::read(p)
                .map_err(|e| config("--resources", format!("{}: {e}", p.display())))?;
            bundle::parse_json::<LinuxResources>(&data, "resources")?
        }
        None => LinuxResources::default(),
    };
    let mut mem = (*r.memory()).unwrap_or_default();
    if let Some(v) = &args.memory {
        mem.set_limit(Some(bytes("--memory", v)?));
    }
    if let Some(v) = &args.memory_reservation {
        mem.set_reservation(Some(bytes("--memory-reservation", v)?));
    }
    if let Some(v) = &args.memory_swap {
        mem.set_swap(Some(bytes("--memory-swap", v)?));
    }
    if mem != LinuxMemory::default() {
        r.set_memory(Some(mem));
    }
    let mut cpu = r.cpu().clone().unwrap_or_default();
    if args.cpu_shares.is_some() {
        cpu.set_shares(args.cpu_shares);
    }
    if args.cpu_period.is_some() {
        cpu.set_period(args.cpu_period);
    }
    if args.cpu_quota.is_some() {
        cpu.set_quota(args.cpu_quota);
    }
    if args.cpu_rt_period.is_some() {
        cpu.set_realtime_period(args.cpu_rt_period);
    }
    if args.cpu_rt_runtime.is_some() {
        cpu.set_realtime_runtime(args.cpu_rt_runtime);
    }
    if args.cpuset_cpus.is_some() {
        cpu.set_cpus(args.cpuset_cpus.clone());
    }
    if args.cpuset_mems.is_some() {
        cpu.set_mems(args.cpuset_mems.clone());
    }
    if cpu != LinuxCpu::default() {
        r.set_cpu(Some(cpu));
    }
    if let Some(limit) = args.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(limit);
        r.set_pids(Some(p));
    }
    if let Some(w) = args.blkio_weight {
        if !(10..=1000).contains(&w) {
            return Err(config("--blkio-weight", format!("{w}: must be 10..1000")));
        }
        let mut b = r.block_io().clone().unwrap_or_else(LinuxBlockIo::default);
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

/// linux.intelRdt is refused at create (resctrl is not supported), so no container has a
/// schema to change; runc also fails when the container has no Intel RDT config.
fn refuse_intel_rdt(args: &UpdateArgs) -> Result<()> {
    for (flag, v) in [
        ("--l3-cache-schema", &args.l3_cache_schema),
        ("--mem-bw-schema", &args.mem_bw_schema),
    ] {
        if v.is_some() {
            return Err(config(flag, "Intel RDT (resctrl) is not supported"));
        }
    }
    Ok(())
}

/// runc 1.1 still takes these flags and ignores them with a warning: the kernel stopped
/// enforcing kernel memory limits (5.4 deprecated them), and scripts still pass them.
fn warn_kernel_memory(args: &UpdateArgs) {
    for (flag, v) in [
        ("--kernel-memory", &args.kernel_memory),
        ("--kernel-memory-tcp", &args.kernel_memory_tcp),
    ] {
        if v.is_some() {
            crate::log::warn(&format!("{flag}: kernel memory settings are ignored"));
        }
    }
}

/// runc's memory flags take bytes with an optional binary suffix (`512m`, `1g`); -1 means
/// unlimited.
fn bytes(flag: &str, v: &str) -> Result<i64> {
    if v.trim() == "-1" {
        return Ok(-1);
    }
    crate::units::parse_bytes(v)
        .and_then(|n| i64::try_from(n).map_err(|_| format!("{v:?}: too large")))
        .map_err(|m| config(flag, m))
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_sizes_take_binary_suffixes() {
        assert_eq!(super::bytes("m", "512m").unwrap(), 512 << 20);
        assert_eq!(super::bytes("m", "1G").unwrap(), 1 << 30);
        assert_eq!(super::bytes("m", "4096").unwrap(), 4096);
        assert_eq!(super::bytes("m", "-1").unwrap(), -1);
        assert!(super::bytes("m", "lots").is_err());
        assert!(super::bytes("m", "8589934592T").is_err());
    }
}
