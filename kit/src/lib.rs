//! What the lab's crates share, so each exists once.
//!
//! # Theory of operation
//!
//! - [`playlist`]: the one HLS playlist parser and writer (master and media playlists, byte
//!   ranges, keys, init sections, discontinuities, gaps, program date-time, and the
//!   low-latency tags). The swarm reads what viewers fetch with it; the origin writes its
//!   replayed live window with it and checks what it serves.
//! - [`exposition`]: the one Prometheus text-format reader (the origin's exporters for the
//!   swarm, exporters and the swarm's `/metrics` for the tests).
//! - [`http`]: the one blocking HTTP client for the lab's own endpoints, on `ureq`.
//!
//! Parsing is pure (text in, typed value or an error naming the line out), so every consumer
//! sees the same stream the same way. Both parsers are also property-tested: arbitrary text
//! and mutated real input never panic, and what they keep is bounded by what they were given
//! (`make fuzz` runs those tests long).

pub mod exposition;
pub mod http;
#[cfg(test)]
mod mutation;
pub mod playlist;
