//! `update` is applied whole or not at all, as runc's is: the files the new resources will
//! write are read first, and written back when a later write fails (a value the kernel
//! refuses, `memory.limit` below the usage), so `update --pids-limit 77 --memory 4096` that
//! fails on the memory leaves `pids.max` as it was.
//!
//! The files come from the one field table (`host::needs`), so every field `update` can set
//! is covered. What is read back is written back: each of these files takes its own read
//! format (numbers, "max", "8:0 100" lines for the per-device ones, one line at a time).

use super::host::needs;
use super::layout::Layout;
use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};

pub(super) struct Snapshot(Vec<(PathBuf, String)>);

/// The current content of every file the set fields of `n` may write.
pub(super) fn take(n: &LinuxResources, layout: &Layout, path: &Path) -> Snapshot {
    let mut saved = Vec::new();
    for need in needs(n, layout.is_v2()) {
        let Some(dir) = layout.dir(need.controller, path) else {
            continue;
        };
        for f in &need.files {
            let file = dir.join(f);
            if saved.iter().any(|(p, _)| *p == file) {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(&file) {
                saved.push((file, text));
            }
        }
    }
    Snapshot(saved)
}

/// Write everything back. Some pairs must go in one order (v1 memory.limit_in_bytes at most
/// memory.memsw.limit_in_bytes), so the writes that fail are retried while any succeeds.
/// Returns the files that could not be put back.
pub(super) fn restore(s: Snapshot) -> Vec<PathBuf> {
    let mut left: Vec<(PathBuf, String)> = s.0;
    loop {
        let before = left.len();
        left.retain(|(file, text)| !write_back(file, text));
        if left.is_empty() || left.len() == before {
            return left.into_iter().map(|(f, _)| f).collect();
        }
    }
}

/// One write per line: the per-device files take one device a write. Lines that only say a
/// device has no setting ("8:0 rbps=max ...", a weight of 0) write back as read.
fn write_back(file: &Path, text: &str) -> bool {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return true;
    }
    lines
        .iter()
        .map(|l| std::fs::write(file, l).is_ok())
        .fold(true, |all, ok| all && ok)
}
