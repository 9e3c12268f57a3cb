//! The acceptance run with real podman: both images built from this host's binaries, loaded
//! into a private store (`--root`/`--runroot`/`--tmpdir` in a temporary directory, with the
//! lab's `containers.conf`), the origin container and then the swarm container in a network
//! namespace made for the test (loopback only), and a passing JSON report written by the swarm
//! into a mounted directory. Containers, images and the namespace are removed at the end, also
//! when the test fails.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use containers::cli::{build_images, wait_healthy};
use containers::podman::{self, conf::Conf, Podman};
use containers::spec::{Image, HLS_PORT, NGINX_EXPORTER_PORT, NODE_EXPORTER_PORT};

use crate::common;

/// Removes what the test made, whatever happens to it.
struct Lab {
    podman: Podman,
    containers: Vec<String>,
    images: Vec<String>,
    netns: Option<String>,
}

impl Lab {
    fn cleanup(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let names: Vec<&str> = self.containers.iter().map(String::as_str).collect();
        if let Err(e) = self.podman.remove_containers(&names) {
            problems.push(e.to_string());
        }
        self.containers.clear();
        let refs: Vec<&str> = self.images.iter().map(String::as_str).collect();
        if let Err(e) = self.podman.remove_images(&refs) {
            problems.push(e.to_string());
        }
        self.images.clear();
        if let Some(ns) = self.netns.take() {
            if let Err(e) = network::netns::delete(&ns) {
                problems.push(format!("deleting netns {ns}: {e}"));
            }
        }
        problems
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in self.cleanup() {
            eprintln!("cleanup: {p}");
        }
    }
}

/// `GET path` on 127.0.0.1 from the calling thread's namespace: status and body.
fn get(port: u16, path: &str) -> Result<(u16, String), kit::http::Error> {
    let r = kit::http::get(SocketAddr::from(([127, 0, 0, 1], port)), path, Duration::from_secs(30))?;
    Ok((r.status, r.text()))
}

fn uid_of(pid: &str) -> String {
    let status = std::fs::read_to_string(Path::new("/proc").join(pid).join("status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap().to_owned();
    line.split_whitespace().nth(1).unwrap().to_owned()
}

#[testkit::test]
fn podman_runs_origin_and_swarm_images_to_a_passing_report_needs_root() -> testkit::Outcome {
    testkit::need::root("creates a network namespace and runs rootful podman (runc)")?;
    testkit::need::program("podman")?;
    let program = podman::find().expect("podman is not installed: scripts/install-deps --test installs it");
    let t0 = Instant::now();
    let sfx = common::suffix();
    let inputs = common::inputs();

    // Both images, uniquely named, into a private store.
    let tmp = tempfile::Builder::new().prefix("hls-containers-test-").tempdir().unwrap();
    let mut swarm_img = Image::swarm_client(&inputs);
    let mut origin_img = Image::test_origin(&inputs);
    swarm_img.name = format!("{}-t{sfx}", swarm_img.name);
    origin_img.name = format!("{}-t{sfx}", origin_img.name);
    swarm_img.tag = "test".into();
    origin_img.tag = "test".into();
    let written = build_images(&[swarm_img.clone(), origin_img.clone()], &tmp.path().join("images")).unwrap();
    eprintln!("built both images in {:.1} s", t0.elapsed().as_secs_f64());

    let conf = Conf::for_this_host().write(&tmp.path().join("containers.conf")).unwrap();
    let podman = Podman::new(program).with_storage(&tmp.path().join("storage")).with_conf(&conf);
    let ns = format!("hlsct-{sfx}");
    let (origin, swarm) = (format!("hlsct-origin-{sfx}"), format!("hlsct-swarm-{sfx}"));
    let mut lab = Lab {
        podman: podman.clone(),
        containers: vec![origin.clone(), swarm.clone()],
        images: vec![
            format!("localhost/{}", swarm_img.reference()),
            format!("localhost/{}", origin_img.reference()),
        ],
        netns: None,
    };
    for (w, want) in written.iter().zip(&lab.images) {
        let loaded = podman.load(&w.path).unwrap();
        assert_eq!(loaded, format!("Loaded image: {want}"));
        let id = podman.output(&["image", "inspect", "--format", "{{.Id}}", want]).unwrap();
        assert_eq!(format!("sha256:{id}"), w.id, "podman's image id is the config digest");
    }
    eprintln!("loaded at {:.1} s", t0.elapsed().as_secs_f64());

    // A namespace with loopback only; both containers join it.
    assert!(network::netns::create(&ns).unwrap(), "netns {ns} existed already");
    lab.netns = Some(ns.clone());
    let ip = Command::new("ip").args(["-n", &ns, "link", "set", "lo", "up"]).status();
    assert!(ip.is_ok_and(|s| s.success()), "ip -n {ns} link set lo up failed (iproute2 needed)");
    let net = format!("ns:{}", network::netns::path(&ns).display());

    // The origin: healthy by its own healthcheck, serving from outside the container.
    podman.output(&["run", "--detach", "--name", &origin, "--network", &net, &lab.images[1]]).unwrap();
    let healthy = wait_healthy(&podman, &origin, Duration::from_secs(60));
    if let Err(why) = &healthy {
        let logs = podman.logs(&origin, 40);
        panic!("origin container: {why}\n{logs}");
    }
    eprintln!("origin healthy at {:.1} s", t0.elapsed().as_secs_f64());
    let pid = podman.inspect(&origin, "{{.State.Pid}}").unwrap();
    assert_eq!(uid_of(&pid), origin_img.user.uid.to_string(), "origin runs as its non-root user");
    let (playlist, node, nginx) = network::netns::in_netns(&ns, || {
        (
            get(HLS_PORT, "/stream.m3u8"),
            get(NODE_EXPORTER_PORT, "/metrics"),
            get(NGINX_EXPORTER_PORT, "/metrics"),
        )
    })
    .unwrap();
    let (status, body) = playlist.unwrap();
    assert!(status == 200 && body.starts_with("#EXTM3U") && body.contains("#EXTINF"), "{status} {body}");
    assert!(node.unwrap().1.contains("node_cpu_seconds_total"), "node exporter");
    assert!(nginx.unwrap().1.contains("nginx_connections_active"), "nginx exporter");

    // The swarm: configured by environment variables, report into a mounted directory.
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(swarm_img.user.uid), Some(swarm_img.user.uid)).unwrap();
    let volume = format!("{}:/out", out.display());
    let url = format!("STREAM_URL=http://127.0.0.1:{HLS_PORT}/stream.m3u8");
    #[rustfmt::skip]
    let run = [
        "run", "--detach", "--name", &swarm, "--network", &net, "--volume", &volume,
        "--env", &url, "--env", "CLIENTS=3", "--env", "DURATION=15s",
        &lab.images[0],
        "--assert", "error_rate==0", "--assert", "viewers_reached>=100%", "--report", "/out/report.json",
    ];
    podman.output(&run).unwrap();
    let started = Instant::now();
    let mut swarm_healthy = None;
    let mut swarm_uid = None;
    loop {
        let running = podman.inspect(&swarm, "{{.State.Running}}").unwrap();
        if running != "true" {
            break;
        }
        if swarm_uid.is_none() {
            let pid = podman.inspect(&swarm, "{{.State.Pid}}").unwrap();
            swarm_uid = Some(uid_of(&pid));
        }
        // Its /metrics listener comes up after preflight: ask until the healthcheck passes
        // once, while the run lasts.
        if !matches!(swarm_healthy, Some(Ok(_))) && started.elapsed() > Duration::from_secs(3) {
            swarm_healthy = Some(podman.output(&["healthcheck", "run", &swarm]));
        }
        assert!(started.elapsed() < Duration::from_secs(90), "the swarm did not end within 90 s");
        std::thread::sleep(Duration::from_millis(500));
    }
    let code = podman.inspect(&swarm, "{{.State.ExitCode}}").unwrap();
    let logs = podman.logs(&swarm, 200);
    eprintln!("swarm exited {code} at {:.1} s", t0.elapsed().as_secs_f64());
    assert_eq!(code, "0", "hls-swarm's exit code; its output:\n{logs}");
    assert!(logs.contains("Report: /out/report.json"), "{logs}");
    assert_eq!(swarm_uid.as_deref(), Some(swarm_img.user.uid.to_string().as_str()), "swarm runs as non-root");
    match swarm_healthy {
        Some(Ok(_)) => {}
        other => panic!("the swarm's healthcheck (curl /metrics) did not pass while it ran: {other:?}"),
    }

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["fields"]["viewers_reached"], 1.0);
    assert_eq!(report["fields"]["error_rate"], 0.0);
    assert_eq!(report["viewers"]["target"], 3);
    assert!(report["requests"]["by_kind"]["segment"]["count"].as_u64().unwrap() > 0, "segments downloaded");
    assert!(report["requests"]["by_kind"]["segment"]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(report["thresholds"].as_array().unwrap().len(), 2);

    // The origin stops cleanly on podman's SIGTERM: exit 0 (podman's SIGKILL after the 10 s
    // would make it 137).
    podman.output(&["stop", "--time", "10", &origin]).unwrap();
    let code = podman.inspect(&origin, "{{.State.ExitCode}}").unwrap();
    assert_eq!(code, "0", "hls-origin's exit code after SIGTERM");

    // Nothing left.
    let problems = lab.cleanup();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(podman.output(&["ps", "--all", "--quiet"]).unwrap(), "");
    assert_eq!(podman.output(&["images", "--quiet"]).unwrap(), "");
    assert!(!network::netns::exists(&ns), "netns {ns} left behind");
    drop(lab);
    eprintln!("done in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}
