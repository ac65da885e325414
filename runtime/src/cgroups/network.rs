//! `linux.resources.network`: v1 only (net_cls `classID`, net_prio `priorities`; v2 has
//! neither controller). vsrun writes both: libcgroups 0.7 writes only the first priority.

use super::apply::write_file;
use super::fields::{Field, Set};
use super::layout::Layout;
use super::values::bad;
use crate::error::Result;
use oci_spec::runtime::{LinuxNetwork, LinuxResources};
use std::path::Path;

fn set(r: &LinuxResources, f: fn(&LinuxNetwork) -> bool) -> Set {
    r.network().as_ref().is_some_and(f).into()
}

pub(super) const FIELDS: &[Field] = &[
    Field {
        name: "network.classID",
        controller: ["net_cls", "net_cls"],
        files: [&["net_cls.classid"], &[]],
        missing: ["", "net_cls; v2 classifies traffic with BPF"],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |n| n.class_id().is_some()),
    },
    Field {
        name: "network.priorities",
        controller: ["net_prio", "net_prio"],
        files: [&["net_prio.ifpriomap"], &[]],
        missing: ["", "net_prio; v2 has no such controller"],
        tag: ["", ""],
        checked: true,
        set: |r| set(r, |n| n.priorities().is_some()),
    },
];

/// Each priority names an interface.
pub(super) fn validate(n: &LinuxNetwork) -> Result<()> {
    for (i, p) in n.priorities().iter().flatten().enumerate() {
        if p.name().is_empty() || p.name().contains(char::is_whitespace) {
            return Err(bad(
                &format!("network.priorities[{i}].name"),
                format!("{:?}: not an interface name", p.name()),
            ));
        }
    }
    Ok(())
}

/// runc's "unset": classID 0, an empty priority list.
pub(super) fn normalize(net: &LinuxNetwork) -> Option<LinuxNetwork> {
    let mut net = net.clone();
    net.set_class_id(net.class_id().filter(|c| *c != 0));
    net.set_priorities(net.priorities().clone().filter(|p| !p.is_empty()));
    (net != Default::default()).then_some(net)
}

pub(super) fn write_own(net: &LinuxNetwork, layout: &Layout, path: &Path) -> Result<()> {
    if let Some(id) = net.class_id() {
        let f = "network.classID";
        let dir = layout.dir_for("net_cls", path, f)?;
        write_file(f, &dir, "net_cls.classid", &id.to_string())?;
    }
    // One interface per write: the kernel reads one "name prio" pair per write.
    for (i, p) in net.priorities().iter().flatten().enumerate() {
        let v = format!("{} {}", p.name(), p.priority());
        let f = format!("network.priorities[{i}]");
        write_file(
            &f,
            &layout.dir_for("net_prio", path, &f)?,
            "net_prio.ifpriomap",
            &v,
        )?;
    }
    Ok(())
}
