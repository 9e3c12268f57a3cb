//! The harness's own scrapes of the origin's node and nginx exporters: one just before the
//! swarm starts, one every second while it runs (on a thread, inside the client namespace
//! when there is one), one after it ended. Recorded with the result; the nginx request counter
//! also feeds the `nginx_requests_match` check.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kit::exposition::{self, sum, sum_where};

use crate::http::Reach;

/// What one scrape of both exporters found (`None`: that exporter did not answer).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Sample {
    /// Seconds since the first scrape.
    pub at: f64,
    /// Non-idle CPU seconds, all CPUs.
    pub cpu_busy: Option<f64>,
    /// All CPU seconds, all CPUs.
    pub cpu_total: Option<f64>,
    /// CPUs the node exporter reports.
    pub cpus: Option<usize>,
    /// Bytes sent, every device but `lo`.
    pub net_tx: Option<f64>,
    /// `nginx_up` was 1.
    pub nginx_up: Option<bool>,
    /// `nginx_http_requests_total` (stub_status; each scrape of the exporter adds one).
    pub nginx_requests: Option<f64>,
    /// `nginx_connections_active`.
    pub nginx_active: Option<f64>,
}

/// Scrapes both exporters once.
pub fn scrape(reach: &Reach, node: SocketAddr, nginx: SocketAddr, since: Instant) -> Sample {
    let mut s = Sample { at: since.elapsed().as_secs_f64(), ..Sample::default() };
    if let Ok(r) = reach.get(node, "/metrics") {
        if r.status == 200 {
            let m = exposition::parse(&r.body);
            let cpu = "node_cpu_seconds_total";
            s.cpu_total = sum(&m, cpu);
            s.cpus = Some(m.iter().filter(|x| x.name == cpu && x.label("mode") == Some("idle")).count())
                .filter(|n| *n > 0);
            s.cpu_busy = sum_where(&m, cpu, |x| !matches!(x.label("mode"), Some("idle" | "iowait")));
            s.net_tx =
                sum_where(&m, "node_network_transmit_bytes_total", |x| x.label("device") != Some("lo"));
        }
    }
    if let Ok(r) = reach.get(nginx, "/metrics") {
        if r.status == 200 {
            let m = exposition::parse(&r.body);
            s.nginx_up = sum(&m, "nginx_up").map(|v| v >= 1.0);
            s.nginx_requests = sum(&m, "nginx_http_requests_total");
            s.nginx_active = sum(&m, "nginx_connections_active");
        }
    }
    s
}

/// A scraper running on its own thread until [`Scraper::finish`].
#[derive(Debug)]
pub struct Scraper {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scraper {
    /// Starts scraping every `every`, from `since`.
    pub fn start(
        reach: Reach,
        node: SocketAddr,
        nginx: SocketAddr,
        every: Duration,
        since: Instant,
    ) -> Scraper {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stop2, samples2) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            // Scrapes go straight to the exporters; `Reach` enters the namespace per request.
            let direct = Reach::default();
            let body = |reach: &Reach| {
                while !stop2.load(Ordering::SeqCst) {
                    let next = Instant::now() + every;
                    let s = scrape(reach, node, nginx, since);
                    if let Ok(mut v) = samples2.lock() {
                        v.push(s);
                    }
                    while Instant::now() < next && !stop2.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            };
            match &reach.netns {
                // One thread inside the namespace for the whole run.
                Some(ns) => {
                    let _ = network::netns::in_netns(ns, || body(&direct));
                }
                None => body(&direct),
            }
        });
        Scraper { stop, samples, thread: Some(thread) }
    }

    /// Stops the thread and returns the samples.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.samples.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The figures recorded with a result.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Figures {
    /// Scrapes during the run, and how many answered per exporter.
    pub scrapes: usize,
    pub node_ok: usize,
    pub nginx_ok: usize,
    /// Scrapes where the nginx exporter answered but could not reach nginx.
    pub nginx_down: usize,
    /// Host CPU (the node exporter's machine) busy fraction over the run, all CPUs.
    pub host_cpu: Option<f64>,
    /// Its CPUs.
    pub host_cpus: Option<usize>,
    /// Bytes the origin's host sent (not counting `lo`).
    pub net_tx_bytes: Option<f64>,
    /// nginx requests from the scrape before the swarm to the one after it.
    pub nginx_requests: Option<f64>,
    /// Most active nginx connections seen.
    pub nginx_peak_active: Option<f64>,
}

/// Sums up `before`, the run's samples and `after`.
pub fn figures(before: &Sample, during: &[Sample], after: &Sample) -> Figures {
    let delta = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
    let host_cpu = match (delta(before.cpu_busy, after.cpu_busy), delta(before.cpu_total, after.cpu_total)) {
        (Some(busy), Some(total)) if total > 0.0 => Some(busy / total),
        _ => None,
    };
    Figures {
        scrapes: during.len(),
        node_ok: during.iter().filter(|s| s.cpu_total.is_some()).count(),
        nginx_ok: during.iter().filter(|s| s.nginx_up.is_some()).count(),
        nginx_down: during.iter().filter(|s| s.nginx_up == Some(false)).count(),
        host_cpu,
        host_cpus: after.cpus,
        net_tx_bytes: delta(before.net_tx, after.net_tx),
        nginx_requests: delta(before.nginx_requests, after.nginx_requests),
        nginx_peak_active: during.iter().filter_map(|s| s.nginx_active).reduce(f64::max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_deltas_between_the_outer_scrapes() {
        let s = |cpu: f64, req: f64, up: bool| Sample {
            cpu_busy: Some(cpu),
            cpu_total: Some(cpu * 4.0),
            nginx_requests: Some(req),
            nginx_up: Some(up),
            nginx_active: Some(req / 10.0),
            ..Sample::default()
        };
        let f =
            figures(&s(10.0, 5.0, true), &[s(11.0, 50.0, true), s(12.0, 60.0, false)], &s(14.0, 105.0, true));
        assert_eq!(f.nginx_requests, Some(100.0));
        assert_eq!(f.host_cpu, Some(0.25));
        assert_eq!((f.scrapes, f.nginx_ok, f.nginx_down, f.node_ok), (2, 2, 1, 2));
        assert_eq!(f.nginx_peak_active, Some(6.0));
    }
}
