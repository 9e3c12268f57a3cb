//! A host with RAPL energy counters, for checking what reads them on machines without RAPL
//! (this one, VMs): the real node exporter (`prometheus-node-exporter --path.sysfs`) over a
//! made-up `class/powercap` tree whose `energy_uj` counters a thread advances at a known power.
//! Only the sysfs files are made up; the exporter and everything reading it are the real ones.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http::Reach;
use crate::scenario::FakeRaplSpec;

/// The zones: directory, `name`, watts.
fn zones(spec: &FakeRaplSpec) -> [(&'static str, &'static str, f64); 2] {
    [("intel-rapl:0", "package-0", spec.package_watts), ("intel-rapl:1", "dram", spec.dram_watts)]
}

/// Counters wrap here, as on real hardware (the value node exporter 1.5 ignores, but a reader
/// of the files might not).
const MAX_ENERGY_RANGE_UJ: u64 = 262_143_328_850;

/// A running fake: the exporter and the thread writing the counters.
#[derive(Debug)]
pub struct FakeRapl {
    pub group: procgroup::Group,
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// Its port, reserved while it runs.
    _port: testkit::port::Port,
}

/// Writes `value` to `path` through a rename, so a reader never sees a half-written number.
fn put(path: &Path, value: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, value)?;
    std::fs::rename(tmp, path)
}

impl FakeRapl {
    /// Makes the tree under `dir`, starts the counters and the exporter (`bin`); returns once
    /// its `/metrics` has the RAPL families.
    ///
    /// # Errors
    /// The tree cannot be written, or the exporter does not start within 30 s.
    pub async fn start(bin: &Path, spec: &FakeRaplSpec, dir: &Path, logs: &Path) -> Result<FakeRapl, String> {
        let root = dir.join("fake-sysfs");
        let powercap = root.join("class/powercap");
        let mut files: Vec<(PathBuf, f64)> = Vec::new();
        for (zone, name, watts) in zones(spec) {
            let z = powercap.join(zone);
            std::fs::create_dir_all(&z).map_err(|e| format!("cannot create {}: {e}", z.display()))?;
            put(&z.join("name"), &format!("{name}\n")).map_err(|e| e.to_string())?;
            put(&z.join("max_energy_range_uj"), &format!("{MAX_ENERGY_RANGE_UJ}\n"))
                .map_err(|e| e.to_string())?;
            put(&z.join("energy_uj"), "1000000\n").map_err(|e| e.to_string())?;
            files.push((z.join("energy_uj"), watts));
        }
        // energy = 1 J + watts × elapsed, from monotonic time: exact whatever the thread's delays.
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let t0 = Instant::now();
        let writer = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let s = t0.elapsed().as_secs_f64();
                for (path, watts) in &files {
                    let uj = (1e6 + watts * s * 1e6) as u64 % MAX_ENERGY_RANGE_UJ;
                    let _ = put(path, &format!("{uj}\n"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let port = testkit::port::reserve().map_err(|e| format!("no free port: {e}"))?;
        let addr = port.loopback();
        let log = std::fs::File::create(logs.join("fake-rapl-exporter.log")).map_err(|e| e.to_string())?;
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg(format!("--path.sysfs={}", root.display()))
            .args(["--collector.disable-defaults", "--collector.rapl"])
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let group = procgroup::spawn(&mut cmd).map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut fake = FakeRapl { group, addr, stop, writer: Some(writer), _port: port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = tokio::task::spawn_blocking(move || Reach::default().get(addr, "/metrics")).await;
            if matches!(got, Ok(Ok(ref r)) if r.body.contains("node_rapl_package_joules_total")) {
                return Ok(fake);
            }
            if Instant::now() > deadline {
                let _ = fake.stop().await;
                return Err("the fake-RAPL node exporter did not serve node_rapl_* within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the exporter and the writer.
    ///
    /// # Errors
    /// The exporter could not be stopped.
    pub async fn stop(&mut self) -> Result<(), String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        self.group
            .stop(Duration::from_secs(5))
            .await
            .map(|_| ())
            .map_err(|e| format!("fake-RAPL exporter: {e}"))
    }
}
