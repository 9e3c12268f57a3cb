//! The launcher's error: what `start`, `stop`, `status` and `console` report, and what
//! validating a start configuration finds (re-exported as `vm::Error`).

use std::path::PathBuf;

use crate::{image, kernel, netns, rundir};

/// Launcher failures. [`Error::exit_code`] maps them to the documented exit codes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad value; nothing was started.
    #[error("{0}")]
    Invalid(String),
    /// The image could not be built.
    #[error(transparent)]
    Image(#[from] image::Error),
    /// Run directory problem.
    #[error(transparent)]
    RunDir(#[from] rundir::Error),
    /// Namespace problem.
    #[error(transparent)]
    Netns(#[from] netns::Error),
    /// A VM already runs in this run directory.
    #[error("VM {name} is already running (qemu pid {pid}, run directory {dir}); stop it first with `hls-lab microvm stop --name {name}`")]
    AlreadyRunning {
        /// VM name.
        name: String,
        /// qemu's pid.
        pid: u32,
        /// Run directory.
        dir: PathBuf,
    },
    /// qemu itself refused to start.
    #[error("qemu refused to start ({status}): {stderr}")]
    QemuFailed {
        /// Its exit.
        status: String,
        /// What it said.
        stderr: String,
    },
    /// The guest did not serve the playlist in time, or died; the VM was stopped.
    #[error("{what}; the VM was stopped. Last console lines ({log}):\n{tail}")]
    NotReady {
        /// What happened.
        what: String,
        /// Console log.
        log: PathBuf,
        /// Its last lines.
        tail: String,
    },
    /// Interrupted while starting; the VM was stopped.
    #[error("interrupted while waiting for the VM; it was stopped")]
    Interrupted,
    /// I/O.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The exit code documented in docs/microvm.md.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid(_) | Error::Netns(netns::Error::Missing { .. }) => 2,
            Error::Image(
                image::Error::ProgramNotFound { .. }
                | image::Error::Kernel(
                    kernel::Error::NotFound { .. }
                    | kernel::Error::NoModules { .. }
                    | kernel::Error::NotBzImage { .. }
                    | kernel::Error::Read { .. },
                ),
            ) => 2,
            Error::AlreadyRunning { .. } | Error::RunDir(rundir::Error::Busy { .. }) => 3,
            Error::QemuFailed { .. } | Error::NotReady { .. } => 4,
            Error::Interrupted => 130,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_kernel_or_modules_is_bad_input() {
        let missing = [
            kernel::Error::NotFound { looked: "/boot".into() },
            kernel::Error::NoModules { kernel: "/k".into(), release: "6.1".into(), looked: "/lib".into() },
        ];
        for e in missing {
            assert_eq!(Error::Image(image::Error::Kernel(e)).exit_code(), 2);
        }
    }
}
