//! Just enough ELF to copy a program into the image: its interpreter (`PT_INTERP`, the dynamic
//! loader that resolves its libraries) and whether it carries debug sections worth stripping.

use std::path::{Path, PathBuf};

/// What the image builder needs to know about an ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The program interpreter, `None` for static executables and for shared libraries.
    pub interp: Option<PathBuf>,
    /// Whether it has `.debug_*` sections.
    pub has_debug: bool,
}

/// Not an ELF file this module understands.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct Error {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub what: &'static str,
}

/// Reads `path`'s headers. Only little-endian ELF64 (x86_64, aarch64) is accepted.
///
/// # Errors
/// Unreadable or not a little-endian ELF64 file.
pub fn inspect(path: &Path) -> Result<Info, Error> {
    let bytes = std::fs::read(path).map_err(|_| Error { path: path.to_owned(), what: "cannot read" })?;
    parse(&bytes).map_err(|what| Error { path: path.to_owned(), what })
}

/// Whether `path` starts with the ELF magic.
#[must_use]
pub fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"\x7fELF"
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, &'static str> {
    Ok(u16::from_le_bytes(b.get(at..at + 2).ok_or("truncated")?.try_into().map_err(|_| "truncated")?))
}
fn u32_at(b: &[u8], at: usize) -> Result<u32, &'static str> {
    Ok(u32::from_le_bytes(b.get(at..at + 4).ok_or("truncated")?.try_into().map_err(|_| "truncated")?))
}
fn u64_at(b: &[u8], at: usize) -> Result<usize, &'static str> {
    let v = u64::from_le_bytes(b.get(at..at + 8).ok_or("truncated")?.try_into().map_err(|_| "truncated")?);
    usize::try_from(v).map_err(|_| "offset too large")
}

/// Parses ELF64 little-endian headers.
///
/// # Errors
/// A static description of what is malformed.
pub fn parse(b: &[u8]) -> Result<Info, &'static str> {
    if b.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF file");
    }
    if b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        return Err("not a little-endian 64-bit ELF file");
    }
    let phoff = u64_at(b, 0x20)?;
    let shoff = u64_at(b, 0x28)?;
    let phentsize = usize::from(u16_at(b, 0x36)?);
    let phnum = usize::from(u16_at(b, 0x38)?);
    let shentsize = usize::from(u16_at(b, 0x3a)?);
    let shnum = usize::from(u16_at(b, 0x3c)?);
    let shstrndx = usize::from(u16_at(b, 0x3e)?);

    let mut interp = None;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(b, ph)? == 3 {
            // PT_INTERP: p_offset at +8, p_filesz at +32; a NUL-terminated path.
            let off = u64_at(b, ph + 8)?;
            let len = u64_at(b, ph + 32)?;
            let raw = b.get(off..off + len).ok_or("PT_INTERP out of bounds")?;
            let raw = raw.split(|&c| c == 0).next().unwrap_or_default();
            let s = std::str::from_utf8(raw).map_err(|_| "PT_INTERP not utf-8")?;
            interp = Some(PathBuf::from(s));
        }
    }

    let mut has_debug = false;
    if shoff != 0 && shnum != 0 && shstrndx < shnum {
        let strtab_hdr = shoff + shstrndx * shentsize;
        let str_off = u64_at(b, strtab_hdr + 0x18)?;
        let str_len = u64_at(b, strtab_hdr + 0x20)?;
        let strtab = b.get(str_off..str_off + str_len).ok_or("section names out of bounds")?;
        for i in 0..shnum {
            let name_off = u32_at(b, shoff + i * shentsize)? as usize;
            let name = strtab.get(name_off..).unwrap_or_default();
            if name.starts_with(b".debug_") {
                has_debug = true;
                break;
            }
        }
    }
    Ok(Info { interp, has_debug })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_interpreter_of_a_dynamic_program() {
        // The test binary itself is a dynamic executable with a loader.
        let me = std::env::current_exe().unwrap();
        let info = inspect(&me).unwrap();
        let interp = info.interp.expect("test binary has PT_INTERP");
        assert!(interp.to_string_lossy().contains("ld-"), "{interp:?}");
    }

    #[test]
    fn rejects_non_elf() {
        assert_eq!(parse(b"#!/bin/sh\n"), Err("not an ELF file"));
        assert_eq!(parse(b"\x7fELF\x01\x01"), Err("not a little-endian 64-bit ELF file"));
        assert!(parse(b"\x7fELF\x02\x01\x01").is_err());
    }
}
