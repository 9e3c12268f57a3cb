//! What [`start`](crate::service::start) is asked to do, as data: the media source, the
//! profile and its overrides, addresses, directories, time limits and executables, with the
//! defaults the command line and the tests build on.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::error::Error;
use crate::exporters;
use crate::profile::{Overrides, Profile};

/// Where the media comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A real-time ffmpeg encode (costs CPU for as long as the origin runs).
    #[default]
    Encode,
    /// A loop encoded once, then republished as live without re-encoding (nearly free).
    Replay,
}

impl Source {
    /// `encode` or `replay`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Encode => "encode",
            Source::Replay => "replay",
        }
    }
}

/// Everything [`start`](crate::service::start) needs. Build with [`Config::new`] and adjust the
/// public fields.
#[derive(Debug, Clone)]
pub struct Config {
    /// The profile (overrides are applied on top at start).
    pub profile: Profile,
    /// Picture, rate, segment and window overrides.
    pub overrides: Overrides,
    /// HLS listen address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Live encode or replay of a cached loop.
    pub source: Source,
    /// `prometheus-node-exporter` listen address; `None` runs none. Port 0 picks a free port.
    pub node_exporter: Option<SocketAddr>,
    /// `prometheus-nginx-exporter` listen address; `None` runs none. Port 0 picks a free port.
    pub nginx_exporter: Option<SocketAddr>,
    /// hls-origin's own `/health` listener (nginx proxies `/health` to it); port 0 = any.
    pub status_listen: SocketAddr,
    /// Parent of the origin's temporary directory (`/dev/shm` when usable, else the system temp dir).
    pub work_root: PathBuf,
    /// Where replay loops are cached.
    pub cache_dir: PathBuf,
    /// Where logs go; `None` keeps them in the temporary directory (removed at stop).
    pub log_dir: Option<PathBuf>,
    /// Segments in a replay loop.
    pub loop_segments: u32,
    /// Segments every media playlist must list before the origin counts as ready.
    pub ready_segments: usize,
    /// Upper bound on start-up, including encoding a replay loop.
    pub ready_timeout: Duration,
    /// Grace between SIGTERM and SIGKILL when stopping a child.
    pub stop_grace: Duration,
    /// The ffmpeg executable.
    pub ffmpeg: PathBuf,
    /// The nginx executable.
    pub nginx: PathBuf,
    /// The node exporter executable.
    pub node_exporter_bin: PathBuf,
    /// The nginx exporter executable.
    pub nginx_exporter_bin: PathBuf,
    /// Lets [`Origin::fail_segments`](crate::service::Origin::fail_segments) (`POST /fault/http`)
    /// work: nginx then checks a marker file per segment request and does not cache segment
    /// descriptors. Off by default.
    pub fault_injection: bool,
    /// Also serve HTTPS (the same content) on a second listener.
    pub tls: Option<TlsListen>,
}

/// An HTTPS listener: address and the PEM certificate chain and key nginx serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListen {
    /// HTTPS listen address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

/// `/dev/shm` if it is a writable directory, else the system temp directory.
#[must_use]
pub fn default_work_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let writable =
        shm.is_dir() && tempfile::Builder::new().prefix(".hls-origin-probe").tempdir_in(shm).is_ok();
    if writable {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// `$XDG_CACHE_HOME/hls-origin`, `~/.cache/hls-origin`, or under the temp dir.
#[must_use]
pub fn default_cache_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("hls-origin");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h).join(".cache").join("hls-origin");
    }
    std::env::temp_dir().join("hls-origin-cache")
}

impl Config {
    /// Defaults for profile `profile_name`: HLS on 127.0.0.1:17080, live encode, exporters on
    /// 127.0.0.1:9100 and :9113 when their binaries are installed (see [`exporters::find`]).
    ///
    /// # Errors
    /// [`Error::UnknownProfile`].
    pub fn new(profile_name: &str) -> Result<Config, Error> {
        let node_bin = exporters::find(&exporters::NODE_EXPORTER);
        let nginx_exp_bin = exporters::find(&exporters::NGINX_EXPORTER);
        let nginx = exporters::find(&["/usr/sbin/nginx", "nginx"]).unwrap_or_else(|| "nginx".into());
        let profile = Profile::named(profile_name)?;
        Ok(Config {
            // An LL-HLS profile serves a loop encoded once (see `crate::llhls`).
            source: if profile.part_ms.is_some() { Source::Replay } else { Source::Encode },
            profile,
            overrides: Overrides::default(),
            listen: loopback(17080),
            node_exporter: node_bin.is_some().then(|| loopback(9100)),
            nginx_exporter: nginx_exp_bin.is_some().then(|| loopback(9113)),
            status_listen: loopback(0),
            work_root: default_work_root(),
            cache_dir: default_cache_dir(),
            log_dir: None,
            loop_segments: 5,
            ready_segments: 3,
            ready_timeout: Duration::from_secs(90),
            stop_grace: Duration::from_secs(3),
            ffmpeg: "ffmpeg".into(),
            nginx,
            node_exporter_bin: node_bin.unwrap_or_else(|| exporters::NODE_EXPORTER[0].into()),
            nginx_exporter_bin: nginx_exp_bin.unwrap_or_else(|| exporters::NGINX_EXPORTER[0].into()),
            fault_injection: false,
            tls: None,
        })
    }

    /// The profile with the overrides applied.
    ///
    /// # Errors
    /// [`Error::InvalidOverride`].
    pub fn effective_profile(&self) -> Result<Profile, Error> {
        let mut p = self.profile.clone();
        p.apply(&self.overrides)?;
        Ok(p)
    }
}
