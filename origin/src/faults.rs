//! HTTP faults: nginx answers a chosen status instead of a range of segments.
//!
//! Only an origin started with fault injection (`--fault-injection`) can do it: its nginx
//! config then checks, for every segment request, whether a marker file
//! `<faults>/<status>/<uri>` exists and answers that status if so (one `if (-f …)` per status
//! in [`STATUSES`], and no descriptor cache for segments, so markers act at once). A fault is
//! a set of markers; clearing it removes them. nginx never reloads (it runs without a master
//! process, where a reload is not supported). Without the option, the config has none of
//! this and segments are served from the descriptor cache.

use std::ops::RangeInclusive;
use std::path::Path;

use crate::replay::segment_name;

/// At most this many segments per fault (per variant).
pub const MAX_SEGMENTS: u64 = 10_000;

/// The statuses a segment fault can answer.
pub const STATUSES: [u16; 6] = [403, 404, 410, 500, 502, 503];

/// One fault: `status` for segments `first..=last` of every variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFault {
    /// HTTP status nginx answers (400–599).
    pub status: u16,
    /// Media sequence numbers.
    pub segments: RangeInclusive<u64>,
}

impl SegmentFault {
    /// Checks the status and the range.
    ///
    /// # Errors
    /// A message naming the bad value and what is accepted.
    pub fn new(status: u16, segments: RangeInclusive<u64>) -> Result<SegmentFault, String> {
        if !STATUSES.contains(&status) {
            let known: Vec<String> = STATUSES.iter().map(u16::to_string).collect();
            return Err(format!("invalid status {status}: expected one of {}", known.join(", ")));
        }
        if segments.is_empty() {
            return Err(format!(
                "invalid segment range {}..={}: expected from <= to",
                segments.start(),
                segments.end()
            ));
        }
        let count = segments.end() - segments.start() + 1;
        if count > MAX_SEGMENTS {
            return Err(format!(
                "invalid segment range of {count} segments: expected at most {MAX_SEGMENTS}"
            ));
        }
        Ok(SegmentFault { status, segments })
    }

    /// URL paths (from the root) of the affected segments; `variants` are the ABR rung
    /// directories, empty for a single-variant profile.
    #[must_use]
    pub fn paths(&self, variants: &[String]) -> Vec<String> {
        let dirs: Vec<String> = if variants.is_empty() {
            vec![String::new()]
        } else {
            variants.iter().map(|v| format!("{v}/")).collect()
        };
        let mut out = Vec::new();
        for dir in &dirs {
            for seq in self.segments.clone() {
                out.push(format!("/{dir}{}", segment_name(seq)));
            }
        }
        out
    }
}

/// Replaces the markers under `dir` with those of `fault` (none: clears them).
///
/// # Errors
/// A marker cannot be removed or written.
pub fn apply(dir: &Path, fault: Option<&SegmentFault>, variants: &[String]) -> std::io::Result<()> {
    for status in STATUSES {
        let d = dir.join(status.to_string());
        match std::fs::remove_dir_all(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(f) = fault {
        let base = dir.join(f.status.to_string());
        for path in f.paths(variants) {
            let marker = base.join(path.trim_start_matches('/'));
            if let Some(parent) = marker.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&marker, b"")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_per_variant_replace_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let f = SegmentFault::new(503, 41..=42).unwrap();
        let abr = f.paths(&["720p".into(), "360p".into()]);
        assert_eq!(abr, ["/720p/seg00041.ts", "/720p/seg00042.ts", "/360p/seg00041.ts", "/360p/seg00042.ts"]);
        apply(dir.path(), Some(&f), &[]).unwrap();
        assert!(dir.path().join("503/seg00041.ts").is_file());
        let g = SegmentFault::new(404, 7..=7).unwrap();
        apply(dir.path(), Some(&g), &["720p".into()]).unwrap();
        assert!(!dir.path().join("503").exists(), "replaced");
        assert!(dir.path().join("404/720p/seg00007.ts").is_file());
        apply(dir.path(), None, &[]).unwrap();
        assert!(!dir.path().join("404").exists(), "cleared");
    }

    #[test]
    fn bad_faults_name_the_value() {
        assert_eq!(
            SegmentFault::new(200, 1..=2).unwrap_err(),
            "invalid status 200: expected one of 403, 404, 410, 500, 502, 503"
        );
        let (from, to) = (5, 4);
        assert!(SegmentFault::new(404, from..=to).unwrap_err().contains("5..=4"));
        assert!(SegmentFault::new(404, 0..=MAX_SEGMENTS).unwrap_err().contains("at most 10000"));
    }
}
