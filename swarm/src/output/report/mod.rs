//! End-of-run report files: `--report run.json` (machine-readable, described by
//! `docs/report.schema.json`), `--report run.html` (one self-contained page) and
//! `--report run.csv` (the per-second series). `--report run.ndjson` names the event log,
//! written while the run goes on (`crate::output::eventlog`), not from the report.
//!
//! A [`Report`] is built once from the run's [`Outcome`]; the JSON file is that struct
//! serialized and the HTML page ([`html`]) renders the same struct, so both say the same thing.
//! Numbers are in SI base units: seconds, bytes, bytes per second, ratios as fractions
//! (0.01 = 1 %). `fields` holds every `--assert` field by name, so a threshold reads exactly
//! one value of the report.
//!
//! The schema is generated from these types ([`schema`]); a unit test keeps the committed
//! file equal to it (`UPDATE_SCHEMA=1 cargo test -p hls-swarm --lib report` rewrites it).

mod build;
pub mod chart;
pub mod csv;
mod hosts;
pub mod html;
pub mod markup;
mod model;
mod sections;

pub use build::{Report, SCHEMA_VERSION};
pub use model::*;

use crate::engine::secrets::Secrets;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A report file's format, decided by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.json`: the [`Report`] as JSON.
    Json,
    /// `.html`: one self-contained page.
    Html,
    /// `.csv`: the per-second series.
    Csv,
    /// `.ndjson` or `.jsonl`: the event log, written during the run.
    Events,
}

/// One `--report` file, validated: a known extension in an existing directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where it is written.
    pub path: PathBuf,
    /// What is written there.
    pub format: Format,
}

/// Accepted `--report` values, for messages.
pub const ACCEPTED: &str = "accepted: a file name ending in .json (machine-readable), .html \
    (a self-contained page), .csv (the per-second series) or .ndjson/.jsonl (the event log, one \
    per run), in a directory that exists, or - (JSON on one line of stdout)";

impl Target {
    /// Reads a `--report` value.
    ///
    /// # Errors
    /// An extension other than `.json`, `.html`, `.csv`, `.ndjson` or `.jsonl`, or a parent
    /// directory that does not exist; the message says which.
    pub fn parse(path: &Path) -> Result<Target, String> {
        if path.as_os_str() == "-" {
            return Ok(Target { path: path.to_owned(), format: Format::Json });
        }
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let format = match ext.as_deref() {
            Some("json") => Format::Json,
            Some("html") => Format::Html,
            Some("csv") => Format::Csv,
            Some("ndjson" | "jsonl") => Format::Events,
            Some(other) => return Err(format!("the extension '.{other}' is not a report format")),
            None => return Err("it has no extension".to_owned()),
        };
        match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
                Err(format!("the directory '{}' does not exist", dir.display()))
            }
            _ => Ok(Target { path: path.to_owned(), format }),
        }
    }
}

impl Target {
    /// `-`: the JSON report on one line of stdout.
    #[must_use]
    pub fn is_stdout(&self) -> bool {
        self.path.as_os_str() == "-"
    }
}

/// A report file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the report '{}': {source}", path.display())]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// Writes `report` to `target`, through a temporary file in the same directory, so a reader
/// never sees half a report. An event log (`.ndjson`) was written during the run: nothing is
/// done here.
///
/// # Errors
/// If the file cannot be created, written or renamed into place.
pub fn write(report: &Report, target: &Target, secrets: &Secrets) -> Result<(), WriteError> {
    let err = |source| WriteError { path: target.path.clone(), source };
    if target.is_stdout() {
        // One line, for log collectors (a pod's log is how its report leaves it).
        let line = secrets.text(&serde_json::to_string(report).unwrap_or_default()).into_owned();
        let mut out = std::io::stdout().lock();
        return writeln!(out, "{line}").and_then(|()| out.flush()).map_err(err);
    }
    let text = match target.format {
        Format::Json => {
            let mut t = report.to_json();
            t.push('\n');
            t
        }
        Format::Html => html::render(report),
        Format::Csv => csv::render(report),
        Format::Events => return Ok(()),
    };
    // The figures carry no secret by construction; this is the last line of defence.
    let text = secrets.text(&text);
    write_atomically(&target.path, &text).map_err(err)
}

/// Writes `text` to `path` through a temporary file in the same directory, so a reader never
/// sees half a file.
///
/// # Errors
/// The temporary file cannot be written or renamed (it is removed).
pub(crate) fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The event log (`.ndjson`), written during the run, as a `--report` file: written, or why
/// not.
///
/// # Errors
/// It could not be written whole.
pub fn event_log_written(log: &crate::output::eventlog::Written) -> Result<(), WriteError> {
    match log.failure() {
        None => Ok(()),
        Some(failure) => Err(WriteError { path: log.path.clone(), source: std::io::Error::other(failure) }),
    }
}

/// The JSON Schema of [`Report`] (draft 2020-12), as committed in `docs/report.schema.json`.
#[must_use]
pub fn schema() -> String {
    let generator = schemars::generate::SchemaSettings::draft2020_12().for_serialize().into_generator();
    let schema = generator.into_root_schema_for::<Report>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests;
