//! The host's view: mount tables, processes rooted in a bundle, namespace inodes, what a
//! container left behind; processes holding namespaces for `path` joins; fd inheritance.

use crate::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone)]
pub struct HostMount {
    pub id: u64,
    pub parent: u64,
    pub root: String,
    pub mount_point: String,
    pub options: Vec<String>,
    pub optional: Vec<String>,
    pub fs_type: String,
    pub source: String,
    pub super_options: Vec<String>,
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse a mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<HostMount> {
    let mut v = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(dash) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if dash < 6 || f.len() < dash + 4 {
            continue;
        }
        let split = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
        v.push(HostMount {
            id: f[0].parse().unwrap_or(0),
            parent: f[1].parse().unwrap_or(0),
            root: unescape_mountinfo(f[3]),
            mount_point: unescape_mountinfo(f[4]),
            options: split(f[5]),
            optional: f[6..dash].iter().map(|s| s.to_string()).collect(),
            fs_type: f[dash + 1].to_string(),
            source: unescape_mountinfo(f[dash + 2]),
            super_options: split(f[dash + 3]),
        });
    }
    v
}

/// The calling thread's mount table (the host's, unless the test thread entered a mount
/// namespace of its own: /proc/self would show the main thread's).
pub fn host_mounts() -> Vec<HostMount> {
    parse_mountinfo(&fs::read_to_string("/proc/thread-self/mountinfo").expect("read mountinfo"))
}

pub(crate) fn is_under(p: &str, dir: &Path) -> bool {
    let d = dir.to_string_lossy();
    let d = d.trim_end_matches('/');
    p == d || p.starts_with(&format!("{d}/"))
}

/// The calling thread's mount table as "mount_point fs_type" lines, sorted: compared before
/// and after an operation that must leave it alone.
pub fn host_table() -> Vec<String> {
    let mut v: Vec<String> = host_mounts()
        .into_iter()
        .map(|m| format!("{} {}", m.mount_point, m.fs_type))
        .collect();
    v.sort();
    v
}

/// Mount points in the host mount table at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    host_mounts()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|mp| is_under(mp, &dir))
        .collect()
}

/// Host pids whose root or cwd is at or under `dir`. A pivot_rooted process in another mount
/// namespace shows its root as "/" through readlink, so roots are also matched by device and
/// inode against `dir` and `dir/rootfs`.
pub fn processes_in(dir: &Path) -> Vec<i32> {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let ids: Vec<(u64, u64)> = [dir.clone(), dir.join("rootfs")]
        .iter()
        .filter_map(|p| fs::metadata(p).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let by_path = ["root", "cwd"].iter().any(|l| {
            fs::read_link(format!("/proc/{pid}/{l}"))
                .map(|t| is_under(&t.to_string_lossy(), &dir))
                .unwrap_or(false)
        });
        let by_inode = fs::metadata(format!("/proc/{pid}/root/"))
            .map(|m| ids.contains(&(m.dev(), m.ino())))
            .unwrap_or(false);
        if by_path || by_inode {
            pids.push(pid);
        }
    }
    pids
}

/// Is there a (non-zombie) process with this pid?
pub fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // state is the field after the ")" that closes comm
            let state = s
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// /proc/<pid>/cmdline as arguments.
pub fn proc_cmdline(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The namespace inode of a host process (`ns` is "net", "mnt", ...).
pub fn ns_inode(pid: &str, ns: &str) -> u64 {
    fs::metadata(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("stat /proc/{pid}/ns/{ns}: {e}"))
        .ino()
}

/// The uid owning a host process.
pub fn proc_uid(pid: i32) -> Option<u32> {
    fs::metadata(format!("/proc/{pid}")).ok().map(|m| m.uid())
}

/// Assert that container `id` left nothing behind: `state` fails, no state dir, no mount at or
/// under its bundle's rootfs in the host mount table, no live process whose root or cwd is in
/// the bundle (processes get up to 5 s to finish dying), none of its cgroup directories (v1
/// and v2) that its create made, and with a disk limit no project id on the tree nor limits on
/// the project (leftovers.rs).
#[track_caller]
pub fn assert_nothing_left(rt: &Runtime, id: &str) {
    let dir = rt.state_dir(id);
    assert!(
        !dir.exists(),
        "container {id}: state dir {} still exists",
        dir.display()
    );
    let o = rt.cmd(&["state", id]);
    assert!(
        !o.status.success(),
        "container {id}: `state` still succeeds:\n{}",
        output_text(&o)
    );
    if let Some(bundle) = rt.bundle_of(id) {
        assert_bundle_clean(&bundle);
    }
    let left = rt.watch.cgroup_dirs_left(id);
    assert!(
        left.is_empty(),
        "container {id}: cgroup dirs left: {left:?}"
    );
    rt.watch.assert_disk_clean(id);
}

/// No host mount under `bundle`/rootfs and no live process rooted or working in `bundle`.
#[track_caller]
pub fn assert_bundle_clean(bundle: &Path) {
    let left = mounts_under(&bundle.join("rootfs"));
    assert!(
        left.is_empty(),
        "mounts left under {}/rootfs on the host: {left:?}",
        bundle.display()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let live: Vec<i32> = processes_in(bundle)
            .into_iter()
            .filter(|p| pid_alive(*p))
            .collect();
        if live.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let desc: Vec<String> = live
                .iter()
                .map(|p| format!("{p} {:?}", proc_cmdline(*p)))
                .collect();
            panic!("processes still in bundle {}: {desc:?}", bundle.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Helper processes holding namespaces (for `path` joins)

/// A host process started with `unshare FLAGS... sleep` that holds new namespaces; its
/// /proc/<pid>/ns/* paths can be given to linux.namespaces[].path. Killed on drop.
pub struct NsHolder {
    child: std::process::Child,
    /// The pid of the process inside the namespaces (the `sleep`).
    pub pid: i32,
}

impl NsHolder {
    /// `unshare_flags` e.g. ["--net"], ["--ipc", "--uts"], ["--pid", "--fork", "--mount-proc"].
    pub fn new(unshare_flags: &[&str]) -> Self {
        // exec keeps the pid: sh -c 'echo $$; exec sleep' inside unshare (with --fork the
        // printed pid is the forked child's host pid as seen from the host via /proc).
        let mut c = Command::new("unshare");
        c.args(unshare_flags)
            .args(["sh", "-c", "exec sleep 100000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // SAFETY: setsid in the child only; async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = c.spawn().expect("spawn unshare (util-linux)");
        let upid = child.id() as i32;
        // With --fork the namespaces belong to unshare's child: find the sleep.
        let deadline = Instant::now() + Duration::from_secs(5);
        let pid = loop {
            let target = if unshare_flags.contains(&"--fork") || unshare_flags.contains(&"-f") {
                children_of(upid).into_iter().next()
            } else {
                Some(upid)
            };
            if let Some(p) = target {
                if proc_cmdline(p)
                    .first()
                    .map(|s| s.ends_with("sleep"))
                    .unwrap_or(false)
                {
                    break p;
                }
            }
            assert!(
                Instant::now() < deadline,
                "unshare {unshare_flags:?} did not start sleep"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        NsHolder { child, pid }
    }

    /// /proc/<pid>/ns/<ns>.
    pub fn ns_path(&self, ns: &str) -> String {
        format!("/proc/{}/ns/{ns}", self.pid)
    }

    pub fn ns_inode(&self, ns: &str) -> u64 {
        ns_inode(&self.pid.to_string(), ns)
    }
}

fn children_of(pid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let p = t.path().join("children");
            if let Ok(s) = fs::read_to_string(p) {
                v.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
            }
        }
    }
    v
}

impl Drop for NsHolder {
    fn drop(&mut self) {
        // SAFETY: kill(2) on processes this holder started.
        unsafe {
            if self.pid != self.child.id() as i32 {
                libc::kill(self.pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Make `src` (an fd of this process) appear as fd `dst`, without O_CLOEXEC, in the process
/// `c` spawns: how engines hand extra fds (containerd's fd 3, --preserve-fds) to the runtime.
pub fn inherit_fd(c: &mut Command, src: i32, dst: i32) {
    // SAFETY: dup2/fcntl only, both async-signal-safe, in the forked child before exec.
    unsafe {
        c.pre_exec(move || {
            if src == dst {
                let fl = libc::fcntl(dst, libc::F_GETFD);
                if fl < 0 || libc::fcntl(dst, libc::F_SETFD, fl & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(src, dst) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The value of a "Key:\tvalue" line of /proc/<pid>/status.
pub fn proc_status_field(pid: i32, key: &str) -> Option<String> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| Some(l.strip_prefix(key)?.strip_prefix(':')?.trim().to_string()))
}

/// Exit status → the code a shell would show (128+signal when killed).
pub fn shell_code(st: &ExitStatus) -> i32 {
    st.code()
        .or_else(|| st.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// The container's cgroup directories that exist on the host (`/vsrun/<id>` below every
/// mounted hierarchy, the default when the config has no cgroupsPath).
pub fn cgroup_dirs_of(id: &str) -> Vec<PathBuf> {
    cgroup_dirs_at(&Path::new("/vsrun").join(id))
}

/// `path` (a linux.cgroupsPath) below every mounted hierarchy, v1 and v2, where it exists.
pub fn cgroup_dirs_at(path: &Path) -> Vec<PathBuf> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    host_mounts()
        .into_iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .map(|m| Path::new(&m.mount_point).join(rel))
        .filter(|p| p.exists())
        .collect()
}

/// Whether the host is pure cgroup v2 (cgroup2 on /sys/fs/cgroup).
pub fn unified() -> bool {
    host_mounts()
        .iter()
        .any(|m| m.mount_point == "/sys/fs/cgroup" && m.fs_type == "cgroup2")
}

/// The directory that a `/proc/<pid>/cgroup` text puts the process in for `controller`: its
/// unified one on a pure v2 host, else that of the v1 hierarchy holding the controller. None
/// when there is no such line or mount.
pub fn cgroup_dir_in(proc_cgroup: &str, controller: &str) -> Option<PathBuf> {
    if unified() {
        let p = proc_cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
        return Some(Path::new("/sys/fs/cgroup").join(p.trim_start_matches('/')));
    }
    let path = proc_cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let _ = f.next();
        let ctrls = f.next()?;
        let p = f.next()?;
        ctrls.split(',').any(|c| c == controller).then_some(p)
    })?;
    let m = host_mounts()
        .into_iter()
        .find(|m| m.fs_type == "cgroup" && m.super_options.iter().any(|o| o == controller))?;
    let rel = path
        .strip_prefix(m.root.trim_end_matches('/'))
        .unwrap_or(path);
    Some(Path::new(&m.mount_point).join(rel.trim_start_matches('/')))
}

/// `pid`'s cgroup directory for `controller` (see `cgroup_dir_in`).
#[track_caller]
pub fn cgroup_dir(pid: i32, controller: &str) -> PathBuf {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read /proc/<pid>/cgroup");
    cgroup_dir_in(&text, controller)
        .unwrap_or_else(|| panic!("no {controller} cgroup in /proc/{pid}/cgroup:\n{text}"))
}

/// `pid`'s cgroup v2 directory, from its `0::` line, below /sys/fs/cgroup (a pure v2 host).
#[track_caller]
pub fn unified_dir(pid: i32) -> PathBuf {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read /proc/<pid>/cgroup");
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no 0:: line: {text}"));
    Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'))
}

/// How vsrun's binary is held by process `pid` (security/sealed_exe.rs): whether its exe link
/// is sealed (on a read-only mount, or a memfd sealed against writes: the rootless fallback),
/// and the permissions of every mapping of that file in /proc/<pid>/maps. Moved in place, no
/// mapping of it is writable (the data segment became anonymous); re-executed, the data segment
/// is a writable private mapping of the file.
pub fn vsrun_image_of(pid: i32) -> (bool, Vec<String>) {
    use std::os::fd::AsRawFd;
    let exe = fs::File::open(format!("/proc/{pid}/exe")).expect("open /proc/<pid>/exe");
    // SAFETY: a zeroed statvfs is a valid buffer for fstatvfs to fill.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a writable statvfs buffer and the fd is open.
    let rc = unsafe { libc::fstatvfs(exe.as_raw_fd(), &mut st) };
    assert_eq!(rc, 0, "fstatvfs the exe of {pid}");
    // SAFETY: F_GET_SEALS takes no argument; on a file that is no memfd it fails.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    let sealed = st.f_flag & libc::ST_RDONLY != 0 || (seals > 0 && seals & libc::F_SEAL_WRITE != 0);
    let md = exe.metadata().expect("stat the exe");
    let dev = format!(
        "{:02x}:{:02x}",
        libc::major(md.dev()),
        libc::minor(md.dev())
    );
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).expect("read maps");
    let perms = maps
        .lines()
        .map(|l| l.split_ascii_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 4 && f[3] == dev && f[4] == md.ino().to_string())
        .map(|f| f[1].to_string())
        .collect();
    (sealed, perms)
}
