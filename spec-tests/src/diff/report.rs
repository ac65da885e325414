//! The probe's report and actions as facts.

use super::*;

pub fn ns_inode_of(pid: &str, ns: &str) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/ns/{ns}"))
        .ok()
        .map(|m| m.ino())
}

/// How a namespace inode seen inside relates to the host, the test's netns, or the init.
pub fn classify_ns(ns: &str, ino: &Value, netns: Option<&NsHolder>, init: Option<i32>) -> String {
    let Some(ino) = ino.as_u64() else {
        return "<none>".into();
    };
    let base = ns.trim_end_matches("_for_children");
    if let Some(p) = init {
        if ns_inode_of(&p.to_string(), ns) == Some(ino) {
            return "same as the container's init".into();
        }
    }
    if ns_inode_of("self", base) == Some(ino) {
        return "host's".into();
    }
    if let Some(h) = netns {
        if base == "net" && h.ns_inode("net") == ino {
            return "the test's netns (linux.namespaces path)".into();
        }
    }
    "new".into()
}

pub fn report_facts(
    seen: &Value,
    norm: &Norm,
    netns: Option<&NsHolder>,
    init: Option<i32>,
    prefix: &str,
    facts: &mut Facts,
) {
    let mut put = |k: &str, v: String| {
        facts.insert(format!("{prefix}{k}"), v);
    };
    // Session and process group: whether the process leads them, or they belong to a process
    // outside the pid namespace (0).
    for k in ["pgid", "sid"] {
        let v = &seen[k];
        let v = if *v == seen["pid"] {
            "its own pid (leader)".to_string()
        } else if *v == json!(0) {
            "0 (leader outside the pid namespace)".to_string()
        } else {
            compact(v)
        };
        put(k, v);
    }
    for k in PLAIN_FACTS {
        put(k, compact(&norm.v(&seen[k])));
    }
    put("env", compact(&norm.v(&seen["env"])));
    cap_and_rlimit_facts(seen, &mut put);
    if let Some(m) = seen["ns"].as_object() {
        for (k, v) in m {
            put(&format!("ns.{k}"), classify_ns(k, v, netns, init));
        }
    }
    let cg: Vec<String> = seen["cgroup"]
        .as_array()
        .into_iter()
        .flatten()
        .map(compact)
        .collect();
    let mut cg_facts = Facts::new();
    cgroup_lines(&cg.join("\n"), norm, "proc-cgroup", &mut cg_facts);
    for (k, v) in cg_facts {
        put(&k, v);
    }
    put("fds", fd_fact(seen, norm));
    mount_facts(seen, norm, &mut put);
}

/// Report fields compared as they are (normalized).
const PLAIN_FACTS: [&str; 23] = [
    "pid",
    "ppid",
    "uid",
    "euid",
    "suid",
    "fsuid",
    "gid",
    "egid",
    "sgid",
    "fsgid",
    "groups",
    "no_new_privs",
    "NoNewPrivs",
    "seccomp",
    "cwd",
    "argv",
    "hostname",
    "domainname",
    "umask_octal",
    "oom_score_adj",
    "uid_map",
    "gid_map",
    "label",
];

/// The five capability sets by name, and each rlimit as soft/hard.
fn cap_and_rlimit_facts(seen: &Value, put: &mut impl FnMut(&str, String)) {
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let names: Vec<String> = seen["caps"][set]["names"]
            .as_array()
            .into_iter()
            .flatten()
            .map(compact)
            .collect();
        put(&format!("caps.{set}"), names.join(","));
    }
    if let Some(m) = seen["rlimits"].as_object() {
        for (k, v) in m {
            put(
                &format!("rlimit.{k}"),
                format!("{}/{}", v["soft"], v["hard"]),
            );
        }
    }
}

/// Open fds as `n→target`; pipe and socket inode numbers differ by nature and are dropped.
fn fd_fact(seen: &Value, norm: &Norm) -> String {
    let fds: Vec<String> = seen["fds"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let t = norm.s(&compact(&f["target"]));
            // pipe:[ino] / socket:[ino]: inode numbers differ by nature.
            let t = match t.find(":[") {
                Some(i) => format!("{}:[…]", &t[..i]),
                None => t,
            };
            format!("{}→{t}", f["fd"])
        })
        .collect();
    fds.join(" ")
}

/// Mounts: one fact per mount point (fs type, options, super options, propagation, root within
/// its source, parent) plus the order. Mount ids and peer group numbers differ by nature and
/// are dropped; the parent is named by its mount point.
pub fn mount_facts(seen: &Value, norm: &Norm, put: &mut impl FnMut(&str, String)) {
    let Some(list) = seen["mounts"].as_array() else {
        put("mounts", "<unreadable>".into());
        return;
    };
    let by_id: BTreeMap<u64, String> = list
        .iter()
        .filter_map(|m| Some((m["id"].as_u64()?, compact(&m["mount_point"]))))
        .collect();
    let mut order = Vec::new();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for m in list {
        let mp = compact(&m["mount_point"]);
        let n = count.entry(mp.clone()).or_default();
        *n += 1;
        let key = if *n == 1 {
            format!("mount {mp}")
        } else {
            format!("mount {mp} #{n}")
        };
        order.push(mp.clone());
        let sorted = |v: &Value| {
            let mut o: Vec<String> = v.as_array().into_iter().flatten().map(compact).collect();
            o.sort();
            o.join(",")
        };
        let parent = m["parent"]
            .as_u64()
            .and_then(|p| by_id.get(&p).cloned())
            .unwrap_or_else(|| "<outside>".into());
        put(
            &key,
            format!(
                "{} opts={} super={} {} root={} source={} parent={}",
                compact(&m["fs_type"]),
                sorted(&m["options"]),
                sorted(&m["super_options"]),
                compact(&m["propagation"]),
                norm.s(&compact(&m["root"])),
                norm.s(&compact(&m["source"])),
                parent
            ),
        );
    }
    put("mounts.order", order.join(" "));
}

/// One probe action's result, without what differs by nature (inode and device numbers of
/// per-mount-instance filesystems, error text when the errno is there).
pub fn action_fact(r: &Value, norm: &Norm) -> String {
    let mut r = norm.v(r);
    if let Value::Object(m) = &mut r {
        for k in ["ino", "dev_major", "dev_minor", "nlink"] {
            m.remove(k);
        }
        if m.get("errno").map(|e| !e.is_null()).unwrap_or(false) {
            m.remove("error");
        }
        if m.get("type") == Some(&json!("dir")) {
            m.remove("size");
        }
        if m.get("ok") == Some(&json!(true)) {
            m.remove("ok");
            m.remove("error");
        }
    }
    compact(&r)
}

/// rmdir (never anything else) the per-run cgroup tree under every hierarchy, deepest first:
/// runtimes remove the container's own cgroup, not the parents they created.
pub fn remove_cgroup_top(top: &str) {
    pub fn rm(dir: &Path) {
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    rm(&e.path());
                }
            }
        }
        let _ = fs::remove_dir(dir);
    }
    for (_, mp) in cgroup_mounts() {
        let d = Path::new(&mp).join(top);
        if d.exists() {
            rm(&d);
        }
    }
}
