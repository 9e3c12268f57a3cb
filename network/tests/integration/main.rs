//! Integration tests of the network crate. Every test that changes the network needs root and
//! works only inside network namespaces it creates (`hlslab-t-<pid>-<n>`) and removes, also on
//! failure (the [`Lab`] guard); none touches the host's own interfaces. Without root or
//! `/dev/net/tun` they are reported as skipped, with the reason. State is verified
//! independently of the crate, with `ip -j` and `nft`. Runs on testkit's runner.

#![allow(clippy::unwrap_used)]

fn main() -> std::process::ExitCode {
    testkit::main()
}

mod check;
mod cli;
mod netns;
mod setup;
mod tap;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use network::Topology;
use serde_json::Value;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// What every test here needs: root and a TUN device (network namespaces, bridges, TAP).
pub fn can_run() -> testkit::Outcome {
    testkit::need::root("network namespaces, bridges, TAP devices")?;
    testkit::need::device("/dev/net/tun", "TAP devices need the tun driver")
}

/// A unique namespace name for this test process; deleted (if it exists) when dropped, with a
/// private run directory for the state file.
#[derive(Debug)]
pub struct Lab {
    pub ns: String,
    pub run_dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl Lab {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Lab {
        Lab { ns: unique_name(), run_dir: tempfile::tempdir().unwrap(), extra: Vec::new() }
    }

    /// The default topology in this lab's namespace, with the state file in the private run dir.
    pub fn topology(&self) -> Topology {
        Topology { run_dir: self.run_dir.path().to_path_buf(), ..Topology::in_netns(&self.ns) }
    }

    pub fn state_path(&self) -> PathBuf {
        self.topology().state_path()
    }

    /// Another namespace, removed with this guard.
    pub fn other_netns(&mut self) -> String {
        let name = unique_name();
        self.extra.push(name.clone());
        name
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in self.extra.iter().chain([&self.ns]) {
            let _ = network::netns::delete(name);
        }
    }
}

fn unique_name() -> String {
    format!("hlslab-t-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Run `ip ARGS`, panicking with its stderr on failure.
pub fn ip(args: &[&str]) -> String {
    run("ip", args)
}

pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `ip -n NS -j -d link show`, as JSON, one object per link.
pub fn links(ns: &str) -> Vec<Value> {
    serde_json::from_str(&ip(&["-n", ns, "-j", "-d", "link", "show"])).unwrap()
}

pub fn link(ns: &str, name: &str) -> Option<Value> {
    links(ns).into_iter().find(|l| l["ifname"] == name)
}

pub fn is_up(link: &Value) -> bool {
    link["flags"].as_array().unwrap().iter().any(|f| f == "UP")
}

/// The IPv4 addresses of `dev` in `ns`, as `addr/prefix`.
pub fn addrs(ns: &str, dev: &str) -> Vec<String> {
    let v: Vec<Value> =
        serde_json::from_str(&ip(&["-n", ns, "-j", "-4", "addr", "show", "dev", dev])).unwrap();
    v.iter()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

/// `net.ipv4.ip_forward` inside `ns`.
pub fn ip_forward(ns: &str) -> String {
    ip(&["netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ip_forward"]).trim().to_string()
}

/// Whether `table ip hlslab` exists inside `ns`.
pub fn nat_table(ns: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns, "nft", "list", "table", "ip", "hlslab"])
        .output()
        .unwrap()
        .status
        .success()
}

/// Whether `ip netns list` shows `ns`.
pub fn listed(ns: &str) -> bool {
    ip(&["netns", "list"]).lines().any(|l| l.split_whitespace().next() == Some(ns))
}
