//! The kernel mount steps, all through fds (new mount API): a new file system is configured
//! and mounted detached (fsopen/fsconfig/fsmount), a bind source is cloned detached
//! (open_tree), its flags are set before it becomes visible (mount_setattr), and it is
//! attached onto the fd of an already-resolved target (move_mount). No path string is looked
//! up again after it was checked, and nothing depends on a /proc being mounted.

use super::options::MountOptions;
use crate::syscall::{self, MountAttr, AT_RECURSIVE, OPEN_TREE_CLONE};
use libc::c_ulong;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// A failed new-file-system mount: the OS error plus what the file system logged about it.
#[derive(Debug)]
pub struct FsError {
    pub err: io::Error,
    pub log: String,
}

impl FsError {
    pub fn errno(&self) -> Option<i32> {
        self.err.raw_os_error()
    }

    /// Turn into a crate error whose step carries the kernel's own explanation, if any.
    pub fn step(self, step: String) -> crate::Error {
        let step = if self.log.is_empty() {
            step
        } else {
            format!("{step} ({})", self.log)
        };
        crate::Error::Os {
            step,
            source: self.err,
        }
    }
}

/// Configure and create a new file system, detached. `data` items are `key=value` (a string
/// parameter) or `key` (a flag), exactly as mount(2) would split them.
pub fn new_fs(
    fstype: &str,
    source: Option<&str>,
    sb_flags: &[&str],
    data: &[String],
    attr_flags: u64,
) -> Result<OwnedFd, FsError> {
    let fs = syscall::fsopen(fstype).map_err(|err| FsError {
        err,
        log: String::new(),
    })?;
    configure_and_mount(fs, source, sb_flags, data, attr_flags)
}

/// Configure the file system `fs` (an fs_context from fsopen), create its superblock and mount
/// it detached.
fn configure_and_mount(
    fs: OwnedFd,
    source: Option<&str>,
    sb_flags: &[&str],
    data: &[String],
    attr_flags: u64,
) -> Result<OwnedFd, FsError> {
    let fail = |err: io::Error| FsError {
        err,
        log: syscall::fs_context_log(fs.as_raw_fd()),
    };
    if let Some(src) = source {
        syscall::fsconfig_set(fs.as_raw_fd(), "source", Some(src)).map_err(fail)?;
    }
    for f in sb_flags {
        syscall::fsconfig_set(fs.as_raw_fd(), f, None).map_err(fail)?;
    }
    for d in data {
        let (k, v) = match d.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (d.as_str(), None),
        };
        syscall::fsconfig_set(fs.as_raw_fd(), k, v).map_err(fail)?;
    }
    syscall::fsconfig_create(fs.as_raw_fd()).map_err(fail)?;
    syscall::fsmount(fs.as_raw_fd(), attr_flags).map_err(fail)
}

/// A new file system with the flags and data of a config mount.
pub fn new_fs_for(
    fstype: &str,
    source: Option<&str>,
    o: &MountOptions,
) -> Result<OwnedFd, FsError> {
    let sb: Vec<&str> = o.sb_flags().collect();
    new_fs(fstype, source, &sb, &o.data, o.fsmount_attr())
}

/// A proc for the pid namespace `pidns` from `fs`, an fs_context opened inside that namespace
/// by a process the container may have ptraced (context/pidns_proc.rs): nothing about it is
/// trusted. Before its superblock is made with the init's rights it must behave as proc's
/// context and nothing else does: `hidepid=0` taken, `hidepid=3` refused, `hidepid=0` taken
/// again. Parsers that take any value (legacy ones while their page has room, `sloppy` nfs
/// or cifs, ramfs) take `3`; the others refuse `0`; and what the container may change between
/// the calls only ever goes one way (a legacy page fills, `sloppy` cannot be unset), so no
/// sequence of its calls makes another type pass all three. After creation the mount must be
/// a proc whose pid 1 lives in `pidns`. The container may still have set proc's own options
/// (hidepid, gid, subset=pid): the config's are applied after, and none of them reaches
/// outside the container's pid namespace.
pub fn new_proc_from(
    fs: OwnedFd,
    source: Option<&str>,
    o: &MountOptions,
    pidns: RawFd,
) -> Result<OwnedFd, FsError> {
    let untrusted = |what: &str| FsError {
        err: io::Error::other(format!(
            "the proc context handed over from the pid namespace {what}"
        )),
        log: String::new(),
    };
    let set = |v| syscall::fsconfig_set(fs.as_raw_fd(), "hidepid", Some(v));
    let refused = |r: io::Result<()>| matches!(r, Err(e) if e.raw_os_error() == Some(libc::EINVAL));
    if set("0").is_err() || !refused(set("3")) || set("0").is_err() {
        return Err(untrusted("is not proc's"));
    }
    let sb: Vec<&str> = o.sb_flags().collect();
    let mnt = configure_and_mount(fs, source, &sb, &o.data, o.fsmount_attr())?;
    let is_proc = nix::sys::statfs::fstatfs(mnt.as_fd())
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
    if !is_proc {
        return Err(untrusted("made no proc"));
    }
    if !init_lives_in(mnt.as_fd(), pidns) {
        return Err(untrusted("is for another pid namespace"));
    }
    Ok(mnt)
}

/// This proc is the pid namespace `pidns`'s. Its pid 1 lives there: the first process of a pid
/// namespace is its pid 1, and no other namespace's pid 1 does. Where pid 1 cannot be looked
/// at (a host's pid 1 that denies even root, as some sandboxes' do), a listed process living
/// there will do if this proc shows it with one pid only (its NSpid runs from the proc's
/// namespace down to the process's own: one entry means they are the same).
fn init_lives_in(proc: BorrowedFd<'_>, pidns: RawFd) -> bool {
    let Ok(want) = syscall::fd_identity(pidns) else {
        return false;
    };
    let ns_of = |pid: &str| {
        use nix::fcntl::AtFlags;
        let st = nix::sys::stat::fstatat(Some(proc.as_raw_fd()), pid, AtFlags::empty());
        st.map(|st| (st.st_dev, st.st_ino))
    };
    match ns_of("1/ns/pid") {
        Ok(id) => id == want,
        Err(nix::Error::EACCES | nix::Error::EPERM) => any_listed_process_in(proc, want, ns_of),
        Err(_) => false,
    }
}

fn any_listed_process_in(
    proc: BorrowedFd<'_>,
    want: (u64, u64),
    ns_of: impl Fn(&str) -> nix::Result<(u64, u64)>,
) -> bool {
    use nix::{fcntl::OFlag, sys::stat::Mode};
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let Ok(mut dir) = nix::dir::Dir::openat(Some(proc.as_raw_fd()), ".", flags, Mode::empty())
    else {
        return false;
    };
    let found = dir.iter().flatten().any(|e| {
        let name = e.file_name().to_string_lossy();
        name.bytes().all(|b| b.is_ascii_digit())
            && ns_of(&format!("{name}/ns/pid")).is_ok_and(|id| id == want)
            && nspid_depth(proc, &name) == Some(1)
    });
    found
}

/// How many pids the `NSpid:` line of `<pid>/status` in this proc lists.
fn nspid_depth(proc: BorrowedFd<'_>, pid: &str) -> Option<usize> {
    use std::io::Read;
    let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    let fd = super::resolve::openat(proc, format!("{pid}/status"), flags, 0).ok()?;
    let mut text = String::new();
    std::fs::File::from(fd).read_to_string(&mut text).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    Some(line.split_whitespace().count())
}

/// A detached copy of the mount (tree) at `src`: the source of a bind mount.
pub fn clone_tree(src: BorrowedFd<'_>, recursive: bool) -> io::Result<OwnedFd> {
    let flags = OPEN_TREE_CLONE | if recursive { AT_RECURSIVE } else { 0 };
    syscall::open_tree(src.as_raw_fd(), flags)
}

/// Attach the mount `mnt` on top of `target`.
pub fn attach(mnt: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    syscall::move_mount(mnt.as_raw_fd(), target.as_raw_fd())
}

/// umount2(MNT_DETACH) of the mount whose root `mnt` is, named as "." from it so that no path
/// string is looked up; the cwd is put back afterwards.
pub fn detach(mnt: BorrowedFd<'_>) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let cwd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(".")?;
    nix::unistd::fchdir(mnt.as_raw_fd())?;
    let r = nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH);
    nix::unistd::fchdir(cwd.as_raw_fd())?;
    Ok(r?)
}

/// Set and clear mount attributes. In a user namespace the flags a more privileged namespace
/// set on the source are locked (clearing them is EPERM): as runc does, keep them then.
pub fn set_attr(mnt: BorrowedFd<'_>, set: u64, clr: u64, recursive: bool) -> io::Result<()> {
    if set == 0 && clr == 0 {
        return Ok(());
    }
    let attr = |set, clr| MountAttr {
        attr_set: set,
        attr_clr: clr,
        ..Default::default()
    };
    match syscall::mount_setattr(mnt.as_raw_fd(), recursive, &attr(set, clr)) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        other => return other,
    }
    let current = current_attr(mnt)?;
    let clr = clr & !current;
    match syscall::mount_setattr(mnt.as_raw_fd(), recursive, &attr(set, clr)) {
        Err(e)
            if e.raw_os_error() == Some(libc::EPERM) && clr & syscall::MOUNT_ATTR__ATIME != 0 =>
        {
            // The atime mode is locked too: keep the source's.
            let (set, clr) = (
                set & !syscall::MOUNT_ATTR__ATIME,
                clr & !syscall::MOUNT_ATTR__ATIME,
            );
            syscall::mount_setattr(mnt.as_raw_fd(), recursive, &attr(set, clr))
        }
        other => other,
    }
}

/// The per-mount flags of `mnt` as MOUNT_ATTR_* bits (from statvfs).
fn current_attr(mnt: BorrowedFd<'_>) -> io::Result<u64> {
    use nix::sys::statvfs::FsFlags;
    let f = nix::sys::statvfs::fstatvfs(mnt)?.flags();
    let table = [
        (FsFlags::ST_RDONLY, syscall::MOUNT_ATTR_RDONLY),
        (FsFlags::ST_NOSUID, syscall::MOUNT_ATTR_NOSUID),
        (FsFlags::ST_NODEV, syscall::MOUNT_ATTR_NODEV),
        (FsFlags::ST_NOEXEC, syscall::MOUNT_ATTR_NOEXEC),
        (FsFlags::ST_NODIRATIME, syscall::MOUNT_ATTR_NODIRATIME),
    ];
    Ok(table
        .iter()
        .filter(|(st, _)| f.contains(*st))
        .fold(0, |a, (_, m)| a | m))
}

/// Change propagation (MS_SHARED / MS_SLAVE / MS_PRIVATE / MS_UNBINDABLE, | MS_REC).
pub fn set_propagation(mnt: BorrowedFd<'_>, flag: c_ulong) -> io::Result<()> {
    let attr = MountAttr {
        propagation: flag & !libc::MS_REC,
        ..Default::default()
    };
    syscall::mount_setattr(mnt.as_raw_fd(), flag & libc::MS_REC != 0, &attr)
}

/// A readable name for a propagation flag (for error messages).
pub fn propagation_name(flag: c_ulong) -> &'static str {
    let r = flag & libc::MS_REC != 0;
    match (flag & !libc::MS_REC, r) {
        (libc::MS_SHARED, false) => "shared",
        (libc::MS_SHARED, true) => "rshared",
        (libc::MS_SLAVE, false) => "slave",
        (libc::MS_SLAVE, true) => "rslave",
        (libc::MS_PRIVATE, false) => "private",
        (libc::MS_PRIVATE, true) => "rprivate",
        (libc::MS_UNBINDABLE, false) => "unbindable",
        _ => "runbindable",
    }
}

/// `new_proc_from` against contexts a container could hand over in the opener's place (root:
/// fsopen and a new superblock need CAP_SYS_ADMIN, as for hack/test.sh's unit tests).
#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};

    fn own_pid_ns() -> std::fs::File {
        std::fs::File::open("/proc/self/ns/pid").expect("open /proc/self/ns/pid")
    }

    fn refusal(fs: OwnedFd, pidns: RawFd) -> String {
        match new_proc_from(fs, Some("proc"), &MountOptions::default(), pidns) {
            Ok(_) => panic!("a forged proc context was mounted"),
            Err(e) => e.err.to_string(),
        }
    }

    /// `unshare --pid --fork sleep`: a pid namespace that is not ours, and its holder.
    fn child_pid_ns() -> (Child, std::fs::File) {
        let mut child = Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "sleep", "30"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare");
        let ours = syscall::fd_identity(own_pid_ns().as_raw_fd()).expect("stat own pid ns");
        let path = format!("/proc/{}/ns/pid_for_children", child.id());
        for _ in 0..500 {
            if let Ok(f) = std::fs::File::open(&path) {
                if syscall::fd_identity(f.as_raw_fd()).is_ok_and(|id| id != ours) {
                    return (child, f);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("unshare never made its pid namespace");
    }

    #[test]
    fn a_context_of_another_type_is_refused_before_its_superblock_is_made() {
        let ns = own_pid_ns();
        for fstype in ["tmpfs", "ramfs", "mqueue", "sysfs"] {
            let fs = syscall::fsopen(fstype).expect("fsopen");
            let e = refusal(fs, ns.as_raw_fd());
            assert!(e.contains("is not proc's"), "{fstype}: {e}");
        }
    }

    #[test]
    fn a_proc_of_another_pid_namespace_is_refused() {
        let (mut holder, theirs) = child_pid_ns();
        let fs = syscall::fsopen("proc").expect("fsopen proc");
        let e = refusal(fs, theirs.as_raw_fd());
        let _ = holder.kill();
        let _ = holder.wait();
        assert!(e.contains("another pid namespace"), "{e}");
    }

    #[test]
    fn a_proc_of_the_right_pid_namespace_is_mounted() {
        let ns = own_pid_ns();
        let fs = syscall::fsopen("proc").expect("fsopen proc");
        let mnt = new_proc_from(fs, Some("proc"), &MountOptions::default(), ns.as_raw_fd())
            .unwrap_or_else(|e| panic!("{}", e.err));
        assert!(init_lives_in(mnt.as_fd(), ns.as_raw_fd()));
    }
}
