//! Compressed payloads the image builder meets: the kernel inside a bzImage and compressed
//! kernel modules (`.ko.xz`, `.ko.zst`, `.ko.gz`). Formats are recognised by their magic bytes.
//! xz (Debian), zstd (Ubuntu) and gzip are decoded in pure Rust; the others are named so the
//! caller can fall back or say what is unsupported.

use std::fmt;
use std::io::Read;

/// A compression format, by magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `1f 8b`.
    Gzip,
    /// `fd 37 7a 58 5a 00`.
    Xz,
    /// `28 b5 2f fd`.
    Zstd,
    /// `5d 00 00` (legacy lzma-alone).
    Lzma,
    /// `BZh`.
    Bzip2,
    /// `89 4c 5a 4f`.
    Lzo,
    /// `02 21 4c 18` (legacy LZ4 frames, what the kernel uses).
    Lz4,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Gzip => "gzip",
            Format::Xz => "xz",
            Format::Zstd => "zstd",
            Format::Lzma => "lzma",
            Format::Bzip2 => "bzip2",
            Format::Lzo => "lzo",
            Format::Lz4 => "lz4",
        })
    }
}

/// The format `bytes` starts with, if any known one.
#[must_use]
pub fn detect(bytes: &[u8]) -> Option<Format> {
    let starts = |m: &[u8]| bytes.starts_with(m);
    if starts(&[0x1f, 0x8b]) {
        Some(Format::Gzip)
    } else if starts(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some(Format::Xz)
    } else if starts(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Format::Zstd)
    } else if starts(&[0x5d, 0, 0]) {
        Some(Format::Lzma)
    } else if starts(b"BZh") {
        Some(Format::Bzip2)
    } else if starts(&[0x89, b'L', b'Z', b'O']) {
        Some(Format::Lzo)
    } else if starts(&[0x02, 0x21, 0x4c, 0x18]) {
        Some(Format::Lz4)
    } else {
        None
    }
}

/// Decompression failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A format this build does not decode.
    #[error("{0} is not supported (xz, zstd and gzip are)")]
    Unsupported(Format),
    /// The data is corrupt.
    #[error("corrupt {format} data")]
    Corrupt {
        /// The format.
        format: Format,
        /// The decoder's complaint.
        #[source]
        source: std::io::Error,
    },
}

/// Decodes the first stream of `format` in `bytes` (trailing bytes, such as the size the
/// kernel appends after its payload, are ignored).
///
/// # Errors
/// Unsupported format or corrupt data.
pub fn decompress(format: Format, bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(bytes.len() * 4);
    let corrupt = |source| Error::Corrupt { format, source };
    match format {
        Format::Gzip => {
            flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).map_err(corrupt)?;
        }
        Format::Xz => {
            lzma_rust2::XzReader::new(bytes, false).read_to_end(&mut out).map_err(corrupt)?;
        }
        Format::Zstd => {
            let mut d = ruzstd::decoding::StreamingDecoder::new(bytes)
                .map_err(|e| corrupt(std::io::Error::other(e.to_string())))?;
            d.read_to_end(&mut out).map_err(corrupt)?;
        }
        other => return Err(Error::Unsupported(other)),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn detects_magics() {
        assert_eq!(detect(&[0x1f, 0x8b, 8]), Some(Format::Gzip));
        assert_eq!(detect(b"\xfd7zXZ\0rest"), Some(Format::Xz));
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Some(Format::Zstd));
        assert_eq!(detect(b"BZh9"), Some(Format::Bzip2));
        assert_eq!(detect(&[0x02, 0x21, 0x4c, 0x18]), Some(Format::Lz4));
        assert_eq!(detect(b"\x7fELF"), None);
    }

    #[test]
    fn gzip_round_trip_ignores_trailer() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b"hello kernel").unwrap();
        let mut z = e.finish().unwrap();
        z.extend_from_slice(&[12, 0, 0, 0]); // the kernel's appended size
        assert_eq!(decompress(Format::Gzip, &z).unwrap(), b"hello kernel");
    }

    #[test]
    fn xz_round_trip() {
        let mut w = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
        w.write_all(b"module bytes").unwrap();
        let z = w.finish().unwrap();
        assert_eq!(detect(&z), Some(Format::Xz));
        assert_eq!(decompress(Format::Xz, &z).unwrap(), b"module bytes");
    }

    #[test]
    fn unsupported_and_corrupt_are_named() {
        assert_eq!(
            decompress(Format::Lzo, b"x").unwrap_err().to_string(),
            "lzo is not supported (xz, zstd and gzip are)"
        );
        let e = decompress(Format::Xz, b"\xfd7zXZ\0garbage").unwrap_err();
        assert!(e.to_string().starts_with("corrupt xz"), "{e}");
    }
}
