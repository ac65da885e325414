//! Differential check against runc (issue 4, point 4).
//!
//! ../shared/engine-configs/ holds 17 files that podman, containerd and docker wrote on this
//! machine: full config.json files, exec process.json files and one `update --resources` file.
//! For each one, this test runs the same workload under runc (the reference, `RUNC_BIN` or
//! `runc` in PATH) and under vsrun, the way the engines call a runtime, and compares what the
//! container process sees (the probe's report and its actions) and what the host sees
//! (/proc/<pid>, the cgroup files, the hook's stdin, `state`).
//!
//! How a config is made runnable here (the same for both runtimes; nothing else is changed):
//! - `root.path` points at a fresh copy of the harness's busybox+probe rootfs (kept relative
//!   when the engine wrote it relative).
//! - `process.args` becomes the probe: `/probe report -- <actions> -- sleep 1000`. The actions
//!   read, list, stat and try to write every masked path, read-only path, bind destination,
//!   sysctl named in the config, and the default devices.
//! - Every bind mount source (engine-owned files under /var/lib/engines) becomes a temp file or
//!   dir in the bundle with the same contents for both runtimes; destinations are kept.
//! - Every namespace `path` (engine-owned netns files: podman's /run/netns/netns-*, docker's
//!   exec/netns/default) becomes /proc/<pid>/ns/net of an `unshare --net` process started for the
//!   test, one per runtime (so one runtime's sysctl writes never show up in the other's netns).
//! - Every hook keeps its args, env and timeout; its `path` (docker's /proc/<dockerd>/exe,
//!   libnetwork-setkey) becomes a script that records its args, env, cwd and stdin.
//! - `linux.cgroupsPath` becomes `/vsrun-diff-<pid>-<case>-<runtime>/<the engine's path>`.
//!
//! Each runtime runs in its own `--root`, with the bundle as its working directory (as the
//! containerd shim does), `create` (with `--console-socket` when process.terminal is set) then
//! `start`, then `kill KILL` and `delete`. The two runtimes run in parallel threads.
//!
//! What is compared is a flat map "fact name → value" per runtime. Only what differs by nature
//! is normalised before comparing:
//! - each run's own names: bundle dir, `--root`, io dir, container id, cgroup top dir (`Norm`);
//! - mount ids and peer-group numbers (a mount's parent is named by its mount point instead),
//!   inode and device numbers in `stat` results, pipe/socket inode numbers in fd targets;
//! - `devices.list` is compared as a set (the kernel lists exceptions in the order written);
//!   `memory.oom_control` by its `oom_kill_disable` line only (the rest are event counters);
//! - sid/pgid as "= own pid" or "0 (outside the pid namespace)"; namespaces as "host's",
//!   "new", "the test's netns" or "same as the container's init";
//! - a hook's environment shows the runtime's own environment as a marker.
//!
//! A difference fails the test unless it is in `ALLOWED`, each entry with the reason it is not
//! a compatibility problem. `DIFF_DUMP=1` prints every fact of both runtimes.

use spec_tests::diff::*;
use spec_tests::serde_json::{self, json, Value};
use spec_tests::*;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

// ---------------------------------------------------------------------------------------------
// The cases

/// Every file of ../shared/engine-configs and what is done with it.
enum Case {
    /// A full config.json: run it.
    Config,
    /// An exec process.json: start the named config, `exec --process` this.
    Exec(&'static str),
    /// An `update --resources` file: start the named config, update it.
    Update(&'static str),
}

const CASES: &[(&str, Case)] = &[
    ("containerd-1-config.json", Case::Config),
    ("containerd-2-config.json", Case::Config),
    ("containerd-3-config.json", Case::Config),
    // containerd-3 is the `ctr run ... sleep 1000` these were exec'd into.
    (
        "containerd-4-process.json",
        Case::Exec("containerd-3-config.json"),
    ),
    (
        "containerd-5-process.json",
        Case::Exec("containerd-3-config.json"),
    ),
    ("containerd-6-config.json", Case::Config),
    ("containerd-7-config.json", Case::Config),
    ("docker-1-config.json", Case::Config),
    ("docker-2-config.json", Case::Config),
    // docker-2 (HOSTNAME=88f94cdb58a6, sleep 1000) is the container docker exec'd into.
    ("docker-3-process.json", Case::Exec("docker-2-config.json")),
    ("docker-4-process.json", Case::Exec("docker-2-config.json")),
    ("docker-5-config.json", Case::Config),
    ("docker-6-config.json", Case::Config),
    ("docker-7-config.json", Case::Config),
    ("podman-1-config.json", Case::Config),
    // podman-1 is the httpd that podman-2 (wget) was exec'd into and podman-3 updated.
    ("podman-2-process.json", Case::Exec("podman-1-config.json")),
    (
        "podman-3-resources.json",
        Case::Update("podman-1-config.json"),
    ),
];

// ---------------------------------------------------------------------------------------------
// The allow-list: differences that are not compatibility problems, each with its reason. Every
// allowed difference is still printed (with --nocapture) next to its reason.

fn allowed(case: &str, key: &str, runc: &str, vsrun: &str) -> Option<&'static Allowed> {
    ALLOWED.iter().find(|a| {
        glob(a.key, key) && (a.cases.is_empty() || a.cases.contains(&case)) && (a.when)(runc, vsrun)
    })
}

// ---------------------------------------------------------------------------------------------
// Locations and small helpers

fn configs_dir() -> PathBuf {
    match std::env::var_os("ENGINE_CONFIGS") {
        Some(d) => PathBuf::from(d),
        // A copy of ../shared/engine-configs, so a fresh clone has them.
        None => workspace_root().join("spec-tests/fixtures/engine-configs"),
    }
}

fn load(name: &str) -> Value {
    let p = configs_dir().join(name);
    let text = fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "read {} ({e}); the engine files live in spec-tests/fixtures/engine-configs \
             (or set ENGINE_CONFIGS)",
            p.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()))
}

// ---------------------------------------------------------------------------------------------
// Bundle preparation

/// One runtime's bundle for one case: rootfs copy, bind sources, hook scripts, netns holder.
struct Prepared {
    dir: tempfile::TempDir,
    id: String,
    cg_top: String,
    config: Value,
    netns: Option<NsHolder>,
    /// (hook point, index) of every hook script.
    hooks: Vec<(String, usize)>,
    /// (verb, path) probe actions after the report.
    actions: Vec<(String, String)>,
}

/// The per-run cgroup tree is removed whatever happened (after the container's `Running`
/// guard, which borrows this, has force-deleted the container).
impl Drop for Prepared {
    fn drop(&mut self) {
        remove_cgroup_top(&self.cg_top);
    }
}

impl Prepared {
    fn norm(&self, rt: &Rt) -> Norm {
        Norm::new(vec![
            (
                self.path().to_string_lossy().into_owned(),
                "<bundle>".into(),
            ),
            (
                rt.root.path().to_string_lossy().into_owned(),
                "<root>".into(),
            ),
            (rt.io.path().to_string_lossy().into_owned(), "<io>".into()),
            (self.id.clone(), "<id>".into()),
            (self.cg_top.clone(), "<cgtop>".into()),
        ])
    }
}

impl Subject for Prepared {
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn id(&self) -> &str {
        &self.id
    }
    fn config(&self) -> &Value {
        &self.config
    }
    fn hooks(&self) -> &[(String, usize)] {
        &self.hooks
    }
}

/// Engines bind directories (podman's userdata/shm) and files (hosts, hostname, resolv.conf,
/// .containerenv). The engine-owned source is gone, so the kind is told from its name.
fn bind_source_is_dir(m: &Value) -> bool {
    let src = m["source"].as_str().unwrap_or("");
    let name = Path::new(src)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name == "shm" || m["destination"] == "/dev/shm"
}

fn case_tag(case: &str) -> String {
    case.trim_end_matches(".json").replace('.', "-")
}

/// Bind sources with absolute paths become files (or directories with a marker) in `binds`.
fn rewrite_bind_sources(config: &mut Value, binds: &Path) {
    fs::create_dir_all(binds).unwrap();
    let Some(mounts) = config["mounts"].as_array_mut() else {
        return;
    };
    for (i, m) in mounts.iter_mut().enumerate() {
        let src = m["source"].as_str().unwrap_or("").to_string();
        if !is_bind(m) || !src.starts_with('/') {
            continue;
        }
        let name = Path::new(&src)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "src".into());
        let p = binds.join(format!("{i}-{name}"));
        let content = format!("{name} for {}\n", m["destination"].as_str().unwrap_or(""));
        if bind_source_is_dir(m) {
            fs::create_dir_all(&p).unwrap();
            fs::write(p.join("marker"), content).unwrap();
        } else {
            fs::write(&p, content).unwrap();
        }
        m["source"] = p.to_string_lossy().into_owned().into();
    }
}

/// Namespaces joined by path: a network namespace made for the test (held while it runs).
fn join_test_netns(config: &mut Value, case: &str) -> Option<NsHolder> {
    let mut netns = None;
    for ns in config["linux"]["namespaces"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if ns.get("path").is_none() {
            continue;
        }
        assert_eq!(
            ns["type"], "network",
            "{case}: only network namespace paths are rewritten; add the others here"
        );
        let h = NsHolder::new(&["--net"]);
        ns["path"] = h.ns_path("net").into();
        netns = Some(h);
    }
    netns
}

/// `root.path` to the bundle's copy of the rootfs, absolute where the engine's was.
fn point_root_at(config: &mut Value, rootfs: &Path) {
    let absolute = config["root"]["path"]
        .as_str()
        .is_some_and(|p| Path::new(p).is_absolute());
    config["root"]["path"] = if absolute {
        rootfs.to_string_lossy().into_owned().into()
    } else {
        "rootfs".into()
    };
}

/// Rewrite an engine config for this runtime (see the module docs).
fn prepare(config_name: &str, case: &str, rt: &Rt, init_sleep_only: bool) -> Prepared {
    let mut config = load(config_name);
    let tag = case_tag(case);
    let dir = tempfile::Builder::new()
        .prefix(&format!("vsrun-diff-{tag}-{}-", rt.which.name()))
        .tempdir()
        .expect("bundle temp dir");
    let st = Command::new("cp")
        .arg("-a")
        .arg(base_rootfs())
        .arg(dir.path().join("rootfs"))
        .status()
        .expect("cp -a");
    assert!(st.success(), "cp -a of the base rootfs failed");

    point_root_at(&mut config, &dir.path().join("rootfs"));
    rewrite_bind_sources(&mut config, &dir.path().join("binds"));
    let hooks = write_hook_scripts(
        &mut config,
        &HookScripts {
            dir: &dir.path().join("hooks"),
            in_container: None,
            placeholders_only: false,
        },
    );

    let netns = join_test_netns(&mut config, case);

    // cgroupsPath
    let cg_top = format!(
        "vsrun-diff-{}-{tag}-{}",
        std::process::id(),
        rt.which.name()
    );
    let engine_cg = config["linux"]["cgroupsPath"]
        .as_str()
        .unwrap_or("/default")
        .trim_start_matches('/')
        .to_string();
    config["linux"]["cgroupsPath"] = format!("/{cg_top}/{engine_cg}").into();

    // process.args
    let actions = if init_sleep_only {
        vec![]
    } else {
        actions_for(&config)
    };
    config["process"]["args"] = if init_sleep_only {
        json!(["/probe", "sleep", "1000"])
    } else {
        json!(probe_args(&actions, true))
    };

    fs::write(
        dir.path().join("config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
    Prepared {
        id: format!("diff-{tag}-{}-{}", rt.which.name(), std::process::id()),
        dir,
        cg_top,
        config,
        netns,
        hooks,
        actions,
    }
}

// ---------------------------------------------------------------------------------------------
// The three kinds of case, for one runtime

fn run_config(case: &str, rt: &Rt) -> Result<Facts, Failure> {
    let prep = prepare(case, case, rt, false);
    let norm = prep.norm(rt);
    let mut facts = Facts::new();
    let c = start_container(rt, &prep)?;
    let lines = wait_lines(&c.output, 1 + prep.actions.len(), Some(c.pid))
        .map_err(|e| fail("probe output", e))?;
    report_facts(
        &lines[0],
        &norm,
        prep.netns.as_ref(),
        None,
        "probe.",
        &mut facts,
    );
    for ((verb, path), r) in prep.actions.iter().zip(&lines[1..]) {
        facts.insert(format!("probe.{verb} {path}"), action_fact(r, &norm));
    }
    proc_facts(c.pid, "host.", &mut facts);
    cgroup_facts(c.pid, &norm, "host.", &mut facts);
    state_facts(rt, &prep, c.pid, &norm, &mut facts);
    hook_facts(&prep, c.pid, &norm, &mut facts);
    stop_container(c, &mut facts);
    Ok(facts)
}

fn run_exec(case: &str, base: &str, rt: &Rt) -> Result<Facts, Failure> {
    let prep = prepare(base, case, rt, true);
    let norm = prep.norm(rt);
    let mut facts = Facts::new();
    let c = start_container(rt, &prep)?;

    let mut process = load(case);
    process["args"] = json!(["/probe", "report"]);
    let pfile = prep.path().join("process.json");
    fs::write(&pfile, serde_json::to_string_pretty(&process).unwrap()).unwrap();
    let terminal = process["terminal"] == true;
    let out = prep.path().join("exec.out");
    let err = prep.path().join("exec.err");
    let pid_file = prep.path().join("exec.pid");
    let sock = prep.path().join("exec-console.sock");
    let output = if terminal {
        Output::Pty(console_socket(&sock))
    } else {
        Output::File(out.clone())
    };
    // As containerd's shim and podman call it.
    let mut args = vec![
        "exec".to_string(),
        "--process".into(),
        pfile.to_string_lossy().into_owned(),
        "--detach".into(),
        "--pid-file".into(),
        pid_file.to_string_lossy().into_owned(),
    ];
    if terminal {
        args.push("--console-socket".into());
        args.push(sock.to_string_lossy().into_owned());
    }
    args.push(prep.id.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = rt.run(prep.path(), &args, Some((out, err)));
    if !r.ok {
        return Err(fail("exec", r.describe()));
    }
    facts.insert(
        "cmd.exec.pid-file".into(),
        match fs::read_to_string(&pid_file) {
            Ok(s) if s.trim().parse::<i32>().is_ok() => "a pid".into(),
            Ok(s) => format!("not a pid: {s:?}"),
            Err(e) => format!("<{e}>"),
        },
    );
    let lines = wait_lines(&output, 1, None).map_err(|e| fail("exec output", e))?;
    report_facts(
        &lines[0],
        &norm,
        prep.netns.as_ref(),
        Some(c.pid),
        "exec.",
        &mut facts,
    );
    stop_container(c, &mut facts);
    Ok(facts)
}

fn run_update(case: &str, base: &str, rt: &Rt) -> Result<Facts, Failure> {
    let prep = prepare(base, case, rt, true);
    let norm = prep.norm(rt);
    let mut facts = Facts::new();
    let c = start_container(rt, &prep)?;
    cgroup_facts(c.pid, &norm, "before-update.", &mut facts);
    let rfile = prep.path().join("resources.json");
    fs::write(&rfile, serde_json::to_string(&load(case)).unwrap()).unwrap();
    let rf = rfile.to_string_lossy().into_owned();
    // podman's call: update --resources=FILE ID
    let r = rt.run(
        prep.path(),
        &["update", &format!("--resources={rf}"), &prep.id],
        None,
    );
    if !r.ok {
        return Err(fail("update", r.describe()));
    }
    cgroup_facts(c.pid, &norm, "after-update.", &mut facts);
    stop_container(c, &mut facts);
    Ok(facts)
}

// ---------------------------------------------------------------------------------------------
// Comparison

fn run_case(case: &str) {
    let (_, kind) = CASES
        .iter()
        .find(|(n, _)| *n == case)
        .unwrap_or_else(|| panic!("{case}: not in CASES"));
    let one = |which: Which| -> Result<Facts, Failure> {
        let rt = Rt::new(which);
        match kind {
            Case::Config => run_config(case, &rt),
            Case::Exec(base) => run_exec(case, base, &rt),
            Case::Update(base) => run_update(case, base, &rt),
        }
    };
    let (runc, vsrun) = std::thread::scope(|s| {
        let r = s.spawn(|| one(Which::Runc));
        let v = s.spawn(|| one(Which::Vsrun));
        (r.join(), v.join())
    });
    let runc = match runc {
        Ok(Ok(f)) => f,
        Ok(Err(f)) => panic!(
            "{case}: runc (the reference) failed at `{}`: {}\n(the test's rewrite of the \
             config is wrong, or the host cannot run it)",
            f.step, f.detail
        ),
        Err(p) => std::panic::resume_unwind(p),
    };
    let vsrun = match vsrun {
        Ok(Ok(f)) => f,
        Ok(Err(f)) => panic!(
            "{case}: DIFFERENCE: vsrun failed at `{}` where runc succeeded:\n  {}",
            f.step, f.detail
        ),
        Err(p) => std::panic::resume_unwind(p),
    };
    compare(case, &runc, &vsrun);
}

fn compare(case: &str, runc: &Facts, vsrun: &Facts) {
    if std::env::var_os("DIFF_DUMP").is_some() {
        for (k, v) in runc {
            eprintln!("{case} runc  {k} = {}", short(v));
        }
        for (k, v) in vsrun {
            eprintln!("{case} vsrun {k} = {}", short(v));
        }
    }
    let (real, tolerated) = diff_facts(runc, vsrun, |k, a, b| {
        allowed(case, k, a, b).map(|al| al.why)
    });
    let keys: BTreeSet<&String> = runc.keys().chain(vsrun.keys()).collect();
    eprintln!(
        "differential {case}: {} facts, {} identical, {} allowed, {} differences",
        keys.len(),
        keys.len() - real.len() - tolerated.len(),
        tolerated.len(),
        real.len()
    );
    for t in &tolerated {
        eprintln!("{t}");
    }
    if !real.is_empty() {
        panic!(
            "{case}: {} difference(s) between runc and vsrun:\n{}",
            real.len(),
            real.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The tests: one per engine file

macro_rules! cases {
    ($($name:ident => $file:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_case($file);
            }
        )*
    };
}

cases! {
    containerd_1_config => "containerd-1-config.json",
    containerd_2_config => "containerd-2-config.json",
    containerd_3_config => "containerd-3-config.json",
    containerd_4_process => "containerd-4-process.json",
    containerd_5_process => "containerd-5-process.json",
    containerd_6_config => "containerd-6-config.json",
    containerd_7_config => "containerd-7-config.json",
    docker_1_config => "docker-1-config.json",
    docker_2_config => "docker-2-config.json",
    docker_3_process => "docker-3-process.json",
    docker_4_process => "docker-4-process.json",
    docker_5_config => "docker-5-config.json",
    docker_6_config => "docker-6-config.json",
    docker_7_config => "docker-7-config.json",
    podman_1_config => "podman-1-config.json",
    podman_2_process => "podman-2-process.json",
    podman_3_resources => "podman-3-resources.json",
}

#[test]
fn every_engine_file_has_a_case() {
    let mut on_disk: Vec<String> = fs::read_dir(configs_dir())
        .unwrap_or_else(|e| panic!("read {}: {e}", configs_dir().display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CASES.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "CASES must list every engine file");
}

#[test]
fn every_allow_list_entry_is_justified() {
    for a in ALLOWED {
        assert!(
            a.why.len() > 20,
            "allow-list entry {} needs a real justification",
            a.key
        );
        for c in a.cases {
            assert!(
                CASES.iter().any(|(n, _)| n == c),
                "allow-list entry {} names unknown case {c}",
                a.key
            );
        }
    }
}
