//! Keeps one child process running: spawn through `procgroup`, restart with backoff, stop on
//! request. Every supervisor writes its child's state to a shared [`Board`] that `/health`
//! renders.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use procgroup::{Backoff, Exit, Group};
use serde::Serialize;
use tokio::process::Command;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Error;

/// A child that ran at least this long counts as healthy: its next failure restarts quickly.
const HEALTHY_RUN: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Short name (`ffmpeg`, `nginx`, `node-exporter`, ...).
    pub name: String,
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// stdout and stderr are appended here.
    pub log: PathBuf,
}

/// Life-cycle state of a supervised child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Running.
    Running,
    /// Exited; waiting for the backoff delay before the next start.
    Restarting,
    /// Stopped on request.
    Stopped,
    /// A built-in task rather than a process (the replay publisher).
    Task,
}

/// One row of the board.
#[derive(Debug, Clone, Serialize)]
pub struct ChildStatus {
    /// Current state.
    pub state: State,
    /// Pid of the running process (also its process group id).
    pub pid: Option<u32>,
    /// Times it was restarted after exiting on its own.
    pub restarts: u32,
    /// How the last run ended, e.g. `signal 9 (SIGKILL)`.
    pub last_exit: Option<String>,
    /// When the current run started, seconds since the Unix epoch.
    pub since_unix: u64,
    /// The log file stdout and stderr go to.
    pub log: Option<PathBuf>,
}

/// Shared state of every child, by name.
#[derive(Debug, Clone, Default)]
pub struct Board(Arc<Mutex<BTreeMap<String, ChildStatus>>>);

impl Board {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, ChildStatus>> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of every row.
    #[must_use]
    pub fn snapshot(&self) -> BTreeMap<String, ChildStatus> {
        self.lock().clone()
    }

    /// Sets or replaces `name`'s row.
    pub fn set(&self, name: &str, status: ChildStatus) {
        self.lock().insert(name.to_owned(), status);
    }

    /// Notes a failure of `name` that did not end it (e.g. a segment the publisher could not write).
    pub fn record_failure(&self, name: &str, what: String) {
        self.update(name, |r| {
            r.restarts += 1;
            r.last_exit = Some(what);
        });
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut ChildStatus)) {
        if let Some(row) = self.lock().get_mut(name) {
            f(row);
        }
    }
}

/// Seconds since the Unix epoch, now.
#[must_use]
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A running supervisor task.
#[derive(Debug)]
pub struct Supervisor {
    name: String,
    stop: watch::Sender<Option<Duration>>,
    task: JoinHandle<()>,
}

fn spawn_one(spec: &Spec) -> Result<Group, Error> {
    let spawn_err = |source| Error::Spawn { name: spec.name.clone(), program: spec.program.clone(), source };
    let log = OpenOptions::new().create(true).append(true).open(&spec.log).map_err(spawn_err)?;
    let log2 = log.try_clone().map_err(spawn_err)?;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args).stdin(Stdio::null()).stdout(Stdio::from(log)).stderr(Stdio::from(log2));
    cmd.kill_on_drop(true);
    procgroup::spawn(&mut cmd).map_err(spawn_err)
}

impl Supervisor {
    /// Starts `spec` now (so a missing binary is reported here) and keeps it running.
    ///
    /// Call from a tokio worker thread or the test thread, never from `spawn_blocking`: the
    /// children's parent-death signal is tied to the thread that forks them.
    ///
    /// # Errors
    /// [`Error::Spawn`] if the first start fails.
    pub fn start(spec: Spec, board: Board) -> Result<Supervisor, Error> {
        let group = spawn_one(&spec)?;
        board.set(
            &spec.name,
            ChildStatus {
                state: State::Running,
                pid: Some(group.pid()),
                restarts: 0,
                last_exit: None,
                since_unix: unix_now(),
                log: Some(spec.log.clone()),
            },
        );
        tracing::info!(child = %spec.name, pid = group.pid(), "started");
        let (stop, stop_rx) = watch::channel(None);
        let name = spec.name.clone();
        let task = tokio::spawn(keep_running(spec, group, board, stop_rx));
        Ok(Supervisor { name, stop, task })
    }

    /// The child's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops the child (SIGTERM to its group, `grace`, SIGKILL; reaped) and ends supervision.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(Some(grace));
        if let Err(e) = self.task.await {
            tracing::error!(child = %self.name, error = %e, "supervisor task failed");
        }
    }
}

async fn keep_running(spec: Spec, first: Group, board: Board, mut stop: watch::Receiver<Option<Duration>>) {
    let mut backoff = Backoff::default();
    let mut group = Some(first);
    let mut started = Instant::now();
    loop {
        if let Some(g) = group.as_mut() {
            tokio::select! {
                status = g.wait() => {
                    let exit = match status {
                        Ok(s) => Exit::from(s).to_string(),
                        Err(e) => format!("wait failed: {e}"),
                    };
                    tracing::warn!(child = %spec.name, %exit, "exited; restarting");
                    group = None;
                    if started.elapsed() >= HEALTHY_RUN {
                        backoff.reset();
                    }
                    board.update(&spec.name, |r| {
                        r.state = State::Restarting;
                        r.pid = None;
                        r.last_exit = Some(exit);
                    });
                }
                _ = stop.changed() => {
                    let grace = (*stop.borrow()).unwrap_or(Duration::from_secs(3));
                    let exit = g.stop(grace).await;
                    let exit = exit.map_or_else(|e| format!("stop failed: {e}"), |x| x.to_string());
                    board.update(&spec.name, |r| {
                        r.state = State::Stopped;
                        r.pid = None;
                        r.last_exit = Some(exit);
                    });
                    return;
                }
            }
        }
        let delay = backoff.next_delay(&mut rand::thread_rng());
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.changed() => {
                board.update(&spec.name, |r| r.state = State::Stopped);
                return;
            }
        }
        match spawn_one(&spec) {
            Ok(g) => {
                tracing::info!(child = %spec.name, pid = g.pid(), "restarted");
                started = Instant::now();
                board.update(&spec.name, |r| {
                    r.state = State::Running;
                    r.pid = Some(g.pid());
                    r.restarts += 1;
                    r.since_unix = unix_now();
                });
                group = Some(g);
            }
            Err(e) => {
                tracing::warn!(child = %spec.name, error = %e, "restart failed");
                board.update(&spec.name, |r| {
                    r.restarts += 1;
                    r.last_exit = Some(format!("restart failed: {e}"));
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &std::path::Path, script: &str) -> Spec {
        Spec {
            name: "t".into(),
            program: "bash".into(),
            args: vec!["-c".into(), script.into()],
            log: dir.join("t.log"),
        }
    }

    #[tokio::test]
    async fn restarts_a_child_that_exits_and_stops_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let board = Board::default();
        let s = Supervisor::start(spec(dir.path(), "echo run; exit 3"), board.clone()).unwrap();
        let log = dir.path().join("t.log");
        let runs = || std::fs::read_to_string(&log).unwrap_or_default().matches("run").count();
        let deadline = Instant::now() + Duration::from_secs(10);
        // Three runs logged: the first start and two restarts.
        while runs() < 3 {
            assert!(Instant::now() < deadline, "no restarts: {:?}", board.snapshot());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(board.snapshot()["t"].restarts >= 2, "{:?}", board.snapshot());
        assert_eq!(board.snapshot()["t"].last_exit.as_deref(), Some("exit 3"));
        s.stop(Duration::from_secs(1)).await;
        let row = &board.snapshot()["t"];
        assert_eq!(row.state, State::Stopped);
        assert_eq!(row.pid, None);
    }

    #[tokio::test]
    async fn stop_reaps_a_running_child() {
        let dir = tempfile::tempdir().unwrap();
        let board = Board::default();
        let s = Supervisor::start(spec(dir.path(), "exec sleep 30"), board.clone()).unwrap();
        let pid = board.snapshot()["t"].pid.unwrap();
        s.stop(Duration::from_secs(1)).await;
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "pid {pid} still exists");
        assert_eq!(board.snapshot()["t"].last_exit.as_deref(), Some("signal 15 (SIGTERM)"));
    }

    #[tokio::test]
    async fn missing_binary_fails_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), "");
        s.program = "/nonexistent/x".into();
        let e = Supervisor::start(s, Board::default()).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x"), "{e}");
    }
}
