//! Handing an SCMP_ACT_NOTIFY listener to the seccomp agent at `linux.seccomp.listenerPath`,
//! as the runtime-spec's "container process state" describes and runc does: one connection
//! per listener (AF_UNIX, SOCK_STREAM), the state as JSON in the payload, the fd as
//! SCM_RIGHTS on the first sendmsg, then close.

use crate::error::{Error, Result, StepExt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use serde_json::{Map, Value};
use std::io::{IoSlice, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// The name of the listener in the state's `fds` (runtime-spec `SeccompFdName`).
pub const SECCOMP_FD_NAME: &str = "seccompFd";

/// Send `fd` (the listener from `install`) with the container state to the agent at `path`.
/// `state_json` is the container's `state` as `vsrun state` prints it, with `status`
/// "creating" and `pid` the init's host pid; `metadata` is `linux.seccomp.listenerMetadata`.
pub fn send_listener(
    path: &Path,
    fd: BorrowedFd<'_>,
    state_json: &[u8],
    metadata: Option<&str>,
) -> Result<()> {
    let msg = process_state(state_json, metadata)?;
    let step = || {
        format!(
            "send the seccomp listener to the agent at {} (linux.seccomp.listenerPath)",
            path.display()
        )
    };
    let mut sock = UnixStream::connect(path).step(step)?;
    let fds = [fd.as_raw_fd()];
    let sent = loop {
        match sendmsg::<()>(
            sock.as_raw_fd(),
            &[IoSlice::new(&msg)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r,
        }
    }
    .map_err(std::io::Error::from)
    .step(step)?;
    // The spec allows more sendmsg calls for a long state, the fd only in the first.
    sock.write_all(&msg[sent..]).step(step)?;
    Ok(())
}

/// The runtime-spec's container process state: ociVersion, fds, pid, metadata, state.
fn process_state(state_json: &[u8], metadata: Option<&str>) -> Result<Vec<u8>> {
    let state: Value = serde_json::from_slice(state_json)
        .map_err(|e| Error::State(format!("container state for the seccomp agent: {e}")))?;
    let pid = state.get("pid").cloned().unwrap_or(Value::Null);
    let mut m = Map::new();
    m.insert("ociVersion".into(), crate::OCI_VERSION.into());
    m.insert("fds".into(), Value::from(vec![SECCOMP_FD_NAME]));
    m.insert("pid".into(), pid);
    if let Some(md) = metadata.filter(|m| !m.is_empty()) {
        m.insert("metadata".into(), md.into());
    }
    m.insert("state".into(), state);
    serde_json::to_vec(&Value::Object(m))
        .map_err(|e| Error::State(format!("container state for the seccomp agent: {e}")))
}
