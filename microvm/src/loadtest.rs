//! `hls-lab load-test`: aim `hls-swarm` at whichever origin is up, in this order: the VM on a
//! TAP (reached from inside its network namespace when it has one), the VM with user-mode
//! networking (its forwarded ports on 127.0.0.1), a local `hls-origin` on 127.0.0.1:17080.
//! It says which, and scrapes that origin's exporters during the run.

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::http;
use crate::rundir::RunDir;

/// Where the load goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What it is, for the message.
    pub label: String,
    /// Stream URL.
    pub url: String,
    /// Network namespace to run the swarm in.
    pub netns: Option<String>,
    /// Node exporter URL.
    pub node_metrics: String,
    /// nginx exporter URL.
    pub nginx_metrics: String,
}

/// The local origin's address (`make test-origin`).
pub const LOCAL: &str = "127.0.0.1:17080";

/// Finds the origin to load: VM `name` (its run directory) when it serves, else a local
/// origin on [`LOCAL`].
pub async fn find(name: &str, run_dir: Option<&Path>) -> Option<Target> {
    let run = RunDir::new(name, run_dir);
    if let Some(st) = run.read_state().filter(|s| run.owns(s.pid, s.start_ticks)) {
        let served = http::get_in(st.netns.as_deref(), st.check_addr, "/stream.m3u8", Duration::from_secs(3))
            .await
            .is_ok_and(|r| http::is_playlist(&r));
        if served {
            let label = match (&*st.net, &st.netns) {
                ("tap", Some(ns)) => {
                    format!("the TAP VM {name} at {} (network namespace {ns})", st.check_addr.ip())
                }
                ("tap", None) => format!("the TAP VM {name} at {}", st.check_addr.ip()),
                _ => format!("the user-net VM {name} (forwarded to {})", st.check_addr),
            };
            return Some(Target {
                label,
                url: st.stream_url,
                netns: st.netns,
                node_metrics: st.node_url,
                nginx_metrics: st.nginx_url,
            });
        }
    }
    let local: SocketAddr = LOCAL.parse().ok()?;
    let served = http::get_in(None, local, "/stream.m3u8", Duration::from_secs(3))
        .await
        .is_ok_and(|r| http::is_playlist(&r));
    served.then(|| Target {
        label: format!("the local origin at {LOCAL}"),
        url: format!("http://{LOCAL}/stream.m3u8"),
        netns: None,
        node_metrics: "http://127.0.0.1:9100/metrics".into(),
        nginx_metrics: "http://127.0.0.1:9113/metrics".into(),
    })
}

/// `hls-swarm` next to `hls-lab`, else on `PATH`.
#[must_use]
pub fn swarm_binary() -> Option<PathBuf> {
    let here = std::env::current_exe().ok()?.parent()?.join("hls-swarm");
    if here.is_file() {
        return Some(here);
    }
    crate::vm::which(Path::new("hls-swarm"))
}

/// hls-swarm's arguments for `target`.
#[must_use]
pub fn swarm_args(target: &Target, clients: u32, duration: &str, extra: &[OsString]) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        "--clients".into(),
        clients.to_string().into(),
        "--duration".into(),
        duration.into(),
        "--origin-metrics".into(),
        target.node_metrics.clone().into(),
        "--nginx-metrics".into(),
        target.nginx_metrics.clone().into(),
    ];
    a.extend(extra.iter().cloned());
    a.push(target.url.clone().into());
    a
}

/// Prints the target and replaces this process with `hls-swarm` (inside the target's network
/// namespace when it has one), so Ctrl+C and the exit code are the swarm's own. Returns only
/// on failure, with the exit code to use.
pub async fn run(
    name: &str,
    run_dir: Option<&Path>,
    clients: u32,
    duration: &str,
    extra: &[OsString],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let Some(target) = find(name, run_dir).await else {
        let _ = writeln!(
            err,
            "hls-lab: no origin is up: neither VM {name} nor a local origin on {LOCAL} serves a playlist \
             (start one: make microvm-start-tap, make microvm-start or make test-origin)"
        );
        return 5;
    };
    let Some(swarm) = swarm_binary() else {
        let _ = writeln!(
            err,
            "hls-lab: hls-swarm not found next to hls-lab or on PATH (cargo build --release -p hls-swarm)"
        );
        return 2;
    };
    let _ =
        writeln!(out, "load test: {clients} viewers for {duration} against {}: {}", target.label, target.url);
    let _ = out.flush();
    let mut cmd = std::process::Command::new(&swarm);
    cmd.args(swarm_args(&target, clients, duration, extra));
    if let Some(ns) = &target.netns {
        if let Err(e) = network::netns::enter_in_child(&mut cmd, ns) {
            let _ = writeln!(err, "hls-lab: network namespace {ns}: {e}");
            return 1;
        }
    }
    use std::os::unix::process::CommandExt;
    let e = cmd.exec();
    let _ = writeln!(err, "hls-lab: cannot run {}: {e}", swarm.display());
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_gets_the_targets_urls() {
        let t = Target {
            label: "x".into(),
            url: "http://10.177.0.10:17080/stream.m3u8".into(),
            netns: Some("lab".into()),
            node_metrics: "http://10.177.0.10:9100/metrics".into(),
            nginx_metrics: "http://10.177.0.10:9113/metrics".into(),
        };
        let a: Vec<String> = swarm_args(&t, 50, "2m", &["--tui=false".into()])
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            a,
            [
                "--clients",
                "50",
                "--duration",
                "2m",
                "--origin-metrics",
                "http://10.177.0.10:9100/metrics",
                "--nginx-metrics",
                "http://10.177.0.10:9113/metrics",
                "--tui=false",
                "http://10.177.0.10:17080/stream.m3u8"
            ]
        );
    }
}
