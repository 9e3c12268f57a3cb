//! What every engine is told, whatever plays the stream: the settings of its HTTP requests
//! and which variant of a master playlist it plays.

use std::net::IpAddr;
use std::time::Duration;

use clap::ValueEnum;

use crate::engine::limits::Limits;
use crate::engine::trust::Trust;

/// Which variant of a master playlist a viewer plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Every variant and rendition (FFmpeg `-map 0`)
    All,
    /// The variant with the highest BANDWIDTH
    Highest,
    /// The variant with the lowest BANDWIDTH
    Lowest,
    /// The first video and first audio stream
    First,
    /// Start on the first variant and switch with the measured throughput, as hls.js does
    /// (native engine only)
    Abr,
}

/// What plays each viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// One FFmpeg process per viewer (decoder-level realism, ~12 MB and ~0.1 % of a core each)
    Ffmpeg,
    /// A player task inside hls-swarm (no decoding; thousands per core)
    Native,
}

/// The request headers `--no-cache` adds, for every engine and the probe.
pub const NO_CACHE_HEADERS: [(&str, &str); 2] =
    [("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache")];

/// What every viewer's requests carry.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// Network timeout for each read or connect.
    pub timeout: Duration,
    /// Send no-cache headers.
    pub no_cache: bool,
    /// Extra headers, in order.
    pub headers: Vec<Header>,
    /// Base User-Agent (`… viewer/N` is appended).
    pub user_agent: String,
    /// Connect to this address instead of resolving the host.
    pub resolve: Option<IpAddr>,
    /// How https origins' certificates are checked (by the probe and the relay).
    pub trust: Trust,
    /// Let the probe and the relay connect to link-local and cloud metadata addresses.
    pub allow_link_local: bool,
    /// How much of a server's answers the probe and the relay read.
    pub limits: Limits,
}

/// One `Name: value` request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Field name as given.
    pub name: String,
    /// Field value, trimmed.
    pub value: String,
}

/// `--variant-mix`: how the viewers are shared between variant choices, e.g.
/// `highest=20,lowest=30,abr=50`. Viewers are dealt in turn by smooth weighted round robin,
/// so every run of `sum of weights / their gcd` consecutive viewers holds the exact shares.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VariantMix {
    /// Each choice and its weight, as given.
    pub shares: Vec<(Variant, u32)>,
    #[serde(skip)]
    deal: Vec<Variant>,
}

/// Largest sum of `--variant-mix` weights.
pub const MIX_WEIGHT_MAX: u32 = 10_000;

impl VariantMix {
    /// Reads `choice=weight,…`; the error names the part at fault and what is accepted.
    ///
    /// # Errors
    /// A part that is not `choice=weight`, an unknown choice, a choice given twice, a weight
    /// of 0 or weights adding up to more than [`MIX_WEIGHT_MAX`].
    pub fn parse(text: &str) -> Result<VariantMix, String> {
        let choices = "all, highest, lowest, first, abr";
        let mut shares: Vec<(Variant, u32)> = Vec::new();
        for part in text.split(',').map(str::trim) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("'{part}' is not choice=weight (e.g. highest=20,abr=80)"))?;
            let variant = Variant::from_str(name.trim(), true).map_err(|_| {
                format!("unknown choice '{}' in '{part}': expected one of {choices}", name.trim())
            })?;
            let weight: u32 =
                weight.trim().parse().ok().filter(|w| (1..=MIX_WEIGHT_MAX).contains(w)).ok_or_else(|| {
                    format!(
                        "weight '{}' in '{part}' is not a whole number from 1 to {MIX_WEIGHT_MAX}",
                        weight.trim()
                    )
                })?;
            if shares.iter().any(|(v, _)| *v == variant) {
                return Err(format!("'{}' is given twice", name.trim()));
            }
            shares.push((variant, weight));
        }
        let sum: u32 = shares.iter().map(|(_, w)| w).sum();
        if sum > MIX_WEIGHT_MAX {
            return Err(format!("the weights add up to {sum}; at most {MIX_WEIGHT_MAX}"));
        }
        let weights: Vec<u32> = shares.iter().map(|(_, w)| *w).collect();
        let deal = deal(&weights).into_iter().map(|i| shares[i].0).collect();
        Ok(VariantMix { shares, deal })
    }

    /// The choice of viewer `id`.
    #[must_use]
    pub fn for_viewer(&self, id: u32) -> Variant {
        self.deal[id as usize % self.deal.len()]
    }
}

impl std::fmt::Display for VariantMix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .shares
            .iter()
            .map(|(v, w)| {
                format!("{}={w}", v.to_possible_value().map_or_else(String::new, |p| p.get_name().to_owned()))
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// One turn per unit of the reduced weights, each turn given to one index by smooth weighted
/// round robin (each turn every index gains its weight, the one with the most takes the turn
/// and pays the total), so any run of consecutive turns as long as the cycle holds the exact
/// shares and shorter runs are as close to them as whole turns allow. Weights are at least 1.
#[must_use]
pub fn deal(weights: &[u32]) -> Vec<usize> {
    let g = weights.iter().fold(0, |g, w| gcd(g, *w)).max(1);
    let weights: Vec<i64> = weights.iter().map(|w| i64::from(w / g)).collect();
    let total: i64 = weights.iter().sum();
    let mut credit = vec![0i64; weights.len()];
    let mut turns = Vec::new();
    for _ in 0..total {
        for (c, w) in credit.iter_mut().zip(&weights) {
            *c += w;
        }
        let best = (0..credit.len()).max_by_key(|i| (credit[*i], std::cmp::Reverse(*i))).unwrap_or(0);
        credit[best] -= total;
        turns.push(best);
    }
    turns
}

/// `--session-length`: how long one viewing lasts before the viewer leaves and a new one
/// starts in its place (a zap): `30s`, or `20s..2m` for a length drawn evenly in that range
/// for each session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLength {
    /// Shortest session.
    pub min: Duration,
    /// Longest session (equal to `min` for a fixed length).
    pub max: Duration,
}

/// Shortest `--session-length`: a viewing shorter than this is not one.
pub const SESSION_LENGTH_MIN: Duration = Duration::from_secs(1);

impl SessionLength {
    /// Reads `D` or `MIN..MAX` (humantime durations, e.g. `45s`, `20s..2m`).
    ///
    /// # Errors
    /// A part that is not a duration, one under [`SESSION_LENGTH_MIN`], or `MIN` > `MAX`.
    pub fn parse(text: &str) -> Result<SessionLength, String> {
        let one = |part: &str| {
            let d = humantime::parse_duration(part.trim()).map_err(|e| {
                format!("'{}' is not a duration ({e}): expected e.g. 45s or 20s..2m", part.trim())
            })?;
            if d < SESSION_LENGTH_MIN {
                return Err(format!("'{}' is shorter than 1s", part.trim()));
            }
            Ok(d)
        };
        let (min, max) = match text.split_once("..") {
            Some((a, b)) => (one(a)?, one(b)?),
            None => (one(text)?, one(text)?),
        };
        if min > max {
            return Err(format!("'{text}' runs backwards: the shorter length comes first (e.g. 20s..2m)"));
        }
        Ok(SessionLength { min, max })
    }

    /// One session's length, drawn with `rng`.
    pub fn draw(self, rng: &mut impl rand::Rng) -> Duration {
        if self.min == self.max {
            return self.min;
        }
        Duration::from_secs_f64(rng.gen_range(self.min.as_secs_f64()..=self.max.as_secs_f64()))
    }
}

impl std::fmt::Display for SessionLength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_duration(self.min))?;
        if self.max != self.min {
            write!(f, "..{}", humantime::format_duration(self.max))?;
        }
        Ok(())
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_deals_exact_shares_in_turn() {
        let mix = VariantMix::parse("highest=20,lowest=30,abr=50").unwrap();
        let first: Vec<Variant> = (0..10).map(|i| mix.for_viewer(i)).collect();
        let count = |v| first.iter().filter(|x| **x == v).count();
        assert_eq!((count(Variant::Highest), count(Variant::Lowest), count(Variant::Abr)), (2, 3, 5));
        // Interleaved, not in blocks: the first three viewers are not all one choice.
        assert!(first[..3].iter().any(|v| *v != first[0]), "{first:?}");
        assert_eq!(mix.for_viewer(10), mix.for_viewer(0));
        assert_eq!(mix.to_string(), "highest=20,lowest=30,abr=50");
    }

    #[test]
    fn a_bad_mix_names_the_part() {
        let err = |t: &str| VariantMix::parse(t).unwrap_err();
        assert_eq!(err("highest"), "'highest' is not choice=weight (e.g. highest=20,abr=80)");
        assert_eq!(
            err("best=3"),
            "unknown choice 'best' in 'best=3': expected one of all, highest, lowest, first, abr"
        );
        assert_eq!(err("abr=0"), "weight '0' in 'abr=0' is not a whole number from 1 to 10000");
        assert_eq!(err("abr=x"), "weight 'x' in 'abr=x' is not a whole number from 1 to 10000");
        assert_eq!(err("abr=1,abr=2"), "'abr' is given twice");
        assert_eq!(err("abr=6000,lowest=6000"), "the weights add up to 12000; at most 10000");
    }

    #[test]
    fn a_session_length_is_one_duration_or_a_range() {
        let fixed = SessionLength::parse("45s").unwrap();
        assert_eq!((fixed.min, fixed.max), (Duration::from_secs(45), Duration::from_secs(45)));
        let range = SessionLength::parse("20s..2m").unwrap();
        assert_eq!(range.to_string(), "20s..2m");
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
        for _ in 0..100 {
            let d = range.draw(&mut rng);
            assert!(d >= Duration::from_secs(20) && d <= Duration::from_secs(120), "{d:?}");
        }
        assert_eq!(fixed.draw(&mut rng), Duration::from_secs(45));
        let err = |t: &str| SessionLength::parse(t).unwrap_err();
        assert_eq!(err("2m..20s"), "'2m..20s' runs backwards: the shorter length comes first (e.g. 20s..2m)");
        assert_eq!(err("500ms"), "'500ms' is shorter than 1s");
        assert!(err("ten").starts_with("'ten' is not a duration ("), "{}", err("ten"));
    }
}
