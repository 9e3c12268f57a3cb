//! `hls-lab observe` with the real Prometheus, scraping the real origin's exporters.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{free_ports, hls_lab, run, sibling, test_cache};

/// A child we started, killed and reaped if the test ends early.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Spawns `cmd` and sends its stdout lines to the returned receiver.
fn spawn_lines(cmd: &mut Command) -> (Guard, mpsc::Receiver<String>) {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (Guard(child), rx)
}

/// Lines until one satisfies `want` (returned) or `limit` passes (a failure naming `what`).
fn wait_line(
    rx: &mpsc::Receiver<String>,
    what: &str,
    limit: Duration,
    want: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if want(&line) => return line,
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    panic!("no {what} within {} s; saw:\n{}", limit.as_secs(), seen.join("\n"));
}

fn get(addr: SocketAddr, path: &str) -> String {
    let r = kit::http::get(addr, path, Duration::from_secs(5)).unwrap();
    String::from_utf8_lossy(&r.body).into_owned()
}

fn children_of(pid: u32) -> Vec<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    text.split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

#[testkit::test]
fn observe_scrapes_the_origins_exporters_and_stops_cleanly() -> testkit::Outcome {
    testkit::need::program("prometheus")?;
    let ports = free_ports(5);
    let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let (hls, node, nginx, prom, nobody) = (
        addr(ports[0].get()),
        addr(ports[1].get()),
        addr(ports[2].get()),
        addr(ports[3].get()),
        addr(ports[4].get()),
    );
    let work = tempfile::tempdir().unwrap();

    let (_origin, origin_out) = spawn_lines(
        Command::new(sibling("hls-origin"))
            .args(["serve", "--source", "replay", "--width", "320", "--height", "180", "--stop-grace", "3s"])
            .args(["--listen", &hls.to_string(), "--node-exporter", &node.to_string()])
            .args(["--nginx-exporter", &nginx.to_string(), "--work-dir"])
            .arg(work.path())
            .arg("--cache-dir")
            .arg(test_cache().join("observe-origin")),
    );
    wait_line(&origin_out, "`ready URL` from hls-origin", Duration::from_secs(150), |l| {
        l.starts_with("ready ")
    });

    // The swarm's address has nobody behind it: its job is there, and down.
    let (mut observe, out) = spawn_lines(
        Command::new(hls_lab())
            .args(["observe", "--grafana", "off", "--scrape-interval", "500ms"])
            .args(["--listen", &prom.to_string(), "--swarm", &nobody.to_string()])
            .args(["--node", &node.to_string(), "--nginx", &nginx.to_string()]),
    );
    let first =
        wait_line(&out, "the Prometheus line", Duration::from_secs(60), |l| l.starts_with("Prometheus"));
    assert!(first.contains(&format!("http://{prom}")), "{first}");
    let data: PathBuf = first.split("(data in ").nth(1).unwrap().trim_end_matches(')').into();
    assert!(data.join("prometheus.yml").is_file(), "{first}");
    wait_line(&out, "the Ctrl+C line", Duration::from_secs(10), |l| l.contains("Ctrl+C stops them"));
    let prometheus_pids = children_of(observe.0.id());
    assert_eq!(
        prometheus_pids.len(),
        1,
        "hls-lab observe runs one child (Prometheus), not {prometheus_pids:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    let targets = loop {
        let t = get(prom, "/api/v1/targets");
        let up = |job: &str| {
            t.contains(&format!("\"job\":\"{job}\"")) && t.matches("\"health\":\"up\"").count() >= 2
        };
        if up("hls-origin-node") && up("hls-origin-nginx") || Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let v: serde_json::Value = serde_json::from_str(&targets).unwrap();
    let health = |job: &str| {
        v["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["labels"]["job"] == job)
            .map(|t| t["health"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(health("hls-origin-node").as_deref(), Some("up"), "{targets}");
    assert_eq!(health("hls-origin-nginx").as_deref(), Some("up"), "{targets}");
    assert!(health("hls-swarm").is_some(), "no hls-swarm job: {targets}");
    // The origin's own metrics are in Prometheus: nginx's request counter has a value.
    let q = get(prom, "/api/v1/query?query=sum(nginx_http_requests_total)");
    assert!(q.contains("\"resultType\":\"vector\"") && q.contains("\"value\":["), "{q}");

    // Ctrl+C: both stop, the temporary data directory goes, exit 0.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(observe.0.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = observe.0.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "hls-lab observe did not stop within 30 s of SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0), "hls-lab observe exit status after SIGINT");
    for pid in prometheus_pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "Prometheus (pid {pid}) outlived observe"
        );
    }
    assert!(!data.exists(), "the temporary data directory {} was left behind", data.display());
    Ok(())
}

#[testkit::test]
fn observe_refuses_bad_values_before_starting_anything() {
    for (args, named) in [
        (vec!["--scrape-interval", "5ms"], "--scrape-interval 5ms"),
        (vec!["--duration", "0s"], "--duration 0s"),
        (vec!["--dashboards", "/nonexistent-hls-lab-dir"], "--dashboards /nonexistent-hls-lab-dir"),
    ] {
        let out = run(Command::new(hls_lab()).arg("observe").args(&args), Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{args:?}: {err}");
    }
}
