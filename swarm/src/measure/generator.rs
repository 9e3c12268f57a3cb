//! The load generator's own health: when the swarm's machine is saturated, a load test
//! measures itself, not the origin. Tracked: the host's CPU, the swarm process's CPU, how far
//! starts fall behind the plan, events the fold had to drop, and how late the fold's tick ran.
//! A run is **generator-bound** when any of [`BOUND_RULES`] is crossed.
//!
//! [`CpuSampler`] reads `/proc` (the I/O); [`Health`] is the pure fold of its samples, kept
//! by the stats owner.

use std::time::{Duration, Instant};

/// Host CPU busy above this fraction …
pub const HOST_BUSY: f64 = 0.85;
/// … for this long makes the run generator-bound.
pub const HOST_BUSY_FOR: Duration = Duration::from_secs(10);
/// A first start this late against the plan makes the run generator-bound.
pub const RAMP_SLIP: Duration = Duration::from_secs(1);
/// A stats tick this late makes the run generator-bound.
pub const TICK_LAG: Duration = Duration::from_secs(1);

/// The rules, for people (`docs/metrics.md` lists the same).
pub const BOUND_RULES: &str =
    "host CPU above 85 % for 10 s, any dropped event, a start 1 s behind plan, or a stats tick 1 s late";

/// Reads the host's and this process's CPU time from `/proc`.
#[derive(Debug, Default)]
pub struct CpuSampler {
    last: Option<(Instant, u64, u64, f64)>,
}

impl CpuSampler {
    /// Since the previous call: the host's busy fraction (0–1, all CPUs) and this process's
    /// CPU use in cores (1.0 = one core busy); `None` on the first call or if `/proc` is not
    /// readable.
    pub fn sample(&mut self, now: Instant) -> Option<(f64, f64)> {
        let (busy, total) = host_ticks()?;
        let own = process_cpu_seconds()?;
        let previous = self.last.replace((now, busy, total, own))?;
        let (at, busy0, total0, own0) = previous;
        let dt = now.saturating_duration_since(at).as_secs_f64();
        let ticks = total.saturating_sub(total0);
        if ticks == 0 || dt <= 0.0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let host = busy.saturating_sub(busy0) as f64 / ticks as f64;
        Some((host.clamp(0.0, 1.0), ((own - own0) / dt).max(0.0)))
    }
}

/// (busy, total) CPU ticks of the host, from `/proc/stat`'s first line.
fn host_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> =
        stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user and nice).
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat`.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based over the line).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    #[allow(clippy::cast_precision_loss)]
    Some((utime + stime) as f64 / hz as f64)
}

/// The generator's figures, as readers get them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Generator {
    /// Host CPU busy fraction over the last sample; `None` before two samples.
    pub host_cpu: Option<f64>,
    /// Highest host CPU busy fraction of one sample.
    pub host_cpu_peak: Option<f64>,
    /// The swarm process's CPU over the last sample, in cores.
    pub process_cpu: Option<f64>,
    /// The swarm process's CPU over the run, in cores (time-weighted mean).
    pub process_cpu_mean: Option<f64>,
    /// Longest time the host stayed above [`HOST_BUSY`].
    pub host_busy_longest: Duration,
    /// Latest stats tick, against its schedule.
    pub tick_lag_max: Duration,
    /// True if any rule of [`BOUND_RULES`] was crossed.
    pub bound: bool,
    /// Which rules, for people.
    pub reasons: Vec<String>,
}

/// The fold of the generator's samples.
#[derive(Debug, Default)]
pub struct Health {
    figures: Generator,
    busy_since: Option<Instant>,
    process_weighted: f64,
    sampled: f64,
}

impl Health {
    /// A sample at `now` over `over` (see [`CpuSampler::sample`]).
    pub fn sample(&mut self, now: Instant, over: Duration, host: f64, process: f64) {
        let g = &mut self.figures;
        g.host_cpu = Some(host);
        g.host_cpu_peak = Some(g.host_cpu_peak.map_or(host, |p| p.max(host)));
        g.process_cpu = Some(process);
        self.process_weighted += process * over.as_secs_f64();
        self.sampled += over.as_secs_f64();
        if self.sampled > 0.0 {
            g.process_cpu_mean = Some(self.process_weighted / self.sampled);
        }
        if host > HOST_BUSY {
            let since = *self.busy_since.get_or_insert(now.checked_sub(over).unwrap_or(now));
            g.host_busy_longest = g.host_busy_longest.max(now.saturating_duration_since(since));
        } else {
            self.busy_since = None;
        }
    }

    /// A stats tick ran `lag` after its schedule.
    pub fn tick(&mut self, lag: Duration) {
        self.figures.tick_lag_max = self.figures.tick_lag_max.max(lag);
    }

    /// The figures, with the verdict given the run's dropped events and ramp slip.
    #[must_use]
    pub fn figures(&self, dropped_events: u64, ramp_slip: Duration) -> Generator {
        let mut g = self.figures.clone();
        g.reasons = verdict(&g, dropped_events, ramp_slip);
        g.bound = !g.reasons.is_empty();
        g
    }
}

/// The rules crossed.
#[must_use]
pub fn verdict(g: &Generator, dropped_events: u64, ramp_slip: Duration) -> Vec<String> {
    let mut reasons = Vec::new();
    if g.host_busy_longest >= HOST_BUSY_FOR {
        let s = g.host_busy_longest.as_secs();
        reasons.push(format!("host CPU above {:.0} % for {s} s", HOST_BUSY * 100.0));
    }
    if dropped_events > 0 {
        reasons.push(format!("{dropped_events} events dropped"));
    }
    if ramp_slip >= RAMP_SLIP {
        reasons.push(format!("a start {:.1} s behind plan", ramp_slip.as_secs_f64()));
    }
    if g.tick_lag_max >= TICK_LAG {
        reasons.push(format!("a stats tick {:.1} s late", g.tick_lag_max.as_secs_f64()));
    }
    reasons
}

impl Generator {
    /// Adds another process's figures (merged results): the worst of each.
    pub fn merge(&mut self, other: &Generator) {
        let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        };
        self.host_cpu = max(self.host_cpu, other.host_cpu);
        self.host_cpu_peak = max(self.host_cpu_peak, other.host_cpu_peak);
        self.process_cpu = max(self.process_cpu, other.process_cpu);
        self.process_cpu_mean = max(self.process_cpu_mean, other.process_cpu_mean);
        self.host_busy_longest = self.host_busy_longest.max(other.host_busy_longest);
        self.tick_lag_max = self.tick_lag_max.max(other.tick_lag_max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn ten_busy_seconds_in_a_row_make_the_run_generator_bound() {
        let t0 = Instant::now();
        let mut h = Health::default();
        for i in 1..=9 {
            h.sample(t0 + S(i), S(1), 0.95, 0.5);
        }
        h.sample(t0 + S(10), S(1), 0.5, 0.5); // a quiet second breaks the streak
        assert!(!h.figures(0, Duration::ZERO).bound, "{:?}", h.figures(0, Duration::ZERO));
        for i in 11..=21 {
            h.sample(t0 + S(i), S(1), 0.9, 0.25);
        }
        let g = h.figures(0, Duration::ZERO);
        assert!(g.bound && g.reasons == ["host CPU above 85 % for 11 s"], "{g:?}");
        assert_eq!((g.host_cpu_peak, g.host_busy_longest), (Some(0.95), S(11)));
        assert!(g.process_cpu_mean.is_some_and(|m| (m - (10.0 * 0.5 + 11.0 * 0.25) / 21.0).abs() < 1e-9));
    }

    #[test]
    fn drops_slip_and_tick_lag_each_make_it_bound() {
        let mut h = Health::default();
        assert!(!h.figures(0, Duration::from_millis(999)).bound);
        assert_eq!(h.figures(3, Duration::ZERO).reasons, ["3 events dropped"]);
        assert_eq!(h.figures(0, Duration::from_millis(1500)).reasons, ["a start 1.5 s behind plan"]);
        h.tick(Duration::from_millis(1200));
        assert_eq!(h.figures(0, Duration::ZERO).reasons, ["a stats tick 1.2 s late"]);
    }

    #[test]
    fn the_sampler_reads_this_machine() {
        let mut s = CpuSampler::default();
        let t0 = Instant::now();
        assert!(s.sample(t0).is_none(), "one reading is not a rate");
        // Burn some CPU so both counters move.
        let mut x = 0u64;
        while t0.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let (host, own) = s.sample(Instant::now()).expect("/proc is readable here");
        assert!((0.0..=1.0).contains(&host) && host > 0.0, "{host}");
        assert!(own > 0.1, "this thread was busy: {own}");
    }
}
