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

use crate::engine::ffmpeg::log::{LogEvent, RequestKind};
use crate::measure::events::{Event, EventKind, FinishReason, Request, Tunnel, ViewerId};
use crate::measure::history::{Level, Notices, Sample, Series, ViewerRow, ViewerState};
use crate::measure::latency::{Hist, Latency};
use crate::measure::player::Player;
use crate::measure::ramp::achieved_rate;

/// A viewer counts as streaming while its last segment is at most this old.
pub const STREAMING_WINDOW: Duration = Duration::from_secs(10);
/// Request rates are computed over this window.
pub const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Log lines kept from the last unexpected exit of each viewer.
pub const TAIL_LINES: usize = 8;
/// Throughput windows, in seconds.
pub const WINDOWS: [u64; 4] = [1, 30, 60, 300];
/// Window of the rolling latency percentiles, in seconds.
pub const LATENCY_WINDOW: u64 = 30;

/// How the numbers are obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// Through the observing relay: every request measured.
    #[default]
    Relay,
    /// From FFmpeg's log: request starts and errors only; the rest inferred.
    Log,
}

#[derive(Debug, Default, Clone)]
struct Viewer {
    state: ViewerState,
    first_spawn: Option<Instant>,
    last_segment: Option<Instant>,
    starts: u64,
    tail: Vec<String>,
    player: Player,
    segments: u64,
    bytes: u64,
    errors: u64,
    /// Stall time of finished sessions.
    stalled: Duration,
}

/// Playback as the player model sees it, summed over viewers.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Playback {
    /// Sessions (viewer processes) that reached playback.
    pub started: u64,
    /// Stalls (the buffer ran dry), finished and ongoing.
    pub stalls: u64,
    /// Seconds spent stalled.
    pub stall_seconds: f64,
    /// Seconds since playback started, summed over sessions (stalls included).
    pub watch_seconds: f64,
    /// Viewers stalled right now.
    pub stalled_now: u32,
    /// Segments whose download took longer than their media duration.
    pub late_segments: u64,
}

impl Playback {
    /// Stall time / watch time (0 before anyone plays).
    #[must_use]
    pub fn stall_ratio(&self) -> f64 {
        if self.watch_seconds > 0.0 {
            self.stall_seconds / self.watch_seconds
        } else {
            0.0
        }
    }
}

/// Bytes per second over the windows of [`WINDOWS`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Throughput {
    /// Last second.
    pub w1: f64,
    /// Last 30 seconds.
    pub w30: f64,
    /// Last minute.
    pub w60: f64,
    /// Last 5 minutes.
    pub w300: f64,
}

/// `CONNECT` tunnels (https through the relay).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Tunnels {
    /// Tunnels closed.
    pub count: u64,
    /// Tunnels whose upstream connection failed.
    pub failed: u64,
    /// Bytes from the origin.
    pub bytes_down: u64,
    /// Bytes to the origin.
    pub bytes_up: u64,
}

/// Everything the readers need, at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// How the numbers were obtained.
    pub measure: Measure,
    /// Time since the run started.
    pub elapsed: Duration,
    /// Viewers asked for.
    pub target: u32,
    /// Viewers whose first process has started.
    pub started: u32,
    /// Viewers with a live process.
    pub running: u32,
    /// Running viewers that received (relay) or requested (log) a segment within
    /// [`STREAMING_WINDOW`].
    pub streaming: u32,
    /// Most viewers streaming at once, at any snapshot of the run.
    pub streaming_peak: u32,
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
    /// Requests by kind (relay: finished exchanges; log: request starts).
    pub requests: BTreeMap<RequestKind, u64>,
    /// Response body bytes by kind (relay only).
    pub bytes: BTreeMap<RequestKind, u64>,
    /// Time to first byte by kind (relay only).
    pub ttfb: BTreeMap<RequestKind, Latency>,
    /// Time to last byte (the whole download) by kind (relay only).
    pub ttlb: BTreeMap<RequestKind, Latency>,
    /// Segment time to first byte over the last [`LATENCY_WINDOW`] seconds.
    pub segment_ttfb_recent: Latency,
    /// Segment download time over the last [`LATENCY_WINDOW`] seconds.
    pub segment_ttlb_recent: Latency,
    /// Upstream connection set-up times (relay only).
    pub connect: Latency,
    /// First request of a session → first segment buffered.
    pub startup: Latency,
    /// The player model's figures.
    pub playback: Playback,
    /// Segment bytes per second (relay only).
    pub segment_throughput: Throughput,
    /// All response bytes per second (relay only).
    pub throughput: Throughput,
    /// Media playlists read by the relay.
    pub playlists_seen: u64,
    /// HTTPS tunnels.
    pub tunnels: Tunnels,
    /// HTTP error responses (status ≥ 400) by status.
    pub http_errors: BTreeMap<u16, u64>,
    /// Failed connections or cut responses.
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
    /// Events folded in.
    pub events: u64,
    /// The last log lines of the most recent unexpected exit, with its viewer.
    pub last_failure: Option<(ViewerId, Vec<String>)>,
    /// The last [`crate::measure::history::RECENT_SAMPLES`] seconds, oldest first.
    pub recent: Vec<Sample>,
    /// Recent notable events, oldest first.
    pub notices: Notices,
    /// Every viewer, by number.
    pub viewers: Vec<ViewerRow>,
    /// Media time received per wall-clock second per streaming viewer over the last 30 s
    /// (1.0 = keeping up with a live stream; below 1 the buffers drain).
    pub speed: Option<f64>,
}

impl Snapshot {
    /// Requests of one kind.
    #[must_use]
    pub fn requests_of(&self, kind: RequestKind) -> u64 {
        self.requests.get(&kind).copied().unwrap_or(0)
    }

    /// Master and media playlist requests.
    #[must_use]
    pub fn playlist_requests(&self) -> u64 {
        self.requests_of(RequestKind::Master) + self.requests_of(RequestKind::Playlist)
    }

    /// All requests.
    #[must_use]
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Bytes of one kind.
    #[must_use]
    pub fn bytes_of(&self, kind: RequestKind) -> u64 {
        self.bytes.get(&kind).copied().unwrap_or(0)
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

    /// (HTTP errors + network errors) / requests over the whole run.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn error_rate(&self) -> f64 {
        let requests = self.total_requests();
        let errors = self.http_errors.values().sum::<u64>() + self.network_errors;
        if requests == 0 {
            0.0
        } else {
            errors as f64 / requests as f64
        }
    }

    /// Events lost / events produced.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn drop_rate(&self) -> f64 {
        let all = self.events + self.dropped_events;
        if all == 0 {
            0.0
        } else {
            self.dropped_events as f64 / all as f64
        }
    }
}

fn kind_index(kind: RequestKind) -> usize {
    RequestKind::ALL.iter().position(|k| *k == kind).unwrap_or(RequestKind::ALL.len() - 1)
}

/// One second of the rolling windows.
#[derive(Debug, Clone, Default)]
struct Slot {
    second: u64,
    bytes: [u64; 6],
    requests: u64,
    errors: u64,
    /// Media seconds of the segments that arrived in this second.
    media: f64,
    segment: Option<Box<(Hist, Hist)>>,
}

/// Per-second slots for the last [`WINDOWS`]`.max()` seconds, and the running segment
/// latency histograms of the last [`LATENCY_WINDOW`] seconds (a slot's values are subtracted
/// when it leaves that window, so no tick merges 30 histograms).
#[derive(Debug, Default)]
struct Windows {
    slots: VecDeque<Slot>,
    recent: Option<Box<(Hist, Hist)>>,
    /// Slots older than this second have left `recent`.
    recent_from: u64,
}

impl Windows {
    fn slot(&mut self, second: u64) -> Option<&mut Slot> {
        let newest = self.slots.back().map_or(0, |s| s.second);
        if self.slots.is_empty() || second > newest {
            let from = if self.slots.is_empty() { second } else { newest + 1 };
            for s in from.max(second.saturating_sub(WINDOWS[3]))..=second {
                self.slots.push_back(Slot { second: s, ..Slot::default() });
            }
            while self.slots.len() as u64 > WINDOWS[3] + 1 {
                self.slots.pop_front();
            }
            self.expire(second);
        }
        let first = self.slots.front()?.second;
        let idx = usize::try_from(second.checked_sub(first)?).ok()?;
        self.slots.get_mut(idx)
    }

    /// Takes slots older than [`LATENCY_WINDOW`] before `now_second` out of `recent`.
    fn expire(&mut self, now_second: u64) {
        let keep_from = now_second.saturating_sub(LATENCY_WINDOW);
        if keep_from <= self.recent_from {
            return;
        }
        for slot in &mut self.slots {
            if slot.second >= keep_from {
                break;
            }
            if let (Some(h), Some(recent)) = (slot.segment.take(), self.recent.as_mut()) {
                recent.0.subtract(&h.0);
                recent.1.subtract(&h.1);
            }
        }
        self.recent_from = keep_from;
    }

    /// Counts one request (and whether it failed) in `second`.
    fn count(&mut self, second: u64, errors: u64) {
        if let Some(slot) = self.slot(second) {
            slot.requests += 1;
            slot.errors += errors;
        }
    }

    /// The sample of a finished `second` (viewer counts are filled in by the caller).
    fn sample(&self, second: u64) -> Sample {
        let Some(slot) = self.slots.iter().find(|s| s.second == second) else {
            return Sample { second, ..Sample::default() };
        };
        let p95 = slot.segment.as_ref().map(|h| h.1.summary()).filter(|l| l.count > 0).map(|l| l.p95);
        Sample {
            second,
            bytes: slot.bytes.iter().sum(),
            requests: slot.requests,
            errors: slot.errors,
            segment_p95: p95,
            ..Sample::default()
        }
    }

    /// Records one segment's latencies in `second`'s slot and the running window.
    fn record_segment(&mut self, second: u64, ttfb: Duration, ttlb: Duration) {
        if second < self.recent_from {
            return;
        }
        let Some(slot) = self.slot(second) else { return };
        let h =
            slot.segment.get_or_insert_with(|| Box::new((Hist::with_precision(2), Hist::with_precision(2))));
        h.0.record(ttfb);
        h.1.record(ttlb);
        let recent =
            self.recent.get_or_insert_with(|| Box::new((Hist::with_precision(2), Hist::with_precision(2))));
        recent.0.record(ttfb);
        recent.1.record(ttlb);
    }

    /// Bytes per second over the last `window` whole seconds before `now_second`, of kinds
    /// selected by `pick`.
    #[allow(clippy::cast_precision_loss)]
    fn rate(&self, now_second: u64, window: u64, pick: impl Fn(usize) -> bool) -> f64 {
        let span = window.min(now_second);
        if span == 0 {
            return 0.0;
        }
        let from = now_second - span;
        let total: u64 = self
            .slots
            .iter()
            .filter(|s| s.second >= from && s.second < now_second)
            .map(|s| s.bytes.iter().enumerate().filter(|(i, _)| pick(*i)).map(|(_, b)| b).sum::<u64>())
            .sum();
        total as f64 / span as f64
    }

    /// Media seconds received per second over the last `window` whole seconds.
    #[allow(clippy::cast_precision_loss)]
    fn media_rate(&self, now_second: u64, window: u64) -> Option<f64> {
        let span = window.min(now_second);
        let from = now_second.checked_sub(span)?;
        let media: f64 =
            self.slots.iter().filter(|s| s.second >= from && s.second < now_second).map(|s| s.media).sum();
        (span > 0).then(|| media / span as f64)
    }

    fn add_media(&mut self, second: u64, media: Duration) {
        if let Some(slot) = self.slot(second) {
            slot.media += media.as_secs_f64();
        }
    }

    fn recent_segments(&mut self, now_second: u64) -> (Latency, Latency) {
        self.expire(now_second);
        self.recent.as_ref().map_or_else(Default::default, |r| (r.0.summary(), r.1.summary()))
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
    /// Duration credited per segment when the log is all we have.
    assumed_segment: Duration,
    ttfb: BTreeMap<RequestKind, Hist>,
    ttlb: BTreeMap<RequestKind, Hist>,
    connect: Hist,
    startup: Hist,
    windows: Windows,
    /// Finished sessions' watch and stall time.
    watched: Duration,
    stalled: Duration,
    /// Stalls still running at the end of their session are counted then.
    stopping_at: Option<Instant>,
    series: Series,
}

impl Stats {
    /// Empty aggregates for `target` viewers whose first starts are planned at `planned`
    /// (offsets from `started_at`; see [`crate::control::plan::RampPlan`]). `assumed_segment` is the
    /// media time credited per segment request in [`Measure::Log`] (the target duration).
    #[must_use]
    pub fn new(
        target: u32,
        started_at: Instant,
        planned: Vec<Duration>,
        dropped: Arc<AtomicU64>,
        measure: Measure,
        assumed_segment: Duration,
    ) -> Stats {
        Stats {
            started_at,
            planned,
            viewers: vec![Viewer::default(); target as usize],
            snap: Snapshot { target, measure, ..Snapshot::default() },
            history: VecDeque::new(),
            dropped,
            assumed_segment,
            ttfb: BTreeMap::new(),
            ttlb: BTreeMap::new(),
            connect: Hist::default(),
            startup: Hist::default(),
            windows: Windows::default(),
            watched: Duration::ZERO,
            stalled: Duration::ZERO,
            stopping_at: None,
            series: Series::default(),
        }
    }

    /// Folds one event in.
    pub fn apply(&mut self, ev: Event) {
        self.snap.events += 1;
        let at = ev.at.saturating_duration_since(self.started_at);
        let second = at.as_secs();
        if matches!(ev.kind, EventKind::RunStopping) {
            self.snap.notices.push(at, None, Level::Info, "run ending: stopping every viewer".into());
            let now = self.snapshot(ev.at);
            self.snap.streaming_at_stop = Some(now.streaming);
            self.snap.running_at_stop = Some(now.running);
            self.stopping_at = Some(ev.at);
            return;
        }
        let Some(v) = self.viewers.get_mut(ev.viewer as usize) else {
            return;
        };
        let s = &mut self.snap;
        let relay = s.measure == Measure::Relay;
        match ev.kind {
            EventKind::Spawned { took, .. } => {
                s.spawn_time_max = s.spawn_time_max.max(took);
                s.spawn_time_total += took;
                end_session(v, ev.at, self.stopping_at, &mut self.watched, &mut self.stalled, s);
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
                s.notices.push(at, Some(ev.viewer), Level::Error, format!("could not start: {error}"));
                v.tail = vec![error];
                s.last_failure = Some((ev.viewer, v.tail.clone()));
            }
            EventKind::Log(log) => match log {
                LogEvent::Request { kind, .. } if !relay => {
                    *s.requests.entry(kind).or_default() += 1;
                    self.windows.count(second, 0);
                    v.player.request(ev.at);
                    if kind == RequestKind::Segment {
                        v.segments += 1;
                        self.windows.add_media(second, self.assumed_segment);
                        v.last_segment = Some(ev.at);
                        let b = v.player.segment(ev.at, self.assumed_segment);
                        buffered(b, &mut self.startup, s);
                    }
                }
                LogEvent::HttpError { status } if !relay => {
                    *s.http_errors.entry(status).or_default() += 1;
                    v.errors += 1;
                    self.windows.count(second, 1);
                    s.notices.push(at, Some(ev.viewer), Level::Warn, format!("HTTP {status} (from the log)"));
                }
                LogEvent::NetworkError { reason } if !relay => {
                    s.network_errors += 1;
                    v.errors += 1;
                    self.windows.count(second, 1);
                    s.notices.push(at, Some(ev.viewer), Level::Warn, format!("network error: {reason}"));
                }
                LogEvent::SegmentSkipped => s.segments_skipped += 1,
                LogEvent::Request { .. }
                | LogEvent::HttpError { .. }
                | LogEvent::NetworkError { .. }
                | LogEvent::Problem { .. } => {}
            },
            EventKind::Request(r) => {
                let slot = self.windows.slot(second);
                record_request(&r, s, &mut self.ttfb, &mut self.ttlb, &mut self.connect, slot);
                v.bytes += r.bytes;
                if let Some(problem) = request_problem(&r) {
                    v.errors += 1;
                    s.notices.push_with(at, Some(ev.viewer), Level::Warn, problem, vec![r.url.clone()]);
                }
                if let (RequestKind::Segment, Some(a), Some(b)) = (r.kind, r.ttfb, r.ttlb) {
                    self.windows.record_segment(second, a, b);
                }
                if let (true, Some(m)) = (r.kind == RequestKind::Segment && r.complete_ok(), r.media_duration)
                {
                    self.windows.add_media(second, Duration::from_secs_f64(m.max(0.0)));
                }
                if let Some(b) = segment_buffered(&r, ev.at, v) {
                    buffered(b, &mut self.startup, s);
                }
            }
            EventKind::PlaylistSeen { .. } => s.playlists_seen += 1,
            EventKind::Tunnel(t) => record_tunnel(&t, s),
            EventKind::Exited { exit, stopped_by_us, tail, .. } => {
                let map = if stopped_by_us { &mut s.exits_on_stop } else { &mut s.exits_unexpected };
                *map.entry(exit).or_default() += 1;
                if !stopped_by_us {
                    let text = format!("FFmpeg exited ({exit}); restarting after a backoff");
                    s.notices.push_with(at, Some(ev.viewer), Level::Warn, text, tail.clone());
                    v.tail = tail;
                    s.last_failure = Some((ev.viewer, v.tail.clone()));
                }
                end_session(v, ev.at, self.stopping_at, &mut self.watched, &mut self.stalled, s);
                v.state = ViewerState::Backoff;
            }
            EventKind::Backoff { .. } => v.state = ViewerState::Backoff,
            EventKind::RunStopping => {}
            EventKind::Stalled { waited } => {
                s.stall_restarts += 1;
                let text = format!("no segment for {} s: restarting", waited.as_secs());
                s.notices.push(at, Some(ev.viewer), Level::Warn, text);
            }
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
        let (mut watched, mut stalled, mut stalled_now) = (self.watched, self.stalled, 0);
        let until = self.stopping_at.map_or(now, |t| t.min(now));
        let mut rows = Vec::with_capacity(self.viewers.len());
        for (i, v) in self.viewers.iter().enumerate() {
            let mut row = ViewerRow {
                id: u32::try_from(i).unwrap_or(u32::MAX),
                state: v.state,
                stalled: false,
                starts: v.starts,
                segments: v.segments,
                bytes: v.bytes,
                errors: v.errors,
                stall_seconds: v.stalled.as_secs_f64(),
                last_error: v.tail.iter().rev().find(|l| !l.trim().is_empty()).cloned(),
            };
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
                    let (w, st) = v.player.watched(until);
                    watched += w;
                    stalled += st;
                    row.stall_seconds += st.as_secs_f64();
                    if v.player.stalled_for(until).is_some() {
                        stalled_now += 1;
                        row.stalled = true;
                    }
                }
                ViewerState::Backoff => backoff += 1,
                ViewerState::Ended => ended += 1,
                ViewerState::Waiting | ViewerState::Stopped => {}
            }
            rows.push(row);
        }
        s.viewers = rows;
        (s.started, s.running, s.streaming, s.backoff, s.ended) =
            (started, running, streaming, backoff, ended);
        s.streaming_peak = s.streaming_peak.max(streaming);
        firsts.sort();
        s.ramp_rate_achieved = achieved_rate(&firsts);
        s.ramp_lag_max = lag;
        s.dropped_events = self.dropped.load(Ordering::Relaxed);

        // Finished stalls are in `stalls` already; an ongoing one is in `stalled_now` and its
        // time so far in `stall_seconds`; it is counted when it ends (or its session does).
        let p = &mut s.playback;
        p.watch_seconds = watched.as_secs_f64();
        p.stall_seconds = stalled.as_secs_f64();
        p.stalled_now = stalled_now;

        for (kind, h) in &self.ttfb {
            s.ttfb.insert(*kind, h.summary());
        }
        for (kind, h) in &self.ttlb {
            s.ttlb.insert(*kind, h.summary());
        }
        s.connect = self.connect.summary();
        s.startup = self.startup.summary();
        let sec = s.elapsed.as_secs();
        let seg = kind_index(RequestKind::Segment);
        let w = &self.windows;
        let tp = |pick: &dyn Fn(usize) -> bool| Throughput {
            w1: w.rate(sec, WINDOWS[0], pick),
            w30: w.rate(sec, WINDOWS[1], pick),
            w60: w.rate(sec, WINDOWS[2], pick),
            w300: w.rate(sec, WINDOWS[3], pick),
        };
        s.segment_throughput = tp(&|i| i == seg);
        s.speed = w.media_rate(sec, WINDOWS[1]).filter(|_| streaming > 0).map(|m| m / f64::from(streaming));
        s.throughput = tp(&|_| true);
        let (ttfb, ttlb) = self.windows.recent_segments(sec);
        s.segment_ttfb_recent = ttfb;
        s.segment_ttlb_recent = ttlb;

        while self.series.next_second() < sec {
            let mut sample = self.windows.sample(self.series.next_second());
            (sample.running, sample.streaming, sample.stalled) = (running, streaming, stalled_now);
            self.series.push(sample);
        }
        s.recent = self.series.recent();

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

    /// One sample per finished second of the run so far.
    #[must_use]
    pub fn series(&self) -> &[Sample] {
        self.series.all()
    }
}

/// Ends a viewer's playback session at `at` (or at the stop, if earlier): its watch time and
/// any stall still running are booked.
fn end_session(
    v: &mut Viewer,
    at: Instant,
    stopping_at: Option<Instant>,
    watched: &mut Duration,
    stalled: &mut Duration,
    s: &mut Snapshot,
) {
    let end = stopping_at.map_or(at, |t| t.min(at));
    let (w, st) = v.player.watched(end);
    *watched += w;
    *stalled += st;
    v.stalled += st;
    if v.player.stalled_for(end).is_some() {
        s.playback.stalls += 1;
    }
    v.player.reset();
}

/// Feeds a fully received segment to the viewer's player model.
fn segment_buffered(r: &Request, at: Instant, v: &mut Viewer) -> Option<crate::measure::player::Buffered> {
    v.player.request(at.checked_sub(r.elapsed).unwrap_or(at));
    if r.kind != RequestKind::Segment || !r.complete_ok() {
        return None;
    }
    v.last_segment = Some(at);
    v.segments += 1;
    let media = Duration::from_secs_f64(r.media_duration?.max(0.0));
    Some(v.player.segment(at, media))
}

fn buffered(b: crate::measure::player::Buffered, startup: &mut Hist, s: &mut Snapshot) {
    if let Some(d) = b.startup {
        startup.record(d);
        s.playback.started += 1;
    }
    if b.stall.is_some() {
        s.playback.stalls += 1;
    }
}

fn record_request(
    r: &Request,
    s: &mut Snapshot,
    ttfb: &mut BTreeMap<RequestKind, Hist>,
    ttlb: &mut BTreeMap<RequestKind, Hist>,
    connect: &mut Hist,
    slot: Option<&mut Slot>,
) {
    *s.requests.entry(r.kind).or_default() += 1;
    *s.bytes.entry(r.kind).or_default() += r.bytes;
    if let Some(c) = r.connect {
        connect.record(c);
    }
    let http_error = r.status.filter(|code| *code >= 400);
    if let Some(code) = http_error {
        *s.http_errors.entry(code).or_default() += 1;
    }
    if r.network_error.is_some() {
        s.network_errors += 1;
    }
    let failed = http_error.is_some() || r.network_error.is_some();
    if let Some(d) = r.ttfb {
        ttfb.entry(r.kind).or_default().record(d);
    }
    if let Some(d) = r.ttlb {
        ttlb.entry(r.kind).or_default().record(d);
        if r.kind == RequestKind::Segment && r.media_duration.is_some_and(|m| d.as_secs_f64() > m) {
            s.playback.late_segments += 1;
        }
    }
    if let Some(slot) = slot {
        slot.bytes[kind_index(r.kind)] += r.bytes;
        slot.requests += 1;
        slot.errors += u64::from(failed);
    }
}

/// What went wrong with a request, if anything: `HTTP 404 on segment`.
fn request_problem(r: &Request) -> Option<String> {
    let kind = r.kind.label();
    match (&r.network_error, r.status) {
        (Some(e), _) => Some(format!("network error on {kind}: {e}")),
        (None, Some(code)) if code >= 400 => Some(format!("HTTP {code} on {kind}")),
        _ => None,
    }
}

fn record_tunnel(t: &Tunnel, s: &mut Snapshot) {
    let tunnels = &mut s.tunnels;
    tunnels.count += 1;
    tunnels.bytes_down += t.bytes_down;
    tunnels.bytes_up += t.bytes_up;
    if t.error.is_some() {
        tunnels.failed += 1;
        s.network_errors += 1;
    }
}

/// Runs the stats owner until every sender is gone; returns the final snapshot and the run's
/// per-second series.
pub async fn run(
    mut stats: Stats,
    mut events: mpsc::Receiver<Event>,
    publish: watch::Sender<Snapshot>,
    tick: Duration,
) -> (Snapshot, Vec<Sample>) {
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
    (last, stats.series.all().to_vec())
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
            Measure::Log,
            Duration::from_secs(2),
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
        let mut st =
            Stats::new(1, t0, vec![Duration::ZERO], Arc::default(), Measure::Log, Duration::from_secs(2));
        st.apply(ev(0, t0, EventKind::Spawned { pid: 1, took: Duration::ZERO }));
        st.snapshot(t0);
        for i in 0..10 {
            st.apply(seg(t0 + Duration::from_millis(i * 100), 0));
        }
        let s = st.snapshot(t0 + Duration::from_secs(2));
        assert!((s.rate_of(RequestKind::Segment) - 5.0).abs() < 1e-9, "{:?}", s.request_rates);
        let s = st.snapshot(t0 + Duration::from_secs(4));
        assert!((s.rate_of(RequestKind::Segment) - 2.5).abs() < 1e-9, "{:?}", s.request_rates);
        // At 7 s the window starts at the 2 s snapshot: the first second's requests are out.
        let s = st.snapshot(t0 + Duration::from_secs(7));
        assert_eq!(s.rate_of(RequestKind::Segment), 0.0, "{:?}", s.request_rates);
    }

    #[test]
    fn events_for_unknown_viewers_are_ignored() {
        let t0 = Instant::now();
        let mut st =
            Stats::new(1, t0, vec![Duration::ZERO], Arc::default(), Measure::Log, Duration::from_secs(2));
        st.apply(ev(5, t0, EventKind::Spawned { pid: 1, took: Duration::ZERO }));
        st.apply(seg(t0, 5));
        let s = st.snapshot(t0);
        assert_eq!((s.process_starts, s.requests_of(RequestKind::Segment)), (0, 0));
        // The same events for the known viewer count.
        st.apply(ev(0, t0, EventKind::Spawned { pid: 2, took: Duration::ZERO }));
        st.apply(seg(t0, 0));
        let s = st.snapshot(t0);
        assert_eq!((s.process_starts, s.requests_of(RequestKind::Segment)), (1, 1));
    }

    fn fetched(kind: RequestKind, bytes: u64, ttfb_ms: u64, ttlb_ms: u64, media: Option<f64>) -> EventKind {
        EventKind::Request(Request {
            kind,
            url: "http://h/x".into(),
            status: Some(200),
            bytes,
            connect: None,
            ttfb: Some(Duration::from_millis(ttfb_ms)),
            ttlb: Some(Duration::from_millis(ttlb_ms)),
            elapsed: Duration::from_millis(ttlb_ms),
            media_duration: media,
            network_error: None,
        })
    }

    #[test]
    fn relay_requests_give_bytes_latency_throughput_and_playback() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut st = Stats::new(1, t0, vec![Duration::ZERO], Arc::default(), Measure::Relay, ms(2000));
        st.apply(ev(0, t0, EventKind::Spawned { pid: 1, took: Duration::ZERO }));
        st.apply(ev(0, t0 + ms(20), fetched(RequestKind::Master, 300, 2, 3, None)));
        st.apply(ev(0, t0 + ms(40), fetched(RequestKind::Playlist, 400, 2, 3, None)));
        // Three segments at once, then one every 2 s for 20 s: never stalls.
        for i in 0..3 {
            st.apply(ev(0, t0 + ms(100 + i * 10), fetched(RequestKind::Segment, 10_000, 1, 5, Some(2.0))));
        }
        for i in 1..=10 {
            st.apply(ev(0, t0 + ms(120 + 2000 * i), fetched(RequestKind::Segment, 10_000, 1, 5, Some(2.0))));
        }
        // A log line about a request is not counted twice in relay mode.
        st.apply(seg(t0 + ms(21_000), 0));
        let s = st.snapshot(t0 + ms(21_500));
        assert_eq!(s.requests_of(RequestKind::Segment), 13);
        assert_eq!(s.playlist_requests(), 2);
        assert_eq!(s.bytes_of(RequestKind::Segment), 130_000);
        assert_eq!(s.ttlb[&RequestKind::Segment].count, 13);
        assert!((s.ttlb[&RequestKind::Segment].p95 - 0.005).abs() < 0.0001);
        assert_eq!(s.startup.count, 1);
        assert!((s.startup.p50 - 0.083).abs() < 0.001, "master request at 17 ms → first segment at 100 ms");
        assert_eq!(s.playback.stalls, 0);
        assert!(s.playback.watch_seconds > 21.0);
        assert!((s.segment_throughput.w30 - 130_000.0 / 21.0).abs() < 1.0, "{:?}", s.segment_throughput);
        assert!((s.segment_throughput.w1 - 10_000.0).abs() < 1.0, "second 20 had one segment");
        assert_eq!(s.segment_ttlb_recent.count, 13);
        assert_eq!(s.recent.len(), 21, "one sample per finished second");
        assert!(s.speed.is_some_and(|x| (x - 26.0 / 21.0).abs() < 1e-6), "{:?}", s.speed);
        let s20 = s.recent.last().copied().unwrap_or_default();
        assert_eq!((s20.second, s20.bytes, s20.requests, s20.running), (20, 10_000, 1, 1));
        assert!(s20.segment_p95.is_some_and(|p| (p - 0.005).abs() < 0.0001), "{s20:?}");
        let row = s.viewers.first().cloned();
        assert_eq!(row.map(|r| (r.segments, r.bytes, r.starts)), Some((13, 130_700, 1)));
        assert_eq!(s.error_rate(), 0.0);

        // Nothing arrives for 10 s: the 6 s buffer runs dry at ~26.1 s; one late segment.
        let stalled = st.snapshot(t0 + ms(28_000));
        assert_eq!(stalled.playback.stalled_now, 1);
        st.apply(ev(0, t0 + ms(30_120), fetched(RequestKind::Segment, 10_000, 1, 3000, Some(2.0))));
        let s = st.snapshot(t0 + ms(30_200));
        assert_eq!(s.playback.stalls, 1);
        assert_eq!(s.playback.stalled_now, 0);
        assert!((s.playback.stall_seconds - 4.0).abs() < 0.05, "{:?}", s.playback);
        assert_eq!(s.playback.late_segments, 1);
        assert!(s.playback.stall_ratio() > 0.1);
        // The 30 s latency window forgets: at 55 s only the segment of second 30 is in it.
        assert_eq!(st.snapshot(t0 + ms(55_000)).segment_ttlb_recent.count, 1);
        assert_eq!(st.snapshot(t0 + ms(61_000)).segment_ttlb_recent.count, 0);
        assert_eq!(st.snapshot(t0 + ms(61_000)).ttlb[&RequestKind::Segment].count, 14, "the run keeps all");
    }

    #[test]
    fn errors_by_status_and_network() {
        let t0 = Instant::now();
        let mut st = Stats::new(1, t0, vec![Duration::ZERO], Arc::default(), Measure::Relay, Duration::ZERO);
        let mut r = Request {
            kind: RequestKind::Segment,
            url: "http://h/s.ts".into(),
            status: Some(404),
            bytes: 150,
            connect: Some(Duration::from_micros(80)),
            ttfb: Some(Duration::from_millis(1)),
            ttlb: Some(Duration::from_millis(1)),
            elapsed: Duration::from_millis(1),
            media_duration: Some(2.0),
            network_error: None,
        };
        st.apply(ev(0, t0, EventKind::Request(r.clone())));
        r.status = None;
        r.network_error = Some("connection refused".into());
        st.apply(ev(0, t0, EventKind::Request(r)));
        let s = st.snapshot(t0);
        assert_eq!(s.http_errors.get(&404), Some(&1));
        assert_eq!(s.network_errors, 1);
        assert!((s.error_rate() - 1.0).abs() < 1e-9);
        assert_eq!(s.connect.count, 2);
        assert_eq!(s.startup.count, 0, "an error response buffers nothing");
        let texts: Vec<_> = s.notices.iter().map(|n| (n.text.as_str(), n.repeats)).collect();
        assert_eq!(texts, [("HTTP 404 on segment", 1), ("network error on segment: connection refused", 1)]);
        assert_eq!(s.notices.iter().next().map(|n| n.detail.clone()), Some(vec!["http://h/s.ts".to_owned()]));
        assert_eq!(s.viewers.first().map(|v| (v.errors, v.bytes)), Some((2, 300)));
        // The second is sampled once it is over.
        let later = st.snapshot(t0 + Duration::from_millis(2100));
        assert_eq!(later.recent.len(), 2);
        let first = later.recent.first().copied().unwrap_or_default();
        assert_eq!((first.second, first.requests, first.errors, first.bytes), (0, 2, 2, 300));
        assert_eq!(st.series().len(), 2);
    }
}
