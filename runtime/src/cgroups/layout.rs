//! The host's cgroup hierarchy (v2, v1 or hybrid), read once per process, and where each
//! controller's files are for a container.

use super::paths::{rel, SubCgroups};
use super::CGROUP_ROOT;
use crate::error::{config, Error, Result, StepExt};
use crate::rootfs::mountinfo::MountInfo;
use libcgroups::common::{create_cgroup_manager, AnyCgroupManager, CgroupConfig};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub(super) enum Layout {
    /// cgroup2 mounted at /sys/fs/cgroup.
    V2,
    /// v1 controller mounts under /sys/fs/cgroup; `hybrid` when a cgroup2 mount sits beside
    /// them (systemd's /sys/fs/cgroup/unified, whose controllers are all bound to v1).
    V1 {
        hierarchies: Vec<Hierarchy>,
        hybrid: bool,
        /// Named hierarchies without controllers (name=systemd): joined like runc does, so
        /// the container's view of them is its own directory, not the host's root.
        named: Vec<PathBuf>,
        /// The hybrid cgroup2 mount (/sys/fs/cgroup/unified): joined too, by CLONE_INTO_CGROUP.
        unified: Option<PathBuf>,
    },
}

pub(super) struct Hierarchy {
    pub(super) mount: PathBuf,
    pub(super) controllers: Vec<String>,
}

impl Layout {
    pub(super) fn is_v2(&self) -> bool {
        matches!(self, Layout::V2)
    }

    /// Where the container is a member, as (v1 dirs joined through `tasks`, the v2 dir
    /// joined by CLONE_INTO_CGROUP): every controller and named hierarchy and, on a hybrid
    /// host, the unified tree, as runc does.
    pub(super) fn member_dirs(&self, path: &Path) -> (Vec<PathBuf>, Option<PathBuf>) {
        match self {
            Layout::V2 => (Vec::new(), Some(Path::new(CGROUP_ROOT).join(rel(path)))),
            Layout::V1 { named, unified, .. } => {
                let mut v1 = self.dirs(path);
                v1.extend(named.iter().map(|m| m.join(rel(path))));
                (v1, unified.as_ref().map(|u| u.join(rel(path))))
            }
        }
    }

    /// `member_dirs` moved down to the sub-cgroups of `exec --cgroup`. A controller form names
    /// a v1 hierarchy by any of its controllers, or a named one as `name=<mount>`; pure v2 and
    /// the hybrid unified tree only move with the every-hierarchy form, as in runc.
    pub(super) fn sub_dirs(
        &self,
        path: &Path,
        sub: &SubCgroups,
    ) -> Result<(Vec<PathBuf>, Option<PathBuf>)> {
        let (mut v1, mut v2) = self.member_dirs(path);
        let names: Vec<Vec<String>> = match self {
            Layout::V2 => Vec::new(),
            Layout::V1 {
                hierarchies, named, ..
            } => hierarchies
                .iter()
                .map(|h| h.controllers.clone())
                .chain(named.iter().map(|m| {
                    let name = m.file_name().unwrap_or_default().to_string_lossy();
                    vec![format!("name={name}")]
                }))
                .collect(),
        };
        if let Some(all) = &sub.all {
            v1.iter_mut().for_each(|d| d.push(all));
            if let Some(d) = v2.as_mut() {
                d.push(all);
            }
        }
        for (controller, p) in &sub.by_controller {
            let i = names
                .iter()
                .position(|n| n.contains(controller))
                .ok_or_else(|| config("--cgroup", format!("unknown controller {controller:?}")))?;
            v1[i].push(p);
        }
        Ok((v1, v2))
    }

    /// The container's directory in every controller hierarchy: one on v2; on v1 one per
    /// controller mount.
    pub(super) fn dirs(&self, path: &Path) -> Vec<PathBuf> {
        match self {
            Layout::V2 => vec![Path::new(CGROUP_ROOT).join(rel(path))],
            Layout::V1 { hierarchies, .. } => hierarchies
                .iter()
                .map(|h| h.mount.join(rel(path)))
                .collect(),
        }
    }

    /// Where the files of `controller` are for this container (v2: its one directory).
    pub(super) fn dir(&self, controller: &str, path: &Path) -> Option<PathBuf> {
        match self {
            Layout::V2 => Some(Path::new(CGROUP_ROOT).join(rel(path))),
            Layout::V1 { hierarchies, .. } => hierarchies
                .iter()
                .find(|h| h.controllers.iter().any(|c| c == controller))
                .map(|h| h.mount.join(rel(path))),
        }
    }

    /// `dir` for a write (or read) of field `f` (relative to linux.resources): a controller
    /// this host has no hierarchy for is an error naming the field, never a path relative to
    /// the cwd. `check_host` refuses such a field first; this keeps every later write honest.
    pub(super) fn dir_for(&self, controller: &str, path: &Path, f: &str) -> Result<PathBuf> {
        self.dir(controller, path).ok_or_else(|| {
            config(
                format!("linux.resources.{f}"),
                format!(
                    "the {controller} controller is not mounted on this host ({})",
                    self.describe()
                ),
            )
        })
    }

    pub(super) fn describe(&self) -> &'static str {
        match self {
            Layout::V2 => "cgroup v2",
            Layout::V1 { hybrid: true, .. } => "v1 hybrid",
            Layout::V1 { hybrid: false, .. } => "cgroup v1",
        }
    }
}

/// Read once per vsrun process (`prepare` and `finish` both need it).
pub(super) fn layout() -> Result<&'static Layout> {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    if let Some(l) = LAYOUT.get() {
        return Ok(l);
    }
    let l = detect_layout().step(|| "find the host's cgroup hierarchies".into())?;
    Ok(LAYOUT.get_or_init(|| l))
}

pub(super) fn detect_layout() -> std::io::Result<Layout> {
    if is_unified(Path::new(CGROUP_ROOT)) {
        return Ok(Layout::V2);
    }
    Ok(v1_layout(&super::hierarchies::host()?.mounts))
}

/// The v1 (or hybrid) layout from the host's cgroup mounts: those under /sys/fs/cgroup.
fn v1_layout(mounts: &[MountInfo]) -> Layout {
    let mut hierarchies: Vec<Hierarchy> = Vec::new();
    let mut hybrid = false;
    let mut named: Vec<PathBuf> = Vec::new();
    let mut unified = None;
    for m in mounts {
        let mount_point = &m.mount_point;
        if !mount_point
            .as_os_str()
            .as_encoded_bytes()
            .starts_with(CGROUP_ROOT.as_bytes())
        {
            continue;
        }
        if m.fstype == "cgroup2" {
            hybrid = true;
            unified.get_or_insert_with(|| mount_point.clone());
            continue;
        }
        if m.fstype != "cgroup" {
            continue;
        }
        let controllers: Vec<String> = m
            .super_options
            .iter()
            .filter(|o| {
                !o.starts_with("name=")
                    && !o.starts_with("release_agent=")
                    && !matches!(
                        o.as_str(),
                        "rw" | "ro"
                            | "xattr"
                            | "noprefix"
                            | "clone_children"
                            | "cpuset_v2_mode"
                            | "none"
                    )
            })
            .cloned()
            .collect();
        if controllers.is_empty() && m.super_options.iter().any(|o| o.starts_with("name=")) {
            if !named.contains(mount_point) {
                named.push(mount_point.clone());
            }
            continue;
        }
        if !controllers.is_empty() && !hierarchies.iter().any(|h| h.mount == *mount_point) {
            hierarchies.push(Hierarchy {
                mount: mount_point.clone(),
                controllers,
            });
        }
    }
    hierarchies.sort_by(|a, b| a.mount.cmp(&b.mount));
    Layout::V1 {
        hierarchies,
        hybrid,
        named,
        unified,
    }
}

pub(super) fn is_unified(p: &Path) -> bool {
    nix::sys::statfs::statfs(p)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

pub(super) fn manager(path: &Path, systemd: bool, id: &str) -> Result<AnyCgroupManager> {
    create_cgroup_manager(CgroupConfig {
        cgroup_path: path.to_path_buf(),
        systemd_cgroup: systemd,
        container_name: id.to_string(),
    })
    .map_err(|e| Error::Os {
        step: format!("cgroup manager for {}", path.display()),
        source: std::io::Error::other(e.to_string()),
    })
}
