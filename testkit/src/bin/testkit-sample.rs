//! A test binary on testkit's runner with one test of each kind, run by testkit's own
//! integration test to check what the runner reports (`cargo run -p testkit --bin testkit-sample`).
//! A binary rather than an example so that cargo builds it for the integration test and
//! tells it where (`CARGO_BIN_EXE_testkit-sample`), whatever the targets asked for.

#![allow(clippy::unwrap_used)]

fn main() -> std::process::ExitCode {
    testkit::main()
}

#[testkit::test]
fn passes() {
    assert!(std::env::args().next().is_some(), "a process has a name");
}

#[testkit::test]
async fn passes_async() {
    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
}

#[testkit::test(current_thread)]
async fn passes_on_the_current_thread() -> testkit::Outcome {
    let flavor = tokio::runtime::Handle::current().runtime_flavor();
    assert_eq!(flavor, tokio::runtime::RuntimeFlavor::CurrentThread);
    Ok(())
}

#[testkit::test]
fn lacks_a_machine_facility() -> testkit::Outcome {
    testkit::need::available(false, "the sample's machine facility is absent")?;
    panic!("ran past a missing prerequisite");
}

#[testkit::test]
fn lacks_something_make_test_installs() -> testkit::Outcome {
    testkit::need::installed("the sample's tool", false, "the sample installs nothing")?;
    panic!("ran past a missing prerequisite");
}

#[testkit::test(slow = "the sample's slow tier")]
fn slow_one() {}

#[testkit::test]
fn fails_when_asked() {
    assert!(std::env::var_os("SAMPLE_FAIL").is_none(), "SAMPLE_FAIL is set");
}
