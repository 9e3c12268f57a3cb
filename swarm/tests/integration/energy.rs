//! The origin's energy: the real swarm and the real origin, with the real
//! `prometheus-node-exporter` reading a sysfs tree this test makes (`--path.sysfs`), whose
//! RAPL counters a thread advances at known rates. The swarm's figures must match the
//! injected energy within 1 %; without RAPL the summary says "unavailable", or gives an
//! estimate labelled as one with `--origin-watts-per-core`; a bad watt figure is exit 2.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/report.schema.json");

/// Injected power: package 100 W and DRAM 5 W are added; the core subzone (part of the
/// package) and the `intel-rapl-mmio` duplicate of the package must not be.
const PACKAGE_W: f64 = 100.0;
const DRAM_W: f64 = 5.0;
const CORE_W: f64 = 60.0;

/// A made-up `/sys` with RAPL zones whose `energy_uj` grow at fixed rates, and the real node
/// exporter reading it (and /proc for the CPU collector). Both end on drop: the writer is
/// joined, the exporter's process group killed and reaped by [`FakeHost::stop`].
struct FakeHost {
    _dir: tempfile::TempDir,
    exporter: procgroup::Group,
    url: String,
    writer: Option<std::thread::JoinHandle<()>>,
    done: Arc<AtomicBool>,
}

impl FakeHost {
    /// `zones`: (directory, name, watts); empty = a host without RAPL.
    async fn start(program: &Path, zones: &[(&str, &str, f64)]) -> FakeHost {
        let dir = tempfile::tempdir().unwrap();
        let powercap = dir.path().join("class/powercap");
        std::fs::create_dir_all(&powercap).unwrap();
        let mut files: Vec<(PathBuf, f64)> = Vec::new();
        for (zone, name, watts) in zones {
            let z = powercap.join(zone);
            std::fs::create_dir_all(&z).unwrap();
            std::fs::write(z.join("name"), format!("{name}\n")).unwrap();
            // The exporter needs the range to read a zone; far above what the test reaches.
            std::fs::write(z.join("max_energy_range_uj"), "262143328850\n").unwrap();
            std::fs::write(z.join("energy_uj"), "1000000\n").unwrap();
            files.push((z, *watts));
        }
        // Counters follow monotonic time (value = start + rate × elapsed), not sleeps, so a
        // busy machine delays a write but never changes the rate. Written by rename: the
        // exporter never reads half a number.
        let done = Arc::new(AtomicBool::new(false));
        let writer = (!files.is_empty()).then(|| {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let t0 = Instant::now();
                while !done.load(Ordering::Relaxed) {
                    let us = t0.elapsed().as_secs_f64() * 1e6;
                    for (z, watts) in &files {
                        let tmp = z.join(".energy_uj");
                        std::fs::write(&tmp, format!("{}\n", 1_000_000 + (watts * us) as u64)).unwrap();
                        std::fs::rename(&tmp, z.join("energy_uj")).unwrap();
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        });
        // Reserved: nothing else listens there while this test runs.
        let port_reserved = testkit::port::reserve().unwrap();
        let port = port_reserved.get();
        let mut cmd = tokio::process::Command::new(program);
        cmd.arg(format!("--path.sysfs={}", dir.path().display()))
            .args(["--collector.disable-defaults", "--collector.rapl", "--collector.cpu"])
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let exporter = procgroup::spawn(&mut cmd).expect("the node exporter starts");
        let addr = format!("127.0.0.1:{port}");
        let want = if zones.is_empty() { "node_cpu_seconds_total" } else { "node_rapl_package_joules_total" };
        let ready = tokio::task::spawn_blocking(move || {
            wait_for(Duration::from_secs(15), || {
                try_http_get(&addr, "/metrics").ok().filter(|m| m.contains(want))
            })
        })
        .await
        .unwrap();
        let host =
            FakeHost { _dir: dir, exporter, url: format!("http://127.0.0.1:{port}/metrics"), writer, done };
        assert!(ready.is_some(), "the node exporter on {} never served {want}", host.url);
        host
    }

    async fn stop(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(w) = self.writer.take() {
            w.join().unwrap();
        }
        self.exporter.stop(Duration::from_secs(3)).await.expect("the node exporter stops");
    }
}

/// Runs 2 native viewers for `seconds` against `origin`, scraping `node` every second, with
/// `extra` flags; returns stdout, the JSON report (checked against the schema) and the HTML
/// page's origin section.
async fn run(
    origin: &origin::Origin,
    node: &str,
    seconds: u32,
    extra: &[&str],
) -> (String, serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("run.json");
    let page = dir.path().join("run.html");
    let mut args: Vec<String> = [
        "--engine",
        "native",
        "--clients",
        "2",
        "--ramp-rate",
        "10",
        "--tui=false",
        "--origin-metrics",
        node,
        "--origin-metrics-interval",
        "1s",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(["--duration".to_owned(), format!("{seconds}s"), "--report".to_owned()]);
    args.push(report.display().to_string());
    args.push(format!("--report={}", page.display()));
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push(origin.playlist_url());
    let out = tokio::task::spawn_blocking(move || {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        run_swarm(&argv)
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(SCHEMA).unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let errors: Vec<String> =
        validator.iter_errors(&json).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "the report does not match docs/report.schema.json: {errors:#?}");
    let html = std::fs::read_to_string(&page).unwrap();
    let origin_section = html.split("<h2>Origin</h2>").nth(1).expect("an Origin section").to_owned();
    (String::from_utf8_lossy(&out.stdout).into_owned(), json, origin_section)
}

fn within(actual: f64, expected: f64, fraction: f64) -> bool {
    (actual - expected).abs() <= expected.abs() * fraction
}

/// The acceptance test: RAPL counters advanced at 105 W (package 100 + DRAM 5; the core
/// subzone and the mmio duplicate must not be added) are reported within 1 %.
#[testkit::test]
async fn rapl_energy_from_a_real_node_exporter_matches_the_injected_energy() -> testkit::Outcome {
    let program = testkit::need::program("prometheus-node-exporter")?;
    let _machine = shared_machine().await;
    let zones = [
        ("intel-rapl:0", "package-0", PACKAGE_W),
        ("intel-rapl:0:0", "core", CORE_W),
        ("intel-rapl:0:1", "dram", DRAM_W),
        ("intel-rapl-mmio:0", "package-0", PACKAGE_W),
    ];
    let host = FakeHost::start(&program, &zones).await;
    let origin = start_origin().await;
    let (out, report, html) = run(&origin, &host.url, 8, &[]).await;
    origin.stop().await.unwrap();
    host.stop().await;

    let e = &report["origin"]["energy"];
    eprintln!("energy: {e:#}");
    let line = out.lines().find(|l| l.starts_with("Origin energy")).unwrap_or_else(|| panic!("{out}"));
    eprintln!("{line}");
    assert!(line.starts_with("Origin energy     measured: RAPL dram-0 + package-0 ·"), "{line}");
    assert_eq!(e["source"], "rapl", "{e}");
    assert_eq!(e["formula"], "measured: RAPL dram-0 + package-0", "{e}");
    assert!(html.contains("<th>energy over the run</th><td>measured: RAPL dram-0 + package-0 · "), "{html}");
    let f = |k: &str| e[k].as_f64().unwrap_or_else(|| panic!("{k} in {e}"));
    let (joules, seconds) = (f("joules"), f("seconds"));
    let injected = PACKAGE_W + DRAM_W;
    // The scraped window: the run (8 s) and its stop, from the first to the last scrape.
    assert!(seconds > 6.0, "{e}");
    assert!(within(f("watts_mean"), injected, 0.01), "mean {} W for {injected} W injected", f("watts_mean"));
    assert!(within(joules, injected * seconds, 0.01), "{joules} J for {} J injected", injected * seconds);
    // The peak is one interval's mean, and an interval is measured between the swarm's
    // request times, which differ from the exporter's reading times by its response time
    // (tens of ms on a busy machine: 10 % of a 500 ms interval was seen). So it is checked
    // loosely here; the exact fold is unit-tested. A core or mmio zone added would be
    // 57–95 % higher.
    let peak = f("watts_peak");
    assert!(peak >= f("watts_mean") - 1e-9 && within(peak, injected, 0.25), "peak {peak} W");
    assert_eq!(e["counter_resets"], 0, "{e}");
    assert_eq!((e["watts_per_core"].is_null(), e["busy_cpu_seconds"].is_null()), (true, true), "{e}");
    // Derived figures: exactly the report's own watch time and bytes.
    let watch = report["playback"]["watch_seconds"].as_f64().unwrap();
    let bytes = report["requests"]["bytes"].as_f64().unwrap();
    assert!(watch > 5.0 && bytes > 0.0, "{report:#}");
    assert!(within(f("joules_per_viewer_hour"), joules / (watch / 3600.0), 1e-9), "{e}");
    assert!(within(f("joules_per_gigabyte"), joules / (bytes / 1e9), 1e-9), "{e}");
    Ok(())
}

/// Without RAPL counters: "unavailable" and no numbers; with `--origin-watts-per-core` an
/// estimate labelled as one, with its formula, that is busy CPU-seconds × W.
#[testkit::test]
async fn without_rapl_energy_is_unavailable_or_a_labelled_estimate() -> testkit::Outcome {
    let program = testkit::need::program("prometheus-node-exporter")?;
    let _machine = shared_machine().await;
    let host = FakeHost::start(&program, &[]).await;
    let origin = start_origin().await;
    let (plain, plain_report, plain_html) = run(&origin, &host.url, 3, &[]).await;
    let (estimated, estimate_report, estimate_html) =
        run(&origin, &host.url, 3, &["--origin-watts-per-core", "12.5"]).await;
    origin.stop().await.unwrap();
    host.stop().await;

    let line = plain.lines().find(|l| l.starts_with("Origin energy")).unwrap_or_else(|| panic!("{plain}"));
    assert_eq!(
        line,
        "Origin energy     unavailable: the origin's node exporter reports no RAPL counters (VMs and many \
         cloud hosts have none); --origin-watts-per-core W gives a labelled estimate"
    );
    assert!(plain_html.contains("<th>energy over the run</th><td>unavailable: "), "{plain_html}");
    assert!(plain_html.contains("reports no RAPL counters"), "{plain_html}");
    let e = &plain_report["origin"]["energy"];
    assert_eq!(e["source"], "unavailable", "{e}");
    assert!(e["unavailable_reason"].as_str().unwrap().contains("no RAPL counters"), "{e}");
    for k in
        ["joules", "seconds", "watts_mean", "watts_peak", "joules_per_viewer_hour", "joules_per_gigabyte"]
    {
        assert!(e[k].is_null(), "{k} must not be a number without RAPL: {e}");
    }

    let line =
        estimated.lines().find(|l| l.starts_with("Origin energy")).unwrap_or_else(|| panic!("{estimated}"));
    eprintln!("{line}");
    assert!(
        line.starts_with("Origin energy     estimated: origin busy CPU-seconds × 12.5 W per core · "),
        "{line}"
    );
    let label = "<td>estimated: origin busy CPU-seconds × 12.5 W per core · ";
    assert!(estimate_html.contains(label), "{estimate_html}");
    let e = &estimate_report["origin"]["energy"];
    eprintln!("estimate: {e:#}");
    assert_eq!(e["source"], "estimate", "{e}");
    assert_eq!(e["formula"], "estimated: origin busy CPU-seconds × 12.5 W per core", "{e}");
    assert_eq!(e["watts_per_core"], 12.5, "{e}");
    let f = |k: &str| e[k].as_f64().unwrap_or_else(|| panic!("{k} in {e}"));
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) as f64;
    // The swarm and the origin run here, so the host is busy, but never more than every CPU.
    assert!(f("busy_cpu_seconds") > 0.0 && f("busy_cpu_seconds") <= cpus * f("seconds") * 1.01, "{e}");
    assert!(within(f("joules"), f("busy_cpu_seconds") * 12.5, 1e-9), "{e}");
    assert!(within(f("watts_mean"), f("joules") / f("seconds"), 1e-9), "{e}");
    assert!(e["counter_resets"].is_null(), "{e}");
    Ok(())
}

/// A watt figure that is not a power, or one without a node exporter to read CPU time from,
/// is a usage error naming it, before anything starts.
#[testkit::test]
fn a_bad_watts_per_core_is_exit_2_naming_it() {
    for bad in ["0", "-5", "NaN", "inf", "5000"] {
        let flag = format!("--origin-watts-per-core={bad}");
        let out = run_swarm(&[&flag, "http://127.0.0.1:9/stream.m3u8"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("--origin-watts-per-core {bad} is out of range")), "{}", text(&out));
        assert!(err.contains("more than 0 and at most 1000"), "{}", text(&out));
    }
    // An estimate needs the node exporter's CPU time.
    let out = run_swarm(&["--origin-watts-per-core", "10", "http://127.0.0.1:9/stream.m3u8"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--origin-watts-per-core 10 estimates from the origin's node exporter"), "{err}");
}
