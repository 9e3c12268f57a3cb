//! End-of-run report files: `--report run.json` (machine-readable, described by
//! `docs/report.schema.json`) and `--report run.html` (one self-contained page).
//!
//! A [`Report`] is built once from the run's [`Outcome`]; the JSON file is that struct
//! serialized and the HTML page ([`html`]) renders the same struct, so both say the same thing.
//! Numbers are in SI base units: seconds, bytes, bytes per second, ratios as fractions
//! (0.01 = 1 %). `fields` holds every `--assert` field by name, so a threshold reads exactly
//! one value of the report.
//!
//! The schema is generated from these types ([`schema`]); a unit test keeps the committed
//! file equal to it (`UPDATE_SCHEMA=1 cargo test -p hls-swarm --lib report` rewrites it).

pub mod chart;
pub mod html;
mod model;

pub use model::*;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Serialize;

use crate::parser::RequestKind;
use crate::run::Outcome;
use crate::{history, slo, stats};

/// The version of the report format written today.
pub const SCHEMA_VERSION: u32 = 1;

/// A report file's format, decided by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.json`: the [`Report`] as JSON.
    Json,
    /// `.html`: one self-contained page.
    Html,
}

/// One `--report` file, validated: a known extension in an existing directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where it is written.
    pub path: PathBuf,
    /// What is written there.
    pub format: Format,
}

/// Accepted `--report` values, for messages.
pub const ACCEPTED: &str = "accepted: a file name ending in .json (machine-readable) or .html \
    (a self-contained page), in a directory that exists";

impl Target {
    /// Reads a `--report` value.
    ///
    /// # Errors
    /// An extension other than `.json` or `.html`, or a parent directory that does not exist;
    /// the message says which.
    pub fn parse(path: &Path) -> Result<Target, String> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let format = match ext.as_deref() {
            Some("json") => Format::Json,
            Some("html") => Format::Html,
            Some(other) => return Err(format!("the extension '.{other}' is not a report format")),
            None => return Err("it has no extension".to_owned()),
        };
        match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
                Err(format!("the directory '{}' does not exist", dir.display()))
            }
            _ => Ok(Target { path: path.to_owned(), format }),
        }
    }
}

/// A report file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the report '{}': {source}", path.display())]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// Writes `report` to `target`, through a temporary file in the same directory, so a reader
/// never sees half a report.
///
/// # Errors
/// If the file cannot be created, written or renamed into place.
pub fn write(report: &Report, target: &Target) -> Result<(), WriteError> {
    let text = match target.format {
        Format::Json => {
            let mut t = report.to_json();
            t.push('\n');
            t
        }
        Format::Html => html::render(report),
    };
    let err = |source| WriteError { path: target.path.clone(), source };
    let name = target.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = target.path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, &target.path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// The JSON Schema of [`Report`] (draft 2020-12), as committed in `docs/report.schema.json`.
#[must_use]
pub fn schema() -> String {
    let generator = schemars::generate::SchemaSettings::draft2020_12().for_serialize().into_generator();
    let schema = generator.into_root_schema_for::<Report>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

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
    /// Bytes received per second.
    pub throughput: Throughput,
    /// The origin's own figures from its exporters; `null` when they were not scraped.
    pub origin: Option<Origin>,
    /// Every `--assert` field by name, with its value in the field's base unit; `null` when not
    /// measured. An assertion compares exactly this value.
    pub fields: Fields,
    /// The `--assert` thresholds, in the order given.
    pub thresholds: Vec<Threshold>,
    /// True if every threshold held (also when there were none).
    pub passed: bool,
    /// Recent notable events (failed starts, HTTP and network errors, unexpected exits, stall
    /// restarts), oldest first; at most the last 64, a repeat of the previous event counted in
    /// its `repeats`.
    pub notices: Vec<Notice>,
    /// One sample per second of the run, oldest first.
    pub series: Vec<Sample>,
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
        let relay = s.measure == stats::Measure::Relay;
        let kind = |k: RequestKind| KindFigures {
            count: s.requests_of(k),
            bytes: relay.then(|| s.bytes_of(k)),
            ttfb: s.ttfb.get(&k).and_then(Quantiles::of),
            download: s.ttlb.get(&k).and_then(Quantiles::of),
        };
        let exits = |m: &BTreeMap<procgroup::Exit, u64>| m.iter().map(|(e, n)| (e.to_string(), *n)).collect();
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
                measure: if relay { Measure::Relay } else { Measure::Log },
                started: humantime::format_rfc3339_millis(f.started).to_string(),
                run_seconds: finite(f.run_seconds),
                stop_seconds: finite(f.stop_seconds),
                interrupted: f.interrupted,
                planned_duration_seconds: f.duration,
                ramp_rate: finite(f.ramp_rate),
                ramp_rate_achieved: s.ramp_rate_achieved.filter(|r| r.is_finite()),
                ramp_lag_max_seconds: s.ramp_lag_max.as_secs_f64(),
                target_duration_seconds: f.target_duration,
                dropped_events: s.dropped_events,
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
                rows: s.viewers.iter().map(viewer_row).collect(),
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
                },
                connect: Quantiles::of(&s.connect),
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
                sessions_started: p.started,
                startup: Quantiles::of(&s.startup),
                stalls: p.stalls,
                stall_seconds: finite(p.stall_seconds),
                watch_seconds: finite(p.watch_seconds),
                stall_ratio: finite(p.stall_ratio()),
                late_segments: p.late_segments,
                playlist_refreshes_per_minute: (p.watch_seconds > 0.0)
                    .then(|| s.requests_of(RequestKind::Playlist) as f64 * 60.0 / p.watch_seconds),
            },
            throughput: Throughput {
                mean_bytes_per_second: per_second(total_bytes),
                segment_mean_bytes_per_second: fields.get("segment_throughput"),
                peak_bytes_per_second: relay
                    .then(|| outcome.series.iter().map(|x| x.bytes).max().unwrap_or(0)),
            },
            origin: outcome.origin.as_ref().map(Origin::of),
            thresholds: outcome.checks.iter().map(threshold).collect(),
            passed: outcome.passed(),
            fields,
            notices: s.notices.iter().map(notice).collect(),
            series: outcome.series.iter().map(Sample::from).collect(),
        }
    }

    /// The report as pretty-printed JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

fn viewer_row(v: &history::ViewerRow) -> ViewerRow {
    ViewerRow {
        id: v.id,
        state: v.state.into(),
        stalled: v.stalled,
        starts: v.starts,
        segments: v.segments,
        bytes: v.bytes,
        errors: v.errors,
        stall_seconds: finite(v.stall_seconds),
        last_error: v.last_error.clone(),
    }
}

fn threshold(c: &slo::Checked) -> Threshold {
    Threshold {
        expression: c.text.clone(),
        field: c.field.to_owned(),
        op: c.op.to_owned(),
        limit: finite(c.limit),
        actual: c.actual.filter(|v| v.is_finite()),
        passed: c.passed,
        text: c.to_string(),
        detail: c.detail.clone(),
    }
}

fn notice(n: &history::Notice) -> Notice {
    Notice {
        at_seconds: (n.at.as_secs_f64() * 1000.0).round() / 1000.0,
        viewer: n.viewer,
        level: match n.level {
            history::Level::Info => Level::Info,
            history::Level::Warn => Level::Warn,
            history::Level::Error => Level::Error,
        },
        text: n.text.clone(),
        detail: n.detail.clone(),
        repeats: n.repeats,
    }
}

#[cfg(test)]
mod tests;
