//! The docker-archives built from this host's binaries: reproducible, complete (every library
//! each program's loader resolves is inside the layer, at a path that resolves the same way),
//! and without credentials. No container runtime is used.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use containers::archive::{self, Written};
use containers::cli::build_images;
use containers::spec::Image;
use microvm::ldd;
use sha2::{Digest, Sha256};

use crate::common;

/// One layer entry: kind, mode, owner, mtime, symlink target, its first 4 KiB.
#[derive(Debug)]
struct Node {
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: Option<String>,
    head: Vec<u8>,
}

/// The manifest, the config (parsed, and the sha256 of its bytes) and the layer of a
/// docker-archive, the layer as path → entry. Checks that every entry of the archive itself
/// carries `stamp` as its mtime.
fn open(archive: &Path, stamp: u64) -> (serde_json::Value, serde_json::Value, String, HashMap<String, Node>) {
    let read = |want: &dyn Fn(&str) -> bool| -> Option<(String, Vec<u8>)> {
        let mut a = tar::Archive::new(std::fs::File::open(archive).unwrap());
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            if want(&name) {
                let mut b = Vec::new();
                e.read_to_end(&mut b).unwrap();
                return Some((name, b));
            }
        }
        None
    };
    let (_, manifest) = read(&|n| n == "manifest.json").expect("manifest.json");
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let config_name = manifest[0]["Config"].as_str().unwrap().to_owned();
    let layer_name = manifest[0]["Layers"][0].as_str().unwrap().to_owned();
    let (_, config) = read(&|n| n == config_name).expect("config");
    let config_digest: String = Sha256::digest(&config).iter().map(|b| format!("{b:02x}")).collect();
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();

    let mut outer = tar::Archive::new(std::fs::File::open(archive).unwrap());
    let mut nodes = HashMap::new();
    for e in outer.entries().unwrap() {
        let e = e.unwrap();
        assert_eq!(e.header().mtime().unwrap(), stamp, "{:?}", e.path());
        if e.path().unwrap().display().to_string() != layer_name {
            continue;
        }
        let mut layer = tar::Archive::new(e);
        for le in layer.entries().unwrap() {
            let mut le = le.unwrap();
            let path = le.path().unwrap().display().to_string().trim_end_matches('/').to_owned();
            let h = le.header().clone();
            let mut head = Vec::new();
            (&mut le).take(4096).read_to_end(&mut head).unwrap();
            let link = le.link_name().unwrap().map(|l| l.display().to_string());
            let node = Node {
                kind: h.entry_type(),
                mode: h.mode().unwrap(),
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                mtime: h.mtime().unwrap(),
                link,
                head,
            };
            assert!(nodes.insert(path.clone(), node).is_none(), "{path} twice in the layer");
        }
    }
    assert!(!nodes.is_empty(), "layer {layer_name} not found");
    (manifest, config, config_digest, nodes)
}

/// Follows symlinks inside the layer (relative and absolute) to the entry a path names.
fn resolve<'a>(map: &'a HashMap<String, Node>, path: &str) -> Option<(String, &'a Node)> {
    let link_of =
        |p: &str| map.get(p).map(|e| if e.kind == tar::EntryType::Symlink { e.link.clone() } else { None });
    let key = microvm::cpio::resolve_links(path, link_of)?;
    map.get(&key).map(|n| (key, n))
}

#[testkit::test]
fn images_from_host_binaries_are_complete_reproducible_and_without_credentials() {
    let inputs = common::inputs();
    let images = [Image::swarm_client(&inputs), Image::test_origin(&inputs)];
    let dir = tempfile::tempdir().unwrap();
    let first = build_images(&images, &dir.path().join("a")).unwrap();
    let second = build_images(&images, &dir.path().join("b")).unwrap();
    let strip_path = |w: &Written| Written { path: "".into(), ..w.clone() };
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(strip_path(a), strip_path(b), "same inputs, same image");
        assert_eq!(std::fs::read(&a.path).unwrap(), std::fs::read(&b.path).unwrap(), "{}", a.reference);
    }
    assert_ne!(first[0].id, first[1].id);

    // No build time anywhere: every entry and the config carry the fixed stamp.
    let stamp = archive::mtime();
    for (img, w) in images.iter().zip(&first) {
        let (manifest, config, config_digest, layer) = open(&w.path, stamp);
        assert_eq!(manifest[0]["RepoTags"][0], img.reference());
        // The image id is the digest of the config's bytes, which name it in the manifest;
        // the layer is named by its digest, which the config records.
        assert_eq!(w.id, format!("sha256:{config_digest}"));
        assert_eq!(manifest[0]["Config"], format!("{config_digest}.json"));
        let layer_hex = w.layer.strip_prefix("sha256:").unwrap();
        assert_eq!(manifest[0]["Layers"][0], format!("{layer_hex}/layer.tar"));
        assert_eq!(config["config"]["User"], format!("{0}:{0}", img.user.uid));
        assert_eq!(config["rootfs"]["diff_ids"][0], w.layer);
        assert_eq!(config["created"], archive::rfc3339(stamp));
        assert_eq!(config["history"][0]["created"], archive::rfc3339(stamp));
        assert_eq!(layer.len(), w.entries);

        // Programs at their image paths, executable; every library their loader resolves on
        // the host resolves inside the layer to an ELF file.
        for (host, dest) in &img.programs {
            let (_, e) = resolve(&layer, dest).unwrap_or_else(|| panic!("{dest} missing in {}", img.name));
            assert!(e.kind == tar::EntryType::Regular && e.mode & 0o111 != 0, "{dest} not executable");
            assert!(e.head.starts_with(b"\x7fELF"), "{dest}");
            for lib in ldd::needed(host).unwrap() {
                let (p, e) = resolve(&layer, &lib.to_string_lossy())
                    .unwrap_or_else(|| panic!("{} (for {dest}) missing in {}", lib.display(), img.name));
                assert!(e.head.starts_with(b"\x7fELF"), "{p}");
            }
        }

        // One non-root user, no password anywhere, no keys, nothing setuid, everything owned
        // by root and stamped.
        let passwd = String::from_utf8(layer["etc/passwd"].head.clone()).unwrap();
        assert_eq!(passwd, img.passwd());
        assert!(passwd.contains(&format!("{0}:x:{1}:{1}:", img.user.name, img.user.uid)));
        assert!(passwd.lines().all(|l| l.split(':').nth(1) == Some("x")), "{passwd}");
        let group = String::from_utf8(layer["etc/group"].head.clone()).unwrap();
        assert!(group.lines().all(|l| l.split(':').nth(1) == Some("x")), "{group}");
        for (p, n) in &layer {
            assert!(
                !(p.ends_with("shadow") || p.contains(".ssh") || p.ends_with("authorized_keys")),
                "{p} in {}",
                img.name
            );
            assert_eq!((n.uid, n.gid), (0, 0), "{p} not owned by root");
            assert_eq!(n.mtime, stamp, "{p} carries another time");
            assert_eq!(n.mode & 0o6000, 0, "{p} is setuid/setgid");
            // Private keys are PEM text (libraries carry the marker as a string: skip ELF).
            if n.kind == tar::EntryType::Regular && !n.head.starts_with(b"\x7fELF") {
                assert!(!n.head.windows(12).any(|w| w == b"PRIVATE KEY-"), "{p} holds a private key");
            }
        }
        assert_eq!(layer["tmp"].mode & 0o7777, 0o1777);
        assert_eq!(
            resolve(&layer, "etc/ssl/certs/ca-bundle.crt").is_some(),
            inputs.ca_bundle.is_some(),
            "the CA bundle is in the image exactly when the host has one"
        );
    }
}
