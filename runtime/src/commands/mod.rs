//! One file per subcommand. Commands own the state dir and all output; the modules below
//! return typed errors and never print.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod stat;
mod state;
mod update;

use crate::cli::{Cli, Command};
use crate::Result;

pub fn dispatch(cli: Cli) -> Result<i32> {
    if cli.global.version {
        print!("{}", version_text());
        return Ok(0);
    }
    let g = &cli.global;
    let Some(cmd) = &cli.command else {
        return Err(crate::error::state("no command given; see `vsrun --help`"));
    };
    match cmd {
        Command::Create(a) => create::run(g, a),
        Command::Start(a) => start::run(g, a),
        Command::Run(a) => run::run(g, a),
        Command::State(a) => state::run(g, a),
        Command::Kill(a) => kill::run(g, a),
        Command::Delete(a) => delete::run(g, a),
        Command::List(a) => list::run(g, a),
        Command::Spec(a) => spec::run(g, a),
        Command::Features => features::run(g),
        Command::Exec(a) => exec::run(g, a),
        Command::Pause(a) => pause::pause(g, a),
        Command::Resume(a) => pause::resume(g, a),
        Command::Ps(a) => ps::run(g, a),
        Command::Update(a) => update::run(g, a),
        Command::Events(a) => events::run(g, a),
        Command::Stat(a) => stat::run(g, a),
    }
}

pub fn version_text() -> String {
    format!(
        "vsrun version {}\ncommit: {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("VSRUN_COMMIT").unwrap_or("unknown"),
        crate::OCI_VERSION
    )
}
