//! Escaping text into HTML and SVG markup, for the page and its charts, and the page's small
//! building blocks (fact tables, tables, number formats).

use std::fmt::Write as _;

use crate::output::summary::bytes;

/// Escapes text for HTML content and attribute values. Control characters other than tab and
/// line breaks become U+FFFD.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut o = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if c.is_control() => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

pub(super) fn opt<T>(v: Option<T>, show: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "n/a".to_owned(), show)
}

pub(super) fn percent(fraction: f64) -> String {
    format!("{:.2} %", fraction * 100.0)
}

#[allow(clippy::cast_precision_loss)]
pub(super) fn size(n: u64) -> String {
    format!("{n} ({})", bytes(n as f64))
}

pub(super) fn rate(v: f64) -> String {
    format!("{}/s", bytes(v))
}

/// A two-column table of (label, already-escaped HTML value).
pub(super) fn facts(o: &mut String, rows: &[(&str, String)]) {
    o.push_str("<table>");
    for (k, v) in rows {
        let _ = write!(o, "<tr><th>{}</th><td>{v}</td></tr>", escape(k));
    }
    o.push_str("</table>");
}

/// A table with a header row; cells are already-escaped HTML.
pub(super) fn table(o: &mut String, head: &[&str], rows: &[Vec<String>]) {
    o.push_str("<table><tr>");
    for h in head {
        let _ = write!(o, "<th>{}</th>", escape(h));
    }
    o.push_str("</tr>");
    for row in rows {
        o.push_str("<tr>");
        for cell in row {
            let class = if cell.starts_with(|c: char| c.is_ascii_digit()) { " class=\"num\"" } else { "" };
            let _ = write!(o, "<td{class}>{cell}</td>");
        }
        o.push_str("</tr>");
    }
    o.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_control_characters() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape("a\u{1b}[31mb\tc\nd"), "a\u{fffd}[31mb\tc\nd");
        assert_eq!(escape("http://h/x.m3u8?a=1&b=2"), "http://h/x.m3u8?a=1&amp;b=2");
        assert_eq!(escape("µs ✓"), "µs ✓");
    }
}
