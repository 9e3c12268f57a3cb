//! What must never leave the swarm process: the stream URL's user and password, the values of
//! its secret query parameters, and the values of secret request headers. Everything the swarm
//! prints or stores passes through [`Secrets::text`] or shows URLs with [`Secrets::url`]; with
//! the relay, FFmpeg is given [`Secrets::public_url`] and no secret header, and the relay puts
//! them back on the way to the origin ([`UpstreamSecrets`]).

use std::borrow::Cow;

use base64::Engine as _;
use url::Url;

use crate::engine::settings::Header;

/// Header names that carry secrets: any name containing one of these (case-insensitive).
const SECRET_HEADER_HINTS: [&str; 7] =
    ["authorization", "cookie", "token", "secret", "api-key", "apikey", "key"];
/// Query parameter names that carry secrets: any name containing one of these.
const SECRET_PARAM_HINTS: [&str; 8] =
    ["token", "key", "sig", "auth", "pass", "secret", "credential", "session"];
/// What a secret is replaced with.
pub const REDACTED: &str = "<redacted>";
/// Values shorter than this are not searched for in free text (they would match by chance);
/// they are still removed from URLs and headers.
const MIN_TEXT_SECRET: usize = 4;

/// The run's secrets and how to hide them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// Secret values, longest first.
    values: Vec<String>,
    /// Extra query parameter names to treat as secret (`--redact-param`), lowercase.
    params: Vec<String>,
}

/// What the relay adds to requests on their way to the origin, so FFmpeg's argv needs none
/// of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamSecrets {
    /// The stream URL as FFmpeg requests it (without user, password and secret parameters).
    pub public_entry: String,
    /// The stream URL's origin-form target with its secret parameters (`/path?token=…`).
    pub entry_target: String,
    /// `host:port` of the stream URL, which gets `basic`.
    pub authority: (String, u16),
    /// `Authorization: Basic …` value from the URL's user and password.
    pub basic: Option<String>,
    /// Secret headers, added to every request.
    pub headers: Vec<Header>,
}

/// True for a header whose value is secret (`Authorization`, `Cookie`, `X-Api-Token`, …).
#[must_use]
pub fn is_secret_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_HEADER_HINTS.iter().any(|hint| lower.contains(hint))
}

impl Secrets {
    /// The secrets of a run against `url` with `headers`; `params` are extra secret query
    /// parameter names (`--redact-param`).
    #[must_use]
    pub fn new(url: &Url, headers: &[Header], params: &[String]) -> Secrets {
        let mut s =
            Secrets { values: Vec::new(), params: params.iter().map(|p| p.to_ascii_lowercase()).collect() };
        let mut raw: Vec<String> = Vec::new();
        for h in headers.iter().filter(|h| is_secret_header(&h.name)) {
            raw.push(h.value.clone());
            // `Bearer abc`: the token alone may be echoed too.
            if let Some((_, token)) = h.value.split_once(' ') {
                raw.push(token.trim().to_owned());
            }
        }
        s.add(raw);
        s.and_urls([url])
    }

    /// These secrets and those of `urls` (the other streams of a run).
    #[must_use]
    pub fn and_urls<'a>(mut self, urls: impl IntoIterator<Item = &'a Url>) -> Secrets {
        for url in urls {
            let mut raw: Vec<String> = vec![url.username().to_owned()];
            raw.extend(url.password().map(str::to_owned));
            raw.extend(
                url.query_pairs().filter(|(k, _)| self.is_secret_param(k)).map(|(_, v)| v.into_owned()),
            );
            self.add(raw);
        }
        self
    }

    /// Adds secret values, as given and percent-decoded, keeping the longest first.
    fn add(&mut self, raw: Vec<String>) {
        for v in raw {
            let decoded = percent_decode(&v);
            for form in [v, decoded] {
                if !form.is_empty() && !self.values.contains(&form) {
                    self.values.push(form);
                }
            }
        }
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// True for a query parameter whose value is secret.
    #[must_use]
    pub fn is_secret_param(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        self.params.contains(&lower) || SECRET_PARAM_HINTS.iter().any(|hint| lower.contains(hint))
    }

    /// True if there is anything to hide.
    #[must_use]
    pub fn any(&self) -> bool {
        !self.values.is_empty()
    }

    /// `url` for display: user and password replaced, secret parameters' values replaced.
    #[must_use]
    pub fn url(&self, url: &Url) -> String {
        let mut shown = self.strip(url, true);
        if !url.username().is_empty() || url.password().is_some() {
            let _ = shown.set_username(REDACTED);
        }
        // `<`, `>` are escaped in a URL's user; show the marker as written.
        shown.to_string().replace("%3Credacted%3E", REDACTED)
    }

    /// `url` as FFmpeg requests it through the relay: no user, no password, no secret
    /// parameters.
    #[must_use]
    pub fn public_url(&self, url: &Url) -> Url {
        self.strip(url, false)
    }

    fn strip(&self, url: &Url, mark: bool) -> Url {
        let mut out = url.clone();
        let _ = out.set_username("");
        let _ = out.set_password(None);
        if url.query().is_some() {
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter_map(|(k, v)| match (self.is_secret_param(&k), mark) {
                    (false, _) => Some((k.into_owned(), v.into_owned())),
                    (true, true) => Some((k.into_owned(), REDACTED.to_owned())),
                    (true, false) => None,
                })
                .collect();
            if kept.is_empty() {
                out.set_query(None);
            } else {
                out.query_pairs_mut().clear().extend_pairs(kept);
            }
        }
        out
    }

    /// `text` with every secret value replaced by [`REDACTED`].
    #[must_use]
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for v in self.values.iter().filter(|v| v.len() >= MIN_TEXT_SECRET) {
            if out.contains(v.as_str()) {
                out = Cow::Owned(out.replace(v.as_str(), REDACTED));
            }
        }
        out
    }

    /// What the relay adds upstream for a run against `url` with `headers`.
    #[must_use]
    pub fn upstream(&self, url: &Url, headers: &[Header]) -> UpstreamSecrets {
        let public = self.public_url(url);
        let mut entry_target = url.path().to_owned();
        if let Some(q) = url.query() {
            entry_target.push('?');
            entry_target.push_str(q);
        }
        let basic = (!url.username().is_empty() || url.password().is_some()).then(|| {
            let user = percent_decode(url.username());
            let pass = url.password().map(percent_decode).unwrap_or_default();
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
        });
        UpstreamSecrets {
            public_entry: public.to_string(),
            entry_target,
            authority: (
                url.host_str().unwrap_or_default().to_owned(),
                url.port_or_known_default().unwrap_or(80),
            ),
            basic,
            headers: headers.iter().filter(|h| is_secret_header(&h.name)).cloned().collect(),
        }
    }
}

/// A writer that hides the run's secrets from every line written through it (lines are held
/// until their end, or until a flush).
#[derive(Debug)]
pub struct RedactingWriter<W: std::io::Write> {
    inner: W,
    secrets: Secrets,
    pending: Vec<u8>,
}

impl<W: std::io::Write> RedactingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W, secrets: Secrets) -> Self {
        RedactingWriter { inner, secrets, pending: Vec::new() }
    }

    fn emit(&mut self, upto: usize) -> std::io::Result<()> {
        let chunk: Vec<u8> = self.pending.drain(..upto).collect();
        let text = String::from_utf8_lossy(&chunk);
        self.inner.write_all(self.secrets.text(&text).as_bytes())
    }
}

impl<W: std::io::Write> std::io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(end) = self.pending.iter().rposition(|b| *b == b'\n') {
            self.emit(end + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let all = self.pending.len();
        self.emit(all)?;
        self.inner.flush()
    }
}

impl<W: std::io::Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &str) -> Header {
        Header { name: name.into(), value: value.into() }
    }

    #[test]
    fn secrets_are_found_in_the_url_and_headers_and_hidden_everywhere() {
        let url = Url::parse(
            "http://alice:S3CRET%2BPW@cdn.example:8080/live/master.m3u8?token=tok123&q=1&Sig=abcd",
        )
        .unwrap();
        let headers = [header("Authorization", "Bearer bearer-xyz"), header("X-Trace", "visible")];
        let s = Secrets::new(&url, &headers, &["q".into()]);
        assert_eq!(
            s.url(&url),
            "http://<redacted>@cdn.example:8080/live/master.m3u8?token=<redacted>&q=<redacted>&Sig=<redacted>"
        );
        assert_eq!(s.public_url(&url).as_str(), "http://cdn.example:8080/live/master.m3u8");
        let line = "GET http://alice:S3CRET+PW@cdn.example:8080/a.ts?token=tok123 with bearer-xyz, visible";
        assert_eq!(s.text(line), "GET http://<redacted>:<redacted>@cdn.example:8080/a.ts?token=<redacted> with <redacted>, visible");
        let up = s.upstream(&url, &headers);
        assert_eq!(up.public_entry, "http://cdn.example:8080/live/master.m3u8");
        assert_eq!(up.entry_target, "/live/master.m3u8?token=tok123&q=1&Sig=abcd");
        assert_eq!(up.authority, ("cdn.example".to_owned(), 8080));
        // base64("alice:S3CRET+PW")
        assert_eq!(up.basic.as_deref(), Some("Basic YWxpY2U6UzNDUkVUK1BX"));
        assert_eq!(up.headers, [header("Authorization", "Bearer bearer-xyz")]);
    }

    #[test]
    fn the_writer_hides_secrets_line_by_line() {
        let url = Url::parse("http://h/x.m3u8?token=tok123").unwrap();
        let s = Secrets::new(&url, &[], &[]);
        let mut out = Vec::new();
        {
            let mut w = RedactingWriter::new(&mut out, s);
            std::io::Write::write_all(&mut w, b"one tok").unwrap();
            std::io::Write::write_all(&mut w, b"123 two\nthree tok123").unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "one <redacted> two\nthree <redacted>");
    }

    #[test]
    fn a_url_without_secrets_is_shown_as_it_is() {
        let url = Url::parse("http://h/x.m3u8?v=2").unwrap();
        let s = Secrets::new(&url, &[header("X-Trace", "visible")], &[]);
        assert!(!s.any());
        assert_eq!(s.url(&url), "http://h/x.m3u8?v=2");
        assert_eq!(s.public_url(&url), url);
        assert_eq!(s.text("anything at all"), "anything at all");
    }
}
