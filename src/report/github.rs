//! GitHub Actions workflow commands (`::error file=..,line=..::message`), escaped so
//! that untrusted text cannot end the command or start another.

use std::io::{self, Write};

use super::{place, Report};
use crate::codes::Severity;

fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

pub fn render(report: &Report, out: &mut impl Write) -> io::Result<()> {
    for (r, f) in report.findings_by_severity() {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "notice",
        };
        let mut props = Vec::new();
        if let Some(l) = &f.location {
            props.push(format!("file={}", escape_property(&l.file)));
            props.push(format!("line={}", l.line));
            props.push(format!("col={}", l.column));
        }
        props.push(format!("title={}", escape_property(&format!("{} {}", f.code, f.title))));
        let mut message =
            if f.location.is_some() { f.message.clone() } else { format!("{}: {}", place(r, f), f.message) };
        if !f.remedy.is_empty() {
            message.push_str("\nFix: ");
            message.push_str(&f.remedy);
        }
        writeln!(out, "::{level} {}::{}", props.join(","), escape_data(&message))?;
    }
    let c = report.counts();
    writeln!(out, "azp-preflight: {}", super::counts_phrase(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::FailOn;
    use crate::report::fixtures;

    #[test]
    fn workflow_commands_are_escaped() {
        let mut buf = Vec::new();
        render(&fixtures::report(FailOn::Error), &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("::error title=REG009 Registry credential missing or empty::registry contosoedge.azurecr.io/modules/filter (push): service"));
        assert!(lines[1].starts_with("::error file=pipes/a;b]c%25.yml,line=13,col=11,title=TSK001 Task version has a known regression::AzureIoTEdge@2 resolves to 2.241.1; 50%25 of pushes"));
        assert!(lines[2].contains("in 17 days%0Asecond line%0AFix: Rotate it."));
        assert_eq!(lines.len(), 5, "one line per finding plus the count line");
    }
}
