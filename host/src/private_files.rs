//! Files the daemon writes are private to its user: the data dir is 0700, the database
//! and everything else it creates 0600 (a process-wide umask of 077), and a data dir or
//! database left readable by an older version is fixed at start, with a log line.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::OnceLock;

use rustix::fs::Mode;

/// Mode of the data dir: only the daemon's user may list, read or enter it.
pub const DATA_DIR_MODE: u32 = 0o700;
/// Mode of the database and its companions.
pub const DB_FILE_MODE: u32 = 0o600;
/// The files of the host's store that must never be readable by others.
const DB_FILES: &[&str] = &[
    "roost.db",
    "roost.db-wal",
    "roost.db-shm",
    "roost.db-journal",
];

/// The umask the process started with, for the jobs it runs (their files are the user's
/// project files, made the way the user's own shell would make them).
static STARTING_UMASK: OnceLock<Mode> = OnceLock::new();

/// Makes every file and directory the process creates from now on private to its user.
/// Call once, early in `main`.
pub fn restrict_umask() {
    let old = rustix::process::umask(Mode::from_raw_mode(0o077));
    let _ = STARTING_UMASK.set(old);
}

/// The umask the process had before [`restrict_umask`].
pub fn starting_umask() -> Option<Mode> {
    STARTING_UMASK.get().copied()
}

/// Creates the data dir if needed and makes it and the database files private, logging
/// each mode it had to fix.
pub fn prepare_data_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    restrict(dir, DATA_DIR_MODE)?;
    for name in DB_FILES {
        let path = dir.join(name);
        if path.exists() {
            restrict(&path, DB_FILE_MODE)?;
        }
    }
    Ok(())
}

/// Sets `path` to `mode` when it grants anything more; logs the fix.
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    let had = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if had & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        tracing::warn!(
            "{} was mode {had:o}, readable by other users; set to {mode:o}",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_readable_data_dir_and_database_are_made_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("mkdir");
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::write(data.join("roost.db"), b"").expect("write");
        std::fs::set_permissions(
            data.join("roost.db"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        prepare_data_dir(&data).expect("prepare");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("roost.db")), 0o600);
    }
}
