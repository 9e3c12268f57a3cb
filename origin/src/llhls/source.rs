//! The LL-HLS media source: a loop encoded once by ffmpeg into one fragmented MP4 with a
//! fragment every part duration, split into parts and grouped into segments.
//!
//! FFmpeg's `hls` muxer writes no partial segments, so the loop is written by the `mp4` muxer
//! instead: `-movflags +frag_keyframe+empty_moov+default_base_moof` with
//! `-frag_duration <part>` cuts a fragment (one `moof` + `mdat`) whenever a part's worth of
//! media has been written, and at every keyframe; keyframes are forced exactly every segment
//! (`-force_key_frames`, `-sc_threshold 0`, fixed GOP), so each segment starts with an
//! independent part. No B-frames (`-bf 0`): a part's samples are in presentation order.
//!
//! The loop is cached under a directory named by a hash of the ffmpeg argv, as
//! [`crate::replay`] does for the other profiles.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::time::Duration;

use super::mp4::{self, Fragment, Mp4Error};
use crate::error::Error;
use crate::profile::{Profile, Variant};
use crate::replay::{cached, encode, fnv1a, io_err};

/// What the LL-HLS loop looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Picture width (even).
    pub width: u32,
    /// Picture height (even).
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Video bitrate, kbit/s.
    pub video_kbps: u32,
    /// Audio bitrate, kbit/s.
    pub audio_kbps: u32,
    /// libx264 preset.
    pub preset: String,
    /// Segment length in whole seconds, 2 to 4 (also the GOP).
    pub segment_secs: u32,
    /// Part length, 0.2 to 0.5 s, rounded to whole frames ([`part_frames`]).
    pub part: Duration,
    /// Segments in the loop. With 48 kHz AAC, a loop of a multiple of 8 s keeps whole
    /// audio frames (1024 samples) at the loop point.
    pub loop_segments: u32,
    /// Complete segments listed in the media playlist.
    pub window: u32,
}

impl Default for Settings {
    /// The `ll-hls` profile: 720p at 2 Mbit/s, 2 s segments of 1/3 s parts, an 8 s loop.
    fn default() -> Self {
        Settings {
            width: 1280,
            height: 720,
            fps: 30,
            video_kbps: 2000,
            audio_kbps: 96,
            preset: "veryfast".into(),
            segment_secs: 2,
            part: Duration::from_micros(333_334),
            loop_segments: 4,
            window: 10,
        }
    }
}

impl Settings {
    /// The loop `profile` serves, if it is an LL-HLS profile (`part_ms` set). The loop is a
    /// whole number of 8 s (whole AAC frames at 48 kHz, so the loop point has no audio gap).
    #[must_use]
    pub fn of(profile: &Profile) -> Option<Settings> {
        Settings::of_variant(profile, &profile.variants[0])
    }

    /// The loop of each of `profile`'s renditions, highest first, if it is an LL-HLS profile:
    /// each at its own size and bitrates, all with the same timing (frame rate, GOP, parts,
    /// loop length), so their parts line up.
    #[must_use]
    pub fn ladder(profile: &Profile) -> Option<Vec<(Variant, Settings)>> {
        profile.variants.iter().map(|v| Some((v.clone(), Settings::of_variant(profile, v)?))).collect()
    }

    fn of_variant(profile: &Profile, top: &Variant) -> Option<Settings> {
        let part_ms = profile.part_ms?;
        let loop_secs = lcm(profile.segment_secs.max(1), 8);
        Some(Settings {
            width: top.width,
            height: top.height,
            fps: profile.fps,
            video_kbps: top.video_kbps,
            audio_kbps: top.audio_kbps,
            preset: profile.preset.clone(),
            segment_secs: profile.segment_secs,
            part: std::time::Duration::from_millis(u64::from(part_ms)),
            loop_segments: loop_secs / profile.segment_secs.max(1),
            window: profile.window,
        })
    }

    /// Small and cheap to encode (tests): 320x180 at 300 kbit/s, ultrafast, the `ll-hls`
    /// profile's 2 s segments of 1/3 s parts and 8 s loop.
    #[must_use]
    pub fn tiny() -> Settings {
        Settings {
            width: 320,
            height: 180,
            video_kbps: 300,
            audio_kbps: 64,
            preset: "ultrafast".into(),
            ..Settings::default()
        }
    }

    /// Checks every value against what LL-HLS and the encoder accept.
    ///
    /// # Errors
    /// [`Error::InvalidOverride`] naming the value and the accepted range.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: &'static str, value: String, expected: &'static str| {
            Err(Error::InvalidOverride { what, value, expected: expected.into() })
        };
        if !(2..=4).contains(&self.segment_secs) {
            return bad("segment length", format!("{} s", self.segment_secs), "2 to 4 s");
        }
        if !(0.2..=0.5).contains(&self.part.as_secs_f64()) {
            return bad("part length", format!("{:?}", self.part), "0.2 to 0.5 s");
        }
        if !(1..=120).contains(&self.fps) || self.part.as_secs_f64() * f64::from(self.fps) < 1.0 {
            return bad("frame rate", self.fps.to_string(), "1 to 120, at least one frame per part");
        }
        if !self.width.is_multiple_of(2)
            || !self.height.is_multiple_of(2)
            || self.width == 0
            || self.height == 0
        {
            return bad("picture size", format!("{}x{}", self.width, self.height), "even, non-zero sizes");
        }
        if self.loop_segments < 2 {
            return bad("loop length", format!("{} segments", self.loop_segments), "at least 2 segments");
        }
        // PART-HOLD-BACK plus a segment to join on: fewer and a player cannot start.
        if self.window < 3 {
            return bad("window", format!("{} segments", self.window), "at least 3 segments");
        }
        Ok(())
    }

    /// The loop's length in seconds.
    #[must_use]
    pub fn loop_secs(&self) -> u32 {
        self.loop_segments * self.segment_secs
    }
}

fn lcm(a: u32, b: u32) -> u32 {
    let (mut x, mut y) = (a, b);
    while y != 0 {
        (x, y) = (y, x % y);
    }
    a / x.max(1) * b
}

/// The ffmpeg arguments (without the program name) that encode the loop into `out`.
#[must_use]
pub fn args(s: &Settings, out: &Path) -> Vec<OsString> {
    let head: Vec<String> = vec![
        "-hide_banner".into(),
        "-nostdin".into(),
        "-loglevel".into(),
        "warning".into(),
        "-nostats".into(),
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("testsrc2=size={}x{}:rate={}", s.width, s.height, s.fps),
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        "sine=frequency=1000:sample_rate=48000".into(),
        // The AAC encoder's first packet is its priming, 1024 samples before the input's
        // start: starting the input that late puts it at zero. Otherwise the muxer shifts
        // every track by the priming and the video's first sample grows by it (the loop
        // would no longer be a whole number of frames, nor of audio ticks).
        "-af".into(),
        "asetpts=PTS+1024".into(),
        "-map".into(),
        "0:v".into(),
        "-map".into(),
        "1:a".into(),
        "-c:v".into(),
        "libx264".into(),
        "-preset".into(),
        s.preset.clone(),
        "-profile:v".into(),
        "high".into(),
        "-pix_fmt".into(),
        "yuv420p".into(),
        "-bf".into(),
        "0".into(),
    ];
    let tail: Vec<String> = vec![
        "-b:v".into(),
        format!("{}k", s.video_kbps),
        "-maxrate".into(),
        format!("{}k", s.video_kbps * 11 / 10),
        "-bufsize".into(),
        format!("{}k", s.video_kbps),
        "-c:a".into(),
        "aac".into(),
        "-b:a".into(),
        format!("{}k", s.audio_kbps),
        "-ar".into(),
        "48000".into(),
        "-ac".into(),
        "2".into(),
        "-t".into(),
        s.loop_secs().to_string(),
        "-f".into(),
        "mp4".into(),
        "-movflags".into(),
        "+frag_keyframe+empty_moov+default_base_moof".into(),
        "-frag_duration".into(),
        frag_duration_us(s).to_string(),
        "-y".into(),
        out.to_string_lossy().into_owned(),
    ];
    let gops = crate::encoder::closed_gops(s.segment_secs * s.fps, s.segment_secs);
    head.into_iter().chain(gops).chain(tail).map(OsString::from).collect()
}

/// Frames in a part: the part length rounded to whole frames (at least one).
#[must_use]
pub fn part_frames(s: &Settings) -> u32 {
    ((s.part.as_secs_f64() * f64::from(s.fps)).round() as u32).max(1)
}

/// `-frag_duration`: the muxer cuts a track's fragment before its first packet at least this
/// many microseconds past the fragment's first packet, so it is the length of
/// [`part_frames`] frames rounded down (10 frames at 30 fps: 333333, not 333334, which
/// would make 11-frame parts).
fn frag_duration_us(s: &Settings) -> u64 {
    u64::from(part_frames(s)) * 1_000_000 / u64::from(s.fps)
}

/// One part of the loop: a fragment and where it sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopPart {
    /// Index into [`Loop::fragments`].
    pub fragment: usize,
    /// Start, video ticks from the loop's start.
    pub start: u64,
    /// Video ticks.
    pub duration: u64,
    /// Starts with a sync sample (`INDEPENDENT=YES`).
    pub independent: bool,
}

/// One segment of the loop: consecutive parts, the first independent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopSegment {
    /// Its parts, in order.
    pub parts: Vec<LoopPart>,
    /// Start, video ticks from the loop's start.
    pub start: u64,
    /// Video ticks.
    pub duration: u64,
}

/// A loop ready to republish: init section, fragments, and their grouping.
#[derive(Debug, Clone)]
pub struct Loop {
    /// `ftyp` + `moov`.
    pub init: Vec<u8>,
    /// The fragments, each a part.
    pub fragments: Vec<Fragment>,
    /// The segments.
    pub segments: Vec<LoopSegment>,
    /// Video timescale: every tick count here is in it.
    pub timescale: u32,
    /// Length of one pass, video ticks.
    pub duration: u64,
    /// Every track's id and timescale.
    tracks: Vec<(u32, u32)>,
}

impl Loop {
    /// Splits `data` (a fragmented MP4) and groups its fragments into segments of about
    /// `segment_target`: a segment starts at an independent fragment once the one before
    /// reached 90 % of the target. Fragments without video (ffmpeg's audio tail past the
    /// last frame) are dropped.
    ///
    /// # Errors
    /// [`Mp4Error`] if the file does not split, does not start with a sync sample, has a
    /// gap in its video, or is not a whole number of ticks long in every track.
    pub fn from_mp4(data: &[u8], segment_target: Duration) -> Result<Loop, Mp4Error> {
        let movie = mp4::split(data)?;
        let video = movie.init.video()?;
        let fragments: Vec<Fragment> =
            movie.fragments.into_iter().filter(|f| f.run(video.id).is_some_and(|r| r.samples > 0)).collect();
        let target = (segment_target.as_secs_f64() * f64::from(video.timescale)).round() as u64;
        let mut segments: Vec<LoopSegment> = Vec::new();
        let first = fragments.first().and_then(|f| f.run(video.id)).ok_or(Mp4Error::NoVideo)?.decode_time;
        let mut at = first;
        for (i, f) in fragments.iter().enumerate() {
            let run = f.run(video.id).ok_or(Mp4Error::NoVideo)?;
            if run.decode_time != at {
                return Err(Mp4Error::Gap { index: i, found: run.decode_time, expected: at });
            }
            let part = LoopPart {
                fragment: i,
                start: at - first,
                duration: run.duration,
                independent: run.starts_with_sync,
            };
            let cut = match segments.last() {
                None if !part.independent => return Err(Mp4Error::NoSyncStart),
                None => true,
                Some(s) => part.independent && s.duration * 10 >= target * 9,
            };
            if cut {
                segments.push(LoopSegment { parts: Vec::new(), start: part.start, duration: 0 });
            }
            if let Some(s) = segments.last_mut() {
                s.parts.push(part);
                s.duration += part.duration;
            }
            at += run.duration;
        }
        let duration = at - first;
        let tracks: Vec<(u32, u32)> = movie.init.tracks.iter().map(|t| (t.id, t.timescale)).collect();
        for (id, ts) in &tracks {
            if (u128::from(duration) * u128::from(*ts)) % u128::from(video.timescale) != 0 {
                return Err(Mp4Error::Uneven { ticks: duration, timescale: video.timescale, track: *id });
            }
        }
        Ok(Loop { init: movie.init.bytes, fragments, segments, timescale: video.timescale, duration, tracks })
    }

    /// Parts in one pass.
    #[must_use]
    pub fn part_count(&self) -> usize {
        self.fragments.len()
    }

    /// Fragment `index` as published in pass `pass`: every track's decode times moved on by
    /// `pass` loop lengths, and sequence number `sequence`.
    #[must_use]
    pub fn fragment(&self, index: usize, pass: u64, sequence: u32) -> Vec<u8> {
        let shift = |track: u32| {
            let ts = self.tracks.iter().find(|t| t.0 == track).map_or(self.timescale, |t| t.1);
            let per_pass = u128::from(self.duration) * u128::from(ts) / u128::from(self.timescale);
            u64::try_from(per_pass * u128::from(pass)).unwrap_or(u64::MAX)
        };
        self.fragments[index].retimed(sequence, shift)
    }
}

/// The cache directory name of `settings`' loop.
#[must_use]
pub fn cache_key(ffmpeg: &Path, settings: &Settings) -> String {
    let mut argv = vec![OsString::from("llhls-fmp4-v1"), ffmpeg.as_os_str().to_owned()];
    argv.extend(args(settings, Path::new("@")));
    format!("llhls-{:016x}", fnv1a(&argv))
}

/// Returns the loop for `settings`, encoding it into `cache_root` first if needed (as fast
/// as the CPU allows; ffmpeg's output goes to `log`).
///
/// # Errors
/// [`Error::InvalidOverride`] for bad settings, [`Error::Spawn`] if ffmpeg cannot start,
/// [`Error::PreEncode`] if it fails, [`Error::File`] for cache problems or a file that does
/// not split into parts (the cause says why).
pub async fn prepare(
    ffmpeg: &Path,
    settings: &Settings,
    cache_root: &Path,
    log: &Path,
) -> Result<Loop, Error> {
    settings.validate()?;
    let dir = cached(cache_root, &cache_key(ffmpeg, settings), |tmp| async move {
        let file = tmp.join("loop.mp4");
        encode(ffmpeg, args(settings, &file), "ll-hls loop", log).await?;
        load(&file, settings).map(|_| ())
    })
    .await?;
    load(&dir.join("loop.mp4"), settings)
}

fn load(file: &Path, settings: &Settings) -> Result<Loop, Error> {
    let data = std::fs::read(file).map_err(io_err(file))?;
    Loop::from_mp4(&data, Duration::from_secs(u64::from(settings.segment_secs))).map_err(|e| Error::File {
        path: file.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, e),
    })
}

/// A loop made by the real ffmpeg, shared by the unit tests of this folder.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::OnceLock;

    use super::{args, Loop, LoopPart, LoopSegment, Settings};

    /// A loop with no media: segments of `parts[i]` parts of `part_ticks` each, the first
    /// independent, at `timescale`. For the timeline's arithmetic (no bytes to serve).
    pub(crate) fn synthetic(parts: &[u32], part_ticks: u64, timescale: u32) -> Loop {
        let mut segments = Vec::new();
        let mut at = 0;
        let mut fragment = 0;
        for n in parts {
            let start = at;
            let parts = (0..*n)
                .map(|i| {
                    let p = LoopPart { fragment, start: at, duration: part_ticks, independent: i == 0 };
                    fragment += 1;
                    at += part_ticks;
                    p
                })
                .collect();
            segments.push(LoopSegment { parts, start, duration: at - start });
        }
        Loop {
            init: Vec::new(),
            fragments: Vec::new(),
            segments,
            timescale,
            duration: at,
            tracks: vec![(1, timescale)],
        }
    }

    /// [`small`]'s loop as ffmpeg writes it, or `None` (with the reason on stderr) where
    /// ffmpeg is missing; under CI a missing ffmpeg fails instead (`make test` installs it).
    pub(crate) fn encoded() -> Option<&'static [u8]> {
        static FILE: OnceLock<Option<Vec<u8>>> = OnceLock::new();
        FILE.get_or_init(|| {
            let ffmpeg = match testkit::need::program("ffmpeg") {
                Ok(p) => p,
                Err(skip) => {
                    eprintln!("skipped: {skip}");
                    return None;
                }
            };
            let dir = tempfile::tempdir().expect("a temporary directory");
            let out = dir.path().join("loop.mp4");
            let status = std::process::Command::new(ffmpeg)
                .args(args(&Settings::tiny(), &out))
                .stdin(std::process::Stdio::null())
                .status()
                .expect("ffmpeg runs");
            assert!(status.success(), "ffmpeg failed: {status}");
            Some(std::fs::read(&out).expect("ffmpeg's output"))
        })
        .as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::encoded;
    use super::*;

    #[test]
    fn the_loop_is_segments_of_parts_each_segment_starting_independent() {
        let Some(data) = encoded() else { return };
        let s = Settings::tiny();
        let lp = Loop::from_mp4(data, Duration::from_secs(2)).unwrap();
        assert_eq!(lp.timescale % s.fps, 0, "whole ticks per frame at {} Hz", lp.timescale);
        let frame = u64::from(lp.timescale / s.fps);
        // 8 s at 30 fps: 240 frames; a part is 10 frames, a segment 60.
        assert_eq!(lp.duration, 240 * frame);
        assert_eq!(lp.segments.len(), 4);
        assert_eq!(lp.part_count(), 24);
        for (i, seg) in lp.segments.iter().enumerate() {
            assert_eq!(seg.start, i as u64 * 60 * frame);
            assert_eq!(seg.duration, 60 * frame);
            assert_eq!(seg.parts.len(), 6);
            for (j, p) in seg.parts.iter().enumerate() {
                assert_eq!(p.duration, 10 * frame, "segment {i} part {j}");
                assert_eq!(p.independent, j == 0, "segment {i} part {j}");
                assert_eq!(p.start, seg.start + j as u64 * 10 * frame);
            }
        }
        assert!(lp.init.starts_with(&[0, 0, 0]) && &lp.init[4..8] == b"ftyp");
    }

    #[test]
    fn a_longer_target_groups_whole_gops() {
        let Some(data) = encoded() else { return };
        let lp = Loop::from_mp4(data, Duration::from_secs(4)).unwrap();
        assert_eq!(lp.segments.len(), 2);
        assert!(lp.segments.iter().all(|s| s.parts.len() == 12 && s.parts[0].independent));
        assert_eq!(
            lp.segments[1].parts.iter().filter(|p| p.independent).count(),
            2,
            "a GOP starts mid-segment"
        );
    }

    #[test]
    fn a_later_pass_shifts_every_track_by_whole_loops() {
        let Some(data) = encoded() else { return };
        let lp = Loop::from_mp4(data, Duration::from_secs(2)).unwrap();
        let mut file = lp.init.clone();
        file.extend(lp.fragment(7, 3, 1000));
        let again = mp4::split(&file).unwrap();
        let (before, after) = (&lp.fragments[7], &again.fragments[0]);
        assert_eq!(after.sequence, 1000);
        assert_eq!(before.runs.len(), 2, "video and audio");
        for (b, a) in before.runs.iter().zip(&after.runs) {
            let ts = again.init.tracks.iter().find(|t| t.id == b.track).unwrap().timescale;
            // 8 s per pass, whatever the track's clock.
            assert_eq!(a.decode_time - b.decode_time, 3 * 8 * u64::from(ts), "track {}", b.track);
            assert_eq!(
                (a.duration, a.samples, a.starts_with_sync),
                (b.duration, b.samples, b.starts_with_sync)
            );
        }
    }

    #[test]
    fn the_argv_cuts_parts_and_keyframes_where_the_settings_say() {
        let a: Vec<String> = args(&Settings::default(), Path::new("/x/loop.mp4"))
            .iter()
            .map(|s| s.to_string_lossy().into())
            .collect();
        let a = a.join(" ");
        assert!(a.contains("-bf 0 -g 60 -keyint_min 60 -sc_threshold 0"), "{a}");
        assert!(a.contains("-force_key_frames expr:gte(t,n_forced*2)"), "{a}");
        assert!(a.contains("-af asetpts=PTS+1024"), "{a}");
        assert!(a.contains("-t 8 -f mp4 -movflags +frag_keyframe+empty_moov+default_base_moof"), "{a}");
        assert!(a.ends_with("-frag_duration 333333 -y /x/loop.mp4"), "{a}");
        let quarter = Settings { part: Duration::from_millis(250), ..Settings::default() };
        assert_eq!((part_frames(&quarter), frag_duration_us(&quarter)), (8, 266_666));
        let key = cache_key(Path::new("ffmpeg"), &Settings::default());
        assert_ne!(key, cache_key(Path::new("ffmpeg"), &Settings::tiny()));
    }

    #[test]
    fn settings_out_of_range_are_refused_with_what_is_accepted() {
        assert!(Settings::default().validate().is_ok());
        let e = |s: Settings| s.validate().unwrap_err().to_string();
        assert_eq!(
            e(Settings { segment_secs: 6, ..Settings::default() }),
            "invalid segment length 6 s: expected 2 to 4 s"
        );
        assert_eq!(
            e(Settings { part: Duration::from_millis(100), ..Settings::default() }),
            "invalid part length 100ms: expected 0.2 to 0.5 s"
        );
        assert_eq!(
            e(Settings { window: 2, ..Settings::default() }),
            "invalid window 2 segments: expected at least 3 segments"
        );
    }
}
