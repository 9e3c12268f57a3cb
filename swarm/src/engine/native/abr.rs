//! Adaptive bitrate (`--variant abr`): which variant of the ladder a native viewer plays,
//! chosen as hls.js chooses it.
//!
//! Each downloaded segment is a throughput sample (its bytes over its download time, from
//! request to last byte), weighted by that time, fed to two exponentially weighted moving
//! averages: a fast one (half-life [`FAST_HALF_LIFE`] s of download) and a slow one
//! ([`SLOW_HALF_LIFE`] s). The estimate is the lower of the two, so a drop is believed at
//! once and a rise only once it lasts. After each segment the player takes the highest
//! variant whose `BANDWIDTH` fits the estimate times a safety factor: [`DOWN_FACTOR`] for the
//! current variant and those below it, the stricter [`UP_FACTOR`] for those above. There is
//! no switch up before [`MIN_TOTAL_BYTES`] have been sampled, and samples smaller than
//! [`MIN_SAMPLE_BYTES`] are ignored (round trips dominate them), as in Shaka Player. A
//! segment that could not be fetched at all drops one variant.
//!
//! The constants are hls.js's defaults (`abrEwmaFastLive`, `abrEwmaSlowLive`,
//! `abrBandWidthFactor`, `abrBandWidthUpFactor`, `abrEwmaDefaultEstimate`).

use std::time::Duration;

use url::Url;

/// Half-life of the fast average, in seconds of download time.
pub const FAST_HALF_LIFE: f64 = 3.0;
/// Half-life of the slow average.
pub const SLOW_HALF_LIFE: f64 = 9.0;
/// The estimate before any sample, bits per second.
pub const DEFAULT_ESTIMATE: f64 = 500_000.0;
/// A variant at or below the current one fits if its `BANDWIDTH` is at most this share of
/// the estimate.
pub const DOWN_FACTOR: f64 = 0.95;
/// A variant above the current one fits if its `BANDWIDTH` is at most this share.
pub const UP_FACTOR: f64 = 0.7;
/// Samples smaller than this are not used.
pub const MIN_SAMPLE_BYTES: u64 = 16_000;
/// No switch up before this much has been sampled.
pub const MIN_TOTAL_BYTES: u64 = 128_000;
/// A shorter download counts as this long (a sample from a cache is not infinitely fast).
pub const MIN_SAMPLE_TIME: Duration = Duration::from_millis(50);

/// An exponentially weighted moving average over time-weighted samples, corrected for its
/// zero start (so the first samples are not pulled towards 0).
#[derive(Debug, Clone)]
struct Ewma {
    alpha: f64,
    estimate: f64,
    weight: f64,
}

impl Ewma {
    fn new(half_life: f64) -> Ewma {
        Ewma { alpha: 0.5f64.powf(1.0 / half_life), estimate: 0.0, weight: 0.0 }
    }

    fn sample(&mut self, weight: f64, value: f64) {
        let a = self.alpha.powf(weight);
        self.estimate = value * (1.0 - a) + a * self.estimate;
        self.weight += weight;
    }

    fn get(&self) -> f64 {
        let zero = 1.0 - self.alpha.powf(self.weight);
        if zero > 0.0 {
            self.estimate / zero
        } else {
            self.estimate
        }
    }
}

/// One viewer's throughput estimate.
#[derive(Debug, Clone)]
pub struct Estimator {
    fast: Ewma,
    slow: Ewma,
    bytes: u64,
}

impl Default for Estimator {
    fn default() -> Estimator {
        Estimator { fast: Ewma::new(FAST_HALF_LIFE), slow: Ewma::new(SLOW_HALF_LIFE), bytes: 0 }
    }
}

impl Estimator {
    /// A download of `bytes` that took `took`.
    #[allow(clippy::cast_precision_loss)]
    pub fn sample(&mut self, bytes: u64, took: Duration) {
        if bytes < MIN_SAMPLE_BYTES {
            return;
        }
        let secs = took.max(MIN_SAMPLE_TIME).as_secs_f64();
        let bps = bytes as f64 * 8.0 / secs;
        self.fast.sample(secs, bps);
        self.slow.sample(secs, bps);
        self.bytes += bytes;
    }

    /// Bits per second: the lower of the two averages, or [`DEFAULT_ESTIMATE`] before any
    /// sample.
    #[must_use]
    pub fn estimate(&self) -> f64 {
        if self.bytes == 0 {
            DEFAULT_ESTIMATE
        } else {
            self.fast.get().min(self.slow.get())
        }
    }

    /// Enough has been sampled to switch up.
    #[must_use]
    pub fn confident(&self) -> bool {
        self.bytes >= MIN_TOTAL_BYTES
    }
}

/// The variant to play next: an index into `ladder` (`BANDWIDTH`s, ascending), given the one
/// playing (`at`) and the estimate.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn choose(ladder: &[u64], at: usize, estimator: &Estimator) -> usize {
    let estimate = estimator.estimate();
    let fits = |i: usize| {
        let factor = if i > at { UP_FACTOR } else { DOWN_FACTOR };
        ladder[i] as f64 <= estimate * factor
    };
    let best = (0..ladder.len()).rev().find(|i| fits(*i)).unwrap_or(0);
    if best > at && !estimator.confident() {
        at
    } else {
        best
    }
}

/// `--variant abr`: one track's ladder, the variant it plays and its throughput estimate.
#[derive(Debug, Clone)]
pub struct Ladder {
    /// The variants' playlists, by ascending `BANDWIDTH`.
    urls: Vec<Url>,
    /// Their `BANDWIDTH`s.
    bandwidths: Vec<u64>,
    /// The one playing.
    at: usize,
    /// The estimate.
    pub estimator: Estimator,
}

/// A switch [`Ladder::choose`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// `BANDWIDTH` of the variant left.
    pub from: u64,
    /// `BANDWIDTH` of the variant now playing.
    pub to: u64,
    /// Its playlist.
    pub url: Url,
}

impl Ladder {
    /// A ladder of `(BANDWIDTH, playlist)`s, ascending, playing the `at`th.
    #[must_use]
    pub fn new(ladder: Vec<(u64, Url)>, at: usize) -> Ladder {
        let (bandwidths, urls): (Vec<u64>, Vec<Url>) = ladder.into_iter().unzip();
        let at = at.min(urls.len().saturating_sub(1));
        Ladder { urls, bandwidths, at, estimator: Estimator::default() }
    }

    /// Chooses the variant to play next from the estimate, or one variant down when
    /// `failed` (nothing arrived since the last choice); the switch, if it is one.
    pub fn choose(&mut self, failed: bool) -> Option<Switch> {
        if self.urls.is_empty() {
            return None;
        }
        let next = if failed {
            self.at.saturating_sub(1)
        } else {
            choose(&self.bandwidths, self.at, &self.estimator)
        };
        if next == self.at {
            return None;
        }
        let from = self.bandwidths[self.at];
        self.at = next;
        Some(Switch { from, to: self.bandwidths[next], url: self.urls[next].clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LADDER: [u64; 4] = [200_000, 600_000, 1_500_000, 4_000_000];

    /// Segments of `bytes` each arriving at `bps`.
    fn fed(e: &mut Estimator, n: usize, bytes: u64, bps: f64) {
        #[allow(clippy::cast_precision_loss)]
        let took = Duration::from_secs_f64(bytes as f64 * 8.0 / bps);
        for _ in 0..n {
            e.sample(bytes, took);
        }
    }

    #[test]
    fn a_steady_rate_is_estimated_as_it_is() {
        let mut e = Estimator::default();
        assert!((e.estimate() - DEFAULT_ESTIMATE).abs() < 1.0);
        fed(&mut e, 3, 250_000, 2_000_000.0);
        assert!((e.estimate() - 2_000_000.0).abs() < 1.0, "{}", e.estimate());
    }

    #[test]
    fn a_drop_is_believed_at_once_and_a_rise_only_when_it_lasts() {
        let mut e = Estimator::default();
        fed(&mut e, 10, 250_000, 4_000_000.0);
        fed(&mut e, 1, 250_000, 1_000_000.0);
        // The fast average has moved much further: it is the estimate.
        assert!(e.estimate() < 3_000_000.0, "{}", e.estimate());
        let mut e = Estimator::default();
        fed(&mut e, 10, 250_000, 1_000_000.0);
        fed(&mut e, 1, 250_000, 8_000_000.0);
        // One fast sample moves the slow average only a little: it is the estimate.
        assert!(e.estimate() < 1_300_000.0, "{}", e.estimate());
    }

    #[test]
    fn a_download_faster_than_the_floor_counts_as_the_floor() {
        let mut e = Estimator::default();
        // 20 KB in 1 ms would be 160 Mbit/s; over 50 ms it is 3.2 Mbit/s.
        e.sample(20_000, Duration::from_millis(1));
        assert!((e.estimate() - 3_200_000.0).abs() < 1.0, "{}", e.estimate());
    }

    #[test]
    fn small_samples_are_ignored() {
        let mut e = Estimator::default();
        fed(&mut e, 50, MIN_SAMPLE_BYTES - 1, 100_000_000.0);
        assert!((e.estimate() - DEFAULT_ESTIMATE).abs() < 1.0);
        assert!(!e.confident());
    }

    #[test]
    fn the_choice_fits_the_estimate_with_the_safety_factors() {
        let mut e = Estimator::default();
        fed(&mut e, 4, 100_000, 2_000_000.0);
        assert!(e.confident());
        // 1.5 M fits 2 M × 0.95 from above or at it, but not × 0.7 from below.
        assert_eq!(choose(&LADDER, 3, &e), 2);
        assert_eq!(choose(&LADDER, 2, &e), 2);
        assert_eq!(choose(&LADDER, 0, &e), 1);
        // Nothing fits: the lowest.
        let mut slow = Estimator::default();
        fed(&mut slow, 4, 100_000, 100_000.0);
        assert_eq!(choose(&LADDER, 3, &slow), 0);
    }

    #[test]
    fn no_switch_up_before_enough_was_sampled() {
        let mut e = Estimator::default();
        fed(&mut e, 1, 100_000, 10_000_000.0);
        assert!(!e.confident());
        assert_eq!(choose(&LADDER, 0, &e), 0, "up needs {MIN_TOTAL_BYTES} bytes sampled");
        fed(&mut e, 1, 100_000, 10_000_000.0);
        assert_eq!(choose(&LADDER, 0, &e), 3);
        // Down is never held back.
        let mut d = Estimator::default();
        fed(&mut d, 1, 20_000, 300_000.0);
        assert_eq!(choose(&LADDER, 3, &d), 0);
    }
}
