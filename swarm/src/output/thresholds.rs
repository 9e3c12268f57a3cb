//! `--assert`: pass/fail thresholds over the run's results.
//!
//! An assertion is `FIELD OP VALUE[UNIT]`, e.g. `segment_ttfb_p95<500ms`, `error_rate<0.001`,
//! `stall_ratio==0`, `viewers_reached>=100%`. `OP` is one of `<` `<=` `>` `>=` `==` `!=`.
//! Each field has a dimension, and the value's unit must fit it: durations take `us`, `µs`,
//! `ms`, `s` or `m` (a bare number is seconds); ratios take `%` or a bare fraction; rates take
//! `B/s`, `KiB/s`, `MiB/s`, `kB/s`, `MB/s` (bare: bytes per second); counts are bare numbers.
//! Assertions are parsed with the rest of the command line (a typo is exit 2 before anything
//! starts) and checked against the final snapshot; any failure makes the run exit 5.
//!
//! The value may also be the same field in an earlier run's report (`--baseline FILE.json`):
//! `baseline`, `baseline * K` (K a bare factor), `baseline + VALUE[UNIT]` or
//! `baseline - VALUE[UNIT]`, e.g. `segment_ttfb_p95 <= baseline * 1.2`. Such an assertion is
//! bound to the baseline's figure before the run starts ([`Assertion::against`]); a baseline
//! without that figure, or no `--baseline` at all, is a usage error then.

use std::fmt;

use crate::measure::events::{RequestKind, Violation};
use crate::measure::latency::Latency;
use crate::measure::snapshot::{Measure, Snapshot};
use crate::output::summary;

/// What a field measures, which decides the units it accepts and how values are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// Seconds.
    Duration,
    /// A fraction (0.5 = 50 %).
    Ratio,
    /// Bytes per second.
    Rate,
    /// A plain number.
    Count,
    /// Yes or no: `true` (1) or `false` (0).
    Flag,
}

/// One field an assertion can name.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Its name.
    pub name: &'static str,
    /// Its dimension.
    pub dimension: Dimension,
    /// What it is.
    pub help: &'static str,
    read: fn(&Snapshot) -> Option<f64>,
}

impl Field {
    /// Its value in the final snapshot, in the base unit of its dimension; `None` when it was
    /// not measured (latencies with `--measure log`, or nothing recorded).
    #[must_use]
    pub fn value(&self, s: &Snapshot) -> Option<f64> {
        (self.read)(s).filter(|v| v.is_finite())
    }
}

impl Dimension {
    /// The base unit its values are given in (assertions, reports).
    #[must_use]
    pub fn unit(self) -> &'static str {
        match self {
            Dimension::Duration => "seconds",
            Dimension::Ratio => "a fraction (0.01 = 1 %)",
            Dimension::Rate => "bytes per second",
            Dimension::Count => "a count",
            Dimension::Flag => "1 for true, 0 for false",
        }
    }
}

fn lat(m: &std::collections::BTreeMap<RequestKind, Latency>, k: RequestKind) -> Option<&Latency> {
    m.get(&k).filter(|l| l.count > 0)
}

fn relay(s: &Snapshot) -> Option<&Snapshot> {
    (s.measure == Measure::Relay).then_some(s)
}

macro_rules! quantile_fields {
    ($($name:literal, $map:ident, $kind:ident, $q:ident, $help:literal;)*) => {
        [$(Field {
            name: $name,
            dimension: Dimension::Duration,
            help: $help,
            read: |s| lat(&relay(s)?.$map, RequestKind::$kind).map(|l| l.$q),
        },)*]
    };
}

const QUANTILES: [Field; 16] = quantile_fields![
    "segment_ttfb_p50", ttfb, Segment, p50, "segment time to first byte, median";
    "segment_ttfb_p95", ttfb, Segment, p95, "segment time to first byte, 95th percentile";
    "segment_ttfb_p99", ttfb, Segment, p99, "segment time to first byte, 99th percentile";
    "segment_ttfb_max", ttfb, Segment, max, "segment time to first byte, largest";
    "segment_download_p50", ttlb, Segment, p50, "segment download time, median";
    "segment_download_p95", ttlb, Segment, p95, "segment download time, 95th percentile";
    "segment_download_p99", ttlb, Segment, p99, "segment download time, 99th percentile";
    "segment_download_max", ttlb, Segment, max, "segment download time, largest";
    "playlist_ttfb_p50", ttfb, Playlist, p50, "media playlist time to first byte, median";
    "playlist_ttfb_p95", ttfb, Playlist, p95, "media playlist time to first byte, 95th percentile";
    "playlist_ttfb_p99", ttfb, Playlist, p99, "media playlist time to first byte, 99th percentile";
    "playlist_ttfb_max", ttfb, Playlist, max, "media playlist time to first byte, largest";
    "playlist_download_p50", ttlb, Playlist, p50, "media playlist download time, median";
    "playlist_download_p95", ttlb, Playlist, p95, "media playlist download time, 95th percentile";
    "playlist_download_p99", ttlb, Playlist, p99, "media playlist download time, 99th percentile";
    "playlist_download_max", ttlb, Playlist, max, "media playlist download time, largest";
];

const LL_QUANTILES: [Field; 12] = quantile_fields![
    "part_ttfb_p50", ttfb, Part, p50, "LL-HLS part time to first byte, median";
    "part_ttfb_p95", ttfb, Part, p95, "LL-HLS part time to first byte, 95th percentile";
    "part_ttfb_p99", ttfb, Part, p99, "LL-HLS part time to first byte, 99th percentile";
    "part_ttfb_max", ttfb, Part, max, "LL-HLS part time to first byte, largest";
    "part_download_p50", ttlb, Part, p50, "LL-HLS part download time, median";
    "part_download_p95", ttlb, Part, p95, "LL-HLS part download time, 95th percentile";
    "part_download_p99", ttlb, Part, p99, "LL-HLS part download time, 99th percentile";
    "part_download_max", ttlb, Part, max, "LL-HLS part download time, largest";
    "reload_hold_p50", ttfb, BlockingReload, p50, "LL-HLS blocking reload hold time (its response time), median";
    "reload_hold_p95", ttfb, BlockingReload, p95, "LL-HLS blocking reload hold time (its response time), 95th percentile";
    "reload_hold_p99", ttfb, BlockingReload, p99, "LL-HLS blocking reload hold time (its response time), 99th percentile";
    "reload_hold_max", ttfb, BlockingReload, max, "LL-HLS blocking reload hold time (its response time), largest";
];

/// An LL-HLS conformance count, `None` when no viewer played LL-HLS.
#[allow(clippy::cast_precision_loss)]
fn conformance(s: &Snapshot, rule: Option<Violation>) -> Option<f64> {
    let l = &s.ll_hls;
    (l.sessions > 0).then(|| rule.map_or_else(|| l.conformance.total(), |r| l.conformance.get(r)) as f64)
}

macro_rules! conformance_fields {
    ($($name:literal, $rule:expr, $help:literal;)*) => {
        [$(Field {
            name: $name,
            dimension: Dimension::Count,
            help: $help,
            read: |s| conformance(s, $rule),
        },)*]
    };
}

#[allow(clippy::cast_precision_loss)]
const LL_COUNTS: [Field; 3] = [
    Field {
        name: "ll_hls_sessions",
        dimension: Dimension::Count,
        help: "tracks that played in LL-HLS mode (one per session and media playlist)",
        read: |s| Some(s.ll_hls.sessions as f64),
    },
    Field {
        name: "ll_hls_switches_from_report",
        dimension: Dimension::Count,
        help: "LL-HLS rendition switches (--variant abr) that joined the new rendition from a rendition report",
        read: |s| (s.ll_hls.sessions > 0).then_some(s.ll_hls.switches_from_report as f64),
    },
    Field {
        name: "ll_hls_switches_plain_load",
        dimension: Dimension::Count,
        help: "LL-HLS rendition switches (--variant abr) that loaded the new playlist plainly (no report for it)",
        read: |s| (s.ll_hls.sessions > 0).then_some(s.ll_hls.switches_plain as f64),
    },
];

const CONFORMANCE: [Field; 8] = conformance_fields![
        "conformance_violations", None, "LL-HLS conformance violations, all rules";
        "conformance_advertised_404", Some(Violation::AdvertisedMissing), "LL-HLS parts or segments advertised, then answered 404";
        "conformance_early_reload", Some(Violation::EarlyReload), "LL-HLS blocking reloads answered before the part asked for existed";
        "conformance_reload_held_too_long", Some(Violation::HeldTooLong), "LL-HLS blocking reloads held longer than three target durations";
        "conformance_segment_after_parts", Some(Violation::SegmentAfterParts), "LL-HLS full segments downloaded after their parts";
        "conformance_part_hold_back_short", Some(Violation::HoldBackShort), "LL-HLS playlists whose PART-HOLD-BACK is under three part targets (per track)";
        "conformance_hint_missing", Some(Violation::HintMissing), "LL-HLS preload hints that never appeared in a later playlist";
        "conformance_numbering_backwards", Some(Violation::NumberingBackwards), "LL-HLS media sequence or part numbering going backwards";
];

#[allow(clippy::cast_precision_loss)]
const OTHERS: [Field; 17] = [
    Field {
        name: "startup_p50",
        dimension: Dimension::Duration,
        help: "first request to first segment buffered, median",
        read: |s| (s.startup.count > 0).then_some(s.startup.p50),
    },
    Field {
        name: "startup_p95",
        dimension: Dimension::Duration,
        help: "first request to first segment buffered, 95th percentile",
        read: |s| (s.startup.count > 0).then_some(s.startup.p95),
    },
    Field {
        name: "startup_max",
        dimension: Dimension::Duration,
        help: "first request to first segment buffered, largest",
        read: |s| (s.startup.count > 0).then_some(s.startup.max),
    },
    Field {
        name: "live_latency_p50",
        dimension: Dimension::Duration,
        help: "live-edge latency (wall time minus the program date-time playing), median",
        read: |s| (s.live_latency.count > 0).then_some(s.live_latency.p50),
    },
    Field {
        name: "live_latency_p95",
        dimension: Dimension::Duration,
        help: "live-edge latency (wall time minus the program date-time playing), 95th percentile",
        read: |s| (s.live_latency.count > 0).then_some(s.live_latency.p95),
    },
    Field {
        name: "error_rate",
        dimension: Dimension::Ratio,
        help: "(HTTP errors + network errors) / requests",
        read: |s| Some(s.error_rate()),
    },
    Field {
        name: "stall_ratio",
        dimension: Dimension::Ratio,
        help: "time stalled / time watched (player model)",
        read: |s| Some(s.playback.stall_ratio()),
    },
    Field {
        name: "stalls",
        dimension: Dimension::Count,
        help: "stalls",
        read: |s| Some(s.playback.stalls as f64),
    },
    Field {
        name: "failed_starts",
        dimension: Dimension::Count,
        help: "viewers that had not played --startup-timeout after they started",
        read: |s| Some(f64::from(s.playback.failed_starts)),
    },
    Field {
        name: "generator_bound",
        dimension: Dimension::Flag,
        help: "the swarm's own machine was the bottleneck (see docs/metrics.md)",
        read: |s| Some(if s.generator.bound { 1.0 } else { 0.0 }),
    },
    Field {
        name: "viewers_reached",
        dimension: Dimension::Ratio,
        help: "most viewers streaming at once / --clients",
        read: |s| (s.target > 0).then(|| f64::from(s.streaming_peak) / f64::from(s.target)),
    },
    Field {
        name: "restarts",
        dimension: Dimension::Count,
        help: "sessions started after a viewer's first, except after a --session-length zap",
        read: |s| Some(s.restarts as f64),
    },
    Field {
        name: "zaps",
        dimension: Dimension::Count,
        help: "sessions that ended at their --session-length",
        read: |s| Some(s.playback.zaps as f64),
    },
    Field {
        name: "http_errors",
        dimension: Dimension::Count,
        help: "responses with status >= 400",
        read: |s| Some(s.http_errors.values().sum::<u64>() as f64),
    },
    Field {
        name: "network_errors",
        dimension: Dimension::Count,
        help: "requests without a complete response",
        read: |s| Some(s.network_errors as f64),
    },
    Field {
        name: "late_segments",
        dimension: Dimension::Count,
        help: "segments that took longer to download than to play",
        read: |s| Some(s.playback.late_segments as f64),
    },
    Field {
        name: "segment_throughput",
        dimension: Dimension::Rate,
        help: "segment bytes per second over the whole run",
        read: |s| {
            let secs = s.elapsed.as_secs_f64();
            (relay(s).is_some() && secs > 0.0).then(|| s.bytes_of(RequestKind::Segment) as f64 / secs)
        },
    },
];

/// Every field, in documentation order.
pub fn fields() -> impl Iterator<Item = &'static Field> {
    QUANTILES
        .iter()
        .chain(OTHERS.iter())
        .chain(LL_QUANTILES.iter())
        .chain(LL_COUNTS.iter())
        .chain(CONFORMANCE.iter())
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    /// As written: `<`, `<=`, …
    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    fn holds(self, a: f64, b: f64) -> bool {
        // Values come from measurements: compare equal within a relative 1e-9.
        let eq = (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12);
        match self {
            Op::Lt => a < b && !eq,
            Op::Le => a < b || eq,
            Op::Gt => a > b && !eq,
            Op::Ge => a > b || eq,
            Op::Eq => eq,
            Op::Ne => !eq,
        }
    }
}

/// One parsed `--assert`.
#[derive(Debug, Clone)]
pub struct Assertion {
    /// As written.
    pub text: String,
    field: &'static Field,
    op: Op,
    limit: Limit,
}

/// What an assertion compares the field with.
#[derive(Debug, Clone, PartialEq)]
enum Limit {
    /// A value in the field's base unit (seconds, fraction, bytes/s, count).
    Value(f64),
    /// The same field in the baseline report, scaled or shifted; `reference` once bound.
    Baseline { by: Relative, reference: Option<Reference> },
}

/// How a `baseline` limit is made from the baseline's figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Relative {
    /// `baseline * K` (`baseline` alone is `baseline * 1`).
    Times(f64),
    /// `baseline + X` or `baseline - X` (negative), in the field's base unit.
    Plus(f64),
}

impl Relative {
    /// The limit for a baseline figure `base`.
    #[must_use]
    pub fn apply(self, base: f64) -> f64 {
        match self {
            Relative::Times(k) => base * k,
            Relative::Plus(x) => base + x,
        }
    }
}

/// The baseline figure a bound assertion compares with.
#[derive(Debug, Clone, PartialEq)]
struct Reference {
    /// The baseline report, as given to `--baseline`.
    file: String,
    /// The field's value there, in its base unit.
    value: f64,
}

/// Why an assertion cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--assert '{text}': {reason}")]
pub struct ParseError {
    /// As written.
    pub text: String,
    /// What is wrong, and what is accepted.
    pub reason: String,
}

impl Assertion {
    /// Parses `FIELD OP VALUE[UNIT]`.
    ///
    /// # Errors
    /// Unknown field, missing or unknown operator, unreadable number, or a unit that does not
    /// fit the field; the message lists what is accepted.
    pub fn parse(text: &str) -> Result<Assertion, ParseError> {
        let err = |reason: String| ParseError { text: text.to_owned(), reason };
        let t = text.trim();
        let name_end = t.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(t.len());
        let name = &t[..name_end];
        let Some(field) = fields().find(|f| f.name == name) else {
            let known: Vec<&str> = fields().map(|f| f.name).collect();
            return Err(err(format!("unknown field '{name}'; known fields: {}", known.join(", "))));
        };
        let rest = t[name_end..].trim_start();
        let ops =
            [("<=", Op::Le), (">=", Op::Ge), ("==", Op::Eq), ("!=", Op::Ne), ("<", Op::Lt), (">", Op::Gt)];
        let Some((sym, op)) = ops.iter().find(|(s, _)| rest.starts_with(s)) else {
            return Err(err("expected an operator after the field: one of < <= > >= == !=".into()));
        };
        let rest = rest[sym.len()..].trim();
        let limit = match rest.strip_prefix(BASELINE) {
            Some(after) if !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') => {
                Limit::Baseline { by: relative(field, after.trim()).map_err(err)?, reference: None }
            }
            _ => Limit::Value(quantity(field, rest).map_err(err)?),
        };
        Ok(Assertion { text: t.to_owned(), field, op: *op, limit })
    }

    /// The field it reads.
    #[must_use]
    pub fn field(&self) -> &'static Field {
        self.field
    }

    /// True if it compares with the `--baseline` report (`baseline`, `baseline * K`, …).
    #[must_use]
    pub fn uses_baseline(&self) -> bool {
        matches!(self.limit, Limit::Baseline { .. })
    }

    /// Binds a `baseline` assertion to the baseline report `file`, whose value of the field is
    /// `value`; other assertions are returned as they are.
    ///
    /// # Errors
    /// The baseline has no value for the field (it was not measured in that run): the
    /// threshold could not be evaluated, so it is refused before the run rather than failed or
    /// passed after it.
    pub fn against(mut self, file: &str, value: Option<f64>) -> Result<Assertion, ParseError> {
        if let Limit::Baseline { reference, .. } = &mut self.limit {
            let Some(value) = value.filter(|v| v.is_finite()) else {
                return Err(ParseError {
                    reason: format!(
                        "the baseline {file} has no value for {} (null there: not measured in that run), \
                         so this threshold cannot be evaluated; use a baseline that measured it, or a fixed limit",
                        self.field.name
                    ),
                    text: self.text,
                });
            };
            *reference = Some(Reference { file: file.to_owned(), value });
        }
        Ok(self)
    }

    /// The error of a `baseline` assertion given without `--baseline`.
    #[must_use]
    pub fn no_baseline(&self) -> ParseError {
        ParseError {
            text: self.text.clone(),
            reason: format!(
                "'{BASELINE}' stands for {} in the --baseline report, and no --baseline REPORT.json \
                 (an earlier run's JSON report) was given",
                self.field.name
            ),
        }
    }

    /// Checks the assertion against the final snapshot.
    #[must_use]
    pub fn check(&self, s: &Snapshot) -> Checked {
        let actual = self.field.value(s);
        let (limit, reference) = match &self.limit {
            Limit::Value(v) => (*v, None),
            Limit::Baseline { by, reference: Some(r) } => (by.apply(r.value), Some(r)),
            Limit::Baseline { reference: None, .. } => (f64::NAN, None),
        };
        let d = self.field.dimension;
        let against = reference.map_or_else(String::new, |r| {
            format!("; baseline {} in {}, limit {}", show(d, r.value), r.file, show(d, limit))
        });
        let checked = |passed, detail| Checked {
            text: self.text.clone(),
            field: self.field.name,
            op: self.op.symbol(),
            limit,
            actual,
            baseline: reference.map(|r| r.value),
            passed,
            detail,
        };
        if self.uses_baseline() && reference.is_none() {
            // Bound before every run (the configuration refuses it otherwise): never passes.
            return checked(false, format!("{} cannot be evaluated: no --baseline report", self.field.name));
        }
        match actual {
            None => checked(
                false,
                if s.measure == Measure::Log {
                    format!("{} is not measured with --measure log{against}", self.field.name)
                } else {
                    format!("{} has no value: nothing was measured{against}", self.field.name)
                },
            ),
            Some(v) => checked(self.op.holds(v, limit), format!("measured {}{against}", show(d, v))),
        }
    }
}

/// The word that stands for the baseline's figure.
const BASELINE: &str = "baseline";

/// A value with its unit, `500ms`, `0.1%`, `true`, in the field's base unit.
fn quantity(field: &Field, rest: &str) -> Result<f64, String> {
    if field.dimension == Dimension::Flag {
        return match rest {
            "true" => Ok(1.0),
            "false" => Ok(0.0),
            _ => Err(format!("the limit '{rest}' is not true or false; {}", accepted(field.dimension))),
        };
    }
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-' || c == '+'))
        .unwrap_or(rest.len());
    let number: f64 = rest[..num_end]
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("the limit '{rest}' is not a number; {}", accepted(field.dimension)))?;
    let unit = rest[num_end..].trim();
    let scale = scale(field.dimension, unit).ok_or_else(|| {
        format!("unit '{unit}' does not fit {} ({}); {}", field.name, field.help, accepted(field.dimension))
    })?;
    Ok(number * scale)
}

/// What follows `baseline`: nothing, `* K`, `+ VALUE[UNIT]` or `- VALUE[UNIT]`.
fn relative(field: &Field, after: &str) -> Result<Relative, String> {
    let forms = "after 'baseline' comes nothing, '* FACTOR' (a bare number, e.g. 1.2), \
                 '+ VALUE' or '- VALUE' (in the field's units, e.g. + 50ms)";
    if after.is_empty() {
        return Ok(Relative::Times(1.0));
    }
    if field.dimension == Dimension::Flag {
        return Err(format!("{} is a flag: compare it with 'baseline' alone", field.name));
    }
    let (sign, operand) = after.split_at(after.chars().next().map_or(0, char::len_utf8));
    let operand = operand.trim();
    match sign {
        "*" => operand
            .parse::<f64>()
            .ok()
            .filter(|k| k.is_finite() && *k >= 0.0)
            .map(Relative::Times)
            .ok_or_else(|| format!("the factor '{operand}' is not a number of 0 or more; {forms}")),
        "+" => quantity(field, operand).map(Relative::Plus),
        "-" => quantity(field, operand).map(|x| Relative::Plus(-x)),
        _ => Err(format!("'{after}' cannot follow 'baseline'; {forms}")),
    }
}

/// The result of one assertion.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Checked {
    /// As written.
    pub text: String,
    /// The field it names.
    pub field: &'static str,
    /// Its comparison, as written (`<`, `<=`, …).
    pub op: &'static str,
    /// The value compared against, in the field's base unit.
    pub limit: f64,
    /// The measured value in the field's base unit (`None` when not measured).
    pub actual: Option<f64>,
    /// With a `baseline` limit, the baseline report's value of the field, from which `limit`
    /// was made.
    pub baseline: Option<f64>,
    /// True if it held.
    pub passed: bool,
    /// The measured value, or why there is none.
    pub detail: String,
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed { "PASS" } else { "FAIL" };
        write!(f, "{mark}  {}  ({})", self.text, self.detail)
    }
}

fn scale(d: Dimension, unit: &str) -> Option<f64> {
    Some(match (d, unit) {
        (Dimension::Duration, "" | "s") => 1.0,
        (Dimension::Duration, "ms") => 1e-3,
        (Dimension::Duration, "us" | "µs") => 1e-6,
        (Dimension::Duration, "m" | "min") => 60.0,
        (Dimension::Ratio, "") => 1.0,
        (Dimension::Ratio, "%") => 0.01,
        (Dimension::Rate, "" | "B/s") => 1.0,
        (Dimension::Rate, "kB/s") => 1e3,
        (Dimension::Rate, "MB/s") => 1e6,
        (Dimension::Rate, "KiB/s") => 1024.0,
        (Dimension::Rate, "MiB/s") => 1024.0 * 1024.0,
        (Dimension::Count, "") => 1.0,
        _ => return None,
    })
}

fn accepted(d: Dimension) -> &'static str {
    match d {
        Dimension::Duration => "durations take us, ms, s or m (a bare number is seconds)",
        Dimension::Ratio => "ratios take % or a bare fraction (0.01 = 1 %)",
        Dimension::Rate => "rates take B/s, kB/s, MB/s, KiB/s or MiB/s",
        Dimension::Count => "counts are bare numbers",
        Dimension::Flag => "flags take true or false",
    }
}

fn show(d: Dimension, v: f64) -> String {
    match d {
        Dimension::Duration => summary::seconds(v),
        Dimension::Ratio => format!("{:.4} %", v * 100.0),
        Dimension::Rate => format!("{}/s", summary::bytes(v)),
        Dimension::Count => format!("{v}"),
        Dimension::Flag => (v != 0.0).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        let mut s = Snapshot { target: 20, streaming_peak: 20, ..Snapshot::default() };
        s.ttfb.insert(RequestKind::Segment, Latency { count: 100, p95: 0.012, ..Latency::default() });
        s.requests.insert(RequestKind::Segment, 1000);
        s.http_errors.insert(404, 2);
        s
    }

    #[test]
    fn parses_units_and_checks() {
        let s = snap();
        let ok = |t: &str| Assertion::parse(t).unwrap().check(&s).passed;
        assert!(ok("segment_ttfb_p95<500ms"));
        assert!(ok("segment_ttfb_p95 < 0.5"));
        assert!(!ok("segment_ttfb_p95<10ms"));
        assert!(ok("segment_ttfb_p95>=12ms"), "equal within rounding");
        assert!(ok("viewers_reached>=100%"));
        assert!(ok("error_rate<0.01"));
        assert!(!ok("error_rate<0.001"));
        assert!(ok("error_rate==0.2%"));
        assert!(ok("stall_ratio==0"));
        assert!(ok("http_errors<=2"));
        let failed = Assertion::parse("error_rate<0.1%").unwrap().check(&s);
        assert_eq!(failed.to_string(), "FAIL  error_rate<0.1%  (measured 0.2000 %)");
    }

    #[test]
    fn checked_carries_the_value_it_compared() {
        let s = snap();
        let c = Assertion::parse("segment_ttfb_p95 < 500ms").unwrap().check(&s);
        assert_eq!((c.field, c.op, c.limit, c.actual), ("segment_ttfb_p95", "<", 0.5, Some(0.012)));
        // Another field carries its own value: 2 errors in 1000 requests.
        let rate = Assertion::parse("error_rate<1%").unwrap().check(&s);
        assert_eq!(
            (rate.field, rate.limit, rate.actual, rate.passed),
            ("error_rate", 0.01, Some(0.002), true)
        );
        let none = Assertion::parse("startup_p95<1s").unwrap().check(&s);
        assert_eq!((none.actual, none.passed), (None, false));
    }

    #[test]
    fn flags_take_true_or_false() {
        let mut s = Snapshot::default();
        let a = Assertion::parse("generator_bound==false").unwrap();
        assert!(a.check(&s).passed);
        s.generator.bound = true;
        let c = a.check(&s);
        assert!(!c.passed && c.to_string().contains("true"), "{c}");
        let e = Assertion::parse("generator_bound==maybe").unwrap_err();
        assert!(e.to_string().contains("'maybe' is not true or false"), "{e}");
    }

    #[test]
    fn baseline_limits_scale_or_shift_the_baselines_figure() {
        let s = snap(); // segment_ttfb_p95 = 12 ms
        let bound =
            |t: &str, base: f64| Assertion::parse(t).unwrap().against("base.json", Some(base)).unwrap();
        let c = bound("segment_ttfb_p95 <= baseline * 1.2", 0.010).check(&s);
        assert_eq!((c.passed, c.baseline, c.actual), (true, Some(0.010), Some(0.012)));
        assert!((c.limit - 0.012).abs() < 1e-12, "1.2 × 10 ms: {}", c.limit);
        let c = bound("segment_ttfb_p95<=baseline*1.1", 0.010).check(&s);
        assert!(!c.passed);
        assert_eq!(
            c.to_string(),
            "FAIL  segment_ttfb_p95<=baseline*1.1  (measured 12.0ms; baseline 10.0ms in base.json, limit 11.0ms)"
        );
        assert!(bound("segment_ttfb_p95 < baseline + 5ms", 0.010).check(&s).passed);
        assert!(!bound("segment_ttfb_p95 < baseline - 1ms", 0.012).check(&s).passed);
        assert!(bound("http_errors == baseline", 2.0).check(&s).passed);
        assert!(bound("error_rate <= baseline + 0.1%", 0.0015).check(&s).passed);
        assert!(bound("generator_bound == baseline", 0.0).check(&s).passed);
        // Fixed limits are untouched by a baseline, and carry none.
        let fixed = bound("segment_ttfb_p95 < 1s", 9.0).check(&s);
        assert_eq!((fixed.passed, fixed.baseline, fixed.limit), (true, None, 1.0));
        // Never bound (the configuration refuses that): it cannot pass.
        let unbound = Assertion::parse("segment_ttfb_p95 <= baseline").unwrap();
        assert!(unbound.uses_baseline() && !unbound.check(&s).passed);
    }

    #[test]
    fn baseline_expressions_that_cannot_be_read_say_what_is_accepted() {
        let e = |t: &str| Assertion::parse(t).unwrap_err().reason;
        assert!(e("segment_ttfb_p95 < baseline / 2").starts_with("'/ 2' cannot follow 'baseline'; after"));
        assert!(e("segment_ttfb_p95 < baseline * 2ms").starts_with("the factor '2ms' is not a number"));
        assert!(
            e("segment_ttfb_p95 < baseline * -1").starts_with("the factor '-1' is not a number of 0 or more")
        );
        assert!(e("segment_ttfb_p95 < baseline + 5%").starts_with("unit '%' does not fit segment_ttfb_p95"));
        assert_eq!(
            e("generator_bound == baseline * 2"),
            "generator_bound is a flag: compare it with 'baseline' alone"
        );
        assert!(e("segment_ttfb_p95 < baselines").starts_with("the limit 'baselines' is not a number"));
        let e = Assertion::parse("startup_p95 <= baseline").unwrap().against("b.json", None).unwrap_err();
        assert!(e.to_string().contains("the baseline b.json has no value for startup_p95"), "{e}");
    }

    #[test]
    fn every_field_is_documented() {
        let doc = include_str!("../../../docs/metrics.md");
        for f in fields() {
            assert!(doc.contains(&format!("`{}`", f.name)), "{} is missing from docs/metrics.md", f.name);
        }
    }

    #[test]
    fn unmeasured_fields_fail_with_a_reason() {
        let s = Snapshot { measure: Measure::Log, ..snap() };
        let c = Assertion::parse("segment_ttfb_p95<1s").unwrap().check(&s);
        assert!(!c.passed);
        assert!(c.detail.contains("--measure log"), "{}", c.detail);
    }

    #[test]
    fn errors_name_the_value_and_what_is_accepted() {
        let e = |t: &str| Assertion::parse(t).unwrap_err().to_string();
        let unknown = e("ttfb<1s");
        assert!(
            unknown.starts_with("--assert 'ttfb<1s': unknown field 'ttfb'; known fields: segment_ttfb_p50")
        );
        for f in fields() {
            assert!(unknown.contains(f.name), "{} is not listed: {unknown}", f.name);
        }
        assert_eq!(
            e("error_rate 1"),
            "--assert 'error_rate 1': expected an operator after the field: one of < <= > >= == !="
        );
        assert_eq!(
            e("error_rate<abc"),
            "--assert 'error_rate<abc': the limit 'abc' is not a number; \
             ratios take % or a bare fraction (0.01 = 1 %)"
        );
        let unit = e("error_rate<5ms");
        assert!(unit.starts_with("--assert 'error_rate<5ms': unit 'ms' does not fit error_rate"), "{unit}");
        assert!(unit.ends_with("; ratios take % or a bare fraction (0.01 = 1 %)"), "{unit}");
        let unit = e("segment_ttfb_p95<5%");
        assert!(unit.starts_with("--assert 'segment_ttfb_p95<5%': unit '%' does not fit"), "{unit}");
        assert!(unit.ends_with("; durations take us, ms, s or m (a bare number is seconds)"), "{unit}");
    }
}
