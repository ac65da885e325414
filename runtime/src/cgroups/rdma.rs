//! `linux.resources.rdma`: per device, the most HCA handles and objects (`rdma.max`, v1 and
//! v2). vsrun writes it; libcgroups 0.7 does not.

use super::apply::write_file;
use super::fields::{Field, Set};
use super::layout::Layout;
use super::values::bad;
use crate::error::Result;
use oci_spec::runtime::{LinuxRdma, LinuxResources};
use std::collections::HashMap;
use std::path::Path;

pub(super) const FIELDS: &[Field] = &[Field {
    name: "rdma",
    controller: ["rdma", "rdma"],
    files: [&["rdma.max"], &["rdma.max"]],
    missing: ["", ""],
    tag: ["", ""],
    checked: true,
    set: |r: &LinuxResources| Set::from(r.rdma().is_some()),
}];

/// Each key names a device.
pub(super) fn validate(rdma: &HashMap<String, LinuxRdma>) -> Result<()> {
    for d in rdma.keys() {
        if d.is_empty() || d.contains(char::is_whitespace) {
            return Err(bad("rdma", format!("{d:?}: not an RDMA device name")));
        }
    }
    Ok(())
}

/// One line per device, in name order; a device with neither limit is left alone.
pub(super) fn write_own(
    rdma: &HashMap<String, LinuxRdma>,
    layout: &Layout,
    path: &Path,
) -> Result<()> {
    let mut rdma: Vec<_> = rdma.iter().collect();
    rdma.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, l) in rdma {
        let mut v = dev.clone();
        if let Some(h) = l.hca_handles() {
            v.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            v.push_str(&format!(" hca_object={o}"));
        }
        if v != *dev {
            let f = format!("rdma.{dev}");
            write_file(&f, &layout.dir_for("rdma", path, &f)?, "rdma.max", &v)?;
        }
    }
    Ok(())
}
