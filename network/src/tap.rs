//! The TAP device, through the TUN driver's ioctls on `/dev/net/tun` (the kernel refuses to create
//! TUN/TAP devices over rtnetlink). The device is made persistent, so it outlives our file
//! descriptor and qemu attaches to it by name later; it is deleted over rtnetlink like any link.
//!
//! Runs in the caller's thread: call it from a thread inside the wanted namespace.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::raw::c_char;

use crate::topology::TapOwner;

const TUN_PATH: &str = "/dev/net/tun";

/// Create the persistent TAP `name` if it is missing, or attach to the existing one, and set the
/// owner and group that are given. The kernel cannot clear an owner once set (`TUNSETOWNER -1` is
/// `EINVAL`): to drop one, delete the device first. Fails with `EBUSY` while a program (qemu)
/// holds the device open.
pub(crate) fn ensure(name: &str, owner: Option<TapOwner>) -> io::Result<()> {
    let tun = OpenOptions::new().read(true).write(true).open(TUN_PATH)?;
    set_iff(&tun, name)?;
    ioctl_int(&tun, libc::TUNSETPERSIST, 1)?;
    if let Some(owner) = owner {
        ioctl_int(&tun, libc::TUNSETOWNER, owner.uid)?;
        if let Some(gid) = owner.gid {
            ioctl_int(&tun, libc::TUNSETGROUP, gid)?;
        }
    }
    Ok(())
}

fn set_iff(tun: &File, name: &str) -> io::Result<()> {
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
    req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
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
