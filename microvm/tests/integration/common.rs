//! Shared helpers: locating the workspace's binaries, bounded command runs, free ports, and a
//! guard that stops a VM whatever happens to the test.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/`: the test executable lives in its `deps/`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_owned()
}

/// The `hls-lab` binary of this crate.
pub fn hls_lab() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hls-lab"))
}

/// Another workspace binary next to ours (`hls-origin`, `hls-swarm`), or a clear failure.
pub fn sibling(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: build it first (`cargo build -p {name}` with the same profile and target dir; `make test-lab` does)",
        p.display()
    );
    p
}

/// `sibling` without failing.
pub fn try_sibling(name: &str) -> Option<PathBuf> {
    Some(bin_dir().join(name)).filter(|p| p.is_file())
}

/// A persistent image cache for the tests (under the target directory, not the user's cache).
pub fn test_cache() -> PathBuf {
    bin_dir().join("hls-lab-test-cache")
}

/// Runs `cmd` with a deadline; kills it when the deadline passes (and fails the test).
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{shown} did not finish within {} s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = Output { status, stdout: out_t.join().unwrap(), stderr: err_t.join().unwrap() };
    eprintln!(
        "$ {shown}\n-> {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `n` distinct free TCP ports, reserved (outside the ephemeral range, locked against other
/// tests) while the returned values live: keep them until the servers are gone.
pub fn free_ports(n: usize) -> Vec<testkit::port::Port> {
    (0..n).map(|_| testkit::port::reserve().expect("a free port")).collect()
}

/// Live (non-zombie) processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == std::process::id() {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
        if !String::from_utf8_lossy(&cmdline).contains(needle) {
            continue;
        }
        if microvm::rundir::ProcStat::alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// After a start that failed: no process of the VM is alive, `status` says it is not running,
/// and of the run directory only the logs (console, qemu's stderr) and the lock file remain —
/// no state, pid file or socket.
pub fn assert_nothing_left_but_logs(name: &str, run_dir: &Path) {
    let left = processes_mentioning(&run_dir.to_string_lossy());
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let mut status = Command::new(hls_lab());
    status.args(["microvm", "status", "--name", name, "--run-dir"]).arg(run_dir);
    assert_eq!(
        run(&mut status, Duration::from_secs(30)).status.code(),
        Some(5),
        "status after a failed start"
    );
    let mut files: Vec<String> = std::fs::read_dir(run_dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    files.retain(|f| !["console.log", "qemu.log", "lock"].contains(&f.as_str()));
    assert!(files.is_empty(), "left in {}: {files:?}", run_dir.display());
}

/// What a VM test needs: qemu and everything the image is built from (the host's kernel with
/// its modules, busybox, ffmpeg, nginx, the exporters, hls-origin). `make test` installs them
/// (`scripts/install-deps --test --vm`), so under CI their absence is a failure.
pub fn vm_facilities() -> testkit::Outcome {
    testkit::need::program("qemu-system-x86_64")?;
    let inputs = microvm::image::Inputs::discover(&origin_overrides());
    let why = inputs.as_ref().err().map(ToString::to_string).unwrap_or_default();
    testkit::need::installed(
        "the VM image's inputs",
        inputs.is_ok(),
        &format!("{why}; scripts/install-deps --vm installs the kernel and busybox"),
    )
}

/// Image overrides pointing at the workspace's hls-origin.
pub fn origin_overrides() -> microvm::image::Overrides {
    microvm::image::Overrides { origin: try_sibling("hls-origin"), ..Default::default() }
}

/// Stops the VM of `run_dir` when dropped (also when the test panics) and checks nothing is
/// left.
pub struct VmGuard {
    pub name: String,
    pub run_dir: PathBuf,
}

impl Drop for VmGuard {
    fn drop(&mut self) {
        let _ = Command::new(hls_lab())
            .args(["microvm", "stop", "--grace", "15s", "--name", &self.name, "--run-dir"])
            .arg(&self.run_dir)
            .stdin(Stdio::null())
            .status();
    }
}
