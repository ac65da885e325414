//! Bound-IP mode (VServer's chbind): a context on the host's network stack whose sockets may
//! only use the addresses listed in the annotation `org.vsrun.bind-ip`.
//!
//! Life cycle, following the process model:
//! - `plan` (parent, before the clone): parse and check the list, check every address is
//!   assigned in the network namespace the container will use, find the cgroup v2 mount and
//!   generate the nine programs.
//! - `attach` (parent, after the clone, before "go"): load the programs, make the cgroup v2
//!   directory, attach them, move the init in, close the program fds. The init's first socket
//!   is created after "go". Loading only here means no program fd ever exists in the init's
//!   fd table (a clone copies it): on this kernel *any* process holding a program fd can detach
//!   it from a cgroup it can open — no capability is checked (see `tests.rs`).
//! - `join` (exec): a process entering a bound context enters its directory too.
//! - `remove` (delete, delete --force, a failed create): detach and rmdir; idempotent.
//!
//! Why a container cannot undo it: the programs are attached with BPF_F_ALLOW_MULTI, and a
//! MULTI attachment can only be detached by naming the program with an fd. Getting one needs
//! CAP_SYS_ADMIN (BPF_PROG_GET_FD_BY_ID; listing ids with BPF_PROG_QUERY needs CAP_NET_ADMIN),
//! which default container capabilities lack, and vsrun never lets one reach the container.
//! (An exclusive attachment — flags 0 — is worse: the kernel detaches it for anyone who can
//! open the cgroup directory, without any program fd or capability.) Leaving the directory
//! needs a writable `cgroup.procs` of an ancestor, which a container with a cgroup namespace
//! and a read-only cgroup mount never sees. All of this is tested in `tests.rs`.

use super::cgroup2::{self, Hook, Layout};
use super::progs::{self, Addrs};
use super::sys;
use crate::bpf::{self, Insn};
use crate::error::{config, Error, Result, StepExt};
use std::collections::HashMap;
use std::fs::File;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

pub const ANNOTATION: &str = "org.vsrun.bind-ip";
/// At most this many addresses per family (VServer's NB_IPV4ROOT was 16 too).
pub const MAX_PER_FAMILY: usize = 16;

fn field() -> String {
    format!("annotations.{ANNOTATION:?}")
}

/// Which network stack the container's processes will use: where the addresses must exist.
pub enum NetStack<'a> {
    /// No network namespace in the config: the runtime's own (the host's).
    Current,
    /// `linux.namespaces[].path` of type network: that namespace.
    Joined(BorrowedFd<'a>),
    /// A new, empty network namespace: bind-ip is refused (nothing to bind to).
    New,
}

/// Everything decided before the clone.
pub struct Plan {
    pub addrs: Addrs,
    progs: Vec<(Hook, Vec<Insn>)>,
    layout: Layout,
    base: PathBuf,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("addrs", &self.addrs)
            .field("base", &self.base)
            .finish()
    }
}

impl Plan {
    /// The cgroup v2 directory of context `id`.
    pub fn cgroup_dir(&self, id: &str) -> Result<PathBuf> {
        context_dir(&self.base, id)
    }

    /// Put contexts below `base` instead of `<v2 mount>/vsrun` (tests; a pure v2 host whose
    /// container cgroup is elsewhere).
    pub fn set_cgroup_base(&mut self, base: PathBuf) {
        self.base = base;
    }
}

fn context_dir(base: &Path, id: &str) -> Result<PathBuf> {
    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
        return Err(crate::error::state(format!("invalid container id {id:?}")));
    }
    Ok(base.join(id))
}

/// Parse the annotation's value: comma-separated IPv4/IPv6 addresses, each family in order.
pub fn parse(value: &str) -> std::result::Result<Addrs, String> {
    let mut a = Addrs::default();
    for item in value.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(format!("{value:?}: empty entry in the address list"));
        }
        let ip: IpAddr = item
            .parse()
            .map_err(|_| format!("{item:?} is not an IPv4 or IPv6 address"))?;
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(format!(
                "{ip}: the unspecified address and multicast addresses cannot be bound"
            ));
        }
        match ip {
            IpAddr::V4(v4) => {
                if v4.is_broadcast() {
                    return Err(format!("{v4}: the broadcast address cannot be bound"));
                }
                if a.v4.contains(&v4) {
                    return Err(format!("{v4} is listed twice"));
                }
                a.v4.push(v4);
            }
            IpAddr::V6(v6) => {
                if v6.to_ipv4_mapped().is_some() {
                    return Err(format!("{v6}: write IPv4 addresses in IPv4 form"));
                }
                if v6.segments()[0] & 0xffc0 == 0xfe80 {
                    return Err(format!(
                        "{v6}: link-local addresses need an interface scope and are not supported"
                    ));
                }
                if a.v6.contains(&v6) {
                    return Err(format!("{v6} is listed twice"));
                }
                a.v6.push(v6);
            }
        }
    }
    if a.v4.len() > MAX_PER_FAMILY || a.v6.len() > MAX_PER_FAMILY {
        return Err(format!(
            "at most {MAX_PER_FAMILY} addresses per family are supported"
        ));
    }
    Ok(a)
}

/// Parent, before the clone: `None` when the annotation is absent.
pub fn plan(annotations: &HashMap<String, String>, net: NetStack<'_>) -> Result<Option<Plan>> {
    let Some(value) = annotations.get(ANNOTATION) else {
        return Ok(None);
    };
    let addrs = parse(value).map_err(|m| config(field(), m))?;
    check_local(&addrs, &net)?;
    let layout = cgroup2::layout().ok_or_else(|| {
        config(
            field(),
            "needs a cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified",
        )
    })?;
    let progs = generate(&addrs)?;
    check_kernel_has_cgroup_bpf()?;
    Ok(Some(Plan {
        addrs,
        progs,
        base: layout.base(),
        layout,
    }))
}

/// The real programs load only after the clone (the container must never inherit their fds),
/// so a kernel without cgroup BPF (no CONFIG_BPF_SYSCALL or CONFIG_CGROUP_BPF: ENOSYS or
/// EINVAL) is found here first, with a trivial program that is closed again at once.
fn check_kernel_has_cgroup_bpf() -> Result<()> {
    let hook = Hook::ALL[0];
    let mut a = bpf::asm::Asm::new();
    a.mov64_imm(bpf::asm::Reg::R0, 1).exit();
    let insns = a.finish().map_err(|e| config(field(), e.to_string()))?;
    bpf::load(hook.prog_type(), hook as u32, "vsrun_probe", &insns)
        .map(drop)
        .map_err(|e| {
            config(
                field(),
                format!("this kernel cannot attach cgroup BPF programs (loading a cgroup sock_addr program: {e})"),
            )
        })
}

/// Every listed address must be one the container's network stack lets a plain process bind:
/// assigned to an interface, or local by a route (all of 127/8 on `lo`, AnyIP routes), as
/// Linux treats them. Checked on the stack the container will use.
fn check_local(addrs: &Addrs, net: &NetStack<'_>) -> Result<()> {
    let wanted: Vec<IpAddr> = addrs
        .v4
        .iter()
        .map(|a| IpAddr::V4(*a))
        .chain(addrs.v6.iter().map(|a| IpAddr::V6(*a)))
        .collect();
    match net {
        NetStack::Current => check_each_local(&wanted),
        NetStack::Joined(fd) => in_netns(*fd, || check_each_local(&wanted)),
        NetStack::New => Err(config(
            field(),
            "needs the host's network stack or a joined network namespace, but the config \
             creates a new network namespace (remove it from linux.namespaces)",
        )),
    }
}

fn check_each_local(wanted: &[IpAddr]) -> Result<()> {
    let assigned = sys::local_addrs().step(|| "list interface addresses".into())?;
    for a in wanted {
        if !assigned.contains(a) && !local_by_route(*a) {
            return Err(config(
                field(),
                format!("{a} is not assigned to any interface, nor local by a route"),
            ));
        }
    }
    Ok(())
}

/// The kernel's own answer: a bind to the address succeeds only when its routing table makes
/// it local, unless non-local binds are allowed, where a bind proves nothing.
fn local_by_route(a: IpAddr) -> bool {
    let sysctl = match a {
        IpAddr::V4(_) => "/proc/sys/net/ipv4/ip_nonlocal_bind",
        IpAddr::V6(_) => "/proc/sys/net/ipv6/ip_nonlocal_bind",
    };
    let nonlocal = std::fs::read_to_string(sysctl).is_ok_and(|v| v.trim() != "0");
    !nonlocal && std::net::UdpSocket::bind((a, 0)).is_ok()
}

/// Run `f` in another network namespace: enter it, run, come back. The parent is
/// single-threaded here and only this thread moves.
fn in_netns<T>(ns: BorrowedFd<'_>, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let home =
        File::open("/proc/thread-self/ns/net").step(|| "open own network namespace".into())?;
    crate::syscall::setns(ns.as_raw_fd(), libc::CLONE_NEWNET)
        .step(|| format!("setns into the joined network namespace ({})", field()))?;
    let r = f();
    crate::syscall::setns(home.as_raw_fd(), libc::CLONE_NEWNET)
        .step(|| "setns back into vsrun's network namespace".into())?;
    r
}

fn generate(addrs: &Addrs) -> Result<Vec<(Hook, Vec<Insn>)>> {
    Hook::ALL
        .iter()
        .map(|&hook| {
            let insns = progs::generate(hook, addrs).map_err(|e| Error::Os {
                step: format!("assemble {}", hook.prog_name()),
                source: std::io::Error::other(e.to_string()),
            })?;
            Ok((hook, insns))
        })
        .collect()
}

fn load(progs: &[(Hook, Vec<Insn>)]) -> Result<Vec<(Hook, OwnedFd)>> {
    progs
        .iter()
        .map(|(hook, insns)| {
            let fd = bpf::load(hook.prog_type(), *hook as u32, hook.prog_name(), insns)
                .step(|| format!("load BPF program {} ({})", hook.prog_name(), field()))?;
            Ok((*hook, fd))
        })
        .collect()
}

/// Parent, after the clone and before "go": programs attached, then `pid` moved in.
pub fn attach(plan: &Plan, id: &str, pid: i32) -> Result<()> {
    attach_at(plan, &plan.cgroup_dir(id)?, pid)
}

/// `attach` to an explicit cgroup v2 directory. On a pure v2 host (`!plan.owns_dirs()`) whose
/// config sets linux.cgroupsPath, pass the container's own cgroup here: `attach` would use
/// `<mount>/vsrun/<id>` and move the init out of the cgroup its resources are applied to.
/// The programs then go with that cgroup when `crate::cgroups` removes it.
pub fn attach_at(plan: &Plan, dir: &Path, pid: i32) -> Result<()> {
    let dir = dir.to_path_buf();
    let loaded = load(&plan.progs)?;
    cgroup2::attach_all(&dir, &loaded, pid)
        .step(|| format!("bind-ip: attach programs to cgroup {}", dir.display()))
}

/// `exec` into a running context: if it is bound, the new process enters its directory too
/// (on a hybrid host `crate::cgroups` joins only the v1 hierarchies). Before "go", like attach.
pub fn join(id: &str, pid: i32) -> Result<()> {
    let Some(layout) = cgroup2::layout() else {
        return Ok(());
    };
    let dir = context_dir(&layout.base(), id)?;
    if !dir.is_dir() {
        return Ok(());
    }
    cgroup2::join(&dir, pid).step(|| format!("bind-ip: join cgroup {}", dir.display()))
}

/// delete, delete --force, failed create: detach vsrun's programs and (where bind-ip made it)
/// remove the directory. Nothing there is not an error.
pub fn remove(id: &str) -> Result<()> {
    let Some(layout) = cgroup2::layout() else {
        return Ok(());
    };
    remove_at(&context_dir(&layout.base(), id)?, layout.owns_dirs())
}

/// `remove` for an explicit directory (tests, custom bases).
pub fn remove_at(dir: &Path, rmdir: bool) -> Result<()> {
    cgroup2::detach_ours(dir)
        .step(|| format!("bind-ip: detach programs from cgroup {}", dir.display()))?;
    if rmdir {
        cgroup2::remove_dir(dir).step(|| format!("bind-ip: remove cgroup {}", dir.display()))?;
    }
    Ok(())
}

impl Plan {
    /// Whether bind-ip owns (and `remove` deletes) the per-context directory.
    pub fn owns_dirs(&self) -> bool {
        self.layout.owns_dirs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_families_in_order() {
        let a = parse("127.1.0.2, fd00:5::2,192.0.2.7").unwrap();
        assert_eq!(
            a.v4,
            vec![
                "127.1.0.2".parse::<std::net::Ipv4Addr>().unwrap(),
                "192.0.2.7".parse().unwrap()
            ]
        );
        assert_eq!(
            a.v6,
            vec!["fd00:5::2".parse::<std::net::Ipv6Addr>().unwrap()]
        );
    }

    #[test]
    fn rejects_what_cannot_be_bound() {
        for bad in [
            "",
            "127.1.0.2,,",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "::ffff:127.0.0.1",
            "fe80::1",
            "host.example",
            "127.1.0.2,127.1.0.2",
            "127.1.0.2/24",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        let many: Vec<String> = (1..=17).map(|i| format!("192.0.2.{i}")).collect();
        assert!(parse(&many.join(",")).is_err());
    }

    #[test]
    fn absent_annotation_is_no_plan() {
        assert!(plan(&HashMap::new(), NetStack::New).unwrap().is_none());
    }

    #[test]
    fn unassigned_address_names_the_annotation() {
        let ann = HashMap::from([(ANNOTATION.to_string(), "192.0.2.9".to_string())]);
        let e = plan(&ann, NetStack::Current).unwrap_err().to_string();
        assert_eq!(
            e,
            "annotations.\"org.vsrun.bind-ip\": 192.0.2.9 is not assigned to any interface, nor local by a route"
        );
        let e = plan(&ann, NetStack::New).unwrap_err().to_string();
        assert!(
            e.starts_with("annotations.\"org.vsrun.bind-ip\": needs the host's"),
            "{e}"
        );
    }
}
