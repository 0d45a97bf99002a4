//! A hostile plugin, a hostile local client and a careless install, each tried against the
//! real daemon: no plugin call outlives its time limit (even blocked in a host call), a
//! hung `init` blocks neither the socket, the other plugins nor SIGTERM, jobs cannot read
//! the daemon or outlive their end, built-in commands cannot be shadowed, the data dir is
//! private, and what reaches the terminal is text. Listed in SECURITY.md.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use roost_tests::{BASE_CONFIG, Daemon, FAULTY_WASM, PATIENCE, StartOptions, roost_bin};

/// Runs `roost chat -c LINE` on a thread of its own, so a test can go on meanwhile.
pub(crate) fn chat_in_background(d: &Daemon, line: &str) -> std::thread::JoinHandle<String> {
    let (cfg, line) = (d.config_path(), line.to_string());
    std::thread::spawn(move || {
        let out = Command::new(roost_bin())
            .arg("--config")
            .arg(cfg)
            .args(["chat", "-c", &line])
            .output()
            .expect("run roost chat");
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
}

/// Waits for a background chat, failing the test if it is not answered in [`PATIENCE`].
fn join_within_patience(chat: std::thread::JoinHandle<String>, what: &str) -> String {
    let start = Instant::now();
    while !chat.is_finished() {
        assert!(start.elapsed() < PATIENCE, "{what} never answered");
        std::thread::sleep(Duration::from_millis(20));
    }
    chat.join().expect("chat thread")
}

/// Waits until `ok` holds, failing after [`PATIENCE`] with `what`.
pub(crate) fn wait_until(what: &str, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < PATIENCE, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_plugin_sleeping_in_a_host_call_is_stopped_at_its_time_limit() {
    let d = Daemon::start_with_plugins(
        "[plugins.faulty.limits]\ncall_timeout_ms = 1000\n",
        &[("faulty", FAULTY_WASM)],
    );
    // Ten minutes of WASI sleep: only the wall-clock bound can end it.
    let sleeper = chat_in_background(&d, "!sleep 600000");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(d.chat("!ping").trim(), "pong");
    let reply = join_within_patience(sleeper, "!sleep 600000");
    assert!(
        reply.contains("plugin faulty failed: timed out after 1000 ms"),
        "{reply}"
    );
    d.chat_until("!version", |r| !r.contains("unavailable"));
}

#[test]
fn a_plugin_hung_in_init_blocks_neither_the_socket_nor_the_bot_nor_sigterm() {
    let config = format!(
        "{BASE_CONFIG}\n[plugins.faulty.config]\nsleep_init_ms = 600000\n\
         [plugins.faulty.limits]\ncall_timeout_ms = 600000\n"
    );
    let mut d = Daemon::start_with(
        &config,
        &[("faulty", FAULTY_WASM)],
        StartOptions {
            listening_only: true,
            ..StartOptions::default()
        },
    );
    d.chat_until("!ping", |r| r.trim() == "pong");
    let status = d.chat("!plugins");
    assert!(status.contains("bot"), "{status}");
    d.signal("TERM");
    let asked = Instant::now();
    let status = d.wait_exit();
    assert!(status.success(), "{status}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "SIGTERM took {:?} while a plugin hung in init",
        asked.elapsed()
    );
}

#[test]
fn a_plugin_that_times_out_in_init_is_marked_failed_with_the_reason() {
    let d = Daemon::start_with_plugins(
        "[plugins.faulty.config]\nsleep_init_ms = 600000\n\
         [plugins.faulty.limits]\ncall_timeout_ms = 300\n",
        &[("faulty", FAULTY_WASM)],
    );
    let status = d.chat("!status");
    assert!(
        status.contains("init failed: timed out after 300 ms"),
        "{status}"
    );
    assert_eq!(d.chat("!ping").trim(), "pong");
}

/// A daemon whose faulty plugin may run `programs` in a directory of its own (`work`).
fn job_daemon(programs: &[&str], host_extra: &str, options: StartOptions<'_>) -> Daemon {
    let programs: Vec<String> = programs.iter().map(|p| format!("{p:?}")).collect();
    let work = tempfile::Builder::new()
        .prefix("roost-jobs")
        .tempdir()
        .expect("work dir")
        .keep();
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let config = BASE_CONFIG.replace("[host]\n", &format!("[host]\n{host_extra}"))
        + &format!(
            "\n[plugins.faulty.grants]\nprograms = [{}]\nprocess_dirs = [{:?}]\n",
            programs.join(", "),
            work.display().to_string()
        );
    let d = Daemon::start_with(&config, &[("faulty", FAULTY_WASM)], options);
    std::fs::write(d.dir().join("work"), work.display().to_string()).expect("note work dir");
    d
}

/// The job directory [`job_daemon`] granted.
fn work_dir(d: &Daemon) -> String {
    std::fs::read_to_string(d.dir().join("work")).expect("work dir note")
}

/// Starts a job with `!job` and waits for its end; what the plugin recorded of it.
fn run_job(d: &Daemon, args: &str) -> String {
    let started = d.chat(&format!("!job {} {args}", work_dir(d)));
    let id = started
        .trim()
        .strip_prefix("job ")
        .unwrap_or_else(|| panic!("job not started: {started}"))
        .to_string();
    d.chat_until(&format!("!kvget job/{id}"), |r| r.trim() != "(none)")
}

fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn a_job_child_that_left_its_group_with_setsid_is_ended_with_the_job() {
    let d = job_daemon(&["sh"], "", StartOptions::default());
    let work = work_dir(&d);
    // The job exits at once, leaving a process in a session of its own.
    let ended = run_job(&d, "sh -c 'setsid sleep 300 & echo $! > escaped-1.pid'");
    assert!(ended.contains("exit=Some(0)"), "{ended}");
    let pid = std::fs::read_to_string(Path::new(&work).join("escaped-1.pid")).expect("pid");
    wait_until("the escapee of an ended job is gone", || !alive(pid.trim()));

    // The job is cancelled while its escapee runs.
    let started = d.chat(&format!(
        "!job {work} sh -c 'setsid sleep 300 & echo $! > escaped-2.pid; sleep 300'"
    ));
    let id = started
        .trim()
        .strip_prefix("job ")
        .expect("job id")
        .to_string();
    let pid_file = Path::new(&work).join("escaped-2.pid");
    wait_until("the second escapee wrote its pid", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|p| !p.trim().is_empty())
    });
    let pid = std::fs::read_to_string(&pid_file).expect("pid");
    assert!(alive(pid.trim()), "escapee running before the cancel");
    assert_eq!(d.chat(&format!("!cancel {id}")).trim(), "cancelled");
    d.chat_until(&format!("!kvget job/{id}"), |r| {
        r.contains("cancelled=true")
    });
    wait_until("the escapee of a cancelled job is gone", || {
        !alive(pid.trim())
    });
}

const TOKEN: &str = "roost-test-secret-6d1f0c";

/// The user tests hand the daemon or its jobs to when they run as root.
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn no_token_is_left_in_the_daemon_environment_and_jobs_cannot_read_it() {
    // As root, the daemon itself runs as an unprivileged user, so its jobs are that same
    // user: exactly the case `PR_SET_DUMPABLE` must protect.
    let uid = is_root().then_some(NOBODY);
    let d = job_daemon(
        &["cat"],
        "",
        StartOptions {
            env: &[("ROOST_DISCORD_TOKEN", TOKEN)],
            uid,
            ..StartOptions::default()
        },
    );
    let pid = d.pid();
    match std::fs::read(format!("/proc/{pid}/environ")) {
        Ok(environ) => assert!(
            !String::from_utf8_lossy(&environ).contains(TOKEN),
            "the token is still in the daemon's environment"
        ),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}"),
    }
    let environ = run_job(&d, &format!("cat /proc/{pid}/environ"));
    assert!(!environ.contains(TOKEN), "{environ}");
    assert!(
        environ.contains("exit=Some(1)"),
        "a job read the daemon: {environ}"
    );
}

#[test]
fn as_root_jobs_run_as_the_job_user() {
    if !is_root() {
        // Only root can switch users; the warning path is covered by `roost check` below.
        return;
    }
    let d = job_daemon(&["id"], "job_user = \"nobody\"\n", StartOptions::default());
    let ended = run_job(&d, "id -u");
    assert!(ended.contains(&format!("stdout={NOBODY}")), "{ended}");
}

#[test]
fn check_warns_about_launcher_grants_and_root_jobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("roost.toml");
    std::fs::write(
        &config,
        format!(
            "{BASE_CONFIG}\n[plugins.bot.config]\n[plugins.runner.grants]\nprograms = [\"env\", \"pytest\"]\nprocess_dirs = [\".\"]\n"
        ),
    )
    .expect("write config");
    let out = Command::new(roost_bin())
        .arg("--config")
        .arg(&config)
        .arg("check")
        .output()
        .expect("roost check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: plugin runner: programs grants `env`, which runs any command"),
        "{stderr}"
    );
    assert!(!stderr.contains("`pytest`"), "{stderr}");
    assert_eq!(
        stderr.contains("runs as root and [host] job_user is not set"),
        is_root(),
        "{stderr}"
    );
}

#[test]
fn an_unvetted_plugin_cannot_take_a_built_in_command() {
    // Named `aaa` so that it sorts before `bot`, which once decided a clash.
    let d = Daemon::start_with_plugins(
        "[plugins.aaa.config]\nshadow = true\n",
        &[("aaa", FAULTY_WASM)],
    );
    assert_eq!(d.chat("!ping").trim(), "pong");
    assert_eq!(d.chat("!aaa:ping").trim(), "faulty answered ping");
    let status = d.chat("!status");
    assert!(!status.contains("faulty answered"), "{status}");
    assert!(
        status.contains("command clash: !ping is served by bot; also offered as !aaa:ping"),
        "{status}"
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_data_dir_and_database_are_private_and_fixed_on_start() {
    let mut d = Daemon::start("");
    d.chat("!kvset a b");
    let data = d.dir().join("data");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&d.db_path()), 0o600);
    assert_eq!(mode(&d.socket()) & 0o077, 0);
    d.kill9();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(d.db_path(), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    d.restart();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&d.db_path()), 0o600);
    let wal = d.dir().join("data/roost.db-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600);
    }
}

#[test]
fn a_component_over_max_component_mb_is_refused_by_name() {
    let d = Daemon::start("[limits]\nmax_component_mb = 1\n");
    let big = d.plugins_dir().join("big.wasm");
    std::fs::write(&big, vec![0u8; 2 * 1024 * 1024]).expect("write");
    let status = d.chat_until("!status", |s| s.contains("max_component_mb"));
    assert!(status.contains("big"), "{status}");
    assert!(
        status.contains("larger than max_component_mb = 1"),
        "{status}"
    );
}

/// Writes `chunks` raw to the console socket (stopping when the daemon closes it) and
/// returns everything the daemon sent back before closing.
fn console_exchange(d: &Daemon, chunks: impl IntoIterator<Item = Vec<u8>>) -> String {
    let mut stream = UnixStream::connect(d.socket()).expect("connect");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    for chunk in chunks {
        if stream.write_all(&chunk).is_err() {
            break;
        }
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn an_endless_console_line_is_cut_and_the_client_told_why() {
    let d = Daemon::start("");
    // Far more than the limit, with no newline; the daemon stops reading early.
    let answer = console_exchange(&d, (0..128).map(|_| vec![b'x'; 64 * 1024]));
    assert!(answer.contains("\"type\":\"error\""), "{answer}");
    assert!(answer.contains("longer than 65536 bytes"), "{answer}");
    assert_eq!(d.chat("!ping").trim(), "pong");
}

#[test]
fn plugin_text_reaches_the_terminal_without_control_characters() {
    let d = Daemon::start_with_plugins("", &[("faulty", FAULTY_WASM)]);
    let reply = d.chat("!echo \u{1b}[2J\u{1b}]0;owned\u{7} done");
    assert!(!reply.contains('\u{1b}'), "{reply:?}");
    assert!(reply.contains("^[[2J^[]0;owned^G"), "{reply:?}");
}

#[test]
fn a_closed_stdout_ends_chat_and_invoke_quietly() {
    let d = Daemon::start_with_plugins("", &[("faulty", FAULTY_WASM)]);
    for args in [
        vec!["chat", "-c", "!help"],
        vec!["invoke", "faulty", "echo", "hello"],
    ] {
        let mut child = Command::new(roost_bin())
            .arg("--config")
            .arg(d.config_path())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {} {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn deep_recursion_is_a_crash_of_that_plugin_only() {
    let d = Daemon::start_with_plugins("", &[("faulty", FAULTY_WASM)]);
    let reply = d.chat("!recurse");
    assert!(reply.contains("plugin faulty failed: crashed"), "{reply}");
    assert_eq!(d.chat("!ping").trim(), "pong");
    d.chat_until("!version", |r| !r.contains("unavailable"));
}

#[test]
fn an_invalid_utf8_console_line_is_refused_and_the_daemon_serves_on() {
    let d = Daemon::start("");
    let answer = console_exchange(&d, [b"\xff\xfe{\"type\":\"say\"}\n".to_vec()]);
    assert!(answer.contains("\"type\":\"error\""), "{answer}");
    assert_eq!(d.chat("!ping").trim(), "pong");
}

#[test]
fn another_local_user_cannot_reach_the_console() {
    if !is_root() {
        // Needs a second user to try as.
        return;
    }
    let d = Daemon::start("");
    // Everything but the data dir is open to them, so only the console's own protection
    // stands in the way.
    std::fs::set_permissions(d.dir(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(d.config_path(), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    // A copy they can run, wherever the build tree is.
    let client = d.dir().join("roost-client");
    std::fs::copy(roost_bin(), &client).expect("copy the binary");
    std::fs::set_permissions(&client, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&client)
        .arg("--config")
        .arg(d.config_path())
        .args(["chat", "-c", "!ping"])
        .output()
        .expect("setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "nobody reached the console");
    assert!(
        stderr.contains("no roost daemon is listening") && stderr.contains("Permission denied"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("pong"));
}
