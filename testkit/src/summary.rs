//! The end of `make test`: one summary of a whole `cargo test --workspace` log, so that what
//! did not run (and why) is not lost in thousands of lines.

use std::fmt::Write as _;

/// Totals of a log and the tests that did not run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Test binaries that reported a result.
    pub binaries: usize,
    /// Sums of their `test result:` lines.
    pub passed: u64,
    /// As above.
    pub failed: u64,
    /// As above.
    pub ignored: u64,
    /// `(binary, test, reason)` of every ignored test; the reason is empty when none was given.
    pub not_run: Vec<(String, String, String)>,
    /// `(binary, test)` of every failed test.
    pub failures: Vec<(String, String)>,
}

/// The number before `word` in a `test result:` line (`… 12 passed; 0 failed; …`).
fn count_before(line: &str, word: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1].trim_end_matches([';', ',']) == word)
        .and_then(|w| w[0].parse().ok())
        .unwrap_or(0)
}

/// Which block of a test binary's closing output a line is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    None,
    /// libtest's second `failures:` list: one name per line, indented four spaces.
    Failures,
    /// testkit's `N of M tests did not run here:` list: `  name: reason`.
    NotRun,
}

/// Reads a log of `cargo test` (stdout and stderr together, in order).
///
/// Tests run in parallel, so a `test NAME ... ` line and its outcome can be split by another
/// test's output; outcomes are therefore also read from the lists printed once a binary is
/// done: libtest's `failures:` names and testkit's "did not run here" list.
#[must_use]
pub fn parse(log: &str) -> Summary {
    let mut s = Summary::default();
    let mut binary = String::new();
    let mut block = Block::None;
    for line in log.lines() {
        let t = line.trim();
        match block {
            Block::Failures if line.starts_with("    ") && !t.is_empty() && !t.contains(' ') => {
                s.failures.push((binary.clone(), t.to_owned()));
                continue;
            }
            Block::NotRun if line.starts_with("  ") && !t.is_empty() => {
                if let Some((name, reason)) = t.split_once(": ") {
                    s.not_run.push((binary.clone(), name.to_owned(), reason.to_owned()));
                }
                continue;
            }
            _ => block = Block::None,
        }
        if t == "failures:" {
            block = Block::Failures;
            continue;
        }
        if t.ends_with("tests did not run here:") {
            block = Block::NotRun;
            continue;
        }
        if let Some(rest) = t.strip_prefix("Running ").or_else(|| t.strip_prefix("Doc-tests ")) {
            // `Running tests/integration/main.rs (target/debug/deps/integration-0123)`
            binary = match rest.split_once(" (") {
                Some((src, exe)) => {
                    let exe = exe.trim_end_matches(')');
                    let name = exe.rsplit('/').next().unwrap_or(exe);
                    let name = name.rsplit_once('-').map_or(name, |(n, _)| n);
                    format!("{name} ({src})")
                }
                None => format!("doc-tests {rest}"),
            };
        } else if let Some(package) = t.strip_prefix("testkit: package ") {
            // Printed by testkit's runner: integration binaries are all called `integration`.
            binary = format!("{package} {}", binary.split_once(' ').map_or("", |(_, src)| src));
        } else if t.starts_with("test result:") {
            s.binaries += 1;
            s.passed += count_before(t, "passed");
            s.failed += count_before(t, "failed");
            s.ignored += count_before(t, "ignored");
        } else if let Some(rest) = t.strip_prefix("test ") {
            let Some((name, outcome)) = rest.split_once(" ... ") else { continue };
            let name = name.trim().to_owned();
            if let Some(reason) = outcome.strip_prefix("ignored") {
                // testkit: `ignored (reason)`; the built-in harness: `ignored, reason`.
                let reason = reason.trim().trim_start_matches(',').trim();
                let reason = reason.strip_prefix('(').and_then(|r| r.strip_suffix(')')).unwrap_or(reason);
                s.not_run.push((binary.clone(), name, reason.to_owned()));
            }
        }
    }
    // The same test seen on its `test` line and in the closing list counts once; a reason
    // beats none.
    s.not_run.sort_by(|a, b| (&a.0, &a.1, b.2.is_empty()).cmp(&(&b.0, &b.1, a.2.is_empty())));
    s.not_run.dedup_by(|later, first| later.0 == first.0 && later.1 == first.1);
    s.failures.sort();
    s.failures.dedup();
    s
}

impl Summary {
    /// The text printed after the log.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "══ test summary ══");
        let _ = writeln!(
            out,
            "{} passed, {} failed, {} did not run, in {} test binaries",
            self.passed, self.failed, self.ignored, self.binaries
        );
        if !self.not_run.is_empty() {
            let _ = writeln!(out, "Did not run here ({}):", self.not_run.len());
            for (binary, name, reason) in &self.not_run {
                let reason = if reason.is_empty() { "no reason given" } else { reason };
                let _ = writeln!(out, "  {binary} {name}: {reason}");
            }
        }
        if !self.failures.is_empty() {
            let _ = writeln!(out, "Failed ({}):", self.failures.len());
            for (binary, name) in &self.failures {
                let _ = writeln!(out, "  {binary} {name}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "   Compiling x v0.1.0
     Running unittests src/lib.rs (target/debug/deps/swarm-b0fe3847a3b1a429)

running 2 tests
test a::b ... ok
test a::slow ... ignored, boots a VM; run with make test-lab
test result: ok. 1 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.43s

     Running tests/integration/main.rs (target/debug/deps/integration-093660232be88a0f)
testkit: package network

running 3 tests
test setup::works                           ... ok
test setup::root_only                       ...
thread '<unnamed>' panicked at network/tests/integration/setup.rs:9:5:
boom
ignored (skipped: needs root (network namespaces))
test setup::breaks                          ... FAILED

failures:

---- setup::breaks ----
test panicked: boom


failures:
    setup::breaks

test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.88s

1 of 3 tests did not run here:
  setup::root_only: skipped: needs root (network namespaces)

   Doc-tests procgroup
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";

    #[test]
    fn totals_skips_and_failures_of_a_log() {
        let s = parse(LOG);
        assert_eq!((s.binaries, s.passed, s.failed, s.ignored), (3, 2, 1, 2));
        assert_eq!(
            s.not_run,
            [
                (
                    "network (tests/integration/main.rs)".into(),
                    "setup::root_only".into(),
                    "skipped: needs root (network namespaces)".into()
                ),
                (
                    "swarm (unittests src/lib.rs)".into(),
                    "a::slow".into(),
                    "boots a VM; run with make test-lab".into()
                ),
            ]
        );
        assert_eq!(s.failures, [("network (tests/integration/main.rs)".into(), "setup::breaks".into())]);
        let text = s.render();
        assert!(text.contains("2 passed, 1 failed, 2 did not run, in 3 test binaries"), "{text}");
        assert!(text.contains("Did not run here (2):"), "{text}");
    }
}
