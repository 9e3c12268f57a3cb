//! The launcher: `start` for one VM and its run directory (its configuration is in
//! [`crate::config`], `stop`, `status` and `console` in [`crate::control`], its [`Error`] in a
//! module of its own; all re-exported here).
//!
//! `start` validates everything before any side effect, builds (or reuses) the image, picks
//! the accelerator, then runs qemu with `-daemonize`: the foreground qemu is our child (own
//! process group, parent-death signal, always reaped) and exits only once the daemon has set
//! up every device, so a refused TAP or a taken port is reported with qemu's own message
//! before anything is left running. The daemon is session leader of its own session, so it
//! outlives `hls-lab`; its pid and start time go into the run directory. `start` then waits
//! for the playlist; on timeout, death of the guest, or Ctrl+C it kills the VM (after checking
//! the pid is still that qemu) and says why, with the console's last lines.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::control::shutdown_signal;
use crate::guest::{self, GuestNet, Stream};
use crate::image::{self, Image};
use crate::kvm::{self, Verdict};
use crate::qemu::{self, Accel, Backend, Launch, Machine};
use crate::rundir::{self, kill, kill_stray, read_pid, unix_ms, ProcStat, RunDir, State};
use crate::{http, netns};

pub use crate::config::{
    validate, which, AccelChoice, HostPorts, KernelForm, Net, StartConfig, HLS_PORT, MIN_MEMORY_MIB,
    NGINX_PORT, NODE_PORT,
};
pub use crate::control::{console, status, stop, Health, Stopped};
pub use crate::error::Error;

/// What `start` achieved.
#[derive(Debug, Clone)]
pub struct Started {
    /// The recorded state.
    pub state: State,
}

/// Last `n` non-empty lines of a file, without terminal escapes.
#[must_use]
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> =
        text.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.trim().is_empty()).collect();
    let mut out = lines[lines.len().saturating_sub(n)..].join("\n");
    if out.is_empty() {
        out = "(empty)".into();
    }
    out
}

/// The accelerator verdict for `qemu` and `kernel`: cached for this boot, or decided now.
pub async fn verdict(
    runtime_root: &Path,
    qemu: &Path,
    kernel: &Path,
    busybox: &Path,
    fresh: bool,
    force_probe: bool,
) -> Verdict {
    let cache = runtime_root.join("kvm.json");
    if !fresh && !force_probe {
        if let Some(v) = kvm::load_cached(&cache, qemu, kernel) {
            return v;
        }
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let work = runtime_root.join("kvm-probe");
    let probe = async {
        std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
        let initramfs = work.join("probe.cpio");
        image::write_probe(busybox, &initramfs).map_err(|e| e.to_string())?;
        kvm::probe(qemu, Accel::Kvm, kernel, &initramfs, &work, kvm::PROBE_TIMEOUT).await
    };
    let v = kvm::decide(&cpuinfo, kvm::open_dev_kvm, probe, force_probe).await;
    if !force_probe {
        kvm::store(&cache, qemu, kernel, &v);
    }
    v
}

/// Whether `/dev/vhost-net` opens read-write.
///
/// # Errors
/// The reason as text.
pub fn vhost_net() -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/vhost-net")
        .map(drop)
        .map_err(|e| format!("/dev/vhost-net: {e}"))
}

/// Starts the VM and waits for its playlist. Progress goes to `out`.
///
/// # Errors
/// See [`Error`]; whenever qemu was started and an error is returned, it has been stopped.
pub async fn start(c: &StartConfig, out: &mut dyn Write) -> Result<Started, Error> {
    let qemu_bin = validate(c)?;
    let run = RunDir::new(&c.name, c.run_dir.as_deref());
    let _lock = run.lock()?;
    if let Some(st) = run.read_state() {
        if run.owns(st.pid, st.start_ticks) {
            return Err(Error::AlreadyRunning {
                name: c.name.clone(),
                pid: st.pid,
                dir: run.path().to_owned(),
            });
        }
        let _ =
            writeln!(out, "run directory {}: removing stale state of pid {}", run.path().display(), st.pid);
    }
    if let Some(pid) = read_pid(&run.pid_file()) {
        if ProcStat::read(pid).is_some_and(|s| run.owns(pid, s.start_ticks)) {
            return Err(Error::AlreadyRunning { name: c.name.clone(), pid, dir: run.path().to_owned() });
        }
    }
    run.clear();

    let inputs = image::Inputs::discover(&c.image)?;
    let img = image::build(&inputs, &c.cache_root)?;
    let _ = writeln!(out, "{}", describe_image(&img));

    let (kernel, kernel_note) = match (c.kernel_form, &img.kernel.vmlinux) {
        (KernelForm::Uncompressed, Some(v)) => {
            (v.clone(), format!("uncompressed (extracted from its {} payload)", img.kernel.payload))
        }
        (KernelForm::Uncompressed, None) => (
            img.kernel.bzimage.clone(),
            format!("as shipped ({})", img.kernel.note.clone().unwrap_or_else(|| "no vmlinux".into())),
        ),
        (KernelForm::AsShipped, _) => {
            (img.kernel.bzimage.clone(), format!("as shipped ({} bzImage)", img.kernel.payload))
        }
    };

    let (accel, accel_reason) = match c.accel {
        AccelChoice::Tcg => (Accel::Tcg, "TCG: asked for with --accel tcg".to_owned()),
        AccelChoice::Kvm => {
            kvm::open_dev_kvm().map_err(|e| Error::Invalid(format!("--accel kvm: {e}")))?;
            (Accel::Kvm, "KVM: asked for with --accel kvm".to_owned())
        }
        AccelChoice::Auto => {
            let v = verdict(
                &rundir::runtime_root(),
                &qemu_bin,
                &img.kernel.bzimage,
                &inputs.busybox,
                false,
                false,
            )
            .await;
            (v.accel, v.reason)
        }
    };
    let _ = writeln!(out, "accelerator: {accel_reason}");

    let picture = match c.picture {
        Some(p) => p,
        None if accel == Accel::Tcg => Some((320, 180)),
        None => None,
    };
    let stream = Stream { profile: c.profile.clone(), source: c.source.clone(), size: picture };

    let (backend, gnet, addrs, net_detail, netns_name) = match &c.net {
        Net::User { ports } => {
            let lo = Ipv4Addr::LOCALHOST;
            let forwards = vec![
                (SocketAddr::from((lo, ports.hls)), HLS_PORT),
                (SocketAddr::from((lo, ports.node)), NODE_PORT),
                (SocketAddr::from((lo, ports.nginx)), NGINX_PORT),
            ];
            let detail = format!(
                "user-mode (slirp, guest isolated), forwards 127.0.0.1:{}→{HLS_PORT}, 127.0.0.1:{}→{NODE_PORT}, 127.0.0.1:{}→{NGINX_PORT}",
                ports.hls, ports.node, ports.nginx
            );
            let gnet = GuestNet {
                mode: "user",
                address: Ipv4Addr::new(10, 0, 2, 15),
                prefix: 24,
                gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
            };
            let addrs = [
                SocketAddr::from((lo, ports.hls)),
                SocketAddr::from((lo, ports.node)),
                SocketAddr::from((lo, ports.nginx)),
            ];
            (Backend::User { forwards }, gnet, addrs, detail, None)
        }
        Net::Tap { tap, netns, address, prefix, gateway } => {
            let vhost = vhost_net();
            let mut detail = match &vhost {
                Ok(()) => format!("TAP {tap} with vhost-net"),
                Err(e) => format!("TAP {tap}, plain TAP (no vhost-net: {e})"),
            };
            if let Some(ns) = netns {
                detail.push_str(&format!(", qemu in network namespace {ns}"));
            }
            let gnet = GuestNet { mode: "tap", address: *address, prefix: *prefix, gateway: Some(*gateway) };
            let addrs = [
                SocketAddr::from((*address, HLS_PORT)),
                SocketAddr::from((*address, NODE_PORT)),
                SocketAddr::from((*address, NGINX_PORT)),
            ];
            (Backend::Tap { ifname: tap.clone(), vhost: vhost.is_ok() }, gnet, addrs, detail, netns.clone())
        }
    };
    let _ = writeln!(out, "network: {net_detail}");

    let tsc = (c.machine == Machine::Microvm && accel == Accel::Tcg).then(tsc_khz).flatten();
    let cmdline = guest::cmdline(&gnet, &stream, tsc, &c.append);
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let runas = (root && nobody_exists()).then(|| "nobody".to_owned());
    let launch = Launch {
        name: c.name.clone(),
        accel,
        machine: c.machine,
        memory_mib: c.memory_mib,
        cpus: c.cpus,
        kernel: kernel.clone(),
        initramfs: img.initramfs.clone(),
        cmdline,
        backend,
        mac: qemu::MAC.into(),
        console_socket: run.console_socket(),
        console_log: run.console_log(),
        qmp_socket: run.qmp_socket(),
        pid_file: run.pid_file(),
        runas,
    };
    let _ = std::fs::remove_file(run.console_log());
    let qemu_log = run.qemu_log();
    let stderr = std::fs::File::create(&qemu_log)
        .map_err(|source| Error::Io { action: format!("cannot create {}", qemu_log.display()), source })?;
    let mut cmd = tokio::process::Command::new(&qemu_bin);
    cmd.args(qemu::args(&launch))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr);
    if let Some(ns) = &netns_name {
        netns::enter_in_child(&mut cmd, ns)?;
    }
    let _ = writeln!(out, "kernel: {} {kernel_note}", img.release);
    let started = Instant::now();
    let started_unix_ms = unix_ms();
    let mut fg = procgroup::spawn(&mut cmd)
        .map_err(|source| Error::Io { action: format!("cannot start {}", qemu_bin.display()), source })?;
    // The foreground qemu exits once the daemon is set up (or failed to).
    let status = match tokio::time::timeout(Duration::from_secs(60), fg.wait()).await {
        Ok(Ok(s)) => s,
        Ok(Err(source)) => return Err(Error::Io { action: "waiting for qemu".into(), source }),
        Err(_) => {
            let _ = fg.stop(Duration::from_secs(2)).await;
            kill_stray(&run).await;
            return Err(Error::QemuFailed {
                status: "no answer within 60 s".into(),
                stderr: tail(&qemu_log, 5),
            });
        }
    };
    if !status.success() {
        kill_stray(&run).await;
        run.clear();
        return Err(Error::QemuFailed { status: status.to_string(), stderr: tail(&qemu_log, 5) });
    }
    let pid = read_pid(&run.pid_file()).ok_or_else(|| Error::QemuFailed {
        status: "exited 0 without writing its pid file".into(),
        stderr: tail(&qemu_log, 5),
    })?;
    let start_ticks = ProcStat::read(pid).map(|s| s.start_ticks).ok_or_else(|| Error::NotReady {
        what: format!("qemu (pid {pid}) exited right after starting"),
        log: run.console_log(),
        tail: tail(&run.console_log(), 15),
    })?;
    let mut state = State {
        name: c.name.clone(),
        pid,
        start_ticks,
        accel: accel.to_string(),
        accel_reason,
        net: gnet.mode.to_owned(),
        net_detail,
        netns: netns_name.clone(),
        check_addr: addrs[0],
        node_addr: addrs[1],
        nginx_addr: addrs[2],
        stream_url: format!("http://{}/stream.m3u8", addrs[0]),
        node_url: format!("http://{}/metrics", addrs[1]),
        nginx_url: format!("http://{}/metrics", addrs[2]),
        image: img.dir.clone(),
        kernel,
        started_unix_ms,
        ready_seconds: None,
        exporters_seconds: None,
    };
    run.write_state(&state)?;
    let _ = writeln!(
        out,
        "vm {}: qemu pid {pid}, console {}; waiting up to {} s for {}",
        c.name,
        run.console_log().display(),
        c.timeout.as_secs(),
        state.stream_url
    );

    let wait = wait_ready(&run, &state, c.timeout, started);
    let outcome = tokio::select! {
        r = wait => r,
        () = shutdown_signal() => Err(Error::Interrupted),
    };
    match outcome {
        Ok((secs, exporters)) => {
            state.ready_seconds = Some(secs);
            state.exporters_seconds = Some(exporters);
            run.write_state(&state)?;
            let _ = writeln!(
                out,
                "ready: playlist served {secs:.1} s after qemu started ({accel}), exporters answering after {exporters:.1} s"
            );
            let _ = writeln!(out, "  stream          {}", state.stream_url);
            let _ = writeln!(out, "  node exporter   {}", state.node_url);
            let _ = writeln!(out, "  nginx exporter  {}", state.nginx_url);
            if let Some(ns) = &state.netns {
                let _ = writeln!(out, "  (inside network namespace {ns}: ip netns exec {ns} …)");
            }
            Ok(Started { state })
        }
        Err(e) => {
            kill(&run, pid, start_ticks, Duration::from_secs(3)).await;
            run.clear();
            Err(e)
        }
    }
}

/// Waits for the playlist, then for both exporters (hls-origin starts them once its stream is
/// ready); returns the seconds since `started` of each.
async fn wait_ready(
    run: &RunDir,
    state: &State,
    timeout: Duration,
    started: Instant,
) -> Result<(f64, f64), Error> {
    let playlist = wait_playlist(run, state, timeout, started).await?;
    let ns = state.netns.as_deref();
    loop {
        let mut up = true;
        for addr in [state.node_addr, state.nginx_addr] {
            let ok = http::get_in(ns, addr, "/metrics", Duration::from_secs(2))
                .await
                .is_ok_and(|r| r.status == 200);
            up &= ok;
        }
        if up {
            return Ok((playlist, started.elapsed().as_secs_f64()));
        }
        if !run.owns(state.pid, state.start_ticks) || started.elapsed() > timeout {
            return Err(Error::NotReady {
                what: format!(
                    "the playlist was served but the exporters ({}, {}) did not answer within {} s",
                    state.node_url,
                    state.nginx_url,
                    timeout.as_secs()
                ),
                log: run.console_log(),
                tail: tail(&run.console_log(), 15),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_playlist(
    run: &RunDir,
    state: &State,
    timeout: Duration,
    started: Instant,
) -> Result<f64, Error> {
    loop {
        if !run.owns(state.pid, state.start_ticks) {
            return Err(Error::NotReady {
                what: format!("qemu (pid {}) exited before the playlist was served", state.pid),
                log: run.console_log(),
                tail: tail(&run.console_log(), 15),
            });
        }
        if let Ok(r) =
            http::get_in(state.netns.as_deref(), state.check_addr, "/stream.m3u8", Duration::from_secs(2))
                .await
        {
            if http::is_playlist(&r) {
                return Ok(started.elapsed().as_secs_f64());
            }
        }
        if started.elapsed() > timeout {
            return Err(Error::NotReady {
                what: format!("no playlist at {} within {} s", state.stream_url, timeout.as_secs()),
                log: run.console_log(),
                tail: tail(&run.console_log(), 15),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn nobody_exists() -> bool {
    std::fs::read_to_string("/etc/passwd").is_ok_and(|t| t.lines().any(|l| l.starts_with("nobody:")))
}

/// The host TSC frequency in kHz, for `-M microvm` under TCG (`tsc_early_khz=`).
fn tsc_khz() -> Option<u64> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 =
        cpuinfo.lines().find(|l| l.starts_with("cpu MHz"))?.split(':').nth(1)?.trim().parse().ok()?;
    Some((mhz * 1000.0) as u64)
}

/// One line about an image.
#[must_use]
pub fn describe_image(img: &Image) -> String {
    format!(
        "image: {} ({}, initramfs {:.0} MiB with {} entries, kernel {}{})",
        img.dir.display(),
        if img.cached { "cached" } else { "built" },
        img.initramfs_bytes as f64 / (1 << 20) as f64,
        img.entries,
        img.release,
        if img.cached { String::new() } else { format!(", built in {:.1} s", img.build_seconds) }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_skips_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, "a\n\nb\r\nc\n\n").unwrap();
        assert_eq!(tail(&p, 2), "b\nc");
        assert_eq!(tail(&dir.path().join("none"), 2), "(empty)");
    }
}
