//! The live dashboard: what the viewers experience, drawn from the stats snapshots a few times
//! a second.
//!
//! Drawing ([`draw`]) is a pure function of a [`Banner`], a [`Snapshot`], the origin's figures
//! and the [`Ui`] state, so every screen is tested with ratatui's `TestBackend`. The terminal
//! side ([`Dashboard`]) runs on its own thread: raw mode and the alternate screen are set up
//! there and always undone, on quit, at the end of the run, and on panic (ratatui's hook).

use std::cmp::Reverse;
use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, LineGauge, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

use crate::measure::events::RequestKind;
use crate::measure::history::ViewerState;
use crate::measure::history::{Level, Notice, SecondSample, ViewerRow};
use crate::measure::latency::Latency;
use crate::measure::origin::{NetScope, OriginSnapshot};
use crate::measure::snapshot::{Measure, Snapshot};
use crate::output::summary::{bytes, seconds};

/// How often the screen is redrawn (and keys are read).
pub const REFRESH: Duration = Duration::from_millis(250);

/// What the run was asked to do.
#[derive(Debug, Clone)]
pub struct Banner {
    /// Stream URL.
    pub url: String,
    /// `--clients`.
    pub clients: u32,
    /// `--duration` (`None` = until stopped).
    pub duration: Option<Duration>,
    /// How requests are measured.
    pub measure: Measure,
    /// Where `/metrics` is served, if anywhere.
    pub metrics: Option<String>,
}

/// Order of the per-viewer table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// By viewer number.
    #[default]
    Viewer,
    /// Troubled states first (stalled, backoff, waiting, running, ended, stopped).
    State,
    /// Most errors first.
    Errors,
    /// Longest stall time first.
    Stall,
}

impl Sort {
    fn next(self) -> Sort {
        match self {
            Sort::Viewer => Sort::State,
            Sort::State => Sort::Errors,
            Sort::Errors => Sort::Stall,
            Sort::Stall => Sort::Viewer,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Sort::Viewer => "viewer",
            Sort::State => "state",
            Sort::Errors => "errors",
            Sort::Stall => "stall time",
        }
    }
}

/// What the person at the keyboard chose.
#[derive(Debug, Clone, Default)]
pub struct Ui {
    /// `d`: the per-viewer table instead of the overview.
    pub details: bool,
    /// `p`: the display is frozen (the run goes on).
    pub paused: bool,
    /// `s`: table order.
    pub sort: Sort,
    /// First table row shown (↑ ↓ PgUp PgDn Home).
    pub scroll: usize,
    /// `q` was pressed: the run is stopping.
    pub stopping: bool,
}

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond the UI change.
    None,
    /// End the run gracefully (`q`, Esc, Ctrl+C).
    Quit,
}

impl Ui {
    /// Applies one key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind != KeyEventKind::Press {
            return Action::None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => return self.quit(),
            KeyCode::Char('q' | 'Q') | KeyCode::Esc => return self.quit(),
            KeyCode::Char('d' | 'D') => self.details = !self.details,
            KeyCode::Char('p' | 'P' | ' ') => self.paused = !self.paused,
            KeyCode::Char('s' | 'S') => {
                self.sort = self.sort.next();
                self.scroll = 0;
            }
            KeyCode::Down | KeyCode::Char('j') => self.scroll = self.scroll.saturating_add(1),
            KeyCode::Up | KeyCode::Char('k') => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_add(10),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(10),
            KeyCode::Home => self.scroll = 0,
            _ => {}
        }
        Action::None
    }

    fn quit(&mut self) -> Action {
        self.stopping = true;
        Action::Quit
    }
}

/// Draws one frame.
pub fn draw(frame: &mut Frame, h: &Banner, s: &Snapshot, origin: Option<&OriginSnapshot>, ui: &Ui) {
    let [top, body, footer] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(0), Constraint::Length(1)])
            .areas(frame.area());
    draw_top(frame, top, h, s, origin);
    if ui.details {
        let [table, log] = Layout::vertical([Constraint::Min(3), Constraint::Percentage(35)]).areas(body);
        draw_viewers(frame, table, s, ui);
        draw_notices(frame, log, s, true);
    } else {
        let [panels, charts, log] =
            Layout::vertical([Constraint::Length(8), Constraint::Fill(3), Constraint::Fill(2)]).areas(body);
        draw_panels(frame, panels, s);
        draw_charts(frame, charts, &s.recent);
        draw_notices(frame, log, s, false);
    }
    draw_footer(frame, footer, ui);
}

/// `05:07`, or `1:02:03` from an hour on.
fn clock(d: Duration) -> String {
    let t = d.as_secs();
    if t >= 3600 {
        format!("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
    } else {
        format!("{:02}:{:02}", t / 60, t % 60)
    }
}

fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        (part / whole).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn draw_top(frame: &mut Frame, area: Rect, h: &Banner, s: &Snapshot, origin: Option<&OriginSnapshot>) {
    let [title, gauges, origin_line] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let mode = match h.measure {
        Measure::Relay => "measured",
        Measure::Log => "inferred from logs",
    };
    let mut spans = vec![
        Span::styled(" hls-swarm ", Style::new().bold().reversed()),
        Span::raw(" "),
        Span::raw(h.url.clone()),
        Span::raw(format!("  ({mode})")).dim(),
    ];
    if let Some(m) = &h.metrics {
        spans.push(Span::raw(format!("  metrics {m}")).dim());
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), title);

    let [run, ramp] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(gauges);
    let (run_label, run_ratio) = match h.duration {
        Some(d) => {
            (format!("{} / {}", clock(s.elapsed), clock(d)), ratio(s.elapsed.as_secs_f64(), d.as_secs_f64()))
        }
        None => (format!("{} (until stopped)", clock(s.elapsed)), 0.0),
    };
    frame.render_widget(
        LineGauge::default()
            .ratio(run_ratio)
            .label(run_label)
            .filled_style(Style::new().fg(Color::Cyan))
            .unfilled_style(Style::new().fg(Color::DarkGray)),
        run,
    );
    let started = f64::from(s.started);
    let target = f64::from(h.clients.max(s.target));
    frame.render_widget(
        LineGauge::default()
            .ratio(ratio(started, target))
            .label(format!("started {}/{} ", s.started, h.clients.max(s.target)))
            .filled_style(Style::new().fg(Color::Green))
            .unfilled_style(Style::new().fg(Color::DarkGray)),
        ramp,
    );
    frame.render_widget(Paragraph::new(origin_text(origin, s)), origin_line);
}

fn origin_text(origin: Option<&OriginSnapshot>, s: &Snapshot) -> Line<'static> {
    let Some(o) = origin else {
        let mut parts =
            vec![Span::raw(" origin: not scraped (--origin-metrics-host HOST to see its CPU and network)")
                .dim()];
        parts.extend(generator_spans(s));
        return Line::from(parts);
    };
    let mut parts = vec![Span::raw(" origin ")];
    if o.node.ok {
        let cpu = o.cpu_percent.map_or_else(|| "…".to_owned(), |c| format!("{c:.0}%"));
        let tx = match (o.net_scope, o.net_tx_bytes_per_second) {
            // On loopback no device counter is the origin's: what it serves is the relay's count.
            (NetScope::Loopback, _) if s.measure == Measure::Relay => {
                format!("{}/s (relay)", bytes(s.throughput.w1))
            }
            (NetScope::Loopback, _) => "n/a (loopback)".to_owned(),
            (_, None) => "…".to_owned(),
            (_, Some(b)) => format!("{}/s", bytes(b)),
        };
        parts.push(Span::raw(format!("CPU {cpu} · net out {tx}")));
    } else {
        parts.push(Span::raw("node exporter down").fg(Color::Yellow));
    }
    parts.push(Span::raw(" · "));
    if o.nginx.ok {
        let conns = o.active_connections.map_or_else(|| "…".to_owned(), |c| c.to_string());
        let rps = o.requests_per_second.map_or_else(|| "…".to_owned(), |r| format!("{r:.1}"));
        parts.push(Span::raw(format!("nginx {conns} conns · {rps} req/s")));
    } else {
        parts.push(Span::raw("nginx exporter down").fg(Color::Yellow));
    }
    parts.extend(generator_spans(s));
    Line::from(parts)
}

/// The swarm's own machine: its CPU, and a warning when it is the bottleneck.
fn generator_spans(s: &Snapshot) -> Vec<Span<'static>> {
    let g = &s.generator;
    let mut parts = Vec::new();
    if let Some(host) = g.host_cpu {
        parts.push(Span::raw(format!(" │ swarm host CPU {:.0}%", host * 100.0)));
    }
    if g.bound {
        parts.push(Span::raw(" GENERATOR-BOUND").fg(Color::Red).bold());
    }
    parts
}

fn row(label: &str, value: String) -> Line<'static> {
    Line::from(vec![Span::raw(format!("{label:<11}")).dim(), Span::raw(value)])
}

fn warn_if(value: String, bad: bool) -> Span<'static> {
    if bad {
        Span::styled(value, Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD))
    } else {
        Span::raw(value)
    }
}

fn draw_panels(frame: &mut Frame, area: Rect, s: &Snapshot) {
    let [viewers, traffic, latency] = Layout::horizontal([
        Constraint::Percentage(24),
        Constraint::Percentage(30),
        Constraint::Percentage(46),
    ])
    .areas(area);

    let stalled = s.playback.stalled_now;
    let speed = s.speed.map_or_else(|| "–".to_owned(), |x| format!("{x:.2}x"));
    let lines = vec![
        Line::from(vec![
            Span::raw(format!("{:<11}", "streaming")).dim(),
            warn_if(format!("{}/{}", s.streaming, s.target), s.streaming < s.target && s.started == s.target),
        ]),
        row("running", s.running.to_string()),
        Line::from(vec![
            Span::raw(format!("{:<11}", "stalled")).dim(),
            warn_if(stalled.to_string(), stalled > 0),
        ]),
        row("backoff", s.backoff.to_string()),
        row("restarts", s.restarts.to_string()),
        Line::from(vec![
            Span::raw(format!("{:<11}", "avg speed")).dim(),
            warn_if(speed, s.speed.is_some_and(|x| x < 0.98)),
        ]),
    ];
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(" Viewers ")), viewers);

    let errors = s.http_errors.values().sum::<u64>() + s.network_errors + s.spawn_failures;
    let total_bytes: u64 = s.bytes.values().sum::<u64>() + s.tunnels.bytes_down;
    let mut lines = vec![row("segments/s", format!("{:.1}", s.rate_of(RequestKind::Segment)))];
    if let Some(parts) = crate::output::summary::parts_rate(s) {
        lines.push(row("parts/s", format!("{parts:.1}")));
    }
    lines.extend([
        row("playlist/s", format!("{:.1}", s.playlist_rate())),
        row("throughput", format!("{}/s", bytes(s.throughput.w30))),
        row("received", bytes(total_bytes as f64)),
        Line::from(vec![
            Span::raw(format!("{:<11}", "errors")).dim(),
            warn_if(format!("{errors} ({:.2}%)", s.error_rate() * 100.0), errors > 0),
        ]),
        Line::from(format!(
            " 4xx {} 5xx {} net {}",
            s.http_errors_in(400, 499),
            s.http_errors_in(500, 599),
            s.network_errors
        )),
    ]);
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(" Traffic ")), traffic);

    let q = |l: Option<&Latency>| -> String {
        match l.filter(|l| l.count > 0) {
            Some(l) => format!("{:>8}{:>8}{:>8}", seconds(l.p50), seconds(l.p95), seconds(l.p99)),
            None => format!("{:>8}{:>8}{:>8}", "–", "–", "–"),
        }
    };
    let seg = RequestKind::Segment;
    let pl = RequestKind::Playlist;
    let lines = vec![
        Line::from(format!("{:<10}{:>8}{:>8}{:>8}", "", "p50", "p95", "p99")).dim(),
        row("seg TTFB", q(s.ttfb.get(&seg))),
        row("seg total", q(s.ttlb.get(&seg))),
        row("pl TTFB", q(s.ttfb.get(&pl))),
        row("pl total", q(s.ttlb.get(&pl))),
        Line::from(vec![
            Span::raw(format!("{:<11}", "startup")).dim(),
            Span::raw(if s.startup.count > 0 { seconds(s.startup.p50) } else { "–".into() }),
            Span::raw("  stalls ").dim(),
            warn_if(
                format!("{} ({:.1}%)", s.playback.stalls, s.playback.stall_ratio() * 100.0),
                s.playback.stalls > 0,
            ),
        ]),
    ];
    let title =
        if s.measure == Measure::Relay { " Latency (run) " } else { " Latency (needs --measure relay) " };
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(title)), latency);
}

/// One chart's bars: the samples folded into at most `width` buckets.
fn buckets(samples: &[SecondSample], width: usize, pick: impl Fn(&[SecondSample]) -> u64) -> Vec<u64> {
    if samples.is_empty() || width == 0 {
        return Vec::new();
    }
    let per = samples.len().div_ceil(width);
    samples.chunks(per).map(pick).collect()
}

#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn draw_charts(frame: &mut Frame, area: Rect, recent: &[SecondSample]) {
    let areas = Layout::horizontal([Constraint::Ratio(1, 4); 4]).split(area);
    let width = usize::from(area.width / 4).saturating_sub(2);
    let span = recent.len();
    let span_text = if span >= 120 { format!("{} min", span / 60) } else { format!("{span} s") };
    let last = recent.last().copied().unwrap_or_default();
    let mean = |c: &[SecondSample]| c.iter().map(|x| x.bytes).sum::<u64>() / c.len().max(1) as u64;
    let charts: [(String, Vec<u64>, Color); 4] = [
        (format!(" thr {}/s ", bytes(last.bytes as f64)), buckets(recent, width, mean), Color::Cyan),
        (
            format!(" viewers {} ", last.streaming),
            buckets(recent, width, |c| c.iter().map(|x| u64::from(x.streaming)).max().unwrap_or(0)),
            Color::Green,
        ),
        (
            format!(" seg p95 {} ", last.segment_p95.map_or_else(|| "–".to_owned(), seconds)),
            buckets(recent, width, |c| {
                (c.iter().filter_map(|x| x.segment_p95).fold(0.0, f64::max) * 1e6) as u64
            }),
            Color::Magenta,
        ),
        (
            format!(" errors/s {} ", last.errors),
            buckets(recent, width, |c| c.iter().map(|x| x.errors).sum::<u64>() / c.len().max(1) as u64),
            Color::Red,
        ),
    ];
    for ((title, data, color), a) in charts.into_iter().zip(areas.iter()) {
        let block =
            Block::bordered().title(title).title_bottom(Line::from(format!(" {span_text} ")).right_aligned());
        frame.render_widget(Sparkline::default().block(block).data(&data).style(Style::new().fg(color)), *a);
    }
}

fn notice_line(n: &Notice) -> Line<'static> {
    let who = n.viewer.map_or_else(|| "run".to_owned(), |v| format!("v{v}"));
    let style = match n.level {
        Level::Info => Style::new(),
        Level::Warn => Style::new().fg(Color::Yellow),
        Level::Error => Style::new().fg(Color::Red),
    };
    let mut spans = vec![
        Span::raw(format!("{} ", clock(n.at))).dim(),
        Span::raw(format!("{who:<5} ")),
        Span::styled(n.text.clone(), style),
    ];
    if n.repeats > 1 {
        spans.push(Span::raw(format!(" ×{}", n.repeats)).bold());
    }
    Line::from(spans)
}

fn draw_notices(frame: &mut Frame, area: Rect, s: &Snapshot, with_detail: bool) {
    let inner = usize::from(area.height.saturating_sub(2));
    let mut lines = Vec::new();
    for n in s.notices.iter() {
        lines.push(notice_line(n));
        if with_detail {
            lines.extend(n.detail.iter().map(|d| Line::from(format!("        │ {d}")).dim()));
        }
    }
    if lines.is_empty() {
        lines.push(Line::from("no restarts, errors or stalls so far").dim());
    }
    let skip = lines.len().saturating_sub(inner);
    let title = if with_detail { " Events (with FFmpeg's last lines) " } else { " Events " };
    frame.render_widget(Paragraph::new(lines.split_off(skip)).block(Block::bordered().title(title)), area);
}

/// Higher is more worth seeing first.
fn trouble(r: &ViewerRow) -> u8 {
    match (r.state, r.stalled) {
        (ViewerState::Running, true) => 5,
        (ViewerState::Backoff, _) => 4,
        (ViewerState::Waiting, _) => 3,
        (ViewerState::Running, false) => 2,
        (ViewerState::Ended, _) => 1,
        (ViewerState::Stopped, _) => 0,
    }
}

/// The rows in table order.
fn sorted(rows: &[ViewerRow], sort: Sort) -> Vec<&ViewerRow> {
    let mut v: Vec<&ViewerRow> = rows.iter().collect();
    match sort {
        Sort::Viewer => {}
        Sort::State => v.sort_by_key(|r| (Reverse(trouble(r)), r.id)),
        Sort::Errors => v.sort_by_key(|r| (Reverse(r.errors), r.id)),
        Sort::Stall => v.sort_by(|a, b| b.stall_seconds.total_cmp(&a.stall_seconds).then(a.id.cmp(&b.id))),
    }
    v
}

#[allow(clippy::cast_precision_loss)]
fn draw_viewers(frame: &mut Frame, area: Rect, s: &Snapshot, ui: &Ui) {
    let visible = usize::from(area.height.saturating_sub(3));
    let rows = sorted(&s.viewers, ui.sort);
    let first = ui.scroll.min(rows.len().saturating_sub(visible));
    let body = rows.iter().skip(first).take(visible).map(|r| {
        let state = if r.stalled { "stalled" } else { r.state.label() };
        let style = match (r.stalled, r.state) {
            (true, _) | (_, ViewerState::Backoff) => Style::new().fg(Color::Yellow),
            _ if r.errors > 0 => Style::new().fg(Color::Red),
            _ => Style::new(),
        };
        Row::new(vec![
            Cell::from(r.id.to_string()),
            Cell::from(state),
            Cell::from(r.starts.to_string()),
            Cell::from(r.segments.to_string()),
            Cell::from(bytes(r.bytes as f64)),
            Cell::from(r.errors.to_string()),
            Cell::from(format!("{:.1}", r.stall_seconds)),
            Cell::from(r.last_error.clone().unwrap_or_default()),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Min(10),
    ];
    let header =
        Row::new(["viewer", "state", "starts", "segments", "received", "errors", "stall s", "last error"])
            .style(Style::new().bold());
    let title = format!(
        " Viewers {}–{} of {} · sorted by {} ",
        (first + 1).min(rows.len()),
        (first + visible).min(rows.len()),
        rows.len(),
        ui.sort.label()
    );
    frame.render_widget(Table::new(body, widths).header(header).block(Block::bordered().title(title)), area);
}

fn draw_footer(frame: &mut Frame, area: Rect, ui: &Ui) {
    let key = |k: &'static str| Span::styled(k, Style::new().bold().reversed());
    let mut spans = vec![
        key(" q "),
        Span::raw(" quit  "),
        key(" d "),
        Span::raw(if ui.details { " overview  " } else { " viewers  " }),
        key(" p "),
        Span::raw(if ui.paused { " resume  " } else { " pause  " }),
    ];
    if ui.details {
        spans.extend([
            key(" s "),
            Span::raw(format!(" sort: {}  ", ui.sort.label())),
            key("↑↓"),
            Span::raw(" scroll  "),
        ]);
    }
    if ui.paused {
        spans.push(Span::styled(" PAUSED ", Style::new().fg(Color::Black).bg(Color::Yellow)));
    }
    if ui.stopping {
        spans.push(Span::styled(" stopping… ", Style::new().fg(Color::Black).bg(Color::Cyan)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub mod terminal;

#[cfg(test)]
mod tests;
