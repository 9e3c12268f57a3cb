//! The event trail: what `--report FILE.ndjson` writes, one [`Record`] per request and per
//! change of a viewer's state, in the order the fold learns of them.
//!
//! The fold is the only producer: it passes every request on as it folds it in, and derives a
//! viewer's state changes from the lifecycle events and its player model, so the trail says
//! what the summary counts (a stall here is a stall there). A state is one of [`State`]:
//! `starting` (a session began, nothing played yet), `streaming`, `stalled` (the player's
//! buffer ran dry while its session played), `backoff` (between sessions), `ended` (a finished
//! stream played to its end) and `stopped` (the run ended it). A stall is known once the
//! viewer's next event shows the buffer ran dry before it; its record carries the instant it
//! began.
//!
//! Handing records on never blocks the fold: they go through a bounded channel to the writer
//! ([`TrailSink`]); when it is full they are dropped and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::measure::events::{EndCause, Event, EventKind, FinishReason, Problem, Request, ViewerId};
use crate::measure::player::Player;

/// Records queued between the fold and the writer.
pub const QUEUE: usize = 32_768;

/// A viewer's state, as the trail gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    /// Not started yet.
    #[default]
    Waiting,
    /// A session began and has not played yet.
    Starting,
    /// Its session plays.
    Streaming,
    /// Its buffer ran dry while its session played.
    Stalled,
    /// Between sessions: its session ended, or could not start, and the next starts after a
    /// delay.
    Backoff,
    /// The finished stream played to its end: done.
    Ended,
    /// The run stopped it: done.
    Stopped,
}

impl State {
    /// Lower-case name.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Starting => "starting",
            State::Streaming => "streaming",
            State::Stalled => "stalled",
            State::Backoff => "backoff",
            State::Ended => "ended",
            State::Stopped => "stopped",
        }
    }
}

/// What one record says.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// An HTTP exchange, measured or inferred (as the engine reported it).
    Request(Box<Request>),
    /// The viewer's state changed.
    State {
        /// Its state before.
        from: State,
        /// Its state now.
        to: State,
        /// Why, when known.
        reason: Option<String>,
        /// For `backoff`: the wait before the next start.
        delay: Option<Duration>,
    },
    /// Something went wrong that no measured exchange shows (FFmpeg's log, a skipped segment).
    Problem(Problem),
}

/// One line of the trail.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Since the run's start (a request: when it ended; a stall: when the buffer ran dry).
    pub at: Duration,
    /// The viewer's number in the fleet.
    pub viewer: ViewerId,
    /// The stream it plays (an index into the run's streams).
    pub stream: u16,
    /// What happened.
    pub what: What,
}

/// The fold's end of the channel to the writer. Never blocks: when the writer is behind,
/// records are dropped and counted.
#[derive(Debug, Clone)]
pub struct TrailSink {
    tx: mpsc::SyncSender<Record>,
    dropped: Arc<AtomicU64>,
}

impl TrailSink {
    /// A sink with room for `capacity` records, its receiver, and the count of records dropped
    /// because the queue was full.
    #[must_use]
    pub fn channel(capacity: usize) -> (TrailSink, mpsc::Receiver<Record>, Arc<AtomicU64>) {
        let (tx, rx) = mpsc::sync_channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        (TrailSink { tx, dropped: Arc::clone(&dropped) }, rx, dropped)
    }

    fn put(&self, record: Record) {
        if self.tx.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One viewer, as the trail follows it.
#[derive(Debug, Clone, Default)]
struct Track {
    state: State,
    /// Its session ended (or could not start): why, until the next state says it. No stall is
    /// looked for meanwhile.
    ending: Option<String>,
}

/// What the fold hands the trail: viewers' state, and the records of a batch until they are
/// passed on in time order.
#[derive(Debug)]
pub struct Trail {
    sink: TrailSink,
    started_at: Instant,
    /// The fleet's number of viewer 0 (`--shard`).
    first: ViewerId,
    viewers: Vec<Track>,
    /// When the run began to stop: playback (and stalls) end there.
    stopping: Option<Instant>,
    batch: Vec<Record>,
}

impl Trail {
    /// The trail of `viewers` viewers, numbered from `first` in the fleet, of a run started at
    /// `started_at`, passed on to `sink`.
    #[must_use]
    pub fn new(sink: TrailSink, started_at: Instant, first: ViewerId, viewers: u32) -> Trail {
        Trail {
            sink,
            started_at,
            first,
            viewers: vec![Track::default(); viewers as usize],
            stopping: None,
            batch: Vec::new(),
        }
    }

    /// The run begins to stop at `at`.
    pub fn run_stopping(&mut self, at: Instant) {
        self.stopping.get_or_insert(at);
    }

    /// Before the fold applies `ev` to the viewer whose player is `player` and who plays
    /// `stream`: a stall that began before it, the request or problem it is, and what it does
    /// to the viewer's state.
    pub fn before(&mut self, ev: &Event, player: &Player, stream: u16) {
        let Some(track) = self.viewers.get_mut(ev.viewer as usize) else { return };
        let mut stall = None;
        if track.state == State::Streaming && track.ending.is_none() {
            let until = self.stopping.map_or(ev.at, |s| s.min(ev.at));
            if let Some(stalled) = player.stalled_for(until) {
                stall = Some((until - stalled, change(track, State::Stalled, None, None)));
            }
        }
        let what = match &ev.kind {
            EventKind::Request(r) => Some(What::Request(Box::new(r.clone()))),
            EventKind::Problem(p) => Some(What::Problem(p.clone())),
            EventKind::SessionStarted { .. } => {
                let reason = track.ending.take();
                Some(change(track, State::Starting, reason, None))
            }
            EventKind::StartFailed { error } => {
                track.ending = Some(format!("could not start: {error}"));
                None
            }
            EventKind::SessionEnded { engine, ending, cause, .. } => {
                track.ending = Some(match cause {
                    EndCause::Own => format!("{engine} ended ({ending})"),
                    EndCause::Stopped => "the run stopped it".to_owned(),
                    EndCause::Stalled { waited } => {
                        format!("stalled {:.1} s: restarted (--restart-on-stall)", waited.as_secs_f64())
                    }
                    EndCause::Completed => "its session was over: a new one starts".to_owned(),
                });
                None
            }
            EventKind::Backoff { delay } => {
                let reason = track.ending.take();
                Some(change(track, State::Backoff, reason, Some(*delay)))
            }
            EventKind::Finished { reason } => {
                track.ending = None;
                let (to, why) = match reason {
                    FinishReason::Shutdown => (State::Stopped, "the run ended"),
                    FinishReason::StreamEnded => (State::Ended, "the stream ended"),
                };
                Some(change(track, to, Some(why.to_owned()), None))
            }
            EventKind::PlaylistSeen { .. }
            | EventKind::VariantSwitch { .. }
            | EventKind::Tunnel(_)
            | EventKind::LowLatency(_) => None,
        };
        if let Some((at, stalled)) = stall {
            self.push(ev.viewer, at, stream, stalled);
        }
        if let Some(what) = what {
            self.push(ev.viewer, ev.at, stream, what);
        }
    }

    /// After the fold applied an event of `viewer` at `at`: whether its player plays now.
    pub fn after(&mut self, viewer: ViewerId, at: Instant, player: &Player, stream: u16) {
        let Some(track) = self.viewers.get_mut(viewer as usize) else { return };
        let waiting = matches!(track.state, State::Starting | State::Stalled);
        if waiting && track.ending.is_none() && !player.session_waiting() && player.stalled_for(at).is_none()
        {
            let reason = (track.state == State::Stalled).then(|| "a segment refilled the buffer".to_owned());
            let what = change(track, State::Streaming, reason, None);
            self.push(viewer, at, stream, what);
        }
    }

    fn push(&mut self, viewer: ViewerId, at: Instant, stream: u16, what: What) {
        let at = at.saturating_duration_since(self.started_at);
        self.batch.push(Record { at, viewer: self.first + viewer, stream, what });
    }

    /// Passes the records gathered so far on to the writer, in time order (viewers' events
    /// arrive in the order they were sent, which may differ by microseconds from the order
    /// they were stamped in).
    pub fn flush(&mut self) {
        self.batch.sort_by_key(|r| r.at);
        for r in self.batch.drain(..) {
            self.sink.put(r);
        }
    }
}

/// Moves `track` to `to`: the record saying so.
fn change(track: &mut Track, to: State, reason: Option<String>, delay: Option<Duration>) -> What {
    let from = std::mem::replace(&mut track.state, to);
    What::State { from, to, reason, delay }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::events::{Ending, RequestKind};

    fn states(records: &[Record]) -> Vec<(&'static str, &'static str, u128)> {
        records
            .iter()
            .filter_map(|r| match &r.what {
                What::State { from, to, .. } => Some((from.label(), to.label(), r.at.as_millis())),
                _ => None,
            })
            .collect()
    }

    /// A viewer that starts, plays, stalls, plays again and is stopped.
    #[test]
    fn a_viewer_goes_from_starting_to_streaming_stalled_and_stopped() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let (sink, rx, dropped) = TrailSink::channel(64);
        let mut trail = Trail::new(sink, t0, 10, 1);
        let mut player = Player::new(Duration::from_secs(30));
        let apply = |trail: &mut Trail, at: Duration, kind: EventKind, player: &mut Player| {
            let ev = Event { viewer: 0, at: t0 + at, kind };
            trail.before(&ev, player, 2);
            match &ev.kind {
                EventKind::SessionStarted { .. } => player.session_started(ev.at),
                EventKind::Request(r) if r.kind == RequestKind::Segment => {
                    player.request(ev.at);
                    let _ = player.segment(ev.at, Duration::from_secs(2));
                }
                EventKind::Request(_) => player.request(ev.at),
                _ => {}
            }
            trail.after(ev.viewer, ev.at, player, 2);
        };
        let segment =
            || EventKind::Request(Request::inferred(RequestKind::Segment, "s.ts".into(), Some(2.0)));
        apply(&mut trail, ms(0), EventKind::SessionStarted { took: ms(1) }, &mut player);
        apply(&mut trail, ms(100), segment(), &mut player);
        // 2 s of media from 0.1 s: dry at 2.1 s; the next segment at 3 s ends the stall.
        apply(&mut trail, ms(3_000), segment(), &mut player);
        trail.run_stopping(t0 + ms(4_000));
        let ended = EventKind::SessionEnded {
            engine: "FFmpeg",
            ending: Ending { code: 255, label: "exit 255".into() },
            cause: EndCause::Stopped,
            uptime: ms(4_100),
            tail: Vec::new(),
        };
        apply(&mut trail, ms(4_100), ended, &mut player);
        apply(&mut trail, ms(4_200), EventKind::Finished { reason: FinishReason::Shutdown }, &mut player);
        trail.flush();
        drop(trail);
        let records: Vec<Record> = rx.iter().collect();
        assert_eq!(
            states(&records),
            [
                ("waiting", "starting", 0),
                ("starting", "streaming", 100),
                ("streaming", "stalled", 2_100),
                ("stalled", "streaming", 3_000),
                ("streaming", "stopped", 4_200),
            ]
        );
        assert_eq!(records.iter().filter(|r| matches!(r.what, What::Request(_))).count(), 2);
        assert!(records.iter().all(|r| r.viewer == 10 && r.stream == 2), "fleet numbers");
        assert!(records.windows(2).all(|w| w[0].at <= w[1].at), "in time order");
        assert_eq!(dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn an_exit_is_a_backoff_with_its_reason_and_a_full_queue_counts_what_it_drops() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let (sink, rx, dropped) = TrailSink::channel(2);
        let mut trail = Trail::new(sink, t0, 0, 1);
        let player = Player::new(Duration::from_secs(30));
        let ev = |at, kind| Event { viewer: 0, at: t0 + ms(at), kind };
        trail.before(&ev(0, EventKind::SessionStarted { took: ms(1) }), &player, 0);
        let ending = Ending { code: 1, label: "exit 1".into() };
        let cause = EndCause::Own;
        let ended = EventKind::SessionEnded { engine: "FFmpeg", ending, cause, uptime: ms(5), tail: vec![] };
        trail.before(&ev(5, ended), &player, 0);
        trail.before(&ev(6, EventKind::Backoff { delay: ms(250) }), &player, 0);
        trail.before(&ev(300, EventKind::SessionStarted { took: ms(1) }), &player, 0);
        trail.flush();
        drop(trail);
        let records: Vec<Record> = rx.iter().collect();
        assert_eq!(records.len(), 2, "room for two of three");
        let What::State { to, reason, delay, .. } = &records[1].what else { panic!("{records:?}") };
        assert_eq!(
            (*to, reason.as_deref(), *delay),
            (State::Backoff, Some("FFmpeg ended (exit 1)"), Some(ms(250)))
        );
        // The third did not fit: the queue was full, so it was dropped and counted.
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
    }
}
