//! How a container process is born (design.md, "Process model"). The parent prepares an
//! `InitConfig` with everything that can fail already checked, clones the init straight into
//! its new namespaces (clone3, no re-exec, no helper process), writes what only the parent may
//! write (id maps, oom_score_adj), releases the init and waits for it to report ready.

pub mod exec;
mod init;
pub mod leftovers;
pub mod namespaces;
mod pidns_proc;
pub mod preserved;
pub mod sync;

use crate::error::{Error, Result, StepExt};
use crate::hooks::HookPoint;
use oci_spec::runtime::ContainerState;
use oci_spec::runtime::Spec;
use std::fs::File;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use sync::Msg;

/// How the init gets from "ready" to execve.
pub enum StartGate {
    /// `create`: wait until `vsrun start` writes to exec.fifo (opened O_RDWR by the parent).
    Fifo(File),
    /// `run`: exec right away; no second round trip.
    Immediate,
}

pub struct InitConfig {
    pub id: String,
    pub cgroup: crate::cgroups::Plan,
    pub ns: namespaces::Plan,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    /// None for `exec`: the process joins the container's mount namespace as it is.
    pub rootfs: Option<crate::rootfs::Plan>,
    pub cwd: PathBuf,
    pub security: crate::security::Plan,
    pub task: crate::task::Plan,
    pub program: exec::Program,
    pub gate: StartGate,
    /// The state-dir lock fd, closed first thing in the init.
    pub lock_fd: Option<RawFd>,
    pub preserve_fds: u32,
    /// `_ses.<id>` unless --no-new-keyring.
    pub keyring_name: Option<std::ffi::CString>,
    /// process.terminal: allocate a pty in the container.
    pub terminal: Option<Terminal>,
    /// Bound-IP mode (annotation org.vsrun.bind-ip): programs built before the clone and
    /// attached to the init's cgroup v2 directory before it is released.
    pub bind_ip: Option<crate::net::Plan>,
    /// `exec` into a bound-IP container: the new process joins that cgroup v2 directory.
    pub bind_ip_join: bool,
    /// linux.seccomp, compiled before the clone; the init loads it (see init.rs).
    pub seccomp: Option<crate::security::seccomp::Filter>,
    /// The config's hooks (none for exec) and what their state JSON needs.
    pub hooks: Option<oci_spec::runtime::Hooks>,
    pub bundle: PathBuf,
    pub annotations: std::collections::HashMap<String, String>,
    /// The rootfs is set up in a mount namespace shared with others: the top mount on the
    /// rootfs before the clone, so a failed create can find the init's bind (rootfs/shared.rs).
    pub shared_mount_before: Option<u64>,
    /// The project quota `create` claimed for the tree (disk/), removed with the rest on a
    /// failed create.
    pub disk: Option<crate::disk::Quota>,
}

pub struct Terminal {
    pub size: Option<(u16, u16)>,
    /// Bind the slave on /dev/console (the container's first process, not exec).
    pub bind_console: bool,
}

/// Where the container's sockets live: the netns it joins, a new one, or the host's.
fn net_stack(ns: &namespaces::Plan) -> crate::net::NetStack<'_> {
    use std::os::fd::AsFd;
    if let Some(j) = ns
        .parent_joins
        .iter()
        .find(|j| j.nstype == libc::CLONE_NEWNET)
    {
        crate::net::NetStack::Joined(j.fd.as_fd())
    } else if ns.new_net {
        crate::net::NetStack::New
    } else {
        crate::net::NetStack::Current
    }
}

fn terminal_plan(process: &oci_spec::runtime::Process, bind_console: bool) -> Option<Terminal> {
    process.terminal().unwrap_or(false).then(|| Terminal {
        size: process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16)),
        bind_console,
    })
}

pub struct Options<'a> {
    /// The bundle directory: relative bind sources are relative to it.
    pub bundle: &'a Path,
    pub id: &'a str,
    pub systemd_cgroup: bool,
    /// Rootless mode (`rootless.rs`), for the cgroup plan.
    pub rootless: bool,
    pub rootfs: &'a Path,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    pub gate: StartGate,
    pub lock_fd: Option<RawFd>,
    /// None with --no-new-keyring.
    pub keyring_name: Option<std::ffi::CString>,
}

impl InitConfig {
    /// Build the whole plan from a validated spec: parsing, option tables, namespace files,
    /// id maps — all before the clone.
    pub fn prepare(spec: &Spec, opts: Options<'_>) -> Result<InitConfig> {
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| crate::error::config("process", "missing"))?;
        let ns = namespaces::plan(spec)?;
        let bind_ip = crate::net::plan(
            &spec.annotations().clone().unwrap_or_default(),
            net_stack(&ns),
        )?;
        let mut security = crate::security::plan(process)?;
        security.user.setgroups_denied = ns.setgroups_denied;
        if bind_ip.is_some() {
            refuse_net_raw(&security)?;
        }
        let mut rootfs = crate::rootfs::plan_in_bundle(
            spec,
            opts.rootfs,
            opts.bundle,
            crate::rootfs::PlanOptions {
                no_pivot: opts.no_pivot,
                userns: ns.new_user,
                shared_mount_ns: !ns.new_mount,
            },
        )?;
        rootfs.proc_pid_ns = ns
            .pid_join
            .as_ref()
            .map(|j| std::os::fd::AsRawFd::as_raw_fd(&j.fd));
        let shared_mount_before = if ns.new_mount {
            None
        } else {
            Some(crate::rootfs::shared::top_mount(
                ns.joined_mount_fd(),
                &rootfs.rootfs,
            )?)
        };
        Ok(InitConfig {
            id: opts.id.to_string(),
            cgroup: crate::cgroups::plan(spec, opts.id, opts.systemd_cgroup, opts.rootless)?,
            hostname: spec.hostname().clone().filter(|h| !h.is_empty()),
            domainname: spec.domainname().clone().filter(|d| !d.is_empty()),
            ns,
            rootfs: Some(rootfs),
            cwd: process.cwd().clone(),
            security,
            task: crate::task::plan(spec)?,
            program: exec::plan(process)?,
            gate: opts.gate,
            lock_fd: opts.lock_fd,
            preserve_fds: opts.preserve_fds,
            keyring_name: opts.keyring_name,
            terminal: terminal_plan(process, true),
            bind_ip,
            bind_ip_join: false,
            seccomp: spec
                .linux()
                .as_ref()
                .and_then(|l| l.seccomp().as_ref())
                .map(crate::security::seccomp::compile)
                .transpose()?,
            hooks: spec.hooks().clone(),
            bundle: opts.bundle.to_path_buf(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            shared_mount_before,
            disk: None,
        })
    }
}

/// AF_PACKET sees the whole host stack's traffic, which no cgroup program filters: a bound
/// context holding CAP_NET_RAW would not be bound.
fn refuse_net_raw(security: &crate::security::Plan) -> Result<()> {
    if !security
        .caps
        .bounding
        .contains(&caps::Capability::CAP_NET_RAW)
    {
        return Ok(());
    }
    Err(crate::error::config(
        "process.capabilities.bounding",
        format!(
            "CAP_NET_RAW is not allowed with annotation {:?} (it reads the host's traffic); drop it, e.g. --cap-drop NET_RAW",
            crate::net::ANNOTATION
        ),
    ))
}

impl InitConfig {
    /// A process that joins a running container (`exec`): every namespace of the container's
    /// init, its cgroup, and the privileges of `process`. Nothing is created.
    pub fn for_exec(
        id: &str,
        init_pid: i32,
        cgroup: crate::cgroups::Plan,
        process: &oci_spec::runtime::Process,
        preserve_fds: u32,
    ) -> Result<InitConfig> {
        let ns = namespaces::plan_join_all(init_pid)?;
        let mut security = crate::security::plan(process)?;
        security.user.setgroups_denied = ns.setgroups_denied;
        Ok(InitConfig {
            id: id.to_string(),
            cgroup,
            ns,
            hostname: None,
            domainname: None,
            rootfs: None,
            cwd: process.cwd().clone(),
            security,
            task: crate::task::plan(&{
                let mut s = Spec::default();
                s.set_process(Some(process.clone()));
                s.set_linux(None);
                s
            })?,
            program: exec::plan(process)?,
            gate: StartGate::Immediate,
            lock_fd: None,
            preserve_fds,
            keyring_name: None,
            terminal: terminal_plan(process, false),
            bind_ip: None,
            bind_ip_join: false,
            seccomp: None,
            hooks: None,
            bundle: PathBuf::new(),
            annotations: Default::default(),
            shared_mount_before: None,
            disk: None,
        })
    }
}

/// A running init that reported ready.
pub struct Init {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// The pty master when process.terminal is set.
    pub pty: Option<OwnedFd>,
    sock: UnixStream,
}

/// Clone the init and bring it to "ready". On any failure the init is killed and reaped and its
/// cgroup removed, so a failed create leaves no process, cgroup or mount (mounts die with the
/// init's mount namespace). After the cgroup is prepared every error goes through `undo`, and
/// after the clone through `Init::abort` (kill, reap, then `undo`).
pub fn spawn(cfg: &InitConfig) -> Result<Init> {
    // Non-dumpable before the init joins anything: a container process can then neither
    // ptrace it nor open its /proc/<pid>/exe for writing (CVE-2019-5736, CVE-2016-9962).
    crate::syscall::prctl(libc::PR_SET_DUMPABLE, 0).step(|| "prctl(PR_SET_DUMPABLE, 0)".into())?;
    namespaces::enter_in_parent(&cfg.ns)?;
    let joining = crate::cgroups::prepare(&cfg.cgroup)?;
    // On each failure below, vsrun's own fds go before `undo`: a create that failed for want
    // of fds (EMFILE) needs a few to remove the cgroup.
    let (parent_sock, child_sock) = match socket_pair(cfg) {
        Ok(p) => p,
        Err(e) => {
            drop(joining);
            undo(cfg);
            return Err(e);
        }
    };
    // The child only runs `init::run`, which never returns.
    let cloned = crate::syscall::clone3(
        cfg.ns.clone_flags,
        joining.v2_dir.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
    );
    let (pid, pidfd) = match cloned {
        Ok(None) => {
            drop(parent_sock);
            init::run(cfg, &joining, child_sock)
        }
        Ok(Some(p)) => p,
        Err(e) => {
            if cfg.ns.unprivileged_maps {
                let _ = crate::syscall::prctl(libc::PR_SET_DUMPABLE, 0);
            }
            drop((joining, parent_sock, child_sock));
            undo(cfg);
            return Err(e).step(|| "clone3 the container init".into());
        }
    };
    drop((joining, child_sock));
    let mut init = Init {
        pid,
        pidfd,
        pty: None,
        sock: parent_sock,
    };
    match bring_up(cfg, &mut init) {
        Ok(()) => Ok(init),
        Err(e) => {
            init.abort(cfg);
            Err(e)
        }
    }
}

/// The parent's end and the init's; rootless also makes vsrun dumpable for the clone.
fn socket_pair(cfg: &InitConfig) -> Result<(UnixStream, UnixStream)> {
    let pair = sync::pair()?;
    if cfg.ns.unprivileged_maps {
        // Rootless: the user may write the init's uid_map/gid_map (and newuidmap accepts its
        // pid) only while its /proc files are the user's, as runc's nsexec does. The init is
        // born dumpable and becomes non-dumpable again on "go", after the maps; vsrun right
        // after the clone.
        crate::syscall::prctl(libc::PR_SET_DUMPABLE, 1)
            .step(|| "prctl(PR_SET_DUMPABLE, 1)".into())?;
    }
    Ok(pair)
}

/// In the parent, the init alive: vsrun non-dumpable again, then `release`.
fn bring_up(cfg: &InitConfig, init: &mut Init) -> Result<()> {
    if cfg.ns.unprivileged_maps {
        crate::syscall::prctl(libc::PR_SET_DUMPABLE, 0)
            .step(|| "prctl(PR_SET_DUMPABLE, 0)".into())?;
    }
    let mut sock = init.sock.try_clone().step(|| "dup sync socket".into())?;
    release(cfg, init, &mut sock)
}

/// After a failed create (the init is dead): remove what it made on the host, its cgroup,
/// bound-IP programs and, in a shared mount namespace, its mounts on the rootfs. An exec'd
/// process joined the container's cgroup and mounts: those stay.
pub fn undo(cfg: &InitConfig) {
    let Some(rootfs) = &cfg.rootfs else { return };
    let leftovers = leftovers::Leftovers {
        id: &cfg.id,
        cgroup: &cfg.cgroup.path,
        systemd_cgroup: cfg.cgroup.systemd,
        bind_ip: cfg.bind_ip.is_some(),
        shared_root: cfg.shared_mount_before.map(|before| leftovers::SharedRoot {
            ns: cfg.ns.joined_mount_fd(),
            rootfs: &rootfs.rootfs,
            top: leftovers::Top::Above(before),
        }),
        disk: cfg.disk.as_ref(),
    };
    if let Err(e) = leftovers.remove() {
        crate::log::warn(&e.to_string());
    }
}

fn release(cfg: &InitConfig, init: &mut Init, sock: &mut UnixStream) -> Result<()> {
    crate::cgroups::finish(&cfg.cgroup, &cfg.id, init.pid)?;
    if let Some(p) = &cfg.bind_ip {
        crate::net::attach(p, &cfg.id, init.pid)?;
    } else if cfg.bind_ip_join {
        crate::net::join(&cfg.id, init.pid)?;
    }
    namespaces::write_id_maps(init.pid, &cfg.ns)?;
    if let Some(adj) = cfg.security.oom_score_adj {
        // Written from the host's /proc, where no container mount can redirect it.
        std::fs::write(format!("/proc/{}/oom_score_adj", init.pid), adj.to_string())
            .step(|| format!("write oom_score_adj {adj} (process.oomScoreAdj)"))?;
    }
    let h = cfg.hooks.as_ref();
    let has = |kind| !crate::hooks::list(h, kind).is_empty();
    let state = if [HookPoint::CreateContainer, HookPoint::StartContainer]
        .into_iter()
        .any(has)
    {
        crate::hooks::state_json(
            &cfg.id,
            ContainerState::Creating,
            init.pid,
            &cfg.bundle,
            &cfg.annotations,
        )
    } else {
        Vec::new()
    };
    sync::send(sock, &Msg::Go(state))?;
    // The init mounts now: the grace period the view's close waits for runs beside that.
    crate::security::sealed_exe::release_view();
    if cfg.rootfs.is_some() && (has(HookPoint::Prestart) || has(HookPoint::CreateRuntime)) {
        match sync::recv(sock)? {
            Some(Msg::Hooks) => {}
            Some(Msg::Error(e)) => return Err(Error::Child(e)),
            Some(m) => {
                return Err(Error::Child(format!(
                    "container init: unexpected message {m:?}"
                )))
            }
            None => return Err(Error::Child("container init exited during setup".into())),
        }
        let st = crate::hooks::state_json(
            &cfg.id,
            ContainerState::Creating,
            init.pid,
            &cfg.bundle,
            &cfg.annotations,
        );
        crate::hooks::run(h, HookPoint::Prestart, &st)?;
        crate::hooks::run(h, HookPoint::CreateRuntime, &st)?;
        sync::send(sock, &Msg::Go(Vec::new()))?;
    }
    if cfg.terminal.is_some() {
        match sync::recv(sock)? {
            Some(Msg::Pty(fd)) => init.pty = Some(fd),
            Some(Msg::Error(e)) => return Err(Error::Child(e)),
            Some(m) => {
                return Err(Error::Child(format!(
                    "container init: unexpected message {m:?}"
                )))
            }
            None => return Err(Error::Child("container init exited during setup".into())),
        }
    }
    expect_ready(cfg, init, sock)
}

fn expect_ready(cfg: &InitConfig, init: &mut Init, sock: &mut UnixStream) -> Result<()> {
    loop {
        match sync::recv(sock)? {
            Some(Msg::Ready) => return Ok(()),
            Some(Msg::Handover(pid)) => return init.hand_over(pid),
            Some(Msg::SeccompListener(fd)) => send_to_seccomp_agent(cfg, init.pid, &fd)?,
            Some(Msg::Error(e)) => return Err(Error::Child(e)),
            Some(m) => {
                return Err(Error::Child(format!(
                    "container init: unexpected message {m:?}"
                )))
            }
            None => return Err(Error::Child("container init exited during setup".into())),
        }
    }
}

/// SCMP_ACT_NOTIFY: the listener goes to linux.seccomp.listenerPath with the container state
/// (runtime-spec "container process state"); vsrun keeps no copy.
fn send_to_seccomp_agent(cfg: &InitConfig, pid: i32, fd: &OwnedFd) -> Result<()> {
    let filter = cfg.seccomp.as_ref();
    let Some(path) = filter.and_then(|f| f.listener_path()) else {
        return Err(Error::Child(
            "container init sent an unexpected seccomp listener".into(),
        ));
    };
    let state = crate::hooks::state_json(
        &cfg.id,
        ContainerState::Creating,
        pid,
        &cfg.bundle,
        &cfg.annotations,
    );
    crate::security::seccomp::send_listener(
        path,
        std::os::fd::AsFd::as_fd(fd),
        &state,
        filter.and_then(|f| f.listener_metadata()),
    )
}

impl Init {
    /// The init forked the process that execs into a joined pid namespace (init.rs,
    /// `hand_over`) and exits: reap it and follow that process, vsrun's child by CLONE_PARENT
    /// (so its pid cannot be reused before vsrun reaps it).
    fn hand_over(&mut self, pid: i32) -> Result<()> {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
        let pidfd = crate::syscall::pidfd_open(pid)
            .step(|| format!("pidfd_open the container process {pid}"))?;
        self.pid = pid;
        self.pidfd = pidfd;
        Ok(())
    }

    /// For `run`: after ready, EOF on the socket means execve succeeded.
    pub fn wait_exec(&mut self) -> Result<()> {
        match sync::recv(&mut self.sock)? {
            None => Ok(()),
            Some(Msg::Error(e)) => Err(Error::Child(e)),
            Some(m) => Err(Error::Child(format!(
                "container init: unexpected message {m:?}"
            ))),
        }
    }

    /// A create that failed after the clone: the init dies first, so nothing it holds keeps
    /// its cgroup busy, and its fds close (see `spawn`), then its leftovers go.
    pub fn abort(self, cfg: &InitConfig) {
        self.kill_and_reap();
        drop(self);
        undo(cfg);
    }

    pub fn kill_and_reap(&self) {
        let _ = crate::syscall::pidfd_send_signal(&self.pidfd, libc::SIGKILL);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
    }
}
