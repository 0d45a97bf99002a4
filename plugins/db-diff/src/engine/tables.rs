//! One table present in both databases: how its definition changes ([`Step`]), how its
//! rows are matched ([`choose_how`]), and the rebuild's SQL ([`rebuild_sql`]).

use super::data::{Compare, How, Key, TableData};
use super::literal::{ident, literal};
use super::options::Options;
use super::parse::{self, after_add_column, after_drop_column, constant_default};
use super::schema::{Affinity, Schema, Table};
use super::{Db, Value, query_all};

/// What the diff does to a table's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// Nothing: A's text is B's.
    Keep,
    /// Create B's table (A has none, or had a virtual table of that name).
    Create,
    /// `ALTER TABLE` statements that give B's text exactly.
    Alter {
        /// The statements, in order.
        stmts: Vec<String>,
        /// Whether one drops a column (views and triggers naming it must go first).
        drops_column: bool,
    },
    /// Rename A's table away, create B's, copy the rows that stay, drop A's.
    Rebuild,
}

/// How table `a` becomes `b` when their texts differ: exact in-place ALTERs when SQLite's
/// rewrite of the text gives B's text exactly, otherwise a rebuild.
pub(super) fn step(a: &Table, b: &Table) -> Step {
    alter_steps(a, b).unwrap_or(Step::Rebuild)
}

/// The rowid alias no column of either table shadows.
pub(super) fn rowid_alias(a: Option<&Table>, b: &Table) -> Option<&'static str> {
    ["rowid", "oid", "_rowid_"]
        .into_iter()
        .find(|r| b.column(r).is_none() && a.is_none_or(|a| a.column(r).is_none()))
}

/// ADD/DROP COLUMN statements whose predicted `sqlite_schema` text equals B's.
fn alter_steps(a: &Table, b: &Table) -> Option<Step> {
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
    let named = |cols: &[(&parse::Item, String)], name: &str| {
        cols.iter().any(|(i, _)| i.name.eq_ignore_ascii_case(name))
    };
    let mut sql = a.sql.clone();
    let mut stmts = Vec::new();
    let table = ident(&a.name);
    // Drop A's columns B does not have.
    for (item, _) in cols_a.iter().filter(|(i, _)| !named(&cols_b, &i.name)) {
        let keyed = ["PRIMARY", "UNIQUE", "REFERENCES", "GENERATED", "AS"];
        if item.words.iter().any(|w| keyed.contains(&w.as_str())) {
            return None;
        }
        sql = after_drop_column(&sql, &item.name)?;
        stmts.push(format!(
            "ALTER TABLE {table} DROP COLUMN {};\n",
            ident(&item.name)
        ));
    }
    let drops_column = !stmts.is_empty();
    // Then add B's new columns, which must come after the kept ones.
    let kept = cols_a.len() - stmts.len();
    for (item, text) in cols_b.get(kept..)? {
        if named(&cols_a, &item.name) || !add_column_ok(item, text) {
            return None;
        }
        sql = after_add_column(&sql, text)?;
        stmts.push(format!("ALTER TABLE {table} ADD COLUMN {text};\n"));
    }
    (sql == b.sql && !stmts.is_empty()).then_some(Step::Alter {
        stmts,
        drops_column,
    })
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
    !has("NOT") || has("DEFAULT")
}

/// The SQLite-documented rebuild of A's table `a` as B's `b`, inside a transaction when
/// `wrap` (the whole output is not one already): rename A's table to `old` (with
/// `legacy_alter_table=ON`, so nothing else is rewritten), run `before_copy` on it (the
/// row diff deletes there every row that is not exactly as in B), create B's table, copy
/// what is left with `copy` (column, expression on alias `a`), drop `old`, then run
/// `after_copy` (B's rows). What is copied is a subset of B's rows, so no constraint of
/// B's (NOT NULL, CHECK, UNIQUE, STRICT types…) can fail on it.
pub(super) struct Rebuild<'t> {
    /// A's table.
    pub a: &'t Table,
    /// B's table.
    pub b: &'t Table,
    /// The name A's table is renamed to while its rows are copied.
    pub old: String,
    /// The copied columns of B and the expression giving each from A's row `a`.
    pub copy: Vec<(String, String)>,
    /// `CREATE INDEX` on `old`'s columns that B's key is, when A has no key on them: the
    /// deletes before the copy find their rows by that key.
    pub key_index: Option<String>,
}

impl<'t> Rebuild<'t> {
    /// The rebuild of `a` as `b` with the row diff `td`: the copy writes the columns B
    /// adds too (`td`'s value for A's rows), unless `schema_only`, where their DEFAULT
    /// fills them as in SQLite's own rebuild.
    pub fn new(
        a: &'t Table,
        b: &'t Table,
        td: &TableData,
        sides: (&Schema, &Schema),
        schema_only: bool,
    ) -> Rebuild<'t> {
        let old = unused_name(&format!("{}__roost_old", a.name), sides);
        let mut copy: Vec<(String, String)> = Vec::new();
        if !a.without_rowid() && !b.without_rowid() && b.ipk().is_none() {
            copy.extend(rowid_alias(Some(a), b).map(|r| (r.to_string(), format!("a.{r}"))));
        }
        for (i, c) in td.columns.iter().enumerate() {
            if a.column(c).is_some() || !schema_only {
                copy.push((ident(c), td.a_exprs[i].clone()));
            }
        }
        let key_index = match &td.how {
            How::Keyed(Key::Columns(cols)) if !keyed_on(a, cols) => Some(format!(
                "CREATE INDEX {} ON {}({});\n",
                ident(&unused_name(&format!("{old}_key"), sides)),
                ident(&old),
                cols.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ")
            )),
            _ => None,
        };
        Rebuild {
            a,
            b,
            old,
            copy,
            key_index,
        }
    }

    /// The SQL, with the row diff's statements around the copy.
    pub fn sql(&self, wrap: bool, before_copy: &str, after_copy: &str) -> String {
        let (names, exprs): (Vec<&str>, Vec<&str>) = self
            .copy
            .iter()
            .map(|(n, e)| (n.as_str(), e.as_str()))
            .unzip();
        let (table, old) = (ident(&self.b.name), ident(&self.old));
        let mut s = String::new();
        if wrap {
            s.push_str("BEGIN;\n");
        }
        // Indexes of the old table go with it; B's are created at the end.
        s.push_str("PRAGMA legacy_alter_table=ON;\n");
        s.push_str(&format!(
            "ALTER TABLE {} RENAME TO {old};\n",
            ident(&self.a.name)
        ));
        s.push_str("PRAGMA legacy_alter_table=OFF;\n");
        if let Some(index) = self.key_index.as_ref().filter(|_| !before_copy.is_empty()) {
            s.push_str(index);
        }
        s.push_str(before_copy);
        s.push_str(&format!("{};\n", self.b.sql));
        if !names.is_empty() {
            s.push_str(&format!(
                "INSERT INTO {table}({}) SELECT {} FROM {old} AS a;\n",
                names.join(", "),
                exprs.join(", ")
            ));
        }
        s.push_str(&format!("DROP TABLE {old};\n"));
        s.push_str(after_copy);
        if wrap {
            s.push_str("COMMIT;\n");
        }
        s
    }
}

/// `base`, with underscores appended until no object of A or B has that name.
fn unused_name(base: &str, (sa, sb): (&Schema, &Schema)) -> String {
    let taken = |n: &str| {
        sa.objects
            .iter()
            .chain(&sb.objects)
            .any(|o| o.name.eq_ignore_ascii_case(n))
    };
    let mut name = base.to_string();
    while taken(&name) {
        name.push('_');
    }
    name
}

/// Whether A's table `a` has a key on exactly `cols`: its INTEGER PRIMARY KEY or its
/// PRIMARY KEY, whose index finds a row by them.
fn keyed_on(a: &Table, cols: &[String]) -> bool {
    let mut key: Vec<String> = a.pk().iter().map(|c| c.name.to_lowercase()).collect();
    let mut want: Vec<String> = cols.iter().map(|c| c.to_lowercase()).collect();
    key.sort();
    want.sort();
    !key.is_empty() && key == want
}

/// Picks how rows of a table present in both are matched. A rebuild copies only the rows
/// that are exactly as in B, so it never needs to reload a whole table.
pub(super) fn choose_how(
    db: &mut dyn Db,
    a: &Table,
    b: &Table,
    step: &Step,
    opts: &Options,
) -> Result<How, String> {
    let rebuilt = *step == Step::Rebuild;
    // New columns whose value in A's rows (their default) the engine cannot know.
    let unknown_new = b.data_columns().any(|c| {
        a.column(&c.name).is_none()
            && c.dflt
                .as_deref()
                .is_some_and(|d| constant_default(d).is_none())
    });
    if unknown_new && !rebuilt {
        return Ok(How::FullReload);
    }
    Ok(match key(db, a, b, step, opts)? {
        Some(k) => How::Keyed(k),
        None if !rebuilt && multiset_needs_reload(a, b) => How::FullReload,
        None => How::Multiset,
    })
}

/// The key rows are matched on, if any is usable on both sides.
fn key(
    db: &mut dyn Db,
    a: &Table,
    b: &Table,
    step: &Step,
    opts: &Options,
) -> Result<Option<Key>, String> {
    let common = |c: &str| a.column(c).is_some_and(|x| x.hidden == 0 || x.hidden >= 2);
    let columns =
        |pk: Vec<&super::schema::Column>| Key::Columns(pk.iter().map(|c| c.name.clone()).collect());
    if b.without_rowid() {
        let pk = b.pk();
        return Ok((!pk.is_empty() && pk.iter().all(|c| common(&c.name))).then(|| columns(pk)));
    }
    if let Some(ipk) = b.ipk() {
        let same_ipk = a
            .ipk()
            .is_some_and(|x| x.name.eq_ignore_ascii_case(&ipk.name));
        let ok = common(&ipk.name) && (same_ipk || *step != Step::Keep);
        return Ok(ok.then(|| Key::Columns(vec![ipk.name.clone()])));
    }
    let pk = b.pk();
    if pk.is_empty() {
        return Ok(None);
    }
    if opts.primary_key {
        let usable = pk.iter().all(|c| common(&c.name)) && !pk_has_nulls(db, a, b)?;
        return Ok(usable.then(|| columns(pk)));
    }
    Ok((!a.without_rowid())
        .then(|| rowid_alias(Some(a), b).map(Key::Rowid))
        .flatten())
}

/// Whether a keyless table changed in place (ALTER) must be reloaded: its multiset
/// deletes find rows by A's values, which an affinity change or a new column's default of
/// another storage class no longer match after the ALTER.
fn multiset_needs_reload(a: &Table, b: &Table) -> bool {
    let affinity_changed = b.data_columns().any(|c| {
        a.column(&c.name)
            .is_some_and(|ac| a.affinity(ac) != b.affinity(c))
    });
    let new_with_default = b.data_columns().any(|c| {
        a.column(&c.name).is_none()
            && c.dflt
                .as_deref()
                .and_then(constant_default)
                .is_some_and(|v| !affinity_keeps(b.affinity(c), &v))
    });
    affinity_changed || new_with_default
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

/// A [`TableData`] for B's table `b` (and A's `a`, if it is matched against one). A column
/// B adds holds, in A's rows, its constant DEFAULT (NULL without one).
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

/// The longest literal used as a new column's fill value: longer values (large BLOBs)
/// would be repeated in every comparison query, so such a column keeps its default.
const MAX_FILL_LITERAL: usize = 256;

/// For a rebuild: each column B adds holds, in A's rows, the value most of B's rows hold
/// — the value a migration fills in for a new required column — so the copy writes it and
/// only rows holding another value count as changed. An empty table keeps the default.
pub(super) fn fill_new_columns(
    db: &mut dyn Db,
    a: &Table,
    b: &Table,
    td: &mut TableData,
) -> Result<(), String> {
    for (i, c) in td.columns.iter().enumerate() {
        if a.column(c).is_some() {
            continue;
        }
        let c = ident(c);
        let sql = format!(
            "SELECT {c} FROM aux.{} GROUP BY typeof({c}), {c} COLLATE BINARY ORDER BY count(*) DESC LIMIT 1",
            ident(&b.name)
        );
        let rows = query_all(db, &sql, &[])?;
        if let Some(v) = rows.first().and_then(|r| r.first()) {
            let lit = literal(v);
            if lit.len() <= MAX_FILL_LITERAL {
                td.a_exprs[i] = lit;
            }
        }
    }
    Ok(())
}
