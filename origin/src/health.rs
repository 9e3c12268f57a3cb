//! hls-origin's own status endpoint: `GET /health` answers JSON with every child's state, and
//! `POST /hold?seconds=N` stalls the replay publisher (fault injection, see [`crate::replay::Hold`]).
//!
//! It listens on a loopback port of its own; nginx proxies `/health` on the HLS port to it, so
//! a viewer-facing probe sees both nginx and the supervisor. Status 200 when the origin is
//! ready and every child is running, 503 otherwise. `/hold` is deliberately not proxied: the
//! HLS port faces viewers, and a fault injector belongs to whoever runs the test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::Source;
use crate::error::Error;
use crate::faults::SegmentFault;
use crate::llhls::Faults;
use crate::replay::{Hold, MAX_HOLD};
use crate::supervisor::{Board, ChildStatus, FaultError, State};

/// What the status listener reports, and the one thing it controls (the hold).
#[derive(Debug)]
pub struct Facts {
    /// Unique to this origin (pid and a random number): lets readiness tell our nginx from
    /// another server that answers on the same port.
    pub instance: String,
    /// Profile name.
    pub profile: String,
    /// The media source.
    pub source: Source,
    /// The entry playlist's URL.
    pub playlist_url: String,
    /// Set once the playlist has enough segments.
    pub ready: AtomicBool,
    /// The children.
    pub board: Board,
    /// The replay publisher's hold (unused by the encode source).
    pub hold: Hold,
    /// Where nginx serves HLS (a loopback address for a wildcard listen).
    pub hls_addr: SocketAddr,
    /// The fault marker directory, if the origin was started with fault injection.
    pub faults_dir: Option<std::path::PathBuf>,
    /// ABR rung directories (empty: one variant at the root).
    pub variants: Vec<String>,
    /// The segment fault in effect.
    pub segment_fault: std::sync::Mutex<Option<SegmentFault>>,
    /// The LL-HLS renditions, once an LL-HLS profile's server runs (their fault switches).
    pub llhls: std::sync::OnceLock<std::sync::Arc<crate::llhls::Ladder>>,
}

#[derive(Serialize)]
struct Report<'a> {
    status: &'static str,
    ready: bool,
    instance: &'a str,
    profile: &'a str,
    source: Source,
    playlist_url: &'a str,
    /// Set while a hold is in effect.
    hold_ends_unix_ms: Option<u64>,
    /// The segment fault in effect, e.g. `503 for segments 40..=45`.
    segment_fault: Option<String>,
    children: std::collections::BTreeMap<String, ChildStatus>,
}

/// `end` (a monotonic instant) as milliseconds since the Unix epoch.
fn unix_ms(end: Instant) -> u64 {
    let wall = SystemTime::now() + end.saturating_duration_since(Instant::now());
    wall.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
            hold_ends_unix_ms: self.hold.ends().map(unix_ms),
            segment_fault: self
                .fault_lock()
                .as_ref()
                .map(|f| format!("{} for segments {}..={}", f.status, f.segments.start(), f.segments.end())),
            children,
        };
        (ok, serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")))
    }

    /// Holds the media source for `duration` (see [`crate::Origin::hold`]); returns when the
    /// hold ends.
    ///
    /// # Errors
    /// [`Error::HoldUnsupported`] for the encode source, [`Error::HoldTooLong`].
    pub fn hold(&self, duration: Duration) -> Result<Instant, Error> {
        if self.llhls.get().is_some() {
            return Err(Error::HoldUnsupported {
                media: "ll-hls",
                why: "the LL-HLS timeline follows the clock (its faults are POST /fault/ll-hls)",
            });
        }
        match self.source {
            Source::Replay => self.hold.hold(duration),
            Source::Encode => Err(Error::HoldUnsupported {
                media: Source::Encode.as_str(),
                why: "a live `ffmpeg -re` encoder that is stopped and resumed publishes the segments \
                      it missed in a burst",
            }),
        }
    }
}

impl Facts {
    fn fault_lock(&self) -> std::sync::MutexGuard<'_, Option<SegmentFault>> {
        self.segment_fault.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// See [`crate::Origin::pause`].
    ///
    /// # Errors
    /// [`Error::Fault`].
    pub fn pause(&self, name: &str, duration: Duration) -> Result<(), Error> {
        if duration > MAX_HOLD {
            return Err(Error::Fault {
                message: format!("invalid pause of {duration:?}: expected at most {MAX_HOLD:?}"),
                bad_input: true,
            });
        }
        self.board.pause(name, duration).map_err(|e| Error::Fault { message: e.to_string(), bad_input: true })
    }

    /// See [`crate::Origin::kill`].
    ///
    /// # Errors
    /// [`Error::Fault`].
    pub fn kill(&self, name: &str) -> Result<u32, Error> {
        self.board.kill(name).map_err(|e| {
            let bad_input = matches!(e, FaultError::NoSuchChild { .. });
            Error::Fault { message: e.to_string(), bad_input }
        })
    }

    /// See [`crate::Origin::fail_segments`].
    ///
    /// # Errors
    /// [`Error::Fault`].
    pub async fn fail_segments(
        &self,
        fault: Option<(u16, std::ops::RangeInclusive<u64>)>,
    ) -> Result<(), Error> {
        let fault = fault
            .map(|(status, range)| SegmentFault::new(status, range))
            .transpose()
            .map_err(|message| Error::Fault { message, bad_input: true })?;
        let Some(dir) = &self.faults_dir else {
            return Err(Error::Fault {
                message: "fault injection is off: start the origin with --fault-injection".into(),
                bad_input: false,
            });
        };
        // LL-HLS media comes from hls-origin's own server, which answers the status itself,
        // from the next request on: no marker files, nothing to wait for.
        if let Some(ladder) = self.llhls.get() {
            ladder
                .each_rendition(|r| r.fail_segments(fault.as_ref().map(|f| (f.status, f.segments.clone()))));
            *self.fault_lock() = fault;
            return Ok(());
        }
        // The URL that proves the change: the new fault's first segment, or the old one's.
        let probe =
            fault.as_ref().or(self.fault_lock().as_ref()).map(|f| (f.clone(), f.paths(&self.variants)));
        crate::faults::apply(dir, fault.as_ref(), &self.variants)
            .map_err(|source| Error::File { path: dir.clone(), source })?;
        *self.fault_lock() = fault.clone();
        let Some((f, paths)) = probe else { return Ok(()) };
        let Some(path) = paths.first() else { return Ok(()) };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let status =
                crate::http::get(self.hls_addr, path, Duration::from_secs(1)).await.map(|r| r.status);
            let live = match (&fault, &status) {
                (Some(_), Ok(s)) => *s == f.status,
                (None, Ok(s)) => *s != f.status,
                (_, Err(_)) => false,
            };
            if live {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Fault {
                    message: format!("nginx did not apply the fault within 5 s ({path} answered {status:?})"),
                    bad_input: false,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Binds `addr` and serves `/health`, `/hold` and `/fault/*` until the task is aborted.
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
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok((local, task))
}

/// Longest request head, and longest request body read (and ignored).
const MAX_HEAD: usize = 16 * 1024;

async fn answer(mut stream: TcpStream, facts: &Facts) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read_request = async {
        let mut head_end = None;
        while head_end.is_none() && buf.len() < MAX_HEAD {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
        }
        // Read a body too (nothing uses one): closing with unread data would reset the
        // connection under the client before it reads the answer.
        if let Some(end) = head_end {
            let wanted = end + content_length(&buf[..end]).min(MAX_HEAD);
            while buf.len() < wanted {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(5), read_request)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let line = String::from_utf8_lossy(&buf);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let reply = route(method, target, facts).await;
    let allow = reply.allow.map(|a| format!("Allow: {a}\r\n")).unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{allow}Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.body.len() + 1
    );
    if method != "HEAD" {
        out.push_str(&reply.body);
        out.push('\n');
    }
    stream.write_all(out.as_bytes()).await?;
    stream.shutdown().await
}

fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// An answer: status line text, JSON body, and the `Allow` header of a 405.
#[derive(Debug)]
struct Reply {
    status: &'static str,
    body: String,
    allow: Option<&'static str>,
}

impl Reply {
    fn error(status: &'static str, message: &str) -> Reply {
        Reply { status, body: serde_json::json!({ "error": message }).to_string(), allow: None }
    }
}

async fn route(method: &str, target: &str, facts: &Facts) -> Reply {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match (method, path) {
        ("POST", "/fault/pause") => fault_reply(fault_pause(query, facts)),
        ("POST", "/fault/kill") => fault_reply(fault_kill(query, facts)),
        ("POST", "/fault/http") => fault_reply(fault_http(query, facts).await),
        ("DELETE", "/fault/http") => {
            fault_reply(facts.fail_segments(None).await.map(|()| serde_json::json!({})))
        }
        ("POST", "/fault/ll-hls") => fault_reply(fault_llhls(query, facts)),
        ("DELETE", "/fault/ll-hls") => fault_reply(fault_llhls(LLHLS_CLEAR, facts)),
        (_, "/fault/ll-hls") => Reply {
            allow: Some("POST, DELETE"),
            ..Reply::error(
                "405 Method Not Allowed",
                &format!("use POST /fault/ll-hls?{LLHLS_SWITCHES} or DELETE"),
            )
        },
        (_, "/fault/pause" | "/fault/kill") => {
            Reply { allow: Some("POST"), ..Reply::error("405 Method Not Allowed", "use POST") }
        }
        (_, "/fault/http") => Reply {
            allow: Some("POST, DELETE"),
            ..Reply::error("405 Method Not Allowed", "use POST /fault/http?status=S&from=A&to=B or DELETE")
        },
        ("GET" | "HEAD", "/health") => {
            let (ok, body) = facts.report();
            Reply { status: if ok { "200 OK" } else { "503 Service Unavailable" }, body, allow: None }
        }
        ("POST", "/hold") => hold(query, facts),
        (_, "/hold") => Reply {
            allow: Some("POST"),
            ..Reply::error("405 Method Not Allowed", "use POST /hold?seconds=N")
        },
        ("GET" | "HEAD", _) => Reply::error("404 Not Found", "not found"),
        _ => {
            Reply { allow: Some("GET, HEAD"), ..Reply::error("405 Method Not Allowed", "method not allowed") }
        }
    }
}

/// `key=value` pairs of a query; only `known` keys, each at most once.
fn query_pairs<'q>(
    query: &'q str,
    known: &[&str],
) -> Result<std::collections::BTreeMap<&'q str, &'q str>, String> {
    let mut out = std::collections::BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if !known.contains(&k) {
            return Err(format!("unknown parameter {k:?}; expected {}", known.join(", ")));
        }
        if out.insert(k, v).is_some() {
            return Err(format!("{k} given twice"));
        }
    }
    Ok(out)
}

fn fault_reply(r: Result<serde_json::Value, Error>) -> Reply {
    match r {
        Ok(body) => Reply { status: "200 OK", body: body.to_string(), allow: None },
        Err(Error::Fault { message, bad_input: true }) => Reply::error("400 Bad Request", &message),
        Err(e) => Reply::error("409 Conflict", &e.to_string()),
    }
}

fn bad(message: String) -> Error {
    Error::Fault { message, bad_input: true }
}

/// `POST /fault/pause?child=NAME&seconds=N`.
fn fault_pause(query: &str, facts: &Facts) -> Result<serde_json::Value, Error> {
    let q = query_pairs(query, &["child", "seconds"]).map_err(bad)?;
    let child = q.get("child").ok_or_else(|| bad("missing child=NAME".into()))?;
    let seconds =
        parse_seconds(&format!("seconds={}", q.get("seconds").copied().unwrap_or(""))).map_err(bad)?;
    facts.pause(child, Duration::from_secs_f64(seconds))?;
    Ok(serde_json::json!({ "child": child, "seconds": seconds }))
}

/// `POST /fault/kill?child=NAME`.
fn fault_kill(query: &str, facts: &Facts) -> Result<serde_json::Value, Error> {
    let q = query_pairs(query, &["child"]).map_err(bad)?;
    let child = q.get("child").ok_or_else(|| bad("missing child=NAME".into()))?;
    let pid = facts.kill(child)?;
    Ok(serde_json::json!({ "child": child, "pid": pid }))
}

/// `POST /fault/http?status=S&from=A&to=B`.
async fn fault_http(query: &str, facts: &Facts) -> Result<serde_json::Value, Error> {
    let q = query_pairs(query, &["status", "from", "to"]).map_err(bad)?;
    let num = |k: &str| -> Result<u64, Error> {
        let v = q.get(k).ok_or_else(|| bad(format!("missing {k}=N")))?;
        v.parse().map_err(|_| bad(format!("invalid {k}={v:?}: expected a whole number")))
    };
    let status = u16::try_from(num("status")?).unwrap_or(0);
    let (from, to) = (num("from")?, num("to")?);
    facts.fail_segments(Some((status, from..=to))).await?;
    Ok(serde_json::json!({ "status": status, "from": from, "to": to }))
}

/// Most parts `POST /fault/ll-hls?missing=N` drops at once.
const MAX_MISSING_PARTS: u32 = 100;

/// Most blocking reloads `POST /fault/ll-hls?slow=N` answers slowly (each takes three target
/// durations and a second).
const MAX_SLOW_RELOADS: u32 = 10;

/// Most playlists `bad_hints=N` and `backwards=N` change.
const MAX_FAULTY_PLAYLISTS: u32 = 100;

/// The `/fault/ll-hls` switches, as its usage text shows them.
const LLHLS_SWITCHES: &str = "missing=N&early=on|off&slow=N&bad_hints=N&backwards=N&short_hold_back=on|off";

/// `DELETE /fault/ll-hls`: every switch off.
const LLHLS_CLEAR: &str = "missing=0&early=off&slow=0&bad_hints=0&backwards=0&short_hold_back=off";

/// `POST /fault/ll-hls?missing=N&early=on|off&slow=N&bad_hints=N&backwards=N&short_hold_back=on|off`,
/// any of them:
/// - `missing`: the next N parts are advertised and then answered 404 (N = 0 clears that);
/// - `early`: blocking reloads are answered at once, before the part asked for exists (`on`),
///   or held as they should be (`off`);
/// - `slow`: the next N blocking reloads are answered three target durations and a second
///   after they arrive, with the part asked for;
/// - `bad_hints`: the next N playlists' preload hints name a part that is never listed;
/// - `backwards`: the next N playlists each start a segment before the one served before;
/// - `short_hold_back`: `PART-HOLD-BACK` is advertised at two part targets (`on`) or as usual.
///
/// On a ladder, every rendition: the same parts go missing in each, and each counts its own N
/// reloads or playlists.
fn fault_llhls(query: &str, facts: &Facts) -> Result<serde_json::Value, Error> {
    let keys = ["missing", "early", "slow", "bad_hints", "backwards", "short_hold_back"];
    let q = query_pairs(query, &keys).map_err(bad)?;
    if q.is_empty() {
        return Err(bad(format!("expected one or more of {LLHLS_SWITCHES}")));
    }
    let count = |key: &str, max: u32, what: &str| -> Result<Option<u32>, Error> {
        let Some(v) = q.get(key) else { return Ok(None) };
        let n = v.parse::<u32>().ok().filter(|n| *n <= max);
        n.map(Some)
            .ok_or_else(|| bad(format!("invalid {key}={v:?}: expected a whole number of {what}, 0 to {max}")))
    };
    let switch = |key: &str| -> Result<Option<bool>, Error> {
        match q.get(key).copied() {
            None => Ok(None),
            Some("on") => Ok(Some(true)),
            Some("off") => Ok(Some(false)),
            Some(v) => Err(bad(format!("invalid {key}={v:?}: expected on or off"))),
        }
    };
    let missing = count("missing", MAX_MISSING_PARTS, "parts")?;
    let early = switch("early")?;
    let slow = count("slow", MAX_SLOW_RELOADS, "blocking reloads")?;
    let bad_hints = count("bad_hints", MAX_FAULTY_PLAYLISTS, "playlists")?;
    let backwards = count("backwards", MAX_FAULTY_PLAYLISTS, "playlists")?;
    let short_hold_back = switch("short_hold_back")?;
    if facts.faults_dir.is_none() {
        return Err(Error::Fault {
            message: "fault injection is off: start the origin with --fault-injection".into(),
            bad_input: false,
        });
    }
    let Some(ladder) = facts.llhls.get() else {
        return Err(Error::Fault {
            message: format!("profile {} is not an LL-HLS profile (use --profile ll-hls)", facts.profile),
            bad_input: false,
        });
    };
    let mut body = serde_json::Map::new();
    if let Some(n) = missing {
        if n == 0 {
            ladder.each_rendition(Faults::clear_missing);
        }
        let parts = ladder.drop_next_parts(n);
        let names: Vec<String> = parts.iter().map(|p| format!("{}.{}", p.msn, p.part)).collect();
        body.insert("missing".into(), serde_json::json!(names));
    }
    if let Some(on) = early {
        ladder.each_rendition(|f| f.answer_reloads_early(on));
        body.insert("early".into(), serde_json::json!(on));
    }
    if let Some(n) = slow {
        ladder.each_rendition(|f| f.answer_reloads_slowly(n));
        body.insert("slow".into(), serde_json::json!(n));
    }
    if let Some(n) = bad_hints {
        ladder.each_rendition(|f| f.send_bad_hints(n));
        body.insert("bad_hints".into(), serde_json::json!(n));
    }
    if let Some(n) = backwards {
        ladder.each_rendition(|f| f.number_backwards(n));
        body.insert("backwards".into(), serde_json::json!(n));
    }
    if let Some(on) = short_hold_back {
        ladder.each_rendition(|f| f.shorten_part_hold_back(on));
        body.insert("short_hold_back".into(), serde_json::json!(on));
    }
    Ok(serde_json::Value::Object(body))
}

/// `POST /hold?seconds=N`: N a number of seconds, more than 0 and at most [`MAX_HOLD`].
fn hold(query: &str, facts: &Facts) -> Reply {
    let seconds = match parse_seconds(query) {
        Ok(s) => s,
        Err(message) => return Reply::error("400 Bad Request", &message),
    };
    match facts.hold(Duration::from_secs_f64(seconds)) {
        Ok(end) => Reply {
            status: "200 OK",
            body: serde_json::json!({
                "seconds": seconds,
                "ends_unix_ms": unix_ms(end),
            })
            .to_string(),
            allow: None,
        },
        Err(e @ Error::HoldUnsupported { .. }) => Reply::error("409 Conflict", &e.to_string()),
        Err(e) => Reply::error("400 Bad Request", &e.to_string()),
    }
}

/// The `seconds` of a `/hold` query, or a message naming the bad value and what is accepted.
fn parse_seconds(query: &str) -> Result<f64, String> {
    let max = MAX_HOLD.as_secs();
    let expected = format!("expected seconds=N with N a number of seconds, more than 0 and at most {max}");
    let mut seconds = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("seconds", v) if seconds.is_none() => seconds = Some(v),
            ("seconds", _) => return Err(format!("seconds given twice; {expected}")),
            (k, _) => return Err(format!("unknown parameter {k:?}; {expected}")),
        }
    }
    let raw = seconds.ok_or_else(|| format!("missing seconds; {expected}"))?;
    match raw.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= MAX_HOLD.as_secs_f64() => Ok(s),
        _ => Err(format!("invalid seconds={raw:?}: {expected}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Loopback answers take milliseconds; the limit only ends a hung test.
    const PATIENCE: Duration = Duration::from_secs(30);

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
            source: Source::Encode,
            playlist_url: "http://x/stream.m3u8".into(),
            ready: AtomicBool::new(false),
            board,
            hold: Hold::default(),
            hls_addr: "127.0.0.1:9".parse().unwrap(),
            faults_dir: None,
            variants: Vec::new(),
            segment_fault: std::sync::Mutex::new(None),
            llhls: std::sync::OnceLock::new(),
        });
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), facts.clone()).await.unwrap();
        let r = crate::http::get(addr, "/health", PATIENCE).await.unwrap();
        assert_eq!(r.status, 503);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["status"], "starting");
        assert_eq!(v["instance"], "1-x");
        assert_eq!(v["children"]["ffmpeg"]["pid"], 42);
        assert_eq!(v["children"]["ffmpeg"]["state"], "running");
        facts.ready.store(true, Ordering::Release);
        let r = crate::http::get(addr, "/health", PATIENCE).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let missing = crate::http::get(addr, "/nope", PATIENCE).await.unwrap();
        assert_eq!(missing.status, 404);
        let hold = crate::http::request(addr, "POST", "/hold?seconds=5", PATIENCE).await.unwrap();
        assert_eq!(hold.status, 409, "the encode source cannot hold");
        let v: serde_json::Value = serde_json::from_slice(&hold.body).unwrap();
        let e = v["error"].as_str().unwrap();
        assert!(e.starts_with("cannot hold the encode source: only the replay source"), "{e}");
        task.abort();
    }

    fn replay_facts() -> Facts {
        Facts {
            instance: "1-x".into(),
            profile: "low-latency".into(),
            source: Source::Replay,
            playlist_url: "http://x/stream.m3u8".into(),
            ready: AtomicBool::new(true),
            board: Board::default(),
            hold: Hold::default(),
            hls_addr: "127.0.0.1:9".parse().unwrap(),
            faults_dir: None,
            variants: Vec::new(),
            segment_fault: std::sync::Mutex::new(None),
            llhls: std::sync::OnceLock::new(),
        }
    }

    #[tokio::test]
    async fn post_hold_holds_the_replay_source_and_reports_when_it_ends() {
        let facts = replay_facts();
        let before = unix_ms(Instant::now());
        let r = route("POST", "/hold?seconds=2.5", &facts).await;
        let after = unix_ms(Instant::now());
        assert_eq!(r.status, "200 OK", "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["seconds"], 2.5);
        let ends = v["ends_unix_ms"].as_u64().unwrap();
        // 2.5 s after the call, which lies between the two readings (±1 ms of rounding).
        assert!(
            before + 2500 <= ends + 1 && ends <= after + 2500 + 1,
            "{ends}: called between {before} and {after}"
        );
        assert!(facts.hold.ends().is_some());
        let (_, health) = facts.report();
        let h: serde_json::Value = serde_json::from_str(&health).unwrap();
        let reported = h["hold_ends_unix_ms"].as_u64().unwrap();
        assert!(reported.abs_diff(ends) <= 1, "two readings of one instant: {reported} vs {ends}");
        assert_eq!(h["source"], "replay");

        let get = route("GET", "/hold?seconds=1", &facts).await;
        assert_eq!((get.status, get.allow), ("405 Method Not Allowed", Some("POST")));
        assert_eq!(route("POST", "/health", &facts).await.allow, Some("GET, HEAD"));
    }

    /// Facts of an LL-HLS origin with fault injection: a ladder of two renditions of a loop
    /// without media (the switches do not need any).
    fn llhls_facts() -> Facts {
        use crate::llhls::source::testing::synthetic;
        use crate::llhls::{Ladder, Live, Rendition, Stream};
        let live = || Live::new(Arc::new(synthetic(&[6, 6, 6, 6], 5120, 15360)), 10);
        let top = Stream::new(live(), 3);
        let low = Stream::sharing_clock(live(), &top);
        let rendition = |name: &str, stream| Rendition {
            name: name.into(),
            stream: Arc::new(stream),
            bandwidth: 1_000_000,
            resolution: (320, 180),
        };
        let ladder = Ladder::new(vec![rendition("top", top), rendition("low", low)]).unwrap();
        let facts =
            Facts { profile: "ll-hls-abr".into(), faults_dir: Some("/nonexistent".into()), ..replay_facts() };
        facts.llhls.set(Arc::new(ladder)).unwrap();
        facts
    }

    #[tokio::test]
    async fn ll_hls_switches_act_on_every_rendition_and_delete_clears_them_all() {
        let facts = llhls_facts();
        let ladder = facts.llhls.get().unwrap().clone();
        let r =
            route("POST", "/fault/ll-hls?slow=2&bad_hints=3&backwards=4&short_hold_back=on", &facts).await;
        assert_eq!(r.status, "200 OK", "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"slow": 2, "bad_hints": 3, "backwards": 4, "short_hold_back": true})
        );
        for rendition in ladder.renditions() {
            let f = &rendition.stream.faults;
            assert_eq!((f.slow_reloads(), f.bad_hints(), f.backwards()), (2, 3, 4), "{}", rendition.name);
            assert!(f.part_hold_back_short() && !f.reloads_early(), "{}", rendition.name);
        }
        let r = route("POST", "/fault/ll-hls?early=on&missing=1", &facts).await;
        assert_eq!(r.status, "200 OK", "{}", r.body);

        let r = route("DELETE", "/fault/ll-hls", &facts).await;
        assert_eq!(r.status, "200 OK", "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["slow"], 0);
        assert_eq!(v["short_hold_back"], false);
        for rendition in ladder.renditions() {
            let f = &rendition.stream.faults;
            assert_eq!((f.slow_reloads(), f.bad_hints(), f.backwards()), (0, 0, 0), "{}", rendition.name);
            assert!(!f.part_hold_back_short() && !f.reloads_early(), "{}", rendition.name);
            assert!(f.missing().is_empty(), "{}", rendition.name);
        }

        let get = route("GET", "/fault/ll-hls", &facts).await;
        assert_eq!((get.status, get.allow), ("405 Method Not Allowed", Some("POST, DELETE")));
        assert!(get.body.contains(LLHLS_SWITCHES), "{}", get.body);
    }

    #[tokio::test]
    async fn http_faults_on_ll_hls_go_to_its_server_for_every_rendition() {
        let facts = llhls_facts();
        let ladder = facts.llhls.get().unwrap().clone();
        let r = route("POST", "/fault/http?status=503&from=5&to=6", &facts).await;
        assert_eq!(r.status, "200 OK", "{}", r.body);
        for rendition in ladder.renditions() {
            let f = &rendition.stream.faults;
            let by_msn: Vec<Option<u16>> = (4..=7).map(|m| f.failed(m)).collect();
            assert_eq!(by_msn, [None, Some(503), Some(503), None], "{}", rendition.name);
        }
        let health = route("GET", "/health", &facts).await;
        assert!(health.body.contains("503 for segments 5..=6"), "{}", health.body);
        let bad = route("POST", "/fault/http?status=418&from=5&to=6", &facts).await;
        assert_eq!(bad.status, "400 Bad Request", "{}", bad.body);
        assert_eq!(ladder.first().faults.failed(5), Some(503), "a refused fault changes nothing");
        let r = route("DELETE", "/fault/http", &facts).await;
        assert_eq!(r.status, "200 OK", "{}", r.body);
        for rendition in ladder.renditions() {
            assert_eq!(rendition.stream.faults.failed(5), None, "{}", rendition.name);
        }
    }

    #[tokio::test]
    async fn ll_hls_switches_refuse_bad_values_naming_the_value_and_apply_nothing() {
        let facts = llhls_facts();
        for (query, says) in [
            ("slow=11", "invalid slow=\"11\": expected a whole number of blocking reloads, 0 to 10"),
            ("slow=-1", "invalid slow=\"-1\": expected a whole number of blocking reloads, 0 to 10"),
            ("bad_hints=x", "invalid bad_hints=\"x\": expected a whole number of playlists, 0 to 100"),
            ("backwards=101", "invalid backwards=\"101\": expected a whole number of playlists, 0 to 100"),
            ("short_hold_back=yes", "invalid short_hold_back=\"yes\": expected on or off"),
            ("missing=101", "invalid missing=\"101\": expected a whole number of parts, 0 to 100"),
            ("early=1", "invalid early=\"1\": expected on or off"),
            ("", "expected one or more of missing=N&early=on|off&slow=N&bad_hints=N&backwards=N"),
            ("hints=1", "unknown parameter \"hints\"; expected missing, early, slow, bad_hints"),
            ("slow=1&slow=2", "slow given twice"),
            // One bad value: none of the good ones applies either.
            ("slow=1&backwards=1&short_hold_back=maybe", "short_hold_back=\"maybe\""),
        ] {
            let r = route("POST", &format!("/fault/ll-hls?{query}"), &facts).await;
            assert_eq!(r.status, "400 Bad Request", "{query}: {}", r.body);
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            let e = v["error"].as_str().unwrap();
            assert!(e.contains(says), "{query}: {e}");
        }
        let f = &facts.llhls.get().unwrap().first().faults;
        assert_eq!((f.slow_reloads(), f.bad_hints(), f.backwards()), (0, 0, 0));
        assert!(!f.part_hold_back_short());

        // Not an LL-HLS origin, or no fault injection: 409.
        let plain = Facts { faults_dir: Some("/nonexistent".into()), ..replay_facts() };
        assert_eq!(route("POST", "/fault/ll-hls?slow=1", &plain).await.status, "409 Conflict");
        let off = Facts { faults_dir: None, ..llhls_facts() };
        assert_eq!(route("POST", "/fault/ll-hls?slow=1", &off).await.status, "409 Conflict");
    }

    #[tokio::test]
    async fn post_hold_rejects_bad_seconds_naming_the_value() {
        let facts = replay_facts();
        for (query, names) in [
            ("seconds=0", "seconds=\"0\""),
            ("seconds=-1", "seconds=\"-1\""),
            ("seconds=600.5", "seconds=\"600.5\""),
            ("seconds=abc", "seconds=\"abc\""),
            ("seconds=NaN", "seconds=\"NaN\""),
            ("seconds=inf", "seconds=\"inf\""),
            ("seconds=", "seconds=\"\""),
            ("", "missing seconds"),
            ("secs=5", "unknown parameter \"secs\""),
            ("seconds=1&seconds=2", "seconds given twice"),
        ] {
            let r = route("POST", &format!("/hold?{query}"), &facts).await;
            assert_eq!(r.status, "400 Bad Request", "{query}: {}", r.body);
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            let e = v["error"].as_str().unwrap();
            assert!(e.contains(names), "{query}: {e}");
            assert!(e.ends_with("more than 0 and at most 600"), "{query}: {e}");
        }
        assert!(facts.hold.ends().is_none(), "a refused hold holds nothing");
        assert_eq!(route("POST", "/hold?seconds=600", &facts).await.status, "200 OK");
        assert_eq!(route("POST", "/hold?seconds=0.1", &facts).await.status, "200 OK");
    }
}
