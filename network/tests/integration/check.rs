//! check: ✓ for what setup built, ✗ for a VM that is not there, ✓ for one that listens.

use std::net::TcpListener;
use std::time::Duration;

use network::{CheckOptions, Log, Status};

use crate::*;

fn opts() -> CheckOptions {
    CheckOptions { skip_vm: false, connect_timeout: Duration::from_millis(300) }
}

#[testkit::test]
fn root_netns_check_passes_bridge_and_tap_and_fails_an_absent_vm() -> testkit::Outcome {
    can_run()?;
    let lab = Lab::new();
    network::setup(&lab.topology(), &mut Log::default()).unwrap();
    let report = network::check(&lab.topology(), &opts()).unwrap();
    let text = report.to_string();
    let bridge = report.find("bridge hlsbr0").unwrap();
    assert_eq!(
        (bridge.status, bridge.to_string()),
        (Status::Ok, "✓ bridge hlsbr0 up with 10.177.0.1/24".into())
    );
    let tap = report.find("tap hlstap0").unwrap();
    assert_eq!(tap.status, Status::Ok, "{text}");
    assert!(tap.to_string().contains("no carrier: no VM attached yet"), "{text}");
    for port in network::VM_PORTS {
        let item = report.find(&format!("VM 10.177.0.10:{port}")).unwrap();
        assert_eq!(item.status, Status::Fail, "{text}");
        assert!(
            item.to_string().starts_with('✗') && item.to_string().contains("is the VM running?"),
            "{text}"
        );
    }
    assert!(!report.passed(), "{text}");
    assert!(
        text.ends_with("network not ready: 3 problems") || text.contains("3 problems, 1 warning"),
        "{text}"
    );
    // vhost-net missing is a warning, never a failure.
    let vhost = report.find("vhost-net").unwrap();
    if vhost.status != Status::Ok {
        assert_eq!(vhost.status, Status::Warn);
        assert!(vhost.to_string().contains("plain TAP will be used"), "{text}");
    }

    // Without the VM probes the same network is ready.
    let host_side = network::check(&lab.topology(), &CheckOptions { skip_vm: true, ..opts() }).unwrap();
    assert!(host_side.passed(), "{host_side}");
    assert!(host_side.verdict().starts_with("network ready"), "{host_side}");
    Ok(())
}

#[testkit::test]
fn root_netns_check_finds_a_listening_vm_on_the_bridge() -> testkit::Outcome {
    can_run()?;
    let mut lab = Lab::new();
    network::setup(&lab.topology(), &mut Log::default()).unwrap();
    // A stand-in VM: a second namespace on a veth whose other end is a port of the bridge.
    let vm = lab.other_netns();
    network::netns::create(&vm).unwrap();
    ip(&["-n", &lab.ns, "link", "add", "hlsvh0", "type", "veth", "peer", "name", "hlsvv0", "netns", &vm]);
    ip(&["-n", &lab.ns, "link", "set", "hlsvh0", "master", "hlsbr0", "up"]);
    ip(&["-n", &vm, "addr", "add", "10.177.0.10/24", "dev", "hlsvv0"]);
    ip(&["-n", &vm, "link", "set", "hlsvv0", "up"]);
    // The socket belongs to the namespace it was made in, after the thread is gone too.
    let listener = network::netns::in_netns(&vm, || TcpListener::bind("10.177.0.10:17080")).unwrap().unwrap();

    // The VM answers (ARP, then accept or refuse) in well under a millisecond; the long limit
    // only keeps a loaded machine from turning a slow answer into a failed probe.
    let patient = CheckOptions { connect_timeout: Duration::from_secs(30), ..opts() };
    let report = network::check(&lab.topology(), &patient).unwrap();
    let text = report.to_string();
    let hls = report.find("VM 10.177.0.10:17080").unwrap();
    assert_eq!(hls.to_string(), "✓ VM 10.177.0.10:17080 (HLS origin) reachable", "{text}");
    let node = report.find("VM 10.177.0.10:9100").unwrap();
    assert_eq!(node.status, Status::Fail, "{text}");
    assert!(node.to_string().contains("refused"), "{text}");
    drop(listener);
    Ok(())
}

#[testkit::test]
fn root_netns_check_of_a_missing_network_says_what_to_run() -> testkit::Outcome {
    can_run()?;
    let lab = Lab::new();
    let report = network::check(&lab.topology(), &opts()).unwrap();
    let item = report.find(&format!("netns {}", lab.ns)).unwrap();
    assert_eq!(
        item.to_string(),
        format!("✗ netns {0} missing (run: hls-lab network setup --netns {0})", lab.ns)
    );
    assert!(!network::netns::exists(&lab.ns), "check creates nothing");

    network::netns::create(&lab.ns).unwrap();
    let report = network::check(&lab.topology(), &CheckOptions { skip_vm: true, ..opts() }).unwrap();
    let text = report.to_string();
    assert!(
        text.contains(&format!("✗ bridge hlsbr0 missing (run: hls-lab network setup --netns {})", lab.ns))
    );
    assert!(text.contains("✗ tap hlstap0 missing"), "{text}");
    assert_eq!(report.failures(), 2, "{text}");
    Ok(())
}

/// The system's python (not a per-user shim another uid cannot run).
const PYTHON: &str = "/usr/bin/python3";

/// Attach to the TAP as `uid` (like a non-root qemu would, one queue: `TUNSETIFF` with
/// `IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE`, 0x1102) from inside `ns`; the child holds the
/// TAP open until its stdin closes. Returns the child after it printed its first line.
fn attach_as(ns: &str, uid: u32) -> (std::process::Child, String) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let script = "import fcntl, struct, sys\n\
                  f = open('/dev/net/tun', 'r+b', buffering=0)\n\
                  try:\n    fcntl.ioctl(f, 0x400454ca, struct.pack('16sH', b'hlstap0', 0x1102))\n\
                  except OSError as e:\n    print('refused', e.errno, flush=True); sys.exit(0)\n\
                  print('attached', flush=True)\nsys.stdin.read()\n";
    let mut cmd = Command::new("setpriv");
    cmd.args([&format!("--reuid={uid}"), "--regid=4000124", "--clear-groups", PYTHON, "-c", script]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    network::netns::enter_in_child(&mut cmd, ns).unwrap();
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (child, line.trim().to_string())
}

#[testkit::test]
fn root_netns_tap_user_can_attach_and_check_sees_the_carrier() -> testkit::Outcome {
    can_run()?;
    testkit::need::program("setpriv")?;
    testkit::need::program(PYTHON)?;
    let lab = Lab::new();
    let owner = network::TapOwner { uid: 4_000_123, gid: Some(4_000_124) };
    let topo = network::Topology { tap_owner: Some(owner), ..lab.topology() };
    network::setup(&topo, &mut Log::default()).unwrap();

    let (mut other, said) = attach_as(&lab.ns, 4_000_999);
    assert_eq!(said, "refused 1", "another user cannot open the TAP");
    other.wait().unwrap();

    let (mut vm, said) = attach_as(&lab.ns, 4_000_123);
    assert_eq!(said, "attached");
    let report = network::check(&topo, &CheckOptions { skip_vm: true, ..opts() }).unwrap();
    let tap = report.find("tap hlstap0").unwrap().to_string();
    assert!(tap.contains("owner uid 4000123; a VM is attached"), "{report}");
    // Setup again while the "VM" holds the TAP: nothing to change, so nothing fails.
    let mut log = Log::default();
    network::setup(&topo, &mut log).unwrap();
    assert_eq!(log.changes(), 0, "{log:?}");
    drop(vm.stdin.take());
    assert!(vm.wait().unwrap().success());
    Ok(())
}
