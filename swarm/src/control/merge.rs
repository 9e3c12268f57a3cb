//! `hls-swarm merge`: the JSON reports of a sharded run's workers into the fleet's outcome, as
//! one process running every viewer would have given it (see `measure::results` for the merge
//! rules). Reports that cannot belong together are refused before anything is merged.

use std::path::{Path, PathBuf};

use crate::measure::results::{Results, FORMAT};
use crate::measure::shard::Shard;
use crate::output::baseline::{self, PastRun};
use crate::output::outcome::Outcome;
use crate::output::summary::RunFacts;
use crate::output::thresholds::{Assertion, ParseError};

/// Why the reports cannot be merged.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    /// A file cannot be read or is not a report `merge` can use.
    #[error("{file}: {reason}")]
    Unusable {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// Reports of different runs.
    #[error("{a} is of run '{a_id}' but {b} of run '{b_id}': merge one run's shards (--run-id) at a time")]
    Runs {
        /// One file.
        a: String,
        /// Its run.
        a_id: String,
        /// Another.
        b: String,
        /// Its run.
        b_id: String,
    },
    /// Shards of different fleet sizes.
    #[error("{a} is shard {a_index}/{a_count} but {b} is {b_index}/{b_count}: shard counts differ")]
    Counts {
        /// One file.
        a: String,
        /// Its index.
        a_index: u32,
        /// Its count.
        a_count: u32,
        /// Another.
        b: String,
        /// Its index.
        b_index: u32,
        /// Its count.
        b_count: u32,
    },
    /// One shard twice.
    #[error("{a} and {b} are both shard {index}/{count}: each shard's report once")]
    Duplicate {
        /// One file.
        a: String,
        /// The other.
        b: String,
        /// The shard.
        index: u32,
        /// The count.
        count: u32,
    },
    /// Shards missing.
    #[error("{}: the fleet's report needs every shard's", missing_text(.missing, *.count))]
    Missing {
        /// Their indexes.
        missing: Vec<u32>,
        /// The count.
        count: u32,
    },
    /// An assertion that cannot be read (the message names it).
    #[error(transparent)]
    Assert(#[from] ParseError),
}

/// `shard 2 of 3 is missing`, `shards 1, 2 of 3 are missing`.
fn missing_text(n: &[u32], count: u32) -> String {
    let list = n.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    if n.len() == 1 {
        format!("shard {list} of {count} is missing")
    } else {
        format!("shards {list} of {count} are missing")
    }
}

/// One worker's report.
struct Part {
    file: String,
    facts: RunFacts,
    results: Results,
    shard: Shard,
}

/// Reads `file` as a worker's JSON report.
fn read(file: &Path) -> Result<Part, MergeError> {
    let name = file.display().to_string();
    let bad = |reason: String| MergeError::Unusable { file: name.clone(), reason };
    let json = baseline::read(file).map_err(bad)?;
    let m = &json["mergeable"];
    let facts: RunFacts = serde_json::from_value(m["facts"].clone())
        .map_err(|e| bad(format!("its mergeable.facts cannot be read: {e}")))?;
    let results: Results = serde_json::from_value(m["results"].clone())
        .map_err(|e| bad(format!("its mergeable.results cannot be read: {e}")))?;
    if results.format != FORMAT {
        return Err(bad(format!("results format {}; this hls-swarm reads format {FORMAT}", results.format)));
    }
    let shard = facts.shard.ok_or_else(|| {
        bad("not a shard's report (its run had no --shard): merge takes the reports of one sharded run"
            .into())
    })?;
    Ok(Part { file: name, facts, results, shard })
}

/// `files`, a directory standing for its `shard-*.json` files (as the Kubernetes Job writes
/// them), in name order.
fn expand(files: &[PathBuf]) -> Result<Vec<PathBuf>, MergeError> {
    let mut all = Vec::new();
    for f in files {
        if !f.is_dir() {
            all.push(f.clone());
            continue;
        }
        let bad = |reason: String| MergeError::Unusable { file: f.display().to_string(), reason };
        let mut found: Vec<PathBuf> = std::fs::read_dir(f)
            .map_err(|e| bad(format!("cannot list it: {e}")))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                name.starts_with("shard-") && name.ends_with(".json")
            })
            .collect();
        if found.is_empty() {
            return Err(bad("it holds no shard-*.json report".into()));
        }
        found.sort();
        all.extend(found);
    }
    Ok(all)
}

/// Merges the workers' reports `files` and checks `asserts` against the fleet's figures; the
/// fleet's outcome and its shard count.
///
/// # Errors
/// A file that cannot be used, reports of different runs or fleet sizes, a shard given twice
/// or missing, an assertion that cannot be read, or a `baseline` one without a usable
/// `--baseline` report (`baseline`: an earlier run's report the assertions may compare with).
pub fn merge(
    files: &[PathBuf],
    asserts: &[String],
    baseline: Option<&Path>,
) -> Result<(Outcome, u32), MergeError> {
    let asserts = asserts
        .iter()
        .map(|a| Assertion::parse(a).map_err(MergeError::from))
        .collect::<Result<Vec<_>, _>>()?;
    let baseline = baseline
        .map(PastRun::load)
        .transpose()
        .map_err(|e| MergeError::Unusable { file: format!("--baseline {}", e.file), reason: e.reason })?;
    let asserts = baseline::bind(asserts, baseline.as_ref())?;
    let files = expand(files)?;
    let mut parts = files.iter().map(|f| read(f)).collect::<Result<Vec<_>, _>>()?;
    let Some(first) = parts.first() else {
        return Err(MergeError::Missing { missing: vec![0], count: 1 });
    };
    let count = first.shard.count;
    for p in &parts {
        if p.facts.run_id != first.facts.run_id {
            return Err(MergeError::Runs {
                a: first.file.clone(),
                a_id: first.facts.run_id.clone(),
                b: p.file.clone(),
                b_id: p.facts.run_id.clone(),
            });
        }
        if p.shard.count != count {
            return Err(MergeError::Counts {
                a: first.file.clone(),
                a_index: first.shard.index,
                a_count: count,
                b: p.file.clone(),
                b_index: p.shard.index,
                b_count: p.shard.count,
            });
        }
    }
    parts.sort_by_key(|p| p.shard.index);
    for pair in parts.windows(2) {
        if pair[0].shard.index == pair[1].shard.index {
            return Err(MergeError::Duplicate {
                a: pair[0].file.clone(),
                b: pair[1].file.clone(),
                index: pair[0].shard.index,
                count,
            });
        }
    }
    let missing: Vec<u32> = (0..count).filter(|i| parts.iter().all(|p| p.shard.index != *i)).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing, count });
    }
    // In index order: the viewers are numbered as the fleet numbered them.
    let mut parts = parts.into_iter();
    let Some(Part { mut facts, mut results, .. }) = parts.next() else {
        return Err(MergeError::Missing { missing: vec![0], count });
    };
    for p in parts {
        results.merge(p.results);
        let f = p.facts;
        // Each shard ramped at its share of the rate.
        facts.ramp_rate += f.ramp_rate;
        facts.run_seconds = facts.run_seconds.max(f.run_seconds);
        facts.stop_seconds = facts.stop_seconds.max(f.stop_seconds);
        facts.interrupted |= f.interrupted;
        facts.quit_from_dashboard |= f.quit_from_dashboard;
        facts.all_ended &= f.all_ended;
        facts.start_late_seconds = match (facts.start_late_seconds, f.start_late_seconds) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        facts.started = facts.started.min(f.started);
    }
    facts.shard = None;
    Ok((baseline::noted(Outcome::new(&results, facts, None, &asserts), baseline.as_ref()), count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_not_shard_reports_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let newer = write("newer.json", r#"{"tool": {"name": "hls-swarm"}, "schema_version": 2}"#);
        let other = write("other.json", r#"{"tool": {"name": "k6"}, "schema_version": 1}"#);
        let bare = write("bare.json", r#"{"tool": {"name": "hls-swarm"}, "schema_version": 1}"#);
        let reason = |p: &PathBuf| match merge(std::slice::from_ref(p), &[], None) {
            Err(MergeError::Unusable { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(&newer), "report schema version 2; this hls-swarm reads version 1");
        assert_eq!(reason(&other), "not an hls-swarm JSON report (no tool.name 'hls-swarm')");
        assert!(reason(&bare).starts_with("its mergeable.facts cannot be read"), "{}", reason(&bare));
        assert_eq!(
            merge(&[dir.path().join("none")], &[], None).unwrap_err().to_string().split(": ").nth(1),
            Some("cannot read it")
        );
        let empty = tempfile::tempdir().unwrap();
        let err = merge(&[empty.path().to_owned()], &[], None).unwrap_err().to_string();
        assert!(err.ends_with("it holds no shard-*.json report"), "{err}");
        assert_eq!(
            MergeError::Missing { missing: vec![1, 2], count: 3 }.to_string(),
            "shards 1, 2 of 3 are missing: the fleet's report needs every shard's"
        );
        assert!(merge(&[newer], &["nonsense".into()], None).unwrap_err().to_string().starts_with("--assert"));
    }
}
