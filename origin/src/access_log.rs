//! Parser for the access log of the `logged` and `debug` profiles (`log_format hls_timing`):
//!
//! ```text
//! $msec $remote_addr "$request" $status $body_bytes_sent rt=$request_time conn=$connection reqs=$connection_requests "$http_user_agent"
//! ```
//!
//! The lab cross-checks the swarm's counts against it: every request with its status, bytes,
//! time on the server and user agent (the swarm's viewers say `viewer/N` there).

/// One logged request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// When nginx finished it, seconds since the Unix epoch (millisecond resolution).
    pub time: f64,
    /// Client address.
    pub remote: String,
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// Protocol of the request line (`HTTP/1.1`, `HTTP/2.0`).
    pub protocol: String,
    /// Path with query, as requested.
    pub path: String,
    /// Response status.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// Seconds from the first request byte to the last response byte written.
    pub request_time: f64,
    /// nginx's connection serial number.
    pub connection: u64,
    /// Requests so far on that connection (1 for the first).
    pub connection_requests: u64,
    /// `User-Agent`, unescaped.
    pub user_agent: String,
}

impl Request {
    /// The last path segment, without a query string.
    fn file_name(&self) -> &str {
        let path = self.path.split('?').next().unwrap_or_default();
        path.rsplit('/').next().unwrap_or(path)
    }

    /// True for whole media segments: `.ts`, `.m4s`, and the `ll-hls` profile's `segN.mp4`
    /// (ignoring a query string).
    #[must_use]
    pub fn is_segment(&self) -> bool {
        let n = self.file_name();
        n.ends_with(".ts") || n.ends_with(".m4s") || (n.starts_with("seg") && n.ends_with(".mp4"))
    }

    /// True for the `ll-hls` profile's partial segments, `partM.N.mp4`.
    #[must_use]
    pub fn is_part(&self) -> bool {
        let n = self.file_name();
        n.starts_with("part") && n.ends_with(".mp4")
    }

    /// True for an initialisation section (`EXT-X-MAP`): the `ll-hls` profile's `init.mp4`.
    #[must_use]
    pub fn is_init(&self) -> bool {
        self.file_name() == "init.mp4"
    }

    /// True for `.m3u8` paths (ignoring a query string).
    #[must_use]
    pub fn is_playlist(&self) -> bool {
        self.path.split('?').next().is_some_and(|p| p.ends_with(".m3u8"))
    }
}

/// nginx writes `"` and `\` and non-printable bytes in variables as `\xHH`.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            if let Some(b) = s.get(i + 2..i + 4).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Takes a `"quoted"` field off the front of `s` (nginx escapes inner quotes, so the next
/// `"` ends it).
fn quoted(s: &str) -> Option<(&str, &str)> {
    let rest = s.trim_start().strip_prefix('"')?;
    let end = rest.find('"')?;
    Some((&rest[..end], &rest[end + 1..]))
}

fn word(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    let end = s.find(' ').unwrap_or(s.len());
    (end > 0).then(|| (&s[..end], &s[end..]))
}

fn tagged<'a>(s: &'a str, tag: &str) -> Option<(&'a str, &'a str)> {
    let (w, rest) = word(s)?;
    Some((w.strip_prefix(tag)?, rest))
}

/// Parses one line; `None` if it is not in the `hls_timing` format.
#[must_use]
pub fn parse_line(line: &str) -> Option<Request> {
    let (time, rest) = word(line)?;
    let (remote, rest) = word(rest)?;
    let (request, rest) = quoted(rest)?;
    let (status, rest) = word(rest)?;
    let (bytes, rest) = word(rest)?;
    let (rt, rest) = tagged(rest, "rt=")?;
    let (conn, rest) = tagged(rest, "conn=")?;
    let (reqs, rest) = tagged(rest, "reqs=")?;
    let (agent, _) = quoted(rest)?;
    let request = unescape(request);
    let mut parts = request.split(' ');
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let protocol = parts.next().unwrap_or_default().to_owned();
    Some(Request {
        protocol,
        time: time.parse().ok()?,
        remote: remote.to_owned(),
        method,
        path,
        status: status.parse().ok()?,
        bytes: bytes.parse().ok()?,
        request_time: rt.parse().ok()?,
        connection: conn.parse().ok()?,
        connection_requests: reqs.parse().ok()?,
        user_agent: unescape(agent),
    })
}

/// Parses every line of `text` (split on `\r` and `\n`); lines in another format are skipped.
#[must_use]
pub fn parse(text: &str) -> Vec<Request> {
    text.split(['\r', '\n']).filter(|l| !l.trim().is_empty()).filter_map(parse_line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from `hls-origin serve --profile logged` with curl requests.
    const CAPTURED: &str = include_str!("../testdata/access.log");

    #[test]
    fn parses_a_captured_log() {
        let reqs = parse(CAPTURED);
        assert_eq!(reqs.len(), CAPTURED.lines().count(), "every line parses");
        let seg = reqs.iter().find(|r| r.path == "/seg00001.ts" && r.method == "GET").unwrap();
        assert_eq!((seg.status, seg.bytes, seg.connection_requests), (200, 127_276, 3));
        assert_eq!(seg.user_agent, "hls-swarm/0.1.0 viewer/3");
        assert_eq!(seg.protocol, "HTTP/1.1");
        assert!(seg.is_segment() && !seg.is_playlist());
        assert!(seg.time > 1.7e9);
        let odd = reqs.iter().find(|r| r.status == 404).unwrap();
        assert_eq!(odd.user_agent, r#"odd "agent" \ x"#);
        let q = reqs.iter().find(|r| r.path.contains('?')).unwrap();
        assert!(q.is_playlist());
        assert_eq!(reqs.iter().filter(|r| r.method == "OPTIONS").count(), 1);
    }

    #[test]
    fn rejects_other_formats() {
        assert_eq!(parse_line("127.0.0.1 - - [21/Nov/2026] \"GET / HTTP/1.1\" 200 5"), None);
        assert_eq!(parse("garbage\r\n\r\n"), Vec::new());
    }
}
