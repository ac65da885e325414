//! Where a container's cgroup is: `linux.cgroupsPath` checked, the default path, and the
//! sub-cgroups of `exec --cgroup`.

use crate::error::{config, Result};
use std::path::{Path, PathBuf};

/// runc's `exec --cgroup`: paths below the container's cgroup, already checked to stay there
/// (`below`), relative to it.
#[derive(Clone, Debug, Default)]
pub struct SubCgroups {
    /// `--cgroup PATH`: the same sub-cgroup in every hierarchy.
    pub all: Option<PathBuf>,
    /// `--cgroup CONTROLLER[,CONTROLLER...]:PATH`; a named hierarchy is `name=systemd`.
    pub by_controller: Vec<(String, PathBuf)>,
}

impl SubCgroups {
    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.by_controller.is_empty()
    }
}

/// Where `sub` leads from the cgroup `container`, relative to it, or `None` when it leaves
/// it. Resolved lexically, as runc does (`path.Join`): `/x` is below the container too, and
/// so is `../<own name>/x`. Component-wise, so `../<name>-other` is an escape (runc's string
/// prefix check lets that one through).
pub fn below(container: &Path, sub: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let base: Vec<_> = container
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    let mut joined = base.clone();
    for c in sub.components() {
        match c {
            Component::Normal(_) => joined.push(c),
            Component::ParentDir => {
                joined.pop();
            }
            _ => {}
        }
    }
    joined
        .strip_prefix(base.as_slice())
        .map(|rest| rest.iter().collect())
}

/// The cgroup of a container whose config has no `linux.cgroupsPath`.
pub fn default_path(id: &str) -> PathBuf {
    PathBuf::from(format!("/vsrun/{id}"))
}

pub(super) fn check_path(path: &Path) -> Result<()> {
    if path
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(config(
            "linux.cgroupsPath",
            format!("{}: must not contain ..", path.display()),
        ));
    }
    if rel(path).as_os_str().is_empty() {
        return Err(config(
            "linux.cgroupsPath",
            format!(
                "{}: the root cgroup cannot be a container's cgroup",
                path.display()
            ),
        ));
    }
    Ok(())
}

pub(super) fn rel(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}
