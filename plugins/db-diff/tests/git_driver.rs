//! The git diff driver script: git passes 7 arguments, the script hands the old and the
//! new file to `roost invoke db-diff diff`. `roost` is replaced by a stub that checks both
//! files are SQLite databases and echoes its arguments.

use std::path::Path;
use std::process::Command;

fn run(dir: &Path, cmd: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().copied())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn git_diff_runs_the_driver_with_the_old_and_new_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let stub = d.join("roost-stub");
    std::fs::write(
        &stub,
        "#!/bin/sh\nfor f in \"$4\" \"$5\"; do\n  if [ -s \"$f\" ]; then head -c 15 \"$f\" | grep -q 'SQLite format 3' || { echo \"not a db: $f\" >&2; exit 1; }; fi\ndone\necho \"roost $*\"\n",
    )
    .expect("stub");
    run(d, "chmod", &["+x", "roost-stub"], &[]);
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("git-diff-driver.sh");
    let repo = d.join("repo");
    std::fs::create_dir(&repo).expect("repo");
    let git = |args: &[&str]| {
        run(
            &repo,
            "git",
            args,
            &[("ROOST", stub.to_str().expect("utf-8"))],
        )
    };
    git(&["init", "-q"]);
    git(&["config", "user.email", "t@example.com"]);
    git(&["config", "user.name", "t"]);
    git(&[
        "config",
        "diff.sqlite.command",
        driver.to_str().expect("utf-8"),
    ]);
    std::fs::write(repo.join(".gitattributes"), "*.db diff=sqlite\n").expect("attrs");
    let db = repo.join("app.db");
    let conn = rusqlite::Connection::open(&db).expect("db");
    conn.execute_batch("CREATE TABLE t(a); INSERT INTO t VALUES(1);")
        .expect("sql");
    drop(conn);
    git(&["add", "."]);
    git(&["commit", "-qm", "one"]);
    let conn = rusqlite::Connection::open(&db).expect("db");
    conn.execute_batch("INSERT INTO t VALUES(2);").expect("sql");
    drop(conn);
    let out = git(&["diff"]);
    assert!(out.contains("-- db-diff: app.db"), "{out}");
    assert!(out.contains("roost invoke db-diff diff "), "{out}");
    assert!(out.trim_end().ends_with(" app.db"), "{out}");
    // A new file is compared with an empty database.
    let conn = rusqlite::Connection::open(repo.join("new.db")).expect("db");
    conn.execute_batch("CREATE TABLE n(x);").expect("sql");
    drop(conn);
    git(&["add", "-N", "new.db"]);
    let out = git(&["diff", "--", "new.db"]);
    assert!(
        out.contains("roost invoke db-diff diff ") && out.contains("roost-empty-"),
        "{out}"
    );
}

#[test]
fn the_driver_refuses_a_wrong_number_of_arguments() {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("git-diff-driver.sh");
    let out = Command::new("sh")
        .arg(driver)
        .arg("one")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
