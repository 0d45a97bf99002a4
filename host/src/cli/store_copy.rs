//! `roost store copy --from A --to B`: moves a hub's state between a SQLite file and a
//! Postgres database (either way, or between two of a kind), then proves the copy: row
//! count and SHA-256 per table, read back from the destination and compared with the
//! source's.
//!
//! Nothing is lost or mixed: the destination must be empty, the copy is one transaction,
//! and neither side may be in use by a hub while it runs (a SQLite side's data dir lock is
//! taken, which also keeps a hub from starting there mid-copy; a Postgres side must have no
//! hub holding its lease).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::daemon_lock::{self, DaemonLock, LockError};
use crate::store::{Store, StoreError, TableSum};

/// One side of a copy, as the user wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file, e.g. `data/roost.db`.
    Sqlite(PathBuf),
    /// A `postgres://` (or `postgresql://`) URL.
    Postgres(String),
}

impl Location {
    /// A URL with a Postgres scheme is Postgres; anything else is a SQLite file path.
    pub fn parse(text: &str) -> Location {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Location::Postgres(text.to_string())
        } else {
            Location::Sqlite(PathBuf::from(text))
        }
    }
}

/// Why a copy did not happen, or did not prove equal.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The source file is not there (a typo would otherwise copy a new, empty store).
    #[error(
        "{} does not exist; --from names a hub's database file (<data_dir>/roost.db) or a postgres:// URL",
        .0.display()
    )]
    NoSource(PathBuf),
    /// Both sides name the same store.
    #[error("--from and --to name the same store")]
    Same,
    /// A hub runs on a SQLite side's data dir.
    #[error("{0}")]
    Locked(#[from] LockError),
    /// A hub leads on a Postgres side.
    #[error("hub {hub:?} is running on {store}; stop every hub on it before copying")]
    InUse {
        /// The store.
        store: String,
        /// The hub holding its lease.
        hub: String,
    },
    /// Opening, reading or writing a side failed.
    #[error("{side}: {source}")]
    Store {
        /// `source` or `destination`.
        side: &'static str,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// The destination read back differs from the source.
    #[error(
        "the copy in {to} does not match its source: table {table} has {copied_rows} rows (sha256 {copied}) against {rows} (sha256 {expected}); remove the copy before trying again"
    )]
    Mismatch {
        /// The destination.
        to: String,
        /// The table that differs.
        table: &'static str,
        /// Rows in the source.
        rows: u64,
        /// Rows read back.
        copied_rows: u64,
        /// The source's checksum.
        expected: String,
        /// The copy's.
        copied: String,
    },
}

impl CopyError {
    /// Refused before anything was written (exit 2, like bad config); otherwise the copy
    /// was tried and failed (exit 1).
    pub fn refused(&self) -> bool {
        match self {
            CopyError::NoSource(_)
            | CopyError::Same
            | CopyError::Locked(_)
            | CopyError::InUse { .. } => true,
            CopyError::Store { source, .. } => matches!(
                source,
                StoreError::NotEmpty { .. }
                    | StoreError::Connect { .. }
                    | StoreError::Url { .. }
                    | StoreError::TooNew { .. }
                    | StoreError::PostgresTooNew { .. }
                    | StoreError::MigratingElsewhere { .. }
            ),
            CopyError::Mismatch { .. } => false,
        }
    }
}

/// What a finished copy reports.
#[derive(Debug)]
pub struct Copied {
    /// The source, as stores name themselves.
    pub from: String,
    /// The destination.
    pub to: String,
    /// Count and checksum per table, equal on both sides.
    pub tables: [TableSum; 4],
}

/// Copies every row from `from` into the empty `to` and verifies it. `password` is for
/// the Postgres side(s) whose URL has none (`ROOST_STORE_PASSWORD`).
pub fn copy(from: &Location, to: &Location, password: Option<&str>) -> Result<Copied, CopyError> {
    if let Location::Sqlite(path) = from
        && !path.is_file()
    {
        return Err(CopyError::NoSource(path.clone()));
    }
    if same_store(from, to) {
        return Err(CopyError::Same);
    }
    let _locks = lock_sqlite_dirs(&[from, to])?;
    let source = open(from, password, "source")?;
    let destination = open(to, password, "destination")?;
    let snapshot = source.snapshot().map_err(|source| CopyError::Store {
        side: "source",
        source,
    })?;
    let expected = snapshot.checksums();
    let in_destination = |source| CopyError::Store {
        side: "destination",
        source,
    };
    destination
        .restore(Arc::new(snapshot))
        .map_err(in_destination)?;
    let copied = destination.snapshot().map_err(in_destination)?.checksums();
    let to_name = destination.location();
    for (want, got) in expected.iter().zip(&copied) {
        if want != got {
            return Err(CopyError::Mismatch {
                to: to_name,
                table: want.table,
                rows: want.rows,
                copied_rows: got.rows,
                expected: want.hex(),
                copied: got.hex(),
            });
        }
    }
    Ok(Copied {
        from: source.location(),
        to: to_name,
        tables: copied,
    })
}

/// The same file (after resolving links) or the same URL.
fn same_store(a: &Location, b: &Location) -> bool {
    match (a, b) {
        (Location::Sqlite(a), Location::Sqlite(b)) => {
            let resolve = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            resolve(a) == resolve(b)
        }
        (Location::Postgres(a), Location::Postgres(b)) => a == b,
        _ => false,
    }
}

/// Takes the data dir lock of each SQLite side (once per dir; created for a new
/// destination): a hub running there is named and refused, and none can start mid-copy.
fn lock_sqlite_dirs(sides: &[&Location]) -> Result<Vec<DaemonLock>, CopyError> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for side in sides {
        let Location::Sqlite(path) = side else {
            continue;
        };
        let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => dir.to_path_buf(),
            None => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|source| CopyError::Store {
            side: "destination",
            source: StoreError::CreateDir {
                path: dir.clone(),
                source,
            },
        })?;
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    Ok(dirs
        .iter()
        .map(|dir| daemon_lock::acquire(dir))
        .collect::<Result<_, _>>()?)
}

/// Opens one side: a SQLite file, or a Postgres database no hub leads on.
fn open(at: &Location, password: Option<&str>, side: &'static str) -> Result<Store, CopyError> {
    let failed = |source| CopyError::Store { side, source };
    match at {
        Location::Sqlite(path) => Store::open(path).map_err(failed),
        Location::Postgres(url) => {
            let store = Store::open_postgres(url, password).map_err(failed)?;
            match store.leading_hub().map_err(failed)? {
                Some(hub) => Err(CopyError::InUse {
                    store: store.location(),
                    hub,
                }),
                None => Ok(store),
            }
        }
    }
}

/// The report: a line per table, then one saying what was copied where.
pub fn report(copied: &Copied) -> String {
    let mut text = format!("{:<13} {:>8}  sha256\n", "table", "rows");
    for t in &copied.tables {
        text.push_str(&format!("{:<13} {:>8}  {}\n", t.table, t.rows, t.hex()));
    }
    let rows: u64 = copied.tables.iter().map(|t| t.rows).sum();
    text.push_str(&format!(
        "copied {rows} rows from {} to {}; every table's count and sha256 match the source's\n",
        copied.from, copied.to
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_is_postgres_and_anything_else_a_file() {
        assert_eq!(
            Location::parse("postgresql://roost@db/roost"),
            Location::Postgres("postgresql://roost@db/roost".into())
        );
        assert_eq!(
            Location::parse("data/roost.db"),
            Location::Sqlite("data/roost.db".into())
        );
    }

    #[test]
    fn a_missing_source_file_is_refused_without_creating_it() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("typo.db");
        let to = Location::Sqlite(dir.path().join("copy.db"));
        let refused = copy(&Location::Sqlite(from.clone()), &to, None).unwrap_err();
        assert!(matches!(refused, CopyError::NoSource(_)), "{refused}");
        assert!(refused.refused());
        assert!(!from.exists() && !dir.path().join("copy.db").exists());
    }

    #[test]
    fn a_file_copied_onto_itself_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roost.db");
        Store::open(&path)
            .unwrap()
            .kv_set("bot", "k", b"v")
            .unwrap();
        let via_dot = dir.path().join(".").join("roost.db");
        let refused = copy(&Location::Sqlite(path), &Location::Sqlite(via_dot), None);
        assert!(matches!(refused, Err(CopyError::Same)), "{refused:?}");
    }
}
