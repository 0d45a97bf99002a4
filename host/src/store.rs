//! The host's own SQLite database, one file in the data dir (`roost.db`): each plugin's KV
//! namespace, the outbox of chat messages waiting for a gateway, and the event history
//! `!status` shows.
//!
//! Durability is the point of this module: a reply a plugin "sent" while Discord was down
//! is a row in `outbox` until a gateway delivers it, and a committed KV write survives the
//! daemon being killed (see [`Store::open`] for the pragmas that make that true).
//!
//! Every method is synchronous: it takes the connection lock, runs one statement or one
//! short transaction, and returns. Async callers may call them directly for single-row work
//! (well under a millisecond on a warm cache); bulk work belongs in `spawn_blocking`. This
//! module knows nothing of plugins or wasm; it only stores what it is given.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// The schema, one entry per version: entry `i` takes a database from `user_version = i`
/// to `i + 1`. Entries are only ever appended; an applied migration is never edited, since
/// existing databases will not run it again.
const MIGRATIONS: &[&str] = &[
    // 1: KV, outbox, history.
    r#"
    CREATE TABLE kv (
        plugin TEXT NOT NULL,
        key    TEXT NOT NULL,
        value  BLOB NOT NULL,
        PRIMARY KEY (plugin, key)
    ) WITHOUT ROWID;

    -- AUTOINCREMENT: ids are never reused, so `ORDER BY id` is send order even after
    -- delivered rows are deleted.
    CREATE TABLE outbox (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        target     TEXT    NOT NULL,
        plugin     TEXT    NOT NULL,
        payload    TEXT    NOT NULL,
        created_at INTEGER NOT NULL,
        attempts   INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
    );
    CREATE INDEX outbox_by_target ON outbox (target, id);

    CREATE TABLE history (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        at     INTEGER NOT NULL,
        plugin TEXT,
        kind   TEXT    NOT NULL,
        detail TEXT    NOT NULL
    );
    "#,
];

/// How many history rows are kept; older ones are trimmed on every push. `!status` shows a
/// handful, and the table must not grow for the life of the install.
pub const HISTORY_KEEP: usize = 1000;

/// Longest history `detail` kept, in bytes; longer ones are cut at a character boundary. A
/// detail is usually an error message, and one pathological message must not bloat the
/// table 1000 times over.
pub const MAX_HISTORY_DETAIL: usize = 4096;

/// How long a statement waits for another connection's write lock (e.g. `roost invoke`
/// running beside the daemon) before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Cheap-to-clone handle to the host database: one `rusqlite::Connection` behind a mutex,
/// shared by the KV capability, the outbox, the gateways and the supervisor.
///
/// The mutex is `std::sync::Mutex`, not tokio's: it is held only for short synchronous
/// SQLite work and never across an `.await`, so an async mutex would add cost and nothing
/// else (the reasoning of mini-redis's `db.rs`).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Shared>,
}

struct Shared {
    /// For messages: the file, or `:memory:`.
    path: PathBuf,
    conn: Mutex<Connection>,
}

/// One operation of an atomic [`Store::kv_batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    /// Write `value` under the key, replacing any old value.
    Set(String, Vec<u8>),
    /// Remove the key; removing a missing key is not an error.
    Delete(String),
}

/// A message waiting in the outbox for its target's gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    /// Row id; pass it to [`Store::outbox_mark_sent`] or [`Store::outbox_mark_failed`].
    pub id: i64,
    /// Where it goes: `console` or `<gateway>:<channel id>`.
    pub target: String,
    /// The plugin that sent it (for the console's prefix and for status).
    pub plugin: String,
    /// The message as JSON text; its shape belongs to the outbox module, not to the store.
    pub payload: String,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// When it was queued, in Unix milliseconds.
    pub created_at: i64,
}

/// One entry of the event history (`!status`, `roost status`): loads, crashes, reloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryItem {
    /// When it happened, in Unix milliseconds.
    pub at: i64,
    /// The plugin it is about; `None` for host-wide events.
    pub plugin: Option<String>,
    /// A short machine-friendly tag, e.g. `crash` or `load-failed`.
    pub kind: String,
    /// Human-readable detail.
    pub detail: String,
}

/// Why a store operation failed, with what was being done. Callers log it (host blame) and
/// give plugins a generic error, so SQL detail never reaches a guest.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create directory {} for the database: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or configured.
    #[error("cannot open database {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer roost; opening it could corrupt data the newer
    /// schema relies on, so roost refuses.
    #[error(
        "database {} has schema version {found}, newer than this roost knows ({known}); upgrade roost or use another data_dir",
        path.display()
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: u32,
        /// The newest version this build can migrate to.
        known: u32,
    },
    /// A schema migration failed; the database stays at the previous version.
    #[error("database {}: migration to schema version {version} failed: {source}", path.display())]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// The version being migrated to.
        version: u32,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A query failed.
    #[error("database error while {doing}: {source}")]
    Sql {
        /// What was being done, e.g. "writing a kv entry".
        doing: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
}

/// Wraps a rusqlite error with what was being done; `Copy`, so one function can map
/// several errors the same way.
fn sql(doing: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + Copy {
    move |source| StoreError::Sql { doing, source }
}

/// Converts a caller's `limit` to SQLite's integer type; anything too large means "all".
fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Now, in Unix milliseconds (0 if the clock is before 1970).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The smallest string greater than every string that starts with `prefix`, in SQLite's
/// BINARY (UTF-8 byte) order, which is code point order: `prefix` with its last character
/// replaced by the next one. `None` when there is no such string (empty prefix, or only
/// `char::MAX`), meaning "no upper bound". This keeps `kv_list` an index range scan and
/// treats `%` and `_` as ordinary characters, which `LIKE` would not.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value, skipping the surrogate gap.
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// The daemon calls it once at start; `roost invoke` calls it for its one-shot run.
    ///
    /// - The parent directory is created.
    /// - `journal_mode = WAL`: readers never block the writer, and a crash leaves the file
    ///   consistent.
    /// - `synchronous = FULL`: the WAL is fsynced at every commit, so a write that returned
    ///   `Ok` survives `kill -9` of the daemon and also an OS crash or power loss (NORMAL
    ///   would survive only the former).
    /// - `busy_timeout` 5 s, for a second process (`roost invoke`) on the same file.
    /// - `foreign_keys = ON`, so later migrations can rely on them.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(
                path = %path.display(),
                mode,
                "database is not in WAL mode; readers may block writers"
            );
        }
        Self::configure(&conn).map_err(open_err)?;
        Self::finish_open(path.to_path_buf(), conn)
    }

    /// A private database that lives as long as the handle: for tests of this module and
    /// of everything built on it.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let open_err = |source| StoreError::Open {
            path: PathBuf::from(":memory:"),
            source,
        };
        let conn = Connection::open_in_memory().map_err(open_err)?;
        Self::configure(&conn).map_err(open_err)?;
        Self::finish_open(path, conn)
    }

    fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(())
    }

    fn finish_open(path: PathBuf, mut conn: Connection) -> Result<Store, StoreError> {
        migrate(&path, &mut conn)?;
        tracing::debug!(path = %path.display(), "store open");
        Ok(Store {
            inner: Arc::new(Shared {
                path,
                conn: Mutex::new(conn),
            }),
        })
    }

    /// The connection, for one short piece of work. A panic while the lock was held left no
    /// half-done state behind (an open transaction rolls back when dropped), so a poisoned
    /// lock is taken over rather than turned into a second panic.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.inner
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The schema version (`PRAGMA user_version`) of the open database, for `roost status`
    /// and tests.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        user_version(&self.conn()).map_err(sql("reading the schema version"))
    }

    /// The value of `key` in `plugin`'s namespace, if set.
    pub fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT value FROM kv WHERE plugin = ?1 AND key = ?2")
            .map_err(sql("reading a kv entry"))?;
        stmt.query_row(params![plugin, key], |row| row.get(0))
            .optional()
            .map_err(sql("reading a kv entry"))
    }

    /// Writes `value` under `key` in `plugin`'s namespace, replacing any old value. Size
    /// limits are the caller's (the `kv` capability's) business.
    pub fn kv_set(&self, plugin: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let conn = self.conn();
        set(&conn, plugin, key, value).map_err(sql("writing a kv entry"))
    }

    /// Removes `key` from `plugin`'s namespace; `true` if it was there.
    pub fn kv_delete(&self, plugin: &str, key: &str) -> Result<bool, StoreError> {
        let conn = self.conn();
        delete(&conn, plugin, key)
            .map(|n| n > 0)
            .map_err(sql("deleting a kv entry"))
    }

    /// Up to `limit` keys of `plugin`'s namespace that start with `prefix`, sorted (by UTF-8
    /// bytes). `%` and `_` in `prefix` are ordinary characters.
    pub fn kv_list(
        &self,
        plugin: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let doing = sql("listing kv keys");
        let limit = limit_param(limit);
        let keys = match prefix_successor(prefix) {
            Some(end) => {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT key FROM kv WHERE plugin = ?1 AND key >= ?2 AND key < ?3 \
                         ORDER BY key LIMIT ?4",
                    )
                    .map_err(doing)?;
                stmt.query_map(params![plugin, prefix, end, limit], |row| row.get(0))
                    .and_then(Iterator::collect)
            }
            None => {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT key FROM kv WHERE plugin = ?1 AND key >= ?2 \
                         ORDER BY key LIMIT ?3",
                    )
                    .map_err(doing)?;
                stmt.query_map(params![plugin, prefix, limit], |row| row.get(0))
                    .and_then(Iterator::collect)
            }
        };
        keys.map_err(doing)
    }

    /// Applies `ops` to `plugin`'s namespace in order, in one transaction: either all of
    /// them take effect or, if any fails, none does.
    pub fn kv_batch(&self, plugin: &str, ops: &[KvOp]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let doing = sql("applying a kv batch");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(doing)?;
        for op in ops {
            match op {
                KvOp::Set(key, value) => set(&tx, plugin, key, value).map_err(doing)?,
                KvOp::Delete(key) => {
                    delete(&tx, plugin, key).map_err(doing)?;
                }
            }
        }
        // Dropping `tx` on an early return above rolls the batch back.
        tx.commit().map_err(doing)
    }

    /// How many keys `plugin` has, for quotas and status.
    pub fn kv_count(&self, plugin: &str) -> Result<u64, StoreError> {
        let conn = self.conn();
        let doing = sql("counting kv keys");
        let mut stmt = conn
            .prepare_cached("SELECT COUNT(*) FROM kv WHERE plugin = ?1")
            .map_err(doing)?;
        let n: i64 = stmt.query_row([plugin], |row| row.get(0)).map_err(doing)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Total bytes of `plugin`'s keys (UTF-8) and values, for quotas. It scans the
    /// namespace, so call it when enforcing a quota, not on every read.
    pub fn kv_bytes(&self, plugin: &str) -> Result<u64, StoreError> {
        let conn = self.conn();
        let doing = sql("measuring kv usage");
        let mut stmt = conn
            .prepare_cached(
                "SELECT COALESCE(SUM(length(CAST(key AS BLOB)) + length(value)), 0) \
                 FROM kv WHERE plugin = ?1",
            )
            .map_err(doing)?;
        let n: i64 = stmt.query_row([plugin], |row| row.get(0)).map_err(doing)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Queues `payload` (JSON text) from `plugin` for `target`; returns its id. Once this
    /// returns, the message survives a crash and will be delivered in order.
    pub fn outbox_push(
        &self,
        target: &str,
        plugin: &str,
        payload: &str,
    ) -> Result<i64, StoreError> {
        let conn = self.conn();
        let doing = sql("queueing an outgoing message");
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO outbox (target, plugin, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(doing)?;
        stmt.execute(params![target, plugin, payload, now_ms()])
            .map_err(doing)?;
        Ok(conn.last_insert_rowid())
    }

    /// Up to `limit` messages waiting for `target`, oldest first: what its gateway delivers
    /// next.
    pub fn outbox_pending(
        &self,
        target: &str,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let conn = self.conn();
        let doing = sql("reading the outbox");
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, target, plugin, payload, attempts, created_at FROM outbox \
                 WHERE target = ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(doing)?;
        stmt.query_map(params![target, limit_param(limit)], |row| {
            Ok(OutboxItem {
                id: row.get(0)?,
                target: row.get(1)?,
                plugin: row.get(2)?,
                payload: row.get(3)?,
                attempts: row.get(4)?,
                created_at: row.get(5)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(doing)
    }

    /// Every target with messages waiting, and how many, sorted by target: the delivery
    /// loop's work list and the queue depth `!status` shows.
    pub fn outbox_targets(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let conn = self.conn();
        let doing = sql("reading the outbox");
        let mut stmt = conn
            .prepare_cached("SELECT target, COUNT(*) FROM outbox GROUP BY target ORDER BY target")
            .map_err(doing)?;
        stmt.query_map([], |row| {
            let n: i64 = row.get(1)?;
            Ok((row.get(0)?, u64::try_from(n).unwrap_or(0)))
        })
        .and_then(Iterator::collect)
        .map_err(doing)
    }

    /// Records that message `id` was delivered; it leaves the outbox. Marking an id that is
    /// no longer there (already sent) is not an error.
    pub fn outbox_mark_sent(&self, id: i64) -> Result<(), StoreError> {
        let conn = self.conn();
        let doing = sql("removing a delivered message");
        let mut stmt = conn
            .prepare_cached("DELETE FROM outbox WHERE id = ?1")
            .map_err(doing)?;
        if stmt.execute([id]).map_err(doing)? == 0 {
            tracing::debug!(id, "outbox: marked sent but was not queued");
        }
        Ok(())
    }

    /// Records a failed delivery of message `id`: it stays queued (in place, so order is
    /// kept), its attempt count goes up and `error` is kept as its last error.
    pub fn outbox_mark_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        let conn = self.conn();
        let doing = sql("recording a failed delivery");
        let mut stmt = conn
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
            )
            .map_err(doing)?;
        if stmt.execute(params![id, error]).map_err(doing)? == 0 {
            tracing::debug!(id, "outbox: marked failed but was not queued");
        }
        Ok(())
    }

    /// Appends an event (`plugin` is `None` for host-wide ones) and trims the history to
    /// the newest [`HISTORY_KEEP`] rows. `detail` is cut to [`MAX_HISTORY_DETAIL`] bytes.
    pub fn history_push(
        &self,
        plugin: Option<&str>,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let mut cut = detail.len().min(MAX_HISTORY_DETAIL);
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        let detail = &detail[..cut];
        let mut conn = self.conn();
        let doing = sql("recording an event");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(doing)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO history (at, plugin, kind, detail) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(doing)?;
            insert
                .execute(params![now_ms(), plugin, kind, detail])
                .map_err(doing)?;
            let mut trim = tx
                .prepare_cached(
                    "DELETE FROM history WHERE id <= \
                     (SELECT id FROM history ORDER BY id DESC LIMIT 1 OFFSET ?1)",
                )
                .map_err(doing)?;
            trim.execute([limit_param(HISTORY_KEEP)]).map_err(doing)?;
        }
        tx.commit().map_err(doing)
    }

    /// The newest `limit` events, newest first.
    pub fn history_recent(&self, limit: usize) -> Result<Vec<HistoryItem>, StoreError> {
        let conn = self.conn();
        let doing = sql("reading the history");
        let mut stmt = conn
            .prepare_cached(
                "SELECT at, plugin, kind, detail FROM history ORDER BY id DESC LIMIT ?1",
            )
            .map_err(doing)?;
        stmt.query_map([limit_param(limit)], |row| {
            Ok(HistoryItem {
                at: row.get(0)?,
                plugin: row.get(1)?,
                kind: row.get(2)?,
                detail: row.get(3)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(doing)
    }

    /// SQLite's `PRAGMA integrity_check`: `"ok"` when the file is sound, otherwise the
    /// problems it found, one per line. For `roost check` and after an unclean shutdown.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let conn = self.conn();
        let doing = sql("checking database integrity");
        let mut stmt = conn.prepare("PRAGMA integrity_check").map_err(doing)?;
        let lines: Vec<String> = stmt
            .query_map([], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(doing)?;
        let report = lines.join("\n");
        if report != "ok" {
            tracing::error!(path = %self.inner.path.display(), %report, "database integrity check failed");
        }
        Ok(report)
    }
}

fn set(conn: &Connection, plugin: &str, key: &str, value: &[u8]) -> Result<(), rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO kv (plugin, key, value) VALUES (?1, ?2, ?3) \
         ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
    )?;
    stmt.execute(params![plugin, key, value])?;
    Ok(())
}

fn delete(conn: &Connection, plugin: &str, key: &str) -> Result<usize, rusqlite::Error> {
    let mut stmt = conn.prepare_cached("DELETE FROM kv WHERE plugin = ?1 AND key = ?2")?;
    stmt.execute(params![plugin, key])
}

fn user_version(conn: &Connection) -> Result<u32, rusqlite::Error> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Applies the migrations the database has not had yet, each in its own transaction
/// together with its `user_version` bump, so a crash mid-migration leaves the previous
/// version intact. The version is read inside the (immediate, write-locked) transaction, so
/// two processes opening the same new file cannot both apply a migration.
fn migrate(path: &Path, conn: &mut Connection) -> Result<(), StoreError> {
    let known = u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX);
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let found = user_version(&tx).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        if found > known {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found,
                known,
            });
        }
        let Some(step) = usize::try_from(found).ok().and_then(|i| MIGRATIONS.get(i)) else {
            return Ok(());
        };
        let version = found + 1;
        let failed = |source| StoreError::Migrate {
            path: path.to_path_buf(),
            version,
            source,
        };
        tx.execute_batch(step).map_err(failed)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(failed)?;
        tx.commit().map_err(failed)?;
        tracing::info!(path = %path.display(), version, "database schema migrated");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> Store {
        Store::open_in_memory().expect("in-memory store")
    }

    #[test]
    fn a_new_database_is_at_the_latest_schema_version() {
        let s = mem();
        assert_eq!(
            s.schema_version().expect("version") as usize,
            MIGRATIONS.len()
        );
        assert_eq!(s.integrity_check().expect("check"), "ok");
    }

    #[test]
    fn kv_set_get_delete_round_trip() {
        let s = mem();
        assert_eq!(s.kv_get("a", "k").expect("get"), None);
        s.kv_set("a", "k", b"one").expect("set");
        s.kv_set("a", "k", b"two").expect("overwrite");
        assert_eq!(s.kv_get("a", "k").expect("get"), Some(b"two".to_vec()));
        s.kv_set("a", "empty", b"").expect("empty value");
        assert_eq!(s.kv_get("a", "empty").expect("get"), Some(Vec::new()));
        assert!(s.kv_delete("a", "k").expect("delete"));
        assert!(!s.kv_delete("a", "k").expect("delete again"));
        assert_eq!(s.kv_get("a", "k").expect("get"), None);
    }

    #[test]
    fn one_plugin_cannot_see_another_plugins_keys() {
        let s = mem();
        s.kv_set("a", "secret", b"a's").expect("set");
        s.kv_set("b", "secret", b"b's").expect("set");
        s.kv_set("b", "other", b"x").expect("set");
        assert_eq!(s.kv_get("a", "secret").expect("get"), Some(b"a's".to_vec()));
        assert_eq!(s.kv_get("a", "other").expect("get"), None);
        assert_eq!(s.kv_list("a", "", 100).expect("list"), vec!["secret"]);
        assert!(s.kv_delete("a", "secret").expect("delete"));
        assert_eq!(s.kv_get("b", "secret").expect("get"), Some(b"b's".to_vec()));
        assert_eq!(s.kv_count("a").expect("count"), 0);
        assert_eq!(s.kv_count("b").expect("count"), 2);
    }

    #[test]
    fn kv_list_matches_prefixes_literally_and_sorts() {
        let s = mem();
        for key in [
            "user/2", "user/1", "user%x", "userXx", "user_x", "users", "use", "user/", "v",
        ] {
            s.kv_set("p", key, b"").expect("set");
        }
        assert_eq!(
            s.kv_list("p", "user/", 100).expect("list"),
            vec!["user/", "user/1", "user/2"]
        );
        assert_eq!(s.kv_list("p", "user%", 100).expect("list"), vec!["user%x"]);
        assert_eq!(s.kv_list("p", "user_", 100).expect("list"), vec!["user_x"]);
        assert_eq!(
            s.kv_list("p", "user/", 2).expect("list"),
            vec!["user/", "user/1"]
        );
        assert_eq!(s.kv_list("p", "", 100).expect("list").len(), 9);
        assert_eq!(
            s.kv_list("p", "zzz", 100).expect("list"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn kv_list_handles_prefixes_ending_in_the_largest_characters() {
        let s = mem();
        let max = char::MAX.to_string();
        for key in [
            format!("a{max}"),
            format!("a{max}b"),
            "b".to_string(),
            max.clone(),
        ] {
            s.kv_set("p", &key, b"").expect("set");
        }
        assert_eq!(
            s.kv_list("p", &format!("a{max}"), 10).expect("list"),
            vec![format!("a{max}"), format!("a{max}b")]
        );
        assert_eq!(s.kv_list("p", &max, 10).expect("list"), vec![max.clone()]);
        assert_eq!(prefix_successor(""), None);
        assert_eq!(prefix_successor(&max), None);
        assert_eq!(prefix_successor("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
    }

    #[test]
    fn kv_batch_applies_every_operation_in_order() {
        let s = mem();
        s.kv_set("p", "gone", b"x").expect("set");
        s.kv_batch(
            "p",
            &[
                KvOp::Set("a".into(), b"1".to_vec()),
                KvOp::Set("a".into(), b"2".to_vec()),
                KvOp::Delete("gone".into()),
                KvOp::Delete("never-there".into()),
                KvOp::Set("b".into(), b"3".to_vec()),
            ],
        )
        .expect("batch");
        assert_eq!(s.kv_get("p", "a").expect("get"), Some(b"2".to_vec()));
        assert_eq!(s.kv_get("p", "b").expect("get"), Some(b"3".to_vec()));
        assert_eq!(s.kv_get("p", "gone").expect("get"), None);
        s.kv_batch("p", &[]).expect("empty batch");
    }

    #[test]
    fn a_failing_kv_batch_leaves_nothing_behind() {
        let s = mem();
        s.kv_set("p", "kept", b"old").expect("set");
        // Make the third operation fail inside SQLite, as a full disk would.
        s.conn()
            .execute_batch(
                "CREATE TRIGGER fail_boom BEFORE INSERT ON kv WHEN NEW.key = 'boom' \
                 BEGIN SELECT RAISE(ABORT, 'simulated failure'); END;",
            )
            .expect("trigger");
        let err = s
            .kv_batch(
                "p",
                &[
                    KvOp::Set("new".into(), b"1".to_vec()),
                    KvOp::Delete("kept".into()),
                    KvOp::Set("boom".into(), b"x".to_vec()),
                ],
            )
            .expect_err("batch must fail");
        assert!(err.to_string().contains("applying a kv batch"), "{err}");
        assert_eq!(s.kv_get("p", "new").expect("get"), None);
        assert_eq!(s.kv_get("p", "kept").expect("get"), Some(b"old".to_vec()));
        // The store is still usable afterwards.
        s.kv_set("p", "after", b"ok").expect("set after failure");
    }

    #[test]
    fn kv_bytes_counts_utf8_keys_and_values() {
        let s = mem();
        assert_eq!(s.kv_bytes("p").expect("bytes"), 0);
        s.kv_set("p", "é", b"abc").expect("set"); // 2 + 3
        s.kv_set("p", "k", b"").expect("set"); // 1 + 0
        s.kv_set("q", "other", b"0123456789").expect("set");
        assert_eq!(s.kv_bytes("p").expect("bytes"), 6);
    }

    #[test]
    fn the_outbox_delivers_per_target_in_order_and_keeps_failures() {
        let s = mem();
        let a1 = s
            .outbox_push("console", "bot", r#"{"text":"1"}"#)
            .expect("push");
        let d1 = s
            .outbox_push("discord:9", "bot", r#"{"text":"d"}"#)
            .expect("push");
        let a2 = s
            .outbox_push("console", "w", r#"{"text":"2"}"#)
            .expect("push");
        assert!(a1 < d1 && d1 < a2);
        assert_eq!(
            s.outbox_targets().expect("targets"),
            vec![("console".to_string(), 2), ("discord:9".to_string(), 1)]
        );

        let pending = s.outbox_pending("console", 10).expect("pending");
        assert_eq!(
            pending.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![a1, a2]
        );
        assert_eq!(pending[0].plugin, "bot");
        assert_eq!(pending[0].payload, r#"{"text":"1"}"#);
        assert_eq!(pending[0].attempts, 0);
        assert!(pending[0].created_at > 0);

        s.outbox_mark_failed(a1, "gateway down").expect("failed");
        s.outbox_mark_failed(a1, "still down").expect("failed");
        let pending = s.outbox_pending("console", 1).expect("pending");
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].id, a1, "a failed message keeps its place");
        assert_eq!(pending[0].attempts, 2);

        s.outbox_mark_sent(a1).expect("sent");
        s.outbox_mark_sent(a1).expect("sent twice is harmless");
        let pending = s.outbox_pending("console", 10).expect("pending");
        assert_eq!(pending.iter().map(|i| i.id).collect::<Vec<_>>(), vec![a2]);
        s.outbox_mark_sent(a2).expect("sent");
        assert_eq!(
            s.outbox_targets().expect("targets"),
            vec![("discord:9".to_string(), 1)]
        );
        // Ids are not reused after deletes, so new messages still sort last.
        let a3 = s.outbox_push("console", "bot", "{}").expect("push");
        assert!(a3 > a2);
    }

    #[test]
    fn history_keeps_the_newest_thousand_newest_first() {
        let s = mem();
        for i in 0..HISTORY_KEEP + 5 {
            let plugin = (i % 2 == 0).then_some("bot");
            s.history_push(plugin, "tick", &i.to_string())
                .expect("push");
        }
        let all = s.history_recent(5000).expect("recent");
        assert_eq!(all.len(), HISTORY_KEEP);
        assert_eq!(all[0].detail, (HISTORY_KEEP + 4).to_string());
        assert_eq!(all[HISTORY_KEEP - 1].detail, "5");
        let recent = s.history_recent(2).expect("recent");
        assert_eq!(recent.len(), 2);
        assert_eq!(recent[0].plugin.as_deref(), Some("bot"));
        assert_eq!(recent[1].plugin, None);
        assert_eq!(recent[0].kind, "tick");
        assert!(recent[0].at >= recent[1].at);
    }

    #[test]
    fn history_details_are_capped_at_a_character_boundary() {
        let s = mem();
        let long = "é".repeat(MAX_HISTORY_DETAIL);
        s.history_push(None, "big", &long).expect("push");
        let item = s.history_recent(1).expect("recent").remove(0);
        assert!(item.detail.len() <= MAX_HISTORY_DETAIL);
        assert!(item.detail.chars().all(|c| c == 'é'));
    }

    #[test]
    fn reopening_a_file_keeps_data_and_does_not_migrate_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/dir/roost.db");
        {
            let s = Store::open(&path).expect("first open creates the directory");
            s.kv_set("p", "k", b"v").expect("set");
            s.outbox_push("console", "p", "{}").expect("push");
            s.history_push(Some("p"), "load", "ok").expect("history");
            let mode: String = s
                .conn()
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .expect("journal mode");
            assert_eq!(mode, "wal");
            let sync: i64 = s
                .conn()
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .expect("synchronous");
            assert_eq!(sync, 2, "synchronous = FULL");
        }
        let s = Store::open(&path).expect("second open");
        assert_eq!(
            s.schema_version().expect("version") as usize,
            MIGRATIONS.len()
        );
        assert_eq!(s.kv_get("p", "k").expect("get"), Some(b"v".to_vec()));
        assert_eq!(s.outbox_pending("console", 10).expect("pending").len(), 1);
        assert_eq!(s.history_recent(10).expect("history").len(), 1);
        // Two handles at once on one file (daemon + `roost invoke`) both work.
        let other = Store::open(&path).expect("concurrent open");
        other.kv_set("p", "k2", b"v2").expect("set");
        assert_eq!(s.kv_get("p", "k2").expect("get"), Some(b"v2".to_vec()));
    }

    #[test]
    fn a_database_from_a_newer_roost_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("roost.db");
        drop(Store::open(&path).expect("open"));
        let newer = MIGRATIONS.len() + 7;
        Connection::open(&path)
            .and_then(|c| c.pragma_update(None, "user_version", newer))
            .expect("bump user_version");
        match Store::open(&path) {
            Err(StoreError::TooNew { found, known, .. }) => {
                assert_eq!(found as usize, newer);
                assert_eq!(known as usize, MIGRATIONS.len());
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a newer database must be refused"),
        }
    }

    #[test]
    fn clones_share_one_database() {
        let s = mem();
        let t = s.clone();
        t.kv_set("p", "k", b"v").expect("set");
        assert_eq!(s.kv_get("p", "k").expect("get"), Some(b"v".to_vec()));
    }
}
