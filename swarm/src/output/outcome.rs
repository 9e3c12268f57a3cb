//! What a finished run produced, as the outputs read it: the final snapshot, the per-second
//! series, the run's facts, the origin's figures and the `--assert` results. The orchestrator
//! fills it in; the summary and the reports are made from it.

use crate::measure::history::Level;
use crate::measure::origin::OriginSnapshot;
use crate::measure::snapshot::Snapshot;
use crate::output::eventlog::{self, Written};
use crate::output::shape::{BaselineNote, Shape};
use crate::output::summary::{self, RunFacts};

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The final aggregates.
    pub snapshot: Snapshot,
    /// One sample per second of the run.
    pub series: Vec<crate::measure::history::SecondSample>,
    /// Header facts for the summary.
    pub facts: RunFacts,
    /// The origin's figures at the end, if its exporters were scraped.
    pub origin: Option<OriginSnapshot>,
    /// `--assert` results, in the order given.
    pub checks: Vec<crate::output::thresholds::Checked>,
    /// The results themselves, for the JSON report: what `hls-swarm merge` reads.
    pub results: crate::measure::results::Results,
    /// The `--baseline` report the thresholds compared with, and how this run differs from it.
    pub baseline: Option<BaselineNote>,
    /// The event log (`--report FILE.ndjson`), once its writer has finished.
    pub event_log: Option<Written>,
}

impl Outcome {
    /// The outcome of a run with these results: the final snapshot and series derived from
    /// them, `asserts` checked against that snapshot.
    #[must_use]
    pub fn new(
        results: &crate::measure::results::Results,
        facts: RunFacts,
        origin: Option<OriginSnapshot>,
        asserts: &[crate::output::thresholds::Assertion],
    ) -> Outcome {
        let snapshot = results.snapshot();
        let checks = asserts.iter().map(|a| a.check(&snapshot)).collect();
        Outcome {
            snapshot,
            series: results.series(),
            facts,
            origin,
            checks,
            results: results.clone(),
            baseline: None,
            event_log: None,
        }
    }

    /// Notes what the event log came to: a notice when it dropped events or failed.
    #[must_use]
    pub fn with_event_log(mut self, written: Written) -> Outcome {
        if let Some(text) = eventlog::notice(&written) {
            let at = self.snapshot.elapsed;
            for notices in [&mut self.snapshot.notices, &mut self.results.totals.notices] {
                notices.push(at, None, Level::Warn, text.clone());
            }
        }
        self.event_log = Some(written);
        self
    }

    /// What the run was, to compare it with another.
    #[must_use]
    pub fn shape(&self) -> Shape {
        Shape::of(&self.facts, self.snapshot.target, self.snapshot.measure)
    }

    /// The end-of-run summary text.
    #[must_use]
    pub fn summary(&self) -> String {
        let mut text = summary::render(&self.snapshot, &self.facts, self.origin.as_ref());
        if let Some(note) = &self.baseline {
            text.push_str(&note.to_string());
        }
        if let Some(w) = &self.event_log {
            text.push_str(&eventlog::summary_line(w));
        }
        if !self.checks.is_empty() {
            let failed = self.checks.iter().filter(|c| !c.passed).count();
            text.push_str(&format!("Thresholds        {} of {} failed\n", failed, self.checks.len()));
            for c in &self.checks {
                text.push_str(&format!("  {c}\n"));
            }
        }
        text
    }

    /// True if every `--assert` held.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}
