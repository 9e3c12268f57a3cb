//! The native engine (`--engine native`): each viewer is a task inside `hls-swarm` that plays
//! HLS itself over tokio and hyper ([`player`]), with its own keep-alive connection per track
//! ([`http`]). No process, no decoder: a viewer costs a few KB and a little CPU per request,
//! so one machine plays thousands. It reports the same events as an FFmpeg viewer through its
//! relay, all measured, so the stats, dashboard, metrics, report and `--assert` are the same.

pub mod abr;
pub mod cmcd;
pub mod context;
pub mod http;
pub mod llhls;
pub mod player;
pub mod threads;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::engine::native::context::Ctx;
use crate::engine::supervisor::{Engine, Session};
use crate::measure::events::Ending;

/// One native viewer.
#[derive(Debug)]
pub struct NativeEngine {
    ctx: Arc<Ctx>,
    /// Sessions started so far.
    sessions: u32,
}

impl NativeEngine {
    /// The engine of the viewer `ctx` describes.
    #[must_use]
    pub fn new(ctx: Ctx) -> NativeEngine {
        NativeEngine { ctx: Arc::new(ctx), sessions: 0 }
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
    /// Lets the player begin once the session's start is reported.
    go: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Engine for NativeEngine {
    const NAME: &'static str = "the native player";
    type Session = NativeSession;

    async fn start(&mut self) -> Result<NativeSession, String> {
        let started = Instant::now();
        let stop = CancellationToken::new();
        let (go, gate) = tokio::sync::oneshot::channel();
        let (ctx, token, session) = (Arc::clone(&self.ctx), stop.clone(), self.sessions);
        self.sessions = self.sessions.wrapping_add(1);
        // Its events must follow the session's start in the fold: it waits for the report.
        let play = async move {
            match gate.await {
                Ok(()) => player::play(ctx, session, token).await,
                Err(_) => Ok(()),
            }
        };
        let task = match threads::for_viewer(self.ctx.id) {
            Some(players) => players.spawn(play),
            None => tokio::spawn(play),
        };
        Ok(NativeSession { task, stop, started, took: started.elapsed(), tail: Vec::new(), go: Some(go) })
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

    fn reported(&mut self) {
        if let Some(go) = self.go.take() {
            let _ = go.send(());
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::native::http::Headers;
    use crate::engine::secrets::Secrets;
    use crate::engine::settings::Variant;
    use crate::engine::upstream::Dial;
    use crate::measure::events::{EventKind, EventSink, Message};

    /// The player begins only once its session's start is reported, so its first request can
    /// never reach the fold before the session it belongs to (that made a fast first segment
    /// look like a re-join).
    #[tokio::test]
    async fn a_player_waits_until_its_start_is_reported() {
        let (sink, mut rx, _) = EventSink::channel(16);
        // Port 9 on loopback: the connection is refused at once, which is an event.
        let url = url::Url::parse("http://127.0.0.1:9/live.m3u8").unwrap();
        let ctx = Ctx {
            id: 0,
            sink,
            secrets: Arc::new(Secrets::new(&url, &[], &[])),
            url,
            variant: Variant::First,
            dial: Dial { resolve: None, timeout: Duration::from_secs(1), allow_link_local: false, tls: None },
            headers: Arc::new(Headers { all: Vec::new(), basic: None }),
            limits: crate::engine::limits::Limits::default(),
            cmcd: None,
            startup_buffer: Duration::ZERO,
            random_start: false,
            http2: false,
            seed: 0,
        };
        let mut engine = NativeEngine::new(ctx);
        let mut session = engine.start().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(rx.try_recv().is_err(), "no event before the start is reported");
        session.reported();
        let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
        let Message::Event(e) = first else { panic!("{first:?}") };
        assert!(matches!(e.kind, EventKind::Request(ref r) if r.network_error.is_some()), "{:?}", e.kind);
        session.stop(Duration::from_secs(1), &CancellationToken::new()).await;
    }
}
