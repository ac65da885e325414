//! One cgroup per container: where it is, how the init gets into it, `linux.resources`, and
//! the operations later commands need (pids, freeze, remove).
//!
//! A thin adapter over libcgroups (v1, v2 or systemd, chosen at run time from the host's
//! hierarchy), with three hand-written parts:
//! - the hot path: making the directories and joining them (`prepare`, `join_self`) and
//!   removing them (`remove`); libcgroups' manager re-reads /proc per controller;
//! - the device allowlist: written to v1 `devices.allow`/`devices.deny`, or compiled into a
//!   `BPF_PROG_TYPE_CGROUP_DEVICE` program on v2 (libcgroups' `cgroupsv2_devices` feature
//!   would pull in libbpf-sys, a C build and libelf, and re-attaches its program on every
//!   `apply`, so an `update` of any other field would reset the allowlist);
//! - the fields libcgroups 0.7 skips or gets wrong: v1 `cpu.burst` alone, v1 `weightDevice`
//!   and leaf weights, `network.priorities` (it writes only the first), `rdma`, v2
//!   `swap == limit` (no swap: it writes nothing), v2 `checkBeforeUpdate`.
//!
//! Every other field goes through libcgroups' `apply` once, after vsrun has checked each set
//! field against what this kernel and hierarchy offer; a field that cannot be applied is an
//! error naming it (`linux.resources.memory.swap: swap accounting is off ...`), never skipped.
//! Values that mean "unset" in runc (0 for limits, shares, weights; "" for cpusets; false for
//! disableOOMKiller) are unset here too, so docker's `{"cpu": {"shares": 0}}` never fails.
//!
//! Path decision: `linux.cgroupsPath` absent → `/vsrun/<id>` below every hierarchy root (each
//! v1 controller mount, or the v2 mount): vsrun's containers are easy to find and never
//! collide with another runtime's (runc's default is `/<id>`, crun's `/<id>` too; docker,
//! podman and containerd always send a path). A relative path is taken below the hierarchy
//! roots like an absolute one; `..` and the root cgroup itself are refused. A new container
//! needs a cgroup of its own: an existing one that has processes is refused, so `remove` (which
//! kills what is left) can never hit a cgroup vsrun did not make for this container. With
//! `--systemd-cgroup` the path is runc's `slice:prefix:name` (default
//! `system.slice:vsrun:<id>`); libcgroups drives systemd over D-Bus on pure v2 only, and
//! systemd must be PID 1.

use crate::error::{config, state, Error, Result, StepExt};
use libcgroups::common::{
    create_cgroup_manager, AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt,
    FreezerState,
};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, Spec};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Decided before the clone.
#[derive(Clone, Debug)]
pub struct Plan {
    pub path: PathBuf,
    pub systemd: bool,
    /// `Some` for a new container: its `linux.resources` (default when absent; the device
    /// allowlist applies even then, as with runc). `None` joins the existing cgroup as it is,
    /// which is what `exec` does.
    pub resources: Option<LinuxResources>,
    /// `exec --cgroup`: existing sub-cgroups of the container's to join instead.
    pub sub: SubCgroups,
    /// Rootless mode (`rootless.rs`): a directory the user may not create or join is skipped
    /// unless a `linux.resources` field needs it, and the device allowlist is not written.
    pub rootless: bool,
}

/// runc's `exec --cgroup`: paths below the container's cgroup, already checked to stay there
/// (`below`), relative to it.
#[derive(Clone, Debug, Default)]
pub struct SubCgroups {
    /// `--cgroup PATH`: the same sub-cgroup in every hierarchy.
    pub all: Option<PathBuf>,
    /// `--cgroup CONTROLLER[,CONTROLLER...]:PATH`; a named hierarchy is `name=systemd`.
    pub by_controller: Vec<(String, PathBuf)>,
}

impl SubCgroups {
    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.by_controller.is_empty()
    }
}

/// Where `sub` leads from the cgroup `container`, relative to it, or `None` when it leaves
/// it. Resolved lexically, as runc does (`path.Join`): `/x` is below the container too, and
/// so is `../<own name>/x`. Component-wise, so `../<name>-other` is an escape (runc's string
/// prefix check lets that one through).
pub fn below(container: &Path, sub: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let base: Vec<_> = container
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    let mut joined = base.clone();
    for c in sub.components() {
        match c {
            Component::Normal(_) => joined.push(c),
            Component::ParentDir => {
                joined.pop();
            }
            _ => {}
        }
    }
    joined
        .strip_prefix(base.as_slice())
        .map(|rest| rest.iter().collect())
}

/// The cgroup of a container whose config has no `linux.cgroupsPath`.
pub fn default_path(id: &str) -> PathBuf {
    PathBuf::from(format!("/vsrun/{id}"))
}

/// Everything about the cgroup that can be decided or refused before anything exists: the
/// path, the driver, every resource value, and the fields this hierarchy cannot have at all.
pub fn plan(spec: &Spec, id: &str, systemd: bool, rootless: bool) -> Result<Plan> {
    let linux = spec.linux().as_ref();
    let path = match linux.and_then(|l| l.cgroups_path().clone()) {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ if systemd => PathBuf::from(format!("system.slice:vsrun:{id}")),
        _ => default_path(id),
    };
    let mut resources = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    if !systemd {
        drop_kernel_memory_without_files(&mut resources, layout()?);
    }
    if systemd {
        check_systemd(&path)?;
    } else {
        check_path(&path)?;
    }
    validate(&resources)?;
    if !systemd {
        refuse_for_layout(&normalize(&resources), layout()?)?;
    }
    Ok(Plan {
        path,
        systemd,
        resources: Some(resources),
        sub: SubCgroups::default(),
        rootless,
    })
}

fn check_path(path: &Path) -> Result<()> {
    if path
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(config(
            "linux.cgroupsPath",
            format!("{}: must not contain ..", path.display()),
        ));
    }
    if rel(path).as_os_str().is_empty() {
        return Err(config(
            "linux.cgroupsPath",
            format!(
                "{}: the root cgroup cannot be a container's cgroup",
                path.display()
            ),
        ));
    }
    Ok(())
}

fn check_systemd(path: &Path) -> Result<()> {
    if path.to_string_lossy().split(':').count() != 3 {
        return Err(config(
            "linux.cgroupsPath",
            format!(
                "{}: with --systemd-cgroup it must be slice:prefix:name",
                path.display()
            ),
        ));
    }
    if !Path::new("/run/systemd/system").is_dir() {
        return Err(config(
            "--systemd-cgroup",
            "systemd is not running on this host (no /run/systemd/system): \
             leave out --systemd-cgroup to use the cgroupfs driver",
        ));
    }
    if !is_unified(Path::new(CGROUP_ROOT)) {
        return Err(config(
            "--systemd-cgroup",
            "the systemd driver (libcgroups) needs a pure cgroup v2 host; this host is cgroup v1",
        ));
    }
    Ok(())
}

fn rel(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

// ---------------------------------------------------------------------------------------------
// The host's hierarchy

enum Layout {
    /// cgroup2 mounted at /sys/fs/cgroup.
    V2,
    /// v1 controller mounts under /sys/fs/cgroup; `hybrid` when a cgroup2 mount sits beside
    /// them (systemd's /sys/fs/cgroup/unified, whose controllers are all bound to v1).
    V1 {
        hierarchies: Vec<Hierarchy>,
        hybrid: bool,
        /// Named hierarchies without controllers (name=systemd): joined like runc does, so
        /// the container's view of them is its own directory, not the host's root.
        named: Vec<PathBuf>,
        /// The hybrid cgroup2 mount (/sys/fs/cgroup/unified): joined too, by CLONE_INTO_CGROUP.
        unified: Option<PathBuf>,
    },
}

struct Hierarchy {
    mount: PathBuf,
    controllers: Vec<String>,
}

impl Layout {
    fn is_v2(&self) -> bool {
        matches!(self, Layout::V2)
    }

    /// Where the container is a member, as (v1 dirs joined through `tasks`, the v2 dir
    /// joined by CLONE_INTO_CGROUP): every controller and named hierarchy and, on a hybrid
    /// host, the unified tree, as runc does.
    fn member_dirs(&self, path: &Path) -> (Vec<PathBuf>, Option<PathBuf>) {
        match self {
            Layout::V2 => (Vec::new(), Some(Path::new(CGROUP_ROOT).join(rel(path)))),
            Layout::V1 { named, unified, .. } => {
                let mut v1 = self.dirs(path);
                v1.extend(named.iter().map(|m| m.join(rel(path))));
                (v1, unified.as_ref().map(|u| u.join(rel(path))))
            }
        }
    }

    /// `member_dirs` moved down to the sub-cgroups of `exec --cgroup`. A controller form names
    /// a v1 hierarchy by any of its controllers, or a named one as `name=<mount>`; pure v2 and
    /// the hybrid unified tree only move with the every-hierarchy form, as in runc.
    fn sub_dirs(&self, path: &Path, sub: &SubCgroups) -> Result<(Vec<PathBuf>, Option<PathBuf>)> {
        let (mut v1, mut v2) = self.member_dirs(path);
        let names: Vec<Vec<String>> = match self {
            Layout::V2 => Vec::new(),
            Layout::V1 {
                hierarchies, named, ..
            } => hierarchies
                .iter()
                .map(|h| h.controllers.clone())
                .chain(named.iter().map(|m| {
                    let name = m.file_name().unwrap_or_default().to_string_lossy();
                    vec![format!("name={name}")]
                }))
                .collect(),
        };
        if let Some(all) = &sub.all {
            v1.iter_mut().for_each(|d| d.push(all));
            if let Some(d) = v2.as_mut() {
                d.push(all);
            }
        }
        for (controller, p) in &sub.by_controller {
            let i = names
                .iter()
                .position(|n| n.contains(controller))
                .ok_or_else(|| config("--cgroup", format!("unknown controller {controller:?}")))?;
            v1[i].push(p);
        }
        Ok((v1, v2))
    }

    /// The container's directory in every controller hierarchy: one on v2; on v1 one per
    /// controller mount.
    fn dirs(&self, path: &Path) -> Vec<PathBuf> {
        match self {
            Layout::V2 => vec![Path::new(CGROUP_ROOT).join(rel(path))],
            Layout::V1 { hierarchies, .. } => hierarchies
                .iter()
                .map(|h| h.mount.join(rel(path)))
                .collect(),
        }
    }

    /// Where the files of `controller` are for this container (v2: its one directory).
    fn dir(&self, controller: &str, path: &Path) -> Option<PathBuf> {
        match self {
            Layout::V2 => Some(Path::new(CGROUP_ROOT).join(rel(path))),
            Layout::V1 { hierarchies, .. } => hierarchies
                .iter()
                .find(|h| h.controllers.iter().any(|c| c == controller))
                .map(|h| h.mount.join(rel(path))),
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Layout::V2 => "cgroup v2",
            Layout::V1 { hybrid: true, .. } => "v1 hybrid",
            Layout::V1 { hybrid: false, .. } => "cgroup v1",
        }
    }
}

/// Read once per vsrun process (`prepare` and `finish` both need it).
fn layout() -> Result<&'static Layout> {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    if let Some(l) = LAYOUT.get() {
        return Ok(l);
    }
    let l =
        detect_layout().step(|| "read /proc/self/mountinfo for the cgroup hierarchies".into())?;
    Ok(LAYOUT.get_or_init(|| l))
}

fn detect_layout() -> std::io::Result<Layout> {
    if is_unified(Path::new(CGROUP_ROOT)) {
        return Ok(Layout::V2);
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mut hierarchies: Vec<Hierarchy> = Vec::new();
    let mut hybrid = false;
    let mut named: Vec<PathBuf> = Vec::new();
    let mut unified = None;
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or_default();
        let super_opts = post.nth(1).unwrap_or_default();
        let mount_point = pre.split(' ').nth(4).unwrap_or_default();
        if !mount_point.starts_with(CGROUP_ROOT) {
            continue;
        }
        if fstype == "cgroup2" {
            hybrid = true;
            unified.get_or_insert_with(|| PathBuf::from(mount_point));
            continue;
        }
        if fstype != "cgroup" {
            continue;
        }
        let controllers: Vec<String> = super_opts
            .split(',')
            .filter(|o| {
                !o.starts_with("name=")
                    && !o.starts_with("release_agent=")
                    && !matches!(
                        *o,
                        "rw" | "ro"
                            | "xattr"
                            | "noprefix"
                            | "clone_children"
                            | "cpuset_v2_mode"
                            | "none"
                    )
            })
            .map(String::from)
            .collect();
        if controllers.is_empty() && super_opts.split(',').any(|o| o.starts_with("name=")) {
            if !named.iter().any(|m| m == Path::new(mount_point)) {
                named.push(PathBuf::from(mount_point));
            }
            continue;
        }
        if !controllers.is_empty() && !hierarchies.iter().any(|h| h.mount == *mount_point) {
            hierarchies.push(Hierarchy {
                mount: PathBuf::from(mount_point),
                controllers,
            });
        }
    }
    hierarchies.sort_by(|a, b| a.mount.cmp(&b.mount));
    Ok(Layout::V1 {
        hierarchies,
        hybrid,
        named,
        unified,
    })
}

fn is_unified(p: &Path) -> bool {
    nix::sys::statfs::statfs(p)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

fn manager(path: &Path, systemd: bool, id: &str) -> Result<AnyCgroupManager> {
    create_cgroup_manager(CgroupConfig {
        cgroup_path: path.to_path_buf(),
        systemd_cgroup: systemd,
        container_name: id.to_string(),
    })
    .map_err(|e| Error::Os {
        step: format!("cgroup manager for {}", path.display()),
        source: std::io::Error::other(e.to_string()),
    })
}

// ---------------------------------------------------------------------------------------------
// Joining

/// How the init gets into its cgroup, decided and made ready before the clone.
///
/// Moving a process by writing its pid to `cgroup.procs` takes the kernel's cgroup-wide
/// threadgroup rwsem for writing, and the first such write costs an RCU grace period: 13 ms of
/// a `run` when measured here (strace -r). Two ways around it, both used:
/// - pure v2: clone3(CLONE_INTO_CGROUP) with the directory's fd: born in the cgroup;
/// - v1: the init moves *itself* by writing "0" to each hierarchy's `tasks` file; a thread
///   moving itself needs no global lock (kernel: cgroup_procs_write_start). It does so as its
///   first step, while it still has host root's credentials.
#[derive(Default)]
pub struct Joining {
    /// v1 `tasks` files the init writes "0" to.
    pub tasks: Vec<PathBuf>,
    /// The v2 directory for CLONE_INTO_CGROUP.
    pub v2_dir: Option<std::os::fd::OwnedFd>,
}

/// Parent, before the clone: make the directories (cpuset values on v1, controllers enabled
/// down the path on v2), check every resource field against the files the kernel offers, and
/// say how to join. On error the directories made here are gone again. systemd-managed
/// cgroups are joined by the parent after the clone (`finish`).
pub fn prepare(plan: &Plan) -> Result<Joining> {
    let mut j = Joining::default();
    if plan.systemd {
        return Ok(j);
    }
    let layout = layout()?;
    let (v1_dirs, v2_dir) = if plan.sub.is_empty() {
        layout.member_dirs(&plan.path)
    } else {
        layout.sub_dirs(&plan.path, &plan.sub)?
    };
    let dirs: Vec<PathBuf> = v1_dirs.iter().cloned().chain(v2_dir.clone()).collect();
    let new = plan.resources.is_some();
    let mut made = Vec::new();
    let mut skipped = Vec::new();
    let made_all = (|| -> Result<()> {
        for dir in &dirs {
            if plan.rootless && !may_join(dir, Some(dir) != v2_dir.as_ref()) {
                skipped.push(dir.clone());
                continue;
            }
            if dir.is_dir() {
                if new && has_processes(dir) {
                    return Err(config(
                        "linux.cgroupsPath",
                        format!(
                            "{}: {} already has processes; a container needs a cgroup of its own",
                            plan.path.display(),
                            dir.display()
                        ),
                    ));
                }
            } else if !plan.sub.is_empty() {
                // As with runc: exec joins an existing sub-cgroup, never makes one.
                return Err(config(
                    "--cgroup",
                    format!("{}: no such cgroup", dir.display()),
                ));
            } else {
                made.extend(missing_dirs(dir));
            }
            make_dir(dir, Some(dir) != v2_dir.as_ref())
                .step(|| format!("create cgroup {}", dir.display()))?;
            if new {
                refuse_frozen(&plan.path, dir)?;
            }
        }
        if let Some(r) = &plan.resources {
            refuse_unwritable(&normalize(r), layout, &plan.path, &skipped)?;
            if layout.is_v2() && skipped.is_empty() {
                enable_controllers(&plan.path);
            }
            check_host(&normalize(r), layout, &plan.path)?;
        }
        Ok(())
    })();
    if let Err(e) = made_all {
        for d in made.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
        return Err(e);
    }
    j.tasks = v1_dirs
        .iter()
        .filter(|d| !skipped.contains(d))
        .map(|d| d.join("tasks"))
        .collect();
    if let Some(dir) = v2_dir.filter(|d| !skipped.contains(d)) {
        let fd = std::fs::File::open(&dir).step(|| format!("open cgroup {}", dir.display()))?;
        j.v2_dir = Some(fd.into());
    }
    Ok(j)
}

/// Rootless: whether this user may join `dir` (write its `tasks` or `cgroup.procs`) or, when it
/// does not exist yet, create it (write and search its nearest existing ancestor).
fn may_join(dir: &Path, v1: bool) -> bool {
    use nix::unistd::{access, AccessFlags};
    if dir.is_dir() {
        let file = if v1 { "tasks" } else { "cgroup.procs" };
        return access(&dir.join(file), AccessFlags::W_OK).is_ok();
    }
    dir.ancestors()
        .skip(1)
        .find(|d| d.is_dir())
        .is_some_and(|d| access(d, AccessFlags::W_OK | AccessFlags::X_OK).is_ok())
}

/// Rootless, as runc does: a cgroup the user cannot create is skipped when the config sets no
/// limit that lives there; a field that does is refused by name (runc: "cannot set ... limit:
/// container could not join or create cgroup").
fn refuse_unwritable(
    n: &LinuxResources,
    layout: &Layout,
    path: &Path,
    skipped: &[PathBuf],
) -> Result<()> {
    if skipped.is_empty() {
        return Ok(());
    }
    for need in needs(n, layout.is_v2()) {
        let dir = layout.dir(need.controller, path);
        if let Some(dir) = dir.filter(|d| skipped.contains(d)) {
            return Err(config(
                need.field,
                format!(
                    "rootless: uid {} cannot create or join the cgroup {} ({}); remove the limit, or run where the user owns a delegated cgroup",
                    nix::unistd::geteuid(),
                    dir.display(),
                    need.controller
                ),
            ));
        }
    }
    Ok(())
}

/// `dir` and each of its missing ancestors, outermost first: what `create_dir_all` will make,
/// so that a failed prepare removes the parents it made too (a path like `/a/b`).
fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.is_dir())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    missing
}

/// An init joining a frozen cgroup stops before its first step and `create` waits for it
/// forever. runc 1.1.5 refuses such a cgroup ("container's cgroup unexpectedly frozen") rather
/// than thaw it: whoever froze it meant it, and it may not be vsrun's. Checked after mkdir, so
/// a new directory below a frozen one (which the kernel freezes at birth) is caught too.
fn refuse_frozen(path: &Path, dir: &Path) -> Result<()> {
    if !is_frozen_dir(dir) {
        return Ok(());
    }
    Err(config(
        "linux.cgroupsPath",
        format!(
            "{}: {} is frozen; thaw it (or resume its container) before creating a container in it",
            path.display(),
            dir.display()
        ),
    ))
}

/// v1: freezer.state is FROZEN or FREEZING, its own or an ancestor's. v2: cgroup.freeze is
/// this cgroup's own request; cgroup.events `frozen 1` also covers an ancestor's.
fn is_frozen_dir(dir: &Path) -> bool {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let v1 = read("freezer.state");
    if !v1.trim().is_empty() && v1.trim() != "THAWED" {
        return true;
    }
    read("cgroup.freeze").trim() == "1" || read("cgroup.events").lines().any(|l| l == "frozen 1")
}

fn has_processes(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|s| !s.trim().is_empty())
}

/// Init, first step: move this (single-threaded) process into its v1 cgroups.
pub fn join_self(j: &Joining) -> Result<()> {
    for t in &j.tasks {
        std::fs::write(t, "0")
            .step(|| format!("join cgroup {}", t.parent().unwrap_or(t).display()))?;
    }
    Ok(())
}

/// Parent, after the clone and before the init is released: systemd placement, the device
/// allowlist and the resources (applied to the directory; membership does not matter for
/// writing limits).
pub fn finish(plan: &Plan, id: &str, pid: i32) -> Result<()> {
    if plan.systemd {
        let m = manager(&plan.path, true, id)?;
        m.add_task(nix::unistd::Pid::from_raw(pid))
            .map_err(|e| Error::Os {
                step: format!(
                    "put the init into its systemd scope (linux.cgroupsPath {})",
                    plan.path.display()
                ),
                source: std::io::Error::other(e.to_string()),
            })?;
        if let Some(r) = &plan.resources {
            apply_systemd(&m, r)?;
        }
        return Ok(());
    }
    let Some(r) = &plan.resources else {
        return Ok(());
    };
    let layout = layout()?;
    // After the rest: libcgroups' v1 manager rewrites its own default device list (which
    // allows /dev/console, unlike runc) whenever it applies anything.
    apply_rest(layout, &plan.path, &normalize(r))?;
    if plan.rootless {
        // As runc: an unprivileged user can neither write devices.allow/deny nor attach a
        // device program, and mknod of a device is refused to it anyway.
        crate::log::debug("rootless: the cgroup device allowlist is not applied");
        return Ok(());
    }
    apply_devices(layout, &plan.path, r.devices().as_deref())
}

/// Apply `linux.resources` to a running container (`update`). Fields not given stay as they
/// are, the device allowlist included; a given `devices` list replaces the allowlist.
pub fn update(path: &Path, systemd: bool, id: &str, r: &LinuxResources) -> Result<()> {
    validate(r)?;
    if systemd {
        return apply_systemd(&manager(path, true, id)?, r);
    }
    let layout = layout()?;
    let mut r = r.clone();
    drop_kernel_memory_without_files(&mut r, layout);
    let r = &r;
    let n = normalize(r);
    refuse_for_layout(&n, layout)?;
    check_host(&n, layout, path)?;
    check_cpuset_within_host(r, layout)?;
    let before = v1_devices_list(layout, path);
    apply_rest(layout, path, &n)?;
    match r.devices() {
        Some(d) => apply_devices(layout, path, Some(d)),
        None => restore_console_rule(layout, path, before.as_deref()),
    }
}

/// cpus and mems the host does not have are only found by the kernel, after earlier fields
/// were already written; checked first so that a bad update changes nothing (runc rolls back).
fn check_cpuset_within_host(r: &LinuxResources, layout: &Layout) -> Result<()> {
    let Some(cpu) = r.cpu() else { return Ok(()) };
    let root = Path::new(CGROUP_ROOT);
    let host = |v1: &str, v2: &str| {
        let file = if layout.is_v2() {
            root.join(v2)
        } else {
            root.join("cpuset").join(v1)
        };
        std::fs::read_to_string(file).ok()
    };
    for (field, want, have) in [
        (
            "linux.resources.cpu.cpus",
            cpu.cpus(),
            host("cpuset.cpus", "cpuset.cpus.effective"),
        ),
        (
            "linux.resources.cpu.mems",
            cpu.mems(),
            host("cpuset.mems", "cpuset.mems.effective"),
        ),
    ] {
        let (Some(want), Some(have)) = (want.as_deref().filter(|w| !w.is_empty()), have) else {
            continue;
        };
        let have = crate::task::cpu_list(field, have.trim()).unwrap_or_default();
        for n in crate::task::cpu_list(field, want)? {
            if !have.contains(&n) {
                return Err(config(
                    field,
                    format!("{want:?}: {n} is not among the host's"),
                ));
            }
        }
    }
    Ok(())
}

fn v1_devices_list(layout: &Layout, path: &Path) -> Option<String> {
    let dir = layout.dir("devices", path)?;
    std::fs::read_to_string(dir.join("devices.list")).ok()
}

/// An update without `devices` leaves the allowlist as it was; libcgroups' manager adds
/// /dev/console (c 5:1) on its way through, so take that back unless it was there before.
fn restore_console_rule(layout: &Layout, path: &Path, before: Option<&str>) -> Result<()> {
    let (Some(before), Some(dir)) = (before, layout.dir("devices", path)) else {
        return Ok(());
    };
    let had = before
        .lines()
        .any(|l| l.trim() == "c 5:1 rwm" || l.trim() == "a *:* rwm");
    if !had {
        std::fs::write(dir.join("devices.deny"), "c 5:1 rwm").step(|| {
            "keep /dev/console out of the device allowlist (linux.resources.devices)".into()
        })?;
    }
    Ok(())
}

fn make_dir(dir: &Path, v1: bool) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if v1 && dir.join("cpuset.cpus").exists() {
        inherit_cpuset(dir)?;
    }
    Ok(())
}

/// A new v1 cpuset starts with no cpus and mems, and a task cannot join it until they are set:
/// copy them down from the nearest ancestor that has them.
fn inherit_cpuset(dir: &Path) -> std::io::Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let mut chain = vec![dir.to_path_buf()];
        let mut value = String::new();
        let mut p = dir.parent();
        while let Some(d) = p {
            let v = std::fs::read_to_string(d.join(file)).unwrap_or_default();
            if !v.trim().is_empty() {
                value = v;
                break;
            }
            chain.push(d.to_path_buf());
            p = d.parent();
        }
        for d in chain.iter().rev() {
            if std::fs::read_to_string(d.join(file))
                .unwrap_or_default()
                .trim()
                .is_empty()
            {
                std::fs::write(d.join(file), value.trim())?;
            }
        }
    }
    Ok(())
}

/// v2: a child has a controller's files only when its parent lists the controller in
/// `cgroup.subtree_control`. Enable every available controller on each ancestor of the
/// container's cgroup (as runc and libcgroups do). Best effort: a controller that cannot be
/// enabled shows up later as the named field whose files are missing.
fn enable_controllers(path: &Path) {
    let mut dir = PathBuf::from(CGROUP_ROOT);
    let parts: Vec<_> = rel(path).components().collect();
    for (i, part) in parts.iter().enumerate() {
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let (available, enabled) = (read("cgroup.controllers"), read("cgroup.subtree_control"));
        let enabled: Vec<&str> = enabled.split_whitespace().collect();
        let missing: Vec<String> = available
            .split_whitespace()
            .filter(|c| !enabled.contains(c))
            .map(|c| format!("+{c}"))
            .collect();
        if !missing.is_empty() {
            let control = dir.join("cgroup.subtree_control");
            if std::fs::write(&control, missing.join(" ")).is_err() {
                for m in &missing {
                    let _ = std::fs::write(&control, m);
                }
            }
        }
        if i + 1 < parts.len() {
            dir.push(part);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validation: values (before the clone, no host access except the hugepage sizes)

fn field(f: &str) -> String {
    format!("linux.resources.{f}")
}

fn bad(f: &str, msg: impl Into<String>) -> Error {
    config(field(f), msg)
}

/// What is wrong with a value, whatever the host. Zero values that mean "unset" pass.
fn validate(r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        for (name, v) in [
            ("memory.limit", m.limit()),
            ("memory.reservation", m.reservation()),
            ("memory.swap", m.swap()),
            ("memory.kernel", m.kernel()),
            ("memory.kernelTCP", m.kernel_tcp()),
        ] {
            if let Some(v) = v.filter(|v| *v < -1) {
                return Err(bad(
                    name,
                    format!("{v}: must be a number of bytes, or -1 for no limit"),
                ));
            }
        }
        let limit = m.limit().unwrap_or(0);
        if let Some(swap) = m.swap().filter(|s| *s > 0) {
            if limit <= 0 {
                return Err(bad(
                    "memory.swap",
                    format!("{swap}: a memory+swap limit needs memory.limit"),
                ));
            }
            if swap < limit {
                return Err(bad(
                    "memory.swap",
                    format!(
                        "{swap}: below memory.limit {limit} (swap is the limit of memory and swap together)"
                    ),
                ));
            }
        }
        if let Some(s) = m.swappiness().filter(|s| *s > 100) {
            return Err(bad("memory.swappiness", format!("{s}: must be 0..100")));
        }
        if m.use_hierarchy() == Some(false) {
            return Err(bad(
                "memory.useHierarchy",
                "false: memory accounting is always hierarchical on this kernel",
            ));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(q) = c.quota().filter(|q| *q != 0 && *q != -1) {
            if q < 1000 {
                return Err(bad(
                    "cpu.quota",
                    format!("{q}: must be at least 1000 (µs), or -1 for no limit"),
                ));
            }
        }
        if let Some(p) = c.period().filter(|p| *p != 0) {
            if !(1000..=1_000_000).contains(&p) {
                return Err(bad(
                    "cpu.period",
                    format!("{p}: must be 1000..1000000 (µs)"),
                ));
            }
        }
        if let Some(rt) = c.realtime_runtime().filter(|v| *v < -1) {
            return Err(bad(
                "cpu.realtimeRuntime",
                format!("{rt}: must be µs, or -1 for no limit"),
            ));
        }
        if let Some(i) = c.idle().filter(|i| !matches!(i, 0 | 1)) {
            return Err(bad("cpu.idle", format!("{i}: must be 0 or 1")));
        }
        for (name, v) in [("cpu.cpus", c.cpus()), ("cpu.mems", c.mems())] {
            if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
                if !valid_cpu_list(v) {
                    return Err(bad(name, format!("{v:?}: not a list like \"0-3,5\"")));
                }
            }
        }
    }
    if let Some(b) = r.block_io() {
        let weight = |name: &str, w: Option<u16>| match w {
            Some(w) if w != 0 && !(10..=1000).contains(&w) => {
                Err(bad(name, format!("{w}: must be 10..1000")))
            }
            _ => Ok(()),
        };
        weight("blockIO.weight", b.weight())?;
        weight("blockIO.leafWeight", b.leaf_weight())?;
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            let f = format!("blockIO.weightDevice[{i}]");
            device_numbers(&f, d.major(), d.minor())?;
            weight(&format!("{f}.weight"), d.weight())?;
            weight(&format!("{f}.leafWeight"), d.leaf_weight())?;
        }
        for (name, list) in throttles(b) {
            for (i, d) in list.iter().enumerate() {
                device_numbers(&format!("blockIO.{name}[{i}]"), d.major(), d.minor())?;
            }
        }
    }
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let f = format!("hugepageLimits[{i}]");
        let Some(kb) = hugepage_kb(h.page_size()) else {
            return Err(bad(
                &format!("{f}.pageSize"),
                format!("{:?}: not a size like \"2MB\" or \"1GB\"", h.page_size()),
            ));
        };
        if !Path::new(&format!("/sys/kernel/mm/hugepages/hugepages-{kb}kB")).exists() {
            return Err(bad(
                &format!("{f}.pageSize"),
                format!(
                    "{:?}: this host has no such huge page size (see /sys/kernel/mm/hugepages)",
                    h.page_size()
                ),
            ));
        }
        if h.limit() < 0 {
            return Err(bad(
                &format!("{f}.limit"),
                format!("{}: must be a number of bytes", h.limit()),
            ));
        }
    }
    if let Some(n) = r.network() {
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                return Err(bad(
                    &format!("network.priorities[{i}].name"),
                    format!("{:?}: not an interface name", p.name()),
                ));
            }
        }
    }
    for d in r.rdma().iter().flat_map(|m| m.keys()) {
        if d.is_empty() || d.contains(char::is_whitespace) {
            return Err(bad("rdma", format!("{d:?}: not an RDMA device name")));
        }
    }
    for key in r.unified().iter().flat_map(|m| m.keys()) {
        check_unified_key(key)?;
    }
    device_rules(r.devices().as_deref())?;
    Ok(())
}

fn device_numbers(f: &str, major: i64, minor: i64) -> Result<()> {
    if major < 0 || minor < 0 || major > u32::MAX as i64 || minor > u32::MAX as i64 {
        return Err(bad(
            f,
            format!("{major}:{minor}: device numbers must be non-negative"),
        ));
    }
    Ok(())
}

/// The kernel's list format (bitmap_parselist): `N`, `N-M` and `N-M:used/group`, by commas.
fn valid_cpu_list(s: &str) -> bool {
    s.trim().split(',').all(|part| {
        let (range, stride) = match part.trim().split_once(':') {
            Some((r, s)) => (r, Some(s)),
            None => (part.trim(), None),
        };
        let ok_range = match range.split_once('-') {
            None => range.parse::<u32>().is_ok() && stride.is_none(),
            Some((a, b)) => match (a.parse::<u32>(), b.parse::<u32>()) {
                (Ok(lo), Ok(hi)) => lo <= hi,
                _ => false,
            },
        };
        let ok_stride = stride.is_none_or(|s| {
            s.split_once('/').is_some_and(|(u, g)| {
                u.parse::<u32>().is_ok() && g.parse::<u32>().is_ok_and(|g| g > 0)
            })
        });
        ok_range && ok_stride
    })
}

/// "2MB" → 2048 (kB), the unit of /sys/kernel/mm/hugepages and of the cgroup file names.
fn hugepage_kb(size: &str) -> Option<u64> {
    let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: u64 = digits.parse().ok()?;
    let kb = match &size[digits.len()..] {
        "KB" => n,
        "MB" => n.checked_mul(1 << 10)?,
        "GB" => n.checked_mul(1 << 20)?,
        _ => return None,
    };
    (n > 0 && kb.is_power_of_two()).then_some(kb)
}

/// Keys of `linux.resources.unified` are file names in the container's cgroup. A path, or a
/// file that moves or kills processes or changes the tree, would reach past the limits.
fn check_unified_key(key: &str) -> Result<()> {
    let f = format!("unified.{key}");
    if key.is_empty() || key.contains('/') || key.contains('\0') || !key.contains('.') {
        return Err(bad(&f, "not a cgroup v2 file name like \"memory.high\""));
    }
    if matches!(
        key,
        "cgroup.procs"
            | "cgroup.threads"
            | "cgroup.subtree_control"
            | "cgroup.kill"
            | "cgroup.freeze"
            | "cgroup.type"
    ) {
        return Err(bad(
            &f,
            "manages processes or the tree, not a resource; vsrun does not write it",
        ));
    }
    Ok(())
}

fn throttles(
    b: &oci_spec::runtime::LinuxBlockIo,
) -> [(&'static str, &[oci_spec::runtime::LinuxThrottleDevice]); 4] {
    fn l(
        v: &Option<Vec<oci_spec::runtime::LinuxThrottleDevice>>,
    ) -> &[oci_spec::runtime::LinuxThrottleDevice] {
        v.as_deref().unwrap_or_default()
    }
    [
        ("throttleReadBpsDevice", l(b.throttle_read_bps_device())),
        ("throttleWriteBpsDevice", l(b.throttle_write_bps_device())),
        ("throttleReadIOPSDevice", l(b.throttle_read_iops_device())),
        ("throttleWriteIOPSDevice", l(b.throttle_write_iops_device())),
    ]
}

/// The resources with runc's "unset" values removed: 0 for limits, shares, periods, weights
/// and pids; "" for cpusets; false for disableOOMKiller; true for useHierarchy; empty lists.
/// Devices are handled on their own and dropped here.
fn normalize(r: &LinuxResources) -> LinuxResources {
    let mut n = LinuxResources::default();
    let nz_i = |v: Option<i64>| v.filter(|v| *v != 0);
    let nz_u = |v: Option<u64>| v.filter(|v| *v != 0);
    if let Some(m) = r.memory() {
        let mut m = m.clone();
        m.set_limit(nz_i(m.limit()));
        m.set_reservation(nz_i(m.reservation()));
        m.set_swap(nz_i(m.swap()));
        // docker 20.10 sends `"kernel": 0` in every update: 0 means unset, as for runc.
        m.set_kernel(nz_i(m.kernel()));
        m.set_kernel_tcp(nz_i(m.kernel_tcp()));
        m.set_disable_oom_killer(m.disable_oom_killer().filter(|d| *d));
        m.set_use_hierarchy(m.use_hierarchy().filter(|u| !*u));
        m.set_check_before_update(
            m.check_before_update()
                .filter(|c| *c && m.limit().is_some_and(|l| l > 0)),
        );
        if m != Default::default() {
            n.set_memory(Some(m));
        }
    }
    if let Some(c) = r.cpu() {
        let mut c = c.clone();
        c.set_shares(nz_u(c.shares()));
        c.set_quota(nz_i(c.quota()));
        c.set_period(nz_u(c.period()));
        c.set_realtime_runtime(nz_i(c.realtime_runtime()));
        c.set_realtime_period(nz_u(c.realtime_period()));
        c.set_cpus(c.cpus().clone().filter(|s| !s.trim().is_empty()));
        c.set_mems(c.mems().clone().filter(|s| !s.trim().is_empty()));
        if c != Default::default() {
            n.set_cpu(Some(c));
        }
    }
    n.set_pids(r.pids().filter(|p| p.limit() != 0));
    if let Some(b) = r.block_io() {
        let mut b = b.clone();
        b.set_weight(b.weight().filter(|w| *w != 0));
        b.set_leaf_weight(b.leaf_weight().filter(|w| *w != 0));
        let wd: Vec<_> = b
            .weight_device()
            .iter()
            .flatten()
            .filter_map(|d| {
                let (w, lw) = (
                    d.weight().filter(|w| *w != 0),
                    d.leaf_weight().filter(|w| *w != 0),
                );
                if w.is_none() && lw.is_none() {
                    return None;
                }
                let mut b = oci_spec::runtime::LinuxWeightDeviceBuilder::default()
                    .major(d.major())
                    .minor(d.minor());
                if let Some(w) = w {
                    b = b.weight(w);
                }
                if let Some(w) = lw {
                    b = b.leaf_weight(w);
                }
                b.build().ok()
            })
            .collect();
        b.set_weight_device((!wd.is_empty()).then_some(wd));
        let ne = |v: Option<Vec<_>>| v.filter(|v: &Vec<_>| !v.is_empty());
        b.set_throttle_read_bps_device(ne(b.throttle_read_bps_device().clone()));
        b.set_throttle_write_bps_device(ne(b.throttle_write_bps_device().clone()));
        b.set_throttle_read_iops_device(ne(b.throttle_read_iops_device().clone()));
        b.set_throttle_write_iops_device(ne(b.throttle_write_iops_device().clone()));
        if b != Default::default() {
            n.set_block_io(Some(b));
        }
    }
    n.set_hugepage_limits(r.hugepage_limits().clone().filter(|h| !h.is_empty()));
    if let Some(net) = r.network() {
        let mut net = net.clone();
        net.set_class_id(net.class_id().filter(|c| *c != 0));
        net.set_priorities(net.priorities().clone().filter(|p| !p.is_empty()));
        if net != Default::default() {
            n.set_network(Some(net));
        }
    }
    n.set_rdma(r.rdma().clone().filter(|m| !m.is_empty()));
    n.set_unified(r.unified().clone().filter(|m| !m.is_empty()));
    n
}

// ---------------------------------------------------------------------------------------------
// Validation: the host (what this kernel and hierarchy can apply)

/// Fields that need the other cgroup version whatever the kernel: refused before the clone.
fn refuse_for_layout(n: &LinuxResources, layout: &Layout) -> Result<()> {
    let kind = layout.describe();
    if !layout.is_v2() {
        if n.unified().is_some() {
            return Err(bad(
                "unified",
                format!("needs cgroup v2, this host is {kind}"),
            ));
        }
        return Ok(());
    }
    let v1 = |f: &str, why: &str| {
        Err(bad(
            f,
            format!("needs cgroup v1 ({why}); this host is {kind}"),
        ))
    };
    if let Some(m) = n.memory() {
        if m.swappiness().is_some() {
            return v1("memory.swappiness", "v2 has no per-cgroup swappiness");
        }
        if m.disable_oom_killer().is_some() {
            return v1(
                "memory.disableOOMKiller",
                "v2 has no switch for the OOM killer",
            );
        }
    }
    if let Some(c) = n.cpu() {
        if c.realtime_runtime().is_some() {
            return v1(
                "cpu.realtimeRuntime",
                "v2 has no realtime bandwidth control",
            );
        }
        if c.realtime_period().is_some() {
            return v1("cpu.realtimePeriod", "v2 has no realtime bandwidth control");
        }
    }
    if let Some(b) = n.block_io() {
        if b.leaf_weight().is_some() {
            return v1("blockIO.leafWeight", "leaf weights are a CFQ feature");
        }
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            if d.leaf_weight().is_some() {
                return v1(
                    &format!("blockIO.weightDevice[{i}].leafWeight"),
                    "leaf weights are a CFQ feature",
                );
            }
        }
    }
    if let Some(net) = n.network() {
        if net.class_id().is_some() {
            return v1("network.classID", "net_cls; v2 classifies traffic with BPF");
        }
        if net.priorities().is_some() {
            return v1("network.priorities", "net_prio; v2 has no such controller");
        }
    }
    Ok(())
}

/// One set field, the controller and files it needs, and why they would be missing.
struct Need {
    field: String,
    controller: &'static str,
    files: Vec<String>,
    missing: String,
}

fn needs(n: &LinuxResources, v2: bool) -> Vec<Need> {
    let mut out = Vec::new();
    let mut need = |f: &str, controller: &'static str, v1: &[&str], v2f: &[&str], why: &str| {
        out.push(Need {
            field: field(f),
            controller,
            files: (if v2 { v2f } else { v1 })
                .iter()
                .map(|s| s.to_string())
                .collect(),
            missing: why.to_string(),
        })
    };
    if let Some(m) = n.memory() {
        let mem = "memory";
        if m.limit().is_some() {
            need(
                "memory.limit",
                mem,
                &["memory.limit_in_bytes"],
                &["memory.max"],
                "",
            );
        }
        if m.reservation().is_some() {
            need(
                "memory.reservation",
                mem,
                &["memory.soft_limit_in_bytes"],
                &["memory.low"],
                "",
            );
        }
        if m.swap().is_some() {
            need(
                "memory.swap",
                mem,
                &["memory.memsw.limit_in_bytes"],
                &["memory.swap.max"],
                if v2 {
                    "swap accounting is off (memory.swap.max missing)"
                } else {
                    "swap accounting is off (memory.memsw.* missing; boot with swapaccount=1)"
                },
            );
        }
        if m.swappiness().is_some() {
            need("memory.swappiness", mem, &["memory.swappiness"], &[], "");
        }
        if m.disable_oom_killer().is_some() {
            need(
                "memory.disableOOMKiller",
                mem,
                &["memory.oom_control"],
                &[],
                "",
            );
        }
        if m.check_before_update().is_some() {
            need(
                "memory.checkBeforeUpdate",
                mem,
                &["memory.usage_in_bytes"],
                &["memory.current"],
                "",
            );
        }
    }
    if let Some(c) = n.cpu() {
        if c.shares().is_some() {
            need("cpu.shares", "cpu", &["cpu.shares"], &["cpu.weight"], "");
        }
        if c.quota().is_some() {
            need("cpu.quota", "cpu", &["cpu.cfs_quota_us"], &["cpu.max"], "");
        }
        if c.period().is_some() {
            need(
                "cpu.period",
                "cpu",
                &["cpu.cfs_period_us"],
                &["cpu.max"],
                "",
            );
        }
        if c.burst().is_some() {
            need(
                "cpu.burst",
                "cpu",
                &["cpu.cfs_burst_us"],
                &["cpu.max.burst"],
                "this kernel has no CPU burst (needs Linux 5.14+)",
            );
        }
        let rt = "this kernel has no realtime group scheduling (CONFIG_RT_GROUP_SCHED)";
        if c.realtime_runtime().is_some() {
            need(
                "cpu.realtimeRuntime",
                "cpu",
                &["cpu.rt_runtime_us"],
                &[],
                rt,
            );
        }
        if c.realtime_period().is_some() {
            need("cpu.realtimePeriod", "cpu", &["cpu.rt_period_us"], &[], rt);
        }
        if c.idle().is_some() {
            need(
                "cpu.idle",
                "cpu",
                &["cpu.idle"],
                &["cpu.idle"],
                "this kernel has no SCHED_IDLE cgroups (needs Linux 5.15+)",
            );
        }
        if c.cpus().is_some() {
            need("cpu.cpus", "cpuset", &["cpuset.cpus"], &["cpuset.cpus"], "");
        }
        if c.mems().is_some() {
            need("cpu.mems", "cpuset", &["cpuset.mems"], &["cpuset.mems"], "");
        }
    }
    if n.pids().is_some() {
        need("pids.limit", "pids", &["pids.max"], &["pids.max"], "");
    }
    if let Some(b) = n.block_io() {
        let io = if v2 { "io" } else { "blkio" };
        if b.weight().is_some() {
            need(
                "blockIO.weight",
                io,
                &["blkio.weight", "blkio.bfq.weight"],
                &["io.bfq.weight", "io.weight"],
                "no proportional I/O scheduler (CFQ/BFQ) offers a weight",
            );
        }
        if b.leaf_weight().is_some() {
            need(
                "blockIO.leafWeight",
                io,
                &["blkio.leaf_weight"],
                &[],
                "leaf weights existed only with CFQ (removed in Linux 5.0)",
            );
        }
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            if d.weight().is_some() {
                need(
                    &format!("blockIO.weightDevice[{i}]"),
                    io,
                    &["blkio.weight_device", "blkio.bfq.weight_device"],
                    &["io.bfq.weight"],
                    "per-device weights need the BFQ scheduler",
                );
            }
            if d.leaf_weight().is_some() {
                need(
                    &format!("blockIO.weightDevice[{i}].leafWeight"),
                    io,
                    &["blkio.leaf_weight_device"],
                    &[],
                    "leaf weights existed only with CFQ (removed in Linux 5.0)",
                );
            }
        }
        for (name, list) in throttles(b) {
            let file = match name {
                "throttleReadBpsDevice" => "blkio.throttle.read_bps_device",
                "throttleWriteBpsDevice" => "blkio.throttle.write_bps_device",
                "throttleReadIOPSDevice" => "blkio.throttle.read_iops_device",
                _ => "blkio.throttle.write_iops_device",
            };
            for i in 0..list.len() {
                need(
                    &format!("blockIO.{name}[{i}]"),
                    io,
                    &[file],
                    &["io.max"],
                    "this kernel has no I/O throttling (CONFIG_BLK_DEV_THROTTLING)",
                );
            }
        }
    }
    for (i, h) in n.hugepage_limits().iter().flatten().enumerate() {
        let size = h.page_size();
        need(
            &format!("hugepageLimits[{i}]"),
            "hugetlb",
            &[&format!("hugetlb.{size}.limit_in_bytes")],
            &[&format!("hugetlb.{size}.max")],
            "",
        );
    }
    if let Some(net) = n.network() {
        if net.class_id().is_some() {
            need("network.classID", "net_cls", &["net_cls.classid"], &[], "");
        }
        if net.priorities().is_some() {
            need(
                "network.priorities",
                "net_prio",
                &["net_prio.ifpriomap"],
                &[],
                "",
            );
        }
    }
    if n.rdma().is_some() {
        need("rdma", "rdma", &["rdma.max"], &["rdma.max"], "");
    }
    drop(need);
    for key in n.unified().iter().flat_map(|m| m.keys()) {
        let controller: &'static str = match key.split('.').next().unwrap_or_default() {
            "cpu" => "cpu",
            "cpuset" => "cpuset",
            "memory" => "memory",
            "io" => "io",
            "pids" => "pids",
            "hugetlb" => "hugetlb",
            "rdma" => "rdma",
            "misc" => "misc",
            _ => "",
        };
        out.push(Need {
            field: field(&format!("unified.{key}")),
            controller,
            files: vec![key.clone()],
            missing: "no such file in the container's cgroup".into(),
        });
    }
    out
}

/// Every set field against the files of the container's (existing) cgroup.
fn check_host(n: &LinuxResources, layout: &Layout, path: &Path) -> Result<()> {
    let kind = layout.describe();
    let v2_available = match layout {
        Layout::V2 => {
            let dir = Path::new(CGROUP_ROOT).join(rel(path));
            std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default()
        }
        Layout::V1 { .. } => String::new(),
    };
    for need in needs(n, layout.is_v2()) {
        if !need.controller.is_empty() {
            let present = match layout {
                Layout::V2 => v2_available
                    .split_whitespace()
                    .any(|c| c == need.controller),
                Layout::V1 { .. } => layout.dir(need.controller, path).is_some(),
            };
            if !present {
                let why = match layout {
                    Layout::V2 => format!(
                        "the {} controller is not enabled for {} ({kind}: see the parent's cgroup.subtree_control)",
                        need.controller,
                        path.display()
                    ),
                    Layout::V1 { .. } => format!(
                        "the {} controller is not mounted on this host ({kind})",
                        need.controller
                    ),
                };
                return Err(config(need.field, why));
            }
        }
        let Some(dir) = layout.dir(need.controller, path) else {
            continue;
        };
        if need.files.is_empty() || need.files.iter().any(|f| dir.join(f).exists()) {
            continue;
        }
        let why = if need.missing.is_empty() {
            format!("this kernel has no {} ({kind})", need.files.join(" or "))
        } else {
            need.missing
        };
        return Err(config(need.field, why));
    }
    if let Some(b) = n.block_io() {
        for (name, list) in throttles(b) {
            for (i, d) in list.iter().enumerate() {
                block_device_exists(&format!("blockIO.{name}[{i}]"), d.major(), d.minor())?;
            }
        }
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            block_device_exists(&format!("blockIO.weightDevice[{i}]"), d.major(), d.minor())?;
        }
    }
    Ok(())
}

fn block_device_exists(f: &str, major: i64, minor: i64) -> Result<()> {
    if Path::new(&format!("/sys/dev/block/{major}:{minor}")).exists() {
        return Ok(());
    }
    Err(bad(
        f,
        format!("{major}:{minor} is not a block device on this host"),
    ))
}

// ---------------------------------------------------------------------------------------------
// Applying

/// Everything but devices: libcgroups for what it does right, then vsrun's own writes.
fn apply_rest(layout: &Layout, path: &Path, n: &LinuxResources) -> Result<()> {
    if *n == LinuxResources::default() {
        return Ok(());
    }
    check_before_update(n, layout, path)?;
    let lib = for_libcgroups(n, layout, path);
    if lib != LinuxResources::default() {
        let opt = ControllerOpt {
            resources: &lib,
            disable_oom_killer: n
                .memory()
                .as_ref()
                .and_then(|m| m.disable_oom_killer())
                .unwrap_or(false),
            oom_score_adj: None,
            freezer_state: None,
        };
        manager(path, false, "")?
            .apply(&opt)
            .map_err(|e| libcgroups_error(&e.to_string(), n, layout, path))?;
    }
    own_writes(n, layout, path)
}

/// runc's `checkBeforeUpdate`: refuse a memory limit below the current usage instead of
/// letting the kernel reclaim or OOM-kill to reach it (runc does it on v2; vsrun on both, since
/// a v1 kernel may reclaim page cache and accept such a limit).
fn check_before_update(n: &LinuxResources, layout: &Layout, path: &Path) -> Result<()> {
    let Some(m) = n.memory() else { return Ok(()) };
    let (Some(true), Some(limit)) = (m.check_before_update(), m.limit()) else {
        return Ok(());
    };
    let file = if layout.is_v2() {
        "memory.current"
    } else {
        "memory.usage_in_bytes"
    };
    let dir = layout.dir("memory", path).unwrap_or_default();
    let current: i64 = std::fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if limit < current {
        return Err(bad(
            "memory.limit",
            format!("{limit}: below the current usage {current} (memory.checkBeforeUpdate)"),
        ));
    }
    Ok(())
}

/// The part of the resources libcgroups applies correctly on this layout.
fn for_libcgroups(n: &LinuxResources, layout: &Layout, path: &Path) -> LinuxResources {
    let mut lib = n.clone();
    lib.set_devices(None);
    lib.set_network(None);
    lib.set_rdma(None);
    if let Some(m) = lib.memory_mut() {
        m.set_check_before_update(None);
        // Written and read back by vsrun: recent kernels accept the write and keep no limit.
        m.set_kernel(None);
        m.set_kernel_tcp(None);
        // v2: swap -1 alone (runc's `update --memory-swap -1`) is unlimited swap, which
        // libcgroups refuses without a memory limit; own_writes sets memory.swap.max.
        if layout.is_v2() && m.swap() == Some(-1) && m.limit().is_none() {
            m.set_swap(None);
        }
    }
    if layout.is_v2() {
        strip_empty(&mut lib);
        return lib;
    }
    // v1: libcgroups skips cpu.burst unless another cpu field is set, and never writes leaf
    // weights or weight devices.
    if let Some(c) = lib.cpu_mut() {
        c.set_burst(None);
    }
    if let Some(b) = lib.block_io_mut() {
        b.set_leaf_weight(None);
        b.set_weight_device(None);
    }
    // v1 without swap accounting: libcgroups sets memsw to -1 along with an unlimited memory
    // limit and fails on the missing file; vsrun writes that limit itself.
    if let Some(m) = lib.memory_mut() {
        let memsw = layout
            .dir("memory", path)
            .is_some_and(|d| d.join("memory.memsw.limit_in_bytes").exists());
        if m.limit() == Some(-1) && m.swap().is_none() && !memsw {
            m.set_limit(None);
        }
    }
    strip_empty(&mut lib);
    lib
}

fn strip_empty(r: &mut LinuxResources) {
    if r.memory()
        .as_ref()
        .is_some_and(|m| *m == Default::default())
    {
        r.set_memory(None);
    }
    if r.cpu().as_ref().is_some_and(|c| *c == Default::default()) {
        r.set_cpu(None);
    }
    if r.block_io()
        .as_ref()
        .is_some_and(|b| *b == Default::default())
    {
        r.set_block_io(None);
    }
}

fn write_file(f: &str, dir: &Path, file: &str, value: &str) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(file))
        .and_then(|mut w| w.write_all(value.as_bytes()))
        .map_err(|e| bad(f, format!("{value:?} rejected by the kernel ({file}: {e})")))
}

/// The deprecated kernel memory limits (`memory.kernel`, `memory.kernelTCP`; config-linux.md:
/// "not recommended"). Linux 5.4 deprecated kmem.limit_in_bytes, 6.x accepts a write and keeps
/// no limit, cgroup v2 never had either file. runc and crun accept them with a warning, so a
/// field this host has no file for is dropped here with a warning naming it, rather than
/// losing the container; `write_kernel_limit` warns about a write the kernel ignores.
fn drop_kernel_memory_without_files(r: &mut LinuxResources, layout: &Layout) {
    let kind = layout.describe();
    let memory_root = (!layout.is_v2())
        .then(|| layout.dir("memory", Path::new("/")))
        .flatten();
    let has = |file: &str| memory_root.as_ref().is_some_and(|d| d.join(file).exists());
    let Some(m) = r.memory_mut() else { return };
    if m.kernel().is_some_and(|v| v != 0) && !has("memory.kmem.limit_in_bytes") {
        m.set_kernel(None);
        warn_kernel_memory(
            "memory.kernel",
            &format!("{kind} has no memory.kmem.limit_in_bytes"),
        );
    }
    if m.kernel_tcp().is_some_and(|v| v != 0) && !has("memory.kmem.tcp.limit_in_bytes") {
        m.set_kernel_tcp(None);
        warn_kernel_memory(
            "memory.kernelTCP",
            &format!("{kind} has no memory.kmem.tcp.limit_in_bytes"),
        );
    }
}

fn warn_kernel_memory(f: &str, why: &str) {
    crate::log::warn(&format!(
        "{}: ignored: {why} (kernel memory limits are deprecated and not enforced by this kernel)",
        field(f)
    ));
}

/// A kernel memory limit, written and read back (rounded down to a page): a kernel that
/// refuses the write, or accepts it and keeps no limit (6.x for memory.kmem.limit_in_bytes),
/// gets a warning, as runc and crun give, not a failure.
fn write_kernel_limit(f: &str, dir: &Path, file: &str, value: i64) -> Result<()> {
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(file))
        .and_then(|mut w| w.write_all(value.to_string().as_bytes()));
    if let Err(e) = written {
        // Kernels that dropped the limit refuse the write (EOPNOTSUPP) rather than ignore it.
        warn_kernel_memory(f, &format!("{file} refused {value}: {e}"));
        return Ok(());
    }
    let now: i64 = std::fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(-1);
    let kept = if value == -1 {
        now > 1 << 60
    } else {
        now <= value && value - now < 1 << 16
    };
    if !kept {
        warn_kernel_memory(
            f,
            &format!("{value} was accepted but {file} still reads {now}"),
        );
    }
    Ok(())
}

/// The fields libcgroups 0.7 does not write (or writes wrongly); `check_host` made sure the
/// files exist.
fn own_writes(n: &LinuxResources, layout: &Layout, path: &Path) -> Result<()> {
    let dir = |c: &str| layout.dir(c, path).unwrap_or_default();
    let v2 = layout.is_v2();
    if let Some(m) = n.memory() {
        // v2: swap equal to the limit means no swap: memory.swap.max 0 (libcgroups writes
        // nothing for a 0).
        // Both -1 is no limit at all, which libcgroups writes (max).
        if v2 && m.swap().is_some() && m.swap() == m.limit() && m.limit() != Some(-1) {
            write_file("memory.swap", &dir("memory"), "memory.swap.max", "0")?;
        }
        if v2 && m.swap() == Some(-1) && m.limit().is_none() {
            write_file("memory.swap", &dir("memory"), "memory.swap.max", "max")?;
        }
        if let Some(k) = m.kernel().filter(|_| !v2) {
            write_kernel_limit(
                "memory.kernel",
                &dir("memory"),
                "memory.kmem.limit_in_bytes",
                k,
            )?;
        }
        if let Some(k) = m.kernel_tcp().filter(|_| !v2) {
            write_kernel_limit(
                "memory.kernelTCP",
                &dir("memory"),
                "memory.kmem.tcp.limit_in_bytes",
                k,
            )?;
        }
        let memsw = dir("memory").join("memory.memsw.limit_in_bytes").exists();
        if !v2 && m.limit() == Some(-1) && m.swap().is_none() && !memsw {
            write_file(
                "memory.limit",
                &dir("memory"),
                "memory.limit_in_bytes",
                "-1",
            )?;
        }
    }
    if let Some(burst) = n.cpu().as_ref().and_then(|c| c.burst()).filter(|_| !v2) {
        write_file(
            "cpu.burst",
            &dir("cpu"),
            "cpu.cfs_burst_us",
            &burst.to_string(),
        )?;
    }
    if let Some(b) = n.block_io().as_ref().filter(|_| !v2) {
        let blkio = dir("blkio");
        if let Some(w) = b.leaf_weight() {
            write_file(
                "blockIO.leafWeight",
                &blkio,
                "blkio.leaf_weight",
                &w.to_string(),
            )?;
        }
        let weight_file = if blkio.join("blkio.weight_device").exists() {
            "blkio.weight_device"
        } else {
            "blkio.bfq.weight_device"
        };
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            let f = format!("blockIO.weightDevice[{i}]");
            if let Some(w) = d.weight() {
                let v = format!("{}:{} {w}", d.major(), d.minor());
                write_file(&f, &blkio, weight_file, &v)?;
            }
            if let Some(w) = d.leaf_weight() {
                let v = format!("{}:{} {w}", d.major(), d.minor());
                write_file(
                    &format!("{f}.leafWeight"),
                    &blkio,
                    "blkio.leaf_weight_device",
                    &v,
                )?;
            }
        }
    }
    if let Some(net) = n.network() {
        if let Some(id) = net.class_id() {
            write_file(
                "network.classID",
                &dir("net_cls"),
                "net_cls.classid",
                &id.to_string(),
            )?;
        }
        // One interface per write: the kernel reads one "name prio" pair per write.
        for (i, p) in net.priorities().iter().flatten().enumerate() {
            let v = format!("{} {}", p.name(), p.priority());
            write_file(
                &format!("network.priorities[{i}]"),
                &dir("net_prio"),
                "net_prio.ifpriomap",
                &v,
            )?;
        }
    }
    let mut rdma: Vec<_> = n.rdma().iter().flatten().collect();
    rdma.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, l) in rdma {
        let mut v = dev.clone();
        if let Some(h) = l.hca_handles() {
            v.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            v.push_str(&format!(" hca_object={o}"));
        }
        if v != *dev {
            write_file(&format!("rdma.{dev}"), &dir("rdma"), "rdma.max", &v)?;
        }
    }
    Ok(())
}

/// libcgroups reports a failed write as "failed to write DATA to DIR/FILE: ERROR". The file
/// names the field, and DATA the entry of a list.
fn libcgroups_error(msg: &str, n: &LinuxResources, layout: &Layout, path: &Path) -> Error {
    for dir in layout.dirs(path) {
        let prefix = format!("{}/", dir.display());
        let Some(at) = msg.find(&prefix) else {
            continue;
        };
        let rest = &msg[at + prefix.len()..];
        let file = rest
            .split(|c: char| c == ':' || c.is_whitespace())
            .next()
            .unwrap_or_default();
        let err = rest[file.len()..].trim_start_matches([':', ' ']);
        let data = msg[..at]
            .strip_suffix(" to ")
            .and_then(|s| s.rsplit_once("failed to write "))
            .map(|(_, d)| d)
            .unwrap_or_default();
        let f = field_of_file(file, data, n);
        return config(
            f,
            format!("{data:?} rejected by the kernel ({file}: {err})"),
        );
    }
    if msg.contains("memory limit") {
        return bad("memory.limit", msg);
    }
    config("linux.resources", msg)
}

fn field_of_file(file: &str, data: &str, n: &LinuxResources) -> String {
    if n.unified().as_ref().is_some_and(|u| u.contains_key(file)) {
        return field(&format!("unified.{file}"));
    }
    let dev = data.split_whitespace().next().unwrap_or_default();
    let index = |list: &[(i64, i64)]| {
        list.iter()
            .position(|(ma, mi)| format!("{ma}:{mi}") == dev)
            .map(|i| format!("[{i}]"))
            .unwrap_or_default()
    };
    let b = n.block_io().clone().unwrap_or_default();
    let throttle = |name: &str| {
        let list: Vec<(i64, i64)> = throttles(&b)
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, l)| l.iter().map(|d| (d.major(), d.minor())).collect())
            .unwrap_or_default();
        field(&format!("blockIO.{name}{}", index(&list)))
    };
    let f = match file {
        "memory.limit_in_bytes" | "memory.max" => "memory.limit",
        "memory.memsw.limit_in_bytes" | "memory.swap.max" => "memory.swap",
        "memory.soft_limit_in_bytes" | "memory.low" => "memory.reservation",
        "memory.swappiness" => "memory.swappiness",
        "memory.oom_control" => "memory.disableOOMKiller",
        "memory.kmem.limit_in_bytes" => "memory.kernel",
        "memory.kmem.tcp.limit_in_bytes" => "memory.kernelTCP",
        "cpu.shares" | "cpu.weight" => "cpu.shares",
        "cpu.cfs_quota_us" => "cpu.quota",
        "cpu.cfs_period_us" => "cpu.period",
        "cpu.max" if n.cpu().as_ref().is_some_and(|c| c.quota().is_some()) => "cpu.quota",
        "cpu.max" => "cpu.period",
        "cpu.cfs_burst_us" | "cpu.max.burst" => "cpu.burst",
        "cpu.rt_runtime_us" => "cpu.realtimeRuntime",
        "cpu.rt_period_us" => "cpu.realtimePeriod",
        "cpu.idle" => "cpu.idle",
        "cpuset.cpus" => "cpu.cpus",
        "cpuset.mems" => "cpu.mems",
        "pids.max" => "pids.limit",
        "blkio.weight" | "blkio.bfq.weight" | "io.weight" | "io.bfq.weight"
            if dev.contains(':') =>
        {
            let list: Vec<(i64, i64)> = b
                .weight_device()
                .iter()
                .flatten()
                .map(|d| (d.major(), d.minor()))
                .collect();
            return field(&format!("blockIO.weightDevice{}", index(&list)));
        }
        "blkio.weight" | "blkio.bfq.weight" | "io.weight" | "io.bfq.weight" => "blockIO.weight",
        "blkio.throttle.read_bps_device" => return throttle("throttleReadBpsDevice"),
        "blkio.throttle.write_bps_device" => return throttle("throttleWriteBpsDevice"),
        "blkio.throttle.read_iops_device" => return throttle("throttleReadIOPSDevice"),
        "blkio.throttle.write_iops_device" => return throttle("throttleWriteIOPSDevice"),
        "io.max" if data.contains("rbps=") => return throttle("throttleReadBpsDevice"),
        "io.max" if data.contains("wbps=") => return throttle("throttleWriteBpsDevice"),
        "io.max" if data.contains("riops=") => return throttle("throttleReadIOPSDevice"),
        "io.max" => return throttle("throttleWriteIOPSDevice"),
        f if f.starts_with("hugetlb.") => {
            let size = f.split('.').nth(1).unwrap_or_default();
            let i = n
                .hugepage_limits()
                .iter()
                .flatten()
                .position(|h| h.page_size() == size)
                .map(|i| format!("[{i}]"))
                .unwrap_or_default();
            return field(&format!("hugepageLimits{i}"));
        }
        _ => return "linux.resources".into(),
    };
    field(f)
}

/// systemd driver: libcgroups' manager, one field group per `apply` so an error names it.
fn apply_systemd(m: &AnyCgroupManager, r: &LinuxResources) -> Result<()> {
    let n = normalize(r);
    let mut groups: Vec<(&str, LinuxResources)> = Vec::new();
    let mut one = |f: &'static str, g: LinuxResources| {
        if g != LinuxResources::default() {
            groups.push((f, g));
        }
    };
    let mut g = LinuxResources::default();
    g.set_memory(n.memory().clone());
    one("linux.resources.memory", g);
    let mut g = LinuxResources::default();
    g.set_cpu(n.cpu().clone());
    one("linux.resources.cpu", g);
    let mut g = LinuxResources::default();
    g.set_pids(*n.pids());
    one("linux.resources.pids", g);
    let mut g = LinuxResources::default();
    g.set_block_io(n.block_io().clone());
    one("linux.resources.blockIO", g);
    let mut g = LinuxResources::default();
    g.set_unified(n.unified().clone());
    one("linux.resources.unified", g);
    for (f, absent) in [
        (
            "linux.resources.hugepageLimits",
            n.hugepage_limits().is_none(),
        ),
        ("linux.resources.network", n.network().is_none()),
        ("linux.resources.rdma", n.rdma().is_none()),
        (
            "linux.resources.devices",
            r.devices().as_ref().is_none_or(|d| d.is_empty()),
        ),
    ] {
        if !absent {
            return Err(config(
                f,
                "not supported with --systemd-cgroup (libcgroups' systemd driver)",
            ));
        }
    }
    let disable_oom = n
        .memory()
        .as_ref()
        .and_then(|m| m.disable_oom_killer())
        .unwrap_or(false);
    for (f, g) in groups {
        let opt = ControllerOpt {
            resources: &g,
            disable_oom_killer: disable_oom,
            oom_score_adj: None,
            freezer_state: None,
        };
        m.apply(&opt).map_err(|e| config(f, e.to_string()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Devices

/// runc's allowlist, applied after the config's rules: the default device nodes, mknod of
/// anything, ptys, ptmx, tun. (libcgroups adds /dev/console 5:1; runc does not, and neither
/// does vsrun: a container's console is a pty.)
const DEFAULT_DEVICES: &[(char, Option<u32>, Option<u32>, &str)] = &[
    ('c', Some(1), Some(3), "rwm"),
    ('c', Some(1), Some(5), "rwm"),
    ('c', Some(1), Some(7), "rwm"),
    ('c', Some(5), Some(0), "rwm"),
    ('c', Some(1), Some(9), "rwm"),
    ('c', Some(1), Some(8), "rwm"),
    ('c', None, None, "m"),
    ('b', None, None, "m"),
    ('c', Some(136), None, "rwm"),
    ('c', Some(5), Some(2), "rwm"),
    ('c', Some(10), Some(200), "rwm"),
];

/// The rules to apply in order, each with the index of its config entry: deny everything
/// (runc starts from an empty allowlist, whatever the config says), the config's rules, the
/// default allowlist.
fn device_rules(
    list: Option<&[LinuxDeviceCgroup]>,
) -> Result<Vec<(Option<usize>, devfilter::Rule)>> {
    let mut out = vec![(None, devfilter::Rule::all(false))];
    for (i, d) in list.unwrap_or_default().iter().enumerate() {
        let f = |s: &str| field(&format!("devices[{i}]{s}"));
        let typ = match d.typ().unwrap_or_default() {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(devfilter::BLOCK),
            LinuxDeviceType::C => Some(devfilter::CHAR),
            t => {
                return Err(config(
                    f(".type"),
                    format!("{:?}: the devices cgroup knows a, b and c only", t.as_str()),
                ))
            }
        };
        let num = |v: Option<i64>, what: &str| -> Result<Option<u32>> {
            match v {
                None => Ok(None),
                Some(n) => u32::try_from(n).map(Some).map_err(|_| {
                    config(
                        f(what),
                        format!("{n}: must be a device number; leave it out for any"),
                    )
                }),
            }
        };
        let access = match d.access().as_deref().unwrap_or("") {
            "" => devfilter::ACC_ALL,
            a => a.chars().try_fold(0u8, |acc, c| match c {
                'r' => Ok(acc | devfilter::ACC_READ),
                'w' => Ok(acc | devfilter::ACC_WRITE),
                'm' => Ok(acc | devfilter::ACC_MKNOD),
                _ => Err(config(
                    f(".access"),
                    format!("{a:?}: a combination of r, w and m"),
                )),
            })?,
        };
        out.push((
            Some(i),
            devfilter::Rule {
                allow: d.allow(),
                typ,
                major: num(d.major(), ".major")?,
                minor: num(d.minor(), ".minor")?,
                access,
            },
        ));
    }
    for (t, major, minor, access) in DEFAULT_DEVICES {
        let typ = Some(if *t == 'b' {
            devfilter::BLOCK
        } else {
            devfilter::CHAR
        });
        let access = access.chars().fold(0, |a, c| {
            a | match c {
                'r' => devfilter::ACC_READ,
                'w' => devfilter::ACC_WRITE,
                _ => devfilter::ACC_MKNOD,
            }
        });
        out.push((
            None,
            devfilter::Rule {
                allow: true,
                typ,
                major: *major,
                minor: *minor,
                access,
            },
        ));
    }
    Ok(out)
}

/// The allowlist for a new container (or a replacement from `update`): v1 rules written in
/// order to devices.deny/devices.allow (the kernel keeps the list); v2 the same rules through
/// the v1 semantics into a device program. A host without device control skips it silently
/// only when the config asked for nothing.
fn apply_devices(layout: &Layout, path: &Path, list: Option<&[LinuxDeviceCgroup]>) -> Result<()> {
    let asked = list.is_some_and(|l| !l.is_empty());
    let rules = device_rules(list)?;
    match layout {
        Layout::V1 { .. } => {
            let Some(dir) = layout.dir("devices", path) else {
                if asked {
                    return Err(bad(
                        "devices",
                        "the devices controller is not mounted on this host",
                    ));
                }
                return Ok(());
            };
            write_v1_devices(&dir, &rules)
        }
        Layout::V2 => {
            let dir = Path::new(CGROUP_ROOT).join(rel(path));
            let policy = devfilter::emulate(rules.iter().map(|(_, r)| r));
            match devfilter::attach(&dir, &devfilter::program(&policy)) {
                Ok(()) => Ok(()),
                Err(e)
                    if !asked && matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EINVAL)) =>
                {
                    Ok(())
                }
                Err(e) => Err(bad(
                    "devices",
                    format!("attach the device program to {}: {e}", dir.display()),
                )),
            }
        }
    }
}

fn write_v1_devices(dir: &Path, rules: &[(Option<usize>, devfilter::Rule)]) -> Result<()> {
    let open = |f: &str| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join(f))
            .step(|| format!("open {}/{f} (linux.resources.devices)", dir.display()))
    };
    let (mut allow, mut deny) = (open("devices.allow")?, open("devices.deny")?);
    for (i, r) in rules {
        let line = r.v1_line();
        let file = if r.allow { &mut allow } else { &mut deny };
        // One rule per write(2): the kernel parses each write as one line.
        file.write_all(line.as_bytes()).map_err(|e| {
            let f = match i {
                Some(i) => field(&format!("devices[{i}]")),
                None => field("devices"),
            };
            config(f, format!("{line:?}: {e}"))
        })?;
    }
    Ok(())
}

/// cgroup v2 device control: a BPF_PROG_TYPE_CGROUP_DEVICE program that the kernel runs on
/// every open and mknod of a device node. The rules are first folded the way the v1 kernel
/// folds writes to devices.allow/deny (`emulate`), so a config means the same on both.
mod devfilter {
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
    use std::path::Path;

    // uapi bpf.h: struct bpf_cgroup_dev_ctx.access_type = (access << 16) | type.
    pub const BLOCK: u8 = 1;
    pub const CHAR: u8 = 2;
    pub const ACC_MKNOD: u8 = 1;
    pub const ACC_READ: u8 = 2;
    pub const ACC_WRITE: u8 = 4;
    pub const ACC_ALL: u8 = 7;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Rule {
        pub allow: bool,
        /// None: every type ("a").
        pub typ: Option<u8>,
        /// None: any ("*").
        pub major: Option<u32>,
        pub minor: Option<u32>,
        pub access: u8,
    }

    impl Rule {
        pub fn all(allow: bool) -> Rule {
            Rule {
                allow,
                typ: None,
                major: None,
                minor: None,
                access: ACC_ALL,
            }
        }

        /// The v1 file syntax: "c 1:3 rwm", "a *:* rwm".
        pub fn v1_line(&self) -> String {
            let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
            let t = match self.typ {
                None => 'a',
                Some(BLOCK) => 'b',
                Some(_) => 'c',
            };
            let mut a = String::new();
            for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
                if self.access & bit != 0 {
                    a.push(c);
                }
            }
            format!("{t} {}:{} {a}", n(self.major), n(self.minor))
        }

        fn same_key(&self, o: &Rule) -> bool {
            self.typ == o.typ && self.major == o.major && self.minor == o.minor
        }
    }

    /// What the v1 kernel keeps after a sequence of writes: a default and exceptions to it.
    #[derive(Debug, PartialEq, Eq)]
    pub struct Policy {
        pub default_allow: bool,
        pub exceptions: Vec<Rule>,
    }

    /// security/device_cgroup.c: "a" sets the default and clears the exceptions; a rule
    /// against the default adds an exception (merging access with one of the same type and
    /// numbers); a rule with the default removes those access bits from exceptions of the
    /// same type and numbers. A fresh cgroup starts as allow-all.
    pub fn emulate<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Policy {
        let mut p = Policy {
            default_allow: true,
            exceptions: Vec::new(),
        };
        for r in rules {
            if r.typ.is_none() {
                p.default_allow = r.allow;
                p.exceptions.clear();
            } else if r.allow != p.default_allow {
                match p.exceptions.iter_mut().find(|e| e.same_key(r)) {
                    Some(e) => e.access |= r.access,
                    None => p.exceptions.push(*r),
                }
            } else {
                for e in p.exceptions.iter_mut().filter(|e| e.same_key(r)) {
                    e.access &= !r.access;
                }
                p.exceptions.retain(|e| e.access != 0);
            }
        }
        p
    }

    /// One `struct bpf_insn`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(C)]
    pub struct Insn {
        pub code: u8,
        pub regs: u8,
        pub off: i16,
        pub imm: i32,
    }

    const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
    const MOV64_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
    const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
    const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
    const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
    const JNE32_K: u8 = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K
    const JEQ32_K: u8 = 0x16; // BPF_JMP32 | BPF_JEQ | BPF_K
    const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

    fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        let regs = if cfg!(target_endian = "little") {
            dst | (src << 4)
        } else {
            (dst << 4) | src
        };
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }

    /// r2 = device type, r3 = requested access, r4 = major, r5 = minor; then one block per
    /// exception that returns the opposite of the default when it matches; then the default.
    /// An allowlist exception matches when the request's access is a subset of its own (as
    /// the v1 kernel's match_exception); a denylist one when they share a bit
    /// (match_exception_partial).
    pub fn program(p: &Policy) -> Vec<Insn> {
        let mut v = vec![
            insn(LDX_W, 2, 1, 0, 0),
            insn(MOV64_X, 3, 2, 0, 0),
            insn(AND32_K, 2, 0, 0, 0xffff),
            insn(RSH32_K, 3, 0, 0, 16),
            insn(LDX_W, 4, 1, 4, 0),
            insn(LDX_W, 5, 1, 8, 0),
        ];
        for e in &p.exceptions {
            // (instruction, is a jump to the end of this block)
            let mut block: Vec<(Insn, bool)> = Vec::new();
            if let Some(t) = e.typ {
                block.push((insn(JNE32_K, 2, 0, 0, t as i32), true));
            }
            if let Some(m) = e.major {
                block.push((insn(JNE32_K, 4, 0, 0, m as i32), true));
            }
            if let Some(m) = e.minor {
                block.push((insn(JNE32_K, 5, 0, 0, m as i32), true));
            }
            if e.access != ACC_ALL {
                block.push((insn(MOV64_X, 1, 3, 0, 0), false));
                if p.default_allow {
                    block.push((insn(AND32_K, 1, 0, 0, e.access as i32), false));
                    block.push((insn(JEQ32_K, 1, 0, 0, 0), true));
                } else {
                    block.push((insn(AND32_K, 1, 0, 0, (!e.access & ACC_ALL) as i32), false));
                    block.push((insn(JNE32_K, 1, 0, 0, 0), true));
                }
            }
            block.push((insn(MOV64_K, 0, 0, 0, !p.default_allow as i32), false));
            block.push((insn(EXIT, 0, 0, 0, 0), false));
            let len = block.len();
            for (i, (mut ins, jump)) in block.into_iter().enumerate() {
                if jump {
                    ins.off = (len - i - 1) as i16;
                }
                v.push(ins);
            }
        }
        v.push(insn(MOV64_K, 0, 0, 0, p.default_allow as i32));
        v.push(insn(EXIT, 0, 0, 0, 0));
        v
    }

    /// Load the program and attach it to `dir` (BPF_F_ALLOW_MULTI, as runc: a program a
    /// container attaches below cannot override it), then detach the device programs that were
    /// there before (an `update`).
    pub fn attach(dir: &Path, insns: &[Insn]) -> io::Result<()> {
        let cgroup = std::fs::File::open(dir)?;
        let prog = sys::prog_load(insns)?;
        let old: Vec<OwnedFd> = sys::prog_query(cgroup.as_fd())?
            .into_iter()
            .filter_map(|id| sys::prog_get_fd_by_id(id).ok())
            .collect();
        sys::prog_attach(cgroup.as_fd(), prog.as_fd())?;
        for o in old {
            sys::prog_detach(cgroup.as_fd(), o.as_fd())?;
        }
        Ok(())
    }

    /// bpf(2) for the device program. (net/sys.rs has the same wrappers for bind-ip; they are
    /// private to `net`, so this module keeps its own four.)
    mod sys {
        use super::*;

        const BPF_PROG_LOAD: i32 = 5;
        const BPF_PROG_ATTACH: i32 = 8;
        const BPF_PROG_DETACH: i32 = 9;
        const BPF_PROG_GET_FD_BY_ID: i32 = 13;
        const BPF_PROG_QUERY: i32 = 16;
        const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
        const BPF_CGROUP_DEVICE: u32 = 6;
        const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

        /// `attr` is a `#[repr(C)]` prefix of `union bpf_attr`; the kernel zero-fills the rest.
        fn bpf<T>(cmd: i32, attr: &mut T) -> io::Result<i64> {
            // SAFETY: `attr` is a live, exclusively borrowed repr(C) value of exactly the size
            // passed; the kernel reads and may write back within that size only. Pointers in
            // it (insns, license, ids) point to buffers the callers keep alive for the call.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_bpf,
                    cmd,
                    attr as *mut T as *mut libc::c_void,
                    std::mem::size_of::<T>() as libc::c_uint,
                )
            };
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(r)
            }
        }

        fn fd(r: i64) -> OwnedFd {
            // SAFETY: bpf(2) returned a new fd (O_CLOEXEC set by the kernel) nothing else owns.
            unsafe { OwnedFd::from_raw_fd(r as i32) }
        }

        #[repr(C)]
        #[derive(Default)]
        struct ProgLoad {
            prog_type: u32,
            insn_cnt: u32,
            insns: u64,
            license: u64,
            log_level: u32,
            log_size: u32,
            log_buf: u64,
            kern_version: u32,
            prog_flags: u32,
            prog_name: [u8; 16],
            prog_ifindex: u32,
            expected_attach_type: u32,
        }

        pub fn prog_load(insns: &[Insn]) -> io::Result<OwnedFd> {
            const LICENSE: &std::ffi::CStr = c"Apache-2.0";
            let mut name = [0u8; 16];
            name[..12].copy_from_slice(b"vsrun_device");
            let mut attr = ProgLoad {
                prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
                insn_cnt: insns.len() as u32,
                insns: insns.as_ptr() as u64,
                license: LICENSE.as_ptr() as u64,
                prog_name: name,
                expected_attach_type: BPF_CGROUP_DEVICE,
                ..Default::default()
            };
            bpf(BPF_PROG_LOAD, &mut attr).map(fd)
        }

        #[repr(C)]
        #[derive(Default)]
        struct Attach {
            target_fd: u32,
            attach_bpf_fd: u32,
            attach_type: u32,
            attach_flags: u32,
            replace_bpf_fd: u32,
        }

        pub fn prog_attach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
            let mut attr = Attach {
                target_fd: cgroup.as_raw_fd() as u32,
                attach_bpf_fd: prog.as_raw_fd() as u32,
                attach_type: BPF_CGROUP_DEVICE,
                attach_flags: BPF_F_ALLOW_MULTI,
                ..Default::default()
            };
            bpf(BPF_PROG_ATTACH, &mut attr).map(|_| ())
        }

        pub fn prog_detach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
            let mut attr = Attach {
                target_fd: cgroup.as_raw_fd() as u32,
                attach_bpf_fd: prog.as_raw_fd() as u32,
                attach_type: BPF_CGROUP_DEVICE,
                ..Default::default()
            };
            bpf(BPF_PROG_DETACH, &mut attr).map(|_| ())
        }

        #[repr(C)]
        #[derive(Default)]
        struct Query {
            target_fd: u32,
            attach_type: u32,
            query_flags: u32,
            attach_flags: u32,
            prog_ids: u64,
            prog_cnt: u32,
            _pad: u32,
        }

        /// The device programs attached directly to `cgroup`.
        pub fn prog_query(cgroup: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
            let mut ids = vec![0u32; 64];
            let mut attr = Query {
                target_fd: cgroup.as_raw_fd() as u32,
                attach_type: BPF_CGROUP_DEVICE,
                prog_ids: ids.as_mut_ptr() as u64,
                prog_cnt: ids.len() as u32,
                ..Default::default()
            };
            bpf(BPF_PROG_QUERY, &mut attr)?;
            ids.truncate(attr.prog_cnt as usize);
            Ok(ids)
        }

        #[repr(C)]
        #[derive(Default)]
        struct GetById {
            id: u32,
            next_id: u32,
            open_flags: u32,
        }

        pub fn prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
            let mut attr = GetById {
                id,
                ..Default::default()
            };
            bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).map(fd)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running containers

/// The pids in the container's cgroup.
/// Whether the container has a cgroup directory at all (rootless mode may have skipped every
/// one: `prepare`). v1: the freezer's or else any controller's; v2: its one directory.
pub fn exists(path: &Path) -> bool {
    let Ok(layout) = layout() else { return true };
    if rel(path).as_os_str().is_empty() {
        return true;
    }
    layout
        .member_dirs(path)
        .0
        .iter()
        .chain(layout.member_dirs(path).1.iter())
        .any(|d| d.is_dir())
}

pub fn pids(path: &Path, systemd: bool, id: &str) -> Result<Vec<i32>> {
    let m = manager(path, systemd, id)?;
    m.get_all_pids()
        .map(|v| v.into_iter().map(|p| p.as_raw()).collect())
        .map_err(|e| state(format!("read pids of cgroup {}: {e}", path.display())))
}

pub fn freeze(path: &Path, systemd: bool, id: &str, frozen: bool) -> Result<()> {
    let m = manager(path, systemd, id)?;
    let st = if frozen {
        FreezerState::Frozen
    } else {
        FreezerState::Thawed
    };
    m.freeze(st)
        .map_err(|e| state(format!("freezer of cgroup {}: {e}", path.display())))
}

/// Remove the cgroup with every cgroup a container process made below it, SIGKILLing
/// whatever is still in them. Idempotent. Hand-written for the same reason as `prepare`: it
/// runs at the end of every `run` and `delete`. The root cgroup is never touched.
pub fn remove(path: &Path, systemd: bool, id: &str) -> Result<()> {
    if systemd {
        let m = manager(path, true, id)?;
        return m
            .remove()
            .map_err(|e| state(format!("remove cgroup {}: {e}", path.display())));
    }
    if rel(path).as_os_str().is_empty() {
        return Ok(());
    }
    let (v1, v2) = layout()?.member_dirs(path);
    for dir in v1.into_iter().chain(v2) {
        remove_tree(&dir).step(|| format!("remove cgroup {}", dir.display()))?;
    }
    Ok(())
}

fn remove_tree(dir: &Path) -> std::io::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    remove_tree(&e.path())?;
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    for attempt in 0..200 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            // Busy: members are still exiting, or something outlived its init. Kill, retry.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 199 => {
                // v2 (5.14+): the whole cgroup at once, no pid to race with.
                if std::fs::write(dir.join("cgroup.kill"), "1").is_err() {
                    let procs =
                        std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::SIGKILL,
                        );
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether the container's cgroup is frozen (v1 freezer.state, v2 cgroup.freeze); read on
/// every status query, so it is one small file read.
pub fn is_frozen(path: &Path, systemd: bool) -> bool {
    if systemd || path.as_os_str().is_empty() {
        return false;
    }
    let root = Path::new(CGROUP_ROOT);
    if is_unified(root) {
        return std::fs::read_to_string(root.join(rel(path)).join("cgroup.freeze"))
            .is_ok_and(|s| s.trim() == "1");
    }
    std::fs::read_to_string(root.join("freezer").join(rel(path)).join("freezer.state"))
        .is_ok_and(|s| s.trim() == "FROZEN")
}

/// The stats runc's `events` reports, from libcgroups.
pub fn stats(path: &Path, systemd: bool, id: &str) -> Result<libcgroups::stats::Stats> {
    manager(path, systemd, id)?
        .stats()
        .map_err(|e| state(format!("read stats of cgroup {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::devfilter::{self, Rule, ACC_ALL, ACC_MKNOD, ACC_READ, ACC_WRITE, BLOCK, CHAR};
    use super::*;
    use serde_json::json;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    fn err_of(v: serde_json::Value) -> String {
        validate(&res(v)).unwrap_err().to_string()
    }

    #[test]
    fn cpu_lists_follow_the_kernel_format() {
        for ok in ["0", "0-3", "0,2,4-7", " 1 ", "0-7:2/4", "3-3"] {
            assert!(valid_cpu_list(ok), "{ok}");
        }
        for bad in ["0-", "-1", "a", "3-1", "0,,1", "1:2/4", "0-7:2/0", ""] {
            assert!(!valid_cpu_list(bad), "{bad}");
        }
    }

    #[test]
    fn hugepage_sizes_are_power_of_two_kilobytes() {
        assert_eq!(hugepage_kb("2MB"), Some(2048));
        assert_eq!(hugepage_kb("1GB"), Some(1 << 20));
        assert_eq!(hugepage_kb("64KB"), Some(64));
        for bad in ["2M", "3MB", "MB", "0MB", "2mb", "-2MB"] {
            assert_eq!(hugepage_kb(bad), None, "{bad}");
        }
    }

    #[test]
    fn docker_zero_values_are_unset() {
        let r = res(json!({
            "memory": {"disableOOMKiller": false, "limit": 0, "useHierarchy": true},
            "cpu": {"shares": 0, "cpus": "", "quota": 0},
            "blockIO": {"weight": 0, "weightDevice": [{"major": 8, "minor": 0, "weight": 0}]},
            "pids": {"limit": 0},
            "network": {"classID": 0, "priorities": []},
            "hugepageLimits": [], "rdma": {}, "unified": {}
        }));
        validate(&r).unwrap();
        assert_eq!(normalize(&r), LinuxResources::default());
    }

    #[test]
    fn bad_values_name_their_field() {
        for (v, needle) in [
            (
                json!({"memory": {"limit": -2}}),
                "linux.resources.memory.limit: -2",
            ),
            (
                json!({"memory": {"swap": 100}}),
                "linux.resources.memory.swap",
            ),
            (
                json!({"memory": {"limit": 200, "swap": 100}}),
                "linux.resources.memory.swap",
            ),
            (
                json!({"memory": {"swappiness": 101}}),
                "linux.resources.memory.swappiness",
            ),
            (
                json!({"cpu": {"cpus": "0-"}}),
                "linux.resources.cpu.cpus: \"0-\"",
            ),
            (json!({"cpu": {"mems": "x"}}), "linux.resources.cpu.mems"),
            (json!({"cpu": {"quota": 10}}), "linux.resources.cpu.quota"),
            (json!({"cpu": {"period": 10}}), "linux.resources.cpu.period"),
            (json!({"cpu": {"idle": 2}}), "linux.resources.cpu.idle"),
            (
                json!({"blockIO": {"weight": 5}}),
                "linux.resources.blockIO.weight: 5",
            ),
            (
                json!({"blockIO": {"leafWeight": 1001}}),
                "linux.resources.blockIO.leafWeight",
            ),
            (
                json!({"blockIO": {"throttleReadBpsDevice": [{"major": -1, "minor": 0, "rate": 1}]}}),
                "linux.resources.blockIO.throttleReadBpsDevice[0]",
            ),
            (
                json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}),
                "linux.resources.hugepageLimits[0].pageSize",
            ),
            (
                json!({"devices": [{"allow": true, "type": "p"}]}),
                "linux.resources.devices[0].type",
            ),
            (
                json!({"devices": [{"allow": true, "type": "c", "access": "rx"}]}),
                "linux.resources.devices[0].access",
            ),
            (
                json!({"devices": [{"allow": true, "type": "c", "major": -1}]}),
                "linux.resources.devices[0].major",
            ),
            (
                json!({"unified": {"../memory.max": "1"}}),
                "linux.resources.unified.../memory.max",
            ),
            (
                json!({"unified": {"cgroup.procs": "1"}}),
                "linux.resources.unified.cgroup.procs",
            ),
        ] {
            let e = err_of(v.clone());
            assert!(e.contains(needle), "{v}: {e}");
        }
    }

    fn rule(
        allow: bool,
        typ: Option<u8>,
        major: Option<u32>,
        minor: Option<u32>,
        access: u8,
    ) -> Rule {
        Rule {
            allow,
            typ,
            major,
            minor,
            access,
        }
    }

    #[test]
    fn device_rules_fold_like_the_v1_kernel() {
        // Whitelist: deny all, allow c 1:3 r, allow c 1:3 w (merged), deny c 1:3 r.
        let p = devfilter::emulate(&[
            Rule::all(false),
            rule(true, Some(CHAR), Some(1), Some(3), ACC_READ),
            rule(true, Some(CHAR), Some(1), Some(3), ACC_WRITE),
            rule(false, Some(CHAR), Some(1), Some(3), ACC_READ),
        ]);
        assert!(!p.default_allow);
        assert_eq!(
            p.exceptions,
            vec![rule(true, Some(CHAR), Some(1), Some(3), ACC_WRITE)]
        );
        // A wildcard deny in whitelist mode removes only the identical exception.
        let p = devfilter::emulate(&[
            Rule::all(false),
            rule(true, Some(CHAR), Some(1), Some(3), ACC_ALL),
            rule(false, Some(CHAR), None, None, ACC_ALL),
        ]);
        assert_eq!(p.exceptions.len(), 1);
        // "a" resets; a fresh cgroup allows everything.
        let p = devfilter::emulate(&[
            rule(false, Some(BLOCK), Some(8), None, ACC_READ),
            Rule::all(true),
        ]);
        assert!(p.default_allow && p.exceptions.is_empty());
        assert!(devfilter::emulate(&[]).default_allow);
    }

    /// The kernel's decision for a policy (security/device_cgroup.c).
    fn reference(p: &devfilter::Policy, typ: u8, acc: u8, major: u32, minor: u32) -> bool {
        let hit = |e: &Rule, partial: bool| {
            e.typ == Some(typ)
                && e.major.is_none_or(|m| m == major)
                && e.minor.is_none_or(|m| m == minor)
                && if partial {
                    acc & e.access != 0
                } else {
                    acc & !e.access == 0
                }
        };
        if p.default_allow {
            !p.exceptions.iter().any(|e| hit(e, true))
        } else {
            p.exceptions.iter().any(|e| hit(e, false))
        }
    }

    /// A tiny interpreter for the opcodes `program` emits.
    fn run(prog: &[devfilter::Insn], typ: u8, acc: u8, major: u32, minor: u32) -> bool {
        let ctx = [(acc as u32) << 16 | typ as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                0x61 => r[dst] = ctx[(i.off / 4) as usize] as u64,
                0xbf => r[dst] = r[src],
                0xb7 => r[dst] = i.imm as i64 as u64,
                0x54 => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                0x74 => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                0x56 if r[dst] as u32 != i.imm as u32 => pc += i.off as usize,
                0x16 if r[dst] as u32 == i.imm as u32 => pc += i.off as usize,
                0x56 | 0x16 => {}
                0x95 => return r[0] == 1,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn device_program_decides_like_the_kernel() {
        let docker = res(json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
            {"allow": true, "type": "b", "major": 7, "access": "r"}
        ]}));
        let blacklist = res(json!({"devices": [
            {"allow": true, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"},
            {"allow": false, "type": "b", "access": "m"}
        ]}));
        for r in [docker, blacklist, LinuxResources::default()] {
            let rules = device_rules(r.devices().as_deref()).unwrap();
            let mut p = devfilter::emulate(rules.iter().map(|(_, r)| r));
            if r.devices().as_ref().is_some_and(|d| d[0].allow()) {
                // The blacklist case: the config's "a" allow comes after vsrun's deny-all.
                assert!(p.default_allow);
            }
            let prog = devfilter::program(&p);
            for typ in [BLOCK, CHAR] {
                for acc in 1..=ACC_ALL {
                    for (major, minor) in [
                        (1, 3),
                        (1, 5),
                        (1, 9),
                        (5, 1),
                        (7, 0),
                        (7, 9),
                        (10, 229),
                        (10, 200),
                        (136, 4),
                        (8, 0),
                    ] {
                        assert_eq!(
                            run(&prog, typ, acc, major, minor),
                            reference(&p, typ, acc, major, minor),
                            "{r:?} type {typ} access {acc} {major}:{minor}"
                        );
                    }
                }
            }
            p.exceptions.clear();
            assert_eq!(
                run(&devfilter::program(&p), CHAR, ACC_MKNOD, 1, 1),
                p.default_allow
            );
        }
    }

    #[test]
    fn default_allowlist_denies_the_rest() {
        let rules = device_rules(None).unwrap();
        let p = devfilter::emulate(rules.iter().map(|(_, r)| r));
        let prog = devfilter::program(&p);
        assert!(run(&prog, CHAR, ACC_READ | ACC_WRITE, 1, 3), "/dev/null");
        assert!(run(&prog, CHAR, ACC_READ, 136, 7), "a pty");
        assert!(run(&prog, BLOCK, ACC_MKNOD, 8, 0), "mknod of anything");
        assert!(!run(&prog, BLOCK, ACC_READ, 8, 0), "a disk");
        assert!(!run(&prog, CHAR, ACC_READ, 1, 1), "/dev/mem");
        assert_eq!(rules[0].1.v1_line(), "a *:* rwm");
        assert_eq!(rules[7].1.v1_line(), "c *:* m");
    }

    #[test]
    fn libcgroups_errors_name_the_field() {
        let r = res(json!({
            "cpu": {"cpus": "9999", "quota": 20000},
            "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}, {"major": 9, "minor": 1, "rate": 2}]},
            "hugepageLimits": [{"pageSize": "1GB", "limit": 0}, {"pageSize": "2MB", "limit": 0}],
            "unified": {"memory.high": "1"}
        }));
        assert_eq!(
            field_of_file("cpuset.cpus", "9999", &r),
            "linux.resources.cpu.cpus"
        );
        assert_eq!(
            field_of_file("cpu.max", "20000", &r),
            "linux.resources.cpu.quota"
        );
        assert_eq!(
            field_of_file("io.max", "9:1 rbps=2", &r),
            "linux.resources.blockIO.throttleReadBpsDevice[1]"
        );
        assert_eq!(
            field_of_file("blkio.throttle.read_bps_device", "8:0 1", &r),
            "linux.resources.blockIO.throttleReadBpsDevice[0]"
        );
        assert_eq!(
            field_of_file("hugetlb.2MB.max", "0", &r),
            "linux.resources.hugepageLimits[1]"
        );
        assert_eq!(
            field_of_file("memory.high", "1", &r),
            "linux.resources.unified.memory.high"
        );
        let layout = Layout::V2;
        let e = libcgroups_error(
            "io error: failed to write 9999 to /sys/fs/cgroup/vsrun/x/cpuset.cpus: Invalid argument (os error 22)",
            &r,
            &layout,
            Path::new("/vsrun/x"),
        );
        assert_eq!(
            e.to_string(),
            "linux.resources.cpu.cpus: \"9999\" rejected by the kernel (cpuset.cpus: Invalid argument (os error 22))"
        );
    }
}
