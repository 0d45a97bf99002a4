//! `--changeset`: the row changes as a binary changeset in the format of SQLite's session
//! extension, so `sqlite3changeset_apply()` (and every tool built on it) can apply them.
//!
//! The format, as SQLite's `sqlite3session.c` writes and reads it: per table a header
//! (`'T'`, the column count as a varint, one byte per column giving its position in the
//! PRIMARY KEY or 0 — `sqlite3changeset_apply` compares these bytes with the target's
//! `table_xinfo` `pk` values —, the table name and a NUL), then its changes: the operation
//! (INSERT 18, DELETE 9, UPDATE 23), the indirect flag (0), then the old record (DELETE,
//! UPDATE) and the new record (INSERT, UPDATE). A record is one field per column: a type
//! byte (0 undefined, 1 integer, 2 real, 3 text, 4 blob, 5 NULL), then 8 big-endian bytes
//! for integers and reals (the IEEE bits: exact), or a varint length and the bytes for
//! text and blobs. An UPDATE's old record holds the key and the old values of the changed
//! columns, its new record the new values of the changed columns; every other field is
//! undefined.
//!
//! A changeset addresses rows by their declared PRIMARY KEY and holds no schema: tables
//! without one, keys holding NULL, and schema changes cannot be carried. Those are left out
//! and named in [`Diff::notes`] (sqldiff leaves them out silently).

use super::data::{Counts, How, Key, RowChange, TableData};
use super::literal::ident;
use super::options::Options;
use super::report::{Diff, change, merge_stat, stat};
use super::schema::Table;
use super::scope::Scope;
use super::settings;
use super::tables::{has_unique, pk_has_nulls, table_data};
use super::{Db, Value};

/// SQLite's code for an INSERT change.
pub const INSERT: u8 = 18;
/// SQLite's code for a DELETE change.
pub const DELETE: u8 = 9;
/// SQLite's code for an UPDATE change.
pub const UPDATE: u8 = 23;

/// Appends `v` as an SQLite varint: big-endian groups of 7 bits with the high bit set on
/// all but the last byte; a value needing more than 8 bytes uses a 9th byte of 8 bits.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    if v & (0xff00_0000_u64 << 32) != 0 {
        let mut buf = [0u8; 9];
        buf[8] = v as u8;
        v >>= 8;
        for b in buf[..8].iter_mut().rev() {
            *b = (v & 0x7f) as u8 | 0x80;
            v >>= 7;
        }
        out.extend_from_slice(&buf);
        return;
    }
    let mut buf = [0u8; 9];
    let mut n = 0;
    loop {
        buf[n] = (v & 0x7f) as u8 | 0x80;
        n += 1;
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    buf[0] &= 0x7f;
    out.extend(buf[..n].iter().rev());
}

/// Appends one field of a record; `None` is an undefined field.
pub fn put_field(out: &mut Vec<u8>, value: Option<&Value>) {
    match value {
        None => out.push(0),
        Some(Value::Integer(i)) => {
            out.push(1);
            out.extend_from_slice(&i.to_be_bytes());
        }
        Some(Value::Real(r)) => {
            out.push(2);
            out.extend_from_slice(&r.to_bits().to_be_bytes());
        }
        Some(Value::Text(t)) => {
            out.push(3);
            put_varint(out, t.len() as u64);
            out.extend_from_slice(t.as_bytes());
        }
        Some(Value::TextBytes(b)) => {
            out.push(3);
            put_varint(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        Some(Value::Blob(b)) => {
            out.push(4);
            put_varint(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        Some(Value::Null) => out.push(5),
    }
}

/// Appends a table header: `pk` holds one byte per column, its position in the PRIMARY
/// KEY (1-based) or 0.
pub fn put_table(out: &mut Vec<u8>, name: &str, pk: &[u8]) {
    out.push(b'T');
    put_varint(out, pk.len() as u64);
    out.extend_from_slice(pk);
    out.extend_from_slice(name.as_bytes());
    out.push(0);
}

/// Appends a change: `op` (one of [`INSERT`], [`DELETE`], [`UPDATE`]), not indirect, then
/// its records in order.
pub fn put_change(out: &mut Vec<u8>, op: u8, records: &[&[Option<&Value>]]) {
    out.push(op);
    out.push(0);
    for record in records {
        for field in *record {
            put_field(out, *field);
        }
    }
}

/// A whole row as a record (INSERT's new, DELETE's old): every field defined.
fn full(values: &[Value]) -> Vec<Option<&Value>> {
    values.iter().map(Some).collect()
}

/// The changes of one keyed table, appended to `out` after its header (nothing when no
/// row differs). Deletes come first, then updates, then inserts; when an UPDATE could trip
/// a UNIQUE constraint in the middle of a swap, changed rows are a DELETE plus an INSERT.
fn table_changes(
    td: &TableData,
    pk: &[u8],
    db: &mut dyn Db,
    out: &mut Vec<u8>,
) -> Result<Counts, String> {
    let mut deletes = Vec::new();
    let mut updates = Vec::new();
    let mut inserts = Vec::new();
    let counts = td.scan_keyed(db, true, &mut |found| {
        match found {
            RowChange::Delete { old, .. } => put_change(&mut deletes, DELETE, &[&full(&old)]),
            RowChange::Update {
                old, new, changed, ..
            } => {
                if td.delete_insert {
                    put_change(&mut deletes, DELETE, &[&full(&old)]);
                    put_change(&mut inserts, INSERT, &[&full(&new)]);
                } else {
                    let is_changed = |i: usize| changed.contains(&i);
                    let before: Vec<Option<&Value>> = old
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            (pk.get(i).is_some_and(|&p| p != 0) || is_changed(i)).then_some(v)
                        })
                        .collect();
                    let after: Vec<Option<&Value>> = new
                        .iter()
                        .enumerate()
                        .map(|(i, v)| is_changed(i).then_some(v))
                        .collect();
                    put_change(&mut updates, UPDATE, &[&before, &after]);
                }
            }
            RowChange::Insert { new } => put_change(&mut inserts, INSERT, &[&full(&new)]),
        }
        Ok(())
    })?;
    if counts.changed() {
        // Exact: grown by doubling, a large changeset would hold up to twice its size.
        out.reserve_exact(64 + td.b_name.len() + deletes.len() + updates.len() + inserts.len());
        put_table(out, &td.b_name, pk);
        out.extend_from_slice(&deletes);
        out.extend_from_slice(&updates);
        out.extend_from_slice(&inserts);
    }
    Ok(counts)
}

/// What happened to a table whose definition differs: its name and "added", "dropped"
/// or "schema changed".
fn table_change<'t>(a: Option<&'t Table>, b: Option<&'t Table>) -> Option<(&'t str, &'static str)> {
    match (a, b) {
        (None, None) => None,
        (Some(t), None) => Some((&t.name, "dropped")),
        (None, Some(t)) => Some((&t.name, "added")),
        (Some(_), Some(t)) => Some((&t.name, "schema changed")),
    }
}

/// Names, comma-separated and quoted as SQL identifiers.
fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| ident(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the changeset cannot carry, gathered table by table for the notes.
#[derive(Debug, Default)]
struct LeftOut {
    /// Schema changes: `table "t" (added)`, `index "i" (changed)`.
    schema: Vec<String>,
    /// Tables with changed rows but no PRIMARY KEY.
    no_key: Vec<String>,
    /// Tables with changed rows whose PRIMARY KEY holds NULL.
    null_key: Vec<String>,
    /// Tables (lower case) whose changes are written: their triggers fire on apply.
    written: Vec<String>,
}

impl LeftOut {
    /// A table whose definition differs: named in the notes and counted as such.
    fn table(&mut self, a: Option<&Table>, b: Option<&Table>, result: &mut Diff) {
        if let Some((name, what)) = table_change(a, b) {
            self.schema.push(format!("table {} ({what})", ident(name)));
            result.tables.push(stat(name, Some(what)));
        }
    }

    /// The notes on what was left out, in [`Diff::notes`].
    fn notes(&self, result: &mut Diff) {
        if !self.schema.is_empty() {
            result.notes.push(format!(
                "a changeset holds no schema, so these changes are not in it (the SQL output has them): {}",
                self.schema.join(", ")
            ));
        }
        if !self.no_key.is_empty() {
            result.notes.push(format!(
                "a changeset addresses rows by PRIMARY KEY, so the row changes of these tables without one are not in it (sqldiff leaves them out silently; the SQL output has them): {}",
                list(&self.no_key)
            ));
        }
        if !self.null_key.is_empty() {
            result.notes.push(format!(
                "these tables have PRIMARY KEY values that are NULL, which a changeset cannot address, so their row changes are not in it (the SQL output has them): {}",
                list(&self.null_key)
            ));
        }
    }
}

/// The changeset of `main` (A) to `aux` (B): [`Diff::changeset`] holds the bytes,
/// [`Diff::tables`] the per-table counts (tables left out are counted too, so `--exit-code`
/// stays true to the data), [`Diff::notes`] what the changeset could not carry.
pub fn diff(db: &mut dyn Db, opts: &Options) -> Result<Diff, String> {
    let scope = Scope::read(db, opts)?;
    let mut result = Diff::default();
    let mut left_out = LeftOut::default();
    for n in &scope.names {
        table(db, &scope, n, opts, &mut result, &mut left_out)?;
    }
    objects(&scope, opts, &mut result, &mut left_out.schema);
    left_out.notes(&mut result);
    if opts.table.is_none() {
        settings_notes(db, &scope, &mut result)?;
    }
    let firing: Vec<String> = scope
        .a
        .objects
        .iter()
        .filter(|o| o.kind == "trigger" && left_out.written.contains(&o.tbl_name.to_lowercase()))
        .map(|o| o.name.clone())
        .collect();
    if !firing.is_empty() {
        result.notes.push(format!(
            "applying this changeset fires these triggers of the target database: {}",
            list(&firing)
        ));
    }
    Ok(result)
}

/// Table `n`'s row changes into the changeset, or what keeps them out of it.
fn table(
    db: &mut dyn Db,
    scope: &Scope,
    n: &str,
    opts: &Options,
    result: &mut Diff,
    left_out: &mut LeftOut,
) -> Result<(), String> {
    let (ta, tb) = scope.tables(n);
    if scope.is_virtual(n) {
        // Unchanged virtual tables keep their rows in shadow tables, diffed as tables.
        if scope.vt_changed(n) {
            left_out.table(ta, tb, result);
        }
        return Ok(());
    }
    if scope.shadow_goes(n) || scope.shadow_comes(n) {
        return Ok(());
    }
    let (x, y) = match (ta, tb) {
        (Some(x), Some(y)) if x.sql == y.sql => (x, y),
        _ => {
            left_out.table(ta, tb, result);
            return Ok(());
        }
    };
    let pk: Vec<String> = y.pk().iter().map(|c| c.name.clone()).collect();
    // Only a rowid table's declared key other than INTEGER PRIMARY KEY can hold NULL.
    let may_hold_null = !y.without_rowid() && y.ipk().is_none();
    let null_keys = !pk.is_empty() && may_hold_null && pk_has_nulls(db, x, y)?;
    if pk.is_empty() || null_keys {
        // Counted as multisets, so the summary and `--exit-code` still see them.
        let td = table_data(Some(x), y, How::Multiset, opts, scope.has_atan2);
        let counts = td.count(db)?;
        if counts.changed() {
            let list = if pk.is_empty() {
                &mut left_out.no_key
            } else {
                &mut left_out.null_key
            };
            list.push(y.name.clone());
        }
        merge_stat(&mut result.tables, &y.name, counts, false);
        return Ok(());
    }
    let how = How::Keyed(Key::Columns(pk));
    let mut td = table_data(Some(x), y, how, opts, scope.has_atan2);
    td.delete_insert = has_unique(db, y, &td.how)?;
    let flags: Vec<u8> = y.data_columns().map(|c| (c.pk & 0xff) as u8).collect();
    let counts = table_changes(&td, &flags, db, &mut result.changeset)?;
    if counts.changed() {
        left_out.written.push(y.name.to_lowercase());
    }
    merge_stat(&mut result.tables, &y.name, counts, false);
    Ok(())
}

/// Indexes, views and triggers that differ: counted, and named in `schema` for the notes.
fn objects(scope: &Scope, opts: &Options, result: &mut Diff, schema: &mut Vec<String>) {
    let (a, b) = (&scope.a, &scope.b);
    let in_scope = |kind: &str, tbl: &str| match kind {
        "view" => opts.table.is_none(),
        _ => opts.in_scope(tbl),
    };
    for kind in ["index", "view", "trigger"] {
        for o in a
            .objects
            .iter()
            .filter(|o| o.kind == kind && in_scope(kind, &o.tbl_name))
        {
            let what = match b.object(kind, &o.name) {
                None => "dropped",
                Some(x) if x.sql != o.sql => "changed",
                Some(_) => continue,
            };
            schema.push(format!("{kind} {} ({what})", ident(&o.name)));
            result.objects.push(change(kind, &o.name, what));
        }
        for o in b
            .objects
            .iter()
            .filter(|o| o.kind == kind && in_scope(kind, &o.tbl_name))
        {
            if a.object(kind, &o.name).is_none() {
                schema.push(format!("{kind} {} (added)", ident(&o.name)));
                result.objects.push(change(kind, &o.name, "added"));
            }
        }
    }
}

/// Notes (and [`Diff::settings`]) for the file-level settings that differ: a changeset
/// carries rows only, not `user_version`, `application_id` or the AUTOINCREMENT counters
/// (`sqlite_sequence` is counted among the tables, as in the SQL modes).
fn settings_notes(db: &mut dyn Db, scope: &Scope, result: &mut Diff) -> Result<(), String> {
    for c in settings::pragma_changes(db)? {
        result.notes.push(format!(
            "PRAGMA {} differs ({}); a changeset cannot carry it (the SQL output sets it)",
            c.name,
            c.what()
        ));
        result.settings.push(c);
    }
    let (a_has, b_has) = (scope.a.has_sequence, scope.b.has_sequence);
    if a_has || b_has {
        let counts = settings::sequence_counts(db, a_has, b_has)?;
        if counts.changed() {
            result.notes.push(
                "the AUTOINCREMENT counters (\"sqlite_sequence\") differ; a changeset cannot carry them"
                    .to_string(),
            );
        }
        merge_stat(&mut result.tables, "sqlite_sequence", counts, false);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn varints_follow_sqlites_record_format() {
        assert_eq!(varint(0), [0x00]);
        assert_eq!(varint(0x7f), [0x7f]);
        assert_eq!(varint(0x80), [0x81, 0x00]);
        assert_eq!(varint(300), [0x82, 0x2c]);
        assert_eq!(varint(0x3fff), [0xff, 0x7f]);
        assert_eq!(varint(0x4000), [0x81, 0x80, 0x00]);
        // Above 56 bits: eight 7-bit groups, then a full last byte.
        assert_eq!(varint(u64::MAX), [0xff; 9]);
        assert_eq!(
            varint(0x0100_0000_0000_0000),
            [0x80, 0xc0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]
        );
        assert_eq!(varint(0x00ff_ffff_ffff_ffff).len(), 8);
    }

    #[test]
    fn fields_carry_their_storage_class_and_exact_bits() {
        let mut out = Vec::new();
        for v in [
            Some(Value::Integer(-2)),
            Some(Value::Real(-0.0)),
            Some(Value::Text("é".into())),
            Some(Value::Blob(vec![0, 255])),
            Some(Value::Null),
            None,
        ] {
            put_field(&mut out, v.as_ref());
        }
        let mut want = vec![1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe];
        want.extend([2, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        want.extend([3, 2, 0xc3, 0xa9]);
        want.extend([4, 2, 0, 255]);
        want.extend([5, 0]);
        assert_eq!(out, want);
    }

    #[test]
    fn a_table_header_names_the_key_positions() {
        let mut out = Vec::new();
        put_table(&mut out, "kv", &[2, 0, 1]);
        assert_eq!(out, [b'T', 3, 2, 0, 1, b'k', b'v', 0]);
    }
}
