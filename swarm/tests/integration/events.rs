//! The event log (`--report FILE.ndjson`) and the per-second CSV (`--report FILE.csv`) of real
//! runs against the real origin: every request line is one of nginx's access-log lines and one
//! of the summary's requests, every viewer's states follow each other, the size bound is kept
//! and said, the CSV is the JSON report's series, no secret is written, and bad values are
//! exit 2 naming them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;

/// What one run against a logged origin left: its output (stdout and stderr), exit code, nginx's viewer lines
/// (playlists, segments, bytes) and the files it wrote.
struct Run {
    stdout: String,
    code: Option<i32>,
    nginx: (u64, u64, u64),
    events: PathBuf,
    json: PathBuf,
    csv: PathBuf,
    _dir: tempfile::TempDir,
}

/// Runs the swarm with `args`, an event log, a JSON report and a CSV, against a logged origin
/// (whose playlist URL `url_of` may dress up, e.g. with credentials).
async fn run(args: &[&str], url_of: impl FnOnce(&str) -> String) -> Run {
    let logs = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (events, json, csv) =
        (dir.path().join("run.ndjson"), dir.path().join("run.json"), dir.path().join("run.csv"));
    let origin = start_logged_origin(false, logs.path()).await;
    let log = origin.access_log().expect("logged profile has an access log");
    let mut argv: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    for f in [&events, &json, &csv] {
        argv.extend(["--report".to_owned(), f.display().to_string()]);
    }
    argv.push(url_of(&origin.playlist_url()));
    let out =
        tokio::task::spawn_blocking(move || run_swarm(&argv.iter().map(String::as_str).collect::<Vec<_>>()))
            .await
            .unwrap();
    // Stopping nginx flushes its buffered access log.
    origin.stop().await.unwrap();
    Run {
        stdout: text(&out),
        code: out.status.code(),
        nginx: viewer_lines(&log),
        events,
        json,
        csv,
        _dir: dir,
    }
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {l}"))
        })
        .collect()
}

fn of_type<'a>(all: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    all.iter().filter(|l| l["type"] == kind).collect()
}

/// The checks every whole log passes: a run line first and an end line last; request lines
/// equal to the summary's, the JSON report's and nginx's counts (by kind) and to the report's
/// bytes; each viewer's states a chain from `waiting` that starts, streams and ends stopped;
/// `t` never decreasing for a viewer.
fn check_whole_log(r: &Run, viewers: u64) {
    let all = lines(&r.events);
    let out = &r.stdout;
    assert_eq!(all.first().map(|l| l["type"].clone()), Some("run".into()), "{all:?}");
    let last = all.last().unwrap();
    assert_eq!(last["type"], "end", "a whole log ends so: {last}");
    assert_eq!(last["lines"].as_u64(), Some(all.len() as u64 - 1));
    assert_eq!(all[0]["clients"].as_u64(), Some(viewers));

    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&r.json).unwrap()).unwrap();
    let requests = of_type(&all, "request");
    let mut by_kind: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for q in &requests {
        let e = by_kind.entry(q["kind"].as_str().unwrap().to_owned()).or_default();
        e.0 += 1;
        e.1 += q["bytes"].as_u64().expect("measured: bytes");
        assert!(q["status"].as_u64().is_some() && q["duration_s"].as_f64().is_some(), "{q}");
    }
    for (kind, (count, bytes)) in &by_kind {
        let figures = &report["requests"]["by_kind"][kind];
        assert_eq!(figures["count"].as_u64(), Some(*count), "{kind} requests: log vs report");
        assert_eq!(figures["bytes"].as_u64(), Some(*bytes), "{kind} bytes: log vs report");
    }
    let count = |k: &str| by_kind.get(k).map_or(0, |c| c.0);
    let (nginx_playlists, nginx_segments, _) = r.nginx;
    assert!(nginx_segments >= viewers, "a real run: {nginx_segments} segments");
    assert_eq!(count("segment"), nginx_segments, "segment lines vs nginx\n{out}");
    assert_eq!(count("master") + count("playlist"), nginx_playlists, "playlist lines vs nginx\n{out}");
    assert_eq!(summary_number(out, "Requests", "segments"), Some(count("segment")), "{out}");
    assert_eq!(summary_number(out, "Requests", "playlists"), Some(nginx_playlists), "{out}");
    let total: u64 = by_kind.values().map(|c| c.1).sum();
    assert_eq!(report["requests"]["bytes"].as_u64(), Some(total));

    let mut per_viewer: BTreeMap<u64, Vec<&serde_json::Value>> = BTreeMap::new();
    for l in all.iter().filter(|l| l["viewer"].is_u64()) {
        per_viewer.entry(l["viewer"].as_u64().unwrap()).or_default().push(l);
    }
    assert_eq!(per_viewer.keys().copied().collect::<Vec<_>>(), (0..viewers).collect::<Vec<_>>());
    for (viewer, mine) in &per_viewer {
        let t: Vec<f64> = mine.iter().map(|l| l["t"].as_f64().unwrap()).collect();
        assert!(t.windows(2).all(|w| w[0] <= w[1]), "viewer {viewer}: t goes back: {t:?}");
        let states: Vec<(&str, &str)> = mine
            .iter()
            .filter(|l| l["type"] == "state")
            .map(|l| (l["from"].as_str().unwrap(), l["to"].as_str().unwrap()))
            .collect();
        assert_eq!(states.first(), Some(&("waiting", "starting")), "viewer {viewer}: {states:?}");
        assert!(states.windows(2).all(|w| w[0].1 == w[1].0), "viewer {viewer}: a chain: {states:?}");
        assert_eq!(states.get(1).map(|s| s.1), Some("streaming"), "viewer {viewer}: {states:?}");
        assert_eq!(states.last().map(|s| s.1), Some("stopped"), "viewer {viewer}: {states:?}");
    }
    assert!(out.contains(&format!("Report: {}\n", r.events.display())), "{out}");
    assert!(out.contains("Event log         ") && !out.contains("INCOMPLETE"), "{out}");
}

/// Native viewers: the whole log, and the CSV of the same run is the JSON report's series.
#[testkit::test]
async fn native_event_log_matches_nginx_and_the_csv_is_the_series() {
    let _machine = shared_machine().await;
    let args =
        ["--engine", "native", "--clients", "3", "--ramp-rate", "3", "--duration", "6s", "--tui=false"];
    let r = run(&args, str::to_owned).await;
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    check_whole_log(&r, 3);

    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&r.json).unwrap()).unwrap();
    let series = report["series"].as_array().unwrap();
    let csv = std::fs::read_to_string(&r.csv).unwrap();
    let mut rows = csv.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    assert_eq!(header[0], "second");
    assert!(header.iter().any(|h| h.ends_with("_seconds")), "units in the names: {header:?}");
    let rows: Vec<Vec<&str>> = rows.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), series.len(), "one row per second");
    assert!(rows.len() >= 6, "a 6 s run: {} rows", rows.len());
    let keys = [
        (0, "second"),
        (2, "running"),
        (3, "streaming"),
        (4, "stalled"),
        (5, "bytes"),
        (6, "requests"),
        (7, "errors"),
    ];
    for (i, (row, s)) in rows.iter().zip(series).enumerate() {
        assert_eq!(row.len(), header.len());
        assert_eq!(row[0], i.to_string(), "consecutive seconds");
        for (col, key) in keys {
            assert_eq!(row[col].parse::<u64>().ok(), s[key].as_u64(), "second {i}, {key}");
        }
        assert_eq!(row[8].parse::<f64>().ok(), s["segment_download_p95"].as_f64(), "second {i}");
    }
}

/// FFmpeg viewers measured by their relays: the same log.
#[testkit::test]
async fn ffmpeg_relay_event_log_matches_nginx() {
    let _machine = shared_machine().await;
    let args = ["--clients", "2", "--ramp-rate", "2", "--duration", "6s", "--tui=false"];
    let r = run(&args, str::to_owned).await;
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    check_whole_log(&r, 2);
    assert_eq!(lines(&r.events)[0]["measure"], "relay");
}

/// `--events-max-size 2KB`: the file holds at most 2,000 bytes of lines and then one line
/// saying how many events were dropped, as the summary and the report's notices do.
#[testkit::test]
async fn a_small_event_log_stops_at_its_bound_and_says_what_it_dropped() {
    let _machine = shared_machine().await;
    let args = [
        "--engine",
        "native",
        "--clients",
        "2",
        "--ramp-rate",
        "2",
        "--duration",
        "4s",
        "--tui=false",
        "--events-max-size",
        "2KB",
    ];
    let r = run(&args, str::to_owned).await;
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    let text = std::fs::read_to_string(&r.events).unwrap();
    let last = text.lines().last().unwrap();
    assert!(
        text.len() - (last.len() + 1) <= 2_000,
        "{} bytes before the last line",
        text.len() - last.len() - 1
    );
    let last: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(last["type"], "truncated", "{last}");
    let dropped = last["dropped"].as_u64().unwrap();
    assert!(dropped > 0 && last["dropped_over_max_size"].as_u64() == Some(dropped), "{last}");
    assert_eq!(last["max_size_bytes"].as_u64(), Some(2_000));
    let out = &r.stdout;
    assert!(
        out.contains(&format!("INCOMPLETE: {dropped} events dropped ({dropped} over --events-max-size")),
        "{out}"
    );
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&r.json).unwrap()).unwrap();
    let said = format!("event log: {dropped} events dropped");
    let notices = report["notices"].as_array().unwrap();
    assert!(notices.iter().any(|n| n["text"].as_str().is_some_and(|t| t.starts_with(&said))), "{notices:?}");
}

/// A stream URL with a password and a secret parameter: neither is in the log, the CSV or the
/// JSON report, and the viewers still played (the origin takes any credentials).
#[testkit::test]
async fn the_event_log_hides_the_urls_secrets() {
    let _machine = shared_machine().await;
    let args =
        ["--engine", "native", "--clients", "2", "--ramp-rate", "2", "--duration", "4s", "--tui=false"];
    let r = run(&args, |url| {
        let (scheme, rest) = url.split_once("://").unwrap();
        format!("{scheme}://user:secret@{rest}?token=tok-secret-9")
    })
    .await;
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    for f in [&r.events, &r.csv, &r.json] {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(!text.contains("secret"), "{}: {text}", f.display());
    }
    assert!(!r.stdout.contains("secret"), "{}", r.stdout);
    let all = lines(&r.events);
    assert!(all[0]["streams"][0].as_str().is_some_and(|u| u.contains("<redacted>")), "{}", all[0]);
    assert!(!of_type(&all, "request").is_empty());
}

/// Bad values are exit 2 before anything starts, naming the value and what is accepted.
#[testkit::test]
fn bad_event_log_values_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("e.ndjson").display().to_string();
    let other = dir.path().join("f.jsonl").display().to_string();
    let url = "http://127.0.0.1:9/x.m3u8";
    for (args, needles) in [
        (vec!["--report", &log, "--events-max-size", "lots", url], &["'lots'", "kB, MB, GB"][..]),
        (vec!["--report", &log, "--events-max-size", "0", url], &["'0'", "out of range"][..]),
        (vec!["--events-max-size", "2KB", url], &["--events-max-size 2KB", "--report FILE.ndjson"][..]),
        (vec!["--report", &log, "--report", &other, url], &["f.jsonl", "one event log"][..]),
        (vec!["merge", "x.json", "--report", &log], &["e.ndjson", "written by the run itself"][..]),
    ] {
        let out = run_swarm(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        for n in needles {
            assert!(err.contains(n), "{args:?}: {n} not in {err}");
        }
        assert!(!dir.path().join("e.ndjson").exists(), "nothing started");
    }
}

/// An event log that cannot be written does not stop the run: the other reports are written,
/// the error names the file and says how many events were lost, and the exit code is 1.
#[testkit::test]
async fn an_event_log_that_cannot_be_written_is_exit_1_after_the_run() {
    let _machine = shared_machine().await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    // /proc exists, and no file can be made in it, not even by root.
    let args = format!(
        "--engine native --clients 1 --duration 3s --tui=false --report /proc/run.ndjson --report {}",
        json.display()
    );
    let (out, stdout) = run_against_origin(&args).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot write the report '/proc/run.ndjson'") && err.contains("events not written"),
        "{err}"
    );
    assert!(stdout.contains("Event log         FAILED: cannot write '/proc/run.ndjson'"), "{stdout}");
    assert!(stdout.contains(&format!("Report: {}\n", json.display())), "{stdout}");
    assert!(json.exists());
}
