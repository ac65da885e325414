//! What a container makes on the host outside its state dir, and the one way to remove it. A
//! failed `create`, `delete`, and `run` when its container exits all go through
//! `Leftovers::remove`, so a new kind of host object is added here once and every path that
//! tears a container down removes it.

use crate::error::Result;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

pub struct Leftovers<'a> {
    pub id: &'a str,
    /// The container's cgroup as given to the cgroups module (`linux.cgroupsPath` or the
    /// default) and whether systemd manages it.
    pub cgroup: &'a Path,
    pub systemd_cgroup: bool,
    /// Bound-IP mode: a cgroup v2 directory holding the sock_addr programs.
    pub bind_ip: bool,
    /// No mount namespace of its own: the bind on the rootfs that holds every mount it made.
    pub shared_root: Option<SharedRoot<'a>>,
    /// Disk-space limit: the project id on the tree and its quota (disk/).
    pub disk: Option<&'a crate::disk::Quota>,
}

/// The rootfs bind of a container that shares a mount namespace (rootfs/shared.rs).
pub struct SharedRoot<'a> {
    /// The joined mount namespace; None: vsrun's own.
    pub ns: Option<BorrowedFd<'a>>,
    pub rootfs: &'a Path,
    pub top: Top,
}

pub enum Top {
    /// A failed create knows the mount that was on the rootfs before the clone: whatever the
    /// init put on top of it goes.
    Above(u64),
    /// `delete` knows the bind's mount id from state.json: that one goes, if still there.
    Is(u64),
}

impl Leftovers<'_> {
    /// The cgroup (libcgroups kills stragglers), the bound-IP programs, the shared mounts, the
    /// disk quota.
    /// Every step is tried, so one that fails does not keep the others; the first error is
    /// returned. Each step is idempotent: a retried `delete` finishes the job.
    pub fn remove(&self) -> Result<()> {
        let cgroup = crate::cgroups::remove(self.cgroup, self.systemd_cgroup, self.id);
        let bind_ip = match self.bind_ip {
            true => crate::net::remove(self.id),
            false => Ok(()),
        };
        let mounts = match &self.shared_root {
            Some(s) => s.detach(),
            None => Ok(()),
        };
        let disk = match self.disk {
            Some(q) => crate::disk::remove(q),
            None => Ok(()),
        };
        cgroup.and(bind_ip).and(mounts).and(disk)
    }
}

impl SharedRoot<'_> {
    fn detach(&self) -> Result<()> {
        match self.top {
            Top::Above(before) => crate::rootfs::shared::undo(self.ns, self.rootfs, before),
            Top::Is(id) => crate::rootfs::shared::detach(self.ns, self.rootfs, id),
        }
    }
}

/// The leftovers of a container recorded in state.json. `ns` is `joined_mount_ns`, held open
/// while they are removed.
pub fn of_state<'a>(st: &'a crate::state::State, ns: &'a Option<Option<OwnedFd>>) -> Leftovers<'a> {
    Leftovers {
        id: &st.id,
        cgroup: &st.cgroup_path,
        systemd_cgroup: st.systemd_cgroup,
        bind_ip: st.bind_ip,
        shared_root: st
            .shared_root_mount
            .zip(ns.as_ref())
            .map(|(id, ns)| SharedRoot {
                ns: ns.as_ref().map(|f| f.as_fd()),
                rootfs: &st.rootfs,
                top: Top::Is(id),
            }),
        disk: st.disk.as_ref(),
    }
}

/// The mount namespace a shared-root container joined, opened for `of_state`: Some(None) for
/// vsrun's own, None when the joined one is gone (it took the container's mounts with it, so
/// there is nothing to detach).
pub fn joined_mount_ns(st: &crate::state::State) -> Option<Option<OwnedFd>> {
    match &st.mount_join_path {
        None => Some(None),
        Some(p) => std::fs::File::open(p).ok().map(|f| Some(f.into())),
    }
}

/// What a `create` that crashed before writing state.json can have made: what has a default
/// name (its cgroup, when the config gave no path, and the bound-IP directory) and the disk
/// quota it recorded in the state dir (`disk::recorded`).
pub fn of_crashed_create<'a>(
    id: &'a str,
    cgroup: &'a Path,
    disk: Option<&'a crate::disk::Quota>,
) -> Leftovers<'a> {
    Leftovers {
        id,
        cgroup,
        systemd_cgroup: false,
        bind_ip: true,
        shared_root: None,
        disk,
    }
}
