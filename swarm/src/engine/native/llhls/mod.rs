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
//! 3. reloads the playlist blocking (`_HLS_msn`/`_HLS_part` of the part after the hinted
//!    one), with `_HLS_skip=YES` when `CAN-SKIP-UNTIL` allows and it has a playlist to merge
//!    the delta update into ([`Window::merge`]).
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

use crate::engine::native::context::{fetch, pause, Ctx, PLAYLIST_TRIES};
use crate::engine::native::http::{Client, Fetched};
use crate::measure::events::{EventKind, LowLatency, Problem, RequestKind, Violation};
use kit::playlist::{self, ByteRange, Media, Playlist};
pub use window::{is_low_latency, Fetch, Hints, Listed, MergeError, PartId, Window};

/// The playlist URL with the delivery directives for `want` (none: a plain load) and a delta
/// update if `skip`, in place of any the URL had; its other query parameters are kept.
#[must_use]
pub fn reload_url(base: &Url, want: Option<PartId>, skip: bool) -> Url {
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
            q.append_pair("_HLS_part", &w.part.to_string());
        }
        if skip {
            q.append_pair("_HLS_skip", "YES");
        }
    }
    url
}

/// Plays the LL-HLS media playlist at `url`, whose first load is `first`, until the stop
/// (`Ok`), its end (`Ok`) or [`PLAYLIST_TRIES`] failed reloads in a row (`Err`).
pub async fn play(
    ctx: &Ctx,
    client: &mut Client,
    url: Url,
    first: &Media,
    bandwidth: Option<u64>,
    stop: &CancellationToken,
) -> Result<(), String> {
    let mut v = Viewer {
        ctx,
        client,
        url,
        bandwidth,
        map: None,
        parted: BTreeSet::new(),
        hints: Hints::default(),
        live_point: PartId::new(0, 0),
    };
    v.run(first, stop).await
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
    url: Url,
    bandwidth: Option<u64>,
    /// The init section last fetched.
    map: Option<Url>,
    /// Segments some part of which was fetched (those still in the window).
    parted: BTreeSet<u64>,
    hints: Hints,
    /// Where playback began: parts before it were fetched to decode from, then sought past.
    live_point: PartId,
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
            for f in plan {
                if stop.is_cancelled() {
                    return Ok(());
                }
                match f {
                    Fetch::Part(p) => self.part(&window, p, stop).await,
                    Fetch::Segment(s) => {
                        if self.parted.contains(&s.msn) {
                            self.violation(Violation::SegmentAfterParts);
                        }
                        self.init(&window, s.msn, stop).await;
                        let r = (s.byte_range, Some(s.duration), s.program_time);
                        self.media(&s.uri, RequestKind::Segment, r, stop).await;
                    }
                    Fetch::Abandon(_) => {
                        self.ctx.sink.send(self.ctx.id, EventKind::Problem(Problem::SegmentSkipped))
                    }
                }
            }
            cursor = next;
            self.parted.retain(|m| *m >= window.first);
            if stop.is_cancelled() || window.ended {
                return Ok(());
            }
            // The hinted part, when it is the next one needed: held by the origin until it exists.
            let mut hinted = None;
            if let Some(uri) = window.hint.clone().filter(|_| window.next_part() == cursor) {
                self.hints.expect(&uri, cursor);
                if let Some(u) = self.resolve(&uri) {
                    self.init(&window, cursor.msn, stop).await;
                    let (f, _) = fetch(self.ctx, self.client, &u, RequestKind::Part, None, None, stop).await;
                    if f.request.complete_ok() {
                        self.parted.insert(cursor.msn);
                        cursor = cursor.after();
                    }
                    hinted = Some(Hinted { fetched: f, arrived: Instant::now(), uri });
                }
            }
            if stop.is_cancelled() {
                self.hinted(hinted, None);
                return Ok(());
            }
            let want = cursor.max(window.next_part());
            let skip = !plain && window.may_skip(loaded.elapsed().as_secs_f64());
            let target = reload_url(&self.url, (!plain).then_some(want), skip);
            let kind = if plain { RequestKind::Playlist } else { RequestKind::BlockingReload };
            let (outcome, f) = self.reload(&target, kind, stop).await;
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
            // In the order they happened: the hinted part arrived before the reload ended.
            self.hinted(hinted, Some(&new));
            self.report(f);
            self.playlist_seen(&media);
            if kind == RequestKind::BlockingReload {
                if held.is_some_and(|h| h > limit(&window)) {
                    self.violation(Violation::HeldTooLong);
                }
                if !new.contains(want.msn, Some(want.part)) {
                    self.violation(Violation::EarlyReload);
                }
            }
            if new.went_backwards(&window) {
                self.violation(Violation::NumberingBackwards);
            }
            for _ in 0..self.hints.check(&new) {
                self.violation(Violation::HintMissing);
            }
            let progressed =
                new.last_part() != window.last_part() || new.pending_msn() != window.pending_msn();
            let part_target = new.part_target.unwrap_or(new.target / 4.0).clamp(0.05, 10.0);
            (window, loaded, plain) = (new, Instant::now(), false);
            // An origin that answers without waiting is not asked again at once.
            if !progressed && pause(Duration::from_secs_f64(part_target / 2.0), stop).await {
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
        if self.media(&p.uri, RequestKind::Part, (p.byte_range, duration, p.program_time), stop).await {
            self.parted.insert(p.id.msn);
        }
    }

    /// A part or segment with its duration and program time; true if it arrived whole.
    async fn media(
        &mut self,
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
        if f.request.status == Some(404) {
            self.violation(Violation::AdvertisedMissing);
        }
        self.report(Some(f));
        ok
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

    /// One reload of `target`; its exchange is returned unreported (the caller reports it
    /// after the hinted part it followed).
    async fn reload(
        &mut self,
        target: &Url,
        kind: RequestKind,
        stop: &CancellationToken,
    ) -> (Reloaded, Option<Fetched>) {
        let keep = Some(self.ctx.limits.playlist_bytes);
        let (mut f, found) = fetch(self.ctx, self.client, target, kind, None, keep, stop).await;
        let shown = self.ctx.secrets.url(&found);
        if stop.is_cancelled() {
            return (Reloaded::Stopped, Some(f));
        }
        let outcome = if let Some(e) = &f.request.network_error {
            Reloaded::Failed(format!("{shown}: {e}"))
        } else if f.too_large {
            Reloaded::Failed(format!(
                "playlist {shown} is larger than {} bytes: not read",
                self.ctx.limits.playlist_bytes
            ))
        } else if let Some(status) = f.request.status.filter(|s| !(200..300).contains(s)) {
            Reloaded::Failed(format!("{shown}: HTTP {status}"))
        } else {
            let body = f.body.take().unwrap_or_default();
            match std::str::from_utf8(&body).ok().map(|t| playlist::parse_within(t, self.ctx.limits.playlist))
            {
                Some(Ok(Playlist::Media(m))) => Reloaded::Got(Box::new(m)),
                Some(Ok(Playlist::Master(_))) => Reloaded::Failed(format!(
                    "{shown}: a master playlist where a media playlist was expected"
                )),
                Some(Err(e)) => Reloaded::Failed(format!(
                    "{shown} is not a usable HLS playlist: {}",
                    crate::engine::limits::explain(&e)
                )),
                None => Reloaded::Failed(format!("{shown} is not a usable HLS playlist: not UTF-8 text")),
            }
        };
        (outcome, Some(f))
    }
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
        let u = reload_url(&base, Some(PartId::new(12, 3)), true);
        assert_eq!(u.as_str(), "http://h/live/stream.m3u8?token=a+b&_HLS_msn=12&_HLS_part=3&_HLS_skip=YES");
        let plain = Url::parse("http://h/stream.m3u8").unwrap();
        assert_eq!(reload_url(&plain, None, false).as_str(), "http://h/stream.m3u8");
        assert_eq!(
            reload_url(&plain, Some(PartId::new(1, 0)), false).as_str(),
            "http://h/stream.m3u8?_HLS_msn=1&_HLS_part=0"
        );
    }
}
