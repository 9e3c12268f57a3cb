//! One viewer's supervisor: run FFmpeg, read its log, restart it with backoff, stop it cleanly.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use procgroup::{Backoff, Exit, Group};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::io::AsyncReadExt;
use tokio::process::{ChildStderr, Command};
use tokio_util::sync::CancellationToken;

use crate::events::{EventKind, EventSink, FinishReason, ViewerId};
use crate::parser::{parse_line, LineSplitter};
use crate::stats::TAIL_LINES;

/// A process that ran this long counts as healthy: its next failure starts the backoff over.
pub const HEALTHY_UPTIME: Duration = Duration::from_secs(30);

/// How the run asks viewers to end.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Cancelled when the run ends: viewers stop gracefully (SIGTERM, grace, SIGKILL).
    pub stop: CancellationToken,
    /// Cancelled on a second interrupt: viewers are killed at once.
    pub kill: CancellationToken,
}

/// Everything one viewer needs.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Its number.
    pub id: ViewerId,
    /// The FFmpeg argv, program first.
    pub argv: Vec<OsString>,
    /// Grace period after SIGTERM.
    pub grace: Duration,
    /// Restart after a clean exit (live streams); false for finite (VOD) streams.
    pub restart_after_clean_exit: bool,
    /// Seed for this viewer's backoff jitter.
    pub seed: u64,
}

impl Viewer {
    /// Runs the viewer until the run ends or its stream does.
    pub async fn run(self, sink: EventSink, shutdown: Shutdown) {
        let mut backoff = Backoff::default();
        let mut rng = StdRng::seed_from_u64(self.seed ^ u64::from(self.id));
        let reason = loop {
            if shutdown.stop.is_cancelled() {
                break FinishReason::Shutdown;
            }
            let healthy = match self.run_once(&sink, &shutdown).await {
                Outcome::Stopped => break FinishReason::Shutdown,
                Outcome::Exited { exit, uptime } => {
                    if exit.success() && !self.restart_after_clean_exit {
                        break FinishReason::StreamEnded;
                    }
                    uptime >= HEALTHY_UPTIME
                }
                Outcome::SpawnFailed => false,
            };
            if healthy {
                backoff.reset();
            }
            let delay = backoff.next_delay(&mut rng);
            sink.send(self.id, EventKind::Backoff { delay });
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.stop.cancelled() => break FinishReason::Shutdown,
            }
        };
        sink.send(self.id, EventKind::Finished { reason });
    }

    async fn run_once(&self, sink: &EventSink, shutdown: &Shutdown) -> Outcome {
        let Some((program, args)) = self.argv.split_first() else {
            return Outcome::SpawnFailed;
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut group = match procgroup::spawn(&mut cmd) {
            Ok(g) => g,
            Err(e) => {
                sink.send(
                    self.id,
                    EventKind::SpawnFailed {
                        error: format!("cannot start {}: {e}", program.to_string_lossy()),
                    },
                );
                return Outcome::SpawnFailed;
            }
        };
        let started = Instant::now();
        sink.send(self.id, EventKind::Spawned { pid: group.pid() });
        let stderr = group.child_mut().stderr.take();
        let mut tail = VecDeque::with_capacity(TAIL_LINES);
        let (exit, stopped_by_us) = self.watch(&mut group, stderr, sink, shutdown, &mut tail).await;
        let uptime = started.elapsed();
        let tail = if stopped_by_us {
            Vec::new()
        } else {
            tail.into_iter().collect()
        };
        sink.send(
            self.id,
            EventKind::Exited {
                exit,
                uptime,
                stopped_by_us,
                tail,
            },
        );
        if stopped_by_us {
            Outcome::Stopped
        } else {
            Outcome::Exited { exit, uptime }
        }
    }

    /// Reads the log until the process exits or the run stops it. Returns how it ended and
    /// whether we ended it.
    async fn watch(
        &self,
        group: &mut Group,
        mut stderr: Option<ChildStderr>,
        sink: &EventSink,
        shutdown: &Shutdown,
        tail: &mut VecDeque<String>,
    ) -> (Exit, bool) {
        let mut splitter = LineSplitter::default();
        let mut buf = vec![0u8; 8192];
        let mut on_line = |line: &str| {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.to_owned());
            if let Some(ev) = parse_line(line) {
                sink.send(self.id, EventKind::Log(ev));
            }
        };
        loop {
            tokio::select! {
                biased;
                () = shutdown.stop.cancelled() => {
                    return (stop(group, self.grace, &shutdown.kill).await, true);
                }
                read = read_some(&mut stderr, &mut buf), if stderr.is_some() => match read {
                    Some(n) => splitter.feed(&buf[..n], &mut on_line),
                    None => {
                        splitter.finish(&mut on_line);
                        stderr = None;
                    }
                },
                status = group.wait(), if stderr.is_none() => {
                    let exit = status.map_or(Exit::Code(-1), Exit::from);
                    return (exit, false);
                }
            }
        }
    }
}

enum Outcome {
    Stopped,
    Exited { exit: Exit, uptime: Duration },
    SpawnFailed,
}

/// Reads one chunk; `None` at end of stream or on error.
async fn read_some(stderr: &mut Option<ChildStderr>, buf: &mut [u8]) -> Option<usize> {
    match stderr.as_mut()?.read(buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

/// Graceful stop, cut short by a second interrupt.
async fn stop(group: &mut Group, grace: Duration, kill: &CancellationToken) -> Exit {
    if kill.is_cancelled() {
        return kill_now(group).await;
    }
    tokio::select! {
        r = group.stop(grace) => r.unwrap_or(Exit::Code(-1)),
        () = kill.cancelled() => kill_now(group).await,
    }
}

async fn kill_now(group: &mut Group) -> Exit {
    let _ = group.signal(Signal::SIGKILL);
    group.wait().await.map_or(Exit::Code(-1), Exit::from)
}
