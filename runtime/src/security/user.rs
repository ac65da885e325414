//! process.user: uid, gid, additionalGids. The switch keeps capabilities (KEEPCAPS is set by
//! the caller) so the sets can be applied exactly afterwards.

use crate::error::{Result, StepExt};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};

#[derive(Debug, Clone)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// The user namespace denies setgroups(2) (rootless with a gid map of the user alone):
    /// decided by the parent from the map it writes, or from /proc/<init>/setgroups for exec.
    /// For a user namespace joined by path the init asks it after the setns (`drop_to_user`).
    pub setgroups_denied: bool,
}

pub fn plan(user: &oci_spec::runtime::User) -> Result<Identity> {
    Ok(Identity {
        uid: user.uid(),
        gid: user.gid(),
        // Listed once each, as runc passes them to setgroups.
        groups: {
            let mut seen = Vec::new();
            for g in user.additional_gids().iter().flatten() {
                if !seen.contains(g) {
                    seen.push(*g);
                }
            }
            seen
        },
        setgroups_denied: false,
    })
}

/// setgroups before setresgid before setresuid: each later step gives up the right to do the
/// earlier ones.
pub fn switch(id: &Identity, setgroups_denied: bool) -> Result<()> {
    let groups: Vec<Gid> = id.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    if setgroups_denied {
        // Rootless with a gid map of the user alone: the kernel refuses setgroups(2) in this
        // user namespace (runc: "cannot set any additional groups in a rootless container").
        if !id.groups.is_empty() {
            return Err(crate::error::config(
                "process.user.additionalGids",
                format!(
                    "{:?}: setgroups is denied in this user namespace (rootless, gid map of the user alone); map more gids with newgidmap or drop them",
                    id.groups
                ),
            ));
        }
    } else {
        setgroups(&groups)
            .step(|| format!("setgroups {:?} (process.user.additionalGids)", id.groups))?;
    }
    let gid = Gid::from_raw(id.gid);
    setresgid(gid, gid, gid).step(|| format!("setresgid {} (process.user.gid)", id.gid))?;
    let uid = Uid::from_raw(id.uid);
    setresuid(uid, uid, uid).step(|| format!("setresuid {} (process.user.uid)", id.uid))?;
    Ok(())
}
