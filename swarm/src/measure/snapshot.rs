//! What every reader gets at each tick: the run's aggregates at one instant ([`Snapshot`]),
//! published by the fold. The status line, the dashboard, `/metrics`, the summary and the
//! reports read nothing else.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::measure::events::{Ending, RequestKind, ViewerId, Violation};
use crate::measure::history::{Notices, SecondSample, ViewerRow};
use crate::measure::latency::Latency;

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

/// How the numbers were obtained.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// Every request measured by the relay in the swarm.
    #[default]
    Relay,
    /// FFmpeg's log only: counts and errors, no bytes or latencies; playback inferred.
    Log,
}

/// Playback as the player model sees it, summed over viewers.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Playback {
    /// Viewers that reached playback (first starts).
    pub started: u64,
    /// Later sessions of a viewer that reached playback again (re-joins after an exit).
    pub rejoins: u64,
    /// Sessions that ended at their `--session-length` (the viewer left on purpose).
    pub zaps: u64,
    /// Sessions after such an end that reached playback (their startups are in `startup`).
    pub zap_starts: u64,
    /// Viewers that had not played `--startup-timeout` after joining (their wait counts as
    /// watched and stalled).
    pub failed_starts: u32,
    /// Stalls (the buffer ran dry, also because its process ended), finished and ongoing.
    pub stalls: u64,
    /// Seconds not playing after the first playback (and a failed start's wait).
    pub stall_seconds: f64,
    /// Seconds since each viewer's first playback (or its joining, for a failed start) until
    /// it finished or the run stopped, summed over viewers.
    pub watch_seconds: f64,
    /// Viewers not playing right now (stalled, between processes, or a failed start).
    pub stalled_now: u32,
    /// Sessions that ended by themselves (or were restarted for a stall) after their viewer
    /// had played: error-caused interruptions.
    pub interruptions: u64,
    /// Seconds viewers had no process (from a session's end to the next one's start).
    pub down_seconds: f64,
    /// Segments whose download took longer than their media duration.
    pub late_segments: u64,
}

impl Playback {
    /// Stall time / watch time (0 before anyone plays).
    #[must_use]
    pub fn stall_ratio(&self) -> f64 {
        crate::measure::streams::stall_ratio(self.stall_seconds, self.watch_seconds)
    }
}

/// Bytes per second over the windows of [`WINDOWS`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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

/// Media fetched from one variant of a master playlist (native viewers know which variant
/// each segment belongs to).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rendition {
    /// Segments downloaded whole.
    pub segments: u64,
    /// Their media duration, seconds: the time viewers spent on this variant.
    pub media_seconds: f64,
    /// Their bytes.
    pub bytes: u64,
}

/// Variant switches of adaptive viewers (`--variant abr`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Switches {
    /// To a higher `BANDWIDTH`.
    pub up: u64,
    /// To a lower one.
    pub down: u64,
}

/// Low-Latency HLS: tracks that played it and the conformance rules the origin broke (part
/// and blocking-reload times are in [`Snapshot::ttfb`] and [`Snapshot::ttlb`] under
/// [`RequestKind::Part`] and [`RequestKind::BlockingReload`]).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LowLatency {
    /// Tracks that played in LL-HLS mode (one per session and media playlist).
    pub sessions: u64,
    /// Violations by rule.
    pub conformance: Conformance,
    /// `--variant abr`: rendition switches that joined the new rendition from the old one's
    /// `EXT-X-RENDITION-REPORT` (one blocking reload), and those that needed a plain load.
    #[serde(default)]
    pub switches_from_report: u64,
    #[serde(default)]
    pub switches_plain: u64,
}

/// LL-HLS conformance violations, by rule (see [`Violation`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conformance {
    /// Parts or segments advertised, then answered 404.
    pub advertised_404: u64,
    /// Blocking reloads answered before the part asked for existed.
    pub early_reload: u64,
    /// Blocking reloads held longer than three target durations.
    pub reload_held_too_long: u64,
    /// Full segments downloaded after parts of them.
    pub segment_after_parts: u64,
    /// Playlists whose `PART-HOLD-BACK` is under three part targets (once per track).
    pub part_hold_back_short: u64,
    /// Preload hints that never appeared in a later playlist.
    pub hint_missing: u64,
    /// Media sequence or part numbering going backwards.
    pub numbering_backwards: u64,
}

impl Conformance {
    /// The count of one rule.
    #[must_use]
    pub fn get(&self, v: Violation) -> u64 {
        *self.slot(v)
    }

    /// Counts one violation.
    pub fn add(&mut self, v: Violation, n: u64) {
        *self.slot_mut(v) += n;
    }

    /// Every rule's count summed.
    #[must_use]
    pub fn total(&self) -> u64 {
        Violation::ALL.iter().map(|v| self.get(*v)).sum()
    }

    /// Adds another run's counts.
    pub fn merge(&mut self, other: &Conformance) {
        for v in Violation::ALL {
            self.add(v, other.get(v));
        }
    }

    fn slot(&self, v: Violation) -> &u64 {
        match v {
            Violation::AdvertisedMissing => &self.advertised_404,
            Violation::EarlyReload => &self.early_reload,
            Violation::HeldTooLong => &self.reload_held_too_long,
            Violation::SegmentAfterParts => &self.segment_after_parts,
            Violation::HoldBackShort => &self.part_hold_back_short,
            Violation::HintMissing => &self.hint_missing,
            Violation::NumberingBackwards => &self.numbering_backwards,
        }
    }

    fn slot_mut(&mut self, v: Violation) -> &mut u64 {
        match v {
            Violation::AdvertisedMissing => &mut self.advertised_404,
            Violation::EarlyReload => &mut self.early_reload,
            Violation::HeldTooLong => &mut self.reload_held_too_long,
            Violation::SegmentAfterParts => &mut self.segment_after_parts,
            Violation::HoldBackShort => &mut self.part_hold_back_short,
            Violation::HintMissing => &mut self.hint_missing,
            Violation::NumberingBackwards => &mut self.numbering_backwards,
        }
    }
}

/// Everything the readers need, at one instant.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// Upstream TLS handshake times (relay, https origins only).
    pub tls_handshake: Latency,
    /// First request of a viewer → its playback start (relay only); also of each session
    /// after a `--session-length` zap, a new viewing.
    pub startup: Latency,
    /// First request of a later session → its first segment buffered (relay only).
    pub rejoin: Latency,
    /// How far behind the live edge viewers play, as each segment arrives (relay, and
    /// playlists with `EXT-X-PROGRAM-DATE-TIME` only).
    pub live_latency: Latency,
    /// The player model's figures.
    pub playback: Playback,
    /// Segment bytes per second (relay only).
    pub segment_throughput: Throughput,
    /// All response bytes per second (relay only).
    pub throughput: Throughput,
    /// Media playlists read by the relay.
    pub playlists_seen: u64,
    /// Low-Latency HLS tracks and conformance (native viewers only; absent from results
    /// written before it).
    #[serde(default)]
    pub ll_hls: LowLatency,
    /// With several streams (`--stream`), each one's figures, in the order given; empty with
    /// one.
    pub streams: Vec<crate::measure::streams::StreamFigures>,
    /// Responses by the protocol they came on (`HTTP/1.1`, `HTTP/2`; native viewers only).
    pub protocols: BTreeMap<String, u64>,
    /// HTTPS tunnels.
    pub tunnels: Tunnels,
    /// Segments by the `BANDWIDTH` of their variant (native viewers only).
    pub renditions: BTreeMap<u64, Rendition>,
    /// Variant switches.
    pub switches: Switches,
    /// HTTP error responses (status ≥ 400) by status.
    pub http_errors: BTreeMap<u16, u64>,
    /// Failed connections or cut responses.
    pub network_errors: u64,
    /// Segments FFmpeg gave up on.
    pub segments_skipped: u64,
    /// Exits the viewers made on their own.
    #[serde(with = "pairs")]
    pub exits_unexpected: BTreeMap<Ending, u64>,
    /// Exits caused by our stop.
    #[serde(with = "pairs")]
    pub exits_on_stop: BTreeMap<Ending, u64>,
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
    /// The load generator's own health, and whether it was the bottleneck.
    pub generator: crate::measure::generator::Generator,
    /// Events folded in.
    pub events: u64,
    /// The last log lines of the most recent unexpected exit, with its viewer.
    pub last_failure: Option<(ViewerId, Vec<String>)>,
    /// The last [`crate::measure::history::RECENT_SAMPLES`] seconds, oldest first.
    pub recent: Vec<SecondSample>,
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

    /// Master and media playlist requests (LL-HLS blocking reloads included).
    #[must_use]
    pub fn playlist_requests(&self) -> u64 {
        self.requests_of(RequestKind::Master)
            + self.requests_of(RequestKind::Playlist)
            + self.requests_of(RequestKind::BlockingReload)
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

    /// Playlist requests per second: master, media, and LL-HLS blocking reloads.
    #[must_use]
    pub fn playlist_rate(&self) -> f64 {
        [RequestKind::Master, RequestKind::Playlist, RequestKind::BlockingReload]
            .iter()
            .map(|k| self.rate_of(*k))
            .sum()
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

    /// Segment bits received per second of media, over the segments whose variant is known:
    /// the bitrate viewers were delivered, measured.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn delivered_bitrate(&self) -> Option<f64> {
        let media: f64 = self.renditions.values().map(|r| r.media_seconds).sum();
        let bytes: u64 = self.renditions.values().map(|r| r.bytes).sum();
        (media > 0.0).then(|| bytes as f64 * 8.0 / media)
    }

    /// The variants' advertised `BANDWIDTH`, weighted by the media time fetched from each.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn advertised_bitrate(&self) -> Option<f64> {
        let media: f64 = self.renditions.values().map(|r| r.media_seconds).sum();
        let weighted: f64 = self.renditions.iter().map(|(bw, r)| *bw as f64 * r.media_seconds).sum();
        (media > 0.0).then(|| weighted / media)
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

/// A map whose keys are not strings, as a list of pairs (JSON keys must be strings).
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        m: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<K, V>, D::Error> {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}
