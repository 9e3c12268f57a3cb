//! The Grafana dashboards under `deploy/grafana/dashboards/`, checked against a real
//! Prometheus: every panel's every query is run over the scenario's run, as Grafana would run
//! it (a range query, with Grafana's `$__rate_interval` filled in), and must return data.
//! A renamed metric, a label that does not exist or a query that does not parse fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::prometheus::{Client, QueryResult};

/// One query of one panel.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelQuery {
    /// `dashboard file › panel title › refId`.
    pub name: String,
    pub expr: String,
}

/// Every query of every panel of a dashboard (rows' nested panels included).
///
/// # Errors
/// The file cannot be read or is not a dashboard.
pub fn queries(path: &Path) -> Result<Vec<PanelQuery>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let json: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let file =
        path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut out = Vec::new();
    fn walk(panels: &Value, file: &str, out: &mut Vec<PanelQuery>) {
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("(untitled)");
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    let r = t["refId"].as_str().unwrap_or("?");
                    out.push(PanelQuery {
                        name: format!("{file} › {title} › {r}"), expr: expr.to_owned()
                    });
                }
            }
            walk(&p["panels"], file, out);
        }
    }
    walk(&json["panels"], &file, &mut out);
    if out.is_empty() {
        return Err(format!("{} has no panel queries", path.display()));
    }
    Ok(out)
}

/// `expr` with Grafana's interval variables as Grafana fills them for this scrape interval and
/// time range: `$__rate_interval` is four scrape intervals (at least), `$__interval` one step,
/// `$__range` the whole range shown.
pub fn grafana_expr(expr: &str, scrape: Duration, range: Duration) -> String {
    let ms = |d: Duration| format!("{}ms", d.as_millis().max(1));
    expr.replace("$__rate_interval", &ms(scrape * 4))
        .replace("$__interval", &ms(scrape))
        .replace("$__range", &ms(range))
}

/// The dashboards a scenario names, as paths (relative to the workspace).
pub fn paths(workspace: &Path, names: &[String]) -> Vec<PathBuf> {
    names.iter().map(|n| workspace.join(n)).collect()
}

/// Runs `q` as a range query from `since` until now and judges it: data means at least one
/// series with at least one finite value.
pub fn judge(client: &Client, q: &PanelQuery, since: SystemTime, scrape: Duration) -> QueryResult {
    let now = SystemTime::now();
    let expr = grafana_expr(&q.expr, scrape, now.duration_since(since).unwrap_or_default());
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    let mut r = QueryResult {
        promql: format!("panel {}: {}", q.name, q.expr),
        value: None,
        expected: None,
        passed: false,
        detail: String::new(),
    };
    match client.query_range(&expr, secs(since), secs(now), scrape.as_secs_f64().max(0.001)) {
        Err(e) => r.detail = e,
        Ok(series) => {
            let finite: Vec<f64> = series.iter().flatten().copied().filter(|v| v.is_finite()).collect();
            r.passed = !finite.is_empty();
            r.value = finite.last().copied();
            r.detail = if r.passed {
                format!("{} series, {} finite values", series.len(), finite.len())
            } else if series.is_empty() {
                format!("no series for {expr}")
            } else {
                format!("{} series, but no finite value (all NaN or ±Inf) for {expr}", series.len())
            };
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Vec<PanelQuery> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/dashboards");
        let mut all = Vec::new();
        for e in std::fs::read_dir(&dir).expect("deploy/grafana/dashboards") {
            all.extend(queries(&e.expect("entry").path()).expect("a dashboard"));
        }
        all
    }

    #[test]
    fn interval_variables_are_filled_in_as_grafana_would() {
        let e = grafana_expr(
            "rate(x[$__rate_interval]) + y[$__interval] + increase(z[$__range])",
            Duration::from_millis(500),
            Duration::from_secs(30),
        );
        assert_eq!(e, "rate(x[2000ms]) + y[500ms] + increase(z[30000ms])");
    }

    /// Every metric family a panel names is one the swarm documents (docs/metrics.md), or one
    /// of the exporters'. The scenario proves they return data; this proves it without a run.
    #[test]
    fn every_swarm_metric_in_a_panel_is_documented() {
        let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md"))
            .expect("docs/metrics.md");
        let all = shipped();
        assert!(all.len() >= 20, "too few panel queries: {}", all.len());
        let mut names = 0;
        for q in &all {
            for (i, _) in q.expr.match_indices("hls_swarm_") {
                let name: String =
                    q.expr[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                let family =
                    name.trim_end_matches("_bucket").trim_end_matches("_count").trim_end_matches("_sum");
                assert!(
                    doc.contains(&format!("`{family}`")),
                    "{}: {family} is not in docs/metrics.md",
                    q.name
                );
                names += 1;
            }
        }
        assert!(names >= 20, "too few swarm metrics found: {names}");
    }

    /// The queries sum over every scraped swarm, so a fleet of workers adds up: a panel that
    /// reads one series (no aggregation) would show one worker's value.
    #[test]
    fn every_panel_query_aggregates_over_all_scraped_targets() {
        for q in shipped() {
            let e = q.expr.trim_start();
            assert!(
                ["sum(", "sum by", "max(", "histogram_quantile("].iter().any(|a| e.starts_with(a)),
                "{} does not aggregate: {}",
                q.name,
                q.expr
            );
        }
    }
}
