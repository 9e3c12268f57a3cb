//! The TAP is multi-queue: it takes the attaches qemu makes with `-netdev tap,queues=N` (what
//! microvm.nix runs for a VM with more than one vCPU) and refuses a single-queue one. The attaches
//! are made here with our own `TUNSETIFF`, independently of the crate.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;

use network::{check, CheckOptions, Log, Status, TapOwner, Topology};
use serde_json::Value;

use crate::*;

const TAP: &str = "hlstap0";

/// Attach to the TAP `name` like qemu does for one queue: open `/dev/net/tun` and `TUNSETIFF`
/// with `IFF_TAP | IFF_NO_PI`, plus `IFF_MULTI_QUEUE` when `multi_queue` (qemu: `queues` > 1).
/// The queue stays attached while the returned file is open. Call from inside the namespace.
fn attach(name: &str, multi_queue: bool) -> io::Result<File> {
    let tun = OpenOptions::new().read(true).write(true).open("/dev/net/tun")?;
    // SAFETY: ifreq is plain old data for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = *src as libc::c_char;
    }
    let mq = if multi_queue { libc::IFF_MULTI_QUEUE } else { 0 };
    req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | mq) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq`; `req` is NUL-terminated (the name is
    // shorter than the array) and lives across the call; `tun` is an open /dev/net/tun.
    let rc = unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut libc::ifreq) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(tun)
}

fn info_data(ns: &str) -> Value {
    link(ns, TAP).unwrap()["linkinfo"]["info_data"].clone()
}

fn setup(topo: &Topology) -> Log {
    let mut log = Log::default();
    network::setup(topo, &mut log).unwrap_or_else(|e| panic!("{}\n{log:?}", network::error::chain(&e)));
    log
}

fn texts_of(log: &Log) -> Vec<&str> {
    log.steps.iter().map(|s| s.text.as_str()).collect()
}

fn single_queue_attach_errno(ns: &str) -> Option<i32> {
    let single = network::netns::in_netns(ns, || attach(TAP, false)).unwrap();
    single.err().and_then(|e| e.raw_os_error())
}

fn tap_item(topo: &Topology) -> String {
    let report = check(topo, &CheckOptions { skip_vm: true, ..CheckOptions::default() }).unwrap();
    let item = report.find(&format!("tap {TAP}")).unwrap();
    assert_eq!(item.status == Status::Ok, report.passed(), "{report}");
    item.to_string()
}

#[testkit::test]
fn root_netns_tap_takes_two_multi_queue_attaches_and_refuses_a_single_queue_one() -> testkit::Outcome {
    can_run()?;
    let lab = Lab::new();
    let topo = lab.topology();
    setup(&topo);
    assert_eq!(info_data(&lab.ns)["multi_queue"], true, "{}", info_data(&lab.ns));

    // What qemu -netdev tap,ifname=hlstap0,queues=2 does: two multi-queue attaches, held together.
    let queues = network::netns::in_netns(&lab.ns, || [attach(TAP, true), attach(TAP, true)]).unwrap();
    let queues = queues.map(|q| q.unwrap_or_else(|e| panic!("multi-queue attach to {TAP}: {e}")));
    assert_eq!(info_data(&lab.ns)["numqueues"], 2, "{}", info_data(&lab.ns));
    assert!(tap_item(&topo).ends_with("(root only; a VM is attached)"), "{}", tap_item(&topo));
    // What qemu without queues= (or microvm.nix with one vCPU) does: refused while the queues are
    // attached (and below, when none is).
    assert_eq!(single_queue_attach_errno(&lab.ns), Some(libc::EINVAL));
    // Another queue can always attach, so setup changes the owner under a running VM.
    let owned = Topology { tap_owner: Some(TapOwner { uid: 4_000_123, gid: None }), ..topo.clone() };
    assert!(texts_of(&setup(&owned)).contains(&"tap hlstap0 now usable by uid 4000123"));
    assert_eq!(
        (&info_data(&lab.ns)["user"], &info_data(&lab.ns)["numqueues"]),
        (&4_000_123.into(), &2.into())
    );
    drop(queues);
    assert_eq!(info_data(&lab.ns)["numqueues"], 0, "{}", info_data(&lab.ns));
    assert_eq!(single_queue_attach_errno(&lab.ns), Some(libc::EINVAL));

    assert_eq!(
        tap_item(&topo),
        "✓ tap hlstap0 up, multi-queue, port of hlsbr0 (owner uid 4000123; no carrier: no VM attached yet)"
    );
    let mut log = Log::default();
    network::teardown(&topo, &mut log).unwrap();
    assert!(texts_of(&log).contains(&"deleted tap hlstap0"), "{log:?}");
    assert!(!network::netns::exists(&lab.ns), "{log:?}");
    Ok(())
}

#[testkit::test]
fn root_netns_setup_replaces_a_single_queue_tap_keeping_its_owner() -> testkit::Outcome {
    can_run()?;
    let lab = Lab::new();
    let topo = lab.topology();
    setup(&topo);
    // What an older setup made: single-queue, persistent, owned, an up port of the bridge.
    ip(&["-n", &lab.ns, "link", "del", TAP]);
    ip(&["-n", &lab.ns, "tuntap", "add", "dev", TAP, "mode", "tap", "user", "4000123", "group", "4000124"]);
    ip(&["-n", &lab.ns, "link", "set", TAP, "master", "hlsbr0", "up"]);
    assert_eq!(info_data(&lab.ns)["multi_queue"], false);
    let item = tap_item(&topo);
    assert!(item.starts_with("✗ tap hlstap0 is single-queue (qemu with queues=N"), "{item}");
    let fix = format!("stop the VM, then run: hls-lab network setup --netns {})", lab.ns);
    assert!(item.ends_with(&fix), "{item}");

    // In use (a VM from before attached single-queue): refused, and left alone.
    let index = link(&lab.ns, TAP).unwrap()["ifindex"].clone();
    let vm = network::netns::in_netns(&lab.ns, || attach(TAP, false)).unwrap().unwrap();
    let mut log = Log::default();
    let err = network::setup(&topo, &mut log).unwrap_err();
    let text = network::error::chain(&err);
    assert!(text.starts_with("replacing the single-queue tap hlstap0: "), "{text}");
    assert!(text.ends_with("it is in use (a running VM?); stop the VM first"), "{text}");
    assert_eq!(link(&lab.ns, TAP).unwrap()["ifindex"], index);
    drop(vm);

    // Free: replaced by a multi-queue TAP with the same owner, back on the bridge, up.
    let log = setup(&topo);
    assert!(
        texts_of(&log)
            .contains(&"replaced single-queue tap hlstap0 with a multi-queue one (uid 4000123, gid 4000124)"),
        "{log:?}"
    );
    let data = info_data(&lab.ns);
    assert_eq!(
        (&data["multi_queue"], &data["user"], &data["group"]),
        (&true.into(), &4000123.into(), &4000124.into())
    );
    let tap = link(&lab.ns, TAP).unwrap();
    assert!(tap["master"] == "hlsbr0" && is_up(&tap), "{tap}");
    assert!(tap_item(&topo).starts_with("✓ tap hlstap0 up, multi-queue"));
    // Again: nothing to do.
    assert_eq!(setup(&topo).changes(), 0);
    Ok(())
}
