//! The orchestrator: preflight, ramp, run, stop, summary.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::control::check;
use crate::control::config::Config;
use crate::control::examine::{self, Fetcher};
use crate::control::plan::RampPlan;
use crate::control::preflight::{self, Report};
use crate::engine::ffmpeg::command::{Capabilities, ProbeError, Selection, ViewerCommand};
use crate::engine::ffmpeg::relay::{Relay, Route};
use crate::engine::supervisor::{Shutdown, Viewer};
use crate::measure::events::{EventKind, EventSink};
use crate::measure::fold::{self, Measure, Snapshot, Stats};
use crate::measure::origin::{self, OriginSnapshot};
use crate::output::metrics::{self, RunLabels};
use crate::output::outcome::Outcome;
use crate::output::summary::{self, RunFacts};
use crate::output::tui::{self, Dashboard};

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
    Probe(#[from] ProbeError),
    /// A preflight check failed; the report was printed.
    #[error("preflight checks failed (fix them, or pass --skip-preflight to run anyway)")]
    Preflight(Report),
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
    /// Installing signal handlers or starting threads failed.
    #[error("cannot set up the run (signal handlers, threads): {0}")]
    Signals(#[source] std::io::Error),
}

/// The origin scraper of a run.
#[derive(Debug)]
struct OriginScrape {
    receiver: watch::Receiver<OriginSnapshot>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl OriginScrape {
    /// Stops scraping; returns the last figures.
    async fn finish(self) -> OriginSnapshot {
        self.stop.cancel();
        let _ = self.task.await;
        let last = self.receiver.borrow().clone();
        last
    }
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
    let mut sigint = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(RunError::Signals)?;

    let caps = Capabilities::probe(&config.ffmpeg.binary).await?;
    if config.print_cmd {
        let selection = Selection::from_variant(config.variant);
        let proxy = (config.measure == Measure::Relay).then_some("http://127.0.0.1:RELAY_PORT");
        let cmd = ViewerCommand {
            options: &config.ffmpeg,
            http: &config.http,
            caps: &caps,
            url: &config.url,
            selection,
            viewer: 0,
            proxy,
        };
        let _ = writeln!(out, "# FFmpeg command of viewer 0 ({}):", caps.version);
        if proxy.is_some() {
            let _ = writeln!(
                out,
                "# (--measure relay: each viewer's -http_proxy is its own relay inside hls-swarm, on a free port)"
            );
        }
        let _ = writeln!(out, "{}", cmd.display());
        return Ok(Finished::Printed);
    }

    // One look at the stream: which variant, how long segments are, whether it is finite.
    let fetcher = Fetcher::new(&config.http, &config.url);
    let info = match &fetcher {
        Ok(f) => examine::examine(f, &config.url, config.variant).await,
        Err(e) => Err(e.clone()),
    };
    let selection = match &info {
        Ok(i) if i.chosen.is_some() => Selection::Program(i.chosen.unwrap_or(0)),
        _ => Selection::from_variant(config.variant),
    };
    let command = |viewer, proxy| ViewerCommand {
        options: &config.ffmpeg,
        http: &config.http,
        caps: &caps,
        url: &config.url,
        selection,
        viewer,
        proxy,
    };

    if config.check {
        let probed = match (&fetcher, &info) {
            (Ok(f), Ok(i)) => Ok((f, i)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let (verdict, report) = check::run(&config, probed, &command(0, None)).await;
        let _ = write!(out, "{report}");
        return Ok(Finished::Checked(verdict));
    }

    let _ = writeln!(
        out,
        "hls-swarm {}: {} viewers at {}/s{} against {}",
        env!("CARGO_PKG_VERSION"),
        config.clients,
        config.ramp_rate,
        config.duration.map_or_else(
            || ", until stopped".to_owned(),
            |d| format!(" for {}", humantime::format_duration(d))
        ),
        config.url
    );
    let relay = config.measure == Measure::Relay;
    if relay && !caps.has("http_proxy") {
        return Err(RunError::Probe(ProbeError::Failed {
            binary: config.ffmpeg.binary.display().to_string(),
            status: "it has no -http_proxy option, which --measure relay needs (use --measure log)".into(),
        }));
    }
    if config.http.resolve.is_some() && config.url.scheme() == "https" && !relay {
        let _ = writeln!(
            out,
            "WARNING: --resolve with https: viewers connect to {} and do NOT verify the server's certificate",
            config.http.resolve.map(|ip| ip.to_string()).unwrap_or_default()
        );
    }
    let (finite, target_duration) = match &info {
        Ok(i) => {
            let td = i.media.target_duration.unwrap_or(2.0);
            let kind = if i.finite() { "finite (VOD): each viewer plays it once" } else { "live" };
            let variant = match (&i.master, i.chosen) {
                (Some(m), Some(c)) => format!(", variant {c} of {}", m.variants.len()),
                (Some(m), None) => format!(", {} variants", m.variants.len()),
                (None, _) => String::new(),
            };
            let _ = writeln!(out, "Stream: {kind}, target duration {td} s{variant}");
            (i.finite(), td)
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "Warning: could not examine the stream ({e}); treating it as live, first variant"
            );
            (false, 2.0)
        }
    };
    let stall_timeout =
        config.stall_timeout.unwrap_or(Duration::from_secs_f64(2.0 * target_duration.max(0.5)));

    if !config.skip_preflight {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let mut report = Report { checks: preflight::system_checks(&config, cores) };
        let proxy = relay.then_some("http://127.0.0.1:9");
        report.checks.push(preflight::ffmpeg_accepts(&command(0, proxy).argv(), &config.ffmpeg.binary).await);
        let _ = write!(out, "{report}");
        if report.failed() {
            return Err(RunError::Preflight(report));
        }
    }

    let plan = RampPlan::new(config.clients, config.ramp_rate, config.ramp_jitter, config.seed);
    let started_at = Instant::now();
    let started_wall = std::time::SystemTime::now();
    let (sink, events, dropped) = EventSink::channel(EVENT_QUEUE);
    let (publish, snapshots) = watch::channel(Snapshot::default());
    let stats_task = tokio::spawn(fold::run(
        Stats::new(
            config.clients,
            started_at,
            plan.offsets(),
            Arc::clone(&dropped),
            config.measure,
            Duration::from_secs_f64(target_duration.max(0.1)),
        ),
        events,
        publish,
        STATS_TICK,
    ));

    let shutdown = Shutdown::default();
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let signals = {
        let shutdown = shutdown.clone();
        let interrupted = Arc::clone(&interrupted);
        tokio::spawn(async move {
            for round in 0..2 {
                tokio::select! {
                    _ = sigint.recv() => {}
                    _ = sigterm.recv() => {}
                }
                if round == 0 {
                    interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
                    shutdown.stop.cancel();
                } else {
                    shutdown.kill.cancel();
                }
            }
        })
    };

    // The origin's exporters are scraped for the whole run (never fatal); the channel exists
    // now for /metrics, the scraper starts once nothing else can fail.
    let origin_channel = config.origin_metrics.is_some().then(|| watch::channel(OriginSnapshot::default()));

    let metrics_server = match config.metrics {
        Some(addr) => {
            let labels = RunLabels {
                stream_url: config.url.to_string(),
                variant: format!("{:?}", config.variant).to_lowercase(),
                ffmpeg: caps.version_number().to_owned(),
                duration: config.duration.map(|d| d.as_secs_f64()),
                measure: format!("{:?}", config.measure).to_lowercase(),
            };
            let sources = metrics::Sources {
                swarm: snapshots.clone(),
                origin: origin_channel.as_ref().map(|(_, rx)| rx.clone()),
            };
            match metrics::Server::start(addr, sources, labels).await {
                Ok(server) => {
                    let _ = writeln!(out, "Metrics: http://{}/metrics", server.addr);
                    Some(server)
                }
                Err(source) => {
                    signals.abort();
                    drop(sink);
                    let _ = stats_task.await;
                    return Err(RunError::MetricsBind { addr, source });
                }
            }
        }
        None => None,
    };

    // The dashboard takes the terminal from here until the stop; without it, status lines.
    let dashboard = if config.tui {
        let header = tui::Header {
            url: config.url.to_string(),
            clients: config.clients,
            duration: config.duration,
            measure: config.measure,
            metrics: metrics_server.as_ref().map(|s| s.addr.to_string()),
        };
        let origin = origin_channel.as_ref().map(|(_, rx)| rx.clone());
        match Dashboard::start(header, snapshots.clone(), origin, shutdown.stop.clone()) {
            Ok(d) => Some(d),
            Err(e) => {
                let _ = writeln!(out, "The dashboard cannot use this terminal ({e}); printing status lines");
                None
            }
        }
    } else {
        None
    };
    let status = dashboard.is_none().then(|| {
        tokio::spawn(print_status(snapshots.clone(), config.status_interval, shutdown.stop.clone()))
    });

    // Forks happen on these threads, never on the async workers (see procgroup::Spawner).
    let spawner = match procgroup::Spawner::new(SPAWNER_THREADS, tokio::runtime::Handle::current()) {
        Ok(s) => s,
        Err(e) => {
            signals.abort();
            drop(sink);
            let _ = stats_task.await;
            return Err(RunError::Signals(e));
        }
    };
    let origin = match (config.origin_metrics.clone(), origin_channel) {
        (Some(targets), Some((tx, receiver))) => {
            let stop = tokio_util::sync::CancellationToken::new();
            let interval = config.origin_metrics_interval;
            let task = tokio::spawn(origin::run(targets, interval, tx, stop.clone()));
            Some(OriginScrape { receiver, stop, task })
        }
        _ => None,
    };
    let deadline = config.duration.map(|d| tokio::time::Instant::from_std(started_at) + d);
    // The relay waits a little longer than FFmpeg's own timeout, so FFmpeg decides failures.
    let route = Route { resolve: config.http.resolve, timeout: config.http.timeout + Duration::from_secs(5) };
    let mut viewers = JoinSet::new();
    for i in 0..plan.len() {
        let Some(offset) = plan.offset(i) else { break };
        tokio::select! {
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(started_at + offset)) => {}
            () = shutdown.stop.cancelled() => break,
            () = sleep_until_opt(deadline) => break,
        }
        let id = u32::try_from(i).unwrap_or(u32::MAX);
        let relay = match (relay, Relay::bind().await) {
            (false, _) => None,
            (true, Ok(r)) => Some(r),
            (true, Err(e)) => {
                sink.send(
                    id,
                    EventKind::SpawnFailed { error: format!("cannot open the viewer's relay: {e}") },
                );
                continue;
            }
        };
        let proxy = relay.as_ref().map(Relay::proxy_url);
        let viewer = Viewer {
            id,
            argv: ViewerCommand { proxy: proxy.as_deref(), ..command(id, None) }.argv(),
            relay: relay.map(|r| (r, route.clone())),
            assumed_segment: Duration::from_secs_f64(target_duration.max(0.1)),
            grace: config.ffmpeg.stop_grace,
            restart_after_clean_exit: !finite,
            stall_timeout: config.restart_on_stall.then_some(stall_timeout),
            seed: config.seed,
            spawner: spawner.clone(),
        };
        viewers.spawn(viewer.run(sink.clone(), shutdown.clone()));
    }

    tokio::select! {
        () = shutdown.stop.cancelled() => {}
        () = sleep_until_opt(deadline) => {}
    }
    sink.send(0, EventKind::RunStopping);
    let stopped_early = shutdown.stop.is_cancelled();
    let quit_from_dashboard = stopped_early && !interrupted.load(std::sync::atomic::Ordering::SeqCst);
    if let Some(d) = dashboard {
        if let Err(e) = d.close().await {
            let _ = writeln!(out, "The dashboard failed: {e}");
        }
        let running = snapshots.borrow().running;
        let _ = writeln!(out, "Stopping: ending {running} viewers…");
    }
    let stop_began = Instant::now();
    shutdown.stop.cancel();
    while viewers.join_next().await.is_some() {}
    let stop_seconds = stop_began.elapsed().as_secs_f64();
    drop(sink);
    signals.abort();
    if let Some(status) = status {
        let _ = status.await;
    }
    let (snapshot, series) = stats_task.await.unwrap_or_default();
    if let Some(server) = metrics_server {
        server.shutdown();
    }
    let origin = match origin {
        Some(o) => Some(o.finish().await),
        None => None,
    };
    let facts = RunFacts {
        url: config.url.to_string(),
        ffmpeg: format!("FFmpeg {}", caps.version_number()),
        run_seconds: stop_began.duration_since(started_at).as_secs_f64(),
        ramp_rate: config.ramp_rate,
        interrupted: stopped_early,
        quit_from_dashboard,
        stop_seconds,
        target_duration: (!finite).then_some(target_duration),
        started: started_wall,
        duration: config.duration.map(|d| d.as_secs_f64()),
    };
    let checks = config.asserts.iter().map(|a| a.check(&snapshot)).collect();
    Ok(Finished::Run(Box::new(Outcome { snapshot, series, facts, origin, checks })))
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn print_status(
    snapshots: watch::Receiver<Snapshot>,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let line = summary::status_line(&snapshots.borrow());
                println!("{line}");
            }
            () = stop.cancelled() => return,
        }
    }
}
