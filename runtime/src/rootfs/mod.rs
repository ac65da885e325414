//! The container's filesystem view: propagation, the rootfs bind, `mounts[]`, devices, /dev
//! symlinks, sysctl, read-only and masked paths, a read-only root, pivot_root.
//! `plan` runs in the parent (all parsing and validation); `setup` runs in the init, inside its
//! mount namespace, and performs only kernel steps.
//!
//! Every path inside the rootfs is resolved confined to it (resolve.rs) and every mount is
//! made onto the fd of the resolved target (kmount.rs): a symlink in the rootfs can never
//! redirect a mount to the host (CVE-2021-30465 class).

mod cgroup;
pub mod check;
mod devices;
mod idmap;
mod kmount;
pub mod mountinfo;
mod mounts;
pub mod options;
mod paths;
mod pivot;
pub mod resolve;
pub mod shared;
pub mod sysctl;

use crate::error::{config, Result, StepExt};
pub use check::has_nul;
use libc::c_ulong;
use oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, Spec};
use options::MountOptions;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct PlanOptions {
    pub no_pivot: bool,
    /// The init runs in a new user namespace: mknod is not allowed, devices are bound.
    pub userns: bool,
    /// The mount namespace is not new (no `mount` entry, or one joined by path): see
    /// `Plan::shared`.
    pub shared_mount_ns: bool,
}

/// Everything `setup` needs, decided before the clone.
pub struct Plan {
    pub rootfs: PathBuf,
    pub no_pivot: bool,
    /// The mount namespace is shared with other processes (the caller's, or one joined by
    /// path). Then nothing outside the rootfs is touched: no propagation change on "/" or on
    /// the rootfs's parent, no pivot_root (it would re-root every process there) but a chroot,
    /// and everything mounted hangs off one bind of the rootfs onto itself, which `delete`
    /// (or a failed create) detaches (shared.rs).
    pub shared: bool,
    /// The container's pid namespace when the init stays outside it (a pid namespace joined by
    /// path, context/namespaces.rs `pid_join`): proc mounts are made for it from the contexts
    /// below and checked against it.
    pub proc_pid_ns: Option<std::os::fd::RawFd>,
    /// proc fs_contexts opened inside that pid namespace (context/pidns_proc.rs), one per proc
    /// mount, handed to the init just before `setup`.
    proc_contexts: std::cell::RefCell<Vec<OwnedFd>>,
    userns: bool,
    /// The config asks for a cgroup namespace: `cgroup` mounts are new cgroup mounts.
    cgroupns: bool,
    /// MS_* propagation for "/" before the rootfs is prepared (default MS_SLAVE | MS_REC).
    root_propagation: c_ulong,
    /// `linux.rootfsPropagation` was given: it is applied again to the new "/" after
    /// pivot_root, as runc does.
    root_propagation_explicit: bool,
    mounts: Vec<MountStep>,
    /// /dev is not a bind mount: create the devices and the /dev symlinks (runc's rule).
    setup_dev: bool,
    devices: Vec<Device>,
    /// In a user namespace: the detached tmpfs holding the nodes vsrun made for the configured
    /// devices (devices.rs `make_nodes`).
    device_nodes: Option<OwnedFd>,
    /// process.terminal: /dev/console exists as an empty file for `mount_console`.
    console: bool,
    /// (key as given, its file relative to /proc/sys, value).
    sysctl: Vec<(String, PathBuf, String)>,
    readonly_paths: Vec<PathBuf>,
    masked_paths: Vec<PathBuf>,
    readonly_root: bool,
    /// process.cwd, relative to the root: made (when missing) before anything is made
    /// read-only, as runc does while it sets up the rootfs.
    cwd: Option<PathBuf>,
}

pub(crate) struct MountStep {
    index: usize,
    /// Cleaned, relative to the root.
    dest: PathBuf,
    kind: MountKind,
    opts: MountOptions,
    /// `idmap`/`ridmap`, uid/gidMappings: set by vsrun on the cloned tree (idmap.rs).
    idmap: Option<idmap::Idmap>,
}

pub(crate) enum MountKind {
    Bind {
        source: PathBuf,
        /// The source, cloned (with its options set) by vsrun before the clone when the init
        /// gets a user namespace: its mapped root could not reach a source below a directory
        /// only the host's root may enter (runc 1.1's mount fds).
        tree: Option<OwnedFd>,
    },
    /// `type: cgroup`: the cgroup hierarchies the init is in (cgroup.rs).
    Cgroup,
    Fs {
        fstype: String,
        source: Option<String>,
    },
}

pub(crate) struct Device {
    /// Cleaned, relative to the root (anywhere but the root itself).
    path: PathBuf,
    /// S_IFCHR, S_IFBLK or S_IFIFO.
    kind: libc::mode_t,
    major: u64,
    minor: u64,
    mode: libc::mode_t,
    uid: u32,
    gid: u32,
    /// Its index in `linux.devices` (None for a default device).
    configured: Option<usize>,
    /// In a user namespace: the node, made by vsrun before the clone in `Plan::device_nodes`
    /// (devices.rs `make_nodes`) and opened there (O_PATH), for the init to bind on the
    /// confined path.
    node: Option<OwnedFd>,
}

/// The devices every container gets (OCI config-linux.md "Default Devices").
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("dev/null", 1, 3),
    ("dev/zero", 1, 5),
    ("dev/full", 1, 7),
    ("dev/random", 1, 8),
    ("dev/urandom", 1, 9),
    ("dev/tty", 5, 0),
];

/// Files under /proc that may be mount destinations (lxcfs-style emulation), as runc allows.
/// Anything else in /proc is refused: a mount there could undo masking (CVE-2019-16884,
/// CVE-2019-19921 class).
const PROC_MOUNT_ALLOWED: &[&str] = &[
    "proc/cpuinfo",
    "proc/diskstats",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "proc/loadavg",
    "proc/slabinfo",
    "proc/pressure/cpu",
    "proc/pressure/io",
    "proc/pressure/memory",
    "proc/net/dev",
    "proc/sys/kernel/ns_last_pid",
];

/// Plan with relative bind sources taken relative to the current directory (runc chdirs into
/// the bundle first). Prefer `plan_in_bundle` when the bundle directory is known.
pub fn plan(spec: &Spec, rootfs: &Path, opts: PlanOptions) -> Result<Plan> {
    let cwd = std::env::current_dir().step(|| "getcwd (relative bind sources)".into())?;
    plan_in_bundle(spec, rootfs, &cwd, opts)
}

/// Plan with relative bind sources taken relative to `bundle` (config.md: "Path values for
/// bind mounts are either absolute or relative to the bundle").
pub fn plan_in_bundle(
    spec: &Spec,
    rootfs: &Path,
    bundle: &Path,
    opts: PlanOptions,
) -> Result<Plan> {
    let linux = spec.linux().as_ref();
    let (root_propagation, root_propagation_explicit) = plan_propagation(spec, &opts)?;
    let mut mounts = plan_mounts(spec, bundle)?;
    idmap::clone_sources(&mut mounts)?;
    if opts.userns && !opts.shared_mount_ns {
        mounts::clone_bind_sources(&mut mounts)?;
    }
    let mut devices = plan_devices(spec)?;
    let device_nodes = if opts.userns {
        devices::make_nodes(&mut devices, spec)?
    } else {
        None
    };
    let setup_dev = !mounts
        .iter()
        .any(|m| m.dest == Path::new("dev") && matches!(m.kind, MountKind::Bind { .. }));
    if mounts.iter().any(|m| matches!(m.kind, MountKind::Cgroup)) {
        // Found here, before the clone, so that the init has the answer (a copy of this
        // process's memory) and does not look again. A failure is left for the init to
        // report, naming its mount.
        let _ = crate::cgroups::hierarchies::host();
    }
    let cgroupns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Cgroup));
    Ok(Plan {
        rootfs: rootfs.to_path_buf(),
        no_pivot: opts.no_pivot,
        shared: opts.shared_mount_ns,
        proc_pid_ns: None,
        proc_contexts: Default::default(),
        userns: opts.userns,
        cgroupns,
        root_propagation,
        root_propagation_explicit,
        mounts,
        setup_dev,
        devices,
        device_nodes,
        console: spec
            .process()
            .as_ref()
            .is_some_and(|p| p.terminal() == Some(true)),
        sysctl: sysctl::plan(spec)?,
        readonly_paths: plan_paths(
            linux.and_then(|l| l.readonly_paths().as_ref()),
            "linux.readonlyPaths",
        )?,
        masked_paths: plan_paths(
            linux.and_then(|l| l.masked_paths().as_ref()),
            "linux.maskedPaths",
        )?,
        readonly_root: spec.root().as_ref().and_then(|r| r.readonly()) == Some(true),
        cwd: spec
            .process()
            .as_ref()
            .and_then(|p| p.cwd().strip_prefix("/").ok())
            .map(Path::to_path_buf),
    })
}

/// linux.rootfsPropagation as mount flags, and whether the config set it (default rslave).
fn plan_propagation(spec: &Spec, opts: &PlanOptions) -> Result<(c_ulong, bool)> {
    let linux = spec.linux().as_ref();
    let (root_propagation, root_propagation_explicit) =
        match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
            None | Some("") => (libc::MS_SLAVE | libc::MS_REC, false),
            Some(p) => match options::propagation(p) {
                Some(f) => (f, true),
                None => {
                    return Err(config(
                        "linux.rootfsPropagation",
                        format!("unknown propagation {p:?} (want shared, slave, private, unbindable or their r-forms)"),
                    ))
                }
            },
        };
    if opts.no_pivot && root_propagation_explicit && root_propagation & libc::MS_PRIVATE != 0 {
        // Without pivot_root the host's mounts stay below the container's root; as runc,
        // refuse to make them private there.
        return Err(config(
            "linux.rootfsPropagation",
            "[r]private is not safe without pivot_root (--no-pivot)",
        ));
    }
    if opts.shared_mount_ns && root_propagation_explicit {
        return Err(config(
            "linux.rootfsPropagation",
            "needs a mount namespace of the container's own (linux.namespaces has no new \"mount\"); it would change the caller's \"/\"",
        ));
    }
    Ok((root_propagation, root_propagation_explicit))
}

fn plan_mounts(spec: &Spec, bundle: &Path) -> Result<Vec<MountStep>> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let field = |f: &str| format!("mounts[{i}].{f}");
        let d = m.destination();
        let dest = resolve::clean(d).ok_or_else(|| {
            config(
                field("destination"),
                format!("{:?} must be absolute", d.display().to_string()),
            )
        })?;
        if dest.as_os_str().is_empty() {
            return Err(config(
                field("destination"),
                "\"/\" cannot be a mount destination (it is the rootfs)",
            ));
        }
        let opts = options::parse(m.options().as_deref().unwrap_or(&[]))
            .map_err(|(j, e)| config(format!("mounts[{i}].options[{j}]"), e.0))?;
        let typ = m.typ().as_deref().filter(|t| !t.is_empty());
        let kind = if opts.is_bind() || typ == Some("bind") {
            let src = m
                .source()
                .as_ref()
                .filter(|s| !s.as_os_str().is_empty())
                .ok_or_else(|| config(field("source"), "a bind mount needs a source"))?;
            // `join` keeps an absolute source as it is.
            let source = bundle.join(src);
            MountKind::Bind { source, tree: None }
        } else if typ == Some("cgroup") {
            MountKind::Cgroup
        } else {
            let fstype = typ
                .ok_or_else(|| config(field("type"), "required unless the mount is a bind mount"))?
                .to_string();
            let source = m
                .source()
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned());
            MountKind::Fs { fstype, source }
        };
        check_proc_destination(&dest, &kind, typ)
            .map_err(|msg| config(field("destination"), msg))?;
        if opts.tmpcopyup && !matches!(&kind, MountKind::Fs { fstype, .. } if fstype == "tmpfs") {
            return Err(config(field("options"), "tmpcopyup needs a tmpfs mount"));
        }
        let idmap = idmap::plan(spec, i, m, &opts, &kind)?;
        out.push(MountStep {
            index: i,
            dest,
            kind,
            opts,
            idmap,
        });
    }
    Ok(out)
}

/// runc's checkProcMount on the cleaned destination; setup checks again after resolution.
fn check_proc_destination(
    dest: &Path,
    kind: &MountKind,
    typ: Option<&str>,
) -> std::result::Result<(), String> {
    if !dest.starts_with("proc") {
        return Ok(());
    }
    if dest == Path::new("proc") {
        return match kind {
            MountKind::Fs { fstype, .. } if fstype == "proc" => Ok(()),
            // Only a procfs may be bound on /proc; setup checks the source's file system.
            MountKind::Bind { .. } => Ok(()),
            _ => Err(format!(
                "/proc can only be a proc mount, not {:?}",
                typ.unwrap_or("")
            )),
        };
    }
    if proc_mount_allowed(dest) {
        Ok(())
    } else {
        Err(format!(
            "\"/{}\" cannot be mounted because it is inside /proc",
            dest.display()
        ))
    }
}

fn proc_mount_allowed(dest: &Path) -> bool {
    PROC_MOUNT_ALLOWED.iter().any(|p| dest == Path::new(p))
}

fn plan_devices(spec: &Spec) -> Result<Vec<Device>> {
    let mut out = Vec::new();
    let devs = spec.linux().as_ref().and_then(|l| l.devices().as_ref());
    for (i, d) in devs.into_iter().flatten().enumerate() {
        let field = |f: &str| format!("linux.devices[{i}].{f}");
        // Anywhere in the rootfs, as runc and crun allow; resolved confined to it at setup.
        let path = resolve::clean(d.path())
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or_else(|| {
                config(
                    field("path"),
                    format!(
                        "{:?} must be an absolute path other than \"/\"",
                        d.path().display().to_string()
                    ),
                )
            })?;
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(config(
                    field("type"),
                    "\"a\" is not a device type (want c, u, b or p)",
                ))
            }
        };
        let num = |v: i64, f: &str| {
            u64::try_from(v).map_err(|_| config(field(f), format!("{v} is negative")))
        };
        // mknod(2) ignores the number of a FIFO; the spec makes it optional there.
        let (major, minor) = if kind == libc::S_IFIFO {
            (0, 0)
        } else {
            (num(d.major(), "major")?, num(d.minor(), "minor")?)
        };
        if out.iter().any(|o: &Device| o.path == path) {
            return Err(config(
                field("path"),
                format!("{:?} is listed twice", d.path().display().to_string()),
            ));
        }
        out.push(Device {
            path,
            kind,
            major,
            minor,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
            configured: Some(i),
            node: None,
        });
    }
    for &(p, major, minor) in DEFAULT_DEVICES {
        if !out.iter().any(|o| o.path == Path::new(p)) {
            out.push(Device {
                path: PathBuf::from(p),
                kind: libc::S_IFCHR,
                major,
                minor,
                mode: 0o666,
                uid: 0,
                gid: 0,
                configured: None,
                node: None,
            });
        }
    }
    Ok(out)
}

fn plan_paths(paths: Option<&Vec<String>>, field: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for (i, p) in paths.into_iter().flatten().enumerate() {
        let clean = resolve::clean(Path::new(p))
            .ok_or_else(|| config(format!("{field}[{i}]"), format!("{p:?} must be absolute")))?;
        if clean.as_os_str().is_empty() {
            return Err(config(
                format!("{field}[{i}]"),
                "\"/\" cannot be masked or made read-only here (use root.readonly)",
            ));
        }
        out.push(clean);
    }
    Ok(out)
}

impl Plan {
    /// How many new procs `mounts` asks for.
    pub fn proc_mounts(&self) -> usize {
        self.mounts
            .iter()
            .filter(|m| matches!(&m.kind, MountKind::Fs { fstype, .. } if fstype == "proc"))
            .count()
    }

    /// The init's proc contexts for the joined pid namespace, used in `mounts` order.
    pub fn give_proc_contexts(&self, mut fds: Vec<OwnedFd>) {
        fds.reverse();
        self.proc_contexts.replace(fds);
    }

    fn take_proc_context(&self) -> Option<OwnedFd> {
        self.proc_contexts.borrow_mut().pop()
    }
}

/// Runs in the init after it entered its mount namespace; returns with "/" being the
/// container's root and the cwd at "/".
///
/// Order (runc's): "/" propagation, the rootfs bound onto itself, `mounts[]` in order, devices
/// and /dev symlinks, a missing cwd, sysctl, readonlyPaths, maskedPaths, root.readonly, pivot_root. The last
/// five are done on the new root's mounts before the pivot, through fds of the root — the same
/// mounts the container sees afterwards — so the host's verified /dev/null can be used for
/// masking and nothing depends on the container having a /proc.
pub fn setup(plan: &Plan) -> Result<()> {
    setup_with_hooks(plan, &mut || Ok(()))
}

/// `setup`, calling `hooks` once the mounts and devices exist but before sysctl, the read-only
/// and masked paths, a read-only root and pivot_root: where runc runs the createRuntime,
/// prestart and createContainer hooks (a hook may still add mounts under the rootfs).
pub fn setup_with_hooks(plan: &Plan, hooks: &mut dyn FnMut() -> Result<()>) -> Result<()> {
    let host = HostFds::open(plan)?;
    if !plan.shared {
        pivot::prepare_root(plan)?;
    }
    let root = pivot::bind_rootfs(plan)?;
    for m in &plan.mounts {
        mounts::mount(plan, root.as_fd(), m)?;
    }
    if plan.setup_dev {
        devices::create(plan, root.as_fd())?;
        devices::symlinks(plan, root.as_fd(), host.kcore)?;
    }
    hooks()?;
    make_cwd(plan, root.as_fd())?;
    paths::sysctl(plan, root.as_fd())?;
    paths::readonly(plan, root.as_fd())?;
    let own_null = container_dev_null(plan, root.as_fd());
    paths::masked(
        plan,
        root.as_fd(),
        own_null.as_ref().or(host.dev_null.as_ref()),
    )?;
    if plan.readonly_root {
        pivot::readonly_root(root.as_fd())?;
    }
    pivot::enter(plan, root)
}

/// A missing process.cwd is made now, while the root and the read-only paths are still
/// writable (runc makes it before its read-only remount). It is created confined to the root
/// with no magic links, one component at a time through fds; the init still resolves it again
/// inside the new root before its chdir (context/init.rs `enter_cwd`, CVE-2024-21626).
fn make_cwd(plan: &Plan, root: std::os::fd::BorrowedFd<'_>) -> Result<()> {
    let Some(cwd) = &plan.cwd else {
        return Ok(());
    };
    resolve::open_or_create(root, cwd, resolve::Create::Dir)
        .map(drop)
        .step(|| format!("create /{} (process.cwd)", cwd.display()))
}

/// The container's own /dev/null for masking files, as runc binds it: the host's would show
/// the host's devtmpfs (and its size) in the container's mountinfo. Taken only when it is
/// verifiably char 1:3 and not a symlink (CVE-2025-31133); otherwise the checked host node.
fn container_dev_null(plan: &Plan, root: std::os::fd::BorrowedFd<'_>) -> Option<OwnedFd> {
    if plan.masked_paths.is_empty() {
        return None;
    }
    let fd =
        resolve::open_flags(root, Path::new("dev/null"), libc::O_PATH | libc::O_NOFOLLOW).ok()?;
    let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd)).ok()?;
    let is_null = st.st_mode & libc::S_IFMT == libc::S_IFCHR
        && nix::sys::stat::major(st.st_rdev) == 1
        && nix::sys::stat::minor(st.st_rdev) == 3;
    is_null.then_some(fd)
}

/// What is taken from the host before anything is mounted.
struct HostFds {
    /// The host's /dev/null, checked to be char 1:3, for masking files (CVE-2025-31133).
    dev_null: Option<OwnedFd>,
    /// The host has /proc/kcore: /dev/core is linked to it (runc's rule).
    kcore: bool,
}

impl HostFds {
    fn open(plan: &Plan) -> Result<HostFds> {
        let dev_null = if plan.masked_paths.is_empty() {
            None
        } else {
            Some(devices::open_host_node(
                "linux.maskedPaths",
                Path::new("/dev/null"),
                libc::S_IFCHR,
                1,
                3,
            )?)
        };
        let kcore = plan.setup_dev && Path::new("/proc/kcore").exists();
        Ok(HostFds { dev_null, kcore })
    }
}

/// Bind the terminal `pty` (a /dev/pts/N fd) onto the container's /dev/console. Call after
/// `setup` (the cwd and root are the container's); /dev/console is resolved confined to the
/// root and the bind is made onto its fd.
pub fn mount_console(pty: std::os::fd::BorrowedFd<'_>) -> Result<()> {
    devices::mount_console(pty)
}

#[cfg(test)]
mod tests;
