//! The container's cgroup directories reached through fds instead of absolute paths.
//!
//! Every path walk through /sys/fs/cgroup/<hierarchy>/... revalidates each component under
//! kernfs locks: /sys and /sys/fs under sysfs's (taken for writing by every network namespace
//! set up or torn down), the cgroup components under their hierarchy's (taken for writing by
//! every cgroup mkdir and rmdir). With 100 `run`s at once those revalidations were about 90 %
//! of vsrun's lock waits. So /sys/fs/cgroup is opened once per step, each container directory
//! once below it, and every file, mkdir and rmdir after that is one component relative to an
//! fd. All fds here are O_CLOEXEC (openat2 adds it) and none outlives the step that opened
//! it, except the ones `Joining` carries across the clone on purpose.

use super::CGROUP_ROOT;
use crate::rootfs::resolve::{open_host, openat};
use nix::sys::stat::Mode;
use nix::unistd::UnlinkatFlags;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

const DIR: i32 = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;

/// /sys/fs/cgroup, the one absolute walk of a step.
pub(super) fn open_root() -> io::Result<OwnedFd> {
    open_host(CGROUP_ROOT, libc::O_PATH | libc::O_DIRECTORY)
}

/// `dir` (an absolute path below /sys/fs/cgroup) relative to the root's fd; a hierarchy
/// mounted elsewhere is walked from `/`, as before.
pub(super) fn open_dir(root: BorrowedFd<'_>, dir: &Path) -> io::Result<OwnedFd> {
    match below_root(dir) {
        Some(rel) if rel.as_os_str().is_empty() => openat(root, ".", DIR, 0),
        Some(rel) => openat(root, rel, DIR, 0),
        None => open_host(dir, DIR),
    }
}

/// `dir` relative to /sys/fs/cgroup, when it is below it and plain (no `..`, no `.`).
pub(super) fn below_root(dir: &Path) -> Option<&Path> {
    let rel = dir.strip_prefix(CGROUP_ROOT).ok()?;
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then_some(rel)
}

/// One file of an open cgroup directory; "" when it cannot be read (absent controller file).
pub(super) fn read(dir: BorrowedFd<'_>, file: &str) -> String {
    let mut s = String::new();
    let _ = openat(dir, file, libc::O_RDONLY | libc::O_NOFOLLOW, 0)
        .map(File::from)
        .and_then(|mut f| f.read_to_string(&mut s));
    s
}

/// Write `value` to one file of an open cgroup directory, in one write(2).
pub(super) fn write(dir: BorrowedFd<'_>, file: &str, value: &str) -> io::Result<()> {
    open_file(dir, file)?.write_all(value.as_bytes())
}

/// One file of an open cgroup directory, opened for writing.
pub(super) fn open_file(dir: BorrowedFd<'_>, file: &str) -> io::Result<File> {
    openat(dir, file, libc::O_WRONLY | libc::O_NOFOLLOW, 0).map(File::from)
}

pub(super) fn exists(dir: BorrowedFd<'_>, file: &str) -> bool {
    nix::unistd::faccessat(
        Some(dir.as_raw_fd()),
        file,
        nix::unistd::AccessFlags::F_OK,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .is_ok()
}

/// Make `dir`, which the caller found missing, and its missing ancestors (mkdirat, one
/// component at a time from /sys/fs/cgroup), and open it. Returns the open directory; the paths it made go to `made`, outermost
/// first, also when a later step fails. `on_made` runs on each new directory with its parent's fd, before the next level
/// (v1 cpusets: a child of an empty cpuset cannot be given cpus).
pub(super) fn make_path(
    root: BorrowedFd<'_>,
    dir: &Path,
    made: &mut Vec<PathBuf>,
    mut on_made: impl FnMut(BorrowedFd<'_>, BorrowedFd<'_>) -> io::Result<()>,
) -> io::Result<OwnedFd> {
    let Some(rel) = below_root(dir) else {
        let mut missing: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|d| !d.is_dir())
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        made.extend(missing);
        std::fs::create_dir_all(dir)?;
        return open_dir(root, dir);
    };
    let mut cur = openat(root, ".", DIR, 0)?;
    let mut path = PathBuf::from(CGROUP_ROOT);
    for part in rel.components() {
        path.push(part);
        let next = match openat(cur.as_fd(), part, DIR, 0) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match nix::sys::stat::mkdirat(Some(cur.as_raw_fd()), part.as_os_str(), mode()) {
                    Ok(()) => made.push(path.clone()),
                    // Another run made it in between: it is not ours to remove.
                    Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                let fd = openat(cur.as_fd(), part, DIR, 0)?;
                if made.last() == Some(&path) {
                    on_made(cur.as_fd(), fd.as_fd())?;
                }
                fd
            }
            Err(e) => return Err(e),
        };
        cur = next;
    }
    Ok(cur)
}

fn mode() -> Mode {
    Mode::from_bits_truncate(0o755)
}

/// Remove `name` below the open `parent` with every directory below it (depth first),
/// SIGKILLing what is still in them. `path` is for messages only.
pub(super) fn remove_tree(parent: BorrowedFd<'_>, name: &Path, path: &Path) -> io::Result<()> {
    let dir = match openat(parent, name, DIR, 0) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for sub in subdirs(dir.as_fd())? {
        remove_tree(dir.as_fd(), Path::new(&sub), &path.join(&sub))?;
    }
    for attempt in 0..200 {
        match nix::unistd::unlinkat(Some(parent.as_raw_fd()), name, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            // Busy: members are still exiting, or something outlived its init. Kill, retry.
            Err(nix::errno::Errno::EBUSY) if attempt < 199 => {
                kill_members(dir.as_fd());
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// v2 (5.14+): the whole cgroup at once, no pid to race with; else each pid in it.
fn kill_members(dir: BorrowedFd<'_>) {
    if write(dir, "cgroup.kill", "1").is_ok() {
        return;
    }
    for pid in read(dir, "cgroup.procs")
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
    {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
}

/// The subdirectories of an open directory (the cgroups a container made below its own).
fn subdirs(dir: BorrowedFd<'_>) -> io::Result<Vec<std::ffi::OsString>> {
    use nix::fcntl::OFlag;
    use std::os::unix::ffi::OsStrExt;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut d = nix::dir::Dir::openat(Some(dir.as_raw_fd()), ".", flags, Mode::empty())?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e?;
        let name = e.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        if e.file_type() == Some(nix::dir::Type::Directory) {
            out.push(std::ffi::OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_root_takes_plain_paths_only() {
        let p = |s: &str| below_root(Path::new(s)).map(|p| p.to_path_buf());
        assert_eq!(p("/sys/fs/cgroup"), Some(PathBuf::new()));
        assert_eq!(
            p("/sys/fs/cgroup/cpu,cpuacct/vsrun/x"),
            Some(PathBuf::from("cpu,cpuacct/vsrun/x"))
        );
        assert_eq!(p("/sys/fs/cgroup/cpu/../memory/x"), None);
        assert_eq!(p("/sys/fs/cgroupx/y"), None);
        assert_eq!(p("/elsewhere/cpu"), None);
    }

    #[test]
    fn make_path_and_remove_tree_relative_to_fds() {
        // A tmpfs-free stand-in: the functions only need directories, so a temp dir works
        // through the `None` (not below /sys/fs/cgroup) and fd-relative paths alike.
        let base = std::env::temp_dir().join(format!("vsrun-at-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let parent = open_host(&base, DIR).unwrap();
        std::fs::create_dir_all(base.join("c/sub/deeper")).unwrap();
        std::fs::write(base.join("c/file"), "").unwrap();
        assert_eq!(
            subdirs(openat(parent.as_fd(), "c", DIR, 0).unwrap().as_fd()).unwrap(),
            ["sub"]
        );
        // Plain files cannot be in a real cgroup directory; remove only the directories here.
        std::fs::remove_file(base.join("c/file")).unwrap();
        remove_tree(parent.as_fd(), Path::new("c"), &base.join("c")).unwrap();
        assert!(!base.join("c").exists());
        remove_tree(parent.as_fd(), Path::new("c"), &base.join("c")).unwrap();
        std::fs::remove_dir(&base).unwrap();
    }
}
