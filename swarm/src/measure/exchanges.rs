//! How one measured exchange or tunnel counts in the run's aggregates (the fold's helpers).

use std::collections::BTreeMap;

use crate::measure::events::{Request, RequestKind, Tunnel};
use crate::measure::latency::Hist;
use crate::measure::snapshot::Snapshot;
use crate::measure::windows::{kind_index, Slot};

/// Counts one measured exchange: requests, bytes, latencies, errors, late segments, and its
/// second's slot.
pub(crate) fn record_request(
    r: &Request,
    s: &mut Snapshot,
    ttfb: &mut BTreeMap<RequestKind, Hist>,
    ttlb: &mut BTreeMap<RequestKind, Hist>,
    (connect, tls): (&mut Hist, &mut Hist),
    slot: Option<&mut Slot>,
) {
    *s.requests.entry(r.kind).or_default() += 1;
    *s.bytes.entry(r.kind).or_default() += r.bytes;
    if let (Some(p), Some(_)) = (r.protocol, r.status) {
        // Looked up before inserting: no allocation per request.
        match s.protocols.get_mut(p.name()) {
            Some(n) => *n += 1,
            None => {
                s.protocols.insert(p.name().to_owned(), 1);
            }
        }
    }
    if let Some(c) = r.connect {
        connect.record(c);
    }
    if let Some(t) = r.tls {
        tls.record(t);
    }
    let http_error = r.status.filter(|code| *code >= 400);
    if let Some(code) = http_error {
        *s.http_errors.entry(code).or_default() += 1;
    }
    if r.network_error.is_some() {
        s.network_errors += 1;
    }
    let failed = http_error.is_some() || r.network_error.is_some();
    if let Some(d) = r.ttfb {
        ttfb.entry(r.kind).or_default().record(d);
    }
    if let Some(d) = r.ttlb {
        ttlb.entry(r.kind).or_default().record(d);
        if r.kind == RequestKind::Segment && r.media_duration.is_some_and(|m| d.as_secs_f64() > m) {
            s.playback.late_segments += 1;
        }
    }
    if let Some(slot) = slot {
        slot.bytes[kind_index(r.kind)] += r.bytes;
        slot.requests += 1;
        slot.errors += u64::from(failed);
    }
}

/// What went wrong with a request, if anything: `HTTP 404 on segment`.
pub(crate) fn request_problem(r: &Request) -> Option<String> {
    let kind = r.kind.label();
    match (&r.network_error, r.status) {
        (Some(e), _) => Some(format!("network error on {kind}: {e}")),
        (None, Some(code)) if code >= 400 => Some(format!("HTTP {code} on {kind}")),
        _ => None,
    }
}

/// Counts one closed `CONNECT` tunnel.
pub(crate) fn record_tunnel(t: &Tunnel, s: &mut Snapshot) {
    let tunnels = &mut s.tunnels;
    tunnels.count += 1;
    tunnels.bytes_down += t.bytes_down;
    tunnels.bytes_up += t.bytes_up;
    if t.error.is_some() {
        tunnels.failed += 1;
        s.network_errors += 1;
    }
}
