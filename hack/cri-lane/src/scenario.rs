//! The pod's life in kubelet's order: the runtime and images, the sandbox, its containers
//! (containers.rs), the sandbox's end, and what must be gone afterwards.

use k8s_cri::v1::{
    ImageSpec, ImageStatusRequest, ListPodSandboxRequest, PodSandboxFilter, PodSandboxState,
    PodSandboxStatusRequest, RemovePodSandboxRequest, RunPodSandboxRequest, StopPodSandboxRequest,
    VersionRequest,
};

use crate::conn::{self, Cri};
use crate::containers;
use crate::host;
use crate::opts::{Driver, Network, Opts};
use crate::pod::Pod;
use crate::report::Report;
use crate::units;

/// The sandbox as the checks need it: containerd's id and the pause process's host pid.
pub struct Sandbox {
    pub id: String,
    pub pid: u32,
    /// The address CNI gave the pod; empty under hostNetwork.
    pub ip: String,
}

pub async fn run(opts: &Opts, r: &mut Report) {
    let mut cri = match conn::connect(&opts.socket).await {
        Ok(c) => c,
        Err(e) => return r.fail("connect to the CRI socket", &e),
    };
    if !runtime_and_images(&mut cri, opts, r).await {
        return;
    }
    let pod = Pod::new(opts.driver);
    println!(
        "pod uid {} cgroup_parent {} (driver {:?})",
        pod.uid,
        pod.cgroup_parent(),
        pod.driver
    );
    if pod.driver == Driver::Cgroupfs {
        let made = host::make_pod_cgroup(&pod.cgroup_path());
        if !r.check(
            "kubelet's part: the pod cgroup is made",
            made.is_ok(),
            || format!("{made:?}"),
        ) {
            return;
        }
    }
    if let Some(sb) = run_sandbox(&mut cri, opts, &pod, r).await {
        containers::lifecycle(&mut cri, opts, &pod, &sb, r).await;
        // Always, also after a failed check: a real kubelet tears the pod down too, and the
        // lane must leave nothing behind.
        stop_and_remove_sandbox(&mut cri, &pod, &sb, r).await;
    }
    leftovers(opts, &pod, r);
}

/// Version (the CRI plugin answers on v1) and ImageStatus for the two imported images:
/// kubelet asks before it creates anything, and pulls when the answer is empty.
async fn runtime_and_images(cri: &mut Cri, opts: &Opts, r: &mut Report) -> bool {
    let v = cri
        .rt
        .version(VersionRequest {
            version: "v1".into(),
        })
        .await
        .map(|x| x.into_inner());
    let Some(v) = r.call("Version", v, |v| {
        format!(
            "{} {} api {}",
            v.runtime_name, v.runtime_version, v.runtime_api_version
        )
    }) else {
        return false;
    };
    r.equal(
        "the CRI plugin serves runtime API v1",
        v.runtime_api_version.as_str(),
        "v1",
    );
    let mut ok = true;
    for image in [&opts.pause_image, &opts.image] {
        let req = ImageStatusRequest {
            image: Some(ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
            verbose: false,
        };
        let res = cri.img.image_status(req).await.map(|x| x.into_inner());
        let got = r.call(&format!("ImageStatus {image}"), res, |s| {
            s.image.as_ref().map_or("(not present)".into(), |i| {
                format!("{} {} bytes", i.id, i.size)
            })
        });
        let present = got.is_some_and(|s| s.image.is_some());
        ok &= r.check(
            &format!("image {image} imported without a registry"),
            present,
            || "CRI does not see it".into(),
        );
    }
    ok
}

async fn run_sandbox(cri: &mut Cri, opts: &Opts, pod: &Pod, r: &mut Report) -> Option<Sandbox> {
    let _ = std::fs::create_dir_all(opts.log_dir.join(&pod.uid));
    let req = RunPodSandboxRequest {
        config: Some(pod.sandbox_config(opts)),
        runtime_handler: opts.handler.clone(),
    };
    let res = cri.rt.run_pod_sandbox(req).await;
    let what = format!(
        "RunPodSandbox (handler {}, {:?} network)",
        opts.handler, opts.network
    );
    let id = r.call(&what, res.map(|x| x.into_inner().pod_sandbox_id), |id| {
        format!("id {id}")
    })?;
    let st = sandbox_status(cri, &id, r).await?;
    r.equal(
        "sandbox state is READY",
        st.state,
        PodSandboxState::SandboxReady as i32,
    );
    r.equal(
        "sandbox runs under the runtime handler",
        st.handler,
        opts.handler.clone(),
    );
    let sb = Sandbox {
        id,
        pid: st.pid?,
        ip: st.ip,
    };
    let cg = host::cgroup_of(sb.pid, "memory");
    r.equal(
        "pause process's cgroup is <cgroup_parent>/<sandbox>",
        cg,
        Some(pod.container_cgroup(&sb.id)),
    );
    sandbox_namespaces(opts, &sb, r);
    if pod.driver == Driver::Systemd {
        units::pod_slice(pod, r);
        units::scope(pod, &sb.id, "the sandbox", None, r);
    }
    let oom = host::read_trim(std::path::Path::new(&format!(
        "/proc/{}/oom_score_adj",
        sb.pid
    )));
    r.equal(
        "pause's oom_score_adj (process.oomScoreAdj)",
        oom,
        opts.sandbox_oom.to_string(),
    );
    Some(sb)
}

/// ipc, pid and mnt are always the pod's own; net and uts are the node's under hostNetwork,
/// else the pod's own with the address CNI gave it.
fn sandbox_namespaces(opts: &Opts, sb: &Sandbox, r: &mut Report) {
    let node_net = opts.network == Network::Node;
    for ns in ["ipc", "pid", "mnt", "net", "uts"] {
        let own = host::ns_of(sb.pid, ns) != host::host_ns(ns);
        let want_own = !(node_net && (ns == "net" || ns == "uts"));
        let what = if want_own { "its own" } else { "the node's" };
        r.check(
            &format!("sandbox {ns} ns is {what}"),
            own == want_own,
            || host::ns_of(sb.pid, ns),
        );
    }
    if node_net {
        r.equal(
            "sandbox has no IP of its own (hostNetwork)",
            sb.ip.as_str(),
            "",
        );
    } else {
        r.check("sandbox has an IP from CNI", !sb.ip.is_empty(), || {
            "PodSandboxStatus.network.ip is empty".into()
        });
    }
}

pub struct SandboxStatus {
    pub state: i32,
    pub pid: Option<u32>,
    pub ip: String,
    pub handler: String,
}

/// PodSandboxStatus (verbose): state, handler, IP, and the pause's pid from containerd's info.
async fn sandbox_status(cri: &mut Cri, id: &str, r: &mut Report) -> Option<SandboxStatus> {
    let req = PodSandboxStatusRequest {
        pod_sandbox_id: id.into(),
        verbose: true,
    };
    let res = cri.rt.pod_sandbox_status(req).await.map(|x| x.into_inner());
    let st = r.call("PodSandboxStatus", res, |s| {
        let state = s.status.as_ref().map_or(-1, |s| s.state);
        let ip = s
            .status
            .as_ref()
            .and_then(|s| s.network.as_ref())
            .map_or("", |n| n.ip.as_str());
        format!("state {state} ip {ip:?} pid {:?}", info_pid(&s.info))
    })?;
    let status = st.status.unwrap_or_default();
    Some(SandboxStatus {
        state: status.state,
        pid: info_pid(&st.info),
        ip: status.network.map(|n| n.ip).unwrap_or_default(),
        handler: status.runtime_handler,
    })
}

/// containerd's verbose `info` is JSON with the task's host pid.
pub fn info_pid(info: &std::collections::HashMap<String, String>) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    v.get("pid")?
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .filter(|p| *p > 0)
}

async fn stop_and_remove_sandbox(cri: &mut Cri, pod: &Pod, sb: &Sandbox, r: &mut Report) {
    let res = cri
        .rt
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: sb.id.clone(),
        })
        .await;
    if r.call("StopPodSandbox", res, |_| String::new()).is_some() {
        if let Some(st) = sandbox_status(cri, &sb.id, r).await {
            r.equal(
                "sandbox state is NOTREADY",
                st.state,
                PodSandboxState::SandboxNotready as i32,
            );
        }
        let alive = std::path::Path::new(&format!("/proc/{}", sb.pid)).exists();
        r.check("the pause process is gone", !alive, || {
            format!("pid {} still exists", sb.pid)
        });
        let left = host::cgroup_dirs_left(&pod.container_cgroup(&sb.id));
        r.check("the sandbox's cgroup is removed", left.is_empty(), || {
            format!("{left:?}")
        });
        if pod.driver == Driver::Systemd {
            units::gone(pod, &sb.id, "the sandbox", r);
        }
    }
    let res = cri
        .rt
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: sb.id.clone(),
        })
        .await;
    r.call("RemovePodSandbox", res, |_| String::new());
    let filter = PodSandboxFilter {
        id: sb.id.clone(),
        ..Default::default()
    };
    let res = cri
        .rt
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(filter),
        })
        .await;
    if let Some(list) = r.call("ListPodSandbox", res.map(|x| x.into_inner().items), |l| {
        format!("{} sandboxes", l.len())
    }) {
        r.check("the sandbox is gone from CRI", list.is_empty(), || {
            format!("{list:?}")
        });
    }
}

/// Nothing of the pod may stay: vsrun state, cgroups (kubelet removes the pod cgroup, which
/// must be empty by then) and mounts under containerd's private dirs.
fn leftovers(opts: &Opts, pod: &Pod, r: &mut Report) {
    if let (Some(bin), Some(root)) = (&opts.vsrun, &opts.vsrun_root) {
        let list = host::vsrun_list(bin, root);
        r.check(
            "vsrun list is empty afterwards",
            list.as_ref().is_ok_and(|l| l.is_empty()),
            || format!("{list:?}"),
        );
    }
    let rm = match pod.driver {
        Driver::Cgroupfs => host::remove_pod_cgroup(&pod.cgroup_path()),
        Driver::Systemd => host::stop_unit(&pod.cgroup_parent()),
    };
    r.check(
        "the pod cgroup is empty and removed (kubelet's part)",
        rm.is_ok(),
        || format!("{rm:?}"),
    );
    let left = host::cgroup_dirs_left(&pod.cgroup_path());
    r.check("no cgroup of the pod is left", left.is_empty(), || {
        format!("{left:?}")
    });
    for dir in &opts.watch_dirs {
        let m = host::mounts_under(dir);
        r.check(
            &format!("no mount left under {}", dir.display()),
            m.is_empty(),
            || m.join(" "),
        );
    }
}
