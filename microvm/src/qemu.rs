//! qemu's command line, built as data (and tested as such).
//!
//! Choices: direct kernel boot (no firmware disk, no bootloader); `-nodefaults` (no VGA, no
//! floppy, no default NIC) and `-display none`; the serial console on a unix socket in the run
//! directory with everything also logged to `console.log` — never a TCP port, never stdio;
//! QMP on a unix socket for `system_powerdown`; `-no-reboot`, so a guest reboot or kernel panic
//! ends qemu instead of looping; the seccomp sandbox; as root, `-runas nobody` once the
//! devices (TAP, /dev/kvm) are open; and on a TAP, one queue per vCPU ([`tap_queues`]), since the
//! lab's TAP is multi-queue.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualisation.
    Kvm,
    /// qemu's binary translator.
    Tcg,
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        })
    }
}

/// Machine type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Machine {
    /// PC with PCIe and ACPI: works everywhere, virtio-net-pci.
    Q35,
    /// qemu's minimal machine: virtio-mmio, fewer devices to probe (needs `tsc_early_khz`
    /// under TCG).
    Microvm,
}

/// Guest network backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// qemu user-mode networking (slirp) with host port forwards, guest isolated otherwise.
    User {
        /// (host address, guest port) pairs.
        forwards: Vec<(SocketAddr, u16)>,
    },
    /// An existing TAP device.
    Tap {
        /// Its name.
        ifname: String,
        /// Whether to use vhost-net.
        vhost: bool,
    },
}

/// Everything qemu's command line depends on.
#[derive(Debug, Clone)]
pub struct Launch {
    /// VM name (`-name`).
    pub name: String,
    /// Accelerator.
    pub accel: Accel,
    /// Machine type.
    pub machine: Machine,
    /// RAM in MiB.
    pub memory_mib: u32,
    /// vCPUs.
    pub cpus: u32,
    /// Kernel (ELF vmlinux or bzImage).
    pub kernel: PathBuf,
    /// initramfs.
    pub initramfs: PathBuf,
    /// Kernel command line.
    pub cmdline: String,
    /// Network.
    pub backend: Backend,
    /// Guest MAC.
    pub mac: String,
    /// Console socket.
    pub console_socket: PathBuf,
    /// Console log.
    pub console_log: PathBuf,
    /// QMP socket.
    pub qmp_socket: PathBuf,
    /// Pid file (with `-daemonize`).
    pub pid_file: PathBuf,
    /// Drop privileges to this user after start-up (`-runas`), when running as root.
    pub runas: Option<String>,
}

/// The guest MAC address (locally administered, as in nix/lab.nix).
pub const MAC: &str = "02:00:00:0a:b1:0a";

/// How many queues qemu opens on the TAP: one per vCPU, so each vCPU sends and receives on its
/// own. The lab's TAP is multi-queue (`hls-lab network setup`, like the NixOS module's
/// `MultiQueue`, because microvm.nix opens one queue per vCPU), and the kernel refuses an attach
/// whose multi-queue flag differs from the device's. qemu asks for `IFF_MULTI_QUEUE` only when
/// `queues` > 1, so a one-vCPU VM opens two queues (its guest uses one).
#[must_use]
pub fn tap_queues(cpus: u32) -> u32 {
    cpus.max(2)
}

fn p(path: &std::path::Path) -> String {
    path.display().to_string()
}

/// qemu's arguments (without the program).
#[must_use]
pub fn args(l: &Launch) -> Vec<OsString> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| (*s).to_owned()));
    push(&["-name", &format!("hls-lab-{},process=hls-lab-{}", l.name, l.name)]);
    let accel = match l.accel {
        Accel::Kvm => "kvm",
        Accel::Tcg => "tcg",
    };
    match l.machine {
        Machine::Q35 => push(&["-machine", &format!("q35,accel={accel}")]),
        Machine::Microvm => {
            push(&["-machine", &format!("microvm,accel={accel},pit=off,pic=off,isa-serial=on")])
        }
    }
    if l.accel == Accel::Kvm {
        push(&["-cpu", "host"]);
    }
    push(&["-m", &l.memory_mib.to_string(), "-smp", &l.cpus.to_string()]);
    push(&["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]);
    push(&["-kernel", &p(&l.kernel), "-initrd", &p(&l.initramfs), "-append", &l.cmdline]);
    push(&[
        "-chardev",
        &format!(
            "socket,id=console,path={},server=on,wait=off,logfile={}",
            p(&l.console_socket),
            p(&l.console_log)
        ),
        "-serial",
        "chardev:console",
    ]);
    push(&["-qmp", &format!("unix:{},server=on,wait=off", p(&l.qmp_socket))]);
    let netdev = match &l.backend {
        Backend::User { forwards } => {
            let mut s = String::from("user,id=net0,restrict=on");
            for (host, guest) in forwards {
                s.push_str(&format!(",hostfwd=tcp:{}:{}-:{guest}", host.ip(), host.port()));
            }
            s
        }
        Backend::Tap { ifname, vhost } => {
            format!(
                "tap,id=net0,ifname={ifname},script=no,downscript=no,vhost={},queues={}",
                if *vhost { "on" } else { "off" },
                tap_queues(l.cpus)
            )
        }
    };
    push(&["-netdev", &netdev]);
    let (mut nic, rng) = match l.machine {
        Machine::Q35 => (format!("virtio-net-pci,netdev=net0,mac={},romfile=", l.mac), "virtio-rng-pci"),
        Machine::Microvm => (format!("virtio-net-device,netdev=net0,mac={}", l.mac), "virtio-rng-device"),
    };
    if let Backend::Tap { .. } = l.backend {
        // The device offers the guest the TAP's queue pairs; on PCI each pair needs two MSI-X
        // vectors, plus one for the control queue and one for configuration changes. virtio-mmio
        // has no MSI-X (one interrupt for all queues): no `vectors` there.
        let queues = tap_queues(l.cpus);
        nic.push_str(",mq=on");
        if l.machine == Machine::Q35 {
            nic.push_str(&format!(",vectors={}", 2 * queues + 2));
        }
    }
    push(&["-device", &nic, "-device", rng]);
    // seccomp. `spawn=deny` would forbid the fork of `-daemonize`, and `elevateprivileges=deny`
    // its setsid and the setuid of `-runas` (qemu 7.2 dies with SIGSYS): both stay allowed.
    push(&["-sandbox", "on,obsolete=deny,resourcecontrol=deny"]);
    if let Some(user) = &l.runas {
        push(&["-runas", user]);
    }
    push(&["-daemonize", "-pidfile", &p(&l.pid_file)]);
    a.into_iter().map(OsString::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(backend: Backend) -> Launch {
        Launch {
            name: "origin".into(),
            accel: Accel::Tcg,
            machine: Machine::Q35,
            memory_mib: 1024,
            cpus: 2,
            kernel: "/c/vmlinux".into(),
            initramfs: "/c/initramfs.cpio".into(),
            cmdline: "console=ttyS0 hls.net=user".into(),
            backend,
            mac: MAC.into(),
            console_socket: "/run/hls-lab/vm-origin/console.sock".into(),
            console_log: "/run/hls-lab/vm-origin/console.log".into(),
            qmp_socket: "/run/hls-lab/vm-origin/qmp.sock".into(),
            pid_file: "/run/hls-lab/vm-origin/qemu.pid".into(),
            runas: None,
        }
    }

    fn joined(l: &Launch) -> String {
        args(l).iter().map(|s| s.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn user_networking_forwards_on_loopback_only() {
        let fw = vec![
            ("127.0.0.1:17080".parse().unwrap(), 17080),
            ("127.0.0.1:29100".parse().unwrap(), 9100),
            ("127.0.0.1:29113".parse().unwrap(), 9113),
        ];
        let s = joined(&launch(Backend::User { forwards: fw }));
        assert!(
            s.contains(
                "-netdev user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:17080-:17080,\
             hostfwd=tcp:127.0.0.1:29100-:9100,hostfwd=tcp:127.0.0.1:29113-:9113"
            ),
            "{s}"
        );
        assert!(!s.contains("0.0.0.0"), "{s}");
        assert!(s.contains("-machine q35,accel=tcg "), "{s}");
        assert!(!s.contains("-cpu host"), "{s}");
    }

    #[test]
    fn console_and_qmp_are_unix_sockets_never_tcp() {
        let s = joined(&launch(Backend::User { forwards: vec![] }));
        assert!(s.contains("-chardev socket,id=console,path=/run/hls-lab/vm-origin/console.sock,server=on,wait=off,logfile=/run/hls-lab/vm-origin/console.log -serial chardev:console"), "{s}");
        assert!(s.contains("-qmp unix:/run/hls-lab/vm-origin/qmp.sock,server=on,wait=off"), "{s}");
        assert!(!s.contains("tcp::"), "{s}");
        assert!(!s.contains("telnet"), "{s}");
        assert!(!s.contains("stdio"), "{s}");
        assert!(s.ends_with("-daemonize -pidfile /run/hls-lab/vm-origin/qemu.pid"), "{s}");
    }

    #[test]
    fn tap_with_and_without_vhost_and_kvm() {
        let mut l = launch(Backend::Tap { ifname: "hlstap0".into(), vhost: false });
        l.accel = Accel::Kvm;
        l.runas = Some("nobody".into());
        let s = joined(&l);
        assert!(
            s.contains("-netdev tap,id=net0,ifname=hlstap0,script=no,downscript=no,vhost=off,queues=2"),
            "{s}"
        );
        assert!(s.contains("-machine q35,accel=kvm -cpu host"), "{s}");
        assert!(s.contains("-runas nobody"), "{s}");
        l.backend = Backend::Tap { ifname: "hlstap0".into(), vhost: true };
        assert!(joined(&l).contains("vhost=on,queues=2"));
    }

    #[test]
    fn tap_opens_a_queue_per_vcpu_and_at_least_two() {
        let mut l = launch(Backend::Tap { ifname: "hlstap0".into(), vhost: false });
        l.cpus = 4;
        let s = joined(&l);
        assert!(s.contains("-smp 4 "), "{s}");
        assert!(s.contains(",vhost=off,queues=4 "), "{s}");
        assert!(
            s.contains("-device virtio-net-pci,netdev=net0,mac=02:00:00:0a:b1:0a,romfile=,mq=on,vectors=10 "),
            "{s}"
        );
        // One vCPU: still two queues, since qemu opens a single queue without IFF_MULTI_QUEUE,
        // which the multi-queue TAP refuses.
        l.cpus = 1;
        let s = joined(&l);
        assert!(s.contains("-smp 1 ") && s.contains(",queues=2 ") && s.contains(",mq=on,vectors=6 "), "{s}");
        // virtio-mmio: multi-queue, but no MSI-X vectors.
        l.machine = Machine::Microvm;
        l.cpus = 2;
        let s = joined(&l);
        assert!(s.contains("-device virtio-net-device,netdev=net0,mac=02:00:00:0a:b1:0a,mq=on "), "{s}");
        assert!(!s.contains("vectors="), "{s}");
    }

    #[test]
    fn user_networking_is_single_queue() {
        let s = joined(&launch(Backend::User { forwards: vec![] }));
        assert!(!s.contains("queues=") && !s.contains("mq=on"), "{s}");
    }

    #[test]
    fn microvm_uses_mmio_devices() {
        let mut l = launch(Backend::User { forwards: vec![] });
        l.machine = Machine::Microvm;
        let s = joined(&l);
        assert!(s.contains("-machine microvm,accel=tcg"), "{s}");
        assert!(s.contains("virtio-net-device,netdev=net0"), "{s}");
        assert!(!s.contains("-pci"), "{s}");
    }
}
