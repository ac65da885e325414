//! `vsrun start`: release a created init by writing one byte to its exec.fifo.

use crate::cli::{GlobalOpts, IdArg};
use crate::error::{state, Result, StepExt};
use crate::state::{Container, Status};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

pub fn run(g: &GlobalOpts, args: &IdArg) -> Result<i32> {
    let c = Container::open(&g.root, &args.id)?;
    let st = c.load()?;
    match crate::state::status(&c.dir, &st) {
        Status::Created => {}
        Status::Running | Status::Paused => {
            return Err(state(format!(
                "cannot start container {:?}: already running",
                args.id
            )))
        }
        Status::Stopped => {
            return Err(state(format!(
                "cannot start container {:?}: it has stopped",
                args.id
            )))
        }
    }
    let fifo = c.fifo_path();
    // Non-blocking open fails with ENXIO when no reader exists: the init is gone.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ENXIO) {
                state(format!(
                    "cannot start container {:?}: its init has exited",
                    args.id
                ))
            } else {
                crate::Error::Os {
                    step: format!("open {}", fifo.display()),
                    source: e,
                }
            }
        })?;
    f.write_all(&[0])
        .step(|| format!("write {}", fifo.display()))?;
    std::fs::remove_file(&fifo).step(|| format!("remove {}", fifo.display()))?;
    st.run_hooks_warn(
        crate::hooks::HookPoint::Poststart,
        oci_spec::runtime::ContainerState::Running,
    );
    Ok(0)
}
