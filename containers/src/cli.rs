//! `hls-containers`: `build` (both images as docker-archives, optionally `podman load`ed),
//! `podman-conf` (the private `containers.conf`), `run-origin` / `stop-origin` (the test origin
//! container). `main.rs` parses and maps [`run`]'s code to the exit status.
//!
//! Exit codes: 0 success; 1 failure (a missing input, a write or podman error; the message says
//! which); 2 bad command line; 3 `run-origin`: the origin did not become healthy in time, or
//! exited (its last log lines are printed, the container removed), or is already running.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::archive;
use crate::error::{io, Error};
use crate::podman::{self, conf::Conf, Podman};
use crate::spec::{self, Image, Inputs, Overrides};

/// Container images of hls-swarm and the test origin, built without Nix.
#[derive(Debug, Parser)]
#[command(name = "hls-containers", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the images as uncompressed docker-archives (DIR/NAME.tar) from this host's binaries.
    Build(BuildArgs),
    /// Write a containers.conf for podman on this host (pass it as CONTAINERS_CONF).
    PodmanConf {
        /// Where to write it.
        file: PathBuf,
    },
    /// Start the test origin container in the background and wait until it is healthy.
    RunOrigin(RunOriginArgs),
    /// Stop (and remove) the test origin container.
    StopOrigin {
        /// Container name.
        #[arg(long, default_value = spec::TEST_ORIGIN)]
        name: String,
    },
}

/// Which images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// `hls-swarm-client`.
    SwarmClient,
    /// `hls-test-origin`.
    TestOrigin,
}

/// `build` flags.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Output directory.
    #[arg(long, default_value = "target/containers")]
    pub out: PathBuf,
    /// Only these images (repeatable; default both).
    #[arg(long = "image", value_enum)]
    pub images: Vec<Which>,
    /// `hls-swarm` to put in the image (default: next to hls-containers, then PATH).
    #[arg(long)]
    pub swarm_bin: Option<PathBuf>,
    /// `hls-origin` to put in the image (default: next to hls-containers, then PATH).
    #[arg(long)]
    pub origin_bin: Option<PathBuf>,
    /// Load each image with `podman load` when podman is installed (says so when it is not).
    #[arg(long)]
    pub load: bool,
}

/// How the origin container is networked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// Podman's default network, ports published on 127.0.0.1 only.
    Publish,
    /// Anything else podman's `--network` takes (`host`, `ns:/run/netns/NAME`, …).
    Other(String),
}

fn parse_network(s: &str) -> Result<Network, String> {
    match s {
        "" => Err("empty network mode (publish, host, ns:PATH, …)".into()),
        "publish" => Ok(Network::Publish),
        other => Ok(Network::Other(other.to_owned())),
    }
}

/// `run-origin` flags.
#[derive(Debug, Clone, Args)]
pub struct RunOriginArgs {
    /// Container name.
    #[arg(long, default_value = spec::TEST_ORIGIN)]
    pub name: String,
    /// Image.
    #[arg(long, default_value = "localhost/hls-test-origin:latest")]
    pub image: String,
    /// hls-origin profile (HLS_ORIGIN_PROFILE).
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// `encode` or `replay` (HLS_ORIGIN_SOURCE).
    #[arg(long, default_value = "encode")]
    pub source: String,
    /// `publish` (17080, 9100, 9113 on 127.0.0.1), or a podman network mode (`host`, `ns:PATH`).
    #[arg(long, default_value = "publish", value_parser = parse_network)]
    pub network: Network,
    /// How long to wait for the healthcheck to pass.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Runs `cli`, writing progress to `out` and problems to `err`; returns the exit code.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let result = match cli.command {
        Command::Build(a) => build(&a, out),
        Command::PodmanConf { file } => Conf::for_this_host().write(&file).map(|p| {
            let _ = writeln!(out, "wrote {} (use it as CONTAINERS_CONF)", p.display());
            0
        }),
        Command::RunOrigin(a) => run_origin(&a, out, err),
        Command::StopOrigin { name } => stop_origin(&name, out),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let mut msg = format!("hls-containers: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            let _ = writeln!(err, "{msg}");
            1
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Builds `images` into `dir/<name>.tar`, with stripped copies in a scratch directory inside
/// `dir` that is removed afterwards.
///
/// # Errors
/// Anything [`archive::write`] raises.
pub fn build_images(images: &[Image], dir: &Path) -> Result<Vec<archive::Written>, Error> {
    std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    let scratch = dir.join(format!(".scratch-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(io("cannot create", &scratch))?;
    let result = images
        .iter()
        .map(|img| archive::write(img, &dir.join(format!("{}.tar", img.name)), &scratch))
        .collect();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn build(a: &BuildArgs, out: &mut dyn Write) -> Result<u8, Error> {
    let inputs = Inputs::discover(&Overrides { swarm: a.swarm_bin.clone(), origin: a.origin_bin.clone() })?;
    let which =
        if a.images.is_empty() { vec![Which::SwarmClient, Which::TestOrigin] } else { a.images.clone() };
    let images: Vec<Image> = which
        .iter()
        .map(|w| match w {
            Which::SwarmClient => Image::swarm_client(&inputs),
            Which::TestOrigin => Image::test_origin(&inputs),
        })
        .collect();
    let started = Instant::now();
    let written = build_images(&images, &a.out)?;
    for w in &written {
        let _ = writeln!(
            out,
            "{}: {} ({}, layer {} with {} entries, {} saved by strip)\n  id {}",
            w.reference,
            w.path.display(),
            mib(w.bytes),
            mib(w.layer_bytes),
            w.entries,
            mib(w.stripped_bytes),
            w.id
        );
    }
    let _ = writeln!(out, "built in {:.1} s", started.elapsed().as_secs_f64());
    if a.load {
        match podman::find() {
            None => {
                let _ = writeln!(
                    out,
                    "podman not found: not loaded (podman load -i FILE, or docker load -i FILE)"
                );
            }
            Some(p) => {
                let podman = Podman::new(p);
                for w in &written {
                    let _ = writeln!(out, "{}", podman.load(&w.path)?);
                }
            }
        }
    }
    Ok(0)
}

/// `podman run` arguments for the origin container.
#[must_use]
pub fn origin_run_args(a: &RunOriginArgs) -> Vec<String> {
    // No --rm: when the origin exits early its log is still there to print; stop-origin and
    // a failed start remove the container.
    let mut args: Vec<String> = ["run", "--detach", "--name", &a.name].map(str::to_owned).to_vec();
    match &a.network {
        Network::Publish => {
            for port in [spec::HLS_PORT, spec::NODE_EXPORTER_PORT, spec::NGINX_EXPORTER_PORT] {
                args.extend(["--publish".into(), format!("127.0.0.1:{port}:{port}")]);
            }
        }
        Network::Other(mode) => args.extend(["--network".into(), mode.clone()]),
    }
    args.extend(["--env".into(), format!("HLS_ORIGIN_PROFILE={}", a.profile)]);
    args.extend(["--env".into(), format!("HLS_ORIGIN_SOURCE={}", a.source)]);
    args.push(a.image.clone());
    args
}

/// Polls the image's own healthcheck (`podman healthcheck run`, curl inside the container,
/// so it works for every network mode) until it passes, the container stops, or `timeout`.
///
/// # Errors
/// The container is gone or the time is up; the message says which.
pub fn wait_healthy(podman: &Podman, name: &str, timeout: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        if podman.output(&["healthcheck", "run", name]).is_ok() {
            return Ok(started.elapsed());
        }
        match podman.inspect(name, "{{.State.Running}}") {
            Ok(s) if s == "true" => {}
            Ok(_) => return Err("the container stopped before it was healthy".into()),
            Err(e) => return Err(format!("the container is gone before it was healthy ({e})")),
        }
        if started.elapsed() >= timeout {
            return Err(format!("not healthy after {}", humantime::format_duration(timeout)));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn run_origin(a: &RunOriginArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8, Error> {
    let podman = Podman::new(podman::find().ok_or(Error::ProgramNotFound {
        name: "podman",
        looked: "PATH".into(),
        hint: "install podman (scripts/install-deps --test)",
    })?);
    match podman.inspect(&a.name, "{{.State.Running}}").as_deref() {
        Ok("true") => {
            let _ =
                writeln!(err, "hls-containers: {} is already running (stop it: make container-stop)", a.name);
            return Ok(3);
        }
        // A stopped one from an earlier run that ended on its own.
        Ok(_) => podman.remove_containers(&[&a.name])?,
        Err(_) => {}
    }
    let id = podman.output(&origin_run_args(a))?;
    let _ = writeln!(out, "started {} ({})", a.name, id.get(..12).unwrap_or(&id));
    match wait_healthy(&podman, &a.name, a.timeout) {
        Ok(took) => {
            let _ = writeln!(out, "healthy after {:.1} s", took.as_secs_f64());
            if a.network == Network::Publish {
                let _ = writeln!(
                    out,
                    "  http://127.0.0.1:{}/stream.m3u8\n  node exporter http://127.0.0.1:{}/metrics, nginx exporter http://127.0.0.1:{}/metrics",
                    spec::HLS_PORT,
                    spec::NODE_EXPORTER_PORT,
                    spec::NGINX_EXPORTER_PORT
                );
            }
            let _ = writeln!(
                out,
                "stop it with: hls-containers stop-origin --name {} (make container-stop)",
                a.name
            );
            Ok(0)
        }
        Err(why) => {
            let logs = podman.logs(&a.name, 20);
            let _ = writeln!(err, "hls-containers: {}: {why}\n{logs}", a.name);
            let _ = podman.remove_containers(&[&a.name]);
            Ok(3)
        }
    }
}

fn stop_origin(name: &str, out: &mut dyn Write) -> Result<u8, Error> {
    let podman = Podman::new(podman::find().ok_or(Error::ProgramNotFound {
        name: "podman",
        looked: "PATH".into(),
        hint: "install podman (scripts/install-deps --test)",
    })?);
    if podman.inspect(name, "{{.State.Running}}").is_err() {
        let _ = writeln!(out, "{name} is not running");
        return Ok(0);
    }
    let started = Instant::now();
    podman.output(&["stop", "--ignore", "--time", "10", name])?;
    podman.remove_containers(&[name])?;
    let _ = writeln!(out, "stopped {name} in {:.1} s", started.elapsed().as_secs_f64());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_ports_are_published_on_loopback_only() {
        let cli = Cli::try_parse_from(["hls-containers", "run-origin"]).unwrap();
        let Command::RunOrigin(a) = cli.command else { panic!("parsed {cli:?}") };
        let args = origin_run_args(&a);
        let published: Vec<_> =
            args.windows(2).filter(|w| w[0] == "--publish").map(|w| w[1].as_str()).collect();
        assert_eq!(published, ["127.0.0.1:17080:17080", "127.0.0.1:9100:9100", "127.0.0.1:9113:9113"]);
        assert_eq!(args.last().map(String::as_str), Some("localhost/hls-test-origin:latest"));
        assert!(args.contains(&"--detach".to_owned()));
    }

    #[test]
    fn other_network_modes_publish_nothing() {
        let cli = Cli::try_parse_from([
            "hls-containers",
            "run-origin",
            "--network",
            "ns:/run/netns/x",
            "--profile",
            "stress",
        ])
        .unwrap();
        let Command::RunOrigin(a) = cli.command else { panic!("parsed {cli:?}") };
        let args = origin_run_args(&a);
        assert!(!args.iter().any(|x| x == "--publish"));
        assert!(args.windows(2).any(|w| w == ["--network", "ns:/run/netns/x"]));
        assert!(args.contains(&"HLS_ORIGIN_PROFILE=stress".to_owned()));
    }

    #[test]
    fn build_takes_one_image_and_bad_names_are_usage_errors() {
        let cli =
            Cli::try_parse_from(["hls-containers", "build", "--image", "swarm-client", "--load"]).unwrap();
        let Command::Build(a) = cli.command else { panic!("parsed {cli:?}") };
        assert_eq!(a.images, [Which::SwarmClient]);
        assert!(a.load);
        let e = Cli::try_parse_from(["hls-containers", "build", "--image", "nginx"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue, "{e}");
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert!(text.contains("'nginx'") && text.contains("swarm-client"), "{text}");
    }
}
