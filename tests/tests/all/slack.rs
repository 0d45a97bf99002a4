//! The Slack gateway (Socket Mode + Web API) against fake Slack workspaces, alone, two side
//! by side, and mirrored to the fake Discord.

use roost_tests::fake_discord::{self, FakeDiscord};
use roost_tests::fake_slack::{APP_TOKEN, BOT_TOKEN, FakeSlack, Fault};
use roost_tests::{BASE_CONFIG, Daemon, FAULTY_WASM};

fn slack_env(name: &str) -> [(String, String); 2] {
    let var = name.to_uppercase().replace('-', "_");
    [
        (format!("ROOST_{var}_TOKEN"), BOT_TOKEN.to_string()),
        (format!("ROOST_{var}_APP_TOKEN"), APP_TOKEN.to_string()),
    ]
}

fn start(config: &str, env: &[(String, String)]) -> Daemon {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Daemon::start_full(config, &[("faulty", FAULTY_WASM)], &env)
}

fn texts(posted: &[roost_tests::fake_slack::Posted]) -> Vec<String> {
    posted.iter().map(|p| p.text.clone()).collect()
}

#[test]
fn ping_on_slack_is_acknowledged_and_answered_and_roles_use_team_and_user() {
    let fake = FakeSlack::start("T1");
    let config = BASE_CONFIG.replace(
        "admin = [\"console\"]",
        "admin = [\"console\", \"slack:T1/U9\"]",
    ) + &format!("\n[gateways.slack]\napi_base = \"{}\"\n", fake.api_base());
    let _d = start(&config, &slack_env("slack"));
    fake.wait_connected();
    fake.user_says("C1", "U2", "ann", "!ping");
    let posted = fake.wait_posted("C1", 1);
    assert_eq!(texts(&posted), ["pong"]);
    assert_eq!(posted[0].body["metadata"]["event_type"], "roost_outbox");
    assert!(!fake.acks().is_empty(), "envelopes are acknowledged");

    fake.user_says("C1", "U2", "ann", "!reload bot");
    let denied = fake.wait_posted("C1", 2);
    assert!(
        denied[1].text.contains("slack:T1/U2 has role anyone"),
        "{}",
        denied[1].text
    );
    fake.user_says("C1", "U9", "boss", "!reload bot");
    let allowed = fake.wait_posted("C1", 3);
    assert!(
        !allowed[2].text.contains("not allowed"),
        "{}",
        allowed[2].text
    );
}

#[test]
fn one_announcement_reaches_discord_two_slack_workspaces_and_the_console_each_on_its_own() {
    let discord = FakeDiscord::start();
    let work = FakeSlack::start("T1");
    let home = FakeSlack::start("T2");
    let config = format!(
        "{BASE_CONFIG}\n[channels.all]\ntargets = [\"console\", \"discord:444\", \"slack-work:C1\", \"slack-home:C2\"]\n\n\
         [plugins.faulty.grants]\nchannels = [\"all\"]\n\n\
         [gateways.discord]\napi_base = \"{}\"\n\n[gateways.slack-work]\napi_base = \"{}\"\n\n\
         [gateways.slack-home]\napi_base = \"{}\"\n",
        discord.api_base(),
        work.api_base(),
        home.api_base()
    );
    let mut env = vec![(
        "ROOST_DISCORD_TOKEN".to_string(),
        fake_discord::TOKEN.to_string(),
    )];
    env.extend(slack_env("slack-work"));
    env.extend(slack_env("slack-home"));
    let mut d = start(&config, &env);
    work.wait_connected();
    home.wait_connected();
    discord.wait_connected();

    // Each workspace answers with its own identity.
    work.user_says("C1", "U1", "ann", "!ping");
    home.user_says("C2", "U1", "ann", "!ping");
    assert_eq!(texts(&work.wait_posted("C1", 1)), ["pong"]);
    assert_eq!(texts(&home.wait_posted("C2", 1)), ["pong"]);

    // The work workspace goes down: the others get the announcement regardless.
    work.stop();
    assert_eq!(d.chat("!send all while-work-is-down").trim(), "sent");
    assert_eq!(texts(&home.wait_posted("C2", 2))[1], "while-work-is-down");
    assert_eq!(discord.wait_posted(444, 1)[0].content, "while-work-is-down");
    d.wait_for_post("while-work-is-down");
    assert_eq!(d.chat("!send all second").trim(), "sent");
    home.wait_posted("C2", 3);
    d.chat_until("!status", |s| s.contains("outbox slack-work:C1: 2 queued"));

    // The daemon restarts while it is down; when it is back, both arrive once, in order.
    d.kill9();
    d.restart();
    work.start_again();
    let posted = work.wait_posted("C1", 3);
    assert_eq!(texts(&posted)[1..], ["while-work-is-down", "second"]);
    d.chat_until("!status", |s| !s.contains("outbox slack-work"));
    assert_eq!(work.posted_in("C1").len(), 3, "nothing posted twice");
}

#[test]
fn a_slack_channel_mirrored_to_discord_relays_author_edits_and_deletes_without_loops() {
    let discord = FakeDiscord::start();
    let slack = FakeSlack::start("T1");
    let config = format!(
        "{BASE_CONFIG}\n[gateways.discord]\napi_base = \"{}\"\n\n\
         [[gateways.discord.mirror]]\nfrom = \"555\"\nto = [\"slack:C1\"]\n\n\
         [gateways.slack]\napi_base = \"{}\"\n\n\
         [[gateways.slack.mirror]]\nfrom = \"C1\"\nto = [\"discord:555\", \"console\"]\n",
        discord.api_base(),
        slack.api_base()
    );
    let mut env = vec![(
        "ROOST_DISCORD_TOKEN".to_string(),
        fake_discord::TOKEN.to_string(),
    )];
    env.extend(slack_env("slack"));
    let d = start(&config, &env);
    slack.wait_connected();
    discord.wait_connected();

    // As Slack sends what was typed: `&`, `<`, `>` escaped.
    let ts = slack.user_says("C1", "U2", "ann", "hello &lt;everyone&gt; &amp; all");
    let copy = discord.wait_posted(555, 1);
    assert_eq!(copy[0].content, "ann: hello <everyone> & all");

    slack.user_edits("C1", "U2", "ann", &ts, "hello again");
    let patch = discord.wait_for("the relayed edit", || {
        discord.requests().into_iter().find(|r| {
            r.method == "PATCH"
                && r.path
                    .ends_with(&format!("/channels/555/messages/{}", copy[0].id))
        })
    });
    assert_eq!(patch.body["content"], "ann: hello again");
    d.wait_for_post("(edited) ann: hello again");
    slack.user_deletes("C1", &ts);
    discord.wait_for("the relayed delete", || {
        discord.requests().into_iter().find(|r| {
            r.method == "DELETE"
                && r.path
                    .ends_with(&format!("/channels/555/messages/{}", copy[0].id))
        })
    });
    assert_eq!(
        discord.posted_in(555).len(),
        1,
        "an edit is not a new message"
    );

    // A person on Discord is mirrored to Slack; the bot's own copies are not mirrored back.
    discord.user_says(555, 42, "from discord");
    let back = slack.wait_posted("C1", 1);
    assert_eq!(texts(&back), ["someone: from discord"]);
    slack.user_says("C1", "U2", "ann", "!ping");
    slack.wait_posted("C1", 2);
    let copies = discord.wait_posted(555, 2);
    assert_eq!(
        copies
            .iter()
            .map(|c| c.content.as_str())
            .collect::<Vec<_>>(),
        ["ann: hello <everyone> & all", "ann: !ping"],
        "the bot's own messages on either side are not mirrored"
    );
    assert_eq!(
        slack.posted_in("C1").len(),
        2,
        "no loop back to Slack: {:?}",
        texts(&slack.posted_in("C1"))
    );
}

#[test]
fn a_retry_after_an_ambiguous_slack_failure_does_not_post_twice() {
    let fake = FakeSlack::start("T1");
    let config = format!(
        "{BASE_CONFIG}\n[channels.s]\ntargets = [\"slack:C1\"]\n[plugins.faulty.grants]\nchannels = [\"s\"]\n\
         [gateways.slack]\napi_base = \"{}\"\n",
        fake.api_base()
    );
    let d = start(&config, &slack_env("slack"));
    fake.wait_connected();
    fake.fail_next_post(Fault::CreateThenFail);
    fake.fail_next_post(Fault::Status {
        code: 429,
        retry_after: 1,
    });
    assert_eq!(d.chat("!send s exactly-once").trim(), "sent");
    assert_eq!(d.chat("!send s after").trim(), "sent");
    d.chat_until("!status", |s| !s.contains("outbox slack:C1"));
    assert_eq!(texts(&fake.posted_in("C1")), ["exactly-once", "after"]);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.method == "conversations.history")
    );
}

#[test]
fn a_slack_disconnect_request_reconnects() {
    let fake = FakeSlack::start("T1");
    let config = format!(
        "{BASE_CONFIG}\n[gateways.slack]\napi_base = \"{}\"\n",
        fake.api_base()
    );
    let d = start(&config, &slack_env("slack"));
    fake.wait_connected();
    fake.send_disconnect();
    fake.wait_for("a second socket", || (fake.opens() >= 2).then_some(()));
    fake.wait_connected();
    d.chat_until("!status", |s| {
        s.contains("gateway slack (slack): connected") && s.contains("1 reconnects")
    });
    fake.user_says("C1", "U2", "ann", "!ping");
    assert_eq!(texts(&fake.wait_posted("C1", 1)), ["pong"]);
}

#[test]
fn missing_slack_tokens_are_reported_naming_the_gateway() {
    let fake = FakeSlack::start("T1");
    let config = format!(
        "{BASE_CONFIG}\n[gateways.slack-work]\napi_base = \"{}\"\n",
        fake.api_base()
    );
    let d = start(&config, &[]);
    let status = d.chat("!status");
    assert!(
        status.contains(
            "gateway slack-work: no bot token: set the environment variable ROOST_SLACK_WORK_TOKEN"
        ),
        "{status}"
    );
    assert_eq!(d.chat("!ping").trim(), "pong");
}

#[test]
fn messages_slack_refuses_for_good_are_parked_and_the_queue_moves_on() {
    let fake = FakeSlack::start("T1");
    let config = format!(
        "{BASE_CONFIG}\n[channels.s]\ntargets = [\"slack:C1\"]\n[plugins.faulty.grants]\nchannels = [\"s\"]\n\
         [gateways.slack]\napi_base = \"{}\"\n",
        fake.api_base()
    );
    let d = start(&config, &slack_env("slack"));
    fake.wait_connected();
    for error in ["not_in_channel", "channel_not_found", "is_archived"] {
        fake.fail_next_post(Fault::Error(error));
    }
    for text in ["a", "b", "c", "goes-through"] {
        assert_eq!(d.chat(&format!("!send s {text}")).trim(), "sent");
    }
    assert_eq!(texts(&fake.wait_posted("C1", 1)), ["goes-through"]);
    let status = d.chat_until("!status", |s| {
        s.contains("outbox slack:C1: 3 message(s) parked")
    });
    assert!(status.contains("is_archived"), "{status}");
    let posts = fake
        .requests()
        .iter()
        .filter(|r| r.method == "chat.postMessage")
        .count();
    assert_eq!(posts, 4, "a permanent failure is not retried");
}

#[test]
fn a_refused_slack_bot_token_fails_the_gateway_at_start() {
    let fake = FakeSlack::start("T1");
    let config = format!(
        "{BASE_CONFIG}\n[gateways.slack]\napi_base = \"{}\"\n",
        fake.api_base()
    );
    let d = start(
        &config,
        &[
            ("ROOST_SLACK_TOKEN".to_string(), "xoxb-wrong".to_string()),
            ("ROOST_SLACK_APP_TOKEN".to_string(), APP_TOKEN.to_string()),
        ],
    );
    let status = d.chat_until("!status", |s| s.contains("gateway slack (slack): failed"));
    assert!(status.contains("refused the bot token"), "{status}");
    assert!(
        fake.requests().iter().any(|r| r.method == "auth.test"),
        "the token is checked with auth.test"
    );
    assert_eq!(d.chat("!ping").trim(), "pong");
}

#[test]
fn an_edit_mirrored_to_slack_shows_the_new_text() {
    let discord = FakeDiscord::start();
    let slack = FakeSlack::start("T1");
    let config = format!(
        "{BASE_CONFIG}\n[gateways.discord]\napi_base = \"{}\"\n\n\
         [[gateways.discord.mirror]]\nfrom = \"555\"\nto = [\"slack:C1\"]\n\n\
         [gateways.slack]\napi_base = \"{}\"\n",
        discord.api_base(),
        slack.api_base()
    );
    let mut env = vec![(
        "ROOST_DISCORD_TOKEN".to_string(),
        fake_discord::TOKEN.to_string(),
    )];
    env.extend(slack_env("slack"));
    let _d = start(&config, &env);
    slack.wait_connected();
    discord.wait_connected();
    let id = discord.user_says(555, 42, "first words");
    let copy = slack.wait_posted("C1", 1);
    assert_eq!(
        slack.shown(&copy[0].ts).as_deref(),
        Some("someone: first words")
    );
    discord.user_edits(555, 42, &id, "second thoughts");
    slack.wait_for("the edit to show", || {
        (slack.shown(&copy[0].ts).as_deref() == Some("someone: second thoughts")).then_some(())
    });
}

#[test]
fn slack_markup_reaches_plugins_as_typed() {
    let fake = FakeSlack::start("T1");
    let config = format!(
        "{BASE_CONFIG}\n[gateways.slack]\napi_base = \"{}\"\n",
        fake.api_base()
    );
    let _d = start(&config, &slack_env("slack"));
    fake.wait_connected();
    // What Slack sends when someone types `!echo example.org https://a.example/x @ann a&b`
    // (a `#channel` would start a comment for the command parser; the unit tests cover it).
    fake.user_says(
        "C1",
        "U2",
        "ann",
        "!echo <http://example.org|example.org> <https://a.example/x|click> <@U7> a&amp;b",
    );
    let reply = fake.wait_posted("C1", 1);
    assert_eq!(
        texts(&reply),
        ["example.org|https://a.example/x|@U7|a&amp;b"],
        "decoded on the way in (and `&` escaped again on the way out)"
    );
}

#[test]
fn mirrored_slack_messages_show_the_authors_name_looked_up_once() {
    let discord = FakeDiscord::start();
    let slack = FakeSlack::start("T1");
    let config = format!(
        "{BASE_CONFIG}\n[gateways.discord]\napi_base = \"{}\"\n\n\
         [gateways.slack]\napi_base = \"{}\"\n\n\
         [[gateways.slack.mirror]]\nfrom = \"C1\"\nto = [\"discord:555\"]\n",
        discord.api_base(),
        slack.api_base()
    );
    let mut env = vec![(
        "ROOST_DISCORD_TOKEN".to_string(),
        fake_discord::TOKEN.to_string(),
    )];
    env.extend(slack_env("slack"));
    let _d = start(&config, &env);
    slack.wait_connected();
    discord.wait_connected();
    slack.user_says("C1", "U0ABC", "Ann Example", "first");
    discord.wait_posted(555, 1);
    slack.user_says("C1", "U0ABC", "Ann Example", "second");
    let copies = discord.wait_posted(555, 2);
    let copies: Vec<&str> = copies.iter().map(|c| c.content.as_str()).collect();
    assert_eq!(copies, ["Ann Example: first", "Ann Example: second"]);
    assert_eq!(slack.users_info_calls(), 1, "the name is cached");
}

#[test]
fn a_crash_between_posting_and_marking_sent_does_not_post_twice() {
    let fake = FakeSlack::start("T1");
    let config = format!(
        "{BASE_CONFIG}\n[channels.s]\ntargets = [\"slack:C1\"]\n[plugins.faulty.grants]\nchannels = [\"s\"]\n\
         [gateways.slack]\napi_base = \"{}\"\n",
        fake.api_base()
    );
    let mut d = start(&config, &slack_env("slack"));
    fake.wait_connected();
    // Enough of the bot's own posts that the one to find is not on the first page.
    for i in 0..20 {
        assert_eq!(d.chat(&format!("!send s filler-{i}")).trim(), "sent");
    }
    fake.wait_posted("C1", 20);
    d.chat_until("!status", |s| !s.contains("outbox slack:C1"));
    fake.fail_next_post(Fault::CreateThenStall);
    assert_eq!(d.chat("!send s only-once").trim(), "sent");
    fake.wait_posted("C1", 21);
    // Slack took it; roost dies before hearing so.
    d.kill9();
    for i in 0..20 {
        fake.user_says("C1", "U2", "ann", &format!("chatter-{i}"));
    }
    d.restart();
    d.chat_until("!status", |s| !s.contains("outbox slack:C1"));
    let posted = texts(&fake.posted_in("C1"));
    assert_eq!(
        posted.iter().filter(|t| *t == "only-once").count(),
        1,
        "{posted:?}"
    );
    let reads: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "conversations.history")
        .collect();
    assert!(!reads.is_empty(), "the history was checked");
    assert!(
        reads.iter().all(|r| r.body["oldest"].is_string()),
        "read with `oldest`, as a GET: {reads:?}"
    );
}

#[test]
fn file_shares_thread_broadcasts_and_me_messages_are_routed_and_mirrored_bots_are_not() {
    let discord = FakeDiscord::start();
    let slack = FakeSlack::start("T1");
    let config = format!(
        "{BASE_CONFIG}\n[gateways.discord]\napi_base = \"{}\"\n\n\
         [gateways.slack]\napi_base = \"{}\"\n\n\
         [[gateways.slack.mirror]]\nfrom = \"C1\"\nto = [\"discord:555\"]\n",
        discord.api_base(),
        slack.api_base()
    );
    let mut env = vec![(
        "ROOST_DISCORD_TOKEN".to_string(),
        fake_discord::TOKEN.to_string(),
    )];
    env.extend(slack_env("slack"));
    let _d = start(&config, &env);
    slack.wait_connected();
    discord.wait_connected();
    let file =
        serde_json::json!({"files": [{"id": "F1", "name": "report.pdf", "title": "Report"}]});
    slack.user_event("C1", "U2", "ann", "file_share", "see this", file);
    discord.wait_posted(555, 1);
    slack.other_bot_says("C1", "!ping");
    slack.own_user_says("C1", "!ping");
    let thread = serde_json::json!({"thread_ts": "1.000001", "root": {"ts": "1.000001"}});
    slack.user_event("C1", "U2", "ann", "thread_broadcast", "!ping", thread);
    discord.wait_posted(555, 2);
    slack.user_event(
        "C1",
        "U2",
        "ann",
        "me_message",
        "waves",
        serde_json::json!({}),
    );
    let copies = discord.wait_posted(555, 3);
    let copies: Vec<&str> = copies.iter().map(|c| c.content.as_str()).collect();
    assert_eq!(
        copies,
        [
            "ann: see this [file: report.pdf]",
            "ann: !ping",
            "ann waves"
        ]
    );
    // The thread broadcast was a command; the bots' `!ping`s were not.
    slack.user_says("C1", "U2", "ann", "!echo last");
    let replies = slack.wait_posted("C1", 2);
    assert_eq!(texts(&replies), ["pong", "last"]);
}

#[test]
fn a_second_socket_mode_connection_on_the_same_app_is_warned_about() {
    let fake = FakeSlack::start("T1");
    let config = format!(
        "{BASE_CONFIG}\n[gateways.slack]\napi_base = \"{}\"\n",
        fake.api_base()
    );
    let first = start(&config, &slack_env("slack"));
    fake.wait_connected();
    let status = first.chat_until("!status", |s| {
        s.contains("gateway slack (slack): connected")
    });
    assert!(!status.contains("Socket Mode connections"), "{status}");
    // A second process on the same app, as a dev copy next to production would be.
    let second = start(&config, &slack_env("slack"));
    fake.wait_for("the second socket", || (fake.opens() >= 2).then_some(()));
    let status = second.chat_until("!status", |s| {
        s.contains("warning: 2 Socket Mode connections")
    });
    assert!(
        status.contains("gateway slack (slack): connected"),
        "{status}"
    );
    // Slack gives each event to one of them: the two between them answer each once.
    for _ in 0..4 {
        fake.user_says("C1", "U2", "ann", "!ping");
    }
    assert_eq!(texts(&fake.wait_posted("C1", 4)), ["pong"; 4]);
    drop(first);
}
