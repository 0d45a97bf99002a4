//! The whole diff: schema comparison, the order of the output, and one [`TableData`] per
//! table.

use std::collections::BTreeSet;

use super::data::{Compare, Counts, How, Key, TableData};
use super::literal::ident;
use super::options::{Mode, Options};
use super::parse::{self, after_add_column, after_drop_column, constant_default};
use super::schema::{Affinity, Object, Schema, Table};
use super::settings::{self, SettingChange, sequence_sql};
use super::{Db, Value, query_all};

/// Per-table counts (and what happened to the table itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStat {
    /// The table's name.
    pub name: String,
    /// Rows inserted.
    pub inserts: u64,
    /// Rows deleted.
    pub deletes: u64,
    /// Rows changed in place.
    pub updates: u64,
    /// Rows equal in both (only in [`Mode::Counts`]).
    pub unchanged: u64,
    /// "added", "dropped", "schema changed", or None.
    pub schema: Option<&'static str>,
}

impl TableStat {
    /// Whether the table differs at all.
    pub fn changed(&self) -> bool {
        self.schema.is_some() || self.inserts + self.deletes + self.updates > 0
    }

    /// sqldiff's summary line: `t: 3 changes, 1 inserts, 2 deletes, 5 unchanged`, plus the
    /// schema note in parentheses.
    pub fn summary_line(&self) -> String {
        let mut s = format!(
            "{}: {} changes, {} inserts, {} deletes, {} unchanged",
            self.name, self.updates, self.inserts, self.deletes, self.unchanged
        );
        if let Some(note) = self.schema {
            s.push_str(&format!(" ({note})"));
        }
        s
    }
}

/// An index, view or trigger that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectChange {
    /// "index", "view" or "trigger".
    pub kind: String,
    /// Its name.
    pub name: String,
    /// "added", "dropped" or "changed".
    pub what: &'static str,
}

/// The result of [`diff`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    /// The SQL that turns A into B (empty when they are equal, and in counts and changeset
    /// modes).
    pub sql: String,
    /// [`Mode::Changeset`]: the row changes as a binary SQLite changeset (empty otherwise,
    /// and when no row that a changeset can carry differs).
    pub changeset: Vec<u8>,
    /// What the output leaves out, one line each, naming the tables and objects (a
    /// changeset cannot carry schema changes or rows of tables without a PRIMARY KEY).
    pub notes: Vec<String>,
    /// Every table in scope, in B's order then A's dropped ones.
    pub tables: Vec<TableStat>,
    /// Indexes, views and triggers that differ.
    pub objects: Vec<ObjectChange>,
    /// Database-level settings that differ (`user_version`, `application_id`, the
    /// AUTOINCREMENT counters): what a user who versions their schema relies on.
    pub settings: Vec<SettingChange>,
}

impl Diff {
    /// Whether A and B differ (in the compared scope).
    pub fn differs(&self) -> bool {
        !self.sql.trim().is_empty()
            || self.tables.iter().any(TableStat::changed)
            || !self.objects.is_empty()
            || !self.settings.is_empty()
    }

    /// `--summary`: one sqldiff-style line per table, then one per changed object.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for t in &self.tables {
            out.push_str(&t.summary_line());
            out.push('\n');
        }
        for o in &self.objects {
            out.push_str(&format!("{} {}: {}\n", o.kind, o.name, o.what));
        }
        for c in &self.settings {
            out.push_str(&format!("{}: {}\n", c.label(), c.what()));
        }
        out
    }

    /// The changed tables only, comma-separated: `t: 3 changes, 1 inserts` (zero counts
    /// left out), for chat notices.
    pub fn short_summary(&self) -> String {
        let mut parts = Vec::new();
        for t in self.tables.iter().filter(|t| t.changed()) {
            let mut bits = Vec::new();
            if let Some(n) = t.schema {
                bits.push(n.to_string());
            }
            for (n, w) in [
                (t.updates, "changes"),
                (t.inserts, "inserts"),
                (t.deletes, "deletes"),
            ] {
                if n > 0 {
                    bits.push(format!("{n} {w}"));
                }
            }
            parts.push(format!("{}: {}", t.name, bits.join(", ")));
        }
        for o in &self.objects {
            parts.push(format!("{} {}: {}", o.kind, o.name, o.what));
        }
        for c in &self.settings {
            parts.push(format!("{}: {}", c.label(), c.what()));
        }
        parts.join("; ")
    }

    /// `--stat`: git-style lines `name | N +I -D ~U` and a total line.
    pub fn stat(&self) -> String {
        let changed: Vec<&TableStat> = self.tables.iter().filter(|t| t.changed()).collect();
        let width = changed
            .iter()
            .map(|t| t.name.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        let (mut i, mut d, mut u) = (0, 0, 0);
        for t in &changed {
            let total = t.inserts + t.deletes + t.updates;
            out.push_str(&format!(
                " {:<width$} | {total:>6} +{} -{} ~{}{}\n",
                t.name,
                t.inserts,
                t.deletes,
                t.updates,
                t.schema.map(|s| format!(" ({s})")).unwrap_or_default()
            ));
            i += t.inserts;
            d += t.deletes;
            u += t.updates;
        }
        for o in &self.objects {
            out.push_str(&format!(" {} {} ({})\n", o.kind, o.name, o.what));
        }
        for c in &self.settings {
            out.push_str(&format!(" {} ({})\n", c.label(), c.what()));
        }
        out.push_str(&format!(
            " {} tables changed, {i} inserts(+), {d} deletes(-), {u} changes(~)\n",
            changed.len()
        ));
        out
    }
}

/// What happens to a table's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// Same text.
    Same,
    /// `ALTER TABLE` statements that reproduce B's text exactly.
    Alter(Vec<String>, bool),
    /// Rename the old one away, create B's, copy the common columns, drop the old one.
    RebuildCopy,
    /// Drop and create B's; the rows are reloaded.
    Recreate,
}

/// The rowid alias no column of either table shadows.
pub(super) fn rowid_alias(a: Option<&Table>, b: &Table) -> Option<&'static str> {
    ["rowid", "oid", "_rowid_"]
        .into_iter()
        .find(|r| b.column(r).is_none() && a.is_none_or(|a| a.column(r).is_none()))
}

/// Computes the diff of `main` (A) to `aux` (B) on `db`.
pub fn diff(db: &mut dyn Db, opts: &Options) -> Result<Diff, String> {
    if opts.mode == Mode::Changeset {
        return super::changeset::diff(db, opts);
    }
    let a = Schema::read(db, "main")?;
    let b = Schema::read(db, "aux")?;
    let has_atan2 = query_all(db, "SELECT atan2(0.0, -1.0)", &[]).is_ok();
    let sql_mode = opts.mode == Mode::Sql;
    let mut result = Diff::default();

    // Sections of the output, in the order they are applied.
    let mut comments = String::new();
    let mut drops = String::new();
    let mut tables_sql = String::new();
    let mut data_sql = String::new();
    let mut creates = String::new();
    let mut structural = false;

    // Tables (virtual tables first decide which shadow tables are recreated).
    let mut names: Vec<String> = b
        .objects
        .iter()
        .filter(|o| o.kind == "table")
        .map(|o| o.name.to_lowercase())
        .collect();
    for o in a.objects.iter().filter(|o| o.kind == "table") {
        let l = o.name.to_lowercase();
        if !names.contains(&l) {
            names.push(l);
        }
    }
    names.retain(|n| opts.in_scope(n));

    // Virtual tables created (or re-created) by this diff, and dropped ones.
    let mut vt_created: BTreeSet<String> = BTreeSet::new();
    let mut vt_dropped: BTreeSet<String> = BTreeSet::new();
    for n in &names {
        let (ta, tb) = (a.tables.get(n), b.tables.get(n));
        if !ta.is_some_and(Table::is_virtual) && !tb.is_some_and(Table::is_virtual) {
            continue;
        }
        match (ta, tb) {
            (Some(x), Some(y)) if x.sql == y.sql && x.is_virtual() && y.is_virtual() => {}
            _ => {
                if ta.is_some() {
                    vt_dropped.insert(n.clone());
                }
                if tb.is_some_and(Table::is_virtual) {
                    vt_created.insert(n.clone());
                }
            }
        }
        if let Some(t) = tb.filter(|t| t.is_virtual()) {
            let module = t.module.as_deref().unwrap_or("");
            if super::schema::shadow_suffixes(module).is_empty() {
                comments.push_str(&format!(
                    "-- virtual table {} (module {module}): its rows are not diffed\n",
                    ident(&t.name)
                ));
            }
        }
    }

    // Per-table plans.
    let mut plans: Vec<TableData> = Vec::new();
    let mut rebuilt: BTreeSet<String> = BTreeSet::new();
    let mut created: BTreeSet<String> = BTreeSet::new();
    for n in &names {
        let (ta, tb) = (a.tables.get(n), b.tables.get(n));
        // Virtual tables themselves: schema only.
        if ta.is_some_and(Table::is_virtual) || tb.is_some_and(Table::is_virtual) {
            if vt_dropped.contains(n) {
                if let Some(t) = ta {
                    drops.push_str(&format!("DROP TABLE {};\n", ident(&t.name)));
                }
                structural = true;
            }
            if let Some(t) = tb.filter(|_| vt_created.contains(n)) {
                tables_sql.push_str(&format!("{};\n", t.sql));
            }
            if let Some(t) = tb.filter(|_| vt_created.contains(n) || vt_dropped.contains(n)) {
                let note = if ta.is_some() {
                    "schema changed"
                } else {
                    "added"
                };
                result.tables.push(stat(&t.name, Some(note)));
            } else if let (Some(t), None) = (ta, tb) {
                result.tables.push(stat(&t.name, Some("dropped")));
            }
            continue;
        }
        // Shadow tables of virtual tables this diff creates or drops come and go with them.
        let a_owner = a.shadow_owner(n).map(|t| t.name.to_lowercase());
        let b_owner = b.shadow_owner(n).map(|t| t.name.to_lowercase());
        let a_goes = a_owner.as_ref().is_some_and(|o| vt_dropped.contains(o));
        let b_comes = b_owner.as_ref().is_some_and(|o| vt_created.contains(o));
        if a_goes || b_comes {
            if let Some(t) = tb.filter(|_| b_comes) {
                plans.push(table_data(None, t, How::FullReload, opts, has_atan2));
            } else if let Some(t) = tb {
                // A shadow table of a dropped virtual table that B keeps as a plain table.
                tables_sql.push_str(&format!("{};\n", t.sql));
                plans.push(table_data(None, t, How::InsertAll, opts, has_atan2));
                created.insert(n.clone());
            }
            continue;
        }
        match (ta, tb) {
            (Some(t), None) => {
                drops_table(&mut drops, t);
                structural = true;
                let mut s = stat(&t.name, Some("dropped"));
                if !sql_mode {
                    s.deletes = super::query_count(
                        db,
                        &format!("SELECT count(*) FROM main.{}", ident(&t.name)),
                    )?;
                }
                result.tables.push(s);
            }
            (None, Some(t)) => {
                tables_sql.push_str(&format!("{};\n", t.sql));
                created.insert(n.clone());
                plans.push(table_data(None, t, How::InsertAll, opts, has_atan2));
            }
            (Some(x), Some(y)) => {
                let change = if x.sql == y.sql {
                    Change::Same
                } else {
                    table_change(x, y, opts)
                };
                let mut how_override = None;
                match &change {
                    Change::Same => {}
                    Change::Alter(stmts, drops_column) => {
                        for s in stmts {
                            tables_sql.push_str(s);
                        }
                        structural |= *drops_column;
                    }
                    Change::RebuildCopy => {
                        structural = true;
                        rebuilt.insert(n.clone());
                        tables_sql.push_str(&rebuild_sql(x, y, &a, &b));
                    }
                    Change::Recreate => {
                        structural = true;
                        rebuilt.insert(n.clone());
                        tables_sql.push_str(&format!(
                            "DROP TABLE {};\n{};\n",
                            ident(&x.name),
                            y.sql
                        ));
                        how_override = Some(How::InsertAll);
                    }
                }
                let how = match how_override {
                    Some(h) => h,
                    None => choose_how(db, x, y, &change, opts)?,
                };
                let mut td = table_data(Some(x), y, how, opts, has_atan2);
                if td.how != How::InsertAll && td.how != How::FullReload {
                    td.delete_insert = has_unique(db, y, &td.how)?;
                }
                if change != Change::Same {
                    td.a_name = Some(x.name.clone());
                    result.tables.push(stat(&y.name, Some("schema changed")));
                    plans.push(td);
                } else {
                    plans.push(td);
                }
            }
            (None, None) => {}
        }
    }

    // Rows.
    let mut data_changed: BTreeSet<String> = BTreeSet::new();
    if !opts.schema_only {
        for td in &plans {
            let counts = if sql_mode {
                let mut sql = String::new();
                let c = td.emit(db, &mut sql)?;
                data_sql.push_str(&sql);
                c
            } else {
                td.count(db)?
            };
            if counts.changed() {
                data_changed.insert(td.b_name.to_lowercase());
            }
            merge_stat(
                &mut result.tables,
                &td.b_name,
                counts,
                created.contains(&td.b_name.to_lowercase()),
            );
        }
        if opts.table.is_none() && b.has_sequence {
            let creates_autoinc = b
                .tables
                .iter()
                .filter(|(n, _)| created.contains(*n) || rebuilt.contains(*n))
                .any(|(_, t)| t.sql.to_ascii_uppercase().contains("AUTOINCREMENT"));
            if sql_mode {
                data_sql.push_str(&sequence_sql(db, a.has_sequence, creates_autoinc)?);
            }
            if settings::sequence_differs(db, a.has_sequence, b.has_sequence)? {
                result.settings.push(SettingChange::sequence());
            }
        }
    } else {
        for td in &plans {
            merge_stat(
                &mut result.tables,
                &td.b_name,
                Counts::default(),
                created.contains(&td.b_name.to_lowercase()),
            );
        }
    }
    // Order the stats as B lists its tables.
    // (Already in `names` order.)

    // Indexes, views, triggers.
    let in_scope = |o: &Object| match o.kind.as_str() {
        "view" => opts.table.is_none(),
        _ => opts.in_scope(&o.tbl_name),
    };
    let tables_gone = |tbl: &str| {
        let l = tbl.to_lowercase();
        !b.tables.contains_key(&l) || vt_dropped.contains(&l)
    };
    let table_reset = |tbl: &str| {
        let l = tbl.to_lowercase();
        rebuilt.contains(&l)
            || created.contains(&l)
            || vt_created.contains(&l)
            || vt_dropped.contains(&l)
    };
    let mut dropped_objects: BTreeSet<(String, String)> = BTreeSet::new();
    for kind in ["trigger", "view", "index"] {
        for o in a.objects.iter().filter(|o| o.kind == kind && in_scope(o)) {
            let same = b.object(kind, &o.name).is_some_and(|x| x.sql == o.sql);
            let drop = match kind {
                "trigger" => {
                    !same || structural || data_changed.contains(&o.tbl_name.to_lowercase())
                }
                "view" => !same || structural,
                _ => !same || table_reset(&o.tbl_name),
            };
            if !drop {
                continue;
            }
            dropped_objects.insert((kind.to_string(), o.name.to_lowercase()));
            if kind == "index"
                && tables_gone(&o.tbl_name)
                && a.tables.contains_key(&o.tbl_name.to_lowercase())
            {
                // Goes with its table.
                if !same {
                    result.objects.push(change(kind, &o.name, "dropped"));
                }
                continue;
            }
            drops.push_str(&format!(
                "DROP {} {};\n",
                kind.to_uppercase(),
                ident(&o.name)
            ));
            if !same {
                let what = if b.object(kind, &o.name).is_some() {
                    "changed"
                } else {
                    "dropped"
                };
                result.objects.push(change(kind, &o.name, what));
            }
        }
    }
    for o in b
        .objects
        .iter()
        .filter(|o| o.kind != "table" && in_scope(o))
    {
        let in_a = a.object(&o.kind, &o.name);
        let same = in_a.is_some_and(|x| x.sql == o.sql);
        let was_dropped = dropped_objects.contains(&(o.kind.clone(), o.name.to_lowercase()));
        let lost = o.kind != "view" && table_reset(&o.tbl_name);
        if same && !was_dropped && !lost {
            continue;
        }
        creates.push_str(&format!("{};\n", o.sql));
        if in_a.is_none() {
            result.objects.push(change(&o.kind, &o.name, "added"));
        }
    }
    // Triggers, then views, then indexes and tables.
    let drops = order_drops(&drops);

    // user_version and application_id belong to the file, not to one table.
    let mut pragmas = String::new();
    if opts.table.is_none() {
        let changes = settings::pragma_changes(db)?;
        pragmas = settings::pragma_sql(&changes);
        result.settings.splice(0..0, changes);
    }

    if sql_mode {
        let body = format!("{drops}{tables_sql}{data_sql}{creates}{pragmas}");
        if !body.is_empty() {
            let mut out = String::new();
            out.push_str(&comments);
            out.push_str("PRAGMA foreign_keys=OFF;\n");
            if opts.transaction {
                out.push_str("BEGIN TRANSACTION;\n");
            }
            let body = if opts.transaction {
                body.replace("BEGIN;\n", "").replace("COMMIT;\n", "")
            } else {
                body
            };
            out.push_str(&body);
            if opts.transaction {
                out.push_str("COMMIT;\n");
            }
            result.sql = out;
        } else {
            result.sql = comments;
        }
    }
    Ok(result)
}

/// Triggers first, then views, then indexes and tables, keeping each group's order.
fn order_drops(drops: &str) -> String {
    let mut groups: [Vec<&str>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for line in drops.lines() {
        let g = if line.starts_with("DROP TRIGGER") {
            0
        } else if line.starts_with("DROP VIEW") {
            1
        } else {
            2
        };
        groups[g].push(line);
    }
    let mut out = String::new();
    for g in groups {
        for l in g {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

pub(super) fn change(kind: &str, name: &str, what: &'static str) -> ObjectChange {
    ObjectChange {
        kind: kind.to_string(),
        name: name.to_string(),
        what,
    }
}

pub(super) fn stat(name: &str, schema: Option<&'static str>) -> TableStat {
    TableStat {
        name: name.to_string(),
        inserts: 0,
        deletes: 0,
        updates: 0,
        unchanged: 0,
        schema,
    }
}

pub(super) fn merge_stat(stats: &mut Vec<TableStat>, name: &str, c: Counts, added: bool) {
    let i = match stats.iter().position(|s| s.name.eq_ignore_ascii_case(name)) {
        Some(i) => i,
        None => {
            stats.push(stat(name, added.then_some("added")));
            stats.len() - 1
        }
    };
    let s = &mut stats[i];
    s.inserts += c.inserts;
    s.deletes += c.deletes;
    s.updates += c.updates;
    s.unchanged += c.unchanged;
}

fn drops_table(drops: &mut String, t: &Table) {
    drops.push_str(&format!("DROP TABLE {};\n", ident(&t.name)));
}

/// A [`TableData`] for B's table `b` (and A's `a`, if it is matched against one).
pub(super) fn table_data(
    a: Option<&Table>,
    b: &Table,
    how: How,
    opts: &Options,
    has_atan2: bool,
) -> TableData {
    let columns: Vec<String> = b.data_columns().map(|c| c.name.clone()).collect();
    let ignored = columns.iter().map(|c| opts.ignored(&b.name, c)).collect();
    let compare = b
        .data_columns()
        .map(
            |c| match a.and_then(|a| a.column(&c.name).map(|ac| a.affinity(ac))) {
                Some(aff) if aff == b.affinity(c) && aff == Affinity::Blob => Compare::Untyped,
                Some(aff) if aff == b.affinity(c) => Compare::Typed,
                _ => Compare::Full,
            },
        )
        .collect();
    let a_exprs = b
        .data_columns()
        .map(|c| match a.and_then(|a| a.column(&c.name)) {
            Some(ac) => format!("a.{}", ident(&ac.name)),
            None => c
                .dflt
                .as_deref()
                .and_then(constant_default)
                .unwrap_or_else(|| "NULL".to_string()),
        })
        .collect();
    let alias = rowid_alias(a, b);
    let insert_rowid = match &how {
        How::Keyed(Key::Rowid(r)) => Some(*r),
        How::InsertAll | How::FullReload if !b.without_rowid() && b.ipk().is_none() => alias,
        _ => None,
    };
    TableData {
        a_name: a.map(|t| t.name.clone()),
        b_name: b.name.clone(),
        columns,
        ignored,
        a_exprs,
        how,
        delete_insert: false,
        insert_rowid,
        compare,
        has_atan2,
    }
}

/// How the table's definition changes: exact in-place ALTERs when SQLite's rewrite of the
/// text gives B's text exactly, otherwise a rebuild.
fn table_change(a: &Table, b: &Table, opts: &Options) -> Change {
    if let Some(stmts) = alter_steps(a, b) {
        return stmts;
    }
    if opts.schema_only || copy_is_safe(a, b) {
        Change::RebuildCopy
    } else {
        Change::Recreate
    }
}

/// ADD/DROP COLUMN statements whose predicted `sqlite_schema` text equals B's.
fn alter_steps(a: &Table, b: &Table) -> Option<Change> {
    let pa = a.parsed.as_ref()?;
    let pb = b.parsed.as_ref()?;
    if a.name != b.name {
        return None;
    }
    let item_text = |sql: &str, i: &parse::Item| sql[i.start..i.end].to_string();
    let cols_a: Vec<(&parse::Item, String)> =
        pa.columns().map(|i| (i, item_text(&a.sql, i))).collect();
    let cols_b: Vec<(&parse::Item, String)> =
        pb.columns().map(|i| (i, item_text(&b.sql, i))).collect();
    let mut sql = a.sql.clone();
    let mut stmts = Vec::new();
    let table = ident(&a.name);
    let mut dropped = false;
    // Drop A's columns B does not have.
    for (item, _) in &cols_a {
        if cols_b
            .iter()
            .any(|(j, _)| j.name.eq_ignore_ascii_case(&item.name))
        {
            continue;
        }
        if item.words.iter().any(|w| {
            matches!(
                w.as_str(),
                "PRIMARY" | "UNIQUE" | "REFERENCES" | "GENERATED" | "AS"
            )
        }) {
            return None;
        }
        sql = after_drop_column(&sql, &item.name)?;
        stmts.push(format!(
            "ALTER TABLE {table} DROP COLUMN {};\n",
            ident(&item.name)
        ));
        dropped = true;
    }
    // Then add B's new columns, which must come after the kept ones.
    let kept = cols_a.len() - stmts.len();
    if cols_b.len() < kept {
        return None;
    }
    for (item, text) in &cols_b[kept..] {
        if cols_a
            .iter()
            .any(|(i, _)| i.name.eq_ignore_ascii_case(&item.name))
        {
            return None;
        }
        if !add_column_ok(item, text) {
            return None;
        }
        sql = after_add_column(&sql, text)?;
        stmts.push(format!("ALTER TABLE {table} ADD COLUMN {text};\n"));
    }
    (sql == b.sql && !stmts.is_empty()).then_some(Change::Alter(stmts, dropped))
}

/// Whether `ALTER TABLE ADD COLUMN` accepts this column definition.
fn add_column_ok(item: &parse::Item, text: &str) -> bool {
    let w = &item.words;
    let has = |k: &str| w.iter().any(|x| x == k);
    if has("PRIMARY") || has("UNIQUE") || has("CHECK") || has("REFERENCES") || has("STORED") {
        return false;
    }
    if w.iter().any(|x| x.starts_with("CURRENT_")) {
        return false;
    }
    // A default must be a constant (no parentheses) and NOT NULL needs a non-NULL one.
    let tokens = parse::tokenize(text);
    let default_at = tokens
        .iter()
        .position(|t| text[t.start..t.end].eq_ignore_ascii_case("DEFAULT"));
    if let Some(k) = default_at {
        match tokens.get(k + 1) {
            Some(t) if &text[t.start..t.end] != "(" => {}
            _ => return false,
        }
    }
    if has("NOT") && !has("DEFAULT") {
        return false;
    }
    true
}

/// Whether copying A's rows into B's definition cannot trip a constraint B adds: B is not
/// STRICT, its table constraints are A's, and every column that keeps its name has either
/// the same definition or one without NOT NULL/CHECK/UNIQUE/PRIMARY KEY/COLLATE-free
/// constraints.
fn copy_is_safe(a: &Table, b: &Table) -> bool {
    let (Some(pa), Some(pb)) = (a.parsed.as_ref(), b.parsed.as_ref()) else {
        return false;
    };
    if b.strict() || b.without_rowid() != a.without_rowid() {
        return false;
    }
    let cons = |p: &parse::CreateTable, sql: &str| -> Vec<String> {
        p.items
            .iter()
            .filter(|i| i.constraint)
            .map(|i| sql[i.start..i.end].to_string())
            .collect()
    };
    if cons(pa, &a.sql) != cons(pb, &b.sql) {
        return false;
    }
    for ib in pb.columns() {
        let tb = &b.sql[ib.start..ib.end];
        let risky = ib.words.iter().any(|w| {
            matches!(
                w.as_str(),
                "NOT" | "CHECK" | "UNIQUE" | "PRIMARY" | "REFERENCES"
            )
        });
        match pa
            .columns()
            .find(|ia| ia.name.eq_ignore_ascii_case(&ib.name))
        {
            Some(ia) if &a.sql[ia.start..ia.end] == tb => {}
            Some(_) if risky => return false,
            _ => {}
        }
    }
    true
}

/// The SQLite-documented rebuild: rename the old table away, create B's exactly, copy the
/// common columns (and the rowid), drop the old one; inside a transaction.
fn rebuild_sql(a: &Table, b: &Table, sa: &Schema, sb: &Schema) -> String {
    let mut old = format!("{}__roost_old", a.name);
    while sa.tables.contains_key(&old.to_lowercase()) || sb.tables.contains_key(&old.to_lowercase())
    {
        old.push('_');
    }
    let mut cols: Vec<String> = Vec::new();
    if !a.without_rowid() && !b.without_rowid() && b.ipk().is_none() {
        cols.extend(rowid_alias(Some(a), b).map(str::to_string));
    }
    for c in b.data_columns() {
        if a.column(&c.name).is_some() {
            cols.push(ident(&c.name));
        }
    }
    let list = cols.join(", ");
    let mut s = String::new();
    s.push_str("BEGIN;\n");
    // Indexes of the old table go with it; B's are created at the end.
    s.push_str("PRAGMA legacy_alter_table=ON;\n");
    s.push_str(&format!(
        "ALTER TABLE {} RENAME TO {};\n",
        ident(&a.name),
        ident(&old)
    ));
    s.push_str("PRAGMA legacy_alter_table=OFF;\n");
    s.push_str(&format!("{};\n", b.sql));
    if !cols.is_empty() {
        s.push_str(&format!(
            "INSERT INTO {}({list}) SELECT {list} FROM {};\n",
            ident(&b.name),
            ident(&old)
        ));
    }
    s.push_str(&format!("DROP TABLE {};\n", ident(&old)));
    s.push_str("COMMIT;\n");
    s
}

/// Picks how rows of a table present in both are matched.
fn choose_how(
    db: &mut dyn Db,
    a: &Table,
    b: &Table,
    change: &Change,
    opts: &Options,
) -> Result<How, String> {
    let common = |c: &str| a.column(c).is_some_and(|x| x.hidden == 0 || x.hidden >= 2);
    // Values whose storage class the copy into B's definition may change.
    let affinity_changed = b.data_columns().any(|c| {
        a.column(&c.name)
            .is_some_and(|ac| a.affinity(ac) != b.affinity(c))
    });
    // New columns whose value in A's rows (their default) the engine cannot know.
    let unknown_new = b.data_columns().any(|c| {
        a.column(&c.name).is_none()
            && c.dflt
                .as_deref()
                .is_some_and(|d| constant_default(d).is_none())
    });
    if unknown_new {
        return Ok(How::FullReload);
    }
    let key = if b.without_rowid() {
        let pk = b.pk();
        (!pk.is_empty() && pk.iter().all(|c| common(&c.name)))
            .then(|| Key::Columns(pk.iter().map(|c| c.name.clone()).collect()))
    } else if let Some(ipk) = b.ipk() {
        let ok = common(&ipk.name)
            && (a
                .ipk()
                .is_some_and(|x| x.name.eq_ignore_ascii_case(&ipk.name))
                || *change != Change::Same);
        ok.then(|| Key::Columns(vec![ipk.name.clone()]))
    } else if b.pk().is_empty() {
        None
    } else if opts.primary_key {
        let pk = b.pk();
        if pk.iter().all(|c| common(&c.name)) && !pk_has_nulls(db, a, b)? {
            Some(Key::Columns(pk.iter().map(|c| c.name.clone()).collect()))
        } else {
            None
        }
    } else if !a.without_rowid() {
        rowid_alias(Some(a), b).map(Key::Rowid)
    } else {
        None
    };
    Ok(match key {
        Some(k) => How::Keyed(k),
        None => {
            let new_with_default = b.data_columns().any(|c| {
                a.column(&c.name).is_none()
                    && c.dflt
                        .as_deref()
                        .and_then(constant_default)
                        .is_some_and(|v| !affinity_keeps(b.affinity(c), &v))
            });
            if affinity_changed || new_with_default {
                How::FullReload
            } else {
                How::Multiset
            }
        }
    })
}

/// Whether a declared PRIMARY KEY column holds NULL in either table (rowid tables allow
/// it, and then the key does not identify rows).
pub(super) fn pk_has_nulls(db: &mut dyn Db, a: &Table, b: &Table) -> Result<bool, String> {
    let cond = b
        .pk()
        .iter()
        .map(|c| format!("{} IS NULL", ident(&c.name)))
        .collect::<Vec<_>>()
        .join(" OR ");
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM main.{} WHERE {}) OR EXISTS (SELECT 1 FROM aux.{} WHERE {})",
        ident(&a.name),
        cond,
        ident(&b.name),
        cond
    );
    Ok(super::query_count(db, &sql)? > 0)
}

/// Whether changed rows must be written as DELETE + INSERT: the table has a UNIQUE index
/// other than the one its key is.
pub(super) fn has_unique(db: &mut dyn Db, b: &Table, how: &How) -> Result<bool, String> {
    let rows = query_all(
        db,
        "SELECT \"unique\", origin FROM pragma_index_list(?1, 'aux')",
        &[Value::Text(b.name.clone())],
    )?;
    let key_is_pk = matches!(how, How::Keyed(Key::Columns(_)));
    Ok(rows.iter().any(|r| {
        let unique = r.first().and_then(Value::as_i64) == Some(1);
        let origin = r.get(1).and_then(Value::as_str).unwrap_or("");
        unique && !(origin == "pk" && key_is_pk)
    }))
}

/// Whether storing the constant `lit` in a column of affinity `aff` keeps its storage class
/// (so A's rows, which get the default, hold exactly the literal's value).
fn affinity_keeps(aff: Affinity, lit: &str) -> bool {
    let body = lit.trim_start_matches(['-', '+']);
    let is_number = body.starts_with(|c: char| c.is_ascii_digit() || c == '.');
    let is_integer = is_number && body.chars().all(|c| c.is_ascii_digit());
    let is_real = is_number && !is_integer && !body.starts_with("0x") && !body.starts_with("0X");
    if lit.eq_ignore_ascii_case("NULL") {
        return true;
    }
    match aff {
        Affinity::Blob => true,
        Affinity::Integer | Affinity::Numeric => is_integer,
        Affinity::Real => is_real,
        Affinity::Text => lit.starts_with('\''),
    }
}
