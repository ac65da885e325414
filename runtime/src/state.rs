//! The state dir `<root>/<id>/`: `state.json` (written by write + rename, so readers never see
//! half a file), the `exec.fifo` that holds a created container before `start`, and a per-container
//! `flock` on the directory itself. Status is never stored: it is derived from the init process
//! when read, so a container that died while nobody watched reads as stopped.

use crate::error::{state, Result, StepExt};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    /// Host PID of the container init.
    pub pid: i32,
    /// starttime of the init from /proc/<pid>/stat: a recycled PID has another one.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// Whether the config asked for a PID namespace of its own (then killing init kills all).
    #[serde(default)]
    pub own_pid_ns: bool,
    /// The container's cgroup (as given to libcgroups) and whether systemd manages it.
    #[serde(default)]
    pub cgroup_path: PathBuf,
    #[serde(default)]
    pub systemd_cgroup: bool,
    /// Made in rootless mode (`--rootless`, rootless.rs): v1 directories the user could not
    /// make were skipped, which the later commands' cgroup reads and writes account for.
    /// A state file from before this field: what `--rootless auto` says for the caller, who
    /// is the one that made it (the state root is per user).
    #[serde(default = "crate::rootless::unprivileged")]
    pub rootless: bool,
    /// Bound-IP mode: a cgroup v2 directory with sock_addr programs to remove on delete.
    #[serde(default)]
    pub bind_ip: bool,
    /// No mount namespace of its own: the id of the rootfs bind that holds every mount the
    /// container made in the shared namespace; `delete` detaches it (rootfs/shared.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_root_mount: Option<u64>,
    /// That shared namespace, when it was joined by path (linux.namespaces[].path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_join_path: Option<PathBuf>,
    /// Disk-space limit (annotation org.vsrun.disk-limit): the project quota to clear on delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<crate::disk::Quota>,
    /// The config's hooks: `start` runs poststart, `delete` runs poststop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<oci_spec::runtime::Hooks>,
}

impl State {
    /// Run the warn-only hooks of `kind` (poststart, poststop) with this state and `status`.
    pub fn run_hooks_warn(
        &self,
        kind: crate::hooks::HookPoint,
        status: oci_spec::runtime::ContainerState,
    ) {
        if crate::hooks::list(self.hooks.as_ref(), kind).is_empty() {
            return;
        }
        let st =
            crate::hooks::state_json(&self.id, status, self.pid, &self.bundle, &self.annotations);
        for w in crate::hooks::run_warn(self.hooks.as_ref(), kind, &st) {
            crate::log::warn(&w);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// Reject ids that could escape `--root` or confuse the table output.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |why: &str| Err(state(format!("container id {id:?}: {why}")));
    if id.is_empty() {
        return bad("must not be empty");
    }
    if id.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        return bad("must not be . or ..");
    }
    if id.contains('/') {
        return bad("must not contain '/'");
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("must not contain whitespace or control characters");
    }
    Ok(())
}

/// A container's directory, held under an exclusive flock for as long as this value lives.
pub struct Container {
    pub dir: PathBuf,
    lock: File,
}

impl Container {
    /// Make `<root>/<id>` for a new container. A second create of the same id fails here:
    /// the directory is built under a private name, locked, then renamed into place with
    /// RENAME_NOREPLACE, so no reader ever sees it unlocked and half-made.
    pub fn create(root: &Path, id: &str) -> Result<Container> {
        validate_id(id)?;
        fs::create_dir_all(root).step(|| format!("create state root {}", root.display()))?;
        let _ = fs::set_permissions(root, fs::Permissions::from_mode(0o700));
        let dir = root.join(id);
        if dir.exists() {
            return Err(state(format!("container {id:?} already exists")));
        }
        let tmp = root.join(format!(".creating-{}-{}", std::process::id(), id.len()));
        fs::create_dir(&tmp).step(|| format!("create state dir {}", tmp.display()))?;
        let lock = lock_dir(&tmp)?;
        if let Err(e) = crate::syscall::rename_noreplace(&tmp, &dir) {
            let _ = fs::remove_dir(&tmp);
            return Err(
                if e.raw_os_error() == Some(libc::EEXIST)
                    || e.raw_os_error() == Some(libc::ENOTEMPTY)
                {
                    state(format!("container {id:?} already exists"))
                } else {
                    crate::Error::Os {
                        step: format!("create state dir {}", dir.display()),
                        source: e,
                    }
                },
            );
        }
        Ok(Container { dir, lock })
    }

    /// Remove `.creating-*` dirs of creates that were killed in the microseconds between
    /// mkdir and rename. A live create holds its dir's flock, so only unlocked ones go.
    pub fn sweep_abandoned(root: &Path) {
        for e in fs::read_dir(root).into_iter().flatten().flatten() {
            if !e.file_name().to_string_lossy().starts_with(".creating-") {
                continue;
            }
            let Ok(f) = File::open(e.path()) else {
                continue;
            };
            // LOCK_NB never blocks: a create still working on it keeps its lock.
            let nb = nix::fcntl::FlockArg::LockExclusiveNonblock;
            if let Ok(_held) = nix::fcntl::Flock::lock(f, nb) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }

    /// Open an existing container and take its lock (waits for a concurrent lifecycle call).
    pub fn open(root: &Path, id: &str) -> Result<Container> {
        validate_id(id)?;
        let dir = root.join(id);
        if !dir.is_dir() {
            return Err(state(format!("container {id:?} does not exist")));
        }
        let lock = lock_dir(&dir)?;
        Ok(Container { dir, lock })
    }

    pub fn lock_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.lock.as_fd()
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.dir.join(EXEC_FIFO)
    }

    pub fn load(&self) -> Result<State> {
        load(&self.dir)
    }

    /// write + fsync-free rename: the state dir is on tmpfs in practice, atomicity is what
    /// matters, not durability.
    pub fn save(&self, st: &State) -> Result<()> {
        let tmp = self.dir.join(".state.json.tmp");
        let data = serde_json::to_vec(st).map_err(|e| state(format!("encode state: {e}")))?;
        let mut f = File::create(&tmp).step(|| format!("write {}", tmp.display()))?;
        f.write_all(&data)
            .step(|| format!("write {}", tmp.display()))?;
        fs::rename(&tmp, self.state_path()).step(|| format!("write {}", STATE_FILE))?;
        Ok(())
    }

    /// Remove the whole directory (the lock goes with it).
    pub fn destroy(self) -> Result<()> {
        fs::remove_dir_all(&self.dir).step(|| format!("remove state dir {}", self.dir.display()))
    }
}

fn lock_dir(dir: &Path) -> Result<File> {
    let f = File::open(dir).step(|| format!("open state dir {}", dir.display()))?;
    crate::syscall::flock_exclusive(&f).step(|| format!("lock state dir {}", dir.display()))?;
    Ok(f)
}

/// Read state.json without locking: it is only ever replaced by rename.
pub fn load(dir: &Path) -> Result<State> {
    parse(dir, File::open(dir.join(STATE_FILE)))
}

fn parse(dir: &Path, file: std::io::Result<File>) -> Result<State> {
    let path = dir.join(STATE_FILE);
    let data = file.and_then(read_small).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            state(format!(
                "container {:?} is being created or was left half-made (state.json missing); `delete --force` removes it",
                dir.file_name().unwrap_or_default()
            ))
        } else {
            crate::Error::Os {
                step: format!("read {}", path.display()),
                source: e,
            }
        }
    })?;
    serde_json::from_slice(&data).map_err(|e| state(format!("{}: corrupt: {e}", path.display())))
}

/// Derive the status: the init must exist with the same start time and not be a zombie; a
/// live init whose exec.fifo still exists has not been started.
pub fn status(dir: &Path, st: &State) -> Status {
    status_with(st, None, || dir.join(EXEC_FIFO).exists())
}

fn status_with(st: &State, proc: Option<&File>, fifo_exists: impl FnOnce() -> bool) -> Status {
    if !alive_in(proc, st.pid, st.pid_start) {
        return Status::Stopped;
    }
    if fifo_exists() {
        Status::Created
    } else if crate::cgroups::is_frozen(&st.cgroup_path, st.systemd_cgroup) {
        Status::Paused
    } else {
        Status::Running
    }
}

pub fn process_alive(pid: i32, start: u64) -> bool {
    alive_in(None, pid, start)
}

fn alive_in(proc: Option<&File>, pid: i32, start: u64) -> bool {
    match stat_in(proc, pid) {
        Some((state, st)) => st == start && state != 'Z' && state != 'X',
        None => false,
    }
}

/// (state letter, starttime) from /proc/<pid>/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    stat_in(None, pid)
}

fn stat_in(proc: Option<&File>, pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let s = read_small(open_proc_stat(proc, pid).ok()?).ok()?;
    let s = String::from_utf8_lossy(&s);
    // comm may contain spaces and parens: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// /proc/<pid>/stat: from `/proc` opened by the caller (`list`, which reads one per
/// container: a walk of two components instead of three), else by its whole path. No fd of
/// /proc outlives the call that needs it: a host /proc fd inherited by an init or an exec'd
/// process until its execve is a way to the host's root for a container process that may
/// ptrace it (escapes_fds.rs).
fn open_proc_stat(proc: Option<&File>, pid: i32) -> std::io::Result<File> {
    match proc {
        Some(dir) => open_at(dir, Path::new(&format!("{pid}/stat"))),
        None => File::open(format!("/proc/{pid}/stat")),
    }
}

/// openat(dir, path, O_RDONLY), O_CLOEXEC as every fd of rootfs/resolve.rs.
fn open_at(dir: &File, path: &Path) -> std::io::Result<File> {
    use std::os::fd::AsFd;
    crate::rootfs::resolve::openat(dir.as_fd(), path, libc::O_RDONLY, 0).map(File::from)
}

/// A file of a few hundred bytes (state.json, /proc/<pid>/stat), read without the statx and
/// the growing probe reads of `fs::read`: `list` reads two per container (README
/// "Benchmarks": 17 syscalls a container before, 8 after). A short read is the end: a
/// regular file gives all it has up to the count asked, and /proc's stat, one record, is
/// made whole by its first read, so the read that would return 0 is left out. Not for /proc
/// files of many records (maps): their reads stop at a page's worth of records.
fn read_small(mut f: File) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
        let want = buf.len() - len;
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if n < want {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// A state root opened once, for reading many containers' state relative to it, and /proc
/// beside it (`list`: with a thousand containers neither path is walked again for each file).
/// Both fds go with the value.
pub struct RootDir {
    dir: File,
    root: PathBuf,
    proc: Option<File>,
}

impl RootDir {
    pub fn open(root: &Path) -> std::io::Result<RootDir> {
        Ok(RootDir {
            dir: File::open(root)?,
            root: root.to_path_buf(),
            proc: File::open("/proc").ok(),
        })
    }

    /// `load` of the container `name` under this root.
    pub fn load(&self, name: &std::ffi::OsStr) -> Result<State> {
        let rel = Path::new(name);
        parse(
            &self.root.join(name),
            open_at(&self.dir, &rel.join(STATE_FILE)),
        )
    }

    /// `status` of the container `name` under this root.
    pub fn status(&self, name: &std::ffi::OsStr, st: &State) -> Status {
        use std::os::fd::AsRawFd;
        let fifo = Path::new(name).join(EXEC_FIFO);
        status_with(st, self.proc.as_ref(), || {
            // faccessat(F_OK): the walk alone, no stat buffer filled and copied.
            nix::unistd::faccessat(
                Some(self.dir.as_raw_fd()),
                &fifo,
                nix::unistd::AccessFlags::F_OK,
                nix::fcntl::AtFlags::empty(),
            )
            .is_ok()
        })
    }
}

/// The owner column of `list`/`state`: the user owning the state dir, as runc shows it.
pub fn owner(dir: &Path) -> String {
    match fs::metadata(dir) {
        Ok(meta) => owner_name(meta.uid()),
        Err(_) => String::new(),
    }
}

/// The user name of `uid`, or the number when the passwd database has none.
pub fn owner_name(uid: u32) -> String {
    // `list` asks once per container, nearly always for the same uid: one passwd lookup per
    // uid, not per container (1000 containers: 39 ms -> see README "Benchmarks").
    static OWNERS: std::sync::Mutex<Vec<(u32, String)>> = std::sync::Mutex::new(Vec::new());
    let mut owners = OWNERS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, name)) = owners.iter().find(|(u, _)| *u == uid) {
        return name.clone();
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd_name(&passwd, uid).unwrap_or_else(|| uid.to_string());
    owners.push((uid, name.clone()));
    name
}

/// The name of `uid` in an /etc/passwd text. runc reads the file the same way (its
/// libcontainer/user package); glibc's getpwuid_r would link NSS and dlopen into the static
/// binary (README "Benchmarks": bytes before and after).
fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (!name.is_empty() && id.parse() == Ok(uid)).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_names_come_from_the_passwd_line_with_that_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\n# comment\n\nbin:x:1:1::/:\nfoo:x:1000:1000::/home/foo:/bin/sh\n";
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 1000).as_deref(), Some("foo"));
        assert_eq!(passwd_name(passwd, 1001), None);
        assert_eq!(passwd_name("x:y\n", 0), None);
    }

    #[test]
    fn ids_that_escape_or_confuse_are_rejected() {
        for bad in ["", ".", "..", "a/b", "../x", "a\nb", "a b", "\u{7f}"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_id(&"x".repeat(1025)).is_err());
        for good in ["a", "abc-123_x.y", &"x".repeat(1024)] {
            assert!(validate_id(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn own_process_is_alive_and_a_wrong_start_time_is_not() {
        let pid = std::process::id() as i32;
        let (_, start) = proc_stat(pid).expect("own stat");
        assert!(process_alive(pid, start));
        assert!(!process_alive(pid, start + 1));
    }

    /// A /proc fd kept by vsrun would be inherited by the next init or exec'd process until
    /// its execve: a way to the host's root (escapes_fds.rs). `list`'s is gone with its RootDir.
    #[test]
    fn no_fd_of_proc_outlives_a_status_read() {
        let proc_fds = || {
            std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .flatten()
                .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == Path::new("/proc")))
                .count()
        };
        let pid = std::process::id() as i32;
        let (_, start) = proc_stat(pid).expect("own stat");
        assert!(process_alive(pid, start));
        assert_eq!(proc_fds(), 0);
        let dir = std::env::temp_dir().join(format!("vsrun-rootdir-{pid}"));
        std::fs::create_dir_all(&dir).unwrap();
        let root = RootDir::open(&dir).unwrap();
        assert_eq!(proc_fds(), 1);
        let st = State {
            oci_version: String::new(),
            id: "x".into(),
            pid,
            pid_start: start,
            bundle: PathBuf::new(),
            rootfs: PathBuf::new(),
            created: String::new(),
            annotations: HashMap::new(),
            own_pid_ns: false,
            cgroup_path: PathBuf::new(),
            systemd_cgroup: false,
            rootless: false,
            bind_ip: false,
            shared_root_mount: None,
            mount_join_path: None,
            disk: None,
            hooks: None,
        };
        // Alive, no exec.fifo, no cgroup: running, read through /proc's fd.
        assert_eq!(root.status(std::ffi::OsStr::new("x"), &st), Status::Running);
        drop(root);
        assert_eq!(proc_fds(), 0);
        let _ = std::fs::remove_dir(&dir);
    }
}
