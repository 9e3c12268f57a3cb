//! Telling whether a given child really is the one listening on a port.
//!
//! Choosing a free port, closing it and telling a child to bind it leaves a window in which
//! anything else may take the port (an outgoing connection's ephemeral port is enough), and a
//! readiness probe on that port may then be answered by a stranger. [`listens_on`] tells
//! whether the listener on the port is the child's own.

/// Whether process `pid` holds a TCP socket listening on `port` (any address, IPv4 or IPv6),
/// read from `/proc` in the caller's network namespace.
#[must_use]
pub fn listens_on(pid: u32, port: u16) -> bool {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            let target = target.to_string_lossy();
            target
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|inode| inodes.contains(&inode))
        })
    })
}

/// Socket inodes of every TCP listener on `port` (`/proc/net/tcp` and `tcp6`).
fn listening_inodes(port: u16) -> Vec<u64> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            out.extend(text.lines().skip(1).filter_map(|l| listener_inode(l, port)));
        }
    }
    out
}

/// `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...`: the inode
/// of a row in state `0A` (LISTEN) whose local port is `port`.
fn listener_inode(line: &str, port: u16) -> Option<u64> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
    (local_port == port && *f.get(3)? == "0A").then_some(())?;
    f.get(9)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_proc_net_tcp_are_read() {
        let listen = "   0: 0100007F:8A6D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0";
        assert_eq!(listener_inode(listen, 0x8A6D), Some(123_456));
        assert_eq!(listener_inode(listen, 0x8A6E), None);
        let established = listen.replace(" 0A ", " 01 ");
        assert_eq!(listener_inode(&established, 0x8A6D), None);
    }

    #[test]
    fn we_listen_where_we_bound_and_another_process_does_not() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(listens_on(std::process::id(), port));
        assert!(!listens_on(1, port), "pid 1 does not hold our socket");
        drop(l);
    }
}
