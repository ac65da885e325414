//! `vsrun delete [--force]`: a stopped or created container is removed; a running one only
//! with --force (SIGKILL to every process, then wait until they are gone).

use crate::cli::{DeleteArgs, GlobalOpts};
use crate::error::{state, Result};
use crate::state::{Container, Status};
use std::time::{Duration, Instant};

pub fn run(g: &GlobalOpts, args: &DeleteArgs) -> Result<i32> {
    if args.force {
        Container::sweep_abandoned(&g.root);
    }
    // runc: `delete --force` of a container that does not exist succeeds; engines call it
    // to clean up after a failed create.
    if args.force && !g.root.join(&args.id).is_dir() {
        crate::state::validate_id(&args.id)?;
        return Ok(0);
    }
    let c = Container::open(&g.root, &args.id)?;
    let st = match c.load() {
        Ok(st) => st,
        // A create that crashed before writing state.json: only --force clears it, with what
        // such a create can have made under the default names (its cgroup, bound-IP dir).
        Err(_) if args.force => {
            let _ = crate::cgroups::remove(
                &std::path::PathBuf::from(format!("/vsrun/{}", args.id)),
                false,
                &args.id,
            );
            let _ = crate::net::remove(&args.id);
            crate::disk::remove_recorded(&c.dir)?;
            return c.destroy().map(|_| 0);
        }
        Err(e) => return Err(e),
    };
    match crate::state::status(&c.dir, &st) {
        Status::Stopped => {}
        Status::Created => kill_and_wait(&st)?,
        Status::Running | Status::Paused if args.force => kill_and_wait(&st)?,
        Status::Running | Status::Paused => {
            return Err(state(format!(
                "cannot delete container {:?} that is not stopped: running (use --force)",
                args.id
            )))
        }
    }
    teardown(c, &st)?;
    Ok(0)
}

/// Remove what a container holds on the host: its cgroup (libcgroups kills stragglers), then
/// the state dir. Shared with `run` when the container exits.
pub fn teardown(c: Container, st: &crate::state::State) -> Result<()> {
    crate::cgroups::remove(&st.cgroup_path, st.systemd_cgroup, &st.id)?;
    if st.bind_ip {
        crate::net::remove(&st.id)?;
    }
    if let Some(q) = &st.disk {
        crate::disk::remove(q)?;
    }
    st.run_hooks_warn(crate::hooks::HookPoint::Poststop, "stopped");
    if let Some(id) = st.shared_root_mount {
        detach_shared_mounts(st, id)?;
    }
    c.destroy()
}

/// A container without a mount namespace of its own mounted in a shared one, all below one
/// bind of its rootfs: detach that. A joined namespace that is gone took the mounts with it.
fn detach_shared_mounts(st: &crate::state::State, id: u64) -> Result<()> {
    let ns = match &st.mount_join_path {
        None => None,
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => Some(std::os::fd::OwnedFd::from(f)),
            Err(_) => return Ok(()),
        },
    };
    crate::rootfs::shared::detach(ns.as_ref().map(std::os::fd::AsFd::as_fd), &st.rootfs, id)
}

fn kill_and_wait(st: &crate::state::State) -> Result<()> {
    super::kill::signal_all(st, libc::SIGKILL)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while crate::state::process_alive(st.pid, st.pid_start) {
        if Instant::now() > deadline {
            return Err(state(format!(
                "container init {} did not die after SIGKILL",
                st.pid
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}
