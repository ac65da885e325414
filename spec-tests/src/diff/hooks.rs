//! Hook scripts that record what each runtime gave a hook (env, args, cwd, the state on
//! stdin), for differential.rs and sweep.rs.

use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub struct HookScripts<'a> {
    /// Where the scripts and their records go, as the host sees it.
    pub dir: &'a Path,
    /// The same directory as the container sees it, for the hooks that run there
    /// (createContainer, startContainer); None: every hook runs its host path.
    pub in_container: Option<&'a str>,
    /// Only hooks whose path is a placeholder, `@HOOK` (records), `@HOOK-FAIL` (records, then
    /// exits 3) or `@HOOK-MISSING` (no script); otherwise every hook.
    pub placeholders_only: bool,
}

fn runs_in_container(point: &str) -> bool {
    matches!(point, "createContainer" | "startContainer")
}

/// Each chosen hook becomes the script `<point>-<i>.sh` that records env, args, cwd and stdin
/// to `<point>-<i>.{env,args,cwd,stdin}`; returns the (point, index) of each.
pub fn write_hook_scripts(config: &mut Value, s: &HookScripts<'_>) -> Vec<(String, usize)> {
    fs::create_dir_all(s.dir).unwrap();
    let mut hooks = Vec::new();
    let Some(points) = config["hooks"].as_object_mut() else {
        return hooks;
    };
    for (point, list) in points.iter_mut() {
        for (i, h) in list.as_array_mut().into_iter().flatten().enumerate() {
            let kind = h["path"].as_str().unwrap_or("").to_string();
            if s.placeholders_only && !kind.starts_with("@HOOK") {
                continue;
            }
            let inside = s.in_container.filter(|_| runs_in_container(point));
            let seen_dir = inside.map_or_else(|| s.dir.to_string_lossy(), Into::into);
            let base = format!("{seen_dir}/{point}-{i}");
            let tail = if kind == "@HOOK-FAIL" { "exit 3\n" } else { "" };
            // In the container its own tools by PATH; on the host the host's by full path.
            let (env, cat) = match inside {
                Some(_) => ("env", "cat"),
                None => ("/usr/bin/env", "/bin/cat"),
            };
            let script = format!(
                "#!/bin/sh\n{env} > '{base}.env'\nprintf '%s\\n' \"$@\" > '{base}.args'\n\
                 pwd > '{base}.cwd'\n{cat} > '{base}.stdin'\n{tail}"
            );
            let sp = s.dir.join(format!("{point}-{i}.sh"));
            if kind != "@HOOK-MISSING" {
                fs::write(&sp, script).unwrap();
                fs::set_permissions(&sp, fs::Permissions::from_mode(0o755)).unwrap();
            }
            h["path"] = match inside {
                Some(d) => format!("{d}/{point}-{i}.sh").into(),
                None => sp.to_string_lossy().into_owned().into(),
            };
            hooks.push((point.clone(), i));
        }
    }
    hooks
}
