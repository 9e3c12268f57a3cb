//! setup and teardown in fresh namespaces, checked with `ip -j` and `nft`.

use network::{Log, TapOwner, Topology};
use serde_json::Value;

use crate::*;

fn setup(topo: &Topology) -> Log {
    let mut log = Log::default();
    network::setup(topo, &mut log).unwrap_or_else(|e| panic!("{}\n{log:?}", network::error::chain(&e)));
    log
}

fn teardown(topo: &Topology) -> Log {
    let mut log = Log::default();
    network::teardown(topo, &mut log).unwrap_or_else(|e| panic!("{}\n{log:?}", network::error::chain(&e)));
    log
}

fn texts(log: &Log) -> Vec<&str> {
    log.steps.iter().map(|s| s.text.as_str()).collect()
}

#[testkit::test]
fn root_netns_setup_builds_bridge_with_address_and_tap_on_it() -> testkit::Outcome {
    can_run()?;
    let lab = Lab::new();
    let log = setup(&lab.topology());
    assert!(texts(&log).contains(&"created bridge hlsbr0"), "{log:?}");
    assert!(network::netns::exists(&lab.ns) && listed(&lab.ns));

    let br = link(&lab.ns, "hlsbr0").expect("bridge");
    assert_eq!(br["linkinfo"]["info_kind"], "bridge");
    assert!(is_up(&br), "{br}");
    assert_eq!(addrs(&lab.ns, "hlsbr0"), ["10.177.0.1/24"]);

    let tap = link(&lab.ns, "hlstap0").expect("tap");
    assert_eq!(tap["linkinfo"]["info_kind"], "tun");
    assert_eq!(tap["linkinfo"]["info_data"]["type"], "tap");
    assert_eq!(tap["linkinfo"]["info_data"]["persist"], true);
    assert_eq!(tap["master"], "hlsbr0");
    assert!(is_up(&tap), "{tap}");
    assert!(is_up(&link(&lab.ns, "lo").unwrap()), "lo is up in a new namespace");

    let state: Value = serde_json::from_str(&std::fs::read_to_string(lab.state_path()).unwrap()).unwrap();
    assert_eq!(state["created_netns"], true);
    Ok(())
}

/// What must not change between two setups: every link's index, name, kind, MAC, controller,
/// admin state and addresses (not the carrier, which the kernel updates on its own).
fn snapshot(ns: &str) -> Vec<String> {
    let mut out: Vec<String> = links(ns)
        .iter()
        .map(|l| {
            let name = l["ifname"].as_str().unwrap();
            format!(
                "{} {name} {} {} {} {} {:?}",
                l["ifindex"],
                l["linkinfo"]["info_kind"],
                l["address"],
                l["master"],
                is_up(l),
                addrs(ns, name)
            )
        })
        .collect();
    out.sort();
    out
}

#[testkit::test]
fn root_netns_setup_twice_gives_the_same_state() -> testkit::Outcome {
    can_run()?;
    let lab = Lab::new();
    let topo = lab.topology();
    setup(&topo);
    let before = snapshot(&lab.ns);
    let state_before = std::fs::read_to_string(lab.state_path()).unwrap();
    let again = setup(&topo);
    assert_eq!(again.changes(), 0, "{again:?}");
    assert!(texts(&again).contains(&"bridge hlsbr0 already up"), "{again:?}");
    assert_eq!(snapshot(&lab.ns), before);
    assert_eq!(std::fs::read_to_string(lab.state_path()).unwrap(), state_before);
    Ok(())
}

#[testkit::test]
fn root_netns_setup_repairs_a_half_built_network() -> testkit::Outcome {
    can_run()?;
    let lab = Lab::new();
    setup(&lab.topology());
    // Break it: address gone, bridge down, TAP detached and down.
    ip(&["-n", &lab.ns, "addr", "flush", "dev", "hlsbr0"]);
    ip(&["-n", &lab.ns, "link", "set", "hlsbr0", "down"]);
    ip(&["-n", &lab.ns, "link", "set", "hlstap0", "nomaster", "down"]);
    let log = setup(&lab.topology());
    for step in [
        "added 10.177.0.1/24 to bridge hlsbr0",
        "brought bridge hlsbr0 up",
        "attached tap hlstap0 to bridge hlsbr0",
        "brought tap hlstap0 up",
    ] {
        assert!(texts(&log).contains(&step), "{step}: {log:?}");
    }
    assert_eq!(addrs(&lab.ns, "hlsbr0"), ["10.177.0.1/24"]);
    let tap = link(&lab.ns, "hlstap0").unwrap();
    assert!(tap["master"] == "hlsbr0" && is_up(&tap), "{tap}");
    Ok(())
}

#[testkit::test]
fn root_netns_teardown_removes_everything_and_the_namespace() -> testkit::Outcome {
    can_run()?;
    let lab = Lab::new();
    let topo = lab.topology();
    setup(&topo);
    let log = teardown(&topo);
    for step in ["deleted tap hlstap0", "deleted bridge hlsbr0", &format!("deleted netns {}", lab.ns)] {
        assert!(texts(&log).contains(&step), "{step}: {log:?}");
    }
    assert!(!network::netns::exists(&lab.ns));
    assert!(!network::netns::path(&lab.ns).exists());
    assert!(!listed(&lab.ns));
    assert!(!lab.state_path().exists());
    // Again: nothing left, still fine.
    let log = teardown(&topo);
    assert_eq!(log.changes(), 0, "{log:?}");
    Ok(())
}

#[testkit::test]
fn root_netns_teardown_of_a_half_built_setup_succeeds() -> testkit::Outcome {
    can_run()?;
    // Only a bridge, in a namespace made outside setup: the bridge goes, the namespace stays.
    let lab = Lab::new();
    ip(&["netns", "add", &lab.ns]);
    ip(&["-n", &lab.ns, "link", "add", "hlsbr0", "type", "bridge"]);
    let log = teardown(&lab.topology());
    assert!(texts(&log).contains(&"deleted bridge hlsbr0"), "{log:?}");
    assert!(texts(&log).contains(&"tap hlstap0 not present"), "{log:?}");
    assert!(link(&lab.ns, "hlsbr0").is_none());
    assert!(network::netns::exists(&lab.ns), "a namespace setup did not create is kept");

    // A TAP but no bridge.
    ip(&["-n", &lab.ns, "tuntap", "add", "dev", "hlstap0", "mode", "tap"]);
    let log = teardown(&lab.topology());
    assert!(texts(&log).contains(&"deleted tap hlstap0"), "{log:?}");
    assert!(link(&lab.ns, "hlstap0").is_none());

    // Nothing at all, not even the namespace.
    let nothing = Lab::new();
    let log = teardown(&nothing.topology());
    assert_eq!(log.changes(), 0, "{log:?}");
    assert!(!network::netns::path(&nothing.ns).exists());
    Ok(())
}

#[testkit::test]
fn root_netns_nat_turns_ip_forward_on_and_teardown_restores_it() -> testkit::Outcome {
    can_run()?;
    testkit::need::program("nft")?;
    // The namespace exists before setup, so it survives teardown and can be inspected after.
    let lab = Lab::new();
    assert!(network::netns::create(&lab.ns).unwrap());
    // A new namespace copies the host's value (devconf_inherit_init_net = 0): start from off.
    ip(&["netns", "exec", &lab.ns, "sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    assert_eq!(ip_forward(&lab.ns), "0");
    let topo = Topology { nat: true, ..lab.topology() };
    setup(&topo);
    assert_eq!(ip_forward(&lab.ns), "1");
    assert!(nat_table(&lab.ns));
    let rules = ip(&["netns", "exec", &lab.ns, "nft", "list", "table", "ip", "hlslab"]);
    assert!(rules.contains("ip saddr 10.177.0.0/24 ip daddr != 10.177.0.0/24 masquerade"), "{rules}");
    // Twice: the table is replaced, not duplicated; ip_forward's old value is still remembered.
    setup(&topo);
    let again = ip(&["netns", "exec", &lab.ns, "nft", "list", "table", "ip", "hlslab"]);
    assert_eq!(again, rules);
    let state: Value = serde_json::from_str(&std::fs::read_to_string(lab.state_path()).unwrap()).unwrap();
    assert_eq!(state["ip_forward_before"], false);
    assert_eq!(state["created_netns"], false);

    teardown(&topo);
    assert_eq!(ip_forward(&lab.ns), "0");
    assert!(!nat_table(&lab.ns));
    assert!(network::netns::exists(&lab.ns));
    assert!(link(&lab.ns, "hlsbr0").is_none() && link(&lab.ns, "hlstap0").is_none());
    Ok(())
}

#[testkit::test]
fn root_netns_nat_leaves_ip_forward_alone_if_it_was_on() -> testkit::Outcome {
    can_run()?;
    testkit::need::program("nft")?;
    let lab = Lab::new();
    network::netns::create(&lab.ns).unwrap();
    ip(&["netns", "exec", &lab.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let topo = Topology { nat: true, ..lab.topology() };
    let log = setup(&topo);
    assert!(texts(&log).contains(&"net.ipv4.ip_forward already on"), "{log:?}");
    teardown(&topo);
    assert_eq!(ip_forward(&lab.ns), "1", "teardown restores only what setup changed");
    assert!(!nat_table(&lab.ns));
    Ok(())
}

#[testkit::test]
fn root_netns_tap_owner_is_set_and_kept() -> testkit::Outcome {
    can_run()?;
    let lab = Lab::new();
    let owner = TapOwner { uid: 4_000_123, gid: Some(4_000_124) };
    setup(&Topology { tap_owner: Some(owner), ..lab.topology() });
    let data = &link(&lab.ns, "hlstap0").unwrap()["linkinfo"]["info_data"];
    assert_eq!((data["user"].as_u64(), data["group"].as_u64()), (Some(4_000_123), Some(4_000_124)), "{data}");
    // Without an owner asked, the existing one is left alone (a running VM keeps its TAP).
    let log = setup(&lab.topology());
    assert_eq!(log.changes(), 0, "{log:?}");
    assert!(texts(&log).contains(&"tap hlstap0 exists (uid 4000123, gid 4000124)"), "{log:?}");
    // Another owner replaces it, on the same device.
    let index = link(&lab.ns, "hlstap0").unwrap()["ifindex"].clone();
    let log = setup(&Topology { tap_owner: Some(TapOwner { uid: 4_000_200, gid: None }), ..lab.topology() });
    assert!(texts(&log).contains(&"tap hlstap0 now usable by uid 4000200, gid 4000124"), "{log:?}");
    let tap = link(&lab.ns, "hlstap0").unwrap();
    assert_eq!(tap["ifindex"], index);
    assert_eq!(tap["linkinfo"]["info_data"]["user"].as_u64(), Some(4_000_200));
    Ok(())
}

#[testkit::test]
fn root_netns_a_foreign_device_with_our_name_is_refused_and_left_alone() -> testkit::Outcome {
    can_run()?;
    let lab = Lab::new();
    network::netns::create(&lab.ns).unwrap();
    ip(&["-n", &lab.ns, "link", "add", "hlstap0", "type", "bridge"]);
    let mut log = Log::default();
    let err = network::setup(&lab.topology(), &mut log).unwrap_err();
    let text = network::error::chain(&err);
    assert!(text.contains("hlstap0 exists but is a bridge device, not a tap"), "{text}");
    assert_eq!(err.exit_code(), 1);
    let mut log = Log::default();
    assert!(network::teardown(&lab.topology(), &mut log).is_err());
    assert!(link(&lab.ns, "hlstap0").is_some(), "not ours: not deleted");
    Ok(())
}
