//! The report page's sections about playback, errors, the origin, the swarm's machine and the
//! notices.

use std::fmt::Write as _;

use super::build::Report;
use super::markup::{escape, facts, opt, percent, size, table};
use super::model::{Exporter, Level};
use crate::measure::energy::joules;
use crate::output::summary::{bitrate, bytes, seconds};

pub(super) fn playback(o: &mut String, r: &Report) {
    let p = &r.playback;
    o.push_str("<h2>Playback</h2>");
    if p.inferred {
        o.push_str("<p class=\"meta\">Inferred from FFmpeg's log: each segment request counted as one target duration.</p>");
    }
    let dist = |q: Option<&super::model::Quantiles>, what: &str| {
        q.map_or_else(
            || if p.inferred { "not measured with --measure log".to_owned() } else { "none".to_owned() },
            |s| {
                format!(
                    "p50 {} · p90 {} · p95 {} · p99 {} · max {} ({} {what})",
                    seconds(s.p50),
                    seconds(s.p90),
                    seconds(s.p95),
                    seconds(s.p99),
                    seconds(s.max),
                    s.count
                )
            },
        )
    };
    facts(
        o,
        &[
            (
                "viewers that played",
                format!("{} ({} failed to start in time)", p.viewers_started, p.failed_starts),
            ),
            ("startup (first request to first segment)", dist(p.startup.as_ref(), "viewers")),
            ("re-joins after an exit", format!("{}: {}", p.rejoins, dist(p.rejoin.as_ref(), "sessions"))),
            (
                "behind the live edge",
                p.live_edge_latency.as_ref().map_or_else(
                    || "not measured (no EXT-X-PROGRAM-DATE-TIME in the playlists)".to_owned(),
                    |_| dist(p.live_edge_latency.as_ref(), "samples"),
                ),
            ),
            ("stalls", p.stalls.to_string()),
            (
                "stalled",
                format!(
                    "{:.1} s of {:.1} s watched (stall ratio {})",
                    p.stall_seconds,
                    p.watch_seconds,
                    percent(p.stall_ratio)
                ),
            ),
            ("late segments", p.late_segments.to_string()),
            (
                "interruptions",
                format!(
                    "{} sessions ended after playing · {:.1} s with no viewer process",
                    p.interruptions, p.process_down_seconds
                ),
            ),
            (
                "playlist refreshes",
                opt(p.playlist_refreshes_per_minute, |m| format!("{m:.1} per viewer per minute")),
            ),
        ],
    );
}

pub(super) fn variants(o: &mut String, r: &Report) {
    let Some(v) = &r.variants else { return };
    o.push_str("<h2>Variants</h2>");
    facts(
        o,
        &[
            ("switches", format!("{} up · {} down", v.switches_up, v.switches_down)),
            (
                "delivered",
                opt(v.delivered_bits_per_second, |b| {
                    format!("{} (segment bits per second of media)", bitrate(b))
                }),
            ),
            (
                "advertised",
                opt(v.advertised_bits_per_second, |b| {
                    format!("{} (BANDWIDTH, weighted by time)", bitrate(b))
                }),
            ),
        ],
    );
    let rows: Vec<Vec<String>> = v
        .renditions
        .iter()
        .map(|x| {
            #[allow(clippy::cast_precision_loss)]
            let bw = x.bandwidth as f64;
            vec![
                bitrate(bw),
                x.segments.to_string(),
                seconds(x.media_seconds),
                percent(x.share),
                size(x.bytes),
            ]
        })
        .collect();
    table(o, &["BANDWIDTH", "segments", "media time", "share", "bytes"], &rows);
}

pub(super) fn streams(o: &mut String, r: &Report) {
    if r.streams.is_empty() {
        return;
    }
    o.push_str("<h2>Streams</h2>");
    let p50 = |q: Option<&super::model::Quantiles>| q.map_or_else(|| "—".to_owned(), |q| seconds(q.p50));
    let rows: Vec<Vec<String>> = r
        .streams
        .iter()
        .map(|x| {
            let count = |k: &str| x.requests.get(k).copied().unwrap_or(0);
            vec![
                escape(&x.url),
                x.weight.to_string(),
                format!("{} ({} started)", x.viewers, x.started),
                (count("master") + count("playlist")).to_string(),
                count("segment").to_string(),
                x.bytes.map_or_else(|| "not measured".to_owned(), size),
                (x.http_4xx + x.http_5xx + x.network_errors).to_string(),
                p50(x.startup.as_ref()),
                p50(x.segment_download.as_ref()),
                format!("{} ({})", x.stalls, percent(x.stall_ratio)),
            ]
        })
        .collect();
    table(
        o,
        &[
            "stream",
            "weight",
            "viewers",
            "playlists",
            "segments",
            "bytes",
            "errors",
            "startup p50",
            "segment download p50",
            "stalls (ratio)",
        ],
        &rows,
    );
}

pub(super) fn errors(o: &mut String, r: &Report) {
    let e = &r.errors;
    o.push_str("<h2>Errors</h2>");
    let by_status = if e.by_status.is_empty() {
        "none".to_owned()
    } else {
        e.by_status.iter().map(|(s, n)| format!("{} × {n}", escape(s))).collect::<Vec<_>>().join(", ")
    };
    facts(
        o,
        &[
            ("error rate", percent(e.error_rate)),
            ("HTTP 4xx", e.http_4xx.to_string()),
            ("HTTP 5xx", e.http_5xx.to_string()),
            ("by status", by_status),
            ("network", e.network.to_string()),
            ("segments skipped", e.segments_skipped.to_string()),
        ],
    );
}

pub(super) fn generator(o: &mut String, r: &Report) {
    let g = &r.generator;
    o.push_str("<h2>The swarm's machine</h2>");
    if g.bound {
        let _ = write!(
            o,
            "<p class=\"verdict fail\">Generator-bound: {}. These figures measure this machine as much as the origin.</p>",
            escape(&g.reasons.join(", "))
        );
    }
    facts(
        o,
        &[
            ("host CPU peak", opt(g.host_cpu_peak, percent)),
            ("host above 85 % for", seconds(g.host_busy_longest_seconds)),
            ("hls-swarm's own CPU", opt(g.process_cpu_cores_mean, |c| format!("{c:.2} cores"))),
            ("latest stats tick", seconds(g.stats_tick_lag_max_seconds)),
        ],
    );
}

pub(super) fn origin(o: &mut String, r: &Report) {
    let Some(g) = &r.origin else { return };
    o.push_str("<h2>Origin</h2>");
    let exporter = |e: &Exporter| {
        let state = if e.ok { "up" } else { "down" };
        let error = e.error.as_deref().map_or_else(String::new, |m| format!(" · {}", escape(m)));
        format!("{state} · {} scrapes ok, {} failed{error}", e.scrapes_ok, e.scrapes_failed)
    };
    let memory = match (g.memory_used_bytes, g.memory_total_bytes) {
        #[allow(clippy::cast_precision_loss)]
        (Some(u), Some(t)) => format!("{} of {}", bytes(u as f64), bytes(t as f64)),
        _ => "n/a".to_owned(),
    };
    facts(
        o,
        &[
            ("node exporter", exporter(&g.node)),
            ("nginx exporter", exporter(&g.nginx)),
            (
                "CPU load over the run",
                format!(
                    "mean {} · peak {}",
                    opt(g.run.cpu_load_mean, percent),
                    opt(g.run.cpu_load_peak, percent)
                ),
            ),
            ("memory at the end", memory),
            (
                "network over the run",
                match (g.network_scope, g.run.network_transmit_bytes, g.run.network_receive_bytes) {
                    (super::model::NetworkScope::Loopback, _, _) => {
                        "on loopback: lo carries the swarm's own traffic too (see the bytes the relay measured)"
                            .to_owned()
                    }
                    (_, Some(tx), Some(rx)) => format!("sent {} · received {}", size(tx), size(rx)),
                    _ => "n/a".to_owned(),
                },
            ),
            ("nginx requests over the run", g.run.nginx_requests.to_string()),
            ("nginx peak active connections", opt(g.run.nginx_peak_active_connections, |n| n.to_string())),
            ("energy over the run", energy(&g.energy)),
        ],
    );
}

/// The origin's energy: the figures with how they were obtained, or why there are none.
fn energy(e: &super::hosts::OriginEnergy) -> String {
    let (Some(formula), Some(j), Some(s), Some(mean), Some(peak)) =
        (&e.formula, e.joules, e.seconds, e.watts_mean, e.watts_peak)
    else {
        return format!("unavailable: {}", escape(e.unavailable_reason.as_deref().unwrap_or("not measured")));
    };
    format!(
        "{} · {mean:.1} W mean · {peak:.1} W peak · {} over {s:.1} s · {} per viewer-hour · {} per GB (10<sup>9</sup> bytes)",
        escape(formula),
        joules(j),
        opt(e.joules_per_viewer_hour, joules),
        opt(e.joules_per_gigabyte, joules)
    )
}

pub(super) fn notices(o: &mut String, r: &Report) {
    o.push_str("<h2>Notices</h2>");
    if r.notices.is_empty() {
        o.push_str("<p class=\"meta\">None.</p>");
        return;
    }
    let rows: Vec<Vec<String>> = r
        .notices
        .iter()
        .map(|n| {
            let (class, level) = match n.level {
                Level::Info => ("", "info"),
                Level::Warn => ("warn", "warn"),
                Level::Error => ("error", "error"),
            };
            let mut text = escape(&n.text);
            if !n.detail.is_empty() {
                let _ = write!(text, "<pre>{}</pre>", escape(&n.detail.join("\n")));
            }
            vec![
                format!("{:.1} s", n.at_seconds),
                format!("<span class=\"{class}\">{level}</span>"),
                n.viewer.map_or_else(|| "all".to_owned(), |v| v.to_string()),
                text,
                n.repeats.to_string(),
            ]
        })
        .collect();
    table(o, &["at", "level", "viewer", "event", "times"], &rows);
}
