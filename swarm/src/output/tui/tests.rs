//! Dashboard screens from a fixed run: 20 viewers for 40 s, built by feeding events to the real
//! stats owner at fixed offsets from one instant, so every figure is the same on every machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

use super::*;
use crate::measure::events::{EndCause, Ending, Event, EventKind, Request};
use crate::measure::fold::Stats;
use crate::measure::origin::ExporterHealth;

const VIEWERS: u32 = 20;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn fetched(kind: RequestKind, status: u16, bytes: u64, ttfb: Duration, ttlb: Duration) -> EventKind {
    EventKind::Request(Request {
        kind,
        url: format!("http://127.0.0.1:17080/{}", kind.label()),
        status: Some(status),
        bytes,
        connect: Some(Duration::from_micros(90)),
        tls: None,
        ttfb: Some(ttfb),
        ttlb: Some(ttlb),
        elapsed: ttlb,
        media_duration: (kind == RequestKind::Segment).then_some(2.0),
        program_date_time: None,
        variant_bandwidth: None,
        network_error: None,
        protocol: None,
        measured: true,
    })
}

/// The fixed run, seen at `at` milliseconds.
fn snapshot_at(at: u64) -> Snapshot {
    let t0 = Instant::now();
    let planned: Vec<Duration> = (0..u64::from(VIEWERS)).map(|i| ms(i * 250)).collect();
    let mut st = Stats::new(VIEWERS, t0, planned.clone(), Arc::default(), Measure::Relay);
    let mut events = Vec::new();
    let mut push = |viewer: u32, t: u64, kind: EventKind| events.push(Event { viewer, at: t0 + ms(t), kind });
    for v in 0..VIEWERS {
        let start = u64::from(v) * 250;
        push(v, start, EventKind::SessionStarted { took: ms(3) });
        push(v, start + 5, fetched(RequestKind::Master, 200, 400, ms(1), ms(1)));
        // Viewer 12 stops receiving segments after 20 s and is stalled by the end.
        let last = if v == 12 { 20_000 } else { at };
        let mut t = start + 10;
        let mut n = 0_u64;
        while t <= last {
            push(v, t, fetched(RequestKind::Playlist, 200, 600, ms(1 + n % 3), ms(2 + n % 3)));
            let ttlb = ms(4 + (u64::from(v) + n) % 9);
            push(v, t + 12, fetched(RequestKind::Segment, 200, 250_000, ms(1), ttlb));
            t += 2000;
            n += 1;
        }
    }
    push(7, 12_000, fetched(RequestKind::Segment, 404, 150, ms(1), ms(1)));
    push(7, 14_000, fetched(RequestKind::Segment, 404, 150, ms(1), ms(1)));
    push(
        3,
        15_000,
        EventKind::SessionEnded {
            engine: "FFmpeg",
            ending: Ending { code: 1, label: "exit 1".into() },
            cause: EndCause::Own,
            uptime: ms(14_250),
            tail: vec![
                "[hls @ 0x55d0] Opening 'http://127.0.0.1:17080/stream_00042.ts' for reading".into(),
                "[in#0 @ 0x55d1] Error during demuxing: Connection reset by peer".into(),
            ],
        },
    );
    push(3, 15_000, EventKind::Backoff { delay: ms(500) });
    push(3, 15_500, EventKind::SessionStarted { took: ms(3) });
    events.sort_by_key(|e| e.at);
    // Fold events in as the stats owner does: ticks every 500 ms in between.
    let mut tick = 0;
    for e in events.into_iter().filter(|e| e.at <= t0 + ms(at)) {
        while t0 + ms(tick) < e.at {
            st.snapshot(t0 + ms(tick));
            tick += 500;
        }
        st.apply(e);
    }
    st.snapshot(t0 + ms(at))
}

fn origin() -> OriginSnapshot {
    let up = ExporterHealth { ok: true, scrapes_ok: 20, ..ExporterHealth::default() };
    OriginSnapshot {
        node: up.clone(),
        nginx: up,
        cpu_percent: Some(23.5),
        mem_used_bytes: Some(700 << 20),
        mem_total_bytes: Some(24 << 30),
        net_rx_bytes_per_second: Some(40_000.0),
        net_tx_bytes_per_second: Some(2_500_000.0),
        net_scope: crate::measure::origin::NetScope::Devices,
        active_connections: Some(21),
        requests_per_second: Some(20.5),
        nginx_up: Some(true),
        run: crate::measure::origin::RunTotals::default(),
        energy: crate::measure::energy::Energy::default(),
    }
}

fn header() -> Banner {
    Banner {
        url: "http://127.0.0.1:17080/stream.m3u8".into(),
        clients: VIEWERS,
        duration: Some(Duration::from_secs(60)),
        measure: Measure::Relay,
        metrics: Some("0.0.0.0:17091".into()),
    }
}

fn screen(width: u16, height: u16, s: &Snapshot, origin: Option<&OriginSnapshot>, ui: &Ui) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal.draw(|f| draw(f, &header(), s, origin, ui)).expect("draw");
    terminal.backend().to_string()
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

#[test]
fn overview_80x24() {
    let s = snapshot_at(40_500);
    insta::assert_snapshot!(screen(80, 24, &s, Some(&origin()), &Ui::default()));
}

#[test]
fn overview_160x48() {
    let s = snapshot_at(40_500);
    insta::assert_snapshot!(screen(160, 48, &s, Some(&origin()), &Ui::default()));
}

#[test]
fn details_80x24_by_state() {
    let s = snapshot_at(40_500);
    let mut ui = Ui::default();
    ui.on_key(key(KeyCode::Char('d')));
    ui.on_key(key(KeyCode::Char('s')));
    assert_eq!(ui.sort, Sort::State);
    insta::assert_snapshot!(screen(80, 24, &s, None, &ui));
}

#[test]
fn details_160x48_by_errors_paused() {
    let s = snapshot_at(40_500);
    let mut ui = Ui::default();
    for c in ['d', 's', 's', 'p'] {
        ui.on_key(key(KeyCode::Char(c)));
    }
    assert_eq!((ui.sort, ui.paused, ui.details), (Sort::Errors, true, true));
    insta::assert_snapshot!(screen(160, 48, &s, Some(&origin()), &ui));
}

#[test]
fn first_second_before_anything_arrived() {
    let s = snapshot_at(0);
    let h = Banner { duration: None, measure: Measure::Log, metrics: None, ..header() };
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("test terminal");
    terminal.draw(|f| draw(f, &h, &s, None, &Ui::default())).expect("draw");
    insta::assert_snapshot!(terminal.backend().to_string());
}

#[test]
fn sorting_puts_the_troubled_first() {
    let s = snapshot_at(40_500);
    let ids = |sort| sorted(&s.viewers, sort).iter().take(2).map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(Sort::Viewer), [0, 1]);
    assert_eq!(ids(Sort::State)[0], 12, "the stalled viewer");
    assert_eq!(ids(Sort::Errors)[0], 7, "the viewer with two 404s");
    assert_eq!(ids(Sort::Stall)[0], 12);
    let v12 = &s.viewers[12];
    assert!(v12.stalled && v12.stall_seconds > 10.0, "{v12:?}");
}

#[test]
fn small_and_odd_sizes_never_panic() {
    let s = snapshot_at(40_500);
    let o = origin();
    for details in [false, true] {
        let ui = Ui { details, ..Ui::default() };
        for (w, h) in [(40, 10), (1, 1), (10, 3), (200, 5), (12, 60)] {
            let text = screen(w, h, &s, Some(&o), &ui);
            assert_eq!(text.lines().count(), usize::from(h), "{w}x{h}");
        }
    }
    insta::assert_snapshot!(screen(40, 10, &s, Some(&o), &Ui::default()));
}

#[test]
fn quit_keys_and_scrolling() {
    for k in
        [key(KeyCode::Char('q')), key(KeyCode::Esc), KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)]
    {
        let mut ui = Ui::default();
        assert_eq!(ui.on_key(k), Action::Quit);
        assert!(ui.stopping);
    }
    let mut ui = Ui::default();
    assert_eq!(ui.on_key(key(KeyCode::Char('c'))), Action::None, "plain c is not Ctrl+C");
    ui.on_key(key(KeyCode::PageDown));
    ui.on_key(key(KeyCode::Up));
    assert_eq!(ui.scroll, 9);
    ui.on_key(key(KeyCode::Home));
    assert_eq!(ui.scroll, 0);
    // Scrolling past the end shows the last page rather than nothing.
    let s = snapshot_at(40_500);
    let ui = Ui { details: true, scroll: 1000, ..Ui::default() };
    let text = screen(80, 24, &s, None, &ui);
    assert!(text.contains("Viewers 11–20 of 20"), "{text}");
    assert!(text.contains("│19     running"), "the last viewer is on the page: {text}");
}

#[test]
fn chart_buckets_fold_long_series() {
    let samples: Vec<SecondSample> =
        (0..300).map(|i| SecondSample { second: i, bytes: i, ..SecondSample::default() }).collect();
    let b = buckets(&samples, 18, |c| c.iter().map(|x| x.bytes).max().unwrap_or(0));
    assert_eq!(b.len(), 18);
    assert_eq!(b.last(), Some(&299));
    assert!(buckets(&samples, 0, |_| 1).is_empty());
    assert_eq!(buckets(&samples[..5], 18, |c| c.len() as u64), [1, 1, 1, 1, 1]);
}

#[test]
fn clock_format() {
    assert_eq!(clock(Duration::from_secs(307)), "05:07");
    assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
}
