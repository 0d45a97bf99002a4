//! Reading one side's schema: the objects of `sqlite_schema` and each table's columns.

use std::collections::BTreeMap;

use super::literal::ident;
use super::parse::{self, CreateTable, Kind};
use super::{Db, Value, query_all};

/// One row of `sqlite_schema` (internal `sqlite_*` objects left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// "table", "index", "view" or "trigger".
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The table it belongs to (itself, for tables and views).
    pub tbl_name: String,
    /// Its `CREATE` text.
    pub sql: String,
}

/// One column, from `pragma_table_xinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its declared type.
    pub decl: String,
    /// Its DEFAULT text, if any.
    pub dflt: Option<String>,
    /// Its position in the PRIMARY KEY (1-based), 0 if not in it.
    pub pk: i64,
    /// 0 ordinary, 1 hidden (virtual tables), 2/3 generated.
    pub hidden: i64,
}

/// A table's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Its name as written in `sqlite_schema`.
    pub name: String,
    /// Its `CREATE TABLE` text.
    pub sql: String,
    /// Its columns (empty for virtual tables).
    pub columns: Vec<Column>,
    /// The parsed column list, when the text could be followed.
    pub parsed: Option<CreateTable>,
    /// For a virtual table, its module name (lower case).
    pub module: Option<String>,
}

impl Table {
    /// Whether this is a virtual table.
    pub fn is_virtual(&self) -> bool {
        self.module.is_some()
    }

    /// Whether it was declared WITHOUT ROWID.
    pub fn without_rowid(&self) -> bool {
        self.parsed.as_ref().is_some_and(CreateTable::without_rowid)
    }

    /// Whether it is STRICT.
    pub fn strict(&self) -> bool {
        self.parsed.as_ref().is_some_and(CreateTable::strict)
    }

    /// The columns that hold stored values (not generated, not hidden).
    pub fn data_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.hidden == 0)
    }

    /// A column by name (case-insensitive), generated ones included.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|c| c.hidden != 1 && c.name.eq_ignore_ascii_case(name))
    }

    /// The declared PRIMARY KEY columns, in key order.
    pub fn pk(&self) -> Vec<&Column> {
        let mut pk: Vec<&Column> = self.columns.iter().filter(|c| c.pk > 0).collect();
        pk.sort_by_key(|c| c.pk);
        pk
    }

    /// The INTEGER PRIMARY KEY column (the rowid alias) of a rowid table.
    pub fn ipk(&self) -> Option<&Column> {
        let pk = self.pk();
        match pk.as_slice() {
            [one] if !self.without_rowid() && one.decl.eq_ignore_ascii_case("INTEGER") => Some(one),
            _ => None,
        }
    }

    /// The affinity of column `c` (with STRICT's ANY meaning "none").
    pub fn affinity(&self, c: &Column) -> Affinity {
        affinity(&c.decl, self.strict())
    }
}

/// SQLite's column affinities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affinity {
    /// INTEGER
    Integer,
    /// TEXT
    Text,
    /// BLOB (none)
    Blob,
    /// REAL
    Real,
    /// NUMERIC
    Numeric,
}

/// The affinity a declared type gives (SQLite's rules, section 3.1 of "Datatypes").
pub fn affinity(decl: &str, strict: bool) -> Affinity {
    let d = decl.to_ascii_uppercase();
    if strict && d == "ANY" {
        Affinity::Blob
    } else if d.contains("INT") {
        Affinity::Integer
    } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
        Affinity::Text
    } else if d.contains("BLOB") || d.is_empty() {
        Affinity::Blob
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        Affinity::Real
    } else {
        Affinity::Numeric
    }
}

/// One database's schema.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Every object, in `sqlite_schema` order.
    pub objects: Vec<Object>,
    /// Tables by lower-case name.
    pub tables: BTreeMap<String, Table>,
    /// Whether `sqlite_sequence` exists.
    pub has_sequence: bool,
}

impl Schema {
    /// Reads the schema of `db_name` ("main" or "aux").
    pub fn read(db: &mut dyn Db, db_name: &str) -> Result<Schema, String> {
        let sql = format!(
            "SELECT type, name, tbl_name, sql FROM {}.sqlite_master ORDER BY rowid",
            ident(db_name)
        );
        let mut schema = Schema::default();
        for row in query_all(db, &sql, &[])? {
            let text = |i: usize| row.get(i).and_then(Value::as_str).unwrap_or("").to_string();
            let (kind, name) = (text(0), text(1));
            if name.eq_ignore_ascii_case("sqlite_sequence") {
                schema.has_sequence = true;
            }
            if name.len() >= 7 && name[..7].eq_ignore_ascii_case("sqlite_") {
                continue;
            }
            let Some(Value::Text(sql)) = row.get(3) else {
                continue; // autoindexes have no text
            };
            schema.objects.push(Object {
                kind,
                name,
                tbl_name: text(2),
                sql: sql.clone(),
            });
        }
        let tables: Vec<Object> = schema
            .objects
            .iter()
            .filter(|o| o.kind == "table")
            .cloned()
            .collect();
        for o in tables {
            let module = virtual_module(&o.sql);
            let columns = if module.is_some() {
                Vec::new()
            } else {
                read_columns(db, db_name, &o.name)?
            };
            let parsed = parse::create_table(&o.sql);
            schema.tables.insert(
                o.name.to_lowercase(),
                Table {
                    name: o.name,
                    sql: o.sql,
                    columns,
                    parsed,
                    module,
                },
            );
        }
        Ok(schema)
    }

    /// The object of `kind` named `name` (case-insensitive).
    pub fn object(&self, kind: &str, name: &str) -> Option<&Object> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.name.eq_ignore_ascii_case(name))
    }

    /// Whether `name` is the shadow table of a virtual table of a module the engine knows,
    /// and which one.
    pub fn shadow_owner(&self, name: &str) -> Option<&Table> {
        let lower = name.to_lowercase();
        self.tables.values().find(|t| {
            t.module.as_deref().is_some_and(|m| {
                shadow_suffixes(m)
                    .iter()
                    .any(|s| lower == format!("{}_{s}", t.name.to_lowercase()))
            })
        })
    }
}

/// The shadow-table suffixes of the virtual-table modules whose shadow tables the engine
/// diffs as ordinary tables; empty for modules it does not know.
pub fn shadow_suffixes(module: &str) -> &'static [&'static str] {
    match module {
        "fts5" => &["data", "idx", "content", "docsize", "config"],
        "fts3" | "fts4" => &["content", "segments", "segdir", "docsize", "stat"],
        "rtree" | "rtree_i32" | "geopoly" => &["node", "rowid", "parent"],
        _ => &[],
    }
}

/// The module of a `CREATE VIRTUAL TABLE … USING module(…)` statement.
fn virtual_module(sql: &str) -> Option<String> {
    let tokens = parse::tokenize(sql);
    let words: Vec<String> = tokens
        .iter()
        .take(3)
        .map(|t| sql[t.start..t.end].to_ascii_uppercase())
        .collect();
    if words.len() < 2 || words[0] != "CREATE" || words[1] != "VIRTUAL" {
        return None;
    }
    let using = tokens
        .iter()
        .position(|t| t.kind == Kind::Word && sql[t.start..t.end].eq_ignore_ascii_case("USING"))?;
    let m = tokens.get(using + 1)?;
    Some(parse::unquote(&sql[m.start..m.end]).to_lowercase())
}

/// The columns of `table` in `db_name`.
fn read_columns(db: &mut dyn Db, db_name: &str, table: &str) -> Result<Vec<Column>, String> {
    let rows = query_all(
        db,
        "SELECT name, type, dflt_value, pk, hidden FROM pragma_table_xinfo(?1, ?2) ORDER BY cid",
        &[
            Value::Text(table.to_string()),
            Value::Text(db_name.to_string()),
        ],
    )?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let text = |i: usize| r.get(i).and_then(Value::as_str).map(str::to_string);
            let int = |i: usize| r.get(i).and_then(Value::as_i64).unwrap_or(0);
            Column {
                name: text(0).unwrap_or_default(),
                decl: text(1).unwrap_or_default(),
                dflt: text(2),
                pk: int(3),
                hidden: int(4),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinities_follow_sqlites_rules() {
        assert_eq!(affinity("BIGINT", false), Affinity::Integer);
        assert_eq!(affinity("varchar(10)", false), Affinity::Text);
        assert_eq!(affinity("", false), Affinity::Blob);
        assert_eq!(affinity("DOUBLE", false), Affinity::Real);
        assert_eq!(affinity("DECIMAL", false), Affinity::Numeric);
        assert_eq!(affinity("ANY", true), Affinity::Blob);
        assert_eq!(affinity("ANY", false), Affinity::Numeric);
    }

    #[test]
    fn finds_virtual_table_modules() {
        assert_eq!(
            virtual_module("CREATE VIRTUAL TABLE d USING fts5(body)").as_deref(),
            Some("fts5")
        );
        assert_eq!(virtual_module("CREATE TABLE d(x)"), None);
    }
}
