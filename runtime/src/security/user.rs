//! process.user: uid, gid, additionalGids. The switch keeps capabilities (KEEPCAPS is set by
//! the caller) so the sets can be applied exactly afterwards.

use crate::error::{Result, StepExt};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};

#[derive(Debug, Clone)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
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
    })
}

/// setgroups before setresgid before setresuid: each later step gives up the right to do the
/// earlier ones.
pub fn switch(id: &Identity) -> Result<()> {
    let groups: Vec<Gid> = id.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&groups)
        .step(|| format!("setgroups {:?} (process.user.additionalGids)", id.groups))?;
    let gid = Gid::from_raw(id.gid);
    setresgid(gid, gid, gid).step(|| format!("setresgid {} (process.user.gid)", id.gid))?;
    let uid = Uid::from_raw(id.uid);
    setresuid(uid, uid, uid).step(|| format!("setresuid {} (process.user.uid)", id.uid))?;
    Ok(())
}
