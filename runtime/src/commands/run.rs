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
    let (container, mut init) = create(g, &args.create, Gate::Immediate, args.detach)?;
    if let Err(e) = init.wait_exec() {
        init.kill_and_reap();
        if let Ok(st) = container.load() {
            let _ = super::delete::teardown(container, &st);
        }
        return Err(e);
    }
    if let Ok(st) = container.load() {
        st.run_hooks_warn(
            crate::hooks::HookPoint::Poststart,
            oci_spec::runtime::ContainerState::Running,
        );
    }
    if args.detach {
        return Ok(0);
    }
    // Release the lock: `kill`, `state` and `delete` from elsewhere must not wait on us.
    let dir = container.dir.clone();
    drop(container);
    let code = wait_forwarding(init.pid, &init.pidfd, &forwarded, init.pty.as_ref())?;
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

/// Wait for the process while passing signals on to it and, with a foreground terminal,
/// copying between the caller's terminal and the pty. All signals arrive through a signalfd
/// (they are blocked), so one poll loop serves everything.
pub(super) fn wait_forwarding(
    pid: i32,
    pidfd: &std::os::fd::OwnedFd,
    set: &SigSet,
    pty: Option<&std::os::fd::OwnedFd>,
) -> Result<i32> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use std::os::fd::AsFd;
    let sfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .step(|| "signalfd".into())?;
    let _raw = pty.map(|m| {
        crate::terminal::copy_size_from_stdin(m.as_fd());
        crate::terminal::RawMode::enter()
    });
    let child = Pid::from_raw(pid);
    let mut stdin_open = pty.is_some();
    let mut pty_open = pty.is_some();
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG))
            .step(|| "wait for the container process".into())?
        {
            WaitStatus::Exited(_, code) => return Ok(drain_then(pty, code)),
            WaitStatus::Signaled(_, sig, _) => return Ok(drain_then(pty, 128 + sig as i32)),
            _ => {}
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let (Some(m), true) = (pty, pty_open) {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r.step(|| "poll".into())?,
        };
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                match (sig, pty) {
                    (libc::SIGCHLD, _) => {}
                    (libc::SIGWINCH, Some(m)) => crate::terminal::copy_size_from_stdin(m.as_fd()),
                    _ => {
                        let _ = crate::syscall::pidfd_send_signal(pidfd, sig);
                    }
                }
            }
        }
        let mut idx = 1;
        if let (Some(m), true) = (pty, pty_open) {
            if ready[idx] {
                pty_open = crate::terminal::pump(m.as_fd(), stdout.as_fd());
            }
            idx += 1;
        }
        if stdin_open && ready[idx] {
            if let Some(m) = pty {
                stdin_open = crate::terminal::pump(stdin.as_fd(), m.as_fd());
            }
        }
    }
}

/// Whatever the process wrote just before it exited is still in the pty: copy it out.
fn drain_then(pty: Option<&std::os::fd::OwnedFd>, code: i32) -> i32 {
    if let Some(m) = pty {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        use std::os::fd::{AsFd, AsRawFd};
        let fd = m.as_raw_fd();
        if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
            let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
            let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
        }
        let stdout = std::io::stdout();
        while crate::terminal::pump(m.as_fd(), stdout.as_fd()) {}
    }
    code
}
