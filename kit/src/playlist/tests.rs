use super::*;

pub(super) const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:3\n\
    #EXT-X-STREAM-INF:BANDWIDTH=2200000,RESOLUTION=1280x720,CODECS=\"avc1.640028,mp4a.40.2\"\n720p/stream.m3u8\n\
    #EXT-X-STREAM-INF:BANDWIDTH=550000,RESOLUTION=640x360\n360p/stream.m3u8\n\
    #EXT-X-STREAM-INF:BANDWIDTH=5500000,RESOLUTION=1920x1080\nhttp://cdn.example/1080p/stream.m3u8\n";

pub(super) const LIVE: &str =
    "#EXTM3U\r\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:17\n\
    #EXTINF:2.000000,\nseg00017.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.000000,\nseg00018.ts\n\
    #EXTINF:1.966667,\nseg00019.ts\n";

/// Apple's low-latency example, abridged (draft-pantos-hls-rfc8216bis, §9.2 style).
pub(super) const LOW_LATENCY: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-VERSION:6\n\
    #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=12.0\n\
    #EXT-X-PART-INF:PART-TARGET=0.33334\n#EXT-X-MEDIA-SEQUENCE:266\n\
    #EXT-X-PROGRAM-DATE-TIME:2019-02-14T02:13:36.106Z\n#EXT-X-MAP:URI=\"init.mp4\"\n\
    #EXTINF:4.00008,\nfileSequence266.mp4\n\
    #EXT-X-PART:DURATION=0.33334,URI=\"filePart267.0.mp4\",INDEPENDENT=YES\n\
    #EXT-X-PART:DURATION=0.33334,URI=\"filePart267.1.mp4\"\n\
    #EXTINF:0.66668,\nfileSequence267.mp4\n\
    #EXT-X-PART:DURATION=0.33334,URI=\"filePart268.0.mp4\",INDEPENDENT=YES\n\
    #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"filePart268.1.mp4\"\n\
    #EXT-X-RENDITION-REPORT:URI=\"../1M/waitForMSN.php\",LAST-MSN=268,LAST-PART=0\n";

fn media(text: &str) -> Media {
    parse_media(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn master_variants_in_order_with_their_attributes() {
    let m = parse_master(MASTER).unwrap();
    assert_eq!(m.version, Some(3));
    assert_eq!(m.variants.len(), 3);
    assert_eq!(m.variants[0].resolution, Some((1280, 720)));
    assert_eq!(m.variants[0].codecs.as_deref(), Some("avc1.640028,mp4a.40.2"));
    assert_eq!(m.variants[2].uri, "http://cdn.example/1080p/stream.m3u8");
    assert_eq!(m.pick(true), Some(2));
    assert_eq!(m.pick(false), Some(1));
    assert_eq!(parse_media(MASTER), Err(ParseError::NotMedia));
}

/// Alternative renditions beside a variant that names its groups.
pub(super) const RENDITIONS: &str = "#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n\
    #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,URI=\"a/en.m3u8\"\n\
    #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Deutsch\",LANGUAGE=\"de\",DEFAULT=NO,AUTOSELECT=NO,URI=\"s/de.m3u8\"\n\
    #EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",DEFAULT=NO,AUTOSELECT=YES\n\
    #EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=800000,FRAME-RATE=29.970,AUDIO=\"aac\",SUBTITLES=\"subs\"\nv.m3u8\n";

/// Keys, init sections, byte ranges, a gap and a program date-time, changing between segments.
pub(super) const KEYS: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n\
    #EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"720@0\"\n\
    #EXT-X-KEY:METHOD=AES-128,URI=\"k/1.key\",IV=0x1\n\
    #EXT-X-PROGRAM-DATE-TIME:2026-12-03T12:00:00.000Z\n#EXTINF:6,first\n#EXT-X-BYTERANGE:1000@720\nall.mp4\n\
    #EXT-X-KEY:METHOD=AES-128,URI=\"k/1.key\"\n#EXTINF:6,\n#EXT-X-BYTERANGE:1000\nall.mp4\n\
    #EXT-X-KEY:METHOD=NONE\n#EXT-X-GAP\n#EXTINF:6,\nmissing.mp4\n\
    #EXT-X-MAP:URI=\"init2.mp4\"\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"k/2.key\",KEYFORMAT=\"identity\"\n\
    #EXTINF:6,\nlast.mp4\n#EXT-X-ENDLIST\n";

#[test]
fn renditions_and_grouped_variants() {
    let m = parse_master(RENDITIONS).unwrap();
    assert!(m.independent_segments);
    assert_eq!(m.renditions.len(), 3);
    assert_eq!(
        m.renditions[0],
        Rendition {
            kind: MediaType::Audio,
            group_id: "aac".into(),
            name: "English".into(),
            language: Some("en".into()),
            default: true,
            autoselect: true,
            uri: Some("a/en.m3u8".into()),
        }
    );
    assert_eq!(m.renditions[2].uri, None);
    let v = &m.variants[0];
    assert_eq!(
        (v.average_bandwidth, v.audio.as_deref(), v.subtitles.as_deref()),
        (Some(800_000), Some("aac"), Some("subs"))
    );
    assert!((v.frame_rate.unwrap() - 29.97).abs() < 1e-9);
    assert_eq!(parse_master(&m.render()).unwrap(), m);
}

#[test]
fn live_media_playlist() {
    let m = media(LIVE);
    assert_eq!(m.target_duration, Some(2.0));
    assert_eq!(m.media_sequence, 17);
    assert_eq!(m.segments.len(), 3);
    assert!(!m.segments[0].discontinuity && m.segments[1].discontinuity);
    assert!((m.segments[2].duration - 1.966_667).abs() < 1e-9);
    assert!(!m.ended && m.playlist_type.is_none());
    assert_eq!(parse_master(LIVE), Err(ParseError::NotMaster));
}

#[test]
fn keys_maps_byte_ranges_gaps_and_dates_apply_to_the_right_segments() {
    let m = media(KEYS);
    assert!(m.ended);
    assert_eq!(m.playlist_type, Some(PlaylistType::Vod));
    let s = &m.segments;
    assert_eq!(s.len(), 4);
    assert_eq!(s[0].title.as_deref(), Some("first"));
    assert_eq!(s[0].byte_range, Some(ByteRange { length: 1000, offset: Some(720) }));
    assert_eq!(s[1].byte_range, Some(ByteRange { length: 1000, offset: None }));
    assert_eq!(s[0].program_date_time.as_deref(), Some("2026-12-03T12:00:00.000Z"));
    assert_eq!(s[1].program_date_time, None);
    assert_eq!(s[0].key.as_ref().and_then(|k| k.iv.as_deref()), Some("0x1"));
    assert_eq!(s[1].key.as_ref().and_then(|k| k.uri.as_deref()), Some("k/1.key"));
    assert!(s[2].gap && s[2].key.is_none() && !s[1].gap);
    assert_eq!(
        s[0].map.as_deref(),
        Some(&Map { uri: "init.mp4".into(), byte_range: Some(ByteRange { length: 720, offset: Some(0) }) })
    );
    assert_eq!(s[2].map.as_ref().map(|m| m.uri.as_str()), Some("init.mp4"));
    assert_eq!(s[3].map.as_ref().map(|m| m.uri.as_str()), Some("init2.mp4"));
    assert_eq!(
        s[3].key.as_ref().map(|k| (k.method.as_str(), k.keyformat.as_deref())),
        Some(("SAMPLE-AES", Some("identity")))
    );
    assert_eq!(m.map_uris(), ["init.mp4", "init2.mp4"]);
    assert_eq!(m.key_uris(), ["k/1.key", "k/2.key"]);
    assert_eq!(media(&m.render()), m, "{}", m.render());
}

#[test]
fn low_latency_tags_are_read_and_written_back() {
    let m = media(LOW_LATENCY);
    let c = m.server_control.unwrap();
    assert!(c.can_block_reload);
    assert_eq!((c.part_hold_back, c.can_skip_until, c.hold_back), (Some(1.0), Some(12.0), None));
    assert_eq!(m.part_target, Some(0.33334));
    assert_eq!(m.segments.len(), 2);
    assert!(m.segments[0].parts.is_empty());
    let parts = &m.segments[1].parts;
    assert_eq!(parts.len(), 2);
    assert!(parts[0].independent && !parts[1].independent);
    assert_eq!(parts[1].uri, "filePart267.1.mp4");
    assert_eq!(m.parts_in_progress.len(), 1, "the segment still being written");
    assert_eq!(
        m.preload_hints,
        [PreloadHint {
            kind: "PART".into(),
            uri: "filePart268.1.mp4".into(),
            byterange_start: None,
            byterange_length: None
        }]
    );
    assert_eq!(
        m.rendition_reports,
        [RenditionReport { uri: "../1M/waitForMSN.php".into(), last_msn: Some(268), last_part: Some(0) }]
    );
    assert_eq!(media(&m.render()), m, "{}", m.render());
    let delta =
        media("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXTINF:4,\na.mp4\n");
    assert_eq!(delta.skipped_segments, Some(3));
}

#[test]
fn ffmpeg_output_captured_on_this_machine() {
    let master = parse_master(include_str!("../../testdata/ffmpeg-abr-master.m3u8")).unwrap();
    assert_eq!(master.variants.len(), 5);
    assert_eq!(master.variants[4].resolution, Some((106, 60)));
    assert_eq!(master.pick(false), Some(4));
    let vod = media(include_str!("../../testdata/ffmpeg-vod-loop.m3u8"));
    assert_eq!(
        (vod.version, vod.target_duration, vod.playlist_type),
        (Some(6), Some(2.0), Some(PlaylistType::Vod))
    );
    assert!(vod.ended && vod.independent_segments && !vod.segments.is_empty());
    assert_eq!(media(&vod.render()), vod);
}

#[test]
fn a_start_point_is_read_and_written_back() {
    let m = media(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-START:TIME-OFFSET=-4.5,PRECISE=YES\n#EXTINF:2,\na.ts\n",
    );
    assert_eq!(m.start, Some(StartPoint { time_offset: -4.5, precise: true }));
    assert_eq!(media(&m.render()), m);
    let master =
        parse_master("#EXTM3U\n#EXT-X-START:TIME-OFFSET=10\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n")
            .unwrap();
    assert_eq!(master.start, Some(StartPoint { time_offset: 10.0, precise: false }));
    for (bad_start, tag) in [
        ("#EXT-X-START:PRECISE=YES", "#EXT-X-START"),
        ("#EXT-X-START:TIME-OFFSET=NaN", "#EXT-X-START"),
        ("#EXT-X-START:TIME-OFFSET=x", "TIME-OFFSET"),
    ] {
        let text = format!("#EXTM3U\n{bad_start}\n#EXTINF:2,\na.ts\n");
        assert_eq!(parse(&text), Err(ParseError::BadTag { line: 2, tag }), "{bad_start}");
    }
}

#[test]
fn rendering_without_a_target_duration_takes_the_longest_segment() {
    let m = Media {
        segments: vec![
            Segment { duration: 2.0, uri: "a.ts".into(), ..Segment::default() },
            Segment { duration: 2.6, uri: "b.ts".into(), ..Segment::default() },
        ],
        ..Media::default()
    };
    assert!(m.render().contains("#EXT-X-TARGETDURATION:3\n"), "{}", m.render());
}

#[test]
fn errors_name_the_line_and_the_tag() {
    assert_eq!(parse("<html>"), Err(ParseError::NotM3u8));
    assert_eq!(parse(""), Err(ParseError::NotM3u8));
    assert_eq!(parse("#EXTM3U\n#EXTINF:abc,\nx.ts"), Err(ParseError::BadTag { line: 2, tag: "#EXTINF" }));
    assert_eq!(
        parse("#EXTM3U\n\n#EXT-X-MEDIA-SEQUENCE:x\n"),
        Err(ParseError::BadTag { line: 3, tag: "#EXT-X-MEDIA-SEQUENCE" })
    );
    assert_eq!(
        parse("#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=1x1\nv.m3u8"),
        Err(ParseError::BadTag { line: 2, tag: "BANDWIDTH" })
    );
    assert_eq!(parse("#EXTM3U\n#EXT-X-KEY:URI=\"k\"\n"), Err(ParseError::BadTag { line: 2, tag: "METHOD" }));
    assert_eq!(
        parse("#EXTM3U\n#EXT-X-BYTERANGE:many\n"),
        Err(ParseError::BadTag { line: 2, tag: "#EXT-X-BYTERANGE" })
    );
    assert_eq!(ParseError::BadTag { line: 2, tag: "#EXTINF" }.to_string(), "line 2: cannot read #EXTINF");
}

#[test]
fn unknown_tags_and_a_byte_order_mark_are_ignored() {
    let m = media("\u{feff}#EXTM3U\n#EXT-X-FUTURE-TAG:X=1\n#EXTINF:2,\na.ts\n# a comment\n");
    assert_eq!(m.segments.len(), 1);
}

#[test]
fn attribute_lists_keep_quoted_commas() {
    let a = Attributes::new("A=1,B=\"x,y\",C=z");
    assert_eq!((a.get("A"), a.get("B"), a.get("C"), a.get("D")), (Some("1"), Some("x,y"), Some("z"), None));
    assert_eq!(Attributes::new("A=\"unterminated").get("A"), Some("unterminated"));
}

#[test]
fn relative_uris() {
    let base = url::Url::parse("http://h:17080/live/master.m3u8").unwrap();
    assert_eq!(resolve(&base, "720p/stream.m3u8").unwrap().as_str(), "http://h:17080/live/720p/stream.m3u8");
    assert_eq!(resolve(&base, "/abs.m3u8").unwrap().as_str(), "http://h:17080/abs.m3u8");
}

#[test]
fn program_date_times_read_as_unix_seconds() {
    assert_eq!(date_time("1970-01-01T00:00:00Z"), Some(0.0));
    assert_eq!(date_time("2026-12-03T12:00:00.000Z"), Some(1_796_299_200.0));
    // FFmpeg's own form, and offsets either way.
    assert_eq!(date_time("2026-12-03T13:00:00.000+0100"), Some(1_796_299_200.0));
    assert_eq!(date_time("2026-12-03T07:30:00-04:30"), Some(1_796_299_200.0));
    let with_ms = date_time("2019-02-14T02:13:36.106Z").unwrap();
    assert!((with_ms - 1_550_110_416.106).abs() < 1e-6, "{with_ms}");
    assert_eq!(date_time("2024-02-29T00:00:00Z"), Some(1_709_164_800.0), "a leap day");
    for bad in [
        "",
        "yesterday",
        "2026-13-01T00:00:00Z",
        "2026-12-03",
        "2026-12-03T25:00:00Z",
        "2026-12-03T12:00:00+1",
    ] {
        assert_eq!(date_time(bad), None, "{bad}");
    }
}

/// Found by the property tests: a year past four digits overflowed the day count (a panic in a
/// debug build, a wrong instant in a release one; the relay reads every program date-time).
#[test]
fn years_past_four_digits_are_refused_not_overflowed() {
    assert_eq!(date_time("99999999999999-01-01T00:00:00Z"), None);
    assert_eq!(date_time("9223372036854775807-01-01T00:00:00Z"), None);
    assert_eq!(date_time("9999-12-31T23:59:59Z"), Some(253_402_300_799.0));
}

/// Found by the property tests: every segment held its own copy of the key and init section in
/// effect, so one long `#EXT-X-KEY` line above many short segments (a 4 MB playlist) would have
/// made gigabytes. Each line is now held once and shared by the segments it applies to.
#[test]
fn a_key_or_map_line_is_held_once_however_many_segments_follow() {
    let long = "k".repeat(64 * 1024);
    let mut text =
        format!("#EXTM3U\n#EXT-X-MAP:URI=\"{long}.mp4\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"{long}\"\n");
    text.push_str(&"#EXTINF:1,\ns.ts\n".repeat(10_000));
    let roomy = Bounds { line_bytes: 1 << 20, uri_bytes: 1 << 20, ..Bounds::DEFAULT };
    let Ok(Playlist::Media(m)) = parse_within(&text, roomy) else { panic!("not a media playlist") };
    assert_eq!(m.segments.len(), 10_000);
    let (key, map) = (m.segments[0].key.as_ref().unwrap(), m.segments[0].map.as_ref().unwrap());
    assert!(m.segments.iter().all(|s| s.key.as_ref().is_some_and(|k| std::sync::Arc::ptr_eq(k, key))));
    assert!(m.segments.iter().all(|s| s.map.as_ref().is_some_and(|k| std::sync::Arc::ptr_eq(k, map))));
    assert_eq!(m.key_uris(), [long.as_str()]);
    assert_eq!(m.map_uris(), [format!("{long}.mp4")]);
}

/// A new key for every segment (each listed once, in order, however many there are; the list
/// is built in linear time).
#[test]
fn a_key_per_segment_lists_each_key_once_in_order() {
    let mut text = String::from("#EXTM3U\n");
    for i in 0..20_000 {
        text.push_str(&format!("#EXT-X-KEY:METHOD=AES-128,URI=\"k{i}\"\n#EXTINF:1,\na.ts\n"));
        text.push_str("#EXT-X-KEY:METHOD=AES-128,URI=\"k0\"\n#EXTINF:1,\nb.ts\n");
    }
    let m = media(&text);
    let keys = m.key_uris();
    assert_eq!(keys.len(), 20_000);
    assert_eq!((keys[0], keys[1], keys[19_999]), ("k0", "k1", "k19999"));
}

#[test]
fn over_a_bound_the_whole_text_is_refused_at_the_line_that_passed_it() {
    let small = Bounds { line_bytes: 40, uri_bytes: 12, entries: 2 };
    let over = |text: &str| parse_within(text, small).unwrap_err();
    let seg = |uri: &str| format!("#EXTINF:2,\n{uri}\n");
    let head = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n";
    // At each bound exactly it reads.
    let two = format!("{head}{}{}", seg("a.ts"), seg("0123456789.ts"[..12].as_ref()));
    assert_eq!(
        parse_within(&two, small).map(|p| matches!(p, Playlist::Media(m) if m.segments.len() == 2)),
        Ok(true)
    );
    let three = format!("{two}{}", seg("c.ts"));
    assert_eq!(over(&three), ParseError::OverLimit { line: 8, what: Bound::Entries, limit: 2 });
    assert_eq!(
        over(&format!("{head}{}", seg("0123456789abc.ts"))),
        ParseError::OverLimit { line: 4, what: Bound::Uri, limit: 12 }
    );
    let key = format!("{head}#EXT-X-KEY:METHOD=AES-128,URI=\"https://k/x\"\n");
    assert_eq!(over(&key), ParseError::OverLimit { line: 3, what: Bound::Line, limit: 40 });
    let key = format!("{head}#EXT-X-KEY:METHOD=X,URI=\"k/0123456789a\"\n");
    assert_eq!(over(&key), ParseError::OverLimit { line: 3, what: Bound::Uri, limit: 12 });
    let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na\n#EXT-X-STREAM-INF:BANDWIDTH=2\nb\n\
        #EXT-X-STREAM-INF:BANDWIDTH=3\nc\n";
    assert_eq!(over(master), ParseError::OverLimit { line: 7, what: Bound::Entries, limit: 2 });
    assert_eq!(over(master).to_string(), "line 7: more than 2 segments (or variants, renditions or parts)");
}

#[test]
fn the_default_bounds_read_a_day_of_two_second_segments() {
    let mut text = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    for i in 0..43_200 {
        text.push_str(&format!("#EXTINF:2.000,\nhttps://cdn.example.com/vod/title/1080p/segment{i:06}.ts\n"));
    }
    text.push_str("#EXT-X-ENDLIST\n");
    assert_eq!(parse_media(&text).map(|m| m.segments.len()), Ok(43_200));
}
