//! Bridge, addresses, link state and bridge ports over rtnetlink. Every `ensure_*` reads the current
//! state first, changes only what differs, tolerates "exists" from a racing peer, and says what it
//! did in the log.
//!
//! The netlink socket belongs to the namespace of the thread that opened it: open the [`Handle`]
//! on a thread inside the wanted namespace ([`with_netlink`], which setup and check both use).

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_core::Nla;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoData, InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::{Handle, LinkBridge, LinkUnspec};

use crate::error::Error;
use crate::log::Log;
use crate::netns;
use crate::topology::Cidr;

/// Run `f` with a netlink handle on a thread inside `netns` (or the host's namespace), on a
/// current-thread tokio runtime of that thread. Synchronous code in `f` (the TUN ioctl,
/// `/proc/sys/net`) runs in that namespace too.
pub(crate) fn with_netlink<T, F, Fut>(netns: Option<&str>, f: F) -> Result<T, Error>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let enter_err =
        |source| Error::Netns { op: "entering", name: netns.unwrap_or("host").to_string(), source };
    netns::run_in(netns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|source| Error::Io { op: "starting the netlink runtime", source })?;
        rt.block_on(async move {
            let (conn, handle, _) = rtnetlink::new_connection()
                .map_err(|source| Error::Io { op: "opening a netlink socket", source })?;
            let conn = tokio::spawn(conn);
            let out = f(handle).await;
            conn.abort();
            out
        })
    })
    .map_err(enter_err)?
}

/// What the kernel says about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub index: u32,
    pub name: String,
    /// `bridge`, `tun`, `veth`, … (`None` for devices without rtnetlink ops, like `lo`).
    pub kind: Option<String>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Carrier present (`IFF_LOWER_UP`); a TAP has none until a program attaches to it.
    pub lower_up: bool,
    /// Index of the bridge (or bond) this link is a port of.
    pub controller: Option<u32>,
    pub tun: Option<Tun>,
}

/// The TUN driver's own attributes (`IFLA_TUN_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tun {
    pub tap: bool,
    pub owner: Option<u32>,
    pub group: Option<u32>,
    pub persist: bool,
    /// Made with `IFF_MULTI_QUEUE`: every attach must ask for it too (qemu's `queues=N`, N > 1).
    pub multi_queue: bool,
}

const IFLA_TUN_OWNER: u16 = 1;
const IFLA_TUN_GROUP: u16 = 2;
const IFLA_TUN_TYPE: u16 = 3;
const IFLA_TUN_PERSIST: u16 = 6;
const IFLA_TUN_MULTI_QUEUE: u16 = 7;
const IFF_TAP: u8 = 2;

impl Link {
    fn from_message(msg: &LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            kind: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            lower_up: msg.header.flags.contains(LinkFlags::LowerUp),
            controller: None,
            tun: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(name) => link.name = name.clone(),
                LinkAttribute::Controller(index) => link.controller = Some(*index),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(kind) => link.kind = Some(kind.to_string()),
                            LinkInfo::Data(InfoData::Tun(nlas)) => link.tun = Some(parse_tun(nlas)),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if link.kind.as_deref() == Some(&InfoKind::Tun.to_string()) && link.tun.is_none() {
            link.tun = Some(Tun::default());
        }
        link
    }

    pub fn is_bridge(&self) -> bool {
        self.kind.as_deref() == Some("bridge")
    }

    pub fn is_tap(&self) -> bool {
        self.tun.is_some_and(|t| t.tap)
    }
}

fn parse_tun(nlas: &[impl Nla]) -> Tun {
    let mut tun = Tun::default();
    for nla in nlas {
        let mut value = vec![0u8; nla.value_len()];
        nla.emit_value(&mut value);
        let u32_value = || value.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_ne_bytes);
        match nla.kind() {
            IFLA_TUN_OWNER => tun.owner = u32_value().filter(|&v| v != u32::MAX),
            IFLA_TUN_GROUP => tun.group = u32_value().filter(|&v| v != u32::MAX),
            IFLA_TUN_TYPE => tun.tap = value.first() == Some(&IFF_TAP),
            IFLA_TUN_PERSIST => tun.persist = value.first() == Some(&1),
            IFLA_TUN_MULTI_QUEUE => tun.multi_queue = value.first() == Some(&1),
            _ => {}
        }
    }
    tun
}

fn is_errno(err: &rtnetlink::Error, errno: i32) -> bool {
    matches!(err, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -errno)
}

/// The link named `name`, or `None` if there is none.
pub(crate) async fn get(handle: &Handle, name: &str) -> Result<Option<Link>, Error> {
    let mut links = handle.link().get().match_name(name).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(Link::from_message(&msg))),
        Ok(None) => Ok(None),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
        Err(e) => Err(Error::netlink(format!("reading link {name}"), e)),
    }
}

async fn get_existing(handle: &Handle, name: &str) -> Result<Link, Error> {
    get(handle, name).await?.ok_or_else(|| Error::Vanished { name: name.to_string() })
}

/// The bridge `name`, created (up) if missing; an existing device of another kind is an error.
pub(crate) async fn ensure_bridge(handle: &Handle, name: &str, log: &mut Log) -> Result<Link, Error> {
    if let Some(link) = get(handle, name).await? {
        if !link.is_bridge() {
            return Err(wrong_kind(&link, "bridge"));
        }
        log.kept(format!("bridge {name} exists"));
        return Ok(link);
    }
    match handle.link().add(LinkBridge::new(name).build()).execute().await {
        Ok(()) => log.changed(format!("created bridge {name}")),
        Err(e) if is_errno(&e, libc::EEXIST) => log.kept(format!("bridge {name} exists")),
        Err(e) => return Err(Error::netlink(format!("creating bridge {name}"), e)),
    }
    let link = get_existing(handle, name).await?;
    if !link.is_bridge() {
        return Err(wrong_kind(&link, "bridge"));
    }
    Ok(link)
}

pub(crate) fn wrong_kind(link: &Link, wanted: &'static str) -> Error {
    let kind = match (&link.kind, link.tun) {
        (_, Some(t)) if !t.tap => "tun (layer 3)".to_string(),
        (Some(k), _) => k.clone(),
        (None, _) => "physical or loopback".to_string(),
    };
    Error::WrongKind { name: link.name.clone(), kind, wanted }
}

/// Bring `link` up if it is down.
pub(crate) async fn ensure_up(handle: &Handle, link: &Link, what: &str, log: &mut Log) -> Result<(), Error> {
    if link.up {
        log.kept(format!("{what} {} already up", link.name));
        return Ok(());
    }
    handle
        .link()
        .set(LinkUnspec::new_with_index(link.index).up().build())
        .execute()
        .await
        .map_err(|e| Error::netlink(format!("bringing {what} {} up", link.name), e))?;
    log.changed(format!("brought {what} {} up", link.name));
    Ok(())
}

/// The IPv4 addresses (with prefix lengths) on the link `index`.
pub(crate) async fn addresses(handle: &Handle, index: u32) -> Result<Vec<(Ipv4Addr, u8)>, Error> {
    let mut found = Vec::new();
    let mut msgs = handle.address().get().set_link_index_filter(index).execute();
    while let Some(msg) =
        msgs.try_next().await.map_err(|e| Error::netlink(format!("reading addresses of link {index}"), e))?
    {
        // The dump filter is applied by the kernel only with strict checking; filter here too.
        if msg.header.index != index {
            continue;
        }
        for attr in &msg.attributes {
            if let AddressAttribute::Local(IpAddr::V4(ip)) = attr {
                found.push((*ip, msg.header.prefix_len));
            }
        }
    }
    Ok(found)
}

/// Put `cidr` on `link` if it is not there yet. Other addresses are left alone.
pub(crate) async fn ensure_addr(
    handle: &Handle,
    link: &Link,
    cidr: Cidr,
    log: &mut Log,
) -> Result<(), Error> {
    if addresses(handle, link.index).await?.contains(&(cidr.addr, cidr.prefix)) {
        log.kept(format!("bridge {} already has {cidr}", link.name));
        return Ok(());
    }
    match handle.address().add(link.index, IpAddr::V4(cidr.addr), cidr.prefix).execute().await {
        Ok(()) => log.changed(format!("added {cidr} to bridge {}", link.name)),
        Err(e) if is_errno(&e, libc::EEXIST) => log.kept(format!("bridge {} already has {cidr}", link.name)),
        Err(e) => return Err(Error::netlink(format!("adding {cidr} to {}", link.name), e)),
    }
    Ok(())
}

/// Make `port` a port of `bridge`.
pub(crate) async fn ensure_port(
    handle: &Handle,
    port: &Link,
    bridge: &Link,
    log: &mut Log,
) -> Result<(), Error> {
    if port.controller == Some(bridge.index) {
        log.kept(format!("tap {} already a port of {}", port.name, bridge.name));
        return Ok(());
    }
    handle
        .link()
        .set(LinkUnspec::new_with_index(port.index).controller(bridge.index).build())
        .execute()
        .await
        .map_err(|e| Error::netlink(format!("attaching {} to bridge {}", port.name, bridge.name), e))?;
    log.changed(format!("attached tap {} to bridge {}", port.name, bridge.name));
    Ok(())
}

/// Delete the link `name` if it exists and is of the wanted kind (`is_kind`); a device of another
/// kind with that name is not ours and is left alone (an error).
pub(crate) async fn remove(
    handle: &Handle,
    name: &str,
    what: &'static str,
    is_kind: fn(&Link) -> bool,
    log: &mut Log,
) -> Result<(), Error> {
    let Some(link) = get(handle, name).await? else {
        log.kept(format!("{what} {name} not present"));
        return Ok(());
    };
    if !is_kind(&link) {
        return Err(wrong_kind(&link, what));
    }
    match handle.link().del(link.index).execute().await {
        Ok(()) => log.changed(format!("deleted {what} {name}")),
        Err(e) if is_errno(&e, libc::ENODEV) => log.kept(format!("{what} {name} not present")),
        Err(e) => return Err(Error::netlink(format!("deleting {what} {name}"), e)),
    }
    Ok(())
}
