//! Runs one scenario end to end and says whether it passed, failed (every reason, not just the
//! first) or was skipped (and why).
//!
//! Everything the run starts is owned by a [`Lab`]: the namespaces, the VM, the origin,
//! Prometheus, the swarm, the temp dir. The run's steps borrow it; whatever happens in them
//! (an error, a panic), [`Lab::shutdown`] or, failing that, the owned values' `Drop` stops and
//! removes it all. Then the leftover check looks for anything still alive with the run's
//! marker and for the run's namespaces, and a leftover fails the scenario.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::checks::{self, Check, Logged};
use crate::dashboards;
use crate::env::{self, Env};
use crate::exporters::{self, Figures, Sample, Scraper};
use crate::faults::{self, Applied};
use crate::http::Reach;
use crate::labnet::{self, LabNet, Mechanism};
use crate::leftovers;
use crate::normalize::{normalize, Facts};
use crate::origin::{Endpoints, MicroVm, OriginDirs, OriginProcess};
use crate::prometheus::{self, Prometheus, QueryResult};
use crate::rapl;
use crate::scenario::{Placement, Scenario};
use crate::snapshot::panic_text;
use crate::swarm::{self, Swarm};

/// How a scenario ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    /// Why it did not run (a facility this host lacks).
    pub skipped: Option<String>,
    /// Every broken expectation and every error; empty when it passed.
    pub failures: Vec<String>,
    /// Wall time, start to leftover check.
    pub seconds: f64,
    /// Where the result and the logs are.
    pub dir: PathBuf,
}

impl Outcome {
    /// Passed: ran, nothing failed.
    pub fn passed(&self) -> bool {
        self.skipped.is_none() && self.failures.is_empty()
    }
}

/// Everything recorded about a run (`result.json` in the run's directory).
#[derive(Debug, Default, serde::Serialize)]
pub struct Record {
    pub scenario: String,
    pub description: String,
    pub run_id: String,
    pub impairment: Option<Mechanism>,
    /// Packets the impairment saw and dropped.
    pub impairment_packets: Option<(u64, u64)>,
    /// Seconds after the swarm's start the impairment was lifted (`network.lift_at`).
    pub impairment_lifted_at: Option<f64>,
    pub origin_ready_seconds: f64,
    pub swarm_seconds: f64,
    pub swarm_exit_code: Option<i32>,
    pub swarm_timed_out: bool,
    pub faults: Vec<Applied>,
    pub exporters: Figures,
    pub exporter_samples: Vec<Sample>,
    pub origin_cpu_seconds: Option<f64>,
    pub access_log: Option<Logged>,
    pub checks: Vec<Check>,
    pub prometheus: Vec<QueryResult>,
    pub normalized: Option<Value>,
    pub failures: Vec<String>,
    pub skipped: Option<String>,
    pub seconds: f64,
}

/// Why a run stopped early.
enum Stop {
    Skip(String),
    Fail(String),
}

impl<E: std::fmt::Display> From<E> for Stop {
    fn from(e: E) -> Stop {
        Stop::Fail(e.to_string())
    }
}

/// What one run owns. Dropping it stops what is left (procgroup SIGKILLs its groups, the
/// namespaces are deleted, the VM is powered off, the temp dir removed).
#[derive(Debug)]
struct Lab {
    run_id: String,
    tmp: Option<tempfile::TempDir>,
    logs: PathBuf,
    namespaces: Vec<String>,
    net: Option<LabNet>,
    vm: Option<MicroVm>,
    origin: Option<OriginProcess>,
    prometheus: Option<Prometheus>,
    fake_rapl: Option<rapl::FakeRapl>,
    swarm: Option<Swarm>,
}

impl Lab {
    /// Stops everything in reverse order of start; the problems, if any.
    async fn shutdown(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        if let Some(mut s) = self.swarm.take() {
            if let Err(e) = s.group.stop(Duration::from_secs(15)).await {
                errors.push(format!("cannot stop hls-swarm: {e}"));
            }
        }
        if let Some(mut p) = self.prometheus.take() {
            if let Err(e) = p.stop().await {
                errors.push(e);
            }
        }
        if let Some(mut r) = self.fake_rapl.take() {
            if let Err(e) = r.stop().await {
                errors.push(e);
            }
        }
        if let Some(mut o) = self.origin.take() {
            if let Err(e) = o.stop().await {
                errors.push(e);
            }
        }
        if let Some(mut vm) = self.vm.take() {
            errors.extend(vm.stop(&self.logs).await);
        }
        if let Some(mut net) = self.net.take() {
            errors.extend(net.delete());
        }
        errors
    }
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// Where the snapshots of `scenario` live: `snapshots/` beside its file.
pub fn snapshot_dir(scenario: &Scenario) -> PathBuf {
    scenario.path.parent().unwrap_or(Path::new(".")).join("snapshots")
}

/// Why this host cannot run `s`, if it cannot (checked before anything starts).
pub fn facility_missing(s: &Scenario, env: &Env) -> Option<String> {
    match s.origin.placement {
        Placement::Process => None,
        Placement::Netns => env::netns_missing(),
        Placement::Microvm => env::microvm_missing(env),
    }
    .or_else(|| s.prometheus.as_ref().and_then(|_| env::prometheus_missing()))
}

/// Runs `s` on a tokio runtime of its own. Children are forked on the calling thread (the
/// trial's), which outlives them: their parent-death signal fires only if the harness dies.
pub fn run(s: &Scenario, env: &Env) -> Outcome {
    let started = Instant::now();
    let dir = env.runs.join(&s.name);
    let mut outcome =
        Outcome { name: s.name.clone(), skipped: None, failures: Vec::new(), seconds: 0.0, dir: dir.clone() };
    if let Some(why) = facility_missing(s, env) {
        outcome.skipped = Some(why);
        return outcome;
    }
    if s.needs_root() {
        for name in leftovers::sweep_stale_namespaces() {
            eprintln!("removed network namespace {name} left by an earlier, interrupted run");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::create_dir_all(&env.cache)) {
        outcome.failures.push(format!("cannot create {}: {e}", dir.display()));
        return outcome;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            outcome.failures.push(format!("cannot build a tokio runtime: {e}"));
            return outcome;
        }
    };
    let run_id = format!("{}-{}-{}", s.name, std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed));
    let mut record = Record {
        scenario: s.name.clone(),
        description: s.description.clone(),
        run_id: run_id.clone(),
        ..Record::default()
    };
    let tmp = tempfile::Builder::new().prefix("hls-testlab-").tempdir();
    let tmp = match tmp {
        Ok(t) => t,
        Err(e) => {
            outcome.failures.push(format!("cannot create a temp dir: {e}"));
            return outcome;
        }
    };
    let tmp_path = tmp.path().to_owned();
    let mut lab = Lab {
        run_id: run_id.clone(),
        tmp: Some(tmp),
        logs: dir.clone(),
        namespaces: Vec::new(),
        net: None,
        vm: None,
        origin: None,
        prometheus: None,
        fake_rapl: None,
        swarm: None,
    };
    let mut failures = Vec::new();
    runtime.block_on(async {
        let body = std::panic::AssertUnwindSafe(drive(s, env, &mut lab, &mut record, &mut failures));
        let result = futures_catch(body).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(Stop::Skip(why))) => outcome.skipped = Some(why),
            Ok(Err(Stop::Fail(why))) => failures.push(why),
            Err(panic) => failures.push(format!("the harness panicked: {panic}")),
        }
        failures.extend(lab.shutdown().await);
    });
    drop(runtime);
    // Leftovers: processes carrying the run's marker, the run's namespaces, the temp dir.
    let left = wait_for_leftovers(&lab.run_id);
    if !left.is_empty() {
        leftovers::kill(&left);
        failures.push(format!("processes left behind (killed now): {left:?}"));
    }
    let ns = leftovers::namespaces(&lab.namespaces);
    if !ns.is_empty() {
        failures.push(format!("network namespaces left behind: {ns:?}"));
        for n in &ns {
            let _ = network::netns::delete(n);
        }
    }
    if let Some(t) = lab.tmp.take() {
        if let Err(e) = t.close() {
            failures.push(format!("cannot remove the temp dir {}: {e}", tmp_path.display()));
        }
    }
    if tmp_path.exists() {
        failures.push(format!("temp dir left behind: {}", tmp_path.display()));
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    record.failures.clone_from(&failures);
    record.skipped.clone_from(&outcome.skipped);
    record.seconds = outcome.seconds;
    if let Ok(text) = serde_json::to_string_pretty(&record) {
        let _ = std::fs::write(dir.join("result.json"), text);
    }
    outcome.failures = failures;
    outcome
}

/// Processes die a little after their parent is reaped (the kernel's parent-death signal,
/// nginx's own exit): give them a moment before calling them leftovers.
fn wait_for_leftovers(run_id: &str) -> Vec<leftovers::Leftover> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = leftovers::processes(run_id);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Awaits `f`, turning a panic into an error with its message.
async fn futures_catch<F: std::future::Future + Send>(f: F) -> Result<F::Output, String> {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    struct Catch<F>(Pin<Box<F>>);
    impl<F: std::future::Future> std::future::Future for Catch<F> {
        type Output = Result<F::Output, String>;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let inner = self.0.as_mut();
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
                Err(p) => Poll::Ready(Err(panic_text(&*p))),
            }
        }
    }
    Catch(Box::pin(f)).await
}

/// The run's steps. Resources go into `lab` as soon as they exist.
async fn drive(
    s: &Scenario,
    env: &Env,
    lab: &mut Lab,
    record: &mut Record,
    failures: &mut Vec<String>,
) -> Result<(), Stop> {
    let origin_bin = env.bin("hls-origin").map_err(Stop::Fail)?;
    let swarm_bin = env.bin("hls-swarm").map_err(Stop::Fail)?;
    let tmp =
        lab.tmp.as_ref().map(|t| t.path().to_owned()).ok_or_else(|| Stop::Fail("no temp dir".into()))?;
    let prefix = leftovers::netns_prefix(RUNS.fetch_add(1, Ordering::Relaxed));
    let origin_logs = lab.logs.join("origin");
    std::fs::create_dir_all(&origin_logs)?;
    let dirs = OriginDirs { work: tmp.clone(), cache: env.cache.clone(), logs: origin_logs };
    let t = Instant::now();
    let (endpoints, client_ns): (Endpoints, Option<String>) = match s.origin.placement {
        Placement::Process => {
            let o = OriginProcess::start(&origin_bin, &s.origin, &lab.run_id, &dirs, None).await?;
            let e = o.endpoints.clone();
            lab.origin = Some(o);
            (e, None)
        }
        Placement::Netns => {
            lab.namespaces.extend([format!("{prefix}-c"), format!("{prefix}-o")]);
            let net = LabNet::create(&prefix)?;
            let (c, o) = (net.client.clone(), net.origin.clone());
            let net = lab.net.insert(net);
            if let Some(imp) = &s.network {
                match net.impair(imp) {
                    Ok(m) => record.impairment = Some(m),
                    Err(labnet::Error::Unsupported(why)) => return Err(Stop::Skip(why)),
                    Err(e) => return Err(e.into()),
                }
            }
            let origin =
                OriginProcess::start(&origin_bin, &s.origin, &lab.run_id, &dirs, Some((&o, &c))).await?;
            let e = origin.endpoints.clone();
            lab.origin = Some(origin);
            (e, Some(c))
        }
        Placement::Microvm => {
            let hls_lab = env.bin("hls-lab").map_err(Stop::Skip)?;
            let ns = format!("{prefix}-c");
            lab.namespaces.push(ns.clone());
            let (vm, e) = MicroVm::start(
                &hls_lab,
                &origin_bin,
                &s.origin,
                &lab.run_id,
                &ns,
                &tmp,
                &env.cache,
                &lab.logs,
            )
            .await?;
            lab.vm = Some(vm);
            (e, Some(ns))
        }
    };
    record.origin_ready_seconds = t.elapsed().as_secs_f64();
    let reach = endpoints.reach.clone();
    let playlist_path =
        endpoints.playlist_url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap_or_default();
    let entry = {
        let (reach, hls, path) = (reach.clone(), endpoints.hls, playlist_path.clone());
        tokio::task::spawn_blocking(move || reach.get(hls, &path)).await??
    };
    let variants = entry.body.lines().filter(|l| l.starts_with("#EXT-X-STREAM-INF")).count();

    // Exporters: one scrape before, every second during, one after.
    let base = Instant::now();
    let scrape_once = |reach: Reach| {
        let (node, nginx) = (endpoints.node, endpoints.nginx);
        tokio::task::spawn_blocking(move || exporters::scrape(&reach, node, nginx, base))
    };
    let before = scrape_once(reach.clone()).await?;
    let scraper =
        Scraper::start(reach.clone(), endpoints.node, endpoints.nginx, Duration::from_secs(1), base);

    // Dashboard queries cover the run from here: Prometheus starts scraping now.
    let prometheus_since = std::time::SystemTime::now();
    // The swarm's metrics port, reserved until the scenario ends (this binding lives that long).
    let metrics_port = match (&s.prometheus, &client_ns) {
        (Some(_), None) => Some(testkit::port::reserve()?),
        _ => None,
    };
    let metrics = match (&s.prometheus, &metrics_port) {
        (None, _) => None,
        (Some(_), Some(port)) => Some(port.loopback()),
        (Some(_), None) => Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 17091))),
    };
    if let (Some(spec), Some(target)) = (&s.prometheus, metrics) {
        let bin = env::which("prometheus").ok_or_else(|| Stop::Skip("needs `prometheus`".into()))?;
        // Prometheus polling the nginx exporter makes nginx requests of its own (stub_status),
        // which `nginx_requests_match` does not count: only when asked.
        let exporters = spec.scrape_origin.then_some((endpoints.node, endpoints.nginx));
        let rapl = match &spec.fake_rapl {
            Some(r) => {
                let ne = env::which("prometheus-node-exporter")
                    .ok_or_else(|| Stop::Skip("needs `prometheus-node-exporter`".into()))?;
                let fake = rapl::FakeRapl::start(&ne, r, &tmp, &lab.logs).await.map_err(Stop::Fail)?;
                let addr = fake.addr;
                lab.fake_rapl = Some(fake);
                Some(addr)
            }
            None => None,
        };
        let p = Prometheus::start(
            &bin,
            spec,
            target,
            exporters,
            rapl,
            &tmp,
            &lab.logs,
            &lab.run_id,
            client_ns.as_deref(),
        )
        .await?;
        lab.prometheus = Some(p);
    }

    let report_path = lab.logs.join("report.json");
    let args = swarm::args(s, &endpoints, &report_path, metrics);
    std::fs::write(lab.logs.join("swarm.args"), args.join("\n"))?;
    let cpu_before = lab.origin.as_ref().map(OriginProcess::cpu_seconds);
    let t0 = Instant::now();
    let sampler = testkit::cpu::Sampler::start(Duration::from_millis(500));
    let swarm = Swarm::start(&swarm_bin, &args, &lab.logs, &lab.run_id, client_ns.as_deref())?;
    let swarm = lab.swarm.insert(swarm);
    let fault_task = match (&endpoints.status, s.faults.is_empty()) {
        (Some((status, status_reach)), false) => {
            let target = faults::Target {
                status: *status,
                status_reach: status_reach.clone(),
                hls: endpoints.hls,
                playlist_path: playlist_path.clone(),
                hls_reach: reach.clone(),
            };
            Some(tokio::spawn(faults::run(s.faults.clone(), target, t0)))
        }
        _ => None,
    };
    let lift_task = match (&s.network, &record.impairment, lab.net.as_ref()) {
        (Some(imp), Some(m), Some(net)) => imp.lift_at.map(|at| {
            let (client, origin, m) = (net.client.clone(), net.origin.clone(), m.clone());
            tokio::spawn(async move {
                tokio::time::sleep_until((t0 + at).into()).await;
                let lifted = tokio::task::spawn_blocking(move || labnet::lift(&client, &origin, &m)).await;
                match lifted {
                    Ok(Ok(())) => Ok(t0.elapsed().as_secs_f64()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(format!("the lift task failed: {e}")),
                }
            })
        }),
        _ => None,
    };
    let finished = swarm.wait(s.swarm.duration + swarm::SLACK).await;
    let load = sampler.finish();
    lab.swarm = None;
    record.swarm_seconds = t0.elapsed().as_secs_f64();
    record.swarm_exit_code = finished.code;
    record.swarm_timed_out = finished.timed_out;
    if let Some(task) = fault_task {
        record.faults = task.await.unwrap_or_default();
    }
    let lifted = match lift_task {
        Some(task) => Some(task.await.unwrap_or_else(|e| Err(format!("the lift task failed: {e}")))),
        None => None,
    };
    record.impairment_lifted_at = lifted.as_ref().and_then(|l| l.as_ref().ok().copied());
    let wall = t0.elapsed().as_secs_f64();
    let cpu_after = lab.origin.as_ref().map(OriginProcess::cpu_seconds);
    let loss = match (&s.network, &record.impairment, lab.net.as_ref()) {
        (Some(imp), Some(m), Some(net)) => {
            imp.loss_percent.map(|l| (l, net.drops(m).map_err(|e| e.to_string())))
        }
        _ => None,
    };
    record.impairment_packets = loss.as_ref().and_then(|(_, r)| r.as_ref().ok().copied());
    let during = scraper.finish();
    let after = scrape_once(reach.clone()).await?;
    record.exporters = exporters::figures(&before, &during, &after);
    let harness_nginx_scrapes = during.iter().filter(|x| x.nginx_up == Some(true)).count() + 1;
    record.exporter_samples = during;
    let origin_cpu = match (cpu_before, cpu_after, s.origin.placement) {
        (Some(a), Some(b), _) => Some((b - a, wall)),
        // In the VM, the node exporter's machine is the origin's.
        (_, _, Placement::Microvm) => match (record.exporters.host_cpu, record.exporters.host_cpus) {
            (Some(f), Some(n)) => Some((f * n as f64 * wall, wall)),
            _ => None,
        },
        _ => None,
    };
    record.origin_cpu_seconds = origin_cpu.map(|(c, _)| c);

    if let (Some(spec), Some(p)) = (&s.prometheus, lab.prometheus.as_ref()) {
        // One more interval, so the last scrape before the swarm's end is in.
        tokio::time::sleep(spec.scrape_interval).await;
        let report: Value = read_report(&report_path).unwrap_or(Value::Null);
        for q in &spec.queries {
            let (promql, client) = (q.promql.clone(), p.client.clone());
            let answer = tokio::task::spawn_blocking(move || client.query(&promql))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            record.prometheus.push(prometheus::judge(q, answer, &report));
        }
        let workspace = env.scenarios.parent().and_then(Path::parent).unwrap_or(Path::new("."));
        for path in dashboards::paths(workspace, &spec.dashboards) {
            let panels = match dashboards::queries(&path) {
                Ok(p) => p,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            for q in panels {
                let (client, interval) = (p.client.clone(), spec.scrape_interval);
                match tokio::task::spawn_blocking(move || {
                    dashboards::judge(&client, &q, prometheus_since, interval)
                })
                .await
                {
                    Ok(answer) => record.prometheus.push(answer),
                    Err(e) => failures.push(format!("dashboard query task: {e}")),
                }
            }
        }
    }
    if let Some(mut p) = lab.prometheus.take() {
        if let Err(e) = p.stop().await {
            failures.push(e);
        }
    }
    // Stopping nginx flushes its access log.
    if let Some(mut o) = lab.origin.take() {
        if let Err(e) = o.stop().await {
            failures.push(e);
        }
    }
    if let Some(mut vm) = lab.vm.take() {
        failures.extend(vm.stop(&lab.logs).await);
    }

    // Verdicts.
    let report = match read_report(&report_path) {
        Ok(r) => Some(r),
        Err(e) => {
            failures.push(e);
            None
        }
    };
    let stdout_tail = crate::origin::tail(&finished.stdout, 40);
    if finished.timed_out {
        failures.push(format!(
            "hls-swarm ran more than {} s past --duration and was stopped",
            swarm::SLACK.as_secs()
        ));
    }
    if finished.code != Some(s.expect.exit_code) {
        let failed: Vec<String> = report
            .as_ref()
            .and_then(|r| r["thresholds"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|t| t["passed"] != true)
            .map(|t| t["text"].as_str().unwrap_or("?").to_owned())
            .collect();
        failures.push(format!(
            "hls-swarm exited {:?}, expected {}{}\n--- swarm stdout (tail)\n{stdout_tail}",
            finished.code,
            s.expect.exit_code,
            if failed.is_empty() {
                String::new()
            } else {
                format!("; failed thresholds: {}", failed.join("; "))
            }
        ));
    }
    for f in record.faults.iter().filter(|f| !f.ok) {
        failures.push(format!("fault {} was not applied: {}", f.fault, f.detail));
    }
    if record.faults.len() < s.faults.len() {
        failures.push(format!("{} of {} faults were sent", record.faults.len(), s.faults.len()));
    }
    record.access_log = endpoints
        .access_log
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| checks::logged(&t));
    let empty = Value::Null;
    let inputs = checks::Inputs {
        expect: &s.expect,
        report: report.as_ref().unwrap_or(&empty),
        access_log: record.access_log.as_ref(),
        exporters: &record.exporters,
        harness_nginx_scrapes,
        origin_cpu,
        loss,
        load: Some(&load),
        lifted,
    };
    record.checks = checks::run(&inputs);
    for c in record.checks.iter().filter(|c| !c.passed) {
        failures.push(format!("check failed: {}: {}", c.name, c.detail));
    }
    for q in record.prometheus.iter().filter(|q| !q.passed) {
        failures.push(format!("PromQL check failed: {}: {}", q.promql, q.detail));
    }
    let normalized = normalize(&Facts {
        scenario: s,
        exit_code: finished.code,
        report: report.as_ref(),
        variants,
        faults: &record.faults,
        exporters: Some(&record.exporters),
        checks: &record.checks,
        queries: &record.prometheus,
    });
    record.normalized = serde_json::to_value(&normalized).ok();
    if s.expect.snapshot {
        if let Err(e) = crate::snapshot::compare(s, &snapshot_dir(s), &normalized) {
            failures.push(e);
        }
    }
    Ok(())
}

fn read_report(path: &Path) -> Result<Value, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("no swarm report at {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("the swarm report {} is not JSON: {e}", path.display()))
}
