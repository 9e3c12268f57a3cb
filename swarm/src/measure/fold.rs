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

use tokio::sync::{mpsc, watch};

use crate::measure::events::{
    EndCause, Event, EventKind, FinishReason, LowLatency, Message, Problem, Request, RequestKind,
};
use crate::measure::exchanges::{record_request, record_tunnel, request_problem};
use crate::measure::generator::{CpuSampler, Health};
use crate::measure::history::{Level, SecondSample, Series, ViewerRow, ViewerState};
use crate::measure::latency::Hist;
use crate::measure::player::{Player, Verdicts};
use crate::measure::ramp::achieved_rate;
use crate::measure::results::{Results, FORMAT};
use crate::measure::snapshot::{Measure, Snapshot, Throughput, RATE_WINDOW, STREAMING_WINDOW, WINDOWS};
use crate::measure::streams::{StreamFigures, StreamHists};
use crate::measure::trail::Trail;
use crate::measure::windows::{kind_index, Windows};

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
    /// When the viewer finished (its stream ended, or the run stopped it).
    finished_at: Option<Instant>,
    /// Since when it has had no process (after one of its sessions ended by itself).
    down_since: Option<Instant>,
    /// Time it had no process, between its sessions.
    down: Duration,
    /// Sessions that ended by themselves (or were restarted for a stall) after it had played.
    interruptions: u64,
    /// Its latest live-edge latency, seconds.
    live_latency: Option<f64>,
    /// The variant of its latest segment, and its switches.
    variant: Option<u64>,
    switches: u64,
    /// Its latest media playlist had `EXT-X-ENDLIST`.
    saw_end: bool,
    /// Its last session played the finished stream to its end: until when its buffer plays.
    played_out: Option<Instant>,
    /// Its last session ended at its `--session-length`: the next one is not a restart.
    zapped: bool,
    /// The stream it plays (an index into the run's streams; 0 with one).
    stream: u16,
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
    /// What each viewer's player model says, for the stall watchdogs.
    verdicts: Arc<Verdicts>,
    ttfb: BTreeMap<RequestKind, Hist>,
    ttlb: BTreeMap<RequestKind, Hist>,
    connect: Hist,
    tls: Hist,
    startup: Hist,
    rejoin: Hist,
    live_latency: Hist,
    /// The wall clock (Unix seconds) at `started_at`, for program date-times.
    wall_start: f64,
    windows: Windows,
    /// Stalls still running at the end of their session are counted then.
    stopping_at: Option<Instant>,
    series: Series,
    /// As of the last snapshot: first starts (sorted offsets), and watch and stall time.
    firsts: Vec<Duration>,
    watch_totals: (Duration, Duration),
    down_total: Duration,
    health: Health,
    /// With several streams, each one's counts and histograms (copied to the snapshot).
    streams: Vec<(StreamFigures, StreamHists)>,
    /// With an event log (`--report FILE.ndjson`): every request and state change.
    trail: Option<Trail>,
}

impl Stats {
    /// Empty aggregates for `target` viewers whose first starts are planned at `planned`
    /// (offsets from `started_at`; see `control::plan::RampPlan`); `measure` says how the
    /// engine obtains its figures.
    #[must_use]
    pub fn new(
        target: u32,
        started_at: Instant,
        planned: Vec<Duration>,
        dropped: Arc<AtomicU64>,
        measure: Measure,
    ) -> Stats {
        Stats {
            started_at,
            planned,
            viewers: vec![Viewer::default(); target as usize],
            snap: Snapshot { target, measure, ..Snapshot::default() },
            history: VecDeque::new(),
            dropped,
            verdicts: Arc::new(Verdicts::new(target as usize, started_at)),
            ttfb: BTreeMap::new(),
            ttlb: BTreeMap::new(),
            connect: Hist::default(),
            tls: Hist::default(),
            startup: Hist::default(),
            rejoin: Hist::default(),
            live_latency: Hist::default(),
            wall_start: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64()
                - started_at.elapsed().as_secs_f64(),
            windows: Windows::default(),
            stopping_at: None,
            series: Series::default(),
            firsts: Vec::new(),
            watch_totals: (Duration::ZERO, Duration::ZERO),
            down_total: Duration::ZERO,
            health: Health::default(),
            streams: Vec::new(),
            trail: None,
        }
    }

    /// Every request and change of a viewer's state is passed on to `trail` as it is folded
    /// in (`--report FILE.ndjson`).
    #[must_use]
    pub fn with_trail(mut self, trail: Trail) -> Stats {
        self.trail = Some(trail);
        self
    }

    /// Passes the trail's records gathered so far on (see [`Trail::flush`]).
    pub fn flush_trail(&mut self) {
        if let Some(t) = self.trail.as_mut() {
            t.flush();
        }
    }

    /// Viewer `i` plays stream `of[i]` of `count` (`--stream`): the figures are also kept per
    /// stream.
    #[must_use]
    pub fn with_streams(mut self, of: &[u16], count: usize) -> Stats {
        for (v, s) in self.viewers.iter_mut().zip(of) {
            v.stream = *s;
        }
        self.streams = vec![Default::default(); count];
        for s in of {
            if let Some((f, _)) = self.streams.get_mut(usize::from(*s)) {
                f.viewers += 1;
            }
        }
        self
    }

    /// Viewers that have not played `timeout` after joining are failed starts (30 s unless
    /// set), and a viewer plays once `goal` of media is buffered (see [`Player`]).
    #[must_use]
    pub fn with_player(mut self, timeout: Duration, goal: Duration) -> Stats {
        for v in &mut self.viewers {
            v.player = Player::new(timeout).with_goal(goal);
        }
        self
    }

    /// A sample of the machine at `now`, over `over`: host CPU busy (0–1) and the swarm's own
    /// CPU in cores.
    pub fn generator_sample(&mut self, now: Instant, over: Duration, host: f64, process: f64) {
        self.health.sample(now, over, host, process);
    }

    /// A stats tick ran `lag` behind its schedule.
    pub fn generator_tick(&mut self, lag: Duration) {
        self.health.tick(lag);
    }

    /// What the viewers' player models say, for the stall watchdogs (updated as events are
    /// folded in).
    #[must_use]
    pub fn verdicts(&self) -> Arc<Verdicts> {
        Arc::clone(&self.verdicts)
    }

    /// Folds one message in.
    pub fn apply_message(&mut self, m: Message) {
        match m {
            Message::Event(ev) => self.apply(ev),
            Message::RunStopping { at } => self.run_stopping(at),
        }
    }

    /// The run begins to stop its viewers at `at`: what is streaming now is what the stop
    /// interrupts, and watch time ends here.
    pub fn run_stopping(&mut self, at: Instant) {
        let since = at.saturating_duration_since(self.started_at);
        self.snap.notices.push(since, None, Level::Info, "run ending: stopping every viewer".into());
        if let Some(t) = self.trail.as_mut() {
            t.run_stopping(at);
        }
        let now = self.snapshot(at);
        self.snap.streaming_at_stop = Some(now.streaming);
        self.snap.running_at_stop = Some(now.running);
        self.stopping_at = Some(at);
    }

    /// Folds one event in.
    pub fn apply(&mut self, ev: Event) {
        self.snap.events += 1;
        let at = ev.at.saturating_duration_since(self.started_at);
        let second = at.as_secs();
        // Seconds before this event are over: their samples hold the state at their end.
        self.close_seconds(second);
        let Some(v) = self.viewers.get_mut(ev.viewer as usize) else {
            return;
        };
        if let Some(t) = self.trail.as_mut() {
            t.before(&ev, &v.player, v.stream);
        }
        let (viewer, event_at) = (ev.viewer, ev.at);
        let s = &mut self.snap;
        // Its stream's share, with several streams.
        let mut stream = self.streams.get_mut(usize::from(v.stream)).map(|(f, h)| (f, h));
        match ev.kind {
            EventKind::SessionStarted { took } => {
                s.spawn_time_max = s.spawn_time_max.max(took);
                s.spawn_time_total += took;
                if let Some(since) = v.down_since.take() {
                    v.down +=
                        self.stopping_at.map_or(ev.at, |t| t.min(ev.at)).saturating_duration_since(since);
                }
                if v.played_out.take().is_some() {
                    // Restarted after the stream had ended (a live stream that showed
                    // EXT-X-ENDLIST): the last session's buffer is gone now.
                    v.player.session_ended(ev.at);
                }
                v.player.session_started(ev.at);
                v.state = ViewerState::Running;
                v.first_spawn.get_or_insert(ev.at);
                v.last_segment = None;
                v.starts += 1;
                s.process_starts += 1;
                if v.starts > 1 && !std::mem::take(&mut v.zapped) {
                    s.restarts += 1;
                }
            }
            EventKind::StartFailed { error } => {
                s.spawn_failures += 1;
                s.notices.push(at, Some(ev.viewer), Level::Error, format!("could not start: {error}"));
                v.tail = vec![error];
                s.last_failure = Some((ev.viewer, v.tail.clone()));
            }
            EventKind::Request(r) if !r.measured => {
                // Only its start was seen: a count, and one assumed segment for the player.
                *s.requests.entry(r.kind).or_default() += 1;
                if let Some((f, _)) = stream.as_mut() {
                    *f.requests.entry(r.kind).or_default() += 1;
                }
                self.windows.count(second, 0);
                v.player.request(ev.at);
                if r.kind == RequestKind::Segment {
                    v.segments += 1;
                    v.last_segment = Some(ev.at);
                    let media = Duration::from_secs_f64(r.media_duration.unwrap_or(0.0).max(0.0));
                    self.windows.add_media(second, media);
                    // The log shows when a segment was asked for, not when it arrived: the
                    // player runs on that, but a startup figure would be meaningless.
                    let _ = v.player.segment(ev.at, media);
                }
            }
            EventKind::Request(r) => {
                let slot = self.windows.slot(second);
                record_request(
                    &r,
                    s,
                    &mut self.ttfb,
                    &mut self.ttlb,
                    (&mut self.connect, &mut self.tls),
                    slot,
                );
                v.bytes += r.bytes;
                if let Some((f, h)) = stream.as_mut() {
                    f.request(&r, h);
                }
                if let Some(problem) = request_problem(&r) {
                    v.errors += 1;
                    s.notices.push_with(at, Some(ev.viewer), Level::Warn, problem, vec![r.url.clone()]);
                }
                if let (RequestKind::Segment, Some(a), Some(b)) = (r.kind, r.ttfb, r.ttlb) {
                    self.windows.record_segment(second, a, b);
                }
                if let (true, Some(m)) = (r.kind.is_media() && r.complete_ok(), r.media_duration) {
                    self.windows.add_media(second, Duration::from_secs_f64(m.max(0.0)));
                    if let Some(bw) = r.variant_bandwidth {
                        let rendition = s.renditions.entry(bw).or_default();
                        rendition.segments += 1;
                        rendition.media_seconds += m.max(0.0);
                        rendition.bytes += r.bytes;
                        v.variant = Some(bw);
                    }
                }
                if let Some(b) = segment_buffered(&r, ev.at, v) {
                    if let Some(d) = b.startup.or(b.zap) {
                        if let Some((_, h)) = stream.as_mut() {
                            h.startup.record(d);
                        }
                    }
                    if let Some(d) = b.startup {
                        self.startup.record(d);
                        s.playback.started += 1;
                    }
                    if let Some(d) = b.rejoin {
                        self.rejoin.record(d);
                        s.playback.rejoins += 1;
                    }
                    if let Some(d) = b.zap {
                        // A new viewing after a zap: a startup like a viewer's first.
                        self.startup.record(d);
                        s.playback.zap_starts += 1;
                    }
                    // How far behind the live edge this viewer plays, as each segment arrives.
                    let wall =
                        self.wall_start + ev.at.saturating_duration_since(self.started_at).as_secs_f64();
                    if let Some(l) = v.player.live_latency(ev.at, wall) {
                        // A negative figure is a clock ahead of the origin's: recorded as 0.
                        self.live_latency.record(Duration::from_secs_f64(l.max(0.0)));
                        if let Some((_, h)) = stream.as_mut() {
                            h.live_latency.record(Duration::from_secs_f64(l.max(0.0)));
                        }
                        v.live_latency = Some(l);
                    }
                }
            }
            EventKind::Problem(Problem::HttpStatus(status)) => {
                *s.http_errors.entry(status).or_default() += 1;
                if let Some((f, _)) = stream.as_mut() {
                    f.status(status);
                }
                v.errors += 1;
                self.windows.count(second, 1);
                s.notices.push(at, Some(ev.viewer), Level::Warn, format!("HTTP {status} (from the log)"));
            }
            EventKind::Problem(Problem::Network(reason)) => {
                s.network_errors += 1;
                if let Some((f, _)) = stream.as_mut() {
                    f.network_errors += 1;
                }
                v.errors += 1;
                self.windows.count(second, 1);
                s.notices.push(at, Some(ev.viewer), Level::Warn, format!("network error: {reason}"));
            }
            EventKind::Problem(Problem::SegmentSkipped) => {
                s.segments_skipped += 1;
                if let Some((f, _)) = stream.as_mut() {
                    f.segments_skipped += 1;
                }
            }
            EventKind::Problem(Problem::Unreadable(reason)) => {
                s.notices.push(at, Some(ev.viewer), Level::Warn, reason);
            }
            EventKind::PlaylistSeen { ended, .. } => {
                s.playlists_seen += 1;
                v.saw_end = ended;
            }
            EventKind::LowLatency(LowLatency::Joined) => s.ll_hls.sessions += 1,
            EventKind::LowLatency(LowLatency::Switched { from_report: true }) => {
                s.ll_hls.switches_from_report += 1;
            }
            EventKind::LowLatency(LowLatency::Switched { from_report: false }) => {
                s.ll_hls.switches_plain += 1
            }
            EventKind::LowLatency(LowLatency::Violation(rule)) => {
                s.ll_hls.conformance.add(rule, 1);
                let text = format!("LL-HLS conformance: {}", rule.label());
                s.notices.push(at, Some(ev.viewer), Level::Warn, text);
            }
            EventKind::VariantSwitch { from, to } => {
                v.switches += 1;
                if to > from {
                    s.switches.up += 1;
                } else {
                    s.switches.down += 1;
                }
            }
            EventKind::Tunnel(t) => record_tunnel(&t, s),
            EventKind::SessionEnded { cause: EndCause::Completed, .. } => {
                // The viewing was over (`--session-length`): the viewer left on purpose and a
                // new session takes its place. Not an interruption, not a stall.
                v.player.zap(ev.at);
                s.playback.zaps += 1;
                if let Some((f, _)) = stream.as_mut() {
                    f.zaps += 1;
                }
                v.zapped = true;
                v.state = ViewerState::Backoff;
            }
            EventKind::SessionEnded { ending, cause, .. }
                if cause == EndCause::Own && ending.success() && v.saw_end =>
            {
                // The stream ended and the session with it, as a player closes at the end of a
                // VOD: no interruption, and what it buffered still plays out.
                *s.exits_unexpected.entry(ending).or_default() += 1;
                // Its watching ends when the buffer has played (a session that outlived it by
                // a few milliseconds was not stalled: there was nothing left to play).
                v.played_out = Some(v.player.dry_at().unwrap_or(ev.at));
                v.state = ViewerState::Backoff;
            }
            EventKind::SessionEnded { engine, ending, cause, tail, .. } => {
                if let EndCause::Stalled { waited } = cause {
                    s.stall_restarts += 1;
                    let text = format!("no segment for {} s: restarting", waited.as_secs());
                    s.notices.push(at, Some(ev.viewer), Level::Warn, text);
                }
                if cause.by_us() {
                    *s.exits_on_stop.entry(ending).or_default() += 1;
                } else {
                    let text = format!("{engine} ended ({ending}); restarting after a backoff");
                    s.notices.push_with(at, Some(ev.viewer), Level::Warn, text, tail.clone());
                    *s.exits_unexpected.entry(ending).or_default() += 1;
                    v.tail = tail;
                    s.last_failure = Some((ev.viewer, v.tail.clone()));
                }
                if cause != EndCause::Stopped {
                    // Its buffer went with it; until the next session plays, the viewer is not
                    // watching anything.
                    v.player.session_ended(ev.at);
                    v.down_since = Some(ev.at);
                    if v.player.playing() {
                        v.interruptions += 1;
                    }
                }
                v.state = ViewerState::Backoff;
            }
            EventKind::Backoff { .. } => v.state = ViewerState::Backoff,
            EventKind::Finished { reason } => {
                v.finished_at = Some(v.played_out.take().unwrap_or(ev.at));
                if let Some(since) = v.down_since.take() {
                    v.down +=
                        self.stopping_at.map_or(ev.at, |t| t.min(ev.at)).saturating_duration_since(since);
                }
                v.state = match reason {
                    FinishReason::Shutdown => ViewerState::Stopped,
                    FinishReason::StreamEnded => ViewerState::Ended,
                }
            }
        }
        if let Some(t) = self.trail.as_mut() {
            t.after(viewer, event_at, &v.player, v.stream);
        }
        self.verdicts.set(viewer as usize, &v.player);
    }

    /// Brings the time-dependent parts up to `now` and returns the snapshot.
    pub fn snapshot(&mut self, now: Instant) -> Snapshot {
        let s = &mut self.snap;
        s.elapsed = now.saturating_duration_since(self.started_at);
        let (mut started, mut running, mut streaming, mut backoff, mut ended) = (0, 0, 0, 0, 0);
        let mut firsts = Vec::new();
        let mut lag = Duration::ZERO;
        let (mut watched, mut stalled, mut stalled_now) = (Duration::ZERO, Duration::ZERO, 0);
        let (mut stalls, mut failed_starts, mut interruptions, mut down) = (0, 0, 0, Duration::ZERO);
        let until = self.stopping_at.map_or(now, |t| t.min(now));
        let mut rows = Vec::with_capacity(self.viewers.len());
        // Per stream: the counts so far, and the viewer figures summed below.
        let mut per_stream: Vec<StreamFigures> = self
            .streams
            .iter()
            .map(|(f, h)| {
                let mut f = f.clone();
                f.summarize(h);
                f
            })
            .collect();
        for (i, v) in self.viewers.iter().enumerate() {
            // A viewer's playback ends when it finished or the run began to stop.
            let end = v.finished_at.map_or(until, |t| t.min(until));
            let (w, st) = v.player.watched(end);
            let live = v.finished_at.is_none() && self.stopping_at.is_none_or(|t| t > now);
            let stalled_here = live && (v.player.stalled_for(end).is_some() || v.player.failed_start(end));
            let open_down = v.down_since.map_or(Duration::ZERO, |d| end.saturating_duration_since(d));
            let row = ViewerRow {
                id: u32::try_from(i).unwrap_or(u32::MAX),
                stream: v.stream,
                state: v.state,
                stalled: stalled_here,
                starts: v.starts,
                segments: v.segments,
                bytes: v.bytes,
                errors: v.errors,
                stalls: v.player.stalls(end),
                stall_seconds: st.as_secs_f64(),
                watch_seconds: w.as_secs_f64(),
                live_latency_seconds: v.live_latency,
                variant_bandwidth: v.variant,
                switches: v.switches,
                last_error: v.tail.iter().rev().find(|l| !l.trim().is_empty()).cloned(),
            };
            watched += w;
            stalled += st;
            stalls += row.stalls;
            stalled_now += u32::from(stalled_here);
            failed_starts += u32::from(v.player.failed_start(end));
            interruptions += v.interruptions;
            down += v.down + open_down;
            let mut mine = per_stream.get_mut(usize::from(v.stream));
            if let Some(f) = mine.as_mut() {
                f.stalls += row.stalls;
                f.stall_seconds += row.stall_seconds;
                f.watch_seconds += row.watch_seconds;
                f.started += u32::from(v.first_spawn.is_some());
            }
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
                        if let Some(f) = mine.as_mut() {
                            f.streaming += 1;
                        }
                    }
                }
                ViewerState::Backoff => backoff += 1,
                ViewerState::Ended => ended += 1,
                ViewerState::Waiting | ViewerState::Stopped => {}
            }
            rows.push(row);
        }
        s.viewers = rows;
        s.streams = per_stream;
        (s.started, s.running, s.streaming, s.backoff, s.ended) =
            (started, running, streaming, backoff, ended);
        s.streaming_peak = s.streaming_peak.max(streaming);
        firsts.sort();
        s.ramp_rate_achieved = achieved_rate(&firsts);
        self.firsts = firsts;
        self.watch_totals = (watched, stalled);
        s.ramp_lag_max = lag;
        s.dropped_events = self.dropped.load(Ordering::Relaxed);
        s.generator = self.health.figures(s.dropped_events, s.ramp_lag_max);

        // Every viewer's playback up to now (or to its end): stalls finished and ongoing.
        let p = &mut s.playback;
        p.watch_seconds = watched.as_secs_f64();
        p.stall_seconds = stalled.as_secs_f64();
        p.stalled_now = stalled_now;
        p.stalls = stalls;
        p.failed_starts = failed_starts;
        p.interruptions = interruptions;
        p.down_seconds = down.as_secs_f64();
        self.down_total = down;

        for (kind, h) in &self.ttfb {
            s.ttfb.insert(*kind, h.summary());
        }
        for (kind, h) in &self.ttlb {
            s.ttlb.insert(*kind, h.summary());
        }
        s.connect = self.connect.summary();
        s.tls_handshake = self.tls.summary();
        s.startup = self.startup.summary();
        s.rejoin = self.rejoin.summary();
        s.live_latency = self.live_latency.summary();
        let sec = s.elapsed.as_secs();
        let seg = kind_index(RequestKind::Segment);
        let w = &self.windows;
        let tp = |pick: &dyn Fn(usize) -> bool| Throughput {
            w1: w.rate(sec, WINDOWS[0], pick),
            w30: w.rate(sec, WINDOWS[1], pick),
            w60: w.rate(sec, WINDOWS[2], pick),
            w300: w.rate(sec, WINDOWS[3], pick),
        };
        let part = kind_index(RequestKind::Part);
        // Media bytes: whole segments and LL-HLS parts.
        s.segment_throughput = tp(&|i| i == seg || i == part);
        s.speed = w.media_rate(sec, WINDOWS[1]).filter(|_| streaming > 0).map(|m| m / f64::from(streaming));
        s.throughput = tp(&|_| true);
        let (ttfb, ttlb) = self.windows.recent_segments(sec);
        s.segment_ttfb_recent = ttfb;
        s.segment_ttlb_recent = ttlb;

        self.close_seconds(sec);
        let s = &mut self.snap;
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

    /// Adds the samples of the seconds before `second` not sampled yet. Each holds its
    /// second's traffic and the viewers as they were at the second's end (so the sample does
    /// not depend on when it is taken, and runs sharing a load test add up second by second).
    fn close_seconds(&mut self, second: u64) {
        while self.series.next_second() < second {
            let n = self.series.next_second();
            let end = self.started_at + Duration::from_secs(n + 1);
            let until = self.stopping_at.map_or(end, |t| t.min(end));
            let mut sample = self.windows.sample(n);
            for v in self.viewers.iter().filter(|v| v.state == ViewerState::Running) {
                sample.running += 1;
                if v.last_segment.is_some_and(|t| end.saturating_duration_since(t) <= STREAMING_WINDOW) {
                    sample.streaming += 1;
                }
                if v.player.stalled_for(until).is_some() {
                    sample.stalled += 1;
                }
            }
            self.series.push(sample);
            if let Some(packed) = self.windows.segment_ttlb(n) {
                self.series.keep_segments(n, packed);
            }
        }
    }

    /// The run's results at `now` (see [`Results`]); `started_unix` is the wall-clock second
    /// the run started.
    pub fn results(&mut self, now: Instant, started_unix: u64) -> Results {
        let mut totals = self.snapshot(now);
        // Live-only figures (rolling windows) are not results.
        totals.recent = Vec::new();
        (totals.segment_ttfb_recent, totals.segment_ttlb_recent) = Default::default();
        (totals.segment_throughput, totals.throughput) = Default::default();
        totals.request_rates.clear();
        totals.speed = None;
        Results {
            format: FORMAT,
            started_unix,
            totals,
            ttfb: self.ttfb.clone(),
            ttlb: self.ttlb.clone(),
            connect: self.connect.clone(),
            tls_handshake: self.tls.clone(),
            startup: self.startup.clone(),
            rejoin: self.rejoin.clone(),
            live_latency: self.live_latency.clone(),
            down: self.down_total,
            watched: self.watch_totals.0,
            stalled: self.watch_totals.1,
            first_starts: self.firsts.clone(),
            series: self.series.all().to_vec(),
            segment_ttlb: self.series.segment_ttlb().clone(),
            streams: self.streams.iter().map(|(_, h)| h.clone()).collect(),
        }
    }

    /// One sample per finished second of the run so far.
    #[must_use]
    pub fn series(&self) -> &[SecondSample] {
        self.series.all()
    }
}

/// Feeds a fully received segment to the viewer's player model.
fn segment_buffered(r: &Request, at: Instant, v: &mut Viewer) -> Option<crate::measure::player::Buffered> {
    v.player.request(at.checked_sub(r.elapsed).unwrap_or(at));
    if !r.kind.is_media() || !r.complete_ok() {
        return None;
    }
    v.last_segment = Some(at);
    // A part is media for the player, but not a segment in the viewer's count.
    v.segments += u64::from(r.kind == RequestKind::Segment);
    let media = Duration::from_secs_f64(r.media_duration?.max(0.0));
    if let Some(pdt) = r.program_date_time {
        v.player.anchor(pdt);
    }
    Some(v.player.segment(at, media))
}

/// Longest wait of a message before the fold reads it (see [`run`]).
const BATCH: Duration = Duration::from_millis(20);
/// Messages read at once.
const BATCH_MESSAGES: usize = 4096;

/// Runs the fold until every sender is gone; returns the run's results (`started_unix`: the
/// wall-clock second the run started).
pub async fn run(
    mut stats: Stats,
    mut messages: mpsc::Receiver<Message>,
    publish: watch::Sender<Arc<Snapshot>>,
    tick: Duration,
    started_unix: u64,
) -> Results {
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cpu = CpuSampler::default();
    let mut sampled = Instant::now();
    // Messages are read in batches at most every BATCH: thousands of viewers' events would
    // otherwise wake this task (and a runtime thread) once each. Each event carries its own
    // time, so the fold is the same; the queue holds far more than a batch.
    let mut batch = Vec::with_capacity(BATCH_MESSAGES);
    let hold = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(hold);
    let mut holding = false;
    loop {
        tokio::select! {
            () = &mut hold, if holding => holding = false,
            n = messages.recv_many(&mut batch, BATCH_MESSAGES), if !holding => {
                if n == 0 {
                    break;
                }
                for m in batch.drain(..) {
                    stats.apply_message(m);
                }
                stats.flush_trail();
                hold.as_mut().reset(tokio::time::Instant::now() + BATCH);
                holding = true;
            },
            due = ticker.tick() => {
                let now = Instant::now();
                stats.generator_tick(now.saturating_duration_since(due.into_std()));
                if let Some((host, own)) = cpu.sample(now) {
                    stats.generator_sample(now, now.saturating_duration_since(sampled), host, own);
                }
                sampled = now;
                publish.send_replace(Arc::new(stats.snapshot(now)));
            }
        }
    }
    let now = Instant::now();
    publish.send_replace(Arc::new(stats.snapshot(now)));
    stats.flush_trail();
    stats.results(now, started_unix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::events::{Ending, ViewerId};

    fn ev(viewer: ViewerId, at: Instant, kind: EventKind) -> Event {
        Event { viewer, at, kind }
    }

    fn seg(at: Instant, viewer: ViewerId) -> Event {
        ev(viewer, at, EventKind::Request(Request::inferred(RequestKind::Segment, "s.ts".into(), Some(2.0))))
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
        );
        st.apply(ev(0, t0, EventKind::SessionStarted { took: Duration::ZERO }));
        st.apply(ev(1, t0 + Duration::from_millis(500), EventKind::SessionStarted { took: Duration::ZERO }));
        st.apply(seg(t0 + Duration::from_secs(1), 0));
        st.apply(ev(
            1,
            t0 + Duration::from_secs(2),
            EventKind::SessionEnded {
                engine: "FFmpeg",
                ending: Ending { code: 1, label: "exit 1".into() },
                cause: EndCause::Own,
                uptime: Duration::from_secs(1),
                tail: vec!["[error] boom".into()],
            },
        ));
        st.apply(ev(
            1,
            t0 + Duration::from_secs(2),
            EventKind::Backoff { delay: Duration::from_millis(250) },
        ));
        st.apply(ev(1, t0 + Duration::from_secs(3), EventKind::SessionStarted { took: Duration::ZERO }));
        let s = st.snapshot(t0 + Duration::from_secs(4));
        assert_eq!((s.target, s.started, s.running, s.streaming), (3, 2, 2, 1));
        assert_eq!((s.process_starts, s.restarts), (3, 1));
        assert_eq!(s.exits_unexpected.get(&Ending { code: 1, label: "exit 1".into() }), Some(&1));
        assert_eq!(s.ramp_rate_achieved, Some(2.0));
        assert_eq!(s.last_failure, Some((1, vec!["[error] boom".to_owned()])));
        // Streaming lapses when segments stop arriving.
        let later = st.snapshot(t0 + Duration::from_secs(1) + STREAMING_WINDOW + Duration::from_millis(1));
        assert_eq!(later.streaming, 0);
    }

    #[test]
    fn rates_cover_the_window() {
        let t0 = Instant::now();
        let mut st = Stats::new(1, t0, vec![Duration::ZERO], Arc::default(), Measure::Log);
        st.apply(ev(0, t0, EventKind::SessionStarted { took: Duration::ZERO }));
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
        let mut st = Stats::new(1, t0, vec![Duration::ZERO], Arc::default(), Measure::Log);
        st.apply(ev(5, t0, EventKind::SessionStarted { took: Duration::ZERO }));
        st.apply(seg(t0, 5));
        let s = st.snapshot(t0);
        assert_eq!((s.process_starts, s.requests_of(RequestKind::Segment)), (0, 0));
        // The same events for the known viewer count.
        st.apply(ev(0, t0, EventKind::SessionStarted { took: Duration::ZERO }));
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
            tls: None,
            ttfb: Some(Duration::from_millis(ttfb_ms)),
            ttlb: Some(Duration::from_millis(ttlb_ms)),
            elapsed: Duration::from_millis(ttlb_ms),
            media_duration: media,
            program_date_time: None,
            variant_bandwidth: None,
            network_error: None,
            protocol: None,
            measured: true,
        })
    }

    /// With a trail, every request folded in is one of its records and every stall the player
    /// model counts is a `stalled` record at the instant the buffer ran dry.
    #[test]
    fn the_trail_holds_every_request_and_the_stalls_the_summary_counts() {
        use crate::measure::trail::{State, Trail, TrailSink, What};
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let (sink, records, dropped) = TrailSink::channel(1024);
        let mut st = Stats::new(1, t0, vec![Duration::ZERO], Arc::default(), Measure::Relay)
            .with_trail(Trail::new(sink, t0, 0, 1));
        st.apply(ev(0, t0, EventKind::SessionStarted { took: Duration::ZERO }));
        st.apply(ev(0, t0 + ms(10), fetched(RequestKind::Playlist, 400, 2, 3, None)));
        st.apply(ev(0, t0 + ms(100), fetched(RequestKind::Segment, 10_000, 1, 5, Some(2.0))));
        // Dry at 2.1 s; the next segment comes at 5 s.
        st.apply(ev(0, t0 + ms(5_000), fetched(RequestKind::Segment, 10_000, 1, 5, Some(2.0))));
        st.run_stopping(t0 + ms(6_000));
        st.apply(ev(0, t0 + ms(6_100), EventKind::Finished { reason: FinishReason::Shutdown }));
        let s = st.snapshot(t0 + ms(6_200));
        st.flush_trail();
        drop(st);
        let all: Vec<_> = records.iter().collect();
        let requests = all.iter().filter(|r| matches!(r.what, What::Request(_))).count() as u64;
        assert_eq!(requests, s.requests.values().sum::<u64>());
        let stalls: Vec<_> = all
            .iter()
            .filter(|r| matches!(r.what, What::State { to: State::Stalled, .. }))
            .map(|r| r.at)
            .collect();
        assert_eq!((stalls, s.playback.stalls), (vec![ms(2_100)], 1));
        assert_eq!(dropped.load(Ordering::Relaxed), 0);
    }

    /// With several streams each viewer's figures go to its stream's share, and the shares
    /// add up to the run's.
    #[test]
    fn each_stream_gets_its_viewers_figures() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // Viewers 0 and 2 play stream 0, viewer 1 plays stream 1.
        let mut st = Stats::new(3, t0, vec![Duration::ZERO; 3], Arc::default(), Measure::Relay)
            .with_streams(&[0, 1, 0], 2);
        for v in 0..3 {
            st.apply(ev(v, t0, EventKind::SessionStarted { took: Duration::ZERO }));
            st.apply(ev(v, t0 + ms(10), fetched(RequestKind::Playlist, 400, 2, 3, None)));
        }
        for i in 0..4 {
            for v in [0, 2] {
                st.apply(ev(
                    v,
                    t0 + ms(100 + i * 2000),
                    fetched(RequestKind::Segment, 1_000, 1, 5, Some(2.0)),
                ));
            }
        }
        st.apply(ev(1, t0 + ms(100), fetched(RequestKind::Segment, 5_000, 1, 5, Some(2.0))));
        st.apply(ev(1, t0 + ms(200), EventKind::Problem(Problem::HttpStatus(503))));
        let s = st.snapshot(t0 + ms(6_500));
        let [a, b] = &s.streams[..] else { panic!("two streams: {:?}", s.streams) };
        assert_eq!((a.viewers, a.started, a.segments(), a.playlists()), (2, 2, 8, 2));
        assert_eq!((b.viewers, b.started, b.segments(), b.playlists(), b.http_5xx), (1, 1, 1, 1, 1));
        assert_eq!(
            a.bytes.values().sum::<u64>() + b.bytes.values().sum::<u64>(),
            s.bytes.values().sum::<u64>()
        );
        assert_eq!((a.startup.count, b.startup.count), (2, 1));
        assert_eq!((a.segment_ttlb.count, b.segment_ttlb.count), (8, 1));
        // Viewer 1 has 2 s of media: stalled from 2.1 s on; the others play on.
        assert_eq!((a.stalls, b.stalls), (0, 1));
        assert!((a.watch_seconds + b.watch_seconds - s.playback.watch_seconds).abs() < 1e-9);
        assert!(b.stall_seconds > 4.0 && a.stall_seconds == 0.0, "{b:?}");
        // The results keep them, and merging two halves of a run adds them stream by stream.
        let r = st.results(t0 + ms(6_500), 1_800_000_000);
        let mut twice = r.clone();
        twice.merge(r.clone());
        let merged = twice.snapshot();
        assert_eq!(merged.streams[0].segments(), 16);
        assert_eq!(merged.streams[1].startup.count, 2);
        assert_eq!(r.snapshot().streams, s.streams, "the results give the run's figures again");
    }

    #[test]
    fn relay_requests_give_bytes_latency_throughput_and_playback() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut st = Stats::new(1, t0, vec![Duration::ZERO], Arc::default(), Measure::Relay);
        st.apply(ev(0, t0, EventKind::SessionStarted { took: Duration::ZERO }));
        st.apply(ev(0, t0 + ms(20), fetched(RequestKind::Master, 300, 2, 3, None)));
        st.apply(ev(0, t0 + ms(40), fetched(RequestKind::Playlist, 400, 2, 3, None)));
        // Three segments at once, then one every 2 s for 20 s: never stalls.
        for i in 0..3 {
            st.apply(ev(0, t0 + ms(100 + i * 10), fetched(RequestKind::Segment, 10_000, 1, 5, Some(2.0))));
        }
        for i in 1..=10 {
            st.apply(ev(0, t0 + ms(120 + 2000 * i), fetched(RequestKind::Segment, 10_000, 1, 5, Some(2.0))));
        }
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

    /// One viewer (relay) whose session starts at `t0` and plays from 0.1 s with 6 s buffered.
    fn playing_from_100ms() -> (Stats, Instant) {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut st = Stats::new(1, t0, vec![Duration::ZERO], Arc::default(), Measure::Relay);
        st.apply(ev(0, t0, EventKind::SessionStarted { took: Duration::ZERO }));
        st.apply(ev(0, t0 + ms(10), fetched(RequestKind::Playlist, 400, 2, 3, None)));
        for i in 0..3 {
            st.apply(ev(0, t0 + ms(100 + i), fetched(RequestKind::Segment, 10_000, 1, 5, Some(2.0))));
        }
        (st, t0)
    }

    #[test]
    fn an_exit_is_a_stall_until_the_next_session_plays() {
        let (mut st, t0) = playing_from_100ms();
        let ms = Duration::from_millis;
        let segment = || fetched(RequestKind::Segment, 10_000, 1, 5, Some(2.0));
        st.apply(ev(0, t0 + ms(2_100), segment()));
        // The origin goes away at 3 s: the process exits, taking its 5.2 s of buffer.
        let ending = Ending { code: 1, label: "exit 1".into() };
        let tail = vec!["Connection refused".to_owned()];
        let cause = EndCause::Own;
        st.apply(ev(
            0,
            t0 + ms(3_000),
            EventKind::SessionEnded { engine: "FFmpeg", ending, cause, uptime: ms(3_000), tail },
        ));
        let down = st.snapshot(t0 + ms(8_000));
        assert_eq!((down.playback.stalled_now, down.playback.stalls, down.playback.interruptions), (1, 1, 1));
        assert!((down.playback.stall_seconds - 5.0).abs() < 1e-6, "{:?}", down.playback);
        assert!((down.playback.down_seconds - 5.0).abs() < 1e-6, "{:?}", down.playback);
        // A new process at 10 s plays again at 11 s: an 8 s stall, 7 s of it without a process.
        st.apply(ev(0, t0 + ms(10_000), EventKind::SessionStarted { took: Duration::ZERO }));
        st.apply(ev(0, t0 + ms(10_500), fetched(RequestKind::Playlist, 400, 2, 3, None)));
        st.apply(ev(0, t0 + ms(11_000), segment()));
        let s = st.snapshot(t0 + ms(12_000));
        let p = &s.playback;
        assert_eq!((p.stalls, p.stalled_now, p.started, p.rejoins, p.failed_starts), (1, 0, 1, 1, 0));
        assert!((p.stall_seconds - 8.0).abs() < 1e-6 && (p.down_seconds - 7.0).abs() < 1e-6, "{p:?}");
        assert!((p.watch_seconds - 11.9).abs() < 1e-6, "{p:?}");
        assert_eq!((s.startup.count, s.rejoin.count), (1, 1));
        assert!((s.rejoin.p50 - 0.503).abs() < 0.001, "first request of the session → its first segment");
        let row = &s.viewers[0];
        assert_eq!(row.stalls, 1);
        assert!((row.stall_seconds - 8.0).abs() < 1e-6 && (row.watch_seconds - 11.9).abs() < 1e-6, "{row:?}");
    }

    #[test]
    fn a_session_length_zap_is_no_restart_interruption_or_stall() {
        let (mut st, t0) = playing_from_100ms();
        let ms = Duration::from_millis;
        let segment = || fetched(RequestKind::Segment, 10_000, 1, 5, Some(2.0));
        // Its length was 3 s: it leaves with 3.1 s unplayed; the next session plays at 3.4 s.
        let ending = Ending { code: 0, label: "stopped".into() };
        let cause = EndCause::Completed;
        let ended = EventKind::SessionEnded {
            engine: "the native player",
            ending,
            cause,
            uptime: ms(3_000),
            tail: vec![],
        };
        st.apply(ev(0, t0 + ms(3_000), ended));
        let between = st.snapshot(t0 + ms(3_200));
        assert_eq!((between.playback.stalled_now, between.playback.stalls), (0, 0), "leaving is no stall");
        st.apply(ev(0, t0 + ms(3_000), EventKind::SessionStarted { took: Duration::ZERO }));
        st.apply(ev(0, t0 + ms(3_010), fetched(RequestKind::Playlist, 400, 2, 3, None)));
        st.apply(ev(0, t0 + ms(3_400), segment()));
        let s = st.snapshot(t0 + ms(4_000));
        let p = &s.playback;
        assert_eq!((p.zaps, p.zap_starts, p.rejoins, p.interruptions, p.stalls), (1, 1, 0, 0, 0), "{p:?}");
        assert_eq!((s.restarts, s.process_starts), (0, 2));
        assert_eq!(s.startup.count, 2, "the new viewing's startup is a startup");
        // Watched: 0.1..3 s and 3.4..4 s; nothing stalled, nothing down.
        assert!((p.watch_seconds - 3.5).abs() < 1e-6 && p.stall_seconds == 0.0, "{p:?}");
        assert_eq!((p.down_seconds, s.exits_unexpected.len()), (0.0, 0));
    }

    #[test]
    fn the_end_of_a_finished_stream_is_no_interruption() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut st = Stats::new(1, t0, vec![Duration::ZERO], Arc::default(), Measure::Relay);
        st.apply(ev(0, t0, EventKind::SessionStarted { took: Duration::ZERO }));
        st.apply(ev(0, t0 + ms(10), fetched(RequestKind::Playlist, 400, 2, 3, None)));
        let seen = EventKind::PlaylistSeen { media_sequence: 0, segments: 3, ended: true };
        st.apply(ev(0, t0 + ms(10), seen));
        for i in 0..3 {
            st.apply(ev(0, t0 + ms(100 + i), fetched(RequestKind::Segment, 10_000, 1, 5, Some(2.0))));
        }
        // The session closes at 1 s with 5 s still buffered (an engine that read ahead), and
        // the viewer is done.
        let ending = Ending { code: 0, label: "ended".into() };
        let ended = EventKind::SessionEnded {
            engine: "the native player",
            ending,
            cause: EndCause::Own,
            uptime: ms(1_000),
            tail: Vec::new(),
        };
        st.apply(ev(0, t0 + ms(1_000), ended));
        st.apply(ev(0, t0 + ms(1_001), EventKind::Finished { reason: FinishReason::StreamEnded }));
        let s = st.snapshot(t0 + ms(20_000));
        let p = &s.playback;
        assert_eq!((p.stalls, p.stalled_now, p.interruptions, p.started), (0, 0, 0, 1), "{p:?}");
        assert!((p.watch_seconds - 6.0).abs() < 0.01, "its buffer played out: {p:?}");
        assert!(s.last_failure.is_none() && s.notices.iter().count() == 0, "{:?}", s.last_failure);
        assert_eq!(s.ended, 1);
    }

    #[test]
    fn a_viewer_that_never_plays_is_a_failed_start() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let mut st = Stats::new(2, t0, vec![Duration::ZERO; 2], Arc::default(), Measure::Relay)
            .with_player(secs(10), Duration::ZERO);
        for v in 0..2 {
            st.apply(ev(v, t0, EventKind::SessionStarted { took: Duration::ZERO }));
            st.apply(ev(v, t0 + secs(1), fetched(RequestKind::Playlist, 400, 2, 3, None)));
        }
        // Viewer 1 plays at 2 s; viewer 0's segments trickle and never arrive.
        st.apply(ev(1, t0 + secs(2), fetched(RequestKind::Segment, 10_000, 1, 5, Some(30.0))));
        let early = st.snapshot(t0 + secs(9));
        assert_eq!((early.playback.failed_starts, early.playback.stalled_now), (0, 0), "still within 10 s");
        let s = st.snapshot(t0 + secs(25));
        let p = &s.playback;
        assert_eq!((p.failed_starts, p.stalled_now, p.started, p.stalls), (1, 1, 1, 0));
        assert!((p.stall_seconds - 25.0).abs() < 1e-6, "viewer 0's whole wait: {p:?}");
        assert!((p.watch_seconds - 48.0).abs() < 1e-6, "25 s waiting + 23 s playing: {p:?}");
        assert!(s.viewers[0].stalled && !s.viewers[1].stalled);
    }

    #[test]
    fn the_log_gives_no_startup_figure() {
        let t0 = Instant::now();
        let mut st = Stats::new(1, t0, vec![Duration::ZERO], Arc::default(), Measure::Log);
        st.apply(ev(0, t0, EventKind::SessionStarted { took: Duration::ZERO }));
        st.apply(seg(t0 + Duration::from_millis(1), 0));
        let s = st.snapshot(t0 + Duration::from_secs(1));
        assert_eq!((s.startup.count, s.requests_of(RequestKind::Segment)), (0, 1));
        assert!(s.playback.watch_seconds > 0.9, "the player still runs on the requests");
    }

    #[test]
    fn errors_by_status_and_network() {
        let t0 = Instant::now();
        let mut st = Stats::new(1, t0, vec![Duration::ZERO], Arc::default(), Measure::Relay);
        let mut r = Request {
            kind: RequestKind::Segment,
            url: "http://h/s.ts".into(),
            status: Some(404),
            bytes: 150,
            connect: Some(Duration::from_micros(80)),
            tls: None,
            ttfb: Some(Duration::from_millis(1)),
            ttlb: Some(Duration::from_millis(1)),
            elapsed: Duration::from_millis(1),
            media_duration: Some(2.0),
            program_date_time: None,
            variant_bandwidth: None,
            network_error: None,
            protocol: None,
            measured: true,
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
