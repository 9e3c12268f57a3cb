//! The observing relay: how FFmpeg viewers get exact numbers.
//!
//! FFmpeg's log shows when a request starts, never when it ends or how big it was. So every
//! viewer runs with `-http_proxy http://127.0.0.1:PORT` pointing at its own relay listener
//! (the HLS demuxer passes the proxy to every playlist and segment request, which then
//! arrive in absolute form, `GET http://host/seg.ts HTTP/1.1`). The relay forwards each
//! request and records what the viewer experienced: status, body bytes, time to first byte,
//! time to last byte, and the kind of object (it reads every playlist that passes, so it
//! knows which URLs are segments, with their media durations, init sections and keys).
//!
//! It is deliberately not a pooling proxy: each viewer connection gets its own upstream
//! connection, kept alive exactly as long as the viewer keeps its own, so the origin sees
//! the connections and keep-alive behaviour real players produce. One listener per viewer
//! attributes every byte to its viewer without parsing anything. `--resolve` is applied
//! here (the viewer keeps the real host name in its URL and `Host` header).
//!
//! `https` goes through `CONNECT` tunnels: the relay cannot look inside TLS, so it reports
//! tunnels only (connect time, bytes each way, lifetime).

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::engine::ffmpeg::log::RequestKind;
use crate::measure::events::{EventKind, EventSink, Request, Tunnel, ViewerId};
use crate::measure::player::Player;
use kit::playlist::{self, Playlist};

/// Largest request or response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest playlist body kept for reading (longer ones are forwarded but not read).
const MAX_PLAYLIST: usize = 4 * 1024 * 1024;
/// Media playlists remembered per viewer.
const MAX_PLAYLISTS: usize = 64;
/// Copy buffer per connection.
const CHUNK: usize = 64 * 1024;
/// How long the rest of a response is still counted after its viewer went away.
const DRAIN_ABORTED: Duration = Duration::from_millis(100);
/// How long open connections get to finish after the relay is asked to close.
pub const DRAIN: Duration = Duration::from_secs(2);

/// Where requests go and how long the relay waits for the origin.
#[derive(Debug, Clone)]
pub struct Route {
    /// Connect here instead of resolving the URL's host (`--resolve`).
    pub resolve: Option<IpAddr>,
    /// Longest wait for the origin's next bytes (FFmpeg's own `-rw_timeout` plus a margin,
    /// so that the viewer, not the relay, decides when a request has failed).
    pub timeout: Duration,
}

/// A bound relay listener, before it serves.
#[derive(Debug)]
pub struct Relay {
    listener: TcpListener,
    addr: SocketAddr,
}

/// A serving relay.
#[derive(Debug)]
pub struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Binds a listener on a free loopback port.
    ///
    /// # Errors
    /// The bind error (for example, out of file descriptors or ports).
    pub async fn bind() -> io::Result<Relay> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        Ok(Relay { listener, addr })
    }

    /// The value for FFmpeg's `-http_proxy`.
    #[must_use]
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `viewer`'s connections until [`Running::close`]. Every exchange is reported to
    /// `sink`; fully received segments also go to `player` (the viewer's stall clock).
    #[must_use]
    pub fn serve(
        self,
        viewer: ViewerId,
        sink: EventSink,
        route: Route,
        player: Arc<Mutex<Player>>,
    ) -> Running {
        let stop = CancellationToken::new();
        let ctx = Arc::new(Ctx { viewer, sink, route, player, catalog: Mutex::default() });
        let task = tokio::spawn(accept_loop(self.listener, ctx, stop.clone()));
        Running { stop, task }
    }
}

impl Running {
    /// Stops accepting, gives open connections [`DRAIN`] to finish (their viewer is gone by
    /// now, so they end at once), then cuts the rest.
    pub async fn close(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// What every connection of one viewer shares.
#[derive(Debug)]
struct Ctx {
    viewer: ViewerId,
    sink: EventSink,
    route: Route,
    player: Arc<Mutex<Player>>,
    catalog: Mutex<Catalog>,
}

impl Ctx {
    fn catalog(&self) -> std::sync::MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn report(&self, at: Instant, req: Request) {
        {
            let mut player = self.player.lock().unwrap_or_else(PoisonError::into_inner);
            player.request(at.checked_sub(req.elapsed).unwrap_or(at));
            if req.kind == RequestKind::Segment && req.complete_ok() {
                if let Some(d) = req.media_duration {
                    player.segment(at, Duration::from_secs_f64(d.max(0.0)));
                }
            }
        }
        self.sink.send_at(self.viewer, at, EventKind::Request(req));
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>, stop: CancellationToken) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((sock, _)) => {
                    let _ = sock.set_nodelay(true);
                    conns.spawn(connection(sock, Arc::clone(&ctx)));
                }
                // Out of descriptors and the like: the viewer's request fails and FFmpeg
                // retries; do not spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            () = stop.cancelled() => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

/// Which URLs are segments (with durations), init sections and keys, from the playlists
/// that passed. Per media playlist the current and the previous listing are kept, so a
/// segment that just slid out of the window is still known.
#[derive(Debug, Default)]
struct Catalog {
    masters: HashSet<String>,
    playlists: HashMap<String, Listing>,
}

#[derive(Debug, Default)]
struct Listing {
    current: HashMap<String, f64>,
    previous: HashMap<String, f64>,
    others: HashMap<String, RequestKind>,
}

impl Catalog {
    fn classify(&self, url: &str) -> (RequestKind, Option<f64>) {
        for l in self.playlists.values() {
            if let Some(d) = l.current.get(url).or_else(|| l.previous.get(url)) {
                return (RequestKind::Segment, Some(*d));
            }
            if let Some(k) = l.others.get(url) {
                return (*k, None);
            }
        }
        if self.masters.contains(url) {
            return (RequestKind::Master, None);
        }
        let path = url.split(['?', '#']).next().unwrap_or(url).to_ascii_lowercase();
        let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
        let kind = match ext {
            "m3u8" | "m3u" => RequestKind::Playlist,
            "ts" | "m4s" | "mp4" | "m4a" | "m4v" | "aac" | "ac3" | "ec3" | "mp3" | "vtt" | "webvtt" => {
                RequestKind::Segment
            }
            "key" => RequestKind::Key,
            _ => RequestKind::Other,
        };
        (kind, None)
    }

    /// Reads a playlist body that passed; returns its kind and, for media playlists, what
    /// the stats want to know.
    fn learn(&mut self, url: &Url, body: &[u8]) -> Option<(RequestKind, Option<EventKind>)> {
        let text = std::str::from_utf8(body).ok()?;
        match playlist::parse(text).ok()? {
            Playlist::Master(_) => {
                self.masters.insert(url.to_string());
                Some((RequestKind::Master, None))
            }
            Playlist::Media(m) => {
                if self.playlists.len() >= MAX_PLAYLISTS && !self.playlists.contains_key(url.as_str()) {
                    self.playlists.clear();
                }
                let entry = self.playlists.entry(url.to_string()).or_default();
                let mut current = HashMap::with_capacity(m.segments.len());
                for s in &m.segments {
                    if let Ok(u) = playlist::resolve(url, &s.uri) {
                        current.insert(u.to_string(), s.duration);
                    }
                }
                entry.previous = std::mem::replace(&mut entry.current, current);
                entry.others.clear();
                let extra = m.map_uris().into_iter().map(|u| (u, RequestKind::Init));
                for (u, k) in extra.chain(m.key_uris().into_iter().map(|u| (u, RequestKind::Key))) {
                    if let Ok(u) = playlist::resolve(url, u) {
                        entry.others.insert(u.to_string(), k);
                    }
                }
                let seen = EventKind::PlaylistSeen {
                    media_sequence: m.media_sequence,
                    segments: u32::try_from(m.segments.len()).unwrap_or(u32::MAX),
                    ended: m.ended,
                };
                Some((RequestKind::Playlist, Some(seen)))
            }
        }
    }
}

/// The origin connection serving one viewer connection.
#[derive(Debug)]
struct Upstream {
    key: (String, u16),
    stream: TcpStream,
    buf: Vec<u8>,
    served: u32,
}

/// One viewer connection: requests one after another, each forwarded and measured.
async fn connection(mut client: TcpStream, ctx: Arc<Ctx>) {
    let mut cbuf = Vec::with_capacity(4096);
    let mut up: Option<Upstream> = None;
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let head = match read_head(&mut client, &mut cbuf, None).await {
            Ok(Some((len, _))) => len,
            Ok(None) | Err(_) => return,
        };
        let received = Instant::now();
        match exchange(&mut client, &mut cbuf, head, received, &mut up, &ctx, &mut chunk).await {
            Next::Keep => {}
            Next::Close => return,
        }
    }
}

enum Next {
    Keep,
    Close,
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
fn connection_says(value: Option<&[u8]>, minor: u8) -> bool {
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
async fn exchange(
    client: &mut TcpStream,
    cbuf: &mut Vec<u8>,
    head_len: usize,
    received: Instant,
    up: &mut Option<Upstream>,
    ctx: &Ctx,
    chunk: &mut [u8],
) -> Next {
    let Some(head) = parse_request(&cbuf[..head_len]) else {
        let _ = respond(client, 400, "hls-swarm relay: malformed request").await;
        return Next::Close;
    };
    cbuf.drain(..head_len);
    if head.method.eq_ignore_ascii_case("CONNECT") {
        tunnel(client, cbuf, &head.target, received, ctx).await;
        return Next::Close;
    }
    let url = match Url::parse(&head.target) {
        Ok(u) if u.scheme() == "http" && u.host_str().is_some() => u,
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
    out.extend_from_slice(b"\r\n");
    // Request bodies (FFmpeg sends none) are forwarded whole.
    while cbuf.len() < body_len {
        match client.read(chunk).await {
            Ok(0) | Err(_) => return Next::Close,
            Ok(n) => cbuf.extend_from_slice(&chunk[..n]),
        }
    }
    out.extend(cbuf.drain(..body_len));

    let key = (url.host_str().unwrap_or_default().to_owned(), url.port_or_known_default().unwrap_or(80));
    let (kind_by_url, media_duration) = ctx.catalog().classify(url.as_str());
    let mut report = Request {
        kind: kind_by_url,
        url: url.to_string(),
        status: None,
        bytes: 0,
        connect: None,
        ttfb: None,
        ttlb: None,
        elapsed: Duration::ZERO,
        media_duration,
        network_error: None,
    };

    // Send, reconnecting once if a kept-alive connection turns out to be closed.
    let mut first_byte = None;
    let mut resp_head = 0;
    for attempt in 0..2 {
        if up.as_ref().is_none_or(|u| u.key != key) {
            let t = Instant::now();
            match connect(&key, &ctx.route).await {
                Ok(stream) => {
                    report.connect = Some(t.elapsed());
                    *up = Some(Upstream { key: key.clone(), stream, buf: Vec::new(), served: 0 });
                }
                Err(e) => {
                    report.network_error = Some(format!("connect to {}:{}: {e}", key.0, key.1));
                    report.elapsed = received.elapsed();
                    ctx.report(Instant::now(), report);
                    let _ = respond(client, 502, &format!("hls-swarm relay: cannot connect: {e}")).await;
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

    let mut rheaders = [httparse::EMPTY_HEADER; 96];
    let mut resp = httparse::Response::new(&mut rheaders);
    let parsed = resp.parse(&u.buf[..resp_head]);
    let (status, minor) = match (parsed, resp.code, resp.version) {
        (Ok(httparse::Status::Complete(_)), Some(c), Some(v)) => (c, v),
        _ => {
            *up = None;
            report.network_error = Some("malformed response from the origin".into());
            report.elapsed = received.elapsed();
            ctx.report(Instant::now(), report);
            let _ = respond(client, 502, "hls-swarm relay: malformed response from the origin").await;
            return Next::Close;
        }
    };
    report.status = Some(status);
    let rh = |name: &str| resp.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    let chunked = rh("transfer-encoding")
        .is_some_and(|v| String::from_utf8_lossy(v).to_ascii_lowercase().contains("chunked"));
    let length = rh("content-length").and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok());
    let framing =
        if head.method.eq_ignore_ascii_case("HEAD") || status < 200 || status == 204 || status == 304 {
            Framing::Empty
        } else if chunked {
            Framing::Chunked
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            Framing::UntilClose
        };
    let origin_close = connection_says(rh("connection"), minor) || matches!(framing, Framing::UntilClose);
    let is_playlist = kind_by_url.is_playlist()
        || rh("content-type")
            .is_some_and(|v| String::from_utf8_lossy(v).to_ascii_lowercase().contains("mpegurl"));

    if client.write_all(&u.buf[..resp_head]).await.is_err() {
        *up = None;
        report.elapsed = received.elapsed();
        ctx.report(Instant::now(), report);
        return Next::Close;
    }
    u.buf.drain(..resp_head);

    // The body: forwarded as it arrives, counted, playlists kept for reading.
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
    while !done {
        if pending.is_empty() {
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
                        match u.stream.try_read(&mut chunk[filled..]) {
                            Ok(m) if m > 0 => filled += m,
                            _ => break,
                        }
                    }
                    pending.extend_from_slice(&chunk[..filled]);
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
        }
        let (take, payload) = match framing {
            Framing::Length(_) => {
                let n = usize::try_from(remaining).unwrap_or(usize::MAX).min(pending.len());
                remaining -= n as u64;
                done = remaining == 0;
                (n, n as u64)
            }
            Framing::Chunked => {
                let before = tracker.payload;
                let n = tracker.feed(&pending);
                done = tracker.done();
                (n, tracker.payload - before)
            }
            Framing::UntilClose => (pending.len(), pending.len() as u64),
            Framing::Empty => (0, 0),
        };
        report.bytes += payload;
        if !client_gone && client.write_all(&pending[..take]).await.is_err() {
            // The viewer went away mid-body (stopped, restarted). What the origin already
            // sent is still counted: take what has arrived, briefly, then close.
            client_gone = true;
            keep = false;
            drain_until = Some(tokio::time::Instant::now() + DRAIN_ABORTED);
        }
        if keep {
            if captured.len() + take > MAX_PLAYLIST {
                keep = false;
                captured = Vec::new();
            } else {
                captured.extend_from_slice(&pending[..take]);
            }
        }
        pending.drain(..take);
    }
    let at = Instant::now();
    report.elapsed = at.saturating_duration_since(received);
    let clean = done && !client_gone && report.network_error.is_none();
    if clean {
        report.ttlb = Some(report.elapsed);
        if keep {
            let body = if matches!(framing, Framing::Chunked) { dechunk(&captured) } else { captured };
            if let Some((kind, seen)) = ctx.catalog().learn(&url, &body) {
                report.kind = kind;
                if let Some(seen) = seen {
                    ctx.sink.send_at(ctx.viewer, at, seen);
                }
            }
        }
        if let Some(u) = up.as_mut() {
            u.buf = pending;
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

async fn connect(key: &(String, u16), route: &Route) -> io::Result<TcpStream> {
    let fut = async {
        match route.resolve {
            Some(ip) => TcpStream::connect((ip, key.1)).await,
            None => TcpStream::connect((key.0.trim_start_matches('[').trim_end_matches(']'), key.1)).await,
        }
    };
    let stream = tokio::time::timeout(route.timeout, fut)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "timed out"))??;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Reads until `buf` holds a whole head (`\r\n\r\n`). Returns its length and when the first
/// byte of it arrived (if it arrived in this call), or `None` at a clean end of stream.
async fn read_head(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    timeout: Option<Duration>,
) -> io::Result<Option<(usize, Option<Instant>)>> {
    let mut first = if buf.is_empty() { None } else { Some(Instant::now()) };
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find_head_end(buf) {
            return Ok(Some((end, first)));
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        let n = match timeout {
            Some(t) => tokio::time::timeout(t, s.read(&mut chunk))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no response (timed out)"))??,
            None => s.read(&mut chunk).await?,
        };
        if n == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-head"));
        }
        first.get_or_insert_with(Instant::now);
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

async fn respond(client: &mut TcpStream, status: u16, text: &str) -> io::Result<()> {
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

/// `CONNECT host:port`: a blind tunnel (https). Only sizes and times are known.
async fn tunnel(client: &mut TcpStream, early: &[u8], target: &str, received: Instant, ctx: &Ctx) {
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
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
        .unwrap_or_else(|| (target.to_owned(), 443));
    match connect(&key, &ctx.route).await {
        Err(e) => {
            report.error = Some(format!("connect to {target}: {e}"));
            let _ = respond(client, 502, &format!("hls-swarm relay: cannot connect: {e}")).await;
        }
        Ok(mut upstream) => {
            report.connect = Some(received.elapsed());
            let ok = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_ok()
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
    ctx.sink.send(ctx.viewer, EventKind::Tunnel(report));
}

/// Follows `Transfer-Encoding: chunked` framing byte by byte, counting payload bytes, to
/// find where the body ends without buffering it.
#[derive(Debug, Default)]
struct Chunks {
    state: ChunkState,
    size: u64,
    payload: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    FinalLf,
    Done,
}

impl Chunks {
    /// Consumes bytes up to the end of the body; returns how many were consumed.
    fn feed(&mut self, bytes: &[u8]) -> usize {
        let mut i = 0;
        while i < bytes.len() && self.state != ChunkState::Done {
            let b = bytes[i];
            match self.state {
                ChunkState::Data => {
                    let n = usize::try_from(self.size).unwrap_or(usize::MAX).min(bytes.len() - i);
                    self.size -= n as u64;
                    self.payload += n as u64;
                    i += n;
                    if self.size == 0 {
                        self.state = ChunkState::DataCr;
                    }
                    continue;
                }
                ChunkState::Size => match (b as char).to_digit(16) {
                    Some(d) => self.size = self.size.saturating_mul(16).saturating_add(u64::from(d)),
                    None if b == b';' => self.state = ChunkState::Extension,
                    None if b == b'\r' => self.state = ChunkState::SizeLf,
                    None if b == b'\n' => self.after_size(),
                    None => {}
                },
                ChunkState::Extension => match b {
                    b'\r' => self.state = ChunkState::SizeLf,
                    b'\n' => self.after_size(),
                    _ => {}
                },
                ChunkState::SizeLf => self.after_size(),
                ChunkState::DataCr => {
                    self.state = if b == b'\r' { ChunkState::DataLf } else { ChunkState::Size }
                }
                ChunkState::DataLf => self.state = ChunkState::Size,
                ChunkState::TrailerStart => {
                    self.state = match b {
                        b'\r' => ChunkState::FinalLf,
                        b'\n' => ChunkState::Done,
                        _ => ChunkState::TrailerLine,
                    }
                }
                ChunkState::TrailerLine => {
                    if b == b'\n' {
                        self.state = ChunkState::TrailerStart;
                    }
                }
                ChunkState::FinalLf => self.state = ChunkState::Done,
                ChunkState::Done => {}
            }
            i += 1;
        }
        i
    }

    fn after_size(&mut self) {
        self.state = if self.size == 0 { ChunkState::TrailerStart } else { ChunkState::Data };
    }

    fn done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

/// The payload of a whole chunked body.
fn dechunk(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(&rest[..nl]);
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        rest = &rest[nl + 1..];
        if size == 0 || size > rest.len() {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size..).unwrap_or_default();
        rest = rest.strip_prefix(b"\r\n").or_else(|| rest.strip_prefix(b"\n")).unwrap_or(rest);
    }
    out
}

#[cfg(test)]
mod tests;
