//! The observing relay: how FFmpeg viewers get exact numbers.
//!
//! FFmpeg's log shows when a request starts, never when it ends or how big it was. So every
//! viewer runs with `-http_proxy http://127.0.0.1:PORT` pointing at its own relay listener
//! (the HLS demuxer passes the proxy to every playlist and segment request, which then
//! arrive in absolute form, `GET http://host/seg.ts HTTP/1.1`). The relay forwards each
//! request and records what the viewer experienced: status, body bytes, time to first byte,
//! time to last byte, and the kind of object (it reads every playlist that passes, so it
//! knows which URLs are segments, with their media durations, init sections and keys).
//!
//! It is deliberately not a pooling proxy: each viewer connection gets its own upstream
//! connection, kept alive exactly as long as the viewer keeps its own, so the origin sees
//! the connections and keep-alive behaviour real players produce. One listener per viewer
//! attributes every byte to its viewer without parsing anything. `--resolve` is applied
//! here (the viewer keeps the real host name in its URL and `Host` header).
//!
//! `https` arrives as `CONNECT` tunnels. With [`Tls`] the relay ends the viewer's TLS itself and
//! measures the requests inside exactly as it measures http, over its own TLS connection to the
//! origin (see `tls`). Without it, or if what comes through the tunnel is not TLS, the tunnel is
//! passed through blind and reported as a tunnel only (connect time, bytes each way, lifetime).

mod buffers;
mod catalog;
mod chunked;
mod exchange;
mod tls;
mod tunnel;
mod upstream;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::engine::ffmpeg::relay::exchange::{connection, Ctx};
use crate::measure::events::{EventSink, ViewerId};

pub use crate::engine::ffmpeg::relay::tls::Tls;
pub use crate::engine::ffmpeg::relay::upstream::Route;

/// How long open connections get to finish after the relay is asked to close.
pub const DRAIN: Duration = Duration::from_secs(2);

/// A bound relay listener, before it serves.
#[derive(Debug)]
pub struct Relay {
    listener: TcpListener,
    addr: SocketAddr,
}

/// A serving relay.
#[derive(Debug)]
pub struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Binds a listener on a free loopback port.
    ///
    /// # Errors
    /// The bind error (for example, out of file descriptors or ports).
    pub async fn bind() -> io::Result<Relay> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        Ok(Relay { listener, addr })
    }

    /// The value for FFmpeg's `-http_proxy`.
    #[must_use]
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `viewer`'s connections until [`Running::close`]. Every exchange is reported to
    /// `sink`.
    #[must_use]
    pub fn serve(self, viewer: ViewerId, sink: EventSink, route: Route) -> Running {
        let stop = CancellationToken::new();
        let ctx = Arc::new(Ctx { viewer, sink, route, catalog: Mutex::default() });
        let task = tokio::spawn(accept_loop(self.listener, ctx, stop.clone()));
        Running { stop, task }
    }
}

impl Running {
    /// Stops accepting, gives open connections [`DRAIN`] to finish (their viewer is gone by
    /// now, so they end at once), then cuts the rest.
    pub async fn close(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>, stop: CancellationToken) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((sock, _)) => {
                    let _ = sock.set_nodelay(true);
                    conns.spawn(connection(sock, Arc::clone(&ctx)));
                }
                // Out of descriptors and the like: the viewer's request fails and FFmpeg
                // retries; do not spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            () = stop.cancelled() => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests;
