//! The run directory of one VM: `/run/hls-lab/vm-<name>/` as root, else
//! `$XDG_RUNTIME_DIR/hls-lab/vm-<name>/`. It holds the state record (`state.json`: pid, the
//! pid's start time, addresses, URLs), qemu's pid file, the QMP and console sockets, the
//! console log and a lock file that serialises `start` and `stop`.
//!
//! A pid alone is not an identity: after the VM exits the number can be reused. Every check
//! compares the recorded start time (`/proc/PID/stat` field 22) and looks for this run
//! directory's QMP socket path in `/proc/PID/cmdline` before trusting or signalling it (as
//! `kill` does before each signal it sends).

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Run directory problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// File system failure.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another `hls-lab` holds the lock.
    #[error(
        "another hls-lab is starting or stopping the VM in {dir} (lock held); try again when it is done"
    )]
    Busy {
        /// The run directory.
        dir: PathBuf,
    },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { action, path: path.to_owned(), source }
}

/// The runtime root: `/run/hls-lab` for root, `$XDG_RUNTIME_DIR/hls-lab` otherwise, else a
/// per-user directory under the temp dir.
#[must_use]
pub fn runtime_root() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return PathBuf::from("/run/hls-lab");
    }
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("hls-lab");
    }
    std::env::temp_dir().join(format!("hls-lab-{uid}"))
}

/// A VM name usable in paths and qemu's `-name`.
#[must_use]
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What `start` recorded about a running VM.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// VM name.
    pub name: String,
    /// qemu's pid (the daemon, from its pid file).
    pub pid: u32,
    /// The pid's start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_ticks: u64,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// Why that accelerator.
    pub accel_reason: String,
    /// `user` or `tap`.
    pub net: String,
    /// How the network is attached (forwards, TAP and vhost-net).
    pub net_detail: String,
    /// Network namespace qemu runs in (tap mode), if any.
    pub netns: Option<String>,
    /// Where the playlist is checked from the host (or from `netns`).
    pub check_addr: std::net::SocketAddr,
    /// Where the node exporter answers (host side).
    pub node_addr: std::net::SocketAddr,
    /// Where the nginx exporter answers (host side).
    pub nginx_addr: std::net::SocketAddr,
    /// Stream URL.
    pub stream_url: String,
    /// Node exporter URL.
    pub node_url: String,
    /// nginx exporter URL.
    pub nginx_url: String,
    /// The image directory.
    pub image: PathBuf,
    /// The kernel file booted.
    pub kernel: PathBuf,
    /// When qemu was started (Unix ms).
    pub started_unix_ms: u64,
    /// Seconds from qemu's start to the first served playlist, once seen.
    pub ready_seconds: Option<f64>,
    /// Seconds from qemu's start until both exporters answered, once seen.
    pub exporters_seconds: Option<f64>,
}

/// One VM's run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

/// An exclusive lock on a run directory (released on drop).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl RunDir {
    /// The run directory for VM `name` under the default root, or `dir` when given.
    #[must_use]
    pub fn new(name: &str, dir: Option<&Path>) -> RunDir {
        RunDir { path: dir.map_or_else(|| runtime_root().join(format!("vm-{name}")), Path::to_owned) }
    }

    /// Its path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// `state.json`.
    #[must_use]
    pub fn state_file(&self) -> PathBuf {
        self.path.join("state.json")
    }
    /// qemu's `-pidfile`.
    #[must_use]
    pub fn pid_file(&self) -> PathBuf {
        self.path.join("qemu.pid")
    }
    /// QMP socket.
    #[must_use]
    pub fn qmp_socket(&self) -> PathBuf {
        self.path.join("qmp.sock")
    }
    /// Serial console socket.
    #[must_use]
    pub fn console_socket(&self) -> PathBuf {
        self.path.join("console.sock")
    }
    /// Serial console log.
    #[must_use]
    pub fn console_log(&self) -> PathBuf {
        self.path.join("console.log")
    }
    /// qemu's own stderr while it starts.
    #[must_use]
    pub fn qemu_log(&self) -> PathBuf {
        self.path.join("qemu.log")
    }

    /// Creates the directory (mode 0700) and takes its lock without waiting.
    ///
    /// # Errors
    /// [`Error::Busy`] when another process holds it.
    pub fn lock(&self) -> Result<Lock, Error> {
        std::fs::create_dir_all(&self.path).map_err(io("cannot create", &self.path))?;
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o700));
        let lock = self.path.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(io("cannot open", &lock))?;
        // SAFETY: flock only operates on the descriptor, which `file` keeps open.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == -1 {
            return Err(Error::Busy { dir: self.path.clone() });
        }
        Ok(Lock { _file: file })
    }

    /// The recorded state, if any and readable.
    #[must_use]
    pub fn read_state(&self) -> Option<State> {
        serde_json::from_str(&std::fs::read_to_string(self.state_file()).ok()?).ok()
    }

    /// Records `state` atomically.
    ///
    /// # Errors
    /// Write failure.
    pub fn write_state(&self, state: &State) -> Result<(), Error> {
        let path = self.state_file();
        let tmp = self.path.join(".state.json.tmp");
        let json = serde_json::to_vec_pretty(state).map_err(|e| Error::Io {
            action: "cannot encode",
            path: path.clone(),
            source: e.into(),
        })?;
        let mut f = File::create(&tmp).map_err(io("cannot create", &tmp))?;
        f.write_all(&json).and_then(|()| f.sync_all()).map_err(io("cannot write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("cannot rename", &path))
    }

    /// Removes what a previous VM left (state, pid file, sockets); keeps the console log.
    pub fn clear(&self) {
        for p in [self.state_file(), self.pid_file(), self.qmp_socket(), self.console_socket()] {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Whether `pid` is still this run directory's qemu, started at `start_ticks`.
    #[must_use]
    pub fn owns(&self, pid: u32, start_ticks: u64) -> bool {
        let Some(stat) = ProcStat::read(pid) else { return false };
        if stat.start_ticks != start_ticks || stat.state == 'Z' {
            return false;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
        let needle = self.qmp_socket();
        let needle = needle.to_string_lossy();
        cmdline.split(|&b| b == 0).any(|arg| String::from_utf8_lossy(arg).contains(needle.as_ref()))
    }
}

/// Fields of `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// State letter (`R`, `S`, `Z`, …).
    pub state: char,
    /// Start time in clock ticks since boot.
    pub start_ticks: u64,
}

impl ProcStat {
    /// Reads `/proc/PID/stat`; `None` when the process does not exist.
    #[must_use]
    pub fn read(pid: u32) -> Option<ProcStat> {
        parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// Whether `pid` exists and is not a zombie.
    #[must_use]
    pub fn alive(pid: u32) -> bool {
        ProcStat::read(pid).is_some_and(|s| s.state != 'Z')
    }
}

/// Parses a `/proc/PID/stat` line. The command name (field 2) is in parentheses and may hold
/// spaces and parentheses itself, so fields are counted after the last `)`.
#[must_use]
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); starttime is field 22.
    let state = fields.first()?.chars().next()?;
    let start_ticks = fields.get(22 - 3)?.parse().ok()?;
    Some(ProcStat { state, start_ticks })
}

/// Milliseconds since the Unix epoch, as the state record keeps times.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The pid in a pid file (qemu's `-pidfile`), if it holds one.
pub(crate) fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A daemon qemu left behind by a failed start (its pid file exists but no state was written).
pub(crate) async fn kill_stray(run: &RunDir) {
    if let Some(pid) = read_pid(&run.pid_file()) {
        if let Some(s) = ProcStat::read(pid) {
            kill(run, pid, s.start_ticks, Duration::from_secs(2)).await;
        }
    }
}

/// SIGTERM, `grace`, SIGKILL — each only after checking that `pid` is still this run
/// directory's qemu — then waits (bounded) until it is gone. Returns whether it was gone.
pub(crate) async fn kill(run: &RunDir, pid: u32, start_ticks: u64, grace: Duration) -> bool {
    let Ok(raw) = i32::try_from(pid) else { return false };
    let target = nix::unistd::Pid::from_raw(raw);
    for (signal, wait) in [
        (nix::sys::signal::Signal::SIGTERM, grace),
        (nix::sys::signal::Signal::SIGKILL, Duration::from_secs(5)),
    ] {
        if !run.owns(pid, start_ticks) {
            return true;
        }
        let _ = nix::sys::signal::kill(target, signal);
        let t = Instant::now();
        while t.elapsed() < wait {
            if !run.owns(pid, start_ticks) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    !run.owns(pid, start_ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "4242 (qemu (x) y) S 1 4242 4242 0 -1 4194624 100 0 0 0 5 6 0 0 20 0 5 0 987654 1000 200 18446744073709551615";
        assert_eq!(parse_stat(line), Some(ProcStat { state: 'S', start_ticks: 987_654 }));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn owns_needs_the_start_time_and_the_qmp_socket_in_the_command_line() {
        let me = std::process::id();
        let stat = ProcStat::read(me).unwrap();
        assert!(ProcStat::alive(me));
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new("t", Some(dir.path()));
        // Right start time but no qmp socket path in our command line: not a VM of this dir.
        assert!(!run.owns(me, stat.start_ticks));

        // A child whose command line names the socket (as qemu's `-qmp unix:…` does) is
        // owned, at its own start time only, until it is gone.
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg0(format!("unix:{},server=on", run.qmp_socket().display()))
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let ticks = ProcStat::read(pid).unwrap().start_ticks;
        // spawn returns once exec has begun; the kernel sets the new command line a moment
        // later, which a busy machine can stretch: wait for it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !run.owns(pid, ticks) {
            assert!(std::time::Instant::now() < deadline, "the child's command line never named the socket");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!run.owns(pid, ticks + 1), "another process that got the same pid");
        assert!(!RunDir::new("u", Some(&dir.path().join("other"))).owns(pid, ticks));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!run.owns(pid, ticks));
    }

    #[test]
    fn state_round_trip_and_lock() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new("t", Some(&dir.path().join("vm-t")));
        let lock = run.lock().unwrap();
        assert!(matches!(run.lock(), Err(Error::Busy { .. })));
        let s = State {
            name: "t".into(),
            pid: 1,
            start_ticks: 2,
            accel: "tcg".into(),
            accel_reason: "r".into(),
            net: "user".into(),
            net_detail: "d".into(),
            netns: None,
            check_addr: "127.0.0.1:17080".parse().unwrap(),
            node_addr: "127.0.0.1:9100".parse().unwrap(),
            nginx_addr: "127.0.0.1:9113".parse().unwrap(),
            stream_url: "u".into(),
            node_url: "n".into(),
            nginx_url: "x".into(),
            image: "/i".into(),
            kernel: "/k".into(),
            started_unix_ms: 3,
            ready_seconds: Some(7.5),
            exporters_seconds: Some(9.0),
        };
        run.write_state(&s).unwrap();
        assert_eq!(run.read_state(), Some(s));
        run.clear();
        assert_eq!(run.read_state(), None);
        drop(lock);
        assert!(run.lock().is_ok());
    }

    #[test]
    fn names() {
        assert!(valid_name("origin"));
        assert!(valid_name("test-1_a"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(""));
        assert!(!valid_name(&"x".repeat(33)));
    }
}
