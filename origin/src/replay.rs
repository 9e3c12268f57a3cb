//! Replay: encode a short loop once, then publish it as a live sliding window.
//!
//! The loop is cached under a directory named by a hash of the encoder argv, so a second run
//! with the same settings starts at once. The publisher is a task, not a process: every
//! segment duration it links (or copies) the next loop segment under the next sequence number,
//! rewrites each media playlist atomically (temp file + rename) and deletes the segment that
//! fell `delete_threshold` segments behind the window. Segments are copied through
//! [`Timeline`], which shifts timestamps by one loop length per pass and keeps continuity
//! counters running, so the loop point is seamless and needs no `#EXT-X-DISCONTINUITY`.
//!
//! A [`Hold`] stalls the publisher on purpose (fault injection): until it ends, no segment is
//! published and no playlist rewritten; then publishing carries on at the normal cadence from
//! that moment, without catching up, like a real encoder whose input stalled and came back.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::encoder::{self, Output};
use crate::error::Error;
use crate::profile::Profile;
use crate::supervisor::Board;
use crate::timeline::Timeline;
use kit::playlist::{self, Media, Segment};

/// Segments published at once when the publisher starts (enough to be "ready").
pub const INITIAL_SEGMENTS: u32 = 3;

/// Longest hold [`Hold::hold`] accepts.
pub const MAX_HOLD: Duration = Duration::from_secs(600);

/// A stall injected into the publisher: no segment is published, and no playlist rewritten,
/// before the instant it holds. Shared with the publisher task through a `watch` channel, so the
/// publisher wakes when a hold is set, extended or shortened, and never polls.
#[derive(Debug)]
pub struct Hold {
    until: watch::Sender<Option<Instant>>,
}

impl Default for Hold {
    fn default() -> Self {
        Hold { until: watch::Sender::new(None) }
    }
}

impl Hold {
    /// Holds publishing from now for `duration`, replacing any earlier hold (a longer one
    /// extends it, a shorter one shortens it, zero ends it). Returns when the hold ends.
    ///
    /// # Errors
    /// [`Error::HoldTooLong`] if `duration` exceeds [`MAX_HOLD`]; the current hold is kept.
    pub fn hold(&self, duration: Duration) -> Result<Instant, Error> {
        if duration > MAX_HOLD {
            return Err(Error::HoldTooLong { value: duration, max: MAX_HOLD });
        }
        let end = Instant::now() + duration;
        self.until.send_replace(Some(end));
        tracing::info!(?duration, "replay publisher held");
        Ok(end)
    }

    /// When the current hold ends, if one is in effect now.
    #[must_use]
    pub fn ends(&self) -> Option<Instant> {
        (*self.until.borrow()).filter(|end| *end > Instant::now())
    }

    fn subscribe(&self) -> watch::Receiver<Option<Instant>> {
        self.until.subscribe()
    }
}

/// One variant of a cached loop.
#[derive(Debug, Clone)]
pub struct LoopVariant {
    /// Sub-directory under the served root (`""` for a single-variant profile).
    pub subdir: String,
    /// Segment files in the cache and their durations in seconds.
    pub segments: Vec<(PathBuf, f64)>,
}

/// A pre-encoded loop.
#[derive(Debug, Clone)]
pub struct Loop {
    /// The cache directory holding it.
    pub dir: PathBuf,
    /// Variants, in profile order.
    pub variants: Vec<LoopVariant>,
    /// The ffmpeg-written master playlist, for ABR.
    pub master: Option<PathBuf>,
}

/// FNV-1a, 64 bit: stable across Rust versions, unlike `DefaultHasher`.
pub(crate) fn fnv1a(parts: &[OsString]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.as_encoded_bytes().iter().chain(std::iter::once(&0u8)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The cache key of `profile`'s loop of `seconds`: independent of where the cache lives.
#[must_use]
pub fn cache_key(ffmpeg: &Path, profile: &Profile, seconds: u32) -> String {
    // The salt changes whenever the post-processing of a cached loop changes.
    let mut argv = vec![OsString::from("trim-audio-tail-v1"), ffmpeg.as_os_str().to_owned()];
    // The log level does not change the output: debug and quiet profiles share a loop.
    let mut quiet = profile.clone();
    quiet.logging = crate::profile::Logging::Quiet;
    argv.extend(encoder::args(&quiet, Path::new("@"), Output::Loop { seconds }));
    format!("loop-{:016x}", fnv1a(&argv))
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::File { path: path.to_owned(), source }
}

/// Returns the cached loop for `profile`, encoding it first if needed (as fast as the CPU allows).
///
/// # Errors
/// [`Error::Spawn`] if ffmpeg cannot start, [`Error::PreEncode`] if it fails,
/// [`Error::File`] for cache directory problems.
pub async fn prepare(
    ffmpeg: &Path,
    profile: &Profile,
    cache_root: &Path,
    loop_segments: u32,
    log: &Path,
) -> Result<Loop, Error> {
    let seconds = loop_segments.max(2) * profile.segment_secs;
    let dir = cached(cache_root, &cache_key(ffmpeg, profile, seconds), |tmp| async move {
        encode(ffmpeg, encoder::args(profile, &tmp, Output::Loop { seconds }), "replay loop", log).await?;
        load(&tmp, profile).and_then(|lp| trim_loop_end(&lp))
    })
    .await?;
    load(&dir, profile)
}

/// The cache directory `key` under `cache_root`, made first if missing: `build` fills a
/// private temporary directory (`KEY.tmp-PID-N`), renamed into place, with a `complete`
/// marker, once it succeeds (removed if it fails). Concurrent origins may both build; the
/// first rename wins and the other's copy is dropped. Temporary directories of origins that
/// died mid-way are swept first.
///
/// # Errors
/// `build`'s error, or [`Error::File`] for the cache directory.
pub(crate) async fn cached<F, Fut>(cache_root: &Path, key: &str, build: F) -> Result<PathBuf, Error>
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let dir = cache_root.join(key);
    if dir.join("complete").exists() {
        return Ok(dir);
    }
    std::fs::create_dir_all(cache_root).map_err(io_err(cache_root))?;
    sweep_abandoned(cache_root);
    let tmp = cache_root.join(format!("{key}.tmp-{}-{}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    if let Err(e) = build(tmp.clone()).await {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    std::fs::write(tmp.join("complete"), b"").map_err(io_err(&tmp))?;
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another origin finished the same loop first; theirs is as good as ours.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(dir)
}

/// Removes half-encoded loops (`*.tmp-PID-N`) whose origin is gone.
fn sweep_abandoned(cache_root: &Path) {
    let Ok(entries) = std::fs::read_dir(cache_root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((_, rest)) = name.split_once(".tmp-") else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Runs ffmpeg with `args` to the end (a loop `what`, encoded as fast as the CPU allows),
/// its output appended to `log`.
///
/// # Errors
/// [`Error::Spawn`] if it cannot start, [`Error::PreEncode`] if it fails.
pub(crate) async fn encode(ffmpeg: &Path, args: Vec<OsString>, what: &str, log: &Path) -> Result<(), Error> {
    let spawn_err =
        |source| Error::Spawn { name: format!("ffmpeg ({what})"), program: ffmpeg.to_owned(), source };
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log).map_err(spawn_err)?;
    let file2 = file.try_clone().map_err(spawn_err)?;
    let mut cmd = Command::new(ffmpeg);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(file2))
        .kill_on_drop(true);
    let mut group = procgroup::spawn(&mut cmd).map_err(spawn_err)?;
    tracing::info!(pid = group.pid(), what, "encoding");
    let status = group.wait().await.map_err(spawn_err)?;
    let exit = procgroup::Exit::from(status);
    if !exit.success() {
        return Err(Error::PreEncode { exit: exit.to_string(), log: log.to_owned() });
    }
    Ok(())
}

/// Cuts the audio that runs past the loop's end (see [`crate::timeline::trim_audio_tail`]).
fn trim_loop_end(lp: &Loop) -> Result<(), Error> {
    for v in &lp.variants {
        let ticks = (v.segments.iter().map(|s| s.1).sum::<f64>() * 90_000.0).round() as u64;
        let (first, _) = &v.segments[0];
        let data = std::fs::read(first).map_err(io_err(first))?;
        let boundary =
            crate::timeline::first_audio_pts(&data).into_iter().map(|(pid, t)| (pid, t + ticks)).collect();
        let (last, _) = &v.segments[v.segments.len() - 1];
        let mut data = std::fs::read(last).map_err(io_err(last))?;
        let nulled = crate::timeline::trim_audio_tail(&mut data, &boundary);
        tracing::debug!(segment = %last.display(), nulled, "trimmed the loop's audio tail");
        std::fs::write(last, &data).map_err(io_err(last))?;
    }
    Ok(())
}

fn load(dir: &Path, profile: &Profile) -> Result<Loop, Error> {
    let mut variants = Vec::new();
    let subdirs: Vec<String> = if profile.is_abr() {
        profile.variants.iter().map(|v| v.name.clone()).collect()
    } else {
        vec![String::new()]
    };
    for sub in subdirs {
        let vdir = dir.join(&sub);
        let path = vdir.join("stream.m3u8");
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        let media = playlist::parse_media(&text).map_err(|e| Error::File {
            path: path.clone(),
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })?;
        let segments: Vec<(PathBuf, f64)> = media
            .segments
            .iter()
            .filter(|s| s.duration > 0.05)
            .map(|s| (vdir.join(&s.uri), s.duration))
            .collect();
        if segments.is_empty() {
            return Err(Error::File {
                path,
                source: io::Error::new(io::ErrorKind::InvalidData, "the loop has no segments"),
            });
        }
        variants.push(LoopVariant { subdir: sub, segments });
    }
    let n = variants.iter().map(|v| v.segments.len()).min().unwrap_or(0);
    for v in &mut variants {
        v.segments.truncate(n);
    }
    let master = profile.is_abr().then(|| dir.join("master.m3u8"));
    Ok(Loop { dir: dir.to_owned(), variants, master })
}

/// Sliding-window state of the publisher (pure: no clock, no files).
#[derive(Debug, Clone)]
pub struct Window {
    /// Segments in the loop.
    pub loop_len: u64,
    /// Segments listed.
    pub size: u64,
    /// Next sequence number to publish.
    pub next: u64,
}

impl Window {
    /// The media playlist after publishing everything below `self.next`.
    #[must_use]
    pub fn playlist(&self, durations: &[f64], target: u64) -> Media {
        let first = self.next.saturating_sub(self.size);
        let segments = (first..self.next)
            .map(|seq| Segment {
                uri: segment_name(seq),
                duration: durations[usize::try_from(seq % self.loop_len).unwrap_or(0)],
                ..Segment::default()
            })
            .collect();
        Media {
            version: Some(3),
            target_duration: Some(target as f64),
            media_sequence: first,
            independent_segments: true,
            segments,
            ..Media::default()
        }
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

/// `2026-12-03T17:20:01.123Z` for Unix time `t`.
fn rfc3339(t: f64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t.max(0.0));
    humantime::format_rfc3339_millis(at).to_string()
}

/// File name of sequence number `seq`.
#[must_use]
pub fn segment_name(seq: u64) -> String {
    format!("seg{seq:05}.ts")
}

/// Copies a loop segment to `to`, shifted by `offset` ticks, via a temp file and rename.
fn copy_shifted(from: &Path, to: &Path, timeline: &mut Timeline, offset: u64) -> io::Result<()> {
    let mut data = std::fs::read(from)?;
    timeline.rewrite(&mut data, offset);
    let tmp = to.with_extension("ts.tmp");
    std::fs::write(&tmp, &data)?;
    std::fs::rename(&tmp, to)
}

fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("m3u8.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The publisher's state: the loop, where it goes, and the window.
#[derive(Debug)]
struct Publisher {
    lp: Loop,
    root: PathBuf,
    durations: Vec<f64>,
    target: u64,
    keep: u64,
    window: Window,
    /// Length of one pass over the loop, 90 kHz ticks.
    loop_ticks: u64,
    /// One per variant.
    timelines: Vec<Timeline>,
    /// Wall-clock start of the next segment (Unix seconds): its `EXT-X-PROGRAM-DATE-TIME`.
    clock: f64,
    /// The program date-time of each segment still listed, by sequence number.
    times: std::collections::BTreeMap<u64, String>,
}

impl Publisher {
    /// Publishes the next sequence number in every variant.
    fn step(&mut self) -> io::Result<()> {
        let seq = self.window.next;
        let idx = usize::try_from(seq % self.window.loop_len).unwrap_or(0);
        // Its program date-time is its start: the first burst is dated back from the moment it
        // is published, later segments follow on (see `catch_up`).
        let duration = self.durations[idx];
        self.times.insert(seq, rfc3339(self.clock));
        self.clock += duration;
        let offset = (seq / self.window.loop_len) * self.loop_ticks;
        for (v, t) in self.lp.variants.iter().zip(&mut self.timelines) {
            if idx == 0 {
                t.begin_pass();
            }
            let d = self.root.join(&v.subdir);
            copy_shifted(&v.segments[idx].0, &d.join(segment_name(seq)), t, offset)?;
        }
        self.window.next += 1;
        let mut media = self.window.playlist(&self.durations, self.target);
        let first = media.media_sequence;
        self.times.retain(|s, _| *s >= first);
        for (i, s) in media.segments.iter_mut().enumerate() {
            s.program_date_time = self.times.get(&(first + i as u64)).cloned();
        }
        let text = media.render();
        for v in &self.lp.variants {
            let d = self.root.join(&v.subdir);
            write_atomic(&d.join("stream.m3u8"), &text)?;
            if let Some(old) = self.window.next.checked_sub(self.keep + 1) {
                let _ = std::fs::remove_file(d.join(segment_name(old)));
            }
        }
        Ok(())
    }

    /// The next segment ends now: if the clock fell behind (a hold), it jumps to real time, as
    /// a live encoder's would.
    fn catch_up(&mut self) {
        let next = self.next_duration().as_secs_f64();
        self.clock = self.clock.max(unix_now() - next);
    }

    /// Duration of the segment that will be published next.
    fn next_duration(&self) -> Duration {
        let idx = usize::try_from(self.window.next % self.window.loop_len).unwrap_or(0);
        Duration::from_secs_f64(self.durations[idx])
    }
}

/// Publishes `lp` into `root` forever (until the task is aborted).
///
/// The first [`INITIAL_SEGMENTS`] appear at once, then one per segment duration. While `hold`
/// holds, nothing is published; the segment that fell due during a hold appears when it ends,
/// and the next one a segment duration later (no catch-up burst). A segment that cannot be
/// written is logged and counted on `board` under `replay`.
///
/// # Errors
/// [`Error::File`] if the initial files cannot be written.
pub fn publish(
    lp: Loop,
    root: PathBuf,
    profile: &Profile,
    board: Board,
    hold: &Hold,
) -> Result<JoinHandle<()>, Error> {
    let durations: Vec<f64> = lp.variants[0].segments.iter().map(|s| s.1).collect();
    let longest = durations.iter().copied().fold(f64::from(profile.segment_secs), f64::max);
    // TARGETDURATION: the longest segment rounded to the nearest second.
    let target = longest.round() as u64;
    for v in &lp.variants {
        let d = root.join(&v.subdir);
        std::fs::create_dir_all(&d).map_err(io_err(&d))?;
    }
    if let Some(master) = &lp.master {
        let text = std::fs::read_to_string(master).map_err(io_err(master))?;
        let out = root.join("master.m3u8");
        write_atomic(&out, &text).map_err(io_err(&out))?;
    }
    let loop_ticks = (durations.iter().sum::<f64>() * 90_000.0).round() as u64;
    let burst = usize::try_from(INITIAL_SEGMENTS.min(profile.window)).unwrap_or(0);
    let durations_ahead: f64 = durations.iter().cycle().take(burst).sum();
    let mut p = Publisher {
        timelines: vec![Timeline::default(); lp.variants.len()],
        loop_ticks,
        window: Window { loop_len: durations.len() as u64, size: u64::from(profile.window), next: 0 },
        lp,
        root,
        durations,
        target,
        keep: u64::from(profile.window + profile.delete_threshold),
        // The first burst ends now.
        clock: unix_now() - durations_ahead,
        times: std::collections::BTreeMap::new(),
    };
    for _ in 0..INITIAL_SEGMENTS.min(profile.window) {
        p.step().map_err(io_err(&p.root))?;
    }
    let mut hold = hold.subscribe();
    Ok(tokio::spawn(async move {
        let mut due = Instant::now();
        loop {
            due += p.next_duration();
            // A held segment restarts the cadence: the next one is due a segment after it.
            let woke = wait_out(due, &mut hold).await;
            if woke > due {
                tracing::info!(late = ?woke - due, "replay publisher resumed after a hold");
                due = woke;
            }
            p.catch_up();
            if let Err(e) = p.step() {
                tracing::error!(error = %e, "replay publisher failed to publish a segment");
                board.record_failure("replay", format!("publishing segment {}: {e}", p.window.next));
            }
        }
    }))
}

/// Sleeps until `due` or the end of the hold in effect, whichever is later, following changes
/// to the hold while asleep. Returns the instant it woke for.
async fn wait_out(due: Instant, hold: &mut watch::Receiver<Option<Instant>>) -> Instant {
    loop {
        let until = (*hold.borrow_and_update()).map_or(due, |end| end.max(due));
        tokio::select! {
            () = tokio::time::sleep_until(until) => return until,
            changed = hold.changed() => {
                if changed.is_err() {
                    // Nobody can change the hold any more: the last one stands.
                    tokio::time::sleep_until(until).await;
                    return until;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides_over_the_loop_without_discontinuities() {
        let d = [2.0, 2.0, 2.0, 1.5];
        let mut w = Window { loop_len: 4, size: 3, next: 3 };
        let m = w.playlist(&d, 2);
        assert_eq!(m.media_sequence, 0);
        let uris: Vec<&str> = m.segments.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, ["seg00000.ts", "seg00001.ts", "seg00002.ts"]);
        w.next = 6;
        let m = w.playlist(&d, 2);
        assert_eq!(m.media_sequence, 3);
        let durations: Vec<f64> = m.segments.iter().map(|s| s.duration).collect();
        assert_eq!(durations, [1.5, 2.0, 2.0], "seq 3 is the loop's last segment, 4 and 5 wrap");
        assert!(m.segments.iter().all(|s| !s.discontinuity));
        assert!(!m.ended);
        assert!(!m.render().contains("ENDLIST"));
    }

    const SEG: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn a_hold_delays_the_due_segment_to_its_end_and_the_cadence_restarts_there() {
        let hold = Hold::default();
        let mut rx = hold.subscribe();
        let t0 = Instant::now();
        assert_eq!(wait_out(t0 + SEG, &mut rx).await, t0 + SEG, "no hold: on time");
        let end = hold.hold(Duration::from_millis(3500)).unwrap();
        assert_eq!(end, t0 + Duration::from_millis(4500));
        assert_eq!(hold.ends(), Some(end));
        let woke = wait_out(t0 + 2 * SEG, &mut rx).await;
        assert_eq!(woke, end, "the segment due during the hold appears when it ends");
        assert_eq!(hold.ends(), None);
        // The publisher's next deadline is a segment after that: no catch-up burst.
        assert_eq!(wait_out(woke + SEG, &mut rx).await, end + SEG);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_shorter_than_the_wait_changes_nothing() {
        let hold = Hold::default();
        let mut rx = hold.subscribe();
        let t0 = Instant::now();
        hold.hold(Duration::from_millis(300)).unwrap();
        assert_eq!(wait_out(t0 + SEG, &mut rx).await, t0 + SEG);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_hold_while_waiting_replaces_the_old_one() {
        let hold = Hold::default();
        let mut rx = hold.subscribe();
        let t0 = Instant::now();
        hold.hold(2 * SEG).unwrap();
        let (woke, ()) = tokio::join!(wait_out(t0 + SEG, &mut rx), async {
            tokio::time::sleep(SEG).await;
            hold.hold(3 * SEG).unwrap();
        });
        assert_eq!(woke, t0 + 4 * SEG, "extended to 3 s after the second call");

        let t1 = Instant::now();
        hold.hold(10 * SEG).unwrap();
        let (woke, ()) = tokio::join!(wait_out(t1 + SEG, &mut rx), async {
            tokio::time::sleep(2 * SEG).await;
            hold.hold(Duration::ZERO).unwrap();
        });
        assert_eq!(woke, t1 + 2 * SEG, "a zero hold releases at once");
    }

    // Paused: `ends` compares with the clock, and a real one could pass the 5 s meanwhile.
    #[tokio::test(start_paused = true)]
    async fn a_hold_longer_than_the_limit_is_refused_and_keeps_the_current_one() {
        let hold = Hold::default();
        let end = hold.hold(Duration::from_secs(5)).unwrap();
        let e = hold.hold(MAX_HOLD + Duration::from_millis(1)).unwrap_err();
        assert_eq!(e.to_string(), "invalid hold of 600.001s: expected at most 600s");
        assert_eq!(hold.ends(), Some(end));
        assert!(hold.hold(MAX_HOLD).is_ok());
    }

    #[test]
    fn cache_key_depends_on_settings_only() {
        let p = Profile::named("default").unwrap();
        let a = cache_key(Path::new("ffmpeg"), &p, 10);
        assert_eq!(a, cache_key(Path::new("ffmpeg"), &p, 10));
        assert_ne!(a, cache_key(Path::new("ffmpeg"), &p, 12));
        let mut d = p.clone();
        d.logging = crate::profile::Logging::Debug;
        assert_eq!(a, cache_key(Path::new("ffmpeg"), &d, 10), "log level is not part of the key");
        let mut q = p.clone();
        q.fps = 25;
        assert_ne!(a, cache_key(Path::new("ffmpeg"), &q, 10));
    }
}
