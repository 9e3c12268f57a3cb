//! Human-readable text: the periodic status line and the end-of-run summary.

use std::fmt::Write as _;

use crate::parser::RequestKind;
use crate::stats::Snapshot;

/// One line for logs and non-terminal output, e.g.
/// `[12s] streaming 20/20 running 20 backoff 0 seg/s 10.0 playlists/s 10.0 restarts 0 errors 0`.
#[must_use]
pub fn status_line(s: &Snapshot) -> String {
    format!(
        "[{}s] streaming {}/{} running {} backoff {} seg/s {:.1} playlists/s {:.1} restarts {} errors {}",
        s.elapsed.as_secs(),
        s.streaming,
        s.target,
        s.running,
        s.backoff,
        s.rate_of(RequestKind::Segment),
        s.rate_of(RequestKind::Playlist),
        s.restarts,
        error_count(s),
    )
}

fn error_count(s: &Snapshot) -> u64 {
    s.http_errors.values().sum::<u64>() + s.network_errors + s.spawn_failures
}

/// What the run was asked to do, for the summary's header.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// Stream URL.
    pub url: String,
    /// FFmpeg version line.
    pub ffmpeg: String,
    /// Asked ramp rate.
    pub ramp_rate: f64,
    /// Seconds from the first viewer start until the stop began.
    pub run_seconds: f64,
    /// True if the run was ended by a signal rather than by its duration.
    pub interrupted: bool,
    /// Longest time from the end of the run until every viewer was reaped, in seconds.
    pub stop_seconds: f64,
}

/// The end-of-run summary.
#[must_use]
pub fn render(s: &Snapshot, facts: &RunFacts) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "═══ hls-swarm summary ═══");
    let _ = writeln!(o, "Stream            {}", facts.url);
    let _ = writeln!(o, "FFmpeg            {}", facts.ffmpeg);
    let how = if facts.interrupted { "stopped by signal" } else { "duration reached" };
    let _ = writeln!(
        o,
        "Run time          {:.1} s ({how}); all viewers reaped {:.2} s after the stop",
        facts.run_seconds, facts.stop_seconds
    );
    let achieved = s.ramp_rate_achieved.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}/s"));
    #[allow(clippy::cast_precision_loss)]
    let mean_start = if s.process_starts == 0 {
        0.0
    } else {
        s.spawn_time_total.as_secs_f64() * 1000.0 / s.process_starts as f64
    };
    let _ = writeln!(
        o,
        "Ramp              target {:.2}/s, achieved {achieved} ; latest start {:.2} s behind plan; process start mean {mean_start:.1} ms, max {:.1} ms",
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
        "Lifecycle         {} process starts · {} restarts · {} stall restarts · {} failed starts",
        s.process_starts, s.restarts, s.stall_restarts, s.spawn_failures
    );
    let _ = writeln!(
        o,
        "Requests          {} playlists · {} segments (request starts read from FFmpeg's log)",
        s.requests_of(RequestKind::Playlist),
        s.requests_of(RequestKind::Segment)
    );
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
    let exits = |m: &std::collections::BTreeMap<procgroup::Exit, u64>| {
        if m.is_empty() {
            "none".to_owned()
        } else {
            m.iter().map(|(e, n)| format!("{n} × {e}")).collect::<Vec<_>>().join(", ")
        }
    };
    let _ = writeln!(o, "Exits (own)       {}", exits(&s.exits_unexpected));
    let _ = writeln!(o, "Exits (on stop)   {}", exits(&s.exits_on_stop));
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
