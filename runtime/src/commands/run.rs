//! `vsrun run`: create + start + wait, without the exec.fifo round trip. Signals sent to vsrun
//! are forwarded to the container's init; the exit status is the init's (128+signal if killed).

use super::create::{create, Gate};
use crate::cli::{GlobalOpts, RunArgs};
use crate::error::{Result, StepExt};
use crate::state::Container;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

pub fn run(g: &GlobalOpts, args: &RunArgs) -> Result<i32> {
    // Blocked before the clone so no signal slips between exec and the wait loop; the init
    // restores an empty mask before execve.
    let forwarded = forwarded_signals();
    if !args.detach {
        forwarded.thread_block().step(|| "block signals".into())?;
    }
    let (container, mut init) = create(g, &args.create, Gate::Immediate)?;
    if let Err(e) = init.wait_exec() {
        init.kill_and_reap();
        if let Ok(st) = container.load() {
            let _ = super::delete::teardown(container, &st);
        }
        return Err(e);
    }
    if args.detach {
        return Ok(0);
    }
    // Release the lock: `kill`, `state` and `delete` from elsewhere must not wait on us.
    let dir = container.dir.clone();
    drop(container);
    let code = wait_forwarding(init.pid, &init.pidfd, &forwarded)?;
    if !args.keep {
        if let Ok(c) = Container::open(&g.root, &args.create.id) {
            if c.dir == dir {
                let st = c.load()?;
                super::delete::teardown(c, &st)?;
            }
        }
    }
    Ok(code)
}

pub(super) fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCONT,
        Signal::SIGTSTP,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGALRM,
        Signal::SIGPIPE,
    ] {
        set.add(s);
    }
    set
}

pub(super) fn wait_forwarding(pid: i32, pidfd: &std::os::fd::OwnedFd, set: &SigSet) -> Result<i32> {
    let child = Pid::from_raw(pid);
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG))
            .step(|| "wait for the container init".into())?
        {
            WaitStatus::Exited(_, code) => return Ok(code),
            WaitStatus::Signaled(_, sig, _) => return Ok(128 + sig as i32),
            _ => {}
        }
        let sig = set.wait().step(|| "wait for signals".into())?;
        if sig != Signal::SIGCHLD {
            let _ = crate::syscall::pidfd_send_signal(pidfd, sig as i32);
        }
    }
}
