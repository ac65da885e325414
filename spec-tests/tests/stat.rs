//! `vsrun stat` (vserver-stat): every container under --root shows, whatever its status, with
//! its cgroup's process count and an engine-provided name; it reads without locking.

use serde_json::{json, Value};
use spec_tests::*;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

fn stat_json(rt: &Runtime) -> Vec<Value> {
    let out = rt.cmd(&["stat", "--format", "json"]);
    assert_success(&out, "stat --format json");
    serde_json::from_str::<Value>(&stdout_str(&out))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn row<'a>(rows: &'a [Value], id: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} missing from {rows:?}"))
}

#[test]
fn stat_shows_created_running_paused_and_stopped_containers() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/bin/sh", "-c", "sleep 30 & sleep 30 & wait"]);
    b.config["annotations"] = json!({"io.kubernetes.cri.container-name": "web"});
    let (created, running, paused, stopped) = (
        unique_id("st-c"),
        unique_id("st-r"),
        unique_id("st-p"),
        unique_id("st-s"),
    );
    assert_success(&rt.create(&b, &created), "create");
    assert_success(&rt.run_detached(&b, &running), "run -d");
    assert_success(&rt.run_detached(&b, &paused), "run -d");
    assert_success(&rt.cmd(&["pause", &paused]), "pause");
    let mut quick = Bundle::new();
    quick.set_args(&["/probe", "exit", "0"]);
    assert_success(
        &rt.cmd(&["run", "--keep", "--bundle", quick.path_str(), &stopped]),
        "run --keep",
    );
    let rows = stat_json(&rt);
    assert_eq!(row(&rows, &created)["status"], "created");
    assert_eq!(row(&rows, &running)["status"], "running");
    assert_eq!(row(&rows, &paused)["status"], "paused");
    assert_eq!(row(&rows, &stopped)["status"], "stopped");
    // sh + two sleeps, counted from the container's cgroup.
    let deadline = Instant::now() + Duration::from_secs(5);
    while row(&stat_json(&rt), &running)["proc"] != 3 {
        assert!(
            Instant::now() < deadline,
            "PROC never reached 3: {:?}",
            row(&stat_json(&rt), &running)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(row(&rows, &running)["name"], "web");
    assert_eq!(row(&rows, &stopped)["proc"], 0);
    assert!(row(&rows, &running)["rss"].as_u64().unwrap() > 0);
    let table = stdout_str(&rt.cmd(&["stat"]));
    assert!(table.starts_with("CTX"), "{table}");
    for h in [
        "PROC", "VSZ", "RSS", "userTIME", "sysTIME", "UPTIME", "NAME",
    ] {
        assert!(table.lines().next().unwrap().contains(h), "{h}: {table}");
    }
    assert_eq!(table.lines().count(), 5, "{table}");
    assert_success(&rt.cmd(&["resume", &paused]), "resume");
}

#[test]
fn stat_does_not_wait_on_a_locked_container_and_skips_half_made_ones() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.set_args(&["/probe", "sleep", "30"]);
    let id = unique_id("st-lock");
    assert_success(&rt.run_detached(&b, &id), "run -d");
    // Hold the container's lock as a lifecycle command would.
    let dir = std::fs::File::open(rt.state_dir(&id)).unwrap();
    // SAFETY: flock on an fd we own.
    assert_eq!(unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) }, 0);
    // A directory without state.json (a create in progress, or deleted under us).
    std::fs::create_dir(rt.root().join("half-made")).unwrap();
    let t = Instant::now();
    let rows = stat_json(&rt);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stat waited on the lock"
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(row(&rows, &id)["status"], "running");
    // And it wrote nothing.
    assert!(!rt.root().join("half-made").join("state.json").exists());
    std::fs::remove_dir(rt.root().join("half-made")).unwrap();
}
