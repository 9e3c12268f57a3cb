//! Just enough HLS playlist parsing and writing for readiness checks, replay and tests.
//!
//! Parsing is a pure function over text; lines are split on `\r` and `\n`.

use std::fmt::Write as _;

/// One segment of a media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The URI line as written.
    pub uri: String,
    /// `#EXTINF` duration in seconds.
    pub duration: f64,
    /// Preceded by `#EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
}

/// A media playlist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Media {
    /// `#EXT-X-TARGETDURATION`.
    pub target_duration: Option<u64>,
    /// `#EXT-X-MEDIA-SEQUENCE` (0 when absent, as the spec says).
    pub media_sequence: u64,
    /// `#EXT-X-DISCONTINUITY-SEQUENCE` (0 when absent).
    pub discontinuity_sequence: u64,
    /// Segments in order.
    pub segments: Vec<Segment>,
    /// `#EXT-X-ENDLIST` seen.
    pub endlist: bool,
}

/// One `#EXT-X-STREAM-INF` entry of a master playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantEntry {
    /// The variant's URI.
    pub uri: String,
    /// `BANDWIDTH`, bit/s.
    pub bandwidth: Option<u64>,
    /// `RESOLUTION` as (width, height).
    pub resolution: Option<(u32, u32)>,
}

/// Why a text is not a playlist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The first line is not `#EXTM3U`.
    #[error("not a playlist: the first line is not #EXTM3U")]
    NoHeader,
    /// A tag's value does not parse.
    #[error("bad value in {line:?}")]
    BadValue {
        /// The offending line.
        line: String,
    },
}

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty())
}

fn num<T: std::str::FromStr>(line: &str, value: &str) -> Result<T, ParseError> {
    value.trim().parse().map_err(|_| ParseError::BadValue { line: line.to_owned() })
}

/// Parses a media playlist.
///
/// # Errors
/// [`ParseError`] if the header is missing or a number does not parse.
pub fn parse_media(text: &str) -> Result<Media, ParseError> {
    let mut it = lines(text);
    if it.next() != Some("#EXTM3U") {
        return Err(ParseError::NoHeader);
    }
    let mut m = Media::default();
    let mut pending: Option<f64> = None;
    let mut disc = false;
    for line in it {
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            m.target_duration = Some(num(line, v)?);
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            m.media_sequence = num(line, v)?;
        } else if let Some(v) = line.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:") {
            m.discontinuity_sequence = num(line, v)?;
        } else if line == "#EXT-X-DISCONTINUITY" {
            disc = true;
        } else if line == "#EXT-X-ENDLIST" {
            m.endlist = true;
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            pending = Some(num(line, v.split(',').next().unwrap_or(""))?);
        } else if !line.starts_with('#') {
            let duration = pending.take().ok_or_else(|| ParseError::BadValue { line: line.to_owned() })?;
            m.segments.push(Segment { uri: line.to_owned(), duration, discontinuity: disc });
            disc = false;
        }
    }
    Ok(m)
}

/// Parses a master playlist's variant entries.
///
/// # Errors
/// [`ParseError`] if the header is missing or an attribute does not parse.
pub fn parse_master(text: &str) -> Result<Vec<VariantEntry>, ParseError> {
    let mut it = lines(text);
    if it.next() != Some("#EXTM3U") {
        return Err(ParseError::NoHeader);
    }
    let mut out = Vec::new();
    let mut pending: Option<VariantEntry> = None;
    for line in it {
        if let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            let mut bw = None;
            let mut res = None;
            for (k, v) in attributes(attrs) {
                match k {
                    "BANDWIDTH" => bw = Some(num(line, v)?),
                    "RESOLUTION" => {
                        let (w, h) = v
                            .split_once('x')
                            .ok_or_else(|| ParseError::BadValue { line: line.to_owned() })?;
                        res = Some((num(line, w)?, num(line, h)?));
                    }
                    _ => {}
                }
            }
            pending = Some(VariantEntry { uri: String::new(), bandwidth: bw, resolution: res });
        } else if !line.starts_with('#') {
            if let Some(mut entry) = pending.take() {
                entry.uri = line.to_owned();
                out.push(entry);
            }
        }
    }
    Ok(out)
}

/// Splits `A=1,B="x,y",C=2` into pairs, honouring quotes.
fn attributes(s: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (&q[..end], q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.push((key, value));
        rest = next.trim_start_matches(',');
    }
    out
}

impl Media {
    /// Renders a live media playlist (no `#EXT-X-ENDLIST`).
    #[must_use]
    pub fn render(&self) -> String {
        let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
        let target = self.target_duration.unwrap_or_else(|| {
            let max = self.segments.iter().map(|s| s.duration).fold(0.0, f64::max);
            // TARGETDURATION is the longest EXTINF rounded to the nearest integer.
            max.round() as u64
        });
        let _ = writeln!(s, "#EXT-X-TARGETDURATION:{target}");
        let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(s, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", self.discontinuity_sequence);
        }
        s.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        for seg in &self.segments {
            if seg.discontinuity {
                s.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = writeln!(s, "#EXTINF:{:.6},\n{}", seg.duration, seg.uri);
        }
        if self.endlist {
            s.push_str("#EXT-X-ENDLIST\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: &str = "#EXTM3U\r\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
        #EXTINF:2.000000,\nseg00007.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1.960000,\nseg00008.ts\n";

    #[test]
    fn media_roundtrip() {
        let m = parse_media(LIVE).unwrap();
        assert_eq!(m.target_duration, Some(2));
        assert_eq!(m.media_sequence, 7);
        assert_eq!(m.segments.len(), 2);
        assert!(!m.segments[0].discontinuity && m.segments[1].discontinuity);
        assert!((m.segments[1].duration - 1.96).abs() < 1e-9);
        assert!(!m.endlist);
        let again = parse_media(&m.render()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn master_attributes_with_quoted_commas() {
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=400400,RESOLUTION=320x180,\
            CODECS=\"avc1.64000d,mp4a.40.2\"\n180p/stream.m3u8\n\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=2x4\nb.m3u8\n";
        let v = parse_master(text).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[0],
            VariantEntry {
                uri: "180p/stream.m3u8".into(),
                bandwidth: Some(400_400),
                resolution: Some((320, 180))
            }
        );
        assert_eq!(v[1].resolution, Some((2, 4)));
    }

    #[test]
    fn rejects_non_playlists() {
        assert_eq!(parse_media("<html>"), Err(ParseError::NoHeader));
        assert!(matches!(
            parse_media("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:x\n"),
            Err(ParseError::BadValue { .. })
        ));
    }
}
