//! What the run looked like over time: one [`SecondSample`] per second for the charts, a short log of
//! notable [`Notice`]s, and a [`ViewerRow`] per viewer. The stats owner fills them in; the
//! dashboard and the reports only read them.

use std::collections::VecDeque;
use std::time::Duration;

use crate::measure::events::ViewerId;
use crate::measure::latency::Packed;

/// Where a viewer is in its life (in a report: where it was at the end).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ViewerState {
    /// Never started (the run ended during the ramp).
    #[default]
    Waiting,
    /// Process alive.
    Running,
    /// Waiting to restart.
    Backoff,
    /// The stream ended.
    Ended,
    /// Stopped by the end of the run.
    Stopped,
}

impl ViewerState {
    /// Lower-case name.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            ViewerState::Waiting => "waiting",
            ViewerState::Running => "running",
            ViewerState::Backoff => "backoff",
            ViewerState::Ended => "ended",
            ViewerState::Stopped => "stopped",
        }
    }
}

/// Samples the live snapshot carries (the dashboard's charts span this many seconds).
pub const RECENT_SAMPLES: usize = 300;
/// Notices kept.
pub const NOTICES: usize = 64;

/// One second of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SecondSample {
    /// Seconds since the first viewer was due: this sample covers `[second, second + 1)`.
    pub second: u64,
    /// Viewer processes alive at the end of the second.
    pub running: u32,
    /// Viewers that fetched a segment recently.
    pub streaming: u32,
    /// Viewers whose player model was stalled.
    pub stalled: u32,
    /// Bytes received in this second, all request kinds.
    pub bytes: u64,
    /// Requests that ended in this second.
    pub requests: u64,
    /// HTTP (>= 400) and network errors in this second.
    pub errors: u64,
    /// 95th percentile of the segment download times that ended in this second, seconds.
    pub segment_p95: Option<f64>,
}

/// How much a notice matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Part of a normal run.
    Info,
    /// Recoverable trouble (an HTTP error, a restart).
    Warn,
    /// A viewer could not start.
    Error,
}

/// Something a person watching the run would want to see.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Notice {
    /// Time since the run started (of the latest repeat).
    pub at: Duration,
    /// Which viewer (of the latest repeat).
    pub viewer: Option<ViewerId>,
    /// Severity.
    pub level: Level,
    /// One line.
    pub text: String,
    /// The viewer's last log lines, for exits.
    pub detail: Vec<String>,
    /// How many times in a row this notice happened (1 = once).
    pub repeats: u64,
}

/// The last [`NOTICES`] notices; a notice equal in text to the newest one is folded into it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Notices {
    items: VecDeque<Notice>,
    total: u64,
}

impl Notices {
    /// Adds a notice (or counts a repeat of the newest one).
    pub fn push(&mut self, at: Duration, viewer: Option<ViewerId>, level: Level, text: String) {
        self.push_with(at, viewer, level, text, Vec::new());
    }

    /// Adds a notice with detail lines.
    pub fn push_with(
        &mut self,
        at: Duration,
        viewer: Option<ViewerId>,
        level: Level,
        text: String,
        detail: Vec<String>,
    ) {
        self.total += 1;
        if let Some(last) = self.items.back_mut() {
            if last.text == text && last.level == level {
                last.repeats += 1;
                last.at = at;
                last.viewer = viewer;
                last.detail = detail;
                return;
            }
        }
        if self.items.len() == NOTICES {
            self.items.pop_front();
        }
        self.items.push_back(Notice { at, viewer, level, text, detail, repeats: 1 });
    }

    /// Moves every notice `by` later (its run started that much after the merged one's).
    pub fn shift(&mut self, by: Duration) {
        for n in &mut self.items {
            n.at += by;
        }
    }

    /// Adds `other`'s notices (their viewers numbered from `viewer_offset`), keeping the
    /// last [`NOTICES`] of both by time. Repeats already folded stay as they are.
    pub fn merge(&mut self, other: &Notices, viewer_offset: ViewerId) {
        let theirs = other.items.iter().cloned().map(|mut n| {
            n.viewer = n.viewer.map(|v| v + viewer_offset);
            n
        });
        let mut all: Vec<Notice> = self.items.drain(..).chain(theirs).collect();
        all.sort_by_key(|n| n.at);
        let skip = all.len().saturating_sub(NOTICES);
        self.items = all.into_iter().skip(skip).collect();
        self.total += other.total;
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Notice> {
        self.items.iter()
    }

    /// Notices ever pushed, repeats included.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.total
    }

    /// How many are kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True if none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// One viewer, for the dashboard's table and the report (where `stalled` and `state` are as
/// they were at the end).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewerRow {
    /// Viewer number (0 is the first started).
    pub id: ViewerId,
    /// The stream it plays: an index into the run's streams (0 with one stream).
    #[serde(default)]
    pub stream: u16,
    /// Where it is.
    pub state: ViewerState,
    /// True while its player model is stalled.
    pub stalled: bool,
    /// Processes started for it.
    pub starts: u64,
    /// Segments it received.
    pub segments: u64,
    /// Bytes it received.
    pub bytes: u64,
    /// HTTP and network errors it saw.
    pub errors: u64,
    /// Stalls of its player model, finished and ongoing.
    pub stalls: u64,
    /// Seconds it did not play after its first playback (or waited, for a failed start).
    pub stall_seconds: f64,
    /// Seconds it watched: from its first playback (or its start, for a failed start).
    pub watch_seconds: f64,
    /// How far behind the live edge it played at its latest segment, seconds; `null` without
    /// `EXT-X-PROGRAM-DATE-TIME` in the playlists (or with `--measure log`).
    pub live_latency_seconds: Option<f64>,
    /// `BANDWIDTH` of the variant its latest segment came from; `null` when unknown (FFmpeg
    /// viewers).
    pub variant_bandwidth: Option<u64>,
    /// Its variant switches (`--variant abr`).
    pub switches: u64,
    /// The first line of its last unexpected exit's log; `null` if none.
    pub last_error: Option<String>,
}

/// Keeps one sample per second for the whole run.
#[derive(Debug, Clone, Default)]
pub struct Series {
    samples: Vec<SecondSample>,
    /// Each second's segment download times, packed, for seconds that had any: what
    /// merging two runs' seconds needs.
    segment_ttlb: std::collections::BTreeMap<u64, Packed>,
}

impl Series {
    /// Appends a sample; samples arrive in order of `second` (later duplicates are ignored).
    pub fn push(&mut self, sample: SecondSample) {
        if self.samples.last().is_none_or(|l| sample.second > l.second) {
            self.samples.push(sample);
        }
    }

    /// Keeps `second`'s segment download times.
    pub fn keep_segments(&mut self, second: u64, packed: Packed) {
        self.segment_ttlb.insert(second, packed);
    }

    /// Each second's segment download times, for seconds that had any.
    #[must_use]
    pub fn segment_ttlb(&self) -> &std::collections::BTreeMap<u64, Packed> {
        &self.segment_ttlb
    }

    /// Bytes held for the whole run's seconds (samples and packed histograms, not counting
    /// the containers' spare capacity).
    #[must_use]
    pub fn held_bytes(&self) -> usize {
        let per_entry = std::mem::size_of::<u64>() + std::mem::size_of::<Packed>();
        self.samples.len() * std::mem::size_of::<SecondSample>()
            + self.segment_ttlb.values().map(|p| p.size() + per_entry).sum::<usize>()
    }

    /// The second the next sample is for.
    #[must_use]
    pub fn next_second(&self) -> u64 {
        self.samples.last().map_or(0, |s| s.second + 1)
    }

    /// The last [`RECENT_SAMPLES`].
    #[must_use]
    pub fn recent(&self) -> Vec<SecondSample> {
        self.samples[self.samples.len().saturating_sub(RECENT_SAMPLES)..].to_vec()
    }

    /// Every sample.
    #[must_use]
    pub fn all(&self) -> &[SecondSample] {
        &self.samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_fold_and_the_log_is_bounded() {
        let mut n = Notices::default();
        let s = Duration::from_secs;
        n.push(s(1), Some(1), Level::Warn, "HTTP 404 segment".into());
        n.push(s(2), Some(2), Level::Warn, "HTTP 404 segment".into());
        assert_eq!(n.len(), 1);
        let first = n.iter().next().cloned();
        assert_eq!(first.map(|f| (f.repeats, f.viewer, f.at)), Some((2, Some(2), s(2))));
        for i in 0..200 {
            n.push(s(3), None, Level::Info, format!("n{i}"));
        }
        assert_eq!(n.len(), NOTICES);
        assert_eq!(n.total(), 202);
        // The oldest are dropped: the newest NOTICES remain, in order.
        let kept: Vec<String> = n.iter().map(|l| l.text.clone()).collect();
        let newest: Vec<String> = (200 - NOTICES..200).map(|i| format!("n{i}")).collect();
        assert_eq!(kept, newest);
    }

    /// A day of seconds with segments in each costs the series a fixed, small amount per
    /// second (the soak's RSS curve shows the rest of the process stays flat).
    #[test]
    fn a_second_costs_the_series_a_few_hundred_bytes() {
        let mut s = Series::default();
        let packed = crate::measure::latency::tests::a_second_of_segments().pack();
        for second in 0..86_400 {
            s.push(SecondSample {
                second,
                requests: 150,
                segment_p95: Some(0.03),
                ..SecondSample::default()
            });
            s.keep_segments(second, packed.clone());
        }
        let per_second = s.held_bytes() / 86_400;
        assert!(per_second < 400, "{per_second} B per second");
    }

    #[test]
    fn series_keeps_order_and_recent_is_bounded() {
        let mut s = Series::default();
        for second in 0..400 {
            s.push(SecondSample { second, ..SecondSample::default() });
        }
        s.push(SecondSample { second: 10, ..SecondSample::default() });
        assert_eq!(s.all().len(), 400);
        assert_eq!(s.next_second(), 400);
        let recent = s.recent();
        assert_eq!(recent.len(), RECENT_SAMPLES);
        assert_eq!(recent.first().map(|r| r.second), Some(100));
    }
}
