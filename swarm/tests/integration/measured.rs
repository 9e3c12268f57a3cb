//! Measured, not inferred: the relay's numbers against the origin's own access log and
//! exporters, the player model against a real stall, and `/metrics` against its documentation.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;

/// A swarm run that serves `/metrics` on a free port, scraped once at `scrape_at`.
struct Scraped {
    stdout: String,
    status: Option<i32>,
    scrape: String,
}

fn run_and_scrape(args: &[&str], scrape_at: Duration) -> Scraped {
    run_and_scrape_when(args, scrape_at, |_| true)
}

/// As [`run_and_scrape`], but from `scrape_at` on scrapes every 200 ms until `wanted` accepts a
/// scrape or the swarm exits; the last scrape is returned either way.
fn run_and_scrape_when(args: &[&str], scrape_at: Duration, wanted: impl Fn(&str) -> bool) -> Scraped {
    let mut child = swarm()
        .env("HLS_SWARM_METRICS", "127.0.0.1:0")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("hls-swarm starts");
    let started = Instant::now();
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut stdout = String::new();
    let mut addr = None;
    let mut line = String::new();
    while addr.is_none() && reader.read_line(&mut line).unwrap_or(0) > 0 {
        if let Some(rest) = line.trim().strip_prefix("Metrics: http://") {
            addr = rest.strip_suffix("/metrics").map(str::to_owned);
        }
        stdout.push_str(&line);
        line.clear();
    }
    let addr = addr.expect("the swarm prints its metrics address");
    // Keep reading stdout meanwhile, so the swarm never blocks on a full pipe.
    let rest = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut reader, &mut s);
        s
    });
    std::thread::sleep(scrape_at.saturating_sub(started.elapsed()));
    let mut scrape = http_get(&addr, "/metrics");
    while !wanted(&scrape) && child.try_wait().expect("swarm status").is_none() {
        std::thread::sleep(Duration::from_millis(200));
        match try_http_get(&addr, "/metrics") {
            Ok(next) if !next.is_empty() => scrape = next,
            _ => break, // the swarm is stopping: keep the last real scrape
        }
    }
    let status = child.wait().expect("swarm exits").code();
    stdout.push_str(&rest.join().expect("reader"));
    Scraped { stdout, status, scrape }
}

/// The acceptance run: 20 viewers × 30 s through the relay, against the logged origin with its
/// exporters. Counts by kind must equal nginx's log exactly, bytes within 1 %.
#[testkit::test]
async fn relay_counts_match_the_origin_log_and_every_documented_metric_moves() -> testkit::Outcome {
    let promtool = testkit::need::program("promtool")?;
    let _machine = whole_machine().await;
    let logs = tempfile::tempdir().unwrap();
    let origin = start_logged_origin(true, logs.path()).await;
    let url = origin.playlist_url();
    let node = format!("http://{}/metrics", origin.node_exporter().unwrap());
    let nginx = format!("http://{}/metrics", origin.nginx_exporter().unwrap());
    let log = origin.access_log().expect("logged profile has an access log");
    let run = tokio::task::spawn_blocking(move || {
        run_and_scrape(
            &[
                "--clients",
                "20",
                "--ramp-rate",
                "10",
                "--duration",
                "30s",
                "--origin-metrics",
                &node,
                "--nginx-metrics",
                &nginx,
                "--origin-metrics-interval",
                "1s",
                &url,
            ],
            Duration::from_secs(25),
        )
    })
    .await
    .unwrap();
    // Stopping nginx flushes its buffered access log.
    origin.stop().await.unwrap();
    let out = &run.stdout;
    assert_eq!(run.status, Some(0), "{out}");

    let (nginx_playlists, nginx_segments, nginx_bytes) = viewer_lines(&log);
    assert!(nginx_segments > 20 * 10, "a real run: {nginx_segments} segments logged");
    assert_eq!(summary_number(out, "Requests", "playlists"), Some(nginx_playlists), "{out}");
    assert_eq!(summary_number(out, "Requests", "segments"), Some(nginx_segments), "{out}");
    let bytes = summary_number(out, "Bytes", "bytes").expect("bytes in the summary") as f64;
    let off = (bytes - nginx_bytes as f64).abs() / nginx_bytes as f64;
    assert!(off < 0.01, "swarm {bytes} bytes vs nginx {nginx_bytes}: {:.3} % apart\n{out}", off * 100.0);

    // Loopback latencies are milliseconds (the Go tool reports ≈ the segment duration).
    let m = &run.scrape;
    let count = metric_sum(m, "hls_swarm_time_to_first_byte_seconds_count").unwrap();
    let samples = kit::exposition::parse(m);
    let bucket = |name: &str, le: &str| {
        kit::exposition::sum_where(&samples, name, |s| {
            s.label("kind") == Some("segment") && s.label("le") == Some(le)
        })
        .unwrap_or_else(|| panic!("no {name} for segments with le={le}"))
    };
    let seg_count = bucket("hls_swarm_time_to_first_byte_seconds_bucket", "+Inf");
    assert!(count >= seg_count && seg_count > 100.0, "{count} {seg_count}");
    // Measured per request, not inferred from log timing (which puts it at about the segment
    // duration, 2 s): p95 below half a segment even on a loaded machine. The loopback figure
    // itself (goal: p95 under 100 ms) is in `make bench-swarm`'s timing table.
    let fast = bucket("hls_swarm_time_to_first_byte_seconds_bucket", "1");
    assert!(fast >= 0.95 * seg_count, "segment TTFB p95 under 1 s: {fast} of {seg_count}");
    let p95 = metric_sum(m, "hls_swarm_inferred_latency_p95_seconds").unwrap();
    assert!(p95 > 0.0 && p95 < 1.0, "segment download p95 {p95} s");

    // Refreshes: counted per viewer, not two per process. A live player reloads once per
    // target duration when the playlist changed and after half of one when it did not, so
    // 30 to 60 a minute, plus the first loads; the exact count equals nginx's (above). The
    // figure on a quiet machine (goal: 30 ± 50 %) is in `make bench-swarm`'s timing table.
    let per_minute = summary_float(out, "Playlist refresh", "per").expect("refresh line");
    assert!((10.0..=90.0).contains(&per_minute), "{per_minute} refreshes per viewer per minute\n{out}");
    assert_eq!(summary_number(out, "Playback", "stalls"), Some(0), "a clean run never stalls\n{out}");
    assert!(out.contains("(stall ratio 0.0000)"), "{out}");
    assert!(out.contains("Origin host       CPU mean"), "origin figures in the summary\n{out}");

    check_promtool(&promtool, m);
    check_documented_metrics(m);
    Ok(())
}

fn check_promtool(promtool: &std::path::Path, scrape: &str) {
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; make deps-test installs it)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), scrape.as_bytes()).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every exported family is documented in docs/metrics.md, every documented `process_*`
/// family is exported, and each row marked `moves` is exported and has left its initial
/// value. (Families with no series yet, such as HTTP errors in a healthy run, are left out
/// of the exposition.)
fn check_documented_metrics(scrape: &str) {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md")).unwrap();
    let mut rows = BTreeMap::new();
    for line in doc.lines().filter(|l| l.starts_with("| `hls_swarm_") || l.starts_with("| `process_")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_owned();
        let kind = cells[2].to_owned();
        rows.insert(name, (kind, cells[cells.len() - 2] == "moves"));
    }
    let exported: BTreeSet<String> = scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let undocumented: Vec<&String> = exported.iter().filter(|n| !rows.contains_key(*n)).collect();
    assert!(undocumented.is_empty(), "exported but not in docs/metrics.md: {undocumented:?}");
    let process: BTreeSet<&String> = rows.keys().filter(|n| n.starts_with("process_")).collect();
    assert!(
        process.len() >= 5 && process.iter().all(|n| exported.contains(*n)),
        "process families: {process:?}"
    );
    let mut still = Vec::new();
    for (name, (kind, moves)) in &rows {
        if !moves {
            continue;
        }
        let value = if kind == "histogram" {
            metric_sum(scrape, &format!("{name}_count"))
        } else {
            metric_sum(scrape, name)
        };
        if value.is_none_or(|v| v == 0.0) {
            still.push(name.clone());
        }
    }
    assert!(still.is_empty(), "documented as moving but still at the initial value: {still:?}");
}

/// Errors are counted from the relay's responses: a missing playlist is a 404 per attempt,
/// viewers exit and restart with backoff.
#[testkit::test]
async fn http_errors_restarts_and_exits_are_counted() {
    let _machine = shared_machine().await;
    let origin = start_origin().await;
    let url = format!("{}/missing.m3u8", origin.base_url());
    let run = tokio::task::spawn_blocking(move || {
        run_and_scrape(
            &["--clients", "3", "--ramp-rate", "10", "--duration", "7s", "--skip-preflight", &url],
            Duration::from_secs(6),
        )
    })
    .await
    .unwrap();
    origin.stop().await.unwrap();
    let m = &run.scrape;
    assert_eq!(run.status, Some(0), "{}", run.stdout);
    let n = kit::exposition::sum_where(&kit::exposition::parse(m), "hls_swarm_http_errors_total", |s| {
        s.label("status_code") == Some("404")
    })
    .unwrap_or(0.0);
    assert!(n >= 3.0, "one 404 per attempt: {m}");
    assert!(metric_sum(m, "hls_swarm_client_restarts_total").unwrap() >= 3.0, "{m}");
    assert!(metric_sum(m, "hls_swarm_client_exits_total").unwrap() >= 3.0, "{m}");
    assert!(metric_sum(m, "hls_swarm_error_rate").unwrap() > 0.99, "every request failed: {m}");
    assert!(summary_number(&run.stdout, "Errors", "HTTP").unwrap_or(0) >= 3, "{}", run.stdout);
}

/// `--measure log` reads FFmpeg's log only: counts still come, bytes and latencies do not,
/// and the summary says the figures are inferred.
#[testkit::test]
async fn log_mode_counts_requests_and_labels_them_inferred() {
    let _machine = shared_machine().await;
    let (out, stdout) = run_against_origin("--clients 3 --ramp-rate 10 --duration 8s --measure log").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout.contains("request starts read from FFmpeg's log; inferred"), "{stdout}");
    assert!(summary_number(&stdout, "Requests", "segments").unwrap_or(0) >= 6, "{stdout}");
    assert!(!stdout.contains("Segment TTFB"), "no latencies without the relay: {stdout}");
    assert!(stdout.contains("Startup") && stdout.contains("(inferred"), "{stdout}");
}

/// The origin stops publishing for 12 s (6 target durations): each viewer plays out its
/// buffer (about 3 segments), stalls, and resumes when publishing does. The player model
/// counts it; `/metrics` shows the stalled viewers while it lasts.
#[testkit::test]
async fn a_publishing_hold_at_the_origin_is_counted_as_stalls() {
    let _machine = shared_machine().await;
    let origin = start_origin().await;
    let url = origin.playlist_url();
    // From the hold's start on, /metrics is read until it shows a stalled viewer: when in the
    // 12 s that happens depends on how much each viewer had buffered.
    let run = tokio::task::spawn_blocking(move || {
        run_and_scrape_when(
            &["--clients", "3", "--ramp-rate", "10", "--duration", "28s", &url],
            Duration::from_secs(6),
            |m| metric_sum(m, "hls_swarm_stalled_clients").is_some_and(|n| n >= 1.0),
        )
    });
    tokio::time::sleep(Duration::from_secs(6)).await;
    origin.hold(Duration::from_secs(12)).unwrap();
    let run = run.await.unwrap();
    origin.stop().await.unwrap();
    let out = &run.stdout;
    assert_eq!(run.status, Some(0), "{out}");
    assert!(metric_sum(&run.scrape, "hls_swarm_stalled_clients").unwrap() >= 1.0, "{}", run.scrape);
    let stalls = summary_number(out, "Playback", "stalls").unwrap();
    assert!(stalls >= 3, "every viewer stalled once: {out}");
    let stalled = summary_float(out, "Playback", "s").unwrap();
    assert!(stalled > 3.0 * 3.0, "about 6 s each: {out}");
    assert_eq!(summary_number(out, "Lifecycle", "restarts"), Some(0), "stalls do not kill viewers: {out}");
}

/// `--assert`: a satisfiable set of thresholds exits 0, an impossible one exits 5 and says
/// which failed and what was measured.
#[testkit::test]
async fn thresholds_pass_or_fail_the_run() {
    let _machine = shared_machine().await;
    let origin = start_origin().await;
    let url = origin.playlist_url();
    let (good, bad) = tokio::task::spawn_blocking(move || {
        let common = ["--clients", "2", "--ramp-rate", "10", "--duration", "6s", "--skip-preflight"];
        let mut a: Vec<&str> = common.to_vec();
        a.extend([
            "--assert",
            "segment_ttfb_p95<5s",
            "--assert",
            "viewers_reached>=100%",
            "--assert",
            "stall_ratio==0",
        ]);
        a.extend(["--assert", "error_rate<0.001", &url]);
        let mut b: Vec<&str> = common.to_vec();
        b.extend(["--assert", "segment_ttfb_p95<1us", "--assert", "error_rate<1%", &url]);
        (run_swarm(&a), run_swarm(&b))
    })
    .await
    .unwrap();
    origin.stop().await.unwrap();
    assert_eq!(good.status.code(), Some(0), "{}", text(&good));
    assert!(
        String::from_utf8_lossy(&good.stdout).contains("Thresholds        0 of 4 failed"),
        "{}",
        text(&good)
    );
    assert_eq!(bad.status.code(), Some(5), "{}", text(&bad));
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(out.contains("FAIL  segment_ttfb_p95<1us  (measured "), "{out}");
    assert!(out.contains("PASS  error_rate<1%"), "{out}");
}
