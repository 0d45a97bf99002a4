//! The host's own SQLite database, one file in the data dir (`roost.db`): each plugin's KV
//! namespace, the outbox of chat messages waiting for a gateway, and the event history
//! `!status` shows.
//!
//! Durability is the point of this module: a reply a plugin "sent" while Discord was down
//! is a row in `outbox` until a gateway delivers it, and a committed KV write survives the
//! daemon being killed (see [`Store::open`] for the pragmas that make that true). Queued
//! messages and KV writes also survive an OS crash (fsync at commit); the delivery worker's
//! bookkeeping survives roost being killed but not an OS crash (see [`without_fsync`]).
//!
//! Every method is synchronous: it takes the connection lock, runs one statement or one
//! short transaction, and returns. Async callers hand that work to the store's own thread
//! ([`Store::run`], [`Store::submit`]). This module knows nothing of plugins or wasm; it
//! only stores what it is given.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{
    Connection, OptionalExtension, Savepoint, Transaction, TransactionBehavior, params,
};

mod copy;
mod group_commit;
mod postgres;
#[cfg(test)]
pub(crate) mod test_pg;

pub use copy::{HistoryRow, KvRow, OutboxRow, PostedRow, Snapshot, TableSum};

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
    // 2: running totals for the KV quota and the outbox caps. Triggers keep them in the
    // same transaction as every write to `kv` or `outbox`, whatever code path makes it, so
    // they cannot drift from the rows they count and survive restarts with them. (No
    // `INSERT OR IGNORE` in them: the conflict policy of the statement that fires a trigger,
    // e.g. the upsert in `set`, overrides the trigger's own.)
    r#"
    CREATE TABLE kv_usage (
        plugin TEXT    PRIMARY KEY,
        bytes  INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO kv_usage (plugin, bytes)
        SELECT plugin, SUM(length(CAST(key AS BLOB)) + length(value)) FROM kv GROUP BY plugin;
    CREATE TRIGGER kv_usage_insert AFTER INSERT ON kv BEGIN
        INSERT INTO kv_usage (plugin, bytes) SELECT NEW.plugin, 0
            WHERE NOT EXISTS (SELECT 1 FROM kv_usage WHERE plugin = NEW.plugin);
        UPDATE kv_usage SET bytes = bytes + length(CAST(NEW.key AS BLOB)) + length(NEW.value)
            WHERE plugin = NEW.plugin;
    END;
    CREATE TRIGGER kv_usage_update AFTER UPDATE ON kv BEGIN
        UPDATE kv_usage SET bytes = bytes - length(CAST(OLD.key AS BLOB)) - length(OLD.value)
            WHERE plugin = OLD.plugin;
        INSERT INTO kv_usage (plugin, bytes) SELECT NEW.plugin, 0
            WHERE NOT EXISTS (SELECT 1 FROM kv_usage WHERE plugin = NEW.plugin);
        UPDATE kv_usage SET bytes = bytes + length(CAST(NEW.key AS BLOB)) + length(NEW.value)
            WHERE plugin = NEW.plugin;
    END;
    CREATE TRIGGER kv_usage_delete AFTER DELETE ON kv BEGIN
        UPDATE kv_usage SET bytes = bytes - length(CAST(OLD.key AS BLOB)) - length(OLD.value)
            WHERE plugin = OLD.plugin;
    END;

    CREATE TABLE outbox_usage (
        target   TEXT    PRIMARY KEY,
        messages INTEGER NOT NULL,
        bytes    INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO outbox_usage (target, messages, bytes)
        SELECT target, COUNT(*), SUM(length(CAST(payload AS BLOB))) FROM outbox GROUP BY target;
    CREATE TRIGGER outbox_usage_insert AFTER INSERT ON outbox BEGIN
        INSERT INTO outbox_usage (target, messages, bytes) SELECT NEW.target, 0, 0
            WHERE NOT EXISTS (SELECT 1 FROM outbox_usage WHERE target = NEW.target);
        UPDATE outbox_usage
            SET messages = messages + 1, bytes = bytes + length(CAST(NEW.payload AS BLOB))
            WHERE target = NEW.target;
    END;
    CREATE TRIGGER outbox_usage_update AFTER UPDATE OF target, payload ON outbox BEGIN
        UPDATE outbox_usage
            SET messages = messages - 1, bytes = bytes - length(CAST(OLD.payload AS BLOB))
            WHERE target = OLD.target;
        INSERT INTO outbox_usage (target, messages, bytes) SELECT NEW.target, 0, 0
            WHERE NOT EXISTS (SELECT 1 FROM outbox_usage WHERE target = NEW.target);
        UPDATE outbox_usage
            SET messages = messages + 1, bytes = bytes + length(CAST(NEW.payload AS BLOB))
            WHERE target = NEW.target;
        DELETE FROM outbox_usage WHERE target = OLD.target AND messages <= 0;
    END;
    CREATE TRIGGER outbox_usage_delete AFTER DELETE ON outbox BEGIN
        UPDATE outbox_usage
            SET messages = messages - 1, bytes = bytes - length(CAST(OLD.payload AS BLOB))
            WHERE target = OLD.target;
        DELETE FROM outbox_usage WHERE target = OLD.target AND messages <= 0;
    END;
    "#,
    // 3: the platform id of the last message delivered to each target, written with the
    // removal of the messages delivered: after a crash, a post roost is not sure it made
    // can only be after it (`gateways/discord.rs`).
    r#"
    CREATE TABLE outbox_posted (
        target TEXT PRIMARY KEY,
        post   TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
];

/// How many history rows are kept; older ones are trimmed on every push. `!status` shows a
/// handful, and the table must not grow for the life of the install.
pub const HISTORY_KEEP: usize = 1000;

/// Longest history `detail` kept, in bytes; longer ones are cut at a character boundary. A
/// detail is usually an error message, and one pathological message must not bloat the
/// table 1000 times over.
pub const MAX_HISTORY_DETAIL: usize = 4096;

/// History kind of "a target's oldest messages were dropped".
pub const OUTBOX_DROPPED: &str = "outbox-dropped";

/// How long a statement waits for another connection's write lock (e.g. `roost invoke`
/// running beside the daemon) before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Cheap-to-clone handle to the host database: one `rusqlite::Connection` behind a mutex,
/// shared by the KV capability, the outbox, the gateways and the supervisor.
///
/// Async code never calls the synchronous methods directly: every commit fsyncs
/// (`synchronous = FULL`) and may wait up to 5 s for another process's lock, which must not
/// stall a tokio worker. It hands the work to the store's own thread instead, with
/// [`Store::run`] (and waits) or [`Store::submit`] (and does not); the work runs there in
/// the order it was handed over, and work handed over together is committed together
/// (one fsync for a burst: see `group_commit`). The mutex is `std::sync::Mutex`: it is held only for short
/// synchronous SQLite work, never across an `.await`.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Shared>,
}

struct Shared {
    backend: Backend,
    /// The store thread's queue; the thread ends when the last handle (and so this sender)
    /// is gone.
    jobs: std::sync::mpsc::Sender<group_commit::Handed>,
}

/// Where the data lives: a SQLite file (the default, in the data dir) or a Postgres
/// database (`[store] url`). Every public method of [`Store`] asks this first, so callers
/// never know which.
enum Backend {
    Sqlite {
        /// For messages: the file, or `:memory:`.
        path: PathBuf,
        conn: Mutex<Connection>,
    },
    Postgres(postgres::Postgres),
}

/// The backend a method works on, its SQLite connection already locked.
enum Db<'a> {
    Sqlite(MutexGuard<'a, Connection>),
    Postgres(&'a postgres::Postgres),
}

/// One operation of an atomic [`Store::kv_batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    /// Write `value` under the key, replacing any old value.
    Set(String, Vec<u8>),
    /// Remove the key; removing a missing key is not an error.
    Delete(String),
}

/// What one plugin's KV writes are held to (its `kv_mb` and `kv_value_kb`), so a plugin
/// with no grants cannot fill the host's disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvLimits {
    /// Most bytes of keys (UTF-8) plus values the namespace may hold.
    pub max_bytes: u64,
    /// Largest single value, in bytes.
    pub max_value_bytes: u64,
}

impl KvLimits {
    /// No limits: for the host's own namespaces and for tests.
    pub const UNLIMITED: KvLimits = KvLimits {
        max_bytes: u64::MAX,
        max_value_bytes: u64::MAX,
    };
}

/// The most one target's queue may hold (`[outbox] max_messages` and `max_mb`); past
/// either, its oldest messages are dropped so the newest survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxCaps {
    /// Messages kept per target.
    pub max_messages: u64,
    /// Payload bytes kept per target.
    pub max_bytes: u64,
}

impl OutboxCaps {
    /// No caps: for tests and for tools that must never drop anything.
    pub const UNLIMITED: OutboxCaps = OutboxCaps {
        max_messages: u64::MAX,
        max_bytes: u64::MAX,
    };
}

/// What [`Store::outbox_push_capped`] did: the new message's id and how many of the
/// target's oldest messages it pushed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// Row id of the message just queued.
    pub id: i64,
    /// Older messages of the same target dropped to stay within the caps.
    pub dropped: u64,
}

/// Where a check for an earlier post of a queued message starts ([`Store::outbox_check_from`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckFrom {
    /// The message is no longer queued: delivered and removed meanwhile (by this hub or
    /// another), or dropped by a cap. Nothing to post.
    Gone,
    /// It is queued. The platform id of the last post to its target whose removal is on
    /// disk, if any: the message can only have been posted after it, since its target's
    /// messages go out in queue order and are removed, with that id, in one write.
    After(Option<String>),
}

impl CheckFrom {
    fn new(queued: bool, last_post: Option<String>) -> Self {
        if queued {
            CheckFrom::After(last_post)
        } else {
            CheckFrom::Gone
        }
    }
}

/// How full one target's queue is, for the caps and for `!status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetUsage {
    /// The target, `console` or `<gateway>:<channel id>`.
    pub target: String,
    /// Messages waiting.
    pub messages: u64,
    /// Their payload bytes.
    pub bytes: u64,
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
    /// Delivery attempts so far, each counted before it is made (so one cut short by a
    /// crash counts too).
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
    /// The store's own thread could not be started.
    #[error("cannot start the database thread: {source}")]
    Thread {
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The store's thread ended (a panic in store work) before answering.
    #[error("the database thread is gone")]
    ThreadGone,
    /// The work ran, but the transaction it was grouped into was not committed, so what it
    /// wrote is gone.
    #[error("database write not committed: {reason}")]
    NotCommitted {
        /// Why the group failed.
        reason: String,
    },
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
    /// The Postgres database (`[store] url`) could not be reached or refused the login;
    /// `detail` is the server's or the network's reason (never the password).
    #[error("cannot connect to the store database {target}: {detail}")]
    Connect {
        /// `postgres://user@host:port/db`.
        target: String,
        /// Why, e.g. "FATAL: password authentication failed for user \"roost\"".
        detail: String,
        /// What the client said.
        #[source]
        source: ::postgres::Error,
    },
    /// The Postgres password could not be had (`password_file` unreadable or readable by
    /// others). The message names the file, never the password.
    #[error("[store] password: {reason}")]
    Password {
        /// What is wrong and what to do.
        reason: String,
    },
    /// `[store] url` is not a Postgres URL the client understands.
    #[error("[store] url is not a valid Postgres URL: {detail}")]
    Url {
        /// What the parser said.
        detail: String,
    },
    /// Another roost version is migrating the Postgres database's schema now; starting on
    /// it could run this version's code against the other's schema.
    #[error(
        "store database {target} is being migrated by roost {version} now; start this roost {ours} once that has finished, and only if it is not older"
    )]
    MigratingElsewhere {
        /// `postgres://user@host:port/db`.
        target: String,
        /// The version of the roost migrating it.
        version: String,
        /// This roost's version.
        ours: String,
    },
    /// The Postgres database was migrated by a newer roost; refused, as for SQLite.
    #[error(
        "store database {target} has schema version {found}, newer than this roost knows ({known}); upgrade roost or point [store] url at another database"
    )]
    PostgresTooNew {
        /// `postgres://user@host:port/db`.
        target: String,
        /// The highest version recorded in `roost_schema`.
        found: u32,
        /// The newest version this build can migrate to.
        known: u32,
    },
    /// A Postgres schema migration failed; its transaction rolled back.
    #[error("store database {target}: migration to schema version {version} failed: {detail}")]
    MigratePostgres {
        /// `postgres://user@host:port/db`.
        target: String,
        /// The version being migrated to.
        version: u32,
        /// What the server said.
        detail: String,
        /// What the client said.
        #[source]
        source: ::postgres::Error,
    },
    /// A Postgres query failed.
    #[error("database error while {doing}: {detail}")]
    Postgres {
        /// What was being done, e.g. "writing a kv entry".
        doing: &'static str,
        /// What the server (or the connection) said.
        detail: String,
        /// What the client said.
        #[source]
        source: ::postgres::Error,
    },
    /// `roost store copy` was pointed at a store that already holds rows: a copy never
    /// mixes with or overwrites a hub's own state.
    #[error(
        "store {target} already holds {rows} rows (KV, queued messages or history); copy only into an empty store: a new database or file"
    )]
    NotEmpty {
        /// Where the copy was going.
        target: String,
        /// The rows found there.
        rows: u64,
    },
    /// A row cannot be carried to the other backend as it is.
    #[error("cannot copy the store: {reason}")]
    NotCopyable {
        /// Which row, and why.
        reason: String,
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

/// Why a plugin's KV write was refused. The first two are the plugin's doing and go back
/// to it as `too-large`; `Store` is the host's and is logged.
#[derive(Debug, thiserror::Error)]
pub enum KvWriteError {
    /// One value is larger than `kv_value_kb` allows.
    #[error("value of {size} bytes is over the limit of {limit} bytes for one value (kv_value_kb)")]
    ValueTooLarge {
        /// The value's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The write would take the namespace past `kv_mb`; nothing of it was stored.
    #[error(
        "kv quota exceeded: the write needs {needed} more bytes and {used} of {quota} are in use (kv_mb); delete keys to make room"
    )]
    QuotaExceeded {
        /// Bytes the write would add.
        needed: u64,
        /// Bytes in use before it.
        used: u64,
        /// The quota.
        quota: u64,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Wraps a rusqlite error with what was being done; `Copy`, so one function can map
/// several errors the same way.
fn sql(doing: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + Copy {
    move |source| StoreError::Sql { doing, source }
}

/// Converts a caller's `limit` to SQLite's integer type; anything too large means "all".
/// A write transaction of one store method: its own `BEGIN IMMEDIATE` (the write lock
/// taken up front, so a second process waits its busy timeout instead of failing on lock
/// upgrade), or a savepoint when the store's thread runs it inside a group commit. Either
/// way it commits or, dropped, rolls back just its own writes.
enum Write<'c> {
    Own(Transaction<'c>),
    Nested(Savepoint<'c>),
}

impl std::ops::Deref for Write<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            Write::Own(tx) => tx,
            Write::Nested(sp) => sp,
        }
    }
}

impl Write<'_> {
    fn commit(self) -> Result<(), rusqlite::Error> {
        match self {
            Write::Own(tx) => tx.commit(),
            Write::Nested(sp) => sp.commit(),
        }
    }
}

fn begin_write(conn: &mut Connection) -> Result<Write<'_>, rusqlite::Error> {
    if conn.is_autocommit() {
        conn.transaction_with_behavior(TransactionBehavior::Immediate)
            .map(Write::Own)
    } else {
        conn.savepoint().map(Write::Nested)
    }
}

/// Runs `work` with `synchronous = NORMAL`, then puts `FULL` back: for the delivery
/// worker's bookkeeping (attempt counts, sent marks, last errors), a commit per batch of
/// messages delivered and per retry. In WAL mode such a commit is written to the WAL before it returns, so
/// it survives roost being killed (`kill -9`, a panic, the OOM killer); only an OS crash or
/// power loss can undo it, and undoing one of these means a message may be posted twice,
/// never lost. Messages queued and KV writes keep their fsync (`FULL`): those must survive
/// even that. The next `FULL` commit syncs the WAL frames written here as well.
fn without_fsync<T>(
    conn: &mut Connection,
    work: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
) -> Result<T, rusqlite::Error> {
    if !conn.is_autocommit() {
        // Inside a group (see `group_commit`): its one commit is fsynced for all, and
        // SQLite refuses to change the level inside a transaction.
        return work(conn);
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let result = work(conn);
    let restored = conn.pragma_update(None, "synchronous", "FULL");
    let value = result?;
    restored?;
    Ok(value)
}

/// Up to `limit` messages waiting for `target` on `conn`, oldest first.
fn pending(
    conn: &Connection,
    target: &str,
    limit: usize,
) -> Result<Vec<OutboxItem>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, target, plugin, payload, attempts, created_at FROM outbox \
         WHERE target = ?1 ORDER BY id LIMIT ?2",
    )?;
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
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Logs a failure nobody waits for any more (its caller, a plugin call, timed out
/// meanwhile), so that it is not lost.
fn log_unheard<T, E: std::fmt::Display>(result: Result<T, E>) {
    if let Err(e) = result {
        tracing::warn!("a store operation failed after its caller had gone: {e}");
    }
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
    ///   would survive only the former). The delivery worker's bookkeeping alone commits
    ///   with NORMAL ([`without_fsync`]), and writes handed to the store's thread together
    ///   share one commit (`group_commit`).
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
        Self::start(Backend::Sqlite {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// Connects to the Postgres database at `url` (`[store] url`) with `password` (from
    /// `ROOST_STORE_PASSWORD` or `password_file`; `None` leaves the URL's own, if any) and
    /// brings its schema up to date. Fails with [`StoreError::Connect`] when the server
    /// cannot be reached or refuses the login.
    pub fn open_postgres(url: &str, password: Option<&str>) -> Result<Store, StoreError> {
        Self::start(Backend::Postgres(postgres::Postgres::connect(
            url, password,
        )?))
    }

    /// Starts the store's thread over an open, migrated backend.
    fn start(backend: Backend) -> Result<Store, StoreError> {
        let (jobs, queue) = std::sync::mpsc::channel::<group_commit::Handed>();
        let inner = Arc::new(Shared { backend, jobs });
        // The thread holds the store weakly, so dropping the last handle ends it.
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("roost-store".into())
            .spawn(move || group_commit::serve(weak, queue))
            .map_err(|source| StoreError::Thread { source })?;
        Ok(Store { inner })
    }

    /// Runs `work` on the store's thread and waits for its result without blocking the
    /// async worker. Work runs in the order it was handed over; the result comes once what
    /// `work` wrote is committed.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        self.run_then(work, drop, false).await
    }

    /// [`Store::run`] for work that can fail, with one error for both. A failure nobody
    /// waits for any more (its caller, a plugin call, timed out meanwhile) is logged, not
    /// lost.
    pub async fn try_run<T, E>(
        &self,
        work: impl FnOnce(&Store) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + std::fmt::Display + Send + 'static,
    {
        self.run_then(work, log_unheard, false).await?
    }

    /// [`Store::try_run`] for work that commits itself without an fsync (see
    /// [`without_fsync`]) and may run before writes handed over just before it: it is not
    /// grouped with them, so it does not wait for their fsync. The delivery worker's count
    /// of an attempt is such work; during a burst of replies, each queued with an fsync,
    /// it would otherwise wait for one fsync per message delivered.
    pub async fn try_run_ahead<T, E>(
        &self,
        work: impl FnOnce(&Store) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + std::fmt::Display + Send + 'static,
    {
        self.run_then(work, log_unheard, true).await?
    }

    /// [`Store::run`], handing the result to `unheard` when the caller has gone, run
    /// `ahead` of its group or in it.
    async fn run_then<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> T + Send + 'static,
        unheard: impl FnOnce(T) + Send + 'static,
        ahead: bool,
    ) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: group_commit::Job = Box::new(move |store| {
            let value = work(store);
            Some(Box::new(move |committed: Result<(), String>| {
                // A group that failed to commit is logged by the store's thread.
                if let Err(Ok(value)) = tx.send(committed.map(|()| value)) {
                    unheard(value);
                }
            }))
        });
        self.hand_over(group_commit::Handed { job, ahead });
        rx.await
            .map_err(|_| StoreError::ThreadGone)?
            .map_err(|reason| StoreError::NotCommitted { reason })
    }

    /// Hands `work` to the store's thread and returns at once (a history record, whose
    /// failure `work` logs itself; a group that fails to commit is logged by the thread).
    pub fn submit(&self, work: impl FnOnce(&Store) + Send + 'static) {
        let job: group_commit::Job = Box::new(move |store| {
            work(store);
            None
        });
        self.hand_over(group_commit::Handed { job, ahead: false });
    }

    fn hand_over(&self, job: group_commit::Handed) {
        if self.inner.jobs.send(job).is_err() {
            tracing::error!("the store's thread is gone; a write was not made");
        }
    }

    /// The backend, its SQLite connection locked for one short piece of work. A panic
    /// while the lock was held left no half-done state behind (an open transaction rolls
    /// back when dropped), so a poisoned lock is taken over rather than turned into a
    /// second panic.
    fn db(&self) -> Db<'_> {
        match &self.inner.backend {
            Backend::Sqlite { conn, .. } => {
                Db::Sqlite(conn.lock().unwrap_or_else(PoisonError::into_inner))
            }
            Backend::Postgres(pg) => Db::Postgres(pg),
        }
    }

    /// The SQLite connection, locked; `None` on Postgres (group commit is SQLite's).
    fn sqlite(&self) -> Option<MutexGuard<'_, Connection>> {
        match self.db() {
            Db::Sqlite(conn) => Some(conn),
            Db::Postgres(_) => None,
        }
    }

    /// The SQLite connection of a test store.
    #[cfg(test)]
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.sqlite().expect("a SQLite store")
    }

    /// Where the data is, for messages: the SQLite file or the Postgres database.
    pub fn location(&self) -> String {
        match &self.inner.backend {
            Backend::Sqlite { path, .. } => path.display().to_string(),
            Backend::Postgres(pg) => pg.target().to_string(),
        }
    }

    /// The schema version (`PRAGMA user_version`) of the open database, for `roost status`
    /// and tests.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        match self.db() {
            Db::Sqlite(conn) => user_version(&conn).map_err(sql("reading the schema version")),
            Db::Postgres(pg) => pg.schema_version(),
        }
    }

    /// The value of `key` in `plugin`'s namespace, if set.
    pub fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.kv_get(plugin, key),
        };
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
        let conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.kv_set(plugin, key, value),
        };
        set(&conn, plugin, key, value).map_err(sql("writing a kv entry"))
    }

    /// Removes `key` from `plugin`'s namespace; `true` if it was there.
    pub fn kv_delete(&self, plugin: &str, key: &str) -> Result<bool, StoreError> {
        let conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.kv_delete(plugin, key),
        };
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
        let conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.kv_list(plugin, prefix, limit),
        };
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
    /// them take effect or, if any fails, none does. `limits` is checked before each write:
    /// a value over `max_value_bytes` refuses the batch before the lock is taken, and a
    /// write that would take the namespace past `max_bytes` refuses it before that write
    /// is made (deletes and shrinking overwrites always pass, so a plugin over a lowered
    /// quota can make room). Usage comes from `kv_usage`, which triggers keep in the same
    /// transaction, so the check is two primary-key lookups per write.
    pub fn kv_batch(
        &self,
        plugin: &str,
        ops: &[KvOp],
        limits: &KvLimits,
    ) -> Result<(), KvWriteError> {
        for op in ops {
            if let KvOp::Set(_, value) = op {
                check_value_size(value, limits)?;
            }
        }
        let mut conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.kv_batch(plugin, ops, limits),
        };
        let doing = sql("applying a kv batch");
        let tx = begin_write(&mut conn).map_err(doing)?;
        for op in ops {
            match op {
                KvOp::Set(key, value) => {
                    check_quota(&tx, plugin, key, value, limits)?;
                    set(&tx, plugin, key, value).map_err(doing)?;
                }
                KvOp::Delete(key) => {
                    delete(&tx, plugin, key).map_err(doing)?;
                }
            }
        }
        // Dropping `tx` on an early return above rolls the batch back.
        tx.commit().map_err(doing)?;
        Ok(())
    }

    /// How many keys `plugin` has, for quotas and status.
    pub fn kv_count(&self, plugin: &str) -> Result<u64, StoreError> {
        let conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.kv_count(plugin),
        };
        let doing = sql("counting kv keys");
        let mut stmt = conn
            .prepare_cached("SELECT COUNT(*) FROM kv WHERE plugin = ?1")
            .map_err(doing)?;
        let n: i64 = stmt.query_row([plugin], |row| row.get(0)).map_err(doing)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Total bytes of `plugin`'s keys (UTF-8) and values, for quotas: the running total
    /// kept in `kv_usage`, one lookup.
    pub fn kv_bytes(&self, plugin: &str) -> Result<u64, StoreError> {
        match self.db() {
            Db::Sqlite(conn) => kv_usage(&conn, plugin).map_err(sql("measuring kv usage")),
            Db::Postgres(pg) => pg.kv_bytes(plugin),
        }
    }

    /// Queues `payload` (JSON text) from `plugin` for `target`, with no cap; returns its
    /// id. Once this returns, the message survives a crash and will be delivered in order.
    /// Queues fed by plugins go through [`Store::outbox_push_capped`].
    pub fn outbox_push(
        &self,
        target: &str,
        plugin: &str,
        payload: &str,
    ) -> Result<i64, StoreError> {
        self.outbox_push_capped(target, plugin, payload, &OutboxCaps::UNLIMITED)
            .map(|pushed| pushed.id)
    }

    /// Queues `payload` like [`Store::outbox_push`], then, in the same transaction, drops
    /// the target's oldest messages while its queue is over either of `caps` (never the
    /// message just queued), and records how many in the history (one entry per run of
    /// drops for a target, its count kept up to date, so a long outage cannot flood the
    /// history). The caller logs it.
    pub fn outbox_push_capped(
        &self,
        target: &str,
        plugin: &str,
        payload: &str,
        caps: &OutboxCaps,
    ) -> Result<Pushed, StoreError> {
        let mut conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.outbox_push_capped(target, plugin, payload, caps),
        };
        let doing = sql("queueing an outgoing message");
        let tx = begin_write(&mut conn).map_err(doing)?;
        let id = {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO outbox (target, plugin, payload, created_at) \
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(doing)?;
            stmt.execute(params![target, plugin, payload, now_ms()])
                .map_err(doing)?;
            tx.last_insert_rowid()
        };
        let dropped = trim_outbox(&tx, target, id, caps)
            .map_err(sql("dropping the oldest queued messages"))?;
        if dropped > 0 {
            record_drops(&tx, target, dropped, caps).map_err(sql("recording dropped messages"))?;
        }
        tx.commit().map_err(doing)?;
        Ok(Pushed { id, dropped })
    }

    /// Every target's queue: messages and payload bytes, sorted by target. Read from the
    /// running totals, so it costs one short scan of a table with a row per target.
    pub fn outbox_usage(&self) -> Result<Vec<TargetUsage>, StoreError> {
        let conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.outbox_usage(),
        };
        let doing = sql("reading outbox usage");
        let mut stmt = conn
            .prepare_cached("SELECT target, messages, bytes FROM outbox_usage ORDER BY target")
            .map_err(doing)?;
        stmt.query_map([], |row| {
            let messages: i64 = row.get(1)?;
            let bytes: i64 = row.get(2)?;
            Ok(TargetUsage {
                target: row.get(0)?,
                messages: u64::try_from(messages).unwrap_or(0),
                bytes: u64::try_from(bytes).unwrap_or(0),
            })
        })
        .and_then(Iterator::collect)
        .map_err(doing)
    }

    /// Up to `limit` messages waiting for `target`, oldest first: what its gateway delivers
    /// next.
    pub fn outbox_pending(
        &self,
        target: &str,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        match self.db() {
            Db::Sqlite(conn) => pending(&conn, target, limit).map_err(sql("reading the outbox")),
            Db::Postgres(pg) => pg.outbox_pending(target, limit),
        }
    }

    /// The delivery worker's one store call per batch: removes the messages in `sent` (the
    /// ones it delivered since its last call) and keeps `last_post`, the platform id of the
    /// last of them, as [`Store::outbox_last_post`] unless a later one is kept already (a
    /// hub fenced off mid-post writes after the new leader; ids compare as numbers: Discord
    /// snowflakes, Slack timestamps); then takes the next `limit` messages
    /// queued for `target`, oldest first, counting an attempt for each before any is tried:
    /// if roost dies between a platform taking one and its removal, the next run sees the
    /// attempt and checks whether it went through instead of posting it again. The messages
    /// come as they were before this count. One commit, without an fsync (see
    /// [`without_fsync`]).
    pub fn outbox_take(
        &self,
        target: &str,
        sent: &[i64],
        last_post: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.outbox_take(target, sent, last_post, limit),
        };
        without_fsync(&mut conn, |conn| {
            let tx = begin_write(conn)?;
            let mut remove = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
            for id in sent {
                remove.execute([id])?;
            }
            drop(remove);
            if let Some(post) = last_post {
                tx.prepare_cached(
                    "INSERT INTO outbox_posted (target, post) VALUES (?1, ?2) \
                     ON CONFLICT (target) DO UPDATE SET post = excluded.post \
                     WHERE (length(excluded.post), excluded.post) \
                         > (length(outbox_posted.post), outbox_posted.post)",
                )?
                .execute(params![target, post])?;
            }
            let items = pending(&tx, target, limit)?;
            if let Some(last) = items.last() {
                // Under the write lock the target's messages up to the last taken are
                // exactly those taken.
                tx.prepare_cached(
                    "UPDATE outbox SET attempts = attempts + 1 WHERE target = ?1 AND id <= ?2",
                )?
                .execute(params![target, last.id])?;
            }
            tx.commit()?;
            Ok(items)
        })
        .map_err(sql("taking messages to deliver"))
    }

    /// Where a gateway's check for an earlier post of queued message `id` starts, read in
    /// one snapshot with whether it is queued at all (another hub may have delivered and
    /// removed it since this one took it).
    pub fn outbox_check_from(&self, id: i64, target: &str) -> Result<CheckFrom, StoreError> {
        let conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.outbox_check_from(id, target),
        };
        conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE id = ?1), \
                    (SELECT post FROM outbox_posted WHERE target = ?2)",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![id, target], |row| {
                Ok(CheckFrom::new(row.get(0)?, row.get(1)?))
            })
        })
        .map_err(sql("reading the last post"))
    }

    /// Before the retry of message `id`: whether it is still queued (a cap may have dropped
    /// it while it waited), counting an attempt if it is, as [`Store::outbox_take`] did for
    /// its first. One commit, without an fsync (see [`without_fsync`]).
    pub fn outbox_attempt(&self, id: i64) -> Result<bool, StoreError> {
        let mut conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.outbox_attempt(id),
        };
        without_fsync(&mut conn, |conn| {
            conn.prepare_cached("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?1")?
                .execute([id])
        })
        .map(|counted| counted > 0)
        .map_err(sql("recording a delivery attempt"))
    }

    /// Takes back an attempt [`Store::outbox_take`] or [`Store::outbox_attempt`] counted for
    /// message `id` that was not made after all (its worker stopped before the try), so the
    /// next run does not take it for one that may have gone out.
    pub fn outbox_attempt_not_made(&self, id: i64) -> Result<(), StoreError> {
        let conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.outbox_attempt_not_made(id),
        };
        conn.prepare_cached(
            "UPDATE outbox SET attempts = attempts - 1 WHERE id = ?1 AND attempts > 0",
        )
        .and_then(|mut stmt| stmt.execute([id]))
        .map(drop)
        .map_err(sql("taking back an attempt not made"))
    }

    /// Every target with messages waiting, and how many, sorted by target: the delivery
    /// loop's work list and the queue depth `!status` shows.
    pub fn outbox_targets(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.outbox_targets(),
        };
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
    /// no longer there (already sent) is not an error. Committed without an fsync (see
    /// [`without_fsync`]): after an OS crash the message may be posted again, never lost.
    pub fn outbox_mark_sent(&self, id: i64) -> Result<(), StoreError> {
        let mut conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.outbox_mark_sent(id).map(|n| not_queued(n, id, "sent")),
        };
        let doing = sql("removing a delivered message");
        let removed = without_fsync(&mut conn, |conn| {
            conn.prepare_cached("DELETE FROM outbox WHERE id = ?1")?
                .execute([id])
        })
        .map_err(doing)?;
        if removed == 0 {
            tracing::debug!(id, "outbox: marked sent but was not queued");
        }
        Ok(())
    }

    /// Records a failed delivery of message `id`: it stays queued (in place, so order is
    /// kept), its attempt count goes up and `error` is kept as its last error.
    pub fn outbox_mark_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        let conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => {
                return pg
                    .outbox_mark_failed(id, error)
                    .map(|n| not_queued(n, id, "failed"));
            }
        };
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

    /// Keeps `error` as the last error of message `id`, which stays queued in place.
    pub fn outbox_note_error(&self, id: i64, error: &str) -> Result<(), StoreError> {
        let mut conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.outbox_note_error(id, error),
        };
        without_fsync(&mut conn, |conn| {
            conn.prepare_cached("UPDATE outbox SET last_error = ?2 WHERE id = ?1")?
                .execute(params![id, error])
        })
        .map_err(sql("recording a failed delivery"))?;
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
        let mut conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.history_push(plugin, kind, detail),
        };
        let detail = cut_detail(detail, MAX_HISTORY_DETAIL);
        let doing = sql("recording an event");
        let tx = begin_write(&mut conn).map_err(doing)?;
        insert_history(&tx, plugin, kind, detail).map_err(doing)?;
        tx.commit().map_err(doing)
    }

    /// The newest `limit` events, newest first.
    pub fn history_recent(&self, limit: usize) -> Result<Vec<HistoryItem>, StoreError> {
        let conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.history_recent(limit),
        };
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
        let conn = match self.db() {
            Db::Sqlite(conn) => conn,
            Db::Postgres(pg) => return pg.integrity_check(),
        };
        let doing = sql("checking database integrity");
        let mut stmt = conn.prepare("PRAGMA integrity_check").map_err(doing)?;
        let lines: Vec<String> = stmt
            .query_map([], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(doing)?;
        let report = lines.join("\n");
        if report != "ok" {
            tracing::error!(path = %self.location(), %report, "database integrity check failed");
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

/// Refuses a value larger than `limits` allows.
fn check_value_size(value: &[u8], limits: &KvLimits) -> Result<(), KvWriteError> {
    let size = u64::try_from(value.len()).unwrap_or(u64::MAX);
    if size > limits.max_value_bytes {
        return Err(KvWriteError::ValueTooLarge {
            size,
            limit: limits.max_value_bytes,
        });
    }
    Ok(())
}

/// Refuses writing `value` under `key` when it would grow `plugin`'s namespace past
/// `limits.max_bytes`; a write that does not grow it always passes.
fn check_quota(
    conn: &Connection,
    plugin: &str,
    key: &str,
    value: &[u8],
    limits: &KvLimits,
) -> Result<(), KvWriteError> {
    if limits.max_bytes == u64::MAX {
        return Ok(());
    }
    let doing = sql("checking the kv quota");
    let old = entry_bytes(conn, plugin, key).map_err(doing)?;
    quota_allows(old, key, value, limits, || {
        kv_usage(conn, plugin).map_err(doing)
    })
}

/// The quota decision both backends share: writing `value` under `key` over an entry of
/// `old` bytes needs the growth, if any, to fit beside `used()` (read only when it grows).
fn quota_allows(
    old: u64,
    key: &str,
    value: &[u8],
    limits: &KvLimits,
    used: impl FnOnce() -> Result<u64, StoreError>,
) -> Result<(), KvWriteError> {
    let new = u64::try_from(key.len() + value.len()).unwrap_or(u64::MAX);
    let needed = new.saturating_sub(old);
    if needed == 0 {
        return Ok(());
    }
    let used = used()?;
    if used.saturating_add(needed) > limits.max_bytes {
        return Err(KvWriteError::QuotaExceeded {
            needed,
            used,
            quota: limits.max_bytes,
        });
    }
    Ok(())
}

/// Bytes `key` and its value take in `plugin`'s namespace now; 0 when unset. `length()`
/// of a blob column reads its size from the record header, not the value itself.
fn entry_bytes(conn: &Connection, plugin: &str, key: &str) -> Result<u64, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT length(CAST(key AS BLOB)) + length(value) FROM kv WHERE plugin = ?1 AND key = ?2",
    )?;
    let n: Option<i64> = stmt
        .query_row(params![plugin, key], |row| row.get(0))
        .optional()?;
    Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// `plugin`'s running total from `kv_usage`; 0 for a namespace never written.
fn kv_usage(conn: &Connection, plugin: &str) -> Result<u64, rusqlite::Error> {
    let mut stmt = conn.prepare_cached("SELECT bytes FROM kv_usage WHERE plugin = ?1")?;
    let n: Option<i64> = stmt.query_row([plugin], |row| row.get(0)).optional()?;
    Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// Appends an event and trims the history to the newest [`HISTORY_KEEP`] rows; the caller
/// holds a transaction and has cut `detail`.
fn insert_history(
    conn: &Connection,
    plugin: Option<&str>,
    kind: &str,
    detail: &str,
) -> Result<(), rusqlite::Error> {
    let mut insert = conn
        .prepare_cached("INSERT INTO history (at, plugin, kind, detail) VALUES (?1, ?2, ?3, ?4)")?;
    insert.execute(params![now_ms(), plugin, kind, detail])?;
    let mut trim = conn.prepare_cached(
        "DELETE FROM history WHERE id <= \
         (SELECT id FROM history ORDER BY id DESC LIMIT 1 OFFSET ?1)",
    )?;
    trim.execute([limit_param(HISTORY_KEEP)])?;
    Ok(())
}

/// Messages and payload bytes queued for `target`, from the running totals.
fn target_usage(conn: &Connection, target: &str) -> Result<(u64, u64), rusqlite::Error> {
    let mut stmt =
        conn.prepare_cached("SELECT messages, bytes FROM outbox_usage WHERE target = ?1")?;
    let row: Option<(i64, i64)> = stmt
        .query_row([target], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let (messages, bytes) = row.unwrap_or((0, 0));
    Ok((
        u64::try_from(messages).unwrap_or(0),
        u64::try_from(bytes).unwrap_or(0),
    ))
}

/// Deletes `target`'s oldest messages (older than `newest`, the one just queued) until its
/// queue is within `caps`; how many went.
fn trim_outbox(
    conn: &Connection,
    target: &str,
    newest: i64,
    caps: &OutboxCaps,
) -> Result<u64, rusqlite::Error> {
    let (mut messages, mut bytes) = target_usage(conn, target)?;
    let over = |messages: u64, bytes: u64| messages > caps.max_messages || bytes > caps.max_bytes;
    if !over(messages, bytes) {
        return Ok(0);
    }
    let mut victims = Vec::new();
    {
        let mut oldest = conn.prepare_cached(
            "SELECT id, length(CAST(payload AS BLOB)) FROM outbox \
             WHERE target = ?1 AND id < ?2 ORDER BY id",
        )?;
        let mut rows = oldest.query(params![target, newest])?;
        while over(messages, bytes) {
            let Some(row) = rows.next()? else { break };
            let len: i64 = row.get(1)?;
            victims.push(row.get::<_, i64>(0)?);
            messages = messages.saturating_sub(1);
            bytes = bytes.saturating_sub(u64::try_from(len).unwrap_or(0));
        }
    }
    let mut delete = conn.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
    for id in &victims {
        delete.execute([id])?;
    }
    Ok(u64::try_from(victims.len()).unwrap_or(u64::MAX))
}

/// Records that `dropped` messages of `target` were dropped. While nothing but drops has
/// been recorded since this target's last drop entry, that entry's count grows instead of
/// a new one being added, so a long outage (of one target or of several behind one alias)
/// leaves one line per target, not a thousand.
fn record_drops(
    conn: &Connection,
    target: &str,
    dropped: u64,
    caps: &OutboxCaps,
) -> Result<(), rusqlite::Error> {
    let prefix = format!("{target}: ");
    let mut current = conn.prepare_cached(
        "SELECT id, detail FROM history \
         WHERE kind = ?1 AND plugin IS NULL AND substr(detail, 1, length(?2)) = ?2 \
           AND id > COALESCE((SELECT MAX(id) FROM history WHERE kind != ?1), 0) \
         ORDER BY id DESC LIMIT 1",
    )?;
    let last: Option<(i64, String)> = current
        .query_row(params![OUTBOX_DROPPED, prefix], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let earlier = last.and_then(|(id, detail)| {
        let count = detail.strip_prefix(&prefix)?.split(' ').next()?;
        count.parse::<u64>().ok().map(|n| (id, n))
    });
    let total = dropped.saturating_add(earlier.map_or(0, |(_, n)| n));
    let detail = drops_detail(target, total, caps);
    match earlier {
        Some((id, _)) => {
            let mut update =
                conn.prepare_cached("UPDATE history SET at = ?2, detail = ?3 WHERE id = ?1")?;
            update.execute(params![id, now_ms(), detail])?;
        }
        None => insert_history(conn, None, OUTBOX_DROPPED, &detail)?,
    }
    Ok(())
}

/// The history detail of a run of drops: its target first (how the next drop finds it),
/// then the count.
fn drops_detail(target: &str, total: u64, caps: &OutboxCaps) -> String {
    format!(
        "{target}: {total} oldest queued messages dropped (over [outbox] max_messages = {} or max_mb = {})",
        caps.max_messages,
        caps.max_bytes / (1024 * 1024)
    )
}

/// `detail` cut to at most `max` bytes, at a character boundary.
fn cut_detail(detail: &str, max: usize) -> &str {
    let mut cut = detail.len().min(max);
    while !detail.is_char_boundary(cut) {
        cut -= 1;
    }
    &detail[..cut]
}

/// Logs a bookkeeping mark for a message no longer queued (already sent or dropped).
fn not_queued(changed: u64, id: i64, what: &str) {
    if changed == 0 {
        tracing::debug!(id, "outbox: marked {what} but was not queued");
    }
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

    /// One test's database, opened as often as the test likes.
    enum Fixture {
        Sqlite(tempfile::TempDir),
        Postgres(String),
    }

    impl Fixture {
        fn sqlite() -> Fixture {
            Fixture::Sqlite(tempfile::tempdir().expect("tempdir"))
        }

        fn postgres() -> Fixture {
            Fixture::Postgres(test_pg::fresh_url())
        }

        fn open(&self) -> Store {
            match self {
                Fixture::Sqlite(dir) => Store::open(&dir.path().join("roost.db")).expect("open"),
                Fixture::Postgres(url) => {
                    Store::open_postgres(url, test_pg::server().password.as_deref())
                        .expect("open on postgres")
                }
            }
        }
    }

    /// Generates `on_sqlite::<case>` (a private in-memory database) and `on_postgres::<case>`
    /// (a fresh schema on the test server) for each case `fn(Store)`.
    macro_rules! store_cases {
        ($($case:ident),* $(,)?) => {
            mod on_sqlite {
                $(#[test] fn $case() { super::$case(super::mem()) })*
            }
            mod on_postgres {
                $(#[test] fn $case() { super::$case(super::Fixture::postgres().open()) })*
            }
        };
    }

    /// Like `store_cases!` for cases `fn(&Fixture)` that open their database themselves.
    macro_rules! reopen_cases {
        ($($case:ident),* $(,)?) => {
            mod on_sqlite_reopen {
                $(#[test] fn $case() { super::$case(&super::Fixture::sqlite()) })*
            }
            mod on_postgres_reopen {
                $(#[test] fn $case() { super::$case(&super::Fixture::postgres()) })*
            }
        };
    }

    // Every case below runs on both backends, each test with a database of its own.
    store_cases!(
        a_new_database_is_at_the_latest_schema_version,
        kv_set_get_delete_round_trip,
        one_plugin_cannot_see_another_plugins_keys,
        kv_list_matches_prefixes_literally_and_sorts,
        kv_list_handles_prefixes_ending_in_the_largest_characters,
        kv_batch_applies_every_operation_in_order,
        a_failing_kv_batch_leaves_nothing_behind,
        kv_bytes_counts_utf8_keys_and_values,
        kv_usage_follows_inserts_overwrites_deletes_and_batches,
        a_value_over_the_value_limit_is_refused_and_not_stored,
        writes_past_the_quota_are_refused_before_they_are_stored,
        a_batch_that_would_pass_the_quota_leaves_nothing_behind,
        a_lowered_quota_still_lets_a_plugin_shrink_and_delete,
        past_max_messages_the_oldest_of_that_target_are_dropped,
        past_max_bytes_the_oldest_are_dropped_but_never_the_new_one,
        drops_are_recorded_once_per_run_with_their_count,
        outbox_usage_follows_deliveries_and_forgets_empty_targets,
        the_outbox_delivers_per_target_in_order_and_keeps_failures,
        an_attempt_not_made_is_taken_back_and_never_below_zero,
        a_batch_taken_counts_its_own_messages_once_and_removes_those_sent,
        history_keeps_the_newest_thousand_newest_first,
        history_details_are_capped_at_a_character_boundary,
        clones_share_one_database,
        a_broken_running_total_fails_the_integrity_check,
    );
    // These open the same database more than once.
    reopen_cases!(
        kv_usage_survives_reopening,
        reopening_keeps_data_and_does_not_migrate_again,
        a_database_from_a_newer_roost_is_refused,
        quotas_hold_when_two_handles_write_at_once,
    );

    fn mem() -> Store {
        Store::open_in_memory().expect("in-memory store")
    }

    /// The newest schema version the store's backend knows.
    fn latest(s: &Store) -> usize {
        match s.db() {
            Db::Sqlite(_) => MIGRATIONS.len(),
            Db::Postgres(_) => postgres::MIGRATIONS.len(),
        }
    }

    fn a_new_database_is_at_the_latest_schema_version(s: Store) {
        assert_eq!(s.schema_version().expect("version") as usize, latest(&s));
        assert_eq!(s.integrity_check().expect("check"), "ok");
    }

    fn a_broken_running_total_fails_the_integrity_check(s: Store) {
        s.kv_set("p", "k", b"v").expect("set");
        s.outbox_push("t", "p", "x").expect("push");
        assert_eq!(s.integrity_check().expect("check"), "ok");
        match s.db() {
            Db::Sqlite(_) => return, // `PRAGMA integrity_check` checks pages, not totals.
            Db::Postgres(pg) => pg
                .execute_raw("UPDATE kv_usage SET bytes = bytes + 1")
                .expect("break the total"),
        }
        let report = s.integrity_check().expect("check");
        assert!(report.contains("kv_usage of plugin p"), "{report}");
    }

    fn kv_set_get_delete_round_trip(s: Store) {
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

    fn one_plugin_cannot_see_another_plugins_keys(s: Store) {
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

    fn kv_list_matches_prefixes_literally_and_sorts(s: Store) {
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

    fn kv_list_handles_prefixes_ending_in_the_largest_characters(s: Store) {
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

    fn kv_batch_applies_every_operation_in_order(s: Store) {
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
            &KvLimits::UNLIMITED,
        )
        .expect("batch");
        assert_eq!(s.kv_get("p", "a").expect("get"), Some(b"2".to_vec()));
        assert_eq!(s.kv_get("p", "b").expect("get"), Some(b"3".to_vec()));
        assert_eq!(s.kv_get("p", "gone").expect("get"), None);
        s.kv_batch("p", &[], &KvLimits::UNLIMITED)
            .expect("empty batch");
    }

    fn a_failing_kv_batch_leaves_nothing_behind(s: Store) {
        s.kv_set("p", "kept", b"old").expect("set");
        // Make the third operation fail inside the database, as a full disk would.
        match s.db() {
            Db::Sqlite(conn) => conn
                .execute_batch(
                    "CREATE TRIGGER fail_boom BEFORE INSERT ON kv WHEN NEW.key = 'boom' \
                     BEGIN SELECT RAISE(ABORT, 'simulated failure'); END;",
                )
                .expect("trigger"),
            Db::Postgres(pg) => pg
                .execute_raw(
                    "CREATE FUNCTION fail_boom() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN IF NEW.key = 'boom'::bytea THEN RAISE EXCEPTION 'simulated failure'; \
                     END IF; RETURN NEW; END $$; \
                     CREATE TRIGGER fail_boom BEFORE INSERT ON kv \
                     FOR EACH ROW EXECUTE FUNCTION fail_boom();",
                )
                .expect("trigger"),
        }
        let err = s
            .kv_batch(
                "p",
                &[
                    KvOp::Set("new".into(), b"1".to_vec()),
                    KvOp::Delete("kept".into()),
                    KvOp::Set("boom".into(), b"x".to_vec()),
                ],
                &KvLimits::UNLIMITED,
            )
            .expect_err("batch must fail");
        assert!(err.to_string().contains("applying a kv batch"), "{err}");
        assert_eq!(s.kv_get("p", "new").expect("get"), None);
        assert_eq!(s.kv_get("p", "kept").expect("get"), Some(b"old".to_vec()));
        // The store is still usable afterwards.
        s.kv_set("p", "after", b"ok").expect("set after failure");
    }

    fn kv_bytes_counts_utf8_keys_and_values(s: Store) {
        assert_eq!(s.kv_bytes("p").expect("bytes"), 0);
        s.kv_set("p", "é", b"abc").expect("set"); // 2 + 3
        s.kv_set("p", "k", b"").expect("set"); // 1 + 0
        s.kv_set("q", "other", b"0123456789").expect("set");
        assert_eq!(s.kv_bytes("p").expect("bytes"), 6);
    }

    /// The running total must equal a full count of the rows, whatever was done.
    fn assert_usage_matches_rows(s: &Store, plugin: &str) {
        let scanned: i64 = match s.db() {
            Db::Sqlite(conn) => conn
                .query_row(
                    "SELECT COALESCE(SUM(length(CAST(key AS BLOB)) + length(value)), 0) \
                     FROM kv WHERE plugin = ?1",
                    [plugin],
                    |row| row.get(0),
                )
                .expect("scan"),
            Db::Postgres(pg) => pg
                .query_i64(
                    "SELECT COALESCE(SUM(octet_length(key) + octet_length(value)), 0)::bigint \
                     FROM kv WHERE plugin = $1",
                    plugin,
                )
                .expect("scan"),
        };
        assert_eq!(s.kv_bytes(plugin).expect("bytes") as i64, scanned);
    }

    fn limits(max_bytes: u64, max_value_bytes: u64) -> KvLimits {
        KvLimits {
            max_bytes,
            max_value_bytes,
        }
    }

    fn set_op(key: &str, len: usize) -> KvOp {
        KvOp::Set(key.to_string(), vec![7u8; len])
    }

    fn kv_usage_follows_inserts_overwrites_deletes_and_batches(s: Store) {
        s.kv_set("p", "a", &[1; 100]).expect("set"); // 101
        assert_eq!(s.kv_bytes("p").expect("bytes"), 101);
        s.kv_set("p", "a", &[1; 10]).expect("shrink"); // 11
        assert_eq!(s.kv_bytes("p").expect("bytes"), 11);
        s.kv_batch(
            "p",
            &[set_op("bb", 20), KvOp::Delete("a".into()), set_op("bb", 5)],
            &KvLimits::UNLIMITED,
        )
        .expect("batch");
        assert_eq!(s.kv_bytes("p").expect("bytes"), 7);
        assert!(s.kv_delete("p", "bb").expect("delete"));
        assert_eq!(s.kv_bytes("p").expect("bytes"), 0);
        s.kv_set("p", "é", b"xyz").expect("set");
        assert_usage_matches_rows(&s, "p");
    }

    fn a_value_over_the_value_limit_is_refused_and_not_stored(s: Store) {
        let err = s
            .kv_batch("p", &[set_op("k", 11)], &limits(1000, 10))
            .expect_err("too large");
        assert!(
            matches!(
                err,
                KvWriteError::ValueTooLarge {
                    size: 11,
                    limit: 10
                }
            ),
            "{err}"
        );
        assert_eq!(s.kv_get("p", "k").expect("get"), None);
        s.kv_batch("p", &[set_op("k", 10)], &limits(1000, 10))
            .expect("at the limit");
    }

    fn writes_past_the_quota_are_refused_before_they_are_stored(s: Store) {
        let l = limits(100, 100);
        s.kv_batch("p", &[set_op("a", 49), set_op("b", 49)], &l)
            .expect("exactly 100");
        assert_eq!(s.kv_bytes("p").expect("bytes"), 100);
        let err = s
            .kv_batch("p", &[set_op("c", 0)], &l)
            .expect_err("one byte over");
        assert!(
            matches!(
                err,
                KvWriteError::QuotaExceeded {
                    needed: 1,
                    used: 100,
                    quota: 100
                }
            ),
            "{err}"
        );
        assert_eq!(s.kv_get("p", "c").expect("get"), None);
        // Another plugin has its own quota.
        s.kv_batch("q", &[set_op("a", 49)], &l).expect("q");
        // Overwrites that do not grow, and deletes, always pass; deleting gives room back.
        s.kv_batch("p", &[set_op("a", 10)], &l).expect("shrink");
        s.kv_batch("p", &[set_op("c", 38)], &l).expect("fits again");
        s.kv_batch("p", &[KvOp::Delete("b".into()), set_op("d", 49)], &l)
            .expect("delete then write in one batch");
        assert_eq!(s.kv_bytes("p").expect("bytes"), 11 + 39 + 50);
        assert_usage_matches_rows(&s, "p");
    }

    fn a_batch_that_would_pass_the_quota_leaves_nothing_behind(s: Store) {
        let l = limits(100, 100);
        s.kv_set("p", "kept", b"old").expect("set");
        let err = s
            .kv_batch(
                "p",
                &[
                    set_op("a", 40),
                    KvOp::Delete("kept".into()),
                    set_op("b", 80),
                ],
                &l,
            )
            .expect_err("over the quota");
        assert!(matches!(err, KvWriteError::QuotaExceeded { .. }), "{err}");
        assert_eq!(s.kv_get("p", "a").expect("get"), None);
        assert_eq!(s.kv_get("p", "kept").expect("get"), Some(b"old".to_vec()));
        assert_eq!(s.kv_bytes("p").expect("bytes"), 7);
    }

    fn a_lowered_quota_still_lets_a_plugin_shrink_and_delete(s: Store) {
        s.kv_set("p", "a", &[0; 200]).expect("set");
        let l = limits(100, 1000);
        assert!(s.kv_batch("p", &[set_op("b", 1)], &l).is_err());
        s.kv_batch("p", &[set_op("a", 150)], &l).expect("shrink");
        s.kv_batch("p", &[KvOp::Delete("a".into())], &l)
            .expect("delete");
        s.kv_batch("p", &[set_op("b", 1)], &l).expect("room again");
    }

    #[test]
    fn kv_usage_is_rebuilt_from_existing_rows_by_the_migration() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("roost.db");
        {
            // A database at schema 1 with data, as an older roost left it.
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(MIGRATIONS[0]).expect("schema 1");
            conn.pragma_update(None, "user_version", 1)
                .expect("version");
            conn.execute(
                "INSERT INTO kv (plugin, key, value) VALUES ('p', 'ab', x'010203')",
                [],
            )
            .expect("row");
            conn.execute(
                "INSERT INTO outbox (target, plugin, payload, created_at) \
                 VALUES ('console', 'p', '12345', 0)",
                [],
            )
            .expect("row");
        }
        let s = Store::open(&path).expect("migrate");
        assert_eq!(s.kv_bytes("p").expect("bytes"), 5);
        assert_eq!(
            s.outbox_usage().expect("usage"),
            vec![TargetUsage {
                target: "console".into(),
                messages: 1,
                bytes: 5
            }]
        );
    }

    fn kv_usage_survives_reopening(fx: &Fixture) {
        let l = limits(100, 100);
        {
            let s = fx.open();
            s.kv_batch("p", &[set_op("a", 90)], &l).expect("set");
        }
        let s = fx.open();
        assert_eq!(s.kv_bytes("p").expect("bytes"), 91);
        assert!(s.kv_batch("p", &[set_op("b", 10)], &l).is_err());
    }

    fn caps(max_messages: u64, max_bytes: u64) -> OutboxCaps {
        OutboxCaps {
            max_messages,
            max_bytes,
        }
    }

    fn pending_payloads(s: &Store, target: &str) -> Vec<String> {
        s.outbox_pending(target, 100)
            .expect("pending")
            .into_iter()
            .map(|i| i.payload)
            .collect()
    }

    fn past_max_messages_the_oldest_of_that_target_are_dropped(s: Store) {
        let c = caps(3, u64::MAX);
        s.outbox_push_capped("other", "p", "o", &c).expect("push");
        let mut dropped = 0;
        for i in 0..5 {
            dropped += s
                .outbox_push_capped("t", "p", &format!("m{i}"), &c)
                .expect("push")
                .dropped;
        }
        assert_eq!(dropped, 2);
        assert_eq!(pending_payloads(&s, "t"), ["m2", "m3", "m4"]);
        assert_eq!(
            pending_payloads(&s, "other"),
            ["o"],
            "other targets untouched"
        );
        let usage = s.outbox_usage().expect("usage");
        assert_eq!(usage[1].messages, 3);
        assert_eq!(usage[1].bytes, 6);
    }

    fn past_max_bytes_the_oldest_are_dropped_but_never_the_new_one(s: Store) {
        let c = caps(100, 10);
        s.outbox_push_capped("t", "p", "aaaa", &c).expect("push");
        s.outbox_push_capped("t", "p", "bbbb", &c).expect("push");
        let pushed = s.outbox_push_capped("t", "p", "cccc", &c).expect("push");
        assert_eq!(pushed.dropped, 1);
        assert_eq!(pending_payloads(&s, "t"), ["bbbb", "cccc"]);
        // A message larger than the cap on its own is still kept; everything older goes.
        s.outbox_push_capped("t", "p", "dddddddddddd", &c)
            .expect("push");
        assert_eq!(pending_payloads(&s, "t"), ["dddddddddddd"]);
    }

    fn drops_are_recorded_once_per_run_with_their_count(s: Store) {
        let c = caps(1, u64::MAX);
        for i in 0..4 {
            s.outbox_push_capped("t", "p", &i.to_string(), &c)
                .expect("push");
        }
        let history = s.history_recent(10).expect("history");
        assert_eq!(history.len(), 1, "{history:?}");
        assert_eq!(history[0].kind, OUTBOX_DROPPED);
        assert_eq!(history[0].plugin, None);
        assert!(
            history[0]
                .detail
                .starts_with("t: 3 oldest queued messages dropped"),
            "{}",
            history[0].detail
        );
        // Drops of another target in between keep one entry per target.
        let d = caps(1, u64::MAX);
        s.outbox_push_capped("u", "p", "a", &d).expect("push");
        s.outbox_push_capped("u", "p", "b", &d).expect("push");
        s.outbox_push_capped("t", "p", "y", &d).expect("push");
        let history = s.history_recent(10).expect("history");
        assert_eq!(history.len(), 2, "{history:?}");
        assert!(history[0].detail.starts_with("u: 1 oldest"), "{history:?}");
        assert!(history[1].detail.starts_with("t: 4 oldest"), "{history:?}");
        // Another event in between starts a new entry.
        s.history_push(Some("p"), "crash", "boom").expect("history");
        s.outbox_push_capped("t", "p", "x", &c).expect("push");
        let history = s.history_recent(10).expect("history");
        assert_eq!(history.len(), 4);
        assert!(history[0].detail.starts_with("t: 1 oldest"), "{history:?}");
    }

    fn outbox_usage_follows_deliveries_and_forgets_empty_targets(s: Store) {
        let a = s.outbox_push("t", "p", "abc").expect("push");
        let b = s.outbox_push("t", "p", "de").expect("push");
        assert!(s.outbox_attempt(a).expect("attempt"), "queued");
        s.outbox_mark_failed(a, "down").expect("failed");
        s.outbox_mark_sent(a).expect("sent");
        assert!(!s.outbox_attempt(a).expect("attempt"), "sent");
        assert_eq!(
            s.outbox_usage().expect("usage"),
            vec![TargetUsage {
                target: "t".into(),
                messages: 1,
                bytes: 2
            }]
        );
        s.outbox_mark_sent(b).expect("sent");
        assert!(s.outbox_usage().expect("usage").is_empty());
    }

    fn a_batch_taken_counts_its_own_messages_once_and_removes_those_sent(s: Store) {
        let ids: Vec<i64> = (0..4)
            .map(|i| s.outbox_push("a", "p", &i.to_string()).expect("push"))
            .collect();
        let other = s.outbox_push("b", "p", "x").expect("push");
        let counts = |s: &Store, target: &str| -> Vec<(i64, u32)> {
            let left = s.outbox_pending(target, 10).expect("pending");
            left.iter().map(|i| (i.id, i.attempts)).collect()
        };
        let first = s.outbox_take("a", &[], None, 2).expect("take");
        assert_eq!(
            first.iter().map(|i| (i.id, i.attempts)).collect::<Vec<_>>(),
            [(ids[0], 0), (ids[1], 0)]
        );
        assert_eq!(first[1].payload, "1");
        assert_eq!(
            counts(&s, "a"),
            [(ids[0], 1), (ids[1], 1), (ids[2], 0), (ids[3], 0)],
            "the two taken counted, the rest not"
        );
        let from = |s: &Store, id: i64| s.outbox_check_from(id, "a").expect("check from");
        assert_eq!(from(&s, ids[2]), CheckFrom::After(None));
        let second = s.outbox_take("a", &ids[..2], Some("p1"), 10).expect("take");
        assert_eq!(second.iter().map(|i| i.id).collect::<Vec<_>>(), ids[2..]);
        assert_eq!(
            counts(&s, "a"),
            [(ids[2], 1), (ids[3], 1)],
            "the sent removed"
        );
        assert_eq!(counts(&s, "b"), [(other, 0)], "another target untouched");
        let p = |post: &str| CheckFrom::After(Some(post.to_string()));
        assert_eq!(from(&s, ids[2]), p("p1"));
        assert_eq!(from(&s, ids[0]), CheckFrom::Gone, "delivered and removed");
        assert_eq!(
            s.outbox_check_from(other, "b").expect("check from"),
            CheckFrom::After(None)
        );
        let pushed = s.outbox_push("a", "p", "4").expect("push");
        assert!(
            s.outbox_take("a", &ids[2..], Some("p3"), 0)
                .expect("take")
                .is_empty()
        );
        assert_eq!(from(&s, pushed), p("p3"));
        s.outbox_take("a", &[], Some("p2"), 0).expect("take");
        assert_eq!(
            from(&s, pushed),
            p("p3"),
            "an older post never replaces a later one"
        );
        s.outbox_take("a", &[], None, 0).expect("take");
        assert_eq!(
            from(&s, pushed),
            p("p3"),
            "kept when nothing delivered posted"
        );
        s.outbox_mark_sent(pushed).expect("sent");
        assert!(
            s.outbox_usage()
                .expect("usage")
                .iter()
                .all(|u| u.target == "b")
        );
    }

    fn an_attempt_not_made_is_taken_back_and_never_below_zero(s: Store) {
        let id = s.outbox_push("discord:9", "bot", "{}").expect("push");
        let attempts = |s: &Store| s.outbox_pending("discord:9", 1).expect("pending")[0].attempts;
        assert!(s.outbox_attempt(id).expect("attempt"));
        assert!(s.outbox_attempt(id).expect("attempt"));
        s.outbox_attempt_not_made(id).expect("taken back");
        assert_eq!(attempts(&s), 1, "the one made stays counted");
        s.outbox_attempt_not_made(id).expect("taken back");
        s.outbox_attempt_not_made(id).expect("taken back");
        assert_eq!(attempts(&s), 0);
    }

    fn the_outbox_delivers_per_target_in_order_and_keeps_failures(s: Store) {
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

    fn history_keeps_the_newest_thousand_newest_first(s: Store) {
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

    fn history_details_are_capped_at_a_character_boundary(s: Store) {
        let long = "é".repeat(MAX_HISTORY_DETAIL);
        s.history_push(None, "big", &long).expect("push");
        let item = s.history_recent(1).expect("recent").remove(0);
        assert!(item.detail.len() <= MAX_HISTORY_DETAIL);
        assert!(item.detail.chars().all(|c| c == 'é'));
    }

    #[test]
    fn delivery_bookkeeping_puts_the_fsync_back_for_the_next_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("roost.db")).expect("open");
        let sync = |s: &Store| -> i64 {
            s.conn()
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .expect("synchronous")
        };
        let id = s.outbox_push("console", "p", "{}").expect("push");
        let next = s.outbox_push("console", "p", "{}").expect("push");
        assert!(s.outbox_attempt(id).expect("attempt"));
        assert_eq!(sync(&s), 2, "FULL again after an attempt mark");
        s.outbox_note_error(id, "down").expect("note");
        assert_eq!(sync(&s), 2, "FULL again after an error note");
        assert_eq!(
            s.outbox_pending("console", 1).expect("pending")[0].attempts,
            1
        );
        let taken = s
            .outbox_take("console", &[id], Some("1"), 10)
            .expect("take");
        assert_eq!(
            sync(&s),
            2,
            "FULL again after a sent mark and a batch taken"
        );
        assert_eq!(
            taken.iter().map(|i| (i.id, i.attempts)).collect::<Vec<_>>(),
            [(next, 0)],
            "the one sent removed, the next as it was before its count"
        );
        let left = s.outbox_pending("console", 10).expect("pending");
        assert_eq!(
            left.iter().map(|i| (i.id, i.attempts)).collect::<Vec<_>>(),
            [(next, 1)],
            "the next counted"
        );
        s.outbox_mark_sent(next).expect("sent");
        assert_eq!(sync(&s), 2, "FULL again after a sent mark");
        assert!(!s.outbox_attempt(next).expect("attempt"), "sent");
    }

    fn reopening_keeps_data_and_does_not_migrate_again(fx: &Fixture) {
        {
            let s = fx.open();
            s.kv_set("p", "k", b"v").expect("set");
            s.outbox_push("console", "p", "{}").expect("push");
            s.history_push(Some("p"), "load", "ok").expect("history");
        }
        let s = fx.open();
        assert_eq!(s.schema_version().expect("version") as usize, latest(&s));
        assert_eq!(s.kv_get("p", "k").expect("get"), Some(b"v".to_vec()));
        assert_eq!(s.outbox_pending("console", 10).expect("pending").len(), 1);
        assert_eq!(s.history_recent(10).expect("history").len(), 1);
        // Two handles at once on one database (daemon + `roost invoke`) both work.
        let other = fx.open();
        other.kv_set("p", "k2", b"v2").expect("set");
        assert_eq!(s.kv_get("p", "k2").expect("get"), Some(b"v2".to_vec()));
    }

    /// Two handles (two connections) filling one namespace at once: the quota holds
    /// exactly, and the total matches the rows.
    fn quotas_hold_when_two_handles_write_at_once(fx: &Fixture) {
        let l = limits(1000, 100);
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let s = fx.open();
                std::thread::spawn(move || {
                    (0..60)
                        .filter(|i| {
                            let op = set_op(&format!("{w}-{i:02}"), 6); // 10 bytes
                            s.kv_batch("p", &[op], &l).is_ok()
                        })
                        .count()
                })
            })
            .collect();
        let stored: usize = writers.into_iter().map(|w| w.join().expect("writer")).sum();
        let s = fx.open();
        assert_eq!(stored, 100, "exactly the quota's worth was accepted");
        assert_eq!(s.kv_bytes("p").expect("bytes"), 1000);
        assert_eq!(s.kv_count("p").expect("count"), 100);
        assert_usage_matches_rows(&s, "p");
    }

    #[test]
    fn a_new_file_database_uses_wal_and_full_sync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/dir/roost.db");
        {
            let s = Store::open(&path).expect("first open creates the directory");
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
    }

    fn a_database_from_a_newer_roost_is_refused(fx: &Fixture) {
        let s = fx.open();
        let known = latest(&s);
        match s.db() {
            Db::Sqlite(conn) => conn
                .pragma_update(None, "user_version", known + 7)
                .expect("bump user_version"),
            Db::Postgres(pg) => pg
                .execute_raw("INSERT INTO roost_schema (version) VALUES (1000)")
                .expect("record a newer version"),
        }
        drop(s);
        let opened = match fx {
            Fixture::Sqlite(dir) => Store::open(&dir.path().join("roost.db")),
            Fixture::Postgres(url) => {
                Store::open_postgres(url, test_pg::server().password.as_deref())
            }
        };
        match opened {
            Err(StoreError::TooNew {
                found, known: k, ..
            }) => {
                assert_eq!(found as usize, known + 7);
                assert_eq!(k as usize, known);
            }
            Err(StoreError::PostgresTooNew {
                found, known: k, ..
            }) => {
                assert_eq!(found, 1000);
                assert_eq!(k as usize, known);
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a newer database must be refused"),
        }
    }

    #[test]
    fn two_hubs_starting_at_once_on_a_new_postgres_database_migrate_it_once() {
        let fx = Fixture::postgres();
        let url = match &fx {
            Fixture::Postgres(url) => url.clone(),
            Fixture::Sqlite(_) => unreachable!(),
        };
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || {
                    Store::open_postgres(&url, test_pg::server().password.as_deref())
                        .map(|s| s.schema_version())
                })
            })
            .collect();
        for open in opens {
            let version = open
                .join()
                .expect("thread")
                .expect("open")
                .expect("version");
            assert_eq!(version as usize, postgres::MIGRATIONS.len());
        }
    }

    #[test]
    fn a_hub_stopped_mid_transaction_holds_its_postgres_locks_no_longer_than_the_idle_limit() {
        let url = test_pg::fresh_url();
        let password = test_pg::server().password.clone();
        let sleeper = Store::open_postgres(&url, password.as_deref()).expect("open");
        let id = sleeper.outbox_push("t", "p", "x").expect("push");
        // What a hub stopped between two statements leaves: its transaction open, holding
        // the row lock of the message it was marking.
        let Db::Postgres(pg) = sleeper.db() else {
            unreachable!()
        };
        pg.execute_raw("BEGIN; UPDATE outbox SET attempts = attempts")
            .expect("lock the row");

        let other = Store::open_postgres(&url, password.as_deref()).expect("open");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(other.outbox_attempt(id));
        });
        let patience = postgres::IDLE_IN_TRANSACTION * 4;
        let counted = rx
            .recv_timeout(patience)
            .expect("the other hub is still waiting on the stopped one's lock")
            .expect("attempt");
        assert!(counted, "the message is still there to be tried");

        // Woken, the sleeper's next call meets its ended session; the one after connects
        // again.
        let woke = sleeper.kv_set("p", "k", b"v");
        if let Err(e) = woke {
            assert!(matches!(e, StoreError::Postgres { .. }), "{e}");
            sleeper
                .kv_set("p", "k", b"v")
                .expect("set after reconnecting");
        }
        assert_eq!(sleeper.kv_get("p", "k").expect("get"), Some(b"v".to_vec()));
    }

    #[test]
    fn a_wrong_postgres_password_is_a_connect_error_without_the_password() {
        let url = &test_pg::server().url;
        match Store::open_postgres(url, Some("not-the-password-x9")) {
            Err(e @ StoreError::Connect { .. }) => {
                let text = e.to_string();
                assert!(text.contains("password authentication failed"), "{text}");
                assert!(!text.contains("not-the-password-x9"), "{text}");
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a wrong password must be refused"),
        }
    }

    fn clones_share_one_database(s: Store) {
        let t = s.clone();
        t.kv_set("p", "k", b"v").expect("set");
        assert_eq!(s.kv_get("p", "k").expect("get"), Some(b"v".to_vec()));
    }
}
