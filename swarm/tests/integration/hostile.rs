//! Streams the swarm does not control: `--check` is bounded in time, judges real-time
//! delivery, and ends at once on a signal.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::*;
use crate::playback::trickling_server;

/// Segments at 2 KB/s: the playlists answer, the segment never completes within --timeout.
#[testkit::test]
fn check_calls_a_trickling_stream_not_playable_in_real_time() {
    let (port, done) = trickling_server(Duration::from_secs(60));
    let url = format!("http://127.0.0.1:{port}/live.m3u8");
    let t = Instant::now();
    let out = run_swarm(&["--check", "--timeout", "3s", &url]);
    let took = t.elapsed();
    done.store(true, Ordering::Relaxed);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(stdout.contains("✗ not playable in real time: segment of 2.0 s"), "{stdout}");
    assert!(stdout.contains("was not complete after 3s (--timeout)"), "{stdout}");
    // Bounded: three requests of at most --timeout each, far below the minutes a trickle takes.
    assert!(took < Duration::from_secs(30), "--check took {took:?}");
}

/// SIGTERM while `--check` waits on a trickling segment ends it at once (exit 130).
#[testkit::test]
fn a_signal_ends_check_at_once() {
    let (port, done) = trickling_server(Duration::from_secs(90));
    let url = format!("http://127.0.0.1:{port}/live.m3u8");
    let mut child = swarm()
        .args(["--check", "--timeout", "60s", &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let sent = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let exited = wait_for(Duration::from_secs(30), || child.try_wait().unwrap());
    done.store(true, Ordering::Relaxed);
    let status = exited.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("--check still running 30 s after SIGTERM")
    });
    let out = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(130), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("interrupted before the run started"),
        "{}",
        text(&out)
    );
    assert!(sent.elapsed() < Duration::from_secs(30));
}
