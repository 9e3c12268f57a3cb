//! Which part of a fleet's viewers one process runs (`--shard INDEX/COUNT`): shard `i` of `n`
//! runs a contiguous block of the fleet's viewer numbers, the blocks in shard order and as even
//! as whole viewers allow, so that merging the shards' results in index order numbers every
//! viewer as one process running them all would.

/// Most shards in one run.
pub const MAX_SHARDS: u32 = 1_000;

/// This process's part of a fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// From 0.
    pub index: u32,
    /// Shards in the fleet.
    pub count: u32,
}

impl Shard {
    /// Reads `INDEX/COUNT`.
    ///
    /// # Errors
    /// Not two whole numbers, a count out of 1..=[`MAX_SHARDS`], or an index not below it.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text.split_once('/').ok_or_else(|| "expected INDEX/COUNT, e.g. 0/3".to_owned())?;
        let index = i.trim().parse().map_err(|_| format!("index '{}' is not a whole number", i.trim()))?;
        let count = n.trim().parse().map_err(|_| format!("count '{}' is not a whole number", n.trim()))?;
        Shard::new(index, count)
    }

    /// Shard `index` of `count`.
    ///
    /// # Errors
    /// A count out of 1..=[`MAX_SHARDS`], or an index not below it.
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if !(1..=MAX_SHARDS).contains(&count) {
            return Err(format!("the count {count} is out of range: accepted 1 to {MAX_SHARDS}"));
        }
        if index >= count {
            return Err(format!("index {index} is not below the count {count} (shards are numbered from 0)"));
        }
        Ok(Shard { index, count })
    }

    /// The fleet's viewer numbers this shard runs, of `clients` in all: `first..first + n`.
    #[must_use]
    pub fn block(self, clients: u32) -> (u32, u32) {
        let (base, extra) = (clients / self.count, clients % self.count);
        let first = self.index * base + self.index.min(extra);
        (first, base + u32::from(self.index < extra))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_fleet_in_order() {
        for (clients, count) in [(10, 3), (3, 3), (1000, 7), (5, 1)] {
            let mut next = 0;
            for index in 0..count {
                let (first, n) = Shard::new(index, count).unwrap().block(clients);
                assert_eq!(first, next, "{clients} over {count}: shard {index}");
                assert!(n == clients / count || n == clients / count + 1);
                next = first + n;
            }
            assert_eq!(next, clients);
        }
        assert_eq!(Shard::parse(" 2/3 ").unwrap().block(10), (7, 3));
    }
}
