//! The origin VM booted for real (qemu, the host's kernel; TCG on hosts without KVM), then
//! loaded with the real `hls-swarm`: once with user-mode networking on 127.0.0.1, once on a
//! TAP in a fresh network namespace made by `hls-lab network setup`.
//!
//! Each boot costs ~10 s of TCG and a core, so these tests are in the slow tier and run by
//! `make test-lab` (which builds hls-origin and hls-swarm first).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{self, VmGuard};

const START_TIMEOUT: Duration = Duration::from_secs(300);

fn start_cmd(name: &str, run_dir: &Path, timeout: &str) -> Command {
    let mut cmd = Command::new(common::hls_lab());
    cmd.args(["microvm", "start", "--name", name, "--timeout", timeout, "--run-dir"])
        .arg(run_dir)
        .arg("--cache-dir")
        .arg(common::test_cache())
        .arg("--origin-bin")
        .arg(common::sibling("hls-origin"));
    cmd
}

fn swarm_cmd(url: &str) -> Command {
    let mut cmd = Command::new(common::sibling("hls-swarm"));
    cmd.args([
        "--clients",
        "10",
        "--ramp-rate",
        "5",
        "--duration",
        "20s",
        "--tui=false",
        "--metrics",
        "off",
        "--assert",
        "error_rate==0",
        url,
    ]);
    cmd
}

fn assert_metrics(node: &str, nginx: &str) {
    assert!(node.contains("node_cpu_seconds_total"), "node exporter: {}", &node[..node.len().min(300)]);
    assert!(node.contains("node_network_transmit_bytes_total"), "node exporter lacks netdev");
    assert!(nginx.contains("nginx_up{") && nginx.contains("} 1"), "nginx exporter: {nginx}");
    assert!(nginx.contains("nginx_http_requests_total"), "nginx exporter: {nginx}");
}

fn stop_and_check(name: &str, run_dir: &Path) {
    let mut cmd = Command::new(common::hls_lab());
    cmd.args(["microvm", "stop", "--name", name, "--run-dir"]).arg(run_dir);
    let out = common::run(&mut cmd, Duration::from_secs(60));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("powered off cleanly"), "{text}");
    // status tells the truth afterwards.
    let mut cmd = Command::new(common::hls_lab());
    cmd.args(["microvm", "status", "--name", name, "--run-dir"]).arg(run_dir);
    assert_eq!(common::run(&mut cmd, Duration::from_secs(30)).status.code(), Some(5));
    let left = common::processes_mentioning(&run_dir.to_string_lossy());
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let console = std::fs::read_to_string(run_dir.join("console.log")).unwrap();
    assert!(console.contains("power off requested: stopping hls-origin"), "{console}");
    assert!(console.contains("reboot: Power down"), "{console}");
}

#[testkit::test(slow = "boots a VM (TCG here: ~10 s of a core); run with make test-lab")]
fn vm_user_net_serves_the_swarm_on_loopback() -> testkit::Outcome {
    common::vm_facilities()?;
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("vm-t-user");
    let name = format!("t-user-{}", std::process::id());
    let ports = common::free_ports(3);
    let _guard = VmGuard { name: name.clone(), run_dir: run_dir.clone() };

    let mut cmd = start_cmd(&name, &run_dir, "180s");
    cmd.arg("--host-ports").arg(format!("{},{},{}", ports[0].get(), ports[1].get(), ports[2].get()));
    let out = common::run(&mut cmd, START_TIMEOUT);
    assert!(out.status.success(), "start failed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ready: playlist served"), "{text}");
    assert!(text.contains(&format!("http://127.0.0.1:{}/stream.m3u8", ports[0].get())), "{text}");

    // A second start on the same run directory is refused, naming the running VM.
    let again = common::run(&mut start_cmd(&name, &run_dir, "180s"), Duration::from_secs(60));
    assert_eq!(again.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is already running"));

    // The forwards listen, on loopback only (no IPv4 wildcard, nothing on IPv6).
    let listening_on = |table: &str, port: u16| -> Vec<String> {
        let suffix = format!(":{port:04X}");
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() > 3 && f[1].ends_with(&suffix) && f[3] == "0A").then(|| f[1].to_owned())
            })
            .collect()
    };
    for p in ports.iter().map(testkit::port::Port::get) {
        let v4 = listening_on("/proc/net/tcp", p);
        assert!(!v4.is_empty(), "nothing listens on port {p}");
        assert!(v4.iter().all(|a| a.starts_with("0100007F:")), "port {p} listens on {v4:?}");
        let v6 = listening_on("/proc/net/tcp6", p);
        assert!(v6.is_empty(), "port {p} listens on IPv6 {v6:?}");
    }

    let get = |port: u16, path: &str| {
        microvm::http::get(([127, 0, 0, 1], port).into(), path, Duration::from_secs(5)).unwrap()
    };
    assert!(microvm::http::is_playlist(&get(ports[0].get(), "/stream.m3u8")));
    assert_metrics(&get(ports[1].get(), "/metrics").text(), &get(ports[2].get(), "/metrics").text());

    let mut status = Command::new(common::hls_lab());
    status.args(["microvm", "status", "--name", &name, "--run-dir"]).arg(&run_dir);
    assert_eq!(common::run(&mut status, Duration::from_secs(30)).status.code(), Some(0));

    let url = format!("http://127.0.0.1:{}/stream.m3u8", ports[0].get());
    let swarm = common::run(&mut swarm_cmd(&url), Duration::from_secs(120));
    assert!(swarm.status.success(), "hls-swarm failed: {}", swarm.status);

    stop_and_check(&name, &run_dir);
    Ok(())
}

#[testkit::test(
    slow = "boots a VM on a TAP in a new network namespace (root, TCG here); run with make test-lab"
)]
fn vm_tap_in_netns_serves_the_swarm() -> testkit::Outcome {
    testkit::need::root("a network namespace, a bridge and a TAP")?;
    common::vm_facilities()?;
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("vm-t-tap");
    let net_state = dir.path().join("net");
    let ns = format!("hlslab-t{}", std::process::id());
    let name = format!("t-tap-{}", std::process::id());
    let host_links_before = host_links();

    let network = |verb: &str| {
        let mut cmd = Command::new(common::hls_lab());
        cmd.args(["network", verb, "--netns", &ns, "--run-dir"]).arg(&net_state);
        common::run(&mut cmd, Duration::from_secs(60))
    };
    struct NetGuard<F: Fn()>(F);
    impl<F: Fn()> Drop for NetGuard<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let _net = NetGuard(|| {
        let _ = network("teardown");
    });
    assert!(network("setup").status.success(), "network setup failed");
    assert!(network("setup").status.success(), "network setup is not idempotent");

    {
        let _guard = VmGuard { name: name.clone(), run_dir: run_dir.clone() };
        let mut cmd = start_cmd(&name, &run_dir, "180s");
        cmd.args(["--net", "tap", "--netns", &ns]);
        let out = common::run(&mut cmd, START_TIMEOUT);
        assert!(out.status.success(), "start failed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("http://10.177.0.10:17080/stream.m3u8"), "{text}");
        assert!(text.contains("plain TAP (no vhost-net") || text.contains("with vhost-net"), "{text}");

        // From inside the namespace: playlist and both exporters on the VM's own address.
        let get = |port: u16, path: &'static str| {
            microvm::http::get(([10, 177, 0, 10], port).into(), path, Duration::from_secs(5)).unwrap()
        };
        let (playlist, node, nginx) = microvm::netns::run_in(Some(&ns), move || {
            (get(17080, "/stream.m3u8"), get(9100, "/metrics"), get(9113, "/metrics"))
        })
        .unwrap();
        assert!(microvm::http::is_playlist(&playlist));
        assert_metrics(&node.text(), &nginx.text());

        let mut swarm = swarm_cmd("http://10.177.0.10:17080/stream.m3u8");
        network::netns::enter_in_child(&mut swarm, &ns).unwrap();
        let out = common::run(&mut swarm, Duration::from_secs(120));
        assert!(out.status.success(), "hls-swarm failed: {}", out.status);

        stop_and_check(&name, &run_dir);
    }
    assert!(network("teardown").status.success(), "network teardown failed");
    assert!(!network::netns::exists(&ns), "namespace {ns} left behind");
    assert!(!Path::new("/run/netns").join(&ns).exists(), "/run/netns/{ns} left behind");
    assert_eq!(host_links(), host_links_before, "the host's interfaces changed");
    assert!(common::processes_mentioning(&ns).is_empty(), "processes in {ns} left behind");
    Ok(())
}

fn host_links() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[testkit::test(slow = "starts a VM that cannot become ready in time (TCG here); run with make test-lab")]
fn vm_start_timeout_stops_the_vm_and_leaves_only_its_logs() -> testkit::Outcome {
    common::vm_facilities()?;
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("vm-t-timeout");
    let name = format!("t-timeout-{}", std::process::id());
    let ports = common::free_ports(3);
    let _guard = VmGuard { name: name.clone(), run_dir: run_dir.clone() };
    let mut cmd = start_cmd(&name, &run_dir, "3s");
    cmd.args(["--host-ports", &format!("{},{},{}", ports[0].get(), ports[1].get(), ports[2].get())]);
    let out = common::run(&mut cmd, START_TIMEOUT);
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("within 3 s; the VM was stopped"), "{err}");
    common::assert_nothing_left_but_logs(&name, &run_dir);
    assert!(run_dir.join("console.log").exists(), "the console log is kept for diagnosis");
    Ok(())
}
