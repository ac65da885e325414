//! The container init between clone and execve. It runs on a copy of vsrun's memory, performs
//! only kernel steps (everything was validated by the parent), reports failure as one line over
//! the sync socket, and never returns into vsrun's own code.

use super::sync::{self, Msg};
use super::{exec, namespaces, InitConfig, StartGate};
use crate::error::{Error, Result, StepExt};
use crate::hooks::HookPoint;
use oci_spec::runtime::ContainerState;
use std::io::Read;
use std::os::unix::net::UnixStream;

pub fn run(cfg: &InitConfig, joining: &crate::cgroups::Joining, mut sock: UnixStream) -> ! {
    if let Err(e) = steps(cfg, joining, &mut sock) {
        let _ = sync::send(&mut sock, &Msg::Error(e.to_string()));
    }
    // _exit: vsrun's atexit handlers and destructors belong to the parent.
    crate::syscall::proc::exit_now(1)
}

fn steps(cfg: &InitConfig, joining: &crate::cgroups::Joining, sock: &mut UnixStream) -> Result<()> {
    drop_parent_fds_and_join(cfg, joining)?;
    let hook_state = match sync::recv(sock)? {
        Some(Msg::Go(state)) => state,
        Some(other) => return Err(Error::Child(format!("unexpected message {other:?}"))),
        None => {
            return Err(Error::Child(
                "vsrun exited before the init was released".into(),
            ))
        }
    };
    if cfg.ns.unprivileged_maps {
        // Dumpable only until the parent wrote the id maps (mod.rs, spawn).
        crate::syscall::prctl(libc::PR_SET_DUMPABLE, 0)
            .step(|| "prctl(PR_SET_DUMPABLE, 0)".into())?;
    }
    let joined_denies_setgroups = namespaces::enter(&cfg.ns)?;
    namespaces::become_userns_root(&cfg.ns)?;
    namespaces::enter_container_root(&cfg.ns)?;
    crate::task::apply_early(&cfg.task)?;
    join_session_keyring(cfg)?;
    set_names(cfg)?;
    if let Some(plan) = &cfg.rootfs {
        open_procs_of_joined_pid_namespace(cfg, plan)?;
        crate::rootfs::setup_with_hooks(plan, &mut || create_hooks(cfg, sock, &hook_state))?;
    }
    let handover = cfg.ns.pid_join.is_some();
    if let Some(t) = &cfg.terminal {
        let master = crate::terminal::setup_in_init(
            t.size,
            t.bind_console,
            !handover,
            cfg.security.user.uid,
        )?;
        sync::send(sock, &Msg::Pty(master))?;
    } else if !handover {
        // Its own session and process group, as with runc (a terminal sets them up above):
        // otherwise both belong to a process outside the container's pid namespace.
        nix::unistd::setsid().step(|| "setsid".into())?;
    }
    enter_cwd(cfg)?;
    namespaces::enter_pid_for_children(&cfg.ns)?;
    // Everything the init itself needs is done before the filter; the filter is the last step
    // before execve, so a profile listing only the program's own syscalls works (design.md).
    crate::security::drop_to_user(&cfg.security, joined_denies_setgroups)?;
    let env = exec::final_env(&cfg.program, cfg.security.user.uid);
    let path = exec::find_executable(&cfg.program)?;
    let call = exec::prepare(&path, &cfg.program, &env);
    let kept = crate::security::set_capabilities(&cfg.security, cfg.seccomp.is_some())?;
    crate::security::set_no_new_privs(&cfg.security)?;
    crate::security::labels::apply(&cfg.security.labels)?;
    exec::reset_signals()?;
    exec::seal_fds(cfg.preserve_fds)?;
    // A NOTIFY listener must reach the agent (through vsrun) during create: then the filter
    // comes before "ready", and the profile must allow handing it over (as with runc). So
    // must a filter that needs CAP_SYS_ADMIN to load, whenever a process would otherwise hold
    // it in sight of others: a child forked into a joined pid namespace, or an init waiting
    // for `start` (an exec'd process granted CAP_SYS_PTRACE could ptrace it meanwhile).
    let notify = cfg.seccomp.as_ref().is_some_and(|f| f.uses_notify());
    let waits = handover || matches!(cfg.gate, StartGate::Fifo(_));
    let load_here =
        notify || (waits && !crate::security::loads_with_final_credentials(&cfg.security));
    if load_here && matches!(cfg.gate, StartGate::Fifo(_)) && !handover {
        give_back_memory();
    }
    if load_here {
        load_seccomp(cfg, sock)?;
        crate::security::drop_kept(&cfg.security, kept)?;
    }
    if handover {
        return hand_over(cfg, sock, &hook_state, &call, !load_here);
    }
    sync::send_ready(sock)?;
    wait_and_exec(cfg, &hook_state, &call, !load_here, kept)
}

/// The first step: the fds that are the parent's business go (the state-dir lock, the cgroup
/// directory of CLONE_INTO_CGROUP), and the init joins its v1 cgroups.
fn drop_parent_fds_and_join(cfg: &InitConfig, joining: &crate::cgroups::Joining) -> Result<()> {
    if let Some(fd) = cfg.lock_fd {
        // The state-dir flock must stay with the parent, not live on in the container.
        let _ = nix::unistd::close(fd);
    }
    // The view of vsrun's binary (security/sealed_exe.rs): its last close, which waits for an
    // RCU grace period, is the parent's, while this init mounts.
    crate::security::sealed_exe::release_view();
    if let Some(dir) = &joining.v2_dir {
        // The cgroup directory the clone placed the init in (CLONE_INTO_CGROUP) is a host
        // directory: kept until the execve, a container process that may ptrace the init
        // (CAP_SYS_PTRACE) could walk `..` from /proc/<init>/fd/N to the host's root. The init
        // never returns, so nothing closes this number again.
        let _ = nix::unistd::close(std::os::fd::AsRawFd::as_raw_fd(dir));
    }
    crate::cgroups::join_self(joining)?;
    Ok(())
}

/// The rest, in the process that execs: wait for `start`, startContainer hooks, the last task
/// attributes, the filter (unless loaded already), execve.
fn wait_and_exec(
    cfg: &InitConfig,
    hook_state: &[u8],
    call: &exec::Call<'_>,
    load_filter: bool,
    kept: bool,
) -> Result<()> {
    if let StartGate::Fifo(fifo) = &cfg.gate {
        if load_filter {
            give_back_memory();
        }
        wait_for_start(fifo)?;
    }
    let created = crate::hooks::with_status(hook_state, ContainerState::Created);
    crate::hooks::run(cfg.hooks.as_ref(), HookPoint::StartContainer, &created)?;
    crate::task::apply_final(&cfg.task)?;
    if load_filter {
        if let Some(filter) = &cfg.seccomp {
            crate::security::seccomp::install(filter)?;
        }
        crate::security::drop_kept(&cfg.security, kept)?;
    }
    call.execve()?;
    Ok(())
}

/// A joined pid namespace (exec, or create with a pid namespace path): every process already
/// there can see a newcomer and, granted CAP_SYS_PTRACE, ptrace it and reach the host through
/// its /proc/<pid>/root while it is privileged. So the init stayed outside and did every
/// privileged step there; now, holding only the final credentials and rooted in the
/// container, it forks the process that execs into the namespace (as a child of vsrun, which
/// waits for it), reports its pid and exits. The child keeps the close-on-exec sync socket so
/// that vsrun still reads EOF as "exec succeeded" and gets its errors; ptracing it, a container
/// could only make its own exec fail.
fn hand_over(
    cfg: &InitConfig,
    sock: &mut UnixStream,
    hook_state: &[u8],
    call: &exec::Call<'_>,
    load_filter: bool,
) -> Result<()> {
    // The child leaves through execve or _exit.
    let pid = crate::syscall::fork_sibling()
        .step(|| "fork the container process into its pid namespace".into())?;
    if pid == 0 {
        // A session and process group of its own, as runc gives every container process
        // (the init stayed in vsrun's).
        let r = crate::terminal::become_session_leader(cfg.terminal.is_some());
        if let Err(e) = r.and_then(|()| wait_and_exec(cfg, hook_state, call, load_filter, false)) {
            let _ = sync::send(sock, &Msg::Error(e.to_string()));
        }
        crate::syscall::proc::exit_now(1)
    }
    sync::send_handover(sock, pid)?;
    // The init's work is done; _exit skips vsrun's destructors.
    crate::syscall::proc::exit_now(0)
}

/// A pid namespace joined by path: its proc mounts are made from contexts opened inside it
/// by an unprivileged process (pidns_proc.rs), the init never entering it.
fn open_procs_of_joined_pid_namespace(cfg: &InitConfig, plan: &crate::rootfs::Plan) -> Result<()> {
    let count = plan.proc_mounts();
    match &cfg.ns.pid_join {
        Some(join) if count > 0 => {
            plan.give_proc_contexts(super::pidns_proc::open_contexts(join, count)?);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A fresh session keyring per container, as runc makes unless --no-new-keyring: otherwise
/// the container would share the caller's keys. Kernels without keyrings (ENOSYS) and user
/// namespaces over quota are tolerated, as runc does.
fn join_session_keyring(cfg: &InitConfig) -> Result<()> {
    let Some(name) = &cfg.keyring_name else {
        return Ok(());
    };
    if let Err(e) = crate::syscall::proc::join_session_keyring(name) {
        if !matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EDQUOT)) {
            return Err(e).step(|| "join a new session keyring".into());
        }
    }
    Ok(())
}

/// Load linux.seccomp; an SCMP_ACT_NOTIFY listener goes to vsrun (for the agent) and is
/// closed here, so the container never holds it.
fn load_seccomp(cfg: &InitConfig, sock: &mut UnixStream) -> Result<()> {
    let Some(filter) = &cfg.seccomp else {
        return Ok(());
    };
    if let Some(listener) = crate::security::seccomp::install(filter)? {
        sync::send(sock, &Msg::SeccompListener(listener))?;
    }
    Ok(())
}

/// Mounts exist, pivot_root has not happened: vsrun runs prestart and createRuntime (it waits
/// for our request), then we run createContainer here, in the container's namespaces.
fn create_hooks(cfg: &InitConfig, sock: &mut UnixStream, state: &[u8]) -> Result<()> {
    let h = cfg.hooks.as_ref();
    if !crate::hooks::list(h, HookPoint::Prestart).is_empty()
        || !crate::hooks::list(h, HookPoint::CreateRuntime).is_empty()
    {
        sync::send(sock, &Msg::Hooks)?;
        match sync::recv(sock)? {
            Some(Msg::Go(_)) => {}
            Some(other) => return Err(Error::Child(format!("unexpected message {other:?}"))),
            None => return Err(Error::Child("vsrun exited while running hooks".into())),
        }
    }
    crate::hooks::run(h, HookPoint::CreateContainer, state)
}

fn set_names(cfg: &InitConfig) -> Result<()> {
    if let Some(h) = &cfg.hostname {
        nix::unistd::sethostname(h).step(|| format!("sethostname {h:?} (hostname)"))?;
    }
    if let Some(d) = &cfg.domainname {
        crate::syscall::ns::setdomainname(d)
            .step(|| format!("setdomainname {d:?} (domainname)"))?;
    }
    Ok(())
}

/// process.cwd is resolved inside the new root with no magic links, so `/proc/self/fd/N`
/// cannot lead to a directory of the host (CVE-2024-21626 class). A missing one was made during
/// the rootfs setup (rootfs/mod.rs `make_cwd`), before a read-only root; an exec'd process
/// gets none made.
fn enter_cwd(cfg: &InitConfig) -> Result<()> {
    let cwd = &cfg.cwd;
    let step = || format!("chdir to {} (process.cwd)", cwd.display());
    let fd = crate::syscall::openat2(
        libc::AT_FDCWD,
        cwd,
        (libc::O_PATH | libc::O_DIRECTORY) as u64,
        0,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
    .step(step)?;
    nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(&fd)).step(step)
}

/// A created container's init may wait for `start` for as long as the engine likes; what it
/// still needs then is a few pages. Its copy of vsrun's code and read-only data (about 2 MB
/// faulted in while setting up) goes back, to be read again from the page cache after
/// `start`, and so do malloc's free pages. Just before the wait, or before the filter when it
/// is loaded ahead of it (a profile may not allow madvise); nothing here can fail the
/// container.
fn give_back_memory() {
    for (start, len) in crate::syscall::mem::read_only_image_ranges() {
        let _ = crate::syscall::mem::drop_file_pages(start, len);
    }
    crate::syscall::mem::trim_heap();
}

/// Block until `vsrun start` writes a byte. The fifo was opened O_RDWR, so a missing writer
/// never reads as EOF.
fn wait_for_start(fifo: &std::fs::File) -> Result<()> {
    let mut b = [0u8; 1];
    loop {
        match (&*fifo).read(&mut b) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).step(|| "wait on exec.fifo".into()),
        }
    }
}
