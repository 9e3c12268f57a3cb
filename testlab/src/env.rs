//! The harness's surroundings: where the workspace binaries are, where results and the replay
//! cache go, and which facilities (root, qemu, Prometheus, the kernel's netem) this host has.

use std::path::{Path, PathBuf};

/// Binaries and directories one test run uses.
#[derive(Debug, Clone)]
pub struct Env {
    /// `target/<profile>/`, where cargo puts the workspace's binaries.
    pub bin_dir: PathBuf,
    /// `testlab/scenarios/`.
    pub scenarios: PathBuf,
    /// Per-scenario results and logs (`<bin_dir>/testlab-runs/NAME/`), kept after the run.
    pub runs: PathBuf,
    /// Replay loops and VM images, reused across runs.
    pub cache: PathBuf,
}

impl Env {
    /// For a test executable in `target/<profile>/deps/`.
    pub fn from_test_exe(manifest_dir: &Path) -> Env {
        let exe = std::env::current_exe().unwrap_or_default();
        // target/<profile>/deps/<test> → target/<profile>
        let bin_dir = exe.parent().and_then(Path::parent).map(Path::to_owned).unwrap_or_default();
        Env {
            scenarios: manifest_dir.join("scenarios"),
            runs: bin_dir.join("testlab-runs"),
            cache: bin_dir.join("testlab-cache"),
            bin_dir,
        }
    }

    /// A workspace binary next to the test executable.
    ///
    /// # Errors
    /// A message saying how to build it.
    pub fn bin(&self, name: &str) -> Result<PathBuf, String> {
        let p = self.bin_dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "{} is missing: run `cargo build --workspace --bins` first (same profile and target dir; \
                 `make test` and `make test-lab` do)",
                p.display()
            ))
        }
    }
}

/// `name` on `PATH`, or at one of Debian's paths.
pub fn which(name: &str) -> Option<PathBuf> {
    testkit::which(name)
}

/// Running as root (netns, veth, bridge, tc and TAP need it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Why a scenario needing root and network namespaces cannot run here, if it cannot. A tool
/// that `make test` installs and is missing under CI panics: a failure, not a skip.
pub fn netns_missing() -> Option<String> {
    let need = || -> testkit::Outcome {
        testkit::need::root("network namespaces, veth, bridge")?;
        for tool in ["ip", "tc", "nft"] {
            testkit::need::program(tool)?;
        }
        Ok(())
    };
    need().err().map(|s| s.0)
}

/// Why the MicroVM placement cannot run here, if it cannot (as [`netns_missing`]).
pub fn microvm_missing(env: &Env) -> Option<String> {
    if let Some(why) = netns_missing() {
        return Some(why);
    }
    if let Err(e) = env.bin("hls-lab") {
        return Some(format!("the microvm launcher is not built: {e}"));
    }
    let need = || -> testkit::Outcome {
        testkit::need::program("qemu-system-x86_64")?;
        let kernel = std::fs::read_dir("/boot").ok().and_then(|d| {
            d.filter_map(Result::ok).find(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))
        });
        testkit::need::installed(
            "a /boot/vmlinuz-* kernel to boot the VM with",
            kernel.is_some(),
            "scripts/install-deps --vm installs linux-image-amd64",
        )
    };
    need().err().map(|s| s.0)
}

/// Why a real Prometheus server cannot run here, if it cannot (as [`netns_missing`]).
pub fn prometheus_missing() -> Option<String> {
    testkit::need::program("prometheus").err().map(|s| s.0)
}
