//! One trial per `testlab/scenarios/*.toml` (sorted by name), plus a self-test that runs a
//! scenario with deliberately broken expectations and checks the harness reports each one.
//!
//! `cargo test -p testlab --test scenarios` runs the fast tier; `-- --ignored` the slow tier;
//! `-- --include-ignored` everything; `-- smoke` one; `-- --list` lists them. Scenarios run
//! one at a time unless `--test-threads N` says otherwise: they measure, and the machine is
//! small. The workspace binaries must be built first (`cargo build --workspace --bins`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use testlab::{Env, Scenario, Tier};

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        args.test_threads = Some(1);
    }
    testlab::snapshot::quiet_insta_panics();
    let env = Env::from_test_exe(Path::new(env!("CARGO_MANIFEST_DIR")));
    let scenarios = Scenario::load_dir(&env.scenarios).unwrap_or_else(|e| panic!("{e}"));
    assert!(!scenarios.is_empty(), "no scenario files (*.toml) in {}", env.scenarios.display());
    let run_slow = args.ignored || args.include_ignored;
    let mut trials: Vec<Trial> = scenarios
        .into_iter()
        .map(|s| {
            let slow = s.tier == Tier::Slow;
            let env = env.clone();
            if slow && !run_slow {
                // Listed as ignored with the reason; `--ignored` (make test-lab) runs it.
                return Trial::ignorable_test(s.name.clone(), || {
                    Ok(Completion::ignored_with("slow tier: run with make test-lab"))
                });
            }
            Trial::ignorable_test(s.name.clone(), move || run(&s, &env)).with_ignored_flag(slow)
        })
        .collect();
    let selftest_env = env.clone();
    trials.push(Trial::ignorable_test("selftest-broken-expectations-are-reported", move || {
        broken_expectations_are_reported(&selftest_env)
    }));
    libtest_mimic::run(&args, trials).exit_code()
}

fn run(s: &Scenario, env: &Env) -> Result<Completion, Failed> {
    let o = testlab::run(s, env);
    if let Some(why) = o.skipped {
        eprintln!("SKIPPED {}: {why}", s.name);
        return Ok(Completion::ignored_with(format!("skipped: {why}")));
    }
    if o.failures.is_empty() {
        eprintln!("scenario {} passed in {:.1} s (results: {})", s.name, o.seconds, o.dir.display());
        Ok(Completion::Completed)
    } else {
        Err(format!(
            "scenario {} failed in {:.1} s (results: {}):\n- {}",
            s.name,
            o.seconds,
            o.dir.display(),
            o.failures.join("\n- ")
        )
        .into())
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `tests/fixtures/smoke-broken.toml` is the smoke scenario with three wrong expectations: an
/// `--assert` that cannot hold (so the swarm exits 5, not the expected 0), an origin CPU limit
/// no process meets, and a snapshot claiming 6 viewers. Run from a copy, so insta's
/// `.snap.new` never lands in the source tree.
fn broken_expectations_are_reported(env: &Env) -> Result<Completion, Failed> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(tmp.path().join("snapshots")).map_err(|e| e.to_string())?;
    let toml = tmp.path().join("smoke-broken.toml");
    std::fs::copy(fixtures().join("smoke-broken.toml"), &toml).map_err(|e| e.to_string())?;
    std::fs::copy(
        fixtures().join("snapshots/smoke-broken.snap"),
        tmp.path().join("snapshots/smoke-broken.snap"),
    )
    .map_err(|e| e.to_string())?;
    let s = Scenario::load(&toml).map_err(|e| e.to_string())?;
    let o = testlab::run(&s, env);
    if let Some(why) = o.skipped {
        return Ok(Completion::ignored_with(format!("skipped: {why}")));
    }
    let text = o.failures.join("\n");
    eprintln!("the broken scenario failed as it should:\n{text}");
    let mut wanted = vec![
        ("the exit code", "hls-swarm exited Some(5), expected 0; failed thresholds: FAIL  restarts>=1"),
        ("the CPU check", "check failed: origin CPU below 0% of a core"),
    ];
    if testlab::snapshot::mismatches_are_accepted() {
        eprintln!(
            "INSTA_UPDATE/INSTA_FORCE_PASS accept any snapshot here: the snapshot mismatch is not checked"
        );
    } else {
        wanted.push(("the snapshot", "snapshot "));
    }
    let missing: Vec<&str> =
        wanted.iter().filter(|(_, w)| !text.contains(w)).map(|(what, _)| *what).collect();
    if !missing.is_empty() {
        return Err(format!("the harness did not report {missing:?}; it reported:\n{text}").into());
    }
    if text.contains("left behind") {
        return Err(format!("a failing scenario must still clean up:\n{text}").into());
    }
    Ok(Completion::Completed)
}
