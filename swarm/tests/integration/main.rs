//! Integration tests: the real `hls-swarm` binary against the real origin (ffmpeg + nginx) on
//! loopback. Nothing here mocks FFmpeg or nginx.
#![allow(clippy::unwrap_used)]

fn main() -> std::process::ExitCode {
    testkit::main()
}

mod baseline;
mod common;
mod completions;
mod dashboard;
mod energy;
mod events;
mod flags;
mod fleet;
mod generator;
mod hostile;
mod https;
mod kubernetes;
mod lifecycle;
mod llhls;
mod measured;
mod modes;
mod native;
mod origin_metrics;
mod playback;
mod policy;
mod relay;
mod report;
mod secrets;
mod streams;
