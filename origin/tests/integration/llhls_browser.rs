//! The ll-hls origin's acceptance test: hls.js, an LL-HLS player no one here wrote, plays it
//! in headless Chromium in low-latency mode, through nginx's port, and stays within 3 s of
//! the live edge (measured from `EXT-X-PROGRAM-DATE-TIME` against the wall clock). It also
//! plays the `ll-hls-abr` ladder and switches rendition once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use testkit::Outcome;

/// The page that plays the stream and reports (served with hls.js by [`serve_page`]).
const PLAYER: &str = include_str!("llhls_player.html");
/// `make deps-test` fetches hls.js with this script; the version is read from it.
const FETCH: &str = include_str!("../../../scripts/fetch-hlsjs");
/// Seconds of play before the page reports.
const PLAY_SECONDS: u32 = 15;
/// The whole browser run, start-up and report included, ends within this.
const BROWSER_LIMIT: Duration = Duration::from_secs(90);

/// hls.min.js where scripts/fetch-hlsjs puts it (or `HLS_LAB_HLSJS`).
fn hls_js() -> Result<PathBuf, testkit::Skip> {
    let version = FETCH.lines().find_map(|l| l.strip_prefix("version=")).expect("a version= line");
    let path = std::env::var_os("HLS_LAB_HLSJS").map_or_else(
        || {
            let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
                || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"),
                PathBuf::from,
            );
            cache.join(format!("hls-lab/hls.js/{version}/hls.min.js"))
        },
        PathBuf::from,
    );
    testkit::need::installed(
        &format!("hls.js {version} at {}", path.display()),
        path.is_file(),
        "`make deps-test` fetches it with scripts/fetch-hlsjs",
    )?;
    Ok(path)
}

/// Serves the player page and hls.js on loopback and passes on the page's one report, until
/// `deadline`. Each connection is answered on its own short-lived thread.
fn serve_page(hls_js: Vec<u8>, deadline: Instant) -> (SocketAddr, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    let hls_js = std::sync::Arc::new(hls_js);
    std::thread::spawn(move || {
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((sock, _)) => {
                    let (tx, hls_js) = (tx.clone(), hls_js.clone());
                    std::thread::spawn(move || answer(sock, &hls_js, &tx));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (addr, rx)
}

fn answer(sock: TcpStream, hls_js: &[u8], tx: &mpsc::Sender<String>) {
    let _ = sock.set_nonblocking(false);
    let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(sock.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut length = 0;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, kind, body): (&str, &str, &[u8]) = if line.starts_with("POST /result") {
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
        ("204 No Content", "text/plain", b"")
    } else if path.starts_with("/player.html") {
        ("200 OK", "text/html", PLAYER.as_bytes())
    } else if path == "/hls.min.js" {
        ("200 OK", "text/javascript", hls_js)
    } else {
        ("404 Not Found", "text/plain", b"")
    };
    let mut sock = sock;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = sock.write_all(head.as_bytes()).and_then(|()| sock.write_all(body));
}

/// Starts `profile` (scaled down), lets hls.js play it in headless Chromium with the page's
/// `options` (a query string) and returns the page's report.
async fn play(profile: &str, options: &str) -> Result<serde_json::Value, testkit::Skip> {
    testkit::need::program("ffmpeg")?;
    let chromium = testkit::chromium::program()?;
    let hls_js = std::fs::read(hls_js()?).unwrap();
    let origin = origin::start(crate::common::small(profile, origin::Source::Replay)).await.unwrap();
    let src = origin.playlist_url();
    let (page, report) = serve_page(hls_js, Instant::now() + BROWSER_LIMIT);

    let profile = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(chromium);
    cmd.args(testkit::chromium::FLAGS)
        .arg("--autoplay-policy=no-user-gesture-required")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("http://{page}/player.html?src={src}&seconds={PLAY_SECONDS}{options}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut browser = procgroup::spawn(&mut cmd).expect("chromium starts");
    let got = tokio::task::spawn_blocking(move || report.recv_timeout(BROWSER_LIMIT)).await.unwrap();
    let _ = browser.stop(Duration::from_secs(5)).await;
    origin.stop().await.unwrap();
    let text = got.expect("the player page reports within 90 s");
    Ok(serde_json::from_str(&text).unwrap())
}

#[testkit::test]
async fn hls_js_plays_the_ll_hls_origin_in_low_latency_mode_within_3_s_of_the_live_edge() -> Outcome {
    let r = play("ll-hls", "").await?;
    let text = r.to_string();

    assert_eq!(r["supported"], true, "Chromium has Media Source Extensions for hls.js: {text}");
    let fatal: Vec<&serde_json::Value> =
        r["errors"].as_array().unwrap().iter().filter(|e| e["fatal"] == true).collect();
    assert!(fatal.is_empty(), "fatal player errors: {fatal:?}");
    assert_eq!(r["lowLatencyMode"], true, "{text}");
    assert_eq!(r["canBlockReload"], true, "hls.js read EXT-X-SERVER-CONTROL: {text}");
    assert!(r["parts"].as_u64().unwrap() > 0, "hls.js loaded parts: {text}");
    let mut samples: Vec<f64> =
        r["samples"].as_array().unwrap().iter().filter_map(serde_json::Value::as_f64).collect();
    assert!(!samples.is_empty(), "it played: {text}");
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    println!(
        "hls.js {}: {} parts, median live-edge latency {median:.2} s (PDT), max {:.2} s, {} stalls",
        r["version"],
        r["parts"],
        samples[samples.len() - 1],
        r["stalls"]
    );
    assert!(median < 3.0, "median live-edge latency {median:.2} s, not under 3 s: {text}");
    Ok(())
}

/// The `ll-hls-abr` ladder: hls.js reads the master, plays in low-latency mode, and switches
/// rendition once when asked (an ABR switch, where an LL-HLS player can start the new
/// rendition from the old one's rendition reports), loading parts of the new rendition.
#[testkit::test]
async fn hls_js_plays_the_ll_hls_abr_ladder_and_switches_rendition() -> Outcome {
    // Report once a part of the new rendition loaded, or at the latest after 60 s.
    let r = play("ll-hls-abr", "&switch=1&limit=60").await?;
    let text = r.to_string();
    assert_eq!(r["supported"], true, "Chromium has Media Source Extensions for hls.js: {text}");
    let fatal: Vec<&serde_json::Value> =
        r["errors"].as_array().unwrap().iter().filter(|e| e["fatal"] == true).collect();
    assert!(fatal.is_empty(), "fatal player errors: {fatal:?}");
    assert_eq!(r["levels"], 3, "hls.js read the three renditions of the master: {text}");
    assert_eq!(r["lowLatencyMode"], true, "{text}");
    assert_eq!(r["canBlockReload"], true, "hls.js read EXT-X-SERVER-CONTROL: {text}");
    assert!(r["switchedTo"].is_u64(), "the page asked for a switch: {text}");
    assert!(r["partsAfterSwitch"].as_u64().unwrap() > 0, "hls.js loaded parts of the new rendition: {text}");
    println!(
        "hls.js {}: {} parts, rendition {} -> {}, {} parts after the switch",
        r["version"], r["parts"], r["switchedFrom"], r["switchedTo"], r["partsAfterSwitch"]
    );
    Ok(())
}
