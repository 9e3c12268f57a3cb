//! The supervisor's policy against a scripted engine, on tokio's paused clock: every wait is
//! exact, and nothing depends on how fast the machine is.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::*;
use crate::measure::events::{Event, Message};
use crate::measure::player::Player;

/// What one session does.
#[derive(Debug, Clone, Copy)]
enum Script {
    /// Ends by itself after this long, with this code.
    EndsAfter(Duration, i32),
    /// Plays until stopped.
    UntilStopped,
    /// Cannot start.
    FailsToStart,
}

#[derive(Debug, Default)]
struct Log {
    /// When each session started (tokio's clock).
    starts: Vec<Instant>,
    /// Sessions stopped by the supervisor.
    stops: u32,
    closed: bool,
}

#[derive(Debug)]
struct Fake {
    scripts: VecDeque<Script>,
    log: Arc<Mutex<Log>>,
    /// Called with each session's start instant (to set a player verdict).
    on_start: Option<fn(Instant)>,
}

#[derive(Debug)]
struct FakeSession {
    started: Instant,
    script: Script,
    log: Arc<Mutex<Log>>,
}

impl Engine for Fake {
    const NAME: &'static str = "fake";
    type Session = FakeSession;

    async fn start(&mut self) -> Result<FakeSession, String> {
        let script = self.scripts.pop_front().unwrap_or(Script::UntilStopped);
        if let Script::FailsToStart = script {
            return Err("no such program".into());
        }
        let started = now();
        self.log.lock().unwrap().starts.push(started);
        if let Some(f) = self.on_start {
            f(started);
        }
        Ok(FakeSession { started, script, log: Arc::clone(&self.log) })
    }

    async fn close(self) {
        self.log.lock().unwrap().closed = true;
    }
}

impl Session for FakeSession {
    fn started(&self) -> (Instant, Duration) {
        (self.started, Duration::from_millis(3))
    }

    async fn ended(&mut self) -> Ending {
        match self.script {
            Script::EndsAfter(after, code) => {
                tokio::time::sleep_until((self.started + after).into()).await;
                Ending { code, label: format!("exit {code}") }
            }
            _ => std::future::pending().await,
        }
    }

    async fn stop(&mut self, _grace: Duration, _kill: &CancellationToken) -> Ending {
        self.log.lock().unwrap().stops += 1;
        Ending { code: 255, label: "exit 255".into() }
    }

    fn tail(&mut self) -> Vec<String> {
        vec!["[error] the last line".into()]
    }
}

/// Runs viewer 7 with `scripts` until the run is stopped at `stop_at` (if ever); returns its
/// events, the engine's log, and how long `run` took on tokio's clock.
async fn supervise(
    scripts: &[Script],
    restart_after_clean_exit: bool,
    stall_timeout: Option<Duration>,
    stop_at: Option<Duration>,
    verdicts: Arc<Verdicts>,
    on_start: Option<fn(Instant)>,
) -> (Vec<EventKind>, Arc<Mutex<Log>>, Duration) {
    let after = Policy { restart_after_clean_exit, stall_timeout, session_length: None };
    supervise_with(scripts, after, stop_at, verdicts, on_start).await
}

/// What the supervisor is told to do after a session.
struct Policy {
    restart_after_clean_exit: bool,
    stall_timeout: Option<Duration>,
    session_length: Option<SessionLength>,
}

/// [`supervise`] with a whole [`Policy`].
async fn supervise_with(
    scripts: &[Script],
    policy: Policy,
    stop_at: Option<Duration>,
    verdicts: Arc<Verdicts>,
    on_start: Option<fn(Instant)>,
) -> (Vec<EventKind>, Arc<Mutex<Log>>, Duration) {
    let Policy { restart_after_clean_exit, stall_timeout, session_length } = policy;
    let t0 = now();
    let (sink, mut rx, _) = EventSink::channel(1024);
    let log = Arc::new(Mutex::new(Log::default()));
    let sup = Supervisor {
        id: 7,
        engine: Fake { scripts: scripts.iter().copied().collect(), log: Arc::clone(&log), on_start },
        grace: Duration::from_secs(3),
        restart_after_clean_exit,
        stall_timeout,
        verdicts,
        seed: 42,
        backoff_cap: Duration::from_secs(5),
        session_length,
    };
    let shutdown = Shutdown::default();
    if let Some(at) = stop_at {
        let stop = shutdown.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(at).await;
            stop.cancel();
        });
    }
    sup.run(sink, shutdown).await;
    let took = now() - t0;
    let mut events = Vec::new();
    while let Ok(m) = rx.try_recv() {
        if let Message::Event(Event { viewer, kind, .. }) = m {
            assert_eq!(viewer, 7);
            events.push(kind);
        }
    }
    (events, log, took)
}

/// Equal but for the paused clock's timer granularity (a sleep ends on a whole millisecond).
fn assert_close(got: Duration, want: Duration) {
    let off = got.abs_diff(want);
    assert!(off <= Duration::from_millis(1), "{got:?} instead of {want:?}");
}

fn no_verdicts() -> Arc<Verdicts> {
    Arc::new(Verdicts::new(8, now()))
}

fn names(events: &[EventKind]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            EventKind::SessionStarted { .. } => "started".to_owned(),
            EventKind::StartFailed { .. } => "start failed".to_owned(),
            EventKind::SessionEnded { cause: EndCause::Own, ending, .. } => format!("ended {}", ending.code),
            EventKind::SessionEnded { cause: EndCause::Stopped, .. } => "stopped".to_owned(),
            EventKind::SessionEnded { cause: EndCause::Stalled { .. }, .. } => "stalled".to_owned(),
            EventKind::SessionEnded { cause: EndCause::Completed, .. } => "completed".to_owned(),
            EventKind::Backoff { .. } => "backoff".to_owned(),
            EventKind::Finished { reason } => format!("finished {reason:?}"),
            other => format!("{other:?}"),
        })
        .collect()
}

fn delays(events: &[EventKind]) -> Vec<Duration> {
    events
        .iter()
        .filter_map(|e| match e {
            EventKind::Backoff { delay } => Some(*delay),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn failing_sessions_restart_after_growing_backoff_delays() {
    let fail = Script::EndsAfter(Duration::from_secs(1), 1);
    let (events, log, _) =
        supervise(&[fail, fail, fail, fail], true, None, Some(Duration::from_secs(30)), no_verdicts(), None)
            .await;
    assert_eq!(
        names(&events)[..13],
        [
            "started", "ended 1", "backoff", "started", "ended 1", "backoff", "started", "ended 1",
            "backoff", "started", "ended 1", "backoff", "started"
        ]
    );
    assert_eq!(names(&events)[13..], ["stopped", "finished Shutdown"]);
    // 250 ms × 1.7ⁿ, each within ±20 %.
    let d = delays(&events);
    for (n, delay) in d.iter().enumerate() {
        let nominal = 0.25 * 1.7f64.powi(i32::try_from(n).unwrap());
        let got = delay.as_secs_f64();
        assert!((nominal * 0.8..=nominal * 1.2).contains(&got), "delay {n}: {got} s, nominal {nominal}");
    }
    // Each start comes one session (1 s) plus one backoff delay after the last.
    let log = log.lock().unwrap();
    for (i, pair) in log.starts.windows(2).enumerate() {
        assert_close(pair[1] - pair[0], Duration::from_secs(1) + d[i]);
    }
    assert_eq!(log.stops, 1, "only the last session was stopped, by the run");
    assert!(log.closed, "the engine is closed before Finished");
    let tails: Vec<&Vec<String>> = events
        .iter()
        .filter_map(|e| match e {
            EventKind::SessionEnded { cause: EndCause::Own, tail, .. } => Some(tail),
            _ => None,
        })
        .collect();
    assert!(
        tails.iter().all(|t| t == &&vec!["[error] the last line".to_owned()]),
        "own endings carry the tail"
    );
}

#[tokio::test(start_paused = true)]
async fn a_healthy_session_resets_the_backoff() {
    let long = Script::EndsAfter(HEALTHY_UPTIME + Duration::from_secs(1), 1);
    let short = Script::EndsAfter(Duration::from_secs(1), 1);
    let (events, _, _) = supervise(
        &[short, short, long, short],
        true,
        None,
        Some(Duration::from_secs(60)),
        no_verdicts(),
        None,
    )
    .await;
    let d = delays(&events);
    assert!(d.len() >= 4, "{:?}", names(&events));
    assert!(d[1] > d[0], "growing while sessions fail: {d:?}");
    assert!(d[2] < Duration::from_millis(300), "after a healthy session it starts over: {d:?}");
}

#[tokio::test(start_paused = true)]
async fn a_stalled_player_is_restarted_after_the_timeout() {
    // Nothing is ever buffered: the first segment is due within the timeout of each start.
    let (events, log, _) = supervise(
        &[Script::UntilStopped, Script::UntilStopped],
        true,
        Some(Duration::from_secs(3)),
        Some(Duration::from_secs(5)),
        no_verdicts(),
        None,
    )
    .await;
    assert_eq!(names(&events), ["started", "stalled", "backoff", "started", "stopped", "finished Shutdown"]);
    let waited = events.iter().find_map(|e| match e {
        EventKind::SessionEnded { cause: EndCause::Stalled { waited }, .. } => Some(*waited),
        _ => None,
    });
    assert_eq!(waited, Some(Duration::from_secs(3)));
    let log = log.lock().unwrap();
    assert_close(log.starts[1] - log.starts[0], Duration::from_secs(3) + delays(&events)[0]);
    assert_eq!(log.stops, 2, "the stalled session and the last one were stopped");
}

static VERDICTS: std::sync::OnceLock<Arc<Verdicts>> = std::sync::OnceLock::new();

#[tokio::test(start_paused = true)]
async fn a_playing_player_is_restarted_only_once_its_buffer_has_been_dry_for_the_timeout() {
    let verdicts = Arc::clone(VERDICTS.get_or_init(|| Arc::new(Verdicts::new(8, now()))));
    // Each session buffers 10 s of media 1 s after it starts (what the fold would record).
    fn buffered(started: Instant) {
        let mut p = Player::default();
        p.request(started);
        p.segment(started + Duration::from_secs(1), Duration::from_secs(10));
        VERDICTS.get().unwrap().set(7, &p);
    }
    let (events, log, _) = supervise(
        &[Script::UntilStopped, Script::UntilStopped],
        true,
        Some(Duration::from_secs(3)),
        Some(Duration::from_secs(16)),
        verdicts,
        Some(buffered),
    )
    .await;
    assert_eq!(names(&events)[..3], ["started", "stalled", "backoff"]);
    let log = log.lock().unwrap();
    // Dry 11 s after the start, restarted 3 s later.
    assert_close(log.starts[1] - log.starts[0], Duration::from_secs(14) + delays(&events)[0]);
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_backoff_ends_the_viewer_without_another_start() {
    let (events, log, took) = supervise(
        &[Script::EndsAfter(Duration::from_secs(1), 1)],
        true,
        None,
        Some(Duration::from_millis(1100)),
        no_verdicts(),
        None,
    )
    .await;
    assert_eq!(names(&events), ["started", "ended 1", "backoff", "finished Shutdown"]);
    assert!(delays(&events)[0] > Duration::from_millis(100), "the stop fell inside the backoff");
    assert_eq!(took, Duration::from_millis(1100), "ended at the stop, not after the delay");
    assert_eq!(log.lock().unwrap().starts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_finite_stream_played_to_its_end_is_not_started_again() {
    let clean = Script::EndsAfter(Duration::from_secs(2), 0);
    let (events, log, took) = supervise(&[clean], false, None, None, no_verdicts(), None).await;
    assert_eq!(names(&events), ["started", "ended 0", "finished StreamEnded"]);
    assert_eq!(took, Duration::from_secs(2));
    let (starts, stops) = {
        let log = log.lock().unwrap();
        (log.starts.len(), log.stops)
    };
    assert_eq!((starts, stops), (1, 0));
    // A live stream's clean end is a restart, and so is a VOD session's failure.
    let (events, _, _) =
        supervise(&[clean], true, None, Some(Duration::from_secs(3)), no_verdicts(), None).await;
    assert_eq!(names(&events)[..4], ["started", "ended 0", "backoff", "started"]);
    let failed = Script::EndsAfter(Duration::from_secs(2), 1);
    let (events, _, _) = supervise(&[failed, clean], false, None, None, no_verdicts(), None).await;
    assert_eq!(
        names(&events),
        ["started", "ended 1", "backoff", "started", "ended 0", "finished StreamEnded"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_session_that_cannot_start_is_tried_again_with_backoff() {
    let (events, _, _) = supervise(
        &[Script::FailsToStart, Script::FailsToStart, Script::UntilStopped],
        true,
        None,
        Some(Duration::from_secs(5)),
        no_verdicts(),
        None,
    )
    .await;
    assert_eq!(
        names(&events),
        ["start failed", "backoff", "start failed", "backoff", "started", "stopped", "finished Shutdown"]
    );
    let error = events.iter().find_map(|e| match e {
        EventKind::StartFailed { error } => Some(error.clone()),
        _ => None,
    });
    assert_eq!(error.as_deref(), Some("no such program"));
}

#[test]
fn the_backoff_cap_follows_the_ramp_within_one_to_five_seconds() {
    assert_eq!(backoff_cap(3, 10.0), Duration::from_secs(1));
    assert_eq!(backoff_cap(30, 10.0), Duration::from_secs(3));
    assert_eq!(backoff_cap(1000, 10.0), Duration::from_secs(5));
    assert_eq!(backoff_cap(10, 0.0), Duration::from_secs(5));
}

/// `--session-length 10s`: each session is stopped when it has run 10 s and the next starts at
/// once, with no backoff; a session that fails first is restarted after a backoff as before,
/// and the length starts over with it.
#[tokio::test(start_paused = true)]
async fn a_session_length_ends_each_session_and_the_next_starts_at_once() {
    let length = SessionLength::parse("10s").unwrap();
    let policy = Policy { restart_after_clean_exit: true, stall_timeout: None, session_length: Some(length) };
    let scripts = [Script::UntilStopped, Script::EndsAfter(Duration::from_secs(4), 1), Script::UntilStopped];
    let (events, log, took) =
        supervise_with(&scripts, policy, Some(Duration::from_secs(25)), no_verdicts(), None).await;
    assert_eq!(
        names(&events),
        [
            "started",
            "completed",
            "started",
            "ended 1",
            "backoff",
            "started",
            "completed",
            "started",
            "stopped",
            "finished Shutdown"
        ]
    );
    let log = log.lock().unwrap();
    let t0 = log.starts[0];
    let at: Vec<Duration> = log.starts.iter().map(|s| *s - t0).collect();
    assert_close(at[1], Duration::from_secs(10));
    let backoff = delays(&events)[0];
    assert_close(at[2], Duration::from_secs(14) + backoff);
    assert_close(at[3], at[2] + Duration::from_secs(10));
    assert_eq!(log.stops, 3, "two at their length, one at the end of the run");
    assert_close(took, Duration::from_secs(25));
}

/// With a session length, a session that plays a finished stream to its end (a clean end of
/// its own) is a viewing over as well: the next starts at once, no backoff, no finish.
#[tokio::test(start_paused = true)]
async fn with_a_session_length_the_end_of_a_finished_stream_is_a_zap() {
    let length = SessionLength::parse("10s").unwrap();
    let policy =
        Policy { restart_after_clean_exit: false, stall_timeout: None, session_length: Some(length) };
    let scripts = [Script::EndsAfter(Duration::from_secs(3), 0), Script::UntilStopped];
    let (events, log, _) =
        supervise_with(&scripts, policy, Some(Duration::from_secs(5)), no_verdicts(), None).await;
    assert_eq!(names(&events), ["started", "completed", "started", "stopped", "finished Shutdown"]);
    let log = log.lock().unwrap();
    assert_close(log.starts[1] - log.starts[0], Duration::from_secs(3));
}
