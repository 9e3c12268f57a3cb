//! Secrets never leave the swarm process: credentials in the URL, secret headers and a secret
//! query parameter appear nowhere the swarm prints or stores, nor in any FFmpeg's command line
//! (relay mode), and still reach the origin (the relay adds them).

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::{Duration, Instant};

use swarm::engine::ffmpeg::relay::{Relay, Route};
use swarm::engine::secrets::UpstreamSecrets;
use swarm::engine::settings::Header;
use swarm::measure::events::EventSink;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;

const PASSWORD: &str = "Pw-s3cret-1";
const TOKEN: &str = "Tok-s3cret-2";
const BEARER: &str = "Hdr-s3cret-3";
const API_KEY: &str = "Key-s3cret-4";
const SIGNATURE: &str = "Sig-s3cret-5";

fn leaks(text: &str) -> Vec<&'static str> {
    [PASSWORD, TOKEN, BEARER, API_KEY, SIGNATURE].into_iter().filter(|s| text.contains(s)).collect()
}

#[testkit::test]
async fn secrets_reach_the_origin_and_nothing_else() {
    let _machine = shared_machine().await;
    let logs = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let origin = start_logged_origin(false, logs.path()).await;
    let listen = origin.listen();
    let path = origin.playlist_url().rsplit('/').next().unwrap().to_owned();
    let url = format!("http://alice:{PASSWORD}@{listen}/{path}?token={TOKEN}&v=1&cdn_hmac={SIGNATURE}");
    let json = out_dir.path().join("run.json");
    let html = out_dir.path().join("run.html");
    let log = origin.access_log().unwrap();
    let (json2, html2) = (json.clone(), html.clone());

    let (stdout, stderr, status, cmdlines, scrape) = tokio::task::spawn_blocking(move || {
        let mut child = swarm()
            .env("HLS_SWARM_METRICS", "127.0.0.1:0")
            .args(["--clients", "3", "--ramp-rate", "3", "--duration", "12s"])
            .args(["-H", &format!("Authorization: Bearer {BEARER}"), "-H", &format!("X-Api-Key: {API_KEY}")])
            .args(["--redact-param", "CDN_HMAC", "--report"])
            .arg(&json2)
            .arg("--report")
            .arg(&html2)
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut err = child.stderr.take().unwrap();
        let err_thread = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut stdout = String::new();
        let mut metrics = None;
        let mut line = String::new();
        while metrics.is_none() && reader.read_line(&mut line).unwrap_or(0) > 0 {
            metrics = line
                .trim()
                .strip_prefix("Metrics: http://")
                .and_then(|r| r.strip_suffix("/metrics"))
                .map(str::to_owned);
            stdout.push_str(&line);
            line.clear();
        }
        let rest = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = reader.read_to_string(&mut s);
            s
        });
        // Every viewer's command line, once all three run.
        let started = Instant::now();
        let mut cmdlines = Vec::new();
        while started.elapsed() < Duration::from_secs(8) {
            cmdlines = children_of(pid)
                .into_iter()
                .filter_map(|p| std::fs::read(format!("/proc/{}/cmdline", p.pid)).ok())
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .filter(|c| c.contains("-http_proxy"))
                .collect();
            if cmdlines.len() == 3 {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(3));
        let scrape = metrics.map(|m| http_get(&m, "/metrics")).unwrap_or_default();
        let status = child.wait().unwrap();
        stdout.push_str(&rest.join().unwrap());
        (stdout, err_thread.join().unwrap(), status, cmdlines, scrape)
    })
    .await
    .unwrap();
    origin.stop().await.unwrap();

    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(cmdlines.len(), 3, "three viewers ran: {cmdlines:?}");
    assert!(!scrape.is_empty(), "/metrics was scraped");
    let reports = [std::fs::read_to_string(&json).unwrap(), std::fs::read_to_string(&html).unwrap()];
    for (what, text) in [
        ("stdout", stdout.as_str()),
        ("stderr", stderr.as_str()),
        ("the JSON report", reports[0].as_str()),
        ("the HTML report", reports[1].as_str()),
        ("/metrics", scrape.as_str()),
    ]
    .into_iter()
    .chain(cmdlines.iter().map(|c| ("an FFmpeg command line", c.as_str())))
    {
        assert_eq!(leaks(text), Vec::<&str>::new(), "{what} shows a secret:\n{text}");
    }
    assert!(stdout.contains("<redacted>"), "the stream URL is shown, redacted:\n{stdout}");
    assert!(
        summary_number(&stdout, "Requests", "segments").unwrap_or(0) > 3,
        "the viewers played:\n{stdout}"
    );
    // The origin got the stream URL's secret parameters from the relay.
    let access = std::fs::read_to_string(log).unwrap();
    let entry = access.lines().filter(|l| l.contains(" viewer/") && l.contains(&format!("/{path}?"))).count();
    assert!(entry >= 3, "each viewer's first request carried the token:\n{access}");
    assert!(
        access.lines().any(|l| l.contains(&format!("token={TOKEN}&v=1&cdn_hmac={SIGNATURE}"))),
        "{access}"
    );
}

/// Reads one request head from `s`.
async fn head_of(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before a head");
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[testkit::test]
async fn the_relay_adds_credentials_parameters_and_headers_upstream() {
    // A server that records each request head and answers an empty 200.
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = server.local_addr().unwrap().port();
    let heads = tokio::spawn(async move {
        let mut heads = Vec::new();
        let (mut s, _) = server.accept().await.unwrap();
        for _ in 0..2 {
            heads.push(head_of(&mut s).await);
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await.unwrap();
        }
        heads
    });
    let secrets = UpstreamSecrets {
        public_entry: format!("http://127.0.0.1:{port}/live/x.m3u8"),
        entry_target: format!("/live/x.m3u8?token={TOKEN}"),
        authority: ("127.0.0.1".into(), port),
        basic: Some("Basic YWxpY2U6cHc=".into()),
        headers: vec![Header { name: "X-Api-Key".into(), value: API_KEY.into() }],
    };
    let route = Route {
        resolve: None,
        timeout: Duration::from_secs(5),
        tls: None,
        secrets: std::sync::Arc::new(secrets),
        allow_link_local: false,
        limits: Default::default(),
    };
    let (sink, _events, _) = EventSink::channel(64);
    let relay = Relay::bind().await.unwrap();
    let proxy = relay.proxy_url();
    let running = relay.serve(1, sink, route);
    let mut c = TcpStream::connect(proxy.trim_start_matches("http://")).await.unwrap();
    let host = format!("127.0.0.1:{port}");
    for path in ["/live/x.m3u8", "/live/seg1.ts"] {
        c.write_all(format!("GET http://{host}{path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut resp = [0u8; 256];
        let n = c.read(&mut resp).await.unwrap();
        assert!(String::from_utf8_lossy(&resp[..n]).starts_with("HTTP/1.1 200"));
    }
    drop(c);
    running.close().await;
    let heads = heads.await.unwrap();
    assert!(heads[0].starts_with(&format!("GET /live/x.m3u8?token={TOKEN} HTTP/1.1\r\n")), "{}", heads[0]);
    assert!(
        heads[1].starts_with("GET /live/seg1.ts HTTP/1.1\r\n"),
        "only the stream URL gets its parameters: {}",
        heads[1]
    );
    for h in &heads {
        assert!(h.contains("\r\nAuthorization: Basic YWxpY2U6cHc=\r\n"), "{h}");
        assert!(h.contains(&format!("\r\nX-Api-Key: {API_KEY}\r\n")), "{h}");
    }
}
