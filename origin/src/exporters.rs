//! argv for the Prometheus exporters (Debian's `prometheus-node-exporter` and
//! `prometheus-nginx-exporter` 0.11).

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

/// Where the node exporter is looked for: Debian's path, then these names on `PATH`
/// (Debian's and nixpkgs' names).
pub const NODE_EXPORTER: [&str; 3] =
    ["/usr/bin/prometheus-node-exporter", "prometheus-node-exporter", "node_exporter"];
/// See [`NODE_EXPORTER`].
pub const NGINX_EXPORTER: [&str; 3] =
    ["/usr/bin/prometheus-nginx-exporter", "prometheus-nginx-exporter", "nginx-prometheus-exporter"];

/// The first candidate that is an existing file: absolute paths as given, bare names on `PATH`.
#[must_use]
pub fn find(candidates: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    candidates.iter().find_map(|c| {
        if c.contains('/') {
            Some(PathBuf::from(c)).filter(|p| p.is_file())
        } else {
            std::env::split_paths(&path).map(|d| d.join(c)).find(|p| p.is_file())
        }
    })
}

/// The collectors the node exporter runs (host CPU, memory, disk and network, and the CPU's
/// RAPL energy counters, `node_rapl_*_joules_total`, where the host has them: VMs and many
/// cloud hosts do not, and the collector then reports only `node_scrape_collector_success 0`;
/// nothing that reads files outside /proc and /sys).
pub const NODE_COLLECTORS: [&str; 11] = [
    "cpu",
    "diskstats",
    "filesystem",
    "loadavg",
    "meminfo",
    "netdev",
    "netstat",
    "rapl",
    "stat",
    "time",
    "vmstat",
];

/// `prometheus-node-exporter` arguments.
#[must_use]
pub fn node_args(listen: SocketAddr) -> Vec<OsString> {
    let mut a: Vec<OsString> =
        vec![format!("--web.listen-address={listen}").into(), "--collector.disable-defaults".into()];
    a.extend(NODE_COLLECTORS.iter().map(|c| OsString::from(format!("--collector.{c}"))));
    a
}

/// The address a local client uses to reach a server bound to `listen` (wildcards become loopback).
#[must_use]
pub fn local_address(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port()),
        _ => listen,
    }
}

/// `prometheus-nginx-exporter` arguments: scrape nginx's `stub_status` on the HLS port.
#[must_use]
pub fn nginx_args(listen: SocketAddr, hls: SocketAddr, profile: &str) -> Vec<OsString> {
    // `--name=value`: Go's flag package (0.11) and kingpin (later releases) both accept it.
    vec![
        format!("--web.listen-address={listen}").into(),
        format!("--nginx.scrape-uri=http://{}/nginx_status", local_address(hls)).into(),
        "--nginx.retries=30".into(),
        "--nginx.retry-interval=1s".into(),
        format!("--prometheus.const-labels=instance=hls-origin,profile={profile}").into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_exporter_scrapes_loopback_when_bound_to_wildcard() {
        let a = nginx_args("127.0.0.1:9113".parse().unwrap(), "0.0.0.0:17080".parse().unwrap(), "default");
        assert!(
            a.contains(&OsString::from("--nginx.scrape-uri=http://127.0.0.1:17080/nginx_status")),
            "{a:?}"
        );
        assert!(
            a.contains(&OsString::from("--prometheus.const-labels=instance=hls-origin,profile=default")),
            "{a:?}"
        );
    }

    #[test]
    fn find_tries_paths_then_names_on_path() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("sh");
        std::fs::write(&ours, b"").unwrap();
        let ours_str = ours.to_str().unwrap();
        // Candidates in order: an existing path wins over a name that is also on PATH.
        assert_eq!(find(&["/nonexistent/x", ours_str, "sh"]), Some(ours.clone()));
        // A missing path is skipped for the next candidate, a bare name is looked up on PATH.
        let on_path = find(&["/nonexistent/x", "sh"]).unwrap();
        assert_ne!(on_path, ours);
        let path = std::env::var_os("PATH").unwrap_or_default();
        assert!(
            std::env::split_paths(&path).any(|d| d.join("sh") == on_path) && on_path.is_file(),
            "{on_path:?} is not `sh` in a PATH directory"
        );
        // A directory is not a program.
        assert_eq!(find(&[dir.path().to_str().unwrap()]), None);
        assert_eq!(find(&["/nonexistent/x", "no-such-program-anywhere"]), None);
    }

    #[test]
    fn node_exporter_runs_only_listed_collectors() {
        let a = node_args("127.0.0.1:9100".parse().unwrap());
        let mut want = vec![
            OsString::from("--web.listen-address=127.0.0.1:9100"),
            OsString::from("--collector.disable-defaults"),
        ];
        want.extend(NODE_COLLECTORS.iter().map(|c| OsString::from(format!("--collector.{c}"))));
        assert_eq!(a, want);
        // The origin's energy for the swarm's summary (hls-swarm reads node_rapl_*_joules_total).
        assert!(a.contains(&OsString::from("--collector.rapl")), "{a:?}");
    }
}
