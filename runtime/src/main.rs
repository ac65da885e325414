// The binary is a thin shell: no `unsafe` here either (the library keeps it in `syscall`).
#![deny(unsafe_code)]

use clap::Parser;
use vsrun::cli::Cli;

fn main() {
    // Usage errors exit 1 like every other failure (runc's convention; clap's default is 2).
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print(); // --help
            std::process::exit(0);
        }
        Err(e) => {
            // One line, like every other vsrun error; clap's usage block goes to --help.
            let text = e.render().to_string();
            let msg: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect();
            eprintln!("vsrun: {}", msg.join(" ").trim_start_matches("error: "));
            std::process::exit(1);
        }
    };
    // First, before vsrun opens any fd: claim the preserved range (--preserve-fds, LISTEN_FDS)
    // so that only the caller's fds can be in it (context/preserved.rs, CVE-2024-21626 class).
    let reserved = cli.command.as_ref().map_or(Ok(()), |c| {
        vsrun::context::preserved::reserve(vsrun::context::preserved::range_len(c))
    });
    // Commands that put a copy of vsrun into a container then make its binary unwritable
    // (security/sealed_exe.rs, CVE-2019-5736); this may re-execute vsrun once.
    let sealed = reserved.and_then(|()| {
        if cli.command.as_ref().is_some_and(|c| c.enters_a_container()) {
            vsrun::security::sealed_exe::ensure()
        } else {
            Ok(())
        }
    });
    let needs_root = cli.command.as_ref().is_some_and(|c| c.uses_state_root());
    let resolved = vsrun::rootless::resolve(&mut cli.global, needs_root);
    vsrun::log::init(&cli.global);
    let failed = failure_status(&cli);
    if let Err(err) = sealed.and(resolved) {
        vsrun::log::error(&err.to_string());
        std::process::exit(failed);
    }
    match vsrun::commands::dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            vsrun::log::error(&err.to_string());
            std::process::exit(failed);
        }
    }
}

/// runc's `exec` exits 255 when it fails itself, so that its caller can tell that from the
/// exec'd process exiting 1. Every other command, a foreground `run` included (runc 1.1 wraps
/// its errors as `runc run failed` and exits 1), exits 1; so do usage errors, as in runc.
fn failure_status(cli: &Cli) -> i32 {
    if matches!(cli.command, Some(vsrun::cli::Command::Exec(_))) {
        255
    } else {
        1
    }
}
