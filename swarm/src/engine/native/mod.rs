//! The native engine (`--engine native`): each viewer is a task inside `hls-swarm` that plays
//! HLS itself over tokio and hyper ([`player`]), with its own keep-alive connection per track
//! ([`http`]). No process, no decoder: a viewer costs a few KB and a little CPU per request,
//! so one machine plays thousands. It reports the same events as an FFmpeg viewer through its
//! relay, all measured, so the stats, dashboard, metrics, report and `--assert` are the same.

pub mod abr;
pub mod http;
pub mod player;
pub mod threads;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::engine::native::player::Ctx;
use crate::engine::supervisor::{Engine, Session};
use crate::measure::events::Ending;

/// One native viewer.
#[derive(Debug)]
pub struct NativeEngine {
    ctx: Arc<Ctx>,
}

impl NativeEngine {
    /// The engine of the viewer `ctx` describes.
    #[must_use]
    pub fn new(ctx: Ctx) -> NativeEngine {
        NativeEngine { ctx: Arc::new(ctx) }
    }
}

/// One session: the player task.
#[derive(Debug)]
pub struct NativeSession {
    task: JoinHandle<Result<(), String>>,
    stop: CancellationToken,
    started: Instant,
    took: Duration,
    tail: Vec<String>,
}

impl Engine for NativeEngine {
    const NAME: &'static str = "the native player";
    type Session = NativeSession;

    async fn start(&mut self) -> Result<NativeSession, String> {
        let started = Instant::now();
        let stop = CancellationToken::new();
        let play = player::play(Arc::clone(&self.ctx), stop.clone());
        let task = match threads::for_viewer(self.ctx.id) {
            Some(players) => players.spawn(play),
            None => tokio::spawn(play),
        };
        Ok(NativeSession { task, stop, started, took: started.elapsed(), tail: Vec::new() })
    }

    async fn close(self) {}
}

impl NativeSession {
    fn ending(&mut self, joined: Result<Result<(), String>, tokio::task::JoinError>) -> Ending {
        match joined {
            Ok(Ok(())) => Ending { code: 0, label: "ended".into() },
            Ok(Err(reason)) => {
                self.tail = vec![reason];
                Ending { code: 1, label: "player error".into() }
            }
            Err(e) if e.is_cancelled() => Ending { code: 137, label: "stopped at once".into() },
            Err(e) => {
                self.tail = vec![format!("the player task failed: {e}")];
                Ending { code: 101, label: "player panicked".into() }
            }
        }
    }
}

impl Session for NativeSession {
    fn started(&self) -> (Instant, Duration) {
        (self.started, self.took)
    }

    async fn ended(&mut self) -> Ending {
        let joined = (&mut self.task).await;
        self.ending(joined)
    }

    async fn stop(&mut self, grace: Duration, kill: &CancellationToken) -> Ending {
        self.stop.cancel();
        let joined = tokio::select! {
            j = tokio::time::timeout(grace, &mut self.task) => j.ok(),
            () = kill.cancelled() => None,
        };
        match joined {
            Some(j) => {
                let ending = self.ending(j);
                if ending.success() {
                    Ending { code: 0, label: "stopped".into() }
                } else {
                    ending
                }
            }
            None => {
                self.task.abort();
                let _ = (&mut self.task).await;
                Ending { code: 137, label: "stopped at once".into() }
            }
        }
    }

    fn tail(&mut self) -> Vec<String> {
        std::mem::take(&mut self.tail)
    }
}

impl Drop for NativeSession {
    fn drop(&mut self) {
        // A session dropped without a stop (the run's task set torn down) takes its player
        // with it.
        self.stop.cancel();
        self.task.abort();
    }
}
