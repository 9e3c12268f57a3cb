//! FFmpeg's stderr, turned into typed events.
//!
//! Viewers run with `-loglevel repeat+level+info` (`warning` when a relay measures the
//! requests), so every line looks like
//! `[hls @ 0x55…] [info] Opening 'http://…/seg00017.ts' for reading` or `[error] message`.
//! Lines end in `\n` or, for FFmpeg's status line, `\r`: [`LineSplitter`] splits on both so
//! that two messages never merge. [`parse_line`] is a pure function over one line.
//!
//! What the log can tell is limited: a request's start (`Opening '…'`), HTTP errors and
//! connection failures — never a download's end, its duration or its size. Figures derived
//! from it are inferred; exact ones come from the observing relay.

use crate::measure::events::RequestKind;

/// Longest line kept; FFmpeg's lines are short, anything longer is cut here.
pub const MAX_LINE: usize = 4096;

/// Splits a byte stream into lines on `\n`, `\r` or `\r\n`, skipping empty lines.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    overflow: bool,
}

impl LineSplitter {
    /// Feeds a chunk and calls `emit` for each complete line.
    pub fn feed(&mut self, chunk: &[u8], mut emit: impl FnMut(&str)) {
        for &b in chunk {
            if b == b'\n' || b == b'\r' {
                self.flush(&mut emit);
            } else if self.buf.len() < MAX_LINE {
                self.buf.push(b);
            } else {
                self.overflow = true;
            }
        }
    }

    /// Emits a last line that had no terminator (at end of stream).
    pub fn finish(&mut self, mut emit: impl FnMut(&str)) {
        self.flush(&mut emit);
    }

    fn flush(&mut self, emit: &mut impl FnMut(&str)) {
        if !self.buf.is_empty() {
            let line = String::from_utf8_lossy(&self.buf);
            emit(&line);
        }
        self.buf.clear();
        self.overflow = false;
    }
}

/// FFmpeg's log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `[trace]`
    Trace,
    /// `[debug]`
    Debug,
    /// `[verbose]`
    Verbose,
    /// `[info]`
    Info,
    /// `[warning]`
    Warning,
    /// `[error]`
    Error,
    /// `[fatal]`
    Fatal,
    /// `[panic]`
    Panic,
}

impl LogLevel {
    fn parse(tag: &str) -> Option<LogLevel> {
        Some(match tag {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "verbose" => LogLevel::Verbose,
            "info" => LogLevel::Info,
            "warning" => LogLevel::Warning,
            "error" => LogLevel::Error,
            "fatal" => LogLevel::Fatal,
            "panic" => LogLevel::Panic,
            _ => return None,
        })
    }
}

/// One meaningful line of FFmpeg's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    /// FFmpeg started a request (`Opening '<url>' for reading`).
    Request {
        /// What was requested.
        kind: RequestKind,
        /// The URL.
        url: String,
    },
    /// The server answered with an HTTP error status.
    HttpError {
        /// The status code.
        status: u16,
    },
    /// A TCP/TLS connection failed or timed out.
    NetworkError {
        /// FFmpeg's reason, e.g. `Connection refused`.
        reason: String,
    },
    /// A segment could not be fetched and was skipped.
    SegmentSkipped,
    /// Any other line at warning level or above.
    Problem {
        /// Its level.
        level: LogLevel,
        /// The message without prefixes.
        message: String,
    },
}

/// Splits `[ctx @ 0x…] [level] message` into (context class, level, message).
#[must_use]
pub fn split_prefix(line: &str) -> (Option<&str>, Option<LogLevel>, &str) {
    let mut rest = line.trim_start();
    let mut class = None;
    if let Some(r) = rest.strip_prefix('[') {
        if let Some((inside, after)) = r.split_once("] ") {
            if let Some((c, _addr)) = inside.split_once(" @ ") {
                class = Some(c);
                rest = after;
            }
        }
    }
    let mut level = None;
    if let Some(r) = rest.strip_prefix('[') {
        if let Some((tag, after)) = r.split_once("] ") {
            if let Some(l) = LogLevel::parse(tag) {
                level = Some(l);
                rest = after;
            }
        }
    }
    (class, level, rest)
}

/// Parses one line; `None` for lines that carry nothing we count.
#[must_use]
pub fn parse_line(line: &str) -> Option<LogEvent> {
    let (class, level, msg) = split_prefix(line);
    if let Some(rest) = msg.strip_prefix("Opening '") {
        if let Some(url) = rest.strip_suffix("' for reading") {
            return Some(LogEvent::Request { kind: RequestKind::of_url(url), url: url.to_owned() });
        }
    }
    if let Some(rest) = msg.strip_prefix("HTTP error ") {
        if let Some(status) = rest.split_whitespace().next().and_then(|s| s.parse().ok()) {
            return Some(LogEvent::HttpError { status });
        }
    }
    if class == Some("tcp") || class == Some("tls") {
        if let Some((_, reason)) = msg.split_once(" failed: ") {
            return Some(LogEvent::NetworkError { reason: reason.to_owned() });
        }
    }
    if msg.starts_with("Failed to open segment") {
        return Some(LogEvent::SegmentSkipped);
    }
    match level {
        Some(l) if l >= LogLevel::Warning => Some(LogEvent::Problem { level: l, message: msg.to_owned() }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPTURE: &str = include_str!("../../../testdata/ffmpeg-5.1-live-viewer.log");

    #[test]
    fn splits_on_cr_and_lf() {
        let mut s = LineSplitter::default();
        let mut lines = Vec::new();
        s.feed(b"a\rb\r\nc\n\nd", |l| lines.push(l.to_owned()));
        s.finish(|l| lines.push(l.to_owned()));
        assert_eq!(lines, ["a", "b", "c", "d"]);
    }

    #[test]
    fn split_across_chunks_and_long_lines_are_cut() {
        let mut s = LineSplitter::default();
        let mut lines = Vec::new();
        s.feed(b"hel", |l| lines.push(l.to_owned()));
        s.feed(b"lo\n", |l| lines.push(l.to_owned()));
        s.feed(&vec![b'x'; MAX_LINE + 10], |l| lines.push(l.to_owned()));
        s.feed(b"\nnext\n", |l| lines.push(l.to_owned()));
        assert_eq!(lines.len(), 3, "the cut-off rest is dropped, not a line of its own");
        assert_eq!(lines[0], "hello");
        assert_eq!(lines[1], "x".repeat(MAX_LINE));
        assert_eq!(lines[2], "next", "the line after a long one is whole");
    }

    #[test]
    fn prefix_forms() {
        assert_eq!(
            split_prefix("[hls @ 0x55cf05e72ac0] [info] Opening 'x' for reading"),
            (Some("hls"), Some(LogLevel::Info), "Opening 'x' for reading")
        );
        assert_eq!(
            split_prefix("[error] http://h/x: boom"),
            (None, Some(LogLevel::Error), "http://h/x: boom")
        );
        assert_eq!(split_prefix("plain"), (None, None, "plain"));
    }

    #[test]
    fn request_kinds() {
        assert_eq!(RequestKind::of_url("http://h/a/stream.m3u8?token=1"), RequestKind::Playlist);
        assert_eq!(RequestKind::of_url("http://h/seg00001.ts"), RequestKind::Segment);
        assert_eq!(RequestKind::of_url("http://h/v/chunk.m4s#x"), RequestKind::Segment);
    }

    #[test]
    fn error_lines() {
        assert_eq!(
            parse_line("[http @ 0x55cb40f1b100] [warning] HTTP error 404 Not Found"),
            Some(LogEvent::HttpError { status: 404 })
        );
        assert_eq!(
            parse_line(
                "[tcp @ 0x561d9eb2ffc0] [error] Connection to tcp://127.0.0.1:1 failed: Connection refused"
            ),
            Some(LogEvent::NetworkError { reason: "Connection refused".into() })
        );
        assert_eq!(
            parse_line("[hls @ 0x5579f1dca900] [warning] Failed to open segment 1 of playlist 0"),
            Some(LogEvent::SegmentSkipped)
        );
        assert_eq!(parse_line("[info]   Stream #0:0: Video: h264"), None);
    }

    /// A real capture: one FFmpeg 5.1.9 viewer on a live 2 s-segment stream for about 20 s,
    /// stderr with the status line left in (so `\r` terminators occur).
    #[test]
    fn real_capture_counts_every_refresh_and_segment() {
        let mut s = LineSplitter::default();
        let mut playlists = 0;
        let mut segments = 0;
        let mut problems = 0;
        let mut feed = |l: &str| match parse_line(l) {
            Some(LogEvent::Request { kind: RequestKind::Playlist, .. }) => playlists += 1,
            Some(LogEvent::Request { kind: RequestKind::Segment, .. }) => segments += 1,
            Some(_) => problems += 1,
            None => {}
        };
        s.feed(CAPTURE.as_bytes(), &mut feed);
        s.finish(&mut feed);
        let raw_segments = CAPTURE.matches(".ts' for reading").count();
        let raw_playlists = CAPTURE.matches(".m3u8' for reading").count();
        assert!(
            raw_segments >= 10 && raw_playlists >= 5,
            "capture too short: {raw_segments} {raw_playlists}"
        );
        assert_eq!(segments, raw_segments);
        assert_eq!(playlists, raw_playlists, "refreshes over kept-alive connections ([http @]) count too");
        assert_eq!(problems, 0);
    }
}
