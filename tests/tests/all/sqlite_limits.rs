//! The SQLite capability under attack from the `faulty` plugin, which holds a read grant on
//! `dbs/`: it must not keep the owner's database locked (transactions, parked or dropped
//! cursors) nor make the host hold memory past the plugin's own budget (huge rows, leaked
//! cursors). The owner is this test, writing with rusqlite as any other program would.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use roost_tests::{Daemon, FAULTY_WASM};

/// The faulty plugin granted `dbs/` read-only, with `limits` added to its limits table.
fn daemon(limits: &str) -> Daemon {
    Daemon::start_with_plugins(
        &format!(
            "[plugins.faulty.grants]\nsqlite_read = [\"dbs\"]\n\
             [plugins.faulty.limits]\ncall_timeout_ms = 10000\n{limits}"
        ),
        &[("faulty", FAULTY_WASM)],
    )
}

/// `dbs/owner.db` in the daemon's directory: table `t` with three rows, in SQLite's default
/// rollback-journal mode, where a reader's lock blocks a writer's commit.
fn owner_db(d: &Daemon) -> PathBuf {
    let dir = d.dir().join("dbs");
    std::fs::create_dir_all(&dir).expect("mkdir dbs");
    let path = dir.join("owner.db");
    let conn = rusqlite::Connection::open(&path).expect("create db");
    conn.execute_batch(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v); INSERT INTO t(v) VALUES ('a'), ('b'), ('c');",
    )
    .expect("fill db");
    path
}

/// The owner inserts a row, letting SQLite wait up to `patience` for the file's locks; how
/// long the write took, or SQLite's error (SQLITE_BUSY when a lock outlived the patience).
fn owner_writes(db: &Path, patience: Duration) -> Result<Duration, rusqlite::Error> {
    let conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(patience)?;
    let start = Instant::now();
    conn.execute("INSERT INTO t(v) VALUES ('owner')", [])?;
    Ok(start.elapsed())
}

/// The daemon's peak resident memory so far, in bytes (`VmHWM` in `/proc/<pid>/status`).
fn peak_rss(d: &Daemon) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line");
    kib * 1024
}

#[test]
fn a_plugin_cannot_open_a_transaction_on_a_granted_file() {
    let d = daemon("");
    let path = owner_db(&d);
    let db = path.display();
    for sql in [
        "BEGIN",
        "BEGIN IMMEDIATE",
        "SAVEPOINT s",
        "RELEASE s",
        "COMMIT",
        "END",
        "ROLLBACK",
    ] {
        let reply = d.chat(&format!("!sqlexec {db} {sql}"));
        assert!(
            reply.contains("error: access denied") && reply.contains("transactions"),
            "{sql}: {reply}"
        );
    }
    // Reads on the same connection still work, and hold no lock once read to the end.
    let reply = d.chat(&format!("!sqlexec {db} SELECT count(*) FROM t"));
    assert!(reply.contains("rows 1"), "{reply}");
    let took = owner_writes(&path, Duration::from_secs(20))
        .expect("the owner writes while the plugin's connection is open");
    assert!(took < Duration::from_secs(5), "write waited {took:?}");
}

#[test]
fn a_parked_cursor_is_reset_after_the_idle_limit_so_the_owner_can_write() {
    let d = daemon("");
    let db = owner_db(&d);
    let parked = d.chat(&format!("!sqlpark {}", db.display()));
    assert!(parked.contains("parked after 1 row"), "{parked}");
    // The default sqlite_cursor_idle_ms is 1,000: the owner's write waits about that long.
    let took = owner_writes(&db, Duration::from_secs(20))
        .expect("the owner writes while the plugin keeps a cursor");
    assert!(took < Duration::from_secs(10), "write waited {took:?}");
    let next = d.chat("!sqlnext");
    assert!(
        next.contains("error: not found: cursor reset") && next.contains("sqlite_cursor_idle_ms"),
        "{next}"
    );
}

#[test]
fn a_dropped_cursor_releases_the_file_at_once() {
    // The idle reset is pushed out of reach: only the drop can release the lock.
    let d = daemon("sqlite_cursor_idle_ms = 600000\n");
    let db = owner_db(&d);
    let parked = d.chat(&format!("!sqlpark {}", db.display()));
    assert!(parked.contains("parked after 1 row"), "{parked}");
    assert_eq!(d.chat("!sqldrop").trim(), "dropped");
    let took = owner_writes(&db, Duration::from_secs(20))
        .expect("the owner writes once the plugin dropped its cursor");
    assert!(took < Duration::from_secs(2), "write waited {took:?}");
}

#[test]
fn a_huge_row_is_refused_before_the_host_holds_it() {
    let d = daemon("");
    let db = owner_db(&d);
    let db = db.display();
    // Rows within the cap (a quarter of the default memory_mb of 64, so 16 MiB) come back whole.
    let small = d.chat(&format!("!sqlbig {db} 1000000 2"));
    assert!(small.contains("got 2000000 bytes"), "{small}");
    let before = peak_rss(&d);
    // One value past the cap: SQLite refuses to build it.
    let huge = d.chat(&format!("!sqlbig {db} 300000000 2"));
    let grew = peak_rss(&d).saturating_sub(before);
    assert!(
        grew < 100 * 1024 * 1024,
        "the daemon's peak memory grew by {} MiB on two 300 MB values",
        grew / (1024 * 1024)
    );
    assert!(
        huge.contains("error: too large") && huge.contains("memory_mb"),
        "{huge}"
    );
    // Each value under the cap, the row over it: refused column by column.
    let wide = d.chat(&format!("!sqlbig {db} 10000000 3"));
    assert!(
        wide.contains("error: too large") && wide.contains("memory_mb"),
        "{wide}"
    );
    let grew = peak_rss(&d).saturating_sub(before);
    assert!(
        grew < 100 * 1024 * 1024,
        "the daemon's peak memory grew by {} MiB",
        grew / (1024 * 1024)
    );
    // The plugin still works afterwards.
    let again = d.chat(&format!("!sqlexec {db} SELECT count(*) FROM t"));
    assert!(again.contains("rows 1"), "{again}");
}

#[test]
fn cursors_past_the_cap_are_refused_until_some_are_dropped() {
    let d = daemon("sqlite_cursors = 5\n");
    let db = owner_db(&d);
    let db = db.display();
    let leak = d.chat(&format!("!sqlleak {db} 20"));
    assert!(
        leak.contains("error after 5: too large") && leak.contains("sqlite_cursors"),
        "{leak}"
    );
    assert_eq!(d.chat("!sqlfree").trim(), "freed 5");
    let again = d.chat(&format!("!sqlleak {db} 5"));
    assert!(again.contains("opened 5"), "{again}");
}
