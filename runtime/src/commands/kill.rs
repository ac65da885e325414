//! `vsrun kill ID [SIGNAL]` and `--all`. Signals go through a pidfd opened and then checked
//! against the recorded start time, so a recycled PID is never signalled.

use crate::cli::{GlobalOpts, KillArgs};
use crate::error::{config, state, Result, StepExt};
use crate::state::{Container, State, Status};
use std::str::FromStr;

pub fn run(g: &GlobalOpts, args: &KillArgs) -> Result<i32> {
    let sig = parse_signal(args.signal.as_deref().unwrap_or("SIGTERM"))?;
    let c = Container::open(&g.root, &args.id)?;
    let st = c.load()?;
    if crate::state::status(&c.dir, &st) == Status::Stopped {
        return Err(state(format!(
            "cannot kill container {:?}: container not running",
            args.id
        )));
    }
    if args.all {
        signal_all(&st, sig)?;
    } else {
        signal_pid(st.pid, st.pid_start, sig)?;
    }
    Ok(0)
}

/// `9`, `KILL`, `SIGKILL`, `kill` all name SIGKILL, as with runc. `0` is accepted as runc
/// does: kill(2)'s existence check, which fails only for a container that is not running.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (0..=64).contains(&n) {
            return Ok(n);
        }
        return Err(config("signal", format!("{s:?}: no such signal")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(off) = name
        .strip_prefix("SIGRTMIN+")
        .and_then(|n| n.parse::<i32>().ok())
    {
        return rt_signal(libc::SIGRTMIN() + off, s);
    }
    if let Some(off) = name
        .strip_prefix("SIGRTMAX-")
        .and_then(|n| n.parse::<i32>().ok())
    {
        return rt_signal(libc::SIGRTMAX() - off, s);
    }
    nix::sys::signal::Signal::from_str(&name)
        .map(|sig| sig as i32)
        .map_err(|_| config("signal", format!("{s:?}: no such signal")))
}

fn rt_signal(n: i32, s: &str) -> Result<i32> {
    if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) {
        Ok(n)
    } else {
        Err(config("signal", format!("{s:?}: no such signal")))
    }
}

/// Signal one process if it is still the one with this start time. A process that is already
/// gone is not an error (it is what the caller wanted).
pub fn signal_pid(pid: i32, start: u64, sig: i32) -> Result<()> {
    let fd = match crate::syscall::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(()),
        Err(e) => return Err(e).step(|| format!("pidfd_open {pid}")),
    };
    // The pidfd pins the process; checking the start time after opening it closes the race.
    if !crate::state::process_alive(pid, start) {
        return Ok(());
    }
    match crate::syscall::pidfd_send_signal(&fd, sig) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        r => r.step(|| format!("send signal {sig} to pid {pid}")),
    }
}

/// Every process of the container's cgroup. The cgroup is frozen while the list is read and
/// signalled, so nothing can fork a process that escapes the signal; killed processes die
/// when it is thawed.
pub fn signal_all(st: &State, sig: i32) -> Result<()> {
    let (path, systemd) = (&st.cgroup_path, st.systemd_cgroup);
    if !systemd && !crate::cgroups::exists(path) {
        // Rootless without a cgroup the user could make (rootless.rs): the container's own pid
        // namespace holds all of its processes, and SIGKILL to its init ends them all. Other
        // signals reach the init alone, as runc's do in that case. In a pid namespace joined by
        // path nothing lists the container's other processes: the init alone, as runc (which
        // warns too).
        if !st.own_pid_ns && st.pid > 0 {
            crate::log::warn(&format!(
                "{}: no cgroup and no pid namespace of its own: only its init (pid {}) is signalled",
                st.id, st.pid
            ));
        }
        return signal_pid(st.pid, st.pid_start, sig);
    }
    // A paused container stays paused; otherwise freeze for the duration and thaw after.
    // SIGKILL thaws even a paused one: frozen tasks cannot die.
    let was_paused = crate::cgroups::is_frozen(path, systemd);
    let frozen = (sig == libc::SIGKILL || !was_paused)
        && crate::cgroups::freeze(path, systemd, &st.id, true).is_ok();
    let result = (|| {
        for pid in crate::cgroups::pids(path, systemd, &st.id, st.rootless)? {
            signal_unverified(pid, sig)?;
        }
        Ok(())
    })();
    if frozen {
        crate::cgroups::freeze(path, systemd, &st.id, false)?;
    }
    result
}

/// Members of a frozen cgroup cannot exit and be recycled while we hold the list, so their
/// PIDs need no start-time check.
fn signal_unverified(pid: i32, sig: i32) -> Result<()> {
    match nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::try_from(sig).ok(),
    ) {
        Err(nix::errno::Errno::ESRCH) | Ok(()) => Ok(()),
        Err(e) => Err(e).step(|| format!("send signal {sig} to pid {pid}")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_signal;

    #[test]
    fn signal_names_with_and_without_sig_and_numbers() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert_eq!(parse_signal("0").unwrap(), 0);
        assert_eq!(parse_signal("RTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        for bad in ["SIGFOO", "65", "-1", ""] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}
