//! Integration tests of the origin MicroVM with real qemu, the host's kernel and binaries.
//! The VM boots are `#[ignore]`d (slow under TCG) and run by `make test-lab`.

// Test helpers outside #[test] functions panic on failure by design.
#![allow(clippy::unwrap_used)]

mod common;
mod image;
mod vm;
