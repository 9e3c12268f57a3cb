//! The orchestrator: one run from a validated [`Config`] to its [`Outcome`], as named steps —
//! probe FFmpeg, look at the stream, preflight, start the measurements and outputs, ramp the
//! viewers up, hold, stop, and gather the results.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::control::check;
use crate::control::config::Config;
use crate::control::examine::{self, ExamineError, Fetcher, StreamInfo};
use crate::control::fleet;
use crate::control::outputs::{self, Outputs};
use crate::control::plan::RampPlan;
use crate::control::preflight::{self, Checklist};
use crate::control::signals::Signals;
use crate::engine::ffmpeg::command::{Capabilities, CapabilityError, Selection, ViewerCommand};
use crate::engine::ffmpeg::relay::{Relay, Route, Tls};
use crate::engine::ffmpeg::viewer::FfmpegEngine;
use crate::engine::native::http::Headers;
use crate::engine::native::{context, NativeEngine};
use crate::engine::secrets::Secrets;
use crate::engine::settings::{EngineKind, NO_CACHE_HEADERS};
use crate::engine::supervisor::{backoff_cap, Engine, Shutdown, Supervisor};
use crate::engine::upstream::Dial;
use crate::measure::events::{EventKind, EventSink, ViewerId};
use crate::measure::fold::{self, Stats};
use crate::measure::player::Verdicts;
use crate::measure::snapshot::{Measure, Snapshot};
use crate::output::baseline;
use crate::output::metrics::RunLabels;
use crate::output::outcome::Outcome;
use crate::output::summary::{RunFacts, StreamFact};
use hyper::header::{HeaderName, HeaderValue, USER_AGENT};

/// Queue between viewers and the stats owner.
const EVENT_QUEUE: usize = 65_536;
/// Threads that fork viewers; more than one so a slow `exec` does not hold up the next start.
const SPAWNER_THREADS: usize = 16;
/// Stats publishing period.
const STATS_TICK: Duration = Duration::from_millis(500);

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// FFmpeg is missing or broken.
    #[error(transparent)]
    Probe(#[from] CapabilityError),
    /// A preflight check failed; the checklist was printed.
    #[error("preflight checks failed (fix them, or pass --skip-preflight to run anyway)")]
    Preflight(Checklist),
    /// The metrics endpoint cannot listen.
    #[error(
        "cannot listen for metrics on {addr}: {source} (pick another --metrics address, or --metrics off)"
    )]
    MetricsBind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The stream cannot be used at all (its TLS certificate is not trusted, or the address
    /// policy refuses its host): no viewer could play.
    #[error(transparent)]
    Stream(ExamineError),
    /// SIGINT or SIGTERM before any viewer started.
    #[error("interrupted before the run started")]
    Interrupted,
    /// The relay's TLS cannot be set up.
    #[error("{0}")]
    Tls(String),
    /// Installing signal handlers or starting threads failed.
    #[error("cannot set up the run (signal handlers, threads): {0}")]
    Signals(#[source] std::io::Error),
}

/// How a successful invocation ended.
#[derive(Debug, Clone)]
pub enum Finished {
    /// A load run.
    Run(Box<Outcome>),
    /// `--print-cmd` printed the command.
    Printed,
    /// `--check` gave this verdict.
    Checked(check::Verdict),
}

/// Runs the whole load test described by `config`, writing progress to `out`.
///
/// # Errors
/// See [`RunError`]; once viewers have started, the run always ends with an [`Outcome`].
pub async fn run(config: Config, out: &mut (dyn Write + Send)) -> Result<Finished, RunError> {
    // Signals first, so that Ctrl+C at any point below ends the run cleanly.
    let mut signals = Signals::install().map_err(RunError::Signals)?;
    // Native viewers run no FFmpeg: it need not even be installed.
    let caps = match config.engine {
        EngineKind::Ffmpeg => Some(Capabilities::probe(&config.ffmpeg.binary).await?),
        EngineKind::Native => None,
    };
    if let (true, Some(caps)) = (config.print_cmd, &caps) {
        print_command(&config, caps, out);
        return Ok(Finished::Printed);
    }
    let streams = tokio::select! {
        s = Stream::examine_all(&config) => s,
        () = signals.first() => return Err(RunError::Interrupted),
    };
    let commands: Option<Vec<Commands>> = caps.as_ref().map(|caps| {
        let list = config.streams.list.iter().zip(&streams);
        list.map(|(given, stream)| Commands {
            config: &config,
            caps,
            url: &given.url,
            selection: stream.selection(&config),
        })
        .collect()
    });
    if config.check {
        // One stream (the configuration refuses --check with several).
        let command = commands.as_ref().and_then(|c| c.first()).map(|c| c.of(0, None));
        let (verdict, report) = tokio::select! {
            r = check::run(&config, streams[0].probed(), command.as_ref()) => r,
            () = signals.first() => return Err(RunError::Interrupted),
        };
        let _ = write!(out, "{report}");
        return Ok(Finished::Checked(verdict));
    }
    for stream in &streams {
        if let Err(e @ (ExamineError::Untrusted { .. } | ExamineError::Refused { .. })) = &stream.info {
            return Err(RunError::Stream(e.clone()));
        }
    }
    announce(&config, out);
    let shapes = Shape::of(&config, caps.as_ref(), &streams, out)?;
    if !config.skip_preflight {
        preflight(&config, commands.as_ref().and_then(|c| c.first()), out).await?;
    }
    let spawner = procgroup::Spawner::new(SPAWNER_THREADS, tokio::runtime::Handle::current())
        .map_err(RunError::Signals)?;

    // With --start-at, wait for it (a signal ends the wait).
    let late = match config.start_at {
        Some(at) => tokio::select! {
            late = wait_until(at, out) => late,
            () = signals.first() => return Err(RunError::Interrupted),
        },
        None => None,
    };

    // From here the run is under way: measurements, signals, outputs, then the viewers.
    let (first, local) = config.shard.map_or((0, config.clients), |s| s.block(config.clients));
    // A shard takes every COUNT-th turn of the fleet's ramp: together they ramp at the asked rate.
    let turns = config.shard.map_or((0, 1), |s| (s.index, s.count));
    let plan =
        RampPlan::every(local, config.ramp_rate, config.ramp_jitter, config.seed ^ u64::from(first), turns);
    // With --start-at the shards start then (given in whole seconds, their seconds line up);
    // alone, at the next whole wall-clock second.
    let (started_at, started_wall) = if config.start_at.is_some() {
        (Instant::now(), SystemTime::now())
    } else {
        start_on_a_whole_second().await
    };
    let (sink, events, dropped) = EventSink::channel(EVENT_QUEUE);
    let (publish, snapshots) = watch::channel(Arc::new(Snapshot::default()));
    let startup_timeout = shapes.iter().map(|s| s.startup_timeout).max().unwrap_or_default();
    let mut stats = Stats::new(local, started_at, plan.offsets(), dropped, config.measure)
        .with_player(startup_timeout, config.startup_buffer);
    if config.streams.many() {
        let of = config.streams.of_viewers(config.clients);
        let mine = &of[first as usize..(first + local) as usize];
        stats = stats.with_streams(mine, config.streams.list.len());
    }
    let (stats, event_log) = outputs::event_log(&config, stats, (first, local), (started_at, started_wall))
        .map_err(RunError::Signals)?;
    let verdicts = stats.verdicts();
    let stats_task = tokio::spawn(fold::run(stats, events, publish, STATS_TICK, unix_seconds(started_wall)));
    let shutdown = Shutdown::default();
    let watch = signals.drive(shutdown.clone());
    let mut outputs =
        Outputs::start(&config, labels(&config, caps.as_ref()), &snapshots, &shutdown.stop, out)
            .await
            .map_err(|(addr, source)| RunError::MetricsBind { addr, source })?;

    let secrets = Arc::new(config.secrets.clone());
    let starter = Starter {
        config: &config,
        commands: commands.as_deref(),
        shapes: &shapes,
        spawner,
        verdicts,
        secrets,
        tls: caps.is_none().then(|| native_tls(&config)),
        first,
    };
    let deadline = config.duration.map(|d| tokio::time::Instant::from_std(started_at) + d);
    let mut viewers = JoinSet::new();
    for id in plan.ids() {
        if !due(&plan, id, started_at, deadline, &shutdown).await {
            break;
        }
        starter.start(id, &sink, &shutdown, &mut viewers).await;
    }
    let all_ended = hold(deadline, &shutdown, &mut viewers).await;

    // The stop: whatever is streaming now is what the stop interrupts.
    sink.run_stopping();
    let stopped_early = shutdown.stop.is_cancelled();
    let quit_from_dashboard = stopped_early && !watch.interrupted();
    let running = snapshots.borrow().running;
    outputs.close_dashboard(running, out).await;
    let stop_began = Instant::now();
    shutdown.stop.cancel();
    while viewers.join_next().await.is_some() {}
    let stop_seconds = stop_began.elapsed().as_secs_f64();
    drop((sink, watch));
    // The stats task is never aborted; if it panicked, so does the run.
    let results = stats_task.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    // The fold is done, so is the event log's input.
    let event_log = match event_log {
        Some(log) => Some(log.finish().await),
        None => None,
    };
    let origin = outputs.finish(out).await;

    let facts = RunFacts {
        url: config.shown_url(),
        ffmpeg: caps.as_ref().map_or_else(
            || "native player (no FFmpeg)".to_owned(),
            |c| format!("FFmpeg {}", c.version_number()),
        ),
        measured_by: if caps.is_some() { "the relay" } else { "the native player" }.into(),
        start_unit: if caps.is_some() { "process" } else { "session" }.into(),
        run_seconds: stop_began.duration_since(started_at).as_secs_f64(),
        ramp_rate: plan.rate(),
        interrupted: stopped_early,
        all_ended,
        quit_from_dashboard,
        stop_seconds,
        target_duration: one_target_duration(&shapes),
        started: started_wall,
        duration: config.duration.map(|d| d.as_secs_f64()),
        startup_buffer: (!config.startup_buffer.is_zero()).then_some(config.startup_buffer.as_secs_f64()),
        http2: config.http2,
        streams: stream_facts(&config),
        run_id: config.run_id.clone(),
        shard: config.shard,
        start_late_seconds: late.map(|d| d.as_secs_f64()),
        variant: Some(variant_asked(&config)),
    };
    let outcome = Outcome::new(&results, facts, origin, &config.asserts);
    let outcome = baseline::noted(outcome, config.baseline.as_ref());
    let outcome = match event_log {
        Some(written) => outcome.with_event_log(written),
        None => outcome,
    };
    Ok(Finished::Run(Box::new(outcome)))
}

/// `--variant` or `--variant-mix` as given, for the run's facts.
fn variant_asked(config: &Config) -> String {
    use clap::ValueEnum as _;
    config.variant_mix.as_ref().map_or_else(
        || config.variant.to_possible_value().map_or_else(String::new, |v| v.get_name().to_owned()),
        ToString::to_string,
    )
}

/// `--print-cmd`: viewer 0's FFmpeg command.
fn print_command(config: &Config, caps: &Capabilities, out: &mut (dyn Write + Send)) {
    let commands =
        Commands { config, caps, url: &config.url, selection: Selection::from_variant(config.variant) };
    let proxy = (config.measure == Measure::Relay).then_some("http://127.0.0.1:RELAY_PORT");
    let _ = writeln!(out, "# FFmpeg command of viewer 0 ({}):", caps.version);
    if proxy.is_some() {
        let _ = writeln!(
            out,
            "# (--measure relay: each viewer's -http_proxy is its own relay inside hls-swarm, on a free port;\n\
             #  the relay adds the URL's credentials, secret parameters and secret headers upstream)"
        );
    }
    let _ = writeln!(out, "{}", commands.of(0, proxy).display());
}

/// The viewers' FFmpeg commands.
struct Commands<'a> {
    config: &'a Config,
    caps: &'a Capabilities,
    url: &'a url::Url,
    selection: Selection,
}

impl Commands<'_> {
    fn of<'p>(&'p self, viewer: ViewerId, proxy: Option<&'p str>) -> ViewerCommand<'p> {
        ViewerCommand {
            options: &self.config.ffmpeg,
            http: &self.config.http,
            caps: self.caps,
            url: self.url,
            selection: self.selection,
            viewer,
            proxy,
            secrets: &self.config.secrets,
        }
    }
}

/// The one look at the stream before the load: which variant, how long segments are,
/// whether it is finite.
struct Stream {
    fetcher: Result<Fetcher, ExamineError>,
    info: Result<StreamInfo, ExamineError>,
}

impl Stream {
    /// Each of the run's streams, in turn.
    async fn examine_all(config: &Config) -> Vec<Stream> {
        let mut all = Vec::with_capacity(config.streams.list.len());
        for given in &config.streams.list {
            let fetcher = Fetcher::new(&config.http, &given.url);
            let info = match &fetcher {
                Ok(f) => examine::examine(f, &given.url, config.variant).await,
                Err(e) => Err(e.clone()),
            };
            all.push(Stream { fetcher, info });
        }
        all
    }

    fn selection(&self, config: &Config) -> Selection {
        match &self.info {
            Ok(i) if i.chosen.is_some() => Selection::Program(i.chosen.unwrap_or(0)),
            _ => Selection::from_variant(config.variant),
        }
    }

    fn probed(&self) -> Result<(&Fetcher, &StreamInfo), &ExamineError> {
        match (&self.fetcher, &self.info) {
            (Ok(f), Ok(i)) => Ok((f, i)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }
}

fn announce(config: &Config, out: &mut (dyn Write + Send)) {
    if config.http2 && config.streams.list.iter().any(|s| s.url.scheme() == "http") {
        let _ = writeln!(
            out,
            "Note: --http2 is negotiated over TLS (ALPN h2), as players do: http:// streams are played over HTTP/1.1"
        );
    }
    let who = match config.shard {
        Some(s) => {
            let (first, n) = s.block(config.clients);
            format!(
                "shard {}/{} of run {}: viewers {first}..{} of {} at {:.2}/s",
                s.index,
                s.count,
                config.run_id,
                first + n - 1,
                config.clients,
                config.ramp_rate / f64::from(s.count)
            )
        }
        None => format!("{} viewers at {}/s", config.clients, config.ramp_rate),
    };
    let _ = writeln!(
        out,
        "hls-swarm {}: {who}{} against {}",
        env!("CARGO_PKG_VERSION"),
        config.duration.map_or_else(
            || ", until stopped".to_owned(),
            |d| format!(" for {}", humantime::format_duration(d))
        ),
        config.shown_url()
    );
}

/// What the run knows of the stream and its viewers before they start.
struct Shape {
    /// With `--measure relay`: where each viewer's relay sends its requests.
    relay: Option<Route>,
    finite: bool,
    target_duration: f64,
    stall_timeout: Duration,
    startup_timeout: Duration,
}

impl Shape {
    /// Each stream's shape, in the order of `config.streams`; warnings about the run's
    /// measurement are written once.
    fn of(
        config: &Config,
        caps: Option<&Capabilities>,
        streams: &[Stream],
        out: &mut (dyn Write + Send),
    ) -> Result<Vec<Shape>, RunError> {
        let given = config.streams.list.iter().zip(streams).enumerate();
        // Native viewers have no relay: they measure their own requests.
        let Some(caps) = caps else {
            return Ok(given
                .map(|(i, (g, s))| Shape::of_stream(config, (i, &g.url), None, s, out))
                .collect());
        };
        let relay = config.measure == Measure::Relay;
        if relay && !caps.has("http_proxy") {
            return Err(RunError::Probe(CapabilityError::Failed {
                binary: config.ffmpeg.binary.display().to_string(),
                status: "it has no -http_proxy option, which --measure relay needs (use --measure log)"
                    .into(),
            }));
        }
        if config.streams.list.iter().any(|s| s.url.scheme() == "https") && !relay {
            let _ = writeln!(
                out,
                "WARNING: with --measure log, FFmpeg viewers do NOT check the origin's TLS certificate"
            );
        }
        if !relay && !config.http.allow_link_local {
            let _ = writeln!(
                out,
                "Note: with --measure log FFmpeg connects by itself, so the link-local address policy covers the probe only"
            );
        }
        if config.secrets.any() && !relay {
            let _ = writeln!(
                out,
                "WARNING: with --measure log, every FFmpeg's command line carries the URL's credentials and \
                 secret headers: other local users can read them (ps, /proc); the relay keeps them out"
            );
        }
        let tls = if relay {
            Some(Tls::new(config.http.trust.client_config()).map_err(RunError::Tls)?)
        } else {
            None
        };
        let mut shapes = Vec::with_capacity(streams.len());
        for (i, (given, stream)) in given {
            let route = tls.as_ref().map(|tls| Route {
                resolve: config.http.resolve,
                // A little longer than FFmpeg's own timeout, so FFmpeg decides failures.
                timeout: config.http.timeout + Duration::from_secs(5),
                tls: Some(tls.clone()),
                secrets: Arc::new(config.secrets.upstream(&given.url, &config.http.headers)),
                allow_link_local: config.http.allow_link_local,
                limits: config.http.limits,
            });
            shapes.push(Shape::of_stream(config, (i, &given.url), route, stream, out));
        }
        Ok(shapes)
    }

    /// What the look at stream `i` (at `url`) says of it, with `relay` for FFmpeg viewers.
    fn of_stream(
        config: &Config,
        (i, url): (usize, &url::Url),
        relay: Option<Route>,
        stream: &Stream,
        out: &mut (dyn Write + Send),
    ) -> Shape {
        let name = if config.streams.many() {
            format!("Stream {} ({})", i + 1, config.secrets.url(url))
        } else {
            "Stream".to_owned()
        };
        let (finite, target_duration) = match &stream.info {
            Ok(i) => {
                let td = i.media.target_duration.unwrap_or(2.0);
                let kind = if i.finite() { "finite (VOD): each viewer plays it once" } else { "live" };
                let variant = match (&i.master, i.chosen) {
                    (Some(m), Some(c)) => format!(", variant {c} of {}", m.variants.len()),
                    (Some(m), None) => format!(", {} variants", m.variants.len()),
                    (None, _) => String::new(),
                };
                let _ = writeln!(out, "{name}: {kind}, target duration {td} s{variant}");
                (i.finite(), td)
            }
            Err(e) => {
                let _ = writeln!(
                    out,
                    "Warning: could not examine the stream{} ({e}); treating it as live, first variant",
                    if config.streams.many() { format!(" {}", i + 1) } else { String::new() }
                );
                (false, 2.0)
            }
        };
        let stall_timeout =
            config.stall_timeout.unwrap_or(Duration::from_secs_f64(2.0 * target_duration.max(0.5)));
        let startup_timeout =
            config.startup_timeout.unwrap_or(Duration::from_secs_f64((5.0 * target_duration).max(10.0)));
        Shape { relay, finite, target_duration, stall_timeout, startup_timeout }
    }
}

/// The live streams' target duration when there is one (every stream live with the same);
/// `None` otherwise.
fn one_target_duration(shapes: &[Shape]) -> Option<f64> {
    let first = shapes.first()?;
    let same = shapes.iter().all(|s| !s.finite && s.target_duration == first.target_duration);
    same.then_some(first.target_duration)
}

/// With several streams, each one as shown and its weight.
fn stream_facts(config: &Config) -> Vec<StreamFact> {
    if !config.streams.many() {
        return Vec::new();
    }
    let list = config.streams.list.iter();
    list.map(|s| StreamFact { url: config.secrets.url(&s.url), weight: s.weight }).collect()
}

/// The machine's limits and FFmpeg's acceptance of the viewer command.
async fn preflight(
    config: &Config,
    commands: Option<&Commands<'_>>,
    out: &mut (dyn Write + Send),
) -> Result<(), RunError> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut list = Checklist { checks: preflight::system_checks(config, cores) };
    if let Some(commands) = commands {
        let proxy = (config.measure == Measure::Relay).then_some("http://127.0.0.1:9");
        list.checks
            .push(preflight::ffmpeg_accepts(&commands.of(0, proxy).argv(), &config.ffmpeg.binary).await);
    }
    let _ = write!(out, "{list}");
    if list.failed() {
        return Err(RunError::Preflight(list));
    }
    Ok(())
}

fn labels(config: &Config, caps: Option<&Capabilities>) -> RunLabels {
    RunLabels {
        stream_url: config.shown_url(),
        variant: config.variant_label(),
        ffmpeg: caps.map_or("none", Capabilities::version_number).to_owned(),
        duration: config.duration.map(|d| d.as_secs_f64()),
        measure: match config.engine {
            EngineKind::Native => "native".to_owned(),
            EngineKind::Ffmpeg => format!("{:?}", config.measure).to_lowercase(),
        },
        streams: stream_facts(config).into_iter().map(|s| s.url).collect(),
    }
}

/// Waits until viewer `id` is due; false if the run stops or its duration ends first.
async fn due(
    plan: &RampPlan,
    id: ViewerId,
    started_at: Instant,
    deadline: Option<tokio::time::Instant>,
    shutdown: &Shutdown,
) -> bool {
    let Some(offset) = plan.offset(id as usize) else { return false };
    tokio::select! {
        () = tokio::time::sleep_until(tokio::time::Instant::from_std(started_at + offset)) => true,
        () = shutdown.stop.cancelled() => false,
        () = sleep_until_opt(deadline) => false,
    }
}

/// Runs until the duration is over, a stop is asked for, or every viewer is done (each played
/// a finite stream to its end); true in the last case.
async fn hold(
    deadline: Option<tokio::time::Instant>,
    shutdown: &Shutdown,
    viewers: &mut JoinSet<()>,
) -> bool {
    let every_viewer_done = async { while viewers.join_next().await.is_some() {} };
    tokio::select! {
        () = shutdown.stop.cancelled() => false,
        () = sleep_until_opt(deadline) => false,
        () = every_viewer_done => !shutdown.stop.is_cancelled(),
    }
}

/// Starts one viewer: its relay, its engine and its supervisor.
struct Starter<'a> {
    config: &'a Config,
    /// The viewers' FFmpeg commands; `None` for native viewers.
    commands: Option<&'a [Commands<'a>]>,
    shapes: &'a [Shape],
    spawner: procgroup::Spawner,
    verdicts: Arc<Verdicts>,
    secrets: Arc<Secrets>,
    /// TLS to https origins for native viewers (one configuration for the run; FFmpeg
    /// viewers' relays have their own).
    tls: Option<tokio_rustls::TlsConnector>,
    /// The fleet's number of this process's viewer 0 (0 unless `--shard`): a viewer's number
    /// in the fleet names it (User-Agent), deals its stream and variant and seeds it, while
    /// its events use its number here.
    first: ViewerId,
}

impl Starter<'_> {
    async fn start(&self, id: ViewerId, sink: &EventSink, shutdown: &Shutdown, viewers: &mut JoinSet<()>) {
        let fleet_id = self.first + id;
        let stream = self.config.streams.for_viewer(fleet_id);
        let shape = &self.shapes[stream];
        let Some(commands) = self.commands.map(|c| &c[stream]) else {
            let engine = NativeEngine::new(self.native(id, &self.config.streams.list[stream].url, sink));
            viewers.spawn(self.supervisor(id, shape, engine).run(sink.clone(), shutdown.clone()));
            return;
        };
        let relay = match &shape.relay {
            None => None,
            Some(route) => match Relay::bind().await {
                Ok(r) => Some((r, route.clone())),
                Err(e) => {
                    let error = format!("cannot open the viewer's relay: {e}");
                    sink.send(id, EventKind::StartFailed { error });
                    return;
                }
            },
        };
        let proxy = relay.as_ref().map(|(r, _)| r.proxy_url());
        let engine = FfmpegEngine::new(
            id,
            commands.of(fleet_id, proxy.as_deref()).argv(),
            self.spawner.clone(),
            sink.clone(),
            relay,
            Duration::from_secs_f64(shape.target_duration.max(0.1)),
            Arc::clone(&self.secrets),
        );
        viewers.spawn(self.supervisor(id, shape, engine).run(sink.clone(), shutdown.clone()));
    }

    fn supervisor<E: Engine>(&self, id: ViewerId, shape: &Shape, engine: E) -> Supervisor<E> {
        Supervisor {
            id,
            engine,
            grace: self.config.ffmpeg.stop_grace,
            restart_after_clean_exit: !shape.finite,
            stall_timeout: self.config.restart_on_stall.then_some(shape.stall_timeout),
            verdicts: Arc::clone(&self.verdicts),
            // Mixed with the id here, this is the seed the fleet's number would give.
            seed: self.config.seed ^ u64::from(self.first + id) ^ u64::from(id),
            backoff_cap: backoff_cap(self.config.clients, self.config.ramp_rate),
            session_length: self.config.session_length,
        }
    }

    /// What native viewer `id` plays (`url`) and how.
    fn native(&self, id: ViewerId, url: &url::Url, sink: &EventSink) -> context::Ctx {
        let http = &self.config.http;
        let value = |v: &str| HeaderValue::from_str(v).ok();
        let mut all: Vec<(HeaderName, HeaderValue)> = Vec::new();
        let fleet_id = self.first + id;
        all.extend(value(&format!("{} viewer/{fleet_id}", http.user_agent)).map(|v| (USER_AGENT, v)));
        let no_cache = NO_CACHE_HEADERS.iter().filter(|_| http.no_cache).copied();
        let given = http.headers.iter().map(|h| (h.name.as_str(), h.value.as_str()));
        for (name, v) in no_cache.chain(given) {
            if let (Ok(n), Some(v)) = (HeaderName::from_bytes(name.as_bytes()), value(v)) {
                all.push((n, v));
            }
        }
        let upstream = self.config.secrets.upstream(url, &[]);
        let basic = upstream.basic.as_deref().and_then(value).map(|v| (upstream.authority.clone(), v));
        context::Ctx {
            id,
            sink: sink.clone(),
            url: url.clone(),
            variant: self.config.variant_for(fleet_id),
            dial: Dial {
                resolve: http.resolve,
                timeout: http.timeout,
                allow_link_local: http.allow_link_local,
                tls: self.tls.clone(),
            },
            headers: Arc::new(Headers { all, basic }),
            secrets: Arc::clone(&self.secrets),
            limits: http.limits,
            cmcd: self.config.cmcd,
            startup_buffer: self.config.startup_buffer,
            random_start: self.config.random_start,
            http2: self.config.http2,
            // The player mixes in its id (shifted by 32): the fleet number's seed.
            seed: self.config.seed ^ (u64::from(fleet_id ^ id) << 32),
        }
    }
}

/// TLS for native viewers: the run's trust, offering HTTP/2 before HTTP/1.1 with `--http2`.
fn native_tls(config: &Config) -> tokio_rustls::TlsConnector {
    let mut tls = config.http.trust.client_config();
    if config.http2 {
        Arc::make_mut(&mut tls).alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    tokio_rustls::TlsConnector::from(tls)
}

/// Waits until `at` (`--start-at`); how late the start is, if more than [`fleet::LATE`].
async fn wait_until(at: SystemTime, out: &mut (dyn Write + Send)) -> Option<Duration> {
    match at.duration_since(SystemTime::now()) {
        Ok(wait) => {
            let _ = writeln!(out, "Starting at --start-at, in {:.1} s", wait.as_secs_f64());
            tokio::time::sleep(wait).await;
            None
        }
        Err(e) if e.duration() > fleet::LATE => {
            let late = e.duration();
            let _ = writeln!(
                out,
                "WARNING: starting {:.1} s after --start-at (a late shard, or clocks that disagree): the report says so",
                late.as_secs_f64()
            );
            Some(late)
        }
        Err(_) => None,
    }
}

/// Waits for the next whole wall-clock second (less than one), so that the run's seconds are
/// wall-clock seconds and runs on several machines merge second by second.
async fn start_on_a_whole_second() -> (Instant, SystemTime) {
    let into = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    tokio::time::sleep(Duration::from_nanos(u64::from(1_000_000_000 - into))).await;
    (Instant::now(), SystemTime::now())
}

fn unix_seconds(t: SystemTime) -> u64 {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    since.as_secs() + u64::from(since.subsec_millis() >= 500)
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
