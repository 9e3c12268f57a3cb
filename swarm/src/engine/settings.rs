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
        let gcd = shares.iter().fold(0, |g, (_, w)| gcd(g, *w));
        let weights: Vec<i64> = shares.iter().map(|(_, w)| i64::from(w / gcd)).collect();
        let total: i64 = weights.iter().sum();
        // Smooth weighted round robin: each turn every choice gains its weight, the one with
        // the most takes the turn and pays the total.
        let mut credit = vec![0i64; weights.len()];
        let mut deal = Vec::new();
        for _ in 0..total {
            for (c, w) in credit.iter_mut().zip(&weights) {
                *c += w;
            }
            let best = (0..credit.len()).max_by_key(|i| (credit[*i], std::cmp::Reverse(*i))).unwrap_or(0);
            credit[best] -= total;
            deal.push(shares[best].0);
        }
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
}
