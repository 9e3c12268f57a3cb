//! Playback across a viewer's processes: an origin outage is a stall of its length for every
//! viewer, and a stream whose segments never arrive is a failed start. Both fail
//! `--assert stall_ratio==0`.

use std::io::Write;
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

fn report_of(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("the report was written")).expect("JSON")
}

/// nginx is stopped for 10 s while 3 viewers play: each viewer's stall time is the outage
/// as the test saw it (from the stop until the port accepts again), within 2 s, the time
/// without a process shows it was an outage, and `stall_ratio==0` fails the run (exit 5).
///
/// The upper bound holds while the machine has CPU to spare: viewers run at nice 19, so on a
/// saturated machine their restart after the outage is slow, and that is the generator's
/// time, not the origin's. Above 80 % busy only the lower bound is checked.
#[testkit::test]
async fn an_origin_outage_is_a_stall_of_its_length_for_every_viewer() {
    let _machine = shared_machine().await;
    let origin = start_origin().await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("run.json");
    let child = swarm()
        .args(["--clients", "3", "--ramp-rate", "10", "--duration", "34s", "--tui=false"])
        .args(["--assert", "stall_ratio==0", "--report"])
        .arg(&report)
        .arg(origin.playlist_url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let listen = origin.listen();
    // The swarm's own sampler, over the outage and the rest of the run.
    let mut cpu = swarm::measure::generator::CpuSampler::default();
    let _ = cpu.sample(Instant::now());
    let stopped = Instant::now();
    origin.pause("nginx", Duration::from_secs(10)).unwrap();
    // The outage as a viewer would see it: until the port accepts connections again.
    let back = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(500));
        wait_for(Duration::from_secs(30), || {
            TcpStream::connect_timeout(&listen, Duration::from_millis(200)).ok().map(|_| Instant::now())
        })
    })
    .await
    .unwrap()
    .expect("nginx accepts again within 30 s");
    let outage = back.duration_since(stopped).as_secs_f64();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let busy = cpu.sample(Instant::now()).map_or(1.0, |(host, _)| host);
    origin.stop().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "stall_ratio==0 fails: {}", text(&out));
    let r = report_of(&report);
    let rows = r["viewers"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        let stalled = row["stall_seconds"].as_f64().unwrap();
        let upper = if busy > 0.8 { f64::INFINITY } else { outage + 2.0 };
        assert!(
            (outage - 2.0..=upper).contains(&stalled),
            "viewer {}: stalled {stalled:.1} s for an outage of {outage:.1} s (machine {:.0} % busy)\n{stdout}\n{}",
            row["id"],
            busy * 100.0,
            r["playback"]
        );
    }
    let p = &r["playback"];
    assert!(p["interruptions"].as_u64().unwrap() >= 3, "{p}");
    assert!(p["rejoins"].as_u64().unwrap() >= 3, "{p}");
    assert!(p["process_down_seconds"].as_f64().unwrap() > 0.0, "{p}");
    assert_eq!(p["failed_starts"], 0, "{p}");
    assert!(stdout.contains("Interruptions"), "{stdout}");
}

/// A server that answers playlists at once and sends segment bodies at 2 KB/s, for at most
/// `limit`; returns its port and a flag that ends it.
pub fn trickling_server(limit: Duration) -> (u16, Arc<AtomicBool>) {
    serve_for(limit, trickle)
}

fn trickle(sock: TcpStream, until: Instant, done: &AtomicBool) {
    let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
    let Some(path) = request_target(&sock) else { return };
    let mut sock = sock;
    if path.ends_with(".m3u8") {
        let body = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n\
                    #EXTINF:2.0,\nseg1.ts\n#EXTINF:2.0,\nseg2.ts\n#EXTINF:2.0,\nseg3.ts\n";
        let _ = write!(
            sock,
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.apple.mpegurl\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    let size = 400_000;
    let _ = write!(
        sock,
        "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    let chunk = [0x47u8; 2048];
    let mut sent = 0;
    while sent < size && Instant::now() < until && !done.load(Ordering::Relaxed) {
        if sock.write_all(&chunk).is_err() {
            return;
        }
        sent += chunk.len();
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Segments that trickle in at 2 KB/s never play: both viewers are failed starts, their
/// wait is stall time, and `stall_ratio==0` fails the run (exit 5).
#[testkit::test]
async fn segments_that_never_arrive_are_failed_starts() {
    let _machine = shared_machine().await;
    let (port, done) = trickling_server(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("run.json");
    let url = format!("http://127.0.0.1:{port}/live/stream.m3u8");
    let out = tokio::task::spawn_blocking(move || {
        swarm()
            .args(["--clients", "2", "--duration", "16s", "--startup-timeout", "5s", "--tui=false"])
            .args(["--assert", "stall_ratio==0", "--report"])
            .arg(&report)
            .arg(url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    done.store(true, Ordering::Relaxed);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "stall_ratio==0 fails: {}", text(&out));
    let r = report_of(&dir.path().join("run.json"));
    let p = &r["playback"];
    assert_eq!((p["failed_starts"].as_u64(), p["viewers_started"].as_u64()), (Some(2), Some(0)), "{p}");
    assert!(p["stall_ratio"].as_f64().unwrap() > 0.99, "all of the watched time is waiting: {p}");
    assert!(stdout.contains("failed 2 of 2"), "{stdout}");
    assert_eq!(r["fields"]["failed_starts"], 2);
}

/// The origin dates its segments (`EXT-X-PROGRAM-DATE-TIME`): each viewer's distance from the
/// live edge is measured. FFmpeg starts three segments from the end and keeps pace, so it is a
/// few segment durations (2 s each here), the same for every viewer within a segment or two.
#[testkit::test]
async fn viewers_play_a_few_segments_behind_the_live_edge() {
    let _machine = shared_machine().await;
    let origin = start_origin().await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("run.json");
    let args = ["--clients", "2", "--duration", "12s", "--tui=false", "--report"];
    let url = origin.playlist_url();
    let path = report.clone();
    let out = tokio::task::spawn_blocking(move || swarm().args(args).arg(&path).arg(url).output().unwrap())
        .await
        .unwrap();
    origin.stop().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = report_of(&report);
    let l = &r["playback"]["live_edge_latency"];
    let (p50, max) = (l["p50"].as_f64().unwrap(), l["max"].as_f64().unwrap());
    assert!(l["count"].as_u64().unwrap() >= 6, "{l}");
    assert!((2.0..=20.0).contains(&p50) && max <= 30.0, "{l}");
    for row in r["viewers"]["rows"].as_array().unwrap() {
        let v = row["live_latency_seconds"].as_f64().unwrap();
        assert!((2.0..=20.0).contains(&v), "{row}");
    }
    assert!(String::from_utf8_lossy(&out.stdout).contains("Live edge latency p50"), "{}", text(&out));
}
