//! `--report FILE.ndjson` (or `.jsonl`): the event log, one JSON object per line, written
//! while the run goes on.
//!
//! A thread of its own takes the fold's [`Record`]s from a bounded channel, renders each as
//! one line (URLs with their secrets hidden, then the whole line through [`Secrets::text`]),
//! and writes them, flushed at least every [`FLUSH_EVERY`] so `tail -f` follows the run. The
//! first line (`type: "run"`) gives the run's facts; the last says whether the log is whole
//! (`type: "end"`) or not (`type: "truncated"`: how many events were dropped, and why). Once
//! the lines would pass `--events-max-size`, the rest are counted, not written. Nothing here
//! can slow the viewers: the fold only ever tries to queue a record. A write error ends the
//! writing (the run goes on) and is reported when the run ends.

use std::borrow::Cow;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::engine::secrets::Secrets;
use crate::measure::events::{Problem, Request};
use crate::measure::shard::Shard;
use crate::measure::trail::{Record, What};
use crate::output::summary::bytes;

/// Longest time a written line waits in the writer's buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// `--events-max-size` unless given: 1 GiB.
pub const DEFAULT_MAX_SIZE: u64 = 1 << 30;

/// The run's facts, the log's first line.
#[derive(Debug, Clone, Serialize)]
pub struct RunLine {
    /// `hls-swarm`'s version.
    pub version: &'static str,
    /// `--run-id`.
    pub run_id: String,
    /// `ffmpeg` or `native`.
    pub engine: &'static str,
    /// How requests are measured: `relay`, `log` (inferred from FFmpeg's log) or `native`.
    pub measure: &'static str,
    /// Viewers of the whole run (`--clients`).
    pub clients: u32,
    /// This process's viewers: the fleet's numbers `first_viewer` onwards.
    pub viewers: u32,
    /// The fleet's number of this process's first viewer (0 unless `--shard`).
    pub first_viewer: u32,
    /// `--shard`, if given.
    pub shard: Option<Shard>,
    /// The streams, secrets hidden; a line's `stream` is an index into this list.
    pub streams: Vec<String>,
    /// `--events-max-size` in bytes.
    pub max_size_bytes: u64,
}

/// What the event log came to, for the summary and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The file.
    pub path: PathBuf,
    /// Lines written, the first and last included.
    pub lines: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Events not written because the log had reached `--events-max-size`.
    pub over_size: u64,
    /// Events dropped because the writer was behind (its queue was full).
    pub behind: u64,
    /// `--events-max-size` in bytes.
    pub max_bytes: u64,
    /// Why the file could not be written, and how many events were lost with it.
    pub error: Option<(String, u64)>,
}

impl Written {
    /// Events dropped: over the size bound or behind.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.over_size + self.behind
    }
}

impl Written {
    /// Why the file could not be written and how much was lost, or `None`.
    #[must_use]
    pub fn failure(&self) -> Option<String> {
        self.error.as_ref().map(|(why, lost)| format!("{why} ({lost} events not written)"))
    }
}

/// The summary's line about the event log.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn summary_line(w: &Written) -> String {
    let path = w.path.display();
    if let Some(failure) = w.failure() {
        return format!("Event log         FAILED: cannot write '{path}': {failure}\n");
    }
    let mut line = format!("Event log         {} lines, {}: {path}", w.lines, bytes(w.bytes as f64));
    if w.dropped() > 0 {
        line.push_str(&format!("\n                  INCOMPLETE: {}", dropped(w)));
    }
    line.push('\n');
    line
}

/// The notice the run's report keeps when the log is not whole.
#[must_use]
pub fn notice(w: &Written) -> Option<String> {
    match w.failure() {
        Some(failure) => Some(format!("event log: cannot write '{}': {failure}", w.path.display())),
        None => (w.dropped() > 0).then(|| format!("event log: {}", dropped(w))),
    }
}

#[allow(clippy::cast_precision_loss)]
fn dropped(w: &Written) -> String {
    let mut why = Vec::new();
    if w.over_size > 0 {
        why.push(format!("{} over --events-max-size {}", w.over_size, bytes(w.max_bytes as f64)));
    }
    if w.behind > 0 {
        why.push(format!("{} while the writer was behind", w.behind));
    }
    format!("{} events dropped ({})", w.dropped(), why.join(", "))
}

/// The running event log.
#[derive(Debug)]
pub struct EventLog {
    thread: std::thread::JoinHandle<Written>,
}

/// Where the log goes and how.
#[derive(Debug, Clone)]
pub struct Target {
    /// The file.
    pub path: PathBuf,
    /// `--events-max-size` in bytes.
    pub max_bytes: u64,
    /// The run's secrets, hidden from every line.
    pub secrets: Secrets,
    /// The run's start, on both clocks: `t` counts from the first, `wall` is the second plus `t`.
    pub started: (Instant, SystemTime),
}

impl EventLog {
    /// Starts writing `run` and then every record of `records` to `target`; `behind` counts the
    /// records the fold could not queue.
    ///
    /// # Errors
    /// The writer's thread cannot be started.
    pub fn start(
        target: Target,
        run: RunLine,
        records: mpsc::Receiver<Record>,
        behind: Arc<AtomicU64>,
    ) -> std::io::Result<EventLog> {
        let thread = std::thread::Builder::new()
            .name("event-log".into())
            .spawn(move || write_all(&target, &run, &records, &behind))?;
        Ok(EventLog { thread })
    }

    /// Waits for the writer (every sender gone, so it ends) and returns what it wrote.
    pub async fn finish(self) -> Written {
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }
}

/// The writer: every line of the log, until the channel closes.
fn write_all(
    target: &Target,
    run: &RunLine,
    records: &mpsc::Receiver<Record>,
    behind: &AtomicU64,
) -> Written {
    let mut w = Writer {
        out: None,
        written: Written {
            path: target.path.clone(),
            lines: 0,
            bytes: 0,
            over_size: 0,
            behind: 0,
            max_bytes: target.max_bytes,
            error: None,
        },
    };
    match std::fs::File::create(&target.path) {
        Ok(f) => w.out = Some(std::io::BufWriter::with_capacity(1 << 16, f)),
        Err(e) => w.written.error = Some((e.to_string(), 0)),
    }
    let head = Head { kind: "run", t: 0.0, wall: wall(target.started.1, Duration::ZERO) };
    w.line(&target.secrets.text(&json_line(head, None, run)), false);
    let mut flushed = Instant::now();
    loop {
        match records.recv_timeout(FLUSH_EVERY) {
            Ok(r) => {
                let text = render(&r, target);
                w.line(&text, false);
                if flushed.elapsed() >= FLUSH_EVERY {
                    w.flush();
                    flushed = Instant::now();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                w.flush();
                flushed = Instant::now();
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // Every sender is gone: the count of records dropped behind is final.
    w.written.behind = behind.load(Ordering::Relaxed);
    let at = target.started.0.elapsed();
    let head = Head { kind: "end", t: seconds(at), wall: wall(target.started.1, at) };
    let last = if w.written.dropped() == 0 {
        json_line(head, None, End { lines: w.written.lines })
    } else {
        let head = Head { kind: "truncated", ..head };
        let d = &w.written;
        let truncated = Truncated {
            lines: d.lines,
            dropped: d.dropped(),
            dropped_over_max_size: d.over_size,
            dropped_writer_behind: d.behind,
            max_size_bytes: d.max_bytes,
        };
        json_line(head, None, truncated)
    };
    w.line(&last, true);
    if let Some(mut out) = w.out.take() {
        let synced = out.flush().and_then(|()| out.get_ref().sync_all());
        if let Err(e) = synced {
            w.written.error = Some((e.to_string(), 0));
        }
    }
    w.written
}

/// The file and what has gone into it.
struct Writer {
    out: Option<std::io::BufWriter<std::fs::File>>,
    written: Written,
}

impl Writer {
    /// Writes `text` and a newline, unless the bound is reached (the `last` line is written
    /// anyway) or the file failed.
    fn line(&mut self, text: &str, last: bool) {
        let size = text.len() as u64 + 1;
        // Once the bound is reached (a line was dropped for it), only the last line is written.
        let w = &mut self.written;
        if !last && (w.over_size > 0 || w.bytes + size > w.max_bytes) {
            w.over_size += 1;
            return;
        }
        let Some(out) = self.out.as_mut() else {
            if let Some((_, lost)) = self.written.error.as_mut() {
                *lost += u64::from(!last);
            }
            return;
        };
        match out.write_all(text.as_bytes()).and_then(|()| out.write_all(b"\n")) {
            Ok(()) => {
                self.written.lines += 1;
                self.written.bytes += size;
            }
            Err(e) => {
                self.written.error = Some((e.to_string(), u64::from(!last)));
                self.out = None;
            }
        }
    }

    fn flush(&mut self) {
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = out.flush() {
                self.written.error = Some((e.to_string(), 0));
                self.out = None;
            }
        }
    }
}

/// What every line starts with.
#[derive(Debug, Serialize)]
struct Head {
    #[serde(rename = "type")]
    kind: &'static str,
    /// Seconds since the run's start.
    t: f64,
    /// The run's start on the wall clock plus `t` (RFC 3339, UTC).
    wall: String,
}

#[derive(Debug, Serialize)]
struct End {
    lines: u64,
}

#[derive(Debug, Serialize)]
struct Truncated {
    lines: u64,
    dropped: u64,
    dropped_over_max_size: u64,
    dropped_writer_behind: u64,
    max_size_bytes: u64,
}

/// Where a line comes from.
#[derive(Debug, Serialize)]
struct Who {
    viewer: u32,
    stream: u16,
}

#[derive(Debug, Serialize)]
struct RequestLine<'a> {
    kind: &'static str,
    url: Cow<'a, str>,
    measured: bool,
    status: Option<u16>,
    bytes: Option<u64>,
    ttfb_s: Option<f64>,
    duration_s: Option<f64>,
    complete: Option<bool>,
    connect_s: Option<f64>,
    protocol: Option<&'static str>,
    media_s: Option<f64>,
    error: Option<&'static str>,
    error_detail: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct StateLine<'a> {
    from: &'static str,
    to: &'static str,
    reason: Option<&'a str>,
    delay_s: Option<f64>,
}

#[derive(Debug, Serialize)]
struct ProblemLine<'a> {
    error: &'static str,
    status: Option<u16>,
    error_detail: Option<&'a str>,
}

/// One record as its line, secrets hidden.
fn render(r: &Record, target: &Target) -> String {
    let head = |kind| Head { kind, t: seconds(r.at), wall: wall(target.started.1, r.at) };
    let who = Who { viewer: r.viewer, stream: r.stream };
    let text = match &r.what {
        What::Request(q) => json_line(head("request"), Some(who), request_line(q, &target.secrets)),
        What::State { from, to, reason, delay } => {
            let line = StateLine {
                from: from.label(),
                to: to.label(),
                reason: reason.as_deref(),
                delay_s: delay.map(seconds),
            };
            json_line(head("state"), Some(who), line)
        }
        What::Problem(p) => {
            let line = match p {
                Problem::HttpStatus(s) => {
                    ProblemLine { error: status_class(*s), status: Some(*s), error_detail: None }
                }
                Problem::Network(why) => {
                    ProblemLine { error: "network", status: None, error_detail: Some(why) }
                }
                Problem::SegmentSkipped => {
                    ProblemLine { error: "segment_skipped", status: None, error_detail: None }
                }
                Problem::Unreadable(why) => {
                    ProblemLine { error: "unreadable", status: None, error_detail: Some(why) }
                }
            };
            json_line(head("problem"), Some(who), line)
        }
    };
    // The URLs are shown redacted already; this is the last line of defence.
    target.secrets.text(&text).into_owned()
}

fn request_line<'a>(q: &'a Request, secrets: &Secrets) -> RequestLine<'a> {
    let url = url::Url::parse(&q.url).map_or(Cow::Borrowed(q.url.as_str()), |u| Cow::Owned(secrets.url(&u)));
    let measured = q.measured;
    let error = match (&q.network_error, q.status) {
        (Some(_), _) => Some("network"),
        (None, Some(s)) if s >= 400 => Some(status_class(s)),
        _ => None,
    };
    RequestLine {
        kind: q.kind.label(),
        url,
        measured,
        status: q.status,
        bytes: measured.then_some(q.bytes),
        ttfb_s: q.ttfb.map(seconds),
        duration_s: measured.then(|| seconds(q.elapsed)),
        complete: measured.then_some(q.ttlb.is_some()),
        connect_s: q.connect.map(seconds),
        protocol: q.protocol.map(crate::measure::events::Protocol::name),
        media_s: q.media_duration.filter(|_| measured),
        error,
        error_detail: q.network_error.as_deref(),
    }
}

fn status_class(status: u16) -> &'static str {
    if status >= 500 {
        "http_5xx"
    } else {
        "http_4xx"
    }
}

/// Seconds, to the microsecond.
#[allow(clippy::cast_precision_loss)]
fn seconds(d: Duration) -> f64 {
    d.as_micros() as f64 / 1e6
}

fn wall(started: SystemTime, at: Duration) -> String {
    humantime::format_rfc3339_micros(started + at).to_string()
}

/// One line: the head, who it is about (records only), and the rest.
#[derive(Debug, Serialize)]
struct Line<T> {
    #[serde(flatten)]
    head: Head,
    #[serde(flatten)]
    who: Option<Who>,
    #[serde(flatten)]
    body: T,
}

/// The line of `body`, after `head` and `who`.
fn json_line<T: Serialize>(head: Head, who: Option<Who>, body: T) -> String {
    serde_json::to_string(&Line { head, who, body }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::events::RequestKind;
    use crate::measure::trail::State;

    fn run_line() -> RunLine {
        RunLine {
            version: "0",
            run_id: "r".into(),
            engine: "native",
            measure: "native",
            clients: 1,
            viewers: 1,
            first_viewer: 0,
            shard: None,
            streams: vec!["http://<redacted>@h/x.m3u8".into()],
            max_size_bytes: 0,
        }
    }

    fn segment(url: &str) -> Request {
        Request {
            status: Some(200),
            bytes: 1000,
            ttfb: Some(Duration::from_millis(2)),
            ttlb: Some(Duration::from_millis(5)),
            elapsed: Duration::from_millis(5),
            measured: true,
            ..Request::inferred(RequestKind::Segment, url.into(), Some(2.0))
        }
    }

    fn write(max_bytes: u64, records: Vec<Record>) -> (Written, Vec<serde_json::Value>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.ndjson");
        let url = url::Url::parse("http://user:hunter22@h/x.m3u8?token=abcdef").unwrap();
        let secrets = Secrets::new(&url, &[], &[]);
        let target =
            Target { path: path.clone(), max_bytes, secrets, started: (Instant::now(), SystemTime::now()) };
        let (tx, rx) = mpsc::sync_channel(1024);
        for r in records {
            tx.send(r).unwrap();
        }
        drop(tx);
        let written = write_all(&target, &run_line(), &rx, &AtomicU64::new(0));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("hunter22") && !text.contains("abcdef"), "{text}");
        let lines = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        (written, lines)
    }

    fn request(at_ms: u64, url: &str) -> Record {
        Record {
            at: Duration::from_millis(at_ms),
            viewer: 3,
            stream: 0,
            what: What::Request(Box::new(segment(url))),
        }
    }

    #[test]
    fn a_whole_log_is_a_run_line_records_and_an_end() {
        let state = Record {
            at: Duration::from_millis(1),
            viewer: 3,
            stream: 0,
            what: What::State { from: State::Waiting, to: State::Starting, reason: None, delay: None },
        };
        let (w, lines) =
            write(1 << 20, vec![state, request(1500, "http://user:hunter22@h/s1.ts?token=abcdef")]);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["type"], "run");
        assert_eq!((lines[1]["type"].as_str(), lines[1]["to"].as_str()), (Some("state"), Some("starting")));
        let r = &lines[2];
        assert_eq!(r["type"], "request");
        assert_eq!(
            (r["t"].as_f64(), r["viewer"].as_u64(), r["kind"].as_str()),
            (Some(1.5), Some(3), Some("segment"))
        );
        assert_eq!(
            (r["status"].as_u64(), r["bytes"].as_u64(), r["ttfb_s"].as_f64()),
            (Some(200), Some(1000), Some(0.002))
        );
        assert_eq!(r["url"], "http://<redacted>@h/s1.ts?token=<redacted>");
        assert!(r["wall"].as_str().is_some_and(|w| w.ends_with('Z')), "{r}");
        assert_eq!((lines[3]["type"].as_str(), lines[3]["lines"].as_u64()), (Some("end"), Some(3)));
        assert_eq!((w.lines, w.dropped(), w.error.clone()), (4, 0, None));
    }

    #[test]
    fn at_the_size_bound_the_rest_is_counted_and_said() {
        let records = (0..50).map(|i| request(i, "http://h/s.ts")).collect();
        let (w, lines) = write(1024, records);
        let last = lines.last().unwrap();
        assert_eq!(last["type"], "truncated");
        assert_eq!(last["dropped"].as_u64(), Some(w.over_size));
        assert_eq!(w.lines + w.over_size, 50 + 2, "every line written or counted");
        assert!(w.over_size > 0 && w.behind == 0);
        assert!(w.bytes - (serde_json::to_string(last).unwrap().len() as u64 + 1) <= 1024, "{w:?}");
    }

    #[test]
    fn a_file_that_cannot_be_created_is_an_error_with_what_it_lost() {
        let target = Target {
            path: PathBuf::from("/nonexistent-dir/e.ndjson"),
            max_bytes: 1 << 20,
            secrets: Secrets::default(),
            started: (Instant::now(), SystemTime::now()),
        };
        let (tx, rx) = mpsc::sync_channel(8);
        tx.send(request(1, "http://h/s.ts")).unwrap();
        drop(tx);
        let w = write_all(&target, &run_line(), &rx, &AtomicU64::new(0));
        let (why, lost) = w.error.expect("an error");
        assert!(why.contains("No such file"), "{why}");
        assert_eq!((lost, w.lines), (2, 0), "the run line and the request");
    }
}
