//! One load test split over shards (`--shard INDEX/COUNT`, `--start-at`, `--run-id`) and put
//! together again with `hls-swarm merge`: the fleet's report is the one a single process
//! running every viewer would have written, and reports that do not belong together are
//! refused.

use std::process::Stdio;

use swarm::measure::latency::Hist;

use crate::common::*;

/// Three shards of 7 FFmpeg viewers (3 + 2 + 2) start together against one origin; merged, the
/// fleet's requests equal nginx's log, its viewers are numbered 0..6 as the log names them, and
/// its percentiles are those of the shards' histograms merged. Then merge's refusals: a shard
/// twice, a missing shard, another run's report, a corrupt file.
#[testkit::test]
async fn three_shards_merge_into_the_fleets_report() {
    let _machine = shared_machine().await;
    let logs = tempfile::tempdir().unwrap();
    let origin = start_logged_origin(false, logs.path()).await;
    let url = origin.playlist_url();
    let log = origin.access_log().expect("logged profile has an access log");
    let dir = tempfile::tempdir().unwrap();
    let shard = |i: usize| dir.path().join(format!("shard-{i}.json"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let start = (now + 5).to_string();
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let mut w = swarm();
            // Shard 1 learns its index as a Kubernetes Indexed Job's pod does.
            if i == 1 {
                w.env("JOB_COMPLETION_INDEX", "1").env("HLS_SWARM_SHARDS", "3");
            } else {
                w.args(["--shard", &format!("{i}/3")]);
            }
            // Shard 2 writes its report to stdout, as a pod leaves it in its log.
            // The others name their file with {shard}, as the Job's pods do.
            let report = if i == 2 { "-".into() } else { dir.path().join("shard-{shard}.json") };
            w.args(["--clients", "7", "--ramp-rate", "7", "--duration", "14s", "--run-id", "fleet-test"])
                .args(["--start-at", &start, "--report"])
                .arg(report)
                .arg(&url)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("hls-swarm runs")
        })
        .collect();
    let outs = tokio::task::spawn_blocking(move || {
        workers.into_iter().map(|w| w.wait_with_output().expect("a worker ends")).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    // A shard that starts late (its --start-at 5 s ago) says so, and by how much.
    let late_report = dir.path().join("late.json");
    let past = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 5)
        .to_string();
    let late_args: Vec<String> = [
        "--engine",
        "native",
        "--clients",
        "1",
        "--duration",
        "2s",
        "--user-agent",
        "late",
        "--start-at",
        &past,
        "--report",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([late_report.display().to_string(), url.clone()])
    .collect();
    let late = tokio::task::spawn_blocking(move || {
        run_swarm(&late_args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    origin.stop().await.unwrap();
    assert_eq!(late.status.code(), Some(0), "{}", text(&late));
    assert!(text(&late).contains("after --start-at"), "{}", text(&late));
    let lr: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&late_report).unwrap()).unwrap();
    assert!(lr["run"]["start_late_seconds"].as_f64() >= Some(5.0), "{}", lr["run"]);
    for out in &outs {
        assert_eq!(out.status.code(), Some(0), "{}", text(out));
    }
    let stdout = String::from_utf8_lossy(&outs[2].stdout);
    let line = stdout.lines().find(|l| l.starts_with("{\"schema_version\"")).expect("the JSON report's line");
    std::fs::write(shard(2), line).unwrap();

    let fleet = dir.path().join("fleet.json");
    let paths: Vec<String> = [2, 0, 1].map(|i| shard(i).display().to_string()).to_vec();
    let merged = swarm()
        .arg("merge")
        .args(&paths)
        .arg("--report")
        .arg(&fleet)
        .args(["--assert", "viewers_reached>=1"])
        .output()
        .unwrap();
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&fleet).unwrap()).unwrap();
    // The shards' requests (the late run's are told apart by their User-Agent).
    let logged = origin::access_log::parse(&std::fs::read_to_string(&log).unwrap());
    let shards: Vec<_> = logged
        .iter()
        .filter(|x| x.user_agent.contains(" viewer/") && !x.user_agent.starts_with("late "))
        .collect();
    let playlists = shards.iter().filter(|x| x.is_playlist()).count() as u64;
    let segments = shards.iter().filter(|x| x.is_segment()).count() as u64;
    let by_kind = &r["requests"]["by_kind"];
    let count = |k: &str| by_kind[k]["count"].as_u64().unwrap_or(0);
    assert!(segments >= 7 * 3, "a real run: {segments} segments logged");
    assert_eq!(count("segment"), segments, "{}", text(&merged));
    assert_eq!(count("master") + count("playlist"), playlists, "{}", text(&merged));
    assert_eq!(r["viewers"]["target"].as_u64(), Some(7));
    let rate = r["run"]["ramp_rate"].as_f64().unwrap_or(0.0);
    assert!((rate - 7.0).abs() < 1e-9, "the shards' shares of the ramp add up to the fleet's: {rate}");
    assert_eq!(r["run"]["run_id"], "fleet-test");
    assert_eq!(r["run"]["shard"], serde_json::Value::Null, "the fleet's report is no shard's");
    // Viewers are numbered as the fleet numbered them: as nginx saw them.
    let ids: Vec<u64> =
        r["viewers"]["rows"].as_array().unwrap().iter().map(|x| x["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (0..7).collect::<Vec<u64>>());
    let mut agents: Vec<u64> =
        shards.iter().filter_map(|x| x.user_agent.rsplit("viewer/").next()?.parse().ok()).collect();
    agents.sort_unstable();
    agents.dedup();
    assert_eq!(agents, ids, "each viewer number was used by exactly one shard");
    // The merged percentiles are those of the shards' histograms merged.
    let mut union = Hist::default();
    for i in 0..3 {
        let part: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(shard(i)).unwrap()).unwrap();
        let h: Hist =
            serde_json::from_value(part["mergeable"]["results"]["ttlb"]["segment"].clone()).unwrap();
        union.merge(&h);
    }
    let want = union.summary();
    let got = &by_kind["segment"]["download"];
    assert_eq!(got["count"].as_u64(), Some(want.count));
    assert_eq!((got["p95"].as_f64(), got["max"].as_f64()), (Some(want.p95), Some(want.max)));

    // The directory the Job's pods write to stands for its shard-*.json files.
    let from_dir = swarm().arg("merge").arg(dir.path()).output().unwrap();
    assert_eq!(from_dir.status.code(), Some(0), "{}", text(&from_dir));
    let stdout = String::from_utf8_lossy(&from_dir.stdout);
    assert!(stdout.starts_with("Merged 3 shards of run fleet-test\n"), "{stdout}");
    assert_eq!(summary_number(&stdout, "Requests", "segments"), Some(segments), "{stdout}");

    // Refusals: exit 2, each naming what is wrong.
    let other_run = dir.path().join("other.json");
    let mut other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shard(2)).unwrap()).unwrap();
    other["mergeable"]["facts"]["run_id"] = "another".into();
    std::fs::write(&other_run, other.to_string()).unwrap();
    let corrupt = dir.path().join("corrupt.json");
    std::fs::write(&corrupt, "{\"tool\": ").unwrap();
    let (s0, s1) = (paths[1].as_str(), paths[2].as_str());
    let other_run = other_run.display().to_string();
    let corrupt = corrupt.display().to_string();
    for (files, needle) in [
        (vec![s0, s1, s0], "are both shard 0/3".to_owned()),
        (vec![s0, s1], "shard 2 of 3 is missing".to_owned()),
        (vec![s0, s1, other_run.as_str()], "of run 'fleet-test' but".to_owned()),
        (vec![s0, corrupt.as_str()], format!("{corrupt}: not JSON")),
    ] {
        let out = swarm().arg("merge").args(&files).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{files:?}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(&needle), "{needle}: {}", text(&out));
    }
}
