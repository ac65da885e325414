//! linux.namespaces: which to create at clone, which to join by path and in what order,
//! the user namespace's id maps and the time namespace's offsets.

use crate::error::{config, Result, StepExt};
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType, Spec};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct Join {
    pub name: &'static str,
    pub nstype: i32,
    pub fd: OwnedFd,
}

#[derive(Default)]
pub struct Plan {
    /// CLONE_NEW* flags for clone3. Time is never here: its offsets must be written before
    /// any process is inside it, so the init unshares it and its exec enters it.
    pub clone_flags: u64,
    /// With a user namespace joined by path, new namespaces are unshared after the setns so
    /// the joined user namespace owns them.
    pub unshare_flags: u64,
    /// Joined by the parent before the clone (net, ipc, uts, cgroup, time): the parent
    /// still has the host's privileges there, and the init inherits them even when it is born
    /// into a new user namespace that could not setns into host-owned namespaces.
    pub parent_joins: Vec<Join>,
    /// Joined by the init: user first (it grants the rights for the rest), mount last.
    pub init_joins: Vec<Join>,
    pub new_user: bool,
    pub new_pid: bool,
    pub new_net: bool,
    pub new_time: bool,
    /// Unshared by the init after the parent put it into its cgroup, so the namespace's root
    /// is the container's cgroup and not vsrun's.
    pub new_cgroup: bool,
    pub uid_map: String,
    pub gid_map: String,
    /// A new user namespace whose maps vsrun writes without the host's root (rootless): the
    /// init is born dumpable so that its /proc files belong to the user, until "go".
    pub unprivileged_maps: bool,
    /// setgroups(2) is denied in the user namespace the process ends up in (see
    /// `write_id_maps`; for exec, read from the init's /proc).
    pub setgroups_denied: bool,
    /// Contents for /proc/self/timens_offsets.
    pub time_offsets: String,
    /// The mount namespace is created by this clone (or unshare). Without it the rootfs is
    /// set up in a namespace shared with others (the caller's, or one joined by path), where
    /// pivot_root would re-root every process that shares it.
    pub new_mount: bool,
    /// `linux.namespaces[].path` of a joined mount namespace.
    pub mount_join_path: Option<std::path::PathBuf>,
    /// `exec`: the container init's root (/proc/<pid>/root, opened from the host), entered with
    /// chroot after every setns. With a mount namespace of its own that is its "/" anyway;
    /// without one, setns leaves the new process at the host's root.
    pub container_root: Option<OwnedFd>,
    /// A pid namespace that is someone else's (the running container's for `exec`, one given
    /// by path for `create`). Its processes can see and, holding CAP_SYS_PTRACE, ptrace every
    /// newcomer, so the init does not enter it: it does its privileged steps outside, drops to
    /// the final credentials, then forks the real process into it (init.rs, `hand_over`).
    pub pid_join: Option<Join>,
}

impl Plan {
    /// The mount namespace joined by path, if any.
    pub fn joined_mount_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.init_joins
            .iter()
            .find(|j| j.nstype == libc::CLONE_NEWNS)
            .map(|j| j.fd.as_fd())
    }
}

/// Every namespace type vsrun creates or joins: its /proc/<pid>/ns name and CLONE_NEW* flag.
/// `vsrun features` lists the types from here.
pub const KINDS: [(LinuxNamespaceType, &str, i32); 8] = [
    (LinuxNamespaceType::Cgroup, "cgroup", libc::CLONE_NEWCGROUP),
    (LinuxNamespaceType::Ipc, "ipc", libc::CLONE_NEWIPC),
    (LinuxNamespaceType::Mount, "mnt", libc::CLONE_NEWNS),
    (LinuxNamespaceType::Network, "net", libc::CLONE_NEWNET),
    (LinuxNamespaceType::Pid, "pid", libc::CLONE_NEWPID),
    (LinuxNamespaceType::Time, "time", libc::CLONE_NEWTIME),
    (LinuxNamespaceType::User, "user", libc::CLONE_NEWUSER),
    (LinuxNamespaceType::Uts, "uts", libc::CLONE_NEWUTS),
];

/// linux.namespaces[i].type → (name, CLONE_NEW* flag) from KINDS.
fn ns_info(i: usize, t: LinuxNamespaceType) -> Result<(&'static str, i32)> {
    KINDS
        .iter()
        .find(|(k, _, _)| *k == t)
        .map(|(_, name, flag)| (*name, *flag))
        .ok_or_else(|| {
            config(
                format!("linux.namespaces[{i}].type"),
                format!("{t} is not supported"),
            )
        })
}

/// setns order in the init: user first, mount last (joining it changes what paths mean).
fn join_rank(nstype: i32) -> u8 {
    match nstype {
        libc::CLONE_NEWUSER => 0,
        libc::CLONE_NEWNS => 10,
        _ => 9,
    }
}

/// Rootless with a user namespace given by path: vsrun has no rights in the other namespaces
/// (setns needs CAP_SYS_ADMIN in its own user namespace too) until it is in the one that owns
/// them, so the init joins them all after the user namespace, as runc's nsexec does. A pid
/// namespace is handed over (`pid_join`), as for root.
fn join_all_in_init(p: &mut Plan) {
    for j in std::mem::take(&mut p.parent_joins) {
        if j.nstype == libc::CLONE_NEWPID {
            p.pid_join = Some(j);
        } else {
            p.init_joins.push(j);
        }
    }
}

/// Parent side, before the clone: join the namespaces the init inherits.
pub fn enter_in_parent(plan: &Plan) -> Result<()> {
    for j in &plan.parent_joins {
        crate::syscall::setns(j.fd.as_raw_fd(), j.nstype)
            .step(|| format!("setns into {} namespace (linux.namespaces)", j.name))?;
    }
    Ok(())
}

pub fn plan(spec: &Spec) -> Result<Plan> {
    let linux = spec.linux().as_ref();
    let mut p = Plan::default();
    let mut user_join = false;
    let mut new_flags = 0u64;
    for (i, ns) in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let (_, nstype) = ns_info(i, ns.typ())?;
        match ns.path() {
            Some(path) if !path.as_os_str().is_empty() => {
                user_join |= nstype == libc::CLONE_NEWUSER;
                plan_join(&mut p, i, ns.typ(), path)?;
            }
            _ => match nstype {
                libc::CLONE_NEWTIME => p.new_time = true,
                libc::CLONE_NEWCGROUP => p.new_cgroup = true,
                _ => new_flags |= nstype as u64,
            },
        }
    }
    if user_join && crate::rootless::unprivileged() {
        join_all_in_init(&mut p);
    }
    p.init_joins.sort_by_key(|j| join_rank(j.nstype));
    p.new_user = new_flags & libc::CLONE_NEWUSER as u64 != 0;
    p.new_pid = new_flags & libc::CLONE_NEWPID as u64 != 0;
    p.new_net = new_flags & libc::CLONE_NEWNET as u64 != 0;
    p.new_mount = new_flags & libc::CLONE_NEWNS as u64 != 0;
    if user_join {
        if p.new_pid {
            return Err(config(
                "linux.namespaces",
                "a new pid namespace together with a user namespace joined by path is not supported",
            ));
        }
        p.unshare_flags = new_flags;
    } else {
        p.clone_flags = new_flags;
    }
    if p.new_user {
        plan_id_maps(&mut p, linux, user_join)?;
    }
    if let Some(offsets) = linux.and_then(|l| l.time_offsets().as_ref()) {
        for (clock, off) in offsets {
            p.time_offsets.push_str(&format!(
                "{clock} {} {}\n",
                off.secs().unwrap_or(0),
                off.nanosecs().unwrap_or(0)
            ));
        }
    }
    Ok(p)
}

/// linux.namespaces[i] with a path: open it, check its type, and say who joins it when.
fn plan_join(p: &mut Plan, i: usize, t: LinuxNamespaceType, path: &Path) -> Result<()> {
    let (name, nstype) = ns_info(i, t)?;
    let field = format!("linux.namespaces[{i}].path");
    let f = File::open(path).map_err(|e| config(&field, format!("{}: {e}", path.display())))?;
    check_ns_file(&f, nstype).map_err(|m| config(&field, format!("{}: {m}", path.display())))?;
    let join = Join {
        name,
        nstype,
        fd: OwnedFd::from(f),
    };
    if nstype == libc::CLONE_NEWNS {
        p.mount_join_path = Some(path.to_path_buf());
    }
    match nstype {
        libc::CLONE_NEWUSER | libc::CLONE_NEWNS => p.init_joins.push(join),
        // Never entered by the privileged init; its /proc is opened inside it by an
        // unprivileged process (pidns_proc.rs).
        libc::CLONE_NEWPID => p.pid_join = Some(join),
        _ => p.parent_joins.push(join),
    }
    Ok(())
}

/// A new user namespace's maps, and whether the user (not vsrun) must write them (rootless).
fn plan_id_maps(p: &mut Plan, linux: Option<&Linux>, user_join: bool) -> Result<()> {
    let l = linux.ok_or_else(|| config("linux.uidMappings", "a user namespace needs mappings"))?;
    p.uid_map = id_map("linux.uidMappings", l.uid_mappings().as_deref())?;
    p.gid_map = id_map("linux.gidMappings", l.gid_mappings().as_deref())?;
    p.unprivileged_maps = !user_join && crate::rootless::unprivileged();
    p.setgroups_denied = p.unprivileged_maps
        && crate::rootless::maps_only(&p.gid_map, nix::unistd::getegid().as_raw());
    Ok(())
}

/// `exec`: join every namespace of the running init that differs from vsrun's own (setns into
/// one's own user namespace is EINVAL, and joining the same one is a no-op anyway).
pub fn plan_join_all(pid: i32) -> Result<Plan> {
    use std::os::unix::fs::MetadataExt;
    let mut p = Plan::default();
    for (name, nstype) in [
        ("user", libc::CLONE_NEWUSER),
        ("ipc", libc::CLONE_NEWIPC),
        ("uts", libc::CLONE_NEWUTS),
        ("net", libc::CLONE_NEWNET),
        ("pid", libc::CLONE_NEWPID),
        ("cgroup", libc::CLONE_NEWCGROUP),
        ("time", libc::CLONE_NEWTIME),
        ("mnt", libc::CLONE_NEWNS),
    ] {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let ours = format!("/proc/self/ns/{name}");
        let (Ok(t), Ok(o)) = (std::fs::metadata(&theirs), std::fs::metadata(&ours)) else {
            continue;
        };
        if t.ino() == o.ino() && t.dev() == o.dev() {
            continue;
        }
        let f = File::open(&theirs).step(|| format!("open {theirs}"))?;
        let join = Join {
            name,
            nstype,
            fd: OwnedFd::from(f),
        };
        match nstype {
            // cgroup: the init enters it once it is in the container's cgroup. From inside
            // the namespace, cgroup v2 with nsdelegate refuses (ENOENT) to move a process in
            // from a cgroup outside it, which CLONE_INTO_CGROUP from vsrun's cgroup would be.
            libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWCGROUP => {
                p.init_joins.push(join)
            }
            libc::CLONE_NEWPID => p.pid_join = Some(join),
            _ => p.parent_joins.push(join),
        }
    }
    if crate::rootless::unprivileged()
        && p.init_joins.iter().any(|j| j.nstype == libc::CLONE_NEWUSER)
    {
        // Rootless: vsrun has no rights in the container's namespaces until it is in the
        // container's user namespace (which owns them), so the init joins them all after it.
        p.init_joins.append(&mut p.parent_joins);
    }
    p.init_joins.sort_by_key(|j| join_rank(j.nstype));
    p.setgroups_denied =
        std::fs::read_to_string(format!("/proc/{pid}/setgroups")).is_ok_and(|s| s.trim() == "deny");
    let root = format!("/proc/{pid}/root");
    p.container_root = Some(
        crate::rootfs::resolve::open_host(
            std::path::Path::new(&root),
            libc::O_PATH | libc::O_DIRECTORY,
        )
        .step(|| format!("open {root} (the container's root)"))?,
    );
    Ok(p)
}

/// Init side, after the privileged steps: the processes it forks from now on are born in the
/// joined pid namespace (setns(CLONE_NEWPID) moves only the children). Needs CAP_SYS_ADMIN,
/// so it comes before the drop.
pub fn enter_pid_for_children(plan: &Plan) -> Result<()> {
    let Some(j) = &plan.pid_join else {
        return Ok(());
    };
    crate::syscall::setns(j.fd.as_raw_fd(), j.nstype)
        .step(|| format!("setns into {} namespace", j.name))
}

/// `exec`: after the setns calls, take the container's root as ours (see `container_root`).
pub fn enter_container_root(plan: &Plan) -> Result<()> {
    let Some(root) = &plan.container_root else {
        return Ok(());
    };
    nix::unistd::fchdir(root.as_raw_fd()).step(|| "chdir into the container's root".into())?;
    nix::unistd::chroot(".").step(|| "chroot into the container's root".into())
}

fn id_map(field: &str, maps: Option<&[LinuxIdMapping]>) -> Result<String> {
    let maps = maps.unwrap_or_default();
    if maps.is_empty() {
        return Err(config(
            field,
            "a new user namespace needs at least one mapping",
        ));
    }
    Ok(maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect())
}

/// A path given as a namespace must really be a namespace of that type (NS_GET_NSTYPE).
fn check_ns_file(f: &File, nstype: i32) -> std::result::Result<(), String> {
    use std::os::fd::AsFd;
    let Ok(got) = crate::syscall::ns::ns_get_nstype(f.as_fd()) else {
        return Err("not a namespace file".into());
    };
    if got != nstype {
        return Err("namespace file of another type".into());
    }
    Ok(())
}

/// Parent side: write the id maps of a new user namespace. A privileged writer leaves
/// setgroups allowed inside. Without the host's root (rootless) it is done as runc does: a map
/// of the caller's own id alone is written directly, after "deny" to setgroups for the gid map
/// (user_namespaces(7)); any other map through the setuid newuidmap/newgidmap (package
/// uidmap), which check it against /etc/subuid and /etc/subgid.
pub fn write_id_maps(pid: i32, plan: &Plan) -> Result<()> {
    if !plan.new_user {
        return Ok(());
    }
    if !plan.unprivileged_maps {
        write_map(pid, "uid_map", "linux.uidMappings", &plan.uid_map)?;
        return write_map(pid, "gid_map", "linux.gidMappings", &plan.gid_map);
    }
    let (euid, egid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    if crate::rootless::maps_only(&plan.uid_map, euid) {
        write_map(pid, "uid_map", "linux.uidMappings", &plan.uid_map)?;
    } else {
        write_map_or_helper(pid, "uid_map", "linux.uidMappings", &plan.uid_map)?;
    }
    if crate::rootless::maps_only(&plan.gid_map, egid) {
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny")
            .step(|| "rootless: write \"deny\" to the init's setgroups".into())?;
        write_map(pid, "gid_map", "linux.gidMappings", &plan.gid_map)
    } else {
        write_map_or_helper(pid, "gid_map", "linux.gidMappings", &plan.gid_map)
    }
}

/// Rootless podman runs the runtime as uid 0 of its own user namespace, with CAP_SETUID and
/// CAP_SETGID there: it may write any map of ids that namespace holds (`--userns keep-id`
/// swaps 0 and the user's id), which newuidmap would check against the host's /etc/subuid and
/// refuse. So the map is written directly first and the setuid helper used on EPERM only,
/// as runc's nsexec does (update_uidmap).
fn write_map_or_helper(pid: i32, file: &str, field: &str, map: &str) -> Result<()> {
    match std::fs::write(format!("/proc/{pid}/{file}"), map) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let helper = if file == "uid_map" {
                "newuidmap"
            } else {
                "newgidmap"
            };
            map_with_helper(pid, helper, field, map)
        }
        Err(e) => Err(e).step(|| format!("write {file} {:?} ({field})", map.trim())),
    }
}

fn write_map(pid: i32, file: &str, field: &str, map: &str) -> Result<()> {
    std::fs::write(format!("/proc/{pid}/{file}"), map)
        .step(|| format!("write {file} {:?} ({field})", map.trim()))
}

/// `newuidmap PID ID HOSTID COUNT...`; its own message names the range it refused.
fn map_with_helper(pid: i32, helper: &str, field: &str, map: &str) -> Result<()> {
    let out = std::process::Command::new(helper)
        .arg(pid.to_string())
        .args(map.split_whitespace())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            config(
                field,
                format!(
                    "rootless: mapping ids other than the user's own needs {helper} (package uidmap): {e}"
                ),
            )
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(config(
        field,
        format!(
            "rootless: {helper} {pid} {} failed: {}",
            map.split_whitespace().collect::<Vec<_>>().join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    ))
}

/// Init side: join the user (and mount) namespace given by path, unshare what must follow a
/// user join, then make the time namespace the exec will enter. Runs before
/// `become_userns_root`: the offsets file is owned by host root while the init is non-dumpable.
/// Returns whether a user namespace joined by path denies setgroups(2).
pub fn enter(plan: &Plan) -> Result<bool> {
    let mut setgroups_denied = false;
    for j in &plan.init_joins {
        crate::syscall::setns(j.fd.as_raw_fd(), j.nstype)
            .step(|| format!("setns into {} namespace", j.name))?;
        if j.nstype == libc::CLONE_NEWUSER {
            // Only the namespace itself knows (a rootless owner wrote "deny" before its gid
            // map); read through the caller's /proc, before a mount namespace is joined.
            setgroups_denied = std::fs::read_to_string("/proc/thread-self/setgroups")
                .is_ok_and(|s| s.trim() == "deny");
        }
    }
    if plan.unshare_flags != 0 {
        nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
            plan.unshare_flags as i32,
        ))
        .step(|| "unshare namespaces after joining the user namespace".into())?;
    }
    if plan.new_cgroup {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .step(|| "unshare cgroup namespace".into())?;
    }
    if plan.new_time {
        nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
            libc::CLONE_NEWTIME,
        ))
        .step(|| "unshare time namespace".into())?;
        if !plan.time_offsets.is_empty() {
            std::fs::write("/proc/self/timens_offsets", &plan.time_offsets)
                .step(|| "write timens_offsets (linux.timeOffsets)".into())?;
        }
        enter_own_time_namespace()?;
    }
    Ok(setgroups_denied)
}

/// unshare(CLONE_NEWTIME) moves only the children. Kernels since 6.2 also move a process at
/// execve; older ones (Debian 12's 6.1) never would, so the init enters the namespace itself,
/// once its offsets are written (a single-threaded process may setns into a time namespace).
/// `exec` then finds it in /proc/<init>/ns/time and joins it.
fn enter_own_time_namespace() -> Result<()> {
    let step = || "enter the new time namespace (linux.timeOffsets)".to_string();
    let f = File::open("/proc/self/ns/time_for_children").step(step)?;
    crate::syscall::setns(f.as_raw_fd(), libc::CLONE_NEWTIME).step(step)
}

/// In a fresh user namespace the init is "nobody" until it switches to the mapped root; files
/// it creates for mount points would otherwise fail with EOVERFLOW.
pub fn become_userns_root(plan: &Plan) -> Result<()> {
    if !plan.new_user || !maps_zero(&plan.uid_map) || !maps_zero(&plan.gid_map) {
        return Ok(());
    }
    let z = nix::unistd::Gid::from_raw(0);
    nix::unistd::setresgid(z, z, z).step(|| "setresgid 0 in the user namespace".into())?;
    let z = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresuid(z, z, z).step(|| "setresuid 0 in the user namespace".into())?;
    Ok(())
}

fn maps_zero(map: &str) -> bool {
    map.lines().any(|l| {
        let mut it = l
            .split_whitespace()
            .map(|x| x.parse::<u64>().unwrap_or(u64::MAX));
        matches!((it.next(), it.next(), it.next()), (Some(c), Some(_), Some(s)) if c == 0 && s > 0)
    })
}

// ---------------------------------------------------------------------------------------------
// The checks of linux.namespaces, uidMappings/gidMappings, hostname and timeOffsets: what needs
// no kernel, run by bundle.rs before any plan.

/// The namespaces a config asks for, by type: None = not listed, Some(None) = new,
/// Some(Some(path)) = joined.
#[derive(Default)]
pub struct NsSet {
    entries: Vec<(LinuxNamespaceType, Option<PathBuf>)>,
}

impl NsSet {
    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        self.entries.iter().any(|(x, _)| *x == t)
    }
    pub fn path_of(&self, t: LinuxNamespaceType) -> Option<&Path> {
        self.entries
            .iter()
            .find(|(x, _)| *x == t)
            .and_then(|(_, p)| p.as_deref())
    }
}

fn ns_name(t: LinuxNamespaceType) -> &'static str {
    use LinuxNamespaceType::*;
    match t {
        Mount => "mount",
        Cgroup => "cgroup",
        Uts => "uts",
        Ipc => "ipc",
        User => "user",
        Pid => "pid",
        Network => "network",
        Time => "time",
    }
}

/// Each type at most once; a path to join must be absolute (config-linux.md). An empty path
/// means "new", as in runc.
pub fn validate_namespaces(linux: Option<&Linux>) -> Result<NsSet> {
    let mut set = NsSet::default();
    let list = linux
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default();
    for (i, ns) in list.iter().enumerate() {
        let t = ns.typ();
        if set.has(t) {
            return Err(config(
                format!("linux.namespaces[{i}].type"),
                format!("duplicate namespace type {:?}", ns_name(t)),
            ));
        }
        let path = ns.path().clone().filter(|p| !p.as_os_str().is_empty());
        if let Some(p) = &path {
            if !p.is_absolute() || crate::rootfs::has_nul(p) {
                return Err(config(
                    format!("linux.namespaces[{i}].path"),
                    format!("{p:?} must be an absolute path"),
                ));
            }
        }
        set.entries.push((t, path));
    }
    Ok(set)
}

/// The kernel's limit on lines in uid_map/gid_map (since Linux 4.15).
const MAX_ID_MAP_LINES: usize = 340;

/// Mappings need a user namespace, and a new user namespace needs mappings (a joined one
/// brings its own). Each list must be one the kernel accepts: no empty or overflowing range,
/// no overlap on either side, at most 340 lines.
pub fn validate_idmaps(spec: &Spec, ns: &NsSet) -> Result<()> {
    let linux = spec.linux().as_ref();
    let uid = linux
        .and_then(|l| l.uid_mappings().as_deref())
        .unwrap_or_default();
    let gid = linux
        .and_then(|l| l.gid_mappings().as_deref())
        .unwrap_or_default();
    if !ns.has(LinuxNamespaceType::User) {
        for (field, list) in [("linux.uidMappings", uid), ("linux.gidMappings", gid)] {
            if !list.is_empty() {
                return Err(config(
                    field,
                    "user namespace mappings given, but linux.namespaces has no user namespace",
                ));
            }
        }
    } else if ns.path_of(LinuxNamespaceType::User).is_none() {
        for (field, list) in [("linux.uidMappings", uid), ("linux.gidMappings", gid)] {
            if list.is_empty() {
                return Err(config(
                    field,
                    "a new user namespace needs mappings (or a namespace path to join)",
                ));
            }
        }
    }
    validate_idmap_list("linux.uidMappings", uid)?;
    validate_idmap_list("linux.gidMappings", gid)?;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let uid = m.uid_mappings().as_deref().unwrap_or_default();
        let gid = m.gid_mappings().as_deref().unwrap_or_default();
        validate_idmap_list(&format!("mounts[{i}].uidMappings"), uid)?;
        validate_idmap_list(&format!("mounts[{i}].gidMappings"), gid)?;
    }
    Ok(())
}

fn validate_idmap_list(field: &str, list: &[LinuxIdMapping]) -> Result<()> {
    if list.len() > MAX_ID_MAP_LINES {
        return Err(config(
            field,
            format!(
                "{} mappings, the kernel accepts at most {MAX_ID_MAP_LINES}",
                list.len()
            ),
        ));
    }
    // The kernel rejects a range whose end does not fit in 32 bits (first + count wraps), and
    // id 4294967295 is (uid_t)-1, never valid.
    let end = |first: u32, size: u32| u64::from(first) + u64::from(size);
    for (i, m) in list.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if m.size() == 0 {
            return Err(config(format!("{at}.size"), "must be greater than 0"));
        }
        for (name, first) in [("containerID", m.container_id()), ("hostID", m.host_id())] {
            if end(first, m.size()) > u64::from(u32::MAX) {
                return Err(config(
                    &at,
                    format!("{name} {first} + size {} overflows 32-bit ids", m.size()),
                ));
            }
        }
        for (j, o) in list[..i].iter().enumerate() {
            let clash =
                |a: u32, b: u32| u64::from(a) < end(b, o.size()) && u64::from(b) < end(a, m.size());
            if clash(m.container_id(), o.container_id()) || clash(m.host_id(), o.host_id()) {
                return Err(config(&at, format!("overlaps {field}[{j}]")));
            }
        }
    }
    Ok(())
}

/// runc: "unable to set hostname without a private UTS namespace". A joined UTS namespace
/// counts (runc allows it too). sethostname(2) takes at most 64 bytes.
pub fn validate_uts(spec: &Spec, ns: &NsSet) -> Result<()> {
    for (field, value) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        let Some(v) = value.as_deref().filter(|v| !v.is_empty()) else {
            continue;
        };
        if !ns.has(LinuxNamespaceType::Uts) {
            return Err(config(
                field,
                format!("unable to set {field} without a private UTS namespace"),
            ));
        }
        if v.len() > 64 || v.contains('\0') {
            return Err(config(field, format!("{v:?}: at most 64 bytes, no NUL")));
        }
    }
    Ok(())
}

/// config-linux.md: offsets only for a new time namespace, only for the monotonic and boottime
/// clocks; nanoseconds are a fraction of a second.
pub fn validate_time_offsets(linux: &Linux, ns: &NsSet) -> Result<()> {
    let Some(offsets) = linux.time_offsets().as_ref().filter(|o| !o.is_empty()) else {
        return Ok(());
    };
    if !ns.has(LinuxNamespaceType::Time) {
        return Err(config(
            "linux.timeOffsets",
            "time offsets given, but linux.namespaces has no time namespace",
        ));
    }
    if ns.path_of(LinuxNamespaceType::Time).is_some() {
        return Err(config(
            "linux.timeOffsets",
            "a joined time namespace keeps its own offsets; give a path or offsets, not both",
        ));
    }
    let mut clocks: Vec<_> = offsets.iter().collect();
    clocks.sort_by(|a, b| a.0.cmp(b.0));
    for (clock, off) in clocks {
        if clock != "monotonic" && clock != "boottime" {
            return Err(config(
                format!("linux.timeOffsets.{clock}"),
                "only \"monotonic\" and \"boottime\" clocks have offsets",
            ));
        }
        if off.nanosecs().is_some_and(|n| n >= 1_000_000_000) {
            return Err(config(
                format!("linux.timeOffsets.{clock}.nanosecs"),
                "must be less than 1000000000",
            ));
        }
    }
    Ok(())
}
