//! `linux.resources.pids`: `limit` is the most tasks the container's cgroup may hold
//! (`pids.max` on v1 and v2; the fork or clone past it fails with EAGAIN). A limit of 0 is
//! runc's "unset" and a negative one (-1) is "max", no limit. libcgroups writes the file
//! (cgroupfs: `apply::apply_rest`; systemd: `systemd::apply_systemd`, TasksMax); vsrun checks
//! before the clone that the controller and file are there (`host::check_host`, by this row).

use super::fields::{Field, Set};
use oci_spec::runtime::{LinuxPids, LinuxResources};

pub(super) const FIELDS: &[Field] = &[Field {
    name: "pids.limit",
    controller: ["pids", "pids"],
    files: [&["pids.max"], &["pids.max"]],
    missing: ["", ""],
    tag: ["", ""],
    checked: true,
    set: |r| Set::from(r.pids().is_some()),
}];

/// Any `limit` is a valid value: nothing to check whatever the host.
pub(super) fn validate(_: &LinuxPids) -> crate::error::Result<()> {
    Ok(())
}

/// runc's "unset": a limit of 0 is no field at all.
pub(super) fn normalize(r: &LinuxResources) -> Option<LinuxPids> {
    r.pids().filter(|p| p.limit() != 0)
}
