//! `vsrun ps ID [-- ps-args]`: the processes of the container's cgroup, as a `ps` table
//! filtered to those PIDs (runc's behaviour), or `--format json`: an array of PIDs.

use crate::cli::{GlobalOpts, PsArgs};
use crate::error::{config, state, Result};
use crate::state::Container;

pub fn run(g: &GlobalOpts, args: &PsArgs) -> Result<i32> {
    let st = Container::open(&g.root, &args.id)?.load()?;
    let mut pids = crate::cgroups::pids(&st.cgroup_path, st.systemd_cgroup, &st.id, st.rootless)?;
    pids.sort_unstable();
    match args.format.as_str() {
        "json" => {
            println!("{}", serde_json::to_string(&pids).unwrap_or_default());
            Ok(0)
        }
        "table" => table(&args.ps_args, &pids),
        other => Err(config(
            "--format",
            format!("{other:?}: must be table or json"),
        )),
    }
}

fn table(ps_args: &[String], pids: &[i32]) -> Result<i32> {
    let ps_args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&ps_args)
        .output()
        .map_err(|e| state(format!("run ps {}: {e}", ps_args.join(" "))))?;
    if !out.status.success() {
        return Err(state(format!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| state("ps output has no PID column".to_string()))?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.binary_search(&p).is_ok()) {
            println!("{line}");
        }
    }
    Ok(0)
}
