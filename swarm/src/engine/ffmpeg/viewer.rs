//! The FFmpeg engine for one viewer: each session is one `ffmpeg` process (own process group,
//! parent-death signal, nice 19), its stderr read line by line into events, its requests
//! measured by the viewer's relay when there is one.
//!
//! Translation: with a relay, the relay reports every request exactly and the log adds only
//! skipped segments; without one (`--measure log`), a request line becomes an inferred
//! request (one target duration of media per segment, as the player model's assumption),
//! and HTTP and connection errors become problems. The rest of the log is kept as the
//! session's tail for the event log.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use procgroup::{Exit, Group};
use tokio::io::AsyncReadExt;
use tokio::process::{ChildStderr, Command};
use tokio_util::sync::CancellationToken;

use crate::engine::ffmpeg::log::{parse_line, LineSplitter, LogEvent};
use crate::engine::ffmpeg::relay::{self, Relay, Route};
use crate::engine::secrets::Secrets;
use crate::engine::supervisor::{Engine, Session};
use crate::measure::events::{Ending, EventKind, EventSink, Problem, Request, RequestKind, ViewerId};

/// Viewers run this much nicer than the swarm: on a saturated machine the schedule and the
/// measurements must not queue behind FFmpeg's own CPU use.
pub const VIEWER_NICE: i32 = 19;

/// Log lines kept from a session, for the event log when it fails.
pub const TAIL_LINES: usize = 8;

/// One viewer's FFmpeg engine.
#[derive(Debug)]
pub struct FfmpegEngine {
    id: ViewerId,
    argv: Vec<OsString>,
    spawner: procgroup::Spawner,
    sink: EventSink,
    relay: Option<relay::Running>,
    /// Media seconds credited per segment request when only the log is read.
    assumed_segment: f64,
    /// Hidden from every log line before it is kept or read.
    secrets: Arc<Secrets>,
}

impl FfmpegEngine {
    /// The engine of viewer `id`, running `argv` (program first). With `relay`, the viewer's
    /// relay (already in `argv` as `-http_proxy`) starts serving now and measures every
    /// request; without it, requests are inferred from the log, `assumed_segment` of media
    /// per segment.
    #[must_use]
    pub fn new(
        id: ViewerId,
        argv: Vec<OsString>,
        spawner: procgroup::Spawner,
        sink: EventSink,
        relay: Option<(Relay, Route)>,
        assumed_segment: Duration,
        secrets: Arc<Secrets>,
    ) -> FfmpegEngine {
        let relay = relay.map(|(r, route)| r.serve(id, sink.clone(), route));
        FfmpegEngine {
            id,
            argv,
            spawner,
            sink,
            relay,
            assumed_segment: assumed_segment.as_secs_f64(),
            secrets,
        }
    }
}

impl Engine for FfmpegEngine {
    const NAME: &'static str = "FFmpeg";
    type Session = FfmpegSession;

    async fn start(&mut self) -> Result<FfmpegSession, String> {
        let Some((program, args)) = self.argv.split_first() else {
            return Err("no FFmpeg command".into());
        };
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut group = self
            .spawner
            .spawn(cmd)
            .await
            .map_err(|e| format!("cannot start {}: {e}", program.to_string_lossy()))?;
        let _ = group.lower_priority(VIEWER_NICE);
        let started = group.forked_at();
        let took = started.elapsed();
        let stderr = group.child_mut().stderr.take();
        Ok(FfmpegSession {
            id: self.id,
            group,
            stderr,
            splitter: LineSplitter::default(),
            buf: vec![0u8; 8192],
            tail: VecDeque::with_capacity(TAIL_LINES),
            sink: self.sink.clone(),
            measured: self.relay.is_some(),
            assumed_segment: self.assumed_segment,
            secrets: Arc::clone(&self.secrets),
            started,
            took,
        })
    }

    async fn close(self) {
        // The process is gone, so its connections are closing: collect their last requests.
        if let Some(r) = self.relay {
            r.close().await;
        }
    }
}

/// One FFmpeg process.
#[derive(Debug)]
pub struct FfmpegSession {
    id: ViewerId,
    group: Group,
    stderr: Option<ChildStderr>,
    splitter: LineSplitter,
    buf: Vec<u8>,
    tail: VecDeque<String>,
    sink: EventSink,
    measured: bool,
    assumed_segment: f64,
    secrets: Arc<Secrets>,
    started: Instant,
    took: Duration,
}

impl FfmpegSession {
    /// Keeps `line` for the tail and reports what it says.
    fn line(&mut self, line: &str) {
        let secrets = Arc::clone(&self.secrets);
        let line = secrets.text(line);
        let line = line.as_ref();
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_owned());
        if let Some(kind) = translate(line, self.measured, self.assumed_segment) {
            self.sink.send(self.id, kind);
        }
    }
}

impl Session for FfmpegSession {
    fn started(&self) -> (Instant, Duration) {
        (self.started, self.took)
    }

    async fn ended(&mut self) -> Ending {
        loop {
            let Some(stderr) = self.stderr.as_mut() else {
                let status = self.group.wait().await;
                return ending(status.map_or(Exit::Code(-1), Exit::from));
            };
            match stderr.read(&mut self.buf).await {
                Ok(0) | Err(_) => {
                    let mut lines = Vec::new();
                    self.splitter.finish(|l| lines.push(l.to_owned()));
                    lines.iter().for_each(|l| self.line(l));
                    self.stderr = None;
                }
                Ok(n) => {
                    let mut lines = Vec::new();
                    self.splitter.feed(&self.buf[..n], |l| lines.push(l.to_owned()));
                    lines.iter().for_each(|l| self.line(l));
                }
            }
        }
    }

    async fn stop(&mut self, grace: Duration, kill: &CancellationToken) -> Ending {
        if kill.is_cancelled() {
            return ending(kill_now(&mut self.group).await);
        }
        ending(tokio::select! {
            exit = stop_ffmpeg(&mut self.group, grace) => exit,
            () = kill.cancelled() => kill_now(&mut self.group).await,
        })
    }

    fn tail(&mut self) -> Vec<String> {
        self.tail.drain(..).collect()
    }
}

/// What one log line says, as an event: with `measured` (a relay sees every request) only
/// skipped segments; without, requests as inferred (`assumed_segment` seconds of media per
/// segment) and errors as problems.
fn translate(line: &str, measured: bool, assumed_segment: f64) -> Option<EventKind> {
    Some(match parse_line(line)? {
        LogEvent::Request { kind, url } if !measured => {
            let media = (kind == RequestKind::Segment).then_some(assumed_segment);
            EventKind::Request(Request::inferred(kind, url, media))
        }
        LogEvent::HttpError { status } if !measured => EventKind::Problem(Problem::HttpStatus(status)),
        LogEvent::NetworkError { reason } if !measured => EventKind::Problem(Problem::Network(reason)),
        LogEvent::SegmentSkipped => EventKind::Problem(Problem::SegmentSkipped),
        _ => return None,
    })
}

/// A process exit as a session's ending: the shell's code and FFmpeg's own wording.
fn ending(exit: Exit) -> Ending {
    Ending { code: exit.shell_code(), label: exit.to_string() }
}

/// FFmpeg's stop: SIGTERM, and after a second a second SIGTERM, then SIGKILL at `grace`.
///
/// After its first signal FFmpeg only leaves its main loop between packets; a viewer blocked
/// in a read (a frozen playlist, a stalled server) needs a second signal to abort the I/O
/// and exit cleanly instead of being killed.
async fn stop_ffmpeg(group: &mut Group, grace: Duration) -> Exit {
    let nudge = grace.min(Duration::from_secs(1));
    let _ = group.signal(Signal::SIGTERM);
    if let Ok(status) = tokio::time::timeout(nudge, group.wait()).await {
        return status.map_or(Exit::Code(-1), Exit::from);
    }
    let _ = group.signal(Signal::SIGTERM);
    group.stop(grace.saturating_sub(nudge)).await.unwrap_or(Exit::Code(-1))
}

async fn kill_now(group: &mut Group) -> Exit {
    let _ = group.signal(Signal::SIGKILL);
    group.wait().await.map_or(Exit::Code(-1), Exit::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENING: &str = "[hls @ 0x55cf05e72ac0] [info] Opening 'http://h/seg00017.ts' for reading";
    const NOT_FOUND: &str = "[http @ 0x55cb40f1b100] [warning] HTTP error 404 Not Found";

    #[test]
    fn without_a_relay_the_log_gives_inferred_requests_and_problems() {
        let Some(EventKind::Request(r)) = translate(OPENING, false, 2.0) else { panic!("no request") };
        assert_eq!(
            (r.kind, r.url.as_str(), r.media_duration, r.measured),
            (RequestKind::Segment, "http://h/seg00017.ts", Some(2.0), false)
        );
        assert_eq!((r.bytes, r.ttfb, r.status), (0, None, None), "nothing of it was seen");
        assert!(matches!(
            translate(NOT_FOUND, false, 2.0),
            Some(EventKind::Problem(Problem::HttpStatus(404)))
        ));
    }

    #[test]
    fn with_a_relay_the_log_does_not_count_requests_twice() {
        assert!(translate(OPENING, true, 2.0).is_none());
        assert!(translate(NOT_FOUND, true, 2.0).is_none());
        assert!(translate("[info] Stream mapping:", false, 2.0).is_none());
    }
}
