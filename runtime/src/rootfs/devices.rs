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
    for d in &plan.devices {
        create_one(plan, root, d)?;
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

fn create_one(plan: &Plan, root: BorrowedFd<'_>, d: &Device) -> Result<()> {
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
    bind_host_node(dir.as_fd(), name, d)
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
    let target = match empty_file(dir, name, 0) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            let f = resolve::openat(dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0)
                .step(|| format!("open {}", shown(d)))?;
            let st = nix::sys::stat::fstat(f.as_raw_fd()).step(|| format!("stat {}", shown(d)))?;
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
                return Ok(());
            }
            f
        }
        Err(e) => return Err(e).step(|| format!("create {} to bind the host's node on", shown(d))),
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
