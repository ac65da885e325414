//! Plan validation: every config error names its JSON field.

use super::*;

fn spec(json: serde_json::Value) -> Spec {
    let mut base = serde_json::json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "linux": {}
    });
    if let (Some(b), Some(j)) = (base.as_object_mut(), json.as_object()) {
        for (k, v) in j {
            b.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(base).unwrap()
}

fn try_plan(json: serde_json::Value) -> Result<Plan> {
    plan(
        &spec(json),
        Path::new("/tmp/rootfs"),
        PlanOptions {
            no_pivot: false,
            userns: false,
            shared_mount_ns: false,
        },
    )
}

fn err(json: serde_json::Value) -> String {
    match try_plan(json) {
        Ok(_) => panic!("plan accepted a bad config"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn mount_destination_must_be_absolute() {
    let e = err(serde_json::json!({"mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "x", "type": "tmpfs", "source": "tmpfs"}
    ]}));
    assert_eq!(e, r#"mounts[1].destination: "x" must be absolute"#);
}

#[test]
fn mount_destination_is_cleaned_lexically() {
    let p = try_plan(serde_json::json!({"mounts": [
        {"destination": "/../../tmp/./x/", "type": "tmpfs", "source": "tmpfs"}
    ]}))
    .unwrap();
    assert_eq!(p.mounts[0].dest, PathBuf::from("tmp/x"));
}

#[test]
fn root_cannot_be_a_mount_destination() {
    let e = err(serde_json::json!({"mounts": [{"destination": "/..", "type": "tmpfs"}]}));
    assert!(e.starts_with("mounts[0].destination: "), "{e}");
}

#[test]
fn unknown_option_becomes_data_and_unknown_type_is_kept() {
    let p = try_plan(serde_json::json!({"mounts": [
        {"destination": "/x", "type": "weirdfs", "source": "s", "options": ["nosuid", "bogus", "mode=755"]}
    ]}))
    .unwrap();
    assert_eq!(p.mounts[0].opts.data, vec!["bogus", "mode=755"]);
    assert!(matches!(&p.mounts[0].kind, MountKind::Fs { fstype, .. } if fstype == "weirdfs"));
}

#[test]
fn idmap_without_mappings_needs_a_user_namespace() {
    let e = err(serde_json::json!({"mounts": [
        {"destination": "/x", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"]}
    ]}));
    assert!(e.starts_with("mounts[0].options: "), "{e}");
    assert!(e.contains("user namespace"), "{e}");
}

#[test]
fn idmap_needs_a_bind_mount() {
    let e = err(serde_json::json!({"mounts": [
        {"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["ridmap"]}
    ]}));
    assert!(e.starts_with("mounts[0].options: "), "{e}");
    let map = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let e = err(serde_json::json!({"mounts": [
        {"destination": "/x", "type": "tmpfs", "source": "tmpfs",
         "uidMappings": map, "gidMappings": map}
    ]}));
    assert!(e.starts_with("mounts[0].uidMappings: "), "{e}");
}

#[test]
fn mount_mappings_go_in_pairs() {
    let map = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let e = err(serde_json::json!({"mounts": [
        {"destination": "/x", "type": "bind", "source": "/tmp", "options": ["bind", "idmap"],
         "uidMappings": map}
    ]}));
    assert!(e.starts_with("mounts[0].gidMappings: "), "{e}");
}

#[test]
fn bind_is_chosen_by_type_or_option() {
    let p = try_plan(serde_json::json!({"mounts": [
        {"destination": "/a", "type": "bind", "source": "/tmp"},
        {"destination": "/b", "type": "none", "source": "/tmp", "options": ["rbind"]},
        {"destination": "/c", "source": "/tmp", "options": ["bind"]}
    ]}))
    .unwrap();
    for m in &p.mounts {
        assert!(matches!(m.kind, MountKind::Bind { .. }));
    }
    assert!(!p.mounts[0].opts.recursive_bind());
    assert!(p.mounts[1].opts.recursive_bind());
}

#[test]
fn bind_needs_a_source_and_fs_needs_a_type() {
    let e = err(serde_json::json!({"mounts": [{"destination": "/a", "type": "bind"}]}));
    assert_eq!(e, "mounts[0].source: a bind mount needs a source");
    let e = err(serde_json::json!({"mounts": [{"destination": "/a", "source": "x"}]}));
    assert_eq!(
        e,
        "mounts[0].type: required unless the mount is a bind mount"
    );
}

#[test]
fn mounts_inside_proc_are_refused_except_the_lxcfs_files() {
    let e = err(serde_json::json!({"mounts": [{"destination": "/proc/sys", "type": "tmpfs"}]}));
    assert!(e.starts_with("mounts[0].destination: "), "{e}");
    let e = err(serde_json::json!({"mounts": [{"destination": "/proc", "type": "tmpfs"}]}));
    assert!(e.starts_with("mounts[0].destination: "), "{e}");
    try_plan(serde_json::json!({"mounts": [
        {"destination": "/proc", "type": "proc"},
        {"destination": "/proc/meminfo", "type": "bind", "source": "/tmp/x"}
    ]}))
    .unwrap();
}

#[test]
fn rootfs_propagation_defaults_to_rslave_and_rejects_unknown() {
    let p = try_plan(serde_json::json!({})).unwrap();
    assert_eq!(p.root_propagation, libc::MS_SLAVE | libc::MS_REC);
    assert!(!p.root_propagation_explicit);
    let p = try_plan(serde_json::json!({"linux": {"rootfsPropagation": "rshared"}})).unwrap();
    assert_eq!(p.root_propagation, libc::MS_SHARED | libc::MS_REC);
    let e = err(serde_json::json!({"linux": {"rootfsPropagation": "sideways"}}));
    assert!(
        e.starts_with("linux.rootfsPropagation: unknown propagation \"sideways\""),
        "{e}"
    );
}

#[test]
fn default_devices_are_added_and_config_devices_override_them() {
    let p = try_plan(serde_json::json!({"linux": {"devices": [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 1, "gid": 2},
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600}
    ]}}))
    .unwrap();
    let names: Vec<_> = p
        .devices
        .iter()
        .map(|d| d.path.display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "dev/fuse",
            "dev/null",
            "dev/zero",
            "dev/full",
            "dev/random",
            "dev/urandom",
            "dev/tty"
        ]
    );
    let fuse = &p.devices[0];
    assert_eq!(
        (fuse.kind, fuse.major, fuse.minor, fuse.mode, fuse.uid, fuse.gid),
        (libc::S_IFCHR, 10, 229, 0o640, 1, 2)
    );
    assert_eq!(p.devices[1].mode, 0o600);
    assert_eq!(p.devices[6].mode, 0o666);
}

#[test]
fn device_path_may_be_anywhere_but_the_root() {
    let p = try_plan(serde_json::json!({"linux": {"devices": [
        {"path": "/sub/dir/foo-dev", "type": "c", "major": 1, "minor": 3},
        {"path": "/dev/numbered-fifo", "type": "p", "major": 3, "minor": 4}
    ]}}))
    .unwrap();
    assert_eq!(p.devices[0].path, Path::new("sub/dir/foo-dev"));
    assert_eq!(
        (p.devices[1].kind, p.devices[1].major, p.devices[1].minor),
        (libc::S_IFIFO, 0, 0)
    );
    let e = err(serde_json::json!({"linux": {"devices": [
        {"path": "/dev/ok", "type": "p"},
        {"path": "/dev/..", "type": "c", "major": 1, "minor": 3}
    ]}}));
    assert_eq!(
        e,
        r#"linux.devices[1].path: "/dev/.." must be an absolute path other than "/""#
    );
    let e = err(serde_json::json!({"linux": {"devices": [{"path": "dev/x", "type": "c"}]}}));
    assert!(e.starts_with("linux.devices[0].path: "), "{e}");
    let e = err(serde_json::json!({"linux": {"devices": [{"path": "/dev/x", "type": "a"}]}}));
    assert!(e.starts_with("linux.devices[0].type: "), "{e}");
}

#[test]
fn sysctl_keys_are_validated() {
    let p = try_plan(serde_json::json!({"linux": {"sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1"}}})).unwrap();
    assert_eq!(p.sysctl[0].0, "kernel.shmmax");
    let p = try_plan(
        serde_json::json!({"linux": {"sysctl": {"net/ipv4/conf/eth0.100/rp_filter": "2"}}}),
    )
    .unwrap();
    assert_eq!(p.sysctl[0].1, Path::new("net/ipv4/conf/eth0.100/rp_filter"));
    for bad in ["", "kernel/../x", "kernel..x", "net.ipv4/../../x", ".."] {
        let e = err(serde_json::json!({"linux": {"sysctl": {bad: "1"}}}));
        assert!(e.starts_with(&format!("linux.sysctl.{bad}: ")), "{e}");
    }
}

#[test]
fn masked_and_readonly_paths_must_be_absolute() {
    let e =
        err(serde_json::json!({"linux": {"maskedPaths": ["/proc/kcore", "/proc/keys", "proc/x"]}}));
    assert_eq!(e, r#"linux.maskedPaths[2]: "proc/x" must be absolute"#);
    let e = err(serde_json::json!({"linux": {"readonlyPaths": ["sys"]}}));
    assert_eq!(e, r#"linux.readonlyPaths[0]: "sys" must be absolute"#);
}

#[test]
fn devices_are_set_up_unless_dev_is_a_bind_mount() {
    let p = try_plan(serde_json::json!({"mounts": [{"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}]})).unwrap();
    assert!(p.setup_dev);
    let p = try_plan(serde_json::json!({"mounts": [{"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}]}))
        .unwrap();
    assert!(!p.setup_dev);
}

#[test]
fn cgroup_namespace_and_readonly_root_are_recorded() {
    let p = try_plan(serde_json::json!({
        "root": {"path": "rootfs", "readonly": true},
        "linux": {"namespaces": [{"type": "mount"}, {"type": "cgroup"}]},
        "mounts": [{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]}]
    }))
    .unwrap();
    assert!(p.cgroupns && p.readonly_root);
    assert!(matches!(p.mounts[0].kind, MountKind::Cgroup));
}

#[test]
fn relative_bind_source_is_relative_to_the_bundle() {
    let p = plan_in_bundle(
        &spec(serde_json::json!({"mounts": [
            {"destination": "/a", "type": "bind", "source": "data/x"},
            {"destination": "/b", "type": "bind", "source": "/abs"}
        ]})),
        Path::new("/b/rootfs"),
        Path::new("/bundles/one"),
        PlanOptions {
            no_pivot: false,
            userns: false,
            shared_mount_ns: false,
        },
    )
    .unwrap();
    let sources: Vec<_> = p
        .mounts
        .iter()
        .map(|m| match &m.kind {
            MountKind::Bind { source, .. } => source.clone(),
            _ => PathBuf::new(),
        })
        .collect();
    assert_eq!(
        sources,
        [PathBuf::from("/bundles/one/data/x"), PathBuf::from("/abs")]
    );
}
