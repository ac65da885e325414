//! Rootless mode (issue 13): vsrun run by a plain user (`vsrun-rootless`, made by the harness
//! with its /etc/subuid and /etc/subgid ranges) on the config `vsrun spec --rootless` writes,
//! as runc 1.1.5 runs `runc spec --rootless`'s: uid 0 inside mapped to the user outside, no
//! cgroup of its own unless the user may make one, state under $XDG_RUNTIME_DIR/vsrun.

use spec_tests::serde_json::{self, json, Value};
use spec_tests::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `PROGRAM spec --rootless` run as the user in a fresh directory; the config it wrote.
fn spec_rootless_as(user: &TestUser, program: &Path) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    chown(dir.path(), user.uid, user.gid);
    let o = Command::new(program)
        .args(["spec", "--rootless"])
        .current_dir(dir.path())
        .uid(user.uid)
        .gid(user.gid)
        .env("HOME", &user.home)
        .stdin(Stdio::null())
        .output()
        .expect("run spec --rootless");
    assert_success(&o, &format!("{} spec --rootless", program.display()));
    let text = std::fs::read_to_string(dir.path().join("config.json")).expect("config.json");
    serde_json::from_str(&text).expect("config.json is JSON")
}

use std::os::unix::process::CommandExt;

/// A bundle owned by the user whose config is `vsrun spec --rootless`'s, run without a
/// terminal with /probe ARGS.
fn rootless_bundle(user: &TestUser, args: &[&str]) -> Bundle {
    let mut b = Bundle::new();
    b.config = spec_rootless_as(user, &vsrun_bin());
    b.config["process"]["terminal"] = false.into();
    let mut full = vec!["/probe"];
    full.extend_from_slice(args);
    b.set_args(&full);
    b.write();
    b.chown_to(user);
    b
}

fn user_runtime() -> (Runtime, &'static TestUser) {
    let user = rootless_user();
    (Runtime::as_user(user), user)
}

#[test]
fn spec_rootless_writes_what_runc_writes() {
    let user = rootless_user();
    let mut ours = spec_rootless_as(user, &vsrun_bin());
    let mut runcs = spec_rootless_as(user, Path::new("/usr/bin/runc"));
    // vsrun's documented differences: its own hostname and the spec version it implements.
    for v in [&mut ours, &mut runcs] {
        v["hostname"] = Value::Null;
        v["ociVersion"] = Value::Null;
    }
    assert_eq!(
        ours, runcs,
        "vsrun spec --rootless differs from runc spec --rootless"
    );
    assert_eq!(
        ours["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": user.uid, "size": 1}])
    );
}

#[test]
fn rootless_run_is_root_inside_and_the_user_outside() {
    let (rt, user) = user_runtime();
    let mut b = rootless_bundle(user, &[]);
    let d = rt.probe_detached(&mut b);
    assert_eq!(d.seen["euid"], 0, "{}", d.seen);
    assert_eq!(d.seen["uid_map"], json!([[0, user.uid, 1]]));
    assert_eq!(d.seen["gid_map"], json!([[0, user.gid, 1]]));
    let host_uid = proc_status_field(d.pid, "Uid").expect("Uid of the init");
    assert!(
        host_uid
            .split_whitespace()
            .all(|u| u == user.uid.to_string()),
        "the container's init is uid {host_uid:?} on the host, expected {}",
        user.uid
    );
    // The state lives in the user's root, and the user made no cgroup it could not.
    assert!(rt.state_dir(&d.id).join("state.json").is_file());
    assert!(
        cgroup_dirs_of(&d.id).iter().all(|dir| {
            std::fs::metadata(dir)
                .is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == user.uid)
        }),
        "cgroup dirs not the user's: {:?}",
        cgroup_dirs_of(&d.id)
    );
    assert_success(&rt.delete_force(&d.id), "delete --force");
    assert_nothing_left(&rt, &d.id);
}

#[test]
fn rootless_gid_map_of_the_user_alone_denies_setgroups() {
    let (rt, user) = user_runtime();
    let mut b = rootless_bundle(user, &[]);
    let seen = rt.probe(&mut b, &["read", "/proc/self/setgroups"]);
    assert_eq!(seen["data"].as_str().map(str::trim), Some("deny"), "{seen}");

    // Supplementary groups cannot be set there: refused by name, as runc refuses them.
    b.config["process"]["user"]["additionalGids"] = json!([0]);
    b.write();
    b.chown_to(user);
    let id = unique_id("rl-groups");
    let o = rt.run(&b, &id);
    assert_refused_naming(
        &o,
        &["process.user.additionalGids"],
        "additionalGids rootless",
    );
    assert_nothing_left(&rt, &id);
}

/// `--rootless` is rootless mode for the cgroups and the state root, as runc's flag is: root
/// with `--rootless true` still writes the id maps as root does, leaving setgroups allowed
/// even for a gid map of its own gid alone (where an unprivileged writer must deny it), as
/// runc 1.1.5 does; its cgroup steps are the rootless ones.
#[test]
fn rootless_flag_as_root_keeps_roots_id_maps() {
    let rt = Runtime::new().with_global(&["--rootless", "true"]);
    let mut b = Bundle::new();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(b.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    edit::userns(&mut b.config);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
    // gid 5 (tty) is not mapped: devpts takes the default gid, as in `spec --rootless`.
    for m in b.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev/pts" {
            m["options"]
                .as_array_mut()
                .unwrap()
                .retain(|o| o != "gid=5");
        }
    }
    let d = rt.probe_detached(&mut b);
    assert_eq!(d.seen["uid_map"], json!([[0, 100000, 65536]]), "{}", d.seen);
    assert_eq!(d.seen["gid_map"], json!([[0, 0, 1]]), "{}", d.seen);
    let setgroups = std::fs::read_to_string(format!("/proc/{}/setgroups", d.pid)).unwrap();
    assert_eq!(setgroups.trim(), "allow");
    assert_eq!(
        state_rootless(&rt, &d.id),
        Some(true),
        "the cgroup steps are rootless"
    );
    assert_success(&rt.delete_force(&d.id), "delete --force");
    assert_nothing_left(&rt, &d.id);
}

fn state_rootless(rt: &Runtime, id: &str) -> Option<bool> {
    let text = std::fs::read_to_string(rt.state_dir(id).join("state.json")).ok()?;
    serde_json::from_str::<Value>(&text).ok()?["rootless"].as_bool()
}

#[test]
fn rootless_subordinate_ids_are_mapped_with_newuidmap() {
    let (rt, user) = user_runtime();
    let mut b = rootless_bundle(user, &[]);
    b.config["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": user.uid, "size": 1},
        {"containerID": 1, "hostID": user.subuid.0, "size": 1000}
    ]);
    b.config["linux"]["gidMappings"] = json!([
        {"containerID": 0, "hostID": user.gid, "size": 1},
        {"containerID": 1, "hostID": user.subgid.0, "size": 1000}
    ]);
    b.config["process"]["user"] = json!({"uid": 7, "gid": 7, "additionalGids": [8]});
    b.write();
    b.chown_to(user);
    let seen = rt.probe(&mut b, &[]);
    assert_eq!(
        seen["uid_map"],
        json!([[0, user.uid, 1], [1, user.subuid.0, 1000]])
    );
    assert_eq!(
        seen["gid_map"],
        json!([[0, user.gid, 1], [1, user.subgid.0, 1000]])
    );
    assert_eq!(seen["euid"], 7);
    assert_eq!(seen["groups"], json!([8]), "{seen}");
}

#[test]
fn rootless_create_start_state_kill_delete() {
    let (rt, user) = user_runtime();
    let b = rootless_bundle(user, &["sleep", "1000"]);
    let id = unique_id("rl-life");
    assert_success(&rt.create(&b, &id), "create as the user");
    let st = rt.state(&id);
    assert_eq!(st["status"], "created", "{st}");
    rt.start(&id);
    rt.wait_status(&id, "running", Duration::from_secs(10));
    let o = rt.cmd(&["list", "-q"]);
    assert!(
        stdout_str(&o).lines().any(|l| l == id),
        "list -q: {}",
        output_text(&o)
    );
    assert_success(&rt.cmd(&["kill", &id, "KILL"]), "kill as the user");
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    assert_success(&rt.cmd(&["delete", &id]), "delete as the user");
    assert_nothing_left(&rt, &id);
}

/// A plain user may not change its exe link (PR_SET_MM_MAP wants CAP_SYS_ADMIN), so a rootless
/// vsrun seals itself by re-executing from the read-only view (security/sealed_exe.rs): the
/// created init's exe link is on a read-only mount, and its data segment is a private mapping
/// of that file, which only a second start makes.
#[test]
fn rootless_seal_falls_back_to_a_second_start() {
    let (rt, user) = user_runtime();
    let b = rootless_bundle(user, &["sleep", "30"]);
    let id = unique_id("rl-seal");
    assert_success(&rt.create(&b, &id), "create as the user");
    let pid = rt.state(&id)["pid"].as_i64().expect("pid") as i32;
    let (ro, perms) = vsrun_image_of(pid);
    assert_success(&rt.delete_force(&id), "delete --force");
    assert!(
        ro,
        "the rootless init's exe link is on a writable mount: {perms:?}"
    );
    assert!(
        perms.iter().any(|p| p.contains('w')),
        "no writable file mapping: the rootless seal did not re-execute: {perms:?}"
    );
}

#[test]
fn rootless_exec_joins_as_the_user() {
    let (rt, user) = user_runtime();
    let mut b = rootless_bundle(user, &[]);
    let d = rt.probe_detached(&mut b);
    let o = rt.cmd(&["exec", &d.id, "/probe"]);
    assert_success(&o, "exec as the user");
    let seen: Value = serde_json::from_slice(&o.stdout).expect("probe JSON");
    assert_eq!(seen["euid"], 0);
    assert_eq!(seen["uid_map"], json!([[0, user.uid, 1]]));
    assert_eq!(seen["hostname"], d.seen["hostname"]);
    assert_success(&rt.delete_force(&d.id), "delete --force");
    assert_nothing_left(&rt, &d.id);
}

#[test]
fn rootless_resources_the_user_cannot_apply_are_refused_by_name() {
    let (rt, user) = user_runtime();
    for (field, resources) in [
        ("linux.resources.pids.limit", json!({"pids": {"limit": 10}})),
        (
            "linux.resources.memory.limit",
            json!({"memory": {"limit": 100_000_000}}),
        ),
    ] {
        let mut b = rootless_bundle(user, &[]);
        b.config["linux"]["resources"] = resources;
        b.write();
        b.chown_to(user);
        let id = unique_id("rl-res");
        let o = rt.run(&b, &id);
        assert_refused_naming(&o, &[field, "rootless"], field);
        assert_nothing_left(&rt, &id);
        assert!(cgroup_dirs_of(&id).is_empty(), "{:?}", cgroup_dirs_of(&id));
    }
    // A device list alone (what engines send) asks for no limit the user would lose.
    let mut b = rootless_bundle(user, &[]);
    b.config["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    b.write();
    b.chown_to(user);
    let seen = rt.probe(&mut b, &[]);
    assert_eq!(seen["euid"], 0);
}

#[test]
fn rootless_default_root_is_under_xdg_runtime_dir() {
    let (rt, user) = user_runtime();
    let b = rootless_bundle(user, &[]);
    let xdg = rt.xdg_runtime_dir().expect("xdg").to_path_buf();
    let id = unique_id("rl-xdg");
    // No --root: vsrun's rootless default.
    let run = |c: &mut Command| {
        rt.as_runtime_user(c);
        c.stdin(Stdio::null()).output().expect("run vsrun")
    };
    let o = run(Command::new(vsrun_bin()).args(["run", "-d", "--bundle", b.path_str(), &id]));
    assert_success(&o, "run -d without --root");
    assert!(
        xdg.join("vsrun").join(&id).join("state.json").is_file(),
        "no state under $XDG_RUNTIME_DIR/vsrun"
    );
    let o = run(Command::new(vsrun_bin()).args(["delete", "--force", &id]));
    assert_success(&o, "delete --force without --root");
    assert!(!xdg.join("vsrun").join(&id).exists());

    // Neither XDG_RUNTIME_DIR nor a writable /run/vsrun: one clear error naming --root.
    let mut c = Command::new(vsrun_bin());
    c.args(["list"]);
    rt.as_runtime_user(&mut c);
    c.env_remove("XDG_RUNTIME_DIR");
    let o = c.stdin(Stdio::null()).output().expect("run vsrun list");
    assert_refused_naming(
        &o,
        &["--root", "XDG_RUNTIME_DIR"],
        "list without a usable root",
    );
}

/// config-linux.md "Namespaces": a path joins that namespace. A plain user has no rights in
/// another rootless container's namespaces until it is in that container's user namespace,
/// so vsrun joins the user namespace first and the others from inside it, as runc does. The
/// pid namespace is never entered by the init; the joiner's /proc is for the owner's pid
/// namespace on every kernel (context/pidns_proc.rs; before issue 12 it needed 6.15's proc
/// `pidns` option and was refused on older kernels).
#[test]
fn rootless_create_joins_another_containers_namespaces_by_path() {
    let (rt, user) = user_runtime();
    let mut a = rootless_bundle(user, &[]);
    a.config["hostname"] = json!("rl-owner");
    // `spec --rootless` keeps the host's network namespace: the owner gets one of its own.
    a.set_namespace("network", None);
    a.write();
    a.chown_to(user);
    let owner = rt.probe_detached(&mut a);

    let mut b = rootless_bundle(user, &[]);
    let ns_path = |ns: &str| format!("/proc/{}/ns/{ns}", owner.pid);
    b.config["linux"]["namespaces"] = json!([
        {"type": "user", "path": ns_path("user")},
        {"type": "network", "path": ns_path("net")},
        {"type": "ipc", "path": ns_path("ipc")},
        {"type": "uts", "path": ns_path("uts")},
        {"type": "pid", "path": ns_path("pid")},
        {"type": "mount"},
    ]);
    // The joined user namespace has its maps already, and the hostname is the owner's.
    for k in ["uidMappings", "gidMappings"] {
        b.config["linux"].as_object_mut().unwrap().remove(k);
    }
    b.config.as_object_mut().unwrap().remove("hostname");
    b.write();
    b.chown_to(user);
    let joiner = rt.probe_detached(&mut b);
    for ns in ["user", "net", "ipc", "uts", "pid"] {
        assert_eq!(
            joiner.seen["ns"][ns].as_u64(),
            Some(ns_inode(&owner.pid.to_string(), ns)),
            "{ns}: not the owner's namespace"
        );
        assert_eq!(
            ns_inode(&joiner.pid.to_string(), ns),
            ns_inode(&owner.pid.to_string(), ns),
            "host view of {ns}"
        );
    }
    assert_ne!(
        ns_inode(&joiner.pid.to_string(), "mnt"),
        ns_inode(&owner.pid.to_string(), "mnt"),
        "mount: listed without a path, so a new one"
    );
    assert_eq!(joiner.seen["hostname"], "rl-owner", "{}", joiner.seen);
    assert_eq!(joiner.seen["euid"], 0);
    assert_eq!(joiner.seen["uid_map"], json!([[0, user.uid, 1]]));
    assert_eq!(proc_uid(joiner.pid), Some(user.uid));
    assert_success(&rt.delete_force(&joiner.id), "delete --force the joiner");
    assert_nothing_left(&rt, &joiner.id);
    assert!(
        std::path::Path::new(&format!("/proc/{}", owner.pid)).exists(),
        "deleting the joiner ended the owner"
    );
    assert_success(&rt.delete_force(&owner.id), "delete --force the owner");
    assert_nothing_left(&rt, &owner.id);
}

/// Rootless podman runs the runtime as uid 0 of its own user namespace (the user and its
/// subordinate ids), where `--userns keep-id` asks for a map that swaps 0 and the user's id.
/// vsrun holds CAP_SETUID there and writes such a map itself, as runc does; newuidmap, which
/// checks the host's /etc/subuid, would refuse it.
#[test]
fn rootless_in_a_user_namespace_writes_maps_it_may_write_itself() {
    let user = rootless_user();
    let (sub, count) = (user.subuid.0, user.subuid.1.min(user.subgid.1));
    let mut b = rootless_bundle(user, &[]);
    let swap = json!([
        {"containerID": 0, "hostID": 1000, "size": 1},
        {"containerID": 1000, "hostID": 0, "size": 1},
        {"containerID": 1, "hostID": 1, "size": 999}
    ]);
    b.config["linux"]["uidMappings"] = swap.clone();
    b.config["linux"]["gidMappings"] = swap;
    b.write();
    // uid 0 of the outer namespace is the user's first subordinate id on the host.
    let root = tempfile::tempdir().expect("state dir");
    for p in [b.path(), root.path()] {
        let st = Command::new("chown")
            .args(["-R", &format!("{sub}:{}", user.subgid.0)])
            .arg(p)
            .status()
            .expect("chown -R");
        assert!(st.success());
    }
    let id = unique_id("rl-inns");
    let o = Command::new("unshare")
        .arg(format!("--map-users={sub},0,{count}"))
        .arg(format!("--map-groups={},0,{count}", user.subgid.0))
        .args(["--setuid", "0", "--setgid", "0", "--"])
        .arg(vsrun_bin())
        .arg("--root")
        .arg(root.path())
        .args(["run", "--bundle", b.path_str(), &id])
        .uid(user.uid)
        .gid(user.gid)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .output()
        .expect("run unshare");
    assert_success(&o, "vsrun run as uid 0 of the user's namespace");
    let seen: Value = serde_json::from_slice(&o.stdout).expect("probe JSON");
    assert_eq!(
        seen["uid_map"],
        json!([[0, 1000, 1], [1000, 0, 1], [1, 1, 999]])
    );
    assert_eq!(
        seen["gid_map"],
        json!([[0, 1000, 1], [1000, 0, 1], [1, 1, 999]])
    );
    assert_eq!(seen["euid"], 0, "{seen}");
    assert!(
        !root.path().join(&id).exists(),
        "state left behind after run"
    );
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

fn cgroup_v2() -> bool {
    host_mounts()
        .iter()
        .any(|m| m.mount_point == CGROUP_ROOT && m.fs_type == "cgroup2")
}

/// A cgroup subtree delegated to the user, made by root as systemd's `Delegate=yes` does:
/// `<top>/user` is the user's (on v2 the directory and its cgroup.procs, cgroup.subtree_control
/// and cgroup.threads; on v1 the directory and its files, in the pids and memory hierarchies
/// only), below a `<top>` that stays root's. Removed, deepest first, when dropped.
struct Delegated {
    /// Host directories of `<top>`, one per hierarchy.
    tops: Vec<std::path::PathBuf>,
    /// `<top>/user/runner`: where vsrun starts on v2 (a process may only move between cgroups
    /// below one whose cgroup.procs it may write: the user's subtree, as under systemd).
    runner: Option<std::path::PathBuf>,
    /// The cgroup path (below each hierarchy's root) of the delegated directory.
    rel: String,
}

impl Delegated {
    fn new(user: &TestUser) -> Delegated {
        let top = unique_id("vsrun-deleg");
        let rel = format!("/{top}/user");
        let owned = |dir: &Path, files: &[&str]| {
            std::fs::create_dir_all(dir).expect("mkdir delegated cgroup");
            chown(dir, user.uid, user.gid);
            for f in files {
                chown(&dir.join(f), user.uid, user.gid);
            }
        };
        if cgroup_v2() {
            let t = Path::new(CGROUP_ROOT).join(&top);
            std::fs::create_dir(&t).expect("mkdir top");
            std::fs::write(t.join("cgroup.subtree_control"), "+pids +memory")
                .expect("enable pids and memory below the top");
            let user_dir = t.join("user");
            owned(
                &user_dir,
                &["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"],
            );
            let runner = user_dir.join("runner");
            std::fs::create_dir(&runner).expect("mkdir runner");
            chown(&runner, user.uid, user.gid);
            chown(&runner.join("cgroup.procs"), user.uid, user.gid);
            return Delegated {
                tops: vec![t],
                runner: Some(runner),
                rel,
            };
        }
        let mut tops = Vec::new();
        for h in ["pids", "memory"] {
            let t = Path::new(CGROUP_ROOT).join(h).join(&top);
            let user_dir = t.join("user");
            std::fs::create_dir_all(&user_dir).expect("mkdir delegated cgroup");
            let files: Vec<String> = std::fs::read_dir(&user_dir)
                .expect("list cgroup files")
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            owned(
                &user_dir,
                &files.iter().map(String::as_str).collect::<Vec<_>>(),
            );
            tops.push(t);
        }
        Delegated {
            tops,
            runner: None,
            rel,
        }
    }

    /// The host file `file` of the container cgroup `rel` in the hierarchy of `controller`.
    fn file(&self, controller: &str, rel: &str, file: &str) -> std::path::PathBuf {
        let base = if cgroup_v2() {
            Path::new(CGROUP_ROOT).to_path_buf()
        } else {
            Path::new(CGROUP_ROOT).join(controller)
        };
        base.join(rel.trim_start_matches('/')).join(file)
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for t in &self.tops {
            let mut dirs: Vec<_> = walk_dirs(t);
            dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            for d in dirs {
                let _ = std::fs::remove_dir(&d);
            }
        }
    }
}

fn walk_dirs(top: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![top.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(rd) = std::fs::read_dir(&out[i]) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    out.push(e.path());
                }
            }
        }
        i += 1;
    }
    out
}

/// `vsrun create` as the user, started in `runner` when there is one: root moves the shell
/// there (writing its own pid), which then becomes the user and execs vsrun.
fn create_as_user_in(
    rt: &Runtime,
    user: &TestUser,
    b: &Bundle,
    id: &str,
    runner: Option<&Path>,
) -> std::process::Output {
    let Some(runner) = runner else {
        return rt.create(b, id);
    };
    let err = tempfile::NamedTempFile::new().expect("stderr file");
    let status = Command::new("/bin/sh")
        .args([
            "-c",
            r#"echo 0 >"$0/cgroup.procs" && exec setpriv --reuid="$1" --regid="$2" --clear-groups -- "$3" --root "$4" create --bundle "$5" "$6""#,
        ])
        .arg(runner)
        .args([user.uid.to_string(), user.gid.to_string()])
        .arg(vsrun_bin())
        .arg(rt.root())
        .args([b.path_str(), id])
        .env("HOME", &user.home)
        .env("USER", &user.name)
        .env("XDG_RUNTIME_DIR", rt.xdg_runtime_dir().expect("xdg"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err.reopen().expect("reopen stderr file"))
        .status()
        .expect("run vsrun create in the runner cgroup");
    std::process::Output {
        status,
        stdout: Vec::new(),
        stderr: std::fs::read(err.path()).unwrap_or_default(),
    }
}

/// A cgroup the user owns (systemd's Delegate=) takes the container's limits: its
/// `linux.cgroupsPath` lies inside the delegated directory, vsrun makes the container's cgroup
/// there and writes `pids.limit` and `memory.limit` to it; the host reads them back.
/// Hierarchies the user owns nothing in (the devices one on v1) are left alone.
#[test]
fn rootless_limits_apply_in_a_cgroup_the_user_owns() {
    let (rt, user) = user_runtime();
    let deleg = Delegated::new(user);
    let mut b = rootless_bundle(user, &["sleep", "1000"]);
    let cg = format!("{}/c1", deleg.rel);
    b.config["linux"]["cgroupsPath"] = json!(cg);
    b.config["linux"]["resources"] = json!({
        "pids": {"limit": 42},
        "memory": {"limit": 104_857_600}
    });
    b.write();
    b.chown_to(user);
    let id = unique_id("rl-deleg");
    let o = create_as_user_in(&rt, user, &b, &id, deleg.runner.as_deref());
    assert_success(&o, "create in the delegated cgroup");
    let read = |c: &str, f: &str| {
        std::fs::read_to_string(deleg.file(c, &cg, f))
            .unwrap_or_else(|e| format!("<{e}>"))
            .trim()
            .to_string()
    };
    assert_eq!(read("pids", "pids.max"), "42");
    let mem = if cgroup_v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    assert_eq!(read("memory", mem), "104857600");
    let pid = rt.state(&id)["pid"].as_i64().expect("pid") as i32;
    let procs = read("pids", "cgroup.procs");
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "init {pid} is not in {cg}: cgroup.procs {procs:?}"
    );
    stats_read_the_hierarchies_it_has(&rt, &id);
    // A state file written before State.rootless existed: the later commands still take the
    // rootless reads (the field defaults to what `--rootless auto` says for its maker).
    let state = rt.root().join(&id).join("state.json");
    let mut st: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(st["rootless"], true, "state.json records the mode: {st}");
    st.as_object_mut().unwrap().remove("rootless");
    std::fs::write(&state, serde_json::to_vec(&st).unwrap()).unwrap();
    stats_read_the_hierarchies_it_has(&rt, &id);
    assert_success(&rt.cmd(&["ps", &id]), "ps with an older state file");
    assert_success(&rt.delete_force(&id), "delete --force");
    assert_nothing_left(&rt, &id);
    assert!(
        !deleg.file("pids", &cg, "").exists(),
        "the container's cgroup {cg} is left behind"
    );
    if cgroup_v2() {
        default_cgroup_is_in_the_delegated_subtree(&rt, user, &deleg);
    }
}

/// `events --stats` as the user: v1 reads the hierarchies the container has (pids, memory;
/// not cpuacct, which the user does not own here), as runc does; libcgroups alone fails.
fn stats_read_the_hierarchies_it_has(rt: &Runtime, id: &str) {
    let o = rt.cmd(&["events", "--stats", id]);
    assert_success(&o, "events --stats in the delegated cgroup");
    let ev: Value = serde_json::from_slice(&o.stdout).expect("events --stats JSON");
    let data = &ev["data"];
    assert_eq!(data["pids"]["current"], 1, "pids.current: {ev}");
    assert_eq!(data["pids"]["limit"], 42, "pids.limit: {ev}");
    assert_eq!(
        data["memory"]["usage"]["limit"], 104_857_600_u64,
        "memory limit: {ev}"
    );
    assert!(
        data["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "memory usage: {ev}"
    );
}

/// Pure v2, no `linux.cgroupsPath`: the container goes to `<delegated subtree>/vsrun/<id>`,
/// the subtree being the highest cgroup above vsrun's own that the user owns.
fn default_cgroup_is_in_the_delegated_subtree(rt: &Runtime, user: &TestUser, deleg: &Delegated) {
    let mut b = rootless_bundle(user, &["sleep", "1000"]);
    b.config["linux"]["resources"] = json!({"pids": {"limit": 43}});
    b.write();
    b.chown_to(user);
    let id = unique_id("rl-deleg-default");
    let o = create_as_user_in(rt, user, &b, &id, deleg.runner.as_deref());
    assert_success(&o, "create without cgroupsPath in the delegated subtree");
    let cg = format!("{}/vsrun/{id}", deleg.rel);
    let pid = rt.state(&id)["pid"].as_i64().expect("pid");
    let seen = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    assert_eq!(seen.trim(), format!("0::{cg}"), "the init's cgroup");
    let max = std::fs::read_to_string(deleg.file("pids", &cg, "pids.max")).unwrap_or_default();
    assert_eq!(max.trim(), "43");
    assert_success(&rt.delete_force(&id), "delete --force");
    assert_nothing_left(rt, &id);
    assert!(!deleg.file("pids", &cg, "").exists(), "{cg} left behind");
}
