//! The row diff of one table, run as set queries inside SQLite.

use super::literal::{ident, literal};
use super::{Db, Pass, Value, query_all, query_count};

/// How the rows of a key-matched table are matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// The rowid, under this alias (one that no column shadows).
    Rowid(&'static str),
    /// These columns (the declared PRIMARY KEY or INTEGER PRIMARY KEY).
    Columns(Vec<String>),
}

/// How a table's rows are brought from A to B.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// The table is new (or freshly recreated and empty): insert every row of B.
    InsertAll,
    /// Delete every row, then insert every row of B.
    FullReload,
    /// Match rows on a key: deletes, updates, inserts.
    Keyed(Key),
    /// No usable key: compare as multisets of rows.
    Multiset,
}

/// One table's row diff, ready to run.
#[derive(Debug, Clone)]
pub struct TableData {
    /// A's table name (None when A has no such table).
    pub a_name: Option<String>,
    /// B's table name (and the name in the database being changed).
    pub b_name: String,
    /// B's stored columns, in order.
    pub columns: Vec<String>,
    /// Per column: whether `--ignore-column` names it.
    pub ignored: Vec<bool>,
    /// Per column: the SQL that gives A's value (after the schema change) from alias `a`.
    pub a_exprs: Vec<String>,
    /// How rows are matched.
    pub how: How,
    /// Whether changed rows are written as DELETE + INSERT rather than UPDATE (the table
    /// has a UNIQUE constraint an UPDATE could trip over in the middle of a swap).
    pub delete_insert: bool,
    /// The rowid alias to carry in INSERTs, for rowid tables without INTEGER PRIMARY KEY.
    pub insert_rowid: Option<&'static str>,
    /// Per column: how A's and B's values are compared.
    pub compare: Vec<Compare>,
    /// Whether `atan2` exists, to tell -0.0 from 0.0 in REAL comparisons.
    pub has_atan2: bool,
}

/// How the values of one column are compared, cheapest first. Comparisons in SQL convert
/// an operand when the two sides' affinities differ, so only equal affinities allow the
/// cheap forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// A's and B's column have the same INTEGER, REAL, NUMERIC or TEXT affinity (typed
    /// STRICT columns included): such columns never hold an INTEGER and a REAL that compare
    /// equal, nor -0.0, and no conversion applies, so `IS NOT` under BINARY collation is
    /// exact.
    Typed,
    /// Both columns are untyped: as [`Compare::Typed`], plus the storage classes of numbers
    /// (1 and 1.0 compare equal) and, with `atan2`, the sign of zero.
    Untyped,
    /// Affinities differ, or A's value is a constant (a new column's default): values and
    /// storage classes, in full.
    Full,
}

/// One row that differs between A and B, as the keyed scan finds it. Column values are in
/// [`TableData::columns`] order.
#[derive(Debug, Clone, PartialEq)]
pub enum RowChange {
    /// A row only in A: its key, and A's values when they were asked for.
    Delete {
        /// The key, as [`TableData`]'s key selects it.
        key: Vec<Value>,
        /// A's values (empty unless asked for).
        old: Vec<Value>,
    },
    /// A row in both whose compared values differ.
    Update {
        /// The key (the same on both sides).
        key: Vec<Value>,
        /// A's values (empty unless asked for).
        old: Vec<Value>,
        /// B's values.
        new: Vec<Value>,
        /// Indexes (into the columns) of the compared columns that differ.
        changed: Vec<usize>,
    },
    /// A row only in B: B's values, after the rowid when the table carries one in INSERTs.
    Insert {
        /// B's values.
        new: Vec<Value>,
    },
}

/// Row counts of one table's diff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Rows only in B.
    pub inserts: u64,
    /// Rows only in A.
    pub deletes: u64,
    /// Rows matched on the key whose values differ.
    pub updates: u64,
    /// Rows equal in both (only counted in counts mode).
    pub unchanged: u64,
}

impl Counts {
    /// Whether anything differs.
    pub fn changed(&self) -> bool {
        self.inserts + self.deletes + self.updates > 0
    }
}

/// Where a table's row changes are written.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    /// The table itself, after its schema change (if any).
    Table,
    /// A rebuild: deletes go to A's table, renamed to this name, before the copy (changed
    /// rows are deleted and inserted again), so the copy takes only rows exactly as in B.
    Rebuilt(&'a str),
}

impl Target<'_> {
    /// The quoted name of the table that deletes apply to.
    fn table(&self, td: &TableData) -> String {
        match self {
            Target::Table => ident(&td.b_name),
            Target::Rebuilt(old) => ident(old),
        }
    }
}

/// One table's row statements by kind, in the order they apply, and their counts.
#[derive(Debug, Default)]
struct RowSql {
    deletes: String,
    /// How many statements `deletes` holds.
    delete_stmts: usize,
    updates: String,
    inserts: String,
    counts: Counts,
}

/// How a row of the first keyed pass is laid out, and what it is compared on.
struct APassLayout {
    /// Indexes of the compared columns, in the order of the row's flags.
    compared: Vec<usize>,
    /// How many columns the table has (B's values).
    columns: usize,
    /// How many values the key takes.
    key: usize,
    /// How many of A's values the row carries (0 when not fetched).
    old: usize,
    /// Compared columns whose REAL zeros are told apart by their bits.
    signs: Vec<usize>,
    /// A's values go into the changes.
    with_old: bool,
}

impl APassLayout {
    fn fetch_old(&self) -> bool {
        self.old > 0
    }
}

/// The most multiset groups a rebuild deletes one by one from A's renamed table: each
/// DELETE scans it, so beyond this many the table is reloaded (the copy takes nothing).
pub const MAX_REBUILD_GROUP_DELETES: usize = 100;

impl TableData {
    fn a_tab(&self) -> String {
        format!(
            "main.{}",
            ident(self.a_name.as_deref().unwrap_or(&self.b_name))
        )
    }

    fn b_tab(&self) -> String {
        format!("aux.{}", ident(&self.b_name))
    }

    fn key_columns(&self) -> Vec<String> {
        match &self.how {
            How::Keyed(Key::Columns(k)) => k.clone(),
            _ => Vec::new(),
        }
    }

    /// Every column, quoted and comma-separated, in table order.
    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| ident(c))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Indexes of the columns whose values are compared.
    fn compared(&self) -> Vec<usize> {
        let key = self.key_columns();
        (0..self.columns.len())
            .filter(|&i| !self.ignored[i])
            .filter(|&i| !key.iter().any(|k| k.eq_ignore_ascii_case(&self.columns[i])))
            .collect()
    }

    /// How column `name` is compared ([`Compare::Full`] when unknown).
    fn compare_of(&self, name: &str) -> Compare {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
            .and_then(|i| self.compare.get(i).copied())
            .unwrap_or(Compare::Full)
    }

    /// SQL that is 1 when `left` and `right` (two SQL expressions, the latter B's column
    /// `i`) hold different values or storage classes, else 0 (never NULL). See
    /// [`Compare`]; untyped columns check storage classes only for numbers (`x < ''` holds
    /// for numbers alone).
    fn differs(&self, left: &str, right: &str, i: usize) -> String {
        let zero = if self.has_atan2 {
            format!(
                " OR (typeof({left}) = 'real' AND typeof({right}) = 'real' AND {left} = 0 AND atan2({left}, -1) <> atan2({right}, -1))"
            )
        } else {
            String::new()
        };
        match self.compare.get(i).copied().unwrap_or(Compare::Full) {
            Compare::Typed => format!("{left} IS NOT {right} COLLATE BINARY"),
            Compare::Untyped => format!(
                "({left} IS NOT {right} COLLATE BINARY OR ({left} < '' AND (typeof({left}) <> typeof({right}){zero})))"
            ),
            Compare::Full => format!(
                "(NOT ({left} IS {right} COLLATE BINARY AND typeof({left}) = typeof({right})){zero})"
            ),
        }
    }

    /// The join of a row of `x` to the row of `y` with the same key; `x` comes first so its
    /// index serves the lookup. Keys match exactly: BINARY collation, and the same storage
    /// class unless the column is [`Compare::Typed`].
    fn key_match(&self, x: &str, y: &str) -> String {
        match &self.how {
            How::Keyed(Key::Rowid(r)) => format!("{x}.{r} = {y}.{r}"),
            How::Keyed(Key::Columns(cols)) => cols
                .iter()
                .map(|name| {
                    let c = ident(name);
                    let mut m = format!("{x}.{c} = {y}.{c} AND {x}.{c} = {y}.{c} COLLATE BINARY");
                    if self.compare_of(name) != Compare::Typed {
                        m.push_str(&format!(" AND typeof({x}.{c}) = typeof({y}.{c})"));
                    }
                    m
                })
                .collect::<Vec<_>>()
                .join(" AND "),
            _ => "0".to_string(),
        }
    }

    /// SQL that is 1 when the outer-joined side `x` found no row with the key (keys are
    /// never NULL: rowids, INTEGER PRIMARY KEYs and WITHOUT ROWID keys cannot be, and
    /// `--primarykey` falls back to multisets when a key holds NULL).
    fn missing(&self, x: &str) -> String {
        match &self.how {
            How::Keyed(Key::Rowid(r)) => format!("{x}.{r} IS NULL"),
            How::Keyed(Key::Columns(cols)) => match cols.first() {
                Some(c) => format!("{x}.{} IS NULL", ident(c)),
                None => "1".to_string(),
            },
            _ => "1".to_string(),
        }
    }

    /// The per-column difference flags of the compared columns (A's expression against
    /// B's column).
    fn flags(&self) -> Vec<String> {
        self.compared()
            .iter()
            .map(|&i| {
                self.differs(
                    &self.a_exprs[i],
                    &format!("b.{}", ident(&self.columns[i])),
                    i,
                )
            })
            .collect()
    }

    /// The compared columns whose REAL zeros SQL cannot tell apart: without `atan2`, 0.0
    /// and -0.0 compare equal and print alike, so for columns that can hold -0.0 (every
    /// one but [`Compare::Typed`]) rows where both sides hold a REAL zero are fetched and
    /// their bits compared in [`same_bits`].
    fn sign_checked(&self) -> Vec<usize> {
        if self.has_atan2 {
            return Vec::new();
        }
        self.compared()
            .into_iter()
            .filter(|&i| self.compare.get(i).copied().unwrap_or(Compare::Full) != Compare::Typed)
            .collect()
    }

    /// SQL that is 1 when column `i` holds a REAL zero on both sides (A's expression
    /// against B's column): a row whose zeros may differ in sign only.
    fn both_zero(&self, i: usize) -> String {
        let (l, r) = (&self.a_exprs[i], format!("b.{}", ident(&self.columns[i])));
        format!("(typeof({l}) = 'real' AND typeof({r}) = 'real' AND {l} = 0 AND {r} = 0)")
    }

    /// The key as selected from alias `x`.
    fn key_select(&self, x: &str) -> Vec<String> {
        match &self.how {
            How::Keyed(Key::Rowid(r)) => vec![format!("{x}.{r}")],
            How::Keyed(Key::Columns(cols)) => {
                cols.iter().map(|c| format!("{x}.{}", ident(c))).collect()
            }
            _ => Vec::new(),
        }
    }

    /// `WHERE` text that finds the row with key `values` in `target`. B's key is unique
    /// in B's table, so an equality there finds that row; A's renamed table in a rebuild
    /// may not have the key's uniqueness or collation, so there the match is exact too
    /// (the plain equality first, so an index on the key serves it).
    fn key_where(&self, values: &[Value], target: Target<'_>) -> String {
        match &self.how {
            How::Keyed(Key::Rowid(r)) => {
                format!("{r}={}", values.first().map_or("NULL".into(), literal))
            }
            How::Keyed(Key::Columns(cols)) => cols
                .iter()
                .zip(values)
                .map(|(c, v)| {
                    let (c, lit) = (ident(c), literal(v));
                    match target {
                        Target::Table => format!("{c}={lit}"),
                        Target::Rebuilt(_) => format!(
                            "{c}={lit} AND {c}={lit} COLLATE BINARY AND typeof({c})='{}'",
                            type_name(v)
                        ),
                    }
                })
                .collect::<Vec<_>>()
                .join(" AND "),
            _ => "0".to_string(),
        }
    }

    /// The columns of an INSERT and the matching select list from alias `b`.
    fn insert_columns(&self) -> (String, String) {
        let mut names = Vec::new();
        let mut select = Vec::new();
        if let Some(r) = self.insert_rowid {
            names.push(r.to_string());
            select.push(format!("b.{r}"));
        }
        for c in &self.columns {
            names.push(ident(c));
            select.push(format!("b.{}", ident(c)));
        }
        (names.join(","), select.join(", "))
    }

    fn insert_stmt(&self, names: &str, values: &[Value]) -> String {
        let vals: Vec<String> = values.iter().map(literal).collect();
        format!(
            "INSERT INTO {}({names}) VALUES({});\n",
            ident(&self.b_name),
            vals.join(",")
        )
    }

    /// Inserts every row of B matching `filter` (SQL on alias `b`) into `out`.
    fn insert_rows(&self, db: &mut dyn Db, filter: &str, out: &mut String) -> Result<u64, String> {
        let (names, select) = self.insert_columns();
        if names.is_empty() {
            return Ok(0);
        }
        let sql = format!("SELECT {select} FROM {} AS b WHERE {filter}", self.b_tab());
        let mut n = 0;
        db.query(&sql, &[], &mut |row| {
            out.push_str(&self.insert_stmt(&names, &row));
            n += 1;
            Ok(())
        })?;
        Ok(n)
    }

    /// The SQL that brings this table's rows from A to B, appended to `out`.
    pub fn emit(&self, db: &mut dyn Db, out: &mut String) -> Result<Counts, String> {
        let rows = self.row_sql(db, Target::Table)?;
        // Exact: grown by doubling, a large diff's output would hold up to twice its size.
        out.reserve_exact(rows.deletes.len() + rows.updates.len() + rows.inserts.len());
        out.push_str(&rows.deletes);
        out.push_str(&rows.updates);
        out.push_str(&rows.inserts);
        Ok(rows.counts)
    }

    /// The row diff of a rebuilt table, around the copy: the statements that delete from
    /// A's table, renamed to `old`, every row that is not exactly as in B (changed rows
    /// too), and the INSERTs of B's rows that the copy of the rest leaves out. A keyless
    /// table with more than [`MAX_REBUILD_GROUP_DELETES`] groups to delete is reloaded
    /// instead (each group's DELETE scans the table); its counts stay the multiset's.
    pub fn emit_rebuild(
        &self,
        db: &mut dyn Db,
        old: &str,
    ) -> Result<(String, String, Counts), String> {
        let mut rows = self.row_sql(db, Target::Rebuilt(old))?;
        if self.how == How::Multiset && rows.delete_stmts > MAX_REBUILD_GROUP_DELETES {
            rows.deletes = format!("DELETE FROM {};\n", ident(old));
            rows.inserts.clear();
            self.insert_rows(db, "1", &mut rows.inserts)?;
        }
        Ok((rows.deletes, rows.inserts, rows.counts))
    }

    fn row_sql(&self, db: &mut dyn Db, target: Target<'_>) -> Result<RowSql, String> {
        let mut rows = RowSql::default();
        match &self.how {
            How::InsertAll => {
                rows.counts.inserts = self.insert_rows(db, "1", &mut rows.inserts)?;
            }
            How::FullReload => {
                rows.counts.inserts = self.insert_rows(db, "1", &mut rows.inserts)?;
                if let Some(a) = &self.a_name {
                    rows.counts.deletes =
                        query_count(db, &format!("SELECT count(*) FROM main.{}", ident(a)))?;
                }
                // Unconditional for a table A lacks: a freshly created virtual table's
                // shadow tables already hold rows that A never had.
                if rows.counts.deletes > 0 || self.a_name.is_none() {
                    rows.deletes = format!("DELETE FROM {};\n", target.table(self));
                }
            }
            How::Keyed(_) => self.emit_keyed(db, target, &mut rows)?,
            How::Multiset => self.emit_multiset(db, target, &mut rows)?,
        }
        Ok(rows)
    }

    /// Every row of a keyed table that differs, in two passes SQLite runs as outer joins,
    /// at once where the connection can: A's rows against B's (rows only in A, and rows
    /// whose values differ), and B's rows against A's (rows only in B). Each pass's
    /// changes come in its order, the two passes' interleaved. `with_old` asks for A's
    /// values too (changesets carry them). Returns the counts.
    pub fn scan_keyed(
        &self,
        db: &mut dyn Db,
        with_old: bool,
        found: &mut dyn FnMut(RowChange) -> Result<(), String>,
    ) -> Result<Counts, String> {
        let layout = self.a_pass_layout(with_old);
        let a_sql = self.a_pass_sql(layout.fetch_old());
        let mut counts = Counts::default();
        let mut on_row = |pass: Pass, row: Vec<Value>| {
            let change = match pass {
                Pass::First => match self.a_pass_change(&layout, row) {
                    Some(change) => change,
                    None => return Ok(()),
                },
                Pass::Second => RowChange::Insert { new: row },
            };
            match &change {
                RowChange::Delete { .. } => counts.deletes += 1,
                RowChange::Update { .. } => counts.updates += 1,
                RowChange::Insert { .. } => counts.inserts += 1,
            }
            found(change)
        };
        match self.b_pass_sql() {
            Some(b_sql) => db.query_both(&a_sql, &b_sql, &mut on_row)?,
            None => db.query(&a_sql, &[], &mut |row| on_row(Pass::First, row))?,
        }
        Ok(counts)
    }

    /// The query of the second pass: B's rows that A lacks, as INSERTs take them; none
    /// when B's table has no column an INSERT names.
    fn b_pass_sql(&self) -> Option<String> {
        let (names, select) = self.insert_columns();
        (!names.is_empty()).then(|| {
            format!(
                "SELECT {select} FROM {} AS b LEFT JOIN {} AS a ON {} WHERE {}",
                self.b_tab(),
                self.a_tab(),
                self.key_match("a", "b"),
                self.missing("a")
            )
        })
    }

    /// The query of the first pass: per row of A that B lacks or holds otherwise, its
    /// key, whether B lacks it, A's values (when `fetch_old`), B's values, and one flag
    /// per compared column.
    fn a_pass_sql(&self, fetch_old: bool) -> String {
        let gone = self.missing("b");
        let flags = self.flags();
        let mut select = self.key_select("a");
        select.push(gone.clone());
        if fetch_old {
            select.extend(self.a_exprs.iter().cloned());
        }
        select.extend(self.columns.iter().map(|c| format!("b.{}", ident(c))));
        select.extend(flags.iter().cloned());
        let mut filter = vec![gone];
        filter.extend(flags);
        filter.extend(self.sign_checked().iter().map(|&i| self.both_zero(i)));
        format!(
            "SELECT {} FROM {} AS a LEFT JOIN {} AS b ON {} WHERE {}",
            select.join(", "),
            self.a_tab(),
            self.b_tab(),
            self.key_match("b", "a"),
            filter.join(" OR ")
        )
    }

    fn a_pass_layout(&self, with_old: bool) -> APassLayout {
        let signs = self.sign_checked();
        // A's values are needed to compare the bits of zeros, even when not asked for.
        let fetch_old = with_old || !signs.is_empty();
        APassLayout {
            compared: self.compared(),
            columns: self.columns.len(),
            key: self.key_select("a").len(),
            old: if fetch_old { self.columns.len() } else { 0 },
            signs,
            with_old,
        }
    }

    /// The change one row of the first pass stands for: a delete, an update, or none (a
    /// row fetched for its zeros, which turned out to have the same sign).
    fn a_pass_change(&self, layout: &APassLayout, mut row: Vec<Value>) -> Option<RowChange> {
        let mut rest = row.split_off(layout.key.min(row.len()));
        let key = row;
        let mut values = rest.split_off(1.min(rest.len()));
        let only_in_a = rest.first().and_then(Value::as_i64).unwrap_or(0) != 0;
        let mut new = values.split_off(layout.old.min(values.len()));
        let old = values;
        let flag_values = new.split_off(layout.columns.min(new.len()));
        if only_in_a {
            return Some(RowChange::Delete { key, old });
        }
        let changed: Vec<usize> = layout
            .compared
            .iter()
            .enumerate()
            .filter(|&(j, &i)| {
                flag_values.get(j).and_then(Value::as_i64).unwrap_or(1) != 0
                    || (layout.signs.contains(&i) && !same_bits(old.get(i), new.get(i)))
            })
            .map(|(_, &i)| i)
            .collect();
        if changed.is_empty() {
            return None;
        }
        let old = if layout.with_old { old } else { Vec::new() };
        Some(RowChange::Update {
            key,
            old,
            new,
            changed,
        })
    }

    /// `UPDATE … SET` of the `changed` columns to their `new` values, in the row `wh` finds.
    fn update_stmt(&self, table: &str, wh: &str, new: &[Value], changed: &[usize]) -> String {
        let sets: Vec<String> = changed
            .iter()
            .map(|&i| {
                let v = new.get(i).unwrap_or(&Value::Null);
                format!("{}={}", ident(&self.columns[i]), literal(v))
            })
            .collect();
        format!("UPDATE {table} SET {} WHERE {wh};\n", sets.join(", "))
    }

    /// A keyed table's changes, by kind (deletes first, so a swap of unique values
    /// cannot fail half-way when changed rows are a DELETE plus an INSERT).
    fn emit_keyed(
        &self,
        db: &mut dyn Db,
        target: Target<'_>,
        rows: &mut RowSql,
    ) -> Result<(), String> {
        let table = target.table(self);
        // A rebuild copies unchanged rows only: a changed one is deleted and inserted.
        let delete_insert = self.delete_insert || matches!(target, Target::Rebuilt(_));
        let (names, _) = self.insert_columns();
        let (mut deletes, mut updates, mut inserts) = (String::new(), String::new(), String::new());
        let mut delete_stmts = 0;
        let counts = self.scan_keyed(db, false, &mut |change| {
            match change {
                RowChange::Delete { key, .. } => {
                    deletes.push_str(&format!(
                        "DELETE FROM {table} WHERE {};\n",
                        self.key_where(&key, target)
                    ));
                    delete_stmts += 1;
                }
                RowChange::Update {
                    key, new, changed, ..
                } => {
                    let wh = self.key_where(&key, target);
                    if delete_insert {
                        deletes.push_str(&format!("DELETE FROM {table} WHERE {wh};\n"));
                        delete_stmts += 1;
                        let mut values: Vec<Value> = Vec::with_capacity(new.len() + 1);
                        if self.insert_rowid.is_some() {
                            values.push(key.first().cloned().unwrap_or(Value::Null));
                        }
                        values.extend(new);
                        inserts.push_str(&self.insert_stmt(&names, &values));
                    } else {
                        updates.push_str(&self.update_stmt(&table, &wh, &new, &changed));
                    }
                }
                RowChange::Insert { new } => inserts.push_str(&self.insert_stmt(&names, &new)),
            }
            Ok(())
        })?;
        *rows = RowSql {
            delete_stmts,
            deletes,
            updates,
            inserts,
            counts,
        };
        Ok(())
    }

    /// The grouped multiset query: per distinct row (compared columns), its count in A and
    /// in B. `filter` is applied to the groups.
    fn multiset_sql(&self, filter: &str) -> String {
        let n = self.compared().len();
        let group: Vec<String> = (0..n)
            .map(|j| format!("typeof(c{j}), c{j} COLLATE BINARY"))
            .collect();
        let outs: String = (0..n).map(|j| format!("c{j}, ")).collect();
        format!(
            "SELECT * FROM (SELECT {outs}sum(na) AS na, sum(nb) AS nb FROM ({}){}) WHERE {filter}",
            self.multiset_union(),
            if group.is_empty() {
                String::new()
            } else {
                format!(" GROUP BY {}", group.join(", "))
            },
        )
    }

    /// Every row of A and of B as compared columns `c0…` plus `na` and `nb` (1 on the
    /// row's side, 0 on the other), ungrouped. Each value goes through unary `+`, which
    /// strips its column's affinity: a compound subquery's column otherwise takes the
    /// affinity of A's column and converts B's values to it (a REAL column in A turns B's
    /// integer 0 into 0.0), merging groups that differ.
    fn multiset_union(&self) -> String {
        let compared = self.compared();
        let a_cols: Vec<String> = compared
            .iter()
            .enumerate()
            .map(|(j, &i)| format!("+({}) AS c{j}", self.a_exprs[i]))
            .chain(["1 AS na".to_string(), "0 AS nb".to_string()])
            .collect();
        let b_cols: Vec<String> = compared
            .iter()
            .map(|&i| format!("+b.{}", ident(&self.columns[i])))
            .chain(["0".to_string(), "1".to_string()])
            .collect();
        let a_from = match &self.a_name {
            Some(a) => format!("main.{} AS a", ident(a)),
            None => "(SELECT 1 WHERE 0) AS a".to_string(),
        };
        format!(
            "SELECT {} FROM {a_from} UNION ALL SELECT {} FROM {} AS b",
            a_cols.join(", "),
            b_cols.join(", "),
            self.b_tab()
        )
    }

    /// SQL that is 1 for a multiset group holding a REAL zero in a sign-checked column:
    /// SQL groups 0.0 with -0.0, so such a group is checked row by row.
    fn zero_group(&self) -> Option<String> {
        let compared = self.compared();
        let signs = self.sign_checked();
        let parts: Vec<String> = compared
            .iter()
            .enumerate()
            .filter(|(_, i)| signs.contains(i))
            .map(|(j, _)| format!("(typeof(c{j}) = 'real' AND c{j} = 0)"))
            .collect();
        (!parts.is_empty()).then(|| parts.join(" OR "))
    }

    /// Whether the group `values` (compared columns) holds the same rows, bit for bit, in A
    /// and in B: its rows' exact values on each side, sorted, must be equal.
    fn group_is_exact(&self, db: &mut dyn Db, values: &[Value]) -> Result<bool, String> {
        let n = values.len();
        let matches: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(j, v)| match v {
                Value::Null => format!("c{j} IS NULL"),
                other => format!(
                    "c{j}={} COLLATE BINARY AND typeof(c{j})='{}'",
                    literal(other),
                    type_name(other)
                ),
            })
            .collect();
        let filter = if matches.is_empty() {
            "1".to_string()
        } else {
            matches.join(" AND ")
        };
        let mut sides: [Vec<Vec<String>>; 2] = [Vec::new(), Vec::new()];
        let sql = format!("SELECT * FROM ({}) WHERE {filter}", self.multiset_union());
        db.query(&sql, &[], &mut |row| {
            let from_a = row.get(n).and_then(Value::as_i64).unwrap_or(0) != 0;
            let exact = row[..n.min(row.len())].iter().map(exact_key).collect();
            sides[usize::from(!from_a)].push(exact);
            Ok(())
        })?;
        sides.iter_mut().for_each(|side| side.sort());
        Ok(sides[0] == sides[1])
    }

    /// `WHERE` text matching rows whose compared columns hold `values`; `column(i)` is
    /// the SQL of column `i` in the rows matched.
    fn row_where(&self, column: &dyn Fn(usize) -> String, values: &[Value]) -> String {
        let parts: Vec<String> = self
            .compared()
            .iter()
            .zip(values)
            .map(|(&i, v)| {
                let c = column(i);
                match v {
                    Value::Null => format!("{c} IS NULL"),
                    other => format!(
                        "{c}={} COLLATE BINARY AND typeof({c})='{}'",
                        literal(other),
                        type_name(other)
                    ),
                }
            })
            .collect();
        if parts.is_empty() {
            "1".to_string()
        } else {
            parts.join(" AND ")
        }
    }

    /// A multiset group's DELETE: of B's table after its schema change (A's rows, as the
    /// change left them, hold the values of B's columns), or of A's renamed table in a
    /// rebuild, whose rows are matched on A's expressions.
    fn group_delete(&self, target: Target<'_>, values: &[Value]) -> String {
        let wh = match target {
            Target::Table => self.row_where(&|i| ident(&self.columns[i]), values),
            Target::Rebuilt(_) => self.row_where(&|i| self.a_exprs[i].clone(), values),
        };
        let alias = match target {
            Target::Table => "",
            Target::Rebuilt(_) => " AS a",
        };
        format!("DELETE FROM {}{alias} WHERE {wh};\n", target.table(self))
    }

    /// A keyless table's changes: each group of equal rows whose count differs (or whose
    /// zeros may differ in sign) is deleted and inserted again with B's count.
    fn emit_multiset(
        &self,
        db: &mut dyn Db,
        target: Target<'_>,
        rows: &mut RowSql,
    ) -> Result<(), String> {
        let mut pending: Vec<Vec<Value>> = Vec::new();
        let suspects = self.scan_groups(db, target, rows, &mut pending)?;
        for (values, n) in suspects {
            if self.group_is_exact(db, &values)? {
                continue;
            }
            rows.counts.deletes += n;
            rows.counts.inserts += n;
            rows.deletes.push_str(&self.group_delete(target, &values));
            rows.delete_stmts += 1;
            pending.push(values);
        }
        for values in pending {
            self.insert_group(db, &values, &mut rows.inserts)?;
        }
        Ok(())
    }

    /// The multiset scan: writes the groups whose counts differ into `rows` (or into
    /// `pending`, when B's rows of the group must be read), and returns the groups with
    /// equal counts that hold a REAL zero, with their count, for a check of their bits.
    fn scan_groups(
        &self,
        db: &mut dyn Db,
        target: Target<'_>,
        rows: &mut RowSql,
        pending: &mut Vec<Vec<Value>>,
    ) -> Result<Vec<(Vec<Value>, u64)>, String> {
        let n = self.compared().len();
        let all_compared = n == self.columns.len();
        // Multiset rows carry no rowid.
        let names = self.column_list();
        let filter = match self.zero_group() {
            Some(z) => format!("na <> nb OR {z}"),
            None => "na <> nb".to_string(),
        };
        let RowSql {
            deletes,
            delete_stmts,
            inserts,
            counts,
            ..
        } = rows;
        let mut suspects = Vec::new();
        db.query(&self.multiset_sql(&filter), &[], &mut |row| {
            let values = &row[..n.min(row.len())];
            let count =
                |k: usize| row.get(n + k).and_then(Value::as_i64).unwrap_or(0).max(0) as u64;
            let (na, nb) = (count(0), count(1));
            if na == nb {
                // Only a group with zeros gets here: its signs are checked by the caller.
                suspects.push((values.to_vec(), na));
                return Ok(());
            }
            counts.deletes += na.saturating_sub(nb);
            counts.inserts += nb.saturating_sub(na);
            if na > 0 {
                deletes.push_str(&self.group_delete(target, values));
                *delete_stmts += 1;
            }
            // A REAL zero stands for both 0.0 and -0.0, which SQL cannot tell apart: copy
            // B's actual rows of such a group.
            let has_zero = values
                .iter()
                .any(|v| matches!(v, Value::Real(r) if *r == 0.0));
            if nb > 0 && all_compared && !has_zero {
                for _ in 0..nb {
                    inserts.push_str(&self.insert_stmt(&names, values));
                }
            } else if nb > 0 {
                pending.push(values.to_vec());
            }
            Ok(())
        })?;
        Ok(suspects)
    }

    /// INSERTs of B's rows of the group `values` (compared columns), read from B.
    fn insert_group(
        &self,
        db: &mut dyn Db,
        values: &[Value],
        out: &mut String,
    ) -> Result<(), String> {
        let names = self.column_list();
        let b_column = |i: usize| format!("b.{}", ident(&self.columns[i]));
        let select: Vec<String> = (0..self.columns.len()).map(b_column).collect();
        let sql = format!(
            "SELECT {} FROM {} AS b WHERE {}",
            select.join(", "),
            self.b_tab(),
            self.row_where(&b_column, values)
        );
        db.query(&sql, &[], &mut |row| {
            out.push_str(&self.insert_stmt(&names, &row));
            Ok(())
        })
    }

    /// The counts of this table's diff, without producing SQL.
    pub fn count(&self, db: &mut dyn Db) -> Result<Counts, String> {
        let mut c = Counts::default();
        let b_count = || format!("SELECT count(*) FROM {}", self.b_tab());
        match &self.how {
            How::InsertAll => c.inserts = query_count(db, &b_count())?,
            How::FullReload => {
                c.inserts = query_count(db, &b_count())?;
                if let Some(a) = &self.a_name {
                    c.deletes =
                        query_count(db, &format!("SELECT count(*) FROM main.{}", ident(a)))?;
                }
            }
            How::Keyed(_) if !self.sign_checked().is_empty() => {
                // Zeros are compared by their bits outside SQL: count what the scan finds.
                c = self.scan_keyed(db, false, &mut |_| Ok(()))?;
                let a_rows = query_count(db, &format!("SELECT count(*) FROM {}", self.a_tab()))?;
                c.unchanged = a_rows.saturating_sub(c.deletes + c.updates);
            }
            How::Keyed(_) => c = self.count_keyed(db)?,
            How::Multiset if self.zero_group().is_some() => {
                // Zeros are compared by their bits outside SQL: count what the scan finds.
                let mut rows = RowSql::default();
                self.emit_multiset(db, Target::Table, &mut rows)?;
                c = rows.counts;
                let a_rows = match &self.a_name {
                    Some(a) => query_count(db, &format!("SELECT count(*) FROM main.{}", ident(a)))?,
                    None => 0,
                };
                c.unchanged = a_rows.saturating_sub(c.deletes);
            }
            How::Multiset => {
                let sql = format!(
                    "SELECT coalesce(sum(max(na-nb,0)),0), coalesce(sum(max(nb-na,0)),0), coalesce(sum(min(na,nb)),0) FROM ({})",
                    self.multiset_sql("1")
                );
                let [deletes, inserts, unchanged] = counts_row(db, &sql)?;
                c = Counts {
                    inserts,
                    deletes,
                    updates: 0,
                    unchanged,
                };
            }
        }
        Ok(c)
    }

    /// A keyed table's counts in three counting queries: A's rows filtered like the SQL
    /// scan (so the comparison runs once per row) give the deletes and updates, A's count
    /// less those the unchanged rows, and B's rows without a match the inserts. The two
    /// joins run at once where the connection can.
    fn count_keyed(&self, db: &mut dyn Db) -> Result<Counts, String> {
        let (a_tab, b_tab) = (self.a_tab(), self.b_tab());
        let flags = self.flags();
        let any = if flags.is_empty() {
            "0".to_string()
        } else {
            flags.join(" OR ")
        };
        let gone = self.missing("b");
        let differ_sql = format!(
            "SELECT count(*), coalesce(sum({gone}), 0) FROM {a_tab} AS a LEFT JOIN {b_tab} AS b ON {} WHERE {gone} OR {any}",
            self.key_match("b", "a")
        );
        let inserts_sql = format!(
            "SELECT count(*) FROM {b_tab} AS b LEFT JOIN {a_tab} AS a ON {} WHERE {}",
            self.key_match("a", "b"),
            self.missing("a")
        );
        let [mut differ, mut deletes, mut inserts] = [0u64; 3];
        db.query_both(&differ_sql, &inserts_sql, &mut |pass, row| {
            match pass {
                Pass::First => (differ, deletes) = (count_at(&row, 0), count_at(&row, 1)),
                Pass::Second => inserts = count_at(&row, 0),
            }
            Ok(())
        })?;
        let updates = differ.saturating_sub(deletes);
        let a_rows = query_count(db, &format!("SELECT count(*) FROM {a_tab}"))?;
        Ok(Counts {
            inserts,
            deletes,
            updates,
            unchanged: a_rows.saturating_sub(deletes + updates),
        })
    }
}

/// The first row of a query of three counts (0 for what is missing or negative).
fn counts_row(db: &mut dyn Db, sql: &str) -> Result<[u64; 3], String> {
    let rows = query_all(db, sql, &[])?;
    let row = rows.first().map_or(&[][..], Vec::as_slice);
    Ok([count_at(row, 0), count_at(row, 1), count_at(row, 2)])
}

/// The count in column `k` of a counting row (0 for what is missing or negative).
fn count_at(row: &[Value], k: usize) -> u64 {
    row.get(k)
        .and_then(Value::as_i64)
        .map_or(0, |n| n.max(0) as u64)
}

/// Whether A's and B's value of a sign-checked column are the same: anything but two
/// REALs is decided by SQL already (so counts as the same here); two REALs compare bits.
fn same_bits(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Real(x)), Some(Value::Real(y))) => x.to_bits() == y.to_bits(),
        _ => true,
    }
}

/// A value as a sortable key that tells every value apart, REALs by their bits.
fn exact_key(v: &Value) -> String {
    match v {
        Value::Real(r) => format!("real:{:016x}", r.to_bits()),
        other => format!("{other:?}"),
    }
}

/// The `typeof()` name of a value.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Integer(_) => "integer",
        Value::Real(_) => "real",
        Value::Text(_) | Value::TextBytes(_) => "text",
        Value::Blob(_) => "blob",
    }
}
