//! Runs a Docker credential helper with every answer bounded: what it prints is capped, the
//! time it gets is capped, and on either it is killed with everything it started.
//!
//! A helper is an outside program: one that floods stdout used to make the run collect it
//! all (a 4 GiB allocation aborted the process), and one that never exits held the job
//! until the run deadline.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// What one helper run may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest stdout read; a credential answer is a few KiB of JSON.
    pub stdout_bytes: usize,
    /// Largest stderr read (only an excerpt is ever shown).
    pub stderr_bytes: usize,
    /// How long the helper gets from start to exit.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { stdout_bytes: 1 << 20, stderr_bytes: 64 << 10, time: Duration::from_secs(5) }
    }
}

#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug)]
pub enum Failure {
    /// The program could not be started (not installed, not executable).
    Spawn(std::io::Error),
    /// It did not exit within the time limit.
    Timeout(Duration),
    /// It printed more than the cap on `stream` (`stdout` or `stderr`).
    Flood {
        stream: &'static str,
        limit: usize,
    },
    Io(std::io::Error),
}

/// Starts `command` (stdio is set here), writes `input` to its stdin and collects its
/// output within `limits`. On a flood or a timeout the helper and its children are killed.
pub async fn run(mut command: Command, input: &[u8], limits: Limits) -> Result<Output, Failure> {
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    // Its own process group, so a kill also reaches what a shell-script helper started.
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command.spawn().map_err(Failure::Spawn)?;
    // If the job is cancelled at the run deadline this future is dropped mid-way: the
    // guard still takes the whole group down (kill_on_drop alone reaches only the helper).
    let mut guard = GroupGuard(child.id());
    let result = tokio::time::timeout(limits.time, collect(&mut child, input, limits)).await;
    match result {
        Ok(Ok(output)) => {
            guard.0 = None;
            Ok(output)
        }
        Ok(Err(failure)) => {
            kill(&mut child).await;
            guard.0 = None;
            Err(failure)
        }
        Err(_) => {
            kill(&mut child).await;
            guard.0 = None;
            Err(Failure::Timeout(limits.time))
        }
    }
}

async fn collect(child: &mut Child, input: &[u8], limits: Limits) -> Result<Output, Failure> {
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its stdin is its own business: its answer decides.
        let _ = stdin.write_all(input).await;
        drop(stdin);
    }
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(Failure::Io(std::io::Error::other("the helper's output pipes were not set up")));
    };
    let (stdout, stderr) = tokio::try_join!(
        read_capped(stdout, limits.stdout_bytes, "stdout"),
        read_capped(stderr, limits.stderr_bytes, "stderr"),
    )?;
    let status = child.wait().await.map_err(Failure::Io)?;
    Ok(Output { status, stdout, stderr })
}

/// Reads to the end, failing as soon as more than `limit` bytes arrive.
async fn read_capped(stream: impl AsyncRead + Unpin, limit: usize, name: &'static str) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    stream.take(cap).read_to_end(&mut buf).await.map_err(Failure::Io)?;
    if buf.len() > limit {
        return Err(Failure::Flood { stream: name, limit });
    }
    Ok(buf)
}

/// Kills the helper's process group when dropped while armed.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            kill_group(pid);
        }
    }
}

/// SIGKILL to the process group the helper leads (set by `process_group(0)`).
fn kill_group(pid: u32) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}

/// Kills the helper's process group (or the helper alone elsewhere) and reaps it.
async fn kill(child: &mut Child) {
    if let Some(pid) = child.id() {
        kill_group(pid);
    }
    let _ = child.start_kill();
    // Reaping is quick once the signal landed; never let it hold the job.
    let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    fn limits() -> Limits {
        Limits { stdout_bytes: 1024, stderr_bytes: 256, time: Duration::from_millis(1500) }
    }

    #[tokio::test]
    async fn collects_a_normal_answer_and_its_input_reaches_stdin() {
        let out = run(sh("read key; printf '{\"Username\":\"%s\"}' \"$key\"; echo oops >&2"), b"r.example\n", limits())
            .await
            .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, br#"{"Username":"r.example"}"#);
        assert_eq!(out.stderr, b"oops\n");
    }

    #[tokio::test]
    async fn a_flood_on_either_stream_is_cut_at_the_cap_and_the_helper_killed() {
        let started = Instant::now();
        let err = run(sh("head -c 100000000 /dev/zero"), b"", limits()).await.unwrap_err();
        assert!(matches!(err, Failure::Flood { stream: "stdout", limit: 1024 }), "{err:?}");
        let err = run(sh("while :; do echo noise >&2; done"), b"", limits()).await.unwrap_err();
        assert!(matches!(err, Failure::Flood { stream: "stderr", limit: 256 }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    /// A helper that starts `sleep 60` and waits for it; gives the script and the pid file.
    fn hanging_helper(dir: &std::path::Path) -> (Command, std::path::PathBuf) {
        let pid_file = dir.join("child.pid");
        (sh(&format!("sleep 60 & echo $! > {}; wait", pid_file.display())), pid_file)
    }

    #[tokio::test]
    async fn a_helper_that_never_exits_is_killed_with_its_children_at_the_time_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (command, pid_file) = hanging_helper(dir.path());
        let started = Instant::now();
        let err = run(command, b"", limits()).await.unwrap_err();
        assert!(matches!(err, Failure::Timeout(_)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_gone(&pid_file).await;
    }

    #[tokio::test]
    async fn a_helper_cancelled_with_its_job_takes_its_children_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let (command, pid_file) = hanging_helper(dir.path());
        // The runner drops a job at the run deadline: here, well before the helper's own limit.
        let cancelled = tokio::time::timeout(Duration::from_millis(500), run(command, b"", limits())).await;
        assert!(cancelled.is_err());
        assert_gone(&pid_file).await;
    }

    async fn assert_gone(pid_file: &std::path::Path) {
        let pid: i32 = std::fs::read_to_string(pid_file).unwrap().trim().parse().unwrap();
        // The grandchild was in the helper's group and got the same SIGKILL (give the
        // kernel a moment; the shell reaps nothing any more, so check liveness by signal 0).
        let mut alive = true;
        for _ in 0..50 {
            // SAFETY: signal 0 only checks that the process exists.
            alive = unsafe { libc::kill(pid, 0) } == 0 && !is_zombie(pid);
            if !alive {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive, "the helper's child `sleep 60` outlived the kill");
    }

    fn is_zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
            .unwrap_or(true)
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_failure() {
        let err = run(Command::new("/nonexistent/docker-credential-x"), b"", limits()).await.unwrap_err();
        assert!(matches!(err, Failure::Spawn(_)), "{err:?}");
    }
}
