//! `/metrics` (Prometheus text format), `/health` and `/ready`.
//!
//! `/metrics` is the `prometheus` crate's registry with two collectors: [`SwarmCollector`],
//! which builds every `hls_swarm_*` family from the latest [`Snapshot`] (and the origin's
//! figures, when they are scraped) at scrape time, and the crate's process collector (the
//! swarm's own CPU, memory and file descriptors as `process_*`). The exporter keeps no
//! counters of its own: every value is read from the one stats owner.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::measure::origin::OriginSnapshot;
use crate::measure::snapshot::Snapshot;

mod families;

pub use crate::output::metrics::families::{families, RunLabels};

/// What a scrape reads: the swarm's snapshot and, when scraped, the origin's.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The stats owner's snapshots.
    pub swarm: watch::Receiver<Arc<Snapshot>>,
    /// The origin scraper's snapshots, if `--origin-metrics*` was given.
    pub origin: Option<watch::Receiver<OriginSnapshot>>,
}

/// A running metrics server.
#[derive(Debug)]
pub struct Server {
    /// The address actually bound (port 0 resolved).
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds `addr` now (so a busy port fails the start) and serves until [`Server::shutdown`].
    ///
    /// # Errors
    /// The bind error.
    pub async fn start(addr: SocketAddr, sources: Sources, labels: RunLabels) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let registry = Arc::new(registry(sources.clone(), labels));
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let swarm = sources.swarm.clone();
                let registry = Arc::clone(&registry);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let snapshot = Arc::clone(&swarm.borrow());
                        let body = respond(&req, &snapshot, &registry);
                        async move { Ok::<_, Infallible>(body) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(sock), svc)
                        .await;
                });
            }
        });
        Ok(Server { addr, task })
    }

    /// Stops accepting connections.
    pub fn shutdown(self) {
        self.task.abort();
    }
}

/// The registry `/metrics` gathers: the swarm's families and the process collector.
fn registry(sources: Sources, labels: RunLabels) -> Registry {
    let registry = Registry::new();
    // Registering two collectors without overlapping names in a new registry cannot fail.
    let _ = registry.register(Box::new(SwarmCollector { sources, labels }));
    let _ = registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()));
    registry
}

/// Every `hls_swarm_*` family, read from the latest snapshots at each scrape.
#[derive(Debug)]
pub struct SwarmCollector {
    sources: Sources,
    labels: RunLabels,
}

impl Collector for SwarmCollector {
    fn desc(&self) -> Vec<&Desc> {
        // Families depend on the run (per kind, status and exit code): described at collect.
        Vec::new()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let swarm = Arc::clone(&self.sources.swarm.borrow());
        let origin = self.sources.origin.as_ref().map(|o| o.borrow().clone());
        families(&swarm, origin.as_ref(), &self.labels)
    }
}

/// The text format of `families`.
#[must_use]
pub fn encode(families: &[MetricFamily]) -> String {
    let mut out = Vec::with_capacity(32 * 1024);
    // Encoding families built here (finite values, valid names) into memory does not fail.
    let _ = TextEncoder::new().encode(families, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// The swarm's exposition alone (no process figures) for one snapshot, as `/metrics` gathers
/// it.
#[must_use]
pub fn render(s: &Snapshot, origin: Option<&OriginSnapshot>, labels: &RunLabels) -> String {
    let sources = Sources {
        swarm: watch::channel(Arc::new(s.clone())).1,
        origin: origin.map(|o| watch::channel(o.clone()).1),
    };
    let registry = Registry::new();
    let _ = registry.register(Box::new(SwarmCollector { sources, labels: labels.clone() }));
    encode(&registry.gather())
}

fn respond(req: &Request<Incoming>, s: &Snapshot, registry: &Registry) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match req.uri().path() {
        "/metrics" => {
            (StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", encode(&registry.gather()))
        }
        "/health" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        "/ready" if s.target > 0 && s.started == s.target => {
            (StatusCode::OK, "text/plain", "ready\n".to_owned())
        }
        "/ready" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            format!("ramping: {} of {} viewers started\n", s.started, s.target),
        ),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found: try /metrics, /health or /ready\n".to_owned()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::events::{Ending, RequestKind};

    #[test]
    fn exposition_is_well_formed() {
        let mut s = Snapshot { target: 4, started: 4, running: 3, streaming: 3, ..Snapshot::default() };
        s.requests.insert(RequestKind::Segment, 40);
        s.requests.insert(RequestKind::Playlist, 20);
        s.http_errors.insert(404, 2);
        s.exits_unexpected.insert(Ending { code: 1, label: "exit 1".into() }, 1);
        s.exits_on_stop.insert(Ending { code: 255, label: "exit 255".into() }, 3);
        let labels = RunLabels {
            stream_url: "http://h/\"x\".m3u8".into(),
            variant: "all".into(),
            ffmpeg: "5.1.9".into(),
            duration: Some(30.0),
            measure: "relay".into(),
            streams: vec!["http://h/a.m3u8".into(), "http://h/b.m3u8".into()],
        };
        // Two streams: the first had 30 of the 40 segments and both 404s.
        let mut a = crate::measure::streams::StreamFigures { viewers: 3, http_4xx: 2, ..Default::default() };
        a.requests.insert(RequestKind::Segment, 30);
        let mut b = crate::measure::streams::StreamFigures { viewers: 1, ..Default::default() };
        b.requests.insert(RequestKind::Segment, 10);
        s.streams = vec![a, b];
        let text = render(&s, None, &labels);
        assert!(text
            .contains("hls_swarm_stream_requests_total{stream=\"http://h/a.m3u8\",kind=\"segment\"} 30\n"));
        assert!(text
            .contains("hls_swarm_stream_requests_total{stream=\"http://h/b.m3u8\",kind=\"segment\"} 10\n"));
        assert!(text.contains("hls_swarm_stream_errors_total{stream=\"http://h/a.m3u8\",class=\"4xx\"} 2\n"));
        assert!(text.contains("hls_swarm_stream_viewers{stream=\"http://h/b.m3u8\"} 1\n"));
        assert!(text.contains("hls_swarm_stream_startup_seconds_count{stream=\"http://h/a.m3u8\"} 0\n"));
        assert!(text.contains("hls_swarm_segment_requests_total 40\n"));
        assert!(text.contains("hls_swarm_requests_total{kind=\"segment\"} 40\n"));
        assert!(text.contains("hls_swarm_http_errors_total{status_code=\"404\"} 2\n"));
        assert!(text.contains("hls_swarm_client_exits_total{cause=\"stop\",code=\"255\"} 3\n"));
        assert!(text.contains("stream_url=\"http://h/\\\"x\\\".m3u8\""));
        assert!(text.contains("hls_swarm_error_rate 0.03333"));
        assert_grouped(&text);
        // The origin's families (all figures known) keep the same grouping.
        let origin = OriginSnapshot {
            cpu_percent: Some(12.5),
            mem_used_bytes: Some(1 << 20),
            mem_total_bytes: Some(1 << 30),
            net_rx_bytes_per_second: Some(10.0),
            net_tx_bytes_per_second: Some(20.0),
            active_connections: Some(3),
            requests_per_second: Some(4.0),
            nginx_up: Some(true),
            ..OriginSnapshot::default()
        };
        let text = render(&s, Some(&origin), &labels);
        assert!(text.contains("hls_swarm_origin_exporter_up{exporter=\"nginx\"} 0\n"));
        assert!(text.contains("hls_swarm_origin_nginx_requests_per_second 4\n"));
        assert!(!text.contains("hls_swarm_origin_energy"), "no energy figure, no series");
        assert_grouped(&text);
        // Energy is exported labelled with its source, an estimate never bare.
        let estimate = crate::measure::energy::EnergyRun {
            source: crate::measure::energy::Source::Estimate { watts_per_core: 10.0, busy_cpu_seconds: 4.0 },
            joules: 40.0,
            seconds: 8.0,
            watts_peak: 7.0,
            watts_last: 6.0,
        };
        let origin = OriginSnapshot { energy: crate::measure::energy::Energy::Known(estimate), ..origin };
        let text = render(&s, Some(&origin), &labels);
        assert!(text.contains("hls_swarm_origin_energy_joules_total{source=\"estimate\"} 40\n"), "{text}");
        assert!(text.contains("hls_swarm_origin_power_watts{source=\"estimate\"} 6\n"), "{text}");
        assert_grouped(&text);
    }

    /// The text format's structure: every family has one HELP line right before its one TYPE
    /// line, and every sample (a histogram's `_bucket`, `_sum`, `_count` included) follows its
    /// own family's TYPE line, before the next family starts, with a finite number as value.
    fn assert_grouped(text: &str) {
        let mut declared = std::collections::HashSet::new();
        let mut help: Option<&str> = None;
        let mut current: Option<(&str, &str)> = None;
        let mut samples = 0;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                help = rest.split_whitespace().next();
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut words = rest.split_whitespace();
                let (name, kind) = (words.next().unwrap(), words.next().unwrap());
                assert_eq!(help.take(), Some(name), "the line before TYPE {name} is not its HELP");
                assert!(declared.insert(name), "{name} is declared twice");
                current = Some((name, kind));
            } else {
                help = None;
                let name = line.split(['{', ' ']).next().unwrap();
                let (family, kind) = current.unwrap_or_else(|| panic!("{name} comes before any TYPE line"));
                let part_of_histogram = kind == "histogram"
                    && ["_bucket", "_sum", "_count"].iter().any(|s| name.strip_suffix(s) == Some(family));
                assert!(name == family || part_of_histogram, "{name} follows the TYPE line of {family}");
                let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
                assert!(value.is_finite(), "{line}");
                samples += 1;
            }
        }
        assert!(samples > 50, "only {samples} samples");
    }
}
