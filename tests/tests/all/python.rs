//! Python plugins end to end, through the real binary only: `roost new --lang python`,
//! `roost build --install` (which installs componentize-py into the user's cache the
//! first time: pip must reach the Python package index once), then chat.

use std::time::{Duration, Instant};

use roost_tests::{Daemon, roost_in};

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
