//! One `mounts[]` entry: resolve the destination inside the root (creating it), check it does
//! not land in /proc, mount, then apply the propagation options.

use super::kmount::{self, FsError};
use super::resolve::{self, Create};
use super::{cgroup, MountKind, MountStep, Plan};
use crate::error::{config, Error, Result, StepExt};
use nix::sys::stat::{Mode, SFlag};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const SYSFS_MAGIC: i64 = 0x6265_6572;

pub fn mount(plan: &Plan, root: BorrowedFd<'_>, m: &MountStep) -> Result<()> {
    let mnt = match &m.kind {
        MountKind::Bind { source, tree } => bind(root, m, source, tree.as_ref())?,
        MountKind::Fs { fstype, source } => new_fs(plan, root, m, fstype, source.as_deref())?,
        MountKind::Cgroup => cgroup::mount(plan, root, m)?,
    };
    for &p in &m.opts.propagation {
        kmount::set_propagation(mnt.as_fd(), p).step(|| {
            format!(
                "mounts[{}]: make {} {}",
                m.index,
                shown(&m.dest),
                kmount::propagation_name(p)
            )
        })?;
    }
    Ok(())
}

/// The destination as the container sees it, for messages.
pub fn shown(dest: &Path) -> String {
    format!("/{}", dest.display())
}

/// Resolve (and create) the destination, refusing one that resolves into a procfs other than
/// the allowed files (a symlink like `rootfs/x -> /proc/sys` would otherwise defeat the
/// plan-time check).
pub fn target(root: BorrowedFd<'_>, m: &MountStep, create: Create) -> Result<OwnedFd> {
    let fd = resolve::open_or_create(root, &m.dest, create).step(|| {
        format!(
            "mounts[{}]: resolve destination {} in the rootfs",
            m.index,
            shown(&m.dest)
        )
    })?;
    refuse_in_proc(fd.as_fd(), m)?;
    Ok(fd)
}

/// A destination that resolved into a procfs must be one of the few files that may be
/// mounted over (a symlink like `rootfs/x -> /proc/sys` would otherwise defeat the plan-time
/// check).
fn refuse_in_proc(fd: BorrowedFd<'_>, m: &MountStep) -> Result<()> {
    let in_proc =
        is_procfs(fd).step(|| format!("mounts[{}]: statfs {}", m.index, shown(&m.dest)))?;
    if in_proc && !super::proc_mount_allowed(&m.dest) {
        return Err(config(
            format!("mounts[{}].destination", m.index),
            format!(
                "{:?} resolves into /proc, where only a few files may be mounted over",
                shown(&m.dest)
            ),
        ));
    }
    Ok(())
}

/// Whether the destination's last component must be the real thing, never a symlink: for a
/// procfs or sysfs (new or bound) and for the files under /proc that may be mounted over.
/// runc's "must be mounted on ordinary directory" (CVE-2019-19921): a proc that lands anywhere
/// but /proc escapes the masks put on /proc. A `cgroup` mount follows a symlink inside the
/// rootfs, as runc's does.
fn needs_leaf(m: &MountStep, pseudo_fs: bool) -> bool {
    pseudo_fs || m.dest.starts_with("proc")
}

/// The destination for a mount that `needs_leaf`: the parent resolved (and created) confined
/// to the root as for any mount, then the last component opened in that parent without
/// following it, and refused if it is a symlink (or, for a directory, not one). The fd is what
/// is mounted on, so swapping the name for a symlink afterwards redirects nothing.
pub fn leaf_target(root: BorrowedFd<'_>, m: &MountStep, create: Create) -> Result<OwnedFd> {
    let i = m.index;
    let field = || format!("mounts[{i}].destination {:?}", shown(&m.dest));
    let (parent, name) = resolve::split(&m.dest)
        .ok_or_else(|| config(field(), "is the root, not a mount destination"))?;
    let dir = resolve::open_or_create(root, parent, Create::Dir)
        .step(|| format!("mounts[{i}]: resolve {} in the rootfs", shown(parent)))?;
    let fd = resolve::open_leaf(dir.as_fd(), name, create)
        .step(|| format!("mounts[{i}]: open destination {}", shown(&m.dest)))?;
    let st = nix::sys::stat::fstat(fd.as_raw_fd())
        .step(|| format!("mounts[{i}]: stat destination {}", shown(&m.dest)))?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFLNK => {
            return Err(config(
                field(),
                "is a symlink in the rootfs; proc, sysfs and files under /proc are mounted only \
                 on the real directory or file, never through a symlink (CVE-2019-19921)",
            ))
        }
        libc::S_IFDIR => {}
        _ if create == Create::Dir => {
            return Err(config(
                field(),
                "is not a directory; proc and sysfs are mounted only on an ordinary directory",
            ))
        }
        _ => {}
    }
    refuse_in_proc(fd.as_fd(), m)?;
    Ok(fd)
}

/// `target` or `leaf_target`, as `needs_leaf` says.
fn destination(
    root: BorrowedFd<'_>,
    m: &MountStep,
    create: Create,
    pseudo_fs: bool,
) -> Result<OwnedFd> {
    if needs_leaf(m, pseudo_fs) {
        leaf_target(root, m, create)
    } else {
        target(root, m, create)
    }
}

/// A procfs or sysfs, by its superblock (a bind source is judged by what it is, not its name).
fn is_pseudo_fs(fd: BorrowedFd<'_>) -> bool {
    nix::sys::statfs::fstatfs(fd)
        .map(|s| matches!(s.filesystem_type().0 as i64, PROC_SUPER_MAGIC | SYSFS_MAGIC))
        .unwrap_or(false)
}

pub fn is_procfs(fd: BorrowedFd<'_>) -> nix::Result<bool> {
    Ok(nix::sys::statfs::fstatfs(fd)?.filesystem_type().0 as i64 == PROC_SUPER_MAGIC)
}

/// vsrun, before the clone of an init that gets a user namespace (and a mount namespace of its
/// own): clone each bind source below a directory others cannot search into a detached tree
/// with its options set, as the host's root.
/// The init's mapped root would get EACCES opening a source below a 0700 or 000 directory;
/// runc 1.1 opens such sources before entering the user namespace too. The init attaches the
/// tree onto its confined destination fd (`bind`).
pub fn clone_bind_sources(mounts: &mut [MountStep]) -> Result<()> {
    for m in mounts.iter_mut() {
        let i = m.index;
        let MountKind::Bind { source, tree } = &m.kind else {
            continue;
        };
        // Already cloned (an idmapped mount, idmap.rs).
        if tree.is_some() || !behind_closed_directory(source) {
            continue;
        }
        let src = resolve::open_host(&*source, libc::O_PATH)
            .step(|| format!("mounts[{i}]: open bind source {}", source.display()))?;
        let cloned = kmount::clone_tree(src.as_fd(), m.opts.recursive_bind())
            .step(|| format!("mounts[{i}]: clone {}", source.display()))?;
        set_options(cloned.as_fd(), m).step(|| {
            format!(
                "mounts[{i}]: set options of the bind of {}",
                source.display()
            )
        })?;
        if let MountKind::Bind { tree, .. } = &mut m.kind {
            *tree = Some(cloned);
        }
    }
    Ok(())
}

/// Whether a directory on the way to `path` cannot be searched by others: only then does the
/// mapped root need vsrun to open the source. Every other source is still cloned by the init,
/// in its own mount namespace, as before (a recursive clone taken from the caller's namespace
/// would carry the caller's submounts, e.g. of /sys/fs/cgroup, into the container's view).
fn behind_closed_directory(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.ancestors()
        .skip(1)
        .any(|dir| std::fs::metadata(dir).map_or(true, |md| md.permissions().mode() & 0o001 == 0))
}

fn bind(
    root: BorrowedFd<'_>,
    m: &MountStep,
    source: &Path,
    cloned: Option<&OwnedFd>,
) -> Result<OwnedFd> {
    let i = m.index;
    let src = match cloned {
        Some(t) => t.try_clone(),
        None => resolve::open_host(source, libc::O_PATH),
    }
    .step(|| format!("mounts[{i}]: open bind source {}", source.display()))?;
    let st = nix::sys::stat::fstat(src.as_raw_fd())
        .step(|| format!("mounts[{i}]: stat bind source {}", source.display()))?;
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if m.dest == Path::new("proc") && !is_procfs(src.as_fd()).unwrap_or(false) {
        return Err(config(
            format!("mounts[{i}].source"),
            format!(
                "only a procfs may be bound on /proc, {} is not one",
                source.display()
            ),
        ));
    }
    let create = if is_dir { Create::Dir } else { Create::File };
    let target = destination(root, m, create, is_pseudo_fs(src.as_fd()))?;
    let what = || format!("bind {} on {}", source.display(), shown(&m.dest));
    let tree = if cloned.is_some() {
        // Cloned and given its options by vsrun (`clone_bind_sources`).
        src
    } else {
        let tree = kmount::clone_tree(src.as_fd(), m.opts.recursive_bind())
            .step(|| format!("mounts[{i}]: clone {}", source.display()))?;
        set_options(tree.as_fd(), m).step(|| format!("mounts[{i}]: set options of {}", what()))?;
        tree
    };
    kmount::attach(tree.as_fd(), target.as_fd()).step(|| format!("mounts[{i}]: {}", what()))?;
    Ok(tree)
}

/// The per-mount flags (on the top mount, like runc's remount) and the recursive ones.
pub(super) fn set_options(mnt: BorrowedFd<'_>, m: &MountStep) -> std::io::Result<()> {
    let (set, clr) = m.opts.attr();
    kmount::set_attr(mnt, set, clr, false)?;
    kmount::set_attr(mnt, m.opts.rec_set, m.opts.rec_clr, true)
}

fn new_fs(
    plan: &Plan,
    root: BorrowedFd<'_>,
    m: &MountStep,
    fstype: &str,
    source: Option<&str>,
) -> Result<OwnedFd> {
    let i = m.index;
    let pseudo_fs = matches!(fstype, "proc" | "sysfs");
    let target = destination(root, m, Create::Dir, pseudo_fs)?;
    let what = || format!("mount {fstype} on {}", shown(&m.dest));
    let made = match plan.proc_pid_ns.filter(|_| fstype == "proc") {
        // A proc for the pid namespace the init stays out of (rootfs/mod.rs, `proc_pid_ns`).
        Some(pidns) => {
            let fs = plan.take_proc_context().ok_or_else(|| {
                Error::Child(format!(
                    "mounts[{i}]: no proc context for the joined pid namespace"
                ))
            })?;
            kmount::new_proc_from(fs, source, &m.opts, pidns)
        }
        None => kmount::new_fs_for(fstype, source, &m.opts),
    };
    let mnt = match made {
        Ok(mnt) => mnt,
        // A sysfs belongs to a network namespace; in a user namespace without its own one the
        // kernel refuses a new sysfs: bind the host's, as runc does.
        Err(e) if fstype == "sysfs" && e.errno() == Some(libc::EPERM) => sysfs_fallback(m)?,
        Err(e) => return Err(with_index(e, i, what())),
    };
    kmount::set_attr(mnt.as_fd(), m.opts.rec_set, m.opts.rec_clr, true)
        .step(|| format!("mounts[{i}]: set recursive options of {}", what()))?;
    kmount::attach(mnt.as_fd(), target.as_fd()).step(|| format!("mounts[{i}]: {}", what()))?;
    if m.opts.tmpcopyup {
        copy_up(target.as_fd(), mnt.as_fd())
            .step(|| format!("mounts[{i}]: tmpcopyup into {}", shown(&m.dest)))?;
    }
    Ok(mnt)
}

fn with_index(e: FsError, i: usize, what: String) -> Error {
    e.step(format!("mounts[{i}]: {what}"))
}

fn sysfs_fallback(m: &MountStep) -> Result<OwnedFd> {
    let i = m.index;
    let step = || format!("mounts[{i}]: bind the host's /sys (a new sysfs is not permitted here)");
    let src = resolve::open_host("/sys", libc::O_PATH | libc::O_DIRECTORY).step(step)?;
    let tree = kmount::clone_tree(src.as_fd(), true).step(step)?;
    let (set, _) = m.opts.attr();
    // Only setting flags, recursively: the host's submounts get them too.
    kmount::set_attr(tree.as_fd(), set, 0, true).step(step)?;
    Ok(tree)
}

/// tmpcopyup: copy what the rootfs had under the destination (`below`, the directory the
/// tmpfs now covers) into the tmpfs, keeping modes and owners. Nothing is followed: entries
/// are opened by name in their parent's fd with O_NOFOLLOW.
fn copy_up(below: BorrowedFd<'_>, mnt: BorrowedFd<'_>) -> std::io::Result<()> {
    let dir = libc::O_RDONLY | libc::O_DIRECTORY;
    copy_entries(
        resolve::openat(below, ".", dir, 0)?,
        resolve::openat(mnt, ".", dir, 0)?,
        0,
    )
}

/// A copied directory keeps the source's owner and mode (the tmpfs root keeps its `mode=`).
fn copy_dir(from: OwnedFd, to: OwnedFd, depth: u32) -> std::io::Result<()> {
    use nix::unistd::{Gid, Uid};
    let st = nix::sys::stat::fstat(from.as_raw_fd())?;
    let t = to.as_raw_fd();
    nix::unistd::fchown(
        t,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    nix::sys::stat::fchmod(t, Mode::from_bits_truncate(st.st_mode))?;
    copy_entries(from, to, depth)
}

fn copy_entries(from: OwnedFd, to: OwnedFd, depth: u32) -> std::io::Result<()> {
    use nix::sys::stat::{fchmodat, FchmodatFlags};
    use nix::unistd::{fchownat, Gid, Uid};
    if depth > 64 {
        return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
    }
    let (f, t) = (from.as_raw_fd(), to.as_raw_fd());
    let listing = resolve::openat(from.as_fd(), ".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let mut dir = nix::dir::Dir::from_fd(listing.into_raw_fd())?;
    for entry in dir.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let name = std::ffi::OsStr::from_bytes(name.to_bytes());
        let st = nix::sys::stat::fstatat(Some(f), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let fmt = st.st_mode & libc::S_IFMT;
        let mode = Mode::from_bits_truncate(st.st_mode);
        if fmt == libc::S_IFDIR {
            nix::sys::stat::mkdirat(Some(t), name, Mode::from_bits_truncate(0o700))?;
            let open = |d| {
                resolve::openat(
                    d,
                    name,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                    0,
                )
            };
            copy_dir(open(from.as_fd())?, open(to.as_fd())?, depth + 1)?;
            continue;
        } else if fmt == libc::S_IFREG {
            let src = resolve::openat(from.as_fd(), name, libc::O_RDONLY | libc::O_NOFOLLOW, 0)?;
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
            let dst = resolve::openat(to.as_fd(), name, flags, 0o600)?;
            std::io::copy(&mut std::fs::File::from(src), &mut std::fs::File::from(dst))?;
        } else if fmt == libc::S_IFLNK {
            let target = nix::fcntl::readlinkat(Some(f), name)?;
            nix::unistd::symlinkat(target.as_os_str(), Some(t), name)?;
        } else {
            nix::sys::stat::mknodat(
                Some(t),
                name,
                SFlag::from_bits_truncate(fmt),
                mode,
                st.st_rdev,
            )?;
        }
        let (uid, gid) = (
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
        );
        fchownat(
            Some(t),
            name,
            uid,
            gid,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        if fmt != libc::S_IFLNK {
            fchmodat(Some(t), name, mode, FchmodatFlags::NoFollowSymlink)?;
        }
    }
    Ok(())
}
