//! `roost store copy` on Postgres: the snapshot read in one repeatable-read transaction,
//! the restore in one transaction that first checks the store is empty (see
//! `store/copy.rs` for what is copied and why).

use std::sync::Arc;

use postgres::Row;

use super::super::copy::{HistoryRow, KvRow, OutboxRow, PostedRow, ROWS_HELD, Snapshot};
use super::{Conn, Postgres, StoreError, detail, pg, unsigned};

impl Postgres {
    /// Every row, read at one point in time.
    pub(in crate::store) fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let doing = "reading the store for a copy";
        self.call(move |c| {
            c.client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .map_err(pg(doing))?;
            let read = read(c);
            if let Err(e) = c.client.batch_execute("ROLLBACK") {
                tracing::warn!("store: cannot end the copy's read: {}", detail(&e));
            }
            read
        })?
    }

    /// Writes `snapshot` into the store, all or nothing; refused when it holds any row.
    pub(in crate::store) fn restore(
        &self,
        snapshot: Arc<Snapshot>,
        target: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.transaction(pg("copying into the store"), |c| {
                let rows = count_rows(c).map_err(pg("copying into the store"))?;
                if rows > 0 {
                    return Err(StoreError::NotEmpty { target, rows });
                }
                insert_rows(c, &snapshot).map_err(pg("copying into the store"))
            })
        })?
    }

    /// The name of the hub whose lease has not run out, if any.
    pub(in crate::store) fn leading_hub(&self) -> Result<Option<String>, StoreError> {
        self.query("reading the hubs' lease", |c| {
            c.client
                .query_opt(
                    "SELECT holder_name FROM hub_lease WHERE expires > now()",
                    &[],
                )?
                .map(|row| row.try_get(0))
                .transpose()
        })
    }
}

fn read(c: &mut Conn) -> Result<Snapshot, StoreError> {
    let doing = pg("reading the store for a copy");
    let kv = c
        .client
        .query("SELECT plugin, key, value FROM kv", &[])
        .map_err(doing)?
        .iter()
        .map(kv_row)
        .collect::<Result<_, _>>()?;
    let outbox = c
        .client
        .query(
            "SELECT id, target, plugin, payload, created_at, attempts, last_error FROM outbox",
            &[],
        )
        .and_then(|rows| rows.iter().map(outbox_row).collect())
        .map_err(doing)?;
    let posted = c
        .client
        .query("SELECT target, post FROM outbox_posted", &[])
        .and_then(|rows| rows.iter().map(posted_row).collect())
        .map_err(doing)?;
    let history = c
        .client
        .query("SELECT id, at, plugin, kind, detail FROM history", &[])
        .and_then(|rows| rows.iter().map(history_row).collect())
        .map_err(doing)?;
    let last_id = |c: &mut Conn, table: &str| -> Result<i64, postgres::Error> {
        let row = c.client.query_one(
            "SELECT COALESCE(pg_sequence_last_value(pg_get_serial_sequence($1::text, 'id')::regclass), 0)",
            &[&table],
        )?;
        row.try_get(0)
    };
    let outbox_last_id = last_id(c, "outbox").map_err(doing)?;
    let history_last_id = last_id(c, "history").map_err(doing)?;
    Ok(Snapshot {
        kv,
        outbox,
        posted,
        history,
        outbox_last_id,
        history_last_id,
    }
    .sorted())
}

/// A KV row; keys are `bytea` here and always UTF-8 (they come from plugins as strings).
fn kv_row(r: &Row) -> Result<KvRow, StoreError> {
    let doing = pg("reading the store for a copy");
    let plugin: String = r.try_get(0).map_err(doing)?;
    let key: Vec<u8> = r.try_get(1).map_err(doing)?;
    let key = String::from_utf8(key).map_err(|e| StoreError::NotCopyable {
        reason: format!(
            "plugin {plugin:?} has a KV key that is not UTF-8 ({:?})",
            String::from_utf8_lossy(e.as_bytes())
        ),
    })?;
    Ok(KvRow {
        plugin,
        key,
        value: r.try_get(2).map_err(doing)?,
    })
}

fn outbox_row(r: &Row) -> Result<OutboxRow, postgres::Error> {
    Ok(OutboxRow {
        id: r.try_get(0)?,
        target: r.try_get(1)?,
        plugin: r.try_get(2)?,
        payload: r.try_get(3)?,
        created_at: r.try_get(4)?,
        attempts: i64::from(r.try_get::<_, i32>(5)?),
        last_error: r.try_get(6)?,
    })
}

fn posted_row(r: &Row) -> Result<PostedRow, postgres::Error> {
    Ok(PostedRow {
        target: r.try_get(0)?,
        post: r.try_get(1)?,
    })
}

fn history_row(r: &Row) -> Result<HistoryRow, postgres::Error> {
    Ok(HistoryRow {
        id: r.try_get(0)?,
        at: r.try_get(1)?,
        plugin: r.try_get(2)?,
        kind: r.try_get(3)?,
        detail: r.try_get(4)?,
    })
}

fn count_rows(c: &mut Conn) -> Result<u64, postgres::Error> {
    let row = c.client.query_one(ROWS_HELD, &[])?;
    Ok(unsigned(row.try_get(0)?))
}

fn insert_rows(c: &mut Conn, s: &Snapshot) -> Result<(), postgres::Error> {
    let kv = c
        .client
        .prepare("INSERT INTO kv (plugin, key, value) VALUES ($1, $2, $3)")?;
    for r in &s.kv {
        c.client
            .execute(&kv, &[&r.plugin, &r.key.as_bytes(), &r.value])?;
    }
    let outbox = c.client.prepare(
        "INSERT INTO outbox (id, target, plugin, payload, created_at, attempts, last_error) \
         OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )?;
    for r in &s.outbox {
        let attempts = i32::try_from(r.attempts).unwrap_or(i32::MAX);
        c.client.execute(
            &outbox,
            &[
                &r.id,
                &r.target,
                &r.plugin,
                &r.payload,
                &r.created_at,
                &attempts,
                &r.last_error,
            ],
        )?;
    }
    let posted = c
        .client
        .prepare("INSERT INTO outbox_posted (target, post) VALUES ($1, $2)")?;
    for r in &s.posted {
        c.client.execute(&posted, &[&r.target, &r.post])?;
    }
    let history = c.client.prepare(
        "INSERT INTO history (id, at, plugin, kind, detail) \
         OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5)",
    )?;
    for r in &s.history {
        c.client
            .execute(&history, &[&r.id, &r.at, &r.plugin, &r.kind, &r.detail])?;
    }
    let tops = [
        (
            "outbox",
            s.outbox
                .iter()
                .map(|r| r.id)
                .fold(s.outbox_last_id, i64::max),
        ),
        (
            "history",
            s.history
                .iter()
                .map(|r| r.id)
                .fold(s.history_last_id, i64::max),
        ),
    ];
    for (table, last) in tops {
        // The id sequence: past every id the source handed out.
        c.client.execute(
            "SELECT setval(pg_get_serial_sequence($1::text, 'id'), GREATEST($2::bigint, 1), $2::bigint > 0)",
            &[&table, &last],
        )?;
    }
    Ok(())
}
