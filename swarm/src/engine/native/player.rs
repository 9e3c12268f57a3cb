//! The native player: what hls.js or AVPlayer do on the network, without decoding.
//!
//! A session reads the entry URL; a master playlist gives the media playlists to play
//! (`--variant`: the highest, the lowest or the first variant with its default audio and
//! subtitle renditions, or every variant and rendition; `abr` starts on the first and switches
//! as [`abr`] decides after each segment), each played by its own track over its own
//! connection. A track starts where `EXT-X-START` says, else a live stream three segments from
//! the end and a finished one from its start, fetches each new segment in order with its init section and key,
//! skips `EXT-X-GAP` segments, and reloads the playlist one target duration after the last
//! load began if it changed, half of one if it did not (RFC 8216 §6.3.4). A finished playlist
//! (`EXT-X-ENDLIST`, VOD or an event that ended) is downloaded no more than a buffer goal
//! ([`VOD_BUFFER`]) ahead of a playhead that runs in real time from the first segment.
//!
//! Errors are a player's: a failed segment is tried [`SEGMENT_TRIES`] times, then skipped; a
//! failed playlist is retried; [`PLAYLIST_TRIES`] failures in a row end the session with the
//! reason (the supervisor starts a new one after its backoff). Startup, stalls and live-edge
//! latency come from the same player model as for FFmpeg viewers: the fold reads them from
//! the segments' arrival times and durations.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use url::Url;

use crate::engine::limits::{self, PLAYLIST_FLAG};
use crate::engine::native::abr;
use crate::engine::native::cmcd::Cmcd;
use crate::engine::native::context::{fetch, pause, Ctx, PLAYLIST_TRIES};
use crate::engine::native::http::{Client, Fetched};
use crate::engine::native::llhls;
use crate::engine::settings::Variant;
use crate::measure::events::{EventKind, Problem, RequestKind};
use kit::playlist::{self, ByteRange, Master, MediaType, Playlist, StartPoint};

/// Tries of one segment before it is skipped.
pub const SEGMENT_TRIES: u32 = 3;
/// How far a finished playlist is downloaded ahead of the playhead.
pub const VOD_BUFFER: Duration = Duration::from_secs(30);
/// Segments from the end a live stream starts at.
pub const LIVE_START_SEGMENTS: usize = 3;

/// Plays session `session` (0 for the viewer's first) until the stream ends (`Ok`), a track
/// fails for good (`Err` with the reason) or `stop` fires (`Ok`).
pub async fn play(ctx: Arc<Ctx>, session: u32, stop: CancellationToken) -> Result<(), String> {
    // `--random-start`: where in a finished playlist this session starts, as a fraction of it;
    // one draw for all its tracks, so video and audio start together.
    let random = ctx.random_start.then(|| {
        use rand::{Rng, SeedableRng};
        let seed = ctx.seed ^ (u64::from(ctx.id) << 32) ^ u64::from(session);
        rand::rngs::StdRng::seed_from_u64(seed).gen_range(0.0..1.0)
    });
    // One CMCD session id for all of the session's tracks.
    let data = ctx.cmcd.map(|mode| Cmcd::new(mode, &ctx.url));
    let new_client = || {
        let mut c = Client::new(ctx.dial.clone(), Arc::clone(&ctx.headers), Arc::clone(&ctx.secrets));
        c.cmcd.clone_from(&data);
        c.http2 = ctx.http2;
        c
    };
    let mut client = new_client();
    let mut began = Instant::now();
    let Some((entry, playlist)) = load_retrying(&ctx, &mut client, &ctx.url, &mut began, &stop).await? else {
        return Ok(());
    };
    let plans = match playlist {
        Playlist::Media(m) => {
            // The entry is the media playlist: this load is the track's first.
            let plan = Planned { random, ..Planned::media(entry) };
            return Track::new(&ctx, client, plan).play(Some(m), &stop).await;
        }
        Playlist::Master(master) => {
            let mut plans = tracks(&master, ctx.variant, &entry);
            for p in &mut plans {
                p.random = random;
            }
            plans
        }
    };
    if plans.is_empty() {
        return Err(format!("{}: the master playlist lists no playable variant", ctx.secrets.url(&entry)));
    }
    // The first track keeps the entry's connection; the others open their own.
    let mut first = Some(client);
    let plays = plans.into_iter().map(|p| {
        let client = first.take().unwrap_or_else(new_client);
        let ctx = &ctx;
        let stop = &stop;
        async move { Track::new(ctx, client, p).play(None, stop).await }
    });
    // The session lasts as long as its longest track; the first failure ends it.
    let results = futures::future::join_all(plays).await;
    results.into_iter().collect()
}

/// A media playlist a viewer plays, and what the master playlist said of it.
#[derive(Debug, Clone, PartialEq)]
struct Planned {
    url: Url,
    /// The variant's `BANDWIDTH`; `None` for a rendition or an entry that is a media playlist.
    bandwidth: Option<u64>,
    /// `--variant abr`: the variants it switches between, by ascending `BANDWIDTH`, and the
    /// one it starts on.
    ladder: Option<(Vec<(u64, Url)>, usize)>,
    /// The master playlist's `EXT-X-START`.
    start: Option<StartPoint>,
    /// What its segments hold, as CMCD names it: `av`, `a` (audio) or `tt` (subtitles).
    object: &'static str,
    /// `--random-start`: where a finished playlist is entered, as a fraction of it.
    random: Option<f64>,
}

impl Planned {
    fn media(url: Url) -> Planned {
        Planned { url, bandwidth: None, ladder: None, start: None, object: "av", random: None }
    }
}

/// The media playlists a viewer plays from `master`, resolved against `base`.
fn tracks(master: &Master, variant: Variant, base: &Url) -> Vec<Planned> {
    let chosen: Vec<usize> = match variant {
        Variant::All => (0..master.variants.len()).collect(),
        Variant::Highest => master.pick(true).into_iter().collect(),
        Variant::Lowest => master.pick(false).into_iter().collect(),
        // hls.js starts on the first variant listed, then adapts.
        Variant::First | Variant::Abr => (!master.variants.is_empty()).then_some(0).into_iter().collect(),
    };
    let http = |u: &Url| matches!(u.scheme(), "http" | "https");
    let url_of = |uri: &str| playlist::resolve(base, uri).ok().filter(http);
    let mut out: Vec<Planned> = Vec::new();
    let mut add = |p: Planned| {
        if !out.iter().any(|o| o.url == p.url) {
            out.push(p);
        }
    };
    for i in &chosen {
        let v = &master.variants[*i];
        let Some(url) = url_of(&v.uri) else { continue };
        let ladder = (variant == Variant::Abr).then(|| {
            let mut ladder: Vec<(u64, Url)> = Vec::new();
            for w in &master.variants {
                if let Some(u) = url_of(&w.uri).filter(|u| !ladder.iter().any(|(_, l)| l == u)) {
                    ladder.push((w.bandwidth, u));
                }
            }
            ladder.sort_by_key(|(bw, _)| *bw);
            let at = ladder.iter().position(|(_, u)| *u == url).unwrap_or(0);
            (ladder, at)
        });
        add(Planned { bandwidth: Some(v.bandwidth), ladder, start: master.start, ..Planned::media(url) });
    }
    for r in master.renditions.iter().filter(|r| r.uri.is_some()) {
        let wanted = match variant {
            Variant::All => true,
            _ => chosen.iter().any(|i| {
                let v = &master.variants[*i];
                let group = match r.kind {
                    MediaType::Audio => v.audio.as_deref(),
                    MediaType::Subtitles => v.subtitles.as_deref(),
                    MediaType::Video | MediaType::ClosedCaptions => None,
                };
                // The group's default rendition plays with the variant, as players pick it.
                group == Some(r.group_id.as_str()) && r.default
            }),
        };
        if let Some(url) = r.uri.as_deref().filter(|_| wanted).and_then(url_of) {
            let object = match r.kind {
                MediaType::Audio => "a",
                MediaType::Subtitles | MediaType::ClosedCaptions => "tt",
                MediaType::Video => "v",
            };
            add(Planned { start: master.start, object, ..Planned::media(url) });
        }
    }
    out
}

/// Loads a playlist as a player does: a failed load is tried again a second later, and
/// [`PLAYLIST_TRIES`] failures in a row are the error. `began` is when the last try began.
/// `Ok(None)` when the stop came.
async fn load_retrying(
    ctx: &Ctx,
    client: &mut Client,
    url: &Url,
    began: &mut Instant,
    stop: &CancellationToken,
) -> Result<Option<(Url, Playlist)>, String> {
    let mut failures = 0;
    loop {
        *began = Instant::now();
        match load(ctx, client, url, stop).await {
            Err(e) => {
                failures += 1;
                if failures >= PLAYLIST_TRIES {
                    return Err(e);
                }
                if pause(Duration::from_secs(1), stop).await {
                    return Ok(None);
                }
            }
            done => return done,
        }
    }
}

/// Fetches and reads a playlist, reporting the exchange. `Ok(None)` when the stop came.
async fn load(
    ctx: &Ctx,
    client: &mut Client,
    url: &Url,
    stop: &CancellationToken,
) -> Result<Option<(Url, Playlist)>, String> {
    // A playlist is a master playlist once read as one: one that did not read (an error, a
    // refused connection) is a playlist, as the relay calls an unknown `.m3u8`.
    let (mut f, url) =
        fetch(ctx, client, url, RequestKind::Playlist, None, Some(ctx.limits.playlist_bytes), stop).await;
    let url = &url;
    let shown = ctx.secrets.url(url);
    // The playlist arrived but cannot be read: the event log says so.
    let mut unreadable = f.too_large;
    let outcome = if stop.is_cancelled() {
        Ok(None)
    } else if let Some(e) = &f.request.network_error {
        Err(format!("{shown}: {e}"))
    } else if f.too_large {
        let max = ctx.limits.playlist_bytes;
        Err(format!("playlist {shown} is larger than {max} bytes ({PLAYLIST_FLAG} raises it): not read"))
    } else if let Some(status) = f.request.status.filter(|s| !(200..300).contains(s)) {
        Err(format!("{shown}: HTTP {status}"))
    } else {
        let body = f.body.take().unwrap_or_default();
        match std::str::from_utf8(&body).map_err(|_| None).and_then(|t| {
            playlist::parse_within(t, ctx.limits.playlist).map_err(|e| Some(limits::explain(&e)))
        }) {
            Ok(p) => Ok(Some((url.clone(), p))),
            Err(why) => Err({
                unreadable = true;
                format!(
                    "{shown} is not a usable HLS playlist: {}",
                    why.unwrap_or_else(|| "not UTF-8 text".into())
                )
            }),
        }
    };
    if let Ok(Some((_, Playlist::Master(_)))) = &outcome {
        f.request.kind = RequestKind::Master;
    }
    if f.sent {
        ctx.sink.send(ctx.id, EventKind::Request(f.request));
    }
    match &outcome {
        Err(e) if unreadable => {
            ctx.sink.send(ctx.id, EventKind::Problem(Problem::Unreadable(e.clone())));
        }
        Ok(Some((_, Playlist::Media(m)))) => ctx.sink.send(
            ctx.id,
            EventKind::PlaylistSeen {
                media_sequence: m.media_sequence,
                segments: u32::try_from(m.segments.len()).unwrap_or(u32::MAX),
                ended: m.ended,
            },
        ),
        _ => {}
    }
    outcome
}

/// Where a player starts in `media`: in a finished playlist with a `random` fraction
/// (`--random-start`), the segment holding that point; else the segment holding the
/// `EXT-X-START` offset (from the start, or back from the end when negative, clamped to the
/// playlist), else the first segment of a finished playlist and [`LIVE_START_SEGMENTS`] from
/// the end of a live one.
fn start_index(media: &playlist::Media, start: Option<StartPoint>, random: Option<f64>) -> usize {
    let count = media.segments.len();
    let total: f64 = media.segments.iter().map(|s| s.duration).sum();
    let at = match (random.filter(|_| media.ended), start) {
        (Some(f), _) => f * total,
        (None, Some(p)) => {
            if p.time_offset < 0.0 {
                total + p.time_offset
            } else {
                p.time_offset
            }
        }
        (None, None) => return if media.ended { 0 } else { count.saturating_sub(LIVE_START_SEGMENTS) },
    }
    .clamp(0.0, total);
    let mut end = 0.0;
    for (i, s) in media.segments.iter().enumerate() {
        end += s.duration;
        if at < end {
            return i;
        }
    }
    count.saturating_sub(1)
}

/// What fetching the listed segments came to.
enum Step {
    /// The stop came.
    Stopped,
    /// Every new segment was fetched (or skipped).
    Listed,
    /// The player switched variants: the new one's playlist is due now.
    Switched,
}

/// What one segment's fetch came to.
enum Got {
    Stopped,
    /// Its bytes and download time.
    Media(u64, Duration),
    /// Given up after its tries.
    Failed,
}

/// One media playlist being played.
struct Track<'a> {
    ctx: &'a Ctx,
    client: Client,
    url: Url,
    /// Its variant's `BANDWIDTH`, when it is a variant.
    bandwidth: Option<u64>,
    /// The master playlist's `EXT-X-START` (the media playlist's own wins).
    master_start: Option<StartPoint>,
    /// `--random-start`: where a finished playlist is entered, as a fraction of it.
    random: Option<f64>,
    /// CMCD `ot` of its segments.
    object: &'static str,
    /// The throughput of its last segment download, bits per second.
    throughput: Option<f64>,
    adaptive: Option<abr::Ladder>,
    /// Media sequence number of the next segment to fetch.
    next: Option<u64>,
    /// The init section and key last fetched.
    map: Option<Url>,
    key: Option<Url>,
    /// Where the previous byte range of a resource ended (for ranges without an offset).
    range_end: Option<(Url, u64)>,
    /// When playback began (the startup buffer was in), and the media fetched since the
    /// session began.
    playhead: Option<Instant>,
    media: f64,
}

impl<'a> Track<'a> {
    fn new(ctx: &'a Ctx, client: Client, plan: Planned) -> Track<'a> {
        let adaptive = plan.ladder.map(|(ladder, at)| abr::Ladder::new(ladder, at));
        Track {
            ctx,
            client,
            url: plan.url,
            bandwidth: plan.bandwidth,
            master_start: plan.start,
            random: plan.random,
            object: plan.object,
            throughput: None,
            adaptive,
            next: None,
            map: None,
            key: None,
            range_end: None,
            playhead: None,
            media: 0.0,
        }
    }

    /// Plays until the playlist ends, fails for good, or the stop. `first` is a load of this
    /// playlist already made.
    async fn play(
        mut self,
        mut first: Option<playlist::Media>,
        stop: &CancellationToken,
    ) -> Result<(), String> {
        let mut previous: Option<(u64, usize)> = None;
        loop {
            let mut began = Instant::now();
            let media = match first.take() {
                Some(m) => m,
                None => match load_retrying(self.ctx, &mut self.client, &self.url.clone(), &mut began, stop)
                    .await
                {
                    // After a redirect, the playlist's own URL is where it was found.
                    Ok(Some((found, Playlist::Media(m)))) => {
                        self.url = found;
                        m
                    }
                    Ok(Some((_, Playlist::Master(_)))) => {
                        return Err(format!(
                            "{}: a master playlist where a media playlist was expected",
                            self.shown()
                        ));
                    }
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(e),
                },
            };
            if let Some(c) = self.client.cmcd.as_mut() {
                c.now.live = Some(!media.ended);
            }
            if llhls::is_low_latency(&media) {
                // Blocking reloads and parts from here on, switching renditions as LL-HLS does.
                let abr = (self.bandwidth, self.adaptive.take());
                return llhls::play(self.ctx, &mut self.client, self.url.clone(), &media, abr, stop).await;
            }
            let target = Duration::from_secs_f64(media.target_duration.unwrap_or(2.0).clamp(0.1, 60.0));
            let shape = (media.media_sequence, media.segments.len());
            let changed = previous != Some(shape);
            previous = Some(shape);
            match self.segments(&media, stop).await {
                Step::Stopped => return Ok(()),
                Step::Switched => {
                    previous = None;
                    continue;
                }
                Step::Listed => {}
            }
            let last = media.media_sequence + media.segments.len() as u64;
            if media.ended && self.next.is_none_or(|n| n >= last) {
                // Everything is downloaded; a player closes once it has played it.
                if let Some(t0) = self.playhead {
                    let left = self.media - t0.elapsed().as_secs_f64();
                    if left > 0.0 {
                        pause(Duration::from_secs_f64(left), stop).await;
                    }
                }
                return Ok(());
            }
            let wait = if changed { target } else { target / 2 };
            if pause(wait.saturating_sub(began.elapsed()), stop).await {
                return Ok(());
            }
        }
    }

    /// A URI of the playlist as a URL to request: `None` (and a notice) for one that does not
    /// resolve or is not http(s), which is never requested.
    fn resolve(&self, uri: &str) -> Option<Url> {
        let problem = match playlist::resolve(&self.url, uri) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => return Some(u),
            Ok(u) => format!("scheme '{}' is not http or https", u.scheme()),
            Err(e) => e.to_string(),
        };
        let text = format!("{}: URI '{}' not requested: {problem}", self.shown(), self.ctx.secrets.text(uri));
        self.ctx.sink.send(self.ctx.id, EventKind::Problem(Problem::Unreadable(text)));
        None
    }

    fn shown(&self) -> String {
        self.ctx.secrets.url(&self.url)
    }

    /// Fetches the segments of `media` not fetched yet, until the stop or a variant switch.
    async fn segments(&mut self, media: &playlist::Media, stop: &CancellationToken) -> Step {
        let first = media.media_sequence;
        let start = first + start_index(media, media.start.or(self.master_start), self.random) as u64;
        // Fell out of the window (or first load): start again where a player would.
        let next = match self.next {
            Some(n) if n >= first => n,
            _ => start,
        };
        self.next = Some(next);
        let times = media.program_times();
        for (i, seg) in media.segments.iter().enumerate() {
            let msn = first + i as u64;
            if msn < next {
                continue;
            }
            if stop.is_cancelled() || (media.ended && self.ahead(stop).await) {
                return Step::Stopped;
            }
            if let Some(map) = seg.map.as_ref() {
                if let Some(u) = self.resolve(&map.uri) {
                    if self.map.as_ref() != Some(&u) {
                        self.fetch_once(&u, RequestKind::Init, map.byte_range, stop).await;
                        self.map = Some(u);
                    }
                }
            }
            if let Some(uri) = seg.key.as_ref().and_then(|k| k.uri.as_deref()) {
                if let Some(u) = self.resolve(uri) {
                    if self.key.as_ref() != Some(&u) {
                        self.fetch_once(&u, RequestKind::Key, None, stop).await;
                        self.key = Some(u);
                    }
                }
            }
            self.next = Some(msn + 1);
            if seg.gap {
                continue;
            }
            let Some(url) = self.resolve(&seg.uri) else {
                self.ctx.sink.send(self.ctx.id, EventKind::Problem(Problem::SegmentSkipped));
                continue;
            };
            let switched = match self.segment(&url, seg.byte_range, seg.duration, times[i], stop).await {
                Got::Stopped => return Step::Stopped,
                Got::Media(bytes, took) => {
                    #[allow(clippy::cast_precision_loss)]
                    let bps = bytes as f64 * 8.0 / took.max(abr::MIN_SAMPLE_TIME).as_secs_f64();
                    self.throughput = Some(bps);
                    self.adapt(Some((bytes, took)))
                }
                Got::Failed => self.adapt(None),
            };
            if switched {
                return Step::Switched;
            }
        }
        Step::Listed
    }

    /// `--variant abr`: learns from a segment's download (`None`: it failed) and switches
    /// variants if the estimate says so; true if it switched.
    fn adapt(&mut self, sample: Option<(u64, Duration)>) -> bool {
        let Some(a) = self.adaptive.as_mut() else { return false };
        if let Some((bytes, took)) = sample {
            a.estimator.sample(bytes, took);
        }
        // Nothing arrived in time: one variant down.
        let Some(abr::Switch { from, to, url }) = a.choose(sample.is_none()) else { return false };
        self.url = url;
        self.bandwidth = Some(to);
        self.ctx.sink.send(self.ctx.id, EventKind::VariantSwitch { from, to });
        true
    }

    /// Waits while the buffer is more than [`VOD_BUFFER`] ahead of the playhead; true if
    /// the stop came.
    async fn ahead(&mut self, stop: &CancellationToken) -> bool {
        let Some(t0) = self.playhead else { return false };
        let buffered = self.media - t0.elapsed().as_secs_f64();
        let over = buffered - VOD_BUFFER.as_secs_f64();
        over > 0.0 && pause(Duration::from_secs_f64(over), stop).await
    }

    /// The byte range with its offset filled in from the previous range of the same URL.
    fn range(&mut self, url: &Url, range: Option<ByteRange>) -> Option<ByteRange> {
        let r = range?;
        let offset = r.offset.unwrap_or_else(|| match &self.range_end {
            Some((u, end)) if u == url => *end,
            _ => 0,
        });
        self.range_end = Some((url.clone(), offset + r.length));
        Some(ByteRange { length: r.length, offset: Some(offset) })
    }

    /// An init section or key: one try.
    async fn fetch_once(
        &mut self,
        url: &Url,
        kind: RequestKind,
        range: Option<ByteRange>,
        stop: &CancellationToken,
    ) {
        let range = self.range(url, range);
        self.note(None);
        let (mut f, _) = fetch(self.ctx, &mut self.client, url, kind, range, None, stop).await;
        f.request.variant_bandwidth = self.bandwidth.filter(|_| kind == RequestKind::Init);
        self.report(f);
    }

    /// A segment, tried up to [`SEGMENT_TRIES`] times.
    async fn segment(
        &mut self,
        url: &Url,
        range: Option<ByteRange>,
        duration: f64,
        start: Option<f64>,
        stop: &CancellationToken,
    ) -> Got {
        let range = self.range(url, range);
        for attempt in 1..=SEGMENT_TRIES {
            self.note(Some(duration));
            let (mut f, _) =
                fetch(self.ctx, &mut self.client, url, RequestKind::Segment, range, None, stop).await;
            f.request.media_duration = Some(duration);
            f.request.program_date_time = start;
            f.request.variant_bandwidth = self.bandwidth;
            let ok = f.request.complete_ok();
            let got = (f.request.bytes, f.request.ttlb.unwrap_or(f.request.elapsed));
            self.report(f);
            if stop.is_cancelled() {
                return Got::Stopped;
            }
            if ok {
                self.media += duration;
                if self.playhead.is_none() && self.media >= self.ctx.startup_buffer.as_secs_f64() {
                    self.playhead = Some(Instant::now());
                }
                return Got::Media(got.0, got.1);
            }
            if attempt < SEGMENT_TRIES && pause(Duration::from_millis(500), stop).await {
                return Got::Stopped;
            }
        }
        self.ctx.sink.send(self.ctx.id, EventKind::Problem(Problem::SegmentSkipped));
        Got::Failed
    }

    /// What CMCD says with the next request: the variant's bitrate, the segment's duration,
    /// the buffer ahead of the playhead, the throughput measured, whether playback started.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn note(&mut self, duration: Option<f64>) {
        let Some(c) = self.client.cmcd.as_mut() else { return };
        let measured = self.adaptive.as_ref().map(|a| a.estimator.estimate()).or(self.throughput);
        c.now.media = self.object;
        c.now.bitrate_kbps = self.bandwidth.map(|b| b / 1000);
        c.now.duration_ms = duration.map(|d| (d * 1000.0).round() as u64);
        c.now.buffer_ms =
            self.playhead.map(|t0| ((self.media - t0.elapsed().as_secs_f64()).max(0.0) * 1000.0) as u64);
        c.now.throughput_kbps = measured.map(|bps| (bps / 1000.0) as u64);
        c.now.startup = self.playhead.is_none();
    }

    fn report(&self, f: Fetched) {
        if f.sent {
            self.ctx.sink.send(self.ctx.id, EventKind::Request(f.request));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "#EXTM3U\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",DEFAULT=YES,URI=\"audio/en.m3u8\"\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"fr\",URI=\"audio/fr.m3u8\"\n\
        #EXT-X-STREAM-INF:BANDWIDTH=800000,AUDIO=\"aud\"\nlow.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=5000000,AUDIO=\"aud\"\nhigh.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=2000000,AUDIO=\"aud\"\nmid.m3u8\n";

    #[test]
    fn a_player_starts_where_the_playlist_says() {
        let live = |start: &str, ended: bool| {
            let mut text = format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n{start}\n");
            for i in 0..6 {
                text.push_str(&format!("#EXTINF:2.0,\ns{i}.ts\n"));
            }
            if ended {
                text.push_str("#EXT-X-ENDLIST\n");
            }
            let m = playlist::parse_media(&text).unwrap();
            start_index(&m, m.start, None)
        };
        assert_eq!(live("", false), 3, "three segments from the end");
        assert_eq!(live("", true), 0, "a finished playlist from its start");
        assert_eq!(live("#EXT-X-START:TIME-OFFSET=-5", false), 3, "12 s - 5 s = 7 s: in the fourth segment");
        assert_eq!(live("#EXT-X-START:TIME-OFFSET=-4", false), 4);
        assert_eq!(live("#EXT-X-START:TIME-OFFSET=4.5", true), 2);
        assert_eq!(live("#EXT-X-START:TIME-OFFSET=-60", false), 0, "clamped to the start");
        assert_eq!(live("#EXT-X-START:TIME-OFFSET=60", true), 5, "clamped to the last segment");
        let m = playlist::parse_media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n#EXTINF:2,\nb.ts\n#EXTINF:2,\nc.ts\n",
        )
        .unwrap();
        assert_eq!(start_index(&m, None, Some(0.9)), 0, "a random start is for finished playlists");
        let vod = playlist::Media { ended: true, ..m };
        assert_eq!(start_index(&vod, None, Some(0.5)), 1, "3 s of 6 s: the second segment");
        assert_eq!(start_index(&vod, None, Some(0.0)), 0);
        assert_eq!(start_index(&vod, None, Some(0.99)), 2);
    }

    #[test]
    fn the_variant_choice_picks_tracks_as_players_do() {
        let master = playlist::parse_master(MASTER).unwrap();
        let base = Url::parse("http://h/live/master.m3u8").unwrap();
        let names = |v| -> Vec<String> {
            tracks(&master, v, &base).iter().map(|p| p.url.path().to_owned()).collect()
        };
        assert_eq!(names(Variant::Highest), ["/live/high.m3u8", "/live/audio/en.m3u8"]);
        assert_eq!(names(Variant::Lowest), ["/live/low.m3u8", "/live/audio/en.m3u8"]);
        assert_eq!(names(Variant::First), ["/live/low.m3u8", "/live/audio/en.m3u8"]);
        assert_eq!(
            names(Variant::All),
            [
                "/live/low.m3u8",
                "/live/high.m3u8",
                "/live/mid.m3u8",
                "/live/audio/en.m3u8",
                "/live/audio/fr.m3u8"
            ]
        );
    }
}
