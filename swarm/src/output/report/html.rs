//! The HTML report: one self-contained page rendered from a [`Report`].
//!
//! Inline CSS, charts as inline SVG ([`super::chart`]), no script and no external resource; a
//! Content-Security-Policy refuses any load that slips in. Every text from the run (URLs, log
//! lines, error messages) goes through [`escape`].

use std::fmt::Write as _;

use super::build::Report;
use super::chart::{bridge, downsample, Chart, Line, Point, Reduce, Style, Unit};
use super::markup::{escape, facts, opt, percent, rate, size, table};
use super::model::{KindFigures, Measure, Quantiles, Sample, ViewerRow, ViewerState};
use super::sections::{errors, generator, notices, origin, playback, streams, variants};
use crate::output::summary::seconds;
use crate::output::thresholds;

/// Line colour of the throughput chart.
pub const THROUGHPUT_COLOUR: &str = "#1c7ed6";
/// Line colour of running viewers.
pub const RUNNING_COLOUR: &str = "#7048e8";
/// Line colour of streaming viewers.
pub const STREAMING_COLOUR: &str = "#2b8a3e";
/// Line colour of stalled viewers.
pub const STALLED_COLOUR: &str = "#f59f00";
/// Line colour of the segment download p95 chart.
pub const P95_COLOUR: &str = "#e8590c";
/// Line colour of the errors chart.
pub const ERRORS_COLOUR: &str = "#c2255c";

/// Chart titles, in page order.
pub const CHART_TITLES: [&str; 4] =
    ["Throughput", "Active viewers", "Segment download time, 95th percentile", "Errors per second"];

/// Points per chart line at most; longer runs are downsampled.
pub const MAX_POINTS: usize = 1000;

/// What an empty chart says.
const NO_DATA: &str = "no data";

/// Seconds without a segment download after which the p95 line breaks (shorter gaps are the
/// time between segments, and are bridged).
const P95_GAP: f64 = 10.0;

/// Viewers listed in the page's table (all of them are in the JSON report).
const VIEWER_ROWS: usize = 50;

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2127;background:#fff;margin:0 auto;max-width:1240px;padding:16px 20px 40px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d4da;padding-bottom:4px}
.meta{color:#5c6370;margin:2px 0}.verdict{display:inline-block;padding:3px 10px;border-radius:4px;font-weight:600;margin:8px 0}
.pass{background:#d3f9d8;color:#0b5e1f}.fail{background:#ffe3e3;color:#a51111}.none{background:#eef0f3;color:#3d434c}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:12px}
svg.chart{max-width:100%;height:auto;border:1px solid #e4e6eb;border-radius:4px;background:#fff}
svg .chart-title{font-size:14px;font-weight:600;fill:#1d2127}svg .tick,svg .axis-label,svg .legend{font-size:11px;fill:#5c6370}
svg .no-data{font-size:14px;fill:#8a8f98}
table{border-collapse:collapse;margin:6px 0 10px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d0d4da;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f4f5f7;font-weight:600}
td.num{text-align:right}pre{margin:2px 0 0;font-size:12px;white-space:pre-wrap;color:#3d434c}
.warn{color:#8a5300}.error{color:#a51111}details{margin:6px 0}footer{margin-top:32px;color:#5c6370;font-size:12px}
";

/// The page.
#[must_use]
pub fn render(r: &Report) -> String {
    let mut o = String::with_capacity(64 * 1024 + r.series.len() * 200);
    let _ = writeln!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>hls-swarm report: {}</title><style>{STYLE}</style></head><body>",
        escape(&r.run.url)
    );
    header(&mut o, r);
    o.push_str("<h2>Over time</h2><div class=\"charts\">");
    for chart in charts(r) {
        o.push_str(&chart.svg(600, 260));
    }
    o.push_str("</div>\n");
    thresholds(&mut o, r);
    viewers(&mut o, r);
    requests(&mut o, r);
    playback(&mut o, r);
    variants(&mut o, r);
    streams(&mut o, r);
    errors(&mut o, r);
    origin(&mut o, r);
    generator(&mut o, r);
    notices(&mut o, r);
    viewer_rows(&mut o, r);
    fields(&mut o, r);
    let _ = writeln!(
        o,
        "<footer>Written by {} {} · report schema version {} · the same figures as JSON: <code>--report FILE.json</code></footer>\n</body></html>",
        escape(&r.tool.name),
        escape(&r.tool.version),
        r.schema_version
    );
    o
}

fn header(o: &mut String, r: &Report) {
    let run = &r.run;
    let _ = write!(o, "<h1>hls-swarm report</h1><p class=\"meta\">{}</p>", escape(&run.url));
    let failed = r.thresholds.iter().filter(|t| !t.passed).count();
    let (class, verdict) = match (r.thresholds.len(), failed) {
        (0, _) => ("none", "No thresholds given".to_owned()),
        (n, 0) => ("pass", format!("PASSED: all {n} thresholds held")),
        (n, f) => ("fail", format!("FAILED: {f} of {n} thresholds")),
    };
    let _ = write!(o, "<p class=\"verdict {class}\">{}</p>", escape(&verdict));
    let how = if run.interrupted { "stopped by a signal" } else { "duration reached" };
    let _ = writeln!(
        o,
        "<p class=\"meta\">Started {} · ran {:.1} s ({how}) · {} viewers at {}/s · {} · measured by {}</p>",
        escape(&run.started),
        run.run_seconds,
        r.viewers.target,
        run.ramp_rate,
        escape(&run.ffmpeg),
        match run.measure {
            Measure::Relay => escape(&run.measured_by),
            Measure::Log => "FFmpeg's log (inferred)".to_owned(),
        }
    );
}

/// The four charts over the run's samples, downsampled to [`MAX_POINTS`].
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn charts(r: &Report) -> [Chart; 4] {
    let series = |get: &dyn Fn(&Sample) -> Option<f64>, how| {
        let points: Vec<Point> = r.series.iter().map(|s| (s.second as f64, get(s))).collect();
        downsample(&points, MAX_POINTS, how)
    };
    let line = |name: &str, colour, style, points| Line { name: name.to_owned(), colour, style, points };
    let [throughput, viewers, p95, errors] = CHART_TITLES;
    let x_span = r.series.last().map_or(0.0, |s| s.second as f64);
    let relay = r.run.measure == Measure::Relay;
    let unmeasured = if relay { NO_DATA } else { "not measured with --measure log" };
    [
        Chart {
            title: throughput.into(),
            unit: Unit::BytesPerSecond,
            x_span,
            empty: unmeasured.into(),
            lines: vec![line(
                "all responses",
                THROUGHPUT_COLOUR,
                Style::Area,
                series(&|s| relay.then_some(s.bytes as f64), Reduce::Mean),
            )],
        },
        Chart {
            title: viewers.into(),
            unit: Unit::Count,
            x_span,
            empty: NO_DATA.into(),
            lines: vec![
                line(
                    "running",
                    RUNNING_COLOUR,
                    Style::Area,
                    series(&|s| Some(f64::from(s.running)), Reduce::Mean),
                ),
                line(
                    "streaming",
                    STREAMING_COLOUR,
                    Style::Line,
                    series(&|s| Some(f64::from(s.streaming)), Reduce::Mean),
                ),
                line(
                    "stalled",
                    STALLED_COLOUR,
                    Style::Line,
                    series(&|s| Some(f64::from(s.stalled)), Reduce::Max),
                ),
            ],
        },
        Chart {
            title: p95.into(),
            unit: Unit::Seconds,
            x_span,
            empty: unmeasured.into(),
            lines: vec![line(
                "p95",
                P95_COLOUR,
                Style::Line,
                bridge(&series(&|s| s.segment_download_p95.filter(|_| relay), Reduce::Max), P95_GAP),
            )],
        },
        Chart {
            title: errors.into(),
            unit: Unit::Count,
            x_span,
            empty: NO_DATA.into(),
            lines: vec![line(
                "HTTP and network errors",
                ERRORS_COLOUR,
                Style::Line,
                series(&|s| Some(s.errors as f64), Reduce::Max),
            )],
        },
    ]
}

fn thresholds(o: &mut String, r: &Report) {
    o.push_str("<h2>Thresholds</h2>");
    if let Some(b) = &r.baseline {
        let _ = write!(
            o,
            "<p class=\"meta\">Baseline <code>{}</code> (run {}, started {})</p>",
            escape(&b.file),
            escape(&b.run_id),
            escape(&b.started)
        );
        if !b.differences.is_empty() {
            let list: Vec<String> = b
                .differences
                .iter()
                .map(|d| format!("{} {} in the baseline, {} in this run", d.what, d.baseline, d.run))
                .collect();
            let _ = write!(
                o,
                "<p class=\"warn\">This run differs from the baseline, its figures may not be comparable: {}</p>",
                escape(&list.join("; "))
            );
        }
    }
    if r.thresholds.is_empty() {
        o.push_str("<p class=\"meta\">None given (<code>--assert</code>).</p>");
        return;
    }
    let rows: Vec<Vec<String>> = r
        .thresholds
        .iter()
        .map(|t| {
            let mark = if t.passed {
                "<span class=\"verdict pass\">PASS</span>"
            } else {
                "<span class=\"verdict fail\">FAIL</span>"
            };
            vec![mark.to_owned(), format!("<code>{}</code>", escape(&t.expression)), escape(&t.detail)]
        })
        .collect();
    table(o, &["", "threshold", "measured"], &rows);
}

fn viewers(o: &mut String, r: &Report) {
    let v = &r.viewers;
    let exits = |m: &std::collections::BTreeMap<String, u64>| {
        if m.is_empty() {
            "none".to_owned()
        } else {
            escape(&m.iter().map(|(e, n)| format!("{n} × {e}")).collect::<Vec<_>>().join(", "))
        }
    };
    o.push_str("<h2>Viewers</h2>");
    facts(
        o,
        &[
            ("target", v.target.to_string()),
            ("started", v.started.to_string()),
            ("most streaming at once", format!("{} ({})", v.streaming_peak, opt(v.reached, percent))),
            ("streaming when the stop began", opt(v.streaming_at_stop, |n| n.to_string())),
            ("stream ended", v.ended.to_string()),
            ("process starts", v.process_starts.to_string()),
            ("restarts", format!("{} ({} on stall)", v.restarts, v.stall_restarts)),
            ("spawn failures", v.spawn_failures.to_string()),
            (
                "process start time",
                format!(
                    "mean {} · max {}",
                    seconds(v.process_start_mean_seconds),
                    seconds(v.process_start_max_seconds)
                ),
            ),
            (
                "ramp",
                format!(
                    "asked {}/s · achieved {} · latest start {} behind plan",
                    r.run.ramp_rate,
                    opt(r.run.ramp_rate_achieved, |a| format!("{a:.2}/s")),
                    seconds(r.run.ramp_lag_max_seconds)
                ),
            ),
            ("exits on their own", exits(&v.exits_unexpected)),
            ("exits on stop", exits(&v.exits_on_stop)),
        ],
    );
}

fn quantile_cells(q: Option<&Quantiles>) -> [String; 4] {
    match q {
        None => std::array::from_fn(|_| "n/a".to_owned()),
        Some(q) => [seconds(q.p50), seconds(q.p95), seconds(q.p99), seconds(q.max)],
    }
}

fn requests(o: &mut String, r: &Report) {
    let q = &r.requests;
    o.push_str("<h2>Requests</h2>");
    let k = &q.by_kind;
    let kinds: [(&str, &KindFigures); 6] = [
        ("master playlist", &k.master),
        ("media playlist", &k.playlist),
        ("segment", &k.segment),
        ("init", &k.init),
        ("key", &k.key),
        ("other", &k.other),
    ];
    let rows: Vec<Vec<String>> = kinds
        .iter()
        .filter(|(_, f)| f.count > 0)
        .map(|(name, f)| {
            let mut row = vec![(*name).to_owned(), f.count.to_string(), opt(f.bytes, size)];
            row.extend(quantile_cells(f.ttfb.as_ref()));
            row.extend(quantile_cells(f.download.as_ref()));
            row
        })
        .collect();
    table(
        o,
        &[
            "kind",
            "requests",
            "bytes",
            "TTFB p50",
            "TTFB p95",
            "TTFB p99",
            "TTFB max",
            "download p50",
            "download p95",
            "download p99",
            "download max",
        ],
        &rows,
    );
    let t = &r.throughput;
    facts(
        o,
        &[
            ("requests", q.total.to_string()),
            ("bytes", opt(q.bytes, size)),
            ("throughput, mean over the run", opt(t.mean_bytes_per_second, rate)),
            ("segment throughput, mean", opt(t.segment_mean_bytes_per_second, rate)),
            ("busiest second", opt(t.peak_bytes_per_second, |b| size(b) + "/s")),
            ("connection set-up", spread(q.connect.as_ref())),
            ("TLS handshake", spread(q.tls_handshake.as_ref())),
        ],
    );
    if q.tunnels.count > 0 {
        let _ = write!(
            o,
            "<p class=\"meta\">Blind CONNECT tunnels: {} ({} failed), {} received; their requests are not visible.</p>",
            q.tunnels.count,
            q.tunnels.failed,
            size(q.tunnels.bytes_down)
        );
    }
}

fn viewer_rows(o: &mut String, r: &Report) {
    let rows = &r.viewers.rows;
    if rows.is_empty() {
        return;
    }
    let mut worst: Vec<&ViewerRow> = rows.iter().collect();
    worst.sort_by(|a, b| {
        (b.errors, b.stall_seconds, b.starts)
            .partial_cmp(&(a.errors, a.stall_seconds, a.starts))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.id.cmp(&b.id))
    });
    worst.truncate(VIEWER_ROWS);
    worst.sort_by_key(|v| v.id);
    let _ = write!(o, "<h2>Viewers, one by one</h2><p class=\"meta\">");
    if rows.len() > VIEWER_ROWS {
        let _ = write!(
            o,
            "The {VIEWER_ROWS} of {} viewers with the most errors, stall time and restarts; every viewer is in the JSON report.",
            rows.len()
        );
    } else {
        o.push_str("Every viewer.");
    }
    o.push_str("</p>");
    let cells: Vec<Vec<String>> = worst
        .iter()
        .map(|v| {
            let state = match v.state {
                ViewerState::Waiting => "waiting",
                ViewerState::Running => "running",
                ViewerState::Backoff => "backoff",
                ViewerState::Ended => "ended",
                ViewerState::Stopped => "stopped",
            };
            vec![
                v.id.to_string(),
                state.to_owned(),
                v.starts.to_string(),
                v.segments.to_string(),
                size(v.bytes),
                v.errors.to_string(),
                format!("{:.1} s", v.stall_seconds),
                v.last_error.as_deref().map_or_else(String::new, escape),
            ]
        })
        .collect();
    table(o, &["viewer", "state", "starts", "segments", "bytes", "errors", "stalled", "last error"], &cells);
}

fn fields(o: &mut String, r: &Report) {
    o.push_str("<details><summary>Every <code>--assert</code> field</summary>");
    let rows: Vec<Vec<String>> = thresholds::fields()
        .map(|f| {
            let value = opt(r.fields.get(f.name), |v| match f.dimension {
                thresholds::Dimension::Duration => seconds(v),
                thresholds::Dimension::Ratio => percent(v),
                thresholds::Dimension::Rate => rate(v),
                thresholds::Dimension::Count => format!("{v}"),
                thresholds::Dimension::Flag => (v != 0.0).to_string(),
            });
            vec![format!("<code>{}</code>", f.name), value, escape(f.help)]
        })
        .collect();
    table(o, &["field", "value", "meaning"], &rows);
    o.push_str("</details>");
}

/// `p50 … · p95 … · max …`, or `n/a` when nothing was measured.
fn spread(q: Option<&Quantiles>) -> String {
    q.map_or_else(
        || "n/a".to_owned(),
        |c| format!("p50 {} · p95 {} · max {}", seconds(c.p50), seconds(c.p95), seconds(c.max)),
    )
}
