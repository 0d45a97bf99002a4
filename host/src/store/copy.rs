//! What `roost store copy` moves from one store to another (SQLite ↔ Postgres): every row
//! a hub keeps (plugins' KV, the outbox, the last post per target, the history), read in
//! one consistent snapshot, written into an empty store in one transaction, and per table
//! a row count and a SHA-256 of its rows, so a copy can be proven equal to its source.
//!
//! Not copied: the running totals (`kv_usage`, `outbox_usage`), which the destination's
//! triggers rebuild from the rows, and the hubs' lease and heartbeats, which belong to the
//! hubs running on a store, not to its data. Outbox and history ids are kept (they order a
//! target's queue, and the gateways recognise a message by its id), and so is each id
//! sequence, so an id is never reused after the move either. The last post per target
//! (`outbox_posted`) goes with the queue it belongs to: a message a crash left in doubt is
//! looked for after it in the copy as in the source (`gateways/discord.rs`).
//!
//! A snapshot is held in memory: a hub's store is bounded by its plugins' `kv_mb` quotas,
//! the outbox caps and [`super::HISTORY_KEEP`].

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::{Db, Store, StoreError, begin_write, sql};

/// How many rows a store holds in the tables a copy writes, the same query on both
/// backends: a copy goes only into a store where this is 0.
pub(super) const ROWS_HELD: &str = "SELECT (SELECT COUNT(*) FROM kv) + (SELECT COUNT(*) FROM outbox) \
     + (SELECT COUNT(*) FROM outbox_posted) + (SELECT COUNT(*) FROM history)";

/// One KV entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvRow {
    /// The plugin whose namespace it is in.
    pub plugin: String,
    /// Its key.
    pub key: String,
    /// Its value.
    pub value: Vec<u8>,
}

/// One queued message, with its id and delivery bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    /// Its id: send order within a target.
    pub id: i64,
    /// Where it goes.
    pub target: String,
    /// Who sent it.
    pub plugin: String,
    /// The message as JSON text.
    pub payload: String,
    /// When it was queued, in Unix milliseconds.
    pub created_at: i64,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// The platform's id for the last message delivered to a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostedRow {
    /// The target, as the outbox names it (`discord:<channel>`).
    pub target: String,
    /// The platform's id of the post.
    pub post: String,
}

/// One history entry, with its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRow {
    /// Its id: the order of events.
    pub id: i64,
    /// When, in Unix milliseconds.
    pub at: i64,
    /// The plugin it is about, if any.
    pub plugin: Option<String>,
    /// Its tag.
    pub kind: String,
    /// What happened.
    pub detail: String,
}

/// Every row of a store, in a canonical order (KV by plugin and key as bytes, last posts by
/// target as bytes, the rest by id) whatever the backend's collation, so equal stores give
/// equal checksums.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The KV entries of every plugin.
    pub kv: Vec<KvRow>,
    /// The messages waiting for delivery.
    pub outbox: Vec<OutboxRow>,
    /// The last post per target.
    pub posted: Vec<PostedRow>,
    /// The event history.
    pub history: Vec<HistoryRow>,
    /// The last outbox id handed out (0 when none), so the copy never hands it out again.
    pub outbox_last_id: i64,
    /// The last history id handed out (0 when none).
    pub history_last_id: i64,
}

/// One table's fingerprint: how many rows, and the SHA-256 of their canonical encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSum {
    /// `kv`, `outbox`, `outbox_posted` or `history`.
    pub table: &'static str,
    /// Its rows.
    pub rows: u64,
    /// SHA-256 over every row, in the snapshot's order.
    pub sha256: [u8; 32],
}

impl TableSum {
    /// The checksum as hex, for people to compare.
    pub fn hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Feeds a row's fields into a hash so that no two different rows encode alike: each
/// field is tagged (null or present) and length-prefixed.
struct RowHasher(Sha256);

impl RowHasher {
    fn bytes(&mut self, field: &[u8]) -> &mut Self {
        self.0.update([1]);
        self.0.update((field.len() as u64).to_le_bytes());
        self.0.update(field);
        self
    }

    fn text(&mut self, field: &str) -> &mut Self {
        self.bytes(field.as_bytes())
    }

    fn int(&mut self, field: i64) -> &mut Self {
        self.bytes(&field.to_le_bytes())
    }

    fn maybe_text(&mut self, field: Option<&str>) -> &mut Self {
        match field {
            Some(text) => self.text(text),
            None => {
                self.0.update([0]);
                self
            }
        }
    }
}

fn table_sum<T>(table: &'static str, rows: &[T], feed: impl Fn(&mut RowHasher, &T)) -> TableSum {
    let mut hasher = RowHasher(Sha256::new());
    for row in rows {
        feed(&mut hasher, row);
    }
    TableSum {
        table,
        rows: rows.len() as u64,
        sha256: hasher.0.finalize().into(),
    }
}

impl Snapshot {
    /// Puts the rows in the canonical order; both backends' readers end with it.
    pub(super) fn sorted(mut self) -> Snapshot {
        self.kv.sort_by(|a, b| {
            (a.plugin.as_bytes(), a.key.as_bytes()).cmp(&(b.plugin.as_bytes(), b.key.as_bytes()))
        });
        self.outbox.sort_by_key(|row| row.id);
        self.posted
            .sort_by(|a, b| a.target.as_bytes().cmp(b.target.as_bytes()));
        self.history.sort_by_key(|row| row.id);
        self
    }

    /// All rows, every table.
    pub fn rows(&self) -> u64 {
        (self.kv.len() + self.outbox.len() + self.posted.len() + self.history.len()) as u64
    }

    /// A count and checksum per table, in the order `kv`, `outbox`, `outbox_posted`,
    /// `history`.
    pub fn checksums(&self) -> [TableSum; 4] {
        [
            table_sum("kv", &self.kv, |h, r| {
                h.text(&r.plugin).text(&r.key).bytes(&r.value);
            }),
            table_sum("outbox", &self.outbox, |h, r| {
                h.int(r.id)
                    .text(&r.target)
                    .text(&r.plugin)
                    .text(&r.payload)
                    .int(r.created_at)
                    .int(r.attempts)
                    .maybe_text(r.last_error.as_deref());
            }),
            table_sum("outbox_posted", &self.posted, |h, r| {
                h.text(&r.target).text(&r.post);
            }),
            table_sum("history", &self.history, |h, r| {
                h.int(r.id)
                    .int(r.at)
                    .maybe_text(r.plugin.as_deref())
                    .text(&r.kind)
                    .text(&r.detail);
            }),
        ]
    }
}

impl Store {
    /// Every row of the store, read in one transaction (one consistent point in time even
    /// if a hub writes meanwhile), for `roost store copy`.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        match self.db() {
            Db::Sqlite(mut conn) => {
                read_sqlite(&mut conn).map_err(sql("reading the store for a copy"))
            }
            Db::Postgres(pg) => pg.snapshot(),
        }
    }

    /// Writes `snapshot` into this store in one transaction: all of it or, on any error,
    /// nothing. Refused with [`StoreError::NotEmpty`] when the store already holds a KV
    /// entry, a message or a history row, so a copy never mixes with (or overwrites) a
    /// hub's own state.
    pub fn restore(&self, snapshot: Arc<Snapshot>) -> Result<(), StoreError> {
        let target = self.location();
        match self.db() {
            Db::Sqlite(mut conn) => write_sqlite(&mut conn, &snapshot, &target),
            Db::Postgres(pg) => pg.restore(snapshot, target),
        }
    }

    /// The hub leading on this store right now, if any (its lease has not run out): a copy
    /// from or to a store a hub is using would miss or clash with its writes. Always
    /// `None` on SQLite, where the data dir's lock file says the same.
    pub fn leading_hub(&self) -> Result<Option<String>, StoreError> {
        match self.db() {
            Db::Sqlite(_) => Ok(None),
            Db::Postgres(pg) => pg.leading_hub(),
        }
    }
}

fn read_sqlite(conn: &mut Connection) -> Result<Snapshot, rusqlite::Error> {
    // A deferred transaction reads one snapshot of a WAL database; it writes nothing.
    let tx = conn.transaction()?;
    let kv = tx
        .prepare("SELECT plugin, key, value FROM kv")?
        .query_map([], |r| {
            Ok(KvRow {
                plugin: r.get(0)?,
                key: r.get(1)?,
                value: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let outbox = tx
        .prepare(
            "SELECT id, target, plugin, payload, created_at, attempts, last_error FROM outbox",
        )?
        .query_map([], |r| {
            Ok(OutboxRow {
                id: r.get(0)?,
                target: r.get(1)?,
                plugin: r.get(2)?,
                payload: r.get(3)?,
                created_at: r.get(4)?,
                attempts: r.get(5)?,
                last_error: r.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let posted = tx
        .prepare("SELECT target, post FROM outbox_posted")?
        .query_map([], |r| {
            Ok(PostedRow {
                target: r.get(0)?,
                post: r.get(1)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let history = tx
        .prepare("SELECT id, at, plugin, kind, detail FROM history")?
        .query_map([], |r| {
            Ok(HistoryRow {
                id: r.get(0)?,
                at: r.get(1)?,
                plugin: r.get(2)?,
                kind: r.get(3)?,
                detail: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let last_id = |table: &str| -> Result<i64, rusqlite::Error> {
        tx.query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = ?1",
            [table],
            |r| r.get(0),
        )
        .optional()
        .map(Option::unwrap_or_default)
    };
    let snapshot = Snapshot {
        kv,
        outbox,
        posted,
        history,
        outbox_last_id: last_id("outbox")?,
        history_last_id: last_id("history")?,
    };
    tx.finish()?;
    Ok(snapshot.sorted())
}

fn write_sqlite(conn: &mut Connection, s: &Snapshot, target: &str) -> Result<(), StoreError> {
    let doing = sql("copying into the store");
    let tx = begin_write(conn).map_err(doing)?;
    let rows: i64 = tx.query_row(ROWS_HELD, [], |r| r.get(0)).map_err(doing)?;
    if rows > 0 {
        return Err(StoreError::NotEmpty {
            target: target.to_string(),
            rows: rows.unsigned_abs(),
        });
    }
    insert_sqlite_rows(&tx, s).map_err(doing)?;
    tx.commit().map_err(doing)
}

fn insert_sqlite_rows(conn: &Connection, s: &Snapshot) -> Result<(), rusqlite::Error> {
    let mut kv = conn.prepare("INSERT INTO kv (plugin, key, value) VALUES (?1, ?2, ?3)")?;
    for r in &s.kv {
        kv.execute(params![r.plugin, r.key, r.value])?;
    }
    let mut outbox = conn.prepare(
        "INSERT INTO outbox (id, target, plugin, payload, created_at, attempts, last_error) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for r in &s.outbox {
        outbox.execute(params![
            r.id,
            r.target,
            r.plugin,
            r.payload,
            r.created_at,
            r.attempts,
            r.last_error
        ])?;
    }
    let mut posted = conn.prepare("INSERT INTO outbox_posted (target, post) VALUES (?1, ?2)")?;
    for r in &s.posted {
        posted.execute(params![r.target, r.post])?;
    }
    let mut history = conn.prepare(
        "INSERT INTO history (id, at, plugin, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for r in &s.history {
        history.execute(params![r.id, r.at, r.plugin, r.kind, r.detail])?;
    }
    for (table, last) in [("outbox", s.outbox_last_id), ("history", s.history_last_id)] {
        // AUTOINCREMENT's counter: raised to the source's, never lowered.
        let raised = conn.execute(
            "UPDATE sqlite_sequence SET seq = MAX(seq, ?2) WHERE name = ?1",
            params![table, last],
        )?;
        if raised == 0 && last > 0 {
            conn.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (?1, ?2)",
                params![table, last],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CheckFrom, KvLimits, KvOp, test_pg};

    /// The Discord id of the message `filled` delivered.
    const LAST_POST: &str = "1300000000000000042";

    fn pg_store() -> Store {
        Store::open_postgres(&test_pg::fresh_url(), test_pg::server().password.as_deref()).unwrap()
    }

    /// A store with a little of everything: two plugins' KV (one key not ASCII, one value
    /// binary), queued messages one of which failed once and one already delivered (its
    /// platform id kept as the target's last post), and history with and without a plugin.
    fn filled(store: &Store) {
        store.kv_set("bot", "greeting", b"hello").unwrap();
        store.kv_set("bot", "zürich", &[0, 159, 146, 150]).unwrap();
        store.kv_set("alias-monitor", "names", b"[]").unwrap();
        let first = store
            .outbox_push("console", "bot", "{\"text\":\"a\"}")
            .unwrap();
        let sent = store
            .outbox_push("discord:1", "bot", "{\"text\":\"b\"}")
            .unwrap();
        store
            .outbox_push("discord:1", "bot", "{\"text\":\"c\"}")
            .unwrap();
        store.outbox_mark_failed(first, "gateway down").unwrap();
        store
            .outbox_take("discord:1", &[sent], Some(LAST_POST), 0)
            .unwrap();
        store.history_push(None, "start", "hub started").unwrap();
        store
            .history_push(Some("bot"), "load", "loaded 1.0.0")
            .unwrap();
    }

    #[test]
    fn sqlite_to_postgres_and_back_keeps_every_row_and_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let source = Store::open(&dir.path().join("a.db")).unwrap();
        filled(&source);
        let snapshot = Arc::new(source.snapshot().unwrap());
        assert_eq!((snapshot.kv.len(), snapshot.outbox.len()), (3, 2));
        assert_eq!(
            snapshot.posted,
            [PostedRow {
                target: "discord:1".into(),
                post: LAST_POST.into()
            }]
        );
        let pg = pg_store();
        pg.restore(snapshot.clone()).unwrap();
        let on_pg = pg.snapshot().unwrap();
        assert_eq!(on_pg, *snapshot, "every row and id the same on Postgres");
        let back = Store::open(&dir.path().join("b.db")).unwrap();
        back.restore(Arc::new(on_pg)).unwrap();
        assert_eq!(back.snapshot().unwrap().checksums(), snapshot.checksums());
        // The copies work like the original: totals rebuilt, ids never reused.
        for store in [&pg, &back] {
            assert_eq!(
                store.kv_bytes("bot").unwrap(),
                source.kv_bytes("bot").unwrap()
            );
            assert_eq!(
                store.outbox_usage().unwrap(),
                source.outbox_usage().unwrap()
            );
            let next = store.outbox_push("console", "bot", "{}").unwrap();
            assert!(next > snapshot.outbox_last_id, "{next} reuses an id");
            // A message left in doubt there is looked for after the same last post.
            let queued = snapshot.outbox[1].id;
            assert_eq!(
                store.outbox_check_from(queued, "discord:1").unwrap(),
                CheckFrom::After(Some(LAST_POST.into()))
            );
        }
    }

    #[test]
    fn a_store_that_holds_anything_is_not_copied_into() {
        let source = Store::open_in_memory().unwrap();
        filled(&source);
        let snapshot = Arc::new(source.snapshot().unwrap());
        for target in [Store::open_in_memory().unwrap(), pg_store()] {
            target
                .history_push(None, "start", "a hub ran here")
                .unwrap();
            let refused = target.restore(snapshot.clone());
            assert!(
                matches!(refused, Err(StoreError::NotEmpty { rows: 1, .. })),
                "{refused:?}"
            );
            assert_eq!(target.snapshot().unwrap().rows(), 1, "nothing was written");
        }
    }

    #[test]
    fn a_failed_copy_writes_nothing() {
        let mut snapshot = Snapshot::default();
        snapshot.kv.push(KvRow {
            plugin: "bot".into(),
            key: "k".into(),
            value: b"v".to_vec(),
        });
        // Two messages with one id: the second insert fails after the KV row went in.
        let message = OutboxRow {
            id: 7,
            target: "console".into(),
            plugin: "bot".into(),
            payload: "{}".into(),
            created_at: 1,
            attempts: 0,
            last_error: None,
        };
        snapshot.outbox = vec![message.clone(), message];
        let snapshot = Arc::new(snapshot);
        for target in [Store::open_in_memory().unwrap(), pg_store()] {
            assert!(target.restore(snapshot.clone()).is_err());
            assert_eq!(target.snapshot().unwrap().rows(), 0);
            assert_eq!(target.kv_get("bot", "k").unwrap(), None);
        }
    }

    #[test]
    fn any_change_to_a_row_changes_its_tables_checksum_only() {
        let store = Store::open_in_memory().unwrap();
        filled(&store);
        let snapshot = store.snapshot().unwrap();
        let before = snapshot.checksums();
        let mut changed = snapshot.clone();
        changed.kv[0].value.push(0);
        let after = changed.checksums();
        assert_ne!(before[0].sha256, after[0].sha256);
        assert_eq!(before[1..], after[1..]);
        let mut moved = snapshot.clone();
        // A field boundary moved ("ab","c" against "a","bc") is a different row.
        moved.kv[0].plugin.push('x');
        moved.kv[0].key.remove(0);
        assert_ne!(moved.checksums()[0].sha256, before[0].sha256);
        let mut nulled = snapshot;
        nulled.history[1].plugin = None;
        assert_ne!(nulled.checksums()[3], before[3]);
        let mut reposted = store.snapshot().unwrap();
        reposted.posted[0].post.push('1');
        let after = reposted.checksums();
        assert_ne!(after[2], before[2]);
        assert_eq!((&after[..2], &after[3]), (&before[..2], &before[3]));
    }

    #[test]
    fn kv_limits_do_not_apply_to_a_copy() {
        // A copy moves what a hub already accepted, even if a plugin's quota shrank since.
        let source = Store::open_in_memory().unwrap();
        source.kv_set("bot", "big", &[7; 4096]).unwrap();
        let limits = KvLimits {
            max_bytes: 10,
            max_value_bytes: 10,
        };
        let more = [KvOp::Set("more".into(), b"x".to_vec())];
        assert!(source.kv_batch("bot", &more, &limits).is_err());
        let target = Store::open_in_memory().unwrap();
        target
            .restore(Arc::new(source.snapshot().unwrap()))
            .unwrap();
        assert_eq!(target.kv_get("bot", "big").unwrap(), Some(vec![7; 4096]));
    }
}
