//! Lab-side checks: the swarm's report against what the origin saw (nginx's access log, the
//! nginx exporter's request counter, the origin's CPU), each with a stable name (it goes in
//! the snapshot) and a detail with the numbers (it goes in the failure message and the result).

use std::time::Duration;

use serde_json::Value;

use crate::exporters::Figures;
use crate::scenario::Expect;

/// One check's verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// A number in the report, 0 if absent.
pub fn num(report: &Value, pointer: &str) -> f64 {
    report.pointer(pointer).and_then(Value::as_f64).unwrap_or(0.0)
}

/// What nginx's access log says about the viewers (user agent `… viewer/N`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Logged {
    /// Playlists, blocking reloads included.
    pub playlists: u64,
    pub segments: u64,
    /// LL-HLS partial segments.
    pub parts: u64,
    /// Initialisation sections.
    pub inits: u64,
    pub other: u64,
    pub bytes: u64,
}

/// Counts the viewers' lines of an access log's text.
pub fn logged(text: &str) -> Logged {
    let mut l = Logged::default();
    for r in origin::access_log::parse(text).into_iter().filter(|r| r.user_agent.contains(" viewer/")) {
        if r.is_playlist() {
            l.playlists += 1;
        } else if r.is_segment() {
            l.segments += 1;
        } else if r.is_part() {
            l.parts += 1;
        } else if r.is_init() {
            l.inits += 1;
        } else {
            l.other += 1;
        }
        l.bytes += r.bytes;
    }
    l
}

/// Packets an impairment saw and dropped, or why they are not known.
pub type Drops = Result<(u64, u64), String>;

/// The inputs of the checks.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub expect: &'a Expect,
    pub report: &'a Value,
    pub access_log: Option<&'a Logged>,
    pub exporters: &'a Figures,
    /// The swarm's nginx exporter polls and the harness's scrapes between the outer two.
    pub harness_nginx_scrapes: usize,
    /// The origin's CPU seconds over the run and the run's wall seconds.
    pub origin_cpu: Option<(f64, f64)>,
    /// The configured loss, percent, and the packets the impairment saw and dropped.
    pub loss: Option<(f64, Drops)>,
    /// The machine's CPU load while the swarm ran, sampled by the harness.
    pub load: Option<&'a testkit::cpu::Load>,
    /// `network.lift_at`: seconds after the swarm's start the impairment was lifted, or why
    /// it was not.
    pub lifted: Option<Result<f64, String>>,
}

/// The swarm calls a run generator-bound when its machine was above 85 % busy for 10 s (or it
/// dropped events, or fell behind its ramp or its stats tick, which happen on a saturated
/// machine). The harness's own samples judge that verdict: bound needs a machine the harness
/// saw above [`BUSY`] for at least [`BUSY_FOR`]; not bound is wrong if the harness saw it above
/// [`SATURATED`] for [`SATURATED_FOR`] (the swarm's rule would have fired).
pub const BUSY: f64 = 0.80;
/// See [`BUSY`].
pub const BUSY_FOR: Duration = Duration::from_secs(5);
/// See [`BUSY`].
pub const SATURATED: f64 = 0.95;
/// See [`BUSY`].
pub const SATURATED_FOR: Duration = Duration::from_secs(15);

/// The swarm's `generator.bound` against the harness's own view of the machine's load.
fn generator_verdict(report: &Value, load: Option<&testkit::cpu::Load>) -> Check {
    let name = "the swarm's generator-bound verdict agrees with the machine's load".to_owned();
    let g = &report["generator"];
    let (Some(bound), Some(load)) = (g["bound"].as_bool(), load) else {
        return Check { name, passed: false, detail: "no generator section or no load samples".into() };
    };
    let busy = load.longest_above(BUSY);
    let saturated = load.longest_above(SATURATED);
    let reasons: Vec<&str> =
        g["reasons"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let seen = format!(
        "the harness saw the machine above {:.0} % for {:.1} s at most, above {:.0} % for {:.1} s (peak {:.0} %)",
        BUSY * 100.0,
        busy.as_secs_f64(),
        SATURATED * 100.0,
        saturated.as_secs_f64(),
        load.peak().unwrap_or(0.0) * 100.0
    );
    if bound {
        Check { name, passed: busy >= BUSY_FOR, detail: format!("bound ({}); {seen}", reasons.join("; ")) }
    } else {
        Check { name, passed: saturated < SATURATED_FOR, detail: format!("not bound; {seen}") }
    }
}

/// Every check the scenario asks for.
pub fn run(i: &Inputs<'_>) -> Vec<Check> {
    let mut out = Vec::new();
    let r = i.report;
    let e = i.expect;
    let swarm_playlists = num(r, "/requests/by_kind/playlist/count")
        + num(r, "/requests/by_kind/master/count")
        + num(r, "/requests/by_kind/blocking_reload/count");
    let swarm_segments = num(r, "/requests/by_kind/segment/count");
    let swarm_parts = num(r, "/requests/by_kind/part/count");
    let swarm_inits = num(r, "/requests/by_kind/init/count");
    let swarm_total = num(r, "/requests/total");
    if e.access_log_counts {
        let name = "requests by kind equal the viewers' lines in nginx's access log".to_owned();
        out.push(match i.access_log {
            Some(l) => Check {
                name,
                passed: l.playlists as f64 == swarm_playlists
                    && l.segments as f64 == swarm_segments
                    && l.parts as f64 == swarm_parts
                    && l.inits as f64 == swarm_inits
                    && l.other == 0,
                detail: format!(
                    "swarm: {swarm_playlists} playlists, {swarm_segments} segments, {swarm_parts} parts, \
                     {swarm_inits} init sections; nginx: {} playlists, {} segments, {} parts, {} init \
                     sections, {} other",
                    l.playlists, l.segments, l.parts, l.inits, l.other
                ),
            },
            None => Check { name, passed: false, detail: "no access log".into() },
        });
    }
    if let Some(within) = e.access_log_bytes_within {
        let name = format!("swarm bytes within {}% of nginx's access log", within * 100.0);
        let swarm = num(r, "/requests/bytes");
        out.push(match i.access_log {
            Some(l) if l.bytes > 0 => {
                let off = (swarm - l.bytes as f64).abs() / l.bytes as f64;
                Check {
                    name,
                    passed: off <= within,
                    detail: format!(
                        "swarm {swarm} bytes, nginx {} bytes: {:.3}% apart",
                        l.bytes,
                        off * 100.0
                    ),
                }
            }
            _ => Check { name, passed: false, detail: "no bytes in the access log".into() },
        });
    }
    if e.nginx_requests_match {
        let name = "nginx exporter counted the swarm's requests, its probe and the exporter polls".to_owned();
        let swarm_polls = num(r, "/origin/nginx/scrapes_ok") + num(r, "/origin/nginx/scrapes_failed");
        out.push(match i.exporters.nginx_requests {
            Some(delta) => {
                // What nginx counted that the swarm's relay did not: the swarm's own probe of
                // the stream before the viewers start (one request per playlist it reads).
                let probe = delta - swarm_total - swarm_polls - i.harness_nginx_scrapes as f64;
                Check {
                    name,
                    passed: (1.0..=3.0).contains(&probe),
                    detail: format!(
                        "nginx +{delta} = swarm {swarm_total} + swarm polls {swarm_polls} + harness scrapes {} + probe {probe}",
                        i.harness_nginx_scrapes
                    ),
                }
            }
            None => Check { name, passed: false, detail: "the nginx exporter did not answer".into() },
        });
    }
    if let Some(limit) = e.origin_cpu_below {
        let name = format!("origin CPU below {}% of a core", limit * 100.0);
        out.push(match i.origin_cpu {
            Some((cpu, wall)) if wall > 0.0 => Check {
                name,
                passed: cpu / wall < limit,
                detail: format!("{cpu:.2} CPU-s over {wall:.1} s = {:.1}% of a core", cpu / wall * 100.0),
            },
            _ => Check { name, passed: false, detail: "not measured".into() },
        });
    }
    if let Some((percent, counted)) = &i.loss {
        let name = format!("the impairment dropped about {percent}% of the packets");
        out.push(match counted {
            Ok((seen, dropped)) if *seen >= 100 => {
                // Each packet is dropped independently (nftables `numgen random` or netem), so
                // the count is binomial: within 5 standard deviations of the mean it is certain
                // (a miss is a one-in-a-million event), and the band narrows as packets add up.
                let n = *seen as f64;
                let p = percent / 100.0;
                let band = 5.0 * (n * p * (1.0 - p)).sqrt() + 1.0;
                let got = *dropped as f64 / n * 100.0;
                Check {
                    name,
                    passed: (*dropped as f64 - n * p).abs() <= band,
                    detail: format!(
                        "{dropped} of {seen} packets = {got:.2}% (expected {:.0} ± {band:.0}, 5 standard deviations)",
                        n * p
                    ),
                }
            }
            Ok((seen, _)) => {
                Check { name, passed: false, detail: format!("only {seen} packets went through") }
            }
            Err(e) => Check { name, passed: false, detail: e.clone() },
        });
    }
    if let Some(lifted) = &i.lifted {
        out.push(match lifted {
            Ok(at) => Check {
                name: "the impairment was lifted".into(),
                passed: true,
                detail: format!("{at:.1} s after the swarm started"),
            },
            Err(e) => Check { name: "the impairment was lifted".into(), passed: false, detail: e.clone() },
        });
    }
    if let Some(v) = &e.variants {
        variants(v, r, &mut out);
    }
    out.push(generator_verdict(r, i.load));
    if e.all_streaming_at_end {
        let target = num(r, "/viewers/target");
        let at_stop = num(r, "/viewers/streaming_at_stop");
        out.push(Check {
            name: "every viewer was streaming at the end".into(),
            passed: at_stop == target,
            detail: format!("{at_stop} of {target} streaming when the run ended"),
        });
    }
    out
}

/// `[expect.variants]` against the report's `variants` and viewer rows.
fn variants(v: &crate::scenario::VariantsExpect, r: &Value, out: &mut Vec<Check>) {
    // Each viewer's last variant, in row order.
    let rows = r.pointer("/viewers/rows").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let last: Vec<Option<u64>> = rows.iter().map(|x| x["variant_bandwidth"].as_u64()).collect();
    if let Some(want) = v.final_bandwidth {
        out.push(Check {
            name: format!("every viewer ended on the variant of BANDWIDTH {want}"),
            passed: !last.is_empty() && last.iter().all(|b| *b == Some(want)),
            detail: format!("last variant of each viewer: {last:?}"),
        });
    }
    let bounds = [("or more", v.final_bandwidth_at_least), ("or less", v.final_bandwidth_at_most)];
    for (how, bound) in bounds {
        let Some(bound) = bound else { continue };
        let within = |b: u64| if how == "or more" { b >= bound } else { b <= bound };
        out.push(Check {
            name: format!("every viewer ended on a variant of BANDWIDTH {bound} {how}"),
            passed: !last.is_empty() && last.iter().all(|b| b.is_some_and(within)),
            detail: format!("last variant of each viewer: {last:?}"),
        });
    }
    for (dir, least) in [("up", v.switches_up_at_least), ("down", v.switches_down_at_least)] {
        if least > 0 {
            let n = r.pointer(&format!("/variants/switches_{dir}")).and_then(Value::as_u64).unwrap_or(0);
            out.push(Check {
                name: format!("at least {least} variant switches {dir}"),
                passed: n >= least,
                detail: format!("{n} switches {dir}"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporters::Figures;

    fn expect(text: &str) -> Expect {
        toml::from_str(text).unwrap()
    }

    fn report() -> Value {
        serde_json::json!({
            "requests": {"total": 90, "bytes": 1000,
                "by_kind": {"master": {"count": 0}, "playlist": {"count": 40}, "segment": {"count": 50}}},
            "origin": {"nginx": {"scrapes_ok": 9, "scrapes_failed": 0}},
            "viewers": {"target": 5, "streaming_at_stop": 4}
        })
    }

    #[test]
    fn adaptive_viewers_are_judged_by_their_last_variant_and_switches() {
        let e = expect(
            "[variants]\nfinal_bandwidth_at_most = 433400\nfinal_bandwidth_at_least = 200000\n\
             switches_down_at_least = 1\nswitches_up_at_least = 1",
        );
        let v = e.variants.clone().unwrap();
        let judged = |rows: Value, up: u64| {
            let r = serde_json::json!({"viewers": {"rows": rows}, "variants": {"switches_up": up, "switches_down": 2}});
            let mut out = Vec::new();
            variants(&v, &r, &mut out);
            out.iter().map(|c| c.passed).collect::<Vec<_>>()
        };
        let fits = serde_json::json!([{"variant_bandwidth": 433400}, {"variant_bandwidth": 251900}]);
        assert_eq!(judged(fits, 1), [true, true, true, true]);
        let above = serde_json::json!([{"variant_bandwidth": 873400}]);
        assert_eq!(judged(above, 0), [true, false, false, true], "too high, and no switch up");
        let unknown = serde_json::json!([{"variant_bandwidth": null}]);
        assert_eq!(judged(unknown, 1), [false, false, true, true], "a viewer without a variant fails both");
        assert_eq!(judged(serde_json::json!([]), 1)[..2], [false, false], "no viewers: nothing shown");
    }

    #[test]
    fn access_log_and_exporter_accounting() {
        let e = expect(
            "access_log_counts = true\naccess_log_bytes_within = 0.01\nnginx_requests_match = true\n\
             all_streaming_at_end = true\norigin_cpu_below = 0.2",
        );
        let log = Logged { playlists: 40, segments: 50, bytes: 1005, ..Logged::default() };
        let fig = Figures { nginx_requests: Some(90.0 + 9.0 + 12.0 + 1.0), ..Figures::default() };
        let r = report();
        let checks = run(&Inputs {
            lifted: None,
            expect: &e,
            report: &r,
            access_log: Some(&log),
            exporters: &fig,
            harness_nginx_scrapes: 12,
            origin_cpu: Some((1.0, 20.0)),
            loss: Some((5.0, Ok((2000, 95)))),
            load: None,
        });
        let verdicts: Vec<(bool, &str)> = checks.iter().map(|c| (c.passed, c.name.as_str())).collect();
        assert_eq!(
            verdicts,
            [
                (true, "requests by kind equal the viewers' lines in nginx's access log"),
                (true, "swarm bytes within 1% of nginx's access log"),
                (true, "nginx exporter counted the swarm's requests, its probe and the exporter polls"),
                (true, "origin CPU below 20% of a core"),
                (true, "the impairment dropped about 5% of the packets"),
                (false, "the swarm's generator-bound verdict agrees with the machine's load"),
                (false, "every viewer was streaming at the end"),
            ]
        );
        let off = Logged { segments: 49, ..log };
        let c = run(&Inputs {
            lifted: None,
            expect: &e,
            report: &r,
            access_log: Some(&off),
            exporters: &fig,
            harness_nginx_scrapes: 12,
            origin_cpu: None,
            loss: Some((5.0, Ok((2000, 10)))),
            load: None,
        });
        assert!(!c[0].passed && c[0].detail.contains("49 segments"), "{:?}", c[0]);
        assert!(!c[3].passed && c[3].detail == "not measured");
        assert!(!c[4].passed && c[4].detail.starts_with("10 of 2000 packets = 0.50%"), "{:?}", c[4]);
    }

    #[test]
    fn the_generator_verdict_is_judged_by_the_machines_load() {
        let load = |samples: Vec<f64>| testkit::cpu::Load { every: Duration::from_secs(1), samples };
        let report = |bound: bool| serde_json::json!({"generator": {"bound": bound, "reasons": if bound { vec!["host CPU above 85 % for 10 s"] } else { vec![] }}});
        let quiet = load(vec![0.3; 30]);
        let busy = load([vec![0.3; 5], vec![0.9; 12], vec![0.3; 5]].concat());
        let saturated = load(vec![0.99; 20]);
        let verdict = |bound, l: &testkit::cpu::Load| generator_verdict(&report(bound), Some(l));
        assert!(verdict(false, &quiet).passed);
        assert!(!verdict(true, &quiet).passed, "bound on a quiet machine is wrong");
        assert!(verdict(true, &busy).passed && verdict(false, &busy).passed, "either, on a busy one");
        assert!(verdict(true, &saturated).passed);
        let missed = verdict(false, &saturated);
        assert!(!missed.passed && missed.detail.contains("above 95 % for 20.0 s"), "{missed:?}");
        assert!(!generator_verdict(&serde_json::json!({}), Some(&quiet)).passed, "no section");
    }

    #[test]
    fn the_access_log_counts_only_viewers() {
        let text = "1.0 127.0.0.1 \"GET /stream.m3u8 HTTP/1.1\" 200 300 rt=0.000 conn=1 reqs=1 \"Lavf/59 viewer/0\"\n\
                    1.1 127.0.0.1 \"GET /s1.ts HTTP/1.1\" 200 5000 rt=0.000 conn=1 reqs=2 \"Lavf/59 viewer/0\"\n\
                    1.2 127.0.0.1 \"GET /stream.m3u8 HTTP/1.1\" 200 300 rt=0.000 conn=2 reqs=1 \"hls-swarm/0.1.0 probe\"\n";
        assert_eq!(logged(text), Logged { playlists: 1, segments: 1, bytes: 5300, ..Logged::default() });
        // The ll-hls profile's names: blocking reloads are playlists; parts, whole segments and
        // the init section each their own kind.
        let ll = "1.0 127.0.0.1 \"GET /stream.m3u8?_HLS_msn=9&_HLS_part=2 HTTP/1.1\" 200 900 rt=0.300 conn=1 reqs=1 \"x viewer/3\"\n\
                  1.1 127.0.0.1 \"GET /init.mp4 HTTP/1.1\" 200 800 rt=0.000 conn=1 reqs=2 \"x viewer/3\"\n\
                  1.2 127.0.0.1 \"GET /part00009.2.mp4 HTTP/1.1\" 200 40000 rt=0.000 conn=1 reqs=3 \"x viewer/3\"\n\
                  1.3 127.0.0.1 \"GET /seg00008.mp4 HTTP/1.1\" 200 240000 rt=0.000 conn=1 reqs=4 \"x viewer/3\"\n\
                  1.4 127.0.0.1 \"GET /favicon.ico HTTP/1.1\" 404 0 rt=0.000 conn=1 reqs=5 \"x viewer/3\"\n";
        assert_eq!(
            logged(ll),
            Logged { playlists: 1, segments: 1, parts: 1, inits: 1, other: 1, bytes: 281_700 }
        );
    }
}
