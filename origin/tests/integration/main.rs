//! Integration tests: boot the origin for real (ffmpeg, nginx, exporters) and check it over HTTP.
//!
//! Pictures are scaled down (320x180) or replayed so the suite fits a 2-core machine.

// Test helpers outside test functions panic on failure by design.
#![allow(clippy::unwrap_used)]

fn main() -> std::process::ExitCode {
    testkit::main()
}

mod common;
mod hold;
mod lifecycle;
mod llhls;
mod llhls_browser;
mod profiles;
mod serving;
