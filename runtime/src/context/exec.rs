//! The last steps of the init: find the executable inside the new root (so a missing one fails
//! `create`, not `start`), leave only stdio and preserved fds open, restore default signal
//! handling, and execve.

use crate::error::{config, Result, StepExt};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub struct Program {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    /// PATH from the process env, used to look up args[0] without a slash.
    pub path_var: String,
}

pub fn plan(process: &oci_spec::runtime::Process) -> Result<Program> {
    let to_c =
        |field: String, s: &str| CString::new(s).map_err(|_| config(field, "contains a NUL byte"));
    let mut args = Vec::new();
    for (i, a) in process.args().iter().flatten().enumerate() {
        args.push(to_c(format!("process.args[{i}]"), a)?);
    }
    let mut env: Vec<CString> = Vec::new();
    let mut path_var = String::new();
    for (i, e) in process.env().iter().flatten().enumerate() {
        if let Some(p) = e.strip_prefix("PATH=") {
            path_var = p.to_string();
        }
        let c = to_c(format!("process.env[{i}]"), e)?;
        // One entry per name, as runc: a later value replaces an earlier one in its place.
        let name = |c: &CString| {
            c.as_bytes()
                .split(|b| *b == b'=')
                .next()
                .map(<[u8]>::to_vec)
        };
        match env.iter_mut().find(|o| name(o) == name(&c)) {
            Some(earlier) => *earlier = c,
            None => env.push(c),
        }
    }
    Ok(Program {
        args,
        env,
        path_var,
    })
}

/// Resolve args[0] as execvp would, inside the container's root and as the container user.
pub fn find_executable(prog: &Program) -> Result<CString> {
    let name = prog.args[0].to_str().unwrap_or_default();
    let candidates: Vec<PathBuf> = if name.contains('/') {
        vec![PathBuf::from(name)]
    } else {
        let path = if prog.path_var.is_empty() {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        } else {
            &prog.path_var
        };
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(name))
            .collect()
    };
    let mut last = libc::ENOENT;
    for c in &candidates {
        match check_executable(c) {
            Ok(()) => {
                return CString::new(c.as_os_str().as_bytes())
                    .map_err(|_| config("process.args[0]", "contains a NUL byte"));
            }
            Err(e) => last = e,
        }
    }
    let why = match last {
        libc::ENOENT if !name.contains('/') => "executable file not found in $PATH".to_string(),
        libc::ENOENT => "no such file or directory".to_string(),
        libc::EACCES => "permission denied (not executable by process.user)".to_string(),
        e => std::io::Error::from_raw_os_error(e).to_string(),
    };
    Err(config("process.args[0]", format!("{name:?}: {why}")))
}

fn check_executable(p: &Path) -> std::result::Result<(), i32> {
    let meta = std::fs::metadata(p).map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT))?;
    if meta.is_dir() {
        return Err(libc::EACCES);
    }
    use nix::unistd::{faccessat, AccessFlags};
    // AT_EACCESS checks with the effective ids, as execve does.
    faccessat(None, p, AccessFlags::X_OK, nix::fcntl::AtFlags::AT_EACCESS).map_err(|e| e as i32)
}

/// Only stdio and the preserved fds (3 .. 3+preserve) may cross exec (CVE-2024-21626 class),
/// and of those only the ones the caller passed: everything else, including fds the caller
/// leaked to us and vsrun's own fds, is marked close-on-exec (see `preserved`: the range was
/// reserved when vsrun started, so vsrun's own fds are above it).
pub fn seal_fds(preserve: u32) -> Result<()> {
    super::preserved::seal(preserve)
}

/// Rust ignores SIGPIPE and vsrun blocks signals it forwards; an ignored or blocked signal
/// survives execve, so the container would inherit both.
pub fn reset_signals() -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    for sig in Signal::iterator() {
        if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
            let _ = crate::syscall::proc::reset_signal(sig);
        }
    }
    SigSet::empty()
        .thread_set_mask()
        .step(|| "reset signal mask".into())
}

/// The environment for execve: the config's, plus HOME from the container's /etc/passwd when
/// the config sets none (runc does this; shells and many programs need it). Runs after
/// pivot_root, so /etc/passwd is the container's.
pub fn final_env(prog: &Program, uid: u32) -> Vec<CString> {
    let mut env = prog.env.clone();
    if env.iter().any(|e| e.as_bytes().starts_with(b"HOME=")) {
        return env;
    }
    let home = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
            })
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_string());
    if let Ok(c) = CString::new(format!("HOME={home}")) {
        env.push(c);
    }
    env
}

/// execve's arguments as the kernel takes them, built before the seccomp filter: after it
/// only the execve itself may run, and building the pointer arrays could allocate (brk/mmap).
pub struct Call<'a> {
    path: &'a CString,
    args: crate::syscall::proc::Execve<'a>,
}

pub fn prepare<'a>(path: &'a CString, prog: &'a Program, env: &'a [CString]) -> Call<'a> {
    Call {
        path,
        args: crate::syscall::proc::Execve::new(path, &prog.args, env),
    }
}

impl Call<'_> {
    pub fn execve(&self) -> Result<std::convert::Infallible> {
        Err(self.args.exec()).step(|| format!("exec {:?} (process.args[0])", self.path))
    }
}
