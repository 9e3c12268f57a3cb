//! The two images as data — names, user, entrypoint, environment, ports, healthcheck, labels —
//! and the host files they are assembled from.
//!
//! The contract is the flake's (`nix/containers.nix`, `nix/lab.nix`): `hls-swarm-client` runs
//! as `swarm` (uid 10001), `hls-test-origin` as `origin` (uid 10002), both with `/tmp` as home
//! and working directory; curl runs the healthcheck. The swarm reads `STREAM_URL`, `CLIENTS`,
//! `RAMP_RATE`, `DURATION`, `VARIANT` and `METRICS_ADDR` itself (the Nix image maps them in a
//! shell wrapper; this one needs no shell).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use microvm::image::{on_path, Plan};

use crate::error::Error;

/// The swarm's image name.
pub const SWARM_CLIENT: &str = "hls-swarm-client";
/// The test origin's image name.
pub const TEST_ORIGIN: &str = "hls-test-origin";
/// The tag both are built with.
pub const TAG: &str = "latest";

/// The HLS port (nginx in the origin).
pub const HLS_PORT: u16 = 17080;
/// The origin's node exporter.
pub const NODE_EXPORTER_PORT: u16 = 9100;
/// The origin's nginx exporter.
pub const NGINX_EXPORTER_PORT: u16 = 9113;
/// The swarm's `/metrics`.
pub const SWARM_METRICS_PORT: u16 = 17091;

/// `PATH` inside both images.
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// Where the CA bundle goes (Debian's path, so GnuTLS in ffmpeg finds it as on the host).
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The name the flake's images use for it (`SSL_CERT_FILE`).
const CA_BUNDLE_ALIAS: &str = "etc/ssl/certs/ca-bundle.crt";

/// The host files the images are built from.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// `hls-swarm`.
    pub swarm: PathBuf,
    /// `hls-origin`.
    pub origin: PathBuf,
    /// ffmpeg (both images).
    pub ffmpeg: PathBuf,
    /// nginx.
    pub nginx: PathBuf,
    /// prometheus-node-exporter.
    pub node_exporter: PathBuf,
    /// prometheus-nginx-exporter.
    pub nginx_exporter: PathBuf,
    /// curl (the healthcheck).
    pub curl: PathBuf,
    /// The CA bundle, when the host has one.
    pub ca_bundle: Option<PathBuf>,
}

/// Explicit choices; anything `None` is looked up.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `hls-swarm` binary.
    pub swarm: Option<PathBuf>,
    /// `hls-origin` binary.
    pub origin: Option<PathBuf>,
}

fn installed(name: &'static str, candidates: &[&str]) -> Result<PathBuf, Error> {
    candidates.iter().find_map(|c| on_path(c)).ok_or_else(|| Error::ProgramNotFound {
        name,
        looked: candidates.join(", "),
        hint: "install it with scripts/install-deps",
    })
}

/// A workspace binary: next to the running executable (`target/<profile>/`, or one level up
/// from a test's `deps/`), else on `PATH`.
#[must_use]
pub fn workspace_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join(name), dir.parent()?.join(name)].into_iter().find(|p| p.is_file()).or_else(|| on_path(name))
}

fn built(name: &'static str, given: Option<&PathBuf>, package: &'static str) -> Result<PathBuf, Error> {
    match given {
        Some(p) if p.is_file() => Ok(p.clone()),
        Some(p) => Err(Error::ProgramNotFound {
            name,
            looked: p.display().to_string(),
            hint: "pass an existing file",
        }),
        None => workspace_binary(name).ok_or(Error::ProgramNotFound {
            name,
            looked: "next to hls-containers, then PATH".into(),
            hint: package,
        }),
    }
}

impl Inputs {
    /// Finds every input on this host.
    ///
    /// # Errors
    /// [`Error::ProgramNotFound`], naming what to build or install.
    pub fn discover(o: &Overrides) -> Result<Inputs, Error> {
        Ok(Inputs {
            swarm: built(
                "hls-swarm",
                o.swarm.as_ref(),
                "build it (cargo build --release -p hls-swarm) or pass --swarm-bin",
            )?,
            origin: built(
                "hls-origin",
                o.origin.as_ref(),
                "build it (cargo build --release -p hls-origin) or pass --origin-bin",
            )?,
            ffmpeg: installed("ffmpeg", &["ffmpeg"])?,
            nginx: installed("nginx", &["nginx"])?,
            node_exporter: installed(
                "prometheus-node-exporter",
                &["prometheus-node-exporter", "node_exporter"],
            )?,
            nginx_exporter: installed(
                "prometheus-nginx-exporter",
                &["prometheus-nginx-exporter", "nginx-prometheus-exporter"],
            )?,
            curl: installed("curl", &["curl"])?,
            ca_bundle: Some(PathBuf::from(CA_BUNDLE)).filter(|p| p.is_file()),
        })
    }
}

/// The image's one non-root account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// uid, also its group's gid.
    pub uid: u32,
}

/// Docker's `HEALTHCHECK` (the image config's `Healthcheck`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", program, args…]`.
    pub test: Vec<String>,
    /// Between checks.
    pub interval: Duration,
    /// One check's limit.
    pub timeout: Duration,
    /// Failures during this time after the start do not count.
    pub start_period: Duration,
    /// Failures in a row before the container is unhealthy.
    pub retries: u32,
}

/// One image: what goes in it and how it runs.
#[derive(Debug, Clone)]
pub struct Image {
    /// Repository name (`hls-swarm-client`).
    pub name: String,
    /// Tag (`latest`).
    pub tag: String,
    /// The account it runs as.
    pub user: User,
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd` (arguments after the entrypoint).
    pub cmd: Vec<String>,
    /// `Env`, in this order.
    pub env: Vec<(String, String)>,
    /// `WorkingDir` (also the user's home).
    pub working_dir: String,
    /// `ExposedPorts` (TCP).
    pub ports: Vec<u16>,
    /// `Healthcheck`.
    pub healthcheck: Healthcheck,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// Programs: host path and image path (no leading `/`).
    pub programs: Vec<(PathBuf, String)>,
    /// The host's CA bundle, mirrored at its own path.
    pub ca_bundle: Option<PathBuf>,
}

fn env(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

fn labels(title: &str, description: &str) -> BTreeMap<String, String> {
    [
        ("org.opencontainers.image.title", title),
        ("org.opencontainers.image.description", description),
        ("org.opencontainers.image.version", env!("CARGO_PKG_VERSION")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn curl_check(port: u16, path: &str) -> Vec<String> {
    ["CMD", "/usr/bin/curl", "-fsS", "-o", "/dev/null"]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("http://127.0.0.1:{port}{path}")])
        .collect()
}

impl Image {
    /// `hls-swarm-client`: hls-swarm and ffmpeg, configured by environment variables, no TUI,
    /// `/metrics` on 0.0.0.0:17091.
    #[must_use]
    pub fn swarm_client(inputs: &Inputs) -> Image {
        Image {
            name: SWARM_CLIENT.into(),
            tag: TAG.into(),
            user: User { name: "swarm".into(), uid: 10001 },
            entrypoint: vec!["/usr/bin/hls-swarm".into()],
            cmd: vec![],
            env: env(&[
                ("PATH", PATH.into()),
                ("HLS_SWARM_TUI", "false".into()),
                ("METRICS_ADDR", format!("0.0.0.0:{SWARM_METRICS_PORT}")),
                ("SSL_CERT_FILE", format!("/{CA_BUNDLE_ALIAS}")),
            ]),
            working_dir: "/tmp".into(),
            ports: vec![SWARM_METRICS_PORT],
            healthcheck: Healthcheck {
                test: curl_check(SWARM_METRICS_PORT, "/metrics"),
                interval: Duration::from_secs(15),
                timeout: Duration::from_secs(5),
                start_period: Duration::from_secs(30),
                retries: 3,
            },
            labels: labels(SWARM_CLIENT, "hls-swarm: simulated HLS viewers; set STREAM_URL and CLIENTS"),
            programs: vec![
                (inputs.swarm.clone(), "usr/bin/hls-swarm".into()),
                (inputs.ffmpeg.clone(), "usr/bin/ffmpeg".into()),
                (inputs.curl.clone(), "usr/bin/curl".into()),
            ],
            ca_bundle: inputs.ca_bundle.clone(),
        }
    }

    /// `hls-test-origin`: `hls-origin serve` with ffmpeg, nginx and both exporters, listening on
    /// 0.0.0.0:17080 (exporters :9100, :9113), work files under `/tmp`.
    #[must_use]
    pub fn test_origin(inputs: &Inputs) -> Image {
        Image {
            name: TEST_ORIGIN.into(),
            tag: TAG.into(),
            user: User { name: "origin".into(), uid: 10002 },
            entrypoint: vec!["/usr/bin/hls-origin".into(), "serve".into()],
            cmd: vec![],
            env: env(&[
                ("PATH", PATH.into()),
                ("HLS_ORIGIN_PROFILE", "default".into()),
                ("HLS_ORIGIN_LISTEN", format!("0.0.0.0:{HLS_PORT}")),
                ("HLS_ORIGIN_NODE_EXPORTER", format!("0.0.0.0:{NODE_EXPORTER_PORT}")),
                ("HLS_ORIGIN_NGINX_EXPORTER", format!("0.0.0.0:{NGINX_EXPORTER_PORT}")),
                ("HLS_ORIGIN_WORK_DIR", "/tmp".into()),
                ("HLS_ORIGIN_CACHE_DIR", "/tmp/hls-origin-cache".into()),
            ]),
            working_dir: "/tmp".into(),
            ports: vec![HLS_PORT, NODE_EXPORTER_PORT, NGINX_EXPORTER_PORT],
            healthcheck: Healthcheck {
                test: curl_check(HLS_PORT, "/health"),
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(3),
                start_period: Duration::from_secs(60),
                retries: 3,
            },
            labels: labels(
                TEST_ORIGIN,
                "hls-origin: test HLS origin; HLS_ORIGIN_PROFILE selects the profile",
            ),
            programs: vec![
                (inputs.origin.clone(), "usr/bin/hls-origin".into()),
                (inputs.ffmpeg.clone(), "usr/bin/ffmpeg".into()),
                (inputs.nginx.clone(), "usr/sbin/nginx".into()),
                (inputs.node_exporter.clone(), "usr/bin/prometheus-node-exporter".into()),
                (inputs.nginx_exporter.clone(), "usr/bin/prometheus-nginx-exporter".into()),
                (inputs.curl.clone(), "usr/bin/curl".into()),
            ],
            ca_bundle: inputs.ca_bundle.clone(),
        }
    }

    /// `name:tag`.
    #[must_use]
    pub fn reference(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }

    /// The image's files: the skeleton, each program with its loader-resolved libraries, the CA
    /// bundle.
    ///
    /// # Errors
    /// A program or library that cannot be read or resolved, or two inputs wanting one path.
    pub fn plan(&self) -> Result<Plan, Error> {
        let mut plan = Plan::default();
        self.skeleton(&mut plan)?;
        for (host, dest) in &self.programs {
            plan.program(host, dest)?;
        }
        if let Some(ca) = &self.ca_bundle {
            plan.mirror(ca)?;
            let name = ca.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if Path::new(CA_BUNDLE_ALIAS).file_name().is_some_and(|a| a.to_string_lossy() != name) {
                plan.symlink(CA_BUNDLE_ALIAS, &name)?;
            }
        }
        Ok(plan)
    }

    fn skeleton(&self, plan: &mut Plan) -> Result<(), Error> {
        for (dir, perm) in [
            ("etc", 0o755),
            ("tmp", 0o1777),
            ("root", 0o700),
            ("run", 0o755),
            ("proc", 0o555),
            ("sys", 0o555),
            ("dev", 0o755),
            ("usr", 0o755),
            ("usr/bin", 0o755),
            ("usr/sbin", 0o755),
            ("var", 0o755),
        ] {
            plan.dir(dir, perm)?;
        }
        plan.bytes("etc/passwd", 0o644, self.passwd())?;
        plan.bytes("etc/group", 0o644, self.group())?;
        plan.bytes("etc/nsswitch.conf", 0o644, "passwd: files\ngroup: files\nhosts: files dns\n")?;
        Ok(())
    }

    /// `/etc/passwd`: root and nobody without a login shell, and the image's user with
    /// [`Image::working_dir`] as home. No `/etc/shadow`: no account has a password.
    #[must_use]
    pub fn passwd(&self) -> String {
        let User { name, uid } = &self.user;
        format!(
            "root:x:0:0:root:/root:/sbin/nologin\n\
             nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
             {name}:x:{uid}:{uid}:{name}:{home}:/sbin/nologin\n",
            home = self.working_dir
        )
    }

    /// `/etc/group` for [`Image::passwd`].
    #[must_use]
    pub fn group(&self) -> String {
        let User { name, uid } = &self.user;
        format!("root:x:0:\nnogroup:x:65534:\n{name}:x:{uid}:\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs {
        Inputs {
            swarm: "/w/hls-swarm".into(),
            origin: "/w/hls-origin".into(),
            ffmpeg: "/usr/bin/ffmpeg".into(),
            nginx: "/usr/sbin/nginx".into(),
            node_exporter: "/usr/bin/prometheus-node-exporter".into(),
            nginx_exporter: "/usr/bin/prometheus-nginx-exporter".into(),
            curl: "/usr/bin/curl".into(),
            ca_bundle: None,
        }
    }

    #[test]
    fn images_follow_the_flake_contract() {
        let i = inputs();
        let (s, o) = (Image::swarm_client(&i), Image::test_origin(&i));
        assert_ne!(s.name, o.name, "two images, two names");
        assert_eq!(
            (s.reference().as_str(), o.reference().as_str()),
            ("hls-swarm-client:latest", "hls-test-origin:latest")
        );
        assert!(s.user.uid != 0 && o.user.uid != 0);
        let get = |img: &Image, k: &str| img.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get(&s, "HLS_SWARM_TUI").as_deref(), Some("false"));
        assert_eq!(get(&s, "METRICS_ADDR").as_deref(), Some("0.0.0.0:17091"));
        assert_eq!(get(&o, "HLS_ORIGIN_LISTEN").as_deref(), Some("0.0.0.0:17080"));
        assert_eq!(get(&o, "HLS_ORIGIN_NODE_EXPORTER").as_deref(), Some("0.0.0.0:9100"));
        assert_eq!(get(&o, "HLS_ORIGIN_NGINX_EXPORTER").as_deref(), Some("0.0.0.0:9113"));
        assert_eq!(o.healthcheck.test.last().map(String::as_str), Some("http://127.0.0.1:17080/health"));
        assert_eq!(o.ports, [17080, 9100, 9113]);
    }

    #[test]
    fn flake_defines_the_same_names_and_uids() {
        let lab =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../nix/lab.nix")).unwrap();
        assert!(lab.contains(&format!("swarmClient = \"{SWARM_CLIENT}\";")), "nix/lab.nix: {lab}");
        assert!(lab.contains(&format!("testOrigin = \"{TEST_ORIGIN}\";")));
        let nix =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../nix/containers.nix"))
                .unwrap();
        let i = inputs();
        assert!(nix.contains(&format!("swarmUid = {};", Image::swarm_client(&i).user.uid)));
        assert!(nix.contains(&format!("originUid = {};", Image::test_origin(&i).user.uid)));
    }

    #[test]
    fn passwd_has_the_user_and_no_password() {
        let img = Image::swarm_client(&inputs());
        let p = img.passwd();
        assert!(p.contains("swarm:x:10001:10001:swarm:/tmp:/sbin/nologin\n"));
        assert!(p.lines().all(|l| l.split(':').nth(1) == Some("x")));
        assert!(img.group().contains("swarm:x:10001:\n"));
    }
}
