//! Affected-version ranges: `>= 2.241.0, < 2.243.2`, or a single version `2.258.0` (`= 2.258.0`).

use std::fmt;

use crate::checks::tasks::reference::TaskVersion;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub version: TaskVersion,
    pub inclusive: bool,
}

/// A contiguous set of versions; the lower bound is required so a range never reaches back
/// to every old version by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    pub lower: Bound,
    pub upper: Option<Bound>,
}

pub const FORM: &str = "a version `2.241.1` or a range `>= 2.241.0, < 2.243.2` (operators >=, >, <=, <, =)";

impl VersionRange {
    pub fn exact(version: TaskVersion) -> Self {
        let b = Bound { version, inclusive: true };
        VersionRange { lower: b, upper: Some(b) }
    }

    pub fn parse(text: &str) -> Result<VersionRange, String> {
        let mut lower: Option<Bound> = None;
        let mut upper: Option<Bound> = None;
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!("`{text}` is not {FORM}"));
        }
        for part in parts {
            let (op, rest) = ["<=", ">=", "<", ">", "="]
                .iter()
                .find_map(|op| part.strip_prefix(op).map(|rest| (*op, rest.trim())))
                .unwrap_or(("=", part));
            let version = TaskVersion::parse(rest)
                .ok_or_else(|| format!("`{rest}` in `{text}` is not a full version N.N.N; expected {FORM}"))?;
            let slot = match op {
                ">=" | ">" => &mut lower,
                "<=" | "<" => &mut upper,
                _ => {
                    if lower.is_some() || upper.is_some() {
                        return Err(format!("`{text}` mixes `=` with other bounds; expected {FORM}"));
                    }
                    lower = Some(Bound { version, inclusive: true });
                    upper = lower;
                    continue;
                }
            };
            if slot.is_some() {
                return Err(format!(
                    "`{text}` has two {} bounds; expected {FORM}",
                    if op.starts_with('>') { "lower" } else { "upper" }
                ));
            }
            *slot = Some(Bound { version, inclusive: op.len() == 2 });
        }
        let Some(lower) = lower else {
            return Err(format!(
                "`{text}` has no lower bound (`>=`); an open-ended range would match every old version"
            ));
        };
        let range = VersionRange { lower, upper };
        if range.is_empty() {
            return Err(format!("`{text}` matches no version: the lower bound is above the upper bound"));
        }
        Ok(range)
    }

    pub fn contains(&self, v: TaskVersion) -> bool {
        let above = v > self.lower.version || (self.lower.inclusive && v == self.lower.version);
        let below = match self.upper {
            None => true,
            Some(u) => v < u.version || (u.inclusive && v == u.version),
        };
        above && below
    }

    fn is_empty(&self) -> bool {
        match self.upper {
            None => false,
            Some(u) => {
                self.lower.version > u.version
                    || (self.lower.version == u.version && !(self.lower.inclusive && u.inclusive))
            }
        }
    }

    /// Whether some version is in both ranges.
    pub fn overlaps(&self, other: &VersionRange) -> bool {
        let starts_before_end = |lo: Bound, hi: Option<Bound>| match hi {
            None => true,
            Some(hi) => lo.version < hi.version || (lo.version == hi.version && lo.inclusive && hi.inclusive),
        };
        starts_before_end(self.lower, other.upper) && starts_before_end(other.lower, self.upper)
    }

    /// Whether every version in this range is below `v`.
    pub fn entirely_below(&self, v: TaskVersion) -> bool {
        match self.upper {
            None => false,
            Some(u) => u.version < v || (u.version == v && !u.inclusive),
        }
    }

    /// Whether every version in this range is above `v`.
    pub fn entirely_above(&self, v: TaskVersion) -> bool {
        self.lower.version > v || (self.lower.version == v && !self.lower.inclusive)
    }
}

/// Pairs of ranges that overlap (indices, the earlier listed first), in O(n log n): sorted by
/// lower bound, a range overlaps some range before it exactly when it overlaps the one before
/// it that reaches highest. One pair per range that overlaps another, so at most n - 1.
pub fn overlapping(ranges: &[VersionRange]) -> Vec<(usize, usize)> {
    // An inclusive lower bound starts before an exclusive one at the same version.
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| (ranges[i].lower.version, !ranges[i].lower.inclusive));
    // No upper bound reaches highest; at the same version an inclusive bound reaches further.
    let reach = |r: &VersionRange| r.upper.map(|u| (u.version, u.inclusive));
    let reaches_further = |a: &VersionRange, b: &VersionRange| match (reach(a), reach(b)) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(x), Some(y)) => x > y,
    };
    let mut pairs = Vec::new();
    let mut highest: Option<usize> = None;
    for i in order {
        match highest {
            Some(h) => {
                if ranges[h].overlaps(&ranges[i]) {
                    pairs.push((h.min(i), h.max(i)));
                }
                if reaches_further(&ranges[i], &ranges[h]) {
                    highest = Some(i);
                }
            }
            None => highest = Some(i),
        }
    }
    pairs
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.upper == Some(self.lower) {
            return write!(f, "{}", self.lower.version);
        }
        write!(f, "{} {}", if self.lower.inclusive { ">=" } else { ">" }, self.lower.version)?;
        if let Some(u) = self.upper {
            write!(f, ", {} {}", if u.inclusive { "<=" } else { "<" }, u.version)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> TaskVersion {
        TaskVersion::parse(s).unwrap()
    }

    #[test]
    fn parses_ranges_and_single_versions() {
        let r = VersionRange::parse(">= 2.241.0, < 2.243.2").unwrap();
        assert!(r.contains(v("2.241.0")) && r.contains(v("2.243.1")));
        assert!(!r.contains(v("2.243.2")) && !r.contains(v("2.238.1")));
        assert_eq!(r.to_string(), ">= 2.241.0, < 2.243.2");
        let one = VersionRange::parse("6.258.2").unwrap();
        assert_eq!(one, VersionRange::parse("= 6.258.2").unwrap());
        assert!(one.contains(v("6.258.2")) && !one.contains(v("6.258.1")));
        assert_eq!(one.to_string(), "6.258.2");
        let open = VersionRange::parse("> 1.0.0").unwrap();
        assert!(open.contains(v("9.9.9")) && !open.contains(v("1.0.0")));
    }

    #[test]
    fn rejects_malformed_ranges() {
        for bad in [
            "",
            "< 2.243.2",
            ">= 2.243.2, < 2.241.0",
            ">= 2.1.0, < 2.1.0",
            ">= 2.1, < 2.3.0",
            ">= 2.1.0, >= 2.2.0",
            "= 2.1.0, < 3.0.0",
            "~ 2.1.0",
            ">= 2.1.0,",
        ] {
            assert!(VersionRange::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn overlap_and_position() {
        let a = VersionRange::parse(">= 2.241.0, < 2.243.2").unwrap();
        let b = VersionRange::parse(">= 2.243.2").unwrap();
        let c = VersionRange::parse("2.243.1").unwrap();
        assert!(!a.overlaps(&b) && !b.overlaps(&a));
        assert!(a.overlaps(&c) && c.overlaps(&a));
        assert!(a.entirely_below(v("2.243.2")) && !a.entirely_below(v("2.243.1")));
        assert!(a.entirely_above(v("2.238.1")) && !a.entirely_above(v("2.241.0")));
        assert!(!b.entirely_below(v("9.0.0")));
    }

    #[test]
    fn overlap_sweep_agrees_with_every_pair() {
        let texts = [
            ">= 2.1.0, < 2.3.0",
            "2.5.0",
            ">= 2.3.0, <= 2.4.0",
            "> 2.4.0, < 2.5.0",
            ">= 2.6.0, < 2.9.0",
            "2.7.1",
            ">= 2.10.0",
            "> 2.12.0, < 2.13.0",
        ];
        let ranges: Vec<VersionRange> = texts.iter().map(|t| VersionRange::parse(t).unwrap()).collect();
        assert_eq!(overlapping(&ranges), [(4, 5), (6, 7)]);
        // Against every pair, on pseudo-random sets: each reported pair overlaps, and a range
        // is reported exactly when it overlaps a range that sorts before it.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        for _ in 0..300 {
            let set: Vec<VersionRange> = (0..next(8) + 1)
                .map(|_| {
                    let lo = next(10) as u32;
                    let lower = Bound { version: TaskVersion::new(2, lo, 0), inclusive: next(2) == 0 };
                    let upper = match next(4) {
                        0 => None,
                        _ => Some(Bound {
                            version: TaskVersion::new(2, lo + next(4) as u32, 0),
                            inclusive: next(2) == 0,
                        }),
                    };
                    VersionRange { lower, upper }
                })
                .filter(|r| !r.is_empty())
                .collect();
            let pairs = overlapping(&set);
            assert!(pairs.iter().all(|&(i, j)| i < j && set[i].overlaps(&set[j])));
            let key = |r: &VersionRange| (r.lower.version, !r.lower.inclusive);
            let mut order: Vec<usize> = (0..set.len()).collect();
            order.sort_by_key(|&i| key(&set[i]));
            let expected = order
                .iter()
                .enumerate()
                .filter(|&(pos, &j)| order[..pos].iter().any(|&i| set[i].overlaps(&set[j])))
                .count();
            assert_eq!(pairs.len(), expected, "{set:?}");
        }
        let none: Vec<VersionRange> = texts[..4].iter().map(|t| VersionRange::parse(t).unwrap()).collect();
        assert!(overlapping(&none).is_empty());
    }
}
