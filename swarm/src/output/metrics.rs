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
use prometheus::proto::{Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::measure::events::RequestKind;
use crate::measure::latency::{Latency, BUCKETS};
use crate::measure::origin::OriginSnapshot;
use crate::measure::snapshot::Snapshot;

/// Fixed facts about the run shown in `hls_swarm_info` and the duration gauges.
#[derive(Debug, Clone)]
pub struct RunLabels {
    /// Stream URL.
    pub stream_url: String,
    /// `--variant`.
    pub variant: String,
    /// FFmpeg version number.
    pub ffmpeg: String,
    /// `--duration` in seconds, if set.
    pub duration: Option<f64>,
    /// `--measure`.
    pub measure: String,
}

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

/// The families of one exposition, built in order: each [`Families::family`] starts one,
/// whose samples follow.
struct Families(Vec<MetricFamily>);

impl Families {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let mut f = MetricFamily::default();
        f.set_name(format!("hls_swarm_{name}"));
        f.set_help(help.to_owned());
        f.set_field_type(match kind {
            "counter" => MetricType::COUNTER,
            "histogram" => MetricType::HISTOGRAM,
            _ => MetricType::GAUGE,
        });
        self.0.push(f);
    }

    fn push(&mut self, labels: &[(&str, &str)], fill: impl FnOnce(&mut Metric, MetricType)) {
        let Some(f) = self.0.last_mut() else { return };
        let mut m = Metric::default();
        m.set_label(
            labels
                .iter()
                .map(|(k, v)| {
                    let mut p = LabelPair::default();
                    p.set_name((*k).to_owned());
                    p.set_value((*v).to_owned());
                    p
                })
                .collect(),
        );
        fill(&mut m, f.get_field_type());
        f.mut_metric().push(m);
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        self.push(labels, |m, kind| {
            if kind == MetricType::COUNTER {
                let mut c = Counter::default();
                c.set_value(value);
                m.set_counter(c);
            } else {
                let mut g = Gauge::default();
                g.set_value(value);
                m.set_gauge(g);
            }
        });
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(&[], value);
    }

    /// A histogram series: cumulative counts at [`BUCKETS`] (`+Inf` is the count), sum and
    /// count.
    fn histogram(&mut self, labels: &[(&str, &str)], l: &Latency) {
        self.push(labels, |m, _| {
            let mut h = Histogram::default();
            h.set_sample_count(l.count);
            h.set_sample_sum(l.sum);
            h.set_bucket(
                BUCKETS
                    .iter()
                    .enumerate()
                    .map(|(i, le)| {
                        let mut b = Bucket::default();
                        b.set_upper_bound(*le);
                        b.set_cumulative_count(l.buckets.get(i).copied().unwrap_or(0));
                        b
                    })
                    .collect(),
            );
            m.set_histogram(h);
        });
    }
}

/// The whole exposition for one snapshot (and the origin's, when it is scraped).
#[must_use]
#[allow(clippy::cast_precision_loss, clippy::too_many_lines)]
pub fn families(s: &Snapshot, origin: Option<&OriginSnapshot>, l: &RunLabels) -> Vec<MetricFamily> {
    let mut o = Families(Vec::with_capacity(80));
    o.family("info", "gauge", "Constant 1, labelled with the run's settings.");
    o.sample(
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("stream_url", &l.stream_url),
            ("variant", &l.variant),
            ("ffmpeg", &l.ffmpeg),
            ("measure", &l.measure),
        ],
        1.0,
    );

    // Viewers.
    o.one("target_clients", "gauge", "Viewers asked for (--clients).", f64::from(s.target));
    o.one("active_clients", "gauge", "Viewers whose FFmpeg process is running.", f64::from(s.running));
    o.one(
        "streaming_clients",
        "gauge",
        "Running viewers that received a segment in the last 10 seconds.",
        f64::from(s.streaming),
    );
    o.one(
        "stalled_clients",
        "gauge",
        "Running viewers whose player model is stalled now (buffer empty).",
        f64::from(s.playback.stalled_now),
    );
    o.one("backoff_clients", "gauge", "Viewers waiting to restart after an exit.", f64::from(s.backoff));
    o.one("ended_clients", "gauge", "Viewers whose finite stream ended.", f64::from(s.ended));
    let progress = if s.target == 0 { 0.0 } else { f64::from(s.started) / f64::from(s.target) };
    o.one("ramp_progress", "gauge", "Fraction of viewers started (0 to 1).", progress);
    o.one("test_elapsed_seconds", "gauge", "Time since the run started.", s.elapsed.as_secs_f64());
    let remaining = l.duration.map_or(-1.0, |d| (d - s.elapsed.as_secs_f64()).max(0.0));
    o.one("test_remaining_seconds", "gauge", "Time left of --duration; -1 when unlimited.", remaining);
    o.one("test_duration_seconds", "gauge", "--duration; 0 when unlimited.", l.duration.unwrap_or(0.0));

    // Processes.
    o.one(
        "client_starts_total",
        "counter",
        "FFmpeg processes started (first starts and restarts).",
        s.process_starts as f64,
    );
    o.one(
        "client_restarts_total",
        "counter",
        "FFmpeg processes started after the first, per viewer.",
        s.restarts as f64,
    );
    o.one(
        "stall_restarts_total",
        "counter",
        "Processes restarted by --restart-on-stall.",
        s.stall_restarts as f64,
    );
    o.one(
        "spawn_failures_total",
        "counter",
        "FFmpeg processes that could not be started.",
        s.spawn_failures as f64,
    );
    o.family(
        "client_exits_total",
        "counter",
        "FFmpeg process exits by cause (own: by itself; stop: we stopped it) and exit code.",
    );
    for (cause, map) in [("own", &s.exits_unexpected), ("stop", &s.exits_on_stop)] {
        // One series per code (an exit 137 and a SIGKILL share one).
        let mut by_code = std::collections::BTreeMap::new();
        for (ending, n) in map {
            *by_code.entry(ending.code).or_insert(0u64) += n;
        }
        for (code, n) in by_code {
            o.sample(&[("cause", cause), ("code", &code.to_string())], n as f64);
        }
    }

    // Requests.
    o.family("requests_total", "counter", "Requests by kind (master, playlist, segment, init, key, other).");
    for kind in RequestKind::ALL {
        o.sample(&[("kind", kind.label())], s.requests_of(kind) as f64);
    }
    o.one(
        "manifest_requests_total",
        "counter",
        "Playlist requests, master and media.",
        s.playlist_requests() as f64,
    );
    o.one(
        "segment_requests_total",
        "counter",
        "Segment requests.",
        s.requests_of(RequestKind::Segment) as f64,
    );
    o.one(
        "init_requests_total",
        "counter",
        "Init section requests.",
        s.requests_of(RequestKind::Init) as f64,
    );
    o.one(
        "unknown_requests_total",
        "counter",
        "Requests that are neither playlists, segments, init sections nor keys.",
        s.requests_of(RequestKind::Other) as f64,
    );
    o.one(
        "manifest_requests_per_second",
        "gauge",
        "Playlist requests per second over the last 5 seconds.",
        s.rate_of(RequestKind::Playlist) + s.rate_of(RequestKind::Master),
    );
    o.one(
        "segment_requests_per_second",
        "gauge",
        "Segment requests per second over the last 5 seconds.",
        s.rate_of(RequestKind::Segment),
    );

    // Bytes and throughput (relay).
    o.family("response_bytes_total", "counter", "Response body bytes received from the origin, by kind.");
    for kind in RequestKind::ALL {
        o.sample(&[("kind", kind.label())], s.bytes_of(kind) as f64);
    }
    let all_bytes: u64 = s.bytes.values().sum();
    o.one("bytes_downloaded_total", "counter", "Response body bytes received, all kinds.", all_bytes as f64);
    o.one(
        "segment_bytes_downloaded_total",
        "counter",
        "Segment body bytes received.",
        s.bytes_of(RequestKind::Segment) as f64,
    );
    o.one(
        "throughput_bytes_per_second",
        "gauge",
        "Response bytes per second over the last whole second.",
        s.throughput.w1,
    );
    for (w, v) in [
        ("1s", s.segment_throughput.w1),
        ("30s", s.segment_throughput.w30),
        ("60s", s.segment_throughput.w60),
        ("300s", s.segment_throughput.w300),
    ] {
        o.one(
            &format!("segment_throughput_{w}_bytes_per_second"),
            "gauge",
            &format!("Segment bytes per second over the last {w} (whole seconds)."),
            v,
        );
    }

    // Latency (relay).
    o.family(
        "request_duration_seconds",
        "histogram",
        "Request to last body byte (the whole download), by kind.",
    );
    for (kind, lat) in &s.ttlb {
        o.histogram(&[("kind", kind.label())], lat);
    }
    o.family("time_to_first_byte_seconds", "histogram", "Request to first response byte, by kind.");
    for (kind, lat) in &s.ttfb {
        o.histogram(&[("kind", kind.label())], lat);
    }
    o.family("upstream_connect_seconds", "histogram", "TCP connection set-up to the origin.");
    o.histogram(&[], &s.connect);
    let recent = &s.segment_ttlb_recent;
    for (q, v) in [("p50", recent.p50), ("p95", recent.p95), ("p99", recent.p99), ("max", recent.max)] {
        o.one(
            &format!("inferred_latency_{q}_seconds"),
            "gauge",
            &format!(
                "Segment download time {q} over the last 30 s. Measured by the relay despite the name (kept for dashboards of the Go tool)."
            ),
            v,
        );
    }

    // Playback (player model).
    o.family(
        "startup_seconds",
        "histogram",
        "First request of a viewer to its first segment buffered (relay only).",
    );
    o.histogram(&[], &s.startup);
    o.family(
        "rejoin_seconds",
        "histogram",
        "First request of a later session to its first segment buffered.",
    );
    o.histogram(&[], &s.rejoin);
    let p = &s.playback;
    o.one(
        "rejoins_total",
        "counter",
        "Later sessions that reached playback again after an exit.",
        p.rejoins as f64,
    );
    o.one(
        "failed_starts",
        "gauge",
        "Viewers that had not played --startup-timeout after they started.",
        f64::from(p.failed_starts),
    );
    o.one(
        "stalls_total",
        "counter",
        "Player-model stalls (the buffer ran dry, also with its process gone), finished and ongoing.",
        p.stalls as f64,
    );
    o.one(
        "stall_seconds_total",
        "counter",
        "Seconds viewers did not play after their first playback (and failed starts' waits).",
        p.stall_seconds,
    );
    o.one(
        "watch_seconds_total",
        "counter",
        "Seconds since each viewer's first playback (or start, for a failed start), summed.",
        p.watch_seconds,
    );
    o.one(
        "interruptions_total",
        "counter",
        "Sessions that ended by themselves (or were restarted for a stall) after playing.",
        p.interruptions as f64,
    );
    o.one(
        "process_down_seconds_total",
        "counter",
        "Seconds viewers had no process, from a session's end to the next one's start.",
        p.down_seconds,
    );
    o.one("stall_ratio", "gauge", "stall_seconds_total / watch_seconds_total.", p.stall_ratio());
    o.one(
        "late_segments_total",
        "counter",
        "Segments whose download took longer than their media duration.",
        p.late_segments as f64,
    );

    // Errors.
    o.family("http_errors_total", "counter", "HTTP error responses (status >= 400), by status code.");
    for (status, n) in &s.http_errors {
        o.sample(&[("status_code", &status.to_string())], *n as f64);
    }
    o.one(
        "network_errors_total",
        "counter",
        "Requests that got no complete response: connection refused, reset or timed out.",
        s.network_errors as f64,
    );
    o.one("segments_skipped_total", "counter", "Segments FFmpeg gave up on.", s.segments_skipped as f64);
    o.one(
        "error_rate",
        "gauge",
        "(HTTP errors + network errors) / requests, over the whole run.",
        s.error_rate(),
    );
    o.one(
        "tunnels_total",
        "counter",
        "HTTPS CONNECT tunnels closed (contents not visible).",
        s.tunnels.count as f64,
    );
    o.family("tunnel_bytes_total", "counter", "Bytes through HTTPS tunnels, by direction.");
    o.sample(&[("direction", "down")], s.tunnels.bytes_down as f64);
    o.sample(&[("direction", "up")], s.tunnels.bytes_up as f64);

    // The stats pipeline itself.
    o.one(
        "stats_events_dropped_total",
        "counter",
        "Events lost because the stats task fell behind.",
        s.dropped_events as f64,
    );
    o.one("stats_drop_rate", "gauge", "Events lost / events produced, over the whole run.", s.drop_rate());

    if let Some(origin) = origin {
        origin_families(&mut o, origin);
    }
    o.0
}

#[allow(clippy::cast_precision_loss)]
fn origin_families(o: &mut Families, r: &OriginSnapshot) {
    // Each family's samples follow its own HELP and TYPE lines (the text format's grouping).
    o.family("origin_exporter_up", "gauge", "1 if the last scrape of the origin's exporter worked.");
    for (name, h) in [("node", &r.node), ("nginx", &r.nginx)] {
        o.sample(&[("exporter", name)], if h.ok { 1.0 } else { 0.0 });
    }
    o.family("origin_scrapes_total", "counter", "Scrapes of the origin's exporters, by result.");
    for (name, h) in [("node", &r.node), ("nginx", &r.nginx)] {
        o.sample(&[("exporter", name), ("result", "ok")], h.scrapes_ok as f64);
        o.sample(&[("exporter", name), ("result", "failed")], h.scrapes_failed as f64);
    }
    let gauges: [(&str, &str, Option<f64>); 7] = [
        (
            "origin_cpu_percent",
            "Origin CPU load between the last two scrapes, percent of all CPUs.",
            r.cpu_percent,
        ),
        (
            "origin_memory_used_bytes",
            "Origin memory in use (MemTotal - MemAvailable).",
            r.mem_used_bytes.map(|v| v as f64),
        ),
        ("origin_memory_total_bytes", "Origin memory.", r.mem_total_bytes.map(|v| v as f64)),
        (
            "origin_network_receive_bytes_per_second",
            "Origin bytes received per second (all devices but lo) between the last two scrapes.",
            r.net_rx_bytes_per_second,
        ),
        (
            "origin_network_transmit_bytes_per_second",
            "Origin bytes sent per second (all devices but lo) between the last two scrapes.",
            r.net_tx_bytes_per_second,
        ),
        (
            "origin_nginx_active_connections",
            "nginx active connections (includes the exporter's own).",
            r.active_connections.map(|v| v as f64),
        ),
        (
            "origin_nginx_requests_per_second",
            "nginx requests per second between the last two scrapes.",
            r.requests_per_second,
        ),
    ];
    for (name, help, value) in gauges {
        // A figure not known yet (rates need two scrapes) is left out rather than faked.
        if let Some(v) = value {
            o.one(name, "gauge", help, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::events::Ending;

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
        };
        let text = render(&s, None, &labels);
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
