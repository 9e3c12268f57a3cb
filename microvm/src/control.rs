//! `stop`, `status` and `console` for a VM started by [`crate::vm::start`], read from its run
//! directory. Nothing is signalled before its pid is checked to still be that qemu.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::rundir::{kill, kill_stray, unix_ms, RunDir};
use crate::{http, qmp};

/// How `stop` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// Nothing was running (stale state, if any, was removed).
    NotRunning,
    /// The guest powered off after `system_powerdown`.
    PoweredOff(Duration),
    /// It did not within the grace period and was killed.
    Killed(String),
}

/// Stops the VM: ACPI power button via QMP, up to `grace` for the guest to stop hls-origin and
/// power off, then SIGTERM and SIGKILL to the verified qemu pid.
///
/// # Errors
/// Lock held, or the process could not be killed.
pub async fn stop(
    name: &str,
    run_dir: Option<&Path>,
    grace: Duration,
    out: &mut dyn Write,
) -> Result<Stopped, Error> {
    let run = RunDir::new(name, run_dir);
    if !run.path().exists() {
        let _ = writeln!(out, "vm {name} is not running (no run directory {})", run.path().display());
        return Ok(Stopped::NotRunning);
    }
    let _lock = run.lock()?;
    let Some(st) = run.read_state() else {
        kill_stray(&run).await;
        run.clear();
        let _ = writeln!(out, "vm {name} is not running");
        return Ok(Stopped::NotRunning);
    };
    if !run.owns(st.pid, st.start_ticks) {
        run.clear();
        let _ = writeln!(out, "vm {name} is not running (removed stale state of pid {})", st.pid);
        return Ok(Stopped::NotRunning);
    }
    let t = Instant::now();
    let asked = match qmp::Qmp::connect(&run.qmp_socket(), Duration::from_secs(3)).await {
        Ok(mut q) => q.execute("system_powerdown", None).await.map(drop).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let result = match asked {
        Ok(()) => {
            let mut gone = false;
            while t.elapsed() < grace {
                if !run.owns(st.pid, st.start_ticks) {
                    gone = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if gone {
                Stopped::PoweredOff(t.elapsed())
            } else {
                let ok = kill(&run, st.pid, st.start_ticks, Duration::from_secs(3)).await;
                if !ok {
                    return Err(Error::Io {
                        action: format!("qemu pid {} survived SIGKILL", st.pid),
                        source: std::io::ErrorKind::TimedOut.into(),
                    });
                }
                Stopped::Killed(format!("the guest did not power off within {} s", grace.as_secs()))
            }
        }
        Err(e) => {
            let ok = kill(&run, st.pid, st.start_ticks, Duration::from_secs(3)).await;
            if !ok {
                return Err(Error::Io {
                    action: format!("qemu pid {} survived SIGKILL", st.pid),
                    source: std::io::ErrorKind::TimedOut.into(),
                });
            }
            Stopped::Killed(format!("QMP unavailable ({e})"))
        }
    };
    run.clear();
    match &result {
        Stopped::PoweredOff(d) => {
            let _ = writeln!(
                out,
                "vm {name}: powered off cleanly in {:.1} s (qemu pid {} gone)",
                d.as_secs_f64(),
                st.pid
            );
        }
        Stopped::Killed(why) => {
            let _ = writeln!(out, "vm {name}: killed qemu pid {}: {why}", st.pid);
        }
        Stopped::NotRunning => {}
    }
    Ok(result)
}

/// What `status` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// No VM.
    NotRunning,
    /// qemu runs but the playlist is not served (booting, or broken).
    NotServing,
    /// qemu runs and the playlist is served.
    Serving,
}

/// Reports the truth about the VM: is the recorded pid alive and our qemu, what does QMP say,
/// is the playlist served.
pub async fn status(name: &str, run_dir: Option<&Path>, out: &mut dyn Write) -> Health {
    let run = RunDir::new(name, run_dir);
    let Some(st) = run.read_state() else {
        let _ = writeln!(out, "vm {name}: not running (no state in {})", run.path().display());
        return Health::NotRunning;
    };
    if !run.owns(st.pid, st.start_ticks) {
        let _ = writeln!(
            out,
            "vm {name}: not running (recorded qemu pid {} is gone; last console lines in {})",
            st.pid,
            run.console_log().display()
        );
        return Health::NotRunning;
    }
    let run_state = match qmp::Qmp::connect(&run.qmp_socket(), Duration::from_secs(2)).await {
        Ok(mut q) => q.run_state().await.unwrap_or_else(|e| format!("unknown ({e})")),
        Err(e) => format!("unknown ({e})"),
    };
    let uptime = Duration::from_millis(unix_ms().saturating_sub(st.started_unix_ms));
    let _ = writeln!(
        out,
        "vm {name}: qemu pid {} {run_state}, up {} s, {}",
        st.pid,
        uptime.as_secs(),
        st.accel_reason
    );
    let _ = writeln!(out, "  network: {}", st.net_detail);
    if let Some(s) = st.ready_seconds {
        let _ = writeln!(out, "  boot to playlist: {s:.1} s");
    }
    if let Some(s) = st.exporters_seconds {
        let _ = writeln!(out, "  boot to exporters: {s:.1} s");
    }
    let probe =
        http::get_in(st.netns.as_deref(), st.check_addr, "/stream.m3u8", Duration::from_secs(3)).await;
    let serving = matches!(&probe, Ok(r) if http::is_playlist(r));
    match &probe {
        Ok(r) if serving => {
            let _ = writeln!(out, "  playlist: served ({} bytes) at {}", r.body.len(), st.stream_url);
        }
        Ok(r) => {
            let _ = writeln!(out, "  playlist: NOT served (HTTP {}) at {}", r.status, st.stream_url);
        }
        Err(e) => {
            let _ = writeln!(out, "  playlist: NOT served ({e})");
        }
    }
    for (label, addr, url) in
        [("node exporter ", st.node_addr, &st.node_url), ("nginx exporter", st.nginx_addr, &st.nginx_url)]
    {
        let ok = http::get_in(st.netns.as_deref(), addr, "/metrics", Duration::from_secs(3))
            .await
            .is_ok_and(|r| r.status == 200);
        let _ = writeln!(out, "  {label}  {url} ({})", if ok { "answering" } else { "NOT answering" });
    }
    let _ = writeln!(out, "  console log     {}", run.console_log().display());
    if serving {
        Health::Serving
    } else {
        Health::NotServing
    }
}

/// Prints the console log; with `follow`, keeps printing what the guest writes until the VM
/// stops or Ctrl+C. Read-only: the guest has no login on its console.
///
/// # Errors
/// No console log for this VM.
pub async fn console(
    name: &str,
    run_dir: Option<&Path>,
    follow: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    use std::io::{Read, Seek, SeekFrom};
    let run = RunDir::new(name, run_dir);
    let log = run.console_log();
    let mut f = std::fs::File::open(&log).map_err(|_| {
        Error::Invalid(format!("vm {name}: no console log at {} (never started?)", log.display()))
    })?;
    let mut pos = 0u64;
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        let _ = f.seek(SeekFrom::Start(pos));
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        if !buf.is_empty() {
            pos += buf.len() as u64;
            let _ = out.write_all(&buf);
            let _ = out.flush();
        }
        let running = run.read_state().is_some_and(|s| run.owns(s.pid, s.start_ticks));
        if !follow || !running {
            return Ok(());
        }
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// Returns on Ctrl+C or SIGTERM, whichever comes first: what ends a wait the user may cut
/// short (`start` waiting for the playlist, `console --follow`).
pub(crate) async fn shutdown_signal() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
