//! The origin's error: why it could not be configured, started, stopped or faulted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Why the origin could not be configured, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--profile` names no built-in profile.
    #[error("unknown profile {name:?}; known profiles: {known}")]
    UnknownProfile {
        /// The name given.
        name: String,
        /// The names that exist, comma-separated.
        known: String,
    },
    /// An override is out of range.
    #[error("invalid {what} {value}: expected {expected}")]
    InvalidOverride {
        /// Which setting.
        what: &'static str,
        /// The value given.
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// The private directory could not be created.
    #[error("cannot create the origin's directory under {path}")]
    TempDir {
        /// The parent directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file or directory could not be read, written or removed.
    #[error("cannot read, write or remove {path}", path = path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A listen address is taken or invalid.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A child could not be started.
    #[error("cannot start {name} ({program})", program = program.display())]
    Spawn {
        /// Child name.
        name: String,
        /// The executable.
        program: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Encoding the replay loop failed.
    #[error("encoding the replay loop failed ({exit}); see {log}", log = log.display())]
    PreEncode {
        /// How ffmpeg ended.
        exit: String,
        /// Its log.
        log: PathBuf,
    },
    /// A child keeps exiting during start-up.
    #[error("{name} keeps exiting during start-up (last: {last_exit}); its log ends with:\n{log_tail}")]
    ChildFailing {
        /// Child name.
        name: String,
        /// How its last run ended.
        last_exit: String,
        /// The last lines of its log.
        log_tail: String,
    },
    /// A hold was asked of a source that cannot hold.
    #[error("cannot hold the {media} source: only the replay source can hold its segments ({why})")]
    HoldUnsupported {
        /// The source in use (`encode`).
        media: &'static str,
        /// Why it cannot.
        why: &'static str,
    },
    /// A hold longer than [`crate::replay::MAX_HOLD`].
    #[error("invalid hold of {value:?}: expected at most {max:?}")]
    HoldTooLong {
        /// The duration asked for.
        value: Duration,
        /// The longest accepted.
        max: Duration,
    },
    /// A fault could not be injected: bad parameters (`bad_input`), or the origin could not
    /// apply it.
    #[error("{message}")]
    Fault {
        /// What is wrong, naming the value and what is accepted.
        message: String,
        /// True if the request was at fault rather than the origin.
        bad_input: bool,
    },
    /// Start-up did not finish in time.
    #[error("origin not ready after {waited:?}: {reason}")]
    NotReady {
        /// The limit.
        waited: Duration,
        /// What was seen at the deadline.
        reason: String,
    },
}
