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
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Running as root (netns, veth, bridge, tc and TAP need it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Why a scenario needing root and network namespaces cannot run here, if it cannot.
pub fn netns_missing() -> Option<String> {
    if !is_root() {
        return Some("needs root (network namespaces, veth, bridge)".into());
    }
    for tool in ["ip", "tc", "nft"] {
        if which(tool).is_none() {
            return Some(format!("needs `{tool}` (iproute2 / nftables)"));
        }
    }
    None
}

/// Why the MicroVM placement cannot run here, if it cannot.
pub fn microvm_missing(env: &Env) -> Option<String> {
    if let Some(why) = netns_missing() {
        return Some(why);
    }
    if let Err(e) = env.bin("hls-lab") {
        return Some(format!("the microvm launcher is not built: {e}"));
    }
    if which("qemu-system-x86_64").is_none() {
        return Some("qemu-system-x86_64 is not installed (scripts/install-deps --vm)".into());
    }
    let kernel = std::fs::read_dir("/boot").ok().and_then(|d| {
        d.filter_map(Result::ok).find(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))
    });
    if kernel.is_none() {
        return Some("no /boot/vmlinuz-* kernel to boot the VM with".into());
    }
    None
}

/// Why a real Prometheus server cannot run here, if it cannot.
pub fn prometheus_missing() -> Option<String> {
    which("prometheus").is_none().then(|| "needs `prometheus` (Debian package prometheus)".to_owned())
}
