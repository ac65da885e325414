//! Under kubelet's systemd driver the cgroups are systemd's units: the pod's slice (made by
//! systemd from the scope's Slice=, where kubelet would start it) and one transient scope per
//! container, which vsrun asks systemd for. These checks read the units through systemctl, as
//! an administrator of the node would, next to the cgroup files host.rs reads.

use crate::pod::{Pod, MIB};
use crate::report::Report;

/// `systemctl show -p PROP UNIT`, e.g. `MemoryMax=134217728`.
fn show(unit: &str, prop: &str) -> String {
    match std::process::Command::new("systemctl")
        .args(["show", "-p", prop, unit])
        .output()
    {
        Ok(o) => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Err(e) => format!("<systemctl: {e}>"),
    }
}

/// The pod's slice is active while its sandbox runs, below kubepods-besteffort.slice.
pub fn pod_slice(pod: &Pod, r: &mut Report) {
    let slice = pod.cgroup_parent();
    r.equal(
        &format!("systemd: {slice} is active"),
        show(&slice, "ActiveState"),
        "ActiveState=active".into(),
    );
    r.equal(
        &format!("systemd: {slice} is in kubepods-besteffort.slice"),
        show(&slice, "Slice"),
        "Slice=kubepods-besteffort.slice".into(),
    );
}

/// A container's (or the sandbox's) scope: in the pod's slice, delegated, with the config's
/// memory limit as the unit's MemoryMax (None: the sandbox, which has no limit of its own).
pub fn scope(pod: &Pod, id: &str, name: &str, memory: Option<i64>, r: &mut Report) {
    let unit = pod.container_unit(id);
    r.equal(
        &format!("systemd: {name}'s {unit} is active"),
        show(&unit, "ActiveState"),
        "ActiveState=active".into(),
    );
    r.equal(
        &format!("systemd: {name}'s scope is in the pod's slice"),
        show(&unit, "Slice"),
        format!("Slice={}", pod.cgroup_parent()),
    );
    r.equal(
        &format!("systemd: {name}'s scope has Delegate=yes"),
        show(&unit, "Delegate"),
        "Delegate=yes".into(),
    );
    if let Some(m) = memory {
        r.equal(
            &format!("systemd: {name}'s scope has MemoryMax {} MiB", m / MIB),
            show(&unit, "MemoryMax"),
            format!("MemoryMax={m}"),
        );
    }
}

/// UpdateContainerResources changed the unit live, not only the cgroup files.
pub fn updated(pod: &Pod, id: &str, name: &str, r: &mut Report) {
    let unit = pod.container_unit(id);
    r.equal(
        &format!("systemd: update: {name}'s scope has MemoryMax 64 MiB"),
        show(&unit, "MemoryMax"),
        format!("MemoryMax={}", 64 * MIB),
    );
    r.equal(
        &format!("systemd: update: {name}'s scope has CPUQuota 50%"),
        show(&unit, "CPUQuotaPerSecUSec"),
        "CPUQuotaPerSecUSec=500ms".into(),
    );
}

/// After the shim's `vsrun delete` the scope is no unit at all (not even a failed one).
pub fn gone(pod: &Pod, id: &str, name: &str, r: &mut Report) {
    let unit = pod.container_unit(id);
    r.equal(
        &format!("systemd: {name}'s scope is gone"),
        show(&unit, "LoadState"),
        "LoadState=not-found".into(),
    );
}
