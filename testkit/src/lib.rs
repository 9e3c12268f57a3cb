//! The workspace's integration-test runner.
//!
//! # Theory of operation
//!
//! Rust's built-in test harness has two outcomes for a test that runs: passed or failed. A test
//! that needs root, `/dev/net/tun`, qemu or a tool this machine lacks could only return early and
//! be reported as passed, which says something false. Every integration-test binary of the
//! workspace therefore runs on this crate instead (`harness = false`, `fn main() ->
//! ExitCode { testkit::main() }`):
//!
//! 1. `#[testkit::test]` keeps the function as written and registers it (with [`inventory`]),
//!    so a test cannot be forgotten in a list. Sync and `async` functions both work; an
//!    `async` one runs on a fresh tokio runtime ([`block_on`]).
//! 2. A test states what it needs with [`need`]: `need::root("…")?`, `need::program("qemu-…")?`.
//!    What is missing makes the test **skipped with the reason** (libtest's "ignored"),
//!    never passed.
//! 3. Under `CI` (set and not `false`/`0`), a missing prerequisite that `make test` itself
//!    installs (a command listed in `scripts/install-deps`, or something [`need::installed`]
//!    names) is a **failure**: CI must never quietly test less than it should. Root and
//!    devices are the machine's, not installable, and stay skips.
//! 4. `slow = "why"` puts a test in the slow tier: reported as ignored with the reason unless
//!    run with `--ignored` or `--include-ignored` (`make test-lab`).
//! 5. After the run, every skip and its reason is listed again, so they are easy to find in
//!    a long log; `test-summary` (this crate's binary, run by `make test`) collects them
//!    over the whole workspace ([`summary`]).
//!
//! Failures are panics, as with the built-in harness; libtest-mimic catches them per trial.
//! Output is not captured.
//!
//! [`cycles`] finds import cycles between a crate's files (`make check` runs it on every
//! crate through the `import-cycles` binary).
//!
//! [`goals`] is the other half of the rule: a figure that depends on the machine's speed is
//! not asserted in a test but printed beside its goal in a benchmark table (`make bench`).

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use libtest_mimic::{Arguments, Completion, Trial};

pub use inventory;
pub use testkit_macros::test;

pub mod chromium;
pub mod cpu;
pub mod cycles;
pub mod goals;
pub mod need;
pub mod port;
pub mod summary;

/// One registered test (written by `#[testkit::test]`).
#[derive(Debug)]
pub struct Test {
    /// `module_path!()` where the function is defined.
    pub module: &'static str,
    /// The function's name.
    pub name: &'static str,
    /// `Some(why)` for the slow tier.
    pub slow: Option<&'static str>,
    /// Calls the function.
    pub run: fn() -> Outcome,
}

inventory::collect!(Test);

impl Test {
    /// The name the runner shows: the module path without the binary's root, then the
    /// function, as the built-in harness names tests (`setup::builds_a_bridge`).
    #[must_use]
    pub fn full_name(&self) -> String {
        match self.module.split_once("::") {
            Some((_, rest)) => format!("{rest}::{}", self.name),
            None => self.name.to_owned(),
        }
    }
}

/// Why a test did not run here: a prerequisite is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip(pub String);

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a test function may return: nothing (it passed unless it panicked) or
/// `Err(Skip)` for a missing prerequisite.
pub type Outcome = Result<(), Skip>;

/// The return types `#[testkit::test]` accepts.
pub trait IntoOutcome {
    /// As an [`Outcome`].
    fn into_outcome(self) -> Outcome;
}

impl IntoOutcome for () {
    fn into_outcome(self) -> Outcome {
        Ok(())
    }
}

impl IntoOutcome for Outcome {
    fn into_outcome(self) -> Outcome {
        self
    }
}

/// Runs an async test body on a runtime of its own: two worker threads, or the current
/// thread only.
///
/// # Panics
/// If the runtime cannot be built.
pub fn block_on<F: Future>(future: F, current_thread: bool) -> F::Output {
    let mut builder = if current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    };
    let runtime = builder.enable_all().build().expect("a tokio runtime for the test");
    runtime.block_on(future)
}

/// True when running under CI: `CI` is set to something other than empty, `0` or `false`.
#[must_use]
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// Skips recorded during this run, listed again at its end.
static SKIPPED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn record_skip(name: &str, reason: &str) {
    if let Ok(mut s) = SKIPPED.lock() {
        s.push((name.to_owned(), reason.to_owned()));
    }
}

/// The trials for `tests` under `args`.
fn trials(tests: &[&'static Test], args: &Arguments) -> Vec<Trial> {
    tests
        .iter()
        .map(|&t| {
            let name = t.full_name();
            match t.slow {
                // Listed as ignored with the reason; `--ignored` runs only these.
                Some(why) if !args.ignored && !args.include_ignored => {
                    let shown = name.clone();
                    Trial::ignorable_test(name, move || {
                        let reason = format!("slow tier: {why}");
                        record_skip(&shown, &reason);
                        Ok(Completion::ignored_with(reason))
                    })
                }
                slow => {
                    let shown = name.clone();
                    Trial::ignorable_test(name, move || match (t.run)() {
                        Ok(()) => Ok(Completion::Completed),
                        Err(Skip(reason)) => {
                            let reason = format!("skipped: {reason}");
                            record_skip(&shown, &reason);
                            Ok(Completion::ignored_with(reason))
                        }
                    })
                    .with_ignored_flag(slow.is_some())
                }
            }
        })
        .collect()
}

/// Runs every `#[testkit::test]` linked into this binary with libtest's command line
/// (filters, `--ignored`, `--include-ignored`, `--list`, `--test-threads`, `--exact`, …).
///
/// # Panics
/// If no test is registered: a binary built on this runner with nothing in it is a mistake.
#[must_use]
pub fn main() -> ExitCode {
    let args = Arguments::from_args();
    let mut tests: Vec<&'static Test> = inventory::iter::<Test>.into_iter().collect();
    tests.sort_by_key(|t| t.full_name());
    assert!(!tests.is_empty(), "no #[testkit::test] function is linked into this binary");
    if !args.list {
        // For the summary of a whole `cargo test` log (`summary`): every crate's integration
        // binary has the same name. Cargo sets CARGO_PKG_NAME for the tests it runs.
        if let Ok(package) = std::env::var("CARGO_PKG_NAME") {
            println!("testkit: package {package}");
        }
    }
    let conclusion = libtest_mimic::run(&args, trials(&tests, &args));
    if !args.list {
        let mut skipped = SKIPPED.lock().map(|s| s.clone()).unwrap_or_default();
        skipped.sort();
        if !skipped.is_empty() {
            println!("{} of {} tests did not run here:", skipped.len(), tests.len());
            for (name, reason) in &skipped {
                println!("  {name}: {reason}");
            }
            println!();
        }
    }
    conclusion.exit_code()
}

/// `name` on `PATH`, or in `/usr/sbin`, `/sbin` or `/usr/bin` (root's tools on Debian, which a
/// user's `PATH` may lack).
#[must_use]
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::{IntoOutcome, Skip, Test};

    #[test]
    fn names_drop_the_binary_root() {
        let t = Test { module: "integration::setup", name: "builds", slow: None, run: || Ok(()) };
        assert_eq!(t.full_name(), "setup::builds");
        let t = Test { module: "integration", name: "top", slow: None, run: || Ok(()) };
        assert_eq!(t.full_name(), "top");
    }

    #[test]
    fn outcomes() {
        assert_eq!(().into_outcome(), Ok(()));
        assert_eq!(Err::<(), _>(Skip("x".into())).into_outcome(), Err(Skip("x".into())));
    }
}
