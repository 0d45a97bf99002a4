//! A plugin that spins, allocates 1 GiB, traps or panics: the caller gets a clear error, the
//! host lives, other plugins keep answering, and the plugin serves again after its rebuild.

use roost_tests::{Daemon, FAULTY_WASM};

use crate::hardening::{chat_in_background, wait_until};

/// The faulty plugin with a short time limit, so the spin test is quick.
fn daemon() -> Daemon {
    Daemon::start_with_plugins(
        "[plugins.faulty.limits]\ncall_timeout_ms = 1000\n",
        &[("faulty", FAULTY_WASM)],
    )
}

/// After a failure the plugin comes back (rebuilt with backoff) and answers again.
fn serves_again(d: &Daemon) {
    let reply = d.chat_until("!version", |r| {
        !r.contains("unavailable") && !r.contains("failed")
    });
    assert!(!reply.trim().is_empty(), "version answered: {reply}");
}

/// Whether plugin's `spinning` marker (faulty's, under any name) is in the database.
fn spin_started(d: &Daemon, plugin: &str) -> bool {
    rusqlite::Connection::open(d.db_path())
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM kv WHERE plugin = ?1 AND key = 'spinning'",
                [plugin],
                |r| r.get::<_, i64>(0),
            )
        })
        .is_ok_and(|n| n == 1)
}

/// Once each of `plugins` has begun its spin, the bot answers three `!ping`s.
fn pings_answered_while_spinning(d: &Daemon, plugins: &[&str]) {
    wait_until("the spins began", || {
        plugins.iter().all(|p| spin_started(d, p))
    });
    for _ in 0..3 {
        assert_eq!(d.chat("!ping").trim(), "pong");
    }
}

#[test]
fn a_spinning_plugin_times_out_while_the_bot_keeps_answering() {
    // Three seconds: room for the pings below on a loaded machine.
    let d = Daemon::start_with_plugins(
        "[plugins.faulty.limits]\ncall_timeout_ms = 3000\n",
        &[("faulty", FAULTY_WASM)],
    );
    let spin = chat_in_background(&d, "!spin");
    // While faulty spins, the bot is not slowed: several pings complete meanwhile.
    pings_answered_while_spinning(&d, &["faulty"]);
    assert!(
        !spin.is_finished(),
        "the pings finished before the spin's deadline"
    );
    let reply = spin.join().expect("spin thread");
    assert!(
        reply.contains("plugin faulty failed: timed out after 3000 ms"),
        "{reply}"
    );
    serves_again(&d);
    let status = d.chat("!status");
    assert!(
        status.contains("timed out"),
        "last error in status: {status}"
    );
}

#[test]
fn as_many_spinning_plugins_as_workers_leave_the_bot_answering() {
    // Two runtime workers, each with a spinning plugin to run: only their yields at every
    // epoch tick let the bot's commands through.
    let config = format!(
        "{}\n[plugins.faulty.limits]\ncall_timeout_ms = 5000\n\
         [plugins.faulty-2.limits]\ncall_timeout_ms = 5000\n",
        roost_tests::BASE_CONFIG
    );
    let d = Daemon::start_full(
        &config,
        &[("faulty", FAULTY_WASM), ("faulty-2", FAULTY_WASM)],
        &[("TOKIO_WORKER_THREADS", "2")],
    );
    let spins = ["!spin", "!faulty-2:spin"].map(|command| chat_in_background(&d, command));
    pings_answered_while_spinning(&d, &["faulty", "faulty-2"]);
    assert!(
        spins.iter().all(|s| !s.is_finished()),
        "the pings finished before the spins' deadline"
    );
    for spin in spins {
        let reply = spin.join().expect("spin thread");
        assert!(reply.contains("timed out after 5000 ms"), "{reply}");
    }
}

#[test]
fn a_memory_bomb_is_stopped_at_the_limit() {
    let d = daemon();
    let reply = d.chat("!alloc 1024");
    assert!(reply.contains("plugin faulty failed"), "{reply}");
    assert!(reply.contains("memory limit of 64 MiB"), "{reply}");
    assert_eq!(d.chat("!ping").trim(), "pong");
    serves_again(&d);
    // A modest allocation under the limit is fine.
    let ok = d.chat("!alloc 8");
    assert!(!ok.contains("failed"), "{ok}");
}

#[test]
fn a_trap_is_reported_and_the_plugin_is_rebuilt() {
    let d = daemon();
    let reply = d.chat("!trap");
    assert!(reply.contains("plugin faulty failed: crashed"), "{reply}");
    assert!(reply.contains("unreachable"), "{reply}");
    serves_again(&d);
}

#[test]
fn a_panic_shows_its_message() {
    let d = daemon();
    let reply = d.chat("!panic");
    assert!(reply.contains("plugin faulty failed"), "{reply}");
    assert!(reply.contains("faulty panicked on purpose"), "{reply}");
    serves_again(&d);
    let status = d.chat("!status");
    let line = status
        .lines()
        .find(|l| l.starts_with("faulty "))
        .unwrap_or_else(|| panic!("no faulty line: {status}"));
    assert!(line.contains("running"), "{line}");
    assert!(line.contains("failures 1"), "{line}");
    assert!(
        line.contains("last error: crashed: panicked at")
            && line.contains("faulty panicked on purpose"),
        "{line}"
    );
}

#[test]
fn a_plugin_whose_init_fails_stays_out_with_its_reason() {
    let d = Daemon::start_with_plugins(
        "[plugins.faulty.config]\nfail_init = true\n",
        &[("faulty", FAULTY_WASM)],
    );
    let status = d.chat("!status");
    assert!(
        status.contains("init refused: fail_init is set"),
        "{status}"
    );
    let reply = d.chat("!version");
    assert!(reply.contains("unknown command"), "{reply}");
    assert_eq!(d.chat("!ping").trim(), "pong");
}

#[test]
fn a_timer_set_by_a_plugin_fires_into_it() {
    let d = Daemon::start_with_plugins("", &[("faulty", FAULTY_WASM)]);
    assert!(!d.chat("!timer 50 t1").contains("failed"));
    d.chat_until("!kvget fired/t1", |r| r.trim() == "1");
}

/// `!status` shows what each plugin holds (timers, jobs), so a plugin that leaks them is
/// seen before it hits its limits.
#[test]
fn status_shows_the_timers_and_jobs_a_plugin_holds() {
    let d = Daemon::start_with_plugins(
        "[plugins.faulty.grants]\nprograms = [\"sleep\"]\nprocess_dirs = [\".\"]\n",
        &[("faulty", FAULTY_WASM)],
    );
    let faulty_line = |status: String| {
        status
            .lines()
            .find(|l| l.starts_with("faulty "))
            .unwrap_or_default()
            .to_string()
    };
    let line = faulty_line(d.chat("!status"));
    assert!(line.contains("timers fired · failures 0"), "{line}");
    assert!(d.chat("!timer 600000 long").contains("set"));
    let line = faulty_line(d.chat("!status"));
    assert!(line.contains("timers fired · 1 timer · failures"), "{line}");
    let dir = d.dir().display().to_string();
    let started = d.chat(&format!("!job {dir} sleep 600"));
    let id = started
        .trim()
        .strip_prefix("job ")
        .unwrap_or_else(|| panic!("job not started: {started}"))
        .to_string();
    let line = faulty_line(d.chat("!status"));
    assert!(line.contains(" · 1 timer, 1 job running · "), "{line}");
    assert_eq!(d.chat(&format!("!cancel {id}")).trim(), "cancelled");
    let status = d.chat_until("!status", |s| !faulty_line(s.to_string()).contains("job"));
    let line = faulty_line(status);
    assert!(line.contains(" · 1 timer · "), "{line}");
}
