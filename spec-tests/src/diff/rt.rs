//! One runtime under comparison (binary, private --root, io dir) and the console socket
//! whose pty master arrives over SCM_RIGHTS.

use super::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Which {
    Runc,
    Vsrun,
}

impl Which {
    pub fn name(self) -> &'static str {
        match self {
            Which::Runc => "runc",
            Which::Vsrun => "vsrun",
        }
    }
}

pub struct Ran {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}; stderr: {}; stdout: {}",
            self.code,
            short(&self.stderr),
            short(&self.stdout)
        )
    }
}

pub struct Rt {
    pub which: Which,
    pub bin: PathBuf,
    pub root: tempfile::TempDir,
    pub io: tempfile::TempDir,
    pub seq: std::sync::atomic::AtomicU64,
}

impl Rt {
    pub fn new(which: Which) -> Rt {
        let bin = match which {
            Which::Runc => runc_bin(),
            Which::Vsrun => vsrun_bin(),
        };
        let mk = |p: &str| {
            tempfile::Builder::new()
                .prefix(&format!("vsrun-diff-{}-{p}-", which.name()))
                .tempdir()
                .expect("temp dir")
        };
        Rt {
            which,
            bin,
            root: mk("root"),
            io: mk("io"),
            seq: Default::default(),
        }
    }

    /// `<bin> --root R ARGS` with cwd `cwd`, stdin /dev/null, stdout/stderr to the given files
    /// (fresh ones when None), killed after CMD_TIMEOUT.
    pub fn run(&self, cwd: &Path, args: &[&str], out: Option<(PathBuf, PathBuf)>) -> Ran {
        let (o, e) = out.unwrap_or_else(|| {
            let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (
                self.io.path().join(format!("{n}.out")),
                self.io.path().join(format!("{n}.err")),
            )
        });
        let mut c = Command::new(&self.bin);
        // A small fixed environment, as engines give (containerd's shim passes its own): the
        // marker shows which hooks get the runtime's environment.
        c.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env(RUNTIME_ENV_MARKER, "1");
        c.arg("--root")
            .arg(self.root.path())
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&o).expect("create stdout file"))
            .stderr(fs::File::create(&e).expect("create stderr file"));
        let mut child = c
            .spawn()
            .unwrap_or_else(|err| panic!("spawn {}: {err}", self.bin.display()));
        let deadline = Instant::now() + CMD_TIMEOUT;
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait") {
                break Some(st);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let mut stderr = fs::read_to_string(&e).unwrap_or_default();
        if status.is_none() {
            stderr.push_str(&format!("\n[killed after {CMD_TIMEOUT:?}]"));
        }
        if let Some(sig) = status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s)) {
            // No exit code and often no message: say what ended it.
            stderr.push_str(&format!("\n[killed by signal {sig}]"));
        }
        Ran {
            ok: status.map(|s| s.success()).unwrap_or(false),
            code: status.and_then(|s| s.code()),
            stdout: fs::read_to_string(&o).unwrap_or_default(),
            stderr,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Console socket: the pty master arrives over SCM_RIGHTS; a thread copies what it reads.

/// Where a container's (or exec'd process's) output goes: files, or a pty read by a thread.
pub enum Output {
    File(PathBuf),
    Pty(Arc<Mutex<Vec<u8>>>),
}

impl Output {
    pub fn text(&self) -> String {
        match self {
            Output::File(p) => fs::read_to_string(p).unwrap_or_default(),
            Output::Pty(b) => String::from_utf8_lossy(&b.lock().unwrap()).into_owned(),
        }
    }
}

/// Listen on `path`; the master that arrives is read until EOF/EIO into the returned buffer.
pub fn console_socket(path: &Path) -> Arc<Mutex<Vec<u8>>> {
    let l = UnixListener::bind(path).expect("bind console socket");
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let Some(master) = l.accept().ok().and_then(|(s, _)| crate::scm::recv_fd(&s)) else {
            return;
        };
        let mut f = fs::File::from(master);
        let mut chunk = [0u8; 8192];
        while let Ok(n) = f.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

/// Wait for `n` complete JSON lines of output (or the process `pid` dying first).
pub fn wait_lines(out: &Output, n: usize, pid: Option<i32>) -> Result<Vec<Value>, String> {
    let deadline = Instant::now() + OUTPUT_TIMEOUT;
    loop {
        let text = out.text();
        let complete: Vec<&str> = match text.rfind('\n') {
            Some(i) => text[..i]
                .split('\n')
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| !l.trim().is_empty())
                .collect(),
            None => vec![],
        };
        if complete.len() >= n {
            return complete[..n]
                .iter()
                .map(|l| {
                    serde_json::from_str(l)
                        .map_err(|e| format!("output line is not JSON ({e}): {}", short(l)))
                })
                .collect();
        }
        let dead = pid.map(|p| !pid_alive(p)).unwrap_or(false);
        if dead || Instant::now() > deadline {
            return Err(format!(
                "expected {n} JSON lines, got {} ({}); output so far: {}",
                complete.len(),
                if dead {
                    "the process died"
                } else {
                    "timed out"
                },
                short(&text)
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
