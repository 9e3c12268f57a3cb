//! Finding what a scenario left behind.
//!
//! Every process a scenario starts carries `HLS_TESTLAB_RUN=<run id>` in its environment, and
//! so does everything those processes start (nothing in the lab clears the environment): the
//! origin's ffmpeg, nginx and exporters, the swarm's FFmpeg viewers, Prometheus, qemu. After
//! the scenario has stopped everything, any live process whose environment still carries the
//! run's marker is a leftover, wherever it was reparented to and whichever namespace it is in.

use std::path::Path;

/// The environment variable that marks a scenario's processes.
pub const MARKER: &str = "HLS_TESTLAB_RUN";

/// A live process left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub pid: u32,
    pub command: String,
}

/// Live (non-zombie) processes whose environment contains `MARKER=run_id`.
pub fn processes(run_id: &str) -> Vec<Leftover> {
    let needle = format!("{MARKER}={run_id}\0");
    let mut found = Vec::new();
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else { return found };
    for entry in dir.filter_map(Result::ok) {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if !contains(&environ, needle.as_bytes()) || is_zombie(&entry.path()) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let command = String::from_utf8_lossy(&cmdline).replace('\0', " ").trim().to_owned();
        found.push(Leftover { pid, command });
    }
    found
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    // The environment starts without a leading NUL: match at 0 or after one.
    hay.starts_with(needle) || hay.windows(needle.len() + 1).any(|w| w[0] == 0 && &w[1..] == needle)
}

fn is_zombie(proc_dir: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else { return true };
    stat.rfind(')').and_then(|i| stat.get(i + 2..i + 3)).is_none_or(|s| s == "Z" || s == "X")
}

/// SIGKILLs each leftover by pid (they were started by this run: they carry its marker).
pub fn kill(left: &[Leftover]) {
    for l in left {
        if let Ok(pid) = i32::try_from(l.pid) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// The named namespaces of `names` that still exist (or whose mount point file does).
pub fn namespaces(names: &[String]) -> Vec<String> {
    names.iter().filter(|n| network::netns::exists(n) || network::netns::path(n).exists()).cloned().collect()
}

/// The namespace name prefix of a run: `hlslab-<pid>-<n>` (then `-c`, `-o`).
pub fn netns_prefix(n: usize) -> String {
    format!("hlslab-{}-{n}", std::process::id())
}

/// The pid in a lab namespace name made by [`netns_prefix`], if it is one.
fn netns_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("hlslab-")?;
    let mut parts = rest.split('-');
    let pid = parts.next()?.parse().ok()?;
    let n = parts.next()?;
    let side = parts.next()?;
    (n.chars().all(|c| c.is_ascii_digit())
        && !n.is_empty()
        && ["c", "o"].contains(&side)
        && parts.next().is_none())
    .then_some(pid)
}

/// Deletes the lab namespaces of test processes that no longer exist (a run killed before
/// it could clean up); returns their names.
pub fn sweep_stale_namespaces() -> Vec<String> {
    let mut swept = Vec::new();
    let Ok(dir) = std::fs::read_dir(network::netns::RUN_NETNS) else { return swept };
    for e in dir.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = netns_owner(&name) else { continue };
        if pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
            && network::netns::delete(&name).is_ok()
        {
            swept.push(name);
        }
    }
    swept
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_marker_matches_whole_variables_only() {
        let env = b"PATH=/bin\0HLS_TESTLAB_RUN=smoke-1\0HOME=/\0";
        assert!(contains(env, b"HLS_TESTLAB_RUN=smoke-1\0"));
        assert!(!contains(env, b"HLS_TESTLAB_RUN=smoke-\0"));
        assert!(contains(b"HLS_TESTLAB_RUN=a\0", b"HLS_TESTLAB_RUN=a\0"));
        assert!(!contains(b"XHLS_TESTLAB_RUN=a\0", b"HLS_TESTLAB_RUN=a\0"));
    }

    #[test]
    fn only_lab_namespace_names_have_an_owner() {
        assert_eq!(netns_owner("hlslab-123-4-c"), Some(123));
        assert_eq!(netns_owner("hlslab-123-4-o"), Some(123));
        assert_eq!(netns_owner(&format!("{}-c", netns_prefix(7))), Some(std::process::id()));
        for other in
            ["hlslab-t-123-4", "hlslab-t123", "hlslab-123-4-x", "hlslab-123-4-c-d", "lab", "hlslab-123--c"]
        {
            assert_eq!(netns_owner(other), None, "{other}");
        }
    }

    #[test]
    fn a_marked_child_is_found_until_it_is_gone() {
        let id = format!("unit-{}", std::process::id());
        let mut child = std::process::Command::new("sleep").arg("30").env(MARKER, &id).spawn().unwrap();
        // spawn returns once exec has begun; the kernel publishes the new environment a moment
        // later, which a busy machine can stretch: wait for it.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut found = processes(&id);
        while found.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            found = processes(&id);
        }
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pid, child.id());
        assert!(found[0].command.starts_with("sleep 30"));
        kill(&found);
        child.wait().unwrap();
        assert!(processes(&id).is_empty());
    }
}
