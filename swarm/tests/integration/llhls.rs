//! LL-HLS end to end: the real `hls-swarm` binary with native viewers against hls-origin's
//! LL-HLS server (a loop encoded by the real ffmpeg) on loopback. The viewers play it in
//! LL-HLS mode, download parts, and count no conformance violation; with each fault switch
//! on, exactly that violation is counted. Counts and facts only, no timings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use origin::llhls::{self, Ladder, Live, Rendition, Settings, Stream};
use testkit::Outcome;

use crate::common::*;

/// The loop's cache, shared with hls-origin's own tests (same target directory).
fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hls-origin-replay-cache")
}

/// The LL-HLS server on `127.0.0.1:0`, three segments complete at start.
async fn start() -> Result<(SocketAddr, Arc<Stream>, tokio::task::JoinHandle<()>), testkit::Skip> {
    start_with(3).await
}

/// The LL-HLS server on `127.0.0.1:0`, `initial` segments complete at start.
async fn start_with(
    initial: u64,
) -> Result<(SocketAddr, Arc<Stream>, tokio::task::JoinHandle<()>), testkit::Skip> {
    let ffmpeg = testkit::need::program("ffmpeg")?;
    let logs = tempfile::tempdir().unwrap();
    let lp = llhls::prepare(&ffmpeg, &Settings::tiny(), &cache_dir(), &logs.path().join("ffmpeg.log"))
        .await
        .unwrap();
    let stream = Arc::new(Stream::new(Live::new(Arc::new(lp), Settings::tiny().window), initial));
    let (addr, task) = llhls::serve("127.0.0.1:0".parse().unwrap(), stream.clone()).await.unwrap();
    Ok((addr, stream, task))
}

/// The LL-HLS server with a ladder of two renditions of one loop on one clock, listed
/// `top` (`BANDWIDTH` 1 Gbit/s, more than any estimate on loopback can reach: a
/// segment's parts count as at least 50 ms of download) then `low` (100 kbit/s).
async fn start_ladder() -> Result<(SocketAddr, tokio::task::JoinHandle<()>), testkit::Skip> {
    let ffmpeg = testkit::need::program("ffmpeg")?;
    let logs = tempfile::tempdir().unwrap();
    let settings = Settings::tiny();
    let lp = llhls::prepare(&ffmpeg, &settings, &cache_dir(), &logs.path().join("ffmpeg.log")).await.unwrap();
    let lp = Arc::new(lp);
    let top = Stream::new(Live::new(lp.clone(), settings.window), 3);
    let low = Stream::sharing_clock(Live::new(lp, settings.window), &top);
    let rendition = |name: &str, stream, bandwidth| Rendition {
        name: name.into(),
        stream: Arc::new(stream),
        bandwidth,
        resolution: (settings.width, settings.height),
    };
    let ladder =
        Ladder::new(vec![rendition("top", top, 1_000_000_000), rendition("low", low, 100_000)]).unwrap();
    let (addr, task) = llhls::serve_ladder("127.0.0.1:0".parse().unwrap(), Arc::new(ladder)).await.unwrap();
    Ok((addr, task))
}

/// Four native viewers for 10 s against `addr`'s media playlist with `extra` flags; the exit
/// code, the summary and the JSON report.
async fn run(addr: SocketAddr, extra: &[&str]) -> (Option<i32>, String, serde_json::Value) {
    run_for(addr, "10s", extra).await
}

/// As [`run`], for `duration` (`--duration`).
async fn run_for(
    addr: SocketAddr,
    duration: &str,
    extra: &[&str],
) -> (Option<i32>, String, serde_json::Value) {
    run_at(&format!("http://{addr}/stream.m3u8"), duration, extra).await
}

/// As [`run_for`], against `url`.
async fn run_at(url: &str, duration: &str, extra: &[&str]) -> (Option<i32>, String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("run.json");
    let mut argv: Vec<String> =
        "--engine native --clients 4 --ramp-rate 10 --ffmpeg /nonexistent/ffmpeg --duration"
            .split_whitespace()
            .map(str::to_owned)
            .collect();
    argv.extend([duration.to_owned(), "--report".to_owned()]);
    argv.push(report.display().to_string());
    argv.extend(extra.iter().map(|s| (*s).to_owned()));
    argv.push(url.to_owned());
    let out =
        tokio::task::spawn_blocking(move || run_swarm(&argv.iter().map(String::as_str).collect::<Vec<_>>()))
            .await
            .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("no report ({e}): {}", text(&out)));
    (out.status.code(), format!("{}\n{stdout}", text(&out)), serde_json::from_str(&json).unwrap())
}

/// The conformance counts of a report, by rule.
fn counts(j: &serde_json::Value) -> Vec<(String, u64)> {
    let c = j["ll_hls"]["conformance"].as_object().expect("an ll_hls section");
    c.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect()
}

/// Every rule's count is 0 except `rule`'s, which is above 0; returns that.
fn only(j: &serde_json::Value, rule: &str, out: &str) -> u64 {
    let mut counted = None;
    for (k, n) in counts(j) {
        if k == rule {
            assert!(n > 0, "{rule} was not counted\n{out}");
            counted = Some(n);
        } else {
            assert_eq!(n, 0, "{k} counted with only the {rule} fault on\n{out}");
        }
    }
    counted.unwrap_or_else(|| panic!("no rule {rule} in the report\n{out}"))
}

/// Facts of any LL-HLS run: every viewer played in LL-HLS mode, and parts and blocking
/// reloads were made and measured.
fn played_ll_hls(j: &serde_json::Value, out: &str) {
    let l = &j["ll_hls"];
    assert!(l["sessions"].as_u64() >= Some(4), "every viewer in LL-HLS mode\n{out}");
    assert!(l["parts"].as_u64() > Some(0), "{out}");
    assert!(l["part_ttfb"]["count"].as_u64() > Some(0), "{out}");
    assert!(l["blocking_reloads"].as_u64() > Some(0), "{out}");
    assert!(l["reload_hold"]["count"].as_u64() > Some(0), "{out}");
    assert_eq!(
        j["requests"]["by_kind"]["init"]["count"].as_u64(),
        Some(l["sessions"].as_u64().unwrap()),
        "init once per track\n{out}"
    );
    assert!(out.contains("LL-HLS            "), "{out}");
}

/// No fault: LL-HLS mode, parts downloaded, no whole segment, 0 violations (also through
/// `--assert`), and the live-edge latency measured from the parts' program date-times.
#[testkit::test]
async fn llhls_native_viewers_play_parts_with_no_violation() -> Outcome {
    let _machine = shared_machine().await;
    let (addr, stream, task) = start().await?;
    let asserts = ["--assert", "conformance_violations==0", "--assert", "ll_hls_sessions>=4"];
    let (code, out, j) = run(addr, &asserts).await;
    task.abort();
    assert_eq!(code, Some(0), "{out}");
    played_ll_hls(&j, &out);
    assert_eq!(j["ll_hls"]["conformance_violations"].as_u64(), Some(0), "{out}");
    assert_eq!(
        j["requests"]["by_kind"]["segment"]["count"].as_u64(),
        Some(0),
        "parts only, never a segment\n{out}"
    );
    assert!(j["playback"]["live_edge_latency"]["count"].as_u64() > Some(0), "{out}");
    assert!(out.contains("LL-HLS conformance 0 violations"), "{out}");
    assert_eq!(stream.held(), 0, "nothing held once the viewers left");
    Ok(())
}

/// Parts advertised and then answered 404 (`Stream::drop_next_parts`, a few at a time during
/// the run): counted as `advertised_404`, and nothing else.
#[testkit::test]
async fn llhls_parts_advertised_then_missing_are_counted() -> Outcome {
    let _machine = shared_machine().await;
    let (addr, stream, task) = start().await?;
    let dropper = {
        let stream = stream.clone();
        tokio::spawn(async move {
            // Bounded: four bursts of two parts, 2 s apart, from 2 s in (the viewers are in).
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_secs(2)).await;
                stream.drop_next_parts(2);
            }
        })
    };
    let (code, out, j) = run(addr, &[]).await;
    dropper.abort();
    task.abort();
    assert_eq!(code, Some(0), "{out}");
    played_ll_hls(&j, &out);
    only(&j, "advertised_404", &out);
    Ok(())
}

/// Blocking reloads answered at once, without the part asked for: counted as
/// `early_reload`, and nothing else; `--assert conformance_early_reload==0` fails the run.
#[testkit::test]
async fn llhls_reloads_answered_early_are_counted() -> Outcome {
    let _machine = shared_machine().await;
    let (addr, stream, task) = start().await?;
    stream.faults.answer_reloads_early(true);
    let (code, out, j) = run(addr, &["--assert", "conformance_early_reload==0"]).await;
    task.abort();
    assert_eq!(code, Some(5), "the assertion fails the run\n{out}");
    played_ll_hls(&j, &out);
    only(&j, "early_reload", &out);
    Ok(())
}

/// Blocking reloads answered past three target durations (`Faults::answer_reloads_slowly`:
/// the first two, each 7 s after it arrived, with the part asked for): counted as
/// `reload_held_too_long`, at most once each, and nothing else. The run outlasts the two
/// holds, which begin as the viewers join.
#[testkit::test]
async fn llhls_reloads_held_too_long_are_counted() -> Outcome {
    let _machine = shared_machine().await;
    let (addr, stream, task) = start().await?;
    stream.faults.answer_reloads_slowly(2);
    let (code, out, j) = run_for(addr, "15s", &[]).await;
    task.abort();
    assert_eq!(code, Some(0), "{out}");
    played_ll_hls(&j, &out);
    let n = only(&j, "reload_held_too_long", &out);
    assert!(n <= 2, "{n} counted for two slow reloads\n{out}");
    assert_eq!(stream.faults.slow_reloads(), 0, "both were answered slowly");
    Ok(())
}

/// Preload hints that name a part no playlist will list (`Faults::send_bad_hints`: the first
/// three playlists', one of which the swarm's look at the stream takes before the viewers
/// start; a viewer asks for the part it hints, gets 404, and reloads for the part): counted
/// as `hint_missing`, at most once each, and nothing else (a hinted part is not an
/// advertised one).
#[testkit::test]
async fn llhls_preload_hints_that_never_come_are_counted() -> Outcome {
    let _machine = shared_machine().await;
    let (addr, stream, task) = start().await?;
    stream.faults.send_bad_hints(3);
    let (code, out, j) = run_for(addr, "5s", &[]).await;
    task.abort();
    assert_eq!(code, Some(0), "{out}");
    played_ll_hls(&j, &out);
    let n = only(&j, "hint_missing", &out);
    assert!(n <= 3, "{n} counted for three bad hints\n{out}");
    assert_eq!(stream.faults.bad_hints(), 0);
    Ok(())
}

/// Playlists whose media sequence goes backwards while they still hold the part asked for
/// (`Faults::number_backwards`: the first eight, each a segment before the one served before
/// it, from 20 segments in so there is room). The swarm's look at the stream takes one and
/// four viewers share the other seven, so one of them gets two in a row: counted as
/// `numbering_backwards`, at most once per playlist, and nothing else.
#[testkit::test]
async fn llhls_media_sequence_going_backwards_is_counted() -> Outcome {
    let _machine = shared_machine().await;
    let (addr, stream, task) = start_with(20).await?;
    stream.faults.number_backwards(8);
    let (code, out, j) = run_for(addr, "5s", &[]).await;
    task.abort();
    assert_eq!(code, Some(0), "{out}");
    played_ll_hls(&j, &out);
    let n = only(&j, "numbering_backwards", &out);
    assert!(n <= 8, "{n} counted for eight playlists\n{out}");
    assert_eq!(stream.faults.backwards(), 0);
    Ok(())
}

/// `PART-HOLD-BACK` advertised at two part targets (`Faults::shorten_part_hold_back`):
/// `part_hold_back_short` is counted once per track (each joined while it was on), and
/// nothing else.
#[testkit::test]
async fn llhls_a_short_part_hold_back_is_counted_once_per_track() -> Outcome {
    let _machine = shared_machine().await;
    let (addr, stream, task) = start().await?;
    stream.faults.shorten_part_hold_back(true);
    let (code, out, j) = run_for(addr, "4s", &[]).await;
    task.abort();
    assert_eq!(code, Some(0), "{out}");
    played_ll_hls(&j, &out);
    let n = only(&j, "part_hold_back_short", &out);
    assert_eq!(Some(n), j["ll_hls"]["sessions"].as_u64(), "once per track\n{out}");
    Ok(())
}

/// `--variant abr` in LL-HLS mode: each viewer starts on the first rendition listed (`top`,
/// which no loopback estimate fits), switches down once as its first segment ends, and
/// joins `low` where `top`'s rendition report says it is (a blocking reload), then plays
/// it: one switch per track, all from reports, none up, no violation, and parts of `low`.
#[testkit::test]
async fn llhls_abr_switches_join_from_rendition_reports() -> Outcome {
    let _machine = shared_machine().await;
    let (addr, task) = start_ladder().await?;
    let (code, out, j) = run_at(&format!("http://{addr}/master.m3u8"), "10s", &["--variant", "abr"]).await;
    task.abort();
    assert_eq!(code, Some(0), "{out}");
    let l = &j["ll_hls"];
    let tracks = l["sessions"].as_u64().unwrap();
    assert!(tracks >= 4, "every viewer in LL-HLS mode\n{out}");
    assert!(l["parts"].as_u64() > Some(0) && l["blocking_reloads"].as_u64() > Some(0), "{out}");
    assert_eq!(
        l["switches_from_report"].as_u64(),
        Some(tracks),
        "one switch per track, from the report\n{out}"
    );
    assert_eq!(l["switches_plain_load"].as_u64(), Some(0), "{out}");
    assert_eq!(j["variants"]["switches_down"].as_u64(), Some(tracks), "{out}");
    assert_eq!(j["variants"]["switches_up"].as_u64(), Some(0), "{out}");
    assert_eq!(l["conformance_violations"].as_u64(), Some(0), "{out}");
    // Both renditions' init sections: one each per track.
    assert_eq!(j["requests"]["by_kind"]["init"]["count"].as_u64(), Some(2 * tracks), "{out}");
    assert!(
        out.contains(&format!(
            "LL-HLS switches   {tracks} joined from rendition reports · 0 by a plain load"
        )),
        "{out}"
    );
    Ok(())
}
