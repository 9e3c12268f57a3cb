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

    /// Property tests: any line parses without panic into events that only quote it, and the
    /// splitter gives the same lines however the stream is cut. `PROPTEST_CASES` sets the
    /// number of cases (`make fuzz`: many); no regression files are written (a case found is
    /// kept as a plain test here).
    mod props {
        use proptest::collection::vec;
        use proptest::prelude::*;
        use proptest::sample::{select, Index};
        use proptest::test_runner::{Config, RngSeed};

        use super::*;

        /// 256 cases from a fixed seed, or `PROPTEST_CASES` from a new one; no regression files.
        fn config() -> Config {
            let rng_seed = if std::env::var_os("PROPTEST_CASES").is_some() {
                RngSeed::Random
            } else {
                RngSeed::Fixed(18)
            };
            Config { cases: 256, failure_persistence: None, rng_seed, ..Config::default() }
        }

        /// A line of the real capture, cut and edited: bytes inserted (prefix brackets, quotes,
        /// level tags, line breaks), deleted or replaced.
        fn mutated_line() -> impl Strategy<Value = String> {
            const TOKENS: &[&str] = &[
                "[",
                "] ",
                " @ ",
                "'",
                "[info] ",
                "[error] ",
                "[warning] ",
                "[tcp @ 0x1] ",
                "[tls @ 0x1] ",
                "Opening '",
                "' for reading",
                "HTTP error ",
                " failed: ",
                "Failed to open segment",
                "\r",
                "\n",
                "é",
                "\u{fffd}",
                "99999999999",
            ];
            let lines: Vec<&'static str> = CAPTURE.lines().filter(|l| !l.is_empty()).collect();
            let edit =
                (any::<Index>(), 0..4usize, prop_oneof![select(TOKENS).prop_map(str::to_owned), ".{0,4}"]);
            (select(lines), vec(edit, 0..6)).prop_map(|(line, edits)| {
                let mut b = line.as_bytes().to_vec();
                for (at, delete, insert) in edits {
                    let at = at.index(b.len() + 1);
                    b.splice(at..(at + delete).min(b.len()), insert.bytes());
                }
                String::from_utf8_lossy(&b).into_owned()
            })
        }

        /// A stream: arbitrary bytes, the capture's own bytes, and lines longer than `MAX_LINE`.
        fn stream() -> impl Strategy<Value = Vec<u8>> {
            const BREAKS: &[&[u8]] = &[b"\r", b"\n", b"\r\n", b"\xc3", b"\xa9"];
            let piece = prop_oneof![
                vec(any::<u8>(), 0..64),
                (any::<Index>(), 0..512usize).prop_map(|(at, n)| {
                    let at = at.index(CAPTURE.len());
                    CAPTURE.as_bytes()[at..(at + n).min(CAPTURE.len())].to_vec()
                }),
                (select(&[b'x', 0xc3, 0xa9, b'\r', b'\n'][..]), MAX_LINE - 4..MAX_LINE + 4)
                    .prop_map(|(b, n)| vec![b; n]),
                select(BREAKS).prop_map(<[u8]>::to_vec),
            ];
            vec(piece, 0..12).prop_map(|p| p.concat())
        }

        /// The lines of `bytes` by definition: split on `\r` and `\n`, empty ones skipped, each
        /// cut to `MAX_LINE` bytes, decoded lossily.
        fn lines_of(bytes: &[u8]) -> Vec<String> {
            bytes
                .split(|&b| b == b'\r' || b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| String::from_utf8_lossy(&l[..l.len().min(MAX_LINE)]).into_owned())
                .collect()
        }

        fn split(bytes: &[u8], cuts: &[Index]) -> Vec<String> {
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            at.extend([0, bytes.len()]);
            at.sort_unstable();
            let mut s = LineSplitter::default();
            let mut lines = Vec::new();
            for w in at.windows(2) {
                s.feed(&bytes[w[0]..w[1]], |l| lines.push(l.to_owned()));
            }
            s.finish(|l| lines.push(l.to_owned()));
            lines
        }

        /// What an event quotes of its line fits in it.
        fn quoted_len(e: &LogEvent) -> usize {
            match e {
                LogEvent::Request { url, .. } => url.len(),
                LogEvent::NetworkError { reason } => reason.len(),
                LogEvent::Problem { message, .. } => message.len(),
                LogEvent::HttpError { .. } | LogEvent::SegmentSkipped => 0,
            }
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_line_parses_without_panic_into_what_it_quotes(
                line in prop_oneof![vec(any::<char>(), 0..200).prop_map(String::from_iter), mutated_line()],
            ) {
                let (_, _, message) = split_prefix(&line);
                prop_assert!(message.len() <= line.len());
                if let Some(e) = parse_line(&line) {
                    prop_assert!(quoted_len(&e) <= line.len(), "{:?} from {:?}", e, line);
                }
            }

            #[test]
            fn any_stream_in_any_split_gives_the_lines_it_holds(bytes in stream(), cuts in vec(any::<Index>(), 0..8)) {
                let whole = split(&bytes, &[]);
                prop_assert_eq!(&whole, &lines_of(&bytes));
                prop_assert_eq!(split(&bytes, &cuts), whole);
            }
        }
    }
}
