//! `--changeset`: every changeset is applied with SQLite's session extension
//! (`sqlite3changeset_apply`, through rusqlite) to a copy of A, and the copy must hold B's
//! rows exactly (storage classes, REAL bits, BLOBs, Unicode); what a changeset cannot
//! carry is named in the notes. Our bytes are also compared with `sqldiff --changeset`.

mod common;

use std::process::Command;

use common::{RawChange, changeset, check_changeset, check_changeset_with, pair, split_changeset};
use db_diff::engine::Options;

const T: &str = "CREATE TABLE t(id INTEGER PRIMARY KEY, a, b TEXT, c REAL);";

#[test]
fn inserts_deletes_and_updates_are_applied_by_the_session_extension() {
    let d = check_changeset(
        &format!("{T} INSERT INTO t VALUES(1,'a','x',1.0),(2,'b','y',2.0),(3,'c','z',3.0);"),
        &format!("{T} INSERT INTO t VALUES(1,'a','x',1.0),(2,'B','y',2.5),(4,'d',NULL,NULL);"),
    );
    assert!(d.notes.is_empty(), "{:?}", d.notes);
    let s = &d.tables[0];
    assert_eq!(
        (s.inserts, s.deletes, s.updates),
        (1, 1, 1),
        "{:?}",
        d.tables
    );
}

#[test]
fn an_update_carries_the_key_and_the_changed_columns_only() {
    let p = pair(
        &format!("{T} INSERT INTO t VALUES(7,'a','x',1.0);"),
        &format!("{T} INSERT INTO t VALUES(7,'a','y',1.0);"),
    );
    let d = changeset(&p, &Options::default());
    let mut want = vec![b'T', 4, 1, 0, 0, 0, b't', 0];
    want.extend([23, 0]);
    // old: id=7, a undefined, b='x', c undefined
    want.extend([1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 3, 1, b'x', 0]);
    // new: id undefined, a undefined, b='y', c undefined
    want.extend([0, 0, 3, 1, b'y', 0]);
    assert_eq!(d.changeset, want);
}

#[test]
fn without_rowid_composite_keys_give_their_key_positions() {
    let s = "CREATE TABLE w(v, b INT, a TEXT, PRIMARY KEY(a,b)) WITHOUT ROWID;";
    let d = check_changeset(
        &format!("{s} INSERT INTO w VALUES('p','1','x'),('q',2,'x'),('r',1,'y');"),
        &format!("{s} INSERT INTO w VALUES('p',1,'x'),('Q',2,'x'),('s',1,'z');"),
    );
    // Header: 3 columns, key positions v=0 b=2 a=1 (what sqlite3changeset_apply checks).
    assert_eq!(&d.changeset[..8], &[b'T', 3, 0, 2, 1, b'w', 0, 9][..]);
}

#[test]
fn nulls_reals_bit_for_bit_blobs_and_unicode_survive() {
    let s = "CREATE TABLE v(k INTEGER PRIMARY KEY, x, r REAL, bl BLOB, tx TEXT);";
    check_changeset(
        &format!(
            "{s} INSERT INTO v VALUES(1,1,0.3,x'00',''),(2,NULL,1.0,NULL,'a'),(3,'1',-1.5,x'ff','é');"
        ),
        &format!(
            "{s} INSERT INTO v VALUES(1,1.0,0.1+0.2,zeroblob(70000),'é☃𝄞'),(2,-0.0,5e-324,x'',NULL),(3,x'31',1e308*10,randomblob(300),'it''s\ntwo lines'),(4,-9223372036854775808,-1e308*10,NULL,char(0x10FFFF)),(5,9223372036854775807,2.2250738585072014e-308,x'0001',' ');"
        ),
    );
}

#[test]
fn a_value_that_changes_storage_class_is_a_change() {
    let d = check_changeset(
        "CREATE TABLE s(k INTEGER PRIMARY KEY, v); INSERT INTO s VALUES(1, 1),(2, 2.0),(3, x'31'),(4,'a');",
        "CREATE TABLE s(k INTEGER PRIMARY KEY, v); INSERT INTO s VALUES(1, '1'),(2, 2),(3, '1'),(4,'A');",
    );
    assert_eq!(d.tables[0].updates, 4, "{:?}", d.tables);
}

#[test]
fn collations_do_not_hide_case_changes() {
    check_changeset(
        "CREATE TABLE c(id INTEGER PRIMARY KEY, v TEXT COLLATE NOCASE); INSERT INTO c VALUES(1,'abc');
         CREATE TABLE n(k TEXT COLLATE NOCASE PRIMARY KEY, v) WITHOUT ROWID; INSERT INTO n VALUES('abc', 1);",
        "CREATE TABLE c(id INTEGER PRIMARY KEY, v TEXT COLLATE NOCASE); INSERT INTO c VALUES(1,'ABC');
         CREATE TABLE n(k TEXT COLLATE NOCASE PRIMARY KEY, v) WITHOUT ROWID; INSERT INTO n VALUES('ABC', 1);",
    );
}

#[test]
fn rowid_tables_with_a_declared_key_use_it() {
    check_changeset(
        "CREATE TABLE p(code TEXT PRIMARY KEY, v); INSERT INTO p(rowid,code,v) VALUES(1,'a',1),(2,'b',2);",
        "CREATE TABLE p(code TEXT PRIMARY KEY, v); INSERT INTO p(rowid,code,v) VALUES(7,'b',2),(8,'a',5),(9,'c',3);",
    );
}

#[test]
fn swapping_values_of_a_unique_column_does_not_conflict() {
    check_changeset(
        "CREATE TABLE u(id INTEGER PRIMARY KEY, name TEXT UNIQUE); INSERT INTO u VALUES(1,'a'),(2,'b');",
        "CREATE TABLE u(id INTEGER PRIMARY KEY, name TEXT UNIQUE); INSERT INTO u VALUES(1,'b'),(2,'a');",
    );
}

#[test]
fn generated_columns_are_not_in_the_records() {
    check_changeset(
        "CREATE TABLE g(id INTEGER PRIMARY KEY, a, b AS (a*2), c AS (a+1) STORED); INSERT INTO g(id,a) VALUES(1,1);",
        "CREATE TABLE g(id INTEGER PRIMARY KEY, a, b AS (a*2), c AS (a+1) STORED); INSERT INTO g(id,a) VALUES(1,5),(2,6);",
    );
}

#[test]
fn ignore_column_leaves_the_column_out_of_updates() {
    let opts = Options {
        ignore_columns: vec![("e".into(), "ts".into())],
        ..Options::default()
    };
    let p = pair(
        "CREATE TABLE e(id INTEGER PRIMARY KEY, v, ts); INSERT INTO e VALUES(1,'a','2020'),(2,'b','2020');",
        "CREATE TABLE e(id INTEGER PRIMARY KEY, v, ts); INSERT INTO e VALUES(1,'a','2024'),(2,'B','2024');",
    );
    let d = changeset(&p, &opts);
    assert_eq!(d.tables[0].updates, 1, "{:?}", d.tables);
    assert!(
        !d.changeset.windows(4).any(|w| w == b"2024"),
        "the ignored column is not in the update"
    );
}

#[test]
fn table_limits_the_changeset_to_one_table() {
    let s = "CREATE TABLE x(k INTEGER PRIMARY KEY, v); CREATE TABLE y(k INTEGER PRIMARY KEY, v);";
    let opts = Options {
        table: Some("x".into()),
        ..Options::default()
    };
    let d = check_changeset_with(
        &format!("{s} INSERT INTO x VALUES(1,1); INSERT INTO y VALUES(1,1);"),
        &format!("{s} INSERT INTO x VALUES(1,2); INSERT INTO y VALUES(1,2);"),
        &opts,
    );
    assert!(!d.changeset.windows(2).any(|w| w == b"y\0"), "only x");
}

#[test]
fn fts5_shadow_tables_are_carried() {
    check_changeset(
        "CREATE VIRTUAL TABLE doc USING fts5(body); INSERT INTO doc VALUES('hello world');",
        "CREATE VIRTUAL TABLE doc USING fts5(body); INSERT INTO doc VALUES('hello world'),('second doc');",
    );
}

#[test]
fn equal_databases_give_an_empty_changeset() {
    let sql = format!("{T} INSERT INTO t VALUES(1,'a','b',1.5);");
    let d = changeset(&pair(&sql, &sql), &Options::default());
    assert!(d.changeset.is_empty() && d.notes.is_empty() && !d.differs());
}

#[test]
fn what_a_changeset_cannot_carry_is_named_in_the_notes() {
    let p = pair(
        "CREATE TABLE k(a, b); INSERT INTO k VALUES(1,'x');
         CREATE TABLE n(c TEXT PRIMARY KEY, v); INSERT INTO n VALUES(NULL, 1);
         CREATE TABLE gone(x); CREATE TABLE same(id INTEGER PRIMARY KEY, v);
         CREATE TABLE alt(id INTEGER PRIMARY KEY, v);
         CREATE VIEW vw AS SELECT 1;",
        "CREATE TABLE k(a, b); INSERT INTO k VALUES(1,'x'),(2,'y');
         CREATE TABLE n(c TEXT PRIMARY KEY, v); INSERT INTO n VALUES(NULL, 2);
         CREATE TABLE same(id INTEGER PRIMARY KEY, v); INSERT INTO same VALUES(1,1);
         CREATE TABLE alt(id INTEGER PRIMARY KEY, v, w);
         CREATE TABLE fresh(x); CREATE INDEX ix ON same(v);
         CREATE VIEW vw AS SELECT 2;",
    );
    let d = changeset(&p, &Options::default());
    let notes = d.notes.join("\n");
    for name in [
        "table \"gone\" (dropped)",
        "table \"fresh\" (added)",
        "table \"alt\" (schema changed)",
        "index \"ix\" (added)",
        "view \"vw\" (changed)",
    ] {
        assert!(notes.contains(name), "{name} in:\n{notes}");
    }
    assert!(notes.contains("without one are not in it"), "{notes}");
    assert!(notes.contains(": \"k\""), "no-key table named:\n{notes}");
    assert!(notes.contains("NULL") && notes.contains("\"n\""), "{notes}");
    // The rows the changeset can carry are in it; the summary counts the others too.
    assert_eq!(split_changeset(&d.changeset).len(), 1);
    let k = d.tables.iter().find(|t| t.name == "k").expect("k");
    assert_eq!(k.inserts, 1);
    assert!(d.differs());
}

#[test]
fn triggers_that_would_fire_are_named() {
    let s =
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v); CREATE TABLE log(id INTEGER PRIMARY KEY, x);
             CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log(x) VALUES(new.v); END;";
    let p = pair(s, &format!("{s} INSERT INTO t VALUES(1,'x');"));
    let d = changeset(&p, &Options::default());
    assert!(
        d.notes
            .iter()
            .any(|n| n.contains("fires") && n.contains("\"tr\"")),
        "{:?}",
        d.notes
    );
}

#[test]
fn autoincrement_counters_that_differ_are_named() {
    let p = pair(
        "CREATE TABLE ai(id INTEGER PRIMARY KEY AUTOINCREMENT, v); INSERT INTO ai(v) VALUES('a');",
        "CREATE TABLE ai(id INTEGER PRIMARY KEY AUTOINCREMENT, v); INSERT INTO ai(v) VALUES('a'),('b'); DELETE FROM ai WHERE id=2;",
    );
    let d = changeset(&p, &Options::default());
    assert!(
        d.notes.iter().any(|n| n.contains("sqlite_sequence")),
        "{:?}",
        d.notes
    );
}

/// `sqldiff --changeset` on the same pair: the same changes, byte for byte, in whatever
/// order (sqldiff orders by key, db-diff writes deletes, updates, inserts). Only cases both
/// judge alike: sqldiff's `IS NOT` misses storage-class and collation-only changes.
#[test]
fn the_changes_are_sqldiffs_changes_byte_for_byte() {
    let s = "CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL, d BLOB);
             CREATE TABLE w(k TEXT, g INTEGER, v, PRIMARY KEY(k, g)) WITHOUT ROWID;
             CREATE TABLE r(code TEXT PRIMARY KEY, n);";
    let p = pair(
        &format!(
            "{s} INSERT INTO t VALUES(1,1,'a',0.5,x'01'),(2,2,'b',1.5,NULL),(3,3,'c',NULL,x''),(4,4,'é',2.5,x'ff');
             INSERT INTO w VALUES('a',1,'x'),('a',2,NULL),('b',1,3.25),('c',9,'z');
             INSERT INTO r VALUES('p',1),('q',2);"
        ),
        &format!(
            "{s} INSERT INTO t VALUES(1,1,'a',0.1+0.2,x'01'),(2,20,'b',1.5,x'0203'),(4,4,'é☃',2.5,x'ff'),(5,-5,NULL,1e300,zeroblob(200));
             INSERT INTO w VALUES('a',1,'y'),('a',2,NULL),('b',2,-0.5),('d',1,'𝄞');
             INSERT INTO r VALUES('p',10),('s',3);"
        ),
    );
    let ours = changeset(&p, &Options::default());
    let file = p.dir.path().join("sqldiff.bin");
    let out = Command::new("sqldiff")
        .arg("--changeset")
        .arg(&file)
        .arg(&p.a)
        .arg(&p.b)
        .output()
        .expect("sqldiff (sqlite3-tools; `make test-deps` installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = std::fs::read(&file).expect("sqldiff wrote its changeset");
    let sorted = |b: &[u8]| {
        let mut v: Vec<RawChange> = split_changeset(b);
        v.sort();
        v
    };
    let (mine, sqldiffs) = (sorted(&ours.changeset), sorted(&theirs));
    assert_eq!(mine.len(), 13, "{mine:?}");
    assert_eq!(mine, sqldiffs);
    // And applying sqldiff's reproduces B as applying ours does.
    let copy = common::apply_changeset(&p, &theirs);
    assert_eq!(
        common::contents(&copy, None).rows,
        common::contents(&p.b, None).rows
    );
}

#[test]
fn a_changeset_names_the_settings_it_cannot_carry() {
    let t = "CREATE TABLE t(k INTEGER PRIMARY KEY, v);";
    let p = common::pair(
        &format!("{t} PRAGMA user_version = 1;"),
        &format!("{t} PRAGMA user_version = 2;"),
    );
    let d = common::changeset(&p, &Options::default());
    assert!(d.changeset.is_empty());
    assert!(d.differs());
    assert!(
        d.notes
            .iter()
            .any(|n| n.contains("PRAGMA user_version differs (1 -> 2)")),
        "{:?}",
        d.notes
    );
}
