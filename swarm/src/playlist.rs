//! HLS playlists (RFC 8216): just what a load generator needs to read.
//!
//! A master playlist lists variants (`#EXT-X-STREAM-INF` with BANDWIDTH, RESOLUTION and the
//! next line's URI); a media playlist lists segments (`#EXTINF` durations), its target
//! duration, media sequence and whether it ended (`#EXT-X-ENDLIST`: VOD or a finished event).
//! Parsing is a pure function over the text; unknown tags are ignored as the RFC asks.

use url::Url;

/// A parsed playlist.
#[derive(Debug, Clone, PartialEq)]
pub enum Playlist {
    /// Lists variants.
    Master(Master),
    /// Lists segments.
    Media(Media),
}

/// A master playlist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Master {
    /// Variants in playlist order (FFmpeg numbers its programs in this order).
    pub variants: Vec<VariantStream>,
}

/// One `#EXT-X-STREAM-INF` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantStream {
    /// Peak bits per second.
    pub bandwidth: u64,
    /// Width and height, if given.
    pub resolution: Option<(u32, u32)>,
    /// The media playlist, as written (maybe relative).
    pub uri: String,
}

/// A media playlist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Media {
    /// `#EXT-X-TARGETDURATION` in seconds.
    pub target_duration: Option<f64>,
    /// `#EXT-X-MEDIA-SEQUENCE` (0 when absent).
    pub media_sequence: u64,
    /// Segments in order.
    pub segments: Vec<Segment>,
    /// `#EXT-X-ENDLIST` present: the stream will not grow (VOD or ended event).
    pub ended: bool,
    /// `#EXT-X-MAP` URI (fMP4 init section), if any.
    pub init: Option<String>,
    /// `#EXT-X-KEY` URIs (decryption keys), in order, duplicates kept once.
    pub keys: Vec<String>,
}

/// One media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// `#EXTINF` duration in seconds.
    pub duration: f64,
    /// URI as written.
    pub uri: String,
}

/// Why a text is not a playlist.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// The first line is not `#EXTM3U`.
    #[error("not an HLS playlist: it does not start with #EXTM3U")]
    NotM3u8,
    /// A tag's value is unreadable.
    #[error("line {line}: cannot read {tag}")]
    BadTag {
        /// 1-based line number.
        line: usize,
        /// The tag.
        tag: &'static str,
    },
}

/// Parses a playlist.
///
/// # Errors
/// [`ParseError`] for text that is not a playlist or has a malformed required value.
pub fn parse(text: &str) -> Result<Playlist, ParseError> {
    let mut lines = text.lines().map(str::trim).enumerate().filter(|(_, l)| !l.is_empty());
    match lines.next() {
        Some((_, first)) if first.trim_start_matches('\u{feff}').starts_with("#EXTM3U") => {}
        _ => return Err(ParseError::NotM3u8),
    }
    let mut master = Master::default();
    let mut media = Media::default();
    let mut is_master = false;
    let mut pending_variant: Option<(u64, Option<(u32, u32)>)> = None;
    let mut pending_duration: Option<f64> = None;
    for (idx, line) in lines {
        let n = idx + 1;
        if let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            is_master = true;
            let bandwidth = attr(attrs, "BANDWIDTH")
                .and_then(|v| v.parse().ok())
                .ok_or(ParseError::BadTag { line: n, tag: "BANDWIDTH" })?;
            let resolution = attr(attrs, "RESOLUTION").and_then(|r| {
                let (w, h) = r.split_once(['x', 'X'])?;
                Some((w.parse().ok()?, h.parse().ok()?))
            });
            pending_variant = Some((bandwidth, resolution));
        } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            media.target_duration = Some(
                v.trim().parse().map_err(|_| ParseError::BadTag { line: n, tag: "#EXT-X-TARGETDURATION" })?,
            );
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            media.media_sequence =
                v.trim().parse().map_err(|_| ParseError::BadTag { line: n, tag: "#EXT-X-MEDIA-SEQUENCE" })?;
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let d = v.split(',').next().unwrap_or_default().trim();
            pending_duration = Some(d.parse().map_err(|_| ParseError::BadTag { line: n, tag: "#EXTINF" })?);
        } else if line.starts_with("#EXT-X-ENDLIST") {
            media.ended = true;
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-MAP:") {
            media.init = attr(attrs, "URI").map(str::to_owned);
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-KEY:") {
            if let Some(uri) = attr(attrs, "URI") {
                if !media.keys.iter().any(|k| k == uri) {
                    media.keys.push(uri.to_owned());
                }
            }
        } else if !line.starts_with('#') {
            if let Some((bandwidth, resolution)) = pending_variant.take() {
                master.variants.push(VariantStream { bandwidth, resolution, uri: line.to_owned() });
            } else if let Some(duration) = pending_duration.take() {
                media.segments.push(Segment { duration, uri: line.to_owned() });
            }
        }
    }
    Ok(if is_master { Playlist::Master(master) } else { Playlist::Media(media) })
}

/// The value of attribute `name` in an attribute list (`A=1,B="x,y",C=z`), quotes removed.
#[must_use]
pub fn attr<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], q[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

impl Master {
    /// Index of the variant with the highest (or lowest) BANDWIDTH; the first wins a tie.
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

/// Resolves a playlist entry against the playlist's own URL.
///
/// # Errors
/// If the entry cannot be joined into a URL.
pub fn resolve(base: &Url, uri: &str) -> Result<Url, url::ParseError> {
    base.join(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:3\n\
        #EXT-X-STREAM-INF:BANDWIDTH=2200000,RESOLUTION=1280x720,CODECS=\"avc1.640028,mp4a.40.2\"\n720p/stream.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=550000,RESOLUTION=640x360\n360p/stream.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=5500000,RESOLUTION=1920x1080\nhttp://cdn.example/1080p/stream.m3u8\n";

    const LIVE: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:17\n\
        #EXTINF:2.000000,\nseg00017.ts\n#EXTINF:2.000000,\nseg00018.ts\n#EXTINF:1.966667,\nseg00019.ts\n";

    #[test]
    fn master_variants_in_order() {
        let Playlist::Master(m) = parse(MASTER).unwrap() else { panic!("not a master") };
        assert_eq!(m.variants.len(), 3);
        assert_eq!(m.variants[0].resolution, Some((1280, 720)));
        assert_eq!(m.variants[2].uri, "http://cdn.example/1080p/stream.m3u8");
        assert_eq!(m.pick(true), Some(2));
        assert_eq!(m.pick(false), Some(1));
    }

    #[test]
    fn live_media_playlist() {
        let Playlist::Media(m) = parse(LIVE).unwrap() else { panic!("not media") };
        assert_eq!(m.target_duration, Some(2.0));
        assert_eq!(m.media_sequence, 17);
        assert_eq!(m.segments.len(), 3);
        assert!((m.segments[2].duration - 1.966_667).abs() < 1e-9);
        assert!(!m.ended);
    }

    #[test]
    fn vod_and_init() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MAP:URI=\"init.mp4\"\n\
            #EXT-X-KEY:METHOD=AES-128,URI=\"k/1.key\",IV=0x1\n#EXTINF:6,\na.m4s\n\
            #EXT-X-KEY:METHOD=AES-128,URI=\"k/1.key\"\n#EXTINF:6,\nb.m4s\n#EXT-X-ENDLIST\n";
        let Playlist::Media(m) = parse(text).unwrap() else { panic!("not media") };
        assert!(m.ended);
        assert_eq!(m.init.as_deref(), Some("init.mp4"));
        assert_eq!(m.keys, ["k/1.key"]);
    }

    #[test]
    fn errors() {
        assert_eq!(parse("<html>"), Err(ParseError::NotM3u8));
        assert_eq!(parse(""), Err(ParseError::NotM3u8));
        assert_eq!(parse("#EXTM3U\n#EXTINF:abc,\nx.ts"), Err(ParseError::BadTag { line: 2, tag: "#EXTINF" }));
    }

    #[test]
    fn attribute_lists() {
        assert_eq!(attr("A=1,B=\"x,y\",C=z", "B"), Some("x,y"));
        assert_eq!(attr("A=1,B=\"x,y\",C=z", "C"), Some("z"));
        assert_eq!(attr("A=1", "B"), None);
    }

    #[test]
    fn relative_uris() {
        let base = Url::parse("http://h:17080/live/master.m3u8").unwrap();
        assert_eq!(
            resolve(&base, "720p/stream.m3u8").unwrap().as_str(),
            "http://h:17080/live/720p/stream.m3u8"
        );
        assert_eq!(resolve(&base, "/abs.m3u8").unwrap().as_str(), "http://h:17080/abs.m3u8");
    }
}
