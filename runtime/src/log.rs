//! `--log FILE --log-format json|text`: one record per line with `level`, `msg`, `time`, the
//! shape containerd-shim and podman parse when a runtime call fails. Errors also go to stderr
//! because a person at a terminal reads that, not the log file.

use crate::cli::{GlobalOpts, LogFormat};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

struct Logger {
    file: Option<PathBuf>,
    format: LogFormat,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

pub fn init(opts: &GlobalOpts) {
    let _ = LOGGER.set(Logger {
        file: opts.log.clone(),
        format: opts.log_format,
        debug: opts.debug,
    });
}

fn record(level: &str, msg: &str) -> String {
    let time = crate::timefmt::rfc3339_now();
    match LOGGER.get().map(|l| l.format).unwrap_or(LogFormat::Text) {
        LogFormat::Json => {
            let v = serde_json::json!({ "level": level, "msg": msg, "time": time });
            format!("{v}\n")
        }
        LogFormat::Text => format!(
            "time=\"{time}\" level={level} msg={}\n",
            serde_json::Value::String(msg.to_string())
        ),
    }
}

fn write(level: &str, msg: &str) {
    let Some(path) = LOGGER.get().and_then(|l| l.file.as_ref()) else {
        return;
    };
    // O_APPEND keeps concurrent writers (shim + runtime) from clobbering each other's lines.
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(record(level, msg).as_bytes());
    }
}

/// One line, always: a config value echoed in a message may carry a newline, and engines
/// (and people) read the first line only.
pub fn error(msg: &str) {
    // Every control character is escaped, not only newlines: an echoed config value must not
    // be able to drive the reader's terminal (ESC sequences) either.
    let msg: String = msg
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    write("error", &msg);
    eprintln!("vsrun: {msg}");
}

pub fn warn(msg: &str) {
    write("warning", msg);
    if LOGGER.get().is_none_or(|l| l.file.is_none()) {
        eprintln!("vsrun: warning: {msg}");
    }
}

pub fn debug(msg: &str) {
    if LOGGER.get().is_some_and(|l| l.debug) {
        write("debug", msg);
        if LOGGER.get().is_some_and(|l| l.file.is_none()) {
            eprintln!("vsrun: debug: {msg}");
        }
    }
}
