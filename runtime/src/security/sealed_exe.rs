//! vsrun's own binary, made unwritable before any container can reach it (CVE-2019-5736).
//!
//! Every process vsrun puts into a container (the init, an exec'd process) is a copy of vsrun
//! until its execve. When the container's program is a script starting `#!/proc/self/exe`,
//! the kernel resolves that interpreter to vsrun's own binary and runs it again, now as a
//! container process: dumpable, with the container's ld.so and libc loaded into it. Its
//! /proc/self/exe is then the host's file, which the container can reopen for writing as soon
//! as no vsrun runs any more. Non-dumpable does not help there, and it never stops a container
//! granted CAP_SYS_PTRACE from opening /proc/<pid>/exe of a joining vsrun either.
//!
//! So `create`, `run` and `exec` first move vsrun onto a read-only view of its binary: a
//! detached bind mount of just that file (open_tree), made read-only (mount_setattr). Every
//! exe link of every vsrun process then points into that mount, and opening it for writing is
//! EROFS whatever the opener's capabilities. The mount is in no mount namespace, so nothing in
//! a container can find it to remount it. Where the new mount API is refused, a memfd copy
//! sealed against writes does the same, at the cost of copying the binary. A binary that is
//! already on a read-only mount is used as it is.
//!
//! The move is done in place where the kernel allows it (CAP_SYS_ADMIN or
//! CAP_CHECKPOINT_RESTORE in vsrun's user namespace, so as root):
//! every mapping of the binary is replaced by the same bytes from the view and the exe link
//! is pointed at it (syscall/image.rs), which costs tens of microseconds. Otherwise (rootless)
//! vsrun re-executes itself from the view, a second start of about a millisecond: the one
//! re-exec in vsrun's process model (the README says why design.md's "never re-exec" gives way
//! here); hack/bench.sh measures both.

use crate::error::{Error, Result, StepExt};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicI32, Ordering};

/// Make sure the running binary cannot be written through any exe link of this process:
/// returns when it already cannot, otherwise re-executes vsrun with the same arguments and
/// environment from a sealed view and never returns.
pub fn ensure() -> Result<()> {
    let exe = File::open("/proc/self/exe").step(|| "open /proc/self/exe".into())?;
    if is_sealed(&exe) {
        return Ok(());
    }
    let sealed = match read_only_view(&exe) {
        Ok(view) => view,
        Err(mount_err) => sealed_copy(&exe).map_err(|copy_err| {
            Error::State(format!(
                "cannot seal vsrun's binary against writes from containers (CVE-2019-5736): \
                 read-only bind: {mount_err}; sealed memfd copy: {copy_err}"
            ))
        })?,
    };
    match move_onto(&exe, &sealed) {
        Ok(()) => {
            keep_view_until_the_init_runs(sealed);
            return Ok(());
        }
        // The exe link is the dynamic loader's: a re-exec from its view would run ld.so with
        // vsrun's arguments, and sealing ld.so does not seal vsrun.
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
            return Err(Error::State(format!(
                "cannot seal vsrun's binary against writes from containers (CVE-2019-5736): \
                 {e}; run vsrun itself"
            )));
        }
        Err(_) => {}
    }
    let argv: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let envp: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    let err = crate::syscall::execveat_fd(sealed.as_raw_fd(), &argv, &envp);
    Err(err).step(|| "re-execute vsrun from its sealed binary".into())
}

/// The open_tree fd of the view, kept open after the move (-1: none).
static VIEW: AtomicI32 = AtomicI32::new(-1);

/// Closing the view's open_tree fd dissolves the detached mount, and the kernel then waits for
/// an RCU grace period (namespace_unlock, synchronize_rcu_expedited): 0.1-0.25 ms measured
/// here, in the middle of the start path. The mappings keep the mount alive either way, so
/// the close can wait for a moment when vsrun is only waiting: `release_view` after "go",
/// while the init mounts the rootfs (context/mod.rs). The init closes its inherited copy
/// first thing (context/init.rs), so the parent's close is the last one, off the init's path.
fn keep_view_until_the_init_runs(view: OwnedFd) {
    VIEW.store(view.into_raw_fd(), Ordering::Relaxed);
}

/// Close the view's open_tree fd kept by `ensure` (see `keep_view_until_the_init_runs`); a
/// no-op when there is none. Without a call, the fd goes with the process.
pub fn release_view() {
    let fd = VIEW.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        let _ = nix::unistd::close(fd);
    }
}

/// Move the running image onto `sealed` without a second start (syscall/image.rs). Tried
/// only where the kernel will allow the last step, so that a rootless vsrun, which will
/// re-execute anyway, does not remap itself for nothing. The result is checked the way the
/// re-executed vsrun would check it: its exe link must read as sealed.
fn move_onto(exe: &File, sealed: &OwnedFd) -> std::io::Result<()> {
    let st = nix::sys::stat::fstat(exe.as_raw_fd())?;
    // mmap and PR_SET_MM_EXE_FILE want a file opened for reading; open_tree's is O_PATH.
    let view = File::open(format!("/proc/self/fd/{}", sealed.as_raw_fd()))?;
    crate::syscall::image::move_image_to(view.as_raw_fd(), st.st_dev, st.st_ino)?;
    let now = File::open("/proc/self/exe")?;
    if !is_sealed(&now) {
        return Err(std::io::Error::other(
            "the exe link does not read as sealed",
        ));
    }
    Ok(())
}

/// True when no exe link to `exe` can be opened for writing: it is on a read-only mount, or
/// it is a memfd sealed against writes.
pub fn is_sealed(exe: &File) -> bool {
    is_on_read_only_mount(exe.as_raw_fd()) || is_write_sealed(exe.as_raw_fd())
}

fn is_on_read_only_mount(fd: i32) -> bool {
    crate::syscall::statfs_flags(fd).is_ok_and(|f| f & libc::ST_RDONLY != 0)
}

fn is_write_sealed(fd: i32) -> bool {
    // On a file that is no memfd F_GET_SEALS fails with EINVAL.
    let seals = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GET_SEALS);
    seals.is_ok_and(|s| s & libc::F_SEAL_WRITE != 0)
}

/// A detached, read-only bind mount of the binary itself.
fn read_only_view(exe: &File) -> std::io::Result<OwnedFd> {
    use crate::syscall::{
        mount_setattr, open_tree, MountAttr, MOUNT_ATTR_NODEV, MOUNT_ATTR_RDONLY,
    };
    let view = open_tree(exe.as_raw_fd(), crate::syscall::OPEN_TREE_CLONE)?;
    mount_setattr(
        view.as_raw_fd(),
        false,
        &MountAttr {
            attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV,
            ..Default::default()
        },
    )?;
    // The re-executed vsrun must find itself sealed, or it would re-execute forever.
    if !is_on_read_only_mount(view.as_raw_fd()) {
        return Err(std::io::Error::other(
            "the bind mount does not read as read-only",
        ));
    }
    Ok(view)
}

/// A memfd holding a copy of the binary, sealed so that it can never change again.
fn sealed_copy(exe: &File) -> std::io::Result<OwnedFd> {
    const MFD_EXEC: u32 = 0x10;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // MFD_EXEC exists from Linux 6.3 (vm.memfd_noexec); older kernels refuse the flag.
    let memfd = crate::syscall::memfd_create(c"vsrun", flags | MFD_EXEC)
        .or_else(|_| crate::syscall::memfd_create(c"vsrun", flags))?;
    let mut dst = File::from(memfd);
    std::io::copy(&mut &*exe, &mut dst)?;
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(dst.as_raw_fd(), FcntlArg::F_ADD_SEALS(seals))?;
    if !is_write_sealed(dst.as_raw_fd()) {
        return Err(std::io::Error::other("the memfd does not read as sealed"));
    }
    Ok(OwnedFd::from(dst))
}
