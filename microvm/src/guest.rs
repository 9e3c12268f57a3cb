//! What runs inside the guest: the init script, the few `/etc` files, the ACPI power-button
//! handler, the KVM probe's init, and the kernel command line that configures them.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// `/init` of the origin image.
pub const INIT: &str = include_str!("../init/init.sh");

/// The line the KVM probe guest prints once it runs in user space.
pub const PROBE_MARKER: &str = "hls-lab-probe: user space reached";

/// `/init` of the KVM probe image: prove user space runs, then power off.
#[must_use]
pub fn probe_init() -> String {
    format!("#!/opt/busybox/bin/sh\necho '{PROBE_MARKER}'\n/opt/busybox/bin/poweroff -f\n")
}

/// busybox acpid runs `/etc/acpi/PWRF/00000080` for the power button (KEY_POWER, which is what
/// qemu's `system_powerdown` presses on q35): SIGTERM to PID 1, the init's power-off path.
pub const ACPI_POWER: &str = "#!/opt/busybox/bin/sh\nkill -TERM 1\n";

/// Accounts: root (no password, no shell) and nginx's default unprivileged user, which nginx
/// looks up when started as root even though the generated config runs it in one process.
pub const PASSWD: &str = "root:x:0:0:root:/root:/opt/busybox/bin/nologin\n\
nobody:x:65534:65534:nobody:/nonexistent:/opt/busybox/bin/nologin\n";
/// Groups for [`PASSWD`].
pub const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";
/// Name service: local files only.
pub const NSSWITCH: &str = "passwd: files\ngroup: files\nshadow: files\nhosts: files\n";
/// Loopback names.
pub const HOSTS: &str = "127.0.0.1 localhost hls-origin-vm\n::1 localhost\n";

/// Media settings passed to `hls-origin` through the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// `hls-origin` profile name.
    pub profile: String,
    /// `encode` or `replay`.
    pub source: String,
    /// Picture size override; `None` keeps the profile's.
    pub size: Option<(u32, u32)>,
}

/// The guest's network configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestNet {
    /// Label for the log (`user`, `tap`).
    pub mode: &'static str,
    /// eth0's address.
    pub address: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
    /// Default gateway.
    pub gateway: Option<Ipv4Addr>,
}

/// A value that may go on the kernel command line: non-empty, no spaces or quotes.
#[must_use]
pub fn cmdline_safe(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/,".contains(c))
}

/// The kernel command line: serial console, quiet boot, reboot = exit (with `-no-reboot`), and
/// the `hls.*` settings the init reads. `tsc_khz` is for `-M microvm` under TCG, which has no
/// way to calibrate the TSC otherwise. Values must pass [`cmdline_safe`] (checked by the
/// caller's validation).
#[must_use]
pub fn cmdline(net: &GuestNet, stream: &Stream, tsc_khz: Option<u64>, extra: &[String]) -> String {
    let mut c = String::from("console=ttyS0 quiet loglevel=4 panic=-1 rdinit=/init random.trust_cpu=on");
    if let Some(khz) = tsc_khz {
        let _ = write!(c, " tsc_early_khz={khz}");
    }
    let _ = write!(c, " hls.net={} hls.ip={}/{}", net.mode, net.address, net.prefix);
    if let Some(gw) = net.gateway {
        let _ = write!(c, " hls.gw={gw}");
    }
    let _ = write!(c, " hls.profile={} hls.source={}", stream.profile, stream.source);
    if let Some((w, h)) = stream.size {
        let _ = write!(c, " hls.width={w} hls.height={h}");
    }
    for e in extra {
        c.push(' ');
        c.push_str(e);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Stream {
        Stream { profile: "default".into(), source: "encode".into(), size: Some((320, 180)) }
    }

    #[test]
    fn tap_cmdline() {
        let net = GuestNet {
            mode: "tap",
            address: Ipv4Addr::new(10, 177, 0, 10),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(10, 177, 0, 1)),
        };
        assert_eq!(
            cmdline(&net, &stream(), None, &[]),
            "console=ttyS0 quiet loglevel=4 panic=-1 rdinit=/init random.trust_cpu=on hls.net=tap \
             hls.ip=10.177.0.10/24 hls.gw=10.177.0.1 hls.profile=default hls.source=encode \
             hls.width=320 hls.height=180"
        );
    }

    #[test]
    fn user_cmdline_with_microvm_tsc_and_full_picture() {
        let net = GuestNet {
            mode: "user",
            address: Ipv4Addr::new(10, 0, 2, 15),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
        };
        let s = Stream { size: None, ..stream() };
        let c = cmdline(&net, &s, Some(2_000_000), &["debug".into()]);
        assert!(c.contains(" tsc_early_khz=2000000 "), "{c}");
        assert!(c.contains(" hls.ip=10.0.2.15/24 hls.gw=10.0.2.2 "), "{c}");
        assert!(!c.contains("hls.width"), "{c}");
        assert!(c.ends_with(" debug"), "{c}");
    }

    #[test]
    fn init_reads_what_cmdline_writes() {
        // Every `hls.*` setting of the fullest command line (gateway and picture size set).
        let net = GuestNet {
            mode: "tap",
            address: Ipv4Addr::new(10, 177, 0, 10),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(10, 177, 0, 1)),
        };
        let c = cmdline(&net, &stream(), Some(1), &[]);
        let keys: Vec<&str> =
            c.split(' ').filter(|w| w.starts_with("hls.")).map(|w| &w[..=w.find('=').unwrap()]).collect();
        assert_eq!(keys.len(), 7, "{c}");
        let code: Vec<&str> = INIT.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
        for key in keys {
            let case = format!("{key}*)");
            let line = code.iter().find(|l| l.trim_start().starts_with(&case));
            assert!(
                line.is_some_and(|l| l.contains(&format!("\"${{arg#{key}}}\""))),
                "init does not read {key} into a variable: {line:?}"
            );
        }
    }

    #[test]
    fn init_has_no_login_path() {
        let code: Vec<&str> = INIT.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
        for bad in ["getty", "login", "telnetd", "sshd", "dropbear", "passwd", "/bin/sh -i"] {
            assert!(!code.iter().any(|l| l.contains(bad)), "{bad}");
        }
        assert!(PASSWD.lines().all(|l| l.contains(":x:") && l.ends_with("nologin")));
    }

    #[test]
    fn safe_values() {
        assert!(cmdline_safe("low-latency"));
        assert!(!cmdline_safe("a b"));
        assert!(!cmdline_safe("x\"y"));
        assert!(!cmdline_safe(""));
    }
}
