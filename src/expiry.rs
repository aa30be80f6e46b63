//! The expiry rules every family judges credentials by (the identity check's connections,
//! the deploy check's cluster service principals): how an end date is worded, and which
//! code a date within the error or warning window earns. Pure functions of dates.

use crate::codes::Code;

/// `expiryErrorDays` and `expiryWarningDays` (validated: error ≤ warning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub error_days: u32,
    pub warning_days: u32,
}

impl Windows {
    /// IDN005 when `end` falls within the error window, IDN006 within the warning window,
    /// `None` when it lasts longer. An end already past is within both.
    pub fn code(&self, now: jiff::Timestamp, end: jiff::Timestamp) -> Option<Code> {
        let remaining = end.as_second() - now.as_second();
        let within = |days: u32| remaining <= i64::from(days) * 86_400;
        if within(self.error_days) {
            Some(Code::IDN005)
        } else if within(self.warning_days) {
            Some(Code::IDN006)
        } else {
            None
        }
    }
}

/// Whole days from `now` to `end`, rounded down (negative once past).
pub fn days_left(now: jiff::Timestamp, end: jiff::Timestamp) -> i64 {
    (end.as_second() - now.as_second()).div_euclid(86_400)
}

pub fn date(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%d").to_string()
}

/// "expires on 2026-12-09, in 17 days" / "expired on 2026-11-20, 2 days ago".
pub fn when(now: jiff::Timestamp, end: jiff::Timestamp) -> String {
    if end <= now {
        match (now.as_second() - end.as_second()).div_euclid(86_400) {
            0 => format!("expired on {} (today)", date(end)),
            1 => format!("expired on {}, 1 day ago", date(end)),
            n => format!("expired on {}, {n} days ago", date(end)),
        }
    } else {
        match days_left(now, end) {
            0 => format!("expires on {}, in less than a day", date(end)),
            1 => format!("expires on {}, in 1 day", date(end)),
            n => format!("expires on {}, in {n} days", date(end)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().expect("a test timestamp")
    }

    #[test]
    fn windows_give_idn005_then_idn006_then_nothing() {
        let windows = Windows { error_days: 7, warning_days: 30 };
        let now = at("2026-11-22T12:00:00Z");
        assert_eq!(windows.code(now, at("2026-11-20T12:00:00Z")), Some(Code::IDN005), "already past");
        assert_eq!(windows.code(now, at("2026-11-29T12:00:00Z")), Some(Code::IDN005), "exactly 7 days");
        assert_eq!(windows.code(now, at("2026-11-29T12:00:01Z")), Some(Code::IDN006));
        assert_eq!(windows.code(now, at("2026-12-22T12:00:00Z")), Some(Code::IDN006), "exactly 30 days");
        assert_eq!(windows.code(now, at("2026-12-22T12:00:01Z")), None);
        let none = Windows { error_days: 0, warning_days: 0 };
        assert_eq!(none.code(now, at("2026-11-22T12:00:01Z")), None, "0 days: only what has ended");
    }
}
