//! The LL-HLS server on a loop made by the real ffmpeg: blocking reloads, too-far requests,
//! downloads that match the fragments, delta updates, hinted parts and the fault switches.

use std::net::SocketAddr;
use std::sync::Arc;

use kit::playlist::{self, Media};
use origin::llhls::{self, mp4, Live, PartId, Settings, Stream};
use testkit::Outcome;

use crate::common::{cache_dir, get, media};

/// The server on `127.0.0.1:0` with `initial` segments complete at start.
async fn start(
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

/// Every part the playlist lists.
fn listed(m: &Media) -> Vec<PartId> {
    let all = m.segments.iter().flat_map(|s| &s.parts).chain(&m.parts_in_progress);
    all.map(|p| part_id(&p.uri)).collect()
}

fn part_id(uri: &str) -> PartId {
    let (msn, part) =
        uri.strip_prefix("part").unwrap().strip_suffix(".mp4").unwrap().split_once('.').unwrap();
    PartId { msn: msn.parse().unwrap(), part: part.parse().unwrap() }
}

fn hint(m: &Media) -> PartId {
    assert_eq!(m.preload_hints.len(), 1, "{m:?}");
    assert_eq!(m.preload_hints[0].kind, "PART");
    part_id(&m.preload_hints[0].uri)
}

#[testkit::test]
async fn a_blocking_reload_is_answered_once_the_part_is_listed_and_too_far_is_refused() -> Outcome {
    let (addr, stream, task) = start(3).await?;
    let first = media(addr, "/stream.m3u8").await;
    assert!(first.server_control.unwrap().can_block_reload);
    assert!(first.segments.len() >= 3, "{first:?}");
    let next = hint(&first);
    assert!(!listed(&first).contains(&next), "the hinted part is not listed yet");

    let path = format!("/stream.m3u8?_HLS_msn={}&_HLS_part={}", next.msn, next.part);
    let r = get(addr, &path).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/vnd.apple.mpegurl"));
    let held = playlist::parse_media(&r.text()).unwrap();
    assert!(listed(&held).contains(&next), "answered before {next:?} was listed:\n{}", r.text());

    // Far past the live edge (tens of seconds, so the edge cannot catch up while the test
    // runs; the exact boundary is the timeline's unit test, on a fake clock).
    let last = first.media_sequence + first.segments.len() as u64 - 1;
    for bad in [
        format!("/stream.m3u8?_HLS_msn={}", last + 10),
        format!("/stream.m3u8?_HLS_msn={}&_HLS_part=2", last + 20),
        "/stream.m3u8?_HLS_part=1".to_owned(),
        "/stream.m3u8?_HLS_msn=x".to_owned(),
    ] {
        let r = get(addr, &bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    assert_eq!(stream.held(), 0);
    task.abort();
    Ok(())
}

#[testkit::test]
async fn downloads_are_the_loop_s_fragments_retimed() -> Outcome {
    let (addr, stream, task) = start(3).await?;
    let live = stream.live();
    let init = get(addr, "/init.mp4").await;
    assert_eq!(init.status, 200);
    assert_eq!(init.body, live.source().init);

    let m = media(addr, "/stream.m3u8").await;
    let seg = &m.segments[1];
    let msn = m.media_sequence + 1;
    let mut parts = Vec::new();
    for p in &seg.parts {
        let r = get(addr, &format!("/{}", p.uri)).await;
        assert_eq!(r.status, 200, "{}", p.uri);
        assert_eq!(r.header("content-type"), Some("video/mp4"));
        assert_eq!(r.body, live.part_bytes(part_id(&p.uri)).unwrap(), "{}", p.uri);
        parts.extend_from_slice(&r.body);
    }
    let whole = get(addr, &format!("/{}", seg.uri)).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, parts, "a segment is its parts");
    // It is a real fMP4 continuing the loop's timeline.
    let file = [init.body.as_slice(), &whole.body].concat();
    let split = mp4::split(&file).unwrap();
    let video = split.init.video().unwrap();
    let t0 = split.fragments[0].run(video.id).unwrap().decode_time;
    assert_eq!(t0, live.segment_start(msn));
    assert_eq!(split.fragments.len(), seg.parts.len());

    // The hinted part is held until it exists, then served.
    let next = hint(&media(addr, "/stream.m3u8").await);
    let r = get(addr, &format!("/{}", Live::part_uri(next))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, live.part_bytes(next).unwrap());
    // A part well beyond the hint is not found (neither available nor hinted): 1000 parts
    // ahead, so it is not published by the time the request arrives, however slow the machine.
    let later = live.at_index(live.index(next) + 1000);
    assert_eq!(get(addr, &format!("/{}", Live::part_uri(later))).await.status, 404);
    assert_eq!(get(addr, &format!("/{}", Live::segment_uri(next.msn + 100))).await.status, 404);
    assert_eq!(get(addr, "/nothing.mp4").await.status, 404);
    task.abort();
    Ok(())
}

#[testkit::test]
async fn a_delta_update_skips_old_segments_and_merges_into_the_full_playlist() -> Outcome {
    let (addr, _stream, task) = start(10).await?;
    let full = media(addr, "/stream.m3u8").await;
    let delta = media(addr, "/stream.m3u8?_HLS_skip=YES").await;
    let skipped = delta.skipped_segments.expect("a delta update");
    assert!(skipped > 0);
    assert_eq!(delta.version, Some(9));
    // The delta was taken after the full one (a segment may have completed in between): its
    // first listed segment is in the full playlist, under the same URI.
    assert!(delta.media_sequence >= full.media_sequence);
    let first = delta.media_sequence + skipped;
    let i = usize::try_from(first - full.media_sequence).unwrap();
    assert_eq!(full.segments[i].uri, delta.segments[0].uri);
    let skip = full.server_control.unwrap().can_skip_until.unwrap();
    assert!(skip >= 6.0 * full.target_duration.unwrap());
    task.abort();
    Ok(())
}

/// With early answers on, a blocking reload for a part six parts (2 s) past the hint comes
/// back without it. The check counts only when the answer came before that part could exist
/// (else it may truly exist by then); a slow machine gets another try, at most five.
pub async fn assert_early_answer(addr: SocketAddr, stream: &Stream) {
    let live = stream.live();
    let lead = 6;
    for _ in 0..5 {
        let asked = std::time::Instant::now();
        let next = hint(&media(addr, "/stream.m3u8").await);
        let want = live.at_index(live.index(next) + lead);
        let path = format!("/stream.m3u8?_HLS_msn={}&_HLS_part={}", want.msn, want.part);
        let early = playlist::parse_media(&get(addr, &path).await.text()).unwrap();
        // When the playlist was fetched, `next` did not exist yet: `want` cannot exist before
        // this much later.
        let gap = live.duration(live.part_end(want).unwrap() - live.part_end(next).unwrap());
        if asked.elapsed() < gap {
            assert!(!listed(&early).contains(&want), "answered before {want:?} exists");
            return;
        }
    }
    panic!("five tries each took longer than the lead of six parts");
}

#[testkit::test]
async fn fault_switches_advertise_a_missing_part_and_answer_reloads_early() -> Outcome {
    let (addr, stream, task) = start(3).await?;
    let dropped = stream.drop_next_parts(1)[0];
    let path = format!("/stream.m3u8?_HLS_msn={}&_HLS_part={}", dropped.msn, dropped.part);
    let m = playlist::parse_media(&get(addr, &path).await.text()).unwrap();
    assert!(listed(&m).contains(&dropped), "advertised");
    assert_eq!(get(addr, &format!("/{}", Live::part_uri(dropped))).await.status, 404);

    stream.faults.answer_reloads_early(true);
    assert_early_answer(addr, &stream).await;
    stream.faults.answer_reloads_early(false);

    // The dropped part's segment is advertised once complete, and answered 404 too.
    let complete = format!("/stream.m3u8?_HLS_msn={}", dropped.msn);
    let m = playlist::parse_media(&get(addr, &complete).await.text()).unwrap();
    assert!(m.segments.iter().any(|s| s.uri == Live::segment_uri(dropped.msn)));
    assert_eq!(get(addr, &format!("/{}", Live::segment_uri(dropped.msn))).await.status, 404);
    stream.faults.clear_missing();
    assert_eq!(get(addr, &format!("/{}", Live::segment_uri(dropped.msn))).await.status, 200);
    task.abort();
    Ok(())
}

#[testkit::test]
async fn segments_across_the_loop_point_decode_as_one_continuous_stream() -> Outcome {
    let ffprobe = testkit::need::program("ffprobe")?;
    let (_addr, stream, task) = start(3).await?;
    task.abort();
    let live = stream.live();
    // The loop has 4 segments: 2..=5 crosses from pass 0 into pass 1.
    let mut file = live.source().init.clone();
    for msn in 2..=5 {
        file.extend(live.segment_bytes(msn));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("across.mp4");
    std::fs::write(&path, &file).unwrap();
    let probe = |stream: &'static str| {
        let mut cmd = tokio::process::Command::new(&ffprobe);
        cmd.args(["-v", "error", "-select_streams", stream, "-show_entries", "packet=pts,duration,flags"])
            .args(["-of", "csv=p=0"])
            .arg(&path);
        async move {
            let out = cmd.output().await.unwrap();
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }
    };
    let packets: Vec<(u64, u64, bool)> = probe("v")
        .await
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2].starts_with('K'))
        })
        .collect();
    assert_eq!(packets.len(), 4 * 60, "four 2 s segments at 30 fps");
    assert_eq!(packets[0].0, live.segment_start(2));
    for w in packets.windows(2) {
        assert_eq!(w[1].0, w[0].0 + w[0].1, "no gap or overlap, the loop point included: {w:?}");
    }
    let keys: Vec<usize> = packets.iter().enumerate().filter(|(_, p)| p.2).map(|(i, _)| i).collect();
    assert_eq!(keys, [0, 60, 120, 180], "a keyframe at each segment start");
    // The audio runs on across the loop point too: 8 s is 375 whole AAC frames.
    let audio: Vec<(u64, u64)> = probe("a")
        .await
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap())
        })
        .collect();
    assert_eq!(audio.len(), 375);
    for w in audio.windows(2) {
        assert_eq!(w[1].0, w[0].0 + w[0].1, "audio: {w:?}");
    }
    // And it decodes without a complaint.
    let ffmpeg = testkit::need::program("ffmpeg")?;
    let out = tokio::process::Command::new(ffmpeg)
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

#[testkit::test]
async fn ffmpeg_plays_the_playlist_as_plain_fmp4_hls() -> Outcome {
    let ffmpeg = testkit::need::program("ffmpeg")?;
    let (addr, _stream, task) = start(3).await?;
    // FFmpeg ignores the low-latency tags: the segments and the init section alone must play.
    let mut cmd = tokio::process::Command::new(ffmpeg);
    cmd.args(["-nostdin", "-v", "error", "-i"])
        .arg(format!("http://{addr}/stream.m3u8"))
        .args(["-t", "3", "-c", "copy", "-f", "null", "-"])
        .kill_on_drop(true);
    let out = tokio::time::timeout(crate::common::PATIENCE, cmd.output())
        .await
        .expect("ffmpeg within 30 s")
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    task.abort();
    Ok(())
}

/// `--profile ll-hls` as users start it: through nginx's port, held reloads and parts proxied
/// to hls-origin's own server, the fault switches on the status listener, every request in
/// nginx's access log, and the refusals that say what is accepted.
#[testkit::test]
async fn the_ll_hls_profile_serves_through_nginx_with_fault_switches_and_an_access_log() -> Outcome {
    testkit::need::program("ffmpeg")?;
    let mut config = crate::common::small("ll-hls", origin::Source::Replay);
    config.fault_injection = true;
    let origin = origin::start(config).await.unwrap();
    let addr = origin.listen();
    let status = origin.status_addr().unwrap();
    let call = |method: &'static str, path: &'static str| async move {
        origin::http::request(status, method, path, crate::common::PATIENCE).await.unwrap()
    };
    let mut requests = 0;

    let first = media(addr, "/stream.m3u8?by=test").await;
    requests += 1;
    assert!(first.server_control.unwrap().can_block_reload);
    let next = hint(&first);
    let path = format!("/stream.m3u8?_HLS_msn={}&_HLS_part={}&by=test", next.msn, next.part);
    let held = media(addr, &path).await;
    requests += 1;
    assert!(listed(&held).contains(&next), "nginx passed the reload on and it was held");
    let part = get(addr, &format!("/{}?by=test", Live::part_uri(next))).await;
    requests += 1;
    assert_eq!((part.status, part.header("content-type")), (200, Some("video/mp4")));
    assert!(!part.body.is_empty());
    assert_eq!(get(addr, "/init.mp4?by=test").await.status, 200);
    requests += 1;

    // A missing part, switched on over HTTP: advertised, then 404 through nginx.
    let r = call("POST", "/fault/ll-hls?missing=1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let name = v["missing"][0].as_str().unwrap().to_owned();
    let (msn, n) = name.split_once('.').unwrap();
    let dropped = PartId { msn: msn.parse().unwrap(), part: n.parse().unwrap() };
    let path = format!("/stream.m3u8?_HLS_msn={}&_HLS_part={}&by=test", dropped.msn, dropped.part);
    assert!(listed(&media(addr, &path).await).contains(&dropped));
    requests += 1;
    assert_eq!(get(addr, &format!("/{}?by=test", Live::part_uri(dropped))).await.status, 404);
    requests += 1;
    // A short PART-HOLD-BACK (in part targets), switched on over HTTP too.
    let hold_back = |m: &Media| m.server_control.unwrap().part_hold_back.unwrap() / m.part_target.unwrap();
    assert_eq!(call("POST", "/fault/ll-hls?short_hold_back=on").await.status, 200);
    let short = media(addr, "/stream.m3u8?by=test").await;
    requests += 1;
    assert!(hold_back(&short) < 3.0, "{short:?}");
    // DELETE clears every switch.
    assert_eq!(call("DELETE", "/fault/ll-hls").await.status, 200);
    assert_eq!(get(addr, &format!("/{}?by=test", Live::part_uri(dropped))).await.status, 200);
    requests += 1;
    assert!(hold_back(&media(addr, "/stream.m3u8?by=test").await) >= 3.0);
    requests += 1;
    // POST /fault/http: hls-origin's server answers the status for the segment's parts (and
    // the segment), through nginx; DELETE /fault/http ends it.
    let path = format!("/fault/http?status=503&from={}&to={}", dropped.msn, dropped.msn);
    let r = origin::http::request(status, "POST", &path, crate::common::PATIENCE).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(addr, &format!("/{}?by=test", Live::part_uri(dropped))).await.status, 503);
    requests += 1;
    assert_eq!(call("DELETE", "/fault/http").await.status, 200);
    assert_eq!(get(addr, &format!("/{}?by=test", Live::part_uri(dropped))).await.status, 200);
    requests += 1;

    // Bad switches name the value and what is accepted; /hold does not apply to LL-HLS.
    for (path, says) in [
        ("/fault/ll-hls?missing=101", "0 to 100"),
        ("/fault/ll-hls?early=yes", "on or off"),
        ("/fault/ll-hls?slow=11", "0 to 10"),
        ("/fault/ll-hls?short_hold_back=1", "on or off"),
        ("/fault/ll-hls", "expected one or more of missing=N&early=on|off&slow=N"),
        ("/fault/ll-hls?parts=1", "unknown parameter"),
    ] {
        let r = call("POST", path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r.text().contains(says), "{path}: {}", r.text());
    }
    let r = call("POST", "/hold?seconds=5").await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("/fault/ll-hls"), "{}", r.text());

    // Every request of this test (marked `by=test`; the readiness probes are not) reached
    // nginx's access log (flushed within a second; bounded wait).
    let log = origin.access_log().expect("ll-hls writes an access log");
    let logged = crate::common::eventually("the access log", std::time::Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let n = text.lines().filter(|l| l.contains("by=test")).count();
        async move { (n >= requests).then_some(n) }
    })
    .await;
    assert_eq!(logged, requests, "nginx logged exactly the requests made");
    origin.stop().await.unwrap();
    Ok(())
}

#[testkit::test]
async fn the_ll_hls_profile_refuses_a_live_encode_and_leaves_nothing() -> Outcome {
    testkit::need::program("ffmpeg")?;
    let work = tempfile::tempdir().unwrap();
    let mut config = crate::common::small("ll-hls", origin::Source::Encode);
    config.work_root = work.path().to_owned();
    let e = origin::start(config).await.unwrap_err().to_string();
    assert!(e.contains("encode") && e.contains("replay"), "{e}");
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0, "its directory is removed");
    Ok(())
}

/// `--profile ll-hls-abr` (scaled to a 180p top rung): the master through nginx, each
/// rendition's playlist with a report for every other rendition that parses and names a
/// playlist that exists, a blocking reload on one rendition, a part of each, and the fault
/// switches acting on every rendition.
#[testkit::test]
async fn the_ll_hls_abr_profile_serves_a_ladder_with_rendition_reports_through_nginx() -> Outcome {
    testkit::need::program("ffmpeg")?;
    let mut config = crate::common::small("ll-hls-abr", origin::Source::Replay);
    config.fault_injection = true;
    let origin = origin::start(config).await.unwrap();
    let addr = origin.listen();
    let profile = origin.profile().clone();
    assert_eq!(origin.playlist_url(), format!("{}/master.m3u8", origin.base_url()));

    let master = get(addr, "/master.m3u8").await;
    assert_eq!(master.status, 200, "{}", master.text());
    assert_eq!(master.header("content-type"), Some("application/vnd.apple.mpegurl"));
    let entries = playlist::parse_master(&master.text()).unwrap().variants;
    assert_eq!(entries.len(), 3, "{}", master.text());
    let names: Vec<String> = profile.variants.iter().map(|v| v.name.clone()).collect();
    for (entry, v) in entries.iter().zip(&profile.variants) {
        assert_eq!(entry.uri, format!("{}/stream.m3u8", v.name));
        assert_eq!(entry.bandwidth, v.bandwidth_bps());
        assert_eq!(entry.resolution, Some((v.width, v.height)));
        let codecs = entry.codecs.as_deref().unwrap_or_else(|| panic!("{}", master.text()));
        assert!(codecs.starts_with("avc1.") && codecs.ends_with(",mp4a.40.2"), "{codecs}");
    }

    let ladder = origin.llhls_ladder().expect("a ladder");
    assert_eq!(ladder.renditions().len(), 3);
    assert!(Arc::ptr_eq(origin.llhls().unwrap(), ladder.first()));
    for (i, name) in names.iter().enumerate() {
        let path = format!("/{name}/stream.m3u8");
        let m = media(addr, &path).await;
        assert!(m.server_control.as_ref().unwrap().can_block_reload, "{path}");
        assert!(m.segments.len() >= 3, "{path}: {m:?}");
        assert!(m.segments[0].map.as_ref().is_some_and(|map| map.uri == "init.mp4"));
        // One report per other rendition, each naming a playlist that exists and a last part
        // that it has (fetched afterwards, its last part is that one or a later one).
        let others: Vec<String> =
            names.iter().filter(|n| *n != name).map(|n| format!("../{n}/stream.m3u8")).collect();
        let uris: Vec<&str> = m.rendition_reports.iter().map(|r| r.uri.as_str()).collect();
        assert_eq!(uris, others, "{path}");
        for r in &m.rendition_reports {
            let target = format!("/{}", r.uri.strip_prefix("../").unwrap());
            let (msn, part) = (r.last_msn.unwrap(), r.last_part.unwrap());
            let theirs = media(addr, &target).await;
            let reported = PartId { msn, part: u32::try_from(part).unwrap() };
            let last = *listed(&theirs).last().unwrap();
            assert!(last >= reported, "{path} reports {reported:?} of {target}, whose last part is {last:?}");
        }
        // The init section, a hinted part (held until it exists) and a whole segment.
        assert_eq!(
            get(addr, &format!("/{name}/init.mp4")).await.body,
            ladder.renditions()[i].stream.live().source().init
        );
        let next = hint(&m);
        let part = get(addr, &format!("/{name}/{}", Live::part_uri(next))).await;
        assert_eq!((part.status, part.header("content-type")), (200, Some("video/mp4")), "{name}");
        assert_eq!(part.body, ladder.renditions()[i].stream.live().part_bytes(next).unwrap(), "{name}");
        let seg = get(addr, &format!("/{name}/{}", m.segments[1].uri)).await;
        assert_eq!(seg.status, 200, "{name}");
    }
    // Each rendition is its own encode (its own picture size in its init section).
    let inits: Vec<&[u8]> =
        ladder.renditions().iter().map(|r| r.stream.live().source().init.as_slice()).collect();
    assert!(inits[0] != inits[1] && inits[1] != inits[2], "one encode per rendition");

    // A blocking reload on the lowest rendition: held until the hinted part exists, and its
    // reports are at least as far on as that part (one clock for all).
    let low = format!("/{}/stream.m3u8", names[2]);
    let next = hint(&media(addr, &low).await);
    let held = media(addr, &format!("{low}?_HLS_msn={}&_HLS_part={}", next.msn, next.part)).await;
    assert!(listed(&held).contains(&next), "held until {next:?} was listed");
    for r in &held.rendition_reports {
        let last = PartId { msn: r.last_msn.unwrap(), part: u32::try_from(r.last_part.unwrap()).unwrap() };
        assert!(last >= next, "{} reports {last:?}, before {next:?}", r.uri);
    }
    assert_eq!(get(addr, "/stream.m3u8").await.status, 404, "no playlist at the root of a ladder");
    assert_eq!(get(addr, "/1080p/stream.m3u8").await.status, 404);

    // The missing-part switch acts on every rendition.
    let status = origin.status_addr().unwrap();
    let r = origin::http::request(status, "POST", "/fault/ll-hls?missing=1", crate::common::PATIENCE)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let (msn, n) = v["missing"][0].as_str().unwrap().split_once('.').unwrap();
    let dropped = PartId { msn: msn.parse().unwrap(), part: n.parse().unwrap() };
    for name in &names {
        let path = format!("/{name}/stream.m3u8?_HLS_msn={}&_HLS_part={}", dropped.msn, dropped.part);
        assert!(listed(&media(addr, &path).await).contains(&dropped), "{name}: advertised");
        let uri = format!("/{name}/{}", Live::part_uri(dropped));
        assert_eq!(get(addr, &uri).await.status, 404, "{uri}");
    }
    let r = origin::http::request(status, "DELETE", "/fault/ll-hls", crate::common::PATIENCE).await.unwrap();
    assert_eq!(r.status, 200);
    for name in &names {
        assert_eq!(get(addr, &format!("/{name}/{}", Live::part_uri(dropped))).await.status, 200, "{name}");
    }
    origin.stop().await.unwrap();
    Ok(())
}
