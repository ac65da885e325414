//! `vsrun delete [--force]`: a stopped or created container is removed; a running one only
//! with --force (SIGKILL to every process, then wait until they are gone).

use crate::cli::{DeleteArgs, GlobalOpts};
use crate::context::leftovers;
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
        // A create that crashed before writing state.json: only --force clears it.
        Err(_) if args.force => return remove_crashed_create(c, &args.id),
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

/// A create killed before state.json: its leftovers record names what it may have made. One
/// that stays keeps the state dir, so a retried delete finds the record again. Without a
/// record it died before claiming anything.
fn remove_crashed_create(c: Container, id: &str) -> Result<i32> {
    if let Some(rec) = leftovers::Record::read(&c.dir)? {
        let ns = rec.mount_ns();
        rec.leftovers(id, &ns).remove()?;
    }
    c.destroy().map(|_| 0)
}

/// Remove what a container holds on the host (context/leftovers.rs), run the poststop hooks,
/// then remove the state dir. Shared with `run` when the container exits.
pub fn teardown(c: Container, st: &crate::state::State) -> Result<()> {
    let ns = leftovers::joined_mount_ns(st);
    leftovers::of_state(st, &ns).remove()?;
    st.run_hooks_warn(
        crate::hooks::HookPoint::Poststop,
        oci_spec::runtime::ContainerState::Stopped,
    );
    c.destroy()
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
