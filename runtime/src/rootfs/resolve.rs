//! Paths inside the rootfs, resolved confined to it (CVE-2021-30465 class). The kernel does
//! the resolution (openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS from an fd of the root),
//! so a symlink such as `rootfs/mnt -> /etc` or `../../..` resolves inside the rootfs. Missing
//! components are created one at a time with mkdirat on the fd of their parent — never through
//! a host path string — and the caller mounts onto the fd it gets back.

use crate::syscall::openat2;
use nix::errno::Errno;
use nix::sys::stat::Mode;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

pub const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// What to create when the path (or a part of it) is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    Nothing,
    /// Directories all the way down.
    Dir,
    /// Directories, then an empty file as the last component (a bind target for a file).
    File,
}

/// Open `path` (relative to `root`) as O_PATH, resolved inside `root`.
pub fn open(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    open_flags(root, path, libc::O_PATH)
}

pub fn open_flags(root: BorrowedFd<'_>, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    openat2(root.as_raw_fd(), path, flags as u64, 0, IN_ROOT)
}

/// Open `path` inside `root`, creating what is missing. Symlinks met on the way are followed
/// inside the root (a dangling one has its target created, as runc's securejoin does).
pub fn open_or_create(root: BorrowedFd<'_>, path: &Path, create: Create) -> io::Result<OwnedFd> {
    match open(root, path) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create != Create::Nothing => {}
        other => return other,
    }
    let mut rest: VecDeque<OsString> = components(path);
    let (mut prefix, mut parent, mut leaf_missing) = start_of_walk(root, &mut rest)?;
    let mut links = 0;
    while let Some(name) = rest.pop_front() {
        let candidate = prefix.join(&name);
        if !std::mem::take(&mut leaf_missing) {
            match open(root, &candidate) {
                Ok(fd) => {
                    prefix = candidate;
                    parent = fd;
                    continue;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        let last = rest.is_empty();
        let made = if last && create == Create::File {
            openat(
                parent.as_fd(),
                &name,
                libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                0o644,
            )
            .map(drop)
        } else {
            nix::sys::stat::mkdirat(
                Some(parent.as_raw_fd()),
                name.as_os_str(),
                Mode::from_bits_truncate(0o755),
            )
            .map_err(io::Error::from)
        };
        match made.map_err(|e| e.raw_os_error()) {
            Ok(()) => rest.push_front(name),
            Err(Some(libc::EEXIST)) => {
                // It exists but does not resolve: a dangling symlink (or a racing creator).
                match nix::fcntl::readlinkat(Some(parent.as_raw_fd()), name.as_os_str()) {
                    Ok(target) => {
                        links += 1;
                        if links > 40 {
                            return Err(io::Error::from_raw_os_error(libc::ELOOP));
                        }
                        let target = PathBuf::from(target);
                        if target.is_absolute() {
                            prefix = PathBuf::new();
                            parent = open(root, &prefix)?;
                        }
                        for c in components(&target).into_iter().rev() {
                            rest.push_front(c);
                        }
                    }
                    Err(Errno::EINVAL) => rest.push_front(name),
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(io::Error::from_raw_os_error(e.unwrap_or(libc::EIO))),
        }
    }
    Ok(parent)
}

/// Where `open_or_create`'s walk starts: the usual miss is the last component alone (a mount
/// point the image lacks), so the parent is tried first, which saves re-opening every
/// component from the root (`run`'s /dev/pts, /dev/shm, /dev/mqueue: five openat2 each, now
/// three). Returns (prefix, its fd, whether the first name left in `rest` is known missing).
fn start_of_walk(
    root: BorrowedFd<'_>,
    rest: &mut VecDeque<OsString>,
) -> io::Result<(PathBuf, OwnedFd, bool)> {
    if rest.len() > 1 {
        let dir: PathBuf = rest.iter().take(rest.len() - 1).collect();
        if let Ok(fd) = open(root, &dir) {
            rest.drain(..rest.len() - 1);
            return Ok((dir, fd, true));
        }
    }
    Ok((PathBuf::new(), open(root, Path::new(""))?, false))
}

/// Open `name` in the directory `dir` as O_PATH without following it (a symlink is returned as
/// itself, for the caller to refuse), creating it first when missing as `create` says.
pub fn open_leaf(
    dir: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    create: Create,
) -> io::Result<OwnedFd> {
    let made = match create {
        Create::Nothing => Ok(()),
        Create::Dir => {
            nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o755))
                .map_err(io::Error::from)
        }
        Create::File => openat(
            dir,
            name,
            libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
            0o644,
        )
        .map(drop),
    };
    match made {
        Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
        _ => {}
    }
    openat(dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0)
}

/// The components of a relative or absolute path, keeping `..` for the kernel to resolve
/// against the real directory (a lexical `..` would be wrong after a symlink).
fn components(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// openat without resolve restrictions (the caller chose `dir` and `path` on purpose: a
/// single name inside a resolved directory, or a host path). Always O_CLOEXEC.
pub fn openat(
    dir: BorrowedFd<'_>,
    path: impl AsRef<Path>,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    openat2(dir.as_raw_fd(), path.as_ref(), flags as u64, mode as u64, 0)
}

/// Open a host path (before pivot_root the init still sees the host's files).
pub fn open_host(path: impl AsRef<Path>, flags: i32) -> io::Result<OwnedFd> {
    openat2(libc::AT_FDCWD, path.as_ref(), flags as u64, 0, 0)
}

/// Lexically clean an absolute container path into a path relative to the root (`/a/../b/.`
/// → `b`), as runc does with filepath.Clean. None if it is not absolute.
pub fn clean(p: &Path) -> Option<PathBuf> {
    if !p.is_absolute() {
        return None;
    }
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Some(out)
}

/// Split a cleaned relative path into its parent and last name (None for the root itself).
pub fn split(p: &Path) -> Option<(&Path, &std::ffi::OsStr)> {
    Some((p.parent()?, p.file_name()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_is_lexical_and_relative() {
        assert_eq!(
            clean(Path::new("/proc/../x/./y/")),
            Some(PathBuf::from("x/y"))
        );
        assert_eq!(clean(Path::new("/../../etc")), Some(PathBuf::from("etc")));
        assert_eq!(clean(Path::new("/")), Some(PathBuf::new()));
        assert_eq!(clean(Path::new("/a/..")), Some(PathBuf::new()));
        assert_eq!(clean(Path::new("//a//b/")), Some(PathBuf::from("a/b")));
        assert_eq!(clean(Path::new("/a/./b/../c")), Some(PathBuf::from("a/c")));
        assert_eq!(clean(Path::new("x/y")), None);
    }

    #[test]
    fn split_names_parent_and_leaf() {
        assert_eq!(
            split(Path::new("dev/null")),
            Some((Path::new("dev"), std::ffi::OsStr::new("null")))
        );
        assert_eq!(split(Path::new("")), None);
    }
}
