//! What Rust and Nix must agree on, checked from both sides.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{have_nix, run, workspace, Scratch};

/// `a.b.c` as numbers, for comparing Rust versions.
fn version(v: &str) -> Vec<u64> {
    let mut parts: Vec<u64> =
        v.split('.').map(|p| p.parse().unwrap_or_else(|_| panic!("not a version: {v}"))).collect();
    parts.resize(3, 0);
    parts
}

/// `cargo metadata` of the workspace, with every locked package.
fn metadata() -> serde_json::Value {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = run(Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline", "--manifest-path"])
        .arg(workspace().join("Cargo.toml")));
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// The toolchain the flake builds with is new enough for every locked crate, and the
/// workspace's own minimum says so too (and applies to every member).
#[testkit::test]
fn nix_flake_toolchain_is_new_enough_for_cargo_lock() {
    let meta = metadata();
    let packages = meta["packages"].as_array().expect("packages");
    let members: BTreeSet<&str> =
        meta["workspace_members"].as_array().expect("members").iter().filter_map(|m| m.as_str()).collect();
    let (mut highest, mut by) = (vec![0], String::new());
    for p in packages {
        let Some(rv) = p["rust_version"].as_str() else { continue };
        if version(rv) > highest {
            highest = version(rv);
            by = format!("{} {} (rust-version {rv})", p["name"].as_str().unwrap_or("?"), p["version"]);
        }
    }
    assert!(!by.is_empty(), "no locked package declares a rust-version");

    let ws: toml::Value =
        toml::from_str(&fs::read_to_string(workspace().join("Cargo.toml")).expect("read Cargo.toml"))
            .expect("Cargo.toml is TOML");
    let declared = ws["workspace"]["package"]["rust-version"].as_str().expect("workspace rust-version");
    assert!(version(declared) >= highest, "workspace rust-version {declared} is below {by}");
    for p in packages.iter().filter(|p| members.contains(p["id"].as_str().unwrap_or(""))) {
        assert_eq!(
            p["rust_version"].as_str(),
            Some(declared),
            "member {} does not inherit the workspace's rust-version (add `rust-version.workspace = true`)",
            p["name"]
        );
    }

    let lab = fs::read_to_string(workspace().join("nix/lab.nix")).expect("read nix/lab.nix");
    let pinned = lab
        .lines()
        .find_map(|l| l.trim().strip_prefix("nixpkgsRustcAtLeast = \"")?.strip_suffix("\";"))
        .expect("nix/lab.nix records nixpkgsRustcAtLeast");
    assert!(
        version(pinned) >= highest,
        "the pinned nixpkgs has rustc {pinned} or newer (nix/lab.nix), but {by} needs more: \
         pin a newer nixpkgs in flake.nix and record its rustc"
    );
    let flake = fs::read_to_string(workspace().join("flake.nix")).expect("read flake.nix");
    assert!(
        flake.contains("nixpkgsRustcAtLeast"),
        "flake.nix no longer says where the rustc fact comes from"
    );
}

/// Paths the code reads relative to its source: `include_str!`/`include_bytes!` arguments
/// (relative to the file) and `env!("CARGO_MANIFEST_DIR")` followed by a literal (relative to
/// the member), as workspace-relative paths with their reader.
fn referenced_paths() -> Vec<(PathBuf, String)> {
    let ws = workspace();
    let mut found = Vec::new();
    let mut files = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).expect("read dir") {
            let p = e.expect("entry").path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if p.is_dir() && name != "target" && !name.starts_with('.') {
                walk(&p, out);
            } else if name.ends_with(".rs") {
                out.push(p);
            }
        }
    }
    walk(&ws, &mut files);
    // This test reads the README, the Makefile and flake.nix itself; it never runs in the
    // Nix build (checks.workspace-tests skips it), so its own paths are not the package's.
    let own = ws.join("testlab/tests/nix_flake");
    for file in files.iter().filter(|f| !f.starts_with(&own)) {
        let text = fs::read_to_string(file).expect("read source");
        let member = member_of(&ws, file);
        for (marker, base) in [
            ("include_str!(", file.parent().expect("dir").to_owned()),
            ("include_bytes!(", file.parent().expect("dir").to_owned()),
            ("env!(\"CARGO_MANIFEST_DIR\")", member.clone()),
        ] {
            for (i, _) in text.match_indices(marker) {
                let rest = &text[i + marker.len()..];
                // The literal that follows within a few characters (`, "`, `).join("`, `"`).
                let Some(q) = rest.find('"').filter(|q| *q <= 12) else { continue };
                let Some(end) = rest[q + 1..].find('"') else { continue };
                let lit = &rest[q + 1..q + 1 + end];
                if lit.contains('{') || lit.is_empty() {
                    continue;
                }
                let path = normalize(&base.join(lit.trim_start_matches('/')));
                let rel = path.strip_prefix(&ws).unwrap_or(&path).to_owned();
                found.push((rel, format!("{}", file.strip_prefix(&ws).unwrap_or(file).display())));
            }
        }
    }
    found
}

fn member_of(ws: &Path, file: &Path) -> PathBuf {
    let mut dir = file.parent().expect("dir");
    while dir != ws {
        if dir.join("Cargo.toml").is_file() {
            return dir.to_owned();
        }
        dir = dir.parent().expect("inside the workspace");
    }
    ws.to_owned()
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// The package's source (`nix/packages.nix`'s file set, evaluated with the real
/// `lib.fileset`) holds every file the code reads: else `checks.clippy` and
/// `checks.workspace-tests` do not compile or fail in the sandbox.
#[testkit::test]
fn nix_flake_package_source_has_every_file_the_code_reads() -> testkit::Outcome {
    have_nix()?;
    let scratch = Scratch::new()?;
    let listed = scratch
        .eval_expr(
            r#"let set = (import (src + "/nix/packages.nix") { inherit pkgs; }).fileset; in
               builtins.concatStringsSep "\n" (map toString (lib.fileset.toList set))"#,
        )
        .unwrap_or_else(|e| panic!("evaluating the file set failed:\n{e}"));
    let root = scratch.0.canonicalize().expect("scratch dir");
    let in_set: BTreeSet<PathBuf> = listed
        .lines()
        .map(|l| {
            let p = Path::new(l);
            // Evaluated from the copy: the paths are the copy's, or its store path's.
            p.strip_prefix(&root).or_else(|_| p.strip_prefix(&scratch.0)).unwrap_or(p).to_owned()
        })
        .collect();
    assert!(in_set.contains(Path::new("Cargo.lock")), "the file set has no Cargo.lock: {listed}");

    let refs = referenced_paths();
    assert!(refs.len() >= 10, "too few references found; the scanner is broken: {refs:?}");
    let ws = workspace();
    let mut missing = Vec::new();
    for (path, reader) in &refs {
        let abs = ws.join(path);
        let wanted: Vec<PathBuf> = if abs.is_dir() {
            let mut files = Vec::new();
            files_under(&abs, &mut files);
            files.into_iter().map(|f| f.strip_prefix(&ws).expect("inside").to_owned()).collect()
        } else {
            vec![path.clone()]
        };
        for w in wanted {
            if !in_set.contains(&w) {
                missing.push(format!("{} (read by {reader})", w.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "nix/packages.nix's file set lacks what the code reads:\n  {}",
        missing.join("\n  ")
    );
    Ok(())
}

/// Files under `dir`, leaving out build output and version control.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.file_name().is_some_and(|n| n == "target" || n == ".git") {
            continue;
        }
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The NixOS VM test asserts on the summary with Python regular expressions; each must match
/// the summary of a real run (Python's own `re`, as in the test driver).
#[testkit::test]
async fn nix_flake_vm_test_patterns_match_a_real_summary() -> testkit::Outcome {
    have_nix()?;
    let python = testkit::need::program("python3")?;
    let scratch = Scratch::new()?;
    let script = scratch
        .eval_expr(
            r#"(import (src + "/nix/tests/swarm-vs-origin.nix") {
                 pkgs = pkgs // { testers.runNixOSTest = args: args; };
                 lab = import (src + "/nix/lab.nix");
                 self = flake;
               }).testScript"#,
        )
        .unwrap_or_else(|e| panic!("reading the VM test's script failed:\n{e}"));
    let patterns: Vec<&str> = script
        .match_indices("field(r\"")
        .filter_map(|(i, m)| {
            let rest = &script[i + m.len()..];
            rest.find("\")").map(|end| &rest[..end])
        })
        .collect();
    assert!(patterns.len() >= 4, "too few field(...) patterns in the VM test:\n{script}");
    assert!(script.contains("\"duration reached\" in out"), "{script}");

    let summary = real_summary().await;
    assert!(summary.contains("duration reached"), "{summary}");
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("out.txt"), &summary).expect("write summary");
    let check = format!(
        "import re, sys\nout = open(sys.argv[1]).read()\nbad = []\nfor p in {patterns:?}:\n    \
         m = re.search(p, out, re.MULTILINE)\n    print(p, '->', m.groups() if m else None)\n    \
         bad += [] if m else [p]\nsys.exit('no match: ' + repr(bad) if bad else 0)\n"
    );
    let out =
        Command::new(python).arg("-c").arg(&check).arg(dir.path().join("out.txt")).output().expect("python3");
    assert!(
        out.status.success(),
        "the VM test's patterns do not all match a real summary:\n{}{}\nsummary:\n{summary}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// stdout of a short real run: hls-swarm, 2 FFmpeg viewers, against hls-origin on loopback.
async fn real_summary() -> String {
    let env = testlab::Env::from_test_exe(&workspace().join("testlab"));
    let bin = |name: &str| env.bin(name).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().expect("temp dir");
    let spec: testlab::scenario::OriginSpec =
        toml::from_str("source = \"replay\"\nwidth = 320\nheight = 180\n").expect("origin spec");
    let dirs = testlab::origin::OriginDirs {
        work: dir.path().to_owned(),
        cache: env.cache.clone(),
        logs: dir.path().to_owned(),
    };
    let mut origin =
        testlab::origin::OriginProcess::start(&bin("hls-origin"), &spec, "nix-flake", &dirs, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    let args: Vec<String> = ["--clients", "2", "--ramp-rate", "5", "--duration", "6s", "--tui=false"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([origin.endpoints.playlist_url.clone()])
        .collect();
    let mut swarm = testlab::swarm::Swarm::start(&bin("hls-swarm"), &args, dir.path(), "nix-flake", None)
        .unwrap_or_else(|e| panic!("{e}"));
    let done = swarm.wait(Duration::from_secs(120)).await;
    let stopped = origin.stop().await;
    let stdout = fs::read_to_string(&done.stdout).unwrap_or_default();
    assert_eq!(
        done.code,
        Some(0),
        "hls-swarm failed:\n{stdout}\n{}",
        fs::read_to_string(&done.stderr).unwrap_or_default()
    );
    stopped.unwrap_or_else(|e| panic!("{e}"));
    stdout
}

/// microvm.nix opens a TAP with one queue per vCPU when the VM has more than one, and the kernel
/// refuses to attach queues to a single-queue TAP: every way the lab creates the TAP must make
/// it multi-queue for the origin VM as declared.
#[testkit::test]
fn nix_flake_tap_queues_match_the_vms_vcpus() -> testkit::Outcome {
    have_nix()?;
    let scratch = Scratch::new()?;
    let (v, vm) = scratch.eval_json(
            r#"let
                 lab = import (src + "/nix/lab.nix");
                 s = nixos { modules = [ { nixpkgs.hostPlatform = "x86_64-linux"; } microvm.nixosModules.microvm
                   flake.nixosModules.origin (import (src + "/nix/microvm/origin-vm.nix") { inherit lab; tap = true; }) ]; };
                 net = nixos { modules = [ { nixpkgs.hostPlatform = "x86_64-linux"; } flake.nixosModules.network
                   { networking.hls-lab.enable = true; } ]; };
               in
               builtins.toJSON {
                 vcpu = s.config.microvm.vcpu;
                 taps = map (i: i.id) (builtins.filter (i: i.type == "tap") s.config.microvm.interfaces);
                 networkModule = net.config.systemd.network.netdevs."41-${lab.network.tap}".tapConfig.MultiQueue;
               }"#,
    );
    assert_eq!(v["taps"], serde_json::json!(["hlstap0"]), "{vm}");
    let vcpu = v["vcpu"].as_u64().expect("vcpu");
    if vcpu > 1 {
        assert_eq!(
            v["networkModule"], true,
            "nixosModules.network makes a single-queue TAP for a {vcpu}-vCPU VM"
        );
        let tap = fs::read_to_string(workspace().join("network/src/tap.rs")).expect("network/src/tap.rs");
        let flags =
            tap.lines().find(|l| l.starts_with("const FLAGS")).expect("network/src/tap.rs: const FLAGS");
        assert!(
            flags.contains("IFF_MULTI_QUEUE"),
            "`hls-lab network setup` (network/src/tap.rs) makes a single-queue TAP, which the \
             {vcpu}-vCPU origin VM cannot attach to"
        );
    }
    Ok(())
}

/// `nix run .#hls-lab …` on NixOS: the wrapper provides what hls-lab runs and the kernel it
/// boots, under the variable names hls-lab reads.
#[testkit::test]
fn nix_flake_hls_lab_wrapper_has_what_hls_lab_needs() -> testkit::Outcome {
    have_nix()?;
    let scratch = Scratch::new()?;
    let (v, text) = scratch.eval_json(
        r#"let p = flake.packages.x86_64-linux.hls-lab; in
               builtins.toJSON { tools = map (t: t.name) p.tools; env = p.env; }"#,
    );
    let tools: Vec<&str> = v["tools"].as_array().expect("tools").iter().filter_map(|t| t.as_str()).collect();
    // busybox: the guest's init in the image hls-lab builds; nft: `network setup --nat`.
    for needed in ["busybox", "nftables", "qemu", "nginx", "ffmpeg"] {
        assert!(tools.iter().any(|t| t.starts_with(needed)), "hls-lab's wrapper lacks {needed}: {tools:?}");
    }
    let cli = fs::read_to_string(workspace().join("microvm/src/cli.rs")).expect("microvm/src/cli.rs");
    for var in ["HLS_LAB_KERNEL", "HLS_LAB_MODULES"] {
        assert!(v["env"][var].is_string(), "hls-lab's wrapper does not set {var}: {text}");
        assert!(cli.contains(&format!("env = \"{var}\"")), "hls-lab no longer reads {var}");
    }
    Ok(())
}

/// Programs the tests look for that `checks.workspace-tests` deliberately does not provide,
/// and why: the tests that use them cannot run in the Nix build sandbox and skip there.
const NOT_IN_SANDBOX: [(&str, &str); 10] = [
    ("podman", "rootful podman needs root"),
    ("catatonit", "podman kube play's init; rootful podman needs root"),
    ("ip", "network namespaces need root"),
    ("nft", "network namespaces need root"),
    ("setpriv", "used in network namespaces, which need root"),
    ("cpio", "the origin VM's image needs a host kernel, and KVM or minutes of TCG"),
    ("qemu-system-x86_64", "the origin VM needs a host kernel, and KVM or minutes of TCG"),
    ("nix", "testlab's nix_flake tests run Nix on the flake; skipped there by name"),
    ("nix-instantiate", "testlab's nix_flake tests; skipped there by name"),
    ("python3", "testlab's nix_flake tests (the VM test's patterns); skipped there by name"),
];

/// Which nixpkgs package provides a program the tests look for.
const PROVIDED_BY: [(&str, &str); 11] = [
    ("ffmpeg", "ffmpeg-headless"),
    ("ffprobe", "ffmpeg-headless"),
    ("nginx", "nginx"),
    // nixpkgs' node_exporter under Debian's name (nix/packages.nix's `exporters`).
    ("prometheus-node-exporter", "hls-lab-exporters"),
    ("prometheus", "prometheus"),
    ("promtool", "prometheus"),
    ("tmux", "tmux"),
    ("chromium", "chromium"),
    ("stress-ng", "stress-ng"),
    ("zsh", "zsh"),
    ("fish", "fish"),
];

/// Every program a test asks for (`testkit::need::program`) is either given to
/// `checks.workspace-tests` or listed above with the reason it is not: otherwise the check
/// skips a test that could run in the sandbox, and nobody notices.
#[testkit::test]
fn nix_flake_workspace_tests_check_has_every_program_the_tests_use() -> testkit::Outcome {
    have_nix()?;
    let scratch = Scratch::new()?;
    let (v, text) = scratch.eval_json(
        r#"let a = flake.checks.x86_64-linux.workspace-tests.drvAttrs; in
               builtins.toJSON { inputs = map (p: p.name) a.nativeCheckInputs; flags = a.checkFlags;
                                 preCheck = a.preCheck; }"#,
    );
    let inputs: Vec<&str> =
        v["inputs"].as_array().expect("inputs").iter().filter_map(|t| t.as_str()).collect();
    assert_eq!(v["flags"], serde_json::json!(["--skip", "nix_flake"]), "{text}");
    // The ll-hls acceptance test's player: the hls.js scripts/fetch-hlsjs pins, fetched by
    // Nix (a fixed-output fetchurl, checked by the stand-in's real argument list).
    let fetch = fs::read_to_string(workspace().join("scripts/fetch-hlsjs")).expect("scripts/fetch-hlsjs");
    let version = fetch.lines().find_map(|l| l.strip_prefix("version=")).expect("a version= line");
    let pre = v["preCheck"].as_str().unwrap_or_default();
    assert!(
        pre.contains(&format!("hls.js-{version}.tgz")) && pre.contains("export HLS_LAB_HLSJS="),
        "checks.workspace-tests does not hand the tests hls.js {version}: {pre}"
    );

    let mut asked = BTreeSet::new();
    let mut files = Vec::new();
    files_under(&workspace(), &mut files);
    for f in files.iter().filter(|f| f.extension().is_some_and(|e| e == "rs")) {
        let src = fs::read_to_string(f).expect("read source");
        for (i, m) in src.match_indices("need::program(\"") {
            let rest = &src[i + m.len()..];
            // A program's name; not an elided one in a comment (`qemu-…`).
            match rest.find('"').map(|end| &rest[..end]) {
                Some(name) if name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) => {
                    asked.insert(name.to_owned());
                }
                _ => {}
            }
        }
    }
    assert!(asked.len() >= 8, "the scan found too few programs: {asked:?}");
    let mut problems = Vec::new();
    for program in &asked {
        if NOT_IN_SANDBOX.iter().any(|(p, _)| p == program) {
            continue;
        }
        match PROVIDED_BY.iter().find(|(p, _)| p == program) {
            Some((_, package)) if inputs.contains(package) => {}
            Some((_, package)) => {
                problems.push(format!("{program}: nix/checks.nix lacks {package} in nativeCheckInputs"))
            }
            None => problems.push(format!(
                "{program}: neither provided to checks.workspace-tests nor listed as not runnable there"
            )),
        }
    }
    for (p, _) in NOT_IN_SANDBOX {
        if !asked.contains(p) {
            problems.push(format!("{p} is listed as not in the sandbox, but no test asks for it"));
        }
    }

    // A program at a fixed FHS path does not exist in the sandbox (or on NixOS): tests find
    // theirs on PATH. Only tests that never run in the sandbox may name one.
    const FHS_ALLOWED: [(&str, &str); 3] = [
        ("microvm/tests/", "the origin VM's tests need a host kernel"),
        ("network/tests/", "network namespaces need root"),
        ("testlab/tests/nix_flake/", "skipped in the sandbox by name"),
    ];
    let ws = workspace();
    for f in &files {
        let rel = f.strip_prefix(&ws).unwrap_or(f).to_string_lossy().into_owned();
        if !rel.contains("/tests/")
            || !rel.ends_with(".rs")
            || FHS_ALLOWED.iter().any(|(d, _)| rel.starts_with(d))
        {
            continue;
        }
        let src = fs::read_to_string(f).expect("read source");
        for prefix in ["\"/usr/bin/", "\"/usr/sbin/", "\"/bin/", "\"/sbin/"] {
            if let Some(i) = src.find(prefix) {
                let line = src[..i].lines().count().max(1);
                problems.push(format!("{rel}:{line}: a program at a fixed path ({}…)", &prefix[1..]));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "checks.workspace-tests and the tests disagree:\n  {}",
        problems.join("\n  ")
    );
    Ok(())
}

/// The hls-swarm package installs shell completions and man pages by running the binary: the
/// commands it runs must exist and produce them (the real binary, run here the same way).
#[testkit::test]
fn nix_flake_hls_swarm_package_installs_completions_and_man_pages() -> testkit::Outcome {
    have_nix()?;
    let scratch = Scratch::new()?;
    let (v, text) = scratch.eval_json(
        r#"let a = flake.packages.x86_64-linux.hls-swarm.drvAttrs; in
               builtins.toJSON { script = a.buildCommand; inputs = map (p: p.name) a.nativeBuildInputs; }"#,
    );
    let script = v["script"].as_str().expect("buildCommand");
    assert!(v["inputs"].to_string().contains("installShellFiles"), "{text}");
    for shell in ["bash", "zsh", "fish"] {
        assert!(
            script.contains(&format!("--{shell} <($swarm completions {shell})")),
            "no {shell} completions:\n{script}"
        );
    }
    assert!(script.contains("installManPage man/*.1"), "{script}");

    let env = testlab::Env::from_test_exe(&workspace().join("testlab"));
    let swarm = env.bin("hls-swarm").unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().expect("temp dir");
    // Every `$swarm …` command of the script, run as the build would run it.
    let mut ran = 0;
    for (i, _) in script.match_indices("$swarm ") {
        let args: Vec<&str> = script[i + "$swarm ".len()..]
            .split(['\n', ')'])
            .next()
            .expect("a command")
            .split_whitespace()
            .map(|a| a.trim_end_matches('\\'))
            .filter(|a| !a.is_empty())
            .collect();
        let out = Command::new(&swarm).args(&args).current_dir(dir.path()).output().expect("run hls-swarm");
        assert!(out.status.success(), "hls-swarm {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!out.stdout.is_empty() || args.contains(&"--out"), "hls-swarm {args:?} printed nothing");
        ran += 1;
    }
    assert_eq!(ran, 4, "expected three completion commands and one man page command:\n{script}");
    let pages: Vec<String> = fs::read_dir(dir.path().join("man"))
        .expect("the man page command made man/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".1"))
        .collect();
    assert!(pages.contains(&"hls-swarm.1".to_owned()), "{pages:?}");
    Ok(())
}
