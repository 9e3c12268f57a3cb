//! A scenario file (`testlab/scenarios/NAME.toml`) as data: parsed with unknown keys refused,
//! then validated once, before anything is started (the rules are in `validate.rs`).

mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Why a scenario file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file cannot be read.
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// Parsed, but inconsistent.
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// The scenario directory cannot be listed.
    #[error("cannot list scenarios in {dir}")]
    List {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Which run includes the scenario.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Part of `cargo test -p testlab` (and `make test`).
    #[default]
    Fast,
    /// Ignored by default; `cargo test -p testlab -- --ignored` (and `make test-lab`).
    Slow,
}

/// Where the origin runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// `hls-origin serve` as a child process on loopback, every port free-picked.
    #[default]
    Process,
    /// `hls-origin serve` inside a namespace of its own at 10.177.0.10, behind a bridge in a
    /// second namespace where the swarm runs (root).
    Netns,
    /// The origin MicroVM (`hls-lab microvm start --net tap`) on a TAP of a bridge in a
    /// namespace where the swarm runs (root, qemu).
    Microvm,
}

/// The origin's media source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A loop encoded once and republished live: next to no CPU.
    #[default]
    Replay,
    /// A real-time ffmpeg encode.
    Encode,
}

impl Source {
    /// The `--source` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Replay => "replay",
            Source::Encode => "encode",
        }
    }
}

/// `[origin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginSpec {
    /// `hls-origin` profile.
    #[serde(default = "default_profile")]
    pub profile: String,
    /// Media source.
    #[serde(default)]
    pub source: Source,
    /// Where the origin runs.
    #[serde(default)]
    pub placement: Placement,
    /// Picture width (ABR: the top rung).
    pub width: Option<u32>,
    /// Picture height (ABR: the top rung).
    pub height: Option<u32>,
    /// Video bitrate, kbit/s (ABR: the top rung).
    pub bitrate: Option<u32>,
    /// Frames per second.
    pub fps: Option<u32>,
    /// Segment length in seconds.
    pub segment_seconds: Option<u32>,
    /// Segments listed per media playlist.
    pub window: Option<u32>,
    /// Segments in the replay loop.
    pub loop_segments: Option<u32>,
}

fn default_profile() -> String {
    "default".to_owned()
}

/// `[network]`: impairment on the link between the swarm's and the origin's namespaces, in
/// both directions (tc netem on each end of the veth; see docs/testlab.md for the fallback
/// when the kernel has no netem).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Impairment {
    /// Added one-way delay.
    #[serde(default, deserialize_with = "opt_duration")]
    pub delay: Option<Duration>,
    /// Random packet loss, percent (0 to 100).
    pub loss_percent: Option<f64>,
    /// Bandwidth limit, kbit/s.
    pub rate_kbit: Option<u32>,
    /// Remove the impairment this long after the swarm started (the link is whole again).
    #[serde(default, deserialize_with = "opt_duration")]
    pub lift_at: Option<Duration>,
}

impl Impairment {
    /// `loss 5% delay 20ms rate 10000kbit`, as shown in results.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = self.loss_percent {
            parts.push(format!("loss {l}%"));
        }
        if let Some(d) = self.delay {
            parts.push(format!("delay {}", humantime::format_duration(d)));
        }
        if let Some(r) = self.rate_kbit {
            parts.push(format!("rate {r}kbit"));
        }
        if let Some(at) = self.lift_at {
            parts.push(format!("until {}", humantime::format_duration(at)));
        }
        parts.join(" ")
    }
}

/// `pause = { child = "nginx", duration = "5s" }`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    /// `nginx`, `ffmpeg` (encode source), `node-exporter` or `nginx-exporter`.
    pub child: String,
    /// How long it stays stopped.
    #[serde(deserialize_with = "duration")]
    pub duration: Duration,
}

/// `ll_hls = { missing = 2 }`, `ll_hls = { early = true, slow = 1 }`, ...: an LL-HLS
/// profile's fault switches (`POST /fault/ll-hls`), one or more at once.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LlHlsFault {
    /// The next N parts advertised and then answered 404 (0 clears that).
    pub missing: Option<u32>,
    /// Blocking reloads answered at once, before the part asked for exists (`true`), or held
    /// again (`false`).
    pub early: Option<bool>,
    /// The next N blocking reloads answered three target durations and a second after they
    /// arrive (0 to 10).
    pub slow: Option<u32>,
    /// The next N playlists hint a part that is never listed (0 to 100).
    pub bad_hints: Option<u32>,
    /// The next N playlists each start a segment before the one served before (0 to 100).
    pub backwards: Option<u32>,
    /// `PART-HOLD-BACK` advertised at two part targets (`true`) or as usual (`false`).
    pub short_hold_back: Option<bool>,
}

impl LlHlsFault {
    /// No switch set.
    pub fn is_empty(&self) -> bool {
        *self == LlHlsFault::default()
    }

    /// The switches as `/fault/ll-hls` takes them, e.g. `missing=2&early=on`.
    pub fn query(&self) -> String {
        let on = |b: bool| if b { "on" } else { "off" }.to_owned();
        let switches = [
            ("missing", self.missing.map(|n| n.to_string())),
            ("early", self.early.map(on)),
            ("slow", self.slow.map(|n| n.to_string())),
            ("bad_hints", self.bad_hints.map(|n| n.to_string())),
            ("backwards", self.backwards.map(|n| n.to_string())),
            ("short_hold_back", self.short_hold_back.map(on)),
        ];
        let set: Vec<String> =
            switches.into_iter().filter_map(|(k, v)| Some(format!("{k}={}", v?))).collect();
        set.join("&")
    }
}

/// `http = { status = 404, from = 1, to = 3 }`: segments with media sequence numbers from
/// `edge + from` to `edge + to` answer `status`, where `edge` is the newest segment listed
/// when the fault fires.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpFault {
    /// 403, 404, 410, 500, 502 or 503.
    pub status: u16,
    /// First segment, relative to the live edge (1 = the next one published).
    pub from: i64,
    /// Last segment, relative to the live edge.
    pub to: i64,
    /// Clear the fault after this long (else it lasts to the end of the run).
    #[serde(default, deserialize_with = "opt_duration")]
    pub clear_after: Option<Duration>,
}

/// `[[fault]]`: one fault at a time after the swarm started; exactly one action.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// When, after the swarm was started.
    #[serde(deserialize_with = "duration")]
    pub at: Duration,
    /// Freeze publishing for this long (replay source only).
    #[serde(default, deserialize_with = "opt_duration")]
    pub hold: Option<Duration>,
    /// Stop a child of the origin for a while.
    pub pause: Option<Pause>,
    /// SIGKILL a child of the origin (its supervisor restarts it).
    pub kill: Option<String>,
    /// An HTTP status for a range of segments.
    pub http: Option<HttpFault>,
    /// The `ll-hls` profile's switches.
    pub ll_hls: Option<LlHlsFault>,
}

/// What a fault does, once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Freeze the playlist.
    Hold(Duration),
    /// Stop a child, start it again after the duration.
    Pause(Pause),
    /// SIGKILL a child.
    Kill(String),
    /// Status for a segment range.
    Http(HttpFault),
    /// LL-HLS: missing parts, early reload answers.
    LlHls(LlHlsFault),
}

impl Fault {
    /// The one action this fault names (validated by [`Scenario::validate`]).
    pub fn action(&self) -> Option<Action> {
        let mut found = Vec::new();
        if let Some(d) = self.hold {
            found.push(Action::Hold(d));
        }
        if let Some(p) = &self.pause {
            found.push(Action::Pause(p.clone()));
        }
        if let Some(k) = &self.kill {
            found.push(Action::Kill(k.clone()));
        }
        if let Some(h) = &self.http {
            found.push(Action::Http(h.clone()));
        }
        if let Some(l) = &self.ll_hls {
            found.push(Action::LlHls(l.clone()));
        }
        (found.len() == 1).then(|| found.remove(0))
    }

    /// `8s hold 6s`, `8s pause nginx 5s`, … as shown in results and snapshots.
    pub fn describe(&self) -> String {
        let at = humantime::format_duration(self.at);
        match self.action() {
            Some(Action::Hold(d)) => format!("{at} hold {}", humantime::format_duration(d)),
            Some(Action::Pause(p)) => {
                format!("{at} pause {} {}", p.child, humantime::format_duration(p.duration))
            }
            Some(Action::Kill(c)) => format!("{at} kill {c}"),
            Some(Action::Http(h)) => {
                let clear = h.clear_after.map(|d| format!(" for {}", humantime::format_duration(d)));
                format!(
                    "{at} http {} edge{:+}..edge{:+}{}",
                    h.status,
                    h.from,
                    h.to,
                    clear.unwrap_or_default()
                )
            }
            Some(Action::LlHls(l)) => {
                // `missing=2&early=on` as ` missing 2 early on`.
                let switches: String =
                    l.query().split('&').map(|kv| format!(" {}", kv.replace('=', " "))).collect();
                format!("{at} ll-hls{switches}")
            }
            None => format!("{at} (invalid)"),
        }
    }
}

/// `[swarm]`: what `hls-swarm` is asked to do. The harness adds `--tui=false`, `--metrics`,
/// `--report`, `--origin-metrics`/`--nginx-metrics`, every `--assert` and the URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmSpec {
    /// `--clients`.
    pub clients: u32,
    /// `--ramp-rate`, viewers started per second.
    #[serde(default = "default_ramp")]
    pub ramp_rate: f64,
    /// `--duration`.
    #[serde(deserialize_with = "duration")]
    pub duration: Duration,
    /// `--engine`: ffmpeg (the default) or native.
    pub engine: Option<String>,
    /// `--variant`: all, highest, lowest or first.
    pub variant: Option<String>,
    /// Ask the origin for this path instead of its playlist (e.g. one that does not exist).
    pub path: Option<String>,
    /// More `hls-swarm` flags, passed as given.
    #[serde(default)]
    pub args: Vec<String>,
    /// Point `--origin-metrics`/`--nginx-metrics` at the origin's exporters.
    #[serde(default = "yes")]
    pub origin_metrics: bool,
}

fn default_ramp() -> f64 {
    5.0
}

fn yes() -> bool {
    true
}

/// `[[prometheus.query]]`: a PromQL query against the Prometheus server that scraped the
/// swarm, compared with a value of the swarm's JSON report.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// PromQL, evaluated at the end of the run; must return one sample.
    pub promql: String,
    /// JSON pointer into the swarm's report (`/requests/by_kind/segment/count`).
    pub equals: Option<String>,
    /// How far below the report's value Prometheus may be (what the swarm did after the last
    /// scrape); never above.
    #[serde(default)]
    pub tolerance: f64,
    /// A lower bound instead of a report value.
    pub at_least: Option<f64>,
}

/// `[prometheus]`: a real Prometheus server scrapes the swarm's `/metrics` during the run.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSpec {
    /// Scrape interval.
    #[serde(default = "default_scrape", deserialize_with = "duration")]
    pub scrape_interval: Duration,
    /// Checks made at the end.
    #[serde(default, rename = "query")]
    pub queries: Vec<Query>,
    /// Grafana dashboards (workspace-relative JSON files) whose every panel query must return
    /// data over the run.
    #[serde(default)]
    pub dashboards: Vec<String>,
    /// Also scrape the origin's node and nginx exporters (jobs `hls-origin-node`,
    /// `hls-origin-nginx`), as `hls-lab observe` does. Their polls are nginx requests
    /// `nginx_requests_match` does not count.
    #[serde(default)]
    pub scrape_origin: bool,
    /// Also scrape a node exporter reading made-up RAPL counters (job `hls-origin-rapl`), for
    /// the energy panels on a machine without RAPL.
    pub fake_rapl: Option<FakeRaplSpec>,
}

/// `fake_rapl = { package_watts = 40.0, dram_watts = 5.0 }`: the power the counters advance at.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FakeRaplSpec {
    pub package_watts: f64,
    pub dram_watts: f64,
}

fn default_scrape() -> Duration {
    Duration::from_secs(1)
}

/// `[expect]`: how the run must turn out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The swarm's exit code (5 when an `--assert` fails; see the README).
    #[serde(default)]
    pub exit_code: i32,
    /// `--assert` expressions for the swarm.
    #[serde(default)]
    pub assert: Vec<String>,
    /// Swarm bytes within this fraction of the bytes nginx logged for the viewers (needs
    /// the `logged` or `debug` profile).
    pub access_log_bytes_within: Option<f64>,
    /// Swarm requests by kind equal the viewers' lines in nginx's access log (`logged`/`debug`).
    #[serde(default)]
    pub access_log_counts: bool,
    /// The nginx exporter's request counter moved by exactly the swarm's requests, its probe,
    /// and the exporter polls.
    #[serde(default)]
    pub nginx_requests_match: bool,
    /// The origin's process tree used less than this fraction of one core over the run.
    pub origin_cpu_below: Option<f64>,
    /// Every viewer was streaming when the run ended (recovered from whatever happened).
    #[serde(default)]
    pub all_streaming_at_end: bool,
    /// Adaptive viewers (`variant = "abr"`): where they ended and how they switched.
    pub variants: Option<VariantsExpect>,
    /// Compare the normalized result with `scenarios/snapshots/NAME.snap`.
    #[serde(default = "yes")]
    pub snapshot: bool,
    /// insta selectors (`.swarm.viewers.restarts`) whose value is replaced by `[redacted]` in
    /// the snapshot: for figures this scenario cannot make deterministic.
    #[serde(default)]
    pub redact: Vec<String>,
}

/// `[expect.variants]`: what adaptive viewers did, from the swarm's report.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VariantsExpect {
    /// Every viewer's last segment came from the variant with this `BANDWIDTH`.
    pub final_bandwidth: Option<u64>,
    /// Every viewer's last segment came from a variant of at least this `BANDWIDTH`.
    pub final_bandwidth_at_least: Option<u64>,
    /// Every viewer's last segment came from a variant of at most this `BANDWIDTH`.
    pub final_bandwidth_at_most: Option<u64>,
    /// At least this many switches up, over all viewers.
    #[serde(default)]
    pub switches_up_at_least: u64,
    /// At least this many switches down.
    #[serde(default)]
    pub switches_down_at_least: u64,
}

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The file's stem; also the snapshot's name.
    #[serde(skip)]
    pub name: String,
    /// Where it was read from.
    #[serde(skip)]
    pub path: PathBuf,
    /// One line: what the scenario shows.
    pub description: String,
    /// Fast (default run) or slow (`--ignored`).
    #[serde(default)]
    pub tier: Tier,
    /// The origin.
    pub origin: OriginSpec,
    /// Link impairment (netns and microvm placements).
    pub network: Option<Impairment>,
    /// Faults on a timeline.
    #[serde(default, rename = "fault")]
    pub faults: Vec<Fault>,
    /// The swarm.
    pub swarm: SwarmSpec,
    /// A Prometheus server scraping the swarm.
    pub prometheus: Option<PrometheusSpec>,
    /// Expectations.
    pub expect: Expect,
}

impl Scenario {
    /// Parses and validates `text`, naming the scenario after `path`'s stem.
    ///
    /// # Errors
    /// [`Error::Parse`] or [`Error::Invalid`], naming the file and the problem.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, Error> {
        let mut s: Scenario = toml::from_str(text)
            .map_err(|e| Error::Parse { path: path.to_owned(), message: e.to_string().trim().to_owned() })?;
        s.name = path.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        s.path = path.to_owned();
        s.validate().map_err(|message| Error::Invalid { path: path.to_owned(), message })?;
        Ok(s)
    }

    /// Reads and validates one file.
    ///
    /// # Errors
    /// As [`Scenario::parse`], or [`Error::Read`].
    pub fn load(path: &Path) -> Result<Scenario, Error> {
        let text =
            std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
        Scenario::parse(path, &text)
    }

    /// Every `*.toml` in `dir`, sorted by name.
    ///
    /// # Errors
    /// The directory cannot be listed, or a file is invalid (the first one, by name).
    pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, Error> {
        let entries = std::fs::read_dir(dir).map_err(|source| Error::List { dir: dir.to_owned(), source })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
            .collect();
        // By scenario name (the file stem): `smoke` before `smoke-native`.
        paths.sort_by(|a, b| a.file_stem().cmp(&b.file_stem()));
        paths.iter().map(|p| Scenario::load(p)).collect()
    }

    /// What the harness must have to run this scenario, beyond the workspace binaries.
    pub fn needs_root(&self) -> bool {
        self.origin.placement != Placement::Process
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| {
        serde::de::Error::custom(format!("{s:?}: {e} (expected a duration such as \"8s\" or \"500ms\")"))
    })
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOKE: &str = r#"
description = "smoke"
[origin]
profile = "logged"
[swarm]
clients = 2
duration = "10s"
[expect]
assert = ["error_rate==0"]
access_log_counts = true
"#;

    fn parse(text: &str) -> Result<Scenario, Error> {
        Scenario::parse(Path::new("/x/smoke.toml"), text)
    }

    #[test]
    fn a_minimal_file_gets_the_defaults() {
        let s = parse(SMOKE).unwrap();
        assert_eq!(s.name, "smoke");
        assert_eq!(s.tier, Tier::Fast);
        assert_eq!(s.origin.placement, Placement::Process);
        assert_eq!(s.origin.source, Source::Replay);
        assert_eq!(s.swarm.ramp_rate, 5.0);
        assert!(s.swarm.origin_metrics && s.expect.snapshot);
        assert_eq!(s.expect.exit_code, 0);
        assert!(!s.needs_root());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let e = parse(&SMOKE.replace("clients = 2", "clients = 2\nviewers = 3")).unwrap_err();
        assert!(e.to_string().contains("unknown field `viewers`"), "{e}");
        let e = parse(&SMOKE.replace("[swarm]", "[origin2]\n[swarm]")).unwrap_err();
        assert!(e.to_string().contains("origin2"), "{e}");
    }

    #[test]
    fn faults_parse_and_describe() {
        let text = format!(
            "{SMOKE}\n[[fault]]\nat = \"4s\"\npause = {{ child = \"nginx\", duration = \"5s\" }}\n\
             [[fault]]\nat = \"6s\"\nhold = \"3s\"\n[[fault]]\nat = \"7s\"\n\
             http = {{ status = 404, from = 1, to = 2, clear_after = \"2s\" }}\n"
        );
        let s = parse(&text).unwrap();
        let d: Vec<String> = s.faults.iter().map(Fault::describe).collect();
        assert_eq!(d, ["4s pause nginx 5s", "6s hold 3s", "7s http 404 edge+1..edge+2 for 2s"]);
    }

    const LL_HLS: &str = r#"
description = "ll-hls"
[origin]
profile = "ll-hls"
[swarm]
engine = "native"
clients = 2
duration = "10s"
[expect]
"#;

    fn with_fault(base: &str, at: &str, ll_hls: &str) -> String {
        format!("{base}\n[[fault]]\nat = \"{at}\"\nll_hls = {ll_hls}\n")
    }

    #[test]
    fn ll_hls_faults_parse_describe_and_become_the_switches_query() {
        let text = [
            ("2s", "{ missing = 3 }"),
            ("3s", "{ early = true, slow = 2 }"),
            ("4s", "{ bad_hints = 3, backwards = 8 }"),
            ("5s", "{ short_hold_back = true }"),
            ("6s", "{ missing = 0, early = false, slow = 0, bad_hints = 0, backwards = 0, short_hold_back = false }"),
        ]
        .iter()
        .fold(LL_HLS.to_owned(), |text, (at, f)| with_fault(&text, at, f));
        let s = parse(&text).unwrap();
        let d: Vec<String> = s.faults.iter().map(Fault::describe).collect();
        assert_eq!(
            d,
            [
                "2s ll-hls missing 3",
                "3s ll-hls early on slow 2",
                "4s ll-hls bad_hints 3 backwards 8",
                "5s ll-hls short_hold_back on",
                "6s ll-hls missing 0 early off slow 0 bad_hints 0 backwards 0 short_hold_back off",
            ]
        );
        let queries: Vec<String> = s
            .faults
            .iter()
            .map(|f| match f.action() {
                Some(Action::LlHls(l)) => l.query(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            queries,
            [
                "missing=3",
                "early=on&slow=2",
                "bad_hints=3&backwards=8",
                "short_hold_back=on",
                "missing=0&early=off&slow=0&bad_hints=0&backwards=0&short_hold_back=off",
            ]
        );
    }

    #[test]
    fn bad_ll_hls_faults_are_refused_naming_the_key_and_what_is_accepted() {
        for (fault, want) in [
            ("{ }", "fault ll_hls: expected one or more of missing = N, early = true|false, slow = N"),
            ("{ missing = 101 }", "fault ll_hls missing = 101: expected 0 to 100 parts"),
            ("{ slow = 11 }", "fault ll_hls slow = 11: expected 0 to 10 blocking reloads"),
            ("{ bad_hints = 101 }", "fault ll_hls bad_hints = 101: expected 0 to 100 playlists"),
            (
                "{ early = true, backwards = 101 }",
                "fault ll_hls backwards = 101: expected 0 to 100 playlists",
            ),
            ("{ hints = 1 }", "unknown field `hints`"),
            ("{ short_hold_back = \"on\" }", "invalid type"),
            ("{ slow = -1 }", "invalid value"),
        ] {
            let e = parse(&with_fault(LL_HLS, "2s", fault)).unwrap_err();
            assert!(e.to_string().contains(want), "{fault}: {e}");
        }
        let plain =
            with_fault(&LL_HLS.replace("\"ll-hls\"\n[swarm]", "\"logged\"\n[swarm]"), "2s", "{ slow = 1 }");
        let e = parse(&plain).unwrap_err();
        assert!(e.to_string().contains("needs an LL-HLS profile"), "{e}");
        assert!(parse(&with_fault(LL_HLS, "2s", "{ slow = 10, backwards = 100 }")).is_ok());
    }

    #[test]
    fn inconsistent_files_are_refused_with_the_reason() {
        let cases = [
            ("[swarm]", "[network]\nloss_percent = 5.0\n[swarm]", "needs origin.placement = \"netns\""),
            ("clients = 2", "clients = 0", "expected at least 1"),
            ("duration = \"10s\"", "duration = \"10s\"\nvariant = \"best\"", "expected all, highest"),
            ("duration = \"10s\"", "duration = \"10s\"\nargs = [\"--report=x.json\"]", "set by the harness"),
            ("profile = \"logged\"", "profile = \"default\"", "keeps no access log"),
            ("duration = \"10s\"", "duration = \"ten\"", "expected a duration"),
        ];
        for (from, to, want) in cases {
            let e = parse(&SMOKE.replace(from, to)).unwrap_err();
            assert!(e.to_string().contains(want), "{to}: {e}");
        }
        let two = format!("{SMOKE}\n[[fault]]\nat = \"4s\"\nkill = \"ffmpeg\"\nhold = \"2s\"\n");
        assert!(parse(&two).unwrap_err().to_string().contains("exactly one of"));
        let late = format!("{SMOKE}\n[[fault]]\nat = \"10s\"\nkill = \"ffmpeg\"\n");
        assert!(parse(&late).unwrap_err().to_string().contains("after the end"));
        let encode = format!(
            "{}\n[[fault]]\nat = \"1s\"\nhold = \"2s\"\n",
            SMOKE.replace("[swarm]", "source = \"encode\"\n[swarm]")
        );
        assert!(parse(&encode).unwrap_err().to_string().contains("replay source"));
    }

    #[test]
    fn the_shipped_scenarios_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let all = Scenario::load_dir(&dir).unwrap();
        assert!(!all.is_empty());
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }
}
