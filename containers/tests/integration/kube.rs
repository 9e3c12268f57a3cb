//! The Kubernetes Job's pod spec run by a real container runtime: `deploy/kubernetes/job.yaml`'s
//! pod template, one pod per index as the Job controller makes them (the index in the pod's
//! `batch.kubernetes.io/job-completion-index` annotation), its ConfigMap from `run.env`, played
//! with `podman kube play` (podman reads Kubernetes Pod YAML; Debian 12's 4.3 has no Jobs).
//! The pods run the swarm image against an origin on this host's loopback (podman 4.3 pods
//! cannot join a namespace by path, so they use the host's network; their metrics are off so
//! the three do not share a port), write their reports to the claimed volume, and the reports
//! merge into counts equal to nginx's access log. What differs from the manifest is said where
//! it is changed: the image (the test's own), the claim's name (unique), the container port
//! (podman would map it), and the run's values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use containers::cli::build_images;
use containers::podman::{self, conf::Conf, Podman};
use containers::spec::Image;
use serde_json::{json, Value};

use crate::common;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// Removes the pods, the volume and the image, whatever happens to the test.
struct Kube {
    podman: Podman,
    yaml: PathBuf,
    volume: String,
    image: String,
}

impl Drop for Kube {
    fn drop(&mut self) {
        let y = self.yaml.display().to_string();
        for args in [vec!["kube", "down", &y], vec!["volume", "rm", "--force", &self.volume]] {
            if let Err(e) = self.podman.output(&args) {
                eprintln!("cleanup: podman {args:?}: {e}");
            }
        }
        if let Err(e) = self.podman.remove_images(&[&self.image]) {
            eprintln!("cleanup: {e}");
        }
    }
}

#[testkit::test]
fn the_jobs_pods_run_under_podman_and_merge_to_nginxs_counts_needs_root() -> testkit::Outcome {
    testkit::need::root("runs rootful podman (runc)")?;
    testkit::need::program("podman")?;
    testkit::need::program("catatonit")?;
    let program =
        podman::find().expect("podman is not installed: scripts/install-deps --containers installs it");
    let t0 = Instant::now();
    let sfx = common::suffix();
    let inputs = common::inputs();

    // The swarm image into a private store.
    let tmp = tempfile::Builder::new().prefix("hls-kube-test-").tempdir().unwrap();
    let mut img = Image::swarm_client(&inputs);
    img.name = format!("{}-k{sfx}", img.name);
    img.tag = "test".into();
    let written = build_images(std::slice::from_ref(&img), &tmp.path().join("images")).unwrap();
    let conf = Conf::for_this_host().write(&tmp.path().join("containers.conf")).unwrap();
    let podman = Podman::new(program).with_storage(&tmp.path().join("storage")).with_conf(&conf);
    let image = format!("localhost/{}", img.reference());
    let yaml = tmp.path().join("pods.yaml");
    let volume = format!("hls-swarm-results-{sfx}");
    let kube =
        Kube { podman: podman.clone(), yaml: yaml.clone(), volume: volume.clone(), image: image.clone() };
    podman.load(&written[0].path).unwrap();

    // The origin on loopback, logging every request.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let mut config = origin::Config::new("logged").expect("logged profile");
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.source = origin::Source::Replay;
    (config.overrides.width, config.overrides.height, config.overrides.bitrate_kbps) =
        (Some(320), Some(180), Some(300));
    config.log_dir = Some(logs.path().to_owned());
    let origin = rt.block_on(origin::start(config)).expect("origin starts");
    let log = origin.access_log().expect("an access log");

    // The manifests, as the Job controller and kustomize would hand them to the kubelet.
    let job: Value =
        serde_yaml::from_str(&std::fs::read_to_string(deploy().join("job.yaml")).unwrap()).unwrap();
    let shards = job["spec"]["completions"].as_u64().unwrap();
    let mut env: BTreeMap<String, String> = std::fs::read_to_string(deploy().join("run.env"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    assert_eq!(env["HLS_SWARM_SHARDS"], shards.to_string(), "run.env and the Job agree on the shards");
    // This run's values.
    let start = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() + 15;
    for (k, v) in [
        ("HLS_SWARM_URL", origin.playlist_url()),
        ("HLS_SWARM_CLIENTS", "6".into()),
        ("HLS_SWARM_RAMP_RATE", "6".into()),
        ("HLS_SWARM_DURATION", "10s".into()),
        ("HLS_SWARM_RUN_ID", format!("kube-{sfx}")),
        ("HLS_SWARM_START_AT", start.to_string()),
        ("HLS_SWARM_METRICS", "off".into()),
    ] {
        assert!(env.insert(k.to_owned(), v).is_some(), "run.env sets {k}");
    }
    let mut docs = vec![json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "hls-swarm-run"},
        "data": env,
    })];
    for i in 0..shards {
        let mut pod = job["spec"]["template"].clone();
        pod["metadata"]["name"] = json!(format!("hls-swarm-{i}-{sfx}"));
        pod["metadata"]["annotations"] = json!({"batch.kubernetes.io/job-completion-index": i.to_string()});
        pod["spec"]["containers"][0]["image"] = json!(image);
        // Podman 4.3 turns every containerPort into a mapping, which host networking refuses;
        // on the host's network the port needs none.
        pod["spec"]["containers"][0].as_object_mut().unwrap().remove("ports");
        pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = json!(volume);
        let mut pod = pod.as_object().unwrap().clone();
        pod.insert("apiVersion".into(), json!("v1"));
        pod.insert("kind".into(), json!("Pod"));
        docs.push(Value::Object(pod));
    }
    let text: Vec<String> = docs.iter().map(|d| serde_yaml::to_string(d).unwrap()).collect();
    std::fs::write(&yaml, text.join("---\n")).unwrap();
    podman.output(&["kube", "play", "--network", "host", &yaml.display().to_string()]).unwrap();
    eprintln!("pods started at {:.1} s", t0.elapsed().as_secs_f64());

    let names: Vec<String> = (0..shards).map(|i| format!("hls-swarm-{i}-{sfx}-hls-swarm")).collect();
    let started = Instant::now();
    while names.iter().any(|n| podman.inspect(n, "{{.State.Running}}").is_ok_and(|r| r == "true")) {
        assert!(started.elapsed() < Duration::from_secs(120), "the pods did not end within 120 s");
        std::thread::sleep(Duration::from_millis(500));
    }
    rt.block_on(origin.stop()).unwrap();
    for n in &names {
        let code = podman.inspect(n, "{{.State.ExitCode}}").unwrap();
        assert_eq!(code, "0", "{n}: {}", podman.logs(n, 60));
    }
    eprintln!("pods ended at {:.1} s", t0.elapsed().as_secs_f64());

    // The claimed volume holds one report per index; merged, they are the fleet's.
    let mount = podman.output(&["volume", "inspect", "--format", "{{.Mountpoint}}", &volume]).unwrap();
    let fleet = tmp.path().join("fleet.json");
    let merged =
        Command::new(&inputs.swarm).args(["merge", &mount, "--report"]).arg(&fleet).output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&merged.stdout), String::from_utf8_lossy(&merged.stderr));
    assert_eq!(merged.status.code(), Some(0), "{said}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&fleet).unwrap()).unwrap();
    let logged = origin::access_log::parse(&std::fs::read_to_string(&log).unwrap());
    let viewers: Vec<_> = logged.iter().filter(|x| x.user_agent.contains(" viewer/")).collect();
    let segments = viewers.iter().filter(|x| x.is_segment()).count() as u64;
    let playlists = viewers.iter().filter(|x| x.is_playlist()).count() as u64;
    let by_kind = &r["requests"]["by_kind"];
    assert!(segments >= 6, "a real run: {segments} segments logged");
    assert_eq!(by_kind["segment"]["count"].as_u64(), Some(segments), "{said}");
    let counted =
        by_kind["playlist"]["count"].as_u64().unwrap_or(0) + by_kind["master"]["count"].as_u64().unwrap_or(0);
    assert_eq!(counted, playlists, "{said}");
    assert_eq!(r["viewers"]["target"], 6);
    assert_eq!(r["run"]["run_id"], format!("kube-{sfx}"));
    drop(kube);
    eprintln!("done in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}
