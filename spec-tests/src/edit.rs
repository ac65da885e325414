//! Edits of a config.json held as a `serde_json::Value` (`Bundle::config`), shared by the
//! bad-input tables and the sweep.

use serde_json::{json, Value};

pub fn ns_list(v: &mut Value) -> &mut Vec<Value> {
    v["linux"]["namespaces"]
        .as_array_mut()
        .expect("linux.namespaces")
}

pub fn add_ns(v: &mut Value, ns: Value) {
    ns_list(v).push(ns);
}

pub fn drop_ns(v: &mut Value, t: &str) {
    ns_list(v).retain(|n| n["type"] != t);
}

/// A new user namespace mapping the container's 0..65536 to the host's 100000..165536.
pub fn userns(v: &mut Value) {
    add_ns(v, json!({ "type": "user" }));
    v["linux"]["uidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    v["linux"]["gidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
}

/// Append an entry to `mounts`.
pub fn add_mount(v: &mut Value, m: Value) {
    v["mounts"].as_array_mut().expect("mounts").push(m);
}

/// Drop the `mounts` entries whose destination is `dest`.
pub fn remove_mount(v: &mut Value, dest: &str) {
    v["mounts"]
        .as_array_mut()
        .expect("mounts")
        .retain(|m| m["destination"] != dest);
}

/// `linux.devices` is exactly `[d]`.
pub fn device(v: &mut Value, d: Value) {
    v["linux"]["devices"] = json!([d]);
}

pub fn sysctl(v: &mut Value, key: &str) {
    v["linux"]["sysctl"] = json!({ key: "1" });
}

pub fn seccomp(v: &mut Value, s: Value) {
    v["linux"]["seccomp"] = s;
}

pub fn resources(v: &mut Value, r: Value) {
    v["linux"]["resources"] = r;
}
