//! The `netns` placement's network: two namespaces of the lab's own, joined by a veth whose
//! client end is a port of a bridge, the same shape as the MicroVM's TAP network with the VM
//! replaced by a namespace.
//!
//! ```text
//!   client namespace (hls-swarm, Prometheus)        origin namespace (hls-origin)
//!   lo up                                           lo up
//!   hlsbr0  bridge 10.177.0.1/24 ── hlsv0 ══ veth ══ eth0 10.177.0.10/24
//! ```
//!
//! Impairment goes on both ends of the veth (each direction): `tc qdisc … netem` when the kernel
//! has it; otherwise loss is an nftables `netdev` table on `eth0` (ingress and egress, `numgen
//! random` drops) and a rate limit a `tbf` qdisc on both ends; delay needs netem and is refused.
//! Nothing outside the two namespaces is touched, and dropping [`LabNet`] deletes them, which
//! deletes every device and rule with them.

use std::net::Ipv4Addr;
use std::process::Command;

use crate::scenario::Impairment;

/// The origin's address.
pub const ORIGIN_ADDR: Ipv4Addr = Ipv4Addr::new(10, 177, 0, 10);
/// The bridge's (client side) address.
pub const BRIDGE_ADDR: Ipv4Addr = Ipv4Addr::new(10, 177, 0, 1);

/// A failed network step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A namespace cannot be created.
    #[error("cannot create network namespace {name}")]
    Netns {
        name: String,
        #[source]
        source: std::io::Error,
    },
    /// `ip`, `tc` or `nft` failed.
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    /// The kernel lacks what the impairment needs.
    #[error("{0}")]
    Unsupported(String),
}

/// How an impairment was applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Mechanism {
    /// `tc qdisc netem` on both ends.
    Netem,
    /// No netem in this kernel: nftables drops and/or tbf.
    Fallback(String),
}

/// The two namespaces; deleted on drop.
#[derive(Debug)]
pub struct LabNet {
    /// Where the swarm runs (bridge side).
    pub client: String,
    /// Where the origin runs.
    pub origin: String,
    created: Vec<String>,
}

/// Runs a short-lived tool to completion; its stderr on failure.
pub fn run(program: &str, args: &[&str]) -> Result<(), Error> {
    let out = Command::new(program).args(args).stdin(std::process::Stdio::null()).output().map_err(|e| {
        Error::Command { command: format!("{program} {}", args.join(" ")), stderr: e.to_string() }
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            command: format!("{program} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

fn output(program: &str, args: &[&str]) -> Result<String, Error> {
    let command = || format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::Command { command: command(), stderr: e.to_string() })?;
    if !out.status.success() {
        return Err(Error::Command {
            command: command(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// (packets sent, dropped) from `tc -s qdisc show`: `Sent 123 bytes 4 pkt (dropped 5, …`.
fn tc_counts(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.trim_start().starts_with("Sent "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let sent = words.get(words.iter().position(|w| *w == "pkt")?.checked_sub(1)?)?.parse().ok()?;
    let dropped =
        words.get(words.iter().position(|w| *w == "(dropped")? + 1)?.trim_end_matches(',').parse().ok()?;
    Some((sent, dropped))
}

/// (packets seen, dropped) from our table: in each chain a bare `counter` rule sees every
/// packet, and the `… counter … drop` rule counts the dropped ones.
fn nft_counts(text: &str) -> (u64, u64) {
    let mut seen = 0;
    let mut dropped = 0;
    for line in text.lines() {
        let Some(i) = line.find("counter packets ") else { continue };
        let n: u64 = line[i + 16..].split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
        if line.trim_end().ends_with("drop") {
            dropped += n;
        } else {
            seen += n;
        }
    }
    (seen, dropped)
}

fn nft(netns: &str, script: &str) -> Result<(), Error> {
    use std::io::Write;
    let command = format!("ip netns exec {netns} nft -f -");
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::Command { command: command.clone(), stderr: e.to_string() })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Command { command: command.clone(), stderr: e.to_string() })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Command { command, stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned() })
    }
}

impl LabNet {
    /// Creates `<prefix>-c` and `<prefix>-o` with the bridge, the veth and the addresses.
    ///
    /// # Errors
    /// Any step; what was created is deleted when the returned error's `LabNet` … is dropped,
    /// so the caller gets nothing half-built.
    pub fn create(prefix: &str) -> Result<LabNet, Error> {
        let mut net =
            LabNet { client: format!("{prefix}-c"), origin: format!("{prefix}-o"), created: Vec::new() };
        for name in [net.client.clone(), net.origin.clone()] {
            network::netns::create(&name).map_err(|source| Error::Netns { name: name.clone(), source })?;
            net.created.push(name);
        }
        let (c, o) = (net.client.as_str(), net.origin.as_str());
        run("ip", &["-n", c, "link", "set", "lo", "up"])?;
        run("ip", &["-n", o, "link", "set", "lo", "up"])?;
        run("ip", &["-n", c, "link", "add", "name", "hlsbr0", "type", "bridge"])?;
        run("ip", &["-n", c, "addr", "add", &format!("{BRIDGE_ADDR}/24"), "dev", "hlsbr0"])?;
        run(
            "ip",
            &["-n", c, "link", "add", "name", "hlsv0", "type", "veth", "peer", "name", "eth0", "netns", o],
        )?;
        run("ip", &["-n", c, "link", "set", "hlsv0", "master", "hlsbr0", "up"])?;
        run("ip", &["-n", c, "link", "set", "hlsbr0", "up"])?;
        run("ip", &["-n", o, "addr", "add", &format!("{ORIGIN_ADDR}/24"), "dev", "eth0"])?;
        run("ip", &["-n", o, "link", "set", "eth0", "up"])?;
        Ok(net)
    }

    /// The namespaces this lab created (for the leftover check).
    pub fn names(&self) -> Vec<String> {
        vec![self.client.clone(), self.origin.clone()]
    }

    /// Applies `imp` to both ends of the veth.
    ///
    /// # Errors
    /// [`Error::Unsupported`] when the kernel has no netem and `imp` asks for a delay; a failed
    /// `tc` or `nft`.
    pub fn impair(&self, imp: &Impairment) -> Result<Mechanism, Error> {
        let ends = [(self.origin.as_str(), "eth0"), (self.client.as_str(), "hlsv0")];
        let mut netem: Vec<String> = vec!["netem".into()];
        if let Some(d) = imp.delay {
            netem.extend(["delay".into(), format!("{}us", d.as_micros())]);
        }
        if let Some(l) = imp.loss_percent {
            netem.extend(["loss".into(), format!("{l}%")]);
        }
        if let Some(r) = imp.rate_kbit {
            netem.extend(["rate".into(), format!("{r}kbit")]);
        }
        let mut first = Vec::new();
        for (ns, dev) in ends {
            let mut args = vec!["-n", ns, "qdisc", "add", "dev", dev, "root"];
            args.extend(netem.iter().map(String::as_str));
            match run("tc", &args) {
                Ok(()) => first.push(()),
                Err(Error::Command { stderr, .. })
                    if first.is_empty() && stderr.contains("qdisc kind is unknown") =>
                {
                    return self.impair_without_netem(imp);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Mechanism::Netem)
    }

    fn impair_without_netem(&self, imp: &Impairment) -> Result<Mechanism, Error> {
        if imp.delay.is_some() {
            return Err(Error::Unsupported(
                "a delay needs the netem qdisc (sch_netem), which this kernel does not have".into(),
            ));
        }
        let mut how = Vec::new();
        if let Some(l) = imp.loss_percent {
            // numgen over 0..10000 gives loss in steps of 0.01 %.
            let below = (l * 100.0).round() as u32;
            nft(
                &self.origin,
                &format!(
                    "table netdev hlslab_impair {{\n\
                     chain egress {{ type filter hook egress device \"eth0\" priority 0; counter; numgen random mod 10000 < {below} counter drop; }}\n\
                     chain ingress {{ type filter hook ingress device \"eth0\" priority 0; counter; numgen random mod 10000 < {below} counter drop; }}\n}}\n"
                ),
            )?;
            how.push(format!("loss: nftables numgen drops on eth0 both ways ({below}/10000)"));
        }
        if let Some(r) = imp.rate_kbit {
            for (ns, dev) in [(self.origin.as_str(), "eth0"), (self.client.as_str(), "hlsv0")] {
                let rate = format!("{r}kbit");
                run(
                    "tc",
                    &[
                        "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", &rate, "burst",
                        "32kbit", "latency", "400ms",
                    ],
                )?;
            }
            how.push("rate: tbf on both ends".into());
        }
        Ok(Mechanism::Fallback(format!("no netem in this kernel; {}", how.join("; "))))
    }

    /// Removes the impairment from both ends: the link is whole again.
    ///
    /// # Errors
    /// A failed `tc` or `nft`.
    pub fn lift(&self, mechanism: &Mechanism) -> Result<(), Error> {
        lift(&self.client, &self.origin, mechanism)
    }

    /// Packets seen and dropped by the impairment so far (both directions), or why unknown.
    pub fn drops(&self, mechanism: &Mechanism) -> Result<(u64, u64), Error> {
        match mechanism {
            Mechanism::Netem => {
                let mut total = (0, 0);
                for (ns, dev) in [(self.origin.as_str(), "eth0"), (self.client.as_str(), "hlsv0")] {
                    let text = output("tc", &["-n", ns, "-s", "qdisc", "show", "dev", dev])?;
                    let (sent, dropped) = tc_counts(&text).ok_or_else(|| Error::Command {
                        command: format!("tc -n {ns} -s qdisc show dev {dev}"),
                        stderr: format!("no counters in: {text}"),
                    })?;
                    total = (total.0 + sent + dropped, total.1 + dropped);
                }
                Ok(total)
            }
            Mechanism::Fallback(_) => {
                let text = output(
                    "ip",
                    &["netns", "exec", &self.origin, "nft", "list", "table", "netdev", "hlslab_impair"],
                )?;
                Ok(nft_counts(&text))
            }
        }
    }

    /// Deletes both namespaces now; the errors, if any.
    pub fn delete(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        for name in self.created.drain(..) {
            if let Err(e) = network::netns::delete(&name) {
                errors.push(format!("cannot delete network namespace {name}: {e}"));
            }
        }
        errors
    }
}

impl Drop for LabNet {
    fn drop(&mut self) {
        let _ = self.delete();
    }
}

/// [`LabNet::lift`] by the namespaces' names, for a task that does not hold the [`LabNet`].
///
/// # Errors
/// A failed `tc` or `nft`.
pub fn lift(client: &str, origin: &str, mechanism: &Mechanism) -> Result<(), Error> {
    for (ns, dev) in [(origin, "eth0"), (client, "hlsv0")] {
        match run("tc", &["-n", ns, "qdisc", "del", "dev", dev, "root"]) {
            // A fallback without a rate limit added no qdisc.
            Err(Error::Command { stderr, .. })
                if matches!(mechanism, Mechanism::Fallback(_)) && stderr.contains("No such file") => {}
            other => other?,
        }
    }
    if let Mechanism::Fallback(how) = mechanism {
        if how.contains("nftables") {
            run("ip", &["netns", "exec", origin, "nft", "delete", "table", "netdev", "hlslab_impair"])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_counters_are_read() {
        let tc = "qdisc netem 8001: root refcnt 2 limit 1000 loss 5%\n Sent 123456 bytes 950 pkt (dropped 50, overlimits 0 requeues 0)\n";
        assert_eq!(tc_counts(tc), Some((950, 50)));
        let nft = "table netdev hlslab_impair {\n\tchain egress {\n\t\ttype filter hook egress device \"eth0\" priority filter; policy accept;\n\t\tcounter packets 1000 bytes 900000\n\t\tnumgen random mod 10000 < 500 counter packets 48 bytes 4000 drop\n\t}\n\n\tchain ingress {\n\t\ttype filter hook ingress device \"eth0\" priority filter; policy accept;\n\t\tcounter packets 600 bytes 40000\n\t\tnumgen random mod 10000 < 500 counter packets 32 bytes 2000 drop\n\t}\n}\n";
        assert_eq!(nft_counts(nft), (1600, 80));
    }
}
