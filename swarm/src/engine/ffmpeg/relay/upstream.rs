//! Where a viewer's requests go (`--resolve`), how long the relay waits, and what it adds
//! upstream; the connection itself is [`crate::engine::upstream`]'s.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::ffmpeg::relay::tls::Tls;
use crate::engine::limits::Limits;
use crate::engine::secrets::UpstreamSecrets;
use crate::engine::upstream::Dial;

/// Where requests go and how long the relay waits for the origin.
#[derive(Debug, Clone)]
pub struct Route {
    /// Connect here instead of resolving the URL's host (`--resolve`).
    pub resolve: Option<IpAddr>,
    /// Longest wait for the origin's next bytes (FFmpeg's own `-rw_timeout` plus a margin,
    /// so that the viewer, not the relay, decides when a request has failed).
    pub timeout: Duration,
    /// TLS for https. Without it the relay passes a viewer's `CONNECT` through blind.
    pub tls: Option<Tls>,
    /// Credentials, secret parameters and headers the relay adds (FFmpeg's argv has none).
    pub secrets: Arc<UpstreamSecrets>,
    /// Connect to link-local and cloud metadata addresses too (`--allow-link-local`).
    pub allow_link_local: bool,
    /// How much of the origin's answers is read.
    pub limits: Limits,
}

impl Route {
    /// How this route reaches the origin.
    pub(super) fn dial(&self) -> Dial {
        Dial {
            resolve: self.resolve,
            timeout: self.timeout,
            allow_link_local: self.allow_link_local,
            tls: self.tls.as_ref().map(Tls::connector),
        }
    }
}
