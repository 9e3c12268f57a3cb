//! The rolling windows: one slot per second of the last five minutes (bytes, requests,
//! errors, media received) and the running segment-latency histograms of the last
//! [`LATENCY_WINDOW`] seconds.

use std::collections::VecDeque;
use std::time::Duration;

use crate::measure::events::RequestKind;
use crate::measure::history::SecondSample;
use crate::measure::latency::{Hist, Latency, Packed};
use crate::measure::snapshot::{LATENCY_WINDOW, WINDOWS};

pub(crate) fn kind_index(kind: RequestKind) -> usize {
    RequestKind::ALL.iter().position(|k| *k == kind).unwrap_or(RequestKind::ALL.len() - 1)
}

/// One second of the rolling windows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slot {
    pub(crate) second: u64,
    pub(crate) bytes: [u64; RequestKind::ALL.len()],
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    /// Media seconds of the segments that arrived in this second.
    media: f64,
    segment: Option<Box<(Hist, Hist)>>,
}

/// Per-second slots for the last [`WINDOWS`]`.max()` seconds, and the running segment
/// latency histograms of the last [`LATENCY_WINDOW`] seconds (a slot's values are subtracted
/// when it leaves that window, so no tick merges 30 histograms).
#[derive(Debug, Default)]
pub(crate) struct Windows {
    slots: VecDeque<Slot>,
    recent: Option<Box<(Hist, Hist)>>,
    /// Slots older than this second have left `recent`.
    recent_from: u64,
}

impl Windows {
    pub(crate) fn slot(&mut self, second: u64) -> Option<&mut Slot> {
        let newest = self.slots.back().map_or(0, |s| s.second);
        if self.slots.is_empty() || second > newest {
            let from = if self.slots.is_empty() { second } else { newest + 1 };
            for s in from.max(second.saturating_sub(WINDOWS[3]))..=second {
                self.slots.push_back(Slot { second: s, ..Slot::default() });
            }
            while self.slots.len() as u64 > WINDOWS[3] + 1 {
                self.slots.pop_front();
            }
            self.expire(second);
        }
        let first = self.slots.front()?.second;
        let idx = usize::try_from(second.checked_sub(first)?).ok()?;
        self.slots.get_mut(idx)
    }

    /// Takes slots older than [`LATENCY_WINDOW`] before `now_second` out of `recent`.
    pub(crate) fn expire(&mut self, now_second: u64) {
        let keep_from = now_second.saturating_sub(LATENCY_WINDOW);
        if keep_from <= self.recent_from {
            return;
        }
        for slot in &mut self.slots {
            if slot.second >= keep_from {
                break;
            }
            if let (Some(h), Some(recent)) = (slot.segment.take(), self.recent.as_mut()) {
                recent.0.subtract(&h.0);
                recent.1.subtract(&h.1);
            }
        }
        self.recent_from = keep_from;
    }

    /// Counts one request (and whether it failed) in `second`.
    pub(crate) fn count(&mut self, second: u64, errors: u64) {
        if let Some(slot) = self.slot(second) {
            slot.requests += 1;
            slot.errors += errors;
        }
    }

    /// The sample of a finished `second` (viewer counts are filled in by the caller).
    pub(crate) fn sample(&self, second: u64) -> SecondSample {
        let Some(slot) = self.slots.iter().find(|s| s.second == second) else {
            return SecondSample { second, ..SecondSample::default() };
        };
        let p95 = slot.segment.as_ref().map(|h| h.1.summary()).filter(|l| l.count > 0).map(|l| l.p95);
        SecondSample {
            second,
            bytes: slot.bytes.iter().sum(),
            requests: slot.requests,
            errors: slot.errors,
            segment_p95: p95,
            ..SecondSample::default()
        }
    }

    /// The segment download times of `second`, packed, if it had any.
    pub(crate) fn segment_ttlb(&self, second: u64) -> Option<Packed> {
        let slot = self.slots.iter().find(|s| s.second == second)?;
        slot.segment.as_ref().filter(|h| h.1.count() > 0).map(|h| h.1.pack())
    }

    /// Records one segment's latencies in `second`'s slot and the running window.
    pub(crate) fn record_segment(&mut self, second: u64, ttfb: Duration, ttlb: Duration) {
        if second < self.recent_from {
            return;
        }
        let Some(slot) = self.slot(second) else { return };
        let h =
            slot.segment.get_or_insert_with(|| Box::new((Hist::with_precision(2), Hist::with_precision(2))));
        h.0.record(ttfb);
        h.1.record(ttlb);
        let recent =
            self.recent.get_or_insert_with(|| Box::new((Hist::with_precision(2), Hist::with_precision(2))));
        recent.0.record(ttfb);
        recent.1.record(ttlb);
    }

    /// Bytes per second over the last `window` whole seconds before `now_second`, of kinds
    /// selected by `pick`.
    #[allow(clippy::cast_precision_loss)]
    pub(crate) fn rate(&self, now_second: u64, window: u64, pick: impl Fn(usize) -> bool) -> f64 {
        let span = window.min(now_second);
        if span == 0 {
            return 0.0;
        }
        let from = now_second - span;
        let total: u64 = self
            .slots
            .iter()
            .filter(|s| s.second >= from && s.second < now_second)
            .map(|s| s.bytes.iter().enumerate().filter(|(i, _)| pick(*i)).map(|(_, b)| b).sum::<u64>())
            .sum();
        total as f64 / span as f64
    }

    /// Media seconds received per second over the last `window` whole seconds.
    #[allow(clippy::cast_precision_loss)]
    pub(crate) fn media_rate(&self, now_second: u64, window: u64) -> Option<f64> {
        let span = window.min(now_second);
        let from = now_second.checked_sub(span)?;
        let media: f64 =
            self.slots.iter().filter(|s| s.second >= from && s.second < now_second).map(|s| s.media).sum();
        (span > 0).then(|| media / span as f64)
    }

    pub(crate) fn add_media(&mut self, second: u64, media: Duration) {
        if let Some(slot) = self.slot(second) {
            slot.media += media.as_secs_f64();
        }
    }

    pub(crate) fn recent_segments(&mut self, now_second: u64) -> (Latency, Latency) {
        self.expire(now_second);
        self.recent.as_ref().map_or_else(Default::default, |r| (r.0.summary(), r.1.summary()))
    }
}
