//! A blocking HTTP/1.1 client for the lab's own plain-HTTP endpoints: the origin's playlists,
//! health and fault listener, the exporters, Prometheus's API, a VM's ports.
//!
//! Built on `ureq` (no TLS, no proxy from the environment, no redirects, no status treated as
//! an error): one request, bounded in time as a whole and in body size, on the calling thread —
//! so a caller that entered a network namespace on its thread reaches addresses inside it.
//! Async callers run it on a blocking thread.

use std::net::SocketAddr;
use std::time::Duration;

/// Largest body read: playlists, health pages and metrics pages are far smaller.
pub const MAX_BODY: u64 = 16 << 20;

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty for `HEAD`).
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A 200 whose body is an HLS playlist.
    #[must_use]
    pub fn is_playlist(&self) -> bool {
        self.status == 200 && self.body.starts_with(b"#EXTM3U")
    }
}

/// A request that got no complete answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No complete answer within the time allowed.
    #[error("{method} http://{addr}{path} timed out after {timeout:?}")]
    Timeout {
        /// Method.
        method: String,
        /// Server.
        addr: SocketAddr,
        /// Path requested.
        path: String,
        /// The limit.
        timeout: Duration,
    },
    /// Connecting, writing or reading failed (refused, reset, …).
    #[error("{method} http://{addr}{path}: {source}")]
    Io {
        /// Method.
        method: String,
        /// Server.
        addr: SocketAddr,
        /// Path requested.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The answer is not HTTP/1.x, or is larger than [`MAX_BODY`].
    #[error("{method} http://{addr}{path}: {detail}")]
    Protocol {
        /// Method.
        method: String,
        /// Server.
        addr: SocketAddr,
        /// Path requested.
        path: String,
        /// What was wrong.
        detail: String,
    },
}

/// `GET path` from `addr`, all of it within `timeout`.
///
/// # Errors
/// [`Error`] when no complete answer came.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, Error> {
    request("GET", addr, path, timeout)
}

/// `method path` without a body (`POST`, `DELETE`, `HEAD`, `OPTIONS`, …), all of it within
/// `timeout`.
///
/// # Errors
/// [`Error`] when no complete answer came.
pub fn request(method: &str, addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, Error> {
    let fail = |e: ureq::Error| match e {
        ureq::Error::Timeout(_) => {
            Error::Timeout { method: method.to_owned(), addr, path: path.to_owned(), timeout }
        }
        ureq::Error::Io(source) => {
            Error::Io { method: method.to_owned(), addr, path: path.to_owned(), source }
        }
        ureq::Error::ConnectionFailed => Error::Io {
            method: method.to_owned(),
            addr,
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection failed"),
        },
        other => Error::Protocol {
            method: method.to_owned(),
            addr,
            path: path.to_owned(),
            detail: other.to_string(),
        },
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .user_agent("hls-lab")
        .build()
        .into();
    let req =
        ureq::http::Request::builder().method(method).uri(format!("http://{addr}{path}")).body(()).map_err(
            |e| Error::Protocol {
                method: method.to_owned(),
                addr,
                path: path.to_owned(),
                detail: e.to_string(),
            },
        )?;
    let mut resp = agent.run(req).map_err(fail)?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = if method.eq_ignore_ascii_case("HEAD") {
        Vec::new()
    } else {
        resp.body_mut().with_config().limit(MAX_BODY).read_to_vec().map_err(fail)?
    };
    Ok(Response { status, headers, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// Serves one connection with `answer`; returns what the client sent.
    fn serve_once(answer: &'static [u8]) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "request ended early: {req:?}");
                req.extend_from_slice(&buf[..n]);
            }
            s.write_all(answer).unwrap();
            String::from_utf8(req).unwrap()
        });
        (addr, server)
    }

    #[test]
    fn plain_and_chunked_bodies_headers_and_methods() {
        let (addr, server) =
            serve_once(b"HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Length: 8\r\n\r\n#EXTM3U\n");
        let r = get(addr, "/stream.m3u8", Duration::from_secs(30)).unwrap();
        assert_eq!((r.status, r.header("Content-Type"), r.text().as_str()), (200, Some("a/b"), "#EXTM3U\n"));
        assert!(r.is_playlist());
        let sent = server.join().unwrap();
        assert!(sent.starts_with("GET /stream.m3u8 HTTP/1.1\r\n"), "{sent}");
        assert!(sent.contains("user-agent: hls-lab") || sent.contains("User-Agent: hls-lab"), "{sent}");

        let (addr, server) = serve_once(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        );
        let r = request("POST", addr, "/hold?seconds=2", Duration::from_secs(30)).unwrap();
        assert_eq!((r.status, r.text().as_str()), (404, "abcde"), "statuses are answers, not errors");
        assert!(!r.is_playlist());
        assert!(server.join().unwrap().starts_with("POST /hold?seconds=2 HTTP/1.1\r\n"));
    }

    #[test]
    fn refused_silent_and_garbage_servers_are_errors_naming_the_request() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::time::Instant::now();
        // Accepted by the kernel's backlog but never answered.
        let e = get(addr, "/x", Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert_eq!(e.to_string(), format!("GET http://{addr}/x timed out after 300ms"));
        // A generous bound that only a missing timeout breaks.
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        drop(l);
        let e = get(addr, "/x", Duration::from_secs(30)).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        assert!(e.to_string().starts_with(&format!("GET http://{addr}/x: ")), "{e}");

        let (addr, server) = serve_once(b"SSH-2.0-OpenSSH\r\n\r\n");
        let e = get(addr, "/", Duration::from_secs(30)).unwrap_err();
        assert!(matches!(e, Error::Protocol { .. } | Error::Io { .. }), "{e}");
        server.join().unwrap();
    }
}
