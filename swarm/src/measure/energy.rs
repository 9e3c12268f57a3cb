//! The origin's energy over a run, from its node exporter: measured from the RAPL counters
//! (`node_rapl_<zone>_joules_total`) where the host has them, else estimated from its busy CPU
//! time only when the user gives a watt figure per core (`--origin-watts-per-core`), else
//! unavailable with the reason. Never a plausible default.
//!
//! **Measured (RAPL).** The energy of the run is the sum, over the top-level RAPL domains, of
//! each counter's increase between consecutive node scrapes, from the first scrape to the last.
//! The domains counted are `package` (one per CPU socket) and `dram`: they are disjoint. The
//! kernel lists `dram` under its package's zone (`intel-rapl:0:2`), but the package's energy
//! does not include it. Not counted: `core` and `uncore`, which are parts of the package;
//! `psys`, the whole platform, which contains package and DRAM; and the `intel-rapl-mmio`
//! zones, which count the same package as `intel-rapl` a second time.
//!
//! A counter that went down between two scrapes (it wraps at `max_energy_range_uj`, about
//! 262 kJ on many CPUs, or the host restarted) is handled as Prometheus's `increase()`
//! handles a reset: the new value is taken as the increase. The exporter does not export
//! the range, so a wrap loses `range − last value`, less than that one interval's energy
//! (a package at 100 W wraps every 44 minutes or so). Such drops are counted (`resets`).
//!
//! Mean watts are the joules over the scraped time (the first to the last scrape); peak watts
//! are the highest mean of one scrape interval.
//!
//! **Estimated.** `busy CPU-seconds × W`: busy is the increase of `node_cpu_seconds_total` in
//! every mode but `idle`, `iowait` and `steal` (time another guest ran), summed over CPUs
//! and intervals. It is labelled as an estimate wherever it is shown.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use kit::exposition::Sample;

/// The largest `--origin-watts-per-core` accepted.
pub const MAX_WATTS_PER_CORE: f64 = 1000.0;

/// The RAPL zones whose energy is added: disjoint, and together what the CPUs and memory draw.
const DOMAINS: [&str; 2] = ["package", "dram"];

/// The origin's energy as far as it is known.
#[derive(Debug, Clone, PartialEq)]
pub enum Energy {
    /// No figure, and why.
    Unavailable(Unavailable),
    /// Joules over the scraped time, measured or estimated.
    Known(EnergyRun),
}

impl Default for Energy {
    fn default() -> Energy {
        Energy::Unavailable(Unavailable::NotScraped)
    }
}

/// Why there is no energy figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// No node exporter scrape worked (or none was asked for).
    NotScraped,
    /// Fewer than two node exporter scrapes with the counters.
    OneScrape,
    /// The exporter has no RAPL counters, and no `--origin-watts-per-core` was given.
    NoRapl,
    /// An estimate was asked for, but the exporter has no `node_cpu_seconds_total` either.
    NoCpu,
}

impl Unavailable {
    /// The reason, for people.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Unavailable::NotScraped => {
                "no scrape of the origin's node exporter worked (--origin-metrics or --origin-metrics-host)"
            }
            Unavailable::OneScrape => "fewer than two scrapes of the origin's node exporter",
            Unavailable::NoRapl => {
                "the origin's node exporter reports no RAPL counters (VMs and many cloud hosts have none)"
            }
            Unavailable::NoCpu => {
                "the origin's node exporter reports neither RAPL counters nor node_cpu_seconds_total"
            }
        }
    }
}

/// Where a known energy figure comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Measured by the RAPL counters of these domains (`package-0`, `dram-0`, …).
    Rapl {
        /// The domains added, as `zone-index`.
        domains: Vec<String>,
        /// Counter drops handled as resets (wraps, restarts).
        resets: u64,
    },
    /// Estimated: busy CPU-seconds × `watts_per_core`.
    Estimate {
        /// `--origin-watts-per-core`.
        watts_per_core: f64,
        /// The busy CPU-seconds it multiplies.
        busy_cpu_seconds: f64,
    },
}

/// Energy over the scraped part of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyRun {
    /// Measured or estimated.
    pub source: Source,
    /// Joules over `seconds`.
    pub joules: f64,
    /// Seconds from the first to the last scrape that counted.
    pub seconds: f64,
    /// Highest mean power of one scrape interval, watts.
    pub watts_peak: f64,
    /// Mean power between the last two scrapes, watts.
    pub watts_last: f64,
}

impl EnergyRun {
    /// Joules over the scraped time.
    #[must_use]
    pub fn watts_mean(&self) -> f64 {
        if self.seconds > 0.0 {
            self.joules / self.seconds
        } else {
            0.0
        }
    }

    /// Joules per hour watched by one viewer; `None` when nothing was watched.
    #[must_use]
    pub fn per_viewer_hour(&self, watch_seconds: f64) -> Option<f64> {
        (watch_seconds > 0.0).then(|| self.joules / (watch_seconds / 3600.0))
    }

    /// Joules per gigabyte (10⁹ bytes) delivered to the viewers; `None` when the bytes were not
    /// measured or none were delivered.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn per_gigabyte(&self, delivered_bytes: Option<u64>) -> Option<f64> {
        delivered_bytes.filter(|b| *b > 0).map(|b| self.joules / (b as f64 / 1e9))
    }

    /// How the figure was obtained, in words: `measured: RAPL package-0 + dram-0`, or
    /// `estimated: origin busy CPU-seconds × 10 W per core`.
    #[must_use]
    pub fn label(&self) -> String {
        match &self.source {
            Source::Rapl { domains, .. } => format!("measured: RAPL {}", domains.join(" + ")),
            Source::Estimate { watts_per_core, .. } => {
                format!("estimated: origin busy CPU-seconds × {watts_per_core} W per core")
            }
        }
    }

    /// `rapl` or `estimate`, for labels.
    #[must_use]
    pub fn source_name(&self) -> &'static str {
        match self.source {
            Source::Rapl { .. } => "rapl",
            Source::Estimate { .. } => "estimate",
        }
    }
}

/// Joules with an SI prefix: `840.0 J`, `12.35 kJ`, `1.20 MJ`.
#[must_use]
pub fn joules(j: f64) -> String {
    if j.abs() >= 1e6 {
        format!("{:.2} MJ", j / 1e6)
    } else if j.abs() >= 1e3 {
        format!("{:.2} kJ", j / 1e3)
    } else {
        format!("{j:.1} J")
    }
}

/// An amount that grows per interval (joules, busy CPU-seconds), with its time.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    amount: f64,
    seconds: f64,
    peak_rate: f64,
    last_rate: f64,
    intervals: u64,
}

impl Totals {
    fn add(&mut self, amount: f64, seconds: f64) {
        if seconds <= 0.0 || !amount.is_finite() {
            return;
        }
        let rate = amount / seconds;
        self.amount += amount;
        self.seconds += seconds;
        self.peak_rate = if self.intervals == 0 { rate } else { self.peak_rate.max(rate) };
        self.last_rate = rate;
        self.intervals += 1;
    }
}

/// One RAPL series: `zone-index` and its full key (name and labels).
type Key = (String, Vec<(String, String)>);

/// The fold from node exporter scrapes to [`Energy`]: pure, bounded by one previous reading.
#[derive(Debug, Default)]
pub struct EnergyFold {
    watts_per_core: Option<f64>,
    rapl: Option<(Instant, BTreeMap<Key, f64>)>,
    rapl_seen: bool,
    cpu_seen: bool,
    joules: Totals,
    domains: BTreeSet<String>,
    resets: u64,
    busy: Totals,
}

impl EnergyFold {
    /// A fold that estimates from busy CPU time with `watts_per_core` when there is no RAPL.
    #[must_use]
    pub fn new(watts_per_core: Option<f64>) -> EnergyFold {
        EnergyFold { watts_per_core, ..EnergyFold::default() }
    }

    /// Folds a good node exporter scrape made at `at`: its RAPL counters. A scrape without
    /// them keeps the previous reading, so the next increase spans the gap.
    pub fn observe(&mut self, at: Instant, samples: &[Sample]) {
        self.cpu_seen |= samples.iter().any(|s| s.name == "node_cpu_seconds_total");
        let now: BTreeMap<Key, f64> =
            samples.iter().filter_map(|s| rapl_domain(s).map(|d| ((d, key(s)), s.value))).collect();
        if now.is_empty() {
            return;
        }
        self.rapl_seen = true;
        if let Some((before, old)) = &self.rapl {
            let mut sum = 0.0;
            let mut common = false;
            for (k, v) in &now {
                let Some(o) = old.get(k) else { continue };
                common = true;
                // Prometheus's increase(): a drop is a reset, the new value the increase.
                sum += if v < o {
                    self.resets += 1;
                    *v
                } else {
                    v - o
                };
                self.domains.insert(k.0.clone());
            }
            if common {
                self.joules.add(sum, at.saturating_duration_since(*before).as_secs_f64());
            }
        }
        self.rapl = Some((at, now));
    }

    /// Adds one interval's busy CPU-seconds (see [`busy_mode`]) over `seconds`.
    pub fn busy(&mut self, cpu_seconds: f64, seconds: f64) {
        self.busy.add(cpu_seconds.max(0.0), seconds);
    }

    /// The energy so far; `node_scraped`: at least one node exporter scrape worked.
    #[must_use]
    pub fn energy(&self, node_scraped: bool) -> Energy {
        let known = |t: &Totals, scale: f64, source: Source| {
            Energy::Known(EnergyRun {
                source,
                joules: t.amount * scale,
                seconds: t.seconds,
                watts_peak: t.peak_rate * scale,
                watts_last: t.last_rate * scale,
            })
        };
        if self.joules.intervals > 0 {
            let domains = self.domains.iter().cloned().collect();
            return known(&self.joules, 1.0, Source::Rapl { domains, resets: self.resets });
        }
        if self.rapl_seen {
            return Energy::Unavailable(Unavailable::OneScrape);
        }
        if !node_scraped {
            return Energy::Unavailable(Unavailable::NotScraped);
        }
        match self.watts_per_core {
            None => Energy::Unavailable(Unavailable::NoRapl),
            Some(_) if !self.cpu_seen => Energy::Unavailable(Unavailable::NoCpu),
            Some(_) if self.busy.intervals == 0 => Energy::Unavailable(Unavailable::OneScrape),
            Some(w) => known(
                &self.busy,
                w,
                Source::Estimate { watts_per_core: w, busy_cpu_seconds: self.busy.amount },
            ),
        }
    }
}

/// True for the `node_cpu_seconds_total` modes that count as busy: all but `idle`, `iowait`
/// (waiting, could run other work) and `steal` (the hypervisor ran another guest).
#[must_use]
pub fn busy_mode(mode: &str) -> bool {
    !matches!(mode, "idle" | "iowait" | "steal")
}

/// `zone-index` if `s` is a RAPL counter of a domain that is added (see the module docs):
/// `node_rapl_<zone>_joules_total`, or `node_rapl_joules_total{rapl_zone=…}` with the
/// exporter's `--collector.rapl.enable-zone-label`.
fn rapl_domain(s: &Sample) -> Option<String> {
    if !s.value.is_finite() {
        return None;
    }
    let zone = if s.name == "node_rapl_joules_total" {
        s.label("rapl_zone")?
    } else {
        s.name.strip_prefix("node_rapl_")?.strip_suffix("_joules_total")?
    };
    if !DOMAINS.contains(&zone) || s.label("path").is_some_and(|p| p.contains("intel-rapl-mmio")) {
        return None;
    }
    Some(format!("{zone}-{}", s.label("index").unwrap_or("0")))
}

/// A series' identity: its name and sorted labels.
fn key(s: &Sample) -> Vec<(String, String)> {
    let mut labels = s.labels.clone();
    labels.sort();
    labels.push((String::new(), s.name.clone()));
    labels
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;
    use kit::exposition::parse;

    /// `prometheus-node-exporter` 1.5.0 (Debian 12) `--collector.rapl` reading a made-up
    /// sysfs tree with every kind of zone: two packages with core, uncore and dram subzones,
    /// psys, and an `intel-rapl-mmio` duplicate of package 0 (paths shortened to /sys).
    const CAPTURE: &str = include_str!("../../testdata/node-exporter-1.5-rapl.txt");

    /// The same exporter with `--collector.rapl.enable-zone-label`.
    const ZONE_LABEL: &str = r#"# TYPE node_rapl_joules_total counter
node_rapl_joules_total{index="0",path="/sys/class/powercap/intel-rapl:0",rapl_zone="package"} 1
node_rapl_joules_total{index="0",path="/sys/class/powercap/intel-rapl:0:0",rapl_zone="core"} 0.5
node_rapl_joules_total{index="0",path="/sys/class/powercap/intel-rapl:1",rapl_zone="dram"} 2
"#;

    /// `CAPTURE` with every counter raised by `by` joules.
    fn advanced(text: &str, by: f64) -> String {
        parse(text)
            .iter()
            .map(|s| {
                let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                format!("{}{{{}}} {}\n", s.name, labels.join(","), s.value + by)
            })
            .collect()
    }

    fn known(e: Energy) -> EnergyRun {
        match e {
            Energy::Known(run) => run,
            Energy::Unavailable(u) => panic!("unavailable: {}", u.reason()),
        }
    }

    #[test]
    fn only_package_and_dram_are_added_once_each() {
        let t0 = Instant::now();
        let mut f = EnergyFold::default();
        f.observe(t0, &parse(CAPTURE));
        assert_eq!(f.energy(true), Energy::Unavailable(Unavailable::OneScrape));
        // Every zone +10 J in 2 s: package-0, package-1, dram-0, dram-1 count (40 J); core,
        // uncore, psys and the mmio duplicate do not.
        f.observe(t0 + Duration::from_secs(2), &parse(&advanced(CAPTURE, 10.0)));
        let run = known(f.energy(true));
        assert!((run.joules - 40.0).abs() < 1e-9, "{run:?}");
        assert!((run.seconds - 2.0).abs() < 1e-9);
        assert!((run.watts_mean() - 20.0).abs() < 1e-9);
        assert!((run.watts_peak - 20.0).abs() < 1e-9);
        assert_eq!(
            run.source,
            Source::Rapl {
                domains: vec!["dram-0".into(), "dram-1".into(), "package-0".into(), "package-1".into()],
                resets: 0
            }
        );
        assert_eq!(run.label(), "measured: RAPL dram-0 + dram-1 + package-0 + package-1");
    }

    #[test]
    fn zone_label_form_is_read_too() {
        let t0 = Instant::now();
        let mut f = EnergyFold::default();
        f.observe(t0, &parse(ZONE_LABEL));
        f.observe(t0 + Duration::from_secs(1), &parse(&advanced(ZONE_LABEL, 3.0)));
        let run = known(f.energy(true));
        assert!((run.joules - 6.0).abs() < 1e-9, "package + dram, not core: {run:?}");
    }

    #[test]
    fn mean_and_peak_over_intervals_and_a_wrap_counts_as_a_reset() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let pkg = |j: f64| {
            parse(&format!("node_rapl_package_joules_total{{index=\"0\",path=\"/sys/class/powercap/intel-rapl:0\"}} {j}\n"))
        };
        let mut f = EnergyFold::default();
        f.observe(at(0), &pkg(1000.0));
        f.observe(at(1000), &pkg(1050.0)); // 50 W
        f.observe(at(1500), &pkg(1100.0)); // 100 W over half a second
        f.observe(at(2500), &[]); // a scrape without the counters: the next spans the gap
        f.observe(at(3500), &pkg(30.0)); // wrapped: 30 J taken as the increase (prometheus)
        let run = known(f.energy(true));
        assert!((run.joules - 130.0).abs() < 1e-9, "{run:?}");
        assert!((run.seconds - 3.5).abs() < 1e-9);
        assert!((run.watts_peak - 100.0).abs() < 1e-9);
        assert!((run.watts_last - 15.0).abs() < 1e-9);
        assert!(matches!(run.source, Source::Rapl { resets: 1, .. }), "{run:?}");
        // Derived: 2 viewer-hours, 0.5 GB.
        assert!((run.per_viewer_hour(7200.0).unwrap() - 65.0).abs() < 1e-9);
        assert!((run.per_gigabyte(Some(500_000_000)).unwrap() - 260.0).abs() < 1e-9);
        assert_eq!(
            (run.per_viewer_hour(0.0), run.per_gigabyte(None), run.per_gigabyte(Some(0))),
            (None, None, None)
        );
    }

    #[test]
    fn without_rapl_an_estimate_only_when_asked_and_labelled() {
        let t0 = Instant::now();
        let cpu = parse("node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 5\n");
        let mut f = EnergyFold::default();
        assert_eq!(f.energy(false), Energy::Unavailable(Unavailable::NotScraped));
        f.observe(t0, &cpu);
        f.busy(1.5, 1.0);
        assert_eq!(f.energy(true), Energy::Unavailable(Unavailable::NoRapl));
        assert!(Unavailable::NoRapl
            .reason()
            .contains("no RAPL counters (VMs and many cloud hosts have none)"));

        let mut f = EnergyFold::new(Some(12.5));
        f.observe(t0, &cpu);
        assert_eq!(f.energy(true), Energy::Unavailable(Unavailable::OneScrape));
        f.busy(1.5, 1.0);
        f.busy(0.5, 1.0);
        let run = known(f.energy(true));
        assert!((run.joules - 25.0).abs() < 1e-9 && (run.watts_peak - 18.75).abs() < 1e-9, "{run:?}");
        assert!((run.watts_mean() - 12.5).abs() < 1e-9);
        assert_eq!(run.label(), "estimated: origin busy CPU-seconds × 12.5 W per core");
        assert_eq!(run.source, Source::Estimate { watts_per_core: 12.5, busy_cpu_seconds: 2.0 });

        let mut f = EnergyFold::new(Some(10.0));
        f.observe(t0, &parse("node_load1 1\n"));
        assert_eq!(f.energy(true), Energy::Unavailable(Unavailable::NoCpu));
    }

    #[test]
    fn busy_modes_and_joule_text() {
        assert!(busy_mode("user") && busy_mode("system") && busy_mode("softirq"));
        assert!(!busy_mode("idle") && !busy_mode("iowait") && !busy_mode("steal"));
        assert_eq!(joules(840.04), "840.0 J");
        assert_eq!(joules(12_345.0), "12.35 kJ");
        assert_eq!(joules(1_200_000.0), "1.20 MJ");
    }
}
