//! The player model: a virtual playhead per viewer.
//!
//! FFmpeg with `-f null` reads as fast as the network allows and never "plays", so whether a
//! real player would have stalled has to be modelled. Playback starts when the first segment
//! is fully received and then advances at 1× wall time; every fully received segment adds
//! its media duration (from the playlist) to the buffer. When the playhead reaches the end of
//! the buffer the player stalls until the next segment arrives. Nothing needs a timer: the
//! instant the buffer runs dry is `play start + media buffered + time stalled`, so every
//! figure follows from the arrival times.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One playback session (one viewer process).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Player {
    /// First request of the session.
    session: Option<Instant>,
    /// When the first segment was buffered: playback starts.
    play_start: Option<Instant>,
    /// Media time received.
    buffered: Duration,
    /// Time spent in finished stalls.
    stalled: Duration,
}

/// What one buffered segment changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Buffered {
    /// Set for the session's first segment: first request → first segment buffered.
    pub startup: Option<Duration>,
    /// Set if the player was stalled until this segment arrived: how long.
    pub stall: Option<Duration>,
}

impl Player {
    /// Starts a new session (a new process): everything is forgotten.
    pub fn reset(&mut self) {
        *self = Player::default();
    }

    /// A request was sent at `at`; the first one starts the session's startup clock.
    pub fn request(&mut self, at: Instant) {
        self.session.get_or_insert(at);
    }

    /// A segment of `media` duration was fully received at `at`.
    pub fn segment(&mut self, at: Instant, media: Duration) -> Buffered {
        let mut out = Buffered::default();
        match self.play_start {
            None => {
                self.play_start = Some(at);
                out.startup = Some(at.saturating_duration_since(self.session.unwrap_or(at)));
            }
            Some(start) => {
                let dry = start + self.buffered + self.stalled;
                if at > dry {
                    let stall = at - dry;
                    self.stalled += stall;
                    out.stall = Some(stall);
                }
            }
        }
        self.buffered += media;
        out
    }

    /// When the buffer runs (or ran) dry if nothing more arrives; `None` before playback.
    #[must_use]
    pub fn dry_at(&self) -> Option<Instant> {
        self.play_start.map(|s| s + self.buffered + self.stalled)
    }

    /// How long the current stall has lasted at `now`; `None` if playing or not started.
    #[must_use]
    pub fn stalled_for(&self, now: Instant) -> Option<Duration> {
        self.dry_at().filter(|d| now > *d).map(|d| now - d)
    }

    /// Media buffered ahead of the playhead at `now` (zero while stalled).
    #[must_use]
    pub fn buffer(&self, now: Instant) -> Option<Duration> {
        self.dry_at().map(|d| d.saturating_duration_since(now))
    }

    /// Wall time since playback started, and the part of it spent stalled (finished stalls
    /// plus the ongoing one).
    #[must_use]
    pub fn watched(&self, now: Instant) -> (Duration, Duration) {
        let Some(start) = self.play_start else { return (Duration::ZERO, Duration::ZERO) };
        let wall = now.saturating_duration_since(start);
        (wall, self.stalled + self.stalled_for(now).unwrap_or_default())
    }

    /// True once the first segment is in.
    #[must_use]
    pub fn playing(&self) -> bool {
        self.play_start.is_some()
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
        p.reset();
        v.set(0, &p);
        assert_eq!(v.dry_at(0), None);
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
        p.reset();
        assert!(!p.playing());
        assert_eq!(p.stalled_for(t0 + S(100)), None);
    }
}
