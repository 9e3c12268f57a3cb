//! The rules a parsed scenario must follow, checked once by [`Scenario::parse`] before anything
//! starts: a value out of range, keys that do not go together, a fault the placement or source
//! cannot take, a flag the harness sets itself.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Action, Impairment, Placement, Scenario, Source};

/// Flags the harness sets itself.
const MANAGED_FLAGS: [&str; 13] = [
    "--clients",
    "--engine",
    "--ramp-rate",
    "--duration",
    "--variant",
    "--tui",
    "--metrics",
    "--report",
    "--assert",
    "--origin-metrics",
    "--nginx-metrics",
    "--origin-metrics-host",
    "--check",
];

/// The `ll_hls` fault's keys, as its error message lists them.
const LL_HLS_KEYS: &str = "missing = N, early = true|false, slow = N, bad_hints = N, backwards = N, \
                           short_hold_back = true|false";

const CHILDREN: [&str; 4] = ["nginx", "ffmpeg", "node-exporter", "nginx-exporter"];
const HTTP_STATUSES: [u16; 6] = [403, 404, 410, 500, 502, 503];

impl Scenario {
    /// Every rule a parsed scenario must follow; the message names the key, the value and what
    /// would be accepted.
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(format!(
                "scenario name {:?}: expected lowercase letters, digits and '-' (the file's stem)",
                self.name
            ));
        }
        let o = &self.origin;
        if o.placement == Placement::Microvm && o.loop_segments.is_some() {
            return Err("origin.loop_segments: not supported for placement = \"microvm\"".into());
        }
        if o.placement == Placement::Microvm
            && (o.bitrate.is_some() || o.fps.is_some() || o.segment_seconds.is_some() || o.window.is_some())
        {
            return Err("origin: placement = \"microvm\" takes profile, source, width and height only".into());
        }
        if o.placement == Placement::Microvm && o.width.is_some() != o.height.is_some() {
            return Err("origin: placement = \"microvm\" needs both width and height, or neither".into());
        }
        if let Some(n) = &self.network {
            if o.placement != Placement::Netns {
                return Err(
                    "[network] impairment needs origin.placement = \"netns\" (the lab's own link)".into()
                );
            }
            if *n == Impairment::default() {
                return Err("[network]: set at least one of delay, loss_percent, rate_kbit".into());
            }
            if let Some(l) = n.loss_percent {
                if !(0.0..=100.0).contains(&l) {
                    return Err(format!("network.loss_percent = {l}: expected 0 to 100"));
                }
            }
            if n.rate_kbit == Some(0) {
                return Err("network.rate_kbit = 0: expected a positive rate".into());
            }
            if n.lift_at.is_some_and(|at| at.is_zero() || at >= self.swarm.duration) {
                return Err(
                    "network.lift_at: expected a time within the run (after 0, before swarm.duration)".into(),
                );
            }
        }
        if self.expect.variants.is_some() && self.swarm.engine.as_deref() != Some("native") {
            return Err(
                "[expect.variants] needs swarm.engine = \"native\" (FFmpeg viewers do not switch)".into()
            );
        }
        let s = &self.swarm;
        if s.clients == 0 {
            return Err("swarm.clients = 0: expected at least 1".into());
        }
        if !(s.ramp_rate > 0.0 && s.ramp_rate.is_finite()) {
            return Err(format!("swarm.ramp_rate = {}: expected a positive number", s.ramp_rate));
        }
        if s.duration.is_zero() {
            return Err("swarm.duration: expected more than 0 s".into());
        }
        if let Some(v) = &s.variant {
            if !["all", "highest", "lowest", "first", "abr"].contains(&v.as_str()) {
                return Err(format!("swarm.variant = {v:?}: expected all, highest, lowest, first or abr"));
            }
        }
        if let Some(e) = &s.engine {
            if !["ffmpeg", "native"].contains(&e.as_str()) {
                return Err(format!("swarm.engine = {e:?}: expected ffmpeg or native"));
            }
        }
        if let Some(p) = &s.path {
            if !p.starts_with('/') {
                return Err(format!("swarm.path = {p:?}: expected an absolute path such as /missing.m3u8"));
            }
        }
        for a in &s.args {
            let flag = a.split('=').next().unwrap_or(a);
            if MANAGED_FLAGS.contains(&flag) {
                return Err(format!(
                    "swarm.args: {a:?} is set by the harness (use the [swarm] keys or expect.assert)"
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for f in &self.faults {
            let Some(action) = f.action() else {
                return Err(format!(
                    "fault at {}: expected exactly one of hold, pause, kill, http, ll_hls",
                    humantime::format_duration(f.at)
                ));
            };
            if f.at >= s.duration {
                return Err(format!("fault {}: at or after the end of the run", f.describe()));
            }
            if o.placement == Placement::Microvm {
                return Err(
                    "faults need placement process or netns (the VM's status port is not exposed)".into()
                );
            }
            if !seen.insert(f.at) {
                return Err(format!("two faults at {}", humantime::format_duration(f.at)));
            }
            match action {
                Action::Hold(d) => {
                    if o.source != Source::Replay {
                        return Err("fault hold: only the replay source can hold its playlist".into());
                    }
                    if d.is_zero() || d > Duration::from_secs(600) {
                        return Err("fault hold: expected more than 0 s and at most 600 s".into());
                    }
                }
                Action::Pause(p) => {
                    if !CHILDREN.contains(&p.child.as_str()) {
                        return Err(format!("fault pause child {:?}: expected one of {CHILDREN:?}", p.child));
                    }
                    if p.duration.is_zero() {
                        return Err("fault pause: expected a duration above 0 s".into());
                    }
                }
                Action::Kill(c) => {
                    if !CHILDREN.contains(&c.as_str()) {
                        return Err(format!("fault kill {c:?}: expected one of {CHILDREN:?}"));
                    }
                }
                Action::LlHls(l) => {
                    if !origin::Profile::named(&o.profile).is_ok_and(|p| p.part_ms.is_some()) {
                        return Err(format!(
                            "fault ll_hls: needs an LL-HLS profile (ll-hls, ll-hls-abr), not {:?}",
                            o.profile
                        ));
                    }
                    if l.is_empty() {
                        return Err(format!("fault ll_hls: expected one or more of {LL_HLS_KEYS}"));
                    }
                    for (key, n, max, what) in [
                        ("missing", l.missing, 100, "parts"),
                        ("slow", l.slow, 10, "blocking reloads"),
                        ("bad_hints", l.bad_hints, 100, "playlists"),
                        ("backwards", l.backwards, 100, "playlists"),
                    ] {
                        if let Some(n) = n.filter(|n| *n > max) {
                            return Err(format!("fault ll_hls {key} = {n}: expected 0 to {max} {what}"));
                        }
                    }
                }
                Action::Http(h) => {
                    if !HTTP_STATUSES.contains(&h.status) {
                        return Err(format!(
                            "fault http status {}: expected one of {HTTP_STATUSES:?}",
                            h.status
                        ));
                    }
                    if h.from > h.to {
                        return Err(format!("fault http: from {} is after to {}", h.from, h.to));
                    }
                }
            }
        }
        if let Some(p) = &self.prometheus {
            if p.scrape_interval < Duration::from_millis(100) {
                return Err("prometheus.scrape_interval: expected at least 100ms".into());
            }
            for q in &p.queries {
                if q.equals.is_some() == q.at_least.is_some() {
                    return Err(format!("prometheus query {:?}: expected one of equals, at_least", q.promql));
                }
                if q.equals.as_ref().is_some_and(|e| !e.starts_with('/')) {
                    return Err(format!(
                        "prometheus query {:?}: equals must be a JSON pointer (/a/b)",
                        q.promql
                    ));
                }
            }
        }
        let e = &self.expect;
        let logged = origin::Profile::named(&o.profile).is_ok_and(|p| p.logging != origin::Logging::Quiet);
        if (e.access_log_bytes_within.is_some() || e.access_log_counts) && !logged {
            return Err(format!(
                "expect.access_log_*: profile {:?} keeps no access log (use \"logged\", \"debug\" or \"ll-hls\")",
                o.profile
            ));
        }
        if (e.access_log_bytes_within.is_some() || e.access_log_counts) && o.placement == Placement::Microvm {
            return Err("expect.access_log_*: the VM's access log is not reachable".into());
        }
        if e.nginx_requests_match && !s.origin_metrics {
            return Err("expect.nginx_requests_match needs swarm.origin_metrics = true".into());
        }
        if !(0..=255).contains(&e.exit_code) {
            return Err(format!("expect.exit_code = {}: expected 0 to 255", e.exit_code));
        }
        if e.redact.iter().any(|r| !r.starts_with('.')) {
            return Err("expect.redact: selectors start with '.', e.g. .swarm.viewers.restarts".into());
        }
        Ok(())
    }
}
