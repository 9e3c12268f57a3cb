//! What every track of a native viewer shares: the viewer's context, fetching with redirects
//! as players follow them, and pauses that end early on a stop. Used by the ordinary player
//! ([`super::player`]) and the LL-HLS one ([`super::llhls`]).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use url::Url;

use crate::engine::limits::{self, Limits};
use crate::engine::native::cmcd;
use crate::engine::native::http::{Client, Fetched, Headers};
use crate::engine::secrets::Secrets;
use crate::engine::settings::Variant;
use crate::engine::upstream::Dial;
use crate::measure::events::{EventKind, EventSink, RequestKind, ViewerId};
use kit::playlist::ByteRange;

/// Failed playlist loads in a row that end the session.
pub const PLAYLIST_TRIES: u32 = 5;

/// What every track of one viewer shares.
#[derive(Debug)]
pub struct Ctx {
    /// The viewer.
    pub id: ViewerId,
    /// Where its events go.
    pub sink: EventSink,
    /// The stream.
    pub url: Url,
    /// Which variants it plays.
    pub variant: Variant,
    /// How connections are opened.
    pub dial: Dial,
    /// What requests carry.
    pub headers: Arc<Headers>,
    /// Hidden from URLs and errors in events.
    pub secrets: Arc<Secrets>,
    /// How much of a playlist is read.
    pub limits: Limits,
    /// `--cmcd`: how Common Media Client Data goes with every request.
    pub cmcd: Option<cmcd::Mode>,
    /// `--startup-buffer`: media buffered before the playhead moves (zero: one segment).
    pub startup_buffer: Duration,
    /// `--random-start`: a finished playlist is entered at a random point.
    pub random_start: bool,
    /// `--http2`: HTTP/2 where the origin's TLS offers it.
    pub http2: bool,
    /// The run's seed: with the viewer and the session, it draws the random start.
    pub seed: u64,
}

/// GETs `url` as [`Client::get`] does, following redirects as players do (each hop is an
/// exchange of its own, reported here), at most [`limits::REDIRECTS`]. Returns the last
/// exchange, not yet reported, and the URL it was for.
pub(crate) async fn fetch(
    ctx: &Ctx,
    client: &mut Client,
    url: &Url,
    kind: RequestKind,
    range: Option<ByteRange>,
    keep: Option<usize>,
    stop: &CancellationToken,
) -> (Fetched, Url) {
    let mut url = url.clone();
    let mut hops = 0;
    loop {
        let mut f = client.get(&url, kind, range, keep, stop).await;
        let Some(next) = f.location.take().filter(|_| !stop.is_cancelled()) else { return (f, url) };
        if hops == limits::REDIRECTS {
            f.request.network_error = Some(format!("more than {} redirects", limits::REDIRECTS));
            return (f, url);
        }
        if f.sent {
            ctx.sink.send(ctx.id, EventKind::Request(f.request));
        }
        hops += 1;
        url = next;
    }
}

/// Sleeps `d`; true if `stop` fired first.
pub(crate) async fn pause(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        () = stop.cancelled() => true,
    }
}
