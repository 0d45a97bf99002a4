//! `roost backup FILE`: a consistent copy of the hub's database with SQLite's online
//! backup, safe while the daemon runs (WAL readers do not block its writer).

use std::path::Path;

use crate::config::Config;

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The database or the copy could not be opened or written.
    #[error("backup of {from} to {to}: {source}")]
    Sqlite {
        from: String,
        to: String,
        source: rusqlite::Error,
    },
    /// The store is on Postgres (`[store] url`): back it up with the server's own tools.
    #[error("the store is on Postgres ([store] url); back it up with pg_dump, not roost backup")]
    Postgres,
    /// The target exists: a backup never overwrites.
    #[error("{0} exists; choose a new file name")]
    Exists(String),
}

/// Pages copied per step; small steps let the daemon write in between.
const PAGES_PER_STEP: std::ffi::c_int = 256;

/// Copies the database of `config`'s data dir to `to`; returns the pages copied.
pub fn backup(config: &Config, to: &Path) -> Result<i32, BackupError> {
    if config.store.url.is_some() {
        return Err(BackupError::Postgres);
    }
    let from = config.data_dir().join("roost.db");
    if to.exists() {
        return Err(BackupError::Exists(to.display().to_string()));
    }
    let fail = |source| BackupError::Sqlite {
        from: from.display().to_string(),
        to: to.display().to_string(),
        source,
    };
    let source = rusqlite::Connection::open_with_flags(
        &from,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(fail)?;
    let mut target = rusqlite::Connection::open(to).map_err(fail)?;
    let backup = rusqlite::backup::Backup::new(&source, &mut target).map_err(fail)?;
    backup
        .run_to_completion(PAGES_PER_STEP, std::time::Duration::from_millis(5), None)
        .map_err(fail)?;
    Ok(backup.progress().pagecount)
}
