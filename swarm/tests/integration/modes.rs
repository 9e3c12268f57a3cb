//! Modes that start no viewers, and bad input.

use crate::common::*;

#[testkit::test]
fn print_cmd_shows_the_probed_command() {
    let url = "http://127.0.0.1:9/live/stream.m3u8";
    let header = "Authorization: Bearer tok-4711";
    let out = run_swarm(&["--print-cmd", "-H", header, url]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout.contains("ffmpeg -hide_banner -nostdin"), "{stdout}");
    assert!(stdout.contains("-i http://127.0.0.1:9/live/stream.m3u8"), "{stdout}");
    // Through the relay the header is not FFmpeg's at all (the relay adds it); with
    // --measure log it is, and shown redacted.
    assert!(!stdout.contains("Authorization") && !stdout.contains("tok-4711"), "{stdout}");
    let log = run_swarm(&["--print-cmd", "--measure", "log", "-H", header, url]);
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(log.contains("Authorization: <redacted>") && !log.contains("tok-4711"), "{log}");
    // Debian 12's FFmpeg 5.1 rejects -seg_max_retry: never emitted when the binary lacks it.
    let installed_lacks_it = !String::from_utf8_lossy(
        &std::process::Command::new("ffmpeg").args(["-hide_banner", "-h", "full"]).output().unwrap().stdout,
    )
    .contains("-seg_max_retry");
    if installed_lacks_it {
        assert!(!stdout.contains("seg_max_retry"), "{stdout}");
    }
}

#[testkit::test]
fn bad_input_exits_2_with_a_message_naming_the_value() {
    for (args, needle) in [
        (vec!["ftp://h/x.m3u8"], "unsupported URL scheme 'ftp'"),
        (vec!["--clients", "0", "http://h/x.m3u8"], "--clients 0 is out of range"),
        (vec!["--duration", "soon", "http://h/x.m3u8"], "'soon'"),
        (vec!["--variant", "best", "http://h/x.m3u8"], "'best'"),
        (vec!["--resolve", "10.0.0.1", "http://h/x.m3u8"], "needs --dangerous"),
        (vec!["--assert", "ttfb<1s", "http://h/x.m3u8"], "--assert 'ttfb<1s': unknown field 'ttfb'"),
        (vec!["--assert", "error_rate<5ms", "http://h/x.m3u8"], "ratios take %"),
        (vec!["--measure", "magic", "http://h/x.m3u8"], "'magic'"),
        (
            vec!["--ca-file", "/no/such/ca.pem", "https://h/x.m3u8"],
            "--ca-file '/no/such/ca.pem' is not usable",
        ),
        (vec![], "no stream URL given"),
    ] {
        let out = run_swarm(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "nothing started: {}", text(&out));
    }
}

#[testkit::test]
fn missing_ffmpeg_is_a_preflight_failure() {
    let out = run_swarm(&["--ffmpeg", "/nonexistent/ffmpeg", "http://127.0.0.1:9/x.m3u8"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ffmpeg"), "{}", text(&out));
}
