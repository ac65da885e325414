//! `vsrun list`: runc's table (tabwriter: min width 12, padding 3), `--format json`, `-q`.
//! With no containers the JSON form prints `[]` (runc prints `null`): an empty list is what
//! scripts iterate over without a special case.

use crate::cli::{GlobalOpts, ListArgs};
use crate::error::{config, Result};
use crate::state::RootDir;
use serde_json::Value;
use std::os::unix::fs::MetadataExt;

pub fn run(g: &GlobalOpts, args: &ListArgs) -> Result<i32> {
    let mut rows: Vec<Value> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&g.root) {
        // One fstatat per entry (relative to the root dir) gives both the type and the
        // owner: a full-path stat for each would walk the root's path again every time.
        let mut dirs: Vec<_> = entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| {
                let meta = e.metadata().ok().filter(|m| m.is_dir())?;
                Some((e, meta.uid()))
            })
            .collect();
        dirs.sort_by_key(|(e, _)| e.file_name());
        if let Ok(root) = crate::state::RootDir::open(&g.root) {
            rows = describe_all(&root, &dirs);
        }
    }
    if args.quiet {
        for r in &rows {
            println!("{}", r["id"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    match args.format.as_str() {
        "json" => println!("{}", Value::Array(rows)),
        "table" => print!("{}", table(&rows)),
        other => {
            return Err(config(
                "--format",
                format!("{other:?}: must be table or json"),
            ))
        }
    }
    Ok(0)
}

/// Each container costs about ten syscalls, most of them path walks and /proc/<pid>/stat:
/// with many containers, one thread per CPU shares them out (1000 containers on 2 CPUs:
/// README "Benchmarks"). The rows keep the sorted order.
fn describe_all(root: &RootDir, dirs: &[(std::fs::DirEntry, u32)]) -> Vec<Value> {
    const PER_THREAD_MIN: usize = 64;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cpus.min(dirs.len() / PER_THREAD_MIN).max(1);
    let chunk = dirs.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = dirs
            .chunks(chunk)
            .map(|part| s.spawn(move || describe_part(root, part)))
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// Each container's files are opened relative to the root's fd (state::RootDir).
fn describe_part(root: &RootDir, dirs: &[(std::fs::DirEntry, u32)]) -> Vec<Value> {
    dirs.iter()
        .filter_map(|(e, uid)| {
            let name = e.file_name();
            // A container being created or deleted right now is skipped, not an error.
            let st = root.load(&name).ok()?;
            let status = root.status(&name, &st);
            let owner = crate::state::owner_name(*uid);
            Some(super::state::state_object(st, status, owner))
        })
        .collect()
}

fn table(rows: &[Value]) -> String {
    let mut cells: Vec<Vec<String>> = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .iter()
        .map(|s| s.to_string())
        .collect()];
    for r in rows {
        let s = |k: &str| match &r[k] {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        cells.push(vec![
            s("id"),
            s("pid"),
            s("status"),
            s("bundle"),
            s("created"),
            s("owner"),
        ]);
    }
    let ncol = cells[0].len();
    let widths: Vec<usize> = (0..ncol)
        .map(|c| {
            cells
                .iter()
                .map(|row| row[c].len() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for row in &cells {
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == ncol {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}
