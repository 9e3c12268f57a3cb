//! The report's types: what the JSON holds, field by field, with the descriptions that become
//! `docs/report.schema.json`. Numbers are in SI base units (seconds, bytes, bytes per second,
//! fractions); `null` means "not measured".

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

pub use crate::measure::history::{Level, ViewerRow, ViewerState};
use crate::measure::latency::Latency;
pub use crate::measure::snapshot::Measure;
use crate::measure::snapshot::Snapshot;
use crate::{measure::history, output::thresholds};

pub use super::hosts::{Exporter, Generator, NetworkScope, Origin, OriginRun};

/// The program that wrote the report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    /// `hls-swarm`.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// What was run, and how it ended.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// The stream URL every viewer opened.
    pub url: String,
    /// The FFmpeg the viewers ran, e.g. `FFmpeg 5.1.6`.
    pub ffmpeg: String,
    /// How the numbers were obtained (`--measure`).
    pub measure: Measure,
    /// Who measured the requests: `the relay`, `the native player`, or `FFmpeg's log`.
    pub measured_by: String,
    /// Wall-clock time the run started (the first viewer was due), RFC 3339 in UTC.
    #[schemars(extend("format" = "date-time"))]
    pub started: String,
    /// Seconds from the start until the stop began.
    pub run_seconds: f64,
    /// Seconds from the stop until every viewer was reaped.
    pub stop_seconds: f64,
    /// True if the run was ended by a signal (Ctrl+C, SIGTERM) rather than by its duration.
    pub interrupted: bool,
    /// The asked run length in seconds (`--duration`); `null`: until stopped.
    pub planned_duration_seconds: Option<f64>,
    /// The asked ramp rate, viewers started per second.
    pub ramp_rate: f64,
    /// The achieved ramp rate, viewers per second; `null` with fewer than two starts.
    pub ramp_rate_achieved: Option<f64>,
    /// Seconds the latest first start fell behind its planned time.
    pub ramp_lag_max_seconds: f64,
    /// The media playlist's target duration in seconds; `null` for a finite (VOD) stream or
    /// one that could not be examined.
    pub target_duration_seconds: Option<f64>,
    /// `--startup-buffer`: seconds of media buffered before playback starts or resumes after
    /// a stall; `null` when one segment is enough (the default).
    pub startup_buffer_seconds: Option<f64>,
    /// `--http2`: native viewers offered HTTP/2 (what they got is in `requests.by_protocol`).
    pub http2: bool,
    /// The run's name (`--run-id`, else random), shared by the shards of a fleet.
    pub run_id: String,
    /// This worker's shard of a fleet (`--shard`); `null` for a whole or merged run.
    pub shard: Option<crate::measure::shard::Shard>,
    /// Seconds this run started after `--start-at`, when more than 1 (a late shard, or clocks
    /// that disagree); `null` when on time or not asked.
    pub start_late_seconds: Option<f64>,
    /// Events the stats task dropped because it fell behind (counts are low if not 0).
    pub dropped_events: u64,
    /// The rendition choice asked for: `--variant` (`all`, `highest`, `lowest`, `first`,
    /// `abr`) or the `--variant-mix` shares (`highest=20,abr=80`); `null` for a merge of
    /// reports that predate it.
    pub variant: Option<String>,
}

/// The simulated viewers.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Viewers {
    /// Viewers asked for (`--clients`).
    pub target: u32,
    /// Viewers whose first process started.
    pub started: u32,
    /// Most viewers streaming at once.
    pub streaming_peak: u32,
    /// Viewers streaming when the stop began; `null` if the run never reached the stop.
    pub streaming_at_stop: Option<u32>,
    /// `streaming_peak / target`, a fraction; `null` when the target is 0.
    pub reached: Option<f64>,
    /// Viewers whose stream ended (finite streams).
    pub ended: u32,
    /// Processes started, first starts included.
    pub process_starts: u64,
    /// Processes started after a viewer's first.
    pub restarts: u64,
    /// Processes restarted by `--restart-on-stall`.
    pub stall_restarts: u64,
    /// Process starts that failed.
    pub spawn_failures: u64,
    /// Mean seconds one process start (fork to exec) took.
    pub process_start_mean_seconds: f64,
    /// Longest seconds one process start took.
    pub process_start_max_seconds: f64,
    /// Exits the viewers made on their own, by how they ended (`exit 1`, `signal 9 (SIGKILL)`).
    pub exits_unexpected: BTreeMap<String, u64>,
    /// Exits caused by the stop, by how they ended.
    pub exits_on_stop: BTreeMap<String, u64>,
    /// Every viewer, by number.
    pub rows: Vec<ViewerRow>,
}

/// A latency distribution, in seconds.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quantiles {
    /// Values recorded.
    pub count: u64,
    /// Arithmetic mean, seconds.
    pub mean: f64,
    /// Median, seconds.
    pub p50: f64,
    /// 90th percentile, seconds.
    pub p90: f64,
    /// 95th percentile, seconds.
    pub p95: f64,
    /// 99th percentile, seconds.
    pub p99: f64,
    /// Largest value, seconds.
    pub max: f64,
}

impl Quantiles {
    pub(super) fn of(l: &Latency) -> Option<Quantiles> {
        (l.count > 0).then(|| Quantiles {
            count: l.count,
            mean: l.mean(),
            p50: l.p50,
            p90: l.p90,
            p95: l.p95,
            p99: l.p99,
            max: l.max,
        })
    }
}

/// Requests of one kind.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KindFigures {
    /// Requests (relay: finished exchanges; log: request starts).
    pub count: u64,
    /// Response body bytes; `null` with `--measure log`.
    pub bytes: Option<u64>,
    /// Time to first byte, seconds; `null` when not measured.
    pub ttfb: Option<Quantiles>,
    /// Download time (request to last byte), seconds; `null` when not measured.
    pub download: Option<Quantiles>,
}

/// Requests by kind.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ByKind {
    /// Master (multivariant) playlists.
    pub master: KindFigures,
    /// Media playlists (with `--measure log`: every playlist).
    pub playlist: KindFigures,
    /// Media segments.
    pub segment: KindFigures,
    /// Init sections (`#EXT-X-MAP`).
    pub init: KindFigures,
    /// Decryption keys.
    pub key: KindFigures,
    /// Anything else.
    pub other: KindFigures,
    /// Low-Latency HLS parts (`EXT-X-PART`, and preload-hinted parts asked for early).
    pub part: KindFigures,
    /// Low-Latency HLS blocking playlist reloads (`_HLS_msn`/`_HLS_part`): their time to
    /// first byte is how long the origin held them.
    pub blocking_reload: KindFigures,
}

/// Low-Latency HLS as the native viewers played it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LowLatency {
    /// Tracks that played in LL-HLS mode (one per session and media playlist).
    pub sessions: u64,
    /// Parts requested (listed and preload-hinted).
    pub parts: u64,
    /// Part time to first byte, seconds (a preload-hinted part's includes the wait until it
    /// existed); `null` when none was measured.
    pub part_ttfb: Option<Quantiles>,
    /// Part download time (request to last byte), seconds.
    pub part_download: Option<Quantiles>,
    /// Blocking reloads made.
    pub blocking_reloads: u64,
    /// How long the origin held each blocking reload: its response time (to the first byte
    /// of the answer), seconds.
    pub reload_hold: Option<Quantiles>,
    /// Live-edge latency measured from `EXT-X-PROGRAM-DATE-TIME`: wall time minus the
    /// program date-time of the media playing (for LL-HLS, of the newest part played), as
    /// each part or segment arrived; seconds. The same figure as
    /// `playback.live_edge_latency`, which covers every viewer.
    pub live_edge_latency_from_pdt: Option<Quantiles>,
    /// Conformance violations by rule (`conformance_<rule>` in `--assert`).
    pub conformance: BTreeMap<String, u64>,
    /// All of them.
    pub conformance_violations: u64,
    /// `--variant abr`: rendition switches that joined the new rendition where the old
    /// playlist's `EXT-X-RENDITION-REPORT` said it was (one blocking reload).
    pub switches_from_report: u64,
    /// Rendition switches that loaded the new playlist plainly (no report for it).
    pub switches_plain_load: u64,
}

impl LowLatency {
    /// The section, when any viewer played LL-HLS.
    #[must_use]
    pub fn of(s: &Snapshot) -> Option<LowLatency> {
        use crate::measure::events::{RequestKind, Violation};
        let l = &s.ll_hls;
        (l.sessions > 0).then(|| LowLatency {
            sessions: l.sessions,
            parts: s.requests_of(RequestKind::Part),
            part_ttfb: s.ttfb.get(&RequestKind::Part).and_then(Quantiles::of),
            part_download: s.ttlb.get(&RequestKind::Part).and_then(Quantiles::of),
            blocking_reloads: s.requests_of(RequestKind::BlockingReload),
            reload_hold: s.ttfb.get(&RequestKind::BlockingReload).and_then(Quantiles::of),
            live_edge_latency_from_pdt: Quantiles::of(&s.live_latency),
            conformance: Violation::ALL
                .iter()
                .map(|v| (v.label().to_owned(), l.conformance.get(*v)))
                .collect(),
            conformance_violations: l.conformance.total(),
            switches_from_report: l.switches_from_report,
            switches_plain_load: l.switches_plain,
        })
    }
}

/// `CONNECT` tunnels the relay passed through blind (what was inside was not TLS, or the relay
/// had no TLS): only sizes are visible. HTTPS through the relay is measured like HTTP.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
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

/// HTTP requests the viewers made.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Requests {
    /// All requests.
    pub total: u64,
    /// All response body bytes; `null` with `--measure log`.
    pub bytes: Option<u64>,
    /// By kind.
    pub by_kind: ByKind,
    /// Upstream connection set-up time, seconds; `null` when not measured.
    pub connect: Option<Quantiles>,
    /// Upstream TLS handshake time (https origins), seconds; `null` when none was measured.
    pub tls_handshake: Option<Quantiles>,
    /// Blind `CONNECT` tunnels.
    pub tunnels: Tunnels,
    /// Responses by the protocol they came on (`HTTP/1.1`, `HTTP/2`); empty for FFmpeg
    /// viewers (their relay speaks HTTP/1.1 to the origin).
    pub by_protocol: BTreeMap<String, u64>,
}

/// Failed requests.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Errors {
    /// HTTP error responses (status >= 400) by status code.
    pub by_status: BTreeMap<String, u64>,
    /// Responses with a 4xx status.
    pub http_4xx: u64,
    /// Responses with a 5xx status.
    pub http_5xx: u64,
    /// Responses with a status >= 400.
    pub http_total: u64,
    /// Requests without a complete response (refused, reset, timed out).
    pub network: u64,
    /// Segments FFmpeg gave up on.
    pub segments_skipped: u64,
    /// (HTTP errors + network errors) / requests, a fraction.
    pub error_rate: f64,
}

/// What the viewers' players experienced.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Playback {
    /// True with `--measure log`: each segment request counted as one target duration.
    pub inferred: bool,
    /// Sessions (viewer processes) that reached playback: `viewers_started + rejoins +
    /// zap_starts`.
    pub sessions_started: u64,
    /// Viewers that reached playback.
    pub viewers_started: u64,
    /// Later sessions that reached playback again after their viewer's process ended.
    pub rejoins: u64,
    /// Sessions that ended at their `--session-length`: the viewer left on purpose and a new
    /// session took its place (neither an interruption nor a stall).
    pub zaps: u64,
    /// Sessions after a zap that reached playback; their startups are in `startup`.
    pub zap_starts: u64,
    /// Viewers that had not played `--startup-timeout` after they started; their wait counts
    /// as watched and stalled.
    pub failed_starts: u32,
    /// A viewer's first request to its playback start (its first segment, or
    /// `--startup-buffer` of media, buffered), and the same for each session after a zap,
    /// seconds; `null` when no viewer played, or with `--measure log` (the log shows no
    /// arrivals, so it cannot be inferred).
    pub startup: Option<Quantiles>,
    /// A later session's first request to its first segment buffered, seconds; `null` when
    /// there was none, or with `--measure log`.
    pub rejoin: Option<Quantiles>,
    /// How far behind the live edge viewers played (wall time minus the program date-time of
    /// the media playing), sampled as each segment arrived, seconds; `null` when the playlists
    /// carry no `EXT-X-PROGRAM-DATE-TIME`, or with `--measure log`.
    pub live_edge_latency: Option<Quantiles>,
    /// Stalls: a player's buffer ran dry, also because its process ended (ongoing ones at the
    /// stop included).
    pub stalls: u64,
    /// Seconds not playing after each viewer's first playback, across its processes (stalls,
    /// exits, backoff, an unreachable origin), plus the wait of failed starts.
    pub stall_seconds: f64,
    /// Seconds from each viewer's first playback (or its start, for a failed start) until it
    /// finished or the run stopped, summed over viewers.
    pub watch_seconds: f64,
    /// Sessions that ended by themselves (or were restarted for a stall) after their viewer
    /// had played: error-caused interruptions.
    pub interruptions: u64,
    /// Seconds viewers had no process, from a session's end to the next one's start (an
    /// origin outage shows here; slow delivery does not).
    pub process_down_seconds: f64,
    /// `stall_seconds / watch_seconds`, a fraction.
    pub stall_ratio: f64,
    /// Segments that took longer to download than to play.
    pub late_segments: u64,
    /// Media playlist requests per viewer per minute of watching; `null` before anyone played.
    pub playlist_refreshes_per_minute: Option<f64>,
}

/// Which variants viewers played (native viewers know each segment's variant).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Variants {
    /// Switches to a higher `BANDWIDTH` (`--variant abr`).
    pub switches_up: u64,
    /// Switches to a lower one.
    pub switches_down: u64,
    /// Segment bits received per second of media fetched, bits per second: the bitrate
    /// delivered, measured.
    pub delivered_bits_per_second: Option<f64>,
    /// The variants' `BANDWIDTH`, weighted by the media time fetched from each, bits per
    /// second.
    pub advertised_bits_per_second: Option<f64>,
    /// Each variant played, by ascending `BANDWIDTH`.
    pub renditions: Vec<RenditionRow>,
}

/// One stream of a run with several (`--stream`): its share of the figures.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamRow {
    /// Its URL, secrets hidden.
    pub url: String,
    /// Its weight.
    pub weight: u32,
    /// Viewers dealt to it.
    pub viewers: u32,
    /// Those whose first session started.
    pub started: u32,
    /// Requests by kind (`master`, `playlist`, `segment`, `init`, `key`, `other`).
    pub requests: BTreeMap<String, u64>,
    /// Response bytes; `null` with `--measure log`.
    pub bytes: Option<u64>,
    /// HTTP 4xx answers.
    pub http_4xx: u64,
    /// HTTP 5xx answers.
    pub http_5xx: u64,
    /// Connections that failed instead of answering.
    pub network_errors: u64,
    /// Segments given up after their retries.
    pub segments_skipped: u64,
    /// Startup times (first viewings and those after a zap), seconds; `null` when none.
    pub startup: Option<Quantiles>,
    /// Segment time to first byte, seconds; `null` when not measured.
    pub segment_ttfb: Option<Quantiles>,
    /// Segment download time, seconds; `null` when not measured.
    pub segment_download: Option<Quantiles>,
    /// How far behind the live edge its viewers played, seconds; `null` when not measured.
    pub live_latency: Option<Quantiles>,
    /// Stalls of its viewers' players.
    pub stalls: u64,
    /// Seconds stalled.
    pub stall_seconds: f64,
    /// Seconds watched.
    pub watch_seconds: f64,
    /// Stalled over watched time, a fraction.
    pub stall_ratio: f64,
    /// Sessions that ended at their `--session-length`.
    pub zaps: u64,
}

/// Media fetched from one variant.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenditionRow {
    /// Its `BANDWIDTH`, bits per second.
    pub bandwidth: u64,
    /// Segments downloaded whole.
    pub segments: u64,
    /// Their media duration: time spent on this variant, seconds.
    pub media_seconds: f64,
    /// Its share of all media fetched from known variants, a fraction.
    pub share: f64,
    /// Their bytes.
    pub bytes: u64,
}

/// Bytes received per second.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Throughput {
    /// All response bytes / seconds from the start until every viewer was reaped, bytes per
    /// second; `null` with `--measure log`.
    pub mean_bytes_per_second: Option<f64>,
    /// Segment bytes over the same time, bytes per second (the `segment_throughput` field).
    pub segment_mean_bytes_per_second: Option<f64>,
    /// The busiest second of `series`, bytes per second; `null` with `--measure log`.
    pub peak_bytes_per_second: Option<u64>,
}

/// Every `--assert` field, in documentation order, with its value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(pub Vec<(&'static str, Option<f64>)>);

impl Fields {
    /// Reads every field from the final snapshot.
    #[must_use]
    pub fn of(s: &Snapshot) -> Fields {
        Fields(thresholds::fields().map(|f| (f.name, f.value(s))).collect())
    }

    /// One field's value.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| *n == name).and_then(|(_, v)| *v)
    }
}

impl Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, &Number(*value))?;
        }
        map.end()
    }
}

impl JsonSchema for Fields {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Fields".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut properties = serde_json::Map::new();
        for f in thresholds::fields() {
            let description =
                format!("{}, in {}; null when not measured", capitalized(f.help), f.dimension.unit());
            properties.insert(
                f.name.into(),
                serde_json::json!({"type": ["number", "null"], "description": description}),
            );
        }
        let required: Vec<&str> = thresholds::fields().map(|f| f.name).collect();
        schemars::json_schema!({
            "type": "object",
            "description": "Every --assert field (docs/metrics.md#thresholds---assert) with its value in the \
                field's base unit: seconds, fractions, bytes per second or counts.",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    }
}

/// A measured value as JSON: whole numbers as integers (`3`, not `3.0`), `None` as `null`.
struct Number(Option<f64>);

impl Serialize for Number {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(v) if v.fract() == 0.0 && (0.0..9.0e15).contains(&v) => s.serialize_u64(v as u64),
            v => v.serialize(s),
        }
    }
}

#[allow(clippy::ref_option)]
fn number<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    Number(*v).serialize(s)
}

fn whole<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    Number(Some(*v)).serialize(s)
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |first| first.to_uppercase().chain(c).collect())
}

/// One `--assert` and its result.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// The assertion as written, e.g. `segment_ttfb_p95<500ms`.
    pub expression: String,
    /// The field it reads (a key of `fields`).
    pub field: String,
    /// The comparison: `<`, `<=`, `>`, `>=`, `==` or `!=`.
    pub op: String,
    /// The value compared against, in the field's base unit.
    #[serde(serialize_with = "whole")]
    pub limit: f64,
    /// The measured value in the field's base unit (equal to `fields[field]`); `null` when not
    /// measured, which fails the threshold.
    #[serde(serialize_with = "number")]
    pub actual: Option<f64>,
    /// With a limit relative to the baseline (`baseline * 1.2`, `baseline + 50ms`), the
    /// `--baseline` report's value of the field, from which `limit` was made; else `null`.
    #[serde(serialize_with = "number")]
    pub baseline: Option<f64>,
    /// True if it held.
    pub passed: bool,
    /// The summary's line, e.g. `FAIL  error_rate<0.1%  (measured 0.2000 %)`.
    pub text: String,
    /// The measured value as shown to people, or why there is none.
    pub detail: String,
}

/// The `--baseline` report a run was checked against.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BaselineRun {
    /// The baseline report's file, as given.
    pub file: String,
    /// Its run's `run_id`.
    pub run_id: String,
    /// When its run started, RFC 3339 in UTC.
    pub started: String,
    /// How this run's shape differs from the baseline's (streams, clients, engine, variant,
    /// measure, duration, ramp rate); empty when they are alike. Figures of unlike runs may
    /// not be comparable.
    pub differences: Vec<ShapeDifference>,
}

/// One way this run differs from its baseline.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShapeDifference {
    /// What differs: `streams`, `clients`, `engine`, `variant`, `measure`, `duration` or
    /// `ramp rate`.
    pub what: String,
    /// Its value in the baseline's run.
    pub baseline: String,
    /// Its value in this run.
    pub run: String,
}

impl BaselineRun {
    pub(super) fn of(n: &crate::output::shape::BaselineNote) -> BaselineRun {
        BaselineRun {
            file: n.file.clone(),
            run_id: n.run_id.clone(),
            started: n.started.clone(),
            differences: n
                .differences
                .iter()
                .map(|d| ShapeDifference {
                    what: d.what.to_owned(),
                    baseline: d.base.clone(),
                    run: d.new.clone(),
                })
                .collect(),
        }
    }
}

/// A notable event.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    /// Seconds since the run started (of the latest repeat).
    pub at_seconds: f64,
    /// Which viewer (of the latest repeat); `null` for the whole run.
    pub viewer: Option<u32>,
    /// Severity.
    pub level: Level,
    /// One line.
    pub text: String,
    /// The viewer's last log lines, for exits.
    pub detail: Vec<String>,
    /// How many times in a row it happened (1 = once).
    pub repeats: u64,
}

/// One second of the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// Seconds since the first viewer was due: the sample covers `[second, second + 1)`.
    pub second: u64,
    /// Viewer processes alive at the end of the second.
    pub running: u32,
    /// Viewers that fetched a segment recently.
    pub streaming: u32,
    /// Viewers whose player model was stalled.
    pub stalled: u32,
    /// Bytes received in this second, all request kinds (0 with `--measure log`).
    pub bytes: u64,
    /// Requests that ended in this second.
    pub requests: u64,
    /// HTTP (status >= 400) and network errors in this second.
    pub errors: u64,
    /// 95th percentile of the segment download times that ended in this second, seconds;
    /// `null` if none ended.
    pub segment_download_p95: Option<f64>,
}

impl From<&history::SecondSample> for Sample {
    fn from(s: &history::SecondSample) -> Sample {
        Sample {
            second: s.second,
            running: s.running,
            streaming: s.streaming,
            stalled: s.stalled,
            bytes: s.bytes,
            requests: s.requests,
            errors: s.errors,
            segment_download_p95: s.segment_p95.filter(|v| v.is_finite()),
        }
    }
}
