//! One load test across several machines: this process's shard of the viewers (`--shard
//! INDEX/COUNT`, or a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` with `--shards COUNT`),
//! the run they share (`--run-id`) and when they all start (`--start-at`).
//!
//! Shard `i` of `n` runs a contiguous block of the fleet's viewer numbers, the blocks in shard
//! order and as even as whole viewers allow, so that merging the shards' results in index order
//! numbers every viewer as one process running them all would. Each shard ramps its block at
//! its share of `--ramp-rate`, so the fleet ramps at the asked rate, all shards at once.

use std::time::{Duration, SystemTime};

pub use crate::measure::shard::{Shard, MAX_SHARDS};

/// Longest wait for `--start-at`.
pub const MAX_START_WAIT: Duration = Duration::from_secs(24 * 3600);
/// A start this much after `--start-at` is late (and says so in the report).
pub const LATE: Duration = Duration::from_secs(1);

/// Reads `--start-at`: RFC 3339 (`2026-12-04T15:00:00Z`) or Unix seconds.
///
/// # Errors
/// Neither form.
pub fn parse_start_at(text: &str) -> Result<SystemTime, String> {
    if let Ok(secs) = text.trim().parse::<u64>() {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    }
    humantime::parse_rfc3339_weak(text.trim())
        .map_err(|e| format!("'{text}' is not a time ({e}): expected RFC 3339 in UTC, e.g. 2026-12-04T15:00:00Z, or Unix seconds"))
}

/// Checks a `--run-id`: 1 to 64 letters, digits, `.`, `_` or `-`.
///
/// # Errors
/// Anything else.
pub fn check_run_id(id: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if id.is_empty() || id.len() > 64 || !id.chars().all(ok) {
        return Err(format!("'{id}' is not a run id: 1 to 64 letters, digits, '.', '_' or '-'"));
    }
    Ok(())
}

/// A fresh run id (for a run not given one): 16 hex digits.
#[must_use]
pub fn new_run_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_named() {
        assert_eq!(
            Shard::parse("3/3").unwrap_err(),
            "index 3 is not below the count 3 (shards are numbered from 0)"
        );
        assert_eq!(Shard::parse("0/0").unwrap_err(), "the count 0 is out of range: accepted 1 to 1000");
        assert_eq!(Shard::parse("a/3").unwrap_err(), "index 'a' is not a whole number");
        assert_eq!(Shard::parse("1").unwrap_err(), "expected INDEX/COUNT, e.g. 0/3");
        assert!(parse_start_at("soon").unwrap_err().contains("'soon' is not a time"));
        let t = parse_start_at("2026-12-04T15:00:00Z").unwrap();
        assert_eq!(t, parse_start_at("1796396400").unwrap());
        assert!(check_run_id("load-test_7.a").is_ok());
        assert!(check_run_id("a b").unwrap_err().contains("'a b' is not a run id"));
        assert_eq!(new_run_id().len(), 16);
    }
}
