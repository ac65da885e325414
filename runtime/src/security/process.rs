//! The checks of a `process` object, in config.json and in exec's process.json: what the
//! spec and the kernel refuse (args, cwd, env, rlimits, oomScoreAdj, umask), before the plan
//! (`security::plan`, `context::exec::plan`) turns it into kernel steps.

use crate::error::{config, Result};
use oci_spec::runtime::Process;

/// `prefix` is the field path of the object (`process.` in config.json, empty in process.json).
pub fn validate_process(p: &Process, prefix: &str) -> Result<()> {
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
