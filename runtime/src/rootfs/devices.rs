//! Device nodes and the /dev symlinks. Nodes are made with mknodat in their parent directory's
//! fd (resolved confined to the root); in a user namespace, or when mknod is refused, an empty
//! file is created and the host's node — checked to be the same device — is bound on it.
//! An existing entry (including a symlink) is never followed: it is left as it is.

use super::kmount;
use super::resolve::{self, Create};
use super::{Device, Plan};
use crate::error::{config, Result, StepExt};
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Uid};
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

pub fn create(plan: &Plan, root: BorrowedFd<'_>) -> Result<()> {
    let nodes = clone_made_nodes(plan, root)?;
    for (d, node) in plan.devices.iter().zip(&nodes) {
        create_one(plan, root, d, node.as_ref())?;
    }
    if plan.console {
        let dev = resolve::open_or_create(root, Path::new("dev"), Create::Dir)
            .step(|| "create /dev".into())?;
        match empty_file(dev.as_fd(), OsStr::new("console"), 0o600) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e).step(|| "create /dev/console".into()),
        }
    }
    Ok(())
}

fn shown(d: &Device) -> String {
    format!("/{}", d.path.display())
}

fn create_one(plan: &Plan, root: BorrowedFd<'_>, d: &Device, node: Option<&OwnedFd>) -> Result<()> {
    let Some((parent, name)) = resolve::split(&d.path) else {
        return Ok(());
    };
    let dir = resolve::open_or_create(root, parent, Create::Dir)
        .step(|| format!("create the directory of device {}", shown(d)))?;
    if !plan.userns {
        let old = nix::sys::stat::umask(Mode::empty());
        let r = nix::sys::stat::mknodat(
            Some(dir.as_raw_fd()),
            name,
            SFlag::from_bits_truncate(d.kind),
            Mode::from_bits_truncate(d.mode),
            nix::sys::stat::makedev(d.major, d.minor),
        );
        nix::sys::stat::umask(old);
        match r {
            Ok(()) => return chown(dir.as_fd(), name, d),
            Err(Errno::EEXIST) => return Ok(()),
            Err(Errno::EPERM) => {}
            Err(e) => return Err(e).step(|| format!("mknod {}", shown(d))),
        }
    }
    match node {
        Some(node) => attach_node(dir.as_fd(), name, d, node.as_fd()),
        None => bind_host_node(dir.as_fd(), name, d),
    }
}

/// vsrun, before the clone of an init that gets a new user namespace: each configured device
/// is made by vsrun (the init may not mknod there, and the host need not have the node at
/// that path) in a detached tmpfs of its own, which no path on the host ever shows, owned by
/// the configured uid/gid as the container's mapping puts them on the host, and named after
/// its index in `linux.devices`; the init binds each on its path (`clone_made_nodes`).
/// Default devices keep the host's node (runc's way). A user namespace joined by path has no
/// mapping to read here: its devices keep the host's node too.
pub fn make_nodes(
    devices: &mut [Device],
    spec: &oci_spec::runtime::Spec,
) -> Result<Option<OwnedFd>> {
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(None);
    };
    let uid_maps = linux.uid_mappings().as_deref().unwrap_or_default();
    let gid_maps = linux.gid_mappings().as_deref().unwrap_or_default();
    if uid_maps.is_empty() || !devices.iter().any(|d| d.configured.is_some()) {
        return Ok(None);
    }
    let step = || "linux.devices: make a tmpfs for the device nodes".to_string();
    // 0711: the init, whose ids may be none of the host's, enters the root to detach the
    // tmpfs by "." (`clone_made_nodes`); it never lists it, and no path shows the tmpfs.
    let fs = kmount::new_fs(
        "tmpfs",
        Some("vsrun-devices"),
        &[],
        &["mode=0711".into()],
        0,
    )
    .map_err(|e| e.step(step()))?;
    for d in devices.iter_mut() {
        let Some(i) = d.configured else { continue };
        let uid = host_id(uid_maps, d.uid, i, "uid")?;
        let gid = host_id(gid_maps, d.gid, i, "gid")?;
        d.node = Some(make_node(fs.as_fd(), d, i, uid, gid)?);
    }
    Ok(Some(fs))
}

/// The host id that the container's `id` is, through `maps` (linux.devices[i].`field`).
fn host_id(
    maps: &[oci_spec::runtime::LinuxIdMapping],
    id: u32,
    i: usize,
    field: &str,
) -> Result<u32> {
    maps.iter()
        .find(|m| id >= m.container_id() && id - m.container_id() < m.size())
        .map(|m| m.host_id() + (id - m.container_id()))
        .ok_or_else(|| {
            config(
                format!("linux.devices[{i}].{field}"),
                format!("{id} is not mapped by the container's user namespace"),
            )
        })
}

/// mknod linux.devices[i] as `i` in the tmpfs `fs`, owned by the host's uid:gid; its O_PATH
/// fd (the init, whose ids may not search the tmpfs's 0700 root, needs no lookup there).
fn make_node(fs: BorrowedFd<'_>, d: &Device, i: usize, uid: u32, gid: u32) -> Result<OwnedFd> {
    let name = i.to_string();
    let what = || {
        format!(
            "linux.devices[{i}]: mknod {} (for the user namespace)",
            shown(d)
        )
    };
    let old = nix::sys::stat::umask(Mode::empty());
    let r = nix::sys::stat::mknodat(
        Some(fs.as_raw_fd()),
        name.as_str(),
        SFlag::from_bits_truncate(d.kind),
        Mode::from_bits_truncate(d.mode),
        nix::sys::stat::makedev(d.major, d.minor),
    );
    nix::sys::stat::umask(old);
    r.step(what)?;
    nix::unistd::fchownat(
        Some(fs.as_raw_fd()),
        name.as_str(),
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .step(what)?;
    resolve::openat(fs, &name, libc::O_PATH | libc::O_NOFOLLOW, 0).step(what)
}

/// The init, in its new mount namespace: a detached bind of each node vsrun made (None for
/// the other devices). Linux before 6.15 (Debian 12's 6.1) refuses open_tree(OPEN_TREE_CLONE)
/// of a mount outside the caller's mount namespace (fs/namespace.c `__do_loopback`:
/// `check_mnt`), which the detached tmpfs is; later kernels clone detached mounts too
/// (`may_copy_tree`). One way for every kernel: the tmpfs is attached for a moment on the
/// root of the rootfs bind the init just made, in its own mount namespace. Nothing mounted
/// there reaches another namespace: that bind is private or a slave (its parent is made
/// private when shared, and a namespace made with a new user namespace copies the host's
/// shared mounts as slaves, which receive but never send), and the container's program has
/// not started. The nodes are cloned from there and the tmpfs is detached at once: only the
/// binds of single nodes remain, and nothing else of the tmpfs (nor of the host) is
/// reachable through them.
fn clone_made_nodes(plan: &Plan, root: BorrowedFd<'_>) -> Result<Vec<Option<OwnedFd>>> {
    let Some(fs) = &plan.device_nodes else {
        return Ok(plan.devices.iter().map(|_| None).collect());
    };
    kmount::attach(fs.as_fd(), root)
        .step(|| "linux.devices: attach the tmpfs of the device nodes".into())?;
    let nodes: Result<Vec<Option<OwnedFd>>> = plan.devices.iter().map(clone_made_node).collect();
    let detached = kmount::detach(fs.as_fd())
        .step(|| "linux.devices: detach the tmpfs of the device nodes".into());
    let nodes = nodes?;
    detached?;
    Ok(nodes)
}

/// A detached bind of the node vsrun made for `d`, once its tmpfs is attached.
fn clone_made_node(d: &Device) -> Result<Option<OwnedFd>> {
    let (Some(i), Some(node)) = (d.configured, &d.node) else {
        return Ok(None);
    };
    kmount::clone_tree(node.as_fd(), false)
        .step(|| {
            format!(
                "linux.devices[{i}]: bind the node vsrun made for {}",
                shown(d)
            )
        })
        .map(Some)
}

/// Attach a node made by vsrun (`make_nodes`) on an empty file at the device's path; an
/// existing entry is used as it is unless it is a symlink (never followed, left alone).
fn attach_node(dir: BorrowedFd<'_>, name: &OsStr, d: &Device, node: BorrowedFd<'_>) -> Result<()> {
    let Some(target) = bind_target(dir, name, d)? else {
        return Ok(());
    };
    kmount::attach(node, target.as_fd()).step(|| format!("bind the device node on {}", shown(d)))
}

/// An empty file to bind a node on, or the existing entry (None for a symlink: left alone).
fn bind_target(dir: BorrowedFd<'_>, name: &OsStr, d: &Device) -> Result<Option<OwnedFd>> {
    match empty_file(dir, name, 0) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            let f = resolve::openat(dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0)
                .step(|| format!("open {}", shown(d)))?;
            let st = nix::sys::stat::fstat(f.as_raw_fd()).step(|| format!("stat {}", shown(d)))?;
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
                return Ok(None);
            }
            Ok(Some(f))
        }
        Err(e) => Err(e).step(|| format!("create {} to bind a node on", shown(d))),
    }
}

fn chown(dir: BorrowedFd<'_>, name: &OsStr, d: &Device) -> Result<()> {
    nix::unistd::fchownat(
        Some(dir.as_raw_fd()),
        name,
        Some(Uid::from_raw(d.uid)),
        Some(Gid::from_raw(d.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .step(|| format!("chown {} to {}:{}", shown(d), d.uid, d.gid))
}

fn empty_file(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> std::io::Result<OwnedFd> {
    resolve::openat(
        dir,
        name,
        libc::O_RDONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
        mode,
    )
}

/// The user-namespace way (runc's too): an empty file with the host's node bound on it.
fn bind_host_node(dir: BorrowedFd<'_>, name: &OsStr, d: &Device) -> Result<()> {
    let host = Path::new("/").join(&d.path);
    let src = open_host_node("linux.devices", &host, d.kind, d.major, d.minor)?;
    let Some(target) = bind_target(dir, name, d)? else {
        return Ok(());
    };
    let step = || format!("bind {} on {}", host.display(), shown(d));
    let tree = kmount::clone_tree(src.as_fd(), false).step(step)?;
    kmount::attach(tree.as_fd(), target.as_fd()).step(step)
}

/// Open a host device node (O_PATH) and check it is the device it claims to be: a bind of the
/// wrong file onto a device path, or onto a masked path, would hand the container whatever the
/// path pointed to (CVE-2025-31133 class).
pub fn open_host_node(
    field: &str,
    path: &Path,
    kind: libc::mode_t,
    major: u64,
    minor: u64,
) -> Result<OwnedFd> {
    let fd = resolve::open_host(path, libc::O_PATH | libc::O_NOFOLLOW)
        .step(|| format!("open the host's {}", path.display()))?;
    let st = nix::sys::stat::fstat(fd.as_raw_fd())
        .step(|| format!("stat the host's {}", path.display()))?;
    let same_kind = st.st_mode & libc::S_IFMT == kind;
    let numbers_match = kind == libc::S_IFIFO
        || (nix::sys::stat::major(st.st_rdev) == major
            && nix::sys::stat::minor(st.st_rdev) == minor);
    if !(same_kind && numbers_match) {
        return Err(config(
            field,
            format!(
                "the host's {} is not the device {major}:{minor} it should be; refusing to bind it",
                path.display()
            ),
        ));
    }
    Ok(fd)
}

/// /dev/fd, stdin, stdout, stderr, core (when the host has /proc/kcore) and ptmx, as runc.
pub fn symlinks(_plan: &Plan, root: BorrowedFd<'_>, kcore: bool) -> Result<()> {
    let dev = resolve::open_or_create(root, Path::new("dev"), Create::Dir)
        .step(|| "create /dev".into())?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if kcore {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match nix::unistd::symlinkat(target, Some(dev.as_raw_fd()), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).step(|| format!("symlink /dev/{name} -> {target}")),
        }
    }
    // /dev/ptmx must be the devpts instance's: replace whatever the image had.
    match nix::unistd::unlinkat(
        Some(dev.as_raw_fd()),
        "ptmx",
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).step(|| "remove /dev/ptmx".into()),
    }
    nix::unistd::symlinkat("pts/ptmx", Some(dev.as_raw_fd()), "ptmx")
        .step(|| "symlink /dev/ptmx -> pts/ptmx".into())
}

pub fn mount_console(pty: BorrowedFd<'_>) -> Result<()> {
    let step = || "bind the terminal on /dev/console".to_string();
    let root = resolve::open_host("/", libc::O_PATH | libc::O_DIRECTORY).step(step)?;
    let target =
        resolve::open_or_create(root.as_fd(), Path::new("dev/console"), Create::File).step(step)?;
    let tree = kmount::clone_tree(pty, false).step(step)?;
    kmount::attach(tree.as_fd(), target.as_fd()).step(step)
}
