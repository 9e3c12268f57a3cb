//! One viewer's supervisor: run FFmpeg, read its log, restart it with backoff, stop it cleanly.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use procgroup::{Backoff, Exit, Group};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::io::AsyncReadExt;
use tokio::process::{ChildStderr, Command};
use tokio_util::sync::CancellationToken;

use crate::engine::ffmpeg::log::{parse_line, LineSplitter, LogEvent, RequestKind};
use crate::engine::ffmpeg::relay::{Relay, Route};
use crate::measure::events::{EventKind, EventSink, FinishReason, ViewerId};
use crate::measure::fold::TAIL_LINES;
use crate::measure::player::Player;

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
#[derive(Debug)]
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
    /// Restart the process when its player has been stalled this long (or, before playback
    /// starts, when no segment arrived this long after the start).
    pub stall_timeout: Option<Duration>,
    /// Where processes are forked.
    pub spawner: procgroup::Spawner,
    /// The viewer's observing relay (already in `argv` as `-http_proxy`), if measured.
    pub relay: Option<(Relay, Route)>,
    /// Media time credited per segment request when only the log is read.
    pub assumed_segment: Duration,
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
    pub async fn run(mut self, sink: EventSink, shutdown: Shutdown) {
        let player = Arc::new(Mutex::new(Player::default()));
        let relay =
            self.relay.take().map(|(r, route)| r.serve(self.id, sink.clone(), route, Arc::clone(&player)));
        let reason = self.supervise(&sink, &shutdown, &player).await;
        // The process is gone, so its connections are closing: collect their last requests
        // before saying the viewer is finished.
        if let Some(r) = relay {
            r.close().await;
        }
        sink.send(self.id, EventKind::Finished { reason });
    }

    async fn supervise(&self, sink: &EventSink, shutdown: &Shutdown, player: &Mutex<Player>) -> FinishReason {
        let mut backoff = Backoff::default();
        let mut rng = StdRng::seed_from_u64(self.seed ^ u64::from(self.id));
        let reason = loop {
            if shutdown.stop.is_cancelled() {
                break FinishReason::Shutdown;
            }
            let healthy = match self.run_once(sink, shutdown, player).await {
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
        reason
    }

    async fn run_once(&self, sink: &EventSink, shutdown: &Shutdown, player: &Mutex<Player>) -> Outcome {
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
        lock(player).reset();
        sink.send_at(self.id, started, EventKind::Spawned { pid: group.pid(), took: started.elapsed() });
        let stderr = group.child_mut().stderr.take();
        let mut tail = VecDeque::with_capacity(TAIL_LINES);
        let (exit, cause) = self.watch(&mut group, stderr, sink, shutdown, &mut tail, player).await;
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
        player: &Mutex<Player>,
    ) -> (Exit, Cause) {
        let mut splitter = LineSplitter::default();
        let mut buf = vec![0u8; 8192];
        let started = Instant::now();
        let id = self.id;
        let measured = self.relay_in_use();
        let assumed = self.assumed_segment;
        // Records the line and reports its event. Without a relay, the log's segment requests
        // are all the player model gets.
        let mut on_line = |line: &str| {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.to_owned());
            let Some(ev) = parse_line(line) else { return };
            if let LogEvent::Request { kind, .. } = &ev {
                if measured {
                    return; // the relay reports requests, exactly
                }
                let now = Instant::now();
                let mut p = lock(player);
                p.request(now);
                if *kind == RequestKind::Segment {
                    p.segment(now, assumed);
                }
            }
            sink.send(id, EventKind::Log(ev));
        };
        let stall = self.stall_timeout;
        loop {
            // Before playback: the first segment is due within the timeout of the start;
            // after: the player may be stalled at most the timeout.
            let stall_at = stall.map(|limit| lock(player).dry_at().unwrap_or(started) + limit);
            let sleep_to =
                tokio::time::Instant::from_std(stall_at.unwrap_or(started + Duration::from_secs(86_400)));
            tokio::select! {
                biased;
                () = shutdown.stop.cancelled() => {
                    return (stop(group, self.grace, &shutdown.kill).await, Cause::Shutdown);
                }
                () = tokio::time::sleep_until(sleep_to), if stall_at.is_some() => {
                    // Segments may have arrived meanwhile; only a deadline that still holds counts.
                    let still = stall.map(|limit| lock(player).dry_at().unwrap_or(started) + limit);
                    if still.is_some_and(|t| t <= Instant::now()) {
                        let waited = lock(player).stalled_for(Instant::now()).unwrap_or_else(|| started.elapsed());
                        sink.send(self.id, EventKind::Stalled { waited });
                        return (stop(group, self.grace, &shutdown.kill).await, Cause::Stall);
                    }
                }
                read = read_some(&mut stderr, &mut buf), if stderr.is_some() => {
                    match read {
                        Some(n) => splitter.feed(&buf[..n], &mut on_line),
                        None => {
                            splitter.finish(&mut on_line);
                            stderr = None;
                        }
                    }
                }
                status = group.wait(), if stderr.is_none() => {
                    let exit = status.map_or(Exit::Code(-1), Exit::from);
                    return (exit, Cause::Own);
                }
            }
        }
    }

    fn relay_in_use(&self) -> bool {
        self.argv.iter().any(|a| a == "-http_proxy")
    }
}

fn lock(player: &Mutex<Player>) -> std::sync::MutexGuard<'_, Player> {
    player.lock().unwrap_or_else(PoisonError::into_inner)
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
