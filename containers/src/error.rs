//! What can go wrong building or running an image.

use std::path::{Path, PathBuf};

use crate::podman;

/// What can go wrong building or running an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Collecting the runtime closure (a missing library, a conflicting path).
    #[error(transparent)]
    Closure(#[from] microvm::image::Error),
    /// A program an image needs is not installed.
    #[error("{name} not found (looked for {looked}); {hint}")]
    ProgramNotFound {
        /// What.
        name: &'static str,
        /// Where it was looked for.
        looked: String,
        /// How to get it.
        hint: &'static str,
    },
    /// File system failure.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A podman command failed.
    #[error(transparent)]
    Podman(#[from] podman::Error),
}

pub(crate) fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { action, path: path.to_owned(), source }
}
