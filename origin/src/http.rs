//! A minimal HTTP/1.1 GET client for loopback checks (readiness probes, tests).
//!
//! One request per connection (`Connection: close`); the body is read to the end and
//! de-chunked when needed. Not a general client: no TLS, no redirects.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
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
}

/// Why a GET failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Connecting, writing or reading failed.
    #[error("GET http://{addr}{path}")]
    Io {
        /// Server.
        addr: SocketAddr,
        /// Path requested.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No complete answer in time.
    #[error("GET http://{addr}{path} timed out after {timeout:?}")]
    Timeout {
        /// Server.
        addr: SocketAddr,
        /// Path requested.
        path: String,
        /// The limit.
        timeout: Duration,
    },
    /// The answer is not HTTP/1.x.
    #[error("GET http://{addr}{path}: malformed response")]
    Malformed {
        /// Server.
        addr: SocketAddr,
        /// Path requested.
        path: String,
    },
}

/// `GET path` from `addr` (method `GET`), bounded by `timeout`.
///
/// # Errors
/// [`FetchError`] on connection failure, timeout or a malformed response.
pub async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, FetchError> {
    request(addr, "GET", path, timeout).await
}

/// Any method without a body (`HEAD`, `OPTIONS`, `POST` with no body...).
///
/// # Errors
/// As [`get`].
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    timeout: Duration,
) -> Result<Response, FetchError> {
    let io = |source| FetchError::Io { addr, path: path.to_owned(), source };
    let work = async {
        let mut s = TcpStream::connect(addr).await.map_err(io)?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: hls-origin\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.map_err(io)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.map_err(io)?;
        parse(&raw, method == "HEAD").ok_or_else(|| FetchError::Malformed { addr, path: path.to_owned() })
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(FetchError::Timeout { addr, path: path.to_owned(), timeout }))
}

fn parse(raw: &[u8], head_only: bool) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    if !status_line.starts_with("HTTP/1.") {
        return None;
    }
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if head_only {
        body.clear();
    } else if chunked {
        body = dechunk(&body)?;
    }
    Some(Response { status, headers, body })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Length: 2\r\n\r\nhi", false).unwrap();
        assert_eq!((r.status, r.header("content-type"), r.text().as_str()), (200, Some("a/b"), "hi"));
        let c = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(c.text(), "abcde");
        assert!(parse(b"SSH-2.0\r\n\r\n", false).is_none());
    }
}
