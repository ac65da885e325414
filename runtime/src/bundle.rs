//! Read a bundle's config.json and validate it before anything touches the kernel. Every error
//! names the JSON field (`linux.mounts[3].destination: ...`), because that is the line an
//! engine shows its user when a container fails to start.

use crate::error::{config, Error, Result};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

/// A loaded, validated bundle. `rootfs` is absolute and exists.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

pub fn load(dir: &Path) -> Result<Bundle> {
    let dir = std::path::absolute(dir).map_err(|e| config("bundle", e.to_string()))?;
    let path = dir.join("config.json");
    let data = std::fs::read(&path)
        .map_err(|e| config("config.json", format!("{}: {e}", path.display())))?;
    let spec: Spec = parse_json(&data, "config.json")?;
    let rootfs = rootfs_path(&dir, &spec)?;
    validate(&spec)?;
    Ok(Bundle { dir, spec, rootfs })
}

/// Deserialize JSON, reporting the path of the offending field (`process.rlimits[0].type`).
pub fn parse_json<T: serde::de::DeserializeOwned>(data: &[u8], what: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." || path.is_empty() {
            what.to_string()
        } else {
            path
        };
        Error::Config {
            field,
            msg: inner.to_string(),
        }
    })
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
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| config("process", "missing"))?;
    let args = process.args().as_deref().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(config("process.args", "must name an executable"));
    }
    if !process.cwd().is_absolute() {
        return Err(config(
            "process.cwd",
            format!("{:?} must be absolute", process.cwd()),
        ));
    }
    Ok(())
}
