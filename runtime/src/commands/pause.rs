//! `vsrun pause` / `vsrun resume`: the cgroup freezer (v1 freezer.state, v2 cgroup.freeze).

use crate::cli::{GlobalOpts, IdArg};
use crate::error::{state, Result};
use crate::state::{Container, Status};

pub fn pause(g: &GlobalOpts, args: &IdArg) -> Result<i32> {
    set_frozen(g, args, true)
}

pub fn resume(g: &GlobalOpts, args: &IdArg) -> Result<i32> {
    set_frozen(g, args, false)
}

fn set_frozen(g: &GlobalOpts, args: &IdArg, frozen: bool) -> Result<i32> {
    let c = Container::open(&g.root, &args.id)?;
    let st = c.load()?;
    let status = crate::state::status(&c.dir, &st);
    let ok = if frozen {
        matches!(status, Status::Running | Status::Created)
    } else {
        status == Status::Paused
    };
    if !ok {
        let verb = if frozen { "pause" } else { "resume" };
        return Err(state(format!(
            "cannot {verb} container {:?}: container is {}",
            args.id,
            status.as_str()
        )));
    }
    crate::cgroups::freeze(&st.cgroup_path, st.systemd_cgroup, &st.id, frozen)?;
    Ok(0)
}
