//! The docker-archive: one layer tar written from a [`Plan`], the Docker image config, and
//! `manifest.json`, packed in an uncompressed tar that `podman load` and `docker load` read.
//!
//! ```text
//! manifest.json                      [{"Config": "<c>.json", "RepoTags": ["name:tag"], "Layers": ["<l>/layer.tar"]}]
//! <c>.json                           the image config; <c> = sha256 of these bytes = the image id
//! <l>/layer.tar                      the root file system; <l> = sha256 = the config's diff_id
//! ```
//!
//! Reproducible: entries sorted (the plan's order, parents first), uid/gid 0, one fixed mtime
//! ([`EPOCH`], or `SOURCE_DATE_EPOCH`), no user or group names, and a config without a build
//! time. The layer is written to a temporary file next to the output first (its size and digest
//! go in front of it), then copied in.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use microvm::image::{Content, Entry, Plan};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{io, Error};
use crate::spec::Image;

/// The time stamped on every entry and in the config (1970-01-01T00:00:01Z, as nixpkgs'
/// dockerTools does: some tools take 0 for "unset").
pub const EPOCH: u64 = 1;

/// The mtime to stamp: `SOURCE_DATE_EPOCH` when set to a number, else [`EPOCH`].
#[must_use]
pub fn mtime() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(EPOCH)
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The archive.
    pub path: PathBuf,
    /// `name:tag` as recorded in `manifest.json`.
    pub reference: String,
    /// The image id: `sha256:` + the config's digest.
    pub id: String,
    /// The layer's digest (`sha256:…`, the config's `diff_id`).
    pub layer: String,
    /// The layer's size in bytes.
    pub layer_bytes: u64,
    /// The archive's size in bytes.
    pub bytes: u64,
    /// Entries in the layer.
    pub entries: usize,
    /// Bytes saved by stripping debug sections.
    pub stripped_bytes: u64,
}

/// A writer that hashes and counts what passes through.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn header(kind: tar::EntryType, perm: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(perm);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Writes `plan` as a layer tar into `out`; returns its digest (hex), size and entry count and
/// the bytes stripping saved. Directories end in `/`; host files are streamed.
///
/// # Errors
/// Unreadable inputs, write failures, a path below a non-directory.
pub fn write_layer<W: Write>(
    plan: &Plan,
    scratch: &Path,
    mtime: u64,
    out: W,
) -> Result<(String, u64, usize, u64), Error> {
    let mut tar = tar::Builder::new(Hashing { inner: out, hash: Sha256::new(), len: 0 });
    tar.mode(tar::HeaderMode::Deterministic);
    let mut entries = 0;
    let werr = |path: &str| {
        let path = PathBuf::from(format!("/{path}"));
        move |source| Error::Io { action: "cannot add to the layer", path, source }
    };
    let stripped = plan.walk(scratch, |entry| {
        entries += 1;
        match entry {
            Entry::Dir { path, perm } => {
                let mut h = header(tar::EntryType::Directory, perm, 0, mtime);
                tar.append_data(&mut h, format!("{path}/"), io::empty()).map_err(werr(path))
            }
            Entry::Symlink { path, target } => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0, mtime);
                tar.append_link(&mut h, path, target).map_err(werr(path))
            }
            Entry::CharDev { path, perm, major, minor } => {
                let mut h = header(tar::EntryType::Char, perm, 0, mtime);
                h.set_device_major(major).and_then(|()| h.set_device_minor(minor)).map_err(werr(path))?;
                tar.append_data(&mut h, path, io::empty()).map_err(werr(path))
            }
            Entry::File { path, perm, content: Content::Bytes(b) } => {
                let mut h = header(tar::EntryType::Regular, perm, b.len() as u64, mtime);
                tar.append_data(&mut h, path, &*b).map_err(werr(path))
            }
            Entry::File { path, perm, content: Content::Host(src) } => {
                let f = std::fs::File::open(src).map_err(io("cannot open", src))?;
                let len = f.metadata().map_err(io("cannot stat", src))?.len();
                let mut h = header(tar::EntryType::Regular, perm, len, mtime);
                // A file that changed size while being copied would corrupt the archive: take
                // exactly `len` bytes and fail if fewer come.
                let mut exact = Exact { inner: f.take(len), left: len, path: src };
                tar.append_data(&mut h, path, &mut exact).map_err(werr(path))
            }
        }
    })?;
    let hashing = tar.into_inner().map_err(|source| Error::Io {
        action: "cannot finish the layer",
        path: scratch.to_owned(),
        source,
    })?;
    Ok((hex(&hashing.hash.finalize()), hashing.len, entries, stripped))
}

/// Reads exactly `left` bytes from `inner` or fails.
struct Exact<'a, R> {
    inner: R,
    left: u64,
    path: &'a Path,
}

impl<R: Read> Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} shrank while being copied", self.path.display()),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Docker's image config (`application/vnd.docker.container.image.v1+json`), the fields used.
#[derive(Debug, Serialize)]
struct Config<'a> {
    architecture: &'a str,
    os: &'a str,
    created: String,
    config: RunConfig<'a>,
    rootfs: RootFs,
    history: [History; 1],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig<'a> {
    user: String,
    env: Vec<String>,
    entrypoint: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    cmd: &'a [String],
    working_dir: &'a str,
    exposed_ports: std::collections::BTreeMap<String, Empty>,
    healthcheck: Health<'a>,
    labels: &'a std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
struct Empty {}

/// Durations in nanoseconds, as Docker stores them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Health<'a> {
    test: &'a [String],
    interval: u128,
    timeout: u128,
    start_period: u128,
    retries: u32,
}

#[derive(Debug, Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: [String; 1],
}

#[derive(Debug, Serialize)]
struct History {
    created: String,
    created_by: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    repo_tags: [String; 1],
    layers: [String; 1],
}

/// The Go architecture name of this machine (`amd64`, `arm64`, …).
#[must_use]
pub fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// RFC 3339 UTC for a Unix time (whole seconds).
#[must_use]
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The config JSON for `image` over a layer with digest `layer_hex`.
///
/// # Panics
/// Never: the config holds only strings and numbers.
#[must_use]
pub fn config_json(image: &Image, layer_hex: &str, mtime: u64) -> Vec<u8> {
    let created = rfc3339(mtime);
    let h = &image.healthcheck;
    let config = Config {
        architecture: architecture(),
        os: "linux",
        created: created.clone(),
        config: RunConfig {
            user: format!("{0}:{0}", image.user.uid),
            env: image.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            entrypoint: &image.entrypoint,
            cmd: &image.cmd,
            working_dir: &image.working_dir,
            exposed_ports: image.ports.iter().map(|p| (format!("{p}/tcp"), Empty {})).collect(),
            healthcheck: Health {
                test: &h.test,
                interval: h.interval.as_nanos(),
                timeout: h.timeout.as_nanos(),
                start_period: h.start_period.as_nanos(),
                retries: h.retries,
            },
            labels: &image.labels,
        },
        rootfs: RootFs { kind: "layers", diff_ids: [format!("sha256:{layer_hex}")] },
        history: [History {
            created,
            created_by: format!(
                "hls-containers {} (runtime closure of the host's binaries)",
                env!("CARGO_PKG_VERSION")
            ),
        }],
    };
    serde_json::to_vec_pretty(&config).expect("a config of strings and numbers serialises")
}

/// Builds `image` into the docker-archive `out` (replaced atomically). `scratch` holds stripped
/// copies and the layer while it is written.
///
/// # Errors
/// Anything collecting the closure or writing can raise.
pub fn write(image: &Image, out: &Path, scratch: &Path) -> Result<Written, Error> {
    let plan = image.plan()?;
    let mtime = mtime();
    let layer_tmp = scratch.join(format!("{}.layer.tar", image.name));
    let (layer_hex, layer_bytes, entries, stripped_bytes) = {
        let f = std::fs::File::create(&layer_tmp).map_err(io("cannot create", &layer_tmp))?;
        let mut w = io::BufWriter::with_capacity(1 << 20, f);
        let r = write_layer(&plan, scratch, mtime, &mut w)?;
        w.flush().map_err(io("cannot write", &layer_tmp))?;
        r
    };
    let result = pack(image, out, &layer_tmp, &layer_hex, mtime);
    let _ = std::fs::remove_file(&layer_tmp);
    let (id, bytes) = result?;
    Ok(Written {
        path: out.to_owned(),
        reference: image.reference(),
        id: format!("sha256:{id}"),
        layer: format!("sha256:{layer_hex}"),
        layer_bytes,
        bytes,
        entries,
        stripped_bytes,
    })
}

/// The outer tar: config, layer, manifest. Returns the config digest and the archive size.
fn pack(
    image: &Image,
    out: &Path,
    layer: &Path,
    layer_hex: &str,
    mtime: u64,
) -> Result<(String, u64), Error> {
    let config = config_json(image, layer_hex, mtime);
    let config_hex = hex(&Sha256::digest(&config));
    let manifest = [ManifestEntry {
        config: format!("{config_hex}.json"),
        repo_tags: [image.reference()],
        layers: [format!("{layer_hex}/layer.tar")],
    }];
    let manifest = serde_json::to_vec(&manifest).expect("strings serialise");
    let tmp = out.with_extension("tar.tmp");
    let werr = io("cannot write", &tmp);
    let result = (|| -> io::Result<u64> {
        let f = std::fs::File::create(&tmp)?;
        let mut tar = tar::Builder::new(io::BufWriter::with_capacity(1 << 20, f));
        tar.mode(tar::HeaderMode::Deterministic);
        let mut h = header(tar::EntryType::Regular, 0o644, config.len() as u64, mtime);
        tar.append_data(&mut h, format!("{config_hex}.json"), config.as_slice())?;
        let mut h = header(tar::EntryType::Directory, 0o755, 0, mtime);
        tar.append_data(&mut h, format!("{layer_hex}/"), io::empty())?;
        let lf = std::fs::File::open(layer)?;
        let mut h = header(tar::EntryType::Regular, 0o644, lf.metadata()?.len(), mtime);
        tar.append_data(&mut h, format!("{layer_hex}/layer.tar"), lf)?;
        let mut h = header(tar::EntryType::Regular, 0o644, manifest.len() as u64, mtime);
        tar.append_data(&mut h, "manifest.json", manifest.as_slice())?;
        let f = tar.into_inner()?.into_inner().map_err(io::IntoInnerError::into_error)?;
        f.sync_all()?;
        Ok(f.metadata()?.len())
    })();
    let bytes = match result {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(werr(e));
        }
    };
    std::fs::rename(&tmp, out).map_err(io("cannot rename into place", out))?;
    Ok((config_hex, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1), "1970-01-01T00:00:01Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn layer_is_sorted_root_owned_stamped_and_reproducible() {
        use std::time::{Duration, SystemTime};
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("f");
        std::fs::write(&host, b"hello").unwrap();
        let touch = |secs: u64| {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            std::fs::File::options().write(true).open(&host).unwrap().set_modified(t).unwrap();
        };
        touch(1_000_000);
        let mut plan = Plan::default();
        plan.bytes("etc/passwd", 0o644, "root:x:0:0::/:/sbin/nologin\n").unwrap();
        plan.dir("tmp", 0o1777).unwrap();
        plan.symlink("lib64", "usr/lib64").unwrap();
        plan.mirror(&host).unwrap();
        let mut a = Vec::new();
        let (digest, len, entries, _) = write_layer(&plan, dir.path(), 1, &mut a).unwrap();
        assert_eq!(len, a.len() as u64);
        assert_eq!(digest, hex(&Sha256::digest(&a)));

        // Reproducible: the same plan made in another order, with the host file's mtime
        // changed, gives the same bytes; only the stamp changes them.
        touch(2_000_000);
        let mut other = Plan::default();
        other.mirror(&host).unwrap();
        other.symlink("lib64", "usr/lib64").unwrap();
        other.dir("tmp", 0o1777).unwrap();
        other.bytes("etc/passwd", 0o644, "root:x:0:0::/:/sbin/nologin\n").unwrap();
        let mut b = Vec::new();
        assert_eq!(write_layer(&other, dir.path(), 1, &mut b).unwrap().0, digest);
        assert!(a == b, "the layer depends on insertion order or the host file's mtime");
        let mut c = Vec::new();
        assert_ne!(write_layer(&plan, dir.path(), 2, &mut c).unwrap().0, digest);

        let mut archive = tar::Archive::new(a.as_slice());
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap(), h.mtime().unwrap()), (0, 0, 1));
            let owner = (h.username().unwrap().unwrap_or(""), h.groupname().unwrap().unwrap_or(""));
            assert_eq!(owner, ("", ""), "no user or group names");
            seen.push((e.path().unwrap().display().to_string(), h.mode().unwrap()));
        }
        assert_eq!(seen.len(), entries);
        let names: Vec<_> = seen.iter().map(|(n, _)| n.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert!(names.contains(&"etc/"));
        assert!(seen.contains(&("tmp/".into(), 0o1777)));
        let host_rel = host.strip_prefix("/").unwrap().display().to_string();
        assert!(names.contains(&host_rel.as_str()), "{names:?}");
    }

    #[test]
    fn config_has_user_healthcheck_and_no_build_time() {
        let inputs = crate::spec::Inputs {
            swarm: "/s".into(),
            origin: "/o".into(),
            ffmpeg: "/f".into(),
            nginx: "/n".into(),
            node_exporter: "/ne".into(),
            nginx_exporter: "/nx".into(),
            curl: "/c".into(),
            ca_bundle: None,
        };
        let img = Image::test_origin(&inputs);
        let c: serde_json::Value = serde_json::from_slice(&config_json(&img, "ab", 1)).unwrap();
        assert_eq!(c["created"], "1970-01-01T00:00:01Z");
        // The only times in the config are the stamp given (no clock is read).
        assert_eq!(c["history"].as_array().map(Vec::len), Some(1));
        assert_eq!(c["history"][0]["created"], "1970-01-01T00:00:01Z");
        let later: serde_json::Value = serde_json::from_slice(&config_json(&img, "ab", 86_400)).unwrap();
        assert_eq!(
            (&later["created"], &later["history"][0]["created"]),
            (&"1970-01-02T00:00:00Z".into(), &"1970-01-02T00:00:00Z".into())
        );
        assert_eq!(c["config"]["User"], "10002:10002");
        assert_eq!(c["config"]["Healthcheck"]["Retries"], 3);
        assert_eq!(c["config"]["Healthcheck"]["Interval"], 10_000_000_000_u64);
        assert_eq!(c["config"]["Entrypoint"][1], "serve");
        assert!(c["config"].get("Cmd").is_none());
        assert!(c["config"]["ExposedPorts"].get("17080/tcp").is_some());
        assert_eq!(c["rootfs"]["diff_ids"][0], "sha256:ab");
    }
}
