//! The engines side by side: N FFmpeg viewers and N native viewers play the same replay origin
//! at the same time (one swarm each), and their traffic per viewer per minute of watching is
//! compared: media playlist loads, segments and bytes. A native viewer is meant to load the
//! network as an FFmpeg viewer of the same stream does; the goal is within 5 % on each figure
//! (exit 1 otherwise). Both swarms measure every request (the relay, the native player), and
//! both start three segments from the live edge, so the start-up burst is the same on both
//! sides.
//!
//! `cargo bench -p hls-swarm --bench parity -- [--viewers N] [--seconds S]` (defaults 10 and
//! 120). Writes the figures as JSON to `target/bench/parity-<UTC time>.json`. Under
//! `cargo test --all-targets` (no `--bench` argument) it only prints how to run it.

use std::process::{Command, Stdio};

use anyhow::Context;
use serde_json::Value;

#[path = "common/replay.rs"]
mod replay;

const HOW: &str = "cargo bench -p hls-swarm --bench parity -- [--viewers N] [--seconds S]";
/// Largest difference allowed between the engines, percent of the FFmpeg figure.
const GOAL_PCT: f64 = 5.0;

/// Per viewer per minute watched: media playlists, segments, bytes.
fn per_minute(report: &Value) -> anyhow::Result<[f64; 3]> {
    let get =
        |p: &str| report.pointer(p).and_then(Value::as_f64).with_context(|| format!("{p} in the report"));
    let minutes = get("/playback/watch_seconds")? / 60.0;
    anyhow::ensure!(minutes > 0.0, "nobody watched");
    Ok([
        get("/requests/by_kind/playlist/count")? / minutes,
        get("/requests/by_kind/segment/count")? / minutes,
        get("/requests/bytes")? / minutes,
    ])
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("parity: FFmpeg and native viewers side by side; run it with `{HOW}`");
        return Ok(());
    }
    let (mut viewers, mut seconds) = (10u32, 120u32);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut number = |name: &str| -> anyhow::Result<u32> {
            let v: u32 = args.next().with_context(|| format!("{name} needs a number"))?.parse()?;
            anyhow::ensure!(v > 0, "{name} must be > 0");
            Ok(v)
        };
        match a.as_str() {
            "--bench" => {}
            "--viewers" => viewers = number("--viewers")?,
            "--seconds" => seconds = number("--seconds")?,
            other => anyhow::bail!("unknown argument {other:?}; usage: {HOW}"),
        }
    }
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("bench")))
        .unwrap_or_else(|| "target/bench".into());
    std::fs::create_dir_all(&dir)?;
    let origin = replay::start(640, 360, 800).await.context("origin")?;
    let url = origin.playlist_url();
    let bin = env!("CARGO_BIN_EXE_hls-swarm");
    println!("parity: {viewers} FFmpeg and {viewers} native viewers for {seconds} s at once against {url}");
    let engines = ["ffmpeg", "native"];
    let children = engines
        .iter()
        .map(|engine| {
            let report = dir.join(format!("parity-{engine}.json"));
            let child = Command::new(bin)
                .args(["--engine", engine, "--clients", &viewers.to_string(), "--ramp-rate", "5"])
                .args(["--duration", &format!("{seconds}s"), "--tui=false", "--metrics", "off"])
                .args(["--user-agent", &format!("parity-{engine}"), "--report"])
                .arg(&report)
                .arg(&url)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .context("hls-swarm")?;
            Ok((child, report))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut figures = Vec::new();
    for (mut child, report) in children {
        let status = child.wait()?;
        anyhow::ensure!(status.success(), "a swarm exited {status}");
        let text = std::fs::read_to_string(&report).with_context(|| report.display().to_string())?;
        figures.push(per_minute(&serde_json::from_str(&text)?)?);
    }
    origin.stop().await?;

    println!();
    println!("{:<28} {:>12} {:>12} {:>9}", "per viewer per minute", "ffmpeg", "native", "native/ff");
    let names = ["media playlist loads", "segments", "bytes"];
    let mut rows = Vec::new();
    let mut failed = false;
    for (i, name) in names.iter().enumerate() {
        let (ff, na) = (figures[0][i], figures[1][i]);
        let off = (na - ff) / ff * 100.0;
        let ok = off.abs() <= GOAL_PCT;
        failed |= !ok;
        println!(
            "{name:<28} {ff:>12.1} {na:>12.1} {:>9.3}  {} {off:+.1} % (goal ±{GOAL_PCT} %)",
            na / ff,
            if ok { "✓" } else { "✗" }
        );
        rows.push(
            serde_json::json!({"figure": name, "ffmpeg": ff, "native": na, "off_pct": off, "passed": ok}),
        );
    }
    let stamp =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(['-', ':'], "");
    let path = dir.join(format!("parity-{stamp}.json"));
    let record =
        serde_json::json!({"viewers": viewers, "seconds": seconds, "goal_pct": GOAL_PCT, "rows": rows});
    std::fs::write(&path, serde_json::to_string_pretty(&record)?)?;
    println!("JSON: {}", path.display());
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
