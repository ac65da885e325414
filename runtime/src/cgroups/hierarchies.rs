//! The host's cgroup mounts, found once per vsrun process. The parent finds them for the
//! cgroup layout before it clones the init, and the init (a clone: its memory is a copy, and
//! its new mount namespace a copy of the same mounts) uses that answer for the config's
//! `cgroup` mount, so a `run` looks once.
//!
//! Looking is cheap where the answer is certain: /proc/self/cgroup names every v1 hierarchy
//! the kernel has (`N:controllers:path`), and each is checked with statfs and statx at the
//! place its name gives, under /sys/fs/cgroup. Anything else is read from
//! /proc/self/mountinfo, which takes the kernel's global mount lock (namespace_sem) for every
//! read() chunk and queues behind every container being set up at the same time.
//!
//! How certain is "certain": the fast answer must be the one mountinfo would give for every
//! hierarchy vsrun joins or mounts. So it is used only when all of these hold, and mountinfo
//! is read whenever one does not:
//! - vsrun is in the initial cgroup namespace, so /proc/self/cgroup's paths and mountinfo's
//!   roots are both from the hierarchy's root;
//! - every v1 line is either controllers only or one `name=` only, with a plain name, and no
//!   hierarchy id repeats;
//! - each hierarchy is at /sys/fs/cgroup/<its controllers, in the kernel's order, or its
//!   name>: a mount root (not a symlink), of the cgroup file system (statfs magic), showing
//!   the hierarchy's root directory (inode 1: kernfs numbers a hierarchy's root first), and
//!   on a device no other hierarchy has; the kernel lists every live hierarchy, so the
//!   mounts found are exactly the hierarchies, one each;
//! - a cgroup2 tree the kernel shows (`0::`) is at /sys/fs/cgroup itself (pure v2, which has
//!   no v1 line) or, beside v1 hierarchies, at /sys/fs/cgroup/unified; where that is not
//!   mounted (a namespace that unmounted it), nothing else under /sys/fs/cgroup can hold a
//!   mount (`nothing_else_mounted`).
//!
//! Not checked: two hierarchies swapped between each other's names (a host built to fool
//! this; every check above still holds there), and a second mount of a hierarchy elsewhere
//! (mountinfo's first mount of it was used before; this uses its mount under /sys/fs/cgroup,
//! the same hierarchy and cgroups). The fast answer has no mount flags beyond the controllers
//! and the name (`xattr`, `noprefix`, ...), and its roots hold in the initial cgroup
//! namespace: an init with a cgroup namespace of its own that mounts v1 hierarchies anew, or
//! binds its own cgroup, reads mountinfo once (`host_with_options`), as it did before.

use crate::rootfs::mountinfo::{self, CgroupLine, MountInfo};
use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, FsType, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The inode number of the initial cgroup namespace (include/linux/proc_ns.h).
const PROC_CGROUP_INIT_INO: u64 = 0xEFFF_FFFB;

/// The host's cgroup and cgroup2 mounts.
pub struct HostCgroups {
    pub mounts: Vec<MountInfo>,
    /// The mounts' super options are all of the kernel's (from mountinfo), not only the
    /// controllers and name.
    pub full_options: bool,
}

/// Found once per process (and inherited by the init).
pub fn host() -> io::Result<&'static HostCgroups> {
    static HOST: OnceLock<HostCgroups> = OnceLock::new();
    if let Some(h) = HOST.get() {
        return Ok(h);
    }
    let h = match fast() {
        Some(mounts) => HostCgroups {
            mounts,
            full_options: false,
        },
        None => from_mountinfo()?,
    };
    Ok(HOST.get_or_init(|| h))
}

/// `host`, with every mount's full super options (for a new v1 mount of a hierarchy).
pub fn host_with_options() -> io::Result<&'static HostCgroups> {
    static FULL: OnceLock<HostCgroups> = OnceLock::new();
    let h = host()?;
    if h.full_options {
        return Ok(h);
    }
    if let Some(h) = FULL.get() {
        return Ok(h);
    }
    let h = from_mountinfo()?;
    Ok(FULL.get_or_init(|| h))
}

fn from_mountinfo() -> io::Result<HostCgroups> {
    let mut mounts = mountinfo::read()?;
    mounts.retain(|m| m.fstype == "cgroup" || m.fstype == "cgroup2");
    Ok(HostCgroups {
        mounts,
        full_options: true,
    })
}

/// What statx (and, for a directory, statfs) say about one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// None unless a directory.
    magic: Option<FsType>,
    ino: u64,
    dev: (u32, u32),
    /// S_IFMT bits.
    kind: u32,
    nlink: u32,
    mount_root: bool,
}

/// The host as the fast path looks at it (a stand-in in the unit tests).
trait Look {
    fn see(&self, p: &Path) -> Option<Seen>;
    fn entries(&self, dir: &Path) -> Option<Vec<PathBuf>>;
}

/// The host itself, looked at through one fd of /sys/fs/cgroup: a path walk through /sys
/// revalidates sysfs's kernfs dentries, and that waits on sysfs's lock, which every network
/// namespace being set up or torn down takes for writing.
struct Kernel {
    root: OwnedFd,
}

impl Kernel {
    fn open() -> Option<Kernel> {
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
        let root = crate::rootfs::resolve::open_host(CGROUP_ROOT, flags).ok()?;
        Some(Kernel { root })
    }
}

impl Look for Kernel {
    fn see(&self, p: &Path) -> Option<Seen> {
        let rel = p.strip_prefix(CGROUP_ROOT).ok()?;
        let opened;
        let fd = if rel.as_os_str().is_empty() {
            self.root.as_fd()
        } else {
            let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
            opened = crate::rootfs::resolve::openat(self.root.as_fd(), rel, flags, 0).ok()?;
            opened.as_fd()
        };
        let sx = crate::syscall::statmount::statx_at(fd.as_raw_fd(), c"").ok()?;
        let dir = sx.kind == libc::S_IFDIR;
        Some(Seen {
            magic: if dir {
                Some(fstatfs(fd).ok()?.filesystem_type())
            } else {
                None
            },
            ino: sx.ino,
            dev: sx.dev,
            kind: sx.kind,
            nlink: sx.nlink,
            mount_root: sx.mount_root,
        })
    }

    fn entries(&self, dir: &Path) -> Option<Vec<PathBuf>> {
        if dir != Path::new(CGROUP_ROOT) {
            return None;
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let mut d = Dir::openat(Some(self.root.as_raw_fd()), ".", flags, Mode::empty()).ok()?;
        let mut out = Vec::new();
        for e in d.iter() {
            let name = e.ok()?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                out.push(dir.join(std::ffi::OsStr::from_bytes(&name)));
            }
        }
        Some(out)
    }
}

fn fast() -> Option<Vec<MountInfo>> {
    let ns = nix::sys::stat::stat("/proc/self/ns/cgroup").ok()?;
    if ns.st_ino != PROC_CGROUP_INIT_INO {
        return None;
    }
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let host = Kernel::open()?;
    let root_v2 = host.see(Path::new(CGROUP_ROOT))?.magic == Some(CGROUP2_SUPER_MAGIC);
    let want = expected(&parse_all(&text)?, root_v2)?;
    verify(want, &host)
}

/// Every line of /proc/self/cgroup, or None if one does not parse.
fn parse_all(text: &str) -> Option<Vec<CgroupLine>> {
    let lines = mountinfo::parse_cgroup(text);
    (lines.len() == text.lines().count()).then_some(lines)
}

/// One hierarchy where the fast path expects it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    mount_point: PathBuf,
    v2: bool,
    /// The hybrid's cgroup2 at /sys/fs/cgroup/unified, which may be absent (unmounted in this
    /// mount namespace).
    optional: bool,
    /// As /proc/self/cgroup prints them (`name=systemd` for a named hierarchy).
    options: Vec<String>,
}

/// Where each hierarchy of `lines` must be mounted, or None when the lines are not of the
/// plain form the fast path trusts.
fn expected(lines: &[CgroupLine], root_v2: bool) -> Option<Vec<Expected>> {
    let mut out = Vec::new();
    let mut ids = Vec::new();
    let mut v2 = false;
    // In hierarchy-id order: the kernel numbers a hierarchy when it is first mounted, so this is
    // the order of the mounts in mountinfo, which the container's cgroup tmpfs repeats as runc
    // does (/proc/self/cgroup lists them the other way round).
    let mut sorted: Vec<&CgroupLine> = lines.iter().collect();
    sorted.sort_by_key(|l| l.hierarchy);
    for l in sorted {
        if ids.contains(&l.hierarchy) {
            return None;
        }
        ids.push(l.hierarchy);
        if l.hierarchy == 0 {
            if !l.controllers.is_empty() {
                return None;
            }
            v2 = true;
            continue;
        }
        if root_v2 {
            return None;
        }
        let name = dir_name(&l.controllers)?;
        out.push(Expected {
            mount_point: Path::new(CGROUP_ROOT).join(name),
            v2: false,
            optional: false,
            options: l.controllers.clone(),
        });
    }
    if root_v2 && !v2 {
        return None;
    }
    if v2 {
        let at = Path::new(CGROUP_ROOT);
        out.push(Expected {
            mount_point: if root_v2 {
                at.into()
            } else {
                at.join("unified")
            },
            v2: true,
            optional: !root_v2,
            options: Vec::new(),
        });
    }
    if out.is_empty() {
        return None;
    }
    Some(out)
}

/// The directory a v1 hierarchy is mounted on by convention: its controllers joined by
/// commas, or the name of a named hierarchy.
fn dir_name(controllers: &[String]) -> Option<String> {
    let plain = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && !s.contains(['/', ',', '='])
            && !s.starts_with(char::is_whitespace)
    };
    match controllers {
        [] => None,
        [one] if one.starts_with("name=") => {
            let name = &one["name=".len()..];
            plain(name).then(|| name.to_string())
        }
        all if all.iter().all(|c| plain(c)) => Some(all.join(",")),
        _ => None,
    }
}

/// The expected mounts as mountinfo would describe them, if every one is there as expected.
fn verify(want: Vec<Expected>, look: &impl Look) -> Option<Vec<MountInfo>> {
    let mut devs = Vec::new();
    let mut out = Vec::new();
    let mut unified_absent = false;
    for e in want {
        let (magic, fstype) = if e.v2 {
            (CGROUP2_SUPER_MAGIC, "cgroup2")
        } else {
            (CGROUP_SUPER_MAGIC, "cgroup")
        };
        let seen = look.see(&e.mount_point);
        let s = match seen {
            Some(s) if s.magic == Some(magic) && s.mount_root => s,
            _ if e.optional => {
                unified_absent = true;
                continue;
            }
            _ => return None,
        };
        if s.ino != 1 || devs.contains(&s.dev) {
            return None;
        }
        devs.push(s.dev);
        out.push(MountInfo {
            id: 0,
            parent: 0,
            dev: format!("{}:{}", s.dev.0, s.dev.1),
            root: "/".into(),
            mount_point: e.mount_point,
            optional: Vec::new(),
            fstype: fstype.into(),
            source: fstype.into(),
            super_options: e.options,
        });
    }
    if unified_absent && !nothing_else_mounted(&out, look) {
        return None;
    }
    Some(out)
}

/// The kernel shows a cgroup2 tree, but not at /sys/fs/cgroup/unified: mountinfo would find
/// none under /sys/fs/cgroup only if nothing else there can hold a mount. So every entry must
/// be a hierarchy found, a symlink (`cpu -> cpu,cpuacct`), or a directory without
/// subdirectories (nlink 2) that is not a mount root; anything else is left to mountinfo.
fn nothing_else_mounted(found: &[MountInfo], look: &impl Look) -> bool {
    let Some(entries) = look.entries(Path::new(CGROUP_ROOT)) else {
        return false;
    };
    entries.iter().all(|p| {
        found.iter().any(|m| m.mount_point == *p)
            || look.see(p).is_some_and(|s| {
                !s.mount_root
                    && (s.kind == libc::S_IFLNK || (s.kind == libc::S_IFDIR && s.nlink == 2))
            })
    })
}

#[cfg(test)]
#[path = "hierarchies_tests.rs"]
mod tests;
