//! The origin's own figures — CPU, memory, network, nginx connections and request rate — read
//! from its Prometheus exporters (`prometheus-node-exporter` on :9100, `prometheus-nginx-exporter`
//! on :9113) while the swarm runs.
//!
//! [`run`] scrapes both exporters concurrently every interval and feeds the text to a
//! [`Scraper`], a pure fold that keeps the previous reading of each counter and turns two
//! consecutive good readings into rates; after every round it publishes an [`OriginSnapshot`] on
//! a `watch` channel for the dashboard, `/metrics` and the end-of-run summary. An exporter that
//! does not answer is reported in the snapshot (unhealthy, with the error naming its URL) and
//! keeps its last figures; it is never fatal.
//!
//! Rates are current, not since boot: CPU load is `100 × (1 − Δidle / Δall)` over every CPU
//! and mode between two scrapes, counting `iowait` as idle (a CPU waiting for I/O could run
//! other work). A counter that went down between two scrapes (exporter or nginx restarted)
//! yields no value for that interval rather than a negative one. The origin's energy (RAPL
//! counters, or an estimate from busy CPU time) is folded by [`crate::measure::energy`].

use std::collections::BTreeMap;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use kit::exposition::{self, Sample};

use crate::measure::energy::{self, Energy, EnergyFold};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Port of `prometheus-node-exporter`.
pub const NODE_PORT: u16 = 9100;
/// Port of `prometheus-nginx-exporter`.
pub const NGINX_PORT: u16 = 9113;
/// Longest wait for one scrape (shorter when the interval is shorter).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(5);
/// Shortest scrape interval [`run`] accepts; shorter ones are raised to it.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Largest response body read from an exporter.
const MAX_BODY: usize = 8 << 20;

/// Where the origin's exporters are scraped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// The node exporter's `/metrics`, if scraped.
    pub node: Option<Url>,
    /// The nginx exporter's `/metrics`, if scraped.
    pub nginx: Option<Url>,
}

impl Targets {
    /// Both exporters on their default ports of `host` (a name or an IP address; an IPv6
    /// address may be given bare or in brackets): `http://HOST:9100/metrics` and
    /// `http://HOST:9113/metrics`.
    ///
    /// # Errors
    /// `host` does not make a valid URL (e.g. it contains a space).
    pub fn for_host(host: &str) -> Result<Targets, url::ParseError> {
        let host = if host.parse::<Ipv6Addr>().is_ok() { format!("[{host}]") } else { host.to_owned() };
        let url = |port: u16| Url::parse(&format!("http://{host}:{port}/metrics"));
        Ok(Targets { node: Some(url(NODE_PORT)?), nginx: Some(url(NGINX_PORT)?) })
    }

    /// True if the node exporter is reached over loopback: the origin runs on this machine
    /// and its viewers' traffic goes over `lo`.
    #[must_use]
    pub fn node_on_loopback(&self) -> bool {
        self.node.as_ref().is_some_and(|u| match u.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        })
    }

    /// Exporters at the given addresses (`None`: not scraped), e.g. an in-process origin's.
    #[must_use]
    pub fn at(node: Option<SocketAddr>, nginx: Option<SocketAddr>) -> Targets {
        // A socket address always makes a valid URL (IPv6 is bracketed by its Display).
        let url = |a: SocketAddr| Url::parse(&format!("http://{a}/metrics")).ok();
        Targets { node: node.and_then(url), nginx: nginx.and_then(url) }
    }
}

/// What the origin's network figures count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetScope {
    /// Every device but `lo`: a remote origin's traffic with its viewers.
    #[default]
    Devices,
    /// The origin is on the swarm's machine (its exporter is reached over loopback): its
    /// viewers' traffic goes over `lo`, which also carries the relay's hop to FFmpeg and
    /// everything else local, so no device counter is the origin's. The figures are left out;
    /// the bytes the origin served are the relay's count of response bodies.
    Loopback,
}

/// Which exporter a scrape was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exporter {
    /// `prometheus-node-exporter`.
    Node,
    /// `prometheus-nginx-exporter`.
    Nginx,
}

/// How scraping one exporter is going.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExporterHealth {
    /// The last scrape worked (false before the first one).
    pub ok: bool,
    /// Why the last scrape failed (`None` when it worked), naming the URL.
    pub error: Option<String>,
    /// Scrapes that worked.
    pub scrapes_ok: u64,
    /// Scrapes that failed.
    pub scrapes_failed: u64,
    /// When the last good scrape was made.
    pub last_ok: Option<Instant>,
    /// When the last failed scrape was made.
    pub last_failed: Option<Instant>,
}

/// Totals over the whole run, for the end-of-run summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunTotals {
    /// Highest per-interval CPU load seen, percent of all CPUs.
    pub cpu_peak_percent: Option<f64>,
    /// Mean CPU load, each interval weighted by its length.
    pub cpu_mean_percent: Option<f64>,
    /// Bytes received by the origin (devices per [`NetScope`]), summed over the measured
    /// intervals; `None` before two node scrapes, or when the traffic is not exported.
    pub net_rx_bytes: Option<u64>,
    /// Bytes sent by the origin, likewise.
    pub net_tx_bytes: Option<u64>,
    /// HTTP requests nginx served, summed over the measured intervals.
    pub requests: u64,
    /// Most active nginx connections seen in one scrape.
    pub peak_active_connections: Option<u64>,
}

/// The origin's figures after the latest scrape round. A figure is `None` until it can be
/// computed (rates need two good scrapes) or when the exporter does not expose it; after a
/// failed scrape the previous figures stay, and [`ExporterHealth`] says they are stale.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OriginSnapshot {
    /// The node exporter's scrapes.
    pub node: ExporterHealth,
    /// The nginx exporter's scrapes.
    pub nginx: ExporterHealth,
    /// CPU load between the last two node scrapes, percent of all CPUs (0–100).
    pub cpu_percent: Option<f64>,
    /// `MemTotal − MemAvailable` (`MemFree` where there is no `MemAvailable`).
    pub mem_used_bytes: Option<u64>,
    /// `MemTotal`.
    pub mem_total_bytes: Option<u64>,
    /// Which network devices the network figures count.
    pub net_scope: NetScope,
    /// Received bytes per second (devices per `net_scope`) between the last two node scrapes.
    pub net_rx_bytes_per_second: Option<f64>,
    /// Sent bytes per second (devices per `net_scope`) between the last two node scrapes.
    pub net_tx_bytes_per_second: Option<f64>,
    /// `nginx_connections_active` (includes the exporter's own `stub_status` request).
    pub active_connections: Option<u64>,
    /// nginx requests per second between the last two nginx scrapes (includes the
    /// exporter's own `stub_status` request, one per scrape).
    pub requests_per_second: Option<f64>,
    /// `nginx_up`: the nginx exporter could read nginx's `stub_status`.
    pub nginx_up: Option<bool>,
    /// Totals over the run.
    pub run: RunTotals,
    /// The origin's energy over the run: from RAPL, estimated, or why it is unavailable.
    pub energy: Energy,
}

/// A sample's labels, sorted.
type Labels = Vec<(String, String)>;

/// Counter series keyed by their labels.
type Series = BTreeMap<Labels, f64>;

/// How much each counter series grew between two readings, and the seconds between them.
#[derive(Debug)]
struct Increases {
    per_series: Vec<(Labels, f64)>,
    secs: f64,
}

impl Increases {
    fn sum(&self) -> f64 {
        self.per_series.iter().map(|(_, d)| d).sum()
    }
}

/// One counter family as read at one instant.
#[derive(Debug)]
struct Reading {
    at: Instant,
    series: Series,
}

/// The fold from scrape results to [`OriginSnapshot`]: pure, no I/O, so it is tested on
/// captured exporter output. Memory is bounded by one previous reading per counter family.
#[derive(Debug, Default)]
pub struct Scraper {
    /// Count `lo` (the origin is on loopback).
    loopback: bool,
    snap: OriginSnapshot,
    cpu: Option<Reading>,
    rx: Option<Reading>,
    tx: Option<Reading>,
    requests: Option<Reading>,
    energy: EnergyFold,
    /// Σ cpu% × seconds and Σ seconds over the measured intervals.
    cpu_weighted: f64,
    cpu_seconds: f64,
    rx_total: f64,
    tx_total: f64,
    requests_total: f64,
}

impl Scraper {
    /// A scraper; `loopback`: the origin is on this machine, so `lo` carries its traffic.
    #[must_use]
    pub fn new(loopback: bool) -> Scraper {
        Scraper { loopback, ..Scraper::default() }
    }

    /// Without RAPL counters, estimates the origin's energy as busy CPU-seconds ×
    /// `watts_per_core` (`--origin-watts-per-core`; `None`: no estimate).
    #[must_use]
    pub fn estimating(self, watts_per_core: Option<f64>) -> Scraper {
        Scraper { energy: EnergyFold::new(watts_per_core), ..self }
    }

    /// Folds a good node exporter scrape made at `at`.
    pub fn observe_node(&mut self, at: Instant, text: &str) {
        self.node_samples(at, &exposition::parse(text));
    }

    /// Folds a good nginx exporter scrape made at `at`.
    pub fn observe_nginx(&mut self, at: Instant, text: &str) {
        self.nginx_samples(at, &exposition::parse(text));
    }

    /// Records a failed scrape of `which`: marks it unhealthy with `error`, keeps its figures.
    pub fn failed(&mut self, which: Exporter, at: Instant, error: String) {
        // A failure does not move the rate baselines: the next good scrape measures from the
        // last good one.
        let h = self.health(which);
        h.ok = false;
        h.error = Some(error);
        h.scrapes_failed += 1;
        h.last_failed = Some(at);
    }

    /// The figures as of the latest observation.
    #[must_use]
    pub fn snapshot(&self) -> OriginSnapshot {
        self.snap.clone()
    }

    fn health(&mut self, which: Exporter) -> &mut ExporterHealth {
        match which {
            Exporter::Node => &mut self.snap.node,
            Exporter::Nginx => &mut self.snap.nginx,
        }
    }

    fn succeeded(&mut self, which: Exporter, at: Instant) {
        let h = self.health(which);
        h.ok = true;
        h.error = None;
        h.scrapes_ok += 1;
        h.last_ok = Some(at);
    }

    fn node_samples(&mut self, at: Instant, samples: &[Sample]) {
        self.succeeded(Exporter::Node, at);

        let cpu = advance(&mut self.cpu, at, series(samples, "node_cpu_seconds_total", |_| true));
        if let Some(inc) = &cpu {
            let busy = inc
                .per_series
                .iter()
                .filter(|(labels, _)| labels.iter().any(|(k, v)| k == "mode" && energy::busy_mode(v)));
            self.energy.busy(busy.map(|(_, d)| d).sum(), inc.secs);
        }
        self.snap.cpu_percent = cpu.and_then(|inc| {
            let all = inc.sum();
            let idle: f64 = inc
                .per_series
                .iter()
                .filter(|(labels, _)| {
                    labels.iter().any(|(k, v)| k == "mode" && (v == "idle" || v == "iowait"))
                })
                .map(|(_, d)| d)
                .sum();
            (all > 0.0).then(|| (100.0 * (1.0 - idle / all)).clamp(0.0, 100.0)).inspect(|&pct| {
                self.cpu_weighted += pct * inc.secs;
                self.cpu_seconds += inc.secs;
                let run = &mut self.snap.run;
                run.cpu_peak_percent = Some(run.cpu_peak_percent.map_or(pct, |p| p.max(pct)));
            })
        });
        if self.cpu_seconds > 0.0 {
            self.snap.run.cpu_mean_percent = Some(self.cpu_weighted / self.cpu_seconds);
        }

        if self.loopback {
            // The other devices carry none of the viewers' traffic: no figure beats a false 0.
            self.snap.net_scope = NetScope::Loopback;
        } else {
            let keep = |s: &Sample| s.label("device") != Some("lo");
            let rx = advance(&mut self.rx, at, series(samples, "node_network_receive_bytes_total", keep));
            let tx = advance(&mut self.tx, at, series(samples, "node_network_transmit_bytes_total", keep));
            self.snap.net_rx_bytes_per_second = rate(rx, &mut self.rx_total);
            self.snap.net_tx_bytes_per_second = rate(tx, &mut self.tx_total);
            if self.snap.net_rx_bytes_per_second.is_some() || self.snap.run.net_rx_bytes.is_some() {
                self.snap.run.net_rx_bytes = Some(whole(self.rx_total));
            }
            if self.snap.net_tx_bytes_per_second.is_some() || self.snap.run.net_tx_bytes.is_some() {
                self.snap.run.net_tx_bytes = Some(whole(self.tx_total));
            }
        }

        let total = gauge(samples, "node_memory_MemTotal_bytes");
        let free = gauge(samples, "node_memory_MemAvailable_bytes")
            .or_else(|| gauge(samples, "node_memory_MemFree_bytes"));
        self.snap.mem_total_bytes = total.map(whole);
        self.snap.mem_used_bytes = total.zip(free).map(|(t, f)| whole(t - f));

        self.energy.observe(at, samples);
        self.snap.energy = self.energy.energy(true);
    }

    fn nginx_samples(&mut self, at: Instant, samples: &[Sample]) {
        self.succeeded(Exporter::Nginx, at);
        let requests =
            advance(&mut self.requests, at, series(samples, "nginx_http_requests_total", |_| true));
        self.snap.requests_per_second = rate(requests, &mut self.requests_total);
        self.snap.run.requests = whole(self.requests_total);
        self.snap.active_connections = gauge(samples, "nginx_connections_active").map(whole);
        if let Some(active) = self.snap.active_connections {
            let peak = &mut self.snap.run.peak_active_connections;
            *peak = Some(peak.map_or(active, |p| p.max(active)));
        }
        self.snap.nginx_up = gauge(samples, "nginx_up").map(|v| v != 0.0);
    }
}

/// The finite samples named `name` that `keep` accepts, keyed by their sorted labels.
fn series(samples: &[Sample], name: &str, keep: impl Fn(&Sample) -> bool) -> Series {
    samples
        .iter()
        .filter(|s| s.name == name && s.value.is_finite() && keep(s))
        .map(|s| {
            let mut labels = s.labels.clone();
            labels.sort();
            (labels, s.value)
        })
        .collect()
}

/// The first finite sample named `name`.
fn gauge(samples: &[Sample], name: &str) -> Option<f64> {
    samples.iter().find(|s| s.name == name && s.value.is_finite()).map(|s| s.value)
}

/// Stores `now` (read at `at`) as the latest reading and returns each series' increase since
/// the previous one, with the seconds between them. `None` when there is no previous reading,
/// no series in common, no time passed, or any series went down (a counter reset). A scrape
/// without the family keeps the previous reading, so the next increase spans the gap.
fn advance(prev: &mut Option<Reading>, at: Instant, now: Series) -> Option<Increases> {
    if now.is_empty() {
        return None;
    }
    let before = prev.replace(Reading { at, series: now })?;
    let after = prev.as_ref()?;
    let secs = after.at.saturating_duration_since(before.at).as_secs_f64();
    let mut per_series = Vec::new();
    for (labels, v) in &after.series {
        if let Some(old) = before.series.get(labels) {
            if v < old {
                return None;
            }
            per_series.push((labels.clone(), v - old));
        }
    }
    (secs > 0.0 && !per_series.is_empty()).then_some(Increases { per_series, secs })
}

/// Per-second rate of the summed increases, adding them to `total`.
fn rate(increases: Option<Increases>, total: &mut f64) -> Option<f64> {
    let inc = increases?;
    let sum = inc.sum();
    *total += sum;
    Some(sum / inc.secs)
}

/// A non-negative count from an exposition value (exporters write integers as floats).
fn whole(v: f64) -> u64 {
    // `as` saturates: negative and NaN become 0.
    v.round() as u64
}

/// Why one scrape failed.
#[derive(Debug, thiserror::Error)]
enum ScrapeError {
    #[error("{url}: connection refused")]
    Refused { url: Url },
    #[error("{url}: no answer within {}", humantime::format_duration(*timeout))]
    Timeout { url: Url, timeout: Duration },
    #[error("{url}: HTTP {status}")]
    Status { url: Url, status: u16 },
    #[error("{url}: response larger than {limit} bytes")]
    TooLarge { url: Url, limit: usize },
    #[error("{url}: no Prometheus samples in the response")]
    Empty { url: Url },
    #[error("{url}: {}", root_cause(source))]
    Request {
        url: Url,
        #[source]
        source: reqwest::Error,
    },
}

impl ScrapeError {
    fn from_reqwest(url: &Url, timeout: Duration, source: reqwest::Error) -> ScrapeError {
        let url = url.clone();
        if source.is_timeout() {
            return ScrapeError::Timeout { url, timeout };
        }
        let mut cause = std::error::Error::source(&source);
        while let Some(c) = cause {
            if c.downcast_ref::<std::io::Error>().map(std::io::Error::kind)
                == Some(std::io::ErrorKind::ConnectionRefused)
            {
                return ScrapeError::Refused { url };
            }
            cause = c.source();
        }
        ScrapeError::Request { url, source }
    }
}

/// The innermost message of an error chain (e.g. "Connection reset by peer (os error 104)").
fn root_cause(e: &reqwest::Error) -> String {
    let mut last: &dyn std::error::Error = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// GETs `url` and returns its samples.
async fn scrape(client: &reqwest::Client, url: &Url, timeout: Duration) -> Result<Vec<Sample>, ScrapeError> {
    let fail = |e| ScrapeError::from_reqwest(url, timeout, e);
    let mut resp = client.get(url.clone()).send().await.map_err(fail)?;
    if !resp.status().is_success() {
        return Err(ScrapeError::Status { url: url.clone(), status: resp.status().as_u16() });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(fail)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ScrapeError::TooLarge { url: url.clone(), limit: MAX_BODY });
        }
        body.extend_from_slice(&chunk);
    }
    let samples = exposition::parse(&String::from_utf8_lossy(&body));
    if samples.is_empty() {
        return Err(ScrapeError::Empty { url: url.clone() });
    }
    Ok(samples)
}

/// Scrapes `target` (if set), returning when the scrape started and how it went.
async fn scrape_target(
    client: &reqwest::Client,
    target: Option<&Url>,
    timeout: Duration,
) -> Option<(Instant, Result<Vec<Sample>, ScrapeError>)> {
    let url = target?;
    let at = Instant::now();
    Some((at, scrape(client, url, timeout).await))
}

/// Scrapes the targets concurrently every `interval` (the first round at once; at least
/// [`MIN_INTERVAL`]), each with a timeout of `min(interval, 5 s)`, and publishes the snapshot
/// after every round. Returns when `stop` is cancelled or nobody holds a receiver any more.
/// Failures are reported in the snapshot and logged at debug level; they never end the task.
/// `watts_per_core`: see [`Scraper::estimating`].
pub async fn run(
    targets: Targets,
    interval: Duration,
    watts_per_core: Option<f64>,
    publish: watch::Sender<OriginSnapshot>,
    stop: CancellationToken,
) {
    let interval = interval.max(MIN_INTERVAL);
    let timeout = interval.min(MAX_TIMEOUT);
    let mut scraper = Scraper::new(targets.node_on_loopback()).estimating(watts_per_core);
    // Exporters are scraped directly, never through a proxy from the environment.
    let client = match reqwest::Client::builder().timeout(timeout).no_proxy().build() {
        Ok(c) => c,
        Err(e) => {
            let at = Instant::now();
            let targets = [(Exporter::Node, &targets.node), (Exporter::Nginx, &targets.nginx)];
            for (which, url) in targets {
                if let Some(url) = url {
                    scraper.failed(which, at, format!("{url}: cannot make an HTTP client: {e}"));
                }
            }
            publish.send_replace(scraper.snapshot());
            tokio::select! {
                () = stop.cancelled() => {}
                () = publish.closed() => {}
            }
            return;
        }
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let round = async {
            tokio::join!(
                scrape_target(&client, targets.node.as_ref(), timeout),
                scrape_target(&client, targets.nginx.as_ref(), timeout)
            )
        };
        let (node, nginx) = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            r = round => r,
        };
        for (which, result) in [(Exporter::Node, node), (Exporter::Nginx, nginx)] {
            match result {
                Some((at, Ok(samples))) => match which {
                    Exporter::Node => scraper.node_samples(at, &samples),
                    Exporter::Nginx => scraper.nginx_samples(at, &samples),
                },
                Some((at, Err(e))) => {
                    tracing::debug!(error = %e, "origin exporter scrape failed");
                    scraper.failed(which, at, e.to_string());
                }
                None => {}
            }
        }
        publish.send_replace(scraper.snapshot());
        if publish.is_closed() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// prometheus-node-exporter 1.5.0 (Debian 12), `--collector.disable-defaults` with cpu,
    /// meminfo, netdev, loadavg: excerpts (the figures' families and a few others). Debian's
    /// exporter leaves `lo` out by default (`--collector.netdev.device-exclude="^lo$"`).
    const NODE_1: &str = r#"# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 0
go_gc_duration_seconds{quantile="1"} 0
go_gc_duration_seconds_sum 0
go_gc_duration_seconds_count 0
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 95.96
node_cpu_seconds_total{cpu="0",mode="iowait"} 0.71
node_cpu_seconds_total{cpu="0",mode="irq"} 0
node_cpu_seconds_total{cpu="0",mode="nice"} 0
node_cpu_seconds_total{cpu="0",mode="softirq"} 0.05
node_cpu_seconds_total{cpu="0",mode="steal"} 0.07
node_cpu_seconds_total{cpu="0",mode="system"} 11.06
node_cpu_seconds_total{cpu="0",mode="user"} 41.76
node_cpu_seconds_total{cpu="1",mode="idle"} 85
node_cpu_seconds_total{cpu="1",mode="iowait"} 3.17
node_cpu_seconds_total{cpu="1",mode="irq"} 0
node_cpu_seconds_total{cpu="1",mode="nice"} 0
node_cpu_seconds_total{cpu="1",mode="softirq"} 0.61
node_cpu_seconds_total{cpu="1",mode="steal"} 0.08
node_cpu_seconds_total{cpu="1",mode="system"} 16.45
node_cpu_seconds_total{cpu="1",mode="user"} 43.86
# HELP node_exporter_build_info A metric with a constant '1' value labeled by version, revision, branch, goversion from which node_exporter was built, and the goos and goarch for the build.
# TYPE node_exporter_build_info gauge
node_exporter_build_info{branch="debian/sid",goarch="amd64",goos="linux",goversion="go1.19.8",revision="1.5.0-1+b6",version="1.5.0"} 1
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 1.64
# HELP node_memory_MemAvailable_bytes Memory information field MemAvailable_bytes.
# TYPE node_memory_MemAvailable_bytes gauge
node_memory_MemAvailable_bytes 2.4677064704e+10
# HELP node_memory_MemFree_bytes Memory information field MemFree_bytes.
# TYPE node_memory_MemFree_bytes gauge
node_memory_MemFree_bytes 2.197753856e+10
# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.
# TYPE node_memory_MemTotal_bytes gauge
node_memory_MemTotal_bytes 2.5276510208e+10
# HELP node_network_receive_bytes_total Network device statistic receive_bytes.
# TYPE node_network_receive_bytes_total counter
node_network_receive_bytes_total{device="eth0"} 2.48837105e+08
node_network_receive_bytes_total{device="ifb0"} 0
node_network_receive_bytes_total{device="ifb1"} 0
# HELP node_network_transmit_bytes_total Network device statistic transmit_bytes.
# TYPE node_network_transmit_bytes_total counter
node_network_transmit_bytes_total{device="eth0"} 278851
node_network_transmit_bytes_total{device="ifb0"} 0
node_network_transmit_bytes_total{device="ifb1"} 0
"#;

    /// The same exporter about 10 s later (CPU, memory and network families).
    const NODE_2: &str = r#"# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 104.43
node_cpu_seconds_total{cpu="0",mode="iowait"} 0.71
node_cpu_seconds_total{cpu="0",mode="irq"} 0
node_cpu_seconds_total{cpu="0",mode="nice"} 0
node_cpu_seconds_total{cpu="0",mode="softirq"} 0.06
node_cpu_seconds_total{cpu="0",mode="steal"} 0.07
node_cpu_seconds_total{cpu="0",mode="system"} 11.27
node_cpu_seconds_total{cpu="0",mode="user"} 42.63
node_cpu_seconds_total{cpu="1",mode="idle"} 93.21
node_cpu_seconds_total{cpu="1",mode="iowait"} 3.23
node_cpu_seconds_total{cpu="1",mode="irq"} 0
node_cpu_seconds_total{cpu="1",mode="nice"} 0
node_cpu_seconds_total{cpu="1",mode="softirq"} 0.62
node_cpu_seconds_total{cpu="1",mode="steal"} 0.08
node_cpu_seconds_total{cpu="1",mode="system"} 16.68
node_cpu_seconds_total{cpu="1",mode="user"} 44.97
# HELP node_memory_MemAvailable_bytes Memory information field MemAvailable_bytes.
# TYPE node_memory_MemAvailable_bytes gauge
node_memory_MemAvailable_bytes 2.4609923072e+10
# HELP node_memory_MemFree_bytes Memory information field MemFree_bytes.
# TYPE node_memory_MemFree_bytes gauge
node_memory_MemFree_bytes 2.2079660032e+10
# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.
# TYPE node_memory_MemTotal_bytes gauge
node_memory_MemTotal_bytes 2.5276510208e+10
# HELP node_network_receive_bytes_total Network device statistic receive_bytes.
# TYPE node_network_receive_bytes_total counter
node_network_receive_bytes_total{device="eth0"} 2.48837189e+08
node_network_receive_bytes_total{device="ifb0"} 0
node_network_receive_bytes_total{device="ifb1"} 0
# HELP node_network_transmit_bytes_total Network device statistic transmit_bytes.
# TYPE node_network_transmit_bytes_total counter
node_network_transmit_bytes_total{device="eth0"} 278935
node_network_transmit_bytes_total{device="ifb0"} 0
node_network_transmit_bytes_total{device="ifb1"} 0
"#;

    /// prometheus-nginx-exporter 0.11.0 (Debian 12) with the origin's const labels.
    const NGINX_1: &str = r#"# HELP nginx_connections_accepted Accepted client connections
# TYPE nginx_connections_accepted counter
nginx_connections_accepted{instance="hls-origin",profile="default"} 2
# HELP nginx_connections_active Active client connections
# TYPE nginx_connections_active gauge
nginx_connections_active{instance="hls-origin",profile="default"} 1
# HELP nginx_connections_handled Handled client connections
# TYPE nginx_connections_handled counter
nginx_connections_handled{instance="hls-origin",profile="default"} 2
# HELP nginx_connections_reading Connections where NGINX is reading the request header
# TYPE nginx_connections_reading gauge
nginx_connections_reading{instance="hls-origin",profile="default"} 0
# HELP nginx_connections_waiting Idle client connections
# TYPE nginx_connections_waiting gauge
nginx_connections_waiting{instance="hls-origin",profile="default"} 0
# HELP nginx_connections_writing Connections where NGINX is writing the response back to the client
# TYPE nginx_connections_writing gauge
nginx_connections_writing{instance="hls-origin",profile="default"} 1
# HELP nginx_http_requests_total Total http requests
# TYPE nginx_http_requests_total counter
nginx_http_requests_total{instance="hls-origin",profile="default"} 3
# HELP nginx_up Status of the last metric scrape
# TYPE nginx_up gauge
nginx_up{instance="hls-origin",profile="default"} 1
# HELP nginxexporter_build_info Exporter build information
# TYPE nginxexporter_build_info gauge
nginxexporter_build_info{arch="linux/amd64",commit="",date="",dirty="false",go="go1.19.8",instance="hls-origin",profile="default",version="0.11.0-1+b4"} 1
"#;

    /// After 7 more requests (plus the exporter's own `stub_status` fetch).
    const NGINX_2: &str = r#"# TYPE nginx_connections_active gauge
nginx_connections_active{instance="hls-origin",profile="default"} 1
# TYPE nginx_http_requests_total counter
nginx_http_requests_total{instance="hls-origin",profile="default"} 11
# TYPE nginx_up gauge
nginx_up{instance="hls-origin",profile="default"} 1
"#;

    /// With nginx stopped the exporter still answers 200, with only `nginx_up 0`.
    const NGINX_DOWN: &str = r#"# HELP nginx_up Status of the last metric scrape
# TYPE nginx_up gauge
nginx_up{instance="hls-origin",profile="default"} 0
# HELP nginxexporter_build_info Exporter build information
# TYPE nginxexporter_build_info gauge
nginxexporter_build_info{arch="linux/amd64",commit="",date="",dirty="false",go="go1.19.8",instance="hls-origin",profile="default",version="0.11.0-1+b4"} 1
"#;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn parses_real_node_output() {
        let s = exposition::parse(NODE_1);
        assert_eq!(s.iter().filter(|s| s.name == "node_cpu_seconds_total").count(), 16);
        assert_eq!(
            s[0],
            Sample {
                name: "go_gc_duration_seconds".into(),
                labels: vec![("quantile".into(), "0".into())],
                value: 0.0
            }
        );
        let build = s.iter().find(|s| s.name == "node_exporter_build_info").unwrap();
        assert_eq!(build.label("revision"), Some("1.5.0-1+b6"));
        assert_eq!(build.labels.len(), 6);
        assert_eq!(gauge(&s, "node_memory_MemTotal_bytes"), Some(25_276_510_208.0));
        assert_eq!(gauge(&s, "go_gc_duration_seconds_count"), Some(0.0));
    }

    #[test]
    fn targets_for_host() {
        let t = Targets::for_host("10.177.0.10").unwrap();
        assert_eq!(t.node.unwrap().as_str(), "http://10.177.0.10:9100/metrics");
        assert_eq!(t.nginx.unwrap().as_str(), "http://10.177.0.10:9113/metrics");
        let t = Targets::for_host("fd00::a").unwrap();
        assert_eq!(t.node.unwrap().as_str(), "http://[fd00::a]:9100/metrics");
        let t = Targets::for_host("[fd00::a]").unwrap();
        assert_eq!(t.nginx.unwrap().as_str(), "http://[fd00::a]:9113/metrics");
        assert_eq!(Targets::for_host("origin").unwrap().node.unwrap().as_str(), "http://origin:9100/metrics");
        assert!(Targets::for_host("a b").is_err());
        let t = Targets::at(Some("[::1]:9200".parse().unwrap()), None);
        assert_eq!(t.node.unwrap().as_str(), "http://[::1]:9200/metrics");
        assert_eq!(t.nginx, None);
    }

    #[test]
    fn cpu_and_rates_come_from_two_scrapes() {
        let t0 = Instant::now();
        let mut sc = Scraper::default();
        sc.observe_node(t0, NODE_1);
        let s = sc.snapshot();
        assert!(s.node.ok);
        assert_eq!(s.cpu_percent, None, "one scrape is not enough");
        assert_eq!(s.net_tx_bytes_per_second, None);
        assert_eq!(s.mem_total_bytes, Some(25_276_510_208));
        assert_eq!(s.mem_used_bytes, Some(25_276_510_208 - 24_677_064_704));

        sc.observe_node(t0 + Duration::from_secs(4), NODE_2);
        let s = sc.snapshot();
        // Δ over both CPUs: idle 8.47 + 8.21, iowait 0 + 0.06 → 16.74 of 19.18 s idle.
        let expected = 100.0 * (19.18 - 16.74) / 19.18;
        assert!(close(s.cpu_percent, expected), "{:?} vs {expected}", s.cpu_percent);
        assert!((s.cpu_percent.unwrap() - 12.7216).abs() < 1e-4);
        assert!(close(s.net_rx_bytes_per_second, 84.0 / 4.0));
        assert!(close(s.net_tx_bytes_per_second, 84.0 / 4.0));
        assert_eq!(s.mem_used_bytes, Some(25_276_510_208 - 24_609_923_072));
        assert_eq!(s.run.net_tx_bytes, Some(84));
        assert!(close(s.run.cpu_peak_percent, expected));
        assert!(close(s.run.cpu_mean_percent, expected));
    }

    fn node(idle: f64, iowait: f64, user: f64, eth0_tx: f64, lo_tx: f64) -> String {
        format!(
            "node_cpu_seconds_total{{cpu=\"0\",mode=\"idle\"}} {idle}\n\
             node_cpu_seconds_total{{cpu=\"0\",mode=\"iowait\"}} {iowait}\n\
             node_cpu_seconds_total{{cpu=\"0\",mode=\"user\"}} {user}\n\
             node_network_transmit_bytes_total{{device=\"eth0\"}} {eth0_tx}\n\
             node_network_transmit_bytes_total{{device=\"lo\"}} {lo_tx}\n"
        )
    }

    #[test]
    fn run_totals_weight_intervals_and_exclude_lo() {
        let t0 = Instant::now();
        let mut sc = Scraper::default();
        sc.observe_node(t0, &node(100.0, 10.0, 50.0, 1000.0, 5e9));
        // 1 s: 0.5 idle + 0.25 iowait of 1 s → 25 %; 2000 bytes out on eth0.
        sc.observe_node(t0 + Duration::from_secs(1), &node(100.5, 10.25, 50.25, 3000.0, 9e9));
        let s = sc.snapshot();
        assert!(close(s.cpu_percent, 25.0));
        assert!(close(s.net_tx_bytes_per_second, 2000.0), "lo left out: {:?}", s.net_tx_bytes_per_second);
        // 3 s at 100 %: mean = (25 × 1 + 100 × 3) / 4.
        sc.observe_node(t0 + Duration::from_secs(4), &node(100.5, 10.25, 53.25, 9000.0, 1e10));
        let s = sc.snapshot();
        assert!(close(s.cpu_percent, 100.0));
        assert!(close(s.net_tx_bytes_per_second, 2000.0));
        assert!(close(s.run.cpu_peak_percent, 100.0));
        assert!(close(s.run.cpu_mean_percent, 81.25));
        assert_eq!(s.run.net_tx_bytes, Some(8000));
        assert_eq!(s.net_rx_bytes_per_second, None, "no receive family");
    }

    #[test]
    fn an_origin_on_loopback_has_no_device_figures_rather_than_a_false_zero() {
        let t0 = Instant::now();
        let on_lo = Targets::at("127.0.0.1:9100".parse().ok(), None);
        assert!(on_lo.node_on_loopback());
        assert!(Targets::for_host("localhost").unwrap().node_on_loopback());
        assert!(Targets::for_host("::1").unwrap().node_on_loopback());
        assert!(!Targets::for_host("10.177.0.10").unwrap().node_on_loopback());
        assert!(!Targets::at(None, "127.0.0.1:9113".parse().ok()).node_on_loopback(), "no node exporter");
        let mut sc = Scraper::new(on_lo.node_on_loopback());
        sc.observe_node(t0, &node(100.0, 10.0, 50.0, 1000.0, 5e9));
        sc.observe_node(t0 + Duration::from_secs(1), &node(100.5, 10.25, 50.25, 1000.0, 9e9));
        let s = sc.snapshot();
        assert_eq!(s.net_scope, NetScope::Loopback);
        assert_eq!(
            (s.net_tx_bytes_per_second, s.run.net_tx_bytes),
            (None, None),
            "eth0 did not move: not 0 B"
        );
        assert!(close(s.cpu_percent, 25.0), "the rest is measured as usual");
        let remote = Scraper::default().snapshot();
        assert_eq!(remote.net_scope, NetScope::Devices);
    }

    #[test]
    fn energy_is_measured_from_rapl_else_estimated_from_busy_cpu_only_when_asked() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut sc = Scraper::default().estimating(Some(10.0));
        sc.observe_node(at(0), &node(100.0, 10.0, 50.0, 0.0, 0.0));
        assert_eq!(sc.snapshot().energy, Energy::Unavailable(energy::Unavailable::OneScrape));
        // 1 s: 0.25 CPU-s busy (user) × 10 W per core = 2.5 J, labelled an estimate.
        sc.observe_node(at(1), &node(100.5, 10.25, 50.25, 0.0, 0.0));
        let Energy::Known(e) = sc.snapshot().energy else { panic!("{:?}", sc.snapshot().energy) };
        assert!((e.joules - 2.5).abs() < 1e-9 && e.source_name() == "estimate", "{e:?}");
        let without = |s: &mut Scraper| {
            s.observe_node(at(0), &node(100.0, 10.0, 50.0, 0.0, 0.0));
            s.observe_node(at(1), &node(100.5, 10.25, 50.25, 0.0, 0.0));
            s.snapshot().energy
        };
        assert_eq!(without(&mut Scraper::default()), Energy::Unavailable(energy::Unavailable::NoRapl));
        // With RAPL counters the measurement wins: 30 J in 2 s.
        let rapl = |j: f64| {
            format!("{}node_rapl_package_joules_total{{index=\"0\",path=\"/sys/class/powercap/intel-rapl:0\"}} {j}\n", node(1.0, 1.0, 1.0, 0.0, 0.0))
        };
        let mut sc = Scraper::default().estimating(Some(10.0));
        sc.observe_node(at(0), &rapl(100.0));
        sc.observe_node(at(2), &rapl(130.0));
        let Energy::Known(e) = sc.snapshot().energy else { panic!("{:?}", sc.snapshot().energy) };
        assert!((e.joules - 30.0).abs() < 1e-9 && (e.watts_mean() - 15.0).abs() < 1e-9, "{e:?}");
        assert_eq!(e.label(), "measured: RAPL package-0");
    }

    #[test]
    fn counter_reset_gives_no_rate_for_that_interval() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut sc = Scraper::default();
        sc.observe_node(at(0), &node(100.0, 0.0, 100.0, 5000.0, 0.0));
        sc.observe_node(at(1), &node(1.0, 0.0, 1.0, 100.0, 0.0)); // the host rebooted
        let s = sc.snapshot();
        assert_eq!(s.cpu_percent, None);
        assert_eq!(s.net_tx_bytes_per_second, None);
        assert_eq!(s.run.net_tx_bytes, None, "no interval measured yet");
        sc.observe_node(at(2), &node(1.5, 0.0, 1.5, 600.0, 0.0));
        let s = sc.snapshot();
        assert!(close(s.cpu_percent, 50.0));
        assert!(close(s.net_tx_bytes_per_second, 500.0));

        sc.observe_nginx(at(0), NGINX_2);
        sc.observe_nginx(at(1), NGINX_1); // nginx restarted: 11 → 3
        assert_eq!(sc.snapshot().requests_per_second, None);
        assert_eq!(sc.snapshot().run.requests, 0);
    }

    #[test]
    fn nginx_figures() {
        let t0 = Instant::now();
        let mut sc = Scraper::default();
        sc.observe_nginx(t0, NGINX_1);
        let s = sc.snapshot();
        assert_eq!((s.active_connections, s.nginx_up, s.requests_per_second), (Some(1), Some(true), None));
        sc.observe_nginx(t0 + Duration::from_secs(2), NGINX_2);
        let s = sc.snapshot();
        assert!(close(s.requests_per_second, 4.0));
        assert_eq!(s.run.requests, 8);
        assert_eq!(s.run.peak_active_connections, Some(1));
        assert_eq!(s.nginx.scrapes_ok, 2);

        // nginx down: the exporter answers, but has no connection figures.
        sc.observe_nginx(t0 + Duration::from_secs(3), NGINX_DOWN);
        let s = sc.snapshot();
        assert!(s.nginx.ok);
        assert_eq!((s.nginx_up, s.active_connections, s.requests_per_second), (Some(false), None, None));
    }

    #[test]
    fn missing_metrics_are_none() {
        let t0 = Instant::now();
        let mut sc = Scraper::default();
        let text = "node_load1 0.5\nnode_memory_MemFree_bytes 100\n";
        sc.observe_node(t0, text);
        sc.observe_node(t0 + Duration::from_secs(1), text);
        let s = sc.snapshot();
        assert!(s.node.ok);
        assert_eq!(s.cpu_percent, None);
        assert_eq!(s.net_rx_bytes_per_second, None);
        assert_eq!((s.mem_total_bytes, s.mem_used_bytes), (None, None));
        assert_eq!(s.run, RunTotals::default());
        // MemFree stands in for a missing MemAvailable.
        sc.observe_node(t0, "node_memory_MemTotal_bytes 1000\nnode_memory_MemFree_bytes 300\n");
        assert_eq!(sc.snapshot().mem_used_bytes, Some(700));
        // A snapshot before any scrape.
        assert_eq!(Scraper::default().snapshot(), OriginSnapshot::default());
    }

    #[test]
    fn failed_scrape_keeps_figures_but_is_unhealthy() {
        let t0 = Instant::now();
        let mut sc = Scraper::default();
        sc.observe_node(t0, NODE_1);
        sc.observe_node(t0 + Duration::from_secs(4), NODE_2);
        let good = sc.snapshot();
        let err = "http://127.0.0.1:9100/metrics: connection refused".to_owned();
        sc.failed(Exporter::Node, t0 + Duration::from_secs(5), err.clone());
        let s = sc.snapshot();
        assert!(!s.node.ok);
        assert_eq!(s.node.error, Some(err));
        assert_eq!((s.node.scrapes_ok, s.node.scrapes_failed), (2, 1));
        assert_eq!(s.node.last_ok, Some(t0 + Duration::from_secs(4)));
        assert_eq!(s.node.last_failed, Some(t0 + Duration::from_secs(5)));
        assert_eq!(s.cpu_percent, good.cpu_percent);
        assert_eq!(s.mem_used_bytes, good.mem_used_bytes);
        assert_eq!(s.nginx, ExporterHealth::default(), "the other exporter is untouched");
        // The next good scrape is healthy again and measures from the last good one.
        sc.observe_node(t0 + Duration::from_secs(8), NODE_2);
        let s = sc.snapshot();
        assert!(s.node.ok && s.node.error.is_none());
        assert_eq!(s.cpu_percent, None, "no CPU time passed between identical readings");
        assert!(close(s.net_tx_bytes_per_second, 0.0));
    }
}
