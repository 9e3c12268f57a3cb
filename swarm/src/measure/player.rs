//! The player model: a virtual playhead per viewer, across its sessions.
//!
//! FFmpeg with `-f null` reads as fast as the network allows and never "plays", so whether a
//! real player would have stalled has to be modelled. Playback starts when the viewer's first
//! segment is fully received and then advances at 1× wall time; every fully received segment
//! adds its media duration (from the playlist) to the buffer. When the playhead reaches the end
//! of the buffer the player stalls until the next segment arrives. Nothing needs a timer: the
//! instant the buffer runs dry is `play start + media buffered + time stalled`, so every
//! figure follows from the arrival times.
//!
//! A player that waits for more than one segment before it plays (`--startup-buffer`, as
//! Shaka's `rebufferingGoal` or AVPlayer's preferred forward buffer) holds what arrives while
//! it is not playing until that much media is in: playback starts, or resumes after a stall,
//! when the goal is reached. With no goal the first segment starts it, as hls.js does.
//!
//! A session that ends because it reached `--session-length` is a viewer leaving on purpose
//! (a zap): what it buffered is gone, the time until the next session plays is neither watched
//! nor stalled, and that session's start is a startup of its own.
//!
//! The model belongs to the viewer, not to one session (one FFmpeg process): when a session
//! ends by itself its buffer is gone with it (the playhead stops there), and the time until
//! the next session's first segment is a stall like any other — a crash, a backoff or an
//! unreachable origin is time the viewer watched nothing. A viewer that has not played
//! `startup_timeout` after it joined is a failed start, and from then on its waiting counts as
//! watched and stalled.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One viewer's playback, from its first session on.
#[derive(Debug, Clone, PartialEq)]
pub struct Player {
    /// How long a viewer may wait for its first segment before it is a failed start.
    startup_timeout: Duration,
    /// Media that must be buffered before playback starts or resumes (zero: one segment).
    goal: Duration,
    /// Media received while not playing, held until it reaches `goal`.
    pending: Duration,
    /// When the viewer's first session started.
    joined: Option<Instant>,
    /// First request of the current session.
    session: Option<Instant>,
    /// True once the current session has buffered a segment.
    session_playing: bool,
    /// When the first segment was buffered: playback starts.
    play_start: Option<Instant>,
    /// Media time received (less what a session took with it when it ended).
    buffered: Duration,
    /// Time spent in finished stalls.
    stalled: Duration,
    /// Stalls that ended.
    stalls: u64,
    /// Time between sessions by choice (zaps), finished gaps.
    idle: Duration,
    /// Set while the viewer is between sessions by choice: since when.
    idle_since: Option<Instant>,
    /// The latest segment with a program date-time: its place in the buffer (media time
    /// from the start of playback) and its wall-clock start (Unix seconds).
    anchor: Option<(Duration, f64)>,
}

impl Default for Player {
    fn default() -> Player {
        Player::new(Duration::from_secs(30))
    }
}

/// What one buffered segment changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Buffered {
    /// Set for the viewer's first segment: first request → first segment buffered.
    pub startup: Option<Duration>,
    /// Set for the first segment of a later session: its first request → this segment.
    pub rejoin: Option<Duration>,
    /// Set if the player was stalled until this segment arrived: how long.
    pub stall: Option<Duration>,
    /// Set for the first segment of a session after a zap: its first request → playback.
    pub zap: Option<Duration>,
}

impl Player {
    /// A viewer that has not joined yet; `startup_timeout` as above.
    #[must_use]
    pub fn new(startup_timeout: Duration) -> Player {
        Player {
            startup_timeout,
            goal: Duration::ZERO,
            pending: Duration::ZERO,
            joined: None,
            session: None,
            session_playing: false,
            play_start: None,
            buffered: Duration::ZERO,
            stalled: Duration::ZERO,
            stalls: 0,
            idle: Duration::ZERO,
            idle_since: None,
            anchor: None,
        }
    }

    /// The same player, starting and resuming only once `goal` of media is buffered.
    #[must_use]
    pub fn with_goal(mut self, goal: Duration) -> Player {
        self.goal = goal;
        self
    }

    /// A session (a process) started at `at`.
    pub fn session_started(&mut self, at: Instant) {
        self.joined.get_or_insert(at);
        self.session = None;
        self.session_playing = false;
    }

    /// The session ended at `at`: what it had buffered and not played is gone.
    pub fn session_ended(&mut self, at: Instant) {
        if let Some(dry) = self.dry_at().filter(|d| *d > at) {
            self.buffered = self.buffered.saturating_sub(dry - at);
        }
        self.pending = Duration::ZERO;
        self.session = None;
        self.session_playing = false;
    }

    /// The session left on purpose at `at` (it reached `--session-length`): its buffer is
    /// gone, a stall it was in ends here, and until the next session plays the viewer is idle.
    pub fn zap(&mut self, at: Instant) {
        if let Some(dry) = self.dry_at() {
            if dry > at {
                self.buffered = self.buffered.saturating_sub(dry - at);
            } else if self.idle_since.is_none() && dry < at {
                self.stalled += at - dry;
                self.stalls += 1;
            }
            self.idle_since.get_or_insert(at);
        }
        self.pending = Duration::ZERO;
        self.session = None;
        self.session_playing = false;
    }

    /// A request was sent at `at`; the first one of a session starts its startup clock.
    pub fn request(&mut self, at: Instant) {
        self.joined.get_or_insert(at);
        self.session.get_or_insert(at);
    }

    /// A segment of `media` duration was fully received at `at`.
    pub fn segment(&mut self, at: Instant, media: Duration) -> Buffered {
        let mut out = Buffered::default();
        // Not playing (not started, a new session, or stalled): it waits for its goal.
        let waiting = !self.session_playing || self.dry_at().is_some_and(|d| at > d);
        let media = if waiting || !self.pending.is_zero() {
            self.pending += media;
            if self.pending < self.goal {
                return out;
            }
            std::mem::take(&mut self.pending)
        } else {
            media
        };
        let session = self.session.unwrap_or(at);
        match self.play_start {
            None => {
                self.play_start = Some(at);
                out.startup = Some(at.saturating_duration_since(session));
            }
            Some(start) => {
                if let Some(since) = self.idle_since.take() {
                    self.idle += at.saturating_duration_since(since);
                    out.zap = Some(at.saturating_duration_since(session));
                } else if !self.session_playing {
                    out.rejoin = Some(at.saturating_duration_since(session));
                }
                let dry = start + self.buffered + self.stalled + self.idle;
                if at > dry {
                    let stall = at - dry;
                    self.stalled += stall;
                    self.stalls += 1;
                    out.stall = Some(stall);
                }
            }
        }
        self.session_playing = true;
        self.buffered += media;
        out
    }

    /// The next segment to be buffered started at wall-clock `program_date_time` (Unix
    /// seconds): it ties the playhead to the live stream's clock.
    pub fn anchor(&mut self, program_date_time: f64) {
        self.anchor = Some((self.buffered + self.pending, program_date_time));
    }

    /// How far behind the live edge the playhead is at `now`, which is `now_unix` on the wall
    /// clock: the wall time minus the program date-time of the media playing. `None` before
    /// playback or without a program date-time.
    #[must_use]
    pub fn live_latency(&self, now: Instant, now_unix: f64) -> Option<f64> {
        let (start, (at, pdt)) = (self.play_start?, self.anchor?);
        let not_playing = self.stalled + self.stalled_for(now).unwrap_or_default() + self.idle_by(now);
        let played = now.saturating_duration_since(start).saturating_sub(not_playing);
        Some(now_unix - (pdt + (played.as_secs_f64() - at.as_secs_f64())))
    }

    /// When the buffer runs (or ran) dry if nothing more arrives; `None` before playback.
    #[must_use]
    pub fn dry_at(&self) -> Option<Instant> {
        self.play_start.map(|s| s + self.buffered + self.stalled + self.idle)
    }

    /// How long the current stall has lasted at `now`; `None` if playing, not started, or
    /// idle between sessions by choice.
    #[must_use]
    pub fn stalled_for(&self, now: Instant) -> Option<Duration> {
        if self.idle_since.is_some() {
            return None;
        }
        self.dry_at().filter(|d| now > *d).map(|d| now - d)
    }

    /// Time idle between sessions by choice by `now`, the ongoing gap included.
    fn idle_by(&self, now: Instant) -> Duration {
        self.idle + self.idle_since.map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }

    /// Media buffered ahead of the playhead at `now` (zero while stalled).
    #[must_use]
    pub fn buffer(&self, now: Instant) -> Option<Duration> {
        self.dry_at().map(|d| d.saturating_duration_since(now))
    }

    /// True if the viewer had not played `startup_timeout` after joining (as of `now`).
    #[must_use]
    pub fn failed_start(&self, now: Instant) -> bool {
        self.joined.is_some_and(|j| {
            self.play_start.unwrap_or(now).saturating_duration_since(j) > self.startup_timeout
        })
    }

    /// Wall time watched by `now` (from the first playback, or from joining for a failed
    /// start), and the part of it spent not playing: finished stalls, the ongoing one, and a
    /// failed start's wait.
    #[must_use]
    pub fn watched(&self, now: Instant) -> (Duration, Duration) {
        let Some(joined) = self.joined else { return (Duration::ZERO, Duration::ZERO) };
        let waited = if self.failed_start(now) {
            self.play_start.unwrap_or(now).min(now).saturating_duration_since(joined)
        } else {
            Duration::ZERO
        };
        let Some(start) = self.play_start.filter(|s| *s <= now) else { return (waited, waited) };
        let wall = now.saturating_duration_since(start).saturating_sub(self.idle_by(now)) + waited;
        (wall, waited + self.stalled + self.stalled_for(now).unwrap_or_default())
    }

    /// Stalls by `now`: those that ended and an ongoing one.
    #[must_use]
    pub fn stalls(&self, now: Instant) -> u64 {
        self.stalls + u64::from(self.stalled_for(now).is_some())
    }

    /// True once the first segment is in.
    #[must_use]
    pub fn playing(&self) -> bool {
        self.play_start.is_some()
    }

    /// True while the current session has not buffered a segment yet.
    #[must_use]
    pub fn session_waiting(&self) -> bool {
        !self.session_playing
    }
}

/// When each viewer's buffer runs dry, as the fold's player models say: what the stall
/// watchdogs read. The fold is the only writer; one atomic per viewer, so reading costs a load.
#[derive(Debug)]
pub struct Verdicts {
    /// Instants are stored as nanoseconds since this one.
    origin: Instant,
    /// `u64::MAX`: not playing.
    dry_at: Vec<AtomicU64>,
}

impl Verdicts {
    /// For `viewers` viewers, none playing.
    #[must_use]
    pub fn new(viewers: usize, origin: Instant) -> Verdicts {
        Verdicts { origin, dry_at: (0..viewers).map(|_| AtomicU64::new(u64::MAX)).collect() }
    }

    /// Records what `player` (viewer `viewer`'s model) says now.
    pub fn set(&self, viewer: usize, player: &Player) {
        if let Some(slot) = self.dry_at.get(viewer) {
            let v = player.dry_at().map_or(u64::MAX, |t| {
                u64::try_from(t.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX - 1)
            });
            slot.store(v, Ordering::Release);
        }
    }

    /// When viewer `viewer`'s buffer runs (or ran) dry; `None` before playback.
    #[must_use]
    pub fn dry_at(&self, viewer: usize) -> Option<Instant> {
        let v = self.dry_at.get(viewer)?.load(Ordering::Acquire);
        (v != u64::MAX).then(|| self.origin + Duration::from_nanos(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn startup_then_steady_playback_never_stalls() {
        let t0 = Instant::now();
        let mut p = Player::default();
        p.request(t0);
        let first = p.segment(t0 + Duration::from_millis(300), S(2));
        assert_eq!(first.startup, Some(Duration::from_millis(300)));
        // Two more at once (live edge), then one per 2 s: the buffer stays ahead.
        p.segment(t0 + Duration::from_millis(400), S(2));
        p.segment(t0 + Duration::from_millis(500), S(2));
        for i in 1..10 {
            let b = p.segment(t0 + Duration::from_millis(300) + S(2 * i), S(2));
            assert_eq!(b, Buffered::default());
        }
        let now = t0 + S(19);
        assert_eq!(p.stalled_for(now), None);
        assert_eq!(p.watched(now).1, Duration::ZERO);
    }

    #[test]
    fn verdicts_follow_the_player() {
        let t0 = Instant::now();
        let v = Verdicts::new(2, t0);
        let mut p = Player::default();
        assert_eq!(v.dry_at(0), None);
        v.set(0, &p);
        assert_eq!(v.dry_at(0), None, "not playing yet");
        p.request(t0);
        p.segment(t0 + Duration::from_millis(300), S(2));
        v.set(0, &p);
        assert_eq!(v.dry_at(0), Some(t0 + Duration::from_millis(2300)));
        assert_eq!(v.dry_at(1), None);
        assert_eq!(v.dry_at(7), None, "no such viewer");
    }

    #[test]
    fn a_late_segment_is_a_stall_of_the_right_length() {
        let t0 = Instant::now();
        let mut p = Player::default();
        p.request(t0);
        p.segment(t0, S(2)); // plays 0..2
        assert_eq!(p.stalled_for(t0 + S(3)), Some(S(1)));
        let b = p.segment(t0 + S(5), S(2)); // 3 s stalled
        assert_eq!(b.stall, Some(S(3)));
        assert_eq!(p.dry_at(), Some(t0 + S(7)));
        assert_eq!(p.watched(t0 + S(6)), (S(6), S(3)));
        assert_eq!((p.stalls(t0 + S(6)), p.stalls(t0 + S(8))), (1, 2), "an ongoing stall counts");
    }

    #[test]
    fn a_crash_takes_the_buffer_and_the_outage_is_one_stall() {
        let t0 = Instant::now();
        let mut p = Player::new(S(10));
        p.session_started(t0);
        p.request(t0);
        for i in 0..3 {
            p.segment(t0 + S(1), S(2)); // plays from 1 s, 6 s buffered
            let _ = i;
        }
        assert_eq!(p.dry_at(), Some(t0 + S(7)));
        // The process dies at 3 s: it had 4 s left, gone with it.
        p.session_ended(t0 + S(3));
        assert_eq!(p.stalled_for(t0 + S(4)), Some(S(1)));
        // Backoff, a new process at 9 s, its first request at 9 s, its first segment at 13 s.
        p.session_started(t0 + S(9));
        p.request(t0 + S(9));
        assert!(p.session_waiting());
        let b = p.segment(t0 + S(13), S(2));
        assert_eq!((b.startup, b.rejoin, b.stall), (None, Some(S(4)), Some(S(10))));
        assert_eq!(p.watched(t0 + S(14)), (S(13), S(10)));
        assert_eq!(p.stalls(t0 + S(14)), 1);
        assert!(!p.failed_start(t0 + S(14)));
    }

    #[test]
    fn live_latency_follows_the_playhead_against_the_program_date_time() {
        let t0 = Instant::now();
        let unix = 1_000_000.0; // the wall clock at t0
        let mut p = Player::new(S(10));
        p.session_started(t0);
        p.request(t0);
        assert_eq!(p.live_latency(t0, unix), None, "not playing");
        // Three segments at 1 s, the first one started 7 s before t0 (FFmpeg starts 3 back).
        for i in 0..3 {
            p.anchor(unix - 7.0 + 2.0 * f64::from(i));
            p.segment(t0 + S(1), S(2));
        }
        // Playing the first segment's start at 1 s: 8 s behind; the same while it plays.
        assert_eq!(p.live_latency(t0 + S(1), unix + 1.0), Some(8.0));
        assert_eq!(p.live_latency(t0 + S(5), unix + 5.0), Some(8.0));
        // Dry at 7 s, stalled until 9 s: two more seconds behind.
        p.anchor(unix - 1.0);
        p.segment(t0 + S(9), S(2));
        assert_eq!(p.live_latency(t0 + S(10), unix + 10.0), Some(10.0));
    }

    #[test]
    fn a_viewer_that_never_plays_is_a_failed_start_whose_wait_counts() {
        let t0 = Instant::now();
        let mut p = Player::new(S(8));
        assert_eq!(p.watched(t0 + S(5)), (S(0), S(0)), "not joined");
        p.session_started(t0);
        p.request(t0);
        assert!(!p.failed_start(t0 + S(8)));
        assert_eq!(p.watched(t0 + S(8)), (S(0), S(0)), "still within the startup timeout");
        assert!(p.failed_start(t0 + S(9)));
        assert_eq!(p.watched(t0 + S(25)), (S(25), S(25)), "all of its wait, watched and stalled");
        // Playing at last at 30 s: the wait stays counted, then playback is normal.
        let b = p.segment(t0 + S(30), S(2));
        assert_eq!(b.startup, Some(S(30)));
        assert_eq!(p.watched(t0 + S(31)), (S(31), S(30)));
        assert_eq!(p.stalls(t0 + S(31)), 0, "a failed start is not a stall");
    }

    #[test]
    fn a_startup_buffer_holds_playback_until_it_is_full_at_start_and_after_a_stall() {
        let t0 = Instant::now();
        let mut p = Player::new(S(30)).with_goal(S(5));
        p.session_started(t0);
        p.request(t0);
        assert_eq!(p.segment(t0 + S(1), S(2)), Buffered::default(), "2 s of 5: not playing");
        assert_eq!(p.segment(t0 + S(2), S(2)), Buffered::default(), "4 s of 5");
        assert!(!p.playing());
        let b = p.segment(t0 + S(3), S(2));
        assert_eq!(b.startup, Some(S(3)), "6 s buffered: it plays");
        assert_eq!(p.dry_at(), Some(t0 + S(9)));
        // Dry at 9 s; one segment at 10 s is not enough to resume, the next at 12 s is.
        assert_eq!(p.segment(t0 + S(10), S(2)), Buffered::default());
        assert_eq!(p.stalled_for(t0 + S(11)), Some(S(2)), "still stalled with 2 s in");
        let b = p.segment(t0 + S(12), S(4));
        assert_eq!(b.stall, Some(S(3)));
        assert_eq!(p.dry_at(), Some(t0 + S(18)), "resumed at 12 s with 6 s");
        // While playing, segments go straight to the buffer.
        assert_eq!(p.segment(t0 + S(13), S(1)), Buffered::default());
        assert_eq!(p.dry_at(), Some(t0 + S(19)));
        assert_eq!(p.stalls(t0 + S(13)), 1);
    }

    #[test]
    fn without_a_goal_one_segment_starts_and_resumes_playback() {
        let t0 = Instant::now();
        let mut p = Player::new(S(30));
        p.request(t0);
        assert_eq!(p.segment(t0 + S(1), S(2)).startup, Some(S(1)));
        assert_eq!(p.segment(t0 + S(5), S(2)).stall, Some(S(2)));
    }

    #[test]
    fn a_zap_is_neither_watched_nor_stalled_and_the_next_start_is_a_startup() {
        let t0 = Instant::now();
        let mut p = Player::new(S(30));
        p.session_started(t0);
        p.request(t0);
        p.segment(t0 + S(1), S(2));
        p.segment(t0 + S(1), S(2)); // plays from 1 s, dry at 5 s
                                    // It leaves at 4 s with 1 s unplayed; the next session starts at 4 s and plays at 6 s.
        p.zap(t0 + S(4));
        assert_eq!(p.stalled_for(t0 + S(5)), None, "idle, not stalled");
        assert_eq!(p.watched(t0 + S(5)), (S(3), S(0)), "3 s watched before it left");
        p.session_started(t0 + S(4));
        p.request(t0 + S(4));
        let b = p.segment(t0 + S(6), S(2));
        assert_eq!((b.startup, b.rejoin, b.stall, b.zap), (None, None, None, Some(S(2))));
        assert_eq!(p.dry_at(), Some(t0 + S(8)));
        assert_eq!(p.watched(t0 + S(7)), (S(4), S(0)), "3 s, then 1 s of the new session");
        assert_eq!(p.stalls(t0 + S(7)), 0);
        // A later stall is measured as before.
        let b = p.segment(t0 + S(9), S(2));
        assert_eq!(b.stall, Some(S(1)));
    }

    #[test]
    fn a_zap_while_stalled_ends_that_stall() {
        let t0 = Instant::now();
        let mut p = Player::new(S(30));
        p.request(t0);
        p.segment(t0, S(2)); // dry at 2 s
        p.zap(t0 + S(5));
        assert_eq!(p.stalls(t0 + S(6)), 1);
        assert_eq!(p.watched(t0 + S(6)), (S(5), S(3)));
    }
}
