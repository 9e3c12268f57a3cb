//! What can go wrong building an image.

use std::path::{Path, PathBuf};

use crate::{kernel, kmod, ldd};

/// Image building problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A program the image needs is not installed.
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
    /// Two inputs want the same path in the image.
    #[error("image path /{path} wanted twice ({first} and {second})")]
    Conflict {
        /// The path.
        path: String,
        /// One.
        first: String,
        /// The other.
        second: String,
    },
    /// Library resolution.
    #[error(transparent)]
    Ldd(#[from] ldd::Error),
    /// Modules.
    #[error(transparent)]
    Kmod(#[from] kmod::Error),
    /// Kernel.
    #[error(transparent)]
    Kernel(#[from] kernel::Error),
}

pub(super) fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { action, path: path.to_owned(), source }
}
