//! A fast reader for the YAML nearly every pipeline is written in: block mappings and
//! sequences, one-line plain and quoted scalars, literal and folded block scalars, one-line
//! flow sequences of scalars, empty flow mappings, comments.
//!
//! The general parser spends most of a large scan building a string for every scalar, one
//! character at a time. This reader works a line at a time on bytes and borrows every value
//! it can from the text. For every file it reads to the end, it produces exactly the events the
//! general parser would, with the same positions (`block_tests.rs` and the `pipeline_yaml` fuzz
//! targets compare the two). At the first thing outside its subset — other flow collections,
//! anchors, aliases, tags, complex keys, multi-line plain or quoted scalars, tabs outside
//! quotes, document markers after the first line, explicit block indentation, or anything the
//! general parser might reject — it gives up with `Unsupported`, and the caller reads the file
//! again with the general parser, which also names the line of a syntax error.

use std::borrow::Cow;

use saphyr_parser::ScalarStyle;

use crate::walk::Event;
use crate::Lines;

/// The file goes beyond what this reader reads: read it with the general parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unsupported;

type Result<T> = std::result::Result<T, Unsupported>;

/// An implicit key whose colon is more than this many characters past its start is an error
/// for the general parser.
const MAX_KEY: usize = 1024;

/// Sequences opened on one line (`- - - x`), each one a call deeper: more is left to the
/// general parser, which does not recurse.
const MAX_ENTRIES_ON_A_LINE: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Map(usize),
    Seq(usize),
    /// A sequence whose `-` sit in the column of the mapping key that holds it.
    Indentless(usize),
}

impl Open {
    fn col(self) -> usize {
        match self {
            Open::Map(c) | Open::Seq(c) | Open::Indentless(c) => c,
        }
    }
}

/// A key as found on its line: its value, its style and the byte of its colon.
type Key<'a> = (Cow<'a, str>, ScalarStyle, usize);

/// What ends a plain scalar on its line.
enum PlainEnd {
    /// `: ` or `:` at the end of the line, at this byte: the scalar is a key.
    Colon(usize),
    /// ` #` or the end of the line.
    Line,
}

pub(crate) fn read<'a, E: FnMut(Event<'a>)>(text: &'a str, lines: &Lines<'a>, emit: &mut E) -> Result<()> {
    // A NUL ends the general parser's input and a byte order mark has rules of its own.
    if text.as_bytes().contains(&0) || text.contains('\u{FEFF}') {
        return Err(Unsupported);
    }
    let mut reader = Reader {
        text,
        starts: &lines.starts[..],
        ascii: lines.ascii,
        open: Vec::new(),
        pending: None,
        after_scalar: false,
        root_started: false,
        entries_on_line: 0,
        emit,
    };
    reader.run()
}

struct Reader<'a, 'l, 'e, E> {
    text: &'a str,
    starts: &'l [usize],
    ascii: bool,
    open: Vec<Open>,
    /// A `key:` or `-` whose value has not started yet, and where the parser places the empty
    /// value if none comes: at the colon, or at the end of the `-` line.
    pending: Option<(usize, usize)>,
    /// A scalar ended the last content line: a deeper line next would continue it.
    after_scalar: bool,
    root_started: bool,
    /// Sequence entries opened so far on the current line.
    entries_on_line: usize,
    emit: &'e mut E,
}

impl<'a, E: FnMut(Event<'a>)> Reader<'a, '_, '_, E> {
    /// The text of a 0-based line without its line break; a lone carriage return (a line break
    /// of its own for the general parser) is not read here.
    fn line(&self, i: usize) -> Result<&'a str> {
        let start = self.starts[i];
        let end = self.starts.get(i + 1).copied().unwrap_or(self.text.len());
        let raw = &self.text[start..end];
        let line = match raw.strip_suffix('\n') {
            Some(l) => l.strip_suffix('\r').unwrap_or(l),
            None if raw.ends_with('\r') => return Err(Unsupported),
            None => raw,
        };
        Ok(line)
    }

    /// The column (in characters) of a byte offset within line `i`.
    fn col(&self, line: &str, byte: usize) -> usize {
        if self.ascii {
            byte
        } else {
            line[..byte].chars().count()
        }
    }

    fn run(&mut self) -> Result<()> {
        let n = self.starts.len();
        let mut i = 0;
        let mut first_content = true;
        let mut explicit_start = false;
        while i < n {
            let line = self.line(i)?;
            let indent = leading_spaces(line.as_bytes());
            let rest = &line[indent..];
            if rest.starts_with('\t') {
                return Err(Unsupported);
            }
            if rest.is_empty() || rest.starts_with('#') {
                i += 1;
                continue;
            }
            if indent == 0 && (rest.starts_with("---") || rest.starts_with("...")) {
                // An explicit start of the one document, alone on the first line, is read.
                let after = rest[3..].trim_start_matches(' ');
                if first_content && rest.starts_with("---") && (after.is_empty() || after.starts_with('#')) {
                    first_content = false;
                    explicit_start = true;
                    i += 1;
                    continue;
                }
                return Err(Unsupported);
            }
            first_content = false;
            i = self.content_line(i, line, indent)?;
        }
        // A document that is started and left empty holds an empty value.
        if explicit_start && !self.root_started {
            return Err(Unsupported);
        }
        self.end_of_text()
    }

    fn content_line(&mut self, i: usize, line: &'a str, indent: usize) -> Result<usize> {
        let innermost = self.open.last().map(|o| o.col());
        if self.after_scalar && innermost.is_some_and(|c| indent > c) {
            return Err(Unsupported);
        }
        self.after_scalar = false;
        self.entries_on_line = 0;
        let rest = &line[indent..];
        let entry = is_entry(rest)?;
        while let Some(&top) = self.open.last() {
            let closes = top.col() > indent || (matches!(top, Open::Indentless(c) if c == indent) && !entry);
            if !closes {
                break;
            }
            self.settle_pending();
            (self.emit)(Event::End);
            self.open.pop();
        }
        match self.open.last().copied() {
            None => {
                if self.root_started {
                    return Err(Unsupported);
                }
                self.root_started = true;
                self.node(i, line, indent, Context::Root)
            }
            Some(top) if self.pending.is_some() && indent > top.col() => {
                self.pending = None;
                self.node(i, line, indent, Context::Block)
            }
            Some(Open::Map(c)) if c == indent && entry && self.pending.is_some() => {
                self.pending = None;
                (self.emit)(Event::SequenceStart);
                self.open.push(Open::Indentless(c));
                self.entry(i, line, indent)
            }
            Some(Open::Map(c)) if c == indent && !entry => {
                self.settle_pending();
                self.map_entry(i, line, indent)
            }
            Some(Open::Seq(c) | Open::Indentless(c)) if c == indent && entry => {
                self.settle_pending();
                self.entry(i, line, indent)
            }
            _ => Err(Unsupported),
        }
    }

    /// A `key:` or `-` with nothing after it holds an empty value.
    fn settle_pending(&mut self) {
        if let Some((line, col)) = self.pending.take() {
            (self.emit)(Event::Scalar { value: Cow::Borrowed(""), style: ScalarStyle::Plain, line, col });
        }
    }

    /// A node that starts at byte `at` of line `i` (its first character), as the value of
    /// whatever holds it.
    fn node(&mut self, i: usize, line: &'a str, at: usize, context: Context) -> Result<usize> {
        let rest = &line[at..];
        if is_entry(rest)? {
            if context == Context::MapValue {
                return Err(Unsupported);
            }
            (self.emit)(Event::SequenceStart);
            self.open.push(Open::Seq(self.col(line, at)));
            return self.entry(i, line, at);
        }
        if context == Context::MapValue || rest.starts_with(['[', '{']) {
            // `a: b: c` is not YAML; anything keyed here is left to the general parser.
            return self.value(i, line, at);
        }
        if let Some(key) = self.key_at(line, at)? {
            let col = self.col(line, at);
            (self.emit)(Event::MappingStart { line: i + 1, col });
            self.open.push(Open::Map(col));
            return self.keyed(i, line, at, key);
        }
        if context == Context::Root {
            return Err(Unsupported);
        }
        self.value(i, line, at)
    }

    /// `- ` at byte `at`: the item's node follows on this line, or on a deeper line.
    fn entry(&mut self, i: usize, line: &'a str, at: usize) -> Result<usize> {
        self.entries_on_line += 1;
        if self.entries_on_line > MAX_ENTRIES_ON_A_LINE {
            return Err(Unsupported);
        }
        let after = at + 1;
        let content = after + leading_spaces(&line.as_bytes()[after..]);
        match line.as_bytes().get(content) {
            None | Some(b'#') => {
                self.pending = Some((i + 1, self.col(line, line.len())));
                Ok(i + 1)
            }
            Some(b'\t') => Err(Unsupported),
            Some(_) => self.node(i, line, content, Context::Block),
        }
    }

    /// `key: value` at byte `at`, in the mapping that starts in this column.
    fn map_entry(&mut self, i: usize, line: &'a str, at: usize) -> Result<usize> {
        let key = self.key_at(line, at)?.ok_or(Unsupported)?;
        self.keyed(i, line, at, key)
    }

    /// The rest of a mapping entry whose key, found at byte `at`, is `key`.
    fn keyed(&mut self, i: usize, line: &'a str, at: usize, (key, style, colon): Key<'a>) -> Result<usize> {
        let col = self.col(line, at);
        (self.emit)(Event::Scalar { value: key, style, line: i + 1, col });
        let after = colon + 1;
        let content = after + leading_spaces(&line.as_bytes()[after..]);
        match line.as_bytes().get(content) {
            None | Some(b'#') => {
                self.pending = Some((i + 1, self.col(line, colon)));
                Ok(i + 1)
            }
            Some(b'\t') => Err(Unsupported),
            Some(_) => self.node(i, line, content, Context::MapValue),
        }
    }

    /// The key at byte `at` when the line holds `key:` there: its value, style, and the byte of
    /// its colon.
    fn key_at(&self, line: &'a str, at: usize) -> Result<Option<Key<'a>>> {
        let rest = &line[at..];
        let key = match rest.as_bytes()[0] {
            b'\'' | b'"' => {
                let (value, style, close) = quoted(line, at)?;
                after_quoted(line, close)?.map(|colon| (value, style, colon))
            }
            _ => {
                plain_start(rest)?;
                match plain_end(line, at)? {
                    (PlainEnd::Colon(colon), end) => Some((Cow::Borrowed(&line[at..end]), ScalarStyle::Plain, colon)),
                    (PlainEnd::Line, _) => None,
                }
            }
        };
        // The parser measures a key from its first character (a quote included) to its colon,
        // in characters; bytes are at least as many, so a key it rejects is never read here.
        if key.as_ref().is_some_and(|&(_, _, colon)| colon - at > MAX_KEY) {
            return Err(Unsupported);
        }
        Ok(key)
    }

    /// A scalar value at byte `at` that is not a key: plain, quoted or a block scalar.
    fn value(&mut self, i: usize, line: &'a str, at: usize) -> Result<usize> {
        let col = self.col(line, at);
        let (value, style) = match line.as_bytes()[at] {
            b'|' | b'>' => return self.block_scalar(i, line, at),
            b'[' | b'{' => {
                self.flow(i, line, at)?;
                self.after_scalar = true;
                return Ok(i + 1);
            }
            b'\'' | b'"' => {
                let (value, style, close) = quoted(line, at)?;
                if after_quoted(line, close)?.is_some() {
                    return Err(Unsupported);
                }
                (value, style)
            }
            _ => {
                plain_start(&line[at..])?;
                match plain_end(line, at)? {
                    (PlainEnd::Line, end) => (Cow::Borrowed(&line[at..end]), ScalarStyle::Plain),
                    (PlainEnd::Colon(_), _) => return Err(Unsupported),
                }
            }
        };
        (self.emit)(Event::Scalar { value, style, line: i + 1, col });
        self.after_scalar = true;
        Ok(i + 1)
    }

    /// A flow collection on one line: a sequence of plain or quoted scalars (`[]`, `[a, 'b']`),
    /// or an empty mapping (`{}`); the rest of the line holds at most a comment.
    fn flow(&mut self, i: usize, line: &'a str, at: usize) -> Result<()> {
        let b = line.as_bytes();
        let ascii = self.ascii;
        let col = |k: usize| if ascii { k } else { line[..k].chars().count() };
        let spaces = |k: usize| k + leading_spaces(&line.as_bytes()[k..]);
        let mut k;
        if b[at] == b'{' {
            k = spaces(at + 1);
            if b.get(k) != Some(&b'}') {
                return Err(Unsupported);
            }
            (self.emit)(Event::MappingStart { line: i + 1, col: col(at) });
            (self.emit)(Event::End);
        } else {
            (self.emit)(Event::SequenceStart);
            k = spaces(at + 1);
            while b.get(k) != Some(&b']') {
                let (value, style, end) = match b.get(k) {
                    Some(b'\'' | b'"') => quoted(line, k)?,
                    Some(_) => {
                        let end = flow_plain_end(line, k)?;
                        (Cow::Borrowed(line[k..end].trim_end_matches(' ')), ScalarStyle::Plain, end)
                    }
                    None => return Err(Unsupported),
                };
                (self.emit)(Event::Scalar { value, style, line: i + 1, col: col(k) });
                k = spaces(end);
                match b.get(k) {
                    Some(b',') => k = spaces(k + 1),
                    Some(b']') => {}
                    _ => return Err(Unsupported),
                }
            }
            (self.emit)(Event::End);
        }
        let after = &line[k + 1..];
        let comment = after.trim_start_matches(' ');
        if comment.is_empty() || (comment.len() < after.len() && comment.starts_with('#')) {
            Ok(())
        } else {
            Err(Unsupported)
        }
    }

    /// `|` or `>` at byte `at` of line `i`, its content on the lines after: the value, and
    /// the line where the next content starts.
    fn block_scalar(&mut self, i: usize, line: &'a str, at: usize) -> Result<usize> {
        let folded = line.as_bytes()[at] == b'>';
        let mut header = &line[at + 1..];
        let strip = header.starts_with('-');
        if strip {
            header = &header[1..];
        }
        // Keep chomping and explicit indentation are left to the general parser.
        let comment = header.trim_start_matches(' ');
        let spaced = comment.len() < header.len();
        if !(comment.is_empty() || (spaced && comment.starts_with('#'))) {
            return Err(Unsupported);
        }
        let parent = self.open.last().map(|o| o.col()).ok_or(Unsupported)?;
        let n = self.starts.len();
        // The content's indentation is that of its first non-empty line.
        let mut indent = None;
        let mut leading_blank = 0;
        let mut j = i + 1;
        while j < n {
            let l = self.line(j)?;
            let spaces = leading_spaces(l.as_bytes());
            if spaces == l.len() {
                leading_blank = leading_blank.max(spaces);
                j += 1;
                continue;
            }
            if spaces > parent {
                indent = Some(spaces);
            }
            break;
        }
        // No content, or blank lines deeper than the content: the general parser decides.
        let indent = indent.filter(|&d| leading_blank <= d).ok_or(Unsupported)?;
        let mut value = String::new();
        let mut first_content = None;
        let mut blanks = 0usize;
        let mut any = false;
        let mut j = i + 1;
        while j < n {
            let l = self.line(j)?;
            let spaces = leading_spaces(l.as_bytes());
            if spaces == l.len() {
                // Whitespace beyond the indentation on a blank line is content of its own.
                if spaces > indent {
                    return Err(Unsupported);
                }
                blanks += 1;
                j += 1;
                continue;
            }
            if spaces < indent {
                break;
            }
            let content = &l[indent..];
            if folded {
                if content.starts_with([' ', '\t']) {
                    return Err(Unsupported);
                }
                if any && blanks == 0 {
                    value.push(' ');
                }
                for _ in 0..blanks {
                    value.push('\n');
                }
            } else {
                if any {
                    value.push('\n');
                }
                for _ in 0..blanks {
                    value.push('\n');
                }
            }
            value.push_str(content);
            first_content.get_or_insert(j);
            any = true;
            blanks = 0;
            j += 1;
        }
        // Up to the end of a text without a final line break, the parser's chomping differs.
        if j >= n && !self.text.ends_with('\n') {
            return Err(Unsupported);
        }
        if !strip {
            value.push('\n');
        }
        // The parser places a block scalar where its content starts.
        let first = first_content.ok_or(Unsupported)?;
        let col = self.col(self.line(first)?, indent);
        let style = if folded { ScalarStyle::Folded } else { ScalarStyle::Literal };
        (self.emit)(Event::Scalar { value: Cow::Owned(value), style, line: first + 1, col });
        self.after_scalar = true;
        Ok(j)
    }

    /// Settles what is still open at the end of the text.
    fn end_of_text(&mut self) -> Result<()> {
        while self.open.pop().is_some() {
            self.settle_pending();
            (self.emit)(Event::End);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// The document's first node.
    Root,
    /// A sequence item, or a value on a line of its own.
    Block,
    /// A value after `key:` on the same line.
    MapValue,
}

/// How many spaces `bytes` starts with. A deep pipeline's lines start with a dozen or so, so
/// they are counted eight bytes at a time: the first byte that is not a space is the lowest
/// non-zero byte of the word XOR eight spaces.
fn leading_spaces(bytes: &[u8]) -> usize {
    let mut n = 0;
    while let Some(word) = bytes.get(n..n + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        let differs = u64::from_le_bytes(word) ^ u64::from_le_bytes([b' '; 8]);
        if differs != 0 {
            return n + (differs.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + bytes[n..].iter().take_while(|&&b| b == b' ').count()
}

/// Whether the text starts a sequence entry (`-` then a space or the end of the line).
fn is_entry(rest: &str) -> Result<bool> {
    match rest.as_bytes() {
        [b'-'] | [b'-', b' ', ..] => Ok(true),
        [b'-', b'\t', ..] => Err(Unsupported),
        _ => Ok(false),
    }
}

/// A plain scalar may start here (no indicator the general parser reads otherwise).
fn plain_start(rest: &str) -> Result<()> {
    let b = rest.as_bytes();
    match b[0] {
        b'?' | b':' | b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"'
        | b'%' | b'@' | b'`' | b'\t' => Err(Unsupported),
        b'-' if matches!(b.get(1), None | Some(b' ' | b'\t')) => Err(Unsupported),
        _ => Ok(()),
    }
}

/// Where the plain scalar starting at byte `at` ends on its line: at a key's colon, or at a
/// comment or the end of the line; with the byte where its value ends (trailing spaces out).
fn plain_end(line: &str, at: usize) -> Result<(PlainEnd, usize)> {
    let b = line.as_bytes();
    let mut k = at;
    // Only a colon, a `#` or a tab can end the scalar or send the line to the general parser:
    // skip every other byte with one test.
    let (how, stop) = loop {
        while k < b.len() && !STOPS_PLAIN[b[k] as usize] {
            k += 1;
        }
        let Some(&byte) = b.get(k) else { break (PlainEnd::Line, b.len()) };
        match byte {
            b'\t' => return Err(Unsupported),
            b':' => match b.get(k + 1) {
                None | Some(b' ') => break (PlainEnd::Colon(k), k),
                Some(b'\t') => return Err(Unsupported),
                Some(_) => {}
            },
            // A `#` after a space starts a comment (`plain_start` keeps one out of the first byte).
            _ if k > at && b[k - 1] == b' ' => break (PlainEnd::Line, k - 1),
            _ => {}
        }
        k += 1;
    };
    let trimmed = at + line[at..stop].trim_end_matches(' ').len();
    Ok((how, trimmed))
}

/// The bytes `plain_end` stops at: `:`, `#` and tab.
static STOPS_PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    table[b':' as usize] = true;
    table[b'#' as usize] = true;
    table[b'\t' as usize] = true;
    table
};

/// Where a plain scalar inside a one-line flow sequence ends: before `,` or `]` (trailing
/// spaces included); nested collections, keys and comments are left to the general parser.
fn flow_plain_end(line: &str, at: usize) -> Result<usize> {
    let b = line.as_bytes();
    match b[at] {
        b'?' | b':' | b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'%' | b'@'
        | b'`' | b'\t' => return Err(Unsupported),
        b'-' if matches!(b.get(at + 1), None | Some(b' ' | b'\t' | b',' | b']')) => return Err(Unsupported),
        _ => {}
    }
    let mut k = at;
    loop {
        match b.get(k) {
            None | Some(b'\t' | b'[' | b'{' | b'}') => return Err(Unsupported),
            Some(b',' | b']') => return Ok(k),
            Some(b':') if matches!(b.get(k + 1), None | Some(b' ' | b'\t' | b',' | b']' | b'[' | b'{' | b'}')) => {
                return Err(Unsupported)
            }
            Some(b' ') if b.get(k + 1) == Some(&b'#') => return Err(Unsupported),
            Some(_) => k += 1,
        }
    }
}

/// A quoted scalar that opens at byte `at` and closes on the same line: its value, style and
/// the byte after the closing quote.
fn quoted(line: &str, at: usize) -> Result<(Cow<'_, str>, ScalarStyle, usize)> {
    let b = line.as_bytes();
    if b[at] == b'\'' {
        let mut k = at + 1;
        let mut doubled = false;
        loop {
            match b.get(k) {
                None => return Err(Unsupported),
                Some(b'\'') if b.get(k + 1) == Some(&b'\'') => {
                    doubled = true;
                    k += 2;
                }
                Some(b'\'') => break,
                Some(_) => k += 1,
            }
        }
        let inner = &line[at + 1..k];
        let value = if doubled { Cow::Owned(inner.replace("''", "'")) } else { Cow::Borrowed(inner) };
        return Ok((value, ScalarStyle::SingleQuoted, k + 1));
    }
    let mut k = at + 1;
    let mut escaped = false;
    loop {
        match b.get(k) {
            None => return Err(Unsupported),
            Some(b'\\') => {
                escaped = true;
                k += 2;
            }
            Some(b'"') => break,
            Some(_) => k += 1,
        }
    }
    let inner = line.get(at + 1..k).ok_or(Unsupported)?;
    let value = if escaped { Cow::Owned(unescape(inner)?) } else { Cow::Borrowed(inner) };
    Ok((value, ScalarStyle::DoubleQuoted, k + 1))
}

/// A double-quoted scalar's escapes, as YAML defines them.
fn unescape(inner: &str) -> Result<String> {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escape = chars.next().ok_or(Unsupported)?;
        let hex = |n: usize, chars: &mut std::str::Chars<'_>| -> Result<char> {
            let digits: String = chars.take(n).collect();
            if digits.len() != n {
                return Err(Unsupported);
            }
            u32::from_str_radix(&digits, 16).ok().and_then(char::from_u32).ok_or(Unsupported)
        };
        out.push(match escape {
            '0' => '\0',
            'a' => '\x07',
            'b' => '\x08',
            't' | '\t' => '\t',
            'n' => '\n',
            'v' => '\x0b',
            'f' => '\x0c',
            'r' => '\r',
            'e' => '\x1b',
            ' ' => ' ',
            '"' => '"',
            '/' => '/',
            '\\' => '\\',
            'N' => '\u{85}',
            '_' => '\u{a0}',
            'L' => '\u{2028}',
            'P' => '\u{2029}',
            'x' => hex(2, &mut chars)?,
            'u' => hex(4, &mut chars)?,
            'U' => hex(8, &mut chars)?,
            _ => return Err(Unsupported),
        });
    }
    Ok(out)
}

/// After a quoted scalar closes at byte `close`: `Some(colon)` when it is a key, `None` when
/// the line ends (or a comment starts); anything else is left to the general parser.
fn after_quoted(line: &str, close: usize) -> Result<Option<usize>> {
    let rest = &line[close..];
    let trimmed = rest.trim_start_matches(' ');
    let spaced = trimmed.len() < rest.len();
    let colon = close + (rest.len() - trimmed.len());
    match trimmed.as_bytes() {
        [] => Ok(None),
        [b'#', ..] if spaced => Ok(None),
        [b':'] | [b':', b' ', ..] => Ok(Some(colon)),
        _ => Err(Unsupported),
    }
}

#[cfg(test)]
#[path = "block_tests.rs"]
mod tests;
