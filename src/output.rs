//! The one way out: every byte the tool prints (stdout, stderr, diagnostics, report files)
//! passes through an [`Output`], so no renderer or subcommand can forget to make untrusted
//! text safe.
//!
//! Every line written as text is cleaned before it leaves:
//! - registered secrets are replaced with `***`;
//! - control characters are dropped (a bare CR ends a line for the agent's reader, so a
//!   `\r##vso[` would otherwise start a command), as are the invisible format characters
//!   that could hide a prefix; our own colour codes (SGR sequences) are kept;
//! - under `TF_BUILD=True`, where the agent executes logging commands found anywhere in a
//!   line, `##vso[` and `##[` are broken up.
//!
//! The only way to emit a real logging command is [`Output::command`] with a
//! [`LogCommand`], whose constructors escape every property and neutralise the message.

use std::io::{self, Write};

use crate::env::AgentEnv;
// What "inert" means is defined once, in `sanitize`, for the writer and for messages alike.
use crate::sanitize::{is_invisible_format, neutralize_commands};
use crate::secret::Redactor;

/// Length of an SGR sequence (`ESC [ digits/; m`) at the start of `text`, if it is one.
fn sgr_len(text: &str) -> Option<usize> {
    let rest = text.strip_prefix("\x1b[")?;
    let params = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b';').count();
    (params <= 16 && rest.as_bytes().get(params) == Some(&b'm')).then_some(2 + params + 1)
}

/// Cleans one line (without its newline) for output.
pub fn clean_line(line: &str, pipeline: bool) -> String {
    let mut kept = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if c == '\x1b' {
            if let Some(n) = sgr_len(rest) {
                kept.push_str(&rest[..n]);
                rest = &rest[n..];
                continue;
            }
        }
        if (!c.is_control() || c == '\t') && !is_invisible_format(c) {
            kept.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    if pipeline {
        neutralize_commands(&kept)
    } else {
        kept
    }
}

/// A logging command, built only with its parts escaped. Displays as the full line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCommand {
    line: String,
    /// `task.setsecret` carries a secret on purpose: the agent must see it to mask it.
    carries_secret: bool,
}

/// Escapes a property value: `%` first, then CR, LF, `]` and `;`.
pub fn escape_property(value: &str) -> String {
    value.replace('%', "%AZP25").replace('\r', "%0D").replace('\n', "%0A").replace(']', "%5D").replace(';', "%3B")
}

/// Escapes the message part: `%` first, then CR and LF only (both parsers agree on these).
pub fn escape_message(value: &str) -> String {
    value.replace('%', "%AZP25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Text from anywhere made safe inside a command: no control character but line breaks
/// and tabs (the escaping encodes CR and LF), no command prefix.
fn inert(text: &str) -> String {
    let kept: String = text
        .chars()
        .filter(|c| (!c.is_control() || matches!(c, '\n' | '\r' | '\t')) && !is_invisible_format(*c))
        .collect();
    neutralize_commands(&kept)
}

impl LogCommand {
    /// `##vso[name k=v;...]message`. Properties with empty values are left out (the agent
    /// drops them).
    pub fn new(name: &str, properties: &[(&str, String)], message: &str) -> LogCommand {
        let props: Vec<String> = properties
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", escape_property(&inert(v))))
            .collect();
        let sep = if props.is_empty() { "" } else { " " };
        LogCommand {
            line: format!("##vso[{name}{sep}{}]{}", props.join(";"), escape_message(&inert(message))),
            carries_secret: false,
        }
    }

    /// `##vso[task.setsecret]value`: registers a value with the agent's masker.
    pub fn set_secret(value: &str) -> LogCommand {
        LogCommand { line: format!("##vso[task.setsecret]{}", escape_message(value)), carries_secret: true }
    }

    /// `##[group]title`: a collapsible section of the log.
    pub fn group(title: &str) -> LogCommand {
        LogCommand { line: format!("##[group]{}", clean_line(title, true)), carries_secret: false }
    }

    pub fn end_group() -> LogCommand {
        LogCommand { line: "##[endgroup]".into(), carries_secret: false }
    }

    pub fn as_str(&self) -> &str {
        &self.line
    }
}

impl std::fmt::Display for LogCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line)
    }
}

/// A stream of output lines. Text goes through `Write` and is cleaned line by line;
/// commands go through [`Output::command`].
pub struct Output<'a> {
    inner: &'a mut dyn Write,
    pipeline: bool,
    redactor: Redactor,
    /// Bytes of a line not yet ended by a newline.
    pending: Vec<u8>,
}

impl<'a> Output<'a> {
    /// `pipeline`: whether the agent reads this stream (`TF_BUILD=True`).
    pub fn new(inner: &'a mut dyn Write, pipeline: bool, redactor: Redactor) -> Self {
        Output { inner, pipeline, redactor, pending: Vec::new() }
    }

    /// An output for this run's environment.
    pub fn for_env(inner: &'a mut dyn Write, env: &AgentEnv, redactor: Redactor) -> Self {
        Output::new(inner, env.in_pipeline(), redactor)
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// From now on, treat this stream as read by the agent: the `azure-pipelines` format
    /// may be asked for without `TF_BUILD` (a step that clears its environment).
    pub fn read_by_agent(&mut self) {
        self.pipeline = true;
    }

    /// Writes one logging command on a line of its own.
    pub fn command(&mut self, command: &LogCommand) -> io::Result<()> {
        self.end_partial_line()?;
        let line = if command.carries_secret {
            command.line.clone()
        } else {
            // Masked like text; the redactor's `***` cannot form a prefix.
            self.redactor.redact(&command.line)
        };
        self.inner.write_all(line.as_bytes())?;
        self.inner.write_all(b"\n")
    }

    fn emit(&mut self, line: &[u8], newline: bool) -> io::Result<()> {
        let text = String::from_utf8_lossy(line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let cleaned = clean_line(&self.redactor.redact(text), self.pipeline);
        self.inner.write_all(cleaned.as_bytes())?;
        if newline {
            self.inner.write_all(b"\n")?;
        }
        Ok(())
    }

    /// A command always starts a line: end any text written without a newline.
    fn end_partial_line(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.pending);
        self.emit(&line, true)
    }
}

impl Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(at) = rest.iter().position(|b| *b == b'\n') {
            let (line, tail) = rest.split_at(at);
            if self.pending.is_empty() {
                self.emit(line, true)?;
            } else {
                let mut whole = std::mem::take(&mut self.pending);
                whole.extend_from_slice(line);
                self.emit(&whole, true)?;
            }
            rest = &tail[1..];
        }
        self.pending.extend_from_slice(rest);
        Ok(buf.len())
    }

    /// Writes out a partial last line too: the caller is done with it.
    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line, false)?;
        }
        self.inner.flush()
    }
}

impl Drop for Output<'_> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(pipeline: bool, redactor: &Redactor, write: impl FnOnce(&mut Output<'_>)) -> String {
        let mut buf = Vec::new();
        {
            let mut out = Output::new(&mut buf, pipeline, redactor.clone());
            write(&mut out);
        }
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn text_cannot_become_a_command_in_a_pipeline() {
        let r = Redactor::default();
        let text = through(true, &r, |o| {
            writeln!(o, "note ##vso[task.setvariable variable=X]v/a.yml:1:1: TSK007").unwrap();
            write!(o, "split ##").unwrap();
            write!(o, "vso[task.complete result=Succeeded]").unwrap();
            writeln!(o, " and \r##[error]after a CR, ###vso[x, #\u{200B}#vso[y").unwrap();
            write!(o, "no newline at the end ##[group]").unwrap();
        });
        assert!(!text.contains("##vso[") && !text.contains("##["), "{text}");
        assert!(!text.contains('\r'));
        assert_eq!(text.lines().count(), 3, "a CR does not start a line: {text:?}");
        assert!(text.ends_with("no newline at the end # #[group]"));
    }

    #[test]
    fn outside_a_pipeline_text_keeps_its_markers_but_loses_controls() {
        let r = Redactor::default();
        let text = through(false, &r, |o| {
            writeln!(o, "\x1b[1;31merror\x1b[0m ##vso[x] \x1b]0;title\x07 bell\x07").unwrap();
        });
        assert_eq!(text, "\x1b[1;31merror\x1b[0m ##vso[x] ]0;title bell\n");
    }

    #[test]
    fn commands_are_the_only_way_to_a_command_and_their_parts_are_escaped() {
        let r = Redactor::default();
        r.register("hunter2-canary");
        let text = through(true, &r, |o| {
            write!(o, "partial").unwrap();
            o.command(&LogCommand::set_secret("hunter2-canary")).unwrap();
            o.command(&LogCommand::new(
                "task.logissue",
                &[("type", "error".into()), ("sourcepath", "##vso[a];b\r\n.yml".into())],
                "leak hunter2-canary ##vso[task.complete]",
            ))
            .unwrap();
            o.command(&LogCommand::group("targets ##[x]")).unwrap();
            o.command(&LogCommand::end_group()).unwrap();
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "partial",
                "##vso[task.setsecret]hunter2-canary",
                "##vso[task.logissue type=error;sourcepath=# #vso[a%5D%3Bb%0D%0A.yml]leak *** # #vso[task.complete]",
                "##[group]targets # #[x]",
                "##[endgroup]",
            ]
        );
    }

    #[test]
    fn secrets_are_masked_in_text() {
        let r = Redactor::default();
        r.register("hunter2-canary");
        let text = through(false, &r, |o| writeln!(o, "x hunter2-canary y").unwrap());
        assert_eq!(text, "x *** y\n");
    }

    #[test]
    fn neutralising_is_stable_for_runs_of_hashes() {
        for s in ["####vso[x", "###[x", "#####[x", "##vso[##[", "a##vso[b"] {
            let n = neutralize_commands(s);
            assert!(!n.contains("##vso[") && !n.contains("##["), "{s} -> {n}");
        }
    }
}
