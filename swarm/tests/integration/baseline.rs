//! Baselines: `hls-swarm compare` of two real runs' reports, and `--baseline` thresholds of a
//! real run against an earlier one — one that holds, one against a baseline made better than
//! reality (exit 5, both values named), one against a run of another shape (the difference
//! named with both values), and the bad inputs that are refused before anything starts.

use std::path::Path;
use std::process::Output;

use crate::common::*;

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/report.schema.json");

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn validate(report: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(SCHEMA).unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let errors: Vec<String> =
        validator.iter_errors(report).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "the report does not match docs/report.schema.json: {errors:#?}");
}

/// Runs the swarm with `args` on a blocking thread.
async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || run_swarm(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap()
}

/// A short native run of `clients` viewers against `url` writing `report`, with `extra` flags.
fn load(clients: &str, url: &str, report: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> =
        ["--engine", "native", "--clients", clients, "--ramp-rate", "4", "--duration", "6s", "--tui=false"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
    a.extend(["--report".to_owned(), report.display().to_string()]);
    a.extend(extra.iter().map(|s| (*s).to_owned()));
    a.push(url.to_owned());
    a
}

/// Two viewers for 6 s make the baseline; then, at once, a run of the same shape checked
/// against it with a generous factor (passes), and a run of three viewers checked against a
/// copy whose segment TTFB p95 was set to 1 µs (fails with exit 5, both values named, the
/// client count named as a difference). `compare` of the real reports prints the table and
/// writes the HTML page.
#[testkit::test]
async fn compare_and_baseline_thresholds_of_real_runs() {
    let _machine = shared_machine().await;
    let origin = start_origin().await;
    let url = origin.playlist_url();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);

    let base = run(load("2", &url, &path("a.json"), &[])).await;
    assert_eq!(base.status.code(), Some(0), "{}", text(&base));
    let a = read_json(&path("a.json"));
    assert!(a["fields"]["segment_ttfb_p95"].as_f64().is_some_and(|v| v > 0.0), "measured: {}", a["fields"]);
    // A baseline better than reality: 1 µs to first byte.
    let mut fast = a.clone();
    fast["fields"]["segment_ttfb_p95"] = serde_json::json!(1e-6);
    std::fs::write(path("fast.json"), fast.to_string()).unwrap();

    let same = load("2", &url, &path("b.json"), &["--baseline", &path("a.json").display().to_string()]);
    let same = [same, vec!["--assert".into(), "segment_ttfb_p95 <= baseline * 1000".into()]].concat();
    let fast_baseline = path("fast.json").display().to_string();
    let regressed = load("3", &url, &path("c.json"), &["--baseline", &fast_baseline]);
    let regressed =
        [regressed, vec!["--assert".into(), "segment_ttfb_p95 <= baseline * 1.2".into()]].concat();
    let (same, regressed) = tokio::join!(run(same), run(regressed));
    origin.stop().await.unwrap();

    // (2) Against the real baseline with a factor of 1000: it holds, the runs are alike.
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    let out = text(&same);
    assert!(out.contains("PASS  segment_ttfb_p95 <= baseline * 1000"), "{out}");
    assert!(out.contains(&format!("Baseline          {}", path("a.json").display())), "{out}");
    assert!(out.contains("same shape"), "{out}");
    let b = read_json(&path("b.json"));
    validate(&b);
    assert_eq!(b["thresholds"][0]["baseline"], a["fields"]["segment_ttfb_p95"], "{}", b["thresholds"]);
    assert_eq!(b["baseline"]["run_id"], a["run"]["run_id"]);
    assert_eq!(b["baseline"]["differences"], serde_json::json!([]));

    // (3) Against the better-than-real baseline: exit 5, the field and both values named.
    assert_eq!(regressed.status.code(), Some(5), "{}", text(&regressed));
    let c = read_json(&path("c.json"));
    validate(&c);
    let t = &c["thresholds"][0];
    assert_eq!(
        (t["field"].as_str(), t["passed"].as_bool(), t["baseline"].as_f64()),
        (Some("segment_ttfb_p95"), Some(false), Some(1e-6))
    );
    let measured = t["actual"].as_f64().expect("measured");
    assert!(measured > 1.2e-6 && t["limit"].as_f64().is_some_and(|l| (l - 1.2e-6).abs() < 1e-12), "{t}");
    let out = text(&regressed);
    let line = out.lines().find(|l| l.contains("FAIL  segment_ttfb_p95 <= baseline * 1.2")).expect(&out);
    let shown = swarm::output::summary::seconds(measured);
    assert!(line.contains(&format!("measured {shown}")) && line.contains("baseline 1µs in"), "{line}");
    assert!(line.contains(&fast_baseline), "{line}");
    assert!(out.contains("a --assert threshold failed"), "{out}");
    // (4) Three viewers against a baseline of two: named, with both values, and only that.
    assert!(out.contains("clients 2 in the baseline, 3 in this run"), "{out}");
    assert_eq!(
        c["baseline"]["differences"],
        serde_json::json!([{"what": "clients", "baseline": "2", "run": "3"}]),
        "{}",
        c["baseline"]
    );

    // (1) compare: the table of the key figures, exit 0, and the same as a page.
    let html = path("diff.html");
    let compared = swarm()
        .arg("compare")
        .args([path("a.json"), path("b.json")])
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    assert_eq!(compared.status.code(), Some(0), "{}", text(&compared));
    let table = String::from_utf8_lossy(&compared.stdout).into_owned();
    let row = |name: &str| -> Vec<String> {
        let line = table.lines().find(|l| l.split_whitespace().next() == Some(name));
        line.unwrap_or_else(|| panic!("no {name} row:\n{table}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    for name in [
        "viewers_target",
        "viewers_started",
        "requests_playlist",
        "requests_segment",
        "bytes",
        "error_rate",
        "http_errors",
        "network_errors",
        "segment_ttfb_p50",
        "segment_ttfb_p95",
        "segment_ttfb_p99",
        "segment_download_p95",
        "playlist_ttfb_p95",
        "startup_p50",
        "startup_p95",
        "stall_ratio",
        "stalls",
        "throughput",
    ] {
        assert!(row(name).len() >= 6, "{name}: {table}");
    }
    assert_eq!(row("viewers_target")[..4], ["viewers_target", "2", "2", "+0"]);
    assert_eq!(row("viewers_target").last().map(String::as_str), Some("same"));
    let segments = |r: &serde_json::Value| r["requests"]["by_kind"]["segment"]["count"].to_string();
    assert_eq!(row("requests_segment")[1..3], [segments(&a), segments(&b)], "{table}");
    assert!(row("segment_ttfb_p95").contains(&"lower".to_owned()), "{table}");
    assert!(!table.contains("WARNING"), "alike runs: {table}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<code>segment_ttfb_p95</code>") && page.contains("<code>requests_segment</code>"));
    assert!(page.contains("a.json") && page.contains("b.json") && !page.contains("<script"), "{page}");
    assert!(table.contains(&format!("Comparison: {}", html.display())), "{table}");

    // Runs of another shape are compared, with the difference named.
    let unlike = swarm().arg("compare").args([path("a.json"), path("c.json")]).output().unwrap();
    assert_eq!(unlike.status.code(), Some(0), "{}", text(&unlike));
    let out = text(&unlike);
    assert!(out.contains("WARNING: the runs differ") && out.contains("clients 2 in "), "{out}");
    assert!(out.contains("3 in ") && out.lines().any(|l| l.starts_with("segment_ttfb_p95")), "{out}");

    // (5) Bad input: exit 2, the file or the expression named, nothing run.
    let bad = |args: &[&str], needle: &str| {
        let out = run_swarm(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle), "{args:?}: {}", text(&out));
    };
    let a_json = path("a.json").display().to_string();
    let missing = path("missing.json").display().to_string();
    std::fs::write(path("other.json"), r#"{"k6": true}"#).unwrap();
    let other = path("other.json").display().to_string();
    let mut newer = a.clone();
    newer["schema_version"] = serde_json::json!(2);
    std::fs::write(path("newer.json"), newer.to_string()).unwrap();
    let newer = path("newer.json").display().to_string();
    bad(&["compare", &missing, &a_json], &format!("{missing}: cannot read it"));
    bad(&["compare", &a_json, &other], &format!("{other}: not an hls-swarm JSON report"));
    bad(&["compare", &newer, &a_json], &format!("{newer}: report schema version 2"));
    let url = "http://127.0.0.1:9/x.m3u8";
    let expr = "segment_ttfb_p95 <= baseline * 1.2";
    bad(&["--assert", expr, url], &format!("--assert '{expr}': 'baseline' stands for segment_ttfb_p95"));
    bad(&["--baseline", &missing, "--assert", expr, url], &format!("--baseline {missing}: cannot read it"));
    bad(&["--baseline", &other, url], &format!("--baseline {other}: not an hls-swarm JSON report"));
    bad(&["merge", &a_json, "--baseline", &missing], &format!("--baseline {missing}: cannot read it"));
    bad(&["merge", &a_json, "--assert", expr], &format!("--assert '{expr}': 'baseline' stands for"));
    // A baseline figure that was not measured cannot be evaluated: refused, never passed.
    let mut unmeasured = a.clone();
    unmeasured["fields"]["live_latency_p95"] = serde_json::Value::Null;
    std::fs::write(path("unmeasured.json"), unmeasured.to_string()).unwrap();
    let unmeasured = path("unmeasured.json").display().to_string();
    bad(
        &["--baseline", &unmeasured, "--assert", "live_latency_p95 <= baseline + 1s", url],
        "has no value for live_latency_p95",
    );
}
