//! Shared helpers: an origin on a free loopback port, the swarm binary, process inspection.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

static MACHINE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Taken by tests that run viewers and can share the machine with each other.
pub async fn shared_machine() -> tokio::sync::RwLockReadGuard<'static, ()> {
    MACHINE.read().await
}

/// Taken by tests that measure timing under load and must have the machine to themselves
/// (within this test binary).
pub async fn whole_machine() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    MACHINE.write().await
}

/// The swarm binary built by cargo for this test run.
pub fn swarm_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hls-swarm"))
}

/// A cheap origin for swarm tests: a small picture, replayed (encoded once, then served as a
/// live sliding window without re-encoding) so the viewers get the CPU. No exporters.
pub async fn start_origin() -> origin::Origin {
    let mut config = origin::Config::new("default").expect("default profile");
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.source = origin::Source::Replay;
    config.overrides.width = Some(320);
    config.overrides.height = Some(180);
    config.overrides.bitrate_kbps = Some(300);
    config.node_exporter = None;
    config.nginx_exporter = None;
    origin::start(config).await.expect("origin starts")
}

/// A replayed origin with the `logged` profile (nginx access log with bytes and user agents,
/// kept in `log_dir` after the origin stops) and, if `exporters`, the node and nginx
/// exporters on free loopback ports.
pub async fn start_logged_origin(exporters: bool, log_dir: &std::path::Path) -> origin::Origin {
    origin::start(logged_config(exporters, log_dir)).await.expect("origin starts")
}

/// The configuration [`start_logged_origin`] starts.
pub fn logged_config(exporters: bool, log_dir: &std::path::Path) -> origin::Config {
    profile_config("logged", exporters, log_dir)
}

/// As [`logged_config`], for `profile` (one that keeps an access log: `logged`, `debug`,
/// `ll-hls`, `ll-hls-abr`).
pub fn profile_config(profile: &str, exporters: bool, log_dir: &std::path::Path) -> origin::Config {
    let mut config = origin::Config::new(profile).expect("a known profile");
    config.listen = "127.0.0.1:0".parse().expect("addr");
    config.source = origin::Source::Replay;
    config.overrides.width = Some(320);
    config.overrides.height = Some(180);
    config.overrides.bitrate_kbps = Some(300);
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    config.node_exporter = exporters.then_some(any);
    config.nginx_exporter = exporters.then_some(any);
    config.log_dir = Some(log_dir.to_owned());
    config
}

/// A loopback server for at most `limit`, answering each connection on its own thread with
/// `answer(sock, until, done)`; returns its port and a flag that ends it.
pub fn serve_for<F>(limit: Duration, answer: F) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>)
where
    F: Fn(std::net::TcpStream, std::time::Instant, &std::sync::atomic::AtomicBool) + Send + Sync + 'static,
{
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let port = listener.local_addr().expect("addr").port();
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        let until = std::time::Instant::now() + limit;
        while std::time::Instant::now() < until && !flag.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((sock, _)) => {
                    let (flag, answer) = (Arc::clone(&flag), Arc::clone(&answer));
                    std::thread::spawn(move || answer(sock, until, &flag));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (port, done)
}

/// Reads one request head from `sock` (made blocking), for the tests' small servers; its
/// target, or `None` if the client sent nothing usable.
pub fn request_target(sock: &std::net::TcpStream) -> Option<String> {
    use std::io::BufRead;
    sock.set_nonblocking(false).ok()?;
    let mut reader = std::io::BufReader::new(sock.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let target = line.split_whitespace().nth(1)?.to_owned();
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
        header.clear();
    }
    Some(target)
}

/// What nginx's access log at `log` holds for the viewers (user agents with ` viewer/`):
/// playlists, segments and body bytes.
pub fn viewer_lines(log: &std::path::Path) -> (u64, u64, u64) {
    let logged: Vec<_> = origin::access_log::parse(&std::fs::read_to_string(log).expect("access log"))
        .into_iter()
        .filter(|r| r.user_agent.contains(" viewer/"))
        .collect();
    let playlists = logged.iter().filter(|r| r.is_playlist()).count() as u64;
    let segments = logged.iter().filter(|r| r.is_segment()).count() as u64;
    (playlists, segments, logged.iter().map(|r| r.bytes).sum())
}

/// `GET path` on `addr` (`host:port`); the response body.
pub fn http_get(addr: &str, path: &str) -> String {
    try_http_get(addr, path).unwrap_or_else(|e| panic!("{e}"))
}

/// As [`http_get`], with the error returned: for a server that may be going away.
pub fn try_http_get(addr: &str, path: &str) -> Result<String, kit::http::Error> {
    let addr = addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}"));
    kit::http::get(addr, path, Duration::from_secs(30)).map(|r| r.text())
}

/// The number (with decimals) after `label` in the summary line starting with `line_start`.
pub fn summary_float(stdout: &str, line_start: &str, label: &str) -> Option<f64> {
    let line = stdout.lines().find(|l| l.starts_with(line_start))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| w.trim_end_matches([',', '·']) == label)?;
    words.get(i.checked_sub(1)?)?.parse().ok()
}

/// Sum of the samples of metric `name` (exact name, any labels) in a Prometheus text scrape.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    kit::exposition::sum(&kit::exposition::parse(text), name)
}

/// The swarm command with test defaults: no metrics listener unless a test asks for one
/// (tests run in parallel and would fight over the default port).
pub fn swarm() -> Command {
    let mut cmd = Command::new(swarm_bin());
    cmd.env("HLS_SWARM_METRICS", "off");
    cmd
}

/// Runs the swarm to completion with `args`.
pub fn run_swarm(args: &[&str]) -> Output {
    swarm().args(args).stdin(Stdio::null()).output().expect("hls-swarm runs")
}

/// Starts an origin, runs the swarm to completion with the whitespace-separated `args`
/// followed by the origin's playlist URL, stops the origin. Returns the output and stdout.
pub async fn run_against_origin(args: &str) -> (Output, String) {
    let origin = start_origin().await;
    let mut argv: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
    argv.push(origin.playlist_url());
    let out = tokio::task::spawn_blocking(move || {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        run_swarm(&argv)
    })
    .await
    .expect("swarm task");
    origin.stop().await.expect("origin stops");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout)
}

/// Text of stdout and stderr, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "--- exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A process identified by pid and start time (so a recycled pid is not mistaken for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub start: u64,
}

fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Live (non-zombie) children of `parent`.
pub fn children_of(parent: u32) -> Vec<Proc> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Some(f) = stat_fields(pid) else { continue };
        // Fields after the name: [0] state, [1] ppid, ..., [19] starttime.
        if f.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) && f[0] != "Z" {
            if let Some(start) = f.get(19).and_then(|s| s.parse().ok()) {
                out.push(Proc { pid, start });
            }
        }
    }
    out
}

/// True while `p` still exists as a live (non-zombie) process.
pub fn alive(p: Proc) -> bool {
    stat_fields(p.pid).is_some_and(|f| f[0] != "Z" && f.get(19).and_then(|s| s.parse().ok()) == Some(p.start))
}

/// Waits up to `limit` for every process in `procs` to be gone; returns the survivors.
pub fn survivors_after(procs: &[Proc], limit: Duration) -> Vec<Proc> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left: Vec<Proc> = procs.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() || std::time::Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `f` until it returns `Some`, at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The number after `label` in the summary line starting with `line_start`, e.g.
/// `summary_number(out, "Viewers", "started")` reads "… 5 started …".
pub fn summary_number(stdout: &str, line_start: &str, label: &str) -> Option<u64> {
    let line = stdout.lines().find(|l| l.starts_with(line_start))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| w.trim_end_matches([',', '·']) == label)?;
    words.get(i.checked_sub(1)?)?.parse().ok()
}
