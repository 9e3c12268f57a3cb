//! A real Prometheus server (Debian's `prometheus`) scraping the swarm's `/metrics`, with its
//! own configuration and storage in the scenario's temp dir, on a free loopback port (inside
//! the client namespace when there is one), and PromQL checks against the swarm's report.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::http::Reach;
use crate::leftovers::MARKER;
use crate::scenario::{PrometheusSpec, Query};

/// A running Prometheus.
#[derive(Debug)]
pub struct Prometheus {
    pub group: procgroup::Group,
    pub client: Client,
    /// Its port, reserved while it runs (none inside a namespace of its own).
    _port: Option<testkit::port::Port>,
}

/// Where Prometheus's API answers, and from where.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: SocketAddr,
    pub reach: Reach,
}

/// The config: the swarm's metrics address (job `hls-swarm`) and, when given, the origin's node
/// and nginx exporters (jobs `hls-origin-node`, `hls-origin-nginx`), as `make observe` scrapes
/// them.
pub fn config(
    spec: &PrometheusSpec,
    target: SocketAddr,
    exporters: Option<(SocketAddr, SocketAddr)>,
    rapl: Option<SocketAddr>,
) -> String {
    let ms = spec.scrape_interval.as_millis();
    let timeout = (ms * 4 / 5).max(50);
    let job = |name: &str, addr: SocketAddr| {
        format!(
            "  - job_name: {name}\n    scrape_interval: {ms}ms\n    scrape_timeout: {timeout}ms\n\
             \x20   static_configs:\n      - targets: ['{addr}']\n"
        )
    };
    let mut c =
        format!("global:\n  scrape_interval: {ms}ms\n  evaluation_interval: {ms}ms\nscrape_configs:\n");
    c.push_str(&job("hls-swarm", target));
    if let Some((node, nginx)) = exporters {
        c.push_str(&job("hls-origin-node", node));
        c.push_str(&job("hls-origin-nginx", nginx));
    }
    if let Some(rapl) = rapl {
        c.push_str(&job("hls-origin-rapl", rapl));
    }
    c
}

impl Prometheus {
    /// Starts `prometheus` scraping `target`; returns once `/-/ready` answers.
    ///
    /// # Errors
    /// It cannot start or is not ready within 60 s.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        bin: &Path,
        spec: &PrometheusSpec,
        target: SocketAddr,
        exporters: Option<(SocketAddr, SocketAddr)>,
        rapl: Option<SocketAddr>,
        dir: &Path,
        logs: &Path,
        run_id: &str,
        netns: Option<&str>,
    ) -> Result<Prometheus, String> {
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config(spec, target, exporters, rapl))
            .map_err(|e| format!("cannot write {config_path:?}: {e}"))?;
        let reserved = match netns {
            Some(_) => None,
            None => Some(testkit::port::reserve().map_err(|e| format!("no free port for Prometheus: {e}"))?),
        };
        let addr =
            SocketAddr::from((Ipv4Addr::LOCALHOST, reserved.as_ref().map_or(9090, testkit::port::Port::get)));
        let log =
            std::fs::File::create(logs.join("prometheus.log")).map_err(|e| format!("prometheus log: {e}"))?;
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("prometheus-data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .args(["--storage.tsdb.retention.time=1h", "--log.level=warn"])
            .env(MARKER, run_id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if let Some(ns) = netns {
            network::netns::enter_in_child(cmd.as_std_mut(), ns).map_err(|e| format!("netns {ns}: {e}"))?;
        }
        let group = procgroup::spawn(&mut cmd).map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let reach = netns.map(Reach::netns).unwrap_or_default();
        let mut p = Prometheus { group, client: Client { addr, reach }, _port: reserved };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let reach = p.client.reach.clone();
            let ready = tokio::task::spawn_blocking(move || reach.get(addr, "/-/ready")).await;
            if matches!(ready, Ok(Ok(ref r)) if r.status == 200) {
                return Ok(p);
            }
            if Instant::now() > deadline || p.group.try_wait().ok().flatten().is_some() {
                let _ = p.group.stop(Duration::from_secs(5)).await;
                return Err(format!(
                    "prometheus not ready within 60 s; its log:\n{}",
                    crate::origin::tail(&logs.join("prometheus.log"), 20)
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the server.
    pub async fn stop(&mut self) -> Result<(), String> {
        self.group
            .stop(Duration::from_secs(10))
            .await
            .map(|_| ())
            .map_err(|e| format!("cannot stop prometheus: {e}"))
    }
}

/// `promql` as a query-string value.
fn encode(promql: &str) -> String {
    url::form_urlencoded::byte_serialize(promql.as_bytes()).collect()
}

impl Client {
    /// `GET path` of Prometheus's HTTP API: the answer when its status is `success`.
    fn api(&self, path: &str) -> Result<serde_json::Value, String> {
        let r = self.reach.get(self.addr, path).map_err(|e| e.to_string())?;
        let v: serde_json::Value =
            serde_json::from_str(&r.body).map_err(|e| format!("not JSON ({e}): {}", r.body))?;
        if v["status"] != "success" {
            return Err(format!("query failed: {}", r.body));
        }
        Ok(v)
    }

    /// The single value of an instant query, or why there is none.
    pub fn query(&self, promql: &str) -> Result<f64, String> {
        let v = self.api(&format!("/api/v1/query?query={}", encode(promql)))?;
        let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
        match result.as_slice() {
            [one] => one["value"][1]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .ok_or_else(|| format!("no value in {one}")),
            [] => Err("no series".into()),
            many => Err(format!("{} series; expected one", many.len())),
        }
    }

    /// A range query: every series' values from `start` to `end` (Unix seconds) at `step`
    /// seconds; `NaN` stays `NaN`.
    ///
    /// # Errors
    /// No answer, not JSON, or Prometheus refused the query (its message).
    pub fn query_range(
        &self,
        promql: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Vec<Vec<f64>>, String> {
        let q = encode(promql);
        let v =
            self.api(&format!("/api/v1/query_range?query={q}&start={start:.3}&end={end:.3}&step={step:.3}"))?;
        Ok(v["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|series| {
                series["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|pair| pair[1].as_str()?.parse::<f64>().ok())
                    .collect()
            })
            .collect())
    }
}

/// One query's verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueryResult {
    pub promql: String,
    pub value: Option<f64>,
    pub expected: Option<f64>,
    pub passed: bool,
    pub detail: String,
}

/// Checks `q` against Prometheus's `answer` and the swarm's `report`.
pub fn judge(q: &Query, answer: Result<f64, String>, report: &serde_json::Value) -> QueryResult {
    let mut r = QueryResult {
        promql: q.promql.clone(),
        value: None,
        expected: None,
        passed: false,
        detail: String::new(),
    };
    let value = match answer {
        Ok(v) => v,
        Err(e) => {
            r.detail = e;
            return r;
        }
    };
    r.value = Some(value);
    if let Some(min) = q.at_least {
        r.expected = Some(min);
        r.passed = value >= min;
        r.detail = format!("{value} (at least {min})");
        return r;
    }
    let Some(pointer) = &q.equals else { return r };
    let Some(want) = report.pointer(pointer).and_then(serde_json::Value::as_f64) else {
        r.detail = format!("the report has no number at {pointer}");
        return r;
    };
    r.expected = Some(want);
    r.passed = value <= want && want - value <= q.tolerance;
    r.detail = format!(
        "Prometheus {value}, report {pointer} = {want} (Prometheus may be up to {} below)",
        q.tolerance
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_scrapes_the_target_at_the_interval() {
        let spec = PrometheusSpec {
            scrape_interval: Duration::from_millis(500),
            queries: vec![],
            dashboards: vec![],
            scrape_origin: false,
            fake_rapl: None,
        };
        let c = config(&spec, "127.0.0.1:4000".parse().unwrap(), None, None);
        assert!(c.contains("scrape_interval: 500ms") && c.contains("scrape_timeout: 400ms"), "{c}");
        assert!(c.contains("- targets: ['127.0.0.1:4000']"), "{c}");
    }

    #[test]
    fn the_config_scrapes_the_origins_exporters_when_given() {
        let spec = PrometheusSpec {
            scrape_interval: Duration::from_secs(1),
            queries: vec![],
            dashboards: vec![],
            scrape_origin: false,
            fake_rapl: None,
        };
        let exporters = Some(("127.0.0.1:9100".parse().unwrap(), "127.0.0.1:9113".parse().unwrap()));
        let rapl = Some("127.0.0.1:9999".parse().unwrap());
        let c = config(&spec, "127.0.0.1:4000".parse().unwrap(), exporters, rapl);
        for (job, target) in [
            ("hls-swarm", "127.0.0.1:4000"),
            ("hls-origin-node", "127.0.0.1:9100"),
            ("hls-origin-nginx", "127.0.0.1:9113"),
        ] {
            assert!(c.contains(&format!("job_name: {job}\n")), "{c}");
            assert!(c.contains(&format!("- targets: ['{target}']")), "{c}");
        }
    }

    #[test]
    fn a_query_passes_within_its_tolerance_below_the_report_only() {
        let report = serde_json::json!({"requests": {"by_kind": {"segment": {"count": 40}}}});
        let q = Query {
            promql: "x".into(),
            equals: Some("/requests/by_kind/segment/count".into()),
            tolerance: 3.0,
            at_least: None,
        };
        assert!(judge(&q, Ok(40.0), &report).passed);
        assert!(judge(&q, Ok(37.0), &report).passed);
        assert!(!judge(&q, Ok(36.0), &report).passed);
        assert!(!judge(&q, Ok(41.0), &report).passed);
        assert!(!judge(&q, Err("no series".into()), &report).passed);
        let min = Query { promql: "y".into(), equals: None, tolerance: 0.0, at_least: Some(10.0) };
        assert!(judge(&min, Ok(12.0), &report).passed && !judge(&min, Ok(9.0), &report).passed);
    }
}
