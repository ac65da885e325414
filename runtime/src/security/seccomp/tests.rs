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
    serde_json::from_str(include_str!("testdata/docker.json")).expect("docker profile parses")
}

fn podman() -> LinuxSeccomp {
    serde_json::from_str(include_str!("testdata/podman.json")).expect("podman profile parses")
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

// ---------------------------------------------------------------------------------------------
// Actions

#[test]
fn errno_action_returns_errno_ret() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [errno_rule(&["getpid"], 42)]
    }));
    expect_in_child(&f, || match getpid_with(0) {
        Err(42) => Ok(()),
        r => Err(format!("getpid gave {r:?}, wanted errno 42")),
    });
}

#[test]
fn errno_action_without_errno_ret_returns_eperm() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO" }]
    }));
    expect_in_child(&f, || match getpid_with(0) {
        Err(libc::EPERM) => Ok(()),
        r => Err(format!("getpid gave {r:?}, wanted EPERM")),
    });
}

#[test]
fn default_errno_ret_applies_to_unnamed_syscalls() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 77,
        "syscalls": [{ "names": ["getpid", "exit_group", "exit", "write"], "action": "SCMP_ACT_ALLOW" }]
    }));
    expect_in_child(&f, || {
        if getpid_with(0).is_err() {
            return Err("named getpid was not allowed".into());
        }
        match sys(libc::SYS_getppid as u64, [0; 6]) {
            Err(77) => Ok(()),
            r => Err(format!("getppid gave {r:?}, wanted errno 77")),
        }
    });
}

#[test]
fn kill_process_kills_whole_process() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS" }]
    }));
    let out = in_child(|| {
        load(&f);
        // The syscall is made by a second thread; the main thread would exit 0.
        let t = std::thread::spawn(|| getpid_with(0));
        let _ = t.join();
        std::thread::sleep(Duration::from_secs(2));
        0
    });
    assert_eq!(out, Exit::Signal(libc::SIGSYS));
}

#[test]
fn kill_thread_kills_only_the_calling_thread() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_KILL_THREAD" }]
    }));
    let out = in_child(|| {
        load(&f);
        std::thread::spawn(|| {
            let _ = getpid_with(0);
            // Not reached: the thread dies in getpid.
            // SAFETY: plain exit.
            unsafe { libc::_exit(3) }
        });
        // (No join: the dead thread never hands back a result.)
        std::thread::sleep(Duration::from_millis(500));
        7
    });
    assert_eq!(out, Exit::Code(7));
}

#[test]
fn kill_is_kill_thread() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_KILL" }]
    }));
    assert_eq!(run(&f, 39, AUDIT_X86_64, [0; 6]), RET_KILL_THREAD);
    let out = in_child(|| {
        load(&f);
        let _ = getpid_with(0);
        0
    });
    assert_eq!(out, Exit::Signal(libc::SIGSYS));
}

#[test]
fn trap_raises_sigsys() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_TRAP" }]
    }));
    let out = in_child(|| {
        load(&f);
        let _ = getpid_with(0);
        0
    });
    assert_eq!(out, Exit::Signal(libc::SIGSYS));
}

#[test]
fn log_action_lets_the_syscall_run() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            { "names": ["getpid"], "action": "SCMP_ACT_LOG" },
            { "names": ["exit_group", "exit", "write"], "action": "SCMP_ACT_ALLOW" }
        ]
    }));
    expect_in_child(&f, || {
        // SAFETY: getpid cannot fail.
        let me = unsafe { libc::getpid() };
        match getpid_with(0) {
            Ok(p) if p == i64::from(me) => Ok(()),
            r => Err(format!("logged getpid gave {r:?}")),
        }
    });
}

#[test]
fn trace_without_tracer_fails_with_enosys() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_TRACE", "errnoRet": 1234 }]
    }));
    expect_in_child(&f, || match getpid_with(0) {
        Err(libc::ENOSYS) => Ok(()),
        r => Err(format!("traced getpid without a tracer gave {r:?}")),
    });
}

#[test]
fn trace_passes_errno_ret_to_the_tracer() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_TRACE", "errnoRet": 1234 }]
    }));
    // SAFETY: the child only makes syscalls and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: as above.
        unsafe {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::raise(libc::SIGSTOP);
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        }
        let code = match install(&f) {
            Ok(_) => match getpid_with(0) {
                Ok(_) => 0,
                Err(_) => 2,
            },
            Err(_) => 1,
        };
        // SAFETY: as above.
        unsafe { libc::_exit(code) }
    }
    let mut st = 0;
    // SAFETY: tracing our own child (this thread is its tracer).
    unsafe {
        assert_eq!(libc::waitpid(pid, &mut st, 0), pid);
        assert!(libc::WIFSTOPPED(st) && libc::WSTOPSIG(st) == libc::SIGSTOP);
        let opts = libc::PTRACE_O_TRACESECCOMP | libc::PTRACE_O_EXITKILL;
        assert_eq!(libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, opts), 0);
        assert_eq!(libc::ptrace(libc::PTRACE_CONT, pid, 0, 0), 0);
        assert_eq!(libc::waitpid(pid, &mut st, 0), pid);
        assert!(
            libc::WIFSTOPPED(st),
            "child did not stop for the tracer: {st:#x}"
        );
        assert_eq!(st >> 8, libc::SIGTRAP | (libc::PTRACE_EVENT_SECCOMP << 8));
        let mut msg: libc::c_ulong = 0;
        assert_eq!(
            libc::ptrace(
                libc::PTRACE_GETEVENTMSG,
                pid,
                0,
                &mut msg as *mut libc::c_ulong
            ),
            0
        );
        assert_eq!(msg, 1234, "SECCOMP_RET_DATA seen by the tracer");
        assert_eq!(libc::ptrace(libc::PTRACE_CONT, pid, 0, 0), 0);
    }
    assert_eq!(wait(pid), Exit::Code(0));
}

#[test]
fn notify_returns_listener_fd() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_NOTIFY" }]
    }));
    assert!(f.uses_notify());
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    // SAFETY: the child only makes syscalls and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = (|| {
            // SAFETY: plain prctl.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            let Ok(Some(fd)) = install(&f) else { return 1 };
            // SAFETY: F_GETFD on our own fd.
            if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) } & libc::FD_CLOEXEC == 0 {
                return 2;
            }
            if send_fd(theirs.as_fd(), fd.as_fd()).is_err() {
                return 3;
            }
            drop(fd);
            // The agent answers 4242 for us.
            match sys(libc::SYS_getppid as u64, [0; 6]) {
                Ok(4242) => 0,
                _ => 4,
            }
        })();
        // SAFETY: plain exit.
        unsafe { libc::_exit(code) }
    }
    drop(theirs);
    let listener = recv_fd(ours.as_fd());
    let mut req = [0u8; 80]; // struct seccomp_notif
                             // SAFETY: SECCOMP_IOCTL_NOTIF_RECV fills a struct seccomp_notif (80 bytes).
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), NOTIF_RECV, req.as_mut_ptr()) };
    assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    let id = u64::from_ne_bytes(req[0..8].try_into().unwrap());
    let nr = i32::from_ne_bytes(req[16..20].try_into().unwrap());
    assert_eq!(nr, libc::SYS_getppid as i32);
    let mut resp = [0u8; 24]; // struct seccomp_notif_resp { id, val, error, flags }
    resp[0..8].copy_from_slice(&id.to_ne_bytes());
    resp[8..16].copy_from_slice(&4242i64.to_ne_bytes());
    // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads a struct seccomp_notif_resp (24 bytes).
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), NOTIF_SEND, resp.as_ptr()) };
    assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    assert_eq!(wait(pid), Exit::Code(0));
}

const NOTIF_RECV: libc::c_ulong = 0xc050_2100; // _IOWR('!', 0, struct seccomp_notif)
const NOTIF_SEND: libc::c_ulong = 0xc018_2101; // _IOWR('!', 1, struct seccomp_notif_resp)

fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> nix::Result<usize> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(b"x")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
}

fn recv_fd(sock: BorrowedFd<'_>) -> OwnedFd {
    recv_msg_fd(sock).1.expect("an fd came with the message")
}

fn recv_msg_fd(sock: BorrowedFd<'_>) -> (Vec<u8>, Option<OwnedFd>) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = vec![0u8; 1 << 16];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .expect("recvmsg");
    let n = msg.bytes;
    let mut fd = None;
    for c in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel installed this fd for us.
            fd = fds.first().map(|f| unsafe { OwnedFd::from_raw_fd(*f) });
        }
    }
    buf.truncate(n);
    (buf, fd)
}

#[test]
fn send_listener_follows_the_runtime_spec() {
    let dir = tempfile_dir();
    let path = dir.join("agent.sock");
    let server = std::os::unix::net::UnixListener::bind(&path).expect("bind agent socket");
    let agent = std::thread::spawn(move || {
        let (conn, _) = server.accept().expect("accept");
        let (first, fd) = recv_msg_fd(conn.as_fd());
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut &conn, &mut rest).expect("read rest");
        ([first, rest].concat(), fd)
    });
    let sent = std::fs::File::open("/dev/null").expect("open /dev/null");
    let state = br#"{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":4422,"bundle":"/b","annotations":{"k":"v"}}"#;
    send_listener(&path, sent.as_fd(), state, Some("MKNOD=/dev/null")).expect("send_listener");
    let (payload, fd) = agent.join().expect("agent thread");
    let v: Value = serde_json::from_slice(&payload).expect("agent got JSON");
    assert_eq!(v["ociVersion"], crate::OCI_VERSION);
    assert_eq!(v["fds"], json!(["seccompFd"]));
    assert_eq!(v["pid"], 4422);
    assert_eq!(v["metadata"], "MKNOD=/dev/null");
    assert_eq!(v["state"]["id"], "c1");
    assert_eq!(v["state"]["status"], "creating");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["ociVersion", "fds", "pid", "metadata", "state"]);
    let got = std::fs::File::from(fd.expect("the fd came as SCM_RIGHTS"));
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (sent.metadata().unwrap(), got.metadata().unwrap());
    assert_eq!((a.dev(), a.ino(), a.rdev()), (b.dev(), b.ino(), b.rdev()));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn send_listener_names_the_path_when_no_agent_listens() {
    let dir = tempfile_dir();
    let sent = std::fs::File::open("/dev/null").expect("open /dev/null");
    let e = send_listener(&dir.join("none.sock"), sent.as_fd(), b"{\"pid\":1}", None)
        .expect_err("no agent");
    let msg = e.to_string();
    assert!(
        msg.contains("none.sock") && msg.contains("linux.seccomp.listenerPath"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("vsrun-seccomp-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

// ---------------------------------------------------------------------------------------------
// Argument comparisons

/// For each op, getpid(arg0) must be denied exactly when `arg0 <op> value` holds, with values
/// on both sides of the 32-bit boundary.
#[test]
fn comparison_ops_compare_full_64_bit_values() {
    const VALUES: [u64; 9] = [
        0,
        1,
        5,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0005,
        0x8000_0000_0000_0000,
        0xffff_ffff_0000_0000,
        u64::MAX,
    ];
    type Pred = fn(u64, u64) -> bool;
    let ops: [(&str, Pred); 6] = [
        ("SCMP_CMP_NE", |a, v| a != v),
        ("SCMP_CMP_LT", |a, v| a < v),
        ("SCMP_CMP_LE", |a, v| a <= v),
        ("SCMP_CMP_EQ", |a, v| a == v),
        ("SCMP_CMP_GE", |a, v| a >= v),
        ("SCMP_CMP_GT", |a, v| a > v),
    ];
    for (op, pred) in ops {
        for v in [5u64, 0x1_0000_0005, 0xffff_ffff_0000_0000] {
            let f = filter(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99,
                               "args": [{ "index": 0, "value": v, "op": op }] }]
            }));
            for a in VALUES {
                let want = if pred(a, v) {
                    RET_ERRNO | 99
                } else {
                    RET_ALLOW
                };
                assert_eq!(
                    run(&f, 39, AUDIT_X86_64, [a, 0, 0, 0, 0, 0]),
                    want,
                    "{op} {v:#x} on {a:#x}"
                );
            }
            expect_in_child(&f, || {
                for a in VALUES {
                    let denied = getpid_with(a) == Err(99);
                    if denied != pred(a, v) {
                        return Err(format!("{op} {v:#x}: getpid({a:#x}) denied={denied}"));
                    }
                }
                Ok(())
            });
        }
    }
}

#[test]
fn masked_eq_matches_only_masked_bits() {
    // docker's clone rule: allowed when no namespace flag (mask 0x7e020000) is set.
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99,
                       "args": [{ "index": 1, "value": 0xff00_0000_00f0u64, "valueTwo": 0x1200_0000_0030u64,
                                  "op": "SCMP_CMP_MASKED_EQ" }] }]
    }));
    let cases: [(u64, bool); 6] = [
        (0x1200_0000_0030, true),
        (0x12ff_ffff_ff3f, true),
        (0x1200_0000_0031, true),
        (0x1300_0000_0030, false),
        (0x1200_0000_0020, false),
        (0x0000_0000_0030, false),
    ];
    expect_in_child(&f, || {
        for (a, hit) in cases {
            let denied = sys(libc::SYS_getpid as u64, [0, a, 0, 0, 0, 0]) == Err(99);
            if denied != hit {
                return Err(format!("masked_eq on {a:#x}: denied={denied}"));
            }
        }
        Ok(())
    });
    // libseccomp's reading: the datum is masked too, so bits outside the mask never matter.
    let g = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99,
                       "args": [{ "index": 0, "value": 0xf, "valueTwo": 0xf5, "op": "SCMP_CMP_MASKED_EQ" }] }]
    }));
    assert_eq!(
        run(&g, 39, AUDIT_X86_64, [0x25, 0, 0, 0, 0, 0]),
        RET_ERRNO | 99
    );
    assert_eq!(run(&g, 39, AUDIT_X86_64, [0x24, 0, 0, 0, 0, 0]), RET_ALLOW);
}

#[test]
fn comparisons_in_one_rule_are_anded_and_rules_are_ored() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 91,
              "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_EQ" },
                       { "index": 2, "value": 3, "op": "SCMP_CMP_EQ" }] },
            { "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 92,
              "args": [{ "index": 5, "value": 7, "op": "SCMP_CMP_EQ" }] }
        ]
    }));
    expect_in_child(&f, || {
        let cases: [([u64; 6], Result<(), i32>); 5] = [
            ([1, 0, 3, 0, 0, 0], Err(91)),
            ([1, 0, 4, 0, 0, 0], Ok(())),
            ([2, 0, 3, 0, 0, 0], Ok(())),
            ([0, 0, 0, 0, 0, 7], Err(92)),
            ([1, 0, 3, 0, 0, 7], Err(91)),
        ];
        for (args, want) in cases {
            let got = sys(libc::SYS_getpid as u64, args).map(|_| ());
            if got != want {
                return Err(format!("getpid{args:?}: {got:?}, wanted {want:?}"));
            }
        }
        Ok(())
    });
}

#[test]
fn one_argument_compared_twice_in_a_rule_is_ored_as_runc_does() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 93,
                       "args": [{ "index": 0, "value": 1, "op": "SCMP_CMP_EQ" },
                                { "index": 0, "value": 2, "op": "SCMP_CMP_EQ" }] }]
    }));
    for (a, want) in [(1, RET_ERRNO | 93), (2, RET_ERRNO | 93), (3, RET_ALLOW)] {
        assert_eq!(
            run(&f, 39, AUDIT_X86_64, [a, 0, 0, 0, 0, 0]),
            want,
            "arg {a}"
        );
    }
}

#[test]
fn unconditional_rule_wins_over_conditional_ones() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7,
              "args": [{ "index": 0, "value": 3, "op": "SCMP_CMP_EQ" }] },
            errno_rule(&["getpid"], 5)
        ]
    }));
    for a in [3, 4] {
        assert_eq!(run(&f, 39, AUDIT_X86_64, [a, 0, 0, 0, 0, 0]), RET_ERRNO | 5);
    }
}

#[test]
fn rules_with_the_default_action_are_dropped() {
    // runc skips them, so the unconditional ALLOW below decides alone.
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            { "names": ["getpid"], "action": "SCMP_ACT_ERRNO",
              "args": [{ "index": 0, "value": 3, "op": "SCMP_CMP_EQ" }] },
            { "names": ["getpid"], "action": "SCMP_ACT_ALLOW" }
        ]
    }));
    assert_eq!(run(&f, 39, AUDIT_X86_64, [3, 0, 0, 0, 0, 0]), RET_ALLOW);
}

// ---------------------------------------------------------------------------------------------
// Names and ABIs

#[test]
fn unknown_syscall_names_are_ignored() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [errno_rule(&["no_such_syscall", "getpid", "s390_runtime_instr"], 42)]
    }));
    expect_in_child(&f, || match getpid_with(0) {
        Err(42) => Ok(()),
        r => Err(format!("getpid gave {r:?}")),
    });
}

#[test]
fn x32_syscall_is_not_confused_with_native() {
    // readv is 19 on x86_64 and 515 on x32; x32's 19 is a 64-bit-only slot.
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [errno_rule(&["readv"], 55)]
    }));
    let args = [u64::MAX, 0, 0, 0, 0, 0];
    assert_eq!(run(&f, 19, AUDIT_X86_64, args), RET_ERRNO | 55);
    assert_eq!(
        run(&f, X32 as u32 | 515, AUDIT_X86_64, args),
        RET_ERRNO | 55
    );
    assert_eq!(run(&f, X32 as u32 | 19, AUDIT_X86_64, args), RET_ALLOW);
    expect_in_child(&f, || {
        let readv = |nr: u64| sys(nr, [u64::MAX, 0, 0, 0, 0, 0]);
        match (readv(19), readv(X32 | 515), readv(X32 | 19)) {
            // The kernel itself rejects x32 calls when it lacks the x32 ABI (ENOSYS) or the
            // bad fd (EBADF): either way the filter let the third one through.
            (Err(55), Err(55), Err(e)) if e != 55 => Ok(()),
            r => Err(format!("readv native/x32/x32-19: {r:?}")),
        }
    });
    // Without x32 in the list, an x32 syscall is a foreign ABI: killed.
    let g = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [errno_rule(&["readv"], 55)]
    }));
    assert_eq!(
        run(&g, X32 as u32 | 515, AUDIT_X86_64, args),
        RET_KILL_THREAD
    );
    // -1 is what a tracer sets to skip a syscall: not an x32 number.
    assert_eq!(run(&g, u32::MAX, AUDIT_X86_64, args), RET_ALLOW);
    let out = in_child(|| {
        load(&g);
        let _ = sys(X32 | 515, [u64::MAX, 0, 0, 0, 0, 0]);
        0
    });
    assert_eq!(out, Exit::Signal(libc::SIGSYS));
}

#[test]
fn x32_compares_only_the_low_32_bits_like_libseccomp() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X32"],
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9,
                       "args": [{ "index": 0, "value": 0x1_0000_0005u64, "op": "SCMP_CMP_EQ" }] }]
    }));
    let x32_getpid = X32 as u32 | 39;
    assert_eq!(
        run(&f, x32_getpid, AUDIT_X86_64, [5, 0, 0, 0, 0, 0]),
        RET_ERRNO | 9
    );
    assert_eq!(
        run(&f, x32_getpid, AUDIT_X86_64, [0x7_0000_0005, 0, 0, 0, 0, 0]),
        RET_ERRNO | 9
    );
    assert_eq!(run(&f, 39, AUDIT_X86_64, [5, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        run(&f, 39, AUDIT_X86_64, [0x1_0000_0005, 0, 0, 0, 0, 0]),
        RET_ERRNO | 9
    );
}

/// An i386 syscall from this 64-bit process: `int 0x80` with the i386 number.
#[cfg(target_arch = "x86_64")]
fn int80(nr: u32) -> i32 {
    let ret: i32;
    // SAFETY: a syscall without pointer arguments; the kernel zeroes r8-r11 on return.
    unsafe {
        std::arch::asm!("int 0x80", inlateout("eax") nr => ret,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _, options(nostack));
    }
    ret
}

#[cfg(target_arch = "x86_64")]
fn ia32_available() -> bool {
    in_child(|| {
        // SAFETY: getpid cannot fail.
        let me = unsafe { libc::getpid() };
        i32::from(int80(20) != me)
    }) == Exit::Code(0)
}

#[cfg(target_arch = "x86_64")]
#[test]
fn i386_syscall_is_filtered_with_the_i386_table() {
    if !ia32_available() {
        eprintln!("skipped: the kernel runs no i386 syscalls");
        return;
    }
    // getpid is 39 on x86_64, 20 on i386; 39 on i386 is mkdir.
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [errno_rule(&["getpid"], 44)]
    }));
    expect_in_child(&f, || match (int80(20), getpid_with(0)) {
        (-44, Err(44)) => Ok(()),
        r => Err(format!("i386/x86_64 getpid: {r:?}")),
    });
    assert_eq!(
        run(&f, 39, AUDIT_I386, [0; 6]),
        RET_ALLOW,
        "i386 39 is mkdir"
    );
    // Not listed: i386 is a foreign ABI and its syscalls kill.
    let g = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [errno_rule(&["getpid"], 44)]
    }));
    let out = in_child(|| {
        load(&g);
        int80(20);
        0
    });
    assert_eq!(out, Exit::Signal(libc::SIGSYS));
}

#[test]
fn i386_socket_rules_cover_socketcall_and_ipc() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [errno_rule(&["socket", "shmget", "recv"], 13)]
    }));
    let deny = RET_ERRNO | 13;
    assert_eq!(run(&f, 359, AUDIT_I386, [0; 6]), deny, "direct socket");
    assert_eq!(
        run(&f, 102, AUDIT_I386, [1, 0, 0, 0, 0, 0]),
        deny,
        "socketcall(SYS_SOCKET)"
    );
    assert_eq!(
        run(&f, 102, AUDIT_I386, [10, 0, 0, 0, 0, 0]),
        deny,
        "socketcall(SYS_RECV)"
    );
    assert_eq!(
        run(&f, 102, AUDIT_I386, [2, 0, 0, 0, 0, 0]),
        RET_ALLOW,
        "socketcall(SYS_BIND)"
    );
    assert_eq!(
        run(&f, 117, AUDIT_I386, [23, 0, 0, 0, 0, 0]),
        deny,
        "ipc(SHMGET)"
    );
    assert_eq!(
        run(&f, 117, AUDIT_I386, [0x1_0017, 0, 0, 0, 0, 0]),
        deny,
        "ipc(SHMGET, v1)"
    );
    assert_eq!(
        run(&f, 117, AUDIT_I386, [24, 0, 0, 0, 0, 0]),
        RET_ALLOW,
        "ipc(SHMCTL)"
    );
    assert_eq!(run(&f, 41, AUDIT_X86_64, [0; 6]), deny, "x86_64 socket");
    // An explicit socketcall rule decides for the multiplexer as a whole.
    let g = filter(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            { "names": ["socketcall"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["socket"], "action": "SCMP_ACT_KILL" }
        ]
    }));
    assert_eq!(run(&g, 102, AUDIT_I386, [1, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(run(&g, 359, AUDIT_I386, [0; 6]), RET_KILL_THREAD);
}

#[test]
fn foreign_architectures_in_the_list_are_ignored() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_S390X", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_MIPS"],
        "syscalls": [errno_rule(&["getpid"], 42)]
    }));
    assert_eq!(run(&f, 39, AUDIT_X86_64, [0; 6]), RET_ERRNO | 42);
    assert_eq!(run(&f, 20, AUDIT_I386, [0; 6]), RET_KILL_THREAD);
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{ "names": ["getpid", "exit_group", "exit", "write", "getppid"], "action": "SCMP_ACT_ALLOW" }]
    }));
    // The largest named is exit_group (231).
    assert_eq!(run(&f, 230, AUDIT_X86_64, [0; 6]), RET_ERRNO | 1);
    assert_eq!(run(&f, 232, AUDIT_X86_64, [0; 6]), RET_ERRNO | 38);
    expect_in_child(&f, || {
        match (sys(230, [0; 6]), sys(435, [0; 6]), sys(1000, [0; 6])) {
            (Err(libc::EPERM), Err(libc::ENOSYS), Err(libc::ENOSYS)) => Ok(()),
            r => Err(format!("230/clone3/1000: {r:?}")),
        }
    });
    // Without `architectures`, runc adds no such rule.
    let g = filter(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_ALLOW" }]
    }));
    assert_eq!(run(&g, 1000, AUDIT_X86_64, [0; 6]), RET_ERRNO | 1);
    // Nor when the default lets syscalls through.
    let h = filter(json!({
        "defaultAction": "SCMP_ACT_LOG",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [errno_rule(&["getpid"], 3)]
    }));
    assert_eq!(run(&h, 1000, AUDIT_X86_64, [0; 6]), super::compile::RET_LOG);
}

// ---------------------------------------------------------------------------------------------
// Engine profiles

#[test]
fn docker_default_profile_compiles_under_1ms() {
    let p = docker();
    let f = compile(&p).expect("docker profile compiles");
    assert!(f.len() < 1000, "docker profile: {} instructions", f.len());
    let mut times: Vec<Duration> = (0..50)
        .map(|_| {
            let t = Instant::now();
            let f = compile(&p).expect("compiles");
            std::hint::black_box(f);
            t.elapsed()
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    eprintln!(
        "docker default profile: {} instructions, compile median {median:?}, best {:?}",
        f.len(),
        times[0]
    );
    // ~50 µs optimized (hack/bench-seccomp); an unoptimized test build is ~10x slower and
    // shares the machine, so it gets headroom.
    let limit = if cfg!(debug_assertions) { 5 } else { 1 };
    assert!(median < Duration::from_millis(limit), "median {median:?}");
}

#[test]
fn docker_default_profile_loads_and_behaves_as_with_runc() {
    let f = compile(&docker()).expect("docker profile compiles");
    assert!(!f.uses_notify());
    // Expectations from the profile: allowed, the clone3 rule, default EPERM, -ENOSYS above
    // the newest syscall named, the personality and clone argument rules.
    let pers = libc::SYS_personality as u32;
    assert_eq!(run(&f, 39, AUDIT_X86_64, [0; 6]), RET_ALLOW);
    assert_eq!(run(&f, 435, AUDIT_X86_64, [0; 6]), RET_ERRNO | 38, "clone3");
    assert_eq!(run(&f, 165, AUDIT_X86_64, [0; 6]), RET_ERRNO | 1, "mount");
    assert_eq!(
        run(&f, 900, AUDIT_X86_64, [0; 6]),
        RET_ERRNO | 38,
        "past the table"
    );
    assert_eq!(run(&f, pers, AUDIT_X86_64, [8, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(
        run(&f, pers, AUDIT_X86_64, [0xffff_ffff, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        run(&f, pers, AUDIT_X86_64, [9, 0, 0, 0, 0, 0]),
        RET_ERRNO | 1
    );
    let clone = libc::SYS_clone as u32;
    let newns = libc::CLONE_NEWNS as u64;
    assert_eq!(
        run(
            &f,
            clone,
            AUDIT_X86_64,
            [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]
        ),
        RET_ALLOW
    );
    assert_eq!(
        run(&f, clone, AUDIT_X86_64, [newns, 0, 0, 0, 0, 0]),
        RET_ERRNO | 1
    );
    assert_eq!(run(&f, 20, AUDIT_I386, [0; 6]), RET_ALLOW, "i386 getpid");
    assert_eq!(
        run(&f, X32 as u32 | 39, AUDIT_X86_64, [0; 6]),
        RET_ALLOW,
        "x32 getpid"
    );
    assert_eq!(run(&f, 0, 0xc000_00b7, [0; 6]), RET_KILL_THREAD, "aarch64");
    expect_in_child(&f, || {
        if getpid_with(0).is_err() {
            return Err("getpid denied".into());
        }
        // SAFETY: plain syscalls without pointers.
        let (unshare, pers) = unsafe {
            (
                libc::unshare(libc::CLONE_NEWUSER),
                libc::personality(0xffff_ffff),
            )
        };
        let unshare_err = std::io::Error::last_os_error().raw_os_error();
        if unshare != -1 || unshare_err != Some(libc::EPERM) || pers == -1 {
            return Err(format!(
                "unshare {unshare} {unshare_err:?}, personality {pers}"
            ));
        }
        match sys(435, [0; 6]) {
            Err(libc::ENOSYS) => Ok(()),
            r => Err(format!("clone3 gave {r:?}")),
        }
    });
}

#[test]
fn podman_default_profile_compiles_and_loads() {
    let f = compile(&podman()).expect("podman profile compiles");
    assert_eq!(
        run(&f, 246, AUDIT_X86_64, [0; 6]),
        RET_ERRNO | 1,
        "kexec_load"
    );
    assert_eq!(
        run(&f, 2000, AUDIT_X86_64, [0; 6]),
        RET_ERRNO | 38,
        "defaultErrnoRet"
    );
    expect_in_child(&f, || {
        getpid_with(0)
            .map(|_| ())
            .map_err(|e| format!("getpid: {e}"))
    });
}

#[test]
fn long_conditional_chains_get_trampolines_and_load() {
    // 300 conditional rules for one syscall: the jumps to the default action reach past 255.
    let rules: Vec<Value> = (0..300u64)
        .map(|v| {
            json!({ "names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 50,
                         "args": [{ "index": 0, "value": v * 3 + 1000, "op": "SCMP_CMP_EQ" }] })
        })
        .collect();
    let f = filter(json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules }));
    assert!(f.len() > 1200, "{} instructions", f.len());
    for a in [1000u64, 1003, 1897, 1001, 0, 1 << 40] {
        let hit = (1000..1900).contains(&a) && (a - 1000) % 3 == 0;
        let want = if hit { RET_ERRNO | 50 } else { RET_ALLOW };
        assert_eq!(
            run(&f, 39, AUDIT_X86_64, [a, 0, 0, 0, 0, 0]),
            want,
            "arg {a}"
        );
    }
    expect_in_child(&f, || match (getpid_with(1897), getpid_with(1898)) {
        (Err(50), Ok(_)) => Ok(()),
        r => Err(format!("{r:?}")),
    });
}

#[test]
fn every_name_in_the_table_resolves_and_filters_on_its_numbers() {
    // One rule per name, all in one profile: each syscall number must come out denied.
    let names: Vec<&str> = super::syscalls::TABLE.iter().map(|(n, _)| *n).collect();
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [errno_rule(&names, 61)]
    }));
    for (name, row) in super::syscalls::TABLE {
        for (col, audit) in [(0, AUDIT_X86_64), (1, AUDIT_I386), (2, AUDIT_X86_64)] {
            if row[col] >= 0 {
                let got = run(&f, row[col] as u32, audit, [0; 6]);
                assert_eq!(got, RET_ERRNO | 61, "{name} on column {col}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Refusals name the field

#[test]
fn errno_ret_on_an_action_without_errno_is_refused() {
    let e = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid"], "action": "SCMP_ACT_KILL", "errnoRet": 1 }]
    }));
    assert!(e.starts_with("linux.seccomp.syscalls[0].errnoRet: "), "{e}");
    let e = compile_err(json!({ "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1 }));
    assert!(e.starts_with("linux.seccomp.defaultErrnoRet: "), "{e}");
    let e = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [errno_rule(&["getpid"], 0x1_0000)]
    }));
    assert!(
        e.starts_with("linux.seccomp.syscalls[0].errnoRet: 65536"),
        "{e}"
    );
}

#[test]
fn argument_index_past_five_is_refused() {
    let e = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [errno_rule(&["getpid"], 1),
                     { "names": ["getppid"], "action": "SCMP_ACT_ERRNO",
                       "args": [{ "index": 1, "value": 1, "op": "SCMP_CMP_EQ" },
                                { "index": 6, "value": 1, "op": "SCMP_CMP_EQ" }] }]
    }));
    assert!(
        e.starts_with("linux.seccomp.syscalls[1].args[1].index: 6 "),
        "{e}"
    );
}

#[test]
fn empty_names_are_refused() {
    let e = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": [], "action": "SCMP_ACT_ERRNO" }]
    }));
    assert!(e.starts_with("linux.seccomp.syscalls[0].names: "), "{e}");
    let e = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getpid", ""], "action": "SCMP_ACT_ERRNO" }]
    }));
    assert!(e.starts_with("linux.seccomp.syscalls[0].names[1]: "), "{e}");
}

#[test]
fn notify_rules_are_checked() {
    let e = compile_err(json!({ "defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a" }));
    assert!(e.starts_with("linux.seccomp.defaultAction: "), "{e}");
    let e = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }]
    }));
    assert!(e.starts_with("linux.seccomp.listenerPath: "), "{e}");
    let e = compile_err(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/a",
        "syscalls": [{ "names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY" }]
    }));
    assert!(e.starts_with("linux.seccomp.syscalls[0].names[1]: "), "{e}");
    let e = compile_err(json!({ "defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x" }));
    assert!(e.starts_with("linux.seccomp.listenerMetadata: "), "{e}");
    // A listener path without NOTIFY rules is ignored (runtime-spec).
    let f = filter(json!({ "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a" }));
    assert!(!f.uses_notify() && f.listener_path().is_none());
}

#[test]
fn unknown_flags_are_refused_when_the_config_is_parsed() {
    let r: std::result::Result<LinuxSeccomp, _> = serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]
    }));
    assert!(r.is_err());
}

#[test]
fn flags_map_to_seccomp_filter_flags() {
    let flags = |v: Value| filter(v).flags;
    assert_eq!(
        flags(json!({ "defaultAction": "SCMP_ACT_ALLOW" })),
        FLAG_SPEC_ALLOW
    );
    assert_eq!(
        flags(json!({ "defaultAction": "SCMP_ACT_ALLOW", "flags": [] })),
        0
    );
    assert_eq!(
        flags(json!({ "defaultAction": "SCMP_ACT_ALLOW",
                      "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC",
                                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"] })),
        FLAG_LOG | FLAG_TSYNC
    );
    assert_eq!(
        flags(
            json!({ "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
                      "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                      "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }] })
        ),
        FLAG_TSYNC | FLAG_TSYNC_ESRCH | FLAG_WAIT_KILLABLE_RECV | FLAG_NEW_LISTENER
    );
}

#[test]
fn every_flag_combination_loads_in_the_kernel() {
    let f = filter(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/a",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                  "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{ "names": ["mkdir"], "action": "SCMP_ACT_NOTIFY" }]
    }));
    let out = in_child(|| match install(&f) {
        Ok(Some(_)) => 0,
        Ok(None) => 1,
        Err(_) => 2,
    });
    assert_eq!(out, Exit::Code(0));
}

#[test]
fn loading_without_no_new_privs_or_cap_sys_admin_fails_with_a_named_step() {
    let f = filter(json!({ "defaultAction": "SCMP_ACT_ALLOW" }));
    // SAFETY: the child only makes syscalls and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // Drop every capability (we are root in the test) without no_new_privs.
        let hdr = &mut [0x2008_0522u32, 0] as *mut u32;
        let data = [0u32; 6];
        // SAFETY: capset with a v3 header and zeroed data.
        let code = unsafe {
            if libc::syscall(libc::SYS_capset, hdr, data.as_ptr()) != 0 {
                3
            } else {
                match install(&f) {
                    Err(e)
                        if e.errno() == Some(libc::EACCES)
                            && e.to_string().contains("linux.seccomp") =>
                    {
                        0
                    }
                    _ => 1,
                }
            }
        };
        // SAFETY: plain exit.
        unsafe { libc::_exit(code) }
    }
    assert_eq!(wait(pid), Exit::Code(0));
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
