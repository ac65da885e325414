//! One file per subcommand. Commands own the state dir and all output; the modules below
//! return typed errors and never print.

use crate::cli::{Cli, Command};
use crate::Result;

pub fn dispatch(cli: Cli) -> Result<i32> {
    if cli.global.version {
        print!("{}", version_text());
        return Ok(0);
    }
    let Some(cmd) = cli.command else {
        return Err(crate::error::state("no command given; see `vsrun --help`"));
    };
    let _ = cmd;
    Err(crate::error::state("not yet"))
}

pub fn version_text() -> String {
    format!(
        "vsrun version {}\ncommit: {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("VSRUN_COMMIT").unwrap_or("unknown"),
        crate::OCI_VERSION
    )
}
