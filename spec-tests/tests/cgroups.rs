//! cgroups: one test per `linux.resources` field, named after it. Each creates a container with
//! the field set and reads the real cgroup file back on the host, in the v1 layout (this
//! machine) or the v2 one (hack/v2-vm.sh). A field the host cannot apply must fail with its
//! name and leave nothing behind; the tests decide which by looking at the host themselves.
//! Plus: the cgroup's life (removed after delete, after `run`, after a failed create), kill
//! --all, the device allowlist as the container sees it, and bad values.

use spec_tests::serde_json::{json, Value};
use spec_tests::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// The host's hierarchy, seen independently of vsrun

const ROOT: &str = "/sys/fs/cgroup";

fn is_v2() -> bool {
    host_mounts()
        .iter()
        .any(|m| m.mount_point == ROOT && m.fs_type == "cgroup2")
}

/// The v1 mount of `controller`.
fn v1_mount(controller: &str) -> Option<PathBuf> {
    host_mounts()
        .into_iter()
        .find(|m| {
            m.fs_type == "cgroup"
                && m.mount_point.starts_with(ROOT)
                && m.super_options.iter().any(|o| o == controller)
        })
        .map(|m| PathBuf::from(m.mount_point))
}

/// Where `controller`'s files of cgroup `path` are.
fn dir_of(controller: &str, path: &str) -> Option<PathBuf> {
    let rel = path.trim_start_matches('/');
    if is_v2() {
        return Some(Path::new(ROOT).join(rel));
    }
    v1_mount(controller).map(|m| m.join(rel))
}

/// Every directory of cgroup `path`: one on v2, one per v1 controller mount.
fn all_dirs(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    if is_v2() {
        return vec![Path::new(ROOT).join(rel)];
    }
    host_mounts()
        .into_iter()
        .filter(|m| {
            m.fs_type == "cgroup"
                && m.mount_point.starts_with(ROOT)
                && !m.super_options.iter().any(|o| o.starts_with("name="))
        })
        .map(|m| Path::new(&m.mount_point).join(rel))
        .collect()
}

/// Does a fresh child cgroup have `file` (v1: in `controller`'s hierarchy; v2: the file's own
/// controller enabled at the root)? Looked at in a scratch cgroup the test makes and removes.
fn host_has(controller: &str, v1: &str, v2: &str) -> bool {
    let file = if is_v2() { v2 } else { v1 };
    if file.is_empty() {
        return false;
    }
    let parent = if is_v2() {
        let ctl =
            fs::read_to_string(Path::new(ROOT).join("cgroup.subtree_control")).unwrap_or_default();
        let own = file.split('.').next().unwrap_or_default();
        if !ctl.split_whitespace().any(|c| c == own) {
            return false;
        }
        PathBuf::from(ROOT)
    } else {
        match v1_mount(controller) {
            Some(m) => m,
            None => return false,
        }
    };
    let scratch = parent.join(unique_id("vsrun-test-scratch"));
    fs::create_dir(&scratch).expect("make a scratch cgroup");
    let has = scratch.join(file).exists();
    fs::remove_dir(&scratch).expect("remove the scratch cgroup");
    has
}

fn exists_any(dirs: &[PathBuf]) -> Vec<PathBuf> {
    dirs.iter().filter(|d| d.exists()).cloned().collect()
}

/// Wait (up to 5 s) until none of the cgroup's directories exists.
#[track_caller]
fn assert_cgroup_gone(path: &str) {
    let dirs = all_dirs(path);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !exists_any(&dirs).is_empty() {
        assert!(
            Instant::now() < deadline,
            "cgroup {path} left behind: {:?}",
            exists_any(&dirs)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// A created container with resources

struct Ctr {
    rt: Runtime,
    _b: Bundle,
    id: String,
    path: String,
}

fn bundle_with(resources: Value, path: &str) -> Bundle {
    let mut b = Bundle::new();
    b.set_args(&["/probe", "sleep", "1000"]);
    b.config["linux"]["resources"] = resources;
    b.config["linux"]["cgroupsPath"] = json!(path);
    b
}

fn test_path(id: &str) -> String {
    format!("/vsrun-test/{id}")
}

impl Ctr {
    /// `create` with these resources in cgroup /vsrun-test/<id>; Err(stderr) when it failed,
    /// after checking that the failure left nothing behind.
    fn try_create(resources: Value) -> Result<Ctr, String> {
        let id = unique_id("cg");
        Self::try_create_at(resources, &test_path(&id), id)
    }

    fn try_create_at(resources: Value, path: &str, id: String) -> Result<Ctr, String> {
        let rt = Runtime::new();
        let b = bundle_with(resources, path);
        let o = rt.create(&b, &id);
        if !o.status.success() {
            let err = assert_fails(&o, "create");
            assert_nothing_left(&rt, &id);
            assert_cgroup_gone(path);
            return Err(err);
        }
        Ok(Ctr {
            rt,
            _b: b,
            id,
            path: path.to_string(),
        })
    }

    #[track_caller]
    fn create(resources: Value) -> Ctr {
        Self::try_create(resources.clone())
            .unwrap_or_else(|e| panic!("create with {resources} failed: {e}"))
    }

    /// The content of a cgroup file of this container (v1 name, v2 name).
    #[track_caller]
    fn read(&self, controller: &str, v1: &str, v2: &str) -> String {
        let file = if is_v2() { v2 } else { v1 };
        let dir = dir_of(controller, &self.path)
            .unwrap_or_else(|| panic!("no {controller} hierarchy on this host"));
        fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("read {}/{file}: {e}", dir.display()))
            .trim()
            .to_string()
    }

    fn pid(&self) -> i32 {
        self.rt.state(&self.id)["pid"].as_i64().expect("state.pid") as i32
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let o = self.rt.cmd(&["delete", "--force", &self.id]);
        if !std::thread::panicking() {
            assert_success(&o, "delete --force");
            assert_cgroup_gone(&self.path);
        }
    }
}

/// A field the host can apply must apply; one it cannot must fail naming it. `check` reads
/// the files back.
#[track_caller]
fn applied_or_refused(resources: Value, supported: bool, field: &str, check: impl FnOnce(&Ctr)) {
    match Ctr::try_create(resources.clone()) {
        Ok(c) => {
            assert!(
                supported,
                "{resources}: applied, but this host cannot apply {field}"
            );
            check(&c);
        }
        Err(err) => {
            assert!(
                !supported,
                "{resources}: refused on a host that has it: {err}"
            );
            assert!(
                reference_mode() || err.contains(field),
                "{resources}: the error does not name {field}: {err}"
            );
            eprintln!("refused as expected: {}", err.trim());
        }
    }
}

const MIB: i64 = 1 << 20;

// ---------------------------------------------------------------------------------------------
// memory

#[test]
fn memory_limit() {
    let c = Ctr::create(json!({"memory": {"limit": 64 * MIB}}));
    assert_eq!(
        c.read("memory", "memory.limit_in_bytes", "memory.max"),
        (64 * MIB).to_string()
    );
}

#[test]
fn memory_limit_unlimited() {
    let c = Ctr::create(json!({"memory": {"limit": -1}}));
    let v = c.read("memory", "memory.limit_in_bytes", "memory.max");
    assert!(v == "max" || v.parse::<u64>().unwrap() > 1 << 60, "{v}");
}

#[test]
fn memory_reservation() {
    let c = Ctr::create(json!({"memory": {"reservation": 32 * MIB}}));
    assert_eq!(
        c.read("memory", "memory.soft_limit_in_bytes", "memory.low"),
        (32 * MIB).to_string()
    );
}

#[test]
fn memory_swap() {
    let supported = host_has("memory", "memory.memsw.limit_in_bytes", "memory.swap.max");
    let r = json!({"memory": {"limit": 64 * MIB, "swap": 96 * MIB}});
    applied_or_refused(r, supported, "linux.resources.memory.swap", |c| {
        // v1 limits memory+swap together; v2 limits swap alone.
        let want = if is_v2() { 32 * MIB } else { 96 * MIB };
        assert_eq!(
            c.read("memory", "memory.memsw.limit_in_bytes", "memory.swap.max"),
            want.to_string()
        );
    });
}

#[test]
fn memory_swap_equal_to_the_limit_means_no_swap() {
    let supported = host_has("memory", "memory.memsw.limit_in_bytes", "memory.swap.max");
    let r = json!({"memory": {"limit": 64 * MIB, "swap": 64 * MIB}});
    applied_or_refused(r, supported, "linux.resources.memory.swap", |c| {
        let want = if is_v2() { 0 } else { 64 * MIB };
        assert_eq!(
            c.read("memory", "memory.memsw.limit_in_bytes", "memory.swap.max"),
            want.to_string()
        );
    });
}

#[test]
fn memory_swappiness() {
    let supported = host_has("memory", "memory.swappiness", "");
    let r = json!({"memory": {"swappiness": 37}});
    applied_or_refused(r, supported, "linux.resources.memory.swappiness", |c| {
        assert_eq!(c.read("memory", "memory.swappiness", ""), "37");
    });
}

#[test]
fn memory_disable_oom_killer() {
    let supported = host_has("memory", "memory.oom_control", "");
    let r = json!({"memory": {"disableOOMKiller": true}});
    applied_or_refused(
        r,
        supported,
        "linux.resources.memory.disableOOMKiller",
        |c| {
            let v = c.read("memory", "memory.oom_control", "");
            assert!(v.contains("oom_kill_disable 1"), "{v}");
        },
    );
}

#[test]
fn memory_disable_oom_killer_false_is_unset() {
    // docker sends it on every host, v2 included.
    let c = Ctr::create(
        json!({"memory": {"disableOOMKiller": false}, "cpu": {"shares": 0},
        "blockIO": {"weight": 0}}),
    );
    drop(c);
}

/// Whether a byte limit written to a fresh v1 memory cgroup is kept (kernel memory limits are
/// accepted and ignored by recent kernels).
fn v1_memory_limit_kept(file: &str) -> bool {
    if is_v2() || !host_has("memory", file, "") {
        return false;
    }
    let scratch = v1_mount("memory")
        .unwrap()
        .join(unique_id("vsrun-test-scratch"));
    fs::create_dir(&scratch).unwrap();
    let _ = fs::write(scratch.join(file), (64 * MIB).to_string());
    let kept = fs::read_to_string(scratch.join(file)).unwrap().trim() == (64 * MIB).to_string();
    fs::remove_dir(&scratch).unwrap();
    kept
}

/// Deprecated kernel memory fields (config-linux.md: "not recommended"): applied where the
/// kernel keeps the limit; elsewhere accepted with a warning naming the field, as runc and crun
/// do, and the container runs. `update` behaves the same.
#[track_caller]
fn applied_or_warned(resources: Value, supported: bool, field: &str, check: impl Fn(&Ctr)) {
    let id = unique_id("cg");
    let path = test_path(&id);
    let rt = Runtime::new();
    let b = bundle_with(resources.clone(), &path);
    let o = rt.create(&b, &id);
    assert_success(&o, &format!("create with {resources}"));
    let c = Ctr {
        rt,
        _b: b,
        id,
        path,
    };
    let upd = tempfile::NamedTempFile::new().unwrap();
    fs::write(upd.path(), resources.to_string()).unwrap();
    let u =
        c.rt.cmd(&["update", "--resources", upd.path().to_str().unwrap(), &c.id]);
    assert_success(&u, &format!("update with {resources}"));
    for (what, err) in [("create", stderr_str(&o)), ("update", stderr_str(&u))] {
        if supported {
            check(&c);
        } else {
            assert!(
                reference_mode()
                    || err
                        .lines()
                        .any(|l| l.contains("warning") && l.contains(field)),
                "{what} with {resources}: no warning naming {field}: {err}"
            );
        }
    }
    c.rt.start(&c.id);
    assert_eq!(c.rt.status(&c.id).as_deref(), Some("running"));
}

#[test]
fn memory_kernel() {
    let supported = v1_memory_limit_kept("memory.kmem.limit_in_bytes");
    let r = json!({"memory": {"kernel": 64 * MIB}});
    applied_or_warned(r, supported, "linux.resources.memory.kernel", |c| {
        assert_eq!(
            c.read("memory", "memory.kmem.limit_in_bytes", ""),
            (64 * MIB).to_string()
        );
    });
}

#[test]
fn memory_kernel_tcp() {
    let supported = v1_memory_limit_kept("memory.kmem.tcp.limit_in_bytes");
    let r = json!({"memory": {"kernelTCP": 16 * MIB}});
    applied_or_warned(r, supported, "linux.resources.memory.kernelTCP", |c| {
        assert_eq!(
            c.read("memory", "memory.kmem.tcp.limit_in_bytes", ""),
            (16 * MIB).to_string()
        );
    });
}

#[test]
fn memory_use_hierarchy_false_is_refused() {
    let err = Ctr::try_create(json!({"memory": {"useHierarchy": false}})).err();
    let err = err.expect("useHierarchy false was accepted");
    assert!(err.contains("linux.resources.memory.useHierarchy"), "{err}");
}

#[test]
fn memory_check_before_update() {
    let c = Ctr::create(json!({"memory": {"limit": 64 * MIB, "checkBeforeUpdate": true}}));
    // A limit below what the container already uses is refused, and the old one stays.
    let file = c.rt.root().join("lower.json");
    fs::write(
        &file,
        json!({"memory": {"limit": 4096, "checkBeforeUpdate": true}}).to_string(),
    )
    .unwrap();
    let o =
        c.rt.cmd(&["update", "--resources", file.to_str().unwrap(), &c.id]);
    let err = assert_fails(&o, "update below the usage");
    assert!(
        reference_mode() || err.contains("linux.resources.memory.limit"),
        "{err}"
    );
    assert_eq!(
        c.read("memory", "memory.limit_in_bytes", "memory.max"),
        (64 * MIB).to_string()
    );
}

// ---------------------------------------------------------------------------------------------
// cpu

#[test]
fn cpu_shares() {
    let c = Ctr::create(json!({"cpu": {"shares": 512}}));
    let want = if is_v2() {
        shares_to_weight(512).to_string()
    } else {
        "512".into()
    };
    assert_eq!(c.read("cpu", "cpu.shares", "cpu.weight"), want);
}

#[test]
fn cpu_quota() {
    let c = Ctr::create(json!({"cpu": {"quota": 20000}}));
    if is_v2() {
        assert_eq!(c.read("cpu", "", "cpu.max"), "20000 100000");
    } else {
        assert_eq!(c.read("cpu", "cpu.cfs_quota_us", ""), "20000");
    }
}

#[test]
fn cpu_period() {
    let c = Ctr::create(json!({"cpu": {"quota": 25000, "period": 50000}}));
    if is_v2() {
        assert_eq!(c.read("cpu", "", "cpu.max"), "25000 50000");
    } else {
        assert_eq!(c.read("cpu", "cpu.cfs_period_us", ""), "50000");
        assert_eq!(c.read("cpu", "cpu.cfs_quota_us", ""), "25000");
    }
}

#[test]
fn cpu_burst() {
    let supported = host_has("cpu", "cpu.cfs_burst_us", "cpu.max.burst");
    // Alone: libcgroups 0.7 skips a v1 burst unless another cpu field is set.
    let r = json!({"cpu": {"burst": 1000}});
    applied_or_refused(r, supported, "linux.resources.cpu.burst", |c| {
        assert_eq!(c.read("cpu", "cpu.cfs_burst_us", "cpu.max.burst"), "1000");
    });
}

#[test]
fn cpu_realtime_runtime() {
    let supported = host_has("cpu", "cpu.rt_runtime_us", "");
    // Directly below the root: a child's realtime budget must fit in its parent's, and only
    // the root has one by default.
    let id = unique_id("cg-rt");
    let path = format!("/{id}");
    let r = json!({"cpu": {"realtimeRuntime": 10000, "realtimePeriod": 500000}});
    match Ctr::try_create_at(r.clone(), &path, id) {
        Ok(c) => {
            assert!(supported, "applied without cpu.rt_runtime_us");
            assert_eq!(c.read("cpu", "cpu.rt_runtime_us", ""), "10000");
        }
        Err(err) => {
            assert!(!supported, "refused: {err}");
            assert!(err.contains("linux.resources.cpu.realtime"), "{err}");
        }
    }
}

#[test]
fn cpu_realtime_period() {
    let supported = host_has("cpu", "cpu.rt_period_us", "");
    let r = json!({"cpu": {"realtimePeriod": 500000}});
    applied_or_refused(r, supported, "linux.resources.cpu.realtimePeriod", |c| {
        assert_eq!(c.read("cpu", "cpu.rt_period_us", ""), "500000");
    });
}

#[test]
fn cpu_cpus() {
    let c = Ctr::create(json!({"cpu": {"cpus": "0"}}));
    assert_eq!(c.read("cpuset", "cpuset.cpus", "cpuset.cpus"), "0");
    // And the container runs there.
    let allowed = proc_status_field(c.pid(), "Cpus_allowed_list").unwrap();
    assert_eq!(allowed, "0");
}

#[test]
fn cpu_mems() {
    let c = Ctr::create(json!({"cpu": {"mems": "0"}}));
    assert_eq!(c.read("cpuset", "cpuset.mems", "cpuset.mems"), "0");
}

#[test]
fn cpu_idle() {
    let supported = host_has("cpu", "cpu.idle", "cpu.idle");
    let r = json!({"cpu": {"idle": 1}});
    applied_or_refused(r, supported, "linux.resources.cpu.idle", |c| {
        assert_eq!(c.read("cpu", "cpu.idle", "cpu.idle"), "1");
    });
}

// ---------------------------------------------------------------------------------------------
// pids

#[test]
fn pids_limit() {
    let c = Ctr::create(json!({"pids": {"limit": 42}}));
    assert_eq!(c.read("pids", "pids.max", "pids.max"), "42");
}

#[test]
fn pids_limit_negative_is_unlimited() {
    let c = Ctr::create(json!({"pids": {"limit": -1}}));
    assert_eq!(c.read("pids", "pids.max", "pids.max"), "max");
}

// ---------------------------------------------------------------------------------------------
// blockIO

/// A loop device of our own (on a 4 MiB file), with BFQ as its scheduler when the kernel has it:
/// a real block device for per-device rules that no one else uses.
struct Loop {
    dev: String,
    majmin: (i64, i64),
    bfq: bool,
    _file: spec_tests::tempfile::NamedTempFile,
}

impl Loop {
    fn new() -> Loop {
        let file = spec_tests::tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(4 << 20).unwrap();
        let o = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file.path())
            .stderr(Stdio::inherit())
            .output()
            .expect("run losetup");
        assert!(o.status.success(), "losetup --find --show failed");
        let dev = String::from_utf8(o.stdout).unwrap().trim().to_string();
        let name = dev.trim_start_matches("/dev/");
        let sys = Path::new("/sys/block").join(name);
        let numbers = fs::read_to_string(sys.join("dev")).unwrap();
        let (ma, mi) = numbers.trim().split_once(':').unwrap();
        let bfq = fs::write(sys.join("queue/scheduler"), "bfq").is_ok();
        Loop {
            dev,
            majmin: (ma.parse().unwrap(), mi.parse().unwrap()),
            bfq,
            _file: file,
        }
    }

    fn numbers(&self) -> String {
        format!("{}:{}", self.majmin.0, self.majmin.1)
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

#[test]
fn block_io_weight() {
    let supported = host_has("blkio", "blkio.weight", "io.weight")
        || host_has("blkio", "blkio.bfq.weight", "io.bfq.weight");
    let r = json!({"blockIO": {"weight": 300}});
    applied_or_refused(r, supported, "linux.resources.blockIO.weight", |c| {
        let (v1, v2) = if host_has("blkio", "blkio.bfq.weight", "io.bfq.weight") {
            ("blkio.bfq.weight", "io.bfq.weight")
        } else {
            ("blkio.weight", "io.weight")
        };
        let v = c.read(if is_v2() { "io" } else { "blkio" }, v1, v2);
        // v2 without BFQ: io.weight on its 1..10000 scale (runc's conversion).
        let want = if is_v2() && v2 == "io.weight" {
            "2930"
        } else {
            "300"
        };
        assert!(
            v == want || v.lines().any(|l| l == format!("default {want}")),
            "{v}"
        );
    });
}

#[test]
fn block_io_leaf_weight() {
    let supported = host_has("blkio", "blkio.leaf_weight", "");
    let r = json!({"blockIO": {"leafWeight": 300}});
    applied_or_refused(r, supported, "linux.resources.blockIO.leafWeight", |c| {
        assert_eq!(c.read("blkio", "blkio.leaf_weight", ""), "300");
    });
}

#[test]
fn block_io_weight_device() {
    let l = Loop::new();
    let (ma, mi) = l.majmin;
    let supported = l.bfq
        && (host_has("blkio", "blkio.weight_device", "")
            || host_has("blkio", "blkio.bfq.weight_device", "io.bfq.weight"));
    let r = json!({"blockIO": {"weightDevice": [{"major": ma, "minor": mi, "weight": 300}]}});
    applied_or_refused(
        r,
        supported,
        "linux.resources.blockIO.weightDevice[0]",
        |c| {
            let v1 = if host_has("blkio", "blkio.weight_device", "") {
                "blkio.weight_device"
            } else {
                "blkio.bfq.weight_device"
            };
            let v = c.read(if is_v2() { "io" } else { "blkio" }, v1, "io.bfq.weight");
            assert!(
                v.lines().any(|line| line == format!("{} 300", l.numbers())),
                "{v}"
            );
        },
    );
}

fn throttle(field: &str, v1: &str, v2_key: &str) {
    let l = Loop::new();
    let (ma, mi) = l.majmin;
    let supported = host_has("blkio", v1, "io.max");
    let r = json!({"blockIO": {field: [{"major": ma, "minor": mi, "rate": 1048576}]}});
    applied_or_refused(
        r,
        supported,
        &format!("linux.resources.blockIO.{field}[0]"),
        |c| {
            let v = c.read(if is_v2() { "io" } else { "blkio" }, v1, "io.max");
            let want = if is_v2() {
                format!("{v2_key}=1048576")
            } else {
                "1048576".into()
            };
            assert!(
                v.lines()
                    .any(|line| line.starts_with(&format!("{} ", l.numbers()))
                        && line.split_whitespace().any(|w| w == want)),
                "{v}"
            );
        },
    );
}

#[test]
fn block_io_throttle_read_bps_device() {
    throttle(
        "throttleReadBpsDevice",
        "blkio.throttle.read_bps_device",
        "rbps",
    );
}

#[test]
fn block_io_throttle_write_bps_device() {
    throttle(
        "throttleWriteBpsDevice",
        "blkio.throttle.write_bps_device",
        "wbps",
    );
}

#[test]
fn block_io_throttle_read_iops_device() {
    throttle(
        "throttleReadIOPSDevice",
        "blkio.throttle.read_iops_device",
        "riops",
    );
}

#[test]
fn block_io_throttle_write_iops_device() {
    throttle(
        "throttleWriteIOPSDevice",
        "blkio.throttle.write_iops_device",
        "wiops",
    );
}

#[test]
fn block_io_throttle_of_a_missing_device_names_it() {
    let r =
        json!({"blockIO": {"throttleReadBpsDevice": [{"major": 4000, "minor": 4000, "rate": 1}]}});
    let err = Ctr::try_create(r).err().expect("accepted a missing device");
    assert!(
        err.contains("linux.resources.blockIO.throttleReadBpsDevice[0]"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// hugepageLimits, network, rdma, unified

#[test]
fn hugepage_limits() {
    let supported = host_has("hugetlb", "hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.max");
    let r = json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 8 * MIB}]});
    applied_or_refused(r, supported, "linux.resources.hugepageLimits", |c| {
        assert_eq!(
            c.read("hugetlb", "hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.max"),
            (8 * MIB).to_string()
        );
    });
}

#[test]
fn network_class_id() {
    let supported = host_has("net_cls", "net_cls.classid", "");
    let r = json!({"network": {"classID": 1048577}});
    applied_or_refused(r, supported, "linux.resources.network.classID", |c| {
        assert_eq!(c.read("net_cls", "net_cls.classid", ""), "1048577");
    });
}

#[test]
fn network_priorities() {
    let supported = host_has("net_prio", "net_prio.ifpriomap", "");
    let r = json!({"network": {"priorities": [{"name": "lo", "priority": 5}]}});
    applied_or_refused(r, supported, "linux.resources.network.priorities", |c| {
        let v = c.read("net_prio", "net_prio.ifpriomap", "");
        assert!(v.lines().any(|l| l == "lo 5"), "{v}");
    });
}

#[test]
fn rdma() {
    // No RDMA device exists on either test host: with the controller, the kernel refuses the
    // unknown device; without it, vsrun does. Either way the field is named.
    let r = json!({"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 10000}}});
    let err = Ctr::try_create(r)
        .err()
        .expect("an rdma limit for a missing device applied");
    assert!(err.contains("linux.resources.rdma"), "{err}");
}

#[test]
fn unified() {
    let r = json!({"unified": {"memory.high": (48 * MIB).to_string(), "pids.max": "17"}});
    applied_or_refused(r, is_v2(), "linux.resources.unified", |c| {
        assert_eq!(c.read("memory", "", "memory.high"), (48 * MIB).to_string());
        assert_eq!(c.read("pids", "", "pids.max"), "17");
    });
}

#[test]
fn unified_key_outside_the_cgroup_is_refused() {
    let r = json!({"unified": {"../memory.max": "1"}});
    let err = Ctr::try_create(r)
        .err()
        .expect("accepted a path as a unified key");
    assert!(err.contains("linux.resources.unified"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// devices: what the container can open

fn fuse_node(b: &mut Bundle) {
    b.config["linux"]["devices"] =
        json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666}]);
}

/// Open /dev/fuse and /dev/full read-only in the container: (errno of fuse or 0, errno of full
/// or 0). The devices cgroup says EPERM before any driver is asked.
fn open_devices(resources: Value) -> (i64, i64) {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    fuse_node(&mut b);
    if !resources.is_null() {
        b.config["linux"]["resources"] = resources;
    }
    let lines = rt.probe_lines(&mut b, &["open", "/dev/fuse", "--", "open", "/dev/full"]);
    let errno = |v: &Value| {
        if v["ok"] == true {
            0
        } else {
            v["errno"].as_i64().unwrap_or(-1)
        }
    };
    (errno(&lines[0]), errno(&lines[1]))
}

const EPERM: i64 = libc::EPERM as i64;

#[test]
fn devices_default_allowlist_applies_without_a_rule() {
    // As with runc: no linux.resources at all still means only the default devices.
    let (fuse, full) = open_devices(Value::Null);
    assert_eq!(fuse, EPERM, "/dev/fuse (not in the default allowlist)");
    assert_eq!(full, 0, "/dev/full (default allowlist)");
}

#[test]
fn devices() {
    // docker's shape: deny all, then allow what is listed.
    let (fuse, full) = open_devices(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}
    ]}));
    assert_ne!(fuse, EPERM, "/dev/fuse was allowed");
    assert_eq!(full, 0);
}

#[test]
fn devices_deny_rule_after_allow_all() {
    let (fuse, full) = open_devices(json!({"devices": [
        {"allow": true, "access": "rwm"},
        // Not "m": the init must still be able to mknod the node it is then refused to open.
        {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rw"}
    ]}));
    assert_eq!(fuse, EPERM, "/dev/fuse was denied");
    assert_eq!(full, 0);
}

#[test]
fn devices_access_is_per_operation() {
    // Allowed for writing only: a read-only open is refused.
    let (fuse, _) = open_devices(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "w"}
    ]}));
    assert_eq!(fuse, EPERM);
}

#[test]
fn devices_v1_list_is_the_allowlist() {
    if is_v2() {
        return; // v2 has a BPF program, checked by the behaviour tests above
    }
    let c = Ctr::create(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "b", "major": 7, "minor": 3, "access": "r"}
    ]}));
    let list = c.read("devices", "devices.list", "");
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines.contains(&"b 7:3 r"), "{list}");
    assert!(lines.contains(&"c 1:3 rwm"), "{list}");
    assert!(!lines.contains(&"a *:* rwm"), "{list}");
}

#[test]
fn update_keeps_the_device_allowlist() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666},
        {"path": "/dev/loop-control", "type": "c", "major": 10, "minor": 237, "fileMode": 0o666}
    ]);
    b.config["linux"]["resources"] = json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}
    ]});
    let d = rt.probe_detached(&mut b);
    let o = rt.cmd(&["update", "--pids-limit", "50", &d.id]);
    assert_success(&o, "update --pids-limit");
    let o = rt.cmd(&[
        "exec",
        &d.id,
        "/probe",
        "open",
        "/dev/fuse",
        "--",
        "open",
        "/dev/loop-control",
    ]);
    let lines = parse_json_lines(&o.stdout).unwrap();
    assert_ne!(lines[0]["errno"], json!(EPERM), "{lines:?}");
    assert_eq!(lines[1]["errno"], json!(EPERM), "{lines:?}");
    assert_success(&rt.cmd(&["delete", "--force", &d.id]), "delete");
}

// ---------------------------------------------------------------------------------------------
// The cgroup's life

#[test]
fn default_cgroup_path_is_vsrun_slash_id() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "sleep", "1000"]);
    let id = unique_id("cgdef");
    assert_success(&rt.create(&b, &id), "create");
    let path = format!("/vsrun/{id}");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.lines().any(|l| l.ends_with(&format!(":{path}"))), "{cg}");
    assert_eq!(exists_any(&all_dirs(&path)).len(), all_dirs(&path).len());
    assert_success(&rt.cmd(&["delete", "--force", &id]), "delete");
    assert_cgroup_gone(&path);
    drop(b);
}

#[test]
fn cgroup_is_removed_after_delete() {
    let c = Ctr::create(json!({"pids": {"limit": 10}}));
    assert!(!exists_any(&all_dirs(&c.path)).is_empty());
    let o = c.rt.cmd(&["kill", &c.id, "KILL"]);
    assert_success(&o, "kill");
    c.rt.wait_status(&c.id, "stopped", Duration::from_secs(30));
    assert_success(&c.rt.cmd(&["delete", &c.id]), "delete");
    assert_cgroup_gone(&c.path);
}

#[test]
fn cgroup_is_removed_after_run_exits() {
    let rt = Runtime::new();
    let id = unique_id("cgrun");
    let path = test_path(&id);
    let mut b = bundle_with(json!({"pids": {"limit": 10}}), &path);
    b.set_args(&["/probe", "exit", "3"]);
    let o = rt.run(&b, &id);
    assert_eq!(o.status.code(), Some(3), "{}", output_text(&o));
    assert_cgroup_gone(&path);
    assert_nothing_left(&rt, &id);
}

#[test]
fn cgroup_is_removed_after_a_failed_create() {
    // Refused by the kernel after the clone (no such cpu) ...
    let err = Ctr::try_create(json!({"cpu": {"cpus": "4095"}})).err();
    let err = err.expect("cpuset 4095 accepted");
    assert!(err.contains("linux.resources.cpu.cpus"), "{err}");
    // ... and by vsrun before it, once the directories exist (unknown block device).
    let err = Ctr::try_create(json!({"blockIO": {"throttleWriteIOPSDevice":
        [{"major": 4000, "minor": 1, "rate": 1}]}}))
    .err()
    .expect("missing device accepted");
    assert!(err.contains("throttleWriteIOPSDevice[0]"), "{err}");
    // (try_create asserted both times that the cgroup, state dir and init are gone.)
}

#[test]
fn cgroups_made_below_the_container_are_removed_by_delete() {
    let c = Ctr::create(json!({}));
    // What a container with a writable cgroup mount (systemd inside, nested runtimes) does.
    let dir = dir_of("pids", &c.path).unwrap().join("inner");
    fs::create_dir(&dir).unwrap();
    let mut sleeper = Command::new("sleep").arg("1000").spawn().unwrap();
    fs::write(dir.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    let o = c.rt.cmd(&["delete", "--force", &c.id]);
    assert_success(&o, "delete --force");
    assert_cgroup_gone(&c.path);
    let st = sleeper.wait().unwrap();
    assert!(!st.success(), "the process in the inner cgroup survived");
}

#[test]
fn a_cgroup_with_processes_is_not_taken_over() {
    // Someone else's live cgroup: create must refuse it, and a failed create must not kill
    // what is in there.
    let path = format!("/vsrun-test/{}", unique_id("busy"));
    let dirs = all_dirs(&path);
    let mut sleeper = Command::new("sleep").arg("1000").spawn().unwrap();
    for d in &dirs {
        fs::create_dir_all(d).unwrap();
        if d.join("cpuset.cpus").exists() && !is_v2() {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = fs::read_to_string(d.parent().unwrap().join(f)).unwrap();
                fs::write(d.join(f), v.trim()).unwrap();
            }
        }
    }
    fs::write(dirs[0].join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    let rt = Runtime::new();
    let b = bundle_with(json!({}), &path);
    let id = unique_id("cgbusy");
    let err = assert_fails(&rt.create(&b, &id), "create in a busy cgroup");
    assert!(err.contains("linux.cgroupsPath"), "{err}");
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the stranger was killed"
    );
    assert_nothing_left(&rt, &id);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    for d in &dirs {
        let deadline = Instant::now() + Duration::from_secs(5);
        while fs::remove_dir(d).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn the_root_cgroup_is_refused() {
    let rt = Runtime::new();
    let b = bundle_with(json!({}), "/");
    let id = unique_id("cgroot");
    let err = assert_fails(&rt.create(&b, &id), "create in the root cgroup");
    assert!(err.contains("linux.cgroupsPath"), "{err}");
    assert_nothing_left(&rt, &id);
}

#[test]
fn kill_all_reaches_every_process_in_the_cgroup() {
    // Without a pid namespace, killing the init leaves its children running: only --all
    // reaches them, through the cgroup.
    let rt = Runtime::new();
    let id = unique_id("cgkill");
    let path = test_path(&id);
    let mut b = bundle_with(json!({}), &path);
    b.remove_namespace("pid");
    b.set_args(&[
        "/bin/sh",
        "-c",
        "sleep 1000 & sleep 1000 & (sleep 1000 &) ; exec sleep 1000",
    ]);
    assert_success(&rt.run_detached(&b, &id), "run -d");
    let procs = || -> Vec<i32> {
        let dir = dir_of("pids", &path).unwrap();
        fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while procs().len() < 4 {
        assert!(Instant::now() < deadline, "only {:?} started", procs());
        std::thread::sleep(Duration::from_millis(20));
    }
    let members = procs();
    assert_success(&rt.cmd(&["kill", "--all", &id, "KILL"]), "kill --all");
    let deadline = Instant::now() + Duration::from_secs(10);
    while members.iter().any(|p| pid_alive(*p)) {
        assert!(Instant::now() < deadline, "survivors of kill --all");
        std::thread::sleep(Duration::from_millis(20));
    }
    rt.wait_status(&id, "stopped", Duration::from_secs(30));
    assert_success(&rt.cmd(&["delete", &id]), "delete");
    assert_cgroup_gone(&path);
}

#[test]
fn systemd_cgroup_without_systemd_fails_cleanly() {
    if Path::new("/run/systemd/system").exists() {
        eprintln!("systemd runs here: nothing to check");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.config["linux"]["cgroupsPath"] = json!("system.slice:vsrun-test:x");
    b.write();
    let id = unique_id("cgsd");
    let o = rt.cmd(&["--systemd-cgroup", "create", "--bundle", b.path_str(), &id]);
    let err = assert_fails(&o, "--systemd-cgroup create");
    assert!(err.contains("--systemd-cgroup"), "{err}");
    assert!(err.contains("systemd is not running"), "{err}");
    assert_nothing_left(&rt, &id);
    // Nothing named like the systemd path was made in any hierarchy.
    for d in all_dirs("/system.slice:vsrun-test:x") {
        assert!(!d.exists(), "{} was made", d.display());
    }
}

// ---------------------------------------------------------------------------------------------
// Bad values: exit 1, the field named, nothing left

#[test]
fn bad_values_fail_naming_the_field() {
    for (r, field) in [
        (
            json!({"memory": {"limit": -5}}),
            "linux.resources.memory.limit",
        ),
        (
            json!({"memory": {"reservation": -2}}),
            "linux.resources.memory.reservation",
        ),
        (
            json!({"memory": {"limit": 1048576, "swap": 4096}}),
            "linux.resources.memory.swap",
        ),
        (
            json!({"memory": {"swappiness": 200}}),
            "linux.resources.memory.swappiness",
        ),
        (json!({"cpu": {"cpus": "0-"}}), "linux.resources.cpu.cpus"),
        (json!({"cpu": {"mems": "zero"}}), "linux.resources.cpu.mems"),
        (json!({"cpu": {"quota": 5}}), "linux.resources.cpu.quota"),
        (json!({"cpu": {"period": 5}}), "linux.resources.cpu.period"),
        (json!({"cpu": {"idle": 7}}), "linux.resources.cpu.idle"),
        (
            json!({"blockIO": {"weight": 5}}),
            "linux.resources.blockIO.weight",
        ),
        (
            json!({"blockIO": {"weight": 1001}}),
            "linux.resources.blockIO.weight",
        ),
        (
            json!({"blockIO": {"weightDevice": [{"major": 7, "minor": 0, "weight": 2000}]}}),
            "linux.resources.blockIO.weightDevice[0].weight",
        ),
        (
            json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 0}]}),
            "linux.resources.hugepageLimits[0].pageSize",
        ),
        (
            json!({"devices": [{"allow": true, "type": "x"}]}),
            "linux.resources.devices[0]",
        ),
        (
            json!({"devices": [{"allow": true, "type": "p"}]}),
            "linux.resources.devices[0].type",
        ),
        (
            json!({"devices": [{"allow": true, "type": "c", "access": "rwx"}]}),
            "linux.resources.devices[0].access",
        ),
        (
            json!({"devices": [{"allow": true, "type": "c", "major": -3}]}),
            "linux.resources.devices[0].major",
        ),
        (
            json!({"unified": {"cgroup.procs": "1"}}),
            "linux.resources.unified",
        ),
    ] {
        let err = Ctr::try_create(r.clone()).err();
        let err = err.unwrap_or_else(|| panic!("{r} was accepted"));
        assert!(
            reference_mode() || err.contains(field),
            "{r}: the error does not name {field}: {err}"
        );
    }
}
