//! Named namespaces: create/delete like `ip netns`, code and children inside them.

use std::process::Command;

use network::netns;

use crate::*;

#[testkit::test]
fn root_netns_create_and_delete_are_ip_netns_compatible() -> testkit::Outcome {
    can_run()?;
    let lab = Lab::new();
    assert!(!netns::exists(&lab.ns));
    assert!(netns::create(&lab.ns).unwrap());
    assert!(!netns::create(&lab.ns).unwrap(), "second create finds it");
    assert!(netns::exists(&lab.ns) && listed(&lab.ns));
    // iproute2 can use it.
    assert!(ip(&["-n", &lab.ns, "-j", "link", "show"]).contains("\"lo\""));
    assert!(netns::delete(&lab.ns).unwrap());
    assert!(!netns::exists(&lab.ns) && !listed(&lab.ns));
    assert!(!netns::delete(&lab.ns).unwrap(), "nothing left to delete");
    // A leftover empty file (a half-created namespace) is not a namespace, and is reused.
    std::fs::write(netns::path(&lab.ns), "").unwrap();
    assert!(!netns::exists(&lab.ns));
    assert!(netns::create(&lab.ns).unwrap());
    assert!(netns::exists(&lab.ns));
    Ok(())
}

#[testkit::test]
fn root_netns_code_and_children_run_inside() -> testkit::Outcome {
    can_run()?;
    let lab = Lab::new();
    netns::create(&lab.ns).unwrap();
    ip(&["-n", &lab.ns, "link", "add", "hlslabmark0", "type", "bridge"]);

    // in_netns: the thread's own view (/proc/thread-self/net), not the process's.
    let dev =
        netns::in_netns(&lab.ns, || std::fs::read_to_string("/proc/thread-self/net/dev").unwrap()).unwrap();
    assert!(dev.contains("hlslabmark0"), "{dev}");
    let host = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
    assert!(!host.contains("hlslabmark0"), "the caller's thread stays outside");

    // enter_in_child: a child started from any thread runs inside.
    let mut cmd = Command::new("ip");
    cmd.args(["-j", "link", "show"]);
    netns::enter_in_child(&mut cmd, &lab.ns).unwrap();
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("hlslabmark0"));

    // A missing namespace is an error now, not in the child.
    let mut cmd = Command::new("true");
    let err = netns::enter_in_child(&mut cmd, "hlslab-t-no-such-netns").unwrap_err();
    assert!(err.to_string().contains("hlslab-t-no-such-netns"), "{err}");
    assert!(netns::in_netns("hlslab-t-no-such-netns", || ()).is_err());
    Ok(())
}
