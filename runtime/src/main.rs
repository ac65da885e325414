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
            let first = text.lines().next().unwrap_or_default();
            eprintln!("vsrun: {}", first.trim_start_matches("error: "));
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
