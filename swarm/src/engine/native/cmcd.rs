//! Common Media Client Data (CTA-5004, `--cmcd header|query`): what a native viewer tells the
//! CDN about itself on every request, so the CDN's logs can be joined with our sessions.
//!
//! Keys sent: `sid` (a random UUID per session), `cid` (the stream: a hash of its URL without
//! the query, the same for every viewer of the run), `sf=h` (HLS), `st` (`l` live, `v` VOD,
//! once known), `ot` (`m` playlist, `i` init section, `k` key, `av` a variant's segment, `a`
//! audio, `tt` subtitles), `br` (the variant's `BANDWIDTH`, kbit/s), `d` (the segment's
//! duration, ms), `bl` (media buffered ahead of the playhead, ms, to 100 ms), `mtp` (the
//! throughput last measured, kbit/s, to 100), `su` (before playback starts). As headers they are
//! split as the standard says (`CMCD-Object`, `CMCD-Request`, `CMCD-Session`); as a query they
//! are one `CMCD` parameter. Keys are sorted; strings are quoted, tokens are not.

use clap::ValueEnum;

use crate::measure::events::RequestKind;

/// How CMCD is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `CMCD-Object`, `CMCD-Request` and `CMCD-Session` request headers
    Header,
    /// One `CMCD=` query parameter
    Query,
}

/// What one session says about itself, and what it knows at the next request.
#[derive(Debug, Clone)]
pub struct Cmcd {
    mode: Mode,
    sid: String,
    cid: String,
    /// The next request's figures, set by the player before it asks.
    pub now: Now,
}

/// The figures of one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Now {
    /// `st`: live (`Some(true)`) or VOD, once a media playlist was read.
    pub live: Option<bool>,
    /// `ot` of a segment: `av`, `a` or `tt`.
    pub media: &'static str,
    /// `br`, kbit/s.
    pub bitrate_kbps: Option<u64>,
    /// `d`, ms (segments only).
    pub duration_ms: Option<u64>,
    /// `bl`, ms.
    pub buffer_ms: Option<u64>,
    /// `mtp`, kbit/s.
    pub throughput_kbps: Option<u64>,
    /// `su`: playback has not started.
    pub startup: bool,
}

impl Cmcd {
    /// A new session's CMCD for the stream at `stream` (shown form, without secrets).
    #[must_use]
    pub fn new(mode: Mode, stream: &url::Url) -> Cmcd {
        let b: [u8; 16] = rand::random();
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        // Version 4, variant 1.
        let sid = format!(
            "{}-{}-4{}-{:x}{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            8 | (b[8] & 0x3),
            &hex[17..20],
            &hex[20..32]
        );
        let mut plain = stream.clone();
        plain.set_query(None);
        let _ = plain.set_password(None);
        let _ = plain.set_username("");
        Cmcd { mode, sid, cid: format!("{:016x}", fnv1a(plain.as_str())), now: Now::default() }
    }

    /// The session id.
    #[must_use]
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The object, request and session keys for a request of `kind`, each list sorted.
    fn keys(&self, kind: RequestKind) -> [Vec<String>; 3] {
        let n = &self.now;
        let ot = match kind {
            RequestKind::Master | RequestKind::Playlist | RequestKind::BlockingReload => "m",
            RequestKind::Init => "i",
            RequestKind::Key => "k",
            RequestKind::Segment | RequestKind::Part if !n.media.is_empty() => n.media,
            RequestKind::Segment | RequestKind::Part | RequestKind::Other => "o",
        };
        let segment = kind.is_media();
        let mut object = vec![format!("ot={ot}")];
        object.extend(
            n.bitrate_kbps.filter(|_| segment || kind == RequestKind::Init).map(|b| format!("br={b}")),
        );
        object.extend(n.duration_ms.filter(|_| segment).map(|d| format!("d={d}")));
        let mut request = Vec::new();
        request.extend(n.buffer_ms.map(|b| format!("bl={}", round_to(b, 100))));
        request.extend(n.throughput_kbps.map(|t| format!("mtp={}", round_to(t, 100))));
        if n.startup {
            request.push("su".to_owned());
        }
        let mut session =
            vec![format!("cid=\"{}\"", self.cid), "sf=h".to_owned(), format!("sid=\"{}\"", self.sid)];
        session.extend(n.live.map(|l| format!("st={}", if l { "l" } else { "v" })));
        for list in [&mut object, &mut request, &mut session] {
            list.sort();
        }
        [object, request, session]
    }

    /// The headers to add to a request of `kind` (header mode), names with their values.
    #[must_use]
    pub fn headers(&self, kind: RequestKind) -> Vec<(&'static str, String)> {
        if self.mode != Mode::Header {
            return Vec::new();
        }
        let names = ["CMCD-Object", "CMCD-Request", "CMCD-Session"];
        names
            .into_iter()
            .zip(self.keys(kind))
            .filter(|(_, k)| !k.is_empty())
            .map(|(n, k)| (n, k.join(",")))
            .collect()
    }

    /// The `CMCD=…` query parameter for a request of `kind` (query mode), encoded.
    #[must_use]
    pub fn query(&self, kind: RequestKind) -> Option<String> {
        if self.mode != Mode::Query {
            return None;
        }
        let mut all: Vec<String> = self.keys(kind).into_iter().flatten().collect();
        all.sort();
        let joined = all.join(",");
        Some(format!("CMCD={}", url::form_urlencoded::byte_serialize(joined.as_bytes()).collect::<String>()))
    }
}

fn round_to(v: u64, step: u64) -> u64 {
    (v + step / 2) / step * step
}

/// FNV-1a, 64 bits: a stable short name for the stream.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmcd(mode: Mode) -> Cmcd {
        let mut c = Cmcd::new(mode, &url::Url::parse("http://u:p@h/live/master.m3u8?token=x").unwrap());
        c.now = Now {
            live: Some(true),
            media: "av",
            bitrate_kbps: Some(2411),
            duration_ms: Some(2000),
            buffer_ms: Some(21_349),
            throughput_kbps: Some(25_449),
            startup: false,
        };
        c
    }

    #[test]
    fn headers_carry_the_keys_as_the_standard_splits_them() {
        let c = cmcd(Mode::Header);
        let sid = c.sid().to_owned();
        assert_eq!(sid.len(), 36);
        assert_eq!(&sid[14..15], "4", "a version 4 UUID: {sid}");
        let cid = format!("{:016x}", fnv1a("http://h/live/master.m3u8"));
        assert_eq!(
            c.headers(RequestKind::Segment),
            [
                ("CMCD-Object", "br=2411,d=2000,ot=av".to_owned()),
                ("CMCD-Request", "bl=21300,mtp=25400".to_owned()),
                ("CMCD-Session", format!("cid=\"{cid}\",sf=h,sid=\"{sid}\",st=l")),
            ]
        );
        let playlist = c.headers(RequestKind::Playlist);
        assert_eq!(playlist[0], ("CMCD-Object", "ot=m".to_owned()), "no bitrate or duration on a playlist");
        assert!(c.query(RequestKind::Segment).is_none());
        assert_ne!(
            Cmcd::new(Mode::Header, &url::Url::parse("http://h/x").unwrap()).sid(),
            sid,
            "one per session"
        );
    }

    #[test]
    fn a_query_is_one_encoded_parameter() {
        let mut c = cmcd(Mode::Query);
        c.now.startup = true;
        c.now.buffer_ms = None;
        let q = c.query(RequestKind::Init).unwrap();
        let decoded: String =
            url::form_urlencoded::parse(q.as_bytes()).map(|(k, v)| format!("{k}={v}")).collect();
        let sid = c.sid().to_owned();
        assert_eq!(
            decoded,
            format!("CMCD=br=2411,cid=\"{}\",mtp=25400,ot=i,sf=h,sid=\"{sid}\",st=l,su", c.cid)
        );
        assert!(c.headers(RequestKind::Init).is_empty());
    }
}
