//! The address policy against a real link-local server, inside a network namespace this test
//! creates (the address belongs to that namespace's loopback; nothing is sent to the host's
//! link-local network or a metadata service).

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;

const ADDR: &str = "169.254.77.1";

/// The namespace, deleted when dropped.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().unwrap();
    assert!(st.success(), "ip {args:?}");
}

/// A tiny HTTP server on `ADDR` inside `ns`: a live playlist and segments of TS sync bytes.
fn serve_in(ns: &str, done: Arc<AtomicBool>) -> u16 {
    let path = format!("/var/run/netns/{ns}");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).unwrap();
        // SAFETY: setns(2) on a valid namespace fd moves only this thread into the namespace;
        // the listener created next belongs to it.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        let listener = TcpListener::bind((ADDR, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        tx.send(listener.local_addr().unwrap().port()).unwrap();
        while !done.load(Ordering::Relaxed) {
            let Ok((sock, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let target = request_target(&sock).unwrap_or_default();
            let (kind, body) = if target.contains(".m3u8") {
                let pl = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n\
                          #EXTINF:2.0,\ns1.ts\n#EXTINF:2.0,\ns2.ts\n";
                ("application/vnd.apple.mpegurl", pl.as_bytes().to_vec())
            } else {
                ("video/mp2t", vec![0x47u8; 188 * 50])
            };
            let mut sock = sock;
            let _ = write!(
                sock,
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(&body);
        }
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

#[testkit::test]
fn link_local_origin_is_refused_unless_allowed() -> testkit::Outcome {
    testkit::need::root("a network namespace")?;
    testkit::need::program("ip")?;
    let ns = Netns(format!("hlsswarm-ll-{}", std::process::id()));
    ip(&["netns", "add", &ns.0]);
    ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
    ip(&["-n", &ns.0, "addr", "add", &format!("{ADDR}/16"), "dev", "lo"]);
    let done = Arc::new(AtomicBool::new(false));
    let port = serve_in(&ns.0, Arc::clone(&done));
    let url = format!("http://{ADDR}:{port}/live.m3u8");
    let check = |extra: &[&str]| {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.0])
            .arg(swarm_bin())
            .args(["--check", "--metrics", "off", "--timeout", "5s"])
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), text(&out))
    };
    let (code, stdout, all) = check(&[]);
    assert_eq!(code, Some(4), "{all}");
    assert!(
        stdout.contains(&format!("refused to connect to {ADDR}:{port}"))
            && stdout.contains("--allow-link-local"),
        "{all}"
    );
    let (code, stdout, all) = check(&["--allow-link-local"]);
    done.store(true, Ordering::Relaxed);
    assert!(stdout.contains("✓ segment"), "the segment was fetched from the link-local server: {all}");
    assert_eq!(code, Some(0), "{all}");
    Ok(())
}
