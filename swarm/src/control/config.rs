//! The validated run configuration: built once from the [`Cli`], before any side effect.

use std::net::IpAddr;
use std::time::Duration;

use url::Url;

use crate::control::cli::{Cli, LogFormat, MeasureMode};
use crate::control::fleet::{self, Shard};
use crate::control::streams::Streams;
use crate::engine::ffmpeg::command::FfmpegOptions;
use crate::engine::limits::{parse_size, Limits, LINE_FLAG, PLAYLIST_FLAG, URI_FLAG};
use crate::engine::secrets::Secrets;
use crate::engine::settings::{EngineKind, Header, HttpSettings, SessionLength, Variant, VariantMix};
use crate::engine::trust::Trust;
use crate::measure::origin::Targets;
use crate::measure::snapshot::Measure;
use crate::output::baseline::{self, PastRun};
use crate::output::report;
use crate::output::thresholds::Assertion;
use kit::playlist::Bounds;

/// Most viewers one swarm may run; past this, split the load over several machines.
pub const MAX_CLIENTS: u32 = 50_000;
/// Fastest ramp accepted, viewers per second.
pub const MAX_RAMP_RATE: f64 = 1_000.0;
/// Longest `--startup-buffer`: more than any player's forward buffer goal.
pub const MAX_STARTUP_BUFFER: Duration = Duration::from_secs(120);
/// In a `--report` path, replaced by the shard's index (`--shard`).
pub const SHARD_MARK: &str = "{shard}";
/// URL used by `--print-cmd` when none is given.
pub const PLACEHOLDER_URL: &str = "http://origin.invalid/stream.m3u8";

/// Everything a run needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The (first) stream. Never printed as it is: show [`Config::shown_url`].
    pub url: Url,
    /// Every stream of the run and each one's share of the viewers (`url` is the first).
    pub streams: Streams,
    /// This process's shard of a fleet (`--shard`); `None` runs every viewer.
    pub shard: Option<Shard>,
    /// The run's name, shared by its shards.
    pub run_id: String,
    /// When the viewers start (`--start-at`); `None`: at once.
    pub start_at: Option<std::time::SystemTime>,
    /// What is hidden from every output (URL credentials, secret parameters and headers).
    pub secrets: Secrets,
    /// Concurrent viewers.
    pub clients: u32,
    /// Viewers started per second.
    pub ramp_rate: f64,
    /// Upper bound of the random start delay.
    pub ramp_jitter: Duration,
    /// Run length; `None` runs until stopped.
    pub duration: Option<Duration>,
    /// What plays each viewer.
    pub engine: EngineKind,
    /// Rendition choice.
    pub variant: Variant,
    /// `--variant-mix`: per-viewer choices instead of `variant`.
    pub variant_mix: Option<VariantMix>,
    /// `--cmcd`: how native viewers send Common Media Client Data.
    pub cmcd: Option<crate::engine::native::cmcd::Mode>,
    /// `--http2`: native viewers speak HTTP/2 where the origin's TLS offers it.
    pub http2: bool,
    /// Restart stalled viewers.
    pub restart_on_stall: bool,
    /// Stall threshold, if given.
    pub stall_timeout: Option<Duration>,
    /// Failed-start threshold, if given.
    pub startup_timeout: Option<Duration>,
    /// Media buffered before playback starts or resumes (zero: one segment).
    pub startup_buffer: Duration,
    /// `--session-length`: each session's length before the viewer zaps.
    pub session_length: Option<SessionLength>,
    /// `--random-start`: native sessions of a finished playlist start at a random point.
    pub random_start: bool,
    /// Seed for jitter and backoff.
    pub seed: u64,
    /// How each FFmpeg viewer is run.
    /// What every viewer's requests carry, whatever engine makes them.
    pub http: HttpSettings,
    /// The FFmpeg engine's own settings.
    pub ffmpeg: FfmpegOptions,
    /// Show the dashboard (already false when stdout is not a terminal).
    pub tui: bool,
    /// Status line period without the dashboard.
    pub status_interval: Duration,
    /// Log verbosity: 0 info, 1 debug, 2+ trace.
    pub verbose: u8,
    /// Log format.
    pub log_format: LogFormat,
    /// Skip preflight.
    pub skip_preflight: bool,
    /// Only print the FFmpeg command.
    pub print_cmd: bool,
    /// Only examine the stream and print a verdict.
    pub check: bool,
    /// Where `/metrics` listens; `None` when off.
    pub metrics: Option<std::net::SocketAddr>,
    /// How viewers are measured.
    pub measure: Measure,
    /// The origin's exporters, if any were named.
    pub origin_metrics: Option<Targets>,
    /// Their scrape interval.
    pub origin_metrics_interval: Duration,
    /// `--origin-watts-per-core`: estimate the origin's energy without RAPL.
    pub origin_watts_per_core: Option<f64>,
    /// `--assert` thresholds, checked at the end (those with `baseline` bound to it).
    pub asserts: Vec<Assertion>,
    /// `--baseline`: the earlier run the thresholds may compare with.
    pub baseline: Option<PastRun>,
    /// `--report` files, written at the end (an event log: as the run goes).
    pub reports: Vec<report::Target>,
    /// `--events-max-size`: the event log's bound, in bytes.
    pub events_max_size: u64,
}

/// A configuration value that cannot be used; the message names it and what is accepted.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// No URL.
    #[error("no stream URL given: pass an http:// or https:// URL of a master or media playlist")]
    MissingUrl,
    /// A `--stream` or `--streams` entry that cannot be used.
    #[error("{at}: {reason}")]
    Streams {
        /// The flag and value (or file and line) at fault.
        at: String,
        /// Why, and what is accepted.
        reason: String,
    },
    /// Streams given both ways.
    #[error(
        "the stream is given both as the URL argument and with --stream/--streams: give every stream with --stream or --streams"
    )]
    UrlAndStreams,
    /// `--check` with several streams.
    #[error("--check examines one stream: give its URL alone ({count} streams given)")]
    CheckOneStream {
        /// Streams given.
        count: usize,
    },
    /// A fleet flag (`--shard`, `--shards`, `--run-id`, `--start-at`) that cannot be used.
    #[error("{flag} {value}: {reason}")]
    Fleet {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
        /// Why, and what is accepted.
        reason: String,
    },
    /// Not a URL.
    #[error("invalid URL '{url}': {reason}; expected an http:// or https:// URL of an HLS playlist")]
    BadUrl {
        /// The value given.
        url: String,
        /// Parser's complaint.
        reason: String,
    },
    /// Wrong scheme.
    #[error("unsupported URL scheme '{scheme}' in '{url}': only http and https are accepted")]
    BadScheme {
        /// The value given.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// Clients out of range.
    #[error("--clients {value} is out of range: accepted 1 to {max}")]
    Clients {
        /// The value given.
        value: u32,
        /// Upper bound.
        max: u32,
    },
    /// Ramp rate out of range.
    #[error(
        "--ramp-rate {value} is out of range: accepted more than 0 and at most {max} viewers per second"
    )]
    RampRate {
        /// The value given.
        value: f64,
        /// Upper bound.
        max: f64,
    },
    /// Zero timeout.
    #[error("--timeout {value} is out of range: it must be longer than 0")]
    Timeout {
        /// The value given, formatted.
        value: String,
    },
    /// Zero startup timeout.
    #[error("--startup-timeout {value} is out of range: it must be longer than 0")]
    StartupTimeout {
        /// The value given, formatted.
        value: String,
    },
    /// Startup buffer out of range.
    #[error("--startup-buffer {value} is out of range: accepted 0 (one segment) to {max}")]
    StartupBuffer {
        /// The value given, formatted.
        value: String,
        /// Upper bound, formatted.
        max: &'static str,
    },
    /// Zero stall timeout.
    #[error("--stall-timeout {value} is out of range: it must be longer than 0")]
    StallTimeout {
        /// The value given, formatted.
        value: String,
    },
    /// Resolve without the safety gate.
    #[error(
        "--resolve {ip} needs --dangerous: it sends the load to another address than the URL's host names"
    )]
    ResolveNeedsDangerous {
        /// The value given.
        ip: String,
    },
    /// Resolve value not an IP.
    #[error("--resolve '{value}' is not an IP address: give an IPv4 or IPv6 address such as 10.177.0.10")]
    ResolveNotIp {
        /// The value given.
        value: String,
    },
    /// Malformed header.
    #[error("--header '{value}' is malformed: {reason}; expected 'Name: value'")]
    BadHeader {
        /// The value given.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Metrics address unreadable.
    #[error("--metrics '{value}' is not a listen address: give IP:PORT such as 0.0.0.0:17091 or 127.0.0.1:0, or 'off'")]
    Metrics {
        /// The value given.
        value: String,
    },
    /// An exporter URL that is not an http(s) URL.
    #[error("{flag} '{value}' is not usable: {reason}; expected an http:// or https:// URL such as http://10.177.0.10:9100/metrics")]
    ExporterUrl {
        /// Which flag.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// An origin host that makes no URL.
    #[error("--origin-metrics-host '{value}' is not a host name or IP address ({reason}); expected e.g. 10.177.0.10")]
    ExporterHost {
        /// The value given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// An unreadable `--assert`.
    #[error(transparent)]
    Assert(#[from] crate::output::thresholds::ParseError),
    /// A `--baseline` file that is not a report of this hls-swarm.
    #[error(
        "--baseline {0}; expected the JSON report (--report FILE.json) of an earlier run of this hls-swarm"
    )]
    Baseline(#[from] crate::output::baseline::ReadError),
    /// Scrape interval out of range.
    #[error("--origin-metrics-interval {value} is out of range: accepted 100ms to 5m")]
    ScrapeInterval {
        /// The value given, formatted.
        value: String,
    },
    /// A watt figure per core that is not a power.
    #[error("--origin-watts-per-core {value} is out of range: expected watts per busy core, more than 0 and at most 1000 (e.g. 10)")]
    WattsPerCore {
        /// The value given.
        value: f64,
    },
    /// A watt figure per core with no node exporter to read busy CPU time from.
    #[error("--origin-watts-per-core {0} estimates from the origin's node exporter: give --origin-metrics URL or --origin-metrics-host HOST too")]
    WattsWithoutNode(f64),
    /// A `--report` file that cannot be written.
    #[error("--report '{value}' is not usable: {reason}; {}", report::ACCEPTED)]
    Report {
        /// The value given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A size that cannot be read.
    #[error("{flag} '{value}' is not usable: {reason}; expected bytes, or a number with k, M or G (binary), KiB, MiB, GiB, or kB, MB, GB (decimal), e.g. 16M")]
    Size {
        /// Which flag.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// `--events-max-size` without an event log to bound.
    #[error("--events-max-size {0} bounds the event log: give --report FILE.ndjson (or .jsonl) too")]
    EventsMaxSizeAlone(String),
    /// An unusable `--ca-file`.
    #[error(transparent)]
    CaFile(#[from] crate::engine::trust::CaFileError),
    /// An option only the native engine has.
    #[error("{flag} needs --engine native: {reason}")]
    OnlyNative {
        /// The option.
        flag: String,
        /// Why.
        reason: &'static str,
    },
    /// An option the chosen engine does not have.
    #[error("{flag} does not apply to --engine native: {reason}")]
    NotNative {
        /// The option.
        flag: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// Control characters in the user agent.
    #[error("--user-agent '{value}' contains a line break or control character")]
    BadUserAgent {
        /// The value given.
        value: String,
    },
}

impl Config {
    /// The stream URL as it may be shown: credentials and secret parameters hidden (the first
    /// and how many more, with several streams).
    #[must_use]
    pub fn shown_url(&self) -> String {
        match self.streams.list.len() {
            1 => self.secrets.url(&self.url),
            n => format!("{} and {} more streams", self.secrets.url(&self.url), n - 1),
        }
    }

    /// The variant choice of viewer `id` (`--variant-mix`, else `--variant`).
    #[must_use]
    pub fn variant_for(&self, id: u32) -> Variant {
        self.variant_mix.as_ref().map_or(self.variant, |m| m.for_viewer(id))
    }

    /// The variant choice as one label: `highest`, or `mix` with `--variant-mix`.
    #[must_use]
    pub fn variant_label(&self) -> String {
        match &self.variant_mix {
            Some(_) => "mix".to_owned(),
            None => format!("{:?}", self.variant).to_lowercase(),
        }
    }

    /// Validates the command line. `stdout_is_terminal` decides whether the dashboard can run.
    ///
    /// # Errors
    /// The first value that cannot be used.
    pub fn from_cli(cli: &Cli, stdout_is_terminal: bool) -> Result<Config, ConfigError> {
        let print_cmd = cli.modes.print_cmd;
        let load = &cli.load;
        let streams = match (&cli.url, load.streams.is_empty() && load.streams_file.is_none(), print_cmd) {
            (Some(_), false, _) => return Err(ConfigError::UrlAndStreams),
            (Some(u), true, _) => Streams::one(parse_url(u)?),
            (None, false, _) => Streams::parse(&load.streams, load.streams_file.as_deref(), |u| {
                parse_url(u).map_err(|e| e.to_string())
            })
            .map_err(|(at, reason)| ConfigError::Streams { at, reason })?,
            (None, true, true) => Streams::one(parse_url(PLACEHOLDER_URL)?),
            (None, true, false) => return Err(ConfigError::MissingUrl),
        };
        if cli.modes.check && streams.many() {
            return Err(ConfigError::CheckOneStream { count: streams.list.len() });
        }
        let url = streams.list[0].url.clone();
        if load.engine == EngineKind::Native {
            if cli.measure.measure == MeasureMode::Log {
                let reason = "native viewers measure every request themselves (leave --measure out)";
                return Err(ConfigError::NotNative { flag: "--measure log", reason });
            }
            if print_cmd {
                let reason = "native viewers run no FFmpeg command";
                return Err(ConfigError::NotNative { flag: "--print-cmd", reason });
            }
        }
        if load.engine == EngineKind::Ffmpeg {
            let reason = "FFmpeg's HLS reader does not switch variants";
            if load.variant == Variant::Abr && load.variant_mix.is_none() {
                return Err(ConfigError::OnlyNative { flag: "--variant abr".into(), reason });
            }
            if let Some(mode) = cli.http.cmcd {
                let reason = "CMCD comes from the player's own state (FFmpeg reports none)";
                let flag = format!("--cmcd {}", format!("{mode:?}").to_lowercase());
                return Err(ConfigError::OnlyNative { flag, reason });
            }
            if cli.http.http2 {
                let reason = "FFmpeg's HTTP client speaks HTTP/1.1 only";
                return Err(ConfigError::OnlyNative { flag: "--http2".into(), reason });
            }
            if load.random_start {
                let reason = "FFmpeg's HLS reader starts a finished playlist at its beginning";
                return Err(ConfigError::OnlyNative { flag: "--random-start".into(), reason });
            }
            if let Some(mix) = &load.variant_mix {
                let reason = "an FFmpeg viewer's variant is chosen once for the whole run";
                return Err(ConfigError::OnlyNative { flag: format!("--variant-mix {mix}"), reason });
            }
        }
        if load.clients == 0 || load.clients > MAX_CLIENTS {
            return Err(ConfigError::Clients { value: load.clients, max: MAX_CLIENTS });
        }
        let (shard, run_id, start_at) = fleet_of(cli)?;
        if !(load.ramp_rate.is_finite() && load.ramp_rate > 0.0 && load.ramp_rate <= MAX_RAMP_RATE) {
            return Err(ConfigError::RampRate { value: load.ramp_rate, max: MAX_RAMP_RATE });
        }
        let http = &cli.http;
        if http.timeout.is_zero() {
            return Err(ConfigError::Timeout { value: humantime::format_duration(http.timeout).to_string() });
        }
        if let Some(st) = load.startup_timeout.filter(|d| d.is_zero()) {
            return Err(ConfigError::StartupTimeout { value: humantime::format_duration(st).to_string() });
        }
        if load.startup_buffer > MAX_STARTUP_BUFFER {
            let value = humantime::format_duration(load.startup_buffer).to_string();
            return Err(ConfigError::StartupBuffer { value, max: "2m" });
        }
        if let Some(st) = load.stall_timeout.filter(|d| d.is_zero()) {
            return Err(ConfigError::StallTimeout { value: humantime::format_duration(st).to_string() });
        }
        let resolve = match &http.resolve {
            None => None,
            Some(ip) if !http.dangerous => return Err(ConfigError::ResolveNeedsDangerous { ip: ip.clone() }),
            Some(ip) => Some(
                ip.trim_matches(|c| c == '[' || c == ']')
                    .parse::<IpAddr>()
                    .map_err(|_| ConfigError::ResolveNotIp { value: ip.clone() })?,
            ),
        };
        let headers = http.headers.iter().map(|h| parse_header(h)).collect::<Result<Vec<_>, _>>()?;
        if http.user_agent.chars().any(char::is_control) {
            return Err(ConfigError::BadUserAgent { value: http.user_agent.clone() });
        }
        let metrics = match cli.output.metrics.trim() {
            "off" | "none" | "" => None,
            v => Some(v.parse().map_err(|_| ConfigError::Metrics { value: v.to_owned() })?),
        };
        let m = &cli.measure;
        let exporter = |flag: &'static str, raw: &str| -> Result<Url, ConfigError> {
            let bad = |reason: String| ConfigError::ExporterUrl { flag, value: raw.to_owned(), reason };
            let u = Url::parse(raw).map_err(|e| bad(e.to_string()))?;
            if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                return Err(bad(format!(
                    "the scheme is '{}' and the host '{}'",
                    u.scheme(),
                    u.host_str().unwrap_or("")
                )));
            }
            Ok(u)
        };
        let mut targets = match &m.origin_metrics_host {
            Some(h) => Some(
                Targets::for_host(h.trim())
                    .map_err(|e| ConfigError::ExporterHost { value: h.clone(), reason: e.to_string() })?,
            ),
            None => None,
        };
        if let Some(raw) = &m.origin_metrics {
            targets.get_or_insert(Targets { node: None, nginx: None }).node =
                Some(exporter("--origin-metrics", raw)?);
        }
        if let Some(raw) = &m.nginx_metrics {
            targets.get_or_insert(Targets { node: None, nginx: None }).nginx =
                Some(exporter("--nginx-metrics", raw)?);
        }
        let interval = m.origin_metrics_interval;
        if interval < Duration::from_millis(100) || interval > Duration::from_secs(300) {
            return Err(ConfigError::ScrapeInterval {
                value: humantime::format_duration(interval).to_string(),
            });
        }
        if let Some(w) = m.origin_watts_per_core {
            if !(w > 0.0 && w <= crate::measure::energy::MAX_WATTS_PER_CORE) {
                return Err(ConfigError::WattsPerCore { value: w });
            }
            if targets.as_ref().and_then(|t| t.node.as_ref()).is_none() {
                return Err(ConfigError::WattsWithoutNode(w));
            }
        }
        let asserts = m.asserts.iter().map(|a| Assertion::parse(a)).collect::<Result<Vec<_>, _>>()?;
        let baseline = m.baseline.as_deref().map(PastRun::load).transpose()?;
        let asserts = baseline::bind(asserts, baseline.as_ref())?;
        let reports = cli
            .output
            .reports
            .iter()
            .map(|p| {
                let bad = |reason| ConfigError::Report { value: p.display().to_string(), reason };
                // `{shard}`: this shard's index, so one argument list serves every pod.
                let text = p.to_string_lossy();
                let path = match (text.contains(SHARD_MARK), shard) {
                    (false, _) => p.clone(),
                    (true, Some(s)) => {
                        std::path::PathBuf::from(text.replace(SHARD_MARK, &s.index.to_string()))
                    }
                    (true, None) => {
                        return Err(bad(format!(
                            "{SHARD_MARK} stands for the shard's index, and this run has no --shard"
                        )))
                    }
                };
                report::Target::parse(&path).map_err(bad)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let events_max_size = event_log_bound(cli, &reports)?;
        Ok(Config {
            secrets: Secrets::new(&url, &headers, &http.redact_params)
                .and_urls(streams.list.iter().map(|s| &s.url)),
            url,
            streams,
            shard,
            run_id,
            start_at,
            clients: load.clients,
            ramp_rate: load.ramp_rate,
            ramp_jitter: load.ramp_jitter,
            duration: (!load.duration.is_zero()).then_some(load.duration),
            engine: load.engine,
            variant: load.variant,
            variant_mix: load.variant_mix.clone(),
            cmcd: cli.http.cmcd,
            http2: cli.http.http2,
            restart_on_stall: load.restart_on_stall,
            stall_timeout: load.stall_timeout,
            startup_timeout: load.startup_timeout,
            startup_buffer: load.startup_buffer,
            session_length: load.session_length,
            random_start: load.random_start,
            seed: load.seed.unwrap_or_else(rand::random),
            http: HttpSettings {
                timeout: http.timeout,
                no_cache: http.no_cache,
                headers,
                user_agent: http.user_agent.clone(),
                resolve,
                allow_link_local: http.allow_link_local,
                limits: Limits {
                    playlist_bytes: size(PLAYLIST_FLAG, &http.max_playlist_size)?,
                    playlist: Bounds {
                        line_bytes: size(LINE_FLAG, &http.max_line_length)?,
                        uri_bytes: size(URI_FLAG, &http.max_uri_length)?,
                        entries: http.max_segments as usize,
                    },
                },
                trust: if http.dangerous {
                    Trust::Any
                } else {
                    Trust::with_ca_file(http.ca_file.as_deref())?
                },
            },
            ffmpeg: FfmpegOptions {
                binary: cli.modes.ffmpeg.clone(),
                reconnect: http.reconnect,
                reconnect_delay: http.reconnect_delay,
                stop_grace: cli.modes.stop_grace,
            },
            tui: cli.output.tui && stdout_is_terminal,
            status_interval: cli.output.status_interval.max(Duration::from_millis(100)),
            verbose: cli.output.verbose,
            log_format: cli.output.log_format,
            skip_preflight: cli.modes.skip_preflight,
            print_cmd,
            check: cli.modes.check,
            metrics,
            measure: match m.measure {
                MeasureMode::Relay => Measure::Relay,
                MeasureMode::Log => Measure::Log,
            },
            origin_metrics: targets,
            origin_metrics_interval: interval,
            origin_watts_per_core: m.origin_watts_per_core,
            asserts,
            baseline,
            reports,
            events_max_size,
        })
    }
}

/// `--events-max-size`, given only with one event log (`--report FILE.ndjson`).
fn event_log_bound(cli: &Cli, reports: &[report::Target]) -> Result<u64, ConfigError> {
    let mut logs = reports.iter().filter(|t| t.format == report::Format::Events);
    if let (Some(_), Some(second)) = (logs.next(), logs.next()) {
        let reason = "a run writes one event log, and another .ndjson/.jsonl was given".to_owned();
        return Err(ConfigError::Report { value: second.path.display().to_string(), reason });
    }
    let given = cli.output.events_max_size.as_deref();
    match given {
        None => Ok(crate::output::eventlog::DEFAULT_MAX_SIZE),
        Some(v) if reports.iter().all(|t| t.format != report::Format::Events) => {
            Err(ConfigError::EventsMaxSizeAlone(v.to_owned()))
        }
        Some(v) => Ok(size("--events-max-size", v)? as u64),
    }
}

/// `--shard` (or `--shards` with `JOB_COMPLETION_INDEX`), `--run-id` and `--start-at`.
fn fleet_of(cli: &Cli) -> Result<(Option<Shard>, String, Option<std::time::SystemTime>), ConfigError> {
    let f = &cli.fleet;
    let bad = |flag, value: &str, reason| ConfigError::Fleet { flag, value: value.to_owned(), reason };
    let shard = match (&f.shard, f.shards) {
        (Some(text), _) => Some(Shard::parse(text).map_err(|r| bad("--shard", text, r))?),
        (None, Some(count)) => {
            let index = std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
                bad(
                    "--shards",
                    &count.to_string(),
                    "JOB_COMPLETION_INDEX is not set (give --shard INDEX/COUNT instead)".into(),
                )
            })?;
            let n: u32 = index.trim().parse().map_err(|_| {
                bad(
                    "--shards",
                    &count.to_string(),
                    format!("JOB_COMPLETION_INDEX '{index}' is not a whole number"),
                )
            })?;
            Some(Shard::new(n, count).map_err(|r| bad("--shards", &count.to_string(), r))?)
        }
        (None, None) => None,
    };
    if let Some(s) = shard.filter(|s| s.count > cli.load.clients) {
        let reason =
            format!("{} shards need at least as many viewers (--clients {})", s.count, cli.load.clients);
        return Err(bad("--shard", &format!("{}/{}", s.index, s.count), reason));
    }
    let run_id = match &f.run_id {
        Some(id) => {
            fleet::check_run_id(id).map_err(|r| bad("--run-id", id, r))?;
            id.clone()
        }
        None => fleet::new_run_id(),
    };
    let start_at = match &f.start_at {
        Some(t) => {
            let at = fleet::parse_start_at(t).map_err(|r| bad("--start-at", t, r))?;
            if at.duration_since(std::time::SystemTime::now()).is_ok_and(|d| d > fleet::MAX_START_WAIT) {
                return Err(bad("--start-at", t, "it is more than 24 hours away".into()));
            }
            Some(at)
        }
        None => None,
    };
    Ok((shard, run_id, start_at))
}

/// A size flag's value, or an error naming the flag and the value.
fn size(flag: &'static str, value: &str) -> Result<usize, ConfigError> {
    parse_size(value).map_err(|reason| ConfigError::Size { flag, value: value.to_owned(), reason })
}

fn parse_url(raw: &str) -> Result<Url, ConfigError> {
    let url =
        Url::parse(raw).map_err(|e| ConfigError::BadUrl { url: raw.to_owned(), reason: e.to_string() })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::BadScheme { url: raw.to_owned(), scheme: url.scheme().to_owned() });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::BadUrl { url: raw.to_owned(), reason: "it has no host".into() });
    }
    Ok(url)
}

fn parse_header(raw: &str) -> Result<Header, ConfigError> {
    let bad = |reason| ConfigError::BadHeader { value: raw.to_owned(), reason };
    let (name, value) = raw.split_once(':').ok_or_else(|| bad("there is no ':'"))?;
    if name.is_empty() {
        return Err(bad("the name is empty"));
    }
    // RFC 9110 token characters.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !name.chars().all(token) {
        return Err(bad("the name may only contain letters, digits and !#$%&'*+-.^_`|~"));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(bad("the value contains a line break or control character"));
    }
    Ok(Header { name: name.to_owned(), value: value.trim().to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["hls-swarm"];
        argv.extend_from_slice(args);
        Config::from_cli(&Cli::try_parse_from(argv).unwrap(), false)
    }

    fn message(args: &[&str]) -> String {
        config(args).unwrap_err().to_string()
    }

    #[test]
    fn accepts_defaults() {
        let c = config(&["http://127.0.0.1:17080/stream.m3u8"]).unwrap();
        assert_eq!(c.clients, 10);
        assert_eq!(c.duration, None);
        assert!(!c.tui, "no dashboard without a terminal");
        let on_a_terminal = |args: &[&str]| {
            let mut argv = vec!["hls-swarm"];
            argv.extend_from_slice(args);
            Config::from_cli(&Cli::try_parse_from(argv).unwrap(), true).unwrap().tui
        };
        assert!(on_a_terminal(&["http://h/x.m3u8"]), "the dashboard is on by default on a terminal");
        assert!(!on_a_terminal(&["--tui=false", "http://h/x.m3u8"]));
    }

    #[test]
    fn validation_messages_name_the_value_and_what_is_accepted() {
        insta::assert_snapshot!([
            message(&[]),
            message(&["ftp://h/x.m3u8"]),
            message(&["file:///etc/passwd"]),
            message(&["not a url"]),
            message(&["--clients", "0", "http://h/x.m3u8"]),
            message(&["--clients", "50001", "http://h/x.m3u8"]),
            message(&["--ramp-rate", "0", "http://h/x.m3u8"]),
            message(&["--ramp-rate", "NaN", "http://h/x.m3u8"]),
            message(&["--timeout", "0s", "http://h/x.m3u8"]),
            message(&["--stall-timeout", "0s", "http://h/x.m3u8"]),
            message(&["--startup-timeout", "0s", "http://h/x.m3u8"]),
            message(&["--startup-buffer", "3m", "http://h/x.m3u8"]),
            message(&["--resolve", "10.0.0.1", "http://h/x.m3u8"]),
            message(&["--resolve", "origin.example", "--dangerous", "http://h/x.m3u8"]),
            message(&["--header", "NoColon", "http://h/x.m3u8"]),
            message(&["--header", "Bad Name: v", "http://h/x.m3u8"]),
            message(&["--user-agent", "a\nb", "http://h/x.m3u8"]),
            message(&["--metrics", "localhost", "http://h/x.m3u8"]),
            message(&["--origin-metrics", "10.0.0.1:9100", "http://h/x.m3u8"]),
            message(&["--nginx-metrics", "ftp://h/metrics", "http://h/x.m3u8"]),
            message(&["--origin-metrics-host", "a b", "http://h/x.m3u8"]),
            message(&["--origin-metrics-interval", "10ms", "http://h/x.m3u8"]),
            message(&["--origin-watts-per-core", "0", "http://h/x.m3u8"]),
            message(&["--origin-watts-per-core", "NaN", "http://h/x.m3u8"]),
            message(&["--origin-watts-per-core", "5000", "http://h/x.m3u8"]),
            message(&["--report", "out.txt", "http://h/x.m3u8"]),
            message(&["--report", "/no/such/dir/run.html", "http://h/x.m3u8"]),
        ]
        .join("\n"));
    }

    #[test]
    fn resolve_with_dangerous_parses_ipv6() {
        let c = config(&["--resolve", "[::1]", "--dangerous", "http://h/x.m3u8"]).unwrap();
        assert_eq!(c.http.resolve, Some("::1".parse().unwrap()));
    }

    #[test]
    fn origin_metrics_host_and_overrides() {
        let c = config(&["--origin-metrics-host", "10.177.0.10", "http://h/x.m3u8"]).unwrap();
        let t = c.origin_metrics.unwrap();
        assert_eq!(t.node.unwrap().as_str(), "http://10.177.0.10:9100/metrics");
        assert_eq!(t.nginx.unwrap().as_str(), "http://10.177.0.10:9113/metrics");
        let c = config(&["--nginx-metrics", "http://o:1/m", "http://h/x.m3u8"]).unwrap();
        let t = c.origin_metrics.unwrap();
        assert_eq!((t.node, t.nginx.unwrap().as_str()), (None, "http://o:1/m"));
        assert_eq!(config(&["http://h/x.m3u8"]).unwrap().measure, Measure::Relay);
        assert_eq!(config(&["--measure", "log", "http://h/x.m3u8"]).unwrap().measure, Measure::Log);
    }

    #[test]
    fn several_streams() {
        let c = config(&["--stream", "http://h/a.m3u8=3", "--stream", "http://u:hush@h/b.m3u8?token=zzzz"])
            .unwrap();
        assert_eq!(c.url.as_str(), "http://h/a.m3u8");
        assert_eq!(c.shown_url(), "http://h/a.m3u8 and 1 more streams");
        let second = c.secrets.url(&c.streams.list[1].url);
        assert!(!second.contains("hush") && !second.contains("zzzz"), "{second}");
        assert_eq!(c.streams.of_viewers(4), [0, 0, 1, 0]);
        for (args, needle) in [
            (
                &["--stream", "http://h/a.m3u8", "http://h/b.m3u8"][..],
                "given both as the URL argument and with --stream",
            ),
            (
                &["--check", "--stream", "http://h/a", "--stream", "http://h/b"][..],
                "--check examines one stream: give its URL alone (2 streams given)",
            ),
            (
                &["--stream", "http://h/a.m3u8=0"][..],
                "--stream http://h/a.m3u8=0: weight '0' is not a whole number from 1 to 10000",
            ),
            (
                &["--stream", "ftp://h/a.m3u8=2"][..],
                "--stream ftp://h/a.m3u8=2: unsupported URL scheme 'ftp'",
            ),
        ] {
            let m = message(args);
            assert!(m.contains(needle), "{args:?}: {m}");
        }
    }

    #[test]
    fn fleet_flags() {
        let c = config(&[
            "--clients",
            "10",
            "--shard",
            "2/3",
            "--run-id",
            "r1",
            "--start-at",
            "2026-12-04T15:00:00Z",
            "http://h/x",
        ])
        .unwrap();
        assert_eq!((c.shard.map(|s| s.block(c.clients)), c.run_id.as_str()), (Some((7, 3)), "r1"));
        assert_eq!(c.start_at, Some(std::time::UNIX_EPOCH + Duration::from_secs(1_796_396_400)));
        let c =
            config(&["--clients", "4", "--shard", "1/2", "--report", "/tmp/s-{shard}.json", "http://h/x"])
                .unwrap();
        assert_eq!(c.reports[0].path, std::path::Path::new("/tmp/s-1.json"));
        assert_eq!(config(&["http://h/x"]).unwrap().run_id.len(), 16, "a random run id");
        for (args, needle) in [
            (&["--shard", "3/3"][..], "--shard 3/3: index 3 is not below the count 3"),
            (
                &["--clients", "2", "--shard", "0/3"][..],
                "--shard 0/3: 3 shards need at least as many viewers (--clients 2)",
            ),
            (&["--run-id", "a/b"][..], "--run-id a/b: 'a/b' is not a run id"),
            (&["--start-at", "noon"][..], "--start-at noon: 'noon' is not a time"),
            (&["--start-at", "4102444800"][..], "--start-at 4102444800: it is more than 24 hours away"),
            (
                &["--report", "/tmp/s-{shard}.json"][..],
                "{shard} stands for the shard's index, and this run has no --shard",
            ),
        ] {
            let mut all = args.to_vec();
            all.push("http://h/x");
            let m = message(&all);
            assert!(m.contains(needle), "{args:?}: {m}");
        }
    }

    #[test]
    fn print_cmd_needs_no_url() {
        let c = config(&["--print-cmd"]).unwrap();
        assert_eq!(c.url.as_str(), PLACEHOLDER_URL);
    }
}
