//! Supervision: restarts after a kill, clean exit on SIGTERM, no orphans after SIGKILL.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};

use origin::Source;

use crate::common::{alive, eventually, get, media, small};

fn sigkill(pid: u32) {
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGKILL).unwrap();
}

fn pid_of(origin: &origin::Origin, name: &str) -> Option<u32> {
    origin.pids().into_iter().find(|(n, _)| n == name).map(|(_, p)| p)
}

#[testkit::test]
async fn killed_encoder_and_nginx_are_restarted_and_the_stream_resumes() {
    let origin = origin::start(small("default", Source::Encode)).await.unwrap();
    let addr = origin.listen();

    let ffmpeg = pid_of(&origin, "ffmpeg").unwrap();
    let before = media(addr, "/stream.m3u8").await;
    let last_before = before.media_sequence + before.segments.len() as u64;
    sigkill(ffmpeg);
    let new_ffmpeg = eventually("a new ffmpeg", Duration::from_secs(30), || async {
        pid_of(&origin, "ffmpeg").filter(|p| *p != ffmpeg)
    })
    .await;
    assert!(!alive(ffmpeg));
    // The restarted encoder continues the sequence (append_list) and new segments appear.
    let after = eventually("new segments after the restart", Duration::from_secs(30), || async {
        let m = media(addr, "/stream.m3u8").await;
        (m.media_sequence + m.segments.len() as u64 >= last_before + 2).then_some(m)
    })
    .await;
    assert!(
        after.media_sequence >= before.media_sequence,
        "sequence went backwards: {before:?} -> {after:?}"
    );
    assert!(after.segments.iter().any(|s| s.discontinuity), "restart not marked: {after:?}");
    let row = &origin.children()["ffmpeg"];
    assert_eq!(row.restarts, 1);
    assert_eq!(row.last_exit.as_deref(), Some("signal 9 (SIGKILL)"));

    let nginx = pid_of(&origin, "nginx").unwrap();
    sigkill(nginx);
    eventually("nginx to serve again", Duration::from_secs(30), || async {
        let back = pid_of(&origin, "nginx").is_some_and(|p| p != nginx);
        let ok = origin::http::get(addr, "/stream.m3u8", Duration::from_secs(1))
            .await
            .is_ok_and(|r| r.status == 200);
        (back && ok).then_some(())
    })
    .await;
    assert_eq!(pid_of(&origin, "ffmpeg"), Some(new_ffmpeg), "killing nginx must not touch ffmpeg");
    let h: serde_json::Value = serde_json::from_slice(&get(addr, "/health").await.body).unwrap();
    assert_eq!(h["children"]["nginx"]["restarts"], 1, "{h}");
    assert_eq!(h["status"], "ok", "{h}");
    origin.stop().await.unwrap();
}

/// Starts the `hls-origin` binary, returns it, its HLS address and the `ready` URL.
async fn spawn_binary(extra: &[&str]) -> (procgroup::Group, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hls-origin"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--height", "180", "--bitrate", "300"])
        .args(extra)
        .env("HLS_ORIGIN_CACHE_DIR", crate::common::cache_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut g = procgroup::spawn(&mut cmd).unwrap();
    let out = g.child_mut().stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let line =
        tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap().unwrap();
    let url =
        line.strip_prefix("ready ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_owned();
    // Keep the pipe open so a late write cannot fail with EPIPE.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (g, url)
}

fn addr_of(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://").split('/').next().unwrap().parse().unwrap()
}

async fn child_pids(addr: std::net::SocketAddr) -> (Vec<u32>, serde_json::Value) {
    let h: serde_json::Value = serde_json::from_slice(&get(addr, "/health").await.body).unwrap();
    let pids = h["children"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|c| c["pid"].as_u64())
        .map(|p| u32::try_from(p).unwrap())
        .collect();
    (pids, h)
}

#[testkit::test]
async fn sigkill_of_hls_origin_leaves_no_child_running() {
    let work = tempfile::tempdir().unwrap();
    let work_dir = work.path().to_str().unwrap();
    let (mut g, url) = spawn_binary(&[
        "--source",
        "encode",
        "--node-exporter",
        "127.0.0.1:0",
        "--nginx-exporter",
        "127.0.0.1:0",
        "--work-dir",
        work_dir,
    ])
    .await;
    assert!(url.ends_with("/stream.m3u8"), "{url}");
    let (pids, h) = child_pids(addr_of(&url)).await;
    assert_eq!(pids.len(), 4, "ffmpeg, nginx and both exporters: {h}");
    assert!(pids.iter().all(|p| alive(*p)));
    g.signal(Signal::SIGKILL).unwrap();
    g.wait().await.unwrap();
    eventually("every child to die", Duration::from_secs(30), || async {
        pids.iter().all(|p| !alive(*p)).then_some(())
    })
    .await;
    // Its directory stays behind (nobody was left to remove it) until the next origin sweeps it.
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 1);
    assert_eq!(origin::service::sweep_stale(work.path()), 1);
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}

#[testkit::test]
async fn sigterm_stops_children_removes_the_directory_and_exits_zero() {
    let (mut g, url) =
        spawn_binary(&["--source", "replay", "--no-node-exporter", "--no-nginx-exporter"]).await;
    let (pids, h) = child_pids(addr_of(&url)).await;
    assert_eq!(pids.len(), 1, "nginx only: {h}");
    let log = h["children"]["nginx"]["log"].as_str().unwrap().to_owned();
    // <tmp>/logs/nginx-stderr.log
    let tmp = std::path::Path::new(&log).parent().unwrap().parent().unwrap().to_owned();
    assert!(tmp.join("hls/stream.m3u8").exists());
    kill(Pid::from_raw(i32::try_from(g.pid()).unwrap()), Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), g.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!tmp.exists(), "{} left behind", tmp.display());
    assert!(pids.iter().all(|p| !alive(*p)));
}

#[testkit::test(current_thread)]
async fn bad_override_fails_before_starting_anything() {
    let mut c = small("default", Source::Encode);
    c.overrides.width = Some(333);
    // Anything tried before the check would fail another way: the port is taken, the
    // programs do not exist, and the work directory would not stay empty.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    c.listen = taken.local_addr().unwrap();
    c.ffmpeg = "/nonexistent/ffmpeg".into();
    c.nginx = "/nonexistent/nginx".into();
    let work = tempfile::tempdir().unwrap();
    c.work_root = work.path().to_owned();
    let e = origin::start(c).await.unwrap_err();
    assert_eq!(e.to_string(), "invalid width 333: expected a number from 16 to 7680 and even");
    assert!(matches!(e, origin::Error::InvalidOverride { .. }), "{e:?}");
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0, "something was created");
}

#[testkit::test(current_thread)]
async fn missing_encoder_is_a_clear_error_and_cleans_up() {
    let mut c = small("default", Source::Encode);
    let work = tempfile::tempdir().unwrap();
    c.work_root = work.path().to_owned();
    c.ffmpeg = "/nonexistent/ffmpeg".into();
    let e = origin::start(c).await.unwrap_err();
    assert!(e.to_string().contains("cannot start ffmpeg (/nonexistent/ffmpeg)"), "{e}");
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0, "temp dir left behind");
}

#[testkit::test(current_thread)]
async fn a_busy_port_is_a_clear_error_before_anything_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let work = tempfile::tempdir().unwrap();
    for which in ["hls", "nginx-exporter"] {
        let mut c = small("default", Source::Replay);
        c.work_root = work.path().to_owned();
        // Starting any child first would fail another way: none of the programs exists (and
        // the replay loop cached for the real ffmpeg does not match this one).
        c.ffmpeg = "/nonexistent/ffmpeg".into();
        c.nginx = "/nonexistent/nginx".into();
        c.nginx_exporter_bin = "/nonexistent/nginx-exporter".into();
        match which {
            "hls" => c.listen = addr,
            _ => c.nginx_exporter = Some(addr),
        }
        let e = origin::start(c).await.unwrap_err();
        assert_eq!(e.to_string(), format!("cannot listen on {addr}"), "{which}");
        assert!(matches!(e, origin::Error::Bind { .. }), "{which}: {e:?}");
        assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
    }
}

#[testkit::test]
async fn dropping_an_origin_without_stop_still_ends_its_children() {
    let origin = origin::start(small("default", Source::Replay)).await.unwrap();
    let pids = origin.pids();
    assert_eq!(pids.len(), 1, "{pids:?}");
    let dir = origin.dir().to_owned();
    drop(origin);
    eventually("children to stop after drop", Duration::from_secs(30), || async {
        pids.iter().all(|(_, p)| !alive(*p)).then_some(())
    })
    .await;
    assert!(!dir.exists(), "{} left behind", dir.display());
}
