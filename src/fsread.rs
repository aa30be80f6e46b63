//! Every read of a path named by the outside world goes through here: only regular files,
//! opened so that a FIFO or a device cannot block the open, and never more than a cap.
//!
//! `/dev/zero` as a certificate path or a FIFO as a pipeline file used to grow memory
//! without bound or block the run before its deadline started; here both are an error
//! that names the path and what was expected.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;

/// Caps for the kinds of file the tool reads. Generous for real files, small enough that a
/// hostile one costs little.
pub mod limits {
    /// A PEM certificate and key (connection certificates; a chain of a few certificates).
    pub const CERTIFICATE: u64 = 1 << 20;
    /// A federated (OIDC) token file: a JWT.
    pub const TOKEN_FILE: u64 = 64 << 10;
    /// `SSL_CERT_FILE`: a CA bundle (the Mozilla bundle is about 220 KiB).
    pub const CA_BUNDLE: u64 = 8 << 20;
    /// The Docker config (`config.json`).
    pub const DOCKER_CONFIG: u64 = 1 << 20;
    /// One advisory file.
    pub const ADVISORY: u64 = 256 << 10;
    /// One pipeline or template file.
    pub const PIPELINE: u64 = 8 << 20;
    /// One shard's JSON report read by `report merge` (an organisation of 50,000 pipelines
    /// writes a few tens of MiB).
    pub const REPORT: u64 = 256 << 20;
    /// A small system file (`/etc/ld.so.preload`).
    pub const SYSTEM_FILE: u64 = 64 << 10;
}

#[derive(Debug)]
pub enum ReadError {
    /// A directory, FIFO, socket or device: not something to read as a file.
    NotRegular(&'static str),
    /// Larger than the cap for this kind of file.
    TooLarge {
        limit: u64,
    },
    Io(std::io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NotRegular(kind) => write!(f, "it is a {kind}, not a regular file"),
            ReadError::TooLarge { limit } => write!(f, "it is larger than {}", human_size(*limit)),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReadError {}

impl ReadError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Opening a FIFO for reading blocks until a writer appears; O_NONBLOCK makes the
        // open return at once so the type check below can refuse it.
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let ft = meta.file_type();
    if ft.is_dir() {
        return "directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "FIFO";
        }
        if ft.is_socket() {
            return "socket";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "device";
        }
    }
    "special file"
}

/// Opens a path that must be a regular file, with its size. The type is checked before
/// opening where possible (a directory cannot be opened on every platform), and again on the
/// handle (the path may have been swapped in between).
fn open_regular(path: &Path) -> Result<(File, u64), ReadError> {
    let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta)));
    }
    let file = open_nonblocking(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta)));
    }
    Ok((file, meta.len()))
}

/// Reads a regular file of at most `limit` bytes.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let (file, len) = open_regular(path)?;
    if len > limit {
        return Err(ReadError::TooLarge { limit });
    }
    let mut buf = Vec::with_capacity(len as usize);
    // A file that grows while it is read (or lies about its size, as some /proc files do)
    // still stops at the cap.
    file.take(limit + 1).read_to_end(&mut buf).map_err(ReadError::Io)?;
    if buf.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(buf)
}

/// Reads the first `max` bytes (at most) of a regular file of any size: enough to tell what
/// kind of file it is without reading all of it. A FIFO or device is refused at once.
pub fn read_prefix(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let (file, len) = open_regular(path)?;
    let mut buf = Vec::with_capacity(len.min(max) as usize);
    file.take(max).read_to_end(&mut buf).map_err(ReadError::Io)?;
    Ok(buf)
}

/// Reads a regular UTF-8 text file of at most `limit` bytes.
pub fn read_to_string(path: &Path, limit: u64) -> Result<String, ReadError> {
    let bytes = read(path, limit)?;
    String::from_utf8(bytes)
        .map_err(|_| ReadError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, "it is not UTF-8 text")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn reads_a_regular_file_within_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.pem");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(read(&p, 5).unwrap(), b"hello");
        assert!(matches!(read(&p, 4), Err(ReadError::TooLarge { limit: 4 })));
        assert_eq!(read_to_string(&p, 10).unwrap(), "hello");
    }

    #[test]
    fn refuses_directories_and_devices_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(dir.path(), 1 << 20).unwrap_err();
        assert_eq!(err.to_string(), "it is a directory, not a regular file");
        #[cfg(unix)]
        {
            let started = Instant::now();
            let err = read(Path::new("/dev/zero"), 1 << 20).unwrap_err();
            assert_eq!(err.to_string(), "it is a device, not a regular file");
            assert!(started.elapsed() < Duration::from_secs(1));
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_at_once_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.yml");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let started = Instant::now();
        let err = read(&fifo, 1 << 20).unwrap_err();
        assert_eq!(err.to_string(), "it is a FIFO, not a regular file");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_proc_file_that_reports_size_zero_still_stops_at_the_cap() {
        // /proc/self/maps says 0 bytes but yields more; the cap is applied to what is read.
        let err = read(Path::new("/proc/self/maps"), 16).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { limit: 16 }));
    }
}
