//! `hls-swarm compare`: two runs' key figures side by side — base, new, the change and the
//! relative change — and, for each figure where one direction is better, whether the new run
//! improved or got worse. As text for the terminal and a CI log, and as one self-contained
//! HTML page (no script, no external resource; every text escaped as in the HTML report).
//!
//! Figures are read from the JSON reports by pointer, the `--assert` fields from `fields`, so
//! a row's name is the field a `--assert` (or `--baseline` threshold) would name.

use std::fmt::Write as _;

use crate::output::baseline::PastRun;
use crate::output::report::markup::escape;
use crate::output::shape::{differences_text, Difference};
use crate::output::summary;

/// Which way a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Smaller is better (latencies, errors, stalls).
    Lower,
    /// Larger is better (viewers reached, throughput).
    Higher,
    /// Neither: the load itself (viewers asked for, requests, bytes).
    Neither,
}

/// How a figure's values are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A plain number.
    Count,
    /// Bytes.
    Bytes,
    /// Seconds.
    Seconds,
    /// A fraction, shown in per cent (changes in percentage points).
    Ratio,
    /// Bytes per second.
    Rate,
}

/// When a row is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// Always.
    Always,
    /// When either run has a value other than 0.
    IfAny,
}

/// One figure of the table: its name, where it is in a report, how it is shown and compared.
#[derive(Debug, Clone, Copy)]
struct Figure {
    name: &'static str,
    pointer: &'static str,
    unit: Unit,
    better: Better,
    shown: Shown,
}

const fn figure(name: &'static str, pointer: &'static str, unit: Unit, better: Better) -> Figure {
    Figure { name, pointer, unit, better, shown: Shown::Always }
}

const fn optional(name: &'static str, pointer: &'static str, unit: Unit, better: Better) -> Figure {
    Figure { name, pointer, unit, better, shown: Shown::IfAny }
}

/// The table's figures, in order.
const FIGURES: [Figure; 30] = [
    figure("viewers_target", "/viewers/target", Unit::Count, Better::Neither),
    figure("viewers_started", "/viewers/started", Unit::Count, Better::Higher),
    figure("viewers_reached", "/fields/viewers_reached", Unit::Ratio, Better::Higher),
    figure("requests", "/requests/total", Unit::Count, Better::Neither),
    optional("requests_master", "/requests/by_kind/master/count", Unit::Count, Better::Neither),
    figure("requests_playlist", "/requests/by_kind/playlist/count", Unit::Count, Better::Neither),
    figure("requests_segment", "/requests/by_kind/segment/count", Unit::Count, Better::Neither),
    optional("requests_init", "/requests/by_kind/init/count", Unit::Count, Better::Neither),
    optional("requests_key", "/requests/by_kind/key/count", Unit::Count, Better::Neither),
    figure("bytes", "/requests/bytes", Unit::Bytes, Better::Neither),
    figure("error_rate", "/fields/error_rate", Unit::Ratio, Better::Lower),
    figure("http_errors", "/fields/http_errors", Unit::Count, Better::Lower),
    figure("network_errors", "/fields/network_errors", Unit::Count, Better::Lower),
    figure("segment_ttfb_p50", "/fields/segment_ttfb_p50", Unit::Seconds, Better::Lower),
    figure("segment_ttfb_p95", "/fields/segment_ttfb_p95", Unit::Seconds, Better::Lower),
    figure("segment_ttfb_p99", "/fields/segment_ttfb_p99", Unit::Seconds, Better::Lower),
    figure("segment_download_p95", "/fields/segment_download_p95", Unit::Seconds, Better::Lower),
    figure("playlist_ttfb_p95", "/fields/playlist_ttfb_p95", Unit::Seconds, Better::Lower),
    figure("startup_p50", "/fields/startup_p50", Unit::Seconds, Better::Lower),
    figure("startup_p95", "/fields/startup_p95", Unit::Seconds, Better::Lower),
    // From `playback`, so reports written before the live_latency fields compare too.
    optional("live_latency_p50", "/playback/live_edge_latency/p50", Unit::Seconds, Better::Lower),
    optional("live_latency_p95", "/playback/live_edge_latency/p95", Unit::Seconds, Better::Lower),
    figure("stall_ratio", "/fields/stall_ratio", Unit::Ratio, Better::Lower),
    figure("stalls", "/fields/stalls", Unit::Count, Better::Lower),
    figure("failed_starts", "/fields/failed_starts", Unit::Count, Better::Lower),
    figure("restarts", "/fields/restarts", Unit::Count, Better::Lower),
    figure("late_segments", "/fields/late_segments", Unit::Count, Better::Lower),
    figure("throughput", "/throughput/mean_bytes_per_second", Unit::Rate, Better::Higher),
    figure("segment_throughput", "/fields/segment_throughput", Unit::Rate, Better::Higher),
    figure("generator_bound", "/fields/generator_bound", Unit::Count, Better::Lower),
];

/// How a figure moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It moved the better way.
    Improved,
    /// It moved the worse way.
    Worse,
    /// Equal.
    Same,
    /// It moved, and neither way is better.
    Changed,
    /// One of the runs has no value.
    NotComparable,
}

impl Verdict {
    /// As the table shows it.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Worse => "WORSE",
            Verdict::Same => "same",
            Verdict::Changed => "",
            Verdict::NotComparable => "n/a",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The figure's name (the `--assert` field's where there is one).
    pub name: &'static str,
    /// How its values are shown.
    pub unit: Unit,
    /// Which way is better.
    pub better: Better,
    /// Its value in the base run; `None` when not measured there.
    pub base: Option<f64>,
    /// Its value in the new run.
    pub new: Option<f64>,
}

fn equal(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12)
}

impl Row {
    /// New minus base.
    #[must_use]
    pub fn change(&self) -> Option<f64> {
        Some(self.new? - self.base?)
    }

    /// The change as a fraction of the base; `None` when the base is 0 (and the new is not).
    #[must_use]
    pub fn relative(&self) -> Option<f64> {
        let (base, new) = (self.base?, self.new?);
        if equal(base, new) {
            Some(0.0)
        } else if base == 0.0 {
            None
        } else {
            Some((new - base) / base.abs())
        }
    }

    /// Whether the new run improved on the base in this figure.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        let (Some(base), Some(new)) = (self.base, self.new) else {
            return Verdict::NotComparable;
        };
        if equal(base, new) {
            return Verdict::Same;
        }
        match (self.better, new < base) {
            (Better::Neither, _) => Verdict::Changed,
            (Better::Lower, true) | (Better::Higher, false) => Verdict::Improved,
            (Better::Lower, false) | (Better::Higher, true) => Verdict::Worse,
        }
    }
}

/// One side of a comparison, as its header names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    /// The file, as given.
    pub file: String,
    /// `run r1, started …, 2 viewers, ffmpeg, 6 s`, for people.
    pub about: String,
}

impl Side {
    fn of(p: &PastRun) -> Side {
        let s = &p.shape;
        let duration = s.duration.map_or_else(|| "until stopped".to_owned(), |d| format!("{d} s"));
        Side {
            file: p.file.clone(),
            about: format!(
                "run {}, started {}, {} viewers of {}, {} engine, {duration}",
                p.run_id,
                p.started,
                s.clients,
                s.streams.join(" "),
                s.engine
            ),
        }
    }
}

/// Two runs compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The earlier run.
    pub base: Side,
    /// The later run.
    pub new: Side,
    /// How the new run's shape differs from the base's; empty when alike.
    pub differences: Vec<Difference>,
    /// The figures shown, in order.
    pub rows: Vec<Row>,
}

impl Comparison {
    /// `new` compared with `base`.
    #[must_use]
    pub fn new(base: &PastRun, new: &PastRun) -> Comparison {
        let rows = FIGURES
            .iter()
            .map(|f| Row {
                name: f.name,
                unit: f.unit,
                better: f.better,
                base: base.figure(f.pointer),
                new: new.figure(f.pointer),
            })
            .zip(FIGURES.iter())
            .filter(|(r, f)| {
                f.shown == Shown::Always
                    || r.base.is_some_and(|v| v != 0.0)
                    || r.new.is_some_and(|v| v != 0.0)
            })
            .map(|(r, _)| r)
            .collect();
        Comparison {
            base: Side::of(base),
            new: Side::of(new),
            differences: base.shape.differences(&new.shape),
            rows,
        }
    }

    /// The warning about unlike runs, if they are.
    #[must_use]
    pub fn warning(&self) -> Option<String> {
        (!self.differences.is_empty()).then(|| {
            format!(
                "WARNING: the runs differ, so their figures may not be comparable: {}",
                differences_text(&self.differences, &self.base.file, &self.new.file)
            )
        })
    }

    /// `3 improved, 1 worse, 12 same`.
    #[must_use]
    pub fn tally(&self) -> String {
        let count = |v: Verdict| self.rows.iter().filter(|r| r.verdict() == v).count();
        let judged = self.rows.iter().filter(|r| r.better != Better::Neither).count();
        format!(
            "{} improved, {} worse, {} same, {} not comparable (of {judged} figures where one direction is better)",
            count(Verdict::Improved),
            count(Verdict::Worse),
            self.rows.iter().filter(|r| r.better != Better::Neither && r.verdict() == Verdict::Same).count(),
            self.rows.iter().filter(|r| r.better != Better::Neither && r.verdict() == Verdict::NotComparable).count(),
        )
    }

    /// The table's cells, row by row: figure, base, new, change, relative, better, verdict.
    fn cells(&self) -> Vec<[String; 7]> {
        self.rows
            .iter()
            .map(|r| {
                [
                    r.name.to_owned(),
                    r.base.map_or_else(|| "n/a".to_owned(), |v| value(r.unit, v)),
                    r.new.map_or_else(|| "n/a".to_owned(), |v| value(r.unit, v)),
                    r.change().map_or_else(|| "n/a".to_owned(), |v| change(r.unit, v)),
                    r.relative().map_or_else(|| "n/a".to_owned(), |v| format!("{:+.1} %", v * 100.0)),
                    match r.better {
                        Better::Lower => "lower",
                        Better::Higher => "higher",
                        Better::Neither => "-",
                    }
                    .to_owned(),
                    r.verdict().label().to_owned(),
                ]
            })
            .collect()
    }

    /// The comparison as text: who is compared, the warning, the table, the tally.
    #[must_use]
    pub fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "Base  {}  ({})", self.base.file, self.base.about);
        let _ = writeln!(o, "New   {}  ({})", self.new.file, self.new.about);
        if let Some(w) = self.warning() {
            let _ = writeln!(o, "{w}");
        }
        let mut rows = vec![HEAD.map(str::to_owned)];
        rows.extend(self.cells());
        let mut widths = [0usize; 7];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in &rows {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                let pad = w - cell.chars().count();
                // Names and words to the left, numbers to the right.
                if (1..=4).contains(&i) {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                }
                line.push_str("  ");
            }
            let _ = writeln!(o, "{}", line.trim_end());
        }
        let _ = writeln!(o, "{}", self.tally());
        o
    }

    /// The comparison as one self-contained HTML page.
    #[must_use]
    pub fn html(&self) -> String {
        let mut o = String::with_capacity(16 * 1024);
        let _ = write!(
            o,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>hls-swarm comparison: {} and {}</title><style>{STYLE}</style></head><body>\
             <h1>hls-swarm comparison</h1>",
            escape(&self.base.file),
            escape(&self.new.file)
        );
        for (label, side) in [("Base", &self.base), ("New", &self.new)] {
            let _ = write!(
                o,
                "<p class=\"meta\"><b>{label}</b> <code>{}</code> ({})</p>",
                escape(&side.file),
                escape(&side.about)
            );
        }
        if let Some(w) = self.warning() {
            let _ = write!(o, "<p class=\"warn\">{}</p>", escape(&w));
        }
        o.push_str("<table><tr>");
        for h in HEAD {
            let _ = write!(o, "<th>{}</th>", escape(h));
        }
        o.push_str("</tr>");
        for (row, cells) in self.rows.iter().zip(self.cells()) {
            let class = match row.verdict() {
                Verdict::Improved => "improved",
                Verdict::Worse => "worse",
                _ => "",
            };
            let _ = write!(o, "<tr class=\"{class}\"><td><code>{}</code></td>", escape(&cells[0]));
            for cell in &cells[1..5] {
                let _ = write!(o, "<td class=\"num\">{}</td>", escape(cell));
            }
            for cell in &cells[5..] {
                let _ = write!(o, "<td>{}</td>", escape(cell));
            }
            o.push_str("</tr>");
        }
        let _ = writeln!(
            o,
            "</table><p>{}</p><footer>Written by hls-swarm {} · <code>hls-swarm compare</code></footer>\n</body></html>",
            escape(&self.tally()),
            env!("CARGO_PKG_VERSION")
        );
        o
    }
}

/// The table's header.
const HEAD: [&str; 7] = ["figure", "base", "new", "change", "relative", "better", "verdict"];

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2127;background:#fff;margin:0 auto;max-width:1240px;padding:16px 20px 40px}
h1{font-size:22px;margin:8px 0 4px}.meta{color:#5c6370;margin:2px 0}.warn{color:#8a5300;font-weight:600}
table{border-collapse:collapse;margin:10px 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d0d4da;padding:3px 8px;text-align:left}th{background:#f4f5f7;font-weight:600}td.num{text-align:right}
tr.improved td{background:#d3f9d8}tr.worse td{background:#ffe3e3}footer{margin-top:32px;color:#5c6370;font-size:12px}
";

/// A value for people.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
fn value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Count if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        Unit::Count => format!("{v:.2}"),
        Unit::Bytes => summary::bytes(v),
        Unit::Seconds => summary::seconds(v),
        Unit::Ratio => format!("{:.3} %", v * 100.0),
        Unit::Rate => format!("{}/s", summary::bytes(v)),
    }
}

/// A signed change for people; ratios change in percentage points.
fn change(unit: Unit, d: f64) -> String {
    let sign = if d < 0.0 { "-" } else { "+" };
    match unit {
        Unit::Ratio => format!("{sign}{:.3} pp", d.abs() * 100.0),
        _ => format!("{sign}{}", value(unit, d.abs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(file: &str, clients: u32, ttfb_p95: f64, errors: u64, live: Option<f64>) -> PastRun {
        let json = serde_json::json!({
            "schema_version": 1,
            "tool": {"name": "hls-swarm", "version": "0"},
            "run": {"run_id": file, "started": "2026-01-01T00:00:00.000Z", "measure": "relay"},
            "viewers": {"target": clients, "started": clients},
            "requests": {"total": 100, "bytes": 1_000_000, "by_kind": {
                "master": {"count": 0}, "playlist": {"count": 40}, "segment": {"count": 60},
                "init": {"count": 0}, "key": {"count": 0}}},
            "playback": {"live_edge_latency": live.map(|p| serde_json::json!({"p50": p, "p95": p}))},
            "throughput": {"mean_bytes_per_second": 250_000.0},
            "fields": {"segment_ttfb_p95": ttfb_p95, "http_errors": errors, "error_rate": 0.0,
                       "viewers_reached": 1.0, "startup_p95": null},
            "mergeable": {"facts": {
                "url": "http://h/a.m3u8", "ffmpeg": "FFmpeg 5.1", "measured_by": "the relay",
                "start_unit": "process", "ramp_rate": 5.0, "run_seconds": 6.0, "interrupted": false,
                "quit_from_dashboard": false, "all_ended": false, "stop_seconds": 0.1,
                "target_duration": 2.0, "started": {"secs_since_epoch": 1, "nanos_since_epoch": 0},
                "duration": 6.0, "startup_buffer": null, "http2": false, "streams": []
            }}
        });
        PastRun::of_json(file.into(), json).unwrap()
    }

    fn row<'a>(c: &'a Comparison, name: &str) -> &'a Row {
        c.rows.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no row {name}"))
    }

    #[test]
    fn rows_say_which_way_is_better() {
        let c = Comparison::new(&run("a.json", 2, 0.010, 0, None), &run("b.json", 2, 0.012, 3, Some(4.0)));
        let ttfb = row(&c, "segment_ttfb_p95");
        assert_eq!(
            (ttfb.verdict(), ttfb.relative().map(|r| (r * 1000.0).round())),
            (Verdict::Worse, Some(200.0))
        );
        let errors = row(&c, "http_errors");
        assert_eq!(
            (errors.verdict(), errors.relative()),
            (Verdict::Worse, None),
            "from 0: no relative change"
        );
        assert_eq!(row(&c, "viewers_target").verdict(), Verdict::Same);
        assert_eq!(row(&c, "startup_p95").verdict(), Verdict::NotComparable);
        assert_eq!(row(&c, "live_latency_p95").verdict(), Verdict::NotComparable, "measured in one run only");
        assert!(c.rows.iter().all(|r| r.name != "requests_init"), "zero in both: not shown");
        assert!(c.warning().is_none());
        let better = Comparison::new(&run("a.json", 2, 0.012, 3, None), &run("b.json", 2, 0.010, 0, None));
        assert_eq!(row(&better, "segment_ttfb_p95").verdict(), Verdict::Improved);
        assert!(better.rows.iter().all(|r| r.name != "live_latency_p95"), "measured in neither");
    }

    #[test]
    fn text_and_html_show_the_table_and_the_warning() {
        let c = Comparison::new(&run("a.json", 2, 0.010, 0, None), &run("b<1>.json", 3, 0.012, 0, None));
        let text = c.text();
        let line = text.lines().find(|l| l.starts_with("segment_ttfb_p95")).unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words, ["segment_ttfb_p95", "10.0ms", "12.0ms", "+2.0ms", "+20.0", "%", "lower", "WORSE"]);
        assert!(
            text.contains("WARNING: the runs differ") && text.contains("clients 2 in a.json, 3 in b<1>.json")
        );
        assert!(text.lines().any(|l| l.starts_with("figure ")), "{text}");
        let html = c.html();
        assert!(html.contains("b&lt;1&gt;.json") && !html.contains("b<1>"), "escaped");
        assert!(html.contains("<tr class=\"worse\"><td><code>segment_ttfb_p95</code></td>"), "{html}");
        assert!(!html.contains("<script") && !html.contains("http-equiv=\"refresh\""));
    }
}
