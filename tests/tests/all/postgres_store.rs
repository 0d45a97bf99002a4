//! The hub on Postgres (`[store] url`): the real binary against the test server (a
//! throwaway cluster, or `ROOST_TEST_PG`). A plugin's KV survives a restart, replies go
//! through, the password stays out of the log and the environment, and a wrong password
//! stops the start with exit 2 and a message that names the problem, and a database that
//! goes away stops the hub serving until it is back, with no acknowledged write lost.

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

#[test]
fn a_wrong_store_password_exits_2_naming_the_problem_not_the_password() {
    let url = test_pg::fresh_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("roost.toml");
    std::fs::write(&path, config(&url)).expect("write config");
    let wrong = "wrong-Pw-4d1f";
    let mut child = Command::new(roost_bin())
        .arg("--config")
        .arg(&path)
        .arg("run")
        .env_remove("RUST_LOG")
        .env("ROOST_STORE_PASSWORD", wrong)
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
            panic!("roost started with a wrong store password (does the server check passwords?)");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(2), "{stderr}");
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
