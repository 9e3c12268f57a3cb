//! The machine's CPU load, sampled from `/proc/stat` in the background while a test runs: an
//! independent look at how busy the machine was, to judge what the swarm says about it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Samples the machine's busy share every `every` until [`Sampler::finish`].
#[derive(Debug)]
pub struct Sampler {
    every: Duration,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<f64>>>,
}

/// What a [`Sampler`] saw: the busy share of all CPUs (0 to 1) in each interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// The sampling interval.
    pub every: Duration,
    /// One busy share per interval, in order.
    pub samples: Vec<f64>,
}

/// (busy, total) clock ticks from `/proc/stat`'s first line (iowait counts as idle).
fn ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> =
        stat.lines().next()?.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

impl Sampler {
    /// Starts sampling.
    #[must_use]
    pub fn start(every: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut last = ticks();
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(every);
                let now = ticks();
                if let (Some((b0, t0)), Some((b1, t1))) = (last, now) {
                    if t1 > t0 {
                        out.push((b1 - b0) as f64 / (t1 - t0) as f64);
                    }
                }
                last = now;
            }
            out
        });
        Sampler { every, stop, thread: Some(thread) }
    }

    /// Stops sampling; what was seen.
    #[must_use]
    pub fn finish(mut self) -> Load {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default();
        Load { every: self.every, samples }
    }
}

impl Drop for Sampler {
    /// A sampler dropped unfinished (an early return) stops too.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Load {
    /// The longest unbroken stretch of samples above `level`.
    #[must_use]
    pub fn longest_above(&self, level: f64) -> Duration {
        let (mut run, mut best) = (0u32, 0u32);
        for s in &self.samples {
            run = if *s > level { run + 1 } else { 0 };
            best = best.max(run);
        }
        self.every * best
    }

    /// The highest sample, if any.
    #[must_use]
    pub fn peak(&self) -> Option<f64> {
        self.samples.iter().copied().reduce(f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_stretch_above_a_level() {
        let load =
            Load { every: Duration::from_millis(500), samples: vec![0.9, 0.95, 0.2, 0.9, 0.9, 0.9, 0.1] };
        assert_eq!(load.longest_above(0.8), Duration::from_millis(1500));
        assert_eq!(load.longest_above(0.92), Duration::from_millis(500));
        assert_eq!(load.longest_above(0.99), Duration::ZERO);
        assert_eq!(load.peak(), Some(0.95));
    }

    #[test]
    fn the_sampler_reads_this_machine() {
        let s = Sampler::start(Duration::from_millis(50));
        std::thread::sleep(Duration::from_millis(400));
        let load = s.finish();
        assert!(!load.samples.is_empty(), "no sample taken");
        assert!(load.samples.iter().all(|x| (0.0..=1.0).contains(x)), "{:?}", load.samples);
    }
}
