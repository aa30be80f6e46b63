//! The module graph has no cycles: `cargo test --test architecture`.
//!
//! Reads `src/**/*.rs`, collects every `crate::…`, `super::…` (and `use` tree) path, maps it to
//! the module it names, and looks for cycles. An edge `a -> b` is lifted to the children of the
//! two modules' lowest common ancestor: `settings -> azure::arm` counts as `settings -> azure`,
//! and an edge between a module and its own ancestor or descendant (a `mod.rs` and its
//! submodules, `super::` from a submodule) is not an edge at all — a parent owns its children.
//! So the rule is "no cycle between siblings", at every level of the tree.
//!
//! Code under `#[cfg(test)]` (test modules, test helpers such as `check::test_context`, the
//! `testing` module) is left out: it is never part of the shipped program, and a test may
//! well reach across the layers it tests to build its fixtures.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// A module path from the crate root: `["azure", "arm"]`; the root is empty.
type ModPath = Vec<String>;

/// One reference from a module to another, where it was written.
#[derive(Debug, Clone)]
struct Reference {
    from: ModPath,
    to: ModPath,
    file: String,
    line: usize,
}

/// A source file: its name for messages and the module it is.
struct SourceFile {
    name: String,
    module: ModPath,
    text: String,
}

#[test]
fn the_module_graph_has_no_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = read_sources(&root);
    assert!(files.len() > 20, "expected the crate's sources under {}", root.display());
    let cycles = find_cycles(&files);
    assert!(cycles.is_empty(), "module cycles found:\n\n{}", cycles.join("\n\n"));
}

#[test]
fn a_planted_cycle_is_found_and_named_with_its_lines() {
    let files = vec![
        file("src/lib.rs", &[], "pub mod a;\npub mod b;\npub mod c;\n"),
        file("src/a.rs", &["a"], "use crate::b::Thing;\n"),
        file("src/b/mod.rs", &["b"], "pub mod inner;\npub struct Thing;\n"),
        file("src/b/inner.rs", &["b", "inner"], "// crate::a::Nope in a comment\n\nfn f() { crate::c::g(); }\n"),
        file("src/c.rs", &["c"], "use crate::{a::{self, Other}};\n"),
    ];
    let cycles = find_cycles(&files);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    let cycle = &cycles[0];
    assert!(cycle.starts_with("a -> b -> c -> a"), "{cycle}");
    assert!(cycle.contains("src/a.rs:1"), "{cycle}");
    assert!(cycle.contains("src/b/inner.rs:3"), "{cycle}");
    assert!(cycle.contains("src/c.rs:1"), "{cycle}");
}

#[test]
fn parents_and_children_and_test_code_are_not_cycles() {
    let files = vec![
        file("src/lib.rs", &[], "pub mod p;\npub mod q;\n"),
        file("src/p/mod.rs", &["p"], "mod x;\nmod y;\nuse self::x::X;\npub struct Top;\n"),
        // A child using its parent's items, and a sibling through `super::`.
        file("src/p/x.rs", &["p", "x"], "use super::Top;\nuse super::y::Y;\npub struct X;\n"),
        file("src/p/y.rs", &["p", "y"], "pub struct Y;\n#[cfg(test)]\nmod tests {\n    use super::super::x::X;\n}\n"),
        // q uses p; p's test-only helper uses q: not a cycle of the shipped program.
        file("src/q.rs", &["q"], "use crate::p::x::X;\n"),
        file(
            "src/p/z.rs",
            &["p", "z"],
            "#[cfg(all(test, unix))]\npub(crate) fn helper() { crate::q::thing(); }\npub fn real() {}\n",
        ),
    ];
    let cycles = find_cycles(&files);
    assert!(cycles.is_empty(), "{cycles:?}");
}

#[test]
fn a_cycle_between_submodules_is_found_at_their_level() {
    let files = vec![
        file("src/lib.rs", &[], "pub mod p;\n"),
        file("src/p/mod.rs", &["p"], "mod x;\nmod y;\n"),
        file("src/p/x.rs", &["p", "x"], "use super::y::Y;\npub struct X;\n"),
        file("src/p/y.rs", &["p", "y"], "pub struct Y;\nfn f() { let _ = super::x::X; }\n"),
        // An inline module's `super` is the file's module, not its parent.
        file("src/p/w.rs", &["p", "w"], "pub mod inner {\n    use super::Z;\n}\npub struct Z;\n"),
    ];
    let cycles = find_cycles(&files);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(cycles[0].starts_with("p::x -> p::y -> p::x"), "{}", cycles[0]);
}

fn file(name: &str, module: &[&str], text: &str) -> SourceFile {
    SourceFile { name: name.into(), module: module.iter().map(|s| s.to_string()).collect(), text: text.into() }
}

/// Every `.rs` file under `root` (the library: `main.rs` is a separate crate that names the
/// library by its name, and `bin/` likewise).
fn read_sources(root: &Path) -> Vec<SourceFile> {
    let mut paths = Vec::new();
    collect_rs(root, &mut paths);
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let rel = path.strip_prefix(root).expect("under the root");
        let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if parts == ["main.rs"] || parts.first().map(String::as_str) == Some("bin") {
            continue;
        }
        let mut module: ModPath = parts.clone();
        let last = module.pop().expect("a file name");
        match last.as_str() {
            "lib.rs" | "mod.rs" => {}
            other => module.push(other.trim_end_matches(".rs").to_string()),
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        files.push(SourceFile { name: format!("src/{}", parts.join("/")), module, text });
    }
    files
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The cycles among sibling modules, each as `a -> b -> a` followed by one `file:line` per
/// edge. Every edge that lies on some cycle appears in at least one of them.
fn find_cycles(files: &[SourceFile]) -> Vec<String> {
    let modules: BTreeSet<ModPath> = files.iter().map(|f| f.module.clone()).collect();
    let test_only = test_only_modules(files);
    let mut edges: BTreeMap<(ModPath, ModPath), Reference> = BTreeMap::new();
    for file in files.iter().filter(|f| !test_only.iter().any(|t| f.module.starts_with(t))) {
        for reference in references(file, &modules) {
            if test_only.iter().any(|t| reference.to.starts_with(t)) {
                continue;
            }
            if let Some(pair) = lift(&reference.from, &reference.to) {
                edges.entry(pair).or_insert(reference);
            }
        }
    }
    let mut graph: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        graph.entry(from.clone()).or_default().insert(to.clone());
    }
    let mut cycles = Vec::new();
    let mut covered: BTreeSet<(ModPath, ModPath)> = BTreeSet::new();
    for component in strongly_connected(&graph) {
        for (from, to) in edges.keys() {
            if !component.contains(from) || !component.contains(to) || covered.contains(&(from.clone(), to.clone())) {
                continue;
            }
            let back = shortest_path(&graph, &component, to, from).expect("a path back inside the component");
            let mut path = vec![from.clone()];
            path.extend(back);
            let mut text = path.iter().map(name).collect::<Vec<_>>().join(" -> ");
            for pair in path.windows(2) {
                let key = (pair[0].clone(), pair[1].clone());
                let r = &edges[&key];
                text.push_str(&format!(
                    "\n    {} -> {}: {}:{} uses {}",
                    name(&pair[0]),
                    name(&pair[1]),
                    r.file,
                    r.line,
                    name(&r.to)
                ));
                covered.insert(key);
            }
            cycles.push(text);
        }
    }
    cycles
}

fn name(module: &ModPath) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

/// Modules declared under `#[cfg(test)]` (`#[cfg(test)] mod testing;` or an inline one).
fn test_only_modules(files: &[SourceFile]) -> Vec<ModPath> {
    let mut out = Vec::new();
    for file in files {
        let code = blank_comments_and_strings(&file.text);
        let tokens = tokenize(&code);
        let mut i = 0;
        while i < tokens.len() {
            if let Some(after) = test_attribute_end(&tokens, i) {
                let mut j = after;
                while j < tokens.len() && is_visibility_or_attribute(&tokens, j) {
                    j += 1;
                }
                if tokens.get(j).map(|t| t.text.as_str()) == Some("mod") {
                    if let Some(t) = tokens.get(j + 1) {
                        let mut m = file.module.clone();
                        m.push(t.text.clone());
                        out.push(m);
                    }
                }
                i = after;
            } else {
                i += 1;
            }
        }
    }
    out
}

/// Tokens that may stand between an attribute and the item's keyword: `pub`, `(crate)`.
fn is_visibility_or_attribute(tokens: &[Token], j: usize) -> bool {
    matches!(tokens[j].text.as_str(), "pub" | "(" | ")" | "crate" | "super" | "in")
}

/// If a `#[cfg(...)]` naming `test` (and not under `not(...)`) starts at `i`, the index after it.
fn test_attribute_end(tokens: &[Token], i: usize) -> Option<usize> {
    let t = |k: usize| tokens.get(k).map(|t| t.text.as_str());
    if t(i) != Some("#") || t(i + 1) != Some("[") || t(i + 2) != Some("cfg") {
        return None;
    }
    let mut depth = 0;
    let mut k = i + 1;
    let mut saw_test = false;
    let mut saw_not = false;
    while k < tokens.len() {
        match tokens[k].text.as_str() {
            "[" => depth += 1,
            "]" => {
                depth -= 1;
                if depth == 0 {
                    return (saw_test && !saw_not).then_some(k + 1);
                }
            }
            "test" => saw_test = true,
            "not" => saw_not = true,
            _ => {}
        }
        k += 1;
    }
    None
}

/// The references a file makes, with test-only items left out and paths resolved to modules.
fn references(file: &SourceFile, modules: &BTreeSet<ModPath>) -> Vec<Reference> {
    let code = blank_comments_and_strings(&file.text);
    let tokens = tokenize(&code);
    let mut out = Vec::new();
    // Inline modules (`mod embedded { .. }`): (brace depth at which they close, name).
    let mut inline: Vec<(usize, String)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        if let Some(after) = test_attribute_end(&tokens, i) {
            i = skip_item(&tokens, after);
            continue;
        }
        let text = tokens[i].text.as_str();
        match text {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(d, _)| *d == depth) {
                    inline.pop();
                }
            }
            "mod" if tokens.get(i + 2).is_some_and(|t| t.text == "{") => {
                inline.push((depth, tokens[i + 1].text.clone()));
            }
            _ => {}
        }
        let starts_path = matches!(text, "crate" | "super") && tokens.get(i + 1).is_some_and(|t| t.text == "::");
        let after_path_sep = i > 0 && tokens[i - 1].text == "::";
        if starts_path && !after_path_sep {
            let mut here = file.module.clone();
            here.extend(inline.iter().map(|(_, n)| n.clone()));
            let (paths, next) = parse_path_tree(&tokens, i, Vec::new());
            for (segments, line) in paths {
                if let Some(target) = resolve(&here, &segments, modules) {
                    out.push(Reference { from: file.module.clone(), to: target, file: file.name.clone(), line });
                }
            }
            i = next;
            continue;
        }
        i += 1;
    }
    out
}

/// Skips one item (after its attributes): to the `;` that ends it or past its `{ .. }` body.
fn skip_item(tokens: &[Token], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < tokens.len() {
        match tokens[i].text.as_str() {
            "{" | "(" | "[" => depth += 1,
            "}" | ")" | "]" => {
                depth = depth.saturating_sub(1);
                if depth == 0 && tokens[i].text == "}" {
                    return i + 1;
                }
            }
            ";" if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Parses `a::b::{c, d::{e, self}}` starting at `i`; returns each full path with its line and
/// the index after the tree.
fn parse_path_tree(tokens: &[Token], mut i: usize, prefix: Vec<String>) -> (Vec<(Vec<String>, usize)>, usize) {
    let mut segments = prefix;
    let line = tokens[i].line;
    loop {
        let Some(t) = tokens.get(i) else { return (vec![(segments, line)], i) };
        if t.text == "{" {
            let mut out = Vec::new();
            i += 1;
            while let Some(t) = tokens.get(i) {
                match t.text.as_str() {
                    "}" => return (out, i + 1),
                    "," => i += 1,
                    "self" => {
                        out.push((segments.clone(), t.line));
                        i += 1;
                    }
                    _ if is_ident(&t.text) => {
                        let (inner, next) = parse_path_tree(tokens, i, segments.clone());
                        out.extend(inner);
                        i = next;
                    }
                    _ => i += 1,
                }
            }
            return (out, i);
        }
        if !is_ident(&t.text) {
            return (vec![(segments, line)], i);
        }
        segments.push(t.text.clone());
        i += 1;
        if tokens.get(i).map(|t| t.text.as_str()) != Some("::") {
            return (vec![(segments, line)], i);
        }
        i += 1;
    }
}

/// The module a path names: the longest prefix that is a module (`crate::azure::arm::Id` →
/// `azure::arm`), after resolving `super` against the module `here`.
fn resolve(here: &ModPath, segments: &[String], modules: &BTreeSet<ModPath>) -> Option<ModPath> {
    let mut base: ModPath;
    let mut rest = segments;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base = Vec::new();
            rest = &rest[1..];
        }
        Some("super") => {
            base = here.clone();
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    for segment in rest {
        let mut next = base.clone();
        next.push(segment.clone());
        if !modules.contains(&next) {
            break;
        }
        base = next;
    }
    // An inline module is not a file: its references belong to the file's module.
    while !base.is_empty() && !modules.contains(&base) {
        base.pop();
    }
    Some(base)
}

/// The edge between the children of the lowest common ancestor, or `None` when one module
/// contains the other.
fn lift(from: &ModPath, to: &ModPath) -> Option<(ModPath, ModPath)> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    if common == from.len() || common == to.len() {
        return None;
    }
    Some((from[..=common].to_vec(), to[..=common].to_vec()))
}

/// Tarjan's strongly connected components with more than one module.
fn strongly_connected(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<BTreeSet<ModPath>> {
    struct State<'g> {
        graph: &'g BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'g ModPath, usize>,
        low: BTreeMap<&'g ModPath, usize>,
        stack: Vec<&'g ModPath>,
        on_stack: BTreeSet<&'g ModPath>,
        out: Vec<BTreeSet<ModPath>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g ModPath) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(next) = s.graph.get(v) {
            for w in next {
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// The modules after `from` on a shortest path from `from` to `to` within `component`.
fn shortest_path(
    graph: &BTreeMap<ModPath, BTreeSet<ModPath>>,
    component: &BTreeSet<ModPath>,
    from: &ModPath,
    to: &ModPath,
) -> Option<Vec<ModPath>> {
    let mut previous: BTreeMap<ModPath, ModPath> = BTreeMap::new();
    let mut queue = VecDeque::from([from.clone()]);
    let mut seen = BTreeSet::from([from.clone()]);
    while let Some(v) = queue.pop_front() {
        if &v == to {
            let mut path = vec![v.clone()];
            let mut at = v;
            while let Some(p) = previous.get(&at) {
                path.push(p.clone());
                at = p.clone();
            }
            path.reverse();
            return Some(path);
        }
        for w in graph.get(&v).into_iter().flatten().filter(|w| component.contains(*w)) {
            if seen.insert(w.clone()) {
                previous.insert(w.clone(), v.clone());
                queue.push_back(w.clone());
            }
        }
    }
    None
}

struct Token {
    text: String,
    line: usize,
}

fn is_ident(text: &str) -> bool {
    text.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Identifiers, `::` and single punctuation characters, with their line numbers.
fn tokenize(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token { text: chars[start..i].iter().collect(), line });
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push(Token { text: "::".into(), line });
            i += 2;
        } else {
            tokens.push(Token { text: c.to_string(), line });
            i += 1;
        }
    }
    tokens
}

/// The source with comments, string and character literals replaced by spaces (newlines kept,
/// so line numbers stay right): a path in a doc comment or a message is not a dependency.
fn blank_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if (c == 'r' || c == 'b') && raw_string_hashes(&chars, i).is_some() {
            let (start, hashes) = raw_string_hashes(&chars, i).expect("checked");
            for &ch in &chars[i..start] {
                out.push(blank(ch));
            }
            i = start;
            while i < chars.len() {
                if chars[i] == '"' && (0..hashes).all(|k| chars.get(i + 1 + k) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    out.push(blank(ch));
                }
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal ('x', '\n', '\''), not a lifetime ('a).
            out.push(' ');
            i += 1;
            if chars.get(i) == Some(&'\\') {
                // The escaped character may itself be a quote: '\''.
                out.push_str("  ");
                i += 2;
            }
            while i < chars.len() && chars[i] != '\'' {
                out.push(' ');
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else {
            // An identifier's tail (`for_r"`) cannot start a raw string: copy words whole.
            if c.is_alphanumeric() || c == '_' {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    out.push(chars[i]);
                    i += 1;
                }
                continue;
            }
            out.push(c);
            i += 1;
        }
    }
    out
}

/// At `r"`, `r#"`, `br"`, `br#"`: the index after the opening quote and the number of `#`.
fn raw_string_hashes(chars: &[char], i: usize) -> Option<(usize, usize)> {
    let mut k = i;
    if chars.get(k) == Some(&'b') {
        k += 1;
    }
    if chars.get(k) != Some(&'r') {
        return None;
    }
    k += 1;
    let mut hashes = 0;
    while chars.get(k) == Some(&'#') {
        hashes += 1;
        k += 1;
    }
    (chars.get(k) == Some(&'"')).then_some((k + 1, hashes))
}
