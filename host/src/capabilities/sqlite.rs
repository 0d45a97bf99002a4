//! `sqlite`: read-only access to SQLite files the plugin's grant names.
//!
//! Each connection is owned by its own thread (SQLite calls block), reached through a
//! channel; the async host call waits for the answer until the plugin's call deadline and
//! interrupts SQLite when it passes. Three locks keep a connection read-only: it is opened
//! with `SQLITE_OPEN_READ_ONLY`, `query_only` is on, and an authorizer refuses every
//! statement that would write, ATTACH/DETACH, open a transaction or load code.
//!
//! None may hold the owner's file for long, nor make the host hold more than the plugin's
//! memory budget: each query runs in SQLite's autocommit mode (BEGIN, SAVEPOINT and the rest
//! are refused), a cursor left unread for `sqlite_cursor_idle_ms` is reset and a dropped one
//! at once (either releases SQLite's read lock), a plugin holds at most `sqlite_cursors`
//! cursors, and a row or a batch of rows may be at most a quarter of its `memory_mb`
//! (SQLite's own length limit is set to the same figure, so no single value grows past it).
//!
//! Between calls a connection thread reads ahead: once it has handed over a batch it steps
//! the statement on for the next one (as many rows as the last `next` asked for), so
//! SQLite works while the plugin handles the rows it has, and two cursors on two
//! connections run at once. What is read ahead counts against the same budget: each
//! connection holds at most the batch cap divided by [`MAX_CONNECTIONS`] ahead (so all of
//! an instance's read-ahead together stays within one batch), or a single row up to the
//! row cap, as a row carried over from a full batch always could; a read-ahead the plugin
//! has not asked for within `sqlite_cursor_idle_ms` is stopped and the cursor reset, as an
//! unread one is; a dropped cursor, or any other call on its connection, stops its
//! read-ahead at once.
//! "Not asked for" counts only while none of the plugin's `sqlite` calls is in flight: a
//! plugin reading one cursor is busy, not parking the other, and each of its calls is
//! bounded by its own deadline.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, InterruptHandle, OpenFlags};
use tokio::sync::oneshot;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::denied;
use super::registry::{Capability, InstanceEnv};
use crate::config::{Config, Limits};
use crate::runtime::bindings::GuestError;
use crate::runtime::bindings::roost::plugin::sqlite::{self, Value};
use crate::runtime::state::PluginState;

/// Most connections one instance may hold open (each is a thread and a file handle).
pub const MAX_CONNECTIONS: usize = 8;
/// Most rows one `next` returns, whatever the plugin asks for.
pub const MAX_BATCH_ROWS: u32 = 10_000;
/// Most bytes of values one `next` gathers from several rows: the batch is copied into
/// guest memory. (A single row may be larger, up to the plugin's row cap.)
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// The row cap is this fraction of `memory_mb`: a batch lands in the plugin's own memory
/// (lifted, then usually copied once more by the SDK), which must also hold everything else.
pub const ROW_SHARE_OF_MEMORY: u64 = 4;
/// Bytes counted per value on top of its text or blob: the canonical ABI's variant slot.
const VALUE_OVERHEAD: usize = 16;
/// Longest SQL text accepted.
pub const MAX_SQL_BYTES: usize = 1024 * 1024;

/// What config grants: files (or directories of files) to open read-only, and directories
/// snapshots may be written into. Both empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqliteGrant {
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
}

/// The host's side of a `connection` resource. Dropping it (with the resource or the
/// instance) ends its thread, which frees the statement and any row it holds.
pub struct SqliteConnection {
    jobs: Sender<Job>,
    interrupt: Arc<InterruptHandle>,
    ahead: Arc<AheadClock>,
    /// Bumped by every query, so an older cursor knows it has been ended.
    generation: u64,
    has_attached: bool,
}

impl Drop for SqliteConnection {
    fn drop(&mut self) {
        // A statement still running (the instance is going away mid-call) stops now; the
        // thread then finds its channel closed and ends.
        self.interrupt.interrupt();
    }
}

/// The host's side of a `cursor` resource.
pub struct SqliteCursor {
    connection: u32,
    generation: u64,
    columns: Vec<String>,
}

/// What each connection thread enforces, from the plugin's [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Caps {
    /// How long a cursor may sit unread before its statement is reset.
    idle: Duration,
    /// Largest row, in bytes; also SQLite's `SQLITE_LIMIT_LENGTH`.
    row_bytes: usize,
    /// Bytes a batch of several rows stops at (a single row may reach `row_bytes`).
    batch_bytes: usize,
    /// Bytes a read-ahead of several rows stops at: the batch cap shared by every
    /// connection an instance may open.
    ahead_bytes: usize,
}

impl Caps {
    fn from_limits(limits: &Limits) -> Self {
        let memory = limits.memory_mb.saturating_mul(1024 * 1024);
        let row = (memory / ROW_SHARE_OF_MEMORY).clamp(64 * 1024, i32::MAX as u64);
        let row_bytes = usize::try_from(row).unwrap_or(i32::MAX as usize);
        let batch_bytes = row_bytes.min(MAX_BATCH_BYTES);
        Self {
            idle: Duration::from_millis(limits.sqlite_cursor_idle_ms),
            row_bytes,
            batch_bytes,
            ahead_bytes: batch_bytes / MAX_CONNECTIONS,
        }
    }
}

/// Per-instance context: the grant, the limits and the instance's connections and cursors.
/// Dropped with the instance, which ends every connection thread and frees what they hold.
pub struct SqliteCtx {
    plugin: String,
    grant: SqliteGrant,
    table: ResourceTable,
    open: usize,
    /// Cursors not yet dropped, and how many may be ([`Limits::sqlite_cursors`]).
    cursors: usize,
    max_cursors: usize,
    caps: Caps,
    /// This instance's `sqlite` calls now in flight: while one waits, the plugin is busy
    /// reading, and no other cursor of it counts as left unread.
    busy: Arc<AtomicUsize>,
}

/// One call in flight, counted in [`SqliteCtx::busy`] until dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(busy: &Arc<AtomicUsize>) -> Self {
        busy.fetch_add(1, Ordering::Relaxed);
        Self(busy.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl SqliteCtx {
    /// Context for one instance of `plugin` with its grant, bounded by its `limits`
    /// (`sqlite_cursors`, `sqlite_cursor_idle_ms`, and `memory_mb` for the row cap).
    pub fn new(plugin: &str, grant: SqliteGrant, limits: &Limits) -> Self {
        Self {
            plugin: plugin.to_string(),
            grant,
            table: ResourceTable::new(),
            open: 0,
            cursors: 0,
            max_cursors: usize::try_from(limits.sqlite_cursors).unwrap_or(usize::MAX),
            caps: Caps::from_limits(limits),
            busy: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// `path` resolved (symlinks and `..` included) if a read grant covers it.
    fn readable(&self, path: &str) -> Result<PathBuf, GuestError> {
        let real = std::fs::canonicalize(path)
            .map_err(|e| GuestError::NotFound(format!("{path}: {e}")))?;
        if !real.is_file() {
            return Err(GuestError::InvalidArgument(format!("{path} is not a file")));
        }
        if covered(&self.grant.read, &real) {
            return Ok(real);
        }
        Err(denied(
            &self.plugin,
            format!(
                "{path} (resolved to {}) is not granted to plugin `{}` (add it to sqlite_read in [plugins.{}.grants])",
                real.display(),
                self.plugin,
                self.plugin
            ),
        ))
    }

    /// Where a snapshot of `path` may be written: its directory must be under a write grant
    /// and the file itself must not be a symlink.
    fn writable(&self, path: &str) -> Result<PathBuf, GuestError> {
        let wanted = Path::new(path);
        let name = wanted
            .file_name()
            .ok_or_else(|| GuestError::InvalidArgument(format!("{path} names no file")))?;
        let parent = match wanted.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = std::fs::canonicalize(parent)
            .map_err(|e| GuestError::NotFound(format!("{}: {e}", parent.display())))?;
        let target = dir.join(name);
        if std::fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(denied(
                &self.plugin,
                format!("{path} is a symlink; refusing to write through it"),
            ));
        }
        if covered(&self.grant.write, &target) {
            return Ok(target);
        }
        Err(denied(
            &self.plugin,
            format!(
                "{} is not in a directory granted to plugin `{}` (add it to sqlite_write in [plugins.{}.grants])",
                target.display(),
                self.plugin,
                self.plugin
            ),
        ))
    }
}

/// Whether `real` (already canonical) is one of `roots` or inside one of them.
fn covered(roots: &[PathBuf], real: &Path) -> bool {
    roots.iter().any(|root| {
        std::fs::canonicalize(root).is_ok_and(|root| real == root || real.starts_with(&root))
    })
}

/// What the connection thread is asked to do.
enum Job {
    Attach {
        path: PathBuf,
        schema: String,
        reply: oneshot::Sender<Result<(), GuestError>>,
    },
    Query {
        sql: String,
        params: Vec<Value>,
        generation: u64,
        reply: oneshot::Sender<Result<Vec<String>, GuestError>>,
    },
    Next {
        max: u32,
        generation: u64,
        reply: oneshot::Sender<Result<Vec<Vec<Value>>, GuestError>>,
    },
    /// The plugin dropped the cursor of `generation`: reset its statement now.
    Close { generation: u64 },
    Snapshot {
        path: PathBuf,
        reply: oneshot::Sender<Result<(), GuestError>>,
    },
}

/// Pragmas a plugin may run: they only read. Those in the second list take an argument.
const READ_PRAGMAS: &[&str] = &[
    "table_list",
    "database_list",
    "collation_list",
    "compile_options",
    "encoding",
    "user_version",
    "application_id",
    "schema_version",
    "page_count",
    "page_size",
    "freelist_count",
    "function_list",
    "module_list",
    "pragma_list",
];
const READ_PRAGMAS_WITH_ARG: &[&str] = &[
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "integrity_check",
    "quick_check",
];

/// SQLite's authorizer action code for ATTACH.
const SQLITE_ATTACH: i32 = 24;

/// What the plugin is told when it tries to open a transaction.
const TRANSACTION_REFUSED: &str = "statement refused: plugins cannot open transactions on granted files \
     (BEGIN, COMMIT, ROLLBACK, END, SAVEPOINT, RELEASE); each query runs on its own, so the \
     owner's writers are never kept waiting";

/// Flags the authorizer shares with its connection thread.
#[derive(Default)]
struct Guard {
    /// Set while our own ATTACH runs: the one ATTACH allowed.
    attaching: AtomicBool,
    /// Set when the authorizer refused a transaction statement, so the error can say so.
    refused_transaction: AtomicBool,
}

/// What stops a read-ahead, shared by the connection thread (whose SQLite progress handler
/// reads it) and the host calls (which set it).
struct AheadClock {
    started: Instant,
    /// Milliseconds after `started` at which a read-ahead nobody asked for stops; 0 while
    /// no read-ahead runs.
    until_ms: AtomicU64,
    /// The live cursor was dropped: stop stepping it.
    cancelled: AtomicBool,
    /// The last read-ahead was stopped by `until_ms`.
    expired: AtomicBool,
    /// The instance's calls in flight ([`SqliteCtx::busy`]): while any waits (a `next` on
    /// this cursor, whose deadline then bounds the rows, or a call on another), the idle
    /// limit starts again from when it is done.
    instance_busy: Arc<AtomicUsize>,
    idle: Duration,
}

/// SQLite VM steps between two looks at the [`AheadClock`].
const AHEAD_CHECK_EVERY: i32 = 10_000;

impl AheadClock {
    fn new(instance_busy: Arc<AtomicUsize>, idle: Duration) -> Self {
        Self {
            started: Instant::now(),
            until_ms: AtomicU64::new(0),
            cancelled: AtomicBool::new(false),
            expired: AtomicBool::new(false),
            instance_busy,
            idle,
        }
    }

    /// The plugin waits in a call on this cursor or another.
    fn plugin_busy(&self) -> bool {
        self.instance_busy.load(Ordering::Relaxed) > 0
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.started).as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// The progress handler's answer: true interrupts the running statement.
    fn should_stop(&self) -> bool {
        if self.cancelled.load(Ordering::Relaxed) {
            return true;
        }
        let until = self.until_ms.load(Ordering::Relaxed);
        if until == 0 {
            return false;
        }
        let now = Instant::now();
        if self.plugin_busy() {
            // Unread only from when the plugin is done with its call.
            let later = self.millis(now + self.idle);
            self.until_ms.store(later, Ordering::Relaxed);
            return false;
        }
        let over = self.millis(now) >= until;
        if over {
            self.expired.store(true, Ordering::Relaxed);
        }
        over
    }
}

fn authorize(ctx: AuthContext<'_>, guard: &Guard) -> Authorization {
    match ctx.action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => {
            Authorization::Allow
        }
        // A transaction would keep the file locked between calls, past every cursor limit.
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            guard.refused_transaction.store(true, Ordering::SeqCst);
            Authorization::Deny
        }
        AuthAction::Function { function_name } => {
            if function_name.eq_ignore_ascii_case("load_extension") {
                Authorization::Deny
            } else {
                Authorization::Allow
            }
        }
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            let ok = match pragma_value {
                None => {
                    READ_PRAGMAS.contains(&name.as_str())
                        || READ_PRAGMAS_WITH_ARG.contains(&name.as_str())
                }
                Some(_) => READ_PRAGMAS_WITH_ARG.contains(&name.as_str()),
            };
            if ok {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        // Our own `ATTACH ?1 AS …` while `attach` runs: its file name is a parameter, so
        // rusqlite reports the action by its bare code (SQLITE_ATTACH = 24).
        AuthAction::Attach { .. }
        | AuthAction::Unknown {
            code: SQLITE_ATTACH,
            ..
        } if guard.attaching.load(Ordering::SeqCst) => Authorization::Allow,
        _ => Authorization::Deny,
    }
}

/// Opens `path` read-only on a new thread bounded by `caps`, serving `plugin`; the host's
/// side of the connection: the channel to that thread and what stops its statements.
fn spawn_connection(
    path: &Path,
    caps: Caps,
    plugin: String,
    busy: Arc<AtomicUsize>,
) -> Result<SqliteConnection, GuestError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| GuestError::InvalidArgument(format!("{}: {e}", path.display())))?;
    // Reading the schema now turns "file is not a database" into an error at open.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(|e| GuestError::InvalidArgument(format!("{}: {e}", path.display())))?;
    conn.pragma_update(None, "query_only", true)
        .map_err(|e| GuestError::Other(format!("query_only: {e}")))?;
    // No string or blob SQLite builds for this plugin may outgrow one row.
    let length = i32::try_from(caps.row_bytes).unwrap_or(i32::MAX);
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, length)
        .map_err(|e| GuestError::Other(format!("length limit: {e}")))?;
    let guard = Arc::new(Guard::default());
    let flags = guard.clone();
    conn.authorizer(Some(move |ctx: AuthContext<'_>| authorize(ctx, &flags)));
    let interrupt = Arc::new(conn.get_interrupt_handle());
    let ahead = Arc::new(AheadClock::new(busy, caps.idle));
    let clock = ahead.clone();
    conn.progress_handler(AHEAD_CHECK_EVERY, Some(move || clock.should_stop()));
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = Worker {
        conn,
        guard,
        caps,
        plugin,
        ahead: ahead.clone(),
    };
    std::thread::Builder::new()
        .name("roost-sqlite".into())
        .spawn(move || worker.serve(rx))
        .map_err(|e| GuestError::Other(format!("cannot start a connection thread: {e}")))?;
    Ok(SqliteConnection {
        jobs: tx,
        interrupt,
        ahead,
        generation: 0,
        has_attached: false,
    })
}

/// How a cursor's statement ended, for a later `next` on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Read to the end: `next` answers with no rows.
    Done,
    /// It failed (SQL error, row too large, interrupted).
    Failed,
    /// Not read within the idle limit; reset to release its read lock.
    Idle,
    /// The plugin dropped it.
    Dropped,
    /// Another job for the connection arrived while it was live.
    Superseded,
}

/// Why the cursor loop of one query returned.
enum Flow {
    /// The statement is finished or reset.
    Ended(Ended),
    /// Another job arrived, which ended the statement; it still has to run.
    Other(Job),
    /// The connection resource is gone: the thread ends.
    Disconnected,
}

/// The connection thread's state: the connection, its authorizer flags and its limits.
struct Worker {
    conn: Connection,
    guard: Arc<Guard>,
    caps: Caps,
    /// Whose connection it is, for the log.
    plugin: String,
    ahead: Arc<AheadClock>,
}

impl Worker {
    /// One job at a time; while a query's cursor is live, its jobs are served by
    /// [`Worker::serve_cursor`] and any other job ends it. Returns when the channel closes.
    fn serve(self, jobs: Receiver<Job>) {
        let mut last: Option<(u64, Ended)> = None;
        let mut pending: Option<Job> = None;
        loop {
            let job = match pending.take() {
                Some(job) => job,
                None => match jobs.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                },
            };
            // Set by dropping a cursor, whose Close came before this job.
            self.ahead.cancelled.store(false, Ordering::Relaxed);
            match job {
                Job::Attach {
                    path,
                    schema,
                    reply,
                } => {
                    let _ = reply.send(self.attach(&path, &schema));
                }
                Job::Snapshot { path, reply } => {
                    let _ = reply.send(self.snapshot(&path));
                }
                Job::Next {
                    generation, reply, ..
                } => {
                    let _ = reply.send(self.after_end(last, generation));
                }
                Job::Close { .. } => {}
                Job::Query {
                    sql,
                    params,
                    generation,
                    reply,
                } => match self.run_query(&sql, params, generation, reply, &jobs) {
                    Flow::Ended(how) => last = Some((generation, how)),
                    Flow::Other(job) => {
                        last = Some((generation, Ended::Superseded));
                        pending = Some(job);
                    }
                    Flow::Disconnected => return,
                },
            }
        }
    }

    fn attach(&self, path: &Path, schema: &str) -> Result<(), GuestError> {
        self.guard.attaching.store(true, Ordering::SeqCst);
        let sql = format!("ATTACH DATABASE ?1 AS \"{schema}\"");
        let result = self
            .conn
            .execute(&sql, [path.to_string_lossy().as_ref()])
            .map(|_| ())
            .map_err(|e| sql_error(&e));
        self.guard.attaching.store(false, Ordering::SeqCst);
        result
    }

    fn snapshot(&self, path: &Path) -> Result<(), GuestError> {
        self.conn
            .backup(rusqlite::MAIN_DB, path, None)
            .map_err(|e| GuestError::Other(format!("snapshot to {}: {e}", path.display())))
    }

    /// The answer to `next` on cursor `generation` once its statement is gone.
    fn after_end(
        &self,
        last: Option<(u64, Ended)>,
        generation: u64,
    ) -> Result<Vec<Vec<Value>>, GuestError> {
        match last {
            Some((g, Ended::Done)) if g == generation => Ok(Vec::new()),
            Some((g, Ended::Idle)) if g == generation => Err(GuestError::NotFound(format!(
                "cursor reset: it was not read for {} ms (limit sqlite_cursor_idle_ms), so its \
                 lock on the file was released; run the query again",
                self.caps.idle.as_millis()
            ))),
            Some((g, Ended::Failed)) if g == generation => Err(GuestError::NotFound(
                "cursor ended by its earlier error".into(),
            )),
            _ => Err(ended_elsewhere()),
        }
    }

    /// Prepares `sql`, naming a refused transaction as such.
    fn prepare(&self, sql: &str) -> Result<rusqlite::Statement<'_>, GuestError> {
        self.guard
            .refused_transaction
            .store(false, Ordering::SeqCst);
        self.conn.prepare(sql).map_err(|e| {
            if self.guard.refused_transaction.swap(false, Ordering::SeqCst) {
                GuestError::AccessDenied(TRANSACTION_REFUSED.into())
            } else {
                sql_error(&e)
            }
        })
    }

    /// Runs one query: answers `reply` with its columns, then serves its cursor. The
    /// statement is reset and finalized when this returns, releasing SQLite's read lock.
    fn run_query(
        &self,
        sql: &str,
        params: Vec<Value>,
        generation: u64,
        reply: oneshot::Sender<Result<Vec<String>, GuestError>>,
        jobs: &Receiver<Job>,
    ) -> Flow {
        let mut stmt = match self.prepare(sql) {
            Ok(s) => s,
            Err(e) => {
                let _ = reply.send(Err(e));
                return Flow::Ended(Ended::Failed);
            }
        };
        let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let width = columns.len();
        let params: Vec<Param> = params.into_iter().map(Param).collect();
        let mut rows = match stmt.query(rusqlite::params_from_iter(params)) {
            Ok(r) => r,
            Err(e) => {
                let _ = reply.send(Err(sql_error(&e)));
                return Flow::Ended(Ended::Failed);
            }
        };
        let _ = reply.send(Ok(columns));
        let mut reader = Reader::new(width, self.caps);
        self.serve_cursor(&mut rows, &mut reader, generation, jobs)
    }

    /// Serves `next` on the live cursor until it is read to the end, fails, is dropped, is
    /// left unread for the idle limit, or another job arrives; reads ahead between calls.
    fn serve_cursor(
        &self,
        rows: &mut rusqlite::Rows<'_>,
        reader: &mut Reader,
        generation: u64,
        jobs: &Receiver<Job>,
    ) -> Flow {
        let mut idle_until = Instant::now() + self.caps.idle;
        loop {
            if self.read_ahead(rows, reader, idle_until) {
                return self.idle_reset(generation);
            }
            match jobs.recv_timeout(idle_until.saturating_duration_since(Instant::now())) {
                Ok(Job::Next {
                    max,
                    generation: g,
                    reply,
                }) if g == generation => {
                    let batch = reader.batch(rows, max);
                    let failed = batch.is_err();
                    let _ = reply.send(batch);
                    if failed {
                        return Flow::Ended(Ended::Failed);
                    }
                    if reader.finished() {
                        return Flow::Ended(Ended::Done);
                    }
                    idle_until = Instant::now() + self.caps.idle;
                }
                Ok(Job::Next { reply, .. }) => {
                    let _ = reply.send(Err(ended_elsewhere()));
                }
                Ok(Job::Close { generation: g }) if g == generation => {
                    return Flow::Ended(Ended::Dropped);
                }
                Ok(Job::Close { .. }) => {}
                Ok(other) => return Flow::Other(other),
                // Finished (its lock released) or waiting while the plugin reads another
                // cursor: not left unread.
                Err(RecvTimeoutError::Timeout) if reader.done || self.ahead.plugin_busy() => {
                    idle_until = Instant::now() + self.caps.idle;
                }
                Err(RecvTimeoutError::Timeout) => return self.idle_reset(generation),
                Err(RecvTimeoutError::Disconnected) => return Flow::Disconnected,
            }
        }
    }

    /// Steps the statement on for the next batch, unless rows are already waiting; past
    /// `idle_until` with no `next` sent, SQLite is stopped. True when it was.
    fn read_ahead(
        &self,
        rows: &mut rusqlite::Rows<'_>,
        reader: &mut Reader,
        idle_until: Instant,
    ) -> bool {
        if !reader.wants_ahead() {
            return false;
        }
        let clock = &self.ahead;
        clock.expired.store(false, Ordering::Relaxed);
        clock
            .until_ms
            .store(clock.millis(idle_until), Ordering::Relaxed);
        reader.read_ahead(rows);
        clock.until_ms.store(0, Ordering::Relaxed);
        clock.expired.load(Ordering::Relaxed)
    }

    fn idle_reset(&self, generation: u64) -> Flow {
        tracing::debug!(
            plugin = %self.plugin,
            generation,
            idle_ms = self.caps.idle.as_millis() as u64,
            "sqlite cursor reset: not read within sqlite_cursor_idle_ms"
        );
        Flow::Ended(Ended::Idle)
    }
}

/// The error for `next` on a cursor whose statement another query or call ended.
fn ended_elsewhere() -> GuestError {
    GuestError::NotFound("cursor ended: a newer query or call ran on its connection".into())
}

/// Reads batches from one statement within the row and batch caps, and between batches
/// reads ahead within the read-ahead cap.
struct Reader {
    width: usize,
    caps: Caps,
    /// Rows read but not yet handed out, each with its size: read ahead, or left out of
    /// the last batch because they would have overflowed it.
    waiting: VecDeque<(Vec<Value>, usize)>,
    /// An error met while reading ahead, for the `next` that reaches it.
    failed: Option<GuestError>,
    /// How many rows the last `next` asked for: what a read-ahead reads.
    ahead_rows: usize,
    /// The statement has returned its last row.
    done: bool,
}

impl Reader {
    fn new(width: usize, caps: Caps) -> Self {
        Self {
            width,
            caps,
            waiting: VecDeque::new(),
            failed: None,
            ahead_rows: 1,
            done: false,
        }
    }

    /// Every row has been handed out.
    fn finished(&self) -> bool {
        self.done && self.waiting.is_empty() && self.failed.is_none()
    }

    /// Nothing is waiting and the statement has more to give.
    fn wants_ahead(&self) -> bool {
        self.waiting.is_empty() && self.failed.is_none() && !self.done
    }

    /// The next row from SQLite with its size; `None` at the end.
    fn step(
        &mut self,
        rows: &mut rusqlite::Rows<'_>,
    ) -> Result<Option<(Vec<Value>, usize)>, GuestError> {
        match rows.next().map_err(|e| sql_error(&e))? {
            Some(row) => read_row(row, self.width, self.caps.row_bytes).map(Some),
            None => {
                self.done = true;
                Ok(None)
            }
        }
    }

    /// Reads up to the last batch's row count ahead, stopping at the read-ahead cap (a
    /// single row may exceed it) or an error, kept for the `next` that reaches it.
    fn read_ahead(&mut self, rows: &mut rusqlite::Rows<'_>) {
        let mut bytes = 0usize;
        while self.waiting.len() < self.ahead_rows && bytes < self.caps.ahead_bytes {
            match self.step(rows) {
                Ok(Some((values, size))) => {
                    bytes = bytes.saturating_add(size);
                    self.waiting.push_back((values, size));
                }
                Ok(None) => return,
                Err(e) => {
                    self.failed = Some(e);
                    return;
                }
            }
        }
    }

    /// Up to `max` rows (at most [`MAX_BATCH_ROWS`]): those waiting first, then from
    /// SQLite. Rows are added while the batch stays within the batch cap; a single row may
    /// fill a batch alone up to the row cap, so no batch exceeds the row cap.
    fn batch(
        &mut self,
        rows: &mut rusqlite::Rows<'_>,
        max: u32,
    ) -> Result<Vec<Vec<Value>>, GuestError> {
        let max = max.clamp(1, MAX_BATCH_ROWS) as usize;
        self.ahead_rows = max;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while out.len() < max {
            let next = match self.waiting.pop_front() {
                Some(row) => row,
                None if self.done => break,
                None => match self.failed.take() {
                    Some(e) if out.is_empty() => return Err(e),
                    Some(e) => {
                        self.failed = Some(e);
                        break;
                    }
                    None => match self.step(rows)? {
                        Some(row) => row,
                        None => break,
                    },
                },
            };
            let (values, size) = next;
            if !out.is_empty() && bytes.saturating_add(size) > self.caps.batch_bytes {
                self.waiting.push_front((values, size));
                break;
            }
            bytes = bytes.saturating_add(size);
            out.push(values);
        }
        Ok(out)
    }
}

/// Copies one row out of SQLite, checking each column's size before copying it: past
/// `cap` bytes in all, the row is refused.
fn read_row(
    row: &rusqlite::Row<'_>,
    width: usize,
    cap: usize,
) -> Result<(Vec<Value>, usize), GuestError> {
    let mut values = Vec::with_capacity(width);
    let mut size = VALUE_OVERHEAD;
    for i in 0..width {
        let value = row.get_ref(i).map_err(|e| sql_error(&e))?;
        values.push(copy_value(value, &mut size, cap)?);
    }
    Ok((values, size))
}

/// `value` as an owned [`Value`], with its bytes added to `size`, which may not pass `cap`.
fn copy_value(value: ValueRef<'_>, size: &mut usize, cap: usize) -> Result<Value, GuestError> {
    let borrowed = match value {
        ValueRef::Text(b) | ValueRef::Blob(b) => b.len(),
        _ => 0,
    };
    *size = size.saturating_add(VALUE_OVERHEAD + borrowed);
    if *size > cap {
        return Err(row_too_large(cap));
    }
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Integer(n),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        // TEXT that is not valid UTF-8 cannot cross a WIT `string`: its bytes go as they are.
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(text) => Value::Text(text.to_owned()),
            Err(_) => Value::TextBytes(t.to_vec()),
        },
    })
}

fn row_too_large(cap: usize) -> GuestError {
    GuestError::TooLarge(format!(
        "row larger than {cap} bytes, the cap on one row (a quarter of the plugin's memory_mb); \
         select fewer or shorter columns (substr(), length())"
    ))
}

/// A guest's parameter bound as its storage class; `text-bytes` as TEXT with its bytes
/// unchanged (rusqlite's owned `Value::Text` needs valid UTF-8).
struct Param(Value);

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ToSqlOutput::Borrowed;
        Ok(Borrowed(match &self.0 {
            Value::Null => ValueRef::Null,
            Value::Integer(n) => ValueRef::Integer(*n),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
            Value::TextBytes(b) => ValueRef::Text(b),
        }))
    }
}

/// SQLite's error, as the guest's fault: refused by the authorizer, too big, interrupted,
/// or bad SQL.
fn sql_error(e: &rusqlite::Error) -> GuestError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::AuthorizationForStatementDenied) => GuestError::AccessDenied(
            "statement refused: connections are read-only (no writes, transactions, ATTACH, DETACH, writing pragmas or extensions)".into(),
        ),
        Some(rusqlite::ErrorCode::ReadOnly) => {
            GuestError::AccessDenied(format!("statement refused: read-only connection ({e})"))
        }
        Some(rusqlite::ErrorCode::TooBig) => GuestError::TooLarge(
            "value too large: SQLite may not build a string or blob past the plugin's row cap (a quarter of its memory_mb)".into(),
        ),
        Some(rusqlite::ErrorCode::OperationInterrupted) => {
            GuestError::Other("interrupted: the plugin's call time limit passed".into())
        }
        // A refused function or pragma comes back as a plain error saying so.
        _ if e.to_string().contains("not authorized") => {
            GuestError::AccessDenied(format!("statement refused: {e}"))
        }
        _ => GuestError::InvalidArgument(e.to_string()),
    }
}

/// What host calls see: the context plus the current call's deadline.
pub struct SqliteView<'a> {
    ctx: &'a mut SqliteCtx,
    deadline: Instant,
}

type SqlResult<T> = wasmtime::Result<Result<T, GuestError>>;

impl SqliteView<'_> {
    fn connection(&self, id: u32) -> Result<&SqliteConnection, GuestError> {
        self.ctx
            .table
            .get::<SqliteConnection>(&Resource::new_borrow(id))
            .map_err(|_| GuestError::NotFound("connection closed".into()))
    }

    /// Sends `job` to the thread of connection `id`; the handle to interrupt it. Any job
    /// but `next` ends the live cursor, so its read-ahead is stopped.
    fn submit(&self, id: u32, job: Job) -> Result<Arc<InterruptHandle>, GuestError> {
        let conn = self.connection(id)?;
        if !matches!(job, Job::Next { .. }) {
            conn.ahead.cancelled.store(true, Ordering::Relaxed);
        }
        conn.jobs
            .send(job)
            .map_err(|_| GuestError::Other("connection thread ended".into()))?;
        Ok(conn.interrupt.clone())
    }
}

/// Waits for a connection thread's answer until `deadline`; past it, SQLite is interrupted.
async fn wait<T>(
    answer: oneshot::Receiver<Result<T, GuestError>>,
    interrupt: Arc<InterruptHandle>,
    deadline: Instant,
) -> Result<T, GuestError> {
    match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), answer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(GuestError::Other("connection thread ended".into())),
        Err(_) => {
            interrupt.interrupt();
            Err(GuestError::Other(
                "interrupted: the plugin's call time limit passed".into(),
            ))
        }
    }
}

/// Submits `job` to connection `id` and waits for the answer `rx`.
macro_rules! ask {
    ($view:expr, $id:expr, $job:expr, $rx:expr) => {{
        // Counted from before the job is sent, so its read-ahead never sees it unasked.
        let _in_flight = InFlight::enter(&$view.ctx.busy);
        match $view.submit($id, $job) {
            Ok(interrupt) => wait($rx, interrupt, $view.deadline).await,
            Err(e) => Err(e),
        }
    }};
}

impl sqlite::HostConnection for SqliteView<'_> {
    async fn open(&mut self, path: String) -> SqlResult<Resource<SqliteConnection>> {
        if self.ctx.open >= MAX_CONNECTIONS {
            return Ok(Err(GuestError::TooLarge(format!(
                "{MAX_CONNECTIONS} connections already open"
            ))));
        }
        let real = match self.ctx.readable(&path) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let caps = self.ctx.caps;
        let plugin = self.ctx.plugin.clone();
        let busy = self.ctx.busy.clone();
        let conn =
            match tokio::task::spawn_blocking(move || spawn_connection(&real, caps, plugin, busy))
                .await
            {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return Ok(Err(e)),
                Err(e) => return Ok(Err(GuestError::Other(format!("open: {e}")))),
            };
        match self.ctx.table.push(conn) {
            Ok(r) => {
                self.ctx.open += 1;
                Ok(Ok(r))
            }
            Err(e) => Ok(Err(GuestError::Other(format!("open: {e}")))),
        }
    }

    async fn attach(
        &mut self,
        this: Resource<SqliteConnection>,
        path: String,
        schema: String,
    ) -> SqlResult<()> {
        let valid = !schema.is_empty()
            && schema.len() <= 64
            && schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !schema.eq_ignore_ascii_case("main")
            && !schema.eq_ignore_ascii_case("temp");
        if !valid {
            return Ok(Err(GuestError::InvalidArgument(format!(
                "schema name `{schema}`: use letters, digits and _ (not main or temp)"
            ))));
        }
        let real = match self.ctx.readable(&path) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        match self.connection(this.rep()) {
            Ok(c) if c.has_attached => {
                return Ok(Err(GuestError::TooLarge(
                    "a connection attaches at most one database".into(),
                )));
            }
            Ok(_) => {}
            Err(e) => return Ok(Err(e)),
        }
        let (reply, answer) = oneshot::channel();
        let result = ask!(
            self,
            this.rep(),
            Job::Attach {
                path: real,
                schema,
                reply
            },
            answer
        );
        if result.is_ok()
            && let Ok(c) = self.ctx.table.get_mut::<SqliteConnection>(&this)
        {
            c.has_attached = true;
        }
        Ok(result)
    }

    async fn query(
        &mut self,
        this: Resource<SqliteConnection>,
        sql: String,
        params: Vec<Value>,
    ) -> SqlResult<Resource<SqliteCursor>> {
        if sql.len() > MAX_SQL_BYTES {
            return Ok(Err(GuestError::TooLarge(format!(
                "SQL of {} bytes (limit {MAX_SQL_BYTES})",
                sql.len()
            ))));
        }
        if self.ctx.cursors >= self.ctx.max_cursors {
            return Ok(Err(GuestError::TooLarge(format!(
                "{} cursors already open (limit sqlite_cursors); drop cursors you no longer read",
                self.ctx.cursors
            ))));
        }
        let generation = match self.ctx.table.get_mut::<SqliteConnection>(&this) {
            Ok(c) => {
                c.generation += 1;
                c.generation
            }
            Err(_) => return Ok(Err(GuestError::NotFound("connection closed".into()))),
        };
        let (reply, answer) = oneshot::channel();
        let job = Job::Query {
            sql,
            params,
            generation,
            reply,
        };
        let columns = match ask!(self, this.rep(), job, answer) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let cursor = SqliteCursor {
            connection: this.rep(),
            generation,
            columns,
        };
        match self.ctx.table.push(cursor) {
            Ok(r) => {
                self.ctx.cursors += 1;
                Ok(Ok(r))
            }
            Err(e) => Ok(Err(GuestError::Other(format!("query: {e}")))),
        }
    }

    async fn snapshot(&mut self, this: Resource<SqliteConnection>, path: String) -> SqlResult<()> {
        let target = match self.ctx.writable(&path) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let (reply, answer) = oneshot::channel();
        Ok(ask!(
            self,
            this.rep(),
            Job::Snapshot {
                path: target,
                reply
            },
            answer
        ))
    }

    async fn drop(&mut self, this: Resource<SqliteConnection>) -> wasmtime::Result<()> {
        // Dropping the sender ends the connection's thread once its current job is done.
        if self.ctx.table.delete(this).is_ok() {
            self.ctx.open = self.ctx.open.saturating_sub(1);
        }
        Ok(())
    }
}

impl sqlite::HostCursor for SqliteView<'_> {
    async fn columns(&mut self, this: Resource<SqliteCursor>) -> wasmtime::Result<Vec<String>> {
        Ok(self
            .ctx
            .table
            .get(&this)
            .map(|c| c.columns.clone())
            .unwrap_or_default())
    }

    async fn next(&mut self, this: Resource<SqliteCursor>, max: u32) -> SqlResult<Vec<Vec<Value>>> {
        let (connection, generation) = match self.ctx.table.get(&this) {
            Ok(c) => (c.connection, c.generation),
            Err(_) => return Ok(Err(GuestError::NotFound("cursor closed".into()))),
        };
        let current = match self.connection(connection) {
            Ok(c) => c.generation,
            Err(e) => return Ok(Err(e)),
        };
        if current != generation {
            return Ok(Err(GuestError::NotFound(
                "cursor ended: a newer query ran on its connection".into(),
            )));
        }
        let (reply, answer) = oneshot::channel();
        Ok(ask!(
            self,
            connection,
            Job::Next {
                max,
                generation,
                reply
            },
            answer
        ))
    }

    async fn drop(&mut self, this: Resource<SqliteCursor>) -> wasmtime::Result<()> {
        let Ok(cursor) = self.ctx.table.delete(this) else {
            return Ok(());
        };
        self.ctx.cursors = self.ctx.cursors.saturating_sub(1);
        // Reset its statement now, releasing the read lock; the thread answers nothing, so
        // the drop never waits. A connection already gone has nothing to reset.
        if let Ok(conn) = self.connection(cursor.connection) {
            if conn.generation == cursor.generation {
                // Its statement may be reading ahead: stop it between two steps.
                conn.ahead.cancelled.store(true, Ordering::Relaxed);
            }
            let _ = conn.jobs.send(Job::Close {
                generation: cursor.generation,
            });
        }
        Ok(())
    }
}

impl sqlite::Host for SqliteView<'_> {}

/// [`HasData`] marker: host calls get a [`SqliteView`] borrowed from the instance state.
pub struct SqliteData;

impl HasData for SqliteData {
    type Data<'a> = SqliteView<'a>;
}

/// The `sqlite` capability: the files and directories in `sqlite_read` and `sqlite_write`.
pub struct Sqlite;

impl Capability for Sqlite {
    type Grant = SqliteGrant;
    type Ctx = SqliteCtx;

    fn grant(config: &Config, plugin: &str) -> SqliteGrant {
        let grants = config.plugin(plugin).map(|p| &p.grants);
        SqliteGrant {
            read: grants.map(|g| g.sqlite_read.clone()).unwrap_or_default(),
            write: grants.map(|g| g.sqlite_write.clone()).unwrap_or_default(),
        }
    }

    fn context(env: &InstanceEnv<'_>, grant: &SqliteGrant) -> SqliteCtx {
        SqliteCtx::new(env.plugin, grant.clone(), env.limits)
    }

    /// Links the interface to each instance's [`SqliteCtx`] and call deadline.
    fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        sqlite::add_to_linker::<PluginState, SqliteData>(linker, |s| SqliteView {
            ctx: &mut s.caps.sqlite,
            deadline: s.deadline,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlite::{HostConnection as _, HostCursor as _};
    use std::time::Duration;

    /// A temp dir with `granted/a.db` and `outside/secret.db`, each holding table `t`.
    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            for (sub, name, rows) in [
                ("granted", "a.db", 3),
                ("granted", "b.db", 5),
                ("outside", "secret.db", 1),
            ] {
                std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
                let conn = Connection::open(dir.path().join(sub).join(name)).expect("create");
                conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
                    .expect("schema");
                for i in 0..rows {
                    conn.execute("INSERT INTO t(v) VALUES (?1)", [format!("row{i}")])
                        .expect("insert");
                }
            }
            std::fs::create_dir_all(dir.path().join("snapshots")).expect("mkdir");
            Self { dir }
        }

        fn path(&self, rel: &str) -> String {
            self.dir.path().join(rel).to_string_lossy().into_owned()
        }

        fn ctx(&self) -> SqliteCtx {
            self.ctx_with(&Limits::default())
        }

        fn ctx_with(&self, limits: &Limits) -> SqliteCtx {
            SqliteCtx::new(
                "p",
                SqliteGrant {
                    read: vec![self.dir.path().join("granted")],
                    write: vec![self.dir.path().join("snapshots")],
                },
                limits,
            )
        }
    }

    fn view(ctx: &mut SqliteCtx, limit: Duration) -> SqliteView<'_> {
        SqliteView {
            ctx,
            deadline: Instant::now() + limit,
        }
    }

    async fn all_rows(
        v: &mut SqliteView<'_>,
        conn: u32,
        sql: &str,
    ) -> Result<Vec<Vec<Value>>, GuestError> {
        let cursor = v
            .query(Resource::new_borrow(conn), sql.into(), vec![])
            .await
            .expect("no trap")?;
        let mut rows = Vec::new();
        loop {
            let batch = v
                .next(Resource::new_borrow(cursor.rep()), 2)
                .await
                .expect("no trap")?;
            if batch.is_empty() {
                return Ok(rows);
            }
            assert!(batch.len() <= 2, "batches honour max");
            rows.extend(batch);
        }
    }

    #[tokio::test]
    async fn a_granted_file_opens_and_rows_come_back_typed_in_batches() {
        let f = Fixture::new();
        let mut ctx = f.ctx();
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let conn = v
            .open(f.path("granted/a.db"))
            .await
            .unwrap()
            .expect("granted");
        let rows = all_rows(
            &mut v,
            conn.rep(),
            "SELECT id, v, 1.5, NULL, x'00ff' FROM t ORDER BY id",
        )
        .await
        .expect("query");
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0],
            vec![
                Value::Integer(1),
                Value::Text("row0".into()),
                Value::Real(1.5),
                Value::Null,
                Value::Blob(vec![0, 255])
            ]
        );
    }

    /// A WIT `string` cannot carry TEXT that is not valid UTF-8: it comes back as its bytes
    /// (not U+FFFD), and goes in as TEXT with those bytes.
    #[tokio::test]
    async fn text_that_is_not_valid_utf8_crosses_as_its_bytes_both_ways() {
        let f = Fixture::new();
        let mut ctx = f.ctx();
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let conn = v
            .open(f.path("granted/a.db"))
            .await
            .unwrap()
            .expect("granted");
        let rows = all_rows(&mut v, conn.rep(), "SELECT CAST(X'FF00' AS TEXT), 'é'")
            .await
            .expect("query");
        assert_eq!(
            rows,
            vec![vec![
                Value::TextBytes(vec![0xff, 0]),
                Value::Text("é".into())
            ]]
        );
        let cursor = v
            .query(
                Resource::new_borrow(conn.rep()),
                "SELECT typeof(?1), hex(?1)".into(),
                vec![Value::TextBytes(vec![0xfe, 0x41])],
            )
            .await
            .expect("no trap")
            .expect("query");
        let batch = v
            .next(Resource::new_borrow(cursor.rep()), 10)
            .await
            .expect("no trap")
            .expect("rows");
        assert_eq!(
            batch,
            vec![vec![Value::Text("text".into()), Value::Text("FE41".into())]]
        );
    }

    #[tokio::test]
    async fn paths_outside_the_grant_are_refused_however_they_are_spelt() {
        let f = Fixture::new();
        std::os::unix::fs::symlink(
            f.dir.path().join("outside/secret.db"),
            f.dir.path().join("granted/link.db"),
        )
        .expect("symlink");
        let mut ctx = f.ctx();
        let mut v = view(&mut ctx, Duration::from_secs(10));
        for path in [
            f.path("outside/secret.db"),
            f.path("granted/../outside/secret.db"),
            f.path("granted/link.db"),
        ] {
            let err = v.open(path.clone()).await.unwrap().err();
            assert!(
                matches!(err, Some(GuestError::AccessDenied(_))),
                "{path}: {err:?}"
            );
        }
        assert!(matches!(
            v.open(f.path("granted/missing.db")).await.unwrap(),
            Err(GuestError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn writes_attach_pragma_writes_and_extensions_are_refused() {
        let f = Fixture::new();
        let mut ctx = f.ctx();
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let conn = v
            .open(f.path("granted/a.db"))
            .await
            .unwrap()
            .expect("open")
            .rep();
        for sql in [
            "INSERT INTO t(v) VALUES ('x')".to_string(),
            "DELETE FROM t".to_string(),
            "CREATE TABLE u(x)".to_string(),
            format!("ATTACH DATABASE '{}' AS s", f.path("outside/secret.db")),
            "PRAGMA query_only = 0".to_string(),
            "PRAGMA journal_mode = DELETE".to_string(),
            "SELECT load_extension('x')".to_string(),
        ] {
            let err = all_rows(&mut v, conn, &sql).await.err();
            assert!(
                matches!(err, Some(GuestError::AccessDenied(_))),
                "{sql}: {err:?}"
            );
        }
        let rows = all_rows(&mut v, conn, "SELECT count(*) FROM t")
            .await
            .expect("reads still work");
        assert_eq!(rows, vec![vec![Value::Integer(3)]]);
        let info = all_rows(&mut v, conn, "PRAGMA table_info(t)")
            .await
            .expect("read pragmas work");
        assert_eq!(info.len(), 2);
    }

    #[tokio::test]
    async fn attach_takes_only_granted_files_and_only_one() {
        let f = Fixture::new();
        let mut ctx = f.ctx();
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let conn = v.open(f.path("granted/a.db")).await.unwrap().expect("open");
        let id = conn.rep();
        let denied = v
            .attach(
                Resource::new_borrow(id),
                f.path("outside/secret.db"),
                "aux".into(),
            )
            .await
            .unwrap();
        assert!(matches!(denied, Err(GuestError::AccessDenied(_))));
        let bad_name = v
            .attach(
                Resource::new_borrow(id),
                f.path("granted/b.db"),
                "main".into(),
            )
            .await
            .unwrap();
        assert!(matches!(bad_name, Err(GuestError::InvalidArgument(_))));
        v.attach(
            Resource::new_borrow(id),
            f.path("granted/b.db"),
            "aux".into(),
        )
        .await
        .unwrap()
        .expect("attach");
        let rows = all_rows(
            &mut v,
            id,
            "SELECT (SELECT count(*) FROM main.t), (SELECT count(*) FROM aux.t)",
        )
        .await
        .expect("both");
        assert_eq!(rows, vec![vec![Value::Integer(3), Value::Integer(5)]]);
        let second = v
            .attach(
                Resource::new_borrow(id),
                f.path("granted/b.db"),
                "other".into(),
            )
            .await
            .unwrap();
        assert!(matches!(second, Err(GuestError::TooLarge(_))));
        let write = all_rows(&mut v, id, "DELETE FROM aux.t").await.err();
        assert!(
            matches!(write, Some(GuestError::AccessDenied(_))),
            "attached file is read-only too"
        );
    }

    #[tokio::test]
    async fn a_newer_query_ends_the_older_cursor() {
        let f = Fixture::new();
        let mut ctx = f.ctx();
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let conn = v
            .open(f.path("granted/a.db"))
            .await
            .unwrap()
            .expect("open")
            .rep();
        let old = v
            .query(Resource::new_borrow(conn), "SELECT v FROM t".into(), vec![])
            .await
            .unwrap()
            .expect("q1");
        let new = v
            .query(
                Resource::new_borrow(conn),
                "SELECT id FROM t".into(),
                vec![],
            )
            .await
            .unwrap()
            .expect("q2");
        assert!(matches!(
            v.next(Resource::new_borrow(old.rep()), 10).await.unwrap(),
            Err(GuestError::NotFound(_))
        ));
        assert_eq!(
            v.next(Resource::new_borrow(new.rep()), 10)
                .await
                .unwrap()
                .expect("rows")
                .len(),
            3
        );
        assert_eq!(
            v.columns(Resource::new_borrow(new.rep())).await.unwrap(),
            vec!["id".to_string()]
        );
    }

    #[tokio::test]
    async fn a_runaway_query_is_interrupted_at_the_call_deadline() {
        let f = Fixture::new();
        let mut ctx = f.ctx();
        let mut v = view(&mut ctx, Duration::from_millis(200));
        let conn = v
            .open(f.path("granted/a.db"))
            .await
            .unwrap()
            .expect("open")
            .rep();
        let started = Instant::now();
        let sql = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) FROM c";
        let err = all_rows(&mut v, conn, sql).await.err();
        assert!(
            matches!(err, Some(GuestError::Other(ref m)) if m.contains("interrupted")),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// An owner's insert into `granted/a.db`, waiting up to `patience` for locks.
    fn owner_insert(f: &Fixture, patience: Duration) -> rusqlite::Result<usize> {
        let conn = Connection::open(f.dir.path().join("granted/a.db"))?;
        conn.busy_timeout(patience)?;
        conn.execute("INSERT INTO t(v) VALUES ('owner')", [])
    }

    /// Opens `granted/a.db`, starts `SELECT v FROM t` and reads one row, so the statement
    /// holds SQLite's read lock; the connection and cursor ids.
    async fn parked(v: &mut SqliteView<'_>, f: &Fixture) -> (u32, u32) {
        let (conn, cursor) = started(v, f, "SELECT v FROM t").await;
        let first = v.next(Resource::new_borrow(cursor), 1).await.unwrap();
        assert_eq!(first.expect("row").len(), 1);
        (conn, cursor)
    }

    fn limits(edit: impl FnOnce(&mut Limits)) -> Limits {
        let mut l = Limits::default();
        edit(&mut l);
        l
    }

    #[tokio::test]
    async fn transactions_and_savepoints_are_refused_by_name() {
        let f = Fixture::new();
        let mut ctx = f.ctx();
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let conn = v
            .open(f.path("granted/a.db"))
            .await
            .unwrap()
            .expect("open")
            .rep();
        for sql in [
            "BEGIN",
            "begin deferred transaction",
            "BEGIN EXCLUSIVE",
            "/* hidden */ BEGIN",
            "SAVEPOINT s",
            "RELEASE s",
            "ROLLBACK TO s",
            "COMMIT",
            "END",
        ] {
            let err = all_rows(&mut v, conn, sql).await.err();
            assert!(
                matches!(err, Some(GuestError::AccessDenied(ref m)) if m.contains("transactions")),
                "{sql}: {err:?}"
            );
        }
        // Other refusals keep their own message.
        let write = all_rows(&mut v, conn, "DELETE FROM t").await.err();
        assert!(
            matches!(write, Some(GuestError::AccessDenied(ref m)) if !m.contains("cannot open transactions")),
            "{write:?}"
        );
    }

    #[tokio::test]
    async fn an_idle_cursor_is_reset_and_says_so() {
        let f = Fixture::new();
        let mut ctx = f.ctx_with(&limits(|l| l.sqlite_cursor_idle_ms = 50));
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let (_conn, cursor) = parked(&mut v, &f).await;
        assert_reset_for_idling(&mut v, &f, cursor).await;
    }

    /// The owner's write goes through once the idle reset of `cursor` released the lock,
    /// and reading `cursor` then says why it ended.
    async fn assert_reset_for_idling(v: &mut SqliteView<'_>, f: &Fixture, cursor: u32) {
        owner_insert(f, Duration::from_secs(10)).expect("owner writes");
        let err = v.next(Resource::new_borrow(cursor), 1).await.unwrap().err();
        assert!(
            matches!(err, Some(GuestError::NotFound(ref m)) if m.contains("sqlite_cursor_idle_ms")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_cursor_read_within_the_idle_limit_reads_on() {
        let f = Fixture::new();
        let mut ctx = f.ctx_with(&limits(|l| l.sqlite_cursor_idle_ms = 600_000));
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let (_conn, cursor) = parked(&mut v, &f).await;
        let rest = v.next(Resource::new_borrow(cursor), 10).await.unwrap();
        assert_eq!(rest.expect("rows").len(), 2);
        let end = v.next(Resource::new_borrow(cursor), 10).await.unwrap();
        assert_eq!(end.expect("no more"), Vec::<Vec<Value>>::new());
    }

    #[tokio::test]
    async fn dropping_a_cursor_releases_the_lock_at_once() {
        let f = Fixture::new();
        let mut ctx = f.ctx_with(&limits(|l| l.sqlite_cursor_idle_ms = 600_000));
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let (_conn, cursor) = parked(&mut v, &f).await;
        assert!(
            owner_insert(&f, Duration::ZERO).is_err(),
            "the parked cursor holds the read lock"
        );
        sqlite::HostCursor::drop(&mut v, Resource::new_own(cursor))
            .await
            .unwrap();
        owner_insert(&f, Duration::from_secs(10)).expect("owner writes after the drop");
    }

    /// A statement on `t` that returns one row, then never another: stepping for its second
    /// runs until it is stopped, holding the file's read lock.
    const RUNAWAY: &str = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) \
         SELECT 0 UNION ALL SELECT v FROM c, t WHERE n < 0";

    /// Starts [`RUNAWAY`] on a new connection to `granted/a.db` and reads its one row, so
    /// the statement holds the read lock and the read-ahead steps on for the next row
    /// before the test goes on (a test racing the read-ahead's start proves nothing); the
    /// connection and cursor ids.
    async fn runaway(v: &mut SqliteView<'_>, f: &Fixture) -> (u32, u32) {
        let (conn, cursor) = started(v, f, RUNAWAY).await;
        let first = v.next(Resource::new_borrow(cursor), 1).await.unwrap();
        assert_eq!(first.expect("the one row").len(), 1);
        (conn, cursor)
    }

    /// Opens `granted/a.db` and starts `sql`, reading nothing; the connection and cursor ids.
    async fn started(v: &mut SqliteView<'_>, f: &Fixture, sql: &str) -> (u32, u32) {
        let conn = v
            .open(f.path("granted/a.db"))
            .await
            .unwrap()
            .expect("open")
            .rep();
        let cursor = v
            .query(Resource::new_borrow(conn), sql.into(), vec![])
            .await
            .unwrap()
            .expect("query")
            .rep();
        (conn, cursor)
    }

    #[tokio::test]
    async fn a_read_ahead_nobody_asks_for_stops_at_the_idle_limit() {
        let f = Fixture::new();
        let mut ctx = f.ctx_with(&limits(|l| l.sqlite_cursor_idle_ms = 50));
        let mut v = view(&mut ctx, Duration::from_secs(20));
        let (_conn, cursor) = runaway(&mut v, &f).await;
        assert_reset_for_idling(&mut v, &f, cursor).await;
    }

    #[tokio::test]
    async fn dropping_a_cursor_stops_its_read_ahead_at_once() {
        let f = Fixture::new();
        let mut ctx = f.ctx_with(&limits(|l| l.sqlite_cursor_idle_ms = 600_000));
        let mut v = view(&mut ctx, Duration::from_secs(20));
        let (conn, cursor) = runaway(&mut v, &f).await;
        sqlite::HostCursor::drop(&mut v, Resource::new_own(cursor))
            .await
            .unwrap();
        // Well before the ten-minute idle limit.
        owner_insert(&f, Duration::from_secs(10)).expect("owner writes after the drop");
        let rows = all_rows(&mut v, conn, "SELECT v FROM t")
            .await
            .expect("rows");
        assert_eq!(rows.len(), 4, "the owner's row among them");
    }

    #[tokio::test]
    async fn a_cursor_is_not_left_unread_while_the_plugin_waits_on_another() {
        let f = Fixture::new();
        let mut ctx = f.ctx_with(&limits(|l| l.sqlite_cursor_idle_ms = 50));
        let busy = ctx.busy.clone();
        let mut v = view(&mut ctx, Duration::from_secs(20));
        let (_conn, cursor) = parked(&mut v, &f).await;
        // Another of the plugin's calls in flight for four idle limits (as db-diff's other
        // join does): the parked cursor waits for it.
        let other_call = InFlight::enter(&busy);
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(other_call);
        let rest = v.next(Resource::new_borrow(cursor), 10).await.unwrap();
        assert_eq!(rest.expect("the rest, not a reset").len(), 2);
        // With nothing in flight the limit holds again: a parked cursor is reset.
        let (_conn, _cursor) = parked(&mut v, &f).await;
        owner_insert(&f, Duration::from_secs(10)).expect("owner writes after the reset");
    }

    #[tokio::test]
    async fn a_new_query_stops_the_read_ahead_of_the_cursor_it_ends() {
        let f = Fixture::new();
        let mut ctx = f.ctx_with(&limits(|l| l.sqlite_cursor_idle_ms = 600_000));
        let mut v = view(&mut ctx, Duration::from_secs(20));
        let (conn, _cursor) = runaway(&mut v, &f).await;
        let rows = all_rows(&mut v, conn, "SELECT v FROM t")
            .await
            .expect("rows");
        assert_eq!(rows.len(), 3);
    }

    #[tokio::test]
    async fn rows_read_ahead_come_in_order_once_whatever_the_batch_sizes() {
        let f = Fixture::new();
        let db = f.dir.path().join("granted/many.db");
        let conn = Connection::open(&db).expect("create");
        conn.execute_batch(
            "CREATE TABLE n(i INTEGER PRIMARY KEY);
             WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < 1000)
             INSERT INTO n SELECT k FROM c;",
        )
        .expect("rows");
        drop(conn);
        let mut ctx = f.ctx();
        let mut v = view(&mut ctx, Duration::from_secs(20));
        let conn = v
            .open(f.path("granted/many.db"))
            .await
            .unwrap()
            .expect("open");
        let cursor = v
            .query(conn, "SELECT i FROM n ORDER BY i".into(), vec![])
            .await
            .unwrap()
            .expect("query")
            .rep();
        let mut seen = Vec::new();
        // Asks for more, then fewer than the read-ahead holds (it reads what was last asked).
        for max in [1, 7, 300, 2, 50, 1, 10_000].into_iter().cycle() {
            let batch = v
                .next(Resource::new_borrow(cursor), max)
                .await
                .unwrap()
                .expect("batch");
            assert!(batch.len() <= max as usize);
            if batch.is_empty() {
                break;
            }
            seen.extend(batch.into_iter().map(|row| match row.as_slice() {
                [Value::Integer(i)] => *i,
                other => panic!("{other:?}"),
            }));
        }
        assert_eq!(seen, (1..=1000).collect::<Vec<i64>>());
    }

    #[tokio::test]
    async fn dropping_the_instance_context_ends_its_connections() {
        let f = Fixture::new();
        let mut ctx = f.ctx_with(&limits(|l| l.sqlite_cursor_idle_ms = 600_000));
        let mut v = view(&mut ctx, Duration::from_secs(10));
        parked(&mut v, &f).await;
        assert!(owner_insert(&f, Duration::ZERO).is_err(), "lock held");
        drop(ctx);
        owner_insert(&f, Duration::from_secs(10)).expect("owner writes after unload");
    }

    #[tokio::test]
    async fn cursors_past_the_limit_are_refused_until_one_is_dropped() {
        let f = Fixture::new();
        assert_eq!(Limits::default().sqlite_cursors, 16);
        let mut ctx = f.ctx_with(&limits(|l| l.sqlite_cursors = 2));
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let conn = v
            .open(f.path("granted/a.db"))
            .await
            .unwrap()
            .expect("open")
            .rep();
        let mut open = Vec::new();
        for _ in 0..2 {
            let c = v
                .query(Resource::new_borrow(conn), "SELECT 1".into(), vec![])
                .await
                .unwrap()
                .expect("under the cap");
            open.push(c.rep());
        }
        let third = v
            .query(Resource::new_borrow(conn), "SELECT 1".into(), vec![])
            .await
            .unwrap();
        assert!(
            matches!(third, Err(GuestError::TooLarge(ref m)) if m.contains("sqlite_cursors")),
            "{third:?}"
        );
        sqlite::HostCursor::drop(&mut v, Resource::new_own(open[0]))
            .await
            .unwrap();
        v.query(Resource::new_borrow(conn), "SELECT 1".into(), vec![])
            .await
            .unwrap()
            .expect("room again");
    }

    #[tokio::test]
    async fn rows_and_values_past_the_memory_share_are_refused() {
        let f = Fixture::new();
        // memory_mb = 1: rows up to 256 KiB.
        let mut ctx = f.ctx_with(&limits(|l| l.memory_mb = 1));
        assert_eq!(ctx.caps.row_bytes, 256 * 1024);
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let conn = v
            .open(f.path("granted/a.db"))
            .await
            .unwrap()
            .expect("open")
            .rep();
        for sql in [
            "SELECT zeroblob(300000)",
            "SELECT zeroblob(200000), zeroblob(200000)",
            "SELECT zeroblob(100000), randomblob(100000), CAST(zeroblob(100000) AS TEXT)",
        ] {
            let err = all_rows(&mut v, conn, sql).await.err();
            assert!(
                matches!(err, Some(GuestError::TooLarge(ref m)) if m.contains("memory_mb")),
                "{sql}: {err:?}"
            );
        }
        let rows = all_rows(&mut v, conn, "SELECT zeroblob(200000)")
            .await
            .expect("a row under the cap");
        assert_eq!(rows.len(), 1);
    }

    #[tokio::test]
    async fn batches_stay_under_the_cap_and_lose_no_row() {
        let f = Fixture::new();
        let mut ctx = f.ctx_with(&limits(|l| l.memory_mb = 1));
        let cap = ctx.caps.row_bytes;
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let conn = v
            .open(f.path("granted/a.db"))
            .await
            .unwrap()
            .expect("open")
            .rep();
        let sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 7) \
                   SELECT i, zeroblob(100000) FROM n";
        let cursor = v
            .query(Resource::new_borrow(conn), sql.into(), vec![])
            .await
            .unwrap()
            .expect("query")
            .rep();
        let mut seen = Vec::new();
        loop {
            let batch = v
                .next(Resource::new_borrow(cursor), 100)
                .await
                .unwrap()
                .expect("batch");
            if batch.is_empty() {
                break;
            }
            let bytes: usize = batch
                .iter()
                .flatten()
                .map(|v| match v {
                    Value::Blob(b) => b.len(),
                    _ => 0,
                })
                .sum();
            assert!(bytes <= cap, "batch of {bytes} bytes");
            assert!(batch.len() < 7, "split by bytes, not rows");
            seen.extend(batch.into_iter().map(|r| r[0].clone()));
        }
        assert_eq!(seen, (1..=7).map(Value::Integer).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn snapshots_go_only_into_granted_directories() {
        let f = Fixture::new();
        let mut ctx = f.ctx();
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let conn = v
            .open(f.path("granted/a.db"))
            .await
            .unwrap()
            .expect("open")
            .rep();
        let denied = v
            .snapshot(Resource::new_borrow(conn), f.path("outside/copy.db"))
            .await
            .unwrap();
        assert!(matches!(denied, Err(GuestError::AccessDenied(_))));
        v.snapshot(
            Resource::new_borrow(conn),
            f.path("snapshots/a.snapshot.db"),
        )
        .await
        .unwrap()
        .expect("snapshot");
        let copy =
            Connection::open(f.dir.path().join("snapshots/a.snapshot.db")).expect("open copy");
        let n: i64 = copy
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 3);
    }
}
