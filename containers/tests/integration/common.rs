//! Shared helpers: the workspace binaries the images are built from, and unique names.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use containers::spec::{Inputs, Overrides};

/// `target/<profile>/`: the test executable lives in its `deps/`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_owned()
}

/// `hls-swarm` and `hls-origin` next to the test (what `cargo test --workspace` builds); when
/// either is missing (`cargo test -p containers`), they are built once with cargo into the
/// same target directory and profile.
pub fn inputs() -> Inputs {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let dir = bin_dir();
    let missing = || ["hls-swarm", "hls-origin"].iter().any(|b| !dir.join(b).is_file());
    let built = BUILT.get_or_init(|| {
        if !missing() {
            return Ok(());
        }
        let target = dir.parent().ok_or("no target directory")?;
        let profile = dir.file_name().and_then(|n| n.to_str()).ok_or("no profile directory")?;
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--bins", "-p", "hls-swarm", "-p", "hls-origin"]).env("CARGO_TARGET_DIR", target);
        if profile == "release" {
            cmd.arg("--release");
        }
        let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
        if status.success() && !missing() {
            Ok(())
        } else {
            Err(format!("{cmd:?} failed ({status})"))
        }
    });
    if let Err(e) = built {
        panic!("hls-swarm and hls-origin are needed next to the test in {}: {e}", dir.display());
    }
    Inputs::discover(&Overrides { swarm: Some(dir.join("hls-swarm")), origin: Some(dir.join("hls-origin")) })
        .unwrap_or_else(|e| panic!("{e} (scripts/install-deps installs the runtime packages)"))
}

/// A short suffix unique to this test run (pid and clock), for image, container and
/// namespace names.
pub fn suffix() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{:x}{:05x}", std::process::id(), nanos & 0xf_ffff)
}
