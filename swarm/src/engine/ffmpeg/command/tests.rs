use super::*;
use crate::control::cli::Cli;
use crate::control::config::Config;
use clap::Parser;

/// Option names of Debian 12's FFmpeg 5.1.9 (`ffmpeg -h full`, first column).
const FFMPEG_51: &str = include_str!("../../../../testdata/ffmpeg-5.1-options.txt");

fn caps_51() -> Capabilities {
    Capabilities::from_help(FFMPEG_51)
}

fn caps_newer() -> Capabilities {
    Capabilities::from_help(&format!("{FFMPEG_51}\n-seg_max_retry <int> .D.... retry\n"))
}

fn command_line(args: &[&str], caps: &Capabilities, selection: Selection, viewer: u32) -> String {
    let mut argv = vec!["hls-swarm"];
    argv.extend_from_slice(args);
    let config = Config::from_cli(&Cli::try_parse_from(argv).unwrap(), false).unwrap();
    ViewerCommand {
        options: &config.ffmpeg,
        http: &config.http,
        caps,
        url: &config.url,
        selection,
        viewer,
        proxy: None,
        secrets: &config.secrets,
    }
    .display()
}

fn relayed(args: &[&str], caps: &Capabilities) -> String {
    let mut argv = vec!["hls-swarm"];
    argv.extend_from_slice(args);
    let config = Config::from_cli(&Cli::try_parse_from(argv).unwrap(), false).unwrap();
    let url = &config.url;
    let proxy = Some("http://127.0.0.1:40001");
    ViewerCommand {
        options: &config.ffmpeg,
        http: &config.http,
        caps,
        url,
        selection: Selection::All,
        viewer: 3,
        proxy,
        secrets: &config.secrets,
    }
    .display()
}

const URL: &str = "http://origin.test:17080/stream.m3u8";

#[test]
fn capabilities_of_debian_51() {
    let caps = caps_51();
    assert!(caps.has("protocol_whitelist"));
    assert!(caps.has("reconnect_on_network_error"));
    assert!(caps.has("rw_timeout"));
    assert!(!caps.has("seg_max_retry"), "5.1 rejects -seg_max_retry");
    assert!(caps_newer().has("seg_max_retry"));
}

#[test]
fn argv_per_option_combination() {
    let c51 = caps_51();
    let cnew = caps_newer();
    let cases: Vec<(&str, String)> = vec![
        ("defaults, ffmpeg 5.1, viewer 0", command_line(&[URL], &c51, Selection::All, 0)),
        ("defaults, newer ffmpeg, viewer 7", command_line(&[URL], &cnew, Selection::All, 7)),
        (
            "no reconnect, 3s timeout",
            command_line(&["--reconnect=false", "--timeout", "3s", URL], &c51, Selection::All, 1),
        ),
        ("reconnect delay 10s", command_line(&["--reconnect-delay", "10s", URL], &c51, Selection::All, 1)),
        ("no-cache", command_line(&["--no-cache", URL], &c51, Selection::All, 1)),
        (
            "through a relay, resolve is the relay's job: URL and Host unchanged",
            relayed(
                &["--resolve", "10.177.0.10", "--dangerous", "https://cdn.example/live/master.m3u8"],
                &c51,
            ),
        ),
        (
            "headers and user agent",
            command_line(
                &["-H", "X-Test: 1", "--header", "Referer: https://a.example/", "--user-agent", "lab/2", URL],
                &c51,
                Selection::All,
                2,
            ),
        ),
        (
            "resolve on http keeps host and port in Host",
            command_line(&["--resolve", "10.177.0.10", "--dangerous", URL], &c51, Selection::All, 0),
        ),
        (
            "resolve on https turns off certificate checks",
            command_line(
                &["--resolve", "10.177.0.10", "--dangerous", "https://cdn.example/live/master.m3u8"],
                &c51,
                Selection::All,
                0,
            ),
        ),
        ("resolve to ipv6", command_line(&["--resolve", "::1", "--dangerous", URL], &c51, Selection::All, 0)),
        ("variant first", command_line(&["--variant", "first", URL], &c51, Selection::First, 0)),
        ("variant program 2", command_line(&["--variant", "highest", URL], &c51, Selection::Program(2), 0)),
        (
            "secrets redacted",
            command_line(
                &[
                    "-H",
                    "Authorization: Bearer abc",
                    "-H",
                    "Cookie: s=1",
                    "-H",
                    "X-Auth-Token: t",
                    "-H",
                    "X-Plain: shown",
                    URL,
                ],
                &c51,
                Selection::All,
                0,
            ),
        ),
        (
            "quoting of odd binary path",
            command_line(&["--ffmpeg", "/opt/my ffmpeg/bin/ffmpeg", URL], &c51, Selection::All, 0),
        ),
    ];
    let text: String = cases.iter().map(|(name, line)| format!("# {name}\n{line}\n\n")).collect();
    insta::assert_snapshot!(text);
}

#[test]
fn argv_never_uses_options_the_binary_lacks() {
    let caps = caps_51();
    let config = |url: &str| {
        let argv = ["hls-swarm", "--no-cache", "--resolve", "1.2.3.4", "--dangerous", "-H", "X-A: 1", url];
        Config::from_cli(&Cli::try_parse_from(argv).unwrap(), false).unwrap()
    };
    // Every branch that adds options: https with --resolve and no relay adds -tls_verify,
    // a relay adds -http_proxy, each selection its -map.
    let mut seen = std::collections::BTreeSet::new();
    for url in ["https://h/x.m3u8", "http://h/x.m3u8"] {
        let config = config(url);
        for proxy in [None, Some("http://127.0.0.1:1")] {
            for selection in [Selection::All, Selection::First, Selection::Program(1)] {
                let argv = ViewerCommand {
                    options: &config.ffmpeg,
                    http: &config.http,
                    caps: &caps,
                    url: &config.url,
                    selection,
                    viewer: 0,
                    proxy,
                    secrets: &config.secrets,
                }
                .argv();
                for arg in argv.iter().skip(1).filter_map(|a| a.to_str()?.strip_prefix('-')) {
                    if arg.is_empty() || arg.contains(['+', ':', '/']) || arg.parse::<f64>().is_ok() {
                        continue; // values such as "-" (stdout) or "0:v:0?"
                    }
                    assert!(
                        caps.has(arg)
                            || ["i", "map", "c", "f", "loglevel", "nostdin", "hide_banner", "nostats"]
                                .contains(&arg),
                        "-{arg} is not an option of FFmpeg 5.1"
                    );
                    seen.insert(arg.to_owned());
                }
            }
        }
    }
    for branch in ["tls_verify", "http_proxy", "headers", "reconnect_on_network_error", "map"] {
        assert!(seen.contains(branch), "-{branch} never emitted: {seen:?}");
    }
}

#[test]
fn shell_quote_round_trips_through_bash() {
    for word in ["plain", "with space", "it's", "a\r\nb", "$HOME", "back\\slash", "", "tab\there"] {
        let quoted = shell_quote(word);
        let out =
            std::process::Command::new("bash").args(["-c", &format!("printf %s {quoted}")]).output().unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), word, "quoted as {quoted}");
    }
}
