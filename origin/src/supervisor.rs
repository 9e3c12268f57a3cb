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

use crate::error::Error;

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
    /// Stopped on purpose for a while (fault injection); started again when the pause ends.
    Paused,
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

/// Shared state of every child, by name, and the pause switch of each supervised one.
#[derive(Debug, Clone, Default)]
pub struct Board {
    rows: Arc<Mutex<BTreeMap<String, ChildStatus>>>,
    pauses: Arc<Mutex<BTreeMap<String, watch::Sender<Option<Instant>>>>>,
}

/// Why a fault could not be injected into a child.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// No supervised child has that name.
    #[error("no child process named {name:?}; children: {known}")]
    NoSuchChild {
        /// The asked name.
        name: String,
        /// The names there are.
        known: String,
    },
    /// The child is not running right now.
    #[error("{name} is not running (it is {state:?})")]
    NotRunning {
        /// The child.
        name: String,
        /// Its state.
        state: State,
    },
    /// The signal could not be sent.
    #[error("cannot signal {name} (pid {pid}): {error}")]
    Signal {
        /// The child.
        name: String,
        /// Its pid.
        pid: u32,
        /// The OS error.
        error: String,
    },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind: keep using it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Board {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, ChildStatus>> {
        lock(&self.rows)
    }

    fn no_such(&self, name: &str) -> FaultError {
        let known: Vec<String> = lock(&self.pauses).keys().cloned().collect();
        FaultError::NoSuchChild { name: name.to_owned(), known: known.join(", ") }
    }

    /// Stops `name` now (SIGTERM to its group, then SIGKILL after 3 s) and starts it again
    /// `duration` from now; its supervisor keeps its backoff state. A second pause replaces
    /// the first (zero ends it now).
    ///
    /// # Errors
    /// [`FaultError::NoSuchChild`] if no supervised child has that name.
    pub fn pause(&self, name: &str, duration: Duration) -> Result<(), FaultError> {
        let pauses = lock(&self.pauses);
        let Some(tx) = pauses.get(name) else {
            drop(pauses);
            return Err(self.no_such(name));
        };
        tx.send_replace(Some(Instant::now() + duration));
        Ok(())
    }

    /// SIGKILLs `name`'s process group, as a crash would; its supervisor restarts it after the
    /// usual backoff. Returns the pid killed.
    ///
    /// # Errors
    /// No such child, it is not running, or the signal failed.
    pub fn kill(&self, name: &str) -> Result<u32, FaultError> {
        if !lock(&self.pauses).contains_key(name) {
            return Err(self.no_such(name));
        }
        let row = self.lock().get(name).cloned();
        let Some(ChildStatus { state: State::Running, pid: Some(pid), .. }) = row else {
            let state = row.map_or(State::Stopped, |r| r.state);
            return Err(FaultError::NotRunning { name: name.to_owned(), state });
        };
        // The pid is cleared only once the child is reaped, so it still names our group here.
        let failed = |error: String| FaultError::Signal { name: name.to_owned(), pid, error };
        let group = i32::try_from(pid).map(nix::unistd::Pid::from_raw).map_err(|e| failed(e.to_string()))?;
        nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL)
            .map_err(|e| failed(e.to_string()))?;
        Ok(pid)
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

impl ChildStatus {
    /// The row of a built-in task (the replay publisher, the LL-HLS server), from now.
    #[must_use]
    pub fn task() -> ChildStatus {
        ChildStatus {
            state: State::Task,
            pid: None,
            restarts: 0,
            last_exit: None,
            since_unix: unix_now(),
            log: None,
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
        let (pause, pause_rx) = watch::channel(None);
        lock(&board.pauses).insert(spec.name.clone(), pause);
        let name = spec.name.clone();
        let task = tokio::spawn(keep_running(spec, group, board, stop_rx, pause_rx));
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

/// How long a paused child is given to stop before SIGKILL.
const PAUSE_GRACE: Duration = Duration::from_secs(3);

async fn keep_running(
    spec: Spec,
    first: Group,
    board: Board,
    mut stop: watch::Receiver<Option<Duration>>,
    mut pause: watch::Receiver<Option<Instant>>,
) {
    let mut backoff = Backoff::default();
    let mut group = Some(first);
    let mut started = Instant::now();
    // Set when the child was stopped by a pause that has ended: start it again at once, and it
    // does not count as a restart.
    let mut resumed = false;
    loop {
        if let Some(g) = group.as_mut() {
            tokio::select! {
                _ = pause.changed() => {
                    let until = *pause.borrow_and_update();
                    if until.is_some_and(|u| u > Instant::now()) {
                        let exit = g.stop(PAUSE_GRACE).await;
                        let exit = exit.map_or_else(|e| format!("stop failed: {e}"), |x| x.to_string());
                        tracing::warn!(child = %spec.name, ?until, "paused (fault injection)");
                        group = None;
                        board.update(&spec.name, |r| {
                            r.state = State::Paused;
                            r.pid = None;
                            r.last_exit = Some(exit);
                        });
                        // Wait out the pause (a new one replaces it); a stop ends supervision.
                        loop {
                            let Some(until) = *pause.borrow_and_update() else { break };
                            let left = until.saturating_duration_since(Instant::now());
                            if left.is_zero() {
                                break;
                            }
                            tokio::select! {
                                () = tokio::time::sleep(left) => {}
                                _ = pause.changed() => {}
                                _ = stop.changed() => {
                                    board.update(&spec.name, |r| r.state = State::Stopped);
                                    return;
                                }
                            }
                        }
                        resumed = true;
                    } else {
                        continue;
                    }
                }
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
        if !resumed {
            let delay = backoff.next_delay(&mut rand::thread_rng());
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.changed() => {
                    board.update(&spec.name, |r| r.state = State::Stopped);
                    return;
                }
            }
        }
        let (what, counts) = if resumed { ("resume", 0) } else { ("restart", 1) };
        resumed = false;
        match spawn_one(&spec) {
            Ok(g) => {
                tracing::info!(child = %spec.name, pid = g.pid(), "{what}ed");
                started = Instant::now();
                board.update(&spec.name, |r| {
                    r.state = State::Running;
                    r.pid = Some(g.pid());
                    r.restarts += counts;
                    r.since_unix = unix_now();
                });
                group = Some(g);
            }
            Err(e) => {
                tracing::warn!(child = %spec.name, error = %e, "{what} failed");
                board.update(&spec.name, |r| {
                    r.restarts += counts;
                    r.last_exit = Some(format!("{what} failed: {e}"));
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
        let deadline = Instant::now() + Duration::from_secs(30);
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
    async fn pause_stops_the_child_and_starts_it_again_kill_restarts_it() {
        let dir = tempfile::tempdir().unwrap();
        let board = Board::default();
        let s = Supervisor::start(spec(dir.path(), "exec sleep 30"), board.clone()).unwrap();
        let first = board.snapshot()["t"].pid.unwrap();
        let asked = Instant::now();
        board.pause("t", Duration::from_millis(800)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while board.snapshot()["t"].state != State::Paused {
            assert!(Instant::now() < deadline, "{:?}", board.snapshot());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!std::path::Path::new(&format!("/proc/{first}")).exists(), "stopped and reaped");
        while board.snapshot()["t"].state != State::Running {
            assert!(Instant::now() < deadline, "{:?}", board.snapshot());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The pause runs from the call: running again means at least 800 ms after it.
        assert!(asked.elapsed() >= Duration::from_millis(800), "resumed only when the pause ended");
        let second = board.snapshot()["t"].pid.unwrap();
        assert_ne!(first, second);
        assert_eq!(board.snapshot()["t"].restarts, 0, "a pause is not a crash");

        assert_eq!(board.kill("t").unwrap(), second);
        while board.snapshot()["t"].pid.is_none_or(|p| p == second) {
            assert!(Instant::now() < deadline + Duration::from_secs(30), "{:?}", board.snapshot());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let row = board.snapshot()["t"].clone();
        assert_eq!((row.restarts, row.last_exit.as_deref()), (1, Some("signal 9 (SIGKILL)")));

        let e = board.pause("nginx", Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.to_string(), "no child process named \"nginx\"; children: t");
        s.stop(Duration::from_secs(1)).await;
        assert!(matches!(board.kill("t"), Err(FaultError::NotRunning { .. })));
    }

    #[tokio::test]
    async fn missing_binary_fails_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), "");
        s.program = "/nonexistent/x".into();
        let board = Board::default();
        let e = Supervisor::start(s, board.clone()).unwrap_err();
        assert_eq!(e.to_string(), "cannot start t (/nonexistent/x)");
        assert!(
            matches!(&e, Error::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
            "{e:?}"
        );
        assert!(board.snapshot().is_empty(), "nothing to supervise: {:?}", board.snapshot());
        assert!(matches!(board.kill("t"), Err(FaultError::NoSuchChild { .. })));
    }
}
