//! One viewer's supervisor, whatever engine plays the stream: start a session, watch it,
//! restart it with backoff when it ends by itself or its player stalls too long, stop it when
//! the run ends.
//!
//! An [`Engine`] starts [`Session`]s (the FFmpeg engine: one process each) and reports what
//! they see as events; the supervisor adds the lifecycle events (started, ended and by whom,
//! backoff, finished) and owns the policy: exponential backoff with jitter, reset after a
//! healthy session; a finite stream played to its end is not started again; with a stall
//! timeout, a session whose player (the fold's model, read through [`Verdicts`]) has been dry
//! that long — or that has not buffered its first segment that long after starting — is
//! stopped and started again. With `--session-length`, a session that has run its drawn
//! length is stopped and a new one starts at once, without backoff (a viewer zapping); so does
//! a session that played a finished stream to its end.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use procgroup::Backoff;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;

use crate::engine::settings::SessionLength;
use crate::measure::events::{EndCause, Ending, EventKind, EventSink, FinishReason, ViewerId};
use crate::measure::player::Verdicts;

/// A session that ran this long counts as healthy: the next failure starts the backoff over.
pub const HEALTHY_UPTIME: Duration = Duration::from_secs(30);

/// The first wait before a restart.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(250);

/// The longest wait between restarts for `viewers` started at `ramp_rate` per second: the
/// time the ramp took, so that viewers failing together restart no faster than the machine
/// was asked to start them, between 1 s (a short outage costs the viewers little more than
/// itself) and 5 s.
#[must_use]
pub fn backoff_cap(viewers: u32, ramp_rate: f64) -> Duration {
    let ramp = f64::from(viewers) / ramp_rate.max(f64::MIN_POSITIVE);
    Duration::from_secs_f64(if ramp.is_finite() { ramp.clamp(1.0, 5.0) } else { 5.0 })
}

/// How the run asks viewers to end.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Cancelled when the run ends: viewers stop gracefully.
    pub stop: CancellationToken,
    /// Cancelled on a second interrupt: viewers are killed at once.
    pub kill: CancellationToken,
}

/// What plays the stream for one viewer: starts its sessions.
pub trait Engine: Send + 'static {
    /// What runs the sessions, for people (`FFmpeg`).
    const NAME: &'static str;
    /// One session (the FFmpeg engine: one process).
    type Session: Session;
    /// Starts a session; the error says why it could not.
    fn start(&mut self) -> impl Future<Output = Result<Self::Session, String>> + Send;
    /// The viewer is done: releases what outlives its sessions and reports what is left.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// One playback session.
pub trait Session: Send {
    /// When it was created, and how long starting it took.
    fn started(&self) -> (Instant, Duration);
    /// Its start has been reported: what it reports from now on comes after it. A session
    /// that could report sooner (a player inside the swarm fetches its first segment in a
    /// millisecond) waits for this.
    fn reported(&mut self) {}
    /// Plays until the session ends by itself; how it ended. Cancel-safe.
    fn ended(&mut self) -> impl Future<Output = Ending> + Send;
    /// Ends it: gracefully within `grace`, at once when `kill` fires.
    fn stop(&mut self, grace: Duration, kill: &CancellationToken) -> impl Future<Output = Ending> + Send;
    /// Its last log lines, for an ending it caused itself.
    fn tail(&mut self) -> Vec<String>;
}

/// Everything one viewer's supervision needs.
#[derive(Debug)]
pub struct Supervisor<E> {
    /// The viewer.
    pub id: ViewerId,
    /// What plays for it.
    pub engine: E,
    /// Grace period of a graceful stop.
    pub grace: Duration,
    /// Start again after a clean end (live streams); false for finite (VOD) streams.
    pub restart_after_clean_exit: bool,
    /// `--restart-on-stall`: restart a session whose player has been stalled this long.
    pub stall_timeout: Option<Duration>,
    /// The player models' verdicts, kept by the fold.
    pub verdicts: Arc<Verdicts>,
    /// Seed of this run's backoff jitter.
    pub seed: u64,
    /// Longest wait between restarts (the delays grow from [`BACKOFF_FIRST`] ×1.7 per
    /// attempt up to it, ±20 %).
    pub backoff_cap: Duration,
    /// `--session-length`: how long each session lasts before the viewer zaps.
    pub session_length: Option<SessionLength>,
}

/// How one session ended, for the loop.
enum SessionEnd {
    /// The run stopped it.
    Stopped,
    /// Restarted because its player stalled.
    Stalled,
    /// It ran its `--session-length`.
    Completed,
    /// It ended by itself.
    Ended { ending: Ending, uptime: Duration },
    /// It could not start.
    NotStarted,
}

impl<E: Engine> Supervisor<E> {
    /// Runs the viewer until the run ends or its stream does.
    pub async fn run(mut self, sink: EventSink, shutdown: Shutdown) {
        let reason = self.supervise(&sink, &shutdown).await;
        // Its last session is over: collect what the engine still holds before saying so.
        let (id, engine) = (self.id, self.engine);
        engine.close().await;
        sink.send(id, EventKind::Finished { reason });
    }

    async fn supervise(&mut self, sink: &EventSink, shutdown: &Shutdown) -> FinishReason {
        let mut backoff = Backoff::new(BACKOFF_FIRST, self.backoff_cap, 1.7, 0.4);
        let mut rng = StdRng::seed_from_u64(self.seed ^ u64::from(self.id));
        loop {
            if shutdown.stop.is_cancelled() {
                return FinishReason::Shutdown;
            }
            let length = self.session_length.map(|l| l.draw(&mut rng));
            let healthy = match self.session(sink, shutdown, length).await {
                SessionEnd::Stopped => return FinishReason::Shutdown,
                SessionEnd::Completed => {
                    // The viewer leaves and the next one starts at once.
                    backoff.reset();
                    continue;
                }
                SessionEnd::Stalled | SessionEnd::NotStarted => false,
                SessionEnd::Ended { ending, uptime } => {
                    if ending.success() && !self.restart_after_clean_exit {
                        return FinishReason::StreamEnded;
                    }
                    uptime >= HEALTHY_UPTIME
                }
            };
            if healthy {
                backoff.reset();
            }
            let delay = backoff.next_delay(&mut rng);
            sink.send(self.id, EventKind::Backoff { delay });
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.stop.cancelled() => return FinishReason::Shutdown,
            }
        }
    }

    /// Starts one session and watches it until it ends, the run stops it, it stalls, or it
    /// has run `length`.
    async fn session(
        &mut self,
        sink: &EventSink,
        shutdown: &Shutdown,
        length: Option<Duration>,
    ) -> SessionEnd {
        let mut session = match self.engine.start().await {
            Ok(s) => s,
            Err(error) => {
                sink.send(self.id, EventKind::StartFailed { error });
                return SessionEnd::NotStarted;
            }
        };
        let (started, took) = session.started();
        sink.send_at(self.id, started, EventKind::SessionStarted { took });
        session.reported();
        let end = |ending, cause, tail| EventKind::SessionEnded {
            engine: E::NAME,
            ending,
            cause,
            uptime: now().saturating_duration_since(started),
            tail,
        };
        loop {
            // Before playback the first segment is due within the timeout of the start;
            // after, the player may be stalled at most the timeout.
            let stall_at = self.stall_timeout.map(|limit| self.dry_at(started) + limit);
            let never = started + Duration::from_secs(86_400 * 365);
            let over = length.map_or(never, |l| started + l);
            tokio::select! {
                biased;
                () = shutdown.stop.cancelled() => {
                    let ending = session.stop(self.grace, &shutdown.kill).await;
                    sink.send(self.id, end(ending, EndCause::Stopped, Vec::new()));
                    return SessionEnd::Stopped;
                }
                () = tokio::time::sleep_until(over.into()), if length.is_some() => {
                    let ending = session.stop(self.grace, &shutdown.kill).await;
                    sink.send(self.id, end(ending, EndCause::Completed, Vec::new()));
                    return SessionEnd::Completed;
                }
                () = tokio::time::sleep_until(stall_at.unwrap_or(never).into()), if stall_at.is_some() => {
                    // Segments may have arrived meanwhile: only a deadline that still holds counts.
                    let Some(limit) = self.stall_timeout else { continue };
                    let dry = self.dry_at(started);
                    let at = now();
                    if dry + limit <= at {
                        let waited = at.saturating_duration_since(dry);
                        let ending = session.stop(self.grace, &shutdown.kill).await;
                        sink.send(self.id, end(ending, EndCause::Stalled { waited }, session.tail()));
                        return SessionEnd::Stalled;
                    }
                }
                ending = session.ended() => {
                    let uptime = now().saturating_duration_since(started);
                    // With a session length, a finished stream played to its end is the end of
                    // a viewing too: the next one starts at once.
                    if ending.success() && !self.restart_after_clean_exit && length.is_some() {
                        sink.send(self.id, end(ending, EndCause::Completed, Vec::new()));
                        return SessionEnd::Completed;
                    }
                    sink.send(self.id, end(ending.clone(), EndCause::Own, session.tail()));
                    return SessionEnd::Ended { ending, uptime };
                }
            }
        }
    }

    /// When this session's player ran (or runs) dry; its start, before the first segment.
    /// A verdict older than the session is the previous session's.
    fn dry_at(&self, started: Instant) -> Instant {
        self.verdicts.dry_at(self.id as usize).filter(|d| *d >= started).unwrap_or(started)
    }
}

/// Now, on tokio's clock (the same as the system's, except in tests that pause it).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

#[cfg(test)]
mod tests;
