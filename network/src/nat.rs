//! NAT for the VM's outbound traffic: one nftables table, `ip hlslab`, that masquerades traffic from
//! the bridge network leaving through any other interface, plus `net.ipv4.ip_forward`.
//!
//! The table is ours alone: installing replaces it whole in one transaction, teardown deletes it
//! whole, and no other table or chain is touched. `nft` runs as a child inside the namespace.
//! `ip_forward` is per namespace: read and write it from a thread inside the namespace.

use std::io::{self, Write};
use std::process::{Command, Stdio};

use crate::error::Error;
use crate::netns;
use crate::topology::{Cidr, NAT_TABLE};

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// The ruleset for the bridge network `net`: replace (add, delete, define) in one transaction, so
/// applying twice is the same as applying once.
pub(crate) fn ruleset(net: Cidr) -> String {
    let network = format!("{}/{}", net.network(), net.prefix);
    format!(
        "add table ip {NAT_TABLE}\n\
         delete table ip {NAT_TABLE}\n\
         table ip {NAT_TABLE} {{\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {network} ip daddr != {network} masquerade\n\
         \t}}\n\
         }}\n"
    )
}

/// Install (or replace) the NAT table.
pub(crate) fn apply(netns: Option<&str>, net: Cidr) -> Result<(), Error> {
    nft(netns, "installing the NAT table", &["-f", "-"], Some(&ruleset(net)))?;
    Ok(())
}

/// Whether the NAT table exists. `Ok(None)` when `nft` is not installed.
pub(crate) fn present(netns: Option<&str>) -> Result<Option<bool>, Error> {
    let mut cmd = command(netns, "reading the NAT table")?;
    cmd.args(["list", "table", "ip", NAT_TABLE]).stdout(Stdio::null()).stderr(Stdio::null());
    match cmd.status() {
        Ok(status) => Ok(Some(status.success())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(spawn_error("reading the NAT table", e)),
    }
}

/// Delete the NAT table; `false` if there was none (or `nft` is not installed, so there can be none
/// of ours).
pub(crate) fn remove(netns: Option<&str>) -> Result<bool, Error> {
    if present(netns)? != Some(true) {
        return Ok(false);
    }
    nft(netns, "deleting the NAT table", &["delete", "table", "ip", NAT_TABLE], None)?;
    Ok(true)
}

fn command(netns: Option<&str>, op: &'static str) -> Result<Command, Error> {
    let mut cmd = Command::new("nft");
    if let Some(name) = netns {
        netns::enter_in_child(&mut cmd, name)
            .map_err(|source| Error::Netns { op: "entering", name: name.to_string(), source })
            .map_err(|e| Error::Nft { op, detail: crate::error::chain(&e) })?;
    }
    Ok(cmd)
}

fn spawn_error(op: &'static str, e: io::Error) -> Error {
    let detail = if e.kind() == io::ErrorKind::NotFound {
        "nft is not installed (apt-get install nftables), or drop --nat".to_string()
    } else {
        e.to_string()
    };
    Error::Nft { op, detail }
}

fn nft(netns: Option<&str>, op: &'static str, args: &[&str], stdin: Option<&str>) -> Result<(), Error> {
    let mut cmd = command(netns, op)?;
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| spawn_error(op, e))?;
    if let Some(mut pipe) = child.stdin.take() {
        if let Some(text) = stdin {
            // A write error shows up as nft's own failure below.
            let _ = pipe.write_all(text.as_bytes());
        }
    }
    let out = child.wait_with_output().map_err(|e| spawn_error(op, e))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(Error::Nft { op, detail: format!("{} ({})", stderr, out.status) });
    }
    Ok(())
}

/// `net.ipv4.ip_forward` of the calling thread's namespace.
pub(crate) fn ip_forward() -> Result<bool, Error> {
    let text = std::fs::read_to_string(IP_FORWARD).map_err(|source| Error::File {
        op: "reading",
        path: IP_FORWARD.into(),
        source,
    })?;
    Ok(text.trim() != "0")
}

/// Set `net.ipv4.ip_forward` of the calling thread's namespace.
pub(crate) fn set_ip_forward(on: bool) -> Result<(), Error> {
    std::fs::write(IP_FORWARD, if on { "1\n" } else { "0\n" }).map_err(|source| Error::File {
        op: "writing",
        path: IP_FORWARD.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_masquerades_the_bridge_network_only() {
        let rules = ruleset(crate::topology::DEFAULT_BRIDGE_ADDR);
        assert!(rules.starts_with("add table ip hlslab\ndelete table ip hlslab\n"), "{rules}");
        assert!(rules.contains("ip saddr 10.177.0.0/24 ip daddr != 10.177.0.0/24 masquerade"), "{rules}");
    }
}
