//! The cgroup v2 directory a context's socket programs hang on: where it lives, attaching the
//! loaded programs before the init is moved in, and detaching them again.
//!
//! On a pure v2 host that directory is the container's own cgroup (`/sys/fs/cgroup/vsrun/<id>`,
//! owned by `crate::cgroups`). On a v1/v2 hybrid host the controllers live in v1 and the v2
//! mount at `/sys/fs/cgroup/unified` has none; vsrun then makes `unified/vsrun/<id>` only for
//! the programs and owns (creates and removes) it itself.

use crate::bpf;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The hooks bind-ip uses (uapi enum bpf_attach_type): eight sock_addr hooks that decide and
/// rewrite addresses, and a cgroup_skb ingress filter for what they cannot see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Hook {
    Ingress = 0,
    Bind4 = 8,
    Bind6 = 9,
    Connect4 = 10,
    Connect6 = 11,
    Sendmsg4 = 14,
    Sendmsg6 = 15,
    Recvmsg4 = 19,
    Recvmsg6 = 20,
}

impl Hook {
    pub const ALL: [Hook; 9] = [
        Hook::Bind4,
        Hook::Bind6,
        Hook::Connect4,
        Hook::Connect6,
        Hook::Sendmsg4,
        Hook::Sendmsg6,
        Hook::Recvmsg4,
        Hook::Recvmsg6,
        Hook::Ingress,
    ];

    /// uapi enum bpf_prog_type of the program for this hook.
    pub fn prog_type(self) -> u32 {
        match self {
            Hook::Ingress => bpf::BPF_PROG_TYPE_CGROUP_SKB,
            _ => bpf::BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
        }
    }

    /// The program's kernel name (bpftool shows it): `vsrun_<hook>`.
    pub fn prog_name(self) -> &'static str {
        match self {
            Hook::Bind4 => "vsrun_bind4",
            Hook::Bind6 => "vsrun_bind6",
            Hook::Connect4 => "vsrun_connect4",
            Hook::Connect6 => "vsrun_connect6",
            Hook::Sendmsg4 => "vsrun_sendmsg4",
            Hook::Sendmsg6 => "vsrun_sendmsg6",
            Hook::Recvmsg4 => "vsrun_recvmsg4",
            Hook::Recvmsg6 => "vsrun_recvmsg6",
            Hook::Ingress => "vsrun_ingress",
        }
    }
}

/// Where the v2 hierarchy is mounted and whether it is the only one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// /sys/fs/cgroup is cgroup2: the container's own cgroup carries the programs.
    Unified(PathBuf),
    /// v1 controllers plus a controller-less v2 mount (systemd's "hybrid"): vsrun's own dirs.
    Hybrid(PathBuf),
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

fn is_cgroup2(p: &Path) -> bool {
    nix::sys::statfs::statfs(p)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

pub fn layout() -> Option<Layout> {
    let root = Path::new(CGROUP_ROOT);
    if is_cgroup2(root) {
        return Some(Layout::Unified(root.to_path_buf()));
    }
    let unified = root.join("unified");
    is_cgroup2(&unified).then_some(Layout::Hybrid(unified))
}

impl Layout {
    /// The directory below which each context's directory is made: `<mount>/vsrun`.
    pub fn base(&self) -> PathBuf {
        match self {
            Layout::Unified(m) | Layout::Hybrid(m) => m.join("vsrun"),
        }
    }

    /// Whether bind-ip creates and removes the per-context directory itself.
    pub fn owns_dirs(&self) -> bool {
        matches!(self, Layout::Hybrid(_))
    }
}

fn open_dir(dir: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
}

/// Make `dir`, attach every program with BPF_F_ALLOW_MULTI, then move `pid` in. The programs
/// are in place before the process is, so no socket of the context is ever created unhooked.
/// On failure whatever was attached is detached again and a directory made here removed.
///
/// ALLOW_MULTI, not the exclusive default: programs of a child cgroup (which only a holder of
/// CAP_NET_ADMIN/CAP_SYS_ADMIN in the host could attach) run *before* these, so vsrun's
/// programs always see — and decide on — the final address. It also lets engines or systemd
/// keep their own programs on ancestor cgroups.
pub fn attach_all(dir: &Path, progs: &[(Hook, OwnedFd)], pid: i32) -> io::Result<()> {
    let created = !dir.exists();
    std::fs::create_dir_all(dir)?;
    let result = (|| {
        let d = open_dir(dir)?;
        for (hook, prog) in progs {
            bpf::prog_attach(
                d.as_fd(),
                prog.as_fd(),
                *hook as u32,
                bpf::BPF_F_ALLOW_MULTI,
            )
            .map_err(|e| with_context(e, format!("attach {}", hook.prog_name())))?;
        }
        join(dir, pid)
    })();
    if result.is_err() {
        let _ = detach_ours(dir);
        if created {
            let _ = std::fs::remove_dir(dir);
        }
    }
    result
}

fn with_context(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Move `pid` into `dir`.
pub fn join(dir: &Path, pid: i32) -> io::Result<()> {
    std::fs::write(dir.join("cgroup.procs"), pid.to_string())
}

/// Detach every program named `vsrun_*` from `dir` (others' programs stay). A missing
/// directory is not an error: remove must be idempotent.
pub fn detach_ours(dir: &Path) -> io::Result<()> {
    let d = match open_dir(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for hook in Hook::ALL {
        for id in bpf::prog_query(d.as_fd(), hook as u32)? {
            let prog = match bpf::prog_get_fd_by_id(id) {
                Ok(p) => p,
                // Detached and freed meanwhile (a concurrent delete --force).
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Err(e),
            };
            if !bpf::prog_info(prog.as_fd())?.1.starts_with("vsrun_") {
                continue;
            }
            match bpf::prog_detach(d.as_fd(), prog.as_fd(), hook as u32) {
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

/// rmdir `dir`, waiting up to a second for exiting processes to leave it (EBUSY).
pub fn remove_dir(dir: &Path) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
}
