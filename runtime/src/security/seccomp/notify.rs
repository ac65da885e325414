//! Handing an SCMP_ACT_NOTIFY listener to the seccomp agent at `linux.seccomp.listenerPath`,
//! as the runtime-spec's "container process state" describes and runc does: one connection
//! per listener (AF_UNIX, SOCK_STREAM), the state as JSON in the payload, the fd as
//! SCM_RIGHTS on the first sendmsg, then close.

use crate::error::{Error, Result, StepExt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::{ContainerProcessState, State};
use std::io::{IoSlice, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// The name of the listener in the state's `fds` (runtime-spec `SeccompFdName`).
pub use oci_spec::runtime::SECCOMP_FD_NAME;

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
    let err =
        |e: serde_json::Error| Error::State(format!("container state for the seccomp agent: {e}"));
    let state: State = serde_json::from_slice(state_json).map_err(err)?;
    let mut m = ContainerProcessState::default();
    m.set_version(crate::OCI_VERSION.to_string())
        .set_fds(vec![SECCOMP_FD_NAME.to_string()])
        .set_pid(state.pid().unwrap_or_default())
        .set_metadata(metadata.filter(|m| !m.is_empty()).map(str::to_string))
        .set_state(state);
    serde_json::to_vec(&m).map_err(err)
}
