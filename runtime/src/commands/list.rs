//! `vsrun list`: runc's table (tabwriter: min width 12, padding 3), `--format json`, `-q`.
//! With no containers the JSON form prints `[]` (runc prints `null`): an empty list is what
//! scripts iterate over without a special case.

use crate::cli::{GlobalOpts, ListArgs};
use crate::error::{config, Result};
use serde_json::Value;

pub fn run(g: &GlobalOpts, args: &ListArgs) -> Result<i32> {
    let mut rows: Vec<Value> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&g.root) {
        let mut dirs: Vec<_> = entries
            .flatten()
            .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        dirs.sort_by_key(|e| e.file_name());
        for e in dirs {
            // A container being created or deleted right now is skipped, not an error.
            if let Ok(v) = super::state::describe(&e.path()) {
                rows.push(v);
            }
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
