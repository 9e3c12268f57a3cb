//! The Prometheus text exposition format, read: `name{label="value",…} value [timestamp]`.
//!
//! One reader for the lab: the swarm folds the origin's exporters with it, the test harness
//! reads the exporters and the swarm's own `/metrics`. Comment lines (`# HELP`, `# TYPE`) and
//! blank lines are skipped, as are malformed lines, so one bad line does not hide the rest.
//! Label values are unescaped (`\\`, `\"`, `\n`); the timestamp, if any, is ignored.

/// One sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name, e.g. `node_cpu_seconds_total`.
    pub name: String,
    /// Labels in the order written, values unescaped.
    pub labels: Vec<(String, String)>,
    /// The value (`NaN` and `±Inf` included).
    pub value: f64,
}

impl Sample {
    /// The value of label `key`, if present.
    #[must_use]
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Every sample of a scrape, in order. Lines end in `\n` or `\r\n`; a `\r` anywhere else is
/// text (a label value may hold one unescaped).
#[must_use]
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

/// Sum of the finite samples named `name` that `keep` accepts; `None` if there is none.
#[must_use]
pub fn sum_where(samples: &[Sample], name: &str, keep: impl Fn(&Sample) -> bool) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s.name == name && s.value.is_finite() && keep(s))
        .map(|s| s.value)
        .fold(None, |acc, v| Some(acc.unwrap_or(0.0) + v))
}

/// Sum of the finite samples named `name`, whatever their labels; `None` if there is none.
#[must_use]
pub fn sum(samples: &[Sample], name: &str) -> Option<f64> {
    sum_where(samples, name, |_| true)
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    // Rust reads every spelling Prometheus writes: `NaN`, `+Inf`, `-Inf`, `1e+06`.
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample { name: name.to_owned(), labels, value })
}

/// Reads `k="v",...}` into `labels`; returns what follows the closing brace.
fn parse_labels<'a>(mut s: &'a str, labels: &mut Vec<(String, String)>) -> Option<&'a str> {
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Some(after);
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    c => {
                        value.push('\\');
                        value.push(c);
                    }
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((key.to_owned(), value));
        s = s[end + 1..].trim_start();
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A few lines of `prometheus-node-exporter` 1.5 (Debian 12), as captured.
    const NODE: &str = "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n\
        # TYPE node_cpu_seconds_total counter\n\
        node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 1812.35\n\
        node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 41.76\n\
        node_cpu_seconds_total{cpu=\"1\",mode=\"idle\"} 1799.5\n\
        node_network_transmit_bytes_total{device=\"eth0\"} 1.2e+06\n\
        node_network_transmit_bytes_total{device=\"lo\"} 3.5e+07\n\
        node_exporter_build_info{branch=\"debian/sid\",goarch=\"amd64\",goos=\"linux\",goversion=\"go1.19.8\",revision=\"1.5.0-1+b6\",version=\"1.5.0\"} 1\n";

    /// Found by the property tests: a label value may hold a bare `\r` (only `\\`, `"` and
    /// `\n` are escaped), which used to end the line there and lose the sample.
    #[test]
    fn a_carriage_return_in_a_label_value_is_text() {
        let s = parse("a{msg=\"x\ry\"} 1\r\nb 2\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].label("msg"), Some("x\ry"));
        assert_eq!((s[0].value, s[1].value), (1.0, 2.0));
    }

    #[test]
    fn captured_exporter_output_and_sums() {
        let s = parse(NODE);
        assert_eq!(s.len(), 6);
        assert_eq!(s[0].label("mode"), Some("idle"));
        assert_eq!(s[5].label("revision"), Some("1.5.0-1+b6"));
        assert_eq!(s[5].labels.len(), 6);
        assert_eq!(sum(&s, "node_cpu_seconds_total"), Some(1812.35 + 41.76 + 1799.5));
        assert_eq!(
            sum_where(&s, "node_cpu_seconds_total", |x| x.label("mode") == Some("idle")),
            Some(1812.35 + 1799.5)
        );
        assert_eq!(
            sum_where(&s, "node_network_transmit_bytes_total", |x| x.label("device") != Some("lo")),
            Some(1.2e6)
        );
        assert_eq!(sum(&s, "node_cpu_seconds"), None, "names match exactly");
    }

    #[test]
    fn escapes_special_values_and_timestamps() {
        let text = "# a comment {x=\"y\"} 3\r\n\
            m{path=\"C:\\\\dir\",msg=\"say \\\"hi\\\", {ok}\",nl=\"a\\nb\",}  NaN 1700000000000\n\
            inf_pos +Inf\n inf_neg{} -Inf\nexp 1e+06\nneg -2.5e-3 \n\
            broken{a=\"unterminated} 1\nno_value\nbad 12abc\n";
        let s = parse(text);
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["m", "inf_pos", "inf_neg", "exp", "neg"]);
        assert_eq!(
            s[0].labels,
            [
                ("path".to_owned(), "C:\\dir".to_owned()),
                ("msg".to_owned(), "say \"hi\", {ok}".to_owned()),
                ("nl".to_owned(), "a\nb".to_owned()),
            ]
        );
        assert!(s[0].value.is_nan());
        assert_eq!((s[1].value, s[2].value), (f64::INFINITY, f64::NEG_INFINITY));
        assert!(s[2].labels.is_empty());
        assert_eq!((s[3].value, s[4].value), (1_000_000.0, -0.0025));
        assert_eq!(sum(&s, "m"), None, "NaN is not summed");
    }

    /// Property tests: any text reads without panic and keeps no more than it was given, and
    /// what an exporter writes reads back the same. The number of cases: see
    /// `crate::mutation`.
    mod props {
        use proptest::collection::vec;
        use proptest::prelude::*;
        use proptest::sample::select;

        use super::*;
        use crate::mutation::{any_chars, any_text, attributes, config, mutated, number};

        /// A line an exporter gone wrong might write: a sample with garbage labels or value, a
        /// comment, or anything.
        fn line() -> BoxedStrategy<String> {
            const NAMES: &[&str] = &["cpu", "mode", "device", "le", "quantile", "", "{", "}"];
            prop_oneof![
                3 => ("[a-z_:]{0,12}", attributes(NAMES), number(), prop_oneof![Just(String::new()), number()])
                    .prop_map(|(n, l, v, t)| format!("{n}{{{l}}} {v} {t}")),
                2 => ("[a-z_:]{0,12}", number()).prop_map(|(n, v)| format!("{n} {v}")),
                1 => ".{0,6}(# HELP|# TYPE).{0,20}",
                1 => ".{0,40}",
            ]
            .boxed()
        }

        /// What holds for any text: no panic, no more samples than lines, and no more text kept
        /// than was given (unescaping only shortens).
        fn check(text: &str) -> Result<(), TestCaseError> {
            let samples = parse(text);
            prop_assert!(samples.len() <= text.lines().count());
            let kept: usize = samples
                .iter()
                .map(|s| s.name.len() + s.labels.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>())
                .sum();
            prop_assert!(kept <= text.len(), "{kept} bytes kept of {}", text.len());
            let _ =
                (sum(&samples, "node_cpu_seconds_total"), sum_where(&samples, "", |s| s.label("").is_some()));
            Ok(())
        }

        /// One sample as Prometheus writes it: label values escaped, a value in any spelling Rust
        /// reads back, maybe a timestamp.
        fn write(s: &Sample, timestamp: Option<i64>) -> String {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| {
                    format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
                })
                .collect();
            let labels = if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.join(",")) };
            let timestamp = timestamp.map(|t| format!(" {t}")).unwrap_or_default();
            format!("{}{labels} {}{timestamp}\n", s.name, s.value)
        }

        fn sample() -> impl Strategy<Value = Sample> {
            let label = ("[a-zA-Z_][a-zA-Z0-9_]{0,10}", any_chars(12));
            ("[a-zA-Z_:][a-zA-Z0-9_:]{0,20}", vec(label, 0..4), any::<f64>())
                .prop_map(|(name, labels, value)| Sample { name, labels, value })
        }

        proptest! {
            #![proptest_config(config(256))]

            #[test]
            fn arbitrary_text_reads_without_panic(text in any_text()) {
                check(&text)?;
            }

            #[test]
            fn mutated_exporter_output_reads_without_panic(text in mutated(&[NODE], line())) {
                check(&text)?;
            }

            #[test]
            fn written_samples_read_back_the_same(
                samples in vec((sample(), proptest::option::of(any::<i64>())), 0..8),
                newline in select(&["\n", "\r\n"][..]),
            ) {
                let text: String = samples.iter().map(|(s, t)| write(s, *t).replace('\n', newline)).collect();
                let read = parse(&text);
                prop_assert_eq!(read.len(), samples.len(), "{}", text);
                for (r, (s, _)) in read.iter().zip(&samples) {
                    prop_assert_eq!((&r.name, &r.labels), (&s.name, &s.labels), "{}", text);
                    prop_assert!(r.value.to_bits() == s.value.to_bits() || (r.value.is_nan() && s.value.is_nan()));
                }
            }
        }
    }
}
