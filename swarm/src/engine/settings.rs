//! What every engine is told, whatever plays the stream: the settings of its HTTP requests
//! and which variant of a master playlist it plays.

use std::net::IpAddr;
use std::time::Duration;

use clap::ValueEnum;

use crate::engine::limits::Limits;
use crate::engine::trust::Trust;

/// Which variant of a master playlist a viewer plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Every variant and rendition (FFmpeg `-map 0`)
    All,
    /// The variant with the highest BANDWIDTH
    Highest,
    /// The variant with the lowest BANDWIDTH
    Lowest,
    /// The first video and first audio stream
    First,
}

/// What plays each viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// One FFmpeg process per viewer (decoder-level realism, ~12 MB and ~0.1 % of a core each)
    Ffmpeg,
    /// A player task inside hls-swarm (no decoding; thousands per core)
    Native,
}

/// The request headers `--no-cache` adds, for every engine and the probe.
pub const NO_CACHE_HEADERS: [(&str, &str); 2] =
    [("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache")];

/// What every viewer's requests carry.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// Network timeout for each read or connect.
    pub timeout: Duration,
    /// Send no-cache headers.
    pub no_cache: bool,
    /// Extra headers, in order.
    pub headers: Vec<Header>,
    /// Base User-Agent (`… viewer/N` is appended).
    pub user_agent: String,
    /// Connect to this address instead of resolving the host.
    pub resolve: Option<IpAddr>,
    /// How https origins' certificates are checked (by the probe and the relay).
    pub trust: Trust,
    /// Let the probe and the relay connect to link-local and cloud metadata addresses.
    pub allow_link_local: bool,
    /// How much of a server's answers the probe and the relay read.
    pub limits: Limits,
}

/// One `Name: value` request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Field name as given.
    pub name: String,
    /// Field value, trimmed.
    pub value: String,
}
