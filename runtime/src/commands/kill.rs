//! `vsrun kill ID [SIGNAL]` and `--all`. Signals go through a pidfd opened and then checked
//! against the recorded start time, so a recycled PID is never signalled.

use crate::cli::{GlobalOpts, KillArgs};
use crate::error::{config, state, Result, StepExt};
use crate::state::{Container, State, Status};
use std::collections::HashMap;
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

/// `9`, `KILL`, `SIGKILL`, `kill` all name SIGKILL, as with runc.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
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

/// Every process of the container: the members of its own PID namespace, or without one the
/// init's descendants. (The container's cgroup will be the authority once cgroups land.)
pub fn signal_all(st: &State, sig: i32) -> Result<()> {
    for (pid, start) in members(st) {
        signal_pid(pid, start, sig)?;
    }
    Ok(())
}

pub fn members(st: &State) -> Vec<(i32, u64)> {
    let ns_of = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let init_ns = ns_of(st.pid);
    let mut parent: HashMap<i32, i32> = HashMap::new();
    let mut starts: HashMap<i32, u64> = HashMap::new();
    let mut in_ns = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Some((_, start)) = crate::state::proc_stat(pid) else {
            continue;
        };
        starts.insert(pid, start);
        if let Some(pp) = ppid(pid) {
            parent.insert(pid, pp);
        }
        if st.own_pid_ns && init_ns.is_some() && ns_of(pid) == init_ns {
            in_ns.push((pid, start));
        }
    }
    if st.own_pid_ns {
        return in_ns;
    }
    let is_descendant = |mut p: i32| {
        for _ in 0..4096 {
            if p == st.pid {
                return true;
            }
            match parent.get(&p) {
                Some(&pp) if pp > 0 => p = pp,
                _ => return false,
            }
        }
        false
    };
    starts
        .into_iter()
        .filter(|(pid, start)| {
            (*pid == st.pid && *start == st.pid_start) || (*pid != st.pid && is_descendant(*pid))
        })
        .collect()
}

fn ppid(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
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
        assert_eq!(parse_signal("RTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        for bad in ["SIGFOO", "0", "65", "-1", ""] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}
