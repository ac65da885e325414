//! The machinery shared by the differential tests (tests/differential.rs, on the engines'
//! config files, and tests/sweep.rs, on generated configs): run one runtime (runc or vsrun) in
//! its own `--root`, start a container the way engines do, and turn what the container and the
//! host see into a flat map "fact name → value" that can be compared between the two runtimes,
//! with each run's own names normalised away.

use crate::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod allowed;
mod hooks;
mod host;
mod norm;
mod report;
mod rt;
pub use allowed::*;
pub use hooks::*;
pub use host::*;
pub use norm::*;
pub use report::*;
pub use rt::*;

/// What a bundle prepared for one runtime must tell the shared steps.
pub trait Subject {
    /// The bundle directory (also the runtime's working directory).
    fn path(&self) -> &Path;
    /// The container id.
    fn id(&self) -> &str;
    /// The config.json as written.
    fn config(&self) -> &Value;
    /// (hook point, index) of every hook script under `<bundle>/hooks/`.
    fn hooks(&self) -> &[(String, usize)];
    /// The container's cgroupsPath as written to config.json.
    fn cgroups_path(&self) -> Option<String> {
        self.config()["linux"]["cgroupsPath"]
            .as_str()
            .map(String::from)
    }
}

/// Compare two fact maps: (real differences, allowed ones with their reasons), each a
/// multi-line description. `allowed(key, runc, vsrun)` returns the reason a difference is kept.
pub fn diff_facts(
    runc: &Facts,
    vsrun: &Facts,
    allowed: impl Fn(&str, &str, &str) -> Option<&'static str>,
) -> (Vec<String>, Vec<String>) {
    let keys: BTreeSet<&String> = runc.keys().chain(vsrun.keys()).collect();
    let missing = "<absent>".to_string();
    let mut real = Vec::new();
    let mut tolerated = Vec::new();
    for k in &keys {
        let a = runc.get(*k).unwrap_or(&missing);
        let b = vsrun.get(*k).unwrap_or(&missing);
        if a == b {
            continue;
        }
        let line = format!("  {k}\n    runc:  {}\n    vsrun: {}", short(a), short(b));
        match allowed(k, a, b) {
            Some(why) => tolerated.push(format!("{line}\n    allowed: {why}")),
            None => real.push(line),
        }
    }
    (real, tolerated)
}

/// `*` in `pattern` matches any run of characters.
pub fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, tail)) => {
            let Some(rest) = s.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

pub fn runc_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RUNC_BIN") {
        return PathBuf::from(p);
    }
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
        "/sbin",
    ] {
        let p = Path::new(dir).join("runc");
        if p.is_file() {
            return p;
        }
    }
    panic!("runc not found (hack/test.sh installs Debian's runc; or set RUNC_BIN)");
}

/// Set in every runtime invocation's environment.
pub const RUNTIME_ENV_MARKER: &str = "VSRUN_DIFF_RUNTIME_ENV";

pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);
pub const OUTPUT_TIMEOUT: Duration = Duration::from_secs(20);

pub fn short(s: &str) -> String {
    let s = s.trim().replace('\n', " ⏎ ");
    let s = s.as_str();
    if s.len() > 600 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(600).map(|x| x.0).unwrap_or(s.len())]
        )
    } else {
        s.to_string()
    }
}
