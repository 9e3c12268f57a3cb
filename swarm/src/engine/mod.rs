//! Viewers: the supervisor that runs each viewer (start, backoff, restart on stall, stop) and
//! the engines that play the stream (FFmpeg processes measured through a relay).

pub mod ffmpeg;
pub mod limits;
pub mod native;
pub mod policy;
pub mod secrets;
pub mod settings;
pub mod supervisor;
pub mod trust;
pub mod upstream;
