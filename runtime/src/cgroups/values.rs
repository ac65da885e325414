//! `linux.resources` values checked whatever the host (before the clone), and runc's "unset"
//! values taken out: one call per controller file.

use super::devices::device_rules;
use super::{blkio, cpu, hugetlb, memory, network, pids, rdma, unified};
use crate::error::{config, Error, Result};
use oci_spec::runtime::LinuxResources;

pub(super) fn field(f: &str) -> String {
    format!("linux.resources.{f}")
}

pub(super) fn bad(f: &str, msg: impl Into<String>) -> Error {
    config(field(f), msg)
}

/// What is wrong with a value, whatever the host. Zero values that mean "unset" pass.
pub(super) fn validate(r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        memory::validate(m)?;
    }
    if let Some(c) = r.cpu() {
        cpu::validate(c)?;
    }
    if let Some(p) = r.pids() {
        pids::validate(p)?;
    }
    if let Some(b) = r.block_io() {
        blkio::validate(b)?;
    }
    hugetlb::validate(r.hugepage_limits().as_deref().unwrap_or_default())?;
    if let Some(n) = r.network() {
        network::validate(n)?;
    }
    if let Some(m) = r.rdma() {
        rdma::validate(m)?;
    }
    for key in r.unified().iter().flat_map(|m| m.keys()) {
        unified::check_unified_key(key)?;
    }
    device_rules(r.devices().as_deref())?;
    Ok(())
}

/// The resources with runc's "unset" values removed: 0 for limits, shares, periods, weights
/// and pids; "" for cpusets; false for disableOOMKiller; true for useHierarchy; empty lists.
/// Devices are handled on their own and dropped here.
pub(super) fn normalize(r: &LinuxResources) -> LinuxResources {
    let mut n = LinuxResources::default();
    n.set_memory(r.memory().as_ref().and_then(memory::normalize));
    n.set_cpu(r.cpu().as_ref().and_then(cpu::normalize));
    n.set_pids(pids::normalize(r));
    n.set_block_io(r.block_io().as_ref().and_then(blkio::normalize));
    n.set_hugepage_limits(r.hugepage_limits().clone().filter(|h| !h.is_empty()));
    n.set_network(r.network().as_ref().and_then(network::normalize));
    n.set_rdma(r.rdma().clone().filter(|m| !m.is_empty()));
    n.set_unified(r.unified().clone().filter(|m| !m.is_empty()));
    n
}
