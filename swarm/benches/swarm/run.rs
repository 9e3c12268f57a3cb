//! One measured run: N viewers started at the ramp rate, either by `hls-swarm` (relay or log)
//! or by a minimal loop of bare FFmpeg processes (the floor), a settle time, a window measured
//! from `/proc`, then the stop: SIGINT to the swarm (or SIGTERM to each bare FFmpeg) and the
//! time until every child is reaped.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

use crate::proc::{self, MachineCpu, Proc};

/// How often the viewers' PSS is sampled in the window (it is a sawtooth over tens of seconds).
const PSS_EVERY: Duration = Duration::from_secs(5);
/// How often the stop is polled for children that are still there.
const REAP_POLL: Duration = Duration::from_millis(20);
/// Longest wait for every child after the stop signal.
const REAP_LIMIT: Duration = Duration::from_secs(30);

/// What every run shares.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub ramp_rate: f64,
    /// Start rate of native viewers (a start is a task: the machine is not the limit).
    pub native_ramp_rate: f64,
    /// How long every viewer streams before the window opens.
    pub settle: Duration,
    pub window: Duration,
}

/// One row of the table, as written to the JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub viewers: u32,
    /// `relay`, `log` or `floor` (bare FFmpeg).
    pub mode: &'static str,
    pub window_s: f64,
    /// The swarm process's own CPU (all its threads), % of one core.
    pub swarm_cpu_pct: Option<f64>,
    /// VmRSS at the window's end and VmHWM (peak) of the swarm process, KiB.
    pub swarm_rss_kib: Option<u64>,
    pub swarm_rss_peak_kib: Option<u64>,
    /// VmRSS when the window opened (all viewers running for the settle time), KiB: the
    /// difference to the end shows growth while nothing but streaming happens.
    pub swarm_rss_start_kib: Option<u64>,
    /// Open file descriptors of the swarm at the window's end (sockets, pipes, …).
    pub swarm_fds: Option<usize>,
    /// The FFmpeg viewers' CPU, % of one core (all of them together).
    pub viewers_cpu_pct: f64,
    /// Mean and highest of the viewers' mean PSS sampled in the window, KiB.
    pub viewer_pss_kib: u64,
    pub viewer_pss_max_kib: u64,
    pub viewers_at_end: usize,
    pub exited_in_window: usize,
    pub restarts: Option<u64>,
    /// Mean of the swarm's status lines in the window.
    pub segments_per_s: Option<f64>,
    pub ramp_target: f64,
    /// From the start times of the first N children in `/proc` (least-squares slope).
    pub ramp_achieved: Option<f64>,
    /// What the swarm's summary says.
    pub ramp_achieved_swarm: Option<f64>,
    /// From the stop signal until no child was left unreaped, seconds.
    pub reap_s: Option<f64>,
    /// What the swarm's summary says ("all viewers reaped X s after the stop").
    pub reap_swarm_says_s: Option<f64>,
    /// Children still there (or left as orphans) when the bench gave up waiting.
    pub left_unreaped: usize,
    /// The machine's busy share in the window, % of all cores.
    pub machine_busy_pct: f64,
    /// CPU used in the window by processes outside this bench's tree, % of one core.
    pub others_cpu_pct: f64,
    /// The origin's processes (nginx and its workers) in the window, % of one core.
    pub origin_cpu_pct: Option<f64>,
    /// Per viewer per minute in the window, from the swarm's status lines: playlist loads,
    /// segments, bytes.
    pub playlists_per_viewer_min: Option<f64>,
    pub segments_per_viewer_min: Option<f64>,
    pub bytes_per_viewer_min: Option<f64>,
    /// LL-HLS rows: requests the origin held open (blocking reloads and preload-hinted parts),
    /// the median of its samples while loaded.
    pub held_requests: Option<f64>,
}

/// The origin's process ids (set once by `main`): their trees' CPU is the origin's.
pub static ORIGIN_PIDS: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();

fn origin_ns() -> Option<u64> {
    let pids = ORIGIN_PIDS.get()?;
    Some(pids.iter().map(|p| proc::tree_ns(*p)).sum())
}

/// The fleet being measured: the swarm's children, or bare FFmpeg processes of ours.
enum Fleet<'a> {
    Swarm(u32),
    Floor(&'a [Proc]),
}

struct Sample {
    at: Instant,
    /// The swarm's own CPU and its reaped children's, ns.
    swarm: Option<(u64, u64)>,
    viewers: BTreeMap<Proc, u64>,
    machine: Option<MachineCpu>,
    tree_ns: u64,
    origin_ns: Option<u64>,
}

impl Fleet<'_> {
    fn sample(&self) -> anyhow::Result<Sample> {
        let (swarm, viewers) = match self {
            Fleet::Swarm(pid) => {
                let s = proc::live(*pid).context("hls-swarm exited during the window")?;
                let both = (proc::ticks_to_ns(s.cpu), proc::ticks_to_ns(s.children_cpu));
                (Some(both), proc::children(*pid))
            }
            Fleet::Floor(procs) => {
                let live = procs
                    .iter()
                    .filter_map(|p| {
                        p.stat().filter(|s| s.state != 'Z').map(|s| (*p, proc::ticks_to_ns(s.cpu)))
                    })
                    .collect();
                (None, live)
            }
        };
        Ok(Sample {
            at: Instant::now(),
            swarm,
            viewers,
            machine: MachineCpu::read(),
            tree_ns: proc::tree_ns(std::process::id()),
            origin_ns: origin_ns(),
        })
    }
}

impl Sample {
    /// Every viewer's CPU so far: the live ones and the ones the swarm has reaped.
    fn viewers_ns(&self) -> u64 {
        self.viewers.values().sum::<u64>() + self.swarm.map_or(0, |s| s.1)
    }
}

/// What one window measured (the part of a [`Row`] both kinds of run share).
struct Window {
    wall: Duration,
    swarm_ns: Option<u64>,
    viewers_ns: u64,
    viewers_at_end: usize,
    exited_in_window: usize,
    rss_kib: Option<(u64, u64)>,
    rss_start_kib: Option<u64>,
    fds: Option<usize>,
    pss_kib: (u64, u64),
    busy_pct: f64,
    others_pct: f64,
    origin_pct: Option<f64>,
    start: Instant,
    end: Instant,
}

/// Lets the viewers stream for the settle time, then measures the window.
async fn observe(fleet: Fleet<'_>, plan: Plan) -> anyhow::Result<Window> {
    tokio::time::sleep(plan.settle).await;
    let rss_start_kib = match fleet {
        Fleet::Swarm(pid) => proc::kib(pid, "status", "VmRSS"),
        Fleet::Floor(_) => None,
    };
    let before = fleet.sample()?;
    let end = before.at + plan.window;
    let mut pss = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(left.min(PSS_EVERY)).await;
        if Instant::now() < end {
            let now = fleet.sample()?;
            pss.extend(proc::mean_pss_kib(now.viewers.keys()));
        }
    }
    let after = fleet.sample()?;
    pss.extend(proc::mean_pss_kib(after.viewers.keys()));
    let rss_kib = match fleet {
        Fleet::Swarm(pid) => Some((
            proc::kib(pid, "status", "VmRSS").context("hls-swarm VmRSS")?,
            proc::kib(pid, "status", "VmHWM").context("hls-swarm VmHWM")?,
        )),
        Fleet::Floor(_) => None,
    };
    let fds = match fleet {
        Fleet::Swarm(pid) => std::fs::read_dir(format!("/proc/{pid}/fd")).ok().map(Iterator::count),
        Fleet::Floor(_) => None,
    };
    let wall = after.at.duration_since(before.at);
    let (busy_pct, machine_ns) = match (before.machine, after.machine) {
        (Some(a), Some(b)) => (b.busy_pct_since(a), b.busy_ns_since(a)),
        _ => (0.0, 0),
    };
    let ours = after.tree_ns.saturating_sub(before.tree_ns);
    Ok(Window {
        wall,
        swarm_ns: before.swarm.zip(after.swarm).map(|(a, b)| b.0.saturating_sub(a.0)),
        viewers_ns: after.viewers_ns().saturating_sub(before.viewers_ns()),
        viewers_at_end: after.viewers.len(),
        exited_in_window: before.viewers.keys().filter(|p| !after.viewers.contains_key(p)).count(),
        rss_kib,
        rss_start_kib,
        fds,
        pss_kib: (pss.iter().sum::<u64>() / pss.len().max(1) as u64, pss.iter().copied().max().unwrap_or(0)),
        busy_pct,
        others_pct: machine_ns.saturating_sub(ours) as f64 / wall.as_nanos() as f64 * 100.0,
        origin_pct: before.origin_ns.zip(after.origin_ns).map(|(a, b)| pct(b.saturating_sub(a), wall)),
        start: before.at,
        end: after.at,
    })
}

fn pct(ns: u64, wall: Duration) -> f64 {
    ns as f64 / wall.as_nanos() as f64 * 100.0
}

/// The achieved rate of the first `n` of `started` (by start time).
fn ramp_of(started: &BTreeSet<Proc>, n: u32) -> Option<f64> {
    let mut starts: Vec<u64> = started.iter().map(|p| p.start).collect();
    starts.sort_unstable();
    starts.truncate(n as usize);
    let hz = proc::hz() as f64;
    proc::rate_from_starts(&starts.iter().map(|t| *t as f64 / hz).collect::<Vec<_>>())
}

/// Polls until none of `tracked` is left unreaped and `parent` has no unreaped child.
/// Returns the seconds it took (`None` past [`REAP_LIMIT`]) and how many were left, including
/// children that became orphans (zombies of another parent) instead of being reaped.
///
/// Each poll reads only the stat files of the processes still there (a full `/proc` scan
/// costs milliseconds, which the stopping swarm would compete with); one full scan at the end
/// catches a child started during the stop (a restart racing the signal), which is then
/// waited for too.
async fn until_reaped(parent: u32, tracked: &BTreeSet<Proc>, since: Instant) -> (Option<f64>, usize) {
    let mut left: Vec<Proc> = tracked.iter().copied().collect();
    let mut orphans = BTreeSet::new();
    loop {
        left.retain(|p| match p.stat() {
            Some(s) if s.state == 'Z' && s.ppid != parent => {
                orphans.insert(*p);
                false
            }
            Some(_) => true,
            None => false,
        });
        if left.is_empty() {
            left.extend(proc::unreaped_children(parent));
            if left.is_empty() {
                return (Some(since.elapsed().as_secs_f64()), orphans.len());
            }
        }
        if since.elapsed() > REAP_LIMIT {
            return (None, left.len() + orphans.len());
        }
        tokio::time::sleep(REAP_POLL).await;
    }
}

/// The number before `label` in the summary line starting with `line_start`.
fn summary_number(stdout: &str, line_start: &str, label: &str) -> Option<f64> {
    let words = summary_words(stdout, line_start)?;
    let i = words.iter().position(|w| *w == label)?;
    words.get(i.checked_sub(1)?)?.parse().ok()
}

/// The number after `label` in the summary line starting with `line_start` (`4.98/s,` → 4.98).
fn summary_number_after(stdout: &str, line_start: &str, label: &str) -> Option<f64> {
    let words = summary_words(stdout, line_start)?;
    let i = words.iter().position(|w| *w == label)?;
    words.get(i + 1)?.trim_end_matches([',', ';']).trim_end_matches("/s").parse().ok()
}

fn summary_words<'a>(stdout: &'a str, line_start: &str) -> Option<Vec<&'a str>> {
    Some(stdout.lines().find(|l| l.starts_with(line_start))?.split_whitespace().collect())
}

/// `seg/s X` from a status line (`[12s] streaming 20/20 … seg/s 10.0 …`).
fn status_seg_rate(line: &str) -> Option<f64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "seg/s")?;
    words.get(i + 1)?.parse().ok()
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// `hls-swarm --measure MODE` with `n` viewers: ramp, settle, window, SIGINT, reap.
pub async fn swarm(bin: &str, url: &str, n: u32, mode: &'static str, plan: Plan) -> anyhow::Result<Row> {
    let native = matches!(mode, "native" | "ll-hls");
    let rate = if native { plan.native_ramp_rate } else { plan.ramp_rate };
    let ramp = Duration::from_secs_f64(f64::from(n) / rate);
    // Never reached: the bench stops the run with SIGINT once the window is over.
    let duration = ramp + plan.settle + plan.window + Duration::from_secs(300);
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(["--clients", &n.to_string(), "--ramp-rate", &rate.to_string()]).args([
        "--duration",
        &format!("{}s", duration.as_secs()),
        "--metrics",
        "off",
        "--tui=false",
    ]);
    if native {
        cmd.args(["--engine", "native", url]);
    } else {
        cmd.args(["--measure", mode, url]);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut swarm = procgroup::spawn(&mut cmd).with_context(|| format!("starting {bin}"))?;
    let pid = swarm.pid();
    let stdout = swarm.child_mut().stdout.take().context("stdout pipe")?;
    let mut stderr = swarm.child_mut().stderr.take().context("stderr pipe")?;
    // Lines with the instant they arrived, to pick the status lines inside the window.
    let out_task = tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let mut got = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            got.push((Instant::now(), line));
        }
        got
    });
    let err_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });

    let measured = async {
        // Viewers seen, by pid and start time (the swarm's FFmpeg probe and preflight test
        // are children too, and a child between fork and exec still shows our command).
        let mut started = BTreeSet::new();
        let limit = ramp + Duration::from_secs(60);
        let deadline = Instant::now() + limit;
        if native {
            // Tasks, not processes: the schedule is the ramp (the summary says how it went).
            let until = Instant::now() + ramp + Duration::from_secs(1);
            while Instant::now() < until {
                anyhow::ensure!(proc::live(pid).is_some(), "hls-swarm exited before {n} viewers ran");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        } else {
            loop {
                anyhow::ensure!(proc::live(pid).is_some(), "hls-swarm exited before {n} viewers ran");
                let mut now = 0;
                for p in proc::children(pid).into_keys() {
                    if started.contains(&p) || proc::reads(p.pid, url) {
                        started.insert(p);
                        now += 1;
                    }
                }
                if now >= n as usize {
                    break;
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "only {now} of {n} viewers running after {limit:?}"
                );
                // Start times come from /proc, so the poll only needs to see every viewer once;
                // a slower poll costs the machine less while the swarm is starting FFmpeg.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let w = observe(Fleet::Swarm(pid), plan).await?;
        let tracked = proc::unreaped_children(pid);
        let stop = Instant::now();
        kill(Pid::from_raw(i32::try_from(pid)?), Signal::SIGINT)?;
        let reap = until_reaped(pid, &tracked, stop).await;
        Ok((w, ramp_of(&started, n), reap))
    }
    .await;
    let ended = match &measured {
        Ok(_) => tokio::time::timeout(REAP_LIMIT, swarm.wait()).await.ok(),
        Err(_) => None,
    };
    let status = match ended {
        Some(status) => procgroup::Exit::from(status?),
        None => swarm.stop(Duration::from_secs(10)).await?,
    };
    let lines = out_task.await?;
    let stderr = err_task.await?;
    let (w, ramp_achieved, (reap_s, left_unreaped)) = measured
        .with_context(|| format!("{n} viewers, {mode}; hls-swarm {status}, stderr:\n{}", tail(&stderr)))?;
    anyhow::ensure!(status.success(), "{n} viewers, {mode}: hls-swarm {status}, stderr:\n{}", tail(&stderr));
    let stdout: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    let in_window: Vec<&str> = lines
        .iter()
        .filter(|(at, l)| l.starts_with('[') && *at >= w.start && *at <= w.end)
        .map(|(_, l)| l.as_str())
        .collect();
    let mean = |word: &str, scale: f64| {
        let v: Vec<f64> = in_window.iter().filter_map(|l| status_value(l, word)).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64 * scale)
    };
    let rates: Vec<f64> = in_window.iter().filter_map(|l| status_seg_rate(l)).collect();
    let per_viewer_min = 60.0 / f64::from(n);
    Ok(Row {
        viewers: n,
        mode,
        window_s: w.wall.as_secs_f64(),
        swarm_cpu_pct: w.swarm_ns.map(|ns| pct(ns, w.wall)),
        swarm_rss_kib: w.rss_kib.map(|r| r.0),
        swarm_rss_peak_kib: w.rss_kib.map(|r| r.1),
        swarm_rss_start_kib: w.rss_start_kib,
        swarm_fds: w.fds,
        viewers_cpu_pct: pct(w.viewers_ns, w.wall),
        viewer_pss_kib: w.pss_kib.0,
        viewer_pss_max_kib: w.pss_kib.1,
        viewers_at_end: w.viewers_at_end,
        exited_in_window: w.exited_in_window,
        restarts: summary_number(&stdout, "Lifecycle", "restarts").map(|r| r as u64),
        segments_per_s: (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64),
        ramp_target: plan.ramp_rate,
        ramp_achieved,
        ramp_achieved_swarm: summary_number_after(&stdout, "Ramp", "achieved"),
        reap_s,
        reap_swarm_says_s: summary_number_after(&stdout, "Run time", "reaped"),
        left_unreaped,
        machine_busy_pct: w.busy_pct,
        others_cpu_pct: w.others_pct,
        origin_cpu_pct: w.origin_pct,
        playlists_per_viewer_min: mean("playlists/s", per_viewer_min),
        segments_per_viewer_min: mean("seg/s", per_viewer_min),
        bytes_per_viewer_min: {
            let v: Vec<f64> = in_window.iter().filter_map(|l| status_bytes(l)).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64 * per_viewer_min)
        },
        held_requests: None,
    })
}

/// The throughput of a status line in bytes per second (`thr 2.3 MiB/s`; one decimal).
fn status_bytes(line: &str) -> Option<f64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "thr")?;
    let v: f64 = words.get(i + 1)?.parse().ok()?;
    let scale = match *words.get(i + 2)? {
        "B/s" => 1.0,
        "KiB/s" => 1024.0,
        "MiB/s" => 1024.0 * 1024.0,
        "GiB/s" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(v * scale)
}

/// The number after `word` in a status line (`playlists/s 10.0` → 10.0).
fn status_value(line: &str, word: &str) -> Option<f64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == word)?;
    words.get(i + 1)?.parse().ok()
}

/// The viewers' FFmpeg command as `hls-swarm --print-cmd --measure log URL` prints it (the
/// swarm's viewers in log mode run exactly this; with the relay they add `-http_proxy` and log
/// warnings only).
pub async fn viewer_argv(bin: &str, url: &str) -> anyhow::Result<Vec<String>> {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(["--print-cmd", "--measure", "log", url]).stdin(Stdio::null()).stdout(Stdio::piped());
    let mut child = procgroup::spawn(&mut cmd).context("hls-swarm --print-cmd")?;
    let mut text = String::new();
    child.child_mut().stdout.take().context("stdout pipe")?.read_to_string(&mut text).await?;
    let status = procgroup::Exit::from(child.wait().await?);
    anyhow::ensure!(status.success(), "hls-swarm --print-cmd: {status}");
    let line =
        text.lines().rfind(|l| !l.starts_with('#') && !l.trim().is_empty()).context("no command printed")?;
    shell_words(line)
}

/// Splits a line quoted by the swarm's `shell_quote`: plain words and `'…'` (with `'\''`).
fn shell_words(line: &str) -> anyhow::Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    w.push(q);
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            '$' => anyhow::bail!("the viewer command has $'…' quoting (headers?); not supported here"),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// The floor: `n` bare FFmpeg processes (the viewers' argv, user agent numbered per viewer),
/// each in its own process group at nice 19 like the swarm's, started at the ramp rate by a
/// plain loop; measured like the swarm's viewers; stopped like the swarm stops them (SIGTERM,
/// a second one after 1 s, SIGKILL at 3 s), reaped by pid.
pub async fn floor(argv: &[String], n: u32, plan: Plan) -> anyhow::Result<Row> {
    let (program, args) = argv.split_first().context("empty viewer command")?;
    let mut groups = Vec::new();
    let mut procs = Vec::new();
    let t0 = tokio::time::Instant::now();
    let started = async {
        for i in 0..n {
            tokio::time::sleep_until(t0 + Duration::from_secs_f64(f64::from(i) / plan.ramp_rate)).await;
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(args.iter().map(|a| a.replace("viewer/0", &format!("viewer/{i}"))))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let g = procgroup::spawn(&mut cmd).with_context(|| format!("starting {program}"))?;
            g.lower_priority(19)?;
            let start = proc::stat(g.pid()).context("a bare ffmpeg vanished at once")?.start;
            procs.push(Proc { pid: g.pid(), start });
            groups.push(g);
        }
        anyhow::Ok(())
    }
    .await;
    let measured = match started {
        Ok(()) => observe(Fleet::Floor(&procs), plan).await,
        Err(e) => Err(e),
    };
    let stop = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for mut g in groups {
        set.spawn(async move {
            let _ = g.signal(Signal::SIGTERM);
            if tokio::time::timeout(Duration::from_secs(1), g.wait()).await.is_err() {
                let _ = g.signal(Signal::SIGTERM);
                if tokio::time::timeout(Duration::from_secs(2), g.wait()).await.is_err() {
                    let _ = g.signal(Signal::SIGKILL);
                    let _ = g.wait().await;
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    let reap_s = Some(stop.elapsed().as_secs_f64());
    let left_unreaped = procs.iter().filter(|p| p.stat().is_some()).count();
    let w = measured?;
    let ramp_achieved = ramp_of(&procs.iter().copied().collect(), n);
    Ok(Row {
        viewers: n,
        mode: "floor",
        window_s: w.wall.as_secs_f64(),
        swarm_cpu_pct: None,
        swarm_rss_kib: None,
        swarm_rss_peak_kib: None,
        swarm_rss_start_kib: None,
        swarm_fds: None,
        viewers_cpu_pct: pct(w.viewers_ns, w.wall),
        viewer_pss_kib: w.pss_kib.0,
        viewer_pss_max_kib: w.pss_kib.1,
        viewers_at_end: w.viewers_at_end,
        exited_in_window: w.exited_in_window,
        restarts: None,
        segments_per_s: None,
        ramp_target: plan.ramp_rate,
        ramp_achieved,
        ramp_achieved_swarm: None,
        reap_s,
        reap_swarm_says_s: None,
        left_unreaped,
        machine_busy_pct: w.busy_pct,
        others_cpu_pct: w.others_pct,
        origin_cpu_pct: w.origin_pct,
        playlists_per_viewer_min: None,
        segments_per_viewer_min: None,
        bytes_per_viewer_min: None,
        held_requests: None,
    })
}
