//! The table, the ratios between rows, the goals with ✓/✗, and the JSON file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::run::Row;

/// A row whose window saw more than this much CPU (% of one core) used outside the bench's
/// own process tree is marked as disturbed.
pub const DISTURBED_PCT: f64 = 10.0;

pub fn header() -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>4} {:<6} │{:>7} {:>7} {:>6} {:>6} {:>6} │{:>8} {:>6} {:>5} {:>5} │{:>5} {:>5} │{:>5} {:>5} │{:>5} {:>7} {:>3} │{:>6} {:>6} {:>6}",
        "N", "mode", "swarm", "ms/v·s", "RSS", "peak", "KiB/v", "ffmpeg", "%/v", "PSS/v", "max", "ramp", "says",
        "reap", "says", "seg/s", "end/ex", "rst", "busy", "others", "origin"
    );
    let _ = write!(
        s,
        "{:>4} {:<6} │{:>7} {:>7} {:>6} {:>6} {:>6} │{:>8} {:>6} {:>5} {:>5} │{:>5} {:>5} │{:>5} {:>5} │{:>5} {:>7} {:>3} │{:>6} {:>6} {:>6}",
        "", "", "% core", "CPU", "MiB", "MiB", "", "% core", "core", "MiB", "MiB", "/s", "/s", "s", "s", "", "", "",
        "% all", "% core", "% core"
    );
    s
}

pub fn line(r: &Row) -> String {
    let n = f64::from(r.viewers);
    let f = |v: Option<f64>, d: usize| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.d$}"));
    let mib = |k: Option<u64>| f(k.map(|k| k as f64 / 1024.0), 1);
    let mark = if r.others_cpu_pct > DISTURBED_PCT { "!" } else { " " };
    format!(
        "{:>4} {:<6} │{:>7} {:>7} {:>6} {:>6} {:>6} │{:>8.1} {:>6.3} {:>5.1} {:>5.1} │{:>5} {:>5} │{:>5} {:>5} │{:>5} {:>7} {:>3} │{:>6.1} {:>5.1}{mark} {:>6}",
        r.viewers,
        r.mode,
        f(r.swarm_cpu_pct, 2),
        // % of a core per viewer = 10 ms of CPU per second per viewer; shown in ms per viewer-second.
        f(r.swarm_cpu_pct.map(|p| p * 10.0 / n), 3),
        mib(r.swarm_rss_kib),
        mib(r.swarm_rss_peak_kib),
        f(r.swarm_rss_kib.map(|k| k as f64 / n), 0),
        r.viewers_cpu_pct,
        r.viewers_cpu_pct / n,
        r.viewer_pss_kib as f64 / 1024.0,
        r.viewer_pss_max_kib as f64 / 1024.0,
        f(r.ramp_achieved, 2),
        f(r.ramp_achieved_swarm, 2),
        f(r.reap_s, 2),
        f(r.reap_swarm_says_s, 2),
        f(r.segments_per_s, 1),
        format!("{}/{}", r.viewers_at_end, r.exited_in_window),
        r.restarts.map_or_else(|| "-".to_owned(), |x| x.to_string()),
        r.machine_busy_pct,
        r.others_cpu_pct,
        f(r.origin_cpu_pct, 1),
    )
}

pub const LEGEND: &str = "\
swarm: the hls-swarm process's own CPU in the window (all threads, relay included), % of one core;
  ms/v·s: the same per viewer, ms of CPU per viewer per second; RSS: at the window's end, peak = VmHWM;
  KiB/v: RSS per viewer. ffmpeg: all viewers' CPU (utime+stime, reaped ones included), % of one core;
  %/v: per viewer. PSS/v: a viewer's PSS (smaps_rollup), mean of samples every 5 s (max: highest sample).
ramp: achieved start rate from the children's start times in /proc (least-squares slope of the first N);
  says: the swarm's summary. reap: seconds from SIGINT (floor: SIGTERM) until no child is left unreaped;
  says: the swarm's summary. seg/s: mean of the swarm's status lines in the window. end/ex: viewers running
  at the window's end / exited in it; rst: restarts in the run. busy: the machine's busy share of all
  cores (/proc/stat); others: CPU used outside this bench's process tree (origin, swarm, viewers), % of
  one core; ! = above 10 % (another load ran: CPU times are per process and hold, ramp and reap may not).
  origin: the origin's nginx (master and workers), % of one core: which side is the limit.
native: --engine native, viewers are tasks in the swarm (no ffmpeg column; ramp and reap are the swarm's).";

/// Ratios between one N's relay, log and floor rows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Derived {
    pub viewers: u32,
    /// (relay − log) swarm CPU as a share of the relay run's swarm CPU, %.
    pub relay_share_of_swarm_cpu_pct: Option<f64>,
    /// The relay's CPU per viewer-second, ms.
    pub relay_ms_per_viewer_s: Option<f64>,
    /// The relay's RSS per viewer, KiB.
    pub relay_kib_per_viewer: Option<f64>,
    /// The swarm's RSS growth over the window (end − start), KiB.
    pub rss_growth_relay_kib: Option<i64>,
    pub rss_growth_log_kib: Option<i64>,
    /// The swarm's open file descriptors per viewer at the window's end.
    pub fds_per_viewer_relay: Option<f64>,
    pub fds_per_viewer_log: Option<f64>,
    /// The swarm's own CPU as a % of the floor's (N bare FFmpeg) CPU.
    pub swarm_cpu_of_floor_pct_relay: Option<f64>,
    pub swarm_cpu_of_floor_pct_log: Option<f64>,
    /// (swarm + its viewers) CPU ÷ floor CPU.
    pub total_cpu_vs_floor_relay: Option<f64>,
    pub total_cpu_vs_floor_log: Option<f64>,
    /// (swarm RSS + N × viewer PSS) ÷ (N × floor PSS).
    pub memory_vs_floor_relay: Option<f64>,
    pub memory_vs_floor_log: Option<f64>,
}

fn find<'a>(rows: &'a [Row], n: u32, mode: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.viewers == n && r.mode == mode)
}

pub fn derive(rows: &[Row], n: u32) -> Derived {
    let (relay, log, floor) = (find(rows, n, "relay"), find(rows, n, "log"), find(rows, n, "floor"));
    let nf = f64::from(n);
    let swarm = |r: Option<&Row>| r.and_then(|r| r.swarm_cpu_pct);
    let extra = swarm(relay).zip(swarm(log)).map(|(a, b)| a - b);
    let floor_cpu = floor.map(|f| f.viewers_cpu_pct).filter(|c| *c > 0.0);
    let floor_mem = floor.map(|f| nf * f.viewer_pss_kib as f64).filter(|m| *m > 0.0);
    let total = |r: Option<&Row>| {
        let r = r?;
        Some((r.swarm_cpu_pct? + r.viewers_cpu_pct) / floor_cpu?)
    };
    let memory = |r: Option<&Row>| {
        let r = r?;
        Some((r.swarm_rss_kib? as f64 + nf * r.viewer_pss_kib as f64) / floor_mem?)
    };
    let growth = |r: Option<&Row>| {
        let r = r?;
        Some(i64::try_from(r.swarm_rss_kib?).ok()? - i64::try_from(r.swarm_rss_start_kib?).ok()?)
    };
    let fds = |r: Option<&Row>| r.and_then(|r| r.swarm_fds).map(|f| f as f64 / nf);
    Derived {
        viewers: n,
        rss_growth_relay_kib: growth(relay),
        rss_growth_log_kib: growth(log),
        fds_per_viewer_relay: fds(relay),
        fds_per_viewer_log: fds(log),
        relay_share_of_swarm_cpu_pct: extra.zip(swarm(relay)).map(|(e, r)| e / r * 100.0),
        relay_ms_per_viewer_s: extra.map(|e| e * 10.0 / nf),
        relay_kib_per_viewer: relay
            .and_then(|r| r.swarm_rss_kib)
            .zip(log.and_then(|r| r.swarm_rss_kib))
            .map(|(a, b)| (a as f64 - b as f64) / nf),
        swarm_cpu_of_floor_pct_relay: swarm(relay).zip(floor_cpu).map(|(s, f)| s / f * 100.0),
        swarm_cpu_of_floor_pct_log: swarm(log).zip(floor_cpu).map(|(s, f)| s / f * 100.0),
        total_cpu_vs_floor_relay: total(relay),
        total_cpu_vs_floor_log: total(log),
        memory_vs_floor_relay: memory(relay),
        memory_vs_floor_log: memory(log),
    }
}

pub fn derived_text(d: &Derived, rows: &[Row]) -> String {
    let f = |v: Option<f64>, d: usize| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.d$}"));
    let n = d.viewers;
    let cpu = |mode| find(rows, n, mode).and_then(|r| r.swarm_cpu_pct);
    let floor = find(rows, n, "floor");
    let mut s = String::new();
    let _ = writeln!(
        s,
        "N={n}: relay share of the swarm's CPU {} % (relay run {} − log run {} % of a core = {} ms CPU per \
         viewer-second, {} KiB RSS per viewer)",
        f(d.relay_share_of_swarm_cpu_pct, 0),
        f(cpu("relay"), 2),
        f(cpu("log"), 2),
        f(d.relay_ms_per_viewer_s, 3),
        f(d.relay_kib_per_viewer, 0),
    );
    let _ = writeln!(
        s,
        "  swarm RSS change over the window {} KiB (relay) {} KiB (log); open fds per viewer {} (relay) {} (log)",
        d.rss_growth_relay_kib.map_or_else(|| "-".to_owned(), |g| format!("{g:+}")),
        d.rss_growth_log_kib.map_or_else(|| "-".to_owned(), |g| format!("{g:+}")),
        f(d.fds_per_viewer_relay, 1),
        f(d.fds_per_viewer_log, 1),
    );
    let _ = writeln!(
        s,
        "  floor ({n} bare ffmpeg: {} % of a core, {} MiB PSS each): swarm CPU = {} % of it with the relay, {} % \
         with --measure log;",
        f(floor.map(|r| r.viewers_cpu_pct), 1),
        f(floor.map(|r| r.viewer_pss_kib as f64 / 1024.0), 1),
        f(d.swarm_cpu_of_floor_pct_relay, 1),
        f(d.swarm_cpu_of_floor_pct_log, 1),
    );
    let _ = write!(
        s,
        "  swarm + its viewers ÷ floor: CPU {}× (relay) {}× (log), memory {}× (relay) {}× (log)",
        f(d.total_cpu_vs_floor_relay, 2),
        f(d.total_cpu_vs_floor_log, 2),
        f(d.memory_vs_floor_relay, 2),
        f(d.memory_vs_floor_log, 2),
    );
    s
}

/// One goal: what was measured against what was asked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Goal {
    pub goal: String,
    pub measured: String,
    /// `None`: not measured in this run.
    pub met: Option<bool>,
    /// Why it was missed, or what to keep in mind.
    pub note: Option<String>,
}

impl Goal {
    pub fn text(&self) -> String {
        let mark = match self.met {
            Some(true) => "✓",
            Some(false) => "✗",
            None => "?",
        };
        let note = self.note.as_ref().map(|n| format!("\n     {n}")).unwrap_or_default();
        format!("  {mark} {}: {}{note}", self.goal, self.measured)
    }
}

/// The Go reference tool's own CPU at N = 200, % of a core (issue 17's side-by-side run).
const GO_REFERENCE_CPU_PCT: f64 = 5.3;

/// The goals of issues 10 and 17, judged at N = 200 (or the largest N measured, said so).
pub fn goals(rows: &[Row], counts: &[u32]) -> Vec<Goal> {
    let at = if counts.contains(&200) { 200 } else { counts.iter().copied().max().unwrap_or(0) };
    let caveat = (at != 200).then(|| format!("measured at N = {at}, not 200: indicative only"));
    let mut out = Vec::new();
    for (mode, limit) in [("relay", 4.0), ("log", 1.5)] {
        let r = find(rows, at, mode);
        let v = r.and_then(|r| r.swarm_cpu_pct);
        let disturbed = r.is_some_and(|r| r.others_cpu_pct > DISTURBED_PCT);
        let flag = if mode == "relay" { "with the relay" } else { "with --measure log" };
        out.push(Goal {
            goal: format!("swarm CPU at N = 200 {flag} ≤ {limit} % of a core"),
            measured: v.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.2} % at N = {at}")),
            met: v.map(|v| v <= limit),
            note: caveat.clone().or_else(|| disturbed.then(|| "another load ran in the window".to_owned())),
        });
    }
    // Issue 17: the relay at or below the Go reference, measured beside it on this machine.
    let relay = find(rows, at, "relay").and_then(|r| r.swarm_cpu_pct);
    out.push(Goal {
        goal: format!(
            "swarm CPU at N = 200 with the relay ≤ the Go reference's {GO_REFERENCE_CPU_PCT} % of a core"
        ),
        measured: relay.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.2} % at N = {at}")),
        met: relay.map(|v| v <= GO_REFERENCE_CPU_PCT),
        note: Some(caveat.clone().unwrap_or_else(|| {
            "the reference's figure was measured side by side in issue 17's run (200 viewers, same replay \
             origin); the Go tool is not installed here, so this run compares against that figure"
                .to_owned()
        })),
    });
    let rss: Vec<(&str, u64, u64)> = ["relay", "log"]
        .iter()
        .filter_map(|m| find(rows, at, m).and_then(|r| Some((*m, r.swarm_rss_kib?, r.swarm_rss_peak_kib?))))
        .collect();
    let mb = |kib: u64| kib as f64 * 1024.0 / 1e6;
    let worst = rss.iter().map(|r| r.2).max();
    out.push(Goal {
        goal: "swarm RSS at N = 200 ≤ 30 MB (peak VmHWM, 10⁶ bytes)".to_owned(),
        measured: if rss.is_empty() {
            "not measured".to_owned()
        } else {
            rss.iter()
                .map(|(m, end, peak)| format!("{m} {:.1} MB at the end, peak {:.1} MB", mb(*end), mb(*peak)))
                .collect::<Vec<_>>()
                .join("; ")
        },
        met: worst.map(|p| mb(p) <= 30.0),
        note: caveat.clone(),
    });
    let swarm_rows: Vec<&Row> = rows.iter().filter(|r| r.mode != "floor").collect();
    let off = |r: &Row| r.ramp_achieved.map(|a| (a / r.ramp_target - 1.0) * 100.0);
    let worst_ramp = swarm_rows
        .iter()
        .filter_map(|r| off(r).map(|o| (o, *r)))
        .max_by(|a, b| a.0.abs().total_cmp(&b.0.abs()));
    let target = rows.first().map_or(0.0, |r| r.ramp_target);
    let floor_worst = rows.iter().filter(|r| r.mode == "floor").filter_map(off).min_by(|a, b| a.total_cmp(b));
    out.push(Goal {
        goal: format!("ramp within ±2 % of the target ({target}/s), every swarm run"),
        measured: worst_ramp.map_or_else(
            || "not measured".to_owned(),
            |(o, r)| {
                format!(
                    "worst {o:+.2} % (N = {} {}: {:.2}/s; the swarm says {})",
                    r.viewers,
                    r.mode,
                    r.ramp_achieved.unwrap_or(0.0),
                    r.ramp_achieved_swarm.map_or_else(|| "-".to_owned(), |s| format!("{s:.2}/s"))
                )
            },
        ),
        met: worst_ramp.map(|(o, _)| o.abs() <= 2.0),
        note: Some(match (worst_ramp, floor_worst) {
            (Some((o, _)), Some(f)) if o.abs() > 2.0 && f < -2.0 => format!(
                "the bare loop reached only {f:+.2} % as well: the machine cannot start FFmpeg that fast now"
            ),
            _ => format!(
                "an FFmpeg start costs ≈ 0.14 CPU-s: {} cores start at most ≈ {:.0}/s, so the bench asks {target}/s \
                 (25/s would be beyond this machine)",
                crate::proc::cores(),
                f64::from(crate::proc::cores()) / 0.14
            ),
        }),
    });
    let worst_reap =
        swarm_rows.iter().map(|r| (r.reap_s.unwrap_or(f64::INFINITY), *r)).max_by(|a, b| a.0.total_cmp(&b.0));
    let floor_reap = rows
        .iter()
        .filter(|r| r.mode == "floor")
        .filter_map(|r| r.reap_s)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let left: usize = swarm_rows.iter().map(|r| r.left_unreaped).sum();
    out.push(Goal {
        goal: "every child reaped ≤ 5 s after SIGINT, every swarm run".to_owned(),
        measured: worst_reap.map_or_else(
            || "not measured".to_owned(),
            |(s, r)| format!("worst {s:.2} s (N = {} {}); {left} left unreaped", r.viewers, r.mode),
        ),
        met: worst_reap.map(|(s, _)| s <= 5.0 && left == 0),
        note: floor_reap.map(|f| {
            format!("bare FFmpeg stopped the same way (SIGTERM, again at 1 s, SIGKILL at 3 s) took {f:.2} s")
        }),
    });
    out
}

/// A row's swarm CPU per viewer, % of a core.
fn per_viewer(r: &Row) -> Option<f64> {
    Some(r.swarm_cpu_pct? / f64::from(r.viewers))
}

/// An FFmpeg row's CPU per viewer, swarm and FFmpeg children together, % of a core.
fn ffmpeg_per_viewer(r: &Row) -> Option<f64> {
    Some((r.swarm_cpu_pct? + r.viewers_cpu_pct) / f64::from(r.viewers))
}

/// The native rows per viewer, against the FFmpeg engine at the same N (relay) and with the
/// same per-viewer traffic check (A/B: playlists, segments and bytes per viewer-minute).
pub fn native_text(rows: &[Row], counts: &[u32], native: &[u32]) -> String {
    let f = |v: Option<f64>, d: usize| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.d$}"));
    let mut s = String::from("Native engine, per viewer:\n");
    for &n in native {
        let Some(r) = find(rows, n, "native") else { continue };
        let _ = writeln!(
            s,
            "  N={n}: {} % of a core, {} ms CPU per viewer-second, {} KiB RSS; origin {} % of a core",
            f(per_viewer(r), 4),
            f(per_viewer(r).map(|p| p * 10.0), 3),
            f(r.swarm_rss_kib.map(|k| k as f64 / f64::from(n)), 1),
            f(r.origin_cpu_pct, 1),
        );
    }
    for &n in counts {
        let (Some(ff), Some(nat)) = (find(rows, n, "relay"), find(rows, n, "native")) else { continue };
        let ratio = ffmpeg_per_viewer(ff).zip(per_viewer(nat)).map(|(a, b)| a / b);
        let _ = writeln!(
            s,
            "  N={n}: an FFmpeg viewer (its process + the swarm with the relay) costs {} % of a core, a native \
             one {} %: {}×",
            f(ffmpeg_per_viewer(ff), 4),
            f(per_viewer(nat), 4),
            f(ratio, 0)
        );
        let ab = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| (b / a - 1.0) * 100.0);
        let _ = writeln!(
            s,
            "  N={n} A/B per viewer-minute (ffmpeg → native): playlists {} → {} ({}%), segments {} → {} ({}%), \
             bytes {} → {} ({}%)",
            f(ff.playlists_per_viewer_min, 1),
            f(nat.playlists_per_viewer_min, 1),
            f(ab(ff.playlists_per_viewer_min, nat.playlists_per_viewer_min), 1),
            f(ff.segments_per_viewer_min, 1),
            f(nat.segments_per_viewer_min, 1),
            f(ab(ff.segments_per_viewer_min, nat.segments_per_viewer_min), 1),
            f(ff.bytes_per_viewer_min, 0),
            f(nat.bytes_per_viewer_min, 0),
            f(ab(ff.bytes_per_viewer_min, nat.bytes_per_viewer_min), 1),
        );
    }
    s
}

/// The median of the samples taken while loaded (at least half the highest), if any.
pub fn loaded_median(samples: &[usize]) -> Option<f64> {
    let max = *samples.iter().max()?;
    let mut loaded: Vec<usize> = samples.iter().copied().filter(|s| *s * 2 >= max && *s > 0).collect();
    loaded.sort_unstable();
    loaded.get(loaded.len() / 2).map(|m| *m as f64)
}

/// The LL-HLS rows: native viewers of the `ll-hls` profile, per viewer, and the requests the
/// origin held open for them against the swarm's memory.
pub fn ll_hls_text(rows: &[Row], ll: &[u32]) -> String {
    let f = |v: Option<f64>, d: usize| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.d$}"));
    let mut s = String::from(
        "LL-HLS native viewers (ll-hls profile, 1/3 s parts; the LL-HLS server shares this bench's process, \
         so no origin CPU):\n",
    );
    let found: Vec<&Row> = ll.iter().filter_map(|n| find(rows, *n, "ll-hls")).collect();
    for r in &found {
        let n = r.viewers;
        let held = r.held_requests;
        let _ = writeln!(
            s,
            "  N={n}: {} % of a core per viewer ({} viewers per core), {} KiB RSS per viewer; {} requests held \
             open ({} per viewer), {} KiB of the swarm's RSS per held request (all of it over them: an upper bound)",
            f(per_viewer(r), 4),
            f(per_viewer(r).map(|p| 100.0 / p), 0),
            f(r.swarm_rss_kib.map(|k| k as f64 / f64::from(n)), 1),
            f(held, 0),
            f(held.map(|h| h / f64::from(n)), 2),
            f(r.swarm_rss_kib.zip(held).map(|(k, h)| k as f64 / h), 1),
        );
    }
    if let [a, .., b] = found.as_slice() {
        let more = |x: Option<f64>, y: Option<f64>| x.zip(y).map(|(x, y)| y - x);
        let rss = more(a.swarm_rss_kib.map(|k| k as f64), b.swarm_rss_kib.map(|k| k as f64));
        let held = more(a.held_requests, b.held_requests);
        let _ = writeln!(
            s,
            "  N={}→{}: {} KiB more RSS for {} more held requests: {} KiB per extra held request (with its viewer)",
            a.viewers,
            b.viewers,
            f(rss, 0),
            f(held, 0),
            f(rss.zip(held).filter(|(_, h)| *h > 0.0).map(|(r, h)| r / h), 1),
        );
    }
    s
}

/// Issue 19's goals for the native engine.
pub fn native_goals(rows: &[Row], counts: &[u32], native: &[u32]) -> Vec<Goal> {
    let mut out = Vec::new();
    let worst = native
        .iter()
        .filter_map(|n| find(rows, *n, "native"))
        .filter_map(|r| Some((per_viewer(r)?, r.viewers)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    out.push(Goal {
        goal: "native swarm CPU per viewer ≤ 0.02 % of a core (≥ 5,000 viewers per core), every N".to_owned(),
        measured: worst
            .map_or_else(|| "not measured".to_owned(), |(v, n)| format!("worst {v:.4} % at N = {n}")),
        met: worst.map(|(v, _)| v <= 0.02),
        note: None,
    });
    let at = counts.iter().copied().filter(|n| native.contains(n)).max();
    let ratio = at.and_then(|n| {
        let ff = ffmpeg_per_viewer(find(rows, n, "relay")?)?;
        Some((ff / per_viewer(find(rows, n, "native")?)?, n))
    });
    out.push(Goal {
        goal: "native viewer ≥ 40× cheaper in CPU than an FFmpeg viewer (its process + the relay)".to_owned(),
        measured: ratio.map_or_else(|| "not measured".to_owned(), |(r, n)| format!("{r:.0}× at N = {n}")),
        met: ratio.map(|(r, _)| r >= 40.0),
        note: None,
    });
    let rss = find(rows, 2000, "native").and_then(|r| r.swarm_rss_kib).map(|k| k as f64 / 2000.0);
    out.push(Goal {
        goal: "native RSS ≤ 64 KiB per viewer at N = 2,000 (the whole process ÷ N)".to_owned(),
        measured: rss.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.1} KiB")),
        met: rss.map(|v| v <= 64.0),
        note: None,
    });
    out
}

/// Everything the run wrote, as JSON.
#[derive(Debug, serde::Serialize)]
pub struct Record<'a> {
    pub started: String,
    pub quick: bool,
    pub cores: u32,
    pub kernel: String,
    pub ffmpeg: String,
    pub hls_swarm: &'a str,
    pub ramp_rate: f64,
    pub settle_s: f64,
    pub window_s: f64,
    /// The machine's busy share over a few seconds before the first run, % of all cores.
    pub busy_before_pct: Option<f64>,
    pub rows: &'a [Row],
    pub derived: Vec<Derived>,
    pub goals: Vec<Goal>,
}

/// `<target>/bench/`, from where cargo put this bench binary (`<target>/<profile>/deps/…`).
pub fn out_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("bench")))
        .unwrap_or_else(|| PathBuf::from("target/bench"))
}

/// Writes `swarm-<stamp>.json` and `swarm-latest.json` under `dir`; returns the first path.
pub fn write(dir: &Path, stamp: &str, record: &Record<'_>) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let text = serde_json::to_string_pretty(record)? + "\n";
    let path = dir.join(format!("swarm-{stamp}.json"));
    std::fs::write(&path, &text)?;
    std::fs::write(dir.join("swarm-latest.json"), &text)?;
    Ok(path)
}
