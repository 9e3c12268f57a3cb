//! Human-readable text: the periodic status line and the end-of-run summary.

use std::fmt::Write as _;

use crate::measure::energy::{joules, Energy, Source, Unavailable};
use crate::measure::events::RequestKind;
use crate::measure::latency::Latency;
use crate::measure::origin::{NetScope, OriginSnapshot};
use crate::measure::snapshot::{Measure, Snapshot};

/// One line for logs and non-terminal output, e.g.
/// `[12s] streaming 20/20 stalled 0 seg/s 10.0 playlists/s 10.0 thr 1.2 MiB/s p95 3.1ms restarts 0 errors 0`
/// (with `parts/s` after `seg/s` once a viewer plays LL-HLS, whose blocking reloads are
/// playlists).
#[must_use]
pub fn status_line(s: &Snapshot) -> String {
    let mut line = format!(
        "[{}s] streaming {}/{} running {} backoff {} stalled {} seg/s {:.1}{} playlists/s {:.1}",
        s.elapsed.as_secs(),
        s.streaming,
        s.target,
        s.running,
        s.backoff,
        s.playback.stalled_now,
        s.rate_of(RequestKind::Segment),
        parts_rate(s).map_or_else(String::new, |r| format!(" parts/s {r:.1}")),
        s.playlist_rate(),
    );
    if s.measure == Measure::Relay {
        let _ = write!(line, " thr {}/s p95 {}", bytes(s.throughput.w30), seconds(s.segment_ttlb_recent.p95));
    }
    let _ = write!(line, " restarts {} errors {}", s.restarts, error_count(s));
    line
}

/// LL-HLS parts per second over the rate window, once a viewer plays LL-HLS.
#[must_use]
pub fn parts_rate(s: &Snapshot) -> Option<f64> {
    (s.ll_hls.sessions > 0).then(|| s.rate_of(RequestKind::Part))
}

/// `1.2 MiB`-style sizes.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Bits per second for people: `850 kb/s`, `4.20 Mb/s`.
#[must_use]
pub fn bitrate(bps: f64) -> String {
    if bps >= 1e6 {
        format!("{:.2} Mb/s", bps / 1e6)
    } else {
        format!("{:.0} kb/s", bps / 1e3)
    }
}

/// `3.1ms` / `1.25s`-style durations from seconds.
#[must_use]
pub fn seconds(s: f64) -> String {
    if s < 0.001 {
        format!("{:.0}µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1}ms", s * 1e3)
    } else {
        format!("{s:.2}s")
    }
}

fn quantiles(l: &Latency) -> String {
    if l.count == 0 {
        return "none".to_owned();
    }
    format!(
        "p50 {} · p95 {} · p99 {} · max {} ({} samples)",
        seconds(l.p50),
        seconds(l.p95),
        seconds(l.p99),
        seconds(l.max),
        l.count
    )
}

fn error_count(s: &Snapshot) -> u64 {
    s.http_errors.values().sum::<u64>() + s.network_errors + s.spawn_failures
}

/// What the run was asked to do, for the summary's header.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunFacts {
    /// Stream URL.
    pub url: String,
    /// What played the viewers: the FFmpeg version line, or the native player.
    pub ffmpeg: String,
    /// Who measured the requests (`the relay`, `the native player`).
    pub measured_by: std::borrow::Cow<'static, str>,
    /// What one start of a viewer is: `process` (FFmpeg) or `session` (native).
    pub start_unit: std::borrow::Cow<'static, str>,
    /// Asked ramp rate.
    pub ramp_rate: f64,
    /// Seconds from the first viewer start until the stop began.
    pub run_seconds: f64,
    /// True if the run ended before its duration: by a signal, or `q` on the dashboard.
    pub interrupted: bool,
    /// True if it was `q` (Esc, Ctrl+C) on the dashboard.
    pub quit_from_dashboard: bool,
    /// True if the run ended early because every viewer had played the (finite) stream to
    /// its end.
    pub all_ended: bool,
    /// Longest time from the end of the run until every viewer was reaped, in seconds.
    pub stop_seconds: f64,
    /// The media playlist's target duration, if the stream was examined and is live.
    pub target_duration: Option<f64>,
    /// Wall-clock time the run started (first viewer due).
    pub started: std::time::SystemTime,
    /// Asked run length (`None` = until stopped).
    pub duration: Option<f64>,
    /// `--startup-buffer` in seconds: media buffered before playback starts or resumes
    /// (`None`: one segment).
    pub startup_buffer: Option<f64>,
    /// `--http2` was asked for.
    pub http2: bool,
    /// With several streams (`--stream`), each one; empty with one.
    pub streams: Vec<StreamFact>,
    /// The run's name, shared by its shards (`--run-id`).
    #[serde(default)]
    pub run_id: String,
    /// This process's shard (`--shard`); `None` for a whole run (or a merged one).
    #[serde(default)]
    pub shard: Option<crate::measure::shard::Shard>,
    /// Seconds the start came after `--start-at`, when more than one.
    #[serde(default)]
    pub start_late_seconds: Option<f64>,
    /// The rendition choice asked for: `--variant` (`all`, `highest`, …) or the
    /// `--variant-mix` shares (`highest=20,abr=80`); `None` in reports that predate it.
    #[serde(default)]
    pub variant: Option<String>,
}

/// One stream of a run with several.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StreamFact {
    /// Its URL as it may be shown.
    pub url: String,
    /// Its weight.
    pub weight: u32,
}

/// The variants viewers played, when their segments' variants are known: switches, the
/// bitrate delivered (measured) and advertised, and the media time per variant.
fn variants(o: &mut String, s: &Snapshot) {
    if s.renditions.is_empty() {
        return;
    }
    let media: f64 = s.renditions.values().map(|r| r.media_seconds).sum();
    let _ = writeln!(
        o,
        "Variants          {} switches ({} up · {} down) · delivered {} (segment bits per media second) · advertised {} (time-weighted)",
        s.switches.up + s.switches.down,
        s.switches.up,
        s.switches.down,
        s.delivered_bitrate().map_or_else(|| "n/a".to_owned(), bitrate),
        s.advertised_bitrate().map_or_else(|| "n/a".to_owned(), bitrate),
    );
    // LL-HLS viewers fetch media as parts: each counts here as a segment does.
    let pieces = if s.requests_of(RequestKind::Part) > 0 { "segments and parts" } else { "segments" };
    for (bw, r) in s.renditions.iter().rev() {
        #[allow(clippy::cast_precision_loss)]
        let (bw, share) = (*bw as f64, if media > 0.0 { r.media_seconds / media * 100.0 } else { 0.0 });
        let _ = writeln!(
            o,
            "  {:<15} {:.1} s of media ({share:.1} %) · {} {pieces} · {}",
            bitrate(bw),
            r.media_seconds,
            r.segments,
            bytes(r.bytes as f64)
        );
    }
}

/// With several streams, each one's share: two lines of figures under its URL.
fn streams(o: &mut String, s: &Snapshot, facts: &RunFacts) {
    if s.streams.is_empty() {
        return;
    }
    let _ = writeln!(o, "Streams           {}, viewers dealt by weight:", s.streams.len());
    let p50 = |l: &Latency| if l.count == 0 { "none".to_owned() } else { seconds(l.p50) };
    for (i, f) in s.streams.iter().enumerate() {
        let (url, weight) = facts.streams.get(i).map_or(("", 1), |x| (x.url.as_str(), x.weight));
        let _ = writeln!(o, "  {} {url} (weight {weight})", i + 1);
        let _ = writeln!(
            o,
            "                  {} viewers · {} started · {} playlists · {} segments · {} HTTP 4xx · {} HTTP 5xx · {} network · {} segments skipped",
            f.viewers,
            f.started,
            f.playlists(),
            f.segments(),
            f.http_4xx,
            f.http_5xx,
            f.network_errors,
            f.segments_skipped
        );
        if s.measure == Measure::Log {
            let _ = writeln!(
                o,
                "                  {} stalls · stall ratio {:.4} (inferred) · bytes and times not measured (--measure log)",
                f.stalls,
                f.stall_ratio()
            );
            continue;
        }
        #[allow(clippy::cast_precision_loss)]
        let received = bytes(f.bytes.values().sum::<u64>() as f64);
        let _ = writeln!(
            o,
            "                  {received} · startup p50 {} · segment download p50 {} · {} stalls · stall ratio {:.4} · {} zaps",
            p50(&f.startup),
            p50(&f.segment_ttlb),
            f.stalls,
            f.stall_ratio(),
            f.zaps
        );
    }
}

/// The end-of-run summary.
#[must_use]
pub fn render(s: &Snapshot, facts: &RunFacts, origin: Option<&OriginSnapshot>) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "═══ hls-swarm summary ═══");
    let _ = writeln!(o, "Stream            {}", facts.url);
    let _ = writeln!(o, "Engine            {}", facts.ffmpeg);
    let how = match (facts.interrupted, facts.quit_from_dashboard, facts.all_ended) {
        (_, true, _) => "stopped from the dashboard",
        (true, false, _) => "stopped by signal",
        (false, false, true) => "every viewer played the stream to its end",
        (false, false, false) => "duration reached",
    };
    let _ = writeln!(
        o,
        "Run time          {:.1} s ({how}); all viewers reaped {:.2} s after the stop",
        facts.run_seconds, facts.stop_seconds
    );
    let unit = &facts.start_unit;
    let achieved = s.ramp_rate_achieved.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}/s"));
    #[allow(clippy::cast_precision_loss)]
    let mean_start = if s.process_starts == 0 {
        0.0
    } else {
        s.spawn_time_total.as_secs_f64() * 1000.0 / s.process_starts as f64
    };
    let _ = writeln!(
        o,
        "Ramp              target {:.2}/s, achieved {achieved} ; latest start {:.2} s behind plan; {unit} start mean {mean_start:.1} ms, max {:.1} ms",
        facts.ramp_rate,
        s.ramp_lag_max.as_secs_f64(),
        s.spawn_time_max.as_secs_f64() * 1000.0
    );
    let _ = writeln!(
        o,
        "Viewers           {} target · {} started · {} streaming at the end · {} stream ended",
        s.target,
        s.started,
        s.streaming_at_stop.unwrap_or(s.streaming),
        s.ended
    );
    let _ = writeln!(
        o,
        "Lifecycle         {} {unit} starts · {} restarts · {} stall restarts · {} start failures",
        s.process_starts, s.restarts, s.stall_restarts, s.spawn_failures
    );
    let how = match s.measure {
        Measure::Relay => format!("measured by {}", facts.measured_by),
        Measure::Log => "request starts read from FFmpeg's log; inferred".to_owned(),
    };
    let others: u64 =
        [RequestKind::Init, RequestKind::Key, RequestKind::Other].iter().map(|k| s.requests_of(*k)).sum();
    let (reloads, parts) = (s.requests_of(RequestKind::BlockingReload), s.requests_of(RequestKind::Part));
    // LL-HLS runs also count their blocking reloads (among the playlists) and parts.
    let (reloaded, parted) = if reloads > 0 || parts > 0 {
        (format!(", {reloads} blocking reloads"), format!(" · {parts} parts"))
    } else {
        (String::new(), String::new())
    };
    let _ = writeln!(
        o,
        "Requests          {} playlists ({} master{reloaded}) · {} segments{parted} · {} other ({how})",
        s.playlist_requests(),
        s.requests_of(RequestKind::Master),
        s.requests_of(RequestKind::Segment),
        others
    );
    if facts.http2 || s.protocols.contains_key(crate::measure::events::Protocol::Http2.name()) {
        let by: Vec<String> = s.protocols.iter().map(|(p, n)| format!("{n} on {p}")).collect();
        let by = if by.is_empty() { "no response".to_owned() } else { by.join(" · ") };
        let _ = writeln!(o, "Protocols         {by} (responses)");
    }
    if s.measure == Measure::Relay {
        let total: u64 = s.bytes.values().sum();
        #[allow(clippy::cast_precision_loss)]
        let run_rate = if facts.run_seconds > 0.0 { total as f64 / facts.run_seconds } else { 0.0 };
        #[allow(clippy::cast_precision_loss)]
        let all = total as f64;
        let _ = writeln!(
            o,
            "Bytes             {total} bytes ({}) · {} segment bytes · {} playlist bytes · {}/s over the run",
            bytes(all),
            s.bytes_of(RequestKind::Segment),
            s.bytes_of(RequestKind::Playlist) + s.bytes_of(RequestKind::Master),
            bytes(run_rate)
        );
        let empty = Latency::default();
        let get = |m: &'_ std::collections::BTreeMap<RequestKind, Latency>, k| {
            quantiles(m.get(&k).unwrap_or(&empty))
        };
        let _ = writeln!(o, "Segment TTFB      {}", get(&s.ttfb, RequestKind::Segment));
        let _ = writeln!(o, "Segment download  {}", get(&s.ttlb, RequestKind::Segment));
        let _ = writeln!(o, "Playlist TTFB     {}", get(&s.ttfb, RequestKind::Playlist));
        let _ = writeln!(o, "Playlist download {}", get(&s.ttlb, RequestKind::Playlist));
        if s.tls_handshake.count > 0 {
            let _ = writeln!(o, "TLS handshake     {} (to the origin)", quantiles(&s.tls_handshake));
        }
        if s.tunnels.count > 0 {
            let _ = writeln!(
                o,
                "Blind tunnels     {} ({} failed) · {} received; their requests are not visible",
                s.tunnels.count,
                s.tunnels.failed,
                bytes(s.tunnels.bytes_down as f64)
            );
        }
    }
    let p = &s.playback;
    if s.measure == Measure::Log {
        let _ = writeln!(
            o,
            "Startup           not measured: FFmpeg's log shows requests, not arrivals (--measure relay)"
        );
    } else {
        let until = facts.startup_buffer.map_or_else(String::new, |b| format!(" · until {b} s buffered"));
        let _ = writeln!(
            o,
            "Startup           {} · failed {} of {}{until}",
            quantiles(&s.startup),
            p.failed_starts,
            s.target
        );
        if s.live_latency.count > 0 {
            let _ = writeln!(
                o,
                "Live edge latency {} (wall time − program date-time playing)",
                quantiles(&s.live_latency)
            );
        } else {
            let _ =
                writeln!(o, "Live edge latency not measured: the playlists carry no EXT-X-PROGRAM-DATE-TIME");
        }
        ll_hls(&mut o, s);
        if p.rejoins > 0 {
            let _ = writeln!(o, "Re-joins          {} after an exit: {}", p.rejoins, quantiles(&s.rejoin));
        }
        if p.zaps > 0 {
            let _ = writeln!(
                o,
                "Zaps              {} sessions ended at --session-length · {} new viewings played (their startups are in Startup)",
                p.zaps, p.zap_starts
            );
        }
    }
    let inferred = if s.measure == Measure::Log {
        " (inferred: each segment request counted as one target duration)"
    } else {
        ""
    };
    let _ = writeln!(
        o,
        "Playback          {} stalls · {:.1} s stalled of {:.1} s watched (stall ratio {:.4}) · {} late segments{inferred}",
        p.stalls,
        p.stall_seconds,
        p.watch_seconds,
        p.stall_ratio(),
        p.late_segments
    );
    if p.interruptions > 0 || p.down_seconds > 0.0 {
        let _ = writeln!(
            o,
            "Interruptions     {} sessions ended after playing · {:.1} s with no viewer process",
            p.interruptions, p.down_seconds
        );
    }
    let reloads = s.requests_of(RequestKind::BlockingReload);
    if p.watch_seconds > 0.0 && reloads > 0 {
        #[allow(clippy::cast_precision_loss)]
        let (all, reloads) = ((s.requests_of(RequestKind::Playlist) + reloads) as f64, reloads as f64);
        let per_min = all * 60.0 / p.watch_seconds;
        let share = 100.0 * reloads / all;
        let _ = writeln!(
            o,
            "Playlist refresh  {per_min:.1} per viewer per minute, {share:.0} % of them blocking reloads (an LL-HLS player reloads once per part)"
        );
    } else if p.watch_seconds > 0.0 {
        #[allow(clippy::cast_precision_loss)]
        let per_min = s.requests_of(RequestKind::Playlist) as f64 * 60.0 / p.watch_seconds;
        let expected = facts.target_duration.map_or_else(String::new, |td| {
            format!(" (a live player: {:.1} = 60 / target duration)", 60.0 / td)
        });
        let _ = writeln!(o, "Playlist refresh  {per_min:.1} per viewer per minute{expected}");
    }
    variants(&mut o, s);
    let _ = writeln!(
        o,
        "Errors            {} HTTP 4xx · {} HTTP 5xx · {} network · {} segments skipped",
        s.http_errors_in(400, 499),
        s.http_errors_in(500, 599),
        s.network_errors,
        s.segments_skipped
    );
    if !s.http_errors.is_empty() {
        let by_status: Vec<String> = s.http_errors.iter().map(|(k, v)| format!("{k}×{v}")).collect();
        let _ = writeln!(o, "  by status       {}", by_status.join(" "));
    }
    streams(&mut o, s, facts);
    let exits = |m: &std::collections::BTreeMap<crate::measure::events::Ending, u64>| {
        if m.is_empty() {
            "none".to_owned()
        } else {
            m.iter().map(|(e, n)| format!("{n} × {e}")).collect::<Vec<_>>().join(", ")
        }
    };
    let _ = writeln!(o, "Exits (own)       {}", exits(&s.exits_unexpected));
    let _ = writeln!(o, "Exits (on stop)   {}", exits(&s.exits_on_stop));
    let g = &s.generator;
    let _ = writeln!(
        o,
        "Generator         host CPU peak {} · swarm {} · latest tick {} late · {} events dropped{}",
        g.host_cpu_peak.map_or_else(|| "n/a".to_owned(), |p| format!("{:.0} %", p * 100.0)),
        g.process_cpu_mean.map_or_else(|| "n/a".to_owned(), |c| format!("{c:.2} cores")),
        seconds(g.tick_lag_max.as_secs_f64()),
        s.dropped_events,
        if g.bound {
            format!("\n                  GENERATOR-BOUND: {} — these figures measure this machine as much as the origin", g.reasons.join(", "))
        } else {
            String::new()
        }
    );
    if let Some(r) = origin {
        let served = (s.measure == Measure::Relay).then(|| s.bytes.values().sum::<u64>());
        origin_lines(&mut o, r, served);
        energy_line(&mut o, &r.energy, p.watch_seconds, served);
    }
    if let Some((viewer, tail)) = &s.last_failure {
        let _ = writeln!(o, "Last failure      viewer {viewer}, its last log lines:");
        for line in tail {
            let _ = writeln!(o, "                  {line}");
        }
    }
    if s.dropped_events > 0 {
        let _ = writeln!(
            o,
            "Warning           {} events dropped: the stats task fell behind, counts are low",
            s.dropped_events
        );
    }
    o
}

/// The origin's network totals; for an origin on this machine, the bytes it served as the
/// relay counted them (no device counter is its own there). Never a 0 for traffic not seen.
#[allow(clippy::cast_precision_loss)]
fn network(r: &OriginSnapshot, served: Option<u64>) -> String {
    match (r.net_scope, r.run.net_tx_bytes, r.run.net_rx_bytes) {
        (NetScope::Loopback, _, _) => match served {
            Some(b) => format!("served {} (response bodies, by the relay; on loopback)", bytes(b as f64)),
            None => "network not known (on loopback: lo carries the swarm's own traffic too)".to_owned(),
        },
        (NetScope::Devices, Some(tx), Some(rx)) => {
            format!("sent {} · received {}", bytes(tx as f64), bytes(rx as f64))
        }
        _ => "network n/a (needs two scrapes)".to_owned(),
    }
}

/// The origin's energy: measured, estimated (labelled, with its formula) or unavailable.
fn energy_line(o: &mut String, e: &Energy, watch_seconds: f64, served: Option<u64>) {
    let run = match e {
        Energy::Known(run) => run,
        Energy::Unavailable(u) => {
            let hint = if *u == Unavailable::NoRapl {
                "; --origin-watts-per-core W gives a labelled estimate"
            } else {
                ""
            };
            let _ = writeln!(o, "Origin energy     unavailable: {}{hint}", u.reason());
            return;
        }
    };
    let busy = match run.source {
        Source::Estimate { busy_cpu_seconds, .. } => format!(" · {busy_cpu_seconds:.1} busy CPU-s"),
        Source::Rapl { .. } => String::new(),
    };
    let _ = writeln!(
        o,
        "Origin energy     {}{busy} · {:.1} W mean · {:.1} W peak · {} over {:.1} s · {} per viewer-hour · {} per GB (10^9 bytes delivered)",
        run.label(),
        run.watts_mean(),
        run.watts_peak,
        joules(run.joules),
        run.seconds,
        run.per_viewer_hour(watch_seconds).map_or_else(|| "n/a (nothing watched)".to_owned(), joules),
        run.per_gigabyte(served).map_or_else(|| "n/a (bytes not measured)".to_owned(), joules),
    );
}

/// The origin's part of the summary: run figures from the deltas between scrapes.
#[allow(clippy::cast_precision_loss)]
fn origin_lines(o: &mut String, r: &OriginSnapshot, served: Option<u64>) {
    let pct = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1} %"));
    if r.node.scrapes_ok > 0 {
        let mem = match (r.mem_used_bytes, r.mem_total_bytes) {
            (Some(u), Some(t)) => format!("{} of {}", bytes(u as f64), bytes(t as f64)),
            _ => "n/a".to_owned(),
        };
        let _ = writeln!(
            o,
            "Origin host       CPU mean {} · peak {} · memory {mem} · {} (node exporter)",
            pct(r.run.cpu_mean_percent),
            pct(r.run.cpu_peak_percent),
            network(r, served),
        );
    }
    if r.nginx.scrapes_ok > 0 {
        let _ = writeln!(
            o,
            "Origin nginx      {} requests · peak {} active connections (nginx exporter, its own polls included)",
            r.run.requests,
            r.run.peak_active_connections.map_or_else(|| "n/a".to_owned(), |v| v.to_string())
        );
    }
    for (name, h) in [("node exporter", &r.node), ("nginx exporter", &r.nginx)] {
        if let Some(e) = h.error.as_ref().filter(|_| !h.ok) {
            let _ = writeln!(
                o,
                "Origin warning    {name}: {e} ({} of {} scrapes failed)",
                h.scrapes_failed,
                h.scrapes_failed + h.scrapes_ok
            );
        }
    }
}

/// The LL-HLS lines, when a viewer played Low-Latency HLS.
fn ll_hls(o: &mut String, s: &Snapshot) {
    let l = &s.ll_hls;
    if l.sessions == 0 {
        return;
    }
    let of = |m: &std::collections::BTreeMap<RequestKind, Latency>, k| {
        m.get(&k).filter(|x| x.count > 0).map_or_else(|| "not measured".to_owned(), quantiles)
    };
    let _ = writeln!(
        o,
        "LL-HLS            {} tracks · {} parts (TTFB {}; download {}) · {} blocking reloads held {}",
        l.sessions,
        s.requests_of(RequestKind::Part),
        of(&s.ttfb, RequestKind::Part),
        of(&s.ttlb, RequestKind::Part),
        s.requests_of(RequestKind::BlockingReload),
        of(&s.ttfb, RequestKind::BlockingReload),
    );
    let broken: Vec<String> = crate::measure::events::Violation::ALL
        .iter()
        .filter(|v| l.conformance.get(**v) > 0)
        .map(|v| format!("{} {}", l.conformance.get(*v), v.label()))
        .collect();
    let verdict = if broken.is_empty() { "0 violations".to_owned() } else { broken.join(" · ") };
    let _ = writeln!(o, "LL-HLS conformance {verdict}");
    if l.switches_from_report + l.switches_plain > 0 {
        let _ = writeln!(
            o,
            "LL-HLS switches   {} joined from rendition reports · {} by a plain load",
            l.switches_from_report, l.switches_plain
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_counts_blocking_reloads_as_playlists_and_shows_parts_with_ll_hls() {
        let mut s = Snapshot { target: 2, streaming: 2, ..Snapshot::default() };
        s.request_rates = [
            (RequestKind::Segment, 1.0),
            (RequestKind::Playlist, 0.5),
            (RequestKind::BlockingReload, 6.0),
            (RequestKind::Part, 6.0),
        ]
        .into_iter()
        .collect();
        let plain = status_line(&s);
        assert!(plain.contains("seg/s 1.0 playlists/s 6.5"), "{plain}");
        s.ll_hls.sessions = 2;
        let ll = status_line(&s);
        assert!(ll.contains("seg/s 1.0 parts/s 6.0 playlists/s 6.5"), "{ll}");
    }
}
