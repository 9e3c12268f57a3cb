//! Fragmented MP4, as far as LL-HLS needs it: split a file into its init section
//! (`ftyp` + `moov`) and its fragments (`moof` + `mdat`), read each fragment's timing per track,
//! and rewrite a fragment's decode times (`tfdt`) and sequence number (`mfhd`) so a loop can be
//! republished forever with increasing times.
//!
//! Pure functions over bytes (ISO/IEC 14496-12). Every read is bounds-checked: a malformed
//! file is an [`Mp4Error`] naming the byte where it went wrong, never a panic.

/// Why a file is not a fragmented MP4 this module can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mp4Error {
    /// A box or field runs past its container, or a size is impossible.
    #[error("malformed {what} at byte {at}")]
    Malformed {
        /// The box or field.
        what: &'static str,
        /// Offset in the file.
        at: usize,
    },
    /// A box every fragmented MP4 has is absent.
    #[error("no {what} box")]
    Missing {
        /// Its type, e.g. `moov`.
        what: &'static str,
    },
    /// A track fragment with an absolute base data offset cannot be moved to another file.
    #[error("the track fragment at byte {at} has an absolute base data offset (mux with default_base_moof)")]
    AbsoluteOffset {
        /// Offset of its `tfhd`.
        at: usize,
    },
    /// A `moof` not followed by its `mdat`.
    #[error("the moof at byte {at} is not followed by an mdat")]
    LoneMoof {
        /// Offset of the `moof`.
        at: usize,
    },
    /// No track has a video handler.
    #[error("no video track in the moov")]
    NoVideo,
    /// The first fragment's video does not start with a sync sample.
    #[error("the first fragment does not start with a video sync sample")]
    NoSyncStart,
    /// A fragment's video does not start where the previous one's ended.
    #[error("fragment {index}: video decode time {found}, expected {expected}")]
    Gap {
        /// Index of the fragment (from 0).
        index: usize,
        /// Its `tfdt`.
        found: u64,
        /// The previous fragment's end.
        expected: u64,
    },
    /// The loop's length is not a whole number of ticks of a track.
    #[error("the loop ({ticks} ticks at {timescale} Hz) is not a whole number of ticks of track {track}")]
    Uneven {
        /// Loop length in video ticks.
        ticks: u64,
        /// Video timescale.
        timescale: u32,
        /// The track.
        track: u32,
    },
}

/// One track of the movie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Track {
    /// `tkhd` track id.
    pub id: u32,
    /// `mdhd` timescale: ticks per second.
    pub timescale: u32,
    /// `hdlr` handler is `vide`.
    pub video: bool,
    /// `trex` default sample duration.
    default_duration: u32,
    /// `trex` default sample flags.
    default_flags: u32,
}

/// The init section: `ftyp` and `moov`, as they were in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Init {
    /// The bytes to serve (`EXT-X-MAP`).
    pub bytes: Vec<u8>,
    /// The tracks, in `moov` order.
    pub tracks: Vec<Track>,
}

impl Init {
    /// The first video track.
    ///
    /// # Errors
    /// [`Mp4Error::NoVideo`].
    pub fn video(&self) -> Result<Track, Mp4Error> {
        self.tracks.iter().copied().find(|t| t.video).ok_or(Mp4Error::NoVideo)
    }
}

/// One track's run of samples in a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackRun {
    /// Track id.
    pub track: u32,
    /// `tfdt` baseMediaDecodeTime, in the track's timescale.
    pub decode_time: u64,
    /// Sum of the sample durations, in the track's timescale.
    pub duration: u64,
    /// Samples.
    pub samples: u32,
    /// The first sample is a sync sample.
    pub starts_with_sync: bool,
    /// Where the 8-byte `tfdt` value is, from the start of the fragment (always version 1
    /// after [`split`]).
    tfdt_at: usize,
}

/// A `moof` and its `mdat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The bytes (every `tfdt` version 1).
    pub bytes: Vec<u8>,
    /// `mfhd` sequence number.
    pub sequence: u32,
    /// One per track fragment.
    pub runs: Vec<TrackRun>,
    /// Where the 4-byte `mfhd` sequence number is.
    mfhd_at: usize,
}

impl Fragment {
    /// The run of track `id`, if the fragment has one.
    #[must_use]
    pub fn run(&self, id: u32) -> Option<&TrackRun> {
        self.runs.iter().find(|r| r.track == id)
    }

    /// A copy with sequence number `sequence` and every track's decode time moved forward by
    /// `shift(track id)` ticks.
    #[must_use]
    pub fn retimed(&self, sequence: u32, shift: impl Fn(u32) -> u64) -> Vec<u8> {
        let mut out = self.bytes.clone();
        out[self.mfhd_at..self.mfhd_at + 4].copy_from_slice(&sequence.to_be_bytes());
        for r in &self.runs {
            let t = r.decode_time.wrapping_add(shift(r.track));
            out[r.tfdt_at..r.tfdt_at + 8].copy_from_slice(&t.to_be_bytes());
        }
        out
    }
}

/// A fragmented MP4 file, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movie {
    /// `ftyp` + `moov`.
    pub init: Init,
    /// Every `moof` + `mdat`, in file order.
    pub fragments: Vec<Fragment>,
}

/// A box: its type and where it and its payload are in the buffer.
#[derive(Debug, Clone, Copy)]
struct Box4 {
    kind: [u8; 4],
    start: usize,
    /// First byte after the header.
    body: usize,
    end: usize,
}

/// The boxes in `data[from..to]`.
fn boxes(data: &[u8], from: usize, to: usize) -> Result<Vec<Box4>, Mp4Error> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        let bad = Mp4Error::Malformed { what: "box header", at };
        let size = u64::from(be32(data, at).ok_or(bad.clone())?);
        let kind: [u8; 4] = data.get(at + 4..at + 8).and_then(|k| k.try_into().ok()).ok_or(bad.clone())?;
        let (size, header) = match size {
            0 => ((to - at) as u64, 8),
            1 => (be64(data, at + 8).ok_or(bad.clone())?, 16),
            s => (s, 8),
        };
        let end = usize::try_from(size).ok().and_then(|s| at.checked_add(s)).ok_or(bad.clone())?;
        if size < header || end > to {
            return Err(bad);
        }
        out.push(Box4 { kind, start: at, body: at + usize::try_from(header).unwrap_or(8), end });
        at = end;
    }
    Ok(out)
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn be64(d: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(d.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

fn child(data: &[u8], parent: &Box4, kind: &[u8; 4]) -> Result<Option<Box4>, Mp4Error> {
    Ok(boxes(data, parent.body, parent.end)?.into_iter().find(|b| &b.kind == kind))
}

fn field(data: &[u8], at: usize, what: &'static str) -> Result<u32, Mp4Error> {
    be32(data, at).ok_or(Mp4Error::Malformed { what, at })
}

/// Splits a fragmented MP4 into its init section and fragments. Version 0 `tfdt`s are
/// widened to version 1 (the `moof` grows and data offsets follow), so a retimed fragment
/// never overflows 32 bits.
///
/// # Errors
/// [`Mp4Error`] for anything that is not a fragmented MP4 with moof-relative data offsets.
pub fn split(data: &[u8]) -> Result<Movie, Mp4Error> {
    let top = boxes(data, 0, data.len())?;
    let ftyp = top.iter().find(|b| &b.kind == b"ftyp").ok_or(Mp4Error::Missing { what: "ftyp" })?;
    let moov = top.iter().find(|b| &b.kind == b"moov").ok_or(Mp4Error::Missing { what: "moov" })?;
    let tracks = tracks(data, moov)?;
    let mut bytes = data[ftyp.start..ftyp.end].to_vec();
    bytes.extend_from_slice(&data[moov.start..moov.end]);
    let init = Init { bytes, tracks };
    let mut fragments = Vec::new();
    for (i, b) in top.iter().enumerate() {
        if &b.kind != b"moof" {
            continue;
        }
        let mdat = top.get(i + 1).filter(|m| &m.kind == b"mdat").ok_or(Mp4Error::LoneMoof { at: b.start })?;
        let moof = widen_tfdt(&data[b.start..b.end], b.start)?;
        let mut bytes = moof;
        bytes.extend_from_slice(&data[mdat.start..mdat.end]);
        fragments.push(fragment(bytes, &init.tracks, b.start)?);
    }
    if fragments.is_empty() {
        return Err(Mp4Error::Missing { what: "moof" });
    }
    Ok(Movie { init, fragments })
}

fn tracks(data: &[u8], moov: &Box4) -> Result<Vec<Track>, Mp4Error> {
    let children = boxes(data, moov.body, moov.end)?;
    let mut trex = Vec::new();
    if let Some(mvex) = children.iter().find(|b| &b.kind == b"mvex") {
        for b in boxes(data, mvex.body, mvex.end)?.iter().filter(|b| &b.kind == b"trex") {
            // version/flags, track_ID, default_sample_description_index, duration, size, flags.
            let id = field(data, b.body + 4, "trex")?;
            trex.push((id, field(data, b.body + 12, "trex")?, field(data, b.body + 20, "trex")?));
        }
    }
    let mut out = Vec::new();
    for trak in children.iter().filter(|b| &b.kind == b"trak") {
        let tkhd = child(data, trak, b"tkhd")?.ok_or(Mp4Error::Missing { what: "tkhd" })?;
        let v1 = data.get(tkhd.body) == Some(&1);
        let id = field(data, tkhd.body + if v1 { 20 } else { 12 }, "tkhd")?;
        let mdia = child(data, trak, b"mdia")?.ok_or(Mp4Error::Missing { what: "mdia" })?;
        let mdhd = child(data, &mdia, b"mdhd")?.ok_or(Mp4Error::Missing { what: "mdhd" })?;
        let v1 = data.get(mdhd.body) == Some(&1);
        let timescale = field(data, mdhd.body + if v1 { 20 } else { 12 }, "mdhd")?;
        let hdlr = child(data, &mdia, b"hdlr")?.ok_or(Mp4Error::Missing { what: "hdlr" })?;
        let video = data.get(hdlr.body + 8..hdlr.body + 12) == Some(b"vide");
        let (_, default_duration, default_flags) =
            trex.iter().copied().find(|t| t.0 == id).unwrap_or((id, 0, 0));
        out.push(Track { id, timescale, video, default_duration, default_flags });
    }
    Ok(out)
}

/// `tfhd` flags.
const BASE_DATA_OFFSET: u32 = 0x1;
const SAMPLE_DESCRIPTION: u32 = 0x2;
const DEFAULT_DURATION: u32 = 0x8;
const DEFAULT_SIZE: u32 = 0x10;
const DEFAULT_FLAGS: u32 = 0x20;
/// `trun` flags.
const DATA_OFFSET: u32 = 0x1;
const FIRST_FLAGS: u32 = 0x4;
const SAMPLE_DURATION: u32 = 0x100;
const SAMPLE_SIZE: u32 = 0x200;
const SAMPLE_FLAGS: u32 = 0x400;
const SAMPLE_CTO: u32 = 0x800;
/// `sample_is_non_sync_sample` in sample flags.
const NON_SYNC: u32 = 0x0001_0000;

/// Reads one fragment (`moof` + `mdat`, every `tfdt` version 1). `at` is its place in the
/// file, for errors.
fn fragment(bytes: Vec<u8>, tracks: &[Track], at: usize) -> Result<Fragment, Mp4Error> {
    let moof = *boxes(&bytes, 0, bytes.len())?.first().ok_or(Mp4Error::Missing { what: "moof" })?;
    let kids = boxes(&bytes, moof.body, moof.end)?;
    let mfhd = kids.iter().find(|b| &b.kind == b"mfhd").ok_or(Mp4Error::Missing { what: "mfhd" })?;
    let mfhd_at = mfhd.body + 4;
    let sequence = field(&bytes, mfhd_at, "mfhd")?;
    let mut runs = Vec::new();
    for traf in kids.iter().filter(|b| &b.kind == b"traf") {
        let err = |what| Mp4Error::Malformed { what, at: at + traf.start };
        let tfhd = child(&bytes, traf, b"tfhd")?.ok_or(Mp4Error::Missing { what: "tfhd" })?;
        let flags = field(&bytes, tfhd.body, "tfhd")? & 0x00ff_ffff;
        if flags & BASE_DATA_OFFSET != 0 {
            return Err(Mp4Error::AbsoluteOffset { at: at + tfhd.start });
        }
        let track = field(&bytes, tfhd.body + 4, "tfhd")?;
        let t = tracks.iter().find(|t| t.id == track).ok_or(err("tfhd track id"))?;
        let mut p = tfhd.body + 8;
        if flags & SAMPLE_DESCRIPTION != 0 {
            p += 4;
        }
        let mut default_duration = t.default_duration;
        if flags & DEFAULT_DURATION != 0 {
            default_duration = field(&bytes, p, "tfhd")?;
            p += 4;
        }
        if flags & DEFAULT_SIZE != 0 {
            p += 4;
        }
        let default_flags =
            if flags & DEFAULT_FLAGS != 0 { field(&bytes, p, "tfhd")? } else { t.default_flags };
        let tfdt = child(&bytes, traf, b"tfdt")?.ok_or(Mp4Error::Missing { what: "tfdt" })?;
        let decode_time = be64(&bytes, tfdt.body + 4).ok_or(err("tfdt"))?;
        let (mut duration, mut samples, mut first_flags) = (0u64, 0u32, None);
        for trun in boxes(&bytes, traf.body, traf.end)?.iter().filter(|b| &b.kind == b"trun") {
            let flags = field(&bytes, trun.body, "trun")? & 0x00ff_ffff;
            let count = field(&bytes, trun.body + 4, "trun")?;
            let mut p = trun.body + 8;
            if flags & DATA_OFFSET != 0 {
                p += 4;
            }
            let mut run_first = None;
            if flags & FIRST_FLAGS != 0 {
                run_first = Some(field(&bytes, p, "trun")?);
                p += 4;
            }
            let per = [SAMPLE_DURATION, SAMPLE_SIZE, SAMPLE_FLAGS, SAMPLE_CTO]
                .iter()
                .filter(|f| flags & **f != 0)
                .count()
                * 4;
            let needed =
                usize::try_from(count).ok().and_then(|c| c.checked_mul(per)).and_then(|n| n.checked_add(p));
            if needed.is_none_or(|n| n > trun.end) {
                return Err(err("trun sample table"));
            }
            for i in 0..usize::try_from(count).unwrap_or(0) {
                let s = p + i * per;
                let d =
                    if flags & SAMPLE_DURATION != 0 { field(&bytes, s, "trun")? } else { default_duration };
                duration += u64::from(d);
                if i == 0 && run_first.is_none() && flags & SAMPLE_FLAGS != 0 {
                    let off = if flags & SAMPLE_DURATION != 0 { 4 } else { 0 }
                        + if flags & SAMPLE_SIZE != 0 { 4 } else { 0 };
                    run_first = Some(field(&bytes, s + off, "trun")?);
                }
            }
            if samples == 0 && count > 0 {
                first_flags = Some(run_first.unwrap_or(default_flags));
            }
            samples += count;
        }
        let starts_with_sync = first_flags.is_some_and(|f| f & NON_SYNC == 0);
        runs.push(TrackRun {
            track,
            decode_time,
            duration,
            samples,
            starts_with_sync,
            tfdt_at: tfdt.body + 4,
        });
    }
    Ok(Fragment { bytes, sequence, runs, mfhd_at })
}

/// `moof` with every version 0 `tfdt` widened to version 1: the `tfdt`, its `traf` and the
/// `moof` grow, and every `trun` data offset (relative to the `moof`) moves by the growth.
fn widen_tfdt(moof: &[u8], at: usize) -> Result<Vec<u8>, Mp4Error> {
    let top = boxes(moof, 0, moof.len())?;
    let m = top.first().ok_or(Mp4Error::Malformed { what: "moof", at })?;
    let kids = boxes(moof, m.body, m.end)?;
    let narrow = |traf: &Box4| -> Result<bool, Mp4Error> {
        Ok(child(moof, traf, b"tfdt")?.is_some_and(|t| moof.get(t.body) == Some(&0)))
    };
    let mut growth = 0u32;
    for k in kids.iter().filter(|k| &k.kind == b"traf") {
        if narrow(k)? {
            growth += 4;
        }
    }
    if growth == 0 {
        return Ok(moof.to_vec());
    }
    if m.body - m.start != 8 {
        return Err(Mp4Error::Malformed { what: "moof with a 64-bit size", at });
    }
    let mut out = moof[..m.body].to_vec();
    for k in &kids {
        if &k.kind != b"traf" {
            out.extend_from_slice(&moof[k.start..k.end]);
            continue;
        }
        let start = out.len();
        out.extend_from_slice(&moof[k.start..k.body]);
        for b in boxes(moof, k.body, k.end)? {
            match &b.kind {
                b"tfdt" if moof.get(b.body) == Some(&0) => {
                    let t = be32(moof, b.body + 4)
                        .ok_or(Mp4Error::Malformed { what: "tfdt", at: at + b.start })?;
                    out.extend_from_slice(&20u32.to_be_bytes());
                    out.extend_from_slice(b"tfdt");
                    out.extend_from_slice(&[1, 0, 0, 0]);
                    out.extend_from_slice(&u64::from(t).to_be_bytes());
                }
                b"trun" => {
                    let from = out.len();
                    out.extend_from_slice(&moof[b.start..b.end]);
                    let flags = be32(moof, b.body).unwrap_or(0) & 0x00ff_ffff;
                    if flags & DATA_OFFSET != 0 {
                        let o = from + (b.body - b.start) + 8;
                        let v =
                            be32(&out, o).ok_or(Mp4Error::Malformed { what: "trun", at: at + b.start })?;
                        out[o..o + 4].copy_from_slice(&v.wrapping_add(growth).to_be_bytes());
                    }
                }
                _ => out.extend_from_slice(&moof[b.start..b.end]),
            }
        }
        let size = u32::try_from(out.len() - start).map_err(|_| Mp4Error::Malformed { what: "traf", at })?;
        out[start..start + 4].copy_from_slice(&size.to_be_bytes());
    }
    let size = u32::try_from(out.len()).map_err(|_| Mp4Error::Malformed { what: "moof", at })?;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::source::testing::encoded;
    use super::*;

    /// `fragment` with its version 1 `tfdt`s written as version 0 (values that fit), as
    /// another muxer could: the inverse of [`widen_tfdt`].
    fn narrowed(f: &Fragment) -> Vec<u8> {
        let b = &f.bytes;
        let moof = boxes(b, 0, b.len()).unwrap()[0];
        let shrink = 4 * f.runs.len() as u32;
        let mut out = b[..moof.body].to_vec();
        for k in boxes(b, moof.body, moof.end).unwrap() {
            if &k.kind != b"traf" {
                out.extend_from_slice(&b[k.start..k.end]);
                continue;
            }
            let start = out.len();
            out.extend_from_slice(&b[k.start..k.body]);
            for c in boxes(b, k.body, k.end).unwrap() {
                match &c.kind {
                    b"tfdt" => {
                        let t = u32::try_from(be64(b, c.body + 4).unwrap()).unwrap();
                        out.extend_from_slice(&16u32.to_be_bytes());
                        out.extend_from_slice(b"tfdt\0\0\0\0");
                        out.extend_from_slice(&t.to_be_bytes());
                    }
                    b"trun" => {
                        let o = out.len() + 16;
                        out.extend_from_slice(&b[c.start..c.end]);
                        let v = be32(&out, o).unwrap() - shrink;
                        out[o..o + 4].copy_from_slice(&v.to_be_bytes());
                    }
                    _ => out.extend_from_slice(&b[c.start..c.end]),
                }
            }
            let size = (out.len() - start) as u32;
            out[start..start + 4].copy_from_slice(&size.to_be_bytes());
        }
        let size = out.len() as u32;
        out[..4].copy_from_slice(&size.to_be_bytes());
        out.extend_from_slice(&b[moof.end..]);
        out
    }

    #[test]
    fn ffmpeg_fragments_split_into_init_and_parts_with_their_timing() {
        let Some(data) = encoded() else { return };
        let m = split(data).unwrap();
        assert_eq!(&m.init.bytes[4..8], b"ftyp");
        let video = m.init.video().unwrap();
        let audio = m.init.tracks.iter().find(|t| !t.video).expect("an audio track");
        let frame = u64::from(video.timescale / 30);
        // 240 frames in fragments of 10.
        let runs: Vec<&TrackRun> = m.fragments.iter().filter_map(|f| f.run(video.id)).collect();
        assert_eq!(runs.len(), 24);
        assert_eq!(runs.iter().map(|r| r.samples).sum::<u32>(), 240);
        for (i, r) in runs.iter().enumerate() {
            assert_eq!((r.samples, r.duration), (10, 10 * frame), "fragment {i}");
            assert_eq!(r.decode_time, i as u64 * 10 * frame, "fragment {i}");
            assert_eq!(r.starts_with_sync, i % 6 == 0, "fragment {i}: a keyframe every 2 s");
        }
        for (i, f) in m.fragments.iter().enumerate() {
            assert_eq!(f.sequence, i as u32 + 1);
            assert_eq!(&f.bytes[4..8], b"moof");
        }
        // Audio starts at zero, runs on from fragment to fragment and ends with the video.
        let a: Vec<&TrackRun> = m.fragments.iter().filter_map(|f| f.run(audio.id)).collect();
        assert_eq!(a[0].decode_time, 0);
        for w in a.windows(2) {
            assert_eq!(w[0].decode_time + w[0].duration, w[1].decode_time);
        }
        let end = a.last().map(|r| r.decode_time + r.duration);
        assert_eq!(end, Some(8 * u64::from(audio.timescale)));
        // The fragments and the init are the whole file but for the trailing mfra.
        let total: usize = m.init.bytes.len() + m.fragments.iter().map(|f| f.bytes.len()).sum::<usize>();
        let mfra = boxes(data, 0, data.len())
            .unwrap()
            .iter()
            .filter(|b| &b.kind == b"mfra")
            .map(|b| b.end - b.start)
            .sum::<usize>();
        assert_eq!(total + mfra, data.len());
    }

    #[test]
    fn retiming_rewrites_only_the_decode_times_and_the_sequence_number() {
        let Some(data) = encoded() else { return };
        let m = split(data).unwrap();
        let f = &m.fragments[3];
        let big = 1u64 << 40;
        let out = f.retimed(77, |_| big);
        assert_eq!(out.len(), f.bytes.len());
        let mut file = m.init.bytes.clone();
        file.extend_from_slice(&out);
        let g = &split(&file).unwrap().fragments[0];
        assert_eq!(g.sequence, 77);
        for (a, b) in f.runs.iter().zip(&g.runs) {
            assert_eq!(b.decode_time, a.decode_time + big);
        }
        let differing = f.bytes.iter().zip(&out).filter(|(a, b)| a != b).count();
        assert!(differing <= 4 + 8 * f.runs.len(), "{differing} bytes changed");
    }

    #[test]
    fn version_0_decode_times_are_widened_and_data_offsets_follow() {
        let Some(data) = encoded() else { return };
        let m = split(data).unwrap();
        for f in &m.fragments[..3] {
            let mut file = m.init.bytes.clone();
            let narrow = narrowed(f);
            assert_eq!(narrow.len(), f.bytes.len() - 4 * f.runs.len());
            file.extend_from_slice(&narrow);
            let again = split(&file).unwrap();
            assert_eq!(again.fragments[0].bytes, f.bytes, "widened back to what ffmpeg wrote");
            assert_eq!(again.fragments[0].runs, f.runs);
        }
    }

    #[test]
    fn broken_files_are_errors_not_panics() {
        assert_eq!(split(b"").unwrap_err(), Mp4Error::Missing { what: "ftyp" });
        assert_eq!(
            split(b"\0\0\0\x10ftypisom").unwrap_err(),
            Mp4Error::Malformed { what: "box header", at: 0 }
        );
        let Some(data) = encoded() else { return };
        for cut in [9, 100, 1500, data.len() / 2] {
            let _ = split(&data[..cut]);
        }
        let m = split(data).unwrap();
        let lone =
            [m.init.bytes.as_slice(), &m.fragments[0].bytes[..m.fragments[0].bytes.len() - 8]].concat();
        assert!(split(&lone).is_err());
    }
}
