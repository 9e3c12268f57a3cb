//! The VM image: a kernel and an initramfs assembled from the host's own binaries, cached by
//! a key over its inputs.
//!
//! The initramfs holds `hls-origin`, ffmpeg, nginx and both exporters at fixed paths, every
//! shared library they load at the path their loader found it (with the host's symlinks on the
//! way, such as `/lib64 -> usr/lib64`), busybox for the init, the virtio/ACPI modules
//! (decompressed), the init script and a minimal `/etc`. The kernel is stored twice: as shipped
//! (`bzImage`) and, when its payload format is supported, extracted (`vmlinux`), which saves
//! the guest its self-decompression under TCG.
//!
//! The cache key hashes every input's path, size, mtime and inode plus the generated files'
//! bytes; an unchanged host gives the same key and the build is skipped.
//!
//! [`Inputs`] are the host files an image is built from; a [`Plan`] is its file set (also what a
//! container image holds), with the cache key and the walk every archive writer shares; this
//! module builds, caches and prunes the images.

mod error;
mod inputs;
mod plan;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::kernel;
use error::io;

pub use error::Error;
pub use inputs::{default_origin, on_path, Inputs, Overrides};
pub use plan::{Content, Entry, Plan};

/// How the kernel was stored in the image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KernelFiles {
    /// The host's bzImage, copied.
    pub bzimage: PathBuf,
    /// The extracted ELF kernel, when the payload format is supported.
    pub vmlinux: Option<PathBuf>,
    /// The payload's compression (`xz`, …).
    pub payload: String,
    /// Why there is no `vmlinux`, if there is none.
    pub note: Option<String>,
}

/// A built (or cached) image, as recorded in its `image.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    /// The cache key.
    pub key: String,
    /// The image directory.
    pub dir: PathBuf,
    /// The initramfs (uncompressed newc).
    pub initramfs: PathBuf,
    /// Its size in bytes.
    pub initramfs_bytes: u64,
    /// Entries in it.
    pub entries: usize,
    /// Kernel files.
    pub kernel: KernelFiles,
    /// Kernel release.
    pub release: String,
    /// What it was built from.
    pub inputs: Inputs,
    /// Seconds the build took.
    pub build_seconds: f64,
    /// Bytes saved by stripping debug sections.
    pub stripped_bytes: u64,
    /// Whether this call reused a cached image (not stored).
    #[serde(skip)]
    pub cached: bool,
}

/// `$XDG_CACHE_HOME/hls-lab/images`, else `~/.cache/hls-lab/images`.
#[must_use]
pub fn default_cache_root() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|x| !x.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".cache"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("hls-lab-cache"));
    base.join("hls-lab").join("images")
}

/// Builds the origin image under `cache_root/<key>/`, or returns the cached one.
///
/// # Errors
/// Anything in [`Error`].
pub fn build(inputs: &Inputs, cache_root: &Path) -> Result<Image, Error> {
    let started = Instant::now();
    let plan = Plan::origin(inputs)?;
    let k = kernel::Kernel::open(&inputs.kernel)?;
    let key = plan.key(&[&inputs.kernel])?;
    let dir = cache_root.join(&key);
    let record = dir.join("image.json");
    if let Ok(text) = std::fs::read_to_string(&record) {
        if let Ok(mut image) = serde_json::from_str::<Image>(&text) {
            if image.initramfs.is_file() && image.kernel.bzimage.is_file() {
                image.cached = true;
                return Ok(image);
            }
        }
    }
    std::fs::create_dir_all(cache_root).map_err(io("cannot create", cache_root))?;
    let tmp = cache_root.join(format!(".{key}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io("cannot create", &tmp))?;
    let result = (|| {
        let stripped_bytes = plan.write(&tmp.join("initramfs.cpio"), &tmp)?;
        std::fs::copy(&inputs.kernel, tmp.join("bzImage")).map_err(io("cannot copy", &inputs.kernel))?;
        let payload = k.payload_format()?.map_or_else(|| "unknown".to_owned(), |f| f.to_string());
        let (vmlinux, note) = match k.extract() {
            Ok((_, bytes)) => {
                let p = tmp.join("vmlinux");
                std::fs::write(&p, bytes).map_err(io("cannot write", &p))?;
                (Some(dir.join("vmlinux")), None)
            }
            Err(e) => (None, Some(format!("kernel kept as shipped: {e}"))),
        };
        let initramfs = dir.join("initramfs.cpio");
        let initramfs_bytes = std::fs::metadata(tmp.join("initramfs.cpio")).map_or(0, |m| m.len());
        let image = Image {
            key: key.clone(),
            dir: dir.clone(),
            initramfs,
            initramfs_bytes,
            entries: plan.len(),
            kernel: KernelFiles { bzimage: dir.join("bzImage"), vmlinux, payload, note },
            release: k.header.release.clone(),
            inputs: inputs.clone(),
            build_seconds: started.elapsed().as_secs_f64(),
            stripped_bytes,
            cached: false,
        };
        let json = serde_json::to_string_pretty(&image).map_err(|e| Error::Io {
            action: "cannot encode",
            path: record.clone(),
            source: e.into(),
        })?;
        std::fs::write(tmp.join("image.json"), json).map_err(io("cannot write", &tmp))?;
        Ok(image)
    })();
    let image = match result {
        Ok(image) => image,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    // Another build of the same key may have won the race: keep theirs.
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
        if !record.is_file() {
            return Err(Error::Io {
                action: "cannot install image into",
                path: dir,
                source: std::io::Error::other("rename failed"),
            });
        }
    }
    prune(cache_root, &key);
    Ok(image)
}

/// Keeps the newest two images besides `keep` (older ones belong to replaced host packages).
fn prune(cache_root: &Path, keep: &str) {
    let Ok(entries) = std::fs::read_dir(cache_root) else { return };
    let mut others: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name != keep && !name.starts_with('.') && e.path().join("image.json").is_file()
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    others.sort();
    let excess = others.len().saturating_sub(2);
    for (_, p) in others.into_iter().take(excess) {
        let _ = std::fs::remove_dir_all(p);
    }
}

/// Writes the KVM probe's initramfs to `out`.
///
/// # Errors
/// busybox unreadable or the file cannot be written.
pub fn write_probe(busybox: &Path, out: &Path) -> Result<(), Error> {
    let plan = Plan::probe(busybox)?;
    let scratch = out.parent().unwrap_or(Path::new("/tmp"));
    plan.write(out, scratch).map(|_| ())
}
