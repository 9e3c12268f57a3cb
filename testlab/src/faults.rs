//! Faults on the scenario's timeline, sent to the origin's status listener (`POST /hold`,
//! `/fault/pause`, `/fault/kill`, `/fault/http`, `/fault/ll-hls`; docs/origin.md, "Fault
//! injection").

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::http::Reach;
use crate::scenario::{Action, Fault};

/// What happened to one fault.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    /// `8s pause nginx 5s`.
    pub fault: String,
    /// Seconds after the swarm's start it was sent.
    pub sent_at: f64,
    /// The origin accepted it.
    pub ok: bool,
    /// The origin's answer, or the error.
    pub detail: String,
}

/// Where the faults go.
#[derive(Debug, Clone)]
pub struct Target {
    /// The status listener, and from where it is reached.
    pub status: SocketAddr,
    pub status_reach: Reach,
    /// The HLS listener and its entry playlist path, from the swarm's side (for the live edge).
    pub hls: SocketAddr,
    pub playlist_path: String,
    pub hls_reach: Reach,
}

/// Sends every fault at its time after `start`; returns what happened, in order.
pub async fn run(faults: Vec<Fault>, target: Target, start: Instant) -> Vec<Applied> {
    let mut faults = faults;
    faults.sort_by_key(|f| f.at);
    let mut done = Vec::new();
    let mut clears: Vec<(Duration, String)> = Vec::new();
    for f in faults {
        // Clear earlier http faults that are due before this one.
        flush_clears(&mut clears, Some(f.at), &target, start, &mut done).await;
        tokio::time::sleep_until((start + f.at).into()).await;
        let t = target.clone();
        let fault = f.clone();
        let applied = tokio::task::spawn_blocking(move || send(&fault, &t))
            .await
            .unwrap_or_else(|e| Err(format!("fault task failed: {e}")));
        let sent_at = start.elapsed().as_secs_f64();
        if let (Ok(_), Some(Action::Http(h))) = (&applied, f.action()) {
            if let Some(after) = h.clear_after {
                clears.push((f.at + after, f.describe()));
            }
        }
        let (ok, detail) = match applied {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        done.push(Applied { fault: f.describe(), sent_at, ok, detail });
    }
    flush_clears(&mut clears, None, &target, start, &mut done).await;
    done
}

async fn flush_clears(
    clears: &mut Vec<(Duration, String)>,
    before: Option<Duration>,
    target: &Target,
    start: Instant,
    done: &mut Vec<Applied>,
) {
    clears.sort();
    while let Some((at, what)) = clears.first().cloned() {
        if before.is_some_and(|b| at > b) {
            break;
        }
        clears.remove(0);
        tokio::time::sleep_until((start + at).into()).await;
        let t = target.clone();
        let r = tokio::task::spawn_blocking(move || {
            t.status_reach.request("DELETE", t.status, "/fault/http", Duration::from_secs(10))
        })
        .await;
        let (ok, detail) = match r {
            Ok(Ok(resp)) => (resp.status == 200, resp.body.trim().to_owned()),
            Ok(Err(e)) => (false, e.to_string()),
            Err(e) => (false, e.to_string()),
        };
        done.push(Applied {
            fault: format!("clear ({what})"),
            sent_at: start.elapsed().as_secs_f64(),
            ok,
            detail,
        });
    }
}

/// Sends one fault; the origin's answer.
fn send(f: &Fault, t: &Target) -> Result<String, String> {
    let path = match f.action().ok_or("no action")? {
        Action::Hold(d) => format!("/hold?seconds={}", d.as_secs_f64()),
        Action::Pause(p) => format!("/fault/pause?child={}&seconds={}", p.child, p.duration.as_secs_f64()),
        Action::Kill(c) => format!("/fault/kill?child={c}"),
        Action::LlHls(l) => format!("/fault/ll-hls?{}", l.query()),
        Action::Http(h) => {
            let edge = live_edge(t)?;
            let (from, to) = (edge + h.from, edge + h.to);
            if from < 0 {
                return Err(format!("segment range {from}..{to} (live edge {edge}) starts below 0"));
            }
            format!("/fault/http?status={}&from={from}&to={to}", h.status)
        }
    };
    let r = t
        .status_reach
        .request("POST", t.status, &path, Duration::from_secs(15))
        .map_err(|e| e.to_string())?;
    if r.status == 200 {
        Ok(format!("POST {path}: {}", r.body.trim()))
    } else {
        Err(format!("POST {path}: HTTP {} {}", r.status, r.body.trim()))
    }
}

/// The media sequence number of the newest segment listed, in the first media playlist.
fn live_edge(t: &Target) -> Result<i64, String> {
    let get = |path: &str| -> Result<String, String> {
        let r = t.hls_reach.get(t.hls, path).map_err(|e| e.to_string())?;
        if r.status == 200 {
            Ok(r.body)
        } else {
            Err(format!("GET {path}: HTTP {}", r.status))
        }
    };
    let mut path = t.playlist_path.clone();
    let mut text = get(&path)?;
    if text.contains("#EXT-X-STREAM-INF") {
        let uri =
            text.lines().find(|l| !l.is_empty() && !l.starts_with('#')).ok_or("master without variants")?;
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        path = if uri.starts_with('/') { uri.to_owned() } else { format!("{dir}/{uri}") };
        text = get(&path)?;
    }
    edge_of(&text).ok_or_else(|| format!("{path}: no #EXT-X-MEDIA-SEQUENCE or no segment"))
}

/// `MEDIA-SEQUENCE + segments − 1` of a media playlist.
pub fn edge_of(playlist: &str) -> Option<i64> {
    let first: i64 =
        playlist.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))?.trim().parse().ok()?;
    let n = playlist.lines().filter(|l| l.starts_with("#EXTINF")).count();
    (n > 0).then(|| first + i64::try_from(n).unwrap_or(0) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_edge_is_the_last_listed_segment() {
        let p = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:40\n#EXTINF:2.0,\ns40.ts\n\
                 #EXTINF:2.0,\ns41.ts\n#EXTINF:2.0,\ns42.ts\n";
        assert_eq!(edge_of(p), Some(42));
        assert_eq!(edge_of("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:3\n"), None);
    }
}
