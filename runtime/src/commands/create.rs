//! `vsrun create`: validate the bundle, prepare the init's plan, make the state dir, clone the
//! init and leave it blocked on exec.fifo until `start`. Shared with `run`.

use crate::bundle;
use crate::cli::{CreateArgs, GlobalOpts};
use crate::context::{self, InitConfig, StartGate};
use crate::error::{config, state, Result, StepExt};
use crate::state::{Container, State};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub fn run(g: &GlobalOpts, args: &CreateArgs) -> Result<i32> {
    let (_container, _init) = create(g, args, Gate::Fifo, true)?;
    Ok(0)
}

#[derive(PartialEq, Eq, Clone, Copy)]
pub enum Gate {
    Fifo,
    Immediate,
}

/// Everything `create` and `run` share. On error nothing is left: the init is killed and
/// reaped inside `spawn`, and the state dir is removed here.
pub fn create(
    g: &GlobalOpts,
    args: &CreateArgs,
    gate: Gate,
    detached: bool,
) -> Result<(Container, context::Init)> {
    crate::state::validate_id(&args.id)?;
    let mut b = bundle::load(&args.bundle)?;
    b.warnings.iter().for_each(|w| crate::log::warn(w));
    let listen_fds = socket_activation(&mut b.spec);
    let terminal = b
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    check_terminal(terminal, args.console_socket.as_deref(), detached)?;
    let mut cfg = InitConfig::prepare(
        &b.spec,
        context::Options {
            id: &args.id,
            systemd_cgroup: g.systemd_cgroup,
            rootless: g.rootless,
            rootfs: &b.rootfs,
            bundle: &b.dir,
            no_pivot: args.no_pivot,
            preserve_fds: listen_fds.saturating_add(args.preserve_fds),
            gate: StartGate::Immediate,
            lock_fd: None,
            keyring_name: (!args.no_new_keyring)
                .then(|| std::ffi::CString::new(format!("_ses.{}", args.id)).ok())
                .flatten(),
        },
    )?;
    log_ignored_caps(&cfg.security.caps);
    foreground_terminal_size(&mut cfg, detached, args.console_socket.as_deref());
    let disk = crate::disk::plan(
        b.spec.annotations().as_ref().unwrap_or(&Default::default()),
        &b.rootfs,
    )?;
    let container = Container::create(&g.root, &args.id)?;
    cfg.disk = match record_and_claim(&g.root, &args.id, &container, &cfg, disk) {
        Ok(q) => q,
        Err(e) => {
            let _ = container.destroy();
            return Err(e);
        }
    };
    let started = start_init(&container, &mut cfg, gate, &b, args).and_then(|mut init| {
        match hand_over_pty(&mut init, args.console_socket.as_deref()) {
            Ok(()) => Ok(init),
            Err(e) => {
                init.abort(&cfg);
                Err(e)
            }
        }
    });
    match started {
        Ok(init) => Ok((container, init)),
        Err(e) => {
            // Idempotent: spawn may have removed it already with the rest.
            if let Some(q) = &cfg.disk {
                let _ = crate::disk::remove(q);
            }
            // The fifo's fd goes first: a create that failed for want of fds (EMFILE) still
            // needs one to remove the state dir.
            cfg.gate = StartGate::Immediate;
            let _ = container.destroy();
            Err(e)
        }
    }
}

/// First the leftovers record, before anything is claimed: a create killed from here on
/// leaves `delete --force` the names of what it made. Then the disk quota, claimed before the
/// clone so the init's writes already count; from here on every failure path removes it
/// through the Leftovers (context::undo) or in `create`.
fn record_and_claim(
    root: &Path,
    id: &str,
    container: &Container,
    cfg: &InitConfig,
    disk: Option<crate::disk::Plan>,
) -> Result<Option<crate::disk::Quota>> {
    let mut record = context::leftovers::Record::of(cfg);
    record.write(&container.dir)?;
    let Some(plan) = disk else {
        return Ok(None);
    };
    let claim = crate::disk::Claim {
        owner_of: &|project| context::leftovers::disk_holder(root, project),
        record: &mut |q| {
            record.disk = Some(q.clone());
            record.write(&container.dir)
        },
    };
    crate::disk::apply(&plan, id, claim).map(Some)
}

/// A foreground pty (vsrun proxies it) starts with the caller's terminal size, set by the init
/// when it allocates the pty: copying it later races the container's first ioctl.
pub fn foreground_terminal_size(cfg: &mut InitConfig, detached: bool, socket: Option<&Path>) {
    if detached || socket.is_some() {
        return;
    }
    if let (Some(t), Some(size)) = (cfg.terminal.as_mut(), crate::terminal::stdin_size()) {
        t.size = Some(size);
    }
}

/// runc's rules: a detached process with a terminal needs somewhere to send the pty, and a
/// console socket without a terminal is a mistake worth reporting.
pub fn check_terminal(terminal: bool, socket: Option<&Path>, detached: bool) -> Result<()> {
    if terminal && socket.is_none() && detached {
        return Err(config(
            "process.terminal",
            "a detached process with a terminal needs --console-socket to receive the pty",
        ));
    }
    if !terminal && socket.is_some() {
        return Err(config(
            "--console-socket",
            "only valid when process.terminal is true",
        ));
    }
    Ok(())
}

/// With --console-socket the pty master goes there and vsrun keeps no copy; without it the
/// master stays for the foreground proxy.
pub fn hand_over_pty(init: &mut context::Init, socket: Option<&Path>) -> Result<()> {
    let Some(path) = socket else { return Ok(()) };
    if let Some(master) = init.pty.take() {
        crate::terminal::send_to_console_socket(path, &master)?;
    }
    Ok(())
}

fn start_init(
    container: &Container,
    cfg: &mut InitConfig,
    gate: Gate,
    b: &bundle::Bundle,
    args: &CreateArgs,
) -> Result<context::Init> {
    cfg.lock_fd = Some(container.lock_fd().as_raw_fd());
    if gate == Gate::Fifo {
        cfg.gate = StartGate::Fifo(make_exec_fifo(&container.fifo_path())?);
    }
    let init = context::spawn(cfg)?;
    // The parent's copy of the fifo must go, or `start` could not tell a dead init from a
    // live one (a reader would always exist).
    cfg.gate = StartGate::Immediate;
    let record = || -> Result<()> {
        let (_, pid_start) = crate::state::proc_stat(init.pid)
            .ok_or_else(|| state("container init exited right after setup"))?;
        let st = State {
            oci_version: b.spec.version().clone(),
            id: args.id.clone(),
            pid: init.pid,
            pid_start,
            bundle: b.dir.clone(),
            rootfs: b.rootfs.clone(),
            created: crate::timefmt::rfc3339_now(),
            annotations: b.spec.annotations().clone().unwrap_or_default(),
            own_pid_ns: cfg.ns.new_pid,
            cgroup_path: cfg.cgroup.path.clone(),
            systemd_cgroup: cfg.cgroup.systemd,
            rootless: cfg.cgroup.rootless,
            hooks: b.spec.hooks().clone(),
            bind_ip: cfg.bind_ip.is_some(),
            shared_root_mount: shared_root_mount(cfg)?,
            mount_join_path: cfg.ns.mount_join_path.clone(),
            disk: cfg.disk.clone(),
        };
        container.save(&st)?;
        if let Some(p) = &args.pid_file {
            write_pid_file(p, init.pid)?;
        }
        Ok(())
    };
    match record() {
        Ok(()) => Ok(init),
        Err(e) => {
            init.abort(cfg);
            Err(e)
        }
    }
}

/// In a shared mount namespace: the bind the init left on top of the rootfs, which `delete`
/// detaches (it stays after the init exits, so this holds for a `run` that is already over).
fn shared_root_mount(cfg: &InitConfig) -> Result<Option<u64>> {
    let Some(before) = cfg.shared_mount_before else {
        return Ok(None);
    };
    let Some(rootfs) = &cfg.rootfs else {
        return Ok(None);
    };
    let now = crate::rootfs::shared::top_mount(cfg.ns.joined_mount_fd(), &rootfs.rootfs)?;
    Ok((now != before).then_some(now))
}

fn make_exec_fifo(path: &Path) -> Result<std::fs::File> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .step(|| format!("mkfifo {}", path.display()))?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .step(|| format!("open {}", path.display()))
}

/// Written via a temp file and rename, as runc does, so a reader never sees an empty file.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path).step(|| format!("--pid-file {}", path.display()))?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(&tmp, pid.to_string()).step(|| format!("write --pid-file {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).step(|| format!("write --pid-file {}", path.display()))
}

/// Ambient caps at debug level, not warning: `runc spec`'s default config triggers it on
/// every run, and a warning on stderr each time would bury real errors. Names the caps crate
/// does not know are warnings, like the names oci-spec does not know (bundle.rs).
pub fn log_ignored_caps(caps: &crate::security::caps::CapPlan) {
    for u in &caps.unknown {
        crate::log::warn(&format!("{u}: unknown capability, ignored"));
    }
    for c in &caps.ignored_ambient {
        crate::log::debug(&format!(
            "process.capabilities.ambient: {c} is not in both permitted and inheritable; not raised"
        ));
    }
}

/// systemd socket activation, as runc passes it on: with LISTEN_FDS=N in vsrun's environment,
/// fds 3..3+N stay open in the container (before the --preserve-fds ones) and the process gets
/// LISTEN_FDS=N and LISTEN_PID=1.
fn socket_activation(spec: &mut oci_spec::runtime::Spec) -> u32 {
    let n = context::preserved::listen_fds();
    if n == 0 {
        return 0;
    }
    if let Some(p) = spec.process_mut() {
        let mut env = p.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={n}"));
        env.push("LISTEN_PID=1".to_string());
        p.set_env(Some(env));
    }
    n
}
