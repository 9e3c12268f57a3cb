//! `hls-lab network …` until the `hls-lab` binary wires it in:
//! `cargo run -p network --example network -- setup --netns lab`.

use clap::Parser;

/// The lab network: bridge, TAP and NAT for the origin MicroVM.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: network::cli::NetworkCommand,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let code = network::cli::run(cli.cmd);
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
