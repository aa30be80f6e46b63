//! The condition language of Azure role assignments (condition version 2.0), as far as a
//! registry in ABAC repository-permissions mode needs it: a small tokenizer, a
//! recursive-descent parser and a three-valued evaluator.
//!
//! A condition limits the actions it targets: `(!(ActionMatches{'<action>'})) OR (<expr>)`
//! is true for every action it does not name, so an action the condition does not target is
//! allowed. Only the repository name (`@Request[...repositories:name]`) is known here; any
//! other attribute, operator or form makes that part "unknown", and unknown never turns into
//! an allow.

use super::rbac::{action_matches, ABAC_CONTENT_READ, ABAC_METADATA_READ};

/// The request attribute ACR sets to the repository being accessed.
pub const REPOSITORY_ATTRIBUTE: &str = "@Request[Microsoft.ContainerRegistry/registries/repositories:name]";

/// Longest condition parsed (Azure limits conditions to 8 KiB).
const MAX_LEN: usize = 8192;
const MAX_TOKENS: usize = 4096;
/// Deepest nesting of parentheses and negations.
const MAX_DEPTH: usize = 48;
/// Most values in one `{...}` set.
const MAX_SET: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Not,
    And,
    Or,
    BraceOpen,
    BraceClose,
    Comma,
    Str(String),
    /// `@Request[...]`, `@Resource[...]`, `@Principal[...]`, `@Environment[...]`.
    Attribute(String),
    /// Operators, function names and bare literals (numbers, `true`, GUIDs).
    Word(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    if text.len() > MAX_LEN {
        return Err(format!("the condition is longer than {MAX_LEN} characters"));
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if out.len() > MAX_TOKENS {
            return Err("the condition has too many parts".into());
        }
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1
            }
            ')' => {
                out.push(Token::Close);
                i += 1
            }
            '{' => {
                out.push(Token::BraceOpen);
                i += 1
            }
            '}' => {
                out.push(Token::BraceClose);
                i += 1
            }
            ',' => {
                out.push(Token::Comma);
                i += 1
            }
            '!' => {
                out.push(Token::Not);
                i += 1
            }
            '&' | '|' => {
                if chars.get(i + 1) != Some(&c) {
                    return Err(format!("a lone `{c}`"));
                }
                out.push(if c == '&' { Token::And } else { Token::Or });
                i += 2;
            }
            '\'' => {
                let start = i + 1;
                let end =
                    (start..chars.len()).find(|&j| chars[j] == '\'').ok_or("a string without its closing quote")?;
                out.push(Token::Str(chars[start..end].iter().collect()));
                i = end + 1;
            }
            '@' => {
                let end = (i..chars.len()).find(|&j| chars[j] == ']').ok_or("an attribute without its closing `]`")?;
                out.push(Token::Attribute(chars[i..=end].iter().collect()));
                i = end + 1;
            }
            c if c.is_alphanumeric() || matches!(c, '_' | ':' | '.' | '-' | '/') => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | ':' | '.' | '-' | '/'))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push(match word.to_ascii_uppercase().as_str() {
                    "AND" => Token::And,
                    "OR" => Token::Or,
                    "NOT" => Token::Not,
                    _ => Token::Word(word),
                });
            }
            other => return Err(format!("an unexpected character `{}`", other.escape_default())),
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    ActionMatches(String),
    SubOperationMatches(String),
    /// `<attribute> <operator> <value or set>`.
    Compare {
        attribute: String,
        operator: String,
        values: Vec<String>,
        set: bool,
    },
    /// A well-formed expression this evaluator has no meaning for (`Exists`, numbers, ...).
    Opaque(String),
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn expect(&mut self, want: Token, what: &str) -> Result<(), String> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            _ => Err(format!("expected {what}")),
        }
    }

    fn or(&mut self, depth: usize) -> Result<Expr, String> {
        let mut parts = vec![self.and(depth)?];
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            parts.push(self.and(depth)?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Expr::Or(parts) })
    }

    fn and(&mut self, depth: usize) -> Result<Expr, String> {
        let mut parts = vec![self.unary(depth)?];
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            parts.push(self.unary(depth)?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Expr::And(parts) })
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, String> {
        if depth > MAX_DEPTH {
            return Err(format!("the condition nests deeper than {MAX_DEPTH} levels"));
        }
        match self.next() {
            Some(Token::Not) => Ok(Expr::Not(Box::new(self.unary(depth + 1)?))),
            Some(Token::Open) => {
                let inner = self.or(depth + 1)?;
                self.expect(Token::Close, "`)`")?;
                Ok(inner)
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("ActionMatches") => {
                Ok(Expr::ActionMatches(self.braced_string()?))
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("SubOperationMatches") => {
                Ok(Expr::SubOperationMatches(self.braced_string()?))
            }
            // `Exists @Resource[...]` / `NotExists ...`: parsed, never evaluated.
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("Exists") || w.eq_ignore_ascii_case("NotExists") => {
                match self.next() {
                    Some(Token::Attribute(a)) => Ok(Expr::Opaque(format!("{w} {a}"))),
                    _ => Err(format!("expected an attribute after `{w}`")),
                }
            }
            Some(Token::Attribute(attribute)) => {
                let operator = match self.next() {
                    Some(Token::Word(op)) => op,
                    _ => return Err(format!("expected an operator after `{attribute}`")),
                };
                let (values, set) = self.operand()?;
                Ok(Expr::Compare { attribute, operator, values, set })
            }
            Some(other) => Err(format!("unexpected {other:?}")),
            None => Err("the condition ends too early".into()),
        }
    }

    fn braced_string(&mut self) -> Result<String, String> {
        self.expect(Token::BraceOpen, "`{` after ActionMatches/SubOperationMatches")?;
        let value = match self.next() {
            Some(Token::Str(s)) => s,
            _ => return Err("expected a quoted action".into()),
        };
        self.expect(Token::BraceClose, "`}`")?;
        Ok(value)
    }

    /// A value: `'text'`, `{'a', 'b'}`, another attribute or a bare literal (kept as text
    /// with a marker so it never compares equal to a repository name).
    fn operand(&mut self) -> Result<(Vec<String>, bool), String> {
        match self.next() {
            Some(Token::Str(s)) => Ok((vec![s], false)),
            Some(Token::BraceOpen) => {
                let mut values = Vec::new();
                loop {
                    match self.next() {
                        Some(Token::Str(s)) => values.push(s),
                        Some(Token::Word(w)) => values.push(format!("\u{0}{w}")),
                        _ => return Err("expected a value in `{...}`".into()),
                    }
                    if values.len() > MAX_SET {
                        return Err(format!("a value set longer than {MAX_SET}"));
                    }
                    match self.next() {
                        Some(Token::Comma) => continue,
                        Some(Token::BraceClose) => break,
                        _ => return Err("expected `,` or `}` in a value set".into()),
                    }
                }
                Ok((values, true))
            }
            Some(Token::Word(w)) => Ok((vec![format!("\u{0}{w}")], false)),
            Some(Token::Attribute(a)) => Ok((vec![format!("\u{0}{a}")], false)),
            _ => Err("expected a value".into()),
        }
    }
}

fn parse(text: &str) -> Result<Expr, String> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err("the condition is empty".into());
    }
    let mut parser = Parser { tokens, at: 0 };
    let expr = parser.or(0)?;
    if parser.at != parser.tokens.len() {
        return Err("text after the end of the condition".into());
    }
    Ok(expr)
}

/// Kleene's three-valued logic: `None` is "cannot be evaluated here".
type Tri = Option<bool>;

fn and(parts: impl Iterator<Item = Tri>) -> Tri {
    let mut unknown = false;
    for p in parts {
        match p {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    if unknown {
        None
    } else {
        Some(true)
    }
}

fn or(parts: impl Iterator<Item = Tri>) -> Tri {
    let mut unknown = false;
    for p in parts {
        match p {
            Some(true) => return Some(true),
            None => unknown = true,
            Some(false) => {}
        }
    }
    if unknown {
        None
    } else {
        Some(false)
    }
}

/// `*` any run of characters, `?` exactly one, as ABAC's `StringLike` defines them.
fn like(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// One string comparison of the repository name; `None` for operators this does not know.
fn compare(base: &str, name: &str, value: &str) -> Tri {
    if value.starts_with('\u{0}') {
        return None;
    }
    let lower = base.to_ascii_lowercase();
    let (negated, rest) = match lower.strip_prefix("stringnot") {
        Some(rest) => (true, format!("string{rest}")),
        None => (false, lower.clone()),
    };
    let (op, ignore_case) = match rest.strip_suffix("ignorecase") {
        Some(op) => (op.to_string(), true),
        None => (rest, false),
    };
    let (n, v) =
        if ignore_case { (name.to_lowercase(), value.to_lowercase()) } else { (name.to_string(), value.to_string()) };
    let hit = match op.as_str() {
        "stringequals" => n == v,
        "stringstartswith" => n.starts_with(&v),
        "stringlike" => like(&v.chars().collect::<Vec<_>>(), &n.chars().collect::<Vec<_>>()),
        _ => return None,
    };
    Some(hit != negated)
}

struct Request<'a> {
    action: &'a str,
    repository: &'a str,
}

fn eval(expr: &Expr, req: &Request) -> Tri {
    match expr {
        Expr::And(parts) => and(parts.iter().map(|p| eval(p, req))),
        Expr::Or(parts) => or(parts.iter().map(|p| eval(p, req))),
        Expr::Not(inner) => eval(inner, req).map(|b| !b),
        Expr::ActionMatches(pattern) => Some(action_matches(pattern, req.action)),
        // ACR documents no sub-operations for its data actions; what one would match is not
        // knowable here.
        Expr::SubOperationMatches(_) => None,
        Expr::Opaque(_) => None,
        Expr::Compare { attribute, operator, values, set } => {
            if !attribute.eq_ignore_ascii_case(REPOSITORY_ATTRIBUTE) {
                return None;
            }
            let name = req.repository;
            match operator.split_once(':') {
                // The repository name is single-valued: "any of any" and "all of any" ask
                // whether it matches one of the values, "any of all" and "all of all"
                // whether it matches every one.
                Some((quantifier, base)) => match quantifier.to_ascii_lowercase().as_str() {
                    "foranyofanyvalues" | "forallofanyvalues" => or(values.iter().map(|v| compare(base, name, v))),
                    "foranyofallvalues" | "forallofallvalues" => and(values.iter().map(|v| compare(base, name, v))),
                    _ => None,
                },
                None if *set => None,
                None => values.first().and_then(|v| compare(operator, name, v)),
            }
        }
    }
}

/// What a role assignment's condition says about one action on one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allows,
    Denies,
    /// The condition could not be evaluated; why.
    Unknown(String),
}

/// Evaluates `condition` for `action` on `repository`.
pub fn evaluate(condition: &str, action: &str, repository: &str) -> Verdict {
    let expr = match parse(condition) {
        Ok(e) => e,
        Err(why) => return Verdict::Unknown(format!("the condition cannot be parsed ({why})")),
    };
    match eval(&expr, &Request { action, repository }) {
        Some(true) => Verdict::Allows,
        Some(false) => Verdict::Denies,
        None => Verdict::Unknown(
            "the condition depends on an attribute, operator or sub-operation other than the repository name".into(),
        ),
    }
}

/// Whether a repository role's condition lets its holder pull `repository`: content/read
/// must be allowed; when the role also grants metadata/read and the condition refuses that,
/// the pull is not proven either way.
pub fn pull_verdict(condition: &str, repository: &str, grants_metadata: bool) -> Verdict {
    match evaluate(condition, ABAC_CONTENT_READ, repository) {
        Verdict::Allows if grants_metadata => match evaluate(condition, ABAC_METADATA_READ, repository) {
            Verdict::Allows => Verdict::Allows,
            Verdict::Denies => {
                Verdict::Unknown("the condition allows content/read but refuses metadata/read on the repository".into())
            }
            unknown => unknown,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: &str = ABAC_CONTENT_READ;
    const WRITE: &str = "Microsoft.ContainerRegistry/registries/repositories/content/write";
    const REPO: &str = "@Request[Microsoft.ContainerRegistry/registries/repositories:name]";

    fn read_only(repo_expr: &str) -> String {
        format!(
            "((!(ActionMatches{{'{READ}'}}) AND !(ActionMatches{{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'}})) OR ({repo_expr}))"
        )
    }

    #[test]
    fn the_documented_shape_allows_only_the_named_repositories() {
        let c = read_only(&format!(
            "{REPO} StringStartsWithIgnoreCase 'backend/' OR {REPO} StringEqualsIgnoreCase 'nginx'"
        ));
        assert_eq!(evaluate(&c, READ, "Backend/api"), Verdict::Allows);
        assert_eq!(evaluate(&c, READ, "nginx"), Verdict::Allows);
        assert_eq!(evaluate(&c, READ, "frontend/web"), Verdict::Denies);
    }

    #[test]
    fn negation_is_honoured() {
        // Everything except shop/web: the old extractor allowed exactly the excluded one.
        let c = read_only(&format!("!({REPO} StringEqualsIgnoreCase 'shop/web')"));
        assert_eq!(evaluate(&c, READ, "shop/web"), Verdict::Denies);
        assert_eq!(evaluate(&c, READ, "Shop/Web"), Verdict::Denies);
        assert_eq!(evaluate(&c, READ, "shop/api"), Verdict::Allows);
        let c = read_only(&format!("{REPO} StringNotEquals 'shop/web'"));
        assert_eq!(evaluate(&c, READ, "shop/web"), Verdict::Denies);
        assert_eq!(evaluate(&c, READ, "shop/api"), Verdict::Allows);
    }

    #[test]
    fn a_condition_on_other_actions_leaves_pull_alone() {
        let c = format!("(!(ActionMatches{{'{WRITE}'}})) OR ({REPO} StringEquals 'team/tools')");
        assert_eq!(evaluate(&c, READ, "shop/web"), Verdict::Allows);
        assert_eq!(evaluate(&c, WRITE, "shop/web"), Verdict::Denies);
        assert_eq!(evaluate(&c, WRITE, "team/tools"), Verdict::Allows);
        // Wildcard action patterns target pull as well.
        let c = format!(
            "!(ActionMatches{{'Microsoft.ContainerRegistry/registries/repositories/*'}}) || {REPO} StringLike 'team/*'"
        );
        assert_eq!(evaluate(&c, READ, "shop/web"), Verdict::Denies);
        assert_eq!(evaluate(&c, READ, "team/x"), Verdict::Allows);
    }

    #[test]
    fn set_operators() {
        let any = read_only(&format!("{REPO} ForAnyOfAnyValues:StringEqualsIgnoreCase {{'shop/web', 'shop/api'}}"));
        assert_eq!(evaluate(&any, READ, "SHOP/API"), Verdict::Allows);
        assert_eq!(evaluate(&any, READ, "shop/db"), Verdict::Denies);
        let all = read_only(&format!("{REPO} ForAllOfAllValues:StringStartsWith {{'shop/', 'shop/w'}}"));
        assert_eq!(evaluate(&all, READ, "shop/web"), Verdict::Allows);
        assert_eq!(evaluate(&all, READ, "shop/api"), Verdict::Denies);
        let like_case = read_only(&format!("{REPO} StringLike 'Shop/w?b'"));
        assert_eq!(evaluate(&like_case, READ, "Shop/web"), Verdict::Allows);
        assert_eq!(evaluate(&like_case, READ, "shop/web"), Verdict::Denies);
        assert_eq!(evaluate(&like_case, READ, "Shop/weeb"), Verdict::Denies);
    }

    #[test]
    fn unknown_parts_never_allow() {
        // Another attribute decides: unknown, unless the rest decides alone.
        let c = read_only("@Resource[Microsoft.ContainerRegistry/registries/repositories:tags] StringEquals 'x'");
        assert!(matches!(evaluate(&c, READ, "shop/web"), Verdict::Unknown(_)));
        let c = read_only(&format!(
            "{REPO} StringEquals 'shop/web' OR @Environment[UtcNow] DateTimeGreaterThan '2030-01-01T00:00:00.0Z'"
        ));
        assert_eq!(evaluate(&c, READ, "shop/web"), Verdict::Allows);
        assert!(matches!(evaluate(&c, READ, "shop/api"), Verdict::Unknown(_)));
        let c = read_only(&format!("{REPO} StringEquals 'a' AND @Principal[x] StringEquals 'y'"));
        assert_eq!(evaluate(&c, READ, "b"), Verdict::Denies);
        for odd in [
            read_only(&format!("{REPO} NumericEquals 5")),
            read_only(&format!("{REPO} StringEquals {{'a', 'b'}}")),
            read_only(&format!("Exists {REPO}")),
            read_only(&format!("{REPO} ForSomeValues:StringEquals {{'a'}}")),
            format!("!(ActionMatches{{'{READ}'}} AND SubOperationMatches{{'Blob.List'}}) OR {REPO} StringEquals 'a'"),
        ] {
            assert!(matches!(evaluate(&odd, READ, "shop/web"), Verdict::Unknown(_)), "{odd}");
        }
    }

    #[test]
    fn malformed_or_oversized_conditions_are_unknown() {
        let deep = format!("{}{REPO} StringEquals 'a'{}", "(".repeat(100), ")".repeat(100));
        for bad in [
            "".to_string(),
            "(".to_string(),
            format!("{REPO} StringEquals 'unterminated"),
            format!("{REPO} StringEquals 'a')"),
            format!("{REPO} StringEquals 'a' & {REPO} StringEquals 'b'"),
            format!("ActionMatches '{READ}'"),
            "@Request[unclosed StringEquals 'a'".to_string(),
            format!("{REPO} StringEquals 'a' OR"),
            deep,
            format!("{REPO} StringEquals '{}'", "x".repeat(MAX_LEN)),
        ] {
            assert!(matches!(evaluate(&bad, READ, "a"), Verdict::Unknown(_)), "{bad}");
        }
        // Keywords are case-insensitive and `&&`/`||`/`NOT` are accepted.
        let c = format!("not (ActionMatches{{'{READ}'}}) or {REPO} stringequals 'a' && {REPO} StringLike '*'");
        assert_eq!(evaluate(&c, READ, "a"), Verdict::Allows);
    }

    #[test]
    fn like_patterns() {
        let m = |p: &str, t: &str| like(&p.chars().collect::<Vec<_>>(), &t.chars().collect::<Vec<_>>());
        assert!(m("*", "") && m("a*c", "abbbc") && m("a?c", "abc") && m("*b*", "abc"));
        assert!(!m("a?c", "ac") && !m("a*d", "abc") && !m("", "a"));
    }
}
