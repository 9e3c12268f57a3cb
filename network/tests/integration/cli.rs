//! The `hls-lab network` front end, in-process: parse, run, exit codes, output.

use clap::Parser;
use network::cli::{run_to, NetworkCommand};

use crate::*;

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: NetworkCommand,
}

/// Parse and run `network ARGS`; returns (exit code, stdout, stderr).
fn network<S: AsRef<str>>(args: &[S]) -> (i32, String, String) {
    let cmd = match Cli::try_parse_from(std::iter::once("network").chain(args.iter().map(AsRef::as_ref))) {
        Ok(cli) => cli.cmd,
        Err(e) => return (e.exit_code(), String::new(), e.to_string()),
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_to(cmd, &mut out, &mut err);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

#[testkit::test]
fn root_netns_cli_setup_check_teardown() -> testkit::Outcome {
    can_run()?;
    let lab = Lab::new();
    let run_dir = lab.run_dir.path().to_str().unwrap().to_string();
    let scope = ["--netns", lab.ns.as_str(), "--run-dir", run_dir.as_str()];
    let with = |cmd: &'static str, extra: &[&'static str]| -> Vec<String> {
        [cmd].iter().chain(&scope).chain(extra).map(|s| s.to_string()).collect()
    };

    let (code, out, err) = network(&with("setup", &[]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("created bridge hlsbr0\n") && out.contains("created tap hlstap0"), "{out}");
    assert!(out.contains(&format!("network ready (netns {}): ", lab.ns)), "{out}");

    let (code, out, _) = network(&with("setup", &[]));
    assert_eq!(code, 0);
    assert!(out.contains("bridge hlsbr0 already up") && out.contains(": 0 changes"), "{out}");

    let (code, out, _) = network(&with("check", &["--skip-vm"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("✓ bridge hlsbr0 up with 10.177.0.1/24"), "{out}");
    let (code, out, _) = network(&with("check", &["--timeout", "200ms"]));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ VM 10.177.0.10:17080 (HLS origin) not reachable"), "{out}");

    let (code, out, err) = network(&with("teardown", &[]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("deleted netns {}", lab.ns)), "{out}");
    assert!(!network::netns::exists(&lab.ns));
    Ok(())
}

#[testkit::test]
fn root_netns_cli_bad_input_exits_2_and_starts_nothing() -> testkit::Outcome {
    can_run()?;
    let lab = Lab::new();
    let run_dir = lab.run_dir.path().to_str().unwrap().to_string();
    let cases: [(&[&str], &str); 5] = [
        (&["--bridge-addr", "10.177.0.1/33"], "10.177.0.1/33"),
        (&["--bridge-addr", "10.177.0.1"], "prefix length is missing"),
        (&["--tap", "hlstap-much-too-long"], "longer than 15 bytes"),
        (&["--vm-addr", "10.9.9.9"], "outside"),
        (&["--tap-user", "no-such-user-hlslab"], "unknown user"),
    ];
    for (extra, says) in cases {
        let args =
            [&["setup", "--netns", lab.ns.as_str(), "--run-dir", run_dir.as_str()][..], extra].concat();
        let (code, out, err) = network(&args);
        assert_eq!(code, 2, "{extra:?}: {out}{err}");
        assert!(err.contains(says), "{extra:?}: {err}");
        assert!(!network::netns::path(&lab.ns).exists(), "{extra:?} started something");
        assert!(std::fs::read_dir(lab.run_dir.path()).unwrap().next().is_none(), "{extra:?} wrote state");
    }
    Ok(())
}
