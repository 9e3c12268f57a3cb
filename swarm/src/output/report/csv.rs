//! `--report run.csv`: the report's per-second `series` as CSV, one row per second of the run
//! under a header naming each column and its unit. Rendered from the same [`Report`] as the
//! JSON, so its values are the JSON's `series`; a value that was not measured is an empty
//! cell, never a 0 (bytes with `--measure log`, the segment download p95 of a second in which
//! no segment download ended).

use std::fmt::Write as _;
use std::time::Duration;

use super::build::Report;
use crate::measure::snapshot::Measure;

/// The header: each column's name, with its unit where it has one.
pub const HEADER: &str = "second,utc,running_viewers,streaming_viewers,stalled_viewers,bytes,requests,\
                          errors,segment_download_p95_seconds";

/// The CSV text of `report`'s series (RFC 4180: comma-separated, CRLF-free lines, a header).
#[must_use]
pub fn render(report: &Report) -> String {
    let started = humantime::parse_rfc3339(&report.run.started).ok();
    let bytes_known = report.run.measure != Measure::Log;
    let mut out = String::with_capacity(64 * (report.series.len() + 1));
    out.push_str(HEADER);
    out.push('\n');
    for s in &report.series {
        // The wall-clock start of the second (the run starts on a whole second).
        let utc = started
            .map(|t| humantime::format_rfc3339_seconds(t + Duration::from_secs(s.second)).to_string())
            .unwrap_or_default();
        let bytes = if bytes_known { s.bytes.to_string() } else { String::new() };
        let p95 = s.segment_download_p95.map(|v| v.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{},{utc},{},{},{},{bytes},{},{},{p95}",
            s.second, s.running, s.streaming, s.stalled, s.requests, s.errors
        );
    }
    out
}
