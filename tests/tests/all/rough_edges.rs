//! The rough edges a new user hit on their first day, each driven the way they met it:
//! a `!status` that lagged behind, a console that throttled its own admin, piped input
//! that lost its replies, scripts that could not tell a failed command.

use std::io::Write;
use std::process::{Command, Stdio};

use roost_tests::{BASE_CONFIG, Daemon, FAULTY_WASM, roost_bin};

#[test]
fn status_shows_what_a_plugin_did_in_an_event_not_only_in_a_command() {
    let d = Daemon::start_with_plugins("", &[("faulty", FAULTY_WASM)]);
    let status = d.chat("!status");
    assert!(status.contains("0 timers fired"), "{status}");
    d.chat("!timer 20 a");
    d.chat_until("!status", |s| s.contains("1 timers fired"));
}

#[test]
fn the_console_admin_is_not_rate_limited_by_default() {
    let config = BASE_CONFIG.replace("per_minute = 0", "per_minute = 6\nburst = 2");
    let d = Daemon::start_full(&config, &[], &[]);
    for _ in 0..12 {
        assert_eq!(d.chat("!ping").trim(), "pong");
    }
}

/// Runs `roost chat` with `input` on a pipe; its exit code and output.
fn chat_piped(d: &Daemon, input: &str) -> (Option<i32>, String) {
    let mut child = Command::new(roost_bin())
        .arg("--config")
        .arg(d.config_path())
        .arg("chat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chat");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write input");
    let out = child.wait_with_output().expect("chat");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn piped_input_gets_every_reply_in_order_and_no_prompt() {
    let d = Daemon::start_with_plugins("", &[("faulty", FAULTY_WASM)]);
    let (code, out) = chat_piped(&d, "!ping\n\n!echo one two\n!version\n");
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("roost>"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["pong", "one|two"], "{out}");
    assert_eq!(lines.len(), 3, "{out}");
}

#[test]
fn a_failed_command_makes_chat_exit_non_zero() {
    let d = Daemon::start_with_plugins("", &[("faulty", FAULTY_WASM)]);
    assert_eq!(d.chat_outcome("!ping"), (true, "pong\n".to_string()));
    for line in ["!nosuchcommand", "!kvget", "!trap", "!kvset"] {
        let (ok, reply) = d.chat_outcome(line);
        assert!(!ok, "{line} counted as a success: {reply}");
    }
    let (code, out) = chat_piped(&d, "!ping\n!nosuchcommand\n");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("pong\n"), "{out}");
}

#[test]
fn version_names_the_commit_and_completions_cover_every_subcommand() {
    let d = Daemon::start("");
    let version = d.roost(&["--version"]);
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.contains("commit ") || version.contains("unknown commit"),
        "{version}"
    );
    let bash = d.roost(&["completions", "bash"]);
    assert!(bash.status.success());
    let script = String::from_utf8_lossy(&bash.stdout);
    for sub in ["run", "chat", "check", "invoke", "backup", "completions"] {
        assert!(script.contains(sub), "bash completion lacks {sub}");
    }
}

#[test]
fn the_log_goes_to_a_file_too_and_carries_no_colour_codes() {
    let d = Daemon::start("");
    assert!(!d.log().contains('\u{1b}'), "{}", d.log());
    let log = d.dir().join("roost.log");
    let config = std::fs::read_to_string(d.config_path()).expect("config");
    std::fs::write(
        d.dir().join("second.toml"),
        config.replace(
            "data_dir = \"data\"",
            "data_dir = \"data2\"\nlog_file = \"roost.log\"",
        ),
    )
    .expect("write config");
    let mut second = Command::new(roost_bin())
        .arg("--config")
        .arg(d.dir().join("second.toml"))
        .arg("run")
        .stderr(Stdio::null())
        .spawn()
        .expect("second daemon");
    let start = std::time::Instant::now();
    let mut text = String::new();
    while !text.contains("roost ready") && start.elapsed() < roost_tests::PATIENCE {
        std::thread::sleep(std::time::Duration::from_millis(20));
        text = std::fs::read_to_string(&log).unwrap_or_default();
    }
    let _ = second.kill();
    let _ = second.wait();
    assert!(text.contains("roost ready"), "log file: {text}");
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[test]
fn a_backup_taken_while_the_daemon_runs_holds_its_data() {
    let d = Daemon::start_with_plugins("", &[("faulty", FAULTY_WASM)]);
    assert_eq!(d.chat("!kvset colour teal").trim(), "ok");
    let copy = d.dir().join("copy.db");
    let out = d.roost(&["backup", copy.to_str().expect("utf-8 path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = Command::new("sqlite3")
        .arg(&copy)
        .arg("SELECT count(*) FROM kv;")
        .output()
        .expect("sqlite3");
    let rows = String::from_utf8_lossy(&dump.stdout);
    assert!(rows.trim().parse::<u32>().is_ok_and(|n| n >= 1), "{rows}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&copy).expect("copy").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = d.roost(&["backup", copy.to_str().expect("utf-8 path")]);
    assert!(!again.status.success(), "a backup overwrote a file");
}

/// `roost ARGS…` run in `cwd` with `home` as the home directory and no config named.
fn roost_at_home(
    home: &std::path::Path,
    cwd: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    Command::new(roost_bin())
        .current_dir(cwd)
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("ROOST_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run roost")
}

#[test]
fn init_at_home_writes_the_user_config_which_every_directory_then_finds() {
    let home = tempfile::tempdir().expect("home");
    let elsewhere = tempfile::tempdir().expect("elsewhere");
    let home_dir = std::fs::canonicalize(home.path()).expect("canonical");
    let init = roost_at_home(&home_dir, &home_dir, &["init"]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let user_config = home_dir.join(".config/roost/roost.toml");
    assert!(
        user_config.is_file(),
        "init wrote {}",
        String::from_utf8_lossy(&init.stdout)
    );
    let check = roost_at_home(&home_dir, elsewhere.path(), &["check"]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        stdout.contains(&user_config.display().to_string()),
        "{stdout}"
    );
}

#[test]
fn with_no_config_anywhere_invoke_runs_on_defaults_and_the_rest_say_where_they_looked() {
    let home = tempfile::tempdir().expect("home");
    let cwd = tempfile::tempdir().expect("cwd");
    let status = roost_at_home(home.path(), cwd.path(), &["status"]);
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert_eq!(status.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("config/roost.toml"), "{stderr}");
    assert!(stderr.contains(".config/roost/roost.toml"), "{stderr}");
    assert!(stderr.contains("roost init"), "{stderr}");
    for (db, sql) in [
        (
            "a.db",
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES(1,'x');",
        ),
        (
            "b.db",
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES(1,'y');",
        ),
    ] {
        let made = Command::new("sqlite3")
            .arg(cwd.path().join(db))
            .arg(sql)
            .status()
            .expect("sqlite3");
        assert!(made.success());
    }
    let diff = roost_at_home(
        home.path(),
        cwd.path(),
        &["invoke", "db-diff", "diff", "a.db", "b.db"],
    );
    let stdout = String::from_utf8_lossy(&diff.stdout);
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    assert!(stdout.contains("UPDATE"), "{stdout}");
}

#[test]
fn the_last_good_build_serves_after_a_restart_while_the_broken_file_is_reported() {
    let mut d = Daemon::start_with_plugins("", &[("faulty", FAULTY_WASM)]);
    let version = d.chat("!version");
    assert!(!version.contains("unknown"), "{version}");
    let tmp = d.plugins_dir().join(".broken.tmp");
    std::fs::write(&tmp, b"\0asm garbage").expect("write");
    std::fs::rename(&tmp, d.plugins_dir().join("faulty.wasm")).expect("rename");
    d.chat_until("!status", |s| s.contains("faulty load-failed"));
    d.kill9();
    d.restart();
    assert_eq!(d.chat("!version"), version, "served after the restart");
    let status = d.chat("!status");
    assert!(status.contains("last good build"), "{status}");
}

/// An interactive `roost chat` on a pseudo-terminal (`script`), its output collected.
struct Terminal {
    child: std::process::Child,
    output: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Terminal {
    fn open(d: &Daemon) -> Self {
        let line = format!(
            "{} --config {} chat",
            roost_bin().display(),
            d.config_path().display()
        );
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c", &line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("script");
        let mut stdout = child.stdout.take().expect("stdout");
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut o) = sink.lock() {
                    o.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Self { child, output }
    }

    fn wait_for(&self, needle: &str) {
        let start = std::time::Instant::now();
        loop {
            let text = self.output.lock().map(|o| o.clone()).unwrap_or_default();
            if text.contains(needle) {
                return;
            }
            assert!(
                start.elapsed() < roost_tests::PATIENCE,
                "the chat never showed {needle:?}:\n{text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_chat_that_attaches_late_sees_what_it_missed_and_survives_a_restart() {
    let mut d = Daemon::start_with_plugins(
        "[plugins.faulty.grants]\nchannels = [\"announce\"]\n",
        &[("faulty", FAULTY_WASM)],
    );
    assert_eq!(d.chat("!send announce while-nobody-watched").trim(), "sent");
    let chat = Terminal::open(&d);
    chat.wait_for("[faulty] while-nobody-watched");
    d.kill9();
    chat.wait_for("the daemon went away; reconnecting");
    d.restart();
    chat.wait_for("reconnected to");
    assert_eq!(d.chat("!send announce after-the-restart").trim(), "sent");
    chat.wait_for("[faulty] after-the-restart");
}

#[test]
fn chat_saves_attachments_where_asked_and_never_over_a_file() {
    let d = Daemon::start_with_plugins("", &[("faulty", FAULTY_WASM)]);
    let hint = d.chat("!attach diff.sql SELECT 1;");
    assert!(hint.contains("[attachment diff.sql"), "{hint}");
    assert!(hint.contains("--save-dir"), "{hint}");
    let dir = d.dir().join("saved");
    let dir_arg = dir.to_str().expect("utf-8 path");
    for _ in 0..2 {
        let out = d.roost(&[
            "chat",
            "--save-dir",
            dir_arg,
            "-c",
            "!attach ../../diff.sql SELECT 1;",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("diff.sql")).expect("saved"),
        "SELECT 1;"
    );
    assert!(
        dir.join("diff-1.sql").is_file(),
        "the second copy went beside the first"
    );
    assert!(
        !d.dir().join("diff.sql").exists(),
        "a name with .. escaped the directory"
    );
}

#[test]
fn invoke_without_a_command_lists_the_plugins_commands() {
    let d = Daemon::start("");
    let out = d.roost(&["invoke", "db-diff"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("usage: roost invoke db-diff COMMAND"),
        "{stderr}"
    );
    assert!(stderr.contains("serves: "), "{stderr}");
    assert!(stderr.contains("diff"), "{stderr}");
}
