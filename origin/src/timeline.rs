//! MPEG-TS rewriting that makes a replayed loop look like one endless live stream.
//!
//! Each pass over the loop shifts every PTS, DTS and PCR by the loop's length times the pass
//! number, and renumbers continuity counters so each PID counts on without a jump. Viewers
//! then see no timestamp reset and no "continuity check failed" at the loop point, so the
//! playlist needs no `#EXT-X-DISCONTINUITY`.
//!
//! Works on 188-byte packets in place; anything that is not a well-formed packet is left as is.

use std::collections::HashMap;

/// Transport stream packet size.
pub const PACKET: usize = 188;
/// PTS/DTS/PCR base wrap (33 bits).
const WRAP: u64 = 1 << 33;

/// Continuity-counter state of one output stream (one variant).
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Last continuity counter written, per PID.
    last: HashMap<u16, u8>,
    /// Counter shift for the current pass, per PID (fixed at the PID's first packet of the pass).
    shift: HashMap<u16, u8>,
}

fn read_ts(b: &[u8]) -> u64 {
    (u64::from((b[0] >> 1) & 0x07) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | u64::from(b[4] >> 1)
}

fn write_ts(b: &mut [u8], v: u64) {
    b[0] = (b[0] & 0xF0) | (((v >> 30) & 0x07) as u8) << 1 | 1;
    b[1] = (v >> 22) as u8;
    b[2] = ((((v >> 15) & 0x7F) as u8) << 1) | 1;
    b[3] = (v >> 7) as u8;
    b[4] = (((v & 0x7F) as u8) << 1) | 1;
}

fn read_pcr_base(p: &[u8]) -> u64 {
    (u64::from(p[0]) << 25)
        | (u64::from(p[1]) << 17)
        | (u64::from(p[2]) << 9)
        | (u64::from(p[3]) << 1)
        | u64::from(p[4] >> 7)
}

fn write_pcr_base(p: &mut [u8], base: u64) {
    p[0] = (base >> 25) as u8;
    p[1] = (base >> 17) as u8;
    p[2] = (base >> 9) as u8;
    p[3] = (base >> 1) as u8;
    p[4] = (((base & 1) as u8) << 7) | (p[4] & 0x7F);
}

/// Where the PES header's PTS (and DTS) sit in a packet, if it starts a PES with timestamps.
fn pes_timestamps(pkt: &[u8]) -> Option<(usize, bool)> {
    let pusi = pkt[1] & 0x40 != 0;
    let afc = (pkt[3] >> 4) & 0x03;
    if !pusi || afc & 0x01 == 0 {
        return None;
    }
    let start = if afc & 0x02 != 0 { 5 + usize::from(pkt[4]) } else { 4 };
    let pes = pkt.get(start..)?;
    if pes.len() < 19 || pes[..3] != [0, 0, 1] {
        return None;
    }
    // Streams without the optional PES header (padding, private 2, ECM, ...).
    if matches!(pes[3], 0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF) {
        return None;
    }
    match pes[7] >> 6 {
        2 => Some((start + 9, false)),
        3 => Some((start + 9, true)),
        _ => None,
    }
}

/// The PCR field's offset in a packet, if it carries one.
fn pcr_offset(pkt: &[u8]) -> Option<usize> {
    let afc = (pkt[3] >> 4) & 0x03;
    (afc & 0x02 != 0 && pkt[4] >= 7 && pkt[5] & 0x10 != 0).then_some(6)
}

impl Timeline {
    /// Starts a new pass over the loop: counters will continue from where the last pass ended.
    pub fn begin_pass(&mut self) {
        self.shift.clear();
    }

    /// Shifts timestamps by `offset` (90 kHz ticks) and renumbers continuity counters.
    pub fn rewrite(&mut self, data: &mut [u8], offset: u64) {
        for pkt in data.chunks_exact_mut(PACKET) {
            if pkt[0] != 0x47 {
                continue;
            }
            let pid = (u16::from(pkt[1] & 0x1F) << 8) | u16::from(pkt[2]);
            if pid == 0x1FFF {
                continue; // null packets carry no counter worth keeping
            }
            let has_payload = pkt[3] & 0x10 != 0;
            let cc = pkt[3] & 0x0F;
            let last = self.last.get(&pid).copied();
            let shift = *self.shift.entry(pid).or_insert_with(|| match last {
                // The first packet of this pass follows the last one written.
                Some(l) => (l.wrapping_add(u8::from(has_payload)).wrapping_sub(cc)) & 0x0F,
                None => 0,
            });
            let new_cc = (cc + shift) & 0x0F;
            pkt[3] = (pkt[3] & 0xF0) | new_cc;
            self.last.insert(pid, new_cc);
            if offset == 0 {
                continue;
            }
            if let Some(at) = pcr_offset(pkt) {
                let base = read_pcr_base(&pkt[at..]);
                write_pcr_base(&mut pkt[at..], (base + offset) % WRAP);
            }
            if let Some((at, has_dts)) = pes_timestamps(pkt) {
                let pts = read_ts(&pkt[at..]);
                write_ts(&mut pkt[at..], (pts + offset) % WRAP);
                if has_dts {
                    let dts = read_ts(&pkt[at + 5..]);
                    write_ts(&mut pkt[at + 5..], (dts + offset) % WRAP);
                }
            }
        }
    }
}

fn pid_of(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2])
}

/// Stream id of the PES starting in this packet, if one starts here.
fn pes_stream_id(pkt: &[u8]) -> Option<u8> {
    let afc = (pkt[3] >> 4) & 0x03;
    if pkt[1] & 0x40 == 0 || afc & 0x01 == 0 {
        return None;
    }
    let start = if afc & 0x02 != 0 { 5 + usize::from(pkt[4]) } else { 4 };
    let pes = pkt.get(start..start + 4)?;
    (pes[..3] == [0, 0, 1]).then_some(pes[3])
}

/// The first PTS of each audio PID (PES stream ids 0xC0–0xDF) in `data`.
#[must_use]
pub fn first_audio_pts(data: &[u8]) -> HashMap<u16, u64> {
    let mut out = HashMap::new();
    for p in data.chunks_exact(PACKET).filter(|p| p[0] == 0x47) {
        if matches!(pes_stream_id(p), Some(0xC0..=0xDF)) {
            if let Some((at, _)) = pes_timestamps(p) {
                out.entry(pid_of(p)).or_insert_with(|| read_ts(&p[at..]));
            }
        }
    }
    out
}

/// Drops trailing audio that would overlap the next pass of the loop.
///
/// An encoder cut at `-t L` ends its audio a little after `L` (whole AAC frames). For each
/// audio PID with a `boundary` (its first PTS + the loop length), every PES whose end (the
/// next PES's start) lies beyond the boundary, and the last PES, become null packets. The
/// loop then has a short audio gap at its end instead of an overlap that makes players see
/// timestamps go backwards. Returns the number of packets nulled.
pub fn trim_audio_tail(data: &mut [u8], boundary: &HashMap<u16, u64>) -> usize {
    // (pid, first packet index, pts) of every audio PES with a boundary.
    let mut starts: Vec<(u16, usize, u64)> = Vec::new();
    for (i, p) in data.chunks_exact(PACKET).enumerate() {
        if p[0] != 0x47 || !boundary.contains_key(&pid_of(p)) {
            continue;
        }
        if matches!(pes_stream_id(p), Some(0xC0..=0xDF)) {
            if let Some((at, _)) = pes_timestamps(p) {
                starts.push((pid_of(p), i, read_ts(&p[at..])));
            }
        }
    }
    let mut drop_from: HashMap<u16, usize> = HashMap::new();
    for (k, &(pid, index, _)) in starts.iter().enumerate() {
        let next = starts[k + 1..].iter().find(|s| s.0 == pid);
        let limit = boundary[&pid];
        let overlaps = !matches!(next, Some(n) if n.2 <= limit);
        if overlaps {
            drop_from.entry(pid).or_insert(index);
        }
    }
    let mut nulled = 0;
    for (i, p) in data.chunks_exact_mut(PACKET).enumerate() {
        if p[0] != 0x47 {
            continue;
        }
        if drop_from.get(&pid_of(p)).is_some_and(|from| i >= *from) {
            p[1] = (p[1] & 0xA0) | 0x1F; // clear PUSI, PID 0x1FFF
            p[2] = 0xFF;
            nulled += 1;
        }
    }
    nulled
}

/// Every PTS in `data` with its PID, in order (for checks and tests).
#[must_use]
pub fn timestamps(data: &[u8]) -> Vec<(u16, u64)> {
    data.chunks_exact(PACKET)
        .filter(|p| p[0] == 0x47)
        .filter_map(|p| {
            let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
            pes_timestamps(p).map(|(at, _)| (pid, read_ts(&p[at..])))
        })
        .collect()
}

/// Continuity errors in `data` given each PID's last counter (updated as it goes).
#[must_use]
pub fn continuity_errors(data: &[u8], last: &mut HashMap<u16, u8>) -> usize {
    let mut errors = 0;
    for p in data.chunks_exact(PACKET).filter(|p| p[0] == 0x47) {
        let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
        if pid == 0x1FFF {
            continue;
        }
        let cc = p[3] & 0x0F;
        let has_payload = p[3] & 0x10 != 0;
        if let Some(l) = last.get(&pid) {
            let expect = if has_payload { (l + 1) & 0x0F } else { *l };
            if cc != expect {
                errors += 1;
            }
        }
        last.insert(pid, cc);
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(n: u32) -> Vec<u8> {
        let path = format!("{}/testdata/loop/seg{n:05}.ts", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn timestamp_fields_roundtrip() {
        let mut b = [0x21, 0, 0, 0, 0];
        for v in [0u64, 1, 90_000, (1 << 33) - 1, 0x1_2345_6789] {
            write_ts(&mut b, v);
            assert_eq!(read_ts(&b), v);
            assert_eq!(b[0] >> 4, 0x2, "prefix kept");
        }
        let mut p = [0, 0, 0, 0, 0x7E, 0x55];
        write_pcr_base(&mut p, 0x1_0000_0001);
        assert_eq!(read_pcr_base(&p), 0x1_0000_0001);
        assert_eq!(p[5], 0x55, "extension kept");
    }

    #[test]
    fn a_replayed_loop_has_continuous_counters_and_rising_timestamps() {
        // testdata/loop: two 1 s segments from `ffmpeg ... -t 2 -hls_time 1` (64x36, 25 fps).
        let loop_len = 2 * 90_000;
        let original_errors = {
            let mut last = HashMap::new();
            let mut e = continuity_errors(&seg(0), &mut last);
            e += continuity_errors(&seg(1), &mut last);
            e + continuity_errors(&seg(0), &mut last)
        };
        assert!(original_errors > 0, "replaying unmodified segments breaks continuity");

        let mut t = Timeline::default();
        let mut last = HashMap::new();
        let mut video_pts = Vec::new();
        for pass in 0..3u64 {
            t.begin_pass();
            for n in 0..2 {
                let mut data = seg(n);
                t.rewrite(&mut data, pass * loop_len);
                assert_eq!(continuity_errors(&data, &mut last), 0, "pass {pass} segment {n}");
                let ts = timestamps(&data);
                let video = ts.iter().map(|x| x.0).min().unwrap_or(0);
                video_pts.extend(ts.iter().filter(|x| x.0 == video).map(|x| x.1));
            }
        }
        let firsts = timestamps(&seg(0));
        assert!(!firsts.is_empty());
        // Decode order is not presentation order; compare each pass's earliest PTS instead.
        let per_pass = video_pts.len() / 3;
        let mins: Vec<u64> =
            video_pts.chunks(per_pass).map(|c| c.iter().copied().min().unwrap_or(0)).collect();
        assert_eq!(mins[1] - mins[0], loop_len);
        assert_eq!(mins[2] - mins[1], loop_len);
    }

    #[test]
    fn trimming_the_audio_tail_removes_the_overlap_with_the_next_pass() {
        let loop_len = 2 * 90_000;
        let first = first_audio_pts(&seg(0));
        assert_eq!(first.len(), 1, "one audio stream");
        let boundary: HashMap<u16, u64> = first.iter().map(|(p, t)| (*p, t + loop_len)).collect();
        let mut last = seg(1);
        let (pid, start) = first.iter().next().map(|(p, t)| (*p, *t)).unwrap();
        let limit = start + loop_len;
        let split = |data: &[u8]| -> (Vec<u64>, Vec<(u16, u64)>) {
            let (audio, other): (Vec<_>, Vec<_>) = timestamps(data).into_iter().partition(|t| t.0 == pid);
            (audio.into_iter().map(|t| t.1).collect(), other)
        };
        let (audio_before, other_before) = split(&last);
        let nulled = trim_audio_tail(&mut last, &boundary);
        assert!(nulled > 0);
        let (audio, other) = split(&last);
        assert_eq!(other, other_before, "only audio is touched");
        // Only a tail goes: what remains is the start of what was there, and not all of it.
        assert!(!audio.is_empty() && audio.len() < audio_before.len(), "{audio:?} of {audio_before:?}");
        assert_eq!(audio[..], audio_before[..audio.len()], "{audio:?} of {audio_before:?}");
        // Every remaining audio PES ends (where the next one starts) no later than the boundary,
        // and the last remaining one starts no later than the boundary minus one AAC frame.
        assert!(audio_before[audio.len()] <= limit, "the last kept PES ends past {limit}: {audio_before:?}");
        assert!(audio.iter().all(|t| *t + 1920 <= limit), "{audio:?} vs {limit}");
        // No more than the overlap goes: the first PES removed reaches past the boundary (its
        // successor starts beyond it, or it was the last).
        let removed_ends = audio_before.get(audio.len() + 1);
        assert!(
            removed_ends.is_none_or(|end| *end > limit),
            "removed more than the overlap: {audio_before:?}"
        );
        let mut counters = HashMap::new();
        assert_eq!(continuity_errors(&last, &mut counters), 0, "nulling keeps the other counters intact");
    }
}
