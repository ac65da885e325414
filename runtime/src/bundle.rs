//! Read a bundle's config.json and validate it before anything touches the kernel. Every error
//! names the JSON field (`linux.mounts[3].destination: ...`), because that is the line an
//! engine shows its user when a container fails to start.
//!
//! The rules follow the OCI runtime spec (config.md, config-linux.md) and what runc's
//! libcontainer/configs/validate rejects; where vsrun decides differently the reason is written
//! next to the rule. Fields vsrun does not implement yet are refused in `reject_unsupported`,
//! never silently ignored.

use crate::error::{config, Error, Result};
use oci_spec::runtime::{
    Linux, LinuxDeviceType, LinuxIdMapping, LinuxNamespaceType, Mount, Process, Spec,
};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// A loaded, validated bundle. `rootfs` is absolute and exists.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
    /// What was accepted but ignored (unknown capability names), for the command to log.
    pub warnings: Vec<String>,
}

pub fn load(dir: &Path) -> Result<Bundle> {
    let dir = std::path::absolute(dir).map_err(|e| config("bundle", e.to_string()))?;
    let path = dir.join("config.json");
    let data = std::fs::read(&path)
        .map_err(|e| config("config.json", format!("{}: {e}", path.display())))?;
    let (spec, warnings) = parse_without_unknown_capabilities::<Spec>(&data, "config.json", |v| {
        v.get_mut("process")
            .map(|p| drop_unknown_capabilities(p, "process."))
            .unwrap_or_default()
    })?;
    require_oci_version(&data)?;
    validate(&spec)?;
    let rootfs = rootfs_path(&dir, &spec)?;
    Ok(Bundle {
        dir,
        spec,
        rootfs,
        warnings,
    })
}

/// process.json for `exec`: the same field-path errors as config.json, and the same process
/// rules. Field names are relative to the file (`args[0]`, `rlimits[1]`). Returns the
/// warnings about what was ignored. A missing `user` is uid 0, gid 0: runc and crun decode
/// the file into a struct whose zero value is root, and run the process so.
pub fn parse_process(data: &[u8]) -> Result<(Process, Vec<String>)> {
    let (p, warnings) = parse_without_unknown_capabilities::<Process>(data, "process.json", |v| {
        if let Some(obj) = v.as_object_mut() {
            obj.entry("user")
                .or_insert_with(|| serde_json::json!({ "uid": 0, "gid": 0 }));
        }
        drop_unknown_capabilities(v, "")
    })?;
    validate_process(&p, "")?;
    Ok((p, warnings))
}

/// Parse after `edit` has had the JSON value. A file that is not JSON (or not an object) is
/// parsed as it is, so the error keeps its line and column.
fn parse_without_unknown_capabilities<T: serde::de::DeserializeOwned>(
    data: &[u8],
    what: &str,
    edit: impl FnOnce(&mut serde_json::Value) -> Vec<String>,
) -> Result<(T, Vec<String>)> {
    let Ok(mut v @ serde_json::Value::Object(_)) = serde_json::from_slice(data) else {
        return Ok((parse_json(data, what)?, Vec::new()));
    };
    let original = v.clone();
    let warnings = edit(&mut v);
    if v == original {
        // The file itself, so that what a Value hides (a duplicate key) is still refused.
        return Ok((parse_json(data, what)?, warnings));
    }
    let edited = serde_json::to_vec(&v).map_err(|e| config(what, e.to_string()))?;
    Ok((parse_json(&edited, what)?, warnings))
}

/// runc and crun ignore capability names they do not know, with a warning, so that a config
/// written for a newer kernel (or runtime) still runs; oci-spec's enum would refuse the file.
/// `process` is the process object; `prefix` its field path.
fn drop_unknown_capabilities(process: &mut serde_json::Value, prefix: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    let Some(sets) = process
        .get_mut("capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return warnings;
    };
    for (set, list) in sets.iter_mut() {
        let Some(list) = list.as_array_mut() else {
            continue;
        };
        let mut index = 0;
        list.retain(|name| {
            // Only the canonical spelling (CAP_KILL): oci-spec also parses `KILL` or
            // `cap_kill`, which runc treats as unknown and leaves out, as vsrun does.
            let known = !name.is_string()
                || serde_json::from_value::<oci_spec::runtime::Capability>(name.clone())
                    .ok()
                    .and_then(|c| serde_json::to_value(c).ok())
                    .is_some_and(|canonical| canonical == *name);
            if !known {
                warnings.push(format!(
                    "{prefix}capabilities.{set}[{index}]: unknown capability {name}, ignored"
                ));
            }
            index += 1;
            known
        });
    }
    warnings
}

/// Deserialize a JSON object, reporting the path of the offending field
/// (`process.rlimits[0].type`). Anything after the object (`{...} garbage`) is an error, as it
/// is for every JSON parser engines use.
pub fn parse_json<T: serde::de::DeserializeOwned>(data: &[u8], what: &str) -> Result<T> {
    // serde's derived structs also accept a JSON array (fields by position); a config is never
    // one, and `[1, 2]` would otherwise be reported as a type error at `[0]`.
    if data
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b != b'{')
    {
        return Err(config(what, "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(data);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // A syntax error (truncated, not JSON) belongs to the file, with its line and column;
        // a type error to the field.
        let data_error = inner.classify() == serde_json::error::Category::Data;
        let field = if !data_error || path == "." || path.is_empty() {
            what.to_string()
        } else {
            path
        };
        let msg = clean_serde_message(inner.to_string());
        Error::Config { field, msg }
    })?;
    de.end().map_err(|e| config(what, e.to_string()))?;
    Ok(value)
}

/// oci-spec's capability parser says `no variant for CAP_FOO (converted to FOO)`; say what
/// is wrong instead.
fn clean_serde_message(msg: String) -> String {
    match msg.strip_prefix("no variant for ") {
        Some(rest) => {
            let name = rest.split(" (converted to").next().unwrap_or(rest);
            format!("unknown capability {name:?}")
        }
        None => msg,
    }
}

/// `ociVersion` is REQUIRED (config.md), but oci-spec fills in a default when it is missing,
/// so its presence is checked on the raw JSON.
fn require_oci_version(data: &[u8]) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "ociVersion")]
        oci_version: Option<serde::de::IgnoredAny>,
    }
    let head: Head = parse_json(data, "config.json")?;
    match head.oci_version {
        Some(_) => Ok(()),
        None => Err(config("ociVersion", "missing")),
    }
}

fn rootfs_path(dir: &Path, spec: &Spec) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| config("root", "missing"))?;
    let p = root.path();
    if p.as_os_str().is_empty() {
        return Err(config("root.path", "must not be empty"));
    }
    // A relative root.path is relative to the bundle, as runc does (config.md allows both).
    let abs = if p.is_absolute() {
        p.clone()
    } else {
        dir.join(p)
    };
    let meta = std::fs::metadata(&abs)
        .map_err(|e| config("root.path", format!("{}: {e}", abs.display())))?;
    if !meta.is_dir() {
        return Err(config(
            "root.path",
            format!("{}: not a directory", abs.display()),
        ));
    }
    std::fs::canonicalize(&abs).map_err(|e| config("root.path", format!("{}: {e}", abs.display())))
}

/// Checks that need no kernel: shapes, ranges and combinations the spec forbids.
pub fn validate(spec: &Spec) -> Result<()> {
    validate_version(spec.version())?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| config("process", "missing"))?;
    validate_process(process, "process.")?;
    validate_annotations(spec)?;
    let ns = validate_namespaces(spec.linux().as_ref())?;
    validate_idmaps(spec, &ns)?;
    validate_uts(spec, &ns)?;
    validate_mounts(spec.mounts().as_deref().unwrap_or_default())?;
    validate_hooks(spec)?;
    if let Some(linux) = spec.linux() {
        validate_time_offsets(linux, &ns)?;
        validate_restricted_paths(linux, &ns)?;
        validate_devices(linux)?;
        validate_sysctl(linux, &ns)?;
        validate_propagation(linux)?;
    }
    reject_unsupported(spec)
}

// ---------------------------------------------------------------------------------------------
// Not implemented yet: refused with the field's name. Delete a line when its feature lands.

/// Everything in the config vsrun does not implement yet. Ignoring such a field would run the
/// container with less isolation, or a different process, than the engine asked for.
/// (linux.resources and linux.cgroupsPath are checked by cgroups/, beside their plan.)
fn reject_unsupported(spec: &Spec) -> Result<()> {
    let no = |field: &str| Err(config(field, "not supported by vsrun yet"));
    let Some(l) = spec.linux() else { return Ok(()) };
    if l.intel_rdt().is_some() {
        // Intel RDT needs the resctrl filesystem; vsrun does not drive it yet either way.
        let why = if std::path::Path::new("/sys/fs/resctrl/schemata").exists() {
            "not supported by vsrun yet"
        } else {
            "not available on this host (resctrl is not mounted)"
        };
        return Err(config("linux.intelRdt", why));
    }
    if l.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return no("linux.netDevices");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Top level

/// config.md: ociVersion is SemVer and a runtime supports a major version. Only the major is
/// checked: runc checks nothing, and "1.0.2-dev" (runc spec's own output) must pass.
fn validate_version(v: &str) -> Result<()> {
    let major = v.split(['.', '-', '+']).next().unwrap_or_default();
    if major != "1" {
        return Err(config(
            "ociVersion",
            format!("{v:?}: vsrun implements runtime-spec 1.x"),
        ));
    }
    Ok(())
}

/// config.md: annotation keys MUST NOT be empty.
fn validate_annotations(spec: &Spec) -> Result<()> {
    if spec
        .annotations()
        .as_ref()
        .is_some_and(|a| a.contains_key(""))
    {
        return Err(config("annotations", "keys must not be empty"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// process

fn validate_process(p: &Process, prefix: &str) -> Result<()> {
    let f = |name: &str| format!("{prefix}{name}");
    let args = p.args().as_deref().unwrap_or_default();
    if args.is_empty() {
        return Err(config(f("args"), "must name an executable"));
    }
    if args[0].is_empty() {
        return Err(config(f("args[0]"), "must not be empty"));
    }
    if !p.cwd().is_absolute() {
        return Err(config(f("cwd"), format!("{:?} must be absolute", p.cwd())));
    }
    validate_env(p.env().as_deref().unwrap_or_default(), prefix)?;
    validate_rlimits(p, prefix)?;
    // consoleSize without a terminal: config.md says runtimes MUST ignore it (runc does).
    if let Some(v) = p.oom_score_adj() {
        if !(-1000..=1000).contains(&v) {
            return Err(config(
                f("oomScoreAdj"),
                format!("{v} is outside -1000..1000"),
            ));
        }
    }
    if let Some(m) = p.user().umask() {
        if m > 0o777 {
            return Err(config(
                f("user.umask"),
                format!("{m:#o} is more than 0o777"),
            ));
        }
    }
    Ok(())
}

/// Each entry is `KEY=VALUE` with a non-empty KEY (the same rule runc applies before exec).
fn validate_env(env: &[String], prefix: &str) -> Result<()> {
    for (i, e) in env.iter().enumerate() {
        let field = || format!("{prefix}env[{i}]");
        let Some((key, _)) = e.split_once('=') else {
            return Err(config(field(), format!("{e:?}: missing '='")));
        };
        if key.is_empty() {
            return Err(config(field(), format!("{e:?}: empty variable name")));
        }
        if e.contains('\0') {
            return Err(config(field(), "contains a NUL byte"));
        }
    }
    Ok(())
}

fn validate_rlimits(p: &Process, prefix: &str) -> Result<()> {
    let list = p.rlimits().as_deref().unwrap_or_default();
    for (i, r) in list.iter().enumerate() {
        let field = format!("{prefix}rlimits[{i}]");
        if r.soft() > r.hard() {
            return Err(config(
                field,
                format!("soft limit {} exceeds hard limit {}", r.soft(), r.hard()),
            ));
        }
        if let Some(j) = list[..i].iter().position(|o| o.typ() == r.typ()) {
            return Err(config(
                format!("{field}.type"),
                format!("{} repeats {prefix}rlimits[{j}]", r.typ()),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// namespaces

/// The namespaces a config asks for, by type: None = not listed, Some(None) = new,
/// Some(Some(path)) = joined.
#[derive(Default)]
struct NsSet {
    entries: Vec<(LinuxNamespaceType, Option<PathBuf>)>,
}

impl NsSet {
    fn has(&self, t: LinuxNamespaceType) -> bool {
        self.entries.iter().any(|(x, _)| *x == t)
    }
    fn path_of(&self, t: LinuxNamespaceType) -> Option<&Path> {
        self.entries
            .iter()
            .find(|(x, _)| *x == t)
            .and_then(|(_, p)| p.as_deref())
    }
}

fn ns_name(t: LinuxNamespaceType) -> &'static str {
    use LinuxNamespaceType::*;
    match t {
        Mount => "mount",
        Cgroup => "cgroup",
        Uts => "uts",
        Ipc => "ipc",
        User => "user",
        Pid => "pid",
        Network => "network",
        Time => "time",
    }
}

/// Each type at most once; a path to join must be absolute (config-linux.md). An empty path
/// means "new", as in runc.
fn validate_namespaces(linux: Option<&Linux>) -> Result<NsSet> {
    let mut set = NsSet::default();
    let list = linux
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default();
    for (i, ns) in list.iter().enumerate() {
        let t = ns.typ();
        if set.has(t) {
            return Err(config(
                format!("linux.namespaces[{i}].type"),
                format!("duplicate namespace type {:?}", ns_name(t)),
            ));
        }
        let path = ns.path().clone().filter(|p| !p.as_os_str().is_empty());
        if let Some(p) = &path {
            if !p.is_absolute() || has_nul(p) {
                return Err(config(
                    format!("linux.namespaces[{i}].path"),
                    format!("{p:?} must be an absolute path"),
                ));
            }
        }
        set.entries.push((t, path));
    }
    Ok(set)
}

/// The kernel's limit on lines in uid_map/gid_map (since Linux 4.15).
const MAX_ID_MAP_LINES: usize = 340;

/// Mappings need a user namespace, and a new user namespace needs mappings (a joined one
/// brings its own). Each list must be one the kernel accepts: no empty or overflowing range,
/// no overlap on either side, at most 340 lines.
fn validate_idmaps(spec: &Spec, ns: &NsSet) -> Result<()> {
    let linux = spec.linux().as_ref();
    let uid = linux
        .and_then(|l| l.uid_mappings().as_deref())
        .unwrap_or_default();
    let gid = linux
        .and_then(|l| l.gid_mappings().as_deref())
        .unwrap_or_default();
    if !ns.has(LinuxNamespaceType::User) {
        for (field, list) in [("linux.uidMappings", uid), ("linux.gidMappings", gid)] {
            if !list.is_empty() {
                return Err(config(
                    field,
                    "user namespace mappings given, but linux.namespaces has no user namespace",
                ));
            }
        }
    } else if ns.path_of(LinuxNamespaceType::User).is_none() {
        for (field, list) in [("linux.uidMappings", uid), ("linux.gidMappings", gid)] {
            if list.is_empty() {
                return Err(config(
                    field,
                    "a new user namespace needs mappings (or a namespace path to join)",
                ));
            }
        }
    }
    validate_idmap_list("linux.uidMappings", uid)?;
    validate_idmap_list("linux.gidMappings", gid)?;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let uid = m.uid_mappings().as_deref().unwrap_or_default();
        let gid = m.gid_mappings().as_deref().unwrap_or_default();
        validate_idmap_list(&format!("mounts[{i}].uidMappings"), uid)?;
        validate_idmap_list(&format!("mounts[{i}].gidMappings"), gid)?;
    }
    Ok(())
}

fn validate_idmap_list(field: &str, list: &[LinuxIdMapping]) -> Result<()> {
    if list.len() > MAX_ID_MAP_LINES {
        return Err(config(
            field,
            format!(
                "{} mappings, the kernel accepts at most {MAX_ID_MAP_LINES}",
                list.len()
            ),
        ));
    }
    // The kernel rejects a range whose end does not fit in 32 bits (first + count wraps), and
    // id 4294967295 is (uid_t)-1, never valid.
    let end = |first: u32, size: u32| u64::from(first) + u64::from(size);
    for (i, m) in list.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if m.size() == 0 {
            return Err(config(format!("{at}.size"), "must be greater than 0"));
        }
        for (name, first) in [("containerID", m.container_id()), ("hostID", m.host_id())] {
            if end(first, m.size()) > u64::from(u32::MAX) {
                return Err(config(
                    &at,
                    format!("{name} {first} + size {} overflows 32-bit ids", m.size()),
                ));
            }
        }
        for (j, o) in list[..i].iter().enumerate() {
            let clash =
                |a: u32, b: u32| u64::from(a) < end(b, o.size()) && u64::from(b) < end(a, m.size());
            if clash(m.container_id(), o.container_id()) || clash(m.host_id(), o.host_id()) {
                return Err(config(&at, format!("overlaps {field}[{j}]")));
            }
        }
    }
    Ok(())
}

/// runc: "unable to set hostname without a private UTS namespace". A joined UTS namespace
/// counts (runc allows it too). sethostname(2) takes at most 64 bytes.
fn validate_uts(spec: &Spec, ns: &NsSet) -> Result<()> {
    for (field, value) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        let Some(v) = value.as_deref().filter(|v| !v.is_empty()) else {
            continue;
        };
        if !ns.has(LinuxNamespaceType::Uts) {
            return Err(config(
                field,
                format!("unable to set {field} without a private UTS namespace"),
            ));
        }
        if v.len() > 64 || v.contains('\0') {
            return Err(config(field, format!("{v:?}: at most 64 bytes, no NUL")));
        }
    }
    Ok(())
}

/// config-linux.md: offsets only for a new time namespace, only for the monotonic and boottime
/// clocks; nanoseconds are a fraction of a second.
fn validate_time_offsets(linux: &Linux, ns: &NsSet) -> Result<()> {
    let Some(offsets) = linux.time_offsets().as_ref().filter(|o| !o.is_empty()) else {
        return Ok(());
    };
    if !ns.has(LinuxNamespaceType::Time) {
        return Err(config(
            "linux.timeOffsets",
            "time offsets given, but linux.namespaces has no time namespace",
        ));
    }
    if ns.path_of(LinuxNamespaceType::Time).is_some() {
        return Err(config(
            "linux.timeOffsets",
            "a joined time namespace keeps its own offsets; give a path or offsets, not both",
        ));
    }
    let mut clocks: Vec<_> = offsets.iter().collect();
    clocks.sort_by(|a, b| a.0.cmp(b.0));
    for (clock, off) in clocks {
        if clock != "monotonic" && clock != "boottime" {
            return Err(config(
                format!("linux.timeOffsets.{clock}"),
                "only \"monotonic\" and \"boottime\" clocks have offsets",
            ));
        }
        if off.nanosecs().is_some_and(|n| n >= 1_000_000_000) {
            return Err(config(
                format!("linux.timeOffsets.{clock}.nanosecs"),
                "must be less than 1000000000",
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// mounts and paths

/// Normalize a path lexically: drop `.`, resolve `..` against what precedes it, never above
/// the root. Symlinks are not followed (they are resolved inside the rootfs at mount time).
pub fn clean_path(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir => out.push("/"),
            Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if !out.pop() && !p.is_absolute() {
                    out.push("..");
                }
                if p.is_absolute() && out.as_os_str().is_empty() {
                    out.push("/");
                }
            }
            Component::Normal(n) => out.push(n),
        }
    }
    out
}

fn has_nul(p: &Path) -> bool {
    p.as_os_str().as_bytes().contains(&0)
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// Destinations must be absolute and must not be the root itself.
///
/// Relative destinations: runtime-spec 1.1 allows them on Linux ("relative to /") and runc
/// accepts them with a deprecation warning, but crun rejects them, every current engine
/// writes absolute paths, and a relative one in a hand-written config is almost always a
/// mistake. vsrun rejects them; if an engine turns out to depend on them, treat them as
/// `"/" + destination` here instead.
fn validate_mounts(mounts: &[Mount]) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        let field = format!("mounts[{i}].destination");
        let d = m.destination();
        if has_nul(d) {
            return Err(config(field, "contains a NUL byte"));
        }
        if !d.is_absolute() {
            return Err(config(field, format!("{d:?} must be an absolute path")));
        }
        if clean_path(d) == Path::new("/") {
            return Err(config(
                field,
                format!("{d:?} is the container's root: mount over root.path instead"),
            ));
        }
        let no_source = m
            .source()
            .as_deref()
            .is_none_or(|s| s.as_os_str().is_empty());
        if is_bind(m) && no_source {
            return Err(config(
                format!("mounts[{i}].source"),
                "a bind mount needs a source",
            ));
        }
        if m.source().as_deref().is_some_and(has_nul) {
            return Err(config(format!("mounts[{i}].source"), "contains a NUL byte"));
        }
    }
    Ok(())
}

/// maskedPaths and readonlyPaths are absolute paths inside the container; like runc, they need
/// a mount namespace of the container's own (else the host's /proc would be masked).
fn validate_restricted_paths(linux: &Linux, ns: &NsSet) -> Result<()> {
    for (name, list) in [
        ("maskedPaths", linux.masked_paths()),
        ("readonlyPaths", linux.readonly_paths()),
    ] {
        let list = list.as_deref().unwrap_or_default();
        if !list.is_empty() && !ns.has(LinuxNamespaceType::Mount) {
            return Err(config(
                format!("linux.{name}"),
                "unable to restrict paths without a private mount namespace",
            ));
        }
        for (i, p) in list.iter().enumerate() {
            if !p.starts_with('/') || p.contains('\0') {
                return Err(config(
                    format!("linux.{name}[{i}]"),
                    format!("{p:?} must be an absolute path"),
                ));
            }
        }
    }
    Ok(())
}

/// The kernel's dev_t: 12-bit major, 20-bit minor (mknod(2) rejects larger).
const MAX_MAJOR: i64 = (1 << 12) - 1;
const MAX_MINOR: i64 = (1 << 20) - 1;

/// config-linux.md "Devices": c, b, u with major/minor; p (a FIFO) with or without; an
/// absolute path other than "/"; each path once.
fn validate_devices(linux: &Linux) -> Result<()> {
    let mut seen: Vec<PathBuf> = Vec::new();
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        let f = |name: &str| format!("linux.devices[{i}].{name}");
        let p = d.path();
        let clean = clean_path(p);
        if !p.is_absolute() || has_nul(p) {
            return Err(config(f("path"), format!("{p:?} must be an absolute path")));
        }
        // The spec puts a node anywhere in the rootfs (runc and crun make `/foo-dev` and its
        // parents); only the root itself cannot be one.
        if clean == Path::new("/") {
            return Err(config(f("path"), format!("{p:?} is the rootfs itself")));
        }
        if let Some(j) = seen.iter().position(|s| *s == clean) {
            return Err(config(
                f("path"),
                format!("{p:?} repeats linux.devices[{j}]"),
            ));
        }
        seen.push(clean);
        validate_device_numbers(d.typ(), d.major(), d.minor(), &f)?;
        if d.file_mode().is_some_and(|m| m > 0o7777) {
            return Err(config(
                f("fileMode"),
                "only permission bits (at most 0o7777); the type comes from linux.devices[].type",
            ));
        }
    }
    Ok(())
}

fn validate_device_numbers(
    t: LinuxDeviceType,
    major: i64,
    minor: i64,
    f: &dyn Fn(&str) -> String,
) -> Result<()> {
    match t {
        LinuxDeviceType::C | LinuxDeviceType::B | LinuxDeviceType::U => {
            if !(0..=MAX_MAJOR).contains(&major) {
                return Err(config(f("major"), format!("{major} is outside 0..4095")));
            }
            if !(0..=MAX_MINOR).contains(&minor) {
                return Err(config(f("minor"), format!("{minor} is outside 0..1048575")));
            }
        }
        // Optional for a FIFO and meaningless to mknod(2): ignored, as runc and crun do.
        LinuxDeviceType::P => {}
        LinuxDeviceType::A => {
            return Err(config(
                f("type"),
                "\"a\" is only meaningful in linux.resources.devices; use c, b, u or p",
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// sysctl

/// sysctl(8) accepts `/` as the separator when it comes first (`net/ipv4/conf/eth0.100/rp_filter`,
/// where the dot belongs to the interface name); return the dotted form, in which a `/` stands
/// for a literal dot in a component (`net.ipv4.conf.eth0/100.rp_filter`). runc does the same.
pub fn sysctl_dotted(key: &str) -> String {
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'/' => key
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => key.to_string(),
    }
}

/// The file under /proc/sys for a sysctl key, or None when the key could name something outside
/// /proc/sys or nothing at all (empty components, `.`/`..`, whitespace, NUL).
pub fn sysctl_path(key: &str) -> Option<PathBuf> {
    if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c == '\0') {
        return None;
    }
    let mut p = PathBuf::new();
    for comp in sysctl_dotted(key).split('.') {
        let name = comp.replace('/', ".");
        if name.is_empty() || name == "." || name == ".." {
            return None;
        }
        p.push(name);
    }
    Some(p)
}

/// IPC sysctls (kernel/ipc): namespaced by the ipc namespace.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// /proc/sys is only partly namespaced: a key is allowed only when the namespace that owns it
/// is the container's own; anything else would change the host. Same rules as runc.
fn validate_sysctl(linux: &Linux, ns: &NsSet) -> Result<()> {
    let Some(map) = linux.sysctl() else {
        return Ok(());
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        let field = format!("linux.sysctl.{key}");
        if sysctl_path(key).is_none() {
            return Err(config(field, format!("{key:?} is not a valid sysctl name")));
        }
        sysctl_namespace_ok(&sysctl_dotted(key), ns).map_err(|m| config(field, m))?;
    }
    Ok(())
}

fn sysctl_namespace_ok(key: &str, ns: &NsSet) -> std::result::Result<(), String> {
    use LinuxNamespaceType::*;
    if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
        if ns.has(Ipc) {
            return Ok(());
        }
        return Err(format!("{key:?} not allowed in the host's ipc namespace"));
    }
    if key.starts_with("net.") {
        if ns.has(Network) && !ns.path_of(Network).is_some_and(is_host_netns) {
            return Ok(());
        }
        return Err(format!(
            "{key:?} not allowed in the host's network namespace"
        ));
    }
    if ns.has(Uts) {
        match key {
            "kernel.domainname" => return Ok(()),
            "kernel.hostname" => {
                // runc: the "hostname" field is the one way to set it.
                return Err(format!("{key:?} conflicts with the \"hostname\" field"));
            }
            _ => {}
        }
    }
    Err(format!(
        "{key:?} is not in a namespace of the container's own; it would change the host"
    ))
}

/// A netns path that is vsrun's own network namespace is the host's, as far as sysctls go.
fn is_host_netns(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata("/proc/self/ns/net"),
        std::fs::metadata(path),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        // Unreadable: linux.namespaces[].path reports it when the namespace is opened.
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// propagation, hooks

const PROPAGATIONS: &[&str] = &[
    "",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
];

fn validate_propagation(linux: &Linux) -> Result<()> {
    let v = linux.rootfs_propagation().as_deref().unwrap_or_default();
    if !PROPAGATIONS.contains(&v) {
        return Err(config(
            "linux.rootfsPropagation",
            format!("{v:?} is not one of {}", PROPAGATIONS[1..].join(", ")),
        ));
    }
    Ok(())
}

/// config.md "POSIX-platform Hooks": path absolute, timeout greater than zero.
fn validate_hooks(spec: &Spec) -> Result<()> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    for kind in crate::hooks::HookPoint::ALL {
        for (i, h) in kind.of(hooks).iter().enumerate() {
            let p = h.path();
            if !p.is_absolute() || has_nul(p) {
                return Err(config(
                    format!("hooks.{kind}[{i}].path"),
                    format!("{p:?} must be an absolute path"),
                ));
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                return Err(config(
                    format!("hooks.{kind}[{i}].timeout"),
                    "must be greater than zero",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// `runc spec`'s config, rootless parts left out: valid as it stands.
    fn base() -> Value {
        json!({
            "ociVersion": "1.0.2-dev",
            "process": {
                "terminal": false,
                "user": { "uid": 0, "gid": 0 },
                "args": ["sh"],
                "env": ["PATH=/usr/bin:/bin", "TERM=xterm"],
                "cwd": "/",
                "capabilities": { "bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"] },
                "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
                "noNewPrivileges": true
            },
            "root": { "path": "rootfs" },
            "hostname": "c",
            "mounts": [
                { "destination": "/proc", "type": "proc", "source": "proc" },
                { "destination": "/dev", "type": "tmpfs", "source": "tmpfs" }
            ],
            "linux": {
                "namespaces": [
                    { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                    { "type": "uts" }, { "type": "mount" }
                ],
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        })
    }

    fn parse(v: &Value) -> Result<Spec> {
        parse_json(v.to_string().as_bytes(), "config.json")
    }

    /// Validate `base()` after `edit`; Ok(()) or the error's field.
    fn check(edit: impl FnOnce(&mut Value)) -> std::result::Result<(), String> {
        let mut v = base();
        edit(&mut v);
        match parse(&v).and_then(|s| validate(&s)) {
            Ok(()) => Ok(()),
            Err(Error::Config { field, .. }) => Err(field),
            Err(e) => panic!("not a config error: {e}"),
        }
    }

    fn rejects(field: &str, edit: impl FnOnce(&mut Value)) {
        assert_eq!(check(edit), Err(field.to_string()));
    }

    fn accepts(edit: impl FnOnce(&mut Value)) {
        assert_eq!(check(edit), Ok(()));
    }

    fn userns(v: &mut Value) {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "user" }));
        v["linux"]["uidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
        v["linux"]["gidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    }

    fn drop_ns(v: &mut Value, t: &str) {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != t);
    }

    fn error_line(data: &str) -> String {
        parse_json::<Spec>(data.as_bytes(), "config.json")
            .map(|_| ())
            .expect_err("an error")
            .to_string()
    }

    #[test]
    fn base_config_is_valid() {
        accepts(|_| {});
    }

    // JSON shape ----------------------------------------------------------------------------

    #[test]
    fn truncated_json_names_the_file() {
        let e = error_line("{\"ociVersion\": \"1.0.0\"");
        assert!(e.starts_with("config.json: EOF"), "{e}");
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        let mut s = base().to_string();
        s.push_str(" x");
        assert!(error_line(&s).starts_with("config.json: trailing characters"));
    }

    #[test]
    fn type_errors_name_the_field_path() {
        let mut v = base();
        v["process"]["rlimits"][0]["type"] = json!("RLIMIT_FOO");
        let e = parse(&v).err().unwrap().to_string();
        assert!(
            e.starts_with("process.rlimits[0].type: unknown variant"),
            "{e}"
        );
        let mut v = base();
        v["process"]["user"]["uid"] = json!(-1);
        let e = parse(&v).err().unwrap().to_string();
        assert!(e.starts_with("process.user.uid: invalid value"), "{e}");
    }

    #[test]
    fn unknown_capability_error_is_clean() {
        let mut v = base();
        v["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_FOO"]);
        let e = parse(&v).err().unwrap().to_string();
        assert_eq!(
            e,
            "process.capabilities.bounding[1]: unknown capability \"CAP_FOO\""
        );
    }

    #[test]
    fn oci_version_is_required_and_major_1() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("ociVersion");
        let e = require_oci_version(v.to_string().as_bytes()).err().unwrap();
        assert!(e.to_string().starts_with("ociVersion: missing"));
        rejects("ociVersion", |v| v["ociVersion"] = json!("2.0.0"));
        rejects("ociVersion", |v| v["ociVersion"] = json!(""));
        accepts(|v| v["ociVersion"] = json!("1.2.0"));
    }

    #[test]
    fn annotation_keys_are_not_empty() {
        rejects("annotations", |v| v["annotations"] = json!({ "": "x" }));
    }

    // process -------------------------------------------------------------------------------

    #[test]
    fn process_is_required() {
        rejects("process", |v| {
            v.as_object_mut().unwrap().remove("process");
        });
    }

    #[test]
    fn args_must_name_an_executable() {
        rejects("process.args", |v| v["process"]["args"] = json!([]));
        rejects("process.args[0]", |v| v["process"]["args"] = json!([""]));
    }

    #[test]
    fn cwd_must_be_absolute() {
        rejects("process.cwd", |v| v["process"]["cwd"] = json!("tmp"));
        rejects("process.cwd", |v| v["process"]["cwd"] = json!(""));
    }

    #[test]
    fn env_entries_are_key_equals_value() {
        rejects("process.env[1]", |v| {
            v["process"]["env"][1] = json!("NOEQUALS")
        });
        rejects("process.env[0]", |v| v["process"]["env"][0] = json!("=x"));
        accepts(|v| v["process"]["env"][0] = json!("EMPTY="));
    }

    #[test]
    fn rlimit_types_are_unique() {
        rejects("process.rlimits[1].type", |v| {
            v["process"]["rlimits"] = json!([
                { "type": "RLIMIT_NOFILE", "hard": 1, "soft": 1 },
                { "type": "RLIMIT_NOFILE", "hard": 2, "soft": 2 }
            ])
        });
    }

    #[test]
    fn rlimit_soft_must_not_exceed_hard() {
        rejects("process.rlimits[0]", |v| {
            v["process"]["rlimits"][0]["soft"] = json!(2048)
        });
    }

    #[test]
    fn console_size_without_a_terminal_is_ignored() {
        accepts(|v| v["process"]["consoleSize"] = json!({ "height": 24, "width": 80 }));
    }

    #[test]
    fn oom_score_adj_is_in_range() {
        rejects("process.oomScoreAdj", |v| {
            v["process"]["oomScoreAdj"] = json!(5000)
        });
        rejects("process.oomScoreAdj", |v| {
            v["process"]["oomScoreAdj"] = json!(-1001)
        });
        accepts(|v| v["process"]["oomScoreAdj"] = json!(-1000));
    }

    #[test]
    fn umask_is_permission_bits() {
        rejects("process.user.umask", |v| {
            v["process"]["user"]["umask"] = json!(0o1000)
        });
        accepts(|v| v["process"]["user"]["umask"] = json!(0o777));
    }

    #[test]
    fn process_json_errors_are_relative_to_the_file() {
        let mut p = base()["process"].clone();
        p["rlimits"][0]["hard"] = json!("x");
        let e = parse_process(p.to_string().as_bytes()).err().unwrap();
        assert!(
            e.to_string().starts_with("rlimits[0].hard: invalid type"),
            "{e}"
        );
        let mut p = base()["process"].clone();
        p["cwd"] = json!("rel");
        let e = parse_process(p.to_string().as_bytes()).err().unwrap();
        assert!(e.to_string().starts_with("cwd: "), "{e}");
        let mut p = base()["process"].clone();
        p["args"] = json!([]);
        let e = parse_process(p.to_string().as_bytes()).err().unwrap();
        assert!(e.to_string().starts_with("args: "), "{e}");
        assert!(parse_process(base()["process"].to_string().as_bytes()).is_ok());
    }

    // namespaces ----------------------------------------------------------------------------

    #[test]
    fn namespace_types_are_unique() {
        rejects("linux.namespaces[5].type", |v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "type": "pid" }))
        });
    }

    #[test]
    fn unknown_namespace_type_names_the_entry() {
        let mut v = base();
        v["linux"]["namespaces"][1]["type"] = json!("bogus");
        let e = parse(&v).err().unwrap().to_string();
        assert!(
            e.starts_with("linux.namespaces[1].type: unknown variant"),
            "{e}"
        );
    }

    #[test]
    fn namespace_path_must_be_absolute() {
        rejects("linux.namespaces[1].path", |v| {
            v["linux"]["namespaces"][1]["path"] = json!("proc/1/ns/net")
        });
        accepts(|v| v["linux"]["namespaces"][1]["path"] = json!(""));
    }

    #[test]
    fn mappings_need_a_user_namespace() {
        rejects("linux.uidMappings", |v| {
            v["linux"]["uidMappings"] = json!([{ "containerID": 0, "hostID": 1, "size": 1 }])
        });
        rejects("linux.gidMappings", |v| {
            v["linux"]["gidMappings"] = json!([{ "containerID": 0, "hostID": 1, "size": 1 }])
        });
    }

    #[test]
    fn new_user_namespace_needs_mappings() {
        accepts(userns);
        rejects("linux.uidMappings", |v| {
            userns(v);
            v["linux"].as_object_mut().unwrap().remove("uidMappings");
        });
        rejects("linux.gidMappings", |v| {
            userns(v);
            v["linux"]["gidMappings"] = json!([]);
        });
        // A joined user namespace brings its own mappings.
        accepts(|v| {
            userns(v);
            let l = v["linux"].as_object_mut().unwrap();
            l.remove("uidMappings");
            l.remove("gidMappings");
            drop_ns(v, "user");
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "type": "user", "path": "/proc/1/ns/user" }));
        });
    }

    #[test]
    fn idmap_size_must_be_positive() {
        rejects("linux.uidMappings[0].size", |v| {
            userns(v);
            v["linux"]["uidMappings"][0]["size"] = json!(0);
        });
    }

    #[test]
    fn idmap_ranges_must_not_overlap() {
        rejects("linux.uidMappings[1]", |v| {
            userns(v);
            v["linux"]["uidMappings"] = json!([
                { "containerID": 0, "hostID": 100000, "size": 10 },
                { "containerID": 5, "hostID": 200000, "size": 10 }
            ]);
        });
        rejects("linux.gidMappings[1]", |v| {
            userns(v);
            v["linux"]["gidMappings"] = json!([
                { "containerID": 0, "hostID": 100000, "size": 10 },
                { "containerID": 100, "hostID": 100009, "size": 10 }
            ]);
        });
        accepts(|v| {
            userns(v);
            v["linux"]["uidMappings"] = json!([
                { "containerID": 0, "hostID": 100000, "size": 10 },
                { "containerID": 10, "hostID": 100010, "size": 10 }
            ]);
        });
    }

    #[test]
    fn idmap_ranges_must_not_overflow() {
        rejects("linux.uidMappings[0]", |v| {
            userns(v);
            v["linux"]["uidMappings"][0]["hostID"] = json!(u32::MAX - 10);
        });
        rejects("linux.uidMappings[0]", |v| {
            userns(v);
            v["linux"]["uidMappings"][0]["containerID"] = json!(u32::MAX);
            v["linux"]["uidMappings"][0]["size"] = json!(1);
        });
    }

    #[test]
    fn idmap_has_at_most_340_lines() {
        rejects("linux.uidMappings", |v| {
            userns(v);
            let lines: Vec<Value> = (0..341)
                .map(|i| json!({ "containerID": i, "hostID": 100000 + i, "size": 1 }))
                .collect();
            v["linux"]["uidMappings"] = json!(lines);
        });
        accepts(|v| {
            userns(v);
            let lines: Vec<Value> = (0..340)
                .map(|i| json!({ "containerID": i, "hostID": 100000 + i, "size": 1 }))
                .collect();
            v["linux"]["uidMappings"] = json!(lines);
        });
    }

    #[test]
    fn mount_idmaps_are_checked_too() {
        rejects("mounts[1].uidMappings[0].size", |v| {
            v["mounts"][1]["uidMappings"] = json!([{ "containerID": 0, "hostID": 1, "size": 0 }])
        });
    }

    #[test]
    fn hostname_needs_a_uts_namespace() {
        rejects("hostname", |v| drop_ns(v, "uts"));
        rejects("domainname", |v| {
            drop_ns(v, "uts");
            v.as_object_mut().unwrap().remove("hostname");
            v["domainname"] = json!("example.org");
        });
        accepts(|v| {
            drop_ns(v, "uts");
            v["hostname"] = json!("");
        });
        rejects("hostname", |v| v["hostname"] = json!("h".repeat(65)));
    }

    #[test]
    fn time_offsets_need_a_time_namespace() {
        rejects("linux.timeOffsets", |v| {
            v["linux"]["timeOffsets"] = json!({ "monotonic": { "secs": 1 } })
        });
    }

    #[test]
    fn time_offsets_are_for_monotonic_and_boottime() {
        let with_time = |v: &mut Value| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "type": "time" }));
        };
        accepts(|v| {
            with_time(v);
            v["linux"]["timeOffsets"] =
                json!({ "monotonic": { "secs": 1 }, "boottime": { "nanosecs": 999999999 } });
        });
        rejects("linux.timeOffsets.realtime", |v| {
            with_time(v);
            v["linux"]["timeOffsets"] = json!({ "realtime": { "secs": 1 } });
        });
        rejects("linux.timeOffsets.boottime.nanosecs", |v| {
            with_time(v);
            v["linux"]["timeOffsets"] = json!({ "boottime": { "nanosecs": 1000000000u32 } });
        });
        rejects("linux.timeOffsets", |v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "type": "time", "path": "/proc/1/ns/time" }));
            v["linux"]["timeOffsets"] = json!({ "monotonic": { "secs": 1 } });
        });
    }

    // mounts and paths ----------------------------------------------------------------------

    #[test]
    fn clean_path_is_lexical_and_stays_under_root() {
        for (i, o) in [
            ("/", "/"),
            ("/..", "/"),
            ("/../..", "/"),
            ("/a/./b/../c", "/a/c"),
            ("/proc/../x", "/x"),
            ("//a//b/", "/a/b"),
            ("/a/..", "/"),
        ] {
            assert_eq!(clean_path(Path::new(i)), Path::new(o), "{i}");
        }
    }

    #[test]
    fn mount_destination_must_be_absolute() {
        rejects("mounts[1].destination", |v| {
            v["mounts"][1]["destination"] = json!("dev")
        });
    }

    #[test]
    fn mount_destination_must_not_be_root() {
        for d in ["/", "/..", "/proc/..", "/./"] {
            rejects("mounts[0].destination", |v| {
                v["mounts"][0]["destination"] = json!(d)
            });
        }
        rejects("mounts[0].destination", |v| {
            v["mounts"][0]["destination"] = json!("/pr\u{0}oc")
        });
        accepts(|v| v["mounts"][0]["destination"] = json!("/../proc"));
    }

    #[test]
    fn bind_mounts_need_a_source() {
        rejects("mounts[2].source", |v| {
            v["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "destination": "/data", "type": "bind", "options": ["rbind"] }))
        });
        rejects("mounts[2].source", |v| {
            v["mounts"].as_array_mut().unwrap().push(
                json!({ "destination": "/data", "source": "", "type": "none", "options": ["bind"] }),
            )
        });
        accepts(|v| {
            v["mounts"].as_array_mut().unwrap().push(
                json!({ "destination": "/data", "source": "/srv", "type": "none", "options": ["bind"] }),
            )
        });
    }

    #[test]
    fn masked_and_readonly_paths_are_absolute() {
        rejects("linux.maskedPaths[0]", |v| {
            v["linux"]["maskedPaths"][0] = json!("proc/kcore")
        });
        rejects("linux.readonlyPaths[0]", |v| {
            v["linux"]["readonlyPaths"][0] = json!("sys")
        });
    }

    #[test]
    fn masked_paths_need_a_mount_namespace() {
        rejects("linux.maskedPaths", |v| drop_ns(v, "mount"));
    }

    // devices -------------------------------------------------------------------------------

    fn with_device(v: &mut Value, d: Value) {
        v["linux"]["devices"] = json!([
            { "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229 },
            d
        ]);
    }

    #[test]
    fn device_path_is_absolute_anywhere_but_the_root() {
        rejects("linux.devices[1].path", |v| {
            with_device(
                v,
                json!({ "path": "dev/x", "type": "c", "major": 1, "minor": 3 }),
            )
        });
        rejects("linux.devices[1].path", |v| {
            with_device(
                v,
                json!({ "path": "/dev/../..", "type": "c", "major": 1, "minor": 3 }),
            )
        });
        for path in ["/foo-dev", "/sub/dir/foo-dev", "/dev/../x", "/dev/net/tun"] {
            accepts(|v| {
                with_device(
                    v,
                    json!({ "path": path, "type": "c", "major": 10, "minor": 200 }),
                )
            });
        }
    }

    #[test]
    fn device_paths_are_unique() {
        rejects("linux.devices[1].path", |v| {
            with_device(
                v,
                json!({ "path": "/dev/./fuse", "type": "c", "major": 10, "minor": 229 }),
            )
        });
    }

    #[test]
    fn device_numbers_fit_the_type() {
        rejects("linux.devices[1].major", |v| {
            with_device(
                v,
                json!({ "path": "/dev/x", "type": "b", "major": -1, "minor": 0 }),
            )
        });
        rejects("linux.devices[1].minor", |v| {
            with_device(
                v,
                json!({ "path": "/dev/x", "type": "u", "major": 1, "minor": 1 << 20 }),
            )
        });
        accepts(|v| {
            with_device(
                v,
                json!({ "path": "/dev/x", "type": "p", "major": 1, "minor": 0 }),
            )
        });
        rejects("linux.devices[1].type", |v| {
            with_device(v, json!({ "path": "/dev/x", "type": "a" }))
        });
        accepts(|v| with_device(v, json!({ "path": "/dev/x", "type": "p" })));
        rejects("linux.devices[1].fileMode", |v| {
            with_device(
                v,
                json!({ "path": "/dev/x", "type": "c", "major": 1, "minor": 3, "fileMode": 0o20666 }),
            )
        });
    }

    // sysctl --------------------------------------------------------------------------------

    fn sysctl(v: &mut Value, key: &str) {
        v["linux"]["sysctl"] = json!({ key: "1" });
    }

    #[test]
    fn sysctl_names_are_well_formed() {
        for bad in [
            "",
            "net..ipv4",
            "net.ipv4.ip forward",
            ".net",
            "net.",
            "net/ipv4/../x",
        ] {
            rejects(&format!("linux.sysctl.{bad}"), |v| sysctl(v, bad));
        }
    }

    #[test]
    fn sysctl_slash_form_is_sysctl8s() {
        assert_eq!(
            sysctl_path("net/ipv4/conf/eno2.100/rp_filter"),
            Some(PathBuf::from("net/ipv4/conf/eno2.100/rp_filter"))
        );
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward"),
            Some(PathBuf::from("net/ipv4/ip_forward"))
        );
        assert_eq!(sysctl_path("net.ipv4.conf.//.x"), None);
        accepts(|v| sysctl(v, "net/ipv4/ip_forward"));
    }

    #[test]
    fn net_sysctls_need_a_network_namespace() {
        accepts(|v| sysctl(v, "net.ipv4.ip_forward"));
        rejects("linux.sysctl.net.ipv4.ip_forward", |v| {
            drop_ns(v, "network");
            sysctl(v, "net.ipv4.ip_forward");
        });
        rejects("linux.sysctl.net.ipv4.ip_forward", |v| {
            drop_ns(v, "network");
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "type": "network", "path": "/proc/self/ns/net" }));
            sysctl(v, "net.ipv4.ip_forward");
        });
    }

    #[test]
    fn ipc_sysctls_need_an_ipc_namespace() {
        accepts(|v| sysctl(v, "kernel.shmmax"));
        accepts(|v| sysctl(v, "fs.mqueue.msg_max"));
        rejects("linux.sysctl.kernel.msgmax", |v| {
            drop_ns(v, "ipc");
            sysctl(v, "kernel.msgmax");
        });
        rejects("linux.sysctl.fs.mqueue.msg_max", |v| {
            drop_ns(v, "ipc");
            sysctl(v, "fs.mqueue.msg_max");
        });
    }

    #[test]
    fn uts_sysctls() {
        accepts(|v| sysctl(v, "kernel.domainname"));
        rejects("linux.sysctl.kernel.hostname", |v| {
            sysctl(v, "kernel.hostname")
        });
        rejects("linux.sysctl.kernel.domainname", |v| {
            drop_ns(v, "uts");
            v.as_object_mut().unwrap().remove("hostname");
            sysctl(v, "kernel.domainname");
        });
    }

    #[test]
    fn host_wide_sysctls_are_rejected() {
        for key in ["kernel.pid_max", "vm.swappiness", "fs.file-max"] {
            rejects(&format!("linux.sysctl.{key}"), |v| sysctl(v, key));
        }
    }

    // propagation, hooks --------------------------------------------------------------------

    #[test]
    fn rootfs_propagation_is_a_known_mode() {
        rejects("linux.rootfsPropagation", |v| {
            v["linux"]["rootfsPropagation"] = json!("sideways")
        });
        for p in PROPAGATIONS {
            accepts(|v| v["linux"]["rootfsPropagation"] = json!(p));
        }
    }

    #[test]
    fn hook_paths_are_absolute() {
        rejects("hooks.poststart[0].path", |v| {
            v["hooks"] = json!({ "poststart": [{ "path": "bin/true" }] })
        });
        rejects(
            "hooks.createRuntime[0].timeout",
            |v| v["hooks"] = json!({ "createRuntime": [{ "path": "/bin/true", "timeout": 0 }] }),
        );
    }

    // not supported yet ---------------------------------------------------------------------

    #[test]
    fn unsupported_fields_are_refused_by_name() {
        // Implemented since: terminal, labels (checked against the host by security::labels),
        // ioPriority, scheduler, personality, memoryPolicy (task.rs), hooks.
        accepts(|v| v["process"]["terminal"] = json!(true));
        accepts(|v| v["process"]["ioPriority"] = json!({ "class": "IOPRIO_CLASS_IDLE" }));
        accepts(|v| v["process"]["scheduler"] = json!({ "policy": "SCHED_OTHER" }));
        accepts(|v| v["linux"]["mountLabel"] = json!("x"));
        accepts(|v| v["linux"]["personality"] = json!({ "domain": "LINUX32" }));
        accepts(|v| v["linux"]["memoryPolicy"] = json!({ "mode": "MPOL_DEFAULT" }));
        accepts(|v| v["hooks"] = json!({ "prestart": [{ "path": "/bin/true" }] }));
        rejects("linux.intelRdt", |v| {
            v["linux"]["intelRdt"] = json!({ "closID": "x" })
        });
        accepts(|v| v["hooks"] = json!({ "prestart": [] }));
        accepts(|v| v["linux"]["cgroupsPath"] = json!("/vsrun/x"));
        accepts(|v| v["linux"]["resources"] = json!({ "pids": { "limit": 10 } }));
    }

    // load ----------------------------------------------------------------------------------

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "vsrun-bundle-test-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn load_field(dir: &Path) -> String {
        match load(dir) {
            Err(Error::Config { field, .. }) => field,
            Err(e) => panic!("{e}"),
            Ok(_) => "ok".into(),
        }
    }

    #[test]
    fn load_resolves_root_path_against_the_bundle() {
        let t = TempDir::new("root");
        std::fs::create_dir(t.0.join("rootfs")).unwrap();
        std::fs::write(t.0.join("config.json"), base().to_string()).unwrap();
        let b = load(&t.0).unwrap();
        assert_eq!(b.rootfs, std::fs::canonicalize(t.0.join("rootfs")).unwrap());
    }

    #[test]
    fn load_rejects_missing_or_non_directory_rootfs() {
        let t = TempDir::new("noroot");
        std::fs::write(t.0.join("config.json"), base().to_string()).unwrap();
        assert_eq!(load_field(&t.0), "root.path");
        std::fs::write(t.0.join("rootfs"), "").unwrap();
        assert_eq!(load_field(&t.0), "root.path");
        let mut v = base();
        v["root"]["path"] = json!("");
        std::fs::write(t.0.join("config.json"), v.to_string()).unwrap();
        assert_eq!(load_field(&t.0), "root.path");
    }

    #[test]
    fn load_requires_config_json_and_oci_version() {
        let t = TempDir::new("nocfg");
        std::fs::create_dir(t.0.join("rootfs")).unwrap();
        assert_eq!(load_field(&t.0), "config.json");
        let mut v = base();
        v.as_object_mut().unwrap().remove("ociVersion");
        std::fs::write(t.0.join("config.json"), v.to_string()).unwrap();
        assert_eq!(load_field(&t.0), "ociVersion");
        std::fs::write(t.0.join("config.json"), "").unwrap();
        assert_eq!(load_field(&t.0), "config.json");
        for text in ["[]", "[\"1.0.0\"]", "\"x\"", "3"] {
            std::fs::write(t.0.join("config.json"), text).unwrap();
            assert_eq!(load_field(&t.0), "config.json", "{text}");
        }
    }
}
