//! The checks of a refused input (design.md "Errors and cleanup"): exit status 1 (255 for
//! `exec`), exactly one `vsrun: ` stderr line naming the field, and nothing left behind — no
//! entry in --root, no cgroup, no mount mentioning the bundle, no process in it. Shared by the
//! bad_input* tables.

use crate::{
    assert_bundle_clean, cgroup_dirs_of, output_text, reference_mode, stderr_str, stdout_str,
    unique_id, Bundle, Runtime,
};
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// How a bad bundle reaches vsrun.
#[derive(Clone, Copy, Debug)]
pub enum Via {
    /// `vsrun create --bundle B ID`
    Create,
    /// `vsrun run --bundle B ID` (no fifo round trip; a different code path for failures)
    Run,
}

/// Exit 1, exactly one stderr line, `vsrun: ...`, containing `needle`, and nothing on
/// stdout (in reference mode only the status: runc words its errors differently).
#[track_caller]
pub fn assert_one_error_line(o: &Output, needle: &str, what: &str) {
    assert_one_error_line_status(o, 1, needle, what)
}

/// The same with another exit status: `refusal_status` (255 for `exec`, as runc).
#[track_caller]
pub fn assert_one_error_line_status(o: &Output, status: i32, needle: &str, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(status),
        "{what}: expected exit status {status}\n{}",
        output_text(o)
    );
    if reference_mode() {
        return;
    }
    let err = stderr_str(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected exactly one stderr line\n{}",
        output_text(o)
    );
    assert!(
        lines[0].starts_with("vsrun: "),
        "{what}: the error line must start with `vsrun: `\n{}",
        output_text(o)
    );
    // Shown with --nocapture: the corpus doubles as a catalogue of vsrun's error lines.
    eprintln!("{what}: {}", lines[0]);
    assert!(
        lines[0].contains(needle),
        "{what}: the error line does not name {needle:?}\n{}",
        output_text(o)
    );
    assert!(o.stdout.is_empty(), "{what}: stdout: {}", stdout_str(o));
}

/// Mountinfo lines that mention `dir` anywhere (mount point, root or source).
pub fn mountinfo_mentioning(dir: &Path) -> Vec<String> {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let needle = dir.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .expect("read mountinfo")
        .lines()
        .filter(|l| l.contains(&needle))
        .map(String::from)
        .collect()
}

/// The entries of --root, sorted (a failed create must leave none: no state dir, no temp dir,
/// no lock).
pub fn root_entries(rt: &Runtime) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(rt.root()) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// A failed create/run of container `id` left nothing: --root empty, no cgroup, no mount
/// mentioning the bundle, no process in it.
#[track_caller]
pub fn assert_left_nothing(rt: &Runtime, bundle: &Path, id: &str, what: &str) {
    let entries = root_entries(rt);
    assert!(
        entries.is_empty(),
        "{what}: --root {} is not empty: {entries:?}",
        rt.root().display()
    );
    // An id vsrun refuses names no cgroup ("", "..", "a/b" would name other directories).
    if !id.is_empty() && id != "." && id != ".." && !id.contains('/') {
        let cgroups = cgroup_dirs_of(id);
        assert!(cgroups.is_empty(), "{what}: cgroups left: {cgroups:?}");
    }
    let mounts = mountinfo_mentioning(bundle);
    assert!(
        mounts.is_empty(),
        "{what}: host mounts mention the bundle:\n{}",
        mounts.join("\n")
    );
    assert_bundle_clean(bundle);
}

/// `vsrun create|run --bundle B EXTRA... ID` with a fresh id; expect a clean failure whose
/// one line names `field`.
#[track_caller]
pub fn expect_clean_failure(rt: &Runtime, b: &Bundle, via: Via, extra: &[&str], field: &str) {
    let id = unique_id("bad");
    let o = match via {
        Via::Create => rt.create_with(b, &id, extra),
        Via::Run => {
            b.write_if_changed();
            let mut args = vec!["run", "--bundle", b.path_str()];
            args.extend_from_slice(extra);
            args.push(&id);
            rt.cmd(&args)
        }
    };
    let what = format!("{via:?} with a bad {field}");
    assert_one_error_line(&o, field, &what);
    assert_left_nothing(rt, b.path(), &id, &what);
}

/// A path quoted for `sh`.
pub fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// `sh -euc SCRIPT` in a private mount namespace: the deliberately unprotected path of an
/// escape test (a plain path-based mount from the host). What it mounts dies with it.
pub fn unprotected_sh(script: &str) -> Output {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-euc", script])
        .stdin(Stdio::null())
        .output()
        .expect("run unshare")
}

/// Exit 1 with exactly one non-empty stderr line, containing every one of `needles` (in
/// reference mode only the refusal is checked: runc words its errors differently).
#[track_caller]
pub fn assert_refused_naming(o: &Output, needles: &[&str], what: &str) {
    assert_refused_status(o, 1, needles, what)
}

/// `assert_refused_naming` with another exit status (255 for `exec`, see `refusal_status`).
#[track_caller]
pub fn assert_refused_status(o: &Output, status: i32, needles: &[&str], what: &str) {
    if reference_mode() {
        assert!(
            !o.status.success(),
            "{what}: not refused\n{}",
            output_text(o)
        );
        return;
    }
    let err = stderr_str(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        o.status.code() == Some(status)
            && lines.len() == 1
            && needles.iter().all(|n| lines[0].contains(n)),
        "{what}: expected exit {status} and one stderr line naming {needles:?}\n{}",
        output_text(o)
    );
}

/// The exit status of a command vsrun refuses: 255 for `exec` (as runc, so that a caller can
/// tell it from an exec'd process exiting 1), 1 for every other command. `args` starts with
/// the subcommand. Usage errors found by the argument parser are 1 for every command.
pub fn refusal_status(args: &[&str]) -> i32 {
    if args.first() == Some(&"exec") {
        255
    } else {
        1
    }
}
