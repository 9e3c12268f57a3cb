//! The real `hls-swarm`, run to completion with the scenario's flags plus the harness's own:
//! no dashboard, a JSON report, the origin's exporters, every `--assert`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::leftovers::MARKER;
use crate::origin::Endpoints;
use crate::scenario::Scenario;

/// Extra time over `--duration` before the harness gives up on the swarm (ramp, preflight,
/// stopping the viewers).
pub const SLACK: Duration = Duration::from_secs(60);

/// The argument list (without the program).
pub fn args(s: &Scenario, origin: &Endpoints, report: &Path, metrics: Option<SocketAddr>) -> Vec<String> {
    let sw = &s.swarm;
    let mut a: Vec<String> = vec![
        "--clients".into(),
        sw.clients.to_string(),
        "--ramp-rate".into(),
        sw.ramp_rate.to_string(),
        "--duration".into(),
        format!("{}ms", sw.duration.as_millis()),
        "--tui=false".into(),
        "--metrics".into(),
        metrics.map_or_else(|| "off".to_owned(), |m| m.to_string()),
        "--report".into(),
        report.display().to_string(),
    ];
    if let Some(e) = &sw.engine {
        a.extend(["--engine".into(), e.clone()]);
    }
    if let Some(v) = &sw.variant {
        a.extend(["--variant".into(), v.clone()]);
    }
    if sw.origin_metrics {
        a.extend(["--origin-metrics".into(), format!("http://{}/metrics", origin.node)]);
        a.extend(["--nginx-metrics".into(), format!("http://{}/metrics", origin.nginx)]);
        a.extend(["--origin-metrics-interval".into(), "2s".into()]);
    }
    if !sw.args.iter().any(|x| x == "--seed" || x.starts_with("--seed=")) {
        // Ramp jitter and restart backoff the same on every run.
        a.extend(["--seed".into(), "1".into()]);
    }
    for e in &s.expect.assert {
        a.extend(["--assert".into(), e.clone()]);
    }
    a.extend(sw.args.iter().cloned());
    a.push(match &sw.path {
        Some(p) => format!("http://{}{p}", origin.hls),
        None => origin.playlist_url.clone(),
    });
    a
}

/// How the swarm ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Exit code (`None`: killed by a signal, e.g. by the harness's timeout).
    pub code: Option<i32>,
    /// Stopped by the harness because it ran too long.
    pub timed_out: bool,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

/// A running swarm.
#[derive(Debug)]
pub struct Swarm {
    pub group: procgroup::Group,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Swarm {
    /// Starts `bin` with `args`, in `netns` if given, logging to `logs/swarm.{stdout,stderr}`.
    ///
    /// # Errors
    /// It cannot be started.
    pub fn start(
        bin: &Path,
        args: &[String],
        logs: &Path,
        run_id: &str,
        netns: Option<&str>,
    ) -> Result<Swarm, String> {
        let stdout = logs.join("swarm.stdout");
        let stderr = logs.join("swarm.stderr");
        let file =
            |p: &Path| std::fs::File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()));
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args(args)
            .env(MARKER, run_id)
            .env_remove("HLS_SWARM_METRICS")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file(&stdout)?))
            .stderr(Stdio::from(file(&stderr)?));
        if let Some(ns) = netns {
            network::netns::enter_in_child(cmd.as_std_mut(), ns).map_err(|e| format!("netns {ns}: {e}"))?;
        }
        let group = procgroup::spawn(&mut cmd).map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        Ok(Swarm { group, stdout, stderr })
    }

    /// Waits for the end; after `limit`, stops it (SIGTERM, its own grace, SIGKILL).
    pub async fn wait(&mut self, limit: Duration) -> Finished {
        let (code, timed_out) = match tokio::time::timeout(limit, self.group.wait()).await {
            Ok(Ok(status)) => (status.code(), false),
            Ok(Err(_)) => (None, false),
            Err(_) => {
                let _ = self.group.stop(Duration::from_secs(15)).await;
                (None, true)
            }
        };
        Finished { code, timed_out, stdout: self.stdout.clone(), stderr: self.stderr.clone() }
    }
}

/// The `Metrics: http://ADDR/metrics` line, once the swarm has printed it.
pub fn metrics_addr(stdout: &Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(stdout).ok()?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Metrics: http://")?.strip_suffix("/metrics")?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Reach;

    fn endpoints() -> Endpoints {
        Endpoints {
            playlist_url: "http://127.0.0.1:4000/stream.m3u8".into(),
            hls: "127.0.0.1:4000".parse().unwrap(),
            node: "127.0.0.1:4001".parse().unwrap(),
            nginx: "127.0.0.1:4002".parse().unwrap(),
            reach: Reach::default(),
            status: None,
            access_log: None,
        }
    }

    #[test]
    fn the_harness_adds_its_flags_and_the_url_comes_last() {
        let text = "description = \"x\"\n[origin]\n[swarm]\nclients = 3\nduration = \"15s\"\n\
                    args = [\"--restart-on-stall\"]\n[expect]\nassert = [\"error_rate==0\"]\n";
        let s = Scenario::parse(Path::new("x.toml"), text).unwrap();
        let a = args(&s, &endpoints(), Path::new("/r/report.json"), None).join(" ");
        assert_eq!(
            a,
            "--clients 3 --ramp-rate 5 --duration 15000ms --tui=false --metrics off --report /r/report.json \
             --origin-metrics http://127.0.0.1:4001/metrics --nginx-metrics http://127.0.0.1:4002/metrics \
             --origin-metrics-interval 2s --seed 1 --assert error_rate==0 --restart-on-stall \
             http://127.0.0.1:4000/stream.m3u8"
        );
        let missing = Scenario::parse(
            Path::new("x.toml"),
            &text.replace("[expect]", "path = \"/nope.m3u8\"\n[expect]"),
        );
        let a = args(&missing.unwrap(), &endpoints(), Path::new("r.json"), None);
        assert_eq!(a.last().unwrap(), "http://127.0.0.1:4000/nope.m3u8");
    }
}
