//! `hls-lab network setup|teardown|check`: flags with the seed's defaults, one function that runs a
//! command and returns its exit code (0 ok, 1 failure or not ready or not root, 2 bad input).

use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::check::CheckOptions;
use crate::error::{chain, Error, InputError};
use crate::log::Log;
use crate::topology::{Cidr, TapOwner, Topology, DEFAULT_BRIDGE, DEFAULT_RUN_DIR, DEFAULT_TAP};

#[derive(Debug, Clone, Subcommand)]
pub enum NetworkCommand {
    /// Create the bridge, its address, the TAP on it and (with --nat) NAT; fix what differs.
    /// Safe to run again.
    Setup(TopologyArgs),
    /// Remove the TAP, the bridge and the NAT table, restore ip_forward, and delete the
    /// namespace if setup created it. Safe on a half-built network.
    Teardown(TopologyArgs),
    /// Check kernel support, bridge, TAP, vhost-net and the VM's ports (17080, 9100, 9113);
    /// prints ✓/✗ lines and exits 1 unless ready. Changes nothing.
    Check(CheckArgs),
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Network")]
pub struct TopologyArgs {
    /// Build everything inside this network namespace (created if missing); the host's own
    /// interfaces are not touched
    #[arg(long, env = "HLS_LAB_NETNS", value_name = "NAME")]
    pub netns: Option<String>,
    /// Bridge name
    #[arg(long, env = "HLS_LAB_BRIDGE", default_value = DEFAULT_BRIDGE, value_name = "NAME")]
    pub bridge: String,
    /// The bridge's address and prefix (the host side of the VM link)
    #[arg(long, env = "HLS_LAB_BRIDGE_ADDR", default_value = "10.177.0.1/24", value_name = "CIDR",
          value_parser = parse_bridge_addr)]
    pub bridge_addr: Cidr,
    /// TAP device name (qemu attaches to it)
    #[arg(long, env = "HLS_LAB_TAP", default_value = DEFAULT_TAP, value_name = "NAME")]
    pub tap: String,
    /// The VM's address (where check looks for the origin)
    #[arg(long, env = "HLS_LAB_VM_ADDR", default_value = "10.177.0.10", value_name = "ADDR")]
    pub vm_addr: Ipv4Addr,
    /// Let this user (name or uid) open the TAP, so qemu can run without root
    #[arg(long, env = "HLS_LAB_TAP_USER", value_name = "USER")]
    pub tap_user: Option<String>,
    /// Masquerade the VM's outbound traffic (nftables table ip hlslab) and turn on
    /// net.ipv4.ip_forward if it is off (teardown turns it off again)
    #[arg(long, env = "HLS_LAB_NAT")]
    pub nat: bool,
    /// Where the state file lives (what teardown must undo)
    #[arg(long, env = "HLS_LAB_RUN_DIR", default_value = DEFAULT_RUN_DIR, value_name = "DIR")]
    pub run_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// Leave out the VM's ports (to check the host side before a VM runs)
    #[arg(long)]
    pub skip_vm: bool,
    /// How long to wait for each connect to the VM
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
}

fn parse_bridge_addr(value: &str) -> Result<Cidr, InputError> {
    Cidr::parse("bridge address", value)
}

impl TopologyArgs {
    /// The validated topology these flags describe.
    pub fn topology(&self) -> Result<Topology, InputError> {
        let tap_owner = self.tap_user.as_deref().map(TapOwner::resolve).transpose()?;
        let topo = Topology {
            bridge: self.bridge.clone(),
            bridge_addr: self.bridge_addr,
            tap: self.tap.clone(),
            tap_owner,
            vm_addr: self.vm_addr,
            nat: self.nat,
            netns: self.netns.clone(),
            run_dir: self.run_dir.clone(),
        };
        topo.validate()?;
        Ok(topo)
    }
}

/// Run `cmd`, printing to stdout and stderr; returns the exit code.
pub fn run(cmd: NetworkCommand) -> i32 {
    run_to(cmd, &mut io::stdout().lock(), &mut io::stderr().lock())
}

/// [`run`] with the output streams given (for tests and embedding).
pub fn run_to(cmd: NetworkCommand, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    // Output errors (a closed pipe) do not change what was done, so they do not change the code.
    let args = match &cmd {
        NetworkCommand::Setup(a) | NetworkCommand::Teardown(a) => a,
        NetworkCommand::Check(c) => &c.topology,
    };
    let topo = match args.topology() {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(err, "error: {}", chain(&e));
            return 2;
        }
    };
    match cmd {
        NetworkCommand::Setup(_) => {
            let mut log = Log::default();
            let res = crate::setup(&topo, &mut log);
            print_log(&log, out);
            match res {
                Ok(()) => {
                    let _ = writeln!(out, "network ready ({}): {} changes", topo.scope(), log.changes());
                    0
                }
                Err(e) => {
                    let _ = writeln!(err, "error: {}", chain(&e));
                    if log.changes() > 0 {
                        let _ = writeln!(err, "the partial setup is undone by: {}", teardown_line(&topo));
                    }
                    e.exit_code()
                }
            }
        }
        NetworkCommand::Teardown(_) => {
            let mut log = Log::default();
            let res = crate::teardown(&topo, &mut log);
            print_log(&log, out);
            match res {
                Ok(()) => {
                    let _ = writeln!(out, "network removed ({}): {} changes", topo.scope(), log.changes());
                    0
                }
                Err(e) => report_error(&e, err),
            }
        }
        NetworkCommand::Check(c) => {
            let opts = CheckOptions { skip_vm: c.skip_vm, connect_timeout: c.timeout };
            match crate::check(&topo, &opts) {
                Ok(report) => {
                    let _ = writeln!(out, "{report}");
                    if report.passed() {
                        0
                    } else {
                        1
                    }
                }
                Err(e) => report_error(&e, err),
            }
        }
    }
}

fn print_log(log: &Log, out: &mut dyn Write) {
    for step in &log.steps {
        let _ = writeln!(out, "{step}");
    }
}

fn report_error(e: &Error, err: &mut dyn Write) -> i32 {
    let _ = writeln!(err, "error: {}", chain(e));
    e.exit_code()
}

fn teardown_line(topo: &Topology) -> String {
    match &topo.netns {
        Some(ns) => format!("hls-lab network teardown --netns {ns}"),
        None => "hls-lab network teardown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: NetworkCommand,
    }

    fn parse(args: &[&str]) -> Result<NetworkCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("network").chain(args.iter().copied())).map(|c| c.cmd)
    }

    #[test]
    fn defaults_are_the_seeds() {
        let seed = Topology {
            bridge: "hlsbr0".into(),
            bridge_addr: "10.177.0.1/24".parse().unwrap(),
            tap: "hlstap0".into(),
            tap_owner: None,
            vm_addr: Ipv4Addr::new(10, 177, 0, 10),
            nat: false,
            netns: None,
            run_dir: "/run/hls-lab".into(),
        };
        assert_eq!(Topology::default(), seed);
        for args in [&["setup"][..], &["teardown"], &["check"]] {
            let topo = match parse(args).unwrap() {
                NetworkCommand::Setup(a) | NetworkCommand::Teardown(a) => a.topology(),
                NetworkCommand::Check(c) => {
                    assert_eq!((c.skip_vm, c.timeout), (false, Duration::from_secs(1)));
                    c.topology.topology()
                }
            };
            assert_eq!(topo.unwrap(), seed, "{args:?}");
        }
    }

    #[test]
    fn flags_fill_the_topology() {
        let cmd = parse(&[
            "teardown",
            "--netns",
            "lab",
            "--bridge",
            "br9",
            "--bridge-addr",
            "10.9.0.1/16",
            "--tap",
            "tap9",
            "--vm-addr",
            "10.9.3.4",
            "--tap-user",
            "root",
            "--nat",
            "--run-dir",
            "/tmp/x",
        ])
        .unwrap();
        let NetworkCommand::Teardown(a) = cmd else { panic!("not teardown") };
        assert_eq!(
            a.topology().unwrap(),
            Topology {
                bridge: "br9".into(),
                bridge_addr: Cidr { addr: Ipv4Addr::new(10, 9, 0, 1), prefix: 16 },
                tap: "tap9".into(),
                tap_owner: Some(TapOwner { uid: 0, gid: Some(0) }),
                vm_addr: Ipv4Addr::new(10, 9, 3, 4),
                nat: true,
                netns: Some("lab".into()),
                run_dir: "/tmp/x".into(),
            }
        );
    }

    #[test]
    fn bad_cidr_is_a_usage_error_naming_the_value() {
        let e = parse(&["setup", "--bridge-addr", "10.177.0.1/33"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert!(text.contains("10.177.0.1/33") && text.contains("like 10.177.0.1/24"), "{text}");
    }

    #[test]
    fn bad_names_exit_2_before_anything_happens() {
        let cmd = parse(&["setup", "--tap", "a-very-long-tap-name"]).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(run_to(cmd, &mut out, &mut err), 2);
        let err = String::from_utf8(err).unwrap();
        assert!(err.contains("a-very-long-tap-name") && err.contains("15 bytes"), "{err}");
        assert!(out.is_empty());

        let cmd = parse(&["check", "--tap-user", "no-such-user-hlslab"]).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(run_to(cmd, &mut out, &mut err), 2);
        assert!(String::from_utf8(err).unwrap().contains("no-such-user-hlslab"));
    }
}
