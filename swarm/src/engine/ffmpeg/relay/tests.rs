use url::Url;

use super::catalog::{Catalog, Listed};
use super::chunked::{dechunk, Chunks};
use super::exchange::connection_says;
use crate::measure::events::{EventKind, RequestKind};
use kit::playlist::Bounds;

#[test]
fn chunked_framing_in_any_split() {
    let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
    let end = body.len() - 4;
    for split in 1..body.len() {
        let mut c = Chunks::default();
        let a = c.feed(&body[..split]);
        let b = if c.done() { 0 } else { c.feed(&body[split..]) };
        assert!(c.done(), "split at {split}");
        assert_eq!(a + b, end, "split at {split}: stops before the next response");
        assert_eq!(c.payload, 4 + 5 + 14);
    }
    assert_eq!(dechunk(&body[..end]), b"Wikipedia in\r\n\r\nchunks.");
}

#[test]
fn empty_chunked_body() {
    let mut c = Chunks::default();
    assert_eq!(c.feed(b"0\r\n\r\n"), 5);
    assert!(c.done());
    assert_eq!(c.payload, 0);
}

#[test]
fn keep_alive_rules() {
    assert!(!connection_says(None, 1));
    assert!(connection_says(None, 0));
    assert!(connection_says(Some(b"Close"), 1));
    assert!(!connection_says(Some(b"keep-alive"), 0));
    assert!(connection_says(Some(b"keep-alive, close"), 1));
}

#[test]
fn catalog_learns_segments_init_and_keys() {
    let mut c = Catalog::default();
    let master = Url::parse("http://h/live/master.m3u8").unwrap();
    let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv0/stream.m3u8\n";
    assert_eq!(
        c.learn(&master, text.as_bytes(), Bounds::DEFAULT).map(|r| r.0).ok(),
        Some(RequestKind::Master)
    );
    assert_eq!(c.classify("http://h/live/master.m3u8").0, RequestKind::Master);

    let media = Url::parse("http://h/live/v0/stream.m3u8").unwrap();
    let one = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-MAP:URI=\"init.mp4\"\n\
        #EXT-X-KEY:METHOD=AES-128,URI=\"/keys/k1\"\n#EXTINF:2.5,\nseg7.m4s\n#EXTINF:1.5,\nseg8.m4s\n";
    let (kind, seen) = c.learn(&media, one.as_bytes(), Bounds::DEFAULT).unwrap();
    assert_eq!(kind, RequestKind::Playlist);
    assert!(matches!(seen, Some(EventKind::PlaylistSeen { media_sequence: 7, segments: 2, ended: false })));
    assert_eq!(c.classify("http://h/live/v0/seg7.m4s"), (RequestKind::Segment, Some(listed(2.5, None))));
    assert_eq!(c.classify("http://h/live/v0/init.mp4"), (RequestKind::Init, None));
    assert_eq!(c.classify("http://h/keys/k1"), (RequestKind::Key, None));
    // The next refresh slides the window: the old segment is still known (previous listing),
    // the one before that is not.
    let two = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:8\n#EXTINF:1.5,\nseg8.m4s\n#EXTINF:2,\nseg9.m4s\n";
    c.learn(&media, two.as_bytes(), Bounds::DEFAULT).unwrap();
    let three = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:9\n#EXTINF:2,\nseg9.m4s\n";
    c.learn(&media, three.as_bytes(), Bounds::DEFAULT).unwrap();
    assert_eq!(c.classify("http://h/live/v0/seg8.m4s"), (RequestKind::Segment, Some(listed(1.5, None))));
    assert_eq!(c.classify("http://h/live/v0/seg7.m4s"), (RequestKind::Segment, None), "judged by extension");
    assert_eq!(c.classify("http://h/x/other.json").0, RequestKind::Other);
    assert_eq!(c.classify("http://h/x/unknown.m3u8?t=1").0, RequestKind::Playlist);
    assert!(matches!(c.learn(&media, b"<html>", Bounds::DEFAULT), Err(None)));
    let small = Bounds { entries: 1, ..Bounds::DEFAULT };
    let over = c.learn(&media, two.as_bytes(), small).unwrap_err().unwrap_or_default();
    assert!(
        over.ends_with("more than 1 segments (or variants, renditions or parts) (--max-segments raises it)"),
        "{over}"
    );
    assert_eq!(
        c.classify("http://h/live/v0/seg8.m4s").1,
        Some(listed(1.5, None)),
        "refused whole: nothing learned"
    );
}

fn listed(duration: f64, program_date_time: Option<f64>) -> Listed {
    Listed { duration, program_date_time }
}

#[test]
fn program_date_times_carry_forward_until_a_discontinuity() {
    let mut c = Catalog::default();
    let media = Url::parse("http://h/live/stream.m3u8").unwrap();
    let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-12-03T12:00:00.000Z\n#EXTINF:2,\ns1.ts\n#EXTINF:1.5,\ns2.ts\n\
        #EXTINF:2,\ns3.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2,\ns4.ts\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-12-03T13:00:00.000+0000\n#EXTINF:2,\ns5.ts\n";
    c.learn(&media, text.as_bytes(), Bounds::DEFAULT).unwrap();
    let noon = 1_796_299_200.0;
    let at = |u: &str| c.classify(&format!("http://h/live/{u}")).1.and_then(|l| l.program_date_time);
    assert_eq!((at("s1.ts"), at("s2.ts"), at("s3.ts")), (Some(noon), Some(noon + 2.0), Some(noon + 3.5)));
    assert_eq!(at("s4.ts"), None, "after a discontinuity, only a new date-time says");
    assert_eq!(at("s5.ts"), Some(noon + 3600.0));
}
