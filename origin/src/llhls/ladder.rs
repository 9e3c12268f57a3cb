//! An LL-HLS ABR ladder: several renditions of one picture on one clock, a master playlist
//! over them, and rendition reports in every media playlist.
//!
//! Each rendition is its own loop (encoded once at its own size and bitrate) with the same
//! timing as the others: same frame rate, GOP, part length and loop length, so a part
//! `M.N` covers the same media time in every rendition and appears at the same instant (the
//! streams share one epoch, [`Stream::sharing_clock`]). [`Ladder::new`] checks that the
//! loops do line up.
//!
//! A single-rendition ladder is served at the root (`/stream.m3u8`, `/init.mp4`, ...) with no
//! master and no reports, as the `ll-hls` profile always was. A ladder of several is served
//! under one directory per rendition (`/<name>/stream.m3u8`, `/<name>/partM.N.mp4`, ...)
//! beside `/master.m3u8`; each media playlist carries an `EXT-X-RENDITION-REPORT` for every
//! other rendition (RFC 8216bis §4.4.5.4) with the last segment and part that rendition has
//! at the same instant, which a player uses to switch renditions without a second reload.

use std::sync::Arc;

use kit::playlist::{Master, Media, Variant};

use super::stream::{Faults, Stream};
use super::timeline::PartId;
use crate::error::Error;

/// One rendition of a ladder.
#[derive(Debug)]
pub struct Rendition {
    /// Its directory, e.g. `720p` (empty for a single rendition served at the root).
    pub name: String,
    /// Its stream (timeline, clock, fault switches).
    pub stream: Arc<Stream>,
    /// `BANDWIDTH` in the master playlist: peak bit/s.
    pub bandwidth: u64,
    /// `RESOLUTION`.
    pub resolution: (u32, u32),
}

/// The renditions served by one LL-HLS server.
#[derive(Debug)]
pub struct Ladder {
    renditions: Vec<Rendition>,
}

/// The master playlist's path.
pub const MASTER: &str = "/master.m3u8";

/// The media playlist's name (at the root, or in a rendition's directory).
pub const MEDIA: &str = "stream.m3u8";

impl Ladder {
    /// One stream served at the root, with no master playlist.
    #[must_use]
    pub fn single(stream: Arc<Stream>) -> Ladder {
        let resolution = (0, 0);
        Ladder { renditions: vec![Rendition { name: String::new(), stream, bandwidth: 0, resolution }] }
    }

    /// A ladder over `renditions`, highest first.
    ///
    /// # Errors
    /// [`Error::InvalidOverride`] if there is no rendition, a name is not a plain directory
    /// name or is used twice, or a rendition's parts do not line up with the first one's.
    pub fn new(renditions: Vec<Rendition>) -> Result<Ladder, Error> {
        let bad =
            |value: String, expected: String| Error::InvalidOverride { what: "rendition", value, expected };
        let first = renditions.first().ok_or_else(|| bad("none".into(), "at least one rendition".into()))?;
        let reference = first.stream.live().source();
        for (i, r) in renditions.iter().enumerate() {
            let plain = !r.name.is_empty()
                && r.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !plain {
                return Err(bad(format!("{:?}", r.name), "letters, digits, '-' and '_'".into()));
            }
            if renditions[..i].iter().any(|o| o.name == r.name) {
                return Err(bad(format!("{:?}", r.name), "a name used once".into()));
            }
            let lp = r.stream.live().source();
            let same = lp.timescale == reference.timescale
                && lp.duration == reference.duration
                && lp.segments.len() == reference.segments.len()
                && lp.segments.iter().zip(&reference.segments).all(|(a, b)| {
                    a.parts.len() == b.parts.len()
                        && a.parts
                            .iter()
                            .zip(&b.parts)
                            .all(|(p, q)| (p.start, p.duration) == (q.start, q.duration))
                });
            if !same {
                let parts = |l: &super::source::Loop| l.segments.iter().map(|s| s.parts.len()).sum::<usize>();
                return Err(bad(
                    format!("{} ({} segments, {} parts)", r.name, lp.segments.len(), parts(lp)),
                    format!(
                        "the parts of {} ({} segments, {} parts, same times)",
                        first.name,
                        reference.segments.len(),
                        parts(reference)
                    ),
                ));
            }
        }
        Ok(Ladder { renditions })
    }

    /// The renditions, highest first.
    #[must_use]
    pub fn renditions(&self) -> &[Rendition] {
        &self.renditions
    }

    /// Several renditions, served under their directories beside a master playlist.
    #[must_use]
    pub fn is_abr(&self) -> bool {
        self.renditions.len() > 1 || self.renditions.iter().any(|r| !r.name.is_empty())
    }

    /// The first (highest) rendition's stream.
    #[must_use]
    pub fn first(&self) -> &Arc<Stream> {
        &self.renditions[0].stream
    }

    /// The rendition `path` is under and the rest of the path (`stream.m3u8`,
    /// `partM.N.mp4`, ...).
    #[must_use]
    pub fn route<'a>(&self, path: &'a str) -> Option<(usize, &'a str)> {
        let path = path.strip_prefix('/')?;
        if !self.is_abr() {
            return Some((0, path));
        }
        let (dir, rest) = path.split_once('/')?;
        self.renditions.iter().position(|r| r.name == dir).map(|i| (i, rest))
    }

    /// The master playlist: one entry per rendition, with its peak bandwidth, picture size
    /// and, where the init section states them, its codecs.
    #[must_use]
    pub fn master(&self) -> Master {
        let variants = self
            .renditions
            .iter()
            .map(|r| Variant {
                bandwidth: r.bandwidth,
                resolution: Some(r.resolution),
                codecs: codecs(&r.stream.live().source().init),
                uri: format!("{}/{MEDIA}", r.name),
                ..Variant::default()
            })
            .collect();
        Master { version: Some(6), independent_segments: true, variants, ..Master::default() }
    }

    /// Rendition `i`'s media playlist at `elapsed` ticks after the shared epoch (a delta
    /// update with `skip`) as served ([`Stream::media`]: with its fault switches), reporting
    /// every other rendition as it is at that instant.
    pub fn media(&self, i: usize, elapsed: u64, skip: bool) -> Media {
        let mut m = self.renditions[i].stream.media(elapsed, skip);
        m.rendition_reports = self
            .renditions
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, r)| r.stream.live().report(format!("../{}/{MEDIA}", r.name), elapsed))
            .collect();
        m
    }

    /// Rendition `i`'s media playlist now, as text.
    #[must_use]
    pub fn playlist(&self, i: usize, skip: bool) -> String {
        self.media(i, self.renditions[i].stream.elapsed(), skip).render()
    }

    /// Fault: the next `count` parts of the first rendition, and the same parts of every
    /// other, are advertised and then answered 404 (and their segments). Returns them.
    pub fn drop_next_parts(&self, count: u32) -> Vec<PartId> {
        let parts = self.first().drop_next_parts(count);
        for r in &self.renditions[1..] {
            r.stream.drop_parts(&parts);
        }
        parts
    }

    /// Sets a fault switch on every rendition: `switch` is called with each one's
    /// [`Faults`], e.g. `ladder.each_rendition(|f| f.answer_reloads_early(true))`.
    pub fn each_rendition(&self, switch: impl Fn(&Faults)) {
        for r in &self.renditions {
            switch(&r.stream.faults);
        }
    }
}

/// `CODECS` for an init section, as RFC 6381 writes them: `avc1.PPCCLL` from the `avcC`
/// box (profile, constraints, level) and `mp4a.40.N` from the `esds` box's audio object
/// type. `None` unless the video's is found: no guessed value is ever announced.
#[must_use]
pub fn codecs(init: &[u8]) -> Option<String> {
    let find = |kind: &[u8; 4]| init.windows(4).position(|w| w == kind).map(|i| i + 4);
    let avcc = find(b"avcC")?;
    let c = init.get(avcc..avcc + 4)?;
    if c[0] != 1 {
        return None;
    }
    let mut out = format!("avc1.{:02x}{:02x}{:02x}", c[1], c[2], c[3]);
    if let Some(aot) = find(b"esds").and_then(|at| audio_object_type(init.get(at..)?)) {
        out.push_str(&format!(",mp4a.40.{aot}"));
    }
    Some(out)
}

/// The audio object type in an `esds` box's payload (after its type): the
/// DecoderConfigDescriptor (tag 4) for MPEG-4 audio (0x40), then its DecoderSpecificInfo
/// (tag 5), whose first five bits are the type.
fn audio_object_type(esds: &[u8]) -> Option<u8> {
    // version + flags, then ES_Descriptor (tag 3): length, ES_ID (2), flags (1).
    let mut at = 4;
    let descriptor = |at: &mut usize, tag: u8| -> Option<()> {
        if *esds.get(*at)? != tag {
            return None;
        }
        *at += 1;
        // Length: up to four bytes, seven bits each, high bit set on all but the last.
        for _ in 0..4 {
            let b = *esds.get(*at)?;
            *at += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        Some(())
    };
    descriptor(&mut at, 3)?;
    let flags = *esds.get(at + 2)?;
    at += 3;
    if flags & 0x80 != 0 {
        at += 2; // dependsOn_ES_ID
    }
    if flags & 0x40 != 0 {
        at += 1 + usize::from(*esds.get(at)?); // URL
    }
    if flags & 0x20 != 0 {
        at += 2; // OCR_ES_ID
    }
    descriptor(&mut at, 4)?;
    if *esds.get(at)? != 0x40 {
        return None;
    }
    // objectTypeIndication, streamType etc. (1), bufferSizeDB (3), max and avg bitrate (8).
    at += 13;
    descriptor(&mut at, 5)?;
    let aot = esds.get(at)? >> 3;
    (aot != 0 && aot != 31).then_some(aot)
}

#[cfg(test)]
mod tests {
    use super::super::source::testing::{encoded, synthetic};
    use super::super::source::Loop;
    use super::super::timeline::Live;
    use super::*;

    const TS: u32 = 15360;
    const PART: u64 = 5120;

    fn stream(shape: &[u32], on: Option<&Stream>) -> Stream {
        let live = Live::new(Arc::new(synthetic(shape, PART, TS)), 10);
        match on {
            Some(other) => Stream::sharing_clock(live, other),
            None => Stream::new(live, 3),
        }
    }

    fn rendition(name: &str, stream: Stream, height: u32) -> Rendition {
        Rendition {
            name: name.into(),
            stream: Arc::new(stream),
            bandwidth: u64::from(height) * 3000,
            resolution: (height * 16 / 9, height),
        }
    }

    fn ladder() -> Ladder {
        let top = stream(&[6, 6, 6, 6], None);
        let mid = stream(&[6, 6, 6, 6], Some(&top));
        let low = stream(&[6, 6, 6, 6], Some(&top));
        Ladder::new(vec![
            rendition("720p", top, 720),
            rendition("480p", mid, 480),
            rendition("360p", low, 360),
        ])
        .unwrap()
    }

    /// The last part a playlist lists (the last of the parts in progress, else of the last
    /// segment).
    fn last_listed(m: &Media) -> (u64, u64) {
        let uri = match m.parts_in_progress.last() {
            Some(p) => &p.uri,
            None => &m.segments.last().unwrap().parts.last().unwrap().uri,
        };
        let (msn, part) =
            uri.strip_prefix("part").unwrap().strip_suffix(".mp4").unwrap().split_once('.').unwrap();
        (msn.parse().unwrap(), part.parse().unwrap())
    }

    #[test]
    fn every_playlist_reports_every_other_rendition_as_it_is_at_the_same_instant() {
        let l = ladder();
        let live = l.first().live();
        // Mid-segment, at a segment boundary, and across the loop point, on a fake clock.
        for elapsed in [live.warm(3) + 2 * PART, live.segment_end(7), live.segment_end(40) + 5 * PART] {
            let names: Vec<&str> = l.renditions().iter().map(|r| r.name.as_str()).collect();
            for (i, me) in names.iter().enumerate() {
                let m = l.media(i, elapsed, false);
                let text = m.render();
                let parsed = kit::playlist::parse_media(&text).unwrap();
                assert_eq!(parsed, m, "{text}");
                let reported: Vec<&str> = parsed.rendition_reports.iter().map(|r| r.uri.as_str()).collect();
                let others: Vec<String> =
                    names.iter().filter(|n| *n != me).map(|n| format!("../{n}/stream.m3u8")).collect();
                assert_eq!(reported, others, "{me}: one report per other rendition, in ladder order");
                for r in &parsed.rendition_reports {
                    let other = names.iter().position(|n| r.uri == format!("../{n}/stream.m3u8")).unwrap();
                    let theirs = l.media(other, elapsed, false);
                    let (msn, part) = last_listed(&theirs);
                    assert_eq!((r.last_msn, r.last_part), (Some(msn), Some(part)), "{me} reports {}", r.uri);
                }
            }
        }
        // At a segment boundary the last part is the completed segment's last.
        let at_boundary = l.media(0, live.segment_end(7), false);
        assert_eq!(
            (at_boundary.rendition_reports[0].last_msn, at_boundary.rendition_reports[0].last_part),
            (Some(7), Some(5))
        );
        // A delta update reports the others too.
        let delta = l.media(1, live.segment_end(19), true);
        assert!(delta.skipped_segments.is_some());
        assert_eq!(delta.rendition_reports.len(), 2);
    }

    #[test]
    fn a_single_stream_is_served_at_the_root_without_reports() {
        let l = Ladder::single(Arc::new(stream(&[6, 6, 6, 6], None)));
        assert!(!l.is_abr());
        assert_eq!(l.route("/stream.m3u8"), Some((0, "stream.m3u8")));
        assert_eq!(l.route("/part00001.2.mp4"), Some((0, "part00001.2.mp4")));
        let live = l.first().live();
        assert!(l.media(0, live.warm(3), false).rendition_reports.is_empty());
    }

    #[test]
    fn paths_route_to_their_rendition_and_the_master_lists_every_one() {
        let l = ladder();
        assert!(l.is_abr());
        assert_eq!(l.route("/480p/stream.m3u8"), Some((1, "stream.m3u8")));
        assert_eq!(l.route("/360p/seg00004.mp4"), Some((2, "seg00004.mp4")));
        assert_eq!(l.route("/stream.m3u8"), None);
        assert_eq!(l.route("/1080p/stream.m3u8"), None);
        let m = l.master();
        let text = m.render();
        let parsed = kit::playlist::parse_master(&text).unwrap();
        let uris: Vec<&str> = parsed.variants.iter().map(|v| v.uri.as_str()).collect();
        assert_eq!(uris, ["720p/stream.m3u8", "480p/stream.m3u8", "360p/stream.m3u8"]);
        assert_eq!(parsed.variants[1].resolution, Some((853, 480)));
        assert_eq!(parsed.variants[1].bandwidth, 480 * 3000);
        assert!(parsed.variants.iter().all(|v| v.codecs.is_none()), "no init section, no codecs: {text}");
    }

    #[test]
    fn renditions_whose_parts_do_not_line_up_are_refused() {
        let top = stream(&[6, 6, 6, 6], None);
        let odd = stream(&[6, 6, 6, 5], Some(&top));
        let e = Ladder::new(vec![rendition("720p", top, 720), rendition("480p", odd, 480)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid rendition 480p (4 segments, 23 parts): expected the parts of 720p (4 segments, \
             24 parts, same times)"
        );
        let a = stream(&[6, 6], None);
        let b = stream(&[6, 6], Some(&a));
        let e = Ladder::new(vec![rendition("x", a, 720), rendition("x", b, 480)]).unwrap_err();
        assert_eq!(e.to_string(), "invalid rendition \"x\": expected a name used once");
        let e = Ladder::new(vec![rendition("../x", stream(&[6, 6], None), 720)]).unwrap_err();
        assert!(e.to_string().contains("letters, digits"), "{e}");
    }

    #[test]
    fn codecs_are_read_from_the_init_section() {
        let Some(data) = encoded() else { return };
        let lp = Loop::from_mp4(data, std::time::Duration::from_secs(2)).unwrap();
        // What x264 wrote, whatever was asked (ultrafast turns `-profile:v high` into
        // constrained baseline): a profile byte of baseline, main or high, and AAC-LC.
        let c = codecs(&lp.init).unwrap();
        let (video, audio) = c.split_once(',').unwrap();
        let hex = video.strip_prefix("avc1.").unwrap();
        assert!(hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()), "{c}");
        assert!(["42", "4d", "64"].contains(&&hex[..2]), "{c}");
        assert_eq!(audio, "mp4a.40.2");
        assert_eq!(codecs(b"not an init section"), None);
    }
}
