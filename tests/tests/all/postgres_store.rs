//! The hub on Postgres (`[store] url`): the real binary against the test server (a
//! throwaway cluster, or `ROOST_TEST_PG`). A plugin's KV survives a restart, replies go
//! through, the password stays out of the log and the environment, and a wrong password
//! stops the start with exit 2 and a message that names the problem, and a database that
//! goes away stops the hub serving until it is back, with no acknowledged write lost. Over
//! TLS (`sslmode=require`) only a server whose certificate the hub trusts is used, and a
//! hub does not start while a roost of another version migrates the store.

use std::process::{Command, Stdio};
use std::time::Instant;

use roost_tests::{
    BASE_CONFIG, Daemon, FAULTY_WASM, PATIENCE, roost_bin, store_password_env, test_pg,
};

fn config(url: &str) -> String {
    format!("{BASE_CONFIG}\n[store]\nurl = \"{url}\"\n")
}

#[test]
fn a_hub_on_postgres_keeps_plugin_kv_across_a_restart_and_replies() {
    let url = test_pg::fresh_url();
    let password = test_pg::server().password.clone();
    let env = store_password_env();
    let mut d = Daemon::start_full(&config(&url), &[("faulty", FAULTY_WASM)], &env);
    assert_eq!(d.chat("!kvset colour teal").trim(), "ok");
    assert_eq!(d.chat("!kvget colour").trim(), "teal");
    assert_eq!(d.chat("!ping").trim(), "pong");
    assert!(
        !d.dir().join("data/roost.db").exists(),
        "nothing is written to SQLite"
    );
    if let Some(password) = &password {
        let environ = std::fs::read(format!("/proc/{}/environ", d.pid())).expect("environ");
        assert!(
            !String::from_utf8_lossy(&environ).contains(password.as_str()),
            "the password was taken out of the daemon's environment"
        );
    }
    d.kill9();
    d.restart();
    assert_eq!(
        d.chat("!kvget colour").trim(),
        "teal",
        "survived the restart"
    );
    let log = d.log();
    assert!(log.contains("store on postgres"), "{log}");
    if let Some(password) = &password {
        assert!(
            !log.contains(password.as_str()),
            "the password is never logged"
        );
    }
}

/// Runs `roost run` on `config` with `env` added until it exits (it must, within
/// [`PATIENCE`]: `why` says why it should); its exit code and stderr.
fn run_until_exit(config: &str, env: &[(&str, &str)], why: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("roost.toml");
    std::fs::write(&path, config).expect("write config");
    let mut child = Command::new(roost_bin())
        .arg("--config")
        .arg(&path)
        .arg("run")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn roost run");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("roost started, {why}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = child.wait_with_output().expect("output");
    (
        status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_wrong_store_password_exits_2_naming_the_problem_not_the_password() {
    let url = test_pg::fresh_url();
    let wrong = "wrong-Pw-4d1f";
    let (status, stderr) = run_until_exit(
        &config(&url),
        &[("ROOST_STORE_PASSWORD", wrong)],
        "with a wrong store password (does the server check passwords?)",
    );
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot connect to the store database postgres://roost@"),
        "{stderr}"
    );
    assert!(
        stderr.contains("password authentication failed"),
        "{stderr}"
    );
    assert!(!stderr.contains(wrong), "{stderr}");
}

/// A new certificate authority (its PEM), and a certificate for 127.0.0.1 it signed with
/// that certificate's key (PEM).
fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// The store password, and the one file of CAs the hub trusts.
fn tls_env<'a>(password: &'a str, ca_file: &'a str) -> [(&'static str, &'a str); 2] {
    [
        ("ROOST_STORE_PASSWORD", password),
        ("SSL_CERT_FILE", ca_file),
    ]
}

#[test]
fn a_hub_reaches_a_tls_only_postgres_with_sslmode_require_and_trusts_only_its_ca() {
    let (ca, cert, key) = certificates();
    let (other_ca, _, _) = certificates();
    let cluster = test_pg::Cluster::start_tls(&cert, &key).expect("a TLS-only cluster");
    let pg = cluster.server();
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca_file, other_file) = (dir.path().join("ca.pem"), dir.path().join("other.pem"));
    std::fs::write(&ca_file, ca).expect("write ca");
    std::fs::write(&other_file, other_ca).expect("write ca");
    let password = pg.password.clone().unwrap_or_default();
    let tls_url = format!("{}?sslmode=require", pg.url);
    let (ca, other) = (
        ca_file.display().to_string(),
        other_file.display().to_string(),
    );

    // This server takes no plain-text connection: without sslmode=require there is none.
    let (status, stderr) = run_until_exit(
        &config(&pg.url),
        &tls_env(&password, &ca),
        "in plain text on a TLS-only server",
    );
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("no pg_hba.conf entry"), "{stderr}");

    // TLS to a server whose certificate a CA signed that this hub does not trust.
    let (status, stderr) = run_until_exit(
        &config(&tls_url),
        &tls_env(&password, &other),
        "trusting the wrong CA",
    );
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");

    // Trusting the server's CA, the hub runs on it.
    let env = tls_env(&password, &ca);
    let d = Daemon::start_full(&config(&tls_url), &[("faulty", FAULTY_WASM)], &env);
    assert_eq!(d.chat("!kvset colour teal").trim(), "ok");
    assert_eq!(d.chat("!kvget colour").trim(), "teal");
}

#[test]
fn a_database_that_goes_away_stops_the_hub_serving_until_it_is_back_and_loses_no_acknowledged_write()
 {
    // A cluster of this test's own, since it is stopped (the others share one).
    let cluster = test_pg::Cluster::start(false).expect("a Postgres cluster");
    let pg = cluster.server();
    let password = pg.password.clone().expect("the cluster has a password");
    let env = [("ROOST_STORE_PASSWORD", password.as_str())];
    let d = Daemon::start_full(&config(&pg.url), &[("faulty", FAULTY_WASM)], &env);
    for i in 0..20 {
        assert_eq!(d.chat(&format!("!kvset k{i} v{i}")).trim(), "ok");
    }

    cluster.stop().expect("stop the database");
    let reply = d.chat_until("!ping", |r| !r.contains("pong"));
    assert!(reply.contains("unknown command"), "{reply}");
    let (acknowledged, reply) = d.chat_outcome("!kvset during outage");
    assert!(!acknowledged && !reply.contains("ok"), "{reply}");

    cluster.resume().expect("start the database again");
    d.chat_until("!ping", |r| r.trim() == "pong");
    for i in 0..20 {
        assert_eq!(d.chat(&format!("!kvget k{i}")).trim(), format!("v{i}"));
    }
    assert_eq!(d.chat("!kvset after back").trim(), "ok");
}

#[test]
fn a_hub_refuses_to_start_while_another_roost_version_migrates_its_store() {
    let url = test_pg::fresh_url();
    let env = store_password_env();
    // Another roost, 0.0.1, in the middle of migrating this store: what its migrating
    // connection calls itself (its schema after its version).
    let mut other: postgres::Config = url.parse().expect("url");
    if let Some(password) = &test_pg::server().password {
        other.password(password);
    }
    let mut other = other.connect(postgres::NoTls).expect("connect");
    other
        .batch_execute(
            "SELECT set_config('application_name', 'roost-migrate 0.0.1 ' || current_schema(), false)",
        )
        .expect("name the connection");
    let (status, stderr) = run_until_exit(&config(&url), &env, "while another version migrates");
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("is being migrated by roost 0.0.1 now; start this roost"),
        "{stderr}"
    );
    // Once that migration is over, the hub starts.
    drop(other);
    let d = Daemon::start_full(&config(&url), &[], &env);
    assert_eq!(d.chat("!ping").trim(), "pong");
}
