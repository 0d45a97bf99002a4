//! The store on Postgres (`[store] url = "postgres://…"`): the same tables, running totals
//! and answers as the SQLite store, so the rest of the daemon cannot tell them apart.
//!
//! - One connection, owned by this module's own thread (`roost-store-pg`). The blocking
//!   `postgres` client runs a private tokio runtime and must not be driven from inside the
//!   daemon's, so every call, from any thread, is handed to that thread and waited for.
//!   A connection found closed is opened again before the next call.
//! - Durability: every write commits before the call returns, with
//!   `synchronous_commit = on` set for the session whatever the server's default.
//! - A session left idle inside a transaction for [`IDLE_IN_TRANSACTION`] is ended by the
//!   server, so a hub stopped mid-write cannot hold its locks against the one that took
//!   over from it.
//! - Quotas stay exact when two connections write at once: a KV write first locks its
//!   plugin's `kv_usage` row and a queued message its target's `outbox_usage` row, so
//!   checks and writes of one namespace or one queue run one after another. Triggers keep
//!   the totals in the same transaction as the rows they count, as on SQLite.
//! - Keys are `bytea`, compared byte by byte like SQLite's BINARY order, so listing and
//!   prefixes behave the same (and `%`/`_` are ordinary characters).
//! - Migrations: their own append-only list ([`MIGRATIONS`]), each applied in a
//!   transaction holding an advisory lock and recorded in `roost_schema`, so two hubs
//!   starting at once migrate once; a schema newer than this build is refused.

mod copy;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::mpsc;
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, Row, Statement};

use super::{
    CheckFrom, HISTORY_KEEP, HistoryItem, KvLimits, KvOp, KvWriteError, MAX_HISTORY_DETAIL,
    OUTBOX_DROPPED, OutboxCaps, OutboxItem, Pushed, StoreError, TargetUsage, check_value_size,
    cut_detail, now_ms,
};

/// The Postgres schema, one entry per version: entry `i` takes a database from version `i`
/// to `i + 1` (the highest row of `roost_schema`). Only ever appended; an applied entry is
/// never edited. Independent of SQLite's list: each backend numbers its own.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: KV, outbox, history, and the running totals with the triggers that keep them.
    r#"
    CREATE TABLE kv (
        plugin TEXT  NOT NULL,
        key    BYTEA NOT NULL,
        value  BYTEA NOT NULL,
        PRIMARY KEY (plugin, key)
    );
    CREATE TABLE kv_usage (
        plugin TEXT   PRIMARY KEY,
        bytes  BIGINT NOT NULL
    );
    CREATE FUNCTION kv_usage_track() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            UPDATE kv_usage SET bytes = bytes - octet_length(OLD.key) - octet_length(OLD.value)
                WHERE plugin = OLD.plugin;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO kv_usage (plugin, bytes)
                VALUES (NEW.plugin, octet_length(NEW.key) + octet_length(NEW.value))
                ON CONFLICT (plugin) DO UPDATE SET bytes = kv_usage.bytes + EXCLUDED.bytes;
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER kv_usage_track AFTER INSERT OR UPDATE OR DELETE ON kv
        FOR EACH ROW EXECUTE FUNCTION kv_usage_track();

    -- Identity ids are never reused, so `ORDER BY id` is send order.
    CREATE TABLE outbox (
        id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        target     TEXT    COLLATE "C" NOT NULL,
        plugin     TEXT    NOT NULL,
        payload    TEXT    NOT NULL,
        created_at BIGINT  NOT NULL,
        attempts   INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
    );
    CREATE INDEX outbox_by_target ON outbox (target, id);
    CREATE TABLE outbox_usage (
        target   TEXT   COLLATE "C" PRIMARY KEY,
        messages BIGINT NOT NULL,
        bytes    BIGINT NOT NULL
    );
    CREATE FUNCTION outbox_usage_track() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            UPDATE outbox_usage
                SET messages = messages - 1, bytes = bytes - octet_length(OLD.payload)
                WHERE target = OLD.target;
            DELETE FROM outbox_usage WHERE target = OLD.target AND messages <= 0;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO outbox_usage (target, messages, bytes)
                VALUES (NEW.target, 1, octet_length(NEW.payload))
                ON CONFLICT (target) DO UPDATE SET messages = outbox_usage.messages + 1,
                    bytes = outbox_usage.bytes + EXCLUDED.bytes;
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER outbox_usage_track AFTER INSERT OR DELETE OR UPDATE OF target, payload
        ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_usage_track();

    CREATE TABLE history (
        id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at     BIGINT NOT NULL,
        plugin TEXT,
        kind   TEXT   NOT NULL,
        detail TEXT   NOT NULL
    );
    "#,
    // 2: hubs sharing this database (`leadership.rs`): the one lease whose holder leads,
    // and each hub's heartbeat for `!status`.
    r#"
    CREATE TABLE hub_lease (
        id          INTEGER     PRIMARY KEY CHECK (id = 1),
        holder      TEXT        NOT NULL,
        holder_name TEXT        NOT NULL,
        epoch       BIGINT      NOT NULL,
        expires     TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE hubs (
        name      TEXT        PRIMARY KEY,
        instance  TEXT        NOT NULL,
        version   TEXT        NOT NULL,
        role      TEXT        NOT NULL,
        plugins   TEXT        NOT NULL,
        started   TIMESTAMPTZ NOT NULL,
        heartbeat TIMESTAMPTZ NOT NULL
    );
    "#,
    // 3: plugins pinned to a hub (`run_on`): the commands each hub serves, and the calls
    // the leader hands to the hub running the plugin (`hub_calls.rs`).
    r#"
    ALTER TABLE hubs ADD COLUMN commands TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE hub_calls (
        id       BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        hub      TEXT        NOT NULL,
        plugin   TEXT        NOT NULL,
        request  TEXT        NOT NULL,
        deadline TIMESTAMPTZ NOT NULL,
        taken    BOOLEAN     NOT NULL DEFAULT false,
        answer   TEXT
    );
    CREATE INDEX hub_calls_waiting ON hub_calls (hub) WHERE NOT taken;
    "#,
    // 4: the platform id of the last message delivered to each target (as SQLite's 3).
    r#"
    CREATE TABLE outbox_posted (
        target TEXT COLLATE "C" PRIMARY KEY,
        post   TEXT COLLATE "C" NOT NULL
    );
    "#,
];

/// The advisory lock migrations hold (`pg_advisory_xact_lock`), the same number in every
/// roost: "roost" and a 1 in ASCII-ish hex.
const MIGRATION_LOCK: i64 = 0x726f_6f73_7400_0001;

/// How long connecting may take before the hub gives up (a host that drops packets would
/// otherwise hold the start for minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the server lets a store connection sit idle inside a transaction before it
/// ends the session (rolling the transaction back). Every transaction here runs from
/// `BEGIN` to `COMMIT` on the store's thread without waiting on anything else, so only a
/// hub that stopped mid-transaction (SIGSTOP, a frozen VM) stays idle in one; without the
/// limit its row locks would stall the hub that took over from it until it woke. A bit
/// over the leadership lease, so they are let go about when the lead passes on; the
/// sleeper's next call fails and the one after connects again.
pub(super) const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(5);

/// A handle to the Postgres store's thread. Dropping it ends the thread and closes the
/// connection.
pub(super) struct Postgres {
    /// `postgres://user@host:port/db`, for messages: never the password.
    target: String,
    calls: mpsc::Sender<Call>,
}

type Call = Box<dyn FnOnce(&mut Conn) + Send>;

/// The connection and what it has prepared; lives on the store's Postgres thread.
struct Conn {
    config: postgres::Config,
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// Wraps a Postgres error with what was being done, its server message included.
fn pg(doing: &'static str) -> impl Fn(postgres::Error) -> StoreError + Copy {
    move |source| StoreError::Postgres {
        doing,
        detail: detail(&source),
        source,
    }
}

/// The useful part of a Postgres error: the server's own message when there is one, else
/// the client's text and its cause (e.g. "connection refused").
pub(super) fn detail(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// `postgres://user@host:port/db` of a connection config: what messages name.
fn target_of(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{host}:{port}/{db}")
}

/// Converts a limit to Postgres' `bigint`; anything larger means "all".
fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Postgres {
    /// Connects to `url` (with `password`, when given, over any in the URL), brings the
    /// schema up to date and starts the thread that serves every later call.
    pub(super) fn connect(url: &str, password: Option<&str>) -> Result<Postgres, StoreError> {
        let mut config = postgres::Config::from_str(url).map_err(|source| StoreError::Url {
            detail: detail(&source),
        })?;
        if let Some(password) = password {
            config.password(password);
        }
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("roost");
        let target = target_of(&config);
        let (calls, queue) = mpsc::channel::<Call>();
        let (ready, opened) = mpsc::channel();
        let thread_target = target.clone();
        std::thread::Builder::new()
            .name("roost-store-pg".into())
            .spawn(move || {
                let conn = match Conn::open(config, &thread_target) {
                    Ok(conn) => conn,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                serve(conn, queue);
            })
            .map_err(|source| StoreError::Thread { source })?;
        opened.recv().map_err(|_| StoreError::ThreadGone)??;
        tracing::debug!(%target, "store open on postgres");
        Ok(Postgres { target, calls })
    }

    /// Where the store is, for messages.
    pub(super) fn target(&self) -> &str {
        &self.target
    }

    /// Runs `work` on the Postgres thread and waits for it.
    fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Conn) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.calls
            .send(Box::new(move |conn| {
                let _ = tx.send(work(conn));
            }))
            .map_err(|_| StoreError::ThreadGone)?;
        rx.recv().map_err(|_| StoreError::ThreadGone)
    }

    /// Like [`Postgres::call`] for work that fails with a Postgres error.
    fn query<T: Send + 'static>(
        &self,
        doing: &'static str,
        work: impl FnOnce(&mut Conn) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.call(work)?.map_err(pg(doing))
    }

    pub(super) fn schema_version(&self) -> Result<u32, StoreError> {
        self.query("reading the schema version", schema_version)
    }

    pub(super) fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (plugin, key) = (plugin.to_owned(), key.to_owned());
        self.query("reading a kv entry", move |c| {
            let row = c.query_opt(
                "SELECT value FROM kv WHERE plugin = $1 AND key = $2",
                &[&plugin, &key.as_bytes()],
            )?;
            row.map(|r| r.try_get(0)).transpose()
        })
    }

    pub(super) fn kv_set(&self, plugin: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let op = KvOp::Set(key.to_owned(), value.to_vec());
        match self.kv_batch(plugin, &[op], &KvLimits::UNLIMITED) {
            Ok(()) => Ok(()),
            Err(KvWriteError::Store(e)) => Err(e),
            Err(e) => Err(StoreError::NotCommitted {
                reason: e.to_string(),
            }),
        }
    }

    pub(super) fn kv_delete(&self, plugin: &str, key: &str) -> Result<bool, StoreError> {
        let (plugin, key) = (plugin.to_owned(), key.to_owned());
        self.query("deleting a kv entry", move |c| {
            c.transaction(same, |c| {
                lock_kv_usage(c, &plugin)?;
                delete(c, &plugin, &key)
            })
        })
    }

    pub(super) fn kv_list(
        &self,
        plugin: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let (plugin, prefix) = (plugin.to_owned(), prefix.to_owned());
        let limit = big(u64::try_from(limit).unwrap_or(u64::MAX));
        self.query("listing kv keys", move |c| {
            let end = super::prefix_successor(&prefix);
            let rows = match &end {
                Some(end) => c.query(
                    "SELECT key FROM kv WHERE plugin = $1 AND key >= $2 AND key < $3 \
                     ORDER BY key LIMIT $4",
                    &[&plugin, &prefix.as_bytes(), &end.as_bytes(), &limit],
                )?,
                None => c.query(
                    "SELECT key FROM kv WHERE plugin = $1 AND key >= $2 ORDER BY key LIMIT $3",
                    &[&plugin, &prefix.as_bytes(), &limit],
                )?,
            };
            rows.iter()
                .map(|r| {
                    let key: Vec<u8> = r.try_get(0)?;
                    Ok(String::from_utf8_lossy(&key).into_owned())
                })
                .collect()
        })
    }

    pub(super) fn kv_batch(
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
        let (plugin, ops, limits) = (plugin.to_owned(), ops.to_vec(), *limits);
        self.call(move |c| {
            let fail = |e| KvWriteError::Store(pg("applying a kv batch")(e));
            c.transaction(fail, |c| apply_batch(c, &plugin, &ops, &limits))
        })?
    }

    pub(super) fn kv_count(&self, plugin: &str) -> Result<u64, StoreError> {
        let plugin = plugin.to_owned();
        self.query("counting kv keys", move |c| {
            let row = c.query_one("SELECT COUNT(*) FROM kv WHERE plugin = $1", &[&plugin])?;
            Ok(unsigned(row.try_get(0)?))
        })
    }

    pub(super) fn kv_bytes(&self, plugin: &str) -> Result<u64, StoreError> {
        let plugin = plugin.to_owned();
        self.query("measuring kv usage", move |c| kv_usage(c, &plugin))
    }

    pub(super) fn outbox_push_capped(
        &self,
        target: &str,
        plugin: &str,
        payload: &str,
        caps: &OutboxCaps,
    ) -> Result<Pushed, StoreError> {
        let (target, plugin, payload, caps) = (
            target.to_owned(),
            plugin.to_owned(),
            payload.to_owned(),
            *caps,
        );
        self.query("queueing an outgoing message", move |c| {
            c.transaction(same, |c| push_capped(c, &target, &plugin, &payload, &caps))
        })
    }

    pub(super) fn outbox_usage(&self) -> Result<Vec<TargetUsage>, StoreError> {
        self.query("reading outbox usage", |c| {
            c.query(
                "SELECT target, messages, bytes FROM outbox_usage ORDER BY target",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(TargetUsage {
                    target: r.try_get(0)?,
                    messages: unsigned(r.try_get(1)?),
                    bytes: unsigned(r.try_get(2)?),
                })
            })
            .collect()
        })
    }

    pub(super) fn outbox_pending(
        &self,
        target: &str,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let target = target.to_owned();
        let limit = big(u64::try_from(limit).unwrap_or(u64::MAX));
        self.query("reading the outbox", move |c| {
            c.query(
                "SELECT id, target, plugin, payload, attempts, created_at FROM outbox \
                 WHERE target = $1 ORDER BY id LIMIT $2",
                &[&target, &limit],
            )?
            .iter()
            .map(outbox_item)
            .collect()
        })
    }

    pub(super) fn outbox_targets(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.query("reading the outbox", |c| {
            c.query(
                "SELECT target, COUNT(*) FROM outbox GROUP BY target ORDER BY target",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, unsigned(r.try_get(1)?))))
            .collect()
        })
    }

    pub(super) fn outbox_mark_sent(&self, id: i64) -> Result<u64, StoreError> {
        self.query("removing a delivered message", move |c| {
            c.execute("DELETE FROM outbox WHERE id = $1", &[&id])
        })
    }

    pub(super) fn outbox_mark_failed(&self, id: i64, error: &str) -> Result<u64, StoreError> {
        let error = error.replace('\0', "\u{FFFD}");
        self.query("recording a failed delivery", move |c| {
            c.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                &[&id, &error],
            )
        })
    }

    pub(super) fn outbox_take(
        &self,
        target: &str,
        sent: &[i64],
        last_post: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let (target, sent) = (target.to_owned(), sent.to_vec());
        let last_post = last_post.map(str::to_owned);
        let limit = big(u64::try_from(limit).unwrap_or(u64::MAX));
        self.query("taking messages to deliver", move |c| {
            c.transaction(same, |c| {
                c.execute("DELETE FROM outbox WHERE id = ANY($1)", &[&sent])?;
                if let Some(post) = &last_post {
                    c.execute(
                        "INSERT INTO outbox_posted (target, post) VALUES ($1, $2) \
                         ON CONFLICT (target) DO UPDATE SET post = EXCLUDED.post \
                         WHERE (length(EXCLUDED.post), EXCLUDED.post) \
                             > (length(outbox_posted.post), outbox_posted.post)",
                        &[&target, post],
                    )?;
                }
                let items = c
                    .query(
                        "SELECT id, target, plugin, payload, attempts, created_at FROM outbox \
                         WHERE target = $1 ORDER BY id LIMIT $2",
                        &[&target, &limit],
                    )?
                    .iter()
                    .map(outbox_item)
                    .collect::<Result<Vec<_>, _>>()?;
                let taken: Vec<i64> = items.iter().map(|i| i.id).collect();
                c.execute(
                    "UPDATE outbox SET attempts = attempts + 1 WHERE id = ANY($1)",
                    &[&taken],
                )?;
                Ok(items)
            })
        })
    }

    pub(super) fn outbox_check_from(&self, id: i64, target: &str) -> Result<CheckFrom, StoreError> {
        let target = target.to_owned();
        self.query("reading the last post", move |c| {
            let row = c.query_one(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE id = $1), \
                        (SELECT post FROM outbox_posted WHERE target = $2)",
                &[&id, &target],
            )?;
            Ok(CheckFrom::new(row.try_get(0)?, row.try_get(1)?))
        })
    }

    pub(super) fn outbox_attempt(&self, id: i64) -> Result<bool, StoreError> {
        self.query("recording a delivery attempt", move |c| {
            c.execute(
                "UPDATE outbox SET attempts = attempts + 1 WHERE id = $1",
                &[&id],
            )
            .map(|counted| counted > 0)
        })
    }

    pub(super) fn outbox_attempt_not_made(&self, id: i64) -> Result<(), StoreError> {
        self.query("taking back an attempt not made", move |c| {
            c.execute(
                "UPDATE outbox SET attempts = attempts - 1 WHERE id = $1 AND attempts > 0",
                &[&id],
            )
            .map(drop)
        })
    }

    pub(super) fn outbox_note_error(&self, id: i64, error: &str) -> Result<(), StoreError> {
        let error = error.replace('\0', "\u{FFFD}");
        self.query("recording a failed delivery", move |c| {
            c.execute(
                "UPDATE outbox SET last_error = $2 WHERE id = $1",
                &[&id, &error],
            )
            .map(drop)
        })
    }

    pub(super) fn history_push(
        &self,
        plugin: Option<&str>,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        // Postgres text cannot hold NUL; an error message with one keeps the rest.
        let detail = cut_detail(&detail.replace('\0', "\u{FFFD}"), MAX_HISTORY_DETAIL).to_owned();
        let (plugin, kind) = (plugin.map(str::to_owned), kind.to_owned());
        self.query("recording an event", move |c| {
            c.transaction(same, |c| {
                insert_history(c, plugin.as_deref(), &kind, &detail)
            })
        })
    }

    pub(super) fn history_recent(&self, limit: usize) -> Result<Vec<HistoryItem>, StoreError> {
        let limit = big(u64::try_from(limit).unwrap_or(u64::MAX));
        self.query("reading the history", move |c| {
            c.query(
                "SELECT at, plugin, kind, detail FROM history ORDER BY id DESC LIMIT $1",
                &[&limit],
            )?
            .iter()
            .map(|r| {
                Ok(HistoryItem {
                    at: r.try_get(0)?,
                    plugin: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    detail: r.try_get(3)?,
                })
            })
            .collect()
        })
    }

    /// Postgres checks its own pages; what can drift here is ours: every running total
    /// must equal a count of the rows it stands for. `"ok"`, or one line per mismatch.
    pub(super) fn integrity_check(&self) -> Result<String, StoreError> {
        let lines = self.query("checking database integrity", integrity_problems)?;
        if lines.is_empty() {
            return Ok("ok".to_string());
        }
        let report = lines.join("\n");
        tracing::error!(target = %self.target, %report, "database integrity check failed");
        Ok(report)
    }

    /// Runs one statement with no parameters: for tests that break the database on purpose.
    #[cfg(test)]
    pub(super) fn execute_raw(&self, sql: &'static str) -> Result<(), StoreError> {
        self.query("running a test statement", move |c| {
            c.client.batch_execute(sql)
        })
    }

    /// The one `bigint` a query with one text parameter returns: for tests that compare
    /// the running totals with the rows.
    #[cfg(test)]
    pub(super) fn query_i64(&self, sql: &'static str, arg: &str) -> Result<i64, StoreError> {
        let arg = arg.to_owned();
        self.query("running a test query", move |c| {
            c.query_one(sql, &[&arg])?.try_get(0)
        })
    }
}

/// Serves calls until the last [`Postgres`] handle is dropped. A connection found closed
/// (the server restarted) is opened again first; if that fails, the call meets the closed
/// connection and reports it.
fn serve(mut conn: Conn, queue: mpsc::Receiver<Call>) {
    while let Ok(call) = queue.recv() {
        if conn.client.is_closed()
            && let Err(e) = conn.reconnect()
        {
            tracing::error!("store: cannot reconnect to postgres: {}", detail(&e));
        }
        call(&mut conn);
    }
}

impl Conn {
    /// Connects and migrates: the start of the store's Postgres thread.
    fn open(config: postgres::Config, target: &str) -> Result<Conn, StoreError> {
        let client = connect(&config).map_err(|source| StoreError::Connect {
            target: target.to_string(),
            detail: detail(&source),
            source,
        })?;
        let mut conn = Conn {
            config,
            client,
            statements: HashMap::new(),
        };
        migrate(&mut conn, target)?;
        Ok(conn)
    }

    fn reconnect(&mut self) -> Result<(), postgres::Error> {
        self.client = connect(&self.config)?;
        self.statements.clear();
        tracing::info!("store: reconnected to postgres");
        Ok(())
    }

    /// `sql` prepared once per connection.
    fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.execute(&s, params)
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query(&s, params)
    }

    fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query_opt(&s, params)
    }

    fn query_one(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query_one(&s, params)
    }

    /// Runs `work` in a transaction: committed when it returns `Ok`, rolled back otherwise.
    /// `fail` turns a failed `BEGIN` or `COMMIT` into the caller's error.
    fn transaction<T, E>(
        &mut self,
        fail: impl Fn(postgres::Error) -> E,
        work: impl FnOnce(&mut Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        self.client.batch_execute("BEGIN").map_err(&fail)?;
        match work(self) {
            Ok(value) => {
                self.client.batch_execute("COMMIT").map_err(fail)?;
                Ok(value)
            }
            Err(e) => {
                if let Err(undo) = self.client.batch_execute("ROLLBACK") {
                    tracing::error!("store: cannot roll back: {}", detail(&undo));
                }
                Err(e)
            }
        }
    }
}

/// The identity, for [`Conn::transaction`] callers whose error is Postgres' own.
fn same(e: postgres::Error) -> postgres::Error {
    e
}

fn connect(config: &postgres::Config) -> Result<Client, postgres::Error> {
    let (mode, tls) = crate::pg_connect::for_mode(config.get_ssl_mode());
    let mut client = config.clone().ssl_mode(mode).connect(tls)?;
    // The server's default may trade durability for speed; a queued message or a KV write
    // that returned Ok must be on disk.
    client.batch_execute(&format!(
        "SET synchronous_commit = on; SET idle_in_transaction_session_timeout = {}",
        IDLE_IN_TRANSACTION.as_millis()
    ))?;
    Ok(client)
}

fn schema_version(c: &mut Conn) -> Result<u32, postgres::Error> {
    let row = c.query_one("SELECT COALESCE(MAX(version), 0) FROM roost_schema", &[])?;
    let v: i32 = row.try_get(0)?;
    Ok(u32::try_from(v).unwrap_or(0))
}

/// What a connection migrating the schema calls itself while it does, with this roost's
/// version and the schema after it: how another roost sees who is migrating.
const MIGRATING_AS: &str = "roost-migrate ";

/// Refuses to go on while a roost of another version migrates this database's schema
/// (one of the same version is waited for, under [`MIGRATION_LOCK`]).
fn refuse_while_migrated_elsewhere(c: &mut Conn, target: &str) -> Result<(), StoreError> {
    let ours = env!("CARGO_PKG_VERSION");
    let rows = c
        .client
        .query(
            "SELECT application_name, current_schema() FROM pg_stat_activity \
             WHERE pid <> pg_backend_pid() AND datname = current_database() \
               AND starts_with(application_name, $1)",
            &[&MIGRATING_AS],
        )
        .map_err(pg("looking for other roosts migrating the schema"))?;
    let other = rows.iter().find_map(|row| {
        let name: String = row.try_get(0).ok()?;
        let schema: Option<String> = row.try_get(1).ok()?;
        let (version, theirs) = name.strip_prefix(MIGRATING_AS)?.split_once(' ')?;
        (Some(theirs) == schema.as_deref() && version != ours).then(|| version.to_string())
    });
    match other {
        Some(version) => Err(StoreError::MigratingElsewhere {
            target: target.to_string(),
            version,
            ours: ours.to_string(),
        }),
        None => Ok(()),
    }
}

/// Applies the migrations the database has not had, each in its own transaction that
/// holds [`MIGRATION_LOCK`] and records the new version, so a second hub of the same
/// version starting at the same time waits, then sees the work done; one of another
/// version is refused while the migration runs.
fn migrate(c: &mut Conn, target: &str) -> Result<(), StoreError> {
    let known = u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX);
    refuse_while_migrated_elsewhere(c, target)?;
    loop {
        let step = c.transaction(
            pg("migrating the schema"),
            |c| -> Result<Option<u32>, StoreError> {
                let open = pg("reading the schema version");
                c.client
                    .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                    .map_err(open)?;
                let exists = c
                    .client
                    .query_one("SELECT to_regclass('roost_schema') IS NOT NULL", &[])
                    .and_then(|r| r.try_get::<_, bool>(0))
                    .map_err(open)?;
                if !exists {
                    c.client
                        .batch_execute(
                            "CREATE TABLE roost_schema (\
                            version    INTEGER PRIMARY KEY, \
                            applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                        )
                        .map_err(open)?;
                }
                let found = schema_version(c).map_err(open)?;
                if found > known {
                    return Err(StoreError::PostgresTooNew {
                        target: target.to_string(),
                        found,
                        known,
                    });
                }
                let Some(sql) = usize::try_from(found).ok().and_then(|i| MIGRATIONS.get(i)) else {
                    return Ok(None);
                };
                let version = found + 1;
                c.client
                    .execute(
                        "SELECT set_config('application_name', $1 || current_schema(), true)",
                        &[&format!("{MIGRATING_AS}{} ", env!("CARGO_PKG_VERSION"))],
                    )
                    .map_err(open)?;
                let failed = |source: postgres::Error| StoreError::MigratePostgres {
                    target: target.to_string(),
                    version,
                    detail: detail(&source),
                    source,
                };
                c.client.batch_execute(sql).map_err(failed)?;
                let v = i32::try_from(version).unwrap_or(i32::MAX);
                c.client
                    .execute("INSERT INTO roost_schema (version) VALUES ($1)", &[&v])
                    .map_err(failed)?;
                Ok(Some(version))
            },
        )?;
        match step {
            Some(version) => tracing::info!(%target, version, "database schema migrated"),
            None => return Ok(()),
        }
    }
}

/// Locks `plugin`'s `kv_usage` row (creating it at 0) for the rest of the transaction,
/// so another connection's write to the same namespace waits, and returns its total.
fn lock_kv_usage(c: &mut Conn, plugin: &str) -> Result<u64, postgres::Error> {
    let row = c.query_one(
        "INSERT INTO kv_usage (plugin, bytes) VALUES ($1, 0) \
         ON CONFLICT (plugin) DO UPDATE SET bytes = kv_usage.bytes RETURNING bytes",
        &[&plugin],
    )?;
    Ok(unsigned(row.try_get(0)?))
}

fn kv_usage(c: &mut Conn, plugin: &str) -> Result<u64, postgres::Error> {
    let row = c.query_opt("SELECT bytes FROM kv_usage WHERE plugin = $1", &[&plugin])?;
    Ok(row.map(|r| r.try_get(0)).transpose()?.map_or(0, unsigned))
}

fn set(c: &mut Conn, plugin: &str, key: &str, value: &[u8]) -> Result<(), postgres::Error> {
    c.execute(
        "INSERT INTO kv (plugin, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (plugin, key) DO UPDATE SET value = EXCLUDED.value",
        &[&plugin, &key.as_bytes(), &value],
    )
    .map(drop)
}

fn delete(c: &mut Conn, plugin: &str, key: &str) -> Result<bool, postgres::Error> {
    c.execute(
        "DELETE FROM kv WHERE plugin = $1 AND key = $2",
        &[&plugin, &key.as_bytes()],
    )
    .map(|n| n > 0)
}

/// The body of a KV batch, inside its transaction: the namespace locked first, then each
/// write checked against the quota before it is made (as on SQLite).
fn apply_batch(
    c: &mut Conn,
    plugin: &str,
    ops: &[KvOp],
    limits: &KvLimits,
) -> Result<(), KvWriteError> {
    let doing = pg("applying a kv batch");
    lock_kv_usage(c, plugin).map_err(doing)?;
    for op in ops {
        match op {
            KvOp::Set(key, value) => {
                check_quota(c, plugin, key, value, limits)?;
                set(c, plugin, key, value).map_err(doing)?;
            }
            KvOp::Delete(key) => {
                delete(c, plugin, key).map_err(doing)?;
            }
        }
    }
    Ok(())
}

/// Refuses writing `value` under `key` when it would grow `plugin`'s namespace past
/// `limits.max_bytes`; a write that does not grow it always passes.
fn check_quota(
    c: &mut Conn,
    plugin: &str,
    key: &str,
    value: &[u8],
    limits: &KvLimits,
) -> Result<(), KvWriteError> {
    if limits.max_bytes == u64::MAX {
        return Ok(());
    }
    let doing = pg("checking the kv quota");
    let old = c
        .query_opt(
            "SELECT octet_length(key) + octet_length(value) FROM kv \
             WHERE plugin = $1 AND key = $2",
            &[&plugin, &key.as_bytes()],
        )
        .and_then(|r| r.map(|r| r.try_get::<_, i32>(0)).transpose())
        .map_err(doing)?
        .map_or(0, |n| unsigned(i64::from(n)));
    super::quota_allows(old, key, value, limits, || {
        kv_usage(c, plugin).map_err(doing)
    })
}

/// Queues one message, then drops its target's oldest while over `caps`, inside the
/// caller's transaction. The target's usage row is locked first so two writers to one
/// queue cannot both see room.
fn push_capped(
    c: &mut Conn,
    target: &str,
    plugin: &str,
    payload: &str,
    caps: &OutboxCaps,
) -> Result<Pushed, postgres::Error> {
    c.execute(
        "SELECT 1 FROM outbox_usage WHERE target = $1 FOR UPDATE",
        &[&target],
    )?;
    let row = c.query_one(
        "INSERT INTO outbox (target, plugin, payload, created_at) VALUES ($1, $2, $3, $4) \
         RETURNING id",
        &[&target, &plugin, &payload, &now_ms()],
    )?;
    let id: i64 = row.try_get(0)?;
    let dropped = trim_outbox(c, target, id, caps)?;
    if dropped > 0 {
        record_drops(c, target, dropped, caps)?;
    }
    Ok(Pushed { id, dropped })
}

/// Deletes `target`'s oldest messages (older than `newest`, the one just queued) until
/// its queue is within `caps`; how many went. The oldest are read a few at a time (the
/// usual case is one over), then deleted in one statement.
fn trim_outbox(
    c: &mut Conn,
    target: &str,
    newest: i64,
    caps: &OutboxCaps,
) -> Result<u64, postgres::Error> {
    let Some(row) = c.query_opt(
        "SELECT messages, bytes FROM outbox_usage WHERE target = $1",
        &[&target],
    )?
    else {
        return Ok(0);
    };
    let (mut messages, mut bytes) = (unsigned(row.try_get(0)?), unsigned(row.try_get(1)?));
    let over = |messages: u64, bytes: u64| messages > caps.max_messages || bytes > caps.max_bytes;
    let mut victims: Vec<i64> = Vec::new();
    let mut after = 0i64;
    while over(messages, bytes) {
        let rows = c.query(
            "SELECT id, octet_length(payload) FROM outbox \
             WHERE target = $1 AND id > $2 AND id < $3 ORDER BY id LIMIT 16",
            &[&target, &after, &newest],
        )?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            if !over(messages, bytes) {
                break;
            }
            let (id, len): (i64, i32) = (r.try_get(0)?, r.try_get(1)?);
            victims.push(id);
            after = id;
            messages = messages.saturating_sub(1);
            bytes = bytes.saturating_sub(unsigned(i64::from(len)));
        }
    }
    if victims.is_empty() {
        return Ok(0);
    }
    c.execute("DELETE FROM outbox WHERE id = ANY($1)", &[&victims])
}

/// Records that `dropped` messages of `target` were dropped, growing the last entry of an
/// unbroken run of drops for it instead of adding one (see the SQLite `record_drops`).
fn record_drops(
    c: &mut Conn,
    target: &str,
    dropped: u64,
    caps: &OutboxCaps,
) -> Result<(), postgres::Error> {
    let prefix = format!("{target}: ");
    let last = c.query_opt(
        "SELECT id, detail FROM history \
         WHERE kind = $1 AND plugin IS NULL AND left(detail, length($2)) = $2 \
           AND id > COALESCE((SELECT MAX(id) FROM history WHERE kind <> $1), 0) \
         ORDER BY id DESC LIMIT 1",
        &[&OUTBOX_DROPPED, &prefix],
    )?;
    let last: Option<(i64, String)> = match last {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
        None => None,
    };
    let earlier = last.and_then(|(id, detail)| {
        let count = detail.strip_prefix(&prefix)?.split(' ').next()?;
        count.parse::<u64>().ok().map(|n| (id, n))
    });
    let total = dropped.saturating_add(earlier.map_or(0, |(_, n)| n));
    let detail = super::drops_detail(target, total, caps);
    match earlier {
        Some((id, _)) => c
            .execute(
                "UPDATE history SET at = $2, detail = $3 WHERE id = $1",
                &[&id, &now_ms(), &detail],
            )
            .map(drop),
        None => insert_history(c, None, OUTBOX_DROPPED, &detail),
    }
}

/// Appends an event and trims the history to the newest [`HISTORY_KEEP`] rows, inside
/// the caller's transaction.
fn insert_history(
    c: &mut Conn,
    plugin: Option<&str>,
    kind: &str,
    detail: &str,
) -> Result<(), postgres::Error> {
    c.execute(
        "INSERT INTO history (at, plugin, kind, detail) VALUES ($1, $2, $3, $4)",
        &[&now_ms(), &plugin, &kind, &detail],
    )?;
    let keep = big(u64::try_from(HISTORY_KEEP).unwrap_or(u64::MAX));
    c.execute(
        "DELETE FROM history WHERE id <= \
         (SELECT id FROM history ORDER BY id DESC LIMIT 1 OFFSET $1)",
        &[&keep],
    )
    .map(drop)
}

fn outbox_item(r: &Row) -> Result<OutboxItem, postgres::Error> {
    let attempts: i32 = r.try_get(4)?;
    Ok(OutboxItem {
        id: r.try_get(0)?,
        target: r.try_get(1)?,
        plugin: r.try_get(2)?,
        payload: r.try_get(3)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        created_at: r.try_get(5)?,
    })
}

/// Every running total that disagrees with the rows it counts, one line each.
fn integrity_problems(c: &mut Conn) -> Result<Vec<String>, postgres::Error> {
    let mut out = Vec::new();
    for r in c.query(
        "SELECT COALESCE(u.plugin, k.plugin), COALESCE(u.bytes, 0), COALESCE(k.bytes, 0) \
         FROM kv_usage u FULL JOIN (SELECT plugin, \
             SUM(octet_length(key) + octet_length(value))::bigint AS bytes \
             FROM kv GROUP BY plugin) k ON u.plugin = k.plugin \
         WHERE COALESCE(u.bytes, 0) <> COALESCE(k.bytes, 0)",
        &[],
    )? {
        let (plugin, total, rows): (String, i64, i64) =
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
        out.push(format!(
            "kv_usage of plugin {plugin}: total {total} bytes, rows hold {rows}"
        ));
    }
    for r in c.query(
        "SELECT COALESCE(u.target, o.target), COALESCE(u.messages, 0), COALESCE(o.messages, 0), \
                COALESCE(u.bytes, 0), COALESCE(o.bytes, 0) \
         FROM outbox_usage u FULL JOIN (SELECT target, COUNT(*) AS messages, \
             SUM(octet_length(payload))::bigint AS bytes FROM outbox GROUP BY target) o \
             ON u.target = o.target \
         WHERE COALESCE(u.messages, 0) <> COALESCE(o.messages, 0) \
            OR COALESCE(u.bytes, 0) <> COALESCE(o.bytes, 0)",
        &[],
    )? {
        let target: String = r.try_get(0)?;
        let counts: [i64; 4] = [r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?];
        out.push(format!(
            "outbox_usage of target {target}: total {}/{} messages and {}/{} bytes (total/rows)",
            counts[0], counts[1], counts[2], counts[3]
        ));
    }
    Ok(out)
}
