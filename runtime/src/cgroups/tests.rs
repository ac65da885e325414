use super::apply::{field_of_file, libcgroups_error};
use super::cpu::valid_cpu_list;
use super::devfilter::{self, Rule, ACC_ALL, ACC_MKNOD, ACC_READ, ACC_WRITE, BLOCK, CHAR};
use super::devices::device_rules;
use super::hugetlb::hugepage_kb;
use super::layout::Layout;
use super::*;
use serde_json::json;

fn res(v: serde_json::Value) -> LinuxResources {
    serde_json::from_value(v).unwrap()
}

fn err_of(v: serde_json::Value) -> String {
    validate(&res(v)).unwrap_err().to_string()
}

#[test]
fn cpu_lists_follow_the_kernel_format() {
    for ok in ["0", "0-3", "0,2,4-7", " 1 ", "0-7:2/4", "3-3"] {
        assert!(valid_cpu_list(ok), "{ok}");
    }
    for bad in ["0-", "-1", "a", "3-1", "0,,1", "1:2/4", "0-7:2/0", ""] {
        assert!(!valid_cpu_list(bad), "{bad}");
    }
}

#[test]
fn hugepage_sizes_are_power_of_two_kilobytes() {
    assert_eq!(hugepage_kb("2MB"), Some(2048));
    assert_eq!(hugepage_kb("1GB"), Some(1 << 20));
    assert_eq!(hugepage_kb("64KB"), Some(64));
    for bad in ["2M", "3MB", "MB", "0MB", "2mb", "-2MB"] {
        assert_eq!(hugepage_kb(bad), None, "{bad}");
    }
}

#[test]
fn docker_zero_values_are_unset() {
    let r = res(json!({
        "memory": {"disableOOMKiller": false, "limit": 0, "useHierarchy": true},
        "cpu": {"shares": 0, "cpus": "", "quota": 0},
        "blockIO": {"weight": 0, "weightDevice": [{"major": 8, "minor": 0, "weight": 0}]},
        "pids": {"limit": 0},
        "network": {"classID": 0, "priorities": []},
        "hugepageLimits": [], "rdma": {}, "unified": {}
    }));
    validate(&r).unwrap();
    assert_eq!(normalize(&r), LinuxResources::default());
}

#[test]
fn bad_values_name_their_field() {
    for (v, needle) in [
        (
            json!({"memory": {"limit": -2}}),
            "linux.resources.memory.limit: -2",
        ),
        (
            json!({"memory": {"swap": 100}}),
            "linux.resources.memory.swap",
        ),
        (
            json!({"memory": {"limit": 200, "swap": 100}}),
            "linux.resources.memory.swap",
        ),
        (
            json!({"memory": {"swappiness": 101}}),
            "linux.resources.memory.swappiness",
        ),
        (
            json!({"cpu": {"cpus": "0-"}}),
            "linux.resources.cpu.cpus: \"0-\"",
        ),
        (json!({"cpu": {"mems": "x"}}), "linux.resources.cpu.mems"),
        (json!({"cpu": {"quota": 10}}), "linux.resources.cpu.quota"),
        (json!({"cpu": {"period": 10}}), "linux.resources.cpu.period"),
        (json!({"cpu": {"idle": 2}}), "linux.resources.cpu.idle"),
        (
            json!({"blockIO": {"weight": 5}}),
            "linux.resources.blockIO.weight: 5",
        ),
        (
            json!({"blockIO": {"leafWeight": 1001}}),
            "linux.resources.blockIO.leafWeight",
        ),
        (
            json!({"blockIO": {"throttleReadBpsDevice": [{"major": -1, "minor": 0, "rate": 1}]}}),
            "linux.resources.blockIO.throttleReadBpsDevice[0]",
        ),
        (
            json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}),
            "linux.resources.hugepageLimits[0].pageSize",
        ),
        (
            json!({"devices": [{"allow": true, "type": "p"}]}),
            "linux.resources.devices[0].type",
        ),
        (
            json!({"devices": [{"allow": true, "type": "c", "access": "rx"}]}),
            "linux.resources.devices[0].access",
        ),
        (
            json!({"devices": [{"allow": true, "type": "c", "major": -1}]}),
            "linux.resources.devices[0].major",
        ),
        (
            json!({"unified": {"../memory.max": "1"}}),
            "linux.resources.unified.../memory.max",
        ),
        (
            json!({"unified": {"cgroup.procs": "1"}}),
            "linux.resources.unified.cgroup.procs",
        ),
    ] {
        let e = err_of(v.clone());
        assert!(e.contains(needle), "{v}: {e}");
    }
}

fn rule(allow: bool, typ: Option<u8>, major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
    Rule {
        allow,
        typ,
        major,
        minor,
        access,
    }
}

#[test]
fn device_rules_fold_like_the_v1_kernel() {
    // Whitelist: deny all, allow c 1:3 r, allow c 1:3 w (merged), deny c 1:3 r.
    let p = devfilter::emulate(&[
        Rule::all(false),
        rule(true, Some(CHAR), Some(1), Some(3), ACC_READ),
        rule(true, Some(CHAR), Some(1), Some(3), ACC_WRITE),
        rule(false, Some(CHAR), Some(1), Some(3), ACC_READ),
    ]);
    assert!(!p.default_allow);
    assert_eq!(
        p.exceptions,
        vec![rule(true, Some(CHAR), Some(1), Some(3), ACC_WRITE)]
    );
    // A wildcard deny in whitelist mode removes only the identical exception.
    let p = devfilter::emulate(&[
        Rule::all(false),
        rule(true, Some(CHAR), Some(1), Some(3), ACC_ALL),
        rule(false, Some(CHAR), None, None, ACC_ALL),
    ]);
    assert_eq!(p.exceptions.len(), 1);
    // "a" resets; a fresh cgroup allows everything.
    let p = devfilter::emulate(&[
        rule(false, Some(BLOCK), Some(8), None, ACC_READ),
        Rule::all(true),
    ]);
    assert!(p.default_allow && p.exceptions.is_empty());
    assert!(devfilter::emulate(&[]).default_allow);
}

/// The kernel's decision for a policy (security/device_cgroup.c).
fn reference(p: &devfilter::Policy, typ: u8, acc: u8, major: u32, minor: u32) -> bool {
    let hit = |e: &Rule, partial: bool| {
        e.typ == Some(typ)
            && e.major.is_none_or(|m| m == major)
            && e.minor.is_none_or(|m| m == minor)
            && if partial {
                acc & e.access != 0
            } else {
                acc & !e.access == 0
            }
    };
    if p.default_allow {
        !p.exceptions.iter().any(|e| hit(e, true))
    } else {
        p.exceptions.iter().any(|e| hit(e, false))
    }
}

/// A tiny interpreter for the opcodes `program` emits.
fn run(prog: &[crate::bpf::Insn], typ: u8, acc: u8, major: u32, minor: u32) -> bool {
    let ctx = [(acc as u32) << 16 | typ as u32, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        pc += 1;
        match i.code {
            0x61 => r[dst] = ctx[(i.off / 4) as usize] as u64,
            0xbf => r[dst] = r[src],
            0xb7 => r[dst] = i.imm as i64 as u64,
            0x54 => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
            0x74 => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
            0x56 if r[dst] as u32 != i.imm as u32 => pc += i.off as usize,
            0x16 if r[dst] as u32 == i.imm as u32 => pc += i.off as usize,
            0x56 | 0x16 => {}
            0x95 => return r[0] == 1,
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

#[test]
fn device_program_decides_like_the_kernel() {
    let docker = res(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
        {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
        {"allow": true, "type": "b", "major": 7, "access": "r"}
    ]}));
    let blacklist = res(json!({"devices": [
        {"allow": true, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"},
        {"allow": false, "type": "b", "access": "m"}
    ]}));
    for r in [docker, blacklist, LinuxResources::default()] {
        let rules = device_rules(r.devices().as_deref()).unwrap();
        let mut p = devfilter::emulate(rules.iter().map(|(_, r)| r));
        if r.devices().as_ref().is_some_and(|d| d[0].allow()) {
            // The blacklist case: the config's "a" allow comes after vsrun's deny-all.
            assert!(p.default_allow);
        }
        let prog = devfilter::program(&p).unwrap();
        for typ in [BLOCK, CHAR] {
            for acc in 1..=ACC_ALL {
                for (major, minor) in [
                    (1, 3),
                    (1, 5),
                    (1, 9),
                    (5, 1),
                    (7, 0),
                    (7, 9),
                    (10, 229),
                    (10, 200),
                    (136, 4),
                    (8, 0),
                ] {
                    assert_eq!(
                        run(&prog, typ, acc, major, minor),
                        reference(&p, typ, acc, major, minor),
                        "{r:?} type {typ} access {acc} {major}:{minor}"
                    );
                }
            }
        }
        p.exceptions.clear();
        assert_eq!(
            run(&devfilter::program(&p).unwrap(), CHAR, ACC_MKNOD, 1, 1),
            p.default_allow
        );
    }
}

#[test]
fn default_allowlist_denies_the_rest() {
    let rules = device_rules(None).unwrap();
    let p = devfilter::emulate(rules.iter().map(|(_, r)| r));
    let prog = devfilter::program(&p).unwrap();
    assert!(run(&prog, CHAR, ACC_READ | ACC_WRITE, 1, 3), "/dev/null");
    assert!(run(&prog, CHAR, ACC_READ, 136, 7), "a pty");
    assert!(run(&prog, BLOCK, ACC_MKNOD, 8, 0), "mknod of anything");
    assert!(!run(&prog, BLOCK, ACC_READ, 8, 0), "a disk");
    assert!(!run(&prog, CHAR, ACC_READ, 1, 1), "/dev/mem");
    assert_eq!(rules[0].1.v1_line(), "a *:* rwm");
    assert_eq!(rules[7].1.v1_line(), "c *:* m");
}

#[test]
fn libcgroups_errors_name_the_field() {
    let r = res(json!({
        "cpu": {"cpus": "9999", "quota": 20000},
        "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}, {"major": 9, "minor": 1, "rate": 2}]},
        "hugepageLimits": [{"pageSize": "1GB", "limit": 0}, {"pageSize": "2MB", "limit": 0}],
        "unified": {"memory.high": "1"}
    }));
    assert_eq!(
        field_of_file("cpuset.cpus", "9999", &r),
        "linux.resources.cpu.cpus"
    );
    assert_eq!(
        field_of_file("cpu.max", "20000", &r),
        "linux.resources.cpu.quota"
    );
    assert_eq!(
        field_of_file("io.max", "9:1 rbps=2", &r),
        "linux.resources.blockIO.throttleReadBpsDevice[1]"
    );
    assert_eq!(
        field_of_file("blkio.throttle.read_bps_device", "8:0 1", &r),
        "linux.resources.blockIO.throttleReadBpsDevice[0]"
    );
    assert_eq!(
        field_of_file("hugetlb.2MB.max", "0", &r),
        "linux.resources.hugepageLimits[1]"
    );
    assert_eq!(
        field_of_file("memory.high", "1", &r),
        "linux.resources.unified.memory.high"
    );
    let layout = Layout::V2;
    let e = libcgroups_error(
        "io error: failed to write 9999 to /sys/fs/cgroup/vsrun/x/cpuset.cpus: Invalid argument (os error 22)",
        &r,
        &layout,
        Path::new("/vsrun/x"),
    );
    assert_eq!(
        e.to_string(),
        "linux.resources.cpu.cpus: \"9999\" rejected by the kernel (cpuset.cpus: Invalid argument (os error 22))"
    );
}

/// Every field the table knows, set; block devices 8:0 and 8:16, huge pages 2MB.
fn every_field() -> serde_json::Value {
    let dev = |k: &str| json!([{"major": 8, "minor": 0, k: 1}, {"major": 8, "minor": 16, k: 2}]);
    json!({
        "memory": {"limit": 1 << 30, "reservation": 1 << 29, "swap": 1 << 31, "swappiness": 10,
                   "disableOOMKiller": true, "checkBeforeUpdate": true, "kernel": 1 << 30,
                   "kernelTCP": 1 << 30},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "burst": 1000,
                "realtimeRuntime": 950, "realtimePeriod": 1000, "idle": 1, "cpus": "0",
                "mems": "0"},
        "pids": {"limit": 10},
        "blockIO": {"weight": 100, "leafWeight": 100,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 10, "leafWeight": 10},
                                     {"major": 8, "minor": 16, "weight": 20, "leafWeight": 20}],
                    "throttleReadBpsDevice": dev("rate"), "throttleWriteBpsDevice": dev("rate"),
                    "throttleReadIOPSDevice": dev("rate"), "throttleWriteIOPSDevice": dev("rate")},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}],
        "network": {"classID": 1, "priorities": [{"name": "lo", "priority": 1}]},
        "rdma": {"mlx5_0": {"hcaHandles": 1}}
    })
}

#[test]
fn field_table_names_are_config_fields() {
    let v = every_field();
    for row in fields::rows() {
        let mut at = &v;
        for part in row.name.split('.') {
            let (key, list) = match part.strip_suffix("[]") {
                Some(k) => (k, true),
                None => (part, false),
            };
            at = &at[key];
            if list {
                at = &at[0];
            }
        }
        assert!(!at.is_null(), "{} is not a linux.resources field", row.name);
    }
}

#[test]
fn field_table_reads_both_ways() {
    use fields::Set;
    let n = normalize(&res(every_field()));
    for row in fields::rows() {
        let entries = match (row.set)(&n) {
            Set::No => panic!("{} is not set by every_field()", row.name),
            Set::Yes => vec![(None, String::new())],
            Set::List(l) => l.into_iter().map(|(i, k)| (Some(i), k)).collect(),
        };
        assert!(!entries.is_empty(), "{}", row.name);
        for v2 in [0, 1] {
            for file in row.files[v2] {
                for (i, key) in &entries {
                    let (file, data) = match file.contains("{}") {
                        true => (file.replace("{}", key), "1".to_string()),
                        false => (file.to_string(), format!("{key} {}1", row.tag[v2])),
                    };
                    let want = row.path(*i);
                    // cpu.max holds quota and period: a refused write is the quota's.
                    let want = match file.as_str() {
                        "cpu.max" => "linux.resources.cpu.quota".to_string(),
                        _ => want,
                    };
                    assert_eq!(field_of_file(&file, data.trim(), &n), want, "{file} {data}");
                }
            }
        }
    }
}

#[test]
fn systemd_scope_paths_follow_slice_nesting() {
    for (given, dir) in [
        ("system.slice:vsrun:c1", "/system.slice/vsrun-c1.scope"),
        (":docker:c1", "/system.slice/docker-c1.scope"),
        ("kubepods-besteffort-pod1.slice:cri-containerd:c1",
         "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-c1.scope"),
        ("-.slice:p:c1", "/p-c1.scope"),
        ("machine.slice:libpod:sub.slice", "/machine.slice/sub.slice"),
    ] {
        assert_eq!(super::scope_path(Path::new(given)), Path::new(dir), "{given}");
    }
}

#[test]
fn systemd_gets_properties_and_the_scope_files_get_the_rest() {
    let mut n = res(json!({
        "cpu": {"shares": 512, "cpus": "0-1"},
        "memory": {"limit": 1048576},
        "blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]},
        "unified": {"memory.high": "1000", "io.bfq.weight": "50"},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
        "rdma": {"mlx5_0": {"hcaHandles": 3}}
    }));
    let files = super::systemd::take_file_fields(&mut n);
    assert_eq!(
        files,
        res(json!({
            "cpu": {"cpus": "0-1"},
            "blockIO": {"weight": 300},
            "unified": {"io.bfq.weight": "50"},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
            "rdma": {"mlx5_0": {"hcaHandles": 3}}
        }))
    );
    assert_eq!(
        n,
        res(json!({
            "cpu": {"shares": 512},
            "memory": {"limit": 1048576},
            "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]},
            "unified": {"memory.high": "1000"}
        }))
    );
    let mut only_cpus = res(json!({"cpu": {"cpus": "0"}}));
    super::systemd::take_file_fields(&mut only_cpus);
    assert!(
        only_cpus.cpu().is_none(),
        "no CPU properties (CPUQuota) for a cpuset alone"
    );
}

/// A directory of its own under the system's temp dir, empty.
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("vsrun-unit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A v1 layout with one hierarchy per controller, mounted at `top/<controller>`.
fn v1_layout(top: &Path, controllers: &[&str]) -> Layout {
    Layout::V1 {
        hierarchies: controllers
            .iter()
            .map(|c| super::layout::Hierarchy {
                mount: top.join(c),
                controllers: vec![c.to_string()],
            })
            .collect(),
        hybrid: false,
        named: Vec::new(),
        unified: None,
    }
}

#[test]
fn only_rootless_mode_writes_around_a_missing_devices_cgroup() {
    let top = scratch_dir("delegated-applies");
    let layout = v1_layout(&top, &["devices", "pids"]);
    let path = Path::new("/vsrun/x");
    // Only rootless mode skips a directory (`prepare`): outside it the devices hierarchy is
    // where libcgroups writes, whatever a lookup would find.
    assert!(!super::delegated::applies(&layout, path, false));
    assert!(super::delegated::applies(&layout, path, true));
    std::fs::create_dir_all(top.join("devices/vsrun/x")).unwrap();
    assert!(!super::delegated::applies(&layout, path, true));
    std::fs::remove_dir_all(&top).unwrap();
}

#[test]
fn a_write_to_a_controller_without_a_hierarchy_names_the_field() {
    // Never a write relative to the cwd: the error says which field needs which controller.
    let top = scratch_dir("dir-for");
    let layout = v1_layout(&top, &["devices"]);
    let path = Path::new("/vsrun/x");
    let r = res(json!({"pids": {"limit": 50}}));
    let e = super::delegated::write_v1(&r, &layout, path)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "linux.resources.pids.limit: the pids controller is not mounted on this host (cgroup v1)"
    );
    let r = res(json!({"rdma": {"mlx5_0": {"hcaHandles": 3}}}));
    let e = super::rdma::write_own(r.rdma().as_ref().unwrap(), &layout, path)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("linux.resources.rdma.mlx5_0: the rdma controller is not mounted"),
        "{e}"
    );
    std::fs::remove_dir_all(&top).unwrap();
}
