//! Exit codes, as the README states them under "On a laptop".

/// | code | meaning |
/// |---|---|
/// | 0 | no finding at or above `--fail-on` (or `--no-exit-codes`) |
/// | 1 | findings at or above `--fail-on` |
/// | 2 | bad input |
/// | 3 | could not complete (internal error) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok,
    Findings,
    BadInput,
    Internal,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Findings => 1,
            Exit::BadInput => 2,
            Exit::Internal => 3,
        }
    }
}
