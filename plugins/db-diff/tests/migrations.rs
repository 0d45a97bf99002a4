//! What real migrations do to a table: add required columns, tighten columns, add CHECK,
//! UNIQUE and FOREIGN KEY constraints, and fill the new columns in. A copy of A's rows into
//! B's definition can trip any of these, so each case is applied with the real
//! `sqlite3 -bail` (in a shell that enforces foreign keys) and must give B exactly.

mod common;

use common::{check, check_with, diff, pair};
use db_diff::engine::{Mode, Options};

/// The migration of issue 19: a new NOT NULL column without a default, which the
/// migration fills in for the existing row.
#[test]
fn a_new_not_null_column_the_migration_fills_applies() {
    let d = check(
        "CREATE TABLE t(id integer NOT NULL PRIMARY KEY AUTOINCREMENT, a varchar(10) NOT NULL); INSERT INTO t(a) VALUES('x');",
        "CREATE TABLE t(id integer NOT NULL PRIMARY KEY AUTOINCREMENT, a varchar(10) NOT NULL, b varchar(20) NOT NULL);  INSERT INTO t(a,b) VALUES('x','');",
    );
    // One fill value for every row: the copy carries it, no row is written.
    assert!(
        d.sql.contains(", '' FROM \"t__roost_old\" AS a;"),
        "{}",
        d.sql
    );
    assert!(
        !d.sql
            .contains("INSERT INTO \"t\"(\"id\",\"a\",\"b\") VALUES"),
        "{}",
        d.sql
    );
}

#[test]
fn a_new_not_null_column_with_a_value_per_row_applies() {
    let d = check(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT NOT NULL); INSERT INTO t(a) VALUES('x'),('y'),('z'),('w');",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT NOT NULL, b TEXT NOT NULL); INSERT INTO t(id,a,b) VALUES(1,'x','one'),(2,'y','two'),(3,'z','two'),(5,'v','five');",
    );
    // Rows holding the common fill are copied; the others are deleted before the copy
    // and inserted with B's values after it.
    assert!(
        d.sql.contains(", 'two' FROM \"t__roost_old\" AS a;"),
        "{}",
        d.sql
    );
    assert!(d.sql.contains("VALUES(1,'x','one')"), "{}", d.sql);
}

#[test]
fn a_new_not_null_column_of_a_keyless_table_applies() {
    check(
        "CREATE TABLE t(a TEXT); INSERT INTO t VALUES('x'),('x'),('y');",
        "CREATE TABLE t(a TEXT, b INT NOT NULL); INSERT INTO t VALUES('x',1),('x',2),('y',1);",
    );
}

#[test]
fn a_column_that_becomes_not_null_applies_when_the_migration_fills_its_nulls() {
    check(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT); INSERT INTO t VALUES(1,'x'),(2,NULL),(3,NULL);",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT NOT NULL); INSERT INTO t VALUES(1,'x'),(2,''),(3,'z');",
    );
}

#[test]
fn a_new_column_whose_check_rejects_null_applies() {
    check(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a); INSERT INTO t VALUES(1,'x'),(2,'y');",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a, n INT CHECK (n IS NOT NULL AND n > 0)); INSERT INTO t VALUES(1,'x',1),(2,'y',2);",
    );
}

#[test]
fn a_table_check_that_a_rows_violate_applies_when_b_fixed_them() {
    check(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, lo INT, hi INT); INSERT INTO t VALUES(1,1,2),(2,5,3),(3,0,0);",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, lo INT, hi INT, CHECK (lo < hi)); INSERT INTO t VALUES(1,1,2),(2,3,5),(3,0,1);",
    );
}

/// A new UNIQUE column with a constant default: a copy that lets the default fill it
/// gives every row the same value.
#[test]
fn a_new_unique_column_with_a_default_applies() {
    check(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a); INSERT INTO t VALUES(1,'x'),(2,'y'),(3,'z');",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a, u INT NOT NULL DEFAULT 0 UNIQUE); INSERT INTO t VALUES(1,'x',0),(2,'y',7),(3,'z',8);",
    );
}

/// A column that becomes UNIQUE where A holds duplicates that the migration resolved.
#[test]
fn a_column_that_becomes_unique_applies_when_the_migration_resolved_duplicates() {
    check(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, email TEXT); INSERT INTO t VALUES(1,'a@x'),(2,'a@x'),(3,'b@x');",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, email TEXT UNIQUE); INSERT INTO t VALUES(1,'a@x'),(2,'a2@x'),(3,'b@x');",
    );
}

/// UNIQUE over an old and a new column: copying A's old column with B's new one would
/// pair values B never pairs.
#[test]
fn a_unique_constraint_over_an_old_and_a_new_column_applies() {
    check(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT); INSERT INTO t VALUES(1,'x'),(2,'x'),(3,'y');",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, n INT NOT NULL, UNIQUE(a, n)); INSERT INTO t VALUES(1,'x',1),(2,'z',1),(3,'y',1);",
    );
}

/// A new required reference to a new parent table, applied in a shell that enforces
/// foreign keys: the output turns enforcement off before it starts, and the result holds
/// B's references.
#[test]
fn a_new_foreign_key_to_a_new_table_applies_with_foreign_keys_on() {
    check(
        "CREATE TABLE child(id INTEGER PRIMARY KEY, v); INSERT INTO child VALUES(1,'a'),(2,'b');",
        "CREATE TABLE child(id INTEGER PRIMARY KEY, v, p INTEGER NOT NULL REFERENCES parent(id)); CREATE TABLE parent(id INTEGER PRIMARY KEY, name); INSERT INTO parent VALUES(10,'p'),(11,'q'); INSERT INTO child VALUES(1,'a',10),(2,'b',11),(3,'c',10);",
    );
}

/// A new column whose default SQLite computes (a timestamp): the copy writes B's values,
/// never a fresh timestamp.
#[test]
fn a_new_column_with_a_computed_default_gets_bs_values() {
    check(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a); INSERT INTO t VALUES(1,'x'),(2,'y'),(3,'z');",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a, at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP); INSERT INTO t VALUES(1,'x','2020-01-01 00:00:00'),(2,'y','2020-01-01 00:00:00'),(3,'z','2021-05-05 00:00:00');",
    );
}

/// A table that becomes STRICT: values of the wrong type in A were fixed by the migration.
#[test]
fn a_table_that_becomes_strict_applies() {
    check(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, n INT); INSERT INTO t VALUES(1,1),(2,'two'),(3,3);",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, n INT) STRICT; INSERT INTO t VALUES(1,1),(2,2),(3,3);",
    );
}

/// With `--primarykey` and without a key, a rebuilt table's rows still apply.
#[test]
fn a_rebuilt_table_applies_under_every_row_matching() {
    let a = "CREATE TABLE t(k TEXT PRIMARY KEY, a TEXT); INSERT INTO t VALUES('p','x'),('q',NULL),('r','y');";
    let b = "CREATE TABLE t(k TEXT PRIMARY KEY, a TEXT NOT NULL, n INT NOT NULL UNIQUE); INSERT INTO t VALUES('p','x',1),('q','',2),('s','y',3);";
    check(a, b);
    check_with(
        a,
        b,
        &Options {
            primary_key: true,
            ..Options::default()
        },
    );
}

/// 60 rows; the migration changes 21, adds 25 and deletes 3 while the table's definition
/// changes: the counts say what happened to the rows, not how the table is rebuilt.
#[test]
fn summary_counts_rows_by_key_across_a_rebuild() {
    let mut a = String::from("CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, n INT);");
    let mut b = String::from("CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT NOT NULL, n INT);");
    for i in 1..=60 {
        a.push_str(&format!("INSERT INTO t VALUES({i},'v{i}',{i});"));
        match i {
            1..=3 => {}
            4..=24 => b.push_str(&format!("INSERT INTO t VALUES({i},'v{i}',{});", i + 1000)),
            _ => b.push_str(&format!("INSERT INTO t VALUES({i},'v{i}',{i});")),
        }
    }
    for i in 100..125 {
        b.push_str(&format!("INSERT INTO t VALUES({i},'new',0);"));
    }
    let want = "t: 21 changes, 25 inserts, 3 deletes, 36 unchanged (schema changed)\n";
    let p = pair(&a, &b);
    let counts = diff(
        &p,
        &Options {
            mode: Mode::Counts,
            ..Options::default()
        },
    );
    assert_eq!(counts.summary(), want);
    // The SQL output counts the same rows (it has no "unchanged").
    let d = check(&a, &b);
    assert_eq!(
        d.short_summary(),
        "t: schema changed, 21 changes, 25 inserts, 3 deletes"
    );
}

/// sqldiff lists `sqlite_sequence` as a table; db-diff does too, matching its rows by
/// table name.
#[test]
fn summary_lists_sqlite_sequence_as_a_table() {
    let p = pair(
        "CREATE TABLE ai(id INTEGER PRIMARY KEY AUTOINCREMENT, v); INSERT INTO ai(v) VALUES('a'); CREATE TABLE z(id INTEGER PRIMARY KEY AUTOINCREMENT); INSERT INTO z DEFAULT VALUES; CREATE TABLE w(id INTEGER PRIMARY KEY AUTOINCREMENT); INSERT INTO w DEFAULT VALUES;",
        "CREATE TABLE ai(id INTEGER PRIMARY KEY AUTOINCREMENT, v); INSERT INTO ai(v) VALUES('a'),('b'); DELETE FROM ai WHERE v = 'b'; CREATE TABLE y(id INTEGER PRIMARY KEY AUTOINCREMENT); INSERT INTO y DEFAULT VALUES; CREATE TABLE w(id INTEGER PRIMARY KEY AUTOINCREMENT); INSERT INTO w DEFAULT VALUES;",
    );
    let d = diff(
        &p,
        &Options {
            mode: Mode::Counts,
            ..Options::default()
        },
    );
    let summary = d.summary();
    assert!(
        summary.contains("sqlite_sequence: 1 changes, 1 inserts, 1 deletes, 1 unchanged\n"),
        "{summary}"
    );
}

/// Inside the output's transaction, a statement that fails after a rebuild (here an
/// INSERT whose row the target already holds) leaves the target exactly as it was.
#[test]
fn a_failing_apply_leaves_the_target_unchanged() {
    let p = pair(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT); INSERT INTO t VALUES(1,'x'),(2,'y'); CREATE TABLE u(id INTEGER PRIMARY KEY); INSERT INTO u VALUES(1);",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, b TEXT NOT NULL); INSERT INTO t VALUES(1,'x','b'),(2,'Y','b'); CREATE TABLE u(id INTEGER PRIMARY KEY); INSERT INTO u VALUES(1),(5);",
    );
    let d = diff(
        &p,
        &Options {
            transaction: true,
            ..Options::default()
        },
    );
    let target = p.dir.path().join("target.db");
    std::fs::copy(&p.a, &target).expect("copy");
    rusqlite::Connection::open(&target)
        .and_then(|c| c.execute_batch("INSERT INTO u VALUES(5);"))
        .expect("the row in the way");
    let before = common::contents(&target, None);
    let (ok, stderr) = common::try_apply(&target, &d.sql);
    assert!(!ok && stderr.contains("UNIQUE"), "{stderr}\n{}", d.sql);
    assert_eq!(common::contents(&target, None), before, "{}", d.sql);
}

/// B's key in a rebuild need not be a key of A's: here A's column folds case, so a
/// DELETE by `k='x'` in A's renamed table would take `'X'` with it. The deletes before
/// the copy match exactly (and an index on the key serves them).
#[test]
fn a_rebuild_deletes_exactly_the_rows_it_means_when_as_column_folds_case() {
    let d = check(
        "CREATE TABLE t(k TEXT COLLATE NOCASE NOT NULL, v); INSERT INTO t VALUES('x',1),('X',2),('y',3);",
        "CREATE TABLE t(k TEXT PRIMARY KEY, v) WITHOUT ROWID; INSERT INTO t VALUES('x',10),('X',2),('y',3);",
    );
    assert!(
        d.sql
            .contains("CREATE INDEX \"t__roost_old_key\" ON \"t__roost_old\"(\"k\");"),
        "{}",
        d.sql
    );
}

/// A keyless table whose rows nearly all change in a rebuild is reloaded: a DELETE per
/// group would scan A's table once per group. The summary still counts the groups.
#[test]
fn a_rebuilt_keyless_table_with_many_changed_groups_is_reloaded() {
    let mut a = String::from("CREATE TABLE t(a TEXT);");
    let mut b = String::from("CREATE TABLE t(a TEXT, n INT NOT NULL);");
    for i in 0..150 {
        a.push_str(&format!("INSERT INTO t VALUES('r{i}');"));
        b.push_str(&format!("INSERT INTO t VALUES('r{i}', {i});"));
    }
    let d = check(&a, &b);
    assert!(
        d.sql.contains("DELETE FROM \"t__roost_old\";\n"),
        "{}",
        d.sql
    );
    assert!(
        !d.sql.contains("DELETE FROM \"t__roost_old\" AS a"),
        "{}",
        d.sql
    );
    assert_eq!(
        d.short_summary(),
        "t: schema changed, 149 inserts, 149 deletes"
    );
}
