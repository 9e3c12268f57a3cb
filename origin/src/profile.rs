//! Profiles: named bundles of encoder, window and caching settings, plus user overrides.
//!
//! Every rate-control setting is derived from the target bitrate so it is valid by
//! construction: `maxrate = 1.1 × bitrate`, `bufsize = vbv_seconds × bitrate`, and no
//! `minrate` at all (the reference origin set `-minrate` above `-maxrate`).

use std::fmt;

use serde::Serialize;

use crate::error::Error;

/// One rendition of the picture (a single-bitrate profile has exactly one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Variant {
    /// Directory and `var_stream_map` name, e.g. `720p`.
    pub name: String,
    /// Picture width in pixels (even).
    pub width: u32,
    /// Picture height in pixels (even).
    pub height: u32,
    /// Target video bitrate, kbit/s.
    pub video_kbps: u32,
    /// Audio bitrate, kbit/s.
    pub audio_kbps: u32,
}

impl Variant {
    fn new(name: &str, width: u32, height: u32, video_kbps: u32, audio_kbps: u32) -> Variant {
        Variant { name: name.to_owned(), width, height, video_kbps, audio_kbps }
    }

    /// Peak video bitrate handed to the encoder, kbit/s.
    #[must_use]
    pub fn maxrate_kbps(&self) -> u32 {
        self.video_kbps.saturating_mul(11) / 10
    }

    /// Peak bandwidth announced in a master playlist, bit/s.
    #[must_use]
    pub fn bandwidth_bps(&self) -> u64 {
        (u64::from(self.maxrate_kbps()) + u64::from(self.audio_kbps)) * 1000
    }
}

/// Which logs nginx and ffmpeg write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Logging {
    /// Errors only.
    Quiet,
    /// nginx access log with request time and bytes for every request.
    Access,
    /// Everything: nginx debug error log, ffmpeg `-loglevel debug`, access log.
    Debug,
}

/// A named origin configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    /// The name given to `--profile`.
    pub name: String,
    /// One line for `hls-origin profiles`.
    pub summary: String,
    /// Segment length in whole seconds (also the GOP length).
    pub segment_secs: u32,
    /// Segments listed in a media playlist.
    pub window: u32,
    /// Segments kept on disk behind the window so in-flight downloads finish.
    pub delete_threshold: u32,
    /// Frames per second.
    pub fps: u32,
    /// libx264 preset.
    pub preset: String,
    /// libx264 tune, if any.
    pub tune: Option<String>,
    /// VBV buffer in seconds of the target bitrate.
    pub vbv_seconds: f64,
    /// The renditions, highest first. More than one means a master playlist.
    pub variants: Vec<Variant>,
    /// `Cache-Control` for media and master playlists.
    pub playlist_cache_control: String,
    /// Which logs to write.
    pub logging: Logging,
    /// LL-HLS part target in milliseconds: set, the stream is LL-HLS (fMP4 parts, blocking
    /// reloads), served from a pre-encoded loop by hls-origin's own server behind nginx.
    pub part_ms: Option<u32>,
}

/// Values that replace a profile's settings (`--width`, `--bitrate`, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Overrides {
    /// Picture width; for a ladder, the top rung's (lower rungs keep their proportion).
    /// Without [`Overrides::bitrate_kbps`], a new picture size scales the bitrate by area.
    pub width: Option<u32>,
    /// Picture height; for a ladder, the top rung's.
    pub height: Option<u32>,
    /// Frames per second.
    pub fps: Option<u32>,
    /// Video bitrate in kbit/s; for a ladder, the top rung's (lower rungs scale with it).
    pub bitrate_kbps: Option<u32>,
    /// Segment length in seconds.
    pub segment_secs: Option<u32>,
    /// Playlist window in segments.
    pub window: Option<u32>,
}

/// Names of every built-in profile, in the order `hls-origin profiles` lists them.
pub const NAMES: [&str; 8] =
    ["default", "low-latency", "ll-hls", "ll-hls-abr", "4k-abr", "stress", "logged", "debug"];

const PLAYLIST_CC: &str = "public, max-age=1, stale-while-revalidate=2, no-transform";

impl Profile {
    /// The built-in profile called `name`.
    ///
    /// # Errors
    /// [`Error::UnknownProfile`] naming the profiles that exist.
    pub fn named(name: &str) -> Result<Profile, Error> {
        let base = Profile {
            name: name.to_owned(),
            summary: "general testing: 720p ~2 Mbit/s, 2 s segments, window 10".to_owned(),
            segment_secs: 2,
            window: 10,
            delete_threshold: 5,
            fps: 30,
            preset: "veryfast".to_owned(),
            tune: Some("film".to_owned()),
            vbv_seconds: 2.0,
            variants: vec![Variant::new("720p", 1280, 720, 2000, 128)],
            playlist_cache_control: PLAYLIST_CC.to_owned(),
            logging: Logging::Quiet,
            part_ms: None,
        };
        let profile = match name {
            "default" => base,
            "low-latency" => Profile {
                summary: "1 s segments, window 6, zerolatency tuning, short cache lifetimes".to_owned(),
                segment_secs: 1,
                window: 6,
                preset: "ultrafast".to_owned(),
                tune: Some("zerolatency".to_owned()),
                vbv_seconds: 1.0,
                variants: vec![Variant::new("720p", 1280, 720, 2000, 96)],
                playlist_cache_control: "public, max-age=1, no-transform".to_owned(),
                ..base
            },
            "ll-hls" => Profile {
                summary: "Low-Latency HLS: fMP4 parts of 1/3 s in 2 s segments, blocking reloads, \
                          delta updates, access log (a loop served by hls-origin itself)"
                    .to_owned(),
                variants: vec![Variant::new("720p", 1280, 720, 2000, 96)],
                tune: None,
                playlist_cache_control: "no-cache".to_owned(),
                logging: Logging::Access,
                part_ms: Some(333),
                ..base
            },
            "ll-hls-abr" => Profile {
                summary: "LL-HLS ABR ladder 720p/480p/360p with a master playlist and rendition \
                          reports, timed as ll-hls (one loop per rendition, parts aligned)"
                    .to_owned(),
                variants: vec![
                    Variant::new("720p", 1280, 720, 2000, 96),
                    Variant::new("480p", 854, 480, 1000, 96),
                    Variant::new("360p", 640, 360, 500, 64),
                ],
                tune: None,
                playlist_cache_control: "no-cache".to_owned(),
                logging: Logging::Access,
                part_ms: Some(333),
                ..base
            },
            "4k-abr" => Profile {
                summary: "ABR ladder 2160p/1080p/720p/480p/360p with a master playlist".to_owned(),
                variants: vec![
                    Variant::new("2160p", 3840, 2160, 15000, 192),
                    Variant::new("1080p", 1920, 1080, 5000, 128),
                    Variant::new("720p", 1280, 720, 2000, 128),
                    Variant::new("480p", 854, 480, 1000, 96),
                    Variant::new("360p", 640, 360, 500, 64),
                ],
                ..base
            },
            "stress" => Profile {
                summary: "maximum request throughput: 720p ultrafast, window 15".to_owned(),
                window: 15,
                fps: 25,
                preset: "ultrafast".to_owned(),
                tune: Some("zerolatency".to_owned()),
                variants: vec![Variant::new("720p", 1280, 720, 1500, 96)],
                ..base
            },
            "logged" => Profile {
                summary: "as default, plus an nginx access log with request time and bytes".to_owned(),
                logging: Logging::Access,
                ..base
            },
            "debug" => Profile {
                summary: "as default, with full nginx and ffmpeg debug logs".to_owned(),
                logging: Logging::Debug,
                ..base
            },
            _ => {
                return Err(Error::UnknownProfile { name: name.to_owned(), known: NAMES.join(", ") });
            }
        };
        Ok(profile)
    }

    /// Every built-in profile.
    #[must_use]
    pub fn all() -> Vec<Profile> {
        NAMES.iter().filter_map(|n| Profile::named(n).ok()).collect()
    }

    /// True when the origin publishes a master playlist over several variants.
    #[must_use]
    pub fn is_abr(&self) -> bool {
        self.variants.len() > 1
    }

    /// Frames per GOP: one closed GOP per segment.
    #[must_use]
    pub fn gop(&self) -> u32 {
        self.fps * self.segment_secs
    }

    /// How long a segment exists on disk: (window + delete threshold) × segment length.
    #[must_use]
    pub fn segment_lifetime_secs(&self) -> u32 {
        (self.window + self.delete_threshold) * self.segment_secs
    }

    /// `Cache-Control` for segments: immutable, cacheable for as long as the segment exists.
    #[must_use]
    pub fn segment_cache_control(&self) -> String {
        format!("public, max-age={}, immutable, no-transform", self.segment_lifetime_secs().max(10))
    }

    /// The playlist a viewer opens: `master.m3u8` for ABR, else `stream.m3u8`.
    #[must_use]
    pub fn entry_playlist(&self) -> &'static str {
        if self.is_abr() {
            "master.m3u8"
        } else {
            "stream.m3u8"
        }
    }

    /// Media playlist paths relative to the served root, one per variant.
    #[must_use]
    pub fn media_playlists(&self) -> Vec<String> {
        if self.is_abr() {
            self.variants.iter().map(|v| format!("{}/stream.m3u8", v.name)).collect()
        } else {
            vec!["stream.m3u8".to_owned()]
        }
    }

    /// Applies `o` after checking every value.
    ///
    /// # Errors
    /// [`Error::InvalidOverride`] naming the value and the accepted range.
    pub fn apply(&mut self, o: &Overrides) -> Result<(), Error> {
        check("width", o.width, 16, 7680, true)?;
        check("height", o.height, 16, 4320, true)?;
        check("fps", o.fps, 1, 120, false)?;
        check("bitrate", o.bitrate_kbps, 16, 200_000, false)?;
        check("segment seconds", o.segment_secs, 1, 30, false)?;
        check("window", o.window, 1, 1000, false)?;
        let top = self.variants[0].clone();
        let (w, h) = match (o.width, o.height) {
            (Some(w), Some(h)) => (w, h),
            // One side given: keep the aspect ratio, rounded to even.
            (Some(w), None) => (w, even(u64::from(w) * u64::from(top.height) / u64::from(top.width))),
            (None, Some(h)) => (even(u64::from(h) * u64::from(top.width) / u64::from(top.height)), h),
            (None, None) => (top.width, top.height),
        };
        // Without an explicit bitrate, the bitrate follows the picture area (bits per pixel
        // stay as the profile chose them), with a floor so tiny pictures stay watchable.
        let area = |w: u32, h: u32| u64::from(w) * u64::from(h);
        let rate = o.bitrate_kbps.unwrap_or_else(|| {
            let scaled = u64::from(top.video_kbps) * area(w, h) / area(top.width, top.height).max(1);
            u32::try_from(scaled).unwrap_or(u32::MAX).max(64)
        });
        for v in &mut self.variants {
            let scale = |x: u32, new_top: u32, old_top: u32| {
                u64::from(x) * u64::from(new_top) / u64::from(old_top.max(1))
            };
            let nw = even(scale(v.width, w, top.width)).max(16);
            let nh = even(scale(v.height, h, top.height)).max(16);
            let nb = u32::try_from(scale(v.video_kbps, rate, top.video_kbps)).unwrap_or(u32::MAX);
            if (nw, nh) != (v.width, v.height) {
                v.name = format!("{nh}p");
            }
            v.width = nw;
            v.height = nh;
            v.video_kbps = nb.max(16);
        }
        // Scaling may make two rungs collide on a name; keep names unique for directories.
        let mut seen = std::collections::HashSet::new();
        for (i, v) in self.variants.iter_mut().enumerate() {
            if !seen.insert(v.name.clone()) {
                v.name = format!("{}-{i}", v.name);
                seen.insert(v.name.clone());
            }
        }
        if let Some(fps) = o.fps {
            self.fps = fps;
        }
        if let Some(s) = o.segment_secs {
            self.segment_secs = s;
        }
        if let Some(n) = o.window {
            self.window = n;
        }
        Ok(())
    }
}

fn even(x: u64) -> u32 {
    u32::try_from(x & !1).unwrap_or(u32::MAX - 1)
}

fn check(what: &'static str, v: Option<u32>, min: u32, max: u32, even: bool) -> Result<(), Error> {
    let Some(v) = v else { return Ok(()) };
    if v < min || v > max || (even && v % 2 != 0) {
        let parity = if even { " and even" } else { "" };
        return Err(Error::InvalidOverride {
            what,
            value: v.to_string(),
            expected: format!("a number from {min} to {max}{parity}"),
        });
    }
    Ok(())
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ladder: Vec<String> = self
            .variants
            .iter()
            .map(|v| format!("{}x{}@{}k+a{}k", v.width, v.height, v.video_kbps, v.audio_kbps))
            .collect();
        write!(
            f,
            "{:<12} seg {}s  window {:<3} {}fps {:<9} {}  — {}",
            self.name,
            self.segment_secs,
            self.window,
            self.fps,
            self.preset,
            ladder.join(" "),
            self.summary
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_has_valid_rate_control() {
        for p in Profile::all() {
            assert!(!p.variants.is_empty(), "{}", p.name);
            assert!(p.vbv_seconds > 0.0, "{}: a VBV buffer of {} s", p.name, p.vbv_seconds);
            for v in &p.variants {
                // A peak above the target and at most 10 % above it (the module's rule).
                assert!(v.maxrate_kbps() > v.video_kbps, "{} {}", p.name, v.name);
                assert!(v.maxrate_kbps() * 10 <= v.video_kbps * 11, "{} {}", p.name, v.name);
                assert!(v.audio_kbps > 0, "{} {}", p.name, v.name);
                assert_eq!(
                    (v.width % 2, v.height % 2),
                    (0, 0),
                    "{} {}: yuv420p needs even sizes",
                    p.name,
                    v.name
                );
            }
            // A ladder goes down: each rung smaller and cheaper than the one above.
            for pair in p.variants.windows(2) {
                assert!(
                    pair[1].height < pair[0].height && pair[1].video_kbps < pair[0].video_kbps,
                    "{}",
                    p.name
                );
            }
        }
        assert_eq!(Profile::all().len(), NAMES.len());
    }

    #[test]
    fn table_values() {
        let d = Profile::named("default").unwrap();
        assert_eq!((d.segment_secs, d.window, d.variants[0].height), (2, 10, 720));
        let ll = Profile::named("low-latency").unwrap();
        assert_eq!((ll.segment_secs, ll.window, ll.tune.as_deref()), (1, 6, Some("zerolatency")));
        let abr = Profile::named("4k-abr").unwrap();
        let heights: Vec<u32> = abr.variants.iter().map(|v| v.height).collect();
        assert_eq!(heights, vec![2160, 1080, 720, 480, 360]);
        assert!(abr.is_abr());
        assert_eq!(abr.entry_playlist(), "master.m3u8");
        let s = Profile::named("stress").unwrap();
        assert_eq!((s.window, s.preset.as_str()), (15, "ultrafast"));
        // One GOP per segment: frames per second × segment seconds.
        let gops: Vec<(String, u32)> =
            Profile::all().into_iter().map(|p| (p.name.clone(), p.gop())).collect();
        let want = [
            ("default", 60),
            ("low-latency", 30),
            ("ll-hls", 60),
            ("ll-hls-abr", 60),
            ("4k-abr", 60),
            ("stress", 50),
            ("logged", 60),
            ("debug", 60),
        ];
        assert_eq!(gops, want.map(|(n, g)| (n.to_owned(), g)));
        assert_eq!(Profile::named("logged").unwrap().logging, Logging::Access);
        assert_eq!(Profile::named("debug").unwrap().logging, Logging::Debug);
        // LL-HLS: 10-frame parts (1/3 s at 30 fps) and a loop of whole 8 s (whole AAC frames).
        let l = crate::llhls::Settings::of(&Profile::named("ll-hls").unwrap()).unwrap();
        assert_eq!((l.segment_secs, l.part, l.loop_segments), (2, std::time::Duration::from_millis(333), 4));
        assert_eq!(crate::llhls::source::part_frames(&l), 10);
        l.validate().unwrap();
        let mut three = Profile::named("ll-hls").unwrap();
        three.apply(&Overrides { segment_secs: Some(3), ..Overrides::default() }).unwrap();
        assert_eq!(crate::llhls::Settings::of(&three).unwrap().loop_segments * 3, 24);
        assert!(crate::llhls::Settings::of(&Profile::named("default").unwrap()).is_none());
        // The LL-HLS ladder: one loop per rung, every one timed as ll-hls's.
        let abr = Profile::named("ll-hls-abr").unwrap();
        assert!(abr.is_abr());
        assert_eq!(abr.media_playlists(), ["720p/stream.m3u8", "480p/stream.m3u8", "360p/stream.m3u8"]);
        let rungs = crate::llhls::Settings::ladder(&abr).unwrap();
        let sizes: Vec<(u32, u32, u32)> =
            rungs.iter().map(|(_, s)| (s.width, s.height, s.video_kbps)).collect();
        assert_eq!(sizes, [(1280, 720, 2000), (854, 480, 1000), (640, 360, 500)]);
        for (v, s) in &rungs {
            assert_eq!(
                (s.fps, s.segment_secs, s.part, s.loop_segments),
                (l.fps, l.segment_secs, l.part, l.loop_segments),
                "{}",
                v.name
            );
            s.validate().unwrap();
        }
        assert!(crate::llhls::Settings::ladder(&Profile::named("4k-abr").unwrap()).is_none());
    }

    #[test]
    fn unknown_profile_lists_known_ones() {
        let e = Profile::named("4k").unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown profile \"4k\"; known profiles: default, low-latency, ll-hls, ll-hls-abr, 4k-abr, stress, logged, \
             debug"
        );
    }

    #[test]
    fn overrides_scale_the_ladder() {
        let mut abr = Profile::named("4k-abr").unwrap();
        abr.apply(&Overrides { height: Some(360), bitrate_kbps: Some(600), ..Overrides::default() }).unwrap();
        let v: Vec<(u32, u32, u32)> =
            abr.variants.iter().map(|v| (v.width, v.height, v.video_kbps)).collect();
        assert_eq!(v[0], (640, 360, 600));
        assert_eq!(v[1], (320, 180, 200));
        assert_eq!(abr.variants[0].name, "360p");
        let names: std::collections::HashSet<_> = abr.variants.iter().map(|v| &v.name).collect();
        assert_eq!(names.len(), abr.variants.len());
    }

    #[test]
    fn a_smaller_picture_gets_a_proportionally_smaller_bitrate() {
        let mut p = Profile::named("default").unwrap();
        p.apply(&Overrides { height: Some(360), ..Overrides::default() }).unwrap();
        assert_eq!((p.variants[0].width, p.variants[0].video_kbps), (640, 500));
        let mut abr = Profile::named("4k-abr").unwrap();
        abr.apply(&Overrides { height: Some(360), ..Overrides::default() }).unwrap();
        let rates: Vec<u32> = abr.variants.iter().map(|v| v.video_kbps).collect();
        assert_eq!(rates[0], 15000 / 36);
        assert!(rates.windows(2).all(|w| w[0] > w[1]), "{rates:?}");
        let mut tiny = Profile::named("default").unwrap();
        tiny.apply(&Overrides { height: Some(90), ..Overrides::default() }).unwrap();
        assert_eq!(tiny.variants[0].video_kbps, 64, "floor");
    }

    #[test]
    fn bad_override_names_the_value() {
        let mut p = Profile::named("default").unwrap();
        let e = p.apply(&Overrides { width: Some(321), ..Overrides::default() }).unwrap_err();
        assert_eq!(e.to_string(), "invalid width 321: expected a number from 16 to 7680 and even");
        assert_eq!(p, Profile::named("default").unwrap(), "a failed apply changes nothing");
    }
}
