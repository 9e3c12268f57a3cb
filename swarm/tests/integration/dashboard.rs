//! The live dashboard in a real terminal: the swarm runs inside tmux (its own server on a
//! private socket) against the real origin; the test reads the screen, presses keys, and
//! checks that `q` ends the run cleanly and gives the terminal back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::*;

/// A tmux server of our own, killed (with everything in it) when dropped.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket);
        c
    }

    fn run(&self, args: &[&str]) {
        let out =
            self.cmd().args(args).output().expect("tmux runs (scripts/install-deps --test installs it)");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The pane's text, with up to 200 lines of history.
    fn screen(&self) -> String {
        let out = self.cmd().args(["capture-pane", "-p", "-J", "-S", "-200", "-t", "swarm"]).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
    }

    /// Waits up to `limit` for the screen to contain every one of `needles`.
    fn wait_screen(&self, limit: Duration, needles: &[&str]) -> String {
        let found = wait_for(limit, || {
            let s = self.screen();
            needles.iter().all(|n| s.contains(n)).then_some(s)
        });
        found.unwrap_or_else(|| panic!("screen never showed {needles:?}; it shows:\n{}", self.screen()))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn command_line(bin: &Path, args: &[String]) -> String {
    let mut line = format!("env HLS_SWARM_METRICS=off {}", shell_quote(&bin.display().to_string()));
    for a in args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    // After the swarm: its exit code, and whether the terminal is back in canonical mode.
    line.push_str(
        "; echo EXIT=$?; echo TTY=$(stty -a | tr ' ;' '\\n\\n' | grep -x -- '-\\?icanon'); sleep 300",
    );
    line
}

#[testkit::test]
async fn dashboard_shows_the_run_and_quits_cleanly_on_q() -> testkit::Outcome {
    testkit::need::program("tmux")?;
    let _machine = shared_machine().await;
    let logs = tempfile::tempdir().expect("tempdir");
    let origin = start_logged_origin(true, logs.path()).await;
    let (node, nginx) =
        (origin.node_exporter().expect("node exporter"), origin.nginx_exporter().expect("nginx exporter"));
    let args: Vec<String> = [
        "--clients",
        "3",
        "--ramp-rate",
        "10",
        "--duration",
        "2m",
        "--origin-metrics",
        &format!("http://{node}/metrics"),
        "--nginx-metrics",
        &format!("http://{nginx}/metrics"),
        &origin.playlist_url(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let tmux = Tmux { socket: dir.path().join("tmux.sock") };
    let line = command_line(&swarm_bin(), &args);
    let tmux = tokio::task::spawn_blocking(move || {
        tmux.run(&["-f", "/dev/null", "new-session", "-d", "-s", "swarm", "-x", "120", "-y", "40", &line]);

        // The overview: every viewer streaming, measured latencies, the origin's figures.
        let screen = tmux.wait_screen(
            Duration::from_secs(60),
            &["hls-swarm", "Latency (run)", "streaming  3/3", "started 3/3", "nginx ", "conns"],
        );
        assert!(screen.contains("seg TTFB"), "{screen}");
        assert!(screen.contains("q  quit"), "{screen}");
        assert!(!screen.contains("Preflight checks"), "the dashboard has the screen to itself:\n{screen}");

        // `d`: the per-viewer table; `s`: sorted by state.
        tmux.run(&["send-keys", "-t", "swarm", "d"]);
        let screen = tmux.wait_screen(Duration::from_secs(10), &["Viewers 1–3 of 3 · sorted by viewer"]);
        for v in 0..3 {
            assert!(screen.contains(&format!("│{v}      running")), "viewer {v} in the table:\n{screen}");
        }
        tmux.run(&["send-keys", "-t", "swarm", "s"]);
        tmux.wait_screen(Duration::from_secs(10), &["sorted by state"]);

        // `q`: a graceful stop, the summary on the normal screen, exit 0, terminal restored.
        tmux.run(&["send-keys", "-t", "swarm", "q"]);
        let screen = tmux.wait_screen(Duration::from_secs(60), &["EXIT=", "TTY="]);
        assert!(screen.contains("EXIT=0"), "{screen}");
        assert!(screen.contains("TTY=icanon"), "raw mode must be undone:\n{screen}");
        assert!(screen.contains("═══ hls-swarm summary ═══"), "{screen}");
        assert!(screen.contains("stopped from the dashboard"), "{screen}");
        assert!(
            screen.contains("Preflight checks"),
            "back on the normal screen, with what was there:\n{screen}"
        );
        let segments = summary_number(&screen, "Requests", "segments").unwrap_or(0);
        assert!(segments >= 3, "{screen}");
        tmux
    })
    .await
    .expect("tmux steps");
    drop(tmux);
    origin.stop().await.expect("origin stops");
    Ok(())
}
