//! `deploy/kubernetes` read into the Kubernetes API's own types (k8s-openapi): the Job is an
//! Indexed Job running every shard at once, the names that tie the files together agree, and
//! everything the manifests hand hls-swarm (its variables from `run.env`, the workers' and the
//! merge Job's arguments) is accepted by hls-swarm's own configuration, so a renamed flag or
//! variable fails here. What only a cluster proves (scheduling, the volume's access mode, the
//! Prometheus Operator) is not tested.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
use swarm::control::cli::{Cli, Command};
use swarm::control::config::Config;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// A manifest as `T`, checked to lose nothing: every field of the file is a field of the type
/// (a misspelt or misplaced key would be dropped by the typed reading).
fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(file: &str) -> T {
    let text = std::fs::read_to_string(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let value: T =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{file} is not a valid object: {e}"));
    let raw: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    let back = serde_json::to_value(&value).unwrap();
    assert_eq!(back, raw, "{file}: the typed reading differs from the file (an unknown or misplaced key?)");
    value
}

/// `run.env`'s variables.
fn run_env() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(dir().join("run.env")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("run.env: '{l}' is not NAME=value"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

#[testkit::test]
fn the_manifests_are_kubernetes_objects_that_hls_swarm_accepts() {
    let job: Job = typed("job.yaml");
    let merge: Job = typed("merge/job.yaml");
    let pvc: PersistentVolumeClaim = typed("results-pvc.yaml");
    let service: Service = typed("service.yaml");
    let kustomization: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir().join("kustomization.yaml")).unwrap()).unwrap();
    let podmonitor: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir().join("podmonitor.yaml")).unwrap()).unwrap();
    let env = run_env();

    // An Indexed Job running every shard at once, as many as HLS_SWARM_SHARDS.
    let spec = job.spec.as_ref().expect("a Job spec");
    let shards: i32 = env["HLS_SWARM_SHARDS"].parse().expect("HLS_SWARM_SHARDS is a number");
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!((spec.completions, spec.parallelism), (Some(shards), Some(shards)));
    let pod = spec.template.spec.as_ref().expect("a pod spec");
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let c = &pod.containers[0];
    let index =
        c.env.iter().flatten().find(|e| e.name == "JOB_COMPLETION_INDEX").expect("JOB_COMPLETION_INDEX");
    let field = index.value_from.as_ref().and_then(|v| v.field_ref.as_ref()).map(|f| f.field_path.as_str());
    assert_eq!(field, Some("metadata.annotations['batch.kubernetes.io/job-completion-index']"));

    // The names that tie the files together.
    let generated = kustomization["configMapGenerator"][0]["name"].as_str();
    let from = c.env_from.iter().flatten().find_map(|e| e.config_map_ref.as_ref()).map(|r| r.name.as_str());
    assert_eq!(from, generated, "the pods read the generated ConfigMap");
    for file in kustomization["resources"].as_array().unwrap() {
        assert!(dir().join(file.as_str().unwrap()).is_file(), "kustomization names {file}, which is missing");
    }
    let claim = |j: &Job| {
        let pod = j.spec.as_ref().and_then(|s| s.template.spec.clone()).unwrap();
        let v = pod
            .volumes
            .unwrap_or_default()
            .into_iter()
            .find(|v| v.name == "results")
            .expect("a results volume");
        v.persistent_volume_claim.map(|p| p.claim_name)
    };
    assert_eq!(claim(&job), pvc.metadata.name.clone());
    assert_eq!(claim(&merge), pvc.metadata.name);
    let labels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    let selects = |sel: &BTreeMap<String, String>| sel.iter().all(|(k, v)| labels.get(k) == Some(v));
    assert!(selects(&service.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default()), "Service");
    let pm: BTreeMap<String, String> =
        serde_json::from_value(podmonitor["spec"]["selector"]["matchLabels"].clone()).unwrap();
    assert!(selects(&pm), "PodMonitor");
    let port =
        c.ports.iter().flatten().find(|p| p.name.as_deref() == Some("metrics")).expect("a metrics port");
    assert_eq!(podmonitor["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
    assert_eq!(
        env["HLS_SWARM_METRICS"],
        format!("0.0.0.0:{}", port.container_port),
        "metrics listen on the port"
    );

    // Every variable of run.env is one hls-swarm reads.
    let cli = Cli::command();
    let read: Vec<String> =
        cli.get_arguments().filter_map(|a| a.get_env()).map(|e| e.to_string_lossy().into_owned()).collect();
    for name in env.keys() {
        assert!(read.contains(name), "run.env sets {name}, which hls-swarm does not read");
    }
    // A worker's configuration: its arguments and run.env's variables as the flags they stand
    // for (JOB_COMPLETION_INDEX with HLS_SWARM_SHARDS as --shard), validated as hls-swarm does.
    let flag_of = |name: &str| {
        let arg = cli.get_arguments().find(|a| a.get_env().is_some_and(|e| e == name)).unwrap();
        arg.get_long().map(|l| format!("--{l}"))
    };
    // The results volume, mounted where the pod mounts it: a directory here.
    let mount = c.volume_mounts.iter().flatten().find(|m| m.name == "results").expect("results mounted");
    let volume = tempfile::tempdir().unwrap();
    let here = volume.path().display().to_string();
    for i in 0..shards {
        let mut argv = vec!["hls-swarm".to_owned()];
        argv.extend(c.args.iter().flatten().map(|a| a.replace(&mount.mount_path, &here)));
        for (name, value) in &env {
            match (name.as_str(), flag_of(name)) {
                // What JOB_COMPLETION_INDEX and HLS_SWARM_SHARDS say together.
                ("HLS_SWARM_SHARDS", _) => argv.push(format!("--shard={i}/{value}")),
                ("HLS_SWARM_URL", _) => argv.push(value.clone()),
                (_, Some(flag)) => argv.push(format!("{flag}={value}")),
                (_, None) => panic!("{name} has no flag"),
            }
        }
        let parsed = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let config = Config::from_cli(&parsed, false).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let shard = config.shard.expect("a shard");
        assert_eq!((shard.index, shard.count), (i as u32, shards as u32));
        let report = volume.path().join(format!("shard-{i}.json"));
        assert!(config.reports.iter().any(|r| r.path == report), "{argv:?}");
        assert!(config.reports.iter().any(|r| r.is_stdout()), "the report goes to the log too");
    }
    // The merge Job's arguments: the volume's shard-*.json, the fleet's reports on it.
    let margs =
        merge.spec.and_then(|s| s.template.spec).map(|p| p.containers[0].args.clone().unwrap_or_default());
    let mut argv = vec!["hls-swarm".to_owned()];
    argv.extend(margs.unwrap_or_default());
    let parsed = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let Some(Command::Merge(m)) = parsed.command else { panic!("{argv:?} is not a merge") };
    assert_eq!(m.files, [PathBuf::from(&mount.mount_path)], "merge reads the volume's shard-*.json");
    for a in &m.asserts {
        assert!(swarm::output::thresholds::Assertion::parse(a).is_ok(), "--assert {a}");
    }
    for r in &m.reports {
        assert!(r.starts_with(&mount.mount_path), "{} is on the volume", r.display());
    }
}
