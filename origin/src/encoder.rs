//! ffmpeg argv for the test pattern: a live sliding-window encode, or a finite loop for replay.

use std::ffi::OsString;
use std::path::Path;

use crate::profile::{Logging, Profile};

/// What the encoder writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Real-time (`-re`) live HLS with a sliding window and segment deletion, forever.
    Live,
    /// As fast as possible, `seconds` of content as a VOD playlist (the replay loop).
    Loop {
        /// Length of the loop in seconds (a multiple of the segment length).
        seconds: u32,
    },
}

/// One closed GOP of `frames` per segment of `segment_secs`: keyframes exactly on segment
/// boundaries, whatever the encoder's lookahead or scene cuts would do.
#[must_use]
pub fn closed_gops(frames: u32, segment_secs: u32) -> [String; 8] {
    let gop = frames.to_string();
    [
        "-g".into(),
        gop.clone(),
        "-keyint_min".into(),
        gop,
        "-sc_threshold".into(),
        "0".into(),
        "-force_key_frames".into(),
        format!("expr:gte(t,n_forced*{segment_secs})"),
    ]
}

/// The ffmpeg arguments (without the program name) that write `profile` into `dir`.
///
/// Single-variant profiles write `dir/stream.m3u8` + `dir/seg%05d.ts`; ABR profiles write
/// `dir/master.m3u8` and `dir/<variant>/stream.m3u8` + segments.
#[must_use]
pub fn args(profile: &Profile, dir: &Path, output: Output) -> Vec<OsString> {
    let mut a: Vec<String> = vec!["-hide_banner".into(), "-nostdin".into()];
    let level = if profile.logging == Logging::Debug { "debug" } else { "warning" };
    a.extend(["-loglevel".into(), level.into(), "-nostats".into()]);
    if output == Output::Live {
        a.push("-re".into());
    }
    let top = &profile.variants[0];
    a.extend([
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("testsrc2=size={}x{}:rate={}", top.width, top.height, profile.fps),
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        "sine=frequency=1000:sample_rate=48000".into(),
    ]);
    let n = profile.variants.len();
    if profile.is_abr() {
        let mut graph = format!("[0:v]split={n}");
        for i in 0..n {
            graph.push_str(&format!("[s{i}]"));
        }
        for (i, v) in profile.variants.iter().enumerate() {
            graph.push_str(&format!(";[s{i}]scale={}:{}[o{i}]", v.width, v.height));
        }
        a.extend(["-filter_complex".into(), graph]);
        for i in 0..n {
            a.extend(["-map".into(), format!("[o{i}]"), "-map".into(), "1:a".into()]);
        }
    } else {
        a.extend(["-map".into(), "0:v".into(), "-map".into(), "1:a".into()]);
    }
    a.extend(["-c:v".into(), "libx264".into(), "-preset".into(), profile.preset.clone()]);
    if let Some(tune) = &profile.tune {
        a.extend(["-tune".into(), tune.clone()]);
    }
    a.extend(["-profile:v".into(), "high".into(), "-pix_fmt".into(), "yuv420p".into()]);
    a.extend(closed_gops(profile.gop(), profile.segment_secs));
    for (i, v) in profile.variants.iter().enumerate() {
        let bufsize = (f64::from(v.video_kbps) * profile.vbv_seconds).round();
        a.extend([
            format!("-b:v:{i}"),
            format!("{}k", v.video_kbps),
            format!("-maxrate:v:{i}"),
            format!("{}k", v.maxrate_kbps()),
            format!("-bufsize:v:{i}"),
            format!("{bufsize}k"),
            format!("-b:a:{i}"),
            format!("{}k", v.audio_kbps),
        ]);
    }
    a.extend(["-c:a".into(), "aac".into(), "-ar".into(), "48000".into(), "-ac".into(), "2".into()]);
    if let Output::Loop { seconds } = output {
        a.extend(["-t".into(), seconds.to_string()]);
    }
    a.extend(["-f".into(), "hls".into(), "-hls_time".into(), profile.segment_secs.to_string()]);
    match output {
        Output::Live => a.extend([
            "-hls_list_size".into(),
            profile.window.to_string(),
            "-hls_delete_threshold".into(),
            profile.delete_threshold.to_string(),
            "-hls_flags".into(),
            // append_list: a restarted encoder continues the sequence (with a discontinuity)
            // instead of starting over at 0 under viewers' feet.
            // program_date_time: each segment's wall-clock time, for viewers' live-edge latency.
            "delete_segments+omit_endlist+temp_file+independent_segments+append_list+program_date_time"
                .into(),
        ]),
        Output::Loop { .. } => a.extend([
            "-hls_list_size".into(),
            "0".into(),
            "-hls_playlist_type".into(),
            "vod".into(),
            "-hls_flags".into(),
            "independent_segments".into(),
        ]),
    }
    let dir = dir.to_string_lossy();
    if profile.is_abr() {
        let map: Vec<String> = profile
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| format!("v:{i},a:{i},name:{}", v.name))
            .collect();
        a.extend([
            "-var_stream_map".into(),
            map.join(" "),
            "-master_pl_name".into(),
            "master.m3u8".into(),
            "-hls_segment_filename".into(),
            format!("{dir}/%v/seg%05d.ts"),
            format!("{dir}/%v/stream.m3u8"),
        ]);
    } else {
        a.extend(["-hls_segment_filename".into(), format!("{dir}/seg%05d.ts"), format!("{dir}/stream.m3u8")]);
    }
    a.into_iter().map(OsString::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(p: &Profile, out: Output) -> String {
        args(p, Path::new("/x"), out)
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn live_default_argv() {
        let p = Profile::named("default").unwrap();
        let a = joined(&p, Output::Live);
        assert!(a.contains("-re -f lavfi -i testsrc2=size=1280x720:rate=30"), "{a}");
        assert!(a.contains("-g 60 -keyint_min 60"), "{a}");
        assert!(a.contains("-b:v:0 2000k -maxrate:v:0 2200k -bufsize:v:0 4000k"), "{a}");
        assert!(!a.contains("minrate"), "{a}");
        assert!(a.contains("-hls_list_size 10 -hls_delete_threshold 5"), "{a}");
        assert!(a.contains("delete_segments+omit_endlist+temp_file"), "{a}");
        assert!(a.ends_with("-hls_segment_filename /x/seg%05d.ts /x/stream.m3u8"), "{a}");
    }

    #[test]
    fn loop_is_vod_and_not_realtime() {
        let p = Profile::named("default").unwrap();
        let a = joined(&p, Output::Loop { seconds: 12 });
        assert!(!a.contains("-re "), "{a}");
        assert!(a.contains("-t 12 -f hls"), "{a}");
        assert!(a.contains("-hls_playlist_type vod"), "{a}");
    }

    #[test]
    fn abr_maps_every_variant() {
        let p = Profile::named("4k-abr").unwrap();
        let a = joined(&p, Output::Live);
        assert!(a.contains("split=5[s0][s1][s2][s3][s4];[s0]scale=3840:2160[o0]"), "{a}");
        assert!(a.contains("v:4,a:4,name:360p"), "{a}");
        assert!(a.contains("-master_pl_name master.m3u8"), "{a}");
        assert!(a.contains("/x/%v/stream.m3u8"), "{a}");
    }
}
