//! "Tags that exist": the few tags closest to the one that was not found, with bounded work
//! whatever the registry lists.
//!
//! A registry's tag list is untrusted: one 1.9 MB "tag" used to make the full distance
//! matrix allocate 1.9 GiB per target. A tag is at most 128 characters
//! (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`), so longer names are not tags and are skipped, only
//! the first tags of a list are compared, and each comparison keeps two rows and stops as
//! soon as the distance is out of range.

use crate::sanitize::sanitize;

/// The longest tag the OCI distribution grammar allows.
pub const MAX_TAG_LEN: usize = 128;

/// How many tags the tag list asks for (`?n=`); a registry that answers with more still has
/// at most `MAX_TAGS_COMPARED` compared.
pub const TAGS_ASKED: usize = 100;

/// Tags compared at most. A registry answers `tags/list?n=100` with 100; one that ignores
/// `n` still costs no more than this many short comparisons.
pub const MAX_TAGS_COMPARED: usize = 1000;

/// How many suggestions are shown.
const SHOWN: usize = 5;

/// Up to five existing tags closest to the wanted one (typos first, then the most similar).
pub fn closest_tags(wanted: &str, tags: &[String]) -> Vec<String> {
    if wanted.is_empty() || wanted.len() > MAX_TAG_LEN {
        return Vec::new();
    }
    let wanted: Vec<char> = wanted.chars().collect();
    let limit = (wanted.len() / 2).max(2);
    let mut row_buffers = Rows::default();
    let mut scored: Vec<(usize, &String)> = tags
        .iter()
        .take(MAX_TAGS_COMPARED)
        .filter(|t| !t.is_empty() && t.len() <= MAX_TAG_LEN)
        .filter_map(|t| {
            let candidate: Vec<char> = t.chars().collect();
            row_buffers.distance_within(&wanted, &candidate, limit).map(|d| (d, t))
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(SHOWN).map(|(_, t)| sanitize(t)).collect()
}

/// Three reusable rows of the optimal-string-alignment distance (an adjacent transposition
/// counts once, like `server::edit_distance`).
#[derive(Default)]
struct Rows {
    before: Vec<usize>,
    previous: Vec<usize>,
    current: Vec<usize>,
}

impl Rows {
    /// The distance between `a` and `b` when it is at most `max`, else `None` (decided as
    /// early as a row shows it).
    fn distance_within(&mut self, a: &[char], b: &[char], max: usize) -> Option<usize> {
        if a.len().abs_diff(b.len()) > max {
            return None;
        }
        let width = b.len() + 1;
        for row in [&mut self.before, &mut self.previous, &mut self.current] {
            row.clear();
            row.resize(width, 0);
        }
        for (j, cell) in self.previous.iter_mut().enumerate() {
            *cell = j;
        }
        for i in 1..=a.len() {
            self.current[0] = i;
            let mut row_min = i;
            for j in 1..width {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (self.previous[j] + 1).min(self.current[j - 1] + 1).min(self.previous[j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(self.before[j - 2] + 1);
                }
                self.current[j] = best;
                row_min = row_min.min(best);
            }
            // Every later cell is at least the smallest of this row, give or take the one
            // transposition that reaches two rows back: two rows above `max` decide it.
            if row_min > max && self.previous.iter().min().is_some_and(|m| *m > max) {
                return None;
            }
            std::mem::swap(&mut self.before, &mut self.previous);
            std::mem::swap(&mut self.previous, &mut self.current);
        }
        let d = self.previous[b.len()];
        (d <= max).then_some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::registry::server::edit_distance;
    use std::time::{Duration, Instant};

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn closest_tags_prefer_near_misses() {
        let tags = strings(&["1.0.0", "1.0.1", "latest", "2.0.0", "stable"]);
        assert_eq!(closest_tags("1.0.2", &tags)[..2], ["1.0.0".to_string(), "1.0.1".to_string()]);
        assert_eq!(closest_tags("lastest", &tags)[0], "latest");
        assert!(closest_tags("zzzzzzzzzzzz", &tags).is_empty());
    }

    #[test]
    fn the_bounded_distance_agrees_with_the_full_one() {
        let words = ["", "a", "ab", "ba", "abc", "acb", "latest", "lastest", "1.0.2", "1.2.0", "v1.0.0-rc1", "stable"];
        let mut rows = Rows::default();
        for a in words {
            for b in words {
                let full = edit_distance(a, b);
                let (ac, bc): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
                for max in 0..8 {
                    let bounded = rows.distance_within(&ac, &bc, max);
                    assert_eq!(bounded, (full <= max).then_some(full), "{a:?} {b:?} max {max}");
                }
            }
        }
    }

    #[test]
    fn a_huge_name_and_a_huge_list_cost_little() {
        // A 1.9 MB "tag" among real ones, and far more names than a registry was asked for.
        let mut tags = vec!["x".repeat(1_900_000), "1.0.0".to_string()];
        tags.extend((0..200_000).map(|i| format!("build-{i}")));
        let started = Instant::now();
        let near = closest_tags("1.0.1", &tags);
        assert_eq!(near, ["1.0.0"]);
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        // Only the first MAX_TAGS_COMPARED names are looked at.
        let mut late = strings(&["zzz"; MAX_TAGS_COMPARED]);
        late.push("1.0.0".into());
        assert!(closest_tags("1.0.1", &late).is_empty());
        // A reference longer than any tag gets no suggestion (and no work).
        assert!(closest_tags(&"a".repeat(MAX_TAG_LEN + 1), &tags).is_empty());
    }
}
