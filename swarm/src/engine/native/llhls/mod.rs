//! Low-Latency HLS in the native player: what hls.js with `lowLatencyMode` or AVPlayer do on
//! the network, without decoding.
//!
//! # Theory of operation
//!
//! A track switches to LL-HLS when its media playlist has `EXT-X-SERVER-CONTROL` with
//! `CAN-BLOCK-RELOAD=YES` and parts ([`window::is_low_latency`]). It joins `PART-HOLD-BACK`
//! from the live edge at an independent part ([`Window::join`]), downloads the init section
//! once, then loops:
//!
//! 1. downloads what the playlist lists past its cursor, as parts (a whole segment only when
//!    none of it was fetched and its parts are no longer listed: [`Window::plan`]);
//! 2. asks for the `EXT-X-PRELOAD-HINT` part when it is the next one it needs: the origin
//!    holds the request until the part exists, so the part arrives as it is made;
//! 3. at the same time (a second connection over HTTP/1.1, the same one multiplexed over
//!    HTTP/2, as a browser sends hls.js's two loaders' requests), reloads the
//!    playlist blocking (`_HLS_msn`/`_HLS_part` of the hinted part, as hls.js asks), with
//!    `_HLS_skip=YES` when `CAN-SKIP-UNTIL` allows and it has a playlist to merge the delta
//!    update into ([`Window::merge`]). The origin holds both: two requests per viewer.
//!
//! With `--variant abr`, the parts of each segment are one throughput sample for the
//! [`abr::Ladder`], and the choice is made as a segment ends (where the other renditions
//! have an independent part). A switch joins the new rendition where the current
//! playlist's `EXT-X-RENDITION-REPORT` says it is: one blocking reload for its reported
//! last part, answered at once, then parts from the next segment, as hls.js does; without a
//! report, a plain load of the new playlist.
//!
//! Every exchange is an event like any other request: parts are [`RequestKind::Part`] (with
//! their duration and program date-time, so the fold's player model measures stalls and the
//! live-edge latency from the newest part), blocking reloads [`RequestKind::BlockingReload`]
//! (their time to first byte is how long the origin held them). Playback begins at
//! [`Window::live_point`], `PART-HOLD-BACK` from the edge, as hls.js seeks there: the parts
//! from the independent part to it are downloaded and reported without a media duration, so
//! the player model does not play them. A hinted part's event waits
//! for the next playlist, which says its duration, and is stamped with its arrival. What the
//! origin does wrong is reported as [`Violation`]s.

pub mod window;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use url::Url;

use crate::engine::native::abr;
use crate::engine::native::context::{fetch, pause, Ctx, PLAYLIST_TRIES};
use crate::engine::native::http::{Client, Fetched};
use crate::measure::events::{EventKind, LowLatency, Problem, Request, RequestKind, Violation};
use kit::playlist::{self, ByteRange, Media, Playlist};
pub use window::{is_low_latency, Fetch, Hints, Listed, MergeError, PartId, Window};

/// The playlist URL with the delivery directives for `want` (none: a plain load) and a delta
/// update if `skip`, in place of any the URL had; its other query parameters are kept.
#[must_use]
pub fn reload_url(base: &Url, want: Option<Want>, skip: bool) -> Url {
    let kept: Vec<(String, String)> = base
        .query_pairs()
        .filter(|(k, _)| !k.starts_with("_HLS_"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut url = base.clone();
    url.set_query(None);
    if !kept.is_empty() || want.is_some() || skip {
        let mut q = url.query_pairs_mut();
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        if let Some(w) = want {
            q.append_pair("_HLS_msn", &w.msn.to_string());
            if let Some(part) = w.part {
                q.append_pair("_HLS_part", &part.to_string());
            }
        }
        if skip {
            q.append_pair("_HLS_skip", "YES");
        }
    }
    url
}

/// What a blocking reload asks for: segment `msn`, and its part `part` (`None`: the whole
/// segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// `_HLS_msn`.
    pub msn: u64,
    /// `_HLS_part`.
    pub part: Option<u32>,
}

impl From<PartId> for Want {
    fn from(p: PartId) -> Want {
        Want { msn: p.msn, part: Some(p.part) }
    }
}

/// Plays the LL-HLS media playlist at `url`, whose first load is `first`, until the stop
/// (`Ok`), its end (`Ok`) or [`PLAYLIST_TRIES`] failed reloads in a row (`Err`). `ladder`:
/// `--variant abr`, the variants it switches between.
pub async fn play(
    ctx: &Ctx,
    client: &mut Client,
    url: Url,
    first: &Media,
    (bandwidth, ladder): (Option<u64>, Option<abr::Ladder>),
    stop: &CancellationToken,
) -> Result<(), String> {
    let mut v = Viewer {
        ctx,
        client,
        second: None,
        url,
        bandwidth,
        map: None,
        parted: BTreeSet::new(),
        hints: Hints::default(),
        live_point: PartId::new(0, 0),
        ladder,
        sample: Sample::default(),
    };
    v.run(first, stop).await
}

/// `--variant abr`: the downloads of one segment's parts, as one throughput sample.
#[derive(Debug, Default)]
struct Sample {
    /// The segment.
    msn: u64,
    /// Bytes that arrived whole, and their time from first to last byte (a held part's wait
    /// for the origin is not throughput).
    bytes: u64,
    time: Duration,
    /// A part of it could not be had.
    failed: bool,
}

/// A hinted part fetched, waiting for the playlist that says its duration.
struct Hinted {
    fetched: Fetched,
    arrived: Instant,
    uri: String,
}

/// How a reload went.
enum Reloaded {
    Stopped,
    Failed(String),
    Got(Box<Media>),
}

struct Viewer<'a, 'c> {
    ctx: &'a Ctx,
    client: &'c mut Client,
    /// The connection blocking reloads go on while a hinted part is held on `client`.
    second: Option<Client>,
    url: Url,
    bandwidth: Option<u64>,
    /// The init section last fetched.
    map: Option<Url>,
    /// Segments some part of which was fetched (those still in the window).
    parted: BTreeSet<u64>,
    hints: Hints,
    /// Where playback began: parts before it were fetched to decode from, then sought past.
    live_point: PartId,
    /// `--variant abr`: the ladder, and the sample of the segment being fetched.
    ladder: Option<abr::Ladder>,
    sample: Sample,
}

impl Viewer<'_, '_> {
    fn violation(&self, v: Violation) {
        self.ctx.sink.send(self.ctx.id, EventKind::LowLatency(LowLatency::Violation(v)));
    }

    async fn run(&mut self, first: &Media, stop: &CancellationToken) -> Result<(), String> {
        let shown = self.ctx.secrets.url(&self.url);
        let mut window = Window::merge(None, first).map_err(|e| format!("{shown}: {e}"))?;
        self.ctx.sink.send(self.ctx.id, EventKind::LowLatency(LowLatency::Joined));
        if window.hold_back_short() {
            self.violation(Violation::HoldBackShort);
        }
        let mut loaded = Instant::now();
        let mut cursor = window.join();
        self.live_point = window.live_point();
        let (mut failures, mut plain) = (0, false);
        loop {
            let (plan, next) = window.plan(cursor);
            // `--variant abr`, where a segment begins: the rendition to go on with, and where
            // its report says it is (`Some(None)`: no report, a plain load).
            let mut switched = None;
            for f in plan {
                if stop.is_cancelled() {
                    return Ok(());
                }
                let begins = match &f {
                    Fetch::Part(p) if p.id.part == 0 => Some(p.id.msn),
                    Fetch::Segment(s) => Some(s.msn),
                    _ => None,
                };
                if let Some(msn) = begins {
                    switched = self.adapt(&window, msn);
                    if switched.is_some() {
                        cursor = PartId::new(msn, 0);
                        break;
                    }
                }
                match f {
                    Fetch::Part(p) => self.part(&window, p, stop).await,
                    Fetch::Segment(s) => {
                        if self.parted.contains(&s.msn) {
                            self.violation(Violation::SegmentAfterParts);
                        }
                        self.init(&window, s.msn, stop).await;
                        let r = (s.byte_range, Some(s.duration), s.program_time);
                        self.media(s.msn, &s.uri, RequestKind::Segment, r, stop).await;
                    }
                    Fetch::Abandon(_) => {
                        self.ctx.sink.send(self.ctx.id, EventKind::Problem(Problem::SegmentSkipped))
                    }
                }
            }
            if switched.is_none() {
                cursor = next;
            }
            self.parted.retain(|m| *m >= window.first);
            if stop.is_cancelled() || window.ended {
                return Ok(());
            }
            if switched.is_none() && cursor.part == 0 {
                switched = self.adapt(&window, cursor.msn);
            }
            // The hinted part, when it is the next one needed: held by the origin until it exists.
            let hint = window.hint.clone().filter(|_| window.next_part() == cursor && switched.is_none());
            let hint = hint.and_then(|uri| {
                self.hints.expect(&uri, cursor);
                self.resolve(&uri).map(|u| (uri, u))
            });
            if hint.is_some() {
                self.init(&window, cursor.msn, stop).await;
            }
            if stop.is_cancelled() {
                return Ok(());
            }
            // After a switch: the new rendition whole (no delta: there is nothing to merge it
            // into), blocking for the part its report gave. Else the next part: the hinted one,
            // so the playlist that lists it comes back with it, as hls.js asks.
            let (want, skip) = match switched {
                Some(reported) => (reported, false),
                None => (
                    (!plain).then(|| Want::from(cursor.max(window.next_part()))),
                    !plain && window.may_skip(loaded.elapsed().as_secs_f64()),
                ),
            };
            let target = reload_url(&self.url, want, skip);
            let kind = if want.is_some() { RequestKind::BlockingReload } else { RequestKind::Playlist };
            let (hinted, (outcome, f)) = match hint {
                // Both at once, each on its own connection, as hls.js sends them.
                Some((uri, u)) => {
                    let second = self.second.get_or_insert_with(|| self.client.another());
                    let part = async {
                        let (f, _) =
                            fetch(self.ctx, self.client, &u, RequestKind::Part, None, None, stop).await;
                        (f, Instant::now())
                    };
                    let ((fetched, arrived), reloaded) =
                        tokio::join!(part, reload(self.ctx, second, &target, kind, stop));
                    (Some(Hinted { fetched, arrived, uri }), reloaded)
                }
                None => (None, reload(self.ctx, self.client, &target, kind, stop).await),
            };
            if let Some(h) = &hinted {
                self.learn(cursor.msn, &h.fetched.request, stop);
                if h.fetched.request.complete_ok() {
                    self.parted.insert(cursor.msn);
                    cursor = cursor.after();
                }
            }
            let held = f.as_ref().map(|f| f.request.ttfb.unwrap_or(f.request.elapsed));
            let media = match outcome {
                Reloaded::Stopped => {
                    self.hinted(hinted, None);
                    self.report(f);
                    return Ok(());
                }
                Reloaded::Failed(e) => {
                    self.hinted(hinted, None);
                    self.report(f);
                    if kind == RequestKind::BlockingReload && held.is_some_and(|h| h > limit(&window)) {
                        self.violation(Violation::HeldTooLong);
                    }
                    failures += 1;
                    if failures >= PLAYLIST_TRIES {
                        return Err(e);
                    }
                    // Recover as a player does: a plain load, a second later.
                    plain = true;
                    if pause(Duration::from_secs(1), stop).await {
                        return Ok(());
                    }
                    continue;
                }
                Reloaded::Got(m) => m,
            };
            failures = 0;
            let new = match Window::merge(Some(&window), &media) {
                Ok(w) => w,
                Err(e) => {
                    self.hinted(hinted, None);
                    self.report(f);
                    let text = format!("{}: {e}: loading it whole", self.ctx.secrets.url(&self.url));
                    self.ctx.sink.send(self.ctx.id, EventKind::Problem(Problem::Unreadable(text)));
                    plain = true;
                    continue;
                }
            };
            // The hinted part first: it arrived as the reload was answered (the origin answers
            // both once the part exists), and is stamped with its own arrival.
            self.hinted(hinted, Some(&new));
            self.report(f);
            self.playlist_seen(&media);
            if kind == RequestKind::BlockingReload {
                if held.is_some_and(|h| h > limit(&window)) {
                    self.violation(Violation::HeldTooLong);
                }
                if want.is_some_and(|w| !new.contains(w.msn, w.part)) {
                    self.violation(Violation::EarlyReload);
                }
            }
            // Another rendition's numbering and hints are not this one's to compare.
            if switched.is_none() {
                if new.went_backwards(&window) {
                    self.violation(Violation::NumberingBackwards);
                }
                for _ in 0..self.hints.check(&new) {
                    self.violation(Violation::HintMissing);
                }
            }
            let progressed =
                new.last_part() != window.last_part() || new.pending_msn() != window.pending_msn();
            let part_target = new.part_target.unwrap_or(new.target / 4.0).clamp(0.05, 10.0);
            (window, loaded, plain) = (new, Instant::now(), false);
            // An origin that answers without waiting is not asked again at once.
            if !progressed
                && switched.is_none()
                && pause(Duration::from_secs_f64(part_target / 2.0), stop).await
            {
                return Ok(());
            }
        }
    }

    fn resolve(&self, uri: &str) -> Option<Url> {
        match playlist::resolve(&self.url, uri) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
            _ => {
                let text = format!(
                    "{}: URI '{}' not requested: not an http(s) URL",
                    self.ctx.secrets.url(&self.url),
                    self.ctx.secrets.text(uri)
                );
                self.ctx.sink.send(self.ctx.id, EventKind::Problem(Problem::Unreadable(text)));
                None
            }
        }
    }

    /// The init section of segment `msn`, once.
    async fn init(&mut self, window: &Window, msn: u64, stop: &CancellationToken) {
        let Some((uri, range)) = window.map_of(msn).cloned() else { return };
        let Some(u) = self.resolve(&uri) else { return };
        if self.map.as_ref() == Some(&u) {
            return;
        }
        let (mut f, _) = fetch(self.ctx, self.client, &u, RequestKind::Init, range, None, stop).await;
        f.request.variant_bandwidth = self.bandwidth;
        self.report(Some(f));
        self.map = Some(u);
    }

    /// A listed part.
    async fn part(&mut self, window: &Window, p: &Listed, stop: &CancellationToken) {
        if p.gap {
            return;
        }
        self.init(window, p.id.msn, stop).await;
        // Before the live point: downloaded, not played (no duration for the player model).
        let duration = (p.id >= self.live_point).then_some(p.duration);
        let listed = (p.byte_range, duration, p.program_time);
        if self.media(p.id.msn, &p.uri, RequestKind::Part, listed, stop).await {
            self.parted.insert(p.id.msn);
        }
    }

    /// A part or segment of segment `msn` with its duration and program time; true if it
    /// arrived whole.
    async fn media(
        &mut self,
        msn: u64,
        uri: &str,
        kind: RequestKind,
        (range, duration, program_time): (Option<ByteRange>, Option<f64>, Option<f64>),
        stop: &CancellationToken,
    ) -> bool {
        let Some(u) = self.resolve(uri) else { return false };
        let (mut f, _) = fetch(self.ctx, self.client, &u, kind, range, None, stop).await;
        f.request.media_duration = duration;
        f.request.program_date_time = program_time;
        f.request.variant_bandwidth = self.bandwidth;
        let ok = f.request.complete_ok();
        self.learn(msn, &f.request, stop);
        if f.request.status == Some(404) {
            self.violation(Violation::AdvertisedMissing);
        }
        self.report(Some(f));
        ok
    }

    /// `--variant abr`: adds a download of segment `msn` to its throughput sample.
    fn learn(&mut self, msn: u64, r: &Request, stop: &CancellationToken) {
        if self.ladder.is_none() || stop.is_cancelled() {
            return;
        }
        if msn != self.sample.msn {
            self.flush();
            self.sample = Sample { msn, ..Sample::default() };
        }
        if r.complete_ok() {
            let last = r.ttlb.unwrap_or(r.elapsed);
            self.sample.bytes += r.bytes;
            self.sample.time += last.saturating_sub(r.ttfb.unwrap_or_default());
        } else {
            self.sample.failed = true;
        }
    }

    /// Feeds the sample to the estimate; whether it had anything in it and whether some of
    /// it failed.
    fn flush(&mut self) -> Option<bool> {
        let s = std::mem::take(&mut self.sample);
        let ladder = self.ladder.as_mut()?;
        if s.bytes > 0 {
            ladder.estimator.sample(s.bytes, s.time);
        }
        (s.bytes > 0 || s.failed).then_some(s.failed)
    }

    /// `--variant abr`, where segment `next` begins: when the estimate (or a failed part) says
    /// so, switches to another rendition and returns the reload that joins it, from
    /// `window`'s rendition report for it (`Some(None)`: no report, a plain load).
    fn adapt(&mut self, window: &Window, next: u64) -> Option<Option<Want>> {
        if self.ladder.is_none() || self.sample.msn >= next {
            return None;
        }
        let failed = self.flush();
        self.sample.msn = next;
        let to = self.ladder.as_mut()?.choose(failed?)?;
        let reported = window.reported(&self.url, &to.url);
        let want = reported.map(|(msn, part)| Want { msn, part: part.and_then(|p| u32::try_from(p).ok()) });
        self.url = to.url;
        self.bandwidth = Some(to.to);
        self.parted.clear();
        self.hints = Hints::default();
        self.ctx.sink.send(self.ctx.id, EventKind::VariantSwitch { from: to.from, to: to.to });
        let joined = LowLatency::Switched { from_report: want.is_some() };
        self.ctx.sink.send(self.ctx.id, EventKind::LowLatency(joined));
        Some(want)
    }

    /// Reports a hinted part's exchange, stamped when it ended, with its duration and program
    /// time from `window` when it lists the part.
    fn hinted(&self, hinted: Option<Hinted>, window: Option<&Window>) {
        let Some(Hinted { mut fetched, arrived, uri }) = hinted else { return };
        if !fetched.sent {
            return;
        }
        if let Some(p) = window.and_then(|w| w.parts().find(|p| p.uri == uri)) {
            fetched.request.media_duration = Some(p.duration);
            fetched.request.program_date_time = p.program_time;
        }
        fetched.request.variant_bandwidth = self.bandwidth;
        self.ctx.sink.send_at(self.ctx.id, arrived, EventKind::Request(fetched.request));
    }

    fn report(&self, f: Option<Fetched>) {
        if let Some(f) = f.filter(|f| f.sent) {
            self.ctx.sink.send(self.ctx.id, EventKind::Request(f.request));
        }
    }

    fn playlist_seen(&self, m: &Media) {
        let segments = m.segments.len() as u64 + m.skipped_segments.unwrap_or(0);
        self.ctx.sink.send(
            self.ctx.id,
            EventKind::PlaylistSeen {
                media_sequence: m.media_sequence,
                segments: u32::try_from(segments).unwrap_or(u32::MAX),
                ended: m.ended,
            },
        );
    }
}

/// One reload of `target` on `client`; its exchange is returned unreported (the caller
/// reports it after the hinted part that went with it).
async fn reload(
    ctx: &Ctx,
    client: &mut Client,
    target: &Url,
    kind: RequestKind,
    stop: &CancellationToken,
) -> (Reloaded, Option<Fetched>) {
    let keep = Some(ctx.limits.playlist_bytes);
    let (mut f, found) = fetch(ctx, client, target, kind, None, keep, stop).await;
    let shown = ctx.secrets.url(&found);
    if stop.is_cancelled() {
        return (Reloaded::Stopped, Some(f));
    }
    let outcome = if let Some(e) = &f.request.network_error {
        Reloaded::Failed(format!("{shown}: {e}"))
    } else if f.too_large {
        Reloaded::Failed(format!(
            "playlist {shown} is larger than {} bytes: not read",
            ctx.limits.playlist_bytes
        ))
    } else if let Some(status) = f.request.status.filter(|s| !(200..300).contains(s)) {
        Reloaded::Failed(format!("{shown}: HTTP {status}"))
    } else {
        let body = f.body.take().unwrap_or_default();
        match std::str::from_utf8(&body).ok().map(|t| playlist::parse_within(t, ctx.limits.playlist)) {
            Some(Ok(Playlist::Media(m))) => Reloaded::Got(Box::new(m)),
            Some(Ok(Playlist::Master(_))) => {
                Reloaded::Failed(format!("{shown}: a master playlist where a media playlist was expected"))
            }
            Some(Err(e)) => Reloaded::Failed(format!(
                "{shown} is not a usable HLS playlist: {}",
                crate::engine::limits::explain(&e)
            )),
            None => Reloaded::Failed(format!("{shown} is not a usable HLS playlist: not UTF-8 text")),
        }
    };
    (outcome, Some(f))
}

/// How long a blocking reload may be held: three target durations (RFC 8216bis §6.2.5.2).
fn limit(w: &Window) -> Duration {
    Duration::from_secs_f64((3.0 * w.target).clamp(0.1, 600.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_url_carries_the_directives_in_place_of_old_ones() {
        let base = Url::parse("http://h/live/stream.m3u8?token=a%20b&_HLS_msn=3").unwrap();
        let u = reload_url(&base, Some(PartId::new(12, 3).into()), true);
        assert_eq!(u.as_str(), "http://h/live/stream.m3u8?token=a+b&_HLS_msn=12&_HLS_part=3&_HLS_skip=YES");
        let plain = Url::parse("http://h/stream.m3u8").unwrap();
        assert_eq!(reload_url(&plain, None, false).as_str(), "http://h/stream.m3u8");
        assert_eq!(
            reload_url(&plain, Some(PartId::new(1, 0).into()), false).as_str(),
            "http://h/stream.m3u8?_HLS_msn=1&_HLS_part=0"
        );
        let whole = Want { msn: 7, part: None };
        assert_eq!(reload_url(&plain, Some(whole), false).as_str(), "http://h/stream.m3u8?_HLS_msn=7");
    }
}
