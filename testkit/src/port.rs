//! Ports for the servers a test starts (Prometheus, exporters, an origin's listeners).
//!
//! "Bind port 0, read the port, close it, pass it on" leaves the port free until the server
//! binds it, and on a busy machine something takes it in between: every outgoing connection
//! gets an ephemeral port from the same range port 0 draws from. [`reserve`] draws instead
//! from ports the kernel never hands out by itself (below `ip_local_port_range`), and holds a
//! lock file per port for as long as the returned [`Port`] lives, so two tests (in any of
//! the workspace's test processes) never pick the same one. The lock goes with the process,
//! so a killed test leaves nothing reserved.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};

/// A reserved port: free when reserved, and no other [`reserve`] returns it while this lives.
#[derive(Debug)]
pub struct Port {
    port: u16,
    _lock: Flock<File>,
}

impl Port {
    /// The port number.
    #[must_use]
    pub fn get(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    #[must_use]
    pub fn loopback(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }
}

/// How many candidates [`reserve`] tries before giving up.
const TRIES: u32 = 200;

/// A free port outside the kernel's ephemeral range, reserved for the caller (see the module
/// documentation).
///
/// # Errors
/// The lock directory cannot be made, or no candidate was free after [`TRIES`] attempts.
pub fn reserve() -> io::Result<Port> {
    let (low, high) = candidates();
    let dir = std::env::temp_dir().join("testkit-ports");
    std::fs::create_dir_all(&dir)?;
    let mut state = seed();
    for _ in 0..TRIES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let port = low + u16::try_from(state % u64::from(high - low + 1)).unwrap_or(0);
        if let Some(p) = try_port(&dir.join(port.to_string()), port)? {
            return Ok(p);
        }
    }
    Err(io::Error::other(format!("no free port in {low}..={high} after {TRIES} tries")))
}

fn try_port(lock: &PathBuf, port: u16) -> io::Result<Option<Port>> {
    let file = File::options().create(true).truncate(false).write(true).open(lock)?;
    let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
        return Ok(None);
    };
    // Taken by something outside this scheme (a system service)?
    if TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_err() {
        return Ok(None);
    }
    Ok(Some(Port { port, _lock: lock }))
}

/// The range drawn from: below the ephemeral range when there is room, else above it.
fn candidates() -> (u16, u16) {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut it = range.split_whitespace().filter_map(|v| v.parse::<u16>().ok());
    let (lo, hi) = (it.next().unwrap_or(32_768), it.next().unwrap_or(60_999));
    if lo > 12_000 {
        (10_000, lo - 1)
    } else {
        (hi.saturating_add(1).max(1024), u16::MAX)
    }
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()) ^ d.as_secs());
    (u64::from(std::process::id()) << 32 ^ nanos) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_are_bindable_distinct_outside_the_ephemeral_range_and_locked() {
        let (low, high) = candidates();
        let ports: Vec<Port> = (0..20).map(|_| reserve().unwrap()).collect();
        let mut numbers: Vec<u16> = ports.iter().map(Port::get).collect();
        assert!(numbers.iter().all(|p| (low..=high).contains(p)), "{numbers:?} outside {low}..={high}");
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), 20, "a port was handed out twice");
        for p in &ports {
            TcpListener::bind(p.loopback()).unwrap();
        }
        drop(ports);

        // One test, so no other reservation in this process races the one checked here.
        let p = reserve().unwrap();
        let dir = std::env::temp_dir().join("testkit-ports");
        assert!(try_port(&dir.join(p.get().to_string()), p.get()).unwrap().is_none());
        let n = p.get();
        drop(p);
        assert!(try_port(&dir.join(n.to_string()), n).unwrap().is_some());
    }
}
