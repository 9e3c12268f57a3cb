//! Integration tests of the container images, built from this host's real binaries.
//!
//! `layer`: the archives themselves (reproducible, every library resolvable inside the layer,
//! no credentials); no container runtime needed. `podman`: the acceptance run — both images
//! loaded into a private podman store, the origin and the swarm in a test-made network
//! namespace, a passing report from the swarm container (root and podman required; reported as
//! skipped without them). Runs on testkit's runner.

// Test helpers outside #[test] functions panic on failure by design.
#![allow(clippy::unwrap_used)]

fn main() -> std::process::ExitCode {
    testkit::main()
}

mod common;
mod kube;
mod layer;
mod podman;
