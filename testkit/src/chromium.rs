//! Headless Chromium for tests (the HTML report's rendering, hls.js playing the ll-hls origin).

use std::path::PathBuf;

use crate::Skip;

/// The Chromium binary: Ubuntu's `chromium-browser`, else Debian's `chromium`, which `make
/// test` installs (so under CI its absence is a failure, elsewhere a skip).
///
/// # Errors
/// [`Skip`] when neither is installed.
pub fn program() -> Result<PathBuf, Skip> {
    crate::which("chromium-browser").map_or_else(|| crate::need::program("chromium"), Ok)
}

/// The flags of every headless run: no sandbox (tests run as root), no GPU, nothing fetched
/// in the background, and any request that is not for loopback sent to a closed port (a
/// proxy is bypassed for loopback). Add `--user-data-dir` with a private directory.
pub const FLAGS: [&str; 9] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--proxy-server=http://127.0.0.1:9",
];
