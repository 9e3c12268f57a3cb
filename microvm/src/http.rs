//! The few HTTP checks the launcher makes (playlist, exporters): one blocking `GET` with
//! `Connection: close`, bounded in time and size, from a namespace when asked (see
//! [`crate::netns::run_in`]). A full client would add a TLS stack and a runtime for three
//! plain-text requests on a private network.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Largest body read (playlists and metrics pages are far smaller).
const MAX_BODY: usize = 4 << 20;

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body (up to 4 MiB).
    pub body: String,
}

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Connect, write or read failed or timed out.
    #[error("GET http://{addr}{path}: {source}")]
    Io {
        /// Server.
        addr: SocketAddr,
        /// Path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not an HTTP response.
    #[error("GET http://{addr}{path}: malformed response")]
    Malformed {
        /// Server.
        addr: SocketAddr,
        /// Path.
        path: String,
    },
    /// The namespace could not be entered.
    #[error(transparent)]
    Netns(#[from] crate::netns::Error),
}

/// `GET http://addr/path` within `timeout` in total.
///
/// # Errors
/// [`Error::Io`] or [`Error::Malformed`].
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, Error> {
    let deadline = Instant::now() + timeout;
    let io = |source| Error::Io { addr, path: path.to_owned(), source };
    let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let mut s = TcpStream::connect_timeout(&addr, left()).map_err(io)?;
    s.set_write_timeout(Some(left())).map_err(io)?;
    // One write: `write!` on a socket would send each formatted piece as its own segment.
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: hls-lab\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).map_err(io)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    loop {
        s.set_read_timeout(Some(left())).map_err(io)?;
        let n = s.read(&mut chunk).map_err(io)?;
        if n == 0 || buf.len() > MAX_BODY {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    parse(&buf).ok_or(Error::Malformed { addr, path: path.to_owned() })
}

/// [`get`] from inside network namespace `netns` (or ours), on its own thread.
///
/// # Errors
/// See [`get`]; also namespace errors.
pub async fn get_in(
    netns: Option<&str>,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<Response, Error> {
    let path = path.to_owned();
    crate::netns::run_in_async(netns, move || get(addr, &path, timeout)).await?
}

fn parse(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let status_line = head.lines().next()?;
    let mut parts = status_line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.to_ascii_lowercase().contains("chunked")
    });
    let body = &raw[end + 4..];
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    Some(Response { status, body: String::from_utf8_lossy(&body).into_owned() })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size_hex = std::str::from_utf8(&b[..line_end]).ok()?.split(';').next()?.trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// Whether a response is a served HLS playlist.
#[must_use]
pub fn is_playlist(r: &Response) -> bool {
    r.status == 200 && r.body.starts_with("#EXTM3U")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_plain_and_chunked() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n#EXTM3U\n").unwrap();
        assert_eq!(r.status, 200);
        assert!(is_playlist(&r));
        let r =
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnode\r\n3\r\n_up\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!(r.body, "node_up");
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_none());
        assert!(!is_playlist(&parse(b"HTTP/1.1 404 Not Found\r\n\r\n#EXTM3U").unwrap()));
    }

    #[test]
    fn get_against_a_local_server() {
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
            assert!(std::str::from_utf8(&req).unwrap().starts_with("GET /stream.m3u8 HTTP/1.1\r\n"));
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n#EXTM3U\n").unwrap();
        });
        let r = get(addr, "/stream.m3u8", Duration::from_secs(5)).unwrap();
        assert!(is_playlist(&r));
        server.join().unwrap();
    }

    #[test]
    fn refused_and_silent_servers_fail_in_time() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = Instant::now();
        // Accepted by the kernel's backlog but never answered.
        let e = get(addr, "/x", Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        // A generous bound (the timeout is 300 ms) that only a missing timeout breaks.
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        drop(l);
        assert!(get(addr, "/x", Duration::from_secs(1)).is_err());
    }
}
