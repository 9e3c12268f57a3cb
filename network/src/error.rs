//! Errors: bad input (found before any side effect) and failures of a step.

use std::io;
use std::path::PathBuf;

/// A value the caller gave that cannot be used. Found by [`crate::Topology::validate`] before
/// anything is changed.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(
        "{what} name {name:?} is {reason}; an interface name is 1 to 15 bytes \
         without '/', ':' or whitespace, and not \".\" or \"..\""
    )]
    InterfaceName { what: &'static str, name: String, reason: &'static str },
    #[error("netns name {name:?} is {reason}; use a plain file name (no '/', not \".\" or \"..\")")]
    NetnsName { name: String, reason: &'static str },
    #[error(
        "{what} {value:?} is not valid: {reason}; expected an IPv4 address with a prefix length \
         from 1 to 30, like 10.177.0.1/24"
    )]
    Cidr { what: &'static str, value: String, reason: String },
    #[error(
        "vm address {vm} is {reason} of the bridge network {network}; pick another address in \
         {network}"
    )]
    VmAddr { vm: std::net::Ipv4Addr, network: String, reason: &'static str },
    #[error("bridge and tap are both named {0:?}; give them different names")]
    SameName(String),
    #[error("unknown user {0:?} for the tap owner; give an existing user name or a numeric uid")]
    UnknownUser(String),
}

/// A step of setup, teardown or check that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(
        "changing the network needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN); run it as root or with sudo"
    )]
    NotRoot,
    #[error("{op} network namespace {name}")]
    Netns {
        op: &'static str,
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("{op}")]
    Netlink {
        op: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("{op} tap {name}")]
    Tap {
        op: &'static str,
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("link {name} vanished while being set up (another program removed it); run setup again")]
    Vanished { name: String },
    #[error("{name} exists but is a {kind} device, not a {wanted}; remove it or pick another name")]
    WrongKind { name: String, kind: String, wanted: &'static str },
    #[error("{op} {}", path.display())]
    File {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("nft {op}: {detail}")]
    Nft { op: &'static str, detail: String },
    #[error("{op}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn netlink(op: impl Into<String>, source: rtnetlink::Error) -> Self {
        Error::Netlink { op: op.into(), source }
    }

    /// The exit code the CLI uses for this error: 2 for bad input, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) => 2,
            _ => 1,
        }
    }
}

/// The error and its causes on one line, `outer: inner: innermost`.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}
