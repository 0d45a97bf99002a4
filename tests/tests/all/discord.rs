//! The Discord gateway: the real `roost` binary, its serenity client logged into the fake
//! Discord of `roost_tests::fake_discord` on 127.0.0.1.

use roost_tests::fake_discord::{FakeDiscord, Fault, TOKEN};
use roost_tests::{BASE_CONFIG, Daemon, FAULTY_WASM};

/// A channel people talk in.
const CHANNEL: u64 = 111;
/// The channel the `both` alias posts to.
const ALIAS_CHANNEL: u64 = 444;
/// Someone with no role.
const USER: u64 = 222;
/// Someone listed as admin.
const ADMIN: u64 = 333;

/// [`BASE_CONFIG`] with a Discord gateway pointed at `fake`, an admin on Discord, a `both`
/// alias (console and a Discord channel) and the faulty plugin allowed to post to it.
fn config(fake: &FakeDiscord, gateway_extra: &str) -> String {
    let base = BASE_CONFIG.replace(
        "admin = [\"console\"]",
        &format!("admin = [\"console\", \"discord:{ADMIN}\"]"),
    );
    format!(
        "{base}\n[channels.both]\ntargets = [\"console\", \"discord:{ALIAS_CHANNEL}\"]\n\n\
         [plugins.faulty.grants]\nchannels = [\"both\"]\n\n\
         [gateways.discord]\napi_base = \"{}\"\nhealth_probe_secs = 5\n{gateway_extra}\n",
        fake.api_base()
    )
}

fn start(fake: &FakeDiscord) -> Daemon {
    start_with_token(fake, TOKEN)
}

fn start_with_token(fake: &FakeDiscord, token: &str) -> Daemon {
    Daemon::start_full(
        &config(fake, ""),
        &[("faulty", FAULTY_WASM)],
        &[("ROOST_DISCORD_TOKEN", token)],
    )
}

fn contents(posted: &[roost_tests::fake_discord::Posted]) -> Vec<String> {
    posted.iter().map(|p| p.content.clone()).collect()
}

#[test]
fn ping_on_discord_is_answered_in_the_same_channel_with_a_nonce_and_no_pings() {
    let fake = FakeDiscord::start();
    let _d = start(&fake);
    fake.wait_connected();
    fake.user_says(CHANNEL, USER, "!ping");
    let posted = fake.wait_posted(CHANNEL, 1);
    assert_eq!(contents(&posted), ["pong"]);
    let reply = &posted[0];
    assert!(reply.nonce.is_some(), "replies carry a nonce");
    assert!(reply.enforce_nonce, "and ask Discord to enforce it");
    assert_eq!(
        reply.body["allowed_mentions"]["parse"],
        serde_json::json!([])
    );
}

#[test]
fn the_bot_ignores_its_own_messages_and_other_bots() {
    let fake = FakeDiscord::start();
    let _d = start(&fake);
    fake.wait_connected();
    // The fake echoes every message the bot posts back on the gateway, as Discord does; a bot
    // that answered its own "pong" (or anything) would post a second message.
    fake.user_says(CHANNEL, USER, "!ping");
    fake.wait_posted(CHANNEL, 1);
    fake.user_says(CHANNEL, USER, "!plugins");
    let posted = fake.wait_posted(CHANNEL, 2);
    assert_eq!(posted.len(), 2, "{:?}", contents(&posted));
}

#[test]
fn slash_commands_are_registered_with_their_usage_and_answered() {
    let fake = FakeDiscord::start();
    let _d = start(&fake);
    fake.wait_connected();
    let commands = fake.wait_for("slash commands for ping and reload", || {
        let c = fake.commands();
        let has = |n: &str| c.iter().any(|c| c["name"] == n);
        (has("ping") && has("reload") && has("send")).then_some(c)
    });
    let reload = commands
        .iter()
        .find(|c| c["name"] == "reload")
        .expect("reload");
    let usage = reload["options"][0]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(usage.contains("/reload <plugin>"), "{reload}");
    assert_eq!(reload["options"][0]["required"], true, "{reload}");

    let id = fake.user_runs_slash(CHANNEL, USER, "ping", None);
    let response = fake.wait_for("the interaction response", || {
        fake.interaction_responses()
            .into_iter()
            .find(|(i, _)| *i == id)
    });
    assert_eq!(response.1["type"], 4);
    assert_eq!(response.1["data"]["content"], "pong");
}

#[test]
fn roles_apply_to_discord_identities() {
    let fake = FakeDiscord::start();
    let _d = start(&fake);
    fake.wait_connected();
    fake.user_says(CHANNEL, USER, "!reload bot");
    let denied = fake.wait_posted(CHANNEL, 1);
    assert!(
        denied[0].content.contains("not allowed")
            && denied[0]
                .content
                .contains(&format!("discord:{USER} has role anyone")),
        "{}",
        denied[0].content
    );
    fake.user_says(CHANNEL, ADMIN, "!reload bot");
    let allowed = fake.wait_posted(CHANNEL, 2);
    assert!(
        !allowed[1].content.contains("not allowed"),
        "{}",
        allowed[1].content
    );
}

#[test]
fn an_alias_reaches_discord_and_the_console() {
    let fake = FakeDiscord::start();
    let d = start(&fake);
    fake.wait_connected();
    assert_eq!(d.chat("!send both hello-both").trim(), "sent");
    let posted = fake.wait_posted(ALIAS_CHANNEL, 1);
    assert_eq!(contents(&posted), ["hello-both"]);
    d.wait_for_post("hello-both");
}

#[test]
fn messages_queued_while_discord_is_down_arrive_once_in_order_after_a_restart() {
    let fake = FakeDiscord::start();
    let mut d = start(&fake);
    fake.wait_connected();
    fake.stop();
    for i in 0..5 {
        assert_eq!(d.chat(&format!("!send both queued-{i}")).trim(), "sent");
    }
    let status = d.chat_until("!status", |s| s.contains("outbox discord:444: 5 queued"));
    assert!(status.contains("retrying"), "{status}");
    // The daemon dies while Discord is away; the queue is on disk.
    d.kill9();
    d.restart();
    let status = d.chat("!status");
    assert!(status.contains("outbox discord:444: 5 queued"), "{status}");
    fake.start_again();
    let posted = fake.wait_posted(ALIAS_CHANNEL, 5);
    let expected: Vec<String> = (0..5).map(|i| format!("queued-{i}")).collect();
    assert_eq!(contents(&posted), expected);
    d.chat_until("!status", |s| !s.contains("outbox discord:444"));
    assert_eq!(
        fake.posted_in(ALIAS_CHANNEL).len(),
        5,
        "nothing posted twice"
    );
}

#[test]
fn a_429_with_retry_after_is_honoured_and_order_kept() {
    let fake = FakeDiscord::start();
    let d = start(&fake);
    fake.wait_connected();
    fake.fail_next_post(Fault::Status {
        code: 429,
        retry_after: 0.5,
    });
    fake.fail_next_post(Fault::Status {
        code: 503,
        retry_after: 0.0,
    });
    assert_eq!(d.chat("!send both first").trim(), "sent");
    assert_eq!(d.chat("!send both second").trim(), "sent");
    let posted = fake.wait_posted(ALIAS_CHANNEL, 2);
    assert_eq!(contents(&posted), ["first", "second"]);
    let attempts = fake
        .requests()
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.path
                    .ends_with(&format!("/channels/{ALIAS_CHANNEL}/messages"))
        })
        .count();
    assert_eq!(attempts, 4, "429, 503, then one each");
}

#[test]
fn a_retry_after_an_ambiguous_failure_does_not_post_twice() {
    let fake = FakeDiscord::start();
    let d = start(&fake);
    fake.wait_connected();
    fake.fail_next_post(Fault::CreateThenFail);
    assert_eq!(d.chat("!send both exactly-once").trim(), "sent");
    let posts = fake.wait_for("the retry", || {
        let posts: Vec<_> = fake
            .requests()
            .into_iter()
            .filter(|r| {
                r.method == "POST"
                    && r.path
                        .ends_with(&format!("/channels/{ALIAS_CHANNEL}/messages"))
            })
            .collect();
        (posts.len() >= 2).then_some(posts)
    });
    assert_eq!(
        posts[0].body["nonce"], posts[1].body["nonce"],
        "the retry reuses the nonce"
    );
    d.chat_until("!status", |s| !s.contains("outbox discord:444"));
    assert_eq!(contents(&fake.posted_in(ALIAS_CHANNEL)), ["exactly-once"]);
}

#[test]
fn five_forced_reconnects_still_give_exactly_one_reply_per_message() {
    let fake = FakeDiscord::start();
    // Every RESUME replays the whole session: events the bot already handled come again.
    fake.replay_all_on_resume(true);
    let d = start(&fake);
    fake.wait_connected();
    for round in 0..5u32 {
        fake.user_says(CHANNEL, USER, "!ping");
        fake.wait_posted(CHANNEL, round as usize + 1);
        if round % 2 == 0 {
            fake.send_reconnect();
        } else {
            fake.close_connection(4000);
        }
        fake.wait_for("a resume", || (fake.handshakes().1 > round).then_some(()));
        fake.wait_connected();
    }
    // A last command after the replays: once its answer is out, every replay was handled.
    fake.user_says(CHANNEL, USER, "!help ping");
    let posted = fake.wait_posted(CHANNEL, 6);
    let pongs = posted.iter().filter(|p| p.content == "pong").count();
    assert_eq!(pongs, 5, "{:?}", contents(&posted));
    assert_eq!(posted.len(), 6, "{:?}", contents(&posted));
    let (identifies, resumes) = fake.handshakes();
    assert_eq!(identifies, 1, "every reconnect resumed the session");
    assert!(resumes >= 5);
    let status = d.chat_until("!status", |s| {
        s.contains("reconnects, last: session resumed")
    });
    assert!(
        status.contains("gateway discord (discord): connected"),
        "{status}"
    );
}

#[test]
fn a_silent_gateway_is_caught_and_reconnected() {
    let fake = FakeDiscord::start();
    let d = start(&fake);
    fake.wait_connected();
    let before = fake.handshakes();
    // Open socket, no heartbeat acks, no events: a connection that only looks alive.
    fake.go_silent(true);
    fake.wait_for("a new handshake", || {
        let now = fake.handshakes();
        (now.0 + now.1 > before.0 + before.1).then_some(())
    });
    fake.go_silent(false);
    fake.wait_connected();
    let status = d.chat_until("!status", |s| {
        s.contains("gateway discord (discord): connected") && !s.contains("(0 reconnects")
    });
    assert!(status.contains("reconnects, last:"), "{status}");
    fake.user_says(CHANNEL, USER, "!ping");
    assert_eq!(contents(&fake.wait_posted(CHANNEL, 1)), ["pong"]);
}

#[test]
fn a_long_message_is_split_at_2000_characters_with_code_blocks_intact() {
    let fake = FakeDiscord::start();
    let d = start(&fake);
    fake.wait_connected();
    let code: Vec<String> = (0..200)
        .map(|i| format!("let value_{i} = {i} * 2;"))
        .collect();
    let text = format!("```rust\n{}\n```", code.join("\n"));
    assert_eq!(d.chat(&format!("!send both '{text}'")).trim(), "sent");
    let posted = fake.wait_for("all pieces", || {
        let p = fake.posted_in(ALIAS_CHANNEL);
        let lines = p
            .iter()
            .flat_map(|m| m.content.lines().map(str::to_string).collect::<Vec<_>>())
            .filter(|l| l.starts_with("let "))
            .count();
        (lines == 200).then_some(p)
    });
    assert!(posted.len() >= 3, "{} pieces", posted.len());
    for p in &posted {
        assert!(p.content.chars().count() <= 2000);
        assert!(p.content.starts_with("```rust\n"), "{}", p.content);
        assert!(p.content.ends_with("\n```"), "{}", p.content);
    }
    let nonces: std::collections::HashSet<_> = posted.iter().map(|p| p.nonce.clone()).collect();
    assert_eq!(nonces.len(), posted.len(), "each piece has its own nonce");
}

#[test]
fn mass_mentions_in_relayed_text_are_neutralised() {
    let fake = FakeDiscord::start();
    let d = start(&fake);
    fake.wait_connected();
    assert_eq!(d.chat("!send both hi @everyone").trim(), "sent");
    let posted = fake.wait_posted(ALIAS_CHANNEL, 1);
    assert!(
        !posted[0].content.contains("@everyone"),
        "{}",
        posted[0].content
    );
    assert_eq!(posted[0].content.replace('\u{200B}', ""), "hi @everyone");
}

#[test]
fn a_bad_or_missing_token_is_reported_naming_the_gateway_and_the_console_keeps_working() {
    let fake = FakeDiscord::start();
    let d = start_with_token(&fake, "not-the-token");
    let status = d.chat_until("!status", |s| s.contains("refused the bot token"));
    assert!(
        status.contains("gateway discord (discord): failed"),
        "{status}"
    );
    assert_eq!(d.chat("!ping").trim(), "pong");

    let d = Daemon::start_full(&config(&fake, ""), &[], &[]);
    let status = d.chat("!status");
    assert!(
        status.contains(
            "gateway discord: no bot token: set the environment variable ROOST_DISCORD_TOKEN"
        ),
        "{status}"
    );
    assert_eq!(d.chat("!ping").trim(), "pong");
}

#[test]
fn message_content_intent_off_in_the_portal_fails_once_naming_the_setting() {
    let fake = FakeDiscord::start();
    fake.set_message_content_intent_enabled(false);
    let d = start(&fake);
    let status = d.chat_until("!status", |s| {
        s.contains("gateway discord (discord): failed")
    });
    assert!(
        status.contains("Message Content Intent") && status.contains("Developer Portal"),
        "{status}"
    );
    assert_eq!(
        fake.handshakes().0,
        1,
        "a 4014 close is never retried (each IDENTIFY counts against 1,000 a day)"
    );
    assert_eq!(d.chat("!ping").trim(), "pong");
}

#[test]
fn messages_discord_refuses_for_good_are_parked_and_the_queue_moves_on() {
    let fake = FakeDiscord::start();
    let d = start(&fake);
    fake.wait_connected();
    fake.fail_next_post(Fault::Error {
        status: 403,
        code: 50013,
        message: "Missing Permissions",
    });
    fake.fail_next_post(Fault::Error {
        status: 404,
        code: 10003,
        message: "Unknown Channel",
    });
    for text in ["no-permission", "no-channel", "goes-through"] {
        assert_eq!(d.chat(&format!("!send both {text}")).trim(), "sent");
    }
    assert_eq!(
        contents(&fake.wait_posted(ALIAS_CHANNEL, 1)),
        ["goes-through"]
    );
    let status = d.chat_until("!status", |s| {
        s.contains("outbox discord:444: 2 message(s) parked")
    });
    assert!(status.contains("Unknown Channel (10003)"), "{status}");
    assert!(!status.contains("444: 1 queued"), "{status}");
    let posts = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/channels/444/messages"))
        .count();
    assert_eq!(posts, 3, "a permanent failure is not retried");
}

#[test]
fn a_401_on_delivery_fails_the_gateway_and_keeps_the_queue() {
    let fake = FakeDiscord::start();
    let d = start(&fake);
    fake.wait_connected();
    fake.fail_next_post(Fault::Error {
        status: 401,
        code: 0,
        message: "401: Unauthorized",
    });
    assert_eq!(d.chat("!send both kept").trim(), "sent");
    let status = d.chat_until("!status", |s| {
        s.contains("gateway discord (discord): failed")
    });
    assert!(status.contains("refused the bot token"), "{status}");
    assert!(status.contains("outbox discord:444: 1 queued"), "{status}");
    // The gateway stops: its connection closes and stays closed.
    fake.wait_for("the gateway connection to close", || {
        (!fake.is_connected()).then_some(())
    });
    let status = d.chat("!status");
    assert!(
        status.contains("gateway discord (discord): failed"),
        "failed is final: {status}"
    );
}

#[test]
fn a_global_rate_limit_holds_every_channel_of_the_bot() {
    let fake = FakeDiscord::start();
    let config = config(&fake, "")
        .replace("channels = [\"both\"]", "channels = [\"both\", \"two\"]")
        + "\n[channels.two]\ntargets = [\"discord:444\", \"discord:445\"]\n";
    let d = Daemon::start_full(
        &config,
        &[("faulty", FAULTY_WASM)],
        &[("ROOST_DISCORD_TOKEN", TOKEN)],
    );
    fake.wait_connected();
    fake.fail_next_post(Fault::GlobalRateLimit { retry_after: 2.0 });
    assert_eq!(d.chat("!send both first").trim(), "sent");
    let limited = fake.wait_for("the rate-limited post", || {
        fake.requests()
            .into_iter()
            .find(|r| r.method == "POST" && r.path.ends_with("/channels/444/messages"))
    });
    // Another channel, another route: only a bot-wide limit holds it too.
    assert_eq!(d.chat("!send two second").trim(), "sent");
    let other = fake.wait_posted(445, 1);
    let waited = other[0].received_at.duration_since(limited.at);
    assert!(
        waited >= std::time::Duration::from_millis(1900),
        "channel 445 was posted to {waited:?} into a 2 s global limit"
    );
    assert_eq!(contents(&fake.wait_posted(444, 2)), ["first", "second"]);
}

#[test]
fn a_burst_to_one_channel_follows_its_rate_limit_bucket() {
    let fake = FakeDiscord::start();
    let d = start(&fake);
    fake.wait_connected();
    for i in 0..8 {
        assert_eq!(d.chat(&format!("!send both burst-{i}")).trim(), "sent");
    }
    let posted = fake.wait_posted(ALIAS_CHANNEL, 8);
    let expected: Vec<String> = (0..8).map(|i| format!("burst-{i}")).collect();
    assert_eq!(contents(&posted), expected);
    let posts = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/channels/444/messages"))
        .count();
    assert_eq!(posts, 8, "paced by X-RateLimit-Remaining, never a 429");
}

#[test]
fn a_slow_slash_command_is_deferred_and_long_answers_follow_up() {
    let fake = FakeDiscord::start();
    let d = Daemon::start_full(
        &config(
            &fake,
            "\n[plugins.faulty.limits]\ncall_timeout_ms = 10000\n",
        ),
        &[("faulty", FAULTY_WASM)],
        &[("ROOST_DISCORD_TOKEN", TOKEN)],
    );
    fake.wait_connected();
    fake.wait_for("the sleep and echo commands", || {
        let c = fake.commands();
        let has = |n: &str| c.iter().any(|c| c["name"] == n);
        (has("sleep") && has("echo")).then_some(())
    });
    // Longer than the 3 s Discord gives an interaction callback.
    let id = fake.user_runs_slash(CHANNEL, USER, "sleep", Some("3500"));
    let edits = fake.wait_for("the edited original response", || {
        let e = fake.original_edits(&id);
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(edits[0]["content"], "slept 3500 ms");
    let callbacks: Vec<_> = fake
        .interaction_responses()
        .into_iter()
        .filter(|(i, _)| *i == id)
        .collect();
    assert_eq!(callbacks.len(), 1, "{callbacks:?}");
    assert_eq!(callbacks[0].1["type"], 5, "deferred at once");

    // A quick answer longer than one message: the rest are follow-ups of the interaction.
    let words = vec!["word"; 600].join(" ");
    let id = fake.user_runs_slash(CHANNEL, USER, "echo", Some(&words));
    let followups = fake.wait_for("a follow-up", || {
        let f = fake.followups(&id);
        (!f.is_empty()).then_some(f)
    });
    let first = fake
        .interaction_responses()
        .into_iter()
        .find(|(i, _)| *i == id)
        .expect("the response");
    assert_eq!(first.1["type"], 4);
    let whole = format!(
        "{}{}",
        first.1["data"]["content"].as_str().unwrap_or_default(),
        followups[0]["content"].as_str().unwrap_or_default()
    );
    assert_eq!(whole.matches("word").count(), 600);
    let around: Vec<String> = fake
        .posted_in(CHANNEL)
        .iter()
        .map(|p| p.content.chars().take(80).collect())
        .collect();
    assert!(
        around.is_empty(),
        "nothing went around the interaction: {around:?}"
    );
    drop(d);
}

#[test]
fn a_crash_after_discord_took_a_message_does_not_post_it_twice_once_the_nonce_is_forgotten() {
    let fake = FakeDiscord::start();
    // Discord remembers a nonce for a few minutes only; a restart may come later than that.
    fake.set_nonce_window(std::time::Duration::ZERO);
    let mut d = start(&fake);
    fake.wait_connected();
    assert_eq!(d.chat("!send both before").trim(), "sent");
    fake.wait_posted(ALIAS_CHANNEL, 1);
    fake.fail_next_post(Fault::CreateThenStall);
    assert_eq!(d.chat("!send both only-once").trim(), "sent");
    fake.wait_posted(ALIAS_CHANNEL, 2);
    // Discord took it; roost dies before hearing so.
    d.kill9();
    d.restart();
    fake.wait_connected();
    assert_eq!(d.chat("!send both after").trim(), "sent");
    let posted = fake.wait_posted(ALIAS_CHANNEL, 3);
    d.chat_until("!status", |s| !s.contains("outbox discord:444"));
    assert_eq!(
        contents(&fake.posted_in(ALIAS_CHANNEL)),
        ["before", "only-once", "after"],
        "{:?}",
        contents(&posted)
    );
}

// The check after a crash looks for the text of a message it is not sure it posted; the
// message before had the same text and went out a moment earlier. That post is not this
// message's: it came before the last post whose removal from the outbox is on disk.
#[test]
fn a_crash_mid_post_does_not_take_the_alike_message_before_for_it() {
    let fake = FakeDiscord::start();
    fake.set_nonce_window(std::time::Duration::ZERO);
    let mut d = start(&fake);
    fake.wait_connected();
    assert_eq!(d.chat("!send both same").trim(), "sent");
    fake.wait_posted(ALIAS_CHANNEL, 1);
    d.chat_until("!status", |s| !s.contains("outbox discord:444"));
    fake.fail_next_post(Fault::Stall);
    assert_eq!(d.chat("!send both same").trim(), "sent");
    let posts_to_alias = |fake: &FakeDiscord| {
        let path = format!("/channels/{ALIAS_CHANNEL}/messages");
        let requests = fake.requests();
        requests
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(&path))
            .count()
    };
    fake.wait_for("the second post", || {
        (posts_to_alias(&fake) == 2).then_some(())
    });
    // Discord has not taken it when roost dies.
    d.kill9();
    d.restart();
    fake.wait_connected();
    assert_eq!(d.chat("!send both after").trim(), "sent");
    fake.wait_posted(ALIAS_CHANNEL, 3);
    d.chat_until("!status", |s| !s.contains("outbox discord:444"));
    assert_eq!(
        contents(&fake.posted_in(ALIAS_CHANNEL)),
        ["same", "same", "after"]
    );
}

#[test]
fn a_new_session_after_an_outage_says_in_status_that_events_may_be_missing() {
    let fake = FakeDiscord::start();
    let d = start(&fake);
    fake.wait_connected();
    let before = d.chat("!status");
    assert!(!before.contains("not replayed"), "{before}");
    let identifies = fake.handshakes().0;
    // 4009 (session timed out): the client may not resume; it must identify anew.
    fake.close_connection(4009);
    fake.wait_for("a new session", || {
        (fake.handshakes().0 > identifies).then_some(())
    });
    fake.wait_connected();
    let status = d.chat_until("!status", |s| s.contains("not replayed"));
    assert!(status.contains("a new session started at "), "{status}");
}
