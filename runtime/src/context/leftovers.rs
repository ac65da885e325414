//! What a container makes on the host outside its state dir, and the one way to remove it. A
//! failed `create`, `delete`, and `run` when its container exits all go through
//! `Leftovers::remove`, so a new kind of host object is added here once and every path that
//! tears a container down removes it.

use crate::error::{state, Result, StepExt};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

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
    open_mount_ns(st.mount_join_path.as_deref())
}

fn open_mount_ns(joined: Option<&Path>) -> Option<Option<OwnedFd>> {
    match joined {
        None => Some(None),
        Some(p) => std::fs::File::open(p).ok().map(|f| Some(f.into())),
    }
}

/// The leftovers record, `<state dir>/leftovers.json`: what a create may make on the host,
/// written right after the state dir exists and before anything is claimed, and rewritten
/// when a claim learns a name (the disk quota's project id). A create killed before
/// state.json leaves it for `delete --force`, which removes exactly what it names.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub cgroup: PathBuf,
    pub systemd_cgroup: bool,
    pub bind_ip: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_root: Option<RecordedRoot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<crate::disk::Quota>,
}

/// A shared mount namespace's rootfs and the mount on it before the clone (`Top::Above`).
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRoot {
    pub rootfs: PathBuf,
    pub before: u64,
    /// The joined namespace's path; None: vsrun's own.
    pub mount_join_path: Option<PathBuf>,
}

pub const RECORD_FILE: &str = "leftovers.json";

impl Record {
    /// What `cfg`'s create will make, before any of it is made.
    pub fn of(cfg: &super::InitConfig) -> Record {
        Record {
            cgroup: cfg.cgroup.path.clone(),
            systemd_cgroup: cfg.cgroup.systemd,
            bind_ip: cfg.bind_ip.is_some(),
            shared_root: cfg
                .shared_mount_before
                .zip(cfg.rootfs.as_ref())
                .map(|(before, r)| RecordedRoot {
                    rootfs: r.rootfs.clone(),
                    before,
                    mount_join_path: cfg.ns.mount_join_path.clone(),
                }),
            disk: cfg.disk.clone(),
        }
    }

    /// Write + rename: a create killed mid-write leaves the previous record whole.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(".leftovers.json.tmp");
        let data =
            serde_json::to_vec(self).map_err(|e| state(format!("encode {RECORD_FILE}: {e}")))?;
        std::fs::write(&tmp, data).step(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join(RECORD_FILE)).step(|| format!("write {RECORD_FILE}"))
    }

    /// The record a create left in `dir`; None when it died before writing one (it had
    /// claimed nothing yet).
    pub fn read(dir: &Path) -> Result<Option<Record>> {
        let path = dir.join(RECORD_FILE);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).step(|| format!("read {}", path.display())),
        };
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| state(format!("{}: corrupt: {e}", path.display())))
    }

    /// The recorded shared namespace, opened for `leftovers` (see `joined_mount_ns`).
    pub fn mount_ns(&self) -> Option<Option<OwnedFd>> {
        let root = self.shared_root.as_ref()?;
        open_mount_ns(root.mount_join_path.as_deref())
    }

    /// The leftovers this record names; `ns` from `mount_ns`.
    pub fn leftovers<'a>(&'a self, id: &'a str, ns: &'a Option<Option<OwnedFd>>) -> Leftovers<'a> {
        Leftovers {
            id,
            cgroup: &self.cgroup,
            systemd_cgroup: self.systemd_cgroup,
            bind_ip: self.bind_ip,
            shared_root: self
                .shared_root
                .as_ref()
                .zip(ns.as_ref())
                .map(|(r, ns)| SharedRoot {
                    ns: ns.as_ref().map(|f| f.as_fd()),
                    rootfs: &r.rootfs,
                    top: Top::Above(r.before),
                }),
            disk: self.disk.as_ref(),
        }
    }
}

/// The container of `root` whose leftovers record holds disk quota `project`.
pub fn disk_holder(root: &Path, project: u32) -> Option<String> {
    std::fs::read_dir(root).ok()?.flatten().find_map(|e| {
        let rec = Record::read(&e.path()).ok()??;
        (rec.disk?.project == project).then(|| e.file_name().to_string_lossy().into_owned())
    })
}
