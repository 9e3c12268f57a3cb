//! argv for the Prometheus exporters (Debian's `prometheus-node-exporter` and
//! `prometheus-nginx-exporter` 0.11).

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Where the exporters' binaries are looked up by default.
pub const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
/// See [`NODE_EXPORTER`].
pub const NGINX_EXPORTER: &str = "/usr/bin/prometheus-nginx-exporter";

/// The collectors the node exporter runs (host CPU, memory, disk and network; nothing that
/// reads files outside /proc and /sys).
pub const NODE_COLLECTORS: [&str; 10] = [
    "cpu",
    "diskstats",
    "filesystem",
    "loadavg",
    "meminfo",
    "netdev",
    "netstat",
    "stat",
    "time",
    "vmstat",
];

/// `prometheus-node-exporter` arguments.
#[must_use]
pub fn node_args(listen: SocketAddr) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        format!("--web.listen-address={listen}").into(),
        "--collector.disable-defaults".into(),
    ];
    a.extend(
        NODE_COLLECTORS
            .iter()
            .map(|c| OsString::from(format!("--collector.{c}"))),
    );
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
    vec![
        "-web.listen-address".into(),
        listen.to_string().into(),
        "-nginx.scrape-uri".into(),
        format!("http://{}/nginx_status", local_address(hls)).into(),
        "-nginx.retries".into(),
        "30".into(),
        "-nginx.retry-interval".into(),
        "1s".into(),
        "-prometheus.const-labels".into(),
        format!("instance=hls-origin,profile={profile}").into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_exporter_scrapes_loopback_when_bound_to_wildcard() {
        let a = nginx_args(
            "127.0.0.1:9113".parse().unwrap(),
            "0.0.0.0:17080".parse().unwrap(),
            "default",
        );
        assert!(
            a.contains(&OsString::from("http://127.0.0.1:17080/nginx_status")),
            "{a:?}"
        );
        assert!(
            a.contains(&OsString::from("instance=hls-origin,profile=default")),
            "{a:?}"
        );
    }

    #[test]
    fn node_exporter_runs_only_listed_collectors() {
        let a = node_args("127.0.0.1:9100".parse().unwrap());
        assert_eq!(a[0], OsString::from("--web.listen-address=127.0.0.1:9100"));
        assert_eq!(a.len(), 2 + NODE_COLLECTORS.len());
    }
}
