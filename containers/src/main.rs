//! `hls-containers`: parse the command line, run, map the result to an exit code (documented in
//! `containers::cli` and docs/containers.md).

use std::process::ExitCode;

use clap::Parser;
use containers::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = cli::run(cli, &mut std::io::stdout(), &mut std::io::stderr());
    ExitCode::from(code)
}
