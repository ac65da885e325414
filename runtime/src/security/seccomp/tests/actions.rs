//! The actions: what each does to the calling process, and NOTIFY's listener hand-off.

use super::*;

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
    let mut buf = vec![0u8; 1 << 16];
    let (n, fds) = crate::syscall::scm::recv_with_fds(sock, &mut buf).expect("recvmsg");
    buf.truncate(n);
    (buf, fds.into_iter().next())
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
