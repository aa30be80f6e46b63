//! Diagnostics on stderr (`AZP_PREFLIGHT_LOG` or `RUST_LOG`, default `warn`), passed
//! through the redactor like every other output.

use std::io::{self, Write};

use crate::env::AgentEnv;
use crate::secret::Redactor;

struct RedactingStderr(Redactor);

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = self.0.redact(&String::from_utf8_lossy(buf));
        io::stderr().write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

pub fn init(env: &AgentEnv, redactor: Redactor) {
    let filter = env.get("AZP_PREFLIGHT_LOG").or_else(|| env.get("RUST_LOG")).unwrap_or("warn");
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_writer(move || RedactingStderr(redactor.clone()))
        .try_init();
}
