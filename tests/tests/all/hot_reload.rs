//! Plugins and config change under a running daemon: added, upgraded, broken, removed;
//! good and bad config edits; SIGHUP; `!reload`, `!enable`, `!disable`.

use std::time::Instant;

use roost_tests::{Daemon, FAULTY_WASM, HELLO_WASM};

#[test]
fn a_dropped_plugin_is_served_without_a_restart() {
    let d = Daemon::start("");
    assert!(!d.chat("!help").contains("!hello"));
    let t0 = Instant::now();
    d.drop_plugin("hello", HELLO_WASM);
    d.chat_until("!help", |r| r.contains("!hello"));
    eprintln!("dropped plugin served after {:?}", t0.elapsed());
    assert_eq!(d.chat("!hello you").trim(), "hello, you!");
}

#[test]
fn an_upgraded_build_replaces_the_old_one() {
    let d = Daemon::start_with_plugins("", &[("extra", HELLO_WASM)]);
    assert_eq!(d.chat("!hello").trim(), "hello, world!");
    d.drop_plugin("extra", FAULTY_WASM);
    d.chat_until("!help", |r| r.contains("!spin") && !r.contains("!hello"));
    assert!(d.chat("!hello").contains("unknown command"));
}

#[test]
fn a_broken_build_leaves_the_old_one_serving_and_says_why() {
    let d = Daemon::start_with_plugins("", &[("hello", HELLO_WASM)]);
    let garbage = d.dir().join("garbage.wasm");
    std::fs::write(&garbage, b"this is not wasm").expect("write");
    d.drop_plugin("hello", garbage.to_str().expect("utf-8 path"));
    let status = d.chat_until("!status", |r| r.contains("hello.wasm"));
    assert!(
        status.contains("failed to parse") || status.contains("magic"),
        "reason: {status}"
    );
    assert_eq!(
        d.chat("!hello").trim(),
        "hello, world!",
        "the old build keeps serving"
    );
}

#[test]
fn a_component_of_another_world_is_rejected_by_name() {
    let d = Daemon::start_with_plugins("", &[("hello", HELLO_WASM)]);
    // The smallest valid component: it exports nothing, so it is not a roost plugin.
    let empty = d.dir().join("empty.wasm");
    std::fs::write(&empty, b"\0asm\x0d\x00\x01\x00").expect("write");
    d.drop_plugin("hello", empty.to_str().expect("utf-8 path"));
    let status = d.chat_until("!status", |r| r.contains("not a roost plugin"));
    assert!(status.contains("hello"), "{status}");
    assert_eq!(d.chat("!hello").trim(), "hello, world!");
}

#[test]
fn a_removed_plugin_stops_serving() {
    let d = Daemon::start_with_plugins("", &[("hello", HELLO_WASM)]);
    std::fs::remove_file(d.plugins_dir().join("hello.wasm")).expect("remove");
    d.chat_until("!hello", |r| r.contains("unknown command"));
}

#[test]
fn config_edits_enable_disable_and_reconfigure_live() {
    let d = Daemon::start_with_plugins("", &[("hello", HELLO_WASM)]);
    d.rewrite_config("[plugins.hello]\nenabled = false\n");
    d.chat_until("!hello", |r| r.contains("unknown command"));
    assert!(d.chat("!plugins").contains("disabled"));
    d.rewrite_config(
        "[plugins.hello]\nenabled = true\n[plugins.hello.config]\ngreeting = \"hi\"\n",
    );
    d.chat_until("!hello", |r| r.contains("hi, world!"));
}

#[test]
fn a_bad_config_edit_is_rejected_with_its_position_and_the_old_config_stays() {
    let d = Daemon::start_with_plugins("", &[("hello", HELLO_WASM)]);
    let mut bad = roost_tests::BASE_CONFIG.to_string();
    bad.push_str("\n[plugins.hello]\nenabeld = false\n");
    let line = bad
        .lines()
        .position(|l| l.starts_with("enabeld"))
        .expect("line")
        + 1;
    d.write_config_raw(&bad);
    let status = d.chat_until("!status", |r| r.contains("rejected"));
    assert!(
        status.contains(&format!("roost.toml:{line}:1")),
        "file:line:column in {status}"
    );
    assert!(status.contains("enabeld"), "{status}");
    assert!(status.contains("old config kept"), "{status}");
    assert_eq!(d.chat("!hello").trim(), "hello, world!", "still served");
    // A syntax error too.
    d.write_config_raw("[host\n");
    d.chat_until("!status", |r| r.contains("roost.toml:1:"));
    assert_eq!(d.chat("!ping").trim(), "pong");
}

#[test]
fn sighup_reloads_a_config_edit_the_watch_cannot_see() {
    // The config is a symlink into a directory the daemon does not watch (a dotfiles
    // checkout, say): edits there need SIGHUP.
    let d = Daemon::start_with_plugins("", &[("hello", HELLO_WASM)]);
    let real_dir = d.dir().join("dotfiles");
    std::fs::create_dir(&real_dir).expect("mkdir");
    let real = real_dir.join("roost.toml");
    let config = std::fs::read_to_string(d.config_path()).expect("read config");
    let disabled = format!("{config}\n[plugins.hello]\nenabled = false\n");
    std::fs::write(&real, &disabled).expect("write config");
    let link = d.dir().join(".roost.toml.link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    std::fs::rename(&link, d.config_path()).expect("rename the symlink over the config");
    d.chat_until("!hello", |r| r.contains("unknown command"));
    // Edit the real file in place: only the signal can apply it.
    std::fs::write(&real, &config).expect("write config");
    d.signal("HUP");
    d.chat_until("!hello", |r| r.trim() == "hello, world!");
}

#[test]
fn reload_enable_and_disable_from_chat() {
    let d = Daemon::start_with_plugins("", &[("hello", HELLO_WASM)]);
    let reply = d.chat("!reload hello");
    assert!(
        reply.contains("reloaded hello") && reply.contains("0.1.0"),
        "{reply}"
    );
    let reply = d.chat("!disable hello");
    assert!(reply.contains("hello"), "{reply}");
    assert!(d.chat("!hello").contains("unknown command"));
    let reply = d.chat("!enable hello");
    assert!(reply.contains("hello"), "{reply}");
    assert_eq!(d.chat("!hello").trim(), "hello, world!");
    let reply = d.chat("!reload nosuch");
    assert!(reply.contains("no plugin `nosuch`"), "{reply}");
}

#[test]
fn reload_releases_the_old_instances_timers() {
    let d = Daemon::start_with_plugins("", &[("faulty", FAULTY_WASM)]);
    assert!(!d.chat("!timer 1500 old").contains("failed"));
    assert!(d.chat("!reload faulty").contains("reloaded"));
    assert!(!d.chat("!timer 100 new").contains("failed"));
    // Set after the old timer and due later: once it fires, the old one would have.
    assert!(!d.chat("!timer 1600 later").contains("failed"));
    d.chat_until("!kvget fired/new", |r| r.trim() == "1");
    d.chat_until("!kvget fired/later", |r| r.trim() == "1");
    assert_eq!(
        d.chat("!kvget fired/old").trim(),
        "(none)",
        "the old instance's timer died with it"
    );
}
