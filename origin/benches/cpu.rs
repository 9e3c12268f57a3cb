//! Origin CPU per profile, live encode versus replay, on this machine.
//!
//! `cargo bench -p hls-origin --bench cpu -- [--seconds N] [--height H] [--sysfs DIR] [PROFILE...]`
//!
//! For each profile and source: start the origin (no exporters), note how long it took to be
//! ready, then measure CPU time of ffmpeg, nginx and this process (which runs the replay
//! publisher) over N seconds from `/proc/PID/stat`. Prints a table in % of one core.
//! Where the machine has RAPL (`/sys/class/powercap/intel-rapl:N`, readable: kernels since
//! 5.10 let only root read it), the table adds the host's energy over the same N seconds: the
//! `package` and `dram` domains (disjoint; `core`, `uncore`, `psys` and the `intel-rapl-mmio`
//! duplicates are not added), a wrap handled with the zone's `max_energy_range_uj`. It is the
//! whole machine's, idle included. Without RAPL the columns say `n/a` and a line says why.
//! `--sysfs DIR` reads `DIR/class/powercap` instead of /sys (a made-up tree, for trying it).
//! Replay runs use a fresh loop cache, so the first start shows what encoding the loop costs
//! ("loop s"), and the measured second start shows replay's start-up from the cache.
//! Under `cargo test --all-targets` (no `--bench` argument) it only prints how to run it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use origin::{Config, Overrides, Profile, Source};

/// utime + stime of `pid` in nanoseconds (from clock ticks; `/proc/PID/schedstat` reads 0
/// on kernels without scheduler statistics).
fn cpu_ns(pid: u32) -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok().filter(|h| *h > 0)?;
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state(0) ... utime(11) stime(12).
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 1_000_000_000 / hz)
}

fn sample(origin: &origin::Origin) -> BTreeMap<String, u64> {
    let mut m: BTreeMap<String, u64> =
        origin.pids().into_iter().filter_map(|(name, pid)| cpu_ns(pid).map(|ns| (name, ns))).collect();
    m.insert("hls-origin".into(), cpu_ns(std::process::id()).unwrap_or(0));
    m
}

/// One RAPL zone's counter: its `energy_uj` and `max_energy_range_uj`.
type Rapl = BTreeMap<std::path::PathBuf, (u64, u64)>;

/// The `package` and `dram` zones under `sysfs/class/powercap`, or why there are none.
fn rapl(sysfs: &std::path::Path) -> Result<Rapl, String> {
    let dir = sysfs.join("class/powercap");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("no RAPL: {} ({e})", dir.display()))?;
    let mut zones = Rapl::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("intel-rapl:") {
            continue; // intel-rapl-mmio:N repeats a package
        }
        let p = entry.path();
        let zone = std::fs::read_to_string(p.join("name")).unwrap_or_default();
        let zone = zone.trim();
        if !(zone.starts_with("package") || zone == "dram") {
            continue;
        }
        let read = |f: &str| -> Result<u64, String> {
            let text = std::fs::read_to_string(p.join(f)).map_err(|e| match e.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    format!(
                        "RAPL not readable: {} (kernels since 5.10 let only root read it)",
                        p.join(f).display()
                    )
                }
                _ => format!("{}: {e}", p.join(f).display()),
            })?;
            text.trim().parse().map_err(|e| format!("{}: {e}", p.join(f).display()))
        };
        zones.insert(p.clone(), (read("energy_uj")?, read("max_energy_range_uj")?));
    }
    if zones.is_empty() {
        return Err(format!("no RAPL: no package or dram zone in {}", dir.display()));
    }
    Ok(zones)
}

/// Joules between two readings of the same zones (a counter that went down wrapped once).
fn joules(before: &Rapl, after: &Rapl) -> f64 {
    let uj: u64 = after
        .iter()
        .filter_map(|(p, (e, max))| before.get(p).map(|(b, _)| if e >= b { e - b } else { (max - b) + e }))
        .sum();
    uj as f64 / 1e6
}

struct Row {
    profile: String,
    source: Source,
    ready: Duration,
    loop_encode: Option<Duration>,
    percent: BTreeMap<String, f64>,
    /// The host's RAPL joules over the measured seconds, when readable.
    joules: Option<f64>,
    seconds: f64,
}

async fn measure(
    profile: &str,
    source: Source,
    seconds: u64,
    overrides: Overrides,
    cache: &std::path::Path,
    sysfs: &std::path::Path,
) -> anyhow::Result<Row> {
    let mut c = Config::new(profile)?;
    c.listen = "127.0.0.1:0".parse()?;
    c.node_exporter = None;
    c.nginx_exporter = None;
    c.source = source;
    c.overrides = overrides;
    c.ready_timeout = Duration::from_secs(600);
    c.cache_dir = cache.to_owned();
    let mut loop_encode = None;
    if source == Source::Replay {
        // First start encodes the loop into the (fresh) cache; the measured one reuses it.
        let t = Instant::now();
        origin::start(c.clone()).await.context("warm-up")?.stop().await?;
        loop_encode = Some(t.elapsed());
    }
    let started = Instant::now();
    let origin = origin::start(c).await.with_context(|| format!("{profile} {}", source.as_str()))?;
    let ready = started.elapsed();
    let t0 = Instant::now();
    let before = sample(&origin);
    let energy_before = rapl(sysfs).ok();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let after = sample(&origin);
    let energy_after = rapl(sysfs).ok();
    let wall = t0.elapsed().as_nanos() as f64;
    origin.stop().await?;
    let percent = after
        .iter()
        .filter_map(|(name, ns)| {
            before.get(name).map(|b| (name.clone(), (ns.saturating_sub(*b)) as f64 / wall * 100.0))
        })
        .collect();
    let joules = energy_before.zip(energy_after).map(|(b, a)| joules(&b, &a));
    Ok(Row { profile: profile.to_owned(), source, ready, loop_encode, percent, joules, seconds: wall / 1e9 })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("cpu: a benchmark; run it with `cargo bench -p hls-origin --bench cpu`");
        return Ok(());
    }
    let cache = tempfile::tempdir()?;
    let mut seconds = 15;
    let mut overrides = Overrides::default();
    let mut profiles = Vec::new();
    let mut sysfs = std::path::PathBuf::from("/sys");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => seconds = args.next().context("--seconds N")?.parse()?,
            "--height" => overrides.height = Some(args.next().context("--height H")?.parse()?),
            "--sysfs" => sysfs = args.next().context("--sysfs DIR")?.into(),
            "--bench" => {}
            name if !name.starts_with('-') => profiles.push(name.to_owned()),
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    if profiles.is_empty() {
        profiles = Profile::all().into_iter().map(|p| p.name).collect();
    }
    println!("origin CPU, % of one core, over {seconds} s after ready (no exporters)");
    match rapl(&sysfs) {
        Ok(zones) => println!(
            "host J, host W: the whole machine's RAPL energy over the same seconds ({} zones: package + dram)",
            zones.len()
        ),
        Err(why) => println!("host J, host W: unavailable ({why})"),
    }
    println!(
        "{:<12} {:<7} {:>7} {:>8} {:>8} {:>8} {:>11} {:>8} {:>9} {:>7}",
        "profile",
        "source",
        "loop s",
        "ready s",
        "ffmpeg",
        "nginx",
        "hls-origin",
        "total",
        "host J",
        "host W"
    );
    for profile in &profiles {
        // An LL-HLS profile serves only its loop (replay).
        let ll = Profile::named(profile).is_ok_and(|p| p.part_ms.is_some());
        let sources: &[Source] = if ll { &[Source::Replay] } else { &[Source::Encode, Source::Replay] };
        for &source in sources {
            match measure(profile, source, seconds, overrides, cache.path(), &sysfs).await {
                Ok(r) => {
                    let get = |k: &str| r.percent.get(k).copied().unwrap_or(0.0);
                    let total: f64 = r.percent.values().sum();
                    let na = || "n/a".to_owned();
                    println!(
                        "{:<12} {:<7} {:>7} {:>8.1} {:>8.1} {:>8.1} {:>11.2} {:>8.1} {:>9} {:>7}",
                        r.profile,
                        r.source.as_str(),
                        r.loop_encode.map_or("-".to_owned(), |d| format!("{:.1}", d.as_secs_f64())),
                        r.ready.as_secs_f64(),
                        get("ffmpeg"),
                        get("nginx"),
                        get("hls-origin"),
                        total,
                        r.joules.map_or_else(na, |j| format!("{j:.1}")),
                        r.joules.map_or_else(na, |j| format!("{:.1}", j / r.seconds)),
                    );
                }
                Err(e) => println!("{profile:<12} {:<7} failed: {e:#}", source.as_str()),
            }
        }
    }
    Ok(())
}
