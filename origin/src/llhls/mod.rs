//! Low-Latency HLS (RFC 8216bis, Apple's LL-HLS): the origin side of `--profile ll-hls`.
//!
//! # Theory of operation
//!
//! nginx cannot hold a request until a part exists, so LL-HLS is served by a small async
//! HTTP server of hls-origin's own, from memory:
//!
//! 1. [`source`] encodes a short loop once with the real ffmpeg into one fragmented MP4 with
//!    a fragment every part duration and a keyframe every segment, and caches it. [`mp4`]
//!    splits it into the init section and fragments (each one part) and reads their timing;
//!    [`source::Loop`] groups the parts into segments, each starting with an independent part.
//! 2. [`timeline`] is the live view, a pure function of time: the loop republished forever
//!    from an epoch, one part appearing each part duration, every pass shifting decode times
//!    by one loop length (so the loop point is seamless) and media sequence numbers growing
//!    forever. It renders the media playlist (server control, part info, parts of the last
//!    segments, the preload hint, delta updates) with [`kit::playlist`].
//! 3. [`server`] answers HTTP: the playlist with blocking reloads (`_HLS_msn`, `_HLS_part`,
//!    held until the part exists, 400 when too far ahead, 503 past three target durations)
//!    and delta updates (`_HLS_skip`), the init section, parts (a hinted part is held until
//!    it exists), and whole segments. A held request sleeps until the instant the timeline
//!    says its part appears: nothing polls and nothing is published, so a held request costs
//!    a timer. [`server::Faults`] break it on purpose for conformance tests.
//! 4. [`ladder`] serves several renditions (one loop each, with the same timing) on one
//!    clock: a master playlist, a directory per rendition, and `EXT-X-RENDITION-REPORT`s in
//!    every media playlist for the other renditions (the `ll-hls-abr` profile).

pub mod ladder;
pub mod mp4;
pub mod server;
pub mod source;
pub mod stream;
pub mod timeline;

pub use ladder::{Ladder, Rendition};
pub use server::{serve, serve_ladder, Faults, Stream};
pub use source::{prepare, Loop, Settings};
pub use timeline::{Live, PartId};
