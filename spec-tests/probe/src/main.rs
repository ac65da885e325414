//! probe: put into every test rootfs as `/probe`. With no arguments it prints one JSON object
//! describing what the process sees (ids, capabilities, namespaces, mounts, limits, fds, ...).
//! With arguments it performs actions, each printing one JSON line `{"ok":..,"error":..,...}`;
//! several actions can be chained with `--`: `/probe write /tmp/x hi -- sleep 5 -- report`.
//!
//! Every field is gathered independently: a failure shows up as `null`, never as a crash, so a
//! test can look at a broken container too.

use serde_json::{json, Map, Value};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};

const CAP_NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const RLIMITS: &[(&str, libc::__rlimit_resource_t)] = &[
    ("RLIMIT_CPU", libc::RLIMIT_CPU),
    ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
    ("RLIMIT_DATA", libc::RLIMIT_DATA),
    ("RLIMIT_STACK", libc::RLIMIT_STACK),
    ("RLIMIT_CORE", libc::RLIMIT_CORE),
    ("RLIMIT_RSS", libc::RLIMIT_RSS),
    ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
    ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
    ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
    ("RLIMIT_AS", libc::RLIMIT_AS),
    ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
    ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
    ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
    ("RLIMIT_NICE", libc::RLIMIT_NICE),
    ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
    ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        emit(report());
        return;
    }
    for action in args.split(|a| a == "--") {
        if action.is_empty() {
            continue;
        }
        let out = run_action(action);
        emit(out);
    }
}

fn emit(v: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

// ---------------------------------------------------------------------------------------------
// Actions

fn run_action(a: &[String]) -> Value {
    let arg = |i: usize| a.get(i).map(String::as_str);
    let need = |i: usize| -> &str {
        match a.get(i) {
            Some(s) => s,
            None => usage(&format!("{}: missing argument {i}", a[0])),
        }
    };
    match a[0].as_str() {
        "report" => report(),
        "write" => {
            let data = arg(2).unwrap_or("probe\n");
            result(
                fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o644)
                    .open(need(1))
                    .and_then(|mut f| f.write_all(data.as_bytes())),
                |_| json!({ "written": data.len() }),
            )
        }
        "read" => result(
            fs::File::open(need(1)).and_then(|f| {
                let mut buf = Vec::new();
                f.take(1 << 20).read_to_end(&mut buf).map(|_| buf)
            }),
            |buf| json!({ "data": String::from_utf8_lossy(&buf), "len": buf.len() }),
        ),
        "open" => result(fs::File::open(need(1)), |_| json!({})),
        "stat" => result(fs::symlink_metadata(need(1)), |m| stat_json(need(1), &m)),
        "readlink" => result(
            fs::read_link(need(1)),
            |t| json!({ "target": t.to_string_lossy() }),
        ),
        "ls" => result(fs::read_dir(need(1)), |rd| {
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            json!({ "entries": names })
        }),
        "fill" => {
            let n: u64 = need(2).parse().unwrap_or_else(|_| usage("fill: bad BYTES"));
            result(fill(need(1), n), |_| json!({ "written": n }))
        }
        "bind-tcp" => result(
            std::net::TcpListener::bind(need(1)),
            |l| json!({ "addr": l.local_addr().map(|a| a.to_string()).ok() }),
        ),
        "sleep" => {
            let secs: f64 = need(1).parse().unwrap_or_else(|_| usage("sleep: bad SECS"));
            std::thread::sleep(std::time::Duration::from_secs_f64(secs));
            json!({ "ok": true, "error": "", "slept": secs })
        }
        "exit" => {
            let code: i32 = need(1).parse().unwrap_or_else(|_| usage("exit: bad CODE"));
            emit(json!({ "ok": true, "error": "", "exiting": code }));
            std::process::exit(code);
        }
        "kill-self" => {
            let sig = parse_signal(need(1)).unwrap_or_else(|| usage("kill-self: bad SIGNAL"));
            emit(json!({ "ok": true, "error": "", "signal": sig }));
            kill_self(sig)
        }
        other => usage(&format!("unknown action {other:?}")),
    }
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "probe: {msg}\nusage: probe [report | write PATH [DATA] | read PATH | open PATH | \
         stat PATH | readlink PATH | ls DIR | fill PATH BYTES | bind-tcp ADDR:PORT | sleep SECS | exit CODE | \
         kill-self SIGNAL] [-- ACTION ...]"
    );
    std::process::exit(2)
}

/// Write BYTES zero bytes to a new PATH and fsync it: a quota refuses at write or at fsync.
fn fill(path: &str, n: u64) -> std::io::Result<()> {
    let mut f = fs::File::create(path)?;
    let chunk = [0u8; 65536];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..k])?;
        left -= k as u64;
    }
    f.sync_all()
}

fn result<T>(r: std::io::Result<T>, ok: impl FnOnce(T) -> Value) -> Value {
    match r {
        Ok(v) => {
            let mut out = ok(v);
            if let Value::Object(m) = &mut out {
                m.insert("ok".into(), true.into());
                m.insert("error".into(), "".into());
            }
            out
        }
        Err(e) => json!({ "ok": false, "error": e.to_string(), "errno": e.raw_os_error() }),
    }
}

fn stat_json(path: &str, m: &fs::Metadata) -> Value {
    let ft = m.file_type();
    let kind = if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else {
        "unknown"
    };
    let rdev = m.rdev();
    let dev = m.dev();
    json!({
        "type": kind,
        "mode": m.mode() & 0o7777,
        "mode_octal": format!("{:o}", m.mode() & 0o7777),
        "uid": m.uid(),
        "gid": m.gid(),
        "size": m.size(),
        "nlink": m.nlink(),
        "ino": m.ino(),
        "dev_major": libc::major(dev),
        "dev_minor": libc::minor(dev),
        "rdev_major": libc::major(rdev),
        "rdev_minor": libc::minor(rdev),
        "link": if ft.is_symlink() {
            fs::read_link(path).ok().map(|t| t.to_string_lossy().into_owned())
        } else {
            None
        },
    })
}

fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    let name = s.strip_prefix("SIG").unwrap_or(s);
    Some(match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        _ => return None,
    })
}

/// PID 1 of a pid namespace ignores every signal it sends itself (the kernel marks it
/// SIGNAL_UNKILLABLE), except a fault the kernel forces: so SEGV is raised by a real fault,
/// which kills even an init; other signals only kill a probe that is not PID 1.
fn kill_self(sig: i32) -> Value {
    if sig == libc::SIGSEGV {
        // SAFETY: deliberate fault; the process dies of SIGSEGV here.
        unsafe {
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            std::ptr::read_volatile(std::ptr::null::<u8>());
        }
    }
    // SAFETY: plain syscalls on our own pid.
    let rc = unsafe { libc::kill(libc::getpid(), sig) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return json!({ "ok": false, "error": e.to_string(), "errno": e.raw_os_error() });
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    json!({ "ok": false, "error": "still alive after kill-self (PID 1 ignores its own signals)" })
}

// ---------------------------------------------------------------------------------------------
// The report

fn report() -> Value {
    let status = fs::read_to_string("/proc/self/status").ok();
    let status_field = |name: &str| -> Option<String> {
        status.as_ref().and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(':')
                    .map(|v| v.trim().to_string())
            })
        })
    };

    let mut r = Map::new();
    ids(&mut r);
    privileges(&mut r, &status_field);
    process_view(&mut r);
    r.insert("ns".into(), namespaces());
    r.insert("mounts".into(), mountinfo());
    r.insert("uid_map".into(), id_map("/proc/self/uid_map"));
    r.insert("gid_map".into(), id_map("/proc/self/gid_map"));
    r.insert(
        "clocks".into(),
        json!({
            "monotonic": clock(libc::CLOCK_MONOTONIC),
            "boottime": clock(libc::CLOCK_BOOTTIME),
            "realtime": clock(libc::CLOCK_REALTIME),
        }),
    );
    r.insert("fds".into(), fds());
    r.insert(
        "cgroup".into(),
        fs::read_to_string("/proc/self/cgroup")
            .ok()
            .map(|s| s.lines().map(String::from).collect::<Vec<_>>())
            .into(),
    );
    r.insert("label".into(), read_trim("/proc/self/attr/current").into());
    Value::Object(r)
}

/// pid, ppid, process group, session, the uid and gid quadruples, supplementary groups.
fn ids(r: &mut Map<String, Value>) {
    // SAFETY: simple getters without pointers.
    unsafe {
        r.insert("pid".into(), libc::getpid().into());
        r.insert("ppid".into(), libc::getppid().into());
        r.insert("pgid".into(), libc::getpgrp().into());
        r.insert("sid".into(), libc::getsid(0).into());
    }
    let (mut ru, mut eu, mut su) = (0, 0, 0);
    let (mut rg, mut eg, mut sg) = (0, 0, 0);
    // SAFETY: out-pointers to locals; setfsuid(-1) fails and returns the current fsuid.
    let (fsuid, fsgid) = unsafe {
        libc::getresuid(&mut ru, &mut eu, &mut su);
        libc::getresgid(&mut rg, &mut eg, &mut sg);
        (libc::setfsuid(u32::MAX), libc::setfsgid(u32::MAX))
    };
    r.insert("uid".into(), ru.into());
    r.insert("euid".into(), eu.into());
    r.insert("suid".into(), su.into());
    r.insert("fsuid".into(), fsuid.into());
    r.insert("gid".into(), rg.into());
    r.insert("egid".into(), eg.into());
    r.insert("sgid".into(), sg.into());
    r.insert("fsgid".into(), fsgid.into());
    r.insert("groups".into(), groups().into());
}

/// The capability sets, no_new_privs (prctl and /proc) and the seccomp mode.
fn privileges(r: &mut Map<String, Value>, status_field: &dyn Fn(&str) -> Option<String>) {
    r.insert("caps".into(), caps(status_field));
    r.insert(
        "no_new_privs".into(),
        // SAFETY: prctl getter without pointers.
        (unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) } == 1).into(),
    );
    r.insert(
        "NoNewPrivs".into(),
        status_field("NoNewPrivs")
            .and_then(|v| v.parse::<u32>().ok())
            .into(),
    );
    r.insert(
        "seccomp".into(),
        status_field("Seccomp")
            .and_then(|v| v.parse::<u32>().ok())
            .into(),
    );
}

/// cwd, argv, env, uts names, umask, rlimits, oom_score_adj.
fn process_view(r: &mut Map<String, Value>) {
    r.insert(
        "cwd".into(),
        std::env::current_dir()
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
            .into(),
    );
    r.insert("argv".into(), std::env::args().collect::<Vec<_>>().into());
    r.insert(
        "env".into(),
        std::env::vars_os()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect::<Vec<_>>()
            .into(),
    );
    let (host, domain) = uts();
    r.insert("hostname".into(), host.into());
    r.insert("domainname".into(), domain.into());
    // SAFETY: umask has no failure mode; restore the value right away.
    let umask = unsafe {
        let old = libc::umask(0);
        libc::umask(old);
        old
    };
    r.insert("umask".into(), umask.into());
    r.insert("umask_octal".into(), format!("{umask:04o}").into());
    r.insert("rlimits".into(), rlimits());
    r.insert(
        "oom_score_adj".into(),
        read_trim("/proc/self/oom_score_adj")
            .and_then(|v| v.parse::<i32>().ok())
            .into(),
    );
}

fn read_trim(p: &str) -> Option<String> {
    fs::read_to_string(p)
        .ok()
        .map(|s| s.trim_end_matches(['\n', '\0']).to_string())
}

fn groups() -> Vec<u32> {
    // SAFETY: first call asks for the count, second fills a buffer of that size.
    unsafe {
        let n = libc::getgroups(0, std::ptr::null_mut());
        if n <= 0 {
            return vec![];
        }
        let mut v = vec![0; n as usize];
        let n = libc::getgroups(n, v.as_mut_ptr());
        v.truncate(n.max(0) as usize);
        v
    }
}

fn cap_names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| {
            CAP_NAMES
                .get(b)
                .map(|s| s.to_string())
                .unwrap_or(format!("CAP_{b}"))
        })
        .collect()
}

/// The five sets from /proc/self/status; when /proc is missing, from capget/prctl.
fn caps(status_field: &dyn Fn(&str) -> Option<String>) -> Value {
    let from_syscalls = syscall_caps();
    let mut m = Map::new();
    for (i, key) in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .iter()
        .enumerate()
    {
        let mask = status_field(key)
            .and_then(|h| u64::from_str_radix(&h, 16).ok())
            .unwrap_or(from_syscalls[i]);
        m.insert(
            key.to_string(),
            json!({ "hex": format!("{mask:016x}"), "names": cap_names(mask) }),
        );
    }
    Value::Object(m)
}

fn syscall_caps() -> [u64; 5] {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget with a v3 header and a two-element data array, as the ABI requires.
    unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    let join = |f: fn(&Data) -> u32| f(&data[0]) as u64 | (f(&data[1]) as u64) << 32;
    let (mut bnd, mut amb) = (0u64, 0u64);
    for c in 0..64 {
        // SAFETY: prctl getters; EINVAL past the last capability.
        unsafe {
            if libc::prctl(libc::PR_CAPBSET_READ, c, 0, 0, 0) == 1 {
                bnd |= 1 << c;
            }
            if libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1 {
                amb |= 1 << c;
            }
        }
    }
    [
        join(|d| d.inheritable),
        join(|d| d.permitted),
        join(|d| d.effective),
        bnd,
        amb,
    ]
}

fn uts() -> (Option<String>, Option<String>) {
    // SAFETY: uname fills the zeroed struct.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return (None, None);
    }
    let s = |f: &[libc::c_char]| {
        let b: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    (Some(s(&u.nodename)), Some(s(&u.domainname)))
}

fn rlimits() -> Value {
    let mut m = Map::new();
    for (name, res) in RLIMITS {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: out-pointer to a local.
        if unsafe { libc::getrlimit(*res, &mut rl) } == 0 {
            m.insert(
                name.to_string(),
                json!({ "soft": rl.rlim_cur, "hard": rl.rlim_max }),
            );
        }
    }
    Value::Object(m)
}

fn namespaces() -> Value {
    let mut m = Map::new();
    for name in [
        "pid",
        "mnt",
        "net",
        "ipc",
        "uts",
        "user",
        "cgroup",
        "time",
        "pid_for_children",
        "time_for_children",
    ] {
        let v = fs::metadata(format!("/proc/self/ns/{name}"))
            .ok()
            .map(|md| md.ino());
        m.insert(name.to_string(), v.into());
    }
    Value::Object(m)
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len() + 0
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mountinfo() -> Value {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Value::Null;
    };
    let mut v = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(dash) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if dash < 6 || f.len() < dash + 4 {
            continue;
        }
        let optional: Vec<&str> = f[6..dash].to_vec();
        let tag = |p: &str| {
            optional
                .iter()
                .find_map(|o| o.strip_prefix(p)?.parse::<u64>().ok())
        };
        let (shared, master) = (tag("shared:"), tag("master:"));
        let propagation = if optional.contains(&"unbindable") {
            "unbindable"
        } else if shared.is_some() {
            "shared"
        } else if master.is_some() {
            "slave"
        } else {
            "private"
        };
        v.push(json!({
            "id": f[0].parse::<u64>().ok(),
            "parent": f[1].parse::<u64>().ok(),
            "dev": f[2],
            "root": unescape(f[3]),
            "mount_point": unescape(f[4]),
            "options": f[5].split(',').collect::<Vec<_>>(),
            "optional": optional,
            "shared": shared,
            "master": master,
            "propagation": propagation,
            "fs_type": f[dash + 1],
            "source": unescape(f[dash + 2]),
            "super_options": f[dash + 3].split(',').collect::<Vec<_>>(),
        }));
    }
    Value::Array(v)
}

fn id_map(path: &str) -> Value {
    let Ok(text) = fs::read_to_string(path) else {
        return Value::Null;
    };
    text.lines()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|n| n.parse::<u64>().ok())
                .collect::<Vec<_>>()
                .into()
        })
        .collect::<Vec<Value>>()
        .into()
}

fn clock(id: libc::clockid_t) -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: out-pointer to a local.
    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
        return None;
    }
    Some(ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9)
}

/// Open fds with their targets. The directory handle used for listing is closed before the
/// readlinks, so its own (now closed) fd drops out.
fn fds() -> Value {
    let names: Vec<String> = match fs::read_dir("/proc/self/fd") {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => return fds_by_fcntl(),
    };
    let mut v: Vec<(i32, String)> = names
        .iter()
        .filter_map(|n| {
            let fd: i32 = n.parse().ok()?;
            let t = fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
            Some((fd, t.to_string_lossy().into_owned()))
        })
        .collect();
    v.sort();
    v.into_iter()
        .map(|(fd, t)| json!({ "fd": fd, "target": t }))
        .collect::<Vec<_>>()
        .into()
}

/// Without /proc: which of the first 1024 fds answer F_GETFD.
fn fds_by_fcntl() -> Value {
    (0..1024)
        // SAFETY: F_GETFD only inspects the descriptor.
        .filter(|fd| unsafe { libc::fcntl(*fd, libc::F_GETFD) } >= 0)
        .map(|fd| json!({ "fd": fd, "target": null }))
        .collect::<Vec<_>>()
        .into()
}
