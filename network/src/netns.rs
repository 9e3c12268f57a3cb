//! Named network namespaces, compatible with `ip netns`: a namespace is kept alive by a bind mount
//! of its nsfs file on `/run/netns/NAME`.
//!
//! A namespace is per thread. Code that must act inside one (netlink sockets, the TUN ioctl,
//! `/proc/sys/net`, TCP connects) runs on a dedicated OS thread that has called `setns`
//! ([`in_netns`]); a child process is moved into one between fork and exec ([`enter_in_child`]).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// Where named namespaces live (as `ip netns` keeps them).
pub const RUN_NETNS: &str = "/run/netns";

/// The file that names the namespace `name`.
pub fn path(name: &str) -> PathBuf {
    Path::new(RUN_NETNS).join(name)
}

/// Whether `name` is a live namespace (an nsfs file is mounted on its path), not just a leftover
/// empty file.
pub fn exists(name: &str) -> bool {
    match nix::sys::statfs::statfs(&path(name)) {
        Ok(fs) => fs.filesystem_type() == nix::sys::statfs::NSFS_MAGIC,
        Err(_) => false,
    }
}

/// Create the namespace `name` like `ip netns add` does: a helper thread unshares a new network
/// namespace and bind-mounts its `/proc/thread-self/ns/net` on `/run/netns/NAME`. Returns `false`
/// if it already existed. `lo` is down in a new namespace; setup brings it up.
pub fn create(name: &str) -> io::Result<bool> {
    crate::topology::check_netns_name(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if exists(name) {
        return Ok(false);
    }
    prepare_run_dir()?;
    let target = path(name);
    // A leftover plain file (a crashed `ip netns add`, or ours) is reused as the mount point.
    OpenOptions::new().write(true).create(true).truncate(false).mode(0o444).open(&target)?;
    let bound = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            mount(Some("/proc/thread-self/ns/net"), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("netns helper thread panicked")))
    });
    if let Err(e) = bound {
        let _ = std::fs::remove_file(&target);
        return Err(e);
    }
    Ok(true)
}

/// Make `/run/netns` exist and be a shared mount, so namespaces mounted there are seen from every
/// mount namespace (what `ip netns add` does).
fn prepare_run_dir() -> io::Result<()> {
    std::fs::create_dir_all(RUN_NETNS)?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match mount(None::<&str>, RUN_NETNS, Some("none"), shared, None::<&str>) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) => {
            // Not a mount point yet: bind it on itself, then mark it shared.
            mount(
                Some(RUN_NETNS),
                RUN_NETNS,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )?;
            mount(None::<&str>, RUN_NETNS, Some("none"), shared, None::<&str>)?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Delete the namespace `name` (unmount and remove its file). The namespace itself ends, and its
/// virtual devices with it, once no process, thread or open file still holds it. Returns `false` if
/// there was nothing to delete.
pub fn delete(name: &str) -> io::Result<bool> {
    crate::topology::check_netns_name(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let target = path(name);
    let mounted = exists(name);
    if mounted {
        umount2(&target, MntFlags::MNT_DETACH)?;
    }
    match std::fs::remove_file(&target) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(mounted),
        Err(e) => Err(e),
    }
}

fn open(name: &str) -> io::Result<File> {
    if !exists(name) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "network namespace {name} does not exist ({} is not an nsfs mount)",
                path(name).display()
            ),
        ));
    }
    // std opens with O_CLOEXEC.
    File::open(path(name))
}

/// Run `f` on a new OS thread that has entered the namespace `name`, and return its result. Sockets
/// (netlink, TCP), the TUN ioctl and `/proc/sys/net` opened there belong to that namespace; threads
/// and children started from it inherit it. A panic in `f` is resumed on the caller's thread.
pub fn in_netns<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    let ns = open(name)?;
    std::thread::scope(|s| {
        let handle = s.spawn(move || -> io::Result<T> {
            setns(&ns, CloneFlags::CLONE_NEWNET)?;
            drop(ns);
            Ok(f())
        });
        match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// [`in_netns`] when `netns` is given, else `f` on a fresh thread in the caller's namespace (so a
/// caller already inside a tokio runtime can still block on one of its own).
pub(crate) fn run_in<T: Send>(netns: Option<&str>, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    match netns {
        Some(name) => in_netns(name, f),
        None => std::thread::scope(|s| match s.spawn(f).join() {
            Ok(v) => Ok(v),
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    }
}

/// Make `cmd` start inside the namespace `name`: the namespace file is opened now (so a missing
/// namespace is an error here, not in the child) and the child calls `setns(fd, CLONE_NEWNET)`
/// between fork and exec. The fd is close-on-exec, so the program never sees it. Unlike
/// `ip netns exec`, `/sys` is not remounted: the child sees the caller's sysfs. For a
/// `tokio::process::Command` (procgroup's spawn), pass `cmd.as_std_mut()`; hooks added later
/// (process group, parent-death signal) still run, in order.
pub fn enter_in_child(cmd: &mut Command, name: &str) -> io::Result<()> {
    let ns = open(name)?;
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // operations are allowed. It only calls setns(2) on an fd that the closure owns (the File
    // lives in the Command, so the fd stays open until the Command is dropped) and reads errno;
    // it does not allocate, lock or touch any other state.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}
