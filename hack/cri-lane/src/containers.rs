//! The pod's two app containers: c1 in the sandbox's pid namespace, c2 in its own; each CRI
//! call on them, and what the host and the containers see after it.

use std::time::{Duration, Instant};

use k8s_cri::v1::{
    ContainerFilter, ContainerState, ContainerStatsRequest, ContainerStatusRequest,
    CreateContainerRequest, ExecSyncRequest, LinuxContainerResources, ListContainersRequest,
    NamespaceMode, RemoveContainerRequest, StartContainerRequest, StopContainerRequest,
    UpdateContainerResourcesRequest,
};

use crate::conn::Cri;
use crate::host;
use crate::opts::{Driver, Network, Opts};
use crate::pod::{self, Pod, MIB};
use crate::report::Report;
use crate::scenario::{info_pid, Sandbox};
use crate::units;

/// Runs until SIGTERM, then exits 0: StopContainer's exit code tells SIGTERM from SIGKILL.
const SCRIPT: &str = "trap 'exit 0' TERM; echo hello-from-$LANE_CONTAINER; \
                      while true; do sleep 0.2; done";

struct Ctr {
    name: &'static str,
    id: String,
    pid: u32,
    pid_mode: NamespaceMode,
}

pub async fn lifecycle(cri: &mut Cri, opts: &Opts, pod: &Pod, sb: &Sandbox, r: &mut Report) {
    let mut ctrs = Vec::new();
    for (name, mode) in [("c1", NamespaceMode::Pod), ("c2", NamespaceMode::Container)] {
        let Some(id) = create(cri, opts, pod, sb, name, mode, r).await else {
            return;
        };
        ctrs.push(Ctr {
            name,
            id,
            pid: 0,
            pid_mode: mode,
        });
    }
    list_states(cri, sb, ContainerState::ContainerCreated, r).await;
    for c in &mut ctrs {
        if !start(cri, c, r).await {
            return;
        }
    }
    for c in &ctrs {
        shares_pod_namespaces(c, sb, r);
        cgroup_placed(c, pod, r);
        if pod.driver == Driver::Systemd {
            units::scope(pod, &c.id, c.name, Some(128 * MIB), r);
        }
        logs_reach_the_log_file(c, opts, pod, r).await;
        exec_sync(cri, c, r).await;
        stats(cri, c, r).await;
    }
    pod_network(cri, opts, &ctrs, sb, r).await;
    update_resources(cri, &ctrs[0], r).await;
    if pod.driver == Driver::Systemd {
        units::updated(pod, &ctrs[0].id, ctrs[0].name, r);
    }
    for c in &ctrs {
        stop(cri, opts, pod, c, r).await;
    }
    for c in &ctrs {
        let res = cri
            .rt
            .remove_container(RemoveContainerRequest {
                container_id: c.id.clone(),
            })
            .await;
        r.call(&format!("RemoveContainer {}", c.name), res, |_| {
            String::new()
        });
    }
    let left = list(cri, sb, r).await;
    r.check(
        "no container is left in the pod",
        left.is_some_and(|l| l.is_empty()),
        || "ListContainers still lists some".into(),
    );
}

/// StartContainer, then ContainerStatus must say RUNNING and give the host pid.
async fn start(cri: &mut Cri, c: &mut Ctr, r: &mut Report) -> bool {
    let res = cri
        .rt
        .start_container(StartContainerRequest {
            container_id: c.id.clone(),
        })
        .await;
    r.call(&format!("StartContainer {}", c.name), res, |_| {
        String::new()
    });
    let Some((state, _, pid)) = status(cri, c, r).await else {
        return false;
    };
    r.equal(
        &format!("{} is RUNNING", c.name),
        state_name(state),
        "CONTAINER_RUNNING",
    );
    match pid {
        Some(pid) => c.pid = pid,
        None => r.fail(
            &format!("{} has a pid", c.name),
            "no pid in ContainerStatus info",
        ),
    }
    pid.is_some()
}

/// What the containers see of the pod's network: its hostname, the pod's address, and each
/// other on localhost (one network namespace): c2 serves, c1 fetches.
async fn pod_network(cri: &mut Cri, opts: &Opts, ctrs: &[Ctr], sb: &Sandbox, r: &mut Report) {
    let want_host = match opts.network {
        Network::Pod => pod::HOSTNAME.to_string(),
        Network::Node => host::read_trim(std::path::Path::new("/proc/sys/kernel/hostname")),
    };
    for c in ctrs {
        if let Some((out, _, _)) = exec(cri, c, "hostname", r).await {
            r.equal(
                &format!("{} hostname", c.name),
                out.trim(),
                want_host.as_str(),
            );
        }
    }
    if opts.network == Network::Pod {
        if let Some((out, _, _)) = exec(cri, &ctrs[0], "ip -4 -o addr show dev eth0", r).await {
            let has = out.contains(&format!("inet {}/", sb.ip));
            r.check(&format!("c1's eth0 has the pod IP {}", sb.ip), has, || {
                out.trim().to_string()
            });
        }
    }
    let serve = "mkdir -p /www && echo served-by-$LANE_CONTAINER >/www/index.html && httpd -p 127.0.0.1:18080 -h /www";
    if let Some((_, err, code)) = exec(cri, &ctrs[1], serve, r).await {
        r.check("c2 starts httpd on 127.0.0.1:18080", code == 0, || err);
        let fetched = exec(cri, &ctrs[0], "wget -qO- http://127.0.0.1:18080/", r).await;
        let body = fetched.map(|f| f.0).unwrap_or_default();
        r.equal(
            "c1 reaches c2's httpd over the pod's loopback",
            body.as_str(),
            "served-by-c2\n",
        );
    }
}

async fn create(
    cri: &mut Cri,
    opts: &Opts,
    pod: &Pod,
    sb: &Sandbox,
    name: &str,
    mode: NamespaceMode,
    r: &mut Report,
) -> Option<String> {
    let req = CreateContainerRequest {
        pod_sandbox_id: sb.id.clone(),
        config: Some(pod::container_config(opts, name, mode, SCRIPT)),
        sandbox_config: Some(pod.sandbox_config(opts)),
    };
    let res = cri
        .rt
        .create_container(req)
        .await
        .map(|x| x.into_inner().container_id);
    r.call(
        &format!("CreateContainer {name} (pid ns {})", mode.as_str_name()),
        res,
        |id| format!("id {id}"),
    )
}

/// ContainerStatus (verbose): state, exit code, and the host pid from containerd's info.
async fn status(cri: &mut Cri, c: &Ctr, r: &mut Report) -> Option<(i32, i32, Option<u32>)> {
    let res = cri
        .rt
        .container_status(ContainerStatusRequest {
            container_id: c.id.clone(),
            verbose: true,
        })
        .await;
    let st = r.call(
        &format!("ContainerStatus {}", c.name),
        res.map(|x| x.into_inner()),
        |s| {
            let (state, code) = s
                .status
                .as_ref()
                .map_or((-1, -1), |s| (s.state, s.exit_code));
            format!(
                "state {} exit {code} pid {:?}",
                state_name(state),
                info_pid(&s.info)
            )
        },
    )?;
    let (state, code) = st
        .status
        .as_ref()
        .map_or((-1, -1), |s| (s.state, s.exit_code));
    Some((state, code, info_pid(&st.info)))
}

fn state_name(s: i32) -> &'static str {
    ContainerState::try_from(s).map_or("?", |s| s.as_str_name())
}

async fn list(cri: &mut Cri, sb: &Sandbox, r: &mut Report) -> Option<Vec<(String, i32)>> {
    let filter = ContainerFilter {
        pod_sandbox_id: sb.id.clone(),
        ..Default::default()
    };
    let res = cri
        .rt
        .list_containers(ListContainersRequest {
            filter: Some(filter),
        })
        .await;
    let items = r.call(
        "ListContainers",
        res.map(|x| x.into_inner().containers),
        |l| format!("{} containers", l.len()),
    )?;
    Some(items.into_iter().map(|c| (c.id, c.state)).collect())
}

async fn list_states(cri: &mut Cri, sb: &Sandbox, want: ContainerState, r: &mut Report) {
    if let Some(l) = list(cri, sb, r).await {
        let ok = l.len() == 2 && l.iter().all(|(_, s)| *s == want as i32);
        r.check(
            &format!("the pod lists 2 containers, {}", want.as_str_name()),
            ok,
            || format!("{l:?}"),
        );
    }
}

/// ipc from the pod, net and uts from the node (NamespaceMode NODE), pid as configured,
/// mount namespace always the container's own.
fn shares_pod_namespaces(c: &Ctr, sb: &Sandbox, r: &mut Report) {
    for ns in ["ipc", "net", "uts"] {
        r.equal(
            &format!("{} {ns} ns is the sandbox's", c.name),
            host::ns_of(c.pid, ns),
            host::ns_of(sb.pid, ns),
        );
    }
    let same_pid = host::ns_of(c.pid, "pid") == host::ns_of(sb.pid, "pid");
    let want_same = c.pid_mode == NamespaceMode::Pod;
    let what = if want_same {
        "is the sandbox's (POD)"
    } else {
        "is its own (CONTAINER)"
    };
    r.check(
        &format!("{} pid ns {what}", c.name),
        same_pid == want_same,
        || host::ns_of(c.pid, "pid"),
    );
    let own_mnt = host::ns_of(c.pid, "mnt") != host::ns_of(sb.pid, "mnt");
    r.check(&format!("{} has its own mount ns", c.name), own_mnt, || {
        host::ns_of(c.pid, "mnt")
    });
}

/// Under the pod's cgroup as `<cgroup_parent>/<id>`, with the config's 128 MiB on the host.
fn cgroup_placed(c: &Ctr, pod: &Pod, r: &mut Report) {
    let want = pod.container_cgroup(&c.id);
    r.equal(
        &format!("{} cgroup is <cgroup_parent>/<id>", c.name),
        host::cgroup_of(c.pid, "memory"),
        Some(want.clone()),
    );
    r.equal(
        &format!("{} memory limit on the host is 128 MiB", c.name),
        host::memory_limit(&want),
        (128 * MIB).to_string(),
    );
}

/// What the container printed reaches kubelet's log file in CRI's format.
async fn logs_reach_the_log_file(c: &Ctr, opts: &Opts, pod: &Pod, r: &mut Report) {
    let path = opts.log_dir.join(&pod.uid).join(format!("{}.log", c.name));
    let want = format!("stdout F hello-from-{}", c.name);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains(&want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    r.check(
        &format!("{} stdout reaches {}", c.name, path.display()),
        text.contains(&want),
        || format!("{text:?}"),
    );
}

async fn exec(
    cri: &mut Cri,
    c: &Ctr,
    script: &str,
    r: &mut Report,
) -> Option<(String, String, i32)> {
    let req = ExecSyncRequest {
        container_id: c.id.clone(),
        cmd: vec!["sh".into(), "-c".into(), script.into()],
        timeout: 20,
    };
    let res = cri.rt.exec_sync(req).await.map(|x| x.into_inner());
    let out = r.call(&format!("ExecSync {} `{script}`", c.name), res, |o| {
        format!(
            "exit {} stdout {:?} stderr {:?}",
            o.exit_code,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })?;
    Some((
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
        out.exit_code,
    ))
}

/// Output and exit code come back; pid 1 is the pause in the pod's pid ns, sh in its own.
async fn exec_sync(cri: &mut Cri, c: &Ctr, r: &mut Report) {
    if let Some((out, err, code)) =
        exec(cri, c, "echo out-$LANE_CONTAINER; echo err >&2; exit 3", r).await
    {
        r.equal(
            &format!("ExecSync {} stdout", c.name),
            out,
            format!("out-{}\n", c.name),
        );
        r.equal(
            &format!("ExecSync {} stderr", c.name),
            err,
            "err\n".to_string(),
        );
        r.equal(&format!("ExecSync {} exit code", c.name), code, 3);
    }
    let want = if c.pid_mode == NamespaceMode::Pod {
        "/pause"
    } else {
        "sh"
    };
    if let Some((out, _, code)) = exec(cri, c, "tr '\\0' ' ' </proc/1/cmdline", r).await {
        let ok = code == 0 && out.split(' ').next() == Some(want);
        r.check(&format!("{} sees {want} as pid 1", c.name), ok, || {
            format!("exit {code}: {out:?}")
        });
    }
}

/// Read by the shim from the container's cgroup: both must be non-zero for a running sh.
async fn stats(cri: &mut Cri, c: &Ctr, r: &mut Report) {
    let res = cri
        .rt
        .container_stats(ContainerStatsRequest {
            container_id: c.id.clone(),
        })
        .await;
    let Some(s) = r.call(
        &format!("ContainerStats {}", c.name),
        res.map(|x| x.into_inner().stats),
        |s| {
            let cpu = s
                .as_ref()
                .and_then(|s| s.cpu.as_ref()?.usage_core_nano_seconds.as_ref())
                .map(|v| v.value);
            let mem = s
                .as_ref()
                .and_then(|s| s.memory.as_ref()?.working_set_bytes.as_ref())
                .map(|v| v.value);
            format!("cpu {cpu:?} ns, memory working set {mem:?} bytes")
        },
    ) else {
        return;
    };
    let cpu = s
        .as_ref()
        .and_then(|s| s.cpu.as_ref()?.usage_core_nano_seconds.as_ref())
        .map_or(0, |v| v.value);
    let mem = s
        .as_ref()
        .and_then(|s| s.memory.as_ref()?.working_set_bytes.as_ref())
        .map_or(0, |v| v.value);
    r.check(
        &format!("ContainerStats {} cpu usage > 0", c.name),
        cpu > 0,
        || format!("{s:?}"),
    );
    r.check(
        &format!("ContainerStats {} memory working set > 0", c.name),
        mem > 0,
        || format!("{s:?}"),
    );
}

/// kubelet's in-place resize: the shim runs `vsrun update`; the host's cgroup files change.
async fn update_resources(cri: &mut Cri, c: &Ctr, r: &mut Report) {
    let path = host::cgroup_of(c.pid, "memory").unwrap_or_default();
    let cpu_path = host::cgroup_of(c.pid, "cpu").unwrap_or_default();
    let before = (host::memory_limit(&path), host::cpu_quota(&cpu_path));
    let linux = LinuxContainerResources {
        cpu_period: 100_000,
        cpu_quota: 50_000,
        cpu_shares: 2,
        memory_limit_in_bytes: 64 * MIB,
        ..Default::default()
    };
    let req = UpdateContainerResourcesRequest {
        container_id: c.id.clone(),
        linux: Some(linux),
        ..Default::default()
    };
    let res = cri.rt.update_container_resources(req).await;
    if r.call(
        &format!("UpdateContainerResources {} (64 MiB, quota 50000)", c.name),
        res,
        |_| String::new(),
    )
    .is_none()
    {
        return;
    }
    let after = (host::memory_limit(&path), host::cpu_quota(&cpu_path));
    println!(
        "   host cgroup {path}: memory limit {} -> {}, cpu quota {} -> {}",
        before.0, after.0, before.1, after.1
    );
    r.equal(
        "update: memory limit on the host is 64 MiB",
        after.0,
        (64 * MIB).to_string(),
    );
    r.equal(
        "update: cpu quota on the host is 50000",
        after.1,
        "50000".to_string(),
    );
}

/// SIGTERM (the trap exits 0) well before the timeout, then the shim's `vsrun delete`
/// removes the container's state and cgroup.
async fn stop(cri: &mut Cri, opts: &Opts, pod: &Pod, c: &Ctr, r: &mut Report) {
    let t = Instant::now();
    let res = cri
        .rt
        .stop_container(StopContainerRequest {
            container_id: c.id.clone(),
            timeout: 10,
        })
        .await;
    r.call(
        &format!("StopContainer {} (timeout 10 s)", c.name),
        res,
        |_| format!("in {:.1} s", t.elapsed().as_secs_f64()),
    );
    if let Some((state, code, _)) = status(cri, c, r).await {
        r.equal(
            &format!("{} is EXITED", c.name),
            state_name(state),
            "CONTAINER_EXITED",
        );
        r.equal(
            &format!("{} exit code 0 (SIGTERM reached its trap)", c.name),
            code,
            0,
        );
    }
    let left = host::cgroup_dirs_left(&pod.container_cgroup(&c.id));
    r.check(
        &format!("{} cgroup removed after stop", c.name),
        left.is_empty(),
        || format!("{left:?}"),
    );
    if pod.driver == Driver::Systemd {
        units::gone(pod, &c.id, c.name, r);
    }
    if let (Some(bin), Some(root)) = (&opts.vsrun, &opts.vsrun_root) {
        let l = host::vsrun_list(bin, root);
        let gone = l.as_ref().is_ok_and(|l| !l.contains(&c.id));
        r.check(
            &format!("{} gone from vsrun list after stop", c.name),
            gone,
            || format!("{l:?}"),
        );
    }
}
