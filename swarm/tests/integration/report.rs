//! `--report`: the real swarm against the real origin writes a JSON report that validates
//! against `docs/report.schema.json` and agrees with the printed summary, and an HTML page
//! that headless Chromium renders with its charts, without console messages or refused loads.
//! Reports are also written when a threshold failed and when the run was interrupted; a file
//! that cannot be written is exit 1; a bad `--report` value is exit 2 before anything starts.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use swarm::output::report::html;
use tokio::io::AsyncReadExt;

use crate::common::*;

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/report.schema.json");
/// Longest a Chromium run may take before it is killed.
const CHROMIUM_LIMIT: Duration = Duration::from_secs(90);

fn validate(report: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SCHEMA).expect("docs/report.schema.json")).unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let errors: Vec<String> =
        validator.iter_errors(report).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "the report does not match docs/report.schema.json: {errors:#?}");
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// What one headless Chromium run printed.
struct Rendered {
    stdout: String,
    stderr: String,
}

impl Rendered {
    /// Console messages and Content-Security-Policy refusals Chromium logged for the page.
    fn console(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| {
                l.contains(":CONSOLE") || l.contains("Refused to") || l.contains("Content Security Policy")
            })
            .collect()
    }
}

/// Runs headless Chromium on `page` with `args`, in its own process group, with a private
/// profile, any network request sent to a closed loopback port, and a time limit after which
/// the whole group is killed and reaped.
async fn render(page: &Path, args: &[String]) -> Rendered {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(testkit::chromium::program().expect("checked by the test"));
    cmd.args(testkit::chromium::FLAGS)
        .args(["--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut group = procgroup::spawn(&mut cmd).expect("chromium starts");
    let mut out = group.child_mut().stdout.take().expect("stdout");
    let mut err = group.child_mut().stderr.take().expect("stderr");
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    // Both pipes close once every process of the browser has exited.
    let read = async { tokio::join!(out.read_to_end(&mut stdout), err.read_to_end(&mut stderr)) };
    let finished = match tokio::time::timeout(CHROMIUM_LIMIT, read).await {
        Ok(_) => tokio::time::timeout(Duration::from_secs(10), group.wait()).await.ok(),
        Err(_) => None,
    };
    let Some(status) = finished else {
        let _ = group.stop(Duration::from_secs(2)).await;
        panic!("chromium did not finish within {CHROMIUM_LIMIT:?}; its group was killed");
    };
    let rendered = Rendered {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(status.expect("wait").success(), "chromium failed:\n{}", rendered.stderr);
    rendered
}

/// Pixels of the screenshot within a small distance of `#rrggbb`.
fn pixels_of(png_file: &Path, colour: &str) -> usize {
    let target: Vec<i32> =
        (1..7).step_by(2).map(|i| i32::from_str_radix(&colour[i..i + 2], 16).unwrap()).collect();
    let file = std::io::BufReader::new(std::fs::File::open(png_file).unwrap());
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "a colour screenshot: {:?}", info.color_type);
    buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| (0..3).all(|c| (i32::from(p[c]) - target[c]).abs() <= 16))
        .count()
}

#[testkit::test]
async fn json_and_html_reports_of_a_real_run() -> testkit::Outcome {
    let chromium_path = testkit::chromium::program()?;
    let _machine = shared_machine().await;
    let dir = tempfile::tempdir().unwrap();
    let (json, page) = (dir.path().join("run.json"), dir.path().join("run.html"));
    let args = format!(
        "--clients 3 --ramp-rate 3 --duration 9s --tui=false --assert error_rate<=1% \
         --assert segment_download_p95<5s --report {} --report {}",
        json.display(),
        page.display()
    );
    let (out, stdout) = run_against_origin(&args).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for p in [&json, &page] {
        assert!(stdout.contains(&format!("Report: {}\n", p.display())), "{stdout}");
    }

    // (a) The JSON: valid, equal to the summary, plausible.
    let r = read_json(&json);
    validate(&r);
    let segments = r["requests"]["by_kind"]["segment"]["count"].as_u64().unwrap();
    assert!(segments > 3, "a real run downloads segments: {segments}");
    assert_eq!(Some(segments), summary_number(&stdout, "Requests", "segments"), "{stdout}");
    let playlists = r["requests"]["by_kind"]["playlist"]["count"].as_u64().unwrap()
        + r["requests"]["by_kind"]["master"]["count"].as_u64().unwrap();
    assert_eq!(Some(playlists), summary_number(&stdout, "Requests", "playlists"), "{stdout}");
    let bytes = r["requests"]["bytes"].as_u64().unwrap();
    assert!(bytes > 100_000, "{bytes} bytes");
    assert_eq!(Some(bytes), summary_number(&stdout, "Bytes", "bytes"), "{stdout}");
    assert_eq!(Some(3), summary_number(&stdout, "Viewers", "started"));
    assert_eq!(r["viewers"]["started"], 3);
    assert_eq!(r["viewers"]["reached"].as_f64(), Some(1.0), "every viewer streamed");
    assert_eq!(r["fields"]["viewers_reached"].as_f64(), Some(1.0));
    assert_eq!(r["viewers"]["rows"].as_array().map(Vec::len), Some(3));
    let row_segments: u64 =
        r["viewers"]["rows"].as_array().unwrap().iter().map(|v| v["segments"].as_u64().unwrap()).sum();
    assert_eq!(row_segments, segments, "per-viewer rows add up");
    assert_eq!(
        r["fields"]["segment_download_p95"], r["requests"]["by_kind"]["segment"]["download"]["p95"],
        "fields are the report's own numbers"
    );
    let p95 = r["fields"]["segment_download_p95"].as_f64().unwrap();
    // Milliseconds on loopback (`make bench-swarm`); below half a segment even when loaded.
    assert!(p95 > 0.0 && p95 < 1.0, "a measured loopback download p95: {p95}");
    assert_eq!(r["passed"], true);
    assert_eq!(r["thresholds"].as_array().map(Vec::len), Some(2));
    assert_eq!(r["run"]["interrupted"], false);
    let series = r["series"].as_array().unwrap();
    assert!((8..=11).contains(&series.len()), "one sample per second of a 9 s run: {}", series.len());
    let series_bytes: u64 = series.iter().map(|s| s["bytes"].as_u64().unwrap()).sum();
    assert!(series_bytes > 0 && series_bytes <= bytes, "{series_bytes} of {bytes}");

    // (b) The page in headless Chromium: the charts are drawn, nothing is refused or logged.
    eprintln!("rendering {} with {}", page.display(), chromium_path.display());
    let shot = dir.path().join("shot.png");
    let shown =
        render(&page, &["--window-size=1280,2400".into(), format!("--screenshot={}", shot.display())]).await;
    let dom = render(&page, &["--dump-dom".into()]).await;
    for rendered in [&shown, &dom] {
        assert!(rendered.console().is_empty(), "console messages: {:#?}", rendered.console());
    }
    for title in html::CHART_TITLES {
        assert!(dom.stdout.contains(&format!("<title>{title}")), "chart '{title}' missing from the DOM");
    }
    assert_eq!(dom.stdout.matches("<svg class=\"chart\"").count(), 4, "four charts");
    assert!(dom.stdout.matches("<polyline").count() >= 4, "every chart has a line");
    assert!(dom.stdout.contains("PASSED: all 2 thresholds held"));
    for (what, colour) in [
        ("throughput", html::THROUGHPUT_COLOUR),
        ("streaming viewers", html::STREAMING_COLOUR),
        ("segment p95", html::P95_COLOUR),
        ("errors", html::ERRORS_COLOUR),
    ] {
        // A legend swatch is 24 pixels; a line across the plot several hundred.
        let n = pixels_of(&shot, colour);
        eprintln!("{what} ({colour}): {n} pixels");
        assert!(n >= 250, "the {what} line ({colour}) covers only {n} pixels of the screenshot");
    }
    Ok(())
}

#[testkit::test]
async fn chromium_check_catches_refused_loads_and_console_messages() -> testkit::Outcome {
    testkit::chromium::program()?;
    // The negative control for the test above: a page that breaks its own CSP is caught.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src \
         'none'; style-src 'unsafe-inline'; img-src data:\"></head><body><img src=\"http://127.0.0.1:9/x.png\">\
         <script>console.error('boom')</script></body></html>",
    )
    .unwrap();
    let rendered = render(&page, &["--dump-dom".into()]).await;
    let console = rendered.console();
    assert!(console.iter().any(|l| l.contains("127.0.0.1:9/x.png")), "{}", rendered.stderr);
    assert!(console.iter().any(|l| l.contains("inline script")), "{}", rendered.stderr);
    Ok(())
}

#[testkit::test]
async fn reports_are_written_when_interrupted_or_failed_and_a_write_failure_is_exit_1() {
    let _machine = shared_machine().await;
    let dir = tempfile::tempdir().unwrap();
    let written = dir.path().join("written.json");
    // A directory where the report should go: accepted at start, impossible to write at the end.
    let blocked = dir.path().join("blocked.json");
    std::fs::create_dir(&blocked).unwrap();
    let origin = start_origin().await;
    let child = swarm()
        .args(["--clients", "2", "--ramp-rate", "4", "--duration", "60s", "--tui=false"])
        .args(["--assert", "stalls>1000", "--report"])
        .arg(&blocked)
        .arg("--report")
        .arg(&written)
        .arg(origin.playlist_url())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    tokio::time::sleep(Duration::from_secs(5)).await;
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    origin.stop().await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot write the report '{}'", blocked.display())), "{stderr}");
    assert!(stderr.contains("a --assert threshold failed"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("Report: {}", written.display())), "{stdout}");
    assert!(!stdout.contains(&format!("Report: {}", blocked.display())), "{stdout}");
    let r = read_json(&written);
    validate(&r);
    assert_eq!(r["run"]["interrupted"], true);
    assert_eq!(r["passed"], false);
    assert_eq!(r["thresholds"][0]["passed"], false);
    assert_eq!(r["thresholds"][0]["field"], "stalls");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "no temporary files left behind: {leftovers:?}");
}

#[testkit::test]
fn bad_report_values_are_usage_errors_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("out.txt", "the extension '.txt' is not a report format"),
        ("nowhere/run.json", "the directory 'nowhere' does not exist"),
    ];
    for (value, reason) in cases {
        // Port 9 on loopback: nothing is contacted, because nothing starts.
        let out = swarm()
            .current_dir(dir.path())
            .args(["--clients", "1", "--duration", "5s", "--tui=false", "--report", value])
            .arg("http://127.0.0.1:9/stream.m3u8")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("--report '{value}'"))
                && stderr.contains(reason)
                && stderr.contains(".json")
                && stderr.contains(".html"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "nothing started: {}", text(&out));
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file written");
}
