//! Each rule is checked in the kernel: a forked child sets no_new_privs, loads the filter,
//! makes the syscall and reports through its exit status. ABI corner cases the test process
//! cannot reach by itself (arm, some x32 numbers) run through the userspace interpreter.

use super::compile::{RET_ALLOW, RET_ERRNO, RET_KILL_THREAD};
use super::*;
use serde_json::{json, Value};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::result::Result;
use std::time::{Duration, Instant};

const AUDIT_X86_64: u32 = 0xc000_003e;
const AUDIT_I386: u32 = 0x4000_0003;
const X32: u64 = 0x4000_0000;

fn parse(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("valid linux.seccomp")
}

fn filter(v: Value) -> Filter {
    compile(&parse(v)).expect("profile compiles")
}

fn compile_err(v: Value) -> String {
    match compile(&parse(v)) {
        Ok(_) => panic!("profile compiled but should not"),
        Err(e) => e.to_string(),
    }
}

fn docker() -> LinuxSeccomp {
    serde_json::from_str(include_str!("../testdata/docker.json")).expect("docker profile parses")
}

fn podman() -> LinuxSeccomp {
    serde_json::from_str(include_str!("../testdata/podman.json")).expect("podman profile parses")
}

#[derive(Debug, PartialEq, Eq)]
enum Exit {
    Code(i32),
    Signal(i32),
}

/// Fork; the child drops core dumps, sets no_new_privs, runs `f` and exits with its result.
fn in_child(f: impl FnOnce() -> i32) -> Exit {
    // SAFETY: the child only makes syscalls and exits with _exit, never unwinding or
    // returning into the test harness.
    match unsafe { libc::fork() } {
        -1 => panic!("fork: {}", std::io::Error::last_os_error()),
        0 => {
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: plain syscalls; _exit never returns.
            unsafe {
                libc::setrlimit(libc::RLIMIT_CORE, &no_core);
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            }
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
            // SAFETY: see above.
            unsafe { libc::_exit(code) }
        }
        pid => wait(pid),
    }
}

fn wait(pid: i32) -> Exit {
    let mut st = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut st, 0) };
    assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
    if libc::WIFEXITED(st) {
        Exit::Code(libc::WEXITSTATUS(st))
    } else {
        Exit::Signal(libc::WTERMSIG(st))
    }
}

/// A raw syscall: Ok(return value) or Err(errno).
fn sys(nr: u64, args: [u64; 6]) -> Result<i64, i32> {
    // SAFETY: the tests only make syscalls whose pointer arguments are null or absent.
    let r = unsafe {
        libc::syscall(
            nr as libc::c_long,
            args[0],
            args[1],
            args[2],
            args[3],
            args[4],
            args[5],
        )
    };
    if r == -1 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r)
    }
}

fn getpid_with(arg0: u64) -> Result<i64, i32> {
    sys(libc::SYS_getpid as u64, [arg0, 0, 0, 0, 0, 0])
}

/// The filter's verdict for one `seccomp_data`, computed in userspace.
fn run(f: &Filter, nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    super::bpf::run(&f.prog, nr, arch, args)
}

fn load(f: &Filter) -> Option<OwnedFd> {
    install(f).expect("filter loads")
}

/// Run the syscalls in a child under `f`; the child exits 0 when `check` holds for all.
fn expect_in_child(f: &Filter, check: impl Fn() -> Result<(), String>) {
    let out = in_child(|| {
        load(f);
        match check() {
            Ok(()) => 0,
            Err(msg) => {
                // Direct write: the child's stderr is the test's; no locks after fork.
                let m = format!("child: {msg}\n");
                // SAFETY: writing a valid buffer to stderr.
                unsafe { libc::write(2, m.as_ptr().cast(), m.len()) };
                1
            }
        }
    });
    assert_eq!(out, Exit::Code(0));
}

fn errno_rule(names: &[&str], errno: u32) -> Value {
    json!({ "names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": errno })
}

/// For hack/bench-seccomp: compile every `*.json` (a `linux.seccomp`) in the directory named
/// by VSRUN_SECCOMP_EXPORT, write the program as `*.bpf` (raw struct sock_filter array) next
/// to it and print the median compile time of each.
#[test]
#[ignore]
fn export_compiled_profiles() {
    let Some(dir) = std::env::var_os("VSRUN_SECCOMP_EXPORT") else {
        return;
    };
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("export dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for p in paths {
        let s: LinuxSeccomp =
            serde_json::from_slice(&std::fs::read(&p).expect("read profile")).expect("profile");
        let out = p.with_extension("bpf");
        let f = match compile(&s) {
            Ok(f) => f,
            Err(e) => {
                std::fs::write(p.with_extension("err"), e.to_string()).expect("write error");
                continue;
            }
        };
        let mut times: Vec<Duration> = (0..200)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(compile(&s).expect("compiles"));
                t.elapsed()
            })
            .collect();
        times.sort();
        let mut bytes = Vec::with_capacity(f.len() * 8);
        for i in &f.prog {
            bytes.extend_from_slice(&i.code.to_ne_bytes());
            bytes.extend_from_slice(&[i.jt, i.jf]);
            bytes.extend_from_slice(&i.k.to_ne_bytes());
        }
        std::fs::write(&out, bytes).expect("write bpf");
        println!(
            "{}: {} instructions, compile median {:.1} us",
            p.display(),
            f.len(),
            times[times.len() / 2].as_secs_f64() * 1e6
        );
    }
}

mod abi;
mod actions;
mod args;
mod profiles;
mod refusals;
