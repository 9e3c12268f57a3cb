//! Every profile: its nginx config passes `nginx -t`, and it boots and serves.

use std::time::Duration;

use origin::cli::{preview_layout, render_config, Cli, Command};
use origin::nginx;
use origin::{Profile, Source};

use crate::common::{check_abr_master, check_live, check_segment, eventually, get, media, small};

#[testkit::test(current_thread)]
async fn nginx_accepts_every_profile_config() -> testkit::Outcome {
    // nginx from PATH, as hls-origin finds it: Debian's /usr/sbin, or a Nix store path.
    let nginx_bin = testkit::need::program("nginx")?;
    for profile in Profile::all() {
        let dir = tempfile::tempdir().unwrap();
        let layout = preview_layout("127.0.0.1:17080".parse().unwrap(), dir.path(), &profile);
        for d in [&layout.root, &layout.prefix, &layout.logs] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(layout.conf(), nginx::config(&profile, &layout)).unwrap();
        let mut cmd = tokio::process::Command::new(&nginx_bin);
        cmd.arg("-t")
            .args(nginx::args(&layout))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut g = procgroup::spawn(&mut cmd).unwrap();
        let mut err = String::new();
        if let Some(mut e) = g.child_mut().stderr.take() {
            use tokio::io::AsyncReadExt;
            e.read_to_string(&mut err).await.unwrap();
        }
        let status = g.wait().await.unwrap();
        assert!(status.success(), "nginx -t rejects profile {}:\n{err}", profile.name);
        assert!(err.contains("test is successful"), "{err}");
    }
    Ok(())
}

#[testkit::test]
fn config_command_prints_argv_and_nginx_config() {
    use clap::Parser;
    let cli =
        Cli::try_parse_from(["hls-origin", "config", "--profile", "4k-abr", "--height", "360"]).unwrap();
    let Command::Config(args) = cli.command else { panic!("parsed as {:?}", cli.command) };
    let text = render_config(&args).unwrap();
    assert!(text.contains("# ffmpeg -hide_banner"), "{text}");
    assert!(text.contains("scale=640:360"), "{text}");
    assert!(text.contains("master_process off;"), "{text}");
    let err = Cli::try_parse_from(["hls-origin", "config", "--profile", "nope"]).map(|c| match c.command {
        Command::Config(a) => render_config(&a).map(|_| ()),
        _ => Ok(()),
    });
    let e = err.unwrap().unwrap_err();
    assert_eq!(origin::cli::exit_code(&e), 2);
}

/// Boots `profile` and checks its media playlist and one segment.
async fn boot(profile: &str, source: Source) -> origin::Origin {
    let origin = origin::start(small(profile, source)).await.unwrap();
    let p = origin.profile().clone();
    let path = format!("/{}", p.media_playlists()[0]);
    let m = media(origin.listen(), &path).await;
    check_live(&m, p.segment_secs, p.window);
    check_segment(origin.listen(), &path, &m.segments[0].uri).await;
    origin
}

#[testkit::test]
async fn low_latency_encode_uses_one_second_segments_short_caching_and_deletes_behind_the_window() {
    let mut c = small("low-latency", Source::Encode);
    // Window 3 + delete threshold 5: segment 0 must be gone once segment 9 exists.
    c.overrides.window = Some(3);
    let origin = origin::start(c).await.unwrap();
    let addr = origin.listen();
    let r = get(addr, "/stream.m3u8").await;
    assert_eq!(r.header("cache-control"), Some("public, max-age=1, no-transform"));
    let m = media(addr, "/stream.m3u8").await;
    check_live(&m, 1, 3);
    assert_eq!(get(addr, "/seg00000.ts").await.status, 200);
    let later = eventually("segment 0 to be deleted", Duration::from_secs(30), || async {
        let m = media(addr, "/stream.m3u8").await;
        (m.media_sequence >= 7 && get(addr, "/seg00000.ts").await.status == 404).then_some(m)
    })
    .await;
    check_live(&later, 1, 3);
    assert!(later.media_sequence > m.media_sequence, "sequence advances");
    let on_disk = std::fs::read_dir(origin.dir()).unwrap().count();
    assert!(on_disk <= 3 + 5 + 3, "{on_disk} files on disk");
    origin.stop().await.unwrap();
}

#[testkit::test]
async fn abr_encode_writes_a_master_with_bandwidth_and_resolution() {
    // Full size, this ladder needs a big machine; scaled to a 180p top rung it runs anywhere.
    let origin = origin::start(small("4k-abr", Source::Encode)).await.unwrap();
    let addr = origin.listen();
    let master = get(addr, "/master.m3u8").await;
    assert_eq!(master.status, 200);
    check_abr_master(addr, &master.text(), &origin).await;
    origin.stop().await.unwrap();
}

#[testkit::test]
async fn stress_replay_lists_fifteen_segments() {
    let mut c = small("stress", Source::Replay);
    c.ready_segments = 15;
    c.loop_segments = 3;
    // A full window of 2 s segments would take 24 s to fill: shorten segments to 1 s.
    c.overrides.segment_secs = Some(1);
    let origin = origin::start(c).await.unwrap();
    let m = media(origin.listen(), "/stream.m3u8").await;
    assert_eq!(m.segments.len(), 15);
    check_live(&m, 1, 15);
    origin.stop().await.unwrap();
}

#[testkit::test]
async fn logged_profile_writes_request_time_and_bytes() {
    let origin = boot("logged", Source::Replay).await;
    let log = origin.access_log().unwrap();
    assert_eq!(log, origin.log_dir().join("nginx-access.log"));
    let unix = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let (sent, sent_unix) = (std::time::Instant::now(), unix());
    // A query string of its own tells this request's line from any other for the segment.
    let seg = check_segment(origin.listen(), "/stream.m3u8", "seg00001.ts?timed").await;
    let (took, done_unix) = (sent.elapsed().as_secs_f64(), unix());
    let req = eventually("the access log line", Duration::from_secs(30), || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        origin::access_log::parse(&text).into_iter().find(|r| r.path == "/seg00001.ts?timed")
    })
    .await;
    assert_eq!((req.method.as_str(), req.status), ("GET", 200));
    assert!(req.is_segment(), "{req:?}");
    assert_eq!(req.bytes, seg.body.len() as u64);
    assert_eq!(req.user_agent, "hls-lab", "the lab's own client (kit::http)");
    // nginx timed the request, and logged it, inside our own view of it (give or take the
    // milliseconds its clock readings are truncated to).
    let slack = 0.002;
    assert!(req.request_time >= 0.0 && req.request_time <= took + slack, "{req:?}: the client took {took} s");
    assert!(
        req.time >= sent_unix - slack && req.time <= done_unix + slack,
        "{req:?}: sent {sent_unix}, done {done_unix}"
    );
    origin.stop().await.unwrap();
}

#[testkit::test]
async fn debug_profile_writes_debug_logs() {
    let origin = boot("debug", Source::Encode).await;
    let logs = origin.log_dir().to_owned();
    let nginx_log = std::fs::read_to_string(logs.join("nginx-error.log")).unwrap();
    assert!(nginx_log.contains("[debug]"), "nginx error log has no debug lines");
    let ffmpeg_log = std::fs::read_to_string(logs.join("ffmpeg.log")).unwrap();
    assert!(ffmpeg_log.lines().count() > 50, "ffmpeg log too short for debug level");
    assert!(logs.join("nginx-access.log").exists());
    origin.stop().await.unwrap();
}
