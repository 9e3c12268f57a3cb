//! Where viewers and the probe may connect. A playlist can name any host; on a cloud load
//! generator the link-local range holds the instance's metadata service (and its
//! credentials), so link-local and cloud metadata addresses are refused unless
//! `--allow-link-local` says otherwise. Other private ranges stay allowed: labs use them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The flag that lifts the policy.
pub const FLAG: &str = "--allow-link-local";

/// Cloud metadata services outside the link-local ranges (AWS over IPv6, Alibaba Cloud).
const METADATA: [IpAddr; 2] = [
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
];

/// Why `ip` is refused, if it is: link-local (169.254.0.0/16, fe80::/10, including the
/// 169.254.169.254 metadata service) or a known cloud metadata address.
#[must_use]
pub fn refused(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    if METADATA.contains(&ip) {
        return Some("a cloud metadata address");
    }
    match ip {
        IpAddr::V4(v4) if v4.is_link_local() => Some("a link-local address (cloud metadata lives there)"),
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => Some("a link-local address"),
        _ => None,
    }
}

/// The message for a refused `addr`.
#[must_use]
pub fn message(addr: SocketAddr, why: &str) -> String {
    format!("refused to connect to {addr}: {why} ({FLAG} allows it)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_and_metadata_are_refused_private_ranges_are_not() {
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "febf::1",
            "fd00:ec2::254",
            "100.100.100.200",
            "::ffff:169.254.169.254",
        ] {
            assert!(refused(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in [
            "10.177.0.10",
            "192.168.1.1",
            "172.16.0.1",
            "127.0.0.1",
            "::1",
            "fd00::1",
            "fec0::1",
            "8.8.8.8",
            "100.64.0.1",
        ] {
            assert!(refused(ip.parse().unwrap()).is_none(), "{ip}");
        }
        let m = message("169.254.169.254:80".parse().unwrap(), "a link-local address");
        assert_eq!(
            m,
            "refused to connect to 169.254.169.254:80: a link-local address (--allow-link-local allows it)"
        );
    }
}
