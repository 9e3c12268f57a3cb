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
//! write them back; parsing what they write gives the same value. Every parse is within
//! [`Bounds`] (line and URI length, number of entries): over one, the whole text is refused.

mod model;
mod parse;
mod render;

pub use model::*;
pub use parse::{
    date_time, parse, parse_master, parse_media, parse_within, Attributes, Bound, Bounds, ParseError,
};

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
