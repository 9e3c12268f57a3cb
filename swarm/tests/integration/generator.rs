//! The generator's own health: a run on a saturated machine is marked generator-bound, a
//! quiet one is not. Both take the whole machine (within this test binary), so no other test's
//! viewers decide the verdict.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::common::*;

fn run_with_report(
    origin_url: &str,
    seconds: u32,
    dir: &std::path::Path,
) -> (std::process::Output, serde_json::Value) {
    let report = dir.join("run.json");
    let out = swarm()
        .args(["--clients", "2", "--duration", &format!("{seconds}s"), "--tui=false"])
        .args(["--assert", "generator_bound==false", "--report"])
        .arg(&report)
        .arg(origin_url)
        .output()
        .unwrap();
    let json = serde_json::from_str(&std::fs::read_to_string(&report).expect("report written")).unwrap();
    (out, json)
}

/// Two CPU hogs on a 2-core machine: the host stays above 85 % for the whole run, so the run
/// is generator-bound and `generator_bound==false` fails it (exit 5).
#[testkit::test]
async fn a_saturated_machine_makes_the_run_generator_bound() -> testkit::Outcome {
    let stress = testkit::need::program("stress-ng")?;
    let _machine = whole_machine().await;
    let origin = start_origin().await;
    let url = origin.playlist_url();
    let dir = tempfile::tempdir().unwrap();
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    // Its own process group, ended by pid below, bounded by its own timeout as well.
    let mut hog = Command::new(stress)
        .args(["--cpu", &cores.to_string(), "--timeout", "40s", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let path = dir.path().to_owned();
    let (out, r) = tokio::task::spawn_blocking(move || run_with_report(&url, 16, &path)).await.unwrap();
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(i32::try_from(hog.id()).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = hog.wait();
    origin.stop().await.unwrap();
    let g = &r["generator"];
    assert_eq!(g["bound"], true, "{g}\n{}", text(&out));
    assert!(g["reasons"].to_string().contains("host CPU above 85 %"), "{g}");
    assert!(g["host_cpu_peak"].as_f64().unwrap() > 0.85, "{g}");
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("GENERATOR-BOUND"), "{}", text(&out));
    Ok(())
}

/// Two viewers alone on the machine: not generator-bound, and the figures are there.
#[testkit::test]
async fn a_quiet_run_is_not_generator_bound() {
    let _machine = whole_machine().await;
    let origin = start_origin().await;
    let url = origin.playlist_url();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let (out, r) = tokio::task::spawn_blocking(move || run_with_report(&url, 8, &path)).await.unwrap();
    origin.stop().await.unwrap();
    let g = &r["generator"];
    assert_eq!(g["bound"], false, "{g}\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(g["host_cpu_peak"].as_f64().is_some_and(|p| p > 0.0 && p <= 1.0), "{g}");
    assert!(g["process_cpu_cores_mean"].as_f64().is_some_and(|c| c > 0.0), "{g}");
    assert!(g["stats_tick_lag_max_seconds"].as_f64().is_some_and(|l| l < 1.0), "{g}");
}
