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
    #[error("no kernel found: no /boot/vmlinuz-* with a matching /lib/modules/<version>/modules.dep (install linux-image-amd64, or pass --kernel)")]
    NotFound,
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

/// The newest `/boot/vmlinuz-<release>` whose modules are installed under `modules_root`.
///
/// # Errors
/// [`Error::NotFound`].
pub fn find_default(boot: &Path, modules_root: &Path) -> Result<(PathBuf, String), Error> {
    let entries = std::fs::read_dir(boot).map_err(|_| Error::NotFound)?;
    let mut found: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let release = name.strip_prefix("vmlinuz-")?.to_owned();
            modules_root.join(&release).join("modules.dep").is_file().then(|| (release, e.path()))
        })
        .collect();
    found.sort_by(|a, b| release_cmp(&a.0, &b.0));
    found.pop().map(|(r, p)| (p, r)).ok_or(Error::NotFound)
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

    #[test]
    fn finds_newest_kernel_with_modules() {
        let dir = tempfile::tempdir().unwrap();
        let boot = dir.path().join("boot");
        let mods = dir.path().join("modules");
        std::fs::create_dir_all(&boot).unwrap();
        for r in ["6.1.0-9-amd64", "6.1.0-56-amd64", "6.12.0-1-amd64"] {
            std::fs::write(boot.join(format!("vmlinuz-{r}")), b"").unwrap();
        }
        // The newest has no modules installed: skipped.
        for r in ["6.1.0-9-amd64", "6.1.0-56-amd64"] {
            std::fs::create_dir_all(mods.join(r)).unwrap();
            std::fs::write(mods.join(r).join("modules.dep"), b"").unwrap();
        }
        let (path, release) = find_default(&boot, &mods).unwrap();
        assert_eq!(release, "6.1.0-56-amd64");
        assert_eq!(path, boot.join("vmlinuz-6.1.0-56-amd64"));
        assert!(matches!(find_default(&mods, &boot), Err(Error::NotFound)));
    }
}
