//! `hls-swarm` binary: parse, set up logging and the runtime, run, map the result to an exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use swarm::cli::{Cli, LogFormat};
use swarm::config::Config;
use swarm::exit_code;
use swarm::run::{run, RunError};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit_code::USAGE
            } else {
                exit_code::OK
            });
        }
    };
    let config = match Config::from_cli(&cli, std::io::stdout().is_terminal()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hls-swarm: {e}");
            return ExitCode::from(exit_code::USAGE);
        }
    };
    init_logging(&config);
    raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hls-swarm: cannot start the async runtime: {e}");
            return ExitCode::from(exit_code::RUNTIME);
        }
    };
    let mut stdout = std::io::stdout();
    match runtime.block_on(run(config, &mut stdout)) {
        Ok(Some(outcome)) => {
            println!("{}", outcome.summary());
            ExitCode::from(exit_code::OK)
        }
        Ok(None) => ExitCode::from(exit_code::OK),
        Err(e @ RunError::Preflight(_)) => {
            eprintln!("hls-swarm: {e}");
            ExitCode::from(exit_code::PREFLIGHT)
        }
        Err(e @ RunError::Probe(_)) => {
            eprintln!("hls-swarm: {e}");
            ExitCode::from(exit_code::PREFLIGHT)
        }
        Err(e) => {
            eprintln!("hls-swarm: {e}");
            ExitCode::from(exit_code::RUNTIME)
        }
    }
}

fn init_logging(config: &Config) {
    let level = match config.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Raises the soft open-file limit to the hard limit: each viewer costs descriptors.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}
