//! What a container may leave on the host besides its state dir, watched for
//! `assert_nothing_left`: its cgroup directories (linux.cgroupsPath, or /vsrun/<id>, below every
//! hierarchy, less those that existed before its create) and its disk quota (the project id
//! on its tree and the project's limits). The Runtime notes both around each create.

use crate::*;
use serde_json::Value;
use std::collections::HashMap;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Default)]
pub struct Watch {
    cgroups: Mutex<HashMap<String, CgroupWatch>>,
    disks: Mutex<HashMap<String, DiskWatch>>,
    /// Where vsrun's mount namespace is seen from the test's (`/proc/<pid>/root`), when it
    /// runs in another one (the disk tests' images).
    view_root: Mutex<Option<PathBuf>>,
}

struct CgroupWatch {
    path: PathBuf,
    before: Vec<PathBuf>,
}

struct DiskWatch {
    project: u32,
    /// The tree as the test sees it.
    tree: PathBuf,
}

impl Watch {
    /// Before `create`/`run` of `id` with `bundle`: its cgroup path and what is already there
    /// (someone else's cgroup the create must leave alone). The systemd form
    /// (`slice:prefix:name`) is systemd's to clean.
    pub fn before_create(&self, id: &str, bundle: &Path) {
        let config: Value = fs::read(bundle.join("config.json"))
            .ok()
            .and_then(|t| serde_json::from_slice(&t).ok())
            .unwrap_or_default();
        let path = match config["linux"]["cgroupsPath"].as_str() {
            Some(p) if p.contains(':') => return,
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => Path::new("/vsrun").join(id),
        };
        let before = cgroup_dirs_at(&path);
        let w = CgroupWatch { path, before };
        self.cgroups.lock().unwrap().insert(id.to_string(), w);
    }

    /// After a create of `id` that succeeded: the disk quota its state.json names.
    pub fn after_create(&self, id: &str, state_dir: &Path) {
        let Some(st) = fs::read(state_dir.join("state.json"))
            .ok()
            .and_then(|t| serde_json::from_slice::<Value>(&t).ok())
        else {
            return;
        };
        let (Some(project), Some(tree)) =
            (st["disk"]["project"].as_u64(), st["disk"]["tree"].as_str())
        else {
            return;
        };
        let tree = match &*self.view_root.lock().unwrap() {
            Some(v) => v.join(tree.trim_start_matches('/')),
            None => PathBuf::from(tree),
        };
        let w = DiskWatch {
            project: project as u32,
            tree,
        };
        self.disks.lock().unwrap().insert(id.to_string(), w);
    }

    pub fn set_view_root(&self, root: Option<PathBuf>) {
        *self.view_root.lock().unwrap() = root;
    }

    /// The container's cgroup directories that its create did not find.
    pub fn cgroup_dirs_left(&self, id: &str) -> Vec<PathBuf> {
        match self.cgroups.lock().unwrap().get(id) {
            Some(w) => cgroup_dirs_at(&w.path)
                .into_iter()
                .filter(|d| !w.before.contains(d))
                .collect(),
            None => cgroup_dirs_of(id),
        }
    }

    /// With a disk limit: no project id on the tree (if it is still there) and no limits on
    /// the project.
    #[track_caller]
    pub fn assert_disk_clean(&self, id: &str) {
        let disks = self.disks.lock().unwrap();
        let Some(w) = disks.get(id) else { return };
        if fs::symlink_metadata(&w.tree).is_err() {
            return;
        }
        assert_eq!(
            project_of(&w.tree),
            (0, false),
            "container {id}: project id left on {}",
            w.tree.display()
        );
        let (_, limit, inodes) = quota_of(&w.tree, w.project);
        assert_eq!(
            (limit, inodes),
            (0, 0),
            "container {id}: limits left on project {}",
            w.project
        );
    }
}

#[repr(C)]
#[derive(Default)]
struct FsXattr {
    xflags: u32,
    extsize: u32,
    nextents: u32,
    projid: u32,
    cowextsize: u32,
    pad: [u8; 8],
}
const PROJINHERIT: u32 = 0x200;

/// (project id, PROJINHERIT set) of `path` (FS_IOC_FSGETXATTR).
pub fn project_of(path: &Path) -> (u32, bool) {
    let f = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut x = FsXattr::default();
    // SAFETY: FS_IOC_FSGETXATTR writes one struct fsxattr (28 bytes) into x.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), 0x801c_581f, &mut x as *mut FsXattr) };
    assert_eq!(
        r,
        0,
        "FS_IOC_FSGETXATTR {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    (x.projid, x.xflags & PROJINHERIT != 0)
}

/// The project's record on the file system of `on` (quotactl_fd Q_GETQUOTA, PRJQUOTA): (bytes
/// used, byte hard limit, inode hard limit); zeros when it has none (XFS: ENOENT).
pub fn quota_of(on: &Path, project: u32) -> (u64, u64, u64) {
    let f = File::open(on).unwrap();
    // SAFETY: plain data.
    let mut q: libc::dqblk = unsafe { std::mem::zeroed() };
    let cmd = ((libc::Q_GETQUOTA as u32) << 8) | 2;
    // SAFETY: quotactl_fd writes one if_dqblk into q.
    let r = unsafe {
        libc::syscall(
            libc::SYS_quotactl_fd,
            f.as_raw_fd(),
            cmd,
            project,
            &mut q as *mut libc::dqblk,
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        assert_eq!(
            e.raw_os_error(),
            Some(libc::ENOENT),
            "Q_GETQUOTA {project}: {e}"
        );
        return (0, 0, 0);
    }
    (q.dqb_curspace, q.dqb_bhardlimit * 1024, q.dqb_ihardlimit)
}
