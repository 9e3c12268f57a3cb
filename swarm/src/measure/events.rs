//! The engine-neutral events viewers report: what any engine (an FFmpeg process measured by
//! its relay, or a player inside the swarm) can say about a viewer, and nothing about how it
//! found out. An engine translates its own world into these; the fold reads nothing else.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

/// Viewer number, 0-based, stable across restarts.
pub type ViewerId = u32;

/// What a request fetched.
///
/// The relay knows exactly (it reads every playlist that passes, so it knows which URLs are
/// segments, init sections and keys); FFmpeg's log only shows URLs, so log mode judges by the
/// extension ([`RequestKind::of_url`]) and calls every playlist [`RequestKind::Playlist`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// A master (multivariant) playlist.
    Master,
    /// A media playlist (in log mode: any playlist).
    Playlist,
    /// A media segment.
    Segment,
    /// An init section (`#EXT-X-MAP`).
    Init,
    /// A decryption key (`#EXT-X-KEY`).
    Key,
    /// Anything else.
    Other,
    /// A partial segment of Low-Latency HLS (`#EXT-X-PART`, or the part an
    /// `#EXT-X-PRELOAD-HINT` names, asked for before it exists).
    Part,
    /// A blocking media playlist reload of Low-Latency HLS (`_HLS_msn`/`_HLS_part`): the
    /// origin holds it until the part asked for exists, so its time to first byte is how long
    /// it was held, not how fast the origin answers (kept apart from `Playlist` for that).
    BlockingReload,
}

impl RequestKind {
    /// Every kind, in label order.
    pub const ALL: [RequestKind; 8] = [
        RequestKind::Master,
        RequestKind::Playlist,
        RequestKind::Segment,
        RequestKind::Init,
        RequestKind::Key,
        RequestKind::Other,
        RequestKind::Part,
        RequestKind::BlockingReload,
    ];

    /// Judges a URL by the extension of its path (query and fragment ignored).
    #[must_use]
    pub fn of_url(url: &str) -> RequestKind {
        let path = url.split(['?', '#']).next().unwrap_or(url);
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".m3u8") || lower.ends_with(".m3u") {
            RequestKind::Playlist
        } else {
            RequestKind::Segment
        }
    }

    /// The label used in metrics and reports.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            RequestKind::Master => "master",
            RequestKind::Playlist => "playlist",
            RequestKind::Segment => "segment",
            RequestKind::Init => "init",
            RequestKind::Key => "key",
            RequestKind::Other => "other",
            RequestKind::Part => "part",
            RequestKind::BlockingReload => "blocking_reload",
        }
    }

    /// Master or media playlist (a blocking reload included).
    #[must_use]
    pub fn is_playlist(self) -> bool {
        matches!(self, RequestKind::Master | RequestKind::Playlist | RequestKind::BlockingReload)
    }

    /// Media the player buffers: a segment or a part.
    #[must_use]
    pub fn is_media(self) -> bool {
        matches!(self, RequestKind::Segment | RequestKind::Part)
    }
}

/// Something that happened to one viewer at one instant.
#[derive(Debug, Clone)]
pub struct Event {
    /// Which viewer.
    pub viewer: ViewerId,
    /// When it was observed.
    pub at: Instant,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone)]
pub enum EventKind {
    /// A playback session began (FFmpeg: a process started; stamped when it was created).
    SessionStarted {
        /// How long starting it took (FFmpeg: from `fork` until `exec` completed).
        took: Duration,
    },
    /// A session could not be started.
    StartFailed {
        /// Why.
        error: String,
    },
    /// An HTTP exchange, measured or inferred (see [`Request::measured`]); stamped when it
    /// ended (measured) or was seen to start (inferred).
    Request(Request),
    /// Something went wrong that no measured exchange shows (read from FFmpeg's log).
    Problem(Problem),
    /// A media playlist was read.
    PlaylistSeen {
        /// `#EXT-X-MEDIA-SEQUENCE`.
        media_sequence: u64,
        /// Segments listed.
        segments: u32,
        /// True if it ends with `#EXT-X-ENDLIST`.
        ended: bool,
    },
    /// The player switched variants (`--variant abr`).
    VariantSwitch {
        /// `BANDWIDTH` of the variant it left.
        from: u64,
        /// `BANDWIDTH` of the variant it plays now.
        to: u64,
    },
    /// An https tunnel the engine could not look into: only sizes and times are known.
    Tunnel(Tunnel),
    /// The session ended.
    SessionEnded {
        /// What ran it, for people: `FFmpeg`, `the native player`.
        engine: &'static str,
        /// How it ended.
        ending: Ending,
        /// Who ended it.
        cause: EndCause,
        /// How long it ran.
        uptime: Duration,
        /// Its last log lines (only for endings we did not cause).
        tail: Vec<String>,
    },
    /// The viewer waits this long before its next session.
    Backoff {
        /// The delay.
        delay: Duration,
    },
    /// Low-Latency HLS: what a track in LL-HLS mode saw.
    LowLatency(LowLatency),
    /// The viewer is done for this run.
    Finished {
        /// Why.
        reason: FinishReason,
    },
}

/// How a session ended, whatever the engine: a shell-style status and how to show it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Ending {
    /// 0 for a clean end; otherwise the engine's code (FFmpeg: its exit code, or 128 + the
    /// signal that ended it).
    pub code: i32,
    /// For people: `exit 1`, `signal 9 (SIGKILL)`.
    pub label: String,
}

impl Ending {
    /// True for a clean end.
    #[must_use]
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

/// Who ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// It ended by itself (an error, or a finite stream played to its end).
    Own,
    /// The run stopped it.
    Stopped,
    /// `--restart-on-stall`: its player had been stalled this long, so it was restarted.
    Stalled {
        /// How long it had been stalled (or waiting for its first segment).
        waited: Duration,
    },
    /// `--session-length`: the viewing was over, so the viewer left and starts a new one.
    Completed,
}

impl EndCause {
    /// True if the swarm ended the session rather than the session itself.
    #[must_use]
    pub fn by_us(self) -> bool {
        !matches!(self, EndCause::Own)
    }
}

/// A problem without a measured exchange behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The server answered with an HTTP error status.
    HttpStatus(u16),
    /// A connection failed or timed out.
    Network(String),
    /// A segment could not be fetched and was skipped.
    SegmentSkipped,
    /// A playlist passed but could not be read (too large): its segments' durations are
    /// unknown to the player model.
    Unreadable(String),
}

/// What a track playing Low-Latency HLS reports besides its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LowLatency {
    /// A track began playing in LL-HLS mode (its media playlist has `EXT-X-SERVER-CONTROL`
    /// with `CAN-BLOCK-RELOAD=YES` and parts).
    Joined,
    /// `--variant abr`: a track switched renditions, joining the new one where the old one's
    /// `EXT-X-RENDITION-REPORT` said it was (`from_report`), or by a plain load.
    Switched {
        /// The old playlist had a rendition report for the new one.
        from_report: bool,
    },
    /// The origin broke a rule of LL-HLS (or the player did: see [`Violation`]).
    Violation(Violation),
}

/// The LL-HLS conformance rules a viewer checks, as LL-HLS origins break them in the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Violation {
    /// A part or segment the playlist advertised was answered 404.
    AdvertisedMissing,
    /// A blocking reload was answered before the part it asked for existed (the playlist
    /// returned does not contain it).
    EarlyReload,
    /// A blocking reload was held longer than three target durations (RFC 8216bis §6.2.5.2).
    HeldTooLong,
    /// A full segment was downloaded after parts of it had been (our own player never does).
    SegmentAfterParts,
    /// `PART-HOLD-BACK` is less than three part target durations (RFC 8216bis §4.4.3.8).
    HoldBackShort,
    /// An `EXT-X-PRELOAD-HINT` part never appeared: absent from the later playlists.
    HintMissing,
    /// The media sequence or the part numbering went backwards between two playlists.
    NumberingBackwards,
}

impl Violation {
    /// Every rule, in label order.
    pub const ALL: [Violation; 7] = [
        Violation::AdvertisedMissing,
        Violation::EarlyReload,
        Violation::HeldTooLong,
        Violation::SegmentAfterParts,
        Violation::HoldBackShort,
        Violation::HintMissing,
        Violation::NumberingBackwards,
    ];

    /// The label used in metrics, reports and `--assert` (`conformance_<label>`).
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Violation::AdvertisedMissing => "advertised_404",
            Violation::EarlyReload => "early_reload",
            Violation::HeldTooLong => "reload_held_too_long",
            Violation::SegmentAfterParts => "segment_after_parts",
            Violation::HoldBackShort => "part_hold_back_short",
            Violation::HintMissing => "hint_missing",
            Violation::NumberingBackwards => "numbering_backwards",
        }
    }
}

/// The HTTP version an exchange went out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2.
    Http2,
}

impl Protocol {
    /// Its name as the summary and the report give it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http1 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
        }
    }
}

/// One HTTP request and its response, as measured between the viewer and the origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// What was fetched.
    pub kind: RequestKind,
    /// The absolute URL.
    pub url: String,
    /// Response status; `None` when no response came (connection failed or cut).
    pub status: Option<u16>,
    /// Response body bytes received from the origin (if the viewer left mid-body, what had
    /// already arrived by then).
    pub bytes: u64,
    /// Time for a new upstream connection, when this request opened one.
    pub connect: Option<Duration>,
    /// TLS handshake time of that new connection (https only).
    pub tls: Option<Duration>,
    /// From the request (as the viewer sent it) to the first byte of the response.
    pub ttfb: Option<Duration>,
    /// From the request to the last byte of the body; `None` if the body did not complete.
    pub ttlb: Option<Duration>,
    /// From the request until the exchange ended, complete or not.
    pub elapsed: Duration,
    /// Media duration of the segment in seconds, from the playlist that listed it.
    pub media_duration: Option<f64>,
    /// The segment's `EXT-X-PROGRAM-DATE-TIME` (its start, Unix seconds), when its playlist
    /// gave one.
    pub program_date_time: Option<f64>,
    /// `BANDWIDTH` of the master playlist's variant the segment or init section belongs to,
    /// when the engine knows it (the native player does).
    pub variant_bandwidth: Option<u64>,
    /// The upstream connection failed (refused, reset, timed out) rather than answering.
    pub network_error: Option<String>,
    /// The protocol the request went out on (`HTTP/1.1`, `HTTP/2`), when the engine knows
    /// it (the native player does).
    pub protocol: Option<Protocol>,
    /// True if the exchange was observed (status, bytes and times are real); false if only
    /// its start was seen (FFmpeg's log), so status, bytes and times are unknown and
    /// `media_duration` is an assumption (one target duration).
    pub measured: bool,
}

impl Request {
    /// A request of `kind` whose start was seen, nothing more (a log line): inferred.
    #[must_use]
    pub fn inferred(kind: RequestKind, url: String, media_duration: Option<f64>) -> Request {
        Request {
            kind,
            url,
            status: None,
            bytes: 0,
            connect: None,
            tls: None,
            ttfb: None,
            ttlb: None,
            elapsed: Duration::ZERO,
            media_duration,
            program_date_time: None,
            variant_bandwidth: None,
            network_error: None,
            protocol: None,
            measured: false,
        }
    }

    /// True if the whole body of a 2xx response arrived.
    #[must_use]
    pub fn complete_ok(&self) -> bool {
        self.ttlb.is_some() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// One `CONNECT` tunnel: the relay cannot see inside TLS, so it knows only these.
#[derive(Debug, Clone, PartialEq)]
pub struct Tunnel {
    /// Target `host:port`.
    pub target: String,
    /// Time to connect upstream; `None` if the connection failed.
    pub connect: Option<Duration>,
    /// Bytes from the viewer to the origin.
    pub bytes_up: u64,
    /// Bytes from the origin to the viewer.
    pub bytes_down: u64,
    /// How long the tunnel was open.
    pub open_for: Duration,
    /// Why the connection failed, if it did.
    pub error: Option<String>,
}

/// Why a viewer stopped for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The run is ending.
    Shutdown,
    /// The stream ended (VOD played to the end); viewers of a finite stream are not looped.
    StreamEnded,
}

/// What travels from the viewers to the fold.
#[derive(Debug, Clone)]
pub enum Message {
    /// A viewer's event.
    Event(Event),
    /// The run begins to stop its viewers.
    RunStopping {
        /// When.
        at: Instant,
    },
}

/// The sending side handed to every viewer. Never blocks: if the fold falls behind, events
/// are dropped and counted, so a slow consumer cannot stall an engine.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: mpsc::Sender<Message>,
    dropped: Arc<AtomicU64>,
}

impl EventSink {
    /// A sink and its receiver, with room for `capacity` queued messages.
    #[must_use]
    pub fn channel(capacity: usize) -> (EventSink, mpsc::Receiver<Message>, Arc<AtomicU64>) {
        let (tx, rx) = mpsc::channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        (EventSink { tx, dropped: Arc::clone(&dropped) }, rx, dropped)
    }

    /// Reports `kind` for `viewer`, stamped now.
    pub fn send(&self, viewer: ViewerId, kind: EventKind) {
        self.send_at(viewer, Instant::now(), kind);
    }

    /// Reports `kind` for `viewer`, observed at `at`.
    pub fn send_at(&self, viewer: ViewerId, at: Instant, kind: EventKind) {
        self.put(Message::Event(Event { viewer, at, kind }));
    }

    /// Says the run begins to stop its viewers (once, from the orchestrator).
    pub fn run_stopping(&self) {
        self.put(Message::RunStopping { at: Instant::now() });
    }

    fn put(&self, message: Message) {
        if self.tx.try_send(message).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
