//! `hls-swarm compare BASE.json NEW.json [--html FILE]`: reads two runs' JSON reports, prints
//! their key figures side by side (with a warning naming what differs when the runs are of
//! another shape) and writes the same as an HTML page if asked.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::control::cli::CompareArgs;
use crate::exit_code;
use crate::output::baseline::{PastRun, ReadError};
use crate::output::comparison::Comparison;

/// Why two reports could not be compared, or the page not written.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A file that is not a JSON report of this hls-swarm's schema version.
    #[error("{0}; expected the JSON report (--report FILE.json) of a run of this hls-swarm")]
    Input(#[from] ReadError),
    /// An `--html` file that cannot be made.
    #[error("--html {}: {reason}", path.display())]
    HtmlPath {
        /// The file, as given.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The page could not be written (or stdout not).
    #[error("cannot write {what}: {source}")]
    Write {
        /// What could not be written.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl CompareError {
    /// The exit code it ends `hls-swarm` with: 2 for bad input, 1 for a failed write.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            CompareError::Input(_) | CompareError::HtmlPath { .. } => exit_code::USAGE,
            CompareError::Write { .. } => exit_code::RUNTIME,
        }
    }
}

/// Compares the reports `args` names and prints the comparison to `out`.
///
/// # Errors
/// See [`CompareError`]; nothing is written when an input is bad.
pub fn compare(args: &CompareArgs, out: &mut dyn Write) -> Result<Comparison, CompareError> {
    if let Some(path) = &args.html {
        check_html_path(path)?;
    }
    let base = PastRun::load(&args.base)?;
    let new = PastRun::load(&args.new)?;
    let comparison = Comparison::new(&base, &new);
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| CompareError::Write { what, source }
    };
    write!(out, "{}", comparison.text()).and_then(|()| out.flush()).map_err(io("to stdout"))?;
    if let Some(path) = &args.html {
        crate::output::report::write_atomically(path, &comparison.html())
            .map_err(io(&format!("the page {}", path.display())))?;
        writeln!(out, "Comparison: {}", path.display()).map_err(io("to stdout"))?;
    }
    Ok(comparison)
}

/// An `--html` file must end in `.html` and go in a directory that exists.
fn check_html_path(path: &Path) -> Result<(), CompareError> {
    let bad = |reason: String| CompareError::HtmlPath { path: path.to_owned(), reason };
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if ext.as_deref() != Some("html") {
        return Err(bad("expected a file name ending in .html".into()));
    }
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
            Err(bad(format!("the directory '{}' does not exist", dir.display())))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_inputs_name_the_file_and_exit_2() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.json");
        std::fs::write(&other, r#"{"hello": 1}"#).unwrap();
        let args = |base: &Path, html: Option<PathBuf>| CompareArgs {
            base: base.to_owned(),
            new: other.clone(),
            html,
        };
        let mut out = Vec::new();
        let e = compare(&args(&dir.path().join("missing.json"), None), &mut out).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("missing.json: cannot read it"), "{e}");
        let e = compare(&args(&other, None), &mut out).unwrap_err();
        assert!(e.to_string().contains("other.json: not an hls-swarm JSON report"), "{e}");
        let e = compare(&args(&other, Some(dir.path().join("no/such/dir/x.html"))), &mut out).unwrap_err();
        assert!(e.to_string().contains("does not exist") && e.exit_code() == 2, "{e}");
        let e = compare(&args(&other, Some(dir.path().join("x.txt"))), &mut out).unwrap_err();
        assert!(e.to_string().contains(".html"), "{e}");
        assert!(out.is_empty(), "nothing printed for bad input");
    }
}
