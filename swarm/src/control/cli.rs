//! Command line: what the user typed, before validation (see [`crate::control::config`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::engine::settings::{EngineKind, SessionLength, Variant, VariantMix};
use clap::{ArgAction, Args, Parser, ValueEnum};

/// Start N simulated viewers against an HLS stream and measure what they experience.
///
/// Each viewer is a real FFmpeg process reading the stream (`-c copy -f null -`, no decoding).
/// Viewers are started at --ramp-rate per second, restarted with backoff when they fail, and
/// stopped gracefully on Ctrl+C, SIGTERM or when --duration has passed.
#[derive(Debug, Clone, Parser)]
#[command(name = "hls-swarm", version, about, long_about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Another task than a load run.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The HLS URL (master or media playlist), http:// or https://
    #[arg(env = "HLS_SWARM_URL", value_name = "URL")]
    pub url: Option<String>,

    #[command(flatten)]
    pub load: LoadArgs,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub measure: MeasureArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub modes: ModeArgs,

    #[command(flatten)]
    pub fleet: FleetArgs,
}

/// Tasks besides a load run.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Merge the JSON reports of a sharded run's workers (`--shard`) into the fleet's report,
    /// exactly as one process running every viewer would have written it, and check
    /// --assert against it
    Merge(MergeArgs),

    /// Compare two runs' JSON reports: the key figures side by side, the change, and whether
    /// it is better or worse; runs of another shape (streams, clients, engine, …) are named
    Compare(CompareArgs),

    /// Print the completion script for SHELL on stdout, e.g. `hls-swarm completions bash >
    /// /etc/bash_completion.d/hls-swarm`
    Completions(CompletionsArgs),

    /// Print the man page (roff) on stdout; with --out DIR, write it and one page per
    /// subcommand into DIR instead (hls-swarm.1, hls-swarm-merge.1, …)
    Manpage(ManpageArgs),
}

/// `hls-swarm completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell the script is for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `hls-swarm manpage`.
#[derive(Debug, Clone, Args)]
pub struct ManpageArgs {
    /// Write every page into this directory (created if missing) and print their paths, e.g.
    /// /usr/local/share/man/man1
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `hls-swarm merge`.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// The workers' JSON reports (one per shard, any order); a directory stands for its
    /// shard-*.json files
    #[arg(required = true, value_name = "REPORT.json")]
    pub files: Vec<PathBuf>,

    /// Write the fleet's report (.json, .html or .csv; repeatable)
    #[arg(long = "report", value_name = "PATH")]
    pub reports: Vec<PathBuf>,

    /// A threshold on the fleet's figures, as for a run (repeatable; exits 5 if one fails)
    #[arg(long = "assert", value_name = "EXPR")]
    pub asserts: Vec<String>,

    /// An earlier run's JSON report that --assert may compare with, as for a run
    #[arg(long, value_name = "REPORT.json")]
    pub baseline: Option<PathBuf>,
}

/// `hls-swarm compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The earlier run's JSON report (--report FILE.json), the base
    #[arg(value_name = "BASE.json")]
    pub base: PathBuf,

    /// The later run's JSON report, compared with the base
    #[arg(value_name = "NEW.json")]
    pub new: PathBuf,

    /// Also write the comparison as one self-contained HTML page
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
}

/// One load test across several machines.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Fleet")]
pub struct FleetArgs {
    /// Run shard INDEX of COUNT (from 0): this process runs its block of the --clients viewers
    /// at its share of --ramp-rate; merge the shards' JSON reports with `hls-swarm merge`
    #[arg(long, env = "HLS_SWARM_SHARD", value_name = "INDEX/COUNT", conflicts_with = "shards")]
    pub shard: Option<String>,

    /// The fleet's shard count, the index coming from JOB_COMPLETION_INDEX (a Kubernetes
    /// Indexed Job's pods)
    #[arg(long, env = "HLS_SWARM_SHARDS", value_name = "COUNT")]
    pub shards: Option<u32>,

    /// The run's name, shared by its shards (merge refuses reports of different runs); default:
    /// random
    #[arg(long, env = "HLS_SWARM_RUN_ID", value_name = "ID")]
    pub run_id: Option<String>,

    /// Start the viewers at this time (RFC 3339 in UTC, or Unix seconds), so the shards start
    /// together; a shard that starts later than 1 s after it says so in its report
    #[arg(long, env = "HLS_SWARM_START_AT", value_name = "TIME")]
    pub start_at: Option<String>,
}

/// How many viewers, how fast, for how long.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Load")]
pub struct LoadArgs {
    /// Number of concurrent viewers
    #[arg(long, env = "HLS_SWARM_CLIENTS", default_value_t = 10)]
    pub clients: u32,

    /// Viewers started per second (fractions allowed, e.g. 0.5)
    #[arg(long, env = "HLS_SWARM_RAMP_RATE", default_value_t = 5.0)]
    pub ramp_rate: f64,

    /// Random extra delay per viewer start, capped at half the ramp interval
    #[arg(long, env = "HLS_SWARM_RAMP_JITTER", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub ramp_jitter: Duration,

    /// Run length (30s, 5m, 1h); 0 runs until Ctrl+C or SIGTERM
    #[arg(long, env = "HLS_SWARM_DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// What plays each viewer: ffmpeg (a process each, decodes) or native (a task inside
    /// hls-swarm that fetches as a player does, thousands per core)
    #[arg(long, env = "HLS_SWARM_ENGINE", value_enum, default_value_t = EngineKind::Ffmpeg)]
    pub engine: EngineKind,

    /// Which rendition each viewer plays: all, highest, lowest or first; abr (native engine)
    /// switches with the measured throughput as hls.js does
    #[arg(long, env = "HLS_SWARM_VARIANT", value_enum, default_value_t = Variant::All)]
    pub variant: Variant,

    /// Share the viewers between variant choices, e.g. highest=20,lowest=30,abr=50 (native
    /// engine; replaces --variant): viewers are dealt the choices in turn by weight
    #[arg(long, env = "HLS_SWARM_VARIANT_MIX", value_name = "CHOICE=WEIGHT,...", value_parser = VariantMix::parse)]
    pub variant_mix: Option<VariantMix>,

    /// A stream of a run with several, URL[=WEIGHT] (repeatable; instead of the URL argument):
    /// viewers are dealt the streams in turn by weight (1 unless given), and every figure is
    /// also given per stream. A trailing =DIGITS is the weight
    #[arg(long = "stream", value_name = "URL[=WEIGHT]")]
    pub streams: Vec<String>,

    /// A file of streams, one URL[=WEIGHT] per line (# comments), as --stream
    #[arg(long = "streams", env = "HLS_SWARM_STREAMS", value_name = "FILE")]
    pub streams_file: Option<PathBuf>,

    /// Restart a viewer whose playback stalls longer than --stall-timeout
    #[arg(long, env = "HLS_SWARM_RESTART_ON_STALL")]
    pub restart_on_stall: bool,

    /// Stall threshold for --restart-on-stall (default: twice the target duration)
    #[arg(long, env = "HLS_SWARM_STALL_TIMEOUT", value_parser = humantime::parse_duration)]
    pub stall_timeout: Option<Duration>,

    /// A viewer that has not played this long after it started is a failed start, and its
    /// wait counts as stalled (default: five target durations, at least 10 s)
    #[arg(long, env = "HLS_SWARM_STARTUP_TIMEOUT", value_parser = humantime::parse_duration)]
    pub startup_timeout: Option<Duration>,

    /// Media a viewer buffers before it starts playing, and again before it resumes after a
    /// stall (as Shaka's rebufferingGoal); startup is the time until it is in (default: one
    /// segment, as hls.js)
    #[arg(long, env = "HLS_SWARM_STARTUP_BUFFER", default_value = "0s", value_parser = humantime::parse_duration)]
    pub startup_buffer: Duration,

    /// How long one viewing lasts: when a session has run this long the viewer leaves and a
    /// new session starts in its place at once (a zap). `45s`, or `20s..2m` for a length drawn
    /// evenly in that range each time; a session that plays a finished stream to its end
    /// zaps too. Default: sessions last the whole run
    #[arg(long, env = "HLS_SWARM_SESSION_LENGTH", value_name = "D|MIN..MAX", value_parser = SessionLength::parse)]
    pub session_length: Option<SessionLength>,

    /// Start each session of a finished (VOD) playlist at a random point instead of its start,
    /// as viewers who seek do (native engine; live streams start at the live edge)
    #[arg(long, env = "HLS_SWARM_RANDOM_START")]
    pub random_start: bool,

    /// Seed for ramp jitter and restart backoff (default: random)
    #[arg(long, env = "HLS_SWARM_SEED")]
    pub seed: Option<u64>,
}

/// What the viewers send.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "HTTP")]
pub struct HttpArgs {
    /// Network timeout for each read or connect
    #[arg(long, env = "HLS_SWARM_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Let FFmpeg reconnect dropped connections (--reconnect=false to turn off)
    #[arg(long, env = "HLS_SWARM_RECONNECT", default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub reconnect: bool,

    /// Longest delay between FFmpeg's reconnect attempts
    #[arg(long, env = "HLS_SWARM_RECONNECT_DELAY", default_value = "5s", value_parser = humantime::parse_duration)]
    pub reconnect_delay: Duration,

    /// Send cache-busting request headers (Cache-Control: no-cache, Pragma: no-cache)
    #[arg(long, env = "HLS_SWARM_NO_CACHE")]
    pub no_cache: bool,

    /// Send Common Media Client Data (CTA-5004) with every request, as headers or as a query
    /// parameter: session id, content id, object type, bitrate, buffer, throughput (native
    /// engine)
    #[arg(long, env = "HLS_SWARM_CMCD", value_enum, value_name = "HOW")]
    pub cmcd: Option<crate::engine::native::cmcd::Mode>,

    /// Speak HTTP/2 where the origin's TLS offers it (ALPN h2), else HTTP/1.1, as browsers and
    /// players do; plain http:// stays HTTP/1.1 (native engine)
    #[arg(long, env = "HLS_SWARM_HTTP2")]
    pub http2: bool,

    /// Extra request header, `Name: value` (repeatable)
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,

    /// User-Agent; each viewer appends ` viewer/<id>`
    #[arg(long, env = "HLS_SWARM_USER_AGENT", default_value = concat!("hls-swarm/", env!("CARGO_PKG_VERSION")))]
    pub user_agent: String,

    /// Connect to this IP instead of resolving the URL's host (Host header kept). Needs --dangerous
    #[arg(long, env = "HLS_SWARM_RESOLVE", value_name = "IP")]
    pub resolve: Option<String>,

    /// Allow --resolve, and accept any TLS certificate from the origin (no checks)
    #[arg(long, env = "HLS_SWARM_DANGEROUS")]
    pub dangerous: bool,

    /// Let viewers and the probe connect to link-local and cloud metadata addresses
    /// (169.254.0.0/16, fe80::/10, …), refused by default: a playlist could point them there
    #[arg(long, env = "HLS_SWARM_ALLOW_LINK_LOCAL")]
    pub allow_link_local: bool,

    /// Largest playlist the probe and the relay read (bytes, or with k/M/G): a larger one is
    /// an error in --check and forwarded unread (and said so) in a run
    #[arg(long, env = "HLS_SWARM_MAX_PLAYLIST_SIZE", default_value = "4M", value_name = "SIZE")]
    pub max_playlist_size: String,

    /// Longest playlist line the probe and the relay read (bytes, or with k/M): a playlist
    /// with a longer one is refused whole
    #[arg(long, env = "HLS_SWARM_MAX_LINE_LENGTH", default_value = "64K", value_name = "SIZE")]
    pub max_line_length: String,

    /// Longest URI in a playlist (a URI line or a URI attribute; bytes, or with k/M)
    #[arg(long, env = "HLS_SWARM_MAX_URI_LENGTH", default_value = "8K", value_name = "SIZE")]
    pub max_uri_length: String,

    /// Most segments in a media playlist (and variants or renditions in a master playlist)
    #[arg(long, env = "HLS_SWARM_MAX_SEGMENTS", default_value_t = 100_000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_segments: u32,

    /// A query parameter whose value is secret, hidden from all output and (with the relay)
    /// from FFmpeg's command line (repeatable; names containing token, key, sig, auth, pass,
    /// secret, credential or session always are)
    #[arg(long = "redact-param", value_name = "NAME")]
    pub redact_params: Vec<String>,

    /// Also trust the CA certificates in this PEM file for https origins (the system's
    /// roots are always trusted)
    #[arg(long, env = "HLS_SWARM_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// How the numbers are obtained, viewer side and origin side.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Measurement")]
pub struct MeasureArgs {
    /// relay: every request passes a relay in the swarm that measures it (exact bytes,
    /// TTFB, download time); log: read FFmpeg's log only (cheaper, figures inferred)
    #[arg(long, env = "HLS_SWARM_MEASURE", value_enum, default_value_t = MeasureMode::Relay)]
    pub measure: MeasureMode,

    /// Origin host running the exporters: node exporter on :9100, nginx exporter on :9113
    #[arg(long, env = "HLS_SWARM_ORIGIN_METRICS_HOST", value_name = "HOST")]
    pub origin_metrics_host: Option<String>,

    /// Node exporter URL (overrides --origin-metrics-host for it)
    #[arg(long, env = "HLS_SWARM_ORIGIN_METRICS", value_name = "URL")]
    pub origin_metrics: Option<String>,

    /// nginx exporter URL (overrides --origin-metrics-host for it)
    #[arg(long, env = "HLS_SWARM_NGINX_METRICS", value_name = "URL")]
    pub nginx_metrics: Option<String>,

    /// Pass/fail threshold checked at the end, e.g. 'segment_ttfb_p95<500ms',
    /// 'error_rate<0.001', 'stall_ratio==0', 'viewers_reached>=100%' (repeatable; a failure
    /// exits 5). Fields and units: docs/metrics.md. With --baseline, the value may be
    /// `baseline`, `baseline * K`, `baseline + VALUE` or `baseline - VALUE`, e.g.
    /// 'segment_ttfb_p95 <= baseline * 1.2'
    #[arg(long = "assert", value_name = "EXPR")]
    pub asserts: Vec<String>,

    /// An earlier run's JSON report (--report FILE.json) that --assert may compare with
    /// (`baseline` stands for the same field there); a run of another shape (streams,
    /// clients, engine, variant, measure, duration, ramp rate) is named in the summary
    #[arg(long, env = "HLS_SWARM_BASELINE", value_name = "REPORT.json")]
    pub baseline: Option<PathBuf>,

    /// How often the origin's exporters are scraped
    #[arg(long, env = "HLS_SWARM_ORIGIN_METRICS_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub origin_metrics_interval: Duration,

    /// Watts one busy core of the origin draws: where its node exporter has no RAPL energy
    /// counters (VMs, many cloud hosts), report an estimate, labelled as one, of busy
    /// CPU-seconds × W (0 < W ≤ 1000; needs --origin-metrics or --origin-metrics-host)
    #[arg(long, env = "HLS_SWARM_ORIGIN_WATTS_PER_CORE", value_name = "W")]
    pub origin_watts_per_core: Option<f64>,
}

/// How viewers are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MeasureMode {
    /// Through the observing relay (exact)
    Relay,
    /// From FFmpeg's log (inferred)
    Log,
}

/// Where results go.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Live dashboard; off when stdout is not a terminal (--tui=false to turn off)
    #[arg(long, env = "HLS_SWARM_TUI", default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tui: bool,

    /// How often the plain-text status line is printed when the dashboard is off
    #[arg(long, env = "HLS_SWARM_STATUS_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub status_interval: Duration,

    /// Prometheus endpoint (/metrics, /health, /ready) listen address, or `off`
    #[arg(long, env = "HLS_SWARM_METRICS", default_value = "0.0.0.0:17091", value_name = "ADDR|off")]
    pub metrics: String,

    /// Write a report file when the run ends (repeatable): FILE.json is machine-readable
    /// (schema: docs/report.schema.json), FILE.html a self-contained page with charts,
    /// FILE.csv the per-second series, - the JSON on one line of stdout; FILE.ndjson (or
    /// .jsonl) is the event log, written as the run goes: one JSON line per request and per
    /// viewer state change; {shard} in FILE stands for the shard's index (--shard)
    #[arg(long = "report", value_name = "FILE", conflicts_with_all = ["check", "print_cmd"])]
    pub reports: Vec<PathBuf>,

    /// Largest event log (--report FILE.ndjson): bytes, or with K/M/G or KiB/MiB/GiB (×1024)
    /// or kB/MB/GB (×1000); past it no event is written, and its last line says how many were
    /// dropped [default: 1GiB]
    #[arg(long, env = "HLS_SWARM_EVENTS_MAX_SIZE", value_name = "SIZE")]
    pub events_max_size: Option<String>,

    /// More log output (-v debug, -vv trace)
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,

    /// Log format on stderr
    #[arg(long, env = "HLS_SWARM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines
    Text,
    /// One JSON object per line
    Json,
}

/// Alternative modes and the FFmpeg binary.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Modes")]
pub struct ModeArgs {
    /// Print the exact FFmpeg command a viewer runs (shell-quoted, secrets redacted) and exit
    #[arg(long)]
    pub print_cmd: bool,

    /// Validate the configuration, look at the stream once (playlist, variants, one segment)
    /// and print a verdict; starts no load
    #[arg(long, conflicts_with = "print_cmd")]
    pub check: bool,

    /// Skip the preflight checks
    #[arg(long, env = "HLS_SWARM_SKIP_PREFLIGHT")]
    pub skip_preflight: bool,

    /// FFmpeg binary to run
    #[arg(long, env = "HLS_SWARM_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,

    /// How long a viewer gets to exit after SIGTERM before it is killed
    #[arg(long, env = "HLS_SWARM_STOP_GRACE", default_value = "3s", value_parser = humantime::parse_duration)]
    pub stop_grace: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["hls-swarm", "http://h/x.m3u8"]).unwrap();
        assert_eq!(cli.load.clients, 10);
        assert!((cli.load.ramp_rate - 5.0).abs() < f64::EPSILON);
        assert_eq!(cli.load.ramp_jitter, Duration::from_millis(200));
        assert_eq!(cli.load.duration, Duration::ZERO);
        assert!(cli.output.tui);
        assert!(cli.http.reconnect);
        assert_eq!(cli.http.timeout, Duration::from_secs(15));
    }

    #[test]
    fn bool_flags_take_equals_false() {
        let cli = Cli::try_parse_from(["hls-swarm", "--tui=false", "--reconnect=false", "http://h/x.m3u8"])
            .unwrap();
        assert!(!cli.output.tui);
        assert!(!cli.http.reconnect);
        let cli = Cli::try_parse_from(["hls-swarm", "--tui", "http://h/x.m3u8"]).unwrap();
        assert!(cli.output.tui);
    }

    #[test]
    fn flags_after_url_are_read() {
        // The reference tool stops parsing at the URL; we do not.
        let cli = Cli::try_parse_from(["hls-swarm", "http://h/x.m3u8", "--clients", "3"]).unwrap();
        assert_eq!(cli.load.clients, 3);
    }

    #[test]
    fn report_needs_a_load_run() {
        for mode in ["--check", "--print-cmd"] {
            let err = Cli::try_parse_from(["hls-swarm", mode, "--report", "a.json", "http://h/x.m3u8"]);
            assert!(err.unwrap_err().to_string().contains("--report"), "{mode}");
        }
        let cli =
            Cli::try_parse_from(["hls-swarm", "--report", "a.json", "--report", "b.html", "http://h/x"]);
        assert_eq!(cli.unwrap().output.reports.len(), 2);
    }

    #[test]
    fn malformed_duration_names_the_value() {
        let err = Cli::try_parse_from(["hls-swarm", "--duration", "ten", "http://h/x.m3u8"]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("'ten'") && msg.contains("--duration"), "{msg}");
    }
}
