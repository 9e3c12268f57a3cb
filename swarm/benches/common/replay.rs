//! The benches' origin: the test origin replaying a loop encoded once (cached), on a free
//! loopback port, without exporters, so the swarm gets the CPU.

use std::time::Duration;

/// Starts it at `width`x`height`, `kbps`; encoding a new loop may take minutes.
pub async fn start(width: u32, height: u32, kbps: u32) -> anyhow::Result<origin::Origin> {
    start_profile("default", width, height, kbps).await
}

/// As [`start`], with profile `profile` (`ll-hls`: the LL-HLS server behind nginx).
pub async fn start_profile(
    profile: &str,
    width: u32,
    height: u32,
    kbps: u32,
) -> anyhow::Result<origin::Origin> {
    let mut config = origin::Config::new(profile)?;
    config.listen = "127.0.0.1:0".parse()?;
    config.source = origin::Source::Replay;
    config.overrides.width = Some(width);
    config.overrides.height = Some(height);
    config.overrides.bitrate_kbps = Some(kbps);
    config.node_exporter = None;
    config.nginx_exporter = None;
    config.ready_timeout = Duration::from_secs(600);
    Ok(origin::start(config).await?)
}
