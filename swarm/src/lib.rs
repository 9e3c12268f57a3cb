//! `hls-swarm`: many real HLS viewers against one stream, supervised and measured.
//!
//! # Theory of operation
//!
//! The command line ([`cli`]) is validated once into a [`config::Config`] before anything
//! starts. [`run::run`] then probes the FFmpeg binary ([`ffmpeg::Capabilities`]), runs the
//! [`preflight`] checks, and starts viewers on a fixed schedule ([`plan::RampPlan`]).
//!
//! Each viewer ([`supervisor::Viewer`]) is one FFmpeg process reading the stream with
//! `-c copy -f null -`, started through [`procgroup`] so it leads its own process group and
//! dies with us. Its stderr is split into lines and parsed into typed events ([`parser`],
//! [`events`]); when it exits it is restarted with exponential backoff and jitter.
//!
//! One task owns all aggregates ([`stats`]): it folds every event and publishes a
//! [`snapshot::Snapshot`] per tick, which the status line and the end-of-run [`summary`] read.
//!
//! Stopping (duration reached, Ctrl+C or SIGTERM) sends SIGTERM to every viewer's group,
//! waits a grace period, then SIGKILLs and reaps; a second Ctrl+C kills at once.

pub mod control;
pub mod engine;
pub mod measure;
pub mod output;

/// Process exit codes of `hls-swarm` (documented in the README).
pub mod exit_code {
    /// The run completed (duration reached or stopped by Ctrl+C/SIGTERM).
    pub const OK: u8 = 0;
    /// An unexpected runtime failure, or a `--report` file that could not be written.
    pub const RUNTIME: u8 = 1;
    /// Bad command line or configuration.
    pub const USAGE: u8 = 2;
    /// A preflight check failed.
    pub const PREFLIGHT: u8 = 3;
    /// `--check`: no server answered (refused, timed out, DNS or TLS failure).
    pub const UNREACHABLE: u8 = 4;
    /// A `--assert` threshold failed.
    pub const SLO: u8 = 5;
    /// `--check`: a server answered, but not with a playable stream.
    pub const UNPLAYABLE: u8 = 6;
    /// SIGINT or SIGTERM before any viewer started (the stream probe, `--check`).
    pub const INTERRUPTED: u8 = 130;
}
