use crate::engine::secrets::Secrets;
use std::time::Duration;

use super::*;
use crate::measure::events::{Ending, RequestKind};
use crate::measure::history::{self, Level as NoticeLevel, Notices};
use crate::measure::latency::Latency;
use crate::measure::origin;
use crate::measure::snapshot::{self, Snapshot};
use crate::output::outcome::Outcome;
use crate::output::summary::RunFacts;
use crate::output::thresholds;

const SCHEMA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/report.schema.json");

fn latency(p50: f64) -> Latency {
    Latency {
        count: 40,
        sum: p50 * 40.0,
        p50,
        p90: p50 * 2.0,
        p95: p50 * 3.0,
        p99: p50 * 4.0,
        max: p50 * 5.0,
        buckets: vec![],
    }
}

/// A finished 3-viewer run with one 404, one restart, a stall and a hostile URL and log line.
fn outcome(measure: snapshot::Measure, seconds: u64) -> Outcome {
    let mut s = Snapshot { measure, target: 3, started: 3, streaming_peak: 3, ..Snapshot::default() };
    s.elapsed = Duration::from_secs(seconds);
    s.streaming_at_stop = Some(3);
    s.process_starts = 4;
    s.restarts = 1;
    s.spawn_time_total = Duration::from_millis(40);
    s.spawn_time_max = Duration::from_millis(20);
    s.requests.insert(RequestKind::Playlist, 30);
    s.requests.insert(RequestKind::Segment, 40);
    if measure == snapshot::Measure::Relay {
        s.bytes.insert(RequestKind::Playlist, 6_000);
        s.bytes.insert(RequestKind::Segment, 4_000_000);
        s.ttfb.insert(RequestKind::Segment, latency(0.002));
        s.ttlb.insert(RequestKind::Segment, latency(0.004));
        s.ttfb.insert(RequestKind::Playlist, latency(0.001));
        s.ttlb.insert(RequestKind::Playlist, latency(0.001));
    }
    s.startup = latency(0.3);
    s.playback = snapshot::Playback {
        started: 3,
        rejoins: 1,
        zaps: 0,
        zap_starts: 0,
        failed_starts: 0,
        stalls: 1,
        stall_seconds: 0.5,
        watch_seconds: 25.0,
        stalled_now: 0,
        late_segments: 0,
        interruptions: 1,
        down_seconds: 0.4,
    };
    s.http_errors.insert(404, 1);
    s.exits_unexpected.insert(Ending { code: 1, label: "exit 1".into() }, 1);
    s.exits_on_stop.insert(Ending { code: 255, label: "exit 255".into() }, 3);
    let mut notices = Notices::default();
    notices.push(Duration::from_millis(1500), Some(2), NoticeLevel::Warn, "HTTP 404 <segment>".into());
    notices.push_with(
        Duration::from_secs(4),
        Some(2),
        NoticeLevel::Warn,
        "viewer 2 exited (exit 1)".into(),
        vec!["<script>alert(1)</script>".into(), "\u{1b}[31mred".into()],
    );
    s.notices = notices;
    s.viewers = (0..3)
        .map(|id| history::ViewerRow {
            id,
            stream: 0,
            state: history::ViewerState::Stopped,
            stalled: false,
            starts: if id == 2 { 2 } else { 1 },
            segments: 13,
            bytes: 1_300_000,
            errors: u64::from(id == 2),
            stalls: u64::from(id == 2),
            stall_seconds: if id == 2 { 0.5 } else { 0.0 },
            watch_seconds: 25.0 / 3.0,
            live_latency_seconds: Some(7.5),
            variant_bandwidth: None,
            switches: 0,
            last_error: (id == 2).then(|| "Server returned 404 <Not Found> & more".to_owned()),
        })
        .collect();
    let series = (0..seconds)
        .map(|second| history::SecondSample {
            second,
            running: 3,
            streaming: u32::try_from(second.min(3)).unwrap_or(3),
            stalled: u32::from(second == 4),
            bytes: 150_000 + second * 1000,
            requests: 3,
            errors: u64::from(second == 2),
            segment_p95: (second != 1).then_some(0.004),
        })
        .collect();
    let facts = RunFacts {
        url: "http://127.0.0.1:1/live/stream.m3u8?token=<x>&y=\"1\"".into(),
        ffmpeg: "FFmpeg 5.1.6".into(),
        measured_by: "the relay".into(),
        start_unit: "process".into(),
        ramp_rate: 5.0,
        run_seconds: seconds as f64 - 0.2,
        interrupted: false,
        all_ended: false,
        quit_from_dashboard: false,
        stop_seconds: 0.2,
        target_duration: Some(2.0),
        started: std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        duration: Some(seconds as f64),
        startup_buffer: None,
        http2: false,
        streams: Vec::new(),
        run_id: "test".into(),
        shard: None,
        start_late_seconds: None,
        variant: Some("all".into()),
    };
    let checks = ["segment_download_p95<500ms", "error_rate<0.1%", "stalls==0"]
        .iter()
        .map(|a| thresholds::Assertion::parse(a).unwrap().check(&s))
        .collect();
    let results = crate::measure::results::Results { totals: s.clone(), ..Default::default() };
    Outcome { snapshot: s, series, facts, origin: None, checks, results, baseline: None, event_log: None }
}

fn json(r: &Report) -> serde_json::Value {
    serde_json::from_str(&r.to_json()).unwrap()
}

fn validate(value: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(&schema()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> =
        validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn committed_schema_is_the_generated_one() {
    let generated = schema();
    let committed = std::fs::read_to_string(SCHEMA_FILE).unwrap_or_default();
    if generated != committed {
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(SCHEMA_FILE, &generated).unwrap();
            return;
        }
        panic!(
            "docs/report.schema.json differs from the report types; regenerate it with \
             `UPDATE_SCHEMA=1 cargo test -p hls-swarm --lib report` and commit it"
        );
    }
}

/// Every property has a description, and every object with named properties refuses others.
fn check_schema(path: &str, v: &serde_json::Value, missing: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::Object(props)) = m.get("properties") {
                if m.get("additionalProperties") != Some(&serde_json::Value::Bool(false)) {
                    missing.push(format!("{path}: additionalProperties is not false"));
                }
                for (name, p) in props {
                    if p.get("description").and_then(serde_json::Value::as_str).is_none_or(str::is_empty) {
                        missing.push(format!("{path}.{name}: no description"));
                    }
                }
            }
            for (k, child) in m {
                check_schema(&format!("{path}/{k}"), child, missing);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|c| check_schema(path, c, missing)),
        _ => {}
    }
}

#[test]
fn schema_describes_every_property_and_allows_no_others() {
    let schema: serde_json::Value = serde_json::from_str(&schema()).unwrap();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let mut problems = Vec::new();
    check_schema("#", &schema, &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
    let fields = &schema["$defs"]["Fields"]["properties"];
    for f in thresholds::fields() {
        assert!(fields[f.name]["description"].as_str().is_some(), "{} is not in the schema", f.name);
    }
}

#[test]
fn json_report_validates_and_carries_the_run() {
    for measure in [snapshot::Measure::Relay, snapshot::Measure::Log] {
        let mut o = outcome(measure, 10);
        if measure == snapshot::Measure::Log {
            o.origin = Some(origin::OriginSnapshot {
                cpu_percent: Some(12.5),
                run: origin::RunTotals { cpu_peak_percent: Some(50.0), ..Default::default() },
                ..Default::default()
            });
        }
        validate(&json(&Report::new(&o)));
    }
    let j = json(&Report::new(&outcome(snapshot::Measure::Relay, 10)));
    assert_eq!(j["schema_version"], 1);
    assert_eq!(j["tool"]["name"], "hls-swarm");
    assert_eq!(j["run"]["started"], "2023-11-14T22:13:20.123Z");
    assert_eq!(j["run"]["measure"], "relay");
    assert_eq!(j["viewers"]["exits_unexpected"], serde_json::json!({"exit 1": 1}));
    assert_eq!(j["viewers"]["reached"], 1.0);
    assert_eq!(j["viewers"]["rows"][2]["state"], "stopped");
    assert_eq!(j["errors"]["by_status"], serde_json::json!({"404": 1}));
    assert_eq!(j["errors"]["http_4xx"], 1);
    assert_eq!(j["requests"]["by_kind"]["segment"]["count"], 40);
    assert_eq!(j["requests"]["by_kind"]["segment"]["download"]["p95"], 0.012);
    assert_eq!(j["requests"]["bytes"], 4_006_000);
    assert_eq!(j["throughput"]["mean_bytes_per_second"], 400_600.0);
    assert_eq!(j["throughput"]["peak_bytes_per_second"], 159_000);
    assert_eq!(j["playback"]["stall_ratio"], 0.02);
    assert_eq!(j["origin"], serde_json::Value::Null);
    assert_eq!(j["notices"][1]["detail"][0], "<script>alert(1)</script>");
    assert_eq!(j["series"].as_array().map(Vec::len), Some(10));
    assert_eq!(j["series"][1]["segment_download_p95"], serde_json::Value::Null);
    assert_eq!(j["series"][2]["segment_download_p95"], 0.004);

    let log = json(&Report::new(&outcome(snapshot::Measure::Log, 10)));
    assert_eq!(log["requests"]["bytes"], serde_json::Value::Null);
    assert_eq!(log["requests"]["by_kind"]["segment"]["ttfb"], serde_json::Value::Null);
    assert_eq!(log["fields"]["segment_ttfb_p95"], serde_json::Value::Null);
    assert_eq!(log["playback"]["inferred"], true);
}

#[test]
fn fields_are_the_assert_fields_and_thresholds_read_them() {
    let o = outcome(snapshot::Measure::Relay, 10);
    let r = Report::new(&o);
    let names: Vec<&str> = r.fields.0.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, thresholds::fields().map(|f| f.name).collect::<Vec<_>>());
    for f in thresholds::fields() {
        assert_eq!(r.fields.get(f.name), f.value(&o.snapshot), "{}", f.name);
    }
    let j = json(&r);
    let keys: Vec<&String> = j["fields"].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 56, "documentation order kept: {keys:?}");
    assert_eq!(j["fields"]["segment_download_p95"], 0.012);
    assert_eq!(j["fields"]["error_rate"], 1.0 / 70.0);
    for t in j["thresholds"].as_array().unwrap() {
        assert_eq!(t["actual"], j["fields"][t["field"].as_str().unwrap()], "{t}");
    }
    assert_eq!(j["fields"]["stalls"].as_u64(), Some(1), "counts are integers");
    assert_eq!(j["fields"]["restarts"].as_u64(), Some(1));
    let t = &j["thresholds"];
    let passed: Vec<_> = t.as_array().unwrap().iter().map(|t| t["passed"].as_bool()).collect();
    assert_eq!(passed, [Some(true), Some(false), Some(false)]);
    assert_eq!(t[1]["op"], "<");
    assert_eq!(t[1]["limit"], 0.001);
    assert!(t[1]["text"].as_str().unwrap().starts_with("FAIL  error_rate<0.1%  (measured 1.4286 %)"), "{t}");
    assert_eq!(j["passed"], false);
}

#[test]
fn html_page_is_self_contained_and_escaped() {
    let page = html::render(&Report::new(&outcome(snapshot::Measure::Relay, 10)));
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains(
        r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">"#
    ));
    for title in html::CHART_TITLES {
        assert!(page.contains(&format!("<title>{title}")), "{title}");
    }
    assert_eq!(page.matches("<svg").count(), 4);
    for colour in [html::THROUGHPUT_COLOUR, html::STREAMING_COLOUR, html::P95_COLOUR, html::ERRORS_COLOUR] {
        assert!(page.contains(&format!(r#"fill="none" stroke="{colour}""#)), "no line in {colour}");
    }
    assert!(!page.contains("<circle"), "the p95 gap between segments (second 1) is bridged");
    // Nothing from the run reaches the page unescaped; nothing is loaded from elsewhere.
    assert!(!page.contains("<script"), "a log line became markup");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("token=&lt;x&gt;&amp;y=&quot;1&quot;"));
    assert!(page.contains("Server returned 404 &lt;Not Found&gt; &amp; more"));
    assert!(!page.contains('\u{1b}'));
    for attr in ["src=", "href=", "url(", "@import"] {
        assert!(!page.contains(attr), "{attr} in the page");
    }
    assert!(page.contains("FAILED: 2 of 3 thresholds"), "{page}");
    let log = html::render(&Report::new(&outcome(snapshot::Measure::Log, 10)));
    assert!(log.contains("Inferred from FFmpeg") && log.contains("FFmpeg's log (inferred)"), "{log}");
    assert_eq!(log.matches(">not measured with --measure log</text>").count(), 2, "throughput and p95");
}

#[test]
fn variants_are_reported_when_segments_name_theirs() {
    let plain = Report::new(&outcome(snapshot::Measure::Relay, 10));
    assert!(plain.variants.is_none() && !html::render(&plain).contains("<h2>Variants</h2>"));
    let mut o = outcome(snapshot::Measure::Relay, 10);
    let r = |segments: u64, media_seconds: f64, bytes: u64| snapshot::Rendition {
        segments,
        media_seconds,
        bytes,
    };
    o.snapshot.renditions = [(400_000, r(8, 16.0, 800_000)), (100_000, r(2, 4.0, 200_000))].into();
    o.snapshot.switches = snapshot::Switches { up: 1, down: 0 };
    let report = Report::new(&o);
    let j = json(&report);
    validate(&j);
    let v = &j["variants"];
    assert_eq!((v["switches_up"].as_u64(), v["switches_down"].as_u64()), (Some(1), Some(0)));
    assert_eq!(v["delivered_bits_per_second"].as_f64(), Some(400_000.0), "1 MB × 8 / 20 s");
    assert_eq!(v["advertised_bits_per_second"].as_f64(), Some(340_000.0));
    assert_eq!(v["renditions"][0]["bandwidth"].as_u64(), Some(100_000), "ascending");
    assert_eq!(v["renditions"][1]["share"].as_f64(), Some(0.8));
    let page = html::render(&report);
    assert!(page.contains("<h2>Variants</h2>") && page.contains("1 up · 0 down"), "{page}");
    assert!(page.contains("400 kb/s (segment bits per second of media)"), "{page}");
}

#[test]
fn long_runs_are_downsampled_and_empty_runs_still_render() {
    let page = html::render(&Report::new(&outcome(snapshot::Measure::Relay, 5000)));
    let lines: Vec<usize> = page
        .split("<polyline points=\"")
        .skip(1)
        .map(|line| line.split('"').next().unwrap_or_default().split_whitespace().count())
        .collect();
    // Throughput, running, streaming, stalled, p95 and errors: each one unbroken line of 5000
    // seconds, folded into at most MAX_POINTS points (not cut short).
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert!(lines.iter().all(|n| (html::MAX_POINTS / 2..=html::MAX_POINTS).contains(n)), "{lines:?}");
    let mut empty = outcome(snapshot::Measure::Relay, 0);
    empty.snapshot.viewers.clear();
    let r = Report::new(&empty);
    validate(&json(&r));
    let page = html::render(&r);
    assert_eq!(page.matches("no data").count(), 4);
}

#[test]
fn targets_are_json_or_html_in_an_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let ok = |p: &std::path::Path| Target::parse(p).unwrap().format;
    assert_eq!(ok(&dir.path().join("run.json")), Format::Json);
    assert_eq!(ok(&dir.path().join("run.HTML")), Format::Html);
    assert_eq!(ok(std::path::Path::new("run.json")), Format::Json);
    let err = |p: &str| Target::parse(std::path::Path::new(p)).unwrap_err();
    assert_eq!(err("out.txt"), "the extension '.txt' is not a report format");
    assert_eq!(err("out"), "it has no extension");
    assert_eq!(err("/no/such/dir/run.json"), "the directory '/no/such/dir' does not exist");
}

#[test]
fn writes_both_formats_whole_and_names_the_file_it_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let r = Report::new(&outcome(snapshot::Measure::Relay, 10));
    for name in ["run.json", "run.html"] {
        let target = Target::parse(&dir.path().join(name)).unwrap();
        write(&r, &target, &Secrets::default()).unwrap();
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    let back: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(back, json(&r));
    assert_eq!(std::fs::read_to_string(dir.path().join("run.html")).unwrap(), html::render(&r));
    let gone = Target { path: dir.path().join("gone/run.json"), format: Format::Json };
    let e = write(&r, &gone, &Secrets::default()).unwrap_err().to_string();
    assert!(e.starts_with("cannot write the report '") && e.contains("gone/run.json"), "{e}");
}

#[test]
fn csv_and_event_log_targets_by_extension() {
    let ok = |p: &str| Target::parse(std::path::Path::new(p)).unwrap().format;
    assert_eq!(ok("run.csv"), Format::Csv);
    assert_eq!((ok("run.ndjson"), ok("run.JSONL")), (Format::Events, Format::Events));
}

/// The CSV is the JSON's series: one row per second under the header, the same values, and an
/// empty cell where the JSON has `null` (or, with `--measure log`, bytes it did not measure).
#[test]
fn csv_rows_are_the_json_series() {
    for measure in [snapshot::Measure::Relay, snapshot::Measure::Log] {
        let r = Report::new(&outcome(measure, 6));
        let text = csv::render(&r);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(csv::HEADER));
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        let series = json(&r)["series"].as_array().unwrap().clone();
        assert_eq!(rows.len(), series.len());
        for (row, s) in rows.iter().zip(&series) {
            let n = |i: usize| row[i].parse::<f64>().ok();
            assert_eq!(n(0), s["second"].as_f64());
            assert_eq!(
                (n(2), n(3), n(4)),
                (s["running"].as_f64(), s["streaming"].as_f64(), s["stalled"].as_f64())
            );
            let bytes = (measure == snapshot::Measure::Relay).then(|| s["bytes"].as_f64()).flatten();
            assert_eq!((n(5), n(6), n(7)), (bytes, s["requests"].as_f64(), s["errors"].as_f64()));
            assert_eq!(n(8), s["segment_download_p95"].as_f64(), "{row:?}");
        }
        assert_eq!(rows[1][8], "", "no segment ended in second 1: an empty cell");
        assert_eq!(rows[0][1], "2023-11-14T22:13:20Z", "the wall clock of second 0");
        assert_eq!(rows[3][1], "2023-11-14T22:13:23Z");
    }
}
