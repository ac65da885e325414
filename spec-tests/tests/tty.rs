//! `process.terminal` (runtime-spec config.md "Console"; runc's --console-socket protocol):
//! the runtime makes a pty, the container process gets the slave as its controlling terminal
//! and stdio, `/dev/console` is that slave, and the master is sent over `--console-socket` as
//! SCM_RIGHTS (what conmon and containerd-shim receive). Without a console socket `run` and
//! `exec -t` proxy the pty to the caller's terminal (checked under `script`, which gives a
//! real one), copy its size and restore its mode on exit.

use serde_json::{json, Value};
use spec_tests::*;
use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// The receiving end of a console socket, as conmon/containerd-shim implement it

struct ConsoleSocket {
    _dir: tempfile::TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vsrun-console-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).expect("bind console socket");
        listener.set_nonblocking(true).unwrap();
        ConsoleSocket {
            _dir: dir,
            path,
            listener,
        }
    }

    fn path_str(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Accept vsrun's connection and take the fd out of its SCM_RIGHTS message. Returns the
    /// fd and the message's data bytes.
    #[track_caller]
    fn receive(&self) -> (OwnedFd, Vec<u8>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        Instant::now() < deadline,
                        "nobody connected to the console socket"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept on the console socket: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        recv_fd(&stream)
    }
}

/// The pty master and the message it came with: exactly one fd.
fn recv_fd(stream: &std::os::unix::net::UnixStream) -> (OwnedFd, Vec<u8>) {
    let (data, mut fds) = spec_tests::scm::recv_with_fds(stream, 4096)
        .unwrap_or_else(|e| panic!("recvmsg on the console socket: {e}"));
    assert_eq!(
        fds.len(),
        1,
        "expected exactly one fd in the SCM_RIGHTS message, got {}",
        fds.len()
    );
    (fds.remove(0), data)
}

fn fstat(fd: RawFd) -> libc::stat {
    // SAFETY: fstat into a zeroed struct.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        assert_eq!(libc::fstat(fd, &mut st), 0, "fstat");
        st
    }
}

fn winsize(fd: RawFd) -> (u16, u16) {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    assert_eq!(rc, 0, "TIOCGWINSZ: {}", std::io::Error::last_os_error());
    (ws.ws_row, ws.ws_col)
}

/// The pts number behind a master (TIOCGPTN).
fn pts_number(master: RawFd) -> u32 {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int.
    let rc = unsafe { libc::ioctl(master, libc::TIOCGPTN, &mut n) };
    assert_eq!(rc, 0, "TIOCGPTN: {}", std::io::Error::last_os_error());
    n
}

/// Read everything from a pty master until the slave side is gone (EIO) or `until` is in the
/// text, within a deadline. Carriage returns are dropped.
fn read_master(master: &OwnedFd, until: Option<&str>, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(1000) as i32) };
        if n <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: read into a local buffer.
        let r = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if r <= 0 {
            break; // EIO: every slave fd is closed
        }
        out.extend_from_slice(&buf[..r as usize]);
        if let Some(u) = until {
            if String::from_utf8_lossy(&out).contains(u) {
                break;
            }
        }
    }
    String::from_utf8_lossy(&out).replace('\r', "")
}

fn write_master(master: &OwnedFd, data: &[u8]) {
    // SAFETY: ManuallyDrop: the fd stays owned by `master`.
    let mut f = std::mem::ManuallyDrop::new(unsafe { fs::File::from_raw_fd(master.as_raw_fd()) });
    f.write_all(data).expect("write to the pty master");
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str(l.trim()).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn is_pts_path(s: &str) -> bool {
    s.strip_prefix("/dev/pts/")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

fn terminal_bundle(args: &[&str]) -> Bundle {
    let mut b = Bundle::new();
    b.config["process"]["terminal"] = true.into();
    b.set_args(args);
    b
}

// ---------------------------------------------------------------------------------------------
// --console-socket

#[test]
fn console_socket_receives_the_pty_master() {
    let rt = Runtime::new();
    let b = terminal_bundle(&[
        "sh",
        "-c",
        "tty && exec /probe readlink /proc/self/fd/0 -- stat /dev/console -- report",
    ]);
    let cs = ConsoleSocket::new();
    let id = unique_id("console");
    let o = rt.create_with(&b, &id, &["--console-socket", cs.path_str()]);
    assert_success(&o, "create --console-socket");
    let (master, data) = cs.receive();

    // The fd is a pty master (/dev/ptmx of the container's devpts: char 5:2).
    let st = fstat(master.as_raw_fd());
    assert_eq!(
        st.st_mode & libc::S_IFMT,
        libc::S_IFCHR,
        "not a char device"
    );
    assert_eq!(
        (libc::major(st.st_rdev), libc::minor(st.st_rdev)),
        (5, 2),
        "the received fd is not a ptmx master"
    );
    eprintln!(
        "console socket message data: {:?}",
        String::from_utf8_lossy(&data)
    );
    let n = pts_number(master.as_raw_fd());

    rt.start(&id);
    let text = read_master(&master, None, Duration::from_secs(10));
    let first = text.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!("/dev/pts/{n}"),
        "`tty` inside vs the master's pts number; output:\n{text}"
    );
    let lines = json_lines(&text);
    assert_eq!(lines.len(), 3, "probe output:\n{text}");
    assert_eq!(lines[0]["target"], first, "fd 0 is the pty slave");
    let console = &lines[1];
    assert_eq!(console["ok"], true, "stat /dev/console: {console}");
    assert_eq!(console["type"], "char", "/dev/console: {console}");
    assert!(
        (136..=143).contains(&console["rdev_major"].as_u64().unwrap()),
        "/dev/console is not a devpts device: {console}"
    );
    assert_eq!(
        console["rdev_minor"],
        json!(n),
        "/dev/console is not the process's pty"
    );
    let report = &lines[2];
    assert_eq!(report["pid"], 1);
    assert_eq!(
        report["sid"], 1,
        "the init leads a session (setsid for the tty)"
    );
    for fd in 0..3 {
        let t = report["fds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["fd"] == fd)
            .map(|f| f["target"].as_str().unwrap().to_string());
        assert_eq!(t.as_deref(), Some(first), "fd {fd} is the pty slave");
    }
    rt.delete_force(&id);
    assert_nothing_left(&rt, &id);
}

/// config.md: consoleSize without a terminal MUST be ignored (runc does).
#[test]
fn console_size_without_a_terminal_is_ignored() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["consoleSize"] = json!({ "height": 33, "width": 111 });
    let seen = rt.probe(&mut b, &[]);
    assert!(seen.is_object(), "{seen}");
}

#[test]
fn console_size_sets_the_pty_size() {
    let rt = Runtime::new();
    let mut b = terminal_bundle(&["sh", "-c", "stty size"]);
    b.config["process"]["consoleSize"] = json!({ "height": 33, "width": 111 });
    let cs = ConsoleSocket::new();
    let id = unique_id("console-size");
    assert_success(
        &rt.create_with(&b, &id, &["--console-socket", cs.path_str()]),
        "create --console-socket with consoleSize",
    );
    let (master, _) = cs.receive();
    assert_eq!(winsize(master.as_raw_fd()), (33, 111), "host: TIOCGWINSZ");
    rt.start(&id);
    let text = read_master(&master, None, Duration::from_secs(10));
    assert_eq!(text.trim(), "33 111", "stty size inside");
    rt.delete_force(&id);
    assert_nothing_left(&rt, &id);
}

#[test]
fn terminal_input_reaches_the_process() {
    let rt = Runtime::new();
    let b = terminal_bundle(&["sh", "-c", "read x; echo \"got:$x\"; exit 0"]);
    let cs = ConsoleSocket::new();
    let id = unique_id("console-input");
    assert_success(
        &rt.create_with(&b, &id, &["--console-socket", cs.path_str()]),
        "create --console-socket",
    );
    let (master, _) = cs.receive();
    rt.start(&id);
    write_master(&master, b"hello-pty\n");
    let text = read_master(&master, Some("got:"), Duration::from_secs(10));
    let text = text + &read_master(&master, None, Duration::from_secs(5));
    assert!(
        text.lines().any(|l| l == "got:hello-pty"),
        "output through the pty:\n{text}"
    );
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    rt.delete_force(&id);
    assert_nothing_left(&rt, &id);
}

#[test]
fn run_detached_with_a_console_socket() {
    // podman/containerd: `run -d` (create+start) with the master handed over; vsrun exits and
    // the container keeps its terminal.
    let rt = Runtime::new();
    let b = terminal_bundle(&["sh", "-c", "tty; read x; echo \"bye:$x\""]);
    let cs = ConsoleSocket::new();
    let id = unique_id("console-run-d");
    b.write();
    let o = rt.cmd(&[
        "run",
        "-d",
        "--console-socket",
        cs.path_str(),
        "--bundle",
        b.path_str(),
        &id,
    ]);
    assert_success(&o, "run -d --console-socket");
    let (master, _) = cs.receive();
    assert_eq!(rt.status(&id).as_deref(), Some("running"));
    let text = read_master(&master, Some("\n"), Duration::from_secs(10));
    assert!(is_pts_path(text.trim()), "tty: {text:?}");
    write_master(&master, b"x\n");
    let text = read_master(&master, None, Duration::from_secs(10));
    assert!(text.contains("bye:x"), "{text:?}");
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    rt.delete_force(&id);
    assert_nothing_left(&rt, &id);
}

#[test]
fn exec_tty_sends_its_own_pty_master_to_the_console_socket() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let cs = ConsoleSocket::new();
    let pidf = b.path().join("exec.pid");
    let o = rt.cmd(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        cs.path_str(),
        "--pid-file",
        pidf.to_str().unwrap(),
        &d.id,
        "sh",
        "-c",
        "tty; stty size; read x; echo \"got:$x\"",
    ]);
    assert_success(&o, "exec -t -d --console-socket");
    let (master, _) = cs.receive();
    let st = fstat(master.as_raw_fd());
    assert_eq!((libc::major(st.st_rdev), libc::minor(st.st_rdev)), (5, 2));
    let n = pts_number(master.as_raw_fd());
    let epid: i32 = fs::read_to_string(&pidf).unwrap().trim().parse().unwrap();
    assert_eq!(
        ns_inode(&epid.to_string(), "mnt"),
        ns_inode(&d.pid.to_string(), "mnt"),
        "the exec'd process is in the container"
    );
    let text = read_master(&master, Some("\n"), Duration::from_secs(10));
    let text = text + &read_master(&master, Some(" "), Duration::from_secs(2));
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(format!("/dev/pts/{n}").as_str()),
        "{text:?}"
    );
    write_master(&master, b"abc\n");
    let text = read_master(&master, None, Duration::from_secs(10));
    assert!(text.contains("got:abc"), "{text:?}");
    let o = rt.delete_force(&d.id);
    assert_success(&o, "delete --force");
    assert_nothing_left(&rt, &d.id);
}

#[test]
fn exec_process_json_terminal_and_console_size() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let mut p = b.config["process"].clone();
    p["terminal"] = true.into();
    p["consoleSize"] = json!({ "height": 21, "width": 77 });
    p["args"] = json!(["sh", "-c", "stty size; tty"]);
    let pj = b.path().join("process.json");
    fs::write(&pj, serde_json::to_vec(&p).unwrap()).unwrap();
    let cs = ConsoleSocket::new();
    let o = rt.cmd(&[
        "exec",
        "--process",
        pj.to_str().unwrap(),
        "--detach",
        "--console-socket",
        cs.path_str(),
        &d.id,
    ]);
    assert_success(&o, "exec --process (terminal) --detach --console-socket");
    let (master, _) = cs.receive();
    let text = read_master(&master, None, Duration::from_secs(10));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("21 77"), "{text:?}");
    assert!(is_pts_path(lines.next().unwrap_or_default()), "{text:?}");
    let o = rt.delete_force(&d.id);
    assert_success(&o, "delete --force");
    assert_nothing_left(&rt, &d.id);
}

// ---------------------------------------------------------------------------------------------
// Foreground: a real terminal from `script`

/// Run `shell` under `script` (a pty of its own) and return (exit code, output without CRs).
/// script echoes stray input as `^@`; that is dropped too.
fn under_script(shell: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("typescript");
    let mut c = Command::new("script");
    c.args(["-q", "-e", "-c", shell])
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().expect("run script (util-linux)");
    let id = child.id() as i32;
    let waiter = std::thread::spawn(move || child.wait_with_output());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !waiter.is_finished() {
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the script process this test started.
            unsafe { libc::kill(id, libc::SIGKILL) };
            panic!("script -c {shell:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = waiter.join().unwrap().expect("wait for script");
    let text = String::from_utf8_lossy(&o.stdout)
        .replace('\r', "")
        .replace("^@", "");
    (shell_code(&o.status), text)
}

fn vsrun_cmdline(rt: &Runtime, args: &[&str]) -> String {
    let mut v = vec![
        vsrun_bin().to_string_lossy().into_owned(),
        "--root".into(),
        rt.root_str().into(),
    ];
    v.extend(args.iter().map(|s| s.to_string()));
    v.iter()
        .map(|s| format!("'{}'", s.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn foreground_run_with_a_terminal_proxies_the_pty() {
    let rt = Runtime::new();
    let b = terminal_bundle(&["sh", "-c", "tty; stty size; echo done; exit 3"]);
    b.write();
    let id = unique_id("fg-tty");
    rt.remember_bundle(&id, b.path());
    let run = vsrun_cmdline(&rt, &["run", "--bundle", b.path_str(), &id]);
    let shell = format!(
        "stty rows 20 cols 70; before=$(stty -g); {run}; rc=$?; after=$(stty -g); \
         [ \"$before\" = \"$after\" ] && echo MODE-RESTORED; exit $rc"
    );
    let (code, text) = under_script(&shell);
    assert_eq!(code, 3, "exit status through run and script:\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().any(|l| is_pts_path(l)),
        "tty inside is not a pty:\n{text}"
    );
    assert!(
        lines.contains(&"20 70"),
        "the caller's terminal size was not copied:\n{text}"
    );
    assert!(lines.contains(&"done"), "{text}");
    assert!(
        lines.contains(&"MODE-RESTORED"),
        "the caller's terminal mode was not restored:\n{text}"
    );
    assert_nothing_left(&rt, &id);
}

#[test]
fn foreground_exec_tty_proxies_the_pty() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let exec = vsrun_cmdline(
        &rt,
        &["exec", "-t", &d.id, "sh", "-c", "tty; stty size; exit 4"],
    );
    let shell = format!(
        "stty rows 31 cols 93; before=$(stty -g); {exec}; rc=$?; after=$(stty -g); \
         [ \"$before\" = \"$after\" ] && echo MODE-RESTORED; exit $rc"
    );
    let (code, text) = under_script(&shell);
    assert_eq!(code, 4, "exit status through exec -t:\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.iter().any(|l| is_pts_path(l)), "{text}");
    assert!(lines.contains(&"31 93"), "size not copied:\n{text}");
    assert!(
        lines.contains(&"MODE-RESTORED"),
        "mode not restored:\n{text}"
    );
    assert_eq!(rt.status(&d.id).as_deref(), Some("running"));
    let o = rt.delete_force(&d.id);
    assert_success(&o, "delete --force");
    assert_nothing_left(&rt, &d.id);
}

#[test]
fn foreground_exec_tty_without_a_terminal_still_gets_a_pty() {
    // stdin /dev/null, stdout a file: the process still sees a pty (runc allocates one).
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let o = rt.cmd(&["exec", "-t", &d.id, "tty"]);
    assert_success(&o, "exec -t tty");
    assert!(
        is_pts_path(stdout_str(&o).replace('\r', "").trim()),
        "{}",
        output_text(&o)
    );
    let o = rt.delete_force(&d.id);
    assert_success(&o, "delete --force");
    assert_nothing_left(&rt, &d.id);
}

// ---------------------------------------------------------------------------------------------
// Ownership of the pty slave (runc's fixStdioPermissions)

/// runc 1.1.5 gives the slave to the process's uid and keeps the gid devpts gave it (`gid=5`,
/// tty, in the default /dev/pts options), mode 0620: a non-root process owns its terminal.
fn assert_slave_owned_by(seen: &Value, uid: u64, what: &str) {
    assert_eq!(seen["ok"], true, "{what}: stat of the tty: {seen}");
    assert_eq!(seen["uid"], uid, "{what}: owner of the pty slave: {seen}");
    assert_eq!(
        seen["gid"], 5,
        "{what}: group of the pty slave (devpts gid=5): {seen}"
    );
    assert_eq!(
        seen["mode_octal"], "620",
        "{what}: mode of the pty slave: {seen}"
    );
}

/// The host's view of pts `n` in the devpts instance of the container of `pid`.
fn host_stat_pts(pid: i32, n: u32) -> fs::Metadata {
    fs::metadata(format!("/proc/{pid}/root/dev/pts/{n}")).expect("stat the pts from the host")
}

#[test]
fn run_terminal_slave_belongs_to_the_process_user() {
    use std::os::unix::fs::MetadataExt;
    let rt = Runtime::new();
    let mut b = terminal_bundle(&["sh", "-c", "exec /probe stat $(tty) -- stat /dev/console"]);
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
    let cs = ConsoleSocket::new();
    let id = unique_id("tty-owner");
    assert_success(
        &rt.create_with(&b, &id, &["--console-socket", cs.path_str()]),
        "create --console-socket as uid 1000",
    );
    let (master, _) = cs.receive();
    let n = pts_number(master.as_raw_fd());
    let pid = rt.state(&id)["pid"].as_i64().unwrap() as i32;
    let host = host_stat_pts(pid, n);
    assert_eq!(
        (host.uid(), host.gid()),
        (1000, 5),
        "host: owner of the slave before start"
    );
    rt.start(&id);
    let text = read_master(&master, None, Duration::from_secs(10));
    let lines = json_lines(&text);
    assert_eq!(lines.len(), 2, "probe output:\n{text}");
    assert_slave_owned_by(&lines[0], 1000, "run -t, $(tty)");
    assert_slave_owned_by(&lines[1], 1000, "run -t, /dev/console");
    rt.delete_force(&id);
    assert_nothing_left(&rt, &id);
}

#[test]
fn exec_tty_slave_belongs_to_the_exec_user() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let d = rt.probe_detached(&mut b);
    let cs = ConsoleSocket::new();
    let o = rt.cmd(&[
        "exec",
        "-t",
        "-d",
        "-u",
        "1000:1000",
        "--console-socket",
        cs.path_str(),
        &d.id,
        "sh",
        "-c",
        "id -u; exec /probe stat $(tty)",
    ]);
    assert_success(&o, "exec -t -d -u 1000:1000 --console-socket");
    let (master, _) = cs.receive();
    let text = read_master(&master, None, Duration::from_secs(10));
    assert_eq!(text.lines().next(), Some("1000"), "{text:?}");
    let lines = json_lines(&text);
    assert_eq!(lines.len(), 1, "probe output:\n{text}");
    assert_slave_owned_by(&lines[0], 1000, "exec -t -u 1000");
    let o = rt.delete_force(&d.id);
    assert_success(&o, "delete --force");
    assert_nothing_left(&rt, &d.id);
}
