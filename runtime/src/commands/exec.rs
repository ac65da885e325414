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
    let process = process_for(args, &st)?;
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
    };
    let mut cfg = InitConfig::for_exec(&args.id, st.pid, cgroup, &process, args.preserve_fds)?;
    cfg.bind_ip_join = st.bind_ip;
    // runc loads the container's linux.seccomp into exec'd processes too.
    let spec = bundle::load(&st.bundle)?.spec;
    if let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        cfg.seccomp = Some(crate::security::seccomp::compile(s)?);
        cfg.bundle = st.bundle.clone();
        cfg.annotations = st.annotations.clone();
    }
    super::create::log_ignored_ambient(&cfg.security.caps);
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

fn process_for(args: &ExecArgs, st: &crate::state::State) -> Result<Process> {
    if let Some(path) = &args.process {
        let data = std::fs::read(path)
            .map_err(|e| config("--process", format!("{}: {e}", path.display())))?;
        let p: Process = bundle::parse_process(&data)?;
        if p.args().as_deref().unwrap_or_default().is_empty() {
            return Err(config("process.args", "must name an executable"));
        }
        return Ok(p);
    }
    if args.command.is_empty() {
        return Err(config("exec", "needs a command or --process"));
    }
    let b = bundle::load(&st.bundle)?;
    let mut p = b
        .spec
        .process()
        .clone()
        .ok_or_else(|| config("process", "missing"))?;
    p.set_args(Some(args.command.clone()));
    p.set_terminal(Some(args.tty));
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
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !args.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &args.cap {
            let c = serde_json::from_value::<Capability>(serde_json::json!(name))
                .map_err(|_| config("--cap", format!("{name:?}: unknown capability")))?;
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
    Ok(p)
}
