//! The swarm's cost per viewer, side by side in one run: `hls-swarm` with the relay, with
//! `--measure log`, and the same N as bare FFmpeg processes (the floor), against a CPU-light
//! replay origin on loopback.
//!
//! `cargo bench -p hls-swarm --bench swarm -- [--quick] [--seconds S] [--settle S]
//! [--ramp-rate R] [--native N,N...|none] [VIEWERS...]` — default N = 50 100 200, a 45 s window
//! after every viewer has run 10 s, ramp 5/s; `--quick`: N = 20, 15 s window, 5 s settle. Then
//! the native engine (`--engine native`, started at 200/s) at N = 200, 1000, 2000 (`--quick`:
//! 200), compared per viewer with the FFmpeg rows, with the origin's own CPU beside each row.
//! Then native viewers of the `ll-hls` profile (`--ll-hls N,N...|none`, default 200 and 1000,
//! `--quick`: 200): their cost per viewer, and the requests the origin holds open for them
//! (blocking reloads, preload-hinted parts) against the swarm's memory.
//!
//! Starts the test origin in this process (replay of a 640x360 ~800 kbit/s loop, encoded once
//! into the origin's cache dir, no exporters), then for each N runs, one after the other:
//! the `hls-swarm` binary cargo built for this bench (`CARGO_BIN_EXE_hls-swarm`, release
//! settings under `cargo bench`) as
//! `hls-swarm --clients N --ramp-rate R --duration D --metrics off --tui=false --measure relay|log URL`,
//! and N bare FFmpeg processes with the viewers' own command (`hls-swarm --print-cmd --measure
//! log URL`) started by a plain loop at the same rate. Each run: wait until N viewers run,
//! let them stream for the settle time, measure the window from `/proc` (see [`run`]), then
//! SIGINT the swarm (its `--duration` is never reached) and time until every child is reaped.
//! Prints one table, the ratios between the rows and the goals of issues 10 and 17 with ✓/✗, and
//! writes it all as JSON to `target/bench/swarm-<UTC time>.json` and `swarm-latest.json`.
//! Nothing is asserted: a missed goal is printed as missed.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it only prints how to run it.

mod proc;
#[path = "../common/replay.rs"]
mod replay;
mod report;
mod run;

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::run::Plan;

const HOW: &str =
    "cargo bench -p hls-swarm --bench swarm -- [--quick] [--seconds S] [--settle S] [--ramp-rate R] [--native N,N...|none] [--ll-hls N,N...|none] [N...]";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("swarm: the load benchmark (several minutes); run it with `make bench-swarm` or `{HOW}`");
        return Ok(());
    }
    let mut quick = false;
    let mut window = None;
    let mut settle = None;
    let mut ramp_rate = 5.0;
    let mut counts: Vec<u32> = Vec::new();
    let mut native_counts: Option<Vec<u32>> = None;
    let mut ll_counts: Option<Vec<u32>> = None;
    let mut args = std::env::args().skip(1);
    let number = |name: &str, v: Option<String>| -> anyhow::Result<f64> {
        let v: f64 = v.with_context(|| format!("{name} needs a number"))?.parse()?;
        anyhow::ensure!(v > 0.0 && v.is_finite(), "{name} must be > 0");
        Ok(v)
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bench" => {}
            "--quick" => quick = true,
            "--seconds" => window = Some(number("--seconds", args.next())?),
            "--settle" => settle = Some(number("--settle", args.next())?),
            "--ramp-rate" => ramp_rate = number("--ramp-rate", args.next())?,
            "--ll-hls" => {
                let v = args.next().context("--ll-hls needs N[,N...] or none")?;
                let list = ll_counts.get_or_insert_with(Vec::new);
                for n in v.split(',').filter(|n| *n != "none") {
                    list.push(n.parse().with_context(|| format!("--ll-hls {v}: N[,N...] or none"))?);
                }
            }
            "--native" => {
                let v = args.next().context("--native needs N[,N...] or none")?;
                let list = native_counts.get_or_insert_with(Vec::new);
                for n in v.split(',').filter(|n| *n != "none") {
                    list.push(n.parse().with_context(|| format!("--native {v}: N[,N...] or none"))?);
                }
            }
            n if n.parse::<u32>().is_ok_and(|n| n > 0) => counts.push(n.parse()?),
            other => anyhow::bail!("unknown argument {other:?}; usage: {HOW}"),
        }
    }
    if counts.is_empty() {
        counts = if quick { vec![20] } else { vec![50, 100, 200] };
    }
    let native_counts =
        native_counts.unwrap_or_else(|| if quick { vec![200] } else { vec![200, 1000, 2000] });
    let ll_counts = ll_counts.unwrap_or_else(|| if quick { vec![200] } else { vec![200, 1000] });
    let plan = Plan {
        ramp_rate,
        native_ramp_rate: 200.0,
        settle: Duration::from_secs_f64(settle.unwrap_or(if quick { 5.0 } else { 10.0 })),
        window: Duration::from_secs_f64(window.unwrap_or(if quick { 15.0 } else { 45.0 })),
    };
    let bin = env!("CARGO_BIN_EXE_hls-swarm");
    if bin.contains("/debug/") {
        println!("note: {bin} is a debug build; `cargo bench` measures the release-profile one");
    }
    let stamp =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(['-', ':'], "");

    // How busy the machine is before anything starts.
    let before = proc::MachineCpu::read();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let busy_before = before.zip(proc::MachineCpu::read()).map(|(a, b)| b.busy_pct_since(a));

    let started = Instant::now();
    let origin = replay::start(640, 360, 800).await.context("origin")?;
    let url = origin.playlist_url();
    let _ = run::ORIGIN_PIDS.set(origin.pids().into_iter().map(|(_, p)| p).collect());
    let argv = run::viewer_argv(bin, &url).await?;
    let ffmpeg = ffmpeg_version(argv.first().map_or("ffmpeg", String::as_str)).await;
    let cores = proc::cores();

    println!("origin {url} (640x360 800 kbit/s replay) ready in {:.1} s", started.elapsed().as_secs_f64());
    println!("hls-swarm {bin}");
    println!("{ffmpeg}; {cores} cores; kernel {}", kernel());
    println!(
        "machine busy {} % of all cores in the 3 s before the bench",
        busy_before.map_or_else(|| "-".to_owned(), |b| format!("{b:.1}"))
    );
    println!(
        "ramp {ramp_rate}/s (an FFmpeg start costs ≈ 0.14 CPU-s: {cores} cores start ≤ ≈ {:.0}/s with nothing else \
         running); window {:.0} s after every viewer ran {:.0} s; {}",
        f64::from(cores) / 0.14,
        plan.window.as_secs_f64(),
        plan.settle.as_secs_f64(),
        if quick { "quick mode (smoke test, not the goals' N)" } else { "full run" }
    );
    println!("floor: {}", argv.join(" "));
    println!();
    println!("{}", report::header());
    let mut rows = Vec::new();
    for &n in &counts {
        for mode in ["relay", "log", "floor"] {
            let row = match mode {
                "floor" => run::floor(&argv, n, plan).await,
                _ => run::swarm(bin, &url, n, mode, plan).await,
            };
            match row {
                Ok(r) => {
                    println!("{}", report::line(&r));
                    rows.push(r);
                }
                Err(e) => println!("{n:>4} {mode:<5} failed: {e:#}"),
            }
            // Let the previous run's exits and the page cache settle before the next ramp.
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }
    for &n in &native_counts {
        match run::swarm(bin, &url, n, "native", plan).await {
            Ok(r) => {
                println!("{}", report::line(&r));
                rows.push(r);
            }
            Err(e) => println!("{n:>4} native failed: {e:#}"),
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    origin.stop().await?;
    if !ll_counts.is_empty() {
        let ll = replay::start_profile("ll-hls", 640, 360, 800).await.context("ll-hls origin")?;
        let stream = ll.llhls().cloned().context("the ll-hls origin has an LL-HLS stream")?;
        let url = ll.playlist_url();
        for &n in &ll_counts {
            // Requests held open by the origin, sampled while the run goes on.
            let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let sampler = {
                let (stream, samples) = (stream.clone(), samples.clone());
                tokio::spawn(async move {
                    loop {
                        samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(stream.held());
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                })
            };
            let row = run::swarm(bin, &url, n, "ll-hls", plan).await;
            sampler.abort();
            let samples = samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            match row {
                Ok(mut r) => {
                    // The LL-HLS server runs in this process: nginx alone is not the origin.
                    r.origin_cpu_pct = None;
                    r.held_requests = report::loaded_median(&samples);
                    println!("{}", report::line(&r));
                    rows.push(r);
                }
                Err(e) => println!("{n:>4} ll-hls failed: {e:#}"),
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        ll.stop().await?;
    }

    println!();
    println!("{}", report::LEGEND);
    println!();
    println!("{}", report::native_text(&rows, &counts, &native_counts));
    if !ll_counts.is_empty() {
        println!("{}", report::ll_hls_text(&rows, &ll_counts));
    }
    println!();
    let derived: Vec<_> = counts.iter().map(|&n| report::derive(&rows, n)).collect();
    for d in &derived {
        println!("{}", report::derived_text(d, &rows));
    }
    println!();
    let disturbed = rows.iter().filter(|r| r.others_cpu_pct > report::DISTURBED_PCT).count();
    if disturbed > 0 {
        println!(
            "note: another load used > {} % of a core in {disturbed} of {} windows (marked !)",
            report::DISTURBED_PCT,
            rows.len()
        );
    }
    let mut goals = report::goals(&rows, &counts);
    goals.extend(report::native_goals(&rows, &counts, &native_counts));
    println!("Goals (issues 10 and 17):");
    for g in &goals {
        println!("{}", g.text());
    }
    let record = report::Record {
        started: stamp.clone(),
        quick,
        cores,
        kernel: kernel(),
        ffmpeg,
        hls_swarm: bin,
        ramp_rate,
        settle_s: plan.settle.as_secs_f64(),
        window_s: plan.window.as_secs_f64(),
        busy_before_pct: busy_before,
        rows: &rows,
        derived,
        goals,
    };
    let path = report::write(&report::out_dir(), &stamp, &record)?;
    println!();
    println!("JSON: {} (and swarm-latest.json beside it)", path.display());
    Ok(())
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "?".to_owned(), |s| s.trim().to_owned())
}

/// The first line of `ffmpeg -version`.
async fn ffmpeg_version(program: &str) -> String {
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg("-version").stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped());
    let Ok(mut child) = procgroup::spawn(&mut cmd) else { return format!("{program} (version unknown)") };
    let mut text = String::new();
    if let Some(mut out) = child.child_mut().stdout.take() {
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut out, &mut text).await;
    }
    let _ = child.wait().await;
    text.lines().next().map_or_else(
        || format!("{program} (version unknown)"),
        |l| l.split(" Copyright").next().unwrap_or(l).to_owned(),
    )
}
