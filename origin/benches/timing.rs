//! The origin's timing figures that the integration tests no longer pin (they depend on how
//! busy the machine is): how exactly a hold ends, how soon publishing resumes and at what
//! cadence, how soon nginx serves again after a pause or a crash. Each is measured with the
//! test's own set-up and printed beside its goal; nothing fails the run.
//!
//! `cargo bench -p hls-origin --bench timing` (≈ 40 s; `make bench-origin` runs it). Under
//! `cargo test --all-targets` (no `--bench` argument) it only prints how to run it.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use origin::{Config, Overrides, Source};
use testkit::goals::{Figure, Goal, Table};

/// The tests' replay: low-latency profile (1 s segments), a 3-segment window.
fn one_second_replay() -> anyhow::Result<Config> {
    let mut c = Config::new("low-latency")?;
    c.listen = "127.0.0.1:0".parse()?;
    c.node_exporter = None;
    c.nginx_exporter = None;
    c.source = Source::Replay;
    c.overrides =
        Overrides { height: Some(180), bitrate_kbps: Some(300), window: Some(3), ..Overrides::default() };
    c.loop_segments = 3;
    c.ready_timeout = Duration::from_secs(120);
    Ok(c)
}

async fn sequence(addr: SocketAddr) -> anyhow::Result<u64> {
    let r = origin::http::get(addr, "/stream.m3u8", Duration::from_secs(5)).await?;
    Ok(kit::playlist::parse_media(&r.text())?.media_sequence)
}

/// Polls every 20 ms until the sequence passes `after` or `limit` passes: when it did.
async fn next_change(addr: SocketAddr, after: u64, limit: Duration) -> anyhow::Result<(Instant, u64)> {
    let deadline = Instant::now() + limit;
    loop {
        let s = sequence(addr).await?;
        if s > after {
            return Ok((Instant::now(), s));
        }
        anyhow::ensure!(Instant::now() < deadline, "no new segment within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0))
}

/// Polls until `addr` serves the playlist again: when.
async fn served_again(addr: SocketAddr, limit: Duration) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + limit;
    // First see it stop serving (the pause or the kill took effect), then serve again.
    let mut stopped = false;
    loop {
        let ok = origin::http::get(addr, "/stream.m3u8", Duration::from_millis(500))
            .await
            .is_ok_and(|r| r.status == 200);
        if !ok {
            stopped = true;
        } else if stopped {
            return Ok(Instant::now());
        }
        anyhow::ensure!(Instant::now() < deadline, "nginx did not serve again within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn err<T>(r: anyhow::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{e:#}"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("timing: a benchmark; run it with `cargo bench -p hls-origin --bench timing`");
        return Ok(());
    }
    let cache = tempfile::tempdir()?;
    let mut config = one_second_replay()?;
    config.cache_dir = cache.path().to_owned();
    config.fault_injection = false;
    let origin = origin::start(config).await.context("the origin")?;
    let addr = origin.listen();
    let status = origin.status_addr().context("a status listener")?;
    println!("origin timing figures: low-latency replay (1 s segments) on loopback");
    let mut table = Table::new("hls-origin timing (make bench-origin)");

    // A 3 s hold from the library: where it ends, when publishing resumes, the cadence after.
    let held = sequence(addr).await?;
    let asked = Instant::now();
    let ends = origin.hold(Duration::from_secs(3))?;
    table.add(Figure::duration(
        "hold(3 s): its end after the call, beyond 3 s",
        Ok(ends.saturating_duration_since(asked + Duration::from_secs(3))),
        Goal::Below(0.1),
        "tests: hold::a_hold_freezes…",
    ));
    // A segment being written as the hold began may land; the frozen value is after it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let frozen = sequence(addr).await?.max(held);
    tokio::time::sleep_until(ends.into()).await;
    let first = next_change(addr, frozen, Duration::from_secs(10)).await;
    table.add(Figure::duration(
        "after a hold: first new segment, after the hold's end",
        err(first
            .as_ref()
            .map(|(t, _)| t.saturating_duration_since(ends))
            .map_err(|e| anyhow::anyhow!("{e:#}"))),
        Goal::Below(0.5),
        "tests: hold::a_hold_freezes…",
    ));
    let mut gaps = Vec::new();
    if let Ok((mut at, mut seq)) = first {
        for _ in 0..3 {
            match next_change(addr, seq, Duration::from_secs(10)).await {
                Ok((t, s)) => {
                    gaps.push(t - at);
                    (at, seq) = (t, s);
                }
                Err(_) => break,
            }
        }
    }
    let shortest = gaps.iter().min().copied().ok_or_else(|| "no cadence after the hold".to_owned());
    let longest = gaps.iter().max().copied().ok_or_else(|| "no cadence after the hold".to_owned());
    table.add(Figure::duration(
        "after a hold: shortest gap between the next 3 segments",
        shortest,
        Goal::Within(0.7, 1.3),
        "tests: hold::a_hold_freezes…",
    ));
    table.add(Figure::duration(
        "after a hold: longest gap between the next 3 segments",
        longest,
        Goal::Within(0.7, 1.3),
        "tests: hold::a_hold_freezes…",
    ));

    // POST /hold: the end it reports against the moment the request was sent.
    let before = unix_ms();
    let r = origin::http::request(status, "POST", "/hold?seconds=1.5", Duration::from_secs(5)).await?;
    let body: serde_json::Value = serde_json::from_slice(&r.body)?;
    let reported = body["ends_unix_ms"].as_u64().context("ends_unix_ms")?;
    let off = Duration::from_millis(reported.saturating_sub(before + 1500));
    table.add(Figure::duration(
        "POST /hold?seconds=1.5: reported end after send + 1.5 s",
        Ok(off),
        Goal::Below(0.1),
        "tests: hold::post_hold…, health::post_hold…",
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Pausing nginx for 2 s: serving again after.
    let asked = Instant::now();
    origin::http::request(status, "POST", "/fault/pause?child=nginx&seconds=2", Duration::from_secs(5))
        .await?;
    let back = served_again(addr, Duration::from_secs(30)).await;
    table.add(Figure::duration(
        "pause nginx 2 s: serving again after the request",
        err(back.map(|t| t - asked)),
        Goal::Within(2.0, 3.0),
        "tests: hold::pausing_nginx…, supervisor::pause_stops…",
    ));

    // nginx killed: the supervisor restarts it.
    let asked = Instant::now();
    origin.kill("nginx")?;
    let back = served_again(addr, Duration::from_secs(30)).await;
    table.add(Figure::duration(
        "nginx SIGKILLed: serving again after",
        err(back.map(|t| t - asked)),
        Goal::Below(2.0),
        "tests: hold::pausing_nginx…, lifecycle::killed_encoder_and_nginx…",
    ));
    origin.stop().await?;
    println!();
    print!("{}", table.render());
    Ok(())
}
