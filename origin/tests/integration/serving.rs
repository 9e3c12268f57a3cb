//! What viewers see: playlists, segments, headers, `/health`, `stub_status`, exporters.

use std::time::Duration;

use kit::playlist;
use origin::timeline;
use origin::Source;

use crate::common::{check_abr_master, check_live, check_segment, eventually, get, media, small, PATIENCE};

#[testkit::test]
async fn encode_default_serves_a_live_stream_with_the_right_headers() {
    let origin = origin::start(small("default", Source::Encode)).await.unwrap();
    let addr = origin.listen();
    assert_eq!(origin.playlist_url(), format!("http://{addr}/stream.m3u8"));
    assert_eq!(origin.base_url(), format!("http://{addr}"));

    let r = get(addr, "/stream.m3u8").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/vnd.apple.mpegurl"));
    let cc = r.header("cache-control").unwrap_or_default().to_owned();
    assert!(cc.contains("max-age=1") && !cc.contains("immutable"), "{cc}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let m = playlist::parse_media(&r.text()).unwrap();
    check_live(&m, 2, 10);
    check_segment(addr, "/stream.m3u8", &m.segments[0].uri).await;

    // Playlists are never stale: the sequence or segment count moves within one segment time.
    let before = (m.media_sequence, m.segments.len());
    eventually("the playlist to advance", Duration::from_secs(30), || async {
        let now = media(addr, "/stream.m3u8").await;
        (now.media_sequence + now.segments.len() as u64 > before.0 + before.1 as u64).then_some(())
    })
    .await;

    let h = get(addr, "/health").await;
    assert_eq!(h.status, 200, "{}", h.text());
    let v: serde_json::Value = serde_json::from_slice(&h.body).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["source"], "encode");
    for child in ["ffmpeg", "nginx"] {
        assert_eq!(v["children"][child]["state"], "running", "{v}");
        assert!(v["children"][child]["pid"].as_u64().is_some(), "{v}");
    }

    let s = get(addr, "/nginx_status").await;
    assert_eq!(s.status, 200);
    assert!(s.text().starts_with("Active connections:"), "{}", s.text());

    let pre = origin::http::request(addr, "OPTIONS", "/stream.m3u8", PATIENCE).await.unwrap();
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), Some("*"));
    let post = origin::http::request(addr, "POST", "/stream.m3u8", PATIENCE).await.unwrap();
    assert_eq!(post.status, 403);
    assert_eq!(get(addr, "/nginx.conf").await.status, 404, "the config is not served");
    assert_eq!(get(addr, "/seg99999.ts").await.status, 404);

    let pids = origin.pids();
    let dir = origin.dir().to_owned();
    assert!(dir.join("stream.m3u8").exists());
    origin.stop().await.unwrap();
    assert!(!dir.exists(), "{} left behind", dir.display());
    for (name, pid) in pids {
        assert!(!crate::common::alive(pid), "{name} ({pid}) still running");
    }
}

#[testkit::test]
async fn replay_slides_a_window_deletes_old_segments_and_loops_seamlessly() {
    let mut c = small("low-latency", Source::Replay);
    c.overrides.window = Some(3);
    c.loop_segments = 3;
    let origin = origin::start(c).await.unwrap();
    let addr = origin.listen();
    let first = media(addr, "/stream.m3u8").await;
    check_live(&first, 1, 3);
    assert_eq!(first.media_sequence, 0);
    check_segment(addr, "/stream.m3u8", &first.segments[0].uri).await;

    // window 3 + delete threshold 5 = 8 segments of 1 s; seq 0 is gone after the 9th. Wait also
    // for a window that spans a loop point (a pass's last segment, then the next pass's first:
    // seq 3k-1 and 3k both listed) so the checks below cross one.
    let spans_a_loop_point = |m: &playlist::Media| {
        (m.media_sequence + 1..m.media_sequence + m.segments.len() as u64).any(|seq| seq % 3 == 0)
    };
    let later = eventually("seq 0 to be deleted", Duration::from_secs(30), || async {
        let m = media(addr, "/stream.m3u8").await;
        (m.media_sequence >= 7 && spans_a_loop_point(&m) && get(addr, "/seg00000.ts").await.status == 404)
            .then_some(m)
    })
    .await;
    check_live(&later, 1, 3);
    let seqs: Vec<u64> = (later.media_sequence..).take(later.segments.len()).collect();
    for (seq, seg) in seqs.iter().zip(&later.segments) {
        assert_eq!(seg.uri, format!("seg{seq:05}.ts"));
    }
    // The loop point is seamless: no discontinuity, counters continue, timestamps keep rising.
    assert!(later.segments.iter().all(|s| !s.discontinuity), "{later:?}");
    assert_eq!(later.discontinuity_sequence, 0);
    let mut counters = std::collections::HashMap::new();
    let mut previous_min = 0;
    for seg in &later.segments {
        let r = get(addr, &format!("/{}", seg.uri)).await;
        assert_eq!(r.status, 200, "{}", seg.uri);
        let body = r.body;
        assert_eq!(timeline::continuity_errors(&body, &mut counters), 0, "{}", seg.uri);
        let min = timeline::timestamps(&body).iter().map(|t| t.1).min().unwrap();
        assert!(min > previous_min, "{}: PTS {min} not after {previous_min}", seg.uri);
        previous_min = min;
    }
    let on_disk = std::fs::read_dir(origin.dir()).unwrap().count();
    assert!(on_disk <= 8 + 2, "{on_disk} files: deletion behind the window is not working");
    let v: serde_json::Value = serde_json::from_slice(&get(addr, "/health").await.body).unwrap();
    assert_eq!(v["source"], "replay");
    assert_eq!(v["children"]["replay"]["state"], "task");
    origin.stop().await.unwrap();
}

#[testkit::test]
async fn abr_replay_master_lists_every_variant() {
    // The full 2160p ladder cannot be encoded on this machine; the same ladder scaled to a
    // 180p top rung exercises the master playlist and per-variant directories.
    let mut c = small("4k-abr", Source::Replay);
    c.loop_segments = 3;
    let origin = origin::start(c).await.unwrap();
    let addr = origin.listen();
    assert!(origin.playlist_url().ends_with("/master.m3u8"));
    let r = get(addr, "/master.m3u8").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/vnd.apple.mpegurl"));
    assert_eq!(origin.profile().variants.len(), 5, "{}", r.text());
    check_abr_master(addr, &r.text(), &origin).await;
    origin.stop().await.unwrap();
}

#[testkit::test]
async fn both_exporters_answer_metrics() {
    let mut c = small("default", Source::Replay);
    c.node_exporter = Some("127.0.0.1:0".parse().unwrap());
    c.nginx_exporter = Some("127.0.0.1:0".parse().unwrap());
    let origin = origin::start(c).await.unwrap();
    // Give the nginx exporter some traffic to count.
    get(origin.listen(), "/stream.m3u8").await;
    let node = get(origin.node_exporter().unwrap(), "/metrics").await;
    assert_eq!(node.status, 200);
    let text = node.text();
    for metric in
        ["node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_network_receive_bytes_total"]
    {
        assert!(text.contains(metric), "node exporter lacks {metric}");
    }
    let nginx = get(origin.nginx_exporter().unwrap(), "/metrics").await;
    assert_eq!(nginx.status, 200);
    let text = nginx.text();
    let up = text.lines().find(|l| l.starts_with("nginx_up")).unwrap_or_default();
    assert!(up.ends_with(" 1"), "{up}");
    assert!(up.contains("profile=\"default\""), "{up}");
    let handled = text
        .lines()
        .find(|l| l.starts_with("nginx_http_requests_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(handled >= 2.0, "nginx_http_requests_total {handled}");
    let pids = origin.pids();
    assert_eq!(pids.len(), 3, "{pids:?}");
    origin.stop().await.unwrap();
}
