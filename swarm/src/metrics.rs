//! `/metrics` (Prometheus text format), `/health` and `/ready`, rendered from the latest
//! [`Snapshot`]. The exporter keeps no counters of its own: every value is read from the one
//! stats owner at scrape time.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::parser::RequestKind;
use crate::stats::Snapshot;

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
    pub async fn start(
        addr: SocketAddr,
        snapshots: watch::Receiver<Snapshot>,
        labels: RunLabels,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let labels = std::sync::Arc::new(labels);
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let snapshots = snapshots.clone();
                let labels = std::sync::Arc::clone(&labels);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let body = respond(&req, &snapshots.borrow(), &labels);
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

fn respond(req: &Request<Incoming>, s: &Snapshot, labels: &RunLabels) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match req.uri().path() {
        "/metrics" => (StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", render(s, labels)),
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

/// Escapes a label value for the text format.
fn esc(v: &str) -> String {
    v.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP hls_swarm_{name} {help}\n# TYPE hls_swarm_{name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &str, value: f64) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "hls_swarm_{name} {value}");
        } else {
            let _ = writeln!(self.0, "hls_swarm_{name}{{{labels}}} {value}");
        }
    }
    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, "", value);
    }
}

/// The whole exposition for one snapshot.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn render(s: &Snapshot, l: &RunLabels) -> String {
    let mut o = Out(String::with_capacity(4096));
    o.family("info", "gauge", "Constant 1, labelled with the run's settings.");
    o.sample(
        "info",
        &format!(
            "version=\"{}\",stream_url=\"{}\",variant=\"{}\",ffmpeg=\"{}\"",
            env!("CARGO_PKG_VERSION"),
            esc(&l.stream_url),
            esc(&l.variant),
            esc(&l.ffmpeg)
        ),
        1.0,
    );
    o.one("target_clients", "gauge", "Viewers asked for (--clients).", f64::from(s.target));
    o.one("active_clients", "gauge", "Viewers whose FFmpeg process is running.", f64::from(s.running));
    o.one(
        "streaming_clients",
        "gauge",
        "Running viewers that requested a segment in the last 10 seconds.",
        f64::from(s.streaming),
    );
    o.one("backoff_clients", "gauge", "Viewers waiting to restart after an exit.", f64::from(s.backoff));
    o.one("ended_clients", "gauge", "Viewers whose finite stream ended.", f64::from(s.ended));
    let progress = if s.target == 0 { 0.0 } else { f64::from(s.started) / f64::from(s.target) };
    o.one("ramp_progress", "gauge", "Fraction of viewers started (0 to 1).", progress);
    o.one("test_elapsed_seconds", "gauge", "Time since the run started.", s.elapsed.as_secs_f64());
    let remaining = l.duration.map_or(-1.0, |d| (d - s.elapsed.as_secs_f64()).max(0.0));
    o.one("test_remaining_seconds", "gauge", "Time left of --duration; -1 when unlimited.", remaining);
    o.one("test_duration_seconds", "gauge", "--duration; 0 when unlimited.", l.duration.unwrap_or(0.0));
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
        "spawn_failures_total",
        "counter",
        "FFmpeg processes that could not be started.",
        s.spawn_failures as f64,
    );
    o.one(
        "manifest_requests_total",
        "counter",
        "Playlist requests started (read from FFmpeg's log).",
        s.requests_of(RequestKind::Playlist) as f64,
    );
    o.one(
        "segment_requests_total",
        "counter",
        "Segment requests started (read from FFmpeg's log).",
        s.requests_of(RequestKind::Segment) as f64,
    );
    o.one(
        "manifest_requests_per_second",
        "gauge",
        "Playlist requests per second over the last 5 seconds.",
        s.rate_of(RequestKind::Playlist),
    );
    o.one(
        "segment_requests_per_second",
        "gauge",
        "Segment requests per second over the last 5 seconds.",
        s.rate_of(RequestKind::Segment),
    );
    o.family("http_errors_total", "counter", "HTTP error responses, by status code.");
    for (status, n) in &s.http_errors {
        o.sample("http_errors_total", &format!("status_code=\"{status}\""), *n as f64);
    }
    o.one("network_errors_total", "counter", "Failed or timed-out connections.", s.network_errors as f64);
    o.one("segments_skipped_total", "counter", "Segments FFmpeg gave up on.", s.segments_skipped as f64);
    o.family(
        "client_exits_total",
        "counter",
        "FFmpeg process exits by cause (own: by itself; stop: we stopped it).",
    );
    for (cause, map) in [("own", &s.exits_unexpected), ("stop", &s.exits_on_stop)] {
        for (exit, n) in map {
            o.sample(
                "client_exits_total",
                &format!("cause=\"{cause}\",code=\"{}\"", exit.shell_code()),
                *n as f64,
            );
        }
    }
    let requests: u64 = s.requests.values().sum();
    let errors: u64 = s.http_errors.values().sum::<u64>() + s.network_errors;
    let rate = if requests == 0 { 0.0 } else { errors as f64 / requests as f64 };
    o.one("error_rate", "gauge", "(HTTP errors + network errors) / requests, over the whole run.", rate);
    o.one(
        "stats_events_dropped_total",
        "counter",
        "Events lost because the stats task fell behind.",
        s.dropped_events as f64,
    );
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use procgroup::Exit;

    #[test]
    fn exposition_is_well_formed() {
        let mut s = Snapshot { target: 4, started: 4, running: 3, streaming: 3, ..Snapshot::default() };
        s.requests.insert(RequestKind::Segment, 40);
        s.requests.insert(RequestKind::Playlist, 20);
        s.http_errors.insert(404, 2);
        s.exits_unexpected.insert(Exit::Code(1), 1);
        s.exits_on_stop.insert(Exit::Code(255), 3);
        let labels = RunLabels {
            stream_url: "http://h/\"x\".m3u8".into(),
            variant: "all".into(),
            ffmpeg: "5.1.9".into(),
            duration: Some(30.0),
        };
        let text = render(&s, &labels);
        assert!(text.contains("hls_swarm_segment_requests_total 40\n"));
        assert!(text.contains("hls_swarm_http_errors_total{status_code=\"404\"} 2\n"));
        assert!(text.contains("hls_swarm_client_exits_total{cause=\"stop\",code=\"255\"} 3\n"));
        assert!(text.contains("stream_url=\"http://h/\\\"x\\\".m3u8\""));
        assert!(text.contains("hls_swarm_error_rate 0.03333"));
        // Every sample belongs to a family declared just before it.
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split_whitespace().next().unwrap().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(declared.contains(name), "{name} has no TYPE line");
            }
        }
    }
}
