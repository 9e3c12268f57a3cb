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

    fn left(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn removes_only_old_segments() {
        let dir = tempfile::tempdir().unwrap();
        // Ages set explicitly: three files written 5 minutes before `now`, one at `now`.
        let now = SystemTime::now();
        let old = now - Duration::from_secs(300);
        for (name, mtime) in
            [("seg00001.ts", old), ("seg00002.ts.tmp", old), ("stream.m3u8", old), ("seg00003.ts", now)]
        {
            let file = std::fs::File::create(dir.path().join(name)).unwrap();
            file.set_modified(mtime).unwrap();
        }
        let max_age = Duration::from_secs(60);
        assert_eq!(sweep(dir.path(), max_age, now), 2, "the old segment and the old temp file");
        assert_eq!(left(dir.path()), ["seg00003.ts", "stream.m3u8"], "fresh segments and playlists stay");
        assert_eq!(sweep(dir.path(), max_age, now + Duration::from_secs(120)), 1);
        assert_eq!(left(dir.path()), ["stream.m3u8"], "playlists are never swept");
    }
}
