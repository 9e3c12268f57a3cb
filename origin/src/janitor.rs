//! Removes segments nobody lists any more.
//!
//! ffmpeg deletes segments that fall behind its window, but only those it knows about: after a
//! restart (`append_list` re-reads the playlist, not the files behind it) the few segments that
//! were already past the window when it died stay on disk, and a crash loop would slowly fill
//! the tmpfs. The janitor deletes any `.ts` (and stale `.tmp`) file older than a segment's
//! lifetime plus a margin, so in-flight downloads of recently delisted segments still finish.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

/// Deletes files in `dir` ending in `.ts` or `.tmp` last modified before `now - max_age`.
/// Returns how many were removed.
pub fn sweep(dir: &Path, max_age: Duration, now: SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.ends_with(".ts") || name.ends_with(".tmp")) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > max_age);
        if old && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Sweeps `dirs` every `every` until aborted.
#[must_use]
pub fn spawn(dirs: Vec<PathBuf>, max_age: Duration, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = SystemTime::now();
            for d in &dirs {
                let n = sweep(d, max_age, now);
                if n > 0 {
                    tracing::info!(dir = %d.display(), removed = n, "removed segments nobody lists");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_old_segments() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["seg00001.ts", "seg00002.ts.tmp", "stream.m3u8", "seg00003.ts"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let now = SystemTime::now();
        assert_eq!(sweep(dir.path(), Duration::from_secs(60), now), 0, "everything is fresh");
        let later = now + Duration::from_secs(120);
        assert_eq!(sweep(dir.path(), Duration::from_secs(60), later), 3);
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["stream.m3u8"], "playlists are never swept");
    }
}
