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

/// A histogram of durations. As serde, [`Hist::encode`]'s text.
#[derive(Debug, Clone, PartialEq)]
pub struct Hist {
    h: Histogram<u64>,
    sum: Duration,
}

impl serde::Serialize for Hist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.encode())
    }
}

impl<'de> serde::Deserialize<'de> for Hist {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hist, D::Error> {
        Hist::decode(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
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

    /// The histogram in hdrhistogram's V2 format (what HdrHistogram's other implementations
    /// read), base64, with the exact sum of its values in microseconds after a `:`.
    #[must_use]
    pub fn encode(&self) -> String {
        use base64::Engine as _;
        let mut bytes = Vec::new();
        // Writing into a Vec cannot fail for a histogram within its own bounds.
        let _ = hdrhistogram::serialization::Serializer::serialize(
            &mut hdrhistogram::serialization::V2Serializer::new(),
            &self.h,
            &mut bytes,
        );
        format!("{}:{}", base64::engine::general_purpose::STANDARD.encode(bytes), self.sum.as_micros())
    }

    /// Reads what [`Hist::encode`] wrote.
    ///
    /// # Errors
    /// A text that is not an encoded histogram, named in the message.
    pub fn decode(text: &str) -> Result<Hist, String> {
        use base64::Engine as _;
        let bad = |why: String| format!("not an encoded histogram ({why}): {:.40}", text);
        let (b64, sum) = text.split_once(':').ok_or_else(|| bad("no ':'".into()))?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| bad(e.to_string()))?;
        let h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| bad(format!("{e:?}")))?;
        let sum: u64 = sum.parse().map_err(|_| bad("sum".into()))?;
        Ok(Hist { h, sum: Duration::from_micros(sum) })
    }

    /// Values recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// Removes every value of `other` (which must have been added before).
    pub fn subtract(&mut self, other: &Hist) {
        let _ = self.h.subtract(&other.h);
        self.sum = self.sum.saturating_sub(other.sum);
    }

    /// The summary readers get: one pass over the recorded values (not over the whole value
    /// range), so it is cheap enough for every tick.
    #[must_use]
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub fn summary(&self) -> Latency {
        let n = self.h.len();
        if n == 0 {
            return Latency::default();
        }
        const QUANTILES: [f64; 4] = [0.50, 0.90, 0.95, 0.99];
        // The count at which each quantile is reached (as `value_at_quantile` rounds).
        let need: Vec<u64> = QUANTILES.iter().map(|q| ((q * n as f64).ceil() as u64).max(1)).collect();
        let bounds: Vec<u64> = BUCKETS.iter().map(|le| (le * 1e6) as u64).collect();
        let mut found = [0u64; 4];
        let mut buckets = vec![0u64; BUCKETS.len()];
        let mut seen = 0u64;
        for v in self.h.iter_recorded() {
            let value = v.value_iterated_to();
            let count = v.count_at_value();
            seen += count;
            for (i, q) in need.iter().enumerate() {
                if found[i] == 0 && seen >= *q {
                    found[i] = self.h.highest_equivalent(value);
                }
            }
            // A value counts in every bucket whose bound falls in or above its bin.
            let low = self.h.lowest_equivalent(value);
            for (b, bound) in buckets.iter_mut().zip(&bounds) {
                if low <= *bound {
                    *b += count;
                }
            }
        }
        let secs = |us: u64| us as f64 / 1e6;
        Latency {
            count: n,
            sum: self.sum.as_secs_f64(),
            p50: secs(found[0]),
            p90: secs(found[1]),
            p95: secs(found[2]),
            p99: secs(found[3]),
            max: secs(self.h.max()),
            buckets,
        }
    }
}

/// A [`Hist`] kept for later in little memory: hdrhistogram's compressed V2 bytes (about
/// 120 B for a second of segments, against some 26 KB for the histogram itself). A run keeps
/// one per second it downloaded segments in, so what a long run holds grows by that, not by
/// the histogram's size. As serde, the same text as [`Hist`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    bytes: Box<[u8]>,
    sum_micros: u64,
}

impl Hist {
    /// This histogram, packed.
    #[must_use]
    pub fn pack(&self) -> Packed {
        let mut bytes = Vec::new();
        // Writing into a Vec cannot fail for a histogram within its own bounds.
        let _ = hdrhistogram::serialization::Serializer::serialize(
            &mut hdrhistogram::serialization::V2DeflateSerializer::new(),
            &self.h,
            &mut bytes,
        );
        Packed {
            bytes: bytes.into_boxed_slice(),
            sum_micros: u64::try_from(self.sum.as_micros()).unwrap_or(u64::MAX),
        }
    }
}

impl Packed {
    /// The histogram again.
    #[must_use]
    pub fn unpack(&self) -> Hist {
        let h: Option<Histogram<u64>> =
            hdrhistogram::serialization::Deserializer::new().deserialize(&mut &self.bytes[..]).ok();
        // Packed bytes come from `pack` or from text `Hist::decode` accepted, so they read.
        let h = h.unwrap_or_else(|| Hist::with_precision(2).h);
        Hist { h, sum: Duration::from_micros(self.sum_micros) }
    }

    /// Bytes held.
    #[must_use]
    pub fn size(&self) -> usize {
        self.bytes.len() + std::mem::size_of::<Packed>()
    }
}

impl serde::Serialize for Packed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.bytes);
        s.serialize_str(&format!("{b64}:{}", self.sum_micros))
    }
}

impl<'de> serde::Deserialize<'de> for Packed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Packed, D::Error> {
        Ok(Hist::deserialize(d)?.pack())
    }
}

/// Quantiles and bucket counts of one distribution, in seconds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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
pub(crate) mod tests {
    use super::*;

    /// A second of segment downloads as the stats keep it: 100 times between 2 and 32 ms.
    pub(crate) fn a_second_of_segments() -> Hist {
        let mut h = Hist::with_precision(2);
        for i in 0..100u64 {
            h.record(Duration::from_micros(2000 + (i * 7919) % 30_000));
        }
        h
    }

    #[test]
    fn packing_keeps_every_value_in_a_few_hundred_bytes() {
        let h = a_second_of_segments();
        let packed = h.pack();
        assert_eq!(packed.unpack(), h);
        assert!(packed.size() < 256, "{} bytes", packed.size());
        // As text it reads back as the histogram it packs, and packs to the same bytes.
        let text = serde_json::to_string(&packed).unwrap();
        assert_eq!(serde_json::from_str::<Hist>(&text).unwrap(), h);
        assert_eq!(serde_json::from_str::<Packed>(&text).unwrap(), packed);
        // Text written by `Hist` (uncompressed V2) reads as a Packed too.
        let plain = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Packed>(&plain).unwrap().unpack(), h);
    }

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
    fn one_pass_summary_agrees_with_the_library() {
        let mut h = Hist::default();
        for i in 0..5000u64 {
            h.record(Duration::from_micros(37 + (i * i) % 900_000));
        }
        let s = h.summary();
        for (q, v) in [(0.5, s.p50), (0.9, s.p90), (0.95, s.p95), (0.99, s.p99)] {
            assert!((v - h.h.value_at_quantile(q) as f64 / 1e6).abs() < 1e-9, "q{q}");
        }
        for (le, n) in BUCKETS.iter().zip(&s.buckets) {
            assert_eq!(*n, h.h.count_between(0, (le * 1e6) as u64), "le {le}");
        }
    }

    #[test]
    fn subtract_undoes_merge() {
        let (mut a, mut b) = (Hist::default(), Hist::default());
        a.record(Duration::from_millis(1));
        b.record(Duration::from_millis(500));
        a.merge(&b);
        a.subtract(&b);
        let s = a.summary();
        assert_eq!((s.count, s.max), (1, 0.001));
        assert!((s.sum - 0.001).abs() < 1e-12, "the sum is undone too: {}", s.sum);
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
