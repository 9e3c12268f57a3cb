//! The live stream as served: a rendition's timeline on the ladder's clock, the requests held
//! for it, and its fault switches.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use kit::playlist::Media;
use tokio::time::Instant;

use super::timeline::{Live, PartId};

/// Fault switches (for conformance tests of viewers).
#[derive(Debug, Default)]
pub struct Faults {
    /// Parts advertised in the playlist but answered 404 (and so are their segments).
    missing: Mutex<BTreeSet<PartId>>,
    /// Blocking reloads are answered at once, before the part they ask for exists.
    early: AtomicBool,
    /// Blocking reloads still to be answered past the hold limit.
    slow: AtomicU32,
    /// Playlists still to name a part that never comes in their preload hint.
    bad_hints: AtomicU32,
    /// Playlists still to start before the one served before them.
    backwards: Mutex<Backwards>,
    /// `PART-HOLD-BACK` is advertised at two part targets, under the three a player expects.
    short_hold_back: AtomicBool,
    /// `POST /fault/http`: a status answered for the parts and segments of a range of media
    /// sequence numbers.
    http: Mutex<Option<(u16, RangeInclusive<u64>)>>,
}

/// The media sequence fault's state: playlists left, and the first segment of the last one
/// it served.
#[derive(Debug, Default)]
struct Backwards {
    left: u32,
    last: Option<u64>,
}

/// Counts `left` down by one; false if it was 0.
fn take(left: &AtomicU32) -> bool {
    left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
}

impl Faults {
    pub(crate) fn missing(&self) -> std::sync::MutexGuard<'_, BTreeSet<PartId>> {
        self.missing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers `status` for every part of segments `segments` and for the segments themselves,
    /// which the playlists still list (`POST /fault/http` on an LL-HLS origin); `None` clears it.
    pub fn fail_segments(&self, fault: Option<(u16, RangeInclusive<u64>)>) {
        *self.http.lock().unwrap_or_else(PoisonError::into_inner) = fault;
    }

    /// The status [`Faults::fail_segments`] answers for segment `msn` and its parts, if any.
    #[must_use]
    pub fn failed(&self, msn: u64) -> Option<u16> {
        let http = self.http.lock().unwrap_or_else(PoisonError::into_inner);
        http.as_ref().filter(|(_, segments)| segments.contains(&msn)).map(|(status, _)| *status)
    }

    /// `id` is advertised but answered 404.
    #[must_use]
    pub fn is_missing(&self, id: PartId) -> bool {
        self.missing().contains(&id)
    }

    /// Answers 404 for no part any more.
    pub fn clear_missing(&self) {
        self.missing().clear();
    }

    /// While `on`, blocking playlist reloads are answered at once, without the part asked for.
    pub fn answer_reloads_early(&self, on: bool) {
        self.early.store(on, Ordering::Relaxed);
    }

    /// Blocking reloads are answered early.
    #[must_use]
    pub fn reloads_early(&self) -> bool {
        self.early.load(Ordering::Relaxed)
    }

    /// The next `count` blocking reloads are answered [`Stream::slow_answer`] after they
    /// arrive, past the three target durations a player waits (RFC 8216bis §6.2.5.2), with
    /// the part they asked for; 0 answers none slowly any more.
    pub fn answer_reloads_slowly(&self, count: u32) {
        self.slow.store(count, Ordering::Relaxed);
    }

    /// Blocking reloads still to be answered slowly.
    #[must_use]
    pub fn slow_reloads(&self) -> u32 {
        self.slow.load(Ordering::Relaxed)
    }

    /// Counts a slow reload down; true if this one is to be slow.
    pub(crate) fn take_slow_reload(&self) -> bool {
        take(&self.slow)
    }

    /// The next `count` playlists name, in their `EXT-X-PRELOAD-HINT`, a part that is never
    /// listed (and answered 404 if asked for); 0 ends that.
    pub fn send_bad_hints(&self, count: u32) {
        self.bad_hints.store(count, Ordering::Relaxed);
    }

    /// Playlists still to carry a bad preload hint.
    #[must_use]
    pub fn bad_hints(&self) -> u32 {
        self.bad_hints.load(Ordering::Relaxed)
    }

    /// The next `count` playlists go backwards: each starts one segment before the one served
    /// before it (`EXT-X-MEDIA-SEQUENCE` decreases; the playlist lists one more old segment,
    /// and ends where it should), down to the oldest segment still retained. They are whole
    /// playlists, never delta updates. 0 ends that.
    pub fn number_backwards(&self, count: u32) {
        *self.backwards_lock() = Backwards { left: count, last: None };
    }

    /// Playlists still to go backwards.
    #[must_use]
    pub fn backwards(&self) -> u32 {
        self.backwards_lock().left
    }

    fn backwards_lock(&self) -> std::sync::MutexGuard<'_, Backwards> {
        self.backwards.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a backwards playlist down: the first segment it lists, one before the last
    /// backwards playlist's (or before `usual`, the first segment it should list), not below
    /// `oldest`. `None` when the fault is off.
    fn take_backwards(&self, usual: u64, oldest: u64) -> Option<u64> {
        let mut b = self.backwards_lock();
        b.left = b.left.checked_sub(1)?;
        let first = b.last.map_or(usual, |last| last.min(usual)).saturating_sub(1).max(oldest);
        b.last = Some(first);
        Some(first)
    }

    /// While `on`, playlists advertise `PART-HOLD-BACK` at two part targets, under the three
    /// RFC 8216bis §4.4.3.8 asks for (the two it requires are kept).
    pub fn shorten_part_hold_back(&self, on: bool) {
        self.short_hold_back.store(on, Ordering::Relaxed);
    }

    /// `PART-HOLD-BACK` is advertised short.
    #[must_use]
    pub fn part_hold_back_short(&self) -> bool {
        self.short_hold_back.load(Ordering::Relaxed)
    }
}

/// The live stream as served: the timeline, its epoch, and the fault switches.
#[derive(Debug)]
pub struct Stream {
    live: Live,
    /// Media time 0, monotonic.
    epoch: Instant,
    /// Media time 0, wall clock (for `EXT-X-PROGRAM-DATE-TIME`).
    wall: SystemTime,
    /// The fault switches.
    pub faults: Faults,
    /// Requests being held now (blocking reloads and hinted parts).
    held: AtomicUsize,
}

impl Stream {
    /// A stream whose first `initial` segments are complete now, so a player can join at
    /// once.
    #[must_use]
    pub fn new(live: Live, initial: u64) -> Stream {
        let back = live.duration(live.warm(initial));
        let now = Instant::now();
        let epoch = now.checked_sub(back).unwrap_or(now);
        let wall = SystemTime::now() - now.duration_since(epoch);
        Stream { live, epoch, wall, faults: Faults::default(), held: AtomicUsize::new(0) }
    }

    /// A stream of `live` on `other`'s clock (same epoch), so renditions of one ladder
    /// publish the same part at the same instant.
    #[must_use]
    pub fn sharing_clock(live: Live, other: &Stream) -> Stream {
        Stream {
            live,
            epoch: other.epoch,
            wall: other.wall,
            faults: Faults::default(),
            held: AtomicUsize::new(0),
        }
    }

    /// Media time 0 on the wall clock (`EXT-X-PROGRAM-DATE-TIME` counts from it).
    #[must_use]
    pub fn wall(&self) -> SystemTime {
        self.wall
    }

    /// The timeline.
    #[must_use]
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Ticks since the epoch, now.
    #[must_use]
    pub fn elapsed(&self) -> u64 {
        self.live.ticks(Instant::now().saturating_duration_since(self.epoch))
    }

    /// The monotonic instant `ticks` after the epoch.
    #[must_use]
    pub fn instant(&self, ticks: u64) -> Instant {
        self.epoch + self.live.duration(ticks)
    }

    /// The media playlist now (a delta update with `skip`), as served (see [`Stream::media`]).
    #[must_use]
    pub fn playlist(&self, skip: bool) -> String {
        self.media(self.elapsed(), skip).render()
    }

    /// The media playlist at `elapsed` ticks (a delta update with `skip`) as served: the
    /// timeline's, changed by the fault switches that act on playlists (each one served
    /// counts down those that last a number of playlists).
    pub fn media(&self, elapsed: u64, skip: bool) -> Media {
        let live = &self.live;
        let first = self.faults.take_backwards(live.first_listed(elapsed), live.oldest_retained(elapsed));
        let mut m = match first {
            Some(first) => live.playlist_from(elapsed, self.wall, first),
            None => live.playlist(elapsed, self.wall, skip),
        };
        if take(&self.faults.bad_hints) {
            for h in &mut m.preload_hints {
                h.uri = format!("{BAD_HINT}{}", h.uri);
            }
        }
        if self.faults.part_hold_back_short() {
            if let Some(c) = &mut m.server_control {
                c.part_hold_back = Some((2e5 * live.part_target()).round() / 1e5);
            }
        }
        m
    }

    /// Requests held now.
    #[must_use]
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Fault: the next `count` parts will be advertised as usual and then answered 404, as
    /// will the segments they belong to. Returns them.
    pub fn drop_next_parts(&self, count: u32) -> Vec<PartId> {
        let elapsed = self.elapsed();
        let first = self.live.index(self.live.next_part(elapsed));
        let parts: Vec<PartId> = (first..first + u64::from(count)).map(|i| self.live.at_index(i)).collect();
        self.drop_parts(&parts);
        parts
    }

    /// Fault: `parts` will be advertised as usual and then answered 404, as will the segments
    /// they belong to (parts already past retention are forgotten).
    pub fn drop_parts(&self, parts: &[PartId]) {
        let elapsed = self.elapsed();
        let mut missing = self.faults.missing();
        missing.retain(|id| self.live.retained(id.msn, elapsed));
        missing.extend(parts);
    }

    /// Sleeps until `ticks` after the epoch, at most three target durations from now.
    /// Returns whether the time came (false: the bound ran out first).
    pub(crate) async fn hold_until(&self, ticks: u64) -> bool {
        let due = self.instant(ticks);
        let limit = Instant::now() + self.hold_limit();
        self.held.fetch_add(1, Ordering::Relaxed);
        let _held = Held(&self.held);
        tokio::time::sleep_until(due.min(limit)).await;
        due <= limit
    }

    /// The longest a blocking reload is held: three target durations (RFC 8216bis §6.2.5.2).
    #[must_use]
    pub fn hold_limit(&self) -> Duration {
        Duration::from_secs(3 * self.live.target_duration())
    }

    /// How long after it arrives a slow reload ([`Faults::answer_reloads_slowly`]) is
    /// answered: the hold limit and one second.
    #[must_use]
    pub fn slow_answer(&self) -> Duration {
        self.hold_limit() + Duration::from_secs(1)
    }

    /// Fault: holds a slow reload that arrived at `arrived` until [`Stream::slow_answer`]
    /// after that.
    pub(crate) async fn hold_slowly(&self, arrived: Instant) {
        self.held.fetch_add(1, Ordering::Relaxed);
        let _held = Held(&self.held);
        tokio::time::sleep_until(arrived + self.slow_answer()).await;
    }
}

/// What a bad preload hint puts before the URI of the part it should name: the server
/// answers 404 for it, and no playlist lists it.
pub const BAD_HINT: &str = "never-";

/// Counts a held request down when it ends, however it ends (answered or dropped).
struct Held<'a>(&'a AtomicUsize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::source::testing::synthetic;
    use super::*;

    const PART: u64 = 5120;

    /// Four segments of six 1/3 s parts (2 s segments, an 8 s loop), window 10.
    fn stream() -> Stream {
        Stream::new(Live::new(Arc::new(synthetic(&[6, 6, 6, 6], PART, 15360)), 10), 3)
    }

    fn uris(m: &Media) -> Vec<&str> {
        let parts = m.segments.iter().flat_map(|s| &s.parts).chain(&m.parts_in_progress);
        parts.map(|p| p.uri.as_str()).collect()
    }

    #[test]
    fn without_a_fault_the_stream_serves_the_timeline_s_playlist() {
        let s = stream();
        let t = s.live().segment_end(30) + 2 * PART;
        for skip in [false, true] {
            assert_eq!(s.media(t, skip), s.live().playlist(t, s.wall(), skip));
        }
    }

    #[test]
    fn bad_hints_name_a_part_that_is_never_listed_for_that_many_playlists() {
        let s = stream();
        let live = s.live();
        let t = live.segment_end(30) + 2 * PART;
        s.faults.send_bad_hints(2);
        assert_eq!(s.faults.bad_hints(), 2);
        let first = s.media(t, false);
        assert_eq!(first.preload_hints.len(), 1);
        assert_eq!(first.preload_hints[0].uri, "never-part00031.2.mp4");
        // The server answers 404 for it: it names neither a part nor a segment.
        assert_eq!(live.parse_part_uri(&first.preload_hints[0].uri), None);
        assert_eq!(Live::parse_segment_uri(&first.preload_hints[0].uri), None);
        // The next playlist lists the part the hint stood for, under its own name, and hints
        // the next one badly too; then the fault is spent.
        let second = s.media(t + PART, true);
        assert!(uris(&second).contains(&"part00031.2.mp4"));
        assert_eq!(second.preload_hints[0].uri, "never-part00031.3.mp4");
        let later = s.media(t + 20 * PART, false);
        assert!(!uris(&later).iter().any(|u| u.starts_with(BAD_HINT)));
        assert_eq!(later.preload_hints[0].uri, Live::part_uri(live.next_part(t + 20 * PART)));
        assert_eq!(s.faults.bad_hints(), 0);
        // Everything else is as usual.
        let mut usual = live.playlist(t, s.wall(), false);
        usual.preload_hints[0].uri = first.preload_hints[0].uri.clone();
        assert_eq!(first, usual);
    }

    #[test]
    fn backwards_playlists_each_start_a_segment_earlier_than_the_one_before_and_end_as_usual() {
        let s = stream();
        let live = s.live();
        let t = live.segment_end(30) + 2 * PART;
        let usual = live.first_listed(t);
        assert_eq!(usual, 21);
        s.faults.number_backwards(3);
        assert_eq!(s.faults.backwards(), 3);
        let mut firsts = Vec::new();
        // Time moves on between them (at the last, segment 31 completes): they still go back.
        for at in [t, t + 2 * PART, t + 4 * PART] {
            // Asked for a delta update: answered whole (the skipped segments need not be in
            // the player's last playlist).
            let m = s.media(at, true);
            assert_eq!(m.skipped_segments, None);
            let whole = live.playlist(at, s.wall(), false);
            let older = usize::try_from(whole.media_sequence - m.media_sequence).unwrap();
            assert_eq!(m.segments[older..], whole.segments[..], "ends as usual");
            assert_eq!(m.parts_in_progress, whole.parts_in_progress);
            assert_eq!(m.preload_hints, whole.preload_hints);
            assert!((m.media_sequence..whole.media_sequence).all(|msn| live.retained(msn, at)));
            firsts.push(m.media_sequence);
        }
        assert_eq!(firsts, [20, 19, 18]);
        assert_eq!(s.faults.backwards(), 0);
        assert_eq!(s.media(t, true), live.playlist(t, s.wall(), true), "spent");

        // Never below the oldest segment still retained; set again, it starts afresh.
        s.faults.number_backwards(100);
        let floor = live.oldest_retained(t);
        let firsts: Vec<u64> = (0..15).map(|_| s.media(t, false).media_sequence).collect();
        assert_eq!(firsts[..3], [20, 19, 18]);
        assert_eq!(*firsts.last().unwrap(), floor);
        assert!(firsts.iter().all(|f| *f >= floor && live.retained(*f, t)), "{firsts:?}");
        s.faults.number_backwards(0);
        assert_eq!(s.media(t, false).media_sequence, usual);
    }

    #[test]
    fn a_short_part_hold_back_is_two_part_targets() {
        let s = stream();
        let t = s.live().segment_end(30);
        s.faults.shorten_part_hold_back(true);
        assert!(s.faults.part_hold_back_short());
        let m = s.media(t, false);
        let hold = m.server_control.unwrap().part_hold_back.unwrap();
        assert_eq!(hold, 0.66668);
        let target = s.live().part_target();
        assert!(hold < 3.0 * target && hold >= 2.0 * target, "{hold} against {target}");
        let mut usual = s.live().playlist(t, s.wall(), false);
        usual.server_control.as_mut().unwrap().part_hold_back = Some(hold);
        assert_eq!(m, usual, "nothing else changes");
        s.faults.shorten_part_hold_back(false);
        assert_eq!(s.media(t, false), s.live().playlist(t, s.wall(), false));
    }

    #[test]
    fn slow_reloads_are_counted_down_and_answered_past_the_hold_limit() {
        let s = stream();
        assert_eq!(s.hold_limit(), Duration::from_secs(6), "three 2 s target durations");
        assert_eq!(s.slow_answer(), Duration::from_secs(7));
        s.faults.answer_reloads_slowly(2);
        assert_eq!(s.faults.slow_reloads(), 2);
        assert!(s.faults.take_slow_reload() && s.faults.take_slow_reload());
        assert!(!s.faults.take_slow_reload());
        assert_eq!(s.faults.slow_reloads(), 0);
        s.faults.answer_reloads_slowly(5);
        s.faults.answer_reloads_slowly(0);
        assert!(!s.faults.take_slow_reload(), "0 ends it");
    }
}
