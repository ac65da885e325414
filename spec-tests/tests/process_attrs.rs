//! Per-task attributes (process.scheduler, process.ioPriority, process.execCPUAffinity,
//! linux.personality, linux.memoryPolicy) and security labels, read back from the host's view of
//! the running container process.

use serde_json::json;
use spec_tests::*;

/// Start the container detached with the probe sleeping, return its host pid.
fn running(rt: &Runtime, b: &mut Bundle, id: &str) -> i32 {
    b.set_args(&["/probe", "sleep", "30"]);
    assert_success(&rt.run_detached(b, id), "run -d");
    rt.state(id)["pid"].as_i64().unwrap() as i32
}

fn proc_file(pid: i32, name: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/{name}")).unwrap_or_default()
}

#[test]
fn scheduler_policy_and_nice_apply() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    let id = unique_id("sched");
    let pid = running(&rt, &mut b, &id);
    let stat = proc_file(pid, "stat");
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // stat fields 19 (nice) and 41 (policy): indexes 16 and 38 after the comm.
    assert_eq!(fields[16], "7", "nice");
    assert_eq!(fields[38], "3", "policy SCHED_BATCH");
}

#[test]
fn io_priority_applies() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    let id = unique_id("ioprio");
    let pid = running(&rt, &mut b, &id);
    // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, pid) has no pointer arguments.
    let v = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, pid) };
    assert_eq!(v, (2 << 13) | 6, "class BE, level 6");
}

#[test]
fn exec_cpu_affinity_final_applies() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // The last online CPU: the v2 VM lane has one, this host two.
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let last = online.trim().rsplit(['-', ',']).next().unwrap().to_string();
    b.config["process"]["execCPUAffinity"] =
        json!({"initial": format!("0-{last}"), "final": last.clone()});
    let id = unique_id("affinity");
    let pid = running(&rt, &mut b, &id);
    assert_eq!(
        proc_status_field(pid, "Cpus_allowed_list").as_deref(),
        Some(last.as_str())
    );
}

#[test]
fn personality_linux32_applies() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    let id = unique_id("pers");
    let pid = running(&rt, &mut b, &id);
    assert_eq!(proc_file(pid, "personality").trim(), "00000008");
}

#[test]
fn memory_policy_applies() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    let id = unique_id("mpol");
    let pid = running(&rt, &mut b, &id);
    let status = proc_file(pid, "status");
    assert!(status.contains("Mems_allowed_list:\t0"), "{status}");
    let maps = proc_file(pid, "numa_maps");
    assert!(
        maps.is_empty() || maps.contains("bind:0"),
        "numa_maps shows the bind policy: {maps}"
    );
}

#[test]
fn bad_task_attributes_fail_with_their_field() {
    let rt = Runtime::new();
    for (field, edit) in [
        (
            "process.scheduler.priority",
            json!({"process": {"scheduler": {"policy": "SCHED_FIFO", "priority": 0}}}),
        ),
        (
            "process.ioPriority.priority",
            json!({"process": {"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 9}}}),
        ),
        (
            "process.execCPUAffinity.final",
            json!({"process": {"execCPUAffinity": {"final": "3-1"}}}),
        ),
        (
            "linux.memoryPolicy.nodes",
            json!({"linux": {"memoryPolicy": {"mode": "MPOL_BIND"}}}),
        ),
    ] {
        let mut b = Bundle::new();
        for (section, v) in edit.as_object().unwrap() {
            for (k, val) in v.as_object().unwrap() {
                b.config[section][k] = val.clone();
            }
        }
        let id = unique_id("badattr");
        let msg = assert_fails(&rt.create(&b, &id), field);
        assert!(msg.contains(field), "{field}: {msg}");
        assert_nothing_left(&rt, &id);
    }
}

#[test]
fn labels_on_a_host_without_the_lsm_are_refused_like_runc() {
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    let rt = Runtime::new();
    if !apparmor {
        let mut b = Bundle::new();
        b.config["process"]["apparmorProfile"] = json!("docker-default");
        let id = unique_id("aa");
        let msg = assert_fails(&rt.create(&b, &id), "apparmorProfile without AppArmor");
        assert!(msg.contains("process.apparmorProfile"), "{msg}");
        assert_nothing_left(&rt, &id);
    }
    if !selinux {
        let mut b = Bundle::new();
        b.config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
        let id = unique_id("se");
        let msg = assert_fails(&rt.create(&b, &id), "selinuxLabel without SELinux");
        assert!(msg.contains("process.selinuxLabel"), "{msg}");
        // mountLabel alone is ignored without SELinux, as runc does.
        let mut b = Bundle::new();
        b.config["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0");
        b.set_args(&["/probe", "exit", "0"]);
        assert_success(&rt.run(&b, &unique_id("ml")), "mountLabel without SELinux");
    }
}
