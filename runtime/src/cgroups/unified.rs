//! `linux.resources.unified`: cgroup v2 files by name (`"memory.high": "1G"`), written by
//! libcgroups as given. The keys are file names already, so they need no row in the field
//! table: the controller is the name's first part.

use super::fields::Need;
use super::values::{bad, field};
use crate::error::Result;
use std::collections::HashMap;

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

/// Each key needs its own file in the container's cgroup, under the controller it names.
pub(super) fn needs(unified: &HashMap<String, String>) -> impl Iterator<Item = Need> + '_ {
    unified.keys().map(|key| {
        let controller: &'static str = match key.split('.').next().unwrap_or_default() {
            "cpu" => "cpu",
            "cpuset" => "cpuset",
            "memory" => "memory",
            "io" => "io",
            "pids" => "pids",
            "hugetlb" => "hugetlb",
            "rdma" => "rdma",
            "misc" => "misc",
            _ => "",
        };
        Need {
            field: field(&format!("unified.{key}")),
            controller,
            files: vec![key.clone()],
            missing: "no such file in the container's cgroup".into(),
        }
    })
}
