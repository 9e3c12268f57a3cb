//! What a playlist holds: the master's variants and renditions, the media playlist's segments
//! and playlist-wide tags.

use std::collections::HashSet;
use std::sync::Arc;

/// A parsed playlist.
#[derive(Debug, Clone, PartialEq)]
pub enum Playlist {
    /// Lists variants.
    Master(Master),
    /// Lists segments.
    Media(Media),
}

/// A master (multivariant) playlist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Master {
    /// `#EXT-X-VERSION`.
    pub version: Option<u32>,
    /// `#EXT-X-INDEPENDENT-SEGMENTS`.
    pub independent_segments: bool,
    /// Variants in playlist order (FFmpeg numbers its programs in this order).
    pub variants: Vec<Variant>,
    /// `#EXT-X-MEDIA` renditions in playlist order.
    pub renditions: Vec<Rendition>,
    /// `#EXT-X-START`: where players should start every media playlist.
    pub start: Option<StartPoint>,
}

/// `#EXT-X-START`: where a player should start playing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StartPoint {
    /// `TIME-OFFSET`, seconds: from the start of the playlist, or back from its end when
    /// negative.
    pub time_offset: f64,
    /// `PRECISE=YES`: start at the offset itself rather than at the start of its segment.
    pub precise: bool,
}

/// One `#EXT-X-STREAM-INF` entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Variant {
    /// `BANDWIDTH`: peak bits per second.
    pub bandwidth: u64,
    /// `AVERAGE-BANDWIDTH`.
    pub average_bandwidth: Option<u64>,
    /// `RESOLUTION` as (width, height).
    pub resolution: Option<(u32, u32)>,
    /// `CODECS`.
    pub codecs: Option<String>,
    /// `FRAME-RATE`.
    pub frame_rate: Option<f64>,
    /// `AUDIO` group id.
    pub audio: Option<String>,
    /// `SUBTITLES` group id.
    pub subtitles: Option<String>,
    /// The media playlist, as written (maybe relative).
    pub uri: String,
}

/// `TYPE` of an `#EXT-X-MEDIA` rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// `AUDIO`.
    Audio,
    /// `VIDEO`.
    Video,
    /// `SUBTITLES`.
    Subtitles,
    /// `CLOSED-CAPTIONS` (no URI: carried in the video).
    ClosedCaptions,
}

impl MediaType {
    pub(super) fn parse(s: &str) -> Option<MediaType> {
        Some(match s {
            "AUDIO" => MediaType::Audio,
            "VIDEO" => MediaType::Video,
            "SUBTITLES" => MediaType::Subtitles,
            "CLOSED-CAPTIONS" => MediaType::ClosedCaptions,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MediaType::Audio => "AUDIO",
            MediaType::Video => "VIDEO",
            MediaType::Subtitles => "SUBTITLES",
            MediaType::ClosedCaptions => "CLOSED-CAPTIONS",
        }
    }
}

/// One `#EXT-X-MEDIA` entry: an alternative rendition (audio language, subtitles, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    /// `TYPE`.
    pub kind: MediaType,
    /// `GROUP-ID`.
    pub group_id: String,
    /// `NAME`.
    pub name: String,
    /// `LANGUAGE`.
    pub language: Option<String>,
    /// `DEFAULT=YES`.
    pub default: bool,
    /// `AUTOSELECT=YES`.
    pub autoselect: bool,
    /// `URI` of its media playlist (absent when carried in the variant's own stream).
    pub uri: Option<String>,
}

/// A media playlist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Media {
    /// `#EXT-X-VERSION`.
    pub version: Option<u32>,
    /// `#EXT-X-TARGETDURATION` in seconds (an integer by the RFC; read leniently).
    pub target_duration: Option<f64>,
    /// `#EXT-X-MEDIA-SEQUENCE` (0 when absent, as the RFC says).
    pub media_sequence: u64,
    /// `#EXT-X-DISCONTINUITY-SEQUENCE` (0 when absent).
    pub discontinuity_sequence: u64,
    /// `#EXT-X-PLAYLIST-TYPE`.
    pub playlist_type: Option<PlaylistType>,
    /// `#EXT-X-INDEPENDENT-SEGMENTS`.
    pub independent_segments: bool,
    /// `#EXT-X-ENDLIST`: the playlist will not grow (VOD, or an event that ended).
    pub ended: bool,
    /// Segments in order.
    pub segments: Vec<Segment>,
    /// `#EXT-X-PART-INF:PART-TARGET` in seconds (low latency).
    pub part_target: Option<f64>,
    /// `#EXT-X-SERVER-CONTROL` (low latency).
    pub server_control: Option<ServerControl>,
    /// `#EXT-X-PART`s after the last segment: the segment being written (low latency).
    pub parts_in_progress: Vec<Part>,
    /// `#EXT-X-SKIP:SKIPPED-SEGMENTS` (a playlist delta update).
    pub skipped_segments: Option<u64>,
    /// `#EXT-X-PRELOAD-HINT`s (low latency).
    pub preload_hints: Vec<PreloadHint>,
    /// `#EXT-X-RENDITION-REPORT`s (low latency).
    pub rendition_reports: Vec<RenditionReport>,
    /// `#EXT-X-START`: where players should start.
    pub start: Option<StartPoint>,
}

/// `#EXT-X-PLAYLIST-TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistType {
    /// `VOD`: never changes.
    Vod,
    /// `EVENT`: segments are only appended.
    Event,
}

/// One media segment and what applies to it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Segment {
    /// `#EXTINF` duration in seconds.
    pub duration: f64,
    /// `#EXTINF` title (after the comma), if any.
    pub title: Option<String>,
    /// URI as written.
    pub uri: String,
    /// `#EXT-X-BYTERANGE`: a sub-range of the resource.
    pub byte_range: Option<ByteRange>,
    /// Preceded by `#EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
    /// `#EXT-X-PROGRAM-DATE-TIME`, as written (ISO 8601).
    pub program_date_time: Option<String>,
    /// `#EXT-X-GAP`: the segment is missing; players skip it.
    pub gap: bool,
    /// The `#EXT-X-KEY` in effect (none, or `METHOD=NONE`, for clear segments), shared with
    /// the other segments it applies to: one tag line is held once, however many segments
    /// follow it.
    pub key: Option<Arc<Key>>,
    /// The `#EXT-X-MAP` (init section) in effect, shared as `key` is.
    pub map: Option<Arc<Map>>,
    /// `#EXT-X-PART`s of this segment, before its URI line (low latency).
    pub parts: Vec<Part>,
}

/// `#EXT-X-BYTERANGE` / `BYTERANGE=`: `length[@offset]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// Bytes.
    pub length: u64,
    /// Start; `None`: right after the previous range of the same resource.
    pub offset: Option<u64>,
}

impl ByteRange {
    pub(crate) fn parse(s: &str) -> Option<ByteRange> {
        let (length, offset) = match s.split_once('@') {
            Some((l, o)) => (l, Some(o.trim().parse().ok()?)),
            None => (s, None),
        };
        Some(ByteRange { length: length.trim().parse().ok()?, offset })
    }

    pub(crate) fn render(self) -> String {
        match self.offset {
            Some(o) => format!("{}@{o}", self.length),
            None => self.length.to_string(),
        }
    }
}

/// `#EXT-X-KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// `METHOD` (`AES-128`, `SAMPLE-AES`, …).
    pub method: String,
    /// `URI` of the key.
    pub uri: Option<String>,
    /// `IV`, as written.
    pub iv: Option<String>,
    /// `KEYFORMAT`.
    pub keyformat: Option<String>,
}

/// `#EXT-X-MAP`: the init section (fMP4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    /// `URI`.
    pub uri: String,
    /// `BYTERANGE`.
    pub byte_range: Option<ByteRange>,
}

/// `#EXT-X-PART`: a partial segment (low latency).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Part {
    /// `DURATION` in seconds.
    pub duration: f64,
    /// `URI`.
    pub uri: String,
    /// `INDEPENDENT=YES`.
    pub independent: bool,
    /// `BYTERANGE`.
    pub byte_range: Option<ByteRange>,
    /// `GAP=YES`.
    pub gap: bool,
}

/// `#EXT-X-SERVER-CONTROL`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ServerControl {
    /// `CAN-BLOCK-RELOAD=YES`.
    pub can_block_reload: bool,
    /// `CAN-SKIP-UNTIL` in seconds.
    pub can_skip_until: Option<f64>,
    /// `HOLD-BACK` in seconds.
    pub hold_back: Option<f64>,
    /// `PART-HOLD-BACK` in seconds.
    pub part_hold_back: Option<f64>,
}

/// `#EXT-X-PRELOAD-HINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreloadHint {
    /// `TYPE`: `PART` or `MAP`.
    pub kind: String,
    /// `URI`.
    pub uri: String,
    /// `BYTERANGE-START`: the hinted part is this resource from that byte on (`None`: the
    /// whole resource).
    pub byterange_start: Option<u64>,
    /// `BYTERANGE-LENGTH`, when the length is known.
    pub byterange_length: Option<u64>,
}

/// `#EXT-X-RENDITION-REPORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    /// `URI` of the other rendition's playlist.
    pub uri: String,
    /// `LAST-MSN`.
    pub last_msn: Option<u64>,
    /// `LAST-PART`.
    pub last_part: Option<u64>,
}

impl Master {
    /// Index of the variant with the highest (or lowest) `BANDWIDTH`; the first wins a tie.
    #[must_use]
    pub fn pick(&self, highest: bool) -> Option<usize> {
        let mut best: Option<(usize, u64)> = None;
        for (i, v) in self.variants.iter().enumerate() {
            let better = match best {
                None => true,
                Some((_, b)) if highest => v.bandwidth > b,
                Some((_, b)) => v.bandwidth < b,
            };
            if better {
                best = Some((i, v.bandwidth));
            }
        }
        best.map(|(i, _)| i)
    }
}

impl Media {
    /// `#EXT-X-MAP` URIs, in order, each once.
    #[must_use]
    pub fn map_uris(&self) -> Vec<&str> {
        once_each(self.segments.iter().filter_map(|s| Some(s.map.as_ref()?.uri.as_str())))
    }

    /// `#EXT-X-KEY` URIs, in order, each once.
    #[must_use]
    pub fn key_uris(&self) -> Vec<&str> {
        once_each(self.segments.iter().filter_map(|s| s.key.as_ref()?.uri.as_deref()))
    }
}

/// `items` in order, each once, in time linear in the text: a playlist may name a new key
/// for every segment, and a run of segments that share one line yields the same slice, which
/// is let through without hashing it again.
fn once_each<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    let mut last: Option<&str> = None;
    items
        .filter(|u| {
            let again = last.is_some_and(|l| std::ptr::eq(l, *u));
            last = Some(u);
            !again && seen.insert(*u)
        })
        .collect()
}

/// Resolves a playlist entry against the playlist's own URL.
///
/// # Errors
/// If the entry cannot be joined into a URL.
pub fn resolve(base: &url::Url, uri: &str) -> Result<url::Url, url::ParseError> {
    base.join(uri)
}
