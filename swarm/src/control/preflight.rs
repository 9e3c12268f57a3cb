//! Checks before any viewer starts: limits, memory, and an FFmpeg that accepts our command.

use std::fmt::{self, Write as _};
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::control::config::Config;
use crate::engine::settings::EngineKind;

/// File descriptors the swarm needs per viewer (stderr pipe, relay listener and sockets; `make
/// bench-swarm` measured 9.1 with the relay) plus a reserve.
const FDS_PER_VIEWER: u64 = 12;
const FDS_RESERVE: u64 = 64;
/// Memory of one viewer: an FFmpeg `-c copy` process (PSS, measured by `make bench-swarm` at
/// 12–14 MiB mean and up to 16.4 MiB on a 360p stream) plus its relay in the swarm (≈ 0.4 MiB).
pub const PSS_PER_VIEWER: u64 = 17 * 1024 * 1024;
/// File descriptors per native viewer: one connection per track (a variant with its audio
/// and subtitle renditions), estimated.
const FDS_PER_NATIVE_VIEWER: u64 = 4;
/// Memory of one native viewer, estimated: its task, connection buffers and the playlist
/// being read (the goal, measured by `make bench`, is under 64 KiB).
pub const MEMORY_PER_NATIVE_VIEWER: u64 = 256 * 1024;
/// CPU-seconds to start one FFmpeg process (it loads ~215 shared libraries).
pub const START_CPU_SECONDS: f64 = 0.14;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fine.
    Pass,
    /// Worth knowing; the run goes on.
    Warn,
    /// The run would fail; it does not start.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Short name.
    pub name: &'static str,
    /// Outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix it, for warnings and failures.
    pub fix: Option<String>,
}

/// All checks of one preflight.
#[derive(Debug, Clone, Default)]
pub struct Checklist {
    /// In the order they ran.
    pub checks: Vec<Check>,
}

impl Checklist {
    /// True if any check failed.
    #[must_use]
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }
}

impl fmt::Display for Checklist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Preflight checks:")?;
        for c in &self.checks {
            let mark = match c.status {
                Status::Pass => "✓",
                Status::Warn => "⚠",
                Status::Fail => "✗",
            };
            writeln!(f, "  {mark} {}: {}", c.name, c.detail)?;
            if let Some(fix) = &c.fix {
                writeln!(f, "    Fix: {fix}")?;
            }
        }
        Ok(())
    }
}

fn check(name: &'static str, status: Status, detail: String, fix: Option<String>) -> Check {
    Check { name, status, detail, fix }
}

/// Checks the process's limits and the machine's memory and ports against `config`.
#[must_use]
pub fn system_checks(config: &Config, cores: usize) -> Vec<Check> {
    let n = u64::from(config.clients);
    let native = config.engine == EngineKind::Native;
    let mut out = Vec::new();

    let need = n * if native { FDS_PER_NATIVE_VIEWER } else { FDS_PER_VIEWER } + FDS_RESERVE;
    out.push(match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) if soft >= need => check(
            "file descriptors",
            Status::Pass,
            format!("limit {soft}, {need} needed for {n} viewers"),
            None,
        ),
        Ok((soft, hard)) => check(
            "file descriptors",
            Status::Fail,
            format!("limit {soft} (hard {hard}), {need} needed for {n} viewers"),
            Some(format!("ulimit -n {}", need.next_power_of_two())),
        ),
        Err(e) => check("file descriptors", Status::Warn, format!("cannot read RLIMIT_NOFILE: {e}"), None),
    });

    let need = n + 50;
    // Native viewers are tasks, not processes.
    out.extend((!native).then(|| {
        match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC) {
            Ok((soft, _)) if soft >= need => check(
                "process limit",
                Status::Pass,
                format!(
                    "limit {}, {need} needed",
                    if soft == u64::MAX { "unlimited".into() } else { soft.to_string() }
                ),
                None,
            ),
            Ok((soft, _)) => check(
                "process limit",
                Status::Fail,
                format!("limit {soft}, {need} needed for {n} viewers"),
                Some(format!("ulimit -u {}", need.next_power_of_two())),
            ),
            Err(e) => check("process limit", Status::Warn, format!("cannot read RLIMIT_NPROC: {e}"), None),
        }
    }));

    out.push(match read_port_range() {
        Some((lo, hi)) if u64::from(hi.saturating_sub(lo)) >= n * 4 => {
            check("ephemeral ports", Status::Pass, format!("{lo}-{hi}"), None)
        }
        Some((lo, hi)) => check(
            "ephemeral ports",
            Status::Warn,
            format!("range {lo}-{hi} is small for {n} viewers ({} wanted)", n * 4),
            Some("sysctl -w net.ipv4.ip_local_port_range='1024 65535'".into()),
        ),
        None => {
            check("ephemeral ports", Status::Warn, "cannot read net.ipv4.ip_local_port_range".into(), None)
        }
    });

    let need = n * if native { MEMORY_PER_NATIVE_VIEWER } else { PSS_PER_VIEWER };
    out.push(match read_mem_available() {
        Some(avail) if need <= avail / 10 * 8 => check(
            "memory",
            Status::Pass,
            format!("≈{} MiB for {n} viewers, {} MiB available", need >> 20, avail >> 20),
            None,
        ),
        Some(avail) => check(
            "memory",
            Status::Warn,
            format!("≈{} MiB for {n} viewers but only {} MiB available", need >> 20, avail >> 20),
            Some("run fewer viewers per machine".into()),
        ),
        None => check("memory", Status::Warn, "cannot read MemAvailable from /proc/meminfo".into(), None),
    });

    #[allow(clippy::cast_precision_loss)]
    let start_load = config.ramp_rate * START_CPU_SECONDS;
    let cores_f = cores.max(1) as f64;
    if native {
        // Starting a native viewer is spawning a task: microseconds.
        return out;
    }
    out.push(if start_load <= cores_f * 0.8 {
        check("ramp rate", Status::Pass, format!("{:.1} starts/s ≈ {:.0} % of {cores} cores", config.ramp_rate, start_load * 100.0 / cores_f), None)
    } else {
        check(
            "ramp rate",
            Status::Warn,
            format!(
                "{:.1} starts/s needs ≈ {:.1} cores just to start FFmpeg ({START_CPU_SECONDS} CPU-s each); this machine has {cores}: starts will lag and running viewers will starve",
                config.ramp_rate, start_load
            ),
            Some(format!("--ramp-rate {:.0} or lower", (cores_f * 0.8 / START_CPU_SECONDS).floor().max(1.0))),
        )
    });
    out
}

fn read_port_range() -> Option<(u32, u32)> {
    let s = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = s.split_whitespace().filter_map(|x| x.parse().ok());
    Some((it.next()?, it.next()?))
}

fn read_mem_available() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs the exact viewer command once against a local endpoint that answers 404, proving
/// that FFmpeg accepts every option (it rejects unknown ones before opening the input).
pub async fn ffmpeg_accepts(argv: &[std::ffi::OsString], binary: &Path) -> Check {
    let name = "ffmpeg";
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => {
            return check(name, Status::Warn, format!("cannot open a local port to test FFmpeg: {e}"), None)
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let server = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    let url = format!("http://127.0.0.1:{port}/preflight.m3u8");
    let mut args: Vec<std::ffi::OsString> = argv.iter().skip(1).cloned().collect();
    if let Some(pos) = args.iter().position(|a| a == "-i") {
        if let Some(slot) = args.get_mut(pos + 1) {
            *slot = url.into();
        }
    }
    // Through a relay, FFmpeg sends the request to the proxy: let the same server answer.
    if let Some(pos) = args.iter().position(|a| a == "-http_proxy") {
        if let Some(slot) = args.get_mut(pos + 1) {
            *slot = format!("http://127.0.0.1:{port}").into();
        }
    }
    let run = tokio::process::Command::new(binary)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let result = tokio::time::timeout(Duration::from_secs(20), run).await;
    server.abort();
    match result {
        Err(_) => check(name, Status::Fail, "FFmpeg did not answer within 20 s".into(), None),
        Ok(Err(e)) => check(
            name,
            Status::Fail,
            format!("cannot run '{}': {e}", binary.display()),
            Some("install ffmpeg (apt install ffmpeg) or pass --ffmpeg PATH".into()),
        ),
        Ok(Ok(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("404") {
                check(name, Status::Pass, "accepts every option of the viewer command".into(), None)
            } else {
                let mut detail = String::from("FFmpeg rejected the viewer command: ");
                let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output");
                let _ = write!(detail, "{}", last.trim());
                check(
                    name,
                    Status::Fail,
                    detail,
                    Some("use a newer FFmpeg or report this build's version".into()),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_format() {
        let r = Checklist {
            checks: vec![
                check("file descriptors", Status::Pass, "limit 1024, 144 needed for 10 viewers".into(), None),
                check(
                    "process limit",
                    Status::Fail,
                    "limit 10, 60 needed".into(),
                    Some("ulimit -u 64".into()),
                ),
                check("memory", Status::Warn, "low".into(), Some("fewer".into())),
            ],
        };
        assert!(r.failed());
        insta::assert_snapshot!(r.to_string(), @r"
        Preflight checks:
          ✓ file descriptors: limit 1024, 144 needed for 10 viewers
          ✗ process limit: limit 10, 60 needed
            Fix: ulimit -u 64
          ⚠ memory: low
            Fix: fewer
        ");
    }
}
