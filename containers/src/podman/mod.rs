//! Running podman: global flags, the private `containers.conf`, and the few commands the lab
//! uses, each failure carrying podman's own message.
//!
//! Podman is run as a plain command (`std::process::Command`, no shell); every call here is
//! short — `run` uses `--detach` — so none outlives its caller.

pub mod conf;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A podman command that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// podman could not be started.
    #[error("cannot run {program}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// podman exited non-zero.
    #[error("podman {args} failed ({status}): {stderr}")]
    Failed {
        /// The arguments after the global flags.
        args: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr (trimmed).
        stderr: String,
    },
}

/// `podman` on `PATH` (or in `/usr/bin`).
#[must_use]
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("podman"))
        .find(|p| p.is_file())
}

/// A podman installation and the global options every call gets.
#[derive(Debug, Clone)]
pub struct Podman {
    program: PathBuf,
    global: Vec<OsString>,
    conf: Option<PathBuf>,
}

impl Podman {
    /// Podman at `program` with its default storage and configuration.
    #[must_use]
    pub fn new(program: PathBuf) -> Podman {
        Podman { program, global: Vec::new(), conf: None }
    }

    /// Keeps every image, container and lock under `dir` (`--root`, `--runroot`, `--tmpdir`),
    /// away from the user's store. On an overlayfs (a CI container) the overlay driver cannot
    /// stack, so `vfs` is used there.
    #[must_use]
    pub fn with_storage(mut self, dir: &Path) -> Podman {
        for (flag, sub) in [("--root", "root"), ("--runroot", "run"), ("--tmpdir", "tmp")] {
            self.global.push(flag.into());
            self.global.push(dir.join(sub).into());
        }
        if on_overlayfs(dir) {
            self.global.extend(["--storage-driver".into(), "vfs".into()]);
        }
        self
    }

    /// Sets `CONTAINERS_CONF` to `path` for every call.
    #[must_use]
    pub fn with_conf(mut self, path: &Path) -> Podman {
        self.conf = Some(path.to_owned());
        self
    }

    /// `podman <global flags>` ready for arguments.
    #[must_use]
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.global);
        if let Some(conf) = &self.conf {
            cmd.env("CONTAINERS_CONF", conf);
        }
        cmd
    }

    /// Runs `podman ARGS`, returns its stdout, trimmed.
    ///
    /// # Errors
    /// [`Error::Spawn`], or [`Error::Failed`] with podman's stderr.
    pub fn output<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String, Error> {
        let out = self
            .command()
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| Error::Spawn { program: self.program.clone(), source })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(Error::Failed {
                args: args.iter().map(|a| a.as_ref().to_string_lossy()).collect::<Vec<_>>().join(" "),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
    }

    /// `podman load -i ARCHIVE`; returns what podman says it loaded (`Loaded image: …`).
    ///
    /// # Errors
    /// As [`Podman::output`].
    pub fn load(&self, archive: &Path) -> Result<String, Error> {
        let out =
            self.output(&[OsStr::new("load"), OsStr::new("--quiet"), OsStr::new("-i"), archive.as_os_str()])?;
        Ok(out.lines().last().unwrap_or_default().trim().to_owned())
    }

    /// `podman rm --force --time 0 NAME…`, ignoring containers that do not exist.
    ///
    /// # Errors
    /// As [`Podman::output`].
    pub fn remove_containers(&self, names: &[&str]) -> Result<(), Error> {
        if names.is_empty() {
            return Ok(());
        }
        let mut args = vec!["rm", "--force", "--ignore", "--time", "0"];
        args.extend_from_slice(names);
        self.output(&args).map(drop)
    }

    /// `podman rmi --force REF…`, ignoring images that do not exist.
    ///
    /// # Errors
    /// As [`Podman::output`].
    pub fn remove_images(&self, refs: &[&str]) -> Result<(), Error> {
        if refs.is_empty() {
            return Ok(());
        }
        let mut args = vec!["rmi", "--force", "--ignore"];
        args.extend_from_slice(refs);
        self.output(&args).map(drop)
    }

    /// The container's output (`podman logs`, its stdout and stderr interleaved as podman
    /// replays them; podman's own `level=…` notices left out), the last `tail` lines.
    /// Empty when the container is gone.
    #[must_use]
    pub fn logs(&self, name: &str, tail: usize) -> String {
        let tail = tail.to_string();
        let Ok(out) = self.command().args(["logs", "--tail", &tail, name]).output() else {
            return String::new();
        };
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            if !(line.starts_with("time=\"") && line.contains(" level=")) {
                text.push_str(line);
                text.push('\n');
            }
        }
        text.trim_end().to_owned()
    }

    /// `podman inspect --format FORMAT NAME`.
    ///
    /// # Errors
    /// As [`Podman::output`] (also when `NAME` does not exist).
    pub fn inspect(&self, name: &str, format: &str) -> Result<String, Error> {
        self.output(&["inspect", "--format", format, name])
    }
}

fn on_overlayfs(dir: &Path) -> bool {
    // Ask about the nearest existing ancestor (the storage dirs may not exist yet).
    let existing = dir.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"));
    nix::sys::statfs::statfs(existing)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
}
