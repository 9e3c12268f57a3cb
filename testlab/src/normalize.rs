//! The normalized result: what the snapshot holds. Everything in it is meant to be the same on
//! every run of a scenario on a loaded 2-core machine, so that a diff means behaviour changed:
//!
//! - settings and verdicts exactly (exit code, thresholds passed, lab checks passed, faults
//!   applied, exporters up);
//! - viewer counts exactly where the scenario decides them (target, started, peak, streaming
//!   at the end, final states; under packet loss only target and started);
//! - counts that depend on timing (restarts, errors, stalls, exits) as `0` or `">0"` on an
//!   undisturbed run; under impairment or faults even that depends on timing (5 % loss turns
//!   a segment late only when a retransmission lands at the wrong moment; which exit codes a
//!   paused nginx causes depends on what each FFmpeg was doing), so there they read
//!   `varies (impaired)` or `varies (faults)`, and what is certain is checked by the scenario's
//!   thresholds and lab checks instead (every viewer streaming at the end, the loss applied,
//!   errors counted: `network_errors>=1`, stalls: `stalls>=3`);
//! - request counts as a verdict against what the watched time implies (`as expected`, …);
//! - durations and rates as a placeholder that only says whether they were measured.
//!
//! A scenario can redact more with `expect.redact`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::checks::{num, Check};
use crate::exporters::Figures;
use crate::faults::Applied;
use crate::prometheus::QueryResult;
use crate::scenario::Scenario;

/// Why a scenario's timing-dependent counts are not pinned at all, if they are not: its
/// impairment or its faults.
fn disturbance(s: &Scenario) -> Option<&'static str> {
    if s.network.is_some() {
        Some("varies (impaired)")
    } else if !s.faults.is_empty() {
        Some("varies (faults)")
    } else {
        None
    }
}

/// `0`, or `">0"` for a count that depends on timing.
pub fn count(n: f64) -> Value {
    if n == 0.0 {
        Value::from(0)
    } else {
        Value::from(">0")
    }
}

/// Measured or not: the value itself is never stable.
fn placeholder(v: Option<&Value>, what: &str) -> String {
    match v {
        Some(Value::Number(_)) => format!("[{what}]"),
        _ => "not measured".into(),
    }
}

/// Requests of one kind against what the viewers' watch time implies: one per target
/// duration per variant downloaded.
pub fn against_expected(count: f64, expected: f64, low: f64, high: f64) -> &'static str {
    if count == 0.0 {
        if expected >= 1.0 {
            "none (expected some)"
        } else {
            "none"
        }
    } else if expected < 1.0 {
        "some, though nothing was watched"
    } else if count < low * expected {
        "fewer than expected"
    } else if count > high * expected {
        "more than expected"
    } else {
        "as expected"
    }
}

#[derive(Debug, Serialize)]
pub struct Normalized {
    pub scenario: String,
    pub origin: OriginShape,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<String>,
    pub swarm: SwarmShape,
    pub lab: LabShape,
}

#[derive(Debug, Serialize)]
pub struct OriginShape {
    pub profile: String,
    pub source: String,
    pub placement: String,
    /// `media playlist` or `master, N variants`.
    pub entry: String,
}

#[derive(Debug, Serialize)]
pub struct SwarmShape {
    pub exit_code: Option<i32>,
    pub thresholds: BTreeMap<String, &'static str>,
    pub viewers: ViewersShape,
    pub requests: BTreeMap<&'static str, Value>,
    pub errors: ErrorsShape,
    pub playback: BTreeMap<&'static str, Value>,
    pub timings: BTreeMap<&'static str, String>,
    pub origin_metrics: BTreeMap<&'static str, &'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ll_hls: Option<LlHlsShape>,
}

/// The LL-HLS section of a run where viewers played LL-HLS.
#[derive(Debug, Serialize)]
pub struct LlHlsShape {
    pub tracks: Value,
    pub conformance: BTreeMap<String, Value>,
}

#[derive(Debug, Serialize)]
pub struct ViewersShape {
    pub target: u64,
    pub started: u64,
    pub streaming_peak: Value,
    pub streaming_at_stop: Value,
    pub restarts: Value,
    pub stall_restarts: Value,
    pub spawn_failures: Value,
    pub final_states: BTreeMap<String, Value>,
    pub exits_unexpected: BTreeMap<String, Value>,
    pub exits_on_stop: BTreeMap<String, Value>,
}

#[derive(Debug, Serialize)]
pub struct ErrorsShape {
    pub by_status: BTreeMap<String, Value>,
    pub network: Value,
    pub segments_skipped: Value,
}

#[derive(Debug, Serialize)]
pub struct LabShape {
    pub exporters: BTreeMap<&'static str, &'static str>,
    pub checks: BTreeMap<String, &'static str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub prometheus: BTreeMap<String, &'static str>,
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "pass"
    } else {
        "FAIL"
    }
}

fn counts(map: Option<&Value>) -> BTreeMap<String, Value> {
    map.and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), count(v.as_f64().unwrap_or(0.0)))).collect())
        .unwrap_or_default()
}

/// What the run produced, for normalizing.
#[derive(Debug)]
pub struct Facts<'a> {
    pub scenario: &'a Scenario,
    pub exit_code: Option<i32>,
    pub report: Option<&'a Value>,
    /// Variants in the origin's master playlist (0: a media playlist).
    pub variants: usize,
    pub faults: &'a [Applied],
    pub exporters: Option<&'a Figures>,
    pub checks: &'a [Check],
    pub queries: &'a [QueryResult],
}

/// Builds the snapshot value.
pub fn normalize(f: &Facts<'_>) -> Normalized {
    let s = f.scenario;
    let empty = Value::Null;
    let r = f.report.unwrap_or(&empty);
    let entry = match f.variants {
        0 => "media playlist".to_owned(),
        n => format!("master, {n} variants"),
    };
    let downloaded = match (f.variants, s.swarm.variant.as_deref()) {
        (0, _) => 1.0,
        (n, None | Some("all")) => n as f64,
        _ => 1.0,
    };
    let td = num(r, "/run/target_duration_seconds");
    let watched = num(r, "/playback/watch_seconds");
    let expected = if td > 0.0 { watched / td * downloaded } else { 0.0 };
    let starts = num(r, "/viewers/process_starts");
    let master = num(r, "/requests/by_kind/master/count");
    // Through an impaired link a request can fail and be tried again, a download can take
    // longer than a segment lasts, and a viewer can be reconnecting: every count of requests
    // then depends on timing. What stays certain: a stream without a master playlist gets no
    // master request, one with gets at least one per session.
    let impaired = s.network.is_some();
    let mut requests = BTreeMap::new();
    requests.insert(
        "master",
        Value::from(match (master, f.variants) {
            (0.0, _) => "none",
            (m, n) if n > 0 && impaired && m >= starts => "at least one per process start",
            (m, n) if n > 0 && m == starts => "one per process start",
            _ => "other than one per process start",
        }),
    );
    let judged = |kind: &str, low, high| {
        let n = num(r, &format!("/requests/by_kind/{kind}/count"));
        Value::from(if impaired { "varies (impaired)" } else { against_expected(n, expected, low, high) })
    };
    let ll = r.pointer("/ll_hls").filter(|v| v.is_object());
    let kind_count = |kind: &str| num(r, &format!("/requests/by_kind/{kind}/count"));
    if let Some(l) = ll {
        // LL-HLS: one full playlist load per track, then blocking reloads and parts as the
        // edge moves (how many depends on timing), the init section once per track, and no
        // whole segment (its parts were downloaded).
        for kind in ["playlist", "blocking_reload", "part", "segment"] {
            requests.insert(kind, count(kind_count(kind)));
        }
        let tracks = l["sessions"].as_f64().unwrap_or(0.0);
        requests.insert(
            "init",
            Value::from(if kind_count("init") == tracks {
                "one per track"
            } else {
                "other than one per track"
            }),
        );
        requests.insert("other", count(kind_count("key") + kind_count("other")));
    } else {
        requests.insert("playlist", judged("playlist", 0.4, 3.0));
        requests.insert("segment", judged("segment", 0.5, 2.0));
        let other = ["init", "key", "other"].iter().map(|k| kind_count(k)).sum();
        requests.insert("other", if impaired { Value::from("varies (impaired)") } else { count(other) });
    }
    // Conformance counts by rule: 0 where none, `>0` where an injected fault shows.
    let ll_hls = ll.map(|l| LlHlsShape {
        tracks: count(l["sessions"].as_f64().unwrap_or(0.0)),
        conformance: counts(l.get("conformance")),
    });

    let mut states: BTreeMap<String, u64> = BTreeMap::new();
    for row in r.pointer("/viewers/rows").and_then(Value::as_array).into_iter().flatten() {
        let state = row["state"].as_str().unwrap_or("?").to_owned();
        *states.entry(state).or_insert(0) += 1;
    }
    // Under packet loss a viewer can be waiting to reconnect (backoff) at the stop.
    let final_states = match s.network {
        Some(_) => BTreeMap::from([("any".to_owned(), Value::from("varies (impaired)"))]),
        None => states.into_iter().map(|(k, n)| (k, Value::from(n))).collect(),
    };
    // Counts that depend on timing: `0`/`">0"`, or under a disturbance not pinned at all.
    let varies = disturbance(s);
    let timed = |pointer: &str| varies.map_or_else(|| count(num(r, pointer)), Value::from);
    let timed_map = |pointer: &str| match varies {
        Some(v) => BTreeMap::from([("any".to_owned(), Value::from(v))]),
        None => counts(r.pointer(pointer)),
    };
    let viewers = ViewersShape {
        target: num(r, "/viewers/target") as u64,
        started: num(r, "/viewers/started") as u64,
        // Under packet loss a viewer can be between a failed request and its reconnect at any
        // moment, the peak's or the stop's: `viewers_reached` says each one played.
        streaming_peak: match s.network {
            Some(_) => Value::from("varies (impaired)"),
            None => Value::from(num(r, "/viewers/streaming_peak") as u64),
        },
        streaming_at_stop: match s.network {
            Some(_) => Value::from("varies (impaired)"),
            None => r.pointer("/viewers/streaming_at_stop").cloned().unwrap_or(Value::Null),
        },
        restarts: timed("/viewers/restarts"),
        stall_restarts: if impaired {
            Value::from("varies (impaired)")
        } else {
            count(num(r, "/viewers/stall_restarts"))
        },
        spawn_failures: if impaired {
            Value::from("varies (impaired)")
        } else {
            count(num(r, "/viewers/spawn_failures"))
        },
        final_states,
        exits_unexpected: timed_map("/viewers/exits_unexpected"),
        // Which exit a stopped FFmpeg gives depends on what it was doing at the stop; a viewer
        // that keeps failing and restarting may have no process at all then (it is between two
        // attempts), so whether there is any exit on stop is timing too.
        exits_on_stop: if varies.is_none() && num(r, "/viewers/restarts") > 0.0 {
            BTreeMap::from([("any".to_owned(), Value::from("varies (viewers restarting)"))])
        } else {
            timed_map("/viewers/exits_on_stop")
        },
    };
    let errors = ErrorsShape {
        by_status: timed_map("/errors/by_status"),
        network: timed("/errors/network"),
        segments_skipped: timed("/errors/segments_skipped"),
    };
    let mut playback = BTreeMap::new();
    playback.insert("stalls", timed("/playback/stalls"));
    playback.insert("late_segments", timed("/playback/late_segments"));
    playback.insert("inferred", r.pointer("/playback/inferred").cloned().unwrap_or(Value::Null));
    let mut timings = BTreeMap::new();
    for (k, p) in [
        ("startup_p95", "/fields/startup_p95"),
        ("segment_ttfb_p95", "/fields/segment_ttfb_p95"),
        ("segment_download_p95", "/fields/segment_download_p95"),
        ("playlist_ttfb_p95", "/fields/playlist_ttfb_p95"),
    ] {
        timings.insert(k, placeholder(r.pointer(p), "duration"));
    }
    timings.insert("segment_throughput", placeholder(r.pointer("/fields/segment_throughput"), "rate"));
    let mut origin_metrics = BTreeMap::new();
    for (k, p) in [("node", "/origin/node/ok"), ("nginx", "/origin/nginx/ok")] {
        origin_metrics.insert(
            k,
            match r.pointer(p).and_then(Value::as_bool) {
                Some(true) => "scraped",
                Some(false) => "failing at the end",
                None => "not scraped",
            },
        );
    }
    let thresholds = r
        .pointer("/thresholds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| {
            (t["expression"].as_str().unwrap_or("?").to_owned(), verdict(t["passed"].as_bool() == Some(true)))
        })
        .collect();

    let mut exporters = BTreeMap::new();
    // Through an impaired link (loss, or a rate limit the scrape shares with the viewers) a
    // scrape of the lab's own can time out now and then: whether one did depends on timing,
    // so there what is certain is recorded: up or down.
    let lossy = s.network.is_some();
    if let Some(x) = f.exporters {
        exporters.insert(
            "node",
            match x.node_ok {
                0 => "down",
                _ if lossy || x.node_ok == x.scrapes => "up",
                _ => "up, some scrapes failed",
            },
        );
        exporters.insert(
            "nginx",
            match (x.nginx_ok, x.nginx_down) {
                (0, _) => "down",
                (_, 0) if lossy || x.nginx_ok == x.scrapes => "up, nginx up",
                (_, 0) => "up, some scrapes failed",
                _ => "up, nginx down at times",
            },
        );
    }
    Normalized {
        scenario: s.name.clone(),
        origin: OriginShape {
            profile: s.origin.profile.clone(),
            source: s.origin.source.as_str().to_owned(),
            placement: format!("{:?}", s.origin.placement).to_lowercase(),
            entry,
        },
        network: s.network.as_ref().map(crate::scenario::Impairment::describe),
        faults: f
            .faults
            .iter()
            .map(|a| format!("{}: {}", a.fault, if a.ok { "applied" } else { "FAILED" }))
            .collect(),
        swarm: SwarmShape {
            exit_code: f.exit_code,
            thresholds,
            viewers,
            requests,
            errors,
            playback,
            timings,
            origin_metrics,
            ll_hls,
        },
        lab: LabShape {
            exporters,
            checks: f.checks.iter().map(|c| (c.name.clone(), verdict(c.passed))).collect(),
            prometheus: f.queries.iter().map(|q| (q.promql.clone(), verdict(q.passed))).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const CLEAN: &str = "description = \"x\"\n[origin]\nprofile = \"default\"\n[swarm]\nclients = 2\n\
                         duration = \"10s\"\n[expect]\n";

    /// A report in which every timing-dependent count is non-zero.
    fn busy_report() -> Value {
        serde_json::json!({
            "viewers": { "target": 2, "started": 2, "restarts": 3, "exits_unexpected": { "exit 1": 3 },
                         "exits_on_stop": { "exit 255": 2 } },
            "errors": { "network": 4, "by_status": { "404": 1 }, "segments_skipped": 1 },
            "playback": { "stalls": 2, "late_segments": 1, "inferred": false },
        })
    }

    fn normalized(toml: &str) -> serde_json::Value {
        normalized_report(toml, &busy_report())
    }

    fn normalized_report(toml: &str, report: &Value) -> serde_json::Value {
        let s = Scenario::parse(Path::new("/x/t.toml"), toml).unwrap();
        let facts = Facts {
            scenario: &s,
            exit_code: Some(0),
            report: Some(report),
            variants: 0,
            faults: &[],
            exporters: None,
            checks: &[],
            queries: &[],
        };
        serde_json::to_value(normalize(&facts)).unwrap()
    }

    #[test]
    fn timing_counts_are_zero_or_more_on_a_clean_run_and_not_pinned_when_disturbed() {
        let clean = normalized(CLEAN);
        assert_eq!(clean["swarm"]["playback"]["stalls"], ">0");
        assert_eq!(clean["swarm"]["viewers"]["restarts"], ">0");
        // Restarting viewers may have no process at the stop: whether any exited then is timing.
        assert_eq!(clean["swarm"]["viewers"]["exits_on_stop"]["any"], "varies (viewers restarting)");
        assert_eq!(clean["swarm"]["viewers"]["exits_unexpected"]["exit 1"], ">0");
        assert_eq!(clean["swarm"]["errors"]["network"], ">0");
        let quiet = serde_json::json!({
            "viewers": { "target": 2, "started": 2, "restarts": 0, "exits_unexpected": {} },
            "errors": { "network": 0, "by_status": {}, "segments_skipped": 0 },
            "playback": { "stalls": 0, "late_segments": 0, "inferred": false },
        });
        let quiet = normalized_report(CLEAN, &quiet);
        for path in [
            "/swarm/playback/stalls",
            "/swarm/playback/late_segments",
            "/swarm/viewers/restarts",
            "/swarm/errors/network",
            "/swarm/errors/segments_skipped",
        ] {
            assert_eq!(quiet.pointer(path), Some(&Value::from(0)), "{path} in {quiet:#}");
        }

        let impaired = normalized(&CLEAN.replace(
            "[origin]\nprofile = \"default\"",
            "[origin]\nprofile = \"default\"\nplacement = \"netns\"\n[network]\nloss_percent = 5.0",
        ));
        let faulted = normalized(&format!("{CLEAN}\n[[fault]]\nat = \"4s\"\nhold = \"3s\"\n"));
        for (n, word) in [(&impaired, "varies (impaired)"), (&faulted, "varies (faults)")] {
            for path in [
                "/swarm/playback/stalls",
                "/swarm/playback/late_segments",
                "/swarm/viewers/restarts",
                "/swarm/viewers/exits_unexpected/any",
                "/swarm/errors/network",
                "/swarm/errors/by_status/any",
                "/swarm/errors/segments_skipped",
            ] {
                assert_eq!(n.pointer(path), Some(&Value::from(word)), "{path} in {n:#}");
            }
            // What the scenario decides stays exact; how the stopped processes exited does not.
            assert_eq!(n["swarm"]["viewers"]["target"], 2);
            assert_eq!(n["swarm"]["viewers"]["exits_on_stop"]["any"], word);
            let at_stop = &n["swarm"]["viewers"]["streaming_at_stop"];
            assert_eq!(at_stop == "varies (impaired)", word == "varies (impaired)", "{at_stop}");
            // Under loss a viewer may be waiting to reconnect at the stop.
            let states = &n["swarm"]["viewers"]["final_states"];
            assert_eq!(states.get("any").is_some(), word == "varies (impaired)", "{states}");
        }
        // Through an impaired link no count of requests is pinned, by loss or by a rate limit.
        for kind in ["playlist", "segment", "other"] {
            assert_eq!(impaired["swarm"]["requests"][kind], "varies (impaired)", "{kind}");
        }
        for count in ["stall_restarts", "spawn_failures"] {
            assert_eq!(impaired["swarm"]["viewers"][count], "varies (impaired)", "{count}");
        }
        assert_eq!(faulted["swarm"]["requests"]["other"], 0, "faults alone keep the certain counts");
        let limited = normalized(&CLEAN.replace(
            "[origin]\nprofile = \"default\"",
            "[origin]\nprofile = \"default\"\nplacement = \"netns\"\n[network]\nrate_kbit = 700",
        ));
        for kind in ["playlist", "segment"] {
            assert_eq!(limited["swarm"]["requests"][kind], "varies (impaired)", "{kind}");
        }
    }

    #[test]
    fn a_lab_scrape_lost_through_packet_loss_does_not_change_the_snapshot() {
        let x = |node_ok, nginx_ok| crate::exporters::Figures {
            scrapes: 10,
            node_ok,
            nginx_ok,
            nginx_down: 0,
            host_cpu: None,
            host_cpus: None,
            net_tx_bytes: None,
            nginx_requests: None,
            nginx_peak_active: None,
        };
        let lossy = CLEAN.replace(
            "[origin]\nprofile = \"default\"",
            "[origin]\nprofile = \"default\"\nplacement = \"netns\"\n[network]\nloss_percent = 5.0",
        );
        let labels = |toml: &str, f: crate::exporters::Figures| {
            let s = Scenario::parse(Path::new("/x/t.toml"), toml).unwrap();
            let facts = Facts {
                scenario: &s,
                exit_code: Some(0),
                report: None,
                variants: 0,
                faults: &[],
                exporters: Some(&f),
                checks: &[],
                queries: &[],
            };
            let n = serde_json::to_value(normalize(&facts)).unwrap();
            (n["lab"]["exporters"]["node"].clone(), n["lab"]["exporters"]["nginx"].clone())
        };
        assert_eq!(labels(&lossy, x(10, 10)), labels(&lossy, x(9, 8)), "through the loss");
        assert_eq!(labels(&lossy, x(0, 10)).0, "down");
        assert_eq!(labels(CLEAN, x(9, 10)).0, "up, some scrapes failed", "without loss a failure shows");
        assert_eq!(labels(CLEAN, x(10, 10)), (Value::from("up"), Value::from("up, nginx up")));
    }

    #[test]
    fn counts_and_buckets() {
        assert_eq!(count(0.0), Value::from(0));
        assert_eq!(count(7.0), Value::from(">0"));
        assert_eq!(against_expected(0.0, 0.0, 0.5, 2.0), "none");
        assert_eq!(against_expected(0.0, 10.0, 0.5, 2.0), "none (expected some)");
        assert_eq!(against_expected(14.0, 10.0, 0.5, 2.0), "as expected");
        assert_eq!(against_expected(4.0, 10.0, 0.5, 2.0), "fewer than expected");
        assert_eq!(against_expected(21.0, 10.0, 0.5, 2.0), "more than expected");
        assert_eq!(against_expected(3.0, 0.0, 0.5, 2.0), "some, though nothing was watched");
    }
}
