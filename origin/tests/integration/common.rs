//! Helpers shared by the integration tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kit::playlist::{self, Media};
use origin::http::{self, Response};
use origin::{Config, Overrides, Source};

/// A small, cheap configuration: 320x180, 300 kbit/s, free ports, no exporters.
pub fn small(profile: &str, source: Source) -> Config {
    let mut c = Config::new(profile).unwrap();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.node_exporter = None;
    c.nginx_exporter = None;
    c.source = source;
    c.overrides = Overrides { height: Some(180), bitrate_kbps: Some(300), ..Overrides::default() };
    c.cache_dir = cache_dir();
    c.ready_timeout = Duration::from_secs(60);
    c
}

/// Replay loops shared by every test run (kept under target/).
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hls-origin-replay-cache")
}

/// How long a single request may take before the test fails: loopback answers take
/// milliseconds, so this only ends a test that hangs (a loaded machine must not fail it).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// GET within [`PATIENCE`], panicking on transport errors.
pub async fn get(addr: SocketAddr, path: &str) -> Response {
    http::get(addr, path, PATIENCE).await.unwrap_or_else(|e| panic!("{e}"))
}

/// GET a media playlist and parse it.
pub async fn media(addr: SocketAddr, path: &str) -> Media {
    let r = get(addr, path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    playlist::parse_media(&r.text()).unwrap_or_else(|e| panic!("{path}: {e}\n{}", r.text()))
}

/// Polls `f` every 100 ms until it returns `Some`, panicking with `what` after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s.rfind(')').and_then(|i| s[i + 2..].chars().next());
        state != Some('Z')
    })
}

/// Checks the live-playlist invariants every profile must keep.
pub fn check_live(m: &Media, segment_secs: u32, window: u32) {
    assert_eq!(m.target_duration, Some(f64::from(segment_secs)), "{m:?}");
    assert!(!m.ended, "a live playlist has no ENDLIST");
    assert!(m.segments.len() >= 3, "{m:?}");
    assert!(m.segments.len() <= window as usize, "window {window}: {m:?}");
    for s in &m.segments {
        assert!(s.duration <= f64::from(segment_secs) + 0.5, "{s:?}");
        assert!(s.uri.ends_with(".ts"), "{s:?}");
    }
}

/// Fetches `uri` relative to `playlist_path` and checks it is MPEG-TS with the segment headers.
pub async fn check_segment(addr: SocketAddr, playlist_path: &str, uri: &str) -> Response {
    let base = playlist_path.rsplit_once('/').map_or("", |(b, _)| b);
    let path = format!("{base}/{uri}");
    let r = get(addr, &path).await;
    assert_eq!(r.status, 200, "{path}");
    assert_eq!(r.header("content-type"), Some("video/mp2t"), "{path}");
    assert!(r.header("cache-control").unwrap_or("").contains("immutable"), "{:?}", r.headers);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(!r.body.is_empty() && r.body.len() % 188 == 0, "{path}: {} bytes", r.body.len());
    assert_eq!(r.body[0], 0x47, "MPEG-TS sync byte");
    r
}

/// Checks every entry of an ABR master against the origin's ladder: URI per variant
/// directory, BANDWIDTH at least the video bitrate, RESOLUTION, and a live media playlist
/// with a fetchable segment behind it.
pub async fn check_abr_master(addr: SocketAddr, master: &str, origin: &origin::Origin) {
    let entries = playlist::parse_master(master).unwrap().variants;
    let profile = origin.profile();
    assert_eq!(entries.len(), profile.variants.len(), "{master}");
    for (entry, v) in entries.iter().zip(&profile.variants) {
        assert_eq!(entry.uri, format!("{}/stream.m3u8", v.name));
        assert!(entry.bandwidth > u64::from(v.video_kbps) * 1000, "{entry:?}");
        assert_eq!(entry.resolution, Some((v.width, v.height)));
        let path = format!("/{}", entry.uri);
        let m = media(addr, &path).await;
        check_live(&m, 2, 10);
        check_segment(addr, &path, &m.segments[0].uri).await;
    }
}
