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

/// Every sample of a scrape, in order.
#[must_use]
pub fn parse(text: &str) -> Vec<Sample> {
    text.split(['\n', '\r']).filter_map(parse_line).collect()
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
}
