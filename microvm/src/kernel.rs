//! The guest kernel: which one, its version (for its modules), and its uncompressed form.
//!
//! A distribution kernel is a bzImage: real-mode setup code, then a self-decompressing payload.
//! Under TCG the guest spends seconds emulating that decompression, so the builder extracts the
//! payload itself: boot protocol ≥ 2.08 records the payload's offset and length
//! (`payload_offset` at 0x248, `payload_length` at 0x24c, relative to the protected-mode code
//! that starts at `(setup_sects + 1) * 512`); its magic names the compression; decoded, it is
//! the `vmlinux` ELF, which qemu boots directly through its PVH entry note (`CONFIG_PVH`).

use std::path::{Path, PathBuf};

use crate::decompress::{self, Format};

/// Kernel problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No kernel given and none found.
    #[error(
        "no kernel found (looked for {looked}); pass the bzImage with --kernel FILE (or \
         HLS_LAB_KERNEL) and its modules, the directory with modules.dep, with --modules-dir DIR \
         (or HLS_LAB_MODULES), or install linux-image-amd64"
    )]
    NotFound {
        /// Where, as [`Search::looked`] says.
        looked: String,
    },
    /// A kernel given without its modules, and none installed for its release.
    #[error(
        "no modules for kernel {kernel} (release {release}; looked for {looked}); pass its \
         modules, the directory with modules.dep, with --modules-dir DIR (or HLS_LAB_MODULES)"
    )]
    NoModules {
        /// The kernel.
        kernel: PathBuf,
        /// Its release.
        release: String,
        /// The directories looked at.
        looked: String,
    },
    /// Unreadable file.
    #[error("cannot read kernel {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not a bzImage this module understands.
    #[error("{path} is not a bzImage ({what})")]
    NotBzImage {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: &'static str,
    },
    /// The payload could not be decoded.
    #[error("kernel payload of {path}")]
    Payload {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: decompress::Error,
    },
}

/// Fields of the x86 boot protocol header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Boot protocol version, e.g. 0x020f.
    pub protocol: u16,
    /// The version string's first word, e.g. `6.1.0-56-amd64`.
    pub release: String,
    /// Offset of the compressed payload in the file.
    pub payload_offset: usize,
    /// Its length.
    pub payload_length: usize,
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses a bzImage's setup header.
///
/// # Errors
/// A static description of what does not match.
pub fn header(b: &[u8]) -> Result<Header, &'static str> {
    if b.get(0x202..0x206) != Some(b"HdrS") {
        return Err("no HdrS signature");
    }
    let protocol = le16(b, 0x206).ok_or("truncated")?;
    if protocol < 0x0208 {
        return Err("boot protocol older than 2.08 records no payload");
    }
    let setup_sects = match b.get(0x1f1).copied().ok_or("truncated")? {
        0 => 4,
        n => usize::from(n),
    };
    let pm_start = (setup_sects + 1) * 512;
    let version_ptr = usize::from(le16(b, 0x20e).ok_or("truncated")?) + 0x200;
    let release = b
        .get(version_ptr..)
        .and_then(|s| s.split(|&c| c == 0 || c == b' ').next())
        .and_then(|s| std::str::from_utf8(s).ok())
        .filter(|s| !s.is_empty())
        .ok_or("no version string")?
        .to_owned();
    let payload_offset = pm_start + le32(b, 0x248).ok_or("truncated")? as usize;
    let payload_length = le32(b, 0x24c).ok_or("truncated")? as usize;
    if payload_offset + payload_length > b.len() || payload_length == 0 {
        return Err("payload outside the file");
    }
    Ok(Header { protocol, release, payload_offset, payload_length })
}

/// A kernel read from disk.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The bzImage.
    pub path: PathBuf,
    /// Its header.
    pub header: Header,
}

impl Kernel {
    /// Reads and checks `path`.
    ///
    /// # Errors
    /// Unreadable, or not a bzImage.
    pub fn open(path: &Path) -> Result<Kernel, Error> {
        let bytes = read(path)?;
        let header = header(&bytes).map_err(|what| Error::NotBzImage { path: path.to_owned(), what })?;
        Ok(Kernel { path: path.to_owned(), header })
    }

    /// The payload's compression, if recognised.
    ///
    /// # Errors
    /// Unreadable file.
    pub fn payload_format(&self) -> Result<Option<Format>, Error> {
        let bytes = read(&self.path)?;
        Ok(decompress::detect(&bytes[self.header.payload_offset..]))
    }

    /// The uncompressed kernel (an ELF `vmlinux`) and the format it was stored in.
    ///
    /// # Errors
    /// Unreadable, unsupported or corrupt payload, or a payload that is not ELF.
    pub fn extract(&self) -> Result<(Format, Vec<u8>), Error> {
        let bytes = read(&self.path)?;
        let h = &self.header;
        let payload = &bytes[h.payload_offset..h.payload_offset + h.payload_length];
        let format = decompress::detect(payload)
            .ok_or(Error::NotBzImage { path: self.path.clone(), what: "unknown payload compression" })?;
        let out = decompress::decompress(format, payload)
            .map_err(|source| Error::Payload { path: self.path.clone(), source })?;
        if !out.starts_with(b"\x7fELF") {
            return Err(Error::NotBzImage { path: self.path.clone(), what: "decoded payload is not ELF" });
        }
        Ok((format, out))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read { path: path.to_owned(), source })
}

/// Compares kernel release strings by their numeric runs (`6.10.0` > `6.9.3`).
#[must_use]
pub fn release_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn key(s: &str) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        let mut num = String::new();
        let mut text = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                if !text.is_empty() {
                    out.push((0, std::mem::take(&mut text)));
                }
                num.push(c);
            } else {
                if !num.is_empty() {
                    out.push((num.parse().unwrap_or(u64::MAX), String::new()));
                    num.clear();
                }
                text.push(c);
            }
        }
        if !num.is_empty() {
            out.push((num.parse().unwrap_or(u64::MAX), String::new()));
        }
        if !text.is_empty() {
            out.push((0, text));
        }
        out
    }
    key(a).cmp(&key(b))
}

/// Where a kernel and its modules are looked for when they are not given.
///
/// A distribution installs `/boot/vmlinuz-<release>` and `/lib/modules/<release>`. NixOS has
/// neither: a system profile links its kernel as `<system>/kernel` (the bzImage in the Nix store)
/// and its modules as `<system>/kernel-modules/lib/modules/<release>`; `/run/booted-system` is
/// the running system, `/run/current-system` the last one activated. (The flake's `hls-lab`
/// package does not search: it sets `HLS_LAB_KERNEL` and `HLS_LAB_MODULES` to its own kernel.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// The distribution's kernels, `vmlinuz-<release>` (`/boot`).
    pub boot: PathBuf,
    /// The distribution's modules, `<release>/modules.dep` (`/lib/modules`).
    pub modules: PathBuf,
    /// NixOS system profiles, in order of preference.
    pub systems: Vec<PathBuf>,
}

/// A kernel found by [`find_default`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// The bzImage.
    pub kernel: PathBuf,
    /// Its release, e.g. `6.1.0-56-amd64`.
    pub release: String,
    /// Its modules, the directory with `modules.dep`.
    pub modules: PathBuf,
}

impl Search {
    /// This host's places.
    #[must_use]
    pub fn host() -> Search {
        Search::under(Path::new("/"))
    }

    /// The same places under `root` (a test's fake tree).
    #[must_use]
    pub fn under(root: &Path) -> Search {
        Search {
            boot: root.join("boot"),
            modules: root.join("lib/modules"),
            systems: vec![root.join("run/booted-system"), root.join("run/current-system")],
        }
    }

    /// The modules of `release`: the first of `<modules>/<release>` and each system's
    /// `kernel-modules/lib/modules/<release>` that has a `modules.dep`.
    #[must_use]
    pub fn modules_for(&self, release: &str) -> Option<PathBuf> {
        let (distribution, nixos) = self.module_dirs(release);
        if distribution.join("modules.dep").is_file() {
            return Some(distribution);
        }
        nixos.into_iter().find(|d| d.join("modules.dep").is_file()).map(store_path)
    }

    /// The distribution's and the systems' module directories for `release`.
    fn module_dirs(&self, release: &str) -> (PathBuf, Vec<PathBuf>) {
        let nixos = self.systems.iter().map(|s| system_modules(s).join(release)).collect();
        (self.modules.join(release), nixos)
    }

    /// What [`find_default`] looks at, for its error.
    #[must_use]
    pub fn looked(&self) -> String {
        let mut out = format!(
            "{} with {}",
            self.boot.join("vmlinuz-<release>").display(),
            self.modules.join("<release>/modules.dep").display()
        );
        if !self.systems.is_empty() {
            let kernels: Vec<String> =
                self.systems.iter().map(|s| s.join("kernel").display().to_string()).collect();
            out.push_str(&format!(
                ", and NixOS's {} with kernel-modules/lib/modules/<release>/modules.dep beside it",
                kernels.join(" or ")
            ));
        }
        out
    }
}

/// A NixOS system's module tree.
fn system_modules(system: &Path) -> PathBuf {
    system.join("kernel-modules/lib/modules")
}

/// The Nix store path behind a system profile's link: it names the kernel that is used, where the
/// link moves with the next switch.
fn store_path(path: PathBuf) -> PathBuf {
    std::fs::canonicalize(&path).unwrap_or(path)
}

/// The newest `<boot>/vmlinuz-<release>` whose modules are installed under `modules_root`.
fn newest_in_boot(boot: &Path, modules_root: &Path) -> Option<(PathBuf, String)> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(boot)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let release = name.strip_prefix("vmlinuz-")?.to_owned();
            modules_root.join(&release).join("modules.dep").is_file().then(|| (release, e.path()))
        })
        .collect();
    found.sort_by(|a, b| release_cmp(&a.0, &b.0));
    found.pop().map(|(r, p)| (p, r))
}

/// The kernel to use when none is given: the newest distribution kernel whose modules are
/// installed, else the first NixOS system's kernel (its release read from its header) whose
/// modules are there.
///
/// # Errors
/// [`Error::NotFound`], naming what was looked at and what to pass.
pub fn find_default(search: &Search) -> Result<Found, Error> {
    if let Some((kernel, release)) = newest_in_boot(&search.boot, &search.modules) {
        let modules = search.modules.join(&release);
        return Ok(Found { kernel, release, modules });
    }
    for system in &search.systems {
        let Ok(k) = Kernel::open(&system.join("kernel")) else { continue };
        let modules = system_modules(system).join(&k.header.release);
        if modules.join("modules.dep").is_file() {
            return Ok(Found {
                kernel: store_path(k.path),
                release: k.header.release,
                modules: store_path(modules),
            });
        }
    }
    Err(Error::NotFound { looked: search.looked() })
}

/// The kernel and its modules directory for an image: each as given, else found. A kernel given
/// without modules gets those of its release (read from its header, [`Search::modules_for`]);
/// modules given without a kernel go with the kernel [`find_default`] finds.
///
/// # Errors
/// The given kernel is unreadable or not a bzImage, its modules are not found, or no kernel is.
pub fn locate(
    kernel: Option<&Path>,
    modules: Option<&Path>,
    search: &Search,
) -> Result<(PathBuf, PathBuf), Error> {
    match (kernel, modules) {
        (Some(k), Some(m)) => Ok((k.to_owned(), m.to_owned())),
        (Some(k), None) => {
            let release = Kernel::open(k)?.header.release;
            let modules = search.modules_for(&release).ok_or_else(|| {
                let (distribution, nixos) = search.module_dirs(&release);
                let looked = std::iter::once(distribution)
                    .chain(nixos)
                    .map(|d| d.join("modules.dep").display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                Error::NoModules { kernel: k.to_owned(), release, looked }
            })?;
            Ok((k.to_owned(), modules))
        }
        (None, m) => {
            let found = find_default(search)?;
            Ok((found.kernel, m.map_or(found.modules, Path::to_owned)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_bzimage(payload: &[u8]) -> Vec<u8> {
        let setup_sects = 2u8;
        let pm = (usize::from(setup_sects) + 1) * 512;
        let mut b = vec![0u8; pm];
        b[0x1f1] = setup_sects;
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        // Version string at 0x200 + 0x100.
        b[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        let v = b"6.1.0-99-test (someone@example) #1 SMP\0";
        b[0x300..0x300 + v.len()].copy_from_slice(v);
        let decomp_stub = [0x90u8; 100];
        b[0x248..0x24c].copy_from_slice(&(decomp_stub.len() as u32).to_le_bytes());
        b[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        b.extend_from_slice(&decomp_stub);
        b.extend_from_slice(payload);
        b.extend_from_slice(&[0u8; 64]);
        b
    }

    #[test]
    fn header_and_extraction_of_a_synthetic_bzimage() {
        use std::io::Write;
        let elf = b"\x7fELF fake vmlinux body";
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(elf).unwrap();
        let bz = fake_bzimage(&e.finish().unwrap());
        let h = header(&bz).unwrap();
        assert_eq!(h.release, "6.1.0-99-test");
        assert_eq!(h.protocol, 0x020f);
        assert_eq!(h.payload_offset, 3 * 512 + 100);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vmlinuz-6.1.0-99-test");
        std::fs::write(&path, &bz).unwrap();
        let k = Kernel::open(&path).unwrap();
        assert_eq!(k.payload_format().unwrap(), Some(Format::Gzip));
        let (format, out) = k.extract().unwrap();
        assert_eq!(format, Format::Gzip);
        assert_eq!(out, elf);
    }

    #[test]
    fn rejects_non_bzimage() {
        assert_eq!(header(&[0u8; 4096]), Err("no HdrS signature"));
        let mut old = fake_bzimage(b"x");
        old[0x206..0x208].copy_from_slice(&0x0204u16.to_le_bytes());
        assert_eq!(header(&old), Err("boot protocol older than 2.08 records no payload"));
    }

    #[test]
    fn release_ordering_is_numeric() {
        use std::cmp::Ordering::*;
        assert_eq!(release_cmp("6.10.0-1-amd64", "6.9.3-1-amd64"), Greater);
        assert_eq!(release_cmp("6.1.0-56-amd64", "6.1.0-9-amd64"), Greater);
        assert_eq!(release_cmp("6.1.0-56-amd64", "6.1.0-56-amd64"), Equal);
    }

    fn modules_dep(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("modules.dep"), b"").unwrap();
    }

    #[test]
    fn finds_newest_kernel_with_modules() {
        let dir = tempfile::tempdir().unwrap();
        let search = Search { systems: vec![], ..Search::under(dir.path()) };
        let (boot, mods) = (&search.boot, &search.modules);
        std::fs::create_dir_all(boot).unwrap();
        for r in ["6.1.0-9-amd64", "6.1.0-56-amd64", "6.12.0-1-amd64"] {
            std::fs::write(boot.join(format!("vmlinuz-{r}")), b"").unwrap();
        }
        // The newest has no modules installed: skipped.
        for r in ["6.1.0-9-amd64", "6.1.0-56-amd64"] {
            modules_dep(&mods.join(r));
        }
        let found = find_default(&search).unwrap();
        assert_eq!(found.release, "6.1.0-56-amd64");
        assert_eq!(found.kernel, boot.join("vmlinuz-6.1.0-56-amd64"));
        assert_eq!(found.modules, mods.join("6.1.0-56-amd64"));
        let swapped = Search { boot: mods.clone(), modules: boot.clone(), systems: vec![] };
        assert!(matches!(find_default(&swapped), Err(Error::NotFound { .. })));
    }

    /// A NixOS system under `root`: `run/<system>/kernel` a link to a bzImage in `nix/store`, and
    /// `run/<system>/kernel-modules` a link to the store's module tree with the release's
    /// `modules.dep`. Returns the bzImage's and the modules' store paths.
    fn nixos_system(root: &Path, system: &str) -> (PathBuf, PathBuf) {
        let store = root.join("nix/store");
        let kernel = store.join("aaaa-linux-6.1.0-99-test/bzImage");
        let tree = store.join("bbbb-kernel-modules");
        std::fs::create_dir_all(kernel.parent().unwrap()).unwrap();
        std::fs::write(&kernel, fake_bzimage(b"payload")).unwrap();
        modules_dep(&tree.join("lib/modules/6.1.0-99-test"));
        let profile = root.join("run").join(system);
        std::fs::create_dir_all(&profile).unwrap();
        std::os::unix::fs::symlink(&kernel, profile.join("kernel")).unwrap();
        std::os::unix::fs::symlink(&tree, profile.join("kernel-modules")).unwrap();
        let store = |p: PathBuf| std::fs::canonicalize(p).unwrap();
        (store(kernel), store(tree.join("lib/modules/6.1.0-99-test")))
    }

    #[test]
    fn finds_the_kernel_and_modules_of_a_nixos_system() {
        let root = tempfile::tempdir().unwrap();
        let search = Search::under(root.path());
        // No /boot, no /lib/modules, only the last activated system.
        let (kernel, modules) = nixos_system(root.path(), "current-system");
        let found = find_default(&search).unwrap();
        assert_eq!(
            found,
            Found { kernel: kernel.clone(), release: "6.1.0-99-test".into(), modules: modules.clone() }
        );
        assert_eq!(locate(None, None, &search).unwrap(), (kernel.clone(), modules.clone()));
        // --kernel alone: its release's modules, from the system when /lib/modules lacks them…
        assert_eq!(locate(Some(&kernel), None, &search).unwrap(), (kernel.clone(), modules));
        // … and from /lib/modules when they are there.
        modules_dep(&search.modules.join("6.1.0-99-test"));
        assert_eq!(
            locate(Some(&kernel), None, &search).unwrap(),
            (kernel.clone(), search.modules.join("6.1.0-99-test"))
        );
        // --modules-dir alone goes with the found kernel; both given are taken as they are.
        let mine = Path::new("/my/modules");
        assert_eq!(locate(None, Some(mine), &search).unwrap(), (kernel, mine.to_owned()));
        let theirs = Path::new("/their/bzImage");
        assert_eq!(locate(Some(theirs), Some(mine), &search).unwrap(), (theirs.to_owned(), mine.to_owned()));
    }

    #[test]
    fn a_distribution_kernel_comes_before_a_nixos_one() {
        let root = tempfile::tempdir().unwrap();
        let search = Search::under(root.path());
        nixos_system(root.path(), "booted-system");
        std::fs::create_dir_all(&search.boot).unwrap();
        std::fs::write(search.boot.join("vmlinuz-6.1.0-56-amd64"), b"").unwrap();
        modules_dep(&search.modules.join("6.1.0-56-amd64"));
        assert_eq!(find_default(&search).unwrap().kernel, search.boot.join("vmlinuz-6.1.0-56-amd64"));
    }

    #[test]
    fn nothing_found_names_the_places_and_the_flags() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path().display();
        let search = Search::under(root.path());
        // A system whose kernel has no modules beside it does not count.
        nixos_system(root.path(), "booted-system");
        std::fs::remove_file(root.path().join("run/booted-system/kernel-modules")).unwrap();
        let text = find_default(&search).unwrap_err().to_string();
        assert_eq!(
            text,
            format!(
                "no kernel found (looked for {r}/boot/vmlinuz-<release> with \
                 {r}/lib/modules/<release>/modules.dep, and NixOS's {r}/run/booted-system/kernel or \
                 {r}/run/current-system/kernel with kernel-modules/lib/modules/<release>/modules.dep \
                 beside it); pass the bzImage with --kernel FILE (or HLS_LAB_KERNEL) and its modules, \
                 the directory with modules.dep, with --modules-dir DIR (or HLS_LAB_MODULES), or \
                 install linux-image-amd64"
            )
        );
        // A kernel given, but no modules for its release anywhere.
        let kernel = root.path().join("nix/store/aaaa-linux-6.1.0-99-test/bzImage");
        let err = locate(Some(&kernel), None, &search).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no modules for kernel {k} (release 6.1.0-99-test; looked for \
                 {r}/lib/modules/6.1.0-99-test/modules.dep, \
                 {r}/run/booted-system/kernel-modules/lib/modules/6.1.0-99-test/modules.dep, \
                 {r}/run/current-system/kernel-modules/lib/modules/6.1.0-99-test/modules.dep); pass its \
                 modules, the directory with modules.dep, with --modules-dir DIR (or HLS_LAB_MODULES)",
                k = kernel.display()
            )
        );
    }
}
