//! Figures against their goals, for the benchmarks that print a table (`make bench`).
//!
//! A figure that depends on the machine's speed (a latency, a rate, how soon something
//! resumes) is not asserted in a test, where a busy machine would fail it at random; it is
//! measured here, printed beside its goal with ✓ or ✗, and never fails the run. A figure that
//! could not be measured says so (`unavailable: why`), never a made-up value.

use std::fmt::Write as _;
use std::time::Duration;

/// What a figure is held to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// Strictly below.
    Below(f64),
    /// At least.
    AtLeast(f64),
    /// Within `[low, high]`.
    Within(f64, f64),
}

impl Goal {
    /// Whether `value` meets the goal.
    #[must_use]
    pub fn met(self, value: f64) -> bool {
        match self {
            Goal::Below(x) => value < x,
            Goal::AtLeast(x) => value >= x,
            Goal::Within(lo, hi) => (lo..=hi).contains(&value),
        }
    }

    fn show(self, unit: Unit) -> String {
        match self {
            Goal::Below(x) => format!("< {}", unit.show(x)),
            Goal::AtLeast(x) => format!(">= {}", unit.show(x)),
            Goal::Within(lo, hi) => format!("{} .. {}", unit.show(lo), unit.show(hi)),
        }
    }
}

/// How a figure's number is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds, shown as µs, ms or s.
    Seconds,
    /// Per second.
    PerSecond,
    /// Per minute.
    PerMinute,
    /// A count.
    Count,
}

impl Unit {
    fn show(self, v: f64) -> String {
        match self {
            Unit::Seconds if v.abs() < 1e-3 => format!("{:.0} µs", v * 1e6),
            Unit::Seconds if v.abs() < 1.0 => format!("{:.1} ms", v * 1e3),
            Unit::Seconds => format!("{v:.2} s"),
            Unit::PerSecond => format!("{v:.2}/s"),
            Unit::PerMinute => format!("{v:.1}/min"),
            Unit::Count => format!("{v:.0}"),
        }
    }
}

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Figure {
    /// What was measured, in which conditions.
    pub name: String,
    /// The value, or why there is none.
    pub value: Result<f64, String>,
    /// Its unit.
    pub unit: Unit,
    /// Its goal.
    pub goal: Goal,
    /// Where the goal comes from (the test that used to assert it, an issue).
    pub source: String,
}

impl Figure {
    /// A figure measured in seconds.
    #[must_use]
    pub fn duration(name: &str, value: Result<Duration, String>, goal: Goal, source: &str) -> Figure {
        Figure::new(name, value.map(|d| d.as_secs_f64()), Unit::Seconds, goal, source)
    }

    /// A figure.
    #[must_use]
    pub fn new(name: &str, value: Result<f64, String>, unit: Unit, goal: Goal, source: &str) -> Figure {
        Figure { name: name.to_owned(), value, unit, goal, source: source.to_owned() }
    }

    /// Met, missed, or not measured.
    #[must_use]
    pub fn verdict(&self) -> &'static str {
        match &self.value {
            Ok(v) if self.goal.met(*v) => "✓",
            Ok(_) => "✗",
            Err(_) => "?",
        }
    }
}

/// A table of figures with a title.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Printed above the rows.
    pub title: String,
    /// The figures, in order.
    pub rows: Vec<Figure>,
}

impl Table {
    /// An empty table.
    #[must_use]
    pub fn new(title: &str) -> Table {
        Table { title: title.to_owned(), rows: Vec::new() }
    }

    /// Adds a figure and prints it at once (a long bench shows progress).
    pub fn add(&mut self, f: Figure) {
        println!("  {}", Table::line(&f, 58));
        self.rows.push(f);
    }

    fn line(f: &Figure, width: usize) -> String {
        let value = match &f.value {
            Ok(v) => f.unit.show(*v),
            Err(why) => format!("unavailable: {why}"),
        };
        format!("{:<width$} {:>14}  {:<20} {}  {}", f.name, value, f.goal.show(f.unit), f.verdict(), f.source)
    }

    /// The whole table, with a count of goals met.
    #[must_use]
    pub fn render(&self) -> String {
        let width = self.rows.iter().map(|r| r.name.chars().count()).max().unwrap_or(10).max(10);
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.title);
        let _ = writeln!(out, "{:<width$} {:>14}  {:<20}    held to it by", "figure", "measured", "goal");
        for f in &self.rows {
            let _ = writeln!(out, "{}", Table::line(f, width));
        }
        let met = self.rows.iter().filter(|r| r.verdict() == "✓").count();
        let _ = writeln!(
            out,
            "{met} of {} goals met (✗ missed, ? not measured); nothing here fails the run",
            self.rows.len()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_units_and_verdicts() {
        assert!(Goal::Below(0.1).met(0.05) && !Goal::Below(0.1).met(0.1));
        assert!(Goal::Within(24.0, 45.0).met(30.0) && !Goal::Within(24.0, 45.0).met(50.0));
        assert!(Goal::AtLeast(2.0).met(2.0));
        assert_eq!(Unit::Seconds.show(0.000_42), "420 µs");
        assert_eq!(Unit::Seconds.show(0.042), "42.0 ms");
        assert_eq!(Unit::Seconds.show(2.5), "2.50 s");
        let mut t = Table::new("t");
        t.rows.push(Figure::duration("a", Ok(Duration::from_millis(5)), Goal::Below(0.1), "x.rs"));
        t.rows.push(Figure::new("b", Err("no origin".into()), Unit::Count, Goal::AtLeast(1.0), "y.rs"));
        t.rows.push(Figure::new("c", Ok(3.0), Unit::Count, Goal::Within(4.0, 16.0), "z.rs"));
        let text = t.render();
        assert!(text.contains("5.0 ms") && text.contains("< 100.0 ms") && text.contains('✓'), "{text}");
        assert!(text.contains("unavailable: no origin") && text.contains('?'), "{text}");
        assert!(text.contains("4 .. 16") && text.contains('✗'), "{text}");
        assert!(text.contains("1 of 3 goals met"), "{text}");
    }
}
