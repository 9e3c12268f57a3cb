//! The runner as a user of it sees it: `src/bin/testkit-sample.rs` (one test of each kind) run
//! as a process, with and without CI, its report read.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn main() -> std::process::ExitCode {
    testkit::main()
}

/// The sample binary cargo built for this test.
fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_testkit-sample"))
}

fn run(configure: impl FnOnce(&mut Command)) -> (Output, String) {
    let mut cmd = Command::new(sample());
    cmd.env_remove("CI").env_remove("SAMPLE_FAIL").env_remove("RUST_BACKTRACE").arg("--test-threads=1");
    configure(&mut cmd);
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Names are padded to a column: compare with single spaces.
    let text = text.lines().map(|l| l.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" "));
    (out, text.collect::<Vec<_>>().join("\n"))
}

#[testkit::test]
fn skips_are_ignored_with_their_reason_and_listed_at_the_end() {
    let (out, text) = run(|_| {});
    assert_eq!(out.status.code(), Some(0), "{text}");
    for line in [
        "test passes ... ok",
        "test passes_async ... ok",
        "test passes_on_the_current_thread ... ok",
        "test lacks_a_machine_facility ... ignored (skipped: the sample's machine facility is absent)",
        "test lacks_something_make_test_installs ... ignored (skipped: needs the sample's tool (the sample installs nothing))",
        "test slow_one ... ignored (slow tier: the sample's slow tier)",
        "4 passed; 0 failed; 3 ignored",
        "3 of 7 tests did not run here:",
        "lacks_a_machine_facility: skipped: the sample's machine facility is absent",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[testkit::test]
fn under_ci_a_missing_installable_prerequisite_fails() {
    let (out, text) = run(|c| {
        c.env("CI", "true");
    });
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(text.contains("test lacks_something_make_test_installs ... FAILED"), "{text}");
    assert!(text.contains("the sample's tool is missing and CI is set"), "{text}");
    assert!(
        text.contains("test lacks_a_machine_facility ... ignored"),
        "a machine facility stays a skip: {text}"
    );
    assert!(text.contains("4 passed; 1 failed; 2 ignored"), "{text}");
}

#[testkit::test]
fn ignored_runs_only_the_slow_tier_and_failures_fail() {
    let (out, text) = run(|c| {
        c.arg("--ignored");
    });
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("test slow_one ... ok") && text.contains("1 passed; 0 failed; 0 ignored"),
        "{text}"
    );
    let (out, text) = run(|c| {
        c.env("SAMPLE_FAIL", "1").args(["fails_when_asked", "--exact"]);
    });
    assert_eq!(out.status.code(), Some(101), "{text}");
    assert!(text.contains("SAMPLE_FAIL is set"), "{text}");
}

#[testkit::test]
fn false_or_empty_ci_is_not_ci() {
    // Read in a child, so this process's environment is left alone.
    for (value, is_ci) in [("true", true), ("1", true), ("false", false), ("0", false), ("", false)] {
        let (_, text) = run(|c| {
            c.env("CI", value).args(["lacks_something_make_test_installs", "--exact"]);
        });
        assert_eq!(text.contains("FAILED"), is_ci, "CI={value:?}: {text}");
    }
}
