//! What measuring costs: the swarm's CPU and memory with the relay (`--measure relay`) versus
//! reading FFmpeg's log only (`--measure log`), next to what the FFmpeg viewers themselves use.
//!
//! `cargo bench -p hls-swarm --bench relay -- [--seconds N] [VIEWERS...]` (default 20 s, 50 100)
//!
//! Starts the test origin in this process (replay of a 640x360 ~800 kbit/s loop, encoded once
//! into the origin's cache dir, no exporters), then for each viewer count runs the
//! `hls-swarm` binary cargo built for this bench (`CARGO_BIN_EXE_hls-swarm`: under
//! `cargo bench` that is the bench profile, i.e. release settings) once per mode:
//! `hls-swarm --clients N --ramp-rate 25 --duration D --metrics off --tui=false --measure M URL`.
//! Once N viewers (FFmpeg children of the swarm) are running, it lets them stream 10 s, then
//! measures over N seconds from `/proc`: the swarm's own CPU (utime + stime), the viewers' CPU
//! (their utime + stime, plus the swarm's cutime + cstime so a viewer that exits in the window
//! is still counted), the swarm's RSS at the end and the viewers' PSS (`smaps_rollup`) every
//! 5 s and at the end (a viewer's PSS is a sawtooth of about ±2.5 MiB over ~40 s, so one
//! sample depends on the phase).
//! Segments/s is the mean of the swarm's status lines printed in the window.
//! The relay's cost is the difference between the two modes' swarm CPU, as a share of the
//! viewers' CPU in the relay run (goal: ≤ 5 %). Ratios from one run; nothing is asserted.
//! Under `cargo test --all-targets` (no `--bench` argument) it only prints how to run it.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

const RAMP_RATE: u32 = 25;
/// How long every viewer streams before the window opens.
const SETTLE: Duration = Duration::from_secs(10);
/// How often the viewers' PSS is sampled in the window (it is a sawtooth over tens of seconds).
const PSS_EVERY: Duration = Duration::from_secs(5);

/// The fields of `/proc/PID/stat` after the command name: state(0), ppid(1), …
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    // The state is a letter; a zombie reads as gone.
    if rest.starts_with('Z') {
        return None;
    }
    Some(rest.split_whitespace().skip(1).map(|f| f.parse().unwrap_or(0)).collect())
}

fn ticks_to_ns(ticks: u64) -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok().filter(|h| *h > 0)?;
    Some(ticks * 1_000_000_000 / hz)
}

/// utime + stime of `pid` and cutime + cstime (its reaped children) in nanoseconds.
fn cpu_ns(pid: u32) -> Option<(u64, u64)> {
    let f = stat_fields(pid)?;
    // Without the state: ppid(0) … utime(10) stime(11) cutime(12) cstime(13) … starttime(18).
    Some((ticks_to_ns(f.get(10)? + f.get(11)?)?, ticks_to_ns(f.get(12)? + f.get(13)?)?))
}

/// A process by pid and start time, so a recycled pid is not taken for the same viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Proc {
    pid: u32,
    start: u64,
}

/// Live children of `parent` with their utime + stime in nanoseconds.
fn children(parent: u32) -> BTreeMap<Proc, u64> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Some(f) = stat_fields(pid) else { continue };
        if f.first().copied() != Some(u64::from(parent)) {
            continue;
        }
        if let (Some(&start), Some(&utime), Some(&stime)) = (f.get(18), f.get(10), f.get(11)) {
            out.insert(Proc { pid, start }, ticks_to_ns(utime + stime).unwrap_or(0));
        }
    }
    out
}

/// The `kB` value of `key` in a `/proc/PID/<file>` (e.g. `status` `VmRSS`, `smaps_rollup` `Pss`).
fn kib(pid: u32, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    let line = text.lines().find(|l| l.split(':').next() == Some(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The viewers' mean PSS now, in KiB.
fn mean_pss_kib<'a>(viewers: impl Iterator<Item = &'a Proc>) -> Option<u64> {
    let pss: Vec<u64> = viewers.filter_map(|p| kib(p.pid, "smaps_rollup", "Pss")).collect();
    (!pss.is_empty()).then(|| pss.iter().sum::<u64>() / pss.len() as u64)
}

struct Sample {
    at: Instant,
    swarm_ns: u64,
    reaped_ns: u64,
    viewers: BTreeMap<Proc, u64>,
}

impl Sample {
    fn take(swarm: u32) -> anyhow::Result<Sample> {
        let (swarm_ns, reaped_ns) = cpu_ns(swarm).context("hls-swarm exited during the window")?;
        Ok(Sample { at: Instant::now(), swarm_ns, reaped_ns, viewers: children(swarm) })
    }

    /// Every viewer's CPU so far: the live ones and the ones the swarm has reaped.
    fn viewers_ns(&self) -> u64 {
        self.viewers.values().sum::<u64>() + self.reaped_ns
    }
}

/// What one run's window measured.
struct Window {
    wall_ns: f64,
    swarm_ns: u64,
    viewers_ns: u64,
    viewers_at_end: usize,
    exited_in_window: usize,
    swarm_rss_kib: u64,
    /// Mean and highest of the viewers' mean PSS sampled every [`PSS_EVERY`] and at the end.
    viewer_pss_kib: (u64, u64),
    start: Instant,
    end: Instant,
}

struct Row {
    viewers: u32,
    mode: &'static str,
    swarm_pct: f64,
    viewers_pct: f64,
    swarm_rss_kib: u64,
    viewer_pss_kib: (u64, u64),
    viewers_at_end: usize,
    exited_in_window: usize,
    restarts: Option<u64>,
    seg_per_s_window: Option<f64>,
    seg_per_s_run: Option<f64>,
}

/// Waits for `n` running viewers, lets them stream for [`SETTLE`], then measures `seconds`.
async fn observe(swarm: u32, n: u32, seconds: u64) -> anyhow::Result<Window> {
    let ramp = Duration::from_secs_f64(f64::from(n) / f64::from(RAMP_RATE));
    let limit = ramp + Duration::from_secs(30);
    let deadline = Instant::now() + limit;
    loop {
        anyhow::ensure!(stat_fields(swarm).is_some(), "hls-swarm exited before {n} viewers ran");
        let running = children(swarm).len();
        if running >= n as usize {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "only {running} of {n} viewers running after {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(SETTLE).await;
    let before = Sample::take(swarm)?;
    let end = before.at + Duration::from_secs(seconds);
    let mut pss = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(left.min(PSS_EVERY)).await;
        if Instant::now() < end {
            pss.extend(mean_pss_kib(children(swarm).keys()));
        }
    }
    let after = Sample::take(swarm)?;
    let swarm_rss_kib = kib(swarm, "status", "VmRSS").context("hls-swarm VmRSS")?;
    pss.extend(mean_pss_kib(after.viewers.keys()));
    Ok(Window {
        wall_ns: after.at.duration_since(before.at).as_nanos() as f64,
        swarm_ns: after.swarm_ns.saturating_sub(before.swarm_ns),
        viewers_ns: after.viewers_ns().saturating_sub(before.viewers_ns()),
        viewers_at_end: after.viewers.len(),
        exited_in_window: before.viewers.keys().filter(|p| !after.viewers.contains_key(p)).count(),
        swarm_rss_kib,
        viewer_pss_kib: (
            pss.iter().sum::<u64>() / pss.len().max(1) as u64,
            pss.iter().copied().max().unwrap_or(0),
        ),
        start: before.at,
        end: after.at,
    })
}

/// The number before `label` in the summary line starting with `line_start`.
fn summary_number(stdout: &str, line_start: &str, label: &str) -> Option<f64> {
    let line = stdout.lines().find(|l| l.starts_with(line_start))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == label)?;
    words.get(i.checked_sub(1)?)?.parse().ok()
}

/// `seg/s X` from a status line (`[12s] streaming 20/20 … seg/s 10.0 …`).
fn status_seg_rate(line: &str) -> Option<f64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "seg/s")?;
    words.get(i + 1)?.parse().ok()
}

async fn measure(bin: &str, url: &str, n: u32, mode: &'static str, seconds: u64) -> anyhow::Result<Row> {
    let ramp_secs = n.div_ceil(RAMP_RATE);
    let duration = (u64::from(ramp_secs) + SETTLE.as_secs() + seconds + 6).max(40);
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(["--clients", &n.to_string(), "--ramp-rate", &RAMP_RATE.to_string()])
        .args(["--duration", &format!("{duration}s"), "--metrics", "off", "--tui=false"])
        .args(["--measure", mode, url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut swarm = procgroup::spawn(&mut cmd).with_context(|| format!("starting {bin}"))?;
    let stdout = swarm.child_mut().stdout.take().context("stdout pipe")?;
    let mut stderr = swarm.child_mut().stderr.take().context("stderr pipe")?;
    // Lines with the instant they arrived, to pick the status lines inside the window.
    let out_task = tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let mut got = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            got.push((Instant::now(), line));
        }
        got
    });
    let err_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let window = observe(swarm.pid(), n, seconds).await;
    let ended = match &window {
        Ok(_) => tokio::time::timeout(Duration::from_secs(duration + 60), swarm.wait()).await.ok(),
        Err(_) => None,
    };
    let status = match ended {
        Some(status) => procgroup::Exit::from(status?),
        None => swarm.stop(Duration::from_secs(10)).await?,
    };
    let lines = out_task.await?;
    let stderr = err_task.await?;
    let tail = |t: &str| {
        t.lines().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    };
    let w = window
        .with_context(|| format!("{n} viewers, {mode}; hls-swarm {status}, stderr:\n{}", tail(&stderr)))?;
    anyhow::ensure!(status.success(), "{n} viewers, {mode}: hls-swarm {status}, stderr:\n{}", tail(&stderr));
    let stdout: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    let rates: Vec<f64> = lines
        .iter()
        .filter(|(at, l)| l.starts_with('[') && *at >= w.start && *at <= w.end)
        .filter_map(|(_, l)| status_seg_rate(l))
        .collect();
    let run_secs = stdout
        .lines()
        .find(|l| l.starts_with("Run time"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|s| s.parse::<f64>().ok());
    let segments = summary_number(&stdout, "Requests", "segments");
    Ok(Row {
        viewers: n,
        mode,
        swarm_pct: w.swarm_ns as f64 / w.wall_ns * 100.0,
        viewers_pct: w.viewers_ns as f64 / w.wall_ns * 100.0,
        swarm_rss_kib: w.swarm_rss_kib,
        viewer_pss_kib: w.viewer_pss_kib,
        viewers_at_end: w.viewers_at_end,
        exited_in_window: w.exited_in_window,
        restarts: summary_number(&stdout, "Lifecycle", "restarts").map(|r| r as u64),
        seg_per_s_window: (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64),
        seg_per_s_run: segments.zip(run_secs).filter(|(_, t)| *t > 0.0).map(|(s, t)| s / t),
    })
}

fn print_row(r: &Row) {
    let n = f64::from(r.viewers);
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
    println!(
        "{:>7} {:<6} {:>8.2} {:>9.1} {:>9.3} {:>8.1} {:>9.0} {:>9.1} {:>7.1} {:>8} {:>8} {:>5}/{:<3} {:>3}",
        r.viewers,
        r.mode,
        r.swarm_pct,
        r.viewers_pct,
        r.viewers_pct / n,
        r.swarm_rss_kib as f64 / 1024.0,
        r.swarm_rss_kib as f64 / n,
        r.viewer_pss_kib.0 as f64 / 1024.0,
        r.viewer_pss_kib.1 as f64 / 1024.0,
        opt(r.seg_per_s_window),
        opt(r.seg_per_s_run),
        r.viewers_at_end,
        r.exited_in_window,
        r.restarts.map_or_else(|| "-".to_owned(), |x| x.to_string()),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("relay: a benchmark; run it with `cargo bench -p hls-swarm --bench relay`");
        return Ok(());
    }
    let mut seconds = 20;
    let mut counts: Vec<u32> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => seconds = args.next().context("--seconds N")?.parse()?,
            "--bench" => {}
            n if n.parse::<u32>().is_ok_and(|n| n > 0) => counts.push(n.parse()?),
            other => anyhow::bail!("unknown argument {other:?} (accepted: --seconds N, viewer counts > 0)"),
        }
    }
    if counts.is_empty() {
        counts = vec![50, 100];
    }
    let bin = env!("CARGO_BIN_EXE_hls-swarm");
    if bin.contains("/debug/") {
        println!("note: {bin} is a debug build; `cargo bench` measures the release-profile one");
    }

    let mut config = origin::Config::new("default")?;
    config.listen = "127.0.0.1:0".parse()?;
    config.source = origin::Source::Replay;
    config.overrides.width = Some(640);
    config.overrides.height = Some(360);
    config.overrides.bitrate_kbps = Some(800);
    config.node_exporter = None;
    config.nginx_exporter = None;
    config.ready_timeout = Duration::from_secs(600);
    let started = Instant::now();
    let origin = origin::start(config).await.context("origin")?;
    let url = origin.playlist_url();
    println!("origin {url} (640x360 800 kbit/s replay) ready in {:.1} s", started.elapsed().as_secs_f64());
    println!("hls-swarm {bin}");
    println!(
        "window {seconds} s after every viewer ran {} s; CPU in % of one core; ramp {RAMP_RATE}/s",
        SETTLE.as_secs()
    );
    println!(
        "{:>7} {:<6} {:>8} {:>9} {:>9} {:>8} {:>9} {:>9} {:>7} {:>8} {:>8} {:>9} {:>3}",
        "viewers",
        "mode",
        "swarm %",
        "viewers %",
        "% /viewer",
        "RSS MiB",
        "KiB/view",
        "PSS/view",
        "max",
        "seg/s w",
        "seg/s r",
        "end/exit",
        "rst"
    );
    let mut rows = Vec::new();
    for &n in &counts {
        for mode in ["relay", "log"] {
            match measure(bin, &url, n, mode, seconds).await {
                Ok(r) => {
                    print_row(&r);
                    rows.push(r);
                }
                Err(e) => println!("{n:>7} {mode:<6} failed: {e:#}"),
            }
        }
    }
    origin.stop().await?;

    println!();
    println!(
        "PSS/view: MiB per viewer, mean (max) of samples every {} s in the window;",
        PSS_EVERY.as_secs()
    );
    println!("seg/s w: mean of the status lines in the window, r: over the run;");
    println!(
        "end/exit: viewers running at the window's end / viewers that exited in it; rst: restarts in the run"
    );
    for &n in &counts {
        let find = |mode: &str| rows.iter().find(|r| r.viewers == n && r.mode == mode);
        let (Some(relay), Some(log)) = (find("relay"), find("log")) else { continue };
        let extra = relay.swarm_pct - log.swarm_pct;
        println!(
            "{n} viewers: relay cost {:.2} % of the viewers' CPU (swarm {:.2} % relay − {:.2} % log, viewers {:.1} %; goal ≤ 5 %), \
             {:.3} ms CPU per viewer-second, {:+.0} KiB RSS per viewer",
            extra / relay.viewers_pct * 100.0,
            relay.swarm_pct,
            log.swarm_pct,
            relay.viewers_pct,
            extra * 10.0 / f64::from(n),
            (relay.swarm_rss_kib as f64 - log.swarm_rss_kib as f64) / f64::from(n),
        );
    }
    Ok(())
}
