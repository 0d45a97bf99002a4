//! Python plugins end to end, through the real binary only: `roost new --lang python`,
//! `roost build --install` (which installs componentize-py into the user's cache the
//! first time: pip must reach the Python package index once), then chat. Each test builds
//! and loads one Python plugin (about 10 s each), so there are few of them.

use std::time::{Duration, Instant};

use roost_tests::{BASE_CONFIG, Daemon, FAULTY_WASM, StartOptions, roost_in};

/// A Python component is 18 MB; its first compile in a debug host takes tens of seconds.
const LOAD_PATIENCE: Duration = Duration::from_secs(300);

fn chat_until_slow(d: &Daemon, line: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let reply = d.chat(line);
        if ok(&reply) {
            return reply;
        }
        assert!(
            start.elapsed() < LOAD_PATIENCE,
            "{line:?} never gave the expected reply; last:\n{reply}\nlog:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_new_python_plugin_builds_installs_answers_keeps_kv_and_survives_exceptions() {
    let d = Daemon::start("");
    let work = tempfile::tempdir().expect("tempdir");
    let out = roost_in(work.path(), &["new", "dice", "--lang", "python"]);
    assert!(out.status.success(), "{}", text(&out));
    let project = work.path().join("dice");

    // A command that raises: answered with type, message and the plugin's own line.
    let source = std::fs::read_to_string(project.join("dice.py")).expect("read");
    let source = source.replace(
        "    @command(help=\"the last roll\")",
        "    @command(help=\"divide\")\n    def div(self, ctx, n: int):\n        return str(10 // n)\n\n    @command(help=\"the last roll\")",
    );
    std::fs::write(project.join("dice.py"), &source).expect("write");

    let started = Instant::now();
    let config = d.config_path();
    let out = roost_in(
        &project,
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "build",
            "--install",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    eprintln!("roost build --install: {:?}", started.elapsed());
    assert!(d.plugins_dir().join("dice.wasm").is_file());

    let loaded = Instant::now();
    chat_until_slow(&d, "!help", |r| r.contains("!roll"));
    eprintln!("first load: {:?}", loaded.elapsed());
    let rolled = d.chat("!roll 2d6");
    assert!(rolled.starts_with("console rolled 2d6: "), "{rolled}");
    let total = rolled
        .trim()
        .rsplit(": ")
        .next()
        .expect("total")
        .to_string();
    assert_eq!(d.chat("!roll").trim(), "usage: !roll NdM");

    // KV outlives the instance.
    d.chat("!reload dice");
    chat_until_slow(&d, "!last", |r| {
        r.trim() == format!("console rolled {total}")
    });

    let (ok, failed) = d.chat_outcome("!div 0");
    assert!(!ok, "{failed}");
    // The component's CPython (3.14) words it "division by zero".
    assert!(
        failed.contains("ZeroDivisionError: ") && failed.contains("by zero"),
        "{failed}"
    );
    assert!(
        failed.contains("dice.py:") && failed.contains("in div"),
        "{failed}"
    );
    assert_eq!(d.chat("!div 5").trim(), "2", "the next command is served");
}

#[test]
fn a_syntax_error_is_reported_by_roost_build_with_file_and_line() {
    let work = tempfile::tempdir().expect("tempdir");
    let out = roost_in(work.path(), &["new", "broken", "--lang", "python"]);
    assert!(out.status.success(), "{}", text(&out));
    let project = work.path().join("broken");
    let mut source = std::fs::read_to_string(project.join("broken.py")).expect("read");
    let line = source.lines().count() + 1;
    source.push_str("def oops(:\n");
    std::fs::write(project.join("broken.py"), source).expect("write");
    let out = roost_in(&project, &["build"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("broken.py:{line}:")) && said.contains("SyntaxError"),
        "{said}"
    );
}

/// A Python plugin using capabilities beyond kv: `secrets` (uncaught refusals answer the
/// host's message), `sqlite` (every storage class back, a blob parameter) and memory.
const PYCAP: &str = r#"# Secrets, sqlite and memory, end to end.

from roost import Plugin, command, secrets, sqlite


class Pycap(Plugin):
    @command(help="read a secret")
    def pysecret(self, ctx, name: str):
        return f"{name}: {len(secrets.get(name))} bytes"

    @command(help="query a granted database with one blob parameter")
    def pysql(self, ctx, path: str, *words: str):
        with sqlite.open(path) as db:
            cursor = db.execute(" ".join(words), [b"\x00\xff"])
            lines = [",".join(cursor.columns)]
            lines += [" ".join(f"{sqlite.type_name(v)}:{v!r}" for v in row) for row in cursor]
        return "\n".join(lines)

    @command(help="hold MiB of memory")
    def hold(self, ctx, mib: int):
        self.held = None
        self.held = bytearray(mib * 1024 * 1024)
        return f"holding {mib} MiB"
"#;

#[test]
fn a_python_plugin_is_refused_like_a_rust_one_reads_granted_secrets_and_sqlite_and_gets_python_memory()
 {
    const SECRET: &str = "RGAPI-python-plugin-test-key";
    let work = tempfile::tempdir().expect("tempdir");
    let db = work.path().join("shop.db");
    {
        let conn = rusqlite::Connection::open(&db).expect("create db");
        conn.execute_batch(
            "CREATE TABLE items (id INTEGER, name TEXT, price REAL, photo BLOB);
             INSERT INTO items VALUES (1, 'tea', 2.5, x'89504e47'), (2, CAST(x'ff41' AS TEXT), NULL, NULL);",
        )
        .expect("fill db");
    }
    // The Rust fixture plugin and the Python plugin are granted the same secret.
    let config = format!(
        "{BASE_CONFIG}\n[plugins.faulty.grants]\nsecrets = [\"riot_api_key\"]\n\n\
         [plugins.pycap.grants]\nsecrets = [\"riot_api_key\"]\nsqlite_read = [{:?}]\n",
        db.display().to_string()
    );
    let d = Daemon::start_with(
        &config,
        &[("faulty", FAULTY_WASM)],
        StartOptions {
            env: &[("ROOST_SECRET_RIOT_API_KEY", SECRET)],
            ..StartOptions::default()
        },
    );

    let out = roost_in(work.path(), &["new", "pycap", "--lang", "python"]);
    assert!(out.status.success(), "{}", text(&out));
    let project = work.path().join("pycap");
    std::fs::write(project.join("pycap.py"), PYCAP).expect("write plugin");
    let config_path = d.config_path();
    let out = roost_in(
        &project,
        &[
            "--config",
            config_path.to_str().expect("utf-8"),
            "build",
            "--install",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    chat_until_slow(&d, "!help", |r| r.contains("!pysecret"));

    // A secret the grants do not name: the Python plugin's uncaught exception is answered
    // exactly as the Rust plugin's `?` is, but for the command and the plugin's name.
    let (ok, rust) = d.chat_outcome("!secretleak other_key");
    assert!(!ok, "{rust}");
    assert!(
        rust.contains(
            "access denied: secret `other_key` is not granted to plugin `faulty` (add \"other_key\" to secrets in [plugins.faulty.grants])"
        ),
        "{rust}"
    );
    let (ok, python) = d.chat_outcome("!pysecret other_key");
    assert!(!ok, "{python}");
    let expected = rust
        .replace("!secretleak", "!pysecret")
        .replace("plugin `faulty`", "plugin `pycap`")
        .replace("[plugins.faulty.", "[plugins.pycap.");
    assert_eq!(python, expected);

    // Granted: the secret, and a query on the granted database with every storage class,
    // TEXT that is not UTF-8 included, and a blob parameter.
    assert_eq!(
        d.chat("!pysecret riot_api_key").trim(),
        format!("riot_api_key: {} bytes", SECRET.len())
    );
    let rows = d.chat(&format!(
        "!pysql {} SELECT id, name, price, photo, ? AS p FROM items ORDER BY id",
        db.display()
    ));
    assert_eq!(
        rows.trim(),
        "id,name,price,photo,p\n\
         integer:1 text:'tea' real:2.5 blob:b'\\x89PNG' blob:b'\\x00\\xff'\n\
         integer:2 text:TextBytes(b'\\xffA') null:None null:None blob:b'\\x00\\xff'",
        "{rows}"
    );
    let (ok, refused) = d.chat_outcome(&format!("!pysql {} DELETE FROM items", db.display()));
    assert!(
        !ok && refused.contains("access denied: statement refused"),
        "{refused}"
    );

    // Memory: 100 MiB is more than the default memory_mb (64) and fits python_memory_mb
    // (128), which the host gives a component it recognises as Python.
    assert_eq!(d.chat("!hold 100").trim(), "holding 100 MiB");
    // The plugin's own memory_mb wins: the config change reloads it, and 100 MiB no longer
    // fits.
    d.write_config_raw(&format!(
        "{config}\n[plugins.pycap.limits]\nmemory_mb = 64\n"
    ));
    let refused = chat_until_slow(&d, "!hold 100", |r| r.contains("MemoryError"));
    assert!(refused.contains("at pycap.py:"), "{refused}");
    assert_eq!(d.chat("!hold 32").trim(), "holding 32 MiB");
}
