//! db-diff driven the way a user drives it: `roost invoke db-diff diff A B` from the shell
//! (the output applied with the real `sqlite3` shell must turn A into B), and `!dbdiff` in
//! chat on databases the config names and grants.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use roost_tests::{Daemon, roost_in, starter_dir};

fn make_db(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).expect("create db");
    conn.execute_batch(sql).expect("fill db");
}

/// Applies `sql` to a copy of `a` with `sqlite3 -bail`, in a shell that enforces foreign
/// keys (as a user's `~/.sqliterc` may make it); the copy's path.
fn apply(a: &Path, sql: &str) -> PathBuf {
    let copy = a.with_extension("applied.db");
    std::fs::copy(a, &copy).expect("copy");
    let mut child = Command::new("sqlite3")
        .arg("-bail")
        .args(["-cmd", "PRAGMA foreign_keys=ON"])
        .arg(&copy)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sqlite3 shell (make test installs it)");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(sql.as_bytes())
        .expect("write sql");
    let out = child.wait_with_output().expect("sqlite3");
    assert!(
        out.status.success(),
        "sqlite3 failed: {}\n{sql}",
        String::from_utf8_lossy(&out.stderr)
    );
    copy
}

/// Everything that makes two databases equal: the SQL of every schema object, and every
/// row of every table with its storage class and exact value (REAL as its bits).
fn contents(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).expect("open");
    let mut out = Vec::new();
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")
        .expect("schema");
    let schema: Vec<(String, String, String, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    for (kind, name, table, sql) in &schema {
        out.push(format!("{kind} {name} on {table}: {sql:?}"));
        if kind != "table" {
            continue;
        }
        let mut rows = conn
            .prepare(&format!("SELECT * FROM \"{name}\" ORDER BY 1, 2"))
            .expect("rows");
        let width = rows.column_count();
        let mut all: Vec<String> = rows
            .query_map([], |r| {
                let mut cells = Vec::new();
                for i in 0..width {
                    cells.push(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Real(f) => format!("real:{:x}", f.to_bits()),
                        other => format!("{other:?}"),
                    });
                }
                Ok(cells.join("|"))
            })
            .expect("query")
            .map(|r| r.expect("row"))
            .collect();
        all.sort();
        out.extend(all.into_iter().map(|r| format!("  {name}: {r}")));
    }
    out
}

const A: &str = "
CREATE TABLE t(id INTEGER PRIMARY KEY, v REAL, s TEXT);
INSERT INTO t VALUES (1, 0.1, 'x'), (2, 2.5, 'y'), (4, -1.0, 'gone');
CREATE TABLE keyless(a, b);
INSERT INTO keyless VALUES (1, 'one'), (1, 'one'), (2, 'two');
CREATE VIEW v1 AS SELECT id FROM t;
CREATE INDEX t_s ON t(s);
";

const B: &str = "
CREATE TABLE t(id INTEGER PRIMARY KEY, v REAL, s TEXT, c INT DEFAULT 5);
INSERT INTO t VALUES (1, 0.1 + 0.2, 'it''s
two lines', 5), (2, 2.5, 'y', 5), (3, 1e300, 'new', 7);
CREATE TABLE keyless(a, b);
INSERT INTO keyless VALUES (1, 'one'), (2, 'two'), (3, x'00ff');
CREATE VIEW v1 AS SELECT id, s FROM t;
CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN SELECT 1; END;
CREATE TABLE added(k TEXT PRIMARY KEY, n) WITHOUT ROWID;
INSERT INTO added VALUES ('a', 1);
";

#[test]
fn invoke_prints_sql_that_turns_a_into_b_with_the_sqlite3_shell() {
    let dir = starter_dir();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    make_db(&a, A);
    make_db(&b, B);
    let out = roost_in(dir.path(), &["invoke", "db-diff", "diff", "a.db", "b.db"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sql = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        sql.contains("CREATE TRIGGER"),
        "triggers are diffed:\n{sql}"
    );
    let copy = apply(&a, &sql);
    assert_eq!(contents(&copy), contents(&b), "applied diff:\n{sql}");

    // And the diff of the result against B is empty.
    let copy_name = copy
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    let again = roost_in(
        dir.path(),
        &["invoke", "db-diff", "diff", &copy_name, "b.db"],
    );
    assert!(again.status.success());
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), "");
}

/// Applies the changeset file `cs` to a copy of `a` with SQLite's session extension: the
/// system libsqlite3's `sqlite3changeset_apply` (an SQLite other than the one db-diff ran
/// on), called through python3's ctypes. Any conflict fails. Returns the copy's path.
fn apply_changeset(a: &Path, cs: &Path) -> PathBuf {
    const APPLY: &str = r#"
import ctypes, ctypes.util, sys
lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
db = ctypes.c_void_p()
if lib.sqlite3_open(sys.argv[1].encode(), ctypes.byref(db)) != 0:
    sys.exit("cannot open " + sys.argv[1])
data = open(sys.argv[2], "rb").read()
CONFLICT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
conflicts = []
def on_conflict(ctx, kind, it):
    conflicts.append(kind)
    return 2  # SQLITE_CHANGESET_ABORT
handler = CONFLICT(on_conflict)
lib.sqlite3changeset_apply.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p,
                                       ctypes.c_void_p, CONFLICT, ctypes.c_void_p]
rc = lib.sqlite3changeset_apply(db, len(data), data, None, handler, None)
lib.sqlite3_close(db)
if rc != 0 or conflicts:
    sys.exit("sqlite3changeset_apply: rc=%d, conflicts=%r" % (rc, conflicts))
"#;
    let copy = a.with_extension("changeset-applied.db");
    std::fs::copy(a, &copy).expect("copy");
    let out = Command::new("python3")
        .arg("-c")
        .arg(APPLY)
        .arg(&copy)
        .arg(cs)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    copy
}

const CS_A: &str = "
CREATE TABLE t(id INTEGER PRIMARY KEY, v REAL, s TEXT, b BLOB);
INSERT INTO t VALUES (1, 0.1, 'x', x'00'), (2, 2.5, 'y', NULL), (4, -1.0, 'gone', x'ff');
CREATE TABLE w(k TEXT, n INTEGER, v, PRIMARY KEY (k, n)) WITHOUT ROWID;
INSERT INTO w VALUES ('a', 1, 'one'), ('a', 2, 2), ('b', 1, NULL);
CREATE TABLE keyless(a, b);
INSERT INTO keyless VALUES (1, 'one');
";

const CS_B: &str = "
CREATE TABLE t(id INTEGER PRIMARY KEY, v REAL, s TEXT, b BLOB);
INSERT INTO t VALUES (1, 0.1 + 0.2, 'it''s
two lines', x'00'), (2, 2.5, 'y', zeroblob(3000)), (3, 1e300, 'é☃', NULL);
CREATE TABLE w(k TEXT, n INTEGER, v, PRIMARY KEY (k, n)) WITHOUT ROWID;
INSERT INTO w VALUES ('a', 1, 'ONE'), ('a', 2, 2.0), ('c', 1, x'31');
CREATE TABLE keyless(a, b);
INSERT INTO keyless VALUES (1, 'one'), (2, 'two');
";

#[test]
fn invoke_writes_a_changeset_that_sqlites_session_extension_applies() {
    let dir = starter_dir();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    make_db(&a, CS_A);
    make_db(&b, CS_B);
    let out = roost_in(
        dir.path(),
        &[
            "invoke",
            "db-diff",
            "diff",
            "a.db",
            "b.db",
            "--changeset",
            "out.bin",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "nothing on stdout"
    );
    assert!(
        stderr.contains("without one are not in it") && stderr.contains("\"keyless\""),
        "the table left out is named on stderr: {stderr}"
    );
    assert!(
        stderr.lines().all(|l| l.starts_with("note: ")),
        "the notes are plain lines, not log records: {stderr}"
    );
    let cs = dir.path().join("out.bin");
    let bytes = std::fs::read(&cs).expect("invoke wrote out.bin");
    assert_eq!(
        bytes.first(),
        Some(&b'T'),
        "a changeset starts with a table header"
    );
    let copy = apply_changeset(&a, &cs);
    let carried = |path: &Path| -> Vec<String> {
        contents(path)
            .into_iter()
            .filter(|l| !l.contains("keyless"))
            .collect()
    };
    assert_eq!(carried(&copy), carried(&b));
    assert_ne!(contents(&copy), contents(&b), "keyless was left out");
}

#[test]
fn summary_and_exit_code_options_work_from_the_shell() {
    let dir = starter_dir();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    make_db(&a, A);
    make_db(&b, B);
    let out = roost_in(
        dir.path(),
        &["invoke", "db-diff", "diff", "a.db", "b.db", "--summary"],
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("t: 1 changes, 1 inserts, 1 deletes"),
        "{summary}"
    );
    let out = roost_in(
        dir.path(),
        &["invoke", "db-diff", "diff", "a.db", "b.db", "--exit-code"],
    );
    assert_eq!(out.status.code(), Some(1), "they differ");
    let out = roost_in(
        dir.path(),
        &["invoke", "db-diff", "diff", "b.db", "b.db", "--exit-code"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "equal databases print nothing"
    );
}

#[test]
fn a_missing_file_or_a_non_database_is_a_one_line_error() {
    let dir = starter_dir();
    make_db(&dir.path().join("a.db"), A);
    std::fs::write(
        dir.path().join("junk.db"),
        "not a database at all, just text",
    )
    .expect("write");
    for other in ["missing.db", "junk.db"] {
        let out = roost_in(dir.path(), &["invoke", "db-diff", "diff", "a.db", other]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(other), "names the file: {err}");
    }
}

#[test]
fn chat_diffs_configured_databases_and_refuses_ungranted_files() {
    let d = Daemon::start("");
    let dbs = d.dir().join("dbs");
    std::fs::create_dir_all(&dbs).expect("mkdir");
    make_db(&dbs.join("prod.db"), A);
    make_db(&dbs.join("staging.db"), B);
    let secret = d.dir().join("secret.db");
    make_db(&secret, A);
    d.rewrite_config(&format!(
        "[plugins.db-diff.grants]\nsqlite_read = [\"dbs\"]\n\
         [plugins.db-diff.config.databases]\nprod = \"{0}/prod.db\"\nstaging = \"{0}/staging.db\"\n",
        dbs.display()
    ));
    let reply = d.chat_until("!dbdiff prod staging --summary", |r| {
        !r.contains("unknown command")
    });
    assert!(
        reply.contains("t: 1 changes, 1 inserts, 1 deletes"),
        "{reply}"
    );
    // A changeset goes out as an attached file, with what it leaves out named.
    make_db(&dbs.join("cs_a.db"), CS_A);
    make_db(&dbs.join("cs_b.db"), CS_B);
    let reply = d.chat(&format!(
        "!dbdiff {0}/cs_a.db {0}/cs_b.db --changeset /tmp/x/changes.bin",
        dbs.display()
    ));
    assert!(
        reply.contains("changeset changes.bin: ")
            && reply.contains("[attachment changes.bin, ")
            && reply.contains("\"keyless\""),
        "{reply}"
    );
    // A mistyped name is answered with the names that exist.
    let typo = d.chat("!dbdiff prd staging");
    assert!(
        typo.contains("`prd` is not a configured database name; configured: prod, staging"),
        "{typo}"
    );
    let denied = d.chat(&format!("!dbdiff prod {}", secret.display()));
    assert!(denied.contains("not granted"), "{denied}");
    let traversal = d.chat(&format!("!dbdiff prod {}/../secret.db", dbs.display()));
    assert!(traversal.contains("not granted"), "{traversal}");
}

/// Config for db-diff over `<daemon dir>/dbs/prod.db` with snapshots in `<daemon dir>/snaps`.
fn snapshot_config(d: &Daemon, watch: &str) -> String {
    let dir = d.dir().display().to_string();
    format!(
        "[plugins.db-diff.grants]\nsqlite_read = [\"dbs\", \"snaps\"]\nsqlite_write = [\"snaps\"]\n\
         channels = [\"announce\"]\n\
         [plugins.db-diff.config]\nsnapshot_dir = \"{dir}/snaps\"\nchannel = \"announce\"\n\
         [plugins.db-diff.config.databases]\nprod = \"{dir}/dbs/prod.db\"\n{watch}"
    )
}

fn prod_db(d: &Daemon) -> PathBuf {
    for sub in ["dbs", "snaps"] {
        std::fs::create_dir_all(d.dir().join(sub)).expect("mkdir");
    }
    let prod = d.dir().join("dbs/prod.db");
    make_db(&prod, A);
    prod
}

#[test]
fn a_snapshot_keeps_a_copy_to_diff_against_later() {
    let d = Daemon::start("");
    let prod = prod_db(&d);
    d.rewrite_config(&snapshot_config(&d, ""));
    let taken = d.chat_until("!dbdiff snapshot prod", |r| !r.contains("unknown command"));
    assert!(taken.contains("snapshot of prod taken"), "{taken}");
    assert!(d.dir().join("snaps/prod.snapshot.db").is_file());
    make_db(
        &prod,
        "INSERT INTO t VALUES (10, 1.0, 'after the snapshot');",
    );
    let summary = d.chat("!dbdiff prod@snapshot prod --summary");
    assert!(
        summary.contains("t: 0 changes, 1 inserts, 0 deletes"),
        "{summary}"
    );
    let sql = d.chat("!dbdiff prod@snapshot prod");
    assert!(sql.contains("after the snapshot"), "{sql}");
}

#[test]
fn a_watched_database_posts_its_changes_to_the_channel() {
    let d = Daemon::start("");
    let prod = prod_db(&d);
    d.rewrite_config(&snapshot_config(
        &d,
        "[plugins.db-diff.config.watch]\nprod = 1\n",
    ));
    // The first tick only takes the snapshot to compare against.
    d.chat_until("!dbdiff snapshot prod", |r| {
        r.contains("snapshot of prod taken")
    });
    make_db(&prod, "DELETE FROM t WHERE id = 2;");
    let post = d.wait_for_post("prod changed since");
    assert!(post.contains("1 deletes"), "{post}");
}

/// Applies `sql` to `db` in place with `sqlite3 -bail`; whether every statement succeeded.
fn apply_in_place(db: &Path, sql: &str) -> bool {
    let mut child = Command::new("sqlite3")
        .arg("-bail")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sqlite3 shell");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(sql.as_bytes())
        .expect("write sql");
    child.wait().expect("sqlite3").success()
}

/// `roost invoke db-diff diff a.db b.db EXTRA…` in `dir`; its output (the run must succeed).
fn diff_a_b(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["invoke", "db-diff", "diff", "a.db", "b.db"];
    args.extend(extra);
    let out = roost_in(dir, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_sql_is_one_transaction_so_a_failing_statement_leaves_the_copy_as_it_was() {
    let dir = starter_dir();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    make_db(&a, A);
    make_db(&b, B);
    let diff = |extra: &[&str]| diff_a_b(dir.path(), extra);
    let sql = diff(&[]);
    assert!(
        sql.contains("BEGIN TRANSACTION;") && sql.trim_end().ends_with("COMMIT;"),
        "{sql}"
    );
    assert_eq!(contents(&apply(&a, &sql)), contents(&b));
    // A copy that already holds a row the diff inserts: the INSERT fails half-way.
    let trap = |name: &str| {
        let copy = dir.path().join(name);
        std::fs::copy(&a, &copy).expect("copy");
        rusqlite::Connection::open(&copy)
            .and_then(|c| c.execute_batch("INSERT INTO t(id, v, s) VALUES (3, 0, 'in the way')"))
            .expect("trap row");
        let before = contents(&copy);
        (copy, before)
    };
    let (copy, before) = trap("wrapped.db");
    assert!(!apply_in_place(&copy, &sql), "the INSERT of id 3 must fail");
    assert_eq!(contents(&copy), before, "rolled back: nothing half-done");
    let unwrapped = diff(&["--no-transaction"]);
    assert!(!unwrapped.contains("BEGIN TRANSACTION"), "{unwrapped}");
    let (copy, before) = trap("unwrapped.db");
    assert!(!apply_in_place(&copy, &unwrapped));
    assert_ne!(
        contents(&copy),
        before,
        "without it the copy is half-migrated"
    );
}

#[test]
fn usage_errors_from_the_shell_name_the_command_as_typed_there() {
    let dir = starter_dir();
    make_db(&dir.path().join("a.db"), A);
    let host = roost_in(dir.path(), &["invoke", "db-diff", "diff", "a.db"]);
    let host = String::from_utf8_lossy(&host.stderr).into_owned();
    assert!(
        host.contains("usage: roost invoke db-diff diff <A> <B>"),
        "{host}"
    );
    let plugin = roost_in(
        dir.path(),
        &["invoke", "db-diff", "diff", "a.db", "a.db", "x"],
    );
    let plugin = String::from_utf8_lossy(&plugin.stderr).into_owned();
    assert!(plugin.contains("usage: diff <A> <B>"), "{plugin}");
    assert!(
        !host.contains('!') && !plugin.contains('!'),
        "{host}{plugin}"
    );
}

/// The README's git diff driver recipe with the real binary and the starter config, which
/// grants db-diff nothing: `roost invoke` lets it read the two files git names.
#[test]
fn the_git_diff_driver_needs_no_grant() {
    let dir = starter_dir();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).expect("repo");
    let driver =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/db-diff/git-diff-driver.sh");
    let roost = roost_tests::roost_bin();
    let config = dir.path().join("config/roost.toml");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir.path())
            .env("ROOST", &roost)
            .env("ROOST_CONFIG", &config)
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    git(&["init", "-q"]);
    git(&["config", "user.email", "t@example.org"]);
    git(&["config", "user.name", "t"]);
    git(&[
        "config",
        "diff.sqlite.command",
        &driver.display().to_string(),
    ]);
    std::fs::write(repo.join(".gitattributes"), "*.db diff=sqlite\n").expect("attributes");
    make_db(&repo.join("x.db"), A);
    git(&["add", "."]);
    git(&["commit", "-qm", "a"]);
    std::fs::remove_file(repo.join("x.db")).expect("rm");
    make_db(&repo.join("x.db"), B);
    let shown = git(&["diff"]);
    assert!(
        shown.contains("-- db-diff: x.db") && shown.contains("CREATE TRIGGER"),
        "{shown}"
    );
}

/// A pragma of the database at `path`, read back by the `sqlite3` shell.
fn shell_pragma(path: &Path, pragma: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(path)
        .arg(format!("PRAGMA {pragma};"))
        .output()
        .expect("sqlite3 shell");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A migration framework's schema version lives in `PRAGMA user_version`: the SQL sets it
/// (inside its transaction), and `--summary` says so.
#[test]
fn the_sql_sets_user_version_and_application_id() {
    let dir = starter_dir();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    make_db(&a, "CREATE TABLE t(a, b); PRAGMA user_version = 3;");
    make_db(
        &b,
        "CREATE TABLE t(a, b); CREATE INDEX ta ON t(a); PRAGMA user_version = 4; PRAGMA application_id = 42;",
    );
    let out = roost_in(dir.path(), &["invoke", "db-diff", "diff", "a.db", "b.db"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sql = String::from_utf8_lossy(&out.stdout).into_owned();
    let copy = apply(&a, &sql);
    assert_eq!(shell_pragma(&copy, "user_version"), "4", "{sql}");
    assert_eq!(shell_pragma(&copy, "application_id"), "42", "{sql}");
    assert_eq!(contents(&copy), contents(&b), "applied diff:\n{sql}");
    let out = roost_in(
        dir.path(),
        &["invoke", "db-diff", "diff", "a.db", "b.db", "--summary"],
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("pragma user_version: 3 -> 4"), "{summary}");
}

/// `SELECT hex(s), typeof(s) FROM t ORDER BY id` at `path`, by the `sqlite3` shell.
fn shell_hex(path: &Path) -> String {
    let out = Command::new("sqlite3")
        .arg(path)
        .arg("SELECT id, hex(s), typeof(s) FROM t ORDER BY id;")
        .output()
        .expect("sqlite3 shell");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// TEXT that is not valid UTF-8 crosses the host's `sqlite` capability as its bytes, and
/// the SQL writes it back exactly (`CAST(X'…' AS TEXT)`), not as U+FFFD.
#[test]
fn text_that_is_not_valid_utf8_is_diffed_exactly() {
    let dir = starter_dir();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let t = "CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT);";
    make_db(
        &a,
        &format!("{t} INSERT INTO t VALUES (1, CAST(X'FF00' AS TEXT)), (2, 'x');"),
    );
    make_db(
        &b,
        &format!("{t} INSERT INTO t VALUES (1, CAST(X'FF01' AS TEXT)), (2, 'x');"),
    );
    let out = roost_in(dir.path(), &["invoke", "db-diff", "diff", "a.db", "b.db"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sql = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(sql.contains("CAST(X'FF01' AS TEXT)"), "{sql}");
    let copy = apply(&a, &sql);
    assert_eq!(shell_hex(&copy), shell_hex(&b), "applied diff:\n{sql}");
    assert_eq!(shell_hex(&copy), "1|FF01|text\n2|78|text");
}

/// Issue 19: a real migration. It adds a required column that it fills in, a required
/// reference to a new table, and changes rows. The SQL applies with the sqlite3 shell
/// (the copy it used to make tripped `NOT NULL constraint failed`), `--summary` counts
/// the rows by key across the rebuild and lists `sqlite_sequence`, and an apply that fails
/// after the rebuild leaves the target as it was.
#[test]
fn a_migration_adding_required_columns_applies_and_its_summary_counts_rows_by_key() {
    let dir = starter_dir();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let log =
        "CREATE TABLE log(id INTEGER PRIMARY KEY, note TEXT); INSERT INTO log VALUES (1, 'one');";
    let mut a_sql = format!(
        "{log} CREATE TABLE t(id integer NOT NULL PRIMARY KEY AUTOINCREMENT, a varchar(10) NOT NULL);",
    );
    let mut b_sql = format!(
        "{log} INSERT INTO log VALUES (2, 'two');
         CREATE TABLE kind(id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO kind VALUES (1, 'plain'), (2, 'fancy');
         CREATE TABLE t(id integer NOT NULL PRIMARY KEY AUTOINCREMENT, a varchar(10) NOT NULL,
           b varchar(20) NOT NULL, kind INTEGER NOT NULL REFERENCES kind(id));",
    );
    for i in 1..=60 {
        a_sql.push_str(&format!("INSERT INTO t(id, a) VALUES ({i}, 'v{i}');"));
        let a_value = if (4..=24).contains(&i) {
            "changed"
        } else {
            "v"
        };
        if i > 3 {
            b_sql.push_str(&format!(
                "INSERT INTO t VALUES ({i}, '{a_value}{i}', '', 1);"
            ));
        }
    }
    for i in 100..125 {
        b_sql.push_str(&format!("INSERT INTO t VALUES ({i}, 'new', 'x', 2);"));
    }
    make_db(&a, &a_sql);
    make_db(&b, &b_sql);
    let invoke = |extra: &[&str]| diff_a_b(dir.path(), extra);
    let sql = invoke(&[]);
    assert_eq!(
        contents(&apply(&a, &sql)),
        contents(&b),
        "applied diff:\n{sql}"
    );

    let summary = invoke(&["--summary"]);
    assert!(
        summary.contains("t: 21 changes, 25 inserts, 3 deletes, 36 unchanged (schema changed)\n"),
        "{summary}"
    );
    assert!(
        summary.contains("sqlite_sequence: 1 changes, 0 inserts, 0 deletes, 0 unchanged\n"),
        "{summary}"
    );

    // A target that already holds the row the diff inserts into `log`, after the rebuild
    // of `t`: the INSERT fails and everything before it is rolled back.
    let target = dir.path().join("target.db");
    std::fs::copy(&a, &target).expect("copy");
    rusqlite::Connection::open(&target)
        .and_then(|c| c.execute_batch("INSERT INTO log VALUES (2, 'in the way');"))
        .expect("trap");
    let before = contents(&target);
    let rebuild = sql.find("RENAME TO").expect("t is rebuilt");
    let insert = sql.find("INSERT INTO \"log\"").expect("log gets a row");
    assert!(rebuild < insert, "{sql}");
    assert!(
        !apply_in_place(&target, &sql),
        "the INSERT of log 2 must fail"
    );
    assert_eq!(contents(&target), before, "rolled back: nothing half-done");
}
