//! The FFmpeg engine: one `ffmpeg -c copy -f null` process per viewer ([`command`]), its log
//! read into events ([`log`]), and its requests measured by the viewer's own relay ([`relay`]);
//! [`viewer`] is the engine the supervisor drives.

pub mod command;
pub mod log;
pub mod relay;
pub mod viewer;
