//! The six OCI hook points. Each hook is a program run with the container state JSON on stdin,
//! its own `args` and `env` (nothing inherited), and an optional timeout after which it is
//! killed. Where each runs:
//! - prestart, createRuntime: by vsrun in the runtime namespaces, once the init's mounts exist
//!   and before pivot_root (the init waits for them over the sync socket);
//! - createContainer: by the init, in the container's namespaces, at the same point;
//! - startContainer: by the init after `start`, just before execve of the user program;
//! - poststart: by `start` (or `run`) after the program was released;
//! - poststop: by `delete` after the container is gone.
//! A failing prestart/createRuntime/createContainer/startContainer hook fails the operation;
//! poststart and poststop failures are warnings, as the runtime-spec says.

use crate::error::{config, Result};
use oci_spec::runtime::{ContainerState, Hook, Hooks, State};
use std::io::{Read, Seek, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The state JSON a hook reads on stdin (runtime-spec state.md), as oci-spec's `State`.
/// `annotations` is always present (an empty map for none), as hooks written for runc expect.
pub fn state_json(
    id: &str,
    status: ContainerState,
    pid: i32,
    bundle: &Path,
    annotations: &std::collections::HashMap<String, String>,
) -> Vec<u8> {
    let mut st = State::default();
    st.set_version(crate::OCI_VERSION.to_string())
        .set_id(id.to_string())
        .set_status(status)
        .set_pid(Some(pid))
        .set_bundle(bundle.to_path_buf())
        .set_annotations(Some(annotations.clone()));
    serde_json::to_vec(&st).unwrap_or_default()
}

/// The same state with another status: the init gets the "creating" state from vsrun and
/// gives startContainer hooks the "created" one. Empty in, empty out (no hooks to run).
pub fn with_status(state: &[u8], status: ContainerState) -> Vec<u8> {
    // Not parsed: serde_json's error for an empty input looks up its line and column, and
    // the first such lookup probes the CPU (memchr's feature detection, CPUID instructions
    // the hypervisor traps): about 50 µs of every `run` without hooks (hack/profile-run.sh).
    if state.is_empty() {
        return Vec::new();
    }
    match serde_json::from_slice::<State>(state) {
        Ok(mut st) => {
            st.set_status(status);
            serde_json::to_vec(&st).unwrap_or_default()
        }
        Err(_) => state.to_vec(),
    }
}

/// The six hook points of runtime-spec config.md, in the order a container meets them. A
/// typed point, so a misspelt one cannot silently select no hooks; `features` lists `ALL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookPoint {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookPoint {
    pub const ALL: [HookPoint; 6] = [
        HookPoint::Prestart,
        HookPoint::CreateRuntime,
        HookPoint::CreateContainer,
        HookPoint::StartContainer,
        HookPoint::Poststart,
        HookPoint::Poststop,
    ];

    /// The key in config.json's `hooks` (and in error and log lines).
    pub fn name(self) -> &'static str {
        match self {
            HookPoint::Prestart => "prestart",
            HookPoint::CreateRuntime => "createRuntime",
            HookPoint::CreateContainer => "createContainer",
            HookPoint::StartContainer => "startContainer",
            HookPoint::Poststart => "poststart",
            HookPoint::Poststop => "poststop",
        }
    }

    /// This point's hooks in `h`.
    #[allow(deprecated)] // prestart is deprecated in the spec but still a hook point engines use
    pub fn of(self, h: &Hooks) -> &[Hook] {
        let l = match self {
            HookPoint::Prestart => h.prestart(),
            HookPoint::CreateRuntime => h.create_runtime(),
            HookPoint::CreateContainer => h.create_container(),
            HookPoint::StartContainer => h.start_container(),
            HookPoint::Poststart => h.poststart(),
            HookPoint::Poststop => h.poststop(),
        };
        l.as_deref().unwrap_or_default()
    }
}

impl std::fmt::Display for HookPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// config.md "POSIX-platform Hooks": path absolute, timeout greater than zero.
pub fn validate_hooks(spec: &oci_spec::runtime::Spec) -> Result<()> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    for kind in HookPoint::ALL {
        for (i, h) in kind.of(hooks).iter().enumerate() {
            let p = h.path();
            if !p.is_absolute() || crate::rootfs::has_nul(p) {
                return Err(config(
                    format!("hooks.{kind}[{i}].path"),
                    format!("{p:?} must be an absolute path"),
                ));
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                return Err(config(
                    format!("hooks.{kind}[{i}].timeout"),
                    "must be greater than zero",
                ));
            }
        }
    }
    Ok(())
}

pub fn list(hooks: Option<&Hooks>, kind: HookPoint) -> &[Hook] {
    hooks.map(|h| kind.of(h)).unwrap_or_default()
}

/// Run every hook of one kind in order; the first failure names `hooks.<kind>[i]`.
pub fn run(hooks: Option<&Hooks>, kind: HookPoint, state: &[u8]) -> Result<()> {
    for (i, h) in list(hooks, kind).iter().enumerate() {
        run_one(h, state).map_err(|msg| {
            config(
                format!("hooks.{kind}[{i}]"),
                format!("{}: {msg}", h.path().display()),
            )
        })?;
    }
    Ok(())
}

/// Run the hooks of a kind whose failure is only a warning; returns the warnings.
pub fn run_warn(hooks: Option<&Hooks>, kind: HookPoint, state: &[u8]) -> Vec<String> {
    list(hooks, kind)
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            run_one(h, state)
                .err()
                .map(|msg| format!("hooks.{kind}[{i}]: {}: {msg}", h.path().display()))
        })
        .collect()
}

fn run_one(h: &Hook, state: &[u8]) -> std::result::Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    // `env` given: exactly that. Absent: vsrun's own environment, as runc passes it (docker's
    // libnetwork-setkey hook has no `env` and relies on it).
    if let Some(env) = h.env() {
        cmd.env_clear();
        for e in env {
            if let Some((k, v)) = e.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    // Output goes to an anonymous file, not a pipe: a chatty hook can never block on a full
    // pipe while vsrun waits for it, and its last lines go into the error.
    let mut out = output_file().map_err(|e| format!("memfd for hook output: {e}"))?;
    let (o1, o2) = (out.try_clone(), out.try_clone());
    let (o1, o2) = (
        o1.map_err(|e| e.to_string())?,
        o2.map_err(|e| e.to_string())?,
    );
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(o1))
        .stderr(Stdio::from(o2));
    let mut child = cmd.spawn().map_err(|e| format!("start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE is ignored).
        let _ = stdin.write_all(state);
    }
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(format!("wait: {e}")),
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "timed out after {}s",
                h.timeout().unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    if out.rewind().is_ok() {
        let _ = out.read_to_string(&mut text);
    }
    let tail = text.trim().lines().last().unwrap_or_default().to_string();
    Err(if tail.is_empty() {
        format!("{status}")
    } else {
        format!("{status}: {tail}")
    })
}

fn output_file() -> std::io::Result<std::fs::File> {
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    Ok(memfd_create(c"vsrun-hook", MemFdCreateFlag::MFD_CLOEXEC)?.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn hook(script: &str, timeout: Option<i64>) -> Hooks {
        let mut b = HookBuilder::default().path("/bin/sh").args(vec![
            "sh".to_string(),
            "-c".to_string(),
            script.to_string(),
        ]);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        let mut h = Hooks::default();
        h.set_prestart(Some(vec![b.build().unwrap()]));
        h
    }

    #[test]
    fn hook_reads_state_on_stdin_and_failure_names_the_hook() {
        let h = hook(
            "read s; case \"$s\" in *'\"id\":\"x\"'*) exit 0;; esac; echo bad state >&2; exit 3",
            None,
        );
        let st = state_json(
            "x",
            ContainerState::Creating,
            1,
            Path::new("/b"),
            &Default::default(),
        );
        assert!(run(Some(&h), HookPoint::Prestart, &st).is_ok());
        let st = state_json(
            "y",
            ContainerState::Creating,
            1,
            Path::new("/b"),
            &Default::default(),
        );
        let e = run(Some(&h), HookPoint::Prestart, &st)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("hooks.prestart[0]: /bin/sh: "), "{e}");
        assert!(e.contains("bad state"), "{e}");
    }

    #[test]
    fn with_status_changes_only_the_status_and_keeps_empty_empty() {
        assert!(with_status(b"", ContainerState::Created).is_empty());
        let st = state_json(
            "x",
            ContainerState::Creating,
            7,
            Path::new("/b"),
            &Default::default(),
        );
        let v: serde_json::Value =
            serde_json::from_slice(&with_status(&st, ContainerState::Created)).unwrap();
        assert_eq!(v["status"], "created");
        assert_eq!(v["id"], "x");
        assert_eq!(v["pid"], 7);
    }

    #[test]
    fn hook_is_killed_at_its_timeout() {
        let h = hook("sleep 5", Some(1));
        let t = Instant::now();
        let e = run(Some(&h), HookPoint::Prestart, b"{}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("timed out"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn hook_env_is_only_its_own() {
        let mut h = hook("test \"$A\" = 1 && test -z \"$HOME\"", None);
        let mut p = h.prestart().clone().unwrap();
        p[0].set_env(Some(vec!["A=1".into()]));
        h.set_prestart(Some(p));
        assert!(run(Some(&h), HookPoint::Prestart, b"{}").is_ok());
    }
}
