//! The configs kubelet sends for one pod: a sandbox with a kubepods-style cgroup parent, and
//! its containers.

use std::collections::HashMap;

use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ImageSpec, KeyValue, LinuxContainerConfig,
    LinuxContainerResources, LinuxContainerSecurityContext, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata,
};

use crate::opts::{Driver, Network, Opts};

pub const MIB: i64 = 1024 * 1024;

/// The pod's hostname when it has its own network (and so its own uts namespace).
pub const HOSTNAME: &str = "vsrun-lane-pod";

/// One pod: its uid (kubelet's pod UID) and where its cgroup lives.
pub struct Pod {
    pub uid: String,
    pub driver: Driver,
}

impl Pod {
    pub fn new(driver: Driver) -> Pod {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        // UID-shaped and unique per run, so parallel or leftover runs never share a cgroup.
        let uid = format!(
            "{:08x}-{:04x}-4000-8000-{:012x}",
            std::process::id(),
            t as u16,
            t as u64 & 0xffff_ffff_ffff
        );
        Pod { uid, driver }
    }

    /// `cgroup_parent` as kubelet sends it for a BestEffort pod under each driver.
    pub fn cgroup_parent(&self) -> String {
        match self.driver {
            Driver::Cgroupfs => format!("/kubepods/besteffort/pod{}", self.uid),
            Driver::Systemd => format!(
                "kubepods-besteffort-pod{}.slice",
                self.uid.replace('-', "_")
            ),
        }
    }

    /// The pod's cgroup as a path in the hierarchy (what /proc/<pid>/cgroup shows).
    pub fn cgroup_path(&self) -> String {
        match self.driver {
            Driver::Cgroupfs => self.cgroup_parent(),
            Driver::Systemd => format!(
                "/kubepods.slice/kubepods-besteffort.slice/{}",
                self.cgroup_parent()
            ),
        }
    }

    /// Where containerd puts a container (and the sandbox) below the pod: `<parent>/<id>`
    /// under cgroupfs, a `cri-containerd-<id>.scope` under systemd.
    pub fn container_cgroup(&self, id: &str) -> String {
        match self.driver {
            Driver::Cgroupfs => format!("{}/{id}", self.cgroup_path()),
            Driver::Systemd => format!("{}/cri-containerd-{id}.scope", self.cgroup_path()),
        }
    }

    /// The transient scope vsrun asks systemd for (`<slice>:cri-containerd:<id>`).
    pub fn container_unit(&self, id: &str) -> String {
        format!("cri-containerd-{id}.scope")
    }

    /// The network as asked (CNI's or the node's); ipc is the pod's; pid is per container
    /// unless a container asks for the pod's.
    pub fn sandbox_config(&self, opts: &Opts) -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: "vsrun-lane".into(),
                uid: self.uid.clone(),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: if opts.network == Network::Pod {
                HOSTNAME.into()
            } else {
                String::new()
            },
            log_directory: opts.log_dir.join(&self.uid).display().to_string(),
            labels: HashMap::from([("app".into(), "vsrun-lane".into())]),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: self.cgroup_parent(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(namespaces(opts.network, NamespaceMode::Container)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

fn namespaces(net: Network, pid: NamespaceMode) -> NamespaceOption {
    let network = match net {
        Network::Pod => NamespaceMode::Pod,
        Network::Node => NamespaceMode::Node,
    };
    NamespaceOption {
        network: network as i32,
        pid: pid as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// An app container: busybox running `script` under sh, pid namespace `pid` (Pod: the
/// sandbox's, so the pause is its pid 1; Container: its own), memory limited to 128 MiB.
pub fn container_config(
    opts: &Opts,
    name: &str,
    pid: NamespaceMode,
    script: &str,
) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: opts.image.clone(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        envs: vec![KeyValue {
            key: "LANE_CONTAINER".into(),
            value: name.into(),
        }],
        log_path: format!("{name}.log"),
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                cpu_period: 100_000,
                cpu_shares: 2,
                memory_limit_in_bytes: 128 * MIB,
                ..Default::default()
            }),
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(namespaces(opts.network, pid)),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}
