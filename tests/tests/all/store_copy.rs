//! `roost store copy`: a hub's state moved from SQLite to Postgres and back with the real
//! binary, the way a user moves a hub: stop it, copy, point `[store] url` at the copy,
//! start it again. The copy refuses a store a hub is using and a store that holds rows.

use std::path::Path;
use std::process::{Command, Output};

use roost_tests::{BASE_CONFIG, Daemon, FAULTY_WASM, roost_bin, store_password_env, test_pg};

/// `roost store copy --from FROM --to TO` with the test server's password.
fn store_copy(from: &str, to: &str) -> Output {
    let mut command = Command::new(roost_bin());
    command
        .args(["store", "copy", "--from", from, "--to", to])
        .env_remove("RUST_LOG")
        .env_remove("ROOST_CONFIG");
    if let Some(password) = &test_pg::server().password {
        command.env("ROOST_STORE_PASSWORD", password);
    }
    command.output().expect("run roost store copy")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The report's line for `table`: its row count and checksum.
fn table_line(stdout: &str, table: &str) -> String {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(table))
        .unwrap_or_else(|| panic!("no {table} line in:\n{stdout}"))
        .to_string()
}

fn rows_of(line: &str) -> u64 {
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a row count")
}

#[test]
fn a_hub_moves_from_sqlite_to_postgres_and_back_with_every_table_verified() {
    let url = test_pg::fresh_url();
    let env = store_password_env();
    let mut d = Daemon::start_full(BASE_CONFIG, &[("faulty", FAULTY_WASM)], &env);
    assert_eq!(d.chat("!kvset colour teal").trim(), "ok");
    assert_eq!(d.chat("!kvset shape hexagon").trim(), "ok");
    let db = d.db_path().display().to_string();

    let (_, err) = text(&store_copy(&db, &url));
    assert!(
        err.contains(&format!("(pid {})", d.pid())) && err.contains("stop it first"),
        "a running hub's store is not copied: {err}"
    );

    d.signal("TERM");
    assert!(d.wait_exit().success());
    let out = store_copy(&db, &url);
    let (to_pg, err) = text(&out);
    assert!(out.status.success(), "{to_pg}{err}");
    let kv = table_line(&to_pg, "kv");
    assert!(rows_of(&kv) >= 2, "{to_pg}");
    assert!(rows_of(&table_line(&to_pg, "history")) > 0, "{to_pg}");
    assert!(to_pg.contains("match the source's"), "{to_pg}");

    // The same hub, now on Postgres, has its state.
    d.write_config_raw(&format!("{BASE_CONFIG}\n[store]\nurl = \"{url}\"\n"));
    d.restart();
    assert_eq!(d.chat("!kvget colour").trim(), "teal");
    assert_eq!(d.chat("!kvget shape").trim(), "hexagon");

    let back = d.dir().join("back/roost.db");
    let back = back.display().to_string();
    let (_, err) = text(&store_copy(&url, &back));
    assert!(
        err.contains("is running on postgres://") && err.contains("stop every hub"),
        "a store a hub leads on is not copied: {err}"
    );
    d.signal("TERM");
    assert!(d.wait_exit().success());

    let out = store_copy(&db, &url);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("already holds") && err.contains("empty store"),
        "{err}"
    );

    let out = store_copy(&url, &back);
    let (to_sqlite, err) = text(&out);
    assert!(out.status.success(), "{to_sqlite}{err}");
    assert_eq!(
        table_line(&to_sqlite, "kv"),
        kv,
        "the KV table came back byte for byte (same rows, same sha256)"
    );
    let value = Command::new("sqlite3")
        .arg(&back)
        .arg("SELECT CAST(value AS TEXT) FROM kv WHERE key = 'colour'")
        .output()
        .expect("sqlite3");
    assert_eq!(String::from_utf8_lossy(&value.stdout).trim(), "teal");
    assert_private(Path::new(&back));
}

fn assert_private(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file)
        .expect("the copy")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{} is private: {mode:o}", file.display());
}

#[test]
fn a_missing_source_file_is_refused_with_exit_2_and_nothing_is_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let typo = dir.path().join("data/roots.db");
    let to = dir.path().join("copy.db");
    let out = store_copy(&typo.display().to_string(), &to.display().to_string());
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("roots.db does not exist"), "{err}");
    assert!(!typo.exists() && !to.exists());
}
