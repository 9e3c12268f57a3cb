//! A run's results as one serde value that merges exactly: counts and sums, the HDR
//! histograms themselves (hdrhistogram's V2 format, base64) and one sample per second of the
//! run, aligned to wall-clock seconds. The report, the summary and `--assert` read
//! [`Results::snapshot`], so merging the results of N processes that shared a load test gives
//! the figures one process running every viewer would have given.
//!
//! Merge rules: counts, byte and time sums add; maxima take the larger; percentiles come from
//! the merged histograms; each second's samples add (viewer counts included), its segment
//! percentile from the merged second's histogram; the most viewers streaming at once is the
//! largest merged second (or the merged count at the stop). The viewers of the merged-in
//! results are numbered after this one's (shards merge in index order). The generator's
//! figures describe each machine: merged, the worst of each, and the verdict is taken again.
//! Two things are logs, not measurements, and merge approximately: the notices (the last 64 of
//! both, by time) and the last failure (this one's if it has one).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::measure::events::RequestKind;
use crate::measure::generator::verdict;
use crate::measure::history::{SecondSample, RECENT_SAMPLES};
use crate::measure::latency::{Hist, Packed};
use crate::measure::ramp::achieved_rate;
use crate::measure::snapshot::Snapshot;
use crate::measure::streams::{add_each, StreamFigures, StreamHists};

/// Version of the results format.
pub const FORMAT: u32 = 1;

/// What one run (or several, merged) measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// [`FORMAT`].
    pub format: u32,
    /// The wall-clock second (Unix time) the run started; sample `n` covers second
    /// `started_unix + n`.
    pub started_unix: u64,
    /// The final aggregates (rolling-window figures left empty; latency summaries,
    /// the streaming peak and the ramp rate are derived again by [`Results::snapshot`]).
    pub totals: Snapshot,
    /// Time to first byte by request kind.
    pub ttfb: BTreeMap<RequestKind, Hist>,
    /// Download time by request kind.
    pub ttlb: BTreeMap<RequestKind, Hist>,
    /// Upstream connection set-up times.
    pub connect: Hist,
    /// Upstream TLS handshake times (https).
    #[serde(default)]
    pub tls_handshake: Hist,
    /// Startup times.
    pub startup: Hist,
    /// Re-join times (later sessions' first segments).
    pub rejoin: Hist,
    /// Live-edge latencies.
    pub live_latency: Hist,
    /// Time viewers had no process.
    pub down: Duration,
    /// Watch time, summed over sessions (exact, for the stall ratio).
    pub watched: Duration,
    /// Stall time, summed over sessions.
    pub stalled: Duration,
    /// When each viewer first started, from the run's start, sorted.
    pub first_starts: Vec<Duration>,
    /// One sample per finished second.
    pub series: Vec<SecondSample>,
    /// Each second's segment download times, for seconds that had any (packed: one
    /// histogram is unpacked at a time, so a long run's results stay small).
    pub segment_ttlb: BTreeMap<u64, Packed>,
    /// With several streams, each one's histograms (its counts are in `totals.streams`).
    #[serde(default)]
    pub streams: Vec<StreamHists>,
}

impl Results {
    /// The final snapshot these results stand for.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        let mut s = self.totals.clone();
        s.ttfb = self.ttfb.iter().map(|(k, h)| (*k, h.summary())).collect();
        s.ttlb = self.ttlb.iter().map(|(k, h)| (*k, h.summary())).collect();
        s.connect = self.connect.summary();
        s.tls_handshake = self.tls_handshake.summary();
        s.startup = self.startup.summary();
        s.rejoin = self.rejoin.summary();
        s.live_latency = self.live_latency.summary();
        s.playback.down_seconds = self.down.as_secs_f64();
        s.playback.watch_seconds = self.watched.as_secs_f64();
        s.playback.stall_seconds = self.stalled.as_secs_f64();
        s.ramp_rate_achieved = achieved_rate(&self.first_starts);
        s.streaming_peak = self
            .series
            .iter()
            .map(|x| x.streaming)
            .chain(s.streaming_at_stop)
            .max()
            .unwrap_or(0)
            .max(s.streaming);
        s.recent = self.series[self.series.len().saturating_sub(RECENT_SAMPLES)..].to_vec();
        for (f, h) in s.streams.iter_mut().zip(&self.streams) {
            f.summarize(h);
        }
        s.generator.reasons = verdict(&s.generator, s.dropped_events, s.ramp_lag_max);
        s.generator.bound = !s.generator.reasons.is_empty();
        s
    }

    /// The per-second series, each second's segment percentile from its histogram.
    #[must_use]
    pub fn series(&self) -> Vec<SecondSample> {
        self.series
            .iter()
            .map(|x| SecondSample {
                segment_p95: self.segment_ttlb.get(&x.second).map(|p| p.unpack().summary().p95),
                ..*x
            })
            .collect()
    }

    /// Adds `other`'s results to these: see the module's merge rules.
    pub fn merge(&mut self, mut other: Results) {
        // Align both on the earlier start, in whole seconds.
        let start = self.started_unix.min(other.started_unix);
        self.shift(self.started_unix - start);
        other.shift(other.started_unix - start);
        self.started_unix = start;

        add_totals(&mut self.totals, &other.totals);
        for (k, h) in &other.ttfb {
            self.ttfb.entry(*k).or_default().merge(h);
        }
        for (k, h) in &other.ttlb {
            self.ttlb.entry(*k).or_default().merge(h);
        }
        self.connect.merge(&other.connect);
        self.tls_handshake.merge(&other.tls_handshake);
        self.startup.merge(&other.startup);
        self.rejoin.merge(&other.rejoin);
        self.live_latency.merge(&other.live_latency);
        add_each(&mut self.streams, &other.streams, StreamHists::merge);
        self.down += other.down;
        self.watched += other.watched;
        self.stalled += other.stalled;
        self.first_starts.extend(other.first_starts);
        self.first_starts.sort();
        let mut seconds: BTreeMap<u64, SecondSample> = self.series.iter().map(|x| (x.second, *x)).collect();
        for x in other.series {
            let m = seconds
                .entry(x.second)
                .or_insert(SecondSample { second: x.second, ..SecondSample::default() });
            m.running += x.running;
            m.streaming += x.streaming;
            m.stalled += x.stalled;
            m.bytes += x.bytes;
            m.requests += x.requests;
            m.errors += x.errors;
        }
        for (second, theirs) in other.segment_ttlb {
            match self.segment_ttlb.entry(second) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(theirs);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    let mut h = o.get().unpack();
                    h.merge(&theirs.unpack());
                    o.insert(h.pack());
                }
            }
        }
        self.series = seconds.into_values().collect();
        self.series = self.series();
    }

    /// Moves these results `by` seconds later (their run started that much after the
    /// merged one).
    fn shift(&mut self, by: u64) {
        if by == 0 {
            return;
        }
        let d = Duration::from_secs(by);
        self.totals.elapsed += d;
        self.totals.notices.shift(d);
        for t in &mut self.first_starts {
            *t += d;
        }
        for x in &mut self.series {
            x.second += by;
        }
        self.segment_ttlb =
            std::mem::take(&mut self.segment_ttlb).into_iter().map(|(k, h)| (k + by, h)).collect();
    }
}

/// Adds `b`'s final aggregates into `a`'s (the derived figures are left to
/// [`Results::snapshot`]).
fn add_totals(a: &mut Snapshot, b: &Snapshot) {
    let offset = a.target;
    a.elapsed = a.elapsed.max(b.elapsed);
    a.target += b.target;
    a.started += b.started;
    a.running += b.running;
    a.streaming += b.streaming;
    a.backoff += b.backoff;
    a.ended += b.ended;
    a.process_starts += b.process_starts;
    a.restarts += b.restarts;
    a.spawn_failures += b.spawn_failures;
    a.spawn_time_max = a.spawn_time_max.max(b.spawn_time_max);
    a.spawn_time_total += b.spawn_time_total;
    a.stall_restarts += b.stall_restarts;
    add_map(&mut a.requests, &b.requests);
    add_map(&mut a.bytes, &b.bytes);
    add_map(&mut a.protocols, &b.protocols);
    add_each(&mut a.streams, &b.streams, StreamFigures::add);
    let (p, q) = (&mut a.playback, &b.playback);
    p.started += q.started;
    p.rejoins += q.rejoins;
    p.zaps += q.zaps;
    p.zap_starts += q.zap_starts;
    p.failed_starts += q.failed_starts;
    p.interruptions += q.interruptions;
    p.stalls += q.stalls;
    p.stalled_now += q.stalled_now;
    p.late_segments += q.late_segments;
    a.playlists_seen += b.playlists_seen;
    a.ll_hls.sessions += b.ll_hls.sessions;
    a.ll_hls.conformance.merge(&b.ll_hls.conformance);
    a.ll_hls.switches_from_report += b.ll_hls.switches_from_report;
    a.ll_hls.switches_plain += b.ll_hls.switches_plain;
    let (t, u) = (&mut a.tunnels, &b.tunnels);
    (t.count, t.failed, t.bytes_down, t.bytes_up) =
        (t.count + u.count, t.failed + u.failed, t.bytes_down + u.bytes_down, t.bytes_up + u.bytes_up);
    for (bw, r) in &b.renditions {
        let mine = a.renditions.entry(*bw).or_default();
        mine.segments += r.segments;
        mine.media_seconds += r.media_seconds;
        mine.bytes += r.bytes;
    }
    a.switches.up += b.switches.up;
    a.switches.down += b.switches.down;
    add_map(&mut a.http_errors, &b.http_errors);
    a.network_errors += b.network_errors;
    a.segments_skipped += b.segments_skipped;
    add_map(&mut a.exits_unexpected, &b.exits_unexpected);
    add_map(&mut a.exits_on_stop, &b.exits_on_stop);
    a.ramp_lag_max = a.ramp_lag_max.max(b.ramp_lag_max);
    let add_opt = |x: Option<u32>, y: Option<u32>| match (x, y) {
        (None, None) => None,
        (x, y) => Some(x.unwrap_or(0) + y.unwrap_or(0)),
    };
    a.streaming_at_stop = add_opt(a.streaming_at_stop, b.streaming_at_stop);
    a.running_at_stop = add_opt(a.running_at_stop, b.running_at_stop);
    a.dropped_events += b.dropped_events;
    a.generator.merge(&b.generator);
    a.events += b.events;
    if a.last_failure.is_none() {
        a.last_failure = b.last_failure.clone().map(|(v, tail)| (v + offset, tail));
    }
    a.notices.merge(&b.notices, offset);
    a.viewers.extend(b.viewers.iter().cloned().map(|mut r| {
        r.id += offset;
        r
    }));
}

fn add_map<K: Ord + Clone>(a: &mut BTreeMap<K, u64>, b: &BTreeMap<K, u64>) {
    for (k, n) in b {
        *a.entry(k.clone()).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;
    use crate::measure::events::{EndCause, Ending, Event, EventKind, Request, ViewerId};
    use crate::measure::fold::Stats;
    use crate::measure::snapshot::Measure;
    use crate::output::outcome::Outcome;
    use crate::output::report::Report;
    use crate::output::summary::RunFacts;
    use crate::output::thresholds::Assertion;

    fn request(kind: RequestKind, status: u16, ttfb_us: u64, ttlb_us: u64) -> EventKind {
        EventKind::Request(Request {
            kind,
            url: format!("http://h/{}", kind.label()),
            status: Some(status),
            bytes: 1000 + ttlb_us,
            connect: Some(Duration::from_micros(ttfb_us / 2 + 1)),
            tls: ttfb_us.is_multiple_of(3).then(|| Duration::from_micros(ttfb_us / 3 + 7)),
            ttfb: Some(Duration::from_micros(ttfb_us)),
            ttlb: Some(Duration::from_micros(ttlb_us)),
            elapsed: Duration::from_micros(ttlb_us),
            media_duration: (kind == RequestKind::Segment).then_some(2.0),
            program_date_time: None,
            variant_bandwidth: None,
            network_error: None,
            // Both protocols, by how the timing falls.
            protocol: Some(if ttlb_us.is_multiple_of(2) {
                crate::measure::events::Protocol::Http2
            } else {
                crate::measure::events::Protocol::Http1
            }),
            measured: true,
        })
    }

    /// What viewer `v` (of 6) does in a 40 s run: each its own timing, viewer 1 gets a 404
    /// and exits once, viewer 4 stalls for a while.
    fn viewer_events(v: ViewerId, t0: Instant) -> Vec<(Instant, EventKind)> {
        let at = |ms: u64| t0 + Duration::from_millis(ms + u64::from(v) * 370);
        let mut out =
            vec![(at(0), EventKind::SessionStarted { took: Duration::from_micros(900 + u64::from(v)) })];
        out.push((at(30), request(RequestKind::Master, 200, 800, 1_200)));
        out.push((at(60), request(RequestKind::Playlist, 200, 700 + u64::from(v), 1_100)));
        let mut t = 100;
        for i in 0..18u64 {
            let slow = v == 4 && (6..9).contains(&i);
            t += if slow { 5_000 } else { 1_900 + u64::from(v) * 13 };
            let ttlb = 3_000 + i * 977 + u64::from(v) * 131;
            out.push((at(t), request(RequestKind::Segment, 200, 400 + i * 17, ttlb)));
            out.push((at(t + 5), request(RequestKind::Playlist, 200, 500, 900 + i)));
            if v == 1 && i == 9 {
                out.push((at(t + 7), request(RequestKind::Segment, 404, 300, 350)));
                let ending = Ending { code: 1, label: "exit 1".into() };
                let tail = vec!["Server returned 404 Not Found".to_owned()];
                out.push((
                    at(t + 8),
                    EventKind::SessionEnded {
                        engine: "FFmpeg",
                        ending,
                        cause: EndCause::Own,
                        uptime: Duration::from_millis(t),
                        tail,
                    },
                ));
                out.push((at(t + 9), EventKind::Backoff { delay: Duration::from_millis(500) }));
                out.push((at(t + 509), EventKind::SessionStarted { took: Duration::from_micros(1000) }));
            }
        }
        out
    }

    fn stop(t0: Instant) -> (Instant, EventKind) {
        let ending = Ending { code: 255, label: "exit 255".into() };
        (
            t0 + Duration::from_millis(40_300),
            EventKind::SessionEnded {
                engine: "FFmpeg",
                ending,
                cause: EndCause::Stopped,
                uptime: Duration::from_secs(40),
                tail: vec![],
            },
        )
    }

    /// Runs the viewers `ids` through one fold (their events numbered from 0 there) and
    /// returns its results.
    fn worker(ids: std::ops::Range<ViewerId>, t0: Instant) -> Results {
        let n = ids.end - ids.start;
        let planned = (0..n).map(|i| Duration::from_millis(u64::from(i + ids.start) * 370)).collect();
        let mut stats = Stats::new(n, t0, planned, Arc::default(), Measure::Relay);
        let mut events: Vec<Event> = ids
            .clone()
            .flat_map(|v| {
                viewer_events(v, t0).into_iter().chain([stop(t0)]).map(move |(at, kind)| Event {
                    viewer: v - ids.start,
                    at,
                    kind,
                })
            })
            .collect();
        events.sort_by_key(|e| e.at);
        let stopping = t0 + Duration::from_secs(40);
        for e in events {
            if e.at >= stopping && stats.snapshot(stopping).streaming_at_stop.is_none() {
                stats.run_stopping(stopping);
            }
            // Ticks as the real task has them, so that every second gets its sample.
            stats.snapshot(e.at);
            stats.apply(e);
        }
        stats.results(t0 + Duration::from_millis(40_500), 1_800_000_000)
    }

    fn report(results: &Results) -> serde_json::Value {
        let facts = RunFacts {
            url: "http://h/live.m3u8".into(),
            ffmpeg: "FFmpeg 5.1.6".into(),
            measured_by: "the relay".into(),
            start_unit: "process".into(),
            ramp_rate: 2.7,
            run_seconds: 40.0,
            interrupted: false,
            all_ended: false,
            quit_from_dashboard: false,
            stop_seconds: 0.3,
            target_duration: Some(2.0),
            started: std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            duration: Some(40.0),
            startup_buffer: None,
            http2: false,
            streams: Vec::new(),
            run_id: "test".into(),
            shard: None,
            start_late_seconds: None,
            variant: Some("all".into()),
        };
        let asserts: Vec<Assertion> = ["segment_download_p95<20ms", "stalls==0", "viewers_reached>=1"]
            .iter()
            .map(|a| Assertion::parse(a).unwrap())
            .collect();
        let mut json =
            serde_json::to_value(Report::new(&Outcome::new(results, facts, None, &asserts))).unwrap();
        json.as_object_mut().unwrap().remove("notices");
        // The results themselves: how they were pieced together differs, what they give must not.
        json.as_object_mut().unwrap().remove("mergeable");
        json
    }

    #[test]
    fn merged_workers_give_the_report_of_one_process() {
        let t0 = Instant::now();
        let one = worker(0..6, t0);
        let mut merged = worker(0..2, t0);
        // Through the file format, as workers' results would travel.
        for part in [worker(2..5, t0), worker(5..6, t0)] {
            let text = serde_json::to_string(&part).unwrap();
            merged.merge(serde_json::from_str(&text).unwrap());
        }
        let (a, b) = (report(&one), report(&merged));
        assert_eq!(a, b, "single:\n{a:#}\nmerged:\n{b:#}");
        // The run was not trivial: every part of the report has something in it.
        let s = one.snapshot();
        assert_eq!(
            (s.target, s.process_starts, s.restarts, s.http_errors.get(&404).copied()),
            (6, 7, 1, Some(1))
        );
        assert!(s.playback.stalls >= 1, "{:?}", s.playback);
        assert!(s.ttlb[&RequestKind::Segment].count > 100 && one.series.len() >= 40);
        assert_eq!(a["viewers"]["rows"].as_array().map(Vec::len), Some(6));
        let by = &a["requests"]["by_protocol"];
        let responses: u64 = s.requests.values().sum();
        assert!(by["HTTP/2"].as_u64() > Some(0) && by["HTTP/1.1"].as_u64() > Some(0), "{by}");
        assert_eq!(by["HTTP/2"].as_u64().unwrap() + by["HTTP/1.1"].as_u64().unwrap(), responses, "{by}");
        assert_eq!(a["passed"], serde_json::Value::Bool(false), "stalls==0 fails");
    }

    #[test]
    fn a_later_start_lines_up_by_wall_clock_second() {
        let t0 = Instant::now();
        let mut a = worker(0..1, t0);
        let mut b = worker(1..2, t0);
        b.started_unix += 3;
        let seconds = b.series.len();
        a.merge(b.clone());
        assert_eq!(a.started_unix, 1_800_000_000);
        assert_eq!(a.series.len(), seconds + 3, "b's samples moved 3 s later");
        assert_eq!(a.totals.elapsed, b.totals.elapsed + Duration::from_secs(3));
        // Merging the other way round gives the same.
        let mut c = b;
        c.merge(worker(0..1, t0));
        assert_eq!(c.series, a.series);
        assert_eq!(c.first_starts, a.first_starts);
    }

    #[test]
    fn histograms_survive_the_file_format_exactly() {
        let mut h = Hist::default();
        for us in [1u64, 999, 1_000, 123_456, 3_600_000_000] {
            h.record(Duration::from_micros(us));
        }
        let text = h.encode();
        let back = Hist::decode(&text).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.summary(), h.summary());
        let err = Hist::decode("abc").unwrap_err();
        assert!(err.contains("not an encoded histogram"), "{err}");
    }
}
