//! Small checks more than one test file makes: a container's end, a process's death, and
//! readings of the probe's report.

use crate::{assert_nothing_left, assert_success, pid_alive, Runtime};
use serde_json::Value;
use std::time::{Duration, Instant};

/// `delete --force` the container and check that nothing of it is left.
#[track_caller]
pub fn finish(rt: &Runtime, id: &str) {
    assert_success(&rt.delete_force(id), "delete --force");
    assert_nothing_left(rt, id);
}

/// Whether `pid` is gone within `within` (polled every 10 ms).
pub fn wait_dead(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !pid_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !pid_alive(pid)
}

#[track_caller]
pub fn assert_dies_within(pid: i32, within: Duration) {
    assert!(
        wait_dead(pid, within),
        "pid {pid} still alive after {within:?}"
    );
}

/// The fd numbers the probe found open (`report`'s `fds`).
pub fn fd_numbers(seen: &Value) -> Vec<i64> {
    seen["fds"]
        .as_array()
        .unwrap_or_else(|| panic!("no fds in the report: {seen}"))
        .iter()
        .map(|f| f["fd"].as_i64().expect("fd number"))
        .collect()
}

/// Whether the probe saw a mount at `mp` (`report`'s `mounts`).
pub fn has_mount_at(seen: &Value, mp: &str) -> bool {
    seen["mounts"]
        .as_array()
        .is_some_and(|a| a.iter().any(|m| m["mount_point"] == mp))
}
