//! Test-only: the inputs the parsers' property tests are fed (arbitrary text, and real input
//! mutated byte by byte and line by line) and the budget they run with.
//!
//! Each property runs `cases` cases by default, short enough for `make test`, from a fixed
//! seed so that a run without a code change passes as the last one did. `PROPTEST_CASES`
//! overrides the count and draws a new seed each run (`make fuzz` runs them long;
//! `PROPTEST_RNG_SEED` replays one). Failures are not persisted to regression files: a case
//! a property finds is kept as a plain unit test beside the parser.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, RngSeed};

/// The configuration of a property: `cases` from a fixed seed unless `PROPTEST_CASES` says
/// otherwise, no regression files.
pub(crate) fn config(cases: u32) -> Config {
    let rng_seed =
        if std::env::var_os("PROPTEST_CASES").is_some() { RngSeed::Random } else { RngSeed::Fixed(18) };
    Config { cases, failure_persistence: None, rng_seed, ..Config::default() }
}

/// Any text: strings of any characters (control characters and line breaks included), and
/// arbitrary bytes decoded lossily.
pub(crate) fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any_chars(512),
        vec(any::<u8>(), 0..512).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

/// Up to `n` characters of any kind (`any::<String>()` leaves control characters out).
pub(crate) fn any_chars(n: usize) -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..n).prop_map(String::from_iter)
}

/// Numbers no parser should trust: signs, overflow of every integer width, floats past their
/// range, spellings of infinity and NaN, hex, and runs of hundreds of digits.
pub(crate) fn number() -> impl Strategy<Value = String> {
    const ODD: &[&str] = &[
        "0",
        "-0",
        "-1",
        "+5",
        "4294967295",
        "4294967296",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "18446744073709551616",
        "340282366920938463463374607431768211456",
        "1e308",
        "1e309",
        "-1e309",
        "1e-400",
        "NaN",
        "nan",
        "inf",
        "-inf",
        "+Inf",
        "infinity",
        "0x10",
        "1.5.6",
        "1e",
        ".",
        "-",
        "",
        " ",
    ];
    prop_oneof![
        select(ODD).prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        "-?[0-9]{100,400}(\\.[0-9]{0,50})?",
    ]
}

/// A fragment that means something to one of the parsers, or any short string.
fn fragment() -> impl Strategy<Value = String> {
    const TOKENS: &[&str] = &[
        "\n",
        "\r",
        "\r\n",
        "#",
        ":",
        ",",
        "=",
        "\"",
        "\"\"",
        "@",
        "x",
        "-",
        ".",
        " ",
        "\t",
        "\u{feff}",
        "é",
        "\u{10ffff}",
        "\0",
        "{",
        "}",
        "\\",
        "\\\"",
        "\\n",
        "#EXTM3U",
        "#EXTINF:",
        "# HELP",
        "# TYPE",
    ];
    prop_oneof![select(TOKENS).prop_map(str::to_owned), number(), ".{0,8}"]
}

/// An attribute list built from `names` with values that do not read: unterminated quotes,
/// odd numbers, ranges and resolutions gone wrong, separators doubled or missing.
pub(crate) fn attributes(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    let name = prop_oneof![4 => select(names).prop_map(str::to_owned), 1 => "[A-Z-]{0,8}"];
    let value = prop_oneof![
        number(),
        number().prop_map(|n| format!("\"{n}\"")),
        (number(), number()).prop_map(|(a, b)| format!("{a}@{b}")),
        (number(), number()).prop_map(|(a, b)| format!("\"{a}@{b}\"")),
        (number(), number()).prop_map(|(a, b)| format!("{a}x{b}")),
        "\"[^\"\r\n]{0,12}\"?",
        "[^,\r\n]{0,12}",
        Just("YES".to_owned()),
        Just("NONE".to_owned()),
    ];
    let sep = select(&[",", ", ", ",,", "", " ,"][..]);
    vec((name, value, sep), 0..6)
        .prop_map(|a| a.into_iter().map(|(n, v, s)| format!("{n}={v}{s}")).collect::<String>())
}

/// One change to a text.
#[derive(Debug, Clone)]
enum Edit {
    /// Bytes inserted at a position.
    Insert(Index, String),
    /// Up to `n` bytes deleted from a position.
    Delete(Index, usize),
    /// One byte replaced.
    Replace(Index, u8),
    /// A run of up to 4 lines repeated `n` times where it stands.
    Repeat(Index, usize, usize),
    /// A line removed.
    DeleteLine(Index),
    /// Two lines swapped.
    SwapLines(Index, Index),
    /// A line inserted.
    InsertLine(Index, String),
    /// A run of digits (with its sign and fraction) replaced by another number.
    Number(Index, String),
}

fn edit(line: BoxedStrategy<String>) -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => (any::<Index>(), fragment()).prop_map(|(i, s)| Edit::Insert(i, s)),
        1 => (any::<Index>(), 1..16usize).prop_map(|(i, n)| Edit::Delete(i, n)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Replace(i, b)),
        1 => (any::<Index>(), 1..=4usize, 1..200usize).prop_map(|(i, run, n)| Edit::Repeat(i, run, n)),
        1 => any::<Index>().prop_map(Edit::DeleteLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        2 => (any::<Index>(), line).prop_map(|(i, l)| Edit::InsertLine(i, l)),
        2 => (any::<Index>(), number()).prop_map(|(i, n)| Edit::Number(i, n)),
    ]
}

impl Edit {
    fn apply(&self, text: &mut Vec<u8>) {
        match self {
            Edit::Insert(i, s) => {
                let at = i.index(text.len() + 1);
                text.splice(at..at, s.bytes());
            }
            Edit::Delete(i, n) if !text.is_empty() => {
                let at = i.index(text.len());
                text.drain(at..(at + n).min(text.len()));
            }
            Edit::Replace(i, b) if !text.is_empty() => {
                let at = i.index(text.len());
                text[at] = *b;
            }
            Edit::Repeat(i, run, n) => on_lines(text, |lines| {
                let at = i.index(lines.len());
                let run = lines[at..(at + run).min(lines.len())].to_vec();
                lines.splice(at..at, std::iter::repeat_n(run, *n).flatten());
            }),
            Edit::DeleteLine(i) => on_lines(text, |lines| {
                lines.remove(i.index(lines.len()));
            }),
            Edit::SwapLines(a, b) => on_lines(text, |lines| {
                let (a, b) = (a.index(lines.len()), b.index(lines.len()));
                lines.swap(a, b);
            }),
            Edit::InsertLine(i, l) => on_lines(text, |lines| {
                lines.insert(i.index(lines.len() + 1), l.as_bytes().to_vec());
            }),
            Edit::Number(i, n) => {
                let runs = number_runs(text);
                if !runs.is_empty() {
                    let (from, to) = runs[i.index(runs.len())];
                    text.splice(from..to, n.bytes());
                }
            }
            Edit::Delete(..) | Edit::Replace(..) => {}
        }
    }
}

/// Runs `f` over the lines of `text` (split on `\n`, never empty), then joins them back.
fn on_lines(text: &mut Vec<u8>, f: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let mut lines: Vec<Vec<u8>> = text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    f(&mut lines);
    *text = lines.join(&b'\n');
}

/// Where the numbers are: runs of digits with a leading `-` and a `.` fraction.
fn number_runs(text: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if text[i].is_ascii_digit() {
            let from = if i > 0 && text[i - 1] == b'-' { i - 1 } else { i };
            while i < text.len() && (text[i].is_ascii_digit() || text[i] == b'.') {
                i += 1;
            }
            runs.push((from, i));
        } else {
            i += 1;
        }
    }
    runs
}

/// One of `seeds` after 1 to 8 edits; inserted lines come from `line`. Bytes that are no
/// longer UTF-8 after an edit are decoded lossily.
pub(crate) fn mutated(
    seeds: &'static [&'static str],
    line: BoxedStrategy<String>,
) -> impl Strategy<Value = String> {
    (select(seeds), vec(edit(line), 1..8)).prop_map(|(seed, edits)| {
        let mut text = seed.as_bytes().to_vec();
        for e in &edits {
            e.apply(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    })
}
