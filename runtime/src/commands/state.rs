//! `vsrun state`: the runtime-spec state of one container, as runc prints it.

use crate::cli::{GlobalOpts, IdArg};
use crate::error::Result;
use crate::state::{self, Status};
use serde_json::{json, Value};
use std::path::Path;

pub fn run(g: &GlobalOpts, args: &IdArg) -> Result<i32> {
    state::validate_id(&args.id)?;
    let dir = g.root.join(&args.id);
    if !dir.is_dir() {
        return Err(crate::error::state(format!(
            "container {:?} does not exist",
            args.id
        )));
    }
    let v = describe(&dir)?;
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(0)
}

/// One container's state object (also the rows of `list --format json`).
pub fn describe(dir: &Path) -> Result<Value> {
    describe_owned(dir, state::owner(dir))
}

/// The same, with the owner's name already known (`list` has the dir's metadata at hand).
pub fn describe_owned(dir: &Path, owner: String) -> Result<Value> {
    let st = state::load(dir)?;
    let status = state::status(dir, &st);
    Ok(state_object(st, status, owner))
}

/// The state object of `st` read as `status`.
pub fn state_object(st: state::State, status: Status, owner: String) -> Value {
    let pid = if status == Status::Stopped { 0 } else { st.pid };
    let mut v = json!({
        "ociVersion": st.oci_version,
        "id": st.id,
        "pid": pid,
        "status": status.as_str(),
        "bundle": st.bundle,
        "rootfs": st.rootfs,
        "created": st.created,
        "owner": owner,
    });
    if !st.annotations.is_empty() {
        v["annotations"] = json!(st.annotations);
    }
    v
}
