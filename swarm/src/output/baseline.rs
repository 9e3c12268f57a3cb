//! Earlier runs read back: the `--baseline` report a run's `--assert`s may compare with, both
//! sides of `hls-swarm compare`, and the shards `hls-swarm merge` reads ([`read`]).
//!
//! A [`PastRun`] is a JSON report of this schema version, kept without its bulky parts (the
//! per-viewer rows, the series, the mergeable results). Its figures are read by JSON pointer,
//! the `--assert` fields by name from its `fields`: exactly the values a threshold of that run
//! compared. Its [`Shape`] says what it ran, to name how another run differs.

use std::path::Path;

use crate::measure::snapshot::Measure;
use crate::output::outcome::Outcome;
use crate::output::report::SCHEMA_VERSION;
use crate::output::shape::{BaselineNote, Shape};
use crate::output::summary::RunFacts;
use crate::output::thresholds::{Assertion, ParseError};

/// Reads back a JSON report of this hls-swarm's schema version.
///
/// # Errors
/// The file cannot be read, is not JSON, is not an hls-swarm report, or is of another schema
/// version; the reason says which and what is expected.
pub fn read(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("not JSON ({e}): expected an hls-swarm JSON report"))?;
    if json["tool"]["name"] != "hls-swarm" {
        return Err("not an hls-swarm JSON report (no tool.name 'hls-swarm')".into());
    }
    let version = json["schema_version"].as_u64();
    if version != Some(u64::from(SCHEMA_VERSION)) {
        let found = version.map_or_else(|| "none".to_owned(), |v| v.to_string());
        return Err(format!("report schema version {found}; this hls-swarm reads version {SCHEMA_VERSION}"));
    }
    Ok(json)
}

/// A finished run's JSON report, read back.
#[derive(Debug, Clone)]
pub struct PastRun {
    /// The file, as given.
    pub file: String,
    /// The run's name (`run.run_id`).
    pub run_id: String,
    /// When it started (`run.started`, RFC 3339).
    pub started: String,
    /// What it ran.
    pub shape: Shape,
    /// The report without `viewers.rows`, `series`, `notices` and `mergeable`.
    json: serde_json::Value,
}

/// A report that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct ReadError {
    /// The file, as given.
    pub file: String,
    /// What is wrong, and what is expected.
    pub reason: String,
}

impl PastRun {
    /// Reads `path`, a JSON report (`--report FILE.json`) of this hls-swarm's schema version.
    ///
    /// # Errors
    /// The file cannot be read, is not an hls-swarm JSON report, is of another schema version,
    /// or lacks what a comparison reads (its facts, `fields`).
    pub fn load(path: &Path) -> Result<PastRun, ReadError> {
        let file = path.display().to_string();
        let json = read(path).map_err(|reason| ReadError { file: file.clone(), reason })?;
        PastRun::of_json(file, json)
    }

    /// A report already parsed; `file` names it in messages.
    ///
    /// # Errors
    /// As [`PastRun::load`], once the JSON is read.
    pub fn of_json(file: String, mut json: serde_json::Value) -> Result<PastRun, ReadError> {
        let bad = |reason: String| ReadError { file: file.clone(), reason };
        let facts: RunFacts = serde_json::from_value(json["mergeable"]["facts"].clone())
            .map_err(|e| bad(format!("its mergeable.facts cannot be read ({e}): not a whole report")))?;
        if !json["fields"].is_object() {
            return Err(bad("it has no 'fields' object: not a whole report".into()));
        }
        let clients = json["viewers"]["target"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad("it has no viewers.target: not a whole report".into()))?;
        let measure = match json["run"]["measure"].as_str() {
            Some("log") => Measure::Log,
            _ => Measure::Relay,
        };
        for bulky in ["series", "notices", "mergeable"] {
            if let Some(o) = json.as_object_mut() {
                o.remove(bulky);
            }
        }
        if let Some(o) = json["viewers"].as_object_mut() {
            o.remove("rows");
        }
        let text = |p: &str| json.pointer(p).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        Ok(PastRun {
            run_id: text("/run/run_id"),
            started: text("/run/started"),
            shape: Shape::of(&facts, clients, measure),
            file,
            json,
        })
    }

    /// The `--assert` field `name` in this run (`fields.NAME`); `None` when it was not
    /// measured or the report does not have it.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<f64> {
        self.json["fields"].get(name).and_then(serde_json::Value::as_f64)
    }

    /// The number at JSON `pointer` (`/requests/by_kind/segment/count`); `None` when absent
    /// or `null`.
    #[must_use]
    pub fn figure(&self, pointer: &str) -> Option<f64> {
        self.json.pointer(pointer).and_then(serde_json::Value::as_f64)
    }

    /// What a run compared with this one is told: this file, its run, and how `this` differs.
    #[must_use]
    pub fn note(&self, this: &Shape) -> BaselineNote {
        BaselineNote {
            file: self.file.clone(),
            run_id: self.run_id.clone(),
            started: self.started.clone(),
            differences: self.shape.differences(this),
        }
    }
}

/// `outcome`, noting `baseline` (the report its thresholds were bound to) and how the run
/// differs from the baseline's.
#[must_use]
pub fn noted(mut outcome: Outcome, baseline: Option<&PastRun>) -> Outcome {
    outcome.baseline = baseline.map(|b| b.note(&outcome.shape()));
    outcome
}

/// Binds every assertion that compares with `baseline` to that report's figure.
///
/// # Errors
/// An assertion uses `baseline` and no baseline was given, or the baseline has no value for
/// its field (the threshold could not be evaluated: refused up front, never passed or failed
/// silently); the message names the assertion.
pub fn bind(asserts: Vec<Assertion>, baseline: Option<&PastRun>) -> Result<Vec<Assertion>, ParseError> {
    asserts
        .into_iter()
        .map(|a| match baseline {
            _ if !a.uses_baseline() => Ok(a),
            None => Err(a.no_baseline()),
            Some(b) => {
                let value = b.field(a.field().name);
                a.against(&b.file, value)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::shape::differences_text;
    use crate::output::thresholds::Assertion;

    fn report(fields: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "schema_version": 1,
            "tool": {"name": "hls-swarm", "version": "0"},
            "run": {"run_id": "r1", "started": "2026-01-01T00:00:00.000Z", "measure": "relay"},
            "viewers": {"target": 2, "rows": [{"viewer": 0}]},
            "fields": fields,
            "series": [],
            "mergeable": {"facts": {
                "url": "http://h/a.m3u8", "ffmpeg": "FFmpeg 5.1", "measured_by": "the relay",
                "start_unit": "process", "ramp_rate": 5.0, "run_seconds": 6.0, "interrupted": false,
                "quit_from_dashboard": false, "all_ended": false, "stop_seconds": 0.1,
                "target_duration": 2.0, "started": {"secs_since_epoch": 1, "nanos_since_epoch": 0},
                "duration": 6.0, "startup_buffer": null, "http2": false, "streams": [],
                "variant": "all"
            }}
        })
    }

    fn past(fields: serde_json::Value) -> PastRun {
        PastRun::of_json("base.json".into(), report(fields)).unwrap()
    }

    #[test]
    fn reads_fields_and_figures_without_the_bulk() {
        let p = past(serde_json::json!({"segment_ttfb_p95": 0.004, "live_latency_p95": null}));
        assert_eq!(p.field("segment_ttfb_p95"), Some(0.004));
        assert_eq!(p.field("live_latency_p95"), None);
        assert_eq!(p.field("no_such_field"), None);
        assert_eq!(p.figure("/viewers/target"), Some(2.0));
        assert_eq!(p.figure("/viewers/rows"), None, "the rows are dropped");
        assert_eq!((p.run_id.as_str(), p.shape.clients, p.shape.engine), ("r1", 2, "ffmpeg"));
        let mut no_fields = report(serde_json::json!({}));
        no_fields["fields"] = serde_json::Value::Null;
        let e = PastRun::of_json("x.json".into(), no_fields).unwrap_err();
        assert_eq!(e.to_string(), "x.json: it has no 'fields' object: not a whole report");
    }

    #[test]
    fn differences_name_what_differs_with_both_values() {
        let base = past(serde_json::json!({})).shape;
        assert!(base.differences(&base).is_empty());
        let other = Shape { clients: 3, engine: "native", duration: None, ..base.clone() };
        let d = base.differences(&other);
        assert_eq!(
            differences_text(&d, "a.json", "b.json"),
            "clients 2 in a.json, 3 in b.json; engine ffmpeg in a.json, native in b.json; \
             duration 6 s in a.json, until stopped in b.json"
        );
        let unknown = Shape { variant: None, ..base.clone() };
        assert!(base.differences(&unknown).is_empty(), "an unrecorded variant is not a difference");
        let mix = Shape { variant: Some("highest=1,abr=1".into()), ..base.clone() };
        assert_eq!(base.differences(&mix)[0].what, "variant");
        let note = past(serde_json::json!({})).note(&other).to_string();
        assert!(note.starts_with("Baseline          base.json (run r1, started 2026-01-01T00:00:00.000Z)\n"));
        assert!(
            note.contains("WARNING") && note.contains("clients 2 in the baseline, 3 in this run"),
            "{note}"
        );
    }

    #[test]
    fn binding_needs_a_baseline_with_the_figure() {
        let parse = |t: &str| vec![Assertion::parse(t).unwrap()];
        let e = bind(parse("segment_ttfb_p95 <= baseline * 1.2"), None).unwrap_err().to_string();
        assert!(e.starts_with("--assert 'segment_ttfb_p95 <= baseline * 1.2': 'baseline' stands for"), "{e}");
        assert!(e.contains("no --baseline"), "{e}");
        assert!(bind(parse("segment_ttfb_p95 < 1s"), None).is_ok(), "no baseline needed");
        let p = past(serde_json::json!({"segment_ttfb_p95": 0.004, "live_latency_p95": null}));
        assert_eq!(bind(parse("segment_ttfb_p95 <= baseline * 1.2"), Some(&p)).unwrap().len(), 1);
        let e = bind(parse("live_latency_p95 <= baseline + 1s"), Some(&p)).unwrap_err().to_string();
        assert!(e.contains("the baseline base.json has no value for live_latency_p95"), "{e}");
        assert!(e.contains("cannot be evaluated"), "{e}");
    }
}
