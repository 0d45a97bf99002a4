//! A plugin pinned to a hub (`[plugins.NAME] run_on`) runs on that hub whichever hub leads:
//! its commands come to it through the leader's Discord connection, what it posts goes
//! out through the leader's delivery, and the leader runs no copy of it.

use roost_tests::fake_discord::{FakeDiscord, Posted};
use roost_tests::{BASE_CONFIG, Daemon, http_raw, hub_line, start_hub, test_pg};

/// The channel users talk in, and the `both` alias posts to.
const CHANNEL: u64 = 555;
/// A Discord user.
const USER: u64 = 2024;

/// Hub `name`'s config: the faulty plugin pinned to the laptop (and running while
/// `enabled`), everything else on the leader.
fn config(fake: &FakeDiscord, url: &str, name: &str, enabled: bool) -> String {
    let base = BASE_CONFIG.replace("[host]\n", &format!("[host]\nname = \"{name}\"\n"));
    let http = if name == "laptop" {
        "[http]\nlisten = \"127.0.0.1:0\"\n"
    } else {
        ""
    };
    format!(
        "{base}\n[channels.both]\ntargets = [\"discord:{CHANNEL}\"]\n\n\
         [plugins.faulty]\nrun_on = \"laptop\"\nenabled = {enabled}\n\n\
         [plugins.faulty.grants]\nchannels = [\"both\"]\n\n\
         [gateways.discord]\napi_base = \"{}\"\n\n\
         [store]\nurl = \"{url}\"\n\n{http}",
        fake.api_base()
    )
}

fn hub(fake: &FakeDiscord, url: &str, name: &str, standby: bool) -> Daemon {
    start_hub(&config(fake, url, name, true), standby)
}

fn contents(posted: &[Posted]) -> Vec<String> {
    posted.iter().map(|p| p.content.clone()).collect()
}

/// The leader `pi` with Discord, the standby `laptop` running the pinned plugin; returns
/// once the leader sees the laptop serve it.
fn two_hubs(fake: &FakeDiscord, url: &str) -> (Daemon, Daemon) {
    let pi = hub(fake, url, "pi", false);
    fake.wait_connected();
    let laptop = hub(fake, url, "laptop", true);
    let status = pi.chat_until("!status", |s| {
        hub_line(s, "laptop").ends_with("plugins faulty")
    });
    assert!(
        hub_line(&status, "laptop").starts_with("hub laptop: standby,"),
        "{status}"
    );
    let leader = hub_line(&status, "pi");
    assert!(
        leader.starts_with("hub pi: leader, this hub") && !leader.contains("faulty"),
        "the leader runs no copy of the pinned plugin: {status}"
    );
    (pi, laptop)
}

#[test]
fn a_plugin_pinned_to_a_standby_answers_and_posts_through_the_leaders_discord() {
    let fake = FakeDiscord::start();
    fake.set_rate_limits(false);
    let url = test_pg::fresh_url();
    let (pi, mut laptop) = two_hubs(&fake, &url);

    fake.user_says(CHANNEL, USER, "!kvset colour teal");
    assert_eq!(contents(&fake.wait_posted(CHANNEL, 1)), ["ok"]);
    fake.user_says(CHANNEL, USER, "!sendmany both 3 pinned");
    let mut posted = contents(&fake.wait_posted(CHANNEL, 5));
    // The reply and the plugin's own posts travel separately; each kind keeps its order.
    let own: Vec<&String> = posted.iter().filter(|p| p.starts_with("pinned-")).collect();
    assert_eq!(own, ["pinned-0", "pinned-1", "pinned-2"], "{posted:?}");
    posted.sort();
    assert_eq!(posted, ["ok", "pinned-0", "pinned-1", "pinned-2", "sent 3"]);
    // The laptop's own console reaches the plugin too, and sees what Discord wrote; what
    // the plugin posts from there goes out through the leader's Discord connection.
    assert_eq!(laptop.chat("!kvget colour").trim(), "teal");
    assert_eq!(laptop.chat("!send both from the laptop").trim(), "sent");
    let last = fake.wait_posted(CHANNEL, 6).pop().map(|p| p.content);
    assert_eq!(last.as_deref(), Some("from the laptop"));
    // The standby's status page serves too, and shows the plugin running there.
    let addr = laptop.http_addr();
    let page = http_raw(
        &addr,
        format!("GET /api/status HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(page.status, 200, "{}", page.body);
    let json: serde_json::Value = serde_json::from_str(&page.body).expect("json");
    let plugins: Vec<(&str, &str)> = json["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .filter_map(|p| Some((p["name"].as_str()?, p["state"].as_str()?)))
        .collect();
    assert_eq!(plugins, [("faulty", "running")], "{json}");
    // Managing it is the laptop's business.
    let (ok, reply) = pi.chat_outcome("!reload faulty");
    assert!(
        !ok && reply.contains("plugin `faulty` runs on the hub laptop, not on this one"),
        "{reply}"
    );

    // Once the laptop is gone its commands are gone with it: the leader never ran them.
    laptop.kill9();
    let reply = pi.chat_until("!kvget colour", |r| r.starts_with("unknown command"));
    assert!(reply.starts_with("unknown command !kvget"), "{reply}");
}

#[test]
fn a_standby_reloads_its_pinned_plugin_and_keeps_it_when_it_takes_over() {
    let fake = FakeDiscord::start();
    fake.set_rate_limits(false);
    let url = test_pg::fresh_url();
    let (mut pi, laptop) = two_hubs(&fake, &url);
    fake.user_says(CHANNEL, USER, "!kvset colour teal");
    assert_eq!(contents(&fake.wait_posted(CHANNEL, 1)), ["ok"]);

    // Config edits reach a standby: disabling the plugin there stops it, enabling starts it.
    laptop.write_config_raw(&config(&fake, &url, "laptop", false));
    pi.chat_until("!status", |s| hub_line(s, "laptop").ends_with("no plugins"));
    laptop.write_config_raw(&config(&fake, &url, "laptop", true));
    pi.chat_until("!status", |s| {
        hub_line(s, "laptop").ends_with("plugins faulty")
    });

    pi.kill9();
    // The new leader runs the leader's plugins and its own.
    laptop.chat_until("!status", |s| {
        let line = hub_line(s, "laptop");
        line.starts_with("hub laptop: leader, this hub") && line.ends_with("plugins bot,faulty")
    });
    fake.wait_for("the new leader's Discord connection", || {
        (fake.handshakes().0 >= 2 && fake.is_connected()).then_some(())
    });
    fake.user_says(CHANNEL, USER, "!kvget colour");
    assert_eq!(contents(&fake.wait_posted(CHANNEL, 2)), ["ok", "teal"]);
}
