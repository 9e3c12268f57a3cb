//! The real sources the offline checks evaluate: nixpkgs' `lib/` and microvm.nix at the
//! revision `flake.lock` pins, from the git bundles in `../shared/nix-inputs` (next to the
//! repository on the lab's machines and in CI; elsewhere set `HLS_LAB_NIX_INPUTS`).
//!
//! nixpkgs itself is far too large to bundle, so its `lib/` comes from the nixpkgs.lib mirror
//! at the bundle's newest revision, which is the closest there is to the pinned nixpkgs (the
//! module system and `lib.fileset` change slowly). microvm.nix is exactly the pinned revision.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{run, workspace};

#[derive(Debug)]
pub struct Inputs {
    /// nixpkgs' `lib/` directory.
    pub lib: PathBuf,
    /// microvm.nix's source tree at `microvm_rev`, without `.git`.
    pub microvm: PathBuf,
    pub microvm_rev: String,
}

fn bundles() -> PathBuf {
    std::env::var_os("HLS_LAB_NIX_INPUTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/nix-inputs"))
}

/// The inputs, extracted once per test process into `target/nix-inputs/`.
///
/// # Errors
/// A skip naming the missing bundles (outside CI; under CI a failure).
pub fn get() -> Result<&'static Inputs, testkit::Skip> {
    static INPUTS: OnceLock<Result<Inputs, testkit::Skip>> = OnceLock::new();
    INPUTS.get_or_init(extract).as_ref().map_err(|skip| testkit::Skip(skip.0.clone()))
}

fn extract() -> Result<Inputs, testkit::Skip> {
    let dir = bundles();
    let (lib_bundle, microvm_bundle) = (dir.join("nixpkgs-lib.bundle"), dir.join("microvm.nix.bundle"));
    testkit::need::installed(
        &format!("the Nix input bundles in {}", dir.display()),
        lib_bundle.is_file() && microvm_bundle.is_file(),
        "git bundles of nixpkgs.lib and microvm.nix; set HLS_LAB_NIX_INPUTS to their directory",
    )?;
    let microvm_rev = locked_rev("microvm");
    let out = workspace().join("target/nix-inputs");
    let lib_tree = tree(&lib_bundle, "HEAD", &out.join("nixpkgs-lib"));
    let microvm = tree(&microvm_bundle, &microvm_rev, &out.join(format!("microvm-{microvm_rev}")));
    Ok(Inputs { lib: lib_tree.join("lib"), microvm, microvm_rev })
}

/// `flake.lock`'s locked revision of `node`.
fn locked_rev(node: &str) -> String {
    let text = std::fs::read_to_string(workspace().join("flake.lock")).expect("read flake.lock");
    let lock: serde_json::Value = serde_json::from_str(&text).expect("flake.lock is JSON");
    lock["nodes"][node]["locked"]["rev"]
        .as_str()
        .unwrap_or_else(|| panic!("flake.lock has no locked rev for {node}"))
        .to_owned()
}

/// `rev` of the repository in `bundle`, as a plain tree at `dest` (made once; `git archive`
/// leaves out `.git`, so `nix hash path` gives the narHash a flake lock records).
fn tree(bundle: &Path, rev: &str, dest: &Path) -> PathBuf {
    let done = dest.with_extension("complete");
    if done.is_file() {
        return dest.to_owned();
    }
    let clone = dest.with_extension("git");
    let _ = std::fs::remove_dir_all(&clone);
    let _ = std::fs::remove_dir_all(dest);
    run(Command::new("git").args(["clone", "--quiet", "--bare"]).arg(bundle).arg(&clone));
    std::fs::create_dir_all(dest).expect("create input dir");
    let archive = run(Command::new("git").arg("-C").arg(&clone).args(["archive", "--format=tar", rev]));
    let mut tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dest)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run tar");
    std::io::Write::write_all(tar.stdin.as_mut().expect("tar stdin"), &archive.stdout).expect("feed tar");
    drop(tar.stdin.take());
    assert!(
        tar.wait().expect("wait for tar").success(),
        "tar failed extracting {rev} of {}",
        bundle.display()
    );
    let _ = std::fs::remove_dir_all(&clone);
    // Marks a finished extraction, outside the tree (a file inside would change its hash).
    std::fs::write(done, rev).expect("mark input dir");
    dest.to_owned()
}
