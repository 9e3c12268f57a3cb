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

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{cpio, elf, guest, kernel, kmod, ldd};

/// busybox applets not linked into the image: logins, password tools and network servers. The
/// guest runs none of them; leaving them out keeps them from being one `exec` away.
const NO_APPLETS: [&str; 19] = [
    "getty", "login", "sulogin", "su", "passwd", "mkpasswd", "chpasswd", "adduser", "addgroup", "telnetd",
    "httpd", "ftpd", "tftpd", "udhcpd", "dnsd", "inetd", "nc", "crond", "crontab",
];

/// Bumped whenever the layout changes, so old cache entries are not reused.
const FORMAT: &str = "hls-lab-image-v1";

/// Image building problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A program the image needs is not installed.
    #[error("{name} not found (looked for {looked}); {hint}")]
    ProgramNotFound {
        /// What.
        name: &'static str,
        /// Where it was looked for.
        looked: String,
        /// How to get it.
        hint: &'static str,
    },
    /// File system failure.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Two inputs want the same path in the image.
    #[error("image path /{path} wanted twice ({first} and {second})")]
    Conflict {
        /// The path.
        path: String,
        /// One.
        first: String,
        /// The other.
        second: String,
    },
    /// Library resolution.
    #[error(transparent)]
    Ldd(#[from] ldd::Error),
    /// Modules.
    #[error(transparent)]
    Kmod(#[from] kmod::Error),
    /// Kernel.
    #[error(transparent)]
    Kernel(#[from] kernel::Error),
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { action, path: path.to_owned(), source }
}

/// The host files an image is built from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inputs {
    /// `hls-origin`.
    pub origin: PathBuf,
    /// ffmpeg.
    pub ffmpeg: PathBuf,
    /// nginx.
    pub nginx: PathBuf,
    /// prometheus-node-exporter.
    pub node_exporter: PathBuf,
    /// prometheus-nginx-exporter.
    pub nginx_exporter: PathBuf,
    /// busybox (static or not).
    pub busybox: PathBuf,
    /// The kernel (bzImage).
    pub kernel: PathBuf,
    /// Its modules, `/lib/modules/<release>`.
    pub modules: PathBuf,
}

/// Explicit choices; anything `None` is looked up.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `hls-origin` binary.
    pub origin: Option<PathBuf>,
    /// Kernel bzImage.
    pub kernel: Option<PathBuf>,
    /// Modules directory.
    pub modules: Option<PathBuf>,
}

/// `name` found in `PATH`, or in the sbin/bin directories a non-login root shell may lack.
#[must_use]
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn program(name: &'static str, candidates: &[&str], hint: &'static str) -> Result<PathBuf, Error> {
    candidates.iter().find_map(|c| on_path(c)).ok_or_else(|| Error::ProgramNotFound {
        name,
        looked: candidates.join(", "),
        hint,
    })
}

/// `hls-origin` next to the running executable (the workspace's `target/<profile>/`), else on
/// `PATH`.
#[must_use]
pub fn default_origin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    // Test executables live one level deeper, in target/<profile>/deps/.
    [dir.join("hls-origin"), dir.parent()?.join("hls-origin")]
        .into_iter()
        .find(|p| p.is_file())
        .or_else(|| on_path("hls-origin"))
}

impl Inputs {
    /// Finds every input on this host.
    ///
    /// # Errors
    /// [`Error::ProgramNotFound`] or [`kernel::Error::NotFound`], naming what to install.
    pub fn discover(o: &Overrides) -> Result<Inputs, Error> {
        let apt = "install it with scripts/install-deps";
        let (kernel, modules) = match (&o.kernel, &o.modules) {
            (Some(k), Some(m)) => (k.clone(), m.clone()),
            (Some(k), None) => {
                let release = kernel::Kernel::open(k)?.header.release;
                (k.clone(), Path::new("/lib/modules").join(release))
            }
            (None, m) => {
                let (k, release) = kernel::find_default(Path::new("/boot"), Path::new("/lib/modules"))?;
                (k, m.clone().unwrap_or_else(|| Path::new("/lib/modules").join(release)))
            }
        };
        let origin = match &o.origin {
            Some(p) => p.clone(),
            None => default_origin().ok_or(Error::ProgramNotFound {
                name: "hls-origin",
                looked: "next to hls-lab, then PATH".into(),
                hint: "build it (cargo build --release -p hls-origin) or pass --origin-bin",
            })?,
        };
        if !origin.is_file() {
            return Err(Error::ProgramNotFound {
                name: "hls-origin",
                looked: origin.display().to_string(),
                hint: "pass an existing file to --origin-bin",
            });
        }
        Ok(Inputs {
            origin,
            ffmpeg: program("ffmpeg", &["ffmpeg"], apt)?,
            nginx: program("nginx", &["nginx"], apt)?,
            node_exporter: program(
                "prometheus-node-exporter",
                &["prometheus-node-exporter", "node_exporter"],
                apt,
            )?,
            nginx_exporter: program(
                "prometheus-nginx-exporter",
                &["prometheus-nginx-exporter", "nginx-prometheus-exporter"],
                apt,
            )?,
            busybox: program("busybox", &["busybox"], "install busybox-static (scripts/install-deps --vm)")?,
            kernel,
            modules,
        })
    }
}

/// Where an image file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// A host file, copied as is.
    Host(PathBuf),
    /// A host ELF file with debug sections: copied through `strip --strip-debug` when
    /// available.
    Strip(PathBuf),
    /// A kernel module, decompressed.
    Module(PathBuf),
    /// Generated content.
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir(u32),
    File { source: Source, perm: u32 },
    Symlink(String),
    CharDev { perm: u32, major: u32, minor: u32 },
}

/// Everything that goes into one initramfs, by path (relative, no leading `/`).
#[derive(Debug, Default)]
pub struct Plan {
    nodes: BTreeMap<String, Node>,
}

fn rel(path: &Path) -> String {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl Plan {
    fn insert(&mut self, path: String, node: Node) -> Result<(), Error> {
        match self.nodes.get(&path) {
            Some(old) if *old == node => Ok(()),
            // Two generated dirs with different modes: keep the first.
            Some(Node::Dir(_)) if matches!(node, Node::Dir(_)) => Ok(()),
            Some(old) => {
                Err(Error::Conflict { path, first: format!("{old:?}"), second: format!("{node:?}") })
            }
            None => {
                self.nodes.insert(path, node);
                Ok(())
            }
        }
    }

    /// Generated file content at image path `path` (relative, no leading `/`).
    ///
    /// # Errors
    /// [`Error::Conflict`] when the path already holds something else.
    pub fn bytes(&mut self, path: &str, perm: u32, data: impl Into<Vec<u8>>) -> Result<(), Error> {
        self.insert(path.to_owned(), Node::File { source: Source::Bytes(data.into()), perm })
    }

    /// A directory with mode `perm` (parents not listed get 0755 when written).
    ///
    /// # Errors
    /// [`Error::Conflict`] when the path already holds a file or link.
    pub fn dir(&mut self, path: &str, perm: u32) -> Result<(), Error> {
        self.insert(path.to_owned(), Node::Dir(perm))
    }

    /// A symbolic link at `path` pointing to `target` (kept as written).
    ///
    /// # Errors
    /// [`Error::Conflict`] when the path already holds something else.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), Error> {
        self.insert(path.to_owned(), Node::Symlink(target.to_owned()))
    }

    /// Adds host file `path` at the same path in the image, reproducing every symlink met on
    /// the way (directories such as `/lib -> usr/lib` and the file itself, e.g.
    /// `libx.so.1 -> libx.so.1.2`), so that the loader finds it exactly as on the host.
    ///
    /// # Errors
    /// An unreadable path, a symlink loop, or a conflicting entry.
    pub fn mirror(&mut self, path: &Path) -> Result<(), Error> {
        let mut resolved = PathBuf::from("/");
        let mut pending: std::collections::VecDeque<PathBuf> = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .map(|c| PathBuf::from(c.as_os_str()))
            .collect();
        let mut hops = 0;
        while let Some(c) = pending.pop_front() {
            if c.as_os_str() == ".." {
                resolved.pop();
                continue;
            }
            if c.as_os_str() == "." {
                continue;
            }
            let candidate = resolved.join(&c);
            let meta = std::fs::symlink_metadata(&candidate).map_err(io("cannot stat", &candidate))?;
            if meta.file_type().is_symlink() {
                hops += 1;
                if hops > 40 {
                    return Err(Error::Io {
                        action: "too many symlinks resolving",
                        path: path.to_owned(),
                        source: std::io::Error::other("symlink loop"),
                    });
                }
                let target = std::fs::read_link(&candidate).map_err(io("cannot read link", &candidate))?;
                self.insert(rel(&candidate), Node::Symlink(target.to_string_lossy().into_owned()))?;
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                let mut next: std::collections::VecDeque<PathBuf> = target
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(s) => Some(PathBuf::from(s)),
                        Component::ParentDir => Some(PathBuf::from("..")),
                        _ => None,
                    })
                    .collect();
                next.extend(pending);
                pending = next;
            } else {
                resolved = candidate;
            }
        }
        let meta = std::fs::metadata(&resolved).map_err(io("cannot stat", &resolved))?;
        self.insert(rel(&resolved), Node::File { source: Source::Host(resolved), perm: meta.mode() & 0o7777 })
    }

    /// A program at a fixed image path, plus its loader and libraries mirrored (what its own
    /// dynamic loader resolves, [`ldd::needed`]). A program with debug sections is copied
    /// through `strip --strip-debug` when written.
    ///
    /// # Errors
    /// An unreadable program, a library its loader cannot find, or a conflicting entry.
    pub fn program(&mut self, host: &Path, dest: &str) -> Result<(), Error> {
        let real = std::fs::canonicalize(host).map_err(io("cannot resolve", host))?;
        let info = elf::inspect(&real).map_err(ldd::Error::from)?;
        let source = if info.has_debug { Source::Strip(real.clone()) } else { Source::Host(real.clone()) };
        self.insert(dest.to_owned(), Node::File { source, perm: 0o755 })?;
        for lib in ldd::needed(&real)? {
            self.mirror(&lib)?;
        }
        Ok(())
    }

    /// busybox at `/opt/busybox/busybox` with every applet linked in `/opt/busybox/bin`.
    fn busybox(&mut self, host: &Path) -> Result<(), Error> {
        self.program(host, "opt/busybox/busybox")?;
        let out = std::process::Command::new(host).arg("--list").output().map_err(io("cannot run", host))?;
        for applet in String::from_utf8_lossy(&out.stdout).lines().map(str::trim) {
            if !applet.is_empty()
                && !applet.contains('/')
                && applet != "busybox"
                && !NO_APPLETS.contains(&applet)
            {
                self.insert(format!("opt/busybox/bin/{applet}"), Node::Symlink("../busybox".into()))?;
            }
        }
        self.insert("opt/busybox/bin/sh".into(), Node::Symlink("../busybox".into()))
    }

    fn skeleton(&mut self) -> Result<(), Error> {
        for (d, perm) in [
            ("dev", 0o755),
            ("proc", 0o555),
            ("sys", 0o555),
            ("run", 0o755),
            ("tmp", 0o1777),
            ("root", 0o700),
            ("etc", 0o755),
            ("var", 0o755),
            ("var/cache", 0o755),
            ("var/cache/hls-origin", 0o755),
            ("var/log", 0o755),
            ("var/log/nginx", 0o755),
            ("var/lib", 0o755),
            ("var/lib/nginx", 0o755),
            ("usr", 0o755),
            ("usr/lib", 0o755),
            ("usr/lib/nginx", 0o755),
            ("usr/lib/nginx/modules", 0o755),
        ] {
            self.dir(d, perm)?;
        }
        self.insert("dev/console".into(), Node::CharDev { perm: 0o600, major: 5, minor: 1 })?;
        self.insert("dev/null".into(), Node::CharDev { perm: 0o666, major: 1, minor: 3 })?;
        self.bytes("etc/passwd", 0o644, guest::PASSWD)?;
        self.bytes("etc/group", 0o644, guest::GROUP)?;
        self.bytes("etc/nsswitch.conf", 0o644, guest::NSSWITCH)?;
        self.bytes("etc/hosts", 0o644, guest::HOSTS)?;
        self.bytes("etc/hostname", 0o644, "hls-origin-vm\n")?;
        Ok(())
    }

    /// The origin image's plan.
    ///
    /// # Errors
    /// Missing libraries or modules, unreadable files, conflicting paths.
    pub fn origin(inputs: &Inputs) -> Result<Plan, Error> {
        let mut plan = Plan::default();
        plan.skeleton()?;
        plan.busybox(&inputs.busybox)?;
        plan.program(&inputs.origin, "usr/bin/hls-origin")?;
        plan.program(&inputs.ffmpeg, "usr/bin/ffmpeg")?;
        plan.program(&inputs.nginx, "usr/sbin/nginx")?;
        plan.program(&inputs.node_exporter, "usr/bin/prometheus-node-exporter")?;
        plan.program(&inputs.nginx_exporter, "usr/bin/prometheus-nginx-exporter")?;
        let mut list = String::new();
        for file in kmod::resolve(&inputs.modules, &kmod::WANTED)? {
            let base = format!("{}.ko", kmod::name_of(&file));
            plan.insert(
                format!("usr/lib/hls-lab/modules/{base}"),
                Node::File { source: Source::Module(inputs.modules.join(&file)), perm: 0o644 },
            )?;
            list.push_str(&base);
            list.push('\n');
        }
        plan.bytes("etc/hls-lab/modules", 0o644, list)?;
        plan.bytes("etc/acpi/PWRF/00000080", 0o755, guest::ACPI_POWER)?;
        plan.bytes("init", 0o755, guest::INIT)?;
        Ok(plan)
    }

    /// The KVM probe's plan: busybox and an init that prints [`guest::PROBE_MARKER`].
    ///
    /// # Errors
    /// busybox unreadable.
    pub fn probe(busybox: &Path) -> Result<Plan, Error> {
        let mut plan = Plan::default();
        plan.dir("dev", 0o755)?;
        plan.insert("dev/console".into(), Node::CharDev { perm: 0o600, major: 5, minor: 1 })?;
        plan.busybox(busybox)?;
        plan.bytes("init", 0o755, guest::probe_init())?;
        Ok(plan)
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the plan is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Image paths of every entry (for tests and `--list`).
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// The cache key: format version plus every entry with its source's identity.
    ///
    /// # Errors
    /// A source file that cannot be stat'ed.
    pub fn key(&self, extra: &[&Path]) -> Result<String, Error> {
        let mut h = Sha256::new();
        h.update(FORMAT);
        let stamp = |h: &mut Sha256, p: &Path| -> Result<(), Error> {
            let m = std::fs::metadata(p).map_err(io("cannot stat", p))?;
            h.update(format!(
                "{}\0{}\0{}\0{}\0{}\0",
                p.display(),
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                m.ino()
            ));
            Ok(())
        };
        for (path, node) in &self.nodes {
            h.update(path.as_bytes());
            h.update([0]);
            match node {
                Node::Dir(perm) => h.update(format!("d{perm:o}\0")),
                Node::Symlink(t) => h.update(format!("l{t}\0")),
                Node::CharDev { perm, major, minor } => h.update(format!("c{perm:o}:{major}:{minor}\0")),
                Node::File { source, perm } => {
                    h.update(format!("f{perm:o}\0"));
                    match source {
                        Source::Host(p) | Source::Strip(p) | Source::Module(p) => stamp(&mut h, p)?,
                        Source::Bytes(b) => {
                            h.update(b.len().to_le_bytes());
                            h.update(b);
                        }
                    }
                }
            }
        }
        for p in extra {
            stamp(&mut h, p)?;
        }
        Ok(h.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect())
    }

    /// Writes the archive to `out`; `scratch` holds stripped copies. Returns how many bytes
    /// stripping saved.
    ///
    /// # Errors
    /// Unreadable inputs, write failures, or a path whose parent is not a directory.
    pub fn write(&self, out: &Path, scratch: &Path) -> Result<u64, Error> {
        let file = std::fs::File::create(out).map_err(io("cannot create", out))?;
        let mut w = cpio::Writer::new(std::io::BufWriter::with_capacity(1 << 20, file));
        let saved = self.walk(scratch, |entry| {
            match entry {
                Entry::Dir { path, perm } => w.dir(path, perm),
                Entry::Symlink { path, target } => w.symlink(path, target),
                Entry::CharDev { path, perm, major, minor } => w.char_dev(path, perm, major, minor),
                Entry::File { path, perm, content: Content::Bytes(b) } => w.file(path, perm, &b),
                Entry::File { path, perm, content: Content::Host(src) } => copy_in(&mut w, path, perm, src),
            }
            .map_err(io("cannot write", out))
        })?;
        w.finish()
            .and_then(|b| b.into_inner().map_err(std::io::IntoInnerError::into_error))
            .and_then(|f| f.sync_all())
            .map_err(io("cannot write", out))?;
        Ok(saved)
    }

    /// Hands every entry to `f` in archive order — every ancestor directory before its entries
    /// (implicit parents get mode 0755), paths sorted — with file content resolved: generated
    /// bytes, decompressed modules, or a host file to copy (for [`Plan::program`]s with debug
    /// sections, a copy stripped into `scratch`, removed after `f` returns; the original when
    /// `strip` is missing or fails). Archive writers (this crate's cpio, a container layer's
    /// tar) share it, so every form of the image holds the same files. Returns how many bytes
    /// stripping saved.
    ///
    /// # Errors
    /// [`Error::Conflict`] for a path below a non-directory, before `f` sees anything; an
    /// unreadable module; whatever `f` returns.
    pub fn walk<E: From<Error>>(
        &self,
        scratch: &Path,
        mut f: impl FnMut(Entry<'_>) -> Result<(), E>,
    ) -> Result<u64, E> {
        let mut saved = 0;
        // BTreeMap order puts "a" before "a/b".
        let mut all: BTreeMap<&str, &Node> = BTreeMap::new();
        let implicit = Node::Dir(0o755);
        for (path, node) in &self.nodes {
            for (i, _) in path.match_indices('/') {
                let parent = &path[..i];
                match self.nodes.get(parent) {
                    Some(Node::Dir(_)) | None => {
                        all.entry(parent).or_insert(&implicit);
                    }
                    Some(_) => {
                        return Err(Error::Conflict {
                            path: path.clone(),
                            first: format!("/{parent} is not a directory"),
                            second: "a path below it".into(),
                        }
                        .into())
                    }
                }
            }
            all.insert(path, node);
        }
        for (path, node) in all {
            match node {
                Node::Dir(perm) => f(Entry::Dir { path, perm: *perm })?,
                Node::Symlink(target) => f(Entry::Symlink { path, target })?,
                Node::CharDev { perm, major, minor } => {
                    f(Entry::CharDev { path, perm: *perm, major: *major, minor: *minor })?;
                }
                Node::File { source, perm } => {
                    let perm = *perm;
                    match source {
                        Source::Bytes(b) => f(Entry::File { path, perm, content: Content::Bytes(b.into()) })?,
                        Source::Module(p) => {
                            let b = kmod::read_plain(p).map_err(Error::from)?;
                            f(Entry::File { path, perm, content: Content::Bytes(b.into()) })?;
                        }
                        Source::Host(p) => f(Entry::File { path, perm, content: Content::Host(p) })?,
                        Source::Strip(p) => {
                            let stripped = scratch.join(path.replace('/', "_"));
                            let ok = std::process::Command::new("strip")
                                .arg("--strip-debug")
                                .arg("-o")
                                .arg(&stripped)
                                .arg(p)
                                .status()
                                .is_ok_and(|s| s.success());
                            let src = if ok { stripped.as_path() } else { p.as_path() };
                            if ok {
                                let len = |q: &Path| {
                                    std::fs::metadata(q).map(|m| m.len()).map_err(io("cannot stat", q))
                                };
                                saved += len(p)?.saturating_sub(len(src)?);
                            }
                            let result = f(Entry::File { path, perm, content: Content::Host(src) });
                            if ok {
                                let _ = std::fs::remove_file(&stripped);
                            }
                            result?;
                        }
                    }
                }
            }
        }
        Ok(saved)
    }
}

/// One entry of a [`Plan`], as [`Plan::walk`] hands it to an archive writer. Paths are relative
/// (no leading `/`).
#[derive(Debug)]
pub enum Entry<'a> {
    /// A directory.
    Dir {
        /// Image path.
        path: &'a str,
        /// Permission bits.
        perm: u32,
    },
    /// A symbolic link.
    Symlink {
        /// Image path.
        path: &'a str,
        /// Its target, as written.
        target: &'a str,
    },
    /// A character device node.
    CharDev {
        /// Image path.
        path: &'a str,
        /// Permission bits.
        perm: u32,
        /// Device major.
        major: u32,
        /// Device minor.
        minor: u32,
    },
    /// A regular file.
    File {
        /// Image path.
        path: &'a str,
        /// Permission bits.
        perm: u32,
        /// Where its bytes are.
        content: Content<'a>,
    },
}

/// A file's bytes: in memory, or a host file to copy.
#[derive(Debug)]
pub enum Content<'a> {
    /// Generated or decompressed bytes.
    Bytes(std::borrow::Cow<'a, [u8]>),
    /// A host file (possibly a stripped copy), read when written.
    Host(&'a Path),
}

fn copy_in<W: Write>(w: &mut cpio::Writer<W>, path: &str, perm: u32, src: &Path) -> std::io::Result<()> {
    let mut f = std::fs::File::open(src)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", src.display())))?;
    let len = f.metadata()?.len();
    w.file_from(path, perm, len, &mut f)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_reproduces_symlinked_directories_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib/arch")).unwrap();
        std::fs::write(root.join("usr/lib/arch/libx.so.1.2"), b"ELF").unwrap();
        std::os::unix::fs::symlink("libx.so.1.2", root.join("usr/lib/arch/libx.so.1")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        let mut plan = Plan::default();
        plan.mirror(&root.join("lib/arch/libx.so.1")).unwrap();
        let r = rel(root);
        let got: BTreeMap<_, _> =
            plan.nodes.iter().map(|(k, v)| (k.strip_prefix(&r).unwrap().to_owned(), v)).collect();
        assert_eq!(got["/lib"], &Node::Symlink("usr/lib".into()));
        assert_eq!(got["/usr/lib/arch/libx.so.1"], &Node::Symlink("libx.so.1.2".into()));
        assert!(matches!(got["/usr/lib/arch/libx.so.1.2"], Node::File { .. }));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn conflicting_paths_are_refused() {
        let mut plan = Plan::default();
        plan.bytes("etc/x", 0o644, "a").unwrap();
        plan.bytes("etc/x", 0o644, "a").unwrap();
        assert!(matches!(plan.bytes("etc/x", 0o644, "b"), Err(Error::Conflict { .. })));
    }

    #[test]
    fn file_below_a_symlink_is_refused_at_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut plan = Plan::default();
        plan.insert("lib".into(), Node::Symlink("usr/lib".into())).unwrap();
        plan.bytes("lib/x", 0o644, "a").unwrap();
        assert!(matches!(plan.write(&dir.path().join("a.cpio"), dir.path()), Err(Error::Conflict { .. })));
    }

    #[test]
    fn written_plan_reads_back_with_parents_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut plan = Plan::default();
        plan.bytes("a/b/c", 0o600, "x").unwrap();
        plan.dir("a", 0o700).unwrap();
        plan.insert("z".into(), Node::Symlink("a/b".into())).unwrap();
        let out = dir.path().join("t.cpio");
        plan.write(&out, dir.path()).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let entries = cpio::read(&bytes).unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "a/b", "a/b/c", "z"]);
        assert_eq!(entries[0].mode & 0o7777, 0o700);
        assert_eq!(entries[1].mode & 0o7777, 0o755);
    }

    #[test]
    fn key_changes_with_content_and_metadata() {
        use std::time::{Duration, SystemTime};
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        let set_mtime = |secs: u64| {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            std::fs::File::options().write(true).open(&f).unwrap().set_modified(t).unwrap();
        };
        std::fs::write(&f, b"one").unwrap();
        set_mtime(1_000_000);
        let host = |perm| {
            let mut plan = Plan::default();
            plan.insert("f".into(), Node::File { source: Source::Host(f.clone()), perm }).unwrap();
            plan
        };
        let plan = host(0o644);
        let k1 = plan.key(&[]).unwrap();
        // A host file: its mtime alone, its size alone, and the permission given to it.
        set_mtime(2_000_000);
        assert_ne!(k1, plan.key(&[]).unwrap(), "mtime");
        std::fs::write(&f, b"three").unwrap();
        set_mtime(1_000_000);
        let k3 = plan.key(&[]).unwrap();
        assert_ne!(k1, k3, "size");
        assert_ne!(k3, host(0o755).key(&[]).unwrap(), "permission");
        // Extra inputs (the kernel) are stamped too.
        assert_ne!(k3, plan.key(&[f.as_path()]).unwrap(), "extra input");
        // Nothing changed: the same key.
        assert_eq!(k3, host(0o644).key(&[]).unwrap());
        // Bytes given by the plan itself: their content.
        let mut plan2 = Plan::default();
        plan2.bytes("g", 0o644, "x").unwrap();
        let mut plan3 = Plan::default();
        plan3.bytes("g", 0o644, "y").unwrap();
        assert_ne!(plan2.key(&[]).unwrap(), plan3.key(&[]).unwrap());
    }
}
