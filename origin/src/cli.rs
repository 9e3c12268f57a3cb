//! Command line: `serve`, `profiles`, `config`. `main.rs` only parses and calls [`run`].

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Config, Source};
use crate::encoder::{self, Output};
use crate::error::Error;
use crate::nginx::{self, Layout};
use crate::profile::{Overrides, Profile, NAMES};
use crate::service;

/// The lab's test HLS origin: ffmpeg + nginx + Prometheus exporters, supervised.
#[derive(Debug, Parser)]
#[command(name = "hls-origin", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the origin until SIGINT/SIGTERM; prints `ready URL` once the playlist has 3 segments.
    Serve(Box<ServeArgs>),
    /// List the profiles and their parameters.
    Profiles,
    /// Print the generated nginx config and ffmpeg argv for a profile.
    Config(Box<ConfigArgs>),
}

/// Media source, as a flag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    /// Real-time ffmpeg encode.
    Encode,
    /// Encode a short loop once, republish it as live (nearly no CPU).
    Replay,
}

impl From<SourceArg> for Source {
    fn from(s: SourceArg) -> Source {
        match s {
            SourceArg::Encode => Source::Encode,
            SourceArg::Replay => Source::Replay,
        }
    }
}

/// Profile, source and overrides.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Stream")]
pub struct StreamArgs {
    /// Profile name (see `hls-origin profiles`).
    #[arg(long, env = "HLS_ORIGIN_PROFILE", default_value = "default")]
    pub profile: String,
    /// Live encode, or replay of a pre-encoded loop [default: encode; replay for ll-hls,
    /// which serves only a loop].
    #[arg(long, env = "HLS_ORIGIN_SOURCE", value_enum)]
    pub source: Option<SourceArg>,
    /// Picture width (ABR: the top rung; lower rungs keep their proportion). Without
    /// --bitrate, the bitrate scales with the picture area.
    #[arg(long, env = "HLS_ORIGIN_WIDTH")]
    pub width: Option<u32>,
    /// Picture height (ABR: the top rung).
    #[arg(long, env = "HLS_ORIGIN_HEIGHT")]
    pub height: Option<u32>,
    /// Frames per second.
    #[arg(long, env = "HLS_ORIGIN_FPS")]
    pub fps: Option<u32>,
    /// Video bitrate in kbit/s (ABR: the top rung; lower rungs scale with it).
    #[arg(long, env = "HLS_ORIGIN_BITRATE")]
    pub bitrate: Option<u32>,
    /// Segment length in seconds.
    #[arg(long, env = "HLS_ORIGIN_SEGMENT_SECONDS")]
    pub segment_seconds: Option<u32>,
    /// Segments listed in each media playlist.
    #[arg(long, env = "HLS_ORIGIN_WINDOW")]
    pub window: Option<u32>,
    /// Segments in the replay loop.
    #[arg(long, env = "HLS_ORIGIN_LOOP_SEGMENTS", default_value_t = 5)]
    pub loop_segments: u32,
}

impl StreamArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            width: self.width,
            height: self.height,
            fps: self.fps,
            bitrate_kbps: self.bitrate,
            segment_secs: self.segment_seconds,
            window: self.window,
        }
    }
}

/// Addresses.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Network")]
pub struct NetArgs {
    /// HLS listen address (port 0 picks a free port).
    #[arg(long, env = "HLS_ORIGIN_LISTEN", default_value = "127.0.0.1:17080")]
    pub listen: SocketAddr,
    /// prometheus-node-exporter listen address.
    #[arg(long, env = "HLS_ORIGIN_NODE_EXPORTER", default_value = "127.0.0.1:9100")]
    pub node_exporter: SocketAddr,
    /// Do not run prometheus-node-exporter.
    #[arg(long, env = "HLS_ORIGIN_NO_NODE_EXPORTER")]
    pub no_node_exporter: bool,
    /// prometheus-nginx-exporter listen address.
    #[arg(long, env = "HLS_ORIGIN_NGINX_EXPORTER", default_value = "127.0.0.1:9113")]
    pub nginx_exporter: SocketAddr,
    /// Do not run prometheus-nginx-exporter.
    #[arg(long, env = "HLS_ORIGIN_NO_NGINX_EXPORTER")]
    pub no_nginx_exporter: bool,
    /// hls-origin's own JSON status listener (nginx proxies `/health` to it; port 0 = any).
    #[arg(long, env = "HLS_ORIGIN_STATUS_LISTEN", default_value = "127.0.0.1:0")]
    pub status_listen: SocketAddr,
    /// Allow `POST /fault/http` (a status for a segment range) on the status listener: nginx
    /// then checks a marker file per segment request and does not cache segment descriptors
    #[arg(long, env = "HLS_ORIGIN_FAULT_INJECTION")]
    pub fault_injection: bool,
    /// Also serve HTTPS here (the same streams; health and the exporters stay on --listen).
    /// Needs --tls-cert and --tls-key
    #[arg(long, env = "HLS_ORIGIN_TLS_LISTEN", requires_all = ["tls_cert", "tls_key"])]
    pub tls_listen: Option<SocketAddr>,
    /// Certificate chain for --tls-listen (PEM)
    #[arg(long, env = "HLS_ORIGIN_TLS_CERT", requires = "tls_listen", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// Private key for --tls-listen (PEM)
    #[arg(long, env = "HLS_ORIGIN_TLS_KEY", requires = "tls_listen", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
}

/// `serve` flags.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub stream: StreamArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub net: NetArgs,
    /// Parent of the origin's temporary directory [default: /dev/shm, else the temp dir].
    #[arg(long, env = "HLS_ORIGIN_WORK_DIR", help_heading = "Files")]
    pub work_dir: Option<PathBuf>,
    /// Replay loop cache [default: $XDG_CACHE_HOME/hls-origin or ~/.cache/hls-origin].
    #[arg(long, env = "HLS_ORIGIN_CACHE_DIR", help_heading = "Files")]
    pub cache_dir: Option<PathBuf>,
    /// Keep logs here instead of in the temporary directory (removed at exit).
    #[arg(long, env = "HLS_ORIGIN_LOG_DIR", help_heading = "Files")]
    pub log_dir: Option<PathBuf>,
    /// Give up if not ready within this time (e.g. `90s`, `3m`).
    #[arg(long, env = "HLS_ORIGIN_READY_TIMEOUT", default_value = "90s", value_parser = humantime::parse_duration)]
    pub ready_timeout: Duration,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub programs: ProgramArgs,
    /// Time between SIGTERM and SIGKILL when stopping a child.
    #[arg(long, env = "HLS_ORIGIN_STOP_GRACE", default_value = "3s", value_parser = humantime::parse_duration)]
    pub stop_grace: Duration,
}

/// Executables (found on `PATH` or at Debian's paths when not given).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Programs")]
pub struct ProgramArgs {
    /// ffmpeg executable.
    #[arg(long, env = "HLS_ORIGIN_FFMPEG")]
    pub ffmpeg: Option<PathBuf>,
    /// nginx executable.
    #[arg(long, env = "HLS_ORIGIN_NGINX")]
    pub nginx: Option<PathBuf>,
    /// prometheus-node-exporter executable.
    #[arg(long, env = "HLS_ORIGIN_NODE_EXPORTER_BIN")]
    pub node_exporter_bin: Option<PathBuf>,
    /// prometheus-nginx-exporter executable.
    #[arg(long, env = "HLS_ORIGIN_NGINX_EXPORTER_BIN")]
    pub nginx_exporter_bin: Option<PathBuf>,
}

/// `config` flags.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub stream: StreamArgs,
    /// HLS listen address written into the config.
    #[arg(long, default_value = "127.0.0.1:17080")]
    pub listen: SocketAddr,
    /// Directory the paths in the printed config point into.
    #[arg(long, default_value = "/tmp/hls-origin")]
    pub dir: PathBuf,
}

impl ServeArgs {
    /// The validated [`Config`].
    ///
    /// # Errors
    /// Unknown profile or invalid override.
    pub fn config(&self) -> Result<Config, Error> {
        let mut c = Config::new(&self.stream.profile)?;
        c.overrides = self.stream.overrides();
        c.effective_profile()?;
        if let Some(s) = self.stream.source {
            c.source = s.into();
        }
        c.loop_segments = self.stream.loop_segments;
        c.listen = self.net.listen;
        let p = &self.programs;
        if let Some(x) = &p.ffmpeg {
            c.ffmpeg.clone_from(x);
        }
        if let Some(x) = &p.nginx {
            c.nginx.clone_from(x);
        }
        // An exporter runs unless switched off; a default one whose binary is missing is
        // skipped with a warning, an explicitly given binary must exist.
        let found = |given: &Option<PathBuf>, default: bool, name: &str| {
            let ok = given.is_some() || default;
            if !ok {
                tracing::warn!("{name} not found; running without it (--no-{name} silences this)");
            }
            ok
        };
        let node = !self.net.no_node_exporter
            && found(&p.node_exporter_bin, c.node_exporter.is_some(), "node-exporter");
        let nginx_exp = !self.net.no_nginx_exporter
            && found(&p.nginx_exporter_bin, c.nginx_exporter.is_some(), "nginx-exporter");
        if let Some(x) = &p.node_exporter_bin {
            c.node_exporter_bin.clone_from(x);
        }
        if let Some(x) = &p.nginx_exporter_bin {
            c.nginx_exporter_bin.clone_from(x);
        }
        c.node_exporter = node.then_some(self.net.node_exporter);
        c.nginx_exporter = nginx_exp.then_some(self.net.nginx_exporter);
        c.status_listen = self.net.status_listen;
        c.fault_injection = self.net.fault_injection;
        if let (Some(listen), Some(cert), Some(key)) =
            (self.net.tls_listen, &self.net.tls_cert, &self.net.tls_key)
        {
            c.tls = Some(crate::config::TlsListen { listen, cert: cert.clone(), key: key.clone() });
        }
        if let Some(d) = &self.work_dir {
            c.work_root.clone_from(d);
        }
        if let Some(d) = &self.cache_dir {
            c.cache_dir.clone_from(d);
        }
        c.log_dir.clone_from(&self.log_dir);
        c.ready_timeout = self.ready_timeout;
        c.stop_grace = self.stop_grace;
        Ok(c)
    }
}

/// The layout `config` prints and `nginx -t` checks for `profile`: everything under `dir`
/// (an LL-HLS profile's server shown at 127.0.0.1:17082).
#[must_use]
pub fn preview_layout(listen: SocketAddr, dir: &Path, profile: &Profile) -> Layout {
    Layout {
        listen,
        root: dir.join("hls"),
        prefix: dir.join("nginx"),
        logs: dir.join("logs"),
        status: "127.0.0.1:17081".parse().unwrap_or(listen),
        faults: None,
        tls: None,
        llhls: profile.part_ms.map(|_| SocketAddr::from(([127, 0, 0, 1], 17082))),
    }
}

/// Text of `hls-origin config`.
///
/// # Errors
/// Unknown profile or invalid override.
pub fn render_config(args: &ConfigArgs) -> Result<String, Error> {
    let mut profile = Profile::named(&args.stream.profile)?;
    profile.apply(&args.stream.overrides())?;
    let layout = preview_layout(args.listen, &args.dir, &profile);
    let llhls = crate::llhls::Settings::of(&profile);
    let source = match (args.stream.source, &llhls) {
        (Some(SourceArg::Encode), Some(_)) => {
            return Err(Error::InvalidOverride {
                what: "source",
                value: "encode".into(),
                expected: format!("replay: profile {} serves a loop encoded once", profile.name),
            });
        }
        (None, None) => SourceArg::Encode,
        (None, Some(_)) => SourceArg::Replay,
        (Some(s), _) => s,
    };
    // An LL-HLS ladder encodes one loop per rendition: one ffmpeg line each.
    let argvs = match crate::llhls::Settings::ladder(&profile) {
        Some(rungs) if profile.is_abr() => rungs
            .iter()
            .map(|(v, s)| crate::llhls::source::args(s, &args.dir.join(format!("cache/{}/loop.mp4", v.name))))
            .collect(),
        Some(_) | None => vec![],
    };
    let argv = match &llhls {
        Some(settings) => crate::llhls::source::args(settings, &args.dir.join("cache/loop.mp4")),
        None => {
            let output = match source {
                SourceArg::Encode => Output::Live,
                SourceArg::Replay => {
                    Output::Loop { seconds: args.stream.loop_segments.max(2) * profile.segment_secs }
                }
            };
            encoder::args(&profile, &layout.root, output)
        }
    };
    let quoted = |argv: &[std::ffi::OsString]| -> String {
        let words: Vec<String> = argv
            .iter()
            .map(|a| {
                let s = a.to_string_lossy();
                if s.contains([' ', ';', '[', '*', '(', ')']) {
                    format!("'{s}'")
                } else {
                    s.into_owned()
                }
            })
            .collect();
        format!("# ffmpeg {}\n", words.join(" "))
    };
    let lines: String =
        if argvs.is_empty() { quoted(&argv) } else { argvs.iter().map(|a| quoted(a)).collect() };
    Ok(format!(
        "# ffmpeg ({source})\n{}\n# nginx {}\n{}",
        lines,
        nginx::args(&layout).iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" "),
        nginx::config(&profile, &layout),
        source = match (source, &llhls) {
            (_, Some(_)) =>
                "LL-HLS loop, encoded once; the playlist and media are served by hls-origin \
                             (here at 127.0.0.1:17082) behind nginx",
            (SourceArg::Encode, None) => "live encode",
            (SourceArg::Replay, None) => "replay loop, encoded once",
        }
    ))
}

/// Text of `hls-origin profiles`.
#[must_use]
pub fn render_profiles() -> String {
    let mut s = String::new();
    for name in NAMES {
        if let Ok(p) = Profile::named(name) {
            s.push_str(&p.to_string());
            s.push('\n');
        }
    }
    s
}

/// Runs a parsed command. `serve` returns after `shutdown` resolves and everything stopped.
///
/// # Errors
/// Whatever configuration or start-up reports.
pub async fn run<W, F>(cli: Cli, out: &mut W, shutdown: F) -> Result<(), Error>
where
    W: Write + ?Sized,
    F: Future<Output = ()>,
{
    let write = |out: &mut W, text: &str| {
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    };
    match cli.command {
        Command::Profiles => write(out, &render_profiles()),
        Command::Config(args) => write(out, &render_config(&args)?),
        Command::Serve(args) => {
            let origin = service::start(args.config()?).await?;
            write(out, &format!("ready {}\n", origin.playlist_url()));
            if let Some(tls) = origin.tls_listen() {
                let path = origin.profile().entry_playlist();
                write(out, &format!("https https://{}/{path}\n", crate::exporters::local_address(tls)));
            }
            shutdown.await;
            tracing::info!("shutting down");
            origin.stop().await?;
        }
    }
    Ok(())
}

/// The documented exit code for an error: 2 for bad input, 1 for everything else.
#[must_use]
pub fn exit_code(e: &Error) -> u8 {
    match e {
        Error::UnknownProfile { .. } | Error::InvalidOverride { .. } => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Result<Config, Error> {
        let cli = Cli::try_parse_from(["hls-origin", "serve"].iter().chain(args)).unwrap();
        let Command::Serve(s) = cli.command else { panic!("not serve") };
        s.config()
    }

    #[test]
    fn serve_flags_become_a_config() {
        let c = serve(&[
            "--profile",
            "low-latency",
            "--source",
            "replay",
            "--listen",
            "0.0.0.0:8080",
            "--height",
            "360",
            "--window",
            "4",
            "--no-node-exporter",
            "--nginx-exporter",
            "127.0.0.1:9999",
            "--nginx-exporter-bin",
            "/opt/exporter",
            "--ready-timeout",
            "2m",
        ])
        .unwrap();
        assert_eq!(c.profile.name, "low-latency");
        assert_eq!(c.source, Source::Replay);
        assert_eq!(c.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.node_exporter, None);
        assert_eq!(c.nginx_exporter, Some("127.0.0.1:9999".parse().unwrap()));
        assert_eq!(c.nginx_exporter_bin, PathBuf::from("/opt/exporter"));
        assert_eq!(c.ready_timeout, Duration::from_secs(120));
        let p = c.effective_profile().unwrap();
        assert_eq!((p.variants[0].width, p.variants[0].height, p.window), (640, 360, 4));
    }

    #[test]
    fn defaults_are_the_seed_ports() {
        let cli = Cli::try_parse_from(["hls-origin", "serve"]).unwrap();
        let Command::Serve(s) = cli.command else { panic!("not serve") };
        let seed = |a: &str| -> SocketAddr { a.parse().unwrap() };
        assert_eq!(
            (s.net.listen, s.net.node_exporter, s.net.nginx_exporter, s.net.status_listen),
            (seed("127.0.0.1:17080"), seed("127.0.0.1:9100"), seed("127.0.0.1:9113"), seed("127.0.0.1:0"))
        );
        let c = s.config().unwrap();
        assert_eq!(c.listen, seed("127.0.0.1:17080"));
        assert_eq!(c.source, Source::Encode);
        // An exporter runs on its seed port when its binary is installed, and is left out (not
        // an error) when it is not.
        let installed = |names: &[&str]| crate::exporters::find(names).is_some();
        let node = installed(&crate::exporters::NODE_EXPORTER).then(|| seed("127.0.0.1:9100"));
        let nginx = installed(&crate::exporters::NGINX_EXPORTER).then(|| seed("127.0.0.1:9113"));
        assert_eq!((c.node_exporter, c.nginx_exporter), (node, nginx));
    }

    #[test]
    fn bad_values_are_exit_code_two() {
        let e = serve(&["--width", "333"]).unwrap_err();
        assert_eq!(exit_code(&e), 2);
        let e = serve(&["--profile", "huge"]).unwrap_err();
        assert_eq!(exit_code(&e), 2);
        assert!(e.to_string().contains("known profiles: default, low-latency"), "{e}");
    }

    #[test]
    fn config_of_an_ll_hls_ladder_shows_one_loop_encode_per_rendition() {
        let cli = Cli::try_parse_from(["hls-origin", "config", "--profile", "ll-hls-abr"]).unwrap();
        let Command::Config(args) = cli.command else { panic!("parsed as {:?}", cli.command) };
        let text = render_config(&args).unwrap();
        let encodes: Vec<&str> = text.lines().filter(|l| l.starts_with("# ffmpeg -hide_banner")).collect();
        assert_eq!(encodes.len(), 3, "{text}");
        for (line, size) in encodes.iter().zip(["1280x720", "854x480", "640x360"]) {
            assert!(line.contains(&format!("testsrc2=size={size}:rate=30")), "{line}");
            assert!(line.contains("-frag_duration 333333"), "the same parts in every rendition: {line}");
        }
        assert!(text.contains("location ^~ /360p/ {"), "{text}");
    }

    #[test]
    fn profiles_snapshot() {
        insta::assert_snapshot!("profiles", render_profiles());
    }

    #[test]
    fn profiles_lists_every_profile() {
        let text = render_profiles();
        for name in NAMES {
            assert!(text.lines().any(|l| l.starts_with(name)), "{name} missing:\n{text}");
        }
    }
}
