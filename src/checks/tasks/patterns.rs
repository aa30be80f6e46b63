//! Brace alternatives in `pipelineFiles` / `--pipeline` globs, as a shell user writes them:
//! `**/*.{yml,yaml}` is `**/*.yml` and `**/*.yaml`. The `glob` crate has no braces, so they
//! are expanded here first, then each alternative is globbed with the usual `**` meaning.
//!
//! Bounded: at most `MAX_GROUPS` brace groups are expanded along any one alternative and a
//! pattern yields at most `MAX_ALTERNATIVES` alternatives, so `{a,b}{c,d}{e,f}…` cannot
//! multiply without end. A `{` without a matching `}` or without a top-level comma (`{a}`)
//! stays literal, as in a shell; braces inside `[...]` are literal too.

/// Brace groups expanded along one alternative (nested or one after another).
pub const MAX_GROUPS: usize = 8;
/// Alternatives one pattern may expand to.
pub const MAX_ALTERNATIVES: usize = 64;

/// The alternatives of `pattern`, in the order written, each once.
pub fn expand_braces(pattern: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    expand_into(pattern, 0, &mut out)?;
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    Ok(out)
}

fn expand_into(pattern: &str, groups: usize, out: &mut Vec<String>) -> Result<(), String> {
    let Some((open, close, commas)) = first_group(pattern) else {
        if out.len() >= MAX_ALTERNATIVES {
            return Err(format!("braces that expand to at most {MAX_ALTERNATIVES} patterns"));
        }
        out.push(pattern.to_string());
        return Ok(());
    };
    if groups >= MAX_GROUPS {
        return Err(format!("at most {MAX_GROUPS} brace groups"));
    }
    let (prefix, suffix) = (&pattern[..open], &pattern[close + 1..]);
    let mut start = open + 1;
    for end in commas.into_iter().chain(std::iter::once(close)) {
        let alternative = &pattern[start..end];
        expand_into(&format!("{prefix}{alternative}{suffix}"), groups + 1, out)?;
        start = end + 1;
    }
    Ok(())
}

/// The first outermost `{...}` with a comma at its own level: (open, close, comma offsets).
fn first_group(pattern: &str) -> Option<(usize, usize, Vec<usize>)> {
    let bytes = pattern.as_bytes();
    // Open braces: (offset, offsets of commas at that level).
    let mut open: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            // A character class is literal to the brace expansion: skip to its `]` (a `]`
            // right after `[` or `[!` belongs to the class).
            b'[' => {
                let mut j = i + 1;
                if bytes.get(j) == Some(&b'!') {
                    j += 1;
                }
                if bytes.get(j) == Some(&b']') {
                    j += 1;
                }
                // An unclosed `[` is read as a plain character here (the glob refuses it later).
                if let Some(k) = bytes[j.min(bytes.len())..].iter().position(|&b| b == b']') {
                    i = j + k;
                }
            }
            b'{' => open.push((i, Vec::new())),
            b',' => {
                if let Some((_, commas)) = open.last_mut() {
                    commas.push(i);
                }
            }
            b'}' => {
                if let Some((at, commas)) = open.pop() {
                    if open.is_empty() && !commas.is_empty() {
                        return Some((at, i, commas));
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> Vec<String> {
        expand_braces(p).unwrap()
    }

    #[test]
    fn alternatives_in_order_nested_and_sequential() {
        assert_eq!(ok("**/*.{yml,yaml}"), ["**/*.yml", "**/*.yaml"]);
        assert_eq!(ok("{ci,.ado}/*.yml"), ["ci/*.yml", ".ado/*.yml"]);
        assert_eq!(ok("a{b,{c,d}}e"), ["abe", "ace", "ade"]);
        assert_eq!(ok("{a,b}/{c,d}"), ["a/c", "a/d", "b/c", "b/d"]);
        assert_eq!(ok("x.{yml,yml}"), ["x.yml"], "each alternative once");
        assert_eq!(ok("{,.}azure-pipelines.yml"), ["azure-pipelines.yml", ".azure-pipelines.yml"]);
    }

    #[test]
    fn braces_without_alternatives_stay_literal() {
        assert_eq!(ok("plain/*.yml"), ["plain/*.yml"]);
        assert_eq!(ok("a{b}c"), ["a{b}c"]);
        assert_eq!(ok("a{b,c"), ["a{b,c"]);
        assert_eq!(ok("a}b,c{"), ["a}b,c{"]);
        assert_eq!(ok("[{]x,y}.yml"), ["[{]x,y}.yml"], "a brace in a class is literal");
        assert_eq!(ok("[]{]{a,b}"), ["[]{]a", "[]{]b"]);
    }

    #[test]
    fn expansion_is_bounded() {
        // 2^7 = 128 alternatives: over the cap, refused instead of multiplied.
        let wide = "{a,b}".repeat(7);
        assert!(expand_braces(&wide).unwrap_err().contains("64"));
        assert_eq!(expand_braces(&"{a,b}".repeat(6)).unwrap().len(), 64);
        // Deep nesting of groups with one alternative each: refused past the group cap.
        let deep = format!("{}x{}", "{a,".repeat(20), "}".repeat(20));
        assert!(expand_braces(&deep).unwrap_err().contains("brace groups"));
        // Long but flat: fine and fast.
        let long = format!("{{{}}}", (0..60).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
        assert_eq!(expand_braces(&long).unwrap().len(), 60);
    }
}
