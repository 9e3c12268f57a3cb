//! Integration tests: the real `hls-swarm` binary against the real origin (ffmpeg + nginx) on
//! loopback. Nothing here mocks FFmpeg or nginx.

mod common;
mod lifecycle;
mod modes;
