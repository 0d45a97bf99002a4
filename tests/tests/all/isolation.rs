//! Least privilege: one plugin's storage is invisible to another, an ungranted channel is
//! refused, and admin commands are refused to plugins without the admin grant.

use roost_tests::{Daemon, FAULTY_WASM};

#[test]
fn a_plugin_cannot_read_or_write_another_plugins_kv() {
    // Two instances of the same build under different names: same code, same keys, and
    // still separate namespaces. `!plugin:command` addresses one of them.
    let d = Daemon::start_with_plugins("", &[("alpha", FAULTY_WASM), ("beta", FAULTY_WASM)]);
    assert!(d.chat("!alpha:kvset secret s3cr3t").contains("ok"));
    assert_eq!(d.chat("!alpha:kvget secret").trim(), "s3cr3t");
    assert_eq!(
        d.chat("!beta:kvget secret").trim(),
        "(none)",
        "beta cannot read alpha's key"
    );
    assert!(d.chat("!beta:kvset secret overwritten").contains("ok"));
    assert_eq!(
        d.chat("!alpha:kvget secret").trim(),
        "s3cr3t",
        "beta's write did not touch alpha's"
    );
    assert_eq!(d.chat("!beta:kvget secret").trim(), "overwritten");
    // Unqualified, the first plugin by name answers.
    assert_eq!(d.chat("!kvget secret").trim(), "s3cr3t");
}

#[test]
fn an_ungranted_channel_is_refused() {
    let d = Daemon::start_with_plugins("", &[("faulty", FAULTY_WASM)]);
    let reply = d.chat("!send announce hi");
    assert!(reply.contains("not granted"), "{reply}");
    assert!(
        reply.contains("[plugins.faulty.grants]"),
        "says how to grant it: {reply}"
    );
}

#[test]
fn only_the_bot_has_the_admin_grant() {
    // The bot without its admin grant cannot control plugins either: no bypass for
    // first-party plugins.
    let config = roost_tests::BASE_CONFIG.replace("admin = true", "admin = false");
    let d = Daemon::start("");
    d.write_config_raw(&config);
    let reply = d.chat_until("!plugins", |r| r.contains("not granted"));
    assert!(reply.contains("admin"), "{reply}");
}
