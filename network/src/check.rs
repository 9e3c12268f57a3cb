//! `check`: read-only look at everything the VM needs, as ✓/✗ lines with the reason and the fix.
//! A missing `/dev/vhost-net` is a warning (qemu falls back to plain TAP); everything else that is
//! wrong is a failure.

use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use crate::error::Error;
use crate::links::{self, with_netlink, Link};
use crate::topology::{Topology, NAT_TABLE, VM_PORTS};
use crate::{nat, netns};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Works, but not at its best.
    Warn,
    Fail,
}

/// One line of the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub status: Status,
    pub text: String,
    /// Why it failed and what to do (for ✗ lines), or a remark (for ✓ lines).
    pub hint: Option<String>,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.status == Status::Ok { '✓' } else { '✗' };
        write!(f, "{mark} {}", self.text)?;
        match (&self.hint, self.status) {
            (Some(hint), Status::Warn) => write!(f, " (warning: {hint})"),
            (Some(hint), _) => write!(f, " ({hint})"),
            (None, Status::Warn) => write!(f, " (warning)"),
            (None, _) => Ok(()),
        }
    }
}

/// All lines of one check, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub items: Vec<Item>,
}

impl Report {
    fn push(&mut self, status: Status, text: impl Into<String>, hint: Option<String>) {
        self.items.push(Item { status, text: text.into(), hint });
    }
    fn ok(&mut self, text: impl Into<String>) {
        self.push(Status::Ok, text, None);
    }
    fn fail(&mut self, text: impl Into<String>, hint: impl Into<String>) {
        self.push(Status::Fail, text, Some(hint.into()));
    }

    pub fn failures(&self) -> usize {
        self.items.iter().filter(|i| i.status == Status::Fail).count()
    }

    pub fn warnings(&self) -> usize {
        self.items.iter().filter(|i| i.status == Status::Warn).count()
    }

    /// No failures (warnings allowed).
    pub fn passed(&self) -> bool {
        self.failures() == 0
    }

    /// The item whose text starts with `prefix`.
    pub fn find(&self, prefix: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.text.starts_with(prefix))
    }

    /// The last line: `network ready`, `network ready (1 warning)` or `network not ready: …`.
    pub fn verdict(&self) -> String {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        match (self.failures(), self.warnings()) {
            (0, 0) => "network ready".to_string(),
            (0, w) => format!("network ready ({})", plural(w, "warning")),
            (f, 0) => format!("network not ready: {}", plural(f, "problem")),
            (f, w) => format!("network not ready: {}, {}", plural(f, "problem"), plural(w, "warning")),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for item in &self.items {
            writeln!(f, "{item}")?;
        }
        write!(f, "{}", self.verdict())
    }
}

/// What `check` looks at besides the topology.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Leave out the VM's ports (before a VM is started).
    pub skip_vm: bool,
    /// How long to wait for each TCP connect to the VM.
    pub connect_timeout: Duration,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { skip_vm: false, connect_timeout: Duration::from_secs(1) }
    }
}

/// What each VM port is.
pub fn port_name(port: u16) -> &'static str {
    match port {
        17080 => "HLS origin",
        9100 => "node exporter",
        9113 => "nginx exporter",
        _ => "port",
    }
}

/// Look at the kernel support, the namespace, the bridge, the TAP, NAT (if asked), vhost-net and
/// the VM's ports. Changes nothing and needs root only to enter a namespace. An `Err` is bad input.
pub fn check(topo: &Topology, opts: &CheckOptions) -> Result<Report, Error> {
    topo.validate()?;
    let mut report = Report::default();
    check_tun(&mut report);
    check_bridge_support(&mut report);
    check_vhost(&mut report);
    let setup_hint = setup_hint(topo);
    let ns = topo.netns.as_deref();
    let inside = match ns {
        Some(name) if !netns::exists(name) => {
            report.fail(format!("netns {name} missing"), setup_hint.clone());
            false
        }
        Some(name) => {
            report.ok(format!("netns {name} exists"));
            true
        }
        None => true,
    };
    if inside {
        let hint = &setup_hint;
        let looked = with_netlink(ns, |h| async move {
            let mut part = Report::default();
            check_links(&h, topo, &mut part).await?;
            if topo.nat {
                check_ip_forward(&mut part);
                check_nat_table(ns, hint, &mut part);
            }
            if !opts.skip_vm {
                check_vm(topo.vm_addr, opts.connect_timeout, &mut part);
            }
            Ok(part)
        });
        match looked {
            Ok(part) => report.items.extend(part.items),
            Err(e) => report.fail(topo.scope(), format!("cannot look inside: {}", crate::error::chain(&e))),
        }
    }
    Ok(report)
}

fn setup_hint(topo: &Topology) -> String {
    match &topo.netns {
        Some(ns) => format!("run: hls-lab network setup --netns {ns}"),
        None => "run: hls-lab network setup".to_string(),
    }
}

fn check_tun(report: &mut Report) {
    match OpenOptions::new().read(true).write(true).open("/dev/net/tun") {
        Ok(_) => report.ok("tun: /dev/net/tun usable"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            report.fail("tun: /dev/net/tun missing", "load the tun module: modprobe tun")
        }
        Err(e) => report.fail("tun: /dev/net/tun not usable", format!("{e}; run as root")),
    }
}

fn check_bridge_support(report: &mut Report) {
    let release = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).ok();
    let module = release.map(|r| Path::new("/lib/modules").join(r).join("kernel/net/bridge"));
    if Path::new("/sys/module/bridge").exists() {
        report.ok("bridge: kernel support loaded");
    } else if module.as_deref().is_some_and(Path::exists) {
        report.ok("bridge: kernel module available (loads on first use)");
    } else {
        report.fail("bridge: no kernel support found", "no /sys/module/bridge; load it: modprobe bridge");
    }
}

fn check_vhost(report: &mut Report) {
    match OpenOptions::new().read(true).write(true).open("/dev/vhost-net") {
        Ok(_) => report.ok("vhost-net: /dev/vhost-net usable (qemu uses vhost=on)"),
        Err(e) => {
            let (what, fix) = if e.kind() == io::ErrorKind::NotFound {
                ("missing".to_string(), "modprobe vhost_net")
            } else {
                (format!("not usable: {e}"), "run qemu as root or grant access to /dev/vhost-net")
            };
            let hint = format!("plain TAP will be used, slower; for vhost: {fix}");
            report.push(Status::Warn, format!("vhost-net: /dev/vhost-net {what}"), Some(hint));
        }
    }
}

async fn check_links(h: &rtnetlink::Handle, topo: &Topology, report: &mut Report) -> Result<(), Error> {
    let hint = setup_hint(topo);
    let (br, cidr) = (&topo.bridge, topo.bridge_addr);
    let bridge = links::get(h, br).await?;
    match &bridge {
        None => report.fail(format!("bridge {br} missing"), hint.clone()),
        Some(link) if !link.is_bridge() => report
            .fail(format!("{br} is not a bridge"), crate::error::chain(&links::wrong_kind(link, "bridge"))),
        Some(link) => {
            let addrs = links::addresses(h, link.index).await?;
            let has = addrs.contains(&(cidr.addr, cidr.prefix));
            match (link.up, has) {
                (true, true) => report.ok(format!("bridge {br} up with {cidr}")),
                (false, _) => report.fail(format!("bridge {br} is down"), hint.clone()),
                (true, false) => {
                    let list: Vec<String> = addrs.iter().map(|(a, p)| format!("{a}/{p}")).collect();
                    let list = if list.is_empty() { "none".to_string() } else { list.join(", ") };
                    report.fail(format!("bridge {br} lacks {cidr}"), format!("it has: {list}; {hint}"))
                }
            }
        }
    }
    let tap_name = &topo.tap;
    match links::get(h, tap_name).await? {
        None => report.fail(format!("tap {tap_name} missing"), hint),
        Some(tap) if !tap.is_tap() => report
            .fail(format!("{tap_name} is not a tap"), crate::error::chain(&links::wrong_kind(&tap, "tap"))),
        Some(tap) => check_tap(&tap, bridge.as_ref(), topo, &hint, report),
    }
    Ok(())
}

fn check_tap(tap: &Link, bridge: Option<&Link>, topo: &Topology, hint: &str, report: &mut Report) {
    let name = &tap.name;
    let attached = bridge.is_some_and(|b| tap.controller == Some(b.index));
    if !attached {
        return report.fail(format!("tap {name} is not a port of {}", topo.bridge), hint);
    }
    if !tap.up {
        return report.fail(format!("tap {name} is down"), hint);
    }
    let tun = tap.tun.unwrap_or_default();
    if !tun.multi_queue {
        let why =
            format!("qemu with queues=N (a queue per vCPU) cannot attach to it; stop the VM, then {hint}");
        return report.fail(format!("tap {name} is single-queue"), why);
    }
    if let Some(want) = topo.tap_owner {
        if tun.owner != Some(want.uid) || (want.gid.is_some() && tun.group != want.gid) {
            let why = format!("uid {} cannot open it; rerun setup with --tap-user {}", want.uid, want.uid);
            return report.fail(format!("tap {name} not owned by uid {}", want.uid), why);
        }
    }
    let owner = match tun.owner {
        Some(uid) => format!("owner uid {uid}"),
        None => "root only".to_string(),
    };
    let carrier = if tap.lower_up { "a VM is attached" } else { "no carrier: no VM attached yet" };
    report.push(
        Status::Ok,
        format!("tap {name} up, multi-queue, port of {}", topo.bridge),
        Some(format!("{owner}; {carrier}")),
    );
}

fn check_nat_table(ns: Option<&str>, hint: &str, report: &mut Report) {
    match nat::present(ns) {
        Ok(Some(true)) => report.ok(format!("NAT table ip {NAT_TABLE} present")),
        Ok(Some(false)) => report.fail(format!("NAT table ip {NAT_TABLE} missing"), format!("{hint} --nat")),
        Ok(None) => report.fail("nft not installed", "apt-get install nftables, or drop --nat"),
        Err(e) => report.fail("NAT table unreadable", crate::error::chain(&e)),
    }
}

fn check_ip_forward(report: &mut Report) {
    match nat::ip_forward() {
        Ok(true) => report.ok("net.ipv4.ip_forward on"),
        Ok(false) => report.fail("net.ipv4.ip_forward off", "NAT needs it; run setup with --nat"),
        Err(e) => report.fail("net.ipv4.ip_forward unreadable", crate::error::chain(&e)),
    }
}

/// Connect to every VM port at once (from the calling thread's namespace: the spawned threads
/// inherit it).
fn check_vm(vm: Ipv4Addr, timeout: Duration, report: &mut Report) {
    let results: Vec<(u16, io::Result<TcpStream>)> = std::thread::scope(|s| {
        let handles: Vec<_> = VM_PORTS
            .iter()
            .map(|&port| {
                s.spawn(move || (port, TcpStream::connect_timeout(&SocketAddr::from((vm, port)), timeout)))
            })
            .collect();
        handles
            .into_iter()
            .zip(VM_PORTS)
            .map(|(h, port)| h.join().unwrap_or_else(|_| (port, Err(io::Error::other("probe panicked")))))
            .collect()
    });
    for (port, res) in results {
        let what = format!("VM {vm}:{port} ({})", port_name(port));
        match res {
            Ok(_) => report.ok(format!("{what} reachable")),
            Err(e) => {
                let why =
                    if e.kind() == io::ErrorKind::TimedOut { "timed out".to_string() } else { e.to_string() };
                report.fail(
                    format!("{what} not reachable"),
                    format!("{why}; is the VM running? start it with: hls-lab microvm start --net tap"),
                )
            }
        }
    }
}
