//! The origin side: where a viewer's requests go (`--resolve`) and how long the relay waits.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use tokio::net::TcpStream;

/// Where requests go and how long the relay waits for the origin.
#[derive(Debug, Clone)]
pub struct Route {
    /// Connect here instead of resolving the URL's host (`--resolve`).
    pub resolve: Option<IpAddr>,
    /// Longest wait for the origin's next bytes (FFmpeg's own `-rw_timeout` plus a margin,
    /// so that the viewer, not the relay, decides when a request has failed).
    pub timeout: Duration,
}

/// Opens a connection to the origin of `key` (host, port), bounded by the route's timeout.
pub(super) async fn connect(key: &(String, u16), route: &Route) -> io::Result<TcpStream> {
    let fut = async {
        match route.resolve {
            Some(ip) => TcpStream::connect((ip, key.1)).await,
            None => TcpStream::connect((key.0.trim_start_matches('[').trim_end_matches(']'), key.1)).await,
        }
    };
    let stream = tokio::time::timeout(route.timeout, fut)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "timed out"))??;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
