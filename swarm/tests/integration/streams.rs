//! Several streams in one run (`--stream URL=WEIGHT`): viewers are dealt the streams by weight,
//! and each stream's figures in the report equal what its own origin's nginx logged, with
//! either engine.

use crate::common::*;

/// Playlists, segments and bytes nginx logged in `log` from the viewers whose User-Agent
/// starts with `agent`.
fn logged_by(log: &std::path::Path, agent: &str) -> (u64, u64, u64) {
    let all = origin::access_log::parse(&std::fs::read_to_string(log).expect("access log"));
    let mine: Vec<_> =
        all.iter().filter(|r| r.user_agent.starts_with(agent) && r.user_agent.contains(" viewer/")).collect();
    let playlists = mine.iter().filter(|r| r.is_playlist()).count() as u64;
    let segments = mine.iter().filter(|r| r.is_segment()).count() as u64;
    (playlists, segments, mine.iter().map(|r| r.bytes).sum())
}

/// Two origins, three viewers dealt 2:1 between them, once with FFmpeg viewers and once with
/// native ones: each stream's requests in the report equal its origin's log, its bytes are
/// within 1 % of it, and the streams add up to the run.
#[testkit::test]
async fn each_stream_is_counted_as_its_own_origin_logs_it() {
    let _machine = shared_machine().await;
    let (logs_a, logs_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_logged_origin(false, logs_a.path()).await;
    let b = start_logged_origin(false, logs_b.path()).await;
    let logs = [a.access_log().expect("a's log"), b.access_log().expect("b's log")];
    let streams = [format!("{}=2", a.playlist_url()), b.playlist_url()];
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().to_owned();
    let runs = tokio::task::spawn_blocking(move || {
        ["ffmpeg", "native"].map(|engine| {
            let report = reports.join(format!("{engine}.json"));
            let out = swarm()
                .args(["--engine", engine, "--clients", "3", "--ramp-rate", "3", "--duration", "14s"])
                .args(["--user-agent", engine, "--stream", &streams[0], "--stream", &streams[1]])
                .arg("--report")
                .arg(&report)
                .output()
                .unwrap();
            (engine, out, report)
        })
    })
    .await
    .unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();

    for (engine, out, report) in runs {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(0), "{engine}: {}", text(&out));
        assert!(stdout.contains("Streams           2, viewers dealt by weight:"), "{stdout}");
        let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let rows = r["streams"].as_array().cloned().unwrap_or_default();
        assert_eq!(rows.len(), 2, "{engine}: {}", r["streams"]);
        let mut segments_total = 0;
        for (i, (row, log)) in rows.iter().zip(&logs).enumerate() {
            let (playlists, segments, bytes) = logged_by(log, &format!("{engine} "));
            let count = |k: &str| row["requests"][k].as_u64().unwrap_or(0);
            let what = format!("{engine}, stream {}: {row}\n{stdout}", i + 1);
            assert_eq!(row["viewers"].as_u64(), Some(if i == 0 { 2 } else { 1 }), "{what}");
            assert_eq!(row["started"], row["viewers"], "{what}");
            assert!(segments >= 2, "a real run: {segments} segments logged; {what}");
            assert_eq!(count("master") + count("playlist"), playlists, "{what}");
            assert_eq!(count("segment"), segments, "{what}");
            let measured = row["bytes"].as_u64().unwrap_or(0) as f64;
            let off = (measured - bytes as f64).abs() / bytes as f64;
            assert!(off < 0.01, "{measured} bytes vs nginx {bytes}: {:.3} % apart; {what}", off * 100.0);
            assert!(row["startup"]["count"].as_u64() >= Some(1), "{what}");
            segments_total += count("segment");
        }
        assert_eq!(Some(segments_total), r["requests"]["by_kind"]["segment"]["count"].as_u64(), "{engine}");
        // Each viewer's row names its stream: viewers 0 and 2 play the first, 1 the second.
        let rows = r["viewers"]["rows"].as_array().cloned().unwrap_or_default();
        let of: Vec<u64> = rows.iter().map(|x| x["stream"].as_u64().unwrap_or(9)).collect();
        assert_eq!(of, [0, 1, 0], "{engine}");
    }
}
