//! Storage quotas: a plugin with no grants cannot fill the disk through its KV namespace,
//! and a chat target that is down cannot grow the outbox without bound, however much is
//! sent to it or however large each message is.

use std::path::Path;

use roost_tests::fake_discord::{FakeDiscord, Posted, TOKEN};
use roost_tests::{BASE_CONFIG, Daemon, FAULTY_WASM};

/// The Discord channel the `both` alias posts to.
const CHANNEL: u64 = 444;

/// A daemon with the faulty plugin under `limits` (`[plugins.faulty.limits]` lines).
fn kv_daemon(limits: &str) -> Daemon {
    Daemon::start_with_plugins(
        &format!("[plugins.faulty.limits]\n{limits}\n"),
        &[("faulty", FAULTY_WASM)],
    )
}

/// Bytes of the database and its write-ahead log.
fn db_bytes(db: &Path) -> u64 {
    let wal = db.with_file_name("roost.db-wal");
    [db, wal.as_path()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// [`BASE_CONFIG`] with a Discord gateway pointed at `fake`, a `both` alias (console and
/// Discord channel [`CHANNEL`]) faulty may post to, and `extra` appended.
fn discord_config(fake: &FakeDiscord, extra: &str) -> String {
    format!(
        "{BASE_CONFIG}\n[channels.both]\ntargets = [\"console\", \"discord:{CHANNEL}\"]\n\n\
         [plugins.faulty.grants]\nchannels = [\"both\"]\n\n\
         [gateways.discord]\napi_base = \"{}\"\nhealth_probe_secs = 5\n\n{extra}\n",
        fake.api_base()
    )
}

fn discord_daemon(fake: &FakeDiscord, extra: &str) -> Daemon {
    let d = Daemon::start_full(
        &discord_config(fake, extra),
        &[("faulty", FAULTY_WASM)],
        &[("ROOST_DISCORD_TOKEN", TOKEN)],
    );
    fake.wait_connected();
    d
}

fn contents(posted: &[Posted]) -> Vec<String> {
    posted.iter().map(|p| p.content.clone()).collect()
}

#[test]
fn a_value_over_kv_value_kb_is_refused_and_not_stored() {
    let d = kv_daemon("kv_value_kb = 64");
    let reply = d.chat("!kvbig 65");
    assert!(
        reply.contains("refused: too large:") && reply.contains("kv_value_kb"),
        "{reply}"
    );
    assert_eq!(d.chat("!kvcount").trim(), "0", "nothing was stored");
    assert_eq!(d.chat("!kvbig 64").trim(), "stored 64 KiB");
    assert_eq!(d.chat("!kvcount").trim(), "1");
}

#[test]
fn kv_writes_past_kv_mb_are_refused_and_the_database_stays_small() {
    let d = kv_daemon("kv_mb = 2");
    // 40 values of 512 KiB is 20 MiB; 2 MiB holds three of them (plus their keys).
    let reply = d.chat("!kvfill 512 40");
    assert!(
        reply.contains("wrote 3 of 40: too large: kv quota exceeded") && reply.contains("kv_mb"),
        "{reply}"
    );
    assert_eq!(d.chat("!kvcount").trim(), "3");
    let size = db_bytes(&d.db_path());
    assert!(
        size < 6 * 1024 * 1024,
        "database and WAL hold {size} bytes after a refused 20 MiB"
    );
    // Deleting gives the room back.
    assert_eq!(d.chat("!kvclear fill/").trim(), "deleted 3");
    assert_eq!(d.chat("!kvfill 512 3 again").trim(), "wrote 3 of 3");
    assert!(d.chat("!kvbig 512").contains("kv quota exceeded"));
}

#[test]
fn the_kv_quota_survives_a_kill_9_restart() {
    let mut d = kv_daemon("kv_mb = 1");
    assert_eq!(d.chat("!kvfill 256 3").trim(), "wrote 3 of 3");
    d.kill9();
    d.restart();
    // 768 KiB are in use; another 256 KiB value would pass 1 MiB.
    let reply = d.chat("!kvfill 256 2 more");
    assert!(
        reply.contains("wrote 0 of 2: too large: kv quota exceeded"),
        "{reply}"
    );
    assert_eq!(d.chat("!kvclear fill/").trim(), "deleted 3");
    assert_eq!(d.chat("!kvfill 256 3 more").trim(), "wrote 3 of 3");
}

#[test]
fn a_down_targets_queue_keeps_its_newest_messages_and_delivers_them_in_order() {
    let fake = FakeDiscord::start();
    let d = discord_daemon(&fake, "[outbox]\nmax_messages = 5");
    fake.stop();
    for i in 0..8 {
        assert_eq!(d.chat(&format!("!send both queued-{i}")).trim(), "sent");
    }
    let status = d.chat_until("!status", |s| s.contains("outbox discord:444: 5 queued"));
    assert!(
        status.contains("outbox-dropped discord:444: 3 oldest queued messages dropped"),
        "{status}"
    );
    fake.start_again();
    let posted = fake.wait_posted(CHANNEL, 5);
    let expected: Vec<String> = (3..8).map(|i| format!("queued-{i}")).collect();
    assert_eq!(contents(&posted), expected, "the newest five, in order");
    d.chat_until("!status", |s| !s.contains("outbox discord:444"));
    assert_eq!(fake.posted_in(CHANNEL).len(), 5, "nothing dropped was sent");
}

#[test]
fn status_warns_at_80_percent_of_a_live_outbox_cap() {
    let fake = FakeDiscord::start();
    let d = discord_daemon(&fake, "[outbox]\nmax_messages = 10");
    fake.stop();
    for i in 0..4 {
        assert_eq!(d.chat(&format!("!send both early-{i}")).trim(), "sent");
    }
    let status = d.chat_until("!status", |s| s.contains("outbox discord:444: 4 queued"));
    assert!(
        !status.contains("warning: outbox"),
        "40% is no warning:\n{status}"
    );
    // Lowering the cap takes effect without a restart: 4 of 5 is 80%.
    d.write_config_raw(&discord_config(&fake, "[outbox]\nmax_messages = 5"));
    let status = d.chat_until("!status", |s| s.contains("warning: outbox discord:444"));
    assert!(
        status.contains("warning: outbox discord:444 is at 80% of [outbox] max_messages (4 of 5)"),
        "{status}"
    );
    for i in 0..2 {
        assert_eq!(d.chat(&format!("!send both late-{i}")).trim(), "sent");
    }
    let status = d.chat_until("!status", |s| s.contains("outbox discord:444: 5 queued"));
    assert!(
        status.contains("at 100% of [outbox] max_messages"),
        "{status}"
    );
}

#[test]
fn a_huge_send_to_discord_is_stored_cut_to_a_few_posts() {
    let fake = FakeDiscord::start();
    let d = discord_daemon(&fake, "");
    fake.stop();
    assert_eq!(d.chat("!sendbig both 1000000").trim(), "sent");
    d.chat_until("!status", |s| s.contains("outbox discord:444: 1 queued"));
    let size = db_bytes(&d.db_path());
    assert!(
        size < 1024 * 1024,
        "a million-character message is kept as {size} bytes of database"
    );
    assert_eq!(d.chat("!send both after").trim(), "sent");
    fake.start_again();
    let posted = contents(&fake.wait_for("the message after the big one", || {
        let posted = fake.posted_in(CHANNEL);
        posted
            .iter()
            .any(|p| p.content == "after")
            .then_some(posted)
    }));
    let (after, pieces) = posted.split_last().expect("posts");
    assert_eq!(after, "after");
    assert!(
        (1..=4).contains(&pieces.len()),
        "{} posts for one message",
        pieces.len()
    );
    assert!(pieces.iter().all(|p| p.chars().count() <= 2000));
    let text = pieces.join("\n");
    let kept = text.chars().filter(|c| *c == 'y').count();
    let marker = format!("… (cut: {} more characters)", 1_000_000 - kept);
    let tail: String = text.chars().skip(kept.saturating_sub(20)).collect();
    assert!(text.ends_with(&marker), "{tail}");
    assert!(kept > 7000, "only {kept} characters kept");
}
