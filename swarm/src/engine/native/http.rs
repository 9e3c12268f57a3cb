//! One native viewer's HTTP: a keep-alive connection per origin it talks to, opened through
//! [`Dial`] (so `--resolve`, the address policy and TLS are the relay's), and every exchange
//! measured: connect and TLS time when it opened the connection, time to first byte (response
//! head), time to last byte, body bytes, and the protocol. The connection speaks HTTP/1.1, or
//! with `--http2` HTTP/2 where the origin's TLS offers it (ALPN `h2`), as browsers and players
//! do; plain http stays HTTP/1.1. Segment bodies are counted, never kept; playlists are kept
//! up to the limit.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::engine::native::cmcd::Cmcd;
use crate::engine::secrets::Secrets;
use crate::engine::upstream::{Dial, Key};
use crate::measure::events::{Protocol, Request, RequestKind};
use kit::playlist::ByteRange;

/// How long a request cut by the stop may still take to get its response head.
const HEAD_DRAIN: Duration = Duration::from_millis(250);

/// Largest read buffer of a connection (hyper's smallest allowed is 8 KiB).
const READ_BUFFER: usize = 16 * 1024;

/// What one viewer's requests carry.
#[derive(Debug, Clone)]
pub struct Headers {
    /// Sent with every request (user agent, no-cache, `-H` headers), in order.
    pub all: Vec<(HeaderName, HeaderValue)>,
    /// `Authorization: Basic …` from the URL's user and password, sent to that URL's host
    /// and port only.
    pub basic: Option<((String, u16), HeaderValue)>,
}

/// A request's outcome: the measured exchange, and the body when it was kept.
#[derive(Debug)]
pub struct Fetched {
    /// The exchange as the stats see it.
    pub request: Request,
    /// The body (kept requests only, complete 2xx responses only).
    pub body: Option<Vec<u8>>,
    /// The body passed the limit it was read with: it was not read to its end.
    pub too_large: bool,
    /// The request reached the origin (false if the stop came before it was sent).
    pub sent: bool,
    /// Where a redirect (301, 302, 303, 307, 308) points, resolved against the request.
    pub location: Option<Url>,
}

/// What a request goes out on: an HTTP/1.1 or an HTTP/2 connection.
enum Sender {
    Http1(http1::SendRequest<Empty<Bytes>>),
    Http2(http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::Http1(s) => s.is_closed(),
            Sender::Http2(s) => s.is_closed(),
        }
    }

    async fn send(
        &mut self,
        request: hyper::Request<Empty<Bytes>>,
    ) -> hyper::Result<hyper::Response<Incoming>> {
        match self {
            Sender::Http1(s) => {
                s.ready().await?;
                s.send_request(request).await
            }
            Sender::Http2(s) => {
                s.ready().await?;
                s.send_request(request).await
            }
        }
    }

    /// The protocol it speaks.
    fn protocol(&self) -> Protocol {
        match self {
            Sender::Http1(_) => Protocol::Http1,
            Sender::Http2(_) => Protocol::Http2,
        }
    }
}

/// One viewer's connection and what its requests carry.
pub struct Client {
    dial: Dial,
    headers: std::sync::Arc<Headers>,
    secrets: std::sync::Arc<Secrets>,
    conn: Option<(Key, Sender)>,
    /// `--cmcd`: the session's data, added to every request.
    pub cmcd: Option<Cmcd>,
    /// `--http2`: speak HTTP/2 where the origin's TLS offers it.
    pub http2: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("dial", &self.dial).field("open", &self.conn.is_some()).finish()
    }
}

/// Why an exchange failed before a response, as a network error.
fn failed(mut r: Request, start: Instant, reason: String) -> Fetched {
    r.network_error = Some(reason);
    r.elapsed = start.elapsed();
    Fetched { request: r, body: None, too_large: false, sent: true, location: None }
}

impl Client {
    /// A client with no connection yet.
    #[must_use]
    pub fn new(dial: Dial, headers: std::sync::Arc<Headers>, secrets: std::sync::Arc<Secrets>) -> Client {
        Client { dial, headers, secrets, conn: None, cmcd: None, http2: false }
    }

    /// A client like this one (same dialling, headers, CMCD session and HTTP/2 offer): a
    /// player's second loader. It shares this one's HTTP/2 connection, as a browser multiplexes
    /// its requests to one origin; over HTTP/1.1 it opens a connection of its own.
    #[must_use]
    pub fn another(&self) -> Client {
        let shared = match &self.conn {
            Some((key, Sender::Http2(s))) => Some((key.clone(), Sender::Http2(s.clone()))),
            _ => None,
        };
        Client {
            dial: self.dial.clone(),
            headers: self.headers.clone(),
            secrets: self.secrets.clone(),
            conn: shared,
            cmcd: self.cmcd.clone(),
            http2: self.http2,
        }
    }

    /// GETs `url` (a `range` of it), measuring the exchange. With `keep`, the body is kept if
    /// it is at most that many bytes; without, it is counted and dropped. When `stop` fires
    /// the exchange ends where it is and is reported as far as it got, without an error.
    pub async fn get(
        &mut self,
        url: &Url,
        kind: RequestKind,
        range: Option<ByteRange>,
        keep: Option<usize>,
        stop: &CancellationToken,
    ) -> Fetched {
        let start = Instant::now();
        // Measured from here on: what is not filled in did not happen.
        let mut r = Request { measured: true, ..Request::inferred(kind, self.secrets.url(url), None) };
        let Some(key) = Key::of(url) else {
            return failed(
                r,
                start,
                format!("scheme '{}' is not http or https: not requested", url.scheme()),
            );
        };
        let timeout = self.dial.timeout;
        // Taken while in use; put back only once an exchange completed on a connection to
        // keep (any other ending drops it, and the next request opens a new one).
        let mut sender = match self.conn.take() {
            Some((k, s)) if k == key && !s.is_closed() => s,
            _ => {
                let opened = tokio::select! {
                    o = self.dial.open(&key) => o,
                    () = stop.cancelled() => return Fetched { sent: false, ..done(r, start) },
                };
                let opened = match opened {
                    Ok(o) => o,
                    Err(e) => return failed(r, start, self.secrets.text(&e.to_string()).into_owned()),
                };
                r.connect = Some(opened.connect);
                r.tls = opened.tls;
                let io = TokioIo::new(opened.conn);
                if self.http2 && io.inner().alpn_h2() {
                    // The window grows with the measured bandwidth-delay product, as browsers'
                    // large windows let a segment arrive at the link's pace.
                    let handshake =
                        http2::Builder::new(TokioExecutor::new()).adaptive_window(true).handshake(io);
                    let (sender, connection) = match handshake.await {
                        Ok(pair) => pair,
                        Err(e) => return failed(r, start, format!("HTTP/2 set-up failed: {e}")),
                    };
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    Sender::Http2(sender)
                } else {
                    // A small read buffer: hyper's grows to ~400 KB on large bodies, and a
                    // viewer holds its connection for the whole run (thousands per process).
                    let handshake = http1::Builder::new().max_buf_size(READ_BUFFER).handshake(io);
                    let (sender, connection) = match handshake.await {
                        Ok(pair) => pair,
                        Err(e) => return failed(r, start, format!("HTTP/1.1 set-up failed: {e}")),
                    };
                    // Serves the connection until the sender is dropped or the origin closes it.
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    Sender::Http1(sender)
                }
            }
        };
        r.protocol = Some(sender.protocol());
        let request = match self.request(url, &key, range, kind, matches!(sender, Sender::Http2(_))) {
            Ok(req) => req,
            Err(e) => return failed(r, start, e),
        };
        // A connection the origin closed while idle fails here: that is a network error on
        // this request, as it would be for a player.
        let sent = {
            let exchange = tokio::time::timeout(timeout, sender.send(request));
            tokio::pin!(exchange);
            tokio::select! {
                s = &mut exchange => s,
                () = stop.cancelled() => {
                    // hyper drops a queued request whose caller is gone, maybe before writing
                    // it: wait briefly for the head, so what is reported is what the origin saw.
                    if let Ok(Ok(Ok(resp))) = tokio::time::timeout(HEAD_DRAIN, &mut exchange).await {
                        r.ttfb = Some(start.elapsed());
                        r.status = Some(resp.status().as_u16());
                    }
                    return done(r, start);
                }
            }
        };
        let response = match sent {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                return failed(r, start, describe(&e));
            }
            Err(_) => {
                return failed(
                    r,
                    start,
                    format!("no response within {}", humantime::format_duration(timeout)),
                );
            }
        };
        r.ttfb = Some(start.elapsed());
        let status = response.status().as_u16();
        r.status = Some(status);
        let closing = response
            .headers()
            .get(hyper::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let location = matches!(status, 301 | 302 | 303 | 307 | 308)
            .then(|| response.headers().get(hyper::header::LOCATION))
            .flatten()
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url.join(l).ok());
        let mut body = response.into_body();
        let keep = keep.filter(|_| (200..300).contains(&status));
        let mut kept: Option<Vec<u8>> = keep.map(|_| Vec::new());
        loop {
            let frame = tokio::select! {
                f = tokio::time::timeout(timeout, body.frame()) => f,
                () = stop.cancelled() => {
                    return done(r, start);
                }
            };
            match frame {
                Ok(None) => break,
                Ok(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else { continue };
                    r.bytes += data.len() as u64;
                    if let (Some(buf), Some(limit)) = (kept.as_mut(), keep) {
                        if buf.len() + data.len() > limit {
                            // Not read further: the connection goes with the rest of the body.
                            return Fetched { too_large: true, ..done(r, start) };
                        }
                        buf.extend_from_slice(&data);
                    }
                }
                Ok(Some(Err(e))) => {
                    return failed(r, start, describe(&e));
                }
                Err(_) => {
                    let after = humantime::format_duration(timeout);
                    return failed(r, start, format!("body stalled for {after}"));
                }
            }
        }
        r.ttlb = Some(start.elapsed());
        r.elapsed = start.elapsed();
        if !closing {
            self.conn = Some((key, sender));
        }
        Fetched { request: r, body: kept, too_large: false, sent: true, location }
    }

    /// The request for `url` on the connection to `key`: HTTP/1.1 with a `Host` header, HTTP/2
    /// (`h2`) with the scheme and authority in the URI, as its pseudo-headers carry them.
    fn request(
        &self,
        url: &Url,
        key: &Key,
        range: Option<ByteRange>,
        kind: RequestKind,
        h2: bool,
    ) -> Result<hyper::Request<Empty<Bytes>>, String> {
        let host = match url.port() {
            Some(p) => format!("{}:{p}", key.host),
            None => key.host.clone(),
        };
        let mut target = if h2 { format!("{}://{host}", url.scheme()) } else { String::new() };
        target.push_str(url.path());
        let cmcd = self.cmcd.as_ref().and_then(|c| c.query(kind));
        for (i, q) in url.query().into_iter().chain(cmcd.as_deref()).enumerate() {
            target.push(if i == 0 { '?' } else { '&' });
            target.push_str(q);
        }
        let mut b = hyper::Request::get(target);
        if !h2 {
            b = b.header(hyper::header::HOST, host);
        }
        for (name, value) in &self.headers.all {
            b = b.header(name, value);
        }
        if let Some(((host, port), value)) = &self.headers.basic {
            if *host == key.host && *port == key.port {
                b = b.header(hyper::header::AUTHORIZATION, value);
            }
        }
        for (name, value) in self.cmcd.iter().flat_map(|c| c.headers(kind)) {
            b = b.header(name, value);
        }
        if let Some(r) = range {
            let from = r.offset.unwrap_or(0);
            let to = from + r.length.saturating_sub(1);
            b = b.header(hyper::header::RANGE, format!("bytes={from}-{to}"));
        }
        b.body(Empty::new()).map_err(|e| format!("cannot build the request: {e}"))
    }
}

/// An exchange the run's stop cut short: reported as far as it got, not as an error.
fn done(mut r: Request, start: Instant) -> Fetched {
    r.elapsed = start.elapsed();
    Fetched { request: r, body: None, too_large: false, sent: true, location: None }
}

/// The most useful words of a hyper error (its innermost cause).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    text
}
