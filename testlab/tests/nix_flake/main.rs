//! The Nix flake, checked on a machine without nixpkgs (this one, and CI).
//!
//! What can be checked offline, is:
//! - every `.nix` file parses and is formatted (`nixpkgs-fmt --check`);
//! - the flake evaluates against the stand-ins under `nix/offline-stub/` (`--override-input`),
//!   which use the real nixpkgs `lib/` and microvm.nix's real option declarations and
//!   assertions from the bundles in `../shared/nix-inputs` ([`inputs`]). The NixOS modules, the
//!   origin MicroVM and the VM test's nodes are evaluated with the real `lib.evalModules`, so an
//!   unknown option, a type error or a failed assertion fails ([`modules`]); the builders the
//!   flake calls take exactly the real argument lists;
//! - the flake has every output the README and the Makefile name, with the right kind;
//! - `flake.lock` pins microvm.nix to the bundle's source (its narHash is recomputed) and
//!   nixpkgs to the revision that microvm.nix's own lock was tested with;
//! - what Rust and Nix must agree on ([`cross`]): the toolchain against Cargo.lock, the
//!   package's file set against what the code reads, the VM test's patterns against a real
//!   summary, the TAP's queues against the VM's vCPUs, hls-lab's wrapper against what it runs.
//!
//! Building anything needs real nixpkgs: that happens in `nix flake check` on a Nix machine.
//!
//! Needs `nix` (Debian's `nix-bin`, installed by `scripts/install-deps --test`) and the bundles.
//! Without them the tests are reported as skipped; under CI (`CI` set) they fail instead
//! (testkit's runner). The `nix_flake` prefix lets the flake's own `workspace-tests` check skip
//! them inside the Nix build sandbox.

mod cross;
mod inputs;
mod modules;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

fn main() -> std::process::ExitCode {
    testkit::main()
}

const SYSTEMS: [&str; 2] = ["x86_64-linux", "aarch64-linux"];
/// The version `cargo install` fetches when `nixpkgs-fmt` is not installed.
const NIXPKGS_FMT_VERSION: &str = "1.3.0";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testlab lives inside the workspace").to_owned()
}

/// `name` on PATH, or `None`.
fn which(name: &str) -> Option<PathBuf> {
    testkit::which(name)
}

/// `nix` and `nix-instantiate` (Debian's nix-bin, which `make test` installs).
fn have_nix() -> testkit::Outcome {
    testkit::need::program("nix")?;
    testkit::need::program("nix-instantiate")?;
    Ok(())
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn nix() -> Command {
    let mut c = Command::new("nix");
    c.args(["--extra-experimental-features", "nix-command flakes"]);
    c
}

/// The workspace's files copied to a fresh directory with the stand-ins completed (nixpkgs'
/// `lib/` and microvm.nix's source from [`inputs`]), removed on drop. Evaluating a copy keeps
/// target/ out of the Nix store and sees uncommitted edits.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, testkit::Skip> {
        let inputs = inputs::get()?;
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hls-lab-nix-flake-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let scratch = Scratch(dir);
        copy_tree(&workspace(), &scratch.0);
        let stub = scratch.0.join("nix/offline-stub");
        copy_tree(&inputs.lib, &stub.join("nixpkgs/lib"));
        copy_tree(&inputs.microvm, &stub.join("microvm/src"));
        Ok(scratch)
    }

    /// `nix eval --raw <flake>#<attr> --apply <apply>` with both inputs replaced by the stubs.
    fn eval(&self, attr: &str, apply: &str) -> String {
        String::from_utf8(run(&mut self.eval_command(attr, apply)).stdout).expect("nix prints UTF-8")
    }

    fn eval_command(&self, attr: &str, apply: &str) -> Command {
        let stub = |name: &str| format!("path:{}", self.0.join("nix/offline-stub").join(name).display());
        let mut c = nix();
        c.args(["eval", "--raw", "--no-write-lock-file"])
            .args(["--override-input", "nixpkgs", &stub("nixpkgs")])
            .args(["--override-input", "microvm", &stub("microvm")])
            .arg(format!("path:{}#{attr}", self.0.display()))
            .args(["--apply", apply]);
        c
    }

    /// [`Scratch::eval_expr`] of an expression that ends in `builtins.toJSON`: the value
    /// parsed, and its text for messages. A failure panics, showing the error.
    fn eval_json(&self, expr: &str) -> (serde_json::Value, String) {
        let text = self.eval_expr(expr).unwrap_or_else(|e| panic!("{expr}\nfailed:\n{e}"));
        (serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")), text)
    }

    /// `nix eval --raw --impure --expr <expr>`, where `expr` may use `flake` (the flake's
    /// outputs over the stand-ins), `lib` (the real nixpkgs lib), `pkgs` (the stand-in
    /// packages of x86_64-linux), `nixos` (the stand-in `lib.nixosSystem`) and `src` (the copy).
    fn eval_expr(&self, expr: &str) -> Result<String, String> {
        let dir = self.0.display();
        let full = format!(
            r#"
            let
              src = {dir};
              stub = name: builtins.getFlake "path:{dir}/nix/offline-stub/${{name}}";
              nixpkgs = stub "nixpkgs";
              microvm = stub "microvm";
              lib = nixpkgs.lib;
              pkgs = nixpkgs.legacyPackages.x86_64-linux;
              nixos = lib.nixosSystem;
              flake = let self = (import {dir}/flake.nix).outputs {{ inherit self nixpkgs microvm; }}; in self;
            in
            {expr}"#
        );
        let out = nix().args(["eval", "--raw", "--impure", "--expr", &full]).output().expect("run nix");
        if out.status.success() {
            Ok(String::from_utf8(out.stdout).expect("UTF-8"))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Copies a directory tree, leaving out build output and version control (`target`, `.git`).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create dir");
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let entry = entry.expect("dir entry");
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let dest = to.join(&name);
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            copy_tree(&entry.path(), &dest);
        } else if kind.is_file() {
            fs::copy(entry.path(), &dest).unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// flake.nix and every `.nix` file under nix/, sorted.
fn nix_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("read nix/") {
            let p = entry.expect("dir entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension() == Some(OsStr::new("nix")) {
                out.push(p);
            }
        }
    }
    let ws = workspace();
    let mut files = vec![ws.join("flake.nix")];
    walk(&ws.join("nix"), &mut files);
    files.sort();
    assert!(files.len() > 5, "too few .nix files found: {files:?}");
    files
}

/// Flake references (`.#name`, `.#checks.x86_64-linux.fmt`) in README or Makefile text.
/// A name cut short by a make variable (`.#test-origin-$(PROFILE)`) ends in `-`.
fn flake_refs(text: &str) -> BTreeSet<String> {
    text.match_indices(".#")
        .map(|(i, _)| {
            text[i + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                .collect::<String>()
                .trim_end_matches('.')
                .to_owned()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// Every output as `output.system.name` (`output.name` for modules and overlays,
/// `formatter.system`) → kind: `derivation <name>`, `app <program>`, `function`.
fn flake_outputs(scratch: &Scratch) -> BTreeMap<String, String> {
    // One line per output attribute; `describe` forces each value as far as the stubs allow.
    let describe = r#"
      let
        describe = v:
          if builtins.isFunction v then "function"
          else if !(builtins.isAttrs v) then builtins.typeOf v
          else if (v.type or "") == "derivation" then "derivation ${v.name}"
          else if (v.type or "") == "app" then "app ${v.program}"
          else "attrs";
        lines = prefix: set: builtins.attrValues (builtins.mapAttrs (n: v: "${prefix}.${n} ${describe v}") set);
      in"#;
    let mut all = BTreeMap::new();
    let mut add = |text: String| {
        for line in text.lines() {
            let (path, kind) = line.split_once(' ').expect("`path kind` lines");
            all.insert(path.to_owned(), kind.to_owned());
        }
    };
    for output in ["packages", "apps", "checks", "devShells"] {
        add(scratch.eval(
            output,
            &format!(
                r#"out: {describe} builtins.concatStringsSep "\n" (builtins.concatLists (builtins.attrValues
                     (builtins.mapAttrs (system: set: lines "{output}.${{system}}" set) out)))"#
            ),
        ));
    }
    for output in ["formatter", "nixosModules", "overlays"] {
        add(scratch.eval(
            output,
            &format!(r#"out: {describe} builtins.concatStringsSep "\n" (lines "{output}" out)"#),
        ));
    }
    all
}

/// hls-origin's profile names, read from its source (testlab has no dependencies, so the
/// workspace lock file does not change for this test).
fn origin_profiles() -> Vec<String> {
    let src = fs::read_to_string(workspace().join("origin/src/profile.rs")).expect("origin/src/profile.rs");
    let start = src.find("\npub const NAMES").expect(
        "origin/src/profile.rs defines `pub const NAMES` (the profile list); update this test if it moved",
    );
    // The declaration, however rustfmt wraps it: up to the list's end.
    let line = &src[start..start + src[start..].find("];").expect("NAMES = [...];")];
    let list = line.split_once('=').expect("NAMES = [...]").1;
    let names: Vec<String> = list.split('"').skip(1).step_by(2).map(str::to_owned).collect();
    assert!(names.contains(&"default".to_owned()), "no profile list in: {line}");
    names
}

/// What the issue asks the flake to have, per system and flat.
fn required(profiles: &[String]) -> (Vec<String>, Vec<&'static str>) {
    let mut per_system: Vec<String> = [
        "packages.default derivation",
        "packages.hls-swarm derivation",
        "packages.hls-origin derivation",
        "packages.hls-lab derivation",
        "packages.swarm-client-container derivation",
        "packages.test-origin-container derivation",
        "packages.test-origin-vm derivation",
        "packages.test-origin-vm-tap derivation",
        "apps.run app",
        "apps.microvm-start app",
        "apps.microvm-start-tap app",
        "apps.network-setup app",
        "apps.network-teardown app",
        "checks.fmt derivation",
        "checks.clippy derivation",
        "checks.workspace-tests derivation",
        "checks.swarm-vs-origin derivation",
        "devShells.default derivation",
    ]
    .map(str::to_owned)
    .to_vec();
    per_system.extend(profiles.iter().map(|p| match p.as_str() {
        "default" => "apps.test-origin app".to_owned(),
        p => format!("apps.test-origin-{p} app"),
    }));
    let flat =
        vec!["nixosModules.origin function", "nixosModules.network function", "overlays.default function"];
    (per_system, flat)
}

#[testkit::test]
fn flake_refs_are_found_in_readme_and_makefile_text() {
    let text = "nix run .#run -- --clients 10 URL\n\
                `nix build .#test-origin-container`.\n\
                \tnix run .#test-origin-$(PROFILE)\n\
                nix build .#checks.x86_64-linux.fmt; nix develop";
    let refs: Vec<String> = flake_refs(text).into_iter().collect();
    assert_eq!(refs, ["checks.x86_64-linux.fmt", "run", "test-origin-", "test-origin-container"]);
}

#[testkit::test]
fn nix_flake_files_parse() -> testkit::Outcome {
    have_nix()?;
    for f in nix_files() {
        run(Command::new("nix-instantiate").arg("--parse").arg(&f));
    }
    Ok(())
}

#[testkit::test]
fn nix_flake_files_are_formatted() -> testkit::Outcome {
    let ws = workspace();
    let tools = ws.join("target/tools");
    let local = tools.join("bin/nixpkgs-fmt");
    let fmt = which("nixpkgs-fmt").or_else(|| local.is_file().then(|| local.clone())).or_else(|| {
        eprintln!("installing nixpkgs-fmt {NIXPKGS_FMT_VERSION} into {}", tools.display());
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let ok = Command::new(cargo)
            .args(["install", "--locked", "--quiet", "--version", NIXPKGS_FMT_VERSION, "--root"])
            .arg(&tools)
            .arg("nixpkgs-fmt")
            // Build in cargo's own temporary directory, not in the target dir this test runs from.
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .is_ok_and(|s| s.success());
        (ok && local.is_file()).then(|| local.clone())
    });
    testkit::need::installed(
        "nixpkgs-fmt",
        fmt.is_some(),
        &format!("`cargo install nixpkgs-fmt --version {NIXPKGS_FMT_VERSION}` failed"),
    )?;
    let out = Command::new(fmt.expect("checked above"))
        .arg("--check")
        .args(nix_files())
        .output()
        .expect("run nixpkgs-fmt");
    assert!(
        out.status.success(),
        "not formatted; run `nixpkgs-fmt flake.nix nix` (or `nix fmt`):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[testkit::test]
fn nix_flake_outputs_cover_the_issue_readme_and_makefile() -> testkit::Outcome {
    have_nix()?;
    let scratch = Scratch::new()?;
    let outputs = flake_outputs(&scratch);
    let has = |path: &str, kind: &str| {
        outputs.get(path).is_some_and(|k| k == kind || k.starts_with(&format!("{kind} ")))
    };

    let mut missing = Vec::new();
    let (per_system, flat) = required(&origin_profiles());
    for system in SYSTEMS {
        for req in &per_system {
            let (attr, kind) = req.split_once(' ').expect("`attr kind`");
            let (output, name) = attr.split_once('.').expect("output.name");
            let path = format!("{output}.{system}.{name}");
            if !has(&path, kind) {
                missing.push(format!("{path} ({kind}; found {:?})", outputs.get(&path)));
            }
        }
        if !has(&format!("formatter.{system}"), "derivation") {
            missing.push(format!("formatter.{system}"));
        }
    }
    for req in flat {
        let (path, kind) = req.split_once(' ').expect("`path kind`");
        if !has(path, kind) {
            missing.push(format!("{path} ({kind})"));
        }
    }

    // `nix run .#x` / `nix build .#x` in the README and the Makefile: an app or a package.
    let ws = workspace();
    let mut refs = BTreeSet::new();
    for doc in ["README.md", "Makefile"] {
        let text = fs::read_to_string(ws.join(doc)).unwrap_or_else(|e| panic!("read {doc}: {e}"));
        refs.extend(flake_refs(&text).into_iter().map(|r| (doc, r)));
    }
    eprintln!("README.md and Makefile name {} flake outputs", refs.len());
    for (doc, r) in &refs {
        for system in SYSTEMS {
            let found = if r.contains('.') {
                outputs.contains_key(r.as_str())
            } else if r.ends_with('-') {
                ["apps", "packages"]
                    .iter()
                    .any(|o| outputs.keys().any(|k| k.starts_with(&format!("{o}.{system}.{r}"))))
            } else {
                ["apps", "packages"].iter().any(|o| outputs.contains_key(&format!("{o}.{system}.{r}")))
            };
            if !found {
                missing.push(format!("{doc} names .#{r}, which is neither an app nor a package on {system}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the flake lacks:\n  {}\nit has:\n  {}",
        missing.join("\n  "),
        outputs.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join("\n  ")
    );
    Ok(())
}

#[testkit::test]
fn nix_flake_lock_pins_every_input() -> testkit::Outcome {
    have_nix()?;
    let scratch = Scratch::new()?;
    let dir = scratch.0.display();
    // One line per fact, so that no JSON parser is needed here.
    let expr = format!(
        r#"
        let
          lock = builtins.fromJSON (builtins.readFile {dir}/flake.lock);
          inputs = (import {dir}/flake.nix).inputs;
          root = lock.nodes.${{lock.root}}.inputs;
          str = v: if builtins.isList v then "follows:" + builtins.concatStringsSep "/" v else v;
          nodeLines = key: node:
            let l = node.locked or {{}}; in
            [ "node ${{key}} ${{l.type or "-"}} ${{l.rev or "-"}} ${{l.narHash or "-"}}" ]
            ++ builtins.attrValues (builtins.mapAttrs (n: v: "edge ${{key}} ${{n}} ${{str v}}") (node.inputs or {{}}));
        in
        builtins.concatStringsSep "\n" (
          builtins.attrValues (builtins.mapAttrs (n: v: "input ${{n}} ${{v.url}}") inputs)
          ++ builtins.concatLists (builtins.attrValues (builtins.mapAttrs (n: v:
               builtins.attrValues (builtins.mapAttrs (i: f: "follow ${{n}} ${{i}} ${{f.follows}}") (v.inputs or {{}}))) inputs))
          ++ builtins.attrValues (builtins.mapAttrs (n: v: "root ${{n}} ${{v}}") root)
          ++ builtins.concatLists (builtins.attrValues (builtins.mapAttrs (k: v:
               if k == lock.root then [ ] else nodeLines k v) lock.nodes))
          ++ [ "original nixpkgs ${{lock.nodes.${{root.nixpkgs}}.original.owner}}/${{lock.nodes.${{root.nixpkgs}}.original.repo}}/${{lock.nodes.${{root.nixpkgs}}.original.ref or ""}}" ]
          ++ [ "original microvm ${{lock.nodes.${{root.microvm}}.original.owner}}/${{lock.nodes.${{root.microvm}}.original.repo}}" ]
        )"#
    );
    let out = run(nix().args(["eval", "--raw", "--impure", "--expr", &expr]));
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let lines: BTreeSet<&str> = text.lines().collect();
    let field = |prefix: &str| -> Vec<Vec<&str>> {
        lines.iter().filter_map(|l| l.strip_prefix(prefix)).map(|l| l.split(' ').collect()).collect()
    };

    let inputs: BTreeSet<&str> = field("input ").iter().map(|f| f[0]).collect();
    let rooted: BTreeSet<&str> = field("root ").iter().map(|f| f[0]).collect();
    assert_eq!(inputs, BTreeSet::from(["microvm", "nixpkgs"]), "flake.nix inputs");
    assert_eq!(inputs, rooted, "flake.lock's root inputs differ from flake.nix's");
    assert!(lines.contains("follow microvm nixpkgs nixpkgs"), "microvm must follow our nixpkgs:\n{text}");
    assert!(
        lines.contains("edge microvm nixpkgs follows:nixpkgs"),
        "flake.lock does not record microvm's nixpkgs as following ours:\n{text}"
    );
    assert!(lines.contains("input nixpkgs github:NixOS/nixpkgs/nixos-unstable"), "{text}");
    assert!(
        lines.contains("original nixpkgs NixOS/nixpkgs/nixos-unstable"),
        "lock's nixpkgs is not the url in flake.nix:\n{text}"
    );
    // The repository's current owner: the old one (astro) only works through a redirect.
    assert!(lines.contains("input microvm github:microvm-nix/microvm.nix"), "{text}");
    assert!(
        lines.contains("original microvm microvm-nix/microvm.nix"),
        "lock's microvm is not the url in flake.nix:\n{text}"
    );

    // microvm.nix is locked to the source the offline checks evaluate, with its real hash,
    // and nixpkgs to the revision microvm.nix's own lock was tested with at that revision.
    let inputs = inputs::get()?;
    let locked = |node: &str| {
        field("node ").into_iter().find(|f| f[0] == node).unwrap_or_else(|| panic!("no node {node}:\n{text}"))
    };
    let microvm = locked("microvm");
    assert_eq!(microvm[2], inputs.microvm_rev, "flake.lock's microvm rev is not the one inputs.rs extracted");
    let hash = run(nix().args(["hash", "path"]).arg(&inputs.microvm)).stdout;
    assert_eq!(
        microvm[3],
        String::from_utf8_lossy(&hash).trim(),
        "flake.lock's microvm narHash is not the hash of microvm.nix {}",
        inputs.microvm_rev
    );
    let theirs = fs::read_to_string(inputs.microvm.join("flake.lock")).expect("microvm.nix's flake.lock");
    let nixpkgs = locked("nixpkgs");
    for (what, value) in [("rev", nixpkgs[2]), ("narHash", nixpkgs[3])] {
        assert!(
            theirs.contains(&format!("\"{what}\": \"{value}\"")),
            "flake.lock's nixpkgs {what} {value} is not the nixpkgs microvm.nix {} locks:\n{theirs}",
            inputs.microvm_rev
        );
    }

    let nodes = field("node ");
    assert!(nodes.len() >= 2, "no locked nodes:\n{text}");
    for n in nodes {
        let [key, kind, rev, hash] = n[..] else { panic!("bad line {n:?}") };
        assert!(["github", "git"].contains(&kind), "{key}: locked type {kind}");
        assert!(
            rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()) && rev.bytes().any(|b| b != b'0'),
            "{key}: rev {rev} is not a commit id"
        );
        let b64 = hash.strip_prefix("sha256-").unwrap_or("");
        assert!(
            b64.len() == 44
                && b64.ends_with('=')
                && b64.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
            "{key}: narHash {hash} is not an SRI sha256"
        );
    }
    Ok(())
}
