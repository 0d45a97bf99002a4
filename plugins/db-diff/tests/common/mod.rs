//! Test helpers: build A and B from SQL, diff them through rusqlite, apply the diff to a
//! copy of A with the real `sqlite3 -bail`, and compare the copy with B exactly.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use db_diff::engine::{self, Db, Options, Pass, Value};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

/// The real shell the diffs are applied with.
pub const SQLITE3: &str = "/usr/bin/sqlite3";

/// The engine's [`Db`] over rusqlite: A opened read-only as `main`, B attached read-only
/// as `aux`.
pub struct RusqliteDb {
    conn: Connection,
}

impl RusqliteDb {
    /// Opens `a` read-only and attaches `b` read-only as `aux`.
    pub fn open(a: &Path, b: &Path) -> RusqliteDb {
        let conn = Connection::open_with_flags(
            a,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
        )
        .expect("open A");
        let uri = format!("file:{}?mode=ro", b.display());
        conn.execute("ATTACH ?1 AS aux", [uri]).expect("attach B");
        conn.pragma_update(None, "query_only", true)
            .expect("query_only");
        RusqliteDb { conn }
    }
}

/// A parameter bound with its storage class (TEXT bytes unchanged, as the host does).
struct Param<'a>(&'a Value);

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
            Value::TextBytes(b) => ValueRef::Text(b),
        }))
    }
}

fn from_ref(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => Value::Text(s.to_owned()),
            Err(_) => Value::TextBytes(t.to_vec()),
        },
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// One row's values, as the host hands them over.
fn values(r: &rusqlite::Row<'_>, n: usize) -> Result<Vec<Value>, String> {
    (0..n)
        .map(|i| r.get_ref(i).map(from_ref).map_err(|e| e.to_string()))
        .collect()
}

impl Db for RusqliteDb {
    fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        row: &mut dyn FnMut(Vec<Value>) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| format!("{e}: {sql}"))?;
        let n = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter().map(Param)))
            .map_err(|e| e.to_string())?;
        while let Some(r) = rows.next().map_err(|e| e.to_string())? {
            row(values(r, n)?)?;
        }
        Ok(())
    }

    /// Interleaved a row at a time, so the engine is tested against the mixed order the
    /// plugin's two connections can give.
    fn query_both(
        &mut self,
        first: &str,
        second: &str,
        row: &mut dyn FnMut(Pass, Vec<Value>) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut one = self
            .conn
            .prepare(first)
            .map_err(|e| format!("{e}: {first}"))?;
        let mut two = self
            .conn
            .prepare(second)
            .map_err(|e| format!("{e}: {second}"))?;
        let (n1, n2) = (one.column_count(), two.column_count());
        let mut ones = one.query([]).map_err(|e| e.to_string())?;
        let mut twos = two.query([]).map_err(|e| e.to_string())?;
        let (mut more_one, mut more_two) = (true, true);
        while more_one || more_two {
            if more_one {
                match ones.next().map_err(|e| e.to_string())? {
                    Some(r) => row(Pass::First, values(r, n1)?)?,
                    None => more_one = false,
                }
            }
            if more_two {
                match twos.next().map_err(|e| e.to_string())? {
                    Some(r) => row(Pass::Second, values(r, n2)?)?,
                    None => more_two = false,
                }
            }
        }
        Ok(())
    }
}

/// A pair of databases in a temporary directory.
pub struct Pair {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// Database A.
    pub a: PathBuf,
    /// Database B.
    pub b: PathBuf,
}

/// Creates a database at `path` from `sql` (run by rusqlite).
pub fn create(path: &Path, sql: &str) {
    let conn = Connection::open(path).expect("create db");
    conn.execute_batch(sql)
        .unwrap_or_else(|e| panic!("setup SQL failed: {e}\n{sql}"));
}

/// A and B from SQL.
pub fn pair(a_sql: &str, b_sql: &str) -> Pair {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.db");
    let b = dir.path().join("b.db");
    create(&a, a_sql);
    create(&b, b_sql);
    Pair { dir, a, b }
}

/// Runs the engine on A and B.
pub fn diff(p: &Pair, opts: &Options) -> engine::Diff {
    let mut db = RusqliteDb::open(&p.a, &p.b);
    engine::diff(&mut db, opts).unwrap_or_else(|e| panic!("diff failed: {e}"))
}

/// Applies `sql` with `sqlite3 -bail` to a copy of A; returns the copy's path.
pub fn apply(p: &Pair, sql: &str) -> PathBuf {
    let copy = p.dir.path().join(format!("copy-{}.db", rand_suffix()));
    std::fs::copy(&p.a, &copy).expect("copy A");
    let (ok, stderr) = try_apply(&copy, sql);
    assert!(
        ok && stderr.is_empty(),
        "sqlite3 -bail failed: {stderr}\n--- diff ---\n{sql}"
    );
    copy
}

/// Applies `sql` in place to `db` with `sqlite3 -bail`, in a shell that enforces foreign
/// keys (as a user's `~/.sqliterc` may make it): whether it succeeded, and its stderr.
pub fn try_apply(db: &Path, sql: &str) -> (bool, String) {
    let mut child = Command::new(SQLITE3)
        .arg("-bail")
        .arg("-cmd")
        .arg("PRAGMA foreign_keys=ON")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sqlite3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(sql.as_bytes())
        .expect("write diff");
    let out = child.wait_with_output().expect("sqlite3 finished");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

/// One value as compared: storage class and exact contents (REALs by their bits).
pub fn canon(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "null".into(),
        ValueRef::Integer(i) => format!("integer:{i}"),
        ValueRef::Real(r) => format!("real:{:016x}", r.to_bits()),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => format!("text:{s:?}"),
            Err(_) => format!("text-bytes:{t:?}"),
        },
        ValueRef::Blob(b) => format!("blob:{b:?}"),
    }
}

/// Everything the bar compares: every `sqlite_schema` row's type, name, table and SQL
/// text, and every table's rows (a sorted multiset of exact values). Virtual tables are
/// compared through their shadow tables.
#[derive(Debug, PartialEq, Eq)]
pub struct Contents {
    /// (type, name, tbl_name, sql) sorted.
    pub schema: Vec<(String, String, String, Option<String>)>,
    /// table name -> sorted rows.
    pub rows: BTreeMap<String, Vec<Vec<String>>>,
    /// `PRAGMA user_version` and `PRAGMA application_id` (None with `--table`, which
    /// leaves the file's settings alone).
    pub pragmas: Option<(i64, i64)>,
    /// What `PRAGMA foreign_key_check` reports (table, parent, foreign key id), sorted.
    pub fk_violations: Vec<(String, String, i64)>,
}

/// `PRAGMA foreign_key_check` of the open database, sorted.
fn fk_violations(conn: &Connection) -> Vec<(String, String, i64)> {
    let mut got: Vec<(String, String, i64)> = conn
        .prepare("PRAGMA foreign_key_check")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .expect("foreign_key_check");
    got.sort();
    got
}

/// `user_version` and `application_id` of the open database.
fn header_pragmas(conn: &Connection) -> (i64, i64) {
    let read = |p: &str| -> i64 {
        conn.query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
            .expect("read pragma")
    };
    (read("user_version"), read("application_id"))
}

/// Reads [`Contents`] of `path`, limited to table `only` when given.
pub fn contents(path: &Path, only: Option<&str>) -> Contents {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    let mut schema: Vec<(String, String, String, Option<String>)> = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .expect("schema");
    schema.retain(|(_, _, tbl, _)| only.is_none_or(|t| t.eq_ignore_ascii_case(tbl)));
    schema.sort();
    let mut rows = BTreeMap::new();
    for (kind, name, _, sql) in &schema {
        if kind != "table"
            || sql
                .as_deref()
                .is_some_and(|s| s.starts_with("CREATE VIRTUAL"))
        {
            continue;
        }
        let q = format!("SELECT * FROM \"{}\"", name.replace('"', "\"\""));
        let mut stmt = conn.prepare(&q).expect("select");
        let n = stmt.column_count();
        let mut got: Vec<Vec<String>> = stmt
            .query_map([], |r| (0..n).map(|i| Ok(canon(r.get_ref(i)?))).collect())
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        got.sort();
        rows.insert(name.clone(), got);
    }
    let pragmas = only.is_none().then(|| header_pragmas(&conn));
    Contents {
        schema,
        rows,
        pragmas,
        fk_violations: fk_violations(&conn),
    }
}

/// The whole check: diff A to B with `opts`, apply to a copy of A, the copy equals B.
/// Returns the diff.
pub fn check_with(a_sql: &str, b_sql: &str, opts: &Options) -> engine::Diff {
    let p = pair(a_sql, b_sql);
    let d = diff(&p, opts);
    let copy = apply(&p, &d.sql);
    let only = opts.table.as_deref();
    let got = contents(&copy, only);
    let want = contents(&p.b, only);
    assert_eq!(
        got.schema, want.schema,
        "schema differs after applying:\n{}",
        d.sql
    );
    assert_eq!(
        got.rows, want.rows,
        "rows differ after applying:\n{}",
        d.sql
    );
    assert_eq!(
        got.pragmas, want.pragmas,
        "user_version/application_id differ after applying:\n{}",
        d.sql
    );
    assert_eq!(
        got.fk_violations, want.fk_violations,
        "foreign keys differ after applying:\n{}",
        d.sql
    );
    // Diffing the result against B again finds nothing.
    let again = Pair {
        a: copy.clone(),
        b: p.b.clone(),
        dir: tempfile::tempdir().expect("tempdir"),
    };
    let d2 = diff(&again, opts);
    let statements: String = d2.sql.lines().filter(|l| !l.starts_with("--")).collect();
    assert!(
        statements.is_empty(),
        "second diff not empty:\n{}\n--- first diff ---\n{}",
        d2.sql,
        d.sql
    );
    d
}

/// [`check_with`] with default options.
pub fn check(a_sql: &str, b_sql: &str) -> engine::Diff {
    check_with(a_sql, b_sql, &Options::default())
}

/// Runs the engine on A and B in changeset mode (`--changeset`).
pub fn changeset(p: &Pair, opts: &Options) -> engine::Diff {
    let opts = Options {
        mode: engine::Mode::Changeset,
        ..opts.clone()
    };
    diff(p, &opts)
}

/// Applies `changeset` with SQLite's session extension (`sqlite3changeset_apply`) to a
/// copy of A; any conflict fails the test. Returns the copy's path.
pub fn apply_changeset(p: &Pair, changeset: &[u8]) -> PathBuf {
    use rusqlite::session::{ConflictAction, ConflictType};
    use std::sync::{Arc, Mutex};
    let copy = p.dir.path().join(format!("cs-copy-{}.db", rand_suffix()));
    std::fs::copy(&p.a, &copy).expect("copy A");
    let conn = Connection::open(&copy).expect("open copy");
    let conflicts: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = conflicts.clone();
    let mut input: &[u8] = changeset;
    let applied = conn.apply_strm(
        &mut input,
        None::<fn(&str) -> bool>,
        move |kind: ConflictType, item| {
            let table = item
                .op()
                .map(|op| op.table_name().to_string())
                .unwrap_or_default();
            seen.lock()
                .expect("conflicts")
                .push(format!("{kind:?} in {table}"));
            ConflictAction::SQLITE_CHANGESET_ABORT
        },
    );
    let conflicts = conflicts.lock().expect("conflicts").clone();
    assert!(
        applied.is_ok() && conflicts.is_empty(),
        "sqlite3changeset_apply failed: {applied:?}, conflicts: {conflicts:?}"
    );
    copy
}

/// The changeset check: the changeset of A to B, applied with the session extension to a
/// copy of A, gives B's rows exactly in every table (the schemas must already be equal).
/// Returns the diff (bytes and notes).
pub fn check_changeset_with(a_sql: &str, b_sql: &str, opts: &Options) -> engine::Diff {
    let p = pair(a_sql, b_sql);
    let d = changeset(&p, opts);
    let copy = apply_changeset(&p, &d.changeset);
    let only = opts.table.as_deref();
    let got = contents(&copy, only);
    let want = contents(&p.b, only);
    assert_eq!(
        got.schema, want.schema,
        "schemas differ: not a changeset case"
    );
    assert_eq!(
        got.rows, want.rows,
        "rows differ after applying the changeset (notes: {:?})",
        d.notes
    );
    // The changeset of the result against B is empty.
    let again = Pair {
        a: copy,
        b: p.b.clone(),
        dir: tempfile::tempdir().expect("tempdir"),
    };
    let d2 = changeset(&again, opts);
    assert!(d2.changeset.is_empty(), "second changeset not empty");
    d
}

/// [`check_changeset_with`] with default options.
pub fn check_changeset(a_sql: &str, b_sql: &str) -> engine::Diff {
    check_changeset_with(a_sql, b_sql, &Options::default())
}

/// One change of a changeset, as bytes (operation, flag, records), with its table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RawChange {
    /// The table header's bytes (column count, key positions, name).
    pub table: Vec<u8>,
    /// The change's bytes.
    pub bytes: Vec<u8>,
}

fn read_varint(b: &[u8], at: &mut usize) -> u64 {
    let mut v: u64 = 0;
    for i in 0..9 {
        let byte = b[*at];
        *at += 1;
        if i == 8 {
            return (v << 8) | u64::from(byte);
        }
        v = (v << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return v;
        }
    }
    v
}

fn skip_record(b: &[u8], at: &mut usize, n: usize) {
    for _ in 0..n {
        let t = b[*at];
        *at += 1;
        match t {
            1 | 2 => *at += 8,
            3 | 4 => {
                let len = read_varint(b, at) as usize;
                *at += len;
            }
            0 | 5 => {}
            other => panic!("bad field type {other} at {}", *at - 1),
        }
    }
}

/// Splits a changeset into its changes (a reader written from SQLite's format notes, for
/// comparing two changesets regardless of their order).
pub fn split_changeset(b: &[u8]) -> Vec<RawChange> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut table = Vec::new();
    let mut ncol = 0;
    while at < b.len() {
        if b[at] == b'T' {
            let start = at + 1;
            at += 1;
            ncol = read_varint(b, &mut at) as usize;
            at += ncol;
            while b[at] != 0 {
                at += 1;
            }
            at += 1;
            table = b[start..at].to_vec();
            continue;
        }
        let start = at;
        let op = b[at];
        at += 2;
        let records = match op {
            23 => 2,
            9 | 18 => 1,
            other => panic!("bad operation {other} at {start}"),
        };
        skip_record(b, &mut at, ncol * records);
        out.push(RawChange {
            table: table.clone(),
            bytes: b[start..at].to_vec(),
        });
    }
    out
}
