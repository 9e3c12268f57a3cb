//! When each viewer starts.
//!
//! Viewer `i` starts at `i / rate + jitter(i)` after the ramp begins, measured from one fixed
//! start instant. The reference tool sleeps `interval + jitter` between starts instead, so
//! every jitter and every start's own cost accumulate and it lands about 20 % below the asked
//! rate; offsets from a fixed origin do not drift. Jitter is drawn from a seeded generator
//! and capped at half the interval, so starts never reorder.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The start schedule of a run.
#[derive(Debug, Clone)]
pub struct RampPlan {
    offsets: Vec<Duration>,
    rate: f64,
}

impl RampPlan {
    /// Plans `clients` starts at `rate` per second with up to `jitter` extra delay each.
    #[must_use]
    pub fn new(clients: u32, rate: f64, jitter: Duration, seed: u64) -> RampPlan {
        RampPlan::every(clients, rate, jitter, seed, (0, 1))
    }

    /// The starts of shard `index` of `count` (`--shard`) in a fleet ramping at `rate`: its
    /// viewer `k` takes the fleet's turn `k × count + index`, so the shards' starts interleave
    /// and the fleet starts one viewer every `1 / rate` seconds.
    #[must_use]
    pub fn every(
        clients: u32,
        rate: f64,
        jitter: Duration,
        seed: u64,
        (index, count): (u32, u32),
    ) -> RampPlan {
        let interval = 1.0 / rate;
        let cap = jitter.as_secs_f64().min(interval / 2.0);
        let mut rng = StdRng::seed_from_u64(seed);
        let offsets = (0..clients)
            .map(|i| {
                let turn = f64::from(i) * f64::from(count) + f64::from(index);
                let j = if cap > 0.0 && turn > 0.0 { rng.gen_range(0.0..cap) } else { 0.0 };
                Duration::from_secs_f64(turn * interval + j)
            })
            .collect();
        RampPlan { offsets, rate: rate / f64::from(count) }
    }

    /// When viewer `i` starts, from the beginning of the ramp.
    #[must_use]
    pub fn offset(&self, i: usize) -> Option<Duration> {
        self.offsets.get(i).copied()
    }

    /// Every planned start, in order.
    #[must_use]
    pub fn offsets(&self) -> Vec<Duration> {
        self.offsets.clone()
    }

    /// The viewers, in start order.
    pub fn ids(&self) -> impl Iterator<Item = crate::measure::events::ViewerId> {
        (0..self.offsets.len()).map_while(|i| u32::try_from(i).ok())
    }

    /// Number of planned starts.
    #[must_use]
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// True when nothing is planned.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The asked rate (of this shard: its share of the fleet's).
    #[must_use]
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// When the last viewer starts.
    #[must_use]
    pub fn duration(&self) -> Duration {
        self.offsets.last().copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::ramp::achieved_rate;

    #[test]
    fn planned_rate_matches_the_asked_rate() {
        for (n, rate, jitter_ms) in [(200, 50.0, 200), (20, 5.0, 200), (1000, 7.0, 0), (10, 0.5, 500)] {
            let plan = RampPlan::new(n, rate, Duration::from_millis(jitter_ms), 42);
            let offsets: Vec<Duration> = (0..plan.len()).filter_map(|i| plan.offset(i)).collect();
            let got = achieved_rate(&offsets).unwrap();
            // Jitter only moves the last start by less than half an interval.
            let tolerance = 0.5 / f64::from(n - 1);
            assert!((got / rate - 1.0).abs() <= tolerance + 1e-9, "n={n} rate={rate}: got {got}");
        }
    }

    #[test]
    fn starts_never_reorder_and_first_is_immediate() {
        let plan = RampPlan::new(500, 10.0, Duration::from_secs(5), 1);
        assert_eq!(plan.offset(0), Some(Duration::ZERO));
        for i in 1..plan.len() {
            assert!(plan.offset(i) > plan.offset(i - 1));
        }
    }

    #[test]
    fn shards_take_turns_so_the_fleet_ramps_at_the_asked_rate() {
        // 7 viewers over 3 shards (3 + 2 + 2) at 7/s: together, one start every 1/7 s.
        let mut all: Vec<Duration> = [(0, 3), (1, 2), (2, 2)]
            .iter()
            .flat_map(|(index, n)| RampPlan::every(*n, 7.0, Duration::ZERO, 1, (*index, 3)).offsets())
            .collect();
        all.sort();
        let want: Vec<Duration> = (0..7).map(|i| Duration::from_secs_f64(f64::from(i) / 7.0)).collect();
        assert_eq!(all, want);
        assert!((RampPlan::every(3, 7.0, Duration::ZERO, 1, (0, 3)).rate() - 7.0 / 3.0).abs() < 1e-12);
        // Jitter stays under half the fleet's interval: the shards' starts never reorder.
        let a = RampPlan::every(100, 10.0, Duration::from_secs(1), 5, (0, 2)).offsets();
        let b = RampPlan::every(100, 10.0, Duration::from_secs(1), 6, (1, 2)).offsets();
        assert!(a.iter().zip(&b).all(|(x, y)| x < y), "shard 0's k-th start comes before shard 1's");
    }

    #[test]
    fn same_seed_same_plan() {
        let a = RampPlan::new(50, 5.0, Duration::from_millis(200), 9);
        let b = RampPlan::new(50, 5.0, Duration::from_millis(200), 9);
        assert_eq!(a.offsets, b.offsets);
        let other = RampPlan::new(50, 5.0, Duration::from_millis(200), 10);
        assert_ne!(a.offsets, other.offsets, "the seed decides the jitter");
    }
}
