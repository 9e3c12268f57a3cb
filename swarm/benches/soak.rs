//! The soak: a long run at constant load, watching the swarm for growth. `make soak` runs 100
//! FFmpeg viewers for 30 minutes against the replay origin; every 10 s it samples the swarm
//! process's RSS, open file descriptors and threads and its stats tick's lag (from
//! `/metrics`), prints the curve, and fails (exit 1) if RSS or open descriptors grew by more
//! than 5 % from the 5-minute sample to the largest later one.
//!
//! `cargo bench -p hls-swarm --bench soak -- [--engine ffmpeg|native] [--viewers N] [--minutes M]
//! [--settle-minutes S]` (defaults ffmpeg, 100, 30, 5; native viewers start at 200/s, FFmpeg at
//! 5/s). `make soak` runs 100 FFmpeg viewers, then 2,000 native ones. Writes the samples as JSON to `target/bench/soak-<UTC time>.json`.
//! Under `cargo test --all-targets` (no `--bench` argument) it only prints how to run it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

#[path = "common/replay.rs"]
mod replay;

const HOW: &str = "cargo bench -p hls-swarm --bench soak -- [--engine ffmpeg|native] [--viewers N] [--minutes M] [--settle-minutes S]";
/// Largest growth allowed after the settle time, percent.
const GROWTH_LIMIT_PCT: f64 = 5.0;
const EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, serde::Serialize)]
struct Sample {
    at_s: f64,
    rss_kib: u64,
    fds: u64,
    threads: u64,
    tick_lag_max_s: Option<f64>,
    streaming: Option<f64>,
}

fn status_field(pid: u32, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(name)?.split_whitespace().next()?.parse().ok())
}

fn sample(pid: u32, at: Duration, metrics: &str) -> Option<Sample> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    let scrape =
        kit::http::get(metrics.parse().ok()?, "/metrics", Duration::from_secs(5)).ok().map(|r| r.text());
    let samples = scrape.as_deref().map(kit::exposition::parse).unwrap_or_default();
    Some(Sample {
        at_s: at.as_secs_f64(),
        rss_kib: status_field(pid, "VmRSS:")?,
        fds,
        threads: status_field(pid, "Threads:")?,
        tick_lag_max_s: kit::exposition::sum(&samples, "hls_swarm_stats_tick_lag_max_seconds"),
        streaming: kit::exposition::sum(&samples, "hls_swarm_streaming_clients"),
    })
}

/// Growth from the first sample at or after `settle` to the largest later value, percent.
fn growth(samples: &[Sample], settle: f64, value: impl Fn(&Sample) -> f64) -> Option<(f64, f64, f64)> {
    let base_at = samples.iter().position(|s| s.at_s >= settle)?;
    let base = value(&samples[base_at]);
    let peak = samples[base_at..].iter().map(&value).fold(base, f64::max);
    (base > 0.0).then(|| (base, peak, (peak - base) / base * 100.0))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("soak: 100 viewers for 30 minutes; run it with `make soak` or `{HOW}`");
        return Ok(());
    }
    let (mut viewers, mut minutes, mut settle) = (100u32, 30.0f64, 5.0f64);
    let mut engine = "ffmpeg".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--engine" {
            engine = args.next().context("--engine needs ffmpeg or native")?;
            anyhow::ensure!(
                ["ffmpeg", "native"].contains(&engine.as_str()),
                "--engine {engine}: ffmpeg or native"
            );
            continue;
        }
        let mut number = |name: &str| -> anyhow::Result<f64> {
            let v: f64 = args.next().with_context(|| format!("{name} needs a number"))?.parse()?;
            anyhow::ensure!(v > 0.0 && v.is_finite(), "{name} must be > 0");
            Ok(v)
        };
        match a.as_str() {
            "--bench" => {}
            "--viewers" => viewers = number("--viewers")? as u32,
            "--minutes" => minutes = number("--minutes")?,
            "--settle-minutes" => settle = number("--settle-minutes")?,
            other => anyhow::bail!("unknown argument {other:?}; usage: {HOW}"),
        }
    }
    anyhow::ensure!(settle < minutes, "--settle-minutes must be below --minutes");

    let origin = replay::start(640, 360, 800).await.context("origin")?;
    let url = origin.playlist_url();
    let bin = env!("CARGO_BIN_EXE_hls-swarm");
    let duration = Duration::from_secs_f64(minutes * 60.0);
    println!(
        "soak: {viewers} {engine} viewers for {minutes} min against {url} (640x360 800 kbit/s replay); {bin}"
    );
    let ramp = if engine == "native" { "200" } else { "5" };
    println!(
        "growth limit {GROWTH_LIMIT_PCT} % from the {settle}-minute sample on; a sample every {} s",
        EVERY.as_secs()
    );

    let mut child = Command::new(bin)
        .args([
            "--clients",
            &viewers.to_string(),
            "--engine",
            &engine,
            "--ramp-rate",
            ramp,
            "--tui=false",
            "--metrics",
            "127.0.0.1:0",
        ])
        .args(["--status-interval", "60s", "--duration", &format!("{}s", duration.as_secs() + 5), &url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("hls-swarm")?;
    let pid = child.id();
    let mut reader = BufReader::new(child.stdout.take().context("stdout")?);
    let mut metrics = None;
    let mut line = String::new();
    while metrics.is_none() && reader.read_line(&mut line)? > 0 {
        metrics = line
            .trim()
            .strip_prefix("Metrics: http://")
            .and_then(|r| r.strip_suffix("/metrics"))
            .map(str::to_owned);
        line.clear();
    }
    let metrics = metrics.context("the swarm printed no metrics address")?;
    let rest = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = reader.read_to_string(&mut s);
        s
    });

    println!();
    println!(
        "{:>7} {:>9} {:>6} {:>7} {:>10} {:>9}",
        "min", "RSS MiB", "fds", "threads", "tick lag", "streaming"
    );
    let t0 = Instant::now();
    let mut samples = Vec::new();
    while t0.elapsed() < duration {
        tokio::time::sleep(EVERY).await;
        let Some(s) = tokio::task::spawn_blocking({
            let metrics = metrics.clone();
            let at = t0.elapsed();
            move || sample(pid, at, &metrics)
        })
        .await?
        else {
            break;
        };
        println!(
            "{:>7.1} {:>9.1} {:>6} {:>7} {:>10} {:>9}",
            s.at_s / 60.0,
            s.rss_kib as f64 / 1024.0,
            s.fds,
            s.threads,
            s.tick_lag_max_s.map_or_else(|| "-".to_owned(), |l| format!("{:.1}ms", l * 1000.0)),
            s.streaming.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"))
        );
        samples.push(s);
    }
    let status = child.wait()?;
    let summary = rest.join().unwrap_or_default();
    origin.stop().await?;

    let settle_s = settle * 60.0;
    let rss = growth(&samples, settle_s, |s| s.rss_kib as f64);
    let fds = growth(&samples, settle_s, |s| s.fds as f64);
    println!();
    let mut failed = !status.success();
    for (what, g) in [("RSS (KiB)", rss), ("open fds", fds)] {
        match g {
            Some((base, peak, pct)) => {
                let ok = pct <= GROWTH_LIMIT_PCT;
                failed |= !ok;
                println!(
                    "{} {what}: {base:.0} at {settle} min, largest later {peak:.0}: {pct:+.2} % (limit {GROWTH_LIMIT_PCT} %)",
                    if ok { "✓" } else { "✗" }
                );
            }
            None => {
                failed = true;
                println!("✗ {what}: no sample after {settle} min");
            }
        }
    }
    println!("the swarm exited {status}; its summary:\n{summary}");
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("bench")))
        .unwrap_or_else(|| "target/bench".into());
    std::fs::create_dir_all(&dir)?;
    let stamp =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(['-', ':'], "");
    let path = dir.join(format!("soak-{stamp}.json"));
    let record = serde_json::json!({
        "engine": engine, "viewers": viewers, "minutes": minutes, "settle_minutes": settle,
        "growth_limit_pct": GROWTH_LIMIT_PCT, "samples": samples,
        "rss_growth_pct": rss.map(|g| g.2), "fd_growth_pct": fds.map(|g| g.2), "passed": !failed,
    });
    std::fs::write(&path, serde_json::to_string_pretty(&record)?)?;
    println!("JSON: {}", path.display());
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
