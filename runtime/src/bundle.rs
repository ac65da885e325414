//! Read a bundle's config.json and validate it before anything touches the kernel. Every error
//! names the JSON field (`linux.mounts[3].destination: ...`), because that is the line an
//! engine shows its user when a container fails to start.
//!
//! The rules follow the OCI runtime spec (config.md, config-linux.md) and what runc's
//! libcontainer/configs/validate rejects; where vsrun decides differently the reason is written
//! next to the rule. Fields vsrun does not implement yet are refused in `reject_unsupported`,
//! never silently ignored.
//!
//! This file parses and dispatches; each section's checks live beside its plan, so one file
//! holds everything about a field: `security/process.rs` (process), `context/namespaces.rs`
//! (namespaces, id maps, hostname, time offsets), `rootfs/check.rs` (mounts, devices, masked
//! and read-only paths, propagation), `rootfs/sysctl.rs`, `hooks.rs`.

use crate::context::namespaces;
use crate::error::{config, Error, Result};
use crate::{rootfs, security};
use oci_spec::runtime::{Process, Spec};
use std::path::{Path, PathBuf};

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
    security::process::validate_process(&p, "")?;
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
    // The field is found in the edited text too; a line and column would point into it, not
    // into the user's file, so they are left out.
    let parsed = parse_json(&edited, what).map_err(|e| match e {
        Error::Config { field, msg } => Error::Config {
            msg: msg
                .rsplit_once(" at line ")
                .map_or(msg.clone(), |(m, _)| m.to_string()),
            field,
        },
        other => other,
    })?;
    Ok((parsed, warnings))
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
    let value = T::deserialize(&mut de).map_err(|e| {
        // A syntax error (truncated, not JSON) belongs to the file, with its line and column;
        // a type error to the field.
        let data_error = e.classify() == serde_json::error::Category::Data;
        let path = json_path::field_at(data, e.line(), e.column());
        let field = if !data_error || path.is_empty() {
            what.to_string()
        } else {
            path
        };
        let msg = clean_serde_message(e.to_string());
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
    security::process::validate_process(process, "process.")?;
    validate_annotations(spec)?;
    let ns = namespaces::validate_namespaces(spec.linux().as_ref())?;
    namespaces::validate_idmaps(spec, &ns)?;
    namespaces::validate_uts(spec, &ns)?;
    rootfs::check::validate_mounts(spec.mounts().as_deref().unwrap_or_default())?;
    crate::hooks::validate_hooks(spec)?;
    if let Some(linux) = spec.linux() {
        namespaces::validate_time_offsets(linux, &ns)?;
        rootfs::check::validate_restricted_paths(linux, &ns)?;
        rootfs::check::validate_devices(linux)?;
        rootfs::sysctl::validate_sysctl(linux, &ns)?;
        rootfs::check::validate_propagation(linux)?;
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

mod json_path;
#[cfg(test)]
mod tests;
