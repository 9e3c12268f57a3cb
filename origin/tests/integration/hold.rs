//! Fault injection: a hold stalls the replay publisher, then it carries on without a burst.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use origin::{Config, Source};

use crate::common::{get, media, small, PATIENCE};

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

/// Samples the media sequence every 100 ms until `until`, or until it is `more` past the first
/// sample; returns `(when the answer arrived, sequence)` at every change, starting with the
/// first sample.
async fn changes(addr: SocketAddr, until: Instant, more: u64) -> Vec<(Instant, u64)> {
    let mut seen: Vec<(Instant, u64)> = Vec::new();
    while Instant::now() < until && seen.last().is_none_or(|(_, s)| *s < seen[0].1 + more) {
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
///
/// Every bound counts segments, not time: once the hold is set, the publisher finishes at most
/// the one segment it may be writing, then publishes nothing before the end, and afterwards
/// never more than one segment per second of its schedule (a segment lasts exactly 1 s here).
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

    let asked = Instant::now();
    let ends = origin.hold(3 * seg).unwrap();
    let returned = Instant::now();
    assert!(ends >= asked + 3 * seg && ends <= returned + 3 * seg, "{ends:?} vs asked {asked:?}");
    let h: serde_json::Value = serde_json::from_slice(&get(addr, "/health").await.body).unwrap();
    if Instant::now() < ends {
        assert!(h["hold_ends_unix_ms"].is_u64(), "a report made during the hold shows it: {h}");
    }

    // Every sample is read after the hold took effect; the first one is the reference.
    let seen = changes(addr, ends + Duration::from_secs(30), 4).await;
    let base = seen[0].1;
    // During the hold at most the segment in flight when it was set lands.
    let during: Vec<u64> = seen.iter().filter(|(t, _)| *t < ends).map(|c| c.1).collect();
    assert!(during.iter().all(|s| *s <= base + 1), "moved during the hold: {seen:?}");
    // After it: every answer shows at most one segment per whole second since the hold ended,
    // plus the one due at its end (and the one in flight at the start). The answer arrived
    // after the playlist was read, so this bound is generous to the origin; the held backlog
    // of three segments at once breaks it.
    for (when, s) in seen.iter().filter(|(t, _)| *t >= ends) {
        let allowed = base + 2 + (*when - ends).as_secs();
        assert!(*s <= allowed, "{s} > {allowed} at {:?} after the hold: {seen:?}", *when - ends);
    }
    let held = during.iter().copied().max().unwrap_or(base);
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
        origin::http::request(status, "POST", path, PATIENCE).await.unwrap()
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
    let refused = origin::http::request(addr, "POST", "/hold?seconds=2", PATIENCE).await.unwrap();
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
    let sent = Instant::now();
    let r = post("/hold?seconds=30").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let longer: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(longer["ends_unix_ms"].as_u64().unwrap() > ends + 25_000, "{longer}");
    // From its answer on, the publisher finishes at most the segment it may be writing, then
    // publishes nothing until the 30 s (counted from no earlier than `sent`) are over. Sample
    // until 3 s past the end of the first hold (at most 1.5 s after this answer): had that one
    // not been extended, two more segments would have appeared by then.
    let sampled_until = Instant::now() + Duration::from_millis(4500);
    let mut samples = Vec::new();
    while Instant::now() < sampled_until {
        samples.push((sequence(addr).await, Instant::now()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let longer_ends = sent + Duration::from_secs(30);
    let in_hold: Vec<u64> = samples.iter().filter(|(_, t)| *t < longer_ends).map(|s| s.0).collect();
    let (Some(&lo), Some(&hi)) = (in_hold.iter().min(), in_hold.iter().max()) else {
        panic!("no answer within the 30 s hold: {samples:?}")
    };
    assert!(hi <= lo + 1, "the extended hold did not hold: {in_hold:?}");
    let h: serde_json::Value = serde_json::from_slice(&get(addr, "/health").await.body).unwrap();
    let reported = h["hold_ends_unix_ms"].as_u64().unwrap();
    assert!(reported.abs_diff(longer["ends_unix_ms"].as_u64().unwrap()) <= 1, "{h} vs {longer}");

    // And a zero hold (library only) ends it: a segment beyond the one that may have been in
    // flight appears before the 30 s hold could have ended.
    origin.hold(Duration::ZERO).unwrap();
    loop {
        let s = sequence(addr).await;
        let answered = Instant::now();
        assert!(answered < longer_ends, "publishing did not resume before the 30 s hold would have ended");
        if s > lo + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
        origin::http::request(status, method, &path, PATIENCE).await.unwrap()
    };
    // Held, the publisher deletes nothing: the segments listed below stay on disk however long
    // the requests take (it may finish the one segment in flight, which deletes an older one).
    origin.hold(origin::replay::MAX_HOLD).unwrap();
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

/// `POST /fault/pause?child=nginx`: connections are refused while the pause lasts, then nginx
/// serves again, and a pause is not counted as a crash; `POST /fault/kill?child=nginx` is a
/// crash the supervisor repairs. Segment faults need `--fault-injection`.
///
/// The pause is long (so every check of "paused" falls inside it however slow the machine)
/// and is ended early with a zero pause; that a pause lasts its length is
/// `supervisor::pause_stops…` (paused clock) and a figure of `make bench-origin`.
#[testkit::test]
async fn pausing_nginx_refuses_connections_then_serves_again() {
    use origin::supervisor::State;
    let origin = origin::start(one_second_replay()).await.unwrap();
    let addr = origin.listen();
    let status = origin.status_addr().unwrap();
    let serves =
        || async { origin::http::get(addr, "/stream.m3u8", PATIENCE).await.is_ok_and(|r| r.status == 200) };
    let first = origin.children()["nginx"].pid.unwrap();
    let r = origin::http::request(status, "POST", "/fault/pause?child=nginx&seconds=600", PATIENCE)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r =
        origin::http::request(status, "POST", "/fault/http?status=503&from=0&to=1", PATIENCE).await.unwrap();
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("start the origin with --fault-injection"), "{}", r.text());
    crate::common::eventually("nginx to stop", Duration::from_secs(30), || async {
        origin::http::get(addr, "/stream.m3u8", Duration::from_secs(1)).await.is_err().then_some(())
    })
    .await;
    crate::common::eventually("nginx reported paused", Duration::from_secs(30), || async {
        (origin.children()["nginx"].state == State::Paused).then_some(())
    })
    .await;
    // Nothing brings it back before the pause ends (a supervisor that took the stop for a
    // crash would restart it after a backoff of about 250 ms).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let row = origin.children()["nginx"].clone();
    assert_eq!((row.state, row.pid), (State::Paused, None), "{row:?}");
    assert!(!serves().await, "served during the pause");

    origin.pause("nginx", Duration::ZERO).unwrap();
    crate::common::eventually("nginx to serve again", Duration::from_secs(30), || async {
        origin::http::get(addr, "/stream.m3u8", Duration::from_secs(1)).await.ok().filter(|r| r.status == 200)
    })
    .await;
    let row = origin.children()["nginx"].clone();
    assert_eq!(row.state, State::Running, "{row:?}");
    assert!(row.pid.is_some_and(|p| p != first), "a new nginx: {row:?}");
    assert_eq!(row.restarts, 0, "a pause is not a crash: {row:?}");

    let pid = origin.kill("nginx").unwrap();
    crate::common::eventually("nginx restarted", Duration::from_secs(30), || async {
        let row = origin.children()["nginx"].clone();
        (row.pid.is_some_and(|p| p != pid) && row.restarts == 1).then_some(())
    })
    .await;
    origin.stop().await.unwrap();
}
