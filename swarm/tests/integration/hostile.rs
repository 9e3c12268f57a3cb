//! Streams the swarm does not control: `--check` is bounded in time, judges real-time
//! delivery, and ends at once on a signal.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use swarm::engine::ffmpeg::relay::{Relay, Route};
use swarm::measure::events::{EventKind, EventSink, Message, Problem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use crate::playback::trickling_server;

/// Segments at 2 KB/s: the playlists answer, the segment never completes within --timeout.
#[testkit::test]
fn check_calls_a_trickling_stream_not_playable_in_real_time() {
    let (port, done) = trickling_server(Duration::from_secs(60));
    let url = format!("http://127.0.0.1:{port}/live.m3u8");
    let t = Instant::now();
    let out = run_swarm(&["--check", "--timeout", "3s", &url]);
    let took = t.elapsed();
    done.store(true, Ordering::Relaxed);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(stdout.contains("✗ not playable in real time: segment of 2.0 s"), "{stdout}");
    assert!(stdout.contains("was not complete after 3s (--timeout)"), "{stdout}");
    // Bounded: three requests of at most --timeout each, far below the minutes a trickle takes.
    assert!(took < Duration::from_secs(30), "--check took {took:?}");
}

/// SIGTERM while `--check` waits on a trickling segment ends it at once (exit 130).
#[testkit::test]
fn a_signal_ends_check_at_once() {
    let (port, done) = trickling_server(Duration::from_secs(90));
    let url = format!("http://127.0.0.1:{port}/live.m3u8");
    let mut child = swarm()
        .args(["--check", "--timeout", "60s", &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let sent = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let exited = wait_for(Duration::from_secs(30), || child.try_wait().unwrap());
    done.store(true, Ordering::Relaxed);
    let status = exited.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("--check still running 30 s after SIGTERM")
    });
    let out = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(130), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("interrupted before the run started"),
        "{}",
        text(&out)
    );
    assert!(sent.elapsed() < Duration::from_secs(30));
}

/// A server with a pathological answer per path.
pub(crate) fn hostile_server() -> (u16, Arc<AtomicBool>) {
    serve_for(Duration::from_secs(120), |sock, _, _| answer(sock))
}

fn answer(sock: TcpStream) {
    let _ = sock.set_write_timeout(Some(Duration::from_secs(10)));
    let Some(path) = request_target(&sock) else { return };
    let mut sock = sock;
    let media = |lines: &str| {
        format!("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n{lines}")
    };
    let playlist = |sock: &mut TcpStream, body: &str, kind: &str| {
        let _ = write!(
            sock,
            "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    };
    const M3U8: &str = "application/vnd.apple.mpegurl";
    match path.as_str() {
        "/loop.m3u8" => {
            let _ = write!(sock, "HTTP/1.1 302 Found\r\nLocation: /loop.m3u8\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
        "/big.m3u8" => {
            let entry = "#EXTINF:2.0,\nsegment-0000000000.ts\n";
            let count = 36_000_000 / entry.len();
            let head = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n";
            let _ = write!(
                sock,
                "HTTP/1.1 200 OK\r\nContent-Type: {M3U8}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
                head.len() + count * entry.len()
            );
            let block = entry.repeat(1000);
            for _ in 0..count / 1000 {
                if sock.write_all(block.as_bytes()).is_err() {
                    return;
                }
            }
            let _ = sock.write_all(entry.repeat(count % 1000).as_bytes());
        }
        "/garbage-master.m3u8" => playlist(
            &mut sock,
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=lots,RESOLUTION=wide,CODECS=\"\nv.m3u8\n#EXT-X-STREAM-INF:\n\n",
            M3U8,
        ),
        "/absurd.m3u8" => playlist(
            &mut sock,
            "#EXTM3U\n#EXT-X-TARGETDURATION:99999999999999999999\n#EXT-X-MEDIA-SEQUENCE:18446744073709551616\n\
             #EXTINF:1e308,\ns1.ts\n#EXTINF:-5,\ns2.ts\n",
            M3U8,
        ),
        "/html.m3u8" => playlist(&mut sock, "<!doctype html><html><body>Sign in</body></html>", "text/html"),
        "/link-local.m3u8" => playlist(&mut sock, &media("#EXTINF:2.0,\nhttp://169.254.169.254/latest/s1.ts\n"), M3U8),
        "/scheme.m3u8" => playlist(&mut sock, &media("#EXTINF:2.0,\nfile:///etc/passwd\n"), M3U8),
        "/long-uri.m3u8" => {
            playlist(&mut sock, &media(&format!("#EXTINF:2.0,\n/{}.ts\n", "a".repeat(9000))), M3U8);
        }
        "/long-line.m3u8" => {
            playlist(&mut sock, &media(&format!("#EXTINF:2.0,{}\ns1.ts\n", "t".repeat(70_000))), M3U8);
        }
        "/many.m3u8" => playlist(&mut sock, &media(&"#EXTINF:2.0,\ns.ts\n".repeat(20)), M3U8),
        _ => playlist(&mut sock, "not found", "text/plain"),
    }
}

/// Each pathological answer gets its documented message and exit code, in bounded time, and
/// no request ever goes to the link-local address a playlist names.
#[testkit::test]
fn check_names_each_hostile_answer() {
    let (port, done) = hostile_server();
    for (path, code, needle) in [
        ("/loop.m3u8", 6, "more than 5 redirects"),
        (
            "/big.m3u8",
            6,
            "larger than 4194304 bytes, the most the probe reads of it (--max-playlist-size raises it)",
        ),
        ("/garbage-master.m3u8", 6, "is not a usable HLS playlist"),
        ("/absurd.m3u8", 6, "is not a usable HLS playlist"),
        ("/html.m3u8", 6, "is not a usable HLS playlist"),
        ("/link-local.m3u8", 4, "refused to connect to 169.254.169.254:80"),
        ("/scheme.m3u8", 6, "scheme 'file'"),
        ("/long-uri.m3u8", 6, "line 6: a URI longer than 8192 bytes (--max-uri-length raises it)"),
        ("/long-line.m3u8", 6, "a line longer than 65536 bytes (--max-line-length raises it)"),
        (
            "/many.m3u8 --max-segments 10",
            6,
            "line 26: more than 10 segments (or variants, renditions or parts) (--max-segments raises it)",
        ),
    ] {
        let t = Instant::now();
        let (path, flags) = path.split_once(' ').unwrap_or((path, ""));
        let url = format!("http://127.0.0.1:{port}{path}");
        let args: Vec<&str> =
            ["--check", "--timeout", "5s", &url].into_iter().chain(flags.split_whitespace()).collect();
        let out = run_swarm(&args);
        let took = t.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{path}: {}", text(&out));
        assert!(stdout.contains(needle), "{path}: wanted {needle:?}\n{}", text(&out));
        assert!(took < Duration::from_secs(30), "{path}: --check took {took:?}");
    }
    done.store(true, Ordering::Relaxed);
}

/// A 36 MB playlist through the relay: forwarded whole, and the relay says it could not read
/// it (before, it was forwarded silently and the player model knew none of its segments).
#[testkit::test]
async fn the_relay_says_when_a_playlist_is_too_large_to_read() {
    let (port, done) = hostile_server();
    let (sink, mut events, _) = EventSink::channel(64);
    let relay = Relay::bind().await.unwrap();
    let proxy = relay.proxy_url();
    let route = Route {
        resolve: None,
        timeout: Duration::from_secs(30),
        tls: None,
        secrets: Default::default(),
        allow_link_local: false,
        limits: Default::default(),
    };
    let running = relay.serve(4, sink, route);
    let mut s = tokio::net::TcpStream::connect(proxy.trim_start_matches("http://")).await.unwrap();
    let host = format!("127.0.0.1:{port}");
    let get = format!("GET http://{host}/big.m3u8 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(get.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    running.close().await;
    done.store(true, Ordering::Relaxed);
    let body = got.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |p| got.len() - p - 4);
    let entry = "#EXTINF:2.0,\nsegment-0000000000.ts\n".len();
    assert_eq!(
        body,
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n".len() + 36_000_000 / entry * entry,
        "forwarded whole"
    );
    let mut said = Vec::new();
    while let Ok(Message::Event(ev)) = events.try_recv() {
        if let EventKind::Problem(Problem::Unreadable(text)) = ev.kind {
            said.push(text);
        }
    }
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0]
            .contains("is larger than 4194304 bytes (--max-playlist-size raises it): forwarded but not read"),
        "{said:?}"
    );
}
