//! Requests to the lab's own endpoints (exporters, the origin's status listener, Prometheus's
//! API) from this process's network namespace or a named one: [`kit::http`] on a thread that
//! entered the namespace.

use std::net::SocketAddr;
use std::time::Duration;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No complete answer (refused, timed out, not HTTP).
    #[error(transparent)]
    Http(#[from] kit::http::Error),
    /// The network namespace cannot be entered.
    #[error("cannot enter network namespace {netns}")]
    Netns {
        netns: String,
        #[source]
        source: std::io::Error,
    },
}

/// A response: status and body as text.
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

    /// `method path` on `addr`, all of it within `timeout`.
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
        let send = || {
            kit::http::request(method, addr, path, timeout)
                .map(|r| Response { status: r.status, body: r.text() })
                .map_err(Error::from)
        };
        match &self.netns {
            None => send(),
            Some(ns) => network::netns::in_netns(ns, send)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

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
        let r = Reach::default().request("POST", addr, "/fault?x=1", Duration::from_secs(30)).unwrap();
        assert_eq!((r.status, r.body.as_str()), (404, "nope"));
        assert!(server.join().unwrap().starts_with("POST /fault?x=1 HTTP/1.1\r\n"));
    }
}
