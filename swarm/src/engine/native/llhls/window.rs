//! The pure side of an LL-HLS viewer: a media playlist merged with the one before it (delta
//! updates), where to join, what to download next, which part a blocking reload asks for,
//! and the conformance rules that compare a playlist with its predecessor.

use kit::playlist::{self, ByteRange, Media};
use url::Url;

/// Where a part is: its segment's media sequence number and its index in that segment.
/// Ordered as the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartId {
    /// Media sequence number of its (parent) segment.
    pub msn: u64,
    /// Index in the segment, from 0.
    pub part: u32,
}

impl PartId {
    /// The part at `msn`, `part`.
    #[must_use]
    pub fn new(msn: u64, part: u32) -> PartId {
        PartId { msn, part }
    }

    /// The next index in the same segment (a server reads an index past the segment's last
    /// part as the first part of the next segment, RFC 8216bis §6.2.5.2).
    #[must_use]
    pub fn after(self) -> PartId {
        PartId { msn: self.msn, part: self.part.saturating_add(1) }
    }
}

/// One part as a playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// Where it is.
    pub id: PartId,
    /// `URI`, as written.
    pub uri: String,
    /// `DURATION`, seconds.
    pub duration: f64,
    /// `INDEPENDENT=YES`.
    pub independent: bool,
    /// `GAP=YES`.
    pub gap: bool,
    /// `BYTERANGE`.
    pub byte_range: Option<ByteRange>,
    /// Its start on the program clock (Unix seconds), from the segment's
    /// `EXT-X-PROGRAM-DATE-TIME` plus the parts before it.
    pub program_time: Option<f64>,
}

/// One complete segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Seg {
    /// Its media sequence number.
    pub msn: u64,
    /// `URI`, as written.
    pub uri: String,
    /// `EXTINF` duration, seconds.
    pub duration: f64,
    /// `BYTERANGE`.
    pub byte_range: Option<ByteRange>,
    /// `EXT-X-GAP`.
    pub gap: bool,
    /// Its start on the program clock (Unix seconds).
    pub program_time: Option<f64>,
    /// Its init section (`EXT-X-MAP`): URI and range.
    pub map: Option<(String, Option<ByteRange>)>,
    /// Its parts, when the playlist still lists them.
    pub parts: Vec<Listed>,
}

/// An LL-HLS media playlist, merged with the previous one when it was a delta update.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Media sequence number of the first segment.
    pub first: u64,
    /// The complete segments, the first at `first`.
    pub segments: Vec<Seg>,
    /// The parts of the segment in progress (at `first + segments.len()`).
    pub pending: Vec<Listed>,
    /// Its init section, for a part of the segment in progress.
    pub pending_map: Option<(String, Option<ByteRange>)>,
    /// The `EXT-X-PRELOAD-HINT` of `TYPE=PART` without a byte range (`BYTERANGE-START`):
    /// the URI of the next part, asked for before it exists.
    pub hint: Option<String>,
    /// `EXT-X-TARGETDURATION`, seconds.
    pub target: f64,
    /// `EXT-X-PART-INF` `PART-TARGET`, seconds.
    pub part_target: Option<f64>,
    /// `EXT-X-SERVER-CONTROL`.
    pub control: playlist::ServerControl,
    /// `EXT-X-ENDLIST`.
    pub ended: bool,
    /// `EXT-X-RENDITION-REPORT`s: where the other renditions were when this one was made.
    pub reports: Vec<playlist::RenditionReport>,
}

/// Why a delta update could not be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// The delta skips segments the previous playlist did not have.
    #[error("the delta update skips segments {from}..{to} that the previous playlist did not list")]
    Missing {
        /// First skipped segment not known.
        from: u64,
        /// End of the skipped range.
        to: u64,
    },
}

/// True if `media` is LL-HLS as a viewer plays it: blocking reloads and parts.
#[must_use]
pub fn is_low_latency(media: &Media) -> bool {
    let blocking = media.server_control.is_some_and(|c| c.can_block_reload);
    let parts = media.part_target.is_some()
        || !media.parts_in_progress.is_empty()
        || media.segments.iter().any(|s| !s.parts.is_empty());
    blocking && parts && !media.ended
}

fn listed(msn: u64, parts: &[playlist::Part], start: Option<f64>) -> Vec<Listed> {
    let mut clock = start;
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let at = clock;
            clock = clock.map(|t| t + p.duration);
            Listed {
                id: PartId::new(msn, u32::try_from(i).unwrap_or(u32::MAX)),
                uri: p.uri.clone(),
                duration: p.duration,
                independent: p.independent,
                gap: p.gap,
                byte_range: p.byte_range,
                program_time: at,
            }
        })
        .collect()
}

impl Window {
    /// `media` as a window; a delta update (`EXT-X-SKIP`) takes the skipped segments from
    /// `previous`.
    ///
    /// # Errors
    /// [`MergeError::Missing`] when a delta skips segments `previous` does not have.
    pub fn merge(previous: Option<&Window>, media: &Media) -> Result<Window, MergeError> {
        let first = media.media_sequence;
        let skipped = media.skipped_segments.unwrap_or(0);
        let mut segments: Vec<Seg> = Vec::with_capacity(media.segments.len() + skipped as usize);
        for msn in first..first + skipped {
            let known = previous.and_then(|p| p.segment(msn));
            let Some(seg) = known else { return Err(MergeError::Missing { from: msn, to: first + skipped }) };
            segments.push(seg.clone());
        }
        let mut clock = segments.last().and_then(|s| s.program_time.map(|t| t + s.duration));
        for (i, s) in media.segments.iter().enumerate() {
            let msn = first + skipped + i as u64;
            if s.discontinuity {
                clock = None;
            }
            if let Some(t) = s.program_date_time.as_deref().and_then(playlist::date_time) {
                clock = Some(t);
            }
            let start = clock;
            clock = clock.map(|t| t + s.duration);
            segments.push(Seg {
                msn,
                uri: s.uri.clone(),
                duration: s.duration,
                byte_range: s.byte_range,
                gap: s.gap,
                program_time: start,
                map: s.map.as_ref().map(|m| (m.uri.clone(), m.byte_range)),
                parts: listed(msn, &s.parts, start),
            });
        }
        let pending_msn = first + segments.len() as u64;
        let pending_map = media
            .segments
            .last()
            .and_then(|s| s.map.as_ref())
            .map(|m| (m.uri.clone(), m.byte_range))
            .or_else(|| segments.last().and_then(|s| s.map.clone()));
        // A byte-range hint (part of a resource, from a byte on) is not asked for: the part
        // comes with the blocking reload that lists it, with its BYTERANGE.
        let hint = media
            .preload_hints
            .iter()
            .find(|h| h.kind.eq_ignore_ascii_case("PART") && h.byterange_start.is_none())
            .map(|h| h.uri.clone());
        Ok(Window {
            first,
            pending: listed(pending_msn, &media.parts_in_progress, clock),
            pending_map,
            segments,
            hint,
            target: media.target_duration.unwrap_or(2.0),
            part_target: media.part_target,
            control: media.server_control.unwrap_or_default(),
            ended: media.ended,
            reports: media.rendition_reports.clone(),
        })
    }

    /// The complete segment `msn`, if listed.
    #[must_use]
    pub fn segment(&self, msn: u64) -> Option<&Seg> {
        let i = usize::try_from(msn.checked_sub(self.first)?).ok()?;
        self.segments.get(i)
    }

    /// Media sequence number of the segment in progress (one past the last complete one).
    #[must_use]
    pub fn pending_msn(&self) -> u64 {
        self.first + self.segments.len() as u64
    }

    /// Every part listed, in order.
    pub fn parts(&self) -> impl Iterator<Item = &Listed> {
        self.segments.iter().flat_map(|s| s.parts.iter()).chain(self.pending.iter())
    }

    /// The last part listed.
    #[must_use]
    pub fn last_part(&self) -> Option<PartId> {
        self.pending.last().or_else(|| self.segments.last().and_then(|s| s.parts.last())).map(|p| p.id)
    }

    /// The part after the last one listed: the one the preload hint names, and the one a
    /// blocking reload asks for when the hint was not taken.
    #[must_use]
    pub fn next_part(&self) -> PartId {
        PartId::new(self.pending_msn(), u32::try_from(self.pending.len()).unwrap_or(u32::MAX))
    }

    /// True if the playlist holds part `want` (or, `part` `None`, the whole segment): what a
    /// blocking reload for it must return. An index past a complete segment's last part is
    /// the next segment's first part, as the server reads it.
    #[must_use]
    pub fn contains(&self, msn: u64, part: Option<u32>) -> bool {
        if msn < self.first {
            return true;
        }
        let Some(part) = part else { return msn < self.pending_msn() };
        match self.segment(msn) {
            Some(s) if s.parts.is_empty() || (part as usize) < s.parts.len() => true,
            Some(_) => self.contains(msn + 1, Some(0)),
            None => msn == self.pending_msn() && (part as usize) < self.pending.len(),
        }
    }

    /// Where a viewer joins: the latest independent part that starts at least
    /// `PART-HOLD-BACK` (else three part targets) before the end of the playlist, or the
    /// first part listed if none does.
    #[must_use]
    pub fn join(&self) -> PartId {
        self.back_from_edge(true)
    }

    /// Where playback begins: the latest part that starts at least `PART-HOLD-BACK` before
    /// the end. A player downloads from [`Window::join`] (it needs the independent part to
    /// decode) and seeks forward to here, as hls.js does; the parts in between are fetched
    /// but not played.
    #[must_use]
    pub fn live_point(&self) -> PartId {
        self.back_from_edge(false)
    }

    fn back_from_edge(&self, independent: bool) -> PartId {
        let hold =
            self.control.part_hold_back.or(self.part_target.map(|t| 3.0 * t)).unwrap_or(3.0 * self.target);
        let parts: Vec<&Listed> = self.parts().collect();
        let mut back = 0.0;
        for p in parts.iter().rev() {
            back += p.duration;
            if back + 1e-9 >= hold && (p.independent || !independent) {
                return p.id;
            }
        }
        parts.first().map_or_else(|| PartId::new(self.first, 0), |p| p.id)
    }

    /// `PART-HOLD-BACK` is missing or under three part targets (RFC 8216bis §4.4.3.8).
    #[must_use]
    pub fn hold_back_short(&self) -> bool {
        match (self.control.part_hold_back, self.part_target) {
            (Some(hold), Some(target)) => hold + 1e-9 < 3.0 * target,
            (None, Some(_)) => true,
            (_, None) => false,
        }
    }

    /// The media sequence or the part numbering went backwards from `before` to this.
    #[must_use]
    pub fn went_backwards(&self, before: &Window) -> bool {
        self.first < before.first
            || self.pending_msn() < before.pending_msn()
            || matches!((self.last_part(), before.last_part()), (Some(a), Some(b)) if a < b)
    }

    /// True if a delta update may be asked for now: the server offers them and this
    /// playlist was loaded `age` seconds ago, less than half the skip boundary (RFC 8216bis
    /// §6.3.7).
    #[must_use]
    pub fn may_skip(&self, age: f64) -> bool {
        self.control.can_skip_until.is_some_and(|until| age < until / 2.0)
    }

    /// The downloads that take a viewer whose next part is `cursor` to the end of this
    /// playlist, and where its cursor is after them.
    #[must_use]
    pub fn plan(&self, cursor: PartId) -> (Vec<Fetch<'_>>, PartId) {
        let mut cursor = cursor;
        if cursor.msn < self.first {
            // Fell out of the window: join again.
            cursor = self.join();
        }
        let mut out = Vec::new();
        let from = cursor.msn;
        for s in self.segments.iter().filter(|s| s.msn >= from) {
            if s.msn == cursor.msn && cursor.part > 0 {
                // Some of it is here already: the rest as parts, or nothing.
                let rest: Vec<&Listed> = s.parts.iter().skip(cursor.part as usize).collect();
                if rest.is_empty() && s.parts.is_empty() {
                    out.push(Fetch::Abandon(s.msn));
                }
                out.extend(rest.into_iter().map(Fetch::Part));
            } else if s.parts.is_empty() {
                out.push(Fetch::Segment(s));
            } else {
                out.extend(s.parts.iter().map(Fetch::Part));
            }
            cursor = PartId::new(s.msn + 1, 0);
        }
        if cursor.msn == self.pending_msn() {
            for p in self.pending.iter().skip(cursor.part as usize) {
                out.push(Fetch::Part(p));
                cursor = p.id.after();
            }
        }
        (out, cursor)
    }

    /// The blocking reload that joins the rendition at `url` where its rendition report says
    /// it is: its last segment and part (`None` for the part when the report gives none).
    /// `base` is this playlist's URL; the report is the one whose URI resolves to `url`'s
    /// path (query strings aside, as players match them). `None` without such a report.
    #[must_use]
    pub fn reported(&self, base: &Url, url: &Url) -> Option<(u64, Option<u64>)> {
        let same = |u: &Url| u.origin() == url.origin() && u.path() == url.path();
        self.reports
            .iter()
            .find(|r| playlist::resolve(base, &r.uri).is_ok_and(|u| same(&u)))
            .and_then(|r| r.last_msn.map(|m| (m, r.last_part)))
    }

    /// The init section of the segment `msn`.
    #[must_use]
    pub fn map_of(&self, msn: u64) -> Option<&(String, Option<ByteRange>)> {
        self.segment(msn).and_then(|s| s.map.as_ref()).or(self.pending_map.as_ref())
    }
}

/// One download a plan asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetch<'a> {
    /// A part.
    Part(&'a Listed),
    /// A whole segment (its parts are no longer listed, and none of it was fetched).
    Segment(&'a Seg),
    /// The rest of segment `msn` cannot be had: its parts are no longer listed and some were
    /// fetched, so the whole segment is not (that would download them twice).
    Abandon(u64),
}

/// Preload hints waiting to show up in a playlist.
#[derive(Debug, Default, Clone)]
pub struct Hints {
    waiting: Vec<(String, PartId)>,
}

impl Hints {
    /// The part at `id` was hinted as `uri`.
    pub fn expect(&mut self, uri: &str, id: PartId) {
        if !self.waiting.iter().any(|(u, _)| u == uri) {
            self.waiting.push((uri.to_owned(), id));
        }
    }

    /// Checks the hints against a new playlist: returns how many never materialised (the
    /// playlist lists parts past them, but not them). A hint whose segment no longer has its
    /// parts listed (a viewer that fell behind reloads after the origin dropped them) cannot
    /// be judged, and is forgotten.
    pub fn check(&mut self, w: &Window) -> u64 {
        let last = w.last_part();
        let before = self.waiting.len();
        let mut missing = 0;
        self.waiting.retain(|(uri, id)| {
            if w.parts().any(|p| p.uri == *uri) {
                return false;
            }
            if id.msn < w.first || w.segment(id.msn).is_some_and(|s| s.parts.is_empty()) {
                return false;
            }
            let past = last.is_some_and(|l| l > *id) || w.pending_msn() > id.msn + 1;
            missing += u64::from(past);
            !past
        });
        debug_assert!(before >= self.waiting.len());
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A playlist as the LL-HLS origin writes them: 4 parts of 0.5 s per 2 s segment.
    fn live(first: u64, complete: u64, pending: u32, parts_from: u64) -> String {
        let mut t = String::from(
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=1.5\n\
             #EXT-X-PART-INF:PART-TARGET=0.5\n",
        );
        t.push_str(&format!("#EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-MAP:URI=\"init.mp4\"\n"));
        for msn in first..first + complete {
            t.push_str(&format!("#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:{:02}.000Z\n", msn * 2));
            if msn >= parts_from {
                for p in 0..4 {
                    let ind = if p == 0 { ",INDEPENDENT=YES" } else { "" };
                    t.push_str(&format!("#EXT-X-PART:DURATION=0.5,URI=\"part{msn}.{p}.mp4\"{ind}\n"));
                }
            }
            t.push_str(&format!("#EXTINF:2.0,\nseg{msn}.mp4\n"));
        }
        let next = first + complete;
        for p in 0..pending {
            let ind = if p == 0 { ",INDEPENDENT=YES" } else { "" };
            t.push_str(&format!("#EXT-X-PART:DURATION=0.5,URI=\"part{next}.{p}.mp4\"{ind}\n"));
        }
        t.push_str(&format!("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part{next}.{pending}.mp4\"\n"));
        t
    }

    fn window(text: &str, previous: Option<&Window>) -> Result<Window, MergeError> {
        Window::merge(previous, &playlist::parse_media(text).unwrap())
    }

    #[test]
    fn an_ll_hls_playlist_is_recognised() {
        assert!(is_low_latency(&playlist::parse_media(&live(0, 3, 1, 0)).unwrap()));
        let plain = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n";
        assert!(!is_low_latency(&playlist::parse_media(plain).unwrap()));
        let no_blocking = live(0, 3, 1, 0).replace("CAN-BLOCK-RELOAD=YES,", "");
        assert!(!is_low_latency(&playlist::parse_media(&no_blocking).unwrap()));
    }

    #[test]
    fn a_byte_range_hint_is_not_taken() {
        let ranged = live(10, 3, 2, 11).replace(
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part13.2.mp4\"",
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg13.mp4\",BYTERANGE-START=4096",
        );
        let m = playlist::parse_media(&ranged).unwrap();
        assert_eq!(m.preload_hints[0].byterange_start, Some(4096));
        assert_eq!(window(&ranged, None).unwrap().hint, None, "its part comes with the reload");
        assert_eq!(window(&live(10, 3, 2, 11), None).unwrap().hint.as_deref(), Some("part13.2.mp4"));
    }

    #[test]
    fn a_rendition_report_is_found_by_the_playlist_it_names() {
        let text = live(10, 3, 2, 11)
            + "#EXT-X-RENDITION-REPORT:URI=\"../480p/stream.m3u8\",LAST-MSN=13,LAST-PART=1\n\
               #EXT-X-RENDITION-REPORT:URI=\"../360p/stream.m3u8\",LAST-MSN=13\n";
        let w = window(&text, None).unwrap();
        let base = Url::parse("http://h/live/720p/stream.m3u8?token=t").unwrap();
        let at = |u: &str| w.reported(&base, &Url::parse(u).unwrap());
        assert_eq!(at("http://h/live/480p/stream.m3u8?token=t"), Some((13, Some(1))), "query aside");
        assert_eq!(at("http://h/live/360p/stream.m3u8"), Some((13, None)));
        assert_eq!(at("http://h/live/240p/stream.m3u8"), None, "no report for it");
        assert_eq!(at("http://other/live/480p/stream.m3u8"), None, "another host");
    }

    #[test]
    fn parts_are_numbered_and_dated() {
        let w = window(&live(10, 3, 2, 11), None).unwrap();
        assert_eq!(w.pending_msn(), 13);
        assert_eq!(w.last_part(), Some(PartId::new(13, 1)));
        assert_eq!(w.next_part(), PartId::new(13, 2));
        assert_eq!(w.hint.as_deref(), Some("part13.2.mp4"));
        let p = w.parts().find(|p| p.id == PartId::new(12, 3)).unwrap();
        assert_eq!(p.uri, "part12.3.mp4");
        let pdt = playlist::date_time("2026-01-01T00:00:24.000Z").unwrap();
        assert!((p.program_time.unwrap() - (pdt + 1.5)).abs() < 1e-6);
        // The pending parts carry on from the last segment's end.
        assert!((w.pending[1].program_time.unwrap() - (pdt + 2.5)).abs() < 1e-6);
        assert_eq!(w.segment(10).unwrap().parts.len(), 0, "parts only for recent segments");
    }

    #[test]
    fn a_viewer_joins_part_hold_back_from_the_edge_at_an_independent_part() {
        // 1.5 s back from the end of 13.0-13.1 (1.0 s of parts) reaches into 12.3; the
        // latest independent part at least that far back is 12.0.
        let w = window(&live(10, 3, 2, 11), None).unwrap();
        assert_eq!(w.join(), PartId::new(12, 0));
        assert_eq!(w.live_point(), PartId::new(12, 3), "playback begins 1.5 s from the end");
        // With 3 parts pending, 13.0 starts 1.5 s back: it is the join point.
        let w = window(&live(10, 3, 3, 11), None).unwrap();
        assert_eq!(w.join(), PartId::new(13, 0));
    }

    #[test]
    fn the_plan_downloads_parts_in_order_and_never_a_segment_it_has_parts_of() {
        let w = window(&live(10, 3, 2, 11), None).unwrap();
        let (plan, cursor) = w.plan(PartId::new(12, 2));
        let uris: Vec<String> = plan
            .iter()
            .map(|f| match f {
                Fetch::Part(p) => p.uri.clone(),
                Fetch::Segment(s) => s.uri.clone(),
                Fetch::Abandon(m) => format!("abandon {m}"),
            })
            .collect();
        assert_eq!(uris, ["part12.2.mp4", "part12.3.mp4", "part13.0.mp4", "part13.1.mp4"]);
        assert_eq!(cursor, PartId::new(13, 2));
        // Nothing new: nothing to do.
        assert_eq!(w.plan(cursor), (vec![], cursor));
        // A viewer behind the parts: whole segments first, then parts.
        let (plan, _) = w.plan(PartId::new(10, 0));
        assert!(matches!(plan[0], Fetch::Segment(s) if s.msn == 10));
        assert!(matches!(plan[1], Fetch::Part(p) if p.id == PartId::new(11, 0)));
        // Halfway through a segment whose parts are gone: abandoned, not downloaded whole.
        let (plan, cursor) = w.plan(PartId::new(10, 2));
        assert_eq!(plan[0], Fetch::Abandon(10));
        assert!(matches!(plan[1], Fetch::Part(p) if p.id == PartId::new(11, 0)));
        assert_eq!(cursor, PartId::new(13, 2));
        // A cursor past a complete segment's last part moves to the next segment.
        let (plan, _) = w.plan(PartId::new(12, 4));
        assert!(matches!(plan[0], Fetch::Part(p) if p.id == PartId::new(13, 0)));
        // Out of the window: joins again.
        let (plan, _) = w.plan(PartId::new(3, 0));
        assert!(matches!(plan[0], Fetch::Part(p) if p.id == w.join()));
    }

    #[test]
    fn a_blocking_reload_is_satisfied_by_the_part_or_what_follows_it() {
        let w = window(&live(10, 3, 2, 11), None).unwrap();
        assert!(w.contains(13, Some(1)));
        assert!(!w.contains(13, Some(2)), "the hinted part does not exist yet");
        assert!(w.contains(12, Some(3)));
        assert!(w.contains(12, Some(4)), "past the last part: the next segment's first, 13.0");
        assert!(w.contains(12, None) && !w.contains(13, None));
        assert!(w.contains(2, Some(0)), "long gone");
        let edge = window(&live(10, 3, 0, 11), None).unwrap();
        assert!(!edge.contains(12, Some(4)), "13.0 is not there yet");
    }

    #[test]
    fn a_delta_update_is_merged_into_the_previous_playlist() {
        let full = window(&live(10, 8, 1, 15), None).unwrap();
        // The delta skips 10..14 and lists 14.. itself.
        let mut delta = live(10, 8, 2, 15);
        let cut_from = delta.find("#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:20").unwrap();
        let cut_to = delta.find("#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:28").unwrap();
        delta.replace_range(cut_from..cut_to, "#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n");
        let merged = window(&delta, Some(&full)).unwrap();
        let whole = window(&live(10, 8, 2, 15), None).unwrap();
        assert_eq!(merged, whole, "the merge is the playlist the delta stands for");
        let err = window(&delta, None).unwrap_err();
        assert_eq!(err, MergeError::Missing { from: 10, to: 14 });
        assert!(full.may_skip(1.0) && !full.may_skip(6.0));
    }

    #[test]
    fn conformance_rules() {
        let w = window(&live(10, 3, 2, 11), None).unwrap();
        assert!(!w.hold_back_short(), "1.5 s = 3 × 0.5 s");
        let short = live(10, 3, 2, 11).replace("PART-HOLD-BACK=1.5", "PART-HOLD-BACK=1.0");
        assert!(window(&short, None).unwrap().hold_back_short());
        let missing = live(10, 3, 2, 11).replace(",PART-HOLD-BACK=1.5", "");
        assert!(window(&missing, None).unwrap().hold_back_short(), "required with parts");

        let later = window(&live(10, 3, 3, 11), None).unwrap();
        assert!(!later.went_backwards(&w) && !w.went_backwards(&w));
        assert!(w.went_backwards(&later), "part 13.2 then 13.1");
        let slid = window(&live(11, 3, 0, 11), None).unwrap();
        assert!(w.went_backwards(&slid), "media sequence 11 then 10");

        // A hint shows up as a part: fine. One passed over: never materialised.
        let mut hints = Hints::default();
        hints.expect("part13.2.mp4", PartId::new(13, 2));
        assert_eq!(hints.check(&w), 0, "not yet due");
        assert_eq!(hints.check(&later), 0, "listed");
        hints.expect("part13.3.mp4", PartId::new(13, 3));
        let renamed = live(10, 3, 3, 11).replace("part13.2.mp4", "other.mp4");
        assert_eq!(hints.check(&window(&renamed, None).unwrap()), 0, "13.3 not due yet");
        let past = live(10, 4, 1, 11).replace("part13.3.mp4", "p.mp4");
        assert_eq!(hints.check(&window(&past, None).unwrap()), 1, "14.0 listed, 13.3 never was");
        assert_eq!(hints.check(&window(&past, None).unwrap()), 0, "counted once");
        // A viewer that fell behind: 13's parts are no longer listed, so the hint cannot be
        // judged (the origin did nothing wrong), and neither can one before the window.
        hints.expect("part13.3.mp4", PartId::new(13, 3));
        hints.expect("part9.3.mp4", PartId::new(9, 3));
        let behind = live(10, 6, 1, 15);
        assert_eq!(hints.check(&window(&behind, None).unwrap()), 0, "parts of 13 no longer listed");
        assert_eq!(hints.check(&window(&live(10, 6, 2, 11), None).unwrap()), 0, "forgotten");
    }
}
