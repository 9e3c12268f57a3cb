//! Every `hls_swarm_*` family, built from one snapshot (and the origin's figures).

use prometheus::proto::{Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType};

use crate::measure::events::RequestKind;
use crate::measure::latency::{Latency, BUCKETS};
use crate::measure::origin::OriginSnapshot;
use crate::measure::snapshot::Snapshot;
use crate::measure::streams::StreamFigures;

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
    /// With several streams, each one's `stream` label: its URL, secrets hidden (at most
    /// `control::streams::MAX_STREAMS`); empty with one stream.
    pub streams: Vec<String>,
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
    o.family(
        "requests_total",
        "counter",
        "Requests by kind (master, playlist, segment, init, key, other, part, blocking_reload).",
    );
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
        "Playlist requests per second over the last 5 seconds (master, media, LL-HLS blocking reloads).",
        s.playlist_rate(),
    );
    o.one(
        "segment_requests_per_second",
        "gauge",
        "Segment requests per second over the last 5 seconds.",
        s.rate_of(RequestKind::Segment),
    );
    o.one(
        "part_requests_per_second",
        "gauge",
        "LL-HLS part requests per second over the last 5 seconds.",
        s.rate_of(RequestKind::Part),
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
    o.family("upstream_tls_handshake_seconds", "histogram", "TLS handshake with an https origin.");
    o.histogram(&[], &s.tls_handshake);
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
        "live_edge_latency_seconds",
        "histogram",
        "How far behind the live edge viewers play (wall time minus the program date-time playing), at each segment.",
    );
    o.histogram(&[], &s.live_latency);
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
        "zaps_total",
        "counter",
        "Sessions that ended at their --session-length (the viewer left and a new session started).",
        p.zaps as f64,
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
    o.family(
        "variant_switches_total",
        "counter",
        "Variant switches of adaptive viewers (--variant abr), by direction.",
    );
    o.sample(&[("direction", "up")], s.switches.up as f64);
    o.sample(&[("direction", "down")], s.switches.down as f64);
    variants(&mut o, s);

    // Low-Latency HLS (native viewers).
    o.one(
        "llhls_sessions_total",
        "counter",
        "Tracks that played in LL-HLS mode (parts and blocking reloads; native viewers).",
        s.ll_hls.sessions as f64,
    );
    o.family(
        "llhls_conformance_violations_total",
        "counter",
        "LL-HLS conformance violations seen by the viewers, by rule.",
    );
    for rule in crate::measure::events::Violation::ALL {
        o.sample(&[("rule", rule.label())], s.ll_hls.conformance.get(rule) as f64);
    }
    o.family(
        "llhls_rendition_switches_total",
        "counter",
        "LL-HLS rendition switches of adaptive viewers (--variant abr), by how the new rendition \
         was joined: from the old playlist's rendition report (one blocking reload) or by a plain load.",
    );
    o.sample(&[("joined", "report")], s.ll_hls.switches_from_report as f64);
    o.sample(&[("joined", "plain_load")], s.ll_hls.switches_plain as f64);

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
        "CONNECT tunnels passed through blind, closed (contents not visible).",
        s.tunnels.count as f64,
    );
    o.family("tunnel_bytes_total", "counter", "Bytes through blind CONNECT tunnels, by direction.");
    o.sample(&[("direction", "down")], s.tunnels.bytes_down as f64);
    o.sample(&[("direction", "up")], s.tunnels.bytes_up as f64);

    // The generator itself.
    let g = &s.generator;
    o.one(
        "generator_bound",
        "gauge",
        "1 if the swarm's own machine was the bottleneck (host CPU > 85 % for 10 s, dropped events, a start 1 s late, a tick 1 s late).",
        if g.bound { 1.0 } else { 0.0 },
    );
    if let Some(host) = g.host_cpu {
        o.one(
            "host_cpu_ratio",
            "gauge",
            "The swarm host's CPU busy fraction over the last half second.",
            host,
        );
    }
    if let Some(cores) = g.process_cpu {
        o.one(
            "process_cpu_cores",
            "gauge",
            "The swarm process's CPU use over the last half second, in cores.",
            cores,
        );
    }
    o.one(
        "stats_tick_lag_max_seconds",
        "gauge",
        "The latest stats tick against its schedule.",
        g.tick_lag_max.as_secs_f64(),
    );

    // The stats pipeline itself.
    o.one(
        "stats_events_dropped_total",
        "counter",
        "Events lost because the stats task fell behind.",
        s.dropped_events as f64,
    );
    o.one("stats_drop_rate", "gauge", "Events lost / events produced, over the whole run.", s.drop_rate());

    stream_families(&mut o, s, &l.streams);
    if let Some(origin) = origin {
        origin_families(&mut o, origin);
    }
    o.0
}

/// One of a stream's latency distributions.
type PickLatency = fn(&StreamFigures) -> &Latency;

/// With several streams, each one's figures under a `stream` label (its URL); nothing with one.
#[allow(clippy::cast_precision_loss)]
fn stream_families(o: &mut Families, s: &Snapshot, names: &[String]) {
    if s.streams.is_empty() {
        return;
    }
    let each = s.streams.iter().zip(names);
    o.family("stream_viewers", "gauge", "Viewers dealt to each stream (--stream weights).");
    for (f, n) in each.clone() {
        o.sample(&[("stream", n)], f64::from(f.viewers));
    }
    o.family(
        "stream_streaming_clients",
        "gauge",
        "A stream's viewers that received a segment in the last 10 seconds.",
    );
    for (f, n) in each.clone() {
        o.sample(&[("stream", n)], f64::from(f.streaming));
    }
    o.family("stream_requests_total", "counter", "A stream's requests by kind.");
    for (f, n) in each.clone() {
        for kind in RequestKind::ALL {
            o.sample(
                &[("stream", n), ("kind", kind.label())],
                f.requests.get(&kind).copied().unwrap_or(0) as f64,
            );
        }
    }
    o.family("stream_response_bytes_total", "counter", "A stream's response body bytes, all kinds.");
    for (f, n) in each.clone() {
        o.sample(&[("stream", n)], f.bytes.values().sum::<u64>() as f64);
    }
    o.family(
        "stream_errors_total",
        "counter",
        "A stream's failed requests by class (4xx, 5xx, network) and segments skipped after retries.",
    );
    for (f, n) in each.clone() {
        for (class, v) in [
            ("4xx", f.http_4xx),
            ("5xx", f.http_5xx),
            ("network", f.network_errors),
            ("skipped", f.segments_skipped),
        ] {
            o.sample(&[("stream", n), ("class", class)], v as f64);
        }
    }
    o.family("stream_stalls_total", "counter", "Player-model stalls of a stream's viewers.");
    for (f, n) in each.clone() {
        o.sample(&[("stream", n)], f.stalls as f64);
    }
    o.family("stream_stall_seconds_total", "counter", "Seconds a stream's viewers were stalled.");
    for (f, n) in each.clone() {
        o.sample(&[("stream", n)], f.stall_seconds);
    }
    o.family("stream_watch_seconds_total", "counter", "Seconds a stream's viewers watched.");
    for (f, n) in each.clone() {
        o.sample(&[("stream", n)], f.watch_seconds);
    }
    o.family("stream_zaps_total", "counter", "A stream's sessions that ended at their --session-length.");
    for (f, n) in each.clone() {
        o.sample(&[("stream", n)], f.zaps as f64);
    }
    let histograms: [(&str, &str, PickLatency); 4] = [
        ("stream_startup_seconds", "A stream's startups (first viewings and those after a zap).", |f| {
            &f.startup
        }),
        ("stream_segment_ttfb_seconds", "A stream's segment requests to their first byte.", |f| {
            &f.segment_ttfb
        }),
        ("stream_segment_download_seconds", "A stream's segment requests to their last byte.", |f| {
            &f.segment_ttlb
        }),
        (
            "stream_live_edge_latency_seconds",
            "How far behind the live edge a stream's viewers play, at each segment.",
            |f| &f.live_latency,
        ),
    ];
    for (name, help, pick) in histograms {
        o.family(name, "histogram", help);
        for (f, n) in each.clone() {
            o.histogram(&[("stream", n)], pick(f));
        }
    }
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
    // Energy only when known, labelled with where it comes from (an estimate is never bare).
    if let crate::measure::energy::Energy::Known(e) = &r.energy {
        let source = [("source", e.source_name())];
        o.family("origin_energy_joules_total", "counter", "Origin energy since the first scrape (source: rapl, measured; estimate: busy CPU-seconds x --origin-watts-per-core).");
        o.sample(&source, e.joules);
        o.family("origin_power_watts", "gauge", "Origin power between the last two node exporter scrapes.");
        o.sample(&source, e.watts_last);
    }
}

/// Variants get a `bandwidth` label each, at most this many; the rest share `other`.
pub const VARIANT_LABELS: usize = 32;

/// Media time and bytes fetched per variant (native viewers).
#[allow(clippy::cast_precision_loss)]
fn variants(o: &mut Families, s: &Snapshot) {
    let mut rows: Vec<(String, f64, u64)> = Vec::new();
    for (i, (bw, r)) in s.renditions.iter().enumerate() {
        if i < VARIANT_LABELS {
            rows.push((bw.to_string(), r.media_seconds, r.bytes));
        } else if let Some(other) = rows.get_mut(VARIANT_LABELS) {
            other.1 += r.media_seconds;
            other.2 += r.bytes;
        } else {
            rows.push(("other".to_owned(), r.media_seconds, r.bytes));
        }
    }
    o.family(
        "variant_media_seconds_total",
        "counter",
        "Media time of the segments fetched whole from each variant, by its BANDWIDTH (native viewers).",
    );
    for (bw, media, _) in &rows {
        o.sample(&[("bandwidth", bw)], *media);
    }
    o.family("variant_bytes_total", "counter", "Bytes of those segments, by the variant's BANDWIDTH.");
    for (bw, _, bytes) in &rows {
        o.sample(&[("bandwidth", bw)], *bytes as f64);
    }
}
