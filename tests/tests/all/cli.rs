//! The other subcommands: invoke, check, init, --help.

use std::process::Command;

use roost_tests::{Daemon, HELLO_WASM, roost_bin, roost_in, starter_dir};

#[test]
fn init_writes_a_commented_config_that_check_accepts() {
    let dir = starter_dir();
    let text = std::fs::read_to_string(dir.path().join("config/roost.toml")).expect("written");
    assert!(
        text.lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count()
            > 10,
        "commented"
    );
    let out = roost_in(dir.path(), &["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok  bot"));
    let again = roost_in(dir.path(), &["init"]);
    assert!(
        !again.status.success(),
        "init does not overwrite without --force"
    );
}

#[test]
fn check_rejects_a_misspelt_key_with_file_line_column_and_exit_2() {
    let dir = starter_dir();
    let path = dir.path().join("config/roost.toml");
    let mut text = std::fs::read_to_string(&path).expect("read");
    text.push_str("\n[plugins.extra]\nenabled = true\nconfg = 1\n");
    let line = text
        .lines()
        .position(|l| l.starts_with("confg"))
        .expect("line")
        + 1;
    std::fs::write(&path, text).expect("write");
    let out = roost_in(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("roost.toml:{line}:1")), "{err}");
    assert!(err.contains("confg"), "{err}");
    // `run` refuses the same config with the same exit code.
    let out = roost_in(dir.path(), &["run"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_reports_a_plugin_that_fails_to_load_and_exits_2() {
    let dir = starter_dir();
    let plugins = dir.path().join("data/plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    std::fs::write(plugins.join("broken.wasm"), b"junk").expect("write");
    let out = roost_in(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.wasm"));
}

#[test]
fn invoke_runs_one_command_without_a_daemon() {
    let dir = starter_dir();
    let plugins = dir.path().join("data/plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    std::fs::copy(HELLO_WASM, plugins.join("hello.wasm")).expect("copy");
    let out = roost_in(dir.path(), &["invoke", "hello", "hello", "shell"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello, shell!");
    let out = roost_in(dir.path(), &["invoke", "hello", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no command `nosuch`"));
    let out = roost_in(dir.path(), &["invoke", "bot", "ping"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "pong");
}

#[test]
fn every_subcommand_has_complete_help() {
    let out = Command::new(roost_bin())
        .arg("--help")
        .output()
        .expect("run");
    let top = String::from_utf8_lossy(&out.stdout);
    for sub in ["run", "check", "chat", "invoke", "status", "init"] {
        assert!(top.contains(sub), "{sub} in --help:\n{top}");
        let out = Command::new(roost_bin())
            .args([sub, "--help"])
            .output()
            .expect("run");
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("--config"), "{sub} --help:\n{help}");
    }
}

#[test]
fn a_second_daemon_on_the_same_data_dir_is_refused_before_it_changes_anything() {
    let d = Daemon::start("");
    let before = d.chat("!status");
    let out = d.roost(&["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("another roost daemon (pid {})", d.pid())),
        "{stderr}"
    );
    // Neither `roost run` nor `roost check` wrote into the live daemon's history.
    assert!(d.roost(&["check"]).status.success());
    let after = d.chat("!status");
    let loaded = |s: &str| s.matches("bot loaded").count();
    assert_eq!(loaded(&after), loaded(&before), "{after}");
    assert_eq!(
        d.chat("!ping").trim(),
        "pong",
        "the first daemon is untouched"
    );
}
