//! `hls-lab observe`: the lab's observability stack for a run you watch. A real Prometheus
//! (Debian's `prometheus`) scrapes the swarm's `/metrics` (one address per swarm or shard) and the
//! origin's node and nginx exporters with a generated configuration; when a Grafana binary is
//! installed, it runs too, with the Prometheus as its data source and the lab's dashboards
//! (`deploy/grafana/dashboards/`) provisioned. Both run as process groups of ours, print their
//! URLs, and stop with Ctrl+C or SIGTERM (or after `--duration`); the data directory is removed
//! unless `--dir` names one to keep.
//!
//! Exit codes: 0 stopped cleanly; 2 bad input or a program missing, nothing started; 4 a
//! program did not start or become ready (whatever had started is stopped).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

/// `hls-lab observe` flags.
#[derive(Debug, Clone, Args)]
pub struct ObserveArgs {
    /// The swarm's metrics address (hls-swarm --metrics); repeat or comma-separate for shards.
    #[arg(long = "swarm", value_delimiter = ',', default_value = "127.0.0.1:17091")]
    pub swarms: Vec<SocketAddr>,
    /// The origin's node exporter.
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub node: SocketAddr,
    /// The origin's nginx exporter.
    #[arg(long, default_value = "127.0.0.1:9113")]
    pub nginx: SocketAddr,
    /// Where Prometheus listens.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,
    /// Scrape interval (100ms to 1m).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub scrape_interval: Duration,
    /// Keep Prometheus's (and Grafana's) data here [default: a temporary directory, removed].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Run Grafana too: `auto` when a `grafana`/`grafana-server` binary is installed.
    #[arg(long, value_enum, default_value = "auto")]
    pub grafana: GrafanaChoice,
    /// Where Grafana listens.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub grafana_listen: SocketAddr,
    /// The dashboards to provision [default: deploy/grafana/dashboards of this checkout].
    #[arg(long, env = "HLS_LAB_DASHBOARDS", value_name = "DIR")]
    pub dashboards: Option<PathBuf>,
    /// Stop by itself after this long [default: at Ctrl+C or SIGTERM].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
}

/// Whether to run Grafana.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GrafanaChoice {
    /// When installed.
    Auto,
    /// Always; missing is an error.
    On,
    /// Never.
    Off,
}

/// The Prometheus configuration: job `hls-swarm` (every swarm address), `hls-origin-node` and
/// `hls-origin-nginx`, all at `interval`.
#[must_use]
pub fn prometheus_config(a: &ObserveArgs) -> String {
    let ms = a.scrape_interval.as_millis();
    let timeout = (ms * 4 / 5).max(50);
    let targets =
        |addrs: &[SocketAddr]| addrs.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
    let mut c =
        format!("global:\n  scrape_interval: {ms}ms\n  scrape_timeout: {timeout}ms\nscrape_configs:\n");
    for (job, addrs) in [
        ("hls-swarm", a.swarms.clone()),
        ("hls-origin-node", vec![a.node]),
        ("hls-origin-nginx", vec![a.nginx]),
    ] {
        c.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
            targets(&addrs)
        ));
    }
    c
}

/// Grafana's provisioning: the Prometheus data source and the dashboards directory.
#[must_use]
pub fn grafana_provisioning(prometheus: SocketAddr, dashboards: &Path) -> (String, String) {
    let datasource = format!(
        "apiVersion: 1\ndatasources:\n  - name: hls-swarm lab Prometheus\n    type: prometheus\n    access: proxy\n\
         \x20   url: http://{prometheus}\n    isDefault: true\n"
    );
    let provider = format!(
        "apiVersion: 1\nproviders:\n  - name: hls-swarm-lab\n    folder: hls-swarm lab\n    type: file\n\
         \x20   options:\n      path: {}\n",
        dashboards.display()
    );
    (datasource, provider)
}

/// Checks the flags; the message names the value and what is accepted.
///
/// # Errors
/// A bad scrape interval, duration or dashboards directory.
pub fn validate(a: &ObserveArgs) -> Result<(), String> {
    if !(Duration::from_millis(100)..=Duration::from_secs(60)).contains(&a.scrape_interval) {
        return Err(format!(
            "--scrape-interval {}: must be between 100ms and 1m",
            humantime::format_duration(a.scrape_interval)
        ));
    }
    if a.duration.is_some_and(|d| d.is_zero()) {
        return Err("--duration 0s: must be longer than zero (or left out to run until Ctrl+C)".into());
    }
    if a.swarms.is_empty() {
        return Err("--swarm: give at least one address".into());
    }
    if let Some(d) = &a.dashboards {
        if !d.is_dir() {
            return Err(format!("--dashboards {}: not a directory", d.display()));
        }
    }
    Ok(())
}

/// `deploy/grafana/dashboards` of the checkout this binary was built in, if it is there.
fn default_dashboards() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .map(|d| d.join("deploy/grafana/dashboards"))
        .find(|d| d.is_dir())
        .or_else(|| Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/dashboards")))
        .filter(|d| d.is_dir())
}

/// The first of `names` installed (`PATH`, then the sbin/bin directories).
fn installed(names: &[&str]) -> Option<PathBuf> {
    names.iter().find_map(|n| crate::image::on_path(n))
}

/// What `observe` runs: Prometheus, Grafana if any, and the dashboards Grafana provisions.
struct Programs<'a> {
    prometheus: &'a Path,
    grafana: Option<&'a Path>,
    dashboards: Option<&'a Path>,
}

/// One child we started: its name, group and log.
struct Child {
    name: &'static str,
    group: procgroup::Group,
    log: PathBuf,
}

/// Waits until `GET path` on `addr` answers 200, the child exits, or `limit` passes.
async fn ready(child: &mut Child, addr: SocketAddr, path: &str, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        let path_owned = path.to_owned();
        let answer =
            tokio::task::spawn_blocking(move || kit::http::get(addr, &path_owned, Duration::from_secs(2)))
                .await;
        if matches!(answer, Ok(Ok(ref r)) if r.status == 200) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.group.try_wait() {
            return Err(format!(
                "{} exited ({status}) before it was ready; its log:\n{}",
                child.name,
                crate::vm::tail(&child.log, 15)
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not answer {path} on {addr} within {} s; its log:\n{}",
                child.name,
                limit.as_secs(),
                crate::vm::tail(&child.log, 15)
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn spawn(name: &'static str, cmd: &mut tokio::process::Command, log: PathBuf) -> Result<Child, String> {
    let file = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
    cmd.stdin(Stdio::null()).stdout(Stdio::from(file)).stderr(Stdio::from(err));
    let group = procgroup::spawn(cmd).map_err(|e| format!("cannot start {name}: {e}"))?;
    Ok(Child { name, group, log })
}

async fn stop_all(children: &mut Vec<Child>, err: &mut dyn Write) -> bool {
    let mut clean = true;
    while let Some(mut c) = children.pop() {
        if let Err(e) = c.group.stop(Duration::from_secs(10)).await {
            let _ = writeln!(err, "hls-lab observe: cannot stop {}: {e}", c.name);
            clean = false;
        }
    }
    clean
}

/// Runs the stack until a signal or `--duration`; returns the exit code.
pub async fn run(a: &ObserveArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    if let Err(e) = validate(a) {
        let _ = writeln!(err, "hls-lab observe: {e}");
        return 2;
    }
    let Some(prometheus) = installed(&["prometheus"]) else {
        let _ = writeln!(
            err,
            "hls-lab observe: prometheus is not installed (Debian: apt-get install prometheus)"
        );
        return 2;
    };
    let grafana = match (a.grafana, installed(&["grafana", "grafana-server"])) {
        (GrafanaChoice::Off, _) => None,
        (_, Some(bin)) => Some(bin),
        (GrafanaChoice::On, None) => {
            let _ = writeln!(
                err,
                "hls-lab observe: --grafana on, but neither `grafana` nor `grafana-server` is on PATH \
                 (Grafana is not in Debian's archive: install it from grafana.com, or use --grafana off)"
            );
            return 2;
        }
        (GrafanaChoice::Auto, None) => None,
    };
    let dashboards = a.dashboards.clone().or_else(default_dashboards);
    if grafana.is_some() && dashboards.is_none() {
        let _ = writeln!(err, "hls-lab observe: no dashboards directory found; pass --dashboards DIR");
        return 2;
    }

    let temp = match &a.dir {
        Some(_) => None,
        None => match tempfile_dir() {
            Ok(d) => Some(d),
            Err(e) => {
                let _ = writeln!(err, "hls-lab observe: cannot create a temporary directory: {e}");
                return 1;
            }
        },
    };
    let dir = a.dir.clone().or_else(|| temp.clone()).unwrap_or_default();
    let programs =
        Programs { prometheus: &prometheus, grafana: grafana.as_deref(), dashboards: dashboards.as_deref() };
    let code = serve(a, &dir, &programs, out, err).await;
    if let Some(t) = temp {
        let _ = std::fs::remove_dir_all(t);
    }
    code
}

fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("hls-lab-observe-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn serve(
    a: &ObserveArgs,
    dir: &Path,
    programs: &Programs<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let mut children = Vec::new();
    let result = start(a, dir, programs, &mut children, out).await;
    let code = match result {
        Err(e) => {
            let _ = writeln!(err, "hls-lab observe: {e}");
            4
        }
        Ok(()) => {
            let _ = out.flush();
            match a.duration {
                Some(d) => {
                    tokio::select! {
                        () = tokio::time::sleep(d) => {}
                        () = crate::control::shutdown_signal() => {}
                    }
                }
                None => crate::control::shutdown_signal().await,
            }
            let _ = writeln!(out, "Stopping.");
            0
        }
    };
    if stop_all(&mut children, err).await {
        code
    } else {
        1
    }
}

async fn start(
    a: &ObserveArgs,
    dir: &Path,
    programs: &Programs<'_>,
    children: &mut Vec<Child>,
    out: &mut dyn Write,
) -> Result<(), String> {
    let Programs { prometheus, grafana, dashboards } = *programs;
    let write = |path: PathBuf, text: &str| {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    let config = dir.join("prometheus.yml");
    write(config.clone(), &prometheus_config(a))?;
    let mut cmd = tokio::process::Command::new(prometheus);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("prometheus-data").display()))
        .arg(format!("--web.listen-address={}", a.listen))
        .args(["--storage.tsdb.retention.time=7d", "--log.level=warn"]);
    children.push(spawn("prometheus", &mut cmd, dir.join("prometheus.log"))?);
    let last = children.last_mut().expect("just pushed");
    ready(last, a.listen, "/-/ready", Duration::from_secs(60)).await?;
    let swarms: Vec<String> = a.swarms.iter().map(ToString::to_string).collect();
    let _ = writeln!(out, "Prometheus  http://{}  (data in {})", a.listen, dir.display());
    let _ = writeln!(
        out,
        "  scraping every {}: hls-swarm {} · node exporter {} · nginx exporter {}",
        humantime::format_duration(a.scrape_interval),
        swarms.join(", "),
        a.node,
        a.nginx
    );

    match (grafana, dashboards) {
        (Some(bin), Some(dashboards)) => {
            let g = dir.join("grafana");
            let (datasource, provider) = grafana_provisioning(a.listen, dashboards);
            write(g.join("provisioning/datasources/hls-swarm-lab.yaml"), &datasource)?;
            write(g.join("provisioning/dashboards/hls-swarm-lab.yaml"), &provider)?;
            for sub in ["plugins", "alerting", "notifiers"] {
                std::fs::create_dir_all(g.join("provisioning").join(sub)).map_err(|e| e.to_string())?;
            }
            let ini = format!(
                "[paths]\ndata = {data}\nlogs = {data}/log\nprovisioning = {prov}\n\
                 [server]\nhttp_addr = {ip}\nhttp_port = {port}\n\
                 [auth.anonymous]\nenabled = true\norg_role = Viewer\n[analytics]\nreporting_enabled = false\ncheck_for_updates = false\n",
                data = g.join("data").display(),
                prov = g.join("provisioning").display(),
                ip = a.grafana_listen.ip(),
                port = a.grafana_listen.port()
            );
            write(g.join("grafana.ini"), &ini)?;
            let home = ["/usr/share/grafana", "/opt/grafana"].into_iter().find(|h| Path::new(h).is_dir());
            let mut cmd = tokio::process::Command::new(bin);
            if bin.file_name().is_some_and(|n| n == "grafana") {
                cmd.arg("server");
            }
            cmd.arg(format!("--config={}", g.join("grafana.ini").display()));
            if let Some(home) = home {
                cmd.arg(format!("--homepath={home}"));
            }
            children.push(spawn("grafana", &mut cmd, g.join("grafana.log"))?);
            let last = children.last_mut().expect("just pushed");
            ready(last, a.grafana_listen, "/api/health", Duration::from_secs(90)).await?;
            let _ = writeln!(
                out,
                "Grafana     http://{}  (dashboards from {})",
                a.grafana_listen,
                dashboards.display()
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "Grafana     not running (none installed, or --grafana off). To use an existing Grafana, add \
                 deploy/grafana/provisioning/ to its provisioning with the data source URL http://{} \
                 (docs/observability.md)",
                a.listen
            );
        }
    }
    let _ = writeln!(out, "Ctrl+C stops them.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        a: ObserveArgs,
    }

    fn args(extra: &[&str]) -> ObserveArgs {
        T::try_parse_from(std::iter::once("observe").chain(extra.iter().copied())).expect("parses").a
    }

    #[test]
    fn the_config_scrapes_every_swarm_and_both_exporters() {
        let a = args(&["--swarm", "127.0.0.1:1,127.0.0.1:2", "--scrape-interval", "500ms"]);
        let c = prometheus_config(&a);
        assert!(c.contains("scrape_interval: 500ms\n  scrape_timeout: 400ms"), "{c}");
        assert!(
            c.contains(
                "job_name: hls-swarm\n    static_configs:\n      - targets: ['127.0.0.1:1', '127.0.0.1:2']"
            ),
            "{c}"
        );
        assert!(
            c.contains("job_name: hls-origin-node\n    static_configs:\n      - targets: ['127.0.0.1:9100']"),
            "{c}"
        );
        assert!(
            c.contains(
                "job_name: hls-origin-nginx\n    static_configs:\n      - targets: ['127.0.0.1:9113']"
            ),
            "{c}"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let e = validate(&args(&["--scrape-interval", "10ms"])).unwrap_err();
        assert!(e.contains("--scrape-interval 10ms") && e.contains("between 100ms and 1m"), "{e}");
        let e = validate(&args(&["--duration", "0s"])).unwrap_err();
        assert!(e.contains("--duration 0s"), "{e}");
        let e = validate(&args(&["--dashboards", "/nonexistent-dir"])).unwrap_err();
        assert!(e.contains("--dashboards /nonexistent-dir: not a directory"), "{e}");
        assert!(validate(&args(&[])).is_ok());
    }

    #[test]
    fn grafana_gets_the_prometheus_and_the_dashboards() {
        let (ds, prov) = grafana_provisioning("127.0.0.1:9090".parse().unwrap(), Path::new("/x/dash"));
        assert!(ds.contains("url: http://127.0.0.1:9090") && ds.contains("type: prometheus"), "{ds}");
        assert!(prov.contains("path: /x/dash") && prov.contains("type: file"), "{prov}");
    }
}
