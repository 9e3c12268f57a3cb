//! `hls-lab`: parse the command line, build the runtime, run, map the result to an exit code
//! (documented in `microvm::cli` and docs/microvm.md).

use std::process::ExitCode;

use clap::Parser;
use microvm::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hls-lab: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async {
        let mut out = std::io::stdout();
        let mut err = std::io::stderr();
        cli::run(cli, &mut out, &mut err).await
    });
    ExitCode::from(code)
}
