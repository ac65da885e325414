//! Generated differential sweep against runc (issue 16).
//!
//! Nobody wrote these configs by hand: `cases()` starts from the harness's `default_config()`
//! (runc spec's, with the probe as the program) and applies edits from `EDITS`, a table of
//! runtime-spec 1.2 fields at their edges (absent, empty, zero, deprecated, unknown names and
//! values, the spec's own examples, every device type, propagation value, mount option, rlimit,
//! capability set, hook point, cgroup resource and seccomp shape), then every subset of the
//! five default namespaces, then pairwise combinations of edits from different areas chosen by a
//! seeded generator (`PAIR_SEED`), so the list is the same on every run. Each case is named
//! after its edits (`process.oomScoreAdj=-1000+hooks.prestart.fail`), so a failure says which
//! edit it is. `SWEEP_FILTER=substring` runs only the matching cases; `SWEEP_SHARD=K/N` only the
//! cases whose index is K modulo N (the emulated VM lane runs one shard a day, README);
//! `SWEEP_THREADS` sets the parallelism (default 4); `DIFF_DUMP=1` prints every fact.
//!
//! Each case runs under runc (`RUNC_BIN` or runc in PATH) and under vsrun with the machinery of
//! `spec_tests::diff` (the one tests/differential.rs uses on the engines' files): `create`
//! (`--console-socket` when process.terminal), `start`, the probe's report and its actions on
//! every path the config names, the host's /proc/<pid>, cgroup files, `state`, then `kill KILL`,
//! `delete`, and what each hook recorded. Then what the host is left with: mounts under the
//! bundle, state dirs in `--root`, the container's cgroup directories.
//!
//! Every job runs on a worker thread that first made a private mount namespace of its own
//! (unshare(CLONE_NEWNS) + MS_REC|MS_PRIVATE on "/"): a config without a mount namespace makes
//! runc mount into its caller's namespace and change the propagation of "/", and that must stay
//! away from the host. Whatever a runtime left mounted under the bundle is detached there (and
//! only there) before the bundle is removed.
//!
//! Compared: whether both succeed or both fail (create or start); when both succeed, every fact
//! (see differential.rs for the normalisation); in every case, what is left on the host. A
//! difference fails the test unless `SWEEP_ALLOWED` or `diff::ALLOWED` holds it, each entry
//! with its reason (README, "Differences from runc").

use spec_tests::diff::*;
use spec_tests::serde_json::{self, json, Value};
use spec_tests::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

// ---------------------------------------------------------------------------------------------
// The edits

type Apply = fn(&mut Value);

/// One edit of the default config: a name that says which field and value, and the change.
/// `@BUNDLE` in any string becomes the bundle's path; `@CG` the run's own cgroup name. A hook
/// whose path is `@HOOK` (or `@HOOK-FAIL`, `@HOOK-MISSING`) becomes a script that records its
/// args, env, cwd and stdin (and exits 3, or does not exist).
struct Edit {
    name: &'static str,
    apply: Apply,
}

macro_rules! edits {
    ($($name:expr => |$c:ident| $body:expr),* $(,)?) => {
        &[$(Edit { name: $name, apply: { fn f($c: &mut Value) { $body; } f } }),*]
    };
}

fn proc_(c: &mut Value) -> &mut Value {
    &mut c["process"]
}
fn linux(c: &mut Value) -> &mut Value {
    &mut c["linux"]
}
fn res(c: &mut Value) -> &mut Value {
    if c["linux"]["resources"].is_null() {
        c["linux"]["resources"] = json!({});
    }
    &mut c["linux"]["resources"]
}
fn remove(v: &mut Value, key: &str) {
    if let Some(m) = v.as_object_mut() {
        m.remove(key);
    }
}
fn caps(c: &mut Value, list: Value) {
    for set in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        c["process"]["capabilities"][set] = list.clone();
    }
}
fn push(v: &mut Value, item: Value) {
    if !v.is_array() {
        *v = json!([]);
    }
    v.as_array_mut().unwrap().push(item);
}
fn mount(c: &mut Value, m: Value) {
    push(&mut c["mounts"], m);
}
fn hook(c: &mut Value, point: &str, path: &str) {
    push(
        &mut c["hooks"][point],
        json!({ "path": path, "args": ["hook", point, "arg with space"] }),
    );
}
fn rlimit(c: &mut Value, ty: &str, soft: u64, hard: u64) {
    push(
        &mut c["process"]["rlimits"],
        json!({ "type": ty, "soft": soft, "hard": hard }),
    );
}
fn ns_add(c: &mut Value, ty: &str) {
    push(&mut c["linux"]["namespaces"], json!({ "type": ty }));
}
fn ns_remove(c: &mut Value, ty: &str) {
    if let Some(a) = c["linux"]["namespaces"].as_array_mut() {
        a.retain(|n| n["type"] != ty);
    }
}
fn userns(c: &mut Value) {
    ns_add(c, "user");
    c["linux"]["uidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    c["linux"]["gidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
}
fn device(c: &mut Value, d: Value) {
    push(&mut c["linux"]["devices"], d);
}
fn seccomp(c: &mut Value, s: Value) {
    c["linux"]["seccomp"] = s;
}
fn tmpfs_opts(c: &mut Value, opts: &[&str]) {
    mount(
        c,
        json!({ "destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": opts }),
    );
}
fn bind_opts(c: &mut Value, opts: &[&str]) {
    mount(
        c,
        json!({ "destination": "/mnt", "type": "bind", "source": "@BUNDLE/src-dir",
                "options": opts }),
    );
}
/// linux.cgroupsPath made for this run (every edit of a resource needs one).
fn cg(c: &mut Value) {
    c["linux"]["cgroupsPath"] = "/@CG".into();
}

const EDITS: &[Edit] = edits![
    // ---- top level
    "ociVersion=absent" => |c| remove(c, "ociVersion"),
    "ociVersion=\"\"" => |c| c["ociVersion"] = "".into(),
    "ociVersion=1.0.0" => |c| c["ociVersion"] = "1.0.0".into(),
    "ociVersion=1.2.0" => |c| c["ociVersion"] = "1.2.0".into(),
    "ociVersion=0.1.0" => |c| c["ociVersion"] = "0.1.0".into(),
    "ociVersion=9.9.9" => |c| c["ociVersion"] = "9.9.9".into(),
    "unknown-top-level-field" => |c| c["vsrunSweepUnknown"] = json!({"a": 1}),
    "unknown-process-field" => |c| c["process"]["vsrunSweepUnknown"] = json!(1),
    "unknown-linux-field" => |c| c["linux"]["vsrunSweepUnknown"] = json!([1]),
    "annotations={}" => |c| c["annotations"] = json!({}),
    "annotations=some" => |c| c["annotations"] = json!({"com.example.key1": "value1", "com.example.key2": ""}),
    "annotations=oci-image" => |c| c["annotations"] = json!({"org.opencontainers.image.os": "linux", "org.opencontainers.image.ref.name": "x"}),
    "annotations=long-value" => |c| c["annotations"] = json!({"k": "v".repeat(4096)}),
    "hostname=absent" => |c| remove(c, "hostname"),
    "hostname=\"\"" => |c| c["hostname"] = "".into(),
    "hostname=64-chars" => |c| c["hostname"] = "h".repeat(64).into(),
    "hostname=65-chars" => |c| c["hostname"] = "h".repeat(65).into(),
    "hostname=with-dots" => |c| c["hostname"] = "a.b.example".into(),
    "domainname=example.org" => |c| c["domainname"] = "example.org".into(),
    "domainname=\"\"" => |c| c["domainname"] = "".into(),
    "root.readonly=true" => |c| c["root"]["readonly"] = true.into(),
    "root.readonly=absent" => |c| remove(&mut c["root"], "readonly"),
    "root.path=absolute" => |c| c["root"]["path"] = "@BUNDLE/rootfs".into(),
    "root.path=trailing-slash" => |c| c["root"]["path"] = "rootfs/".into(),
    "root.path=missing" => |c| c["root"]["path"] = "no-such-rootfs".into(),
    "root=absent" => |c| remove(c, "root"),
    // ---- process
    "process.terminal=true" => |c| c["process"]["terminal"] = true.into(),
    "process.terminal+consoleSize" => |c| { c["process"]["terminal"] = true.into(); c["process"]["consoleSize"] = json!({"height": 40, "width": 120}) },
    "process.consoleSize-without-terminal" => |c| c["process"]["consoleSize"] = json!({"height": 40, "width": 120}),
    "process.args=[]" => |c| c["process"]["args"] = json!([]),
    "process.args=absent" => |c| remove(proc_(c), "args"),
    "process.args=missing-binary" => |c| c["process"]["args"] = json!(["/no/such/binary"]),
    "process.args=relative-in-PATH" => |c| c["process"]["args"] = json!(["true"]),
    "process.args=not-executable" => |c| c["process"]["args"] = json!(["/etc/passwd"]),
    "process.args=directory" => |c| c["process"]["args"] = json!(["/tmp"]),
    "process.env=absent" => |c| remove(proc_(c), "env"),
    "process.env=[]" => |c| c["process"]["env"] = json!([]),
    "process.env=duplicate-keys" => |c| c["process"]["env"] = json!(["A=1", "A=2", "PATH=/bin"]),
    "process.env=no-equals" => |c| push(&mut c["process"]["env"], json!("NOEQUALS")),
    "process.env=empty-string" => |c| push(&mut c["process"]["env"], json!("")),
    "process.env=empty-value" => |c| push(&mut c["process"]["env"], json!("EMPTY=")),
    "process.env=HOME-set" => |c| push(&mut c["process"]["env"], json!("HOME=/tmp")),
    "process.env=long" => |c| push(&mut c["process"]["env"], json!(format!("LONG={}", "x".repeat(65536)))),
    "process.cwd=/tmp" => |c| c["process"]["cwd"] = "/tmp".into(),
    "process.cwd=missing" => |c| c["process"]["cwd"] = "/no/such/dir".into(),
    "process.cwd=relative" => |c| c["process"]["cwd"] = "tmp".into(),
    "process.cwd=/proc" => |c| c["process"]["cwd"] = "/proc".into(),
    "process.cwd=file" => |c| c["process"]["cwd"] = "/etc/passwd".into(),
    "process.cwd=dotdot" => |c| c["process"]["cwd"] = "/tmp/../etc".into(),
    "process.cwd=absent" => |c| remove(proc_(c), "cwd"),
    "process.user.uid=1000" => |c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}),
    "process.user.uid=65534" => |c| c["process"]["user"] = json!({"uid": 65534, "gid": 65534}),
    "process.user.gid-only" => |c| c["process"]["user"] = json!({"uid": 0, "gid": 100}),
    "process.user.uid=max-1" => |c| c["process"]["user"] = json!({"uid": 4294967294u32, "gid": 0}),
    "process.user=absent" => |c| remove(proc_(c), "user"),
    "process.user.additionalGids=[1,2,3]" => |c| c["process"]["user"]["additionalGids"] = json!([1, 2, 3]),
    "process.user.additionalGids=[]" => |c| c["process"]["user"]["additionalGids"] = json!([]),
    "process.user.additionalGids=dup+0" => |c| c["process"]["user"]["additionalGids"] = json!([0, 5, 5]),
    "process.user.additionalGids-uid1000" => |c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 1000]}),
    "process.user.umask=0" => |c| c["process"]["user"]["umask"] = 0.into(),
    "process.user.umask=0777" => |c| c["process"]["user"]["umask"] = 0o777.into(),
    "process.user.umask=0077" => |c| c["process"]["user"]["umask"] = 0o77.into(),
    "process.user.umask=0022" => |c| c["process"]["user"]["umask"] = 0o22.into(),
    "process.user.umask=01777" => |c| c["process"]["user"]["umask"] = 0o1777.into(),
    "process.user.username=root" => |c| c["process"]["user"]["username"] = "root".into(),
    "process.noNewPrivileges=false" => |c| c["process"]["noNewPrivileges"] = false.into(),
    "process.noNewPrivileges=absent" => |c| remove(proc_(c), "noNewPrivileges"),
    "process.oomScoreAdj=-1000" => |c| c["process"]["oomScoreAdj"] = (-1000).into(),
    "process.oomScoreAdj=1000" => |c| c["process"]["oomScoreAdj"] = 1000.into(),
    "process.oomScoreAdj=0" => |c| c["process"]["oomScoreAdj"] = 0.into(),
    "process.oomScoreAdj=500" => |c| c["process"]["oomScoreAdj"] = 500.into(),
    "process.oomScoreAdj=1001" => |c| c["process"]["oomScoreAdj"] = 1001.into(),
    "process.oomScoreAdj=-1001" => |c| c["process"]["oomScoreAdj"] = (-1001).into(),
    "process.apparmorProfile=\"\"" => |c| c["process"]["apparmorProfile"] = "".into(),
    "process.selinuxLabel=\"\"" => |c| c["process"]["selinuxLabel"] = "".into(),
    "process=absent" => |c| remove(c, "process"),
    // ---- capabilities
    "process.capabilities=absent" => |c| remove(proc_(c), "capabilities"),
    "process.capabilities={}" => |c| c["process"]["capabilities"] = json!({}),
    "process.capabilities=all-empty" => |c| caps(c, json!([])),
    "process.capabilities=all-41" => |c| caps(c, json!(ALL_CAPS)),
    "process.capabilities=bounding-only" => |c| c["process"]["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_CHOWN"]}),
    "process.capabilities=effective-not-permitted" => |c| c["process"]["capabilities"] = json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL"]}),
    "process.capabilities=inheritable" => |c| c["process"]["capabilities"]["inheritable"] = json!(["CAP_NET_RAW", "CAP_KILL"]),
    "process.capabilities=ambient-not-inheritable" => |c| c["process"]["capabilities"]["ambient"] = json!(["CAP_NET_RAW"]),
    "process.capabilities=ambient-ok" => |c| { caps(c, json!(["CAP_KILL", "CAP_NET_RAW"])); },
    "process.capabilities=duplicates" => |c| caps(c, json!(["CAP_KILL", "CAP_KILL"])),
    "process.capabilities=unknown-name" => |c| caps(c, json!(["CAP_KILL", "CAP_VSRUN_UNKNOWN"])),
    "process.capabilities=lowercase" => |c| caps(c, json!(["cap_kill"])),
    "process.capabilities=no-prefix" => |c| caps(c, json!(["KILL"])),
    "process.capabilities=sys_admin" => |c| caps(c, json!(["CAP_SYS_ADMIN"])),
    "process.capabilities=uid1000-with-caps" => |c| { c["process"]["user"] = json!({"uid": 1000, "gid": 1000}); caps(c, json!(["CAP_KILL", "CAP_DAC_OVERRIDE"])); },
    // ---- rlimits
    "process.rlimits=absent" => |c| remove(proc_(c), "rlimits"),
    "process.rlimits=[]" => |c| c["process"]["rlimits"] = json!([]),
    "process.rlimits.NOFILE-soft>hard" => |c| c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]),
    "process.rlimits.NOFILE=0" => |c| c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 0, "hard": 0}]),
    "process.rlimits.NOFILE=16" => |c| c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 16, "hard": 16}]),
    "process.rlimits.NOFILE=infinity" => |c| c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": u64::MAX, "hard": u64::MAX}]),
    "process.rlimits.NOFILE=duplicate" => |c| rlimit(c, "RLIMIT_NOFILE", 512, 512),
    "process.rlimits=unknown-type" => |c| rlimit(c, "RLIMIT_VSRUN", 1, 1),
    "process.rlimits=lowercase-type" => |c| rlimit(c, "rlimit_core", 1, 1),
    "process.rlimits.AS" => |c| rlimit(c, "RLIMIT_AS", 1 << 32, 1 << 32),
    "process.rlimits.CORE=0" => |c| rlimit(c, "RLIMIT_CORE", 0, 0),
    "process.rlimits.CPU" => |c| rlimit(c, "RLIMIT_CPU", 100, 200),
    "process.rlimits.DATA" => |c| rlimit(c, "RLIMIT_DATA", 1 << 30, 1 << 30),
    "process.rlimits.FSIZE" => |c| rlimit(c, "RLIMIT_FSIZE", 1 << 20, 1 << 20),
    "process.rlimits.LOCKS" => |c| rlimit(c, "RLIMIT_LOCKS", 10, 10),
    "process.rlimits.MEMLOCK" => |c| rlimit(c, "RLIMIT_MEMLOCK", 65536, 65536),
    "process.rlimits.MSGQUEUE" => |c| rlimit(c, "RLIMIT_MSGQUEUE", 819200, 819200),
    "process.rlimits.NICE" => |c| rlimit(c, "RLIMIT_NICE", 0, 0),
    "process.rlimits.NPROC" => |c| rlimit(c, "RLIMIT_NPROC", 4096, 4096),
    "process.rlimits.RSS" => |c| rlimit(c, "RLIMIT_RSS", 1 << 30, 1 << 30),
    "process.rlimits.RTPRIO" => |c| rlimit(c, "RLIMIT_RTPRIO", 0, 0),
    "process.rlimits.RTTIME" => |c| rlimit(c, "RLIMIT_RTTIME", 1000000, 1000000),
    "process.rlimits.SIGPENDING" => |c| rlimit(c, "RLIMIT_SIGPENDING", 100, 100),
    "process.rlimits.STACK" => |c| rlimit(c, "RLIMIT_STACK", 8 << 20, 8 << 20),
    "process.rlimits.NOFILE-above-host-hard" => |c| c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 1u64 << 40, "hard": 1u64 << 40}]),
    // ---- per-process scheduling (runtime-spec 1.1/1.2)
    "process.ioPriority=BE-7" => |c| c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 7}),
    "process.ioPriority=IDLE" => |c| c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0}),
    "process.scheduler=SCHED_BATCH" => |c| c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5}),
    "process.execCPUAffinity" => |c| c["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "0-1"}),
    // ---- mounts
    "mounts=[]" => |c| c["mounts"] = json!([]),
    "mounts=absent" => |c| remove(c, "mounts"),
    "mounts-/proc-removed" => |c| c["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/proc"),
    "mounts-/dev-removed" => |c| c["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/dev"),
    "mounts-/dev/pts-removed" => |c| c["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/dev/pts"),
    "mounts-/dev/shm-removed" => |c| c["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/dev/shm"),
    "mounts-/dev/mqueue-removed" => |c| c["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/dev/mqueue"),
    "mounts-/sys-removed" => |c| c["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/sys"),
    "mounts.tmpfs=/mnt" => |c| tmpfs_opts(c, &[]),
    "mounts.tmpfs.options=absent" => |c| mount(c, json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs"})),
    "mounts.tmpfs.mode+size" => |c| tmpfs_opts(c, &["mode=700", "size=1m", "uid=5", "gid=6"]),
    "mounts.tmpfs.unknown-data" => |c| tmpfs_opts(c, &["vsrunbogus=1"]),
    "mounts.tmpfs.nested-dest" => |c| mount(c, json!({"destination": "/a/b/c", "type": "tmpfs", "source": "tmpfs"})),
    "mounts.tmpfs.dest-in-dev" => |c| mount(c, json!({"destination": "/dev/sweep", "type": "tmpfs", "source": "tmpfs"})),
    "mounts.tmpfs.dest-dotdot" => |c| mount(c, json!({"destination": "/mnt/../opt", "type": "tmpfs", "source": "tmpfs"})),
    "mounts.tmpfs.dest-trailing-slash" => |c| mount(c, json!({"destination": "/mnt/", "type": "tmpfs", "source": "tmpfs"})),
    "mounts.tmpfs.dest-relative" => |c| mount(c, json!({"destination": "mnt", "type": "tmpfs", "source": "tmpfs"})),
    "mounts.tmpfs.dest-/" => |c| mount(c, json!({"destination": "/", "type": "tmpfs", "source": "tmpfs"})),
    "mounts.tmpfs.twice-same-dest" => |c| { tmpfs_opts(c, &[]); tmpfs_opts(c, &["ro"]) },
    "mounts.tmpfs.over-/etc" => |c| mount(c, json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs"})),
    "mounts.type=absent-with-bind" => |c| mount(c, json!({"destination": "/mnt", "source": "@BUNDLE/src-dir", "options": ["bind"]})),
    "mounts.bind.dir" => |c| bind_opts(c, &["bind"]),
    "mounts.rbind.dir" => |c| bind_opts(c, &["rbind"]),
    "mounts.bind.file" => |c| mount(c, json!({"destination": "/etc/sweep-file", "type": "bind", "source": "@BUNDLE/src-file", "options": ["bind"]})),
    "mounts.bind.file-onto-dir" => |c| mount(c, json!({"destination": "/tmp", "type": "bind", "source": "@BUNDLE/src-file", "options": ["bind"]})),
    "mounts.bind.missing-source" => |c| mount(c, json!({"destination": "/mnt", "type": "bind", "source": "@BUNDLE/no-such-source", "options": ["bind"]})),
    "mounts.bind.relative-source" => |c| mount(c, json!({"destination": "/mnt", "type": "bind", "source": "src-dir", "options": ["bind"]})),
    "mounts.bind.options=absent" => |c| mount(c, json!({"destination": "/mnt", "type": "bind", "source": "@BUNDLE/src-dir"})),
    "mounts.bind.none-type" => |c| mount(c, json!({"destination": "/mnt", "type": "none", "source": "@BUNDLE/src-dir", "options": ["rbind", "ro"]})),
    "mounts.proc=second" => |c| mount(c, json!({"destination": "/mnt/proc", "type": "proc", "source": "proc"})),
    "mounts.sysfs=second" => |c| mount(c, json!({"destination": "/mnt/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]})),
    "mounts.mqueue=second" => |c| mount(c, json!({"destination": "/mnt/mq", "type": "mqueue", "source": "mqueue"})),
    "mounts.devpts=second" => |c| mount(c, json!({"destination": "/mnt/pts", "type": "devpts", "source": "devpts", "options": ["newinstance"]})),
    "mounts.cgroup=ro" => |c| mount(c, json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})),
    "mounts.cgroup=rw" => |c| mount(c, json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "rw"]})),
    "mounts.unknown-fstype" => |c| mount(c, json!({"destination": "/mnt", "type": "vsrunfs", "source": "none"})),
    "mounts.tmpfs.opt=ro" => |c| tmpfs_opts(c, &["ro"]),
    "mounts.tmpfs.opt=rw" => |c| tmpfs_opts(c, &["rw"]),
    "mounts.tmpfs.opt=nosuid" => |c| tmpfs_opts(c, &["nosuid"]),
    "mounts.tmpfs.opt=suid" => |c| tmpfs_opts(c, &["suid"]),
    "mounts.tmpfs.opt=nodev" => |c| tmpfs_opts(c, &["nodev"]),
    "mounts.tmpfs.opt=dev" => |c| tmpfs_opts(c, &["dev"]),
    "mounts.tmpfs.opt=noexec" => |c| tmpfs_opts(c, &["noexec"]),
    "mounts.tmpfs.opt=exec" => |c| tmpfs_opts(c, &["exec"]),
    "mounts.tmpfs.opt=sync" => |c| tmpfs_opts(c, &["sync"]),
    "mounts.tmpfs.opt=async" => |c| tmpfs_opts(c, &["async"]),
    "mounts.tmpfs.opt=dirsync" => |c| tmpfs_opts(c, &["dirsync"]),
    "mounts.tmpfs.opt=mand" => |c| tmpfs_opts(c, &["mand"]),
    "mounts.tmpfs.opt=nomand" => |c| tmpfs_opts(c, &["nomand"]),
    "mounts.tmpfs.opt=atime" => |c| tmpfs_opts(c, &["atime"]),
    "mounts.tmpfs.opt=noatime" => |c| tmpfs_opts(c, &["noatime"]),
    "mounts.tmpfs.opt=diratime" => |c| tmpfs_opts(c, &["diratime"]),
    "mounts.tmpfs.opt=nodiratime" => |c| tmpfs_opts(c, &["nodiratime"]),
    "mounts.tmpfs.opt=relatime" => |c| tmpfs_opts(c, &["relatime"]),
    "mounts.tmpfs.opt=norelatime" => |c| tmpfs_opts(c, &["norelatime"]),
    "mounts.tmpfs.opt=strictatime" => |c| tmpfs_opts(c, &["strictatime"]),
    "mounts.tmpfs.opt=nostrictatime" => |c| tmpfs_opts(c, &["nostrictatime"]),
    "mounts.tmpfs.opt=lazytime" => |c| tmpfs_opts(c, &["lazytime"]),
    "mounts.tmpfs.opt=nolazytime" => |c| tmpfs_opts(c, &["nolazytime"]),
    "mounts.tmpfs.opt=silent" => |c| tmpfs_opts(c, &["silent"]),
    "mounts.tmpfs.opt=loud" => |c| tmpfs_opts(c, &["loud"]),
    "mounts.tmpfs.opt=iversion" => |c| tmpfs_opts(c, &["iversion"]),
    "mounts.tmpfs.opt=noiversion" => |c| tmpfs_opts(c, &["noiversion"]),
    "mounts.tmpfs.opt=nosymfollow" => |c| tmpfs_opts(c, &["nosymfollow"]),
    "mounts.tmpfs.opt=remount" => |c| tmpfs_opts(c, &["remount"]),
    "mounts.tmpfs.opt=defaults" => |c| tmpfs_opts(c, &["defaults"]),
    "mounts.tmpfs.opt=tmpcopyup" => |c| tmpfs_opts(c, &["tmpcopyup"]),
    "mounts.tmpfs.opt=ro+rw" => |c| tmpfs_opts(c, &["ro", "rw"]),
    "mounts.tmpfs.opt=rw+ro" => |c| tmpfs_opts(c, &["rw", "ro"]),
    "mounts.bind.opt=ro" => |c| bind_opts(c, &["bind", "ro"]),
    "mounts.rbind.opt=rro" => |c| bind_opts(c, &["rbind", "rro"]),
    "mounts.bind.opt=nosuid+nodev+noexec" => |c| bind_opts(c, &["bind", "nosuid", "nodev", "noexec"]),
    "mounts.bind.opt=noatime" => |c| bind_opts(c, &["bind", "noatime"]),
    "mounts.bind.opt=rnoexec" => |c| bind_opts(c, &["rbind", "rnoexec"]),
    "mounts.bind.opt=idmap" => |c| bind_opts(c, &["bind", "idmap"]),
    "mounts.bind.opt=unknown" => |c| bind_opts(c, &["bind", "vsrunbogus"]),
    "mounts.bind.prop=private" => |c| bind_opts(c, &["rbind", "private"]),
    "mounts.bind.prop=rprivate" => |c| bind_opts(c, &["rbind", "rprivate"]),
    "mounts.bind.prop=shared" => |c| bind_opts(c, &["rbind", "shared"]),
    "mounts.bind.prop=rshared" => |c| bind_opts(c, &["rbind", "rshared"]),
    "mounts.bind.prop=slave" => |c| bind_opts(c, &["rbind", "slave"]),
    "mounts.bind.prop=rslave" => |c| bind_opts(c, &["rbind", "rslave"]),
    "mounts.bind.prop=unbindable" => |c| bind_opts(c, &["rbind", "unbindable"]),
    "mounts.bind.prop=runbindable" => |c| bind_opts(c, &["rbind", "runbindable"]),
    // ---- rootfs propagation
    "linux.rootfsPropagation=shared" => |c| c["linux"]["rootfsPropagation"] = "shared".into(),
    "linux.rootfsPropagation=rshared" => |c| c["linux"]["rootfsPropagation"] = "rshared".into(),
    "linux.rootfsPropagation=slave" => |c| c["linux"]["rootfsPropagation"] = "slave".into(),
    "linux.rootfsPropagation=rslave" => |c| c["linux"]["rootfsPropagation"] = "rslave".into(),
    "linux.rootfsPropagation=private" => |c| c["linux"]["rootfsPropagation"] = "private".into(),
    "linux.rootfsPropagation=rprivate" => |c| c["linux"]["rootfsPropagation"] = "rprivate".into(),
    "linux.rootfsPropagation=unbindable" => |c| c["linux"]["rootfsPropagation"] = "unbindable".into(),
    "linux.rootfsPropagation=runbindable" => |c| c["linux"]["rootfsPropagation"] = "runbindable".into(),
    "linux.rootfsPropagation=\"\"" => |c| c["linux"]["rootfsPropagation"] = "".into(),
    "linux.rootfsPropagation=bogus" => |c| c["linux"]["rootfsPropagation"] = "bogus".into(),
    // ---- namespaces (the subsets of the default five are generated below)
    "linux.namespaces+cgroup" => |c| ns_add(c, "cgroup"),
    "linux.namespaces+user" => |c| userns(c),
    "linux.namespaces+user-without-mappings" => |c| ns_add(c, "user"),
    "linux.namespaces+user+cgroup" => |c| { userns(c); ns_add(c, "cgroup") },
    "linux.namespaces+user+multi-range-maps" => |c| { ns_add(c, "user"); c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1000}, {"containerID": 1000, "hostID": 200000, "size": 1000}]); c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]) },
    "linux.namespaces+user+uid1000" => |c| { userns(c); c["process"]["user"] = json!({"uid": 1000, "gid": 1000}) },
    "linux.namespaces+time" => |c| ns_add(c, "time"),
    "linux.namespaces+time+timeOffsets" => |c| { ns_add(c, "time"); c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 3600, "nanosecs": 5}}) },
    "linux.timeOffsets-without-time-ns" => |c| c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}}),
    "linux.namespaces=duplicate-pid" => |c| ns_add(c, "pid"),
    "linux.namespaces=unknown-type" => |c| ns_add(c, "vsrunns"),
    "linux.namespaces.pid.path=host" => |c| { ns_remove(c, "pid"); push(&mut c["linux"]["namespaces"], json!({"type": "pid", "path": "/proc/1/ns/pid"})) },
    "linux.namespaces.net.path=missing" => |c| { ns_remove(c, "network"); push(&mut c["linux"]["namespaces"], json!({"type": "network", "path": "/no/such/netns"})) },
    "linux.namespaces.uts.path=not-ns" => |c| { ns_remove(c, "uts"); push(&mut c["linux"]["namespaces"], json!({"type": "uts", "path": "/etc/hostname"})) },
    "linux.uidMappings-without-user-ns" => |c| c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    "linux.uidMappings.size=0" => |c| { userns(c); c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 0}]) },
    // ---- devices
    "linux.devices=[]" => |c| c["linux"]["devices"] = json!([]),
    "linux.devices.c=/dev/sweep-null" => |c| device(c, json!({"path": "/dev/sweep-null", "type": "c", "major": 1, "minor": 3, "fileMode": 438, "uid": 0, "gid": 0})),
    "linux.devices.b=/dev/sweep-blk" => |c| device(c, json!({"path": "/dev/sweep-blk", "type": "b", "major": 7, "minor": 0, "fileMode": 432})),
    "linux.devices.u=/dev/sweep-u" => |c| device(c, json!({"path": "/dev/sweep-u", "type": "u", "major": 1, "minor": 5})),
    "linux.devices.p=/dev/sweep-fifo" => |c| device(c, json!({"path": "/dev/sweep-fifo", "type": "p"})),
    "linux.devices.p-with-numbers" => |c| device(c, json!({"path": "/dev/sweep-fifo", "type": "p", "major": 0, "minor": 0})),
    "linux.devices.unknown-type" => |c| device(c, json!({"path": "/dev/sweep-x", "type": "x", "major": 1, "minor": 3})),
    "linux.devices.fileMode-absent" => |c| device(c, json!({"path": "/dev/sweep-null", "type": "c", "major": 1, "minor": 3})),
    "linux.devices.fileMode=0600-uid1000" => |c| device(c, json!({"path": "/dev/sweep-null", "type": "c", "major": 1, "minor": 3, "fileMode": 384, "uid": 1000, "gid": 1000})),
    "linux.devices.override-/dev/null" => |c| device(c, json!({"path": "/dev/null", "type": "c", "major": 1, "minor": 5, "fileMode": 438})),
    "linux.devices.nested-path" => |c| device(c, json!({"path": "/dev/sub/dir/null2", "type": "c", "major": 1, "minor": 3})),
    "linux.devices.outside-/dev" => |c| device(c, json!({"path": "/sweep-null", "type": "c", "major": 1, "minor": 3, "fileMode": 438})),
    "linux.devices.relative-path" => |c| device(c, json!({"path": "dev/sweep-rel", "type": "c", "major": 1, "minor": 3})),
    "linux.devices.fuse" => |c| device(c, json!({"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438})),
    // ---- masked and read-only paths
    "linux.maskedPaths=[]" => |c| c["linux"]["maskedPaths"] = json!([]),
    "linux.maskedPaths=absent" => |c| remove(linux(c), "maskedPaths"),
    "linux.maskedPaths+file" => |c| push(&mut c["linux"]["maskedPaths"], json!("/etc/hostname")),
    "linux.maskedPaths+dir" => |c| push(&mut c["linux"]["maskedPaths"], json!("/etc")),
    "linux.maskedPaths+missing" => |c| push(&mut c["linux"]["maskedPaths"], json!("/no/such/path")),
    "linux.maskedPaths+relative" => |c| push(&mut c["linux"]["maskedPaths"], json!("etc/passwd")),
    "linux.maskedPaths+duplicate" => |c| push(&mut c["linux"]["maskedPaths"], json!("/proc/kcore")),
    "linux.maskedPaths+/proc/sys" => |c| push(&mut c["linux"]["maskedPaths"], json!("/proc/sys")),
    "linux.readonlyPaths=[]" => |c| c["linux"]["readonlyPaths"] = json!([]),
    "linux.readonlyPaths=absent" => |c| remove(linux(c), "readonlyPaths"),
    "linux.readonlyPaths+/etc" => |c| push(&mut c["linux"]["readonlyPaths"], json!("/etc")),
    "linux.readonlyPaths+file" => |c| push(&mut c["linux"]["readonlyPaths"], json!("/etc/passwd")),
    "linux.readonlyPaths+missing" => |c| push(&mut c["linux"]["readonlyPaths"], json!("/no/such/path")),
    "linux.readonlyPaths+/" => |c| push(&mut c["linux"]["readonlyPaths"], json!("/")),
    "linux.readonlyPaths+masked-too" => |c| push(&mut c["linux"]["readonlyPaths"], json!("/proc/kcore")),
    // ---- sysctl
    "linux.sysctl={}" => |c| c["linux"]["sysctl"] = json!({}),
    "linux.sysctl.net.ipv4.ip_forward" => |c| c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"}),
    "linux.sysctl.net.core.somaxconn" => |c| c["linux"]["sysctl"] = json!({"net.core.somaxconn": "256"}),
    "linux.sysctl.kernel.shm_rmid_forced" => |c| c["linux"]["sysctl"] = json!({"kernel.shm_rmid_forced": "1"}),
    "linux.sysctl.kernel.msgmax" => |c| c["linux"]["sysctl"] = json!({"kernel.msgmax": "8192"}),
    "linux.sysctl.fs.mqueue.queues_max" => |c| c["linux"]["sysctl"] = json!({"fs.mqueue.queues_max": "128"}),
    "linux.sysctl.kernel.domainname" => |c| c["linux"]["sysctl"] = json!({"kernel.domainname": "sweep.example"}),
    "linux.sysctl.host-only-vm.swappiness" => |c| c["linux"]["sysctl"] = json!({"vm.swappiness": "10"}),
    "linux.sysctl.unknown-key" => |c| c["linux"]["sysctl"] = json!({"net.vsrun.bogus": "1"}),
    "linux.sysctl.bad-value" => |c| c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "notanumber"}),
    "linux.sysctl.slash-key" => |c| c["linux"]["sysctl"] = json!({"net/ipv4/ip_forward": "1"}),
    "linux.sysctl.dotdot-key" => |c| c["linux"]["sysctl"] = json!({"net.ipv4.conf.all..forwarding": "1"}),
    // ---- hooks at every point
    "hooks={}" => |c| c["hooks"] = json!({}),
    "hooks.prestart" => |c| hook(c, "prestart", "@HOOK"),
    "hooks.createRuntime" => |c| hook(c, "createRuntime", "@HOOK"),
    "hooks.createContainer" => |c| hook(c, "createContainer", "@HOOK"),
    "hooks.startContainer" => |c| hook(c, "startContainer", "@HOOK"),
    "hooks.poststart" => |c| hook(c, "poststart", "@HOOK"),
    "hooks.poststop" => |c| hook(c, "poststop", "@HOOK"),
    "hooks.prestart.fail" => |c| hook(c, "prestart", "@HOOK-FAIL"),
    "hooks.createRuntime.fail" => |c| hook(c, "createRuntime", "@HOOK-FAIL"),
    "hooks.createContainer.fail" => |c| hook(c, "createContainer", "@HOOK-FAIL"),
    "hooks.startContainer.fail" => |c| hook(c, "startContainer", "@HOOK-FAIL"),
    "hooks.poststart.fail" => |c| hook(c, "poststart", "@HOOK-FAIL"),
    "hooks.poststop.fail" => |c| hook(c, "poststop", "@HOOK-FAIL"),
    "hooks.prestart.missing" => |c| hook(c, "prestart", "@HOOK-MISSING"),
    "hooks.createContainer.missing" => |c| hook(c, "createContainer", "@HOOK-MISSING"),
    "hooks.prestart.relative-path" => |c| push(&mut c["hooks"]["prestart"], json!({"path": "bin/true"})),
    "hooks.prestart.env+args" => |c| push(&mut c["hooks"]["prestart"], json!({"path": "@HOOK", "args": ["x", "--flag"], "env": ["FOO=bar", "EMPTY="]})),
    "hooks.prestart.env=[]" => |c| push(&mut c["hooks"]["prestart"], json!({"path": "@HOOK", "env": []})),
    "hooks.prestart.args=absent" => |c| push(&mut c["hooks"]["prestart"], json!({"path": "@HOOK"})),
    "hooks.prestart.timeout=5" => |c| push(&mut c["hooks"]["prestart"], json!({"path": "@HOOK", "timeout": 5})),
    "hooks.prestart.timeout=0" => |c| push(&mut c["hooks"]["prestart"], json!({"path": "@HOOK", "timeout": 0})),
    "hooks.prestart.two" => |c| { hook(c, "prestart", "@HOOK"); hook(c, "prestart", "@HOOK") },
    "hooks.every-point" => |c| { for p in ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] { hook(c, p, "@HOOK") } },
    // ---- cgroup resources at their edges
    "linux.cgroupsPath=absent" => |c| remove(linux(c), "cgroupsPath"),
    "linux.cgroupsPath=relative" => |c| c["linux"]["cgroupsPath"] = "@CG/rel".into(),
    "linux.cgroupsPath=nested" => |c| c["linux"]["cgroupsPath"] = "/@CG/a/b/c".into(),
    "linux.cgroupsPath=dotdot" => |c| c["linux"]["cgroupsPath"] = "/@CG/../@CG-x".into(),
    "linux.cgroupsPath=systemd-form" => |c| c["linux"]["cgroupsPath"] = "system.slice:@CG:sweep".into(),
    "linux.resources={}" => |c| { cg(c); c["linux"]["resources"] = json!({}) },
    "linux.resources.devices=deny-all" => |c| { cg(c); res(c)["devices"] = json!([{"allow": false, "access": "rwm"}]) },
    "linux.resources.devices=allow-all" => |c| { cg(c); res(c)["devices"] = json!([{"allow": true, "access": "rwm"}]) },
    "linux.resources.devices=allow-c-1:3-r" => |c| { cg(c); res(c)["devices"] = json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"}]) },
    "linux.resources.devices=wildcard-major" => |c| { cg(c); res(c)["devices"] = json!([{"allow": true, "type": "c", "minor": 3, "access": "rw"}]) },
    "linux.resources.devices=type-a" => |c| { cg(c); res(c)["devices"] = json!([{"allow": true, "type": "a", "access": "rwm"}]) },
    "linux.resources.devices=bad-access" => |c| { cg(c); res(c)["devices"] = json!([{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwx"}]) },
    "linux.resources.devices=bad-type" => |c| { cg(c); res(c)["devices"] = json!([{"allow": true, "type": "z", "access": "r"}]) },
    "linux.resources.memory.limit=64M" => |c| { cg(c); res(c)["memory"] = json!({"limit": 67108864}) },
    "linux.resources.memory.limit=-1" => |c| { cg(c); res(c)["memory"] = json!({"limit": -1}) },
    "linux.resources.memory.limit=0" => |c| { cg(c); res(c)["memory"] = json!({"limit": 0}) },
    "linux.resources.memory.limit=4k" => |c| { cg(c); res(c)["memory"] = json!({"limit": 4096}) },
    "linux.resources.memory.swap=-1" => |c| { cg(c); res(c)["memory"] = json!({"limit": 67108864, "swap": -1}) },
    "linux.resources.memory.swap<limit" => |c| { cg(c); res(c)["memory"] = json!({"limit": 67108864, "swap": 33554432}) },
    "linux.resources.memory.swap-without-limit" => |c| { cg(c); res(c)["memory"] = json!({"swap": 67108864}) },
    "linux.resources.memory.reservation" => |c| { cg(c); res(c)["memory"] = json!({"reservation": 33554432}) },
    "linux.resources.memory.kernel" => |c| { cg(c); res(c)["memory"] = json!({"kernel": 67108864}) },
    "linux.resources.memory.kernelTCP" => |c| { cg(c); res(c)["memory"] = json!({"kernelTCP": 67108864}) },
    "linux.resources.memory.swappiness=0" => |c| { cg(c); res(c)["memory"] = json!({"swappiness": 0}) },
    "linux.resources.memory.swappiness=100" => |c| { cg(c); res(c)["memory"] = json!({"swappiness": 100}) },
    "linux.resources.memory.swappiness=101" => |c| { cg(c); res(c)["memory"] = json!({"swappiness": 101}) },
    "linux.resources.memory.disableOOMKiller" => |c| { cg(c); res(c)["memory"] = json!({"disableOOMKiller": true}) },
    "linux.resources.memory.useHierarchy" => |c| { cg(c); res(c)["memory"] = json!({"useHierarchy": true}) },
    "linux.resources.memory.checkBeforeUpdate" => |c| { cg(c); res(c)["memory"] = json!({"limit": 67108864, "checkBeforeUpdate": true}) },
    "linux.resources.cpu.shares=0" => |c| { cg(c); res(c)["cpu"] = json!({"shares": 0}) },
    "linux.resources.cpu.shares=1" => |c| { cg(c); res(c)["cpu"] = json!({"shares": 1}) },
    "linux.resources.cpu.shares=2" => |c| { cg(c); res(c)["cpu"] = json!({"shares": 2}) },
    "linux.resources.cpu.shares=262144" => |c| { cg(c); res(c)["cpu"] = json!({"shares": 262144}) },
    "linux.resources.cpu.shares=262145" => |c| { cg(c); res(c)["cpu"] = json!({"shares": 262145}) },
    "linux.resources.cpu.quota=-1" => |c| { cg(c); res(c)["cpu"] = json!({"quota": -1}) },
    "linux.resources.cpu.quota+period" => |c| { cg(c); res(c)["cpu"] = json!({"quota": 50000, "period": 100000}) },
    "linux.resources.cpu.quota-only" => |c| { cg(c); res(c)["cpu"] = json!({"quota": 20000}) },
    "linux.resources.cpu.period-only" => |c| { cg(c); res(c)["cpu"] = json!({"period": 50000}) },
    "linux.resources.cpu.quota=999" => |c| { cg(c); res(c)["cpu"] = json!({"quota": 999, "period": 100000}) },
    "linux.resources.cpu.burst" => |c| { cg(c); res(c)["cpu"] = json!({"quota": 50000, "period": 100000, "burst": 10000}) },
    "linux.resources.cpu.realtimeRuntime=0" => |c| { cg(c); res(c)["cpu"] = json!({"realtimeRuntime": 0, "realtimePeriod": 1000000}) },
    "linux.resources.cpu.cpus=0" => |c| { cg(c); res(c)["cpu"] = json!({"cpus": "0"}) },
    "linux.resources.cpu.cpus=0-1" => |c| { cg(c); res(c)["cpu"] = json!({"cpus": "0-1", "mems": "0"}) },
    "linux.resources.cpu.cpus=absent-cpu" => |c| { cg(c); res(c)["cpu"] = json!({"cpus": "63"}) },
    "linux.resources.cpu.cpus=bad" => |c| { cg(c); res(c)["cpu"] = json!({"cpus": "x-y"}) },
    "linux.resources.cpu.cpus=\"\"" => |c| { cg(c); res(c)["cpu"] = json!({"cpus": ""}) },
    "linux.resources.cpu.idle=1" => |c| { cg(c); res(c)["cpu"] = json!({"idle": 1}) },
    "linux.resources.pids.limit=1" => |c| { cg(c); res(c)["pids"] = json!({"limit": 1}) },
    "linux.resources.pids.limit=0" => |c| { cg(c); res(c)["pids"] = json!({"limit": 0}) },
    "linux.resources.pids.limit=-1" => |c| { cg(c); res(c)["pids"] = json!({"limit": -1}) },
    "linux.resources.pids.limit=100" => |c| { cg(c); res(c)["pids"] = json!({"limit": 100}) },
    "linux.resources.blockIO.weight=10" => |c| { cg(c); res(c)["blockIO"] = json!({"weight": 10}) },
    "linux.resources.blockIO.weight=1000" => |c| { cg(c); res(c)["blockIO"] = json!({"weight": 1000}) },
    "linux.resources.blockIO.weight=0" => |c| { cg(c); res(c)["blockIO"] = json!({"weight": 0}) },
    "linux.resources.blockIO.weight=1001" => |c| { cg(c); res(c)["blockIO"] = json!({"weight": 1001}) },
    "linux.resources.blockIO.leafWeight" => |c| { cg(c); res(c)["blockIO"] = json!({"leafWeight": 100}) },
    "linux.resources.blockIO.throttleRead" => |c| { cg(c); res(c)["blockIO"] = json!({"throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}]}) },
    "linux.resources.blockIO.throttleWriteIops" => |c| { cg(c); res(c)["blockIO"] = json!({"throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}]}) },
    "linux.resources.blockIO.throttle-missing-dev" => |c| { cg(c); res(c)["blockIO"] = json!({"throttleReadBpsDevice": [{"major": 250, "minor": 77, "rate": 1048576}]}) },
    "linux.resources.blockIO.weightDevice" => |c| { cg(c); res(c)["blockIO"] = json!({"weightDevice": [{"major": 254, "minor": 0, "weight": 500}]}) },
    "linux.resources.hugepageLimits" => |c| { cg(c); res(c)["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 209715200}]) },
    "linux.resources.network" => |c| { cg(c); res(c)["network"] = json!({"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]}) },
    "linux.resources.rdma" => |c| { cg(c); res(c)["rdma"] = json!({"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}) },
    "linux.resources.unified-on-v1" => |c| { cg(c); res(c)["unified"] = json!({"memory.max": "max"}) },
    "linux.resources.unified={}" => |c| { cg(c); res(c)["unified"] = json!({}) },
    "linux.resources-without-cgroupsPath" => |c| { remove(linux(c), "cgroupsPath"); res(c)["pids"] = json!({"limit": 100}) },
    // ---- seccomp at its edges
    "linux.seccomp=allow-empty" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW"})),
    "linux.seccomp=allow-syscalls-[]" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []})),
    "linux.seccomp=errno-uname" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO"}]})),
    "linux.seccomp=errnoRet-uname" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]})),
    "linux.seccomp=defaultErrnoRet" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1, "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO"}]})),
    "linux.seccomp=log-default" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_LOG"})),
    "linux.seccomp=unknown-action" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_VSRUN"})),
    "linux.seccomp=unknown-syscall" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["vsrun_no_such_syscall", "uname"], "action": "SCMP_ACT_ERRNO"}]})),
    "linux.seccomp=names-[]" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]})),
    "linux.seccomp=architectures" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO"}]})),
    "linux.seccomp=unknown-arch" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VSRUN"]})),
    "linux.seccomp=flag-log" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]})),
    "linux.seccomp=flag-spec-allow" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]})),
    "linux.seccomp=flag-tsync" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC"]})),
    "linux.seccomp=unknown-flag" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_VSRUN"]})),
    "linux.seccomp=arg-eq" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 255, "op": "SCMP_CMP_EQ"}]}]})),
    "linux.seccomp=arg-masked-eq" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 255, "valueTwo": 255, "op": "SCMP_CMP_MASKED_EQ"}]}]})),
    "linux.seccomp=arg-index-6" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})),
    "linux.seccomp=arg-unknown-op" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_VSRUN"}]}]})),
    "linux.seccomp=kill-process-default-allowlist" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [{"names": PROBE_SYSCALLS, "action": "SCMP_ACT_ALLOW"}]})),
    "linux.seccomp=errno-default-allowlist" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": PROBE_SYSCALLS, "action": "SCMP_ACT_ALLOW"}]})),
    "linux.seccomp=trace-uname" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_TRACE"}]})),
    "linux.seccomp=listenerPath-without-notify" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "@BUNDLE/no-listener.sock"})),
    "linux.seccomp=allow-default+noNewPrivileges=false" => |c| { c["process"]["noNewPrivileges"] = false.into(); seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO"}]})) },
    // ---- other linux fields
    "linux.personality=LINUX32" => |c| c["linux"]["personality"] = json!({"domain": "LINUX32"}),
    "linux.personality=LINUX" => |c| c["linux"]["personality"] = json!({"domain": "LINUX"}),
    "linux.personality=unknown" => |c| c["linux"]["personality"] = json!({"domain": "VSRUN"}),
    "linux.mountLabel=\"\"" => |c| c["linux"]["mountLabel"] = "".into(),
    "linux.intelRdt" => |c| c["linux"]["intelRdt"] = json!({"closID": "sweep", "l3CacheSchema": "L3:0=f"}),
    "linux=absent" => |c| remove(c, "linux"),
    "linux={}" => |c| c["linux"] = json!({}),
    "linux.namespaces=absent" => |c| remove(linux(c), "namespaces"),
    // ---- the spec's own examples (runtime-spec config.md / config-linux.md)
    "spec-example.process" => |c| { c["process"]["user"] = json!({"uid": 1, "gid": 1, "umask": 63, "additionalGids": [5, 6]}); c["process"]["rlimits"] = json!([{"type": "RLIMIT_CORE", "hard": 1024, "soft": 1024}, {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]); c["process"]["capabilities"] = json!({"bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"], "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"], "inheritable": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"], "effective": ["CAP_AUDIT_WRITE", "CAP_KILL"], "ambient": ["CAP_NET_BIND_SERVICE"]}); c["process"]["oomScoreAdj"] = 100.into(); c["process"]["cwd"] = "/".into() },
    "spec-example.mounts" => |c| { mount(c, json!({"destination": "/data", "type": "bind", "source": "@BUNDLE/src-dir", "options": ["rbind", "rw"]})); mount(c, json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]})) },
    "spec-example.resources" => |c| { cg(c); c["linux"]["resources"] = json!({"pids": {"limit": 32771}, "memory": {"limit": 536870912, "reservation": 536870912, "swap": 536870912, "swappiness": 0, "disableOOMKiller": false}, "cpu": {"shares": 1024, "quota": 1000000, "period": 500000, "realtimeRuntime": 0, "realtimePeriod": 1000000, "cpus": "0-1", "mems": "0"}, "blockIO": {"weight": 10, "leafWeight": 10}, "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}, {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"}]}) },
    "spec-example.resources-cpus-2-3" => |c| { cg(c); res(c)["cpu"] = json!({"shares": 1024, "quota": 1000000, "period": 500000, "realtimeRuntime": 950000, "realtimePeriod": 1000000, "cpus": "2-3", "mems": "0-7"}) },
    "spec-example.devices" => |c| { device(c, json!({"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0})); device(c, json!({"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 432, "uid": 0, "gid": 0})) },
    "spec-example.sysctl" => |c| c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "net.core.somaxconn": "256"}),
    "spec-example.seccomp" => |c| seccomp(c, json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": [{"names": ["getcwd", "chmod"], "action": "SCMP_ACT_ERRNO"}]})),
    "spec-example.hooks" => |c| { push(&mut c["hooks"]["prestart"], json!({"path": "@HOOK", "args": ["fix-mounts", "arg1", "arg2"], "env": ["key1=value1"]})); push(&mut c["hooks"]["poststart"], json!({"path": "@HOOK", "args": ["notify-start"], "timeout": 5})); push(&mut c["hooks"]["poststop"], json!({"path": "@HOOK", "args": ["cleanup.sh", "-f"]})) },
    "spec-example.uid-mappings" => |c| { ns_add(c, "user"); c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 32000}]); c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 32000}]) },
    "spec-example.rootfsPropagation+masked" => |c| { c["linux"]["rootfsPropagation"] = "slave".into(); c["linux"]["maskedPaths"] = json!(["/proc/kcore"]); c["linux"]["readonlyPaths"] = json!(["/proc/sys"]) },
];

const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// What the probe (a static Rust program) needs to print its report and sleep, for the
/// default-deny profiles; the runtimes' own last syscalls are theirs to get right.
const PROBE_SYSCALLS: &[&str] = &[
    "execve",
    "brk",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "mmap",
    "munmap",
    "mprotect",
    "read",
    "write",
    "openat",
    "open",
    "close",
    "fstat",
    "newfstatat",
    "statx",
    "lseek",
    "getdents64",
    "readlink",
    "readlinkat",
    "getcwd",
    "getpid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "getpgid",
    "getpgrp",
    "getsid",
    "uname",
    "umask",
    "prctl",
    "capget",
    "sigaltstack",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "poll",
    "ppoll",
    "futex",
    "nanosleep",
    "clock_nanosleep",
    "exit",
    "exit_group",
    "sched_getaffinity",
    "getrandom",
    "ioctl",
    "fcntl",
    "getrlimit",
    "madvise",
    "mremap",
    "clock_gettime",
    "gettid",
    "tgkill",
];

// ---------------------------------------------------------------------------------------------
// The cases: single edits, namespace subsets, seeded pairs

struct SweepCase {
    name: String,
    edits: Vec<Apply>,
}

const NAMESPACES: &[&str] = &["pid", "network", "ipc", "uts", "mount"];
const PAIR_SEED: u64 = 0x5eed_0016;
const PAIRS: usize = 70;

/// Every subset of the five default namespaces (the full set is the base config), made valid
/// the way an engine would: no hostname without uts, no masked/read-only paths without mount.
fn namespace_subset(c: &mut Value, mask: u32) {
    for (i, ns) in NAMESPACES.iter().enumerate() {
        if mask & (1 << i) == 0 {
            ns_remove(c, ns);
        }
    }
    let has = |ns: &str| mask & (1 << NAMESPACES.iter().position(|n| *n == ns).unwrap()) != 0;
    if !has("uts") {
        remove(c, "hostname");
    }
    if !has("mount") {
        remove(linux(c), "maskedPaths");
        remove(linux(c), "readonlyPaths");
    }
}

macro_rules! subset_fns {
    ($($m:literal),*) => { &[$({ fn f(c: &mut Value) { namespace_subset(c, $m) } f as Apply }),*] };
}
const SUBSETS: &[Apply] = subset_fns!(
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30
);

fn area(name: &str) -> &str {
    let n = name
        .trim_start_matches("linux.")
        .trim_start_matches("process.");
    n.split(['.', '=', '+', '-']).next().unwrap_or(n)
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn cases() -> Vec<SweepCase> {
    let mut v = vec![SweepCase {
        name: "base".into(),
        edits: vec![],
    }];
    for e in EDITS {
        v.push(SweepCase {
            name: e.name.into(),
            edits: vec![e.apply],
        });
    }
    for (mask, f) in SUBSETS.iter().enumerate() {
        let names: Vec<&str> = NAMESPACES
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect();
        v.push(SweepCase {
            name: format!("linux.namespaces=[{}]", names.join(",")),
            edits: vec![*f],
        });
    }
    // Pairs of edits from different areas; the seed fixes which.
    let mut rng = Rng(PAIR_SEED);
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < PAIRS {
        let a = (rng.next() % EDITS.len() as u64) as usize;
        let b = (rng.next() % EDITS.len() as u64) as usize;
        let (a, b) = (a.min(b), a.max(b));
        if a == b || area(EDITS[a].name) == area(EDITS[b].name) || !seen.insert((a, b)) {
            continue;
        }
        v.push(SweepCase {
            name: format!("{}+{}", EDITS[a].name, EDITS[b].name),
            edits: vec![EDITS[a].apply, EDITS[b].apply],
        });
    }
    v
}

// ---------------------------------------------------------------------------------------------
// The allow-list: differences kept on purpose, each with its reason (README, "Differences from
// runc"). Matched on the case name and the fact name (`*` matches any run of characters).

struct SweepAllowed {
    case: &'static str,
    key: &'static str,
    when: fn(&str, &str) -> bool,
    why: &'static str,
}

fn any(_: &str, _: &str) -> bool {
    true
}
/// vsrun refuses what runc accepts.
fn vsrun_refuses(runc: &str, vsrun: &str) -> bool {
    runc == "ok" && vsrun == "fails"
}
/// vsrun refuses what runc accepts, on a pure cgroup v2 host (the v2 VM lane).
fn vsrun_refuses_on_v2(runc: &str, vsrun: &str) -> bool {
    vsrun_refuses(runc, vsrun) && Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}
/// vsrun runs what runc refuses.
fn runc_refuses(runc: &str, vsrun: &str) -> bool {
    runc == "fails" && vsrun == "ok"
}
/// The same mount but for `rw` in runc's superblock options where vsrun's say `ro` (wherever
/// the kernel lists it: 6.18 shows `super=rw`, Debian 12's 6.1 `super=inode64,rw`).
fn super_ro_instead_of_rw(runc: &str, vsrun: &str) -> bool {
    let as_ro = |v: &str| -> String {
        v.split(' ')
            .map(|f| match f.strip_prefix("super=") {
                Some(o) => {
                    let o: Vec<&str> = o
                        .split(',')
                        .map(|x| if x == "rw" { "ro" } else { x })
                        .collect();
                    format!("super={}", o.join(","))
                }
                None => f.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    runc != vsrun && as_ro(runc) == vsrun
}

/// vsrun leaves nothing where runc leaves something.
fn vsrun_leaves_nothing(runc: &str, vsrun: &str) -> bool {
    !runc.is_empty() && vsrun.is_empty()
}

macro_rules! allow {
    ($case:expr, $key:expr, $when:expr, $why:expr) => {
        SweepAllowed {
            case: $case,
            key: $key,
            when: $when,
            why: $why,
        }
    };
}

const SWEEP_ALLOWED: &[SweepAllowed] = &[
    // ---- vsrun follows the spec where runc 1.1.5 does not
    allow!("ociVersion=*", "outcome", vsrun_refuses,
        "ociVersion is REQUIRED and names the spec's major version: vsrun refuses a missing, \
         empty or non-1.x one by name, runc 1.1.5 ignores it (README: Differences from runc)"),
    allow!("*process.user=absent*", "outcome", vsrun_refuses,
        "process.user is REQUIRED on Linux (config.md); vsrun refuses its absence by name, runc \
         runs as uid 0"),
    allow!("*process.rlimits.NOFILE=duplicate*", "outcome", vsrun_refuses,
        "config.md: duplicated rlimit types MUST generate an error; runc 1.1.5 applies the last"),
    allow!("*process.rlimits.NOFILE=0*", "outcome", runc_refuses,
        "RLIMIT_NOFILE 0 is applied to the program only: vsrun sets rlimits last, runc 1.1.5 fails \
         in its own init (it opens /proc/self/fd after setrlimit)"),
    allow!("*process.user.uid=max-1*", "outcome", runc_refuses,
        "uid 4294967294 is a valid uid (only 4294967295 is -1); runc 1.1.5 refuses it"),
    allow!("*process.user.umask=01777*", "outcome", vsrun_refuses,
        "a umask has 9 bits: vsrun refuses 0o1777 by name, runc 1.1.5 silently drops the sticky bit"),
    allow!("*mounts.tmpfs.dest-relative*", "outcome", vsrun_refuses,
        "README, Config fields: relative mount destinations are refused (runc only warns, crun \
         refuses)"),
    allow!("*mounts.bind.opt=idmap*", "outcome", vsrun_refuses,
        "README, Config fields: idmapped mounts are refused by name, never ignored; runc 1.1.5 \
         passes `idmap` on as data and ignores it"),
    allow!("mounts=*", "outcome", runc_refuses,
        "without a /proc mount runc 1.1.5 cannot close its fds (it reads /proc/self/fd); vsrun \
         needs no /proc in the container"),
    allow!("*mounts-/proc-removed*", "outcome", runc_refuses,
        "without a /proc mount runc 1.1.5 cannot close its fds (it reads /proc/self/fd); vsrun \
         needs no /proc in the container"),
    allow!("*mounts.bind.options=absent*", "outcome", runc_refuses,
        "runtime-spec 1.1+: a mount of type \"bind\" is a bind mount; runc 1.1.5 needs the `bind` \
         option as well"),
    allow!("*mounts.tmpfs.opt=remount*", "outcome", runc_refuses,
        "`remount` on a new tmpfs: vsrun mounts it (the flag means nothing for a new mount), \
         runc 1.1.5 fails remounting what is not mounted yet"),
    allow!("*mounts.tmpfs.opt=defaults*", "outcome", runc_refuses,
        "`defaults` is mount(8)'s name for no flags; runc 1.1.5 passes it to tmpfs as data (EINVAL)"),
    allow!("*linux.namespaces+time*", "outcome", runc_refuses,
        "the time namespace (runtime-spec 1.2) is unknown to runc 1.1.5"),
    allow!("*linux.timeOffsets-without-time-ns*", "outcome", vsrun_refuses,
        "timeOffsets only mean something for a new time namespace; vsrun refuses them without one \
         by name, runc 1.1.5 ignores them"),
    allow!("*linux.uidMappings-without-user-ns*", "outcome", vsrun_refuses,
        "id mappings without a user namespace cannot be applied; vsrun refuses them by name, runc \
         1.1.5 ignores them (README: a field that cannot be applied is refused)"),
    allow!("*linux.devices.relative-path*", "outcome", vsrun_refuses,
        "linux.devices[].path is the full path inside the container (config-linux.md); vsrun \
         refuses a relative one by name"),
    allow!("*linux.maskedPaths+relative*", "outcome", vsrun_refuses,
        "maskedPaths MUST be absolute (config-linux.md); vsrun refuses a relative one by name"),
    allow!("*linux.readonlyPaths+/*", "outcome", vsrun_refuses,
        "a read-only \"/\" is root.readonly's job; vsrun refuses it in readonlyPaths by name \
         instead of re-binding the root over itself (which hides every mount below it, as runc \
         1.1.5's shows: its proc, dev and sys mounts appear twice)"),
    allow!("*linux.sysctl.dotdot-key*", "outcome", vsrun_refuses,
        "an empty component in a sysctl name is not a sysctl; vsrun refuses it rather than build a \
         /proc/sys path from it (CVE-2025-52881 class: sysctl writes go only where the name says)"),
    allow!("*linux.cgroupsPath=dotdot*", "outcome", vsrun_refuses,
        "a cgroupsPath with `..` could leave the hierarchy it names; vsrun refuses it by name"),
    allow!("*linux.cgroupsPath=relative*", "host.left.cgroups", any,
        "README, Decisions: relative cgroup paths go below the hierarchy roots with vsrun, below \
         the runtime's own cgroup with runc (which on this host differs for memory); the parent \
         both leave is the test's"),
    allow!("*linux.resources.memory.swappiness*", "outcome", vsrun_refuses_on_v2,
        "README, Config fields: a resource the hierarchy cannot apply is refused by name; cgroup \
         v2 has no per-cgroup swappiness (and 101 is out of range anywhere), runc 1.1.5 ignores it"),
    allow!("*linux.resources.memory.disableOOMKiller*", "outcome", vsrun_refuses_on_v2,
        "README, Config fields: cgroup v2 has no switch for the OOM killer; vsrun refuses the \
         field by name, runc 1.1.5 ignores it"),
    allow!("*linux.resources.cpu.realtime*", "outcome", vsrun_refuses_on_v2,
        "README, Config fields: cgroup v2 has no realtime bandwidth control; vsrun refuses \
         realtimeRuntime/realtimePeriod by name, runc 1.1.5 ignores them"),
    allow!("*linux.resources.blockIO.leafWeight*", "outcome", vsrun_refuses_on_v2,
        "README, Config fields: leaf weights were CFQ's, cgroup v2 has none; vsrun refuses the \
         field by name, runc 1.1.5 ignores it"),
    allow!("*linux.resources.network*", "outcome", vsrun_refuses_on_v2,
        "README, Config fields: net_cls and net_prio are v1 controllers (v2 classifies with \
         BPF); vsrun refuses linux.resources.network by name, runc 1.1.5 ignores it"),
    allow!("*linux.resources.devices=bad-access*", "outcome", vsrun_refuses,
        "device cgroup access is a combination of r, w and m; vsrun refuses `x` by name"),
    allow!("*linux.resources.cpu.shares=1*", "outcome", runc_refuses,
        "cpu.shares below 2 or above 262144: the kernel clamps it; runc 1.1.5 reads it back and \
         fails, vsrun keeps the clamped value (as runc 1.2 and crun do)"),
    allow!("*linux.resources.cpu.shares=262145*", "outcome", runc_refuses,
        "cpu.shares below 2 or above 262144: the kernel clamps it; runc 1.1.5 reads it back and \
         fails, vsrun keeps the clamped value (as runc 1.2 and crun do)"),
    allow!("*linux.seccomp=defaultErrnoRet*", "outcome", vsrun_refuses,
        "defaultErrnoRet with defaultAction SCMP_ACT_ALLOW cannot be applied; vsrun refuses it by \
         name (runc 1.1.5 ignores it)"),
    allow!("*linux.seccomp=flag-*", "outcome", runc_refuses,
        "seccomp flags (runtime-spec 1.0.2+) are not supported by runc 1.1.5"),
    allow!("*linux.seccomp=errno-default-allowlist*", "probe.output", |r, v| r == "none (died)" && v == "<absent>",
        "README, Process model: seccomp is the last step before execve, so a profile that allows \
         only the program's syscalls works; runc 1.1.5 needs its own syscalls after the filter"),
    allow!("*linux.seccomp=names-[]*", "outcome", vsrun_refuses,
        "a seccomp rule with no syscall names matches nothing; vsrun refuses it by name as a \
         broken profile (spec-tests/tests/seccomp.rs), runc 1.1.5 skips it"),
    allow!("*linux.personality=unknown*", "outcome", vsrun_refuses,
        "personality.domain is LINUX or LINUX32 (config-linux.md); vsrun refuses others by name"),
    allow!("*hooks.poststart.fail*", "outcome", runc_refuses,
        "config.md: a failing poststart hook MUST only log a warning; runc 1.1.5 fails `start`"),
    allow!("*hooks.startContainer*", "hook.startContainer[*].stdin.pid", |r, v| r == "1" && v == "<init pid>",
        "state.md: pid is the container process's as seen by the host; runc 1.1.5 writes 1 (its \
         own view from inside the pid namespace)"),
    allow!("*hooks.every-point*", "hook.startContainer[*].stdin.pid", |r, v| r == "1" && v == "<init pid>",
        "state.md: pid is the container process's as seen by the host; runc 1.1.5 writes 1"),
    allow!("*", "hook.poststart[*].stdin.status", |r, v| r == "created" && v == "running",
        "poststart runs once the program runs (config.md), so the state says `running`; runc \
         1.1.5 passes the state it read before starting"),
    allow!("*", "host.left.mounts", vsrun_leaves_nothing,
        "README, Decisions (no mount namespace): vsrun keeps its mounts below one bind of the \
         rootfs and `delete` detaches it; runc 1.1.5 leaves every mount in the caller's namespace"),
    allow!("*mounts.cgroup=rw*", "probe.write /sys/fs/cgroup/.vsrun-diff", |r, v| r.contains("\"errno\":13") && v.contains("written"),
        "the config asks for a writable cgroup mount: vsrun's tmpfs holding the hierarchies is 755 \
         as its mode= says, runc 1.1.5 leaves 555 (writable only with CAP_DAC_OVERRIDE)"),
    allow!("*mounts.cgroup=rw*", "probe.stat /sys/fs/cgroup", any,
        "mode of the tmpfs root holding the hierarchies (see the entry above)"),
    allow!("*mounts.cgroup=rw*", "probe.mount /sys/fs/cgroup/unified", |r, v| r == "<absent>" && v.starts_with("cgroup2 ") && !v.contains("root=/ "),
        "on a hybrid host vsrun also binds the container's own unified directory (see \
         diff::ALLOWED); with `rw` asked it is writable, as the v1 hierarchies beside it"),
    allow!("*mounts.tmpfs.twice-same-dest*", "probe.mount /mnt #2", super_ro_instead_of_rw,
        "a second tmpfs with `ro`: vsrun mounts the new file system read-only, runc 1.1.5 mounts \
         it writable and makes only the mount read-only; nothing can write to either"),
    allow!("*", "cmd.state.ociVersion", |r, _| r == "1.0.2-dev",
        "state.md: the state's ociVersion is the spec version the state complies with; runc \
         1.1.5 writes the one it was built against, vsrun the config's (as crun does)"),
    allow!("*domainname=example.org*", "probe.domainname", |r, v| r == "(none)" && v == "example.org",
        "runc 1.1.5 ignores `domainname` (config.md, since runtime-spec 1.0.2); vsrun sets it"),
    allow!("*mounts.tmpfs.opt=*ro*", "probe.mount /mnt", super_ro_instead_of_rw,
        "a tmpfs with `ro`: vsrun mounts the new file system read-only, runc 1.1.5 mounts it \
         writable and makes only the mount read-only; nothing can write to either"),
    allow!("*linux.rootfsPropagation=*shared*", "probe.mount *", |r, v| {
            let strip = |x: &str| x.replace("opts=nodev,noexec,nosuid,relatime,ro", "opts=relatime,ro");
            strip(r).replace(" private ", " shared ") == strip(v)
        },
        "config-linux.md: rootfsPropagation sets the rootfs mount's propagation; vsrun leaves it \
         shared as asked, runc 1.1.5 makes the container's root private after pivot_root"),
    allow!("*linux.rootfsPropagation=unbindable*", "probe.mount /", |r, v| r.replace(" private ", " unbindable ") == v,
        "config-linux.md: rootfsPropagation sets the rootfs mount's propagation; vsrun's root is \
         unbindable as asked, runc 1.1.5's private (as for shared above). Seen where the bundle \
         is on a mount of its own (the v2 VM's /tmp): where it is on the host's `/`, which is \
         made unbindable first, both fail to bind the rootfs"),
    allow!("*", "probe.mount *", |r, v| {
            let strip = |x: &str| x.replace("opts=nodev,noexec,nosuid,relatime,ro", "opts=relatime,ro");
            r.starts_with("tmpfs ") && r.contains("opts=relatime,ro ") && strip(v) == r
        },
        "masked directories (see diff::ALLOWED, here in a user namespace where the tmpfs has \
         uid=/gid= data): vsrun also sets nosuid, nodev and noexec on the empty read-only tmpfs"),
    allow!("*", "probe.mounts.order", |r, v| {
            let mut a: Vec<&str> = r.split(' ').collect();
            let mut b: Vec<&str> = v.split(' ').collect();
            a.sort();
            b.sort();
            a == b
        },
        "the same mounts in another order: in a user namespace both runtimes bind the default \
         devices one by one (runc null, random, full, tty, zero, urandom; vsrun null, zero, \
         full, random, urandom, tty); they are siblings that neither cover nor hide each other"),
    allow!("*linux.devices.override-/dev/null*", "*", any,
        "the config replaces /dev/null with char 1:5: runc 1.1.5 then masks /proc/keys and \
         /proc/timer_list with that device (reads return zeros) and drops 1:3 from the cgroup; \
         vsrun masks only with a verified 1:3 (README, Security: CVE-2025-31133 class)"),
    allow!("*linux.cgroupsPath=absent*", "*proc-cgroup*", any,
        "README, Decisions: the default cgroup path is /vsrun/<id> (runc: /<id>, below its own \
         cgroup in the memory hierarchy on this host)"),
    allow!("*linux.resources-without-cgroupsPath*", "*proc-cgroup*", any,
        "README, Decisions: the default cgroup path is /vsrun/<id> (runc: /<id>)"),
    allow!("*linux.cgroupsPath=relative*", "*proc-cgroup[memory]", any,
        "README, Decisions: relative cgroup paths go below the hierarchy roots; runc 1.1.5 puts \
         them below its own cgroup (which on this host differs only for memory)"),
    allow!("*linux.cgroupsPath=systemd-form*", "*proc-cgroup[memory]", any,
        "without --systemd-cgroup a slice:prefix:name path is a relative path (see the entry above)"),
    allow!("*linux.resources.memory.kernelTCP*", "host.cgroup.memory.kmem.tcp.limit_in_bytes", any,
        "runc 1.1.5 ignores memory.kernelTCP on this kernel; vsrun applies it (README: a field is \
         applied or refused, never ignored)"),
    allow!("*linux.resources.cpu.burst*", "host.cgroup.cpu.cfs_burst_us", any,
        "cpu.burst (runtime-spec 1.1) is unknown to runc 1.1.5; vsrun applies it"),
    allow!("*linux.resources.cpu.idle=1*", "host.cgroup.cpu.*", any,
        "cpu.idle (runtime-spec 1.1) is unknown to runc 1.1.5; vsrun applies it (the kernel then \
         shows cpu.shares 3)"),
    allow!("*linux.seccomp=errno-default-allowlist*", "*", |r, v| r != v,
        "runc 1.1.5's probe died under the profile (it needs its own syscalls after the filter); \
         vsrun's ran (README, Process model: seccomp is the last step before execve)"),
    allow!("*", "probe.stat /dev/mqueue", |r, v| r.contains("\"uid\":0}") && v.contains("\"uid\":65534}"),
        "kept (issue 16 sweep): with a user namespace vsrun's /dev/mqueue root shows uid 65534 \
         (owned outside the container's user namespace), runc 1.1.5's uid 0; mode 1777 either way"),
    // tmpfs root mode: vsrun applies what the config says (mode= or the kernel default).
    allow!("*", "probe.stat /etc", |r, v| r.contains("\"755\"") && v.contains("\"1777\""),
        "kept (issue 16 sweep): a tmpfs over an existing directory: runc 1.1.5 chmods it to the \
         directory's mode (even over an explicit mode=), vsrun keeps the kernel's 1777 or the \
         config's mode="),
    allow!("*", "probe.stat /tmp", |r, v| r.contains("\"1777\"") && v.contains("\"755\""),
        "kept (issue 16 sweep): the spec example's tmpfs on /tmp asks mode=755: vsrun applies it, \
         runc 1.1.5 chmods it back to the directory's 1777"),
    // startContainer hooks without env get vsrun's environment, as every other hook.
    allow!("*", "hook.startContainer[*].env", any,
        "kept (issue 16 sweep): a startContainer hook without env gets the container process's \
         environment from runc 1.1.5 (its init's), vsrun's own from vsrun"),
    // poststop state carries the dead init's pid.
    allow!("*", "hook.poststop[*].stdin.pid", |r, v| r == "<absent>" && v == "<init pid>",
        "kept (issue 16 sweep): state.md makes pid REQUIRED only while created or running; runc \
         1.1.5 omits it for poststop, vsrun passes the dead init's pid"),
];

fn sweep_allowed(case: &str, key: &str, runc: &str, vsrun: &str) -> Option<&'static str> {
    SWEEP_ALLOWED
        .iter()
        .find(|a| glob(a.case, case) && glob(a.key, key) && (a.when)(runc, vsrun))
        .map(|a| a.why)
        .or_else(|| {
            ALLOWED
                .iter()
                .find(|a| glob(a.key, key) && a.cases.is_empty() && (a.when)(runc, vsrun))
                .map(|a| a.why)
        })
}

// ---------------------------------------------------------------------------------------------
// One runtime on one case

struct Job {
    dir: tempfile::TempDir,
    id: String,
    cg: String,
    config: Value,
    hooks: Vec<(String, usize)>,
}

impl Subject for Job {
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn config(&self) -> &Value {
        &self.config
    }
    fn hooks(&self) -> &[(String, usize)] {
        &self.hooks
    }
}

/// The result of one runtime on one case: facts, plus why it failed (not compared).
struct Outcome {
    facts: Facts,
    failure: Option<String>,
}

fn replace_strings(v: &mut Value, subs: &[(&str, &str)]) {
    match v {
        Value::String(s) => {
            for (a, b) in subs {
                if s.contains(a) {
                    *s = s.replace(a, b);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| replace_strings(x, subs)),
        Value::Object(m) => m.values_mut().for_each(|x| replace_strings(x, subs)),
        _ => {}
    }
}

/// The bundle directory: the base rootfs, bind sources, and a hooks directory reachable from
/// inside (rootfs/hooks) and outside (hooks).
fn bundle_dir(n: usize, which: Which) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("vsrun-sweep-{n}-{}-", which.name()))
        .tempdir()
        .expect("bundle temp dir");
    // 0755, so a user namespace's root can reach its rootfs (the 0700 case is its own test).
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(base_rootfs())
        .arg(dir.path().join("rootfs"))
        .status()
        .expect("cp -a");
    assert!(st.success(), "cp -a of the base rootfs failed");
    fs::create_dir_all(dir.path().join("src-dir")).unwrap();
    fs::write(dir.path().join("src-dir/marker"), "bind source dir\n").unwrap();
    fs::write(dir.path().join("src-file"), "bind source file\n").unwrap();
    let hooks_dir = dir.path().join("rootfs/hooks");
    fs::create_dir_all(&hooks_dir).unwrap();
    fs::set_permissions(&hooks_dir, fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::symlink("rootfs/hooks", dir.path().join("hooks")).unwrap();
    dir
}

fn prepare(case: &SweepCase, n: usize, which: Which) -> Job {
    let tag = format!("{}-{n}-{}", std::process::id(), which.name());
    let dir = bundle_dir(n, which);
    let mut config = default_config();
    config["linux"]["cgroupsPath"] = "/@CG".into();
    for e in &case.edits {
        e(&mut config);
    }
    let cg = format!("vsrun-sweep-{tag}");
    let bundle = dir.path().to_string_lossy().into_owned();
    replace_strings(&mut config, &[("@BUNDLE", &bundle), ("@CG", &cg)]);

    let hooks = write_hook_scripts(
        &mut config,
        &HookScripts {
            dir: &dir.path().join("rootfs/hooks"),
            in_container: Some("/hooks"),
            placeholders_only: true,
        },
    );

    // The probe, with actions on every path the config names, then sleep.
    if config["process"]["args"] == json!(["/probe"]) {
        let mut actions = actions_for(&config);
        for d in config["linux"]["devices"].as_array().into_iter().flatten() {
            if let Some(p) = d["path"].as_str() {
                push_action(&mut actions, "stat", p);
            }
        }
        push_action(&mut actions, "ls", "/");
        config["process"]["args"] = json!(probe_args(&actions, true));
    }
    fs::write(
        dir.path().join("config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
    Job {
        dir,
        id: format!("sweep-{tag}"),
        cg,
        config,
        hooks,
    }
}

fn norm(job: &Job, rt: &Rt) -> Norm {
    Norm::new(vec![
        (job.path().to_string_lossy().into_owned(), "<bundle>".into()),
        (
            rt.root.path().to_string_lossy().into_owned(),
            "<root>".into(),
        ),
        (rt.io.path().to_string_lossy().into_owned(), "<io>".into()),
        (job.id.clone(), "<id>".into()),
        (job.cg.clone(), "<cg>".into()),
    ])
}

fn run_job(case: &SweepCase, n: usize, which: Which) -> Outcome {
    let rt = Rt::new(which);
    let job = prepare(case, n, which);
    let norm = norm(&job, &rt);
    let mut facts = Facts::new();
    let mut failure = None;
    let probe_expected = job.config["process"]["args"]
        .get(0)
        .map(|a| a == "/probe")
        .unwrap_or(false);
    match start_container(&rt, &job) {
        Err(f) => {
            facts.insert("outcome".into(), "fails".into());
            failure = Some(format!("{}: {}", f.step, f.detail));
        }
        Ok(c) => {
            facts.insert("outcome".into(), "ok".into());
            if probe_expected {
                failure = probe_facts(&job, &c, &norm, &mut facts).err();
            }
            // A program other than the probe may be exiting right now: its host view and
            // `state` would race with it, so only the probe's (which sleeps) are compared.
            if probe_expected && pid_alive(c.pid) {
                proc_facts(c.pid, "host.", &mut facts);
                cgroup_facts(c.pid, &norm, "host.", &mut facts);
                state_facts(&rt, &job, c.pid, &norm, &mut facts);
            }
            let pid = c.pid;
            stop_container(c, &mut facts);
            hook_facts(&job, pid, &norm, &mut facts);
        }
    }
    // Without a pid namespace the probe's pid is a host pid, different by nature.
    if let Some(p) = facts.get_mut("probe.pid") {
        if p != "1" {
            *p = "<a host pid>".into();
        }
    }
    left_facts(&rt, &job, &norm, &mut facts);
    cleanup(&rt, &job);
    Outcome { facts, failure }
}

/// The probe's report and one fact per action (report + one line per action before `sleep`,
/// the last `--`); Err says why there was no output.
fn probe_facts(job: &Job, c: &Running<'_>, norm: &Norm, facts: &mut Facts) -> Result<(), String> {
    let args = job.config["process"]["args"].as_array();
    let n_actions = args.map_or(0, |a| a.iter().filter(|x| *x == "--").count());
    let lines = wait_lines(&c.output, n_actions, Some(c.pid)).map_err(|e| {
        let kind = if e.contains("died") {
            "died"
        } else {
            "timed out"
        };
        facts.insert("probe.output".into(), format!("none ({kind})"));
        format!("probe output: {e}")
    })?;
    report_facts(&lines[0], norm, None, None, "probe.", facts);
    let args: Vec<String> = args.unwrap().iter().map(compact).collect();
    let acts: Vec<String> = args
        .split(|a| a == "--")
        .skip(1)
        .map(|a| format!("{} {}", a[0], a.get(1).cloned().unwrap_or_default()))
        .collect();
    for (a, r) in acts.iter().zip(&lines[1..]) {
        facts.insert(format!("probe.{a}"), action_fact(r, norm));
    }
    Ok(())
}

/// What the host is left with, whether it worked or not: mounts, state entries, cgroups.
fn left_facts(rt: &Rt, job: &Job, norm: &Norm, facts: &mut Facts) {
    let left: Vec<String> = mounts_under(job.path()).iter().map(|m| norm.s(m)).collect();
    facts.insert("host.left.mounts".into(), left.join(" "));
    let states: Vec<String> = fs::read_dir(rt.root.path())
        .map(|rd| {
            rd.flatten()
                .map(|e| norm.s(&e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default();
    facts.insert("host.left.state".into(), states.join(" "));
    let cg_left: Vec<String> = cgroup_mounts()
        .into_iter()
        .filter(|(_, mp)| {
            Path::new(mp).join(&job.cg).exists() || Path::new(mp).join(&job.id).exists()
        })
        .map(|(c, _)| c)
        .collect();
    facts.insert("host.left.cgroups".into(), cg_left.join(" "));
}

/// Force-delete, detach whatever is still mounted under the bundle (in this worker's private
/// mount namespace only), rmdir the run's cgroup dirs, and remove the bundle only when nothing
/// is mounted under it any more.
fn cleanup(rt: &Rt, job: &Job) {
    let _ = rt.run(job.path(), &["delete", "--force", &job.id], None);
    for _ in 0..3 {
        let mut left = mounts_under(job.path());
        if left.is_empty() {
            break;
        }
        left.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in left {
            let c = std::ffi::CString::new(m).unwrap();
            // SAFETY: umount2 on a path string; the worker is in a private mount namespace.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
    remove_cgroup_top(&job.cg);
    for (_, mp) in cgroup_mounts() {
        for d in [format!("{mp}/vsrun/{}", job.id), format!("{mp}/{}", job.id)] {
            let _ = fs::remove_dir(d);
        }
    }
    if !mounts_under(job.path()).is_empty() {
        eprintln!("sweep: {} still has mounts; kept", job.path().display());
        std::mem::forget(job.dir.path().to_path_buf());
    }
}

// ---------------------------------------------------------------------------------------------
// The driver

/// The calling thread gets its own mount namespace with "/" private: nothing a runtime mounts
/// from here (or changes the propagation of) reaches the host.
fn private_mount_namespace() {
    // SAFETY: unshare and mount with constant arguments, on this thread only.
    unsafe {
        assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare(CLONE_NEWNS)");
        assert_eq!(
            libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null()
            ),
            0,
            "make / rprivate"
        );
    }
}

/// Every (case, runtime) job on `threads` threads, each in a private mount namespace; a job
/// that panics is an outcome too ("harness panic").
fn run_all(
    all: &[SweepCase],
    jobs: &[(usize, Which)],
    threads: usize,
) -> BTreeMap<(usize, &'static str), Outcome> {
    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<(usize, &'static str), Outcome>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                private_mount_namespace();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(i, which)) = jobs.get(k) else {
                        break;
                    };
                    let case = &all[i];
                    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_job(case, i, which)
                    }))
                    .unwrap_or_else(panic_outcome);
                    results.lock().unwrap().insert((i, which.name()), out);
                }
            });
        }
    });
    results.into_inner().unwrap()
}

fn panic_outcome(p: Box<dyn std::any::Any + Send>) -> Outcome {
    let msg = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let mut facts = Facts::new();
    facts.insert("outcome".into(), "harness panic".into());
    Outcome {
        facts,
        failure: Some(msg),
    }
}

/// One case's runc and vsrun outcomes compared: the line describing the real differences (if
/// any) and the number of tolerated ones.
fn compare(case: &SweepCase, r: &Outcome, v: &Outcome) -> (Option<String>, usize) {
    if std::env::var_os("DIFF_DUMP").is_some() {
        for (k, x) in &r.facts {
            eprintln!("{} runc  {k} = {}", case.name, short(x));
        }
        for (k, x) in &v.facts {
            eprintln!("{} vsrun {k} = {}", case.name, short(x));
        }
    }
    // Unless both ran: only the outcome and what is left on the host are compared.
    let both_failed = r.facts["outcome"] != "ok" || v.facts["outcome"] != "ok";
    let pick = |f: &Facts| -> Facts {
        if both_failed {
            f.iter()
                .filter(|(k, _)| *k == "outcome" || k.starts_with("host.left."))
                .map(|(k, x)| (k.clone(), x.clone()))
                .collect()
        } else {
            f.clone()
        }
    };
    let (real, tolerated) = diff_facts(&pick(&r.facts), &pick(&v.facts), |k, a, b| {
        sweep_allowed(&case.name, k, a, b)
    });
    if real.is_empty() {
        return (None, tolerated.len());
    }
    let keys: Vec<String> = real.iter().map(|l| one_line(l)).collect();
    let why = |who: &str, o: &Outcome| {
        if o.facts["outcome"] == "ok" {
            return String::new();
        }
        let f = o.failure.as_deref().map(|f| format!(" ({})", clip(f)));
        format!(" {who}{}", f.unwrap_or_default())
    };
    let line = format!(
        "{}: {}{}{}",
        case.name,
        keys.join("; "),
        why("runc", r),
        why("vsrun", v)
    );
    (Some(line), tolerated.len())
}

/// A `diff_facts` entry (key, runc line, vsrun line) on one line.
fn one_line(l: &str) -> String {
    let mut it = l.lines();
    let k = it.next().unwrap_or("").trim().to_string();
    let a = it
        .next()
        .unwrap_or("")
        .trim()
        .trim_start_matches("runc:")
        .trim();
    let b = it
        .next()
        .unwrap_or("")
        .trim()
        .trim_start_matches("vsrun:")
        .trim();
    format!("{k} [runc: {} | vsrun: {}]", clip(a), clip(b))
}

/// `SWEEP_SHARD=K/N` (K < N): the shard of the cases this run takes.
fn shard() -> Option<(usize, usize)> {
    let v = std::env::var("SWEEP_SHARD").ok()?;
    let (k, n) = v.split_once('/')?;
    let (k, n): (usize, usize) = (k.parse().ok()?, n.parse().ok()?);
    assert!(k < n, "SWEEP_SHARD={v}: K must be below N");
    Some((k, n))
}

#[test]
fn sweep_runc_and_vsrun_agree_on_generated_configs() {
    let t0 = Instant::now();
    let all = cases();
    let filter = std::env::var("SWEEP_FILTER").ok();
    let picked: Vec<(usize, &SweepCase)> = all
        .iter()
        .enumerate()
        .filter(|(_, c)| filter.as_ref().is_none_or(|f| c.name.contains(f.as_str())))
        .filter(|(i, _)| shard().is_none_or(|(k, n)| i % n == k))
        .collect();
    if let Some((k, n)) = shard() {
        println!(
            "SWEEP_SHARD {k}/{n}: {} of {} cases",
            picked.len(),
            all.len()
        );
    }
    let threads: usize = std::env::var("SWEEP_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    base_rootfs();
    let jobs: Vec<(usize, Which)> = picked
        .iter()
        .flat_map(|(i, _)| [(*i, Which::Runc), (*i, Which::Vsrun)])
        .collect();
    let results = run_all(&all, &jobs, threads);

    let mut real_cases = Vec::new();
    let (mut allowed_count, mut allowed_cases) = (0usize, 0usize);
    for (i, case) in &picked {
        let (real, tolerated) = compare(case, &results[&(*i, "runc")], &results[&(*i, "vsrun")]);
        allowed_count += tolerated;
        allowed_cases += usize::from(tolerated > 0);
        real_cases.extend(real);
    }
    let ok_both = picked
        .iter()
        .filter(|(i, _)| {
            results[&(*i, "runc")].facts["outcome"] == "ok"
                && results[&(*i, "vsrun")].facts["outcome"] == "ok"
        })
        .count();
    eprintln!(
        "sweep: {} configs ({} single edits, {} namespace subsets, {} pairs; {} run here), \
         {} ran under both, {} with allowed differences ({} facts), {} with differences, {:.1}s",
        all.len(),
        EDITS.len() + 1,
        SUBSETS.len(),
        PAIRS,
        picked.len(),
        ok_both,
        allowed_cases,
        allowed_count,
        real_cases.len(),
        t0.elapsed().as_secs_f64()
    );
    if !real_cases.is_empty() {
        panic!(
            "{} config(s) where runc and vsrun differ:\n{}",
            real_cases.len(),
            real_cases.join("\n")
        );
    }
}

fn clip(s: &str) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}

#[test]
fn sweep_has_at_least_300_distinct_configs() {
    let all = cases();
    let names: std::collections::BTreeSet<&str> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), all.len(), "case names must be unique");
    assert!(all.len() >= 300, "only {} configs", all.len());
}

#[test]
fn every_sweep_allow_list_entry_is_justified() {
    for a in SWEEP_ALLOWED {
        assert!(
            a.why.len() > 20,
            "allow-list entry {} {} needs a reason",
            a.case,
            a.key
        );
    }
}
