//! Whole runs: duration, Ctrl+C, SIGKILL, and what is left behind.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::*;

#[testkit::test]
async fn timed_run_streams_every_viewer_and_reports_it() {
    let _machine = shared_machine().await;
    let (out, stdout) = run_against_origin("--clients 5 --ramp-rate 5 --duration 12s --tui=false").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout.contains("Preflight checks:"), "{}", text(&out));
    assert_eq!(summary_number(&stdout, "Viewers", "target"), Some(5), "{stdout}");
    assert_eq!(summary_number(&stdout, "Viewers", "started"), Some(5), "{stdout}");
    assert_eq!(summary_number(&stdout, "Viewers", "streaming"), Some(5), "{stdout}");
    assert_eq!(summary_number(&stdout, "Lifecycle", "restarts"), Some(0), "{stdout}");
    let segments = summary_number(&stdout, "Requests", "segments").unwrap_or(0);
    // 5 viewers × ~12 s of 2 s segments, plus each viewer's initial burst.
    assert!(segments >= 5 * 4, "too few segments: {stdout}");
    assert!(stdout.contains("Exits (own)       none"), "{stdout}");
    assert!(stdout.contains("Exits (on stop)   5 × "), "{stdout}");
    assert!(stdout.contains("duration reached"), "{stdout}");
}

/// Starts the swarm in the background and waits until `n` FFmpeg children run.
fn start_swarm_with_children(url: &str, n: usize) -> (std::process::Child, Vec<Proc>) {
    let child = swarm()
        .args(["--clients", &n.to_string(), "--ramp-rate", "10", "--tui=false", "--skip-preflight", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let kids = wait_for(Duration::from_secs(20), || {
        let k = children_of(pid);
        (k.len() == n).then_some(k)
    })
    .unwrap_or_else(|| panic!("{n} viewers did not start; children: {:?}", children_of(pid)));
    (child, kids)
}

#[testkit::test]
async fn ctrl_c_stops_gracefully_and_reaps_every_viewer() {
    let _machine = shared_machine().await;
    let origin = start_origin().await;
    let url = origin.playlist_url();
    let out = tokio::task::spawn_blocking(move || {
        let (child, kids) = start_swarm_with_children(&url, 4);
        // Let them stream a little, then interrupt as a terminal's Ctrl+C would.
        std::thread::sleep(Duration::from_secs(3));
        let t = Instant::now();
        kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
        let out = child.wait_with_output().unwrap();
        let took = t.elapsed();
        assert!(survivors_after(&kids, Duration::ZERO).is_empty(), "viewers outlived the swarm");
        (out, took)
    })
    .await
    .unwrap();
    origin.stop().await.unwrap();
    let (out, took) = out;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout.contains("stopped by signal"), "{stdout}");
    // SIGTERM reached FFmpeg, which exits with 255 after a signal; nothing needed SIGKILL.
    assert!(stdout.contains("Exits (on stop)   4 × exit 255"), "{stdout}");
    // The stop grace is 3 s; a generous bound that only a hang breaks (the reap time itself
    // is a figure of `make bench-swarm`).
    assert!(took < Duration::from_secs(30), "stop took {took:?}");
}

#[testkit::test]
async fn sigkill_of_the_swarm_leaves_no_viewer_running() {
    let _machine = shared_machine().await;
    let origin = start_origin().await;
    let url = origin.playlist_url();
    let survivors = tokio::task::spawn_blocking(move || {
        let (mut child, kids) = start_swarm_with_children(&url, 3);
        child.kill().unwrap(); // SIGKILL: no cleanup code runs, only PR_SET_PDEATHSIG.
        child.wait().unwrap();
        survivors_after(&kids, Duration::from_secs(5))
    })
    .await
    .unwrap();
    origin.stop().await.unwrap();
    assert!(survivors.is_empty(), "FFmpeg viewers survived SIGKILL of the swarm: {survivors:?}");
}

#[testkit::test]
async fn viewers_of_a_dead_origin_restart_with_backoff() {
    let _machine = shared_machine().await;
    // A port where nothing listens: every viewer fails at once and is restarted.
    // Reserved: nothing else listens there while this test runs.
    let port_reserved = testkit::port::reserve().unwrap();
    let port = port_reserved.get();
    let url = format!("http://127.0.0.1:{port}/stream.m3u8");
    let out = tokio::task::spawn_blocking(move || {
        run_swarm(&[
            "--clients",
            "2",
            "--duration",
            "4s",
            "--tui=false",
            "--skip-preflight",
            "--reconnect=false",
            &url,
        ])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let restarts = summary_number(&stdout, "Lifecycle", "restarts").unwrap_or(0);
    // Each viewer fails at once and is restarted at least once in 4 s. The backoff schedule
    // bounds the count from above whatever the machine's speed (a slow machine only makes it
    // smaller): the delays 250 ms × 1.7^n, each shortened by at most the jitter, add up past
    // 4 s after `max_restarts_within` restarts. A tight loop would make hundreds. How many a
    // quiet machine makes is in `make bench-swarm`'s timing table.
    let most = 2 * max_restarts_within(Duration::from_secs(4));
    assert!((2..=most).contains(&restarts), "restarts {restarts}, at most {most}: {stdout}");
    assert!(stdout.contains("Connection refused"), "the last failure's log lines are shown: {stdout}");
    assert!(summary_number(&stdout, "Errors", "network").unwrap_or(0) >= restarts, "{stdout}");
}

/// The most restarts one viewer's backoff allows in `window`: the default policy's delays
/// (250 ms × 1.7ⁿ up to 5 s, jitter ±20 %) at their shortest, with no time for FFmpeg itself.
fn max_restarts_within(window: Duration) -> u64 {
    let (mut delay, mut spent, mut n) = (0.25_f64, 0.0_f64, 0);
    loop {
        spent += delay * 0.8;
        if spent > window.as_secs_f64() {
            return n;
        }
        n += 1;
        delay = (delay * 1.7).min(5.0);
    }
}
