use clap::Parser;
use vsrun::cli::Cli;

fn main() {
    let cli = Cli::parse();
    vsrun::log::init(&cli.global);
    match vsrun::commands::dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            vsrun::log::error(&err.to_string());
            std::process::exit(1);
        }
    }
}
