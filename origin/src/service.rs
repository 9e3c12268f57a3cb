//! The running origin: start-up in order (from a [`Config`]), readiness, and orderly shutdown.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::task::JoinHandle;

use crate::config::{Config, Source};
use crate::encoder::{self, Output};
use crate::error::Error;
use crate::exporters;
use crate::health::{self, Facts};
use crate::http;
use crate::nginx::{self, Layout};
use crate::profile::Profile;
use crate::replay;
use crate::supervisor::{Board, ChildStatus, Spec, Supervisor};

/// A running origin. Stop it with [`Origin::stop`]; dropping it stops the children in the
/// background (and the parent-death signal covers a crash).
#[derive(Debug)]
pub struct Origin {
    profile: Profile,
    listen: SocketAddr,
    tls: Option<crate::config::TlsListen>,
    node_exporter: Option<SocketAddr>,
    nginx_exporter: Option<SocketAddr>,
    /// The HLS ports, held for nginx (see `hold_for_nginx`).
    _held: Vec<Socket>,
    status: Option<SocketAddr>,
    tmp: Option<tempfile::TempDir>,
    hls_dir: PathBuf,
    log_dir: PathBuf,
    nginx_conf: PathBuf,
    supervisors: Vec<Supervisor>,
    publisher: Option<JoinHandle<()>>,
    janitor: Option<JoinHandle<()>>,
    status_task: Option<JoinHandle<()>>,
    facts: Arc<Facts>,
    grace: Duration,
}

/// Holds `addr` (port 0: a free port) for nginx until the origin stops: a socket bound with
/// `SO_REUSEPORT` but never listening, so it receives no connections, nginx (`listen …
/// reuseport`, same user) binds beside it, and nothing else can take the port in between,
/// not even an outgoing connection's ephemeral port. A restarted nginx finds it free again.
/// (Handing nginx the socket itself, `NGINX=fd;`, crashes nginx 1.22 with `master_process off`.)
fn hold_for_nginx(addr: SocketAddr) -> Result<Socket, Error> {
    let bound = || {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.bind(&addr.into())?;
        Ok(s)
    };
    bound().map_err(|source| Error::Bind { addr, source })
}

/// The address `socket` is bound to.
fn bound_addr(socket: &Socket, addr: SocketAddr) -> Result<SocketAddr, Error> {
    let missing = || std::io::Error::other("not an inet socket");
    let local = socket.local_addr().map_err(|source| Error::Bind { addr, source })?;
    local.as_socket().ok_or_else(missing).map_err(|source| Error::Bind { addr, source })
}

/// Checks that an explicit `addr` is free now, so a busy port is reported before anything
/// starts (port 0 is chosen later, just before the child starts: see `start_exporter`).
fn check_free(addr: SocketAddr) -> Result<(), Error> {
    if addr.port() == 0 {
        return Ok(());
    }
    TcpListener::bind(addr).map(drop).map_err(|source| Error::Bind { addr, source })
}

fn local_addr(l: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, Error> {
    l.local_addr().map_err(|source| Error::Bind { addr, source })
}

/// Starts everything and returns once the origin is ready.
///
/// Order: status listener, media source (live encoder, or loop encode + publisher), nginx,
/// readiness (every media playlist lists `ready_segments` segments, fetched through nginx),
/// then the exporters (each must answer `/metrics`). On any failure everything already
/// started is stopped and the temporary directory removed before the error is returned.
///
/// # Errors
/// Invalid overrides, a missing binary, a busy port, a child that keeps failing, or
/// `ready_timeout` passing.
pub async fn start(config: Config) -> Result<Origin, Error> {
    let profile = config.effective_profile()?;
    if profile.part_ms.is_some() && config.source == Source::Encode {
        return Err(Error::InvalidOverride {
            what: "source",
            value: "encode".into(),
            expected: format!("replay: profile {} serves a loop encoded once", profile.name),
        });
    }
    if let Some(settings) = crate::llhls::Settings::of(&profile) {
        settings.validate()?;
    }
    let plain = hold_for_nginx(config.listen)?;
    let listen = bound_addr(&plain, config.listen)?;
    let mut sockets = vec![plain];
    let tls = match &config.tls {
        Some(t) => {
            for path in [&t.cert, &t.key] {
                std::fs::metadata(path).map_err(|source| Error::File { path: path.clone(), source })?;
            }
            let socket = hold_for_nginx(t.listen)?;
            let tls_listen = bound_addr(&socket, t.listen)?;
            sockets.push(socket);
            Some(crate::config::TlsListen { listen: tls_listen, ..t.clone() })
        }
        None => None,
    };
    for addr in [config.node_exporter, config.nginx_exporter].into_iter().flatten() {
        check_free(addr)?;
    }
    sweep_stale(&config.work_root);
    let tmp = tempfile::Builder::new()
        .prefix(DIR_PREFIX)
        .tempdir_in(&config.work_root)
        .map_err(|source| Error::TempDir { path: config.work_root.clone(), source })?;
    // Written whole (temp file + rename) so a concurrent sweep never reads a partial pid.
    let owner = tmp.path().join(OWNER_FILE);
    let owner_tmp = tmp.path().join(".owner.pid.tmp");
    std::fs::write(&owner_tmp, std::process::id().to_string())
        .and_then(|()| std::fs::rename(&owner_tmp, &owner))
        .map_err(|source| Error::File { path: owner, source })?;
    let hls_dir = tmp.path().join("hls");
    let prefix = tmp.path().join("nginx");
    let log_dir = config.log_dir.clone().unwrap_or_else(|| tmp.path().join("logs"));
    for d in [&hls_dir, &prefix, &log_dir] {
        std::fs::create_dir_all(d).map_err(|source| Error::File { path: d.clone(), source })?;
    }
    let facts = Arc::new(Facts {
        instance: format!("{}-{:08x}", std::process::id(), rand::random::<u32>()),
        profile: profile.name.clone(),
        source: config.source,
        playlist_url: format!("http://{}/{}", exporters::local_address(listen), profile.entry_playlist()),
        ready: false.into(),
        board: Board::default(),
        hold: replay::Hold::default(),
        hls_addr: exporters::local_address(listen),
        faults_dir: config.fault_injection.then(|| tmp.path().join("faults")),
        variants: if profile.is_abr() {
            profile.variants.iter().map(|v| v.name.clone()).collect()
        } else {
            Vec::new()
        },
        segment_fault: std::sync::Mutex::new(None),
        llhls: std::sync::OnceLock::new(),
    });
    let mut origin = Origin {
        profile,
        listen,
        tls,
        node_exporter: config.node_exporter,
        nginx_exporter: config.nginx_exporter,
        _held: sockets,
        status: None,
        nginx_conf: prefix.join("nginx.conf"),
        tmp: Some(tmp),
        hls_dir,
        log_dir,
        supervisors: Vec::new(),
        publisher: None,
        janitor: None,
        status_task: None,
        facts,
        grace: config.stop_grace,
    };
    match tokio::time::timeout(config.ready_timeout, origin.bring_up(&config, prefix)).await {
        Ok(Ok(())) => {
            origin.facts.ready.store(true, Ordering::Release);
            tracing::info!(url = %origin.playlist_url(), "origin ready");
            Ok(origin)
        }
        Ok(Err(e)) => {
            let _ = origin.stop().await;
            Err(e)
        }
        Err(_elapsed) => {
            let reason = origin.not_ready_reason().await;
            let _ = origin.stop().await;
            Err(Error::NotReady { waited: config.ready_timeout, reason })
        }
    }
}

const DIR_PREFIX: &str = "hls-origin-";
/// Starts of an exporter on a port of its own choosing before giving up (see `start_exporter`).
const PORT_ATTEMPTS: u32 = 3;
const OWNER_FILE: &str = "owner.pid";

/// Removes directories left by origins that were killed with SIGKILL (their owner pid is gone).
/// Returns how many were removed.
pub fn sweep_stale(work_root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(work_root) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let Ok(pid) = std::fs::read_to_string(e.path().join(OWNER_FILE)) else {
            continue;
        };
        let Ok(pid) = pid.trim().parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            tracing::info!(dir = %e.path().display(), pid, "removing the directory of a dead origin");
            if std::fs::remove_dir_all(e.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// Last `n` lines of a log file, for error messages.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Origin {
    async fn bring_up(&mut self, config: &Config, prefix: PathBuf) -> Result<(), Error> {
        let (status, task) = health::serve(config.status_listen, self.facts.clone()).await?;
        tracing::info!(addr = %status, "status listener: GET /health, POST /hold?seconds=N");
        self.status = Some(status);
        self.status_task = Some(task);
        let board = self.facts.board.clone();
        let mut llhls = None;
        match config.source {
            _ if self.profile.part_ms.is_some() => llhls = Some(self.start_llhls(config).await?),
            Source::Encode => {
                let spec = Spec {
                    name: "ffmpeg".into(),
                    program: config.ffmpeg.clone(),
                    args: encoder::args(&self.profile, &self.hls_dir, Output::Live),
                    log: self.log_dir.join("ffmpeg.log"),
                };
                self.supervisors.push(Supervisor::start(spec, board.clone())?);
                let dirs = if self.profile.is_abr() {
                    self.profile.variants.iter().map(|v| self.hls_dir.join(&v.name)).collect()
                } else {
                    vec![self.hls_dir.clone()]
                };
                let seg = u64::from(self.profile.segment_secs);
                let lifetime = u64::from(self.profile.segment_lifetime_secs());
                self.janitor = Some(crate::janitor::spawn(
                    dirs,
                    Duration::from_secs(lifetime + 3 * seg),
                    Duration::from_secs(seg),
                ));
            }
            Source::Replay => {
                let log = self.log_dir.join("ffmpeg-loop.log");
                let lp = replay::prepare(
                    &config.ffmpeg,
                    &self.profile,
                    &config.cache_dir,
                    config.loop_segments,
                    &log,
                )
                .await?;
                self.publisher = Some(replay::publish(
                    lp,
                    self.hls_dir.clone(),
                    &self.profile,
                    board.clone(),
                    &self.facts.hold,
                )?);
                board.set("replay", ChildStatus::task());
            }
        }
        let layout = Layout {
            listen: self.listen,
            root: self.hls_dir.clone(),
            prefix,
            logs: self.log_dir.clone(),
            status,
            faults: self.facts.faults_dir.clone(),
            tls: self.tls.clone(),
            llhls,
        };
        let conf = nginx::config(&self.profile, &layout);
        std::fs::write(layout.conf(), conf).map_err(|source| Error::File { path: layout.conf(), source })?;
        let spec = Spec {
            name: "nginx".into(),
            program: config.nginx.clone(),
            args: nginx::args(&layout),
            log: self.log_dir.join("nginx-stderr.log"),
        };
        self.supervisors.push(Supervisor::start(spec, board.clone())?);
        self.wait_for_playlists(config.ready_segments).await?;
        if let Some(requested) = self.node_exporter {
            let program = config.node_exporter_bin.clone();
            let addr = self.start_exporter("node-exporter", requested, program, exporters::node_args).await?;
            self.node_exporter = Some(addr);
        }
        if let Some(requested) = self.nginx_exporter {
            let (program, hls, profile) =
                (config.nginx_exporter_bin.clone(), self.listen, self.profile.name.clone());
            let args = move |addr| exporters::nginx_args(addr, hls, &profile);
            let addr = self.start_exporter("nginx-exporter", requested, program, args).await?;
            self.nginx_exporter = Some(addr);
        }
        Ok(())
    }

    /// The LL-HLS source: the loop of each rendition (encoded once, cached), their live
    /// timelines on one clock and the server nginx proxies the playlists and media to (the
    /// "publisher" task of this profile). One rendition is served at the root; a ladder under
    /// one directory per rendition, beside a master playlist. Returns the server's address.
    async fn start_llhls(&mut self, config: &Config) -> Result<SocketAddr, Error> {
        use crate::llhls::{self, Ladder, Live, Rendition, Stream};
        let Some(rungs) = llhls::Settings::ladder(&self.profile) else {
            return Err(Error::InvalidOverride {
                what: "profile",
                value: self.profile.name.clone(),
                expected: "an LL-HLS profile".into(),
            });
        };
        let log = self.log_dir.join("ffmpeg-loop.log");
        let mut renditions: Vec<Rendition> = Vec::new();
        for (variant, settings) in &rungs {
            // One at a time: each encode already uses every core.
            let lp = llhls::prepare(&config.ffmpeg, settings, &config.cache_dir, &log).await?;
            let live = Live::new(Arc::new(lp), settings.window);
            let stream = match renditions.first() {
                Some(first) => Stream::sharing_clock(live, &first.stream),
                None => {
                    let ready = u64::try_from(config.ready_segments)
                        .unwrap_or(u64::MAX)
                        .clamp(3, u64::from(settings.window));
                    Stream::new(live, ready)
                }
            };
            renditions.push(Rendition {
                name: variant.name.clone(),
                stream: Arc::new(stream),
                bandwidth: variant.bandwidth_bps(),
                resolution: (variant.width, variant.height),
            });
        }
        let ladder = if self.profile.is_abr() {
            Ladder::new(renditions)?
        } else {
            let Some(only) = renditions.pop() else {
                return Err(Error::InvalidOverride {
                    what: "profile",
                    value: self.profile.name.clone(),
                    expected: "at least one variant".into(),
                });
            };
            Ladder::single(only.stream)
        };
        let ladder = Arc::new(ladder);
        let (addr, task) = llhls::serve_ladder(SocketAddr::from(([127, 0, 0, 1], 0)), ladder.clone()).await?;
        self.publisher = Some(task);
        let _ = self.facts.llhls.set(ladder);
        self.facts.board.set("ll-hls", ChildStatus::task());
        tracing::info!(%addr, renditions = rungs.len(), "LL-HLS server (behind nginx)");
        Ok(addr)
    }

    /// Starts an exporter on `requested` and waits until it answers `/metrics` from a socket
    /// that is its own (not a stranger's on the same port). Port 0 is chosen just before the
    /// start; if something takes it in that moment, the exporter fails to bind and is started
    /// again on another port (at most [`PORT_ATTEMPTS`] times).
    async fn start_exporter(
        &mut self,
        name: &str,
        requested: SocketAddr,
        program: PathBuf,
        args: impl Fn(SocketAddr) -> Vec<std::ffi::OsString>,
    ) -> Result<SocketAddr, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let addr = if requested.port() == 0 {
                let l =
                    TcpListener::bind(requested).map_err(|source| Error::Bind { addr: requested, source })?;
                local_addr(&l, requested)?
            } else {
                requested
            };
            let spec = Spec {
                name: name.into(),
                program: program.clone(),
                args: args(addr),
                log: self.log_dir.join(format!("{name}.log")),
            };
            let log = spec.log.clone();
            let supervisor = Supervisor::start(spec, self.facts.board.clone())?;
            let board = self.facts.board.clone();
            let owned = self
                .wait_for(name, || {
                    let board = board.clone();
                    async move {
                        let r = http::get(exporters::local_address(addr), "/metrics", Duration::from_secs(2))
                            .await;
                        let pid = board.snapshot().get(name).and_then(|row| row.pid);
                        matches!(r, Ok(r) if r.status == 200)
                            && pid.is_some_and(|pid| procgroup::listen::listens_on(pid, addr.port()))
                    }
                })
                .await;
            match owned {
                Ok(()) => {
                    self.supervisors.push(supervisor);
                    return Ok(addr);
                }
                Err(e) => {
                    supervisor.stop(self.grace).await;
                    let taken = tail(&log, 5).contains("address already in use");
                    if !(taken && requested.port() == 0 && attempt < PORT_ATTEMPTS) {
                        return Err(e);
                    }
                    // The next start replaces this one's row on the board.
                    tracing::warn!(child = name, %addr, "the chosen port was taken before the exporter bound it; choosing another");
                }
            }
        }
    }

    /// Polls `probe` until true; fails early if a child keeps crashing.
    async fn wait_for<F, Fut>(&self, what: &str, mut probe: F) -> Result<(), Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        loop {
            if probe().await {
                tracing::debug!(what, took = ?started.elapsed(), "ready");
                return Ok(());
            }
            for (name, row) in self.facts.board.snapshot() {
                if row.restarts >= 3 {
                    let log_tail = row.log.as_deref().map(|l| tail(l, 15)).unwrap_or_default();
                    return Err(Error::ChildFailing {
                        name,
                        last_exit: row.last_exit.unwrap_or_default(),
                        log_tail,
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_for_playlists(&self, min: usize) -> Result<(), Error> {
        let addr = exporters::local_address(self.listen);
        let mut paths = self.profile.media_playlists();
        if self.profile.is_abr() {
            paths.push("master.m3u8".into());
        }
        let instance = self.facts.instance.clone();
        self.wait_for("playlists", || {
            let paths = paths.clone();
            let instance = instance.clone();
            async move {
                // Our nginx, proxying our status listener, and not another server on the port.
                let Ok(h) = http::get(addr, "/health", Duration::from_secs(2)).await else {
                    return false;
                };
                let ours = serde_json::from_slice::<serde_json::Value>(&h.body)
                    .is_ok_and(|v| v["instance"].as_str() == Some(instance.as_str()));
                if !ours {
                    return false;
                }
                for p in paths {
                    let Ok(r) = http::get(addr, &format!("/{p}"), Duration::from_secs(2)).await else {
                        return false;
                    };
                    if r.status != 200 {
                        return false;
                    }
                    if p.ends_with("master.m3u8") {
                        continue;
                    }
                    match kit::playlist::parse_media(&r.text()) {
                        Ok(m) if m.segments.len() >= min => {}
                        _ => return false,
                    }
                }
                true
            }
        })
        .await
    }

    async fn not_ready_reason(&self) -> String {
        let addr = exporters::local_address(self.listen);
        let path = format!("/{}", self.profile.media_playlists()[0]);
        let seen = match http::get(addr, &path, Duration::from_secs(1)).await {
            Ok(r) => format!("{path} answered {} with {} bytes", r.status, r.body.len()),
            Err(e) => format!("{e}"),
        };
        let children: Vec<String> = self
            .facts
            .board
            .snapshot()
            .iter()
            .map(|(n, r)| format!("{n}: {:?} restarts={}", r.state, r.restarts))
            .collect();
        format!("{seen}; children: {}", children.join(", "))
    }

    /// `http://HOST:PORT/stream.m3u8`, or `/master.m3u8` for ABR profiles.
    #[must_use]
    pub fn playlist_url(&self) -> String {
        format!("{}/{}", self.base_url(), self.profile.entry_playlist())
    }

    /// Every media playlist's URL (one per variant; the same as [`Origin::playlist_url`] for a
    /// single-variant profile).
    #[must_use]
    pub fn media_playlist_urls(&self) -> Vec<String> {
        self.profile.media_playlists().iter().map(|p| format!("{}/{p}", self.base_url())).collect()
    }

    /// `http://HOST:PORT` (a wildcard listen address is reported as loopback).
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", exporters::local_address(self.listen))
    }

    /// The LL-HLS stream of an LL-HLS profile (its timeline and fault switches); for a
    /// ladder, the first (highest) rendition's (see [`Origin::llhls_ladder`]).
    #[must_use]
    pub fn llhls(&self) -> Option<&Arc<crate::llhls::Stream>> {
        self.facts.llhls.get().map(|l| l.first())
    }

    /// Every LL-HLS rendition of an LL-HLS profile, on one clock.
    #[must_use]
    pub fn llhls_ladder(&self) -> Option<&Arc<crate::llhls::Ladder>> {
        self.facts.llhls.get()
    }

    /// The HLS listen address (with the port actually used).
    #[must_use]
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The HTTPS listen address (with the port actually used), if it serves HTTPS.
    #[must_use]
    pub fn tls_listen(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|t| t.listen)
    }

    /// The served directory (playlists and segments).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.hls_dir
    }

    /// Where the logs are (nginx access/error, ffmpeg, exporters).
    #[must_use]
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// nginx's access log (`$time_iso8601 $remote_addr "$request" $status $body_bytes_sent
    /// rt=$request_time conn=… reqs=…`), for profiles that write one (`logged`, `debug`).
    /// Flushed at least every second.
    #[must_use]
    pub fn access_log(&self) -> Option<PathBuf> {
        (self.profile.logging != crate::profile::Logging::Quiet)
            .then(|| self.log_dir.join("nginx-access.log"))
    }

    /// The generated nginx config file.
    #[must_use]
    pub fn nginx_conf(&self) -> &Path {
        &self.nginx_conf
    }

    /// The profile in effect (overrides applied).
    #[must_use]
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// hls-origin's own status listener (also reachable as `/health` on the HLS port).
    #[must_use]
    pub fn status_addr(&self) -> Option<SocketAddr> {
        self.status
    }

    /// The node exporter's address, if one runs.
    #[must_use]
    pub fn node_exporter(&self) -> Option<SocketAddr> {
        self.node_exporter
    }

    /// The nginx exporter's address, if one runs.
    #[must_use]
    pub fn nginx_exporter(&self) -> Option<SocketAddr> {
        self.nginx_exporter
    }

    /// `(name, pid)` of every child process running now.
    #[must_use]
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.facts.board.snapshot().into_iter().filter_map(|(n, r)| r.pid.map(|p| (n, p))).collect()
    }

    /// Every child's state, as `/health` reports it.
    #[must_use]
    pub fn children(&self) -> std::collections::BTreeMap<String, ChildStatus> {
        self.facts.board.snapshot()
    }

    /// Stalls the stream on purpose (fault injection): from now until `duration` has passed, no
    /// segment is published and no playlist rewritten, so viewers see a live playlist that does
    /// not move. Then publishing carries on at the normal cadence from that moment: the segment
    /// that fell due during the hold appears when it ends, the next one a segment duration
    /// later, with no burst of catch-up segments (and no gap in the media timestamps), like a
    /// real encoder whose input stalled and came back. Calling it again replaces the hold: it
    /// then ends `duration` after the new call (zero ends it now). Returns when the hold ends.
    ///
    /// Also reachable as `POST /hold?seconds=N` on the status listener ([`Origin::status_addr`]).
    ///
    /// # Errors
    /// [`Error::HoldUnsupported`] for [`Source::Encode`] (replay only: a live `ffmpeg -re`
    /// stopped with SIGSTOP publishes the segments it missed in a burst after SIGCONT);
    /// [`Error::HoldTooLong`] above [`replay::MAX_HOLD`] (600 s).
    pub fn hold(&self, duration: Duration) -> Result<Instant, Error> {
        self.facts.hold(duration).map(tokio::time::Instant::into_std)
    }

    /// Stops child `name` (`nginx`, `ffmpeg`, `node-exporter`, `nginx-exporter`) now and starts
    /// it again after `duration` (fault injection: for nginx, viewers' connections are refused
    /// meanwhile). Also `POST /fault/pause?child=NAME&seconds=N` on the status listener.
    ///
    /// # Errors
    /// [`Error::Fault`] if there is no such child or `duration` is above 600 s.
    pub fn pause(&self, name: &str, duration: Duration) -> Result<(), Error> {
        self.facts.pause(name, duration)
    }

    /// SIGKILLs child `name` as a crash would (its supervisor restarts it after a backoff);
    /// returns the pid killed. Also `POST /fault/kill?child=NAME`.
    ///
    /// # Errors
    /// [`Error::Fault`] if there is no such child or it is not running.
    pub fn kill(&self, name: &str) -> Result<u32, Error> {
        self.facts.kill(name)
    }

    /// Makes nginx answer `status` (400–599) for segments `segments` (media sequence numbers)
    /// of every variant, replacing any earlier segment fault; `None` clears it. Returns once
    /// nginx serves the new configuration. Also `POST /fault/http?status=S&from=A&to=B` and
    /// `DELETE /fault/http`.
    ///
    /// # Errors
    /// [`Error::Fault`] for a bad status or range, or if nginx did not take the change.
    pub async fn fail_segments(
        &self,
        fault: Option<(u16, std::ops::RangeInclusive<u64>)>,
    ) -> Result<(), Error> {
        self.facts.fail_segments(fault).await
    }

    /// Stops the exporters, nginx and the media source (in that order, each SIGTERM → grace →
    /// SIGKILL, reaped), then removes the temporary directory.
    ///
    /// # Errors
    /// [`Error::File`] if the temporary directory cannot be removed.
    pub async fn stop(mut self) -> Result<(), Error> {
        self.facts.ready.store(false, Ordering::Release);
        while let Some(s) = self.supervisors.pop() {
            s.stop(self.grace).await;
        }
        for task in [self.publisher.take(), self.janitor.take()].into_iter().flatten() {
            task.abort();
            let _ = task.await;
        }
        if let Some(t) = self.status_task.take() {
            t.abort();
            let _ = t.await;
        }
        if let Some(tmp) = self.tmp.take() {
            let path = tmp.path().to_owned();
            tmp.close().map_err(|source| Error::File { path, source })?;
        }
        Ok(())
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        for task in [&self.publisher, &self.janitor].into_iter().flatten() {
            task.abort();
        }
        if let Some(t) = &self.status_task {
            t.abort();
        }
    }
}
