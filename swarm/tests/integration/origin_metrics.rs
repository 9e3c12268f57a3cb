//! `measure::origin::run` against the real origin's node and nginx exporters on loopback.

use std::time::Duration;

use swarm::measure::origin::{self as scrape, OriginSnapshot, Targets};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::common::*;

/// The cheap origin of [`start_origin`], with both exporters on free loopback ports.
async fn origin_with_exporters() -> origin::Origin {
    let mut config = origin::Config::new("default").expect("default profile");
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.source = origin::Source::Replay;
    config.overrides.width = Some(320);
    config.overrides.height = Some(180);
    config.overrides.bitrate_kbps = Some(300);
    config.node_exporter = Some("127.0.0.1:0".parse().unwrap());
    config.nginx_exporter = Some("127.0.0.1:0".parse().unwrap());
    origin::start(config).await.expect("origin starts")
}

/// Scrapes `targets` every `interval` until stopped.
fn start_scraping(
    targets: Targets,
    interval: Duration,
) -> (watch::Receiver<OriginSnapshot>, CancellationToken, tokio::task::JoinHandle<()>) {
    let (publish, snapshots) = watch::channel(OriginSnapshot::default());
    let stop = CancellationToken::new();
    let task = tokio::spawn(scrape::run(targets, interval, None, publish, stop.clone()));
    (snapshots, stop, task)
}

/// Waits for the next published round.
async fn next_round(snapshots: &mut watch::Receiver<OriginSnapshot>) -> OriginSnapshot {
    tokio::time::timeout(Duration::from_secs(10), snapshots.changed())
        .await
        .expect("a round within 10 s")
        .expect("scraper alive");
    snapshots.borrow_and_update().clone()
}

/// A port on loopback that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[testkit::test]
async fn origin_figures_under_http_load() {
    let _machine = shared_machine().await;
    let origin = origin_with_exporters().await;
    let targets = Targets::at(origin.node_exporter(), origin.nginx_exporter());
    assert!(targets.node.is_some() && targets.nginx.is_some(), "both exporters run: {targets:?}");
    let (mut snapshots, stop, task) = start_scraping(targets, Duration::from_millis(700));

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let playlist = origin.playlist_url();
    let first = next_round(&mut snapshots).await;
    assert!(first.node.ok && first.nginx.ok, "{first:?}");
    assert_eq!(first.cpu_percent, None, "one scrape gives no rate: {first:?}");
    let mut seen = Vec::new();
    for _ in 0..2 {
        for _ in 0..50 {
            let resp = client.get(&playlist).send().await.unwrap();
            assert!(resp.status().is_success(), "{}", resp.status());
            resp.bytes().await.unwrap();
        }
        seen.push(next_round(&mut snapshots).await);
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("run returns when stopped").unwrap();
    origin.stop().await.expect("origin stops");

    let s = seen.last().unwrap();
    eprintln!("origin figures: {s:#?}");
    assert!(s.node.ok && s.node.error.is_none() && s.node.scrapes_ok >= 3, "{s:?}");
    assert!(s.nginx.ok && s.nginx.error.is_none() && s.nginx.scrapes_ok >= 3, "{s:?}");
    let cpu = s.cpu_percent.expect("cpu after two scrapes");
    assert!((0.0..=100.0).contains(&cpu), "{cpu}");
    let (used, total) = (s.mem_used_bytes.unwrap(), s.mem_total_bytes.unwrap());
    assert!(total > 64 << 20 && used > 0 && used < total, "used {used} of {total}");
    // The origin is on this machine: lo carries the test's own traffic too, so no device
    // figure is given rather than one that is not the origin's.
    assert_eq!(s.net_scope, swarm::measure::origin::NetScope::Loopback, "{s:?}");
    assert_eq!((s.net_rx_bytes_per_second, s.net_tx_bytes_per_second), (None, None), "{s:?}");
    assert_eq!(s.nginx_up, Some(true));
    assert!(s.requests_per_second.is_some_and(|r| r > 0.0), "{s:?}");
    assert!(s.active_connections.is_some_and(|c| c >= 1), "{s:?}");
    // Our 100 GETs (the exporter's own stub_status fetches come on top).
    assert!(s.run.requests >= 100, "{:?}", s.run);
    let peak = s.run.cpu_peak_percent.unwrap();
    let mean = s.run.cpu_mean_percent.unwrap();
    assert!((0.0..=100.0).contains(&mean) && mean <= peak + 1e-9, "{:?}", s.run);
}

#[testkit::test]
async fn unreachable_exporter_is_reported_while_the_other_works() {
    let _machine = shared_machine().await;
    let origin = origin_with_exporters().await;
    let closed = format!("127.0.0.1:{}", closed_port());
    let targets = Targets::at(Some(closed.parse().unwrap()), origin.nginx_exporter());
    let closed_url = targets.node.clone().unwrap();
    let (mut snapshots, stop, task) = start_scraping(targets, Duration::from_millis(300));

    next_round(&mut snapshots).await;
    let s = next_round(&mut snapshots).await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("run returns when stopped").unwrap();
    origin.stop().await.expect("origin stops");

    eprintln!("node error: {:?}", s.node.error);
    assert!(!s.node.ok && s.node.last_ok.is_none(), "{s:?}");
    assert_eq!((s.node.scrapes_ok, s.node.scrapes_failed), (0, 2), "{s:?}");
    let error = s.node.error.as_deref().unwrap();
    assert!(error.contains(closed_url.as_str()) && error.contains("connection refused"), "{error}");
    assert_eq!((s.cpu_percent, s.mem_total_bytes, s.net_tx_bytes_per_second), (None, None, None));
    assert!(s.nginx.ok && s.nginx.error.is_none() && s.nginx.scrapes_ok == 2, "{s:?}");
    assert_eq!(s.nginx_up, Some(true));
    assert!(s.requests_per_second.is_some_and(|r| r > 0.0), "{s:?}");
}
