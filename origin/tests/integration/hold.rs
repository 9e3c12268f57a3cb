//! Fault injection: a hold stalls the replay publisher, then it carries on without a burst.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use origin::{Config, Source};

use crate::common::{get, media, small};

/// Replay with 1 s segments and a 3-segment window, so `#EXT-X-MEDIA-SEQUENCE` moves with
/// every segment published.
fn one_second_replay() -> Config {
    let mut c = small("low-latency", Source::Replay);
    c.overrides.window = Some(3);
    c.loop_segments = 3;
    c
}

async fn sequence(addr: SocketAddr) -> u64 {
    media(addr, "/stream.m3u8").await.media_sequence
}

/// Samples the media sequence every 100 ms until `until`, or until it reaches `enough`;
/// returns `(when the answer arrived, sequence)` at every change, starting with the first
/// sample.
async fn changes(addr: SocketAddr, until: Instant, enough: u64) -> Vec<(Instant, u64)> {
    let mut seen: Vec<(Instant, u64)> = Vec::new();
    while Instant::now() < until && seen.last().is_none_or(|(_, s)| *s < enough) {
        let seq = sequence(addr).await;
        if seen.last().is_none_or(|(_, s)| *s != seq) {
            seen.push((Instant::now(), seq));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

/// What holds on a loaded machine: the hold's end is where it was asked to be, nothing is
/// published before it, publishing resumes after it, and never faster than one segment per
/// segment duration (a burst of the held segments would be). How soon after the end it
/// resumes and how regular the cadence is are figures for `make bench-origin` (timing table).
#[testkit::test]
async fn a_hold_freezes_the_playlist_then_publishing_resumes_without_a_burst() {
    let origin = origin::start(one_second_replay()).await.unwrap();
    let addr = origin.listen();
    let seg = Duration::from_secs(1);
    let first = sequence(addr).await;
    crate::common::eventually("publishing before the hold", Duration::from_secs(30), || async {
        (sequence(addr).await > first).then_some(())
    })
    .await;

    let before_hold = sequence(addr).await;
    let asked = Instant::now();
    let ends = origin.hold(3 * seg).unwrap();
    let returned = Instant::now();
    assert!(ends >= asked + 3 * seg && ends <= returned + 3 * seg, "{ends:?} vs asked {asked:?}");
    let h: serde_json::Value = serde_json::from_slice(&get(addr, "/health").await.body).unwrap();
    assert!(h["hold_ends_unix_ms"].is_u64(), "{h}");

    let seen = changes(addr, ends + Duration::from_secs(30), before_hold + 4).await;
    // During the hold at most one segment lands: one being written, or one falling due,
    // between reading `before_hold` and the hold taking effect.
    let during: Vec<u64> = seen.iter().filter(|(t, _)| *t < ends).map(|c| c.1).collect();
    assert!(during.iter().all(|s| *s <= before_hold + 1), "moved during the hold: {seen:?}");
    let held = during.last().copied().unwrap_or(before_hold);
    // After it: every answer shows at most one segment per whole second since the hold ended,
    // plus the one due at its end. The answer arrived after the playlist was read, so this
    // bound is generous to the origin; three segments at once (the held backlog) break it.
    for (when, s) in seen.iter().filter(|(t, _)| *t >= ends) {
        let allowed = held + 1 + (*when - ends).as_secs();
        assert!(*s <= allowed, "{s} > {allowed} at {:?} after the hold: {seen:?}", *when - ends);
    }
    assert!(
        seen.last().is_some_and(|(_, s)| *s >= held + 3),
        "publishing did not resume within 30 s of the hold's end: {seen:?}"
    );
    let h: serde_json::Value = serde_json::from_slice(&get(addr, "/health").await.body).unwrap();
    assert!(h["hold_ends_unix_ms"].is_null(), "{h}");
    assert_eq!(h["status"], "ok", "{h}");
    origin.stop().await.unwrap();
}

#[testkit::test]
async fn post_hold_on_the_status_listener_holds_and_rejects_bad_seconds() {
    let origin = origin::start(one_second_replay()).await.unwrap();
    let addr = origin.listen();
    let status = origin.status_addr().unwrap();
    let post = |path: &'static str| async move {
        origin::http::request(status, "POST", path, Duration::from_secs(5)).await.unwrap()
    };
    for (path, value) in [
        ("/hold?seconds=0", "more than 0"),
        ("/hold?seconds=-3", "seconds=\"-3\""),
        ("/hold?seconds=601", "seconds=\"601\""),
        ("/hold?seconds=ten", "seconds=\"ten\""),
        ("/hold", "missing seconds"),
    ] {
        let r = post(path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let e = v["error"].as_str().unwrap();
        assert!(e.contains(value) && e.contains("more than 0 and at most 600"), "{path}: {e}");
    }
    assert_eq!(get(status, "/hold?seconds=2").await.status, 405, "GET does not hold");
    assert_eq!(get(addr, "/hold?seconds=2").await.status, 404, "not reachable on the HLS port");
    let refused =
        origin::http::request(addr, "POST", "/hold?seconds=2", Duration::from_secs(5)).await.unwrap();
    assert_ne!(refused.status, 200, "not reachable on the HLS port");

    let unix_now =
        || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let before = unix_now();
    let r = post("/hold?seconds=1.5").await;
    let after = unix_now();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let ends = v["ends_unix_ms"].as_u64().unwrap();
    // Between the request and its answer, give or take the millisecond both are rounded to.
    assert!(
        before + 1500 <= ends + 1 && ends <= after + 1500 + 1,
        "{v}: asked at {before}, answered at {after}"
    );
    assert_eq!(v["seconds"], 1.5);

    // A second hold replaces the first: here it extends it well past 1.5 s.
    let r = post("/hold?seconds=30").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let longer: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(longer["ends_unix_ms"].as_u64().unwrap() > ends + 25_000, "{longer}");
    // Once the first hold's 1.5 s are over (and a segment being written then has landed),
    // the sequence stays where it is.
    let past_first = Instant::now() + Duration::from_millis(1500 + 500);
    tokio::time::sleep_until(past_first.into()).await;
    let held = sequence(addr).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(sequence(addr).await, held, "the extended hold did not hold");
    let h: serde_json::Value = serde_json::from_slice(&get(addr, "/health").await.body).unwrap();
    let reported = h["hold_ends_unix_ms"].as_u64().unwrap();
    assert!(reported.abs_diff(longer["ends_unix_ms"].as_u64().unwrap()) <= 1, "{h} vs {longer}");

    // And a zero hold (library only) ends it: publishing resumes long before the 30 s hold
    // would have ended.
    origin.hold(Duration::ZERO).unwrap();
    crate::common::eventually("publishing after a zero hold", Duration::from_secs(15), || async {
        (sequence(addr).await > held).then_some(())
    })
    .await;
    origin.stop().await.unwrap();
}

/// `POST /fault/http`: nginx answers the status for the range (every variant), other segments
/// stay 200, `DELETE` restores them; bad parameters name the value.
#[testkit::test]
async fn http_faults_serve_a_status_for_a_segment_range_until_cleared() {
    let mut config = one_second_replay();
    config.fault_injection = true;
    let origin = origin::start(config).await.unwrap();
    let addr = origin.listen();
    let status = origin.status_addr().unwrap();
    let call = |method: &'static str, path: String| async move {
        origin::http::request(status, method, &path, Duration::from_secs(10)).await.unwrap()
    };
    let m = media(addr, "/stream.m3u8").await;
    let first = m.media_sequence;
    let listed: Vec<String> = m.segments.iter().map(|s| format!("/{}", s.uri)).collect();
    let r = call("POST", format!("/fault/http?status=503&from={first}&to={}", first + 1)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(addr, &listed[0]).await.status, 503);
    assert_eq!(get(addr, &listed[1]).await.status, 503);
    assert_eq!(get(addr, &listed[2]).await.status, 200, "outside the range");
    assert_eq!(get(addr, "/stream.m3u8").await.status, 200, "playlists are untouched");
    let health: serde_json::Value = serde_json::from_slice(&get(status, "/health").await.body).unwrap();
    assert_eq!(health["segment_fault"], format!("503 for segments {first}..={}", first + 1));

    let r = call("DELETE", "/fault/http".into()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(addr, &listed[0]).await.status, 200);

    for (path, needle) in [
        ("/fault/http?status=200&from=1&to=2", "invalid status 200: expected one of 403, 404"),
        ("/fault/http?status=404&from=9&to=2", "9..=2"),
        ("/fault/http?status=404&from=x&to=2", "expected a whole number"),
        ("/fault/http?status=404&to=2", "missing from"),
        ("/fault/http?code=404", "unknown parameter"),
        ("/fault/pause?child=nginx&seconds=0", "more than 0"),
        ("/fault/pause?child=varnish&seconds=1", "varnish\\\"; children: nginx"),
        ("/fault/kill?child=varnish", "varnish\\\"; children: nginx"),
    ] {
        let r = call("POST", path.into()).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r.text().contains(needle), "{path}: {}", r.text());
    }
    origin.stop().await.unwrap();
}

/// `POST /fault/pause?child=nginx`: connections are refused for the pause, then nginx serves
/// again; `POST /fault/kill?child=nginx` is a crash the supervisor repairs. Segment faults
/// need `--fault-injection`.
#[testkit::test]
async fn pausing_nginx_refuses_connections_then_serves_again() {
    let origin = origin::start(one_second_replay()).await.unwrap();
    let addr = origin.listen();
    let status = origin.status_addr().unwrap();
    let asked = Instant::now();
    let r =
        origin::http::request(status, "POST", "/fault/pause?child=nginx&seconds=2", Duration::from_secs(5))
            .await
            .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r =
        origin::http::request(status, "POST", "/fault/http?status=503&from=0&to=1", Duration::from_secs(5))
            .await
            .unwrap();
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("start the origin with --fault-injection"), "{}", r.text());
    crate::common::eventually("nginx to stop", Duration::from_secs(30), || async {
        origin::http::get(addr, "/stream.m3u8", Duration::from_secs(1)).await.is_err().then_some(())
    })
    .await;
    crate::common::eventually("nginx reported paused", Duration::from_secs(30), || async {
        (origin.children()["nginx"].state == origin::supervisor::State::Paused).then_some(())
    })
    .await;
    crate::common::eventually("nginx to serve again", Duration::from_secs(30), || async {
        origin::http::get(addr, "/stream.m3u8", Duration::from_secs(1)).await.ok().filter(|r| r.status == 200)
    })
    .await;
    assert!(asked.elapsed() >= Duration::from_secs(2), "served again only after the 2 s pause");

    let pid = origin.kill("nginx").unwrap();
    crate::common::eventually("nginx restarted", Duration::from_secs(30), || async {
        let row = origin.children()["nginx"].clone();
        (row.pid.is_some_and(|p| p != pid) && row.restarts == 1).then_some(())
    })
    .await;
    origin.stop().await.unwrap();
}
