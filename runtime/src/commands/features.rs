//! `vsrun features`: the runtime-spec features document, listing only what vsrun implements
//! today. Each later feature adds itself here when it lands.

use crate::cli::GlobalOpts;
use crate::error::Result;
use serde_json::json;

pub fn run(_g: &GlobalOpts) -> Result<i32> {
    println!(
        "{}",
        serde_json::to_string_pretty(&features()).unwrap_or_default()
    );
    Ok(0)
}

pub fn features() -> serde_json::Value {
    let caps: Vec<String> = {
        let mut v: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
        v.sort();
        v
    };
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::OCI_VERSION,
        "hooks": [],
        "mountOptions": mount_options(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": false, "v2": false, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": crate::security::seccomp::ACTIONS,
                "operators": crate::security::seccomp::OPERATORS,
                "archs": crate::security::seccomp::ARCHES,
                "knownFlags": crate::security::seccomp::FLAGS,
                "supportedFlags": crate::security::seccomp::FLAGS
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "org.vsrun.version": env!("CARGO_PKG_VERSION"),
            "org.vsrun.commit": option_env!("VSRUN_COMMIT").unwrap_or("unknown"),
            // Bound-IP mode: the annotation a config sets to pin sockets to addresses.
            (crate::net::ANNOTATION): "comma-separated IPv4/IPv6 addresses (cgroup sock_addr BPF)"
        }
    })
}

/// The option table of rootfs/options.rs plus the propagation names it accepts.
fn mount_options() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = crate::rootfs::options::OPTIONS
        .iter()
        .filter(|(_, o)| !matches!(o, crate::rootfs::options::Opt::Unsupported))
        .map(|(n, _)| *n)
        .collect();
    for p in [
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
    ] {
        if crate::rootfs::options::propagation(p).is_some() {
            v.push(p);
        }
    }
    v.push("tmpcopyup");
    v.sort_unstable();
    v.dedup();
    v
}
