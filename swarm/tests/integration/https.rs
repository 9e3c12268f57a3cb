//! HTTPS measured like HTTP: nginx serving TLS with a certificate from a CA made by the test.
//! The relay ends the viewers' TLS and opens its own, checked, TLS to nginx; its counts must
//! equal nginx's access log.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use crate::common::*;

/// Writes `ca.pem` and, signed by it, `cert.pem` + `key.pem` for 127.0.0.1 into `dir`.
fn make_ca_and_server_cert(dir: &Path) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "hls-swarm test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
}

/// An origin with an access log and an https listener whose certificate comes from a CA made
/// for it.
struct TlsOrigin {
    origin: origin::Origin,
    /// The playlist's https:// URL.
    url: String,
    /// The CA's file, for `--ca-file`.
    ca: String,
    /// nginx's access log.
    log: std::path::PathBuf,
    /// The certificates and logs, removed when the test ends.
    _dirs: [tempfile::TempDir; 2],
}

impl TlsOrigin {
    /// The `logged` profile's origin.
    async fn start() -> TlsOrigin {
        TlsOrigin::of("logged").await
    }

    async fn of(profile: &str) -> TlsOrigin {
        let certs = tempfile::tempdir().unwrap();
        make_ca_and_server_cert(certs.path());
        let logs = tempfile::tempdir().unwrap();
        let mut config = profile_config(profile, false, logs.path());
        config.tls = Some(origin::TlsListen {
            listen: "127.0.0.1:0".parse().expect("addr"),
            cert: certs.path().join("cert.pem"),
            key: certs.path().join("key.pem"),
        });
        let origin = origin::start(config).await.expect("origin starts");
        let tls = origin.tls_listen().expect("an https listener");
        let path = origin.playlist_url().rsplit('/').next().unwrap().to_owned();
        let url = format!("https://{tls}/{path}");
        let ca = certs.path().join("ca.pem").to_str().unwrap().to_owned();
        let log = origin.access_log().expect("logged profile has an access log");
        TlsOrigin { origin, url, ca, log, _dirs: [certs, logs] }
    }
}

/// Two native runs of `load` against `url` (trusting `ca`): with `--http2` as User-Agent
/// `two`, then without as `one`, so the one access log tells them apart.
async fn with_and_without_http2(
    url: String,
    ca: String,
    load: &[&'static str],
) -> (std::process::Output, std::process::Output) {
    let load = load.to_vec();
    tokio::task::spawn_blocking(move || {
        let run = |agent: &str, more: &[&str]| {
            let mut args = vec!["--engine", "native"];
            args.extend(&load);
            args.extend(["--user-agent", agent, "--ca-file", &ca]);
            args.extend(more);
            args.push(&url);
            run_swarm(&args)
        };
        (run("two", &["--http2"]), run("one", &[]))
    })
    .await
    .unwrap()
}

/// The acceptance run: counts by kind equal nginx's log, bytes within 1 %, the TLS handshake
/// measured; the certificate is checked (unknown CA refused, --ca-file or --dangerous accepted).
#[testkit::test]
async fn https_through_the_relay_is_measured_like_http() {
    let _machine = shared_machine().await;
    let TlsOrigin { origin, url, ca, log, _dirs } = TlsOrigin::start().await;

    let (untrusted, trusted, dangerous, run) = tokio::task::spawn_blocking(move || {
        let untrusted = run_swarm(&["--check", &url]);
        let trusted = run_swarm(&["--check", "--ca-file", &ca, &url]);
        let dangerous = run_swarm(&["--check", "--dangerous", &url]);
        let run =
            run_swarm(&["--clients", "4", "--ramp-rate", "4", "--duration", "20s", "--ca-file", &ca, &url]);
        (untrusted, trusted, dangerous, run)
    })
    .await
    .unwrap();
    origin.stop().await.unwrap();

    let text = |o: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };
    assert_eq!(untrusted.status.code(), Some(4), "an unknown CA is refused\n{}", text(&untrusted));
    assert!(text(&untrusted).to_lowercase().contains("certificate"), "{}", text(&untrusted));
    assert_eq!(trusted.status.code(), Some(0), "{}", text(&trusted));
    assert_eq!(dangerous.status.code(), Some(0), "{}", text(&dangerous));

    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let (nginx_playlists, nginx_segments, nginx_bytes) = viewer_lines(&log);
    assert!(nginx_segments > 4 * 5, "a real run: {nginx_segments} segments logged\n{out}");
    assert_eq!(summary_number(&out, "Requests", "playlists"), Some(nginx_playlists), "{out}");
    assert_eq!(summary_number(&out, "Requests", "segments"), Some(nginx_segments), "{out}");
    let bytes = summary_number(&out, "Bytes", "bytes").expect("bytes in the summary") as f64;
    let off = (bytes - nginx_bytes as f64).abs() / nginx_bytes as f64;
    assert!(off < 0.01, "swarm {bytes} bytes vs nginx {nginx_bytes}: {:.3} % apart\n{out}", off * 100.0);
    let handshake = out.lines().find(|l| l.starts_with("TLS handshake")).unwrap_or_default();
    assert!(handshake.contains("p50") && !handshake.contains("n/a"), "{out}");
    let ttfb = out.lines().find(|l| l.starts_with("Segment TTFB")).unwrap_or_default();
    assert!(ttfb.contains("p50") && !ttfb.contains("n/a"), "{out}");
    assert!(!out.contains("Blind tunnels"), "nothing passed through blind\n{out}");
}

/// `--http2`: native viewers negotiate HTTP/2 by ALPN with nginx's TLS listener, every request
/// nginx logs from them is an HTTP/2 one, and the swarm's counts equal nginx's; the same viewers
/// without `--http2` speak HTTP/1.1 to the same listener. Each run has its own User-Agent so the
/// two are told apart in the one log.
#[testkit::test]
async fn native_viewers_speak_http2_when_asked() {
    let _machine = shared_machine().await;
    let TlsOrigin { origin, url, ca, log, _dirs } = TlsOrigin::start().await;

    let load = ["--clients", "3", "--ramp-rate", "3", "--duration", "12s"];
    let (h2, h1) = with_and_without_http2(url, ca, &load).await;
    origin.stop().await.unwrap();

    let logged = origin::access_log::parse(&std::fs::read_to_string(&log).expect("access log"));
    for (run, agent, protocol, line) in
        [(&h2, "two ", "HTTP/2.0", "HTTP/2"), (&h1, "one ", "HTTP/1.1", "HTTP/1.1")]
    {
        let out = text(run);
        assert_eq!(run.status.code(), Some(0), "{out}");
        let mine: Vec<_> = logged
            .iter()
            .filter(|r| r.user_agent.starts_with(agent) && r.user_agent.contains(" viewer/"))
            .collect();
        let segments = mine.iter().filter(|r| r.is_segment()).count() as u64;
        assert!(segments >= 3 * 2, "a real run: {segments} segments logged\n{out}");
        assert_eq!(summary_number(&out, "Requests", "segments"), Some(segments), "{out}");
        let playlists = mine.iter().filter(|r| r.is_playlist()).count() as u64;
        assert_eq!(summary_number(&out, "Requests", "playlists"), Some(playlists), "{out}");
        let other: Vec<_> = mine.iter().filter(|r| r.protocol != protocol).map(|r| &r.protocol).collect();
        assert!(other.is_empty(), "{agent}: requests not on {protocol}: {other:?}\n{out}");
        let by = out.lines().find(|l| l.starts_with("Protocols"));
        if agent == "two " {
            // Responses on HTTP/2, nothing else: at most what nginx logged (a request cut at
            // the run's end is logged but had no response).
            let by = by.unwrap_or_else(|| panic!("a Protocols line\n{out}"));
            let words: Vec<&str> = by.split_whitespace().collect();
            assert_eq!(words.get(2..4), Some(&["on", line][..]), "{by}\n{out}");
            let n: usize = words[1].parse().unwrap_or_else(|e| panic!("{by}: {e}"));
            assert!(n > 0 && n <= mine.len(), "{by}: nginx logged {}\n{out}", mine.len());
            assert!(!by.contains("HTTP/1.1"), "{by}\n{out}");
        } else {
            assert!(by.is_none(), "no Protocols line without --http2\n{out}");
        }
    }
}

/// LL-HLS over TLS: a native viewer sends its preload-hinted part and its blocking reload at
/// once. With `--http2` both go on its one HTTP/2 connection, multiplexed, as a browser sends
/// them; over HTTP/1.1 they take two connections. nginx's access log says which connection
/// carried each request (`conn=`).
#[testkit::test]
async fn llhls_viewers_multiplex_on_one_http2_connection_and_use_two_over_http1() -> testkit::Outcome {
    testkit::need::program("ffmpeg")?;
    let _machine = shared_machine().await;
    let TlsOrigin { origin, url, ca, log, _dirs } = TlsOrigin::of("ll-hls").await;
    let load = ["--clients", "2", "--ramp-rate", "10", "--duration", "6s"];
    let (h2, h1) = with_and_without_http2(url, ca, &load).await;
    origin.stop().await.unwrap();

    let logged = origin::access_log::parse(&std::fs::read_to_string(&log).expect("access log"));
    for (run, agent, protocol, connections) in [(&h2, "two ", "HTTP/2.0", 1), (&h1, "one ", "HTTP/1.1", 2)] {
        let out = text(run);
        assert_eq!(run.status.code(), Some(0), "{out}");
        assert!(out.contains("LL-HLS            2 tracks"), "both viewers in LL-HLS mode\n{out}");
        // Each viewer's connections, by the `viewer/N` its User-Agent ends with.
        let mut by_viewer: std::collections::BTreeMap<&str, std::collections::BTreeSet<u64>> =
            std::collections::BTreeMap::new();
        for r in logged.iter().filter(|r| r.user_agent.starts_with(agent)) {
            let Some((_, viewer)) = r.user_agent.split_once(" viewer/") else { continue };
            assert_eq!(r.protocol, protocol, "{agent}: {r:?}\n{out}");
            by_viewer.entry(viewer).or_default().insert(r.connection);
        }
        assert_eq!(by_viewer.len(), 2, "{agent}: {by_viewer:?}\n{out}");
        let parts = logged.iter().filter(|r| r.user_agent.starts_with(agent) && r.is_part()).count();
        assert!(parts > 0, "{agent}: parts requested\n{out}");
        for (viewer, conns) in &by_viewer {
            assert_eq!(conns.len(), connections, "{agent}viewer/{viewer}: connections {conns:?}\n{out}");
        }
    }
    Ok(())
}
