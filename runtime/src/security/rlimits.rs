//! process.rlimits, applied with prlimit in the init before it gives up CAP_SYS_RESOURCE.

use crate::error::{config, Result, StepExt};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

#[derive(Debug, Clone, Copy)]
pub struct Rlimit {
    pub resource: libc::__rlimit_resource_t,
    pub soft: u64,
    pub hard: u64,
}

fn resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub fn plan(list: &[PosixRlimit]) -> Result<Vec<Rlimit>> {
    let mut out: Vec<Rlimit> = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let field = format!("process.rlimits[{i}]");
        if r.soft() > r.hard() {
            return Err(config(
                field,
                format!("soft limit {} exceeds hard limit {}", r.soft(), r.hard()),
            ));
        }
        let resource = resource(r.typ());
        if out.iter().any(|o| o.resource == resource) {
            return Err(config(
                field,
                format!("duplicate rlimit type {:?}", r.typ()),
            ));
        }
        out.push(Rlimit {
            resource,
            soft: r.soft(),
            hard: r.hard(),
        });
    }
    Ok(out)
}

pub fn apply(list: &[Rlimit]) -> Result<()> {
    for r in list {
        crate::syscall::proc::set_rlimit(r.resource, r.soft, r.hard)
            .step(|| format!("setrlimit resource {} to {}:{}", r.resource, r.soft, r.hard))?;
    }
    Ok(())
}
