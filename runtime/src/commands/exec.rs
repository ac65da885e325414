//! `vsrun exec`: start another process in a running container. It is born the same way as an
//! init (one clone3, no re-exec) but joins every namespace and the cgroup of the container
//! instead of creating them. Without `--process`, the container's own process spec is the
//! base and the flags override it, as with runc.

use crate::bundle;
use crate::cli::{ExecArgs, GlobalOpts};
use crate::context::{self, InitConfig};
use crate::error::{config, state, Result, StepExt};
use crate::state::{Container, Status};
use oci_spec::runtime::{Capability, Process};

pub fn run(g: &GlobalOpts, args: &ExecArgs) -> Result<i32> {
    let st = {
        let c = Container::open(&g.root, &args.id)?;
        let st = c.load()?;
        match crate::state::status(&c.dir, &st) {
            Status::Stopped => {
                return Err(state(format!(
                    "cannot exec in a stopped container {:?}",
                    args.id
                )))
            }
            Status::Paused if !args.ignore_paused => {
                return Err(state(format!(
                    "cannot exec in a paused container {:?} (use --ignore-paused)",
                    args.id
                )))
            }
            _ => {}
        }
        st
    };
    let b = bundle::load(&st.bundle)?;
    let (process, warnings) = process_for(args, &b)?;
    warnings.iter().for_each(|w| crate::log::warn(w));
    super::create::check_terminal(
        process.terminal().unwrap_or(false),
        args.console_socket.as_deref(),
        args.detach,
    )?;
    if args.process_label.is_some() || args.apparmor.is_some() {
        return Err(config(
            "--process-label/--apparmor",
            "security labels are not supported yet",
        ));
    }
    let cgroup = crate::cgroups::Plan {
        path: st.cgroup_path.clone(),
        systemd: st.systemd_cgroup,
        resources: None,
        sub: sub_cgroups(&args.cgroup, &st.cgroup_path, st.systemd_cgroup)?,
        rootless: g.rootless,
    };
    let mut cfg = InitConfig::for_exec(&args.id, st.pid, cgroup, &process, args.preserve_fds)?;
    cfg.bind_ip_join = st.bind_ip;
    // runc loads the container's linux.seccomp into exec'd processes too.
    if let Some(s) = b.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        cfg.seccomp = Some(crate::security::seccomp::compile(s)?);
        cfg.bundle = st.bundle.clone();
        cfg.annotations = st.annotations.clone();
    }
    super::create::log_ignored_caps(&cfg.security.caps);
    super::create::foreground_terminal_size(&mut cfg, args.detach, args.console_socket.as_deref());
    let forwarded = super::run::forwarded_signals();
    if !args.detach {
        forwarded.thread_block().step(|| "block signals".into())?;
    }
    let mut proc_ = context::spawn(&cfg)?;
    if let Err(e) = proc_.wait_exec() {
        proc_.kill_and_reap();
        return Err(e);
    }
    super::create::hand_over_pty(&mut proc_, args.console_socket.as_deref())?;
    if let Some(p) = &args.pid_file {
        super::create::write_pid_file(p, proc_.pid)?;
    }
    if args.detach {
        return Ok(0);
    }
    super::run::wait_forwarding(proc_.pid, &proc_.pidfd, &forwarded, proc_.pty.as_ref())
}

/// The process to start and the warnings to log: what was ignored in the files it came from.
fn process_for(args: &ExecArgs, b: &bundle::Bundle) -> Result<(Process, Vec<String>)> {
    let container = b
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| config("process", "missing"))?;
    if let Some(path) = &args.process {
        return process_from_file(path, container, b);
    }
    if args.command.is_empty() {
        return Err(config("exec", "needs a command or --process"));
    }
    let mut warnings = b.warnings.clone();
    let mut p = container.clone();
    p.set_args(Some(args.command.clone()));
    p.set_terminal(Some(args.tty));
    set_cwd_and_env(&mut p, args)?;
    set_user(&mut p, args)?;
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    add_caps(&mut p, &args.cap, &mut warnings);
    Ok((p, warnings))
}

/// `--process FILE`: everything comes from the file, but for missing capabilities.
fn process_from_file(
    path: &std::path::Path,
    container: &Process,
    b: &bundle::Bundle,
) -> Result<(Process, Vec<String>)> {
    let data =
        std::fs::read(path).map_err(|e| config("--process", format!("{}: {e}", path.display())))?;
    let (mut p, mut warnings) = bundle::parse_process(&data)?;
    if p.args().as_deref().unwrap_or_default().is_empty() {
        return Err(config("process.args", "must name an executable"));
    }
    // runc (libcontainer's finalizeNamespace) gives a process without capabilities the
    // container's; everything else comes from the file alone.
    if p.capabilities().is_none() {
        p.set_capabilities(container.capabilities().clone());
        warnings.extend(b.warnings.iter().cloned());
    }
    Ok((p, warnings))
}

/// `--cwd` (absolute) and `--env KEY=VALUE` (replacing the container's KEY).
fn set_cwd_and_env(p: &mut Process, args: &ExecArgs) -> Result<()> {
    if let Some(cwd) = &args.cwd {
        if !cwd.is_absolute() {
            return Err(config(
                "--cwd",
                format!("{}: must be an absolute path", cwd.display()),
            ));
        }
        p.set_cwd(cwd.clone());
    }
    if let Some(bad) = args
        .env
        .iter()
        .find(|e| e.split_once('=').is_none_or(|(k, _)| k.is_empty()))
    {
        return Err(config("--env", format!("{bad:?}: expected KEY=VALUE")));
    }
    let mut env = p.env().clone().unwrap_or_default();
    for e in &args.env {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    Ok(())
}

/// `--user UID[:GID]` (numbers only, as runc) and `--additional-gids`.
fn set_user(p: &mut Process, args: &ExecArgs) -> Result<()> {
    let mut user = p.user().clone();
    if let Some(u) = &args.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, ""));
        user.set_uid(
            uid.parse()
                .map_err(|_| config("--user", format!("{u:?}: uid must be a number")))?,
        );
        if !gid.is_empty() {
            user.set_gid(
                gid.parse()
                    .map_err(|_| config("--user", format!("{u:?}: gid must be a number")))?,
            );
        }
    }
    if !args.additional_gids.is_empty() {
        user.set_additional_gids(Some(args.additional_gids.clone()));
    }
    p.set_user(user);
    Ok(())
}

/// `--cap NAME`: added to bounding, effective and permitted.
fn add_caps(p: &mut Process, names: &[String], warnings: &mut Vec<String>) {
    if names.is_empty() {
        return;
    }
    let mut caps = p.capabilities().clone().unwrap_or_default();
    for name in names {
        // Ignored with a warning, as runc and crun do with a name they do not know.
        let Ok(c) = serde_json::from_value::<Capability>(serde_json::json!(name)) else {
            warnings.push(format!("--cap: unknown capability {name:?}, ignored"));
            continue;
        };
        let add = |s: &Option<oci_spec::runtime::Capabilities>| {
            let mut s = s.clone().unwrap_or_default();
            s.insert(c);
            Some(s)
        };
        caps.set_bounding(add(caps.bounding()));
        caps.set_effective(add(caps.effective()));
        caps.set_permitted(add(caps.permitted()));
    }
    p.set_capabilities(Some(caps));
}

/// runc 1.1's `--cgroup` forms: one `PATH` for every hierarchy, or any number of
/// `CONTROLLER[,CONTROLLER...]:PATH`. Each path must stay inside the container's cgroup: the
/// caller may move a process around in there, never out of the container's limits.
fn sub_cgroups(
    flags: &[String],
    container: &std::path::Path,
    systemd: bool,
) -> Result<crate::cgroups::SubCgroups> {
    let mut sub = crate::cgroups::SubCgroups::default();
    if flags.is_empty() {
        return Ok(sub);
    }
    if systemd {
        return Err(config(
            "--cgroup",
            "sub-cgroups of a systemd-managed container are not supported",
        ));
    }
    let inside = |p: &str| {
        crate::cgroups::below(container, std::path::Path::new(p)).ok_or_else(|| {
            config(
                "--cgroup",
                format!("{p:?}: not below the container's cgroup"),
            )
        })
    };
    for flag in flags {
        match flag.split_once(':') {
            None if flags.len() == 1 => sub.all = Some(inside(flag)?),
            None => {
                return Err(config(
                    "--cgroup",
                    format!("{flag:?}: with several --cgroup flags each must be CONTROLLER:PATH"),
                ))
            }
            Some((controllers, p)) => {
                let p = inside(p)?;
                for c in controllers.split(',') {
                    if sub.by_controller.iter().any(|(have, _)| have == c) {
                        return Err(config("--cgroup", format!("controller {c:?} given twice")));
                    }
                    sub.by_controller.push((c.to_string(), p.clone()));
                }
            }
        }
    }
    Ok(sub)
}
