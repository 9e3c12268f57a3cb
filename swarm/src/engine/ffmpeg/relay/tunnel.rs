//! Blind `CONNECT` tunnels: what the relay cannot read (not TLS, or a relay without TLS) is
//! passed through, and a tunnel reports its connect time, bytes each way and lifetime only.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::engine::ffmpeg::relay::upstream::Route;
use crate::engine::upstream::Key;
use crate::measure::events::{EventKind, EventSink, Tunnel, ViewerId};

/// Answers the viewer itself (the relay's own errors), closing the connection.
pub(super) async fn respond<S: AsyncWrite + Unpin>(
    client: &mut S,
    status: u16,
    text: &str,
) -> io::Result<()> {
    let reason = match status {
        400 => "Bad Request",
        501 => "Not Implemented",
        _ => "Bad Gateway",
    };
    let msg = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}\n",
        text.len() + 1
    );
    client.write_all(msg.as_bytes()).await
}

/// `CONNECT host:port` of `viewer`, passed through blind (not TLS, or no TLS in this relay).
/// Only sizes and times are known. `early`: bytes the viewer sent after its `CONNECT` head.
pub(super) async fn tunnel(
    client: &mut TcpStream,
    early: &[u8],
    answered: bool,
    target: &str,
    received: Instant,
    (viewer, sink, route): (ViewerId, &EventSink, &Route),
) {
    let mut report = Tunnel {
        target: target.to_owned(),
        connect: None,
        bytes_up: 0,
        bytes_down: 0,
        open_for: Duration::ZERO,
        error: None,
    };
    let key = target
        .rsplit_once(':')
        .and_then(|(host, p)| Some(Key { https: false, host: host.to_owned(), port: p.parse().ok()? }))
        .unwrap_or_else(|| Key { https: false, host: target.to_owned(), port: 443 });
    match route.dial().tcp(&key).await {
        Err(e) => {
            report.error = Some(format!("connect to {target}: {e}"));
            if !answered {
                let _ = respond(client, 502, &format!("hls-swarm relay: cannot connect: {e}")).await;
            }
        }
        Ok(mut upstream) => {
            report.connect = Some(received.elapsed());
            let ok = (answered
                || client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_ok())
                && upstream.write_all(early).await.is_ok();
            if ok {
                report.bytes_up = early.len() as u64;
                if let Ok((up, down)) = tokio::io::copy_bidirectional(client, &mut upstream).await {
                    report.bytes_up += up;
                    report.bytes_down = down;
                }
            }
        }
    }
    report.open_for = received.elapsed();
    sink.send(viewer, EventKind::Tunnel(report));
}
