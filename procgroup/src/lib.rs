//! Child processes that cannot outlive the program that started them.
//!
//! # Theory of operation
//!
//! Both the swarm (one FFmpeg per viewer) and the origin (encoder, nginx, exporters) run
//! long-lived children. Every one of them goes through [`spawn`], which:
//!
//! 1. puts the child in a process group of its own (`setpgid(0, 0)`), so a terminal's Ctrl+C
//!    reaches only us and we decide how children stop, and so one signal reaches everything the
//!    child may have forked;
//! 2. sets `PR_SET_PDEATHSIG(SIGKILL)` in the child before `exec`, so that if we die without
//!    cleaning up (even by SIGKILL) the kernel kills the child for us. The parent-death signal
//!    fires when the *thread* that forked the child exits: spawn only from long-lived threads
//!    (tokio worker threads, never `spawn_blocking`).
//!
//! Stopping is [`Group::stop`]: SIGTERM to the whole group, a grace period raced against
//! `wait()`, then SIGKILL to the group, and always a final `wait()` so nothing is left a zombie.
//! Dropping a [`Group`] that was never reaped sends SIGKILL to its group as a backstop; tokio
//! then reaps it in the background.
//!
//! [`Backoff`] is the shared restart policy: exponential growth with random jitter, reset after
//! a child has run long enough to count as healthy.

pub mod listen;

use std::fmt;
use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use rand::Rng;
use tokio::process::{Child, Command};

/// A running child that leads its own process group.
#[derive(Debug)]
pub struct Group {
    child: Child,
    pid: u32,
    forked_at: std::time::Instant,
    reaped: Option<ExitStatus>,
}

/// Starts `cmd` as the leader of a new process group with a parent-death signal.
///
/// # Errors
/// Whatever `fork`/`exec` report, e.g. [`io::ErrorKind::NotFound`] for a missing binary.
pub fn spawn(cmd: &mut Command) -> io::Result<Group> {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    cmd.process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only calls
    // async-signal-safe functions (prctl, getppid) and builds an io::Error from errno.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() != parent {
                return Err(io::Error::other("parent exited before the child started"));
            }
            Ok(())
        });
    }
    let forked_at = std::time::Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id().ok_or_else(|| io::Error::other("spawned child has no pid"))?;
    Ok(Group { child, pid, forked_at, reaped: None })
}

impl Group {
    /// The leader's pid, which is also the process group id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// When the child was created: just before `fork`. `spawn` itself returns later, once the
    /// child has called `exec`, which on a busy machine can take tens of milliseconds.
    #[must_use]
    pub fn forked_at(&self) -> std::time::Instant {
        self.forked_at
    }

    /// Sets the leader's nice value to ours plus `increment` (a lower priority).
    ///
    /// Done by the parent right after spawning rather than in the child before `exec`: a child
    /// that lowers its priority before `exec` reaches `exec` late on a busy machine, and
    /// `spawn` waits for that `exec`.
    ///
    /// # Errors
    /// If the kernel refuses (e.g. the process is gone).
    pub fn lower_priority(&self, increment: i32) -> io::Result<()> {
        // SAFETY: getpriority/setpriority only read and write scheduler state of the named
        // processes; errno is cleared first because -1 is also a valid nice value.
        unsafe {
            *libc::__errno_location() = 0;
            let ours = libc::getpriority(libc::PRIO_PROCESS, 0);
            if ours == -1 && *libc::__errno_location() != 0 {
                return Err(io::Error::last_os_error());
            }
            let target = (ours + increment).clamp(-20, 19);
            if libc::setpriority(libc::PRIO_PROCESS, self.pid, target) == -1 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Mutable access to the child, e.g. to take its stdout or stderr pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for the leader to exit and reaps it. Cancel-safe.
    ///
    /// # Errors
    /// Only if `waitpid` itself fails.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.reaped {
            return Ok(status);
        }
        let status = self.child.wait().await?;
        self.reaped = Some(status);
        Ok(status)
    }

    /// Reaps the leader if it has exited, without blocking.
    ///
    /// # Errors
    /// Only if `waitpid` itself fails.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.reaped.is_none() {
            self.reaped = self.child.try_wait()?;
        }
        Ok(self.reaped)
    }

    /// Sends `signal` to every process in the group. A group that is already gone is not an error.
    ///
    /// # Errors
    /// If the kernel refuses for another reason than "no such process".
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        if self.reaped.is_some() {
            // The group id may belong to someone else by now: never signal after reaping.
            return Ok(());
        }
        let pgid = Pid::from_raw(i32::try_from(self.pid).map_err(io::Error::other)?);
        match killpg(pgid, signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(io::Error::from(e)),
        }
    }

    /// SIGTERM to the group, wait up to `grace`, then SIGKILL to the group; always reaps.
    ///
    /// # Errors
    /// Only if signalling or `waitpid` fails.
    pub async fn stop(&mut self, grace: Duration) -> io::Result<Exit> {
        if let Some(status) = self.try_wait()? {
            return Ok(Exit::from(status));
        }
        self.signal(Signal::SIGTERM)?;
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status?,
            Err(_elapsed) => {
                self.signal(Signal::SIGKILL)?;
                self.child.wait().await?
            }
        };
        self.reaped = Some(status);
        Ok(Exit::from(status))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            // Backstop for paths that forgot to stop: tokio reaps the child once it is gone.
            let _ = self.signal(Signal::SIGKILL);
        }
    }
}

/// Starts children from dedicated threads, so that async code never blocks in `fork`/`exec`.
///
/// `spawn` returns only once the child has called `exec`; on a saturated machine that takes
/// tens of milliseconds, and doing it on an async worker thread would delay every timer and
/// socket on that thread (the swarm's start schedule among them). The spawner's threads never
/// exit, which also keeps the parent-death signal tied to a thread that lives as long as the
/// process.
#[derive(Debug, Clone)]
pub struct Spawner {
    jobs: std::sync::mpsc::Sender<Job>,
}

struct Job {
    cmd: Command,
    reply: tokio::sync::oneshot::Sender<io::Result<Group>>,
}

impl Spawner {
    /// Starts `threads` spawning threads that register children with `runtime`.
    ///
    /// # Errors
    /// If a thread cannot be created.
    pub fn new(threads: usize, runtime: tokio::runtime::Handle) -> io::Result<Spawner> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = std::sync::Arc::clone(&rx);
            let runtime = runtime.clone();
            std::thread::Builder::new().name(format!("spawner-{i}")).spawn(move || {
                let _guard = runtime.enter();
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => break,
                    };
                    let Ok(mut job) = job else { break };
                    let _ = job.reply.send(spawn(&mut job.cmd));
                }
                // Never return: children started here are tied to this thread's life.
                loop {
                    std::thread::park();
                }
            })?;
        }
        Ok(Spawner { jobs: tx })
    }

    /// Starts `cmd` as [`spawn`] does, on a spawner thread.
    ///
    /// # Errors
    /// As [`spawn`].
    pub async fn spawn(&self, cmd: Command) -> io::Result<Group> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs.send(Job { cmd, reply }).map_err(|_| io::Error::other("spawner threads are gone"))?;
        answer.await.map_err(|_| io::Error::other("spawner thread dropped the job"))?
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Exit {
    /// Exited with this status code.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

impl Exit {
    /// The shell convention: the code, or 128 + the signal number.
    #[must_use]
    pub fn shell_code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }

    /// True for exit code 0.
    #[must_use]
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl From<ExitStatus> for Exit {
    fn from(status: ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(sig)) => Exit::Signal(sig),
            (None, None) => Exit::Code(-1),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Exit::Code(c) => write!(f, "exit {c}"),
            Exit::Signal(s) => {
                let name = Signal::try_from(s).map_or("?", Signal::as_str);
                write!(f, "signal {s} ({name})")
            }
        }
    }
}

/// Exponential restart delay with jitter.
///
/// `delay(n) = min(initial × multiplier^n, max)`, then spread uniformly by ±`jitter`/2 of
/// itself so that children that failed together do not retry together.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    multiplier: f64,
    jitter: f64,
    attempt: u32,
}

impl Default for Backoff {
    /// 250 ms, ×1.7 per attempt, capped at 5 s, ±20 % jitter.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(250), Duration::from_secs(5), 1.7, 0.4)
    }
}

impl Backoff {
    /// A policy; `multiplier` below 1 is treated as 1, `jitter` is clamped to 0..=1.
    #[must_use]
    pub fn new(initial: Duration, max: Duration, multiplier: f64, jitter: f64) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            multiplier: multiplier.max(1.0),
            jitter: jitter.clamp(0.0, 1.0),
            attempt: 0,
        }
    }

    /// The delay before the next attempt; each call advances the attempt count.
    pub fn next_delay<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Duration {
        let exp = i32::try_from(self.attempt).unwrap_or(i32::MAX);
        let nominal = (self.initial.as_secs_f64() * self.multiplier.powi(exp)).min(self.max.as_secs_f64());
        self.attempt = self.attempt.saturating_add(1);
        let spread = nominal * self.jitter;
        let jittered =
            if spread > 0.0 { nominal + rng.gen_range(-spread / 2.0..=spread / 2.0) } else { nominal };
        Duration::from_secs_f64(jittered.max(0.0))
    }

    /// Starts over from the initial delay (after a healthy run).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// How many delays have been handed out since the last reset.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn backoff_grows_caps_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500), 2.0, 0.0);
        let mut rng = StdRng::seed_from_u64(1);
        let got: Vec<u128> = (0..5).map(|_| b.next_delay(&mut rng).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay(&mut rng).as_millis(), 100);
    }

    #[test]
    fn backoff_jitter_spreads_delays_over_the_band_and_no_further() {
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<f64> = (0..1000)
            .map(|_| {
                let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1), 1.0, 0.4);
                b.next_delay(&mut rng).as_secs_f64()
            })
            .collect();
        assert!(delays.iter().all(|d| (0.8..=1.2).contains(d)), "{delays:?}");
        // Jitter that is not applied (or applied to one side only) fails here.
        let (min, max) = delays.iter().fold((f64::MAX, f64::MIN), |(lo, hi), d| (lo.min(*d), hi.max(*d)));
        assert!(min < 0.85 && max > 1.15, "delays only span {min}..{max} of 0.8..1.2");
    }

    /// Starts `bash -c script`, where the script starts a grandchild (`sleep 600 &`: it must
    /// outlive [`assert_gone`]'s wait) and prints its pid first; returns the group and the
    /// grandchild's pid.
    async fn spawn_with_grandchild(script: &str) -> (Group, i32) {
        use tokio::io::AsyncReadExt;
        let mut cmd = Command::new("bash");
        cmd.args(["-c", script]);
        cmd.stdout(std::process::Stdio::piped());
        let mut g = spawn(&mut cmd).unwrap();
        let mut out = g.child_mut().stdout.take().unwrap();
        let mut line = String::new();
        let mut buf = [0u8; 32];
        while !line.contains('\n') {
            let n = out.read(&mut buf).await.unwrap();
            assert!(n > 0, "no grandchild pid printed");
            line.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        (g, line.trim().parse().unwrap())
    }

    /// Waits up to 30 s for `pid` to be gone (or a zombie: re-parented, nobody of ours reaps it).
    async fn assert_gone(pid: i32) {
        let alive =
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while alive() {
            if std::time::Instant::now() >= deadline {
                // Do not leave it behind (it holds the test's stderr open).
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                panic!("process {pid} survived for 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn stop_terminates_the_whole_group_with_sigterm() {
        // Neither the shell nor its grandchild ignores SIGTERM. The grace is long, so no SIGKILL
        // is sent; the parent-death signal is not inherited across fork, and the group is reaped
        // (no Drop backstop): only a SIGTERM to the group can end the grandchild.
        let (mut g, grandchild) = spawn_with_grandchild("sleep 600 & echo $!; wait").await;
        let exit = g.stop(Duration::from_secs(60)).await.unwrap();
        assert_eq!(exit, Exit::Signal(libc::SIGTERM));
        assert_eq!(exit.shell_code(), 143);
        assert_gone(grandchild).await;
    }

    #[tokio::test]
    async fn stop_escalates_to_sigkill_and_reaches_grandchildren() {
        // A shell that ignores SIGTERM and has a grandchild in the same group.
        let (mut g, grandchild) = spawn_with_grandchild("trap '' TERM; sleep 600 & echo $!; wait").await;
        let started = std::time::Instant::now();
        let exit = g.stop(Duration::from_millis(300)).await.unwrap();
        assert_eq!(exit, Exit::Signal(libc::SIGKILL));
        assert!(started.elapsed() >= Duration::from_millis(300), "SIGKILL before the grace ended");
        // The grandchild got SIGKILL too; it is re-parented and reaped by init (or us).
        assert_gone(grandchild).await;
    }

    #[tokio::test]
    async fn child_leads_its_own_group() {
        let mut g = spawn(Command::new("sleep").arg("30")).unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", g.pid())).unwrap();
        // Fields after the command name: state ppid pgrp ...
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        assert_eq!(fields[2], g.pid().to_string(), "pgrp must equal the child's pid");
        g.stop(Duration::from_secs(1)).await.unwrap();
    }

    /// The parent-death signal fires when the thread that forked the child ends: start a child
    /// from a thread that then exits without stopping it, and the kernel kills the child.
    #[test]
    fn a_child_dies_with_the_thread_that_started_it() {
        let pid = std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let _entered = runtime.enter();
            let g = spawn(Command::new("sleep").arg("120")).unwrap();
            let pid = g.pid();
            // Neither stopped nor dropped: Drop's SIGKILL backstop must not be what kills it.
            std::mem::forget(g);
            pid
        })
        .join()
        .unwrap();
        let pid = Pid::from_raw(i32::try_from(pid).unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            match nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)).unwrap() {
                nix::sys::wait::WaitStatus::StillAlive => {
                    assert!(std::time::Instant::now() < deadline, "the child outlived its thread by 30 s");
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => break other,
            }
        };
        assert_eq!(status, nix::sys::wait::WaitStatus::Signaled(pid, Signal::SIGKILL, false));
    }

    /// The spawner forks on its own threads: while a child cannot reach `exec` (its pre-exec
    /// hook waits on a pipe only this test writes), the caller's one runtime thread keeps
    /// running. A blocking spawn would hold that thread until the watchdog opened the pipe.
    #[tokio::test(flavor = "current_thread")]
    async fn spawner_threads_start_children_without_blocking_the_caller() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        use std::sync::atomic::{AtomicBool, Ordering};
        let spawner = Spawner::new(2, tokio::runtime::Handle::current()).unwrap();
        let (gate, mut opener) = std::io::pipe().unwrap();
        let gate_fd = gate.as_raw_fd();
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        // SAFETY: runs in the forked child before exec; read(2) is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                let mut byte = 0u8;
                libc::read(gate_fd, std::ptr::addr_of_mut!(byte).cast(), 1);
                Ok(())
            });
        }
        let watchdog_opened = std::sync::Arc::new(AtomicBool::new(false));
        let mut watchdog_end = opener.try_clone().unwrap();
        let flag = std::sync::Arc::clone(&watchdog_opened);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(20));
            flag.store(true, Ordering::SeqCst);
            let _ = watchdog_end.write_all(b"w");
        });
        let pending = tokio::spawn(async move { spawner.spawn(cmd).await.map(|g| (g, spawner)) });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!pending.is_finished(), "the child cannot exec before the gate opens");
        assert!(!watchdog_opened.load(Ordering::SeqCst), "the caller was blocked until the watchdog");
        opener.write_all(b"t").unwrap();
        let (mut g, spawner) = pending.await.unwrap().unwrap();
        drop(gate);
        assert_eq!(g.stop(Duration::from_secs(2)).await.unwrap(), Exit::Signal(libc::SIGTERM));
        let err = spawner.spawn(Command::new("/nonexistent/x")).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn missing_binary_is_not_found() {
        let err = spawn(&mut Command::new("/nonexistent/ffmpeg")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn exit_display() {
        assert_eq!(Exit::Code(1).to_string(), "exit 1");
        assert_eq!(Exit::Signal(9).to_string(), "signal 9 (SIGKILL)");
    }
}
