//! What a database file holds outside `sqlite_schema` and the rows that a user who
//! versions their schema relies on: `PRAGMA user_version` (where migration frameworks keep
//! the schema version), `PRAGMA application_id`, and the AUTOINCREMENT counters in
//! `sqlite_sequence`.

use std::collections::BTreeMap;

use super::data::Counts;
use super::literal::literal;
use super::{Db, Value, query_all};

/// The header pragmas compared, in the order they are written.
const PRAGMAS: [&str; 2] = ["user_version", "application_id"];

/// A header pragma (`user_version`, `application_id`) that differs between A and B.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingChange {
    /// `user_version` or `application_id`.
    pub name: &'static str,
    /// A's value.
    pub from: i64,
    /// B's value.
    pub to: i64,
}

impl SettingChange {
    /// What the setting is, for `--summary` and `--stat`: `pragma user_version`.
    pub fn label(&self) -> String {
        format!("pragma {}", self.name)
    }

    /// How it changed, so a reader sees the schema version move: `3 -> 4`.
    pub fn what(&self) -> String {
        format!("{} -> {}", self.from, self.to)
    }
}

/// One header pragma of schema `db_name` ("main" or "aux"); 0 when SQLite returns nothing.
fn read_pragma(db: &mut dyn Db, db_name: &str, pragma: &str) -> Result<i64, String> {
    let rows = query_all(db, &format!("PRAGMA {db_name}.{pragma}"), &[])?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(Value::as_i64)
        .unwrap_or(0))
}

/// The header pragmas whose values differ between A (`main`) and B (`aux`).
pub(super) fn pragma_changes(db: &mut dyn Db) -> Result<Vec<SettingChange>, String> {
    let mut out = Vec::new();
    for name in PRAGMAS {
        let (a, b) = (
            read_pragma(db, "main", name)?,
            read_pragma(db, "aux", name)?,
        );
        if a != b {
            out.push(SettingChange {
                name,
                from: a,
                to: b,
            });
        }
    }
    Ok(out)
}

/// `PRAGMA user_version = N;` (and the like) setting each changed pragma to B's value;
/// SQLite accepts them inside the output's transaction, and they roll back with it.
pub(super) fn pragma_sql(changes: &[SettingChange]) -> String {
    changes
        .iter()
        .map(|c| format!("PRAGMA {} = {};\n", c.name, c.to))
        .collect()
}

/// `sqlite_sequence` of schema `db_name` as name -> counter literal.
fn read_sequence(db: &mut dyn Db, db_name: &str) -> Result<BTreeMap<String, String>, String> {
    let sql = format!("SELECT name, seq FROM {db_name}.sqlite_sequence ORDER BY name");
    Ok(query_all(db, &sql, &[])?
        .into_iter()
        .map(|r| {
            let name = r.first().and_then(Value::as_str).unwrap_or("").to_string();
            let seq = r.get(1).map(literal).unwrap_or_else(|| "NULL".into());
            (name, seq)
        })
        .collect())
}

/// The AUTOINCREMENT counters compared row by row, matched on the table they count for
/// (a missing `sqlite_sequence` holds none): sqldiff lists `sqlite_sequence` among the
/// tables too, but matches its rows on the rowid, so a counter of another table reads as a
/// change.
pub(super) fn sequence_counts(db: &mut dyn Db, a_has: bool, b_has: bool) -> Result<Counts, String> {
    let a = if a_has {
        read_sequence(db, "main")?
    } else {
        BTreeMap::new()
    };
    let b = if b_has {
        read_sequence(db, "aux")?
    } else {
        BTreeMap::new()
    };
    let mut c = Counts::default();
    for (name, seq) in &a {
        match b.get(name) {
            None => c.deletes += 1,
            Some(s) if s != seq => c.updates += 1,
            Some(_) => c.unchanged += 1,
        }
    }
    c.inserts = b.keys().filter(|n| !a.contains_key(*n)).count() as u64;
    Ok(c)
}

/// `sqlite_sequence` set to B's contents when they differ from A's (or when the diff
/// creates an AUTOINCREMENT table, whose counter the rows it inserts move).
pub(super) fn sequence_sql(db: &mut dyn Db, a_has: bool, created: bool) -> Result<String, String> {
    if !a_has && !created {
        return Ok(String::new());
    }
    let bs = read_sequence(db, "aux")?;
    let as_ = if a_has {
        Some(read_sequence(db, "main")?)
    } else {
        None
    };
    if as_.as_ref() == Some(&bs) && !created {
        return Ok(String::new());
    }
    let mut s = String::from("DELETE FROM sqlite_sequence;\n");
    for (name, seq) in &bs {
        s.push_str(&format!(
            "INSERT INTO sqlite_sequence(name,seq) VALUES({},{seq});\n",
            literal(&Value::Text(name.clone()))
        ));
    }
    Ok(s)
}
