//! The host files an image is built from, found on this host or given explicitly.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::Error;
use crate::kernel;

/// The host files an image is built from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inputs {
    /// `hls-origin`.
    pub origin: PathBuf,
    /// ffmpeg.
    pub ffmpeg: PathBuf,
    /// nginx.
    pub nginx: PathBuf,
    /// prometheus-node-exporter.
    pub node_exporter: PathBuf,
    /// prometheus-nginx-exporter.
    pub nginx_exporter: PathBuf,
    /// busybox (static or not).
    pub busybox: PathBuf,
    /// The kernel (bzImage).
    pub kernel: PathBuf,
    /// Its modules, the directory with `modules.dep` (`/lib/modules/<release>`).
    pub modules: PathBuf,
}

/// Explicit choices; anything `None` is looked up.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `hls-origin` binary.
    pub origin: Option<PathBuf>,
    /// Kernel bzImage.
    pub kernel: Option<PathBuf>,
    /// Modules directory.
    pub modules: Option<PathBuf>,
}

/// `name` found in `PATH`, or in the sbin/bin directories a non-login root shell may lack.
#[must_use]
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn program(name: &'static str, candidates: &[&str], hint: &'static str) -> Result<PathBuf, Error> {
    candidates.iter().find_map(|c| on_path(c)).ok_or_else(|| Error::ProgramNotFound {
        name,
        looked: candidates.join(", "),
        hint,
    })
}

/// `hls-origin` next to the running executable (the workspace's `target/<profile>/`), else on
/// `PATH`.
#[must_use]
pub fn default_origin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    // Test executables live one level deeper, in target/<profile>/deps/.
    [dir.join("hls-origin"), dir.parent()?.join("hls-origin")]
        .into_iter()
        .find(|p| p.is_file())
        .or_else(|| on_path("hls-origin"))
}

impl Inputs {
    /// Finds every input on this host.
    ///
    /// # Errors
    /// [`Error::ProgramNotFound`], or a [`kernel::Error`] from [`kernel::locate`] (no kernel, or
    /// none of its modules, found: it names what was looked at and what to pass or install).
    pub fn discover(o: &Overrides) -> Result<Inputs, Error> {
        let apt = "install it with scripts/install-deps";
        let (kernel, modules) =
            kernel::locate(o.kernel.as_deref(), o.modules.as_deref(), &kernel::Search::host())?;
        let origin = match &o.origin {
            Some(p) => p.clone(),
            None => default_origin().ok_or(Error::ProgramNotFound {
                name: "hls-origin",
                looked: "next to hls-lab, then PATH".into(),
                hint: "build it (cargo build --release -p hls-origin) or pass --origin-bin",
            })?,
        };
        if !origin.is_file() {
            return Err(Error::ProgramNotFound {
                name: "hls-origin",
                looked: origin.display().to_string(),
                hint: "pass an existing file to --origin-bin",
            });
        }
        Ok(Inputs {
            origin,
            ffmpeg: program("ffmpeg", &["ffmpeg"], apt)?,
            nginx: program("nginx", &["nginx"], apt)?,
            node_exporter: program(
                "prometheus-node-exporter",
                &["prometheus-node-exporter", "node_exporter"],
                apt,
            )?,
            nginx_exporter: program(
                "prometheus-nginx-exporter",
                &["prometheus-nginx-exporter", "nginx-prometheus-exporter"],
                apt,
            )?,
            busybox: program("busybox", &["busybox"], "install busybox-static (scripts/install-deps --vm)")?,
            kernel,
            modules,
        })
    }
}
