//! Latency distributions: HDR histograms, exact to three significant digits.
//!
//! One histogram per measured quantity lives in the stats owner; percentiles across the
//! whole fleet come from that one histogram (never from averaging per-viewer percentiles).
//! Readers get a [`Latency`] summary: a few quantiles and the cumulative counts at the fixed
//! Prometheus bucket bounds.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Upper bounds (seconds) of the exported Prometheus buckets.
pub const BUCKETS: [f64; 15] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Values are recorded in microseconds, up to an hour; longer ones are recorded as an hour.
const MAX_MICROS: u64 = 3_600_000_000;

/// A histogram of durations.
#[derive(Debug, Clone)]
pub struct Hist {
    h: Histogram<u64>,
    sum: Duration,
}

impl Default for Hist {
    fn default() -> Hist {
        Hist::with_precision(3)
    }
}

impl Hist {
    /// A histogram with `sigfig` significant digits (1 to 5).
    #[must_use]
    pub fn with_precision(sigfig: u8) -> Hist {
        // The bounds and precision are constants within hdrhistogram's limits.
        let h = Histogram::new_with_bounds(1, MAX_MICROS, sigfig.clamp(1, 5))
            .expect("constant bounds and a clamped precision are valid");
        Hist { h, sum: Duration::ZERO }
    }

    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(MAX_MICROS).clamp(1, MAX_MICROS);
        self.h.saturating_record(us);
        self.sum += d;
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Hist) {
        let _ = self.h.add(&other.h);
        self.sum += other.sum;
    }

    /// Values recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// The summary readers get.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn summary(&self) -> Latency {
        let n = self.h.len();
        if n == 0 {
            return Latency::default();
        }
        let q = |p: f64| self.h.value_at_quantile(p) as f64 / 1e6;
        Latency {
            count: n,
            sum: self.sum.as_secs_f64(),
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            max: self.h.max() as f64 / 1e6,
            buckets: BUCKETS
                .iter()
                .map(|le| {
                    let high = (le * 1e6) as u64;
                    // Every value at or below the bound (to the histogram's resolution).
                    self.h.count_between(0, high)
                })
                .collect(),
        }
    }
}

/// Quantiles and bucket counts of one distribution, in seconds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Latency {
    /// Values recorded.
    pub count: u64,
    /// Sum of all values.
    pub sum: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
    /// Cumulative counts at [`BUCKETS`].
    #[serde(skip)]
    pub buckets: Vec<u64>,
}

impl Latency {
    /// Arithmetic mean; 0 when empty.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_buckets() {
        let mut h = Hist::default();
        for ms in 1..=1000 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50 - 0.5).abs() < 0.001, "{}", s.p50);
        assert!((s.p99 - 0.99).abs() < 0.001, "{}", s.p99);
        assert!((s.max - 1.0).abs() < 0.001);
        assert!((s.mean() - 0.5005).abs() < 1e-6);
        // 1 ms → 1 value; 10 ms → 10; 100 ms → 100; 1 s → all; counts never decrease.
        assert_eq!(&s.buckets[..], &[1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 1000, 1000, 1000, 1000, 1000]);
    }

    #[test]
    fn merge_is_exact() {
        let (mut a, mut b) = (Hist::default(), Hist::default());
        for ms in 1..=10 {
            a.record(Duration::from_millis(ms));
            b.record(Duration::from_millis(100 * ms));
        }
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.count, 20);
        assert!((s.p50 - 0.010).abs() < 0.0001, "the median of both, not an average of medians: {}", s.p50);
    }
}
