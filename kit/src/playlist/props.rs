//! Property tests of the playlist parser and writer: arbitrary text and mutated real playlists
//! never make it panic, what it keeps is bounded by what it was given, and what the writer
//! writes reads back to the same value. The number of cases: see [`crate::mutation`].

use std::collections::HashSet;
use std::sync::Arc;

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use super::tests::{KEYS, LIVE, LOW_LATENCY, MASTER, RENDITIONS};
use super::*;
use crate::mutation::{any_text, attributes, config, mutated, number};

/// What mutations start from: FFmpeg's own output captured on this machine, and the examples
/// that between them carry every tag the parser reads.
const SEEDS: &[&str] = &[
    include_str!("../../testdata/ffmpeg-abr-master.m3u8"),
    include_str!("../../testdata/ffmpeg-vod-loop.m3u8"),
    MASTER,
    LIVE,
    LOW_LATENCY,
    RENDITIONS,
    KEYS,
];

/// Every tag the parser reads, and two it does not.
const TAGS: &[&str] = &[
    "EXTM3U",
    "EXTINF",
    "EXT-X-VERSION",
    "EXT-X-INDEPENDENT-SEGMENTS",
    "EXT-X-STREAM-INF",
    "EXT-X-MEDIA",
    "EXT-X-TARGETDURATION",
    "EXT-X-MEDIA-SEQUENCE",
    "EXT-X-DISCONTINUITY-SEQUENCE",
    "EXT-X-PLAYLIST-TYPE",
    "EXT-X-ENDLIST",
    "EXT-X-BYTERANGE",
    "EXT-X-DISCONTINUITY",
    "EXT-X-GAP",
    "EXT-X-PROGRAM-DATE-TIME",
    "EXT-X-KEY",
    "EXT-X-MAP",
    "EXT-X-PART",
    "EXT-X-PART-INF",
    "EXT-X-SERVER-CONTROL",
    "EXT-X-SKIP",
    "EXT-X-PRELOAD-HINT",
    "EXT-X-RENDITION-REPORT",
    "EXT-X-FUTURE",
    "",
];

/// Every attribute name the parser reads.
const ATTRIBUTES: &[&str] = &[
    "BANDWIDTH",
    "AVERAGE-BANDWIDTH",
    "RESOLUTION",
    "CODECS",
    "FRAME-RATE",
    "AUDIO",
    "SUBTITLES",
    "TYPE",
    "GROUP-ID",
    "NAME",
    "LANGUAGE",
    "DEFAULT",
    "AUTOSELECT",
    "URI",
    "METHOD",
    "IV",
    "KEYFORMAT",
    "BYTERANGE",
    "DURATION",
    "INDEPENDENT",
    "GAP",
    "PART-TARGET",
    "CAN-BLOCK-RELOAD",
    "CAN-SKIP-UNTIL",
    "HOLD-BACK",
    "PART-HOLD-BACK",
    "SKIPPED-SEGMENTS",
    "LAST-MSN",
    "LAST-PART",
];

/// A line a hostile or broken server might write: a known tag with a garbage attribute list,
/// an absurd `#EXTINF`, a program date-time gone wrong, a number, a URI, or anything.
fn line() -> BoxedStrategy<String> {
    prop_oneof![
        3 => (select(TAGS), attributes(ATTRIBUTES)).prop_map(|(t, a)| format!("#{t}:{a}")),
        2 => (select(TAGS), number()).prop_map(|(t, n)| format!("#{t}:{n}")),
        2 => (number(), ".{0,8}").prop_map(|(d, title)| format!("#EXTINF:{d},{title}")),
        1 => (number(), number(), number(), number(), ".{0,6}").prop_map(|(y, mo, d, h, z)| {
            format!("#EXT-X-PROGRAM-DATE-TIME:{y}-{mo}-{d}T{h}:{mo}:{d}{z}")
        }),
        1 => "[a-z0-9/._?=&-]{0,20}",
        1 => ".{0,40}",
    ]
    .boxed()
}

/// A key or init section line, which applies to every segment after it.
fn sticky() -> impl Strategy<Value = String> {
    let uri = "[^\r\n\"]{0,64}";
    prop_oneof![
        (attributes(ATTRIBUTES), uri).prop_map(|(a, u)| format!("#EXT-X-KEY:{a},METHOD=AES-128,URI=\"{u}\"")),
        (attributes(ATTRIBUTES), uri).prop_map(|(a, u)| format!("#EXT-X-MAP:URI=\"{u}\",{a}")),
    ]
}

/// Lines that are not blank: the most items a playlist of this text can list.
fn line_count(text: &str) -> usize {
    text.split(['\r', '\n']).filter(|l| !l.trim().is_empty()).count()
}

/// Items listed: segments, parts, variants, renditions, hints and reports.
fn items(p: &Playlist) -> usize {
    match p {
        Playlist::Master(m) => m.variants.len() + m.renditions.len(),
        Playlist::Media(m) => {
            m.segments.iter().map(|s| 1 + s.parts.len()).sum::<usize>()
                + m.parts_in_progress.len()
                + m.preload_hints.len()
                + m.rendition_reports.len()
        }
    }
}

/// Bytes of text the value holds, each shared key or init section counted once.
fn retained(p: &Playlist) -> usize {
    let o = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    match p {
        Playlist::Master(m) => {
            m.variants
                .iter()
                .map(|v| v.uri.len() + o(&v.codecs) + o(&v.audio) + o(&v.subtitles))
                .sum::<usize>()
                + m.renditions
                    .iter()
                    .map(|r| r.group_id.len() + r.name.len() + o(&r.language) + o(&r.uri))
                    .sum::<usize>()
        }
        Playlist::Media(m) => {
            let (mut keys, mut maps) = (HashSet::new(), HashSet::new());
            let parts = |p: &[Part]| p.iter().map(|p| p.uri.len()).sum::<usize>();
            let mut n = 0;
            for s in &m.segments {
                n += s.uri.len() + o(&s.title) + o(&s.program_date_time) + parts(&s.parts);
                if let Some(k) = s.key.as_ref().filter(|k| keys.insert(Arc::as_ptr(k))) {
                    n += k.method.len() + o(&k.uri) + o(&k.iv) + o(&k.keyformat);
                }
                if let Some(map) = s.map.as_ref().filter(|m| maps.insert(Arc::as_ptr(m))) {
                    n += map.uri.len();
                }
            }
            n + parts(&m.parts_in_progress)
                + m.preload_hints.iter().map(|h| h.kind.len() + h.uri.len()).sum::<usize>()
                + m.rendition_reports.iter().map(|r| r.uri.len()).sum::<usize>()
        }
    }
}

/// What holds for any text: no panic, an error names a line of it, a playlist lists no more
/// items than the text has lines and holds no more text than it was given, its program
/// date-times read or not (as the relay reads them), and it can be written.
fn check(text: &str) -> Result<(), TestCaseError> {
    match parse(text) {
        Ok(p) => {
            prop_assert!(
                items(&p) <= line_count(text),
                "{} items from {} lines",
                items(&p),
                line_count(text)
            );
            prop_assert!(retained(&p) <= text.len(), "{} bytes kept of {}", retained(&p), text.len());
            match &p {
                Playlist::Media(m) => {
                    for t in m.segments.iter().filter_map(|s| s.program_date_time.as_deref()) {
                        prop_assert!(date_time(t).is_none_or(f64::is_finite), "{t}");
                    }
                    let _ = (m.render(), m.map_uris(), m.key_uris());
                }
                Playlist::Master(m) => {
                    let _ = (m.render(), m.pick(true), m.pick(false));
                }
            }
        }
        Err(ParseError::BadTag { line, .. }) => {
            prop_assert!((1..=text.split(['\r', '\n']).count()).contains(&line), "line {line}");
        }
        Err(_) => {}
    }
    Ok(())
}

/// A string that survives a quoted attribute: no quote, no line break, no outer spaces.
fn quoted() -> impl Strategy<Value = String> {
    "([a-zA-Z0-9.,=/_:@+-][a-zA-Z0-9 .,=/_:@+-]{0,10}[a-zA-Z0-9.,=/_:@+-])?"
}

/// A string that survives an unquoted attribute value: no comma or quote either.
fn bare() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9./_:@+-]{1,12}"
}

/// A URI line (not a tag, not blank).
fn uri() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._/?=&-][a-zA-Z0-9._/?=&#-]{0,20}"
}

/// A duration as `#EXTINF` writes it: a whole number of microseconds.
fn micros() -> impl Strategy<Value = f64> {
    (-1_000_000_000_000i64..1_000_000_000_000).prop_map(|us| us as f64 / 1e6)
}

/// A finite number (written with Rust's shortest round-trip form).
fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |f| f.is_finite())
}

fn byte_range() -> impl Strategy<Value = ByteRange> {
    (any::<u64>(), option::of(any::<u64>())).prop_map(|(length, offset)| ByteRange { length, offset })
}

fn part() -> impl Strategy<Value = Part> {
    (finite(), quoted(), any::<bool>(), option::of(byte_range()), any::<bool>()).prop_map(
        |(duration, uri, independent, byte_range, gap)| Part { duration, uri, independent, byte_range, gap },
    )
}

fn key() -> impl Strategy<Value = Key> {
    (
        bare().prop_filter("NONE clears the key", |m| m != "NONE"),
        option::of(quoted()),
        option::of(bare()),
        option::of(quoted()),
    )
        .prop_map(|(method, uri, iv, keyformat)| Key { method, uri, iv, keyformat })
}

fn segment() -> impl Strategy<Value = Segment> {
    (
        (micros(), option::of("[a-zA-Z0-9.,=/_:-]([a-zA-Z0-9 .,=/_:-]{0,10}[a-zA-Z0-9.,=/_:-])?"), uri()),
        (option::of(byte_range()), any::<bool>(), option::of(bare()), any::<bool>()),
        (option::of(key().prop_map(Arc::new)), option::of((quoted(), option::of(byte_range())))),
        vec(part(), 0..3),
    )
        .prop_map(
            |(
                (duration, title, uri),
                (byte_range, discontinuity, program_date_time, gap),
                (key, map),
                parts,
            )| {
                Segment {
                    duration,
                    title,
                    uri,
                    byte_range,
                    discontinuity,
                    program_date_time,
                    gap,
                    key,
                    map: map.map(|(uri, byte_range)| Arc::new(Map { uri, byte_range })),
                    parts,
                }
            },
        )
}

/// A media playlist whose every value the writer can write exactly. An init section, once
/// given, stays in effect (the text has no way to end one).
fn media() -> impl Strategy<Value = Media> {
    (
        (option::of(any::<u32>()), finite(), any::<u64>(), any::<u64>()),
        (option::of(select(&[PlaylistType::Vod, PlaylistType::Event][..])), any::<bool>(), any::<bool>()),
        (vec(segment(), 0..6), vec(part(), 0..3)),
        (
            option::of(finite()),
            option::of((any::<bool>(), option::of(finite()), option::of(finite()), option::of(finite()))),
            option::of(any::<u64>()),
        ),
        (
            vec(
                (bare(), quoted(), option::of(any::<u64>()), option::of(any::<u64>())).prop_map(
                    |(kind, uri, byterange_start, byterange_length)| PreloadHint {
                        kind,
                        uri,
                        byterange_start,
                        byterange_length,
                    },
                ),
                0..3,
            ),
            vec(
                (quoted(), option::of(any::<u64>()), option::of(any::<u64>()))
                    .prop_map(|(uri, last_msn, last_part)| RenditionReport { uri, last_msn, last_part }),
                0..3,
            ),
        ),
    )
        .prop_map(
            |(
                (version, target, media_sequence, discontinuity_sequence),
                (playlist_type, independent_segments, ended),
                (mut segments, parts_in_progress),
                (part_target, control, skipped_segments),
                (preload_hints, rendition_reports),
            )| {
                let mut map = None;
                for s in &mut segments {
                    if s.map.is_none() {
                        s.map.clone_from(&map);
                    }
                    map.clone_from(&s.map);
                }
                Media {
                    version,
                    target_duration: Some(target),
                    media_sequence,
                    discontinuity_sequence,
                    playlist_type,
                    independent_segments,
                    ended,
                    segments,
                    part_target,
                    server_control: control.map(
                        |(can_block_reload, can_skip_until, hold_back, part_hold_back)| ServerControl {
                            can_block_reload,
                            can_skip_until,
                            hold_back,
                            part_hold_back,
                        },
                    ),
                    parts_in_progress,
                    skipped_segments,
                    preload_hints,
                    rendition_reports,
                    start: None,
                }
            },
        )
}

/// A master playlist whose every value the writer can write exactly (frame rates in
/// thousandths, as it writes them); at least one variant, or it would read as a media one.
fn master() -> impl Strategy<Value = Master> {
    let kind =
        select(&[MediaType::Audio, MediaType::Video, MediaType::Subtitles, MediaType::ClosedCaptions][..]);
    let rendition =
        (kind, quoted(), quoted(), option::of(quoted()), any::<bool>(), any::<bool>(), option::of(quoted()))
            .prop_map(|(kind, group_id, name, language, default, autoselect, uri)| Rendition {
                kind,
                group_id,
                name,
                language,
                default,
                autoselect,
                uri,
            });
    let variant = (
        (any::<u64>(), option::of(any::<u64>()), option::of(any::<(u32, u32)>())),
        (option::of(quoted()), option::of((0i64..1_000_000).prop_map(|m| m as f64 / 1e3))),
        (option::of(quoted()), option::of(quoted()), uri()),
    )
        .prop_map(
            |((bandwidth, average_bandwidth, resolution), (codecs, frame_rate), (audio, subtitles, uri))| {
                Variant {
                    bandwidth,
                    average_bandwidth,
                    resolution,
                    codecs,
                    frame_rate,
                    audio,
                    subtitles,
                    uri,
                }
            },
        );
    let start = option::of((-400i32..400, any::<bool>()));
    (option::of(any::<u32>()), any::<bool>(), vec(variant, 1..5), vec(rendition, 0..4), start).prop_map(
        |(version, independent_segments, variants, renditions, start)| Master {
            version,
            independent_segments,
            variants,
            renditions,
            start: start
                .map(|(quarters, precise)| StartPoint { time_offset: f64::from(quarters) / 4.0, precise }),
        },
    )
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_text_is_read_or_refused_without_panic(text in any_text()) {
        check(&text)?;
        check(&format!("#EXTM3U\n{text}"))?;
    }

    #[test]
    fn arbitrary_tag_lines_are_read_or_refused_without_panic(lines in vec(line(), 0..24)) {
        check(&format!("#EXTM3U\n{}", lines.join("\n")))?;
    }

    #[test]
    fn what_applies_to_many_segments_is_held_once(head in vec(sticky(), 1..4), n in 1..64usize) {
        check(&format!("#EXTM3U\n{}\n{}", head.join("\n"), "#EXTINF:1,\ns\n".repeat(n)))?;
    }

    #[test]
    fn mutated_real_playlists_are_read_or_refused_without_panic(text in mutated(SEEDS, line())) {
        check(&text)?;
    }

    #[test]
    fn a_written_media_playlist_reads_back_the_same(m in media()) {
        let text = m.render();
        prop_assert_eq!(parse(&text), Ok(Playlist::Media(m)), "{}", text);
    }

    #[test]
    fn a_written_master_playlist_reads_back_the_same(m in master()) {
        let text = m.render();
        prop_assert_eq!(parse(&text), Ok(Playlist::Master(m)), "{}", text);
    }

    #[test]
    fn attribute_lists_keep_only_slices_of_what_they_were_given(list in prop_oneof![attributes(ATTRIBUTES), any_text()]) {
        let a = Attributes::new(&list);
        prop_assert!(a.0.len() <= list.matches('=').count());
        prop_assert!(a.0.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() <= list.len());
    }

    #[test]
    fn date_times_read_or_not_without_overflow(
        text in prop_oneof![
            any_text(),
            (number(), number(), number(), number(), number(), number(), prop_oneof![number(), ".{0,6}"])
                .prop_map(|(y, mo, d, h, mi, s, z)| format!("{y}-{mo}-{d}T{h}:{mi}:{s}{z}")),
            (any::<i64>(), 1..=12i64, 1..=31i64, 0..24i64, 0..60i64, 0.0..61.0f64, "Z|[+-][0-9]{2}:?[0-9]{2}")
                .prop_map(|(y, mo, d, h, mi, s, z)| format!("{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s}{z}")),
        ]
    ) {
        prop_assert!(date_time(&text).is_none_or(f64::is_finite), "{}", text);
    }
}
