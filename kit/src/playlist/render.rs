//! Writing playlists back: [`super::parse`] reads what these write to the same value.

use std::fmt::Write as _;

use super::{Key, Map, Master, Media, Part, PlaylistType, StartPoint};

fn start(s: &mut String, start: Option<StartPoint>) {
    if let Some(p) = start {
        let precise = if p.precise { ",PRECISE=YES" } else { "" };
        let _ = writeln!(s, "#EXT-X-START:TIME-OFFSET={}{precise}", p.time_offset);
    }
}

impl Master {
    /// The playlist as text; [`parse`] reads it back to the same value.
    #[must_use]
    pub fn render(&self) -> String {
        let mut s = String::from("#EXTM3U\n");
        if let Some(v) = self.version {
            let _ = writeln!(s, "#EXT-X-VERSION:{v}");
        }
        if self.independent_segments {
            s.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        }
        start(&mut s, self.start);
        for r in &self.renditions {
            let mut a = vec![
                format!("TYPE={}", r.kind.as_str()),
                format!("GROUP-ID=\"{}\"", r.group_id),
                format!("NAME=\"{}\"", r.name),
            ];
            if let Some(l) = &r.language {
                a.push(format!("LANGUAGE=\"{l}\""));
            }
            a.push(format!("DEFAULT={}", if r.default { "YES" } else { "NO" }));
            a.push(format!("AUTOSELECT={}", if r.autoselect { "YES" } else { "NO" }));
            if let Some(u) = &r.uri {
                a.push(format!("URI=\"{u}\""));
            }
            let _ = writeln!(s, "#EXT-X-MEDIA:{}", a.join(","));
        }
        for v in &self.variants {
            let mut a = vec![format!("BANDWIDTH={}", v.bandwidth)];
            if let Some(b) = v.average_bandwidth {
                a.push(format!("AVERAGE-BANDWIDTH={b}"));
            }
            if let Some((w, h)) = v.resolution {
                a.push(format!("RESOLUTION={w}x{h}"));
            }
            if let Some(c) = &v.codecs {
                a.push(format!("CODECS=\"{c}\""));
            }
            if let Some(f) = v.frame_rate {
                a.push(format!("FRAME-RATE={f:.3}"));
            }
            if let Some(g) = &v.audio {
                a.push(format!("AUDIO=\"{g}\""));
            }
            if let Some(g) = &v.subtitles {
                a.push(format!("SUBTITLES=\"{g}\""));
            }
            let _ = writeln!(s, "#EXT-X-STREAM-INF:{}\n{}", a.join(","), v.uri);
        }
        s
    }
}

impl Media {
    /// The playlist as text; [`parse`] reads it back to the same value. Without a target
    /// duration, the longest `#EXTINF` rounded to the nearest integer is written.
    #[must_use]
    pub fn render(&self) -> String {
        let mut s = String::from("#EXTM3U\n");
        if let Some(v) = self.version {
            let _ = writeln!(s, "#EXT-X-VERSION:{v}");
        }
        let target = self
            .target_duration
            .unwrap_or_else(|| self.segments.iter().map(|s| s.duration).fold(0.0, f64::max).round());
        let _ = writeln!(s, "#EXT-X-TARGETDURATION:{target}");
        let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(s, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", self.discontinuity_sequence);
        }
        match self.playlist_type {
            Some(PlaylistType::Vod) => s.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n"),
            Some(PlaylistType::Event) => s.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
            None => {}
        }
        if self.independent_segments {
            s.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        }
        if let Some(c) = &self.server_control {
            let mut a = Vec::new();
            if c.can_block_reload {
                a.push("CAN-BLOCK-RELOAD=YES".to_owned());
            }
            for (name, v) in [
                ("CAN-SKIP-UNTIL", c.can_skip_until),
                ("HOLD-BACK", c.hold_back),
                ("PART-HOLD-BACK", c.part_hold_back),
            ] {
                if let Some(v) = v {
                    a.push(format!("{name}={v}"));
                }
            }
            let _ = writeln!(s, "#EXT-X-SERVER-CONTROL:{}", a.join(","));
        }
        start(&mut s, self.start);
        if let Some(t) = self.part_target {
            let _ = writeln!(s, "#EXT-X-PART-INF:PART-TARGET={t}");
        }
        if let Some(n) = self.skipped_segments {
            let _ = writeln!(s, "#EXT-X-SKIP:SKIPPED-SEGMENTS={n}");
        }
        let (mut key, mut map): (Option<&Key>, Option<&Map>) = (None, None);
        for seg in &self.segments {
            if seg.key.as_deref() != key {
                match &seg.key {
                    Some(k) => {
                        let mut a = vec![format!("METHOD={}", k.method)];
                        if let Some(u) = &k.uri {
                            a.push(format!("URI=\"{u}\""));
                        }
                        if let Some(iv) = &k.iv {
                            a.push(format!("IV={iv}"));
                        }
                        if let Some(f) = &k.keyformat {
                            a.push(format!("KEYFORMAT=\"{f}\""));
                        }
                        let _ = writeln!(s, "#EXT-X-KEY:{}", a.join(","));
                    }
                    None => s.push_str("#EXT-X-KEY:METHOD=NONE\n"),
                }
                key = seg.key.as_deref();
            }
            if seg.map.as_deref() != map {
                if let Some(m) = &seg.map {
                    let _ = write!(s, "#EXT-X-MAP:URI=\"{}\"", m.uri);
                    if let Some(r) = m.byte_range {
                        let _ = write!(s, ",BYTERANGE=\"{}\"", r.render());
                    }
                    s.push('\n');
                }
                map = seg.map.as_deref();
            }
            if seg.discontinuity {
                s.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if let Some(t) = &seg.program_date_time {
                let _ = writeln!(s, "#EXT-X-PROGRAM-DATE-TIME:{t}");
            }
            render_parts(&mut s, &seg.parts);
            if seg.gap {
                s.push_str("#EXT-X-GAP\n");
            }
            let _ = writeln!(s, "#EXTINF:{:.6},{}", seg.duration, seg.title.as_deref().unwrap_or(""));
            if let Some(r) = seg.byte_range {
                let _ = writeln!(s, "#EXT-X-BYTERANGE:{}", r.render());
            }
            let _ = writeln!(s, "{}", seg.uri);
        }
        render_parts(&mut s, &self.parts_in_progress);
        for h in &self.preload_hints {
            let _ = write!(s, "#EXT-X-PRELOAD-HINT:TYPE={},URI=\"{}\"", h.kind, h.uri);
            if let Some(start) = h.byterange_start {
                let _ = write!(s, ",BYTERANGE-START={start}");
            }
            if let Some(length) = h.byterange_length {
                let _ = write!(s, ",BYTERANGE-LENGTH={length}");
            }
            s.push('\n');
        }
        for r in &self.rendition_reports {
            let _ = write!(s, "#EXT-X-RENDITION-REPORT:URI=\"{}\"", r.uri);
            if let Some(m) = r.last_msn {
                let _ = write!(s, ",LAST-MSN={m}");
            }
            if let Some(p) = r.last_part {
                let _ = write!(s, ",LAST-PART={p}");
            }
            s.push('\n');
        }
        if self.ended {
            s.push_str("#EXT-X-ENDLIST\n");
        }
        s
    }
}

fn render_parts(s: &mut String, parts: &[Part]) {
    for p in parts {
        let _ = write!(s, "#EXT-X-PART:DURATION={},URI=\"{}\"", p.duration, p.uri);
        if p.independent {
            s.push_str(",INDEPENDENT=YES");
        }
        if let Some(r) = p.byte_range {
            let _ = write!(s, ",BYTERANGE=\"{}\"", r.render());
        }
        if p.gap {
            s.push_str(",GAP=YES");
        }
        s.push('\n');
    }
}
