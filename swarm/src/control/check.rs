//! `--check`: look at the stream once and say whether viewers could play it. No load.

use std::fmt::Write as _;

use crate::control::config::Config;
use crate::control::examine::{ExamineError, Fetcher, StreamInfo};
use crate::control::preflight::{self, Status};
use crate::engine::ffmpeg::command::ViewerCommand;
use kit::playlist;

/// The outcome of `--check`, each with its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Playlist, variant and a segment were fetched, and FFmpeg accepts the viewer command.
    Playable,
    /// No server answered (refused, timed out, DNS or TLS failure).
    Unreachable,
    /// A server answered, but not with a playable stream (HTTP error, not a playlist, no
    /// segments), or FFmpeg rejects the viewer command.
    Unplayable,
}

/// Runs the check and returns the verdict with a human-readable report.
/// `probed` is the run's one look at the stream ([`examine::examine`]) with the client it used.
pub async fn run(
    config: &Config,
    probed: Result<(&Fetcher, &StreamInfo), &ExamineError>,
    command: Option<&ViewerCommand<'_>>,
) -> (Verdict, String) {
    let mut o = String::new();
    let _ = writeln!(o, "Checking {}", config.shown_url());
    let verdict = report(probed, &mut o).await;
    let verdict = if let (Verdict::Playable, Some(command)) = (verdict, command) {
        let ff = preflight::ffmpeg_accepts(&command.argv(), &config.ffmpeg.binary).await;
        let mark = if ff.status == Status::Fail { "✗" } else { "✓" };
        let _ = writeln!(o, "  {mark} ffmpeg: {}", ff.detail);
        if ff.status == Status::Fail {
            Verdict::Unplayable
        } else {
            Verdict::Playable
        }
    } else {
        verdict
    };
    let _ = match verdict {
        Verdict::Playable => match command {
            Some(command) => writeln!(
                o,
                "Verdict: playable — {} viewers can start with:\n{}",
                config.clients,
                command.display()
            ),
            None => writeln!(o, "Verdict: playable — {} native viewers can start", config.clients),
        },
        Verdict::Unreachable => writeln!(o, "Verdict: unreachable — no server answered"),
        Verdict::Unplayable => {
            writeln!(o, "Verdict: not playable — the server answered, but not with a playable stream")
        }
    };
    (verdict, o)
}

async fn report(probed: Result<(&Fetcher, &StreamInfo), &ExamineError>, o: &mut String) -> Verdict {
    let fail = |o: &mut String, e: &ExamineError| {
        let _ = writeln!(o, "  ✗ {e}");
        if e.is_unreachable() {
            Verdict::Unreachable
        } else {
            Verdict::Unplayable
        }
    };
    let (fetcher, info) = match probed {
        Ok(p) => p,
        Err(e) => return fail(o, e),
    };
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    if let Some(master) = &info.master {
        let _ = writeln!(
            o,
            "  ✓ master playlist: {} variants (first byte {:.1} ms)",
            master.variants.len(),
            ms(info.first_fetch.ttfb)
        );
        for (i, v) in master.variants.iter().enumerate() {
            let res = v.resolution.map_or_else(|| "-".to_owned(), |(w, h)| format!("{w}x{h}"));
            let mark = if Some(i) == info.chosen { "  ← chosen by --variant" } else { "" };
            let _ = writeln!(
                o,
                "      {i}: {:>8.0} kbit/s {res:>9} {}{mark}",
                v.bandwidth as f64 / 1000.0,
                v.uri
            );
        }
    }
    let m = &info.media;
    let kind = if m.ended { "finite (VOD or ended event): viewers end with it" } else { "live" };
    let _ = writeln!(
        o,
        "  ✓ media playlist {}: {kind}, target duration {}, {} segments, media sequence {}",
        info.media_url,
        m.target_duration.map_or_else(|| "missing".to_owned(), |t| format!("{t} s")),
        m.segments.len(),
        m.media_sequence
    );
    let Some(seg) = m.segments.last() else {
        let _ = writeln!(o, "  ✗ the media playlist lists no segments");
        return Verdict::Unplayable;
    };
    let seg_url = match playlist::resolve(&info.media_url, &seg.uri) {
        Ok(u) => u,
        Err(e) => {
            let _ = writeln!(o, "  ✗ segment URI '{}': {e}", seg.uri);
            return Verdict::Unplayable;
        }
    };
    match fetcher.get(&seg_url, crate::engine::limits::SEGMENT_BYTES).await {
        // A viewer plays in real time only if a segment arrives within its own duration.
        Ok(f) if seg.duration > 0.0 && f.total.as_secs_f64() > seg.duration => {
            let _ = writeln!(
                o,
                "  ✗ not playable in real time: segment of {:.1} s took {:.1} s ({} bytes, {})",
                seg.duration,
                f.total.as_secs_f64(),
                f.body.len(),
                seg_url
            );
            Verdict::Unplayable
        }
        Ok(f) => {
            let _ = writeln!(
                o,
                "  ✓ segment {}: {} bytes, first byte {:.1} ms, complete {:.1} ms (of {:.1} s of media)",
                seg_url,
                f.body.len(),
                ms(f.ttfb),
                ms(f.total),
                seg.duration
            );
            Verdict::Playable
        }
        Err(e @ ExamineError::Slow { .. }) => {
            let _ = writeln!(o, "  ✗ not playable in real time: segment of {:.1} s: {e}", seg.duration);
            Verdict::Unplayable
        }
        Err(e) => fail(o, &e),
    }
}
