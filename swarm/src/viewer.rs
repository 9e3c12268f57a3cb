//! One viewer's supervisor: run FFmpeg, read its log, restart it with backoff, stop it cleanly.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;
use procgroup::{Backoff, Exit, Group};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::io::AsyncReadExt;
use tokio::process::{ChildStderr, Command};
use tokio_util::sync::CancellationToken;

use crate::events::{EventKind, EventSink, FinishReason, ViewerId};
use crate::parser::{parse_line, LineSplitter, LogEvent, RequestKind};
use crate::stats::TAIL_LINES;

/// A process that ran this long counts as healthy: its next failure starts the backoff over.
pub const HEALTHY_UPTIME: Duration = Duration::from_secs(30);

/// Viewers run this much nicer than the swarm: on a saturated machine the schedule and the
/// measurements must not queue behind FFmpeg's own CPU use.
pub const VIEWER_NICE: i32 = 19;

/// How the run asks viewers to end.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Cancelled when the run ends: viewers stop gracefully (SIGTERM, grace, SIGKILL).
    pub stop: CancellationToken,
    /// Cancelled on a second interrupt: viewers are killed at once.
    pub kill: CancellationToken,
}

/// Everything one viewer needs.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Its number.
    pub id: ViewerId,
    /// The FFmpeg argv, program first.
    pub argv: Vec<OsString>,
    /// Grace period after SIGTERM.
    pub grace: Duration,
    /// Restart after a clean exit (live streams); false for finite (VOD) streams.
    pub restart_after_clean_exit: bool,
    /// Seed for this viewer's backoff jitter.
    pub seed: u64,
    /// Restart the process when no new segment was requested for this long.
    pub stall_timeout: Option<Duration>,
    /// Where processes are forked.
    pub spawner: procgroup::Spawner,
}

/// Who ended a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// It exited by itself.
    Own,
    /// The run is stopping.
    Shutdown,
    /// `--restart-on-stall`: no progress for the stall timeout.
    Stall,
}

impl Viewer {
    /// Runs the viewer until the run ends or its stream does.
    pub async fn run(self, sink: EventSink, shutdown: Shutdown) {
        let mut backoff = Backoff::default();
        let mut rng = StdRng::seed_from_u64(self.seed ^ u64::from(self.id));
        let reason = loop {
            if shutdown.stop.is_cancelled() {
                break FinishReason::Shutdown;
            }
            let healthy = match self.run_once(&sink, &shutdown).await {
                Outcome::Stopped => break FinishReason::Shutdown,
                Outcome::Stalled => false,
                Outcome::Exited { exit, uptime } => {
                    if exit.success() && !self.restart_after_clean_exit {
                        break FinishReason::StreamEnded;
                    }
                    uptime >= HEALTHY_UPTIME
                }
                Outcome::SpawnFailed => false,
            };
            if healthy {
                backoff.reset();
            }
            let delay = backoff.next_delay(&mut rng);
            sink.send(self.id, EventKind::Backoff { delay });
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.stop.cancelled() => break FinishReason::Shutdown,
            }
        };
        sink.send(self.id, EventKind::Finished { reason });
    }

    async fn run_once(&self, sink: &EventSink, shutdown: &Shutdown) -> Outcome {
        let Some((program, args)) = self.argv.split_first() else {
            return Outcome::SpawnFailed;
        };
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let spawned = self.spawner.spawn(cmd).await;
        let mut group = match spawned {
            Ok(g) => {
                let _ = g.lower_priority(VIEWER_NICE);
                g
            }
            Err(e) => {
                sink.send(
                    self.id,
                    EventKind::SpawnFailed {
                        error: format!("cannot start {}: {e}", program.to_string_lossy()),
                    },
                );
                return Outcome::SpawnFailed;
            }
        };
        let started = group.forked_at();
        sink.send_at(self.id, started, EventKind::Spawned { pid: group.pid(), took: started.elapsed() });
        let stderr = group.child_mut().stderr.take();
        let mut tail = VecDeque::with_capacity(TAIL_LINES);
        let (exit, cause) = self.watch(&mut group, stderr, sink, shutdown, &mut tail).await;
        let uptime = started.elapsed();
        let stopped_by_us = cause != Cause::Own;
        let tail = if cause == Cause::Shutdown { Vec::new() } else { tail.into_iter().collect() };
        sink.send(self.id, EventKind::Exited { exit, uptime, stopped_by_us, tail });
        match cause {
            Cause::Shutdown => Outcome::Stopped,
            Cause::Stall => Outcome::Stalled,
            Cause::Own => Outcome::Exited { exit, uptime },
        }
    }

    /// Reads the log until the process exits, the run stops it, or it stalls (with
    /// `--restart-on-stall`). Returns how it ended and who ended it.
    async fn watch(
        &self,
        group: &mut Group,
        mut stderr: Option<ChildStderr>,
        sink: &EventSink,
        shutdown: &Shutdown,
        tail: &mut VecDeque<String>,
    ) -> (Exit, Cause) {
        let mut splitter = LineSplitter::default();
        let mut buf = vec![0u8; 8192];
        let mut last_progress = tokio::time::Instant::now();
        let id = self.id;
        // Records the line and reports its event; true when it is a segment request.
        let mut on_line = |line: &str| -> bool {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.to_owned());
            let Some(ev) = parse_line(line) else { return false };
            let progress = matches!(ev, LogEvent::Request { kind: RequestKind::Segment, .. });
            sink.send(id, EventKind::Log(ev));
            progress
        };
        let stall = self.stall_timeout;
        loop {
            let stall_at = last_progress + stall.unwrap_or(Duration::MAX / 4);
            tokio::select! {
                biased;
                () = shutdown.stop.cancelled() => {
                    return (stop(group, self.grace, &shutdown.kill).await, Cause::Shutdown);
                }
                () = tokio::time::sleep_until(stall_at), if stall.is_some() => {
                    let waited = last_progress.elapsed();
                    sink.send(self.id, EventKind::Stalled { waited });
                    return (stop(group, self.grace, &shutdown.kill).await, Cause::Stall);
                }
                read = read_some(&mut stderr, &mut buf), if stderr.is_some() => {
                    let mut progressed = false;
                    match read {
                        Some(n) => splitter.feed(&buf[..n], |l| progressed |= on_line(l)),
                        None => {
                            splitter.finish(|l| progressed |= on_line(l));
                            stderr = None;
                        }
                    }
                    if progressed {
                        last_progress = tokio::time::Instant::now();
                    }
                }
                status = group.wait(), if stderr.is_none() => {
                    let exit = status.map_or(Exit::Code(-1), Exit::from);
                    return (exit, Cause::Own);
                }
            }
        }
    }
}

enum Outcome {
    Stopped,
    Stalled,
    Exited { exit: Exit, uptime: Duration },
    SpawnFailed,
}

/// Reads one chunk; `None` at end of stream or on error.
async fn read_some(stderr: &mut Option<ChildStderr>, buf: &mut [u8]) -> Option<usize> {
    match stderr.as_mut()?.read(buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

/// Graceful stop, cut short by a second interrupt.
async fn stop(group: &mut Group, grace: Duration, kill: &CancellationToken) -> Exit {
    if kill.is_cancelled() {
        return kill_now(group).await;
    }
    tokio::select! {
        exit = stop_ffmpeg(group, grace) => exit,
        () = kill.cancelled() => kill_now(group).await,
    }
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
