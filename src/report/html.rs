use std::io::{self, Write};

use super::Report;

pub fn render(_report: &Report, _out: &mut impl Write) -> io::Result<()> {
    Ok(())
}
