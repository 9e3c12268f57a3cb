//! The lab network: a host bridge with an address, a TAP device on it for the origin MicroVM,
//! optional NAT, all optionally inside a network namespace.
//!
//! # Theory of operation
//!
//! A [`Topology`] is the wanted state as data, validated once before any side effect.
//! [`setup`] converges the system to it, step by step, each step reading the current state first
//! and changing only what differs (`ensure_*`), so running it twice is harmless and it repairs a
//! half-built network. The mechanisms are split by what the kernel offers: the bridge, addresses,
//! link state and bridge ports go over rtnetlink; the TAP is made with the TUN driver's ioctls on
//! `/dev/net/tun` (the kernel refuses TAP creation over rtnetlink); NAT is one nftables table of
//! our own (`ip hlslab`). What setup changes that is not a device it names (it created the
//! namespace; it turned `net.ipv4.ip_forward` on) goes into a small state file, so [`teardown`]
//! undoes exactly that and nothing else.
//!
//! A network namespace belongs to a thread, not a process: everything that must happen inside one
//! (netlink sockets, the TUN ioctl, `/proc/sys/net`, TCP probes) runs on a dedicated OS thread that
//! entered it ([`netns::in_netns`]), with a current-thread tokio runtime for rtnetlink; children
//! (`nft`, qemu) enter it between fork and exec ([`netns::enter_in_child`]).
//!
//! [`check()`] only reads, and renders ✓/✗ lines with the reason and the fix. [`cli`] is the
//! `hls-lab network setup|teardown|check` front end.

pub mod check;
pub mod cli;
pub mod error;
mod links;
mod log;
mod nat;
pub mod netns;
mod setup;
pub mod state;
mod tap;
pub mod topology;

pub use check::{check, CheckOptions, Report, Status};
pub use error::{Error, InputError};
pub use log::{Log, Step};
pub use setup::{require_root, setup, teardown};
pub use topology::{Cidr, TapOwner, Topology, VM_PORTS};
