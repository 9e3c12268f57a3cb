//! What the bench reads from `/proc`: a process's CPU times, state, parent and start time,
//! its memory (`status` VmRSS/VmHWM, `smaps_rollup` Pss), the machine's busy time
//! (`/proc/stat`), and the CPU of a whole process tree.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The fields of `/proc/PID/stat` the bench uses.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    /// `Z` for a zombie (exited, not yet reaped).
    pub state: char,
    pub ppid: u32,
    /// utime + stime, in clock ticks.
    pub cpu: u64,
    /// cutime + cstime (reaped children), in clock ticks.
    pub children_cpu: u64,
    /// Start time after boot, in clock ticks.
    pub start: u64,
}

/// `/proc/PID/stat`, zombies included.
pub fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.get(text.rfind(')')? + 2..)?;
    let mut words = rest.split_whitespace();
    let state = words.next()?.chars().next()?;
    // After the state: ppid(0) … utime(10) stime(11) cutime(12) cstime(13) … starttime(18).
    let f: Vec<u64> = words.take(19).map(|w| w.parse().unwrap_or(0)).collect();
    Some(Stat {
        state,
        ppid: u32::try_from(*f.first()?).ok()?,
        cpu: f.get(10)? + f.get(11)?,
        children_cpu: f.get(12)? + f.get(13)?,
        start: *f.get(18)?,
    })
}

/// A live (not zombie) process's stat.
pub fn live(pid: u32) -> Option<Stat> {
    stat(pid).filter(|s| s.state != 'Z')
}

/// Clock ticks per second (`USER_HZ`).
pub fn hz() -> u64 {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok().filter(|h| *h > 0).unwrap_or(100)
}

pub fn ticks_to_ns(ticks: u64) -> u64 {
    ticks * 1_000_000_000 / hz()
}

/// Online cores.
pub fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
}

/// A process by pid and start time, so a recycled pid is not taken for the same viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Proc {
    pub pid: u32,
    pub start: u64,
}

impl Proc {
    /// Its stat, if this very process still exists (zombie or not).
    pub fn stat(self) -> Option<Stat> {
        stat(self.pid).filter(|s| s.start == self.start)
    }
}

/// True if `pid` has exec'd a command with `-i url` (a viewer, not the swarm's FFmpeg option
/// probe or preflight test, and not a child between fork and exec).
pub fn reads(pid: u32, url: &str) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    args.windows(2).any(|w| w[0] == b"-i" && w[1] == url.as_bytes())
}

/// Every process's stat, by pid.
pub fn all() -> HashMap<u32, Stat> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if let Some(s) = stat(pid) {
            out.insert(pid, s);
        }
    }
    out
}

/// Live children of `parent` with their utime + stime in nanoseconds.
pub fn children(parent: u32) -> BTreeMap<Proc, u64> {
    all()
        .into_iter()
        .filter(|(_, s)| s.ppid == parent && s.state != 'Z')
        .map(|(pid, s)| (Proc { pid, start: s.start }, ticks_to_ns(s.cpu)))
        .collect()
}

/// Children of `parent` not yet reaped (zombies included).
pub fn unreaped_children(parent: u32) -> BTreeSet<Proc> {
    all().into_iter().filter(|(_, s)| s.ppid == parent).map(|(pid, s)| Proc { pid, start: s.start }).collect()
}

/// CPU of `root` and every descendant, reaped ones included (their time moves into their
/// parent's cutime/cstime when reaped, so the sum is conserved), in nanoseconds.
pub fn tree_ns(root: u32) -> u64 {
    let procs = all();
    let mut kids: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, s) in &procs {
        kids.entry(s.ppid).or_default().push(*pid);
    }
    let mut total = 0;
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        if let Some(s) = procs.get(&pid) {
            total += s.cpu + s.children_cpu;
        }
        todo.extend(kids.get(&pid).into_iter().flatten().copied());
    }
    ticks_to_ns(total)
}

/// The `kB` value of `key` in a `/proc/PID/<file>` (e.g. `status` `VmRSS`, `smaps_rollup` `Pss`).
pub fn kib(pid: u32, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    let line = text.lines().find(|l| l.split(':').next() == Some(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The mean PSS of `procs` now, in KiB.
pub fn mean_pss_kib<'a>(procs: impl Iterator<Item = &'a Proc>) -> Option<u64> {
    let pss: Vec<u64> = procs.filter_map(|p| kib(p.pid, "smaps_rollup", "Pss")).collect();
    (!pss.is_empty()).then(|| pss.iter().sum::<u64>() / pss.len() as u64)
}

/// The machine's CPU time from the first line of `/proc/stat`, in clock ticks summed over
/// all cores.
#[derive(Debug, Clone, Copy)]
pub struct MachineCpu {
    /// user + nice + system + irq + softirq + steal (guest time is already inside user).
    pub busy: u64,
    /// busy + idle + iowait.
    pub total: u64,
}

impl MachineCpu {
    pub fn read() -> Option<MachineCpu> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let line = text.lines().find(|l| l.starts_with("cpu "))?;
        let f: Vec<u64> = line.split_whitespace().skip(1).map(|w| w.parse().unwrap_or(0)).collect();
        let get = |i: usize| f.get(i).copied().unwrap_or(0);
        let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
        Some(MachineCpu { busy, total: busy + get(3) + get(4) })
    }

    /// Busy share of the whole machine (all cores) since `earlier`, in %.
    pub fn busy_pct_since(self, earlier: MachineCpu) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        self.busy.saturating_sub(earlier.busy) as f64 / total as f64 * 100.0
    }

    /// Busy CPU since `earlier`, in nanoseconds (summed over cores).
    pub fn busy_ns_since(self, earlier: MachineCpu) -> u64 {
        ticks_to_ns(self.busy.saturating_sub(earlier.busy))
    }
}

/// Achieved rate from start instants (seconds, any origin): the inverse of the least-squares
/// slope of the i-th start against i, so drift shows and one late start does not dominate.
pub fn rate_from_starts(starts: &[f64]) -> Option<f64> {
    if starts.len() < 3 {
        return None;
    }
    let n = starts.len() as f64;
    let mean_i = (n - 1.0) / 2.0;
    let mean_t = starts.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, t) in starts.iter().enumerate() {
        let di = i as f64 - mean_i;
        num += di * (t - mean_t);
        den += di * di;
    }
    let slope = num / den;
    (slope > 0.0).then(|| 1.0 / slope)
}
