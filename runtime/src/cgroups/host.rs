//! `linux.resources` against the host: fields the hierarchy cannot have, and the controller
//! and files each set field needs (the field table, fields.rs, plus the `unified` keys).

use super::fields::{table_needs, v1_only, Need};
use super::layout::Layout;
use super::paths::rel;
use super::values::bad;
use super::{blkio, unified, CGROUP_ROOT};
use crate::error::{config, Result};
use oci_spec::runtime::LinuxResources;
use std::path::Path;

/// Fields that need the other cgroup version whatever the kernel: refused before the clone.
pub(super) fn refuse_for_layout(n: &LinuxResources, layout: &Layout) -> Result<()> {
    let kind = layout.describe();
    if !layout.is_v2() {
        if n.unified().is_some() {
            return Err(bad(
                "unified",
                format!("needs cgroup v2, this host is {kind}"),
            ));
        }
        return Ok(());
    }
    match v1_only(n) {
        Some((f, why)) => Err(config(
            f,
            format!("needs cgroup v1 ({why}); this host is {kind}"),
        )),
        None => Ok(()),
    }
}

/// Every set field, the controller and files it needs, and why they would be missing.
pub(super) fn needs(n: &LinuxResources, v2: bool) -> Vec<Need> {
    let mut out = table_needs(n, v2);
    if let Some(u) = n.unified() {
        out.extend(unified::needs(u));
    }
    out
}

/// Every set field against the files of the container's (existing) cgroup.
pub(super) fn check_host(n: &LinuxResources, layout: &Layout, path: &Path) -> Result<()> {
    let kind = layout.describe();
    let v2_available = match layout {
        Layout::V2 => {
            let dir = Path::new(CGROUP_ROOT).join(rel(path));
            std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default()
        }
        Layout::V1 { .. } => String::new(),
    };
    for need in needs(n, layout.is_v2()) {
        if !need.controller.is_empty() {
            let present = match layout {
                Layout::V2 => v2_available
                    .split_whitespace()
                    .any(|c| c == need.controller),
                Layout::V1 { .. } => layout.dir(need.controller, path).is_some(),
            };
            if !present {
                let why = match layout {
                    Layout::V2 => format!(
                        "the {} controller is not enabled for {} ({kind}: see the parent's cgroup.subtree_control)",
                        need.controller,
                        path.display()
                    ),
                    Layout::V1 { .. } => format!(
                        "the {} controller is not mounted on this host ({kind})",
                        need.controller
                    ),
                };
                return Err(config(need.field, why));
            }
        }
        let Some(dir) = layout.dir(need.controller, path) else {
            continue;
        };
        if need.files.is_empty() || need.files.iter().any(|f| dir.join(f).exists()) {
            continue;
        }
        let why = if need.missing.is_empty() {
            format!("this kernel has no {} ({kind})", need.files.join(" or "))
        } else {
            need.missing
        };
        return Err(config(need.field, why));
    }
    match n.block_io() {
        Some(b) => blkio::check_devices_exist(b),
        None => Ok(()),
    }
}
