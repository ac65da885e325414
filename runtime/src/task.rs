//! Per-task kernel attributes from the config: scheduler (`process.scheduler`), I/O priority
//! (`process.ioPriority`), CPU affinity (`process.execCPUAffinity`), NUMA memory policy
//! (`linux.memoryPolicy`) and execution domain (`linux.personality`). Parsed and checked in
//! the parent; the init applies them with one syscall each, while it still holds the
//! capabilities that real-time classes need.

use crate::error::{config, Result, StepExt};
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType,
    Scheduler, Spec,
};

#[derive(Default, Debug)]
pub struct Plan {
    sched: Option<SchedAttr>,
    ioprio: Option<i32>,
    affinity_initial: Option<Vec<usize>>,
    affinity_final: Option<Vec<usize>>,
    mempolicy: Option<(i32, Vec<u64>)>,
    personality: Option<u64>,
}

use crate::syscall::task::{self as sys, SchedAttr};

pub fn plan(spec: &Spec) -> Result<Plan> {
    let mut p = Plan::default();
    if let Some(process) = spec.process() {
        p.sched = process
            .scheduler()
            .as_ref()
            .map(plan_scheduler)
            .transpose()?;
        p.ioprio = process
            .io_priority()
            .as_ref()
            .map(plan_ioprio)
            .transpose()?;
        if let Some(a) = process.exec_cpu_affinity() {
            if let Some(s) = a.initial() {
                p.affinity_initial = Some(cpu_list("process.execCPUAffinity.initial", s)?);
            }
            if let Some(s) = a.cpu_affinity_final() {
                p.affinity_final = Some(cpu_list("process.execCPUAffinity.final", s)?);
            }
        }
    }
    if let Some(linux) = spec.linux() {
        p.mempolicy = linux
            .memory_policy()
            .as_ref()
            .map(plan_mempolicy)
            .transpose()?;
        p.personality = linux
            .personality()
            .as_ref()
            .map(plan_personality)
            .transpose()?;
    }
    Ok(p)
}

/// process.scheduler → sched_setattr(2)'s struct.
fn plan_scheduler(s: &Scheduler) -> Result<SchedAttr> {
    use LinuxSchedulerPolicy::*;
    let policy = match s.policy() {
        SchedOther => 0,
        SchedFifo => 1,
        SchedRr => 2,
        SchedBatch => 3,
        SchedIso => 4,
        SchedIdle => 5,
        SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        use LinuxSchedulerFlag::*;
        flags |= match f {
            SchedResetOnFork => 0x01,
            SchedFlagReclaim => 0x02,
            SchedFlagDLOverrun => 0x04,
            SchedFlagKeepPolicy => 0x08,
            SchedFlagKeepParams => 0x10,
            SchedFlagUtilClampMin => 0x20,
            SchedFlagUtilClampMax => 0x40,
        };
    }
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(config(
            "process.scheduler.nice",
            format!("{nice} is outside -20..19"),
        ));
    }
    let prio = s.priority().unwrap_or(0);
    if (policy == 1 || policy == 2) && !(1..=99).contains(&prio) {
        return Err(config(
            "process.scheduler.priority",
            format!("{prio}: SCHED_FIFO and SCHED_RR need 1..99"),
        ));
    }
    Ok(SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice,
        priority: prio.max(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    })
}

/// process.ioPriority → ioprio_set(2)'s value (class << 13 | level).
fn plan_ioprio(io: &LinuxIOPriority) -> Result<i32> {
    let class = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let prio = io.priority();
    if !(0..=7).contains(&prio) {
        return Err(config(
            "process.ioPriority.priority",
            format!("{prio} is outside 0..7"),
        ));
    }
    Ok((class << 13) | prio as i32)
}

/// linux.memoryPolicy → set_mempolicy(2)'s mode (with flags) and node mask.
fn plan_mempolicy(m: &LinuxMemoryPolicy) -> Result<(i32, Vec<u64>)> {
    use MemoryPolicyModeType::*;
    let mode = match m.mode() {
        MpolDefault => 0,
        MpolPreferred => 1,
        MpolBind => 2,
        MpolInterleave => 3,
        MpolLocal => 4,
        MpolPreferredMany => 5,
        MpolWeightedInterleave => 6,
    };
    let mut flags = 0i32;
    for f in m.flags().iter().flatten() {
        flags |= match f {
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
        };
    }
    let nodes = match m.nodes().as_deref() {
        Some(n) if !n.is_empty() => cpu_list("linux.memoryPolicy.nodes", n)?,
        _ => Vec::new(),
    };
    if (mode == 0 || mode == 4) && !nodes.is_empty() {
        return Err(config(
            "linux.memoryPolicy.nodes",
            "must be empty for MPOL_DEFAULT and MPOL_LOCAL",
        ));
    }
    if matches!(mode, 2 | 3 | 5 | 6) && nodes.is_empty() {
        return Err(config("linux.memoryPolicy.nodes", "this mode needs nodes"));
    }
    let mut mask = vec![0u64; nodes.iter().max().map_or(1, |m| m / 64 + 1)];
    for n in nodes {
        mask[n / 64] |= 1 << (n % 64);
    }
    Ok((mode | flags, mask))
}

/// linux.personality → personality(2)'s domain.
fn plan_personality(pers: &LinuxPersonality) -> Result<u64> {
    if pers.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(config(
            "linux.personality.flags",
            "no flags are supported (runc supports none either)",
        ));
    }
    Ok(match pers.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    })
}

/// "0-3,7" → [0,1,2,3,7].
pub(crate) fn cpu_list(field: &str, s: &str) -> Result<Vec<usize>> {
    let bad = || config(field, format!("{s:?}: expected a list like 0-3,7"));
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a > b || b >= 8192 {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    Ok(out)
}

fn set_affinity(cpus: &[usize], field: &str) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for &c in cpus {
        set.set(c).step(|| format!("cpu {c} ({field})"))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .step(|| format!("sched_setaffinity ({field})"))
}

/// Early in the init: what must happen while it still has every capability.
pub fn apply_early(p: &Plan) -> Result<()> {
    if let Some(cpus) = &p.affinity_initial {
        set_affinity(cpus, "process.execCPUAffinity.initial")?;
    }
    if let Some(attr) = &p.sched {
        sys::sched_setattr(attr).step(|| "sched_setattr (process.scheduler)".into())?;
    }
    if let Some(v) = p.ioprio {
        sys::ioprio_set(v).step(|| "ioprio_set (process.ioPriority)".into())?;
    }
    if let Some((mode, mask)) = &p.mempolicy {
        sys::set_mempolicy(*mode, mask).step(|| "set_mempolicy (linux.memoryPolicy)".into())?;
    }
    Ok(())
}

/// Right before execve: the final affinity and the execution domain.
pub fn apply_final(p: &Plan) -> Result<()> {
    if let Some(cpus) = &p.affinity_final {
        set_affinity(cpus, "process.execCPUAffinity.final")?;
    }
    if let Some(pers) = p.personality {
        sys::personality(pers).step(|| "personality (linux.personality)".into())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_lists_parse_ranges_and_reject_garbage() {
        assert_eq!(super::cpu_list("f", "0-2,5").unwrap(), vec![0, 1, 2, 5]);
        for bad in ["", "3-1", "a", "0-", "99999"] {
            assert!(super::cpu_list("f", bad).is_err(), "{bad}");
        }
    }
}
