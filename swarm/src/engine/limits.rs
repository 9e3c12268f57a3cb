//! How much of what a server sends the swarm reads: one set of limits for the probe
//! (`--check` and the look before a run) and the relay, so both refuse the same things.

use kit::playlist::{Bound, Bounds, ParseError};

/// The input limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest playlist read (`--max-playlist-size`): the probe refuses a larger one, the relay
    /// forwards it unread and says so.
    pub playlist_bytes: usize,
    /// Longest line and URI and most entries in a playlist (`--max-line-length`,
    /// `--max-uri-length`, `--max-segments`): over one, the playlist is refused whole.
    pub playlist: Bounds,
}

/// The flag that raises [`Limits::playlist_bytes`].
pub const PLAYLIST_FLAG: &str = "--max-playlist-size";
/// The flag that raises [`Bounds::line_bytes`].
pub const LINE_FLAG: &str = "--max-line-length";
/// The flag that raises [`Bounds::uri_bytes`].
pub const URI_FLAG: &str = "--max-uri-length";
/// The flag that raises [`Bounds::entries`].
pub const ENTRIES_FLAG: &str = "--max-segments";

/// The flag that raises `bound`.
#[must_use]
pub fn flag(bound: Bound) -> &'static str {
    match bound {
        Bound::Line => LINE_FLAG,
        Bound::Uri => URI_FLAG,
        Bound::Entries => ENTRIES_FLAG,
    }
}

/// A parse error as the user reads it: over a bound, it names the flag that raises it.
#[must_use]
pub fn explain(e: &ParseError) -> String {
    match e {
        ParseError::OverLimit { what, .. } => format!("{e} ({} raises it)", flag(*what)),
        _ => e.to_string(),
    }
}
/// Default [`Limits::playlist_bytes`]: a 1-hour VOD playlist of 2 s segments is about 100 KB.
pub const PLAYLIST_BYTES: usize = 4 * 1024 * 1024;
/// Largest request or response head (status line and headers) the relay reads.
pub const HEAD_BYTES: usize = 64 * 1024;
/// Largest segment the probe downloads (`--check`).
pub const SEGMENT_BYTES: usize = 64 * 1024 * 1024;
/// Redirects the probe follows.
pub const REDIRECTS: usize = 5;

impl Default for Limits {
    fn default() -> Self {
        Limits { playlist_bytes: PLAYLIST_BYTES, playlist: Bounds::DEFAULT }
    }
}

/// Parses a size: bytes, or with a binary suffix `k`/`K`/`KiB`, `M`/`MiB`, `G`/`GiB`, or a
/// decimal one `kB`/`KB`, `MB`, `GB`.
///
/// # Errors
/// What is wrong with `text`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits.parse().map_err(|_| format!("'{text}' is not a size"))?;
    let factor: usize = match unit.trim() {
        "" | "B" => 1,
        "k" | "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => return Err(format!("unknown unit '{other}' in '{text}'")),
    };
    n.checked_mul(factor).filter(|n| *n > 0).ok_or_else(|| format!("'{text}' is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("4194304"), Ok(4 << 20));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("2KB"), Ok(2_000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
    }

    #[test]
    fn an_error_over_a_bound_names_the_flag_that_raises_it() {
        let e = ParseError::OverLimit { line: 9, what: Bound::Uri, limit: 8192 };
        assert_eq!(explain(&e), "line 9: a URI longer than 8192 bytes (--max-uri-length raises it)");
        assert_eq!(explain(&ParseError::NotM3u8), ParseError::NotM3u8.to_string());
    }
}
