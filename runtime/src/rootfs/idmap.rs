//! Idmapped bind mounts (runtime-spec 1.2: `mounts[].uidMappings/gidMappings`, options
//! `idmap`/`ridmap`). MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over the source's superblock (the
//! host's user namespace) and a detached mount, so vsrun clones each such source before the
//! clone of the init, sets its options and the idmapping there, and the init only attaches
//! the tree onto its confined destination (mounts.rs `bind`). A file system the kernel cannot
//! idmap (EINVAL) is refused before anything exists.
//!
//! The mapping is carried by a user namespace: the mount's own mappings (or, for `idmap`
//! without them, the container's new user namespace mappings) are written into a short-lived
//! child in a new user namespace; a user namespace joined by path is used as it is.

use super::kmount;
use super::resolve;
use super::{MountKind, MountStep};
use crate::error::{config, Result, StepExt};
use crate::syscall::{self, MountAttr, MOUNT_ATTR_IDMAP};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

/// Where the mapping of an idmapped mount comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mapping {
    /// uid_map and gid_map contents ("inside outside count" lines): the mount's own mappings,
    /// or the container's new user namespace's.
    Maps { uid: String, gid: String },
    /// The user namespace the container joins by path.
    Joined(PathBuf),
}

/// The idmapping of one `mounts[]` entry, decided at plan time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Idmap {
    /// `ridmap`: every mount of an rbind is idmapped, not only the top one.
    pub recursive: bool,
    pub mapping: Mapping,
}

fn map_text(list: &[LinuxIdMapping]) -> String {
    list.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// The container's own user namespace, as an idmapping (`idmap` without mappings: runc 1.2 and
/// crun use the container's mapping).
fn container_mapping(spec: &Spec) -> Option<Mapping> {
    let linux = spec.linux().as_ref()?;
    let user = linux
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::User)?;
    if let Some(p) = user.path().as_ref().filter(|p| !p.as_os_str().is_empty()) {
        return Some(Mapping::Joined(p.clone()));
    }
    Some(Mapping::Maps {
        uid: map_text(linux.uid_mappings().as_deref().unwrap_or_default()),
        gid: map_text(linux.gid_mappings().as_deref().unwrap_or_default()),
    })
}

/// Plan the idmapping of mount `i` (None when it has none), refusing what cannot be one.
pub(crate) fn plan(
    spec: &Spec,
    i: usize,
    m: &oci_spec::runtime::Mount,
    opts: &super::options::MountOptions,
    kind: &MountKind,
) -> Result<Option<Idmap>> {
    let uid = m.uid_mappings().as_deref().unwrap_or_default();
    let gid = m.gid_mappings().as_deref().unwrap_or_default();
    if opts.idmap.is_none() && uid.is_empty() && gid.is_empty() {
        return Ok(None);
    }
    if !matches!(kind, MountKind::Bind { .. }) {
        let field = if opts.idmap.is_some() {
            format!("mounts[{i}].options")
        } else {
            format!("mounts[{i}].uidMappings")
        };
        return Err(config(
            field,
            "an idmapped mount must be a bind mount (idmap/ridmap and uid/gidMappings need \"bind\" or \"rbind\")",
        ));
    }
    if uid.is_empty() != gid.is_empty() {
        let (field, other) = if uid.is_empty() {
            ("uidMappings", "gidMappings")
        } else {
            ("gidMappings", "uidMappings")
        };
        return Err(config(
            format!("mounts[{i}].{field}"),
            format!("missing: {other} is given, and the two go together"),
        ));
    }
    let mapping = if uid.is_empty() {
        container_mapping(spec).ok_or_else(|| {
            config(
                format!("mounts[{i}].options"),
                "idmap/ridmap without uidMappings and gidMappings needs a user namespace in linux.namespaces (its mapping is used)",
            )
        })?
    } else {
        Mapping::Maps {
            uid: map_text(uid),
            gid: map_text(gid),
        }
    };
    Ok(Some(Idmap {
        // Mappings without an option are applied as `idmap` (the top mount only).
        recursive: opts.idmap == Some(true),
        mapping,
    }))
}

/// User namespaces made (or opened) for the mappings of this container, one per mapping.
#[derive(Default)]
struct Namespaces(Vec<(Mapping, OwnedFd)>);

impl Namespaces {
    fn get(&mut self, mapping: &Mapping, i: usize) -> Result<std::os::fd::BorrowedFd<'_>> {
        if let Some(k) = self.0.iter().position(|(m, _)| m == mapping) {
            return Ok(self.0[k].1.as_fd());
        }
        let fd = match mapping {
            Mapping::Joined(p) => resolve::open_host(p, libc::O_RDONLY).step(|| {
                format!(
                    "mounts[{i}]: open the user namespace {} for its idmapping",
                    p.display()
                )
            })?,
            Mapping::Maps { uid, gid } => userns_with(uid, gid)
                .step(|| format!("mounts[{i}]: make a user namespace with the mount's mapping"))?,
        };
        self.0.push((mapping.clone(), fd));
        Ok(self.0.last().map(|(_, f)| f.as_fd()).expect("just pushed"))
    }
}

/// A user namespace with these maps: a child born in it holds it while vsrun (privileged in
/// the parent namespace, so no setgroups "deny" is needed) writes its maps and opens it; the
/// child is then killed and reaped. The open fd keeps the namespace.
fn userns_with(uid: &str, gid: &str) -> std::io::Result<OwnedFd> {
    let (pid, pidfd) = syscall::userns_holder()?;
    let r = (|| {
        std::fs::write(format!("/proc/{pid}/uid_map"), uid)?;
        std::fs::write(format!("/proc/{pid}/gid_map"), gid)?;
        resolve::open_host(format!("/proc/{pid}/ns/user"), libc::O_RDONLY)
    })();
    let _ = syscall::pidfd_send_signal(&pidfd, libc::SIGKILL);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    r
}

/// vsrun, before the clone: clone every idmapped bind source into a detached tree with its
/// options and idmapping set (see the module docs). The init attaches it (mounts.rs `bind`).
pub(crate) fn clone_sources(mounts: &mut [MountStep]) -> Result<()> {
    let mut namespaces = Namespaces::default();
    for m in mounts.iter_mut() {
        let i = m.index;
        let Some(idmap) = m.idmap.clone() else {
            continue;
        };
        let MountKind::Bind { source, .. } = &m.kind else {
            continue;
        };
        let source = source.clone();
        let src = resolve::open_host(&source, libc::O_PATH)
            .step(|| format!("mounts[{i}]: open bind source {}", source.display()))?;
        let tree = kmount::clone_tree(src.as_fd(), m.opts.recursive_bind())
            .step(|| format!("mounts[{i}]: clone {}", source.display()))?;
        super::mounts::set_options(tree.as_fd(), m).step(|| {
            format!(
                "mounts[{i}]: set options of the bind of {}",
                source.display()
            )
        })?;
        let userns = namespaces.get(&idmap.mapping, i)?;
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            userns_fd: userns.as_raw_fd() as u64,
            ..Default::default()
        };
        match syscall::mount_setattr(tree.as_raw_fd(), idmap.recursive, &attr) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                return Err(config(
                    format!("mounts[{i}].options"),
                    format!(
                        "{} cannot be idmapped: its file system (or one mounted below it, with ridmap) does not support idmapped mounts (mount_setattr MOUNT_ATTR_IDMAP: {e})",
                        source.display()
                    ),
                ))
            }
            Err(e) => {
                return Err(e).step(|| {
                    format!("mounts[{i}]: idmap the bind of {}", source.display())
                })
            }
        }
        if let MountKind::Bind { tree: t, .. } = &mut m.kind {
            *t = Some(tree);
        }
    }
    Ok(())
}
