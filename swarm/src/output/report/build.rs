//! The report built from a finished run ([`Report::new`]): what the JSON file holds and the
//! HTML page renders.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::model::*;
use crate::measure::events::Ending;
use crate::measure::events::RequestKind;
use crate::measure::history;
use crate::measure::snapshot;
use crate::output::outcome::Outcome;
use crate::output::thresholds;

/// The version of the report format written today.
pub const SCHEMA_VERSION: u32 = 1;

/// The results of one `hls-swarm` run. Numbers are in SI base units: seconds, bytes, bytes per
/// second, and ratios as fractions (0.01 = 1 %). `null` means "not measured".
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "hls-swarm report")]
pub struct Report {
    /// Version of this format (1). It changes when a field is removed or changes meaning;
    /// fields may be added within a version.
    #[schemars(extend("const" = 1))]
    pub schema_version: u32,
    /// The program that wrote the report.
    pub tool: Tool,
    /// What was run, and how it ended.
    pub run: Run,
    /// The simulated viewers.
    pub viewers: Viewers,
    /// HTTP requests the viewers made, by kind.
    pub requests: Requests,
    /// Failed requests.
    pub errors: Errors,
    /// What the viewers' players experienced (the player model).
    pub playback: Playback,
    /// Low-Latency HLS: parts, blocking reloads and conformance; `null` when no viewer played
    /// LL-HLS.
    pub ll_hls: Option<LowLatency>,
    /// The master playlist's variants the viewers played, and their switches; `null` when no
    /// segment's variant is known (FFmpeg viewers).
    pub variants: Option<Variants>,
    /// With several streams (`--stream`), each one's share of the figures, in the order given;
    /// empty with one stream.
    pub streams: Vec<StreamRow>,
    /// Bytes received per second.
    pub throughput: Throughput,
    /// The origin's own figures from its exporters; `null` when they were not scraped.
    pub origin: Option<Origin>,
    /// The swarm's own machine, and whether it was the bottleneck.
    pub generator: Generator,
    /// Every `--assert` field by name, with its value in the field's base unit; `null` when not
    /// measured. An assertion compares exactly this value.
    pub fields: Fields,
    /// The `--assert` thresholds, in the order given.
    pub thresholds: Vec<Threshold>,
    /// True if every threshold held (also when there were none).
    pub passed: bool,
    /// The `--baseline` report the thresholds compared with, and how this run differs from
    /// it; `null` without `--baseline`.
    pub baseline: Option<BaselineRun>,
    /// Recent notable events (failed starts, HTTP and network errors, unexpected exits, stall
    /// restarts), oldest first; at most the last 64, a repeat of the previous event counted in
    /// its `repeats`.
    pub notices: Vec<Notice>,
    /// One sample per second of the run, oldest first.
    pub series: Vec<Sample>,
    /// What `hls-swarm merge` reads: the run's facts and its results (counters, HDR histograms
    /// in hdrhistogram's V2 format as base64, one sample per wall-clock second). Internal to
    /// hls-swarm; its layout follows the results format's own version.
    pub mergeable: Mergeable,
}

/// A run's facts and results, as `hls-swarm merge` reads them.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mergeable {
    /// The facts the summary shows (URL, engine, run time, shard).
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub facts: crate::output::summary::RunFacts,
    /// The measured results.
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub results: crate::measure::results::Results,
}

/// A number that JSON can hold (NaN and infinities are not measurements).
fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

impl Report {
    /// Builds the report of a finished run.
    #[must_use]
    #[allow(clippy::cast_precision_loss, clippy::too_many_lines)]
    pub fn new(outcome: &Outcome) -> Report {
        let s = &outcome.snapshot;
        let f = &outcome.facts;
        let relay = s.measure == snapshot::Measure::Relay;
        let kind = |k: RequestKind| KindFigures {
            count: s.requests_of(k),
            bytes: relay.then(|| s.bytes_of(k)),
            ttfb: s.ttfb.get(&k).and_then(Quantiles::of),
            download: s.ttlb.get(&k).and_then(Quantiles::of),
        };
        let exits = |m: &BTreeMap<Ending, u64>| m.iter().map(|(e, n)| (e.label.clone(), *n)).collect();
        let total_bytes: u64 = s.bytes.values().sum();
        let elapsed = s.elapsed.as_secs_f64();
        let per_second = |b: u64| (relay && elapsed > 0.0).then(|| b as f64 / elapsed);
        let p = &s.playback;
        let fields = Fields::of(s);
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool { name: "hls-swarm".into(), version: env!("CARGO_PKG_VERSION").into() },
            run: Run {
                url: f.url.clone(),
                ffmpeg: f.ffmpeg.clone(),
                measure: s.measure,
                measured_by: match s.measure {
                    snapshot::Measure::Relay => f.measured_by.to_string(),
                    snapshot::Measure::Log => "FFmpeg's log".to_owned(),
                },
                started: humantime::format_rfc3339_millis(f.started).to_string(),
                run_seconds: finite(f.run_seconds),
                stop_seconds: finite(f.stop_seconds),
                interrupted: f.interrupted,
                planned_duration_seconds: f.duration,
                ramp_rate: finite(f.ramp_rate),
                ramp_rate_achieved: s.ramp_rate_achieved.filter(|r| r.is_finite()),
                ramp_lag_max_seconds: s.ramp_lag_max.as_secs_f64(),
                target_duration_seconds: f.target_duration,
                startup_buffer_seconds: f.startup_buffer,
                http2: f.http2,
                run_id: f.run_id.clone(),
                shard: f.shard,
                start_late_seconds: f.start_late_seconds,
                dropped_events: s.dropped_events,
                variant: f.variant.clone(),
            },
            viewers: Viewers {
                target: s.target,
                started: s.started,
                streaming_peak: s.streaming_peak,
                streaming_at_stop: s.streaming_at_stop,
                reached: fields.get("viewers_reached"),
                ended: s.ended,
                process_starts: s.process_starts,
                restarts: s.restarts,
                stall_restarts: s.stall_restarts,
                spawn_failures: s.spawn_failures,
                process_start_mean_seconds: if s.process_starts == 0 {
                    0.0
                } else {
                    s.spawn_time_total.as_secs_f64() / s.process_starts as f64
                },
                process_start_max_seconds: s.spawn_time_max.as_secs_f64(),
                exits_unexpected: exits(&s.exits_unexpected),
                exits_on_stop: exits(&s.exits_on_stop),
                rows: s.viewers.clone(),
            },
            requests: Requests {
                total: s.total_requests(),
                bytes: relay.then_some(total_bytes),
                by_kind: ByKind {
                    master: kind(RequestKind::Master),
                    playlist: kind(RequestKind::Playlist),
                    segment: kind(RequestKind::Segment),
                    init: kind(RequestKind::Init),
                    key: kind(RequestKind::Key),
                    other: kind(RequestKind::Other),
                    part: kind(RequestKind::Part),
                    blocking_reload: kind(RequestKind::BlockingReload),
                },
                connect: Quantiles::of(&s.connect),
                tls_handshake: Quantiles::of(&s.tls_handshake),
                by_protocol: s.protocols.clone(),
                tunnels: Tunnels {
                    count: s.tunnels.count,
                    failed: s.tunnels.failed,
                    bytes_down: s.tunnels.bytes_down,
                    bytes_up: s.tunnels.bytes_up,
                },
            },
            errors: Errors {
                by_status: s.http_errors.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                http_4xx: s.http_errors_in(400, 499),
                http_5xx: s.http_errors_in(500, 599),
                http_total: s.http_errors.values().sum(),
                network: s.network_errors,
                segments_skipped: s.segments_skipped,
                error_rate: finite(s.error_rate()),
            },
            playback: Playback {
                inferred: !relay,
                sessions_started: p.started + p.rejoins + p.zap_starts,
                viewers_started: p.started,
                rejoins: p.rejoins,
                zaps: p.zaps,
                zap_starts: p.zap_starts,
                failed_starts: p.failed_starts,
                startup: Quantiles::of(&s.startup),
                rejoin: Quantiles::of(&s.rejoin),
                live_edge_latency: Quantiles::of(&s.live_latency),
                stalls: p.stalls,
                stall_seconds: finite(p.stall_seconds),
                watch_seconds: finite(p.watch_seconds),
                stall_ratio: finite(p.stall_ratio()),
                interruptions: p.interruptions,
                process_down_seconds: finite(p.down_seconds),
                late_segments: p.late_segments,
                playlist_refreshes_per_minute: (p.watch_seconds > 0.0)
                    .then(|| s.requests_of(RequestKind::Playlist) as f64 * 60.0 / p.watch_seconds),
            },
            ll_hls: LowLatency::of(s),
            variants: variants(s),
            streams: streams(s, f),
            throughput: Throughput {
                mean_bytes_per_second: per_second(total_bytes),
                segment_mean_bytes_per_second: fields.get("segment_throughput"),
                peak_bytes_per_second: relay
                    .then(|| outcome.series.iter().map(|x| x.bytes).max().unwrap_or(0)),
            },
            origin: outcome
                .origin
                .as_ref()
                .map(|o| Origin::of(o, p.watch_seconds, relay.then_some(total_bytes))),
            generator: Generator::of(&s.generator),
            thresholds: outcome.checks.iter().map(threshold).collect(),
            passed: outcome.passed(),
            baseline: outcome.baseline.as_ref().map(BaselineRun::of),
            fields,
            notices: s.notices.iter().map(notice).collect(),
            series: outcome.series.iter().map(Sample::from).collect(),
            mergeable: Mergeable { facts: outcome.facts.clone(), results: outcome.results.clone() },
        }
    }

    /// The report as pretty-printed JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

fn threshold(c: &thresholds::Checked) -> Threshold {
    Threshold {
        expression: c.text.clone(),
        field: c.field.to_owned(),
        op: c.op.to_owned(),
        limit: finite(c.limit),
        actual: c.actual.filter(|v| v.is_finite()),
        baseline: c.baseline.filter(|v| v.is_finite()),
        passed: c.passed,
        text: c.to_string(),
        detail: c.detail.clone(),
    }
}

fn notice(n: &history::Notice) -> Notice {
    Notice {
        at_seconds: (n.at.as_secs_f64() * 1000.0).round() / 1000.0,
        viewer: n.viewer,
        level: n.level,
        text: n.text.clone(),
        detail: n.detail.clone(),
        repeats: n.repeats,
    }
}

/// The streams section: empty with one stream.
fn streams(s: &snapshot::Snapshot, f: &crate::output::summary::RunFacts) -> Vec<StreamRow> {
    let relay = s.measure == snapshot::Measure::Relay;
    let measured = |l: &crate::measure::latency::Latency| Quantiles::of(l).filter(|_| relay);
    s.streams
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let fact = f.streams.get(i);
            StreamRow {
                url: fact.map_or_else(String::new, |f| f.url.clone()),
                weight: fact.map_or(1, |f| f.weight),
                viewers: x.viewers,
                started: x.started,
                requests: x.requests.iter().map(|(k, n)| (k.label().to_owned(), *n)).collect(),
                bytes: relay.then(|| x.bytes.values().sum()),
                http_4xx: x.http_4xx,
                http_5xx: x.http_5xx,
                network_errors: x.network_errors,
                segments_skipped: x.segments_skipped,
                startup: measured(&x.startup),
                segment_ttfb: measured(&x.segment_ttfb),
                segment_download: measured(&x.segment_ttlb),
                live_latency: measured(&x.live_latency),
                stalls: x.stalls,
                stall_seconds: finite(x.stall_seconds),
                watch_seconds: finite(x.watch_seconds),
                stall_ratio: finite(x.stall_ratio()),
                zaps: x.zaps,
            }
        })
        .collect()
}

/// The variants section: `None` when no segment's variant is known.
fn variants(s: &snapshot::Snapshot) -> Option<Variants> {
    if s.renditions.is_empty() {
        return None;
    }
    let media: f64 = s.renditions.values().map(|r| r.media_seconds).sum();
    Some(Variants {
        switches_up: s.switches.up,
        switches_down: s.switches.down,
        delivered_bits_per_second: s.delivered_bitrate().map(finite),
        advertised_bits_per_second: s.advertised_bitrate().map(finite),
        renditions: s
            .renditions
            .iter()
            .map(|(bw, r)| RenditionRow {
                bandwidth: *bw,
                segments: r.segments,
                media_seconds: finite(r.media_seconds),
                share: if media > 0.0 { finite(r.media_seconds / media) } else { 0.0 },
                bytes: r.bytes,
            })
            .collect(),
    })
}
