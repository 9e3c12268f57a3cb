//! One viewer connection: requests read one after another, each forwarded to the origin on
//! the connection's own upstream connection and measured (status, body bytes, time to first
//! and last byte, kind). A `CONNECT` carrying TLS ends here too: its requests are read inside
//! and forwarded over TLS in the same way.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

use crate::engine::ffmpeg::relay::buffers::{Buffer, POOL};
use crate::engine::ffmpeg::relay::catalog::Catalog;
use crate::engine::ffmpeg::relay::chunked::{dechunk, Chunks};
use crate::engine::ffmpeg::relay::tunnel::{respond, tunnel};
use crate::engine::ffmpeg::relay::upstream::Route;
use crate::engine::limits::{HEAD_BYTES, PLAYLIST_FLAG};
use crate::engine::secrets::UpstreamSecrets;
use crate::engine::upstream::{Conn, Key};
use crate::measure::events::{EventKind, EventSink, Problem, Request, ViewerId};

/// Room made for each read of a head.
const HEAD_READ: usize = 2048;
/// How long the rest of a response is still counted after its viewer went away.
const DRAIN_ABORTED: Duration = Duration::from_millis(100);

/// What every connection of one viewer shares.
#[derive(Debug)]
pub(super) struct Ctx {
    pub(super) viewer: ViewerId,
    pub(super) sink: EventSink,
    pub(super) route: Route,
    pub(super) catalog: Mutex<Catalog>,
}

impl Ctx {
    fn catalog(&self) -> std::sync::MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn report(&self, at: Instant, req: Request) {
        self.sink.send_at(self.viewer, at, EventKind::Request(req));
    }
}

/// The origin connection serving one viewer connection.
#[derive(Debug)]
struct Upstream {
    key: Key,
    stream: Conn,
    buf: Vec<u8>,
    served: u32,
}

/// One viewer connection: requests one after another, each forwarded and measured. A
/// `CONNECT` that carries TLS is answered by the relay's TLS and served the same way inside;
/// anything else inside a `CONNECT` is passed through blind.
pub(super) async fn connection(mut client: TcpStream, ctx: Arc<Ctx>) {
    let mut cbuf = Vec::new();
    let Some((target, received)) = requests(&mut client, None, &mut cbuf, &ctx).await else {
        return;
    };
    let tls = ctx.route.tls.clone().filter(|_| cbuf.is_empty());
    let Some(tls) = tls else {
        tunnel(&mut client, &cbuf, false, &target, received, (ctx.viewer, &ctx.sink, &ctx.route)).await;
        return;
    };
    if client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_err() {
        return;
    }
    // A TLS record starts with 0x16 (handshake); FFmpeg sends its ClientHello at once.
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(ctx.route.timeout, client.peek(&mut first)).await;
    if !matches!(peeked, Ok(Ok(1))) || first[0] != 0x16 {
        tunnel(&mut client, &[], true, &target, received, (ctx.viewer, &ctx.sink, &ctx.route)).await;
        return;
    }
    let Ok(Ok(mut inner)) = tokio::time::timeout(ctx.route.timeout, tls.accept(client)).await else {
        return;
    };
    let base = format!("https://{target}");
    let _ = requests(&mut inner, Some(&base), &mut cbuf, &ctx).await;
}

/// Serves requests on `client` until it closes; returns a `CONNECT`'s target and when it
/// came. `base` (`https://host:port`) is the origin of requests inside a terminated tunnel,
/// which arrive in origin form.
async fn requests<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
    base: Option<&str>,
    cbuf: &mut Vec<u8>,
    ctx: &Ctx,
) -> Option<(String, Instant)> {
    let mut up: Option<Upstream> = None;
    loop {
        let head = match read_head(client, cbuf, None).await {
            Ok(Some((len, _))) => len,
            Ok(None) | Err(_) => return None,
        };
        let received = Instant::now();
        match exchange(client, base, cbuf, head, received, &mut up, ctx).await {
            Next::Keep => {}
            Next::Close => return None,
            Next::Connect(target) if base.is_none() => return Some((target, received)),
            Next::Connect(_) => {
                let _ = respond(client, 400, "hls-swarm relay: CONNECT inside a tunnel").await;
                return None;
            }
        }
    }
}

enum Next {
    Keep,
    Close,
    Connect(String),
}

/// A parsed request head.
struct Head {
    method: String,
    target: String,
    minor: u8,
    headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    fn wants_close(&self) -> bool {
        connection_says(self.header("connection"), self.minor)
    }
}

/// True if a `Connection` header (or its absence in HTTP/1.0) means the connection closes.
pub(super) fn connection_says(value: Option<&[u8]>, minor: u8) -> bool {
    let v = value.map(|v| String::from_utf8_lossy(v).to_ascii_lowercase()).unwrap_or_default();
    if v.split(',').any(|t| t.trim() == "close") {
        return true;
    }
    minor == 0 && !v.split(',').any(|t| t.trim() == "keep-alive")
}

fn parse_request(raw: &[u8]) -> Option<Head> {
    let mut headers = [httparse::EMPTY_HEADER; 96];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(raw) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    Some(Head {
        method: req.method?.to_owned(),
        target: req.path?.to_owned(),
        minor: req.version?,
        headers: req.headers.iter().map(|h| (h.name.to_owned(), h.value.to_vec())).collect(),
    })
}

/// How a response body ends.
#[derive(Debug, Clone, Copy)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Forwards one request and its response.
#[allow(clippy::too_many_lines)]
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
    base: Option<&str>,
    cbuf: &mut Vec<u8>,
    head_len: usize,
    received: Instant,
    up: &mut Option<Upstream>,
    ctx: &Ctx,
) -> Next {
    let Some(head) = parse_request(&cbuf[..head_len]) else {
        let _ = respond(client, 400, "hls-swarm relay: malformed request").await;
        return Next::Close;
    };
    cbuf.drain(..head_len);
    if head.method.eq_ignore_ascii_case("CONNECT") {
        return Next::Connect(head.target);
    }
    let parsed = match base {
        Some(b) if head.target.starts_with('/') => Url::parse(&format!("{b}{}", head.target)),
        _ => Url::parse(&head.target),
    };
    let url = match parsed {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        _ => {
            let _ = respond(client, 400, "hls-swarm relay: expected an absolute http:// URL").await;
            return Next::Close;
        }
    };
    if head.header("transfer-encoding").is_some() {
        let _ = respond(client, 501, "hls-swarm relay: chunked request bodies are not supported").await;
        return Next::Close;
    }
    let body_len: usize = head
        .header("content-length")
        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse().ok())
        .unwrap_or(0);
    let client_close = head.wants_close();

    // The request as the origin gets it: origin-form target, proxy headers dropped.
    let mut path = url.path().to_owned();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    if url.as_str() == ctx.route.secrets.public_entry {
        // The stream URL itself: with the secret parameters FFmpeg was not given.
        path.clone_from(&ctx.route.secrets.entry_target);
    }
    let mut out = Vec::with_capacity(head_len);
    out.extend_from_slice(format!("{} {path} HTTP/1.{}\r\n", head.method, head.minor).as_bytes());
    for (name, value) in &head.headers {
        if name.to_ascii_lowercase().starts_with("proxy-") {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    add_secrets(&mut out, &head, &url, &ctx.route.secrets);
    out.extend_from_slice(b"\r\n");
    // Request bodies (FFmpeg sends none) are forwarded whole.
    while cbuf.len() < body_len {
        cbuf.reserve(body_len - cbuf.len());
        match client.read_buf(cbuf).await {
            Ok(0) | Err(_) => return Next::Close,
            Ok(_) => {}
        }
    }
    out.extend(cbuf.drain(..body_len));

    let key = Key {
        https: url.scheme() == "https",
        host: url.host_str().unwrap_or_default().to_owned(),
        port: url.port_or_known_default().unwrap_or(80),
    };
    let (kind_by_url, listed) = ctx.catalog().classify(url.as_str());
    let media_duration = listed.map(|l| l.duration);
    // Nothing of it seen yet; measured from here on.
    let mut report = Request {
        measured: true,
        program_date_time: listed.and_then(|l| l.program_date_time),
        variant_bandwidth: None,
        ..Request::inferred(kind_by_url, url.to_string(), media_duration)
    };

    // Send, reconnecting once if a kept-alive connection turns out to be closed.
    let mut first_byte = None;
    let mut resp_head = 0;
    for attempt in 0..2 {
        if up.as_ref().is_none_or(|u| u.key != key) {
            match ctx.route.dial().open(&key).await {
                Ok(opened) => {
                    report.connect = Some(opened.connect);
                    report.tls = opened.tls;
                    *up =
                        Some(Upstream { key: key.clone(), stream: opened.conn, buf: Vec::new(), served: 0 });
                }
                Err(e) => {
                    report.network_error = Some(format!("{key}: {e}"));
                    report.elapsed = received.elapsed();
                    ctx.report(Instant::now(), report);
                    let _ = respond(client, 502, &format!("hls-swarm relay: {e}")).await;
                    return Next::Close;
                }
            }
        }
        let Some(u) = up.as_mut() else { return Next::Close };
        let reused = u.served > 0;
        let sent = u.stream.write_all(&out).await;
        let got = match sent {
            Ok(()) => read_head(&mut u.stream, &mut u.buf, Some(ctx.route.timeout)).await,
            Err(e) => Err(e),
        };
        match got {
            Ok(Some((len, at))) => {
                resp_head = len;
                first_byte = at;
                break;
            }
            // The origin closed an idle kept-alive connection just as we reused it.
            Ok(None) | Err(_) if reused && attempt == 0 => {
                *up = None;
            }
            Ok(None) => {
                report.network_error = Some("origin closed the connection without a response".into());
                break;
            }
            Err(e) => {
                report.network_error = Some(e.to_string());
                break;
            }
        }
    }
    let Some(u) = up.as_mut().filter(|_| resp_head > 0) else {
        *up = None;
        report.elapsed = received.elapsed();
        ctx.report(Instant::now(), report);
        let _ = respond(client, 502, "hls-swarm relay: the origin did not answer").await;
        return Next::Close;
    };
    u.served += 1;
    report.ttfb = first_byte.map(|t| t.saturating_duration_since(received));

    let head_only = head.method.eq_ignore_ascii_case("HEAD");
    let Some(rhead) = response_head(&u.buf[..resp_head], head_only) else {
        *up = None;
        report.network_error = Some("malformed response from the origin".into());
        report.elapsed = received.elapsed();
        ctx.report(Instant::now(), report);
        let _ = respond(client, 502, "hls-swarm relay: malformed response from the origin").await;
        return Next::Close;
    };
    let RespHead { status, framing, close: origin_close, playlist_type } = rhead;
    report.status = Some(status);
    let is_playlist = kind_by_url.is_playlist() || playlist_type;

    if client.write_all(&u.buf[..resp_head]).await.is_err() {
        *up = None;
        report.elapsed = received.elapsed();
        ctx.report(Instant::now(), report);
        return Next::Close;
    }
    u.buf.drain(..resp_head);

    // The body: forwarded as it arrives, counted, playlists kept for reading. Bytes that came
    // with the head are in `pending`; the rest is read into a pooled buffer and forwarded from
    // there (only bytes beyond this response, which an origin does not send unasked, are kept).
    let mut keep = is_playlist && (200..300).contains(&status);
    let mut captured = Vec::new();
    let mut tracker = Chunks::default();
    let mut remaining = match framing {
        Framing::Length(n) => n,
        _ => 0,
    };
    let mut done = matches!(framing, Framing::Empty) || matches!(framing, Framing::Length(0));
    let mut client_gone = false;
    let mut drain_until: Option<tokio::time::Instant> = None;
    let mut pending = std::mem::take(&mut u.buf);
    let mut chunk: Option<Buffer> = None;
    while !done {
        let filled = if pending.is_empty() {
            let chunk = chunk.get_or_insert_with(|| POOL.take());
            let wait = match drain_until {
                Some(t) => t.saturating_duration_since(tokio::time::Instant::now()),
                None => ctx.route.timeout,
            };
            let read = tokio::time::timeout(wait, u.stream.read(chunk)).await;
            match read {
                Ok(Ok(0) | Err(_)) | Err(_) if client_gone => break,
                Ok(Ok(0)) => {
                    if matches!(framing, Framing::UntilClose) {
                        done = true;
                    } else {
                        report.network_error = Some("origin closed the connection mid-body".into());
                    }
                    break;
                }
                Ok(Ok(n)) => {
                    // Take whatever else has already arrived, so the viewer gets it in one
                    // write (fewer wake-ups on both sides; timing is taken from the first read).
                    let mut filled = n;
                    while filled < chunk.len() {
                        match u.stream.read(&mut chunk[filled..]).now_or_never() {
                            Some(Ok(m)) if m > 0 => filled += m,
                            _ => break,
                        }
                    }
                    filled
                }
                Ok(Err(e)) => {
                    report.network_error = Some(e.to_string());
                    break;
                }
                Err(_) => {
                    report.network_error = Some("origin stopped sending (timed out)".into());
                    break;
                }
            }
        } else {
            0
        };
        let data: &[u8] = match &chunk {
            Some(c) if filled > 0 => &c[..filled],
            _ => &pending,
        };
        let (take, payload) = match framing {
            Framing::Length(_) => {
                let n = usize::try_from(remaining).unwrap_or(usize::MAX).min(data.len());
                remaining -= n as u64;
                done = remaining == 0;
                (n, n as u64)
            }
            Framing::Chunked => {
                let before = tracker.payload;
                let n = tracker.feed(data);
                done = tracker.done();
                (n, tracker.payload - before)
            }
            Framing::UntilClose => (data.len(), data.len() as u64),
            Framing::Empty => (0, 0),
        };
        report.bytes += payload;
        if !client_gone && client.write_all(&data[..take]).await.is_err() {
            // The viewer went away mid-body (stopped, restarted). What the origin already
            // sent is still counted: take what has arrived, briefly, then close.
            client_gone = true;
            keep = false;
            drain_until = Some(tokio::time::Instant::now() + DRAIN_ABORTED);
        }
        if keep {
            let max = ctx.route.limits.playlist_bytes;
            if captured.len() + take > max {
                keep = false;
                captured = Vec::new();
                let reason = format!(
                    "playlist {url} is larger than {max} bytes ({PLAYLIST_FLAG} raises it): forwarded \
                     but not read, so the player model does not know its segments"
                );
                ctx.sink.send(ctx.viewer, EventKind::Problem(Problem::Unreadable(reason)));
            } else {
                captured.extend_from_slice(&data[..take]);
            }
        }
        if filled > 0 {
            let rest = data[take..].to_vec();
            pending = rest;
        } else {
            pending.drain(..take);
        }
    }
    drop(chunk);
    let at = Instant::now();
    report.elapsed = at.saturating_duration_since(received);
    let clean = done && !client_gone && report.network_error.is_none();
    if clean {
        report.ttlb = Some(report.elapsed);
        if keep {
            let body = if matches!(framing, Framing::Chunked) { dechunk(&captured) } else { captured };
            let learned = ctx.catalog().learn(&url, &body, ctx.route.limits.playlist);
            match learned {
                Ok((kind, seen)) => {
                    report.kind = kind;
                    if let Some(seen) = seen {
                        ctx.sink.send_at(ctx.viewer, at, seen);
                    }
                }
                Err(Some(over)) => {
                    let reason = format!(
                        "playlist {url}: {over}: forwarded but not read, so the player model does not \
                         know its segments"
                    );
                    ctx.sink.send(ctx.viewer, EventKind::Problem(Problem::Unreadable(reason)));
                }
                Err(None) => {}
            }
        }
        if let Some(u) = up.as_mut() {
            // Keep bytes beyond this response; let go of the capacity otherwise.
            u.buf = if pending.is_empty() { Vec::new() } else { pending };
        }
    }
    ctx.report(at, report);
    if !clean || origin_close {
        *up = None;
    }
    if !clean || client_close || origin_close {
        return Next::Close;
    }
    Next::Keep
}

/// Adds what FFmpeg's argv leaves out: the secret headers (unless the viewer sent its own) and,
/// towards the stream URL's host, the URL's credentials as Basic authorization.
fn add_secrets(out: &mut Vec<u8>, head: &Head, url: &Url, up: &UpstreamSecrets) {
    let mut authorized = head.header("authorization").is_some();
    for h in up.headers.iter().filter(|h| head.header(&h.name).is_none()) {
        authorized |= h.name.eq_ignore_ascii_case("authorization");
        out.extend_from_slice(format!("{}: {}\r\n", h.name, h.value).as_bytes());
    }
    let same_origin = url.host_str() == Some(up.authority.0.as_str())
        && url.port_or_known_default() == Some(up.authority.1);
    if let Some(basic) = up.basic.as_ref().filter(|_| same_origin && !authorized) {
        out.extend_from_slice(format!("Authorization: {basic}\r\n").as_bytes());
    }
}

/// What the relay needs of a response head.
struct RespHead {
    status: u16,
    framing: Framing,
    /// The origin closes the connection after this response.
    close: bool,
    /// `Content-Type` says it is a playlist.
    playlist_type: bool,
}

/// Parses a response head (`None` if malformed). `head_only`: the request was a `HEAD`.
fn response_head(raw: &[u8], head_only: bool) -> Option<RespHead> {
    let mut headers = [httparse::EMPTY_HEADER; 96];
    let mut resp = httparse::Response::new(&mut headers);
    let (status, minor) = match (resp.parse(raw), resp.code, resp.version) {
        (Ok(httparse::Status::Complete(_)), Some(c), Some(v)) => (c, v),
        _ => return None,
    };
    let rh = |name: &str| resp.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    let lower = |v: &[u8]| String::from_utf8_lossy(v).to_ascii_lowercase();
    let chunked = rh("transfer-encoding").is_some_and(|v| lower(v).contains("chunked"));
    let length = rh("content-length").and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok());
    let framing = if head_only || status < 200 || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Some(RespHead {
        status,
        framing,
        close: connection_says(rh("connection"), minor) || matches!(framing, Framing::UntilClose),
        playlist_type: rh("content-type").is_some_and(|v| lower(v).contains("mpegurl")),
    })
}

/// Reads until `buf` holds a whole head (`\r\n\r\n`). Returns its length and when the first
/// byte of it arrived (if it arrived in this call), or `None` at a clean end of stream.
async fn read_head<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    timeout: Option<Duration>,
) -> io::Result<Option<(usize, Option<Instant>)>> {
    let mut first = if buf.is_empty() { None } else { Some(Instant::now()) };
    loop {
        if let Some(end) = find_head_end(buf) {
            return Ok(Some((end, first)));
        }
        if buf.len() > HEAD_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        buf.reserve(HEAD_READ);
        let n = match timeout {
            Some(t) => tokio::time::timeout(t, s.read_buf(buf))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no response (timed out)"))??,
            None => s.read_buf(buf).await?,
        };
        if n == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-head"));
        }
        first.get_or_insert_with(Instant::now);
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}
