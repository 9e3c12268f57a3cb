//! A minimal blocking HTTP/1.0 client for the lab's own endpoints (exporters, the origin's
//! status listener, Prometheus's API), optionally from inside a network namespace.
//!
//! HTTP/1.0 with `Connection: close` keeps servers from answering chunked, so a response is
//! the bytes until the peer closes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Connect, send or receive failed.
    #[error("{method} http://{addr}{path}: {source}")]
    Io {
        method: &'static str,
        addr: SocketAddr,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The answer is not HTTP.
    #[error("{method} http://{addr}{path}: not an HTTP response")]
    Malformed { method: &'static str, addr: SocketAddr, path: String },
    /// The network namespace cannot be entered.
    #[error("cannot enter network namespace {netns}")]
    Netns {
        netns: String,
        #[source]
        source: std::io::Error,
    },
}

/// A response: status and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// Where requests are made from: this process's namespace, or a named one.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    pub netns: Option<String>,
}

impl Reach {
    /// From a named network namespace.
    pub fn netns(name: &str) -> Reach {
        Reach { netns: Some(name.to_owned()) }
    }

    /// `method path` on `addr` with a timeout for each step.
    ///
    /// # Errors
    /// Connection or protocol failure; an HTTP error status is a response, not an error.
    pub fn request(
        &self,
        method: &'static str,
        addr: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> Result<Response, Error> {
        match &self.netns {
            None => request(method, addr, path, timeout),
            Some(ns) => network::netns::in_netns(ns, || request(method, addr, path, timeout))
                .map_err(|source| Error::Netns { netns: ns.clone(), source })?,
        }
    }

    /// `GET`.
    ///
    /// # Errors
    /// As [`Reach::request`].
    pub fn get(&self, addr: SocketAddr, path: &str) -> Result<Response, Error> {
        self.request("GET", addr, path, Duration::from_secs(5))
    }
}

fn request(method: &'static str, addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, Error> {
    let io = |source| Error::Io { method, addr, path: path.to_owned(), source };
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: hls-testlab\r\nConnection: close\r\n\
         Content-Length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(io)?;
    let text = String::from_utf8_lossy(&raw);
    let malformed = || Error::Malformed { method, addr, path: path.to_owned() };
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(malformed)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .filter(|_| head.starts_with("HTTP/"))
        .ok_or_else(malformed)?;
    Ok(Response { status, body: body.to_owned() })
}

/// A free TCP port on 127.0.0.1 (the listener is closed again; the caller binds it soon).
///
/// # Errors
/// No port can be bound.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_status_and_body() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            s.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope").unwrap();
            req
        });
        let r = Reach::default().request("POST", addr, "/fault?x=1", Duration::from_secs(5)).unwrap();
        assert_eq!((r.status, r.body.as_str()), (404, "nope"));
        assert!(server.join().unwrap().starts_with("POST /fault?x=1 HTTP/1.0\r\n"));
    }
}
