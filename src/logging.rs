//! Diagnostics on stderr (`AZP_PREFLIGHT_LOG` or `RUST_LOG`, default `warn`), passed
//! through the redactor like every other output.

use std::io::{self, Write};

use crate::env::AgentEnv;
use crate::output::Output;
use crate::secret::Redactor;

/// One diagnostic event: the subscriber writes each event whole, then drops the writer, so
/// the event is cleaned and redacted as a unit by the same [`Output`] as everything else.
struct DiagnosticWriter {
    redactor: Redactor,
    pipeline: bool,
}

impl Write for DiagnosticWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut stderr = io::stderr().lock();
        let mut out = Output::new(&mut stderr, self.pipeline, self.redactor.clone());
        out.write_all(buf)?;
        out.flush()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

pub fn init(env: &AgentEnv, redactor: Redactor) {
    let pipeline = env.in_pipeline();
    let filter = env.get("AZP_PREFLIGHT_LOG").or_else(|| env.get("RUST_LOG")).unwrap_or("warn");
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_writer(move || DiagnosticWriter { redactor: redactor.clone(), pipeline })
        .try_init();
}
