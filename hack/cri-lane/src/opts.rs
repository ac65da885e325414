//! Command line: `--key value` pairs, all with defaults the lane overrides.

use std::path::PathBuf;

pub const USAGE: &str = "usage: cri-lane --socket PATH [--handler vsrun] \
[--cgroup-driver cgroupfs|systemd] [--pod-network pod|node] [--vsrun PATH --vsrun-root DIR] [--image REF] \
[--pause-image REF] [--sandbox-oom-score-adj N] [--log-dir DIR] [--watch-dir DIR]...";

/// The cgroup driver kubelet is configured with: it decides the form of `cgroup_parent`
/// and who creates the pod's cgroup (kubelet under cgroupfs, systemd under systemd).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Driver {
    Cgroupfs,
    Systemd,
}

/// The pod's network: its own namespace set up by CNI (kubelet's default), or the node's
/// (`hostNetwork: true`, NamespaceMode NODE).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Network {
    Pod,
    Node,
}

#[derive(Debug)]
pub struct Opts {
    pub socket: PathBuf,
    pub handler: String,
    pub driver: Driver,
    pub network: Network,
    pub vsrun: Option<PathBuf>,
    pub vsrun_root: Option<PathBuf>,
    pub image: String,
    pub pause_image: String,
    pub log_dir: PathBuf,
    /// containerd's oomScoreAdj for the pause: -998, or its own score under
    /// restrict_oom_score_adj.
    pub sandbox_oom: i32,
    /// Directories (containerd's root and state) where no mount may remain at the end.
    pub watch_dirs: Vec<PathBuf>,
}

impl Opts {
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Opts, String> {
        let mut o = Opts {
            socket: PathBuf::new(),
            handler: "vsrun".into(),
            driver: Driver::Cgroupfs,
            network: Network::Pod,
            vsrun: None,
            vsrun_root: None,
            image: "docker.io/library/busybox:latest".into(),
            pause_image: "localhost/vsrun-pause:lane".into(),
            log_dir: std::env::temp_dir().join("cri-lane-logs"),
            watch_dirs: Vec::new(),
            sandbox_oom: -998,
        };
        while let Some(key) = args.next() {
            let val = args.next().ok_or_else(|| format!("{key} needs a value"))?;
            match key.as_str() {
                "--socket" => o.socket = val.into(),
                "--handler" => o.handler = val,
                "--cgroup-driver" => o.driver = driver(&val)?,
                "--pod-network" => o.network = network(&val)?,
                "--vsrun" => o.vsrun = Some(val.into()),
                "--vsrun-root" => o.vsrun_root = Some(val.into()),
                "--image" => o.image = val,
                "--pause-image" => o.pause_image = val,
                "--log-dir" => o.log_dir = val.into(),
                "--watch-dir" => o.watch_dirs.push(val.into()),
                "--sandbox-oom-score-adj" => {
                    o.sandbox_oom = val.parse().map_err(|e| format!("{key} {val}: {e}"))?
                }
                _ => return Err(format!("unknown option {key}")),
            }
        }
        if o.socket.as_os_str().is_empty() {
            return Err("--socket is required".into());
        }
        Ok(o)
    }
}

fn driver(s: &str) -> Result<Driver, String> {
    match s {
        "cgroupfs" => Ok(Driver::Cgroupfs),
        "systemd" => Ok(Driver::Systemd),
        _ => Err(format!("--cgroup-driver {s}: cgroupfs or systemd")),
    }
}

fn network(s: &str) -> Result<Network, String> {
    match s {
        "pod" => Ok(Network::Pod),
        "node" => Ok(Network::Node),
        _ => Err(format!("--pod-network {s}: pod or node")),
    }
}
