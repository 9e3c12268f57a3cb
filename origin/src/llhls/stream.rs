//! The live stream as served: a rendition's timeline on the ladder's clock, the requests held
//! for it, and its fault switches.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::timeline::{Live, PartId};

/// Fault switches (for conformance tests of viewers).
#[derive(Debug, Default)]
pub struct Faults {
    /// Parts advertised in the playlist but answered 404 (and so are their segments).
    missing: Mutex<BTreeSet<PartId>>,
    /// Blocking reloads are answered at once, before the part they ask for exists.
    early: AtomicBool,
}

impl Faults {
    pub(crate) fn missing(&self) -> std::sync::MutexGuard<'_, BTreeSet<PartId>> {
        self.missing.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// The media playlist now (a delta update with `skip`).
    #[must_use]
    pub fn playlist(&self, skip: bool) -> String {
        self.live.playlist(self.elapsed(), self.wall, skip).render()
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
        let limit = Instant::now() + Duration::from_secs(3 * self.live.target_duration());
        self.held.fetch_add(1, Ordering::Relaxed);
        let _held = Held(&self.held);
        tokio::time::sleep_until(due.min(limit)).await;
        due <= limit
    }
}

/// Counts a held request down when it ends, however it ends (answered or dropped).
struct Held<'a>(&'a AtomicUsize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
