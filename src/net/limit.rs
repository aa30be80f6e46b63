//! How many connections the run has open at once: one limit for the whole run and one per
//! host, shared by the HTTP client and the registry check's own DNS/TCP/TLS probes.
//!
//! Without it every target opened its sockets at the same moment: 5,000 registry targets
//! held over 10,000 descriptors, and under the common limit of 1,024 open files the
//! failures were reported as firewall problems. Running out of descriptors is also told
//! apart from the network (`is_out_of_files`) wherever a transport error is classified.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::codes::Code;
use crate::finding::Finding;

/// Connections (requests with their body, or one probe) in flight across the run.
pub const GLOBAL_CONNECTIONS: usize = 64;
/// Connections in flight to one host (`host:port`); a registry is one host for many targets.
pub const PER_HOST_CONNECTIONS: usize = 8;

/// Why a request or probe was not started: said the same way wherever it happens.
pub fn no_slot_detail() -> String {
    format!(
        "it waited for one of the run's connection slots ({GLOBAL_CONNECTIONS} at once, {PER_HOST_CONNECTIONS} per host) \
         until this target's share of the deadline was used up, so it was never sent"
    )
}

/// The run's connection slots. Cheap to clone; clones share the slots.
#[derive(Debug, Clone)]
pub struct Limiter {
    global: Arc<Semaphore>,
    per_host: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    per_host_limit: usize,
}

/// A held slot: released when dropped.
#[derive(Debug)]
pub struct Permit {
    _global: OwnedSemaphorePermit,
    _host: OwnedSemaphorePermit,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new(GLOBAL_CONNECTIONS, PER_HOST_CONNECTIONS)
    }
}

impl Limiter {
    pub fn new(global: usize, per_host: usize) -> Self {
        Limiter {
            global: Arc::new(Semaphore::new(global.max(1))),
            per_host: Arc::new(Mutex::new(HashMap::new())),
            per_host_limit: per_host.max(1),
        }
    }

    /// Waits for a slot to `host` (and one of the run's). The wait has no limit of its own:
    /// it is part of the job's time, which the runner ends at the deadline.
    pub async fn acquire(&self, host: &str) -> Permit {
        let host_slots = {
            let mut map = self.per_host.lock().unwrap_or_else(|p| p.into_inner());
            // Forget hosts nobody holds or waits for, so the map stays as small as the work.
            if map.len() > 256 {
                map.retain(|_, s| Arc::strong_count(s) > 1);
            }
            map.entry(host.to_ascii_lowercase())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host_limit)))
                .clone()
        };
        // The host's slot first: waiting for a busy host must not hold one of the run's slots.
        // Neither semaphore is ever closed, so acquiring cannot fail; the fallback keeps the
        // types honest without a panic.
        let host = loop {
            if let Ok(p) = host_slots.clone().acquire_owned().await {
                break p;
            }
            tokio::task::yield_now().await;
        };
        let global = loop {
            if let Ok(p) = self.global.clone().acquire_owned().await {
                break p;
            }
            tokio::task::yield_now().await;
        };
        Permit { _global: global, _host: host }
    }

    /// Slots free across the run (for tests and diagnostics).
    pub fn available(&self) -> usize {
        self.global.available_permits()
    }
}

/// The key a URL's connections are counted under.
pub fn host_key(url: &url::Url) -> String {
    format!("{}:{}", url.host_str().unwrap_or(""), url.port_or_known_default().unwrap_or(0))
}

/// True when an I/O error means this process (EMFILE) or the whole machine (ENFILE) has no
/// file descriptor left: a local limit, never a fact about the network.
pub fn is_out_of_files(error: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
    }
    #[cfg(not(unix))]
    {
        // WSAEMFILE: Winsock's "too many open sockets".
        error.raw_os_error() == Some(10024)
    }
}

/// The same test on an error's text, for errors that carry the OS error only as words
/// (a resolver's message, a wrapped cause).
pub fn mentions_out_of_files(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("too many open files")
        || (cfg!(unix) && (lower.contains("(os error 24)") || lower.contains("(os error 23)")))
}

/// The finding for a target that could not be checked because this process ran out of
/// file descriptors: RUN002, with the limit to raise, never a network verdict.
pub fn out_of_files_finding(what: &str, detail: &str) -> Finding {
    let limit = soft_open_files_limit().map(|n| format!(" (the limit here is {n})")).unwrap_or_default();
    Finding::new(
        Code::RUN002,
        format!(
            "{what} could not be checked: this agent ran out of file descriptors{limit}: {}",
            crate::sanitize::sanitize(detail)
        ),
    )
    .remedy(
        "Nothing was learned about the network. Raise the open-files limit for the agent (`ulimit -n 4096` in the shell that \
         starts it, `LimitNOFILE=4096` in the agent's systemd unit, or `nofile` in /etc/security/limits.conf), or check fewer \
         targets in one run.",
    )
    .data("kind", "open-files")
}

/// The soft `RLIMIT_NOFILE`, where the platform has one.
pub fn soft_open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes into the struct passed; no other memory is touched.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        // `rlim_t` is not `u64` on every unix.
        #[allow(clippy::unnecessary_cast)]
        let current = limit.rlim_cur as u64;
        (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(current)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn never_more_than_the_global_and_per_host_limits_in_flight() {
        let limiter = Limiter::new(6, 2);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let per_host_peak = Arc::new(Mutex::new(HashMap::<String, (usize, usize)>::new()));
        let mut tasks = Vec::new();
        for i in 0..60 {
            let (limiter, in_flight, peak, hosts) =
                (limiter.clone(), in_flight.clone(), peak.clone(), per_host_peak.clone());
            tasks.push(tokio::spawn(async move {
                let host = format!("h{}", i % 5);
                let _permit = limiter.acquire(&host).await;
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                {
                    let mut h = hosts.lock().unwrap();
                    let e = h.entry(host.clone()).or_default();
                    e.0 += 1;
                    e.1 = e.1.max(e.0);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                hosts.lock().unwrap().get_mut(&host).unwrap().0 -= 1;
                in_flight.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 6, "peak {}", peak.load(Ordering::SeqCst));
        assert!(per_host_peak.lock().unwrap().values().all(|(_, p)| *p <= 2));
        assert_eq!(limiter.available(), 6, "every slot came back");
    }

    #[test]
    fn out_of_files_is_recognised_by_code_and_by_words() {
        #[cfg(unix)]
        {
            assert!(is_out_of_files(&std::io::Error::from_raw_os_error(libc::EMFILE)));
            assert!(is_out_of_files(&std::io::Error::from_raw_os_error(libc::ENFILE)));
            assert!(!is_out_of_files(&std::io::Error::from_raw_os_error(libc::ECONNREFUSED)));
            assert!(mentions_out_of_files(&std::io::Error::from_raw_os_error(libc::EMFILE).to_string()));
        }
        assert!(!mentions_out_of_files("connection refused (os error 111)"));
        let f = out_of_files_finding("GET /v2/", "Too many open files (os error 24)");
        assert_eq!(f.code, Code::RUN002);
        assert!(f.remedy.contains("ulimit -n"), "{}", f.remedy);
    }
}
