//! The relay on its own, against the real origin's nginx: forwarding, keep-alive, what it
//! reports, blind CONNECT tunnels and connection failures.

use std::time::Duration;

use swarm::engine::ffmpeg::relay::{Relay, Route, Tls};
use swarm::engine::trust::Trust;
use swarm::measure::events::{EventKind, EventSink, Message, RequestKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

fn route() -> Route {
    Route {
        resolve: None,
        timeout: Duration::from_secs(5),
        tls: None,
        secrets: Default::default(),
        allow_link_local: false,
        limits: Default::default(),
    }
}

/// Reads one response with a Content-Length body; returns (status line, body).
async fn read_response(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a response");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed mid-body");
        buf.extend_from_slice(&chunk[..n]);
    }
    (head.lines().next().unwrap_or_default().to_owned(), buf[head_end..head_end + len].to_vec())
}

#[testkit::test]
async fn forwards_over_one_kept_alive_connection_and_reports_each_request() {
    let _machine = shared_machine().await;
    let origin = start_origin().await;
    let (sink, mut events, _) = EventSink::channel(64);
    let relay = Relay::bind().await.unwrap();
    let proxy = relay.proxy_url();
    let running = relay.serve(7, sink, route());

    let mut s = TcpStream::connect(proxy.trim_start_matches("http://")).await.unwrap();
    let playlist_url = origin.playlist_url();
    let host = origin.listen().to_string();
    let get = |url: &str| format!("GET {url} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: test viewer/7\r\n\r\n");
    s.write_all(get(&playlist_url).as_bytes()).await.unwrap();
    let (status, body) = read_response(&mut s).await;
    assert!(status.contains(" 200 "), "{status}");
    let text = String::from_utf8(body.clone()).unwrap();
    let first = text.lines().find(|l| l.ends_with(".ts")).expect("a segment is listed");
    let seg_url = format!("{}/{first}", origin.base_url().trim_end_matches('/'));
    let on_disk = std::fs::metadata(origin.dir().join(first)).unwrap().len();
    // The same connection again: the origin sees one connection, like a real player's.
    s.write_all(get(&seg_url).as_bytes()).await.unwrap();
    let (status, seg) = read_response(&mut s).await;
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(seg.len() as u64, on_disk);
    drop(s);
    running.close().await;

    let mut got = Vec::new();
    while let Ok(m) = events.try_recv() {
        if let Message::Event(ev) = m {
            got.push(ev);
        }
    }
    let requests: Vec<_> = got
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Request(r) => Some((e.viewer, r.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 2, "{got:?}");
    let (viewer, pl) = &requests[0];
    assert_eq!(
        (*viewer, pl.kind, pl.status, pl.bytes),
        (7, RequestKind::Playlist, Some(200), body.len() as u64)
    );
    assert!(pl.connect.is_some(), "the first request opened the upstream connection");
    let (_, sg) = &requests[1];
    assert_eq!((sg.kind, sg.status, sg.bytes), (RequestKind::Segment, Some(200), on_disk));
    assert!(sg.connect.is_none(), "kept alive: no second connection");
    assert!(sg.media_duration.is_some_and(|d| d > 1.0), "duration learnt from the playlist: {sg:?}");
    let (ttfb, ttlb) = (sg.ttfb.unwrap(), sg.ttlb.unwrap());
    // Ordered, and measured (a loopback GET, far below the 5 s route timeout).
    assert!(ttfb > Duration::ZERO && ttfb <= ttlb && ttlb < Duration::from_secs(5), "{ttfb:?} {ttlb:?}");
    assert!(got.iter().any(|e| matches!(e.kind, EventKind::PlaylistSeen { .. })));
    origin.stop().await.unwrap();
}

#[testkit::test]
async fn connect_tunnels_are_measured_and_refused_origins_get_502() {
    let _machine = shared_machine().await;
    let origin = start_origin().await;
    let (sink, mut events, _) = EventSink::channel(64);
    let relay = Relay::bind().await.unwrap();
    let proxy = relay.proxy_url();
    // With TLS in the relay: what is not TLS inside a CONNECT is passed through blind.
    let tls = Tls::new(Trust::default().client_config()).unwrap();
    let running = relay.serve(1, sink, Route { tls: Some(tls), ..route() });
    let proxy_addr = proxy.trim_start_matches("http://").to_owned();

    // A tunnel to the origin with plain HTTP inside.
    let mut s = TcpStream::connect(&proxy_addr).await.unwrap();
    let target = origin.listen().to_string();
    s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes()).await.unwrap();
    let (status, _) = read_response(&mut s).await;
    assert!(status.contains(" 200 "), "{status}");
    s.write_all(
        format!("GET /stream.m3u8 HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut inside = Vec::new();
    s.read_to_end(&mut inside).await.unwrap();
    assert!(String::from_utf8_lossy(&inside).contains("#EXTM3U"));
    drop(s);

    // Nothing listens on port 9 of loopback: the viewer gets a 502, the run a network error.
    let mut r = TcpStream::connect(&proxy_addr).await.unwrap();
    r.write_all(b"GET http://127.0.0.1:9/x.m3u8 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n").await.unwrap();
    let (status, body) = read_response(&mut r).await;
    assert!(status.contains(" 502 "), "{status}");
    assert!(String::from_utf8_lossy(&body).contains("cannot connect"), "{body:?}");
    drop(r);
    running.close().await;

    let mut tunnel = None;
    let mut refused = None;
    while let Ok(Message::Event(ev)) = events.try_recv() {
        match ev.kind {
            EventKind::Tunnel(t) => tunnel = Some(t),
            EventKind::Request(r) => refused = Some(r),
            _ => {}
        }
    }
    let t = tunnel.expect("the tunnel is reported");
    assert_eq!(t.bytes_down, inside.len() as u64);
    assert!(t.bytes_up > 20 && t.connect.is_some() && t.error.is_none(), "{t:?}");
    let r = refused.expect("the refused request is reported");
    assert_eq!(r.status, None);
    assert!(r.network_error.as_deref().is_some_and(|e| e.contains("127.0.0.1:9")), "{r:?}");
    origin.stop().await.unwrap();
}

/// A playlist may name any host: the relay refuses link-local and cloud metadata addresses
/// before connecting (nothing is sent), answers the viewer 502 and reports the address and
/// the flag.
#[testkit::test]
async fn link_local_and_metadata_addresses_are_refused() {
    let (sink, mut events, _) = EventSink::channel(64);
    let relay = Relay::bind().await.unwrap();
    let proxy = relay.proxy_url();
    let running = relay.serve(2, sink, route());
    for target in ["169.254.169.254", "[fe80::1]", "100.100.100.200"] {
        let mut s = TcpStream::connect(proxy.trim_start_matches("http://")).await.unwrap();
        let get = format!("GET http://{target}/latest/meta-data/ HTTP/1.1\r\nHost: {target}\r\n\r\n");
        s.write_all(get.as_bytes()).await.unwrap();
        let (status, body) = read_response(&mut s).await;
        assert!(status.contains(" 502 "), "{target}: {status}");
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("refused to connect") && body.contains("--allow-link-local"), "{body}");
    }
    running.close().await;
    let mut refused = Vec::new();
    while let Ok(Message::Event(ev)) = events.try_recv() {
        if let EventKind::Request(r) = ev.kind {
            refused.push(r.network_error.unwrap_or_default());
        }
    }
    assert_eq!(refused.len(), 3, "{refused:?}");
    for (e, addr) in refused.iter().zip(["169.254.169.254:80", "[fe80::1]:80", "100.100.100.200:80"]) {
        assert!(
            e.contains(&format!("refused to connect to {addr}")) && e.contains("--allow-link-local"),
            "{e}"
        );
    }
}
