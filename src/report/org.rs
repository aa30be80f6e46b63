//! What an organisation scan adds to the report (`azp-preflight org`, `report merge`): which
//! organisation and shard it covers, how much it saw, and how long it was throttled. The JSON
//! fields (`scope`, `coverage`, `throttled`) are additive to schema v1 and present only in
//! organisation mode; a merge reads them back to prove that nothing was skipped.

use serde::{Deserialize, Serialize};

/// One shard of the work: `index` of `count`, 1-based (`--shard 2/4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole organisation in one shard.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Reads `K/N` with 1 ≤ K ≤ N ≤ 1000; `Err` says what is wrong.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (k, n) = text.trim().split_once('/').ok_or_else(|| "K/N, such as 2/4".to_string())?;
        let index: u32 = k.trim().parse().map_err(|_| "K/N with whole numbers, such as 2/4".to_string())?;
        let count: u32 = n.trim().parse().map_err(|_| "K/N with whole numbers, such as 2/4".to_string())?;
        if count == 0 || count > 1000 || index == 0 || index > count {
            return Err("K/N with 1 ≤ K ≤ N ≤ 1000, such as 2/4".into());
        }
        Ok(Shard { index, count })
    }

    /// Whether this shard owns the item with this stable key (for example
    /// `<project id>/<definition id>`, ids lower-cased): FNV-1a of the key, its bits mixed
    /// (FNV's low bits alone split keys that differ in their last digits unevenly), modulo the
    /// count. Stable across runs and machines, and balanced over many keys.
    pub fn owns(&self, key: &str) -> bool {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in key.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        // The splitmix64 finaliser.
        hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        hash ^= hash >> 31;
        hash % u64::from(self.count) == u64::from(self.index - 1)
    }
}

/// `scope`: the organisation (collection URL, with its trailing slash) and the shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub organization: String,
    pub shard: Shard,
    /// Set by `report merge`: the indices of the shard reports merged into this one (all of
    /// them, and `shard` is 1/1, unless some were missing). Empty for a scan's own report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<u32>,
}

/// A part of the organisation the scan did not cover, and why (the token may not read it,
/// the deadline came first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotCovered {
    /// `<project>`, `<project>/<pipeline>` or `<project>/<connection>`.
    pub scope: String,
    pub reason: String,
}

/// `coverage`: counts of what was seen (so a merge can prove that every shard reported), and
/// what was not covered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    pub projects: u64,
    pub connections: u64,
    pub pipelines: u64,
    pub runs: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_covered: Vec<NotCovered>,
}

/// `throttled`: how long requests waited because Azure DevOps asked (429 with `Retry-After`,
/// `X-RateLimit-Delay`, or slowing down as `X-RateLimit-Remaining` ran low).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Throttled {
    pub seconds: f64,
    /// Responses that asked to wait or slow down.
    pub responses: u64,
}

/// Everything an organisation scan adds to a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgRun {
    pub scope: Scope,
    pub coverage: Coverage,
    pub throttled: Throttled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_split_keys_into_disjoint_balanced_parts() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "2", "a/b", "1/0", "1/1001", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let keys: Vec<String> = (0..4000).map(|i| format!("6f1e2d3c-0000-4000-8000-{i:012}/{i}")).collect();
        let mut sizes = [0usize; 4];
        for key in &keys {
            let owners: Vec<u32> = (1..=4).filter(|k| Shard { index: *k, count: 4 }.owns(key)).collect();
            assert_eq!(owners.len(), 1, "{key}");
            sizes[(owners[0] - 1) as usize] += 1;
        }
        assert!(sizes.iter().all(|&n| (900..=1100).contains(&n)), "{sizes:?}");
        assert!(keys.iter().all(|k| Shard::WHOLE.owns(k)));
    }
}
