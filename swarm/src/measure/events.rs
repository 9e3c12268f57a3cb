//! The typed events viewers report, whatever engine produced them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use procgroup::Exit;
use tokio::sync::mpsc;

use crate::engine::ffmpeg::log::{LogEvent, RequestKind};

/// Viewer number, 0-based, stable across restarts.
pub type ViewerId = u32;

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
    /// A viewer process started.
    Spawned {
        /// Its pid (= process group id).
        pid: u32,
        /// From `fork` until `exec` completed (the event itself is stamped at `fork`).
        took: Duration,
    },
    /// A viewer process could not be started.
    SpawnFailed {
        /// The OS error.
        error: String,
    },
    /// A line of the viewer's log that carries an event.
    Log(LogEvent),
    /// An HTTP exchange observed by the relay; the event is stamped when it ended.
    Request(Request),
    /// A media playlist passed the relay.
    PlaylistSeen {
        /// `#EXT-X-MEDIA-SEQUENCE`.
        media_sequence: u64,
        /// Segments listed.
        segments: u32,
        /// True if it ends with `#EXT-X-ENDLIST`.
        ended: bool,
    },
    /// A `CONNECT` tunnel (https through the relay) closed; only sizes and times are known.
    Tunnel(Tunnel),
    /// The viewer process ended.
    Exited {
        /// How.
        exit: Exit,
        /// How long it ran.
        uptime: Duration,
        /// True if we stopped it (shutdown or stall restart), false if it ended by itself.
        stopped_by_us: bool,
        /// Its last log lines (only for exits we did not cause).
        tail: Vec<String>,
    },
    /// No new segment for the stall timeout: the process is being restarted.
    Stalled {
        /// Time since the last segment request.
        waited: Duration,
    },
    /// The viewer waits this long before starting again.
    Backoff {
        /// The delay.
        delay: Duration,
    },
    /// The run begins to stop its viewers (sent once, with viewer 0).
    RunStopping,
    /// The viewer is done for this run.
    Finished {
        /// Why.
        reason: FinishReason,
    },
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
    /// From the request (as the viewer sent it) to the first byte of the response.
    pub ttfb: Option<Duration>,
    /// From the request to the last byte of the body; `None` if the body did not complete.
    pub ttlb: Option<Duration>,
    /// From the request until the exchange ended, complete or not.
    pub elapsed: Duration,
    /// Media duration of the segment in seconds, from the playlist that listed it.
    pub media_duration: Option<f64>,
    /// The upstream connection failed (refused, reset, timed out) rather than answering.
    pub network_error: Option<String>,
}

impl Request {
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

/// The sending side handed to every viewer. Never blocks: if the stats owner falls behind,
/// events are dropped and counted, so a slow consumer cannot stall FFmpeg's stderr pipe.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: mpsc::Sender<Event>,
    dropped: Arc<AtomicU64>,
}

impl EventSink {
    /// A sink and its receiver, with room for `capacity` queued events.
    #[must_use]
    pub fn channel(capacity: usize) -> (EventSink, mpsc::Receiver<Event>, Arc<AtomicU64>) {
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
        let event = Event { viewer, at, kind };
        if self.tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
