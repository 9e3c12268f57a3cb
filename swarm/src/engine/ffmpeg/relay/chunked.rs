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

/// Property tests: the tracker sees any bytes the same however they are split, and a
/// well-formed body's payload exactly; `dechunk` never returns more than it was given.
/// `PROPTEST_CASES` sets the number of cases (`make fuzz`: many); no regression files are
/// written (a case found is kept as a plain test in `relay::tests`).
#[cfg(test)]
mod props {
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::{select, Index};
    use proptest::test_runner::{Config, RngSeed};

    use super::{dechunk, Chunks};

    /// 256 cases from a fixed seed, or `PROPTEST_CASES` from a new one; no regression files.
    fn config() -> Config {
        let rng_seed =
            if std::env::var_os("PROPTEST_CASES").is_some() { RngSeed::Random } else { RngSeed::Fixed(18) };
        Config { cases: 256, failure_persistence: None, rng_seed, ..Config::default() }
    }

    /// Bytes that look like chunked framing more often than chance would make them.
    fn framing_like() -> impl Strategy<Value = Vec<u8>> {
        const TOKENS: &[&[u8]] = &[
            b"\r\n",
            b"\n",
            b"\r",
            b";",
            b";ext=1",
            b"0",
            b"1",
            b"a",
            b"F",
            b"ffffffffffffffffffff",
            b"10",
            b"0\r\n\r\n",
            b"0\r\n",
            b"X-T: 1\r\n",
            b"g",
            b" ",
            b"\0",
        ];
        let piece = prop_oneof![3 => select(TOKENS).prop_map(<[u8]>::to_vec), 1 => vec(any::<u8>(), 0..8)];
        vec(piece, 0..64).prop_map(|p| p.concat())
    }

    /// Any bytes: arbitrary, or framing-like.
    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![vec(any::<u8>(), 0..512), framing_like()]
    }

    /// Feeds `bytes` cut at `cuts`, as the relay does with each read; returns (consumed,
    /// payload, done).
    fn feed_split(bytes: &[u8], cuts: &[Index]) -> (usize, u64, bool) {
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        at.push(0);
        at.push(bytes.len());
        at.sort_unstable();
        let mut c = Chunks::default();
        let mut consumed = 0;
        for w in at.windows(2) {
            if c.done() {
                break;
            }
            consumed += c.feed(&bytes[w[0]..w[1]]);
        }
        (consumed, c.payload, c.done())
    }

    /// How one chunked body is written: size case and padding, extensions, line ends,
    /// trailers.
    #[derive(Debug, Clone)]
    struct Style {
        sizes: Vec<usize>,
        upper: bool,
        zeros: usize,
        extension: Option<String>,
        bare_lf: bool,
        trailers: Vec<String>,
    }

    fn style() -> impl Strategy<Value = Style> {
        (
            vec(1..300usize, 1..8),
            any::<bool>(),
            0..4usize,
            proptest::option::of("[a-z0-9=\" ]{0,12}"),
            any::<bool>(),
            vec("[A-Za-z-]{1,10}: [ -~]{0,20}", 0..3),
        )
            .prop_map(|(sizes, upper, zeros, extension, bare_lf, trailers)| Style {
                sizes,
                upper,
                zeros,
                extension,
                bare_lf,
                trailers,
            })
    }

    fn encode(payload: &[u8], s: &Style) -> Vec<u8> {
        let eol: &[u8] = if s.bare_lf { b"\n" } else { b"\r\n" };
        let size_line = |out: &mut Vec<u8>, n: usize| {
            let hex = if s.upper { format!("{n:X}") } else { format!("{n:x}") };
            out.extend("0".repeat(s.zeros).bytes().chain(hex.bytes()));
            if let Some(e) = &s.extension {
                out.push(b';');
                out.extend_from_slice(e.as_bytes());
            }
            out.extend_from_slice(eol);
        };
        let mut out = Vec::new();
        let mut rest = payload;
        for &n in s.sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, after) = rest.split_at(n.min(rest.len()));
            size_line(&mut out, chunk.len());
            out.extend_from_slice(chunk);
            out.extend_from_slice(eol);
            rest = after;
        }
        size_line(&mut out, 0);
        for t in &s.trailers {
            out.extend_from_slice(t.as_bytes());
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(eol);
        out
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_bytes_in_any_split_are_tracked_as_when_whole(bytes in bytes(), cuts in vec(any::<Index>(), 0..8)) {
            let mut whole = Chunks::default();
            let consumed = whole.feed(&bytes);
            prop_assert!(consumed <= bytes.len() && whole.payload <= consumed as u64);
            prop_assert!(whole.done() || consumed == bytes.len(), "stopped early without an end");
            prop_assert_eq!(feed_split(&bytes, &cuts), (consumed, whole.payload, whole.done()));
        }

        #[test]
        fn a_well_formed_body_in_any_split_gives_its_payload_and_stops_at_its_end(
            payload in vec(any::<u8>(), 0..2048),
            style in style(),
            next in vec(any::<u8>(), 0..16),
            cuts in vec(any::<Index>(), 0..8),
        ) {
            let body = encode(&payload, &style);
            let stream = [body.as_slice(), next.as_slice()].concat();
            prop_assert_eq!(feed_split(&stream, &cuts), (body.len(), payload.len() as u64, true));
            prop_assert_eq!(dechunk(&body), payload);
        }

        #[test]
        fn dechunk_returns_at_most_what_it_was_given(bytes in bytes()) {
            prop_assert!(dechunk(&bytes).len() <= bytes.len());
        }
    }
}
