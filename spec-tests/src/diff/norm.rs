//! Normalisation of the per-run names, and the probe actions a config asks for.

use super::*;

/// String replacements (longest first) that turn one run's own names into placeholders.
pub struct Norm {
    pub subs: Vec<(String, String)>,
}

impl Norm {
    pub fn new(mut subs: Vec<(String, String)>) -> Norm {
        subs.retain(|(from, _)| !from.is_empty());
        // mountinfo's `root` shows a path from its file system's root: where /tmp is a tmpfs
        // of its own (the VM lane, many distributions) a bundle /tmp/x appears there as /x.
        let table = crate::host_mounts();
        let relative: Vec<(String, String)> = subs
            .iter()
            .filter_map(|(from, to)| Some((on_its_mount(&table, from)?, to.clone())))
            .collect();
        subs.extend(relative);
        subs.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        Norm { subs }
    }

    pub fn s(&self, s: &str) -> String {
        let mut s = s.to_string();
        for (from, to) in &self.subs {
            s = s.replace(from.as_str(), to);
        }
        s
    }

    pub fn v(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.s(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.v(x)).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, x)| (self.s(k), self.v(x))).collect())
            }
            other => other.clone(),
        }
    }
}

pub type Facts = BTreeMap<String, String>;

pub fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn is_bind(m: &Value) -> bool {
    m["type"] == "bind"
        || m["options"]
            .as_array()
            .map(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
            .unwrap_or(false)
}

pub fn push_action(actions: &mut Vec<(String, String)>, verb: &str, path: &str) {
    let a = (verb.to_string(), path.to_string());
    if !actions.contains(&a) {
        actions.push(a);
    }
}

/// The probe actions that show what the config's paths look like from inside.
pub fn actions_for(config: &Value) -> Vec<(String, String)> {
    let mut a = Vec::new();
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|x| {
                x.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    for p in strs(&config["linux"]["maskedPaths"]) {
        push_action(&mut a, "stat", &p);
        push_action(&mut a, "read", &p);
        push_action(&mut a, "ls", &p);
    }
    for p in strs(&config["linux"]["readonlyPaths"]) {
        push_action(&mut a, "stat", &p);
        // open(O_WRONLY|O_CREAT|O_TRUNC) and write nothing: EROFS on a read-only mount.
        push_action(&mut a, "write", &p);
        push_action(&mut a, "write", &format!("{p}/.vsrun-diff"));
    }
    if let Some(m) = config["linux"]["sysctl"].as_object() {
        for k in m.keys() {
            push_action(
                &mut a,
                "read",
                &format!("/proc/sys/{}", k.replace('.', "/")),
            );
        }
    }
    for m in config["mounts"].as_array().into_iter().flatten() {
        let d = m["destination"].as_str().unwrap_or("");
        push_action(&mut a, "stat", d);
        if is_bind(m) {
            push_action(&mut a, "read", d);
            push_action(&mut a, "ls", d);
        }
    }
    push_action(&mut a, "ls", "/dev");
    push_action(&mut a, "ls", "/sys/fs/cgroup");
    for d in [
        "null", "zero", "full", "tty", "random", "urandom", "ptmx", "console", "fd", "stdin",
        "stdout", "stderr", "core", "pts/ptmx",
    ] {
        push_action(&mut a, "stat", &format!("/dev/{d}"));
    }
    push_action(&mut a, "write", "/.vsrun-diff-rootfs-rw");
    // Last, so the `ls` above is not affected: can the container create entries in the tmpfs
    // that holds its cgroup mounts?
    for m in config["mounts"].as_array().into_iter().flatten() {
        if m["type"] == "cgroup" {
            let d = m["destination"].as_str().unwrap_or("");
            push_action(&mut a, "write", &format!("{d}/.vsrun-diff"));
        }
    }
    a
}

pub fn probe_args(actions: &[(String, String)], sleep: bool) -> Vec<String> {
    let mut v = vec!["/probe".to_string(), "report".to_string()];
    for (verb, path) in actions {
        v.push("--".into());
        v.push(verb.clone());
        v.push(path.clone());
        if verb == "write" {
            v.push(String::new());
        }
    }
    if sleep {
        v.extend(["--", "sleep", "1000"].map(String::from));
    }
    v
}

/// `path` (absolute) as mountinfo's `root` shows it when it lies below a mount point other
/// than `/` (None when that is the same text).
fn on_its_mount(table: &[crate::HostMount], path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let m = table
        .iter()
        .filter(|m| {
            m.mount_point != "/"
                && crate::host::is_under(path, std::path::Path::new(&m.mount_point))
        })
        .max_by_key(|m| m.mount_point.len())?;
    let rest = &path[m.mount_point.trim_end_matches('/').len()..];
    let rel = format!("{}{rest}", m.root.trim_end_matches('/'));
    (rel != path && !rel.is_empty()).then_some(rel)
}
