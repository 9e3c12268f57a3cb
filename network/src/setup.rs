//! `setup` converges the system to a [`Topology`]; `teardown` removes it and restores what setup
//! changed. Both are safe to repeat and to run on a half-built network.

use rtnetlink::Handle;

use crate::error::Error;
use crate::links::{self, with_netlink, Link};
use crate::log::Log;
use crate::state::State;
use crate::topology::{TapOwner, Topology, NAT_TABLE};
use crate::{nat, netns, tap};

/// Fail with [`Error::NotRoot`] unless the effective uid is 0.
pub fn require_root() -> Result<(), Error> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Error::NotRoot)
    }
}

/// Create what is missing and fix what differs, so that afterwards: the namespace exists (if asked,
/// with `lo` up), the bridge exists, is up and has its address, the TAP exists (persistent,
/// multi-queue, owned as asked), is a port of the bridge and is up, and NAT is on exactly when
/// asked. Every step is recorded in `log`, also when a later one fails; the state file records
/// what teardown must undo.
pub fn setup(topo: &Topology, log: &mut Log) -> Result<(), Error> {
    topo.validate()?;
    require_root()?;
    let path = topo.state_path();
    let mut state = State::load(&path)?.unwrap_or_default();
    state.netns = topo.netns.clone();
    if let Some(ns) = topo.netns.as_deref() {
        let created =
            netns::create(ns).map_err(|source| Error::Netns { op: "creating", name: ns.into(), source })?;
        if created {
            state.created_netns = true;
            log.changed(format!("created netns {ns}"));
        } else {
            log.kept(format!("netns {ns} exists"));
        }
    }
    state.bridge = Some(topo.bridge.clone());
    state.tap = Some(topo.tap.clone());
    state.save(&path)?;

    let (state_mut, links_log) = (&mut state, &mut *log);
    let res = with_netlink(topo.netns.as_deref(), |h| async move {
        converge_links(&h, topo, links_log).await?;
        converge_ip_forward(topo.nat, state_mut, links_log)
    });
    state.save(&path)?;
    res?;

    let ns = topo.netns.as_deref();
    if topo.nat {
        let existed = nat::present(ns)? == Some(true);
        nat::apply(ns, topo.bridge_addr)?;
        let net = format!("{}/{}", topo.bridge_addr.network(), topo.bridge_addr.prefix);
        let what = format!("NAT table ip {NAT_TABLE} (masquerade {net})");
        if existed {
            log.kept(format!("replaced {what}"));
        } else {
            log.changed(format!("installed {what}"));
        }
    } else if nat::remove(ns)? {
        log.changed(format!("deleted NAT table ip {NAT_TABLE} (NAT not asked)"));
    }
    state.nat = topo.nat;
    state.save(&path)
}

/// With NAT: turn `ip_forward` on if it is off and remember that. Without: undo an earlier setup's
/// change.
fn converge_ip_forward(nat: bool, state: &mut State, log: &mut Log) -> Result<(), Error> {
    let on = nat::ip_forward()?;
    if nat {
        if on {
            log.kept("net.ipv4.ip_forward already on");
        } else {
            nat::set_ip_forward(true)?;
            state.ip_forward_before.get_or_insert(false);
            log.changed("turned net.ipv4.ip_forward on (teardown turns it off again)");
        }
    } else if let Some(before) = state.ip_forward_before {
        if on != before {
            nat::set_ip_forward(before)?;
            log.changed(format!("restored net.ipv4.ip_forward to {}", u8::from(before)));
        }
        state.ip_forward_before = None;
    }
    Ok(())
}

/// Remove the TAP and the bridge (by the given names and the ones setup recorded), the NAT table,
/// restore `ip_forward`, and delete the namespace if setup created it. Whatever is already gone is
/// skipped, so this works on a half-built network and when run twice.
pub fn teardown(topo: &Topology, log: &mut Log) -> Result<(), Error> {
    topo.validate()?;
    require_root()?;
    let path = topo.state_path();
    let state = State::load(&path)?.unwrap_or_default();
    let ns = topo.netns.as_deref();
    if let Some(name) = ns {
        if !netns::exists(name) {
            log.kept(format!("netns {name} not present: nothing to tear down"));
            // A leftover mount-point file of a half-created namespace.
            netns::delete(name).map_err(|source| Error::Netns {
                op: "deleting",
                name: name.into(),
                source,
            })?;
            return State::remove(&path);
        }
    }
    let mut taps = vec![topo.tap.clone()];
    let mut bridges = vec![topo.bridge.clone()];
    taps.extend(state.tap.clone().filter(|t| *t != topo.tap));
    bridges.extend(state.bridge.clone().filter(|b| *b != topo.bridge));

    let links_log = &mut *log;
    with_netlink(ns, |h| async move {
        let log = links_log;
        for name in &taps {
            links::remove(&h, name, "tap", Link::is_tap, log).await?;
        }
        for name in &bridges {
            links::remove(&h, name, "bridge", Link::is_bridge, log).await?;
        }
        if let Some(before) = state.ip_forward_before {
            if nat::ip_forward()? != before {
                nat::set_ip_forward(before)?;
                log.changed(format!("restored net.ipv4.ip_forward to {}", u8::from(before)));
            }
        }
        Ok(())
    })?;

    if nat::remove(ns)? {
        log.changed(format!("deleted NAT table ip {NAT_TABLE}"));
    } else {
        log.kept(format!("NAT table ip {NAT_TABLE} not present"));
    }
    if let Some(name) = ns {
        if state.created_netns {
            netns::delete(name).map_err(|source| Error::Netns {
                op: "deleting",
                name: name.into(),
                source,
            })?;
            log.changed(format!("deleted netns {name}"));
        } else {
            log.kept(format!("netns {name} kept (setup did not create it)"));
        }
    }
    State::remove(&path)
}

async fn converge_links(handle: &Handle, topo: &Topology, log: &mut Log) -> Result<(), Error> {
    if topo.netns.is_some() {
        if let Some(lo) = links::get(handle, "lo").await? {
            links::ensure_up(handle, &lo, "loopback", log).await?;
        }
    }
    let bridge = links::ensure_bridge(handle, &topo.bridge, log).await?;
    links::ensure_addr(handle, &bridge, topo.bridge_addr, log).await?;
    links::ensure_up(handle, &bridge, "bridge", log).await?;
    let tap = ensure_tap(handle, topo, log).await?;
    links::ensure_port(handle, &tap, &bridge, log).await?;
    links::ensure_up(handle, &tap, "tap", log).await?;
    Ok(())
}

/// Whether the TAP's owner and group already are what `wanted` asks for (no owner asked: any).
fn owned_as(link: &Link, wanted: Option<TapOwner>) -> bool {
    let tun = link.tun.unwrap_or_default();
    match wanted {
        None => true,
        Some(o) => tun.owner == Some(o.uid) && (o.gid.is_none() || tun.group == o.gid),
    }
}

fn owner_text(link: Option<&Link>, wanted: Option<TapOwner>) -> String {
    let tun = link.and_then(|l| l.tun).unwrap_or_default();
    let (uid, gid) = match wanted {
        Some(o) => (Some(o.uid), o.gid.or(tun.group)),
        None => (tun.owner, tun.group),
    };
    match (uid, gid) {
        (None, None) => "root only".to_string(),
        (Some(uid), Some(gid)) => format!("uid {uid}, gid {gid}"),
        (Some(uid), None) => format!("uid {uid}"),
        (None, Some(gid)) => format!("gid {gid}"),
    }
}

/// The TAP, created (multi-queue) if missing. An owner is set only when one is asked for (and then
/// replaces the old one); without one the existing owner is left alone, so setup never has to
/// recreate (and cut off) a TAP a running VM uses. The kernel cannot unset an owner anyway.
///
/// A single-queue TAP (from an older setup) cannot be converted: it is deleted and made again,
/// keeping its owner unless another is asked for, but only while no program holds it (a VM on it
/// runs on: stop it, then run setup again).
async fn ensure_tap(handle: &Handle, topo: &Topology, log: &mut Log) -> Result<Link, Error> {
    let name = &topo.tap;
    let tap_err = |op, source: std::io::Error| {
        let source = if source.raw_os_error() == Some(libc::EBUSY) {
            std::io::Error::other(format!("{source}: it is in use (a running VM?); stop the VM first"))
        } else {
            source
        };
        Error::Tap { op, name: name.clone(), source }
    };
    let existing = links::get(handle, name).await?;
    match &existing {
        Some(link) if !link.is_tap() => return Err(links::wrong_kind(link, "tap")),
        Some(link) if !link.tun.is_some_and(|t| t.multi_queue) => {
            let tun = link.tun.unwrap_or_default();
            let owner = topo.tap_owner.or(tun.owner.map(|uid| TapOwner { uid, gid: tun.group }));
            tap::remove_single_queue(name).map_err(|e| tap_err("replacing the single-queue", e))?;
            tap::ensure(name, owner).map_err(|e| tap_err("creating", e))?;
            log.changed(format!(
                "replaced single-queue tap {name} with a multi-queue one ({})",
                owner_text(Some(link), owner)
            ));
        }
        Some(link) if owned_as(link, topo.tap_owner) => {
            log.kept(format!("tap {name} exists ({})", owner_text(Some(link), topo.tap_owner)));
        }
        Some(link) => {
            tap::ensure(name, topo.tap_owner).map_err(|e| tap_err("setting the owner of", e))?;
            log.changed(format!("tap {name} now usable by {}", owner_text(Some(link), topo.tap_owner)));
        }
        None => {
            tap::ensure(name, topo.tap_owner).map_err(|e| tap_err("creating", e))?;
            log.changed(format!("created tap {name} ({})", owner_text(None, topo.tap_owner)));
        }
    }
    links::get(handle, name).await?.ok_or_else(|| Error::Vanished { name: name.clone() })
}
