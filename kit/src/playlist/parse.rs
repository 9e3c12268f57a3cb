//! Reading playlist text: [`parse`] and its helpers.

use std::sync::Arc;

use super::model::*;

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
    /// The text is over one of the [`Bounds`]; nothing of it is returned.
    #[error("line {line}: {}", what.passed(*limit))]
    OverLimit {
        /// 1-based line number where the limit was passed.
        line: usize,
        /// Which bound.
        what: Bound,
        /// The bound's value.
        limit: usize,
    },
}

/// One of the [`Bounds`] a text can pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bound {
    /// [`Bounds::line_bytes`].
    Line,
    /// [`Bounds::uri_bytes`].
    Uri,
    /// [`Bounds::entries`].
    Entries,
}

impl Bound {
    /// What passing this bound at `limit` means, e.g. "a URI longer than 8192 bytes".
    #[must_use]
    pub fn passed(self, limit: usize) -> String {
        match self {
            Bound::Line => format!("a line longer than {limit} bytes"),
            Bound::Uri => format!("a URI longer than {limit} bytes"),
            Bound::Entries => format!("more than {limit} segments (or variants, renditions or parts)"),
        }
    }
}

/// How much of a playlist the parser reads before refusing it: what a hostile or broken
/// server sends costs bounded memory and time, and is refused whole, never read in part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Longest line, in bytes.
    pub line_bytes: usize,
    /// Longest URI (a URI line, or a `URI` attribute), in bytes.
    pub uri_bytes: usize,
    /// Most segments in a media playlist, and most variants, renditions, or partial segments
    /// of one segment.
    pub entries: usize,
}

impl Bounds {
    /// 64 KiB lines (a long `EXT-X-DATERANGE` holds a few KB), 8 KiB URIs (more than
    /// common servers accept in a request line), 100,000 entries (55 hours of 2 s segments).
    pub const DEFAULT: Bounds = Bounds { line_bytes: 64 * 1024, uri_bytes: 8 * 1024, entries: 100_000 };
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds::DEFAULT
    }
}

/// Parses a master or media playlist within [`Bounds::DEFAULT`].
///
/// # Errors
/// [`ParseError`] for text that is not a playlist, has an unreadable value or is over a bound.
pub fn parse(text: &str) -> Result<Playlist, ParseError> {
    parse_within(text, Bounds::DEFAULT)
}

/// Parses a master or media playlist within `bounds`.
///
/// # Errors
/// As [`parse`].
pub fn parse_within(text: &str, bounds: Bounds) -> Result<Playlist, ParseError> {
    let mut lines = text.split(['\r', '\n']).enumerate().filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, first)) if first.trim().trim_start_matches('\u{feff}').starts_with("#EXTM3U") => {}
        _ => return Err(ParseError::NotM3u8),
    }
    let mut p = Parser { bounds, ..Parser::default() };
    for (i, line) in lines {
        let n = i + 1;
        if line.len() > bounds.line_bytes {
            return Err(ParseError::OverLimit { line: n, what: Bound::Line, limit: bounds.line_bytes });
        }
        p.line(n, line.trim())?;
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
    key: Option<Arc<Key>>,
    map: Option<Arc<Map>>,
    bounds: Bounds,
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
        let over = |what, limit| Err(ParseError::OverLimit { line: n, what, limit });
        let Some(tag_line) = line.strip_prefix('#') else {
            if line.len() > self.bounds.uri_bytes {
                return over(Bound::Uri, self.bounds.uri_bytes);
            }
            self.uri(line);
            return self.counted(n);
        };
        let (tag, value) = tag_line.split_once(':').unwrap_or((tag_line, ""));
        if value.contains("URI=")
            && Attributes::new(value).get("URI").is_some_and(|u| u.len() > self.bounds.uri_bytes)
        {
            return over(Bound::Uri, self.bounds.uri_bytes);
        }
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
                self.key = (method != "NONE").then(|| {
                    Arc::new(Key {
                        method: method.to_owned(),
                        uri: a.string("URI"),
                        iv: a.string("IV"),
                        keyformat: a.string("KEYFORMAT"),
                    })
                });
            }
            "EXT-X-MAP" => {
                let a = Attributes::new(value);
                self.map = Some(Arc::new(Map {
                    uri: a.string("URI").ok_or(bad(n, "URI"))?,
                    byte_range: a.range("BYTERANGE", n)?,
                }));
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
            "EXT-X-START" => {
                let a = Attributes::new(value);
                let time_offset: f64 = a
                    .number("TIME-OFFSET", n)?
                    .filter(|t: &f64| t.is_finite())
                    .ok_or(bad(n, "#EXT-X-START"))?;
                let start = StartPoint { time_offset, precise: yes(a.get("PRECISE")) };
                self.master.start = Some(start);
                self.media.start = Some(start);
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
                    byterange_start: a.number("BYTERANGE-START", n)?,
                    byterange_length: a.number("BYTERANGE-LENGTH", n)?,
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
        self.counted(n)
    }

    /// Refuses the text once a list has grown past [`Bounds::entries`].
    fn counted(&self, n: usize) -> Result<(), ParseError> {
        let parts = self.segment.as_ref().unwrap_or(&self.pending).parts.len();
        let most =
            [self.master.variants.len(), self.master.renditions.len(), self.media.segments.len(), parts];
        if most.into_iter().max().unwrap_or(0) > self.bounds.entries {
            return Err(ParseError::OverLimit { line: n, what: Bound::Entries, limit: self.bounds.entries });
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
pub struct Attributes<'a>(pub(super) Vec<(&'a str, &'a str)>);

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

impl Media {
    /// Each segment's start in wall-clock time (Unix seconds): its own
    /// `EXT-X-PROGRAM-DATE-TIME`, or the previous one's plus the durations since, until a
    /// discontinuity; `None` where no date-time applies.
    #[must_use]
    pub fn program_times(&self) -> Vec<Option<f64>> {
        let mut clock: Option<f64> = None;
        self.segments
            .iter()
            .map(|s| {
                if s.discontinuity {
                    clock = None;
                }
                if let Some(t) = s.program_date_time.as_deref().and_then(date_time) {
                    clock = Some(t);
                }
                let start = clock;
                clock = clock.map(|t| t + s.duration);
                start
            })
            .collect()
    }
}

/// An `EXT-X-PROGRAM-DATE-TIME` value as Unix seconds: ISO 8601 date (years 0 to 9999) and
/// time with optional fraction and a `Z`, `±HH:MM` or `±HHMM` offset (FFmpeg writes `+0000`).
/// `None` if it does not read.
#[must_use]
pub fn date_time(text: &str) -> Option<f64> {
    let t = text.trim();
    let (date, rest) = t.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let (y, mo, da): (i64, i64, i64) =
        (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let mut c = clock.splitn(3, ':');
    let (h, mi): (i64, i64) = (c.next()?.parse().ok()?, c.next()?.parse().ok()?);
    let sec: f64 = c.next().unwrap_or("0").parse().ok()?;
    // Four-digit years, as ISO 8601 writes them without an agreed expansion (and so the day
    // count below cannot overflow).
    if !(0..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&da)
        || h > 23
        || mi > 59
        || !(0.0..61.0).contains(&sec)
    {
        return None;
    }
    let offset = match zone {
        "" | "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(char::is_ascii_digit).collect();
            if digits.len() != 4 {
                return None;
            }
            let (oh, om): (i64, i64) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days from 1970-01-01 to the date (Howard Hinnant's days_from_civil).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (mo + if mo > 2 { -3 } else { 9 }) + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    #[allow(clippy::cast_precision_loss)]
    Some((days * 86_400 + h * 3600 + mi * 60 - offset) as f64 + sec)
}
