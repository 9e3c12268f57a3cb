//! KVM or TCG: decided by evidence, not by the existence of `/dev/kvm`.
//!
//! Three checks, in order, each of which can send us to TCG with a reason:
//! 1. the CPU exposes hardware virtualisation (`vmx` or `svm` in `/proc/cpuinfo`);
//! 2. `/dev/kvm` opens read-write for us;
//! 3. a bounded boot probe: the same kernel with a tiny initramfs (busybox and an init that
//!    prints [`guest::PROBE_MARKER`] and powers off) under `-enable-kvm` must print that line on
//!    its serial console within [`PROBE_TIMEOUT`]. Some hosts (nested or paravirtual) open
//!    `/dev/kvm` fine and then fail every normal guest with `KVM internal error … emulation
//!    failure`, or hang it; only a real boot shows that.
//!
//! The verdict is cached in the runtime root (`kvm.json`) for this boot of the host
//! (`/proc/sys/kernel/random/boot_id`), qemu binary and kernel.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::guest;
use crate::qemu::Accel;

/// How long the probe guest has to reach user space under KVM (it takes about a second).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// The hardware virtualisation flag in `/proc/cpuinfo` text, if any.
#[must_use]
pub fn cpu_flag(cpuinfo: &str) -> Option<&'static str> {
    for line in cpuinfo.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        if key.trim() != "flags" {
            continue;
        }
        for flag in value.split_whitespace() {
            match flag {
                "vmx" => return Some("vmx"),
                "svm" => return Some("svm"),
                _ => {}
            }
        }
    }
    None
}

/// The decision and how it was reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// What to use.
    pub accel: Accel,
    /// One line: why.
    pub reason: String,
    /// Each check that ran: (what, passed, detail).
    pub checks: Vec<(String, bool, String)>,
}

/// Decides from the facts. The `/dev/kvm` check and the probe (a future, only awaited when
/// needed) run only when the previous checks passed — or, with `force_probe`, regardless of
/// the CPU flags (to show what this host's KVM does with a normal guest; the verdict still
/// needs the flag).
pub async fn decide(
    cpuinfo: &str,
    dev_kvm: impl FnOnce() -> Result<(), String>,
    probe: impl std::future::Future<Output = Result<Duration, String>>,
    force_probe: bool,
) -> Verdict {
    let mut checks = Vec::new();
    let flag = cpu_flag(cpuinfo);
    let tcg = |reason: String, checks| Verdict { accel: Accel::Tcg, reason, checks };
    match flag {
        Some(f) => checks.push(("cpu flags".into(), true, format!("{f} present"))),
        None => checks.push(("cpu flags".into(), false, "no vmx or svm flag in /proc/cpuinfo".into())),
    }
    let dev = if flag.is_some() || force_probe { Some(dev_kvm()) } else { None };
    match &dev {
        Some(Ok(())) => checks.push(("/dev/kvm".into(), true, "opens read-write".into())),
        Some(Err(e)) => checks.push(("/dev/kvm".into(), false, e.clone())),
        None => {}
    }
    let probed = if matches!(dev, Some(Ok(()))) { Some(probe.await) } else { None };
    match &probed {
        Some(Ok(t)) => checks.push((
            "boot probe".into(),
            true,
            format!("guest reached user space under KVM in {:.1} s", t.as_secs_f64()),
        )),
        Some(Err(e)) => checks.push(("boot probe".into(), false, e.clone())),
        None => {}
    }
    if flag.is_none() {
        return tcg(
            "TCG: the CPU exposes no hardware virtualisation (no vmx/svm flag in /proc/cpuinfo)".into(),
            checks,
        );
    }
    match (dev, probed) {
        (Some(Err(e)), _) => tcg(format!("TCG: /dev/kvm is not usable ({e})"), checks),
        (_, Some(Err(e))) => tcg(format!("TCG: KVM boot probe failed ({e})"), checks),
        (_, Some(Ok(t))) => Verdict {
            accel: Accel::Kvm,
            reason: format!(
                "KVM: {} flag, /dev/kvm usable, probe guest booted in {:.1} s",
                flag.unwrap_or("?"),
                t.as_secs_f64()
            ),
            checks,
        },
        _ => tcg("TCG: KVM checks incomplete".into(), checks),
    }
}

/// Opens `/dev/kvm` read-write.
///
/// # Errors
/// The OS error, as text naming the device.
pub fn open_dev_kvm() -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(drop)
        .map_err(|e| format!("cannot open /dev/kvm: {e}"))
}

/// Boots the probe guest (`kernel`, `initramfs`) with `accel` and waits for the marker line.
/// qemu runs in the foreground as a process group of ours with a parent-death signal, and is
/// killed and reaped whatever happens.
///
/// # Errors
/// Why the probe failed: qemu exited without the marker (with its last console and stderr
/// lines), or the timeout passed.
pub async fn probe(
    qemu: &Path,
    accel: Accel,
    kernel: &Path,
    initramfs: &Path,
    work: &Path,
    timeout: Duration,
) -> Result<Duration, String> {
    let console = work.join("probe-console.log");
    let stderr_path = work.join("probe-qemu.log");
    let _ = std::fs::remove_file(&console);
    let stderr =
        std::fs::File::create(&stderr_path).map_err(|e| format!("{}: {e}", stderr_path.display()))?;
    let mut cmd = tokio::process::Command::new(qemu);
    let machine = format!("q35,accel={accel}");
    cmd.args(["-machine", &machine, "-m", "256", "-smp", "1", "-nodefaults", "-no-user-config"])
        .args(["-display", "none", "-no-reboot", "-kernel"])
        .arg(kernel)
        .arg("-initrd")
        .arg(initramfs)
        .args(["-append", "console=ttyS0 panic=-1 rdinit=/init quiet"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    if accel == Accel::Kvm {
        cmd.args(["-cpu", "host"]);
    }
    let started = Instant::now();
    let mut group =
        procgroup::spawn(&mut cmd).map_err(|e| format!("cannot start {}: {e}", qemu.display()))?;
    let outcome = loop {
        let seen = std::fs::read_to_string(&console).unwrap_or_default();
        if seen.contains(guest::PROBE_MARKER) {
            break Ok(started.elapsed());
        }
        if let Ok(Some(status)) = group.try_wait() {
            let seen = std::fs::read_to_string(&console).unwrap_or_default();
            if seen.contains(guest::PROBE_MARKER) {
                break Ok(started.elapsed());
            }
            let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            break Err(format!(
                "qemu exited ({status}) before the guest reached user space: {}",
                last_lines(&format!("{seen}\n{err}"), 3)
            ));
        }
        if started.elapsed() > timeout {
            let seen = std::fs::read_to_string(&console).unwrap_or_default();
            let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            break Err(format!(
                "the guest did not reach user space within {} s (hung); console: {}; qemu: {}",
                timeout.as_secs(),
                last_lines(&seen, 2),
                last_lines(&err, 2)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = group.stop(Duration::from_secs(2)).await;
    outcome
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let s = lines[lines.len().saturating_sub(n)..].join(" | ");
    if s.is_empty() {
        "(nothing)".into()
    } else {
        s
    }
}

/// A cached verdict and what it is valid for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cached {
    /// `/proc/sys/kernel/random/boot_id` when decided.
    pub boot_id: String,
    /// qemu binary.
    pub qemu: PathBuf,
    /// Kernel probed.
    pub kernel: PathBuf,
    /// The verdict.
    pub verdict: Verdict,
}

/// This boot's id.
#[must_use]
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default().trim().to_owned()
}

/// The cached verdict in `file` if it was made for this boot, `qemu` and `kernel`.
#[must_use]
pub fn load_cached(file: &Path, qemu: &Path, kernel: &Path) -> Option<Verdict> {
    let c: Cached = serde_json::from_str(&std::fs::read_to_string(file).ok()?).ok()?;
    (c.boot_id == boot_id() && c.qemu == qemu && c.kernel == kernel).then_some(c.verdict)
}

/// Stores a verdict (best effort).
pub fn store(file: &Path, qemu: &Path, kernel: &Path, verdict: &Verdict) {
    let c = Cached {
        boot_id: boot_id(),
        qemu: qemu.to_owned(),
        kernel: kernel.to_owned(),
        verdict: verdict.clone(),
    };
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(json) = serde_json::to_vec_pretty(&c) {
        let _ = std::fs::write(file, json);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTEL_KVM: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc vmx ssse3 fma cx16\n\n";
    const AMD_KVM: &str = "processor\t: 0\nflags\t\t: fpu vme de pse tsc svm extapic cr8_legacy abm sse4a\n";
    // This lab machine: a guest itself, no virtualisation exposed.
    const NESTED_NONE: &str = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep hypervisor lahf_lm abm\nvmx flags\t: none\n";

    #[test]
    fn flags() {
        assert_eq!(cpu_flag(INTEL_KVM), Some("vmx"));
        assert_eq!(cpu_flag(AMD_KVM), Some("svm"));
        // "vmx flags" is another key, not the flag.
        assert_eq!(cpu_flag(NESTED_NONE), None);
        assert_eq!(cpu_flag(""), None);
    }

    #[tokio::test]
    async fn no_flag_means_tcg_without_touching_dev_kvm_or_probing() {
        let v = decide(
            NESTED_NONE,
            || panic!("must not open /dev/kvm"),
            async { panic!("must not probe") },
            false,
        )
        .await;
        assert_eq!(v.accel, Accel::Tcg);
        assert!(v.reason.contains("no vmx/svm flag"), "{}", v.reason);
    }

    #[tokio::test]
    async fn unopenable_dev_kvm_means_tcg() {
        let v = decide(
            INTEL_KVM,
            || Err("cannot open /dev/kvm: Permission denied".into()),
            async { panic!("no probe") },
            false,
        )
        .await;
        assert_eq!(v.accel, Accel::Tcg);
        assert_eq!(v.reason, "TCG: /dev/kvm is not usable (cannot open /dev/kvm: Permission denied)");
    }

    #[tokio::test]
    async fn failing_probe_means_tcg_even_with_flag_and_device() {
        // The paravirtual /dev/kvm of some hosts: opens, then every normal guest dies.
        let v = decide(
            AMD_KVM,
            || Ok(()),
            async {
                Err("qemu exited (exit status: 1): KVM internal error. Suberror: 1 | emulation failure"
                    .into())
            },
            false,
        )
        .await;
        assert_eq!(v.accel, Accel::Tcg);
        assert!(v.reason.starts_with("TCG: KVM boot probe failed (qemu exited"), "{}", v.reason);
        assert_eq!(v.checks.len(), 3);
        assert!(!v.checks[2].1);
    }

    #[tokio::test]
    async fn everything_passing_means_kvm() {
        let v = decide(INTEL_KVM, || Ok(()), async { Ok(Duration::from_millis(900)) }, false).await;
        assert_eq!(v.accel, Accel::Kvm);
        assert_eq!(v.reason, "KVM: vmx flag, /dev/kvm usable, probe guest booted in 0.9 s");
        assert!(v.checks.iter().all(|c| c.1));
    }

    #[tokio::test]
    async fn forced_probe_runs_but_cannot_override_missing_flag() {
        let mut probed = false;
        let v = decide(
            NESTED_NONE,
            || Ok(()),
            async {
                probed = true;
                Ok(Duration::from_secs(1))
            },
            true,
        )
        .await;
        assert!(probed);
        assert_eq!(v.accel, Accel::Tcg);
    }

    #[tokio::test]
    async fn cache_is_bound_to_boot_qemu_and_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kvm.json");
        let v = decide(NESTED_NONE, || Ok(()), async { Ok(Duration::ZERO) }, false).await;
        store(&file, Path::new("/usr/bin/qemu"), Path::new("/k"), &v);
        assert_eq!(load_cached(&file, Path::new("/usr/bin/qemu"), Path::new("/k")), Some(v.clone()));
        assert_eq!(load_cached(&file, Path::new("/other/qemu"), Path::new("/k")), None);
        assert_eq!(load_cached(&file, Path::new("/usr/bin/qemu"), Path::new("/k2")), None);
        // The same verdict recorded under another boot is not this boot's.
        assert!(!boot_id().is_empty(), "/proc/sys/kernel/random/boot_id is readable");
        let other = Cached {
            boot_id: "00000000-0000-0000-0000-000000000000".into(),
            qemu: "/usr/bin/qemu".into(),
            kernel: "/k".into(),
            verdict: v,
        };
        std::fs::write(&file, serde_json::to_vec(&other).unwrap()).unwrap();
        assert_eq!(load_cached(&file, Path::new("/usr/bin/qemu"), Path::new("/k")), None);
    }
}
