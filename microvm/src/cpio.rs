//! The initramfs archive: cpio "newc" (SVR4 without CRC), the only format the kernel unpacks.
//!
//! Each entry is a 110-byte ASCII header (`070701` and thirteen 8-digit hex fields), the NUL
//! terminated name padded to 4 bytes, then the data padded to 4 bytes; the archive ends with
//! the entry `TRAILER!!!`. Every entry gets its own inode number and a link count of 1 (2 for
//! directories): the kernel treats entries sharing an inode with `nlink > 1` as hard links. All
//! entries are owned by root with mtime 0, so the same inputs give the same bytes.
//!
//! [`read`] parses an archive back; the tests and `hls-lab microvm build --list` use it.

use std::io::{self, Read, Write};

const MAGIC: &[u8; 6] = b"070701";
const TRAILER: &str = "TRAILER!!!";
const HEADER_LEN: usize = 110;

/// File type bits of `st_mode`.
pub const S_IFDIR: u32 = 0o040_000;
/// Regular file.
pub const S_IFREG: u32 = 0o100_000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120_000;
/// Character device.
pub const S_IFCHR: u32 = 0o020_000;
const S_IFMT: u32 = 0o170_000;

/// Writes a newc archive to `W`.
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
}

struct Header<'a> {
    name: &'a str,
    mode: u32,
    nlink: u32,
    size: u64,
    rdev: (u32, u32),
}

impl<W: Write> Writer<W> {
    /// A writer that starts a new archive on `out`.
    pub fn new(out: W) -> Self {
        Writer { out, next_ino: 1, written: 0 }
    }

    /// Bytes written so far.
    #[must_use]
    pub fn written(&self) -> u64 {
        self.written
    }

    /// A directory. `path` is relative to the archive root (`usr/bin`, no leading `/`).
    ///
    /// # Errors
    /// Invalid path or write failure.
    pub fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        self.header(&Header { name: path, mode: S_IFDIR | (perm & 0o7777), nlink: 2, size: 0, rdev: (0, 0) })
    }

    /// A regular file with the given content.
    ///
    /// # Errors
    /// Invalid path or write failure.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.file_from(path, perm, data.len() as u64, &mut &data[..])
    }

    /// A regular file of `len` bytes read from `data` (which must yield exactly `len` bytes).
    ///
    /// # Errors
    /// Invalid path, short or long input, or write failure.
    pub fn file_from(&mut self, path: &str, perm: u32, len: u64, data: &mut dyn Read) -> io::Result<()> {
        self.header(&Header {
            name: path,
            mode: S_IFREG | (perm & 0o7777),
            nlink: 1,
            size: len,
            rdev: (0, 0),
        })?;
        let copied = io::copy(&mut data.take(len), &mut self.out)?;
        if copied != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path}: expected {len} bytes, got {copied}"),
            ));
        }
        let mut probe = [0u8; 1];
        if data.read(&mut probe)? != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{path}: longer than {len} bytes"),
            ));
        }
        self.written += len;
        self.pad()
    }

    /// A symbolic link to `target`.
    ///
    /// # Errors
    /// Invalid path or write failure.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        let len = target.len() as u64;
        self.header(&Header { name: path, mode: S_IFLNK | 0o777, nlink: 1, size: len, rdev: (0, 0) })?;
        self.out.write_all(target.as_bytes())?;
        self.written += len;
        self.pad()
    }

    /// A character device node.
    ///
    /// # Errors
    /// Invalid path or write failure.
    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.header(&Header {
            name: path,
            mode: S_IFCHR | (perm & 0o7777),
            nlink: 1,
            size: 0,
            rdev: (major, minor),
        })
    }

    /// Writes the trailer and returns the output.
    ///
    /// # Errors
    /// Write failure.
    pub fn finish(mut self) -> io::Result<W> {
        self.next_ino = 0;
        self.header(&Header { name: TRAILER, mode: 0, nlink: 1, size: 0, rdev: (0, 0) })?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn header(&mut self, h: &Header<'_>) -> io::Result<()> {
        if h.name != TRAILER {
            check_path(h.name)?;
        }
        let size = u32::try_from(h.size)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{}: over 4 GiB", h.name)))?;
        let ino = self.next_ino;
        self.next_ino += 1;
        let namesize = h.name.len() + 1;
        let fields = [ino, h.mode, 0, 0, h.nlink, 0, size, 0, 0, h.rdev.0, h.rdev.1, namesize as u32, 0];
        let mut buf = Vec::with_capacity(HEADER_LEN + namesize + 3);
        buf.extend_from_slice(MAGIC);
        for f in fields {
            buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        buf.extend_from_slice(h.name.as_bytes());
        buf.push(0);
        while buf.len() % 4 != 0 {
            buf.push(0);
        }
        self.out.write_all(&buf)?;
        self.written += buf.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let pad = (4 - (self.written % 4) as usize) % 4;
        self.out.write_all(&[0u8; 3][..pad])?;
        self.written += pad as u64;
        Ok(())
    }
}

fn check_path(path: &str) -> io::Result<()> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.ends_with('/')
        || path.contains('\0')
        || path.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cpio path {path:?}: expected a relative path like usr/bin/ffmpeg"),
        ));
    }
    Ok(())
}

/// One entry read back from an archive (borrowing its data from the archive's bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Path inside the archive.
    pub name: String,
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    /// Inode number as written.
    pub ino: u32,
    /// Link count as written.
    pub nlink: u32,
    /// File content or symlink target.
    pub data: &'a [u8],
    /// Device numbers for device nodes.
    pub rdev: (u32, u32),
}

impl Entry<'_> {
    /// Whether this is a directory.
    #[must_use]
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
    /// Whether this is a regular file.
    #[must_use]
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }
    /// The symlink target, if this is a symlink.
    #[must_use]
    pub fn link_target(&self) -> Option<&str> {
        (self.mode & S_IFMT == S_IFLNK).then(|| std::str::from_utf8(self.data).ok()).flatten()
    }
}

/// A malformed archive.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Bad magic, truncated header or data.
    #[error("cpio: {what} at byte {offset}")]
    Malformed {
        /// What is wrong.
        what: &'static str,
        /// Where.
        offset: usize,
    },
}

/// Parses a whole newc archive (up to the trailer) into its entries.
///
/// # Errors
/// [`ReadError::Malformed`] for anything that is not newc.
pub fn read(bytes: &[u8]) -> Result<Vec<Entry<'_>>, ReadError> {
    let mut at = 0;
    let mut entries = Vec::new();
    let bad = |what, offset| ReadError::Malformed { what, offset };
    loop {
        let h = bytes.get(at..at + HEADER_LEN).ok_or(bad("truncated header", at))?;
        if &h[..6] != MAGIC {
            return Err(bad("bad magic (not newc)", at));
        }
        let field = |i: usize| -> Result<u32, ReadError> {
            let s = std::str::from_utf8(&h[6 + i * 8..14 + i * 8]).map_err(|_| bad("non-ascii field", at))?;
            u32::from_str_radix(s, 16).map_err(|_| bad("non-hex field", at))
        };
        let (ino, mode, nlink, size) = (field(0)?, field(1)?, field(4)?, field(6)? as usize);
        let rdev = (field(9)?, field(10)?);
        let namesize = field(11)? as usize;
        let name_at = at + HEADER_LEN;
        let raw = bytes.get(name_at..name_at + namesize).ok_or(bad("truncated name", name_at))?;
        let name = std::str::from_utf8(raw.strip_suffix(&[0]).ok_or(bad("name without NUL", name_at))?)
            .map_err(|_| bad("non-utf8 name", name_at))?
            .to_owned();
        let data_at = (name_at + namesize).next_multiple_of(4);
        if name == TRAILER {
            return Ok(entries);
        }
        let data = bytes.get(data_at..data_at + size).ok_or(bad("truncated data", data_at))?;
        at = (data_at + size).next_multiple_of(4);
        entries.push(Entry { name, mode, ino, nlink, data, rdev });
    }
}

/// Resolves `path` inside an archive, following symlinks (relative and absolute) the way the
/// guest's kernel would. `link_of(p)` says what the entry at `p` (no leading `/`) is: `None` if
/// there is none, `Some(Some(target))` for a symlink, `Some(None)` for anything else. Returns
/// the path of the entry finally named, or `None` if a component is missing or there are more
/// than 40 links on the way.
pub fn resolve_links(path: &str, link_of: impl Fn(&str) -> Option<Option<String>>) -> Option<String> {
    let split =
        |p: &str| -> Vec<String> { p.trim_start_matches('/').split('/').map(str::to_owned).collect() };
    let mut parts = split(path);
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while !parts.is_empty() {
        let c = parts.remove(0);
        if c == ".." {
            done.pop();
            continue;
        }
        if c.is_empty() || c == "." {
            continue;
        }
        done.push(c);
        if let Some(target) = link_of(&done.join("/"))? {
            hops += 1;
            if hops > 40 {
                return None;
            }
            done.pop();
            if target.starts_with('/') {
                done.clear();
            }
            let mut next = split(&target);
            next.append(&mut parts);
            parts = next;
        }
    }
    let resolved = done.join("/");
    link_of(&resolved).map(|_| resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        w.dir("dev", 0o755).unwrap();
        w.char_dev("dev/console", 0o600, 5, 1).unwrap();
        w.dir("usr", 0o755).unwrap();
        w.dir("usr/bin", 0o755).unwrap();
        w.file("usr/bin/hello", 0o755, b"#!/bin/sh\necho hi\n").unwrap();
        w.file("empty", 0o644, b"").unwrap();
        w.symlink("bin", "usr/bin").unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        assert_eq!(bytes.len() % 4, 0);
        let e = read(&bytes).unwrap();
        let names: Vec<_> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["dev", "dev/console", "usr", "usr/bin", "usr/bin/hello", "empty", "bin"]);
        assert!(e[0].is_dir());
        assert_eq!(e[0].nlink, 2);
        assert_eq!(e[1].mode, S_IFCHR | 0o600);
        assert_eq!(e[1].rdev, (5, 1));
        assert!(e[4].is_file());
        assert_eq!(e[4].mode & 0o7777, 0o755);
        assert_eq!(e[4].data, b"#!/bin/sh\necho hi\n");
        assert_eq!(e[5].data, b"");
        assert_eq!(e[6].link_target(), Some("usr/bin"));
        // Distinct inodes: the kernel would turn shared ones into hard links.
        let mut inos: Vec<_> = e.iter().map(|e| e.ino).collect();
        inos.sort_unstable();
        inos.dedup();
        assert_eq!(inos.len(), e.len());
    }

    #[test]
    fn header_layout_matches_newc() {
        let mut w = Writer::new(Vec::new());
        w.file("a", 0o644, b"xyz").unwrap();
        let bytes = w.finish().unwrap();
        // Header (110) + "a\0" = 112: already aligned; then "xyz" + 1 pad byte.
        assert_eq!(&bytes[..6], b"070701");
        assert_eq!(&bytes[6..14], b"00000001"); // ino
        assert_eq!(&bytes[14..22], b"000081a4"); // S_IFREG | 0644
        assert_eq!(&bytes[54..62], b"00000003"); // filesize
        assert_eq!(&bytes[94..102], b"00000002"); // namesize with NUL
        assert_eq!(&bytes[110..112], b"a\0");
        assert_eq!(&bytes[112..116], b"xyz\0");
        assert_eq!(&bytes[116..122], b"070701");
    }

    /// Every header of `bytes` (the trailer's included) as its thirteen numeric fields.
    fn headers(bytes: &[u8]) -> Vec<[u32; 13]> {
        let mut at = 0;
        let mut all = Vec::new();
        loop {
            let h = &bytes[at..at + HEADER_LEN];
            assert_eq!(&h[..6], MAGIC, "header at {at}");
            let f: [u32; 13] = std::array::from_fn(|i| {
                u32::from_str_radix(std::str::from_utf8(&h[6 + i * 8..14 + i * 8]).unwrap(), 16).unwrap()
            });
            all.push(f);
            let name_end = at + HEADER_LEN + f[11] as usize;
            if &bytes[at + HEADER_LEN..name_end - 1] == TRAILER.as_bytes() {
                return all;
            }
            at = (name_end.next_multiple_of(4) + f[6] as usize).next_multiple_of(4);
        }
    }

    #[test]
    fn headers_carry_no_owner_time_or_device_of_the_writer() {
        // What would make the same inputs give different bytes: uid, gid, mtime and the
        // archive's own device numbers. All are zero in every header.
        let all = headers(&sample());
        assert_eq!(all.len(), 8, "seven entries and the trailer");
        for f in &all {
            assert_eq!(
                (f[2], f[3], f[5], f[7], f[8], f[12]),
                (0, 0, 0, 0, 0, 0),
                "uid gid mtime dev check: {f:?}"
            );
        }
    }

    #[test]
    fn rejects_bad_paths_and_lengths() {
        let mut w = Writer::new(Vec::new());
        for p in ["/abs", "a/../b", "", "a//b", "dir/", "./a"] {
            let e = w.dir(p, 0o755).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{p}: {e}");
        }
        assert_eq!(w.written(), 0, "a refused entry writes nothing");
        let e = w.file_from("short", 0o644, 10, &mut &b"abc"[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        let mut w = Writer::new(Vec::new());
        let e = w.file_from("long", 0o644, 2, &mut &b"abc"[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }

    #[test]
    fn reader_rejects_garbage() {
        assert!(read(b"not a cpio archive at all, clearly not one, no no no no no no no no no no no no no no no no no no no no no no no").is_err());
        let mut bytes = sample();
        bytes.truncate(200);
        assert!(read(&bytes).is_err());
    }

    #[test]
    fn links_resolve_relative_absolute_and_loops_end() {
        let entries: std::collections::HashMap<&str, Option<&str>> = [
            ("lib", Some("usr/lib")),
            ("usr", None),
            ("usr/lib", None),
            ("usr/lib/libx.so.1", Some("libx.so.1.2")),
            ("usr/lib/libx.so.1.2", None),
            ("bin/sh", Some("/usr/../usr/lib/libx.so.1")),
            ("bin", None),
            ("loop", Some("loop")),
        ]
        .into_iter()
        .collect();
        let link_of = |p: &str| entries.get(p).map(|l| l.map(str::to_owned));
        assert_eq!(resolve_links("/lib/libx.so.1", link_of).as_deref(), Some("usr/lib/libx.so.1.2"));
        assert_eq!(resolve_links("bin/sh", link_of).as_deref(), Some("usr/lib/libx.so.1.2"));
        assert_eq!(resolve_links("lib/missing", link_of), None);
        assert_eq!(resolve_links("loop", link_of), None);
    }
}
