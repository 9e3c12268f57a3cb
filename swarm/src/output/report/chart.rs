//! Line charts as inline SVG, for the HTML report: no script, no external resource.
//!
//! A [`Chart`] has a title, a y unit and one or more [`Line`]s of `(x, y)` points (`x` in
//! seconds since the start, `y` in the base unit, `None` for a gap). [`Chart::svg`] scales the
//! y values into a readable unit (`MiB/s`, `ms`), puts "nice" ticks (1, 2, 5 × 10ⁿ) on both
//! axes and draws each line as polylines broken at the gaps, a lone point as a dot.
//! [`downsample`] keeps long runs to about a thousand points per line.

use std::fmt::Write as _;

use super::markup::escape;

/// A point: seconds since the start, and a value (`None`: nothing measured then).
pub type Point = (f64, Option<f64>);

/// What a chart's y values are, which decides the unit the axis is labelled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes per second, shown in B/s, KiB/s, MiB/s or GiB/s.
    BytesPerSecond,
    /// Seconds, shown in µs, ms or s.
    Seconds,
    /// A plain number.
    Count,
}

impl Unit {
    /// The divisor and the label for values up to `max`.
    fn scale(self, max: f64) -> (f64, &'static str) {
        match self {
            Unit::BytesPerSecond => {
                let units =
                    [(1.0, "B/s"), (1024.0, "KiB/s"), (1_048_576.0, "MiB/s"), (1_073_741_824.0, "GiB/s")];
                units.iter().rev().find(|(d, _)| max >= *d).copied().unwrap_or(units[0])
            }
            Unit::Seconds if max < 1e-3 => (1e-6, "µs"),
            Unit::Seconds if max < 1.0 => (1e-3, "ms"),
            Unit::Seconds => (1.0, "s"),
            Unit::Count => (1.0, ""),
        }
    }
}

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A stroke.
    Line,
    /// A stroke over a lighter filled area down to zero.
    Area,
}

/// One series of a chart.
#[derive(Debug, Clone)]
pub struct Line {
    /// Its legend text.
    pub name: String,
    /// Its colour, `#rrggbb`.
    pub colour: &'static str,
    /// How it is drawn.
    pub style: Style,
    /// Its points, in order of `x`.
    pub points: Vec<Point>,
}

/// A chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Shown above the plot (and as the SVG's accessible title).
    pub title: String,
    /// What the y values are.
    pub unit: Unit,
    /// The x axis reaches at least this far (so charts of one run share their time axis).
    pub x_span: f64,
    /// Shown across the plot when no line has a value, e.g. `no data`.
    pub empty: String,
    /// Its series, drawn in order (later ones on top).
    pub lines: Vec<Line>,
}

/// How points of one bucket are combined by [`downsample`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// Their mean (for rates and levels).
    Mean,
    /// Their largest value (for peaks: a spike stays visible).
    Max,
}

/// At most about `max_points` points: consecutive points are combined in equal buckets, each at
/// the `x` of its first point; `None`s are skipped, a bucket of only `None`s stays `None`.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn downsample(points: &[Point], max_points: usize, how: Reduce) -> Vec<Point> {
    if points.len() <= max_points || max_points == 0 {
        return points.to_vec();
    }
    let size = points.len().div_ceil(max_points);
    points
        .chunks(size)
        .map(|bucket| {
            let values: Vec<f64> = bucket.iter().filter_map(|p| p.1).collect();
            let y = match (how, values.is_empty()) {
                (_, true) => None,
                (Reduce::Mean, false) => Some(values.iter().sum::<f64>() / values.len() as f64),
                (Reduce::Max, false) => values.iter().copied().reduce(f64::max),
            };
            (bucket[0].0, y)
        })
        .collect()
}

/// Joins the points either side of a gap shorter than `max_gap` (in x): the `None`s between
/// them are dropped, so a value measured only every few seconds draws a line; a longer gap
/// stays a break in the line.
#[must_use]
pub fn bridge(points: &[Point], max_gap: f64) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::with_capacity(points.len());
    let mut last_x: Option<f64> = None;
    for &(x, y) in points {
        let Some(y) = y else { continue };
        if last_x.is_some_and(|l| x - l > max_gap) {
            out.push((x, None));
        }
        out.push((x, Some(y)));
        last_x = Some(x);
    }
    out
}

/// Round tick steps: the largest of 1, 2, 5 × 10ⁿ that gives at most `most` steps up to `max`.
/// Returns (step, top), where `top` ≥ `max` is a whole number of steps.
fn ticks(max: f64, most: u32) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
    let rough = max / f64::from(most);
    let magnitude = 10f64.powf(rough.log10().floor());
    let step =
        [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= rough).unwrap_or(magnitude * 10.0);
    (step, (max / step - 1e-9).ceil().max(1.0) * step)
}

/// Time ticks: whole seconds, minutes or hours.
fn time_ticks(end: f64) -> (f64, f64) {
    const STEPS: [f64; 16] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0,
        43200.0,
    ];
    let end = if end.is_finite() && end > 0.0 { end } else { 1.0 };
    let step = STEPS.iter().copied().find(|s| end / s <= 8.0).unwrap_or(86_400.0);
    (step, (end / step - 1e-9).ceil().max(1.0) * step)
}

/// `45s`, `2:30`, `1:02:03`.
#[must_use]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=119 => format!("{s}s"),
        120..=3599 => format!("{}:{:02}", s / 60, s % 60),
        _ => format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
    }
}

/// A tick value without needless decimals.
fn number(v: f64) -> String {
    let v = if v.abs() < 1e-9 { 0.0 } else { v };
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 44.0;

impl Chart {
    /// The largest x and y over every line.
    fn extent(&self) -> (f64, f64) {
        let all = self.lines.iter().flat_map(|l| l.points.iter());
        all.fold((self.x_span, 0.0f64), |(x, y), p| (x.max(p.0), p.1.map_or(y, |v| y.max(v))))
    }

    /// True if no line has a value.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lines.iter().all(|l| l.points.iter().all(|p| p.1.is_none()))
    }

    /// The chart as an `<svg>` element `width` × `height` pixels.
    #[must_use]
    #[allow(clippy::too_many_lines)]
    pub fn svg(&self, width: u32, height: u32) -> String {
        let (w, h) = (f64::from(width), f64::from(height));
        let (plot_w, plot_h) = (w - LEFT - RIGHT, h - TOP - BOTTOM);
        let (x_max, y_max) = self.extent();
        let (divisor, unit) = self.unit.scale(y_max);
        let (y_step, y_top) = ticks(y_max / divisor, 5);
        let (x_step, x_end) = time_ticks(x_max);
        let px = |x: f64| LEFT + x / x_end * plot_w;
        let py = |y: f64| TOP + plot_h - (y / divisor / y_top).clamp(0.0, 1.0) * plot_h;
        let title = if unit.is_empty() { self.title.clone() } else { format!("{} ({unit})", self.title) };
        let mut o = String::new();
        let _ = write!(
            o,
            r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img"><title>{t}</title>"#,
            t = escape(&title)
        );
        let _ = write!(o, r#"<text class="chart-title" x="{LEFT}" y="18">{}</text>"#, escape(&title));
        // Grid and y ticks.
        let mut y = 0.0;
        while y <= y_top + y_step * 1e-6 {
            let yy = TOP + plot_h - y / y_top * plot_h;
            let _ = write!(
                o,
                r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e4e6eb" stroke-width="1"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + plot_w,
                LEFT - 6.0,
                yy + 4.0,
                number(y)
            );
            y += y_step;
        }
        // X ticks.
        let mut x = 0.0;
        while x <= x_end + 1e-6 {
            let xx = px(x);
            let _ = write!(
                o,
                r##"<line x1="{xx:.1}" y1="{b:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#8a8f98" stroke-width="1"/><text class="tick" x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                TOP + plot_h + 5.0,
                TOP + plot_h + 18.0,
                clock(x),
                b = TOP + plot_h
            );
            x += x_step;
        }
        let _ = write!(
            o,
            r#"<text class="axis-label" x="{:.1}" y="{:.1}" text-anchor="middle">time since start</text>"#,
            LEFT + plot_w / 2.0,
            h - 6.0
        );
        if self.is_empty() {
            let _ = write!(
                o,
                r#"<text class="no-data" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                LEFT + plot_w / 2.0,
                TOP + plot_h / 2.0,
                escape(&self.empty)
            );
        }
        // Axes, under the series (a line at zero stays visible).
        let _ = write!(
            o,
            r##"<path d="M{LEFT},{TOP} V{b:.1} H{r:.1}" fill="none" stroke="#8a8f98" stroke-width="1"/>"##,
            b = TOP + plot_h,
            r = LEFT + plot_w
        );
        // Series, over the grid and the axes.
        for line in &self.lines {
            for run in line.points.split(|p| p.1.is_none()).filter(|r| !r.is_empty()) {
                let coords: Vec<String> =
                    run.iter().map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1.unwrap_or(0.0)))).collect();
                if run.len() == 1 {
                    let (cx, cy) = (px(run[0].0), py(run[0].1.unwrap_or(0.0)));
                    let _ = write!(o, r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="3" fill="{}"/>"#, line.colour);
                    continue;
                }
                if line.style == Style::Area {
                    let (first, last) = (px(run[0].0), px(run[run.len() - 1].0));
                    let base = TOP + plot_h;
                    let _ = write!(
                        o,
                        r#"<polygon points="{first:.1},{base:.1} {} {last:.1},{base:.1}" fill="{}" fill-opacity="0.18" stroke="none"/>"#,
                        coords.join(" "),
                        line.colour
                    );
                }
                let _ = write!(
                    o,
                    r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round"/>"#,
                    coords.join(" "),
                    line.colour
                );
            }
        }
        // Legend, right-aligned above the plot.
        let mut lx = w - RIGHT;
        for line in self.lines.iter().rev() {
            #[allow(clippy::cast_precision_loss)]
            let text_w = line.name.chars().count() as f64 * 6.5;
            lx -= text_w;
            let _ = write!(o, r#"<text class="legend" x="{lx:.1}" y="18">{}</text>"#, escape(&line.name));
            lx -= 16.0;
            let _ = write!(
                o,
                r#"<line x1="{lx:.1}" y1="14" x2="{:.1}" y2="14" stroke="{}" stroke-width="2"/>"#,
                lx + 12.0,
                line.colour
            );
            lx -= 14.0;
        }
        o.push_str("</svg>");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(points: Vec<Point>) -> Chart {
        Chart {
            title: "Errors <per> second".into(),
            unit: Unit::Count,
            x_span: 0.0,
            empty: "no data".into(),
            lines: vec![Line { name: "errors".into(), colour: "#c2255c", style: Style::Line, points }],
        }
    }

    #[test]
    fn nice_ticks() {
        assert_eq!(ticks(0.0, 5), (0.2, 1.0));
        assert_eq!(ticks(7.3, 5), (2.0, 8.0));
        assert_eq!(ticks(10.0, 5), (2.0, 10.0));
        assert_eq!(ticks(1234.0, 5), (500.0, 1500.0));
        assert_eq!(ticks(f64::NAN, 5), (0.2, 1.0));
        assert_eq!(time_ticks(9.0), (2.0, 10.0));
        assert_eq!(time_ticks(600.0), (120.0, 600.0));
        assert_eq!(clock(45.0), "45s");
        assert_eq!(clock(150.0), "2:30");
        assert_eq!(clock(3723.0), "1:02:03");
        assert_eq!(number(0.30000000000000004), "0.3");
        assert_eq!(number(1500.0), "1500");
    }

    #[test]
    fn units_are_scaled_to_the_largest_value() {
        assert_eq!(Unit::BytesPerSecond.scale(3.0 * 1_048_576.0), (1_048_576.0, "MiB/s"));
        assert_eq!(Unit::BytesPerSecond.scale(10.0), (1.0, "B/s"));
        assert_eq!(Unit::Seconds.scale(0.004), (1e-3, "ms"));
        assert_eq!(Unit::Seconds.scale(2.0), (1.0, "s"));
    }

    #[test]
    fn empty_chart_has_axes_and_says_no_data() {
        let svg = chart(vec![]).svg(600, 240);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("no data") && svg.contains("time since start"));
        assert!(svg.contains(r#"<path d="M64,40 V196.0 H584.0""#), "both axes: {svg}");
        assert!(
            svg.contains(r#"text-anchor="end">1</text>"#)
                && svg.contains(r#"text-anchor="middle">1s</text>"#)
        );
        assert!(!svg.contains("<polyline") && !svg.contains("<circle"));
        assert!(svg.contains("<title>Errors &lt;per&gt; second</title>"), "{svg}");
        let gaps = chart(vec![(0.0, None), (1.0, None)]).svg(600, 240);
        assert!(gaps.contains("no data"));
    }

    #[test]
    fn one_point_is_a_dot() {
        let svg = chart(vec![(0.0, Some(3.0))]).svg(600, 240);
        assert!(svg.contains(r##"<circle cx="64.0""##) && svg.contains(r##"fill="#c2255c""##), "{svg}");
        assert!(!svg.contains("<polyline") && !svg.contains("no data"));
    }

    #[test]
    fn lines_break_at_gaps_and_stay_inside_the_plot() {
        let points =
            vec![(0.0, Some(1.0)), (1.0, Some(4.0)), (2.0, None), (3.0, Some(2.0)), (4.0, Some(0.0))];
        let svg = chart(points).svg(600, 240);
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        // y 4 is the top tick: the top of the plot (y 40); y 0 the bottom (y 196).
        assert!(svg.contains(r#"points="64.0,157.0 194.0,40.0""#), "{svg}");
        assert!(svg.contains(r#"points="454.0,118.0 584.0,196.0""#), "{svg}");
        for coord in svg.split("points=\"").skip(1).map(|p| p.split('"').next().unwrap_or_default()) {
            for xy in coord.split_whitespace() {
                let (x, y) = xy.split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!((LEFT..=600.0 - RIGHT).contains(&x) && (TOP..=240.0 - BOTTOM).contains(&y), "{xy}");
            }
        }
    }

    #[test]
    fn the_time_axis_spans_at_least_x_span() {
        let mut c = chart(vec![(0.0, Some(1.0)), (4.0, Some(1.0))]);
        c.x_span = 12.0;
        let svg = c.svg(600, 240);
        assert!(svg.contains(">12s</text>") && svg.contains(r#"points="64.0,40.0 237.3,40.0""#), "{svg}");
    }

    #[test]
    fn area_lines_are_filled_to_zero() {
        let mut c = chart(vec![(0.0, Some(1.0)), (9.0, Some(2.0))]);
        c.lines[0].style = Style::Area;
        let svg = c.svg(600, 240);
        // The area closes along the x axis (y 196) under the line's first and last points.
        let area = r#"<polygon points="64.0,196.0 64.0,118.0 532.0,40.0 532.0,196.0""#;
        let line = r#"<polyline points="64.0,118.0 532.0,40.0""#;
        let (a, l) = (svg.find(area), svg.find(line));
        assert!(a.is_some() && l.is_some(), "{svg}");
        assert!(a < l, "the area is drawn under the line");
    }

    #[test]
    fn short_gaps_are_bridged_long_ones_break_the_line() {
        let p = |x: f64, y: Option<f64>| (x, y);
        let points = [p(0.0, Some(1.0)), p(1.0, None), p(2.0, Some(2.0)), p(3.0, None), p(20.0, Some(3.0))];
        let b = bridge(&points, 10.0);
        assert_eq!(b, [p(0.0, Some(1.0)), p(2.0, Some(2.0)), p(20.0, None), p(20.0, Some(3.0))]);
        let svg = chart(b).svg(600, 240);
        assert_eq!((svg.matches("<polyline").count(), svg.matches("<circle").count()), (1, 1), "{svg}");
        assert!(bridge(&[p(0.0, None)], 10.0).is_empty());
    }

    #[test]
    fn downsampling_keeps_peaks_and_means() {
        let points: Vec<Point> = (0..3000).map(|i| (f64::from(i), Some(f64::from(i % 3)))).collect();
        let max = downsample(&points, 1000, Reduce::Max);
        assert_eq!(max.len(), 1000);
        assert!(max.iter().all(|p| p.1 == Some(2.0)));
        let mean = downsample(&points, 1000, Reduce::Mean);
        assert!(mean.iter().all(|p| p.1 == Some(1.0)));
        assert_eq!(mean[1].0, 3.0, "a bucket sits at its first point");
        let short = &points[..10];
        assert_eq!(downsample(short, 1000, Reduce::Mean), short.to_vec());
        let gaps: Vec<Point> = (0..2001).map(|i| (f64::from(i), (i >= 1000).then_some(1.0))).collect();
        let d = downsample(&gaps, 1000, Reduce::Max);
        assert!(d.len() <= 1000 && d[0].1.is_none() && d[d.len() - 1].1 == Some(1.0));
    }
}
