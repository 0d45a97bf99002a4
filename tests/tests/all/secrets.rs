//! The `secrets` capability: a granted secret reaches the plugin that asks for it, and the
//! host itself never puts it anywhere: not in its log, `!status`, the database, its own
//! `/proc/<pid>/environ` or a job's environment. Only what the plugin chooses to write
//! shows up, exactly where it wrote it.

use std::os::unix::fs::PermissionsExt;

use roost_tests::{BASE_CONFIG, Daemon, FAULTY_WASM, StartOptions, roost_in, starter_dir};

/// The secret's value: long and unlike anything else a daemon writes.
const SECRET: &str = "RGAPI-5e3c9b71-roost-test-riot-key";

/// A daemon whose faulty plugin may read `riot_api_key` and run `printenv` in a directory
/// of its own, with HOME passed to jobs; `env` is added to the daemon's environment.
fn secrets_daemon(env: &[(&str, &str)]) -> (Daemon, String) {
    let work = tempfile::Builder::new()
        .prefix("roost-secret-jobs")
        .tempdir()
        .expect("work dir")
        .keep();
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let work = work.display().to_string();
    let config = format!(
        "{BASE_CONFIG}\n[plugins.faulty.grants]\nsecrets = [\"riot_api_key\"]\nprograms = [\"printenv\"]\nprocess_dirs = [{work:?}]\nenv = [\"HOME\"]\n"
    );
    let d = Daemon::start_with(
        &config,
        &[("faulty", FAULTY_WASM)],
        StartOptions {
            env,
            ..StartOptions::default()
        },
    );
    (d, work)
}

/// Every byte of the host database, its WAL and its shared-memory file.
fn database_bytes(d: &Daemon) -> String {
    let dir = d.db_path().parent().expect("data dir").to_path_buf();
    let name = d.db_path().file_name().expect("db name").to_owned();
    let mut all = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("data dir") {
        let entry = entry.expect("entry");
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(&*name.to_string_lossy())
        {
            all.extend(std::fs::read(entry.path()).unwrap_or_default());
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

/// Starts `!job <work> printenv` and waits for the plugin's record of its end.
fn job_environment(d: &Daemon, work: &str) -> String {
    let started = d.chat(&format!("!job {work} printenv"));
    let id = started
        .trim()
        .strip_prefix("job ")
        .unwrap_or_else(|| panic!("job not started: {started}"))
        .to_string();
    d.chat_until(&format!("!kvget job/{id}"), |r| r.trim() != "(none)")
}

#[test]
fn a_granted_secret_reaches_the_plugin_and_nothing_the_host_writes() {
    let (d, work) = secrets_daemon(&[("ROOST_SECRET_RIOT_API_KEY", SECRET)]);

    let read = d.chat("!secret riot_api_key");
    assert_eq!(
        read.trim(),
        format!("riot_api_key: {} bytes", SECRET.len()),
        "{read}"
    );

    // A name the grants do not list: refused, naming the plugin, the secret and the grant.
    let denied = d.chat("!secret other_key");
    for part in [
        "access denied",
        "plugin `faulty`",
        "secret `other_key`",
        "[plugins.faulty.grants]",
    ] {
        assert!(denied.contains(part), "{part}: {denied}");
    }

    // The plugin tries to hand the secret to a job under its own variable: that variable
    // is not (and cannot be) granted in `env`.
    let handed = d.chat(&format!("!secretjob {work} riot_api_key"));
    assert!(handed.contains("access denied"), "{handed}");
    assert!(!handed.contains(SECRET), "{handed}");

    // A job's environment: the base variables and HOME, no secret.
    let environment = job_environment(&d, &work);
    assert!(environment.contains("exit=Some(0)"), "{environment}");
    assert!(environment.contains("HOME="), "{environment}");
    assert!(!environment.contains(SECRET), "{environment}");
    assert!(!environment.contains("ROOST_SECRET"), "{environment}");

    let status = d.chat("!status");
    assert!(status.contains("faulty"), "{status}");
    assert!(!status.contains(SECRET), "{status}");

    let pid = d.pid();
    match std::fs::read(format!("/proc/{pid}/environ")) {
        Ok(environ) => {
            // The name stays in the exec-time block; its value there is zeroed.
            let environ = String::from_utf8_lossy(&environ);
            assert!(
                !environ.contains(SECRET),
                "the secret is still in the environment"
            );
        }
        // Not dumpable: another user (the test, when not root) cannot read it at all.
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}"),
    }

    assert!(
        !database_bytes(&d).contains(SECRET),
        "the database holds the secret"
    );
    let log = d.log();
    assert!(log.contains("other_key"), "the denial is logged by name");
    assert!(!log.contains(SECRET), "the log holds the secret:\n{log}");
}

#[test]
fn what_the_plugin_itself_writes_shows_up_where_it_wrote_it() {
    // The probes of the test above can see a secret: the plugin's own KV write of it is in
    // the database bytes, and its reply carries it.
    let (d, _work) = secrets_daemon(&[("ROOST_SECRET_RIOT_API_KEY", SECRET)]);
    assert!(!database_bytes(&d).contains(SECRET));
    let leaked = d.chat("!secretleak riot_api_key kv");
    assert!(leaked.contains(&format!("leaked: {SECRET}")), "{leaked}");
    assert!(
        database_bytes(&d).contains(SECRET),
        "the plugin's own KV write is in the database"
    );
}

#[test]
fn a_secret_file_is_used_only_when_no_one_else_can_read_it() {
    let (d, _work) = secrets_daemon(&[]);
    let dir = d.dir().join("data/secrets");
    std::fs::create_dir_all(&dir).expect("secrets dir");
    let file = dir.join("riot_api_key");

    let missing = d.chat("!secret riot_api_key");
    assert!(missing.contains("not found"), "{missing}");
    assert!(
        missing.contains("ROOST_SECRET_RIOT_API_KEY"),
        "says what to set: {missing}"
    );

    std::fs::write(&file, format!("{SECRET}\n")).expect("write secret");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let refused = d.chat("!secret riot_api_key");
    assert!(refused.contains("chmod 600"), "{refused}");
    assert!(!refused.contains(SECRET), "{refused}");

    // Read on each call: fixing the mode is enough, no restart.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let read = d.chat("!secret riot_api_key");
    assert_eq!(
        read.trim(),
        format!("riot_api_key: {} bytes", SECRET.len()),
        "the final newline is not part of it: {read}"
    );
    assert!(!d.log().contains(SECRET));
    assert!(!database_bytes(&d).contains(SECRET));
}

#[test]
fn a_secret_variable_in_a_job_env_grant_is_refused_with_its_position() {
    let dir = starter_dir();
    let path = dir.path().join("config/roost.toml");
    let mut text = std::fs::read_to_string(&path).expect("read");
    text.push_str(
        "\n[plugins.leaky.grants]\nsecrets = [\"riot_api_key\"]\nenv = [\"HOME\", \"ROOST_SECRET_RIOT_API_KEY\"]\n",
    );
    let line = text
        .lines()
        .position(|l| l.starts_with("env = "))
        .expect("line")
        + 1;
    std::fs::write(&path, text).expect("write");
    let out = roost_in(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("roost.toml:{line}:16")), "{err}");
    assert!(err.contains("plugins.leaky.grants.env[1]"), "{err}");
    assert!(err.contains("never passes to a job"), "{err}");
}
