//! A proc for a pid namespace joined by path, made without a privileged process ever entering
//! that namespace (issue 12; README, "Security").
//!
//! Every process in the joined namespace can see a newcomer and, granted CAP_SYS_PTRACE, ptrace
//! it and use its /proc/<pid>/root. So the init stays outside (init.rs, `hand_over`). But proc
//! shows the pid namespace of the process that opens its fs_context (fsopen), and checks the
//! mounter's rights only when the superblock is made (FSCONFIG_CMD_CREATE). Hence:
//! - the helper, forked by the init and never in the joined namespace: closes every fd but
//!   its socket, takes a mount namespace of its own whose root is an empty read-only tmpfs,
//!   then one owned by a fresh user namespace (made for it by a short-lived child), sets the
//!   joined pid namespace for its children, and drops every capability, to the overflow ids;
//! - the opener, forked by the helper: born in the joined namespace holding no capability in
//!   any set, rooted in the empty tmpfs, holding nothing but the socket. It may fsopen("proc")
//!   only because its uid owns the user namespace that owns its mount namespace
//!   (user_namespaces(7)). It sends one context per proc mount and exits.
//!
//! The init creates, checks and mounts them (rootfs/kmount.rs, `new_proc_from`). The container
//! can ptrace the opener and send anything in its place: nothing received is trusted.
//! Linux 6.15 added proc's `pidns` option for the same end; this works on every kernel
//! (6.1 included), so it is the one path.

use super::namespaces::Join;
use crate::error::{Error, Result, StepExt};
use crate::syscall::{self, proc::exit_now, scm};
use nix::sched::CloneFlags;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Gid, Uid};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

/// The kernel's overflow ids ("nobody"): a container that takes the opener over gains no uid
/// (keyrings, IPC, files) of the host's root.
const NOBODY: u32 = 65534;

type Step<T = ()> = std::result::Result<T, (&'static str, io::Error)>;

trait At<T> {
    fn at(self, what: &'static str) -> Step<T>;
}

impl<T, E: Into<io::Error>> At<T> for std::result::Result<T, E> {
    fn at(self, what: &'static str) -> Step<T> {
        self.map_err(|e| (what, e.into()))
    }
}

/// Init side: `count` proc fs_contexts opened inside the pid namespace `pidns`.
pub fn open_contexts(pidns: &Join, count: usize) -> Result<Vec<OwnedFd>> {
    let step = || "open proc in the pid namespace joined by path (linux.namespaces)".to_string();
    let flags = SockFlag::SOCK_CLOEXEC;
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, flags)
        .map_err(io::Error::from)
        .step(step)?;
    // Rootless, the helper has no CAP_SYS_PTRACE over the host's user namespace, to which
    // vsrun's memory belongs: setns through a pidfd needs ptrace access to the namespace
    // maker, which then must be dumpable.
    let maker_dumpable = crate::rootless::auto();
    let helper = match syscall::proc::fork().step(step)? {
        ForkResult::Child => {
            drop(ours);
            helper(pidns.fd.as_raw_fd(), theirs, count, maker_dumpable)
        }
        ForkResult::Parent { child } => child,
    };
    drop(theirs);
    // The helper waits for the opener: once it is gone all they sent is queued, and only that
    // is read (the container may hold a copy of the opener's socket and never close it).
    let status = waitpid(helper, None).map_err(io::Error::from).step(step)?;
    let nonblocking = nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK);
    nix::fcntl::fcntl(ours.as_raw_fd(), nonblocking)
        .map_err(io::Error::from)
        .step(step)?;
    let mut fds = Vec::with_capacity(count);
    while fds.len() < count {
        let mut buf = [0u8; 512];
        let (n, mut got) = match scm::recv_with_fds(ours.as_fd(), &mut buf) {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                return Err(Error::Child(format!(
                    "{}: the helper ended ({status:?}) after {} of {count} contexts",
                    step(),
                    fds.len()
                )))
            }
            Err(e) => return Err(e).step(step),
        };
        match (buf.first(), got.pop()) {
            (Some(b'F'), Some(fd)) if n == 1 => fds.push(fd),
            (Some(b'E'), _) => {
                // Written where the container can reach: one line, printable, short.
                let text: String = String::from_utf8_lossy(&buf[1..n])
                    .chars()
                    .map(|c| if c.is_control() { '?' } else { c })
                    .take(200)
                    .collect();
                return Err(Error::Child(format!("{}: {text}", step())));
            }
            _ => return Err(Error::Child(format!("{}: unexpected message", step()))),
        }
    }
    Ok(fds)
}

/// The helper (outside the joined namespace): reports a failed step as "E<step>: <error>".
fn helper(pidns: RawFd, sock: OwnedFd, count: usize, maker_dumpable: bool) -> ! {
    let code = match helper_steps(pidns, sock.as_fd(), count, maker_dumpable) {
        Ok(()) => 0,
        Err((what, e)) => {
            let msg = format!("E{what}: {e}");
            let _ = scm::send_with_fd(sock.as_fd(), msg.as_bytes(), None);
            1
        }
    };
    exit_now(code)
}

fn helper_steps(pidns: RawFd, sock: BorrowedFd<'_>, count: usize, maker_dumpable: bool) -> Step {
    syscall::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as u64).at("prctl(PR_SET_PDEATHSIG)")?;
    // The opener is the container's to take: it inherits nothing of the init's.
    keep_only_fds(sock.as_raw_fd(), pidns).at("close the init's fds")?;
    enter_empty_root()?;
    let owner = enter_owned_mount_namespace(maker_dumpable)?;
    syscall::setns(pidns, libc::CLONE_NEWPID).at("setns into the pid namespace")?;
    nix::unistd::close(pidns).at("close the pid namespace")?;
    drop_privileges(owner)?;
    let opener = match syscall::proc::fork().at("fork the opener")? {
        ForkResult::Child => opener(sock, count),
        ForkResult::Parent { child } => child,
    };
    wait_for_opener(opener)
}

/// How long the opener may take. It lives where the container can stop it (SIGSTOP with
/// CAP_KILL, or ptrace) and a stopped child never reports to waitpid: past this it is killed
/// and the create fails, instead of waiting forever. It needs milliseconds, even emulated.
const OPENER_DEADLINE_MS: u16 = 10_000;

fn wait_for_opener(opener: nix::unistd::Pid) -> Step {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let pidfd = syscall::pidfd_open(opener.as_raw()).at("pidfd_open the opener")?;
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let exited = poll(&mut fds, PollTimeout::from(OPENER_DEADLINE_MS)).at("wait for the opener")?;
    if exited == 0 {
        let _ = syscall::pidfd_send_signal(&pidfd, libc::SIGKILL);
        let _ = waitpid(opener, None);
        let why = "did not finish in 10 s: stopped or traced from inside the pid namespace";
        return Err(("the opener", io::Error::other(why)));
    }
    match waitpid(opener, None).at("wait for the opener")? {
        WaitStatus::Exited(_, 0) => Ok(()),
        other => Err(("the opener", io::Error::other(format!("{other:?}")))),
    }
}

/// Close every fd except `a` and `b`.
fn keep_only_fds(a: RawFd, b: RawFd) -> io::Result<()> {
    let mut next = 0u32;
    for keep in [a.min(b) as u32, a.max(b) as u32] {
        if keep > next {
            syscall::close_range(next, keep - 1)?;
        }
        next = next.max(keep + 1);
    }
    syscall::close_range(next, u32::MAX)
}

/// A mount namespace of our own whose root is an empty read-only tmpfs, the old root detached
/// (pivot_root(".", ".") then umount2(".")): nothing of the host stays reachable from it.
fn enter_empty_root() -> Step {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).at("unshare a mount namespace")?;
    let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, private, None::<&str>).at("make / private")?;
    let fs = syscall::fsopen("tmpfs").at("fsopen tmpfs")?;
    syscall::fsconfig_create(fs.as_raw_fd()).at("create a tmpfs")?;
    let flags = syscall::MOUNT_ATTR_RDONLY
        | syscall::MOUNT_ATTR_NOSUID
        | syscall::MOUNT_ATTR_NODEV
        | syscall::MOUNT_ATTR_NOEXEC;
    let tmpfs = syscall::fsmount(fs.as_raw_fd(), flags).at("fsmount the tmpfs")?;
    syscall::move_mount_to_path(tmpfs.as_raw_fd(), Path::new("/")).at("mount the tmpfs on /")?;
    nix::unistd::fchdir(tmpfs.as_raw_fd()).at("chdir into the tmpfs")?;
    syscall::pivot_root(Path::new("."), Path::new(".")).at("pivot_root into the tmpfs")?;
    umount2(".", MntFlags::MNT_DETACH).at("detach the old root")?;
    nix::unistd::chdir("/").at("chdir /")
}

/// Join a mount namespace (a copy of ours) owned by a fresh user namespace whose owner is the
/// uid returned: a child makes both, as nobody where that id is mapped and user namespaces
/// may be made by it, else as our own uid, and we setns into its mount namespace (which
/// keeps both alive). Our root becomes that namespace's root: the empty tmpfs. The maker
/// holds nothing but its uid's rights over that empty namespace, so it may be made dumpable
/// where `open_contexts` needs it (rootless).
fn enter_owned_mount_namespace(dumpable: bool) -> Step<Uid> {
    // Never the host's root as the owner: an opener running as the host's uid 0, even without
    // capabilities, would share root's keyrings and own root's user namespaces. vsrun's own
    // uid where that is not the host's root (rootless, uid 0 of a user namespace included).
    let me = Uid::effective();
    let owners = [
        Some(Uid::from_raw(NOBODY)),
        crate::rootless::unprivileged().then_some(me),
    ];
    for owner in owners.into_iter().flatten() {
        if let Some(pid) = make_owned_namespaces(owner, dumpable)? {
            let pidfd = syscall::pidfd_open(pid).at("pidfd_open")?;
            let joined = syscall::setns(pidfd.as_raw_fd(), libc::CLONE_NEWNS);
            let _ = syscall::pidfd_send_signal(&pidfd, libc::SIGKILL);
            let _ = waitpid(nix::unistd::Pid::from_raw(pid), None);
            joined.at("setns into the owned mount namespace")?;
            return Ok(owner);
        }
    }
    Err((
        "make a user namespace as uid 65534 (needs unprivileged user namespaces, and 65534 mapped)",
        io::Error::from_raw_os_error(libc::EPERM),
    ))
}

/// Fork a child that becomes `owner`, unshares a user and a mount namespace and waits to be
/// killed. Returns its pid once it has them, None when it could not.
fn make_owned_namespaces(owner: Uid, dumpable: bool) -> Step<Option<i32>> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).at("pipe")?;
    let child = match syscall::proc::fork().at("fork the namespace maker")? {
        ForkResult::Child => {
            drop(r);
            let made = syscall::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as u64)
                .and_then(|()| become_user(owner))
                .and_then(|()| {
                    let flags = CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS;
                    Ok(nix::sched::unshare(flags)?)
                })
                .and_then(|()| match dumpable {
                    true => syscall::prctl(libc::PR_SET_DUMPABLE, 1),
                    false => Ok(()),
                })
                .and_then(|()| Ok(nix::unistd::write(&w, b"1")?));
            if made.is_err() {
                exit_now(1)
            }
            loop {
                nix::unistd::pause();
            }
        }
        ForkResult::Parent { child } => child,
    };
    drop(w);
    let mut b = [0u8; 1];
    if nix::unistd::read(r.as_raw_fd(), &mut b).at("read from the namespace maker")? == 1 {
        return Ok(Some(child.as_raw()));
    }
    let _ = waitpid(child, None);
    Ok(None)
}

/// setgroups([]), then the gid and uid of `owner` (nobody's gid with nobody). Leaving uid 0
/// clears the permitted and effective capabilities.
fn become_user(owner: Uid) -> io::Result<()> {
    if owner == Uid::effective() {
        return Ok(());
    }
    let parent = nix::unistd::getppid();
    // Denied in a user namespace whose setgroups is "deny" (rootless): its groups stay.
    match nix::unistd::setgroups(&[]) {
        Err(nix::Error::EPERM) | Ok(()) => {}
        Err(e) => return Err(e.into()),
    }
    let g = Gid::from_raw(owner.as_raw());
    nix::unistd::setresgid(g, g, g)?;
    nix::unistd::setresuid(owner, owner, owner)?;
    // A change of ids clears the parent-death signal: set it again, and leave if the parent
    // went in between (nothing would kill us then).
    syscall::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as u64)?;
    if nix::unistd::getppid() != parent {
        exit_now(1)
    }
    Ok(())
}

/// No capability in any set (bounding and ambient too), no_new_privs, not dumpable, then the
/// owner's ids: the opener holds nothing the container lacks.
fn drop_privileges(owner: Uid) -> Step {
    syscall::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).at("prctl(PR_SET_NO_NEW_PRIVS)")?;
    syscall::prctl(libc::PR_SET_DUMPABLE, 0).at("prctl(PR_SET_DUMPABLE)")?;
    for cap in 0..64 {
        match syscall::prctl(libc::PR_CAPBSET_DROP, cap) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            other => other.at("prctl(PR_CAPBSET_DROP)")?,
        }
    }
    let clear_all = libc::PR_CAP_AMBIENT_CLEAR_ALL as u64;
    syscall::prctl(libc::PR_CAP_AMBIENT, clear_all).at("clear the ambient capabilities")?;
    become_user(owner).at("become the namespace's owner")?;
    syscall::capset(0, 0, 0).at("capset")
}

/// The opener, in the joined pid namespace: one proc context per mount, then exit.
fn opener(sock: BorrowedFd<'_>, count: usize) -> ! {
    for _ in 0..count {
        let sent =
            syscall::fsopen("proc").and_then(|fs| scm::send_with_fd(sock, b"F", Some(fs.as_fd())));
        if let Err(e) = sent {
            let _ = scm::send_with_fd(sock, format!("Efsopen proc: {e}").as_bytes(), None);
            exit_now(1)
        }
    }
    exit_now(0)
}
