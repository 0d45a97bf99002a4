//! The bot's chat commands through the console gateway.

use roost_tests::{Daemon, HELLO_WASM};

#[test]
fn ping_answers_pong() {
    let d = Daemon::start("");
    assert_eq!(d.chat("!ping").trim(), "pong");
}

#[test]
fn help_lists_every_plugins_commands_and_explains_one() {
    let d = Daemon::start_with_plugins("", &[("hello", HELLO_WASM)]);
    let help = d.chat("!help");
    for cmd in ["!ping", "!status", "!plugins", "!reload", "!hello"] {
        assert!(help.contains(cmd), "{cmd} missing from:\n{help}");
    }
    let one = d.chat("!help reload");
    assert!(one.contains("!reload <plugin>"), "{one}");
    assert!(one.contains("admin"), "the required role is shown: {one}");
    let unknown = d.chat("!help nosuch");
    assert!(unknown.contains("nosuch"), "{unknown}");
}

#[test]
fn an_unknown_command_suggests_the_nearest_one() {
    let d = Daemon::start("");
    let reply = d.chat("!pnig");
    assert!(reply.contains("unknown command !pnig"), "{reply}");
    assert!(reply.contains("did you mean !ping"), "{reply}");
}

#[test]
fn a_command_missing_arguments_answers_with_its_usage() {
    let d = Daemon::start("");
    let reply = d.chat("!reload");
    assert!(reply.contains("usage: !reload <plugin>"), "{reply}");
}

#[test]
fn status_and_plugins_describe_the_running_host() {
    let d = Daemon::start_with_plugins("", &[("hello", HELLO_WASM)]);
    let status = d.chat("!status");
    assert!(status.contains("up "), "uptime line: {status}");
    assert!(status.contains("bot"), "{status}");
    assert!(status.contains("hello"), "{status}");
    assert!(status.contains("outbox"), "{status}");
    let plugins = d.chat("!plugins");
    assert!(
        plugins.contains("bot") && plugins.contains("hello"),
        "{plugins}"
    );
    assert!(plugins.contains("running"), "{plugins}");
    // `roost status` is the same, without needing to know the prefix.
    let out = d.roost(&["status"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello"));
}

#[test]
fn quoted_arguments_reach_the_plugin_as_single_words() {
    let d = Daemon::start_with_plugins("", &[("hello", HELLO_WASM)]);
    assert_eq!(d.chat("!hello 'big world'").trim(), "hello, big world!");
}

#[test]
fn a_non_admin_cannot_reload() {
    let d = Daemon::start("[commands.ping]\nrole = \"anyone\"\n");
    // Demote the console: roles are read from config on every command.
    d.write_config_raw(&roost_tests::BASE_CONFIG.replace("admin = [\"console\"]", "admin = []"));
    let reply = d.chat_until("!reload bot", |r| r.contains("not allowed"));
    assert!(reply.contains("needs role admin"), "{reply}");
    assert!(reply.contains("console has role anyone"), "{reply}");
    assert_eq!(d.chat("!ping").trim(), "pong", "anyone may still ping");
}

#[test]
fn config_can_raise_the_role_a_command_needs() {
    let config = roost_tests::BASE_CONFIG.replace(
        "admin = [\"console\"]",
        "admin = []\ntrusted = [\"console\"]",
    ) + "\n[commands.ping]\nrole = \"admin\"\n";
    let d = Daemon::start("");
    d.write_config_raw(&config);
    let reply = d.chat_until("!ping", |r| r.contains("not allowed"));
    assert!(reply.contains("has role trusted"), "{reply}");
}

#[test]
fn one_flooding_identity_is_rate_limited() {
    let config = roost_tests::BASE_CONFIG.replace(
        "per_minute = 0",
        "per_minute = 6\nburst = 2\nlimit_admins = true",
    );
    let d = Daemon::start("");
    d.write_config_raw(&config);
    let reply = d.chat_until("!ping", |r| r.contains("slow down"));
    assert!(reply.contains("try again in"), "{reply}");
}

#[test]
fn chat_without_a_daemon_says_how_to_start_one() {
    let mut d = Daemon::start("");
    d.signal("TERM");
    assert!(d.wait_exit().success(), "SIGTERM is a clean exit");
    assert!(!d.socket().exists(), "the socket is removed on shutdown");
    let out = d.roost(&["chat", "-c", "!ping"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no roost daemon") && err.contains("roost run"),
        "{err}"
    );
}

#[test]
fn a_plugin_announcement_reaches_the_console() {
    let d = Daemon::start_with_plugins(
        "[plugins.faulty.grants]\nchannels = [\"announce\"]\n",
        &[("faulty", roost_tests::FAULTY_WASM)],
    );
    assert_eq!(d.chat("!send announce hello-console").trim(), "sent");
    d.wait_for_post("hello-console");
}
