//! Integration tests of the origin MicroVM with real qemu, the host's kernel and binaries.
//! The VM boots are in the slow tier (slow under TCG) and run by `make test-lab`; a host
//! without qemu or the image's inputs reports them as skipped. Runs on testkit's runner.

// Test helpers outside #[test] functions panic on failure by design.
#![allow(clippy::unwrap_used)]

fn main() -> std::process::ExitCode {
    testkit::main()
}

mod common;
mod host;
mod image;
mod observe;
mod vm;
