//! `vsrun features`: the runtime-spec features document (features.md), built with oci-spec's
//! own `Features` type from the tables the code itself runs on (hook points, the mount option
//! table, the namespace kinds, the capability list, the seccomp tables), so it cannot claim
//! what vsrun does not do nor forget what it does. Engines read it to decide what to send.

use crate::cli::GlobalOpts;
use crate::error::{Error, Result};
use crate::hooks::HookPoint;
use oci_spec::runtime::{
    Apparmor, Cgroup, Features, IDMap, IntelRdt, LinuxFeature, MountExtensions, Seccomp, Selinux,
};
use std::collections::HashMap;

pub fn run(_g: &GlobalOpts) -> Result<i32> {
    let serialize = |e| Error::Os {
        step: "serialize the features document".into(),
        source: std::io::Error::other(e),
    };
    let mut doc = serde_json::to_value(features()?).map_err(serialize)?;
    drop_nulls(&mut doc);
    println!("{}", serde_json::to_string_pretty(&doc).map_err(serialize)?);
    Ok(0)
}

/// oci-spec writes `null` for some unset fields (memoryPolicy, netDevices, ...); runc omits
/// them, and an absent field is what features.md calls unknown.
fn drop_nulls(v: &mut serde_json::Value) {
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, x| !x.is_null());
        m.sort_keys();
        m.values_mut().for_each(drop_nulls);
    }
}

pub fn features() -> Result<Features> {
    let mut f = Features::default();
    f.set_oci_version_min("1.0.0".into());
    f.set_oci_version_max(crate::OCI_VERSION.into());
    f.set_hooks(Some(
        HookPoint::ALL
            .iter()
            .map(|h| h.name().to_string())
            .collect(),
    ));
    f.set_mount_options(Some(
        mount_options().into_iter().map(String::from).collect(),
    ));
    f.set_linux(Some(linux()?));
    f.set_annotations(Some(annotations()));
    Ok(f)
}

fn linux() -> Result<LinuxFeature> {
    let mut l = LinuxFeature::default();
    let kinds = crate::context::namespaces::KINDS.iter().map(|(k, _, _)| *k);
    l.set_namespaces(Some(kinds.collect()));
    l.set_capabilities(Some(capabilities()));
    l.set_cgroup(Some(cgroup()));
    l.set_seccomp(Some(seccomp()?));
    l.set_apparmor(Some(Apparmor::default().set_enabled(Some(false)).clone()));
    l.set_selinux(Some(Selinux::default().set_enabled(Some(false)).clone()));
    l.set_intel_rdt(Some(IntelRdt::default().set_enabled(Some(false)).clone()));
    // Idmapped bind mounts: rootfs/idmap.rs.
    let idmap = IDMap::default().set_enabled(Some(true)).clone();
    l.set_mount_extensions(Some(
        MountExtensions::default().set_idmap(Some(idmap)).clone(),
    ));
    Ok(l)
}

/// What the caps crate can name is what `process.capabilities` accepts.
fn capabilities() -> Vec<String> {
    let mut v: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    v.sort();
    v
}

/// "Compiled in", as features.md defines these flags, not what this host mounts: the v1 and v2
/// drivers (vsrun's own hot path over libcgroups), `--systemd-cgroup` (libcgroups' systemd
/// driver, system instance only) and the rdma controller (written by vsrun itself).
fn cgroup() -> Cgroup {
    let mut c = Cgroup::default();
    c.set_v1(Some(true));
    c.set_v2(Some(true));
    c.set_systemd(Some(true));
    c.set_systemd_user(Some(false));
    c.set_rdma(Some(true));
    c
}

/// The seccomp compiler's own tables: its actions, operators, flags and the ABIs this host's
/// filters can name.
fn seccomp() -> Result<Seccomp> {
    use crate::security::seccomp::{Arch, ACTIONS, FLAGS, OPERATORS};
    let mut s = Seccomp::default();
    s.set_enabled(Some(true));
    s.set_actions(Some(ACTIONS.iter().map(|(a, _)| *a).collect()));
    s.set_operators(Some(spec_names(OPERATORS.iter().map(|(o, _)| o))?));
    s.set_archs(Some(Arch::supported().collect()));
    let flags = spec_names(FLAGS.iter().map(|(f, _)| f))?;
    s.set_known_flags(Some(flags.clone()));
    s.set_supported_flags(Some(flags));
    Ok(s)
}

/// The config's spellings of oci-spec's values (what serde writes for them).
fn spec_names<'a, T: serde::Serialize + 'a>(
    items: impl Iterator<Item = &'a T>,
) -> Result<Vec<String>> {
    items
        .map(|v| match serde_json::to_value(v) {
            Ok(serde_json::Value::String(n)) => Ok(n),
            other => Err(Error::Os {
                step: "features: a seccomp name in the config's terms".into(),
                source: std::io::Error::other(format!("{other:?}")),
            }),
        })
        .collect()
}

fn annotations() -> HashMap<String, String> {
    HashMap::from([
        (
            "org.vsrun.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (
            "org.vsrun.commit".to_string(),
            option_env!("VSRUN_COMMIT").unwrap_or("unknown").to_string(),
        ),
        (
            crate::net::ANNOTATION.to_string(),
            "comma-separated IPv4/IPv6 addresses (cgroup sock_addr BPF)".to_string(),
        ),
        (
            crate::disk::ANNOTATION.to_string(),
            "disk-space hard limit of the rootfs (or overlay upper dir), bytes or K/M/G/T (project quota)".to_string(),
        ),
        (
            crate::disk::INODES_ANNOTATION.to_string(),
            "inode hard limit, with org.vsrun.disk-limit (project quota)".to_string(),
        ),
        (
            super::stat::NAME_ANNOTATION.to_string(),
            "the container's name in `vsrun stat` when no engine sets one".to_string(),
        ),
    ])
}

/// The option table of rootfs/options.rs (flags, propagation, recursive attributes,
/// tmpcopyup, idmap): every name it maps to something.
fn mount_options() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = crate::rootfs::options::OPTIONS
        .iter()
        .filter(|(_, o)| !matches!(o, crate::rootfs::options::Opt::Unsupported))
        .map(|(n, _)| *n)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}
