//! `hls-lab`: `microvm build|start|stop|status|check-kvm|console`, `network …` (from the
//! `network` crate), `load-test` and `observe` ([`crate::observe`], its own exit codes). `main.rs` parses, builds the runtime and maps [`run`]'s code to the exit
//! status.
//!
//! Exit codes (microvm): 0 success; 1 unexpected failure; 2 bad input, nothing started; 3 a VM
//! already runs in that run directory, or another `hls-lab` holds its lock; 4 qemu refused to
//! start, or the playlist was not served in time (the VM was stopped); 5 `status`: not running;
//! 6 `status`: running but the playlist is not served; 130 interrupted during `start` (the VM
//! was stopped).

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::image;
use crate::qemu::Machine;
use crate::rundir;
use crate::vm::{self, AccelChoice, HostPorts, KernelForm, Net};

/// Lab control: the origin MicroVM and its network.
#[derive(Debug, Parser)]
#[command(name = "hls-lab", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The origin MicroVM: image, qemu launcher, status.
    #[command(subcommand)]
    Microvm(MicrovmCommand),
    /// The lab network: bridge, TAP, NAT, namespace (root).
    #[command(subcommand)]
    Network(network::cli::NetworkCommand),
    /// Run hls-swarm against whichever origin is up: the TAP VM, the user-net VM, or a local
    /// origin on 127.0.0.1:17080 (says which).
    LoadTest(LoadTestArgs),
    /// Watch a run: Prometheus scraping the swarm and the origin's exporters, and Grafana with
    /// the lab's dashboards when one is installed; Ctrl+C stops them.
    Observe(Box<crate::observe::ObserveArgs>),
}

/// `load-test` flags.
#[derive(Debug, Clone, Args)]
pub struct LoadTestArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub vm: VmArgs,
    /// Viewers.
    #[arg(long)]
    pub clients: u32,
    /// Run length (hls-swarm's --duration).
    #[arg(long, default_value = "2m")]
    pub duration: String,
    /// More hls-swarm arguments, after `--`.
    #[arg(last = true)]
    pub swarm_args: Vec<std::ffi::OsString>,
}

/// `hls-lab microvm …`.
#[derive(Debug, Subcommand)]
pub enum MicrovmCommand {
    /// Build the kernel + initramfs image from this host's binaries (cached by content).
    Build(BuildArgs),
    /// Start the VM in the background and wait until its playlist is served.
    Start(Box<StartArgs>),
    /// Power the VM off (ACPI via QMP), killing it after a grace period.
    Stop(StopArgs),
    /// Is the VM running, and is its playlist served? Exit 0 yes, 5 not running, 6 not serving.
    Status(VmArgs),
    /// Decide KVM or TCG and say why (CPU flags, /dev/kvm, a bounded boot probe).
    CheckKvm(CheckKvmArgs),
    /// Print the VM's serial console log and follow it (read-only; there is no login).
    Console(ConsoleArgs),
}

/// Which VM.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "VM")]
pub struct VmArgs {
    /// VM name (its run directory is /run/hls-lab/vm-NAME as root, else under
    /// $XDG_RUNTIME_DIR).
    #[arg(long, env = "HLS_LAB_VM", default_value = "origin")]
    pub name: String,
    /// Run directory (overrides the one derived from --name).
    #[arg(long, env = "HLS_LAB_VM_RUN_DIR", value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
}

/// Image inputs.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Image")]
pub struct BuildArgs {
    /// hls-origin binary [default: next to hls-lab, then PATH].
    #[arg(long, env = "HLS_LAB_ORIGIN_BIN", value_name = "FILE")]
    pub origin_bin: Option<PathBuf>,
    /// Kernel bzImage [default: newest /boot/vmlinuz-* with modules installed, else NixOS's
    /// /run/booted-system/kernel or /run/current-system/kernel].
    #[arg(long, env = "HLS_LAB_KERNEL", value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// The kernel's modules directory, with modules.dep [default: /lib/modules/<its release>,
    /// else NixOS's <system>/kernel-modules/lib/modules/<its release>].
    #[arg(long, env = "HLS_LAB_MODULES", value_name = "DIR")]
    pub modules_dir: Option<PathBuf>,
    /// Image cache [default: $XDG_CACHE_HOME/hls-lab/images].
    #[arg(long, env = "HLS_LAB_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl BuildArgs {
    fn overrides(&self) -> image::Overrides {
        image::Overrides {
            origin: self.origin_bin.clone(),
            kernel: self.kernel.clone(),
            modules: self.modules_dir.clone(),
        }
    }
    fn cache_root(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(image::default_cache_root)
    }
}

/// Network mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetMode {
    /// qemu user-mode networking, ports forwarded on 127.0.0.1 (no root needed).
    User,
    /// The TAP device of `hls-lab network setup` (near-native speed; vhost-net when available).
    Tap,
}

/// Picture size for the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picture {
    /// 320x180 under TCG, the profile's under KVM.
    Auto,
    /// The profile's.
    Profile,
    /// This size.
    Size(u32, u32),
}

fn parse_picture(s: &str) -> Result<Picture, String> {
    match s {
        "auto" => return Ok(Picture::Auto),
        "profile" => return Ok(Picture::Profile),
        _ => {}
    }
    let bad = || format!("{s:?}: expected auto, profile, or WIDTHxHEIGHT such as 320x180");
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    let (w, h): (u32, u32) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if w < 16 || h < 16 || w > 7680 || h > 4320 || w % 2 != 0 || h % 2 != 0 {
        return Err(format!("{s:?}: width and height must be even, 16x16 to 7680x4320"));
    }
    Ok(Picture::Size(w, h))
}

fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let bad = || format!("{s:?}: expected an IPv4 address with prefix length such as 10.177.0.10/24");
    let (a, p) = s.split_once('/').ok_or_else(bad)?;
    let a: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let p: u8 = p.parse().ok().filter(|p| (8..=30).contains(p)).ok_or_else(bad)?;
    Ok((a, p))
}

/// `start` flags.
#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub vm: VmArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub image: BuildArgs,
    /// Guest networking.
    #[arg(long, env = "HLS_LAB_NET", value_enum, default_value = "user", help_heading = "Network")]
    pub net: NetMode,
    /// Host ports forwarded to the guest's 17080, 9100 and 9113 on 127.0.0.1 (--net user).
    #[arg(
        long,
        env = "HLS_LAB_HOST_PORTS",
        default_value = "17080,9100,9113",
        value_name = "HLS,NODE,NGINX",
        help_heading = "Network"
    )]
    pub host_ports: HostPorts,
    /// TAP device to attach to (--net tap; created by `hls-lab network setup`).
    #[arg(long, env = "HLS_LAB_TAP", default_value = "hlstap0", help_heading = "Network")]
    pub tap: String,
    /// Network namespace holding the TAP; qemu runs inside it (--net tap).
    #[arg(long, env = "HLS_LAB_NETNS", value_name = "NAME", help_heading = "Network")]
    pub netns: Option<String>,
    /// The guest's address on the TAP network (--net tap).
    #[arg(long, env = "HLS_LAB_VM_ADDR", default_value = "10.177.0.10/24", value_parser = parse_cidr, value_name = "CIDR", help_heading = "Network")]
    pub vm_addr: (Ipv4Addr, u8),
    /// The guest's gateway, the bridge's address (--net tap).
    #[arg(long, env = "HLS_LAB_GATEWAY", default_value = "10.177.0.1", help_heading = "Network")]
    pub gateway: Ipv4Addr,
    /// Accelerator.
    #[arg(long, env = "HLS_LAB_ACCEL", value_enum, default_value = "auto", help_heading = "Machine")]
    pub accel: AccelChoice,
    /// Machine type.
    #[arg(long, env = "HLS_LAB_MACHINE", value_enum, default_value = "q35", help_heading = "Machine")]
    pub machine: Machine,
    /// Guest RAM in MiB (at least 768).
    #[arg(long, env = "HLS_LAB_MEMORY", default_value_t = 1024, help_heading = "Machine")]
    pub memory: u32,
    /// vCPUs.
    #[arg(long, env = "HLS_LAB_CPUS", default_value_t = 2, help_heading = "Machine")]
    pub cpus: u32,
    /// Kernel file to boot: the extracted vmlinux (fast under TCG) or the bzImage as shipped.
    #[arg(long, value_enum, default_value = "uncompressed", help_heading = "Machine")]
    pub kernel_form: KernelForm,
    /// qemu binary.
    #[arg(long, env = "HLS_LAB_QEMU", default_value = "qemu-system-x86_64", help_heading = "Machine")]
    pub qemu: PathBuf,
    /// Extra kernel command-line argument (repeatable).
    #[arg(long, value_name = "ARG", help_heading = "Machine")]
    pub append: Vec<String>,
    /// hls-origin profile.
    #[arg(long, env = "HLS_LAB_PROFILE", default_value = "default", help_heading = "Origin")]
    pub profile: String,
    /// hls-origin source: encode (live) or replay.
    #[arg(long, env = "HLS_LAB_SOURCE", default_value = "encode", help_heading = "Origin")]
    pub source: String,
    /// Picture: auto (320x180 under TCG, which cannot encode more in real time; the
    /// profile's under KVM), profile, or WIDTHxHEIGHT.
    #[arg(long, env = "HLS_LAB_PICTURE", default_value = "auto", value_parser = parse_picture, help_heading = "Origin")]
    pub picture: Picture,
    /// Give up (and stop the VM) if the playlist is not served within this time.
    #[arg(long, env = "HLS_LAB_TIMEOUT", default_value = "180s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// `stop` flags.
#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub vm: VmArgs,
    /// Time for the guest to power off after the ACPI power button before qemu is killed.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
}

/// `check-kvm` flags.
#[derive(Debug, Clone, Args)]
pub struct CheckKvmArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub image: BuildArgs,
    /// qemu binary.
    #[arg(long, env = "HLS_LAB_QEMU", default_value = "qemu-system-x86_64")]
    pub qemu: PathBuf,
    /// Decide again instead of using this boot's cached verdict.
    #[arg(long)]
    pub fresh: bool,
    /// Run the KVM boot probe even when the CPU flags already rule KVM out (shows what this
    /// host's /dev/kvm does with a normal guest; the verdict still needs the flags).
    #[arg(long)]
    pub force_probe: bool,
    /// Boot the probe guest under TCG instead and report (checks the probe itself).
    #[arg(long, hide = true)]
    pub probe_tcg: bool,
}

/// `console` flags.
#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub vm: VmArgs,
    /// Print the log and exit instead of following it.
    #[arg(long)]
    pub no_follow: bool,
}

impl StartArgs {
    /// The launcher's configuration; flags that do not apply to the network mode are refused.
    ///
    /// # Errors
    /// [`vm::Error::Invalid`] naming the flag.
    pub fn config(&self) -> Result<vm::StartConfig, vm::Error> {
        let net = match self.net {
            NetMode::User => {
                if let Some(ns) = &self.netns {
                    return Err(vm::Error::Invalid(format!(
                        "--netns {ns}: only for --net tap (user-mode networking needs no namespace)"
                    )));
                }
                Net::User { ports: self.host_ports }
            }
            NetMode::Tap => {
                if self.host_ports != HostPorts::default() {
                    return Err(vm::Error::Invalid(
                        "--host-ports: only for --net user (on a TAP the guest's own ports are reached)"
                            .into(),
                    ));
                }
                Net::Tap {
                    tap: self.tap.clone(),
                    netns: self.netns.clone(),
                    address: self.vm_addr.0,
                    prefix: self.vm_addr.1,
                    gateway: self.gateway,
                }
            }
        };
        Ok(vm::StartConfig {
            name: self.vm.name.clone(),
            run_dir: self.vm.run_dir.clone(),
            qemu: self.qemu.clone(),
            accel: self.accel,
            machine: self.machine,
            memory_mib: self.memory,
            cpus: self.cpus,
            net,
            profile: self.profile.clone(),
            source: self.source.clone(),
            picture: match self.picture {
                Picture::Auto => None,
                Picture::Profile => Some(None),
                Picture::Size(w, h) => Some(Some((w, h))),
            },
            kernel_form: self.kernel_form,
            timeout: self.timeout,
            image: self.image.overrides(),
            cache_root: self.image.cache_root(),
            append: self.append.clone(),
        })
    }
}

fn fail(err: &mut dyn Write, e: &dyn std::error::Error) {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        src = s.source();
    }
    let _ = writeln!(err, "hls-lab: {msg}");
}

/// Runs a `microvm` command; returns the exit code.
pub async fn run_microvm(cmd: MicrovmCommand, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match cmd {
        MicrovmCommand::Build(a) => {
            let result =
                image::Inputs::discover(&a.overrides()).and_then(|i| image::build(&i, &a.cache_root()));
            match result {
                Ok(img) => {
                    let _ = writeln!(out, "{}", vm::describe_image(&img));
                    let _ = writeln!(
                        out,
                        "  initramfs {} ({} bytes)",
                        img.initramfs.display(),
                        img.initramfs_bytes
                    );
                    match &img.kernel.vmlinux {
                        Some(v) => {
                            let _ = writeln!(
                                out,
                                "  kernel    {} (extracted from the {} payload)",
                                v.display(),
                                img.kernel.payload
                            );
                        }
                        None => {
                            let _ = writeln!(
                                out,
                                "  kernel    {} ({})",
                                img.kernel.bzimage.display(),
                                img.kernel.note.as_deref().unwrap_or("as shipped")
                            );
                        }
                    }
                    if img.stripped_bytes > 0 {
                        let _ = writeln!(
                            out,
                            "  stripped {:.1} MiB of debug sections",
                            img.stripped_bytes as f64 / (1 << 20) as f64
                        );
                    }
                    0
                }
                Err(e) => {
                    let code = vm::Error::Image(e);
                    fail(err, &code);
                    code.exit_code()
                }
            }
        }
        MicrovmCommand::Start(a) => {
            let result = match a.config() {
                Ok(c) => vm::start(&c, out).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(_) => 0,
                Err(e) => {
                    fail(err, &e);
                    e.exit_code()
                }
            }
        }
        MicrovmCommand::Stop(a) => match vm::stop(&a.vm.name, a.vm.run_dir.as_deref(), a.grace, out).await {
            Ok(_) => 0,
            Err(e) => {
                fail(err, &e);
                e.exit_code()
            }
        },
        MicrovmCommand::Status(a) => match vm::status(&a.name, a.run_dir.as_deref(), out).await {
            vm::Health::Serving => 0,
            vm::Health::NotRunning => 5,
            vm::Health::NotServing => 6,
        },
        MicrovmCommand::Console(a) => {
            match vm::console(&a.vm.name, a.vm.run_dir.as_deref(), !a.no_follow, out).await {
                Ok(()) => 0,
                Err(e) => {
                    fail(err, &e);
                    e.exit_code()
                }
            }
        }
        MicrovmCommand::CheckKvm(a) => check_kvm(&a, out, err).await,
    }
}

async fn check_kvm(a: &CheckKvmArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let Some(qemu) = vm::which(&a.qemu) else {
        let _ = writeln!(
            err,
            "hls-lab: qemu {:?} not found; install qemu-system-x86 (scripts/install-deps --vm)",
            a.qemu.display().to_string()
        );
        return 2;
    };
    let inputs = match image::Inputs::discover(&a.image.overrides()) {
        Ok(i) => i,
        Err(e) => {
            let e = vm::Error::Image(e);
            fail(err, &e);
            return e.exit_code();
        }
    };
    if a.probe_tcg {
        let work = rundir::runtime_root().join("kvm-probe");
        let _ = std::fs::create_dir_all(&work);
        let initramfs = work.join("probe.cpio");
        if let Err(e) = image::write_probe(&inputs.busybox, &initramfs) {
            fail(err, &e);
            return 1;
        }
        return match crate::kvm::probe(
            &qemu,
            crate::qemu::Accel::Tcg,
            &inputs.kernel,
            &initramfs,
            &work,
            Duration::from_secs(60),
        )
        .await
        {
            Ok(t) => {
                let _ = writeln!(out, "probe guest reached user space under TCG in {:.1} s", t.as_secs_f64());
                0
            }
            Err(e) => {
                let _ = writeln!(out, "probe guest failed under TCG: {e}");
                1
            }
        };
    }
    let v =
        vm::verdict(&rundir::runtime_root(), &qemu, &inputs.kernel, &inputs.busybox, a.fresh, a.force_probe)
            .await;
    for (what, ok, detail) in &v.checks {
        let _ = writeln!(out, "{} {what}: {detail}", if *ok { "✓" } else { "✗" });
    }
    let _ = writeln!(out, "{}", v.reason);
    0
}

/// Runs a parsed command line; returns the exit code.
pub async fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match cli.command {
        Command::Microvm(cmd) => run_microvm(cmd, out, err).await,
        Command::LoadTest(a) => {
            crate::loadtest::run(
                &a.vm.name,
                a.vm.run_dir.as_deref(),
                a.clients,
                &a.duration,
                &a.swarm_args,
                out,
                err,
            )
            .await
        }
        Command::Observe(a) => crate::observe::run(&a, out, err).await,
        Command::Network(cmd) => {
            // The network crate blocks on its own runtime: run it off ours.
            let code = tokio::task::spawn_blocking(move || network::cli::run(cmd)).await.unwrap_or(1);
            u8::try_from(code).unwrap_or(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("hls-lab").chain(args.iter().copied()))
    }

    fn start(args: &[&str]) -> StartArgs {
        let mut all = vec!["microvm", "start"];
        all.extend_from_slice(args);
        match parse(&all).unwrap().command {
            Command::Microvm(MicrovmCommand::Start(a)) => *a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_lab() {
        let a = start(&[]);
        let c = a.config().unwrap();
        assert_eq!(c.name, "origin");
        assert_eq!(c.net, Net::User { ports: HostPorts { hls: 17080, node: 9100, nginx: 9113 } });
        assert_eq!(c.memory_mib, 1024);
        assert_eq!(c.accel, AccelChoice::Auto);
        assert_eq!(c.picture, None);
        let t = start(&["--net", "tap", "--netns", "lab"]).config().unwrap();
        assert_eq!(
            t.net,
            Net::Tap {
                tap: "hlstap0".into(),
                netns: Some("lab".into()),
                address: Ipv4Addr::new(10, 177, 0, 10),
                prefix: 24,
                gateway: Ipv4Addr::new(10, 177, 0, 1)
            }
        );
    }

    #[test]
    fn unknown_net_mode_is_refused_by_name() {
        let e = parse(&["microvm", "start", "--net", "bridge"]).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("'bridge'") && text.contains("user") && text.contains("tap"), "{text}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn flags_for_the_other_mode_are_refused() {
        let e = start(&["--netns", "lab"]).config().unwrap_err();
        assert!(e.to_string().starts_with("--netns lab: only for --net tap"), "{e}");
        let e = start(&["--net", "tap", "--host-ports", "1,2,3"]).config().unwrap_err();
        assert!(e.to_string().starts_with("--host-ports: only for --net user"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn values_are_checked() {
        // Refused by the flag's own parser (not as an unknown flag), naming the value and what
        // would be accepted.
        for (flag, value, want) in [
            ("--picture", "321x180", "must be even"),
            ("--picture", "big", "expected auto, profile, or WIDTHxHEIGHT"),
            ("--vm-addr", "10.177.0.10", "with prefix length"),
            ("--vm-addr", "10.177.0.10/31", "with prefix length"),
            ("--host-ports", "1,1,2", "must differ"),
        ] {
            let e = parse(&["microvm", "start", flag, value]).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{flag} {value}: {e}");
            let text = e.to_string();
            assert!(text.contains(flag) && text.contains(value) && text.contains(want), "{text}");
            assert_eq!(e.exit_code(), 2);
        }
        let a = start(&["--picture", "640x360", "--host-ports", "27080,29100,29113"]);
        let c = a.config().unwrap();
        assert_eq!(c.picture, Some(Some((640, 360))));
        assert_eq!(c.net, Net::User { ports: HostPorts { hls: 27080, node: 29100, nginx: 29113 } });
        assert_eq!(start(&["--picture", "profile"]).config().unwrap().picture, Some(None));
    }

    #[test]
    fn load_test_passes_extra_swarm_arguments() {
        let cli = parse(&["load-test", "--clients", "50", "--", "--tui=false", "--ramp-rate", "10"]).unwrap();
        let Command::LoadTest(a) = cli.command else { panic!() };
        assert_eq!(a.clients, 50);
        assert_eq!(a.duration, "2m");
        assert_eq!(a.swarm_args, ["--tui=false", "--ramp-rate", "10"]);
    }

    #[test]
    fn network_commands_are_wired() {
        use network::cli::NetworkCommand as N;
        let net = |args: &[&str]| match parse(args).unwrap().command {
            Command::Network(n) => n,
            other => panic!("{args:?} parsed as {other:?}"),
        };
        assert!(
            matches!(net(&["network", "setup", "--netns", "lab"]), N::Setup(t) if t.netns.as_deref() == Some("lab"))
        );
        assert!(matches!(net(&["network", "teardown"]), N::Teardown(_)));
        assert!(matches!(net(&["network", "check", "--skip-vm"]), N::Check(_)));
    }

    #[tokio::test]
    async fn status_of_a_vm_that_never_ran() {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("vm-x");
        let cli =
            parse(&["microvm", "status", "--name", "x", "--run-dir", run_dir.to_str().unwrap()]).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(run(cli, &mut out, &mut err).await, 5);
        assert!(String::from_utf8_lossy(&out).contains("not running"));
        let cli = parse(&["microvm", "stop", "--name", "x", "--run-dir", run_dir.to_str().unwrap()]).unwrap();
        assert_eq!(run(cli, &mut out, &mut err).await, 0);
    }
}
