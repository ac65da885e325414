//! How root inside the container is dropped: rlimits, uid/gid/groups, the five capability
//! sets, umask, no_new_privs. `plan` turns the process spec into plain values in the parent;
//! the `apply_*` steps run in the init, in the order the kernel's rules need (see `drop_to`).

pub mod caps;
pub mod labels;
pub mod process;
pub mod rlimits;
pub mod sealed_exe;
pub mod seccomp;
pub mod user;

use crate::error::{config, Result, StepExt};
use oci_spec::runtime::Process;

/// Everything about the process's privileges, decided before the clone.
pub struct Plan {
    pub labels: labels::Plan,
    pub user: user::Identity,
    pub caps: caps::CapPlan,
    pub rlimits: Vec<rlimits::Rlimit>,
    pub no_new_privs: bool,
    pub umask: Option<u32>,
    pub oom_score_adj: Option<i32>,
}

pub fn plan(process: &Process) -> Result<Plan> {
    let oom = process.oom_score_adj();
    if let Some(v) = oom {
        if !(-1000..=1000).contains(&v) {
            return Err(config(
                "process.oomScoreAdj",
                format!("{v} is outside -1000..1000"),
            ));
        }
    }
    Ok(Plan {
        labels: labels::plan(process, "process.")?,
        user: user::plan(process.user())?,
        caps: caps::plan(process.capabilities().as_ref())?,
        rlimits: rlimits::plan(process.rlimits().as_deref().unwrap_or_default())?,
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        // runc sets 0022 when the config has none, rather than inheriting the caller's.
        umask: Some(process.user().umask().unwrap_or(0o022)),
        oom_score_adj: oom,
    })
}

/// First half of the drop, while the init still holds everything: rlimits while
/// CAP_SYS_RESOURCE is held, the bounding set while CAP_SETPCAP is held, then the uid/gid switch
/// with KEEPCAPS so permitted survives it, and the config's effective set. From here on the
/// init checks files (args[0], /etc/passwd) with the credentials execve will use, yet can still
/// load a seccomp filter without no_new_privs (`finish`).
/// `setgroups_denied`: found so in a user namespace joined by path (context/namespaces.rs).
pub fn drop_to_user(plan: &Plan, setgroups_denied: bool) -> Result<()> {
    rlimits::apply(&plan.rlimits)?;
    caps::drop_bounding(&plan.caps)?;
    crate::syscall::prctl(libc::PR_SET_KEEPCAPS, 1).step(|| "prctl(PR_SET_KEEPCAPS)".into())?;
    user::switch(&plan.user, plan.user.setgroups_denied || setgroups_denied)?;
    crate::syscall::prctl(libc::PR_SET_KEEPCAPS, 0).step(|| "prctl(PR_SET_KEEPCAPS)".into())?;
    caps::set_effective(&plan.caps)?;
    if let Some(mask) = plan.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
            mask as libc::mode_t,
        ));
    }
    Ok(())
}

/// The config's exact sets, as the last privileged step before the filter. Without
/// no_new_privs the kernel loads a filter only for a holder of CAP_SYS_ADMIN: when a filter
/// follows and the config does not grant it, it is kept in effective and permitted, and
/// `drop_kept` takes it away right after the load (the one capset that follows the filter,
/// as in runc and crun). Returns whether `drop_kept` is due.
pub fn set_capabilities(plan: &Plan, filter_follows: bool) -> Result<bool> {
    let keep = filter_follows && !loads_with_final_credentials(plan);
    caps::set_sets(
        &plan.caps,
        keep.then_some(::caps::Capability::CAP_SYS_ADMIN),
    )?;
    Ok(keep)
}

/// Can a process holding exactly the config's credentials load a seccomp filter? With
/// no_new_privs, or with CAP_SYS_ADMIN granted.
pub fn loads_with_final_credentials(plan: &Plan) -> bool {
    plan.no_new_privs
        || plan
            .caps
            .effective
            .contains(&::caps::Capability::CAP_SYS_ADMIN)
}

/// After the filter: the sets exactly as the config has them (see `set_capabilities`).
pub fn drop_kept(plan: &Plan, due: bool) -> Result<()> {
    if due {
        caps::capset_exact(&plan.caps)?;
    }
    Ok(())
}

/// no_new_privs comes after everything that needs privilege and before seccomp, which
/// requires it for an unprivileged filter load.
pub fn set_no_new_privs(plan: &Plan) -> Result<()> {
    if plan.no_new_privs {
        crate::syscall::prctl(libc::PR_SET_NO_NEW_PRIVS, 1)
            .step(|| "prctl(PR_SET_NO_NEW_PRIVS)".into())?;
    }
    Ok(())
}
