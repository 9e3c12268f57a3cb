//! The origin under test: `hls-origin serve` as a child process (on loopback, or inside the
//! lab's origin namespace), or the origin MicroVM through `hls-lab`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::http::Reach;
use crate::labnet::ORIGIN_ADDR;
use crate::leftovers::MARKER;
use crate::scenario::OriginSpec;

/// How long the origin may take to print `ready` (a first replay start encodes its loop).
pub const READY_TIMEOUT: Duration = Duration::from_secs(150);
/// SIGTERM to SIGKILL when stopping the origin (it stops its own children within its grace).
const STOP_GRACE: Duration = Duration::from_secs(20);

/// A failure to start or reach the origin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The process cannot be started.
    #[error("cannot start {program}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// It exited, or did not print `ready URL` in time.
    #[error("hls-origin did not become ready: {reason}; its log:\n{log}")]
    NotReady { reason: String, log: String },
    /// `hls-lab` failed.
    #[error("`hls-lab {step}` failed ({status}):\n{output}")]
    Lab { step: String, status: String, output: String },
}

/// Addresses of a running origin, as the swarm's side reaches them.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The playlist the origin serves (`…/stream.m3u8` or `…/master.m3u8`).
    pub playlist_url: String,
    /// The HLS listener.
    pub hls: SocketAddr,
    /// The node exporter.
    pub node: SocketAddr,
    /// The nginx exporter.
    pub nginx: SocketAddr,
    /// From where the swarm's side reaches them.
    pub reach: Reach,
    /// The status listener (faults), and from where it is reached; `None` for the VM.
    pub status: Option<(SocketAddr, Reach)>,
    /// nginx's access log, kept after the origin stops (`logged`/`debug` profiles).
    pub access_log: Option<PathBuf>,
}

/// `hls-origin serve` arguments for a spec.
fn stream_args(spec: &OriginSpec) -> Vec<String> {
    let mut a =
        vec!["--profile".into(), spec.profile.clone(), "--source".into(), spec.source.as_str().into()];
    let pairs = [
        ("--width", spec.width),
        ("--height", spec.height),
        ("--bitrate", spec.bitrate),
        ("--fps", spec.fps),
        ("--segment-seconds", spec.segment_seconds),
        ("--window", spec.window),
        ("--loop-segments", spec.loop_segments),
    ];
    for (flag, v) in pairs {
        if let Some(v) = v {
            a.extend([flag.to_owned(), v.to_string()]);
        }
    }
    a
}

/// A running `hls-origin serve`.
#[derive(Debug)]
pub struct OriginProcess {
    pub group: procgroup::Group,
    pub endpoints: Endpoints,
    stderr_path: PathBuf,
    /// The exporters' and status listener's ports, reserved while it runs.
    _ports: Vec<testkit::port::Port>,
}

/// Where the origin's files go.
#[derive(Debug, Clone)]
pub struct OriginDirs {
    /// Its private work directory's parent (a temp dir of the scenario).
    pub work: PathBuf,
    /// Replay loop cache, shared by every scenario.
    pub cache: PathBuf,
    /// Logs kept after the run.
    pub logs: PathBuf,
}

impl OriginProcess {
    /// Starts `bin serve` for `spec`: on loopback with free ports (`netns = None`), or inside
    /// the namespace `netns` on 0.0.0.0 with the standard ports, reached at 10.177.0.10 from
    /// `client_netns`. Returns once it printed `ready URL`.
    ///
    /// # Errors
    /// [`Error::Spawn`], or [`Error::NotReady`] with its log.
    pub async fn start(
        bin: &Path,
        spec: &OriginSpec,
        run_id: &str,
        dirs: &OriginDirs,
        netns: Option<(&str, &str)>,
    ) -> Result<OriginProcess, Error> {
        let port = |what: &str| {
            testkit::port::reserve().map_err(|e| Error::NotReady {
                reason: format!("no free port for {what}: {e}"),
                log: String::new(),
            })
        };
        let mut ports = Vec::new();
        let (listen, node, nginx, status) = match netns {
            None => {
                for what in ["the node exporter", "the nginx exporter", "the status listener"] {
                    ports.push(port(what)?);
                }
                (
                    SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                    ports[0].loopback(),
                    ports[1].loopback(),
                    ports[2].loopback(),
                )
            }
            Some(_) => (
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, 17080)),
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, 9100)),
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, 9113)),
                SocketAddr::from((Ipv4Addr::LOCALHOST, 17081)),
            ),
        };
        let stderr_path = dirs.logs.join("hls-origin.stderr");
        let stderr = std::fs::File::create(&stderr_path)
            .map_err(|source| Error::Spawn { program: stderr_path.clone(), source })?;
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg("serve")
            .args(stream_args(spec))
            .args(["--listen", &listen.to_string()])
            .args(["--node-exporter", &node.to_string(), "--nginx-exporter", &nginx.to_string()])
            .args(["--status-listen", &status.to_string(), "--fault-injection"])
            .arg("--work-dir")
            .arg(&dirs.work)
            .arg("--cache-dir")
            .arg(&dirs.cache)
            .arg("--log-dir")
            .arg(&dirs.logs)
            .args(["--ready-timeout", "140s", "--stop-grace", "3s"])
            .env(MARKER, run_id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        if let Some((origin_ns, _)) = netns {
            network::netns::enter_in_child(cmd.as_std_mut(), origin_ns)
                .map_err(|source| Error::Spawn { program: bin.to_owned(), source })?;
        }
        let mut group =
            procgroup::spawn(&mut cmd).map_err(|source| Error::Spawn { program: bin.to_owned(), source })?;
        let not_ready = |reason: String| Error::NotReady { reason, log: tail(&stderr_path, 30) };
        let Some(stdout) = group.child_mut().stdout.take() else {
            return Err(not_ready("no stdout pipe".into()));
        };
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(READY_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("ready ") {
                    return Some(url.trim().to_owned());
                }
            }
            None
        })
        .await;
        let url = match ready {
            Ok(Some(url)) => url,
            Ok(None) => {
                let status = group.wait().await.map(|s| s.to_string()).unwrap_or_default();
                return Err(not_ready(format!("it exited ({status}) without printing `ready URL`")));
            }
            Err(_) => {
                let _ = group.stop(Duration::from_secs(5)).await;
                return Err(not_ready(format!("no `ready URL` within {} s", READY_TIMEOUT.as_secs())));
            }
        };
        // Nothing more comes on stdout; keep the pipe drained anyway.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        // The profiles that write nginx's access log (logged, debug, ll-hls).
        let logs_access =
            origin::Profile::named(&spec.profile).is_ok_and(|p| p.logging != origin::Logging::Quiet);
        let access_log = logs_access.then(|| dirs.logs.join("nginx-access.log"));
        let endpoints = match netns {
            None => {
                let hls = host_port(&url).ok_or_else(|| not_ready(format!("unexpected URL {url}")))?;
                Endpoints {
                    playlist_url: url,
                    hls,
                    node,
                    nginx,
                    reach: Reach::default(),
                    status: Some((status, Reach::default())),
                    access_log,
                }
            }
            Some((origin_ns, client_ns)) => {
                let path = url.splitn(4, '/').nth(3).unwrap_or("stream.m3u8").to_owned();
                Endpoints {
                    playlist_url: format!("http://{ORIGIN_ADDR}:17080/{path}"),
                    hls: SocketAddr::from((ORIGIN_ADDR, 17080)),
                    node: SocketAddr::from((ORIGIN_ADDR, 9100)),
                    nginx: SocketAddr::from((ORIGIN_ADDR, 9113)),
                    reach: Reach::netns(client_ns),
                    status: Some((status, Reach::netns(origin_ns))),
                    access_log,
                }
            }
        };
        Ok(OriginProcess { group, endpoints, stderr_path, _ports: ports })
    }

    /// CPU seconds used so far by the origin and everything below it (live descendants, and
    /// the reaped ones through the kernel's children counters).
    pub fn cpu_seconds(&self) -> f64 {
        tree_cpu_seconds(self.group.pid())
    }

    /// SIGTERM, wait (it stops its children and removes its directory), SIGKILL after the grace.
    ///
    /// # Errors
    /// A message when it did not exit 0.
    pub async fn stop(&mut self) -> Result<(), String> {
        match self.group.stop(STOP_GRACE).await {
            Ok(exit) if exit.success() => Ok(()),
            Ok(exit) => Err(format!(
                "hls-origin did not stop cleanly ({exit:?}); its log:\n{}",
                tail(&self.stderr_path, 20)
            )),
            Err(e) => Err(format!("cannot stop hls-origin: {e}")),
        }
    }
}

/// `host:port` of an `http://host:port/…` URL.
fn host_port(url: &str) -> Option<SocketAddr> {
    url.strip_prefix("http://")?.split('/').next()?.parse().ok()
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn clock_ticks() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// (ppid, utime + stime, cutime + cstime) in ticks.
fn stat(pid: u32) -> Option<(u32, u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = s.get(s.rfind(')')? + 2..)?.split_whitespace().collect();
    // After the name: [0] state [1] ppid … [11] utime [12] stime [13] cutime [14] cstime.
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some((u32::try_from(n(1)?).ok()?, n(11)? + n(12)?, n(13)? + n(14)?))
}

/// CPU seconds of `root` and its live descendants, plus what their reaped children used.
pub fn tree_cpu_seconds(root: u32) -> f64 {
    let mut procs = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.filter_map(Result::ok) {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
                if let Some((ppid, own, reaped)) = stat(pid) {
                    procs.push((pid, ppid, own + reaped));
                }
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while let Some(&p) = tree.get(i) {
        tree.extend(procs.iter().filter(|(_, ppid, _)| *ppid == p).map(|(pid, _, _)| *pid));
        i += 1;
    }
    let ticks: u64 = procs.iter().filter(|(pid, _, _)| tree.contains(pid)).map(|(_, _, t)| t).sum();
    ticks as f64 / clock_ticks()
}

/// The origin MicroVM on a TAP in the client namespace, through `hls-lab`.
#[derive(Debug)]
pub struct MicroVm {
    hls_lab: PathBuf,
    name: String,
    run_dir: PathBuf,
    net_dir: PathBuf,
    netns: String,
    run_id: String,
    network_up: bool,
    vm_up: bool,
}

impl MicroVm {
    /// `hls-lab network setup --netns NS`, then `hls-lab microvm start --net tap`.
    ///
    /// # Errors
    /// [`Error::Lab`] with the command's output; what was set up is torn down by
    /// [`MicroVm::stop`] (or on drop).
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        hls_lab: &Path,
        origin_bin: &Path,
        spec: &OriginSpec,
        run_id: &str,
        netns: &str,
        dir: &Path,
        cache: &Path,
        logs: &Path,
    ) -> Result<(MicroVm, Endpoints), Error> {
        let mut vm = MicroVm {
            hls_lab: hls_lab.to_owned(),
            name: run_id.to_owned(),
            run_dir: dir.join("vm"),
            net_dir: dir.join("net"),
            netns: netns.to_owned(),
            run_id: run_id.to_owned(),
            network_up: false,
            vm_up: false,
        };
        let net_dir = vm.net_dir.display().to_string();
        vm.network_up = true;
        vm.lab(&["network", "setup", "--netns", netns, "--run-dir", &net_dir], Duration::from_secs(60), logs)
            .await?;
        let mut args: Vec<String> =
            ["microvm", "start", "--net", "tap", "--netns", netns, "--name", &vm.name]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
        args.extend(["--run-dir".into(), vm.run_dir.display().to_string()]);
        args.extend(["--cache-dir".into(), cache.join("vm-images").display().to_string()]);
        args.extend(["--origin-bin".into(), origin_bin.display().to_string()]);
        args.extend([
            "--profile".into(),
            spec.profile.clone(),
            "--source".into(),
            spec.source.as_str().into(),
        ]);
        if let (Some(w), Some(h)) = (spec.width, spec.height) {
            args.extend(["--picture".into(), format!("{w}x{h}")]);
        }
        args.extend(["--timeout".into(), "240s".into()]);
        vm.vm_up = true;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = vm.lab(&args, Duration::from_secs(300), logs).await?;
        let url = out
            .split_whitespace()
            .find(|w| w.starts_with(&format!("http://{ORIGIN_ADDR}:")) && w.contains(".m3u8"))
            .map(str::to_owned)
            .ok_or_else(|| Error::Lab {
                step: "microvm start".into(),
                status: "0".into(),
                output: out.clone(),
            })?;
        let endpoints = Endpoints {
            playlist_url: url,
            hls: SocketAddr::from((ORIGIN_ADDR, 17080)),
            node: SocketAddr::from((ORIGIN_ADDR, 9100)),
            nginx: SocketAddr::from((ORIGIN_ADDR, 9113)),
            reach: Reach::netns(netns),
            status: None,
            access_log: None,
        };
        Ok((vm, endpoints))
    }

    async fn lab(&self, args: &[&str], timeout: Duration, logs: &Path) -> Result<String, Error> {
        let step = args.iter().take(2).copied().collect::<Vec<_>>().join(" ");
        let log = logs.join(format!("hls-lab-{}.log", step.replace(' ', "-")));
        let file =
            std::fs::File::create(&log).map_err(|source| Error::Spawn { program: log.clone(), source })?;
        let err = file.try_clone().map_err(|source| Error::Spawn { program: log.clone(), source })?;
        let mut cmd = tokio::process::Command::new(&self.hls_lab);
        cmd.args(args)
            .env(MARKER, &self.run_id)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err));
        let mut group = procgroup::spawn(&mut cmd)
            .map_err(|source| Error::Spawn { program: self.hls_lab.clone(), source })?;
        let status = match tokio::time::timeout(timeout, group.wait()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(Error::Lab { step, status: e.to_string(), output: tail(&log, 40) }),
            Err(_) => {
                let _ = group.stop(Duration::from_secs(10)).await;
                return Err(Error::Lab {
                    step,
                    status: format!("no end within {} s", timeout.as_secs()),
                    output: tail(&log, 40),
                });
            }
        };
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        if status.success() {
            Ok(output)
        } else {
            Err(Error::Lab { step, status: status.to_string(), output: tail(&log, 40) })
        }
    }

    /// Powers the VM off and tears the network down; the errors, if any.
    pub async fn stop(&mut self, logs: &Path) -> Vec<String> {
        let mut errors = Vec::new();
        if std::mem::take(&mut self.vm_up) {
            let run_dir = self.run_dir.display().to_string();
            let args = ["microvm", "stop", "--name", &self.name, "--run-dir", &run_dir];
            if let Err(e) = self.lab(&args, Duration::from_secs(90), logs).await {
                errors.push(e.to_string());
            }
        }
        if std::mem::take(&mut self.network_up) {
            let net_dir = self.net_dir.display().to_string();
            let args = ["network", "teardown", "--netns", &self.netns, "--run-dir", &net_dir];
            if let Err(e) = self.lab(&args, Duration::from_secs(60), logs).await {
                errors.push(e.to_string());
            }
        }
        errors
    }
}

impl Drop for MicroVm {
    fn drop(&mut self) {
        // Backstop for a panic between start and stop: blocking, best effort.
        if self.vm_up {
            let _ = std::process::Command::new(&self.hls_lab)
                .args(["microvm", "stop", "--grace", "15s", "--name", &self.name, "--run-dir"])
                .arg(&self.run_dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if self.network_up {
            let _ = std::process::Command::new(&self.hls_lab)
                .args(["network", "teardown", "--netns", &self.netns, "--run-dir"])
                .arg(&self.net_dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Placement;

    #[test]
    fn overrides_become_flags() {
        let spec: OriginSpec =
            toml::from_str("profile = \"4k-abr\"\nheight = 360\nloop_segments = 4").unwrap();
        assert_eq!(
            stream_args(&spec),
            ["--profile", "4k-abr", "--source", "replay", "--height", "360", "--loop-segments", "4"]
        );
        assert_eq!(spec.placement, Placement::Process);
    }

    /// CPU time of the calling thread, from the kernel.
    fn thread_cpu_seconds() -> f64 {
        let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
        t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9
    }

    #[test]
    fn our_own_cpu_time_is_counted() {
        // Burn 0.3 s of this thread's own CPU, however long that takes on a busy machine; the
        // process's figure includes it (counted in 10 ms clock ticks).
        let start = thread_cpu_seconds();
        while thread_cpu_seconds() - start < 0.3 {
            std::hint::black_box(0u64.wrapping_add(1));
        }
        assert!(tree_cpu_seconds(std::process::id()) >= 0.25);
    }

    #[test]
    fn the_host_port_of_a_url() {
        assert_eq!(host_port("http://127.0.0.1:4000/stream.m3u8"), Some("127.0.0.1:4000".parse().unwrap()));
        assert_eq!(host_port("http://10.177.0.10:17080"), Some("10.177.0.10:17080".parse().unwrap()));
        assert_eq!(host_port("https://127.0.0.1:4000/stream.m3u8"), None);
        assert_eq!(host_port("http://localhost:4000/stream.m3u8"), None);
    }
}
