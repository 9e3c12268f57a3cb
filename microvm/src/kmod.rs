//! Kernel modules for the guest: which files, in which order, decompressed.
//!
//! Distribution kernels build virtio-net and virtio-pci as modules, so the init has to `insmod`
//! them before it can configure `eth0`. `modules.dep` lists each module's file and the files it
//! depends on; `modules.builtin` lists what is compiled in (nothing to load). The load order is
//! a depth-first post-order: dependencies before the modules that need them.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::decompress;

/// The modules the image loads: network and PCI/MMIO transport, the entropy device, and the
/// ACPI power button with the input layer it reports through (for a clean `system_powerdown`).
pub const WANTED: [&str; 6] = ["virtio_pci", "virtio_mmio", "virtio_net", "virtio_rng", "button", "evdev"];

/// Module problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file under the modules directory.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Neither built in nor a module.
    #[error("kernel module {name} is neither built in nor listed in {dep_file} (is this kernel's modules package installed?)")]
    NotFound {
        /// The module.
        name: String,
        /// The modules.dep consulted.
        dep_file: PathBuf,
    },
    /// A dependency names a file that has no entry itself.
    #[error("{dep_file}: {file} depends on {missing}, which has no entry")]
    Dangling {
        /// The modules.dep consulted.
        dep_file: PathBuf,
        /// The module.
        file: String,
        /// The dependency.
        missing: String,
    },
    /// Compressed module that cannot be decoded.
    #[error("kernel module {path}")]
    Decompress {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: decompress::Error,
    },
}

/// The canonical module name of a file path: `kernel/drivers/char/hw_random/virtio-rng.ko.xz`
/// → `virtio_rng`.
#[must_use]
pub fn name_of(file: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    let stem = base.split(".ko").next().unwrap_or(base);
    stem.replace('-', "_")
}

/// One `modules.dep` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// The module's file, relative to the modules directory.
    pub file: String,
    /// Files it depends on (directly; modules.dep already lists the transitive closure).
    pub deps: Vec<String>,
}

/// Parses `modules.dep` into module name → entry.
#[must_use]
pub fn parse_dep(text: &str) -> BTreeMap<String, Dep> {
    text.lines()
        .filter_map(|line| {
            let (file, deps) = line.split_once(':')?;
            let file = file.trim().to_owned();
            let deps = deps.split_whitespace().map(str::to_owned).collect();
            Some((name_of(&file), Dep { file, deps }))
        })
        .collect()
}

/// Parses `modules.builtin` into the set of built-in module names.
#[must_use]
pub fn parse_builtin(text: &str) -> HashSet<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(name_of).collect()
}

/// Module files to load for `wanted`, dependencies first, each once. Built-in modules are
/// skipped.
///
/// # Errors
/// [`Error::NotFound`] or [`Error::Dangling`].
pub fn load_order(
    dep: &BTreeMap<String, Dep>,
    builtin: &HashSet<String>,
    wanted: &[&str],
    dep_file: &Path,
) -> Result<Vec<String>, Error> {
    let by_file: BTreeMap<&str, &Dep> = dep.values().map(|d| (d.file.as_str(), d)).collect();
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    fn visit<'a>(
        d: &'a Dep,
        by_file: &BTreeMap<&str, &'a Dep>,
        seen: &mut HashSet<&'a str>,
        order: &mut Vec<String>,
        dep_file: &Path,
    ) -> Result<(), Error> {
        if !seen.insert(d.file.as_str()) {
            return Ok(());
        }
        for f in &d.deps {
            let Some(sub) = by_file.get(f.as_str()) else {
                return Err(Error::Dangling {
                    dep_file: dep_file.to_owned(),
                    file: d.file.clone(),
                    missing: f.clone(),
                });
            };
            visit(sub, by_file, seen, order, dep_file)?;
        }
        order.push(d.file.clone());
        Ok(())
    }
    for w in wanted {
        let name = w.replace('-', "_");
        if builtin.contains(&name) {
            continue;
        }
        let d = dep
            .get(&name)
            .ok_or_else(|| Error::NotFound { name: name.clone(), dep_file: dep_file.to_owned() })?;
        visit(d, &by_file, &mut seen, &mut order, dep_file)?;
    }
    Ok(order)
}

/// The modules to load from `modules_dir` (e.g. `/lib/modules/6.1.0-56-amd64`), in order.
///
/// # Errors
/// Unreadable `modules.dep`, or a module that cannot be found.
pub fn resolve(modules_dir: &Path, wanted: &[&str]) -> Result<Vec<String>, Error> {
    let dep_file = modules_dir.join("modules.dep");
    let text = std::fs::read_to_string(&dep_file)
        .map_err(|source| Error::Read { path: dep_file.clone(), source })?;
    let builtin = std::fs::read_to_string(modules_dir.join("modules.builtin"))
        .map(|t| parse_builtin(&t))
        .unwrap_or_default();
    load_order(&parse_dep(&text), &builtin, wanted, &dep_file)
}

/// The module file's bytes, decompressed when it is `.ko.xz`, `.ko.zst` or `.ko.gz` (the
/// kernel's `init_module` wants a plain ELF object; busybox `insmod` does not decompress).
///
/// # Errors
/// Unreadable or undecodable file.
pub fn read_plain(path: &Path) -> Result<Vec<u8>, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
    if bytes.starts_with(b"\x7fELF") {
        return Ok(bytes);
    }
    match decompress::detect(&bytes) {
        Some(format) => decompress::decompress(format, &bytes)
            .map_err(|source| Error::Decompress { path: path.to_owned(), source }),
        None => Ok(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../testdata/modules.dep.sample");

    #[test]
    fn names_normalise_dashes_and_suffixes() {
        assert_eq!(name_of("kernel/drivers/char/hw_random/virtio-rng.ko"), "virtio_rng");
        assert_eq!(name_of("kernel/drivers/net/virtio_net.ko.xz"), "virtio_net");
        assert_eq!(name_of("kernel/net/core/failover.ko.zst"), "failover");
    }

    #[test]
    fn dependencies_load_first_and_once() {
        let dep = parse_dep(SAMPLE);
        let order =
            load_order(&dep, &HashSet::new(), &["virtio_pci", "virtio_net"], Path::new("modules.dep"))
                .unwrap();
        let names: Vec<_> = order.iter().map(|f| name_of(f)).collect();
        assert_eq!(
            names,
            [
                "virtio_pci_legacy_dev",
                "virtio_pci_modern_dev",
                "virtio_ring",
                "virtio",
                "virtio_pci",
                "failover",
                "net_failover",
                "virtio_net"
            ]
        );
        let pos = |n: &str| names.iter().position(|x| x == n).unwrap();
        assert!(pos("virtio_ring") < pos("virtio"));
        assert!(pos("failover") < pos("net_failover"));
    }

    #[test]
    fn every_wanted_module_resolves_in_the_sample() {
        let dep = parse_dep(SAMPLE);
        let order = load_order(&dep, &HashSet::new(), &WANTED, Path::new("modules.dep")).unwrap();
        for w in WANTED {
            assert!(order.iter().any(|f| name_of(f) == w), "{w}");
        }
        let mut unique = order.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), order.len());
    }

    #[test]
    fn builtin_is_skipped_and_unknown_is_named() {
        let dep = parse_dep(SAMPLE);
        let builtin = parse_builtin("kernel/drivers/input/evdev.ko\n");
        let order = load_order(&dep, &builtin, &["evdev", "button"], Path::new("m.dep")).unwrap();
        assert_eq!(order, ["kernel/drivers/acpi/button.ko"]);
        let e = load_order(&dep, &builtin, &["no_such_mod"], Path::new("m.dep")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "kernel module no_such_mod is neither built in nor listed in m.dep (is this kernel's modules package installed?)"
        );
    }

    #[test]
    fn dangling_dependency_is_an_error() {
        let dep = parse_dep("kernel/a.ko: kernel/b.ko\n");
        let e = load_order(&dep, &HashSet::new(), &["a"], Path::new("m.dep")).unwrap_err();
        assert!(matches!(e, Error::Dangling { .. }), "{e}");
    }

    #[test]
    fn compressed_module_is_decompressed() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut w = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
        w.write_all(b"\x7fELF module").unwrap();
        let path = dir.path().join("m.ko.xz");
        std::fs::write(&path, w.finish().unwrap()).unwrap();
        assert_eq!(read_plain(&path).unwrap(), b"\x7fELF module");
    }
}
