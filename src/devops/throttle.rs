//! How long Azure DevOps asks a client to wait, read from one response's headers, and the
//! shared pause every request of the scan honours (the rate limit is per identity, so one
//! request's "slow down" applies to all of them).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::net::http::Response;

/// The longest single wait honoured; a longer ask is capped (and the retry bound still applies).
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Below this many remaining units, wait for the window to reset before going on.
pub const LOW_REMAINING: f64 = 10.0;

/// The wait one response asks for, and whether it was a refusal (429/503) or a slow-down.
pub fn requested_wait(response: &Response, now: SystemTime) -> Option<Duration> {
    let mut wait: Option<Duration> = None;
    let mut longer = |d: Duration| wait = Some(wait.map_or(d, |w| w.max(d)));
    if matches!(response.status, 429 | 503) {
        if let Some(d) = response.header("retry-after").and_then(|v| retry_after(v, now)) {
            longer(d);
        }
    }
    if let Some(d) = response.header("x-ratelimit-delay").and_then(seconds) {
        longer(d);
    }
    let remaining = response.header("x-ratelimit-remaining").and_then(|v| v.trim().parse::<f64>().ok());
    if remaining.is_some_and(|r| r < LOW_REMAINING) {
        let until_reset = response
            .header("x-ratelimit-reset")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v > 0.0)
            .and_then(|epoch| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs_f64(epoch.min(1e11))))
            .and_then(|at| at.duration_since(now).ok());
        longer(until_reset.unwrap_or(Duration::from_secs(1)));
    }
    wait.map(|w| w.min(MAX_WAIT))
}

/// `Retry-After`: whole seconds or an HTTP date.
fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Some(d) = seconds(value) {
        return Some(d);
    }
    httpdate::parse_http_date(value.trim()).ok().map(|at| at.duration_since(now).unwrap_or_default())
}

/// Seconds, possibly fractional (`X-RateLimit-Delay: 0.25`).
fn seconds(value: &str) -> Option<Duration> {
    let s: f64 = value.trim().parse().ok()?;
    (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(MAX_WAIT.as_secs_f64())))
}

/// The pause shared by every request, and what it cost.
#[derive(Debug, Default)]
pub struct Throttle {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    until: Option<Instant>,
    waited: Duration,
    responses: u64,
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a response that asked to wait `wait`: the shared pause is extended, and only
    /// the part beyond the pause already in force counts as time throttled (the wall time,
    /// not the sum over concurrent requests).
    pub fn asked(&self, wait: Duration) {
        let now = Instant::now();
        let mut state = self.lock();
        state.responses += 1;
        let new_until = now + wait;
        let current = state.until.filter(|u| *u > now).unwrap_or(now);
        if new_until > current {
            state.waited += new_until - current;
            state.until = Some(new_until);
        }
    }

    /// When the pause in force ends, if one is.
    pub fn paused_until(&self) -> Option<Instant> {
        self.lock().until.filter(|u| *u > Instant::now())
    }

    /// Seconds throttled and the responses that asked.
    pub fn totals(&self) -> (f64, u64) {
        let state = self.lock();
        (state.waited.as_secs_f64(), state.responses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&'static str, &str)]) -> Response {
        let mut map = reqwest::header::HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, v.parse().expect("header value"));
        }
        Response {
            status,
            url: "http://127.0.0.1/".parse().expect("url"),
            headers: map,
            body: Vec::new(),
            retries: 0,
            redactor: Default::default(),
        }
    }

    #[test]
    fn waits_come_from_retry_after_delay_and_a_low_remaining_budget() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(requested_wait(&response(429, &[("retry-after", "3")]), now), Some(Duration::from_secs(3)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(5));
        assert_eq!(requested_wait(&response(503, &[("retry-after", &date)]), now), Some(Duration::from_secs(5)));
        assert_eq!(requested_wait(&response(200, &[("retry-after", "3")]), now), None, "only on 429/503");
        assert_eq!(
            requested_wait(&response(200, &[("x-ratelimit-delay", "0.25")]), now),
            Some(Duration::from_millis(250))
        );
        let low = response(200, &[("x-ratelimit-remaining", "2"), ("x-ratelimit-reset", "1000002")]);
        assert_eq!(requested_wait(&low, now), Some(Duration::from_secs(2)));
        let plenty = response(200, &[("x-ratelimit-remaining", "200"), ("x-ratelimit-reset", "1000002")]);
        assert_eq!(requested_wait(&plenty, now), None);
        assert_eq!(requested_wait(&response(429, &[("retry-after", "99999")]), now), Some(MAX_WAIT));
    }

    #[tokio::test]
    async fn overlapping_asks_count_wall_time_once() {
        let throttle = Throttle::default();
        throttle.asked(Duration::from_secs(2));
        throttle.asked(Duration::from_secs(1));
        let (seconds, responses) = throttle.totals();
        assert_eq!(responses, 2);
        assert!((1.9..2.1).contains(&seconds), "{seconds}");
        assert!(throttle.paused_until().is_some());
    }
}
