//! What the relay learned from the playlists that passed: which URLs are segments (with their
//! media durations), init sections and keys.

use std::collections::{HashMap, HashSet};

use url::Url;

use crate::engine::limits;
use crate::measure::events::{EventKind, RequestKind};
use kit::playlist::{self, Bounds, ParseError, Playlist};

/// Media playlists remembered per viewer.
const MAX_PLAYLISTS: usize = 64;

/// Which URLs are segments (with durations), init sections and keys, from the playlists
/// that passed. Per media playlist the current and the previous listing are kept, so a
/// segment that just slid out of the window is still known.
#[derive(Debug, Default)]
pub(super) struct Catalog {
    masters: HashSet<String>,
    playlists: HashMap<String, Listing>,
}

#[derive(Debug, Default)]
struct Listing {
    current: HashMap<String, Listed>,
    previous: HashMap<String, Listed>,
    others: HashMap<String, RequestKind>,
}

/// What a media playlist says of one segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Listed {
    /// `#EXTINF`, seconds.
    pub(super) duration: f64,
    /// Its start in wall-clock time (Unix seconds): its own `EXT-X-PROGRAM-DATE-TIME`, or
    /// the previous one's plus the durations since (until a discontinuity).
    pub(super) program_date_time: Option<f64>,
}

impl Catalog {
    pub(super) fn classify(&self, url: &str) -> (RequestKind, Option<Listed>) {
        for l in self.playlists.values() {
            if let Some(d) = l.current.get(url).or_else(|| l.previous.get(url)) {
                return (RequestKind::Segment, Some(*d));
            }
            if let Some(k) = l.others.get(url) {
                return (*k, None);
            }
        }
        if self.masters.contains(url) {
            return (RequestKind::Master, None);
        }
        let path = url.split(['?', '#']).next().unwrap_or(url).to_ascii_lowercase();
        let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
        let kind = match ext {
            "m3u8" | "m3u" => RequestKind::Playlist,
            "ts" | "m4s" | "mp4" | "m4a" | "m4v" | "aac" | "ac3" | "ec3" | "mp3" | "vtt" | "webvtt" => {
                RequestKind::Segment
            }
            "key" => RequestKind::Key,
            _ => RequestKind::Other,
        };
        (kind, None)
    }

    /// Reads a playlist body that passed within `bounds`; returns its kind and, for media
    /// playlists, what the stats want to know. `Err(None)` for a body that is not a playlist,
    /// `Err(Some(reason))` for one over a bound.
    pub(super) fn learn(
        &mut self,
        url: &Url,
        body: &[u8],
        bounds: Bounds,
    ) -> Result<(RequestKind, Option<EventKind>), Option<String>> {
        let text = std::str::from_utf8(body).map_err(|_| None)?;
        let parsed = playlist::parse_within(text, bounds).map_err(|e| match e {
            ParseError::OverLimit { .. } => Some(limits::explain(&e)),
            _ => None,
        })?;
        match parsed {
            Playlist::Master(_) => {
                self.masters.insert(url.to_string());
                Ok((RequestKind::Master, None))
            }
            Playlist::Media(m) => {
                if self.playlists.len() >= MAX_PLAYLISTS && !self.playlists.contains_key(url.as_str()) {
                    self.playlists.clear();
                }
                let entry = self.playlists.entry(url.to_string()).or_default();
                let mut current = HashMap::with_capacity(m.segments.len());
                for (s, start) in m.segments.iter().zip(m.program_times()) {
                    let listed = Listed { duration: s.duration, program_date_time: start };
                    if let Ok(u) = playlist::resolve(url, &s.uri) {
                        current.insert(u.to_string(), listed);
                    }
                }
                entry.previous = std::mem::replace(&mut entry.current, current);
                entry.others.clear();
                let extra = m.map_uris().into_iter().map(|u| (u, RequestKind::Init));
                for (u, k) in extra.chain(m.key_uris().into_iter().map(|u| (u, RequestKind::Key))) {
                    if let Ok(u) = playlist::resolve(url, u) {
                        entry.others.insert(u.to_string(), k);
                    }
                }
                let seen = EventKind::PlaylistSeen {
                    media_sequence: m.media_sequence,
                    segments: u32::try_from(m.segments.len()).unwrap_or(u32::MAX),
                    ended: m.ended,
                };
                Ok((RequestKind::Playlist, Some(seen)))
            }
        }
    }
}
