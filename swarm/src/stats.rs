//! The one owner of the run's aggregates.
//!
//! Every viewer sends [`Event`]s; one task folds them into per-viewer state and run totals and
//! publishes a [`Snapshot`] once per tick on a `watch` channel. The status line, the summary
//! (and later the dashboard and `/metrics`) all read snapshots; nobody else keeps counters,
//! so no reader can reset another's rates.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use procgroup::Exit;
use tokio::sync::{mpsc, watch};

use crate::events::{Event, EventKind, FinishReason, ViewerId};
use crate::parser::{LogEvent, RequestKind};
use crate::ramp::achieved_rate;

/// A viewer counts as streaming while its last segment request is at most this old.
pub const STREAMING_WINDOW: Duration = Duration::from_secs(10);
/// Rates are computed over this window.
pub const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Log lines kept from the last unexpected exit of each viewer.
pub const TAIL_LINES: usize = 8;

/// Where a viewer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ViewerState {
    /// Not started yet (ramp).
    #[default]
    Waiting,
    /// Process alive.
    Running,
    /// Between an exit and the next start.
    Backoff,
    /// Finished: the stream ended.
    Ended,
    /// Finished: the run ended.
    Stopped,
}

#[derive(Debug, Default, Clone)]
struct Viewer {
    state: ViewerState,
    first_spawn: Option<Instant>,
    last_segment: Option<Instant>,
    starts: u64,
    tail: Vec<String>,
}

/// Everything the readers need, at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Time since the run started.
    pub elapsed: Duration,
    /// Viewers asked for.
    pub target: u32,
    /// Viewers whose first process has started.
    pub started: u32,
    /// Viewers with a live process.
    pub running: u32,
    /// Running viewers that requested a segment within [`STREAMING_WINDOW`].
    pub streaming: u32,
    /// Viewers waiting to restart.
    pub backoff: u32,
    /// Viewers whose stream ended.
    pub ended: u32,
    /// Process starts, first starts included.
    pub process_starts: u64,
    /// Starts after the first, per viewer, summed.
    pub restarts: u64,
    /// Spawn attempts that failed.
    pub spawn_failures: u64,
    /// Longest time one process start (fork + exec) took.
    pub spawn_time_max: Duration,
    /// Sum of the start times, for the mean.
    pub spawn_time_total: Duration,
    /// Processes restarted by `--restart-on-stall`.
    pub stall_restarts: u64,
    /// Requests seen, by kind.
    pub requests: BTreeMap<RequestKind, u64>,
    /// HTTP error responses by status.
    pub http_errors: BTreeMap<u16, u64>,
    /// Failed connections.
    pub network_errors: u64,
    /// Segments FFmpeg gave up on.
    pub segments_skipped: u64,
    /// Exits the viewers made on their own.
    pub exits_unexpected: BTreeMap<Exit, u64>,
    /// Exits caused by our stop.
    pub exits_on_stop: BTreeMap<Exit, u64>,
    /// Rate at which first starts happened.
    pub ramp_rate_achieved: Option<f64>,
    /// Latest first start, compared with its planned time.
    pub ramp_lag_max: Duration,
    /// Requests per second over [`RATE_WINDOW`], by kind.
    pub request_rates: BTreeMap<RequestKind, f64>,
    /// Viewers streaming when the stop began (the final snapshot has none running).
    pub streaming_at_stop: Option<u32>,
    /// Viewers running when the stop began.
    pub running_at_stop: Option<u32>,
    /// Events lost because the stats task fell behind.
    pub dropped_events: u64,
    /// The last log lines of the most recent unexpected exit, with its viewer.
    pub last_failure: Option<(ViewerId, Vec<String>)>,
}

impl Snapshot {
    /// Requests of one kind.
    #[must_use]
    pub fn requests_of(&self, kind: RequestKind) -> u64 {
        self.requests.get(&kind).copied().unwrap_or(0)
    }

    /// Requests per second of one kind.
    #[must_use]
    pub fn rate_of(&self, kind: RequestKind) -> f64 {
        self.request_rates.get(&kind).copied().unwrap_or(0.0)
    }

    /// HTTP errors with a status in `lo..=hi`.
    #[must_use]
    pub fn http_errors_in(&self, lo: u16, hi: u16) -> u64 {
        self.http_errors.range(lo..=hi).map(|(_, n)| n).sum()
    }
}

/// The fold. Public so tests and benchmarks can drive it without a runtime.
#[derive(Debug)]
pub struct Stats {
    started_at: Instant,
    planned: Vec<Duration>,
    viewers: Vec<Viewer>,
    snap: Snapshot,
    history: VecDeque<(Instant, BTreeMap<RequestKind, u64>)>,
    dropped: Arc<AtomicU64>,
}

impl Stats {
    /// Empty aggregates for `target` viewers whose first starts are planned at `planned`
    /// (offsets from `started_at`; see [`crate::ramp::RampPlan`]).
    #[must_use]
    pub fn new(target: u32, started_at: Instant, planned: Vec<Duration>, dropped: Arc<AtomicU64>) -> Stats {
        Stats {
            started_at,
            planned,
            viewers: vec![Viewer::default(); target as usize],
            snap: Snapshot { target, ..Snapshot::default() },
            history: VecDeque::new(),
            dropped,
        }
    }

    /// Folds one event in.
    pub fn apply(&mut self, ev: Event) {
        if matches!(ev.kind, EventKind::RunStopping) {
            let now = self.snapshot(ev.at);
            self.snap.streaming_at_stop = Some(now.streaming);
            self.snap.running_at_stop = Some(now.running);
            return;
        }
        let Some(v) = self.viewers.get_mut(ev.viewer as usize) else {
            return;
        };
        let s = &mut self.snap;
        match ev.kind {
            EventKind::Spawned { took, .. } => {
                s.spawn_time_max = s.spawn_time_max.max(took);
                s.spawn_time_total += took;
                v.state = ViewerState::Running;
                v.first_spawn.get_or_insert(ev.at);
                v.last_segment = None;
                v.starts += 1;
                s.process_starts += 1;
                if v.starts > 1 {
                    s.restarts += 1;
                }
            }
            EventKind::SpawnFailed { error } => {
                s.spawn_failures += 1;
                v.tail = vec![error];
                s.last_failure = Some((ev.viewer, v.tail.clone()));
            }
            EventKind::Log(log) => match log {
                LogEvent::Request { kind, .. } => {
                    *s.requests.entry(kind).or_default() += 1;
                    if kind == RequestKind::Segment {
                        v.last_segment = Some(ev.at);
                    }
                }
                LogEvent::HttpError { status } => *s.http_errors.entry(status).or_default() += 1,
                LogEvent::NetworkError { .. } => s.network_errors += 1,
                LogEvent::SegmentSkipped => s.segments_skipped += 1,
                LogEvent::Problem { .. } => {}
            },
            EventKind::Exited { exit, stopped_by_us, tail, .. } => {
                let map = if stopped_by_us { &mut s.exits_on_stop } else { &mut s.exits_unexpected };
                *map.entry(exit).or_default() += 1;
                if !stopped_by_us {
                    v.tail = tail;
                    s.last_failure = Some((ev.viewer, v.tail.clone()));
                }
                v.state = ViewerState::Backoff;
            }
            EventKind::Backoff { .. } => v.state = ViewerState::Backoff,
            EventKind::RunStopping => {}
            EventKind::Stalled { .. } => s.stall_restarts += 1,
            EventKind::Finished { reason } => {
                v.state = match reason {
                    FinishReason::Shutdown => ViewerState::Stopped,
                    FinishReason::StreamEnded => ViewerState::Ended,
                }
            }
        }
    }

    /// Brings the time-dependent parts up to `now` and returns the snapshot.
    pub fn snapshot(&mut self, now: Instant) -> Snapshot {
        let s = &mut self.snap;
        s.elapsed = now.saturating_duration_since(self.started_at);
        let (mut started, mut running, mut streaming, mut backoff, mut ended) = (0, 0, 0, 0, 0);
        let mut firsts = Vec::new();
        let mut lag = Duration::ZERO;
        for (i, v) in self.viewers.iter().enumerate() {
            if let Some(t) = v.first_spawn {
                started += 1;
                let at = t.saturating_duration_since(self.started_at);
                firsts.push(at);
                lag = lag.max(at.saturating_sub(self.planned.get(i).copied().unwrap_or_default()));
            }
            match v.state {
                ViewerState::Running => {
                    running += 1;
                    if v.last_segment.is_some_and(|t| now.saturating_duration_since(t) <= STREAMING_WINDOW) {
                        streaming += 1;
                    }
                }
                ViewerState::Backoff => backoff += 1,
                ViewerState::Ended => ended += 1,
                ViewerState::Waiting | ViewerState::Stopped => {}
            }
        }
        (s.started, s.running, s.streaming, s.backoff, s.ended) =
            (started, running, streaming, backoff, ended);
        firsts.sort();
        s.ramp_rate_achieved = achieved_rate(&firsts);
        s.ramp_lag_max = lag;
        s.dropped_events = self.dropped.load(Ordering::Relaxed);

        self.history.push_back((now, s.requests.clone()));
        while self.history.len() > 2
            && self.history.get(1).is_some_and(|(t, _)| now.duration_since(*t) >= RATE_WINDOW)
        {
            self.history.pop_front();
        }
        s.request_rates.clear();
        if let Some((t0, old)) = self.history.front() {
            let dt = now.saturating_duration_since(*t0).as_secs_f64();
            if dt > 0.0 {
                for (kind, n) in &s.requests {
                    let before = old.get(kind).copied().unwrap_or(0);
                    s.request_rates.insert(*kind, (n - before) as f64 / dt);
                }
            }
        }
        s.clone()
    }
}

/// Runs the stats owner until every sender is gone; returns the final snapshot.
pub async fn run(
    mut stats: Stats,
    mut events: mpsc::Receiver<Event>,
    publish: watch::Sender<Snapshot>,
    tick: Duration,
) -> Snapshot {
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => stats.apply(ev),
                None => break,
            },
            _ = ticker.tick() => {
                publish.send_replace(stats.snapshot(Instant::now()));
            }
        }
    }
    let last = stats.snapshot(Instant::now());
    publish.send_replace(last.clone());
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(viewer: ViewerId, at: Instant, kind: EventKind) -> Event {
        Event { viewer, at, kind }
    }

    fn seg(at: Instant, viewer: ViewerId) -> Event {
        ev(viewer, at, EventKind::Log(LogEvent::Request { kind: RequestKind::Segment, url: "s.ts".into() }))
    }

    #[test]
    fn lifecycle_counts() {
        let t0 = Instant::now();
        let mut st = Stats::new(
            3,
            t0,
            vec![Duration::ZERO, Duration::from_millis(500), Duration::from_secs(1)],
            Arc::default(),
        );
        st.apply(ev(0, t0, EventKind::Spawned { pid: 10, took: Duration::ZERO }));
        st.apply(ev(
            1,
            t0 + Duration::from_millis(500),
            EventKind::Spawned { pid: 11, took: Duration::ZERO },
        ));
        st.apply(seg(t0 + Duration::from_secs(1), 0));
        st.apply(ev(
            1,
            t0 + Duration::from_secs(2),
            EventKind::Exited {
                exit: Exit::Code(1),
                uptime: Duration::from_secs(1),
                stopped_by_us: false,
                tail: vec!["[error] boom".into()],
            },
        ));
        st.apply(ev(
            1,
            t0 + Duration::from_secs(2),
            EventKind::Backoff { delay: Duration::from_millis(250) },
        ));
        st.apply(ev(1, t0 + Duration::from_secs(3), EventKind::Spawned { pid: 12, took: Duration::ZERO }));
        let s = st.snapshot(t0 + Duration::from_secs(4));
        assert_eq!((s.target, s.started, s.running, s.streaming), (3, 2, 2, 1));
        assert_eq!((s.process_starts, s.restarts), (3, 1));
        assert_eq!(s.exits_unexpected.get(&Exit::Code(1)), Some(&1));
        assert_eq!(s.ramp_rate_achieved, Some(2.0));
        assert_eq!(s.last_failure, Some((1, vec!["[error] boom".to_owned()])));
        // Streaming lapses when segments stop arriving.
        let later = st.snapshot(t0 + Duration::from_secs(1) + STREAMING_WINDOW + Duration::from_millis(1));
        assert_eq!(later.streaming, 0);
    }

    #[test]
    fn rates_cover_the_window() {
        let t0 = Instant::now();
        let mut st = Stats::new(1, t0, vec![Duration::ZERO], Arc::default());
        st.apply(ev(0, t0, EventKind::Spawned { pid: 1, took: Duration::ZERO }));
        st.snapshot(t0);
        for i in 0..10 {
            st.apply(seg(t0 + Duration::from_millis(i * 100), 0));
        }
        let s = st.snapshot(t0 + Duration::from_secs(2));
        assert!((s.rate_of(RequestKind::Segment) - 5.0).abs() < 1e-9, "{:?}", s.request_rates);
    }

    #[test]
    fn events_for_unknown_viewers_are_ignored() {
        let t0 = Instant::now();
        let mut st = Stats::new(1, t0, vec![Duration::ZERO], Arc::default());
        st.apply(ev(5, t0, EventKind::Spawned { pid: 1, took: Duration::ZERO }));
        assert_eq!(st.snapshot(t0).process_starts, 0);
    }
}
