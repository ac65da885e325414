use clap::Parser;
use vsrun::cli::Cli;

fn main() {
    // Usage errors exit 1 like every other failure (runc's convention; clap's default is 2).
    let cli = match Cli::try_parse() {
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
    vsrun::log::init(&cli.global);
    match vsrun::commands::dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            vsrun::log::error(&err.to_string());
            std::process::exit(1);
        }
    }
}
