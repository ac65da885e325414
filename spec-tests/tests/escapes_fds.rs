//! Escapes through descriptors (issue 17, fault 5; CVE-2024-21626 class): `--preserve-fds N`
//! and LISTEN_FDS=N keep fds 3..3+N open across the container's execve. Only the fds the
//! *caller* put there may cross. vsrun's own fds (its cgroup directory, its sync socket, the
//! exec fifo, the state dir) must never land in that range: a directory fd of the host's
//! cgroupfs is a way out of the container, because `..` from it walks the host's tree (the
//! first test shows that walk working, so the others can fail).
//!
//! Each test spawns vsrun from a caller that holds only stdio plus a few chosen fds with gaps
//! (the gaps are where vsrun's own fds used to land), lets the probe list /proc/self/fd in the
//! container, and checks the list against what the caller passed.

use serde_json::Value;
use spec_tests::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The fd numbers the caller hands to vsrun, with gaps at 3, 4 and 6 (where vsrun's cgroup
/// directory and socket were seen) and inside a range of 100.
const CALLER_FDS: [RawFd; 4] = [5, 7, 9, 40];
const RANGE: &str = "100";

/// What a caller holds at the fd numbers it passes: files and one socket, each recognisable
/// from inside the container by its /proc/self/fd target.
struct CallerFds {
    _dir: tempfile::TempDir,
    /// (number in vsrun, our fd, the target our /proc/self/fd shows for it)
    fds: Vec<(RawFd, OwnedFd, String)>,
    _peer: UnixStream,
}

impl CallerFds {
    fn new(numbers: &[RawFd]) -> CallerFds {
        let dir = tempfile::Builder::new()
            .prefix("vsrun-fds-caller-")
            .tempdir()
            .expect("temp dir");
        let (ours, peer) = UnixStream::pair().expect("socketpair");
        let mut fds = Vec::new();
        for (i, &n) in numbers.iter().enumerate() {
            let fd: OwnedFd = if i == 1 {
                ours.try_clone().expect("dup socket").into()
            } else {
                fs::File::create(dir.path().join(format!("caller-fd-{n}")))
                    .expect("create marker")
                    .into()
            };
            let target = own_fd_target(fd.as_raw_fd());
            fds.push((n, fd, target));
        }
        CallerFds {
            _dir: dir,
            fds,
            _peer: peer,
        }
    }

    /// In the spawned vsrun, our fds appear (inheritable) at their chosen numbers and nothing
    /// else besides stdio. Whatever this test process itself inherited without O_CLOEXEC (a
    /// shell's fd 10 on /dev/null, say) is closed, so the caller is exactly what the test says.
    fn hand_to(&self, c: &mut Command) {
        let pairs: Vec<(RawFd, RawFd)> = self
            .fds
            .iter()
            .map(|(n, fd, _)| (fd.as_raw_fd(), *n))
            .collect();
        // SAFETY: fcntl/dup2/close_range only (async-signal-safe), in the forked child.
        unsafe {
            c.pre_exec(move || {
                // Staged at 1000 and up (close-on-exec), so a source never sits on another's
                // target and closing 3..1000 keeps them.
                let mut staged = Vec::with_capacity(pairs.len());
                for &(src, _) in &pairs {
                    let s = libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 1000);
                    if s < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    staged.push(s);
                }
                if libc::syscall(libc::SYS_close_range, 3u32, 999u32, 0u32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let cloexec = libc::CLOSE_RANGE_CLOEXEC as u32;
                if libc::syscall(libc::SYS_close_range, 1000u32, u32::MAX, cloexec) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for (&s, &(_, dst)) in staged.iter().zip(&pairs) {
                    if libc::dup2(s, dst) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }

    fn expected(&self) -> BTreeMap<i64, String> {
        self.fds
            .iter()
            .map(|(n, _, t)| (*n as i64, t.clone()))
            .collect()
    }
}

fn own_fd_target(fd: RawFd) -> String {
    fs::read_link(format!("/proc/self/fd/{fd}"))
        .expect("readlink own fd")
        .to_string_lossy()
        .into_owned()
}

/// fd number → /proc/self/fd target, from a probe report.
fn fd_targets(seen: &Value) -> BTreeMap<i64, String> {
    seen["fds"]
        .as_array()
        .unwrap_or_else(|| panic!("no fds in the report: {seen}"))
        .iter()
        .map(|f| {
            (
                f["fd"].as_i64().expect("fd number"),
                f["target"].as_str().unwrap_or("<unreadable>").to_string(),
            )
        })
        .collect()
}

/// The rule: above stdio, exactly the caller's fds, each the caller's file; and none of what
/// vsrun itself holds (checked by name too, so a failure says what leaked).
#[track_caller]
fn assert_only_the_callers_fds(seen: &Value, caller: &CallerFds, rt: &Runtime, what: &str) {
    let got = fd_targets(seen);
    let leaked_own: Vec<String> = got
        .iter()
        .filter(|(n, _)| **n > 2)
        .filter(|(n, t)| caller.expected().get(n) != Some(t))
        .map(|(n, t)| format!("{n} -> {t}{}", own_fd_kind(t, rt)))
        .collect();
    let above_stdio: BTreeMap<i64, String> = got.into_iter().filter(|(n, _)| *n > 2).collect();
    assert!(
        leaked_own.is_empty() && above_stdio == caller.expected(),
        "{what}: the container holds fds the caller did not pass:\n  {}\ncaller passed: {:?}\nall: {}",
        leaked_own.join("\n  "),
        caller.expected(),
        seen["fds"]
    );
}

fn own_fd_kind(target: &str, rt: &Runtime) -> &'static str {
    if target.contains("/sys/fs/cgroup") {
        "  (the host's cgroupfs: `..` from it reaches the host's /)"
    } else if target.contains("exec.fifo") {
        "  (vsrun's exec fifo)"
    } else if target.starts_with(rt.root_str()) {
        "  (vsrun's state dir)"
    } else if target.starts_with("socket:") {
        "  (a socket of vsrun's)"
    } else {
        ""
    }
}

fn probe_bundle() -> Bundle {
    let mut b = Bundle::new();
    b.set_args(&["/probe"]);
    b.write();
    b
}

/// The container's first stdout line (a probe report), for `create` + `start`.
fn wait_container_report(rt: &Runtime, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (out, err) = rt.container_output(id);
        if let Some(line) = out.lines().next().filter(|_| out.contains('\n')) {
            return serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("probe report is not JSON ({e}): {line:?}"));
        }
        assert!(
            Instant::now() < deadline,
            "no report from {id}; stderr: {err}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn report_of(o: &Output, what: &str) -> Value {
    assert_success(o, what);
    parse_json_lines(&o.stdout)
        .ok()
        .and_then(|mut l| (!l.is_empty()).then(|| l.remove(0)))
        .unwrap_or_else(|| panic!("{what}: no probe report\n{}", output_text(o)))
}

// ---------------------------------------------------------------------------------------------
// The attack, on a deliberately unprotected path

/// A directory fd of the host's cgroupfs, handed into a container, is a way to the host's `/`:
/// `..` through it walks the host's dentries, and the container's root is never met on the way
/// (it is not an ancestor). Here the *caller* passes such an fd on purpose, which vsrun must
/// allow; it shows what any leaked vsrun-owned cgroup fd would give a container.
#[test]
fn a_cgroupfs_directory_fd_in_a_container_reaches_the_host_root() {
    let rt = Runtime::new();
    let cgroupfs = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_dir())
        .expect("a cgroupfs directory on the host");
    let dir: OwnedFd = fs::File::open(cgroupfs).expect("open cgroupfs").into();
    let raw = dir.as_raw_fd();
    let mut b = Bundle::new();
    let up = "/..".repeat(8);
    let through_fd = format!("/proc/self/fd/3{up}");
    b.set_args(&["/probe", "ls", &through_fd, "--", "ls", "/"]);
    b.write();
    let id = unique_id("fdwalk");
    let o = rt.cmd_with(
        &["run", "--preserve-fds", "1", "--bundle", b.path_str(), &id],
        |c| inherit_fd(c, raw, 3),
    );
    assert_success(&o, "run with a cgroupfs fd as fd 3");
    let lines = parse_json_lines(&o.stdout).expect("probe JSON lines");
    let host_root: Vec<String> = {
        let mut v: Vec<String> = fs::read_dir("/")
            .expect("read host /")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let via_fd: Vec<String> =
        serde_json::from_value(lines[0]["entries"].clone()).expect("ls through the fd");
    let container_root: Vec<String> =
        serde_json::from_value(lines[1]["entries"].clone()).expect("ls /");
    assert_eq!(
        via_fd, host_root,
        "`{through_fd}` inside the container should list the host's / (the walk this class is about)"
    );
    assert_ne!(
        via_fd, container_root,
        "the walk must not end in the container's own /"
    );
    assert_nothing_left(&rt, &id);
}

// ---------------------------------------------------------------------------------------------
// vsrun's own fds never land in the preserved range

#[test]
fn run_with_a_large_preserve_fds_passes_only_the_callers_fds() {
    let rt = Runtime::new();
    let b = probe_bundle();
    let caller = CallerFds::new(&CALLER_FDS);
    let id = unique_id("fdsrun");
    let o = rt.cmd_with(
        &[
            "run",
            "--preserve-fds",
            RANGE,
            "--bundle",
            b.path_str(),
            &id,
        ],
        |c| caller.hand_to(c),
    );
    let seen = report_of(&o, "run --preserve-fds 100");
    assert_only_the_callers_fds(&seen, &caller, &rt, "run --preserve-fds 100");
    assert_nothing_left(&rt, &id);
}

#[test]
fn run_with_a_large_preserve_fds_and_no_caller_fds_passes_only_stdio() {
    let rt = Runtime::new();
    let b = probe_bundle();
    let caller = CallerFds::new(&[]);
    let id = unique_id("fdsnone");
    let o = rt.cmd_with(
        &[
            "run",
            "--preserve-fds",
            RANGE,
            "--bundle",
            b.path_str(),
            &id,
        ],
        |c| caller.hand_to(c),
    );
    let seen = report_of(&o, "run --preserve-fds 100 from a caller with only stdio");
    assert_only_the_callers_fds(&seen, &caller, &rt, "run --preserve-fds 100, stdio only");
}

#[test]
fn create_and_start_with_a_large_preserve_fds_pass_only_the_callers_fds() {
    let rt = Runtime::new();
    let b = probe_bundle();
    let caller = CallerFds::new(&CALLER_FDS);
    let id = unique_id("fdscreate");
    let o = rt.create_full(&b, &id, &["--preserve-fds", RANGE], |c| caller.hand_to(c));
    assert_success(&o, "create --preserve-fds 100");
    rt.start(&id);
    let seen = wait_container_report(&rt, &id);
    assert_only_the_callers_fds(&seen, &caller, &rt, "create --preserve-fds 100 + start");
    rt.wait_status(&id, "stopped", Duration::from_secs(30));
    assert_success(&rt.cmd(&["delete", &id]), "delete");
    assert_nothing_left(&rt, &id);
}

#[test]
fn exec_with_a_large_preserve_fds_passes_only_the_callers_fds() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let caller = CallerFds::new(&CALLER_FDS);
    let o = rt.cmd_with(&["exec", "--preserve-fds", RANGE, &d.id, "/probe"], |c| {
        caller.hand_to(c)
    });
    let seen = report_of(&o, "exec --preserve-fds 100");
    assert_only_the_callers_fds(&seen, &caller, &rt, "exec --preserve-fds 100");
    rt.delete_force(&d.id);
    assert_nothing_left(&rt, &d.id);
}

/// Socket activation keeps 3..3+LISTEN_FDS the same way: a gap there is no room for vsrun's
/// own fds either.
#[test]
fn socket_activation_with_gaps_passes_only_the_callers_fds() {
    let rt = Runtime::new();
    let b = probe_bundle();
    let caller = CallerFds::new(&[4, 9]);
    let id = unique_id("fdslisten");
    let o = rt.cmd_with(&["run", "--bundle", b.path_str(), &id], |c| {
        c.env("LISTEN_FDS", "8");
        caller.hand_to(c);
    });
    let seen = report_of(&o, "run with LISTEN_FDS=8");
    assert_only_the_callers_fds(&seen, &caller, &rt, "run with LISTEN_FDS=8 and fds 4, 9");
    let env: Vec<String> = serde_json::from_value(seen["env"].clone()).expect("env");
    assert!(env.contains(&"LISTEN_FDS=8".to_string()), "{env:?}");
    assert_nothing_left(&rt, &id);
}

/// A range larger than vsrun can keep free of its own fds (RLIMIT_NOFILE) is refused, not
/// half-sealed; the old arithmetic (`3 + N as i32`) overflowed there.
#[test]
fn a_preserve_fds_range_beyond_the_fd_limit_is_refused() {
    let rt = Runtime::new();
    let b = probe_bundle();
    let id = unique_id("fdshuge");
    let o = rt.cmd(&[
        "run",
        "--preserve-fds",
        "4294967295",
        "--bundle",
        b.path_str(),
        &id,
    ]);
    assert!(
        o.status.code() == Some(1) && stderr_str(&o).contains("--preserve-fds"),
        "expected a refusal naming --preserve-fds:\n{}",
        output_text(&o)
    );
    assert_nothing_left(&rt, &id);
}

/// The init waiting on exec.fifo for `start` must hold no directory of the host: it used to
/// keep the cgroup directory vsrun cloned it into (CLONE_INTO_CGROUP) until its execve, where
/// a container process allowed to ptrace it (CAP_SYS_PTRACE, exec'd into the created
/// container) could open /proc/<init>/fd/N and walk `..` to the host's root, as the first test
/// of this file shows. Only its exec fifo, its sync socket and stdio are expected there.
#[test]
fn a_created_init_holds_no_directory_fd_while_it_waits_for_start() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["sleep", "30"]);
    let id = unique_id("fds-created");
    assert_success(&rt.create(&b, &id), "create");
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    let dirs: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list the init's fds")
        .flatten()
        .filter(|e| fs::metadata(e.path()).is_ok_and(|m| m.is_dir()))
        .map(|e| {
            let target = fs::read_link(e.path()).unwrap_or_default();
            format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                target.display()
            )
        })
        .collect();
    let _ = rt.delete_force(&id);
    assert!(
        dirs.is_empty(),
        "the created init holds directory fds: {dirs:?}"
    );
}
