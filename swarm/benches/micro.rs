//! Microbenchmarks (criterion) of the swarm's hot pure code: FFmpeg's log lines into events
//! ([`swarm::engine::ffmpeg::log`]), HLS playlists ([`kit::playlist`]) and the stats fold
//! ([`swarm::measure::fold::Stats::apply`], plus the per-tick [`swarm::measure::fold::Stats::snapshot`]).
//!
//! `cargo bench -p hls-swarm --bench micro` (criterion's own flags after `--`, e.g. a filter
//! `-- stats` or `--measurement-time 10`). Defaults are short (1 s warm-up, 3 s measurement,
//! 30 samples) so that `make bench` stays quick; the throughput lines give lines, bytes or
//! events per second on one core. Under `cargo test --all-targets` every function runs once.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kit::playlist;
use swarm::engine::ffmpeg::log::{parse_line, LineSplitter};
use swarm::measure::events::RequestKind;
use swarm::measure::events::{Event, EventKind, Protocol, Request, ViewerId};
use swarm::measure::fold::Stats;
use swarm::measure::snapshot::Measure;

/// One real FFmpeg 5.1.9 viewer's stderr (20 s of a live 2 s-segment stream, status lines
/// ending in `\r`), as the parser's tests use it.
const CAPTURE: &str = include_str!("../testdata/ffmpeg-5.1-live-viewer.log");

fn parser(c: &mut Criterion) {
    let mut lines = Vec::new();
    let mut split = LineSplitter::default();
    split.feed(CAPTURE.as_bytes(), |l| lines.push(l.to_owned()));
    split.finish(|l| lines.push(l.to_owned()));
    let mut g = c.benchmark_group("parser");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("parse_line (real capture, lines/s)", |b| {
        b.iter(|| {
            let mut events = 0_usize;
            for line in &lines {
                events += usize::from(parse_line(black_box(line)).is_some());
            }
            events
        });
    });
    g.throughput(Throughput::Bytes(CAPTURE.len() as u64));
    g.bench_function("split + parse_line (real capture, bytes/s)", |b| {
        b.iter(|| {
            let mut split = LineSplitter::default();
            let mut events = 0_usize;
            let mut each = |l: &str| events += usize::from(parse_line(l).is_some());
            split.feed(black_box(CAPTURE.as_bytes()), &mut each);
            split.finish(&mut each);
            events
        });
    });
    g.finish();
}

/// A live media playlist as the origin's FFmpeg HLS muxer writes it: `segments` entries.
fn media_playlist(segments: u64, ended: bool) -> String {
    let mut text =
        String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:4711\n");
    for i in 0..segments {
        text.push_str(&format!("#EXTINF:2.000000,\nseg{:05}.ts\n", 4711 + i));
    }
    if ended {
        text.push_str("#EXT-X-ENDLIST\n");
    }
    text
}

const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:3\n\
    #EXT-X-STREAM-INF:BANDWIDTH=2200000,RESOLUTION=1280x720,CODECS=\"avc1.640028,mp4a.40.2\"\n720p/stream.m3u8\n\
    #EXT-X-STREAM-INF:BANDWIDTH=1100000,RESOLUTION=854x480,CODECS=\"avc1.64001f,mp4a.40.2\"\n480p/stream.m3u8\n\
    #EXT-X-STREAM-INF:BANDWIDTH=550000,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\"\n360p/stream.m3u8\n";

fn playlists(c: &mut Criterion) {
    let live = media_playlist(6, false);
    let vod = media_playlist(1800, true);
    let mut g = c.benchmark_group("playlist");
    for (name, text) in [
        ("live media, 6 segments", live.as_str()),
        ("master, 3 variants", MASTER),
        ("VOD media, 1800 segments (1 h)", vod.as_str()),
    ] {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| b.iter(|| playlist::parse(black_box(text))));
    }
    g.finish();
}

/// What `viewers` viewers report in `seconds` of a live 2 s-segment stream, in time order:
/// a start each, then per viewer every 2 s one playlist refresh and one segment. With the
/// relay these are measured requests (plus the playlist it read); from the log, request lines.
fn events(viewers: u32, seconds: u32, measure: Measure, t0: Instant) -> Vec<Event> {
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut out = Vec::new();
    for v in 0..viewers {
        let took = Duration::from_millis(20);
        out.push(Event { viewer: v, at: ms(u64::from(v) * 200), kind: EventKind::SessionStarted { took } });
    }
    let fetched = |kind: RequestKind, url: &str, bytes: u64, media: Option<f64>| {
        EventKind::Request(Request {
            kind,
            url: url.to_owned(),
            status: Some(200),
            bytes,
            connect: None,
            tls: None,
            ttfb: Some(Duration::from_micros(900)),
            ttlb: Some(Duration::from_micros(if media.is_some() { 4200 } else { 1100 })),
            elapsed: Duration::from_micros(4200),
            media_duration: media,
            program_date_time: None,
            variant_bandwidth: None,
            network_error: None,
            protocol: Some(Protocol::Http1),
            measured: true,
        })
    };
    let start = u64::from(viewers) * 200;
    for tick in 0..u64::from(seconds / 2) {
        for v in 0..viewers {
            let at = ms(start + tick * 2000 + u64::from(v) * 2000 / u64::from(viewers.max(1)));
            let seg_url = format!("http://127.0.0.1:17080/seg{:05}.ts", 4711 + tick);
            let push = |out: &mut Vec<Event>, viewer: ViewerId, kind| out.push(Event { viewer, at, kind });
            match measure {
                Measure::Relay => {
                    push(
                        &mut out,
                        v,
                        fetched(RequestKind::Playlist, "http://127.0.0.1:17080/stream.m3u8", 420, None),
                    );
                    push(
                        &mut out,
                        v,
                        EventKind::PlaylistSeen { media_sequence: 4711 + tick, segments: 6, ended: false },
                    );
                    push(&mut out, v, fetched(RequestKind::Segment, &seg_url, 210_000, Some(2.0)));
                }
                Measure::Log => {
                    let log = |kind, url: &str| {
                        EventKind::Request(Request::inferred(kind, url.to_owned(), Some(2.0)))
                    };
                    push(&mut out, v, log(RequestKind::Playlist, "http://127.0.0.1:17080/stream.m3u8"));
                    push(&mut out, v, log(RequestKind::Segment, &seg_url));
                }
            }
        }
    }
    out
}

fn fresh(viewers: u32, measure: Measure, t0: Instant) -> Stats {
    let planned = (0..viewers).map(|v| Duration::from_millis(u64::from(v) * 200)).collect();
    Stats::new(viewers, t0, planned, Arc::default(), measure)
}

fn stats_fold(c: &mut Criterion) {
    const VIEWERS: u32 = 200;
    const SECONDS: u32 = 60;
    let t0 = Instant::now();
    let mut g = c.benchmark_group("stats");
    for (name, measure) in
        [("apply, relay events (events/s)", Measure::Relay), ("apply, log events (events/s)", Measure::Log)]
    {
        let evs = events(VIEWERS, SECONDS, measure, t0);
        g.throughput(Throughput::Elements(evs.len() as u64));
        g.bench_function(name, |b| {
            b.iter_batched(
                || (fresh(VIEWERS, measure, t0), evs.clone()),
                |(mut st, evs)| {
                    for ev in evs {
                        st.apply(ev);
                    }
                    st
                },
                BatchSize::LargeInput,
            );
        });
    }
    // The per-tick cost (4 per second): the snapshot the TUI, /metrics and the summary read.
    let mut st = fresh(VIEWERS, Measure::Relay, t0);
    let evs = events(VIEWERS, SECONDS, Measure::Relay, t0);
    let end = evs.last().map_or(t0, |e| e.at);
    for ev in evs {
        st.apply(ev);
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("snapshot, 200 viewers after 60 s (snapshots/s)", |b| {
        b.iter(|| st.snapshot(black_box(end)));
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = parser, playlists, stats_fold
}
criterion_main!(benches);
