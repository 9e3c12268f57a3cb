//! The connection to the origin, as every engine opens it: `--resolve`, the address policy,
//! a timeout on each step, TCP connect and TLS handshake timed apart. The relay opens one per
//! viewer connection; the native player one per viewer.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{lookup_host, TcpStream};
use tokio_rustls::{client, TlsConnector};

use crate::engine::policy;

/// How to reach the origin.
#[derive(Clone)]
pub struct Dial {
    /// Connect here instead of resolving the URL's host (`--resolve`).
    pub resolve: Option<IpAddr>,
    /// Longest wait for each step (resolve and connect, TLS handshake).
    pub timeout: Duration,
    /// Connect to link-local and cloud metadata addresses too (`--allow-link-local`).
    pub allow_link_local: bool,
    /// TLS for https, checking the origin's certificate; without it https cannot be opened.
    pub tls: Option<TlsConnector>,
}

impl std::fmt::Debug for Dial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dial")
            .field("resolve", &self.resolve)
            .field("timeout", &self.timeout)
            .field("allow_link_local", &self.allow_link_local)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Which origin connection serves a request: https or not, host, port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// TLS.
    pub https: bool,
    /// Host name or address (IPv6 in brackets, as in URLs).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Key {
    /// The connection a URL needs; `None` for schemes other than http and https.
    #[must_use]
    pub fn of(url: &url::Url) -> Option<Key> {
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return None,
        };
        Some(Key { https, host: url.host_str()?.to_owned(), port: url.port_or_known_default()? })
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// An open origin connection and what opening it took.
#[derive(Debug)]
pub struct Opened {
    /// The connection.
    pub conn: Conn,
    /// TCP connect time.
    pub connect: Duration,
    /// TLS handshake time (https only).
    pub tls: Option<Duration>,
}

/// Why an origin connection could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Resolving or connecting failed, or the policy refused every address.
    Connect(io::Error),
    /// The TLS handshake failed (an untrusted certificate among others).
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

impl Dial {
    /// Opens a TCP connection to `key`, bounded by the timeout. Addresses the policy refuses
    /// are skipped; if every address is refused, so is the connection (nothing is sent).
    ///
    /// # Errors
    /// Resolving or connecting failed, or every address was refused.
    pub async fn tcp(&self, key: &Key) -> io::Result<TcpStream> {
        let fut = async {
            let addrs: Vec<SocketAddr> = match self.resolve {
                Some(ip) => vec![SocketAddr::new(ip, key.port)],
                None => lookup_host((key.host.trim_start_matches('[').trim_end_matches(']'), key.port))
                    .await?
                    .collect(),
            };
            let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
            for addr in addrs {
                if let Some(why) = policy::refused(addr.ip()).filter(|_| !self.allow_link_local) {
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
        let stream = tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "timed out"))??;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Opens the origin connection for `key`: TCP, then for https the TLS handshake, each
    /// bounded by the timeout and timed.
    ///
    /// # Errors
    /// See [`OpenError`].
    pub async fn open(&self, key: &Key) -> Result<Opened, OpenError> {
        let t = Instant::now();
        let sock = self.tcp(key).await.map_err(OpenError::Connect)?;
        let connect = t.elapsed();
        if !key.https {
            return Ok(Opened { conn: Conn::Plain(sock), connect, tls: None });
        }
        let Some(tls) = &self.tls else {
            let e = io::Error::new(io::ErrorKind::Unsupported, "no TLS set up for https");
            return Err(OpenError::Tls(e));
        };
        let t = Instant::now();
        let name = ServerName::try_from(key.host.trim_start_matches('[').trim_end_matches(']').to_owned())
            .map_err(|e| {
                OpenError::Tls(io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {e}", key.host)))
            })?;
        let stream = tokio::time::timeout(self.timeout, tls.connect(name, sock))
            .await
            .map_err(|_| OpenError::Tls(io::Error::new(io::ErrorKind::TimedOut, "timed out")))?
            .map_err(OpenError::Tls)?;
        Ok(Opened { conn: Conn::Tls(Box::new(stream)), connect, tls: Some(t.elapsed()) })
    }
}

/// A connection to the origin, plain or TLS.
#[derive(Debug)]
pub enum Conn {
    /// http.
    Plain(TcpStream),
    /// https.
    Tls(Box<client::TlsStream<TcpStream>>),
}

impl Conn {
    /// True if the origin's TLS agreed on HTTP/2 (ALPN `h2`).
    #[must_use]
    pub fn alpn_h2(&self) -> bool {
        match self {
            Conn::Plain(_) => false,
            Conn::Tls(s) => s.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
