//! The origin side: where a viewer's requests go (`--resolve`), how long the relay waits, and
//! the connection itself (plain, or TLS for https).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::{lookup_host, TcpStream};

use crate::engine::limits::Limits;
use crate::engine::policy;

use crate::engine::secrets::UpstreamSecrets;
use std::sync::Arc;

use crate::engine::ffmpeg::relay::tls::{Conn, Tls};

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

/// Which origin connection serves a request: https or not, host, port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Key {
    pub(super) https: bool,
    pub(super) host: String,
    pub(super) port: u16,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// An open origin connection and what opening it took.
#[derive(Debug)]
pub(super) struct Opened {
    pub(super) conn: Conn,
    /// TCP connect time.
    pub(super) connect: Duration,
    /// TLS handshake time (https only).
    pub(super) tls: Option<Duration>,
}

/// Why an origin connection could not be opened.
#[derive(Debug)]
pub(super) enum OpenError {
    Connect(io::Error),
    Tls(io::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Connect(e) => write!(f, "cannot connect: {e}"),
            OpenError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
        }
    }
}

/// Opens a TCP connection to `key`, bounded by the route's timeout. Addresses the policy
/// refuses are skipped; if every address is refused, so is the connection (nothing is sent).
pub(super) async fn tcp(key: &Key, route: &Route) -> io::Result<TcpStream> {
    let fut = async {
        let addrs: Vec<SocketAddr> = match route.resolve {
            Some(ip) => vec![SocketAddr::new(ip, key.port)],
            None => lookup_host((key.host.trim_start_matches('[').trim_end_matches(']'), key.port))
                .await?
                .collect(),
        };
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
        for addr in addrs {
            if let Some(why) = policy::refused(addr.ip()).filter(|_| !route.allow_link_local) {
                last = io::Error::new(io::ErrorKind::PermissionDenied, policy::message(addr, why));
                continue;
            }
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    };
    let stream = tokio::time::timeout(route.timeout, fut)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "timed out"))??;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Opens the origin connection for `key`: TCP, then for https the TLS handshake, each
/// bounded by the route's timeout and timed.
pub(super) async fn open(key: &Key, route: &Route) -> Result<Opened, OpenError> {
    let t = Instant::now();
    let sock = tcp(key, route).await.map_err(OpenError::Connect)?;
    let connect = t.elapsed();
    if !key.https {
        return Ok(Opened { conn: Conn::Plain(sock), connect, tls: None });
    }
    let Some(tls) = &route.tls else {
        let e = io::Error::new(io::ErrorKind::Unsupported, "this relay has no TLS");
        return Err(OpenError::Tls(e));
    };
    let t = Instant::now();
    let conn = tokio::time::timeout(route.timeout, tls.connect(&key.host, sock))
        .await
        .map_err(|_| OpenError::Tls(io::Error::new(io::ErrorKind::TimedOut, "timed out")))?
        .map_err(OpenError::Tls)?;
    Ok(Opened { conn, connect, tls: Some(t.elapsed()) })
}
