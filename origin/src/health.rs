//! hls-origin's own status endpoint: `GET /health` answers JSON with every child's state.
//!
//! It listens on a loopback port of its own; nginx proxies `/health` on the HLS port to it, so
//! a viewer-facing probe sees both nginx and the supervisor. Status 200 when the origin is
//! ready and every child is running, 503 otherwise.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::supervisor::{Board, ChildStatus, State};
use crate::Error;

/// What `/health` reports besides the children.
#[derive(Debug)]
pub struct Facts {
    /// Unique to this origin (pid and a random number): lets readiness tell our nginx from
    /// another server that answers on the same port.
    pub instance: String,
    /// Profile name.
    pub profile: String,
    /// `encode` or `replay`.
    pub source: &'static str,
    /// The entry playlist's URL.
    pub playlist_url: String,
    /// Set once the playlist has enough segments.
    pub ready: AtomicBool,
    /// The children.
    pub board: Board,
}

#[derive(Serialize)]
struct Report<'a> {
    status: &'static str,
    ready: bool,
    instance: &'a str,
    profile: &'a str,
    source: &'a str,
    playlist_url: &'a str,
    children: std::collections::BTreeMap<String, ChildStatus>,
}

impl Facts {
    /// The JSON body and whether everything is healthy.
    #[must_use]
    pub fn report(&self) -> (bool, String) {
        let children = self.board.snapshot();
        let ready = self.ready.load(Ordering::Acquire);
        let all_up = children.values().all(|c| matches!(c.state, State::Running | State::Task));
        let ok = ready && all_up;
        let report = Report {
            status: if ok {
                "ok"
            } else if ready {
                "degraded"
            } else {
                "starting"
            },
            ready,
            instance: &self.instance,
            profile: &self.profile,
            source: self.source,
            playlist_url: &self.playlist_url,
            children,
        };
        (ok, serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")))
    }
}

/// Binds `addr` and serves `/health` until the task is aborted.
///
/// # Errors
/// [`Error::Bind`] if the address is taken.
pub async fn serve(addr: SocketAddr, facts: Arc<Facts>) -> Result<(SocketAddr, JoinHandle<()>), Error> {
    let listener = TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| Error::Bind { addr, source })?;
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let facts = facts.clone();
                    tokio::spawn(async move {
                        let _ = answer(stream, &facts).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "status listener accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok((local, task))
}

async fn answer(mut stream: TcpStream, facts: &Facts) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read_head = async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), read_head)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let line = String::from_utf8_lossy(&buf);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET" | "HEAD", "/health") => {
            let (ok, json) = facts.report();
            (if ok { "200 OK" } else { "503 Service Unavailable" }, json)
        }
        ("GET" | "HEAD", _) => ("404 Not Found", "{\"error\":\"not found\"}".to_owned()),
        _ => ("405 Method Not Allowed", "{\"error\":\"method not allowed\"}".to_owned()),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len() + 1
    );
    if method != "HEAD" {
        out.push_str(&body);
        out.push('\n');
    }
    stream.write_all(out.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn reports_children_as_json() {
        let board = Board::default();
        board.set(
            "ffmpeg",
            ChildStatus {
                state: State::Running,
                pid: Some(42),
                restarts: 1,
                last_exit: None,
                since_unix: 0,
                log: None,
            },
        );
        let facts = Arc::new(Facts {
            instance: "1-x".into(),
            profile: "default".into(),
            source: "encode",
            playlist_url: "http://x/stream.m3u8".into(),
            ready: AtomicBool::new(false),
            board,
        });
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), facts.clone()).await.unwrap();
        let r = crate::http::get(addr, "/health", Duration::from_secs(2)).await.unwrap();
        assert_eq!(r.status, 503);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["status"], "starting");
        assert_eq!(v["instance"], "1-x");
        assert_eq!(v["children"]["ffmpeg"]["pid"], 42);
        assert_eq!(v["children"]["ffmpeg"]["state"], "running");
        facts.ready.store(true, Ordering::Release);
        let r = crate::http::get(addr, "/health", Duration::from_secs(2)).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let missing = crate::http::get(addr, "/nope", Duration::from_secs(2)).await.unwrap();
        assert_eq!(missing.status, 404);
        task.abort();
    }
}
