//! What makes two runs comparable at all — the same streams, client count, engine, variant
//! choice, measurement, duration and ramp rate — and how two runs differ in it, named with both
//! values, so a comparison of unlike runs says so instead of passing for a regression.

use std::fmt;

use crate::measure::snapshot::Measure;
use crate::output::summary::RunFacts;

/// What makes two runs comparable: the same streams, load and way of measuring.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// The stream URL (secrets hidden), or each stream with its weight.
    pub streams: Vec<String>,
    /// Viewers asked for (`viewers.target`).
    pub clients: u32,
    /// `ffmpeg` or `native`.
    pub engine: &'static str,
    /// `--variant` or `--variant-mix` as given; `None` when the report predates it.
    pub variant: Option<String>,
    /// How requests were measured.
    pub measure: Measure,
    /// The asked run length in seconds; `None`: until stopped.
    pub duration: Option<f64>,
    /// The asked ramp rate, viewers per second.
    pub ramp_rate: f64,
}

impl Shape {
    /// The shape of a run with these facts, `clients` viewers asked for, measured so.
    #[must_use]
    pub fn of(facts: &RunFacts, clients: u32, measure: Measure) -> Shape {
        let streams = if facts.streams.is_empty() {
            vec![facts.url.clone()]
        } else {
            facts.streams.iter().map(|s| format!("{}={}", s.url, s.weight)).collect()
        };
        Shape {
            streams,
            clients,
            engine: if facts.start_unit == "session" { "native" } else { "ffmpeg" },
            variant: facts.variant.clone(),
            measure,
            duration: facts.duration,
            ramp_rate: facts.ramp_rate,
        }
    }

    /// Everything that differs between `self` (the base) and `other`, in a fixed order; empty
    /// when the runs have the same shape. A variant unknown on either side is not compared.
    #[must_use]
    pub fn differences(&self, other: &Shape) -> Vec<Difference> {
        let mut d = Vec::new();
        let mut differ = |what: &'static str, base: String, new: String| {
            if base != new {
                d.push(Difference { what, base, new });
            }
        };
        differ("streams", self.streams.join(" "), other.streams.join(" "));
        differ("clients", self.clients.to_string(), other.clients.to_string());
        differ("engine", self.engine.to_owned(), other.engine.to_owned());
        if let (Some(a), Some(b)) = (&self.variant, &other.variant) {
            differ("variant", a.clone(), b.clone());
        }
        differ("measure", measure_name(self.measure).to_owned(), measure_name(other.measure).to_owned());
        let duration = |d: Option<f64>| d.map_or_else(|| "until stopped".to_owned(), |s| format!("{s} s"));
        differ("duration", duration(self.duration), duration(other.duration));
        differ("ramp rate", format!("{}/s", self.ramp_rate), format!("{}/s", other.ramp_rate));
        d
    }
}

fn measure_name(m: Measure) -> &'static str {
    match m {
        Measure::Relay => "relay",
        Measure::Log => "log",
    }
}

/// One way two runs differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// What differs: `streams`, `clients`, `engine`, `variant`, `measure`, `duration` or
    /// `ramp rate`.
    pub what: &'static str,
    /// Its value in the base (the baseline).
    pub base: String,
    /// Its value in the other run.
    pub new: String,
}

/// `clients 2 in base.json, 3 in new.json; duration 6 s in base.json, 8 s in new.json`.
#[must_use]
pub fn differences_text(d: &[Difference], base: &str, new: &str) -> String {
    d.iter()
        .map(|x| format!("{} {} in {base}, {} in {new}", x.what, x.base, x.new))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a run checked against a baseline is told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineNote {
    /// The baseline report, as given.
    pub file: String,
    /// Its run.
    pub run_id: String,
    /// When that run started.
    pub started: String,
    /// How this run differs from it; empty when they have the same shape.
    pub differences: Vec<Difference>,
}

impl fmt::Display for BaselineNote {
    /// The summary's `Baseline` block.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Baseline          {} (run {}, started {})", self.file, self.run_id, self.started)?;
        if self.differences.is_empty() {
            writeln!(f, "  same shape: streams, clients, engine, variant, measure, duration, ramp rate")
        } else {
            writeln!(
                f,
                "  WARNING: this run differs from the baseline, its figures may not be comparable: {}",
                differences_text(&self.differences, "the baseline", "this run")
            )
        }
    }
}
