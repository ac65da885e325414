//! runc 1.1's command line around the lifecycle: --version, spec, features, --log and the
//! error convention (exit 1, one `vsrun: <field or step>: <message>` line).

use serde_json::Value;
use spec_tests::*;

#[test]
fn version_prints_version_commit_and_spec_lines() {
    let rt = Runtime::new();
    for flag in ["--version", "-v"] {
        let o = rt.cmd(&[flag]);
        assert_success(&o, flag);
        let out = stdout_str(&o);
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines
                .first()
                .is_some_and(|l| l.starts_with("vsrun version ") && l.len() > 14),
            "{flag}: first line must be `vsrun version X`:\n{out}"
        );
        assert!(
            lines.iter().any(|l| l
                .strip_prefix("commit: ")
                .is_some_and(|c| !c.trim().is_empty())),
            "{flag}: no `commit: ...` line:\n{out}"
        );
        let spec = lines
            .iter()
            .find_map(|l| l.strip_prefix("spec: "))
            .unwrap_or_else(|| panic!("{flag}: no `spec: ...` line:\n{out}"));
        let parts: Vec<&str> = spec.trim().split(['.', '-', '+']).collect();
        assert!(
            parts.len() >= 3 && parts[..3].iter().all(|p| p.parse::<u32>().is_ok()),
            "{flag}: spec line is not a version: {spec:?}"
        );
        assert!(
            parts[0] == "1",
            "{flag}: runtime-spec major version must be 1: {spec:?}"
        );
    }
}

#[test]
fn spec_writes_a_config_that_vsrun_runs() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    std::fs::remove_file(b.config_path()).unwrap();
    let o = rt.cmd(&["spec", "--bundle", b.path_str()]);
    assert_success(&o, "spec --bundle");
    let text = std::fs::read_to_string(b.config_path()).expect("spec wrote config.json");
    let cfg: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("config.json: {e}\n{text}"));
    assert_eq!(cfg["root"]["path"], "rootfs", "spec: root.path");
    assert!(
        cfg["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "ociVersion"
    );
    assert!(
        cfg["linux"]["namespaces"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "namespaces"
    );

    // what an engine-less user does: flip terminal off, point args at something, run it
    b.config = cfg.clone();
    b.config["process"]["terminal"] = false.into();
    b.config["process"]["args"] = serde_json::json!(["/probe"]);
    let id = unique_id("spec");
    let o = rt.run(&b, &id);
    assert_success(&o, "run of the `vsrun spec` config");
    let seen: Value = serde_json::from_slice(&o.stdout).expect("probe JSON");
    if let Some(h) = cfg["hostname"].as_str() {
        assert_eq!(seen["hostname"], h, "hostname from the spec config");
    }
    assert_eq!(seen["pid"], 1);
    assert_nothing_left(&rt, &id);
}

#[test]
fn spec_refuses_to_overwrite_an_existing_config() {
    let rt = Runtime::new();
    let b = Bundle::new();
    let before = std::fs::read(b.config_path()).unwrap();
    let o = rt.cmd(&["spec", "--bundle", b.path_str()]);
    let err = assert_fails(&o, "spec over an existing config.json");
    assert!(
        err.contains("config.json"),
        "message should name config.json: {err}"
    );
    assert_eq!(
        std::fs::read(b.config_path()).unwrap(),
        before,
        "config.json was changed"
    );
}

#[test]
fn features_is_json_listing_namespaces() {
    let rt = Runtime::new();
    let o = rt.cmd(&["features"]);
    assert_success(&o, "features");
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", output_text(&o)));
    for k in ["ociVersionMin", "ociVersionMax"] {
        assert!(
            v[k].as_str().is_some_and(|s| s.starts_with("1.")),
            "features.{k}: {v}"
        );
    }
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap_or_else(|| panic!("features.linux.namespaces missing: {v}"))
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    for want in [
        "cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time",
    ] {
        assert!(
            ns.contains(&want),
            "features.linux.namespaces lacks {want}: {ns:?}"
        );
    }
    let caps = v["linux"]["capabilities"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    assert!(
        caps >= 38,
        "features.linux.capabilities lists {caps} capabilities"
    );
}

#[test]
fn log_format_json_writes_level_msg_time_lines_on_error() {
    let rt = Runtime::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let o = rt.cmd(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "no-such-container",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "state of an unknown id:\n{}",
        output_text(&o)
    );
    let text = std::fs::read_to_string(&log).expect("--log file written");
    assert!(!text.trim().is_empty(), "--log file is empty");
    let mut errors = 0;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        for k in ["level", "msg", "time"] {
            assert!(v[k].is_string(), "log line lacks string {k}: {line}");
        }
        let t = v["time"].as_str().unwrap();
        assert!(
            t.len() >= 20 && t.as_bytes()[10] == b'T',
            "time is not RFC 3339: {t}"
        );
        if v["level"] == "error" {
            errors += 1;
            assert!(!v["msg"].as_str().unwrap().is_empty());
        }
    }
    assert!(errors >= 1, "no level=error line in the log:\n{text}");
}

#[test]
fn log_format_text_writes_the_error() {
    let rt = Runtime::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");
    let o = rt.cmd(&["--log", log.to_str().unwrap(), "state", "no-such-container"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "state of an unknown id:\n{}",
        output_text(&o)
    );
    let text = std::fs::read_to_string(&log).expect("--log file written");
    assert!(
        text.contains("error"),
        "text log has no error line:\n{text}"
    );
    assert!(
        serde_json::from_str::<Value>(text.lines().next().unwrap_or("")).is_err(),
        "text log is JSON"
    );
}

#[test]
fn errors_are_one_vsrun_line_and_exit_1() {
    let rt = Runtime::new();
    for args in [
        &["state", "no-such-container"][..],
        &["start", "no-such-container"],
        &["kill", "no-such-container", "KILL"],
    ] {
        let o = rt.cmd(args);
        let err = assert_fails(&o, &format!("{args:?}"));
        if !reference_mode() {
            assert_eq!(
                err.lines().count(),
                1,
                "{args:?}: expected exactly one line:\n{err}"
            );
        }
    }
}
