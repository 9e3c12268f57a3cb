//! A run with several streams (`--stream`): each stream's share of the figures. Counts are
//! added as events are folded in, latencies go to each stream's own histograms, and the
//! viewer figures (started, streaming, stalls, watch time) are summed over the stream's
//! viewers at each snapshot. Everything adds up across streams to the run's figures, and
//! merges across shards as the run's do.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::measure::events::{Request, RequestKind};
use crate::measure::latency::{Hist, Latency};

/// Stalled time over watched time (0 with nothing watched).
#[must_use]
pub fn stall_ratio(stalled: f64, watched: f64) -> f64 {
    if watched > 0.0 {
        stalled / watched
    } else {
        0.0
    }
}

/// One stream's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamFigures {
    /// Viewers dealt to it.
    pub viewers: u32,
    /// Those whose first session started.
    pub started: u32,
    /// Those that received a segment in the streaming window.
    pub streaming: u32,
    /// Requests by kind.
    pub requests: BTreeMap<RequestKind, u64>,
    /// Response bytes by kind.
    pub bytes: BTreeMap<RequestKind, u64>,
    /// HTTP 4xx answers.
    pub http_4xx: u64,
    /// HTTP 5xx answers.
    pub http_5xx: u64,
    /// Connections that failed instead of answering.
    pub network_errors: u64,
    /// Segments given up after their retries.
    pub segments_skipped: u64,
    /// Stalls of its viewers' players, finished and ongoing.
    pub stalls: u64,
    /// Seconds its viewers were stalled.
    pub stall_seconds: f64,
    /// Seconds its viewers watched.
    pub watch_seconds: f64,
    /// Sessions that ended at their `--session-length`.
    pub zaps: u64,
    /// Startup times (first viewings and viewings after a zap).
    pub startup: Latency,
    /// Segment time to first byte.
    pub segment_ttfb: Latency,
    /// Segment download time.
    pub segment_ttlb: Latency,
    /// Live-edge latency.
    pub live_latency: Latency,
}

/// One stream's histograms (the results keep them, so merged percentiles are exact).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamHists {
    /// See [`StreamFigures::startup`].
    pub startup: Hist,
    /// See [`StreamFigures::segment_ttfb`].
    pub segment_ttfb: Hist,
    /// See [`StreamFigures::segment_ttlb`].
    pub segment_ttlb: Hist,
    /// See [`StreamFigures::live_latency`].
    pub live_latency: Hist,
}

impl StreamFigures {
    /// Counts one measured exchange (see `exchanges::record_request` for the run's).
    pub(crate) fn request(&mut self, r: &Request, hists: &mut StreamHists) {
        *self.requests.entry(r.kind).or_default() += 1;
        *self.bytes.entry(r.kind).or_default() += r.bytes;
        self.status(r.status.unwrap_or(0));
        self.network_errors += u64::from(r.network_error.is_some());
        if r.kind == RequestKind::Segment {
            if let Some(d) = r.ttfb {
                hists.segment_ttfb.record(d);
            }
            if let Some(d) = r.ttlb {
                hists.segment_ttlb.record(d);
            }
        }
    }

    /// Counts an HTTP status (errors only).
    pub(crate) fn status(&mut self, code: u16) {
        match code {
            400..=499 => self.http_4xx += 1,
            500..=599 => self.http_5xx += 1,
            _ => {}
        }
    }

    /// The latency summaries of `hists`.
    pub(crate) fn summarize(&mut self, hists: &StreamHists) {
        self.startup = hists.startup.summary();
        self.segment_ttfb = hists.segment_ttfb.summary();
        self.segment_ttlb = hists.segment_ttlb.summary();
        self.live_latency = hists.live_latency.summary();
    }

    /// Adds `b`'s counts to these (the summaries are taken again from merged histograms).
    pub(crate) fn add(&mut self, b: &StreamFigures) {
        self.viewers += b.viewers;
        self.started += b.started;
        self.streaming += b.streaming;
        for (k, n) in &b.requests {
            *self.requests.entry(*k).or_default() += n;
        }
        for (k, n) in &b.bytes {
            *self.bytes.entry(*k).or_default() += n;
        }
        self.http_4xx += b.http_4xx;
        self.http_5xx += b.http_5xx;
        self.network_errors += b.network_errors;
        self.segments_skipped += b.segments_skipped;
        self.stalls += b.stalls;
        self.stall_seconds += b.stall_seconds;
        self.watch_seconds += b.watch_seconds;
        self.zaps += b.zaps;
    }

    /// Segments requested.
    #[must_use]
    pub fn segments(&self) -> u64 {
        self.requests.get(&RequestKind::Segment).copied().unwrap_or(0)
    }

    /// Playlists requested (master and media).
    #[must_use]
    pub fn playlists(&self) -> u64 {
        [RequestKind::Master, RequestKind::Playlist].iter().filter_map(|k| self.requests.get(k)).sum()
    }

    /// Stalled time over watched time (0 with nothing watched).
    #[must_use]
    pub fn stall_ratio(&self) -> f64 {
        stall_ratio(self.stall_seconds, self.watch_seconds)
    }
}

impl StreamHists {
    /// Adds `b`'s samples to these.
    pub(crate) fn merge(&mut self, b: &StreamHists) {
        self.startup.merge(&b.startup);
        self.segment_ttfb.merge(&b.segment_ttfb);
        self.segment_ttlb.merge(&b.segment_ttlb);
        self.live_latency.merge(&b.live_latency);
    }
}

/// Adds `b`'s per-stream items to `a`'s, stream by stream.
pub(crate) fn add_each<T: Default>(a: &mut Vec<T>, b: &[T], add: impl Fn(&mut T, &T)) {
    if a.len() < b.len() {
        a.resize_with(b.len(), T::default);
    }
    for (x, y) in a.iter_mut().zip(b) {
        add(x, y);
    }
}
