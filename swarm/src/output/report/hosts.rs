//! The report's types for the machines: the origin's figures from its exporters, and the
//! swarm's own machine (whether the generator was the bottleneck).

use schemars::JsonSchema;
use serde::Serialize;

use crate::measure::energy::{self, Energy};
use crate::measure::origin;

/// How scraping one exporter went.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exporter {
    /// The last scrape worked.
    pub ok: bool,
    /// Why the last scrape failed; `null` when it worked.
    pub error: Option<String>,
    /// Scrapes that worked.
    pub scrapes_ok: u64,
    /// Scrapes that failed.
    pub scrapes_failed: u64,
}

impl Exporter {
    pub(super) fn of(h: &origin::ExporterHealth) -> Exporter {
        Exporter {
            ok: h.ok,
            error: h.error.clone(),
            scrapes_ok: h.scrapes_ok,
            scrapes_failed: h.scrapes_failed,
        }
    }
}

/// The swarm's own machine: whether the load generator, not the origin, was the bottleneck.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Generator {
    /// True if the run was generator-bound: host CPU above 85 % for 10 s, any dropped event,
    /// a start 1 s behind plan, or a stats tick 1 s late. Its figures then describe the
    /// swarm's machine as much as the origin.
    pub bound: bool,
    /// Which of those rules were crossed.
    pub reasons: Vec<String>,
    /// Highest host CPU load of one sample (every half second), a fraction of all CPUs;
    /// `null` when not sampled.
    pub host_cpu_peak: Option<f64>,
    /// Longest time the host's CPU stayed above 85 %, seconds.
    pub host_busy_longest_seconds: f64,
    /// The swarm process's CPU use over the run, in cores (1 = one core busy); its viewers'
    /// FFmpeg processes are not included.
    pub process_cpu_cores_mean: Option<f64>,
    /// The latest stats tick against its schedule, seconds.
    pub stats_tick_lag_max_seconds: f64,
}

impl Generator {
    pub(super) fn of(g: &crate::measure::generator::Generator) -> Generator {
        Generator {
            bound: g.bound,
            reasons: g.reasons.clone(),
            host_cpu_peak: g.host_cpu_peak,
            host_busy_longest_seconds: g.host_busy_longest.as_secs_f64(),
            process_cpu_cores_mean: g.process_cpu_mean,
            stats_tick_lag_max_seconds: g.tick_lag_max.as_secs_f64(),
        }
    }
}

/// What the origin's network figures count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NetworkScope {
    /// Every device but `lo`: a remote origin.
    Devices,
    /// The origin is on the swarm's machine: no device counter is its own.
    Loopback,
}

/// The origin's totals over the run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginRun {
    /// Mean CPU load, a fraction of all CPUs, each scrape interval weighted by its length.
    pub cpu_load_mean: Option<f64>,
    /// Highest CPU load of one scrape interval, a fraction of all CPUs.
    pub cpu_load_peak: Option<f64>,
    /// Bytes received (the devices `network_scope` says); `null` when not known.
    pub network_receive_bytes: Option<u64>,
    /// Bytes sent (the devices `network_scope` says); `null` when not known.
    pub network_transmit_bytes: Option<u64>,
    /// HTTP requests nginx served (the exporter's own polls included).
    pub nginx_requests: u64,
    /// Most active nginx connections seen in one scrape.
    pub nginx_peak_active_connections: Option<u64>,
}

/// The origin's figures from its node and nginx exporters. Rates and loads are between the
/// last two scrapes; `null` when not available.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// The node exporter's scrapes.
    pub node: Exporter,
    /// The nginx exporter's scrapes.
    pub nginx: Exporter,
    /// CPU load at the end, a fraction of all CPUs.
    pub cpu_load: Option<f64>,
    /// Memory in use (`MemTotal - MemAvailable`), bytes.
    pub memory_used_bytes: Option<u64>,
    /// `MemTotal`, bytes.
    pub memory_total_bytes: Option<u64>,
    /// What the network figures count: `devices` (all but `lo`: a remote origin), or
    /// `loopback` (the origin is on the swarm's machine, where `lo` carries the swarm's own
    /// traffic too: the figures are `null`, and the bytes the origin served are the relay's
    /// `requests.bytes`).
    pub network_scope: NetworkScope,
    /// Bytes received per second (the devices `network_scope` says).
    pub network_receive_bytes_per_second: Option<f64>,
    /// Bytes sent per second (the devices `network_scope` says).
    pub network_transmit_bytes_per_second: Option<f64>,
    /// nginx active connections.
    pub nginx_active_connections: Option<u64>,
    /// nginx requests per second.
    pub nginx_requests_per_second: Option<f64>,
    /// The nginx exporter could read nginx's `stub_status`.
    pub nginx_up: Option<bool>,
    /// Totals over the run.
    pub run: OriginRun,
    /// The origin's energy over the run: measured (RAPL), estimated, or unavailable.
    pub energy: OriginEnergy,
}

/// Where the origin's energy figures come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnergySource {
    /// Measured: the increase of the node exporter's RAPL counters (`package` and `dram`
    /// domains) between its first and last scrape.
    Rapl,
    /// Estimated, not measured: busy CPU-seconds × `watts_per_core` (`--origin-watts-per-core`).
    Estimate,
    /// No figure: see `unavailable_reason`.
    #[default]
    Unavailable,
}

/// The origin's energy over the scraped time (from the first to the last node exporter
/// scrape), in joules and watts. Every figure is `null` when `source` is `unavailable`.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginEnergy {
    /// `rapl` (measured), `estimate`, or `unavailable`.
    pub source: EnergySource,
    /// How the figures were obtained, e.g. `measured: RAPL package-0 + dram-0` or
    /// `estimated: origin busy CPU-seconds × 10 W per core`; `null` when unavailable.
    pub formula: Option<String>,
    /// Why there is no figure (e.g. the node exporter reports no RAPL counters); `null`
    /// otherwise.
    pub unavailable_reason: Option<String>,
    /// `--origin-watts-per-core` behind an estimate; `null` otherwise.
    pub watts_per_core: Option<f64>,
    /// Busy CPU-seconds (every mode but idle, iowait and steal) behind an estimate; `null`
    /// otherwise.
    pub busy_cpu_seconds: Option<f64>,
    /// RAPL counter drops taken as resets (the new value counted as the increase, as
    /// Prometheus's `increase()` does); `null` unless measured.
    pub counter_resets: Option<u64>,
    /// Energy over `seconds`, joules.
    pub joules: Option<f64>,
    /// The scraped time the energy covers, seconds.
    pub seconds: Option<f64>,
    /// `joules / seconds`, watts.
    pub watts_mean: Option<f64>,
    /// The highest mean of one scrape interval, watts.
    pub watts_peak: Option<f64>,
    /// `joules / (playback.watch_seconds / 3600)`: the origin's whole energy (idle included)
    /// per hour watched by one viewer; `null` when nothing was watched.
    pub joules_per_viewer_hour: Option<f64>,
    /// `joules / (requests.bytes / 10^9)`: per gigabyte (10^9 bytes) delivered to the viewers;
    /// `null` when the bytes were not measured (`--measure log`).
    pub joules_per_gigabyte: Option<f64>,
}

impl OriginEnergy {
    /// The figures of `e`, with the run's `watch_seconds` and `delivered` bytes.
    pub(super) fn of(e: &Energy, watch_seconds: f64, delivered: Option<u64>) -> OriginEnergy {
        let none = OriginEnergy::default();
        let run = match e {
            Energy::Unavailable(u) => {
                return OriginEnergy { unavailable_reason: Some(u.reason().to_owned()), ..none };
            }
            Energy::Known(run) => run,
        };
        let mut out = OriginEnergy {
            formula: Some(run.label()),
            joules: Some(run.joules),
            seconds: Some(run.seconds),
            watts_mean: Some(run.watts_mean()),
            watts_peak: Some(run.watts_peak),
            joules_per_viewer_hour: run.per_viewer_hour(watch_seconds),
            joules_per_gigabyte: run.per_gigabyte(delivered),
            ..none
        };
        match run.source {
            energy::Source::Rapl { resets, .. } => {
                out.source = EnergySource::Rapl;
                out.counter_resets = Some(resets);
            }
            energy::Source::Estimate { watts_per_core, busy_cpu_seconds } => {
                out.source = EnergySource::Estimate;
                out.watts_per_core = Some(watts_per_core);
                out.busy_cpu_seconds = Some(busy_cpu_seconds);
            }
        }
        out
    }
}

impl Origin {
    /// The figures of `o`; the energy's per-viewer-hour and per-gigabyte figures divide by
    /// the run's `watch_seconds` and `delivered` bytes.
    pub(super) fn of(o: &origin::OriginSnapshot, watch_seconds: f64, delivered: Option<u64>) -> Origin {
        let fraction = |p: Option<f64>| p.map(|p| p / 100.0);
        Origin {
            node: Exporter::of(&o.node),
            nginx: Exporter::of(&o.nginx),
            cpu_load: fraction(o.cpu_percent),
            memory_used_bytes: o.mem_used_bytes,
            memory_total_bytes: o.mem_total_bytes,
            network_scope: match o.net_scope {
                origin::NetScope::Devices => NetworkScope::Devices,
                origin::NetScope::Loopback => NetworkScope::Loopback,
            },
            network_receive_bytes_per_second: o.net_rx_bytes_per_second,
            network_transmit_bytes_per_second: o.net_tx_bytes_per_second,
            nginx_active_connections: o.active_connections,
            nginx_requests_per_second: o.requests_per_second,
            nginx_up: o.nginx_up,
            run: OriginRun {
                cpu_load_mean: fraction(o.run.cpu_mean_percent),
                cpu_load_peak: fraction(o.run.cpu_peak_percent),
                network_receive_bytes: o.run.net_rx_bytes,
                network_transmit_bytes: o.run.net_tx_bytes,
                nginx_requests: o.run.requests,
                nginx_peak_active_connections: o.run.peak_active_connections,
            },
            energy: OriginEnergy::of(&o.energy, watch_seconds, delivered),
        }
    }
}
