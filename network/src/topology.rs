//! The wanted network, as data: names, addresses, owner, NAT, namespace. Validated once, before any
//! side effect.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::InputError;

/// The seed's bridge name.
pub const DEFAULT_BRIDGE: &str = "hlsbr0";
/// The seed's bridge address (the host side of the VM link).
pub const DEFAULT_BRIDGE_ADDR: Cidr = Cidr { addr: Ipv4Addr::new(10, 177, 0, 1), prefix: 24 };
/// The seed's TAP name.
pub const DEFAULT_TAP: &str = "hlstap0";
/// The seed's VM address.
pub const DEFAULT_VM_ADDR: Ipv4Addr = Ipv4Addr::new(10, 177, 0, 10);
/// The origin's ports inside the VM: HLS (nginx), node exporter, nginx exporter.
pub const VM_PORTS: [u16; 3] = [17080, 9100, 9113];
/// Where the state file lives unless told otherwise.
pub const DEFAULT_RUN_DIR: &str = "/run/hls-lab";
/// The nftables table that holds the NAT rules; teardown deletes it whole.
pub const NAT_TABLE: &str = "hlslab";
/// Linux `IFNAMSIZ` less the terminating NUL.
pub const MAX_IFNAME: usize = 15;

/// An IPv4 address with a prefix length, like `10.177.0.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The broadcast address (host bits set).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }

    fn mask(&self) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0)
    }

    /// Parse, naming the flag or field in the error.
    pub fn parse(what: &'static str, value: &str) -> Result<Cidr, InputError> {
        let bad = |reason: String| InputError::Cidr { what, value: value.to_string(), reason };
        let (addr, prefix) =
            value.split_once('/').ok_or_else(|| bad("the prefix length is missing".into()))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad(format!("{addr:?} is not an IPv4 address")))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad(format!("{prefix:?} is not a prefix length")))?;
        if !(1..=30).contains(&prefix) {
            return Err(bad(format!("prefix length {prefix} is out of range")));
        }
        let cidr = Cidr { addr, prefix };
        if addr == cidr.network() || addr == cidr.broadcast() {
            return Err(bad(format!("{addr} is the network or broadcast address of /{prefix}")));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cidr::parse("address", s)
    }
}

/// Who may open the TAP without root (`TUNSETOWNER` / `TUNSETGROUP`), so a non-root qemu can use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapOwner {
    pub uid: u32,
    pub gid: Option<u32>,
}

impl TapOwner {
    /// A user name or a numeric uid. A name (or a uid with a passwd entry) also gives the user's
    /// primary group.
    pub fn resolve(value: &str) -> Result<TapOwner, InputError> {
        let unknown = || InputError::UnknownUser(value.to_string());
        if let Ok(uid) = value.parse::<u32>() {
            let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok().flatten();
            return Ok(TapOwner { uid, gid: user.map(|u| u.gid.as_raw()) });
        }
        let user = nix::unistd::User::from_name(value).ok().flatten().ok_or_else(unknown)?;
        Ok(TapOwner { uid: user.uid.as_raw(), gid: Some(user.gid.as_raw()) })
    }
}

/// The wanted network. `Default` is the seed's: bridge `hlsbr0` with 10.177.0.1/24, TAP `hlstap0`
/// on it, VM at 10.177.0.10, no NAT, in the host's own namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub bridge: String,
    pub bridge_addr: Cidr,
    pub tap: String,
    /// `None`: only root can open the TAP.
    pub tap_owner: Option<TapOwner>,
    /// Where `check` looks for the VM; must be inside `bridge_addr`'s network.
    pub vm_addr: Ipv4Addr,
    /// Masquerade the VM's outbound traffic (nftables table `ip hlslab`) and turn on
    /// `net.ipv4.ip_forward` if it is off.
    pub nat: bool,
    /// Build everything inside this network namespace (created if missing).
    pub netns: Option<String>,
    /// Where the state file lives (`network-<netns or host>.json`).
    pub run_dir: PathBuf,
}

impl Default for Topology {
    fn default() -> Self {
        Topology {
            bridge: DEFAULT_BRIDGE.to_string(),
            bridge_addr: DEFAULT_BRIDGE_ADDR,
            tap: DEFAULT_TAP.to_string(),
            tap_owner: None,
            vm_addr: DEFAULT_VM_ADDR,
            nat: false,
            netns: None,
            run_dir: PathBuf::from(DEFAULT_RUN_DIR),
        }
    }
}

impl Topology {
    /// The default topology inside the namespace `name`.
    pub fn in_netns(name: &str) -> Topology {
        Topology { netns: Some(name.to_string()), ..Topology::default() }
    }

    /// Every check that needs no system call.
    pub fn validate(&self) -> Result<(), InputError> {
        check_ifname("bridge", &self.bridge)?;
        check_ifname("tap", &self.tap)?;
        if self.bridge == self.tap {
            return Err(InputError::SameName(self.bridge.clone()));
        }
        if let Some(ns) = &self.netns {
            check_netns_name(ns)?;
        }
        let net = self.bridge_addr;
        let network = format!("{}/{}", net.network(), net.prefix);
        let vm = self.vm_addr;
        let reason = if !net.contains(vm) {
            Some("outside")
        } else if vm == net.addr {
            Some("the bridge's own address")
        } else if vm == net.network() || vm == net.broadcast() {
            Some("the network or broadcast address")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(InputError::VmAddr { vm, network, reason }),
            None => Ok(()),
        }
    }

    /// The state file of this topology's namespace.
    pub fn state_path(&self) -> PathBuf {
        let scope = self.netns.as_deref().unwrap_or("host");
        let scope = if self.netns.is_some() { format!("netns-{scope}") } else { scope.to_string() };
        self.run_dir.join(format!("network-{scope}.json"))
    }

    /// `netns NAME` or `host`, for messages.
    pub fn scope(&self) -> String {
        match &self.netns {
            Some(ns) => format!("netns {ns}"),
            None => "host".to_string(),
        }
    }
}

/// The kernel's `dev_valid_name`, with the flag or field named in the error.
pub fn check_ifname(what: &'static str, name: &str) -> Result<(), InputError> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > MAX_IFNAME {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("reserved")
    } else if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        Some("using a forbidden character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(InputError::InterfaceName { what, name: name.to_string(), reason }),
        None => Ok(()),
    }
}

/// What `ip netns add` accepts: a file name under /run/netns.
pub fn check_netns_name(name: &str) -> Result<(), InputError> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > 255 {
        Some("longer than 255 bytes")
    } else if name == "." || name == ".." {
        Some("reserved")
    } else if name.contains('/') || name.contains('\0') {
        Some("using a forbidden character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(InputError::NetnsName { name: name.to_string(), reason }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_computes() {
        let c: Cidr = "10.177.0.1/24".parse().unwrap();
        assert_eq!(c, DEFAULT_BRIDGE_ADDR);
        assert_eq!(c.network(), Ipv4Addr::new(10, 177, 0, 0));
        assert_eq!(c.broadcast(), Ipv4Addr::new(10, 177, 0, 255));
        assert!(c.contains(DEFAULT_VM_ADDR));
        assert!(!c.contains(Ipv4Addr::new(10, 177, 1, 10)));
        assert_eq!(c.to_string(), "10.177.0.1/24");
    }

    #[test]
    fn cidr_rejects_with_the_value_named() {
        for bad in ["10.177.0.1", "10.177.0.1/33", "10.177.0.1/0", "10.177.0.300/24", "x/24", "10.177.0.0/24"]
        {
            let err = Cidr::parse("--bridge-addr", bad).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains("--bridge-addr"), "{err}");
            assert!(err.contains("like 10.177.0.1/24"), "{err}");
        }
    }

    #[test]
    fn interface_names_follow_the_kernel() {
        assert!(check_ifname("tap", "hlstap0").is_ok());
        assert!(check_ifname("tap", "a23456789012345").is_ok());
        let err = check_ifname("tap", "a234567890123456").unwrap_err().to_string();
        assert!(err.contains("longer than 15 bytes") && err.contains("a234567890123456"), "{err}");
        for bad in ["", ".", "..", "a/b", "a:b", "a b"] {
            assert!(check_ifname("bridge", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn topology_validation() {
        assert!(Topology::default().validate().is_ok());
        let t = Topology { vm_addr: Ipv4Addr::new(10, 1, 0, 10), ..Topology::default() };
        assert!(t.validate().unwrap_err().to_string().contains("outside"));
        let t = Topology { vm_addr: DEFAULT_BRIDGE_ADDR.addr, ..Topology::default() };
        assert!(t.validate().unwrap_err().to_string().contains("bridge's own"));
        let t = Topology { tap: DEFAULT_BRIDGE.into(), ..Topology::default() };
        assert!(t.validate().is_err());
        let t = Topology { netns: Some("a/b".into()), ..Topology::default() };
        assert!(t.validate().is_err());
    }

    #[test]
    fn state_path_is_per_namespace() {
        assert!(Topology::default().state_path().ends_with("network-host.json"));
        assert!(Topology::in_netns("lab").state_path().ends_with("network-netns-lab.json"));
    }

    #[test]
    fn tap_owner_resolves_names_and_uids() {
        assert_eq!(TapOwner::resolve("root").unwrap(), TapOwner { uid: 0, gid: Some(0) });
        assert_eq!(TapOwner::resolve("0").unwrap(), TapOwner { uid: 0, gid: Some(0) });
        assert_eq!(TapOwner::resolve("4000123").unwrap(), TapOwner { uid: 4000123, gid: None });
        assert!(TapOwner::resolve("no-such-user-hlslab").is_err());
    }
}
