//! `hls-swarm` binary: parse, set up logging and the runtime, run, map the result to an exit code.

use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;

use clap::Parser;
use swarm::control::check::Verdict;
use swarm::control::cli::{Cli, Command, LogFormat, MergeArgs};
use swarm::control::config::Config;
use swarm::control::orchestrator::{run, Finished, RunError};
use swarm::engine::secrets::{RedactingWriter, Secrets};
use swarm::exit_code;
use swarm::output::outcome::Outcome;
use swarm::output::report::{self, Report};
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// Container-friendly short names, read when the `HLS_SWARM_*` variable is not set.
const ENV_ALIASES: [(&str, &str); 6] = [
    ("STREAM_URL", "HLS_SWARM_URL"),
    ("CLIENTS", "HLS_SWARM_CLIENTS"),
    ("RAMP_RATE", "HLS_SWARM_RAMP_RATE"),
    ("DURATION", "HLS_SWARM_DURATION"),
    ("VARIANT", "HLS_SWARM_VARIANT"),
    ("METRICS_ADDR", "HLS_SWARM_METRICS"),
];

fn main() -> ExitCode {
    for (alias, name) in ENV_ALIASES {
        if std::env::var_os(name).is_none() {
            if let Some(v) = std::env::var_os(alias) {
                // Still single-threaded: no other thread can read the environment yet.
                std::env::set_var(name, v);
            }
        }
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit_code::USAGE } else { exit_code::OK });
        }
    };
    if let Some(Command::Merge(args)) = &cli.command {
        return merge(args);
    }
    if let Some(Command::Compare(args)) = &cli.command {
        return compare(args);
    }
    if let Some(Command::Completions(args)) = &cli.command {
        return print(&swarm::control::manual::completions(args.shell));
    }
    if let Some(Command::Manpage(args)) = &cli.command {
        return manpage(args.out.as_deref());
    }
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
    let reports = config.reports.clone();
    let secrets = config.secrets.clone();
    // Everything the run prints goes through this: no secret reaches the terminal.
    let mut stdout = RedactingWriter::new(std::io::stdout(), secrets.clone());
    let result = runtime.block_on(run(config, &mut stdout));
    let _ = stdout.flush();
    match result {
        Ok(Finished::Run(outcome)) => {
            let _ = writeln!(stdout, "{}", outcome.summary());
            let _ = stdout.flush();
            let code = if outcome.passed() {
                exit_code::OK
            } else {
                eprintln!("hls-swarm: a --assert threshold failed (see Thresholds above)");
                exit_code::SLO
            };
            if write_reports(&outcome, &reports, &secrets) {
                ExitCode::from(code)
            } else {
                ExitCode::from(exit_code::RUNTIME)
            }
        }
        Ok(Finished::Printed | Finished::Checked(Verdict::Playable)) => ExitCode::from(exit_code::OK),
        Ok(Finished::Checked(Verdict::Unreachable)) => ExitCode::from(exit_code::UNREACHABLE),
        Ok(Finished::Checked(Verdict::Unplayable)) => ExitCode::from(exit_code::UNPLAYABLE),
        Err(RunError::Interrupted) => {
            eprintln!("hls-swarm: interrupted before the run started");
            ExitCode::from(exit_code::INTERRUPTED)
        }
        Err(e @ RunError::Preflight(_)) => {
            eprintln!("hls-swarm: {}", secrets.text(&e.to_string()));
            ExitCode::from(exit_code::PREFLIGHT)
        }
        Err(e @ (RunError::Probe(_) | RunError::MetricsBind { .. } | RunError::Stream(_))) => {
            eprintln!("hls-swarm: {}", secrets.text(&e.to_string()));
            ExitCode::from(exit_code::PREFLIGHT)
        }
        Err(e) => {
            eprintln!("hls-swarm: {}", secrets.text(&e.to_string()));
            ExitCode::from(exit_code::RUNTIME)
        }
    }
}

/// `hls-swarm merge`: the fleet's summary, its reports and its verdict (exit 2 when the reports
/// cannot be merged, 5 when an --assert fails).
fn merge(args: &MergeArgs) -> ExitCode {
    let parsed: Result<Vec<report::Target>, _> = args
        .reports
        .iter()
        .map(|p| match report::Target::parse(p) {
            Ok(t) if t.format == report::Format::Events => Err((
                p,
                "an event log is written by the run itself; merge writes .json, .html and .csv".into(),
            )),
            parsed => parsed.map_err(|r| (p, r)),
        })
        .collect();
    let targets = match parsed {
        Ok(t) => t,
        Err((p, reason)) => {
            eprintln!("hls-swarm merge: --report {}: {reason}", p.display());
            return ExitCode::from(exit_code::USAGE);
        }
    };
    let baseline = args.baseline.as_deref();
    let (outcome, shards) = match swarm::control::merge::merge(&args.files, &args.asserts, baseline) {
        Ok(merged) => merged,
        Err(e) => {
            eprintln!("hls-swarm merge: {e}");
            return ExitCode::from(exit_code::USAGE);
        }
    };
    println!("Merged {shards} shards of run {}", outcome.facts.run_id);
    println!("{}", outcome.summary());
    let code = if outcome.passed() {
        exit_code::OK
    } else {
        eprintln!("hls-swarm merge: a --assert threshold failed (see Thresholds above)");
        exit_code::SLO
    };
    // The workers' reports hide their secrets already.
    if write_reports(&outcome, &targets, &Secrets::default()) {
        ExitCode::from(code)
    } else {
        ExitCode::from(exit_code::RUNTIME)
    }
}

/// `hls-swarm compare`: two reports' figures side by side (exit 0 when they could be compared,
/// 2 when a file is not a report of this version, 1 when the page cannot be written).
fn compare(args: &swarm::control::cli::CompareArgs) -> ExitCode {
    match swarm::control::compare::compare(args, &mut std::io::stdout()) {
        Ok(_) => ExitCode::from(exit_code::OK),
        Err(e) => {
            eprintln!("hls-swarm compare: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Writes every `--report` file (all are tried); false if one could not be written.
fn write_reports(outcome: &Outcome, targets: &[report::Target], secrets: &Secrets) -> bool {
    if targets.is_empty() {
        return true;
    }
    let report = Report::new(outcome);
    let mut ok = true;
    for target in targets {
        // The event log was written as the run went: what came of it.
        let written = match (target.format, &outcome.event_log) {
            (report::Format::Events, Some(log)) => report::event_log_written(log),
            _ => report::write(&report, target, secrets),
        };
        match written {
            Ok(()) if target.is_stdout() => {}
            Ok(()) => println!("Report: {}", target.path.display()),
            Err(e) => {
                eprintln!("hls-swarm: {e}");
                ok = false;
            }
        }
    }
    ok
}

fn init_logging(config: &Config) {
    let level = match config.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Log lines on the terminal the dashboard draws on would tear it: there they are dropped
    // (redirect stderr, `2>swarm.log`, to keep them).
    let writer = if config.tui && std::io::stderr().is_terminal() {
        BoxMakeWriter::new(std::io::sink)
    } else {
        BoxMakeWriter::new(std::io::stderr)
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// `hls-swarm manpage`: the command's page on stdout, or with `--out DIR` every page written
/// there and its path printed (exit 1 when one cannot be written).
fn manpage(out: Option<&std::path::Path>) -> ExitCode {
    use swarm::control::manual;
    let Some(dir) = out else {
        return match manual::man_page() {
            Ok(roff) => print(&roff),
            Err(e) => {
                eprintln!("hls-swarm manpage: {e}");
                ExitCode::from(exit_code::RUNTIME)
            }
        };
    };
    match manual::write_man_pages(dir) {
        Ok(paths) => {
            let list: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
            print(list.as_bytes())
        }
        Err(e) => {
            eprintln!("hls-swarm manpage: {e}: {}", e.source);
            ExitCode::from(exit_code::RUNTIME)
        }
    }
}

/// Writes generated text to stdout; exit 1 if it cannot (a closed pipe included).
fn print(bytes: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::from(exit_code::OK),
        Err(e) => {
            eprintln!("hls-swarm: cannot write to stdout: {e}");
            ExitCode::from(exit_code::RUNTIME)
        }
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
