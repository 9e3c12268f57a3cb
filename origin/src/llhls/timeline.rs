//! The live view of a [`Loop`]: which segments and parts exist at a given time, as pure
//! functions of the time elapsed since the stream's epoch (in the loop's video ticks), and the
//! media playlist that shows them.
//!
//! The loop is republished forever from the epoch: pass `i` plays the loop again with every
//! decode time moved on by `i` loop lengths, and its segment `k` has media sequence number
//! `i × segments + k`, so numbers and times only grow. A part exists once the media it
//! carries has been "captured": at the epoch plus its end time, one part duration after the
//! one before (what a live encoder does). A segment is complete once its last part exists.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kit::playlist::{Map, Media, Part, PreloadHint, RenditionReport, Segment, ServerControl};

use super::source::{Loop, LoopPart, LoopSegment};

/// A part's address: its segment's media sequence number and its index in the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartId {
    /// Media sequence number of the parent segment.
    pub msn: u64,
    /// Part index within it, from 0.
    pub part: u32,
}

/// What to do with a blocking playlist reload (`_HLS_msn`, `_HLS_part`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// The playlist already has it: answer now.
    Now,
    /// It appears at this time (ticks since the epoch): hold the request until then.
    At(u64),
    /// More than two segments, or more than the Advance Part Limit, ahead: 400.
    TooFar,
}

/// The URI of the init section.
pub const INIT_URI: &str = "init.mp4";

/// The live stream over a loop.
#[derive(Debug, Clone)]
pub struct Live {
    lp: Arc<Loop>,
    /// Complete segments listed.
    window: u64,
    /// End of each part within a pass (ticks), in order over the whole pass.
    part_ends: Vec<u64>,
    /// Index (within a pass) of each segment's first part.
    first_part: Vec<u64>,
    /// `EXT-X-TARGETDURATION`, seconds.
    target: u64,
    /// `PART-TARGET`, seconds.
    part_target: f64,
    /// `PART-HOLD-BACK`, seconds.
    part_hold_back: f64,
    map: Arc<Map>,
}

/// Seconds, rounded to 5 decimals (as written in the playlist).
fn round5(x: f64) -> f64 {
    (x * 1e5).round() / 1e5
}

impl Live {
    /// The live view of `lp` listing `window` complete segments.
    ///
    /// # Panics
    /// If the loop has no segment or a segment has no part ([`Loop::from_mp4`] never makes one).
    #[must_use]
    pub fn new(lp: Arc<Loop>, window: u32) -> Live {
        assert!(lp.segments.iter().all(|s| !s.parts.is_empty()) && !lp.segments.is_empty(), "an empty loop");
        let ts = f64::from(lp.timescale);
        let mut part_ends = Vec::new();
        let mut first_part = Vec::new();
        for s in &lp.segments {
            first_part.push(part_ends.len() as u64);
            part_ends.extend(s.parts.iter().map(|p| p.start + p.duration));
        }
        let target =
            lp.segments.iter().map(|s| (s.duration as f64 / ts).round() as u64).max().unwrap_or(1).max(1);
        let longest = lp.segments.iter().flat_map(|s| &s.parts).map(|p| p.duration).max().unwrap_or(1);
        // In 10 µs units, rounded up, so every part's (rounded) DURATION is at most PART-TARGET.
        let units = (longest as f64 / ts * 1e5).ceil() as u64;
        let part_target = units as f64 / 1e5;
        // Three part targets (RFC 8216bis §4.4.3.8 SHOULD), and not below them in a reader's
        // floating point either.
        let mut part_hold_back = (3 * units) as f64 / 1e5;
        if part_hold_back < 3.0 * part_target {
            part_hold_back = (3 * units + 1) as f64 / 1e5;
        }
        let map = Arc::new(Map { uri: INIT_URI.into(), byte_range: None });
        Live {
            lp,
            window: u64::from(window),
            part_ends,
            first_part,
            target,
            part_target,
            part_hold_back,
            map,
        }
    }

    /// The loop.
    #[must_use]
    pub fn source(&self) -> &Loop {
        &self.lp
    }

    /// `EXT-X-TARGETDURATION` in seconds.
    #[must_use]
    pub fn target_duration(&self) -> u64 {
        self.target
    }

    /// `PART-TARGET` in seconds.
    #[must_use]
    pub fn part_target(&self) -> f64 {
        self.part_target
    }

    /// Ticks per second of every tick count here.
    #[must_use]
    pub fn timescale(&self) -> u32 {
        self.lp.timescale
    }

    /// `d` in ticks (rounded down).
    #[must_use]
    pub fn ticks(&self, d: Duration) -> u64 {
        u64::try_from(d.as_nanos() * u128::from(self.lp.timescale) / 1_000_000_000).unwrap_or(u64::MAX)
    }

    /// `ticks` as a duration (rounded up to the nanosecond, so sleeping that long is enough).
    #[must_use]
    pub fn duration(&self, ticks: u64) -> Duration {
        let ns = (u128::from(ticks) * 1_000_000_000).div_ceil(u128::from(self.lp.timescale));
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    fn per_pass(&self) -> (u64, u64) {
        (self.lp.segments.len() as u64, self.part_ends.len() as u64)
    }

    fn segment(&self, msn: u64) -> (u64, &LoopSegment) {
        let (s, _) = self.per_pass();
        (msn / s, &self.lp.segments[usize::try_from(msn % s).unwrap_or(0)])
    }

    fn part(&self, id: PartId) -> Option<(u64, &LoopPart)> {
        let (pass, seg) = self.segment(id.msn);
        seg.parts.get(usize::try_from(id.part).ok()?).map(|p| (pass, p))
    }

    /// Parts in segment `msn`.
    #[must_use]
    pub fn parts_in(&self, msn: u64) -> u32 {
        u32::try_from(self.segment(msn).1.parts.len()).unwrap_or(u32::MAX)
    }

    /// Start of segment `msn`, ticks since the epoch.
    #[must_use]
    pub fn segment_start(&self, msn: u64) -> u64 {
        let (pass, seg) = self.segment(msn);
        pass * self.lp.duration + seg.start
    }

    /// When segment `msn` is complete, ticks since the epoch.
    #[must_use]
    pub fn segment_end(&self, msn: u64) -> u64 {
        self.segment_start(msn) + self.segment(msn).1.duration
    }

    /// When part `id` exists, ticks since the epoch (`None` past its segment's last part).
    #[must_use]
    pub fn part_end(&self, id: PartId) -> Option<u64> {
        self.part(id).map(|(pass, p)| pass * self.lp.duration + p.start + p.duration)
    }

    /// The position of part `id` in the stream, counting every part from 0 (its fragment's
    /// `mfhd` sequence number is this plus one).
    #[must_use]
    pub fn index(&self, id: PartId) -> u64 {
        let (s, p) = self.per_pass();
        (id.msn / s) * p + self.first_part[usize::try_from(id.msn % s).unwrap_or(0)] + u64::from(id.part)
    }

    /// The part at position `index` (see [`Live::index`]).
    #[must_use]
    pub fn at_index(&self, index: u64) -> PartId {
        let (s, p) = self.per_pass();
        let (pass, r) = (index / p, index % p);
        let k = self.first_part.partition_point(|f| *f <= r) - 1;
        PartId { msn: pass * s + k as u64, part: u32::try_from(r - self.first_part[k]).unwrap_or(0) }
    }

    /// `(msn, part)` as RFC 8216bis §6.2.5.2 reads it: a part index past the segment's last
    /// means part 0 of the next segment.
    #[must_use]
    pub fn normalize(&self, msn: u64, part: u32) -> PartId {
        if part >= self.parts_in(msn) {
            PartId { msn: msn + 1, part: 0 }
        } else {
            PartId { msn, part }
        }
    }

    /// The first part that does not exist yet at `elapsed` ticks: the preload hint.
    #[must_use]
    pub fn next_part(&self, elapsed: u64) -> PartId {
        let (_, p) = self.per_pass();
        let (pass, r) = (elapsed / self.lp.duration, elapsed % self.lp.duration);
        let done = self.part_ends.partition_point(|e| *e <= r) as u64;
        self.at_index(pass * p + done)
    }

    /// The last part that exists at `elapsed` (the last one the playlist lists), if any.
    #[must_use]
    pub fn last_part(&self, elapsed: u64) -> Option<PartId> {
        self.index(self.next_part(elapsed)).checked_sub(1).map(|i| self.at_index(i))
    }

    /// This rendition as another rendition's playlist reports it at `elapsed`
    /// (`EXT-X-RENDITION-REPORT`, RFC 8216bis §4.4.5.4): `uri`, and the media sequence
    /// number and part index of its last part (a segment in progress is its last segment).
    #[must_use]
    pub fn report(&self, uri: String, elapsed: u64) -> RenditionReport {
        let last = self.last_part(elapsed);
        RenditionReport { uri, last_msn: last.map(|p| p.msn), last_part: last.map(|p| u64::from(p.part)) }
    }

    /// Part `id` exists at `elapsed`.
    #[must_use]
    pub fn published(&self, id: PartId, elapsed: u64) -> bool {
        self.part_end(id).is_some_and(|end| end <= elapsed)
    }

    /// Segment `msn` is complete at `elapsed`.
    #[must_use]
    pub fn complete(&self, msn: u64, elapsed: u64) -> bool {
        self.segment_end(msn) <= elapsed
    }

    /// Media sequence number of the first segment listed at `elapsed`.
    #[must_use]
    pub fn first_listed(&self, elapsed: u64) -> u64 {
        self.next_part(elapsed).msn.saturating_sub(self.window)
    }

    /// Segment `msn` (and its parts) can still be downloaded at `elapsed`: it left the
    /// playlist at most one window ago (RFC 8216bis §6.2.2 asks for three target durations
    /// after a part's tag goes, and for a segment's playlist duration after it goes).
    #[must_use]
    pub fn retained(&self, msn: u64, elapsed: u64) -> bool {
        msn >= self.oldest_retained(elapsed)
    }

    /// RFC 8216bis §6.2.5.2's Advance Part Limit: 3 / PART-TARGET below one second, else 3.
    #[must_use]
    pub fn advance_part_limit(&self) -> f64 {
        if self.part_target < 1.0 {
            3.0 / self.part_target
        } else {
            3.0
        }
    }

    /// What to do at `elapsed` with a blocking reload for `msn` (and `part`).
    #[must_use]
    pub fn reload(&self, elapsed: u64, msn: u64, part: Option<u32>) -> Reload {
        let next = self.next_part(elapsed);
        // "the Media Sequence Number of the last Media Segment in the current Playlist plus
        // two": the last complete segment is next.msn - 1.
        if msn > next.msn + 1 {
            return Reload::TooFar;
        }
        let ready = match part {
            None => self.segment_end(msn),
            Some(p) => {
                let id = self.normalize(msn, p);
                // Ahead of the last part that exists (next - 1) by more than the limit.
                let ahead = self.index(id) as f64 - (self.index(next) as f64 - 1.0);
                if ahead > self.advance_part_limit() {
                    return Reload::TooFar;
                }
                self.part_end(id).unwrap_or(u64::MAX)
            }
        };
        if ready <= elapsed {
            Reload::Now
        } else {
            Reload::At(ready)
        }
    }

    /// The URI of part `id`.
    #[must_use]
    pub fn part_uri(id: PartId) -> String {
        format!("part{:05}.{}.mp4", id.msn, id.part)
    }

    /// The URI of segment `msn`.
    #[must_use]
    pub fn segment_uri(msn: u64) -> String {
        format!("seg{msn:05}.mp4")
    }

    /// The part a URI names, if it names one of this stream's parts.
    #[must_use]
    pub fn parse_part_uri(&self, uri: &str) -> Option<PartId> {
        let (msn, part) = uri.strip_prefix("part")?.strip_suffix(".mp4")?.split_once('.')?;
        let id = PartId { msn: msn.parse().ok()?, part: part.parse().ok()? };
        (id.part < self.parts_in(id.msn)).then_some(id)
    }

    /// The segment a URI names.
    #[must_use]
    pub fn parse_segment_uri(uri: &str) -> Option<u64> {
        uri.strip_prefix("seg")?.strip_suffix(".mp4")?.parse().ok()
    }

    /// Part `id`'s bytes: its fragment, retimed for its pass, numbered by its position.
    #[must_use]
    pub fn part_bytes(&self, id: PartId) -> Option<Vec<u8>> {
        let (pass, p) = self.part(id)?;
        let sequence = u32::try_from((self.index(id) + 1) % (1 << 32)).unwrap_or(0);
        Some(self.lp.fragment(p.fragment, pass, sequence))
    }

    /// Segment `msn`'s bytes: its parts, concatenated.
    #[must_use]
    pub fn segment_bytes(&self, msn: u64) -> Vec<u8> {
        (0..self.parts_in(msn)).filter_map(|part| self.part_bytes(PartId { msn, part })).flatten().collect()
    }

    fn seconds(&self, ticks: u64) -> f64 {
        ticks as f64 / f64::from(self.lp.timescale)
    }

    fn parts_of(&self, msn: u64, count: u32) -> Vec<Part> {
        (0..count)
            .filter_map(|part| {
                let id = PartId { msn, part };
                let (_, p) = self.part(id)?;
                Some(Part {
                    duration: round5(self.seconds(p.duration)),
                    uri: Self::part_uri(id),
                    independent: p.independent,
                    ..Part::default()
                })
            })
            .collect()
    }

    /// The media playlist at `elapsed` ticks after the epoch, which was at `epoch` wall-clock
    /// time (for `EXT-X-PROGRAM-DATE-TIME`). With `skip`, a Playlist Delta Update: the
    /// segments that end more than `CAN-SKIP-UNTIL` before the last one are replaced by
    /// `EXT-X-SKIP`.
    #[must_use]
    pub fn playlist(&self, elapsed: u64, epoch: SystemTime, skip: bool) -> Media {
        self.listing(elapsed, epoch, skip, self.first_listed(elapsed))
    }

    /// The whole media playlist at `elapsed` (never a delta update) listing from segment
    /// `first`, older than [`Live::first_listed`]: `EXT-X-MEDIA-SEQUENCE` set back (a fault).
    /// `first` is kept between the oldest segment still [`retained`](Live::retained) and the
    /// usual first segment; the end of the playlist is the usual one.
    #[must_use]
    pub fn playlist_from(&self, elapsed: u64, epoch: SystemTime, first: u64) -> Media {
        let usual = self.first_listed(elapsed);
        self.listing(elapsed, epoch, false, first.clamp(self.oldest_retained(elapsed), usual))
    }

    /// The oldest segment still [`retained`](Live::retained) at `elapsed`.
    #[must_use]
    pub fn oldest_retained(&self, elapsed: u64) -> u64 {
        self.first_listed(elapsed).saturating_sub(self.window)
    }

    fn listing(&self, elapsed: u64, epoch: SystemTime, skip: bool, first: u64) -> Media {
        let next = self.next_part(elapsed);
        let end = self.index(next).checked_sub(1).and_then(|i| self.part_end(self.at_index(i))).unwrap_or(0);
        let target_ticks = u64::from(self.lp.timescale) * self.target;
        let skip_until = 6 * self.target;
        let mut skipped = 0;
        let mut segments = Vec::new();
        let last_end = next.msn.checked_sub(1).map_or(0, |m| self.segment_end(m));
        for msn in first..next.msn {
            let seg_end = self.segment_end(msn);
            if skip && last_end - seg_end >= skip_until * u64::from(self.lp.timescale) {
                skipped += 1;
                continue;
            }
            let parts = if end - seg_end <= 3 * target_ticks {
                self.parts_of(msn, self.parts_in(msn))
            } else {
                vec![]
            };
            segments.push(Segment {
                duration: self.seconds(seg_end - self.segment_start(msn)),
                uri: Self::segment_uri(msn),
                program_date_time: Some(date_time(epoch + self.duration(self.segment_start(msn)))),
                map: Some(self.map.clone()),
                parts,
                ..Segment::default()
            });
        }
        Media {
            // EXT-X-MAP needs 6; EXT-X-SKIP needs 9 (RFC 8216bis §8).
            version: Some(if skipped > 0 { 9 } else { 6 }),
            target_duration: Some(self.target as f64),
            media_sequence: first,
            independent_segments: true,
            segments,
            part_target: Some(self.part_target),
            server_control: Some(ServerControl {
                can_block_reload: true,
                can_skip_until: Some(skip_until as f64),
                hold_back: None,
                part_hold_back: Some(self.part_hold_back),
            }),
            parts_in_progress: self.parts_of(next.msn, next.part),
            skipped_segments: (skipped > 0).then_some(skipped),
            preload_hints: vec![PreloadHint {
                kind: "PART".into(),
                uri: Self::part_uri(next),
                byterange_start: None,
                byterange_length: None,
            }],
            ..Media::default()
        }
    }

    /// Ticks after which `initial` whole segments exist: a stream whose epoch is this far in
    /// the past has a playlist a player can join at once.
    #[must_use]
    pub fn warm(&self, initial: u64) -> u64 {
        self.segment_start(initial)
    }
}

/// `2026-12-03T17:20:01.123Z`.
fn date_time(at: SystemTime) -> String {
    let at = if at < UNIX_EPOCH { UNIX_EPOCH } else { at };
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::super::source::testing::{encoded, synthetic};
    use super::*;

    const TS: u32 = 15360;
    const PART: u64 = 5120;

    /// Four segments of six 1/3 s parts: an 8 s loop, 2 s segments, window 10.
    fn live() -> Live {
        Live::new(Arc::new(synthetic(&[6, 6, 6, 6], PART, TS)), 10)
    }

    fn epoch() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn id(msn: u64, part: u32) -> PartId {
        PartId { msn, part }
    }

    #[test]
    fn targets_follow_the_loop() {
        let l = live();
        assert_eq!(l.target_duration(), 2);
        assert_eq!(l.part_target(), 0.33334);
        assert!(l.part_hold_back >= 3.0 * l.part_target(), "{}", l.part_hold_back);
        assert!((8.99..9.0).contains(&l.advance_part_limit()));
    }

    #[test]
    fn parts_appear_one_part_duration_apart_and_sequence_numbers_run_on_across_passes() {
        let l = live();
        assert_eq!(l.next_part(0), id(0, 0));
        assert_eq!(l.next_part(PART - 1), id(0, 0));
        assert_eq!(l.next_part(PART), id(0, 1));
        assert_eq!(l.next_part(6 * PART), id(1, 0), "segment 0 complete");
        // Pass 2, segment 1, 3 parts in: msn 2×4 + 1 = 9.
        let t = 2 * 24 * PART + 6 * PART + 3 * PART;
        assert_eq!(l.next_part(t), id(9, 3));
        assert_eq!(l.part_end(id(9, 2)), Some(t));
        assert_eq!(l.segment_start(9), 2 * 24 * PART + 6 * PART);
        for i in [0, 5, 6, 23, 24, 1000] {
            assert_eq!(l.index(l.at_index(i)), i);
        }
        assert_eq!(l.normalize(9, 6), id(10, 0));
        assert_eq!(l.normalize(9, 5), id(9, 5));
        assert_eq!(l.warm(3), 18 * PART);
    }

    #[test]
    fn the_playlist_lists_complete_segments_parts_in_progress_and_the_next_part_as_a_hint() {
        let l = live();
        let m = l.playlist(l.warm(3) + 2 * PART, epoch(), false);
        assert_eq!((m.version, m.media_sequence, m.segments.len()), (Some(6), 0, 3));
        assert_eq!(m.target_duration, Some(2.0));
        let c = m.server_control.unwrap();
        assert!(c.can_block_reload);
        assert_eq!(
            (c.can_skip_until, c.part_hold_back),
            (Some(12.0), Some(1.00003)),
            "3 × 0.33334 is 1.0000200000000001 in f64"
        );
        assert_eq!(m.part_target, Some(0.33334));
        assert_eq!(m.segments[0].map.as_ref().unwrap().uri, "init.mp4");
        assert_eq!(m.segments[0].program_date_time.as_deref(), Some("2027-01-15T08:00:00.000Z"));
        assert_eq!(m.segments[2].program_date_time.as_deref(), Some("2027-01-15T08:00:04.000Z"));
        assert_eq!(m.segments[2].uri, "seg00002.mp4");
        assert!(m
            .segments
            .iter()
            .all(|s| s.parts.len() == 6 && s.parts[0].independent && !s.parts[1].independent));
        assert_eq!(m.segments[1].parts[3].uri, "part00001.3.mp4");
        assert_eq!(m.segments[1].parts[3].duration, 0.33333);
        let progress: Vec<&str> = m.parts_in_progress.iter().map(|p| p.uri.as_str()).collect();
        assert_eq!(progress, ["part00003.0.mp4", "part00003.1.mp4"]);
        let hint = PreloadHint {
            kind: "PART".into(),
            uri: "part00003.2.mp4".into(),
            byterange_start: None,
            byterange_length: None,
        };
        assert_eq!(m.preload_hints, [hint]);
        assert!(!m.ended && m.skipped_segments.is_none());
        let text = m.render();
        assert!(
            text.contains(
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.00003\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("#EXT-X-PART:DURATION=0.33333,URI=\"part00000.0.mp4\",INDEPENDENT=YES\n"),
            "{text}"
        );
        assert_eq!(kit::playlist::parse_media(&text).unwrap(), m, "{text}");
    }

    #[test]
    fn the_window_slides_and_old_parts_leave_the_playlist() {
        let l = live();
        // Segment 40 complete and one part into 41: 30 s into pass 5.
        let t = l.segment_end(40) + PART;
        let m = l.playlist(t, epoch(), false);
        assert_eq!(m.media_sequence, 31);
        assert_eq!(m.segments.len(), 10);
        let with_parts: Vec<&str> =
            m.segments.iter().filter(|s| !s.parts.is_empty()).map(|s| s.uri.as_str()).collect();
        // Three target durations (6 s) back from the end of the last part.
        assert_eq!(with_parts, ["seg00038.mp4", "seg00039.mp4", "seg00040.mp4"]);
        let times = m.program_times();
        for w in times.windows(2) {
            assert_eq!(w[1].unwrap() - w[0].unwrap(), 2.0, "one segment apart");
        }
        assert!(l.retained(21, t) && !l.retained(20, t));
        assert_eq!(kit::playlist::parse_media(&m.render()).unwrap(), m);
    }

    #[test]
    fn a_delta_update_skips_the_segments_past_the_skip_boundary() {
        let l = live();
        let t = l.segment_end(19);
        let full = l.playlist(t, epoch(), false);
        let delta = l.playlist(t, epoch(), true);
        assert_eq!(full.media_sequence, 10);
        // The last segment (19) ends at 40 s; 10..=13 end 12 s or more before that.
        assert_eq!((delta.media_sequence, delta.skipped_segments, delta.version), (10, Some(4), Some(9)));
        assert_eq!(delta.segments.len(), 6);
        assert_eq!(delta.segments[0].uri, "seg00014.mp4");
        assert_eq!(delta.segments[..], full.segments[4..]);
        let text = delta.render();
        assert!(text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n"), "{text}");
        assert_eq!(kit::playlist::parse_media(&text).unwrap(), delta);
        // Too short a playlist to skip anything: a full one.
        let early = l.playlist(l.warm(3), epoch(), true);
        assert_eq!((early.skipped_segments, early.version), (None, Some(6)));
    }

    #[test]
    fn a_playlist_from_an_earlier_segment_lists_older_segments_and_ends_as_usual() {
        let l = live();
        let t = l.segment_end(40) + PART;
        let usual = l.playlist(t, epoch(), false);
        assert_eq!((usual.media_sequence, l.oldest_retained(t)), (31, 21));
        let m = l.playlist_from(t, epoch(), 28);
        assert_eq!((m.media_sequence, m.segments.len()), (28, 13));
        assert_eq!(m.segments[3..], usual.segments[..]);
        assert!(m.segments[..3].iter().all(|s| s.parts.is_empty()), "old segments, without parts");
        assert_eq!(
            (&m.parts_in_progress, &m.preload_hints),
            (&usual.parts_in_progress, &usual.preload_hints)
        );
        assert_eq!(kit::playlist::parse_media(&m.render()).unwrap(), m);
        // Kept between the oldest segment retained and the usual first.
        assert_eq!(l.playlist_from(t, epoch(), 3).media_sequence, 21);
        assert_eq!(l.playlist_from(t, epoch(), 35), usual);
    }

    #[test]
    fn blocking_reloads_wait_for_the_part_and_refuse_what_is_too_far() {
        let l = live();
        let t = l.warm(3) + 2 * PART; // next part: 3.2
        assert_eq!(l.reload(t, 3, Some(1)), Reload::Now);
        assert_eq!(l.reload(t, 2, None), Reload::Now);
        assert_eq!(l.reload(t, 3, Some(2)), Reload::At(t + PART));
        assert_eq!(l.reload(t, 3, None), Reload::At(l.segment_end(3)));
        assert_eq!(l.reload(t, 4, None), Reload::At(l.segment_end(4)));
        assert_eq!(l.reload(t, 5, None), Reload::TooFar, "more than last segment (2) + 2");
        // Part index past the segment's last: part 0 of the next.
        assert_eq!(l.reload(t, 3, Some(6)), Reload::At(l.part_end(id(4, 0)).unwrap()));
        // The last part that exists is 3.1; 9 parts ahead of it is past the limit (8.9998).
        assert_eq!(l.reload(t, 4, Some(3)), Reload::At(l.part_end(id(4, 3)).unwrap()), "8 ahead");
        assert_eq!(l.reload(t, 4, Some(4)), Reload::TooFar, "9 ahead");
    }

    #[test]
    fn uris_name_parts_and_segments() {
        let l = live();
        assert_eq!(Live::part_uri(id(12, 3)), "part00012.3.mp4");
        assert_eq!(l.parse_part_uri("part00012.3.mp4"), Some(id(12, 3)));
        assert_eq!(l.parse_part_uri("part123456.0.mp4"), Some(id(123_456, 0)));
        assert_eq!(l.parse_part_uri("part00012.6.mp4"), None, "a segment has 6 parts");
        assert_eq!(l.parse_part_uri("part00012.mp4"), None);
        assert_eq!(Live::parse_segment_uri("seg00012.mp4"), Some(12));
        assert_eq!(Live::parse_segment_uri("seg00012.ts"), None);
    }

    #[test]
    fn a_segment_is_its_parts_and_parts_carry_their_position() {
        let Some(data) = encoded() else { return };
        let lp = Loop::from_mp4(data, Duration::from_secs(2)).unwrap();
        let l = Live::new(Arc::new(lp), 10);
        let seg = l.segment_bytes(9);
        let parts: Vec<u8> = (0..6).flat_map(|p| l.part_bytes(id(9, p)).unwrap()).collect();
        assert_eq!(seg, parts);
        let mut file = l.source().init.clone();
        file.extend(&seg);
        let m = super::super::mp4::split(&file).unwrap();
        let video = m.init.video().unwrap();
        for (p, f) in m.fragments.iter().enumerate() {
            let i = l.index(id(9, p as u32));
            assert_eq!(u64::from(f.sequence), i + 1);
            assert_eq!(f.run(video.id).unwrap().decode_time, l.part_end(id(9, p as u32)).unwrap() - 5120);
        }
    }
}
