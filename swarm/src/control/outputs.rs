//! What a run shows while it runs: `/metrics`, the dashboard or status lines, and the origin
//! scraper that feeds both. Started once nothing else can fail, closed before the summary.
//! Also the event log (`--report FILE.ndjson`), which the fold feeds from the start.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::control::config::Config;
use crate::measure::fold::Stats;
use crate::measure::origin::{self, OriginSnapshot};
use crate::measure::snapshot::{Measure, Snapshot};
use crate::measure::trail::{self, Trail, TrailSink};
use crate::output::eventlog::{self, EventLog, RunLine};
use crate::output::metrics::{self, RunLabels};
use crate::output::summary;
use crate::output::tui;
use crate::output::tui::terminal::Dashboard;

/// The running outputs of a run.
#[derive(Debug)]
pub struct Outputs {
    metrics: Option<metrics::Server>,
    dashboard: Option<Dashboard>,
    status: Option<tokio::task::JoinHandle<()>>,
    origin: Option<OriginScrape>,
    origin_stop: CancellationToken,
}

/// The origin scraper of a run.
#[derive(Debug)]
struct OriginScrape {
    receiver: watch::Receiver<OriginSnapshot>,
    task: tokio::task::JoinHandle<()>,
}

impl Outputs {
    /// Starts `/metrics` (if asked), the dashboard (or status lines every
    /// `--status-interval` without one) and the origin scraper, all reading `snapshots`.
    /// `stop` is what the dashboard's `q` cancels, and what ends the status lines.
    ///
    /// # Errors
    /// The metrics address cannot be bound (nothing else is left running then).
    pub async fn start(
        config: &Config,
        labels: RunLabels,
        snapshots: &watch::Receiver<Arc<Snapshot>>,
        stop: &CancellationToken,
        out: &mut (dyn Write + Send),
    ) -> Result<Outputs, (std::net::SocketAddr, std::io::Error)> {
        // The scraper's channel exists now for /metrics and the dashboard; the scraper itself
        // starts last, once nothing else can fail.
        let origin_channel =
            config.origin_metrics.is_some().then(|| watch::channel(OriginSnapshot::default()));
        let origin_rx = origin_channel.as_ref().map(|(_, rx)| rx.clone());
        let metrics = match config.metrics {
            Some(addr) => {
                let sources = metrics::Sources { swarm: snapshots.clone(), origin: origin_rx.clone() };
                let server = metrics::Server::start(addr, sources, labels).await.map_err(|e| (addr, e))?;
                let _ = writeln!(out, "Metrics: http://{}/metrics", server.addr);
                Some(server)
            }
            None => None,
        };
        let dashboard = if config.tui {
            let header = tui::Banner {
                url: config.shown_url(),
                clients: config.clients,
                duration: config.duration,
                measure: config.measure,
                metrics: metrics.as_ref().map(|s| s.addr.to_string()),
            };
            match Dashboard::start(header, snapshots.clone(), origin_rx, stop.clone()) {
                Ok(d) => Some(d),
                Err(e) => {
                    let _ =
                        writeln!(out, "The dashboard cannot use this terminal ({e}); printing status lines");
                    None
                }
            }
        } else {
            None
        };
        let status = dashboard
            .is_none()
            .then(|| tokio::spawn(print_status(snapshots.clone(), config.status_interval, stop.clone())));
        let origin_stop = CancellationToken::new();
        let origin = match (config.origin_metrics.clone(), origin_channel) {
            (Some(targets), Some((tx, receiver))) => {
                let interval = config.origin_metrics_interval;
                let watts = config.origin_watts_per_core;
                let task = tokio::spawn(origin::run(targets, interval, watts, tx, origin_stop.clone()));
                Some(OriginScrape { receiver, task })
            }
            _ => None,
        };
        Ok(Outputs { metrics, dashboard, status, origin, origin_stop })
    }

    /// Gives the terminal back (the stop has begun); says how many viewers are being ended.
    pub async fn close_dashboard(&mut self, running: u32, out: &mut (dyn Write + Send)) {
        if let Some(d) = self.dashboard.take() {
            if let Err(e) = d.close().await {
                let _ = writeln!(out, "The dashboard failed: {e}");
            }
            let _ = writeln!(out, "Stopping: ending {running} viewers…");
        }
    }

    /// Ends everything (the status lines end with the run's stop token); returns the origin's
    /// last figures, if it was scraped.
    pub async fn finish(mut self, out: &mut (dyn Write + Send)) -> Option<OriginSnapshot> {
        self.close_dashboard(0, out).await;
        if let Some(status) = self.status.take() {
            let _ = status.await;
        }
        if let Some(server) = self.metrics.take() {
            server.shutdown();
        }
        let scrape = self.origin.take()?;
        self.origin_stop.cancel();
        let _ = scrape.task.await;
        let last = scrape.receiver.borrow().clone();
        Some(last)
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        self.origin_stop.cancel();
        if let Some(server) = self.metrics.take() {
            server.shutdown();
        }
    }
}

async fn print_status(snapshots: watch::Receiver<Arc<Snapshot>>, every: Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let snapshot = Arc::clone(&snapshots.borrow());
                println!("{}", summary::status_line(&snapshot));
            }
            () = stop.cancelled() => return,
        }
    }
}

/// Starts the event log if a `--report FILE.ndjson` asks for one: `stats` (of this process's
/// `local` viewers, numbered from `first` in the fleet) passes every request and viewer state
/// change on to it from the run's start (`started`, on both clocks).
///
/// # Errors
/// Its writer's thread cannot be started.
pub fn event_log(
    config: &Config,
    stats: Stats,
    (first, local): (u32, u32),
    started: (Instant, SystemTime),
) -> std::io::Result<(Stats, Option<EventLog>)> {
    use crate::engine::settings::EngineKind;
    use crate::output::report::Format;
    let Some(file) = config.reports.iter().find(|t| t.format == Format::Events) else {
        return Ok((stats, None));
    };
    let (engine, measure) = match (config.engine, config.measure) {
        (EngineKind::Native, _) => ("native", "native"),
        (EngineKind::Ffmpeg, Measure::Relay) => ("ffmpeg", "relay"),
        (EngineKind::Ffmpeg, Measure::Log) => ("ffmpeg", "log"),
    };
    let run = RunLine {
        version: env!("CARGO_PKG_VERSION"),
        run_id: config.run_id.clone(),
        engine,
        measure,
        clients: config.clients,
        viewers: local,
        first_viewer: first,
        shard: config.shard,
        streams: config.streams.list.iter().map(|s| config.secrets.url(&s.url)).collect(),
        max_size_bytes: config.events_max_size,
    };
    let target = eventlog::Target {
        path: file.path.clone(),
        max_bytes: config.events_max_size,
        secrets: config.secrets.clone(),
        started,
    };
    let (sink, records, behind) = TrailSink::channel(trail::QUEUE);
    let log = EventLog::start(target, run, records, behind)?;
    Ok((stats.with_trail(Trail::new(sink, started.0, first, local)), Some(log)))
}
