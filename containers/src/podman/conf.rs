//! The private `containers.conf` the lab hands podman through `CONTAINERS_CONF`.

use std::path::{Path, PathBuf};

use nix::sys::resource::{getrlimit, Resource};

use crate::error::{io, Error};

/// What goes in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conf {
    /// `[engine] runtime`, when set.
    pub runtime: Option<String>,
    /// `RLIMIT_NOFILE` for containers (soft = hard).
    pub nofile: u64,
    /// `RLIMIT_NPROC` for containers (soft = hard).
    pub nproc: u64,
}

/// Highest open-file limit asked for (the swarm needs a few per viewer).
pub const NOFILE_CAP: u64 = 65_536;
/// Highest process limit asked for. Podman 4.3 runs itself with `RLIMIT_NPROC` 32768
/// (measured), and runc cannot give a container more than its parent has.
pub const NPROC_CAP: u64 = 32_768;

fn hard(r: Resource) -> u64 {
    getrlimit(r).map_or(u64::MAX, |(_, hard)| hard)
}

impl Conf {
    /// For this machine: runc when it is installed (crun, podman's other runtime, rejects
    /// some hosts' cgroup set-up), and ulimits no higher than this process's own hard
    /// limits — podman's defaults (1048576) are refused without `CAP_SYS_RESOURCE`.
    #[must_use]
    pub fn for_this_host() -> Conf {
        let runc = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"]
            .iter()
            .any(|p| Path::new(p).is_file());
        Conf {
            runtime: runc.then(|| "runc".to_owned()),
            nofile: hard(Resource::RLIMIT_NOFILE).min(NOFILE_CAP),
            nproc: hard(Resource::RLIMIT_NPROC).min(NPROC_CAP),
        }
    }

    /// The file's text.
    #[must_use]
    pub fn render(&self) -> String {
        let mut s = String::from(
            "# Written by hls-containers (podman-conf); used through CONTAINERS_CONF.\n\
             # Ulimits at most this host's hard limits: podman's defaults are refused here.\n\
             # A --ulimit on the command line replaces this whole list.\n",
        );
        s.push_str(&format!(
            "[containers]\ndefault_ulimits = [\"nofile={n}:{n}\", \"nproc={p}:{p}\"]\n",
            n = self.nofile,
            p = self.nproc
        ));
        if let Some(rt) = &self.runtime {
            s.push_str(&format!("\n[engine]\nruntime = \"{rt}\"\n"));
        }
        s
    }

    /// Writes [`Conf::render`] to `path` (creating its directory).
    ///
    /// # Errors
    /// The directory or file cannot be written.
    pub fn write(&self, path: &Path) -> Result<PathBuf, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
        }
        std::fs::write(path, self.render()).map_err(io("cannot write", path))?;
        Ok(path.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_never_exceed_this_process() {
        let c = Conf::for_this_host();
        assert!(c.nofile <= hard(Resource::RLIMIT_NOFILE) && c.nofile <= NOFILE_CAP);
        assert!(c.nproc <= hard(Resource::RLIMIT_NPROC) && c.nproc <= NPROC_CAP);
    }

    #[test]
    fn renders_toml_podman_reads() {
        let c = Conf { runtime: Some("runc".into()), nofile: 20_000, nproc: 4096 };
        let text = c.render();
        assert!(text.contains("default_ulimits = [\"nofile=20000:20000\", \"nproc=4096:4096\"]\n"));
        assert!(text.contains("[engine]\nruntime = \"runc\"\n"));
        let none = Conf { runtime: None, ..c };
        assert!(!none.render().contains("[engine]"));
    }
}
