//! `Transfer-Encoding: chunked`: where a chunked body ends, and its payload.

/// Follows `Transfer-Encoding: chunked` framing byte by byte, counting payload bytes, to
/// find where the body ends without buffering it.
#[derive(Debug, Default)]
pub(super) struct Chunks {
    state: ChunkState,
    size: u64,
    pub(super) payload: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    FinalLf,
    Done,
}

impl Chunks {
    /// Consumes bytes up to the end of the body; returns how many were consumed.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> usize {
        let mut i = 0;
        while i < bytes.len() && self.state != ChunkState::Done {
            let b = bytes[i];
            match self.state {
                ChunkState::Data => {
                    let n = usize::try_from(self.size).unwrap_or(usize::MAX).min(bytes.len() - i);
                    self.size -= n as u64;
                    self.payload += n as u64;
                    i += n;
                    if self.size == 0 {
                        self.state = ChunkState::DataCr;
                    }
                    continue;
                }
                ChunkState::Size => match (b as char).to_digit(16) {
                    Some(d) => self.size = self.size.saturating_mul(16).saturating_add(u64::from(d)),
                    None if b == b';' => self.state = ChunkState::Extension,
                    None if b == b'\r' => self.state = ChunkState::SizeLf,
                    None if b == b'\n' => self.after_size(),
                    None => {}
                },
                ChunkState::Extension => match b {
                    b'\r' => self.state = ChunkState::SizeLf,
                    b'\n' => self.after_size(),
                    _ => {}
                },
                ChunkState::SizeLf => self.after_size(),
                ChunkState::DataCr => {
                    self.state = if b == b'\r' { ChunkState::DataLf } else { ChunkState::Size }
                }
                ChunkState::DataLf => self.state = ChunkState::Size,
                ChunkState::TrailerStart => {
                    self.state = match b {
                        b'\r' => ChunkState::FinalLf,
                        b'\n' => ChunkState::Done,
                        _ => ChunkState::TrailerLine,
                    }
                }
                ChunkState::TrailerLine => {
                    if b == b'\n' {
                        self.state = ChunkState::TrailerStart;
                    }
                }
                ChunkState::FinalLf => self.state = ChunkState::Done,
                ChunkState::Done => {}
            }
            i += 1;
        }
        i
    }

    fn after_size(&mut self) {
        self.state = if self.size == 0 { ChunkState::TrailerStart } else { ChunkState::Data };
    }

    pub(super) fn done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

/// The payload of a whole chunked body.
pub(super) fn dechunk(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(&rest[..nl]);
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        rest = &rest[nl + 1..];
        if size == 0 || size > rest.len() {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size..).unwrap_or_default();
        rest = rest.strip_prefix(b"\r\n").or_else(|| rest.strip_prefix(b"\n")).unwrap_or(rest);
    }
    out
}
