//! What the host sees: namespace inodes, a process's cgroup, cgroup files, mounts, vsrun's
//! state; and the part of kubelet's cgroupfs driver that makes and removes the pod's cgroup.

use std::fs;
use std::path::{Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Every cgroup hierarchy mounted under /sys/fs/cgroup: one on a pure v2 host; on a v1
/// hybrid each controller's, the named `systemd` one and the empty cgroup2 `unified`, which
/// containers are placed in too (and so kubelet's pod cgroup).
fn hierarchies() -> Vec<PathBuf> {
    let table = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = table
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            let mnt = pre.split(' ').nth(4)?;
            let ours = mnt == CGROUP_ROOT || mnt.starts_with(&format!("{CGROUP_ROOT}/"));
            (ours && (fstype == "cgroup" || fstype == "cgroup2")).then(|| PathBuf::from(mnt))
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// `/proc/<pid>/ns/<ns>` as the kernel names it, e.g. `ipc:[4026531839]`.
pub fn ns_of(pid: u32, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("<{e}>"))
}

/// The host's own namespace (the lane runs in the host's namespaces).
pub fn host_ns(ns: &str) -> String {
    ns_of(std::process::id(), ns)
}

/// A pure cgroup v2 host: cgroup.controllers exists only at the root of a cgroup2 mount (the
/// v1 hybrid's cgroup2 sits at /sys/fs/cgroup/unified and holds no controllers).
pub fn unified() -> bool {
    Path::new(CGROUP_ROOT).join("cgroup.controllers").exists()
}

/// The cgroup path of `pid` for `controller` (the unified path on a cgroup2 host).
pub fn cgroup_of(pid: u32, controller: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let uni = unified();
    text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let hit = if uni {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        hit.then(|| path.to_string())
    })
}

/// The directory of cgroup `path` for `controller` on this host.
pub fn cgroup_dir(controller: &str, path: &str) -> PathBuf {
    let rel = path.trim_start_matches('/');
    if unified() {
        Path::new(CGROUP_ROOT).join(rel)
    } else {
        Path::new(CGROUP_ROOT).join(controller).join(rel)
    }
}

/// The memory limit file and the CPU quota as the host's cgroup version spells them.
pub fn memory_limit(path: &str) -> String {
    let file = if unified() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    read_trim(&cgroup_dir("memory", path).join(file))
}

pub fn cpu_quota(path: &str) -> String {
    if unified() {
        let max = read_trim(&cgroup_dir("cpu", path).join("cpu.max"));
        max.split_whitespace().next().unwrap_or("").to_string()
    } else {
        read_trim(&cgroup_dir("cpu", path).join("cpu.cfs_quota_us"))
    }
}

pub fn read_trim(p: &Path) -> String {
    fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("<{}: {e}>", p.display()))
}

/// Every hierarchy's directory of cgroup `path` that still exists.
pub fn cgroup_dirs_left(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    hierarchies()
        .into_iter()
        .map(|h| h.join(rel))
        .filter(|d| d.exists())
        .collect()
}

/// kubelet's cgroupfs driver makes the pod cgroup before RunPodSandbox: every level of
/// `/kubepods/<qos>/pod<uid>` in every hierarchy; cpuset levels get their parent's cpus and
/// mems, as libcontainer does, since an empty cpuset cannot take tasks.
pub fn make_pod_cgroup(path: &str) -> Result<(), String> {
    for base in hierarchies() {
        let mut dir = base.clone();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let parent = dir.clone();
            dir.push(part);
            if !dir.exists() {
                make_level(&parent, &dir)?;
            }
        }
    }
    Ok(())
}

fn make_level(parent: &Path, dir: &Path) -> Result<(), String> {
    if parent.join("cgroup.subtree_control").exists() {
        enable_subtree(parent)?;
    }
    fs::create_dir(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    if dir.join("cpuset.cpus").exists() && !dir.join("cgroup.subtree_control").exists() {
        copy_cpuset(parent, dir)?;
    }
    Ok(())
}

fn copy_cpuset(parent: &Path, dir: &Path) -> Result<(), String> {
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let v = read_trim(&parent.join(f));
        fs::write(dir.join(f), &v).map_err(|e| format!("write {}/{f}: {e}", dir.display()))?;
    }
    Ok(())
}

/// cgroup v2: the parent must delegate the controllers before its child can use them.
fn enable_subtree(parent: &Path) -> Result<(), String> {
    let avail = read_trim(&parent.join("cgroup.controllers"));
    let want: Vec<String> = avail.split_whitespace().map(|c| format!("+{c}")).collect();
    if want.is_empty() {
        return Ok(());
    }
    fs::write(parent.join("cgroup.subtree_control"), want.join(" "))
        .map_err(|e| format!("{}/cgroup.subtree_control: {e}", parent.display()))
}

/// kubelet removes the pod cgroup after RemovePodSandbox; it must be empty by then. The
/// levels above it are removed too when nothing else uses them (this host has no kubelet).
pub fn remove_pod_cgroup(path: &str) -> Result<(), String> {
    let levels: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for base in hierarchies() {
        for n in (1..=levels.len()).rev() {
            let dir = base.join(levels[..n].join("/"));
            if !dir.exists() {
                continue;
            }
            match fs::remove_dir(&dir) {
                Ok(()) => {}
                // A parent still holding other pods' cgroups stays, as under a real kubelet.
                Err(_) if n < levels.len() => break,
                Err(e) => return Err(format!("rmdir {}: {e}", dir.display())),
            }
        }
    }
    Ok(())
}

/// kubelet's systemd driver removes the pod's slice through systemd when the pod is gone.
pub fn stop_unit(unit: &str) -> Result<(), String> {
    let out = std::process::Command::new("systemctl")
        .args(["stop", unit])
        .output()
        .map_err(|e| format!("systemctl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Mount points at or under `dir`, from the host's mount table.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    let table = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .map(str::to_string)
        .collect()
}

/// `vsrun --root ROOT list -q`: the containers vsrun still keeps state for.
pub fn vsrun_list(vsrun: &Path, root: &Path) -> Result<Vec<String>, String> {
    let out = std::process::Command::new(vsrun)
        .arg("--root")
        .arg(root)
        .args(["list", "-q"])
        .output()
        .map_err(|e| format!("{}: {e}", vsrun.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}
