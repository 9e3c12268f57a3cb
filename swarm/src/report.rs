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
//! file equal to it (`UPDATE_SCHEMA=1 cargo test -p hls-swarm report` rewrites it).

pub mod chart;
pub mod html;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Serialize;

use crate::latency::Latency;
use crate::parser::RequestKind;
use crate::run::Outcome;
use crate::stats::{self, Snapshot};
use crate::{history, origin_metrics, slo};

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

/// The program that wrote the report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    /// `hls-swarm`.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// How the numbers were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// Every request measured by the relay in the swarm.
    Relay,
    /// FFmpeg's log only: counts and errors, no bytes or latencies; playback inferred.
    Log,
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
    /// Events the stats task dropped because it fell behind (counts are low if not 0).
    pub dropped_events: u64,
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

/// Where a viewer was at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ViewerState {
    /// Never started (the run ended during the ramp).
    Waiting,
    /// Process alive.
    Running,
    /// Waiting to restart.
    Backoff,
    /// The stream ended.
    Ended,
    /// Stopped by the end of the run.
    Stopped,
}

impl From<stats::ViewerState> for ViewerState {
    fn from(s: stats::ViewerState) -> ViewerState {
        match s {
            stats::ViewerState::Waiting => ViewerState::Waiting,
            stats::ViewerState::Running => ViewerState::Running,
            stats::ViewerState::Backoff => ViewerState::Backoff,
            stats::ViewerState::Ended => ViewerState::Ended,
            stats::ViewerState::Stopped => ViewerState::Stopped,
        }
    }
}

/// One viewer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewerRow {
    /// Viewer number (0 is the first started).
    pub id: u32,
    /// Where it was at the end.
    pub state: ViewerState,
    /// True if its player model was stalled at the end.
    pub stalled: bool,
    /// Processes started for it.
    pub starts: u64,
    /// Segments it received.
    pub segments: u64,
    /// Bytes it received.
    pub bytes: u64,
    /// HTTP and network errors it saw.
    pub errors: u64,
    /// Seconds its player model spent stalled.
    pub stall_seconds: f64,
    /// The first line of its last unexpected exit's log; `null` if none.
    pub last_error: Option<String>,
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
    fn of(l: &Latency) -> Option<Quantiles> {
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
}

/// `CONNECT` tunnels (https through the relay): only sizes are visible.
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
    /// HTTPS tunnels.
    pub tunnels: Tunnels,
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
    /// Sessions (viewer processes) that reached playback.
    pub sessions_started: u64,
    /// First request to first segment buffered, seconds; `null` when no session started.
    pub startup: Option<Quantiles>,
    /// Stalls (a player's buffer ran dry).
    pub stalls: u64,
    /// Seconds spent stalled, summed over sessions.
    pub stall_seconds: f64,
    /// Seconds since playback started, summed over sessions (stalls included).
    pub watch_seconds: f64,
    /// `stall_seconds / watch_seconds`, a fraction.
    pub stall_ratio: f64,
    /// Segments that took longer to download than to play.
    pub late_segments: u64,
    /// Media playlist requests per viewer per minute of watching; `null` before anyone played.
    pub playlist_refreshes_per_minute: Option<f64>,
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

/// How scraping one exporter went.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exporter {
    /// The last scrape worked.
    pub ok: bool,
    /// Why the last scrape failed; `null` when it worked.
    pub error: Option<String>,
    /// Scrapes that worked.
    pub scrapes_ok: u64,
    /// Scrapes that failed.
    pub scrapes_failed: u64,
}

impl Exporter {
    fn of(h: &origin_metrics::ExporterHealth) -> Exporter {
        Exporter {
            ok: h.ok,
            error: h.error.clone(),
            scrapes_ok: h.scrapes_ok,
            scrapes_failed: h.scrapes_failed,
        }
    }
}

/// The origin's totals over the run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginRun {
    /// Mean CPU load, a fraction of all CPUs, each scrape interval weighted by its length.
    pub cpu_load_mean: Option<f64>,
    /// Highest CPU load of one scrape interval, a fraction of all CPUs.
    pub cpu_load_peak: Option<f64>,
    /// Bytes received (all devices but `lo`).
    pub network_receive_bytes: u64,
    /// Bytes sent (all devices but `lo`).
    pub network_transmit_bytes: u64,
    /// HTTP requests nginx served (the exporter's own polls included).
    pub nginx_requests: u64,
    /// Most active nginx connections seen in one scrape.
    pub nginx_peak_active_connections: Option<u64>,
}

/// The origin's figures from its node and nginx exporters. Rates and loads are between the
/// last two scrapes; `null` when not available.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// The node exporter's scrapes.
    pub node: Exporter,
    /// The nginx exporter's scrapes.
    pub nginx: Exporter,
    /// CPU load at the end, a fraction of all CPUs.
    pub cpu_load: Option<f64>,
    /// Memory in use (`MemTotal - MemAvailable`), bytes.
    pub memory_used_bytes: Option<u64>,
    /// `MemTotal`, bytes.
    pub memory_total_bytes: Option<u64>,
    /// Bytes received per second (all devices but `lo`).
    pub network_receive_bytes_per_second: Option<f64>,
    /// Bytes sent per second (all devices but `lo`).
    pub network_transmit_bytes_per_second: Option<f64>,
    /// nginx active connections.
    pub nginx_active_connections: Option<u64>,
    /// nginx requests per second.
    pub nginx_requests_per_second: Option<f64>,
    /// The nginx exporter could read nginx's `stub_status`.
    pub nginx_up: Option<bool>,
    /// Totals over the run.
    pub run: OriginRun,
}

impl Origin {
    fn of(o: &origin_metrics::OriginSnapshot) -> Origin {
        let fraction = |p: Option<f64>| p.map(|p| p / 100.0);
        Origin {
            node: Exporter::of(&o.node),
            nginx: Exporter::of(&o.nginx),
            cpu_load: fraction(o.cpu_percent),
            memory_used_bytes: o.mem_used_bytes,
            memory_total_bytes: o.mem_total_bytes,
            network_receive_bytes_per_second: o.net_rx_bytes_per_second,
            network_transmit_bytes_per_second: o.net_tx_bytes_per_second,
            nginx_active_connections: o.active_connections,
            nginx_requests_per_second: o.requests_per_second,
            nginx_up: o.nginx_up,
            run: OriginRun {
                cpu_load_mean: fraction(o.run.cpu_mean_percent),
                cpu_load_peak: fraction(o.run.cpu_peak_percent),
                network_receive_bytes: o.run.net_rx_bytes,
                network_transmit_bytes: o.run.net_tx_bytes,
                nginx_requests: o.run.requests,
                nginx_peak_active_connections: o.run.peak_active_connections,
            },
        }
    }
}

/// Every `--assert` field, in documentation order, with its value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(pub Vec<(&'static str, Option<f64>)>);

impl Fields {
    /// Reads every field from the final snapshot.
    #[must_use]
    pub fn of(s: &Snapshot) -> Fields {
        Fields(slo::fields().map(|f| (f.name, f.value(s))).collect())
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
        for f in slo::fields() {
            let description =
                format!("{}, in {}; null when not measured", capitalized(f.help), f.dimension.unit());
            properties.insert(
                f.name.into(),
                serde_json::json!({"type": ["number", "null"], "description": description}),
            );
        }
        let required: Vec<&str> = slo::fields().map(|f| f.name).collect();
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
    /// True if it held.
    pub passed: bool,
    /// The summary's line, e.g. `FAIL  error_rate<0.1%  (measured 0.2000 %)`.
    pub text: String,
    /// The measured value as shown to people, or why there is none.
    pub detail: String,
}

/// How much a notice matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Part of a normal run.
    Info,
    /// Recoverable trouble (an HTTP error, a restart).
    Warn,
    /// A viewer could not start.
    Error,
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

impl From<&history::Sample> for Sample {
    fn from(s: &history::Sample) -> Sample {
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
