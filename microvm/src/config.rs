//! What `hls-lab microvm start` is asked to do, as data, and its validation: every problem is
//! found before any side effect and names the value and what would be accepted.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;
use crate::qemu::Machine;
use crate::{guest, image, netns, rundir};

/// Guest ports (fixed inside the VM).
pub const HLS_PORT: u16 = 17080;
/// Node exporter.
pub const NODE_PORT: u16 = 9100;
/// nginx exporter.
pub const NGINX_PORT: u16 = 9113;
/// Smallest guest RAM that holds the initramfs (≈ 290 MB unpacked, plus the kernel's copy
/// while unpacking) and the origin.
pub const MIN_MEMORY_MIB: u32 = 768;

/// Accelerator request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM when the checks pass (see `check-kvm`), else TCG.
    Auto,
    /// KVM, or fail.
    Kvm,
    /// TCG.
    Tcg,
}

/// Which kernel file to boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KernelForm {
    /// The extracted vmlinux (falls back to the bzImage when extraction was not possible).
    Uncompressed,
    /// The bzImage as the distribution ships it.
    AsShipped,
}

/// Host ports for user-mode networking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPorts {
    /// HLS (guest 17080).
    pub hls: u16,
    /// Node exporter (guest 9100).
    pub node: u16,
    /// nginx exporter (guest 9113).
    pub nginx: u16,
}

impl Default for HostPorts {
    fn default() -> Self {
        HostPorts { hls: HLS_PORT, node: NODE_PORT, nginx: NGINX_PORT }
    }
}

impl std::str::FromStr for HostPorts {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let ports: Vec<u16> = s
            .split(',')
            .map(|p| p.trim().parse::<u16>().ok().filter(|&p| p != 0))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{s:?}: expected three ports HLS,NODE,NGINX such as 17080,9100,9113"))?;
        match ports[..] {
            [hls, node, nginx] if hls != node && hls != nginx && node != nginx => {
                Ok(HostPorts { hls, node, nginx })
            }
            [_, _, _] => Err(format!("{s:?}: the three ports must differ")),
            _ => Err(format!("{s:?}: expected three ports HLS,NODE,NGINX such as 17080,9100,9113")),
        }
    }
}

/// Guest networking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Net {
    /// qemu user-mode networking; the guest's ports forwarded on 127.0.0.1.
    User {
        /// Host ports.
        ports: HostPorts,
    },
    /// A TAP device (created by `hls-lab network setup`).
    Tap {
        /// TAP name.
        tap: String,
        /// Namespace holding it (qemu runs inside).
        netns: Option<String>,
        /// Guest address.
        address: Ipv4Addr,
        /// Prefix length.
        prefix: u8,
        /// Gateway (the bridge's address).
        gateway: Ipv4Addr,
    },
}

/// Everything `start` needs.
#[derive(Debug, Clone)]
pub struct StartConfig {
    /// VM name.
    pub name: String,
    /// Run directory override.
    pub run_dir: Option<PathBuf>,
    /// qemu binary.
    pub qemu: PathBuf,
    /// Accelerator.
    pub accel: AccelChoice,
    /// Machine type.
    pub machine: Machine,
    /// RAM.
    pub memory_mib: u32,
    /// vCPUs.
    pub cpus: u32,
    /// Network.
    pub net: Net,
    /// `hls-origin` profile.
    pub profile: String,
    /// `encode` or `replay`.
    pub source: String,
    /// Picture size: `Some(None)` keeps the profile's; `None` = automatic (320x180 under TCG,
    /// where the guest cannot encode more in real time; the profile's under KVM).
    pub picture: Option<Option<(u32, u32)>>,
    /// Kernel file.
    pub kernel_form: KernelForm,
    /// How long to wait for the playlist.
    pub timeout: Duration,
    /// Image inputs.
    pub image: image::Overrides,
    /// Image cache.
    pub cache_root: PathBuf,
    /// Extra kernel arguments.
    pub append: Vec<String>,
}

fn tap_name_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 15 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Finds `name` on `PATH` (or takes it as a path).
#[must_use]
pub fn which(name: &Path) -> Option<PathBuf> {
    if name.components().count() > 1 {
        return name.is_file().then(|| name.to_owned());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Checks a start configuration; every problem names the value and what is accepted.
///
/// # Errors
/// [`Error::Invalid`] or a missing namespace.
pub fn validate(c: &StartConfig) -> Result<PathBuf, Error> {
    if !rundir::valid_name(&c.name) {
        return Err(Error::Invalid(format!(
            "--name {:?}: expected 1-32 letters, digits, '-' or '_'",
            c.name
        )));
    }
    let qemu = which(&c.qemu).ok_or_else(|| {
        Error::Invalid(format!(
            "qemu {:?} not found; install qemu-system-x86 (scripts/install-deps --vm) or pass --qemu",
            c.qemu.display().to_string()
        ))
    })?;
    if c.memory_mib < MIN_MEMORY_MIB {
        return Err(Error::Invalid(format!(
            "--memory {}: at least {MIN_MEMORY_MIB} MiB is needed for the initramfs with ffmpeg",
            c.memory_mib
        )));
    }
    if c.cpus == 0 || c.cpus > 64 {
        return Err(Error::Invalid(format!("--cpus {}: expected 1 to 64", c.cpus)));
    }
    for (flag, v) in [("--profile", &c.profile), ("--source", &c.source)] {
        if !guest::cmdline_safe(v) {
            return Err(Error::Invalid(format!("{flag} {v:?}: expected letters, digits, '-' or '_'")));
        }
    }
    if !["encode", "replay"].contains(&c.source.as_str()) {
        return Err(Error::Invalid(format!("--source {:?}: expected encode or replay", c.source)));
    }
    for a in &c.append {
        if !guest::cmdline_safe(&a.replace('=', "")) || a.starts_with("hls.") {
            return Err(Error::Invalid(format!(
                "--append {a:?}: expected a kernel argument without spaces or quotes, not an hls.* setting"
            )));
        }
    }
    if let Net::Tap { tap, netns, .. } = &c.net {
        if !tap_name_ok(tap) {
            return Err(Error::Invalid(format!(
                "--tap {tap:?}: expected an interface name of 1-15 letters, digits, '-', '_' or '.'"
            )));
        }
        if let Some(ns) = netns {
            if !netns::valid_name(ns) {
                return Err(Error::Invalid(format!(
                    "--netns {ns:?}: expected letters, digits, '-', '_' or '.'"
                )));
            }
            netns::check(ns)?;
        }
    }
    Ok(qemu)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> StartConfig {
        StartConfig {
            name: "origin".into(),
            run_dir: None,
            qemu: "/bin/sh".into(),
            accel: AccelChoice::Tcg,
            machine: Machine::Q35,
            memory_mib: 1024,
            cpus: 2,
            net: Net::User { ports: HostPorts::default() },
            profile: "default".into(),
            source: "encode".into(),
            picture: None,
            kernel_form: KernelForm::Uncompressed,
            timeout: Duration::from_secs(1),
            image: image::Overrides::default(),
            cache_root: "/nonexistent".into(),
            append: vec![],
        }
    }

    #[test]
    fn host_ports_parse() {
        assert_eq!("1,2,3".parse::<HostPorts>(), Ok(HostPorts { hls: 1, node: 2, nginx: 3 }));
        assert!("1,1,3".parse::<HostPorts>().unwrap_err().contains("must differ"));
        assert!("1,2".parse::<HostPorts>().unwrap_err().contains("expected three ports"));
        assert!("0,2,3".parse::<HostPorts>().is_err());
        assert!("a,b,c".parse::<HostPorts>().is_err());
    }

    #[test]
    fn validation_names_the_value() {
        let ok = validate(&config());
        assert!(ok.is_ok(), "{ok:?}");
        let cases: Vec<(StartConfig, &str)> = vec![
            (StartConfig { name: "a/b".into(), ..config() }, "--name \"a/b\""),
            (StartConfig { memory_mib: 512, ..config() }, "--memory 512"),
            (
                StartConfig { qemu: "no-such-qemu-binary".into(), ..config() },
                "qemu \"no-such-qemu-binary\" not found",
            ),
            (StartConfig { source: "live".into(), ..config() }, "--source \"live\""),
            (StartConfig { profile: "a b".into(), ..config() }, "--profile \"a b\""),
            (
                StartConfig { append: vec!["hls.ip=1.2.3.4".into()], ..config() },
                "--append \"hls.ip=1.2.3.4\"",
            ),
            (
                StartConfig {
                    net: Net::Tap {
                        tap: "much-too-long-tap-name".into(),
                        netns: None,
                        address: Ipv4Addr::new(10, 177, 0, 10),
                        prefix: 24,
                        gateway: Ipv4Addr::new(10, 177, 0, 1),
                    },
                    ..config()
                },
                "--tap \"much-too-long-tap-name\"",
            ),
        ];
        for (c, want) in cases {
            let e = validate(&c).unwrap_err();
            assert!(e.to_string().starts_with(want), "{e}");
            assert_eq!(e.exit_code(), 2, "{e}");
        }
        let missing_ns = StartConfig {
            net: Net::Tap {
                tap: "hlstap0".into(),
                netns: Some("hls-lab-no-such-ns".into()),
                address: Ipv4Addr::new(10, 177, 0, 10),
                prefix: 24,
                gateway: Ipv4Addr::new(10, 177, 0, 1),
            },
            ..config()
        };
        let e = validate(&missing_ns).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("hls-lab-no-such-ns"), "{e}");
    }
}
