//! Boot-to-playlist time of the origin VM: user-mode networking vs a TAP (in a private network
//! namespace; needs root), the extracted vmlinux vs the bzImage as shipped, q35 vs `-M
//! microvm`, on the accelerator this host gets (and TCG as well where that is KVM).
//!
//! Each configuration boots `BOOT_BENCH_RUNS` times (default 2) through the real `hls-lab
//! microvm start` and `stop`, and the table gives the median and range of: seconds from qemu's
//! start to the first served playlist, to both exporters answering, and of the clean power-off.
//! `make bench-microvm` (builds the release hls-origin first).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

struct Config {
    net: &'static str,
    machine: &'static str,
    kernel: &'static str,
    accel: &'static str,
}

#[derive(Default)]
struct Sample {
    playlist: Vec<f64>,
    exporters: Vec<f64>,
    poweroff: Vec<f64>,
    failures: Vec<String>,
}

fn hls_lab() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hls-lab"))
}

fn origin_bin() -> Option<PathBuf> {
    // target/<profile>/deps/boot-… → target/<profile>/hls-origin
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("hls-origin");
    p.is_file().then_some(p)
}

fn number_after(text: &str, marker: &str) -> Option<f64> {
    let rest = &text[text.find(marker)? + marker.len()..];
    rest.split_whitespace().next()?.trim_end_matches(',').parse().ok()
}

fn run(cmd: &mut Command) -> (bool, String) {
    match cmd.stdin(Stdio::null()).output() {
        Ok(o) => (
            o.status.success(),
            format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
        ),
        Err(e) => (false, e.to_string()),
    }
}

fn boot_once(c: &Config, origin: &Path, cache: &Path, run_dir: &Path, netns: Option<&str>, s: &mut Sample) {
    let mut start = Command::new(hls_lab());
    start
        .args(["microvm", "start", "--name", "bench", "--timeout", "180s", "--run-dir"])
        .arg(run_dir)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--origin-bin")
        .arg(origin)
        .args(["--net", c.net, "--machine", c.machine, "--kernel-form", c.kernel, "--accel", c.accel]);
    if let Some(ns) = netns {
        start.args(["--netns", ns]);
    } else {
        // Ports no user VM is likely to hold.
        start.args(["--host-ports", "27980,27981,27982"]);
    }
    let (ok, text) = run(&mut start);
    if ok {
        if let Some(v) = number_after(&text, "playlist served ") {
            s.playlist.push(v);
        }
        if let Some(v) = number_after(&text, "exporters answering after ") {
            s.exporters.push(v);
        }
    } else {
        s.failures.push(text.lines().last().unwrap_or("start failed").to_owned());
    }
    let mut stop = Command::new(hls_lab());
    stop.args(["microvm", "stop", "--name", "bench", "--run-dir"]).arg(run_dir);
    let (_, text) = run(&mut stop);
    if let Some(v) = number_after(&text, "powered off cleanly in ") {
        s.poweroff.push(v);
    }
}

fn stats(v: &[f64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 };
    format!("{median:5.1} ({:.1}–{:.1})", v[0], v[v.len() - 1])
}

fn main() -> ExitCode {
    // `cargo bench` passes --bench; `cargo test --benches` runs us with nothing to do.
    if !std::env::args().any(|a| a == "--bench") {
        return ExitCode::SUCCESS;
    }
    let Some(origin) = origin_bin() else {
        eprintln!(
            "boot bench: hls-origin is not built next to the bench (cargo build --release -p hls-origin)"
        );
        return ExitCode::FAILURE;
    };
    let runs: usize = std::env::var("BOOT_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let root = is_root();
    let work = std::env::temp_dir().join(format!("hls-lab-boot-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&work);
    let cache = origin.parent().unwrap_or(Path::new(".")).join("hls-lab-test-cache");

    // Which accelerator this host gets.
    let (_, verdict) = run(Command::new(hls_lab()).args(["microvm", "check-kvm"]));
    let kvm = verdict.lines().last().is_some_and(|l| l.starts_with("KVM"));
    println!("accelerator: {}", verdict.lines().last().unwrap_or("?"));
    let accels: &[&str] = if kvm { &["kvm", "tcg"] } else { &["tcg"] };

    let mut configs = Vec::new();
    for &accel in accels {
        for (net, machine, kernel) in [
            ("user", "q35", "uncompressed"),
            ("user", "q35", "as-shipped"),
            ("user", "microvm", "uncompressed"),
            ("tap", "q35", "uncompressed"),
            ("tap", "q35", "as-shipped"),
        ] {
            configs.push(Config { net, machine, kernel, accel });
        }
    }

    let netns = format!("hlslab-bench{}", std::process::id());
    let net_state = work.join("net");
    let network = |verb: &str| {
        run(Command::new(hls_lab()).args(["network", verb, "--netns", &netns, "--run-dir"]).arg(&net_state))
    };
    let tap_ready = root && network("setup").0;
    if !root {
        println!("TAP rows skipped: they need root (a network namespace, a bridge and a TAP)");
    }

    println!("\nboot bench: {runs} boot(s) per row; seconds from qemu's start, median (min–max)");
    println!(
        "{:<5} {:<8} {:<13} {:<5} {:>18} {:>18} {:>16}",
        "net", "machine", "kernel", "accel", "playlist served", "exporters up", "power-off"
    );
    let mut failed = false;
    for c in &configs {
        if c.net == "tap" && !tap_ready {
            continue;
        }
        let mut s = Sample::default();
        for i in 0..runs {
            let run_dir = work.join(format!("vm-{}-{}-{}-{}-{i}", c.net, c.machine, c.kernel, c.accel));
            boot_once(c, &origin, &cache, &run_dir, (c.net == "tap").then_some(netns.as_str()), &mut s);
        }
        println!(
            "{:<5} {:<8} {:<13} {:<5} {:>18} {:>18} {:>16}",
            c.net,
            c.machine,
            c.kernel,
            c.accel,
            stats(&s.playlist),
            stats(&s.exporters),
            stats(&s.poweroff)
        );
        for f in &s.failures {
            failed = true;
            println!("      failure: {f}");
        }
    }
    if tap_ready {
        let _ = network("teardown");
    }
    let _ = std::fs::remove_dir_all(&work);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}
