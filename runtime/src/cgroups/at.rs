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
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
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
pub(super) fn read(dir: BorrowedFd<'_>, file: impl AsRef<Path>) -> String {
    let mut s = String::new();
    let _ = openat(dir, file, libc::O_RDONLY | libc::O_NOFOLLOW, 0)
        .map(File::from)
        .and_then(|mut f| f.read_to_string(&mut s));
    s
}

/// Write `value` to one file of an open cgroup directory, in one write(2).
pub(super) fn write(dir: BorrowedFd<'_>, file: impl AsRef<Path>, value: &str) -> io::Result<()> {
    open_file(dir, file)?.write_all(value.as_bytes())
}

/// One file of an open cgroup directory, opened for writing.
pub(super) fn open_file(dir: BorrowedFd<'_>, file: impl AsRef<Path>) -> io::Result<File> {
    openat(dir, file, libc::O_WRONLY | libc::O_NOFOLLOW, 0).map(File::from)
}

pub(super) fn exists(dir: BorrowedFd<'_>, file: impl AsRef<Path>) -> bool {
    nix::unistd::faccessat(
        Some(dir.as_raw_fd()),
        file.as_ref(),
        nix::unistd::AccessFlags::F_OK,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .is_ok()
}

/// mkdir `rel` below the open `base`, and its missing ancestors first (mkdirat of the whole
/// relative path, as `create_dir_all` does with absolute ones: one syscall when the parent
/// exists). Returns whether `rel` itself was made; the paths made (`path` is `rel` as an
/// absolute path, for rollback) go to `made`, outermost first, also when a later one fails.
/// `on_made` runs on each new directory, given as relative to `base`, before the next level
/// (v1 cpusets: a child of an empty cpuset cannot be given cpus).
pub(super) fn mkdir_all(
    base: BorrowedFd<'_>,
    rel: &Path,
    path: &Path,
    made: &mut Vec<PathBuf>,
    on_made: &mut impl FnMut(&Path) -> io::Result<()>,
) -> io::Result<bool> {
    let mkdir = || nix::sys::stat::mkdirat(Some(base.as_raw_fd()), rel, mode());
    let mut result = mkdir();
    if result == Err(nix::errno::Errno::ENOENT) {
        if let (Some(pr), Some(pp)) = (rel.parent(), path.parent()) {
            if !pr.as_os_str().is_empty() {
                mkdir_all(base, pr, pp, made, on_made)?;
                result = mkdir();
            }
        }
    }
    match result {
        Ok(()) => {
            made.push(path.to_path_buf());
            on_made(rel)?;
            Ok(true)
        }
        // Existing, or another run made it in between: not ours to remove.
        Err(nix::errno::Errno::EEXIST) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn mode() -> Mode {
    Mode::from_bits_truncate(0o755)
}

/// Remove `rel` below the open `base` with every directory below it, SIGKILLing what is
/// still in them. rmdir first: a container's cgroup seldom has children, and listing it
/// costs an open, getdents and close per hierarchy. `path` is for messages only.
pub(super) fn remove_tree(base: BorrowedFd<'_>, rel: &Path, path: &Path) -> io::Result<()> {
    for attempt in 0..200 {
        match nix::unistd::unlinkat(Some(base.as_raw_fd()), rel, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            // Busy: child cgroups, members still exiting, or something that outlived its
            // init. Children go first (depth first); then kill, retry.
            Err(nix::errno::Errno::EBUSY | nix::errno::Errno::ENOTEMPTY) if attempt < 199 => {
                let subs = subdirs(base, rel)?;
                for sub in &subs {
                    remove_tree(base, &rel.join(sub), &path.join(sub))?;
                }
                if subs.is_empty() {
                    kill_members(base, rel);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// v2 (5.14+): the whole cgroup at once, no pid to race with; else each pid in it.
fn kill_members(base: BorrowedFd<'_>, rel: &Path) {
    if write(base, rel.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    for pid in read(base, rel.join("cgroup.procs"))
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
    {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
}

/// The subdirectories of `rel` below `base` (the cgroups a container made below its own).
fn subdirs(base: BorrowedFd<'_>, rel: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    use nix::fcntl::OFlag;
    use std::os::unix::ffi::OsStrExt;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut d = match nix::dir::Dir::openat(Some(base.as_raw_fd()), rel, flags, Mode::empty()) {
        Ok(d) => d,
        Err(nix::errno::Errno::ENOENT) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
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
    use std::os::fd::AsFd;

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
    fn mkdir_all_and_remove_tree_relative_to_an_fd() {
        let base = std::env::temp_dir().join(format!("vsrun-at-{}", std::process::id()));
        std::fs::create_dir_all(base.join("c")).unwrap();
        let fd = open_host(&base, DIR).unwrap();
        let (mut made, mut seen) = (Vec::new(), Vec::new());
        let mut on_made = |rel: &Path| {
            seen.push(rel.to_path_buf());
            Ok(())
        };
        let rel = Path::new("c/sub/deeper");
        assert!(mkdir_all(fd.as_fd(), rel, &base.join(rel), &mut made, &mut on_made).unwrap());
        // The existing `c` is not reported; the new ones are, outermost first.
        assert_eq!(made, [base.join("c/sub"), base.join("c/sub/deeper")]);
        assert_eq!(seen, [Path::new("c/sub"), Path::new("c/sub/deeper")]);
        assert!(!mkdir_all(fd.as_fd(), rel, &base.join(rel), &mut made, &mut |_| Ok(())).unwrap());
        assert_eq!(made.len(), 2);
        remove_tree(fd.as_fd(), Path::new("c"), &base.join("c")).unwrap();
        assert!(!base.join("c").exists());
        // Idempotent: a second remove of what is gone is no error.
        remove_tree(fd.as_fd(), Path::new("c"), &base.join("c")).unwrap();
        std::fs::remove_dir(&base).unwrap();
    }
}
