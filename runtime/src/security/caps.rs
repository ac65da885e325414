//! The five capability sets, exactly as the config lists them; a set the config omits is empty.
//! Capabilities this kernel does not know are skipped (runc warns and does the same), so one
//! config works across kernels.

use crate::error::{Result, StepExt};
use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;
use std::str::FromStr;

#[derive(Default, Debug)]
pub struct CapPlan {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
    /// Ambient caps left out because they are not in both permitted and inheritable: the
    /// kernel refuses to raise those. runc only warns about them, and `runc spec`'s default
    /// config lists ambient caps without inheritable ones, so vsrun warns the same way.
    pub ignored_ambient: Vec<Capability>,
    /// `field: name` of the capabilities oci-spec parses but the caps crate does not know:
    /// skipped like those this kernel lacks, with a warning, as runc does.
    pub unknown: Vec<String>,
}

pub fn plan(spec: Option<&LinuxCapabilities>) -> Result<CapPlan> {
    let Some(spec) = spec else {
        return Ok(CapPlan::default());
    };
    let supported = caps::runtime::thread_all_supported();
    let mut unknown = Vec::new();
    let mut set = |name: &str, list: &Option<oci_spec::runtime::Capabilities>| -> CapsHashSet {
        let mut out = CapsHashSet::new();
        for cap in list.iter().flatten() {
            let text = serde_json::to_value(cap)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            match Capability::from_str(&text) {
                Ok(c) if supported.contains(&c) => {
                    out.insert(c);
                }
                Ok(_) => {}
                Err(_) => unknown.push(format!("process.capabilities.{name}: {text}")),
            }
        }
        out
    };
    let mut plan = CapPlan {
        bounding: set("bounding", spec.bounding()),
        effective: set("effective", spec.effective()),
        permitted: set("permitted", spec.permitted()),
        inheritable: set("inheritable", spec.inheritable()),
        ambient: set("ambient", spec.ambient()),
        ignored_ambient: Vec::new(),
        unknown: Vec::new(),
    };
    plan.unknown = unknown;
    let (perm, inh) = (plan.permitted.clone(), plan.inheritable.clone());
    plan.ambient.retain(|c| {
        let ok = perm.contains(c) && inh.contains(c);
        if !ok {
            plan.ignored_ambient.push(*c);
        }
        ok
    });
    plan.ignored_ambient.sort_by_key(|c| c.index());
    Ok(plan)
}

/// Runs while the init still holds CAP_SETPCAP.
pub fn drop_bounding(plan: &CapPlan) -> Result<()> {
    for cap in caps::runtime::thread_all_supported() {
        if !plan.bounding.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .step(|| format!("drop {cap} from the bounding set"))?;
        }
    }
    Ok(())
}

/// The config's effective set (masked by what is permitted), permitted and inheritable as
/// they are: `drop_to_user`'s state, in which access checks see the final effective set.
pub fn set_effective(plan: &CapPlan) -> Result<()> {
    let permitted = caps::read(None, CapSet::Permitted).step(|| "read the permitted set".into())?;
    let effective: CapsHashSet = plan.effective.intersection(&permitted).copied().collect();
    caps::set(None, CapSet::Effective, &effective)
        .step(|| "capset effective (process.capabilities.effective)".into())
}

fn mask(set: &CapsHashSet) -> u64 {
    set.iter().fold(0u64, |m, c| m | c.bitmask())
}

/// One capset for effective, permitted and inheritable (plus `keep` in effective and
/// permitted, for a seccomp load that needs it), then ambient (which needs each cap in both
/// permitted and inheritable; dropping `keep` later leaves these alone).
pub fn set_sets(plan: &CapPlan, keep: Option<Capability>) -> Result<()> {
    let extra = keep.map_or(0, |c| c.bitmask());
    crate::syscall::capset(
        mask(&plan.effective) | extra,
        mask(&plan.permitted) | extra,
        mask(&plan.inheritable),
    )
    .step(|| "capset effective/permitted/inheritable (process.capabilities)".into())?;
    caps::clear(None, CapSet::Ambient).step(|| "clear ambient capabilities".into())?;
    for cap in &plan.ambient {
        caps::raise(None, CapSet::Ambient, *cap)
            .step(|| format!("raise ambient capability {cap} (process.capabilities.ambient)"))?;
    }
    Ok(())
}

/// The three sets exactly, with nothing else: after the seccomp load.
pub fn capset_exact(plan: &CapPlan) -> Result<()> {
    crate::syscall::capset(
        mask(&plan.effective),
        mask(&plan.permitted),
        mask(&plan.inheritable),
    )
    .step(|| "capset effective/permitted/inheritable (process.capabilities)".into())
}
