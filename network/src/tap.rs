//! The TAP device, through the TUN driver's ioctls on `/dev/net/tun` (the kernel refuses to create
//! TUN/TAP devices over rtnetlink). The device is made persistent, so it outlives our file
//! descriptor and qemu attaches to it by name later; it is deleted over rtnetlink like any link.
//!
//! The TAP is multi-queue (`IFF_MULTI_QUEUE`): qemu with `-netdev tap,queues=N` (what microvm.nix
//! runs for a VM with more than one vCPU, and what `hls-lab microvm start` runs) attaches N
//! queues, one per vCPU, each with `IFF_MULTI_QUEUE`. The kernel refuses an attach whose
//! multi-queue flag differs from the device's (`EINVAL`), so the flag is fixed at creation and
//! every attach, ours included, must use it.
//!
//! Runs in the caller's thread: call it from a thread inside the wanted namespace.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::raw::c_char;

use crate::topology::TapOwner;

const TUN_PATH: &str = "/dev/net/tun";

/// The flags of every attach to the lab's TAP: layer 2, no packet-info header, multi-queue.
const FLAGS: libc::c_int = libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_MULTI_QUEUE;

/// Create the persistent multi-queue TAP `name` if it is missing, or attach one queue to the
/// existing one, and set the owner and group that are given. The kernel cannot clear an owner once
/// set (`TUNSETOWNER -1` is `EINVAL`): to drop one, delete the device first. An existing
/// single-queue TAP refuses the attach with `EINVAL` ([`remove_single_queue`] it first).
pub(crate) fn ensure(name: &str, owner: Option<TapOwner>) -> io::Result<()> {
    let tun = open()?;
    set_iff(&tun, name, FLAGS)?;
    ioctl_int(&tun, libc::TUNSETPERSIST, 1)?;
    if let Some(owner) = owner {
        ioctl_int(&tun, libc::TUNSETOWNER, owner.uid)?;
        if let Some(gid) = owner.gid {
            ioctl_int(&tun, libc::TUNSETGROUP, gid)?;
        }
    }
    Ok(())
}

/// Delete the single-queue TAP `name` (made by an older setup, or `ip tuntap add` without
/// `multi_queue`), unless a program holds it: attach to it single-queue, which fails with `EBUSY`
/// while qemu has it open, make it non-persistent, and close it, which destroys it.
pub(crate) fn remove_single_queue(name: &str) -> io::Result<()> {
    let tun = open()?;
    set_iff(&tun, name, libc::IFF_TAP | libc::IFF_NO_PI)?;
    ioctl_int(&tun, libc::TUNSETPERSIST, 0)
}

fn open() -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(TUN_PATH)
}

fn set_iff(tun: &File, name: &str, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: ifreq is plain old data (a name array and a union of integers, sockaddrs and a
    // pointer) for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("tap name {name:?} is too long")));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as c_char;
    }
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq`; `req` is a valid, NUL-terminated one
    // that lives across the call, and `tun` is an open /dev/net/tun descriptor.
    let rc = unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut libc::ifreq) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn ioctl_int(tun: &File, request: libc::Ioctl, value: u32) -> io::Result<()> {
    // SAFETY: TUNSETOWNER, TUNSETGROUP and TUNSETPERSIST take their argument by value (an
    // unsigned long), not through a pointer; `tun` is an open /dev/net/tun descriptor.
    let rc = unsafe { libc::ioctl(tun.as_raw_fd(), request, libc::c_ulong::from(value)) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
