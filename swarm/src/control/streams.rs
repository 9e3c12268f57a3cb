//! Several streams in one run: `--stream URL[=WEIGHT]` (repeatable) or `--streams FILE` (one
//! `URL[=WEIGHT]` per line, `#` comments). Viewers are dealt the streams in turn by weight, as
//! `--variant-mix` deals variant choices, so any run of consecutive viewers as long as the
//! reduced weights' sum holds the exact shares.

use std::path::Path;

use url::Url;

use crate::engine::settings::deal;

/// Most streams in one run: each is a value of the bounded `stream` label in `/metrics`.
pub const MAX_STREAMS: usize = 64;
/// Largest weight of one stream.
pub const MAX_WEIGHT: u32 = 10_000;

/// One stream and its share of the viewers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// Its playlist. Never printed as it is: show it through the run's secrets.
    pub url: Url,
    /// Its weight (1 unless given).
    pub weight: u32,
}

/// The run's streams (one, unless `--stream` or `--streams` named several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streams {
    /// In the order given: stream `i` is index `i` everywhere (rows, report, labels).
    pub list: Vec<Stream>,
    deal: Vec<usize>,
}

impl Streams {
    /// The one stream of a run given a URL.
    #[must_use]
    pub fn one(url: Url) -> Streams {
        Streams { list: vec![Stream { url, weight: 1 }], deal: vec![0] }
    }

    /// Reads `--stream` values and the `--streams` file's lines; `parse_url` checks each URL.
    ///
    /// # Errors
    /// The entry at fault (`FILE:LINE` for a file's) and why: not `URL[=WEIGHT]`, a weight out
    /// of 1..=[`MAX_WEIGHT`], a URL given twice, none at all, or more than [`MAX_STREAMS`].
    pub fn parse(
        values: &[String],
        file: Option<&Path>,
        parse_url: impl Fn(&str) -> Result<Url, String>,
    ) -> Result<Streams, (String, String)> {
        let mut entries: Vec<(String, String)> =
            values.iter().map(|v| (format!("--stream {}", without_userinfo(v)), v.clone())).collect();
        if let Some(path) = file {
            let shown = path.display();
            let text = std::fs::read_to_string(path)
                .map_err(|e| (format!("--streams {shown}"), format!("cannot read it: {e}")))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if !line.is_empty() && !line.starts_with('#') {
                    entries.push((format!("--streams {shown}:{}", n + 1), line.to_owned()));
                }
            }
        }
        if entries.is_empty() {
            let file = file.map(|p| p.display().to_string()).unwrap_or_default();
            return Err((format!("--streams {file}"), "it names no stream".into()));
        }
        if entries.len() > MAX_STREAMS {
            let (at, _) = &entries[MAX_STREAMS];
            return Err((at.clone(), format!("more than {MAX_STREAMS} streams in one run")));
        }
        let mut list: Vec<Stream> = Vec::with_capacity(entries.len());
        for (at, text) in entries {
            let stream = one_stream(&text, &parse_url).map_err(|reason| (at.clone(), reason))?;
            if list.iter().any(|s| s.url == stream.url) {
                return Err((at, "this URL is given twice (give one entry a larger weight instead)".into()));
            }
            list.push(stream);
        }
        let weights: Vec<u32> = list.iter().map(|s| s.weight).collect();
        Ok(Streams { deal: deal(&weights), list })
    }

    /// The stream viewer `id` plays.
    #[must_use]
    pub fn for_viewer(&self, id: u32) -> usize {
        self.deal[id as usize % self.deal.len()]
    }

    /// True with more than one stream (the figures are then also given per stream).
    #[must_use]
    pub fn many(&self) -> bool {
        self.list.len() > 1
    }

    /// The stream of each of `clients` viewers.
    #[must_use]
    pub fn of_viewers(&self, clients: u32) -> Vec<u16> {
        (0..clients).map(|id| u16::try_from(self.for_viewer(id)).unwrap_or(u16::MAX)).collect()
    }
}

/// `text` with a URL's `user:password@` replaced, for messages.
fn without_userinfo(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else { return text.to_owned() };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://<redacted>@{}", &rest[at + 1..]),
        None => text.to_owned(),
    }
}

/// `URL[=WEIGHT]`: a trailing `=DIGITS` is the weight (so a URL whose query ends in `=DIGITS`
/// is given with its weight: `…?id=5=1`).
fn one_stream(text: &str, parse_url: impl Fn(&str) -> Result<Url, String>) -> Result<Stream, String> {
    let (url, weight) = match text.rsplit_once('=') {
        Some((u, w)) if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) => {
            let weight = w
                .parse()
                .ok()
                .filter(|w| (1..=MAX_WEIGHT).contains(w))
                .ok_or_else(|| format!("weight '{w}' is not a whole number from 1 to {MAX_WEIGHT}"))?;
            (u, weight)
        }
        _ => (text, 1),
    };
    Ok(Stream { url: parse_url(url.trim())?, weight })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> Result<Url, String> {
        Url::parse(raw).map_err(|e| format!("invalid URL '{raw}': {e}"))
    }

    fn parse(values: &[&str]) -> Result<Streams, (String, String)> {
        let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        Streams::parse(&values, None, url)
    }

    #[test]
    fn weights_deal_the_viewers() {
        let s = parse(&["http://h/a.m3u8=3", "http://h/b.m3u8", "http://h/c.m3u8?id=5=2"]).unwrap();
        let weights: Vec<u32> = s.list.iter().map(|x| x.weight).collect();
        assert_eq!(weights, [3, 1, 2]);
        assert_eq!(s.list[2].url.as_str(), "http://h/c.m3u8?id=5");
        // Any six consecutive viewers: three of a, one of b, two of c.
        for start in 0..12 {
            let mut n = [0; 3];
            for id in start..start + 6 {
                n[s.for_viewer(id)] += 1;
            }
            assert_eq!(n, [3, 1, 2], "from viewer {start}");
        }
        assert_eq!(s.of_viewers(6).iter().filter(|i| **i == 0).count(), 3);
        assert!(s.many() && !Streams::one(url("http://h/x").unwrap()).many());
    }

    #[test]
    fn bad_entries_are_named() {
        let err = |v: &[&str]| parse(v).unwrap_err();
        assert_eq!(
            err(&["http://h/a.m3u8=0"]),
            ("--stream http://h/a.m3u8=0".into(), "weight '0' is not a whole number from 1 to 10000".into())
        );
        assert!(err(&["http://h/a=1", "http://h/a=2"]).1.contains("given twice"));
        let (at, _) = err(&["http://u:hush@h/a.m3u8=0"]);
        assert_eq!(at, "--stream http://<redacted>@h/a.m3u8=0", "no password in a message");
        assert!(err(&["nope=2"]).1.contains("invalid URL 'nope'"), "{:?}", err(&["nope=2"]));
        let many: Vec<String> = (0..=MAX_STREAMS).map(|i| format!("http://h/{i}.m3u8")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(err(&many).1, "more than 64 streams in one run");
    }

    #[test]
    fn a_file_lists_one_stream_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("streams.txt");
        std::fs::write(&file, "# the ladder\nhttp://h/a.m3u8=2\n\n  http://h/b.m3u8  \nftp://x\n").unwrap();
        let only_http = |raw: &str| {
            url(raw).and_then(|u| if u.scheme() == "http" { Ok(u) } else { Err("not http".into()) })
        };
        let (at, why) = Streams::parse(&[], Some(&file), only_http).unwrap_err();
        assert_eq!((at.ends_with("streams.txt:5"), why.as_str()), (true, "not http"), "{at}");
        std::fs::write(&file, "# the ladder\nhttp://h/a.m3u8=2\n\n  http://h/b.m3u8  \n").unwrap();
        let s = Streams::parse(&["http://h/c.m3u8".into()], Some(&file), url).unwrap();
        let urls: Vec<&str> = s.list.iter().map(|x| x.url.as_str()).collect();
        assert_eq!(urls, ["http://h/c.m3u8", "http://h/a.m3u8", "http://h/b.m3u8"]);
        std::fs::write(&file, "# nothing\n").unwrap();
        assert_eq!(Streams::parse(&[], Some(&file), url).unwrap_err().1, "it names no stream");
        let missing = dir.path().join("missing.txt");
        assert!(Streams::parse(&[], Some(&missing), url).unwrap_err().1.starts_with("cannot read it"));
    }
}
