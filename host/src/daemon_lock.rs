//! One daemon per data dir: `roost run` takes an exclusive `flock` on `data/roost.lock`
//! before it opens the store or loads a plugin, and writes its pid there. A second daemon
//! stops at once, naming the first; the kernel drops the lock when the holder dies, so a
//! `kill -9` never leaves a stale lock behind.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// File name of the lock inside the data dir.
pub const LOCK_FILE: &str = "roost.lock";

/// Why the lock could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another daemon holds it.
    #[error("another roost daemon (pid {pid}) is running on {}; stop it first", dir.display())]
    Held { pid: String, dir: PathBuf },
    /// The lock file could not be opened or written.
    #[error("lock file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
}

/// Takes the lock on `data_dir`, or says who holds it.
pub fn acquire(data_dir: &Path) -> Result<DaemonLock, LockError> {
    let path = data_dir.join(LOCK_FILE);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        return Err(LockError::Held {
            pid: pid.trim().to_string(),
            dir: data_dir.to_path_buf(),
        });
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(DaemonLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = acquire(dir.path()).expect("first");
        let second = acquire(dir.path()).expect_err("second");
        assert!(
            second.to_string().contains(&std::process::id().to_string()),
            "{second}"
        );
        drop(first);
        acquire(dir.path()).expect("free again");
    }
}
