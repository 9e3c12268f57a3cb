//! HLS playlists (RFC 8216 and the low-latency tags of its second edition): one parser and one
//! writer for the whole lab.
//!
//! [`parse`] is a pure function over the text. Lines are split on `\r` and `\n`; unknown tags
//! are ignored, as the RFC asks. A master playlist gives its variants (`#EXT-X-STREAM-INF`) and
//! renditions (`#EXT-X-MEDIA`); a media playlist its segments with everything that applies to
//! each (duration, byte range, discontinuity, the key and init section in effect, program
//! date-time, gap, partial segments) and the playlist-wide tags, the low-latency ones included
//! (`EXT-X-PART-INF`, `EXT-X-SERVER-CONTROL`, `EXT-X-PRELOAD-HINT`, `EXT-X-RENDITION-REPORT`,
//! `EXT-X-SKIP`) although nothing uses those yet. [`Media::render`] and [`Master::render`]
//! write them back; parsing what they write gives the same value.

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
    fn parse(s: &str) -> Option<MediaType> {
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
    /// The `#EXT-X-KEY` in effect (none, or `METHOD=NONE`, for clear segments).
    pub key: Option<Key>,
    /// The `#EXT-X-MAP` (init section) in effect.
    pub map: Option<Map>,
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

/// Why a text is not a playlist we can read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// The first line is not `#EXTM3U`.
    #[error("not an HLS playlist: it does not start with #EXTM3U")]
    NotM3u8,
    /// A tag or attribute value does not read.
    #[error("line {line}: cannot read {tag}")]
    BadTag {
        /// 1-based line number.
        line: usize,
        /// The tag or attribute.
        tag: &'static str,
    },
    /// A media playlist was expected.
    #[error("a master playlist where a media playlist was expected")]
    NotMedia,
    /// A master playlist was expected.
    #[error("a media playlist where a master playlist was expected")]
    NotMaster,
}

/// Parses a master or media playlist.
///
/// # Errors
/// [`ParseError`] for text that is not a playlist or has an unreadable value.
pub fn parse(text: &str) -> Result<Playlist, ParseError> {
    let mut lines =
        text.split(['\r', '\n']).enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty());
    match lines.next() {
        Some((_, first)) if first.trim_start_matches('\u{feff}').starts_with("#EXTM3U") => {}
        _ => return Err(ParseError::NotM3u8),
    }
    let mut p = Parser::default();
    for (n, line) in lines {
        p.line(n, line)?;
    }
    Ok(p.finish())
}

/// Parses a media playlist.
///
/// # Errors
/// As [`parse`], and [`ParseError::NotMedia`] for a master playlist.
pub fn parse_media(text: &str) -> Result<Media, ParseError> {
    match parse(text)? {
        Playlist::Media(m) => Ok(m),
        Playlist::Master(_) => Err(ParseError::NotMedia),
    }
}

/// Parses a master playlist.
///
/// # Errors
/// As [`parse`], and [`ParseError::NotMaster`] for a media playlist.
pub fn parse_master(text: &str) -> Result<Master, ParseError> {
    match parse(text)? {
        Playlist::Master(m) => Ok(m),
        Playlist::Media(_) => Err(ParseError::NotMaster),
    }
}

/// The parser's state between lines.
#[derive(Debug, Default)]
struct Parser {
    master: Master,
    media: Media,
    is_master: bool,
    /// The next URI line belongs to this variant.
    variant: Option<Variant>,
    /// The next URI line is a segment with these tags.
    segment: Option<Segment>,
    /// Tags seen for the next segment before its `#EXTINF`.
    pending: Segment,
    key: Option<Key>,
    map: Option<Map>,
}

fn bad(line: usize, tag: &'static str) -> ParseError {
    ParseError::BadTag { line, tag }
}

fn number<T: std::str::FromStr>(v: &str, line: usize, tag: &'static str) -> Result<T, ParseError> {
    v.trim().parse().map_err(|_| bad(line, tag))
}

fn yes(v: Option<&str>) -> bool {
    v == Some("YES")
}

impl Parser {
    fn line(&mut self, n: usize, line: &str) -> Result<(), ParseError> {
        let Some(tag_line) = line.strip_prefix('#') else {
            self.uri(line);
            return Ok(());
        };
        let (tag, value) = tag_line.split_once(':').unwrap_or((tag_line, ""));
        match tag {
            "EXT-X-VERSION" => {
                let v = number(value, n, "#EXT-X-VERSION")?;
                self.master.version = Some(v);
                self.media.version = Some(v);
            }
            "EXT-X-INDEPENDENT-SEGMENTS" => {
                self.master.independent_segments = true;
                self.media.independent_segments = true;
            }
            "EXT-X-STREAM-INF" => {
                self.is_master = true;
                self.variant = Some(variant(value, n)?);
            }
            "EXT-X-MEDIA" => {
                self.is_master = true;
                self.master.renditions.push(rendition(value, n)?);
            }
            "EXT-X-TARGETDURATION" => {
                self.media.target_duration = Some(number(value, n, "#EXT-X-TARGETDURATION")?);
            }
            "EXT-X-MEDIA-SEQUENCE" => self.media.media_sequence = number(value, n, "#EXT-X-MEDIA-SEQUENCE")?,
            "EXT-X-DISCONTINUITY-SEQUENCE" => {
                self.media.discontinuity_sequence = number(value, n, "#EXT-X-DISCONTINUITY-SEQUENCE")?;
            }
            "EXT-X-PLAYLIST-TYPE" => {
                self.media.playlist_type = match value.trim() {
                    "VOD" => Some(PlaylistType::Vod),
                    "EVENT" => Some(PlaylistType::Event),
                    _ => return Err(bad(n, "#EXT-X-PLAYLIST-TYPE")),
                };
            }
            "EXT-X-ENDLIST" => self.media.ended = true,
            "EXTINF" => {
                let (d, title) = value.split_once(',').unwrap_or((value, ""));
                let mut seg = std::mem::take(&mut self.pending);
                seg.duration = number(d, n, "#EXTINF")?;
                seg.title = Some(title.trim()).filter(|t| !t.is_empty()).map(str::to_owned);
                self.segment = Some(seg);
            }
            "EXT-X-BYTERANGE" => {
                self.next().byte_range = Some(ByteRange::parse(value).ok_or(bad(n, "#EXT-X-BYTERANGE"))?);
            }
            "EXT-X-DISCONTINUITY" => self.next().discontinuity = true,
            "EXT-X-GAP" => self.next().gap = true,
            "EXT-X-PROGRAM-DATE-TIME" => self.next().program_date_time = Some(value.trim().to_owned()),
            "EXT-X-KEY" => {
                let a = Attributes::new(value);
                let method = a.get("METHOD").ok_or(bad(n, "METHOD"))?;
                self.key = (method != "NONE").then(|| Key {
                    method: method.to_owned(),
                    uri: a.string("URI"),
                    iv: a.string("IV"),
                    keyformat: a.string("KEYFORMAT"),
                });
            }
            "EXT-X-MAP" => {
                let a = Attributes::new(value);
                self.map = Some(Map {
                    uri: a.string("URI").ok_or(bad(n, "URI"))?,
                    byte_range: a.range("BYTERANGE", n)?,
                });
            }
            "EXT-X-PART" => {
                let a = Attributes::new(value);
                let part = Part {
                    duration: a.number("DURATION", n)?.ok_or(bad(n, "DURATION"))?,
                    uri: a.string("URI").ok_or(bad(n, "URI"))?,
                    independent: yes(a.get("INDEPENDENT")),
                    byte_range: a.range("BYTERANGE", n)?,
                    gap: yes(a.get("GAP")),
                };
                self.next().parts.push(part);
            }
            "EXT-X-PART-INF" => {
                self.media.part_target = Attributes::new(value).number("PART-TARGET", n)?;
            }
            "EXT-X-SERVER-CONTROL" => {
                let a = Attributes::new(value);
                self.media.server_control = Some(ServerControl {
                    can_block_reload: yes(a.get("CAN-BLOCK-RELOAD")),
                    can_skip_until: a.number("CAN-SKIP-UNTIL", n)?,
                    hold_back: a.number("HOLD-BACK", n)?,
                    part_hold_back: a.number("PART-HOLD-BACK", n)?,
                });
            }
            "EXT-X-SKIP" => {
                self.media.skipped_segments = Attributes::new(value).number("SKIPPED-SEGMENTS", n)?;
            }
            "EXT-X-PRELOAD-HINT" => {
                let a = Attributes::new(value);
                self.media.preload_hints.push(PreloadHint {
                    kind: a.string("TYPE").ok_or(bad(n, "TYPE"))?,
                    uri: a.string("URI").ok_or(bad(n, "URI"))?,
                });
            }
            "EXT-X-RENDITION-REPORT" => {
                let a = Attributes::new(value);
                self.media.rendition_reports.push(RenditionReport {
                    uri: a.string("URI").ok_or(bad(n, "URI"))?,
                    last_msn: a.number("LAST-MSN", n)?,
                    last_part: a.number("LAST-PART", n)?,
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// The segment the next URI line will complete (after its `#EXTINF`, or before it).
    fn next(&mut self) -> &mut Segment {
        self.segment.as_mut().unwrap_or(&mut self.pending)
    }

    fn uri(&mut self, line: &str) {
        if let Some(mut v) = self.variant.take() {
            v.uri = line.to_owned();
            self.master.variants.push(v);
        } else if let Some(mut s) = self.segment.take() {
            s.uri = line.to_owned();
            s.key.clone_from(&self.key);
            s.map.clone_from(&self.map);
            self.media.segments.push(s);
        }
    }

    fn finish(mut self) -> Playlist {
        if self.is_master {
            Playlist::Master(self.master)
        } else {
            self.media.parts_in_progress = std::mem::take(&mut self.pending.parts);
            Playlist::Media(self.media)
        }
    }
}

fn variant(value: &str, n: usize) -> Result<Variant, ParseError> {
    let a = Attributes::new(value);
    Ok(Variant {
        bandwidth: a.number("BANDWIDTH", n)?.ok_or(bad(n, "BANDWIDTH"))?,
        average_bandwidth: a.number("AVERAGE-BANDWIDTH", n)?,
        resolution: match a.get("RESOLUTION") {
            None => None,
            Some(r) => {
                let (w, h) = r.split_once(['x', 'X']).ok_or(bad(n, "RESOLUTION"))?;
                Some((number(w, n, "RESOLUTION")?, number(h, n, "RESOLUTION")?))
            }
        },
        codecs: a.string("CODECS"),
        frame_rate: a.number("FRAME-RATE", n)?,
        audio: a.string("AUDIO"),
        subtitles: a.string("SUBTITLES"),
        uri: String::new(),
    })
}

fn rendition(value: &str, n: usize) -> Result<Rendition, ParseError> {
    let a = Attributes::new(value);
    Ok(Rendition {
        kind: a.get("TYPE").and_then(MediaType::parse).ok_or(bad(n, "TYPE"))?,
        group_id: a.string("GROUP-ID").ok_or(bad(n, "GROUP-ID"))?,
        name: a.string("NAME").ok_or(bad(n, "NAME"))?,
        language: a.string("LANGUAGE"),
        default: yes(a.get("DEFAULT")),
        autoselect: yes(a.get("AUTOSELECT")),
        uri: a.string("URI"),
    })
}

/// An attribute list (`A=1,B="x,y",C=z`): names and values, quotes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Attributes<'a> {
    /// Splits `list`, honouring quotes; a malformed tail is ignored.
    #[must_use]
    pub fn new(list: &'a str) -> Attributes<'a> {
        let mut out = Vec::new();
        let mut rest = list.trim();
        while let Some((key, after)) = rest.split_once('=') {
            let (value, next) = if let Some(q) = after.strip_prefix('"') {
                match q.split_once('"') {
                    Some((v, n)) => (v, n),
                    None => (q, ""),
                }
            } else {
                after.split_once(',').map_or((after, ""), |(v, n)| (v, n))
            };
            out.push((key.trim(), value.trim_matches(' ')));
            rest = next.trim_start_matches([',', ' ']);
        }
        Attributes(out)
    }

    /// The first value of `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    fn number<T: std::str::FromStr>(&self, name: &'static str, line: usize) -> Result<Option<T>, ParseError> {
        self.get(name).map(|v| number(v, line, name)).transpose()
    }

    fn range(&self, name: &'static str, line: usize) -> Result<Option<ByteRange>, ParseError> {
        self.get(name).map(|v| ByteRange::parse(v).ok_or(bad(line, name))).transpose()
    }
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
        let mut out: Vec<&str> = Vec::new();
        for u in self.segments.iter().filter_map(|s| s.map.as_ref()).map(|m| m.uri.as_str()) {
            if !out.contains(&u) {
                out.push(u);
            }
        }
        out
    }

    /// `#EXT-X-KEY` URIs, in order, each once.
    #[must_use]
    pub fn key_uris(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for u in self.segments.iter().filter_map(|s| s.key.as_ref()?.uri.as_deref()) {
            if !out.contains(&u) {
                out.push(u);
            }
        }
        out
    }
}

/// Resolves a playlist entry against the playlist's own URL.
///
/// # Errors
/// If the entry cannot be joined into a URL.
pub fn resolve(base: &url::Url, uri: &str) -> Result<url::Url, url::ParseError> {
    base.join(uri)
}

mod render;
#[cfg(test)]
mod tests;
