//! `sqlite`: read-only access to SQLite files the plugin's grant names.
//!
//! Each connection is owned by its own thread (SQLite calls block), reached through a
//! channel; the async host call waits for the answer until the plugin's call deadline and
//! interrupts SQLite when it passes. Three locks keep a connection read-only: it is opened
//! with `SQLITE_OPEN_READ_ONLY`, `query_only` is on, and an authorizer refuses every
//! statement that would write, ATTACH/DETACH or load code.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, InterruptHandle, OpenFlags};
use tokio::sync::oneshot;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::denied;
use crate::runtime::bindings::GuestError;
use crate::runtime::bindings::roost::plugin::sqlite::{self, Value};
use crate::runtime::state::PluginState;

/// Most connections one instance may hold open (each is a thread and a file handle).
pub const MAX_CONNECTIONS: usize = 8;
/// Most rows one `next` returns, whatever the plugin asks for.
pub const MAX_BATCH_ROWS: u32 = 10_000;
/// Most bytes of values one `next` returns: the batch is copied into guest memory.
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Longest SQL text accepted.
pub const MAX_SQL_BYTES: usize = 1024 * 1024;

/// What config grants: files (or directories of files) to open read-only, and directories
/// snapshots may be written into. Both empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqliteGrant {
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
}

/// The host's side of a `connection` resource.
pub struct SqliteConnection {
    jobs: std::sync::mpsc::Sender<Job>,
    interrupt: Arc<InterruptHandle>,
    /// Bumped by every query, so an older cursor knows it has been ended.
    generation: u64,
    has_attached: bool,
}

/// The host's side of a `cursor` resource.
pub struct SqliteCursor {
    connection: u32,
    generation: u64,
    columns: Vec<String>,
}

/// Per-instance context: the grant and the instance's connections and cursors.
pub struct SqliteCtx {
    plugin: String,
    grant: SqliteGrant,
    table: ResourceTable,
    open: usize,
}

impl SqliteCtx {
    /// Context for one instance of `plugin` with its grant.
    pub fn new(plugin: &str, grant: SqliteGrant) -> Self {
        Self {
            plugin: plugin.to_string(),
            grant,
            table: ResourceTable::new(),
            open: 0,
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

fn authorize(ctx: AuthContext<'_>, attaching: &AtomicBool) -> Authorization {
    match ctx.action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => {
            Authorization::Allow
        }
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Authorization::Allow,
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
        } if attaching.load(Ordering::SeqCst) => Authorization::Allow,
        _ => Authorization::Deny,
    }
}

/// Opens `path` read-only on a new thread; the channel to it and its interrupt handle.
fn spawn_connection(
    path: &Path,
) -> Result<(std::sync::mpsc::Sender<Job>, Arc<InterruptHandle>), GuestError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| GuestError::InvalidArgument(format!("{}: {e}", path.display())))?;
    // Reading the schema now turns "file is not a database" into an error at open.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(|e| GuestError::InvalidArgument(format!("{}: {e}", path.display())))?;
    conn.pragma_update(None, "query_only", true)
        .map_err(|e| GuestError::Other(format!("query_only: {e}")))?;
    let attaching = Arc::new(AtomicBool::new(false));
    let flag = attaching.clone();
    conn.authorizer(Some(move |ctx: AuthContext<'_>| authorize(ctx, &flag)));
    let interrupt = Arc::new(conn.get_interrupt_handle());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("roost-sqlite".into())
        .spawn(move || serve(conn, rx, attaching))
        .map_err(|e| GuestError::Other(format!("cannot start a connection thread: {e}")))?;
    Ok((tx, interrupt))
}

/// The connection thread: one job at a time; while a query's cursor is live, `Next` jobs
/// read on from it and any other job ends it.
fn serve(conn: Connection, jobs: std::sync::mpsc::Receiver<Job>, attaching: Arc<AtomicBool>) {
    let mut pending: Option<Job> = None;
    loop {
        let job = match pending.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        match job {
            Job::Attach {
                path,
                schema,
                reply,
            } => {
                attaching.store(true, Ordering::SeqCst);
                let sql = format!("ATTACH DATABASE ?1 AS \"{schema}\"");
                let result = conn
                    .execute(&sql, [path.to_string_lossy().as_ref()])
                    .map(|_| ())
                    .map_err(|e| sql_error(&e));
                attaching.store(false, Ordering::SeqCst);
                let _ = reply.send(result);
            }
            Job::Snapshot { path, reply } => {
                let result = conn
                    .backup(rusqlite::MAIN_DB, &path, None)
                    .map_err(|e| GuestError::Other(format!("snapshot to {}: {e}", path.display())));
                let _ = reply.send(result);
            }
            Job::Next { reply, .. } => {
                let _ = reply.send(Err(GuestError::NotFound(
                    "cursor ended: a newer query ran on its connection".into(),
                )));
            }
            Job::Query {
                sql,
                params,
                generation,
                reply,
            } => {
                let mut stmt = match conn.prepare(&sql) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = reply.send(Err(sql_error(&e)));
                        continue;
                    }
                };
                let columns: Vec<String> =
                    stmt.column_names().iter().map(|c| c.to_string()).collect();
                let params: Vec<rusqlite::types::Value> = params.into_iter().map(to_sql).collect();
                let mut rows = match stmt.query(rusqlite::params_from_iter(params)) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = reply.send(Err(sql_error(&e)));
                        continue;
                    }
                };
                let _ = reply.send(Ok(columns.clone()));
                let mut done = false;
                loop {
                    match jobs.recv() {
                        Ok(Job::Next {
                            max,
                            generation: g,
                            reply,
                        }) if g == generation => {
                            let batch = if done {
                                Ok(Vec::new())
                            } else {
                                fetch(&mut rows, columns.len(), max, &mut done)
                            };
                            let _ = reply.send(batch);
                        }
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => return,
                    }
                }
            }
        }
    }
}

/// Reads up to `max` rows (and [`MAX_BATCH_BYTES`]) from a running statement.
fn fetch(
    rows: &mut rusqlite::Rows<'_>,
    width: usize,
    max: u32,
    done: &mut bool,
) -> Result<Vec<Vec<Value>>, GuestError> {
    let max = max.clamp(1, MAX_BATCH_ROWS) as usize;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while out.len() < max && bytes < MAX_BATCH_BYTES {
        let Some(row) = rows.next().map_err(|e| sql_error(&e))? else {
            *done = true;
            break;
        };
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            let value = match row.get_ref(i).map_err(|e| sql_error(&e))? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(n) => Value::Integer(n),
                rusqlite::types::ValueRef::Real(f) => Value::Real(f),
                rusqlite::types::ValueRef::Text(t) => {
                    bytes += t.len();
                    Value::Text(String::from_utf8_lossy(t).into_owned())
                }
                rusqlite::types::ValueRef::Blob(b) => {
                    bytes += b.len();
                    Value::Blob(b.to_vec())
                }
            };
            bytes += 8;
            values.push(value);
        }
        out.push(values);
    }
    Ok(out)
}

fn to_sql(v: Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Null => V::Null,
        Value::Integer(n) => V::Integer(n),
        Value::Real(f) => V::Real(f),
        Value::Text(t) => V::Text(t),
        Value::Blob(b) => V::Blob(b),
    }
}

/// SQLite's error, as the guest's fault: refused by the authorizer, interrupted, or bad SQL.
fn sql_error(e: &rusqlite::Error) -> GuestError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::AuthorizationForStatementDenied) => GuestError::AccessDenied(
            "statement refused: connections are read-only (no writes, ATTACH, DETACH, writing pragmas or extensions)".into(),
        ),
        Some(rusqlite::ErrorCode::ReadOnly) => {
            GuestError::AccessDenied(format!("statement refused: read-only connection ({e})"))
        }
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

    /// Sends `job` to the thread of connection `id`; the handle to interrupt it.
    fn submit(&self, id: u32, job: Job) -> Result<Arc<InterruptHandle>, GuestError> {
        let conn = self.connection(id)?;
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
    ($view:expr, $id:expr, $job:expr, $rx:expr) => {
        match $view.submit($id, $job) {
            Ok(interrupt) => wait($rx, interrupt, $view.deadline).await,
            Err(e) => Err(e),
        }
    };
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
        let (jobs, interrupt) =
            match tokio::task::spawn_blocking(move || spawn_connection(&real)).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => return Ok(Err(e)),
                Err(e) => return Ok(Err(GuestError::Other(format!("open: {e}")))),
            };
        let conn = SqliteConnection {
            jobs,
            interrupt,
            generation: 0,
            has_attached: false,
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
        Ok(self
            .ctx
            .table
            .push(cursor)
            .map_err(|e| GuestError::Other(format!("query: {e}"))))
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
        match self.connection(connection) {
            Ok(c) if c.generation != generation => {
                return Ok(Err(GuestError::NotFound(
                    "cursor ended: a newer query ran on its connection".into(),
                )));
            }
            Ok(_) => {}
            Err(e) => return Ok(Err(e)),
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
        let _ = self.ctx.table.delete(this);
        Ok(())
    }
}

impl sqlite::Host for SqliteView<'_> {}

/// [`HasData`] marker: host calls get a [`SqliteView`] borrowed from the instance state.
pub struct SqliteData;

impl HasData for SqliteData {
    type Data<'a> = SqliteView<'a>;
}

/// Links `roost:plugin/sqlite` to each instance's [`SqliteCtx`] and call deadline.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    sqlite::add_to_linker::<PluginState, SqliteData>(linker, |s| SqliteView {
        ctx: &mut s.sqlite,
        deadline: s.deadline,
    })
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
            SqliteCtx::new(
                "p",
                SqliteGrant {
                    read: vec![self.dir.path().join("granted")],
                    write: vec![self.dir.path().join("snapshots")],
                },
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
